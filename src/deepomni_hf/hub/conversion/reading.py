# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Reading source checkpoints: a local folder or a Hub snapshot, tensor by tensor (safetensors or weights-only torch)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open

from ...modeling.modeling_deepomni_codec import SNAC_CONFIG_NAME, SNAC_WEIGHTS_NAME


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


# Source keys that hold no weights (buffers that older code saved) and are skipped without a word.
IGNORED_SOURCE_KEYS = re.compile(r".*rotary_emb\.inv_freq$")


_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}  # fmt: skip


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

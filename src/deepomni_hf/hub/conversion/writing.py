# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Writing a checkpoint: planned tensors streamed into safetensors shards, in a folder that appears atomically."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import PreTrainedConfig

from .reading import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME


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
    refuse_existing(output_dir, overwrite)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
    try:
        yield temp_dir
        refuse_existing(output_dir, overwrite)  # something may have appeared meanwhile
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


def refuse_existing(output_dir: Path, overwrite: bool) -> None:
    if output_dir.is_file():
        raise FileExistsError(f"The output {str(output_dir)!r} is a file, not a folder.")
    if output_dir.exists() and not overwrite:
        raise FileExistsError(f"The output folder {str(output_dir)!r} already exists; pass overwrite=True to replace it.")


def check_output_is_not_a_source(output_dir: str | os.PathLike, sources: dict[str, Path]) -> None:
    output = Path(os.fspath(output_dir)).expanduser().resolve()
    for what, source in sources.items():
        if output == source.resolve():
            raise ValueError(f"The output folder is the {what} folder ({str(source)!r}); choose another output.")


def as_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype such as 'bfloat16', got {dtype!r}.")
    return resolved


@dataclasses.dataclass
class PlannedTensor:
    """One output tensor: its name, the shape it will have, how to build it, and its output dtype (`None` keeps the
    built tensor's dtype)."""

    name: str
    shape: tuple[int, ...]
    build: Callable[[], torch.Tensor]
    dtype: torch.dtype | None = None


def check_shape(what: str, name: str, source_name: str, actual: tuple, expected: tuple) -> None:
    if tuple(actual) != tuple(expected):
        raise ValueError(
            f"Mismatched sizes: `{source_name}` of the {what} has shape {list(actual)}, but the configuration implies "
            f"{list(expected)} for `{name}`. The weights do not fit the config.json next to them."
        )


def expected_tensors(model: torch.nn.Module, tied: dict[str, str]) -> dict[str, tuple]:
    """Names and shapes `save_pretrained` writes for `model` (built on the meta device): its state dict without the
    tied copies."""
    return {name: tuple(t.shape) for name, t in model.state_dict().items() if name not in tied}


def write_planned(plan: list[PlannedTensor], writer: ShardWriter, description: str, progress: bool) -> None:
    for planned in tqdm(plan, desc=description, unit="tensor", disable=not progress):
        tensor = planned.build()
        if planned.dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(planned.dtype)
        if tuple(tensor.shape) != planned.shape:  # planning checked the sources; this guards the building code
            raise RuntimeError(f"Built `{planned.name}` with shape {list(tensor.shape)}, expected {list(planned.shape)}.")
        writer.add(planned.name, tensor)
        del tensor


def verify_written(writer: ShardWriter, expected: dict[str, tuple], what: str) -> None:
    missing, unexpected = sorted(set(expected) - set(writer.shapes)), sorted(set(writer.shapes) - set(expected))
    if missing or unexpected:
        raise RuntimeError(f"The {what} would load with missing keys {missing[:5]} / unexpected keys {unexpected[:5]}.")

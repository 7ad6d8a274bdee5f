# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Publish DeepOmni checkpoints and training datasets to the Hugging Face Hub, each in one commit with its card.

`push_model` uploads a checkpoint folder (as written by `save_pretrained`, with the model's code for
`trust_remote_code` and, when present, the processor files) plus a rendered model card as `README.md`.
`push_dataset` converts a `datasets` `save_to_disk` folder into Parquet shards under `data/` (the layout
`Dataset.push_to_hub` writes, with the same `configs` / `dataset_info` card metadata) and uploads them with a
dataset card, so `datasets.load_dataset(repo_id)` loads it back.

Both make exactly one commit (`HfApi.create_commit`): the repo is created if missing (`exist_ok`), the branch named
by `revision` is created from `main` if missing, large files go through the Hub's LFS/Xet upload first (not commits),
and the commit also deletes the files of an earlier push that the new one replaces (weight shards for a model, data
shards for a dataset), so a re-push never mixes two versions. `datasets`' own `push_to_hub` is not used: it makes
one commit per batch of shards plus one for the card.

Credentials: `token=None` uses `huggingface_hub`'s standard resolution (`HF_TOKEN`, then `hf auth login`'s stored
token). The token is passed to `huggingface_hub` only; this module never prints or logs it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import (
    HFValidationError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from .cards import (
    DEFAULT_LANGUAGE,
    STAGE_PLANS,
    read_checkpoint_config,
    render_dataset_card,
    render_model_card,
    resolve_stage,
)


logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Files a re-push replaces: remote files matching these that the new push lacks are deleted in the same commit.
MODEL_REPLACED_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json")
DATASET_REPLACED_PATTERNS = ("data/*",)
# Never uploaded from a checkpoint folder: Trainer resume state, caches, local clutter.
DEFAULT_IGNORE_PATTERNS = (
    ".git/*", ".cache/*", "*/__pycache__/*", "__pycache__/*", "*.pyc", ".DS_Store", "*/.DS_Store",
    "optimizer.pt", "optimizer.bin", "scheduler.pt", "scaler.pt", "rng_state*.pth", "training_args.bin",
    "global_step*/*", "README.md",
)  # fmt: skip
DEFAULT_MAX_SHARD_SIZE = "500MB"


# --- checks ---------------------------------------------------------------------------------------------------------
def check_repo_id(repo_id: str) -> str:
    """Returns `repo_id` if it is a valid `namespace/name` Hub repo id, else raises a `ValueError` saying why."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"Invalid repo id {repo_id!r}: expected 'ORG/NAME' (a user or organisation, then a name).")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"Invalid repo id {repo_id!r}: {error}") from None
    return repo_id


def check_checkpoint_dir(checkpoint_dir: str | os.PathLike) -> Path:
    """Checks that `checkpoint_dir` holds a saved DeepOmni checkpoint; raises naming the missing / wrong file."""
    path = Path(checkpoint_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"Checkpoint folder not found: {path}")
    if not (path / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{path} has no {CONFIG_NAME}: save the checkpoint with save_pretrained first.")
    config = read_checkpoint_config(path)
    if config.get("model_type") != "deepomni":
        raise ValueError(
            f"{path / CONFIG_NAME} has model_type {config.get('model_type')!r}; push_model publishes DeepOmni "
            "checkpoints (model_type 'deepomni')."
        )
    present = [name for name in WEIGHT_FILES if (path / name).is_file()]
    if not present:
        raise FileNotFoundError(
            f"{path} has no weights: expected model.safetensors (or model.safetensors.index.json with its shards)."
        )
    for index_name in (name for name in present if name.endswith(".index.json")):
        try:
            shards = set(json.loads((path / index_name).read_text(encoding="utf-8"))["weight_map"].values())
        except (json.JSONDecodeError, KeyError, AttributeError) as error:
            raise ValueError(f"{path / index_name} is not a valid weight index: {error!r}") from None
        missing = sorted(shard for shard in shards if not (path / shard).is_file())
        if missing:
            raise FileNotFoundError(f"{path} is missing weight shard(s) listed in {index_name}: {', '.join(missing)}")
    from ..checkpoints import check_checkpoint

    check_checkpoint(path)  # an empty / truncated weight file or a config that does not match the weights
    return path


def check_dataset_dir(dataset_dir: str | os.PathLike) -> Path:
    """Checks that `dataset_dir` is a `save_to_disk` folder (of a `Dataset` or a `DatasetDict`)."""
    path = Path(dataset_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"Dataset folder not found: {path}")
    if (path / "dataset_dict.json").is_file():
        return path
    missing = [name for name in ("dataset_info.json", "state.json") if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is not a datasets save_to_disk folder: it has no {' / '.join(missing)} (nor dataset_dict.json)."
        )
    return path


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)


def _local_files(folder: Path, ignore_patterns: Sequence[str]) -> dict[str, Path]:
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            rel = path.relative_to(folder).as_posix()
            if not _matches(rel, ignore_patterns):
                files[rel] = path
    return files


# --- upload ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class UploadPlan:
    """What a push will commit: the files (path in repo → local path or bytes) and the rendered card."""

    repo_id: str
    repo_type: str
    files: dict[str, Path | bytes]
    card: Any
    replaced_patterns: tuple[str, ...]

    @property
    def paths(self) -> list[str]:
        return sorted(self.files)


def _commit(
    plan: UploadPlan,
    *,
    private: bool,
    revision: str | None,
    commit_message: str,
    commit_description: str | None,
    token: str | bool | None,
) -> CommitInfo:
    api = HfApi(token=token)
    api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private, exist_ok=True)
    branch = revision or "main"
    if branch != "main":
        api.create_branch(plan.repo_id, repo_type=plan.repo_type, branch=branch, exist_ok=True)
    try:
        info = api.repo_info(plan.repo_id, repo_type=plan.repo_type, revision=branch, files_metadata=False)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        info = None
    if info is not None and private and not info.private:
        logger.warning(f"{plan.repo_id} already exists and is public: `private` only applies to new repos.")
    remote = [s.rfilename for s in (info.siblings or [])] if info is not None else []
    stale = [p for p in remote if p not in plan.files and _matches(p, plan.replaced_patterns)]
    operations: list = [CommitOperationDelete(path_in_repo=p) for p in stale]
    for path_in_repo, source in sorted(plan.files.items()):
        source = source if isinstance(source, bytes) else str(source)
        operations.append(CommitOperationAdd(path_in_repo=path_in_repo, path_or_fileobj=source))
    commit = api.create_commit(
        plan.repo_id,
        operations,
        commit_message=commit_message,
        commit_description=commit_description,
        repo_type=plan.repo_type,
        revision=branch,
    )
    logger.info(
        f"Pushed {len(plan.files)} file(s) to {plan.repo_type} repo {plan.repo_id} ({branch}) in one commit "
        f"{commit.oid}" + (f", deleting {len(stale)} replaced file(s)" if stale else "")
    )
    return commit


# --- models ---------------------------------------------------------------------------------------------------------
def prepare_model_upload(
    checkpoint_dir: str | os.PathLike,
    repo_id: str,
    stage: str | None = None,
    *,
    eval_results: Any = None,
    base_model: str | Sequence[str] | None = None,
    datasets: str | Sequence[str] | None = None,
    license: str | None = None,
    language: str | Sequence[str] | None = DEFAULT_LANGUAGE,
    ignore_patterns: Sequence[str] = DEFAULT_IGNORE_PATTERNS,
    template_dir: str | os.PathLike | None = None,
    card_template: str | os.PathLike | None = None,
    reproduction: Any = None,
) -> UploadPlan:
    """Checks the checkpoint and renders its card, without any network call: what `push_model` will commit."""
    check_repo_id(repo_id)
    folder = check_checkpoint_dir(checkpoint_dir)
    card = render_model_card(
        folder, repo_id, stage, base_model=base_model, datasets=datasets, eval_results=eval_results,
        license=license, language=language, template_dir=template_dir, card_template=card_template,
        reproduction=reproduction,
    )  # fmt: skip
    files: dict[str, Path | bytes] = dict(_local_files(folder, ignore_patterns))
    files["README.md"] = str(card).encode("utf-8")
    return UploadPlan(repo_id, "model", files, card, MODEL_REPLACED_PATTERNS)


def push_model(
    checkpoint_dir: str | os.PathLike,
    repo_id: str,
    stage: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    eval_results: Any = None,
    token: str | bool | None = None,
    *,
    base_model: str | Sequence[str] | None = None,
    datasets: str | Sequence[str] | None = None,
    license: str | None = None,
    language: str | Sequence[str] | None = DEFAULT_LANGUAGE,
    ignore_patterns: Sequence[str] = DEFAULT_IGNORE_PATTERNS,
    template_dir: str | os.PathLike | None = None,
    card_template: str | os.PathLike | None = None,
    reproduction: Any = None,
) -> CommitInfo:
    """Publishes a DeepOmni checkpoint folder to the model repo `repo_id` in one commit, with its model card.

    Args:
        checkpoint_dir: a folder written by `save_pretrained` (config.json + model.safetensors or a sharded index;
            the model's code and the processor files travel with it when present).
        repo_id: `ORG/NAME`.
        stage: the training stage that produced the checkpoint (`converted`, `alignment`, `speech`, `text`, `joint`,
            `dpo`, or `1`, `2-speech`, `2-text`, `3`); selects the card template. `None`: not stated (a generic
            card describing the whole recipe).
        private: create the repo as private (only applies when the repo does not exist yet).
        revision: the branch to commit to, created from `main` if missing. `None`: `main`.
        commit_message: defaults to "Upload DeepOmni <stage> checkpoint".
        eval_results: evaluation numbers for the card's `model-index` (a JSON file path or a list of
            `EvalResult`s / dicts of `EvalResult` fields, see `cards.load_eval_results`).
        token: a Hub token; `None` uses the standard login / `HF_TOKEN`.
        base_model: the previous stage's repo id (or ids); defaults to the three base checkpoints.
        datasets: the training datasets' repo ids, for the card.
        license: a Hub license id; defaults to DeepSeek's model license (`other` / `deepseek`).
        language: the card's languages.
        ignore_patterns: files of the folder not uploaded (Trainer resume state by default; README.md is always
            replaced by the rendered card).
        card_template: a model-card template instead of the stage's: a name of `hub_cards/` (`deepomni_tiny`) or
            a Jinja file (`cards.card_template_path`).
        reproduction: a reproduction summary for the card (`benchmarks/reproduction.py`'s `reproduction.json`, a
            path or a mapping; `card_facts.load_reproduction`).

    Returns:
        the `CommitInfo` of the commit (`.oid`, `.commit_url`, `.repo_url`).
    """
    stage = resolve_stage(stage)
    plan = prepare_model_upload(
        checkpoint_dir, repo_id, stage, eval_results=eval_results, base_model=base_model, datasets=datasets,
        license=license, language=language, ignore_patterns=ignore_patterns, template_dir=template_dir,
        card_template=card_template, reproduction=reproduction,
    )  # fmt: skip
    return _commit(
        plan,
        private=private,
        revision=revision,
        commit_message=commit_message or f"Upload DeepOmni {stage or ''} checkpoint".replace("  ", " "),
        commit_description=(f"Stage: {STAGE_PLANS[stage].number} ({STAGE_PLANS[stage].title}). " if stage else "")
        + f"{len(plan.files)} files, pushed with deepomni_hf.",
        token=token,
    )


# --- datasets -------------------------------------------------------------------------------------------------------
def _parse_size(size: int | str) -> int:
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    text = str(size).strip().upper()
    try:
        unit = next((unit for unit in units if text.endswith(unit)), None)
        value = int(float(text[: -len(unit)]) * units[unit]) if unit else int(text)
    except ValueError:
        raise ValueError(f"max_shard_size {size!r} is not a size: use e.g. 500MB, 2GB or a number of bytes.") from None
    if value < 1:
        raise ValueError(f"max_shard_size must be more than 0 bytes, got {size!r}.")
    return value


def _write_split_shards(dataset, split: str, folder: Path, max_shard_size: int) -> tuple[list[str], int, int]:
    """Writes one split as Parquet shards `data/<split>-NNNNN-of-NNNNN.parquet`; returns their paths, the split's
    in-memory size and the total Parquet size. Audio / image files the rows point to are embedded, as
    `Dataset.push_to_hub` does, so the repo is self-contained."""
    from datasets.features.features import require_decoding
    from datasets.table import embed_table_storage

    num_bytes = dataset.data.nbytes
    num_shards = max(1, math.ceil(num_bytes / max_shard_size)) if len(dataset) else 1
    num_shards = min(num_shards, max(len(dataset), 1))
    embed = any(require_decoding(feature, ignore_decode_attribute=True) for feature in dataset.features.values())
    paths, parquet_bytes = [], 0
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for index in range(num_shards):
        shard = dataset.shard(num_shards=num_shards, index=index, contiguous=True)
        if embed:
            shard = shard.with_format("arrow").map(embed_table_storage, batched=True, keep_in_memory=True)
            shard = shard.with_format(None)
        path_in_repo = f"data/{split}-{index:05d}-of-{num_shards:05d}.parquet"
        shard.to_parquet(str(folder / path_in_repo))
        parquet_bytes += (folder / path_in_repo).stat().st_size
        paths.append(path_in_repo)
    return paths, num_bytes, parquet_bytes


def _dataset_metadata(splits: dict, features, name: str, download_size: int) -> dict[str, Any]:
    """The `configs` + `dataset_info` card metadata for the `default` config (what `Dataset.push_to_hub` writes)."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    split_dict = SplitDict(dataset_name=name)
    for split, (num_examples, num_bytes) in splits.items():
        split_dict.add(SplitInfo(name=split, num_bytes=num_bytes, num_examples=num_examples, dataset_name=name))
    info = DatasetInfo(
        features=features,
        splits=split_dict,
        download_size=download_size,
        dataset_size=sum(num_bytes for _, num_bytes in splits.values()),
        config_name="default",
    )
    info.size_in_bytes = info.download_size + info.dataset_size
    card_data = DatasetCardData()
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    data_files = [{"split": split, "path": f"data/{split}-*"} for split in splits]
    MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card_data)
    return card_data.to_dict()


def push_dataset(
    dataset_dir: str | os.PathLike,
    repo_id: str,
    stage: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | bool | None = None,
    *,
    license: str | None = None,
    language: str | Sequence[str] | None = DEFAULT_LANGUAGE,
    pretty_name: str | None = None,
    description: str | None = None,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    template_dir: str | os.PathLike | None = None,
) -> CommitInfo:
    """Publishes a `datasets` `save_to_disk` folder to the dataset repo `repo_id` in one commit, with a dataset card.

    The splits (a `Dataset` is one split: its own split name, else `train`) are written as Parquet shards of at most
    about `max_shard_size` under `data/`; the card's `configs` / `dataset_info` metadata declare them, so
    `datasets.load_dataset(repo_id, split=...)` returns the same rows and features. `stage` names the training stage
    the data is for (card text and task categories). Other arguments as in `push_model`.
    """
    import datasets

    check_repo_id(repo_id)
    folder = check_dataset_dir(dataset_dir)
    loaded = datasets.load_from_disk(str(folder))
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({str(loaded.split) if loaded.split else "train": loaded})
    if not len(loaded):
        raise ValueError(f"{folder} holds no splits.")
    features = {str(ds.features) for ds in loaded.values()}
    if len(features) > 1:
        raise ValueError(f"The splits of {folder} have different features; a Hub dataset config needs one schema.")
    name = repo_id.split("/")[-1]
    shard_limit = _parse_size(max_shard_size)
    with tempfile.TemporaryDirectory(prefix="deepomni-push-") as tmp:
        staging = Path(tmp)
        files: dict[str, Path | bytes] = {}
        split_sizes, download_size = {}, 0
        for split, dataset in loaded.items():
            paths, num_bytes, parquet_bytes = _write_split_shards(dataset, split, staging, shard_limit)
            files.update({p: staging / p for p in paths})
            split_sizes[split] = (len(dataset), num_bytes)
            download_size += parquet_bytes
        first = next(iter(loaded.values()))
        card = render_dataset_card(
            repo_id,
            splits={split: rows for split, (rows, _) in split_sizes.items()},
            features=first.features,
            stage=stage,
            license=license,
            language=language,
            pretty_name=pretty_name,
            description=description,
            extra_metadata=_dataset_metadata(split_sizes, first.features, name, download_size),
            template_dir=template_dir,
        )
        files["README.md"] = str(card).encode("utf-8")
        plan = UploadPlan(repo_id, "dataset", files, card, DATASET_REPLACED_PATTERNS)
        rows = sum(rows for rows, _ in split_sizes.values())
        return _commit(
            plan,
            private=private,
            revision=revision,
            commit_message=commit_message or f"Upload dataset ({', '.join(split_sizes)}: {rows} rows)",
            commit_description=f"{len(files) - 1} Parquet shard(s), pushed with deepomni_hf.",
            token=token,
        )


__all__ = [
    "DEFAULT_IGNORE_PATTERNS",
    "UploadPlan",
    "check_checkpoint_dir",
    "check_dataset_dir",
    "check_repo_id",
    "prepare_model_upload",
    "push_dataset",
    "push_model",
]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Datasets for the training stages and for `deepomni assign-experts`.

A dataset folder (written with `datasets.Dataset.save_to_disk`, or a `DatasetDict` of which one split is used) holds
examples in one of two forms:

1. **Laid out** (preferred: no processor work while training): columns `input_ids` `[positions, 8]`, `labels`
   `[positions, 8]` (optional for `assign-experts`), optional `attention_mask` `[positions]`, and `input_features`
   `[num_audios, 80, 3000]` for examples with spoken turns (`None` otherwise) — exactly what
   `DeepOmniProcessor.apply_chat_template(conversation, output_labels=True)` returns for one conversation, without
   the batch axis. [`layout_dataset`] builds such a dataset from conversations.
2. **Conversations**: a `messages` column of DeepOmni chat messages (see `DeepOmniProcessor.apply_chat_template`;
   audio items as `{"type": "audio", "audio": path | {"array": [...], "sampling_rate": sr}}`, assistant speech as
   `{"type": "audio_codes", "codes": [[7 codes] per frame]}`). They are laid out on the fly (`with_transform`), which
   needs the processor.

DPO pair datasets (`dpo.py`) come laid out (`chosen_input_ids`, ...) or as conversations: `messages` (prompt + the
text answer), `chosen_codes` / `rejected_codes` (`[frames, 7]` raw codes) and optionally `voice` — what
`deepomni_hf.data.build_dpo_dataset` writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..processors.layout import StreamVocabulary

LAYOUT_COLUMNS = ("input_ids", "labels", "attention_mask", "input_features")


def layout_conversation(processor, messages: Sequence[Mapping], **template_kwargs) -> dict[str, Any]:
    """One conversation → one laid-out example (numpy arrays, no batch axis; `input_features` is `None` without
    spoken turns). The last assistant turn is the target (`output_labels=True`)."""
    out = processor.apply_chat_template(
        normalize_messages(messages), output_labels=True, return_tensors="np", **template_kwargs
    )
    features = out.get("input_features")
    return {
        "input_ids": out["input_ids"][0],
        "labels": out["labels"][0],
        "attention_mask": out["attention_mask"][0],
        "input_features": None if features is None else np.asarray(features, dtype=np.float32),
    }


def layout_dataset(processor, conversations: Sequence[Sequence[Mapping]], **template_kwargs):
    """A `datasets.Dataset` of laid-out examples (form 1 of the module docstring) from conversations."""
    import datasets

    rows = [layout_conversation(processor, messages, **template_kwargs) for messages in conversations]
    return datasets.Dataset.from_list(rows)


def normalize_messages(messages: Sequence[Mapping]) -> list[dict]:
    """Turns what `datasets` stores (lists for arrays; `None` for keys other items of the column have) back into
    what the processor reads."""
    normalized = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, (list, tuple)):
            items = []
            for item in content:
                item = {k: v for k, v in dict(item).items() if v is not None}
                if item.get("type") == "audio":
                    audio = item.get("audio")
                    if isinstance(audio, Mapping) and "array" in audio:
                        item["audio"] = np.asarray(audio["array"], dtype=np.float32)
                        item.setdefault("sampling_rate", audio.get("sampling_rate"))
                    elif isinstance(audio, list):
                        item["audio"] = np.asarray(audio, dtype=np.float32)
                if item.get("type") == "audio_codes" and isinstance(item.get("codes"), list):
                    item["codes"] = np.asarray(item["codes"], dtype=np.int64)
                items.append(item)
            content = items
        normalized.append({**{k: v for k, v in dict(message).items() if v is not None}, "content": content})
    return normalized


def load_stage_dataset(path: str | os.PathLike, processor=None, split: str | None = None):
    """
    Loads a dataset folder saved with `save_to_disk` for training or modality load.

    Args:
        path: the folder.
        processor: a `DeepOmniProcessor`; needed only for the `messages` form.
        split: split of a `DatasetDict` (default: `"train"`, or its only split).
    """
    import datasets

    data = datasets.load_from_disk(os.fspath(path))
    if isinstance(data, datasets.DatasetDict):
        if split is None:
            split = "train" if "train" in data else (next(iter(data)) if len(data) == 1 else None)
        if split is None or split not in data:
            raise ValueError(f"{path} holds splits {list(data)}; name one with split=.")
        data = data[split]
    columns = set(data.column_names)
    if "input_ids" in columns or "chosen_input_ids" in columns:
        return data
    if {"messages", "chosen_codes", "rejected_codes"} <= columns:  # DPO pairs as conversations
        if processor is None:
            raise ValueError(f"{path} holds DPO conversations; laying them out needs a DeepOmniProcessor.")
        from .dpo import build_dpo_pair

        passthrough = [c for c in ("reference_chosen_logps", "reference_rejected_logps") if c in columns]

        def dpo_transform(batch):
            voices = batch.get("voice") or [None] * len(batch["messages"])
            rows = [
                build_dpo_pair(processor, messages, chosen, rejected, voice or None)
                for messages, chosen, rejected, voice in zip(
                    batch["messages"], batch["chosen_codes"], batch["rejected_codes"], voices
                )
            ]
            out = {key: [row[key] for row in rows] for key in rows[0]}
            out.update({column: batch[column] for column in passthrough})
            return out

        return data.with_transform(dpo_transform)
    if "messages" in columns:
        if processor is None:
            raise ValueError(f"{path} holds conversations ('messages'); laying them out needs a DeepOmniProcessor.")

        def transform(batch):
            rows = [layout_conversation(processor, messages) for messages in batch["messages"]]
            return {key: [row[key] for row in rows] for key in LAYOUT_COLUMNS}

        return data.with_transform(transform)
    raise ValueError(
        f"{path} has columns {sorted(columns)}; expected laid-out examples (input_ids, labels, input_features, ...) "
        "or conversations (messages). See deepomni_hf.training.data."
    )


class LayoutPadding:
    """The 8-stream vocabulary of a `DeepOmniConfig` and its padding ids (`pad_row`: `PAD_A` per audio slot, then
    `PAD_T`), enough for `DeepOmniDataCollator` when the data is already laid out and no processor was saved with the
    checkpoint."""

    def __init__(self, config):
        self.vocabulary = StreamVocabulary.from_config(config)
        self.pad_row = self.vocabulary.pad_row


def load_processor_or_padding(model_path: str | os.PathLike, config):
    """The checkpoint's `DeepOmniProcessor` if one was saved with it, else [`LayoutPadding`] (laid-out data only)."""
    from ..processors import DeepOmniProcessor

    try:
        return DeepOmniProcessor.from_pretrained(os.fspath(model_path))
    except (OSError, ValueError):  # no processor files next to the model
        return LayoutPadding(config)


def iterate_batches(dataset, collator, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
    """Collated batches of `dataset` in order."""
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        examples = [dict(zip(rows, values)) for values in zip(*rows.values())]
        yield collator(examples)


__all__ = [
    "LAYOUT_COLUMNS",
    "LayoutPadding",
    "iterate_batches",
    "layout_conversation",
    "layout_dataset",
    "load_processor_or_padding",
    "load_stage_dataset",
    "normalize_messages",
]



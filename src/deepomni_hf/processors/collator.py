# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Padding of 8-stream sequences, and the data collator that batches DeepOmni training examples for `Trainer`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .layout import IGNORE_INDEX, drop_filler_targets


def as_stream_array(sequence: Any, name: str = "input_ids") -> np.ndarray:
    """A `[positions, 8]` int64 array from a tensor, array or nested list (a leading batch axis of 1 is dropped)."""
    if isinstance(sequence, torch.Tensor):
        sequence = sequence.detach().cpu().numpy()
    array = np.asarray(sequence)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.size == 0 and array.ndim < 2:
        array = array.reshape(0, 8)
    if array.ndim != 2 or array.shape[-1] != 8:
        raise ValueError(
            f"{name} must have shape [positions, 8] (7 audio slots then text, as DeepOmniProcessor builds it); "
            f"got {tuple(array.shape)}."
        )
    if not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise ValueError(f"{name} must hold integer ids, got dtype {array.dtype}.")
    return array.astype(np.int64, copy=False)


def pad_stream_sequences(
    sequences: Sequence[np.ndarray],
    pad_row: Sequence[int],
    padding_side: str = "right",
    pad_to_multiple_of: int | None = None,
    attention_masks: Sequence[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """
    Pads `[positions, 8]` sequences to one `[batch, max_positions, 8]` array.

    Args:
        sequences: the `[positions_b, 8]` int64 arrays.
        pad_row: the 8 ids that fill a padding position (`PAD_A` of each audio slot, then `PAD_T`; `-100` × 8 for
            labels).
        padding_side: `"right"` (training) or `"left"` (generation, so that every row ends at its last prompt token).
        pad_to_multiple_of: round the padded length up to a multiple of this.
        attention_masks: per sequence, its own `[positions_b]` mask or `None` for all ones.

    Returns:
        `(padded [batch, max_positions, 8], attention_mask [batch, max_positions])`, both int64.
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}.")
    lengths = [len(sequence) for sequence in sequences]
    max_length = max(lengths, default=0)
    if pad_to_multiple_of:
        max_length = -(-max_length // pad_to_multiple_of) * pad_to_multiple_of
    padded = np.empty((len(sequences), max_length, 8), dtype=np.int64)
    padded[:] = np.asarray(pad_row, dtype=np.int64)
    attention_mask = np.zeros((len(sequences), max_length), dtype=np.int64)
    for row, (sequence, length) in enumerate(zip(sequences, lengths)):
        window = slice(0, length) if padding_side == "right" else slice(max_length - length, max_length)
        padded[row, window] = sequence
        own_mask = None if attention_masks is None else attention_masks[row]
        attention_mask[row, window] = 1 if own_mask is None else np.asarray(own_mask, dtype=np.int64).reshape(-1)
    return padded, attention_mask


@dataclass
class DeepOmniDataCollator:
    """
    Batches DeepOmni examples for [`~transformers.Trainer`] (pass it as `data_collator`).

    Each example is a mapping with `input_ids` `[positions, 8]` and optionally `labels` `[positions, 8]`,
    `attention_mask` `[positions]` and `input_features` `[num_audios, 80, 3000]` (the output of
    `DeepOmniProcessor.apply_chat_template(..., output_labels=True)` for one conversation, with or without its batch
    axis of 1, as tensors, arrays or lists) — or, instead of `input_features`, Whisper's cached output
    `audio_encoder_outputs` `[num_audios, frames, d_model]` (`deepomni_hf.training.audio_cache`), zero-padded here to
    the longest in the batch. Other keys are ignored.

    Padding positions hold `PAD_A` in every audio slot and `PAD_T` in the text stream, `-100` in all 8 label streams
    and 0 in the attention mask. Labels that hold a filler (`PAD_T` in the text stream, `PAD_A` or a speaker token in
    an audio slot) become `-100` (DESIGN §3 targets), so examples laid out before fillers stopped being targets train
    on the same targets as new ones. The `input_features` of all examples are concatenated in example order, which is the
    order in which the model matches them to the speech spans (row by row).

    Args:
        processor ([`DeepOmniProcessor`]): gives the padding ids (`processor.pad_row`) and the filler ids
            (`processor.vocabulary`).
        padding_side (`str`, *optional*, defaults to `"right"`): `"right"` for training, `"left"` for generation.
        pad_to_multiple_of (`int`, *optional*): round the batch length up to a multiple of this (tensor cores).
    """

    processor: Any
    padding_side: str = "right"
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("DeepOmniDataCollator got an empty list of examples.")
        input_ids = [as_stream_array(example["input_ids"]) for example in examples]
        masks = [_optional_mask(example.get("attention_mask")) for example in examples]
        padded, attention_mask = pad_stream_sequences(
            input_ids, self.processor.pad_row, self.padding_side, self.pad_to_multiple_of, masks
        )
        batch = {"input_ids": torch.from_numpy(padded), "attention_mask": torch.from_numpy(attention_mask)}

        if any(example.get("labels") is not None for example in examples):
            labels = []
            for example, ids in zip(examples, input_ids):
                if example.get("labels") is None:
                    labels.append(np.full_like(ids, IGNORE_INDEX))
                    continue
                example_labels = as_stream_array(example["labels"], "labels")
                if example_labels.shape != ids.shape:
                    raise ValueError(f"labels {example_labels.shape} and input_ids {ids.shape} of an example differ.")
                labels.append(drop_filler_targets(example_labels, self.processor.vocabulary))
            padded_labels, _ = pad_stream_sequences(
                labels, [IGNORE_INDEX] * 8, self.padding_side, self.pad_to_multiple_of
            )
            batch["labels"] = torch.from_numpy(padded_labels)

        features = [_as_features(example.get("input_features")) for example in examples]
        features = [f for f in features if f is not None and f.shape[0] > 0]
        cached = [_as_features(example.get("audio_encoder_outputs"), "audio_encoder_outputs") for example in examples]
        cached = [c for c in cached if c is not None and c.shape[0] > 0]
        if features and cached:
            raise ValueError(
                "A batch mixes examples with input_features and examples with cached audio_encoder_outputs; lay the "
                "whole dataset out one way (deepomni_hf.training.audio_cache)."
            )
        if features:
            batch["input_features"] = torch.cat(features, dim=0)
        if cached:
            batch["audio_encoder_outputs"] = pad_frames(cached)
        return batch


def pad_frames(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """`[num_audios_i, frames_i, dim]` tensors → one `[sum num_audios, max frames, dim]` tensor, zero-padded on the
    right (frames beyond a span's length are never read)."""
    length = max(output.shape[1] for output in outputs)
    return torch.cat([torch.nn.functional.pad(o, (0, 0, 0, length - o.shape[1])) for o in outputs], dim=0)


def _optional_mask(mask: Any) -> np.ndarray | None:
    if mask is None:
        return None
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask).reshape(-1)


def _as_features(features: Any, name: str = "input_features") -> torch.Tensor | None:
    if features is None:
        return None
    features = features if isinstance(features, torch.Tensor) else torch.as_tensor(np.asarray(features))
    if features.dim() == 2:
        features = features.unsqueeze(0)  # one audio's [80, 3000] (or [frames, d_model])
    if features.dim() != 3:
        shape = "[num_audios, mel_bins, frames]" if name == "input_features" else "[num_audios, frames, d_model]"
        raise ValueError(f"{name} must be {shape}, got {tuple(features.shape)}.")
    return features if features.is_floating_point() else features.float()


__all__ = ["IGNORE_INDEX", "DeepOmniDataCollator", "as_stream_array", "pad_frames", "pad_stream_sequences"]

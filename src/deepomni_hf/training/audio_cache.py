# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Whisper's encoder output, cached in a laid-out dataset.

Whisper is frozen in every stage (DESIGN §5), so its output for an example never changes during training, yet every
step would run it again over the 30-second padded input (`[80, 3000]` log-mel → 1,500 frames) although a speech span
reads only its first `n = floor(samples / 16000 · 50) + 1` frames. [`cache_audio_encoder_outputs`] runs the encoder
once per spoken turn and stores those `n` frames as an `audio_encoder_outputs` column (`[num_audios, n, d_model]`,
float32) in place of `input_features`; the collator pads them and the model feeds them to the adapter without the
Whisper pass (`DeepOmniForConditionalGeneration.forward(audio_encoder_outputs=...)`). The adapter works frame by frame,
so the loss is the same as with `input_features` (tested to float rounding of batched vs single encoder runs).

The cache belongs to one Whisper: `audio_encoder_cache.json` next to the saved dataset records a hash of the encoder
weights, and [`check_audio_encoder_cache`] refuses a model whose encoder differs. The encoder runs in eval mode (no
dropout): the cache equals the training-time pass when Whisper's dropout is 0 (as in every released Whisper).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

CACHE_COLUMN = "audio_encoder_outputs"
CACHE_INFO_NAME = "audio_encoder_cache.json"


def speech_span_frames(input_ids: np.ndarray, config) -> list[int]:
    """Frames each user-speech span of one laid-out example reads (`[positions, 8]` ids), in order of appearance."""
    ids = np.asarray(input_ids)
    placeholder = ids[:, -1] == config.audio_placeholder_id
    starts = np.flatnonzero(placeholder & (ids[:, 0] == config.audio_token_id("BOA", 0)))
    ends = np.flatnonzero(placeholder & (ids[:, 0] == config.audio_token_id("EOA", 0)))
    if len(starts) != len(ends) or np.any(ends <= starts):
        raise ValueError("input_ids hold unmatched BOA / EOA speech-span markers.")
    return [int(end - start - 1) for start, end in zip(starts, ends)]


def audio_encoder_fingerprint(model) -> str:
    """SHA-256 of the audio tower's weights (names, dtypes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.model.audio_tower.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@torch.inference_mode()
def cache_audio_encoder_outputs(dataset, model, batch_size: int = 8, desc: str = "cache Whisper outputs"):
    """
    A laid-out dataset (`input_ids`, `labels`, `input_features`, ...) → the same rows with `audio_encoder_outputs`
    (Whisper's output for the frames each speech span reads; `None` for rows without speech) instead of
    `input_features`.

    Args:
        dataset: a `datasets.Dataset` in the laid-out form of `deepomni_hf.training.data`.
        model: a `DeepOmniForConditionalGeneration` (only its audio tower runs, in eval mode).
        batch_size: rows whose spoken turns are encoded together.
    """
    from datasets import Features, List, Value

    if "input_features" not in dataset.column_names:
        raise ValueError(
            f"Caching Whisper's output needs laid-out rows with input_features; got {dataset.column_names}."
        )
    tower = model.model.audio_tower
    was_training = tower.training
    tower.eval()
    device, dtype = next(tower.parameters()).device, next(tower.parameters()).dtype

    def encode(batch):
        frames, features = [], []
        for ids, row_features in zip(batch["input_ids"], batch["input_features"]):
            spans = [] if row_features is None else speech_span_frames(ids, model.config)
            if row_features is not None and len(spans) != len(row_features):
                raise ValueError(f"A row holds {len(spans)} speech span(s) but {len(row_features)} input_features.")
            frames.append(spans)
            features.extend(np.asarray(f, dtype=np.float32) for f in row_features or [])
        outputs = []
        if features:
            stacked = torch.from_numpy(np.stack(features)).to(device, dtype)
            encoded = tower(stacked).last_hidden_state.float().cpu().numpy()
            index = 0
            for spans in frames:
                outputs.append([encoded[index + i, :n] for i, n in enumerate(spans)] if spans else None)
                index += len(spans)
        else:
            outputs = [None] * len(frames)
        return {CACHE_COLUMN: outputs}

    features = Features({
        **{name: dataset.features[name] for name in dataset.column_names if name != "input_features"},
        CACHE_COLUMN: List(List(List(Value("float32")))),
    })  # fmt: skip
    try:
        return dataset.map(encode, batched=True, batch_size=batch_size, remove_columns=["input_features"],
                           features=features, desc=desc)  # fmt: skip
    finally:
        tower.train(was_training)


def save_cached_dataset(dataset, output: str | os.PathLike, model) -> None:
    """Saves a dataset made by [`cache_audio_encoder_outputs`] (temporary folder, then rename) with
    `audio_encoder_cache.json` (the encoder's fingerprint)."""
    output = Path(output)
    tmp = output.with_name(output.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    dataset.save_to_disk(str(tmp))
    info = {"audio_encoder_sha256": audio_encoder_fingerprint(model), "column": CACHE_COLUMN,
            "d_model": model.config.audio_config.d_model}  # fmt: skip
    (tmp / CACHE_INFO_NAME).write_text(json.dumps(info, indent=2) + "\n")
    if output.exists():
        shutil.rmtree(output)
    os.replace(tmp, output)


def check_audio_encoder_cache(data_dir: str | os.PathLike, model) -> bool:
    """`True` when `data_dir` holds cached Whisper outputs made with `model`'s encoder, `False` when it holds none;
    raises `ValueError` when they were made with another encoder."""
    info_path = Path(data_dir) / CACHE_INFO_NAME
    if not info_path.is_file():
        return False
    info = json.loads(info_path.read_text())
    if info.get("audio_encoder_sha256") != audio_encoder_fingerprint(model):
        raise ValueError(
            f"{data_dir} caches the output of another Whisper encoder than this model's; lay the data out again "
            "with this checkpoint (deepomni layout-dataset --cache-audio-encoder --model CKPT)."
        )
    return True


__all__ = [
    "CACHE_COLUMN",
    "CACHE_INFO_NAME",
    "audio_encoder_fingerprint",
    "cache_audio_encoder_outputs",
    "check_audio_encoder_cache",
    "save_cached_dataset",
    "speech_span_frames",
]

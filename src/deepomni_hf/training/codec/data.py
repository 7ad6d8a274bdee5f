# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Speech for codec training: sources → one int16 bank on disk → reproducible random crops.

A source is a folder of audio files (searched recursively), a JSON-lines manifest (`{"audio": path, "text": ...}`
per line, paths relative to the manifest), or a `datasets` folder saved with `save_to_disk` (its audio column).
Every clip is loaded once, resampled to the codec's rate and appended to `bank.npy` (int16, memory-mapped when read),
so a run over hours of speech needs little RAM and a resumed run reads exactly the same samples. The crops of step
`s` are a pure function of `(seed, s, process)`, so the data order after a resume is the uninterrupted run's.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ...processors.audio import load_speech


AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")


@dataclass
class SpeechClip:
    audio: object  # anything `load_speech` reads: a path, a `datasets` audio value, ...
    text: str | None = None
    name: str = ""


def read_source(source: str | os.PathLike, audio_column: str = "audio", text_column: str = "text",
                split: str | None = None) -> list[SpeechClip]:  # fmt: skip
    """The clips of one source (see the module docstring), in a fixed order."""
    path = Path(source)
    if path.is_file() and path.suffix in (".jsonl", ".json"):
        clips = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if "audio" not in row:
                    raise ValueError(f"{path}:{number}: a manifest line needs an `audio` path, got keys {sorted(row)}.")
                audio = row["audio"] if os.path.isabs(row["audio"]) else str(path.parent / row["audio"])
                clips.append(SpeechClip(audio, row.get("text"), os.path.basename(row["audio"])))
        return clips
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        import datasets

        dataset = datasets.load_from_disk(str(path))
        if isinstance(dataset, datasets.DatasetDict):
            if split is None and len(dataset) != 1:
                raise ValueError(f"{path} holds splits {list(dataset)}: choose one with --split.")
            dataset = dataset[split or next(iter(dataset))]
        if audio_column not in dataset.column_names:
            raise ValueError(f"{path} has no audio column {audio_column!r} (columns: {dataset.column_names}); "
                             "pass --audio-column.")  # fmt: skip
        texts = dataset[text_column] if text_column in dataset.column_names else [None] * len(dataset)
        return [SpeechClip(row[audio_column], text, f"{path.name}_{index:06d}")
                for index, (row, text) in enumerate(zip(dataset, texts))]  # fmt: skip
    if path.is_dir():
        files = sorted(f for f in glob.glob(str(path / "**" / "*"), recursive=True) if f.lower().endswith(AUDIO_EXTENSIONS))
        if not files:
            raise ValueError(f"{path} holds no audio files ({', '.join(AUDIO_EXTENSIONS)}).")
        return [SpeechClip(f, None, os.path.relpath(f, path)) for f in files]
    raise ValueError(f"{source} is not an audio folder, a .jsonl manifest or a `datasets` folder (save_to_disk).")


def load_waveform(clip: SpeechClip, sampling_rate: int) -> np.ndarray:
    """Mono float32 waveform of a clip at `sampling_rate`."""
    return load_speech(clip.audio, target_sampling_rate=sampling_rate, silence_threshold=None)


class AudioBank:
    """All training audio at the codec's rate, int16, in `folder/bank.npy` with clip offsets in `folder/offsets.npy`."""

    def __init__(self, folder: str | os.PathLike, source_weights: list[float] | None = None):
        folder = Path(folder)
        self.samples = np.load(folder / "bank.npy", mmap_mode="r")
        self.offsets = np.load(folder / "offsets.npy")
        self.lengths = np.diff(self.offsets)
        self.sources = np.load(folder / "sources.npy")  # source index of every clip
        # Every second of audio equally likely, unless sources have weights: then source s gives weight_s / sum of
        # the crops, and its seconds are equally likely among themselves.
        weights = np.maximum(self.lengths, 1).astype(np.float64)
        if source_weights is not None:
            num_sources = int(self.sources.max()) + 1
            if len(source_weights) != num_sources or min(source_weights) < 0 or sum(source_weights) <= 0:
                raise ValueError(f"Need {num_sources} non-negative source weights (one per --data), got {source_weights}.")
            totals = np.bincount(self.sources, weights=weights, minlength=num_sources)
            weights = weights * np.asarray(source_weights, dtype=np.float64)[self.sources] / totals[self.sources]
        self.probabilities = weights / weights.sum()

    @classmethod
    def build(cls, folder: str | os.PathLike, sources: list[str], sampling_rate: int,
              source_weights: list[float] | None = None, **source_kwargs) -> "AudioBank":  # fmt: skip
        """Loads every clip of `sources` once into the bank (skipped when the bank exists: a resumed run reuses it)."""
        folder = Path(folder)
        if not (folder / "offsets.npy").exists():
            clips, clip_sources = [], []
            for index, source in enumerate(sources):
                clips += read_source(source, **source_kwargs)
                clip_sources += [index] * (len(clips) - len(clip_sources))
            if not clips:
                raise ValueError(f"No training audio in {sources}.")
            folder.mkdir(parents=True, exist_ok=True)
            offsets, pieces = [0], []
            for clip in tqdm(clips, desc="loading training audio", mininterval=5):
                waveform = load_waveform(clip, sampling_rate)
                pieces.append(np.clip(np.round(waveform * 32767), -32768, 32767).astype(np.int16))
                offsets.append(offsets[-1] + len(waveform))
            np.save(folder / "sources.npy", np.asarray(clip_sources, dtype=np.int64))
            np.save(folder / "bank.tmp.npy", np.concatenate(pieces))
            os.replace(folder / "bank.tmp.npy", folder / "bank.npy")
            np.save(folder / "offsets.tmp.npy", np.asarray(offsets, dtype=np.int64))
            os.replace(folder / "offsets.tmp.npy", folder / "offsets.npy")  # last: marks the bank complete
        return cls(folder, source_weights)

    @property
    def seconds(self) -> float:
        return float(self.offsets[-1])

    def batch(self, step: int, batch_size: int, segment: int, seed: int, process: int = 0) -> torch.Tensor:
        """`[batch_size, 1, segment]` float crops for `step`: clips drawn with `self.probabilities`, a uniform start
        inside the clip, zeros after a clip shorter than `segment`."""
        rng = np.random.default_rng([seed, step, process])
        picks = rng.choice(len(self.lengths), size=batch_size, p=self.probabilities)
        batch = np.zeros((batch_size, 1, segment), dtype=np.float32)
        for row, clip in enumerate(picks):
            length = int(self.lengths[clip])
            start = int(rng.integers(0, max(length - segment, 0) + 1))
            piece = self.samples[self.offsets[clip] + start : self.offsets[clip] + min(start + segment, length)]
            batch[row, 0, : len(piece)] = piece.astype(np.float32) / 32767
        return torch.from_numpy(batch)


__all__ = ["AUDIO_EXTENSIONS", "AudioBank", "SpeechClip", "load_waveform", "read_source"]

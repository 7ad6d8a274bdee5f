# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Evaluation data: a `datasets` folder (`save_to_disk`), a Hub dataset id, a JSONL or CSV file, a folder of audio
files with `.txt` transcripts (the readers of `deepomni_hf.data`), or `asterisk` — the real recorded prompts of
Debian's `asterisk-core-sounds-en` with their transcripts (8 kHz, resampled to 16 kHz on reading).

Column names are configurable ([`Columns`]): `question` / `answer` (QA suites), `text` (asr: the transcript of
`audio`; tts: the sentence to speak), `audio` (the spoken question or the speech to recognise), optional
`answer_audio` (a spoken reference answer, for spoken-qa's code diagnostic), optional `type`
(per-type accuracy) and `id`. Questions without audio are spoken on the fly by a named voice of
`deepomni_hf.data.tts` (`flite:rms`, `espeak:en+f3`, `piper:joe`, ...), so held-out voices can be chosen.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EvaluationError, SkipItem


ASTERISK_SOURCE = "asterisk"
ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en")
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
# Longest question or recording the suites accept (Whisper's window).
MAX_AUDIO_SECONDS = 29.98


@dataclass
class Columns:
    """Column names of the evaluation data."""

    question: str = "question"
    answer: str = "answer"
    text: str = "text"
    audio: str = "audio"
    answer_audio: str = "answer_audio"
    type: str = "type"
    id: str = "id"


@dataclass
class EvalData:
    """Rows (a `datasets.Dataset`, audio not decoded) with where they came from and a content fingerprint."""

    rows: Any
    source: str
    fingerprint: str
    columns: Columns = field(default_factory=Columns)
    base_dir: str | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def column_names(self) -> list[str]:
        return list(self.rows.column_names)

    def has(self, column: str) -> bool:
        return column in self.rows.column_names

    def require(self, suite: str, *names: str, option: dict[str, str] | None = None) -> None:
        """Refuses the run with one line when a column the suite needs is missing."""
        missing = [name for name in names if not self.has(name)]
        if missing:
            flags = ", ".join((option or {}).get(name, f"--{name}-column") for name in missing)
            raise EvaluationError(
                f"{suite}: the data {self.source!r} has no column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))} (columns: "
                f"{self.column_names}); rename it or pass {flags}."
            )

    def item_id(self, index: int, row: dict) -> str:
        value = row.get(self.columns.id) if self.has(self.columns.id) else None
        return str(value) if value not in (None, "") else str(index)


def asterisk_dataset():
    """The recorded prompts of `asterisk-core-sounds-en` (Debian packages `asterisk-core-sounds-en-wav` and
    `asterisk-core-sounds-en`): columns `id`, `audio` (WAV path), `text` (transcript)."""
    import datasets

    if not ASTERISK_TRANSCRIPTS.is_file() or not ASTERISK_SOUNDS.is_dir():
        raise EvaluationError(
            "--data asterisk needs Debian's recordings: apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en"
        )
    rows = {"id": [], "audio": [], "text": []}
    with gzip.open(ASTERISK_TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            name, sep, text = line.partition(":")
            if not sep or line.startswith(";") or not text.strip():
                continue
            wav = ASTERISK_SOUNDS / f"{name.strip()}.wav"
            if wav.is_file():
                rows["id"].append(name.strip())
                rows["audio"].append(str(wav))
                rows["text"].append(" ".join(text.split()))
    return datasets.Dataset.from_dict(rows)


def read_data(source: Any, *, split: str | None = None, limit: int | None = None,
              columns: Columns | None = None) -> EvalData:  # fmt: skip
    """Reads evaluation rows from any accepted source (see the module docstring); the first `limit` rows only. Audio
    columns are not decoded here (a bad file skips its row later instead of failing the read)."""
    import datasets

    from ..data.builders import DatasetBuildError, _fingerprint, load_source

    columns = columns or Columns()
    if source is None:
        raise EvaluationError("No evaluation data: pass --data (a dataset folder, hub id, JSONL or CSV file, or asterisk).")
    base_dir = None
    if os.path.isfile(os.fspath(source)) and os.path.getsize(os.fspath(source)) == 0:
        raise EvaluationError(f"The data {str(source)!r} has no rows (the file is empty).")
    try:
        if str(source) == ASTERISK_SOURCE:
            rows = asterisk_dataset()
        else:
            rows, base_dir = load_source(source, split=split, audio_column=columns.audio)
    except DatasetBuildError as error:
        raise EvaluationError(str(error)) from None
    except Exception as error:  # datasets raises many kinds (missing file, offline hub, bad JSON): one line each
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EvaluationError(f"Cannot read the data {source!r}: {first}") from None
    for name, feature in rows.features.items():  # decode per row when needed (a bad file then skips only its row)
        if isinstance(feature, datasets.Audio) and feature.decode:
            rows = rows.cast_column(name, datasets.Audio(decode=False))
    if len(rows) == 0:
        raise EvaluationError(f"The data {source!r} has no rows.")
    # The fingerprint is the whole data's, so a larger --limit reuses the items a smaller one evaluated.
    fingerprint = _fingerprint(rows)
    if limit is not None:
        if limit < 1:
            raise EvaluationError(f"--limit must be at least 1, got {limit}.")
        rows = rows.select(range(min(limit, len(rows))))
    return EvalData(rows, str(source), fingerprint, columns, base_dir)


def row_text(row: dict, column: str, what: str) -> str:
    """The whitespace-normalised text of a cell; an empty cell skips the row (reason `empty_<what>`)."""
    value = row.get(column)
    text = " ".join(str(value).split()) if value is not None else ""
    if not text:
        raise SkipItem(f"empty_{what}", f"empty {what} (column {column!r})")
    return text


def row_audio(row: dict, data: EvalData, column: str | None = None, sampling_rate: int = 16000) -> np.ndarray:
    """The speech of a row's audio cell, mono float32 at 16 kHz; unreadable, empty, silent or too long audio skips
    the row (reasons `unreadable_audio`, `empty_audio`, `silent_audio`, `audio_too_long`). Another `column` or
    `sampling_rate` may be asked for."""
    from ..data.builders import _reason_of_audio_error, resolve_audio_cell
    from ..processors.audio import DeepOmniAudioError, load_speech

    value = resolve_audio_cell(row.get(column or data.columns.audio), data.base_dir)
    if value is None:
        raise SkipItem("unreadable_audio", "no audio (empty cell)")
    try:
        return load_speech(value, target_sampling_rate=sampling_rate, max_seconds=MAX_AUDIO_SECONDS)
    except DeepOmniAudioError as error:
        raise SkipItem(_reason_of_audio_error(str(error)), str(error)) from None
    except Exception as error:  # decoder errors of any kind: the file is unreadable
        raise SkipItem("unreadable_audio", f"{type(error).__name__}: {error}") from None


def synthesize_speech(text: str, synthesizer) -> np.ndarray:
    """`text` spoken by a `deepomni_hf.data.tts` voice, mono float32 at 16 kHz."""
    import torch

    from ..data.tts import SynthesisError
    from ..processors.audio import resample

    try:
        waveform, rate, _ = synthesizer.synthesize(text)
    except SynthesisError as error:
        raise SkipItem("synthesis_failed", str(error)) from None
    return resample(torch.from_numpy(np.asarray(waveform, np.float32)), rate, 16000).numpy()


def question_speech(row: dict, data: EvalData, synthesizer) -> tuple[np.ndarray, str]:
    """The spoken question of a row: its audio cell when the data has an audio column (an empty cell skips the row),
    else the `question` text spoken by `synthesizer`. Returns `(waveform at 16 kHz, where it came from)`."""
    if data.has(data.columns.audio):
        return row_audio(row, data), "audio column"
    if synthesizer is None:
        raise EvaluationError("The questions have no audio column: choose a voice to speak them with --tts (e.g. flite:rms).")
    return synthesize_speech(row_text(row, data.columns.question, "question"), synthesizer), synthesizer.voice_name


__all__ = [
    "ASTERISK_SOURCE",
    "Columns",
    "EvalData",
    "MAX_AUDIO_SECONDS",
    "asterisk_dataset",
    "question_speech",
    "read_data",
    "row_audio",
    "row_text",
    "synthesize_speech",
]

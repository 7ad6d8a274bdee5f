# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""What every suite receives ([`SuiteContext`]) and returns ([`SuiteResult`] of [`Metric`]s)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..candidates import Candidate
from ..readers import EvalData
from ..store import ItemStore, settings_key


@dataclass
class EvaluationOptions:
    """Settings shared by the suites (each is also a keyword of `evaluate` and a `deepomni evaluate` flag)."""

    max_new_tokens: int = 256  # speech replies (85 ms of audio per step once the staircase is full)
    text_max_new_tokens: int = 64  # text replies
    seed: int = 0
    tts: str = "flite:slt"  # voice that speaks text questions (and the tts suite's reference)
    voice: str | None = None  # speaker token of spoken replies (default: the processor's)
    answer_tts: str | None = None  # voice that speaks reference answers (spoken-qa's code diagnostic)
    text_file: str | None = None  # held-out text for perplexity
    num_replies: int = 3  # replies saved as WAV + text per checkpoint and suite
    routing_positions: str = "all"
    lm_eval: bool = False

    def __post_init__(self):
        for name in ("max_new_tokens", "text_max_new_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        if self.num_replies < 0:
            raise ValueError(f"num_replies must be >= 0, got {self.num_replies}.")


@dataclass
class Metric:
    """One number of one checkpoint: `name`, `value` (`None` when nothing could be measured), `n` (items it is
    computed over), `judge_wer_input` (for WER-based numbers: the judge's WER on the input speech), `unit`."""

    name: str
    value: float | None
    n: int
    judge_wer_input: float | None = None
    unit: str = ""
    higher_is_better: bool = True


@dataclass
class SuiteResult:
    suite: str
    metrics: list[Metric] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    per_type: dict[str, dict[str, float]] = field(default_factory=dict)  # type -> {metric: value, "n": count}
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class SuiteContext:
    """One suite run for one checkpoint (`role` is `"model"` or `"baseline"`)."""

    suite: str
    role: str
    candidate: Candidate
    data: EvalData | None
    options: EvaluationOptions
    store: ItemStore
    output_dir: Path
    judge_loader: Callable[[], Any]
    synthesizer_loader: Callable[[], Any]
    judge_name: str | None = None

    @property
    def judge(self):
        return self.judge_loader()

    @property
    def synthesizer(self):
        return self.synthesizer_loader()

    def key(self, *settings: Any, model_free: bool = False) -> Callable[[str], str]:
        """`key_of(item_id)` for the item store: the item's result depends on the checkpoint (unless `model_free`),
        the suite, `settings`, the data and the judge."""
        identity = None if model_free else self.candidate.identity
        fingerprint = self.data.fingerprint if self.data is not None else None
        base = (identity, self.suite, settings, fingerprint, self.judge_name)
        return lambda item_id: settings_key(*base, item_id)

    def rows(self):
        """`(item_id, (index, row))` pairs of the data, for [`ItemStore.run`]."""
        for index, row in enumerate(self.data.rows):
            yield self.data.item_id(index, row), (index, row)

    def reply_path(self, index: int, item_id: str) -> Path | None:
        """Where to save the reply to row `index` when it is among the first `num_replies` rows, else `None`."""
        if index >= self.options.num_replies:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in item_id)
        folder = self.output_dir / "replies" / self.role / self.suite
        folder.mkdir(parents=True, exist_ok=True)
        return folder / safe


def save_reply(path: Path | None, audio: np.ndarray | None, sampling_rate: int, lines: dict[str, Any]) -> None:
    """Writes `path.wav` (when there is audio) and `path.txt` (the `lines`), each through a temporary file."""
    if path is None:
        return
    if audio is not None and audio.size:
        import soundfile as sf

        tmp = path.parent / f"{path.name}.tmp.wav"
        sf.write(tmp, np.clip(audio, -1.0, 1.0), sampling_rate)
        os.replace(tmp, path.parent / f"{path.name}.wav")
    tmp = path.parent / f"{path.name}.tmp.txt"
    tmp.write_text("".join(f"{key}: {value}\n" for key, value in lines.items()), encoding="utf-8")
    os.replace(tmp, path.parent / f"{path.name}.txt")


def done(records: list[dict]) -> list[dict]:
    """The records that were evaluated (not skipped)."""
    return [r for r in records if "skipped" not in r]


def skipped(records: list[dict], suite: str, role: str) -> list[dict]:
    return [{"suite": suite, "role": role, "id": r["id"], "reason": r["skipped"], "message": r.get("message", "")}
            for r in records if "skipped" in r]  # fmt: skip


def share(records: list[dict], field_name: str) -> float | None:
    values = [bool(r[field_name]) for r in records if r.get(field_name) is not None]
    return sum(values) / len(values) if values else None



def judge_floor(ctx: SuiteContext, speech_of: Callable[[int, dict], np.ndarray], reference_of: Callable[[dict], str],
                what: str) -> tuple[float | None, int]:  # fmt: skip
    """The judge's WER on the input speech (`speech_of(index, row)` at 16 kHz against `reference_of(row)`): the floor
    of what the judge can see. Independent of the checkpoint, so a baseline run reuses it. Returns `(wer, n)`."""
    from ..metrics import word_error_rate

    def evaluate(item):
        index, row = item
        reference = reference_of(row)
        return {"reference": reference, "transcript": ctx.judge(speech_of(index, row), 16000)}

    records = ctx.store.run(ctx.rows(), ctx.key("judge-floor", what, ctx.options.tts, model_free=True), evaluate,
                            desc=f"{ctx.suite}: judge on {what}", total=len(ctx.data), role="judge", suite=ctx.suite)  # fmt: skip
    records = done(records)
    wer = word_error_rate([r["reference"] for r in records], [r["transcript"] for r in records])
    return wer.value, wer.pairs


__all__ = [
    "EvaluationOptions",
    "Metric",
    "SuiteContext",
    "SuiteResult",
    "done",
    "judge_floor",
    "save_reply",
    "share",
    "skipped",
]

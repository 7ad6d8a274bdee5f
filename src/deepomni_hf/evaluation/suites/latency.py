# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`latency`: time to first audio and real-time factor of streamed spoken replies, as `benchmarks/latency.py` defines
them: TTFA runs from the end of the user's speech (the call) to the first output audio sample, through Whisper
features, prefill, the staircase steps and the streaming codec decode; RTF = generation wall time / seconds of audio
produced. Medians over the questions; the device is named in the results."""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..candidates import device_name
from ..readers import question_speech
from .base import Metric, SuiteContext, SuiteResult, done, skipped


SUITE = "latency"


def run(ctx: SuiteContext) -> SuiteResult:
    from ...pipelines import SpeechToSpeechPipeline

    data, options = ctx.data, ctx.options
    columns = data.columns
    if not data.has(columns.audio):
        data.require(SUITE, columns.question, option={columns.question: "--question-column (or --audio-column)"})
    ctx.candidate.require_codec(SUITE)
    synthesizer = None if data.has(columns.audio) else ctx.synthesizer
    pipe = SpeechToSpeechPipeline(model=ctx.candidate.model, processor=ctx.candidate.processor)
    device = device_name(ctx.candidate.device)

    def evaluate(item):
        index, row = item
        speech, _ = question_speech(row, data, synthesizer)
        start = time.perf_counter()  # the user's speech has just ended
        first_audio, samples, rate = None, 0, ctx.candidate.sampling_rate
        for chunk in pipe(speech, sampling_rate=16000, stream=True, seed=options.seed + index,
                          max_new_tokens=options.max_new_tokens, voice=options.voice):  # fmt: skip
            if first_audio is None and np.asarray(chunk["audio"]).size:
                first_audio = time.perf_counter() - start
            samples += np.asarray(chunk["audio"]).size
        total = time.perf_counter() - start
        seconds = samples / rate
        return {"ttfa_s": first_audio, "generation_s": total, "audio_seconds": seconds,
                "rtf": total / seconds if seconds else None}  # fmt: skip

    records = ctx.store.run(ctx.rows(), ctx.key(options.max_new_tokens, options.seed, options.voice, device), evaluate,
                            desc=f"{SUITE} [{ctx.role}]", total=len(data), role=ctx.role, suite=SUITE)  # fmt: skip
    ok = done(records)

    def median(name):
        values = [r[name] for r in ok if r.get(name) is not None]
        return (statistics.median(values), len(values)) if values else (None, 0)

    result = SuiteResult(SUITE, skipped=skipped(records, SUITE, ctx.role))
    result.metrics = [
        Metric("ttfa_s", *median("ttfa_s"), unit="s", higher_is_better=False),
        Metric("rtf", *median("rtf"), higher_is_better=False),
    ]
    result.notes.append(f"latency measured on {device}")
    return result

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`tts`: word error rate of the speech the `deepomni-tts` pipeline makes from text, transcribed by the judge. The
floor beside it is the judge's WER on the same sentences spoken by a reference voice: the data's audio column when
there is one, else the `--tts` voice."""

from __future__ import annotations

import time

from ..metrics import mean, word_error_rate
from ..readers import row_audio, row_text, synthesize_speech
from .base import Metric, SuiteContext, SuiteResult, done, judge_floor, save_reply, skipped


SUITE = "tts"


def run(ctx: SuiteContext) -> SuiteResult:
    from ...pipelines import TextToSpeechPipeline

    data, options = ctx.data, ctx.options
    columns = data.columns
    data.require(SUITE, columns.text)
    ctx.candidate.require_codec(SUITE)
    pipe = TextToSpeechPipeline(model=ctx.candidate.model, processor=ctx.candidate.processor)

    def evaluate(item):
        index, row = item
        text = row_text(row, columns.text, "text")
        start = time.perf_counter()
        out = pipe(text, seed=options.seed + index, max_new_tokens=options.max_new_tokens, voice=options.voice)
        model_s = time.perf_counter() - start
        start = time.perf_counter()
        transcript = ctx.judge(out["audio"], out["sampling_rate"])
        record = {"text": text, "transcript": transcript, "audio_seconds": out["audio"].size / out["sampling_rate"],
                  "model_s": model_s, "judge_s": time.perf_counter() - start}  # fmt: skip
        save_reply(ctx.reply_path(index, data.item_id(index, row)), out["audio"], out["sampling_rate"],
                   {"text": text, "transcript": transcript})  # fmt: skip
        return record

    records = ctx.store.run(ctx.rows(), ctx.key(options.max_new_tokens, options.seed, options.voice), evaluate,
                            desc=f"{SUITE} [{ctx.role}]", total=len(data), role=ctx.role, suite=SUITE)  # fmt: skip
    ok = done(records)
    if data.has(columns.audio):
        floor, floor_n = judge_floor(ctx, lambda index, row: row_audio(row, data),
                               lambda row: row_text(row, columns.text, "text"), "the reference audio")  # fmt: skip
    else:
        synthesizer = ctx.synthesizer
        floor, floor_n = judge_floor(ctx, lambda index, row: synthesize_speech(row_text(row, columns.text, "text"), synthesizer),
                               lambda row: row_text(row, columns.text, "text"), synthesizer.voice_name)  # fmt: skip
    wer = word_error_rate([r["text"] for r in ok], [r["transcript"] for r in ok])
    result = SuiteResult(SUITE, skipped=skipped(records, SUITE, ctx.role))
    result.metrics = [
        Metric("tts_wer", wer.value, wer.pairs, judge_wer_input=floor, higher_is_better=False),
        Metric("audio_seconds", mean([r["audio_seconds"] for r in ok]), len(ok), unit="s"),
        Metric("judge_wer_input", floor, floor_n, higher_is_better=False),
    ]
    return result

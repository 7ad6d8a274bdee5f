# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`asr`: word error rate of the `deepomni-asr` pipeline on speech with transcripts (e.g. `--data asterisk`, the real
recorded prompts of Debian's `asterisk-core-sounds-en`), beside the judge's WER on the same speech."""

from __future__ import annotations

import time

from ..metrics import word_error_rate
from ..readers import row_audio, row_text
from .base import Metric, SuiteContext, SuiteResult, done, judge_floor, save_reply, skipped


SUITE = "asr"


def run(ctx: SuiteContext) -> SuiteResult:
    from ...pipelines import SpeechRecognitionPipeline

    data, options = ctx.data, ctx.options
    columns = data.columns
    data.require(SUITE, columns.audio, columns.text)
    pipe = SpeechRecognitionPipeline(model=ctx.candidate.model, processor=ctx.candidate.processor)

    def evaluate(item):
        index, row = item
        reference = row_text(row, columns.text, "transcript")
        speech = row_audio(row, data)
        start = time.perf_counter()
        text = pipe(speech, sampling_rate=16000, seed=options.seed + index,
                    max_new_tokens=options.text_max_new_tokens)["text"]  # fmt: skip
        record = {"reference": reference, "text": " ".join(text.split()), "model_s": time.perf_counter() - start}
        save_reply(ctx.reply_path(index, data.item_id(index, row)), None, 0, {"reference": reference, "text": text})
        return record

    records = ctx.store.run(ctx.rows(), ctx.key(options.text_max_new_tokens, options.seed), evaluate,
                            desc=f"{SUITE} [{ctx.role}]", total=len(data), role=ctx.role, suite=SUITE)  # fmt: skip
    ok = done(records)
    floor, floor_n = judge_floor(ctx, lambda index, row: row_audio(row, data),
                           lambda row: row_text(row, columns.text, "transcript"), "the recordings")  # fmt: skip
    wer = word_error_rate([r["reference"] for r in ok], [r["text"] for r in ok])
    result = SuiteResult(SUITE, skipped=skipped(records, SUITE, ctx.role))
    result.metrics = [
        Metric("asr_wer", wer.value, wer.pairs, judge_wer_input=floor, higher_is_better=False),
        Metric("judge_wer_input", floor, floor_n, higher_is_better=False),
    ]
    return result

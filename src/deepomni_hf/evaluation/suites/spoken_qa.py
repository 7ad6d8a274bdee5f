# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`spoken-qa`: a spoken question in, a text and a spoken answer out (DESIGN §6).

Per checkpoint: text-answer accuracy; speech-answer accuracy (the judge's transcript of the spoken answer, matched the
same way); consistency WER (the transcript against the model's own text answer); the share of replies that end on
their own (`EOT`, and `EOA` in every audio slot) within `max_new_tokens`; the mean answer audio seconds; and the
model and judge seconds per item. With reference answer audio (an `answer_audio` column, or `answer_tts`: the
answers spoken by a named voice, e.g. the voice the model was trained to answer in), the answer code error rate: the
edit distance of the generated SNAC codes to the codec's codes of the reference answer, slot by slot, over the
reference's code count — a diagnostic that does not depend on the codec's decoder. The judge's WER on the spoken questions (against their text) is the floor reported
beside every WER-based number.
"""

from __future__ import annotations

import time

import numpy as np

from ..candidates import reference_codes, respond
from ..errors import EvaluationError, SkipItem
from ..metrics import answer_is_correct, code_error_rate, mean, word_error_rate
from ..readers import question_speech, row_audio, row_text
from .base import Metric, SuiteContext, SuiteResult, done, judge_floor, save_reply, share, skipped


SUITE = "spoken-qa"


def _per_type(records: list[dict], type_column_present: bool) -> dict[str, dict[str, float]]:
    if not type_column_present:
        return {}
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(str(record.get("type") or "(none)"), []).append(record)
    return {
        name: {"text_accuracy": share(group, "text_correct"), "speech_accuracy": share(group, "speech_correct"),
               "n": len(group)}  # fmt: skip
        for name, group in sorted(groups.items())
    }


def run(ctx: SuiteContext) -> SuiteResult:
    data, options = ctx.data, ctx.options
    columns = data.columns
    data.require(SUITE, columns.answer, option={columns.answer: "--answer-column"})
    if not data.has(columns.audio):
        data.require(SUITE, columns.question, option={columns.question: "--question-column (or --audio-column)"})
    ctx.candidate.require_codec(SUITE)
    has_type = data.has(columns.type)
    synthesizer = None if data.has(columns.audio) else ctx.synthesizer
    answer_voice = None
    if not data.has(columns.answer_audio) and options.answer_tts:
        from ...data.tts import get_synthesizer

        try:
            answer_voice = get_synthesizer(options.answer_tts)
        except Exception as error:  # unknown backend or a voice that cannot load
            raise EvaluationError(f"--answer-tts {options.answer_tts!r}: {error}") from None
    with_codes = data.has(columns.answer_audio) or answer_voice is not None

    def code_errors(row: dict, answer: str, codes) -> tuple[int | None, int | None]:
        try:
            if data.has(columns.answer_audio):
                rate = ctx.candidate.sampling_rate
                wave = row_audio(row, data, columns.answer_audio, sampling_rate=rate)
            else:
                wave, rate, _ = answer_voice.synthesize(answer)
        except SkipItem:
            return None, None  # no usable reference: the item still counts for the other metrics
        generated = codes if codes is not None else np.zeros((0, 7), np.int64)
        rate_ = code_error_rate(reference_codes(ctx.candidate, wave, rate), generated)
        return rate_.errors, rate_.reference_words

    def evaluate(item):
        index, row = item
        answer = row_text(row, columns.answer, "answer")
        speech, source = question_speech(row, data, synthesizer)
        messages = [{"role": "user", "content": [{"type": "audio", "audio": speech, "sampling_rate": 16000}]}]
        start = time.perf_counter()
        reply = respond(ctx.candidate, messages, "speech", voice=options.voice, seed=options.seed + index,
                        max_new_tokens=options.max_new_tokens)  # fmt: skip
        model_s = time.perf_counter() - start
        start = time.perf_counter()
        transcript = ctx.judge(reply.audio, reply.sampling_rate)
        judge_s = time.perf_counter() - start
        record = {
            "type": row.get(columns.type) if has_type else None,
            "question": row.get(columns.question),
            "question_audio": source,
            "answer": answer,
            "text": reply.text,
            "transcript": transcript,
            "text_correct": answer_is_correct(answer, reply.text),
            "speech_correct": answer_is_correct(answer, transcript),
            "finished": reply.finished,
            "steps": reply.steps,
            "audio_seconds": reply.audio_seconds,
            "model_s": model_s,
            "judge_s": judge_s,
        }
        if with_codes:
            record["code_errors"], record["code_reference_length"] = code_errors(row, answer, reply.codes)
        save_reply(ctx.reply_path(index, data.item_id(index, row)), reply.audio, reply.sampling_rate,
                   {key: record[key] for key in ("question", "answer", "text", "transcript", "finished")})  # fmt: skip
        return record

    settings = (options.max_new_tokens, options.seed, options.voice, options.tts, options.answer_tts if with_codes else None)
    records = ctx.store.run(ctx.rows(), ctx.key(*settings), evaluate, desc=f"{SUITE} [{ctx.role}]",
                            total=len(data), role=ctx.role, suite=SUITE)  # fmt: skip
    ok = done(records)
    floor, floor_n = None, 0
    if data.has(columns.question):

        def speech_of(index, row):
            return question_speech(row, data, synthesizer)[0]

        floor, floor_n = judge_floor(ctx, speech_of, lambda row: row_text(row, columns.question, "question"), "questions")
    consistency = word_error_rate([r["text"] for r in ok], [r["transcript"] for r in ok])
    result = SuiteResult(SUITE, skipped=skipped(records, SUITE, ctx.role), per_type=_per_type(ok, has_type))
    n = len(ok)
    result.metrics = [
        Metric("text_accuracy", share(ok, "text_correct"), n),
        Metric("speech_accuracy", share(ok, "speech_correct"), n, judge_wer_input=floor),
        Metric("consistency_wer", consistency.value, consistency.pairs, judge_wer_input=floor, higher_is_better=False),
        Metric("ended_on_own", share(ok, "finished"), n),
        Metric("answer_audio_seconds", mean([r["audio_seconds"] for r in ok]), n, unit="s"),
        Metric("model_seconds_per_item", mean([r["model_s"] for r in ok]), n, unit="s", higher_is_better=False),
        Metric("judge_seconds_per_item", mean([r["judge_s"] for r in ok]), n, unit="s", higher_is_better=False),
        Metric("judge_wer_input", floor, floor_n, higher_is_better=False),
    ]
    if with_codes:
        coded = [r for r in ok if r.get("code_reference_length")]
        total = sum(r["code_reference_length"] for r in coded)
        value = sum(r["code_errors"] for r in coded) / total if total else None
        result.metrics.append(Metric("answer_code_error_rate", value, len(coded), higher_is_better=False))
    if consistency.skipped_empty_references:
        result.notes.append(f"consistency WER leaves out {consistency.skipped_empty_references} empty text answer(s)")
    return result

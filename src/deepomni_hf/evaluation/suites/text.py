# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`text`: the text ability of the backbone (DESIGN §6).

* Closed-book QA: the written question in, a greedy text reply out; accuracy (normalised reference equal to or
  contained in the normalised reply) and the mean reply length in words.
* Perplexity of the text stream on a held-out text file (`text_file`, one passage per line): `exp` of the mean
  cross-entropy of the text-stream logits over every next text token, the audio slots holding `PAD_A`.
With a baseline, the report adds the relative drop `(baseline − model) / baseline` of the accuracy.
The exported text model (`deepomni export-text-model`) runs under lm-evaluation-harness: see `lm_eval_harness.py`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from ..candidates import respond
from ..errors import EvaluationError, SkipItem
from ..metrics import answer_is_correct, mean
from ..readers import row_text
from .base import Metric, SuiteContext, SuiteResult, done, save_reply, share, skipped
from .spoken_qa import _per_type


SUITE = "text"


def text_lines(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise EvaluationError(f"No text file at {path} (--text-file: held-out text, one passage per line).")
    lines = [" ".join(line.split()) for line in file.read_text(encoding="utf-8", errors="replace").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise EvaluationError(f"The text file {path} is empty.")
    return lines


def line_negative_log_likelihood(candidate, text: str) -> tuple[float, int]:
    """Summed next-token cross-entropy of the text stream over `text` (after the bos token) and the token count."""
    import torch
    import torch.nn.functional as F

    processor = candidate.processor
    bos = processor.tokenizer.bos_token or ""
    inputs = processor(text=bos + text, return_tensors="pt")
    ids = inputs["input_ids"].to(candidate.device)
    if ids.shape[1] < 2:
        raise SkipItem("too_short", "fewer than two tokens")
    with torch.no_grad():
        logits = candidate.model(input_ids=ids, attention_mask=inputs["attention_mask"].to(candidate.device)).logits
    targets = ids[0, 1:, -1]  # the text stream is the last of the 8
    nll = F.cross_entropy(logits[0, :-1].float(), targets, reduction="sum")
    return float(nll), int(targets.numel())


def run(ctx: SuiteContext) -> SuiteResult:
    data, options = ctx.data, ctx.options
    columns = data.columns
    data.require(SUITE, columns.question, columns.answer)
    has_type = data.has(columns.type)

    def evaluate(item):
        index, row = item
        question = row_text(row, columns.question, "question")
        answer = row_text(row, columns.answer, "answer")
        start = time.perf_counter()
        reply = respond(ctx.candidate, [{"role": "user", "content": question}], "text", seed=options.seed + index,
                        max_new_tokens=options.text_max_new_tokens)  # fmt: skip
        record = {"type": row.get(columns.type) if has_type else None, "question": question, "answer": answer,
                  "text": reply.text, "text_correct": answer_is_correct(answer, reply.text),
                  "reply_words": len(reply.text.split()), "finished": reply.finished,
                  "model_s": time.perf_counter() - start}  # fmt: skip
        save_reply(ctx.reply_path(index, data.item_id(index, row)), None, 0,
                   {key: record[key] for key in ("question", "answer", "text")})  # fmt: skip
        return record

    records = ctx.store.run(ctx.rows(), ctx.key(options.text_max_new_tokens, options.seed), evaluate,
                            desc=f"{SUITE} QA [{ctx.role}]", total=len(data), role=ctx.role, suite=SUITE)  # fmt: skip
    ok = done(records)
    result = SuiteResult(SUITE, skipped=skipped(records, SUITE, ctx.role), per_type=_per_type(ok, has_type))
    result.metrics = [
        Metric("text_accuracy", share(ok, "text_correct"), len(ok)),
        Metric("mean_reply_words", mean([r["reply_words"] for r in ok]), len(ok), unit="words"),
        Metric("ended_on_own", share(ok, "finished"), len(ok)),
    ]
    if options.text_file:
        lines = text_lines(options.text_file)

        def score(item):
            nll, tokens = line_negative_log_likelihood(ctx.candidate, item)
            return {"nll": nll, "tokens": tokens}

        key = ctx.key("perplexity", Path(options.text_file).resolve().as_posix(), len(lines), hash_text(lines))
        scored = done(ctx.store.run(((str(i), line) for i, line in enumerate(lines)), key, score,
                                    desc=f"{SUITE} perplexity [{ctx.role}]", total=len(lines), role=ctx.role,
                                    suite=SUITE))  # fmt: skip
        tokens = sum(r["tokens"] for r in scored)
        perplexity = math.exp(sum(r["nll"] for r in scored) / tokens) if tokens else None
        result.metrics.append(Metric("perplexity", perplexity, tokens, unit="per token", higher_is_better=False))
    else:
        result.notes.append("no perplexity: pass --text-file (held-out text, one passage per line)")
    return result


def hash_text(lines: list[str]) -> str:
    from ..store import settings_key

    return settings_key(lines)

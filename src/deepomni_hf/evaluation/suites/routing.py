# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`routing`: the modality load of every MoE layer (`deepomni_hf.training.modality_load`, DESIGN §4) on the evaluated
data — speech batches (the spoken question and the reference answer) and text batches (the written question and the
answer) — with its heat-map. The number reported is the routing separation: the mean over MoE layers of the total
variation distance `½ Σ_e |L_speech[l, e] − L_text[l, e]|` (0: both modalities use the experts alike; 1: disjoint)."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from ..errors import SkipItem
from ..readers import question_speech, row_text
from .base import Metric, SuiteContext, SuiteResult


SUITE = "routing"


def run(ctx: SuiteContext) -> SuiteResult:
    from ...training.expert_assignment import plot_modality_load
    from ...training.modality_load import compute_modality_load

    data, options = ctx.data, ctx.options
    columns = data.columns
    data.require(SUITE, columns.question, columns.answer)
    synthesizer = None if data.has(columns.audio) else ctx.synthesizer
    processor = ctx.candidate.processor
    speech_batches, text_batches, skips = [], [], []
    for index, row in enumerate(tqdm(data.rows, desc=f"{SUITE} inputs [{ctx.role}]", unit="item")):
        try:
            question, answer = row_text(row, columns.question, "question"), row_text(row, columns.answer, "answer")
            speech, _ = question_speech(row, data, synthesizer)
        except SkipItem as skip:
            skips.append({"suite": SUITE, "role": ctx.role, "id": data.item_id(index, row), "reason": skip.reason,
                          "message": skip.message})  # fmt: skip
            continue
        reply = {"role": "assistant", "content": answer}
        spoken = [{"role": "user", "content": [{"type": "audio", "audio": speech, "sampling_rate": 16000}]}, reply]
        speech_batches.append(dict(processor.apply_chat_template(spoken, return_tensors="pt")))
        text_batches.append(dict(processor.apply_chat_template([{"role": "user", "content": question}, reply],
                                                               return_tensors="pt")))  # fmt: skip
    result = SuiteResult(SUITE, skipped=skips)
    if not speech_batches:
        result.metrics = [Metric("routing_separation", None, 0)]
        return result
    load = compute_modality_load(ctx.candidate.model, tqdm(speech_batches, desc=f"{SUITE} speech [{ctx.role}]"),
                                 tqdm(text_batches, desc=f"{SUITE} text [{ctx.role}]"),
                                 positions=options.routing_positions)  # fmt: skip
    plots = ctx.output_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    load.save_json(ctx.output_dir / f"routing_{ctx.role}.json")
    plot_modality_load(load, None, plots / f"routing_{ctx.role}.png")
    result.files += [f"routing_{ctx.role}.json", f"plots/routing_{ctx.role}.png"]
    separation = float(np.mean(0.5 * np.abs(load.speech_load - load.text_load).sum(axis=1)))
    result.metrics = [Metric("routing_separation", separation, len(speech_batches))]
    return result

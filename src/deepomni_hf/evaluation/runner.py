# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""[`evaluate`]: run suites on a checkpoint (and a baseline) and write the results; `deepomni evaluate` calls it."""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .candidates import SPOKEN_SUITES, device_name, is_text_llm, load_candidate
from .errors import EvaluationError
from .judges import load_judge
from .readers import Columns, EvalData, read_data
from .results import SCHEMA, drop_rows, make_rows, versions, write_outputs
from .store import ItemStore
from .suites import JUDGED_SUITES, SUITES, EvaluationOptions, SuiteContext


@dataclass
class EvaluationResult:
    """What [`evaluate`] wrote: the `results.json` content (`results`), its folder, and how many items were computed
    now vs reused from an earlier run."""

    results: dict
    output_dir: Path
    computed: int = 0
    reused: int = 0
    rows: list[dict] = field(default_factory=list)

    def value(self, suite: str, metric: str, role: str = "model"):
        """The value of one metric (`None` when absent)."""
        for row in self.results["rows"]:
            if (row["role"], row["suite"], row["metric"]) == (role, suite, metric):
                return row["value"]
        return None


def parse_suites(suites: str | Sequence[str]) -> list[str]:
    names = [s.strip() for s in (suites.split(",") if isinstance(suites, str) else suites) if s and s.strip()]
    if not names:
        raise EvaluationError(f"No suite given: choose from {', '.join(SUITES)}.")
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        raise EvaluationError(f"Unknown suite {unknown[0]!r}: choose from {', '.join(SUITES)} (comma-separated).")
    return list(dict.fromkeys(names))


def data_sources(data: Any, suites: list[str]) -> dict[str, Any]:
    """The data of each suite from `data`: one source for all, a `{suite: source}` mapping, or a list of `source` /
    `suite=source` strings (the command line's repeated `--data`)."""
    if isinstance(data, Mapping):
        per_suite, default = dict(data), data.get("*")
    else:
        items = data if isinstance(data, (list, tuple)) else [data]
        per_suite, default = {}, None
        for item in items:
            if isinstance(item, str) and "=" in item and item.split("=", 1)[0] in SUITES:
                suite, source = item.split("=", 1)
                per_suite[suite] = source
            elif item is not None:
                default = item
    unknown = [name for name in per_suite if name not in SUITES and name != "*"]
    if unknown:
        raise EvaluationError(f"--data names an unknown suite {unknown[0]!r}: choose from {', '.join(SUITES)}.")
    sources = {}
    for suite in suites:
        source = per_suite.get(suite, default)
        if source is None:
            raise EvaluationError(f"{suite}: no data; pass --data SOURCE (or --data {suite}=SOURCE).")
        sources[suite] = source
    return sources


def evaluate(
    model: Any,
    suites: str | Sequence[str] = "spoken-qa",
    data: Any = None,
    output_dir: str | os.PathLike = "evaluation",
    *,
    baseline: Any = None,
    limit: int | None = None,
    split: str | None = None,
    columns: Columns | Mapping[str, str] | None = None,
    judge: Any = None,
    device: str | None = None,
    dtype: str | None = None,
    items_file: str | os.PathLike | None = None,
    **options,
) -> EvaluationResult:
    """
    Runs evaluation suites on a DeepOmni checkpoint (and a baseline) and writes `output_dir/results.json`,
    `report.md`, `eval_results.json` (model-index), `items.jsonl` (per item, reused on rerun), plots and the first
    replies as WAV + text.

    Args:
        model: checkpoint folder or hub id, or a `(model, processor)` pair (any object with DeepOmni's `generate`).
        suites: names, comma-separated or a list: `text`, `spoken-qa`, `asr`, `tts`, `latency`, `routing`.
        data: one source for all suites (dataset folder, hub id, JSONL, CSV, or `asterisk`), a `{suite: source}`
            mapping, or a list of `source` / `suite=source` strings.
        baseline: a second checkpoint evaluated the same way; the report puts it beside the model with the relative
            drop `(baseline − model) / baseline` of the accuracies.
        limit: evaluate the first `limit` rows of each data source.
        columns: [`Columns`] or a dict of column names (`question`, `answer`, `text`, `audio`, `type`, `id`).
        judge: the ASR judge: a callable `(waveform, sampling_rate) -> str`, a faster-whisper model, or `None` (the
            bundled Whisper tiny.en).
        items_file: where per-item results are appended (default `output_dir/items.jsonl`); runs that share one
            reuse each other's items, e.g. a baseline compared with several models.
        options: [`EvaluationOptions`] fields (`max_new_tokens`, `text_max_new_tokens`, `seed`, `tts`, `voice`,
            `answer_tts`, `text_file`, `num_replies`, `routing_positions`, `lm_eval`).
    """
    names = parse_suites(suites)
    options = EvaluationOptions(**options)
    if not isinstance(columns, Columns):
        columns = Columns(**(columns or {}))
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)

    sources = data_sources(data, names)
    datasets: dict[str, EvalData] = {}
    for suite in names:
        key = repr(sources[suite])
        if key not in datasets:
            datasets[key] = read_data(sources[suite], split=split, limit=limit, columns=columns)

    cache: dict[str, Any] = {}

    def get_judge():
        if "judge" not in cache:
            cache["judge"] = load_judge(judge)
        return cache["judge"]

    def get_synthesizer():
        if "tts" not in cache:
            from ..data.tts import get_synthesizer

            try:
                cache["tts"] = get_synthesizer(options.tts)
            except Exception as error:  # unknown backend or a voice that cannot load
                raise EvaluationError(f"--tts {options.tts!r}: {error}") from None
        return cache["tts"]

    judged = any(suite in JUDGED_SUITES for suite in names)
    judge_name = get_judge().name if judged else None
    store = ItemStore(output, items_file)
    run_meta = {"judge": judge_name, **versions()}
    all_rows, skipped, notes, files = [], [], [], []
    per_type: dict[str, dict] = {}
    model_name = baseline_name = None
    device_used = None
    for role, source in (("model", model), ("baseline", baseline)):
        if source is None:
            continue
        spoken = tuple(suite for suite in names if suite in SPOKEN_SUITES)
        role_suites = names
        if role == "baseline" and is_text_llm(source):  # the text LLM a model was converted from: text only
            spoken, role_suites = (), [suite for suite in names if suite == "text"]
            notes += [f"{suite} (baseline): a text LLM; not evaluated" for suite in names if suite != "text"]
        candidate = load_candidate(source, device=device, dtype=dtype, spoken_suites=spoken)
        if role == "model":
            model_name = candidate.name
        else:
            baseline_name = candidate.name
        device_used = device_name(candidate.device)
        for suite in role_suites:
            data_for = datasets[repr(sources[suite])]
            ctx = SuiteContext(suite, role, candidate, data_for, options, store, output, get_judge, get_synthesizer,
                               judge_name if suite in JUDGED_SUITES else None)  # fmt: skip
            result = SUITES[suite](ctx)
            run = {**run_meta, "judge": ctx.judge_name, "data": data_for.source, "data_fingerprint": data_for.fingerprint,
                   "device": device_used}  # fmt: skip
            all_rows += make_rows(role, candidate.name, None, result, run)
            skipped += result.skipped
            notes += [f"{suite} ({role}): {note}" for note in result.notes]
            files += result.files
            if result.per_type:
                per_type.setdefault(role, {})[suite] = result.per_type
            if options.lm_eval and suite == "text":
                all_rows += _lm_eval_rows(candidate, data_for, output, role, run, notes, files)
        if isinstance(source, (str, os.PathLike)):  # free a loaded checkpoint before the next
            del candidate
            gc.collect()
    for row in all_rows:
        row["baseline"] = baseline_name
    all_rows += drop_rows(all_rows)
    replies = output / "replies"
    if replies.is_dir():
        files.append("replies/")
    results = {
        "schema": SCHEMA,
        "model": model_name,
        "baseline": baseline_name,
        "suites": names,
        "judge": judge_name,
        "device": device_used,
        **versions(),
        "data": {suite: {"source": datasets[repr(sources[suite])].source,
                         "fingerprint": datasets[repr(sources[suite])].fingerprint,
                         "rows": len(datasets[repr(sources[suite])])} for suite in names},  # fmt: skip
        "options": {key: getattr(options, key) for key in options.__dataclass_fields__},
        "rows": all_rows,
        "per_type": per_type,
        "skipped": skipped,
        "notes": notes,
        "items_file": str(store.path),
        "files": ["results.json", *(["items.jsonl"] if items_file is None else []), *files],
    }
    write_outputs(results, output)
    return EvaluationResult(results, output, store.computed, store.reused, all_rows)


def _lm_eval_rows(candidate, data: EvalData, output: Path, role: str, run: dict, notes: list, files: list) -> list:
    """The text suite's QA through lm-evaluation-harness on the exported text model (`lm_eval=True`)."""
    from .lm_eval_harness import LMEvalUnavailable, run_local_task

    try:
        scores = run_local_task(candidate.name, data, output / f"lm_eval_{role}")
    except LMEvalUnavailable as error:
        notes.append(f"text ({role}): lm-eval not run: {error}")
        return []
    files.append(f"lm_eval_{role}/")
    return [{"role": role, "model": candidate.name, "baseline": None, "suite": "text", "metric": f"lm_eval_{name}",
             "value": value, "n": scores["n"], "unit": "", "higher_is_better": True, "judge_wer_input": None,
             **run, "judge": None} for name, value in scores["metrics"].items()]  # fmt: skip


__all__ = ["EvaluationResult", "data_sources", "evaluate", "parse_suites"]

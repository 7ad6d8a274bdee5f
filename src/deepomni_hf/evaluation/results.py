# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""What a run writes: `results.json`, `report.md`, `eval_results.json` (model-index) and the per-type plot.

`results.json` (schema `deepomni-evaluate/1`) holds run-level facts and a flat list of `rows`, each row complete on
its own, so rows of several runs (several checkpoints) can be concatenated and compared:

    {"role": "model" | "baseline", "model": CKPT, "baseline": CKPT | null, "suite", "metric", "value", "n",
     "unit", "higher_is_better", "judge", "judge_wer_input", "data", "data_fingerprint", "deepomni_hf_version",
     "transformers_version", "torch_version", "device"}

With a baseline, rows with `metric` `<name>_relative_drop` (role `model`) hold `(baseline − model) / baseline`.
`eval_results.json` is the list of `EvalResult` fields that `deepomni push model --eval-results` puts in the model
card's `model-index`; `push` also accepts `results.json` itself (see [`model_index_results`]).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .metrics import relative_drop


SCHEMA = "deepomni-evaluate/1"
RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"
MODEL_INDEX_FILE = "eval_results.json"
# Metrics whose relative drop the report gives (the paper's forgetting measure is on accuracies).
DROP_METRICS = ("text_accuracy", "speech_accuracy")
# Hub task types of the suites, for the model card's model-index.
TASK_TYPES = {"text": "question-answering", "spoken-qa": "audio-to-audio", "asr": "automatic-speech-recognition",
              "tts": "text-to-speech"}  # fmt: skip
# Metrics that are measurements of the run rather than of the model: kept out of the model-index.
NOT_PUBLISHED = ("judge_wer_input", "model_seconds_per_item", "judge_seconds_per_item", "ttfa_s", "rtf", "routing_separation")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.tmp{os.getpid()}"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    import torch
    import transformers

    from .. import __version__

    return {"deepomni_hf_version": __version__, "transformers_version": transformers.__version__,
            "torch_version": torch.__version__}  # fmt: skip


def make_rows(role: str, model: str, baseline: str | None, suite_result, run: dict[str, Any]) -> list[dict]:
    """Result rows of one suite run of one checkpoint (`run` holds judge, data, fingerprint, versions, device)."""
    rows = []
    for metric in suite_result.metrics:
        rows.append({
            "role": role, "model": model, "baseline": baseline, "suite": suite_result.suite, "metric": metric.name,
            "value": metric.value, "n": metric.n, "unit": metric.unit, "higher_is_better": metric.higher_is_better,
            "judge_wer_input": metric.judge_wer_input, **run,
        })  # fmt: skip
    return rows


def drop_rows(rows: list[dict]) -> list[dict]:
    """`<metric>_relative_drop` rows: model vs baseline for every accuracy both have."""
    baseline = {(r["suite"], r["metric"]): r for r in rows if r["role"] == "baseline"}
    out = []
    for row in rows:
        if row["role"] != "model" or row["metric"] not in DROP_METRICS:
            continue
        base = baseline.get((row["suite"], row["metric"]))
        if base is None:
            continue
        out.append({**row, "metric": f"{row['metric']}_relative_drop", "value": relative_drop(base["value"], row["value"]),
                    "unit": "", "higher_is_better": False, "judge_wer_input": None})  # fmt: skip
    return out


def model_index_results(results: dict) -> list[dict]:
    """`EvalResult` field dicts (`huggingface_hub.EvalResult`) of the model's rows of a `results.json`: the rows
    a model card's model-index can show (suites with a Hub task type, measured values, no run timings)."""
    out = []
    for row in results.get("rows", []):
        if row["role"] != "model" or row["value"] is None or row["suite"] not in TASK_TYPES:
            continue
        if row["metric"] in NOT_PUBLISHED:
            continue
        data = row.get("data") or "unknown"
        out.append({
            "task_type": TASK_TYPES[row["suite"]],
            "task_name": f"deepomni evaluate --suite {row['suite']}",
            "dataset_type": data if "/" in data and not os.path.exists(data) else "local",
            "dataset_name": f"{Path(data).name or data} ({row['data_fingerprint']})",
            "metric_type": row["metric"],
            "metric_value": round(float(row["value"]), 6),
            "metric_name": f"{row['metric']} (n={row['n']}" + (f", judge {row['judge']})" if row.get("judge") else ")"),
        })  # fmt: skip
    return out


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit and unit not in ("per token",) else text


def render_report(results: dict) -> str:
    rows = results["rows"]
    has_baseline = results.get("baseline") is not None
    lines = [f"# Evaluation of `{results['model']}`", ""]
    if has_baseline:
        lines.append(f"Baseline: `{results['baseline']}`. Relative drop = (baseline − model) / baseline.")
    lines += [f"Judge: `{results['judge']}`. Device: {results['device']}. deepomni_hf {results['deepomni_hf_version']}, "
              f"transformers {results['transformers_version']}, torch {results['torch_version']}.", ""]  # fmt: skip
    lines += ["| suite | data | metric | model | " + ("baseline | relative drop | " if has_baseline else "")
              + "n | judge WER on input speech |",
              "|---|---|---|---|" + ("---|---|" if has_baseline else "") + "---|---|"]  # fmt: skip
    index = {(r["role"], r["suite"], r["metric"]): r for r in rows}
    for row in rows:
        if row["role"] != "model" or row["metric"].endswith("_relative_drop"):
            continue
        cells = [row["suite"], f"`{row['data']}`" if row.get("data") else "–", row["metric"], _fmt(row["value"], row["unit"])]
        if has_baseline:
            base = index.get(("baseline", row["suite"], row["metric"]))
            drop = index.get(("model", row["suite"], f"{row['metric']}_relative_drop"))
            cells += [_fmt(base["value"], base["unit"]) if base else "–",
                      f"{100 * drop['value']:.1f} %" if drop and drop["value"] is not None else "–"]  # fmt: skip
        cells += [str(row["n"]), _fmt(row["judge_wer_input"])]
        lines.append("| " + " | ".join(cells) + " |")
    for role in ("model", "baseline"):
        per_type = results.get("per_type", {}).get(role, {})
        for suite, types in per_type.items():
            lines += ["", f"## Accuracy per question type ({suite}, {role})", "", "| type | text | speech | n |",
                      "|---|---|---|---|"]  # fmt: skip
            for name, values in types.items():
                lines.append(f"| {name} | {_fmt(values.get('text_accuracy'))} | {_fmt(values.get('speech_accuracy'))} "
                             f"| {values['n']} |")  # fmt: skip
    if results.get("skipped"):
        lines += ["", "## Skipped items", "", "| suite | checkpoint | item | reason | detail |", "|---|---|---|---|---|"]
        for skip in results["skipped"]:
            detail = str(skip.get("message", "")).replace("|", "/").replace("\n", " ")[:160]
            lines.append(f"| {skip['suite']} | {skip['role']} | {skip['id']} | {skip['reason']} | {detail} |")
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    if results.get("files"):
        lines += ["", "## Files", ""] + [f"- `{name}`" for name in results["files"]]
    return "\n".join(lines) + "\n"


def plot_per_type(results: dict, path: Path) -> bool:
    """Bar chart of text and speech accuracy per question type, model beside baseline. False when no suite had types."""
    series = [(role, suite, types) for role, suites in results.get("per_type", {}).items() for suite, types in suites.items()]
    if not series:
        return False
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    names = sorted({name for _, _, types in series for name in types})
    bars = [(f"{role} {suite} {kind}", [types.get(n, {}).get(f"{kind}_accuracy") or 0.0 for n in names])
            for role, suite, types in series for kind in ("text", "speech")
            if any(types.get(n, {}).get(f"{kind}_accuracy") is not None for n in names)]  # fmt: skip
    width = 0.8 / max(len(bars), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(names) + 2), 3.5), layout="constrained")
    for k, (label, values) in enumerate(bars):
        ax.bar([i + k * width for i in range(len(names))], values, width, label=label)
    ax.set_xticks([i + width * (len(bars) - 1) / 2 for i in range(len(names))], names, rotation=20, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    tmp = path.parent / f".{path.stem}.tmp{os.getpid()}.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return True


def write_outputs(results: dict, output_dir: Path) -> None:
    """Writes `results.json`, `eval_results.json`, `report.md` and the per-type plot (each through a temporary file)."""
    plots = output_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    if plot_per_type(results, plots / "accuracy_per_type.png"):
        results["files"].append("plots/accuracy_per_type.png")
    results["files"] += [MODEL_INDEX_FILE, REPORT_FILE]
    write_atomic(output_dir / MODEL_INDEX_FILE, json.dumps(model_index_results(results), indent=2) + "\n")
    write_atomic(output_dir / RESULTS_FILE, json.dumps(results, indent=2, default=float) + "\n")
    write_atomic(output_dir / REPORT_FILE, render_report(results))


__all__ = [
    "MODEL_INDEX_FILE",
    "REPORT_FILE",
    "RESULTS_FILE",
    "SCHEMA",
    "drop_rows",
    "make_rows",
    "model_index_results",
    "render_report",
    "versions",
    "write_outputs",
]

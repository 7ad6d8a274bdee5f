# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The text ability under lm-evaluation-harness (`pip install lm-eval`, extra `eval`), offline (DESIGN §6).

The package ships two local tasks in `lm_eval_tasks/` that read a JSONL of `{"question", "answer"}` lines and load
nothing from the Hub: `deepomni_text_qa` (greedy answer, `exact_match` ignoring case and punctuation) and
`deepomni_text_qa_loglikelihood` (`acc`: the answer is the greedy continuation; `perplexity` of the answer).

    deepomni export-text-model CKPT text_model
    lm_eval --model hf --model_args pretrained=text_model --include_path $(python -c "import \
        deepomni_hf.evaluation.lm_eval_harness as m; print(m.TASKS_DIR)") --tasks deepomni_text_qa --device cpu

(`data_files` in the YAML is relative to the working directory; [`run_local_task`] writes copies pointing at a given
JSONL.) Full benchmarks need the Hub: `lm_eval --model hf --model_args pretrained=text_model --tasks mmlu,arc_easy`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import EvaluationError


TASKS_DIR = Path(__file__).parent / "lm_eval_tasks"
LOCAL_TASKS = ("deepomni_text_qa", "deepomni_text_qa_loglikelihood")


class LMEvalUnavailable(EvaluationError):
    """lm-eval is not installed, or the checkpoint has no folder to export its text model from."""


def write_tasks(data_file: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Copies of the shipped task YAMLs in `folder` whose `data_files` point at `data_file` (absolute)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data_file = Path(data_file).resolve().as_posix()
    for task in LOCAL_TASKS:
        text = (TASKS_DIR / f"{task}.yaml").read_text(encoding="utf-8")
        text = text.replace("test: deepomni_text_qa.jsonl", f"test: {json.dumps(data_file)}")
        (folder / f"{task}.yaml").write_text(text, encoding="utf-8")
    return folder


def run_lm_eval(text_model: str | os.PathLike, data_file: str | os.PathLike, output_dir: str | os.PathLike,
                tasks: tuple[str, ...] = LOCAL_TASKS, device: str = "cpu", limit: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Runs the local tasks on a plain causal LM folder (e.g. from `deepomni export-text-model`) with
    `lm_eval.simple_evaluate`; writes `output_dir/lm_eval_results.json` and returns `{"n", "metrics": {name:
    value}}` (names like `deepomni_text_qa/exact_match`)."""
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise LMEvalUnavailable("lm-eval is not installed: pip install lm-eval (or the extra deepomni-hf[eval]).") from None
    output = Path(output_dir)
    tasks_dir = write_tasks(data_file, output / "tasks")
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": os.fspath(text_model), "dtype": "float32"},
        tasks=list(tasks),
        task_manager=TaskManager(include_path=str(tasks_dir)),
        device=device,
        batch_size=1,
        limit=limit,
        log_samples=False,
        bootstrap_iters=0,
    )
    metrics, n = {}, 0
    for task, values in results["results"].items():
        for key, value in values.items():
            name, _, filter_name = key.partition(",")
            if filter_name and isinstance(value, (int, float)) and not name.endswith("_stderr"):
                metrics[f"{task}/{name}"] = float(value)
        n = max(n, int(results.get("n-samples", {}).get(task, {}).get("effective", 0)))
    summary = {"n": n, "metrics": metrics, "text_model": os.fspath(text_model), "data": os.fspath(data_file)}
    (output / "lm_eval_results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def run_local_task(checkpoint: str | os.PathLike | None, data, output_dir: str | os.PathLike) -> dict:
    """The text suite's `--lm-eval` step: exports the text model of `checkpoint` (a folder), writes the QA rows of
    `data` (an `EvalData`) as JSONL and runs [`run_lm_eval`] on it."""
    from ..hub.conversion import export_text_model

    output = Path(output_dir)
    if checkpoint is None or not Path(checkpoint).is_dir():
        raise LMEvalUnavailable("lm-eval needs a checkpoint folder to export the text model from.")
    output.mkdir(parents=True, exist_ok=True)
    text_model = output / "text_model"
    export_text_model(checkpoint, text_model, overwrite=True, progress=False)  # fresh: the checkpoint may have changed
    data_file = output / "qa.jsonl"
    columns = data.columns
    with open(data_file, "w", encoding="utf-8") as handle:
        for row in data.rows:
            question, answer = row.get(columns.question), row.get(columns.answer)
            if question and answer:
                handle.write(json.dumps({"question": str(question), "answer": str(answer)}) + "\n")
    return run_lm_eval(text_model, data_file, output)


__all__ = ["LMEvalUnavailable", "LOCAL_TASKS", "TASKS_DIR", "run_lm_eval", "run_local_task", "write_tasks"]

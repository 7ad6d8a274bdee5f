# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Facts a model card states that are read from data rather than written into its template: the parameter counts of
a checkpoint's parts (from its safetensors headers, no weights loaded), its last training run (`train_result.json`,
written by `examples/train_stage.py`), the closed spoken-QA domain (the package's fact tables), and a reproduction
summary (`benchmarks/reproduction.py`'s `reproduction.json`) laid out as a table.

`cards.render_model_card` passes them to every template; `hub_cards/model_card_deepomni_tiny.md` uses them, so that
card's numbers come from the checkpoint and the JSON files given to `deepomni push model`, never from the template.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


# Metadata defaults of the named templates, used where the caller gives none (`--base-model`, `--license`).
# DeepOmni-Tiny holds no DeepSeek weights (its backbone is pretrained from scratch; only the architecture is
# DeepSeek-V2's): its weights come from Whisper tiny.en (MIT) and from training here, under the package's licence.
TEMPLATE_METADATA: dict[str, dict[str, Any]] = {
    "deepomni_tiny": {
        "base_model": ("openai/whisper-tiny.en",),
        "license": "apache-2.0",
        "tags": ("deepomni-tiny", "closed-domain", "spoken-question-answering"),
    },
}

# Titles and formats of the metric keys `benchmarks/reproduction.py` writes ("suite/metric"); other keys are shown
# under their own name, as numbers.
REPRODUCTION_METRICS = {
    "text/text_accuracy": ("text-QA acc.", "{:.1%}"),
    "text/text_accuracy_relative_drop": ("rel. text drop vs (a)", "{:+.1%}"),
    "spoken-qa/text_accuracy": ("spoken-QA acc. (text)", "{:.1%}"),
    "spoken-qa/speech_accuracy": ("spoken-QA acc. (speech, judge)", "{:.1%}"),
    "spoken-qa/answer_code_error_rate": ("answer-code error", "{:.2f}"),
    "spoken-qa/consistency_wer": ("consistency WER", "{:.1%}"),
    "spoken-qa/ended_on_own": ("ended on own", "{:.1%}"),
    "latency/ttfa_s": ("TTFA CPU (s)", "{:.2f}"),
    "routing/routing_separation": ("routing separation", "{:.3f}"),
}
# The sample settings of a reproduction run, as the card lists them.
REPRODUCTION_SETTINGS = {
    "suites": "suites", "limit": "questions per source (first N)", "text_per_type": "text questions per type",
    "spoken_per_type": "spoken questions per type", "sample_seed": "sample seed",
}  # fmt: skip


# --- reproduction summary -------------------------------------------------------------------------------------------
def load_reproduction(source: str | os.PathLike | Mapping | None) -> dict[str, Any] | None:
    """A reproduction summary (`benchmarks/reproduction.py`'s `reproduction.json`) from a path or a mapping, checked:
    an `arms` object whose entries each have a `label` and a `metrics` object of numbers (or nulls). `None` → `None`."""
    if source is None:
        return None
    name = "The reproduction summary"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(
                f"Reproduction summary not found: {path} (benchmarks/reproduction.py writes reproduction.json)."
            )
        name = str(path)
        try:
            source = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
    arms = source.get("arms") if isinstance(source, Mapping) else None
    if not isinstance(arms, Mapping) or not arms:
        raise ValueError(
            f"{name} is not a reproduction summary: it needs a non-empty 'arms' object (as benchmarks/reproduction.py "
            "writes)."
        )
    for arm, entry in arms.items():
        metrics = entry.get("metrics") if isinstance(entry, Mapping) else None
        if not isinstance(metrics, Mapping) or not isinstance(entry.get("label", arm), str):
            raise ValueError(f"{name}: arm {arm!r} needs a 'metrics' object (and a 'label' string).")
        bad = [k for k, v in metrics.items() if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))]
        if bad:
            raise ValueError(f"{name}: arm {arm!r} has non-numeric metric(s) {bad}.")
    return dict(source)


def reproduction_table(summary: Mapping[str, Any]) -> dict[str, list]:
    """The summary's arms as a table: `columns` (metric titles, known metrics first in `REPRODUCTION_METRICS` order,
    then any others) and `rows` (`label`, formatted `cells`, "—" where an arm lacks a metric)."""
    arms = summary["arms"]
    present = list(dict.fromkeys(key for entry in arms.values() for key in entry["metrics"]))
    keys = [key for key in REPRODUCTION_METRICS if key in present] + [k for k in present if k not in REPRODUCTION_METRICS]
    columns = [REPRODUCTION_METRICS.get(key, (key, ""))[0] for key in keys]
    rows = []
    for arm, entry in arms.items():
        cells = []
        for key in keys:
            value, fmt = entry["metrics"].get(key), REPRODUCTION_METRICS.get(key, (key, "{:.4g}"))[1]
            cells.append("—" if value is None else fmt.format(value))
        rows.append({"arm": arm, "label": entry.get("label", arm), "cells": cells,
                     "positions": entry.get("positions_trained_last_stage")})  # fmt: skip
    settings = {title: summary[key] for key, title in REPRODUCTION_SETTINGS.items() if summary.get(key) is not None}
    return {"columns": columns, "rows": rows, "settings": settings}


# --- the checkpoint -------------------------------------------------------------------------------------------------
def _weight_shapes(folder: Path) -> dict[str, tuple[int, ...]] | None:
    """Tensor name → shape, from the safetensors headers of the folder (one file or a sharded index); `None` when the
    folder has no readable safetensors weights (e.g. only `pytorch_model.bin`)."""
    from safetensors import SafetensorError, safe_open

    index = folder / "model.safetensors.index.json"
    try:
        files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())) if index.is_file() \
            else ["model.safetensors"]  # fmt: skip
        shapes = {}
        for name in files:
            with safe_open(str(folder / name), framework="pt") as weights:
                shapes.update({key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()})
        return shapes
    except (OSError, KeyError, ValueError, SafetensorError):
        return None


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f} M"


def checkpoint_parameters(checkpoint_dir: str | os.PathLike, config: Mapping[str, Any]) -> dict[str, dict] | None:
    """Parameter counts of a DeepOmni checkpoint's parts, read from its weight headers: `total`, `backbone`
    (`model.language_model`, all embedding rows), `output_head` (0 when tied), `audio_encoder`, `speech_adapter`,
    `codec`, and `text_llm`: the backbone as the text LLM it was converted from (its `text_vocab_size` embedding rows,
    and as many head rows when the head is untied), which is what the base LLM's own count was. Each entry is
    `{"count": int, "text": "7.65 M"}`. `None` when the weights cannot be read."""
    shapes = _weight_shapes(Path(checkpoint_dir))
    if not shapes:
        return None
    prefixes = {"backbone": "model.language_model.", "output_head": "lm_head.", "audio_encoder": "model.audio_tower.",
                "speech_adapter": "model.speech_adapter.", "codec": "codec_model."}  # fmt: skip
    counts = dict.fromkeys(prefixes, 0)
    total = 0
    for name, shape in shapes.items():
        numel = 1
        for size in shape:
            numel *= size
        total += numel
        part = next((part for part, prefix in prefixes.items() if name.startswith(prefix)), None)
        if part:
            counts[part] += numel
    counts["total"] = total
    text = config.get("text_config") or {}
    embedding = shapes.get("model.language_model.embed_tokens.weight")
    text_rows = config.get("text_vocab_size")
    if embedding and text_rows:
        hidden, audio_rows = embedding[1], embedding[0] - int(text_rows)
        untied_head = counts["output_head"] > 0 and not text.get("tie_word_embeddings", config.get("tie_word_embeddings"))
        counts["text_llm"] = counts["backbone"] - audio_rows * hidden + (int(text_rows) * hidden if untied_head else 0)
    return {part: {"count": count, "text": _millions(count)} for part, count in counts.items()}


def training_run(checkpoint_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The last training run of the checkpoint, from `train_result.json` (`examples/train_stage.py`): stage, routing
    mode, seed, positions trained and the trainer's summary metrics (runtime, loss); `None` when absent or unreadable.
    The per-step log history is left out."""
    path = Path(checkpoint_dir) / "train_result.json"
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(result, Mapping):
        return None
    metrics = result.get("metrics") if isinstance(result.get("metrics"), Mapping) else {}
    run = {key: result[key] for key in ("stage", "routing_mode", "seed", "positions_trained") if key in result}
    if isinstance(metrics.get("train_runtime"), (int, float)):
        run["train_minutes"] = round(metrics["train_runtime"] / 60, 1)
    if isinstance(metrics.get("train_loss"), (int, float)):
        run["train_loss"] = round(metrics["train_loss"], 4)
    return run or None


# --- the closed spoken-QA domain ------------------------------------------------------------------------------------
def spoken_qa_domain() -> list[dict[str, Any]]:
    """One row per question type of the package's spoken-QA tables (`deepomni make-corpus --task spoken-qa`): type,
    description, number of facts and phrasings, and an example question with its answer."""
    from ..data.spoken_qa import load_tables, table_facts

    rows = []
    for table in load_tables():
        facts = table_facts(table)
        example = facts[len(facts) // 2] if facts else None
        rows.append({
            "type": table["type"],
            "description": table.get("description", ""),
            "facts": len(facts),
            "answers": len({fact.answer for fact in facts}),
            "phrasings": len(table.get("phrasings", [])),
            "example": table["phrasings"][0].format(**example.slots) if example else "",
            "example_answer": example.answer if example else "",
        })  # fmt: skip
    return rows


__all__ = [
    "REPRODUCTION_METRICS",
    "TEMPLATE_METADATA",
    "checkpoint_parameters",
    "load_reproduction",
    "reproduction_table",
    "spoken_qa_domain",
    "training_run",
]

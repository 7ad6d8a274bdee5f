# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Choosing the speech experts of every MoE layer from the modality load (DESIGN §4), and writing the result.

Rules (`rule=`):

* `"ratio"` (default): an expert is a speech expert when its speech load is at least `threshold` (default **1.5**)
  times its text load, `L_speech[l, e] >= τ · L_text[l, e]` ("speech load clearly exceeds text load": at least 50 %
  more). An expert neither modality uses is never chosen by the ratio.
* `"top_n"`: the `top_n` experts of each layer with the largest speech share `L_s / (L_s + L_t)`.

Either way the count per layer is then clamped into `[min_speech, max_speech]`, by default `[top_k,
num_experts - top_k]` (both groups must hold at least `top_k` experts, or restricted routing cannot pick `top_k`):
missing experts are added, surplus ones dropped, in order of speech share (ties: larger speech load, then lower id).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np

from .modality_load import ModalityLoad, write_json_atomic

RULES = ("ratio", "top_n")
DEFAULT_THRESHOLD = 1.5


@dataclass
class ExpertAssignment:
    """
    The chosen speech experts.

    Attributes:
        speech_experts: one sorted list per decoder layer (empty for dense layers), the format of
            `config.text_config.speech_experts`.
        rule / threshold / top_n / min_speech / max_speech: how they were chosen.
        passed_rule: per MoE layer, the experts the rule chose before clamping.
    """

    speech_experts: list[list[int]]
    rule: str
    threshold: float | None
    top_n: int | None
    min_speech: int
    max_speech: int
    passed_rule: dict[int, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "speech_experts": self.speech_experts,
            "rule": self.rule,
            "threshold": self.threshold,
            "top_n": self.top_n,
            "bounds": [self.min_speech, self.max_speech],
            "passed_rule_before_bounds": {str(k): v for k, v in self.passed_rule.items()},
        }


def _ranking(load: ModalityLoad, row: int) -> list[int]:
    """Experts of one layer row, most speech-leaning first (share, then speech load, then lower id)."""
    share, speech = load.speech_share[row], load.speech_load[row]
    return sorted(range(load.num_experts), key=lambda e: (-share[e], -speech[e], e))


def assign_speech_experts(
    load: ModalityLoad,
    num_layers: int,
    rule: str = "ratio",
    threshold: float = DEFAULT_THRESHOLD,
    top_n: int | None = None,
    min_speech: int | None = None,
    max_speech: int | None = None,
) -> ExpertAssignment:
    """
    Speech experts per layer from a [`ModalityLoad`] (see the module docstring for the rules).

    Args:
        load: the measured modality load.
        num_layers: decoder layers of the model (`text_config.num_hidden_layers`); layers not in `load.layers` (the
            dense ones) get an empty list.
        rule: `"ratio"` or `"top_n"`.
        threshold: τ of the ratio rule.
        top_n: experts per layer of the `top_n` rule (required for it).
        min_speech / max_speech: bounds on the count per layer; default `top_k` and `num_experts - top_k`.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}.")
    experts, top_k = load.num_experts, load.top_k
    min_speech = top_k if min_speech is None else int(min_speech)
    max_speech = experts - top_k if max_speech is None else int(max_speech)
    if not top_k <= min_speech <= max_speech <= experts - top_k:
        raise ValueError(
            f"Need top_k ({top_k}) <= min_speech ({min_speech}) <= max_speech ({max_speech}) <= num_experts - top_k "
            f"({experts - top_k}): each group must keep at least top_k experts."
        )
    if rule == "top_n" and top_n is None:
        raise ValueError("rule='top_n' needs top_n (speech experts per layer).")
    if rule == "ratio" and not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}.")

    speech_experts: list[list[int]] = [[] for _ in range(num_layers)]
    passed: dict[int, list[int]] = {}
    speech_load, text_load = load.speech_load, load.text_load
    for row, layer in enumerate(load.layers):
        ranking = _ranking(load, row)
        if rule == "ratio":
            chosen = [
                e for e in ranking if speech_load[row, e] > 0 and speech_load[row, e] >= threshold * text_load[row, e]
            ]
        else:
            chosen = ranking[: int(top_n)]
        passed[layer] = sorted(chosen)
        count = min(max(len(chosen), min_speech), max_speech)
        if count > len(chosen):
            chosen = chosen + [e for e in ranking if e not in chosen][: count - len(chosen)]
        else:
            chosen = chosen[:count]  # chosen is in ranking order: the least speech-leaning go first
        speech_experts[layer] = sorted(int(e) for e in chosen)
    return ExpertAssignment(
        speech_experts=speech_experts,
        rule=rule,
        threshold=float(threshold) if rule == "ratio" else None,
        top_n=int(top_n) if rule == "top_n" else None,
        min_speech=min_speech,
        max_speech=max_speech,
        passed_rule=passed,
    )


# ----- reports -----


def summary_rows(load: ModalityLoad, assignment: ExpertAssignment) -> list[dict]:
    """One row per MoE layer: counts and the mean speech share / loads of the chosen experts vs the rest."""
    rows = []
    share, speech, text = load.speech_share, load.speech_load, load.text_load
    for row, layer in enumerate(load.layers):
        chosen = assignment.speech_experts[layer]
        rest = [e for e in range(load.num_experts) if e not in chosen]
        rows.append(
            {
                "layer": layer,
                "speech_experts": len(chosen),
                "passed_rule": len(assignment.passed_rule.get(layer, [])),
                "speech_share_chosen": float(np.mean(share[row, chosen])) if chosen else float("nan"),
                "speech_share_rest": float(np.mean(share[row, rest])) if rest else float("nan"),
                "speech_load_chosen": float(speech[row, chosen].sum()) if chosen else 0.0,
                "text_load_chosen": float(text[row, chosen].sum()) if chosen else 0.0,
                "experts": " ".join(str(e) for e in chosen),
            }
        )
    return rows


def summary_markdown(load: ModalityLoad, assignment: ExpertAssignment) -> str:
    rule = (
        f"ratio L_speech >= {assignment.threshold:g} x L_text"
        if assignment.rule == "ratio"
        else f"top {assignment.top_n} by speech share"
    )
    lines = [
        f"# Speech experts ({rule}; bounds [{assignment.min_speech}, {assignment.max_speech}] per layer)",
        "",
        (
            f"Counted {load.speech_tokens:,} speech and {load.text_tokens:,} text tokens "
            f"(positions={load.positions!r}), top-{load.top_k} of {load.num_experts} experts. `sum L_speech` / `sum L_text`: share of each modality's "
            "routing slots that went to the chosen experts."
        ),
        "",
        (
            "| layer | # speech experts | # passed rule | mean speech share (chosen) | mean speech share (rest) | "
            "sum L_speech (chosen) | sum L_text (chosen) | experts |"
        ),
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in summary_rows(load, assignment):
        lines.append(
            f"| {r['layer']} | {r['speech_experts']} | {r['passed_rule']} | {r['speech_share_chosen']:.3f} | "
            f"{r['speech_share_rest']:.3f} | {r['speech_load_chosen']:.3f} | {r['text_load_chosen']:.3f} | "
            f"{r['experts']} |"
        )
    return "\n".join(lines) + "\n"


def summary_csv(load: ModalityLoad, assignment: ExpertAssignment) -> str:
    rows = summary_rows(load, assignment)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["layer"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def plot_modality_load(load: ModalityLoad, assignment: ExpertAssignment | None, path: str | os.PathLike) -> None:
    """Heat map (layers x experts) in three panels: speech load, text load, speech share; chosen speech experts are
    outlined. Writes a PNG with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt
    from matplotlib.patches import Rectangle

    panels = [
        ("speech load L_speech", load.speech_load, "viridis", None),
        ("text load L_text", load.text_load, "viridis", None),
        ("speech share L_s / (L_s + L_t)", load.speech_share, "coolwarm", (0.0, 1.0)),
    ]
    rows, experts = len(load.layers), load.num_experts
    width = max(6.0, 0.22 * experts + 2.5)
    height = max(1.2, 0.28 * rows + 1.0)
    fig, axes = plt.subplots(3, 1, figsize=(width, 3 * height + 0.6), squeeze=False, layout="constrained")
    for ax, (title, values, cmap, limits) in zip(axes[:, 0], panels):
        vmin, vmax = limits if limits else (0.0, max(float(values.max()), 1e-12))
        image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("layer")
        ax.set_yticks(range(rows), [str(layer) for layer in load.layers], fontsize=6)
        ax.set_xticks(range(experts), [str(e) for e in range(experts)], fontsize=5)
        fig.colorbar(image, ax=ax, fraction=0.025, pad=0.01)
        if assignment is not None:
            for row, layer in enumerate(load.layers):
                for e in assignment.speech_experts[layer]:
                    ax.add_patch(Rectangle((e - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.0))
    axes[-1, 0].set_xlabel("expert (outlined: speech experts)")
    fig.suptitle(
        f"Modality load, {load.speech_tokens:,} speech / {load.text_tokens:,} text tokens (positions={load.positions})",
        fontsize=10,
    )
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def write_assignment_outputs(
    output_dir: str | os.PathLike, load: ModalityLoad, assignment: ExpertAssignment
) -> dict[str, str]:
    """Writes `modality_load.json`, `speech_experts.json`, `modality_load.png`, `summary.md` and `summary.csv` into
    `output_dir`; returns their paths by kind."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "load": os.path.join(output_dir, "modality_load.json"),
        "assignment": os.path.join(output_dir, "speech_experts.json"),
        "heatmap": os.path.join(output_dir, "modality_load.png"),
        "summary_md": os.path.join(output_dir, "summary.md"),
        "summary_csv": os.path.join(output_dir, "summary.csv"),
    }
    load.save_json(paths["load"])
    write_json_atomic(
        paths["assignment"],
        {
            **assignment.to_dict(),
            "positions": load.positions,
            "speech_tokens": load.speech_tokens,
            "text_tokens": load.text_tokens,
        },
    )
    plot_modality_load(load, assignment, paths["heatmap"])
    for key, text in (
        ("summary_md", summary_markdown(load, assignment)),
        ("summary_csv", summary_csv(load, assignment)),
    ):
        tmp = f"{paths[key]}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, paths[key])
    return paths


def update_checkpoint_config(checkpoint_dir: str | os.PathLike, speech_experts: list[list[int]]) -> str:
    """Writes `speech_experts` into `text_config.speech_experts` of a saved checkpoint's `config.json`, atomically
    (temporary file + rename), after validating it against that config. Returns the config path."""
    from ..modeling.configuration_deepomni import DeepOmniConfig, check_speech_experts

    path = os.path.join(os.fspath(checkpoint_dir), "config.json")
    with open(path) as f:
        data = json.load(f)
    config = DeepOmniConfig.from_pretrained(os.fspath(checkpoint_dir))
    speech_experts = [sorted(int(e) for e in layer) for layer in speech_experts]
    check_speech_experts(config.text_config, speech_experts, config.text_config.routing_mode)
    data.setdefault("text_config", {})["speech_experts"] = speech_experts
    write_json_atomic(path, data)
    return path


__all__ = [
    "DEFAULT_THRESHOLD",
    "RULES",
    "ExpertAssignment",
    "assign_speech_experts",
    "plot_modality_load",
    "summary_csv",
    "summary_markdown",
    "summary_rows",
    "update_checkpoint_config",
    "write_assignment_outputs",
]

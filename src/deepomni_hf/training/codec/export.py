# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Saving a trained codec: `DeepOmniCodecModel` folder with its card, the `snac` package's own format, and the
learning-curve plot of a run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from ...modeling.modeling_deepomni_codec import SNAC_CONFIG_NAME, SNAC_WEIGHTS_NAME, DeepOmniCodecModel


def save_snac_checkpoint(codec: DeepOmniCodecModel, folder: str | os.PathLike):
    """Writes `config.json` (snac.SNAC's keyword arguments) and `pytorch_model.bin` (its state dict) atomically: the
    layout `snac.SNAC.from_pretrained(folder)` reads, as in hubertsiuzdak/snac_24khz."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / SNAC_CONFIG_NAME).write_text(json.dumps(codec.config.to_snac_kwargs(), indent=2) + "\n")
    state = {name: tensor.detach().float().cpu().contiguous() for name, tensor in codec.state_dict().items()}
    torch.save(state, tmp / SNAC_WEIGHTS_NAME)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _result_rows(evaluation: dict | None) -> list[dict]:
    if not evaluation:
        return []
    rows = []
    if "wer" in evaluation:
        rows.append({"name": "WER, held-out sentences", "value": f"{evaluation['wer']:.3f}",
                     "original": f"{evaluation.get('original_wer', float('nan')):.3f}"})  # fmt: skip
    if "answer_heard" in evaluation:
        rows.append({"name": f"answer heard ({evaluation.get('answers_checked', '?')} answer clips)",
                     "value": f"{100 * evaluation['answer_heard']:.1f} %",
                     "original": f"{100 * evaluation.get('original_answer_heard', float('nan')):.1f} %"})  # fmt: skip
    if "answer_heard_where_original_heard" in evaluation:
        rows.append({"name": f"answer heard, of the {evaluation['answers_heard_in_original']} clips whose original the "
                     "judge hears", "value": f"{100 * evaluation['answer_heard_where_original_heard']:.1f} %",
                     "original": "100 %"})  # fmt: skip
    if "mel_distance" in evaluation:
        rows.append({"name": "multi-resolution log-mel L1", "value": f"{evaluation['mel_distance']:.3f}", "original": "0"})
    if "codes_used" in evaluation:
        rows.append({"name": "codes used per level (held-out)", "value": " / ".join(map(str, evaluation["codes_used"])),
                     "original": "—"})  # fmt: skip
    return rows


def render_codec_card(codec: DeepOmniCodecModel, repo_id: str, *, training: dict | None = None,
                      evaluation: dict | None = None, scope: str | None = None, command: str | None = None,
                      template_dir: str | os.PathLike | None = None):  # fmt: skip
    """The model card of a trained codec, from `hub_cards/model_card_codec.md`."""
    from huggingface_hub import ModelCard, ModelCardData

    from ...hub.cards import templates_dir

    config = codec.config
    data = ModelCardData(library_name="transformers", pipeline_tag="audio-to-audio", license="apache-2.0",
                         language=["en"], tags=["deepomni", "snac", "audio-codec", "speech"])  # fmt: skip
    architecture = {name: getattr(config, name) for name in config.to_snac_kwargs()}
    return ModelCard.from_template(
        data,
        template_path=str(templates_dir(template_dir) / "model_card_codec.md"),
        repo_id=repo_id,
        model_title=repo_id.split("/")[-1],
        codes_per_frame=config.codes_per_frame,
        samples_per_frame=config.samples_per_frame,
        vq_strides=config.vq_strides,
        codebook_size=config.codebook_size,
        parameters=f"{sum(p.numel() for p in codec.parameters()) / 1e6:.2f} M",
        architecture=architecture,
        training=training or {},
        results=_result_rows(evaluation),
        scope=scope,
        command=command,
    )


def export_codec(codec: DeepOmniCodecModel, folder: str | os.PathLike, *, snac_folder: str | os.PathLike | None = None,
                 repo_id: str = "deepomni/codec", dtype: torch.dtype | None = None, **card_kwargs) -> Path:  # fmt: skip
    """Saves `codec` (safetensors, optionally cast to `dtype`) with its card into `folder`, and in snac's format into
    `snac_folder` when given. The snac copy is always float32 (snac builds its modules in float32)."""
    from .snake import unfuse_snake

    folder = Path(folder)
    unfuse_snake(codec)
    if snac_folder is not None:
        save_snac_checkpoint(codec, snac_folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    original_dtype = codec.dtype
    if dtype is not None:
        codec.to(dtype)
    try:
        codec.save_pretrained(tmp)
    finally:
        codec.to(original_dtype)
    render_codec_card(codec, repo_id, **card_kwargs).save(tmp / "README.md")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def plot_learning_curve(eval_jsonl: str | os.PathLike, png: str | os.PathLike, title: str = "codec training") -> Path:
    """minutes → judge WER (codec and original), mel distance and codes used per level, from a run's `eval.jsonl`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(eval_jsonl).read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{eval_jsonl} holds no evaluations.")
    minutes = [row["minutes"] for row in rows]
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    if any("wer" in row for row in rows):
        axes[0].plot(minutes, [row.get("wer") for row in rows], "o-", label="resynthesised")
        if "original_wer" in rows[-1]:
            axes[0].axhline(rows[-1]["original_wer"], color="grey", linestyle="--", label="original")
        if any("answer_heard" in row for row in rows):
            axes[0].plot(minutes, [1 - row.get("answer_heard", float("nan")) for row in rows], "s-",
                         label="answers missed")  # fmt: skip
        axes[0].set_ylabel("judge WER / share")
        axes[0].legend(fontsize=7)
    axes[1].plot(minutes, [row.get("mel_distance") for row in rows], "o-")
    axes[1].set_ylabel("mel distance")
    for level in range(len(rows[0]["codes_used"])):
        axes[2].plot(minutes, [row["codes_used"][level] for row in rows], "o-", label=f"level {level}")
    axes[2].set_ylabel("codes used (held-out)")
    axes[2].legend(fontsize=7)
    for axis in axes:
        axis.set_xlabel("training minutes (1 CPU core)")
        axis.grid(alpha=0.3)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    png = Path(png)
    figure.savefig(png, dpi=80)
    plt.close(figure)
    return png


__all__ = ["export_codec", "plot_learning_curve", "render_codec_card", "save_snac_checkpoint"]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`deepomni assign-experts`: modality load → speech experts → checkpoint config, JSON, heat map, summary.

Register it in the top-level parser with `add_assign_experts_command(subparsers)`.
"""

from __future__ import annotations

import argparse
import os

from ..cli_types import non_negative_int, positive_float, positive_int
from .expert_assignment import DEFAULT_THRESHOLD, RULES


def add_assign_experts_command(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "assign-experts",
        help="measure the modality load of every routed expert and mark the speech experts (DESIGN §4)",
        description=(
            "Runs a checkpoint (after stage 1) over a speech-task dataset and a text dataset, counts each MoE "
            "layer's top-k routing per token, computes L_m[l,e] = hits_m[l,e] / (k * tokens_m), chooses the speech "
            "experts per layer and writes them into the checkpoint's config. Datasets are folders saved with "
            "datasets' save_to_disk holding laid-out examples (input_ids [positions, 8], attention_mask, "
            "input_features; labels are ignored) or a 'messages' column of conversations (needs the processor saved "
            "with the checkpoint). Writes to OUTPUT: the checkpoint with the new speech_experts (unless --in-place), "
            "modality_load.json, speech_experts.json, modality_load.png, summary.md and summary.csv."
        ),
    )
    parser.add_argument("--model", required=True, help="checkpoint folder (DeepOmniForConditionalGeneration)")
    parser.add_argument("--speech-data", required=True, help="speech-task dataset folder (save_to_disk)")
    parser.add_argument("--text-data", required=True, help="text dataset folder (save_to_disk)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument(
        "--rule",
        choices=RULES,
        default="ratio",
        help="ratio: L_speech >= threshold * L_text (default); top_n: the N most speech-leaning",
    )
    parser.add_argument(
        "--threshold", type=positive_float, default=DEFAULT_THRESHOLD, help=f"ratio threshold tau (default {DEFAULT_THRESHOLD})"
    )
    parser.add_argument("--top-n", type=positive_int, default=None, help="speech experts per layer for --rule top_n")
    parser.add_argument("--min-speech", type=non_negative_int, default=None, help="fewest speech experts per layer (default top_k)")
    parser.add_argument(
        "--max-speech", type=positive_int, default=None, help="most speech experts per layer (default num_experts - top_k)"
    )
    parser.add_argument(
        "--positions",
        choices=("all", "modality"),
        default="all",
        help="all: every non-padding position of each dataset counts for its modality (default); "
        "modality: only speech positions of the speech data and text positions of the text data",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--max-batches", type=positive_int, default=None, help="stop after this many batches per dataset")
    parser.add_argument("--split", default=None, help="split to use when a folder holds a DatasetDict")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--dtype", default="auto", help="torch dtype to load the model in (default: the checkpoint's)")
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="write speech_experts into MODEL/config.json (atomically) instead of saving a new checkpoint into OUTPUT",
    )
    parser.set_defaults(func=_run_assign_experts_command)
    return parser


def assign_experts(
    model_path: str,
    speech_data: str,
    text_data: str,
    output: str,
    rule: str = "ratio",
    threshold: float = DEFAULT_THRESHOLD,
    top_n: int | None = None,
    min_speech: int | None = None,
    max_speech: int | None = None,
    positions: str = "all",
    batch_size: int = 8,
    max_batches: int | None = None,
    split: str | None = None,
    device: str | None = None,
    dtype: str = "auto",
    in_place: bool = False,
) -> dict:
    """The library function behind `deepomni assign-experts`; returns the assignment, the output paths and a
    summary table."""
    import torch

    from ..modeling import DeepOmniForConditionalGeneration
    from ..processors import DeepOmniDataCollator
    from .data import iterate_batches, load_processor_or_padding, load_stage_dataset
    from .expert_assignment import (
        assign_speech_experts,
        summary_markdown,
        update_checkpoint_config,
        write_assignment_outputs,
    )
    from ..checkpoints import check_checkpoint
    from .modality_load import compute_modality_load

    check_checkpoint(model_path)
    for name, folder in (("--speech-data", speech_data), ("--text-data", text_data)):
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{name} {folder!r}: no such dataset folder (one written by save_to_disk)")
    if os.path.isfile(output):
        raise FileExistsError(f"--output {output!r} is a file; give a folder")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = DeepOmniForConditionalGeneration.from_pretrained(model_path, dtype=dtype).to(device)
    processor = load_processor_or_padding(model_path, model.config)
    collator = DeepOmniDataCollator(processor)
    layout_processor = processor if hasattr(processor, "apply_chat_template") else None
    speech = load_stage_dataset(speech_data, layout_processor, split)
    text = load_stage_dataset(text_data, layout_processor, split)
    load = compute_modality_load(
        model,
        iterate_batches(speech, collator, batch_size),
        iterate_batches(text, collator, batch_size),
        positions=positions,
        max_batches=max_batches,
    )
    assignment = assign_speech_experts(
        load,
        model.config.text_config.num_hidden_layers,
        rule=rule,
        threshold=threshold,
        top_n=top_n,
        min_speech=min_speech,
        max_speech=max_speech,
    )
    os.makedirs(output, exist_ok=True)
    if in_place:
        checkpoint = model_path
        update_checkpoint_config(model_path, assignment.speech_experts)
    else:
        checkpoint = output
        model.set_routing_mode("all")
        model.set_speech_experts(assignment.speech_experts)
        model.save_pretrained(output)
        if hasattr(processor, "save_pretrained"):
            processor.save_pretrained(output)
    paths = write_assignment_outputs(output, load, assignment)
    return {
        "assignment": assignment,
        "load": load,
        "paths": paths,
        "checkpoint": checkpoint,
        "summary": summary_markdown(load, assignment),
    }


def _run_assign_experts_command(args) -> int:
    result = assign_experts(
        args.model,
        args.speech_data,
        args.text_data,
        args.output,
        rule=args.rule,
        threshold=args.threshold,
        top_n=args.top_n,
        min_speech=args.min_speech,
        max_speech=args.max_speech,
        positions=args.positions,
        batch_size=args.batch_size,
        max_batches=args.max_batches,
        split=args.split,
        device=args.device,
        dtype=args.dtype,
        in_place=args.in_place,
    )
    print(result["summary"])
    print(f"speech experts written to {result['checkpoint']}/config.json")
    for kind, path in result["paths"].items():
        print(f"{kind}: {path}")
    return 0


__all__ = ["add_assign_experts_command", "assign_experts"]

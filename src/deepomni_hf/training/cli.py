# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`deepomni assign-experts`: modality load → speech experts → checkpoint config, JSON, heat map, summary.
`deepomni train-codec`: trains a SNAC codec from speech (see `training/codec/`).

Register them in the top-level parser with `add_assign_experts_command(subparsers)` and
`add_train_codec_command(subparsers)`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

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


def add_train_codec_command(subparsers) -> argparse.ArgumentParser:
    from .codec.trainer import CODEC_PRESETS, CodecTrainingConfig

    defaults = CodecTrainingConfig(output_dir="", data=["-"])
    parser = subparsers.add_parser(
        "train-codec",
        help="train a SNAC speech codec (the codec DeepOmni speaks through) from speech",
        description=(
            "Trains a DeepOmniCodecModel (snac's modules: any SNAC config with 7 codes per 2048-sample frame) on speech "
            "from audio folders, .jsonl manifests ({\"audio\": path, \"text\": ...} per line) or datasets folders "
            "(save_to_disk). Losses: multi-resolution log-mel L1, waveform L1, the residual VQ's codebook and "
            "commitment terms, optionally an adversarial stage (--adversarial; meant for GPUs). Checkpoints to "
            "OUTPUT/checkpoint every few minutes; running the same command again resumes. Evaluates every "
            "--eval-every-minutes (ASR-judge WER of resynthesised --eval-data beside the originals, answer clips, mel "
            "distance, codes used, WAVs in OUTPUT/eval/). At the end writes OUTPUT/final (DeepOmniCodecModel + card), "
            "OUTPUT/final-snac (snac's own format) and OUTPUT/learning_curve.png. Run it with `accelerate launch` "
            "for several GPUs."
        ),
    )
    parser.add_argument("--data", action="append", required=True, help="training source (repeatable)")
    parser.add_argument("--data-weights", default=None,
                        help="comma-separated share of the crops per --data source, e.g. 2,1,1 (default: by duration)")
    parser.add_argument("--output-dir", required=True, help="run folder (checkpoints, logs, evaluations, results)")
    parser.add_argument("--eval-data", action="append", default=[], help="held-out speech with `text` (repeatable)")
    parser.add_argument("--answer-data", action="append", default=[],
                        help="answer clips with `text`: the share whose every word the judge hears (repeatable)")
    parser.add_argument("--preset", choices=sorted(CODEC_PRESETS), default=defaults.preset,
                        help="starting codec shape: tiny (0.51 M params, one CPU core) or snac_24khz (19.8 M, GPU)")
    parser.add_argument("--codec-config", default=None,
                        help='JSON object (or a .json file) of DeepOmniCodecConfig fields overriding the preset')
    parser.add_argument("--init-from", default=None, help="start from this codec (DeepOmniCodecModel or snac folder)")
    parser.add_argument("--freeze-codes", action="store_true",
                        help="with --init-from: train the decoder only; the encoder and quantizer, hence every code, "
                             "stay as they are (a model trained on these codes keeps working)")
    parser.add_argument("--audio-column", default=defaults.audio_column)
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed)
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    parser.add_argument("--segment-seconds", type=positive_float, default=defaults.segment_seconds)
    parser.add_argument("--max-steps", type=positive_int, default=defaults.max_steps, help="also the length of the lr schedule")
    parser.add_argument("--stop-after-steps", type=positive_int, default=None,
                        help="stop at this step without changing the lr schedule (reproduces a time-limited run)")
    parser.add_argument("--max-minutes", type=positive_float, default=None, help="stop after this many training minutes")
    parser.add_argument("--learning-rate", type=positive_float, default=defaults.learning_rate)
    parser.add_argument("--warmup-steps", type=positive_int, default=defaults.warmup_steps)
    parser.add_argument("--adversarial", action="store_true", help="add the discriminators (GPU users)")
    parser.add_argument("--adversarial-start-step", type=non_negative_int, default=defaults.adversarial_start_step)
    parser.add_argument("--dead-code-window-refills", type=positive_float, default=defaults.dead_code_window_refills,
                        help="a code unused for this many codebook-sizes of encoder vectors is re-initialised")
    parser.add_argument("--no-fused-snake", action="store_true", help="use snac's own Snake activation")
    parser.add_argument("--mixed-precision", choices=("auto", "no", "bf16", "fp16"), default=defaults.mixed_precision)
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--save-every-minutes", type=positive_float, default=defaults.save_every_minutes)
    parser.add_argument("--eval-every-minutes", type=positive_float, default=defaults.eval_every_minutes)
    parser.add_argument("--eval-at-start", action="store_true", help="also evaluate the untrained codec")
    parser.add_argument("--eval-max-clips", type=positive_int, default=None, help="held-out clips scored (default: all)")
    parser.add_argument("--eval-max-answers", type=positive_int, default=defaults.eval_max_answers,
                        help="answer clips checked in periodic evaluations (the final one checks all)")
    parser.add_argument("--judge-model", default=None, help="faster-whisper model (default: bundled Whisper tiny.en)")
    parser.add_argument("--scope", default=None, help="one paragraph for the card: what the codec is (not) for")
    parser.add_argument("--export-dtype", choices=("float32", "float16"), default="float32")
    parser.set_defaults(func=_run_train_codec_command)
    return parser


def _run_train_codec_command(args) -> int:
    import json
    import shlex
    import sys

    import torch

    from .codec.export import export_codec, plot_learning_curve
    from .codec.trainer import CodecTrainingConfig, load_codec, train_codec

    codec_config = {}
    if args.codec_config:
        text = args.codec_config
        if os.path.isfile(text):
            with open(text, encoding="utf-8") as handle:
                text = handle.read()
        try:
            codec_config = json.loads(text)
        except json.JSONDecodeError as error:
            raise SystemExit(f"--codec-config is neither a JSON object nor a JSON file: {error}") from None
    for source in args.data + args.eval_data + args.answer_data:
        if not os.path.exists(source):
            raise SystemExit(f"train-codec: {source} does not exist (pass audio folders, .jsonl manifests or "
                             "datasets folders).")  # fmt: skip
    weights = [float(w) for w in args.data_weights.split(",")] if args.data_weights else None
    config = CodecTrainingConfig(
        output_dir=args.output_dir, data=args.data, data_weights=weights, eval_data=args.eval_data, answer_data=args.answer_data,
        preset=args.preset, codec_config=codec_config, init_from=args.init_from, audio_column=args.audio_column,
        freeze_codes=args.freeze_codes,
        seed=args.seed, batch_size=args.batch_size, segment_seconds=args.segment_seconds, max_steps=args.max_steps,
        max_minutes=args.max_minutes, stop_after_steps=args.stop_after_steps, learning_rate=args.learning_rate, warmup_steps=args.warmup_steps,
        adversarial=args.adversarial, adversarial_start_step=args.adversarial_start_step,
        dead_code_window_refills=args.dead_code_window_refills, fused_snake=not args.no_fused_snake,
        mixed_precision=args.mixed_precision, num_threads=args.threads, save_every_minutes=args.save_every_minutes,
        eval_every_minutes=args.eval_every_minutes, eval_max_answers=args.eval_max_answers,
        eval_max_clips=args.eval_max_clips, eval_at_start=args.eval_at_start, judge_model=args.judge_model,
    )  # fmt: skip
    result = train_codec(config)
    output = Path(args.output_dir)
    state = torch.load(output / "checkpoint" / "training_state.pt", map_location="cpu", weights_only=True)
    codec = load_codec(output / "checkpoint")
    training = {"command": "deepomni train-codec", "seed": args.seed, "steps": state["step"],
                "training minutes": round(state["wall_seconds"] / 60, 1), "batch": f"{args.batch_size} x "
                f"{args.segment_seconds} s", "learning rate": args.learning_rate, "data": ", ".join(args.data)}  # fmt: skip
    command = "deepomni " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train-codec"] else None
    export_codec(codec, output / "final", snac_folder=output / "final-snac", training=training,
                 evaluation=result if "codes_used" in result else None, scope=args.scope, command=command,
                 repo_id=f"deepomni/{output.name}",
                 dtype=torch.float16 if args.export_dtype == "float16" else None)  # fmt: skip
    if (output / "eval.jsonl").exists():
        plot_learning_curve(output / "eval.jsonl", output / "learning_curve.png")
    print(f"[deepomni] train-codec: {output / 'final'} (DeepOmniCodecModel), {output / 'final-snac'} (snac format)")
    return 0


__all__ = ["add_assign_experts_command", "add_train_codec_command", "assign_experts"]

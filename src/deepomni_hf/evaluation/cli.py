# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`deepomni evaluate` (registered by `add_evaluate_command(subparsers)`)."""

from __future__ import annotations

import argparse
import sys


def add_evaluate_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a checkpoint (text, spoken-qa, asr, tts, latency, routing), optionally against a baseline",
        description="Runs evaluation suites and writes DIR/results.json, DIR/report.md (model vs baseline), "
        "DIR/eval_results.json (for `deepomni push model --eval-results`), plots and the first replies as WAV. "
        "Per-item results go to DIR/items.jsonl: rerunning with the same arguments resumes.",
    )
    parser.add_argument("--model", required=True, help="DeepOmni checkpoint folder or hub id")
    parser.add_argument("--suite", default="spoken-qa", help="comma-separated: text, spoken-qa, asr, tts, latency, routing")
    parser.add_argument("--data", action="append", metavar="[SUITE=]SOURCE",
                        help="dataset folder, hub id, JSONL or CSV, or `asterisk` (Debian's recorded prompts); "
                        "repeat as SUITE=SOURCE for per-suite data")  # fmt: skip
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument("--baseline", help="a second checkpoint, reported beside the model with the relative drop")
    parser.add_argument("--limit", type=int, help="first N rows of each data source")
    parser.add_argument("--split", help="split of a dataset dict / hub dataset (default: train or the only one)")
    for name in ("question", "answer", "text", "audio", "answer_audio", "type", "id"):
        flag = name.replace("_", "-")
        parser.add_argument(f"--{flag}-column", default=name, help=f"column holding the {name.replace('_', ' ')} "
                            f"(default: {name})")  # fmt: skip
    parser.add_argument("--tts", default="flite:slt", help="voice that speaks text questions: flite[:VOICE], "
                        "espeak[:VOICE], piper[:MODEL.onnx], hf:MODEL_ID (default: flite:slt)")  # fmt: skip
    parser.add_argument("--answer-tts", help="spoken-qa: voice that speaks the reference answers for the answer code "
                        "error rate (e.g. the voice the model answers in, flite:rms)")  # fmt: skip
    parser.add_argument("--voice", help="speaker token of spoken replies (ANS_A, M29, F10)")
    parser.add_argument("--judge", help="ASR judge: a faster-whisper model folder or size (default: the bundled tiny.en)")
    parser.add_argument("--text-file", help="held-out text for the text suite's perplexity (one passage per line)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="limit of spoken replies (default: 256)")
    parser.add_argument("--text-max-new-tokens", type=int, default=64, help="limit of text replies (default: 64)")
    parser.add_argument("--num-replies", type=int, default=3, help="replies saved as WAV + text (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--routing-positions", choices=["all", "modality"], default="all")
    parser.add_argument("--lm-eval", action="store_true", help="text suite: also run the exported text model under "
                        "lm-evaluation-harness with the shipped local tasks (pip install lm-eval)")  # fmt: skip
    parser.add_argument("--items", metavar="FILE", help="per-item results file (default: DIR/items.jsonl); share "
                        "one between runs to reuse, e.g., a baseline's items when comparing several models")  # fmt: skip
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--dtype", help="e.g. bfloat16 (default: the checkpoint's)")
    parser.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from .errors import EvaluationError
    from .readers import Columns
    from .runner import evaluate

    names = ("question", "answer", "text", "audio", "answer_audio", "type", "id")
    columns = Columns(**{name: getattr(args, f"{name}_column") for name in names})
    try:
        result = evaluate(
            args.model, args.suite, args.data, args.output, baseline=args.baseline, limit=args.limit, split=args.split,
            columns=columns, judge=args.judge, device=args.device, dtype=args.dtype, tts=args.tts, voice=args.voice,
            answer_tts=args.answer_tts, items_file=args.items,
            text_file=args.text_file, max_new_tokens=args.max_new_tokens, text_max_new_tokens=args.text_max_new_tokens,
            num_replies=args.num_replies, seed=args.seed, routing_positions=args.routing_positions, lm_eval=args.lm_eval,
        )  # fmt: skip
    except (EvaluationError, ValueError) as error:
        print(f"deepomni evaluate: error: {error}", file=sys.stderr)
        return 1
    print(f"Wrote {result.output_dir}/report.md, results.json, eval_results.json "
          f"({result.computed} items evaluated, {result.reused} reused)")  # fmt: skip
    for row in result.results["rows"]:
        if row["role"] == "model":
            value = "–" if row["value"] is None else f"{row['value']:.4g}"
            print(f"  {row['suite']:>9}  {row['metric']:<32} {value:>10}  (n={row['n']})")
    return 0


__all__ = ["add_evaluate_command", "run_evaluate"]

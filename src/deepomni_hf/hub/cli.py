# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`deepomni push model` / `deepomni push dataset`: publish a checkpoint or a dataset to the Hub in one commit.

Registered on the `deepomni` command by `add_push_command(subparsers)`. Credentials come from `hf auth login` or
`HF_TOKEN` (there is deliberately no `--token` flag: command lines end up in shell history and process lists).
"""

from __future__ import annotations

import argparse

from .cards import STAGES


_STAGE_HELP = f"training stage that produced it: {', '.join(STAGES)} (or 1, 2-speech, 2-text, 3); selects the card"


def add_push_command(subparsers) -> argparse.ArgumentParser:
    """Adds `push` (with `model` and `dataset`) to the `deepomni` command's subparsers."""
    push = subparsers.add_parser(
        "push",
        help="publish a DeepOmni checkpoint or dataset to the Hugging Face Hub (one commit, with its card)",
        description="Upload a checkpoint folder or a datasets save_to_disk folder to the Hub in one commit, with a "
        "rendered model / dataset card. Log in first with `hf auth login` (or set HF_TOKEN).",
    )
    kinds = push.add_subparsers(dest="push_kind", required=True, metavar="{model,dataset}")

    model = kinds.add_parser(
        "model",
        help="push a checkpoint folder written by save_pretrained",
        description="Push a DeepOmni checkpoint (config.json, weights, code and processor files) with a model card "
        "for its training stage.",
    )
    model.add_argument("checkpoint", help="checkpoint folder (config.json + model.safetensors or a sharded index)")
    _common(model, _STAGE_HELP)
    model.add_argument("--eval-results", metavar="FILE.json",
                       help="evaluation results for the card's model-index: a JSON list of objects with EvalResult "
                       "fields (task_type, dataset_type, dataset_name, metric_type, metric_value, ...)")  # fmt: skip
    model.add_argument("--base-model", nargs="+", metavar="REPO",
                       help="repo id(s) this checkpoint was trained from (e.g. the previous stage's repo); default: "
                       "the three base checkpoints")  # fmt: skip
    model.add_argument("--dataset", dest="datasets", action="append", metavar="REPO",
                       help="a training dataset's repo id, for the card (repeatable)")  # fmt: skip
    model.add_argument("--license", help="Hub license id (default: DeepSeek's model license, 'other' / 'deepseek'; "
                       "a named --card-template may bring its own)")  # fmt: skip
    model.add_argument("--card-template", metavar="NAME_OR_FILE",
                       help="card template instead of the stage's: a template of hub_cards/ by name (deepomni_tiny: "
                       "the card of the shipped DeepOmni-Tiny) or a Jinja .md file")  # fmt: skip
    model.add_argument("--reproduction", metavar="FILE.json",
                       help="a reproduction summary for the card (benchmarks/reproduction.py's reproduction.json), "
                       "available to the template as `reproduction`")  # fmt: skip
    model.add_argument("--dry-run", action="store_true", help="check the folder, print the card and the file list; "
                       "upload nothing")  # fmt: skip
    model.set_defaults(func=_run_push_model)

    dataset = kinds.add_parser(
        "dataset",
        help="push a datasets save_to_disk folder (as Parquet shards)",
        description="Push a datasets save_to_disk folder as Parquet shards under data/ with a dataset card, so that "
        "datasets.load_dataset(REPO) loads it.",
    )
    dataset.add_argument("dataset_dir", metavar="DIR", help="folder written by Dataset/DatasetDict.save_to_disk")
    _common(dataset, "training stage the data is for (card text and task categories)")
    dataset.add_argument("--license", help="Hub license id of the data (e.g. cc-by-4.0)")
    dataset.add_argument("--pretty-name", help="the dataset's display name (default: the repo name)")
    dataset.add_argument("--description", help="a paragraph describing the data, for the card")
    dataset.add_argument("--max-shard-size", default="500MB", help="largest Parquet shard (default 500MB)")
    dataset.set_defaults(func=_run_push_dataset)
    return push


def _common(parser: argparse.ArgumentParser, stage_help: str) -> None:
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="the Hub repo to push to")
    parser.add_argument("--stage", help=stage_help)
    parser.add_argument("--private", action="store_true", help="create the repo as private (new repos only)")
    parser.add_argument("--revision", metavar="BRANCH", help="branch to commit to, created from main if missing")
    parser.add_argument("--commit-message", help="commit message (default: describes the upload)")
    parser.add_argument("--language", nargs="+", default=["en"], help="language code(s) for the card (default: en)")


def _run_push_model(args) -> int:
    from .publish import prepare_model_upload, push_model

    options = {
        "eval_results": args.eval_results,
        "base_model": args.base_model,
        "datasets": args.datasets,
        "license": args.license,
        "language": args.language,
        "card_template": args.card_template,
        "reproduction": args.reproduction,
    }
    if args.dry_run:
        plan = prepare_model_upload(args.checkpoint, args.repo_id, args.stage, **options)
        print(str(plan.card))
        print(f"\nwould upload {len(plan.files)} file(s) to {args.repo_id}:")
        for path in plan.paths:
            print(f"  {path}")
        return 0
    commit = push_model(
        args.checkpoint, args.repo_id, stage=args.stage, private=args.private, revision=args.revision,
        commit_message=args.commit_message, **options,
    )  # fmt: skip
    print(f"pushed {args.checkpoint} to {commit.repo_url} ({args.revision or 'main'}) in commit {commit.oid}")
    return 0


def _run_push_dataset(args) -> int:
    from .publish import push_dataset

    commit = push_dataset(
        args.dataset_dir, args.repo_id, stage=args.stage, private=args.private, revision=args.revision,
        commit_message=args.commit_message, license=args.license, language=args.language,
        pretty_name=args.pretty_name, description=args.description, max_shard_size=args.max_shard_size,
    )  # fmt: skip
    print(f"pushed {args.dataset_dir} to {commit.repo_url} ({args.revision or 'main'}) in commit {commit.oid}")
    return 0


__all__ = ["add_push_command"]

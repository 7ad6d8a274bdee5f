"""The `deepomni` command line. Each subcommand is a thin layer over a library function: parse, call, summarise."""

import argparse
import sys


def _add_demo(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="build a tiny random DeepOmni, save it, reload it through the Auto classes and run one forward pass",
        description="Until a trained checkpoint ships, this shows the model end to end on random weights: "
        "its outputs mean nothing.",
    )
    parser.add_argument("--output", default="tiny-deepomni", help="folder for the tiny checkpoint")
    parser.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from .demo import run_demo

    report = run_demo(args.output)
    for line in report:
        print(line)
    return 0


# Subcommand registrars, in the order `deepomni --help` lists them.
COMMANDS = [_add_demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepomni", description="DeepOmni speech-to-speech MoE LLM tools.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

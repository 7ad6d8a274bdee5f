"""The `deepomni` command line. Each subcommand is a thin layer over a library function: parse, call, summarise.

User errors from any subcommand end as one line, `deepomni <command>: error: <what is wrong and what to do>`, with exit
code 1 (2 for usage errors, as argparse does); `--debug` or `DEEPOMNI_DEBUG=1` shows the traceback instead.
"""

import argparse
import os
import sys

from .cli_types import non_negative_int, positive_int
from .errors import DeepOmniUsageError, DeepOmniUserError


def _add_convert(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="build a DeepOmni checkpoint from a DeepSeek-V2 backbone, a Whisper checkpoint and a SNAC checkpoint",
        description="Streams the three base checkpoints (local folders or Hugging Face Hub ids) into one DeepOmni "
        "checkpoint: the backbone with its embedding extended to the 8-stream vocabulary (head tied to it), Whisper's "
        "encoder, a new speech adapter, the SNAC codec, the modeling code and the processor. The output is written to "
        "a temporary folder and renamed at the end, so a failed run leaves nothing behind.",
    )
    parser.add_argument("--text-model", required=True, help="DeepSeek-V2 folder or hub id (deepseek-ai/DeepSeek-V2-Lite-Chat)")
    parser.add_argument("--audio-encoder", required=True,
                        help="Whisper folder or hub id: transformers (openai/whisper-medium) or CTranslate2 / "
                        "faster-whisper (a folder with model.bin)")  # fmt: skip
    parser.add_argument("--codec", required=True, help="SNAC folder or hub id in snac's format (hubertsiuzdak/snac_24khz), "
                        "or a DeepOmniCodecModel folder (deepomni train-codec)")  # fmt: skip
    parser.add_argument("--output", required=True, help="folder to create")
    parser.add_argument("--speech-experts", help='JSON file: {"speech_experts": [[...], ...]} or a list of lists, one per layer')
    parser.add_argument("--dtype", help="dtype of the written weights, e.g. bfloat16 (default: keep each source's)")
    parser.add_argument("--max-shard-size", default="5GB", help="largest output shard (default: 5GB)")
    parser.add_argument("--keep-source-lm-head", action="store_true",
                        help="keep the backbone's untied output head instead of tying the head to the embedding")  # fmt: skip
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the new embedding rows and adapter weights")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--adapter-intermediate-size", type=positive_int, default=None,
                        help="width of the new speech adapter (default: the published 7168)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run_convert)


def _run_convert(args) -> int:
    from .hub.conversion import convert_checkpoint

    result = convert_checkpoint(
        args.text_model,
        args.audio_encoder,
        args.codec,
        args.output,
        speech_experts=args.speech_experts,
        dtype=args.dtype,
        max_shard_size=args.max_shard_size,
        overwrite=args.overwrite,
        keep_source_lm_head=args.keep_source_lm_head,
        seed=args.seed,
        progress=not args.no_progress,
        **({"adapter_intermediate_size": args.adapter_intermediate_size} if args.adapter_intermediate_size else {}),
    )
    config = result.config
    print(f"Wrote {result.output_dir}")
    print(f"  {result.num_tensors} tensors, {result.total_bytes / 1e9:.2f} GB in {result.num_shards} shard(s)")
    print(f"  vocabulary: {config.text_vocab_size} text ids, {config.total_vocab_size} in all (8-stream layout)")
    print(f"  processor saved: {result.processor_saved}, tokenizer saved: {result.tokenizer_saved}")
    for note in result.notes:
        print(f"  note: {note}")
    return 0


def _add_replace_codec(subparsers) -> None:
    parser = subparsers.add_parser(
        "replace-codec",
        help="put another codec (e.g. a decoder fine-tuned with train-codec --freeze-codes) into a DeepOmni checkpoint",
        description="Writes CHECKPOINT with the codec of --codec. The model was trained on its codec's codes, so the "
        "new codec must assign the same ones: both encode a probe signal and a differing code refuses the swap "
        "(--allow-new-codes overrides). Only codec_model.* tensors change; the output is written to a temporary "
        "folder and renamed at the end.",
    )
    parser.add_argument("checkpoint", help="DeepOmni checkpoint folder (one model.safetensors)")
    parser.add_argument("--codec", required=True, help="the new codec: a DeepOmniCodecModel folder or snac's format")
    parser.add_argument("--output", required=True, help="folder to create")
    parser.add_argument("--dtype", help="store every floating tensor in this dtype, e.g. float16 (default: keep)")
    parser.add_argument("--allow-new-codes", action="store_true", help="swap even if the codes differ")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.set_defaults(func=_run_replace_codec)


def _run_replace_codec(args) -> int:
    from .hub.conversion import replace_codec

    result = replace_codec(args.checkpoint, args.codec, args.output, dtype=args.dtype,
                           allow_new_codes=args.allow_new_codes, overwrite=args.overwrite)  # fmt: skip
    print(f"Wrote {result.output_dir}: {result.codec_tensors} codec tensors replaced; "
          f"{result.codes_checked - result.codes_differing} of {result.codes_checked} probe codes unchanged")  # fmt: skip
    for note in result.notes:
        print(f"  note: {note}")
    return 0


def _add_export_text_model(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-text-model",
        help="write the text LLM of a DeepOmni checkpoint as a plain DeepseekV2ForCausalLM (for text benchmarks)",
        description="Writes the backbone with its embedding and head cut to the text vocabulary, in transformers' "
        "deepseek_v2 layout, loadable with AutoModelForCausalLM; the tokenizer is copied without DeepOmni's specials.",
    )
    parser.add_argument("checkpoint", help="DeepOmni checkpoint folder or hub id")
    parser.add_argument("output", help="folder to create")
    parser.add_argument("--max-shard-size", default="5GB", help="largest output shard (default: 5GB)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_run_export_text_model)


def _run_export_text_model(args) -> int:
    from .hub.conversion import export_text_model

    result = export_text_model(
        args.checkpoint,
        args.output,
        overwrite=args.overwrite,
        max_shard_size=args.max_shard_size,
        progress=not args.no_progress,
    )
    print(f"Wrote {result.output_dir} (DeepseekV2ForCausalLM, vocab_size {result.config.vocab_size})")
    print(f"  {result.num_tensors} tensors, {result.total_bytes / 1e9:.2f} GB in {result.num_shards} shard(s)")
    print(f"  tokenizer copied: {result.tokenizer_saved}")
    for note in result.notes:
        print(f"  note: {note}")
    return 0


def _add_chat(subparsers) -> None:
    from .pipelines.cli import add_chat_command

    add_chat_command(subparsers)


def _add_train_codec(subparsers) -> None:
    from .training.cli import add_train_codec_command

    add_train_codec_command(subparsers)


def _add_push(subparsers) -> None:
    from .hub.cli import add_push_command

    add_push_command(subparsers)


def _add_data(subparsers) -> None:
    from .data.cli import add_data_commands

    add_data_commands(subparsers)


def _add_assign_experts(subparsers) -> None:
    from .training.cli import add_assign_experts_command

    add_assign_experts_command(subparsers)


def _add_serve(subparsers) -> None:
    from .serving.cli import add_serve_command

    add_serve_command(subparsers)


def _add_evaluate(subparsers) -> None:
    from .evaluation.cli import add_evaluate_command

    add_evaluate_command(subparsers)


# Subcommand registrars, in the order `deepomni --help` lists them.
COMMANDS = [_add_chat, _add_serve, _add_convert, _add_replace_codec, _add_export_text_model, _add_data, _add_assign_experts, _add_train_codec,
            _add_evaluate, _add_push]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepomni", description="DeepOmni speech-to-speech MoE LLM tools.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error (or set DEEPOMNI_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    _add_debug_flag(subparsers)
    parser.command_parsers = subparsers.choices  # for usage lines of errors found after parsing
    return parser


def _add_debug_flag(subparsers: argparse._SubParsersAction) -> None:
    """`--debug` is accepted after the subcommand too (SUPPRESS keeps a subparser from resetting the global flag)."""
    for subparser in set(subparsers.choices.values()):
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        for action in subparser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_debug_flag(action)


def _command_name(args: argparse.Namespace) -> str:
    return " ".join(str(part) for part in (args.command, getattr(args, "push_kind", None)) if part)


def _is_network_error(error: BaseException) -> bool:
    """httpx's transport errors (the Hub client's) are not OSErrors: a refused connection or DNS failure."""
    return any(cls.__module__.startswith("httpx") and cls.__name__ == "TransportError" for cls in type(error).__mro__)


def user_error_message(error: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input or environment; `None` for anything else (a bug,
    whose traceback is worth seeing)."""
    if _is_network_error(error):
        from huggingface_hub import constants

        return (
            f"cannot reach the Hugging Face Hub at {constants.ENDPOINT} ({error}). Check the network connection or "
            "HF_ENDPOINT, or use local folders."
        )
    if isinstance(error, ModuleNotFoundError):
        return f"{error}. Install the missing package (e.g. pip install 'deepomni_hf[audio,data]')."
    from huggingface_hub.errors import StrictDataclassError  # a config value out of range

    if not isinstance(error, (DeepOmniUserError, ValueError, OSError, StrictDataclassError)):
        return None
    if isinstance(error, OSError) and error.filename and error.strerror and str(error).startswith("[Errno"):
        # The OS's own wording ("[Errno 2] No such file or directory: 'x'") says what, not what to do.
        return f"{error.strerror}: {error.filename}. Check the path (relative paths start at {os.getcwd()})."
    message = " ".join(str(error).split()) or type(error).__name__
    if type(error).__name__ == "OfflineModeIsEnabled":
        message += " (offline mode: unset HF_HUB_OFFLINE to reach the Hub, or use local folders)"
    return message


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("DEEPOMNI_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    command = _command_name(args)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"deepomni {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        message = None if debug else user_error_message(error)
        if message is None:
            raise
        usage_error = isinstance(error, DeepOmniUsageError)
        if usage_error:  # like argparse: the usage line, then the error line, exit code 2
            parser.command_parsers[args.command].print_usage(sys.stderr)
        print(f"deepomni {command}: error: {message}", file=sys.stderr)
        return 2 if usage_error else 1


if __name__ == "__main__":
    sys.exit(main())

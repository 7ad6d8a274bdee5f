"""`deepomni chat`: speech (or text) in → text printed and speech written to a WAV file."""

import sys
from pathlib import Path

import numpy as np

from ..cli_types import non_negative_int, positive_int
from ..errors import DeepOmniUsageError, DeepOmniUserError


DEFAULT_TINY_MODEL = "tiny-deepomni"


def add_chat_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="answer a spoken question (WAV) or a text with text and speech",
        description="Prints the text reply and writes the spoken reply (24 kHz WAV). Without --model, a tiny random "
        f"model is built in ./{DEFAULT_TINY_MODEL} on first use: its replies are untrained noise until a trained "
        "checkpoint is given.",
    )
    parser.add_argument("input", nargs="?", help="the spoken question: a WAV (or any audio file) path")
    parser.add_argument("--text", help="a written question instead of INPUT")
    parser.add_argument("--model", help="checkpoint folder or hub id (default: the local tiny random model)")
    parser.add_argument("--output", default="reply.wav", help="where to write the spoken reply (default reply.wav)")
    parser.add_argument("--voice", default=None, choices=["ANS_A", "M29", "F10"], help="speaker token of the reply")
    parser.add_argument("--text-only", action="store_true", help="reply with text only")
    parser.add_argument("--stream", action="store_true", help="print text and write audio chunks as they come")
    parser.add_argument("--max-new-tokens", type=positive_int, default=None, help="longest reply, in decoding steps")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed (a reply regenerates exactly)")
    parser.set_defaults(func=run_chat)


def load_chat_pipeline(model: str | None):
    """The speech-to-speech pipeline of `model`, or of the default model when `None` (shared by `deepomni chat` and
    `deepomni serve`, so both answer with the same default)."""
    from transformers import pipeline

    from ..checkpoints import check_checkpoint

    if model is not None:
        check_checkpoint(model)  # one clear line for a missing / truncated / foreign checkpoint, never a [y/N] question
    else:
        from ..tiny import save_tiny_checkpoint

        model = DEFAULT_TINY_MODEL
        if not (Path(model) / "config.json").exists():
            print(f"building a tiny random DeepOmni in ./{model} (untrained: its replies are noise)", file=sys.stderr)
            save_tiny_checkpoint(model)
    return pipeline("speech-to-speech", model=model)


def write_wav(path: str | Path, chunks, sampling_rate: int) -> int:
    """Writes float32 chunks to a 16-bit WAV through a temporary file, renamed at the end: no half-written reply.
    Returns the number of samples written."""
    import soundfile as sf

    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    written = 0
    try:
        with sf.SoundFile(tmp, "w", samplerate=sampling_rate, channels=1, subtype="PCM_16", format="WAV") as wav:
            for chunk in chunks:
                if chunk is not None and len(chunk):
                    wav.write(np.clip(chunk, -1.0, 1.0))
                    written += len(chunk)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return written


def run_chat(args) -> int:
    if (args.input is None) == (args.text is None):
        raise DeepOmniUsageError("give either an audio file (INPUT) or --text, not both or neither")
    if args.input is not None and not Path(args.input).is_file():
        # INPUT is always a file: a question typed there by mistake must not be answered as text.
        raise DeepOmniUserError(
            f"no audio file at {args.input!r} (relative paths start at {Path.cwd()}); to ask in writing use --text"
        )
    if args.text is not None and not args.text.strip():
        raise DeepOmniUserError("--text is empty: give the question to ask")
    output = Path(args.output)
    if output.is_dir() or not output.parent.is_dir() or output.suffix.lower() != ".wav":
        raise DeepOmniUserError(f"--output {args.output!r} must be a .wav file path in an existing folder")
    return _chat(args)


def _chat(args) -> int:
    chat = load_chat_pipeline(args.model)
    inputs = args.text if args.text is not None else args.input
    options = {"seed": args.seed, "reply_modality": "text" if args.text_only else "speech"}
    if args.voice:
        options["voice"] = args.voice
    if args.max_new_tokens is not None:
        options["max_new_tokens"] = args.max_new_tokens
    rate = chat.model.config.codec_config.sampling_rate
    if args.stream:

        def audio_chunks():
            for piece in chat(inputs, stream=True, **options):
                if piece["text"]:
                    print(piece["text"], end="", flush=True)
                yield piece["audio"]

        samples = write_wav(args.output, audio_chunks(), rate)
        print()
    else:
        reply = chat(inputs, **options)
        print(reply["text"])
        samples = write_wav(args.output, [reply["audio"]], rate)
    if not args.text_only:
        print(f"wrote {args.output} ({samples / rate:.2f} s at {rate} Hz)", file=sys.stderr)
    return 0


__all__ = ["add_chat_command", "load_chat_pipeline", "run_chat", "write_wav"]

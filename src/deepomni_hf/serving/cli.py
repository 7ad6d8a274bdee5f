"""`deepomni serve`: the OpenAI-compatible speech endpoint and the voice-chat page, served by uvicorn."""

import sys
from pathlib import Path

from ..cli_types import positive_float, positive_int
from ..errors import DeepOmniUserError


def add_serve_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a checkpoint over HTTP: OpenAI-compatible chat completions with audio, and a voice-chat page",
        description="POST /v1/chat/completions (OpenAI's format with input_audio parts and audio replies, streamed as "
        "server-sent events with stream=true), GET /v1/models, GET /health, and a voice-chat page at /. Without "
        "--model it serves the same default model as `deepomni chat`.",
    )
    parser.add_argument("--model", help="checkpoint folder or hub id (default: the same default as `deepomni chat`)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-concurrency", type=positive_int, default=8, help="requests decoded together (default 8)")
    parser.add_argument("--max-queue", type=positive_int, default=32, help="requests that may wait beyond a full batch (default 32)")
    parser.add_argument("--queue-timeout", type=positive_float, default=60.0, help="seconds a request may wait (default 60)")
    parser.add_argument("--max-audio-seconds", type=positive_float, default=29.98,
                        help="longest spoken turn accepted, at most 29.98 (default 29.98)")  # fmt: skip
    parser.add_argument("--max-body-mb", type=positive_float, default=25.0, help="largest request body in MiB (default 25)")
    parser.add_argument("--max-completion-tokens", type=positive_int, default=2048, help="largest reply length in steps")
    parser.add_argument("--frames-per-chunk", type=positive_int, default=2,
                        help="SNAC frames (85.3 ms) per streamed PCM chunk after the first; more = less codec work")  # fmt: skip
    parser.add_argument("--model-name", help="the model id clients pass (default: the checkpoint folder's name)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    parser.set_defaults(func=run_serve)


def run_serve(args) -> int:
    try:
        import uvicorn
    except ImportError as error:
        raise DeepOmniUserError("needs the `serve` extra: pip install 'deepomni-hf[serve]'") from error
    from ..pipelines.cli import DEFAULT_TINY_MODEL, load_chat_pipeline
    from .app import create_app
    from .settings import ServeSettings

    settings = ServeSettings(
        model_id=args.model_name or Path(args.model or DEFAULT_TINY_MODEL).name,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        queue_timeout=args.queue_timeout,
        max_audio_seconds=args.max_audio_seconds,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_completion_tokens=args.max_completion_tokens,
        default_completion_tokens=min(512, args.max_completion_tokens),
        frames_per_chunk=args.frames_per_chunk,
    )
    chat = load_chat_pipeline(args.model)  # user errors (bad checkpoint, settings) reach cli.main's one-line handler
    model = chat.model.to(args.device) if args.device else chat.model
    app = create_app(model, chat.processor, settings)
    print(f"serving {settings.model_id!r} on http://{args.host}:{args.port}/ (page at /, API at /v1)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


__all__ = ["add_serve_command", "run_serve"]

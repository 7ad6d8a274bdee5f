"""The FastAPI application: `POST /v1/chat/completions` (OpenAI's chat-completions format with audio, streamed as
server-sent events or not), `GET /v1/models`, `GET /health`, and the voice-chat page at `/`."""

import asyncio
import base64
import json
import logging
import secrets
import time
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .audio_io import encode_reply_audio, to_pcm16
from .audio_store import AudioStore
from .conversation import to_deepomni_messages
from .engine import BatchKey, DeepOmniEngine
from .errors import APIError, bad_request, error_body
from .scheduler import BatchScheduler, Job
from .schemas import DEFAULT_VOICE, OUTPUT_AUDIO_FORMATS, VOICES, ChatCompletionRequest
from .settings import ServeSettings


logger = logging.getLogger("deepomni_hf.serving")


class _BodyLimit:
    """ASGI middleware: refuses bodies over `limit` bytes from their Content-Length before reading them, and stops
    reading a body without one (chunked) as soon as it passes the limit."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await _send_json(send, 413, error_body(413, self._message(), code="request_too_large"))
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise APIError(413, self._message(), code="request_too_large")
            return message

        await self.app(scope, limited_receive, send)

    def _message(self) -> str:
        return f"The request body is larger than {self.limit} bytes; send shorter audio."


async def _send_json(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _validation_error(error: ValidationError) -> APIError:
    """pydantic's first complaint as a 400, naming the field but never quoting the value."""
    first = error.errors(include_input=False, include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"])
    return bad_request(f"{location or 'body'}: {first['msg']}", param=location or None)


# How often a non-streamed request checks that its client is still there (streamed ones notice on their next write).
DISCONNECT_POLL_SECONDS = 0.25


def create_app(model, processor, settings: ServeSettings | None = None) -> FastAPI:
    """The app serving `model` (a `DeepOmniForConditionalGeneration`) with its `processor`."""
    settings = settings or ServeSettings()
    engine = DeepOmniEngine(model, processor, frames_per_chunk=settings.frames_per_chunk)
    scheduler = BatchScheduler(
        engine, settings.max_concurrency, settings.max_queue, settings.queue_timeout, settings.batch_window
    )
    store = AudioStore(settings.audio_store_entries, settings.audio_ttl_seconds)
    created = int(time.time())

    app = FastAPI(title="DeepOmni", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine, app.state.scheduler, app.state.store, app.state.settings = engine, scheduler, store, settings
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    app.router.add_event_handler("shutdown", scheduler.close)

    @app.exception_handler(APIError)
    async def _api_error(request, error: APIError):
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, error: StarletteHTTPException):
        message = {404: "Unknown route.", 405: "Method not allowed on this route."}.get(error.status_code, str(error.detail))
        return JSONResponse(error_body(error.status_code, message), status_code=error.status_code)

    @app.exception_handler(Exception)
    async def _internal_error(request, error: Exception):
        logger.error("internal error on %s: %s", request.url.path, type(error).__name__)  # no body, no headers
        return JSONResponse(error_body(500, "Internal server error."), status_code=500)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": settings.model_id, **scheduler.stats()}

    card = {"id": settings.model_id, "object": "model", "created": created, "owned_by": "deepomni_hf"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [card]}

    @app.get("/v1/models/{model_id}")
    async def model_card(model_id: str):
        if model_id != settings.model_id:
            raise APIError(404, f"Model {model_id[:64]!r} is not served here; GET /v1/models lists it.",
                           code="model_not_found")  # fmt: skip
        return card

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("application/json"):
            raise APIError(415, "Send the request as JSON (Content-Type: application/json).", code="unsupported_media_type")
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise bad_request("The request body is not valid JSON.", code="invalid_json") from None
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.", code="invalid_json")
        try:
            chat = ChatCompletionRequest.model_validate(body)
        except ValidationError as error:
            raise _validation_error(error) from None
        del raw, body
        if chat.model is not None and chat.model != settings.model_id:
            raise APIError(404, f"Model {chat.model[:64]!r} is not served here; use {settings.model_id!r}.", param="model",
                           code="model_not_found")  # fmt: skip
        speech = "audio" in (chat.modalities or ["text"])
        audio = chat.audio
        voice_name = audio.voice if audio else DEFAULT_VOICE
        audio_format = audio.format if audio else "wav"
        if voice_name not in VOICES:
            raise bad_request(f"Unknown voice {voice_name!r}; use one of {sorted(VOICES)}.", param="audio.voice",
                              code="unknown_voice")  # fmt: skip
        if audio_format not in OUTPUT_AUDIO_FORMATS:
            raise bad_request(f"Unsupported audio.format {audio_format!r}; use one of {list(OUTPUT_AUDIO_FORMATS)}.",
                              param="audio.format", code="unsupported_audio_format")  # fmt: skip
        max_steps = chat.max_completion_tokens or chat.max_tokens or settings.default_completion_tokens
        if max_steps > settings.max_completion_tokens:
            raise bad_request(f"max_completion_tokens is {max_steps}; this server allows at most "
                              f"{settings.max_completion_tokens}.", param="max_completion_tokens",
                              code="too_many_tokens")  # fmt: skip
        voice, modality = VOICES[voice_name], "speech" if speech else "text"

        def prepare():
            messages = to_deepomni_messages(chat.messages, store, settings.max_audio_seconds)
            try:
                return engine.build_prompt(messages, modality, voice)
            except ValueError as error:  # layout or audio problems, with the processor's message
                raise bad_request(str(error), param="messages") from None

        with scheduler.arrival() as arrival:
            prompt = await run_in_threadpool(prepare)
            if prompt.num_positions + max_steps > engine.max_positions:
                raise bad_request(f"The conversation takes {prompt.num_positions} positions and the reply up to "
                                  f"{max_steps}: over the model's {engine.max_positions}. Shorten the history or "
                                  "max_completion_tokens.", param="messages", code="context_length_exceeded")  # fmt: skip
            seed = chat.seed if chat.seed is not None else secrets.randbits(31)
            key = BatchKey(modality, 1.0 if chat.temperature is None else chat.temperature, chat.top_p)
            stream = engine.new_stream(seed, max_steps)
            await scheduler.admit(Job(key, prompt, stream), arrival)

        reply = _Reply(settings, engine, store, stream, speech, audio_format, voice, prompt.num_positions)
        if chat.stream:
            include_usage = bool((chat.stream_options or {}).get("include_usage"))
            return StreamingResponse(reply.events(include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip
        collecting = asyncio.ensure_future(run_in_threadpool(reply.collect))
        try:
            while not collecting.done():
                await asyncio.wait({collecting}, timeout=DISCONNECT_POLL_SECONDS)
                if not collecting.done() and await request.is_disconnected():
                    stream.cancel()  # the client went away: its rows leave the batch at the next step
            return JSONResponse(collecting.result())
        finally:
            stream.cancel()  # a no-op once done

    return app


class _Reply:
    """Turns one request's `ReplyStream` into an OpenAI response, streamed or whole."""

    def __init__(self, settings, engine, store, stream, speech, audio_format, voice, prompt_positions):
        self.settings, self.engine, self.store, self.stream = settings, engine, store, stream
        self.speech, self.audio_format, self.voice = speech, audio_format, voice
        self.prompt_positions = prompt_positions
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.audio_id = AudioStore.new_id()
        self.created = int(time.time())

    def _finish(self) -> tuple[str, dict | None]:
        """After the stream ended: keep the spoken reply for multi-turn use; finish reason."""
        if self.stream.error:
            raise APIError(500, self.stream.error, code="generation_failed")
        entry = None
        if self.speech:
            entry = self.store.put(self.audio_id, self.stream.codes, self.stream.text, self.voice)
        return ("length" if self.stream.truncated else "stop"), entry

    def _usage(self) -> dict:
        steps = self.stream.steps
        return {"prompt_tokens": self.prompt_positions, "completion_tokens": steps,
                "total_tokens": self.prompt_positions + steps}  # fmt: skip

    def collect(self) -> dict:
        pcm = []
        for _, audio in self.stream:
            if audio.size:
                pcm.append(to_pcm16(audio))
        reason, entry = self._finish()
        text = self.stream.text
        message = {"role": "assistant", "content": text, "refusal": None, "audio": None}
        if entry is not None:
            message["audio"] = {
                "id": self.audio_id,
                "data": encode_reply_audio(b"".join(pcm), self.audio_format, self.engine.sampling_rate),
                "transcript": text,
                "expires_at": entry.expires_at,
            }
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.settings.model_id,
            "choices": [{"index": 0, "message": message, "finish_reason": reason, "logprobs": None}],
            "usage": self._usage(),
        }  # fmt: skip

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> str:
        chunk = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.settings.model_id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }  # fmt: skip
        return f"data: {json.dumps(chunk)}\n\n"

    async def events(self, include_usage: bool):
        """SSE: a role chunk; text pieces (`delta.content`, or `delta.audio.transcript` for spoken replies) and PCM16
        chunks (`delta.audio.data`, base64) as they are generated; a last chunk with the finish reason; `[DONE]`."""
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            async for piece, audio in iterate_in_threadpool(iter(self.stream)):
                if not self.speech:
                    if piece:
                        yield self._chunk({"content": piece})
                    continue
                delta = {"id": self.audio_id}
                if piece:
                    delta["transcript"] = piece
                if audio.size:
                    delta["data"] = base64.b64encode(to_pcm16(audio)).decode("ascii")
                yield self._chunk({"audio": delta})
            try:
                reason, entry = self._finish()
            except APIError as error:
                yield f"data: {json.dumps(error.body())}\n\n"
                return
            last = {"audio": {"id": self.audio_id, "expires_at": entry.expires_at}} if entry is not None else {}
            yield self._chunk(last, finish_reason=reason)
            if include_usage:
                yield f"data: {json.dumps({'id': self.id, 'object': 'chat.completion.chunk', 'created': self.created, 'model': self.settings.model_id, 'choices': [], 'usage': self._usage()})}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            self.stream.cancel()  # a no-op once done; frees the rows at the next step if the client went away


__all__ = ["create_app"]

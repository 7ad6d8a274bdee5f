"""Limits and settings of a `deepomni serve` process."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    model_id: str = "deepomni"  # the name clients pass as `model` (listed by GET /v1/models)
    max_concurrency: int = 8  # requests decoded together in one batch
    max_queue: int = 32  # requests waiting beyond a full batch (more: 429)
    queue_timeout: float = 60.0  # seconds a request may wait for its batch (longer: 503)
    batch_window: float = 0.05  # seconds the oldest waiting request waits for others to join its batch
    max_audio_seconds: float = 29.98  # per spoken turn (Whisper's 30-second window)
    max_body_bytes: int = 25 * 1024 * 1024  # larger request bodies: 413, refused from Content-Length
    max_completion_tokens: int = 2048  # largest `max_completion_tokens` accepted (decoding steps)
    default_completion_tokens: int = 512  # when the request gives none
    audio_ttl_seconds: float = 3600.0  # how long a spoken reply can be referred to by id
    audio_store_entries: int = 256
    frames_per_chunk: int = 2  # SNAC frames (85.3 ms each) per streamed PCM chunk, after the first

    def __post_init__(self):
        checks = {
            "max_concurrency": self.max_concurrency >= 1,
            "max_queue": self.max_queue >= 0,
            "queue_timeout": self.queue_timeout > 0,
            "batch_window": self.batch_window >= 0,
            "max_audio_seconds": 0 < self.max_audio_seconds <= 29.98,
            "max_body_bytes": self.max_body_bytes > 0,
            "max_completion_tokens": self.max_completion_tokens >= 1,
            "default_completion_tokens": 1 <= self.default_completion_tokens <= self.max_completion_tokens,
            "frames_per_chunk": self.frames_per_chunk >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"Invalid serve settings: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)} "
                             "(max_audio_seconds must be in (0, 29.98]; counts positive).")  # fmt: skip


__all__ = ["ServeSettings"]

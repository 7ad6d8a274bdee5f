"""`deepomni serve`: an OpenAI-compatible chat-completions endpoint with audio in and out (streamed as server-sent
events), a batching queue that decodes concurrent requests together, and a voice-chat page.

Modules: `schemas` (request bodies, voices), `errors` (OpenAI's error shape, status codes), `audio_io` (base64 audio in,
PCM16 / WAV out), `audio_store` (spoken replies kept for multi-turn use), `conversation` (OpenAI messages → DeepOmni
messages), `engine` (the one adapter over `generate`), `scheduler` (the batching queue), `settings`, `app` (routes),
`cli` (`deepomni serve`), `static/index.html` (the page).
"""

from .app import create_app
from .settings import ServeSettings


__all__ = ["ServeSettings", "create_app"]

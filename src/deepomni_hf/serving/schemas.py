"""Request and response bodies of `POST /v1/chat/completions`, OpenAI's chat-completions format with audio.

Only what DeepOmni can honour is accepted; unknown top-level fields that OpenAI clients send routinely (`user`,
`metadata`, `store`, ...) are ignored. Everything is validated here, before a request reaches the queue.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


# OpenAI voice names → DeepOmni speaker tokens (DESIGN §3). The speaker tokens themselves are accepted as well.
VOICES = {
    "alloy": "ANS_A",  # the default assistant voice of the published system
    "echo": "M29",  # male voice
    "shimmer": "F10",  # female voice
    "ANS_A": "ANS_A",
    "M29": "M29",
    "F10": "F10",
}
DEFAULT_VOICE = "alloy"
INPUT_AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg", "webm", "m4a")
OUTPUT_AUDIO_FORMATS = ("wav", "pcm16")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputAudio(_Strict):
    data: str = Field(min_length=1)
    format: str = "wav"


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class InputAudioPart(_Strict):
    type: Literal["input_audio"]
    input_audio: InputAudio


ContentPart = Annotated[TextPart | InputAudioPart, Field(discriminator="type")]


class AudioReference(BaseModel):
    """An earlier assistant reply's audio, sent back by id (OpenAI's multi-turn audio)."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=128)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")  # e.g. `name`, `refusal` from echoed assistant messages
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    audio: AudioReference | None = None


class AudioOutput(_Strict):
    voice: str = DEFAULT_VOICE
    format: str = "wav"


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    modalities: list[str] | None = None
    audio: AudioOutput | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)  # OpenAI's older name
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    stream: bool = False
    n: int = Field(default=1, ge=1, le=1)
    stream_options: dict[str, Any] | None = None

    @field_validator("modalities")
    @classmethod
    def _known_modalities(cls, value):
        if value is None:
            return value
        unknown = [m for m in value if m not in ("text", "audio")]
        if unknown or not value or "text" not in value:
            raise ValueError('modalities must be ["text"] or ["text", "audio"]')
        return value


__all__ = [
    "AudioOutput",
    "AudioReference",
    "ChatCompletionRequest",
    "DEFAULT_VOICE",
    "INPUT_AUDIO_FORMATS",
    "InputAudio",
    "InputAudioPart",
    "Message",
    "OUTPUT_AUDIO_FORMATS",
    "TextPart",
    "VOICES",
]

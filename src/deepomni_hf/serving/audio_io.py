"""Audio in and out of the HTTP API: base64 `input_audio` → a checked 16 kHz waveform (through the processor's own
audio loading), and 24 kHz float replies → PCM16 (raw little-endian, OpenAI's `pcm16`) or a 16-bit WAV file."""

import base64
import binascii
import io

import numpy as np

from ..processors.audio import DeepOmniAudioError, load_speech
from .errors import bad_request
from .schemas import INPUT_AUDIO_FORMATS


def decode_input_audio(data: str, audio_format: str, max_seconds: float, param: str) -> np.ndarray:
    """base64 text of an audio file → mono float32 at 16 kHz. Bad base64, unsupported formats, undecodable, empty,
    silent and too long audio are 400s that say what to do (never quoting the data)."""
    if audio_format not in INPUT_AUDIO_FORMATS:
        raise bad_request(
            f"input_audio.format {audio_format!r} is not supported; use one of {list(INPUT_AUDIO_FORMATS)}.",
            param=f"{param}.format",
            code="unsupported_audio_format",
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(
            "input_audio.data is not valid base64: send the audio file's bytes base64-encoded.",
            param=f"{param}.data",
            code="invalid_base64",
        ) from None
    if not raw:
        raise bad_request("input_audio.data is empty.", param=f"{param}.data", code="invalid_audio")
    try:
        return load_speech(raw, max_seconds=max_seconds)
    except DeepOmniAudioError as error:
        message = str(error)
        code = "audio_too_long" if "longer" in message or "too long" in message else "invalid_audio"
        if "silent" in message or "silence" in message:
            code = "silent_audio"
        raise bad_request(f"input_audio: {message}", param=f"{param}.data", code=code) from None
    except Exception:  # decoders raise many kinds of errors on garbage bytes
        raise bad_request(
            f"input_audio.data could not be decoded as {audio_format}: send a complete audio file.",
            param=f"{param}.data",
            code="invalid_audio",
        ) from None


def to_pcm16(audio: np.ndarray) -> bytes:
    """float32 in [-1, 1] → 16-bit little-endian PCM bytes (clipped; the rounding every chunk shares)."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def pcm16_to_wav(pcm: bytes, sampling_rate: int) -> bytes:
    """16-bit mono PCM bytes → a WAV file (the same samples, with a header)."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.frombuffer(pcm, dtype="<i2"), sampling_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def encode_reply_audio(pcm: bytes, audio_format: str, sampling_rate: int) -> str:
    """A whole reply's PCM16 → base64 in the requested format (`wav` or `pcm16`)."""
    payload = pcm16_to_wav(pcm, sampling_rate) if audio_format == "wav" else pcm
    return base64.b64encode(payload).decode("ascii")


__all__ = ["decode_input_audio", "encode_reply_audio", "pcm16_to_wav", "to_pcm16"]

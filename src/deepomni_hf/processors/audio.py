# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Loading and checking the user speech that DeepOmni listens to.

[`load_speech`] turns any of the usual ways of holding audio into one mono float32 waveform at the sampling rate of
the Whisper encoder (16 kHz), and rejects inputs that cannot be heard with a [`DeepOmniAudioError`] saying what was
wrong and what to do about it.

Accepted inputs:

- a path (`str` or `os.PathLike`) to an audio file: read with `soundfile` (WAV, FLAC, OGG, MP3 with libsndfile
  >= 1.1), falling back to `torchaudio` / `torchcodec` (FFmpeg) for anything else (M4A, AAC, ...);
- raw encoded bytes of such a file (`bytes`, `bytearray`, `memoryview`);
- a waveform as a `numpy.ndarray` or `torch.Tensor` together with its `sampling_rate`; float values are taken as
  full scale = 1.0, integer PCM (e.g. `int16`) is rescaled to [-1, 1];
- a `datasets` audio value: a decoded dict `{"array", "sampling_rate"}`, an undecoded dict `{"path", "bytes"}`
  (`Audio(decode=False)`), or the `torchcodec` `AudioDecoder` that `datasets` >= 4 returns for `Audio` columns (any
  object with `get_all_samples()`).

Waveform shapes: `[samples]` (mono), or 2-D multichannel audio either channels-first `[channels, samples]` (torch /
torchaudio convention) or channels-last `[samples, channels]` (soundfile / numpy convention). The channel axis is the
one of size <= `MAX_CHANNELS` (8) that is shorter than the other; a `[1, samples]` or `[samples, 1]` array is mono.
Channels are downmixed by their plain mean.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


# Whisper's front end: 16 kHz input.
WHISPER_SAMPLING_RATE = 16000
# More channels than this is not speech audio in any common format (7.1 is 8), so such an axis is the sample axis.
MAX_CHANNELS = 8
# Peak absolute amplitude (full scale = 1.0) below which a waveform counts as silence: 1e-4 is -80 dBFS, under the
# noise floor of 16-bit recordings (-96 dBFS is one LSB), so only digital silence or near-silence is rejected.
DEFAULT_SILENCE_THRESHOLD = 1e-4
# Sampling rates speech can come at: 4 kHz is below any telephone band (8 kHz), 768 kHz the highest rate audio
# hardware records. Anything outside is a mistake (e.g. samples and rate swapped) and would resample to nonsense.
MIN_SAMPLING_RATE = 4000
MAX_SAMPLING_RATE = 768000


class DeepOmniAudioError(ValueError):
    """An audio input DeepOmni cannot listen to. The message says what was wrong and what to do."""


def load_speech(
    audio: Any,
    sampling_rate: int | None = None,
    target_sampling_rate: int = WHISPER_SAMPLING_RATE,
    max_seconds: float | None = None,
    silence_threshold: float | None = DEFAULT_SILENCE_THRESHOLD,
) -> np.ndarray:
    """
    Loads, downmixes, checks and resamples one speech input.

    Args:
        audio: A path, encoded bytes, a waveform (`numpy.ndarray` / `torch.Tensor`), a `datasets` audio dict or a
            `datasets` / `torchcodec` audio decoder; see the module docstring for the accepted forms and shapes.
        sampling_rate (`int`, *optional*):
            Sampling rate of a waveform given as an array. Required for arrays; for files, bytes and dicts that carry
            their own rate it must match when given.
        target_sampling_rate (`int`, *optional*, defaults to 16000):
            Rate of the returned waveform (resampled with `torchaudio.functional.resample` when different).
        max_seconds (`float`, *optional*):
            Longest accepted duration; longer audio is rejected (split it into turns or chunks first).
        silence_threshold (`float`, *optional*, defaults to 1e-4):
            Audio whose peak absolute amplitude (full scale 1.0) stays below this is rejected as silent. `None`
            disables the check.

    Returns:
        `np.ndarray`: mono float32 waveform `[samples]` at `target_sampling_rate`.

    Raises:
        [`DeepOmniAudioError`] (a `ValueError`): missing file, undecodable data, an array without `sampling_rate`,
        an unsupported shape, NaN or infinite samples, empty audio, audio longer than `max_seconds`, silent audio.
    """
    waveform, rate = decode_audio(audio, sampling_rate)
    waveform = downmix(waveform)
    check_waveform(waveform, rate, max_seconds=max_seconds, silence_threshold=silence_threshold)
    if rate != target_sampling_rate:
        waveform = (
            resample(torch.from_numpy(waveform), rate, target_sampling_rate).numpy().astype(np.float32, copy=False)
        )
    return waveform


def decode_audio(audio: Any, sampling_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Any accepted input → `(float32 waveform, sampling rate)`. Decoded files, bytes and decoders come back mono (their
    channel axis is known); arrays come back in their own shape for [`downmix`]."""
    if isinstance(audio, (str, os.PathLike)):
        return _read_file(os.fspath(audio), sampling_rate)
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return _read_bytes(bytes(audio), sampling_rate)
    if isinstance(audio, (np.ndarray, torch.Tensor)):
        if sampling_rate is None:
            raise DeepOmniAudioError(
                f"Got a waveform array of shape {tuple(audio.shape)} without its sampling rate. Pass "
                "`sampling_rate=...` next to it (e.g. {'type': 'audio', 'audio': array, 'sampling_rate': 16000})."
            )
        return _as_float_array(audio), _check_rate(sampling_rate)
    if isinstance(audio, Mapping):
        return _read_mapping(audio, sampling_rate)
    if hasattr(audio, "get_all_samples"):
        # torchcodec's AudioDecoder, which `datasets` >= 4 hands out for `Audio` columns.
        samples = audio.get_all_samples()  # data: [channels, samples]
        return _same_rate(_mono(_as_float_array(samples.data), 0), int(samples.sample_rate), sampling_rate)
    raise DeepOmniAudioError(
        f"Cannot read audio from a {type(audio).__name__}. Pass a file path, encoded bytes, a numpy array or torch "
        "tensor with its sampling_rate, or a `datasets` audio value ({'array', 'sampling_rate'} or {'path', 'bytes'})."
    )


def downmix(waveform: np.ndarray) -> np.ndarray:
    """`[samples]`, `[channels, samples]` or `[samples, channels]` → mono `[samples]` (plain mean of the channels)."""
    if waveform.ndim == 1:
        return waveform
    if waveform.ndim != 2:
        raise DeepOmniAudioError(
            f"Audio must be 1-D [samples] or 2-D [channels, samples] / [samples, channels]; got shape "
            f"{tuple(waveform.shape)}. Remove batch dimensions and pass one waveform per audio item."
        )
    rows, columns = waveform.shape
    if rows <= MAX_CHANNELS and rows <= columns:
        channel_axis = 0
    elif columns <= MAX_CHANNELS and columns < rows:
        channel_axis = 1
    else:
        raise DeepOmniAudioError(
            f"Cannot tell the channel axis of audio shaped {tuple(waveform.shape)}: neither axis has at most "
            f"{MAX_CHANNELS} entries. Pass [channels, samples] or [samples, channels] (or downmix it yourself)."
        )
    return waveform.mean(axis=channel_axis, dtype=np.float64).astype(np.float32)


def check_waveform(
    waveform: np.ndarray,
    sampling_rate: int,
    max_seconds: float | None = None,
    silence_threshold: float | None = DEFAULT_SILENCE_THRESHOLD,
) -> None:
    """Raises [`DeepOmniAudioError`] for NaN / infinite samples, empty, too long or silent mono audio."""
    if not np.isfinite(waveform).all():
        bad = int((~np.isfinite(waveform)).sum())
        raise DeepOmniAudioError(
            f"The audio holds {bad} NaN or infinite sample(s) out of {waveform.size}; it is corrupted or was produced "
            "by a failed computation. Fix or drop this audio."
        )
    if waveform.size == 0:
        raise DeepOmniAudioError("The audio is empty (0 samples). Drop this audio item or give a non-empty recording.")
    seconds = waveform.size / sampling_rate
    if max_seconds is not None and seconds > max_seconds:
        raise DeepOmniAudioError(
            f"The audio lasts {seconds:.2f} s, longer than the {max_seconds} s one user turn can hold (Whisper's "
            "30 s window). Split it into shorter turns or chunks (e.g. at pauses) and pass each as its own audio item."
        )
    if silence_threshold is not None:
        peak = float(np.abs(waveform).max())
        if peak < silence_threshold:
            raise DeepOmniAudioError(
                f"The audio is silent: its peak amplitude {peak:.2e} is below the silence threshold "
                f"{silence_threshold:.0e} (full scale 1.0). Check the recording (muted microphone, wrong channel) or "
                "drop this item; pass silence_threshold=None to accept it anyway."
            )


def resample(waveform: torch.Tensor, orig_sampling_rate: int, new_sampling_rate: int) -> torch.Tensor:
    """Band-limited resampling (`torchaudio.functional.resample`, sinc interpolation) along the last axis."""
    import torchaudio.functional

    return torchaudio.functional.resample(waveform.float(), int(orig_sampling_rate), int(new_sampling_rate))


def num_whisper_frames(
    num_samples: int, sampling_rate: int = WHISPER_SAMPLING_RATE, frames_per_second: int = 50
) -> int:
    """Whisper encoder frames that cover `num_samples` of audio: `floor(samples / rate · fps) + 1` (DESIGN §3).

    Integer arithmetic, so 1 s at 16 kHz is exactly 51 frames whatever the float rounding."""
    return num_samples * frames_per_second // sampling_rate + 1


# ----- readers -----


def _check_rate(sampling_rate: Any) -> int:
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer, float)) or sampling_rate <= 0:
        raise DeepOmniAudioError(
            f"sampling_rate must be a positive number of samples per second, got {sampling_rate!r}."
        )
    if not math.isfinite(float(sampling_rate)) or float(sampling_rate) != math.floor(float(sampling_rate)):
        raise DeepOmniAudioError(f"sampling_rate must be a whole number of samples per second, got {sampling_rate!r}.")
    if not MIN_SAMPLING_RATE <= sampling_rate <= MAX_SAMPLING_RATE:
        raise DeepOmniAudioError(
            f"sampling_rate {sampling_rate!r} Hz is outside the rates audio comes at ({MIN_SAMPLING_RATE}-"
            f"{MAX_SAMPLING_RATE} Hz; speech is usually 8000-48000). Pass the rate the waveform was recorded at."
        )
    return int(sampling_rate)


def _same_rate(waveform: np.ndarray, file_rate: int, given_rate: int | None) -> tuple[np.ndarray, int]:
    _check_rate(file_rate)  # a header can claim any rate
    if given_rate is not None and _check_rate(given_rate) != file_rate:
        raise DeepOmniAudioError(
            f"The audio says its sampling rate is {file_rate} Hz but sampling_rate={given_rate} was given. Leave "
            "sampling_rate out for files, bytes and decoded datasets audio; it is only needed for raw arrays."
        )
    return waveform, file_rate


def _as_float_array(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        if array.dtype in (torch.bfloat16, torch.float16):
            array = array.float()
        array = array.numpy()
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.integer):
        # Integer PCM: full scale is the dtype's range (int16 → /32768).
        info = np.iinfo(array.dtype)
        scale = float(max(abs(info.min), info.max))
        return (array.astype(np.float64) / scale).astype(np.float32)
    if np.issubdtype(array.dtype, np.bool_) or not np.issubdtype(array.dtype, np.number):
        raise DeepOmniAudioError(f"Audio samples must be numbers; got an array of dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise DeepOmniAudioError("Audio samples must be real numbers; got a complex array (a spectrum?).")
    return array.astype(np.float32, copy=False)


def _read_file(path: str, sampling_rate: int | None) -> tuple[np.ndarray, int]:
    if path.startswith(("http://", "https://")):
        raise DeepOmniAudioError(f"{path!r} is a URL; download the file first and pass its local path or bytes.")
    if not os.path.isfile(path):
        raise DeepOmniAudioError(f"No audio file at {path!r}. Check the path (relative paths start at {os.getcwd()}).")
    try:
        import soundfile

        waveform, rate = soundfile.read(path, dtype="float32", always_2d=True)
        channel_axis = 1  # soundfile: [samples, channels]
    except Exception as soundfile_error:  # noqa: BLE001 - libsndfile cannot read every container; FFmpeg can.
        try:
            waveform, rate = _read_with_ffmpeg(path)
            channel_axis = 0  # torchcodec: [channels, samples]
        except Exception as ffmpeg_error:  # noqa: BLE001
            raise DeepOmniAudioError(
                f"Cannot decode the audio file {path!r}: soundfile said {soundfile_error!s}; torchcodec/FFmpeg said "
                f"{ffmpeg_error!s}. Convert it to WAV or FLAC."
            ) from ffmpeg_error
    return _same_rate(_mono(waveform, channel_axis), int(rate), sampling_rate)


def _read_bytes(data: bytes, sampling_rate: int | None) -> tuple[np.ndarray, int]:
    if not data:
        raise DeepOmniAudioError("The audio bytes are empty. Pass the encoded content of an audio file.")
    try:
        import soundfile

        waveform, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        channel_axis = 1
    except Exception as soundfile_error:  # noqa: BLE001
        try:
            waveform, rate = _read_with_ffmpeg(data)
            channel_axis = 0
        except Exception as ffmpeg_error:  # noqa: BLE001
            raise DeepOmniAudioError(
                f"Cannot decode {len(data)} bytes as audio: soundfile said {soundfile_error!s}; torchcodec/FFmpeg "
                f"said {ffmpeg_error!s}. Raw PCM has no header: load it as an array and pass its sampling_rate."
            ) from ffmpeg_error
    return _same_rate(_mono(waveform, channel_axis), int(rate), sampling_rate)


def _mono(waveform: np.ndarray, channel_axis: int) -> np.ndarray:
    """Downmix of decoded audio whose channel axis is known (no guessing, so very short files are fine too)."""
    return waveform.mean(axis=channel_axis, dtype=np.float64).astype(np.float32)


def _read_with_ffmpeg(source: str | bytes) -> tuple[np.ndarray, int]:
    """Decodes with torchcodec (FFmpeg): `[channels, samples]` float32 and the file's rate."""
    from torchcodec.decoders import AudioDecoder

    samples = AudioDecoder(source).get_all_samples()
    return _as_float_array(samples.data), int(samples.sample_rate)


def _read_mapping(audio: Mapping, sampling_rate: int | None) -> tuple[np.ndarray, int]:
    if audio.get("array") is not None:
        if audio.get("sampling_rate") is None:
            if sampling_rate is None:
                raise DeepOmniAudioError(
                    "The audio dict has an 'array' but no 'sampling_rate'. Add it: "
                    "{'array': ..., 'sampling_rate': 16000}."
                )
            return _as_float_array(audio["array"]), _check_rate(sampling_rate)
        return _same_rate(_as_float_array(audio["array"]), _check_rate(audio["sampling_rate"]), sampling_rate)
    if audio.get("bytes") is not None:
        return _read_bytes(bytes(audio["bytes"]), sampling_rate)
    if audio.get("path") is not None:
        return _read_file(os.fspath(audio["path"]), sampling_rate)
    raise DeepOmniAudioError(
        f"The audio dict has keys {sorted(audio)} but needs 'array' and 'sampling_rate' (decoded `datasets` audio) or "
        "'bytes' / 'path' (undecoded `datasets` audio)."
    )


__all__ = [
    "DEFAULT_SILENCE_THRESHOLD",
    "MAX_SAMPLING_RATE",
    "MIN_SAMPLING_RATE",
    "WHISPER_SAMPLING_RATE",
    "DeepOmniAudioError",
    "check_waveform",
    "decode_audio",
    "downmix",
    "load_speech",
    "num_whisper_frames",
    "resample",
]

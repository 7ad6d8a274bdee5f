# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Training data: synthetic speech backends (`tts`), per-stage dataset builders (`builders`), a small synthetic
corpus (`corpus`), the closed-domain QA of DeepOmni-Tiny (`spoken_qa`) and its spoken corpus (`spoken_qa_corpus`),
and the `deepomni build-dataset` / `make-corpus` commands (`cli`)."""

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
from .spoken_qa import QAItem, answer_vocabulary, spoken_qa_items
from .spoken_qa_corpus import make_spoken_qa_corpus
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
    "QAItem",
    "SpeechSynthesizer",
    "SynthesisError",
    "TransformersTTSSynthesizer",
    "answer_vocabulary",
    "build_dataset",
    "build_dpo_dataset",
    "faster_whisper_judge",
    "get_synthesizer",
    "load_codec",
    "load_source",
    "make_corpus",
    "make_spoken_qa_corpus",
    "speaker_token",
    "spoken_qa_items",
    "to_training_features",
    "transcript_judge",
]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Tiny offline stand-ins for the backbone tokenizer and config, for tests (they live in `deepomni_hf.tiny`)."""

from deepomni_hf.tiny import (  # noqa: F401
    BOS_TOKEN,
    EOS_TOKEN,
    TINY_BPE_VOCAB_SIZE,
    TINY_TEXT_VOCAB_SIZE,
    english_sentences,
    tiny_tokenizer,
)


def tiny_deepomni_config(**overrides):
    """The package's tiny `DeepOmniConfig` over a `TINY_TEXT_VOCAB_SIZE` text vocabulary."""
    from deepomni_hf.tiny import tiny_config

    return tiny_config(text_vocab_size=TINY_TEXT_VOCAB_SIZE, **overrides)

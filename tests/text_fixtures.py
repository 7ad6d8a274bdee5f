# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Tiny offline stand-ins for the backbone tokenizer and config, for tests.

`tiny_tokenizer()` trains a byte-level BPE (DeepSeek-V2's tokenizer is byte-level BPE too) on a few hundred English
sentences built here, with DeepSeek's `<｜begin▁of▁sentence｜>` / `<｜end▁of▁sentence｜>` as bos / eos, wrapped as a
`PreTrainedTokenizerFast`. It has fewer tokens than `TINY_TEXT_VOCAB_SIZE`, like DeepSeek-V2's (100,015 tokens for
102,400 embedding rows), so extending it exercises the reserved-id gap.
"""

import itertools

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast


BOS_TOKEN = "<｜begin▁of▁sentence｜>"
EOS_TOKEN = "<｜end▁of▁sentence｜>"
TINY_TEXT_VOCAB_SIZE = 512
TINY_BPE_VOCAB_SIZE = 420  # + 2 specials: 422 tokens, 90 short of TINY_TEXT_VOCAB_SIZE

_SUBJECTS = ["The cat", "A small dog", "My friend", "The teacher", "Our neighbour", "The old man", "A young girl",
             "The pilot", "Every student", "The doctor"]  # fmt: skip
_VERBS = ["reads", "likes", "found", "wants", "builds", "paints", "answers", "explains", "remembers", "sells"]
_OBJECTS = ["a red book.", "the weather report.", "an easy question.", "the capital of France.", "a long story.",
            "the music of the city.", "a cup of tea.", "the number seven.", "a quiet morning.",
            "the blue sky."]  # fmt: skip
_QUESTIONS = ["What is the capital of France?", "How are you today?", "Can you tell me a joke?",
              "Why is the sky blue?", "Where do birds go in winter?", "Who wrote this book?",
              "Please answer in one sentence.", "You are a helpful assistant.", "Thank you very much!",
              "Paris is the capital of France.", "The sky is blue because of Rayleigh scattering."]  # fmt: skip


def english_sentences() -> list[str]:
    """A few hundred short English sentences (deterministic)."""
    combos = [f"{s} {v} {o}" for s, v, o in itertools.product(_SUBJECTS, _VERBS, _OBJECTS)]
    return _QUESTIONS + combos[::3] + ["User: Assistant: 0123456789 \n\n"]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer of `TINY_BPE_VOCAB_SIZE + 2` tokens with DeepSeek-style bos / eos."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_BPE_VOCAB_SIZE,
        special_tokens=[BOS_TOKEN, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(english_sentences(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, clean_up_tokenization_spaces=False
    )


def tiny_deepomni_config(**overrides):
    """The package's tiny `DeepOmniConfig` (`deepomni_hf.tiny.tiny_config`: hidden 64, 3 layers, 8 experts top-2,
    1-layer Whisper with 80 mel bins and 1,500 frames, small SNAC) over a `TINY_TEXT_VOCAB_SIZE` text vocabulary."""
    from deepomni_hf.tiny import tiny_config

    return tiny_config(text_vocab_size=TINY_TEXT_VOCAB_SIZE, **overrides)

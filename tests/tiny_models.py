"""Tiny random DeepOmni inputs for tests (CPU, seconds). The configurations live in `deepomni_hf.tiny`."""

import torch

from deepomni_hf import DeepOmniConfig
from deepomni_hf.tiny import TINY_AUDIO, TINY_CODEC, TINY_SPEECH_EXPERTS, TINY_TEXT, tiny_config  # noqa: F401


def text_only_ids(config: DeepOmniConfig, batch: int = 2, positions: int = 10, seed: int = 0) -> torch.LongTensor:
    """A text-only 8-stream batch: random text tokens, PAD_A in every audio slot."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.empty(batch, positions, 8, dtype=torch.long)
    for slot in range(7):
        ids[..., slot] = config.audio_token_id("PAD_A", slot)
    ids[..., 7] = torch.randint(0, config.text_vocab_size, (batch, positions), generator=g)
    return ids


def speech_span_ids(config: DeepOmniConfig, prefix: int, frames: int, suffix: int, seed: int = 0) -> torch.LongTensor:
    """One row: `prefix` text positions, a user-speech span of `frames` + 2 positions, `suffix` text positions."""
    ids = text_only_ids(config, 1, prefix + frames + 2 + suffix, seed)
    span = slice(prefix, prefix + frames + 2)
    ids[0, span, 7] = config.audio_placeholder_id
    for slot in range(7):
        ids[0, prefix, slot] = config.audio_token_id("BOA", slot)
        ids[0, prefix + frames + 1, slot] = config.audio_token_id("EOA", slot)
    return ids

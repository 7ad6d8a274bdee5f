"""Tiny random DeepOmni configurations for tests (CPU, seconds)."""

import torch

from deepomni_hf import DeepOmniConfig


TINY_TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=4,
    kv_lora_rank=16,
    q_lora_rank=None,
    qk_nope_head_dim=8,
    qk_rope_head_dim=8,
    v_head_dim=8,
    n_routed_experts=8,
    num_experts_per_tok=2,
    moe_intermediate_size=32,
    n_shared_experts=1,
    first_k_dense_replace=1,
    max_position_embeddings=4096,
    bos_token_id=1,
    eos_token_id=2,
)
TINY_AUDIO = dict(
    d_model=32,
    encoder_layers=1,
    encoder_attention_heads=2,
    encoder_ffn_dim=64,
    decoder_layers=1,
    decoder_attention_heads=2,
    decoder_ffn_dim=64,
    num_mel_bins=80,
    max_source_positions=1500,
)
TINY_CODEC = dict(encoder_dim=8, decoder_dim=16)
# Speech experts of the tiny backbone: layer 0 is dense.
TINY_SPEECH_EXPERTS = [[], [0, 1, 2], [4, 5, 6, 7]]


def tiny_config(text_vocab_size: int = 1000, **text_overrides) -> DeepOmniConfig:
    text = dict(TINY_TEXT, speech_experts=TINY_SPEECH_EXPERTS)
    text.update(text_overrides)
    text.setdefault("vocab_size", text_vocab_size + 64 + 7 * (4096 + 64))
    return DeepOmniConfig(
        text_config=text,
        audio_config=TINY_AUDIO,
        codec_config=TINY_CODEC,
        adapter_intermediate_size=48,
        text_vocab_size=text_vocab_size,
    )


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

"""Tiny DeepOmni configurations: random models that run in seconds on a CPU, for tests, demos and examples."""

from .modeling import DeepOmniConfig


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
# Layer 0 is dense; layers 1 and 2 are MoE with 8 routed experts, top-2.
TINY_SPEECH_EXPERTS = [[], [0, 1, 2], [4, 5, 6, 7]]


def tiny_config(text_vocab_size: int = 1000, **text_overrides) -> DeepOmniConfig:
    """A 3-layer DeepOmni (hidden 64, 8 experts top-2, 1-layer Whisper, small SNAC) with the full 8-stream layout."""
    text = dict(TINY_TEXT, speech_experts=TINY_SPEECH_EXPERTS)
    text.update(text_overrides)
    return DeepOmniConfig(
        text_config=text,
        audio_config=TINY_AUDIO,
        codec_config=TINY_CODEC,
        adapter_intermediate_size=48,
        text_vocab_size=text_vocab_size,
    )

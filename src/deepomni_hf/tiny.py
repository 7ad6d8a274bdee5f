"""Tiny DeepOmni models: random weights that run in seconds on a CPU, for tests, demos, examples and benchmarks.

`tiny_tokenizer()` trains a byte-level BPE (DeepSeek-V2's tokenizer is byte-level BPE too) on a few hundred English
sentences built here, with DeepSeek's `<｜begin▁of▁sentence｜>` / `<｜end▁of▁sentence｜>` as bos / eos. It has fewer
tokens than `TINY_TEXT_VOCAB_SIZE`, like DeepSeek-V2's (100,015 tokens for 102,400 embedding rows), so extending it
exercises the reserved-id gap.
"""

import itertools
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .modeling import DeepOmniConfig, DeepOmniForConditionalGeneration
from .processors import DeepOmniProcessor


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


def tiny_processor(config: DeepOmniConfig) -> DeepOmniProcessor:
    return DeepOmniProcessor.from_model_config(config, tiny_tokenizer())


def save_tiny_checkpoint(output_dir: str | Path, seed: int = 0) -> Path:
    """Writes a complete tiny random DeepOmni checkpoint (weights, code, processor) that `pipeline()` can load."""
    import torch

    torch.manual_seed(seed)
    config = tiny_config(text_vocab_size=TINY_TEXT_VOCAB_SIZE)
    DeepOmniForConditionalGeneration(config).save_pretrained(output_dir)
    tiny_processor(config).save_pretrained(output_dir)
    return Path(output_dir)

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Configurations of DeepOmni: the MoE backbone with modality experts, and the composite speech-to-speech model."""

from huggingface_hub.dataclasses import strict
from transformers import DeepseekV2Config, PreTrainedConfig, WhisperConfig

from .configuration_deepomni_codec import DeepOmniCodecConfig


ROUTING_MODES = ("all", "speech", "text", "per_token")

# Names of the special tokens, in id order (DESIGN §3). `AUDIO` is the placeholder that fills the text stream of
# user-speech positions; it is ours (the paper does not name it) and sits right after the published seven.
TEXT_SPECIAL_TOKENS = ("EOT", "PAD_T", "BOT", "ANS_T", "TTS", "TQA", "TQAA", "AUDIO")
AUDIO_SPECIAL_TOKENS = ("EOA", "PAD_A", "BOA", "ANS_A", "ASR", "AQA", "AQAA", "M29", "F10", "ER")

# Stream layout of the last dimension of `input_ids` / `labels`: 7 SNAC slots (level 0, 2 × level 1,
# 4 × level 2), then text.
NUM_AUDIO_STREAMS = 7
NUM_STREAMS = NUM_AUDIO_STREAMS + 1
TEXT_STREAM = NUM_AUDIO_STREAMS


@strict
class DeepOmniTextConfig(DeepseekV2Config):
    r"""
    The DeepSeek-V2 backbone of DeepOmni with its routed experts split into speech and text experts. Defaults are
    those of DeepSeek-V2-Lite-Chat with the vocabulary extended to the 8-stream layout (131,584 ids).

    speech_experts (`list[list[int]]`, *optional*):
        One list per decoder layer with the ids of the routed experts that are *speech experts*; all other routed
        experts of that layer are text experts. Dense layers (`layer < first_k_dense_replace`) must have an empty
        list. An empty list on an MoE layer means "not assigned yet" and only allows `routing_mode="all"`.
        Defaults to all-empty lists.
    routing_mode (`str`, *optional*, defaults to `"all"`):
        `"all"` routes over every routed expert; `"speech"` / `"text"` restrict routing to one group (the other
        group's router logits are set to -inf before the softmax); `"per_token"` routes speech positions to speech
        experts and text positions to text experts.
    router_aux_loss_coef (`float`, *optional*, defaults to 0.001):
        Weight of the sequence-level expert-balance loss added to the training loss when
        `output_router_logits=True` (DeepSeek-V2's alpha_1).
    """

    model_type = "deepomni_text"

    vocab_size: int = 131584
    hidden_size: int = 2048
    intermediate_size: int = 10944
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    num_key_value_heads: int | None = 16
    max_position_embeddings: int = 163840
    bos_token_id: int | None = 100000
    eos_token_id: int | list[int] | None = 100001
    tie_word_embeddings: bool = True
    first_k_dense_replace: int = 1
    kv_lora_rank: int = 512
    q_lora_rank: int | None = None
    n_routed_experts: int = 64
    n_shared_experts: int = 2
    num_experts_per_tok: int | None = 6
    moe_intermediate_size: int = 1408
    speech_experts: list[list[int]] | None = None
    routing_mode: str = "all"
    router_aux_loss_coef: float = 0.001

    def __post_init__(self, **kwargs):
        if self.rope_parameters is None and "rope_scaling" not in kwargs:
            # DeepSeek-V2-Lite's YaRN extension of a 4k context to 160k.
            self.rope_parameters = {
                "rope_type": "yarn",
                "rope_theta": 10000.0,
                "factor": 40.0,
                "original_max_position_embeddings": 4096,
                "beta_fast": 32.0,
                "beta_slow": 1.0,
                "mscale": 0.707,
                "mscale_all_dim": 0.707,
            }
        if self.speech_experts is None:
            self.speech_experts = [[] for _ in range(self.num_hidden_layers)]
        self.speech_experts = [sorted(int(e) for e in layer) for layer in self.speech_experts]
        super().__post_init__(**kwargs)

    def is_moe_layer(self, layer_idx: int) -> bool:
        return layer_idx >= self.first_k_dense_replace

    @property
    def moe_layers(self) -> list[int]:
        return [i for i in range(self.num_hidden_layers) if self.is_moe_layer(i)]

    def text_experts(self, layer_idx: int) -> list[int]:
        """Routed-expert ids of the text group of one layer (the complement of its speech experts)."""
        if not self.is_moe_layer(layer_idx):
            return []
        speech = set(self.speech_experts[layer_idx])
        return [e for e in range(self.n_routed_experts) if e not in speech]

    def validate_expert_counts(self):
        """Part of `@strict` validation: layer and expert counts a router can work with (top-k within 1..experts)."""
        if self.num_hidden_layers < 1:
            raise ValueError(f"num_hidden_layers must be at least 1, got {self.num_hidden_layers}.")
        if not 0 <= self.first_k_dense_replace <= self.num_hidden_layers:
            raise ValueError(
                f"first_k_dense_replace must be between 0 and num_hidden_layers ({self.num_hidden_layers}), got "
                f"{self.first_k_dense_replace}."
            )
        if self.n_shared_experts is not None and self.n_shared_experts < 0:
            raise ValueError(f"n_shared_experts must be 0 or more, got {self.n_shared_experts}.")
        if self.router_aux_loss_coef < 0:
            raise ValueError(f"router_aux_loss_coef must be 0 or more, got {self.router_aux_loss_coef}.")
        if not self.moe_layers:
            return
        if self.n_routed_experts is None or self.n_routed_experts < 1:
            raise ValueError(f"n_routed_experts must be at least 1 on a model with MoE layers, got {self.n_routed_experts}.")
        top_k = self.num_experts_per_tok
        if top_k is None or not 1 <= top_k <= self.n_routed_experts:
            raise ValueError(
                f"num_experts_per_tok (experts each token is routed to) must be between 1 and n_routed_experts "
                f"({self.n_routed_experts}), got {top_k}."
            )
        if self.moe_intermediate_size < 1:
            raise ValueError(f"moe_intermediate_size must be at least 1, got {self.moe_intermediate_size}.")

    def validate_speech_experts(self):
        """Part of `@strict` validation: the expert split must be usable by the router."""
        check_speech_experts(self, self.speech_experts, self.routing_mode)


def check_speech_experts(config: DeepOmniTextConfig, speech_experts: list[list[int]], routing_mode: str) -> None:
    """Raises a `ValueError` naming the problem when `speech_experts` / `routing_mode` cannot work with `config`."""
    if routing_mode not in ROUTING_MODES:
        raise ValueError(f"routing_mode must be one of {ROUTING_MODES}, got {routing_mode!r}.")
    num_layers, num_experts, top_k = config.num_hidden_layers, config.n_routed_experts, config.num_experts_per_tok
    if len(speech_experts) != num_layers:
        raise ValueError(
            f"speech_experts needs one list per decoder layer ({num_layers}), got {len(speech_experts)} lists. "
            "Use an empty list for dense layers."
        )
    for layer_idx, experts in enumerate(speech_experts):
        if not config.is_moe_layer(layer_idx):
            if experts:
                raise ValueError(
                    f"speech_experts[{layer_idx}] = {experts}, but layer {layer_idx} is a dense layer "
                    f"(first_k_dense_replace={config.first_k_dense_replace}) and has no routed experts; "
                    "give it an empty list."
                )
            continue
        bad = [e for e in experts if not 0 <= e < num_experts]
        if bad:
            raise ValueError(
                f"speech_experts[{layer_idx}] has expert ids {bad} out of range: layer {layer_idx} has "
                f"{num_experts} routed experts (ids 0..{num_experts - 1})."
            )
        if len(set(experts)) != len(experts):
            dupes = sorted({e for e in experts if experts.count(e) > 1})
            raise ValueError(f"speech_experts[{layer_idx}] lists expert(s) {dupes} more than once.")
        num_text = num_experts - len(experts)
        if num_text < top_k:
            raise ValueError(
                f"speech_experts[{layer_idx}] leaves {num_text} text experts, fewer than the {top_k} experts each "
                "token is routed to (num_experts_per_tok); mark fewer speech experts."
            )
        if experts and len(experts) < top_k:
            raise ValueError(
                f"speech_experts[{layer_idx}] has {len(experts)} speech experts, fewer than the {top_k} experts "
                "each token is routed to (num_experts_per_tok); mark at least that many."
            )
        if not experts and routing_mode != "all":
            raise ValueError(
                f"routing_mode={routing_mode!r} needs speech experts on every MoE layer, but layer {layer_idx} has "
                "none assigned. Assign them first (`deepomni assign-experts`) or use routing_mode='all'."
            )


@strict
class DeepOmniConfig(PreTrainedConfig):
    r"""
    Configuration of [`DeepOmniForConditionalGeneration`]: a Whisper encoder, a SwiGLU speech adapter, a DeepSeek-V2
    MoE backbone with modality experts, and a SNAC codec, over the 8-stream token layout of DESIGN §3.

    text_config (`DeepOmniTextConfig` or `dict`, *optional*):
        The backbone. Its `vocab_size` must equal the full 8-stream vocabulary ([`total_vocab_size`]); a dict
        without `vocab_size` gets it filled in.
    audio_config (`WhisperConfig` or `dict`, *optional*):
        The Whisper model whose encoder listens (only the encoder is built). Defaults to Whisper-medium's sizes.
    codec_config (`DeepOmniCodecConfig` or `dict`, *optional*):
        The SNAC codec that turns codes into speech. Defaults to SNAC 24 kHz.
    adapter_intermediate_size (`int`, *optional*, defaults to 7168):
        Width of the SwiGLU speech adapter between Whisper's `d_model` and the backbone's `hidden_size`.
    text_vocab_size (`int`, *optional*, defaults to 102400):
        Size of the backbone tokenizer's own vocabulary; the text specials follow it.
    num_text_special_tokens (`int`, *optional*, defaults to 64):
        Ids reserved after the text vocabulary for text specials (the first are `text_special_tokens`).
    codebook_size (`int`, *optional*, defaults to 4096):
        Codes per SNAC codebook.
    num_audio_special_tokens (`int`, *optional*, defaults to 64):
        Ids reserved after the codes of every audio slot for audio specials (the first are
        `audio_special_tokens`).
    text_special_tokens / audio_special_tokens (`list[str]`, *optional*):
        Names of the specials in id order; the processor and the generation code look ids up by these names.
    audio_sampling_rate (`int`, *optional*, defaults to 16000):
        Sampling rate of the speech the Whisper encoder hears.
    audio_frames_per_second (`int`, *optional*, defaults to 50):
        Whisper encoder frames per second of input; one user-speech position per frame.
    max_audio_seconds (`float`, *optional*, defaults to 29.98):
        Longest user speech turn. A turn of `s` seconds takes `floor(s · 50) + 1` Whisper frames, which must fit in
        Whisper's 1,500-frame (30 s) window, so exactly 30 s is one frame too many; longer audio must be split.
    """

    model_type = "deepomni"
    keys_to_ignore_at_inference = ["cache"]
    sub_configs_defaults = {
        "text_config": DeepOmniTextConfig,
        "audio_config": WhisperConfig,
        "codec_config": DeepOmniCodecConfig,
    }

    text_config: dict | PreTrainedConfig | None = None
    audio_config: dict | PreTrainedConfig | None = None
    codec_config: dict | PreTrainedConfig | None = None
    adapter_intermediate_size: int = 7168
    text_vocab_size: int = 102400
    num_text_special_tokens: int = 64
    codebook_size: int = 4096
    num_audio_special_tokens: int = 64
    text_special_tokens: list[str] | None = None
    audio_special_tokens: list[str] | None = None
    audio_sampling_rate: int = 16000
    audio_frames_per_second: int = 50
    max_audio_seconds: float = 29.98
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        if self.text_special_tokens is None:
            self.text_special_tokens = list(TEXT_SPECIAL_TOKENS)
        if self.audio_special_tokens is None:
            self.audio_special_tokens = list(AUDIO_SPECIAL_TOKENS)
        if self.audio_config is None:
            self.audio_config = whisper_medium_encoder_config()
        if self.text_config is None:
            self.text_config = {}
        if isinstance(self.text_config, dict):
            # The backbone's embedding covers every stream's ids.
            self.text_config = {"vocab_size": self.total_vocab_size, **self.text_config}
        super().__post_init__(**kwargs)

    # ----- vocabulary layout (DESIGN §3) -----
    @property
    def padded_text_vocab_size(self) -> int:
        return self.text_vocab_size + self.num_text_special_tokens

    @property
    def audio_slot_vocab_size(self) -> int:
        return self.codebook_size + self.num_audio_special_tokens

    @property
    def total_vocab_size(self) -> int:
        return self.padded_text_vocab_size + NUM_AUDIO_STREAMS * self.audio_slot_vocab_size

    def audio_slot_offset(self, slot: int) -> int:
        """Absolute id of code 0 of audio slot `slot` (0..6)."""
        return self.padded_text_vocab_size + self.audio_slot_vocab_size * slot

    def stream_offset(self, stream: int) -> int:
        return 0 if stream == TEXT_STREAM else self.audio_slot_offset(stream)

    def stream_vocab_size(self, stream: int) -> int:
        return self.padded_text_vocab_size if stream == TEXT_STREAM else self.audio_slot_vocab_size

    def text_token_id(self, name: str) -> int:
        """Absolute id of a text special, e.g. `text_token_id("EOT")`."""
        return self.text_vocab_size + self.text_special_tokens.index(name)

    def audio_code(self, name: str) -> int:
        """Slot-local id (>= codebook_size) of an audio special, e.g. `audio_code("EOA") == 4096`."""
        return self.codebook_size + self.audio_special_tokens.index(name)

    def audio_token_id(self, name: str, slot: int) -> int:
        """Absolute id of an audio special in one slot."""
        return self.audio_slot_offset(slot) + self.audio_code(name)

    @property
    def audio_placeholder_id(self) -> int:
        return self.text_token_id("AUDIO")

    def validate_vocabulary(self):
        """Part of `@strict` validation: the id ranges must add up and the specials must fit their ranges."""
        for name in ("EOT", "PAD_T", "AUDIO"):
            if name not in self.text_special_tokens:
                raise ValueError(f"text_special_tokens must contain {name!r}; got {self.text_special_tokens}.")
        for name in ("EOA", "PAD_A", "BOA", "ANS_A"):
            if name not in self.audio_special_tokens:
                raise ValueError(f"audio_special_tokens must contain {name!r}; got {self.audio_special_tokens}.")
        if len(self.text_special_tokens) > self.num_text_special_tokens:
            raise ValueError(
                f"{len(self.text_special_tokens)} text special tokens do not fit in the "
                f"{self.num_text_special_tokens} reserved ids (num_text_special_tokens)."
            )
        if len(self.audio_special_tokens) > self.num_audio_special_tokens:
            raise ValueError(
                f"{len(self.audio_special_tokens)} audio special tokens do not fit in the "
                f"{self.num_audio_special_tokens} reserved ids per slot (num_audio_special_tokens)."
            )
        if self.text_config.vocab_size != self.total_vocab_size:
            raise ValueError(
                f"text_config.vocab_size is {self.text_config.vocab_size} but the 8-stream layout needs "
                f"{self.total_vocab_size} ids: text {self.text_vocab_size} + {self.num_text_special_tokens} text "
                f"specials + 7 audio slots × ({self.codebook_size} codes + {self.num_audio_special_tokens} specials)."
            )
        if self.codec_config.codebook_size != self.codebook_size:
            raise ValueError(
                f"codebook_size is {self.codebook_size} but the codec has {self.codec_config.codebook_size} codes "
                "per codebook; they must match."
            )
        if self.audio_config.num_mel_bins != 80:
            # The processor's Whisper feature extractor and DESIGN §2 use 80 mel bins (Whisper-medium).
            raise ValueError(f"audio_config.num_mel_bins must be 80 (Whisper-medium), got {self.audio_config.num_mel_bins}.")
        max_frames = int(self.max_audio_seconds * self.audio_frames_per_second) + 1
        if max_frames > self.audio_config.max_source_positions:
            raise ValueError(
                f"max_audio_seconds={self.max_audio_seconds} needs {max_frames} encoder frames but Whisper has "
                f"{self.audio_config.max_source_positions} (max_source_positions)."
            )


def whisper_medium_encoder_config(**overrides) -> WhisperConfig:
    """Whisper-medium's encoder sizes (the decoder part of the config is unused by DeepOmni)."""
    sizes = dict(
        d_model=1024,
        encoder_layers=24,
        encoder_attention_heads=16,
        encoder_ffn_dim=4096,
        decoder_layers=24,
        decoder_attention_heads=16,
        decoder_ffn_dim=4096,
        num_mel_bins=80,
        max_source_positions=1500,
    )
    sizes.update(overrides)
    return WhisperConfig(**sizes)


__all__ = ["DeepOmniTextConfig", "DeepOmniConfig", "ROUTING_MODES", "check_speech_experts"]

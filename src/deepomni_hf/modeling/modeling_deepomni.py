# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""DeepOmni: a Whisper encoder, a SwiGLU speech adapter and a DeepSeek-V2 MoE backbone whose routed experts are split
into speech and text experts, reading and writing the 8-stream token layout (7 SNAC slots + text).

The backbone is transformers' own `deepseek_v2` (MLA attention, rotary, shared experts, fused routed experts); only the
router is replaced by a modality-aware one (`modality_routing.py`).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache
from transformers.integrations import use_experts_implementation
from transformers.modeling_outputs import MoeModelOutputWithPast
from transformers.models.deepseek_v2.modeling_deepseek_v2 import (
    DeepseekV2Attention,
    DeepseekV2DecoderLayer,
    DeepseekV2Experts,
    DeepseekV2MLP,
    DeepseekV2Model,
    DeepseekV2RMSNorm,
    DeepseekV2RotaryEmbedding,
    DeepseekV2TopkRouter,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder
from transformers.utils import ModelOutput
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.output_capturing import OutputRecorder

from .configuration_deepomni import (
    NUM_AUDIO_STREAMS,
    NUM_STREAMS,
    TEXT_STREAM,
    DeepOmniConfig,
    DeepOmniTextConfig,
    check_speech_experts,
)
from .generation_deepomni import DeepOmniGenerationMixin, deepomni_generation_config
from .modality_routing import restrict_router_logits, sequence_balance_loss
from .modeling_deepomni_codec import DeepOmniCodecModel


@use_experts_implementation
class DeepOmniExperts(DeepseekV2Experts):
    """DeepSeek-V2's fused routed experts (`gate_up_proj` `[experts, 2·inter, hidden]`, `down_proj`), switchable
    between the `eager`, `grouped_mm` and `batched_mm` implementations."""


class DeepOmniTopkRouter(DeepseekV2TopkRouter):
    """DeepSeek-V2's softmax top-k router with the modality restriction applied to the logits before the softmax."""

    def __init__(self, config: DeepOmniTextConfig, layer_idx: int):
        super().__init__(config)
        self.layer_idx = layer_idx
        self.routing_mode = config.routing_mode
        self.speech_experts = tuple(config.speech_experts[layer_idx])
        # Derived from the config, so not saved with the weights.
        self.register_buffer("speech_expert_mask", self.build_speech_expert_mask(), persistent=False)

    def build_speech_expert_mask(self) -> torch.Tensor:
        mask = torch.zeros(self.num_experts, dtype=torch.bool)
        mask[list(self.speech_experts)] = True
        return mask

    def set_speech_experts(self, speech_experts: list[int]) -> None:
        self.speech_experts = tuple(speech_experts)
        self.speech_expert_mask.copy_(self.build_speech_expert_mask())

    def forward(self, hidden_states: torch.Tensor, speech_positions: torch.Tensor | None = None):
        hidden_states = hidden_states.view(-1, self.hidden_dim)
        router_logits = F.linear(hidden_states.type(torch.float32), self.weight.type(torch.float32))
        router_logits = restrict_router_logits(
            router_logits, self.speech_expert_mask, self.routing_mode, speech_positions
        )
        scores = router_logits.softmax(dim=-1, dtype=torch.float32)
        if self.topk_method == "group_limited_greedy":
            group_scores = scores.view(-1, self.num_group, self.num_experts // self.num_group).max(dim=-1).values
            group_idx = torch.topk(group_scores, k=self.topk_group, dim=-1, sorted=False)[1]
            group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1).bool()
            scores = scores.masked_fill(~group_mask.repeat_interleave(self.num_experts // self.num_group, dim=1), 0.0)
        topk_weights, topk_indices = torch.topk(scores, k=self.top_k, dim=-1, sorted=False)
        topk_weights = topk_weights * self.routed_scaling_factor
        return router_logits, topk_weights, topk_indices


class DeepOmniMoe(nn.Module):
    """DeepSeek-V2 MoE block (routed + always-on shared experts) with the modality-aware router."""

    def __init__(self, config: DeepOmniTextConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.experts = DeepOmniExperts(config)
        self.gate = DeepOmniTopkRouter(config, layer_idx)
        self.shared_experts = DeepseekV2MLP(
            config=config, intermediate_size=config.moe_intermediate_size * config.n_shared_experts
        )

    def forward(self, hidden_states: torch.Tensor, speech_positions: torch.Tensor | None = None) -> torch.Tensor:
        residuals = hidden_states
        orig_shape = hidden_states.shape
        _, topk_weights, topk_indices = self.gate(hidden_states, speech_positions)
        hidden_states = hidden_states.view(-1, hidden_states.shape[-1])
        hidden_states = self.experts(hidden_states, topk_indices, topk_weights).view(*orig_shape)
        return hidden_states + self.shared_experts(residuals)


class DeepOmniDecoderLayer(DeepseekV2DecoderLayer):
    def __init__(self, config: DeepOmniTextConfig, layer_idx: int):
        nn.Module.__init__(self)
        self.hidden_size = config.hidden_size
        self.self_attn = DeepseekV2Attention(config=config, layer_idx=layer_idx)
        self.mlp = DeepOmniMoe(config, layer_idx) if config.is_moe_layer(layer_idx) else DeepseekV2MLP(config)
        self.input_layernorm = DeepseekV2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = DeepseekV2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = False,
        position_embeddings: torch.Tensor | None = None,
        speech_positions: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        residual = hidden_states
        hidden_states, _ = self.self_attn(
            hidden_states=self.input_layernorm(hidden_states),
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            position_embeddings=position_embeddings,
            **kwargs,
        )
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.post_attention_layernorm(hidden_states)
        if isinstance(self.mlp, DeepOmniMoe):
            hidden_states = self.mlp(hidden_states, speech_positions)
        else:
            hidden_states = self.mlp(hidden_states)
        return residual + hidden_states


class DeepOmniAudioEncoder(WhisperEncoder):
    """Whisper's encoder, unchanged. Declared in this module because transformers checks a sub-model's own module for
    the attention/experts interfaces before it lets `attn_implementation` / `experts_implementation` reach it."""


class DeepOmniSpeechAdapter(nn.Module):
    """SwiGLU MLP without biases from Whisper frames to the backbone: `down(silu(gate(x)) * up(x))`."""

    def __init__(self, config: DeepOmniConfig):
        super().__init__()
        audio_dim, hidden = config.audio_config.d_model, config.text_config.hidden_size
        self.gate_proj = nn.Linear(audio_dim, config.adapter_intermediate_size, bias=False)
        self.up_proj = nn.Linear(audio_dim, config.adapter_intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.adapter_intermediate_size, hidden, bias=False)
        self.act_fn = ACT2FN["silu"]

    def forward(self, audio_frames: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(audio_frames)) * self.up_proj(audio_frames))


class DeepOmniPreTrainedModel(PreTrainedModel):
    config: DeepOmniConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["DeepOmniDecoderLayer", "WhisperEncoderLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": DeepOmniDecoderLayer,
        "attentions": DeepseekV2Attention,
        "router_logits": OutputRecorder(DeepOmniTopkRouter, index=0),
    }

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.get_text_config().initializer_range
        if isinstance(module, DeepseekV2TopkRouter):
            init.normal_(module.weight, mean=0.0, std=std)
        if isinstance(module, DeepOmniTopkRouter):
            init.copy_(module.speech_expert_mask, module.build_speech_expert_mask())
        elif isinstance(module, DeepseekV2Experts):
            init.normal_(module.gate_up_proj, mean=0.0, std=std)
            init.normal_(module.down_proj, mean=0.0, std=std)


class DeepOmniTextModel(DeepOmniPreTrainedModel, DeepseekV2Model):
    """The DeepSeek-V2 backbone (transformers' `DeepseekV2Model.forward`) built from modality-aware decoder layers.
    `speech_positions` (`[batch, positions]` bool) travels to every MoE layer for `per_token` routing."""

    config: DeepOmniTextConfig
    base_model_prefix = "model"

    def __init__(self, config: DeepOmniTextConfig):
        DeepOmniPreTrainedModel.__init__(self, config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList(
            [DeepOmniDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        self.norm = DeepseekV2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = DeepseekV2RotaryEmbedding(config=config)
        self.gradient_checkpointing = False
        self.post_init()


def check_id_layout(input_ids: torch.Tensor) -> None:
    """`input_ids` must be integer ids shaped `[batch, positions, 8]` (metadata only: no host sync)."""
    if input_ids.dim() != 3 or input_ids.shape[-1] != NUM_STREAMS:
        raise ValueError(
            f"input_ids must have shape [batch, positions, {NUM_STREAMS}] (7 audio slots then text, DESIGN §3), "
            f"got {tuple(input_ids.shape)}. Build inputs with DeepOmniProcessor."
        )
    if input_ids.is_floating_point() or input_ids.dtype == torch.bool:
        raise ValueError(f"input_ids must hold integer ids (torch.long), got {input_ids.dtype}; convert with .long().")


def _routers(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, DeepOmniTopkRouter)]


@dataclass
class DeepOmniModelOutput(MoeModelOutputWithPast):
    r"""
    speech_positions (`torch.BoolTensor` of shape `(batch_size, sequence_length)`):
        Positions treated as speech by `per_token` routing (text stream holds the audio placeholder or `PAD_T`).
    """

    speech_positions: torch.BoolTensor | None = None


@dataclass
class DeepOmniCausalLMOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor`, *optional*):
        Mean of the per-stream cross-entropies over the streams with targets, plus `router_aux_loss_coef` × the
        balance loss when `output_router_logits=True`.
    logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, padded_text_vocab_size)`):
        Text-stream logits over the text ids (vocabulary ids `0 .. padded_text_vocab_size - 1`).
    audio_logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, 7, audio_slot_vocab_size)`):
        Logits of each audio slot over its own ids, slot-local: index `c` is absolute id `audio_slot_offset(slot) + c`
        (codes `0..codebook_size-1`, then the audio specials).
    stream_losses (`torch.FloatTensor` of shape `(8,)`, *optional*):
        Cross-entropy of each stream (audio slots 0–6, text 7); NaN for a stream without targets in the batch.
    aux_loss (`torch.FloatTensor`, *optional*):
        Sequence-level expert-balance loss (before `router_aux_loss_coef`).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    audio_logits: torch.FloatTensor | None = None
    stream_losses: torch.FloatTensor | None = None
    aux_loss: torch.FloatTensor | None = None
    cache: Cache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    router_logits: tuple[torch.FloatTensor, ...] | None = None
    speech_positions: torch.BoolTensor | None = None


class DeepOmniModel(DeepOmniPreTrainedModel):
    """Whisper encoder + speech adapter + backbone, over `input_ids` of shape `[batch, positions, 8]`."""

    # Loading the base model from a full checkpoint leaves the head and the codec behind on purpose.
    _keys_to_ignore_on_load_unexpected = [r"^codec_model\.", r"^lm_head\."]

    def __init__(self, config: DeepOmniConfig):
        super().__init__(config)
        self.audio_tower = DeepOmniAudioEncoder(config.audio_config)
        self.speech_adapter = DeepOmniSpeechAdapter(config)
        self.language_model = DeepOmniTextModel(config.text_config)
        self.post_init()

    def get_input_embeddings(self):
        return self.language_model.embed_tokens

    def set_input_embeddings(self, value):
        self.language_model.embed_tokens = value

    def embed_streams(self, input_ids: torch.LongTensor) -> torch.Tensor:
        """Plain mean of the 8 stream embeddings of every position (one table for all ids). Id ranges are checked once
        per prompt by `check_prompt` (forward, generate), not here: this runs at every decoding step."""
        check_id_layout(input_ids)
        return self.get_input_embeddings()(input_ids).mean(dim=2)

    def get_audio_features(
        self, input_features: torch.FloatTensor | None = None, audio_encoder_outputs: torch.FloatTensor | None = None
    ) -> torch.Tensor:
        """Whisper log-mel `[num_audios, 80, 3000]` → adapted frames `[num_audios, 1500, hidden]`. Or, skipping the
        frozen Whisper pass, its cached output `audio_encoder_outputs` `[num_audios, frames, d_model]` (the first
        `frames` encoder frames; the adapter works frame by frame, so the result is the same for those frames)."""
        if (input_features is None) == (audio_encoder_outputs is None):
            raise ValueError("Pass exactly one of input_features (Whisper log-mel) or audio_encoder_outputs (cached).")
        if audio_encoder_outputs is None:
            audio = self.config.audio_config
            expected = (audio.num_mel_bins, 2 * audio.max_source_positions)
            if input_features.dim() != 3 or tuple(input_features.shape[1:]) != expected:
                raise ValueError(
                    f"input_features must have shape [num_audios, {expected[0]}, {expected[1]}] (Whisper log-mel: "
                    f"{expected[0]} mel bins × 30 s of frames), got {tuple(input_features.shape)}. Compute them with "
                    "DeepOmniProcessor (its WhisperFeatureExtractor), not with another feature extractor."
                )
            if not input_features.is_floating_point():
                raise ValueError(f"input_features must be floats (log-mel), got {input_features.dtype}.")
            audio_encoder_outputs = self.audio_tower(input_features.to(self.audio_tower.dtype)).last_hidden_state
        elif audio_encoder_outputs.dim() != 3 or audio_encoder_outputs.shape[-1] != self.config.audio_config.d_model:
            raise ValueError(
                f"audio_encoder_outputs must have shape [num_audios, frames, {self.config.audio_config.d_model}] "
                f"(Whisper's encoder output), got {tuple(audio_encoder_outputs.shape)}."
            )
        return self.speech_adapter(audio_encoder_outputs.to(self.audio_tower.dtype))

    def check_prompt(
        self,
        input_ids: torch.LongTensor,
        input_features: torch.FloatTensor | None = None,
        audio_encoder_outputs: torch.FloatTensor | None = None,
    ) -> None:
        """Rejects a prompt whose mistakes would otherwise pass silently: an id outside its stream's range (e.g. a
        text id in an audio slot), a user-speech span without `input_features`, NaN / infinite features. Runs once
        per prompt (prefill, training batches), never per decoding step: one host sync for all checks."""
        check_id_layout(input_ids)
        cfg = self.config
        low = torch.tensor([cfg.stream_offset(s) for s in range(NUM_STREAMS)], device=input_ids.device)
        high = low + torch.tensor([cfg.stream_vocab_size(s) for s in range(NUM_STREAMS)], device=input_ids.device)
        outside = ((input_ids < low) | (input_ids >= high)).flatten(0, -2).any(0)  # [8]: per stream
        has_speech = (input_ids[..., TEXT_STREAM] == cfg.audio_placeholder_id).any().reshape(1)
        flags = [outside, has_speech.to(outside.device)]
        audio = input_features if input_features is not None else audio_encoder_outputs
        if audio is not None:
            flags.append((~torch.isfinite(audio)).any().reshape(1).to(outside.device))
        flags = torch.cat(flags).tolist()
        for stream in range(NUM_STREAMS):
            if flags[stream]:
                where = "the text stream (index 7)" if stream == TEXT_STREAM else f"audio slot {stream}"
                raise ValueError(
                    f"input_ids hold ids outside the range of {where}, [{cfg.stream_offset(stream)}, "
                    f"{cfg.stream_offset(stream) + cfg.stream_vocab_size(stream)}): each of the 8 streams takes "
                    "absolute ids of its own range (a text id in an audio slot, or a raw code without its slot offset, "
                    "is wrong). Build inputs with DeepOmniProcessor."
                )
        if flags[NUM_STREAMS] and audio is None:
            raise ValueError(
                "input_ids hold a user-speech span (AUDIO placeholder positions) but no input_features were given, so "
                "the speech would be dropped. Pass the input_features the processor returned with these input_ids."
            )
        if audio is not None and flags[NUM_STREAMS + 1]:
            raise ValueError(
                "input_features (or audio_encoder_outputs) hold NaN or infinite values (the audio or its feature computation is broken); "
                "recompute them from finite audio with DeepOmniProcessor."
            )

    def speech_positions(self, input_ids: torch.LongTensor) -> torch.BoolTensor:
        """Positions whose text stream carries no text: user speech (placeholder) and audio-only answer tail (PAD_T)."""
        text = input_ids[..., TEXT_STREAM]
        return (text == self.config.audio_placeholder_id) | (text == self.config.text_token_id("PAD_T"))

    def merge_audio_frames(
        self, input_ids: torch.LongTensor, inputs_embeds: torch.Tensor, audio_frames: torch.Tensor
    ) -> torch.Tensor:
        """Replaces the 7 audio-slot embeddings of every user-speech frame position by its adapted Whisper frame:
        such a position embeds as `(7·frame + placeholder embedding) / 8`. Spans are matched to `audio_frames` in order
        of appearance (row by row); the i-th position after a span's `BOA` takes frame i - 1."""
        cfg = self.config
        text, slot0 = input_ids[..., TEXT_STREAM].flatten(), input_ids[..., 0].flatten()
        placeholder = text == cfg.audio_placeholder_id
        span_start = placeholder & (slot0 == cfg.audio_token_id("BOA", 0))
        span_end = placeholder & (slot0 == cfg.audio_token_id("EOA", 0))
        frame_positions = placeholder & ~span_start & ~span_end
        num_spans = int(span_start.sum())
        if num_spans != audio_frames.shape[0]:
            raise ValueError(
                f"input_ids hold {num_spans} user-speech span(s) (BOA … EOA) but input_features has "
                f"{audio_frames.shape[0]} audio(s); pass one feature row per spoken turn, in order."
            )
        if num_spans == 0:
            return inputs_embeds
        span_index = torch.cumsum(span_start.long(), 0) - 1
        start_of_span = torch.nonzero(span_start).squeeze(-1)
        offset = torch.arange(text.numel(), device=text.device) - start_of_span[span_index.clamp(min=0)] - 1
        if bool((frame_positions & (span_index < 0)).any()):
            raise ValueError("input_ids hold audio-frame positions before any BOA: the speech span is malformed.")
        if frame_positions.any() and int(offset[frame_positions].max()) >= audio_frames.shape[1]:
            raise ValueError(
                f"A user-speech span is longer than the {audio_frames.shape[1]} Whisper frames (30 s); split the audio."
            )
        frames = audio_frames[span_index[frame_positions], offset[frame_positions]].to(inputs_embeds.dtype)
        placeholder_embed = self.get_input_embeddings().weight[cfg.audio_placeholder_id].to(inputs_embeds.dtype)
        merged = inputs_embeds.reshape(-1, inputs_embeds.shape[-1]).clone()
        merged[frame_positions] = (NUM_AUDIO_STREAMS * frames + placeholder_embed) / NUM_STREAMS
        return merged.view_as(inputs_embeds)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")  # transformers' own rename (5.24)
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        speech_positions: torch.BoolTensor | None = None,
        use_cache: bool | None = None,
        audio_encoder_outputs: torch.FloatTensor | None = None,
        **kwargs,
    ) -> DeepOmniModelOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids ([batch, positions, 8]) or inputs_embeds.")
        has_audio = input_features is not None or audio_encoder_outputs is not None
        if inputs_embeds is None:
            if has_audio or cache is None or cache.get_seq_length() == 0:  # the prompt, not a step
                self.check_prompt(input_ids, input_features, audio_encoder_outputs)
            inputs_embeds = self.embed_streams(input_ids)
            if has_audio:
                audio_frames = self.get_audio_features(input_features, audio_encoder_outputs)
                inputs_embeds = self.merge_audio_frames(input_ids, inputs_embeds, audio_frames)
        elif has_audio:
            raise ValueError(
                "input_features / audio_encoder_outputs can only be merged into embeddings built from input_ids."
            )
        if speech_positions is None and input_ids is not None:
            speech_positions = self.speech_positions(input_ids)
        outputs = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            speech_positions=speech_positions,
            **kwargs,
        )
        return DeepOmniModelOutput(**outputs, speech_positions=speech_positions)


def check_labels(labels: torch.Tensor, inputs: torch.Tensor) -> None:
    """Labels must be integer ids laid out like `input_ids` (`[batch, positions, 8]`, -100 where nothing is learned).
    Metadata only: no host sync."""
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must hold integer ids (torch.long, -100 = ignored), got {labels.dtype}.")
    if labels.dim() != 3 or labels.shape[-1] != NUM_STREAMS or tuple(labels.shape[:2]) != tuple(inputs.shape[:2]):
        raise ValueError(
            f"labels must have the shape of input_ids, [batch, positions, {NUM_STREAMS}] = "
            f"[{inputs.shape[0]}, {inputs.shape[1]}, {NUM_STREAMS}], got {tuple(labels.shape)}: pad labels with -100 "
            "exactly as input_ids are padded (DeepOmniDataCollator does)."
        )


class DeepOmniForConditionalGeneration(DeepOmniGenerationMixin, DeepOmniPreTrainedModel, GenerationMixin):
    """DeepOmni with its tied 8-stream head and its SNAC codec (`codec_model`), the model users load. `generate()`
    produces text and speech in parallel (see `generation_deepomni.py`)."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}

    def __init__(self, config: DeepOmniConfig):
        super().__init__(config)
        self.model = DeepOmniModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.total_vocab_size, bias=False)
        self.codec_model = DeepOmniCodecModel(config.codec_config)
        self.post_init()
        self.generation_config = deepomni_generation_config()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    def save_pretrained(self, save_directory, *args, **kwargs):
        if getattr(type(self), "_auto_class", None) is not None:
            # transformers records one Auto class per model class; one checkpoint serves several, so name the rest.
            module = type(self).__module__.split(".")[-1]
            self.config.auto_map = {
                **(getattr(self.config, "auto_map", None) or {}),
                "AutoModel": f"{module}.DeepOmniModel",
                "AutoModelForTextToWaveform": f"{module}.{type(self).__name__}",
            }
        return super().save_pretrained(save_directory, *args, **kwargs)

    # ----- modality experts -----
    @property
    def routing_mode(self) -> str:
        return self.config.text_config.routing_mode

    def set_routing_mode(self, mode: str) -> None:
        """Switches every MoE layer to `"all"`, `"speech"`, `"text"` or `"per_token"` routing (DESIGN §4)."""
        text_config = self.config.text_config
        check_speech_experts(text_config, text_config.speech_experts, mode)
        text_config.routing_mode = mode
        for router in _routers(self):
            router.routing_mode = mode

    def set_speech_experts(self, speech_experts: list[list[int]]) -> None:
        """Relabels the routed experts: one list of speech-expert ids per decoder layer (empty for dense layers)."""
        text_config = self.config.text_config
        speech_experts = [sorted(int(e) for e in layer) for layer in speech_experts]
        check_speech_experts(text_config, speech_experts, text_config.routing_mode)
        text_config.speech_experts = speech_experts
        for router in _routers(self):
            router.set_speech_experts(speech_experts[router.layer_idx])

    # ----- heads and loss -----
    def text_head_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Text-stream logits `[..., padded_text_vocab]`: the text rows of the tied head."""
        return F.linear(hidden_states, self.lm_head.weight[: self.config.padded_text_vocab_size])

    def audio_head_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Audio-slot logits `[..., 7, audio_slot_vocab]`, slot-local: the audio rows of the tied head."""
        logits = F.linear(hidden_states, self.lm_head.weight[self.config.padded_text_vocab_size :])
        return logits.unflatten(-1, (NUM_AUDIO_STREAMS, self.config.audio_slot_vocab_size))

    def stream_logits(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Text logits `[..., padded_text_vocab]` and audio logits `[..., 7, audio_slot_vocab]` from one tied head."""
        return self.text_head_logits(hidden_states), self.audio_head_logits(hidden_states)

    def _local_targets(self, labels: torch.LongTensor, device: torch.device) -> torch.LongTensor:
        """Shifted labels `[batch, positions - 1, 8]` as ids local to each stream's head rows (-100: no target)."""
        cfg = self.config
        if labels.dim() != 3 or labels.shape[-1] != NUM_STREAMS:
            raise ValueError(f"labels must have shape [batch, positions, {NUM_STREAMS}], got {tuple(labels.shape)}.")
        labels = labels[:, 1:].to(device)
        offsets = torch.tensor([cfg.stream_offset(s) for s in range(NUM_STREAMS)], device=labels.device)
        sizes = torch.tensor([cfg.stream_vocab_size(s) for s in range(NUM_STREAMS)], device=labels.device)
        valid = labels != -100
        local = torch.where(valid, labels - offsets, torch.full_like(labels, -100))
        misplaced = valid & ((local < 0) | (local >= sizes))
        if bool(misplaced.any()):  # one host sync for all streams
            stream = int(misplaced.nonzero()[0, -1])
            raise ValueError(
                f"labels of stream {stream} hold ids outside that stream's range "
                f"[{cfg.stream_offset(stream)}, {cfg.stream_offset(stream) + cfg.stream_vocab_size(stream)})."
            )
        return local

    def stream_losses(
        self, text_logits: torch.Tensor, audio_logits: torch.Tensor, labels: torch.LongTensor
    ) -> torch.Tensor:
        """Per-stream next-token cross-entropy (labels are the absolute-id layout, shifted here as in transformers'
        causal LMs). Returns `[8]`: slots 0–6 then text; NaN where a stream has no target."""
        local = self._local_targets(labels, text_logits.device)
        losses = []
        for stream in range(NUM_STREAMS):
            logits = text_logits[:, :-1] if stream == TEXT_STREAM else audio_logits[:, :-1, stream]
            # A stream without targets gives NaN (a mean over nothing), which the total loss leaves out.
            losses.append(F.cross_entropy(logits.float().flatten(0, 1), local[..., stream].flatten(), ignore_index=-100))
        return torch.stack(losses)

    def stream_losses_at_targets(self, hidden_states: torch.Tensor, labels: torch.LongTensor) -> torch.Tensor:
        """`stream_losses` without the full logits: each stream's head rows run only at the positions where that
        stream has a target (training never reads the logits). A stage whose targets are a few text tokens per example
        (alignment, text) or a speech span (speech) skips most of the `[positions, 33 k ids]` head; the losses are the
        same cross-entropies over the same rows, equal to `stream_losses` to float rounding."""
        cfg = self.config
        local = self._local_targets(labels, hidden_states.device)
        hidden_states = hidden_states[:, :-1]
        weight = self.lm_head.weight
        losses = []
        for stream in range(NUM_STREAMS):
            targets = local[..., stream]
            rows = targets != -100
            offset = cfg.stream_offset(stream)
            logits = F.linear(hidden_states[rows], weight[offset : offset + cfg.stream_vocab_size(stream)])
            losses.append(F.cross_entropy(logits.float(), targets[rows], ignore_index=-100))  # NaN when no rows
        return torch.stack(losses)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")  # transformers' own rename (5.24)
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        speech_positions: torch.BoolTensor | None = None,
        use_cache: bool | None = None,
        output_router_logits: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        audio_encoder_outputs: torch.FloatTensor | None = None,
        return_logits: bool = True,
        **kwargs,
    ) -> DeepOmniCausalLMOutput:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length, 8)`):
            Absolute ids of the 8 streams (7 SNAC slots, then text) — see DESIGN §3 / `DeepOmniProcessor`.
        input_features (`torch.FloatTensor` of shape `(num_audios, 80, 3000)`, *optional*):
            Whisper log-mel features of the user-speech spans, in order of appearance.
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length, 8)`, *optional*):
            Targets in the same layout as `input_ids`, -100 where nothing is learned.
        speech_positions (`torch.BoolTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Overrides which positions `per_token` routing treats as speech (computed from `input_ids` by default).
        audio_encoder_outputs (`torch.FloatTensor` of shape `(num_audios, frames, d_model)`, *optional*):
            Instead of `input_features`: Whisper's encoder output for them, cached (Whisper is frozen in every stage),
            at least as many frames as each speech span uses (`deepomni_hf.training.audio_cache`).
        return_logits (`bool`, *optional*, defaults to `True`):
            With `labels`, `False` computes the loss from the head rows at the targeted positions only and returns no
            logits (what training needs: the same loss, a fraction of the head's cost).
        """
        text_config = self.config.text_config
        if output_router_logits is None:
            output_router_logits = text_config.output_router_logits
        if labels is not None:
            check_labels(labels, input_ids if input_ids is not None else inputs_embeds)
        outputs = self.model(
            input_ids=input_ids,
            input_features=input_features,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            speech_positions=speech_positions,
            use_cache=use_cache,
            output_router_logits=output_router_logits,
            audio_encoder_outputs=audio_encoder_outputs,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        text_logits = audio_logits = loss = stream_losses = aux_loss = None
        if labels is not None and not return_logits:
            stream_losses = self.stream_losses_at_targets(hidden_states, labels)
        else:
            slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
            text_logits, audio_logits = self.stream_logits(hidden_states[:, slice_indices, :])
            if labels is not None:
                stream_losses = self.stream_losses(text_logits, audio_logits, labels)
        if stream_losses is not None:
            present = ~torch.isnan(stream_losses)
            loss = stream_losses[present].mean()
        if output_router_logits and outputs.router_logits:
            aux_loss = sequence_balance_loss(
                outputs.router_logits, text_config.num_experts_per_tok, hidden_states.shape[0], attention_mask
            )
            if loss is not None:
                loss = loss + text_config.router_aux_loss_coef * aux_loss.to(loss.device)

        return DeepOmniCausalLMOutput(
            loss=loss,
            logits=text_logits,
            audio_logits=audio_logits,
            stream_losses=stream_losses,
            aux_loss=aux_loss,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            router_logits=outputs.router_logits,
            speech_positions=outputs.speech_positions,
        )


__all__ = [
    "DeepOmniPreTrainedModel",
    "DeepOmniTextModel",
    "DeepOmniModel",
    "DeepOmniForConditionalGeneration",
    "DeepOmniSpeechAdapter",
    "DeepOmniMoe",
    "DeepOmniTopkRouter",
    "DeepOmniExperts",
]

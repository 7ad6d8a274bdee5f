# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The DeepSeek-V2 backbone source: its config (either layout) and its tensors, planned as DeepOmni's backbone."""

from __future__ import annotations

import dataclasses
import logging
import re

import torch
from transformers import DeepseekV2Config, PreTrainedConfig

from ...modeling.configuration_deepomni import DeepOmniConfig
from .layout import EMBED_KEY, LM_HEAD_KEY, TEXT_PREFIX
from .reading import IGNORED_SOURCE_KEYS, CheckpointReader
from .writing import PlannedTensor, check_shape


logger = logging.getLogger(__name__)

# DeepSeek-V2 remote-code config keys that transformers' `deepseek_v2` has no field for. Each is either mapped
# (`aux_loss_alpha`), checked (`scoring_func`, `moe_layer_freq`, `seq_aux`) or carries no meaning for the model.
DEEPSEEK_EXTRA_KEYS = {
    "aux_loss_alpha", "scoring_func", "moe_layer_freq", "seq_aux", "ep_size", "rope_scaling", "rope_theta",
    "qk_head_dim", "auto_map", "architectures", "model_type", "transformers_version", "torch_dtype", "dtype",
    "_name_or_path", "use_cache", "pretraining_tp",
}  # fmt: skip


def own_fields(config_class: type) -> set[str]:
    """Fields a config class adds to `PreTrainedConfig` (its architecture, not the generic bookkeeping)."""
    base = {field.name for field in dataclasses.fields(PreTrainedConfig)}
    return {field.name for field in dataclasses.fields(config_class)} - base


def deepseek_text_config_kwargs(raw: dict, source: str = "text model") -> tuple[dict, int]:
    """Keyword arguments of `DeepOmniTextConfig` (all but `vocab_size`) from a DeepSeek-V2 `config.json` in either
    layout, and the backbone's vocabulary size. The original layout's `rope_scaling` + `rope_theta` become
    `rope_parameters` (transformers' own parsing); `aux_loss_alpha` becomes `router_aux_loss_coef`."""
    model_type = raw.get("model_type")
    if model_type != "deepseek_v2":
        raise ValueError(
            f"The {source} has model_type {model_type!r}; DeepOmni's backbone must be a DeepSeek-V2 model "
            "(model_type 'deepseek_v2', e.g. deepseek-ai/DeepSeek-V2-Lite-Chat)."
        )
    if not isinstance(raw.get("vocab_size"), int):
        raise ValueError(f"The {source}'s config.json has no integer `vocab_size`.")
    if raw.get("scoring_func", "softmax") != "softmax":
        raise ValueError(f"The {source} routes with scoring_func={raw['scoring_func']!r}; only 'softmax' is supported.")
    if raw.get("moe_layer_freq", 1) != 1:
        raise ValueError(
            f"The {source} has moe_layer_freq={raw['moe_layer_freq']}; only 1 (every layer from first_k_dense_replace "
            "on is an MoE layer) is supported."
        )
    if raw.get("seq_aux", True) is not True:
        logger.warning("The %s uses a batch-level aux loss (seq_aux=false); DeepOmni's is sequence-level.", source)
    parsed = DeepseekV2Config.from_dict({k: v for k, v in raw.items() if k not in ("auto_map", "architectures")})
    # vocab_size and tying are DeepOmni's own; head_dim is derived from qk_rope_head_dim.
    fields = own_fields(DeepseekV2Config) - {"vocab_size", "tie_word_embeddings", "head_dim", "pretraining_tp"}
    kwargs = {name: getattr(parsed, name) for name in sorted(fields)}
    rope = dict(kwargs.get("rope_parameters") or {})
    if "type" in rope and rope.get("type") == rope.get("rope_type"):
        rope.pop("type")  # the legacy alias of rope_type, kept by transformers' parsing
    kwargs["rope_parameters"] = rope
    if "aux_loss_alpha" in raw:
        kwargs["router_aux_loss_coef"] = float(raw["aux_loss_alpha"])
    known = own_fields(DeepseekV2Config) | {f.name for f in dataclasses.fields(PreTrainedConfig)} | DEEPSEEK_EXTRA_KEYS
    if unknown := sorted(set(raw) - known):
        logger.warning("Ignoring config keys of the %s that transformers' DeepSeek-V2 does not use: %s", source, unknown)
    return kwargs, raw["vocab_size"]


def init_new_embedding_rows(source_rows: torch.Tensor, num_new_rows: int, seed: int = 0) -> torch.Tensor:
    r"""Rows for the ids a conversion adds (text specials, then the 7 audio slots), drawn from the statistics of the
    existing ones so that they start in the same region of the embedding space as real tokens.

    Rule: with `mu` and `sigma` the per-dimension mean and (population) standard deviation of all `V` source rows,
    computed in float32, the new rows are `mu + sigma * z`, where `z` is one `[num_new_rows, hidden]` draw of
    `torch.randn` from a CPU `torch.Generator` seeded with `seed`, in row order (row `V + i` takes `z[i]`). The result
    is float32; the caller casts it. The same inputs always give the same rows.
    """
    source = source_rows.detach().to(torch.float32)
    mean = source.mean(dim=0)
    std = source.std(dim=0, unbiased=False)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(num_new_rows, source.shape[1], generator=generator, dtype=torch.float32)
    return mean + std * noise


def plan_text_model(
    reader: CheckpointReader,
    config: DeepOmniConfig,
    expected: dict[str, tuple],
    dtype: torch.dtype,
    keep_source_lm_head: bool,
    seed: int,
) -> tuple[list[PlannedTensor], list[str]]:
    """Planned backbone tensors (`model.language_model.*`, and `lm_head.weight` when kept) and notes."""
    what, text_cfg = "text model", config.text_config
    num_new = config.total_vocab_size - config.text_vocab_size
    consumed: set[str] = set()
    plan: list[PlannedTensor] = []
    notes: list[str] = []

    def take(key: str) -> str:
        if key not in reader:
            raise ValueError(
                f"The text model lacks `{key}`, which its config.json implies ({text_cfg.num_hidden_layers} layers, "
                f"first_k_dense_replace={text_cfg.first_k_dense_replace}, {text_cfg.n_routed_experts} experts)."
            )
        consumed.add(key)
        return key

    def renamed(target: str, source: str) -> PlannedTensor:
        check_shape(what, target, source, reader.shape(source), expected[target])
        return PlannedTensor(target, expected[target], lambda: reader.get(source), dtype)

    def extended(target: str, source: str, rows_seed: int) -> PlannedTensor:
        rows, hidden = config.text_vocab_size, text_cfg.hidden_size
        check_shape(what, target, source, reader.shape(source), (rows, hidden))

        def build() -> torch.Tensor:
            existing = reader.get(source)
            new_rows = init_new_embedding_rows(existing, num_new, rows_seed).to(dtype)
            return torch.cat([existing.to(dtype), new_rows], dim=0)

        return PlannedTensor(target, expected[target], build, dtype)

    def fused_experts(target: str, layer: int, kind: str) -> PlannedTensor:
        prefix = f"model.layers.{layer}.mlp.experts"
        if f"{prefix}.{kind}" in reader:  # already fused (a checkpoint written without the per-expert names)
            return renamed(target, take(f"{prefix}.{kind}"))
        num_experts, inter, hidden = text_cfg.n_routed_experts, text_cfg.moe_intermediate_size, text_cfg.hidden_size
        parts = ("gate_proj", "up_proj") if kind == "gate_up_proj" else ("down_proj",)
        part_shape = (inter, hidden) if kind == "gate_up_proj" else (hidden, inter)
        sources = [[take(f"{prefix}.{e}.{part}.weight") for part in parts] for e in range(num_experts)]
        for expert_sources in sources:
            for source in expert_sources:
                check_shape(what, target, source, reader.shape(source), part_shape)

        def build() -> torch.Tensor:
            # Filled expert by expert: one source tensor in flight besides the fused result.
            fused = torch.empty(expected[target], dtype=dtype)
            for e, expert_sources in enumerate(sources):
                row = 0
                for source in expert_sources:
                    part = reader.get(source)
                    fused[e, row : row + part.shape[0]] = part
                    row += part.shape[0]
            return fused

        return PlannedTensor(target, expected[target], build, dtype)

    for target in expected:
        if not target.startswith(TEXT_PREFIX):
            continue
        local = target[len(TEXT_PREFIX) :]
        if target == EMBED_KEY:
            plan.append(extended(target, take("model.embed_tokens.weight"), seed))
        elif match := re.fullmatch(r"layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)", local):
            plan.append(fused_experts(target, int(match.group(1)), match.group(2)))
        else:
            plan.append(renamed(target, take("model." + local)))

    if LM_HEAD_KEY in reader:
        if keep_source_lm_head:
            plan.append(extended(LM_HEAD_KEY, take(LM_HEAD_KEY), seed + 1))
            notes.append("kept the source's untied lm_head (rows for the new ids drawn like the embedding's)")
        else:
            consumed.add(LM_HEAD_KEY)
            notes.append(
                "dropped the source's untied lm_head: DeepOmni ties its head to the embedding, so text logits differ "
                "from the source model's until the head is trained (use keep_source_lm_head=True to keep it)"
            )
    elif keep_source_lm_head:
        raise ValueError(
            "keep_source_lm_head=True, but the text model has no `lm_head.weight` (its head is tied to the "
            "embedding); convert it without keep_source_lm_head."
        )

    leftover = sorted(k for k in set(reader.keys()) - consumed if not IGNORED_SOURCE_KEYS.match(k))
    if leftover:
        raise ValueError(
            f"The text model holds {len(leftover)} tensor(s) that its config.json does not account for, e.g. "
            f"{leftover[:5]}; the weights and the config disagree (number of layers or experts?)."
        )
    return plan, notes

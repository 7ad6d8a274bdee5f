# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`export_text_model`: the backbone of a DeepOmni checkpoint as a plain transformers `DeepseekV2ForCausalLM`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from transformers import DeepseekV2Config, GenerationConfig

from ...modeling.configuration_deepomni import DeepOmniConfig
from .deepseek import own_fields
from .layout import ADAPTER_PREFIX, AUDIO_PREFIX, CODEC_PREFIX, EMBED_KEY, LM_HEAD_KEY, TEXT_PREFIX
from .processor import export_tokenizer
from .reading import CONFIG_NAME, TOKENIZER_PATTERNS, CheckpointReader, read_json, resolve_checkpoint
from .writing import (
    ConversionResult,
    PlannedTensor,
    ShardWriter,
    atomic_output_dir,
    check_output_is_not_a_source,
    check_shape,
    expected_tensors,
    refuse_existing,
    write_planned,
)


def export_text_model(
    checkpoint_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    overwrite: bool = False,
    max_shard_size: int | str = "5GB",
    progress: bool = True,
    hub_kwargs: dict | None = None,
) -> ConversionResult:
    r"""
    Writes the text LLM of a DeepOmni checkpoint as a plain transformers `DeepseekV2ForCausalLM` (DESIGN §6), which any
    text tool loads with `AutoModelForCausalLM` (no remote code).

    - Vocabulary: `vocab_size = text_vocab_size`; the embedding is cut to its first `text_vocab_size` rows.
    - Head: an untied `lm_head.weight` (`tie_word_embeddings=False`) holding the checkpoint's head cut the same way —
      for the usual tied checkpoint a copy of the cut embedding, so the logits equal the tied model's. Written untied
      because the original DeepSeek-V2 layout is untied and not every runtime honours `tie_word_embeddings` for it.
    - Experts: one tensor per expert (`model.layers.N.mlp.experts.e.{gate,up,down}_proj.weight`), the layout both
      transformers and the original DeepSeek-V2 code read.
    - Config: the backbone's DeepSeek-V2 fields (sizes, `rope_parameters`, bos/eos); DeepOmni's speech experts and
      routing mode are not part of it: the exported model routes over all experts.
    - Tokenizer: copied without DeepOmni's specials when the checkpoint holds one (see `export_tokenizer`).

    Streams like `convert_checkpoint` and writes atomically (an existing `output_dir` needs `overwrite=True`).
    """
    refuse_existing(Path(os.fspath(output_dir)).expanduser().absolute(), overwrite)
    folder = resolve_checkpoint(
        checkpoint_dir,
        "DeepOmni checkpoint",
        [CONFIG_NAME, "*.safetensors", "*.safetensors.index.json", "chat_template.jinja"] + TOKENIZER_PATTERNS,
        **(hub_kwargs or {}),
    )
    check_output_is_not_a_source(output_dir, {"DeepOmni checkpoint": folder})
    raw = read_json(folder / CONFIG_NAME, "DeepOmni checkpoint")
    if raw.get("model_type") != DeepOmniConfig.model_type:
        raise ValueError(
            f"{str(folder)!r} holds a {raw.get('model_type')!r} checkpoint, not a DeepOmni one (model_type 'deepomni')."
        )
    config = DeepOmniConfig.from_pretrained(folder)
    with CheckpointReader(folder, "DeepOmni checkpoint") as reader:
        return _export_text_model(reader, folder, config, output_dir, overwrite, max_shard_size, progress)


def _export_text_model(reader, folder, config, output_dir, overwrite, max_shard_size, progress) -> ConversionResult:
    from transformers import DeepseekV2ForCausalLM

    text_cfg, vocab = config.text_config, config.text_vocab_size
    if EMBED_KEY not in reader:
        raise ValueError(f"The DeepOmni checkpoint in {str(folder)!r} has no `{EMBED_KEY}`.")
    dtype = reader.dtype(EMBED_KEY)

    fields = own_fields(DeepseekV2Config) - {"vocab_size", "tie_word_embeddings", "head_dim"}
    export_config = DeepseekV2Config(
        **{name: getattr(text_cfg, name) for name in sorted(fields)},
        vocab_size=vocab,
        tie_word_embeddings=False,
        architectures=["DeepseekV2ForCausalLM"],
    )
    export_config.dtype = dtype
    with torch.device("meta"):
        skeleton = DeepseekV2ForCausalLM(export_config)
    expected = expected_tensors(skeleton, {})
    notes = []
    if text_cfg.routing_mode != "all":
        notes.append(f"the checkpoint's routing_mode is {text_cfg.routing_mode!r}; the exported model routes over all experts")

    plan: list[PlannedTensor] = []
    consumed: set[str] = set()

    def source_of(target: str) -> str:
        key = TEXT_PREFIX + target[len("model.") :]
        if key not in reader:
            raise ValueError(f"The DeepOmni checkpoint lacks `{key}`.")
        consumed.add(key)
        return key

    def cut(key: str, target: str) -> PlannedTensor:
        consumed.add(key)
        check_shape("DeepOmni checkpoint", target, key, reader.shape(key), (config.total_vocab_size, text_cfg.hidden_size))
        return PlannedTensor(target, expected[target], lambda: reader.get(key)[:vocab].clone())

    for target in expected:
        if target == "model.embed_tokens.weight":
            plan.append(cut(EMBED_KEY, target))
        elif target == LM_HEAD_KEY:
            plan.append(cut(LM_HEAD_KEY if LM_HEAD_KEY in reader else EMBED_KEY, target))
        elif match := re.fullmatch(r"model\.layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)", target):
            plan += _plan_split_experts(reader, int(match.group(1)), match.group(2), expected[target], consumed)
        else:
            key = source_of(target)
            check_shape("DeepOmni checkpoint", target, key, reader.shape(key), expected[target])
            plan.append(PlannedTensor(target, expected[target], lambda key=key: reader.get(key)))

    other_parts = (AUDIO_PREFIX, ADAPTER_PREFIX, CODEC_PREFIX)
    leftover = sorted(k for k in set(reader.keys()) - consumed if not k.startswith(other_parts))
    if leftover:
        raise ValueError(f"The DeepOmni checkpoint holds tensors its config does not account for, e.g. {leftover[:5]}.")

    with atomic_output_dir(output_dir, overwrite) as temp_dir:
        export_config.save_pretrained(temp_dir)
        GenerationConfig.from_model_config(export_config).save_pretrained(temp_dir)
        writer = ShardWriter(temp_dir, max_shard_size)
        write_planned(plan, writer, "Writing text model", progress)
        writer.finish()
        tokenizer_saved, tokenizer_notes = export_tokenizer(folder, temp_dir, config)
        notes += tokenizer_notes
    return ConversionResult(
        output_dir=Path(os.fspath(output_dir)).expanduser().absolute(),
        num_tensors=len(writer.shapes),
        num_shards=writer.num_shards,
        total_bytes=writer.total_bytes,
        config=export_config,
        tokenizer_saved=tokenizer_saved,
        notes=notes,
    )


def _plan_split_experts(
    reader: CheckpointReader, layer: int, kind: str, fused_shape: tuple, consumed: set[str]
) -> list[PlannedTensor]:
    """Per-expert tensors of one layer from DeepOmni's fused ones (`gate_up_proj` → gate rows, up rows)."""
    key = f"{TEXT_PREFIX}layers.{layer}.mlp.experts.{kind}"
    target_prefix = f"model.layers.{layer}.mlp.experts"
    if key not in reader:
        parts = ("gate_proj", "up_proj") if kind == "gate_up_proj" else ("down_proj",)
        per_expert = [(f"{TEXT_PREFIX}layers.{layer}.mlp.experts.{e}.{part}.weight", f"{target_prefix}.{e}.{part}.weight")
                      for e in range(fused_shape[0]) for part in parts]  # fmt: skip
        if all(source in reader for source, _ in per_expert):  # saved per expert already: rename only
            consumed.update(source for source, _ in per_expert)
            return [PlannedTensor(t, reader.shape(s), lambda s=s: reader.get(s)) for s, t in per_expert]
        raise ValueError(f"The DeepOmni checkpoint lacks `{key}`.")
    consumed.add(key)
    check_shape("DeepOmni checkpoint", key, key, reader.shape(key), fused_shape)
    num_experts, rows = fused_shape[0], fused_shape[1]
    cache: dict[str, torch.Tensor] = {}

    def expert_slice(e: int, start: int, stop: int, last: bool) -> torch.Tensor:
        # The fused tensor is read once per layer and released after its last expert's last slice.
        fused = cache.get(key)
        if fused is None:
            fused = cache[key] = reader.get(key)
        part = fused[e, start:stop].clone()
        if last:
            cache.clear()
        return part

    plan = []
    for e in range(num_experts):
        last = e == num_experts - 1
        if kind == "gate_up_proj":
            half = rows // 2
            plan.append(PlannedTensor(f"{target_prefix}.{e}.gate_proj.weight", (half, fused_shape[2]),
                                      lambda e=e: expert_slice(e, 0, half, False)))  # fmt: skip
            plan.append(PlannedTensor(f"{target_prefix}.{e}.up_proj.weight", (half, fused_shape[2]),
                                      lambda e=e, last=last: expert_slice(e, half, rows, last)))  # fmt: skip
        else:
            plan.append(PlannedTensor(f"{target_prefix}.{e}.down_proj.weight", tuple(fused_shape[1:]),
                                      lambda e=e, last=last: expert_slice(e, 0, rows, last)))  # fmt: skip
    return plan

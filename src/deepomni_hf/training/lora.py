# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""LoRA (PEFT) for the modality stages, including the fused routed experts.

PEFT >= 0.17 can put LoRA on a bare `nn.Parameter` (`LoraConfig(target_parameters=[...])`, `lora.ParamWrapper`). For
a 3-D expert tensor `[E, out, in]` it keeps one rank-`r` pair per expert inside two matrices: `lora_A.weight`
`[r·E, in]` (expert `e` owns rows `e·r … e·r + r − 1`) and `lora_B.weight` `[out, r·E]` (expert `e` owns columns
`e, E + e, 2E + e, …`), and adds `scaling · B_e A_e` to expert `e` during the forward. So the stage plan's expert
split carries over: the frozen group's LoRA rows / columns get the same gradient mask + restore-around-step treatment
as the full tensors (`stages.ExpertRowFreezer`). `lora_B` starts at zero, so the frozen group's delta stays exactly
zero and those experts compute exactly what they did before.

What LoRA covers per stage (`apply_lora_stage`): the fused experts of the trained group(s), the shared experts, the
dense layer's linears, and, where the plan trains them (`joint`), the MoE layers' attention linears. Routers train
in full (their frozen-group rows masked) as PEFT `modules_to_save`, so the adapter checkpoint carries them.
Embeddings / head and norms stay frozen under LoRA: the embedding is tied to the head, and PEFT's `modules_to_save`
would untie it. LoRA does not apply to `alignment` (adapter + embedding rows only) and is not wired for `dpo`.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from .stages import (
    _ACTIVE_REPORTS,
    ExpertRowFreezer,
    FrozenRows,
    GroupCount,
    StagePlanReport,
    get_stage_plan,
    parameter_parts,
)


def lora_targets(model: nn.Module, stage) -> tuple[list[str], list[str]]:
    """`(target_modules, target_parameters)` (full names) for `stage`."""
    plan = get_stage_plan(stage)
    text_config = model.config.text_config
    modules, parameters = [], []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.startswith("model.language_model.layers."):
            parts = parameter_parts(model, f"{name}.weight")
            if all(part.rows is None and part.needs <= plan.trainable for part in parts):
                modules.append(name)
    for layer in text_config.moe_layers:
        if plan.trainable & {"speech_experts", "text_experts"}:
            for tensor in ("gate_up_proj", "down_proj"):
                parameters.append(f"model.language_model.layers.{layer}.mlp.experts.{tensor}")
    return modules, parameters


def apply_lora_stage(
    model: nn.Module,
    stage="speech",
    r: int = 8,
    lora_alpha: int = 16,
    experts: bool = True,
    verbose: bool = True,
):
    """
    Wraps `model` with PEFT LoRA for `stage` (see the module docstring) and installs the expert masks.

    Returns:
        `(peft_model, report)`; attach `report` to the optimizer (`DeepOmniTrainer(stage_report=report)` does).
    """
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import ParamWrapper

    plan = get_stage_plan(stage)
    model.set_routing_mode(plan.routing_mode)
    text_config = model.config.text_config
    target_modules, target_parameters = lora_targets(model, plan)
    if not experts:
        target_parameters = []
    if not target_modules and not target_parameters:
        raise ValueError(
            f"Stage {plan.name!r} trains nothing LoRA can adapt (it trains {sorted(plan.trainable)}); use full "
            "fine-tuning for it. LoRA is meant for the speech / text / joint stages."
        )
    # A regex matching exactly the chosen module names (PEFT's list form matches name suffixes).
    module_pattern = rf"^({'|'.join(re.escape(name) for name in target_modules)})$" if target_modules else []
    config = LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=0.0,
        target_modules=module_pattern,
        target_parameters=target_parameters or None,
        # Routers train in full; PEFT saves them with the adapter (a trainable copy per router).
        modules_to_save=["mlp.gate"] if "routers" in plan.trainable else None,
        bias="none",
    )
    peft_model = get_peft_model(model, config)
    base = peft_model.get_base_model()

    frozen: list[FrozenRows] = []
    groups = {"lora": GroupCount(), "routers": GroupCount()}
    for name, param in peft_model.named_parameters():
        if "lora_" in name:
            groups["lora"].total += param.numel()
            groups["lora"].trainable += param.numel()
    # Expert-wise masks on the LoRA factors of the frozen group.
    for name, module in base.named_modules():
        if not isinstance(module, ParamWrapper):
            continue
        match = re.search(r"layers\.(\d+)\.mlp\.experts", name)
        if match is None:
            continue
        layer = int(match.group(1))
        speech = set(text_config.speech_experts[layer])
        frozen_experts = [
            e
            for e in range(module.num_experts)
            if ("speech_experts" if e in speech else "text_experts") not in plan.trainable
        ]
        if not frozen_experts:
            continue
        for adapter in module.lora_A:
            rank = module.r[adapter]
            num = module.num_experts
            a_rows = torch.tensor([e * rank + j for e in frozen_experts for j in range(rank)], dtype=torch.long)
            b_cols = torch.tensor([j * num + e for e in frozen_experts for j in range(rank)], dtype=torch.long)
            frozen.append(FrozenRows(f"{name}.lora_A.{adapter}", module.lora_A[adapter].weight, a_rows, dim=0))
            frozen.append(FrozenRows(f"{name}.lora_B.{adapter}", module.lora_B[adapter].weight, b_cols, dim=1))
            trainable_share = 1 - len(frozen_experts) / num
            size = module.lora_A[adapter].weight.numel() + module.lora_B[adapter].weight.numel()
            groups["lora"].trainable -= round(size * (1 - trainable_share))
    # Routers train in full, except the rows of frozen experts.
    if "routers" in plan.trainable:
        for name, param in base.named_parameters():
            if not re.search(r"layers\.\d+\.mlp\.gate\.(modules_to_save\.[^.]+\.)?weight$", name):
                continue
            if "original_module" in name:
                continue
            parts = parameter_parts(base, name)
            frozen_rows = [row for part in parts if not part.needs <= plan.trainable for row in part.rows]
            param.requires_grad_(True)
            groups["routers"].total += param.numel()
            groups["routers"].trainable += param.numel() - len(frozen_rows) * param.shape[1]
            if frozen_rows:
                frozen.append(FrozenRows(name, param, torch.tensor(sorted(frozen_rows), dtype=torch.long)))
    report = StagePlanReport(
        plan=plan,
        groups=groups,
        trainable_names=[n for n, p in peft_model.named_parameters() if p.requires_grad],
        frozen_names=[n for n, p in peft_model.named_parameters() if not p.requires_grad],
        partial_names=[entry.name for entry in frozen],
        freezer=ExpertRowFreezer(frozen),
    )
    previous = _ACTIVE_REPORTS.pop(base, None)
    if previous is not None:
        previous.remove()
    _ACTIVE_REPORTS[base] = report
    if verbose:
        print(
            f"LoRA r={r} alpha={lora_alpha} for stage {plan.name!r}: {len(target_modules)} linear modules, "
            f"{len(target_parameters)} fused expert tensors"
        )
        print(report.summary())
    return peft_model, report


__all__ = ["apply_lora_stage", "lora_targets"]

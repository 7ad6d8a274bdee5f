# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""DPO on the audio slots (DESIGN §5), with a frozen reference model.

For a pair (same prompt and text answer, chosen codes `c`, rejected codes `r`) and each audio slot `s` (0..6):

    log π_s(x)  = Σ over the target positions of slot s in x of log p(label | prefix)     (summed, not averaged)
    loss_s      = −log σ( β · [(log π_s(c) − log π_s(r)) − (log π_ref,s(c) − log π_ref,s(r))] )
    total       = mean(text cross-entropy of the chosen sequence, loss_0, …, loss_6)                 (β = 0.1)

A slot's target positions are those whose label is not −100 in that slot: its codes and `EOA` — not the `PAD_A` around
them (DESIGN §3; what `DeepOmniProcessor.apply_chat_template(..., output_labels=True)` and the collator mark). The text cross-entropy is the mean over the chosen
sequence's text targets (the text answer is the same in both sequences); when a batch has none, the total is the mean
of the 7 slot losses.

Pair datasets (`save_to_disk`) have columns `chosen_input_ids`, `chosen_labels`, `rejected_input_ids`,
`rejected_labels` (`[positions, 8]` each; lengths may differ), optional `chosen_attention_mask` /
`rejected_attention_mask`, `input_features` (`[num_audios, 80, 3000]`, the prompt's spoken turns, shared by both
sequences; `None` for text prompts), and optionally precomputed reference log-probs `reference_chosen_logps` /
`reference_rejected_logps` (`[7]` each, see [`precompute_reference_logps`]). [`build_dpo_pair`] makes one row.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..processors.collator import IGNORE_INDEX, DeepOmniDataCollator
from .data import normalize_messages
from .trainer import DeepOmniTrainer

NUM_SLOTS = 7
DEFAULT_BETA = 0.1
DPO_METRICS = tuple(f"dpo_loss_slot{s}" for s in range(NUM_SLOTS)) + (
    "text_ce",
    "dpo_reward_margin",
    "dpo_reward_accuracy",
    "aux_loss",
)


# ----- the loss -----


def slot_log_probs(audio_logits: torch.Tensor, labels: torch.LongTensor, config) -> torch.Tensor:
    """
    Summed log-probabilities of each audio slot's targets.

    Args:
        audio_logits: `[batch, positions, 7, audio_slot_vocab]` slot-local logits (the model's `audio_logits`).
        labels: `[batch, positions, 8]` absolute ids, −100 where nothing is learned (shifted here: position `t`
            predicts label `t + 1`, as in the model's loss).
        config: the `DeepOmniConfig` (for the slot offsets).

    Returns:
        `[batch, 7]` float32.
    """
    logits = audio_logits[:, :-1].float()
    target = labels[:, 1:, :NUM_SLOTS].to(logits.device)
    valid = target != IGNORE_INDEX
    offsets = torch.tensor([config.audio_slot_offset(s) for s in range(NUM_SLOTS)], device=target.device)
    local = torch.where(valid, target - offsets, torch.zeros_like(target))
    if bool(((local < 0) | (local >= logits.shape[-1]))[valid].any()):
        raise ValueError("labels hold audio-slot ids outside their slot's range; build pairs with DeepOmniProcessor.")
    token_logps = logits.log_softmax(-1).gather(-1, local.unsqueeze(-1)).squeeze(-1)
    return (token_logps * valid).sum(dim=1)


def text_cross_entropy(text_logits: torch.Tensor, labels: torch.LongTensor) -> torch.Tensor:
    """Mean next-token cross-entropy of the text stream (NaN without targets)."""
    target = labels[:, 1:, 7].to(text_logits.device)
    if not bool((target != IGNORE_INDEX).any()):
        return text_logits.new_tensor(float("nan"), dtype=torch.float32)
    return F.cross_entropy(text_logits[:, :-1].float().flatten(0, 1), target.flatten(), ignore_index=IGNORE_INDEX)


def dpo_slot_losses(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float = DEFAULT_BETA,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(losses [batch, 7], margins [batch, 7])`: `−log σ(β·margin)` with `margin = (πc − πr) − (refc − refr)`."""
    margins = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected).to(policy_chosen.device)
    return -F.logsigmoid(beta * margins), margins


def deepomni_dpo_loss(text_ce: torch.Tensor, slot_losses: torch.Tensor) -> torch.Tensor:
    """Mean of the text cross-entropy and the 7 batch-averaged slot DPO losses (the slots alone when `text_ce` is
    NaN)."""
    slots = slot_losses.mean(dim=0)
    if torch.isnan(text_ce):
        return slots.mean()
    return (text_ce + slots.sum()) / (NUM_SLOTS + 1)


# ----- data -----


def build_dpo_pair(
    processor,
    messages: Sequence[Mapping],
    chosen_codes,
    rejected_codes,
    voice: str | None = None,
) -> dict[str, Any]:
    """
    One DPO row from a conversation whose last message is the assistant's text answer, and two code arrays
    (`[frames, 7]` raw codes) for it. Returns numpy arrays (see the module docstring for the columns).
    """
    messages = normalize_messages(messages)
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError("The conversation must end with the assistant's text answer.")

    def with_codes(codes):
        last = dict(messages[-1])
        content = last["content"]
        content = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        content = [item for item in content if item.get("type") != "audio_codes"]
        content.append({"type": "audio_codes", "codes": np.asarray(codes), **({"voice": voice} if voice else {})})
        return [*messages[:-1], {**last, "content": content}]

    chosen = processor.apply_chat_template(with_codes(chosen_codes), output_labels=True, return_tensors="np")
    rejected = processor.apply_chat_template(with_codes(rejected_codes), output_labels=True, return_tensors="np")
    features = chosen.get("input_features")
    return {
        "chosen_input_ids": chosen["input_ids"][0],
        "chosen_labels": chosen["labels"][0],
        "chosen_attention_mask": chosen["attention_mask"][0],
        "rejected_input_ids": rejected["input_ids"][0],
        "rejected_labels": rejected["labels"][0],
        "rejected_attention_mask": rejected["attention_mask"][0],
        "input_features": None if features is None else np.asarray(features, dtype=np.float32),
    }


@dataclass
class DeepOmniDPOCollator:
    """
    Batches DPO pairs into one forward: rows `0..B-1` are the chosen sequences, rows `B..2B-1` the rejected ones
    (padded together), and the prompt features repeat for both halves. Passes `reference_chosen_logps` /
    `reference_rejected_logps` (`[B, 7]`) through when every row has them.
    """

    processor: Any
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        rows = []
        for side in ("chosen", "rejected"):
            for example in examples:
                features = example.get(f"{side}_input_features", example.get("input_features"))
                rows.append(
                    {
                        "input_ids": example[f"{side}_input_ids"],
                        "labels": example[f"{side}_labels"],
                        "attention_mask": example.get(f"{side}_attention_mask"),
                        "input_features": features,
                    }
                )
        batch = DeepOmniDataCollator(self.processor, "right", self.pad_to_multiple_of)(rows)
        for key in ("reference_chosen_logps", "reference_rejected_logps"):
            if all(example.get(key) is not None for example in examples):
                batch[key] = torch.tensor(np.asarray([example[key] for example in examples]), dtype=torch.float32)
        return batch


# ----- the trainer -----


def _split_forward(model: nn.Module, batch: Mapping[str, torch.Tensor], output_router_logits: bool = False):
    inputs = {
        key: batch[key] for key in ("input_ids", "attention_mask", "input_features") if batch.get(key) is not None
    }
    return model(**inputs, use_cache=False, output_router_logits=output_router_logits)


def _model_config(model: nn.Module):
    while not hasattr(model, "config") and hasattr(model, "module"):
        model = model.module
    return model.config


@torch.no_grad()
def reference_log_probs(
    reference_model: nn.Module, batch: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(chosen [B, 7], rejected [B, 7])` summed slot log-probs of the reference model on a DPO batch."""
    outputs = _split_forward(reference_model, batch)
    logps = slot_log_probs(outputs.audio_logits, batch["labels"], _model_config(reference_model))
    half = logps.shape[0] // 2
    return logps[:half], logps[half:]


def precompute_reference_logps(reference_model: nn.Module, dataset, collator, batch_size: int = 4):
    """Adds `reference_chosen_logps` / `reference_rejected_logps` columns (`[7]` per row) to a DPO dataset, so that
    training needs no reference model in memory."""
    was_training = reference_model.training
    reference_model.eval()
    device = next(reference_model.parameters()).device
    chosen, rejected = [], []
    try:
        for start in range(0, len(dataset), batch_size):
            rows = dataset[start : start + batch_size]
            examples = [dict(zip(rows, values)) for values in zip(*rows.values())]
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in collator(examples).items()}
            c, r = reference_log_probs(reference_model, batch)
            chosen.extend(c.cpu().tolist())
            rejected.extend(r.cpu().tolist())
    finally:
        reference_model.train(was_training)
    for name in ("reference_chosen_logps", "reference_rejected_logps"):
        if name in dataset.column_names:
            dataset = dataset.remove_columns(name)
    return dataset.add_column("reference_chosen_logps", chosen).add_column("reference_rejected_logps", rejected)


class DeepOmniDPOTrainer(DeepOmniTrainer):
    """
    DPO on the 7 audio slots plus the text cross-entropy (see the module docstring), built on `DeepOmniTrainer`.

    Args:
        model: the policy (trained per the `dpo` stage plan unless `stage` says otherwise).
        ref_model (*optional*): the frozen reference. Default: a copy of `model` taken before training (not needed —
            and not made — when `precomputed_reference=True`).
        beta (`float`, *optional*, defaults to 0.1).
        precomputed_reference (`bool`, *optional*, defaults to `False`): the batches carry `reference_chosen_logps` /
            `reference_rejected_logps` (from [`precompute_reference_logps`]).
        router_aux_loss (`bool`, *optional*, defaults to `False`): add `router_aux_loss_coef` × the balance loss of
            the policy forward to the total (not part of the published DPO loss).
        Other arguments as [`DeepOmniTrainer`]; pass `DeepOmniDPOCollator(processor)` as `data_collator`.
    """

    metric_names = DPO_METRICS

    def __init__(
        self,
        model=None,
        args=None,
        *trainer_args,
        ref_model: nn.Module | None = None,
        beta: float = DEFAULT_BETA,
        precomputed_reference: bool = False,
        stage="dpo",
        router_aux_loss: bool = False,
        **kwargs,
    ):
        if ref_model is None and not precomputed_reference:
            ref_model = copy.deepcopy(model)
        if ref_model is not None:
            ref_model.eval()
            ref_model.requires_grad_(False)
        self.beta = float(beta)
        self.precomputed_reference = precomputed_reference
        super().__init__(model, args, *trainer_args, stage=stage, router_aux_loss=router_aux_loss, **kwargs)
        self.ref_model = None if ref_model is None else ref_model.to(self.args.device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = _split_forward(model, inputs, output_router_logits=self.router_aux_loss)
        labels = inputs["labels"]
        config = _model_config(self.accelerator.unwrap_model(model))
        logps = slot_log_probs(outputs.audio_logits, labels, config)
        half = logps.shape[0] // 2
        if inputs.get("reference_chosen_logps") is not None and inputs.get("reference_rejected_logps") is not None:
            reference_chosen, reference_rejected = inputs["reference_chosen_logps"], inputs["reference_rejected_logps"]
        elif self.ref_model is not None:
            reference_chosen, reference_rejected = reference_log_probs(self.ref_model, inputs)
        else:
            raise ValueError("No reference log-probs: pass ref_model or precompute them (precompute_reference_logps).")
        slot_losses, margins = dpo_slot_losses(
            logps[:half], logps[half:], reference_chosen, reference_rejected, self.beta
        )
        text_ce = text_cross_entropy(outputs.logits[:half], labels[:half])
        loss = deepomni_dpo_loss(text_ce, slot_losses)
        aux = outputs.get("aux_loss")
        if self.router_aux_loss and aux is not None:
            loss = loss + config.text_config.router_aux_loss_coef * aux
        if model.training:
            values = {f"dpo_loss_slot{s}": slot_losses[:, s].mean() for s in range(NUM_SLOTS)}
            values.update(
                text_ce=text_ce,
                dpo_reward_margin=(self.beta * margins).mean(),
                dpo_reward_accuracy=(margins > 0).float().mean(),
                aux_loss=aux,
            )
            self._metrics.add(values)
        outputs["loss"] = loss
        return (loss, outputs) if return_outputs else loss


__all__ = [
    "DEFAULT_BETA",
    "DPO_METRICS",
    "DeepOmniDPOCollator",
    "DeepOmniDPOTrainer",
    "build_dpo_pair",
    "deepomni_dpo_loss",
    "dpo_slot_losses",
    "precompute_reference_logps",
    "reference_log_probs",
    "slot_log_probs",
    "text_cross_entropy",
]

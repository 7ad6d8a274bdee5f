# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`transformers.Trainer` glue for DeepOmni's stages.

`DeepOmniTrainer` is a plain `Trainer` plus:

* the stage plan: `stage="speech"` (or a `StagePlanReport` from `apply_stage_plan`) is applied to the model before the
  optimizer exists, and the plan's row freezer is attached to the optimizer it creates (see `stages.ExpertRowFreezer`);
  combinations that cannot keep frozen expert rows exact (FSDP or ZeRO-3 with a row-split stage; ZeRO-1/2 with weight
  decay) are refused with an explanation;
* logging of the per-stream losses (`loss_slot0` … `loss_slot6`, `loss_text`; NaN-safe: a stream is averaged only over
  the micro-batches where it had targets, summed across processes) and of the router balance loss (`aux_loss`, before
  `router_aux_loss_coef`) at every logging step;
* the router balance loss is switched on (`output_router_logits=True`) unless `router_aux_loss=False`;
* dataset columns are never dropped (the DeepOmni collators pick what they need), and the loss is the model's own
  (a mean of per-stream means, so it is not re-normalised by `num_items_in_batch`).
"""

from __future__ import annotations

import torch
from transformers import Trainer

from .stages import StagePlan, StagePlanReport, active_stage_report, apply_stage_plan

STREAM_METRICS = tuple(f"loss_slot{slot}" for slot in range(7)) + ("loss_text",)


class _MetricAccumulator:
    """NaN-safe running means of a fixed list of scalars, reduced across processes at logging time."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        self.sums = torch.zeros(len(names), dtype=torch.float64)
        self.counts = torch.zeros(len(names), dtype=torch.float64)

    def add(self, values: dict[str, torch.Tensor | float]) -> None:
        for name, value in values.items():
            if value is None:
                continue
            value = (
                value.detach().float().cpu().reshape(-1) if isinstance(value, torch.Tensor) else torch.tensor([value])
            )
            index = self.names.index(name)
            finite = torch.isfinite(value)
            self.sums[index] += value[finite].double().sum()
            self.counts[index] += finite.sum()

    def collect(self, accelerator, device) -> dict[str, float]:
        packed = torch.cat([self.sums, self.counts]).to(device)
        if accelerator is not None and accelerator.num_processes > 1:
            packed = accelerator.reduce(packed, reduction="sum")
        packed = packed.cpu()
        sums, counts = packed[: len(self.names)], packed[len(self.names) :]
        self.sums.zero_()
        self.counts.zero_()
        return {name: float(s / c) for name, s, c in zip(self.names, sums, counts) if c > 0}


class DeepOmniTrainer(Trainer):
    """
    `transformers.Trainer` for DeepOmni stages (see the module docstring).

    Args:
        stage (`str` or [`StagePlan`], *optional*): applies this plan to `model` (routing mode, trainable groups,
            expert row masks) and prints its summary.
        stage_report ([`StagePlanReport`], *optional*): a plan already applied with `apply_stage_plan`. Without either,
            the plan last applied to the model (if any) is used.
        router_aux_loss (`bool`, *optional*, defaults to `True`): add `router_aux_loss_coef` × the balance loss.
        All other arguments are `Trainer`'s. Use `DeepOmniDataCollator(processor)` as `data_collator`.
    """

    metric_names: tuple[str, ...] = STREAM_METRICS + ("aux_loss",)

    def __init__(
        self,
        model=None,
        args=None,
        *trainer_args,
        stage: str | StagePlan | None = None,
        stage_report: StagePlanReport | None = None,
        router_aux_loss: bool = True,
        **kwargs,
    ):
        if stage is not None and stage_report is None:
            stage_report = apply_stage_plan(model, stage, verbose=args is None or args.process_index == 0)
        self.stage_report = stage_report if stage_report is not None else active_stage_report(model)
        self.router_aux_loss = router_aux_loss
        self._metrics = _MetricAccumulator(self.metric_names)
        self._freezer_optimizer = None
        super().__init__(model, args, *trainer_args, **kwargs)
        # The model's loss is a mean of per-stream means; Trainer must not rescale it by a token count.
        self.model_accepts_loss_kwargs = False
        self._check_distributed_freezing()

    # ----- the stage plan and the optimizer -----
    def _check_distributed_freezing(self) -> None:
        report = self.stage_report
        if report is None or not report.freezer:
            return
        stage = report.plan.name
        if self.is_fsdp_enabled:
            raise ValueError(
                f"Stage {stage!r} freezes some rows of the fused expert / router / embedding tensors, which FSDP "
                "shards without regard to those rows. Train this stage with DDP (accelerate's multi-GPU mode), or use "
                "FSDP for the whole-tensor stages (joint, dpo)."
            )
        if self.is_deepspeed_enabled:
            zero_stage = getattr(self.accelerator.state.deepspeed_plugin, "zero_stage", None)
            if zero_stage == 3:
                raise ValueError(
                    f"Stage {stage!r} freezes rows of fused tensors; ZeRO-3 partitions those tensors. Use ZeRO-1/2 "
                    "with weight_decay=0, or DDP."
                )
            if self.args.weight_decay > 0:
                raise ValueError(
                    f"Stage {stage!r} freezes rows of fused tensors. Under DeepSpeed the optimizer steps on its own "
                    "fp32 copies, so only the gradient mask protects them, and weight decay would still shrink the "
                    "frozen rows: set weight_decay=0 (or train with DDP)."
                )

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        self._attach_freezer(optimizer)
        return optimizer

    def _attach_freezer(self, optimizer) -> None:
        if self.stage_report is None or optimizer is None or self._freezer_optimizer is optimizer:
            return
        self.stage_report.attach_optimizer(optimizer)
        self._freezer_optimizer = optimizer

    # ----- loss and logging -----
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.router_aux_loss and "output_router_logits" not in inputs:
            inputs = {**inputs, "output_router_logits": True}
        if not return_outputs and "labels" in inputs:  # only the loss is read: skip the logits nobody looks at
            inputs = {**inputs, "return_logits": False}
        outputs = model(**inputs)
        loss = outputs["loss"]
        if model.training:
            self._record_outputs(outputs)
        return (loss, outputs) if return_outputs else loss

    def _record_outputs(self, outputs) -> None:
        values = {}
        stream_losses = outputs.get("stream_losses")
        if stream_losses is not None:
            values.update({name: stream_losses[index] for index, name in enumerate(STREAM_METRICS)})
        values["aux_loss"] = outputs.get("aux_loss")
        self._metrics.add(values)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log step: every process is here
            logs.update(self._metrics.collect(self.accelerator, self.args.device))
        super().log(logs, start_time)

    def floating_point_ops(self, inputs) -> int:
        # PreTrainedModel counts input_ids.numel() tokens, 8× too many in the 8-stream layout.
        input_ids = inputs.get("input_ids")
        if input_ids is None:
            return 0
        if not hasattr(self, "_non_embedding_parameters"):
            self._non_embedding_parameters = self.accelerator.unwrap_model(self.model).num_parameters(
                exclude_embeddings=True
            )
        return 6 * input_ids.shape[0] * input_ids.shape[1] * self._non_embedding_parameters

    # ----- keep every column: the collators choose -----
    def _remove_unused_columns(self, dataset, description=None):
        return dataset

    def _get_collator_with_removed_columns(self, data_collator, description=None):
        return data_collator


__all__ = ["STREAM_METRICS", "DeepOmniTrainer"]

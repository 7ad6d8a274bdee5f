# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Declarative training-stage plans (DESIGN §5) and their application to a model.

Every parameter of `DeepOmniForConditionalGeneration` belongs to one of the groups of `PARAMETER_GROUPS`. Some groups
are *rows* of a tensor rather than whole tensors:

* the routed experts of an MoE layer are fused (`mlp.experts.gate_up_proj` `[E, 2I, H]`, `down_proj` `[E, H, I]`, one
  `Parameter` each), so "speech experts" and "text experts" are row sets of the same tensors;
* the router weight `mlp.gate.weight` `[E, H]`: row `e` scores expert `e` and trains only together with that expert;
* the tied embedding / head `[V, H]`: rows below `text_vocab_size` are the backbone's own text vocabulary
  (`text_embeddings`), the rest are DeepOmni's text specials and 7 audio slots (`extended_embeddings`).

`requires_grad` cannot freeze part of a tensor, so a tensor with both trainable and frozen rows keeps
`requires_grad=True` and is guarded by an [`ExpertRowFreezer`] (see its docstring for why it is bit-exact under AdamW
with weight decay). Tensors whose rows are all frozen get `requires_grad=False`; so do Whisper and the codec in every
stage.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

# ----- parameter groups -----

PARAMETER_GROUPS: dict[str, str] = {
    "whisper": "Whisper encoder (model.audio_tower); frozen in every stage",
    "adapter": "SwiGLU speech adapter (model.speech_adapter)",
    "text_embeddings": "rows < text_vocab_size of the tied embedding / output head (the backbone's text vocabulary)",
    "extended_embeddings": "rows >= text_vocab_size of the tied embedding / head (text specials + 7 audio slots)",
    "dense_layers": "attention and dense FFN of the dense decoder layers (layer < first_k_dense_replace)",
    "moe_attention": "attention (MLA, with its internal norms) of the MoE layers",
    "norms": "input / post-attention RMSNorms of every layer and the final norm",
    "routers": "router rows (mlp.gate.weight); row e trains only when expert e's group trains too",
    "shared_experts": "shared experts of the MoE layers",
    "speech_experts": "rows of the fused routed-expert tensors that are speech experts",
    "text_experts": "rows of the fused routed-expert tensors that are text experts",
    "codec": "SNAC codec (codec_model); never trained",
}
NEVER_TRAINED = frozenset({"whisper", "codec"})
_ALL_TRAINABLE = frozenset(PARAMETER_GROUPS) - NEVER_TRAINED
_STAGE2_EXTRAS = frozenset(
    {"routers", "shared_experts", "text_embeddings", "extended_embeddings", "dense_layers", "norms"}
)


@dataclass(frozen=True)
class StagePlan:
    """
    One training stage: the routing mode and which parameter groups train, plus the published hyper-parameters.

    Args:
        name: stage name (`alignment`, `speech`, `text`, `joint`, `dpo`).
        routing_mode: the router mode during the stage (`all`, `speech`, `text`, `per_token`).
        trainable: names from `PARAMETER_GROUPS` that train; every other group is frozen.
        learning_rate / num_train_epochs: the published values (DESIGN §5), used as defaults by the example script.
        data: the task the stage trains on.
        description: one line for summaries.
    """

    name: str
    routing_mode: str
    trainable: frozenset[str]
    learning_rate: float
    num_train_epochs: float
    data: str
    description: str = ""

    def __post_init__(self):
        unknown = set(self.trainable) - set(PARAMETER_GROUPS)
        if unknown:
            raise ValueError(
                f"Stage {self.name!r} names unknown parameter groups {sorted(unknown)}; "
                f"known: {sorted(PARAMETER_GROUPS)}."
            )
        never = set(self.trainable) & NEVER_TRAINED
        if never:
            raise ValueError(f"Stage {self.name!r} would train {sorted(never)}, which DeepOmni never trains.")

    @property
    def frozen(self) -> frozenset[str]:
        return frozenset(PARAMETER_GROUPS) - self.trainable


STAGES: dict[str, StagePlan] = {
    "alignment": StagePlan(
        "alignment",
        "all",
        frozenset({"adapter", "extended_embeddings"}),
        2e-5,
        1,
        "ASR: speech -> transcript",
        "stage 1: align the speech adapter; the new (special + audio) embedding rows learn too, the backbone is frozen",
    ),
    "speech": StagePlan(
        "speech",
        "speech",
        _STAGE2_EXTRAS | {"speech_experts"},
        1e-4,
        2,
        "spoken QA: speech question -> text + speech answer",
        "stage 2-speech: speech experts (routing restricted to them) + routers, shared experts, embeddings, dense "
        "layer, norms",
    ),
    "text": StagePlan(
        "text",
        "text",
        _STAGE2_EXTRAS | {"text_experts"},
        2e-5,
        2,
        "text QA / instructions: text -> text",
        "stage 2-text: text experts (routing restricted to them) + the same extras as 2-speech",
    ),
    "joint": StagePlan(
        "joint",
        "all",
        _ALL_TRAINABLE - {"adapter"},
        5e-5,
        2,
        "mix of speech and text tasks; text questions fed as speech with probability 0.7",
        "stage 3: everything but Whisper and the adapter",
    ),
    "dpo": StagePlan(
        "dpo",
        "all",
        _ALL_TRAINABLE - {"adapter"},
        2e-5,
        1,
        "pairs of chosen / rejected codec sequences for one answer",
        "DPO on the audio slots against a frozen reference copy; Whisper (frozen in every stage, DESIGN §2) and the "
        "adapter (trained in stage 1 only) stay frozen",
    ),
}


# Not a DeepOmni stage: the dense baseline the paper's claim is measured against (issue 12's reproduction).
BASELINE_PLANS: dict[str, StagePlan] = {
    "naive": StagePlan(
        "naive",
        "all",
        _ALL_TRAINABLE,
        5e-5,
        2,
        "the speech and text data of the modality and joint stages, in one run",
        "naive baseline: one joint fine-tuning of every parameter but Whisper (adapter included), routing over all "
        "experts, no expert split (what dense speech LLMs do)",
    ),
}


def get_stage_plan(stage: str | StagePlan) -> StagePlan:
    if isinstance(stage, StagePlan):
        return stage
    plans = {**STAGES, **BASELINE_PLANS}
    if stage not in plans:
        raise ValueError(f"Unknown stage {stage!r}; choose one of {sorted(plans)} or pass a StagePlan.")
    return plans[stage]


# ----- which rows of which tensor belong to which group -----


@dataclass
class ParameterPart:
    """Rows `rows` (dim 0; `None` = the whole tensor) of one parameter, trainable iff all of `needs` are."""

    group: str  # the group its elements are counted under
    needs: frozenset[str]
    rows: list[int] | None = None


_LAYER = re.compile(r"^model\.language_model\.layers\.(\d+)\.(.+)$")


def _strip_wrappers(name: str) -> str:
    """`named_parameters()` name of the bare model, from a PEFT-wrapped or compiled model's name."""
    name = name.replace("_orig_mod.", "")
    name = name.removeprefix("base_model.model.")
    return name.replace(".base_layer.", ".")


def parameter_parts(model: nn.Module, name: str) -> list[ParameterPart]:
    """The groups (and row ranges) of one parameter of a `DeepOmniForConditionalGeneration`, by its name."""
    config = model.config
    text_config = config.text_config
    bare = _strip_wrappers(name)
    whole = lambda group, *extra: [ParameterPart(group, frozenset({group, *extra}))]
    if bare.startswith("codec_model."):
        return whole("codec")
    if bare.startswith("model.audio_tower."):
        return whole("whisper")
    if bare.startswith("model.speech_adapter."):
        return whole("adapter")
    if bare in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
        split = config.text_vocab_size
        return [
            ParameterPart("text_embeddings", frozenset({"text_embeddings"}), list(range(split))),
            ParameterPart(
                "extended_embeddings", frozenset({"extended_embeddings"}), list(range(split, config.total_vocab_size))
            ),
        ]
    if bare.startswith("model.language_model.norm."):
        return whole("norms")
    match = _LAYER.match(bare)
    if match is None:
        raise ValueError(f"Parameter {name!r} belongs to no DeepOmni parameter group; cannot plan its training.")
    layer, rest = int(match.group(1)), match.group(2)
    if rest.startswith(("input_layernorm.", "post_attention_layernorm.")):
        return whole("norms")
    if not text_config.is_moe_layer(layer):
        return whole("dense_layers")
    if rest.startswith("self_attn."):
        return whole("moe_attention")
    if rest.startswith("mlp.shared_experts."):
        return whole("shared_experts")
    speech = list(text_config.speech_experts[layer])
    text = text_config.text_experts(layer)
    if rest.startswith("mlp.experts."):
        return [
            ParameterPart("speech_experts", frozenset({"speech_experts"}), speech),
            ParameterPart("text_experts", frozenset({"text_experts"}), text),
        ]
    if rest.startswith("mlp.gate."):
        return [
            ParameterPart("routers", frozenset({"routers", "speech_experts"}), speech),
            ParameterPart("routers", frozenset({"routers", "text_experts"}), text),
        ]
    raise ValueError(f"Parameter {name!r} of MoE layer {layer} belongs to no DeepOmni parameter group.")


# ----- freezing rows of a tensor -----


@dataclass
class FrozenRows:
    name: str
    parameter: nn.Parameter
    rows: torch.Tensor  # int64 indices along `dim`
    dim: int = 0


class ExpertRowFreezer:
    """
    Keeps chosen rows (dim 0) of trainable tensors bit-identical through training: the text experts of a fused expert
    tensor during the speech stage, for instance.

    Two parts, both needed:

    1. **Gradient mask** (a tensor hook, `param.register_hook`): the frozen rows' gradient is set to zero as it is
       produced, before it is accumulated into `.grad`, so DDP's all-reduce, gradient clipping (the frozen rows add
       nothing to the norm) and the optimizer's moment estimates never see it. With a fresh optimizer this alone makes
       Adam's step on those rows exactly zero — except for decoupled **weight decay**, which shrinks every row of a
       tensor in its parameter group (`p -= lr·wd·p`) whatever its gradient; and momentum inherited from an earlier
       optimizer state would move them too.
    2. **Restore around the optimizer step** (`attach_optimizer`: `Optimizer.register_step_pre_hook` copies the frozen
       rows, `register_step_post_hook` writes them back). The copy lives only during `step()` (on `snapshot_device`),
       holds only the frozen rows, and is taken fresh every step, so loading a checkpoint or editing weights between
       steps is respected.

    Why not something else: per-row `requires_grad` does not exist; splitting the fused tensors into per-expert
    parameters would change the model's structure, its checkpoints and the fast grouped-GEMM expert kernels; an
    optimizer parameter group without weight decay for the fused tensors would also turn decay off for the rows that
    do train, and still leaves inherited momentum. Restoring after each step is exact for any optimizer (AdamW,
    Adafactor, SGD with momentum, ...) and costs a copy of the frozen rows per step.

    Distributed: exact under single-process and DDP training (each replica masks and restores the same rows). Under
    DeepSpeed ZeRO-1/2 the optimizer steps on flat fp32 copies, so the restore hooks do not reach the model's tensors:
    the gradient mask still holds, so frozen rows stay exact only with `weight_decay=0` (DeepOmniTrainer checks this).
    FSDP / ZeRO-3 shard the fused tensors, which the row indices do not follow: use them for the whole-tensor stages
    (`joint`, `dpo`; `alignment` freezes the text rows of the embedding) — DeepOmniTrainer refuses the combination.
    """

    def __init__(self, frozen: list[FrozenRows], snapshot_device: str | torch.device | None = None):
        self.frozen = frozen
        self.snapshot_device = snapshot_device
        self._grad_handles = []
        self._optimizer_handles = []
        self._snapshots: list[torch.Tensor] | None = None
        for entry in frozen:
            self._grad_handles.append(entry.parameter.register_hook(self._mask_hook(entry.rows, entry.dim)))

    @staticmethod
    def _mask_hook(rows: torch.Tensor, dim: int):
        def hook(grad: torch.Tensor) -> torch.Tensor:
            return grad.index_fill(dim, rows.to(grad.device), 0)

        return hook

    def __bool__(self) -> bool:
        return bool(self.frozen)

    def snapshot(self) -> None:
        with torch.no_grad():
            self._snapshots = [
                entry.parameter.detach()
                .index_select(entry.dim, entry.rows.to(entry.parameter.device))
                .to(self.snapshot_device or entry.parameter.device, copy=True)
                for entry in self.frozen
            ]

    def restore(self) -> None:
        if self._snapshots is None:
            return
        with torch.no_grad():
            for entry, saved in zip(self.frozen, self._snapshots):
                param = entry.parameter
                param.data.index_copy_(entry.dim, entry.rows.to(param.device), saved.to(param.device, param.dtype))
        self._snapshots = None

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Restores the frozen rows around every `optimizer.step()`. Pass the torch optimizer (an accelerate
        `AcceleratedOptimizer` is unwrapped)."""
        while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
            optimizer = optimizer.optimizer  # accelerate's AcceleratedOptimizer and similar wrappers
        if not self.frozen:
            return
        self._optimizer_handles.append(optimizer.register_step_pre_hook(lambda *_: self.snapshot()))
        self._optimizer_handles.append(optimizer.register_step_post_hook(lambda *_: self.restore()))

    def remove(self) -> None:
        """Removes the gradient masks and the optimizer hooks."""
        for handle in self._grad_handles + self._optimizer_handles:
            handle.remove()
        self._grad_handles, self._optimizer_handles = [], []
        self._snapshots = None


# ----- applying a plan -----


@dataclass
class GroupCount:
    total: int = 0
    trainable: int = 0


@dataclass
class StagePlanReport:
    """What `apply_stage_plan` did: per-group parameter counts (expert / router / embedding rows counted per row),
    the names of frozen, trainable and partly frozen tensors, and the row freezer (attach it to your optimizer, or
    let `DeepOmniTrainer` do it)."""

    plan: StagePlan
    groups: dict[str, GroupCount]
    trainable_names: list[str]
    frozen_names: list[str]
    partial_names: list[str]
    freezer: ExpertRowFreezer
    _model_ref: object = field(default=None, repr=False)

    @property
    def trainable_parameters(self) -> int:
        return sum(count.trainable for count in self.groups.values())

    @property
    def total_parameters(self) -> int:
        return sum(count.total for count in self.groups.values())

    def attach_optimizer(self, optimizer) -> None:
        self.freezer.attach_optimizer(optimizer)

    def remove(self) -> None:
        """Removes the row-freezing hooks (requires_grad and routing mode stay as they are)."""
        self.freezer.remove()

    def summary(self) -> str:
        plan = self.plan
        lines = [
            (
                f"stage {plan.name!r}: routing_mode={plan.routing_mode!r}, published lr {plan.learning_rate:g}, "
                f"{plan.num_train_epochs:g} epoch(s); data: {plan.data}"
            ),
            f"{'group':22s} {'trainable':>14s} {'total':>14s}  state",
        ]
        for group in [*PARAMETER_GROUPS, *(g for g in self.groups if g not in PARAMETER_GROUPS)]:
            count = self.groups.get(group, GroupCount())
            if count.total == 0:
                continue
            if count.trainable == count.total:
                state = "train"
            elif count.trainable == 0:
                state = "frozen"
            else:
                state = "train (rows of the trained expert group)"
            lines.append(f"{group:22s} {count.trainable:14,d} {count.total:14,d}  {state}")
        share = self.trainable_parameters / max(self.total_parameters, 1)
        lines.append(f"{'total':22s} {self.trainable_parameters:14,d} {self.total_parameters:14,d}  ({share:.1%})")
        if self.partial_names:
            lines.append(
                f"row-frozen tensors: {len(self.partial_names)} (gradient mask + restore around optimizer.step)"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


_ACTIVE_REPORTS: weakref.WeakKeyDictionary[nn.Module, StagePlanReport] = weakref.WeakKeyDictionary()


def _base_model(model: nn.Module) -> nn.Module:
    if hasattr(model, "get_base_model"):  # peft.PeftModel
        return model.get_base_model()
    return model


def apply_stage_plan(
    model: nn.Module,
    stage: str | StagePlan,
    verbose: bool = True,
    snapshot_device: str | torch.device | None = None,
    parameters: Iterable[tuple[str, nn.Parameter]] | None = None,
) -> StagePlanReport:
    """
    Prepares `model` (a `DeepOmniForConditionalGeneration`) for one training stage: sets the routing mode, sets
    `requires_grad` of every tensor, and installs the row freezer on tensors whose rows are split between trainable
    and frozen groups. A plan applied earlier to the same model is removed first.

    Args:
        model: the model (not yet wrapped by DDP / accelerate).
        stage: a stage name of `STAGES` or a custom [`StagePlan`].
        verbose: print the summary table.
        snapshot_device: where the freezer keeps the frozen rows during `optimizer.step()` (default: their device;
            `"cpu"` saves accelerator memory).
        parameters: `(name, parameter)` pairs to plan (default: all of `model.named_parameters()`).

    Returns:
        [`StagePlanReport`]. Call `report.attach_optimizer(optimizer)` in a custom loop; `DeepOmniTrainer` does it.
    """
    plan = get_stage_plan(stage)
    base = _base_model(model)
    previous = _ACTIVE_REPORTS.pop(base, None)
    if previous is not None:
        previous.remove()
    base.set_routing_mode(plan.routing_mode)

    groups: dict[str, GroupCount] = {group: GroupCount() for group in PARAMETER_GROUPS}
    trainable_names, frozen_names, partial_names, frozen_rows = [], [], [], []
    for name, param in parameters if parameters is not None else base.named_parameters():
        parts = parameter_parts(base, name)
        row_size = param[0].numel() if param.dim() else 1
        train_rows, freeze_rows = [], []
        any_whole_trainable = None
        for part in parts:
            trains = part.needs <= plan.trainable
            size = param.numel() if part.rows is None else len(part.rows) * row_size
            groups[part.group].total += size
            groups[part.group].trainable += size if trains else 0
            if part.rows is None:
                any_whole_trainable = trains
            else:
                (train_rows if trains else freeze_rows).extend(part.rows)
        if any_whole_trainable is not None:
            param.requires_grad_(any_whole_trainable)
            (trainable_names if any_whole_trainable else frozen_names).append(name)
        elif not train_rows:
            param.requires_grad_(False)
            frozen_names.append(name)
        else:
            param.requires_grad_(True)
            if freeze_rows:
                partial_names.append(name)
                frozen_rows.append(FrozenRows(name, param, torch.tensor(sorted(freeze_rows), dtype=torch.long)))
            else:
                trainable_names.append(name)
    report = StagePlanReport(
        plan=plan,
        groups=groups,
        trainable_names=trainable_names,
        frozen_names=frozen_names,
        partial_names=partial_names,
        freezer=ExpertRowFreezer(frozen_rows, snapshot_device),
    )
    _ACTIVE_REPORTS[base] = report
    if verbose:
        print(report.summary())
    return report


def active_stage_report(model: nn.Module) -> StagePlanReport | None:
    """The report of the plan last applied to `model` (or its PEFT base model), if any."""
    return _ACTIVE_REPORTS.get(_base_model(model))


__all__ = [
    "NEVER_TRAINED",
    "PARAMETER_GROUPS",
    "BASELINE_PLANS",
    "STAGES",
    "ExpertRowFreezer",
    "FrozenRows",
    "GroupCount",
    "ParameterPart",
    "StagePlan",
    "StagePlanReport",
    "active_stage_report",
    "apply_stage_plan",
    "get_stage_plan",
    "parameter_parts",
]

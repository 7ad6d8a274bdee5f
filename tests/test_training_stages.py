"""Stage plans: routing mode, trainable groups, and bit-exact freezing of expert rows under AdamW with weight decay."""

import pytest
import torch
from training_helpers import (
    collate,
    snapshot,
    speech_examples,
    text_examples,
    tiny_model,
)
from tiny_models import TINY_SPEECH_EXPERTS

from deepomni_hf.training import STAGES, apply_stage_plan
from deepomni_hf.training.stages import PARAMETER_GROUPS, StagePlan

MOE_LAYERS = (1, 2)
TEXT_VOCAB = 512  # text_fixtures.TINY_TEXT_VOCAB_SIZE


@pytest.fixture(scope="module")
def batch():
    # One spoken QA (adapter and audio slots get gradients) and one text QA, padded together.
    return collate(speech_examples(1) + text_examples(1))


def train(model, batch, report, steps=2, lr=1e-2, weight_decay=0.1, attach=True):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    if attach:
        report.attach_optimizer(optimizer)
    for _ in range(steps):
        model(**batch, output_router_logits=True).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def experts_of(layer, group):
    speech = TINY_SPEECH_EXPERTS[layer]
    return speech if group == "speech" else [e for e in range(8) if e not in speech]


def same(a, b):
    return torch.equal(a, b)


def check_moe_layers(model, before, trained, frozen):
    """Fused expert rows and router rows: `trained` group rows moved, `frozen` group rows bit-identical."""
    for layer in MOE_LAYERS:
        prefix = f"model.language_model.layers.{layer}.mlp"
        for tensor in ("experts.gate_up_proj", "experts.down_proj", "gate.weight"):
            now, old = dict(model.named_parameters())[f"{prefix}.{tensor}"], before[f"{prefix}.{tensor}"]
            for e in experts_of(layer, frozen):
                assert same(now[e], old[e]), f"layer {layer} {tensor} row {e} ({frozen} expert) moved"
            for e in experts_of(layer, trained):
                assert not same(now[e], old[e]), f"layer {layer} {tensor} row {e} ({trained} expert) did not train"


def changed_names(model, before):
    return {name for name, param in model.named_parameters() if not torch.equal(param, before[name])}


@pytest.mark.parametrize(("stage", "trained", "frozen"), [("speech", "speech", "text"), ("text", "text", "speech")])
def test_modality_stage_trains_its_experts_and_leaves_the_rest_bit_identical(batch, stage, trained, frozen):
    model = tiny_model()
    before = snapshot(model)
    report = apply_stage_plan(model, stage, verbose=False)
    assert model.routing_mode == stage
    train(model, batch, report)

    check_moe_layers(model, before, trained, frozen)
    changed = changed_names(model, before)
    for name in before:
        if name.startswith(("model.audio_tower.", "model.speech_adapter.", "codec_model.")) or (
            ".self_attn." in name and not name.startswith("model.language_model.layers.0.")
        ):
            assert name not in changed, f"{name} must stay frozen in stage {stage}"
    for expected in (
        "model.language_model.embed_tokens.weight",
        "model.language_model.layers.0.self_attn.q_proj.weight",  # the dense layer trains
        "model.language_model.layers.0.mlp.down_proj.weight",
        "model.language_model.layers.1.mlp.shared_experts.up_proj.weight",
        "model.language_model.layers.2.post_attention_layernorm.weight",
        "model.language_model.norm.weight",
    ):
        assert expected in changed, f"{expected} should train in stage {stage}"


def test_weight_decay_would_move_frozen_rows_without_the_optimizer_hooks(batch):
    # Why the restore hooks exist: with only the gradient mask, AdamW's decoupled weight decay still shrinks the rows.
    model = tiny_model()
    before = snapshot(model)
    report = apply_stage_plan(model, "speech", verbose=False)
    train(model, batch, report, steps=1, attach=False)
    name = "model.language_model.layers.1.mlp.experts.gate_up_proj"
    text_expert = experts_of(1, "text")[0]
    assert not same(dict(model.named_parameters())[name][text_expert], before[name][text_expert])
    # ... and the gradient mask alone keeps them exact when there is no decay.
    model = tiny_model()
    report = apply_stage_plan(model, "speech", verbose=False)
    train(model, batch, report, steps=2, weight_decay=0.0, attach=False)
    check_moe_layers(model, before, "speech", "text")


def test_joint_trains_everything_but_whisper_adapter_and_codec(batch):
    model = tiny_model()
    before = snapshot(model)
    report = apply_stage_plan(model, "joint", verbose=False)
    assert model.routing_mode == "all" and not report.partial_names
    train(model, batch, report)
    changed = changed_names(model, before)
    frozen_prefixes = ("model.audio_tower.", "model.speech_adapter.", "codec_model.")
    assert changed == {name for name in before if not name.startswith(frozen_prefixes)}
    for layer in MOE_LAYERS:  # every expert row moved
        name = f"model.language_model.layers.{layer}.mlp.experts.gate_up_proj"
        now = dict(model.named_parameters())[name]
        assert all(not same(now[e], before[name][e]) for e in range(8))


def test_alignment_trains_only_the_adapter_and_the_new_embedding_rows(batch):
    model = tiny_model()
    before = snapshot(model)
    report = apply_stage_plan(model, "alignment", verbose=False)
    train(model, batch, report)
    changed = changed_names(model, before)
    assert changed == {
        "model.speech_adapter.gate_proj.weight",
        "model.speech_adapter.up_proj.weight",
        "model.speech_adapter.down_proj.weight",
        "model.language_model.embed_tokens.weight",
    }
    embedding = model.model.language_model.embed_tokens.weight
    old = before["model.language_model.embed_tokens.weight"]
    assert same(embedding[:TEXT_VOCAB], old[:TEXT_VOCAB])  # the backbone's text vocabulary is frozen
    assert model.lm_head.weight is embedding  # still tied


def test_plan_report_counts_rows_and_covers_every_parameter():
    model = tiny_model()
    report = apply_stage_plan(model, "speech", verbose=False)
    total = sum(p.numel() for p in model.parameters())
    assert report.total_parameters == total
    row = 2 * 32 * 64  # gate_up_proj row [2I, H]
    down_row = 64 * 32
    speech_rows = len(TINY_SPEECH_EXPERTS[1]) + len(TINY_SPEECH_EXPERTS[2])
    assert report.groups["speech_experts"].trainable == speech_rows * (row + down_row)
    assert report.groups["text_experts"].trainable == 0
    assert report.groups["text_experts"].total == (16 - speech_rows) * (row + down_row)
    assert report.groups["routers"].trainable == speech_rows * 64
    assert report.groups["whisper"].trainable == 0 and report.groups["codec"].trainable == 0
    summary = report.summary()
    assert "speech_experts" in summary and "routing_mode='speech'" in summary
    # A new plan replaces the old hooks instead of stacking on them.
    joint = apply_stage_plan(model, "joint", verbose=False)
    assert not report.freezer._grad_handles and not joint.partial_names


def test_stage_table_matches_the_design():
    assert {name: plan.routing_mode for name, plan in STAGES.items()} == {
        "alignment": "all", "speech": "speech", "text": "text", "joint": "all", "dpo": "all"}  # fmt: skip
    assert {name: (plan.learning_rate, plan.num_train_epochs) for name, plan in STAGES.items()} == {
        "alignment": (2e-5, 1), "speech": (1e-4, 2), "text": (2e-5, 2), "joint": (5e-5, 2), "dpo": (2e-5, 1)}  # fmt: skip
    for plan in STAGES.values():
        assert not plan.trainable & {"whisper", "codec"}
    assert STAGES["speech"].frozen == {"text_experts", "moe_attention", "whisper", "adapter", "codec"}
    assert STAGES["text"].frozen == {"speech_experts", "moe_attention", "whisper", "adapter", "codec"}
    assert STAGES["joint"].frozen == {"whisper", "adapter", "codec"}
    with pytest.raises(ValueError, match="never trains"):
        StagePlan("bad", "all", frozenset({"whisper"}), 1e-4, 1, "")
    with pytest.raises(ValueError, match="unknown parameter groups"):
        StagePlan("bad", "all", frozenset({"experts"}), 1e-4, 1, "")
    assert set(PARAMETER_GROUPS) >= STAGES["joint"].trainable


def test_modality_stage_needs_assigned_experts():
    from text_fixtures import tiny_deepomni_config

    from deepomni_hf import DeepOmniForConditionalGeneration

    config = tiny_deepomni_config(speech_experts=[[], [], []])
    model = DeepOmniForConditionalGeneration(config)
    with pytest.raises(ValueError, match="assign-experts"):
        apply_stage_plan(model, "speech", verbose=False)
    apply_stage_plan(model, "joint", verbose=False)  # fine without an assignment


def test_lora_speech_stage_masks_the_text_experts_lora_factors(batch):
    pytest.importorskip("peft")
    from deepomni_hf.training.lora import apply_lora_stage

    model = tiny_model()
    before = snapshot(model)
    peft_model, report = apply_lora_stage(model, "speech", r=2, verbose=False)
    assert report.partial_names  # the LoRA factors of the text experts, and the routers' text rows
    train(peft_model, batch, report)
    merged = peft_model.merge_and_unload()
    check_moe_layers(merged, before, "speech", "text")
    changed = changed_names(merged, before)
    assert not any(".self_attn." in n and not n.startswith("model.language_model.layers.0.") for n in changed)
    assert "model.language_model.layers.1.mlp.shared_experts.up_proj.weight" in changed
    assert not any(n.startswith(("model.audio_tower.", "model.speech_adapter.")) for n in changed)

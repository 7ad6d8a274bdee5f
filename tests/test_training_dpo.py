"""The per-slot DPO loss of DESIGN §5 against a hand computation, and DPO training preferring the chosen codes."""

import math
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import torch
from training_helpers import spoken_qa, tiny_model, tiny_processor
from transformers import TrainingArguments

from deepomni_hf.training.dpo import (
    DeepOmniDPOCollator,
    DeepOmniDPOTrainer,
    build_dpo_pair,
    deepomni_dpo_loss,
    dpo_slot_losses,
    precompute_reference_logps,
    reference_log_probs,
    slot_log_probs,
    text_cross_entropy,
)


def log_softmax(row):
    top = max(row)
    total = sum(math.exp(v - top) for v in row)
    return [v - top - math.log(total) for v in row]


def test_dpo_loss_equals_a_hand_computation():
    # 1 sequence, 3 positions, audio slots of 5 ids each at offsets 100 + 10·slot.
    config = SimpleNamespace(audio_slot_offset=lambda slot: 100 + 10 * slot)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 7, 5, generator=generator)
    labels = torch.full((2, 3, 8), -100)
    for slot in range(7):
        labels[:, 1, slot] = 100 + 10 * slot + (slot % 5)
        if slot % 2 == 0:
            labels[:, 2, slot] = 100 + 10 * slot + ((slot + 2) % 5)  # even slots have two targets
    got = slot_log_probs(logits, labels, config)
    for row in range(2):
        for slot in range(7):
            expected = 0.0
            for position in (1, 2):  # label at t is predicted from logits at t - 1
                label = int(labels[row, position, slot])
                if label != -100:
                    expected += log_softmax(logits[row, position - 1, slot].tolist())[label - 100 - 10 * slot]
            assert got[row, slot].item() == pytest.approx(expected, abs=1e-5)

    # The loss from summed log-probs: −log σ(β[(πc − πr) − (refc − refr)]), β = 0.1.
    policy_c = torch.tensor([[-3.0, -1.0, -2.0, -4.0, -5.0, -1.5, -2.5]])
    policy_r = torch.tensor([[-4.0, -1.0, -1.0, -6.0, -5.5, -3.0, -2.0]])
    ref_c = torch.tensor([[-3.5, -2.0, -2.0, -4.0, -5.0, -2.0, -2.0]])
    ref_r = torch.tensor([[-3.5, -1.0, -1.5, -5.0, -5.0, -2.0, -2.0]])
    losses, margins = dpo_slot_losses(policy_c, policy_r, ref_c, ref_r, beta=0.1)
    for slot in range(7):
        margin = (policy_c[0, slot] - policy_r[0, slot]) - (ref_c[0, slot] - ref_r[0, slot])
        assert margins[0, slot].item() == pytest.approx(margin.item())
        assert losses[0, slot].item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.1 * margin.item()))), abs=1e-6)
    text_ce = torch.tensor(2.0)
    total = deepomni_dpo_loss(text_ce, losses)
    assert total.item() == pytest.approx((2.0 + sum(losses[0].tolist())) / 8, abs=1e-6)
    assert deepomni_dpo_loss(torch.tensor(float("nan")), losses).item() == pytest.approx(losses.mean().item())

    text_logits = torch.randn(1, 3, 6, generator=generator)
    text_labels = torch.full((1, 3, 8), -100)
    text_labels[0, 1, 7], text_labels[0, 2, 7] = 4, 1
    expected_ce = -(log_softmax(text_logits[0, 0].tolist())[4] + log_softmax(text_logits[0, 1].tolist())[1]) / 2
    assert text_cross_entropy(text_logits, text_labels).item() == pytest.approx(expected_ce, abs=1e-5)


@pytest.fixture(scope="module")
def pairs():
    processor = tiny_processor()
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(2):
        messages = spoken_qa(seed)
        messages[-1]["content"] = [item for item in messages[-1]["content"] if item["type"] == "text"]
        chosen = rng.integers(0, 4096, size=(3, 7))
        rejected = rng.integers(0, 4096, size=(5, 7))  # a longer, different sequence
        rows.append(build_dpo_pair(processor, messages, chosen, rejected))
    return datasets.Dataset.from_list(rows)


def test_dpo_training_prefers_the_chosen_codes(pairs, tmp_path):
    processor = tiny_processor()
    collator = DeepOmniDPOCollator(processor)
    batch = collator([pairs[0], pairs[1]])
    assert batch["input_ids"].shape[0] == 4 and batch["input_features"].shape[0] == 4
    # Same prompt and text answer on both sides, different codes.
    assert torch.equal(batch["labels"][0, :, 7][batch["labels"][0, :, 7] != -100],
                       batch["labels"][2, :, 7][batch["labels"][2, :, 7] != -100])  # fmt: skip

    policy = tiny_model()
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=1, learning_rate=5e-3, max_steps=4, logging_steps=1,
        save_strategy="no", use_cpu=True, report_to="none", disable_tqdm=True, seed=0, weight_decay=0.0,
    )  # fmt: skip
    trainer = DeepOmniDPOTrainer(policy, args, train_dataset=pairs, data_collator=collator, beta=0.1)
    reference = trainer.ref_model
    with torch.no_grad():  # at the start policy == reference: every slot loss is log 2
        start_loss = trainer.compute_loss(policy.eval(), batch).item()
        inputs = {key: batch[key] for key in ("input_ids", "attention_mask", "input_features")}
        start_text_ce = text_cross_entropy(policy(**inputs).logits[:2], batch["labels"][:2]).item()
    assert start_loss == pytest.approx((start_text_ce + 7 * math.log(2)) / 8, rel=1e-5)
    trainer.train()
    log = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert all(f"dpo_loss_slot{s}" in log[-1] for s in range(7)) and "dpo_reward_accuracy" in log[-1]

    policy.eval()
    with torch.no_grad():
        chosen, rejected = reference_log_probs(policy, batch)
        ref_chosen, ref_rejected = reference_log_probs(reference, batch)
    margins = (chosen - rejected) - (ref_chosen - ref_rejected)
    assert (margins > 0).all(), margins  # every slot of every pair now prefers the chosen codes
    # The reference stayed frozen.
    for (name, p), q in zip(reference.named_parameters(), tiny_model().parameters()):
        assert torch.equal(p, q), name

    # Precomputed reference log-probs give the same loss as the reference model.
    with_reference = precompute_reference_logps(reference, pairs, collator)
    precomputed = collator([with_reference[0], with_reference[1]])
    assert precomputed["reference_chosen_logps"].shape == (2, 7)
    torch.testing.assert_close(precomputed["reference_chosen_logps"], ref_chosen)
    with torch.no_grad():
        a = trainer.compute_loss(policy, batch)
        trainer.ref_model = None
        b = trainer.compute_loss(policy, precomputed)
    torch.testing.assert_close(a, b)


def test_dpo_pairs_stored_as_conversations_lay_out_like_build_dpo_pair(tmp_path):
    from deepomni_hf.training import load_stage_dataset

    processor = tiny_processor()
    messages = spoken_qa(1)
    messages[-1]["content"] = [item for item in messages[-1]["content"] if item["type"] == "text"]
    rng = np.random.default_rng(1)
    chosen, rejected = rng.integers(0, 4096, size=(3, 7)), rng.integers(0, 4096, size=(6, 7))
    expected = build_dpo_pair(processor, messages, chosen, rejected, voice="F10")

    def storable(item):  # every item carries every key, as deepomni_hf.data's builders store them
        audio = item.get("audio")
        return {"type": item["type"], "text": item.get("text"), "codes": None, "voice": None,
                "audio": None if audio is None else {"array": audio.tolist(), "sampling_rate": item["sampling_rate"]}}  # fmt: skip

    row = {
        "messages": [{"role": m["role"], "content": [storable(i) for i in m["content"]]} for m in messages],
        "chosen_codes": chosen.astype(np.int16).tolist(),
        "rejected_codes": rejected.astype(np.int16).tolist(),
        "voice": "F10",
    }
    datasets.Dataset.from_list([row]).save_to_disk(tmp_path / "pairs")
    loaded = load_stage_dataset(tmp_path / "pairs", processor)[0]
    for key, value in expected.items():
        np.testing.assert_array_equal(np.asarray(loaded[key]), value, err_msg=key)

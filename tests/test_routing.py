"""Modality-aware routing: restricted modes, parity with transformers' DeepseekV2Moe, the balance loss."""

import pytest
import torch
from transformers import DeepseekV2Config
from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Moe

from deepomni_hf import DeepOmniForConditionalGeneration
from deepomni_hf.modeling import DeepOmniTextConfig, sequence_balance_loss
from deepomni_hf.modeling.modeling_deepomni import DeepOmniMoe
from tiny_models import TINY_SPEECH_EXPERTS, TINY_TEXT, speech_span_ids, text_only_ids, tiny_config


SPEECH = set(TINY_SPEECH_EXPERTS[1])
TEXT = set(range(8)) - SPEECH


def _moe(routing_mode="all", seed=0) -> DeepOmniMoe:
    config = DeepOmniTextConfig(**dict(TINY_TEXT, vocab_size=1000, speech_experts=TINY_SPEECH_EXPERTS))
    config.routing_mode = routing_mode
    torch.manual_seed(seed)
    moe = DeepOmniMoe(config, layer_idx=1)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return moe


def _selected(moe, hidden, speech_positions=None):
    _, _, indices = moe.gate(hidden, speech_positions)
    return indices


def test_all_mode_equals_transformers_deepseek_v2_moe():
    moe = _moe("all")
    reference_config = DeepseekV2Config(**dict(TINY_TEXT, vocab_size=1000))
    reference = DeepseekV2Moe(reference_config)
    reference.load_state_dict(moe.state_dict())
    hidden = torch.randn(3, 11, 64)
    assert torch.equal(moe(hidden), reference(hidden))


@pytest.mark.parametrize(("mode", "allowed"), [("speech", SPEECH), ("text", TEXT)])
def test_restricted_mode_routes_only_within_its_group_and_other_group_gets_no_gradient(mode, allowed):
    moe = _moe(mode)
    hidden = torch.randn(4, 32, 64)
    selected = set(_selected(moe, hidden).flatten().tolist())
    assert selected <= allowed
    moe(hidden).pow(2).sum().backward()
    grad = moe.experts.gate_up_proj.grad.abs().sum(dim=(1, 2))
    down = moe.experts.down_proj.grad.abs().sum(dim=(1, 2))
    for expert in range(8):
        if expert in allowed:
            assert grad[expert] > 0 and down[expert] > 0, f"expert {expert} of the active group got no gradient"
        else:
            assert grad[expert] == 0 and down[expert] == 0, f"expert {expert} outside the group got gradient"
    # The router's probabilities renormalise over the group: the other group's logits are -inf.
    logits, weights, _ = moe.gate(hidden)
    blocked = sorted(set(range(8)) - allowed)
    assert torch.isinf(logits[:, blocked]).all() and torch.isfinite(logits[:, sorted(allowed)]).all()
    assert torch.allclose(logits.softmax(-1)[:, sorted(allowed)].sum(-1), torch.ones(logits.shape[0]))


def test_per_token_routes_each_position_within_its_modality():
    moe = _moe("per_token")
    hidden = torch.randn(2, 40, 64)
    speech_positions = torch.rand(2, 40) < 0.5
    indices = _selected(moe, hidden, speech_positions.flatten()).view(2, 40, -1)
    assert set(indices[speech_positions].flatten().tolist()) <= SPEECH
    assert set(indices[~speech_positions].flatten().tolist()) <= TEXT
    with pytest.raises(ValueError, match="per_token"):
        moe.gate(hidden)


def test_model_derives_speech_positions_from_the_text_stream():
    config = tiny_config()
    model = DeepOmniForConditionalGeneration(config).eval()
    ids = speech_span_ids(config, prefix=3, frames=4, suffix=5)
    ids[0, -2:, 7] = config.text_token_id("PAD_T")  # audio-only answer tail after EOT
    expected = torch.zeros(1, ids.shape[1], dtype=torch.bool)
    expected[0, 3:9] = True
    expected[0, -2:] = True
    model.set_routing_mode("per_token")
    features = torch.zeros(1, 80, 3000)  # a speech span needs its features (the model refuses to drop them)
    out = model(input_ids=ids, input_features=features, output_router_logits=True)
    assert torch.equal(out.speech_positions, expected)
    for layer, layer_logits in zip((1, 2), out.router_logits):
        speech = set(TINY_SPEECH_EXPERTS[layer])
        chosen = layer_logits.topk(2, dim=-1).indices.view(1, -1, 2)
        assert set(chosen[expected].flatten().tolist()) <= speech
        assert not set(chosen[~expected].flatten().tolist()) & speech


def test_set_routing_mode_switches_every_router_and_checks_assignment():
    model = DeepOmniForConditionalGeneration(tiny_config()).eval()
    ids = text_only_ids(model.config)
    model.set_routing_mode("speech")
    assert model.config.text_config.routing_mode == "speech"
    out = model(input_ids=ids, output_router_logits=True)
    for layer, logits in zip((1, 2), out.router_logits):
        blocked = sorted(set(range(8)) - set(TINY_SPEECH_EXPERTS[layer]))
        assert torch.isinf(logits[:, blocked]).all()
    with pytest.raises(ValueError, match="routing_mode must be one of"):
        model.set_routing_mode("audio")
    unassigned = DeepOmniForConditionalGeneration(tiny_config(speech_experts=[[], [], []]))
    with pytest.raises(ValueError, match="needs speech experts on every MoE layer"):
        unassigned.set_routing_mode("text")


def test_set_speech_experts_relabels_routers():
    model = DeepOmniForConditionalGeneration(tiny_config()).eval()
    model.set_speech_experts([[], [6, 7], [0, 1]])
    model.set_routing_mode("speech")
    out = model(input_ids=text_only_ids(model.config), output_router_logits=True)
    assert set(out.router_logits[0].topk(2, -1).indices.flatten().tolist()) <= {6, 7}
    assert set(out.router_logits[1].topk(2, -1).indices.flatten().tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="out of range"):
        model.set_speech_experts([[], [9, 1], [0, 1]])


def test_sequence_balance_loss_hand_computed():
    # 4 tokens, 4 experts, top-1. Balanced: each token picks a different expert -> sum_e f_e P_e = sum_e P_e = 1.
    balanced = torch.full((4, 4), -20.0)
    balanced[torch.arange(4), torch.arange(4)] = 20.0
    assert torch.isclose(sequence_balance_loss((balanced,), top_k=1, batch_size=1), torch.tensor(1.0), atol=1e-6)
    # Collapsed: every token on expert 0 -> f_0 = 4, P_0 = 1 -> 4 (= number of experts).
    collapsed = torch.full((4, 4), -20.0)
    collapsed[:, 0] = 20.0
    assert torch.isclose(sequence_balance_loss((collapsed,), top_k=1, batch_size=1), torch.tensor(4.0), atol=1e-5)
    # Restricted to 2 usable experts, balanced within them -> 1 again; padding tokens do not count.
    restricted = torch.full((4, 4), float("-inf"))
    restricted[:, :2] = -20.0
    restricted[[0, 2], 0] = 20.0
    restricted[[1, 3], 1] = 20.0
    mask = torch.tensor([[1, 1, 1, 1]])
    assert torch.isclose(sequence_balance_loss((restricted,), 1, 1, mask), torch.tensor(1.0), atol=1e-6)
    padded = torch.cat([restricted, collapsed[:2]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    assert torch.isclose(sequence_balance_loss((padded,), 1, 1, mask), torch.tensor(1.0), atol=1e-6)

"""Modality load (router hooks, padding skipped) and expert assignment, end to end through `deepomni assign-experts`."""

import argparse
import json

import datasets
import numpy as np
import pytest
import torch
from training_helpers import (
    collate,
    speech_examples,
    text_examples,
    tiny_model,
    tiny_processor,
)

from deepomni_hf import DeepOmniConfig
from deepomni_hf.training import (
    ModalityLoad,
    assign_speech_experts,
    compute_modality_load,
)
from deepomni_hf.training.cli import add_assign_experts_command

# The rigged speech experts: layer 1 -> {0, 1, 2} (as the issue asks), layer 2 -> a different set.
RIGGED = {1: [0, 1, 2], 2: [3, 4, 6, 7]}


def rig(model):
    """Makes routing depend on modality only.

    Every residual branch (attention, dense FFN, shared and routed experts, adapter) outputs zero, so each router sees
    the (normalised) input embedding. Embedding dimension 0 is -1 for text ids, +1 for audio ids and for the PAD_T /
    AUDIO text specials, 0 for PAD_A; the other dimensions are small noise that breaks ties within a group. Router row
    e is +10 on dimension 0 for the rigged speech experts and -10 for the rest, plus noise. So speech positions (AUDIO
    placeholder / PAD_T, audio codes) pick rigged experts and text positions the others — and a padding position
    (PAD_A x 7 + PAD_T) looks like speech, so counting padding would put text hits on the rigged experts.
    """
    config = model.config
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in model.model.language_model.layers:
            layer.self_attn.o_proj.weight.zero_()
            mlp = layer.mlp
            if hasattr(mlp, "experts"):
                mlp.experts.down_proj.zero_()
                mlp.shared_experts.down_proj.weight.zero_()
            else:
                mlp.down_proj.weight.zero_()
        model.model.speech_adapter.down_proj.weight.zero_()
        embedding = model.model.language_model.embed_tokens.weight
        embedding.normal_(0.0, 0.1, generator=generator)
        embedding[: config.padded_text_vocab_size, 0] = -1.0
        embedding[config.padded_text_vocab_size :, 0] = 1.0
        for name in ("PAD_T", "AUDIO"):
            embedding[config.text_token_id(name), 0] = 1.0
        for slot in range(7):
            embedding[config.audio_token_id("PAD_A", slot), 0] = 0.0
        for layer_idx, speech in RIGGED.items():
            gate = model.model.language_model.layers[layer_idx].mlp.gate.weight
            gate.normal_(0.0, 1.0, generator=generator)
            gate[:, 0] = -10.0
            gate[speech, 0] = 10.0
    return model


@pytest.fixture(scope="module")
def data():
    # Different lengths in one batch, so every batch has padding.
    return speech_examples(4), text_examples(6)


@pytest.mark.parametrize("positions", ["modality", "all"])
def test_modality_load_recovers_rigged_speech_experts(data, positions):
    speech, text = data
    model = rig(tiny_model())
    model.set_routing_mode("speech")  # restored afterwards; the measurement itself routes over all experts
    load = compute_modality_load(
        model, [collate(speech[:2]), collate(speech[2:])], [collate(text[:3]), collate(text[3:])], positions=positions
    )
    assert model.routing_mode == "speech"
    assert load.layers == [1, 2] and load.top_k == 2 and load.num_experts == 8
    # Each modality's loads are shares of its k slots per token.
    np.testing.assert_allclose(load.speech_load.sum(axis=1), 1.0)
    np.testing.assert_allclose(load.text_load.sum(axis=1), 1.0)
    assert (load.speech_hits.sum(axis=1) == 2 * load.speech_tokens).all()
    real_text_tokens = sum(int(np.asarray(e["attention_mask"]).sum()) for e in text)
    assert load.text_tokens == real_text_tokens  # padding skipped (all text positions are text positions)
    for row, layer in enumerate(load.layers):
        rigged = RIGGED[layer]
        assert (load.text_hits[row, rigged] == 0).all(), "padding or speech was counted as text"
        assert (load.speech_hits[row, rigged] > 0).all()
        if positions == "modality":  # only speech positions count: the rest never sees a speech token
            others = [e for e in range(8) if e not in rigged]
            assert (load.speech_hits[row, others] == 0).all()
    assignment = assign_speech_experts(load, num_layers=3)
    assert assignment.speech_experts == [[], RIGGED[1], RIGGED[2]]


def make_load(speech_hits, text_hits, tokens=100, top_k=2):
    return ModalityLoad([1], len(speech_hits[0]), top_k, np.array(speech_hits), np.array(text_hits), tokens, tokens)


def test_assignment_rules_and_bounds():
    # 8 experts, top-2; loads as hit counts over 100 tokens (200 slots per modality).
    speech = [[60, 50, 40, 10, 10, 10, 10, 10]]
    text = [[10, 20, 40, 30, 30, 30, 20, 20]]
    load = make_load(speech, text)
    ratio = assign_speech_experts(load, 2)  # 6x, 2.5x pass 1.5; expert 2 (1x) does not
    assert ratio.speech_experts == [[], [0, 1]] and ratio.passed_rule == {1: [0, 1]}
    assert assign_speech_experts(load, 2, threshold=0.9).speech_experts == [[], [0, 1, 2]]
    # Too few pass: filled up to top_k by speech share.
    only_one = make_load([[80, 20, 20, 20, 20, 20, 10, 10]], [[10, 30, 30, 30, 30, 30, 20, 20]])
    assert assign_speech_experts(only_one, 2).speech_experts == [[], [0, 1]]
    # Too many pass: cut to num_experts - top_k, least speech-leaning first out.
    all_speech = make_load([[27, 27, 27, 27, 27, 27, 28, 10]], [[1, 2, 3, 4, 5, 6, 7, 172]])
    assert assign_speech_experts(all_speech, 2).speech_experts == [[], [0, 1, 2, 3, 4, 5]]
    top_n = assign_speech_experts(load, 2, rule="top_n", top_n=3)
    assert top_n.speech_experts == [[], [0, 1, 2]] and top_n.threshold is None
    assert assign_speech_experts(load, 2, rule="top_n", top_n=1, min_speech=3).speech_experts == [[], [0, 1, 2]]
    with pytest.raises(ValueError, match="top_n"):
        assign_speech_experts(load, 2, rule="top_n")
    with pytest.raises(ValueError, match="each group must keep"):
        assign_speech_experts(load, 2, max_speech=7)


def test_assign_experts_command_writes_config_json_heatmap_and_summary(data, tmp_path):
    speech, text = data
    model_dir, out = tmp_path / "ckpt", tmp_path / "assigned"
    model = rig(tiny_model())
    model.set_speech_experts([[], [], []])  # a checkpoint right after stage 1: nothing assigned yet
    model.save_pretrained(model_dir)
    tiny_processor().save_pretrained(model_dir)
    datasets.Dataset.from_list(speech).save_to_disk(tmp_path / "speech")
    datasets.Dataset.from_list(text).save_to_disk(tmp_path / "text")

    parser = argparse.ArgumentParser()
    add_assign_experts_command(parser.add_subparsers(dest="command"))
    argv = ["assign-experts", "--model", str(model_dir), "--speech-data", str(tmp_path / "speech"),
            "--text-data", str(tmp_path / "text"), "--output", str(out), "--batch-size", "3",
            "--positions", "modality"]  # fmt: skip
    args = parser.parse_args(argv)
    assert args.func(args) == 0

    assert DeepOmniConfig.from_pretrained(out).text_config.speech_experts == [[], RIGGED[1], RIGGED[2]]
    saved = json.loads((out / "speech_experts.json").read_text())
    assert saved["speech_experts"] == [[], RIGGED[1], RIGGED[2]] and saved["rule"] == "ratio"
    assert saved["threshold"] == 1.5
    load = ModalityLoad.load_json(out / "modality_load.json")
    assert load.positions == "modality" and load.speech_hits.shape == (2, 8)
    png = (out / "modality_load.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    summary = (out / "summary.md").read_text()
    assert "| 1 | 3 |" in summary and "| 2 | 4 |" in summary
    assert (out / "summary.csv").read_text().startswith("layer,speech_experts")

    # --in-place edits the checkpoint's config.json only.
    args = parser.parse_args([*argv[:-2], "--rule", "top_n", "--top-n", "3", "--in-place"])
    assert args.func(args) == 0
    in_place = DeepOmniConfig.from_pretrained(model_dir).text_config.speech_experts
    assert in_place[:2] == [[], [0, 1, 2]] and len(in_place[2]) == 3 and set(in_place[2]) < set(RIGGED[2])

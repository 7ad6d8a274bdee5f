"""DeepOmniForConditionalGeneration: backbone parity, persistence, remote code, audio merge, loss, implementations."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoModelForMultimodalLM, DeepseekV2Config, DeepseekV2ForCausalLM

from deepomni_hf import DeepOmniConfig, DeepOmniForConditionalGeneration, DeepOmniModel
from tiny_models import TINY_TEXT, speech_span_ids, text_only_ids, tiny_config


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DeepOmniForConditionalGeneration(tiny_config()).eval()


def _copy_backbone(reference: DeepseekV2ForCausalLM, model: DeepOmniForConditionalGeneration):
    state = {k[len("model."):]: v for k, v in reference.state_dict().items() if k.startswith("model.")}
    state.pop("embed_tokens.weight")
    missing, unexpected = model.model.language_model.load_state_dict(state, strict=False)
    assert missing == ["embed_tokens.weight"] and unexpected == []


def test_backbone_is_transformers_deepseek_v2():
    torch.manual_seed(1)
    model = DeepOmniForConditionalGeneration(tiny_config()).eval()
    rope = model.config.text_config.rope_parameters  # DeepSeek-V2-Lite's YaRN
    reference = DeepseekV2ForCausalLM(DeepseekV2Config(**dict(TINY_TEXT, vocab_size=1000, rope_parameters=rope))).eval()
    _copy_backbone(reference, model)
    embeds = torch.randn(2, 9, 64)
    mask = torch.tensor([[1] * 9, [0, 0] + [1] * 7])
    ours = model.model.language_model(inputs_embeds=embeds, attention_mask=mask, output_hidden_states=True)
    theirs = reference.model(inputs_embeds=embeds, attention_mask=mask, output_hidden_states=True)
    torch.testing.assert_close(ours.last_hidden_state, theirs.last_hidden_state, rtol=0, atol=0)
    for a, b in zip(ours.hidden_states, theirs.hidden_states):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_embedding_is_the_mean_of_the_eight_streams(model):
    ids = text_only_ids(model.config, 1, 4)
    table = model.get_input_embeddings().weight
    expected = table[ids].mean(dim=2)
    torch.testing.assert_close(model.model.embed_streams(ids), expected)


def test_head_is_tied_and_stream_logits_are_slices(model):
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    ids = text_only_ids(model.config, 1, 5)
    out = model(input_ids=ids, output_hidden_states=True)
    hidden = model.model(input_ids=ids).last_hidden_state
    full = F.linear(hidden, model.lm_head.weight)
    cfg = model.config
    torch.testing.assert_close(out.logits, full[..., : cfg.padded_text_vocab_size])
    for slot in range(7):
        start = cfg.audio_slot_offset(slot)
        torch.testing.assert_close(out.audio_logits[:, :, slot], full[..., start : start + cfg.audio_slot_vocab_size])


def test_audio_frames_replace_the_audio_slots_of_speech_positions(model):
    cfg = model.config
    ids = torch.cat([speech_span_ids(cfg, 2, 5, 3, seed=0), speech_span_ids(cfg, 1, 3, 6, seed=1)])
    features = torch.randn(2, 80, 3000)
    frames = model.model.get_audio_features(features)
    embeds = model.model.merge_audio_frames(ids, model.model.embed_streams(ids), frames)
    placeholder = model.get_input_embeddings().weight[cfg.audio_placeholder_id]
    for row, (start, n) in enumerate([(2, 5), (1, 3)]):
        for i in range(n):
            expected = (7 * frames[row, i] + placeholder) / 8
            torch.testing.assert_close(embeds[row, start + 1 + i], expected)
        # BOA / EOA positions and the text around keep their token embeddings.
        plain = model.model.embed_streams(ids)
        torch.testing.assert_close(embeds[row, start], plain[row, start])
        torch.testing.assert_close(embeds[row, start + n + 1], plain[row, start + n + 1])
    with pytest.raises(ValueError, match="2 user-speech span"):
        model(input_ids=ids, input_features=features[:1])


def test_forward_backward_with_features_reaches_adapter_and_experts():
    torch.manual_seed(2)
    model = DeepOmniForConditionalGeneration(tiny_config()).train()
    ids = speech_span_ids(model.config, 2, 6, 8)
    labels = ids.clone()
    labels[:, :9] = -100
    out = model(input_ids=ids, input_features=torch.randn(1, 80, 3000), labels=labels, output_router_logits=True)
    assert torch.isfinite(out.loss) and torch.isfinite(out.aux_loss)
    out.loss.backward()
    adapter = model.model.speech_adapter
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapter.parameters())
    experts = model.model.language_model.layers[1].mlp.experts
    assert experts.gate_up_proj.grad.abs().sum() > 0
    assert model.model.language_model.layers[1].mlp.gate.weight.grad.abs().sum() > 0


def test_loss_is_the_mean_of_the_streams_with_targets(model):
    cfg = model.config
    ids = text_only_ids(cfg, 2, 8)
    text_only = torch.full_like(ids, -100)
    text_only[..., 7] = ids[..., 7]
    out = model(input_ids=ids, labels=text_only)
    expected_text = F.cross_entropy(out.logits[:, :-1].flatten(0, 1), ids[:, 1:, 7].flatten())
    torch.testing.assert_close(out.loss, expected_text)
    assert torch.isnan(out.stream_losses[:7]).all()

    all_streams = model(input_ids=ids, labels=ids)
    per_slot = [
        F.cross_entropy(all_streams.audio_logits[:, :-1, s].flatten(0, 1), (ids[:, 1:, s] - cfg.audio_slot_offset(s)).flatten())
        for s in range(7)
    ]
    torch.testing.assert_close(all_streams.loss, torch.stack(per_slot + [expected_text]).mean())

    bad = ids.clone()
    bad[0, 3, 2] = cfg.audio_slot_offset(5)  # a slot-5 id in slot 2
    with pytest.raises(ValueError, match="stream 2"):
        model(input_ids=ids, labels=bad)


def test_kv_cache_matches_full_recomputation(model):
    ids = text_only_ids(model.config, 2, 12)
    full = model(input_ids=ids).logits
    prefix = model(input_ids=ids[:, :9], use_cache=True)
    cache = prefix.cache
    for t in range(9, 12):
        # transformers 5.24 renamed `past_key_values` to `cache`; the old keyword keeps working (deprecated).
        step = model(input_ids=ids[:, t : t + 1], **{"cache" if t % 2 else "past_key_values": cache}, use_cache=True)
        cache = step.cache
        torch.testing.assert_close(step.logits[:, -1], full[:, t], atol=1e-5, rtol=1e-5)


def test_save_and_load_through_auto_classes_reproduce_logits(model, tmp_path):
    ids = text_only_ids(model.config, 2, 7)
    expected = model(input_ids=ids)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not (tmp_path / "pytorch_model.bin").exists()
    assert isinstance(AutoConfig.from_pretrained(tmp_path), DeepOmniConfig)
    loaded = AutoModelForMultimodalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, DeepOmniForConditionalGeneration)
    out = loaded(input_ids=ids)
    # Same weights; a reloaded tensor's memory layout may pick another kernel, hence float tolerance.
    torch.testing.assert_close(out.logits, expected.logits)
    torch.testing.assert_close(out.audio_logits, expected.audio_logits)
    base = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(base, DeepOmniModel)
    torch.testing.assert_close(base(input_ids=ids).last_hidden_state, model.model(input_ids=ids).last_hidden_state)
    assert loaded.config.text_config.speech_experts == model.config.text_config.speech_experts


def test_checkpoint_loads_with_trust_remote_code_without_the_package(model, tmp_path):
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt)
    ids = text_only_ids(model.config, 2, 6)
    save_file({"input_ids": ids}, str(tmp_path / "inputs.safetensors"))
    script = textwrap.dedent(
        f"""
        import sys
        from safetensors.torch import load_file, save_file
        from transformers import AutoModelForMultimodalLM
        model = AutoModelForMultimodalLM.from_pretrained({str(ckpt)!r}, trust_remote_code=True).eval()
        assert not any(name.startswith("deepomni_hf") for name in sys.modules), "deepomni_hf was imported"
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        ids = load_file({str(tmp_path / "inputs.safetensors")!r})["input_ids"]
        out = model(input_ids=ids)
        save_file({{"logits": out.logits.contiguous(), "audio": out.audio_logits.contiguous()}},
                  {str(tmp_path / "out.safetensors")!r})
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    remote = load_file(str(tmp_path / "out.safetensors"))
    expected = model(input_ids=ids)
    torch.testing.assert_close(remote["logits"], expected.logits)
    torch.testing.assert_close(remote["audio"], expected.audio_logits)


def test_attention_and_experts_implementations_agree(model, tmp_path):
    model.save_pretrained(tmp_path)
    ids = text_only_ids(model.config, 2, 16)
    reference = DeepOmniForConditionalGeneration.from_pretrained(
        tmp_path, attn_implementation="eager", experts_implementation="eager"
    ).eval()
    expected = reference(input_ids=ids).logits
    for attn, experts in [("sdpa", "eager"), ("eager", "grouped_mm"), ("eager", "batched_mm"), ("sdpa", "grouped_mm")]:
        other = DeepOmniForConditionalGeneration.from_pretrained(
            tmp_path, attn_implementation=attn, experts_implementation=experts
        ).eval()
        assert other.config.text_config._attn_implementation == attn
        assert other.config.text_config._experts_implementation == experts
        torch.testing.assert_close(other(input_ids=ids).logits, expected, atol=2e-5, rtol=1e-4)


def test_bad_inputs_name_the_problem(model):
    cfg = model.config
    with pytest.raises(ValueError, match=r"\[batch, positions, 8\]"):
        model(input_ids=torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="absolute ids"):
        model(input_ids=torch.full((1, 3, 8), cfg.total_vocab_size))
    with pytest.raises(ValueError, match="exactly one of"):
        model()
    ids = speech_span_ids(cfg, 0, 1600, 0)
    with pytest.raises(ValueError, match="longer than the 1500 Whisper frames"):
        model.model.merge_audio_frames(ids, model.model.embed_streams(ids), torch.zeros(1, 1500, 64))

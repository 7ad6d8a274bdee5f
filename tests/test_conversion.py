"""`deepomni convert` / `export-text-model`: parity with the source checkpoints, key layout, atomic output, CLI."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from snac import SNAC
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMultimodalLM,
    DeepseekV2Config,
    DeepseekV2ForCausalLM,
    PreTrainedTokenizerFast,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)

from deepomni_hf import DeepOmniForConditionalGeneration
from deepomni_hf.hub import conversion
from deepomni_hf.hub.conversion import (
    convert_checkpoint,
    export_text_model,
    init_new_embedding_rows,
    load_speech_experts,
)
from deepomni_hf.tiny import TINY_AUDIO, TINY_SPEECH_EXPERTS, TINY_TEXT


TEXT_VOCAB = 1000
YARN = {  # DeepSeek-V2-Lite's rope, as the original config.json spells it
    "type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1,
    "mscale": 0.707, "mscale_all_dim": 0.707,
}  # fmt: skip
# Tiny but complete SNAC (4096 codes, strides [4, 2, 1]); one coarse frame is 32 samples.
TINY_SNAC = {
    "sampling_rate": 24000, "encoder_dim": 8, "encoder_rates": [2, 4], "decoder_dim": 32, "decoder_rates": [4, 2],
    "attn_window_size": None, "codebook_size": 4096, "codebook_dim": 8, "vq_strides": [4, 2, 1], "noise": True,
    "depthwise": True,
}  # fmt: skip
SMALL = dict(adapter_intermediate_size=48, progress=False)  # keep the random adapter small


# ----- tiny source checkpoints ----------------------------------------------------------------------------------------


def deepseek_config(tie: bool) -> DeepseekV2Config:
    rope = {k: v for k, v in YARN.items() if k != "type"}
    return DeepseekV2Config(
        **dict(TINY_TEXT, max_position_embeddings=163840),
        vocab_size=TEXT_VOCAB,
        tie_word_embeddings=tie,
        rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, **rope},
    )


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE with DeepSeek's bos / eos, fewer tokens than the model's 1,000 rows (like DeepSeek-V2's)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sentences = [f"The {a} {b} a {c} question." for a in ("cat", "dog", "man") for b in ("asks", "reads") for c in ("red", "long")]
    tokenizer.train_from_iterator(sentences * 3, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<｜begin▁of▁sentence｜>", eos_token="<｜end▁of▁sentence｜>"
    )


def save_tokenizer_like_deepseek(folder: Path) -> None:
    tiny_tokenizer().save_pretrained(folder)
    # DeepSeek's hub tokenizer_config.json names the Llama class although tokenizer.json is byte-level BPE.
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings["tokenizer_class"] = "LlamaTokenizerFast"
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))


def write_original_layout(model: DeepseekV2ForCausalLM, folder: Path) -> None:
    """The layout of deepseek-ai/DeepSeek-V2-Lite-Chat: remote-code config.json (`rope_scaling`, `auto_map`, ...), an
    untied `lm_head.weight`, one tensor per expert, two shards with an index."""
    folder.mkdir(parents=True)
    cfg = model.config
    config = {
        "architectures": ["DeepseekV2ForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_deepseek.DeepseekV2Config",
            "AutoModel": "modeling_deepseek.DeepseekV2Model",
            "AutoModelForCausalLM": "modeling_deepseek.DeepseekV2ForCausalLM",
        },
        "model_type": "deepseek_v2", "aux_loss_alpha": 0.001, "scoring_func": "softmax", "seq_aux": True,
        "moe_layer_freq": 1, "ep_size": 1, "topk_method": "greedy", "n_group": 1, "topk_group": 1,
        "norm_topk_prob": False, "routed_scaling_factor": 1.0, "rope_theta": 10000, "rope_scaling": YARN,
        "tie_word_embeddings": False, "torch_dtype": "float32", "transformers_version": "4.39.3", "pretraining_tp": 1,
        "use_cache": True, "attention_bias": False, "attention_dropout": 0.0, "hidden_act": "silu",
        "initializer_range": 0.02, "rms_norm_eps": 1e-6, "vocab_size": TEXT_VOCAB,
        **{k: getattr(cfg, k) for k in TINY_TEXT}, "max_position_embeddings": 163840,
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    state = {}
    for name, tensor in model.state_dict().items():
        if name.endswith("mlp.experts.gate_up_proj"):
            prefix, inter = name[: -len("gate_up_proj")], tensor.shape[1] // 2
            for e in range(tensor.shape[0]):
                state[f"{prefix}{e}.gate_proj.weight"] = tensor[e, :inter].clone()
                state[f"{prefix}{e}.up_proj.weight"] = tensor[e, inter:].clone()
        elif name.endswith("mlp.experts.down_proj"):
            for e in range(tensor.shape[0]):
                state[f"{name[: -len('down_proj')]}{e}.down_proj.weight"] = tensor[e].clone()
        else:
            state[name] = tensor.clone()
    names = sorted(state)
    shards = {"model-00001-of-000002.safetensors": names[::2], "model-00002-of-000002.safetensors": names[1::2]}
    for filename, keys in shards.items():
        save_file({k: state[k].contiguous() for k in keys}, str(folder / filename), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    save_tokenizer_like_deepseek(folder)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    torch.manual_seed(0)
    tied = DeepseekV2ForCausalLM(deepseek_config(tie=True)).eval()
    tied.save_pretrained(root / "deepseek-native")
    save_tokenizer_like_deepseek(root / "deepseek-native")
    # The hub layout, same weights: lm_head is stored untied but equals the embedding, so the logits can match.
    write_original_layout(tied, root / "deepseek-original")

    torch.manual_seed(1)
    untied = DeepseekV2ForCausalLM(deepseek_config(tie=False)).eval()
    assert not torch.equal(untied.lm_head.weight, untied.model.embed_tokens.weight)
    untied.save_pretrained(root / "deepseek-untied")

    torch.manual_seed(2)
    whisper = WhisperForConditionalGeneration(WhisperConfig(**TINY_AUDIO)).eval()
    whisper.save_pretrained(root / "whisper")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(root / "whisper")

    torch.manual_seed(3)
    snac = SNAC(**TINY_SNAC).eval()
    (root / "snac").mkdir()
    (root / "snac" / "config.json").write_text(json.dumps(TINY_SNAC))
    torch.save(snac.state_dict(), root / "snac" / "pytorch_model.bin")

    experts = root / "speech_experts.json"
    experts.write_text(json.dumps({"speech_experts": TINY_SPEECH_EXPERTS}))
    return {
        "root": root, "tied": tied, "untied": untied, "whisper": whisper, "snac": snac, "experts": experts,
        "native": root / "deepseek-native", "original": root / "deepseek-original",
        "untied_dir": root / "deepseek-untied", "whisper_dir": root / "whisper", "snac_dir": root / "snac",
    }  # fmt: skip


def convert(sources, text, output, **kwargs):
    kwargs = {**SMALL, **kwargs}
    return convert_checkpoint(text, sources["whisper_dir"], sources["snac_dir"], output, **kwargs)


@pytest.fixture(scope="module")
def converted(sources, tmp_path_factory):
    """The native tied backbone converted with speech experts from JSON."""
    output = tmp_path_factory.mktemp("converted") / "deepomni"
    result = convert(sources, sources["native"], output, speech_experts=sources["experts"])
    return output, result


def text_ids(seed=0):
    return torch.randint(0, TEXT_VOCAB, (2, 11), generator=torch.Generator().manual_seed(seed))


def leftovers(parent: Path, name: str) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name == name or p.name.startswith(f".{name}.")]


# ----- (1) export reproduces the source text model --------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["native", "original"])
def test_export_reproduces_source_logits(sources, tmp_path, layout):
    checkpoint, exported = tmp_path / "deepomni", tmp_path / "text"
    convert(sources, sources[layout], checkpoint)
    result = export_text_model(checkpoint, exported, progress=False)
    assert result.config.vocab_size == TEXT_VOCAB and result.tokenizer_saved

    model = AutoModelForCausalLM.from_pretrained(exported, output_loading_info=False).eval()
    assert type(model) is DeepseekV2ForCausalLM
    assert model.config.vocab_size == TEXT_VOCAB
    assert model.config.rope_parameters["rope_type"] == "yarn" and model.config.rope_parameters["factor"] == 40
    reference = DeepseekV2ForCausalLM.from_pretrained(sources[layout]).eval()
    ids = text_ids()
    with torch.no_grad():
        expected = sources["tied"](ids).logits
        assert torch.equal(reference(ids).logits, expected)  # the hand-written hub layout is faithful
        assert torch.equal(model(ids).logits, expected)

    # Per-expert keys, as DeepseekV2ForCausalLM.save_pretrained and the original code write them.
    with safe_open(str(exported / "model.safetensors"), "pt") as file:
        keys = set(file.keys())
    assert "model.layers.1.mlp.experts.7.gate_proj.weight" in keys and "lm_head.weight" in keys
    assert not any(k.endswith(("gate_up_proj", "experts.down_proj")) for k in keys)


def test_untied_source_head_is_dropped_unless_kept(sources, tmp_path):
    untied, ids = sources["untied"], text_ids(1)
    convert(sources, sources["untied_dir"], tmp_path / "tied")
    export_text_model(tmp_path / "tied", tmp_path / "tied-text", progress=False)
    convert(sources, sources["untied_dir"], tmp_path / "kept", keep_source_lm_head=True)
    export_text_model(tmp_path / "kept", tmp_path / "kept-text", progress=False)

    with torch.no_grad():
        source_logits = untied(ids).logits
        hidden = untied.model(ids).last_hidden_state
        tied_logits = hidden @ untied.model.embed_tokens.weight.T  # the documented consequence of tying
        dropped = AutoModelForCausalLM.from_pretrained(tmp_path / "tied-text").eval()(ids).logits
        kept = AutoModelForCausalLM.from_pretrained(tmp_path / "kept-text").eval()(ids).logits
    torch.testing.assert_close(dropped, tied_logits)
    assert not torch.allclose(dropped, source_logits)
    assert torch.equal(kept, source_logits)

    kept_model = AutoModelForMultimodalLM.from_pretrained(tmp_path / "kept")
    assert kept_model.config.tie_word_embeddings is False
    assert kept_model.lm_head.weight.data_ptr() != kept_model.get_input_embeddings().weight.data_ptr()
    torch.testing.assert_close(kept_model.lm_head.weight[:TEXT_VOCAB], untied.lm_head.weight, rtol=0, atol=0)
    new_head_rows = init_new_embedding_rows(untied.lm_head.weight, kept_model.config.total_vocab_size - TEXT_VOCAB, 1)
    torch.testing.assert_close(kept_model.lm_head.weight[TEXT_VOCAB:], new_head_rows, rtol=0, atol=0)


# ----- (2) the converted checkpoint ---------------------------------------------------------------------------------


def test_converted_checkpoint_loads_with_exact_keys(sources, converted, tmp_path):
    output, result = converted
    model, info = AutoModelForMultimodalLM.from_pretrained(output, output_loading_info=True)
    assert isinstance(model, DeepOmniForConditionalGeneration)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert model.config.text_config.speech_experts == TINY_SPEECH_EXPERTS
    assert model.config.text_vocab_size == TEXT_VOCAB
    assert model.config.text_config.vocab_size == model.config.total_vocab_size == result.config.total_vocab_size
    assert model.config.text_config.rope_parameters["rope_type"] == "yarn"

    # Same tensor names as the model class's own save_pretrained (fused experts, no lm_head).
    model.save_pretrained(tmp_path / "resaved")
    with safe_open(str(tmp_path / "resaved" / "model.safetensors"), "pt") as file:
        resaved = set(file.keys())
    with safe_open(str(output / "model.safetensors"), "pt") as file:
        written = set(file.keys())
    assert written == resaved
    assert "model.language_model.layers.1.mlp.experts.gate_up_proj" in written and "lm_head.weight" not in written

    # The folder carries its code, for trust_remote_code.
    config = json.loads((output / "config.json").read_text())
    assert config["auto_map"]["AutoModelForMultimodalLM"] == "modeling_deepomni.DeepOmniForConditionalGeneration"
    assert (output / "modeling_deepomni.py").is_file() and (output / "configuration_deepomni.py").is_file()
    assert config["dtype"] == "float32"


def test_backbone_weights_and_new_embedding_rows(sources, converted):
    output, _ = converted
    model = AutoModelForMultimodalLM.from_pretrained(output)
    source = sources["tied"]
    table = model.get_input_embeddings().weight.detach()
    source_table = source.model.embed_tokens.weight.detach()
    assert torch.equal(table[:TEXT_VOCAB], source_table)
    new_rows = table[TEXT_VOCAB:]
    assert new_rows.shape[0] == model.config.total_vocab_size - TEXT_VOCAB
    # The documented rule: per-dimension mean + std * N(0, 1) from a generator seeded with `seed` (0).
    assert torch.equal(new_rows, init_new_embedding_rows(source_table, new_rows.shape[0], seed=0))
    mean, std = source_table.mean(0), source_table.std(0, unbiased=False)
    torch.testing.assert_close(new_rows.mean(0), mean, atol=4 * std.max().item() / new_rows.shape[0] ** 0.5, rtol=0)
    torch.testing.assert_close(new_rows.std(0), std, atol=0.05 * std.max().item(), rtol=0.05)

    # Fused experts = the source's per-expert weights, in order (gate rows, then up rows).
    ours = model.model.language_model.layers[2].mlp.experts
    theirs = source.model.layers[2].mlp.experts
    assert torch.equal(ours.gate_up_proj, theirs.gate_up_proj) and torch.equal(ours.down_proj, theirs.down_proj)
    # Backbone outputs match the source on text embeddings (float tolerance: the in-memory source and a loaded
    # checkpoint may lay tensors out differently; the bit-exact comparison is the export test's, both loaded).
    embeds = torch.randn(1, 7, TINY_TEXT["hidden_size"])
    with torch.no_grad():
        torch.testing.assert_close(
            model.model.language_model(inputs_embeds=embeds).last_hidden_state,
            source.model(inputs_embeds=embeds).last_hidden_state,
        )


def test_audio_encoder_and_codec_match_their_sources(sources, converted):
    output, _ = converted
    model = AutoModelForMultimodalLM.from_pretrained(output).eval()
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(
            model.model.audio_tower(features).last_hidden_state,
            sources["whisper"].model.encoder(features).last_hidden_state,
            rtol=0,
            atol=0,
        )
        snac, codec = sources["snac"], model.codec_model
        audio = 0.3 * torch.randn(2, 1, 150, generator=torch.Generator().manual_seed(6))
        codes = codec.encode(audio)
        assert torch.equal(codes, codec.levels_to_frames(snac.encode(audio)))
        torch.manual_seed(11)
        expected = snac.decode(snac.encode(audio))
        assert torch.equal(codec.decode(codes, generator=torch.Generator().manual_seed(11)), expected)
    # The adapter is new: Normal(0, initializer_range), nothing like zeros.
    adapter = model.model.speech_adapter.gate_proj.weight
    assert 0.01 < adapter.std().item() < 0.03


def test_a_deepomni_codec_folder_is_a_codec_source(sources, converted, tmp_path):
    # What `deepomni train-codec` writes (DeepOmniCodecModel.save_pretrained) converts like the snac-format folder.
    from deepomni_hf import DeepOmniCodecModel

    DeepOmniCodecModel.from_snac_checkpoint(sources["snac_dir"]).save_pretrained(tmp_path / "codec")
    convert_checkpoint(sources["native"], sources["whisper_dir"], tmp_path / "codec", tmp_path / "out",
                       with_processor=False, **SMALL)  # fmt: skip
    ours = AutoModelForMultimodalLM.from_pretrained(tmp_path / "out").codec_model.state_dict()
    reference = AutoModelForMultimodalLM.from_pretrained(converted[0]).codec_model.state_dict()
    assert ours.keys() == reference.keys()
    assert all(torch.equal(ours[k], reference[k]) for k in ours)


def test_processor_is_saved_with_the_extended_tokenizer(sources, converted):
    output, result = converted
    assert result.tokenizer_saved
    tokenizer = PreTrainedTokenizerFast.from_pretrained(output)
    assert tokenizer.convert_tokens_to_ids("<|EOT|>") == TEXT_VOCAB
    assert tokenizer.convert_tokens_to_ids("<|AUDIO|>") == result.config.audio_placeholder_id
    original = tiny_tokenizer()
    assert tokenizer("The cat asks a question.")["input_ids"] == original("The cat asks a question.")["input_ids"]
    if result.processor_saved:
        assert (output / "processor_config.json").is_file()


def test_exported_tokenizer_drops_deepomni_specials(sources, converted, tmp_path):
    output, _ = converted
    export_text_model(output, tmp_path / "text", progress=False)
    exported = PreTrainedTokenizerFast.from_pretrained(tmp_path / "text")
    original = tiny_tokenizer()
    assert len(exported) == len(original)
    assert "<|EOT|>" not in exported.get_vocab()
    text = "The dog reads a long question."
    assert exported(text)["input_ids"] == original(text)["input_ids"]
    assert exported.decode(exported(text)["input_ids"]) == text
    assert "processor_class" not in json.loads((tmp_path / "text" / "tokenizer_config.json").read_text())


def test_sharded_output_and_bfloat16(sources, tmp_path):
    output = tmp_path / "sharded"
    result = convert(sources, sources["original"], output, dtype="bfloat16", max_shard_size="300KB")
    assert result.num_shards > 1
    index = json.loads((output / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == result.num_shards
    assert index["metadata"]["total_size"] == result.total_bytes
    model, info = AutoModelForMultimodalLM.from_pretrained(output, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.dtype == torch.bfloat16
    assert torch.equal(
        model.get_input_embeddings().weight[:TEXT_VOCAB], sources["tied"].model.embed_tokens.weight.to(torch.bfloat16)
    )
    exported = tmp_path / "text"
    export_text_model(output, exported, max_shard_size="100KB", progress=False)
    text_model, info = AutoModelForCausalLM.from_pretrained(exported, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and text_model.dtype == torch.bfloat16


def test_checkpoint_loads_with_trust_remote_code_without_the_package(converted, tmp_path):
    output, _ = converted
    script = textwrap.dedent(
        f"""
        import sys
        from transformers import AutoModelForMultimodalLM
        model = AutoModelForMultimodalLM.from_pretrained({str(output)!r}, trust_remote_code=True)
        assert not any(name.startswith("deepomni_hf") for name in sys.modules), "deepomni_hf was imported"
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


# ----- speech experts -------------------------------------------------------------------------------------------------


def test_speech_experts_file_formats(tmp_path):
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(TINY_SPEECH_EXPERTS))
    assert load_speech_experts(bare) == TINY_SPEECH_EXPERTS
    for content, message in [("{not json", "as JSON"), ('{"experts": []}', "speech_experts"), ("[[0, 1.5]]", "integer")]:
        path = tmp_path / "bad.json"
        path.write_text(content)
        with pytest.raises(ValueError, match=message):
            load_speech_experts(path)


def test_pytorch_bin_source_is_read_weights_only(sources, tmp_path, monkeypatch):
    whisper = tmp_path / "whisper-bin"
    whisper.mkdir()
    (whisper / "config.json").write_text((sources["whisper_dir"] / "config.json").read_text())
    torch.save(sources["whisper"].state_dict(), whisper / "pytorch_model.bin")
    loads = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    convert_checkpoint(sources["native"], whisper, sources["snac_dir"], tmp_path / "out", with_processor=False, **SMALL)
    assert loads and all(flag is True for flag in loads)  # the .bin of Whisper and of SNAC
    model = AutoModelForMultimodalLM.from_pretrained(tmp_path / "out")
    assert torch.equal(model.model.audio_tower.conv1.weight, sources["whisper"].model.encoder.conv1.weight)


# ----- (3) failures leave nothing behind ------------------------------------------------------------------------------


def test_bad_speech_experts_leave_no_output(sources, tmp_path):
    bad = tmp_path / "experts.json"
    bad.write_text(json.dumps([[], [0, 99], [1, 2]]))  # expert 99 does not exist
    with pytest.raises(ValueError, match="out of range"):
        convert(sources, sources["native"], tmp_path / "out", speech_experts=bad)
    bad.write_text("[[], [0, 1")
    with pytest.raises(ValueError, match="as JSON"):
        convert(sources, sources["native"], tmp_path / "out", speech_experts=bad)
    assert leftovers(tmp_path, "out") == []


def test_failure_midway_leaves_no_output_or_temp_folder(sources, tmp_path, monkeypatch):
    calls = []

    def failing_save_file(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 3:
            raise OSError("No space left on device")
        return save_file(tensors, filename, metadata=metadata)

    monkeypatch.setattr(conversion.writing, "save_file", failing_save_file)  # the shard writer's module
    with pytest.raises(OSError, match="No space left"):
        convert(sources, sources["native"], tmp_path / "out", max_shard_size="200KB")
    assert len(calls) == 3  # two shards were on disk when it failed
    assert leftovers(tmp_path, "out") == []


def test_corrupt_or_missing_source_files(sources, tmp_path):
    import shutil

    whisper = tmp_path / "whisper"
    shutil.copytree(sources["whisper_dir"], whisper)
    (whisper / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(OSError, match="model.safetensors"):
        convert_checkpoint(sources["native"], whisper, sources["snac_dir"], tmp_path / "out", **SMALL)

    (whisper / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="No weights"):
        convert_checkpoint(sources["native"], whisper, sources["snac_dir"], tmp_path / "out", **SMALL)

    original = tmp_path / "original"
    shutil.copytree(sources["original"], original)
    (original / "model-00002-of-000002.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model-00002-of-000002.safetensors"):
        convert(sources, original, tmp_path / "out")
    (original / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        convert(sources, original, tmp_path / "out")

    with pytest.raises(ValueError, match="deepseek_v2"):
        convert(sources, sources["whisper_dir"], tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="not a local folder"):
        convert(sources, tmp_path / "no-such-model", tmp_path / "out")
    assert leftovers(tmp_path, "out") == []


def test_mismatched_sizes_are_named(sources, tmp_path):
    import shutil

    native = tmp_path / "native"
    shutil.copytree(sources["native"], native)
    config = json.loads((native / "config.json").read_text())
    config["moe_intermediate_size"] = 48
    (native / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"Mismatched sizes.*experts"):
        convert(sources, native, tmp_path / "out")
    config.update(moe_intermediate_size=TINY_TEXT["moe_intermediate_size"], num_hidden_layers=2)
    (native / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not account for"):
        convert(sources, native, tmp_path / "out")
    assert leftovers(tmp_path, "out") == []


def test_existing_output_is_refused_unless_overwrite(sources, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        convert(sources, sources["native"], output)
    assert (output / "keep.txt").read_text() == "mine"
    convert(sources, sources["native"], output, overwrite=True, with_processor=False)
    assert not (output / "keep.txt").exists() and (output / "model.safetensors").is_file()
    assert sorted(leftovers(tmp_path, "out")) == ["out"]
    with pytest.raises(FileExistsError):
        export_text_model(output, output, progress=False)


# ----- (4) command line -----------------------------------------------------------------------------------------------


def test_cli_convert_and_export(sources, tmp_path, capsys):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    checkpoint, text = tmp_path / "ckpt", tmp_path / "text"
    convert_cmd = [
        sys.executable, "-m", "deepomni_hf.cli", "convert", "--text-model", str(sources["original"]),
        "--audio-encoder", str(sources["whisper_dir"]), "--codec", str(sources["snac_dir"]), "--output",
        str(checkpoint), "--speech-experts", str(sources["experts"]), "--dtype", "float32", "--no-progress",
    ]  # fmt: skip
    result = subprocess.run(convert_cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(checkpoint) in result.stdout
    assert json.loads((checkpoint / "config.json").read_text())["text_config"]["speech_experts"] == TINY_SPEECH_EXPERTS

    from deepomni_hf.cli import main

    assert main(convert_cmd[3:]) == 1  # the same command again: the output exists
    assert "already exists" in capsys.readouterr().err
    assert main(["export-text-model", str(checkpoint), str(text), "--no-progress"]) == 0
    model = AutoModelForCausalLM.from_pretrained(text).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(text_ids()).logits, sources["tied"](text_ids()).logits, rtol=0, atol=0)

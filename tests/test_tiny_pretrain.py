"""examples/tiny/01_pretrain_text.py (the base text LLM of DeepOmni-Tiny) on a tiny config: the chat format, the
loss falls, a resumed run equals an uninterrupted one, and the result converts with `deepomni convert`."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file


SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "tiny" / "01_pretrain_text.py"
TINY_RUN = ["--size", "test", "--batch-size", "4", "--block-size", "64", "--wordnet-limit", "400",
            "--eval-train-sample", "16", "--eval-held-out-sample", "16", "--learning-rate", "3e-3"]  # fmt: skip


def load_script():
    spec = importlib.util.spec_from_file_location("pretrain_text", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pretrain():
    return load_script()


@pytest.fixture(scope="module")
def run(pretrain, tmp_path_factory):
    """An uninterrupted 12-step run that saves a checkpoint after every step."""
    output = tmp_path_factory.mktemp("pretrain") / "run"
    results = pretrain.main(["--output", str(output), "--max-steps", "12", "--save-minutes", "0", *TINY_RUN])
    return output, results


def test_chat_text_matches_the_processor_template(pretrain):
    from deepomni_hf.processors import DeepOmniProcessor
    from deepomni_hf.tiny import tiny_config, tiny_tokenizer

    rendered = pretrain.render_text_chat("What is seven plus five?", "Twelve.")
    assert rendered == "<｜begin▁of▁sentence｜>User: What is seven plus five?\n\nAssistant: Twelve.<｜end▁of▁sentence｜>"
    assert pretrain.render_text_chat("What is seven plus five?") == rendered[: rendered.index(" Twelve.")]
    # the processor lays out the same text stream (its eos becomes EOT in the 8-stream layout)
    processor = DeepOmniProcessor.from_model_config(tiny_config(text_vocab_size=512), tiny_tokenizer())
    messages = [{"role": "user", "content": "What is seven plus five?"}, {"role": "assistant", "content": "Twelve."}]
    text_stream = processor.apply_chat_template(messages, return_tensors="pt")["input_ids"][0, :, 7].tolist()
    expected = processor.tokenizer(rendered.replace(processor.tokenizer.eos_token, ""), add_special_tokens=False)["input_ids"]
    assert text_stream[: len(expected)] == expected


def test_normalised_match(pretrain):
    assert pretrain.normalise("Fifty-six.") == pretrain.normalise(" fifty six") == "fifty six"
    assert pretrain.normalise("The Paris!") == "paris"


def test_loss_falls_and_results_are_written(run):
    output, results = run
    assert results["last_logged_loss"] < results["first_logged_loss"] - 0.3
    saved = json.loads((output / "final" / "eval_results.json").read_text())
    assert saved["text_qa_held_out_phrasing"]["n"] == 16 and saved["wordnet_held_out_perplexity"] > 1
    assert (output / "final" / "tokenizer.json").is_file()


def test_resume_continues_from_the_checkpoint(pretrain, run, tmp_path):
    output, _ = run
    resumed = tmp_path / "run"
    shutil.copytree(output / "checkpoint-11", resumed / "checkpoint-11")  # as if killed after step 11
    shutil.copytree(output / "tokenizer", resumed / "tokenizer")
    pretrain.main(["--output", str(resumed), "--max-steps", "12", "--save-minutes", "0", "--resume", *TINY_RUN])
    state = json.loads((resumed / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["global_step"] == 12 and state["log_history"][0]["step"] < 11  # history carried over
    uninterrupted = load_file(output / "final" / "model.safetensors")
    continued = load_file(resumed / "final" / "model.safetensors")
    for name, tensor in uninterrupted.items():
        torch.testing.assert_close(continued[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_pretrained_model_converts(run, tmp_path):
    from snac import SNAC
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from deepomni_hf import DeepOmniForConditionalGeneration
    from deepomni_hf.hub.conversion import convert_checkpoint
    from deepomni_hf.tiny import TINY_AUDIO

    output, _ = run
    WhisperForConditionalGeneration(WhisperConfig(**TINY_AUDIO)).save_pretrained(tmp_path / "whisper")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path / "whisper")
    snac_config = {"sampling_rate": 24000, "encoder_dim": 8, "encoder_rates": [2, 4], "decoder_dim": 32,
                   "decoder_rates": [4, 2], "attn_window_size": None, "codebook_size": 4096, "codebook_dim": 8,
                   "vq_strides": [4, 2, 1], "noise": True, "depthwise": True}  # fmt: skip
    (tmp_path / "snac").mkdir()
    (tmp_path / "snac" / "config.json").write_text(json.dumps(snac_config))
    torch.save(SNAC(**snac_config).state_dict(), tmp_path / "snac" / "pytorch_model.bin")
    convert_checkpoint(output / "final", tmp_path / "whisper", tmp_path / "snac", tmp_path / "deepomni",
                       adapter_intermediate_size=48, progress=False)  # fmt: skip
    model = DeepOmniForConditionalGeneration.from_pretrained(tmp_path / "deepomni")
    source = load_file(output / "final" / "model.safetensors")
    embed = model.get_input_embeddings().weight
    rows = source["model.embed_tokens.weight"].shape[0]
    assert torch.equal(embed[:rows], source["model.embed_tokens.weight"])

"""The DeepOmni-Tiny recipe end to end: `examples/tiny/run_all.sh` (steps 2-10) on tiny random sources (base LLM,
Whisper, codec built here), a handful of corpus rows spoken by flite, 2 training steps per stage. Checks that every
step writes its outputs, that the stages freeze what they must on the scripts' real checkpoints, that a rerun skips
finished steps and that an interrupted stage resumes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch
from transformers import (
    DeepseekV2Config,
    DeepseekV2ForCausalLM,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)

from deepomni_hf import DeepOmniCodecModel, DeepOmniForConditionalGeneration
from deepomni_hf.modeling.configuration_deepomni_codec import DeepOmniCodecConfig
from deepomni_hf.tiny import TINY_AUDIO, TINY_CODEC, TINY_TEXT, TINY_TEXT_VOCAB_SIZE, tiny_tokenizer
from deepomni_hf.training.audio_cache import CACHE_COLUMN, CACHE_INFO_NAME

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "tiny"
STAGE_RUNS = ("stage1-alignment", "stage2-speech", "stage2-text", "stage3-joint", "final", "baseline-naive",
              "baseline-per-token")  # fmt: skip

# ~20 short processes (each imports torch): minutes on a free 2-core machine, more on a busy one.
pytestmark = [
    pytest.mark.skipif(shutil.which("flite") is None, reason="needs Debian's flite (apt-get install flite)"),
    pytest.mark.timeout(3600),
]


def run_steps(env, first="02", last="10"):
    result = subprocess.run(["bash", str(TINY / "run_all.sh"), first, last], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-recipe")
    torch.manual_seed(0)
    config = DeepseekV2Config(**TINY_TEXT, vocab_size=TINY_TEXT_VOCAB_SIZE)
    DeepseekV2ForCausalLM(config).save_pretrained(root / "base")
    tiny_tokenizer().save_pretrained(root / "base")
    WhisperForConditionalGeneration(WhisperConfig(**TINY_AUDIO)).save_pretrained(root / "whisper")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(root / "whisper")
    DeepOmniCodecModel(DeepOmniCodecConfig(**TINY_CODEC)).save_pretrained(root / "codec")  # train-codec's format
    env = {
        **os.environ, "RUN": str(root / "run"), "PYTHON": sys.executable, "BASE_LLM": str(root / "base"),
        "WHISPER": str(root / "whisper"), "CODEC": str(root / "codec"), "CORPUS_LIMIT": "4",
        "QUESTION_VOICES": "flite:awb,flite:slt,flite:kal16", "TEST_VOICE": "flite:kal16",
        "TRAIN_VOICES": "flite:awb,flite:slt", "ASR_SENTENCES": "3", "MAX_STEPS": "2", "SAVE_STEPS": "1",
        "BATCH": "2", "THREADS": "1", "NICE": "", "ADAPTER_WIDTH": "48", "DPO_PROMPTS": "2", "DPO_SAMPLES": "2",
        "DPO_JUDGE": "", "HF_HUB_OFFLINE": "1",
    }  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    stdout = run_steps(env)
    return {"run": root / "run", "env": env, "stdout": stdout}


def load(path):
    return DeepOmniForConditionalGeneration.from_pretrained(path)


def test_every_step_writes_its_outputs(recipe):
    run = recipe["run"]
    assert (run / "converted" / "config.json").is_file()
    for name in ("asr-questions", "asr-sentences", "speech", "text", "joint"):
        data = datasets.load_from_disk(str(run / "data" / "layout" / name))
        assert "input_features" not in data.column_names and CACHE_COLUMN in data.column_names, name
        assert (run / "data" / "layout" / name / CACHE_INFO_NAME).is_file()
    experts = json.loads((run / "stage1-experts" / "speech_experts.json").read_text())
    assert experts["speech_experts"][0] == [] and all(experts["speech_experts"][1:])
    for name in STAGE_RUNS:
        result = json.loads((run / name / "train_result.json").read_text())
        assert result["positions_trained"] > 0 or name == "final", name  # DPO batches are pairs: not counted
        assert [e["step"] for e in result["log_history"] if "loss" in e] == [1, 2], name
        log = [json.loads(line) for line in (run / name / "train_log.jsonl").read_text().splitlines()]
        assert [e["step"] for e in log if "loss" in e] == [1, 2], name
        assert (run / name / "model.safetensors").is_file() and (run / name / "tokenizer.json").is_file(), name
    times = (run / "wall_times.tsv").read_text().splitlines()
    assert {"convert", "alignment", "speech", "text", "joint", "dpo", "naive", "per-token"} <= {t.split("\t")[0] for t in times}
    # The naive arm trains on the union of the three datasets the recipe's stages 2-3 use, for the same epochs.
    naive = json.loads((run / "baseline-naive" / "train_result.json").read_text())
    assert [Path(p).name for p in naive["data"]] == ["speech", "text", "joint"]
    assert json.loads((run / "baseline-per-token" / "train_result.json").read_text())["routing_mode"] == "per_token"
    assert load(run / "baseline-per-token").config.text_config.routing_mode == "per_token"


def expert_rows(model, layer):
    return model.model.language_model.layers[layer].mlp.experts.gate_up_proj.detach()


def test_the_scripts_freeze_what_each_stage_must(recipe):
    run = recipe["run"]
    experts, speech, text, joint = (load(run / n) for n in ("stage1-experts", "stage2-speech", "stage2-text", "stage3-joint"))
    naive, aligned = load(run / "baseline-naive"), load(run / "stage1-alignment")
    for layer, speech_ids in enumerate(experts.config.text_config.speech_experts):
        if not speech_ids:
            continue
        text_ids = [e for e in range(expert_rows(experts, layer).shape[0]) if e not in speech_ids]
        # speech stage: text experts bit-identical; text stage: speech experts bit-identical
        assert torch.equal(expert_rows(speech, layer)[text_ids], expert_rows(experts, layer)[text_ids])
        assert torch.equal(expert_rows(text, layer)[speech_ids], expert_rows(speech, layer)[speech_ids])
    assert not torch.equal(expert_rows(speech, 1), expert_rows(experts, 1))  # it did train
    # The adapter trains in stage 1 only; the naive arm trains the backbone from the aligned model in one run.
    adapter = lambda m: m.model.speech_adapter.gate_proj.weight  # noqa: E731
    assert torch.equal(adapter(joint), adapter(aligned))
    attention = lambda m: m.model.language_model.layers[1].self_attn.kv_a_proj_with_mqa.weight  # noqa: E731
    assert torch.equal(attention(aligned), attention(experts)) and not torch.equal(attention(naive), attention(aligned))
    assert torch.equal(joint.model.audio_tower.conv1.weight, aligned.model.audio_tower.conv1.weight)


def test_rerun_skips_finished_steps_and_a_stage_resumes(recipe):
    run, env = recipe["run"], dict(recipe["env"])
    before = (run / "wall_times.tsv").read_text()
    stdout = run_steps(env)
    assert stdout.count("exists, skipping") >= 8 and (run / "wall_times.tsv").read_text() == before

    # Interrupted after its checkpoints: the speech stage picks up at step 2 and trains only step 3.
    (run / "stage2-speech" / "train_result.json").unlink()
    env["MAX_STEPS"] = "3"
    run_steps(env, "06", "06")
    result = json.loads((run / "stage2-speech" / "train_result.json").read_text())
    assert [e["step"] for e in result["log_history"] if "loss" in e] == [1, 2, 3]
    log = [json.loads(line) for line in (run / "stage2-speech" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3]  # steps 1-2 were not trained again

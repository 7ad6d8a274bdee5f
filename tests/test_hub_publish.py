# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Publishing to the Hub (`deepomni_hf.hub.publish`, `cards`, `deepomni push`) against a local Hub stand-in
(`tests/hub_server.py`), with the real clients: `huggingface_hub` uploads, `transformers` `from_pretrained` and
`datasets` `load_dataset` read back what was pushed.

Configuration: conftest.py sets HF_HUB_OFFLINE=1 for the whole test run. The `hub` fixture turns the Hub back on for
this module only, pointed at the local server: it sets the environment variables (HF_ENDPOINT, HF_HUB_OFFLINE=0,
HF_HUB_DISABLE_XET=1, a fake HF_TOKEN, a private HF_HOME) *and* patches the module-level values that
`huggingface_hub`, `transformers` and `datasets` computed from them at import time (`huggingface_hub.constants`, the
default `HfApi` instances, `datasets.config`); everything is restored when the module ends. The `trust_remote_code`
check runs in a subprocess, which reads the environment variables afresh.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from hub_server import HubServer
from text_fixtures import tiny_deepomni_config, tiny_tokenizer

from deepomni_hf import DeepOmniForConditionalGeneration
from deepomni_hf.hub.cards import (
    BASE_CHECKPOINTS,
    STAGE_PLANS,
    STAGES,
    ExpertSplit,
    card_metadata,
    check_card_metadata,
    render_model_card,
    stage_plan,
)
from deepomni_hf.hub.publish import push_dataset, push_model


TOKEN = "hf_deepomniTESTtoken0123456789abcdef"
ORG = "deepomni-test"
SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
SHARD_INDEX = {"metadata": {}, "weight_map": {"a": SHARDS[0], "b": SHARDS[1]}}
EVAL_RESULTS = [
    {"task_type": "automatic-speech-recognition", "task_name": "Speech Recognition", "dataset_type":
     "openslr/librispeech_asr", "dataset_name": "LibriSpeech test-clean", "dataset_split": "test",
     "metric_type": "wer", "metric_value": 5.1},
]  # fmt: skip


# --- fixtures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    import datasets
    import huggingface_hub
    import transformers.utils.hub
    from huggingface_hub import constants

    root = tmp_path_factory.mktemp("hub")
    server = HubServer(root / "server", token=TOKEN).start()
    home = root / "hf_home"
    with pytest.MonkeyPatch.context() as mp:
        for key in ("TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE"):
            mp.delenv(key, raising=False)
        env = {
            "HF_ENDPOINT": server.endpoint, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": TOKEN,
            "HF_HOME": str(home), "HF_DATASETS_CACHE": str(home / "datasets"), "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }  # fmt: skip
        for key, value in env.items():
            mp.setenv(key, value)
        # Values the libraries read from the environment at import time.
        mp.setattr(constants, "ENDPOINT", server.endpoint)
        resolve = "/{repo_id}/resolve/{revision}/{filename}"
        mp.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.endpoint + resolve)
        mp.setattr(constants, "HF_HUB_OFFLINE", False)
        mp.setattr(constants, "HF_HUB_DISABLE_XET", True)
        mp.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        mp.setattr(constants, "HF_HOME", str(home))
        mp.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
        mp.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
        mp.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
        mp.setattr(huggingface_hub.hf_api.api, "endpoint", server.endpoint)  # the HfApi behind module-level functions
        mp.setattr(transformers.utils.hub, "_hf_api", None)  # transformers' shared HfApi, rebuilt on first use
        mp.setattr(datasets.config, "HF_ENDPOINT", server.endpoint)
        resolve = "/datasets/{repo_id}/resolve/{revision}/{path}"
        mp.setattr(datasets.config, "HUB_DATASETS_URL", server.endpoint + resolve)
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", False)
        mp.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
        yield server
    server.stop()


def _text_inputs(config, length=12, seed=0):
    """A text-only 8-stream input: random text ids, PAD_A in the 7 audio slots."""
    ids = torch.empty(1, length, 8, dtype=torch.long)
    for slot in range(7):
        ids[..., slot] = config.audio_token_id("PAD_A", slot)
    ids[..., 7] = torch.randint(3, 400, (1, length), generator=torch.Generator().manual_seed(seed))
    return ids


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random DeepOmni checkpoint with its processor, the inputs of a forward pass and the outputs."""
    from deepomni_hf.processors import DeepOmniProcessor

    folder = tmp_path_factory.mktemp("ckpt") / "tiny-deepomni"
    torch.manual_seed(0)
    config = tiny_deepomni_config()
    model = DeepOmniForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    DeepOmniProcessor.from_model_config(config, tiny_tokenizer()).save_pretrained(folder)
    inputs = _text_inputs(config)
    # The reference is the checkpoint reloaded from its folder: loading from the hub must give exactly that. (The
    # in-memory model can differ in the last bit: reloaded weights are laid out differently in memory.)
    reloaded = DeepOmniForConditionalGeneration.from_pretrained(folder).eval()
    with torch.no_grad():
        out, before_save = reloaded(input_ids=inputs), model(input_ids=inputs)
    torch.testing.assert_close(out.logits, before_save.logits, rtol=1e-5, atol=1e-6)
    return {"dir": folder, "config": config, "inputs": inputs, "logits": out.logits, "audio_logits": out.audio_logits}


@pytest.fixture(scope="module")
def pushed(hub, checkpoint):
    """The tiny checkpoint pushed once, as a stage-3 (joint) model with evaluation results."""
    repo_id = f"{ORG}/deepomni-tiny-joint"
    commit = push_model(checkpoint["dir"], repo_id, stage="joint", eval_results=EVAL_RESULTS)
    return {"repo_id": repo_id, "commit": commit}


def _fake_checkpoint(folder, config, weights):
    """A checkpoint folder with the real config.json and placeholder weight files (for checks that load nothing)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict() | {"model_type": "deepomni"}))
    for name, content in weights.items():
        (folder / name).write_bytes(content)
    return folder


def _placeholder_weights(seed: int) -> bytes:
    """A small valid safetensors file (push checks headers: random bytes would be refused as a damaged file)."""
    from safetensors.torch import save

    return save({"placeholder": torch.randn(16, generator=torch.Generator().manual_seed(seed))})


# --- model round trip -----------------------------------------------------------------------------------------------
def test_pushed_model_reproduces_logits_and_processor(hub, checkpoint, pushed):
    from transformers import AutoModelForMultimodalLM, AutoProcessor

    from deepomni_hf.processors import DeepOmniProcessor

    model = AutoModelForMultimodalLM.from_pretrained(pushed["repo_id"]).eval()
    assert isinstance(model, DeepOmniForConditionalGeneration)
    with torch.no_grad():
        out = model(input_ids=checkpoint["inputs"])
    torch.testing.assert_close(out.logits, checkpoint["logits"], rtol=0, atol=0)
    torch.testing.assert_close(out.audio_logits, checkpoint["audio_logits"], rtol=0, atol=0)

    processor = AutoProcessor.from_pretrained(pushed["repo_id"])
    local = DeepOmniProcessor.from_pretrained(checkpoint["dir"])
    assert isinstance(processor, DeepOmniProcessor)
    sentence = "What is the capital of France?"
    assert processor.tokenizer(sentence)["input_ids"] == local.tokenizer(sentence)["input_ids"]
    assert processor.chat_template == local.chat_template
    assert not hub.unhandled and not hub.storage_saw_authorization  # the token never went to the storage host


def test_push_is_one_commit_with_every_file(hub, checkpoint, pushed):
    commits = hub.commits_for(pushed["repo_id"])
    assert len(commits) == 1
    assert commits[0]["oid"] == pushed["commit"].oid and commits[0]["revision"] == "main"
    expected = {p.name for p in checkpoint["dir"].iterdir()} | {"README.md"}
    assert set(commits[0]["paths"]) == expected
    files = hub.repo(pushed["repo_id"]).resolve("main").files
    assert files["model.safetensors"].is_lfs and not files["config.json"].is_lfs  # weights went through LFS
    assert "joint" in commits[0]["summary"]


def test_remote_code_loads_from_the_hub_without_the_package(hub, checkpoint, pushed, tmp_path):
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class BlockDeepOmni(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "deepomni_hf":
                    raise ImportError("deepomni_hf is blocked in this process")

        sys.meta_path.insert(0, BlockDeepOmni())
        import torch
        from transformers import AutoModelForMultimodalLM, AutoProcessor

        repo_id, inputs_path, output_path = sys.argv[1:]
        model = AutoModelForMultimodalLM.from_pretrained(repo_id, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained(repo_id, trust_remote_code=True)
        with torch.no_grad():
            out = model(input_ids=torch.load(inputs_path))
        torch.save({"logits": out.logits, "audio_logits": out.audio_logits, "model": type(model).__module__,
                    "processor": type(processor).__name__}, output_path)
        """
    )
    torch.save(checkpoint["inputs"], tmp_path / "inputs.pt")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home")}  # a fresh cache: everything comes from the hub
    env.pop("HF_DATASETS_CACHE", None)
    result = subprocess.run(
        [sys.executable, "-c", script, pushed["repo_id"], str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = torch.load(tmp_path / "out.pt")
    assert out["model"].startswith("transformers_modules.") and out["processor"] == "DeepOmniProcessor"
    torch.testing.assert_close(out["logits"], checkpoint["logits"], rtol=0, atol=0)
    torch.testing.assert_close(out["audio_logits"], checkpoint["audio_logits"], rtol=0, atol=0)
    assert TOKEN not in result.stdout + result.stderr


def test_usage_snippet_pipeline_runs_from_the_hub(hub, pushed):
    from transformers import pipeline

    chat = pipeline("speech-to-speech", model=pushed["repo_id"])
    reply = chat("What is the capital of France?", reply_modality="text", max_new_tokens=3)
    assert isinstance(reply["text"], str) and reply["sampling_rate"] == 24000


# --- cards ----------------------------------------------------------------------------------------------------------
def test_model_card_metadata_round_trips(hub, checkpoint, pushed):
    from huggingface_hub import HfApi, ModelCard

    card = ModelCard.load(pushed["repo_id"])  # downloaded from the hub
    assert check_card_metadata(card) == []
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "any-to-any"
    assert data.base_model == list(BASE_CHECKPOINTS)
    assert data.license == "other" and data.license_name == "deepseek"
    assert {"deepomni", "speech-to-speech", "moe"} <= set(data.tags) and data.language == ["en"]
    (result,) = data.eval_results
    assert (result.task_type, result.dataset_type, result.metric_type, result.metric_value) == (
        "automatic-speech-recognition", "openslr/librispeech_asr", "wer", 5.1)  # fmt: skip
    assert data.model_name == "deepomni-tiny-joint"

    text = card.text
    assert "stage 3, joint training" in text and "| stage | 3 — joint training |" in text
    assert f"| frozen | {', '.join(stage_plan('joint').frozen)} |" in text and "Whisper encoder" in text
    assert "7 speech experts and 9 text experts over 2 MoE layers" in text  # tiny split: [[], [0, 1, 2], [4..7]]
    assert "| 1 | 3 | 5 | 0–2 |" in text and "| 2 | 4 | 4 | 4–7 |" in text
    assert "| LibriSpeech test-clean | test | wer | 5.1 |" in text
    assert f'pipeline("speech-to-speech", model="{pushed["repo_id"]}")' in text
    assert f'AutoModelForMultimodalLM.from_pretrained("{pushed["repo_id"]}", trust_remote_code=True)' in text

    info = HfApi().model_info(pushed["repo_id"])  # what the Hub indexes from the card
    assert info.pipeline_tag == "any-to-any" and info.card_data.base_model == list(BASE_CHECKPOINTS)


@pytest.mark.parametrize("stage", [*STAGES, None])
def test_every_stage_template_renders_valid_metadata(checkpoint, stage):
    base_model = None if stage in (None, "converted", "alignment") else f"{ORG}/deepomni-{STAGE_PLANS[stage].previous}"
    card = render_model_card(checkpoint["dir"], f"{ORG}/deepomni-{stage}", stage, base_model=base_model)
    assert check_card_metadata(card) == []
    metadata = card_metadata(card)
    assert metadata["pipeline_tag"] == "any-to-any" and metadata["library_name"] == "transformers"
    assert metadata["base_model"] == (base_model or list(BASE_CHECKPOINTS))
    for heading in ("## Speech and text experts", "## Evaluation", "## Usage", "## Model"):
        assert heading in card.text
    assert "{{" not in card.text and "{%" not in card.text
    if stage is None:  # unstated stage: the whole recipe instead of one stage
        assert "## Training recipe" in card.text and "not stated" in card.text
        for name in STAGES:
            assert f"| {stage_plan(name).number} — {stage_plan(name).title} |" in card.text
        return
    plan = stage_plan(stage)
    assert "## Training stage" in card.text and f"| stage | {plan.number} — {plan.title} |" in card.text
    assert f"| routing mode | `{plan.routing}` |" in card.text
    if base_model:
        assert f"({STAGE_PLANS[plan.previous].title}): {base_model} |" in card.text


def test_installed_wheel_ships_the_card_templates(tmp_path):
    """A non-editable install has no repository root: the templates (and the serving page) must travel inside the
    package."""
    pytest.importorskip("setuptools")
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    # Build from a copy, so setuptools' build/ folder never lands in (or is reused from) the checkout.
    source = tmp_path / "source"
    for folder in ("src", "hub_cards"):
        shutil.copytree(root / folder, source / folder, symlinks=True, ignore=shutil.ignore_patterns("*.egg-info"))
    for file in ("pyproject.toml", "README.md"):
        shutil.copy2(root / file, source / file)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("deepomni_hf-*.whl")
    templates = sorted(p.name for p in (root / "hub_cards").glob("*.md"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
        shipped = sorted(Path(n).name for n in archive.namelist() if n.startswith("deepomni_hf/hub_cards/"))
        page_shipped = "deepomni_hf/serving/static/index.html" in archive.namelist()  # `deepomni serve`'s page
        # The bundled domain codec travels as package data too.
        codec_shipped = {Path(n).name for n in archive.namelist() if n.startswith("deepomni_hf/assets/codec-rms/")}
    assert shipped == templates and "model_card_speech.md" in shipped and page_shipped
    assert {"config.json", "model.safetensors", "README.md"} <= codec_shipped
    # The installed copy (first on sys.path, ahead of the editable checkout) finds its own templates.
    probe = (
        f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r}); from deepomni_hf.hub.cards import templates_dir; "
        "print(templates_dir().resolve())"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ, "DEEPOMNI_HUB_CARDS": ""})
    assert found.returncode == 0, found.stderr[-2000:]
    assert Path(found.stdout.strip()) == (tmp_path / "site" / "deepomni_hf" / "hub_cards").resolve()


def test_card_stage_plans_follow_the_trainer():
    training = pytest.importorskip("deepomni_hf.training.stages")
    for name, trained in training.STAGES.items():
        plan = stage_plan(name)
        assert plan.routing == trained.routing_mode and plan.learning_rate == trained.learning_rate
        assert len(plan.trainable) == len(trained.trainable)
        assert len(plan.trainable) + len(plan.frozen) == len(training.PARAMETER_GROUPS)
    assert "speech experts" in stage_plan("speech").trainable and "text experts" in stage_plan("speech").frozen
    assert stage_plan("converted").trainable == () and stage_plan(None) is None


def test_card_reports_unassigned_experts_and_stage_aliases(tmp_path, checkpoint):
    config = tiny_deepomni_config(speech_experts=[[], [], []])
    folder = _fake_checkpoint(tmp_path / "ckpt", config, {"model.safetensors": b"0"})
    split = ExpertSplit.from_config(json.loads((folder / "config.json").read_text()))
    assert not split.assigned and split.moe_layers == [1, 2]
    card = render_model_card(folder, f"{ORG}/fresh", "1")  # "1" is stage 1, alignment
    assert "Speech experts are not assigned yet" in card.text and "| stage | 1 — speech-text alignment |" in card.text
    with pytest.raises(ValueError, match="Unknown stage 'stage9'"):
        render_model_card(folder, f"{ORG}/fresh", "stage9")


# --- options --------------------------------------------------------------------------------------------------------
def test_private_flag_and_revision_are_honoured(hub, checkpoint):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError
    from transformers import AutoConfig

    repo_id = f"{ORG}/deepomni-private"
    push_model(checkpoint["dir"], repo_id, stage="speech", private=True, revision="stage-2-speech")
    assert hub.repo(repo_id).private
    assert HfApi().model_info(repo_id, revision="stage-2-speech").private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info(repo_id)  # anonymous: a private repo looks missing

    branches = {ref.name for ref in HfApi().list_repo_refs(repo_id).branches}
    assert branches == {"main", "stage-2-speech"}
    assert HfApi().list_repo_files(repo_id) == [".gitattributes"]  # main is untouched
    assert "model.safetensors" in HfApi().list_repo_files(repo_id, revision="stage-2-speech")
    (commit,) = hub.commits_for(repo_id)
    assert commit["revision"] == "stage-2-speech"
    config = AutoConfig.from_pretrained(repo_id, revision="stage-2-speech")
    assert config.text_config.speech_experts == checkpoint["config"].text_config.speech_experts

    # Pushing the same files again to the existing branch makes no commit; a changed card makes one, with only it.
    push_model(checkpoint["dir"], repo_id, stage="speech", revision="stage-2-speech")
    assert len(hub.commits_for(repo_id)) == 1
    push_model(checkpoint["dir"], repo_id, stage="speech", revision="stage-2-speech", commit_message="add eval",
               eval_results=EVAL_RESULTS)  # fmt: skip
    assert [(c["summary"], c["paths"]) for c in hub.commits_for(repo_id)][1:] == [("add eval", ["README.md"])]


def test_repush_replaces_weight_shards_in_the_same_commit(hub, tmp_path, checkpoint):
    from huggingface_hub import HfApi

    config, repo_id = checkpoint["config"], f"{ORG}/reshard"
    sharded = _fake_checkpoint(tmp_path / "sharded", config, {
        "model.safetensors.index.json": json.dumps(SHARD_INDEX).encode(),
        SHARDS[0]: _placeholder_weights(0),
        SHARDS[1]: _placeholder_weights(1),
    })  # fmt: skip
    push_model(sharded, repo_id)
    single = _fake_checkpoint(tmp_path / "single", config, {"model.safetensors": _placeholder_weights(2)})
    push_model(single, repo_id)
    assert len(hub.commits_for(repo_id)) == 2
    assert HfApi().list_repo_files(repo_id) == [".gitattributes", "README.md", "config.json", "model.safetensors"]


# --- datasets -------------------------------------------------------------------------------------------------------
def _records(n, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {
        "question": [f"question {i}?" for i in range(n)],
        "answer": [f"answer number {i}." for i in range(n)],
        "codes": [torch.randint(0, 4096, (i % 3 + 1, 7), generator=generator).tolist() for i in range(n)],
        "duration": [0.5 + i / 8 for i in range(n)],
    }


def _features():
    from datasets import Features, List, Value

    return Features({"question": Value("string"), "answer": Value("string"), "codes": List(List(Value("int16"))),
                     "duration": Value("float32")})  # fmt: skip


def test_pushed_dataset_loads_back_equal(hub, tmp_path):
    from datasets import Dataset, load_dataset
    from huggingface_hub import DatasetCard

    dataset = Dataset.from_dict(_records(10), features=_features())
    dataset.save_to_disk(str(tmp_path / "ds"))
    repo_id = f"{ORG}/spoken-qa"
    push_dataset(tmp_path / "ds", repo_id, stage="speech", license="cc-by-4.0")

    loaded = load_dataset(repo_id, split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.features == dataset.features
    assert loaded.to_dict() == dataset.to_dict()
    (commit,) = hub.commits_for(repo_id, "dataset")
    assert sorted(commit["paths"]) == ["README.md", "data/train-00000-of-00001.parquet"]

    card = DatasetCard.load(repo_id, repo_type="dataset")
    assert check_card_metadata(card) == []
    assert card.data.license == "cc-by-4.0" and card.data.size_categories == ["n<1K"]
    assert card.data.task_categories == list(STAGE_PLANS["speech"].task_categories)
    assert card.data.configs == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    assert "stage 2-speech (speech experts)" in card.text and "| train | 10 |" in card.text
    assert "| `codes` | list of list of int16 |" in card.text


def test_dataset_dict_shards_private_revision_and_repush(hub, tmp_path):
    from datasets import Dataset, DatasetDict, load_dataset
    from huggingface_hub import HfApi

    splits = DatasetDict({
        "train": Dataset.from_dict(_records(40, seed=1), features=_features()),
        "test": Dataset.from_dict(_records(6, seed=2), features=_features()),
    })  # fmt: skip
    splits.save_to_disk(str(tmp_path / "dd"))
    repo_id = f"{ORG}/joint-mix"
    push_dataset(tmp_path / "dd", repo_id, stage="joint", private=True, revision="v1", max_shard_size=2000)
    assert hub.repo(repo_id, "dataset").private
    (commit,) = hub.commits_for(repo_id, "dataset")
    shards = [p for p in commit["paths"] if p.startswith("data/train-")]
    assert commit["revision"] == "v1" and len(shards) > 1  # several shards, still one commit
    loaded = load_dataset(repo_id, revision="v1", cache_dir=str(tmp_path / "cache1"))
    assert set(loaded) == {"train", "test"}
    for split in splits:
        assert loaded[split].to_dict() == splits[split].to_dict()

    # Re-push with one shard per split: the old shards are deleted in that same commit.
    push_dataset(tmp_path / "dd", repo_id, stage="joint", revision="v1")
    assert len(hub.commits_for(repo_id, "dataset")) == 2
    files = HfApi().list_repo_files(repo_id, repo_type="dataset", revision="v1")
    assert sorted(f for f in files if f.startswith("data/")) == [
        "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]  # fmt: skip
    reloaded = load_dataset(repo_id, revision="v1", split="train", cache_dir=str(tmp_path / "cache2"))
    assert reloaded.to_dict() == splits["train"].to_dict()


# --- command line, credentials --------------------------------------------------------------------------------------
def _run_cli(argv):
    from deepomni_hf.cli import main  # user errors become one line there, for every subcommand

    return main(argv)


def test_cli_pushes_and_the_token_never_appears_in_output(hub, checkpoint, tmp_path, capfd, caplog):
    from datasets import Dataset
    from huggingface_hub.utils import logging as hf_logging

    eval_file = tmp_path / "eval.json"
    eval_file.write_text(json.dumps(EVAL_RESULTS))
    Dataset.from_dict(_records(4), features=_features()).save_to_disk(str(tmp_path / "ds"))
    caplog.set_level(logging.DEBUG)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_debug()
    try:
        assert _run_cli(["push", "model", str(checkpoint["dir"]), "--repo-id", f"{ORG}/cli-model", "--stage", "dpo",
                         "--eval-results", str(eval_file), "--base-model", f"{ORG}/deepomni-tiny-joint",
                         "--private", "--revision", "dpo"]) == 0  # fmt: skip
        assert _run_cli(["push", "dataset", str(tmp_path / "ds"), "--repo-id", f"{ORG}/cli-data", "--stage", "dpo",
                         "--license", "cc-by-4.0"]) == 0  # fmt: skip
        assert _run_cli(["push", "model", str(checkpoint["dir"]), "--repo-id", f"{ORG}/cli-dry", "--dry-run"]) == 0
        assert _run_cli(["push", "model", str(checkpoint["dir"]), "--repo-id", "not-a-repo-id"]) == 1
    finally:
        hf_logging.set_verbosity(verbosity)
    out, err = capfd.readouterr()
    assert f"{hub.endpoint}/{ORG}/cli-model" in out and f"{hub.endpoint}/datasets/{ORG}/cli-data" in out
    assert "would upload" in out and "pipeline_tag: any-to-any" in out  # the dry run printed the card and files
    assert "Invalid repo id 'not-a-repo-id'" in err
    assert not any(c["repo_id"] == f"{ORG}/cli-dry" for c in hub.commits)
    (commit,) = hub.commits_for(f"{ORG}/cli-model")
    assert commit["revision"] == "dpo" and hub.repo(f"{ORG}/cli-model").private
    readme = hub.read(hub.repo(f"{ORG}/cli-model").resolve("dpo").files["README.md"]).read_text()
    assert "base_model: deepomni-test/deepomni-tiny-joint" in readme and "value: 5.1" in readme
    for text in (out, err, caplog.text, json.dumps(hub.requests), json.dumps(hub.commits)):
        assert TOKEN not in text
    assert not hub.storage_saw_authorization and not hub.unhandled


def test_writes_without_a_valid_token_are_refused(hub, checkpoint, monkeypatch):
    from huggingface_hub.errors import HfHubHTTPError

    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(HfHubHTTPError) as error:
        push_model(checkpoint["dir"], f"{ORG}/refused")
    assert error.value.response.status_code == 401 and "hf_wrong" not in str(error.value)
    assert (("model", f"{ORG}/refused")) not in hub.repos


def test_bad_inputs_raise_clear_errors(tmp_path, checkpoint):
    config = checkpoint["config"]
    with pytest.raises(FileNotFoundError, match="Checkpoint folder not found"):
        push_model(tmp_path / "missing", f"{ORG}/x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        push_model(tmp_path / "empty", f"{ORG}/x")
    no_weights = _fake_checkpoint(tmp_path / "no-weights", config, {})
    with pytest.raises(FileNotFoundError, match="expected model.safetensors"):
        push_model(no_weights, f"{ORG}/x")
    index = json.dumps(SHARD_INDEX).encode()
    sharded = _fake_checkpoint(tmp_path / "sharded", config, {"model.safetensors.index.json": index, SHARDS[0]: b"0"})
    with pytest.raises(FileNotFoundError, match="missing weight shard.*model-00002-of-00002.safetensors"):
        push_model(sharded, f"{ORG}/x")
    other = _fake_checkpoint(tmp_path / "other", config, {"model.safetensors": b"0"})
    (other / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="model_type 'llama'"):
        push_model(other, f"{ORG}/x")
    for repo_id in ("no-namespace", "a/b/c", "org/bad--name", "org/", "org/name.git"):
        with pytest.raises(ValueError, match="Invalid repo id"):
            push_model(checkpoint["dir"], repo_id)
    with pytest.raises(ValueError, match="unknown field"):
        push_model(checkpoint["dir"], f"{ORG}/x", eval_results=[{"task_type": "x", "wer": 1}])
    with pytest.raises(FileNotFoundError, match="Evaluation results file not found"):
        push_model(checkpoint["dir"], f"{ORG}/x", eval_results=str(tmp_path / "nope.json"))
    (tmp_path / "not-a-dataset").mkdir()
    with pytest.raises(FileNotFoundError, match="not a datasets save_to_disk folder.*dataset_info.json / state.json"):
        push_dataset(tmp_path / "not-a-dataset", f"{ORG}/x")
    with pytest.raises(FileNotFoundError, match="Dataset folder not found"):
        push_dataset(tmp_path / "missing", f"{ORG}/x")

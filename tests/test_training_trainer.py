"""DeepOmniTrainer: per-stream loss logging, the stage plan inside Trainer, and exact resume from a checkpoint."""

import json
import math
from pathlib import Path

import datasets
import pytest
import torch
import yaml
from training_helpers import (
    snapshot,
    speech_examples,
    text_examples,
    tiny_model,
    tiny_processor,
)
from tiny_models import TINY_SPEECH_EXPERTS
from transformers import TrainingArguments

from deepomni_hf.processors import DeepOmniDataCollator
from deepomni_hf.training import DeepOmniTrainer, load_stage_dataset
from deepomni_hf.training.trainer import STREAM_METRICS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset():
    examples = speech_examples(3) + text_examples(3)
    return datasets.Dataset.from_list(examples)


def make_trainer(output_dir, dataset, max_steps=4, save_steps=2):
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        weight_decay=0.1,
        max_steps=max_steps,
        save_steps=save_steps,
        logging_steps=1,
        seed=7,
        data_seed=7,
        lr_scheduler_type="linear",
        warmup_steps=1,
        use_cpu=True,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=True,
        save_only_model=False,
    )
    return DeepOmniTrainer(
        tiny_model(),
        args,
        train_dataset=dataset,
        data_collator=DeepOmniDataCollator(tiny_processor()),
        stage="speech",
    )


def losses(trainer):
    return {entry["step"]: entry for entry in trainer.state.log_history if "loss" in entry}


def test_trainer_logs_stream_losses_freezes_text_experts_and_resumes_exactly(dataset, tmp_path):
    before = snapshot(tiny_model())
    full = make_trainer(tmp_path / "full", dataset)
    full.train()
    logs = losses(full)
    assert sorted(logs) == [1, 2, 3, 4]
    for entry in logs.values():
        assert "loss_text" in entry and "aux_loss" in entry
        assert all(math.isfinite(entry[name]) for name in (*STREAM_METRICS, "aux_loss") if name in entry)
    # NaN-safe: a step whose batch had no audio targets logs no slot losses (rather than NaN).
    with_audio = [step for step, entry in logs.items() if "loss_slot0" in entry]
    assert with_audio and set(STREAM_METRICS) <= set(logs[with_audio[0]])
    # The plan held inside Trainer (weight decay 0.1): text experts and MoE attention bit-identical,
    # speech experts moved.
    params = dict(full.model.named_parameters())
    for layer in (1, 2):
        name = f"model.language_model.layers.{layer}.mlp.experts.gate_up_proj"
        for expert in range(8):
            unchanged = torch.equal(params[name][expert], before[name][expert])
            assert unchanged == (expert not in TINY_SPEECH_EXPERTS[layer]), (layer, expert)
        attention = f"model.language_model.layers.{layer}.self_attn.q_proj.weight"
        assert torch.equal(params[attention], before[attention])

    resumed = make_trainer(tmp_path / "resumed", dataset)
    output = resumed.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-2"))
    resumed_logs = losses(resumed)  # steps 1-2 come from the checkpoint's trainer_state.json
    assert sorted(resumed_logs) == [1, 2, 3, 4] and output.global_step == 4
    for step in (3, 4):
        assert set(resumed_logs[step]) == set(logs[step])
        for key in ("loss", *STREAM_METRICS, "aux_loss"):
            assert resumed_logs[step].get(key) == logs[step].get(key), (step, key)
    for name, param in full.model.named_parameters():
        assert torch.equal(param, dict(resumed.model.named_parameters())[name]), name


def test_stage_dataset_loading_accepts_layouts_and_conversations(tmp_path):
    from training_helpers import spoken_qa, text_qa

    laid_out = datasets.Dataset.from_list(speech_examples(1) + text_examples(1))
    laid_out.save_to_disk(tmp_path / "laid_out")
    loaded = load_stage_dataset(tmp_path / "laid_out")
    assert loaded.column_names == laid_out.column_names and len(loaded) == 2

    # Conversations: audio arrays and codes come back from Arrow as lists; they are laid out on the fly.
    conversations = [spoken_qa(0), text_qa(0)]
    for message in conversations[0]:
        for item in message["content"]:
            if item["type"] == "audio":
                item["audio"] = {"array": item["audio"].tolist(), "sampling_rate": item.pop("sampling_rate")}
            if item["type"] == "audio_codes":
                item["codes"] = item["codes"].tolist()
    conversations[1] = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]}
                        for m in conversations[1]]  # fmt: skip
    datasets.Dataset.from_list([{"messages": c} for c in conversations]).save_to_disk(tmp_path / "chats")
    with pytest.raises(ValueError, match="DeepOmniProcessor"):
        load_stage_dataset(tmp_path / "chats")
    chats = load_stage_dataset(tmp_path / "chats", tiny_processor())
    collator = DeepOmniDataCollator(tiny_processor())
    from_chats = collator([chats[0], chats[1]])
    from_layout = collator([loaded[0], loaded[1]])
    for key in ("input_ids", "labels", "attention_mask", "input_features"):
        assert torch.equal(from_chats[key], from_layout[key]), key


def test_accelerate_and_deepspeed_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    configs = sorted((ROOT / "examples" / "accelerate_configs").glob("*.yaml"))
    assert {c.name for c in configs} >= {"ddp.yaml", "cpu_ddp.yaml", "fsdp.yaml", "deepspeed_zero2.yaml"}
    for path in configs:
        config = load_config_from_file(str(path))
        assert config.num_processes >= 2, path.name
        raw = yaml.safe_load(path.read_text())
        if raw["distributed_type"] == "DEEPSPEED":
            ds = json.loads((ROOT / raw["deepspeed_config"]["deepspeed_config_file"]).read_text())
            assert ds["zero_optimization"]["stage"] in (2, 3)
        if raw["distributed_type"] == "FSDP":
            assert "DeepOmniDecoderLayer" in raw["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"]

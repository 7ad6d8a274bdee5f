"""`accelerate launch` of examples/train_stage.py with two CPU processes (gloo): the replicas stay identical."""

import os
import subprocess
import sys
from pathlib import Path

import datasets
import torch
from training_helpers import (
    snapshot,
    speech_examples,
    tensor_hash,
    text_examples,
    tiny_model,
    tiny_processor,
)
from tiny_models import TINY_SPEECH_EXPERTS

from deepomni_hf import DeepOmniForConditionalGeneration

ROOT = Path(__file__).resolve().parents[1]


def test_accelerate_launch_two_cpu_processes_keeps_replicas_identical(tmp_path):
    model = tiny_model()
    before = snapshot(model)
    model.save_pretrained(tmp_path / "ckpt")
    tiny_processor().save_pretrained(tmp_path / "ckpt")
    datasets.Dataset.from_list(speech_examples(2) + text_examples(2)).save_to_disk(tmp_path / "data")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "examples" / "accelerate_configs" / "cpu_ddp.yaml"),
        "--num_processes", "2", "--num_cpu_threads_per_process", "1",
        str(ROOT / "examples" / "train_stage.py"),
        "--stage", "speech", "--model", str(tmp_path / "ckpt"), "--data", str(tmp_path / "data"),
        "--output", str(out), "--max-steps", "2", "--batch-size", "1", "--learning-rate", "1e-3",
        "--weight-decay", "0.1", "--warmup", "0", "--logging-steps", "1", "--save-steps", "100",
        "--state-hash",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    hashes = [(out / f"state_hash_rank{rank}.txt").read_text().strip() for rank in (0, 1)]
    assert hashes[0] == hashes[1], "the two replicas diverged"
    assert hashes[0] != tensor_hash(model), "nothing was trained"
    trained = DeepOmniForConditionalGeneration.from_pretrained(out)
    assert tensor_hash(trained) == hashes[0]
    params = dict(trained.named_parameters())
    for layer in (1, 2):
        name = f"model.language_model.layers.{layer}.mlp.experts.gate_up_proj"
        for expert in range(8):
            assert torch.equal(params[name][expert], before[name][expert]) == (
                expert not in TINY_SPEECH_EXPERTS[layer]
            ), (layer, expert)

"""Training throughput of DeepOmni's stage plans: `speech` (speech experts only, MoE attention and text experts frozen)
against `joint` (everything but Whisper and the adapter) — and `text` — on the same model and batches.

Reference: the `joint` stage is ordinary full fine-tuning of the backbone; the question is what the modality stage's
frozen tensors and masked expert rows save (or cost: gradient masks, restoring the frozen rows around every AdamW
step).

Model: hidden 256, 8 layers (layer 0 dense), 16 routed experts top-4 (8 speech experts per layer), 2 shared experts,
MLA attention, a 2-layer Whisper (d_model 128), text vocabulary 8,000 (+ 64 specials + 7 × 4,160 audio ids).
Batches: spoken QA in DeepOmni's 8-stream layout (prompt text, a 2-second spoken question = 103 positions, a text
answer with a staircase of 40 SNAC frames), 4 per step. AdamW, weight decay 0.1, fp32.

Timing: the modes' steps are interleaved in one process (machine drift hits all alike); wall time and process CPU time
are both reported (CPU time is steadier on a shared machine). Memory: each mode alone in a subprocess (peak RSS, and
peak CUDA memory on a GPU).

    python benchmarks/train_step.py                    # CPU, or the GPU when there is one
    python benchmarks/train_step.py --rounds 10 --device cuda --dtype bfloat16

Writes `benchmarks/results/train_step.json` (temporary file, then rename).
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers

RESULTS = Path(__file__).parent / "results" / "train_step.json"
MODES = ("speech", "text", "joint")
TEXT = dict(
    hidden_size=256, intermediate_size=1024, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
    kv_lora_rank=64, q_lora_rank=None, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32,
    n_routed_experts=16, num_experts_per_tok=4, moe_intermediate_size=256, n_shared_experts=2,
    first_k_dense_replace=1, max_position_embeddings=4096, bos_token_id=1, eos_token_id=2,
)  # fmt: skip
AUDIO = dict(d_model=128, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=512, decoder_layers=1,
             decoder_attention_heads=4, decoder_ffn_dim=512, num_mel_bins=80, max_source_positions=1500)  # fmt: skip


def build_config(text_vocab_size=8000):
    from deepomni_hf import DeepOmniConfig

    speech = [[]] + [list(range(0, 16, 2)) for _ in range(7)]
    return DeepOmniConfig(
        text_config=dict(TEXT, speech_experts=speech),
        audio_config=AUDIO,
        codec_config=dict(encoder_dim=8, decoder_dim=16),
        adapter_intermediate_size=512,
        text_vocab_size=text_vocab_size,
    )


def spoken_qa_layout(config, rng, prompt=16, seconds=2.0, answer=24, frames=40):
    """One spoken-QA example laid out like DeepOmniProcessor does (random text ids instead of a tokenizer); the answer
    block and its targets come from the processor's own layout code."""
    from deepomni_hf.processors import StreamVocabulary, drop_filler_targets, layout_answer

    pad_a = [config.audio_token_id("PAD_A", s) for s in range(7)]
    rows, labels = [], []

    def text_rows(ids):
        for token in ids:
            rows.append(pad_a + [int(token)])
            labels.append([-100] * 8)

    text_rows(rng.integers(0, config.text_vocab_size, prompt // 2))
    n = int(seconds * 50) + 1
    for i in range(n + 2):
        slots = [config.audio_token_id("BOA" if i == 0 else "EOA", s) for s in range(7)] if i in (0, n + 1) else pad_a
        rows.append(slots + [config.audio_placeholder_id])
        labels.append([-100] * 8)
    text_rows(rng.integers(0, config.text_vocab_size, prompt - prompt // 2))
    rows[-1][:7] = [config.audio_token_id("ANS_A", s) for s in range(7)]
    vocab = StreamVocabulary.from_config(config)
    block = layout_answer(vocab, rng.integers(0, config.text_vocab_size, answer), rng.integers(0, config.codebook_size, (frames, 7)))
    ids = np.concatenate([np.array(rows, dtype=np.int64), block])
    lab = np.concatenate([np.array(labels, dtype=np.int64), drop_filler_targets(block, vocab)])
    return ids, lab


def make_batch(config, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    examples = [spoken_qa_layout(config, rng) for _ in range(batch_size)]
    length = max(len(ids) for ids, _ in examples)
    pad_row = [config.audio_token_id("PAD_A", s) for s in range(7)] + [config.text_token_id("PAD_T")]
    input_ids = np.tile(np.array(pad_row, dtype=np.int64), (batch_size, length, 1))
    labels = np.full((batch_size, length, 8), -100, dtype=np.int64)
    mask = np.zeros((batch_size, length), dtype=np.int64)
    for row, (ids, lab) in enumerate(examples):
        input_ids[row, : len(ids)], labels[row, : len(ids)], mask[row, : len(ids)] = ids, lab, 1
    return {
        "input_ids": torch.from_numpy(input_ids),
        "labels": torch.from_numpy(labels),
        "attention_mask": torch.from_numpy(mask),
        "input_features": torch.randn(batch_size, 80, 3000, generator=torch.Generator().manual_seed(seed)),
    }


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class ModeRun:
    """One stage plan on its own copy of the model (same seed, same batch), with its AdamW."""

    def __init__(self, mode, config, batch, device, dtype):
        from deepomni_hf import DeepOmniForConditionalGeneration
        from deepomni_hf.training import apply_stage_plan

        torch.manual_seed(0)
        self.mode, self.device = mode, device
        self.model = DeepOmniForConditionalGeneration(config).to(device, dtype)
        self.report = apply_stage_plan(self.model, mode, verbose=False)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)
        self.report.attach_optimizer(self.optimizer)
        self.batch = batch
        self.wall, self.cpu = [], []

    def step(self, record=True) -> float:
        wall, cpu = time.perf_counter(), time.process_time()
        loss = self.model(**self.batch, output_router_logits=True).loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        if record:
            self.wall.append(time.perf_counter() - wall)
            self.cpu.append(time.process_time() - cpu)
        return float(loss.detach())


def prepare(args):
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    config = build_config(args.text_vocab_size)
    batch = {k: v.to(device) for k, v in make_batch(config, args.batch_size).items()}
    batch["input_features"] = batch["input_features"].to(dtype)
    return config, batch, device, dtype


def memory_worker(args) -> dict:
    """Peak memory of one mode, alone in its process: setup, warm-up and two steps."""
    config, batch, device, dtype = prepare(args)
    rss_before = rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run = ModeRun(args.worker, config, batch, device, dtype)
    for _ in range(3):
        run.step(record=False)
    result = {
        "rss_before_model_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    result["peak_rss_increase_mb"] = result["peak_rss_mb"] - rss_before
    if device.type == "cuda":
        result["peak_cuda_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per mode, interleaved across modes")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--text-vocab-size", type=int, default=8000)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(memory_worker(args)))
        return

    memory = {}
    for mode in args.modes:
        command = [sys.executable, __file__, "--worker", mode, "--batch-size", str(args.batch_size), "--device",
                   args.device, "--dtype", args.dtype, "--text-vocab-size", str(args.text_vocab_size)]  # fmt: skip
        memory[mode] = json.loads(
            subprocess.run(command, check=True, capture_output=True, text=True).stdout.split("\n")[-2]
        )

    config, batch, device, dtype = prepare(args)
    tokens = int(batch["attention_mask"].sum())
    targets = {  # per stream, after the model's shift (what the loss averages over)
        "text": int((batch["labels"][:, 1:, 7] != -100).sum()),
        "audio_slots": int((batch["labels"][:, 1:, :7] != -100).sum()),
    }
    runs = {mode: ModeRun(mode, config, batch, device, dtype) for mode in args.modes}
    for run in runs.values():
        for _ in range(args.warmup):
            run.step(record=False)
    for _ in range(args.rounds):  # interleaved, so machine drift hits every mode alike
        for run in runs.values():
            run.step()
    results = {}
    for mode, run in runs.items():
        wall, cpu = statistics.median(run.wall), statistics.median(run.cpu)
        results[mode] = {
            "trainable_parameters": run.report.trainable_parameters,
            "total_parameters": run.report.total_parameters,
            "tokens_per_step": tokens,
            "step_wall_seconds_median": wall,
            "step_cpu_seconds_median": cpu,
            "tokens_per_second": tokens / wall,
            "tokens_per_cpu_second": tokens / cpu,
            "step_wall_seconds_all": run.wall,
            **memory[mode],
        }
        r = results[mode]
        mem = f"peak RSS +{r['peak_rss_increase_mb']:.0f} MB"
        if "peak_cuda_allocated_mb" in r:
            mem = f"peak CUDA {r['peak_cuda_allocated_mb']:.0f} MB"
        print(
            f"{mode:7s} {r['tokens_per_second']:8.1f} tokens/s wall, {r['tokens_per_cpu_second']:8.1f} tokens/CPU-s "
            f"({wall * 1000:.0f} ms/step; {r['trainable_parameters']:,} trainable; {mem})"
        )
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(0)
    else:
        device_name = f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    report = {
        "benchmark": "training tokens/s of the stage plans (speech vs joint) on the same model and batches",
        "reference": "joint = full fine-tuning of the backbone (everything but Whisper and the adapter)",
        "config": {
            "text": TEXT,
            "audio": AUDIO,
            "text_vocab_size": args.text_vocab_size,
            "speech_experts_per_layer": 8,
            "batch_size": args.batch_size,
            "dtype": args.dtype,
            "optimizer": "AdamW lr 1e-4 wd 0.1",
            "tokens_per_step": tokens,
            "targets_per_step": targets,
        },
        "device": device_name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "rounds": args.rounds,
        "timing": "median over interleaved rounds; tokens = non-padding positions (targets: labels that are not "
        "-100, DESIGN §3: answer text + EOT, each slot's codes + EOA); memory: each mode alone in a "
        "subprocess (peak RSS increase over the process before the model was built)",
        "results": results,
    }
    if "speech" in results and "joint" in results:
        for key in ("tokens_per_second", "tokens_per_cpu_second"):
            report[f"speech_over_joint_{key}"] = results["speech"][key] / results["joint"][key]
        print(
            f"speech / joint: {report['speech_over_joint_tokens_per_second']:.2f}x wall, "
            f"{report['speech_over_joint_tokens_per_cpu_second']:.2f}x CPU time"
        )
    write_report(args.output, report)


def write_report(path: Path, report: dict) -> None:
    """Writes a results JSON through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

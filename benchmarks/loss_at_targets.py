"""The training loss from the head rows at targeted positions only (`forward(labels=..., return_logits=False)`, what
`DeepOmniTrainer` uses) against the same forward + backward with full logits (reference: `return_logits=True`, the
`[positions, 33 k ids]` heads the trainer ran before), on DeepOmni-Tiny's shapes.

Model (random, seeded): the recipe's (examples/tiny) backbone — hidden 256, 6 layers (layer 0 dense, width 512), 16
routed experts top-2 + 2 shared (width 64), MLA (4 heads, kv rank 64) — text vocabulary 4,096 (+ 64 specials + 7 ×
4,160 audio ids), Whisper tiny.en's shape (d_model 384, 4 layers), adapter width 512, the `tiny` codec preset.
Batches: `--batch-size` conversations of the closed-domain QA corpus (`deepomni_hf.data.spoken_qa`), laid out by the
real processor (examples/tiny/base-llm's tokenizer, `layout_conversation` + `DeepOmniDataCollator`), one per stage:
`alignment` (a 2-second spoken question -> its transcript), `speech` (spoken question -> text answer + 8 SNAC frames),
`text` (written question -> text answer); each under its stage plan, with the router balance loss as in training.
Questions are noise of the right length: content does not change the cost.

Timing: forward + backward, both variants interleaved in one process for `--rounds` rounds after a warm-up; median
process CPU time and wall time. The losses of the two variants must agree (allclose) or the script fails.

    python benchmarks/loss_at_targets.py [--rounds 5] [--batch-size 8]

Writes `benchmarks/results/loss_at_targets.json` (temporary file, then rename).
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers

sys.path.insert(0, str(Path(__file__).parent))
from audio_encoder_cache import AUDIO, TEXT  # noqa: E402  (DeepOmni-Tiny's backbone and Whisper tiny.en shapes)
from train_step import write_report  # noqa: E402  (atomic JSON)

RESULTS = Path(__file__).parent / "results" / "loss_at_targets.json"
TOKENIZER = Path(__file__).parents[1] / "examples" / "tiny" / "base-llm"
SHAPES = ("alignment", "speech", "text")
SR = 16000


def build_model(stage: str):
    from deepomni_hf import DeepOmniConfig, DeepOmniForConditionalGeneration
    from deepomni_hf.training import apply_stage_plan
    from deepomni_hf.training.codec import CODEC_PRESETS

    config = DeepOmniConfig(
        text_config=dict(TEXT, speech_experts=[[]] + [list(range(0, 16, 2)) for _ in range(5)]),
        audio_config=AUDIO, codec_config=CODEC_PRESETS["tiny"], adapter_intermediate_size=512, text_vocab_size=4096,
    )  # fmt: skip
    torch.manual_seed(0)
    model = DeepOmniForConditionalGeneration(config)
    apply_stage_plan(model, stage, verbose=False)
    return model.train()


def conversation(stage: str, item, rng) -> list[dict]:
    from deepomni_hf.pipelines.speech_to_speech import ASR_INSTRUCTION

    spoken = {"type": "audio", "audio": (0.1 * rng.standard_normal(2 * SR)).astype(np.float32), "sampling_rate": SR}
    if stage == "alignment":
        return [{"role": "system", "content": ASR_INSTRUCTION}, {"role": "user", "content": [spoken]},
                {"role": "assistant", "content": item.question}]  # fmt: skip
    if stage == "speech":
        codes = rng.integers(0, 4096, size=(8, 7))
        return [{"role": "user", "content": [spoken]},
                {"role": "assistant", "content": [{"type": "text", "text": item.answer},
                                                  {"type": "audio_codes", "codes": codes}]}]  # fmt: skip
    return [{"role": "user", "content": item.question}, {"role": "assistant", "content": item.answer}]


def make_batch(stage: str, config, batch_size: int) -> dict[str, torch.Tensor]:
    from deepomni_hf.data.spoken_qa import spoken_qa_items
    from deepomni_hf.processors import DeepOmniDataCollator, DeepOmniProcessor
    from deepomni_hf.training.data import layout_conversation

    processor = DeepOmniProcessor.from_model_config(config, transformers.AutoTokenizer.from_pretrained(TOKENIZER))
    rng = np.random.default_rng(0)
    items = spoken_qa_items()
    chosen = [items[i] for i in rng.choice(len(items), batch_size, replace=False)]
    examples = [layout_conversation(processor, conversation(stage, item, rng)) for item in chosen]
    return DeepOmniDataCollator(processor)(examples)


def step(model, batch, return_logits: bool) -> tuple[float, float, float]:
    """Forward + backward; returns (loss, wall seconds, CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    loss = model(**batch, output_router_logits=True, return_logits=return_logits).loss
    loss.backward()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    model.zero_grad(set_to_none=True)
    return float(loss.detach()), wall, cpu


def measure(stage: str, args) -> dict:
    model = build_model(stage)
    batch = make_batch(stage, model.config, args.batch_size)
    runs = {"full_logits": True, "at_targets": False}
    times = {name: {"wall": [], "cpu": [], "loss": []} for name in runs}
    for round_ in range(args.warmup + args.rounds):
        for name, return_logits in runs.items():  # interleaved: machine drift hits both alike
            loss, wall, cpu = step(model, batch, return_logits)
            times[name]["loss"].append(loss)
            if round_ >= args.warmup:
                times[name]["wall"].append(wall)
                times[name]["cpu"].append(cpu)
    full, fast = times["full_logits"], times["at_targets"]
    if not np.allclose(full["loss"], fast["loss"], rtol=1e-5, atol=1e-6):
        raise SystemExit(f"{stage}: losses differ: full logits {full['loss']} vs at targets {fast['loss']}")
    labels = batch["labels"][:, 1:]
    result = {
        "positions": int(batch["attention_mask"].sum()),
        "padded_positions": int(batch["attention_mask"].numel()),
        "text_targets": int((labels[..., 7] != -100).sum()),
        "audio_slot_targets": int((labels[..., :7] != -100).sum()),
        "loss": full["loss"][0],
        "max_loss_difference": max(abs(a - b) for a, b in zip(full["loss"], fast["loss"])),
    }
    for name, t in times.items():
        result[name] = {"step_cpu_seconds_median": statistics.median(t["cpu"]),
                        "step_wall_seconds_median": statistics.median(t["wall"]), "step_cpu_seconds_all": t["cpu"]}  # fmt: skip
    for key in ("cpu", "wall"):
        result[f"speedup_{key}"] = (
            result["full_logits"][f"step_{key}_seconds_median"] / result["at_targets"][f"step_{key}_seconds_median"]
        )
    print(f"{stage:9s} full logits {result['full_logits']['step_cpu_seconds_median']:.2f} s CPU, at targets "
          f"{result['at_targets']['step_cpu_seconds_median']:.2f} s: x{result['speedup_cpu']:.2f} CPU, "
          f"x{result['speedup_wall']:.2f} wall (loss {result['loss']:.4f}, max difference "
          f"{result['max_loss_difference']:.1e})", flush=True)  # fmt: skip
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per variant, interleaved")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = {stage: measure(stage, args) for stage in args.shapes}
    report = {
        "benchmark": "training forward + backward with the loss from the head rows at targeted positions only",
        "reference": "full_logits = forward(labels, return_logits=True): both heads over every position (the trainer "
        "before commit d8cac1d)",
        "config": {"text": TEXT, "audio": AUDIO, "text_vocab_size": 4096, "adapter_intermediate_size": 512,
                   "codec": "tiny preset", "batch_size": args.batch_size, "dtype": "float32",
                   "stage_plans": "each shape under its own stage plan; router balance loss on"},  # fmt: skip
        "device": f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "rounds": args.rounds,
        "timing": "median over interleaved rounds after a warm-up; process CPU time and wall time of forward + "
        "backward (no optimizer step)",
        "results": results,
    }
    write_report(args.output, report)


if __name__ == "__main__":
    main()

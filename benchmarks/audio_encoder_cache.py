"""A training step with Whisper's output cached (`audio_encoder_outputs`) against the same step with `input_features`
(reference: the Whisper pass on every step), on DeepOmni-Tiny's shapes.

Whisper is frozen in every stage, so `deepomni layout-dataset --cache-audio-encoder` stores its output for the frames
each speech span reads and training skips the encoder (`deepomni_hf.training.audio_cache`). Model: the recipe's
(examples/tiny): backbone hidden 256, 6 layers (layer 0 dense), 16 routed experts top-2 + 2 shared, MLA; text
vocabulary 4,096 (+ 64 specials + 7 × 4,160 audio ids); Whisper tiny.en's shape (d_model 384, 4 layers, 6 heads);
adapter width 1,024. Batch: `--batch-size` spoken-QA examples (default 8), each a 2-second question (101 frames) and
an answer of 8 text tokens and 10 SNAC frames; `speech` stage plan, AdamW. Steps of both kinds are interleaved in one
process; wall and CPU time.

    python benchmarks/audio_encoder_cache.py [--rounds 5] [--threads 2]

Writes `benchmarks/results/audio_encoder_cache.json` (temporary file, then rename).
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
from train_step import spoken_qa_layout, write_report  # noqa: E402  (8-stream examples; atomic JSON)

RESULTS = Path(__file__).parent / "results" / "audio_encoder_cache.json"
TEXT = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=4,
            kv_lora_rank=64, q_lora_rank=None, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32,
            n_routed_experts=16, num_experts_per_tok=2, n_shared_experts=2, moe_intermediate_size=64,
            first_k_dense_replace=1, max_position_embeddings=4096, bos_token_id=0, eos_token_id=1)  # fmt: skip
AUDIO = dict(d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536, decoder_layers=1,
             decoder_attention_heads=6, decoder_ffn_dim=1536, num_mel_bins=80, max_source_positions=1500)  # fmt: skip


def build(args):
    from deepomni_hf import DeepOmniConfig, DeepOmniForConditionalGeneration
    from deepomni_hf.training import apply_stage_plan

    config = DeepOmniConfig(
        text_config=dict(TEXT, speech_experts=[[]] + [list(range(0, 16, 2)) for _ in range(5)]),
        audio_config=AUDIO, codec_config=dict(encoder_dim=8, decoder_dim=16), adapter_intermediate_size=1024,
        text_vocab_size=4096,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    examples = [spoken_qa_layout(config, rng, prompt=12, seconds=2.0, answer=8, frames=10) for _ in range(args.batch_size)]
    length = max(len(ids) for ids, _ in examples)
    pad_row = [config.audio_token_id("PAD_A", s) for s in range(7)] + [config.text_token_id("PAD_T")]
    input_ids = np.tile(np.array(pad_row, dtype=np.int64), (args.batch_size, length, 1))
    labels = np.full((args.batch_size, length, 8), -100, dtype=np.int64)
    mask = np.zeros((args.batch_size, length), dtype=np.int64)
    for row, (ids, lab) in enumerate(examples):
        input_ids[row, : len(ids)], labels[row, : len(ids)], mask[row, : len(ids)] = ids, lab, 1
    batch = {"input_ids": torch.from_numpy(input_ids), "labels": torch.from_numpy(labels),
             "attention_mask": torch.from_numpy(mask)}  # fmt: skip
    features = torch.randn(args.batch_size, 80, 3000, generator=torch.Generator().manual_seed(0))
    runs = {}
    for name in ("input_features", "audio_encoder_outputs"):
        torch.manual_seed(0)
        model = DeepOmniForConditionalGeneration(config)
        report = apply_stage_plan(model, "speech", verbose=False)
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.1)
        report.attach_optimizer(optimizer)
        if name == "input_features":
            inputs = {**batch, "input_features": features}
        else:
            from deepomni_hf.training.audio_cache import speech_span_frames

            frames = speech_span_frames(input_ids[0], config)[0]  # every example's question lasts 2 s
            with torch.no_grad():
                model.model.audio_tower.eval()
                cached = model.model.audio_tower(features).last_hidden_state[:, :frames].clone()
                model.model.audio_tower.train()
            inputs = {**batch, "audio_encoder_outputs": cached}
        runs[name] = {"model": model, "optimizer": optimizer, "inputs": inputs, "wall": [], "cpu": [], "loss": []}
    return runs, int(mask.sum())


def step(run, record=True):
    wall, cpu = time.perf_counter(), time.process_time()
    loss = run["model"](**run["inputs"], output_router_logits=True).loss
    loss.backward()
    run["optimizer"].step()
    run["optimizer"].zero_grad(set_to_none=True)
    if record:
        run["wall"].append(time.perf_counter() - wall)
        run["cpu"].append(time.process_time() - cpu)
    run["loss"].append(float(loss.detach()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs, positions = build(args)
    for run in runs.values():
        step(run, record=False)  # warm-up
    for _ in range(args.rounds):
        for run in runs.values():
            step(run)
    reference, cached = runs["input_features"], runs["audio_encoder_outputs"]
    results = {
        name: {"step_wall_seconds_median": statistics.median(r["wall"]), "step_cpu_seconds_median": statistics.median(r["cpu"]),
               "step_wall_seconds_all": r["wall"], "losses": r["loss"]}  # fmt: skip
        for name, r in runs.items()
    }
    speedup_wall = results["input_features"]["step_wall_seconds_median"] / results["audio_encoder_outputs"]["step_wall_seconds_median"]
    speedup_cpu = results["input_features"]["step_cpu_seconds_median"] / results["audio_encoder_outputs"]["step_cpu_seconds_median"]
    max_loss_difference = max(abs(a - b) for a, b in zip(reference["loss"], cached["loss"]))
    report = {
        "benchmark": "training step (speech stage) with Whisper's output cached vs input_features",
        "reference": "input_features: the frozen Whisper encoder runs on every step over the 30 s padded input",
        "config": {"text": TEXT, "audio": AUDIO, "adapter_intermediate_size": 1024, "text_vocab_size": 4096,
                   "batch_size": args.batch_size, "positions_per_step": positions, "question_seconds": 2.0},  # fmt: skip
        "device": f"CPU {platform.processor() or platform.machine()}, {args.threads} threads",
        "load_average_at_end": os.getloadavg(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "rounds": args.rounds,
        "results": results,
        "speedup_wall": speedup_wall,
        "speedup_cpu": speedup_cpu,
        "max_abs_loss_difference": max_loss_difference,
    }
    print(f"input_features {results['input_features']['step_wall_seconds_median']:.2f} s/step, cached "
          f"{results['audio_encoder_outputs']['step_wall_seconds_median']:.2f} s/step: x{speedup_wall:.2f} wall, "
          f"x{speedup_cpu:.2f} CPU; max |loss difference| {max_loss_difference:.2e}")  # fmt: skip
    write_report(args.output, report)


if __name__ == "__main__":
    main()

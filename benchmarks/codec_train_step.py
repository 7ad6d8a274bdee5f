"""Codec training step: `deepomni train-codec`'s step (fused Snake, VQ losses around snac's quantizer) against the
same step on the same model built from `snac`'s own modules (`snac.SNAC`, its scripted Snake).

Model: the `tiny` preset (0.51 M parameters: encoder_dim 8, decoder_dim 128, rates [2,4,8,8] / [8,8,4,2],
vq_strides [4,2,1], codebook 4096), the codec shipped with DeepOmni-Tiny. Batch 6 x 0.512 s at 24 kHz (the shipped
run's), losses: multi-resolution mel + waveform L1 + codebook + commitment; AdamW. Both models start from the same
weights. Timing: the two steps are interleaved in one process (machine drift hits both alike); wall time and process
CPU time are reported, and the ratio reference / ours (> 1: ours is faster).

    python benchmarks/codec_train_step.py [--rounds 6 --steps 2 --threads 1]

Writes `benchmarks/results/codec_train_step.json` (temporary file, then rename).
"""

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

RESULTS = Path(__file__).parent / "results" / "codec_train_step.json"


def build(kind: str):
    from deepomni_hf import DeepOmniCodecConfig, DeepOmniCodecModel
    from deepomni_hf.training.codec import CODEC_PRESETS, fuse_snake

    torch.manual_seed(0)
    ours = DeepOmniCodecModel(DeepOmniCodecConfig(**CODEC_PRESETS["tiny"]))
    if kind == "ours":
        fuse_snake(ours)
        return ours
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from snac import SNAC
    reference = SNAC(**ours.config.to_snac_kwargs())
    reference.load_state_dict(ours.state_dict())
    return reference


def make_step(model, mel_loss):
    from deepomni_hf.training.codec import quantize_with_losses

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.8, 0.99))

    def step(waveform):
        quantized = quantize_with_losses(model.quantizer, model.encoder(waveform))
        audio = model.decoder(quantized.latents)[..., : waveform.shape[-1]]
        loss = (15 * mel_loss(audio, waveform) + F.l1_loss(audio, waveform) + quantized.codebook_loss
                + 0.25 * quantized.commitment_loss)  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=2, help="steps per mode per round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from deepomni_hf.training.codec.losses import MultiResolutionMelLoss

    mel_loss = MultiResolutionMelLoss(24000)
    generator = torch.Generator().manual_seed(0)
    waveform = 0.1 * torch.randn(6, 1, 12288, generator=generator)
    steps = {kind: make_step(build(kind), mel_loss) for kind in ("snac", "ours")}
    for step in steps.values():  # warm-up (allocator, scripted Snake's profiling runs)
        step(waveform)
        step(waveform)
    wall = {kind: [] for kind in steps}
    cpu = {kind: [] for kind in steps}
    for _ in range(args.rounds):
        for kind, step in steps.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step(waveform)
            wall[kind].append((time.perf_counter() - start_wall) / args.steps)
            cpu[kind].append((time.process_time() - start_cpu) / args.steps)
    result = {
        "benchmark": "codec_train_step",
        "reference": "the same tiny SNAC built from snac's modules (snac.SNAC, scripted Snake)",
        "model": "tiny preset, 0.51 M parameters; batch 6 x 12288 samples; mel + waveform + VQ losses; AdamW",
        "threads": args.threads,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared; load average {os.getloadavg()[0]:.1f} at the end)",
        "seconds_per_step_wall": {kind: round(statistics.median(v), 4) for kind, v in wall.items()},
        "seconds_per_step_cpu": {kind: round(statistics.median(v), 4) for kind, v in cpu.items()},
    }
    result["speedup_wall"] = round(result["seconds_per_step_wall"]["snac"] / result["seconds_per_step_wall"]["ours"], 3)
    result["speedup_cpu"] = round(result["seconds_per_step_cpu"]["snac"] / result["seconds_per_step_cpu"]["ours"], 3)
    RESULTS.parent.mkdir(exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, RESULTS)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

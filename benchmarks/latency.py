"""Speech-to-speech latency of DeepOmni with random weights, against transformers' `DeepseekV2ForCausalLM.generate`.

Measures, after a warm-up, the median over repeated runs of:
  * TTFA — time from the end of the user's audio (a 5-second question) to the first output audio sample: Whisper
    features, prefill (Whisper encoder + adapter + backbone), the 7 decoding steps until the first SNAC frame is
    complete, and the streaming codec decode of that frame;
  * time per decoding step (one step = one 8-stream position = one 85.3 ms audio frame once the staircase is full;
    a speech reply runs 2 rows per step, the audio row and the text row);
  * real-time factor = generation wall time / duration of the audio produced;
  * the reference: `DeepseekV2ForCausalLM.generate` (greedy, KV cache) on the same backbone sizes, in tokens/s, and
    the ratio of DeepOmni's steps/s to it.

    python benchmarks/latency.py                 # small configuration, CPU
    python benchmarks/latency.py --full          # DeepSeek-V2-Lite sizes + Whisper-medium + SNAC 24 kHz (GPU, bf16)

Writes `benchmarks/results/latency.json` (or `latency_full.json` with --full) with the device it ran on.
"""

import argparse
import json
import math
import platform
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import DeepseekV2Config, DeepseekV2ForCausalLM, WhisperFeatureExtractor

from deepomni_hf import DeepOmniConfig, DeepOmniForConditionalGeneration
from deepomni_hf.modeling.configuration_deepomni import TEXT_STREAM
from deepomni_hf.pipelines.streaming import DeepOmniStreamer


RESULTS = Path(__file__).parent / "results"

SMALL = dict(
    text=dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=8, num_attention_heads=8,
              num_key_value_heads=8, kv_lora_rank=128, q_lora_rank=None, qk_nope_head_dim=32, qk_rope_head_dim=16,
              v_head_dim=32, n_routed_experts=16, num_experts_per_tok=4, moe_intermediate_size=256,
              n_shared_experts=2, first_k_dense_replace=1),
    audio=dict(d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536, decoder_layers=1,
               decoder_attention_heads=6, decoder_ffn_dim=1536, num_mel_bins=80, max_source_positions=1500),
    adapter_intermediate_size=2048,
)  # fmt: skip


def build_config(full: bool) -> DeepOmniConfig:
    if full:  # the published system (DESIGN §2), random weights
        return DeepOmniConfig()
    return DeepOmniConfig(
        text_config=SMALL["text"], audio_config=SMALL["audio"], adapter_intermediate_size=SMALL["adapter_intermediate_size"]
    )


def spoken_prompt(config: DeepOmniConfig, num_samples: int) -> torch.LongTensor:
    """`User: <speech>\\n\\nAssistant:` in the 8-stream layout, with the speaker token for a speech reply."""
    frames = math.floor(num_samples / config.audio_sampling_rate * config.audio_frames_per_second) + 1
    before, after = [100000, 5726, 25], [185, 185, 77398, 25]  # DeepSeek-V2 ids of "<bos>User:" and "\n\nAssistant:"
    before = [t % config.text_vocab_size for t in before]
    after = [t % config.text_vocab_size for t in after]
    ids = torch.empty(1, len(before) + frames + 2 + len(after), 8, dtype=torch.long)
    for slot in range(TEXT_STREAM):
        ids[..., slot] = config.audio_token_id("PAD_A", slot)
    start = len(before)
    ids[0, :start, TEXT_STREAM] = torch.tensor(before)
    ids[0, start : start + frames + 2, TEXT_STREAM] = config.audio_placeholder_id
    ids[0, start + frames + 2 :, TEXT_STREAM] = torch.tensor(after)
    for slot in range(TEXT_STREAM):
        ids[0, start, slot] = config.audio_token_id("BOA", slot)
        ids[0, start + frames + 1, slot] = config.audio_token_id("EOA", slot)
        ids[0, -1, slot] = config.audio_token_id("ANS_A", slot)
    return ids


class _Clock(DeepOmniStreamer):
    """A streamer that records when each decoding step arrives (text is not timed)."""

    def __init__(self, codec_model):
        super().__init__(None, codec_model, noise_seed=0)
        self.steps = []

    def _new_text(self) -> str:
        return ""

    def put_step(self, request, text_id, frame):
        self.steps.append(time.perf_counter())
        super().put_step(request, None, frame)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def measure_deepomni(model, config, device, args) -> dict:
    extractor = WhisperFeatureExtractor(feature_size=80)
    audio = (0.1 * np.random.default_rng(0).standard_normal(int(args.question_seconds * 16000))).astype(np.float32)
    ids = spoken_prompt(config, len(audio)).to(device)
    runs = []
    for _ in range(args.warmup + args.repeats):
        sync(device)
        start = time.perf_counter()  # the user's audio has just ended
        features = extractor(audio, sampling_rate=16000, return_tensors="pt").input_features.to(device, model.dtype)
        clock = _Clock(model.codec_model)
        result = {}

        def generate():
            result["out"] = model.generate(ids, input_features=features, streamer=clock, max_new_tokens=args.steps,
                                           seed=0, audio_do_sample=True, do_sample=False)  # fmt: skip

        # As in the pipeline: generation in a worker thread, the codec decoding the stream in this one.
        worker = threading.Thread(target=generate)
        worker.start()
        first_audio = None
        for _, audio in clock:
            if first_audio is None and audio.size:
                sync(device)
                first_audio = time.perf_counter() - start
        worker.join()
        out = result["out"]
        sync(device)
        total = time.perf_counter() - start
        step_times = np.diff(clock.steps)
        frames = out.audio_codes[0].shape[0]
        runs.append({
            "ttfa_s": first_audio,
            "prefill_and_first_step_s": clock.steps[0] - start,
            "step_ms": 1000 * float(np.median(step_times)),
            "steps": len(clock.steps),
            "audio_seconds": frames * config.codec_config.samples_per_frame / config.codec_config.sampling_rate,
            "generation_s": total,
        })
    runs = runs[args.warmup :]
    median = {key: statistics.median(r[key] for r in runs if r[key] is not None) for key in runs[0]}
    median["rtf"] = median["generation_s"] / max(median["audio_seconds"], 1e-9)
    return median


@torch.inference_mode()
def measure_reference(config, device, dtype, args) -> dict:
    text = config.text_config.to_dict()
    keep = {k: text[k] for k in DeepseekV2Config().to_dict() if k in text and k not in ("architectures", "model_type", "transformers_version")}
    keep["vocab_size"] = config.text_vocab_size
    reference = DeepseekV2ForCausalLM(DeepseekV2Config(**keep)).to(device, dtype).eval()
    prompt = torch.randint(0, config.text_vocab_size, (1, args.reference_prompt), device=device)
    times = []
    for _ in range(args.warmup + args.repeats):
        sync(device)
        start = time.perf_counter()
        reference.generate(prompt, max_new_tokens=args.steps, min_new_tokens=args.steps, do_sample=False)
        sync(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times[args.warmup :])
    return {"tokens_per_s": args.steps / seconds, "prompt_tokens": args.reference_prompt}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="DeepSeek-V2-Lite-sized model (needs a GPU)")
    parser.add_argument("--steps", type=int, default=40, help="decoding steps per run")
    parser.add_argument("--question-seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reference-prompt", type=int, default=260, help="prompt tokens of the reference run")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.full and device.type != "cuda":
        parser.error("--full needs a GPU (the full model is 16B parameters)")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    config = build_config(args.full)
    torch.manual_seed(0)
    with torch.device(device):
        model = DeepOmniForConditionalGeneration(config).to(dtype).eval()
    model.codec_model.float()  # the codec decodes in float32
    ours = measure_deepomni(model, config, device, args)
    del model
    reference = measure_reference(config, device, dtype, args)
    steps_per_s = 1000 / ours["step_ms"]
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU {platform.machine()}, {torch.get_num_threads()} threads"
    report = {
        "benchmark": "DeepOmni speech-to-speech latency (random weights)",
        "configuration": "full (DeepSeek-V2-Lite + Whisper-medium + SNAC 24 kHz)" if args.full else "small CPU configuration",
        "device": device_name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "dtype": str(dtype).replace("torch.", ""),
        "question_seconds": args.question_seconds,
        "deepomni": ours,
        "reference": {"name": "transformers DeepseekV2ForCausalLM.generate, same backbone sizes", **reference},
        "steps_per_s_vs_reference_tokens_per_s": steps_per_s / reference["tokens_per_s"],
        "targets_full_size_h100": {"step_ms": 25, "ttfa_s": 0.3, "real_time_step_ms": 85.3},
    }
    output = args.output or RESULTS / ("latency_full.json" if args.full else "latency.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(output)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

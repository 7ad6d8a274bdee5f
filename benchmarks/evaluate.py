"""Cost of `deepomni evaluate --suite spoken-qa` on CPU: items per second, split into model time and judge time.

The model is the small configuration of `benchmarks/latency.py` (random weights, so every reply runs the full
`--max-new-tokens` steps), with the tiny byte-level tokenizer; questions are synthesised by flite (voice rms); the
judge is the bundled faster-whisper tiny.en. The named reference, measured in the same run, is the judge itself:
`model_s / judge_s` says how many judge transcriptions one model reply costs.

    python benchmarks/evaluate.py                 # 4 questions, 64 decoding steps per reply

Writes `benchmarks/results/evaluate.json`.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

from deepomni_hf import DeepOmniForConditionalGeneration
from deepomni_hf.evaluation import evaluate
from deepomni_hf.tiny import tiny_processor


sys.path.insert(0, str(Path(__file__).parent))
from latency import build_config  # noqa: E402  (the small configuration, shared with the latency benchmark)


RESULTS = Path(__file__).parent / "results"
QUESTIONS = [
    ("What is seven plus five?", "Twelve."),
    ("What is the capital of France?", "Paris."),
    ("How many legs does a dog have?", "Four."),
    ("What day comes after Monday?", "Tuesday."),
    ("What is the opposite of hot?", "Cold."),
    ("What colour is the sky?", "Blue."),
    ("What is three times four?", "Twelve."),
    ("What is the capital of Italy?", "Rome."),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--output", type=Path, default=RESULTS / "evaluate.json")
    args = parser.parse_args()

    torch.manual_seed(0)
    load_before = os.getloadavg()[0]
    config = build_config(full=False)
    with tempfile.TemporaryDirectory(prefix="deepomni-eval-bench-") as tmp:
        checkpoint = Path(tmp) / "small"
        DeepOmniForConditionalGeneration(config).save_pretrained(checkpoint)
        tiny_processor(config).save_pretrained(checkpoint)
        data = Path(tmp) / "qa.jsonl"
        rows = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.items)]
        data.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "answer": a}) + "\n"
                                for i, (q, a) in enumerate(rows)))  # fmt: skip
        start = time.perf_counter()
        result = evaluate(str(checkpoint), "spoken-qa", str(data), Path(tmp) / "eval", tts="flite:rms",
                          max_new_tokens=args.max_new_tokens, num_replies=0)  # fmt: skip
        wall = time.perf_counter() - start
        records = [json.loads(line)["record"] for line in (Path(tmp) / "eval" / "items.jsonl").read_text().splitlines()]
    replies = [r for r in records if "model_s" in r]
    floors = len(records) - len(replies)
    model_s = sum(r["model_s"] for r in replies) / len(replies)
    judge_s = sum(r["judge_s"] for r in replies) / len(replies)
    audio_s = sum(r["audio_seconds"] for r in replies) / len(replies)
    report = {
        "benchmark": "deepomni evaluate --suite spoken-qa (small configuration, random weights)",
        "device": f"CPU {platform.machine()}, {torch.get_num_threads()} threads",
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},  # the machine is shared
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "judge": result.results["judge"],
        "items": len(replies),
        "max_new_tokens": args.max_new_tokens,
        "answer_audio_seconds": audio_s,
        "wall_s": wall,
        "items_per_s": len(replies) / wall,
        "model_s_per_item": model_s,
        "judge_s_per_item": judge_s,
        "judge_floor_items": floors,
        "model_s_vs_judge_s": model_s / judge_s,
        "note": "wall_s includes loading the checkpoint and the judge, synthesising the questions and the judge's "
        "pass over the questions (the WER floor); per-item times are the model's reply and the judge's transcript",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.output)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Throughput of the `speech` dataset builder on CPU: spoken questions (flite) → text + speech answers (flite, resampled
to 24 kHz, encoded by the codec). The codec encode is the named cost centre: its time is measured inside the builder
(`build_report.json` → `timings_s.encode_s`, summed over worker processes) and reported next to TTS time and wall
time, for one process and for `num_proc=2`.

    python benchmarks/dataset_build.py                  # 16 QA rows, full-size SNAC-24kHz codec (random weights)
    python benchmarks/dataset_build.py --codec tiny --rows 8

`--codec full` builds a `DeepOmniCodecModel` with the default (SNAC 24 kHz) configuration and random weights: the same
compute as the real codec, no download. Writes `benchmarks/results/dataset_build.json` (tmp + rename).
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import datasets
import torch
import transformers

from deepomni_hf.data import build_dataset
from deepomni_hf.tiny import english_sentences, save_tiny_checkpoint


RESULTS = Path(__file__).parent / "results" / "dataset_build.json"


def codec_checkpoint(kind: str, folder: Path) -> str:
    if kind == "tiny":
        return str(save_tiny_checkpoint(folder / "tiny"))
    from deepomni_hf.modeling import DeepOmniCodecModel
    from deepomni_hf.modeling.configuration_deepomni_codec import DeepOmniCodecConfig

    torch.manual_seed(0)
    DeepOmniCodecModel(DeepOmniCodecConfig()).save_pretrained(folder / "codec")
    return str(folder / "codec")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--codec", choices=["full", "tiny"], default="full")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    sentences = [s for s in english_sentences() if s.strip() and "Assistant" not in s]
    rows = [{"question": sentences[i], "answer": sentences[(i + 7) % len(sentences)]} for i in range(args.rows)]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        codec = codec_checkpoint(args.codec, tmp)
        source = datasets.Dataset.from_list(rows)
        for procs in args.procs:
            start = time.perf_counter()
            data, report = build_dataset("speech", source, tmp / f"out-{procs}", codec=codec, tts="flite:slt,flite:awb",
                                         num_proc=procs, shard_size=args.rows, batch_size=4)  # fmt: skip
            wall = time.perf_counter() - start
            timings = report["timings_s"]
            answer_s = float(sum(data["answer_seconds"]))
            question_s = float(sum(data["audio_seconds"]))
            runs.append({
                "num_proc": procs,
                "examples": len(data),
                "wall_s": wall,
                "examples_per_s": len(data) / wall,
                "answer_audio_hours_per_hour": answer_s / wall,
                "all_audio_hours_per_hour": (answer_s + question_s) / wall,
                "encode_s_summed_over_processes": timings["encode_s"],
                "tts_s_summed_over_processes": timings["tts_s"],
                "encode_share_of_process_time": timings["encode_s"] / (wall * procs),
                "encode_s_per_answer_audio_s": timings["encode_s"] / answer_s,
            })  # fmt: skip
            print(json.dumps(runs[-1]))
    result = {
        "benchmark": "speech dataset builder, CPU",
        "codec": args.codec,
        "rows": args.rows,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = RESULTS.with_suffix(".json.tmp")
    tmp_file.write_text(json.dumps(result, indent=2))
    os.replace(tmp_file, RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

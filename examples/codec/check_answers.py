# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The answer check of a codec: encode → decode every answer clip and ask the ASR judge whether it hears the answer.

    python examples/codec/check_answers.py --codec RUN/final --answers DATA/answers.jsonl --out check.json \
        [--cache RUN/eval/original_transcripts.json] [--shard 0/2]

Reports the share of clips whose every answer word the judge hears after resynthesis, the same on the originals, and
the share among the clips whose original the judge hears. `--shard i/n` checks every n-th clip from the i-th (run n
processes, then `--merge check_*.json --out check.json`).
"""

import argparse
import json

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec")
    parser.add_argument("--answers")
    parser.add_argument("--out", required=True)
    parser.add_argument("--cache", default=None, help="the judge's transcripts of the originals (JSON, reused)")
    parser.add_argument("--shard", default="0/1")
    parser.add_argument("--merge", nargs="*", help="shard results to combine")
    args = parser.parse_args(argv)
    if args.merge:
        rows = [row for path in args.merge for row in json.load(open(path))["clips"]]
    else:
        import torch

        from deepomni_hf import DeepOmniCodecModel
        from deepomni_hf.training.codec.data import read_source
        from deepomni_hf.training.codec.evaluation import CodecEvaluator, load_judge

        torch.set_num_threads(1)
        index, count = map(int, args.shard.split("/"))
        clips = read_source(args.answers)[index::count]
        evaluator = CodecEvaluator([], clips, load_judge(), cache_path=args.cache)
        rows = evaluator.answer_rows(DeepOmniCodecModel.from_pretrained(args.codec).eval())
    kept = [row["heard"] for row in rows if row["heard_in_original"]]
    summary = {
        "answers_checked": len(rows),
        "answer_heard": float(np.mean([row["heard"] for row in rows])),
        "original_answer_heard": float(np.mean([row["heard_in_original"] for row in rows])),
        "answers_heard_in_original": len(kept),
        "answer_heard_where_original_heard": float(np.mean(kept)) if kept else float("nan"),
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump({**summary, "clips": rows}, handle, indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

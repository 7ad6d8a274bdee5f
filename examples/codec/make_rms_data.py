# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Speech in one voice (flite rms) for the domain codec that DeepOmni-Tiny speaks through.

    python examples/codec/make_rms_data.py general --out DIR --count 4000 --heldout 60
    python examples/codec/make_rms_data.py answers --out DIR --answers answers.txt --variants 4

`general`: WordNet example sentences (`deepomni_hf.data.corpus.wordnet_sentences`, shuffled with --seed); the first
--heldout are written to `heldout.jsonl` (never trained on), the rest to `general.jsonl`. `answers`: every line of
--answers, once plainly (`answers.jsonl`, the clips of the >= 90 % check, and also trained on: they are the clips the
codec must speak) and --variants times with a small random duration / pitch change (`answer_variants.jsonl`).
Each manifest line is `{"audio": "wav/....wav", "text": ...}`; audio is flite's own 16 kHz mono WAV (the trainer
resamples). Re-running skips WAVs that exist, so a killed run resumes.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np


def speak(text: str, path: str, stretch: float = 1.0, f0_mean: float | None = None):
    if os.path.exists(path):
        return
    args = ["flite", "-voice", "rms", "--setf", f"duration_stretch={stretch:.3f}"]
    if f0_mean is not None:
        args += ["--setf", f"int_f0_target_mean={f0_mean:.1f}"]
    tmp = path + ".tmp.wav"
    subprocess.run(args + ["-t", text, "-o", tmp], check=True, capture_output=True)
    os.replace(tmp, path)


def write_manifest(out: str, name: str, rows: list[dict]):
    tmp = os.path.join(out, name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    os.replace(tmp, os.path.join(out, name))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("general", "answers"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=4000, help="general: sentences to speak (held-out included)")
    parser.add_argument("--heldout", type=int, default=60, help="general: sentences kept for the WER evaluation")
    parser.add_argument("--answers", help="answers: text file, one answer per line")
    parser.add_argument("--variants", type=int, default=4, help="answers: varied renderings per answer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.makedirs(os.path.join(args.out, "wav"), exist_ok=True)
    rng = np.random.default_rng(args.seed)
    if args.kind == "general":
        from deepomni_hf.data.corpus import corpus_sentences

        sentences = corpus_sentences(limit=args.count, seed=args.seed)
        rows = []
        for index, text in enumerate(sentences):
            path = f"wav/general_{index:05d}.wav"
            speak(text, os.path.join(args.out, path))
            rows.append({"audio": path, "text": text})
            if index % 500 == 0:
                print(f"general {index}/{len(sentences)}", flush=True)
        write_manifest(args.out, "heldout.jsonl", rows[: args.heldout])
        write_manifest(args.out, "general.jsonl", rows[args.heldout :])
    else:
        with open(args.answers, encoding="utf-8") as handle:
            answers = list(dict.fromkeys(" ".join(line.split()) for line in handle if line.strip()))
        plain, varied = [], []
        for index, text in enumerate(answers):
            path = f"wav/answer_{index:05d}.wav"
            speak(text, os.path.join(args.out, path))
            plain.append({"audio": path, "text": text})
            for variant in range(args.variants):
                path = f"wav/answer_{index:05d}_v{variant}.wav"
                stretch, f0 = float(rng.uniform(0.88, 1.15)), float(rng.uniform(90.0, 120.0))
                speak(text, os.path.join(args.out, path), stretch, f0)
                varied.append({"audio": path, "text": text})
        write_manifest(args.out, "answers.jsonl", plain)
        write_manifest(args.out, "answer_variants.jsonl", varied)
    print("done", file=sys.stderr)


if __name__ == "__main__":
    main()

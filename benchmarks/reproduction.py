"""The paper's claim in miniature (issue 12): modality experts keep the text ability that naive speech fine-tuning
loses. Runs `deepomni evaluate` over the arms of DeepOmni-Tiny's recipe (examples/tiny) and tabulates them.

Arms, all from the same converted base and the same data (examples/tiny/README.md):
  (a) base       RUN/converted            the text LLM before any speech training (step 2's output)
  (b) deepomni   RUN/stage3-joint         the staged recipe with speech / text experts (alignment → assign-experts →
                                          speech → text → joint)
  (b+) dpo       RUN/final                (b) after DPO, the shipped model (reported, not part of the budget match)
  (c) naive      RUN/baseline-naive       one joint fine-tuning of every parameter, no expert split, on the union
                                          of (b)'s speech / text / joint data for the same epochs (same positions)
  (d) per_token  RUN/baseline-per-token   (b) with per_token routing in the joint stage

Every arm is evaluated against (a) as `--baseline`, so `deepomni evaluate` reports the relative text drop, on the
held-out questions (held-out phrasing and facts, spoken by the held-out voice): suites text, spoken-qa (text and
speech answers judged by the ASR judge through the codec, answer-code error rate, consistency WER, replies that end
on their own), latency (TTFA on CPU) and routing (modality load of (b)). The per-item store of (a) is shared, so (a)
is evaluated once.

    python benchmarks/reproduction.py --run /work/runs/tiny --corpus /work/runs/tiny/data/spoken-qa \
        --text-data /work/runs/tiny/data/qa-text/test.jsonl --output /work/runs/tiny/reproduction
    python benchmarks/reproduction.py ... --dry-run        # print the commands, evaluate nothing

Writes DIR/<arm>/ (each run's results.json, report.md, replies), DIR/reproduction.json, and — unless
`--no-publish` — benchmarks/results/reproduction.json, benchmarks/results/reproduction.md (the README table) and
benchmarks/results/reproduction.png.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"
ARMS = {  # name: (label, folder under RUN)
    "base": ("(a) base", "converted"),
    "deepomni": ("(b) DeepOmni", "stage3-joint"),
    "deepomni_dpo": ("(b) DeepOmni + DPO", "final"),
    "naive": ("(c) naive", "baseline-naive"),
    "per_token": ("(d) per_token", "baseline-per-token"),
}
# (suite, metric, column title, format); `*_relative_drop` rows come from `--baseline`.
COLUMNS = [
    ("text", "text_accuracy", "text-QA acc.", "{:.1%}"),
    ("text", "text_accuracy_relative_drop", "rel. text drop vs (a)", "{:+.1%}"),
    ("spoken-qa", "text_accuracy", "spoken-QA acc. (text)", "{:.1%}"),
    ("spoken-qa", "speech_accuracy", "spoken-QA acc. (speech, judge)", "{:.1%}"),
    ("spoken-qa", "answer_code_error_rate", "answer-code error", "{:.2f}"),
    ("spoken-qa", "consistency_wer", "consistency WER", "{:.1%}"),
    ("spoken-qa", "ended_on_own", "ended on own", "{:.1%}"),
    ("latency", "ttfa_s", "TTFA CPU (s)", "{:.2f}"),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, help="the recipe's run folder (examples/tiny, RUN)")
    parser.add_argument("--corpus", required=True, help="spoken-QA corpus (make-corpus --task spoken-qa); its test split")
    parser.add_argument("--text-data", required=True, help="held-out questions as text (qa-text/test.jsonl)")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--base", type=Path, default=None,
                        help="arm (a): the text LLM before conversion (a causal-LM folder with a chat template, e.g. "
                        "examples/tiny/base-llm); default RUN/converted. The converted checkpoint's new embedding rows "
                        "(filler ids summed into every text position) are untrained, so it is not (a) on text")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--suites", default="text,spoken-qa,latency,routing")
    parser.add_argument("--limit", type=int, default=None, help="first N held-out questions of each source")
    parser.add_argument("--text-per-type", type=int, default=None,
                        help="a seeded sample of N held-out text questions per question type (default: all)")
    parser.add_argument("--spoken-per-type", type=int, default=None,
                        help="a seeded sample of N held-out spoken questions per question type (default: all)")
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of the per-type samples")
    parser.add_argument("--answer-tts", default="flite:rms", help="voice of the reference answers (the codec's)")
    parser.add_argument("--voice", default="M29", help="speaker token of the spoken replies (flite rms)")
    parser.add_argument("--evaluate", default="deepomni evaluate", help="the evaluate command")
    parser.add_argument("--extra", default="", help="more `deepomni evaluate` arguments, one string")
    parser.add_argument("--dry-run", action="store_true", help="print the commands; run and write nothing")
    parser.add_argument("--no-publish", action="store_true", help="write only under --output, not benchmarks/results")
    return parser.parse_args(argv)


def per_type_sample(types: list[str], per_type: int, seed: int) -> list[int]:
    """Row indices of a seeded sample of at most `per_type` rows of every type, in their original order: the test
    split is sorted by type, so its first N rows would all be arithmetic."""
    import random

    by_type: dict[str, list[int]] = {}
    for index, kind in enumerate(types):
        by_type.setdefault(kind, []).append(index)
    rng = random.Random(seed)
    picked = [i for kind in sorted(by_type) for i in rng.sample(by_type[kind], min(per_type, len(by_type[kind])))]
    return sorted(picked)


def prepare_samples(args) -> None:
    """Writes the per-type samples under OUTPUT/samples and points `args.text_data` / `args.corpus` at them."""
    samples = args.output / "samples"
    if args.text_per_type:
        rows = [json.loads(line) for line in Path(args.text_data).read_text().splitlines() if line.strip()]
        keep = per_type_sample([row["type"] for row in rows], args.text_per_type, args.sample_seed)
        path = samples / f"text-{args.text_per_type}-per-type-seed{args.sample_seed}.jsonl"
        if not args.dry_run:
            write_atomic(path, "".join(json.dumps(rows[i]) + "\n" for i in keep))
        args.text_data = str(path)
    if args.spoken_per_type:
        from datasets import DatasetDict, load_from_disk

        path = samples / f"spoken-qa-{args.spoken_per_type}-per-type-seed{args.sample_seed}"
        if not args.dry_run and not (path / "dataset_dict.json").is_file():
            test = load_from_disk(args.corpus)["test"]
            keep = per_type_sample(test["type"], args.spoken_per_type, args.sample_seed)
            tmp = path.with_name(path.name + ".tmp")
            DatasetDict({"test": test.select(keep)}).save_to_disk(str(tmp))
            os.replace(tmp, path)
        args.corpus = str(path)


def arm_folder(args, arm: str) -> Path:
    return args.base if arm == "base" and args.base else args.run / ARMS[arm][1]


def evaluate_command(args, arm: str) -> list[str]:
    folder = arm_folder(args, arm)
    # (a) is the text LLM before any speech training: it cannot hear or speak, so only its text is measured (its
    # spoken replies would run to the token limit, ~50 s of CPU per question, to score 0).
    suites = args.suites if arm != "base" else ",".join(s for s in args.suites.split(",") if s == "text")
    command = [*shlex.split(args.evaluate), "--model", str(folder), "--suite", suites,
               "--data", f"text={args.text_data}", "--data", f"spoken-qa={args.corpus}",
               *[arg for suite in ("latency", "routing") if suite in suites.split(",")  # the spoken questions
                 for arg in ("--data", f"{suite}={args.corpus}")], "--split", "test",
               "--audio-column", "question_audio", "--answer-audio-column", "answer_audio",
               "--answer-tts", args.answer_tts, "--voice", args.voice, "--output", str(args.output / arm),
               "--seed", "0"]  # fmt: skip
    command += ["--items", str(args.output / "items.jsonl")]  # shared: (a)'s items are evaluated once
    if arm != "base":
        command += ["--baseline", str(arm_folder(args, "base"))]
    if args.limit:
        command += ["--limit", str(args.limit)]
    return command + shlex.split(args.extra)


def read_rows(folder: Path) -> list[dict]:
    return json.loads((folder / "results.json").read_text())["rows"]


def pick(rows: list[dict], suite: str, metric: str):
    for row in rows:
        if row.get("suite") == suite and row.get("metric") == metric and row.get("role", "model") == "model":
            return row.get("value")
    return None


def table(summary: dict) -> str:
    lines = ["| arm | " + " | ".join(c[2] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for arm, entry in summary["arms"].items():
        cells = []
        for suite, metric, _, fmt in COLUMNS:
            value = entry["metrics"].get(f"{suite}/{metric}")
            cells.append("—" if value is None else fmt.format(value))
        lines.append(f"| {entry['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(summary: dict) -> str:
    """Issue 12's criterion: (b)'s relative text drop at most a third of (c)'s, (b)'s spoken-QA (speech) accuracy
    within 10 points of (c)'s."""
    arms = summary["arms"]
    if "deepomni" not in arms or "naive" not in arms:
        return "not evaluated: needs arms deepomni and naive"
    b, c = arms["deepomni"]["metrics"], arms["naive"]["metrics"]
    drop_b, drop_c = b.get("text/text_accuracy_relative_drop"), c.get("text/text_accuracy_relative_drop")
    acc_b, acc_c = b.get("spoken-qa/speech_accuracy"), c.get("spoken-qa/speech_accuracy")
    if None in (drop_b, drop_c, acc_b, acc_c):
        return "incomplete: a metric is missing"
    keeps_text = drop_b <= max(drop_c, 0) / 3
    close_speech = acc_b >= acc_c - 0.10
    return (f"(b) text drop {drop_b:+.1%} vs (c) {drop_c:+.1%} ({'at most' if keeps_text else 'more than'} a third); "
            f"(b) speech accuracy {acc_b:.1%} vs (c) {acc_c:.1%} ({'within' if close_speech else 'not within'} 10 "
            f"points): claim {'reproduced' if keeps_text and close_speech else 'NOT reproduced'}")  # fmt: skip


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(summary["arms"].values())
    metrics = [("text/text_accuracy", "text-QA accuracy"), ("spoken-qa/text_accuracy", "spoken-QA (text answer)"),
               ("spoken-qa/speech_accuracy", "spoken-QA (speech answer)")]  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        values = [arm["metrics"].get(key) or 0.0 for key, _ in metrics]
        ax.bar([m + i * width for m in range(len(metrics))], values, width, label=arm["label"])
    ax.set_xticks([m + width * (len(arms) - 1) / 2 for m in range(len(metrics))], [t for _, t in metrics])
    ax.set_ylabel("accuracy (held-out questions and voice)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("DeepOmni-Tiny: text kept vs speech learned")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if unknown := [a for a in arms if a not in ARMS]:
        raise SystemExit(f"Unknown arm(s) {unknown}; choose from {', '.join(ARMS)}.")
    if "base" in arms:  # evaluated first: the other arms' baseline items come from its store
        arms.remove("base")
        arms.insert(0, "base")
    missing = [str(arm_folder(args, a)) for a in arms if not (arm_folder(args, a) / "config.json").is_file()]
    prepare_samples(args)
    for arm in arms:
        command = evaluate_command(args, arm)
        print("[reproduction] " + shlex.join(command), flush=True)
        if not args.dry_run:
            if missing:
                raise SystemExit(f"Missing checkpoint(s) {missing}: run examples/tiny/run_all.sh first.")
            subprocess.run(command, check=True)
    if args.dry_run:
        if missing:
            print(f"[reproduction] (dry run) missing checkpoints: {missing}")
        return 0

    summary = {"benchmark": "issue 12 reproduction: DeepOmni-Tiny arms under `deepomni evaluate`", "run": str(args.run),
               "suites": args.suites, "limit": args.limit, "text_data": args.text_data, "spoken_data": args.corpus,
               "text_per_type": args.text_per_type, "spoken_per_type": args.spoken_per_type,
               "sample_seed": args.sample_seed, "arms": {}}  # fmt: skip
    for arm in arms:
        rows = read_rows(args.output / arm)
        metrics = {f"{suite}/{metric}": pick(rows, suite, metric) for suite, metric, _, _ in COLUMNS}
        metrics["routing/routing_separation"] = pick(rows, "routing", "routing_separation")
        summary["arms"][arm] = {"label": ARMS[arm][0], "checkpoint": str(arm_folder(args, arm)), "metrics": metrics}
        train_result = args.run / ARMS[arm][1] / "train_result.json"
        if train_result.is_file():
            summary["arms"][arm]["positions_trained_last_stage"] = json.loads(train_result.read_text()).get("positions_trained")
    summary["verdict"] = verdict(summary)
    summary["table"] = table(summary)
    print(summary["table"] + "\n\n" + summary["verdict"])
    targets = [args.output] + ([] if args.no_publish else [RESULTS_DIR])
    for folder in targets:
        write_atomic(folder / "reproduction.json", json.dumps(summary, indent=2) + "\n")
        write_atomic(folder / "reproduction.md", summary["table"] + "\n\n" + summary["verdict"] + "\n")
        plot(summary, folder / "reproduction.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

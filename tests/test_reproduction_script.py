"""benchmarks/reproduction.py: the `deepomni evaluate` commands of every arm, and the table, verdict and plot from
their results.json rows (a stand-in evaluator writes them, so nothing is evaluated here)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "reproduction.py"
FAKE = '''
import json, sys
from pathlib import Path
args = sys.argv[1:]
model, output = args[args.index("--model") + 1], Path(args[args.index("--output") + 1])
arm = Path(model).name
text = {"converted": 0.9, "stage3-joint": 0.85, "final": 0.84, "baseline-naive": 0.6, "baseline-per-token": 0.8}[arm]
speech = {"converted": 0.0, "stage3-joint": 0.62, "final": 0.66, "baseline-naive": 0.65, "baseline-per-token": 0.5}[arm]
rows = [{"role": "model", "suite": "text", "metric": "text_accuracy", "value": text},
        {"role": "model", "suite": "spoken-qa", "metric": "speech_accuracy", "value": speech}]
if "--baseline" in args:
    rows.append({"role": "model", "suite": "text", "metric": "text_accuracy_relative_drop", "value": (0.9 - text) / 0.9})
output.mkdir(parents=True, exist_ok=True)
(output / "results.json").write_text(json.dumps({"rows": rows}))
'''


def make_run(root: Path) -> Path:
    run = root / "run"
    for folder in ("converted", "stage3-joint", "final", "baseline-naive", "baseline-per-token"):
        (run / folder).mkdir(parents=True)
        (run / folder / "config.json").write_text("{}")
    return run


def test_arms_are_evaluated_against_the_base_and_tabulated(tmp_path):
    run = make_run(tmp_path)
    (tmp_path / "fake_eval.py").write_text(FAKE)
    command = [sys.executable, str(SCRIPT), "--run", str(run), "--corpus", "C", "--text-data", "T.jsonl",
               "--output", str(tmp_path / "out"), "--no-publish", "--evaluate", f"{sys.executable} {tmp_path / 'fake_eval.py'}"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    commands = [line for line in result.stdout.splitlines() if line.startswith("[reproduction]")]
    assert len(commands) == 5 and "--baseline" not in commands[0]  # (a) first, without a baseline
    assert all(f"--baseline {run / 'converted'}" in c for c in commands[1:])
    summary = json.loads((tmp_path / "out" / "reproduction.json").read_text())
    assert list(summary["arms"]) == ["base", "deepomni", "deepomni_dpo", "naive", "per_token"]
    assert summary["arms"]["naive"]["metrics"]["text/text_accuracy_relative_drop"] == (0.9 - 0.6) / 0.9
    # (b) drops 5.6 %, (c) 33 %: at most a third; speech 62 % vs 65 %: within 10 points.
    assert summary["verdict"].endswith("claim reproduced")
    assert "| (c) naive | 60.0% | +33.3% |" in summary["table"]
    assert (tmp_path / "out" / "reproduction.png").stat().st_size > 0


def test_dry_run_names_missing_checkpoints_and_writes_nothing(tmp_path):
    command = [sys.executable, str(SCRIPT), "--run", str(tmp_path / "none"), "--corpus", "C", "--text-data", "T",
               "--output", str(tmp_path / "out"), "--dry-run", "--arms", "base,naive"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "missing checkpoints" in result.stdout and not (tmp_path / "out").exists()


def test_per_type_sample_draws_from_every_type_and_is_seeded(tmp_path):
    """The held-out split is sorted by type: `--text-per-type` samples every type instead of the first N rows."""
    rows = [{"id": f"{kind}-{i}", "type": kind, "question": "q", "answer": "a"}
            for kind, count in (("arithmetic", 30), ("capital", 5), ("legs", 2)) for i in range(count)]  # fmt: skip
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    run = make_run(tmp_path)
    (tmp_path / "fake_eval.py").write_text(FAKE)

    def sample(seed):
        out = tmp_path / f"out{seed}"
        command = [sys.executable, str(SCRIPT), "--run", str(run), "--corpus", "C", "--text-data",
                   str(tmp_path / "test.jsonl"), "--output", str(out), "--no-publish", "--arms", "base,deepomni",
                   "--text-per-type", "3", "--sample-seed", str(seed),
                   "--evaluate", f"{sys.executable} {tmp_path / 'fake_eval.py'}"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        path = json.loads((out / "reproduction.json").read_text())["text_data"]
        assert f"text={path}" in result.stdout  # the arms are evaluated on the sample
        return [json.loads(line)["id"] for line in Path(path).read_text().splitlines()]

    first = sample(0)
    assert [i.split("-")[0] for i in first].count("arithmetic") == 3 and len(first) == 3 + 3 + 2
    assert first == sample(0) and first != sample(1)

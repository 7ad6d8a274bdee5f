"""`deepomni evaluate`: the spoken-qa suite end to end on a tiny checkpoint with real synthesised questions, a
stand-in model whose replies are known, bad input, resuming a killed run, and the model-index file `push` accepts."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from deepomni_hf.cli import main
from deepomni_hf.evaluation import EvaluationError, evaluate
from deepomni_hf.evaluation.metrics import word_error_rate
from deepomni_hf.hub.cards import load_eval_results
from deepomni_hf.modeling.generation_deepomni import DeepOmniGenerateOutput
from deepomni_hf.tiny import save_tiny_checkpoint


QUESTIONS = [
    {"id": "q1", "question": "What is seven plus five?", "answer": "Twelve.", "type": "arithmetic"},
    {"id": "q2", "question": "What is the capital of France?", "answer": "Paris.", "type": "capital"},
    {"id": "q3", "question": "How many legs does a dog have?", "answer": "Four.", "type": "fact"},
]
# The stand-in's replies to the questions above (by row), the audio it speaks (a tone whose length names the reply)
# and what the stand-in judge hears in that audio.
REPLIES = ["Twelve.", "London.", "A dog has four legs."]
TONE_SECONDS = [0.5, 0.6, 0.7]
HEARD = {0.5: "12", 0.6: "London", 0.7: "a dog has for legs"}
RATE = 24000


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture(scope="module")
def processor(tiny_checkpoint):
    from deepomni_hf import DeepOmniProcessor

    return DeepOmniProcessor.from_pretrained(tiny_checkpoint)


class StandIn:
    """A model whose reply to row `i` (generated with `seed = i`) is `REPLIES[i]` in text and a tone of
    `TONE_SECONDS[i]` seconds as speech, ending on its own; `fail_at` raises (a kill) on that row."""

    def __init__(self, tokenizer, fail_at=None, replies=REPLIES, name="stand-in"):
        self.config = SimpleNamespace(codec_config=SimpleNamespace(sampling_rate=RATE), _name_or_path=name)
        self.tokenizer, self.fail_at, self.replies, self.calls = tokenizer, fail_at, replies, []

    def parameters(self):
        return iter([torch.zeros(1)])

    def generate(self, input_ids, reply_modality="speech", seed=0, return_audio=False, **kwargs):
        if seed == self.fail_at:
            raise KeyboardInterrupt("killed")
        self.calls.append(seed)
        ids = torch.tensor(self.tokenizer(" " + self.replies[seed], add_special_tokens=False)["input_ids"])
        samples = int(TONE_SECONDS[seed] * RATE)
        tone = 0.3 * torch.sin(torch.arange(samples) / RATE * 2 * np.pi * 220)[None]
        steps = torch.zeros(1, input_ids.shape[1] + 5, 8, dtype=torch.long)
        return DeepOmniGenerateOutput(sequences=steps, text_ids=[ids], audio_codes=[torch.zeros(0, 7)],
                                      audio_values=[tone] if return_audio else None, finished=torch.tensor([True]))  # fmt: skip


def stand_in_judge(waveform, sampling_rate):
    """Hears the stand-in's tones as `HEARD`; anything else (the spoken questions) as a fixed sentence."""
    return HEARD.get(round(len(waveform) / sampling_rate, 2), "what is seven plus five")


def test_spoken_qa_end_to_end_on_a_tiny_checkpoint(tiny_checkpoint, tmp_path):
    """Real flite questions, the real judge (bundled faster-whisper tiny.en), a tiny random checkpoint: every output
    file is written and the numbers are consistent with the per-item records."""
    data = write_jsonl(tmp_path / "qa.jsonl", QUESTIONS[:2])
    out = tmp_path / "eval"
    result = evaluate(str(tiny_checkpoint), "spoken-qa", str(data), out, tts="flite:rms", max_new_tokens=10,
                      answer_tts="flite:rms")  # fmt: skip
    for name in ("results.json", "report.md", "eval_results.json", "items.jsonl", "plots/accuracy_per_type.png",
                 "replies/model/spoken-qa/q1.wav", "replies/model/spoken-qa/q1.txt", "replies/model/spoken-qa/q2.wav"):  # fmt: skip
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == "deepomni-evaluate/1" and results["judge"].startswith("faster-whisper tiny.en")
    row = next(r for r in results["rows"] if r["metric"] == "consistency_wer")
    for field in ("model", "baseline", "suite", "value", "n", "judge", "data_fingerprint", "deepomni_hf_version",
                  "transformers_version", "device", "judge_wer_input"):  # fmt: skip
        assert field in row, field
    # The judge hears the flite questions well: its WER on them is the floor reported beside every WER number.
    floor = result.value("spoken-qa", "judge_wer_input")
    assert floor is not None and floor < 0.5 and row["judge_wer_input"] == floor
    records = [json.loads(line)["record"] for line in (out / "items.jsonl").read_text().splitlines()]
    replies = [r for r in records if "text_correct" in r]
    assert [r["id"] for r in replies] == ["q1", "q2"]
    assert result.value("spoken-qa", "ended_on_own") == 0.0  # random weights never end within 10 steps
    assert all(r["steps"] == 10 and not r["finished"] for r in replies)
    # Ten steps: the staircase leaves 10 - 7 complete SNAC frames of 2048 samples at 24 kHz.
    assert result.value("spoken-qa", "answer_audio_seconds") == pytest.approx(3 * 2048 / 24000)
    expected = word_error_rate([r["text"] for r in replies], [r["transcript"] for r in replies]).value
    assert result.value("spoken-qa", "consistency_wer") == pytest.approx(expected)
    # The code diagnostic: the 3 generated frames against the tiny codec's codes of flite's "Twelve." / "Paris.".
    coded = [(r["code_errors"], r["code_reference_length"]) for r in replies]
    assert all(length > 0 and 0 < errors for errors, length in coded)
    assert result.value("spoken-qa", "answer_code_error_rate") == pytest.approx(
        sum(e for e, _ in coded) / sum(n for _, n in coded))
    assert "| spoken-qa |" in (out / "report.md").read_text()


def test_stand_in_scores_exactly(processor, tmp_path):
    """Known replies and a known judge: text accuracy 2/3 (London is wrong), speech accuracy 1/3 (the judge hears
    "for" for "four"), consistency WER 1/7 (one substitution in 1 + 1 + 5 words); all end on their own."""
    data = write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)
    model = StandIn(processor.tokenizer)
    result = evaluate((model, processor), "spoken-qa", str(data), tmp_path / "eval", judge=stand_in_judge)
    assert result.value("spoken-qa", "text_accuracy") == pytest.approx(2 / 3)
    assert result.value("spoken-qa", "speech_accuracy") == pytest.approx(1 / 3)
    assert result.value("spoken-qa", "consistency_wer") == pytest.approx(1 / 7)
    assert result.value("spoken-qa", "ended_on_own") == 1.0
    assert result.value("spoken-qa", "answer_audio_seconds") == pytest.approx(0.6)
    per_type = result.results["per_type"]["model"]["spoken-qa"]
    assert per_type["arithmetic"] == {"text_accuracy": 1.0, "speech_accuracy": 1.0, "n": 1}
    assert per_type["fact"] == {"text_accuracy": 1.0, "speech_accuracy": 0.0, "n": 1}
    assert result.results["judge"] == "stand_in_judge"


def test_baseline_side_by_side_with_relative_drop(processor, tmp_path):
    data = write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)
    model = StandIn(processor.tokenizer)
    base = StandIn(processor.tokenizer, replies=["Twelve.", "Paris.", "Four."], name="base")
    shared = tmp_path / "items.jsonl"
    result = evaluate((model, processor), "text", str(data), tmp_path / "eval", baseline=(base, processor),
                      items_file=shared)  # fmt: skip
    assert result.value("text", "text_accuracy", role="baseline") == 1.0
    assert result.value("text", "text_accuracy") == pytest.approx(2 / 3)
    assert result.value("text", "text_accuracy_relative_drop") == pytest.approx(1 / 3)  # (1 - 2/3) / 1
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| baseline | relative drop |" in report and "| 33.3 % |" in report
    # A second model against the same baseline, sharing the items file: the baseline is not evaluated again.
    again = StandIn(processor.tokenizer, name="base")
    evaluate((StandIn(processor.tokenizer, name="other"), processor), "text", str(data), tmp_path / "eval2",
             baseline=(again, processor), items_file=shared)  # fmt: skip
    assert again.calls == [] and not (tmp_path / "eval2" / "items.jsonl").exists()


def test_killed_run_resumes_without_losing_or_repeating_items(processor, tmp_path):
    data = write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)
    out = tmp_path / "eval"
    killed = StandIn(processor.tokenizer, fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        evaluate((killed, processor), "spoken-qa", str(data), out, judge=stand_in_judge)
    assert killed.calls == [0, 1]
    with open(out / "items.jsonl", "a") as handle:  # the kill also cut a line short
        handle.write('{"key": "x", "record": {"id": "q')
    resumed = StandIn(processor.tokenizer)
    result = evaluate((resumed, processor), "spoken-qa", str(data), out, judge=stand_in_judge)
    assert resumed.calls == [2]  # only the item in flight is evaluated again
    assert (result.computed, result.reused) == (4, 2)  # q3 + the judge floor of 3 questions; q1, q2 reused
    ids = [json.loads(line)["record"]["id"] for line in (out / "items.jsonl").read_text().splitlines()[:-1]
           if line.startswith('{"key"') and '"text_correct"' in line]  # fmt: skip
    assert sorted(ids) == ["q1", "q2", "q3"]
    assert result.value("spoken-qa", "text_accuracy") == pytest.approx(2 / 3)
    # A larger --limit reuses what a smaller one evaluated; a changed argument set does not reuse stale items.
    first = StandIn(processor.tokenizer)
    evaluate((first, processor), "spoken-qa", str(data), tmp_path / "limited", judge=stand_in_judge, limit=1)
    more = StandIn(processor.tokenizer)
    evaluate((more, processor), "spoken-qa", str(data), tmp_path / "limited", judge=stand_in_judge, limit=2)
    assert (first.calls, more.calls) == ([0], [1])
    changed = StandIn(processor.tokenizer)
    evaluate((changed, processor), "spoken-qa", str(data), out, judge=stand_in_judge, max_new_tokens=99)
    assert changed.calls == [0, 1, 2]


def test_bad_rows_are_skipped_with_a_reason(processor, tmp_path):
    from deepomni_hf.data.tts import FliteSynthesizer
    import soundfile as sf

    waveform, rate, _ = FliteSynthesizer("rms").synthesize("What is seven plus five?")
    sf.write(tmp_path / "good.wav", waveform, rate)
    sf.write(tmp_path / "silent.wav", np.zeros(rate // 2, np.float32), rate)
    (tmp_path / "broken.wav").write_text("not audio")
    rows = [
        {"id": "good", "audio": "good.wav", "question": "What is seven plus five?", "answer": "Twelve."},
        {"id": "silent", "audio": "silent.wav", "question": "What is seven plus five?", "answer": "Twelve."},
        {"id": "broken", "audio": "broken.wav", "question": "What is seven plus five?", "answer": "Twelve."},
        {"id": "noanswer", "audio": "good.wav", "question": "What is seven plus five?", "answer": " "},
    ]
    data = write_jsonl(tmp_path / "qa.jsonl", rows)
    result = evaluate((StandIn(processor.tokenizer), processor), "spoken-qa", str(data), tmp_path / "eval",
                      judge=stand_in_judge)  # fmt: skip
    reasons = {skip["id"]: skip["reason"] for skip in result.results["skipped"]}
    assert reasons == {"silent": "silent_audio", "broken": "unreadable_audio", "noanswer": "empty_answer"}
    assert result.value("spoken-qa", "text_accuracy") == 1.0  # the good row only (n = 1)
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "## Skipped items" in report and "| silent_audio |" in report


def test_bad_input_is_refused_with_one_line(processor, tiny_checkpoint, tmp_path, capsys):
    data = write_jsonl(tmp_path / "qa.jsonl", [{"question": "What is seven plus five?", "reply": "Twelve."}])
    stand_in = (StandIn(processor.tokenizer), processor)
    with pytest.raises(EvaluationError, match=r"has no column 'answer' .*--answer-column"):
        evaluate(stand_in, "spoken-qa", str(data), tmp_path / "a", judge=stand_in_judge)
    with pytest.raises(EvaluationError, match="Unknown suite 'speling'"):
        evaluate(stand_in, "text,speling", str(data), tmp_path / "b")
    # A checkpoint whose weights hold no codec cannot run the spoken suites.
    from safetensors.torch import load_file, save_file

    no_codec = tmp_path / "no_codec"
    shutil.copytree(tiny_checkpoint, no_codec)
    weights = load_file(no_codec / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("codec_model.")}, no_codec / "model.safetensors",
              metadata={"format": "pt"})  # fmt: skip
    code = main(["evaluate", "--model", str(no_codec), "--suite", "spoken-qa", "--data", str(data), "--output",
                 str(tmp_path / "c")])  # fmt: skip
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the data reader's progress bar
    assert code == 1 and error.startswith("deepomni evaluate: error: spoken-qa: the checkpoint") and "has no codec weights" in error
    code = main(["evaluate", "--model", str(no_codec), "--suite", "nope", "--data", str(data), "--output",
                 str(tmp_path / "d")])  # fmt: skip
    assert code == 1 and "Unknown suite 'nope'" in capsys.readouterr().err


def test_push_accepts_the_model_index_file_as_it_is(processor, tiny_checkpoint, tmp_path, capsys):
    data = write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)
    out = tmp_path / "eval"
    evaluate((StandIn(processor.tokenizer), processor), "spoken-qa", str(data), out, judge=stand_in_judge)
    results = load_eval_results(out / "eval_results.json")
    assert {r.metric_type for r in results} >= {"text_accuracy", "speech_accuracy", "consistency_wer"}
    assert [r.metric_value for r in results] == [r.metric_value for r in load_eval_results(out / "results.json")]
    code = main(["push", "model", str(tiny_checkpoint), "--repo-id", "me/tiny", "--dry-run", "--eval-results",
                 str(out / "eval_results.json")])  # fmt: skip
    card = capsys.readouterr().out
    assert code == 0 and "model-index" in card and "speech_accuracy" in card


def test_a_text_llm_is_a_baseline_on_the_text_suite(processor, tiny_checkpoint, tmp_path):
    """The text LLM a DeepOmni is converted from (arm (a) of the reproduction) is evaluated as a plain causal LM:
    greedy chat replies on the text suite; spoken suites are refused with one line."""
    from transformers import AutoTokenizer

    from deepomni_hf.hub.conversion import export_text_model

    llm = tmp_path / "text-llm"
    export_text_model(tiny_checkpoint, llm, progress=False)
    tokenizer = AutoTokenizer.from_pretrained(llm)
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
    tokenizer.save_pretrained(llm)
    data = write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)
    result = evaluate((StandIn(processor.tokenizer), processor), "text", str(data), tmp_path / "eval",
                      baseline=str(llm), text_max_new_tokens=4)  # fmt: skip
    assert result.value("text", "text_accuracy", role="baseline") is not None
    items = [json.loads(line) for line in (tmp_path / "eval" / "items.jsonl").read_text().splitlines()]
    baseline = [item["record"] for item in items if item["role"] == "baseline"]
    assert len(baseline) == 3 and all(record["question"] for record in baseline)
    with pytest.raises(EvaluationError, match="text suite only"):
        evaluate(str(llm), "spoken-qa", str(data), tmp_path / "eval2")

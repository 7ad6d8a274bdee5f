"""Evaluation data readers: a `datasets` folder with an Audio column, CSV with other column names, an unreachable hub
id, and bad audio cells skipped with their reason."""

import numpy as np
import pytest

from deepomni_hf.evaluation import Columns, EvaluationError, SkipItem, read_data
from deepomni_hf.evaluation.readers import question_speech, row_audio


def test_saved_dataset_with_audio_column(tmp_path):
    import datasets

    from deepomni_hf.data.tts import FliteSynthesizer

    waveform, rate, _ = FliteSynthesizer("rms").synthesize("What is seven plus five?")
    rows = {"question": ["What is seven plus five?", "Silence?"], "answer": ["Twelve.", "None."],
            "audio": [{"array": waveform, "sampling_rate": rate}, {"array": np.zeros(8000, np.float32), "sampling_rate": 8000}]}  # fmt: skip
    rows["answer_audio"] = rows["audio"]
    ds = datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio())
    ds = ds.cast_column("answer_audio", datasets.Audio())
    ds.save_to_disk(tmp_path / "qa")
    data = read_data(str(tmp_path / "qa"))
    # Every audio column is decoded per row on demand, so one bad file skips only its row.
    assert not data.rows.features["audio"].decode and not data.rows.features["answer_audio"].decode
    assert len(row_audio(data.rows[0], data, "answer_audio", sampling_rate=24000)) == pytest.approx(
        len(waveform) * 24000 / rate, abs=2)
    assert len(data) == 2 and data.fingerprint == read_data(str(tmp_path / "qa")).fingerprint
    speech, source = question_speech(data.rows[0], data, synthesizer=None)
    assert source == "audio column" and len(speech) == pytest.approx(len(waveform) * 16000 / rate, abs=2)
    with pytest.raises(SkipItem) as skip:
        row_audio(data.rows[1], data)
    assert skip.value.reason == "silent_audio"
    assert len(read_data(str(tmp_path / "qa"), limit=1)) == 1


def test_csv_with_other_column_names_and_refusals(tmp_path):
    (tmp_path / "qa.csv").write_text("Q,A,kind\nWhat is two plus two?,Four.,arithmetic\n")
    data = read_data(str(tmp_path / "qa.csv"), columns=Columns(question="Q", answer="A", type="kind"))
    data.require("text", data.columns.question, data.columns.answer)
    assert data.rows[0]["A"] == "Four." and data.item_id(0, data.rows[0]) == "0"
    with pytest.raises(EvaluationError, match=r"has no columns 'question', 'answer' .*--question-column, --answer-column"):
        read_data(str(tmp_path / "qa.csv")).require("text", "question", "answer")
    with pytest.raises(EvaluationError, match="Cannot read the data 'someone/no-such-dataset'"):
        read_data("someone/no-such-dataset")
    with pytest.raises(EvaluationError, match="No file or folder"):
        read_data(str(tmp_path / "missing" / "qa.jsonl"))
    with pytest.raises(EvaluationError, match="has no rows"):
        (tmp_path / "empty.jsonl").write_text("")
        read_data(str(tmp_path / "empty.jsonl"))

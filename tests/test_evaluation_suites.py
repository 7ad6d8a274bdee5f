"""The other suites on a tiny random checkpoint: text (perplexity against the model's own loss), asr on Debian's real
recordings, tts, latency, routing, and the exported text model under lm-evaluation-harness, offline."""

import json
import math

import numpy as np
import pytest
import torch

from deepomni_hf.evaluation import evaluate, read_data
from deepomni_hf.evaluation.readers import ASTERISK_TRANSCRIPTS, row_audio
from deepomni_hf.tiny import save_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")


def fixed_judge(waveform, sampling_rate):
    return "read the text aloud"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_text_perplexity_is_the_models_own_text_loss(tiny_checkpoint, tmp_path):
    from deepomni_hf import DeepOmniForConditionalGeneration, DeepOmniProcessor

    line = "The cat reads a red book."
    (tmp_path / "heldout.txt").write_text(f"{line}\n\n")
    data = write_jsonl(tmp_path / "qa.jsonl", [{"question": "What is the capital of France?", "answer": "Paris."}])
    result = evaluate(str(tiny_checkpoint), "text", str(data), tmp_path / "eval", text_file=str(tmp_path / "heldout.txt"),
                      text_max_new_tokens=4)  # fmt: skip
    # Reference: the model's text-stream cross-entropy with labels on the text stream only.
    model = DeepOmniForConditionalGeneration.from_pretrained(tiny_checkpoint).eval()
    processor = DeepOmniProcessor.from_pretrained(tiny_checkpoint)
    inputs = processor(text=processor.tokenizer.bos_token + line)
    labels = inputs["input_ids"].clone()
    labels[..., :7] = -100
    with torch.no_grad():
        loss = model(**inputs, labels=labels).stream_losses[7]
    assert result.value("text", "perplexity") == pytest.approx(math.exp(float(loss)), rel=1e-4)
    assert result.value("text", "mean_reply_words") is not None


@pytest.mark.skipif(not ASTERISK_TRANSCRIPTS.is_file(), reason="needs Debian's asterisk-core-sounds-en(-wav)")
def test_asr_on_real_recordings(tiny_checkpoint, tmp_path):
    import soundfile as sf

    data = read_data("asterisk", limit=2)
    assert data.column_names == ["id", "audio", "text"] and data.rows[0]["text"]
    row = data.rows[0]
    info = sf.info(row["audio"])
    assert info.samplerate == 8000 and len(row_audio(row, data)) == pytest.approx(2 * info.frames, abs=2)  # -> 16 kHz
    result = evaluate(str(tiny_checkpoint), "asr", "asterisk", tmp_path / "eval", limit=2, text_max_new_tokens=4)
    # The judge hears the real recordings well; a random model does not.
    floor = result.value("asr", "judge_wer_input")
    assert floor < 0.35 and result.value("asr", "asr_wer") > floor
    assert next(r for r in result.rows if r["metric"] == "asr_wer")["judge_wer_input"] == floor


def test_tts_latency_and_routing(tiny_checkpoint, tmp_path):
    from deepomni_hf.training.modality_load import ModalityLoad

    rows = [{"question": "What is seven plus five?", "answer": "Twelve.", "text": "Read the text aloud."}]
    data = write_jsonl(tmp_path / "qa.jsonl", rows)
    out = tmp_path / "eval"
    result = evaluate(str(tiny_checkpoint), "tts,latency,routing", str(data), out, judge=fixed_judge,
                      max_new_tokens=10, tts="flite:rms")  # fmt: skip
    assert result.value("tts", "tts_wer") == 0.0 and result.value("tts", "judge_wer_input") == 0.0
    assert (out / "replies/model/tts/0.wav").is_file()
    # Ten decoding steps: 3 complete frames, streamed.
    assert result.value("latency", "ttfa_s") > 0 and result.value("latency", "rtf") > 0
    assert all(r["device"].startswith("CPU") for r in result.rows if r["suite"] == "latency")
    separation = result.value("routing", "routing_separation")
    load = ModalityLoad.load_json(out / "routing_model.json")
    expected = float(np.mean(0.5 * np.abs(load.speech_load - load.text_load).sum(axis=1)))
    assert 0 < separation <= 1 and separation == pytest.approx(expected)
    assert (out / "plots/routing_model.png").is_file()


def test_lm_eval_runs_offline_on_the_exported_text_model(tiny_checkpoint, tmp_path):
    pytest.importorskip("lm_eval")
    rows = [{"question": "What is seven plus five?", "answer": "Twelve."},
            {"question": "What is the capital of France?", "answer": "Paris."}]  # fmt: skip
    data = write_jsonl(tmp_path / "qa.jsonl", rows)
    result = evaluate(str(tiny_checkpoint), "text", str(data), tmp_path / "eval", lm_eval=True, text_max_new_tokens=4)
    metrics = {r["metric"]: r for r in result.rows if r["metric"].startswith("lm_eval_")}
    assert set(metrics) >= {"lm_eval_deepomni_text_qa/exact_match", "lm_eval_deepomni_text_qa_loglikelihood/acc",
                            "lm_eval_deepomni_text_qa_loglikelihood/perplexity"}  # fmt: skip
    assert metrics["lm_eval_deepomni_text_qa/exact_match"]["value"] == 0.0  # random weights
    assert metrics["lm_eval_deepomni_text_qa_loglikelihood/perplexity"]["value"] > 1
    assert all(row["n"] == 2 for row in metrics.values())
    assert (tmp_path / "eval/lm_eval_model/text_model/config.json").is_file()

"""The speech-to-speech pipeline (and ASR / TTS tasks), streaming, and `deepomni chat`, on a tiny random checkpoint."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from transformers import pipeline

from deepomni_hf.cli import main
from deepomni_hf.processors.audio import DeepOmniAudioError
from deepomni_hf.tiny import save_tiny_checkpoint


QUESTION_WAV = Path(__file__).parents[1] / "examples" / "audio" / "question.wav"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture(scope="module")
def chat(checkpoint):
    return pipeline("speech-to-speech", model=str(checkpoint))


def _tone(seconds=1.0, rate=16000):
    return (0.1 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_reply_from_a_wav_file_and_from_an_array(chat):
    from_file = chat(str(QUESTION_WAV), max_new_tokens=16, seed=0)
    assert set(from_file) == {"text", "audio", "sampling_rate"}
    assert from_file["sampling_rate"] == 24000 and from_file["audio"].dtype == np.float32
    assert from_file["audio"].ndim == 1 and from_file["audio"].size % 2048 == 0 and from_file["audio"].size > 0
    waveform, rate = sf.read(QUESTION_WAV, dtype="float32")
    from_array = chat(waveform, sampling_rate=rate, max_new_tokens=16, seed=0)
    np.testing.assert_array_equal(from_array["audio"], from_file["audio"])
    from_dict = chat({"raw": waveform, "sampling_rate": rate}, max_new_tokens=16, seed=0)
    np.testing.assert_array_equal(from_dict["audio"], from_file["audio"])
    from_bytes = chat(QUESTION_WAV.read_bytes(), max_new_tokens=16, seed=0)
    np.testing.assert_array_equal(from_bytes["audio"], from_file["audio"])


def test_text_input_text_reply_history_and_voice(chat):
    reply = chat("What is the capital of France?", reply_modality="text", max_new_tokens=6)
    assert reply["audio"].size == 0 and isinstance(reply["text"], str)
    history = [
        {"role": "user", "content": "Hello."},
        {"role": "assistant", "content": [{"type": "text", "text": "Hi, how are you?"}]},
    ]
    with_history = chat(_tone(), sampling_rate=16000, history=history, voice="F10", max_new_tokens=10, seed=1)
    assert with_history["audio"].size > 0


def test_streamed_audio_and_text_equal_the_offline_reply(chat):
    audio = _tone(0.7)
    offline = chat(audio, sampling_rate=16000, max_new_tokens=24, seed=3)
    for frames_per_chunk in (1, 3):
        pieces = list(chat(audio, sampling_rate=16000, max_new_tokens=24, seed=3, stream=True,
                           frames_per_chunk=frames_per_chunk))  # fmt: skip
        streamed = np.concatenate([p["audio"] for p in pieces])
        assert streamed.shape == offline["audio"].shape
        # Stated tolerance: 1e-5 absolute (windowed decoding with exact context; float rounding only).
        np.testing.assert_allclose(streamed, offline["audio"], atol=1e-5, rtol=0)
        assert "".join(p["text"] for p in pieces) == offline["text"]
        assert sum(p["audio"].size > 0 for p in pieces) > 1  # audio really arrives in several chunks


def test_tts_speaks_the_given_text_and_streams_it(checkpoint):
    tts = pipeline("deepomni-tts", model=str(checkpoint))
    sentence = "Paris is the capital of France."
    reply = tts(sentence, max_new_tokens=40, seed=2)
    assert reply["text"] == sentence and reply["audio"].size > 0
    pieces = list(tts(sentence, max_new_tokens=40, seed=2, stream=True))
    assert "".join(p["text"] for p in pieces) == sentence
    np.testing.assert_allclose(np.concatenate([p["audio"] for p in pieces]), reply["audio"], atol=1e-5, rtol=0)


def test_asr_returns_text_only(checkpoint):
    asr = pipeline("deepomni-asr", model=str(checkpoint))
    out = asr(_tone(), sampling_rate=16000, max_new_tokens=5)
    assert set(out) == {"text"}


@pytest.mark.parametrize(
    ("inputs", "kwargs", "message"),
    [
        (np.zeros(16000, np.float32), {"sampling_rate": 16000}, "silent"),
        (np.full(16000, np.nan, np.float32), {"sampling_rate": 16000}, "NaN"),
        (np.zeros(0, np.float32), {"sampling_rate": 16000}, "empty"),
        (_tone(31.0), {"sampling_rate": 16000}, "Split it"),
        (_tone(), {}, "sampling_rate"),
        ("missing_question.wav", {}, "No audio file"),
    ],
)
def test_bad_audio_gets_a_clear_error(chat, inputs, kwargs, message):
    with pytest.raises((DeepOmniAudioError, ValueError), match=message):
        chat(inputs, max_new_tokens=2, **kwargs)


def test_chat_command_writes_the_reply(checkpoint, tmp_path, capsys):
    out = tmp_path / "reply.wav"
    assert main(["chat", "--model", str(checkpoint), str(QUESTION_WAV), "--output", str(out),
                 "--max-new-tokens", "12"]) == 0  # fmt: skip
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 24000 and audio.size > 0
    streamed = tmp_path / "streamed.wav"
    assert main(["chat", "--model", str(checkpoint), str(QUESTION_WAV), "--output", str(streamed),
                 "--max-new-tokens", "12", "--stream"]) == 0  # fmt: skip
    np.testing.assert_allclose(sf.read(streamed, dtype="float32")[0], audio, atol=1e-4)  # 16-bit WAV rounding
    assert main(["chat", "--model", str(checkpoint), "--text", "Hello there.", "--text-only"]) == 0
    assert main(["chat", "--model", str(checkpoint)]) == 2
    assert not list(tmp_path.glob(".*.partial"))


def test_chat_command_reports_bad_audio_without_writing(checkpoint, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    result = subprocess.run(
        [sys.executable, "-m", "deepomni_hf.cli", "chat", "--model", str(checkpoint), str(silent),
         "--output", str(tmp_path / "reply.wav")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0 and "silent" in result.stderr
    assert not (tmp_path / "reply.wav").exists()

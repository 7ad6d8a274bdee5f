# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Dataset builders (deepomni_hf.data): every stage's output lays out in the 8 streams, interrupted builds resume to
the same rows, and bad inputs are skipped and reported, never turned into garbage."""

import argparse
import json
import math
import shutil

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch

from deepomni_hf.data import (
    DatasetBuildError,
    FliteSynthesizer,
    TransformersTTSSynthesizer,
    build_dataset,
    build_dpo_dataset,
    load_codec,
    make_corpus,
    speaker_token,
    to_training_features,
)
from deepomni_hf.data import builders
from deepomni_hf.data.cli import add_data_commands
from deepomni_hf.pipelines.speech_to_speech import ASR_INSTRUCTION, TTS_INSTRUCTION
from deepomni_hf.processors import DeepOmniProcessor
from deepomni_hf.tiny import save_tiny_checkpoint
from deepomni_hf.training.data import normalize_messages


pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="needs Debian flite (apt-get install flite)")

IGNORE = -100
QA = [
    {"question": "What is the capital of France?", "answer": "Paris is the capital of France."},
    {"question": "How are you today?", "answer": "I am fine."},
    {"question": "Why is the sky blue?", "answer": "Because of Rayleigh scattering."},
    {"question": "Who wrote this book?", "answer": "A friend of mine."},
]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def checkpoint(work):
    return str(save_tiny_checkpoint(work / "tiny"))


@pytest.fixture(scope="module")
def processor(checkpoint):
    return DeepOmniProcessor.from_pretrained(checkpoint)


@pytest.fixture(scope="module")
def codec(checkpoint):
    return load_codec(checkpoint)


@pytest.fixture(scope="module")
def corpus(work):
    return make_corpus(work / "corpus", voices="flite:awb,flite:slt", limit=4)


@pytest.fixture(scope="module")
def qa_manifest(work):
    path = work / "qa.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in QA))
    return str(path)


def check_layout(processor, codec, row):
    """The row lays out as DESIGN §3 says: prompt labels −100, answer text then EOT, speaker token before the answer,
    the codes in a staircase closed by EOA, and the codes decode to ceil(samples_24k / 2048) frames of audio."""
    messages = normalize_messages(row["messages"])
    out = processor.apply_chat_template(messages, output_labels=True, return_tensors="np")
    ids, labels = out["input_ids"][0], out["labels"][0]
    vocab = processor.vocabulary
    assert ids.shape[1] == 8 and labels.shape == ids.shape
    answer = int(np.flatnonzero(labels[:, 7] != IGNORE)[0])
    assert (labels[:answer] == IGNORE).all(), "the prompt must carry no targets"
    decoded = processor.decode_output(ids, start=answer)
    assert decoded.text == row["text"]
    eot = answer + len(decoded.text_token_ids)
    assert ids[eot, 7] == vocab.text_token_id("EOT")
    spoken_turns = sum(item["type"] == "audio" for m in messages for item in m["content"])
    assert (out.get("input_features") is not None) == (spoken_turns > 0)
    if spoken_turns:
        assert out["input_features"].shape[0] == spoken_turns
        assert (ids[:, :7] == vocab.audio_row("BOA")).all(axis=1).sum() == spoken_turns
    codes_item = next((item for item in messages[-1]["content"] if item["type"] == "audio_codes"), None)
    if codes_item is None:
        assert (labels[:, :7] == IGNORE).all()
        return
    codes = np.asarray(codes_item["codes"])
    frames = len(codes)
    assert frames == row["num_frames"] > 0
    assert (ids[answer - 1, :7] == vocab.audio_row(row["voice"])).all()
    for slot in range(7):
        assert (ids[answer : answer + slot + 1, slot] == vocab.audio_token_id("PAD_A", slot)).all()
        staircase = ids[answer + slot + 1 : answer + slot + 1 + frames, slot] - vocab.audio_slot_offset(slot)
        np.testing.assert_array_equal(staircase, codes[:, slot])
        assert ids[answer + slot + 1 + frames, slot] == vocab.audio_token_id("EOA", slot)
    np.testing.assert_array_equal(decoded.audio_codes.numpy(), codes)
    samples_24k = round(row["answer_seconds"] * 24000)
    assert frames == math.ceil(samples_24k / 2048)
    with torch.no_grad(), torch.jit.optimized_execution(False):
        audio = codec.decode(torch.as_tensor(codes)[None].long())
    assert audio.shape[-1] == frames * 2048


# ----- (1) every stage -----


@pytest.mark.parametrize("stage", ["alignment", "speech", "text", "joint", "tts"])
def test_stage_builds_valid_examples(stage, work, corpus, qa_manifest, checkpoint, processor, codec):
    source = corpus if stage in ("alignment", "tts") else qa_manifest
    data, report = build_dataset(stage, source, work / f"out-{stage}", codec=checkpoint, tts="flite:slt,flite:awb",
                                 shard_size=2, batch_size=2)  # fmt: skip
    assert len(data) == 4 and report["num_skipped"] == 0
    assert (work / f"out-{stage}" / "build_report.json").exists()
    assert not (work / f"out-{stage}.work").exists()
    assert datasets.load_from_disk(str(work / f"out-{stage}")).to_list() == data.to_list()
    tasks = set(data["task"])
    for row in data:
        check_layout(processor, codec, row)
        system = row["messages"][0]
        if stage == "alignment":
            assert system["content"][0]["text"] == ASR_INSTRUCTION
        if stage == "tts":
            assert system["content"][0]["text"] == TTS_INSTRUCTION
        if row["task"] == "spoken_qa":
            assert row["voice"] == speaker_token(row["tts_voice"])
    expected = {"alignment": {"asr"}, "speech": {"spoken_qa"}, "text": {"text_qa"}, "tts": {"tts"}}
    if stage == "joint":
        assert tasks <= {"spoken_qa", "text_qa"}
    else:
        assert tasks == expected[stage]
    laid_out = to_training_features(data, processor)
    assert {"input_ids", "labels", "attention_mask", "input_features"} <= set(laid_out.column_names)
    assert np.asarray(laid_out[0]["input_ids"]).shape[1] == 8


def test_joint_spoken_probability_is_seeded(work, checkpoint):
    qa_manifest = datasets.Dataset.from_list(QA[:2])
    all_text, _ = build_dataset("joint", qa_manifest, work / "joint-0", codec=checkpoint, spoken_probability=0.0)
    all_spoken, _ = build_dataset("joint", qa_manifest, work / "joint-1", codec=checkpoint, spoken_probability=1.0)
    assert set(all_text["task"]) == {"text_qa"} and set(all_spoken["task"]) == {"spoken_qa"}
    again, _ = build_dataset("joint", qa_manifest, work / "joint-1b", codec=checkpoint, spoken_probability=1.0)
    assert again.to_list() == all_spoken.to_list()


def test_dpo_pairs(work, checkpoint, processor):
    speech, _ = build_dataset("speech", datasets.Dataset.from_list(QA[:2]), work / "dpo-src", codec=checkpoint)
    pairs, report = build_dpo_dataset(speech, work / "dpo", model=checkpoint, num_samples=2,
                                      max_new_tokens=12)  # fmt: skip
    # A random tiny model never closes its answer in 12 steps: every sample is rejected, the reference is chosen.
    assert len(pairs) == 2 and report["num_skipped"] == 0
    for row, source in zip(pairs, speech):
        assert row["chosen_source"] == "reference" and row["rejected_reason"] == "no_eoa"
        assert row["chosen_codes"] == source["messages"][-1]["content"][1]["codes"]
        assert len(row["rejected_codes"]) > 0 and row["text"] == source["text"]
    laid_out = to_training_features(pairs, processor)
    row = laid_out[0]
    assert np.asarray(row["chosen_input_ids"]).shape[1] == 8 and np.asarray(row["rejected_labels"]).shape[1] == 8
    # Sampling cannot run in forked workers: num_proc is refused with a warning and the result is the same.
    with pytest.warns(UserWarning, match="num_proc=2 ignored"):
        again, _ = build_dpo_dataset(speech, work / "dpo-2", model=checkpoint, num_samples=2, max_new_tokens=12,
                                     num_proc=2)  # fmt: skip
    assert again.to_list() == pairs.to_list()


# ----- (2) resume -----


def test_interrupted_build_resumes_to_the_same_rows(work, qa_manifest, checkpoint, monkeypatch):
    options = dict(codec=checkpoint, tts="flite:slt,flite:awb", shard_size=1, batch_size=1, spoken_probability=0.5)
    reference, _ = build_dataset("joint", qa_manifest, work / "full", **options)
    with pytest.raises(RuntimeError, match="injected failure"):
        build_dataset("joint", qa_manifest, work / "resumed", fail_after=2, **options)
    shards = sorted(p.name for p in (work / "resumed.work").glob("shard-*"))
    assert shards == ["shard-00000", "shard-00001"]
    with pytest.raises(DatasetBuildError, match="other settings"):
        build_dataset("joint", qa_manifest, work / "resumed", **{**options, "seed": 1})
    # The rerun builds only the unfinished shards (rows 2 and 3), and may use another process count.
    calls = []
    original = builders.ExampleBuilder.example

    def counting(self, row, index, timings):
        calls.append(index)
        return original(self, row, index, timings)

    monkeypatch.setattr(builders.ExampleBuilder, "example", counting)
    resumed, _ = build_dataset("joint", qa_manifest, work / "resumed", **options)
    assert sorted(calls) == [2, 3]
    assert resumed.to_list() == reference.to_list()
    assert not (work / "resumed.work").exists()


# ----- (3) bad inputs -----


def test_missing_columns_are_named(work, checkpoint):
    table = datasets.Dataset.from_dict({"prompt": ["hi"], "reply": ["hello"]})
    with pytest.raises(DatasetBuildError, match=r"\['answer', 'question'\].*prompt"):
        build_dataset("speech", table, work / "bad-columns", codec=checkpoint)
    with pytest.raises(DatasetBuildError, match=r"\['audio', 'text'\]"):
        build_dataset("alignment", table, work / "bad-columns", codec=checkpoint)
    fixed, _ = build_dataset("text", table, work / "renamed", question_column="prompt", answer_column="reply")
    assert fixed[0]["question"] == "hi" and fixed[0]["text"] == "hello"


def test_bad_audio_and_text_are_skipped_and_reported(work):
    folder = work / "folder"
    folder.mkdir()
    speech, rate = FliteSynthesizer("kal16").synthesize("The quick brown fox jumps over the lazy dog.")[:2]
    assert rate == 16000
    sf.write(folder / "good.wav", speech, rate)
    (folder / "good.txt").write_text("The quick brown fox jumps over the lazy dog.\n")
    import torchaudio.functional as F

    at_8k = F.resample(torch.from_numpy(speech), rate, 8000).numpy()
    sf.write(folder / "rate8k.wav", at_8k, 8000)
    (folder / "rate8k.txt").write_text("The quick brown fox jumps over the lazy dog.")
    at_44k = F.resample(torch.from_numpy(speech), rate, 44100).numpy()
    sf.write(folder / "rate44k.flac", np.stack([at_44k, at_44k], axis=1), 44100)  # stereo
    (folder / "rate44k.txt").write_text("The quick brown fox jumps over the lazy dog.")
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (folder / "broken.txt").write_text("broken")
    sf.write(folder / "empty_text.wav", speech, rate)
    (folder / "empty_text.txt").write_text("   \n")
    sf.write(folder / "long.wav", np.tile(speech, 1 + int(31 * rate / len(speech))), rate)
    (folder / "long.txt").write_text("long")
    sf.write(folder / "silent.wav", np.zeros(rate, np.float32), rate)
    (folder / "silent.txt").write_text("silence")
    sf.write(folder / "no_transcript.wav", speech, rate)

    data, report = build_dataset("alignment", str(folder), work / "folder-out")
    reasons = {s["id"]: s["reason"] for s in report["skipped"]}
    assert reasons == {
        "broken": "unreadable_audio",
        "empty_text": "empty_text",
        "long": "audio_too_long",
        "silent": "silent_audio",
        "no_transcript": "empty_text",
    }
    assert report["num_examples"] == 3 and report["num_input"] == 8
    on_disk = json.loads((work / "folder-out" / "build_report.json").read_text())
    assert on_disk["skipped_by_reason"] == {"unreadable_audio": 1, "empty_text": 2, "audio_too_long": 1,
                                            "silent_audio": 1}  # fmt: skip
    rows = {row["id"]: row for row in data}
    assert set(rows) == {"good", "rate8k", "rate44k"}
    for row in rows.values():
        audio = row["messages"][1]["content"][0]["audio"]
        assert audio["sampling_rate"] == 16000
        # resampled to 16 kHz, not reinterpreted: the same duration as the 16 kHz original (± a few samples)
        assert abs(len(audio["array"]) - len(speech)) <= 4
        assert row["audio_seconds"] == pytest.approx(len(speech) / 16000, abs=1e-3)
    good = np.asarray(rows["good"]["messages"][1]["content"][0]["audio"]["array"])
    np.testing.assert_allclose(good, speech, atol=1e-6)
    from_44k = np.asarray(rows["rate44k"]["messages"][1]["content"][0]["audio"]["array"])
    size = min(len(from_44k), len(good))
    assert np.corrcoef(from_44k[:size], good[:size])[0, 1] > 0.95


def test_too_long_answers_and_failed_tts_are_skipped(work, checkpoint):
    table = datasets.Dataset.from_dict(
        {"question": ["Say something.", "Say more."], "answer": ["Fine.", "This answer is much too long to keep."]}
    )
    data, report = build_dataset("speech", table, work / "long-answer", codec=checkpoint, max_answer_seconds=1.0)
    assert data["text"] == ["Fine."]
    assert report["skipped_by_reason"] == {"answer_too_long": 1}
    with pytest.raises(DatasetBuildError, match="other settings|exists"):
        build_dataset("speech", table, work / "long-answer", codec=checkpoint)


# ----- TTS backends and the CLI -----


def test_speaker_table_and_transformers_backend():
    assert speaker_token("flite:slt") == "F10" and speaker_token("flite:awb") == "M29"
    assert speaker_token("espeak:en+f3") == "F10" and speaker_token("espeak:en") == "M29"
    assert speaker_token("hf:some/model") == "ANS_A"

    def fake_pipeline(text, **kwargs):
        return {"audio": np.full((1, 800), 0.1, np.float32), "sampling_rate": 8000}

    backend = TransformersTTSSynthesizer(fake_pipeline, voice_name="hf:fake")
    waveform, rate, name = backend.synthesize("hello")
    assert waveform.shape == (800,) and rate == 8000 and name == "hf:fake" and backend.speaker == "ANS_A"
    assert TransformersTTSSynthesizer(fake_pipeline, speaker="F10").speaker == "F10"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian espeak-ng")
def test_espeak_backend():
    from deepomni_hf.data import EspeakSynthesizer

    waveform, rate, name = EspeakSynthesizer().synthesize("Hello world.")
    assert waveform.dtype == np.float32 and rate > 0 and len(waveform) > rate // 4 and name == "espeak:en"


def test_cli(work, qa_manifest):
    parser = argparse.ArgumentParser()
    add_data_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["build-dataset", "--stage", "text", "--input", qa_manifest, "--output",
                              str(work / "cli-text"), "--num-proc", "1"])  # fmt: skip
    assert args.func(args) == 0
    assert len(datasets.load_from_disk(str(work / "cli-text"))) == len(QA)
    text_file = work / "sentences.txt"
    text_file.write_text("One short line.\n\nAnother short line.\n")
    args = parser.parse_args(["make-corpus", "--output", str(work / "cli-corpus"), "--text-file", str(text_file),
                              "--voices", "flite:rms"])  # fmt: skip
    assert args.func(args) == 0
    corpus = datasets.load_from_disk(str(work / "cli-corpus"))
    assert corpus["text"] == ["One short line.", "Another short line."] and set(corpus["voice"]) == {"M29"}

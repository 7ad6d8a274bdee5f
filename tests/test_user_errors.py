"""Every user mistake gets one clear error, and no bad input is silently accepted (issue 14).

One table per surface: each case names the bad input, the exception type (library) or exit code (`deepomni`, run in
process through `deepomni_hf.cli.main`), a phrase of the message, and the paths that must not exist afterwards.
CLI errors must be exactly one line `deepomni <command>: error: ...` (exit 1) or argparse's usage + one error line
(exit 2).
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import pipeline

from deepomni_hf import DeepOmniConfig, DeepOmniProcessor
from deepomni_hf.checkpoints import check_checkpoint
from deepomni_hf.cli import main
from deepomni_hf.data.builders import DatasetBuildError, build_dataset
from deepomni_hf.data.corpus import make_corpus
from deepomni_hf.data.tts import UnknownVoiceError, get_synthesizer
from deepomni_hf.errors import CheckpointError, DeepOmniUserError
from deepomni_hf.processors.audio import DeepOmniAudioError
from deepomni_hf.tiny import save_tiny_checkpoint, tiny_config
from tiny_models import speech_span_ids, text_only_ids


QUESTION_WAV = Path(__file__).parents[1] / "examples" / "audio" / "question.wav"


# ----- fixtures: one tiny checkpoint, its faulty copies, a pipeline, small inputs -----


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("user_errors")


@pytest.fixture(scope="module")
def ckpt(work):
    return save_tiny_checkpoint(work / "ckpt")


def _variant(ckpt: Path, work: Path, name: str, change) -> Path:
    target = work / name
    if not target.exists():
        shutil.copytree(ckpt, target)
        change(target)
    return target


def _edit_config(**values):
    def change(folder):
        config = json.loads((folder / "config.json").read_text())
        for key, value in values.items():
            section, _, field = key.partition(".")
            (config[section] if field else config)[field or key] = value
        (folder / "config.json").write_text(json.dumps(config))

    return change


def _truncate(folder):
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])


FAULTS = {
    "no_config": lambda f: (f / "config.json").unlink(),
    "bad_json": lambda f: (f / "config.json").write_text("{not json"),
    "empty_weights": lambda f: (f / "model.safetensors").write_bytes(b""),
    "truncated_weights": _truncate,
    "no_weights": lambda f: (f / "model.safetensors").unlink(),
    "no_tokenizer": lambda f: [(f / n).unlink() for n in ("tokenizer.json", "tokenizer_config.json")],
    # A foreign checkpoint with custom code: transformers would ask "[y/N]" whether to run it.
    "foreign": _edit_config(model_type="llama", auto_map={"AutoConfig": "configuration_x.XConfig"}),
    "layers_mismatch": _edit_config(**{"text_config.num_hidden_layers": 4, "text_config.speech_experts": [[]] * 4}),
    "vocab_mismatch": _edit_config(text_vocab_size=600),
    "hidden_mismatch": _edit_config(**{"text_config.hidden_size": 128}),
    "bad_top_k": _edit_config(**{"text_config.num_experts_per_tok": 0}),
}


@pytest.fixture(scope="module")
def faulty(ckpt, work):
    return {name: _variant(ckpt, work, name, change) for name, change in FAULTS.items()}


@pytest.fixture(scope="module")
def chat(ckpt):
    return pipeline("speech-to-speech", model=str(ckpt))


@pytest.fixture(scope="module")
def model(chat):
    return chat.model


@pytest.fixture(scope="module")
def files(work):
    """Small input files for the data commands."""
    paths = {
        "broken_jsonl": work / "broken.jsonl",
        "empty_jsonl": work / "empty.jsonl",
        "wrong_columns": work / "wrong.jsonl",
        "good_qa": work / "qa.jsonl",
        "xml": work / "data.xml",
        "low_rate_wav": work / "low_rate.wav",
        "sentences": work / "sentences.txt",
        "existing": work / "existing_output",
    }
    paths["broken_jsonl"].write_text('{"question": "Hi?", "answer": "Hello."}\n{"question": "broken\n')
    paths["empty_jsonl"].write_text("")
    paths["wrong_columns"].write_text('{"prompt": "Hi?", "reply": "Hello."}\n')
    paths["good_qa"].write_text('{"question": "Hi?", "answer": "Hello."}\n')
    paths["xml"].write_text("<data/>")
    sf.write(paths["low_rate_wav"], (0.1 * np.sin(np.arange(2000) / 3)).astype(np.float32), 2000)
    paths["sentences"].write_text("One sentence here.\n")
    paths["existing"].mkdir()
    import datasets

    paths["dataset"] = work / "saved_dataset"
    datasets.Dataset.from_dict({"text": ["Hello."]}).save_to_disk(str(paths["dataset"]))
    return paths


def _tone(seconds=1.0, rate=16000):
    return (0.1 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _expect(call, error_type, phrase):
    with pytest.raises(error_type) as caught:
        call()
    message = " ".join(str(caught.value).split())
    assert phrase.lower() in message.lower(), message


# ----- the pipeline -----

PIPELINE_CASES = {
    "missing path with a folder, no audio extension": (("clips/question",), {}, DeepOmniAudioError, "No audio file"),
    "missing file with a text extension": (("question.txt",), {}, DeepOmniAudioError, "No audio file"),
    "missing relative path": (("./recording",), {}, DeepOmniAudioError, "No audio file"),
    "missing home path": (("~/no/such/question",), {}, DeepOmniAudioError, "No audio file"),
    "missing wav": (("nope.wav",), {}, DeepOmniAudioError, "No audio file"),
    "url": (("https://example.com/q.wav",), {}, DeepOmniAudioError, "No audio file"),
    "empty text": (("",), {}, ValueError, "empty"),
    "blank text": (("   ",), {}, ValueError, "empty"),
    "rate 1e9": ((_tone(),), {"sampling_rate": 1_000_000_000}, DeepOmniAudioError, "outside the rates"),
    "rate 0": ((_tone(),), {"sampling_rate": 0}, DeepOmniAudioError, "positive"),
    "negative rate": ((_tone(),), {"sampling_rate": -16000}, DeepOmniAudioError, "positive"),
    "fractional rate": ((_tone(),), {"sampling_rate": 16000.5}, DeepOmniAudioError, "whole number"),
    "rate 100 Hz": ((_tone(),), {"sampling_rate": 100}, DeepOmniAudioError, "outside the rates"),
    "NaN samples": ((np.full(16000, np.nan, np.float32),), {"sampling_rate": 16000}, DeepOmniAudioError, "NaN"),
    "3-D waveform": ((np.zeros((2, 2, 16000), np.float32),), {"sampling_rate": 16000}, DeepOmniAudioError, "1-D"),
    "complex waveform": ((_tone().astype(np.complex64),), {"sampling_rate": 16000}, DeepOmniAudioError, "complex"),
    "array without rate": ((_tone(),), {}, DeepOmniAudioError, "sampling_rate"),
    "dict without rate": (({"array": _tone()},), {}, DeepOmniAudioError, "sampling_rate"),
    "max_new_tokens 0": (("Hello there.",), {"max_new_tokens": 0}, ValueError, "max_new_tokens"),
    "unknown reply modality": (("Hello there.",), {"reply_modality": "video"}, ValueError, "reply_modality"),
    "unknown voice token": (("Hello there.",), {"voice": "X99"}, ValueError, "voice must be one of"),
    "max_new_tokens 1.5": (("Hello there.",), {"max_new_tokens": 1.5}, ValueError, "max_new_tokens"),
    "top_p 2": (("Hello there.",), {"top_p": 2.0, "do_sample": True}, ValueError, "top_p must be in (0, 1]"),
    "audio_top_p 0": (("Hello there.",), {"audio_top_p": 0.0}, ValueError, "audio_top_p must be in (0, 1]"),
    "audio_top_k -3": (("Hello there.",), {"audio_top_k": -3}, ValueError, "audio_top_k"),
    "temperature 0": (("Hello there.",), {"temperature": 0.0, "do_sample": True}, ValueError, "temperature"),
    "repetition_penalty 0": (("Hello there.",), {"repetition_penalty": 0.0}, ValueError, "repetition_penalty"),
    "seed not a number": (("Hello there.",), {"seed": "a"}, ValueError, "seed must be a whole number"),
    "misspelt setting": (("Hello there.",), {"temprature": 0.5}, TypeError, "unexpected keyword"),
    "history not messages": (("Hello there.",), {"history": "hello"}, ValueError, "must be a dict"),
}


@pytest.mark.parametrize("case", list(PIPELINE_CASES))
def test_pipeline_rejects(chat, case):
    args, kwargs, error_type, phrase = PIPELINE_CASES[case]
    _expect(lambda: chat(*args, max_new_tokens=kwargs.pop("max_new_tokens", 2), **kwargs), error_type, phrase)


def test_pipeline_rejects_a_wav_at_an_absurd_rate(chat, files):
    _expect(lambda: chat(str(files["low_rate_wav"]), max_new_tokens=2), DeepOmniAudioError, "outside the rates")


def test_text_that_does_not_look_like_a_path_is_still_a_question(chat):
    for question in ("What is 3/4?", "Hello.", "3.14", "Why is the sky blue"):
        assert isinstance(chat(question, reply_modality="text", max_new_tokens=2)["text"], str)


# ----- the model -----


def _model_cases(config):
    span = speech_span_ids(config, prefix=2, frames=3, suffix=2)
    features = torch.zeros(1, 80, 3000)
    text_in_audio = text_only_ids(config, 1, 6)
    text_in_audio[0, 2, 3] = 5  # a text id in audio slot 3
    audio_in_text = text_only_ids(config, 1, 6)
    audio_in_text[0, 1, 7] = config.audio_slot_offset(0) + 1
    raw_code = text_only_ids(config, 1, 6)
    raw_code[0, 1, 0] = 17  # a raw codec code without its slot offset
    ids = text_only_ids(config, 1, 6)
    return {
        "speech span without input_features": ({"input_ids": span}, "no input_features"),
        "NaN input_features": ({"input_ids": span, "input_features": torch.full((1, 80, 3000), float("nan"))}, "NaN"),
        "inf input_features": ({"input_ids": span, "input_features": features.fill_(float("inf")).clone()}, "infinite"),
        "text id in an audio slot": ({"input_ids": text_in_audio}, "audio slot 3"),
        "audio id in the text stream": ({"input_ids": audio_in_text}, "text stream"),
        "raw code without slot offset": ({"input_ids": raw_code}, "audio slot 0"),
        "float ids": ({"input_ids": ids.float()}, "integer ids"),
        "2-D ids": ({"input_ids": ids[..., 7]}, "[batch, positions, 8]"),
        "wrong number of mel bins": ({"input_ids": span, "input_features": torch.zeros(1, 128, 3000)}, "80 mel bins"),
        "features not 30 s": ({"input_ids": span, "input_features": torch.zeros(1, 80, 100)}, "input_features must have shape"),
        "two features for one span": ({"input_ids": span, "input_features": torch.zeros(2, 80, 3000)}, "span(s)"),
        "labels shorter than input_ids": ({"input_ids": ids, "labels": ids[:, :4]}, "labels must have the shape"),
        "float labels": ({"input_ids": ids, "labels": ids.float()}, "integer ids"),
        "2-D labels": ({"input_ids": ids, "labels": ids[..., 7]}, "labels must have the shape"),
        "labels in the wrong stream": ({"input_ids": ids, "labels": audio_in_text}, "outside that stream's range"),
    }


MODEL_CASE_NAMES = list(_model_cases(tiny_config()))


@pytest.mark.parametrize("case", MODEL_CASE_NAMES)
def test_model_forward_rejects(model, case):
    kwargs, phrase = _model_cases(model.config)[case]
    with torch.no_grad():
        _expect(lambda: model(**kwargs), ValueError, phrase)


def test_generate_checks_the_prompt_once(model):
    span = speech_span_ids(model.config, prefix=2, frames=3, suffix=2)
    _expect(lambda: model.generate(span, max_new_tokens=2, reply_modality="text"), ValueError, "no input_features")
    _expect(lambda: model.generate(span.float(), max_new_tokens=2), ValueError, "integer ids")


def test_model_settings_are_checked(model):
    _expect(lambda: model.set_routing_mode("bogus"), ValueError, "routing_mode must be one of")
    _expect(lambda: model.set_speech_experts([[0]]), ValueError, "one list per decoder layer")


# ----- configuration -----

CONFIG_CASES = {
    "num_experts_per_tok 0": ({"num_experts_per_tok": 0}, "num_experts_per_tok"),
    "num_experts_per_tok above experts": ({"num_experts_per_tok": 99}, "num_experts_per_tok"),
    "no routed experts": ({"n_routed_experts": 0}, "n_routed_experts"),
    "negative dense layers": ({"first_k_dense_replace": -1}, "first_k_dense_replace"),
    "dense layers beyond the model": ({"first_k_dense_replace": 9}, "first_k_dense_replace"),
    "negative shared experts": ({"n_shared_experts": -1}, "n_shared_experts"),
    "negative aux loss": ({"router_aux_loss_coef": -1.0}, "router_aux_loss_coef"),
    "speech expert id out of range": ({"speech_experts": [[], [0, 1, 99], [0, 1]]}, "out of range"),
    "unknown routing mode": ({"routing_mode": "audio"}, "routing_mode"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_rejects(case):
    overrides, phrase = CONFIG_CASES[case]
    _expect(lambda: tiny_config(**overrides), (ValueError, StrictDataclassError), phrase)


def test_config_vocabulary_and_mel_bins_are_checked():
    _expect(lambda: DeepOmniConfig(text_config={"vocab_size": 10}), (ValueError, StrictDataclassError), "vocab_size")
    _expect(lambda: DeepOmniConfig(audio_config={"num_mel_bins": 128}), (ValueError, StrictDataclassError), "80")


# ----- processor -----


def test_processor_rejects_bad_messages(ckpt):
    processor = DeepOmniProcessor.from_pretrained(ckpt)
    user = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    _expect(lambda: processor.apply_chat_template(user, add_generation_prompt=True, voice="X99"), ValueError, "voice")
    video = [{"role": "user", "content": [{"type": "video", "video": "x"}]}]
    _expect(lambda: processor.apply_chat_template(video, add_generation_prompt=True), ValueError, "'video'")
    robot = [{"role": "robot", "content": "hi"}]
    _expect(lambda: processor.apply_chat_template(robot, add_generation_prompt=True), ValueError, "robot")


# ----- checkpoints -----

CHECKPOINT_CASES = {
    "no_config": "no config.json",
    "bad_json": "not valid JSON",
    "empty_weights": "is empty (0 bytes)",
    "truncated_weights": "truncated",
    "no_weights": "has no model.safetensors",
    "foreign": "not a DeepOmni one",
    "layers_mismatch": "does not match the weights",
    "vocab_mismatch": "vocab_size",
    "hidden_mismatch": "does not match the weights",
    "bad_top_k": "num_experts_per_tok",
}


@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_checkpoint_faults_are_one_clear_error(faulty, case):
    _expect(lambda: check_checkpoint(faulty[case]), CheckpointError, CHECKPOINT_CASES[case])


def test_checkpoint_missing_folder_tokenizer_and_offline_hub(faulty, work):
    _expect(lambda: check_checkpoint(work / "no_such_checkpoint"), CheckpointError, "no such folder")
    _expect(lambda: check_checkpoint(faulty["no_tokenizer"], need_tokenizer=True), CheckpointError, "no tokenizer")
    _expect(lambda: check_checkpoint("some-org/no-such-model"), CheckpointError, "HF_HUB_OFFLINE is set")


# ----- TTS voices: checked before anything is spoken -----


@pytest.mark.parametrize(
    ("spec", "phrase"),
    [
        ("flite:nosuchvoice", "flite has no voice"),
        ("espeak:nosuchvoice", "espeak-ng has no voice"),
        ("espeak:en+nosuchvariant", "no voice variant"),
        ("piper:/no/such/voice.onnx", "Piper voice"),
        ("festival:kal", "Unknown TTS backend"),
        ("hf:", "hf needs a model id"),
    ],
)
def test_unknown_voices_are_rejected_before_synthesis(spec, phrase):
    _expect(lambda: get_synthesizer(spec), UnknownVoiceError, phrase)


# ----- data builders (library) -----


def test_builder_options_are_range_checked(files, work):
    output = work / "lib_out"
    _expect(lambda: build_dataset("joint", files["good_qa"], output, spoken_probability=2.0), DatasetBuildError,
            "spoken_probability must be a number between 0 and 1")  # fmt: skip
    _expect(lambda: build_dataset("text", files["good_qa"], output, shard_size=0), DatasetBuildError, "shard_size")
    _expect(lambda: make_corpus(work / "corpus_lib", limit=-1), ValueError, "limit")
    assert not output.exists() and not (work / "lib_out.work").exists() and not (work / "corpus_lib").exists()


# ----- every `deepomni` subcommand, in process -----


def _cli_cases(ckpt, faulty, files, work):
    out = work / "cli_out"
    corpus_out = work / "corpus_out"
    wav = str(QUESTION_WAV)
    build = ["build-dataset", "--output", str(out)]
    corpus = ["make-corpus", "--output", str(corpus_out), "--text-file", str(files["sentences"])]
    assign = ["assign-experts", "--speech-data", str(work), "--text-data", str(work), "--output", str(out)]  # + --model
    return {
        # chat
        "chat: a question typed as INPUT": (["chat", "--model", str(ckpt), "what is this"], 1, "no audio file"),
        "chat: missing wav": (["chat", "--model", str(ckpt), "nope.wav"], 1, "no audio file"),
        "chat: --max-new-tokens 0": (["chat", "--model", str(ckpt), wav, "--max-new-tokens", "0"], 2, "at least 1"),
        "chat: --max-new-tokens -5": (["chat", "--model", str(ckpt), wav, "--max-new-tokens", "-5"], 2, "at least 1"),
        "chat: --max-new-tokens abc": (["chat", wav, "--max-new-tokens", "abc"], 2, "expected a whole number"),
        "chat: --seed -1": (["chat", wav, "--seed", "-1"], 2, "0 or more"),
        "chat: INPUT and --text": (["chat", "--model", str(ckpt), wav, "--text", "Hi"], 2, "not both or neither"),
        "chat: neither": (["chat", "--model", str(ckpt)], 2, "not both or neither"),
        "chat: empty --text": (["chat", "--model", str(ckpt), "--text", " "], 1, "--text is empty"),
        "chat: output in a missing folder": (["chat", "--text", "Hi", "--output", str(work / "no" / "r.wav")], 1,
                                             "existing folder"),  # fmt: skip
        "chat: unknown --voice": (["chat", wav, "--voice", "BOB"], 2, "invalid choice"),
        "chat: output not a .wav": (["chat", "--text", "Hi", "--output", str(work / "reply.mp3")], 1, ".wav file path"),
        "chat: missing model folder": (["chat", "--model", str(work / "nope"), wav], 1, "no such folder"),
        "chat: truncated weights": (["chat", "--model", str(faulty["truncated_weights"]), wav], 1, "truncated"),
        "chat: empty weights": (["chat", "--model", str(faulty["empty_weights"]), wav], 1, "empty"),
        "chat: no config.json": (["chat", "--model", str(faulty["no_config"]), wav], 1, "no config.json"),
        "chat: foreign model_type": (["chat", "--model", str(faulty["foreign"]), wav], 1, "not a DeepOmni one"),
        "chat: config not matching weights": (["chat", "--model", str(faulty["layers_mismatch"]), wav], 1,
                                              "does not match the weights"),  # fmt: skip
        "chat: hub id offline": (["chat", "--model", "some-org/no-such-model", wav], 1, "could not be fetched"),
        # make-corpus
        "make-corpus: --limit -1": ([*corpus, "--limit", "-1"], 2, "at least 1"),
        "make-corpus: --limit 0": ([*corpus, "--limit", "0"], 2, "at least 1"),
        "make-corpus: --num-proc 0": ([*corpus, "--num-proc", "0"], 2, "at least 1"),
        "make-corpus: unknown flite voice": ([*corpus, "--voices", "flite:nosuchvoice"], 1, "flite has no voice"),
        "make-corpus: unknown espeak voice": ([*corpus, "--voices", "espeak:nosuchvoice"], 1, "espeak-ng has no voice"),
        "make-corpus: unknown espeak variant": ([*corpus, "--voices", "espeak:en+zzz"], 1, "no voice variant"),
        "make-corpus: missing piper voice": ([*corpus, "--voices", "piper:/no/voice.onnx"], 1, "Piper voice"),
        "make-corpus: unknown backend": ([*corpus, "--voices", "say:alex"], 1, "Unknown TTS backend"),
        "make-corpus: missing text file": (["make-corpus", "--output", str(corpus_out), "--text-file",
                                            str(work / "none.txt")], 1, "No such file"),  # fmt: skip
        "make-corpus: existing output": (["make-corpus", "--output", str(files["existing"])], 1, "exists"),
        "make-corpus: --test-fact-share 1.5": (["make-corpus", "--task", "spoken-qa", "--output", str(corpus_out),
                                                "--test-fact-share", "1.5"], 2, "between 0 and 1"),  # fmt: skip
        "make-corpus: --voices-per-question 0": (["make-corpus", "--task", "spoken-qa", "--output", str(corpus_out),
                                                  "--voices-per-question", "0"], 2, "at least 1"),  # fmt: skip
        "make-corpus: jsonl for sentences": ([*corpus, "--format", "jsonl"], 2, "is for --task spoken-qa"),
        "make-corpus: unknown test voice": (["make-corpus", "--task", "spoken-qa", "--output", str(corpus_out),
                                             "--test-voice", "flite:nobody"], 1, "not one of the question voices"),  # fmt: skip
        "make-corpus: voices for a text-only export": (["make-corpus", "--task", "spoken-qa", "--format", "jsonl",
                                                        "--output", str(corpus_out), "--test-voice", "flite:slt"], 2,
                                                       "--test-voice do(es) nothing"),  # fmt: skip
        "make-corpus: spoken-qa option for sentences": ([*corpus, "--answer-voice", "flite:awb"], 2,
                                                        "--answer-voice do(es) nothing"),  # fmt: skip
        # build-dataset
        "build-dataset: --spoken-probability 2": ([*build, "--stage", "joint", "--input", str(files["good_qa"]),
                                                   "--spoken-probability", "2"], 2, "between 0 and 1"),  # fmt: skip
        "build-dataset: --spoken-probability -0.1": ([*build, "--stage", "joint", "--input", str(files["good_qa"]),
                                                      "--spoken-probability", "-0.1"], 2, "between 0 and 1"),  # fmt: skip
        "build-dataset: --spoken-probability nan": ([*build, "--stage", "joint", "--input", str(files["good_qa"]),
                                                     "--spoken-probability", "nan"], 2, "finite"),  # fmt: skip
        "build-dataset: --shard-size 0": ([*build, "--stage", "text", "--input", str(files["good_qa"]),
                                           "--shard-size", "0"], 2, "at least 1"),  # fmt: skip
        "build-dataset: --max-audio-seconds 0": ([*build, "--stage", "text", "--input", str(files["good_qa"]),
                                                  "--max-audio-seconds", "0"], 2, "greater than 0"),  # fmt: skip
        "build-dataset: unknown stage": ([*build, "--stage", "pretrain", "--input", str(files["good_qa"])], 2,
                                         "invalid choice"),  # fmt: skip
        "build-dataset: missing input": ([*build, "--stage", "text", "--input", str(work / "none.jsonl")], 1,
                                         "No file or folder"),  # fmt: skip
        "build-dataset: broken JSONL line": ([*build, "--stage", "text", "--input", str(files["broken_jsonl"])], 1,
                                             "Cannot parse the manifest"),  # fmt: skip
        "build-dataset: empty JSONL": ([*build, "--stage", "text", "--input", str(files["empty_jsonl"])], 1,
                                       "is empty"),  # fmt: skip
        "build-dataset: wrong columns": ([*build, "--stage", "text", "--input", str(files["wrong_columns"])], 1,
                                         "needs column(s)"),  # fmt: skip
        "build-dataset: unsupported manifest": ([*build, "--stage", "text", "--input", str(files["xml"])], 1,
                                                "Cannot read a manifest"),  # fmt: skip
        "build-dataset: unknown TTS voice": ([*build, "--stage", "text", "--input", str(files["good_qa"]), "--tts",
                                              "flite:nosuchvoice"], 1, "flite has no voice"),  # fmt: skip
        "build-dataset: speech stage without --model": ([*build, "--stage", "speech", "--input", str(files["good_qa"])],
                                                        1, "--model CHECKPOINT"),  # fmt: skip
        "build-dataset: truncated --model": ([*build, "--stage", "tts", "--input", str(files["good_qa"]), "--text-column",
                                              "answer", "--model", str(faulty["truncated_weights"])], 1, "truncated"),  # fmt: skip
        "build-dataset: foreign --model": ([*build, "--stage", "speech", "--input", str(files["good_qa"]), "--model",
                                            str(faulty["foreign"])], 1, "not a DeepOmni one"),  # fmt: skip
        "build-dataset: existing output": (["build-dataset", "--stage", "text", "--input", str(files["good_qa"]),
                                            "--output", str(files["existing"])], 1, "exists"),  # fmt: skip
        # assign-experts
        "assign-experts: --batch-size 0": (["assign-experts", "--model", str(ckpt), *assign[1:], "--batch-size", "0"],
                                           2, "at least 1"),  # fmt: skip
        "assign-experts: --threshold -1": (["assign-experts", "--model", str(ckpt), *assign[1:], "--threshold", "-1"],
                                           2, "greater than 0"),  # fmt: skip
        "assign-experts: missing model": (["assign-experts", "--model", str(work / "nope"), *assign[1:]], 1,
                                          "no such folder"),  # fmt: skip
        "assign-experts: foreign model": (["assign-experts", "--model", str(faulty["foreign"]), *assign[1:]], 1,
                                          "not a DeepOmni one"),  # fmt: skip
        "assign-experts: missing speech data": (["assign-experts", "--model", str(ckpt), "--speech-data",
                                                 str(work / "none"), "--text-data", str(work), "--output", str(out)],
                                                1, "no such dataset folder"),  # fmt: skip
        # push
        "push model: missing folder": (["push", "model", str(work / "nope"), "--repo-id", "me/x"], 1, "not found"),
        "push model: bad repo id": (["push", "model", str(ckpt), "--repo-id", "not a repo"], 1, "Invalid repo id"),
        "push model: truncated weights": (["push", "model", str(faulty["truncated_weights"]), "--repo-id", "me/x"], 1,
                                          "truncated"),  # fmt: skip
        "push model: foreign checkpoint": (["push", "model", str(faulty["foreign"]), "--repo-id", "me/x"], 1,
                                           "model_type"),  # fmt: skip
        "push model: offline": (["push", "model", str(ckpt), "--repo-id", "me/x"], 1, "HF_HUB_OFFLINE"),
        "push dataset: missing folder": (["push", "dataset", str(work / "nope"), "--repo-id", "me/x"], 1, "not found"),
        "push dataset: --max-shard-size abc": (["push", "dataset", str(files["dataset"]), "--repo-id", "me/x",
                                                "--max-shard-size", "abc"], 1, "is not a size"),  # fmt: skip
        "push dataset: --max-shard-size -5MB": (["push", "dataset", str(files["dataset"]), "--repo-id", "me/x",
                                                 "--max-shard-size=-5MB"], 1, "more than 0 bytes"),  # fmt: skip
        "push dataset: offline": (["push", "dataset", str(files["dataset"]), "--repo-id", "me/x"], 1, "HF_HUB_OFFLINE"),
        "push dataset: not a dataset folder": (["push", "dataset", str(ckpt), "--repo-id", "me/x"], 1,
                                               "not a datasets save_to_disk folder"),  # fmt: skip
        # convert / export-text-model
        "convert: missing sources": (["convert", "--text-model", str(work / "a"), "--audio-encoder", str(work / "b"),
                                      "--codec", str(work / "c"), "--output", str(out)], 1, "not a local folder"),  # fmt: skip
        "convert: --seed -3": (["convert", "--text-model", "a", "--audio-encoder", "b", "--codec", "c", "--output",
                                str(out), "--seed", "-3"], 2, "0 or more"),  # fmt: skip
        "export-text-model: missing checkpoint": (["export-text-model", str(work / "nope"), str(out)], 1,
                                                  "not a local folder"),  # fmt: skip
        # evaluate
        "evaluate: --limit 0": (["evaluate", "--model", str(ckpt), "--output", str(out), "--limit", "0"], 2, "at least 1"),
        "evaluate: --max-new-tokens 0": (["evaluate", "--model", str(ckpt), "--output", str(out), "--max-new-tokens",
                                          "0"], 2, "at least 1"),  # fmt: skip
        "evaluate: --seed -1": (["evaluate", "--model", str(ckpt), "--output", str(out), "--seed", "-1"], 2, "0 or more"),
        "evaluate: missing model": (["evaluate", "--model", str(work / "nope"), "--data", str(files["good_qa"]),
                                     "--output", str(out)], 1, "no such folder"),  # fmt: skip
        "evaluate: truncated weights": (["evaluate", "--model", str(faulty["truncated_weights"]), "--suite", "text",
                                         "--data", str(files["good_qa"]), "--output", str(out)], 1, "truncated"),  # fmt: skip
        # no subcommand / unknown subcommand
        "no command": ([], 2, "required"),
        "unknown command": (["train-everything"], 2, "invalid choice"),
    }


def _cli_case_names():
    names = _cli_cases(Path("c"), dict.fromkeys(FAULTS, Path("f")), dict.fromkeys(
        ["broken_jsonl", "empty_jsonl", "wrong_columns", "good_qa", "xml", "low_rate_wav", "sentences", "existing",
         "dataset"],
        Path("x")), Path("w"))  # fmt: skip
    return list(names)


# Progress bars (tqdm, e.g. datasets reading a manifest) are not error output.
PROGRESS = re.compile(r"\d+ examples \[|\w+/s\]\s*$")


def run_cli(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("case", _cli_case_names())
def test_cli_user_error_is_one_line(case, ckpt, faulty, files, work, capsys, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda *a: pytest.fail("asked an interactive question"))
    argv, expected_code, phrase = _cli_cases(ckpt, faulty, files, work)[case]
    before = sorted(p.name for p in work.iterdir())
    code, err = run_cli(argv, capsys)
    lines = [line.split("\r")[-1] for line in err.splitlines()]
    lines = [line for line in lines if line.strip() and not PROGRESS.search(line)]
    assert code == expected_code, err
    known = argv and argv[0] in ("chat", "make-corpus", "build-dataset", "assign-experts", "push", "convert",
                                 "export-text-model", "evaluate")  # fmt: skip
    command = (" ".join(argv[:2]) if argv[0] == "push" else argv[0]) if known else ""
    assert lines and lines[-1].startswith(f"deepomni {command}".rstrip() + ": error: "), err
    if expected_code == 1:
        assert len(lines) == 1, err  # one line, no traceback
    assert phrase.lower() in " ".join(err.split()).lower(), err
    # Nothing was written where nothing should be: no output, no `.work` / `.tmp` folder, no reply.
    assert sorted(p.name for p in work.iterdir()) == before


def test_push_to_an_unreachable_hub_is_one_line(ckpt, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    code, err = run_cli(["push", "model", str(ckpt), "--repo-id", "me/x"], capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("deepomni push model: error: ") and "hf_not_a_real_token" not in err, err
    assert "cannot reach the hugging face hub" in err.lower() or "connect" in err.lower(), err


def test_debug_flag_and_env_show_the_traceback(files, work, capsys, monkeypatch):
    argv = ["make-corpus", "--output", str(work / "dbg"), "--voices", "flite:nosuchvoice"]
    with pytest.raises(UnknownVoiceError):
        main(["--debug", *argv])
    with pytest.raises(UnknownVoiceError):
        main([*argv, "--debug"])
    monkeypatch.setenv("DEEPOMNI_DEBUG", "1")
    with pytest.raises(UnknownVoiceError):
        main(argv)
    monkeypatch.setenv("DEEPOMNI_DEBUG", "0")
    assert run_cli(argv, capsys)[0] == 1
    assert not (work / "dbg").exists()


def test_interrupt_is_one_line_and_a_bug_keeps_its_traceback(work, capsys, monkeypatch):
    argv = ["make-corpus", "--output", str(work / "interrupted")]

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("deepomni_hf.data.cli._run_corpus", interrupted)
    code, err = run_cli(argv, capsys)
    assert code == 130 and err == "deepomni make-corpus: interrupted\n"

    def buggy(args):
        raise RuntimeError("an internal bug")

    monkeypatch.setattr("deepomni_hf.data.cli._run_corpus", buggy)
    with pytest.raises(RuntimeError, match="an internal bug"):  # not a user error: the traceback is worth seeing
        main(argv)


def test_failed_build_leaves_no_work_folder(files, work):
    output = work / "failed_build"
    with pytest.raises(DeepOmniUserError):
        build_dataset("text", files["good_qa"], output, tts="flite:nosuchvoice")
    with pytest.raises(Exception):  # noqa: B017 - any failure inside the first shard
        build_dataset("text", files["good_qa"], output, fail_after=0)
    assert not output.exists() and not (work / "failed_build.work").exists()


def _numeric_options(parser, command=""):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from _numeric_options(subparser, f"{command} {name}".strip())
        elif action.type in (int, float):
            yield f"deepomni {command} {action.option_strings[0] if action.option_strings else action.dest}"


def test_every_numeric_option_is_range_checked_by_the_parser():
    """A bare `type=int` / `type=float` accepts -1, 0, nan: every subcommand uses `deepomni_hf.cli_types` instead."""
    from deepomni_hf.cli import build_parser

    assert list(_numeric_options(build_parser())) == []

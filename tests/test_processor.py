# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""DeepOmniProcessor: the 8-stream layout of DESIGN §3, the chat template, save / reload, audio checks, collation, and
agreement with the model's forward pass."""

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch
from text_fixtures import BOS_TOKEN, EOS_TOKEN, TINY_TEXT_VOCAB_SIZE, tiny_deepomni_config, tiny_tokenizer
from transformers import AutoProcessor
from transformers.utils.chat_template_utils import render_jinja_template

from deepomni_hf import DeepOmniForConditionalGeneration
from deepomni_hf.modeling import configuration_deepomni
from deepomni_hf.processors import (
    DeepOmniAudioError,
    DeepOmniDataCollator,
    DeepOmniLayoutError,
    DeepOmniProcessor,
    StreamVocabulary,
    extend_tokenizer,
    load_speech,
    num_whisper_frames,
    reserved_token,
)
from deepomni_hf.processors import processing_deepomni, tokenization


SR = 16000
IGNORE = -100

# DeepSeek-V2-Lite-Chat's chat template (its tokenizer_config.json), the reference for the text-only format.
DEEPSEEK_V2_CHAT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ 'User: ' + message['content'] + '\n\n' }}{% elif message['role'] == 'assistant' %}"
    "{{ 'Assistant: ' + message['content'] + eos_token }}{% elif message['role'] == 'system' %}"
    "{{ message['content'] + '\n\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


@pytest.fixture(scope="module")
def config():
    return tiny_deepomni_config()


@pytest.fixture(scope="module")
def processor(config):
    return DeepOmniProcessor.from_model_config(config, tiny_tokenizer())


def speech(seconds: float, sampling_rate: int = SR, seed: int = 0) -> np.ndarray:
    """Noise-like 'speech' (loud enough to pass the silence check)."""
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(round(seconds * sampling_rate)))).astype(np.float32)


def random_codes(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 4096, (frames, 7), generator=torch.Generator().manual_seed(seed))


def spoken_qa(waveform, text, codes=None, sampling_rate=SR, voice=None):
    answer = [{"type": "text", "text": text}]
    if codes is not None:
        answer.append({"type": "audio_codes", "codes": codes, **({"voice": voice} if voice else {})})
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "audio", "audio": waveform, "sampling_rate": sampling_rate}]},
        {"role": "assistant", "content": answer},
    ]


def answer_start(labels: torch.Tensor) -> int:
    """`a`: the first position whose text stream is learned."""
    return int(torch.nonzero(labels[:, 7] != IGNORE)[0])


# --- vocabulary and tokenizer -----------------------------------------------------------------------------------------


def test_special_token_names_and_ids_match_the_config(config, processor):
    # The processor folder repeats these names (so its code can travel with a checkpoint): they must not drift.
    assert tokenization.TEXT_SPECIAL_TOKENS == configuration_deepomni.TEXT_SPECIAL_TOKENS
    assert processing_deepomni.AUDIO_SPECIAL_TOKENS == configuration_deepomni.AUDIO_SPECIAL_TOKENS
    vocab = processor.vocabulary
    assert vocab.total_vocab_size == config.total_vocab_size
    for name in config.text_special_tokens:
        assert vocab.text_token_id(name) == config.text_token_id(name)
    for slot in range(7):
        assert vocab.audio_slot_offset(slot) == config.audio_slot_offset(slot)
        for name in config.audio_special_tokens:
            assert vocab.audio_token_id(name, slot) == config.audio_token_id(name, slot)
    # The published defaults (DESIGN §3): specials from 102,400, slot offsets 102,464 + 4,160·i, 131,584 ids.
    published = StreamVocabulary()
    assert published.text_token_id("EOT") == 102400
    assert [published.audio_slot_offset(i) for i in (0, 6)] == [102464, 102464 + 4160 * 6]
    assert published.total_vocab_size == 131584
    processor.check_model_config(config)


def test_extend_tokenizer_puts_specials_at_fixed_ids_and_is_idempotent():
    tokenizer = tiny_tokenizer()
    base_size = len(tokenizer)
    assert base_size < TINY_TEXT_VOCAB_SIZE  # a gap to fill, like DeepSeek-V2's 100,015 tokens for 102,400 rows
    extend_tokenizer(tokenizer, TINY_TEXT_VOCAB_SIZE, num_text_special_tokens=64)
    assert len(tokenizer) == TINY_TEXT_VOCAB_SIZE + 64
    names = configuration_deepomni.TEXT_SPECIAL_TOKENS
    for k, name in enumerate(names):
        assert tokenizer.convert_tokens_to_ids(f"<|{name}|>") == TINY_TEXT_VOCAB_SIZE + k
    assert tokenizer.convert_ids_to_tokens(base_size) == reserved_token(base_size)
    assert tokenizer.convert_ids_to_tokens(TINY_TEXT_VOCAB_SIZE - 1) == reserved_token(TINY_TEXT_VOCAB_SIZE - 1)
    last = TINY_TEXT_VOCAB_SIZE + 63
    assert tokenizer.convert_ids_to_tokens(last) == reserved_token(last)
    # Specials are atomic and dropped when decoding.
    ids = tokenizer("Hi<|EOT|><|AUDIO|>", add_special_tokens=False)["input_ids"]
    assert ids[-2:] == [TINY_TEXT_VOCAB_SIZE, TINY_TEXT_VOCAB_SIZE + names.index("AUDIO")]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Hi"

    vocab_before = tokenizer.get_vocab()
    extend_tokenizer(tokenizer, TINY_TEXT_VOCAB_SIZE, num_text_special_tokens=64)
    assert tokenizer.get_vocab() == vocab_before

    with pytest.raises(ValueError, match="more than text_vocab_size"):
        extend_tokenizer(tiny_tokenizer(), text_vocab_size=100)


# --- chat template ----------------------------------------------------------------------------------------------------


def test_text_chat_renders_exactly_like_deepseek_v2_chat(processor):
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris is the capital of France."},
        {"role": "user", "content": "Why is the sky blue?"},
    ]
    rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    reference = render_jinja_template(
        [messages], chat_template=DEEPSEEK_V2_CHAT_TEMPLATE, add_generation_prompt=True,
        bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
    )[0][0]  # fmt: skip
    assert rendered == reference
    assert rendered == (
        f"{BOS_TOKEN}You are a helpful assistant.\n\nUser: What is the capital of France?\n\n"
        f"Assistant: Paris is the capital of France.{EOS_TOKEN}User: Why is the sky blue?\n\nAssistant:"
    )
    # The typed-content form renders the same, and a spoken item renders as one placeholder.
    typed = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in messages]
    assert processor.apply_chat_template(typed, tokenize=False, add_generation_prompt=True) == rendered
    spoken = processor.apply_chat_template(spoken_qa(speech(0.5), "Hi"), tokenize=False)
    assert spoken.endswith(f"User: <|AUDIO|>\n\nAssistant: Hi{EOS_TOKEN}")


def test_text_stream_of_a_text_chat_is_the_tokenized_rendering_with_eot(processor):
    messages = [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris is the capital of France."},
    ]
    out = processor.apply_chat_template(messages, output_labels=True)
    rendered = processor.apply_chat_template(messages, tokenize=False)
    expected = processor.tokenizer(rendered.removesuffix(EOS_TOKEN) + "<|EOT|>", add_special_tokens=False)["input_ids"]
    assert out["input_ids"][0, :, 7].tolist() == expected
    assert "input_features" not in out
    pad_a = processor.vocabulary.audio_row("PAD_A")
    assert (out["input_ids"][0, :, :7].numpy() == pad_a).all()  # text positions carry PAD_A in every slot


# --- layout (DESIGN §3) -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, frames",
    [("Paris is the capital of France.", 20), ("Paris is the capital of France.", 3), ("Hi", 0)],
    ids=["audio-longer-than-text", "text-longer-than-audio", "no-frames"],
)
def test_layout_of_a_spoken_question_with_text_and_speech_answer(processor, text, frames):
    vocab = processor.vocabulary
    waveform = speech(1.3)
    codes = random_codes(frames)
    out = processor.apply_chat_template(spoken_qa(waveform, text, codes), output_labels=True)
    ids, labels = out["input_ids"][0], out["labels"][0]
    assert ids.shape == labels.shape and ids.shape[-1] == 8
    assert out["attention_mask"].tolist() == [[1] * ids.shape[0]]
    assert out["input_features"].shape == (1, 80, 3000)

    # The user-speech span: n + 2 placeholder positions, BOA / PAD_A × n / EOA in every audio slot.
    span = torch.nonzero(ids[:, 7] == vocab.text_token_id("AUDIO")).squeeze(-1)
    n = len(waveform) * 50 // SR + 1
    assert len(span) == n + 2 and (span.diff() == 1).all()
    assert (ids[span[0], :7].numpy() == vocab.audio_row("BOA")).all()
    assert (ids[span[1:-1], :7].numpy() == vocab.audio_row("PAD_A")).all()
    assert (ids[span[-1], :7].numpy() == vocab.audio_row("EOA")).all()

    # Prompt: no labels at all, including the speaker position a - 1 and the speech span.
    a = answer_start(labels)
    assert (labels[:a] == IGNORE).all()
    assert (ids[a - 1, :7].numpy() == vocab.audio_row("ANS_A")).all()
    assert (ids[a, :7].numpy() == vocab.audio_row("PAD_A")).all()
    # Targets hold exactly the input ids of their position (the model shifts by one internally).
    learned = labels[a:] != IGNORE
    assert torch.equal(labels[a:][learned], ids[a:][learned])

    # Text stream: answer tokens from a, then EOT (targets), then PAD_T until the audio ends (fillers, no targets).
    text_ids = processor.tokenizer(" " + text, add_special_tokens=False)["input_ids"]
    num_text = len(text_ids)
    assert labels[a : a + num_text, 7].tolist() == text_ids
    assert labels[a + num_text, 7] == vocab.text_token_id("EOT")
    assert (ids[a + num_text + 1 :, 7] == vocab.text_token_id("PAD_T")).all()
    assert (labels[a + num_text + 1 :, 7] == IGNORE).all()

    # Audio slot i: PAD_A from a, its first code i + 1 positions after a, EOA after its last code, then PAD_A; only
    # the codes and EOA are targets.
    for slot in range(7):
        offset = vocab.audio_slot_offset(slot)
        first = a + slot + 1
        assert (ids[a:first, slot] == vocab.audio_token_id("PAD_A", slot)).all()
        assert (labels[a:first, slot] == IGNORE).all()
        assert labels[first : first + frames, slot].tolist() == (codes[:, slot] + offset).tolist()
        assert labels[first + frames, slot] == vocab.audio_token_id("EOA", slot)
        assert (ids[first + frames + 1 :, slot] == vocab.audio_token_id("PAD_A", slot)).all()
        assert (labels[first + frames + 1 :, slot] == IGNORE).all()
    assert int(learned.sum()) == num_text + 1 + 7 * (frames + 1)
    # The sequence ends where the longer of text (with EOT) and audio (slot 6's EOA) ends.
    assert len(ids) == a + max(num_text + 1, frames + 8)

    # Reading the answer back gives the same text and codes.
    for sequence in (ids, labels, out["input_ids"]):
        decoded = processor.decode_output(sequence, start=a)
        assert decoded.text == text
        assert torch.equal(decoded.audio_codes, codes)


@pytest.mark.parametrize("num_samples", [1, 319, 320, 8000, 16000, 16001, 23999, 479680])
def test_speech_span_length_is_n_plus_2(processor, num_samples):
    n = int(np.floor(num_samples / 16000 * 50)) + 1
    assert num_whisper_frames(num_samples) == n
    waveform = np.full(num_samples, 0.1, dtype=np.float32)
    out = processor.apply_chat_template([{"role": "user", "content": [{"type": "audio", "audio": waveform,
                                          "sampling_rate": SR}]}], add_generation_prompt=True)  # fmt: skip
    placeholder = out["input_ids"][0, :, 7] == processor.vocabulary.text_token_id("AUDIO")
    assert int(placeholder.sum()) == n + 2


def test_speech_span_counts_frames_after_resampling(processor):
    # 1.5 s at 24 kHz is 24,000 samples at 16 kHz: 76 frames.
    out = processor.apply_chat_template(spoken_qa(speech(1.5, 24000), "Hi", sampling_rate=24000), output_labels=True)
    assert int((out["input_ids"][0, :, 7] == processor.vocabulary.text_token_id("AUDIO")).sum()) == 76 + 2


def test_text_only_answer_teaches_no_audio(processor):
    vocab = processor.vocabulary
    out = processor.apply_chat_template(spoken_qa(speech(0.8), "Paris."), output_labels=True)
    ids, labels = out["input_ids"][0], out["labels"][0]
    a = answer_start(labels)
    assert (labels[:, :7] == IGNORE).all()
    assert (ids[:, :7].numpy()[a - 1 :] == vocab.audio_row("PAD_A")).all()  # no speaker token, no codes
    assert labels[-1, 7] == vocab.text_token_id("EOT") and len(ids) == a + len(labels[a:])
    assert processor.decode_output(ids, start=a).audio_codes.shape == (0, 7)


def test_only_the_last_assistant_turn_carries_labels(processor):
    vocab = processor.vocabulary
    first_codes, last_codes = random_codes(4, seed=1), random_codes(6, seed=2)
    messages = spoken_qa(speech(0.6), "Paris is the capital of France.", first_codes, voice="M29")
    messages += spoken_qa(speech(0.9, seed=3), "Thank you very much!", last_codes)[1:]
    out = processor.apply_chat_template(messages, output_labels=True, voice="F10")
    ids, labels = out["input_ids"][0], out["labels"][0]
    a = answer_start(labels)
    learned = labels[a:] != IGNORE
    assert (labels[:a] == IGNORE).all() and torch.equal(labels[a:][learned], ids[a:][learned])
    num_text = len(processor.tokenizer(" Thank you very much!", add_special_tokens=False)["input_ids"])
    assert int(learned[:, 7].sum()) == num_text + 1  # its text tokens and EOT
    assert (learned[:, :7].sum(dim=0) == len(last_codes) + 1).all()  # each slot: its codes and EOA
    assert processor.decode_output(ids, start=a).text == "Thank you very much!"
    assert torch.equal(processor.decode_output(ids, start=a).audio_codes, last_codes)
    assert (ids[a - 1, :7].numpy() == vocab.audio_row("F10")).all()  # the call's voice
    # The earlier answer is laid out in full (as the model produced it) with its own voice, but not learned.
    speakers = torch.nonzero((ids[:, 0] == vocab.audio_token_id("M29", 0))).squeeze(-1)
    assert len(speakers) == 1
    earlier = processor.decode_output(ids[: a - 1], start=int(speakers[0]) + 1)
    assert earlier.text == "Paris is the capital of France." and torch.equal(earlier.audio_codes, first_codes)
    assert out["input_features"].shape[0] == 2


def test_generation_prompt_for_text_and_speech_replies(processor):
    vocab = processor.vocabulary
    question = spoken_qa(speech(0.7), "unused")[:2]
    text_prompt = processor.apply_chat_template(question, add_generation_prompt=True)
    speech_prompt = processor.apply_chat_template(
        question, add_generation_prompt=True, reply_modality="speech", voice="M29"
    )
    assert "labels" not in text_prompt
    assert processor.tokenizer.decode(text_prompt["input_ids"][0, :, 7], skip_special_tokens=True).endswith(
        "User: \n\nAssistant:"
    )
    assert (text_prompt["input_ids"][0, -1, :7].numpy() == vocab.audio_row("PAD_A")).all()
    assert (speech_prompt["input_ids"][0, -1, :7].numpy() == vocab.audio_row("M29")).all()
    assert torch.equal(speech_prompt["input_ids"][0, :-1], text_prompt["input_ids"][0, :-1])
    # The prompt is exactly the training layout cut before the answer.
    training = processor.apply_chat_template(spoken_qa(speech(0.7), "Hi", random_codes(3), voice="M29"),
                                             output_labels=True)  # fmt: skip
    a = answer_start(training["labels"][0])
    assert torch.equal(training["input_ids"][0, :a], speech_prompt["input_ids"][0])


def test_batch_is_padded_and_features_follow_the_order_of_appearance(processor):
    short, long = speech(0.5, seed=1), speech(2.0, seed=2)
    batch = [
        [{"role": "user", "content": [{"type": "audio", "audio": long, "sampling_rate": SR}]}],
        [{"role": "user", "content": "Why is the sky blue?"}],
        [{"role": "user", "content": [{"type": "audio", "audio": short, "sampling_rate": SR}]}],
    ]
    out = processor.apply_chat_template(batch, add_generation_prompt=True)
    singles = [processor.apply_chat_template(conversation, add_generation_prompt=True) for conversation in batch]
    length = max(single["input_ids"].shape[1] for single in singles)
    assert out["input_ids"].shape == (3, length, 8)
    for row, single in enumerate(singles):
        size = single["input_ids"].shape[1]
        assert torch.equal(out["input_ids"][row, length - size :], single["input_ids"][0])  # left padding
        assert out["attention_mask"][row].tolist() == [0] * (length - size) + [1] * size
        assert (out["input_ids"][row, : length - size].numpy() == processor.pad_row).all()
    expected = processor.feature_extractor([long, short], sampling_rate=SR, return_tensors="pt")["input_features"]
    assert torch.allclose(out["input_features"], expected)
    right = processor.apply_chat_template(batch, add_generation_prompt=True, padding_side="right")
    assert right["attention_mask"][1, 0] == 1 and right["attention_mask"][1, -1] == 0


def test_call_lays_out_formatted_text(processor):
    waveform = speech(0.4)
    prompt = f"{BOS_TOKEN}User: <|AUDIO|>\n\nAssistant:"
    called = processor(text=prompt, audio=waveform, sampling_rate=SR)
    templated = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "audio", "audio": waveform, "sampling_rate": SR}]}],
        add_generation_prompt=True,
    )
    assert torch.equal(called["input_ids"], templated["input_ids"])
    assert torch.equal(called["input_features"], templated["input_features"])
    with pytest.raises(DeepOmniLayoutError, match="1 <\\|AUDIO\\|> placeholder"):
        processor(text=prompt)


def test_batch_decode_reads_every_row_and_falls_back_to_the_tokenizer(processor):
    conversations = [spoken_qa(speech(0.5, seed=s), text, random_codes(f, seed=s))
                     for s, (text, f) in enumerate([("Hi", 5), ("Thank you very much!", 9)])]  # fmt: skip
    out = processor.apply_chat_template(conversations, output_labels=True)
    starts = [answer_start(labels) for labels in out["labels"]]
    decoded = processor.batch_decode(out["input_ids"], start=starts)
    assert [d.text for d in decoded] == ["Hi", "Thank you very much!"]
    assert [d.audio_codes.shape[0] for d in decoded] == [5, 9]
    ids = processor.tokenizer("Hello", add_special_tokens=False)["input_ids"]
    assert processor.batch_decode([ids]) == ["Hello"] and processor.decode(ids) == "Hello"


def test_layout_errors_are_explained(processor):
    with pytest.raises(DeepOmniLayoutError, match=r"\[frames, 7\]"):
        processor.apply_chat_template(spoken_qa(speech(0.3), "Hi", torch.zeros(7, 5, dtype=torch.long)),
                                      output_labels=True)  # fmt: skip
    with pytest.raises(DeepOmniLayoutError, match="raw codec codes"):
        processor.apply_chat_template(spoken_qa(speech(0.3), "Hi", torch.full((5, 7), 4096)), output_labels=True)
    with pytest.raises(DeepOmniLayoutError, match="needs an assistant turn"):
        processor.apply_chat_template(spoken_qa(speech(0.3), "Hi")[:2], output_labels=True)
    with pytest.raises(ValueError, match="one or the other"):
        processor.apply_chat_template(spoken_qa(speech(0.3), "Hi"), output_labels=True, add_generation_prompt=True)
    with pytest.raises(ValueError, match="voice must be one of"):
        processor.apply_chat_template(spoken_qa(speech(0.3), "Hi"), voice="BOA")
    with pytest.raises(DeepOmniLayoutError, match="audio_codes"):
        processor.apply_chat_template([{"role": "assistant", "content": [{"type": "audio", "audio": speech(0.3),
                                                                          "sampling_rate": SR}]}])  # fmt: skip


# --- save / reload ----------------------------------------------------------------------------------------------------


def test_save_pretrained_and_auto_processor_give_identical_outputs(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["text_vocab_size"] == TINY_TEXT_VOCAB_SIZE and saved["processor_class"] == "DeepOmniProcessor"
    assert (tmp_path / "chat_template.jinja").read_text() == processor.chat_template

    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is DeepOmniProcessor
    assert reloaded.vocabulary == processor.vocabulary
    assert reloaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    conversation = spoken_qa(speech(1.1), "Paris is the capital of France.", random_codes(12))
    for kwargs in ({"output_labels": True}, {}):
        expected, actual = (p.apply_chat_template(conversation, **kwargs) for p in (processor, reloaded))
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.equal(expected[key], actual[key]), key
    prompt = conversation[:2]
    assert torch.equal(
        processor.apply_chat_template(prompt, add_generation_prompt=True, reply_modality="speech")["input_ids"],
        reloaded.apply_chat_template(prompt, add_generation_prompt=True, reply_modality="speech")["input_ids"],
    )


def test_saved_processor_loads_with_trust_remote_code_without_the_package(tmp_path):
    # Registering for the auto class is global state, so it happens in a child process.
    save = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from text_fixtures import tiny_deepomni_config, tiny_tokenizer
        from deepomni_hf.processors import DeepOmniProcessor
        DeepOmniProcessor.register_for_auto_class()
        processor = DeepOmniProcessor.from_model_config(tiny_deepomni_config(), tiny_tokenizer())
        processor.save_pretrained({str(tmp_path)!r})
        out = processor.apply_chat_template([{{"role": "user", "content": "Hi"}}], add_generation_prompt=True,
                                            reply_modality="speech")
        print(out["input_ids"].tolist())
    """)
    load = textwrap.dedent(f"""
        import sys
        from transformers import AutoProcessor
        processor = AutoProcessor.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        assert "deepomni_hf" not in sys.modules, "the package was imported"
        out = processor.apply_chat_template([{{"role": "user", "content": "Hi"}}], add_generation_prompt=True,
                                            reply_modality="speech")
        print(out["input_ids"].tolist())
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    saved = subprocess.run([sys.executable, "-c", save], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    loaded = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, env=env, cwd="/")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip().splitlines()[-1] == saved.stdout.strip().splitlines()[-1]


# --- audio inputs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "waveform, message",
    [
        (np.zeros(0, np.float32), "empty"),
        (np.zeros(16000, np.float32), "silent"),
        (np.full(16000, 5e-5, np.float32), "silent"),
        (np.concatenate([speech(0.5), [np.nan]]).astype(np.float32), "NaN or infinite"),
        (np.concatenate([speech(0.5), [np.inf]]).astype(np.float32), "NaN or infinite"),
        (speech(30.5), r"longer than the 29.98 s .* Split it"),
    ],
    ids=["empty", "silent", "near-silent", "nan", "inf", "too-long"],
)
def test_bad_audio_is_rejected_with_an_explanation(processor, waveform, message):
    with pytest.raises(DeepOmniAudioError, match=message):
        processor.apply_chat_template(spoken_qa(waveform, "Hi"), output_labels=True)
    assert issubclass(DeepOmniAudioError, ValueError)


def test_audio_without_sampling_rate_is_rejected(processor):
    conversation = [{"role": "user", "content": [{"type": "audio", "audio": speech(0.5)}]}]
    with pytest.raises(DeepOmniAudioError, match="without its sampling rate"):
        processor.apply_chat_template(conversation, add_generation_prompt=True)
    with pytest.raises(DeepOmniAudioError, match="no 'sampling_rate'"):
        load_speech({"array": speech(0.5)})


def test_silence_check_can_be_disabled():
    assert load_speech(np.zeros(1600, np.float32), sampling_rate=SR, silence_threshold=None).shape == (1600,)


def test_stereo_is_downmixed_in_either_layout():
    left, right = speech(0.5, seed=1), speech(0.5, seed=2)
    mono = (left + right) / 2
    channels_last = np.stack([left, right], axis=1)  # [samples, 2]: soundfile / numpy
    channels_first = torch.from_numpy(np.stack([left, right]))  # [2, samples]: torch / torchaudio
    for stereo in (channels_last, channels_first):
        np.testing.assert_allclose(load_speech(stereo, sampling_rate=SR), mono, atol=1e-6)
    with pytest.raises(DeepOmniAudioError, match="channel axis"):
        load_speech(np.zeros((100, 100), np.float32) + 0.1, sampling_rate=SR)


def test_other_rates_are_resampled_to_16k():
    t = np.arange(44100) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    resampled = load_speech(tone, sampling_rate=44100)
    assert resampled.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(resampled))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 1  # 1 Hz bins: the tone stays at 440 Hz


def test_all_input_forms_load_to_the_same_waveform(tmp_path):
    from datasets import Audio, Dataset

    stereo = np.stack([speech(0.5, 22050, seed=1), speech(0.5, 22050, seed=2)], axis=1)
    path = tmp_path / "speech.wav"
    sf.write(path, stereo, 22050, subtype="FLOAT")
    flac = io.BytesIO()
    sf.write(flac, stereo, 22050, format="FLAC", subtype="PCM_24")
    expected = load_speech(stereo, sampling_rate=22050)
    decoded = Dataset.from_dict({"audio": [str(path)]}).cast_column("audio", Audio())[0]["audio"]
    undecoded = Dataset.from_dict({"audio": [str(path)]}).cast_column("audio", Audio(decode=False))[0]["audio"]
    for source, tolerance in [
        (str(path), 1e-6),
        (path, 1e-6),
        (path.read_bytes(), 1e-6),
        (flac.getvalue(), 1e-5),  # 24-bit quantisation
        ({"path": str(path), "bytes": None}, 1e-6),
        (undecoded, 1e-6),
        ({"array": stereo, "sampling_rate": 22050}, 1e-6),
        (decoded, 1e-6),  # torchcodec AudioDecoder, as `datasets` returns it
    ]:
        np.testing.assert_allclose(load_speech(source), expected, atol=tolerance)
    int16 = (np.clip(stereo, -1, 1) * 32767).astype(np.int16)
    np.testing.assert_allclose(load_speech(int16, sampling_rate=22050), expected, atol=1e-4)
    with pytest.raises(DeepOmniAudioError, match="No audio file"):
        load_speech(tmp_path / "missing.wav")
    with pytest.raises(DeepOmniAudioError, match="Cannot decode"):
        load_speech(b"not audio at all")
    with pytest.raises(DeepOmniAudioError, match="was given"):
        load_speech(str(path), sampling_rate=16000)


# --- collator ---------------------------------------------------------------------------------------------------------


def collator_examples(processor):
    conversations = [
        spoken_qa(speech(0.6, seed=1), "Hi", random_codes(4)),
        [{"role": "user", "content": "Why is the sky blue?"},
         {"role": "assistant", "content": "The sky is blue because of Rayleigh scattering."}],
        spoken_qa(speech(1.2, seed=2), "Thank you very much!", random_codes(10)),
    ]  # fmt: skip
    return [dict(processor.apply_chat_template(c, output_labels=True)) for c in conversations]


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_collator_pads_ids_labels_and_mask(processor, padding_side):
    examples = collator_examples(processor)
    batch = DeepOmniDataCollator(processor, padding_side=padding_side, pad_to_multiple_of=8)(examples)
    lengths = [example["input_ids"].shape[1] for example in examples]
    length = -(-max(lengths) // 8) * 8
    assert batch["input_ids"].shape == (3, length, 8) and batch["labels"].shape == (3, length, 8)
    assert batch["attention_mask"].shape == (3, length)
    for row, (example, size) in enumerate(zip(examples, lengths)):
        real = slice(0, size) if padding_side == "right" else slice(length - size, length)
        pad = slice(size, length) if padding_side == "right" else slice(0, length - size)
        assert torch.equal(batch["input_ids"][row, real], example["input_ids"][0])
        assert torch.equal(batch["labels"][row, real], example["labels"][0])
        assert (batch["input_ids"][row, pad].numpy() == processor.pad_row).all()
        assert (batch["labels"][row, pad] == IGNORE).all()
        assert batch["attention_mask"][row, real].all() and not batch["attention_mask"][row, pad].any()
    # Features of the two spoken examples, in example order.
    expected = torch.cat([examples[0]["input_features"], examples[2]["input_features"]])
    assert torch.equal(batch["input_features"], expected)
    # Plain lists (as a `datasets` map stores them) collate the same.
    as_lists = [
        {key: value.tolist() if key == "input_features" else value[0].tolist() for key, value in example.items()}
        for example in examples
    ]
    from_lists = DeepOmniDataCollator(processor, padding_side=padding_side, pad_to_multiple_of=8)(as_lists)
    for key in batch:
        assert torch.equal(from_lists[key], batch[key]), key


# --- agreement with the model ----------------------------------------------------------------------------------------


def test_processor_output_runs_through_the_model_with_a_finite_loss(config, processor):
    torch.manual_seed(0)
    model = DeepOmniForConditionalGeneration(config).eval()
    batch = DeepOmniDataCollator(processor)(collator_examples(processor))
    with torch.no_grad():
        output = model(**batch)
    assert torch.isfinite(output.loss)
    assert torch.isfinite(output.stream_losses).all()  # every slot and the text stream have targets
    # Untrained: each stream's loss is close to log(its vocabulary size).
    assert abs(output.stream_losses[7].item() - np.log(config.padded_text_vocab_size)) < 1.0
    assert abs(output.stream_losses[0].item() - np.log(config.audio_slot_vocab_size)) < 1.0
    # The model found one speech span per feature row (it raises otherwise) and routes those positions as speech.
    assert output.speech_positions.sum() > 0

    # A text-only batch learns text only.
    text_batch = DeepOmniDataCollator(processor)([collator_examples(processor)[1]])
    with torch.no_grad():
        text_output = model(**text_batch)
    assert torch.isnan(text_output.stream_losses[:7]).all() and torch.isfinite(text_output.loss)

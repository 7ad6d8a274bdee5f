# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Which positions of a spoken answer are targets (DESIGN §3), pinned position by position: the answer's text tokens
and `EOT`, each slot's codes and `EOA` — never the fillers (`PAD_T` after `EOT`, `PAD_A` before a slot's first code and
after its `EOA`) nor the speaker-token position. Checked for the processor, the collator's padding, DPO pairs and
the model's loss."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from training_helpers import tiny_model, tiny_processor

from deepomni_hf.processors import DeepOmniDataCollator
from deepomni_hf.training.dpo import DeepOmniDPOCollator, build_dpo_pair, slot_log_probs

IGNORE = -100
SR = 16000

# Target pictures of an answer, from the speaker position `a - 1` to the end: one row per audio slot (0..6), then the
# text stream. `T` answer text token, `C` code, `E` the stream's end token (EOT / EOA), `.` no target (−100).
SHORT_TEXT = " Hi"  # 3 tokens of the tiny tokenizer, with 4 frames: the speech outlasts the text
SHORT_TEXT_4_FRAMES = [
    "..CCCCE......",
    "...CCCCE.....",
    "....CCCCE....",
    ".....CCCCE...",
    "......CCCCE..",
    ".......CCCCE.",
    "........CCCCE",
    ".TTTE........",
]
SHORT_TEXT_1_FRAME = [
    "..CE......",
    "...CE.....",
    "....CE....",
    ".....CE...",
    "......CE..",
    ".......CE.",
    "........CE",
    ".TTTE.....",
]
LONG_TEXT = " Paris is the capital of France."  # 13 tokens, with 2 frames: the text outlasts the speech
LONG_TEXT_2_FRAMES = [
    "..CCE..........",
    "...CCE.........",
    "....CCE........",
    ".....CCE.......",
    "......CCE......",
    ".......CCE.....",
    "........CCE....",
    ".TTTTTTTTTTTTTE",
]
LONG_TEXT_6_FRAMES = [
    "..CCCCCCE......",
    "...CCCCCCE.....",
    "....CCCCCCE....",
    ".....CCCCCCE...",
    "......CCCCCCE..",
    ".......CCCCCCE.",
    "........CCCCCCE",
    ".TTTTTTTTTTTTTE",
]
TEXT_ONLY = " Yes."  # 4 tokens, no codes: no audio targets at all
TEXT_ONLY_PICTURE = ["......"] * 7 + [".TTTTE"]

SPOKEN_CASES = [(SHORT_TEXT, 4, SHORT_TEXT_4_FRAMES), (LONG_TEXT, 2, LONG_TEXT_2_FRAMES)]
SPOKEN_IDS = ["text-shorter-than-speech", "text-longer-than-speech"]


def question(seconds: float = 0.3, seed: int = 0) -> list[dict]:
    waveform = (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)
    return [{"role": "user", "content": [{"type": "audio", "audio": waveform, "sampling_rate": SR}]}]


def codes(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, size=(frames, 7))


def conversation(text: str, answer_codes: np.ndarray | None) -> list[dict]:
    answer = [{"type": "text", "text": text.strip()}]
    if answer_codes is not None:
        answer.append({"type": "audio_codes", "codes": answer_codes})
    return question() + [{"role": "assistant", "content": answer}]


def answer_start(processor) -> int:
    """`a`: the length of the prompt the answer follows (independent of the labels)."""
    prompt = processor.apply_chat_template(question(), add_generation_prompt=True, return_tensors="np")
    return prompt["input_ids"].shape[1]


def check_targets(processor, ids, labels, a, picture, text, answer_codes):
    """`labels` of one sequence match `picture` from `a - 1` on (−100 before), target values included; the
    non-targets inside the answer hold the fillers."""
    vocab = processor.vocabulary
    ids, labels = np.asarray(ids), np.asarray(labels)
    assert (labels[: a - 1] == IGNORE).all(), "the prompt must carry no targets"
    block_ids, block_labels = ids[a - 1 :], labels[a - 1 :]
    assert len(block_labels) == len(picture[0]), "the answer has the wrong number of positions"
    text_ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    for stream, row in enumerate(picture):
        marks = np.array(list(row))
        learned = marks != "."
        assert ((block_labels[:, stream] != IGNORE) == learned).all(), f"stream {stream}: targets {row}"
        np.testing.assert_array_equal(block_labels[learned, stream], block_ids[learned, stream])
        fillers = block_ids[1:, stream][~learned[1:]]  # inside the answer, what is not learned is a filler
        if stream == 7:
            assert block_labels[marks == "T", 7].tolist() == text_ids
            assert block_labels[marks == "E", 7].tolist() == [vocab.text_token_id("EOT")]
            assert (fillers == vocab.text_token_id("PAD_T")).all()
        else:
            offset = vocab.audio_slot_offset(stream)
            expected_codes = [] if answer_codes is None else (answer_codes[:, stream] + offset).tolist()
            assert block_labels[marks == "C", stream].tolist() == expected_codes
            assert block_labels[marks == "E", stream].tolist() == ([] if answer_codes is None else [offset + 4096])
            assert (fillers == vocab.audio_token_id("PAD_A", stream)).all()
    speaker = block_ids[0, :7]
    expected_speaker = "PAD_A" if answer_codes is None else "ANS_A"
    assert (speaker == vocab.audio_row(expected_speaker)).all()


# ----- the processor -----


@pytest.mark.parametrize("text, frames, picture", SPOKEN_CASES, ids=SPOKEN_IDS)
def test_processor_labels_of_a_spoken_answer(text, frames, picture):
    processor = tiny_processor()
    answer_codes = codes(frames)
    out = processor.apply_chat_template(conversation(text, answer_codes), output_labels=True, return_tensors="np")
    check_targets(processor, out["input_ids"][0], out["labels"][0], answer_start(processor), picture, text,
                  answer_codes)  # fmt: skip


def test_processor_labels_of_a_text_answer():
    processor = tiny_processor()
    out = processor.apply_chat_template(conversation(TEXT_ONLY, None), output_labels=True, return_tensors="np")
    check_targets(processor, out["input_ids"][0], out["labels"][0], answer_start(processor), TEXT_ONLY_PICTURE,
                  TEXT_ONLY, None)  # fmt: skip


# ----- the collator -----


def collator_cases():
    cases = [(text, codes(frames, seed=i), picture) for i, (text, frames, picture) in enumerate(SPOKEN_CASES)]
    return cases + [(TEXT_ONLY, None, TEXT_ONLY_PICTURE)]


def old_rule_labels(ids: np.ndarray, a: int) -> np.ndarray:
    """Labels as the processor made them before fillers stopped being targets: every answer position, all streams
    (the audio slots only with codes), as in datasets laid out then."""
    labels = np.full_like(ids, IGNORE)
    labels[a:] = ids[a:]
    if (ids[a - 1, :7] == tiny_processor().vocabulary.audio_row("PAD_A")).all():  # a text-only answer
        labels[:, :7] = IGNORE
    return labels


@pytest.mark.parametrize("labels_from", ["processor", "old-rule-dataset"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_collator_pads_and_keeps_the_targets(padding_side, labels_from):
    processor = tiny_processor()
    a = answer_start(processor)
    cases = collator_cases()
    examples = []
    for text, answer_codes, _ in cases:
        out = processor.apply_chat_template(conversation(text, answer_codes), output_labels=True, return_tensors="np")
        example = {key: value[0] if key != "input_features" else value for key, value in out.items()}
        if labels_from == "old-rule-dataset":
            example["labels"] = old_rule_labels(example["input_ids"], a).tolist()  # as `datasets` stores it
        examples.append(example)
    batch = DeepOmniDataCollator(processor, padding_side=padding_side, pad_to_multiple_of=8)(examples)
    length = batch["labels"].shape[1]
    assert length % 8 == 0
    for row, ((text, answer_codes, picture), example) in enumerate(zip(cases, examples)):
        size = len(example["input_ids"])
        real = slice(0, size) if padding_side == "right" else slice(length - size, length)
        pad = slice(size, length) if padding_side == "right" else slice(0, length - size)
        check_targets(processor, batch["input_ids"][row, real], batch["labels"][row, real], a, picture, text,
                      answer_codes)  # fmt: skip
        assert (batch["labels"][row, pad] == IGNORE).all()
        assert (batch["input_ids"][row, pad].numpy() == processor.pad_row).all()


# ----- DPO pairs -----


@pytest.mark.parametrize(
    "text, chosen_frames, chosen_picture, rejected_frames, rejected_picture",
    [
        (SHORT_TEXT, 4, SHORT_TEXT_4_FRAMES, 1, SHORT_TEXT_1_FRAME),
        (LONG_TEXT, 2, LONG_TEXT_2_FRAMES, 6, LONG_TEXT_6_FRAMES),
    ],
    ids=SPOKEN_IDS,
)
def test_dpo_pair_targets_and_slot_log_probs(text, chosen_frames, chosen_picture, rejected_frames, rejected_picture):
    processor = tiny_processor()
    a = answer_start(processor)
    chosen, rejected = codes(chosen_frames, seed=1), codes(rejected_frames, seed=2)
    pair = build_dpo_pair(processor, conversation(text, None), chosen, rejected)
    check_targets(processor, pair["chosen_input_ids"], pair["chosen_labels"], a, chosen_picture, text, chosen)
    check_targets(processor, pair["rejected_input_ids"], pair["rejected_labels"], a, rejected_picture, text, rejected)

    # The DPO batch (chosen rows, then rejected rows, padded together) keeps the targets; each slot's summed
    # log-probability is over its codes and EOA only.
    batch = DeepOmniDPOCollator(processor)([pair])
    config = tiny_model().config
    slot_vocab = config.audio_slot_vocab_size
    logits = torch.randn(2, batch["labels"].shape[1], 7, slot_vocab, generator=torch.Generator().manual_seed(0))
    got = slot_log_probs(logits, batch["labels"], config)
    for row, (picture, sequence_codes) in enumerate([(chosen_picture, chosen), (rejected_picture, rejected)]):
        size = len(picture[0])
        check_targets(processor, batch["input_ids"][row, : a - 1 + size], batch["labels"][row, : a - 1 + size], a,
                      picture, text, sequence_codes)  # fmt: skip
        assert (batch["labels"][row, a - 1 + size :] == IGNORE).all()
        for slot in range(7):
            local = [*sequence_codes[:, slot].tolist(), 4096]  # the codes, then EOA
            positions = [a - 1 + column for column, mark in enumerate(picture[slot]) if mark in "CE"]
            expected = sum(
                logits[row, position - 1, slot].log_softmax(-1)[code] for position, code in zip(positions, local)
            )
            torch.testing.assert_close(got[row, slot], expected)


# ----- the model's loss -----


def test_model_loss_averages_each_stream_over_its_targets_only():
    processor = tiny_processor()
    model = tiny_model().eval()
    a = answer_start(processor)
    text, frames, picture = SPOKEN_CASES[0]
    spoken = processor.apply_chat_template(conversation(text, codes(frames)), output_labels=True)
    with torch.no_grad():
        out = model(**spoken)
    ids = spoken["input_ids"][0]
    for stream, row in enumerate(picture):
        positions = [a - 1 + column for column, mark in enumerate(row) if mark != "."]
        logits = out.logits[0] if stream == 7 else out.audio_logits[0, :, stream]
        offset = 0 if stream == 7 else model.config.audio_slot_offset(stream)
        expected = F.cross_entropy(logits[[p - 1 for p in positions]].float(), ids[positions, stream] - offset)
        torch.testing.assert_close(out.stream_losses[stream], expected)
    torch.testing.assert_close(out.loss, out.stream_losses.mean())

    # A text answer: no audio stream has a target, and the loss is the text cross-entropy alone.
    text_only = processor.apply_chat_template(conversation(TEXT_ONLY, None), output_labels=True)
    with torch.no_grad():
        out = model(**text_only)
    positions = [a - 1 + column for column, mark in enumerate(TEXT_ONLY_PICTURE[7]) if mark != "."]
    expected = F.cross_entropy(out.logits[0, [p - 1 for p in positions]].float(), text_only["input_ids"][0, positions, 7])
    assert torch.isnan(out.stream_losses[:7]).all()
    torch.testing.assert_close(out.loss, expected)

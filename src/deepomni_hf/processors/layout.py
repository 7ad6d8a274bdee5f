# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""DeepOmni's 8-stream layout (DESIGN §3): the id ranges of the vocabulary, how a conversation's positions are laid
out, and which of them are targets.

Layout of one position (last axis of `input_ids` / `labels`): indices 0-6 are the audio slots of one SNAC frame
(level-0 code, 2 level-1 codes, 4 level-2 codes), index 7 is text. All values are absolute vocabulary ids: text ids
`0 .. text_vocab_size - 1` (the backbone's), text specials from `text_vocab_size`, then for each audio slot `i` its
codes and audio specials from `audio_slot_offset(i)`.

A conversation lays out as follows (`a` = first answer position, `n` = Whisper frames of a spoken turn):

```
text stream   <bos> User: <AUDIO>×(n+2)  \\n\\n Assistant: | T0 T1 ... EOT PAD_T ... PAD_T
slot 0        PAD_A  ...  BOA PAD_A… EOA  PAD_A  … SPK       | PAD_A c0 c1 ...  cF-1 EOA PAD_A ...
slot i        PAD_A  ...  BOA PAD_A… EOA  PAD_A  … SPK       | PAD_A ×(i+1)  c0 ... cF-1 EOA PAD_A ...
                                                     a-1 ↑   ↑ a
```

Targets (`labels` not −100) are the last answer's text tokens and `EOT`, and each slot's codes and `EOA`; everything
else is −100: the prompt (with the speaker token `SPK`), `PAD_T` after `EOT`, and `PAD_A` before a slot's first code
and after its `EOA` — fillers that decoding forces anyway, as in the published system's data code.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .tokenization import TEXT_SPECIAL_TOKENS


IGNORE_INDEX = -100
# Audio specials in id order from code `codebook_size` of every slot; mirrors `DeepOmniConfig.audio_special_tokens`
# (repeated, not imported, so this folder can travel with a saved processor; a test keeps them in sync).
AUDIO_SPECIAL_TOKENS = ("EOA", "PAD_A", "BOA", "ANS_A", "ASR", "AQA", "AQAA", "M29", "F10", "ER")
# Speaker tokens that may open a spoken answer (DESIGN §3): the default answer voice and the two named voices.
VOICES = ("ANS_A", "M29", "F10")
NUM_AUDIO_STREAMS = 7
NUM_STREAMS = 8
TEXT_STREAM = 7


class DeepOmniLayoutError(ValueError):
    """A conversation or code array that cannot be laid out in DeepOmni's 8 streams; the message says why."""


@dataclass(frozen=True)
class StreamVocabulary:
    """The id ranges of the 8-stream vocabulary (the same arithmetic as `DeepOmniConfig`)."""

    text_vocab_size: int = 102400
    num_text_special_tokens: int = 64
    codebook_size: int = 4096
    num_audio_special_tokens: int = 64
    text_special_tokens: tuple[str, ...] = TEXT_SPECIAL_TOKENS
    audio_special_tokens: tuple[str, ...] = AUDIO_SPECIAL_TOKENS

    @classmethod
    def from_config(cls, config: Any) -> StreamVocabulary:
        """The vocabulary of anything with the fields of the same names (a `DeepOmniConfig`, a processor)."""
        values = {field.name: getattr(config, field.name) for field in fields(cls)}
        for name in ("text_special_tokens", "audio_special_tokens"):
            values[name] = tuple(values[name])
        return cls(**values)

    @property
    def padded_text_vocab_size(self) -> int:
        return self.text_vocab_size + self.num_text_special_tokens

    @property
    def audio_slot_vocab_size(self) -> int:
        return self.codebook_size + self.num_audio_special_tokens

    @property
    def total_vocab_size(self) -> int:
        return self.padded_text_vocab_size + NUM_AUDIO_STREAMS * self.audio_slot_vocab_size

    def audio_slot_offset(self, slot: int) -> int:
        """Absolute id of code 0 of audio slot `slot` (0..6)."""
        return self.padded_text_vocab_size + self.audio_slot_vocab_size * slot

    def text_token_id(self, name: str) -> int:
        """Absolute id of a text special, e.g. `text_token_id("EOT")`."""
        return self.text_vocab_size + self.text_special_tokens.index(name)

    def audio_code(self, name: str) -> int:
        """Slot-local id of an audio special, e.g. `audio_code("EOA") == codebook_size`."""
        return self.codebook_size + self.audio_special_tokens.index(name)

    def audio_token_id(self, name: str, slot: int) -> int:
        """Absolute id of an audio special in one slot."""
        return self.audio_slot_offset(slot) + self.audio_code(name)

    def audio_row(self, name: str) -> np.ndarray:
        """The 7 absolute ids of one audio special across the slots."""
        return np.array([self.audio_token_id(name, slot) for slot in range(NUM_AUDIO_STREAMS)], dtype=np.int64)

    @property
    def slot_offsets(self) -> np.ndarray:
        return np.array([self.audio_slot_offset(slot) for slot in range(NUM_AUDIO_STREAMS)], dtype=np.int64)

    @property
    def pad_row(self) -> np.ndarray:
        """The 8 ids of a position that carries nothing: `PAD_A` in every audio slot, `PAD_T` as text."""
        return np.append(self.audio_row("PAD_A"), self.text_token_id("PAD_T"))


def layout_answer(vocab: StreamVocabulary, text_ids: list[int], codes: np.ndarray | None) -> np.ndarray:
    """
    The positions `[positions, 8]` of one answer, from its first text token `a` on (DESIGN §3): text then `EOT`, then
    `PAD_T` while audio remains; with raw codes `[frames, 7]`, slot `i`'s code `j` at `a + i + 1 + j`, then `EOA`,
    `PAD_A` around them. The speaker token sits on the position before `a`, outside this block.
    """
    num_text = len(text_ids)
    num_positions = num_text + 1 if codes is None else max(num_text + 1, len(codes) + NUM_AUDIO_STREAMS + 1)
    rows = np.empty((num_positions, NUM_STREAMS), dtype=np.int64)
    rows[:, :NUM_AUDIO_STREAMS] = vocab.audio_row("PAD_A")
    rows[:num_text, TEXT_STREAM] = text_ids
    rows[num_text, TEXT_STREAM] = vocab.text_token_id("EOT")
    rows[num_text + 1 :, TEXT_STREAM] = vocab.text_token_id("PAD_T")
    if codes is not None:
        num_frames = len(codes)
        for slot in range(NUM_AUDIO_STREAMS):
            rows[slot + 1 : slot + 1 + num_frames, slot] = codes[:, slot] + vocab.audio_slot_offset(slot)
            rows[slot + 1 + num_frames, slot] = vocab.audio_token_id("EOA", slot)
    return rows


def drop_filler_targets(labels: np.ndarray, vocab: StreamVocabulary) -> np.ndarray:
    """
    `labels` (`[..., 8]`, absolute ids) with −100 wherever a filler stands: `PAD_T` in the text stream, `PAD_A` or a
    speaker token (`VOICES`) in an audio slot. In an answer block these are exactly the positions that are no targets
    (`PAD_T` after `EOT`, `PAD_A` before a slot's first code and after its `EOA`), so what remains is the text tokens
    and `EOT`, and each slot's codes and `EOA`. Returns a new array; idempotent.
    """
    labels = np.array(labels, dtype=np.int64, copy=True)
    text = labels[..., TEXT_STREAM]
    text[text == vocab.text_token_id("PAD_T")] = IGNORE_INDEX
    fillers = [vocab.audio_code(name) for name in ("PAD_A", *VOICES)]
    audio = labels[..., :NUM_AUDIO_STREAMS]
    audio[np.isin(audio - vocab.slot_offsets, fillers)] = IGNORE_INDEX  # −100 minus an offset is no code
    return labels


class SequenceBuilder:
    """Accumulates the rows (8 ids) and label rows of one conversation; `processor` is the `DeepOmniProcessor` (for
    tokenizing and the length of speech spans)."""

    def __init__(self, processor: Any):
        self.processor = processor
        self.vocab = processor.vocabulary
        self.pad_audio = self.vocab.audio_row("PAD_A")
        self.rows: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.waveforms: list[np.ndarray] = []

    def _append(self, rows: np.ndarray, labels: np.ndarray | None = None) -> None:
        self.rows.append(rows)
        self.labels.append(np.full_like(rows, IGNORE_INDEX) if labels is None else labels)

    def add_text(self, token_ids: list[int]) -> None:
        """Text positions: the token in the text stream, `PAD_A` in every audio slot."""
        if not token_ids:
            return
        rows = np.empty((len(token_ids), NUM_STREAMS), dtype=np.int64)
        rows[:, :NUM_AUDIO_STREAMS] = self.pad_audio
        rows[:, TEXT_STREAM] = token_ids
        self._append(rows)

    def add_speech(self, waveform: np.ndarray) -> None:
        """A user-speech span: `n + 2` positions with the AUDIO placeholder as text; BOA, `n` × PAD_A, EOA."""
        num_positions = self.processor.num_speech_positions(len(waveform))
        rows = np.empty((num_positions, NUM_STREAMS), dtype=np.int64)
        rows[:, :NUM_AUDIO_STREAMS] = self.pad_audio
        rows[0, :NUM_AUDIO_STREAMS] = self.vocab.audio_row("BOA")
        rows[-1, :NUM_AUDIO_STREAMS] = self.vocab.audio_row("EOA")
        rows[:, TEXT_STREAM] = self.vocab.text_token_id("AUDIO")
        self._append(rows)
        self.waveforms.append(waveform)

    def add_prompt_text(self, text: str, waveforms) -> None:
        """Rendered prompt text; each `<|AUDIO|>` in it takes the next waveform."""
        pieces = text.split(self.processor.audio_token)
        for index, piece in enumerate(pieces):
            self.add_text(self.processor._tokenize(piece))
            if index < len(pieces) - 1:
                waveform = next(waveforms, None)
                if waveform is None:
                    raise DeepOmniLayoutError("More <|AUDIO|> placeholders than audio items.")
                self.add_speech(waveform)

    def set_speaker(self, voice: str) -> None:
        """Puts the speaker token in the 7 audio slots of the last position so far (the position before `a`); that
        position's labels stay −100."""
        if not self.rows:
            raise DeepOmniLayoutError("A spoken answer needs a prompt position before it for the speaker token.")
        self.rows[-1][-1, :NUM_AUDIO_STREAMS] = self.vocab.audio_row(voice)
        self.labels[-1][-1] = IGNORE_INDEX

    def add_answer(self, text_ids: list[int], codes: np.ndarray | None, speaker: str | None, learn: bool) -> None:
        """An answer block ([`layout_answer`]) after the speaker token (with codes); with `learn`, its targets are the
        text tokens, `EOT`, and each slot's codes and `EOA` (a text-only answer teaches no audio)."""
        if codes is not None:
            self.set_speaker(speaker)
        rows = layout_answer(self.vocab, text_ids, codes)
        self._append(rows, drop_filler_targets(rows, self.vocab) if learn else None)

    def finish(self) -> dict[str, Any]:
        empty = np.zeros((0, NUM_STREAMS), dtype=np.int64)
        return {
            "input_ids": np.concatenate(self.rows) if self.rows else empty,
            "labels": np.concatenate(self.labels) if self.labels else empty,
            "waveforms": self.waveforms,
        }


__all__ = [
    "AUDIO_SPECIAL_TOKENS",
    "IGNORE_INDEX",
    "NUM_AUDIO_STREAMS",
    "NUM_STREAMS",
    "TEXT_STREAM",
    "VOICES",
    "DeepOmniLayoutError",
    "SequenceBuilder",
    "StreamVocabulary",
    "drop_filler_targets",
    "layout_answer",
]

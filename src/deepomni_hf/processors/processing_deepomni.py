# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Processor of DeepOmni: chat → the 8-stream token layout (7 SNAC slots + text) with Whisper features, and back.

The layout itself (id ranges, the answer staircase, which positions are targets) lives in `layout.py`; the checks of
chat messages in `messages.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature, WhisperFeatureExtractor
from transformers.processing_utils import ProcessorMixin
from transformers.utils.chat_template_utils import render_jinja_template

from .audio import DEFAULT_SILENCE_THRESHOLD, load_speech, num_whisper_frames
from .collator import as_stream_array, pad_stream_sequences
from .layout import (
    AUDIO_SPECIAL_TOKENS,
    IGNORE_INDEX,
    NUM_AUDIO_STREAMS,
    NUM_STREAMS,
    TEXT_STREAM,
    VOICES,
    DeepOmniLayoutError,
    SequenceBuilder,
    StreamVocabulary,
)
from .messages import as_conversation_batch, audio_source, codes_item, normalize_message
from .tokenization import TEXT_SPECIAL_TOKENS, extend_tokenizer, text_special_token


REPLY_MODALITIES = ("text", "speech")

# DeepSeek-V2(-Lite)-Chat's own chat format: `<bos>`, then per message `{system}\n\n`, `User: {text}\n\n` or
# `Assistant: {text}<eos>`, and `Assistant:` as the generation prompt. Two additions, neither of which changes what
# a text-only chat renders to: a spoken item renders as the `<|AUDIO|>` placeholder (the processor expands it to the
# speech span), and each answer (`' ' + text + eos`) sits in a `{% generation %}` block so the processor knows where
# the answer starts. In the 8-stream layout the answer's closing `<eos>` becomes `EOT` (DESIGN §3).
DEFAULT_CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
        "{%- set ns = namespace(text='') -%}"
        "{%- if message['content'] is string -%}"
            "{%- set ns.text = message['content'] -%}"
        "{%- elif message['content'] is not none -%}"
            "{%- for item in message['content'] -%}"
                "{%- if item['type'] == 'text' -%}"
                    "{%- set ns.text = ns.text + item['text'] -%}"
                "{%- elif item['type'] == 'audio' -%}"
                    "{%- set ns.text = ns.text + '<|AUDIO|>' -%}"
                "{%- endif -%}"
            "{%- endfor -%}"
        "{%- endif -%}"
        "{%- if message['role'] == 'system' -%}"
            "{{- ns.text + '\n\n' -}}"
        "{%- elif message['role'] == 'user' -%}"
            "{{- 'User: ' + ns.text + '\n\n' -}}"
        "{%- elif message['role'] == 'assistant' -%}"
            "{{- 'Assistant:' -}}"
            "{%- generation -%}{{- ' ' + ns.text + eos_token -}}{%- endgeneration -%}"
        "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
        "{{- 'Assistant:' -}}"
    "{%- endif -%}"
)  # fmt: skip


@dataclass
class DeepOmniDecodedOutput:
    """
    One answer read back from the 8 streams.

    Args:
        text (`str`): the text stream up to `EOT`, specials dropped, surrounding whitespace stripped.
        audio_codes (`torch.LongTensor` of shape `(frames, 7)`): raw SNAC codes `0..codebook_size-1` in slot order,
            ready for `DeepOmniCodecModel.decode(audio_codes[None])`.
        text_token_ids (`list[int]`): the text ids behind `text`.
    """

    text: str
    audio_codes: torch.LongTensor
    text_token_ids: list[int]


class DeepOmniProcessor(ProcessorMixin):
    r"""
    Builds DeepOmni's inputs and labels from chats, and reads answers back.

    It wraps a [`WhisperFeatureExtractor`] (16 kHz, 80 mel bins, 30 s windows → `input_features`
    `[num_audios, 80, 3000]`) and the backbone tokenizer extended with DeepOmni's text specials (see
    [`extend_tokenizer`]), and holds the vocabulary layout so it saves to `processor_config.json` and reloads with
    `AutoProcessor.from_pretrained`.

    Main entry points:

    - [`~DeepOmniProcessor.apply_chat_template`]: messages → `input_ids` / `labels` `[batch, positions, 8]`,
      `attention_mask`, `input_features`;
    - [`~DeepOmniProcessor.decode_output`] / [`~DeepOmniProcessor.batch_decode`]: generated streams → text and codec
      codes `[frames, 7]`;
    - [`DeepOmniDataCollator`] pads examples for `Trainer`.

    Args:
        feature_extractor ([`WhisperFeatureExtractor`]):
            Whisper's log-mel front end (80 bins, 16 kHz).
        tokenizer ([`PreTrainedTokenizerBase`]):
            The backbone tokenizer (DeepSeek-V2-Lite-Chat's). Extended in place with the text specials if it is not
            already (idempotent).
        chat_template (`str`, *optional*):
            Jinja template rendering the text stream; defaults to DeepSeek-V2-Chat's format (`DEFAULT_CHAT_TEMPLATE`).
            Custom templates must render spoken items as `<|AUDIO|>` and wrap each assistant answer in
            `{% generation %}...{% endgeneration %}`.
        text_vocab_size (`int`, *optional*, defaults to 102400), num_text_special_tokens (`int`, *optional*, defaults
        to 64), codebook_size (`int`, *optional*, defaults to 4096), num_audio_special_tokens (`int`, *optional*,
        defaults to 64), text_special_tokens (`list[str]`, *optional*), audio_special_tokens (`list[str]`,
        *optional*), audio_frames_per_second (`int`, *optional*, defaults to 50), max_audio_seconds (`float`,
        *optional*, defaults to 29.98):
            The vocabulary layout and speech limits; must equal the model's `DeepOmniConfig` fields of the same name
            (use [`~DeepOmniProcessor.from_model_config`]).
        silence_threshold (`float`, *optional*, defaults to 1e-4):
            Spoken turns whose peak amplitude stays below this are rejected as silent; `None` accepts them.
        default_voice (`str`, *optional*, defaults to `"ANS_A"`):
            Speaker token of spoken answers when the call names none (`"ANS_A"`, `"M29"` or `"F10"`).
    """

    def __init__(
        self,
        feature_extractor=None,
        tokenizer=None,
        chat_template=None,
        text_vocab_size: int = 102400,
        num_text_special_tokens: int = 64,
        codebook_size: int = 4096,
        num_audio_special_tokens: int = 64,
        text_special_tokens: list[str] | None = None,
        audio_special_tokens: list[str] | None = None,
        audio_frames_per_second: int = 50,
        max_audio_seconds: float = 29.98,
        silence_threshold: float | None = DEFAULT_SILENCE_THRESHOLD,
        default_voice: str = "ANS_A",
    ):
        if chat_template is None:
            chat_template = DEFAULT_CHAT_TEMPLATE
        self.text_vocab_size = int(text_vocab_size)
        self.num_text_special_tokens = int(num_text_special_tokens)
        self.codebook_size = int(codebook_size)
        self.num_audio_special_tokens = int(num_audio_special_tokens)
        self.text_special_tokens = list(text_special_tokens or TEXT_SPECIAL_TOKENS)
        self.audio_special_tokens = list(audio_special_tokens or AUDIO_SPECIAL_TOKENS)
        self.audio_frames_per_second = int(audio_frames_per_second)
        self.max_audio_seconds = float(max_audio_seconds)
        self.silence_threshold = silence_threshold
        self.default_voice = default_voice
        self.vocabulary = StreamVocabulary.from_config(self)
        self._check_vocabulary()
        super().__init__(feature_extractor, tokenizer, chat_template=chat_template)
        extend_tokenizer(
            self.tokenizer, self.text_vocab_size, self.text_special_tokens, self.num_text_special_tokens
        )
        self.audio_token = text_special_token("AUDIO")
        self.audio_token_id = self.vocabulary.text_token_id("AUDIO")

    @classmethod
    def from_model_config(cls, config, tokenizer, feature_extractor=None, **kwargs) -> DeepOmniProcessor:
        """A processor whose layout matches `config` (a `DeepOmniConfig`); builds Whisper's feature extractor (80 mel
        bins at `config.audio_sampling_rate`) when none is given."""
        if feature_extractor is None:
            feature_extractor = WhisperFeatureExtractor(
                feature_size=config.audio_config.num_mel_bins, sampling_rate=config.audio_sampling_rate
            )
        layout = {name: getattr(config, name) for name in _CONFIG_LAYOUT_FIELDS}
        return cls(feature_extractor=feature_extractor, tokenizer=tokenizer, **{**layout, **kwargs})

    def check_model_config(self, config) -> None:
        """Raises `ValueError` when this processor's layout differs from the model's `DeepOmniConfig`."""
        for name in _CONFIG_LAYOUT_FIELDS:
            mine, theirs = getattr(self, name), getattr(config, name)
            if (list(mine) if isinstance(mine, (list, tuple)) else mine) != (
                list(theirs) if isinstance(theirs, (list, tuple)) else theirs
            ):
                raise ValueError(
                    f"Processor and model disagree on {name}: {mine!r} vs {theirs!r}. Build the processor with "
                    "DeepOmniProcessor.from_model_config(config, tokenizer)."
                )
        if self.feature_extractor.sampling_rate != config.audio_sampling_rate:
            raise ValueError(
                f"The feature extractor works at {self.feature_extractor.sampling_rate} Hz, the model's Whisper at "
                f"{config.audio_sampling_rate} Hz."
            )

    def _check_vocabulary(self) -> None:
        for name in ("EOT", "PAD_T", "AUDIO"):
            if name not in self.text_special_tokens:
                raise ValueError(f"text_special_tokens must contain {name!r}; got {self.text_special_tokens}.")
        for name in ("EOA", "PAD_A", "BOA", *VOICES):
            if name not in self.audio_special_tokens:
                raise ValueError(f"audio_special_tokens must contain {name!r}; got {self.audio_special_tokens}.")
        if self.default_voice not in VOICES:
            raise ValueError(f"default_voice must be one of {VOICES}, got {self.default_voice!r}.")

    # ----- ids of the layout -----
    @property
    def pad_row(self) -> np.ndarray:
        """The 8 ids of a position that carries nothing: `PAD_A` in every audio slot, `PAD_T` as text."""
        return self.vocabulary.pad_row

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "input_features"]

    def num_speech_positions(self, num_samples: int) -> int:
        """Positions of a spoken turn of `num_samples` at the feature extractor's rate: `n + 2` (BOA, n frames,
        EOA) with `n = floor(samples / 16000 · 50) + 1`."""
        return num_whisper_frames(num_samples, self.feature_extractor.sampling_rate, self.audio_frames_per_second) + 2

    # ----- building the layout -----
    def apply_chat_template(
        self,
        conversation: list[dict] | list[list[dict]],
        chat_template: str | None = None,
        tokenize: bool = True,
        return_dict: bool = True,
        add_generation_prompt: bool = False,
        output_labels: bool = False,
        reply_modality: str = "text",
        voice: str | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = "pt",
        **template_kwargs,
    ):
        r"""
        Lays out one conversation or a batch of them in the 8 streams.

        Messages are `{"role": "system" | "user" | "assistant", "content": str | list[item]}` with items
        `{"type": "text", "text": str}`, `{"type": "audio", "audio": path | bytes | array | datasets audio,
        "sampling_rate": int}` (user / system turns; `sampling_rate` is needed for arrays only) and, in assistant
        turns, `{"type": "audio_codes", "codes": LongTensor | array [frames, 7], "voice": "ANS_A" | "M29" | "F10"}`
        (raw SNAC codes `0..4095`; `voice` optional).

        Args:
            conversation: one list of messages, or a list of such lists (a batch).
            chat_template (`str`, *optional*): a template to use instead of `self.chat_template`.
            tokenize (`bool`, *optional*, defaults to `True`): `False` returns the rendered text stream (spoken
                turns show as one `<|AUDIO|>` each, codes do not show).
            return_dict (`bool`, *optional*, defaults to `True`): `False` returns `input_ids` only.
            add_generation_prompt (`bool`, *optional*, defaults to `False`): end with the assistant prefix
                (`Assistant:`) for generation.
            output_labels (`bool`, *optional*, defaults to `False`): add `labels` for the last assistant turn (the
                conversation must have one, and no generation prompt).
            reply_modality (`str`, *optional*, defaults to `"text"`): with `add_generation_prompt`, `"speech"` asks
                for a spoken answer by putting the speaker token of `voice` in the audio slots of the last prompt
                position.
            voice (`str`, *optional*): speaker token of spoken answers (`"ANS_A"`, `"M29"`, `"F10"`); defaults to
                `default_voice`. An `audio_codes` item's own `"voice"` wins for its turn.
            padding_side (`str`, *optional*): `"left"` or `"right"` for batches; defaults to `"left"` with a generation
                prompt and `"right"` otherwise.
            return_tensors (`str`, *optional*, defaults to `"pt"`): `"pt"`, `"np"` or `None` (numpy arrays).
            template_kwargs: extra variables for the Jinja template.

        Returns:
            [`BatchFeature`] with
            - **input_ids** `[batch, positions, 8]`: absolute ids (7 audio slots, then text);
            - **attention_mask** `[batch, positions]`;
            - **input_features** `[num_audios, 80, 3000]`: Whisper log-mels of the spoken turns in order of appearance
              (row by row), only when the batch has any;
            - **labels** `[batch, positions, 8]` (with `output_labels=True`): the targets of the last assistant answer
              — its text tokens and `EOT`, and (where codes are given) each slot's codes and `EOA` — at the positions
              where `input_ids` holds them; `-100` elsewhere, including the fillers `PAD_T` after `EOT`, `PAD_A`
              before a slot's first code and after its `EOA`, and the speaker-token position.
        """
        if reply_modality not in REPLY_MODALITIES:
            raise ValueError(f"reply_modality must be one of {REPLY_MODALITIES}, got {reply_modality!r}.")
        if output_labels and add_generation_prompt:
            raise ValueError(
                "output_labels=True builds a training example whose last assistant turn is the target; "
                "add_generation_prompt=True builds a prompt to generate from. Use one or the other."
            )
        voice = self._check_voice(self.default_voice if voice is None else voice)
        conversations, is_batched = as_conversation_batch(conversation)
        template = chat_template or self.chat_template
        if isinstance(template, dict):
            template = template.get("default")
        if not template:
            raise ValueError("No chat template: pass chat_template=... or set processor.chat_template.")

        if not tokenize:
            rendered = [
                self._render(messages, template, add_generation_prompt, template_kwargs)[0]
                for messages in conversations
            ]
            return rendered if is_batched else rendered[0]

        examples = [
            self._layout_conversation(
                messages, template, add_generation_prompt, output_labels, reply_modality, voice, template_kwargs
            )
            for messages in conversations
        ]
        if padding_side is None:
            padding_side = "left" if add_generation_prompt else "right"
        batch = self._pad_examples(examples, padding_side, output_labels)
        if not return_dict:
            return BatchFeature({"input_ids": batch["input_ids"]}, tensor_type=return_tensors)["input_ids"]
        return BatchFeature(batch, tensor_type=return_tensors)

    def __call__(
        self,
        text: str | list[str] | None = None,
        audio: Any = None,
        sampling_rate: int | None = None,
        padding_side: str = "left",
        return_tensors: str | None = "pt",
        **kwargs,
    ) -> BatchFeature:
        r"""
        Lays out already formatted text: each `<|AUDIO|>` in `text` becomes the speech span of the next item of
        `audio` (in order, across the batch). No chat template is applied and no labels are made; use
        [`~DeepOmniProcessor.apply_chat_template`] for chats.

        Args:
            text (`str` or `list[str]`): prompt(s) including any `<｜begin▁of▁sentence｜>` and role prefixes.
            audio: one audio input or a list of them (any form [`load_speech`] accepts).
            sampling_rate (`int`, *optional*): rate of audio given as arrays.
            padding_side (`str`, *optional*, defaults to `"left"`).
            return_tensors (`str`, *optional*, defaults to `"pt"`).

        Returns:
            [`BatchFeature`] with `input_ids`, `attention_mask` and, with audio, `input_features`.
        """
        if kwargs:
            raise TypeError(f"Unexpected arguments {sorted(kwargs)}.")
        if text is None:
            raise ValueError("DeepOmniProcessor needs `text` (with one <|AUDIO|> per audio item).")
        texts = [text] if isinstance(text, str) else list(text)
        if audio is None:
            audios = []
        elif isinstance(audio, (list, tuple)):
            audios = list(audio)
        else:
            audios = [audio]
        num_markers = sum(t.count(self.audio_token) for t in texts)
        if num_markers != len(audios):
            raise DeepOmniLayoutError(
                f"The text holds {num_markers} {self.audio_token} placeholder(s) but {len(audios)} audio item(s) "
                "were given; give one audio per placeholder, in order."
            )
        waveforms = iter([self._load(item, sampling_rate) for item in audios])
        examples = []
        for prompt in texts:
            builder = SequenceBuilder(self)
            builder.add_prompt_text(prompt, waveforms)
            examples.append(builder.finish())
        return BatchFeature(self._pad_examples(examples, padding_side, False), tensor_type=return_tensors)

    def _render(self, messages, template, add_generation_prompt, template_kwargs) -> tuple[str, list[tuple[int, int]]]:
        """The text stream of one conversation as a string, and the character span of each assistant answer."""
        special_tokens = {
            "bos_token": self.tokenizer.bos_token or "",
            "eos_token": self.tokenizer.eos_token or "",
            "audio_token": self.audio_token,
        }
        rendered, spans = render_jinja_template(
            conversations=[messages],
            chat_template=template,
            return_assistant_tokens_mask=True,
            add_generation_prompt=add_generation_prompt,
            **{**special_tokens, **template_kwargs},
        )
        return rendered[0], [tuple(span) for span in spans[0]]

    def _layout_conversation(
        self, messages, template, add_generation_prompt, output_labels, reply_modality, voice, template_kwargs
    ) -> dict[str, Any]:
        messages = [normalize_message(message, index) for index, message in enumerate(messages)]
        assistant_turns = [message for message in messages if message["role"] == "assistant"]
        if output_labels and not assistant_turns:
            raise DeepOmniLayoutError(
                "output_labels=True needs an assistant turn to learn, but the conversation has none. Add the answer "
                "as the last message: {'role': 'assistant', 'content': [{'type': 'text', 'text': ...}]}."
            )
        rendered, answer_spans = self._render(messages, template, add_generation_prompt, template_kwargs)
        if len(answer_spans) != len(assistant_turns):
            raise DeepOmniLayoutError(
                f"The chat template marked {len(answer_spans)} answer(s) with {{% generation %}} but the conversation "
                f"has {len(assistant_turns)} assistant turn(s); the template must wrap every assistant answer."
            )

        waveforms = []
        for message in messages:
            for item in message["content"]:
                if item["type"] == "audio":
                    waveforms.append(self._load(audio_source(item), item.get("sampling_rate")))
        num_markers = rendered.count(self.audio_token)
        if num_markers != len(waveforms):
            raise DeepOmniLayoutError(
                f"The rendered chat holds {num_markers} {self.audio_token} placeholder(s) but the messages have "
                f"{len(waveforms)} audio item(s). Do not type {self.audio_token} in text; use an audio item."
            )

        builder = SequenceBuilder(self)
        waveform_iter = iter(waveforms)
        cursor = 0
        for turn, (start, end) in enumerate(answer_spans):
            builder.add_prompt_text(rendered[cursor:start], waveform_iter)
            message = assistant_turns[turn]
            codes_entry = codes_item(message)
            codes = None if codes_entry is None else self._check_codes(codes_entry["codes"])
            speaker = None
            if codes is not None:
                speaker = self._check_voice(codes_entry.get("voice") or voice)
            learn = output_labels and turn == len(answer_spans) - 1
            builder.add_answer(self._answer_text_ids(rendered[start:end]), codes, speaker, learn)
            cursor = end
        builder.add_prompt_text(rendered[cursor:], waveform_iter)
        if add_generation_prompt and reply_modality == "speech":
            builder.set_speaker(voice)
        return builder.finish()

    def _answer_text_ids(self, answer: str) -> list[int]:
        """Text ids of a rendered answer (`' ' + text + eos`): the closing eos is left out (the layout closes the
        answer with EOT instead)."""
        eos = self.tokenizer.eos_token
        if eos and answer.endswith(eos):
            answer = answer[: -len(eos)]
        if not answer.strip():
            return []
        return self._tokenize(answer)

    def _tokenize(self, text: str) -> list[int]:
        if not text:
            return []
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids and max(ids) >= self.vocabulary.padded_text_vocab_size:
            raise DeepOmniLayoutError(
                f"The tokenizer produced id {max(ids)}, outside the text stream's "
                f"{self.vocabulary.padded_text_vocab_size} ids; the tokenizer does not match the layout."
            )
        return list(ids)

    def _load(self, source: Any, sampling_rate: int | None) -> np.ndarray:
        waveform = load_speech(
            source,
            sampling_rate=sampling_rate,
            target_sampling_rate=self.feature_extractor.sampling_rate,
            max_seconds=self.max_audio_seconds,
            silence_threshold=self.silence_threshold,
        )
        frames = num_whisper_frames(len(waveform), self.feature_extractor.sampling_rate, self.audio_frames_per_second)
        max_frames = self.feature_extractor.nb_max_frames // 2  # Whisper's conv stem halves the mel frames
        if frames > max_frames:
            raise DeepOmniLayoutError(
                f"A spoken turn of {len(waveform)} samples needs {frames} Whisper frames but the encoder has "
                f"{max_frames}; split the audio (max_audio_seconds={self.max_audio_seconds} is too large)."
            )
        return waveform

    def _check_voice(self, voice: str) -> str:
        if voice not in VOICES:
            raise ValueError(f"voice must be one of {VOICES} (speaker tokens), got {voice!r}.")
        return voice

    def _check_codes(self, codes: Any) -> np.ndarray:
        """Raw codes `[frames, 7]` (a leading batch axis of 1 is dropped) as int64, range-checked."""
        if isinstance(codes, torch.Tensor):
            codes = codes.detach().cpu().numpy()
        codes = np.asarray(codes)
        if codes.ndim == 3 and codes.shape[0] == 1:
            codes = codes[0]
        if codes.ndim != 2 or codes.shape[1] != NUM_AUDIO_STREAMS:
            hint = " (it looks transposed: pass [frames, 7])" if codes.ndim == 2 and codes.shape[0] == 7 else ""
            raise DeepOmniLayoutError(
                f"audio_codes must have shape [frames, 7] (one SNAC frame per row, slots in DESIGN §3 order), got "
                f"{tuple(codes.shape)}{hint}."
            )
        if codes.size and not np.issubdtype(codes.dtype, np.integer):
            raise DeepOmniLayoutError(f"audio_codes must be integers, got dtype {codes.dtype}.")
        codes = codes.astype(np.int64, copy=False)
        if codes.size and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise DeepOmniLayoutError(
                f"audio_codes must be raw codec codes in [0, {self.codebook_size}), got values in "
                f"[{codes.min()}, {codes.max()}]. Pass the codec's codes, not absolute vocabulary ids."
            )
        return codes

    def _pad_examples(self, examples: list[dict], padding_side: str, output_labels: bool) -> dict[str, np.ndarray]:
        input_ids, attention_mask = pad_stream_sequences(
            [example["input_ids"] for example in examples], self.pad_row, padding_side
        )
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if output_labels:
            batch["labels"], _ = pad_stream_sequences(
                [example["labels"] for example in examples], [IGNORE_INDEX] * NUM_STREAMS, padding_side
            )
        waveforms = [waveform for example in examples for waveform in example["waveforms"]]
        if waveforms:
            batch["input_features"] = self.feature_extractor(
                waveforms, sampling_rate=self.feature_extractor.sampling_rate, return_tensors="np"
            )["input_features"].astype(np.float32)
        return batch

    # ----- reading answers back -----
    def decode_output(
        self, sequence: torch.Tensor | np.ndarray | list, start: int = 0, skip_special_tokens: bool = True
    ) -> DeepOmniDecodedOutput:
        """
        Reads one answer from an 8-stream sequence `[positions, 8]` (`input_ids`, `labels` or `generate` output).

        Args:
            sequence: absolute ids `[positions, 8]` (a leading batch axis of 1 is dropped).
            start (`int`, *optional*, defaults to 0): index of the first answer position `a` (for `generate` output,
                the prompt length); slot `i`'s code `j` is read at `start + i + 1 + j`.
            skip_special_tokens (`bool`, *optional*, defaults to `True`): passed to the tokenizer's `decode`.

        Returns:
            [`DeepOmniDecodedOutput`]: the text up to `EOT` (specials dropped) and the codes `[frames, 7]` (each slot
            read up to its `EOA`, specials dropped, the staircase delay undone, cut to the shortest slot).
        """
        answer = as_stream_array(sequence, "sequence")[start:]
        vocab = self.vocabulary
        text = answer[:, TEXT_STREAM]
        ends = np.flatnonzero(text == vocab.text_token_id("EOT"))
        text = text[: ends[0]] if len(ends) else text
        text_ids = [int(t) for t in text if 0 <= t < vocab.text_vocab_size]
        decoded = self.tokenizer.decode(text_ids, skip_special_tokens=skip_special_tokens).strip()

        slots = []
        end_code = vocab.audio_code("EOA")
        for slot in range(NUM_AUDIO_STREAMS):
            local = answer[slot + 1 :, slot] - vocab.audio_slot_offset(slot)
            ends = np.flatnonzero(local == end_code)
            local = local[: ends[0]] if len(ends) else local
            slots.append(local[(local >= 0) & (local < vocab.codebook_size)])
        frames = min(len(codes) for codes in slots)
        codes = np.stack([codes[:frames] for codes in slots], axis=1) if frames else np.zeros((0, 7), np.int64)
        return DeepOmniDecodedOutput(text=decoded, audio_codes=torch.from_numpy(codes).long(), text_token_ids=text_ids)

    def batch_decode_output(
        self, sequences: torch.Tensor | np.ndarray | list, start: int | Sequence[int] = 0, **kwargs
    ) -> list[DeepOmniDecodedOutput]:
        """[`~DeepOmniProcessor.decode_output`] for every row of `[batch, positions, 8]`; `start` is one index for all
        rows (left-padded prompts) or one per row."""
        if isinstance(sequences, torch.Tensor):
            sequences = sequences.detach().cpu().numpy()
        starts = [start] * len(sequences) if isinstance(start, (int, np.integer)) else list(start)
        if len(starts) != len(sequences):
            raise ValueError(f"Got {len(starts)} start indices for {len(sequences)} sequences.")
        return [self.decode_output(row, row_start, **kwargs) for row, row_start in zip(sequences, starts)]

    def batch_decode(self, sequences, *args, start: int | Sequence[int] = 0, **kwargs):
        """8-stream sequences `[batch, positions, 8]` → [`DeepOmniDecodedOutput`] per row (see
        [`~DeepOmniProcessor.decode_output`]); anything else (plain text ids) goes to the tokenizer's `batch_decode`."""
        if _is_stream_batch(sequences):
            return self.batch_decode_output(sequences, start, **kwargs)
        return self.tokenizer.batch_decode(sequences, *args, **kwargs)

    def decode(self, sequence, *args, start: int = 0, **kwargs):
        """An 8-stream sequence `[positions, 8]` → [`DeepOmniDecodedOutput`]; plain text ids go to the tokenizer."""
        if _is_stream_sequence(sequence):
            return self.decode_output(sequence, start, **kwargs)
        return self.tokenizer.decode(sequence, *args, **kwargs)


_CONFIG_LAYOUT_FIELDS = (
    "text_vocab_size",
    "num_text_special_tokens",
    "codebook_size",
    "num_audio_special_tokens",
    "text_special_tokens",
    "audio_special_tokens",
    "audio_frames_per_second",
    "max_audio_seconds",
)


def _shape(value) -> tuple[int, ...] | None:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return tuple(value.shape)
    return None


def _is_stream_sequence(value) -> bool:
    shape = _shape(value)
    return shape is not None and len(shape) == 2 and shape[-1] == NUM_STREAMS


def _is_stream_batch(value) -> bool:
    shape = _shape(value)
    return shape is not None and len(shape) == 3 and shape[-1] == NUM_STREAMS


__all__ = [
    "AUDIO_SPECIAL_TOKENS",
    "DEFAULT_CHAT_TEMPLATE",
    "VOICES",
    "DeepOmniDecodedOutput",
    "DeepOmniLayoutError",
    "DeepOmniProcessor",
    "StreamVocabulary",
]

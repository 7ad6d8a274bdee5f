# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Answer matching and error rates (DESIGN §6): normalisation, number words, containment, WER, relative drop.

* [`normalize_answer`]: lower case, punctuation dropped, number words written as digits (`"Twenty-one."` → `"21"`),
  articles (`a`, `an`, `the`) dropped. [`normalize_transcript`] is the same without dropping articles (for WER).
* [`answer_is_correct`]: the normalised reference equals, or is contained (on word boundaries) in, the normalised
  reply — `"Paris."` is answered by `"The capital is Paris."`.
* [`word_error_rate`]: corpus-level WER with `jiwer` over normalised texts; an empty hypothesis counts every
  reference word as deleted; pairs whose reference is empty are left out (and counted).
* [`relative_drop`]: `(baseline − model) / baseline`, the paper's measure of forgetting.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass


ARTICLES = frozenset({"a", "an", "the"})
_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]  # fmt: skip
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SMALL_NUMBERS = {word: value for value, word in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
NUMBER_WORDS = frozenset(SMALL_NUMBERS) | frozenset(SCALES)


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = re.sub(r"(?<=\d)[,_](?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"(?<=\d)\.(?=\d)", "point", text)  # keep decimals apart from sentence full stops
    text = text.replace("-", " ")  # twenty-one -> twenty one
    text = "".join(c if c.isalnum() or c.isspace() else " " for c in text)
    return text.split()


def _number_value(words: list[str]) -> int:
    """`["two", "hundred", "five"]` → 205 (words known to be number words; `and` already removed)."""
    total, current = 0, 0
    for word in words:
        if word in SMALL_NUMBERS:
            current += SMALL_NUMBERS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:  # thousand, million, billion
            total += max(current, 1) * SCALES[word]
            current = 0
    return total + current


def numbers_to_digits(words: list[str]) -> list[str]:
    """Replaces each run of number words by its digits: `["twenty", "one", "cats"]` → `["21", "cats"]`. An `and`
    after a scale word (`one hundred and five`) belongs to the run."""
    out, run = [], []
    for index, word in enumerate(words):
        inside_and = (word == "and" and run and run[-1] in SCALES and index + 1 < len(words)
                      and words[index + 1] in NUMBER_WORDS)  # fmt: skip
        if word in NUMBER_WORDS or inside_and:
            # A new run starts where a unit follows a unit or a ten ("one two" is two numbers, "twenty one" one).
            if run and word in SMALL_NUMBERS and run[-1] in SMALL_NUMBERS and not (
                run[-1] in _TENS and SMALL_NUMBERS[word] < 10
            ):
                out.append(str(_number_value(run)))
                run = []
            if word != "and":
                run.append(word)
            continue
        if run:
            out.append(str(_number_value(run)))
            run = []
        out.append(word)
    if run:
        out.append(str(_number_value(run)))
    return out


def normalize_transcript(text: str | None) -> str:
    """Lower case, punctuation dropped, number words as digits; articles kept (the form WER is computed on)."""
    return " ".join(numbers_to_digits(_words(text or "")))


def normalize_answer(text: str | None) -> str:
    """[`normalize_transcript`] with the articles `a`, `an`, `the` dropped (the form answers are matched on)."""
    return " ".join(word for word in normalize_transcript(text).split() if word not in ARTICLES)


def answer_is_correct(reference: str, reply: str | None) -> bool:
    """True when the normalised `reference` equals or is contained (whole words) in the normalised `reply`. An empty
    reference never matches (a data error, reported by the readers)."""
    ref = normalize_answer(reference)
    if not ref:
        return False
    return f" {ref} " in f" {normalize_answer(reply)} "


@dataclass(frozen=True)
class ErrorRate:
    """A corpus-level word error rate: `errors / reference_words`, over `pairs` pairs (`skipped_empty_references`
    pairs were left out because their reference was empty)."""

    errors: int
    reference_words: int
    pairs: int
    skipped_empty_references: int = 0

    @property
    def value(self) -> float | None:
        return self.errors / self.reference_words if self.reference_words else None


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorRate:
    """Corpus WER of `hypotheses` against `references` (normalised with [`normalize_transcript`]) with `jiwer`:
    `(substitutions + deletions + insertions) / reference words`. An empty (or `None`) hypothesis counts all its
    reference words as deletions; a pair with an empty reference is skipped and counted."""
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses.")
    refs, hyps, errors, words, skipped = [], [], 0, 0, 0
    for reference, hypothesis in zip(references, hypotheses):
        ref, hyp = normalize_transcript(reference), normalize_transcript(hypothesis)
        if not ref:
            skipped += 1
        elif not hyp:  # jiwer refuses empty strings: every reference word is a deletion
            errors += len(ref.split())
            words += len(ref.split())
        else:
            refs.append(ref)
            hyps.append(hyp)
    if refs:
        out = jiwer.process_words(refs, hyps)
        errors += out.substitutions + out.deletions + out.insertions
        words += out.substitutions + out.deletions + out.hits
    return ErrorRate(errors, words, len(references) - skipped, skipped)


def code_error_rate(reference_codes, generated_codes) -> ErrorRate:
    """Edit distance between two SNAC code sequences `[frames, 7]`, slot by slot (each slot's codes as one token
    sequence), summed over the 7 slots and divided by the reference's code count: how closely generated speech
    follows the codes of a reference answer, independent of the codec's decoder."""
    import numpy as np

    reference, generated = np.asarray(reference_codes).reshape(-1, 7), np.asarray(generated_codes).reshape(-1, 7)
    refs = [" ".join(map(str, reference[:, slot].tolist())) for slot in range(7)]
    hyps = [" ".join(map(str, generated[:, slot].tolist())) for slot in range(7)]
    rate = word_error_rate(refs, hyps)
    return ErrorRate(rate.errors, rate.reference_words, 1 if rate.reference_words else 0, 0)


def relative_drop(baseline: float | None, model: float | None) -> float | None:
    """`(baseline − model) / baseline`: the share of the baseline's score that the model lost (negative: a gain).
    `None` when either is missing or the baseline is 0."""
    if baseline is None or model is None or baseline == 0:
        return None
    return (baseline - model) / baseline


def mean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


__all__ = [
    "ARTICLES",
    "ErrorRate",
    "answer_is_correct",
    "code_error_rate",
    "mean",
    "normalize_answer",
    "normalize_transcript",
    "numbers_to_digits",
    "relative_drop",
    "word_error_rate",
]

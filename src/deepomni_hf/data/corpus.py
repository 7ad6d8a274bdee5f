# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`deepomni make-corpus`: a small synthetic paired speech–text set, from local text only.

Sentences come from, in order of preference: a given text file (one sentence per line), WordNet's example sentences
(`/usr/share/wordnet/data.*`, Debian package `wordnet-base`), or the built-in English sentences of
`deepomni_hf.tiny`. Each sentence is spoken by one of several voices (chosen round-robin), and the result is a
`datasets.Dataset` saved with `save_to_disk`, with columns `id`, `text`, `audio` (`datasets.Audio`, the voice's own
rate, stored as WAV bytes), `tts_voice` (backend voice name) and `voice` (speaker token, see `data.tts`). It is a
ready input of `deepomni build-dataset --stage alignment` (and, with `--answer-column text`, of the tts stage).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

import numpy as np


DEFAULT_VOICES = ("flite:awb", "flite:slt", "flite:rms", "flite:kal16")
WORDNET_GLOB = "/usr/share/wordnet/data.*"


def wordnet_sentences(pattern: str = WORDNET_GLOB, min_words: int = 3) -> list[str]:
    """The quoted example sentences of WordNet's data files (e.g. `"he ran the race"` after a synset's `|` gloss),
    with WordNet's `` `word' `` quotes unquoted, the first letter capitalised, at least `min_words` words,
    deduplicated, in file order."""
    sentences, seen = [], set()
    for path in sorted(glob.glob(pattern)):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(" ") or "|" not in line:
                    continue  # licence header
                for quoted in re.findall(r'"([^"]+)"', line.split("|", 1)[1]):
                    sentence = " ".join(re.sub(r"`([^`']*)'", r"\1", quoted).split())
                    if len(sentence.split()) < min_words:
                        continue
                    sentence = sentence[0].upper() + sentence[1:]
                    if sentence not in seen:
                        seen.add(sentence)
                        sentences.append(sentence)
    return sentences


def corpus_sentences(text_file: str | os.PathLike | None = None, limit: int | None = None, seed: int = 0) -> list[str]:
    """Sentences for the corpus (see the module docstring); shuffled with `seed` (WordNet / built-in) and cut to
    `limit`."""
    if text_file is not None:
        lines = Path(text_file).read_text(encoding="utf-8").splitlines()
        sentences = [" ".join(line.split()) for line in lines if line.strip()]
        if not sentences:
            raise ValueError(f"{text_file} holds no non-empty lines.")
        return sentences[:limit] if limit else sentences
    sentences = wordnet_sentences()
    if not sentences:
        from ..tiny import english_sentences

        sentences = [s for s in english_sentences() if s.strip() and "Assistant" not in s]
    order = np.random.default_rng(seed).permutation(len(sentences))
    sentences = [sentences[i] for i in order]
    return sentences[:limit] if limit else sentences


_SYNTHESIZERS: dict[tuple, list] = {}


def _synthesizers(specs: tuple) -> list:
    """The backends of `specs`, loaded once per process (a forked worker loads its own: ONNX sessions do not fork)."""
    from .tts import get_synthesizers

    key = (os.getpid(), specs)
    if key not in _SYNTHESIZERS:
        _SYNTHESIZERS[key] = get_synthesizers(list(specs))
    return _SYNTHESIZERS[key]


def make_corpus(output: str | os.PathLike, text_file: str | os.PathLike | None = None, voices=DEFAULT_VOICES,
                limit: int | None = 100, seed: int = 0, num_proc: int | None = None, overwrite: bool = False):  # fmt: skip
    """Synthesises the corpus and saves it to `output`; returns the `datasets.Dataset`."""
    import datasets

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a whole number of sentences, at least 1 (or None for all), got {limit!r}.")
    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; remove it or pass overwrite=True / --overwrite.")
    specs = [v for v in voices.split(",")] if isinstance(voices, str) else list(voices)
    specs = [v.strip() for v in specs if v.strip()] if all(isinstance(v, str) for v in specs) else specs
    _synthesizers(tuple(specs))  # fail early on a bad spec
    texts = corpus_sentences(text_file, limit, seed)
    base = datasets.Dataset.from_dict({"id": [f"{i:06d}" for i in range(len(texts))], "text": texts})

    def speak(batch, indices):
        synthesizers = _synthesizers(tuple(specs))  # loaded once per process (Piper voices take a second)
        out = {"audio": [], "tts_voice": [], "voice": []}
        for text, index in zip(batch["text"], indices):
            synthesizer = synthesizers[index % len(synthesizers)]
            waveform, rate, name = synthesizer.synthesize(text)
            out["audio"].append({"array": waveform, "sampling_rate": rate})
            out["tts_voice"].append(name)
            out["voice"].append(synthesizer.speaker)
        return out

    features = datasets.Features({"id": datasets.Value("string"), "text": datasets.Value("string"),
                                  "audio": datasets.Audio(), "tts_voice": datasets.Value("string"),
                                  "voice": datasets.Value("string")})  # fmt: skip
    corpus = base.map(speak, batched=True, batch_size=8, with_indices=True, features=features,
                      num_proc=num_proc if num_proc and num_proc > 1 else None, desc="make-corpus")  # fmt: skip
    tmp = output.with_name(output.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    corpus.save_to_disk(str(tmp))
    if output.exists():
        shutil.rmtree(output)
    os.replace(tmp, output)
    print(f"[deepomni] make-corpus: {len(corpus)} sentences spoken by {', '.join(map(str, specs))} → {output}")
    return datasets.load_from_disk(str(output))


__all__ = ["DEFAULT_VOICES", "corpus_sentences", "make_corpus", "wordnet_sentences"]

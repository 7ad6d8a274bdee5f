# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The SNAC codec source, planned as DeepOmni's `codec_model` (the weights as `DeepOmniCodecModel` holds them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ...modeling.modeling_deepomni_codec import DeepOmniCodecModel
from .layout import CODEC_PREFIX
from .writing import PlannedTensor, check_shape


def load_codec_source(folder: str | os.PathLike) -> DeepOmniCodecModel:
    """The codec of a conversion: a folder in the `snac` package's format (`config.json` with `snac.SNAC`'s keyword
    arguments + `pytorch_model.bin`), or a `DeepOmniCodecModel` folder (`save_pretrained`, as `deepomni train-codec`
    writes it; `model_type` `deepomni_codec` in its `config.json`)."""
    folder = Path(os.fspath(folder))
    config_path = folder / "config.json"
    if config_path.is_file() and json.loads(config_path.read_text()).get("model_type") == "deepomni_codec":
        return DeepOmniCodecModel.from_pretrained(folder)
    return DeepOmniCodecModel.from_snac_checkpoint(folder)  # weights_only torch.load; ~80 MB


def plan_codec(codec: DeepOmniCodecModel, expected: dict[str, tuple], dtype: torch.dtype | None) -> list[PlannedTensor]:
    state_dict = codec.state_dict()
    targets = {k for k in expected if k.startswith(CODEC_PREFIX)}
    if missing := sorted(targets - {CODEC_PREFIX + k for k in state_dict}):
        raise ValueError(f"The SNAC checkpoint lacks {missing[:5]}.")
    plan = []
    for key, tensor in state_dict.items():
        target = CODEC_PREFIX + key
        if target not in expected:
            raise ValueError(f"The SNAC checkpoint holds `{key}`, which DeepOmni's codec does not have.")
        check_shape("SNAC codec", target, key, tensor.shape, expected[target])
        plan.append(PlannedTensor(target, expected[target], lambda tensor=tensor: tensor.detach(), dtype))
    return plan

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Put another codec into an existing DeepOmni checkpoint, and write a checkpoint in another float precision.

A DeepOmni checkpoint speaks the codes of its codec: its audio embedding rows and heads were trained on exactly what
that codec's encoder and quantizer produce. A codec whose decoder was fine-tuned afterwards (`deepomni train-codec
--init-from OLD --freeze-codes`) turns the same codes into better audio, so it can replace the old one without
retraining the model — but only if it really assigns the same codes. `replace_codec` checks that (both codecs encode a
seeded probe signal; a single differing code refuses the swap unless `allow_new_codes=True`) and rewrites only the
`codec_model.*` tensors; every other file of the checkpoint is copied as it is. The output is written to a temporary
folder and renamed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .layout import CODEC_PREFIX
from .snac import load_codec_source
from .writing import as_dtype, atomic_output_dir, check_output_is_not_a_source


WEIGHTS_NAME = "model.safetensors"
PROBE_SECONDS = 4.0


@dataclass
class CodecSwapResult:
    output_dir: Path
    codec_tensors: int
    codes_checked: int  # codes compared on the probe signal (0 when the check was skipped)
    codes_differing: int
    notes: list[str] = field(default_factory=list)


def probe_signal(sampling_rate: int, seconds: float = PROBE_SECONDS, seed: int = 0) -> torch.Tensor:
    """A seeded speech-like test signal `[1, 1, samples]`: harmonic tones with moving pitch, syllable envelopes and a
    little noise (any input works — identical encoders and quantizers give identical codes on every input — but a
    signal near speech exercises the codes that speech uses)."""
    generator = torch.Generator().manual_seed(seed)
    time = torch.arange(int(seconds * sampling_rate)) / sampling_rate
    pitch = 110 + 60 * torch.sin(2 * torch.pi * 0.7 * time)
    phase = 2 * torch.pi * torch.cumsum(pitch, 0) / sampling_rate
    tone = sum(torch.sin(k * phase) / k for k in range(1, 8))
    envelope = torch.sin(2 * torch.pi * 3.0 * time).clamp(min=0)
    signal = 0.3 * tone * envelope + 0.01 * torch.randn(time.shape, generator=generator)
    return signal.clamp(-1, 1)[None, None].float()


def _read_codec_config(checkpoint: Path) -> dict:
    config = json.loads((checkpoint / "config.json").read_text())
    if "codec_config" not in config:
        raise ValueError(f"{checkpoint} is not a DeepOmni checkpoint (its config.json has no codec_config).")
    return config


def replace_codec(
    checkpoint: str | os.PathLike,
    codec: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    dtype: str | torch.dtype | None = None,
    allow_new_codes: bool = False,
    overwrite: bool = False,
) -> CodecSwapResult:
    """Writes `checkpoint` with the codec of `codec` (a `DeepOmniCodecModel` or snac folder) to `output_dir`.

    Args:
        checkpoint: a DeepOmni checkpoint folder with one `model.safetensors`.
        codec: the new codec. Its architecture must equal the checkpoint's codec config.
        output_dir: the folder to create.
        dtype: cast every floating tensor of the output to this dtype (e.g. `float16` to ship a checkpoint at half
            size); `config.json` keeps its dtype, so the model loads in the precision it was trained in.
        allow_new_codes: swap even when the new codec assigns other codes (the model will then speak garbage until
            it is trained on the new codes).
        overwrite: replace an existing `output_dir`.
    """
    checkpoint = Path(os.fspath(checkpoint))
    config = _read_codec_config(checkpoint)
    weights = checkpoint / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{checkpoint} has no {WEIGHTS_NAME} (sharded checkpoints are not supported here).")
    check_output_is_not_a_source(output_dir, {"checkpoint": checkpoint, "codec": Path(os.fspath(codec))})
    cast = as_dtype(dtype)

    from ...modeling.configuration_deepomni_codec import DeepOmniCodecConfig
    from ...modeling.modeling_deepomni_codec import DeepOmniCodecModel

    new_codec = load_codec_source(codec).float().eval()
    expected = DeepOmniCodecConfig(**config["codec_config"])
    fields = [name for name in DeepOmniCodecConfig.__annotations__ if name != "model_type"]  # the codec's own fields
    architecture = [name for name in fields if getattr(expected, name, None) != getattr(new_codec.config, name, None)]
    if architecture:
        raise ValueError(f"The new codec's architecture differs from the checkpoint's codec in {architecture}: it "
                         "cannot replace it.")  # fmt: skip

    with safe_open(weights, framework="pt") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        metadata = handle.metadata()
    old_state = {k[len(CODEC_PREFIX):]: v.float() for k, v in tensors.items() if k.startswith(CODEC_PREFIX)}
    new_state = new_codec.state_dict()
    if set(old_state) != set(new_state):
        raise ValueError(f"The new codec's tensors do not match the checkpoint's codec_model.* tensors "
                         f"({len(new_state)} vs {len(old_state)}).")  # fmt: skip

    notes, checked, differing = [], 0, 0
    old_codec = DeepOmniCodecModel(new_codec.config)
    old_codec.load_state_dict(old_state)
    old_codec.eval()
    probe = probe_signal(new_codec.config.sampling_rate)
    with torch.no_grad():
        for old_codes, new_codes in zip(old_codec.encode(probe), new_codec.encode(probe)):
            checked += old_codes.numel()
            differing += int((old_codes != new_codes).sum())
    if differing and not allow_new_codes:
        raise ValueError(f"The new codec assigns other codes than the checkpoint's ({differing} of {checked} probe "
                         "codes differ), so the model would speak garbage through it. Fine-tune the decoder only "
                         "(deepomni train-codec --init-from OLD --freeze-codes), or retrain the model on the new "
                         "codes; --allow-new-codes swaps anyway.")  # fmt: skip
    if differing:
        notes.append(f"{differing} of {checked} probe codes differ: the model must be retrained on the new codes")

    for name, tensor in new_state.items():
        tensors[CODEC_PREFIX + name] = tensor.detach().to(tensors[CODEC_PREFIX + name].dtype).contiguous()
    if cast is not None:
        tensors = {k: v.to(cast) if v.is_floating_point() else v for k, v in tensors.items()}
        notes.append(f"weights stored as {str(cast).removeprefix('torch.')}; config.json keeps its dtype")

    with atomic_output_dir(output_dir, overwrite=overwrite) as temp:
        for item in checkpoint.iterdir():
            if item.name == WEIGHTS_NAME or item.name.startswith("."):
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, temp / item.name)
        save_file(tensors, temp / WEIGHTS_NAME, metadata=metadata or {"format": "pt"})
    return CodecSwapResult(Path(os.fspath(output_dir)), len(new_state), checked, differing, notes)


__all__ = ["CodecSwapResult", "probe_signal", "replace_codec"]

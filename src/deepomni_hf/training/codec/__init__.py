# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Codec training (`deepomni train-codec`): a trainer for the SNAC codec DeepOmni speaks through.

- `trainer`: the run (config, loop, checkpoints, resume); `data`: speech sources and reproducible crops;
- `quantization`: VQ losses around snac's quantizer and the codebook monitor (usage, dead codes);
- `losses`: multi-resolution mel loss; `discriminators`: the optional adversarial stage;
- `snake`: a fused Snake activation; `evaluation`: ASR-judge WER and friends; `export`: snac format, card, curve.
"""

from .quantization import CodebookMonitor, quantize_with_losses
from .snake import FusedSnake1d, fuse_snake, fused_snake
from .trainer import CODEC_PRESETS, CodecTrainingConfig, CodecTrainingModule, load_codec, train_codec


__all__ = [
    "CODEC_PRESETS",
    "CodebookMonitor",
    "CodecTrainingConfig",
    "CodecTrainingModule",
    "FusedSnake1d",
    "fuse_snake",
    "fused_snake",
    "load_codec",
    "quantize_with_losses",
    "train_codec",
]

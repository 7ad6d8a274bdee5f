# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Reconstruction losses of codec training: multi-resolution log-mel L1 (DAC's spectral loss) and waveform L1."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn


# DAC's scales: window length -> mel bands. The shortest windows resolve transients, the longest pitch harmonics.
DEFAULT_MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
DEFAULT_MEL_BANDS = (5, 10, 20, 40, 80, 160, 320)


class MultiResolutionMelLoss(nn.Module):
    """Mean over scales of `L1(log10(max(mel(x), eps)), log10(max(mel(y), eps)))`, magnitude mel spectrograms with
    a Hann window and a hop of a quarter window. Scales whose window is longer than twice the input are skipped (their
    centred frames would be mostly padding)."""

    def __init__(self, sampling_rate: int = 24000, windows=DEFAULT_MEL_WINDOWS, bands=DEFAULT_MEL_BANDS,
                 clamp_eps: float = 1e-5):  # fmt: skip
        super().__init__()
        import torchaudio

        if len(windows) != len(bands) or not windows:
            raise ValueError(f"Need one mel band count per window, got windows {windows} and bands {bands}.")
        self.clamp_eps = clamp_eps
        with warnings.catch_warnings():  # a few low mel bands of the shortest windows hold no FFT bin (as in DAC)
            warnings.filterwarnings("ignore", message=".*values in the filterbank.*")
            self.spectrograms = nn.ModuleList(
                torchaudio.transforms.MelSpectrogram(sample_rate=sampling_rate, n_fft=window, win_length=window,
                                                     hop_length=window // 4, n_mels=mels, power=1.0, center=True,
                                                     f_min=0.0, f_max=sampling_rate / 2)  # fmt: skip
                for window, mels in zip(windows, bands)
            )

    def log_mels(self, waveform: torch.Tensor) -> list[torch.Tensor]:
        waveform = waveform.float()
        length = waveform.shape[-1]
        return [spectrogram(waveform).clamp_min(self.clamp_eps).log10() for spectrogram in self.spectrograms
                if spectrogram.n_fft // 2 < length]  # fmt: skip

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = [F.l1_loss(p, t) for p, t in zip(self.log_mels(prediction), self.log_mels(target))]
        return torch.stack(losses).mean()


__all__ = ["DEFAULT_MEL_BANDS", "DEFAULT_MEL_WINDOWS", "MultiResolutionMelLoss"]

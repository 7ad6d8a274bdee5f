# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The optional adversarial stage of codec training (for users with a GPU): HiFi-GAN's multi-period discriminator
and a multi-resolution STFT discriminator (as in DAC / EnCodec), least-squares GAN losses and feature matching."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def _features(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's activations (for feature matching), then the logits."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        features.append(x)
    features.append(post(x))
    return features


class PeriodDiscriminator(nn.Module):
    """Looks at the waveform folded into `[time / period, period]`: periodic structure (pitch) at one period."""

    def __init__(self, period: int, channels: int = 32):
        super().__init__()
        self.period = period
        widths = [1, channels, channels * 4, channels * 16, channels * 32, channels * 32]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(widths[i], widths[i + 1], (5, 1), (3 if i < 4 else 1, 1), padding=(2, 0)))
            for i in range(5)
        )
        self.post = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, waveform: torch.Tensor) -> list[torch.Tensor]:
        length = waveform.shape[-1]
        x = F.pad(waveform, (0, (-length) % self.period), mode="reflect")
        return _features(self.convs, self.post, x.reshape(x.shape[0], 1, -1, self.period))


class STFTDiscriminator(nn.Module):
    """Looks at the complex spectrogram (real and imaginary parts as two channels) of one STFT resolution."""

    def __init__(self, n_fft: int, channels: int = 32):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(2, channels, (3, 9), padding=(1, 4))),
            weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(2, 4), dilation=(2, 1))),
            weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(4, 4), dilation=(4, 1))),
            weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))),
        ])  # fmt: skip
        self.post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, waveform: torch.Tensor) -> list[torch.Tensor]:
        # Zero padding at the edges (not reflection), so segments shorter than a window still work.
        spectrum = torch.stft(waveform.squeeze(1).float(), self.n_fft, self.n_fft // 4, window=self.window,
                              pad_mode="constant", return_complex=True)  # fmt: skip
        x = torch.stack([spectrum.real, spectrum.imag], dim=1).transpose(2, 3)  # [batch, 2, time, freq]
        return _features(self.convs, self.post, x)


class CodecDiscriminator(nn.Module):
    """All sub-discriminators; `forward` returns one feature list (last entry: the logits) per sub-discriminator."""

    def __init__(self, periods=(2, 3, 5, 7, 11), n_ffts=(2048, 1024, 512), channels: int = 32):
        super().__init__()
        self.discriminators = nn.ModuleList(
            [PeriodDiscriminator(period, channels) for period in periods]
            + [STFTDiscriminator(n_fft, channels) for n_fft in n_ffts]
        )

    def forward(self, waveform: torch.Tensor) -> list[list[torch.Tensor]]:
        return [discriminator(waveform) for discriminator in self.discriminators]


def discriminator_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Least-squares GAN: real logits towards 1, fake towards 0 (`fake` computed on detached audio)."""
    return sum(((r[-1] - 1) ** 2).mean() + (f[-1] ** 2).mean() for r, f in zip(real, fake))


def generator_losses(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial, feature matching): fake logits towards 1; L1 between the real and fake features of every layer."""
    adversarial = sum(((f[-1] - 1) ** 2).mean() for f in fake)
    matching = sum(F.l1_loss(ff, rf.detach()) for r, f in zip(real, fake) for rf, ff in zip(r[:-1], f[:-1]))
    return adversarial, matching


__all__ = ["CodecDiscriminator", "PeriodDiscriminator", "STFTDiscriminator", "discriminator_loss", "generator_losses"]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Configuration of DeepOmni's speech codec (SNAC 24 kHz)."""

import math

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


# DeepOmni's token layout (DESIGN.md §3) gives every coarse frame 7 audio slots: 1 level-0 code, 2 level-1 codes and
# 4 level-2 codes. Only SNAC's 3-level quantizer with these strides produces that shape.
SUPPORTED_VQ_STRIDES = [4, 2, 1]

# The keyword arguments of `snac.SNAC.__init__`, i.e. the keys of a `snac` checkpoint's `config.json`.
SNAC_CONFIG_KEYS = (
    "sampling_rate",
    "encoder_dim",
    "encoder_rates",
    "latent_dim",
    "decoder_dim",
    "decoder_rates",
    "attn_window_size",
    "codebook_size",
    "codebook_dim",
    "vq_strides",
    "noise",
    "depthwise",
)


@strict
class DeepOmniCodecConfig(PreTrainedConfig):
    r"""
    Configuration of [`DeepOmniCodecModel`], the SNAC neural audio codec that DeepOmni speaks with. The fields are the
    keyword arguments of `snac.SNAC` (the keys of a `snac` checkpoint's `config.json`); the defaults are those of
    [hubertsiuzdak/snac_24khz](https://huggingface.co/hubertsiuzdak/snac_24khz): 24 kHz mono audio, a hop of 512
    samples and three codebook levels at ~12, ~23 and ~47 Hz, i.e. 7 codes per coarse frame of 2048 samples.

    sampling_rate (`int`, *optional*, defaults to 24000):
        Sampling rate (Hz) of the waveforms the codec encodes and decodes.
    encoder_dim (`int`, *optional*, defaults to 48):
        Channels after the encoder's input convolution; every encoder block doubles them.
    encoder_rates (`list[int]`, *optional*, defaults to `[2, 4, 8, 8]`):
        Downsampling factor of each encoder block. Their product is the hop length (512 samples per latent step).
    latent_dim (`int`, *optional*):
        Channels of the latent the quantizer sees. `None` (as in the 24 kHz checkpoint) means what the encoder
        produces, `encoder_dim * 2 ** len(encoder_rates)` (768); any other value is rejected.
    decoder_dim (`int`, *optional*, defaults to 1024):
        Channels of the decoder's first block; every decoder block halves them.
    decoder_rates (`list[int]`, *optional*, defaults to `[8, 8, 4, 2]`):
        Upsampling factor of each decoder block. Their product must equal the hop length.
    attn_window_size (`int`, *optional*):
        Window of the local self-attention layers SNAC puts after the encoder and before the decoder blocks.
        `None` (the 24 kHz checkpoint) means no attention. When set, the encoder input is padded to a multiple of
        `hop_length * lcm(vq_strides[0], attn_window_size)` samples.
    codebook_size (`int`, *optional*, defaults to 4096):
        Number of codes in each codebook level; codes are `0 .. codebook_size - 1`.
    codebook_dim (`int`, *optional*, defaults to 8):
        Dimension of the (factorised, L2-normalised) codebook vectors.
    vq_strides (`list[int]`, *optional*, defaults to `[4, 2, 1]`):
        Temporal stride (in latent steps) of each residual quantizer level, coarse to fine. DeepOmni requires
        exactly `[4, 2, 1]`: 1 + 2 + 4 = 7 codes per coarse frame, one per audio slot of its token layout.
    noise (`bool`, *optional*, defaults to `True`):
        Whether the decoder blocks inject learned-scale Gaussian noise (SNAC's `NoiseBlock`). Decoding is then random
        unless a `torch.Generator` is passed to [`DeepOmniCodecModel.decode`].
    depthwise (`bool`, *optional*, defaults to `True`):
        Whether the encoder and decoder use depthwise (grouped) convolutions.

    Example:

    ```python
    >>> from deepomni_hf import DeepOmniCodecConfig, DeepOmniCodecModel

    >>> # A configuration shaped like hubertsiuzdak/snac_24khz, and a randomly initialised codec built from it
    >>> configuration = DeepOmniCodecConfig()
    >>> model = DeepOmniCodecModel(configuration)
    >>> configuration.samples_per_frame, configuration.codes_per_frame
    (2048, 7)
    ```"""

    model_type = "deepomni_codec"

    sampling_rate: int = 24000
    encoder_dim: int = 48
    encoder_rates: list[int] | tuple[int, ...] = (2, 4, 8, 8)
    latent_dim: int | None = None
    decoder_dim: int = 1024
    decoder_rates: list[int] | tuple[int, ...] = (8, 8, 4, 2)
    attn_window_size: int | None = None
    codebook_size: int = 4096
    codebook_dim: int = 8
    vq_strides: list[int] | tuple[int, ...] = (4, 2, 1)
    noise: bool = True
    depthwise: bool = True

    def __post_init__(self, **kwargs):
        # Lists, as in a `snac` config.json, so that a config survives a JSON round trip unchanged.
        self.encoder_rates = list(self.encoder_rates)
        self.decoder_rates = list(self.decoder_rates)
        self.vq_strides = list(self.vq_strides)
        super().__post_init__(**kwargs)

    @property
    def hop_length(self) -> int:
        """Waveform samples per latent step (the product of `encoder_rates`): 512 at 24 kHz."""
        return math.prod(self.encoder_rates)

    @property
    def encoder_output_dim(self) -> int:
        """Channels of the encoder output, the latent the quantizer sees: 768 at 24 kHz."""
        return self.encoder_dim * 2 ** len(self.encoder_rates)

    @property
    def codes_per_frame(self) -> int:
        """Codes per coarse frame over all levels (1 + 2 + 4 = 7): the audio slots of DeepOmni's token layout."""
        return sum(self.vq_strides[0] // stride for stride in self.vq_strides)

    @property
    def samples_per_frame(self) -> int:
        """Waveform samples per coarse frame, `hop_length * vq_strides[0]`: 2048 at 24 kHz (~85.3 ms)."""
        return self.hop_length * self.vq_strides[0]

    @property
    def frame_rate(self) -> float:
        """Coarse frames per second of audio: 11.71875 at 24 kHz."""
        return self.sampling_rate / self.samples_per_frame

    @property
    def padding_multiple(self) -> int:
        """The encoder's input is right-padded with zeros to a multiple of this many samples (as `snac` does):
        `hop_length * lcm(vq_strides[0], attn_window_size or 1)`, i.e. one coarse frame (2048) at 24 kHz."""
        return self.hop_length * math.lcm(self.vq_strides[0], self.attn_window_size or 1)

    def to_snac_kwargs(self) -> dict:
        """The keyword arguments of `snac.SNAC` (and the content of a `snac` checkpoint's `config.json`)."""
        return {key: getattr(self, key) for key in SNAC_CONFIG_KEYS}

    def validate_architecture(self):
        """Part of `@strict`-powered validation. Checks that SNAC can be built and fits DeepOmni's token layout."""
        if list(self.vq_strides) != SUPPORTED_VQ_STRIDES:
            raise ValueError(
                f"`vq_strides` must be {SUPPORTED_VQ_STRIDES}, got {list(self.vq_strides)}. DeepOmni's token layout "
                "needs exactly 3 codebook levels with strides [4, 2, 1], i.e. 1 + 2 + 4 = 7 codes per coarse frame "
                "(one per audio slot); SNAC models with other strides (such as the 32 and 44 kHz music models, "
                "[8, 4, 2, 1]) do not fit it. Use hubertsiuzdak/snac_24khz or a codec with the same strides."
            )
        for name in ("sampling_rate", "encoder_dim", "decoder_dim", "codebook_size", "codebook_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {getattr(self, name)}.")
        for name in ("encoder_rates", "decoder_rates"):
            rates = getattr(self, name)
            if len(rates) == 0 or any(rate < 1 for rate in rates):
                raise ValueError(f"`{name}` must be a non-empty list of positive integers, got {list(rates)}.")
        if math.prod(self.decoder_rates) != self.hop_length:
            raise ValueError(
                f"The decoder must upsample by the factor the encoder downsamples by: the product of `decoder_rates` "
                f"{list(self.decoder_rates)} is {math.prod(self.decoder_rates)}, the product of `encoder_rates` "
                f"{list(self.encoder_rates)} is {self.hop_length}."
            )
        if self.latent_dim is not None and self.latent_dim != self.encoder_output_dim:
            raise ValueError(
                f"`latent_dim` ({self.latent_dim}) must be None or the encoder's output width, encoder_dim * "
                f"2 ** len(encoder_rates) = {self.encoder_output_dim}: SNAC feeds the encoder output to the quantizer "
                "without a projection."
            )
        if self.decoder_dim % 2 ** len(self.decoder_rates) != 0:
            raise ValueError(
                f"`decoder_dim` ({self.decoder_dim}) must be divisible by 2 ** len(decoder_rates) = "
                f"{2 ** len(self.decoder_rates)}: every decoder block halves the channels."
            )
        if self.attn_window_size is not None:
            if self.attn_window_size < 1:
                raise ValueError(
                    f"`attn_window_size` must be None or a positive integer, got {self.attn_window_size}."
                )
            # snac's LocalMHA splits the channels into heads of 64.
            for name, width in (("encoder output", self.encoder_output_dim), ("decoder_dim", self.decoder_dim)):
                if width % 64 != 0:
                    raise ValueError(
                        f"With `attn_window_size` set, the {name} width ({width}) must be a multiple of 64 (SNAC's "
                        "attention heads have 64 channels); set `attn_window_size=None` to build the codec without "
                        "attention."
                    )


__all__ = ["DeepOmniCodecConfig"]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""DeepOmni's speech codec: SNAC (24 kHz) as a transformers `PreTrainedModel`.

The network is the `snac` package's own encoder, quantizer and decoder modules, so the weights keep `snac`'s
state-dict names (`encoder.*`, `quantizer.*`, `decoder.*`) and results match `snac.SNAC` on the same weights. What this
file adds: codes shaped `[batch, frames, 7]` in DeepOmni's slot order, input checks, reproducible decoder noise,
safetensors `save_pretrained` / `from_pretrained`, a loader for `snac` checkpoints, and the pieces of streaming decoding
(position-consistent noise, the decoder's exact receptive field, windowed decoding; see `streaming_codec.py`).
"""

import contextlib
import contextvars
import inspect
import json
import math
import operator
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


with warnings.catch_warnings():
    # snac scripts its Snake activation with `torch.jit.script`, which torch now flags on every import.
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from snac import SNAC
    from snac.attention import LocalMHA, SinusoidalEmbeddings
    from snac.layers import Decoder, DecoderBlock, Encoder, NoiseBlock, ResidualUnit, Snake1d
    from snac.vq import ResidualVectorQuantize
from torch.nn.utils import parametrize
from transformers import initialization as init
from transformers.modeling_utils import PreTrainedAudioTokenizerBase
from transformers.utils import ModelOutput

from .configuration_deepomni_codec import DeepOmniCodecConfig


SNAC_CONFIG_NAME = "config.json"
SNAC_WEIGHTS_NAME = "pytorch_model.bin"

# The noise source `decode(..., generator= | noise_seed=)` installs for the duration of the call: a `torch.Generator`
# (sequential draws) or a `_PositionalNoise`. A context variable rather than module state keeps concurrent decodes
# (threads, asyncio tasks) from seeing each other's noise.
_noise_source: contextvars.ContextVar["torch.Generator | _PositionalNoise | None"] = contextvars.ContextVar(
    "deepomni_codec_noise_source", default=None
)

# Positional noise (`decode(..., noise_seed=)`) is made in chunks of this many positions; changing it changes the noise.
NOISE_CHUNK_SIZE = 4096
_MASK64 = (1 << 64) - 1


def _splitmix64(value: int) -> int:
    """SplitMix64's output function: a fixed, well-mixing bijection of 64-bit integers."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def positional_noise_chunk_seed(noise_seed: int, block_index: int, chunk_index: int) -> int:
    """Seed of the `torch.Generator` that draws chunk `chunk_index` (positions `chunk_index * NOISE_CHUNK_SIZE ...`)
    of noise block `block_index`'s noise sequence for `noise_seed`: SplitMix64 folded over the three integers."""
    mixed = _splitmix64(noise_seed & _MASK64)
    mixed = _splitmix64(mixed ^ block_index)
    return _splitmix64(mixed ^ chunk_index)


def positional_noise(noise_seed: int, block_index: int, start: int, length: int) -> torch.FloatTensor:
    """Positions `[start, start + length)` of noise block `block_index`'s noise sequence for `noise_seed`.

    The sequence is standard normal float32 noise, made in chunks of `NOISE_CHUNK_SIZE` positions: chunk `c` is
    `torch.randn(NOISE_CHUNK_SIZE, generator=torch.Generator().manual_seed(chunk_seed))` on CPU, with
    `chunk_seed = positional_noise_chunk_seed(noise_seed, block_index, c)`. Any slice therefore costs
    `O(length + NOISE_CHUNK_SIZE)`, whatever `start`, and is the same slice of the same sequence whichever window asks
    for it. (torch's CPU generator keeps 32 bits of a seed, so two chunks share noise with probability ~2^-32 per
    pair: negligible for speech lengths.)
    """
    if length <= 0:
        return torch.zeros(0)
    first_chunk, last_chunk = start // NOISE_CHUNK_SIZE, (start + length - 1) // NOISE_CHUNK_SIZE
    chunks = [
        torch.randn(
            NOISE_CHUNK_SIZE,
            generator=torch.Generator().manual_seed(positional_noise_chunk_seed(noise_seed, block_index, chunk)),
        )
        for chunk in range(first_chunk, last_chunk + 1)
    ]
    offset = start - first_chunk * NOISE_CHUNK_SIZE
    return torch.cat(chunks)[offset : offset + length]


def _normalize_noise_seed(noise_seed, batch_size: int | None = None) -> int | tuple[int, ...]:
    """An int, or one int per batch row; rejects anything else (floats, bools, a wrong number of seeds)."""
    if isinstance(noise_seed, torch.Tensor):
        noise_seed = noise_seed.tolist()
    if isinstance(noise_seed, Sequence) and not isinstance(noise_seed, (str, bytes)):
        seeds = tuple(_normalize_noise_seed(seed) for seed in noise_seed)
        if batch_size is not None and len(seeds) != batch_size:
            raise ValueError(
                f"`noise_seed` holds {len(seeds)} seeds but the batch has {batch_size} rows: pass one int (the same "
                "noise for every row) or one seed per row."
            )
        return seeds
    if isinstance(noise_seed, bool):
        raise TypeError("`noise_seed` must be an int (or one int per batch row), got a bool.")
    try:
        return operator.index(noise_seed)
    except TypeError:
        raise TypeError(
            f"`noise_seed` must be an int (or one int per batch row), got {type(noise_seed).__name__}."
        ) from None


@dataclass(frozen=True)
class _PositionalNoise:
    """Noise as a function of (seed, noise block, absolute position): what `decode(..., noise_seed=)` installs.

    `latent_offset` is the absolute latent step (coarse frame * 4) of the decoder input's first position; noise block
    `b` runs at `upsampling[b]` positions per latent step, so its first position is `latent_offset * upsampling[b]`.
    """

    noise_seed: int | tuple[int, ...]
    latent_offset: int = 0

    def noise(self, block_index: int, upsampling: int, batch_size: int, length: int) -> torch.FloatTensor:
        start = self.latent_offset * upsampling
        if isinstance(self.noise_seed, int):  # one sequence for all rows: a row decodes alike alone or in a batch
            return positional_noise(self.noise_seed, block_index, start, length).expand(batch_size, 1, length)
        if len(self.noise_seed) != batch_size:
            raise ValueError(f"{len(self.noise_seed)} noise seeds for a batch of {batch_size} rows.")
        return torch.stack([positional_noise(seed, block_index, start, length) for seed in self.noise_seed])[:, None]


@contextlib.contextmanager
def _noise_context(source):
    token = _noise_source.set(source)
    try:
        yield
    finally:
        _noise_source.reset(token)


@dataclass
class DeepOmniCodecOutput(ModelOutput):
    r"""
    audio_codes (`torch.LongTensor` of shape `(batch_size, frames, 7)`):
        Codes of every coarse frame in DeepOmni's slot order: level 0, then the 2 level-1 codes, then the 4 level-2
        codes. Values are raw codebook indices `0 .. codebook_size - 1`.
    audio_values (`torch.FloatTensor` of shape `(batch_size, 1, samples)`):
        Reconstructed waveform, trimmed to the input length.
    """

    audio_codes: torch.LongTensor | None = None
    audio_values: torch.FloatTensor | None = None


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _edge_reach(module: nn.Module, left: int, right: int) -> tuple[int, int]:
    """How far (in positions at `module`'s output resolution) the effect of an artificial window edge reaches.

    `left` / `right`: how many positions next to the window's left / right edge are already wrong (or read something
    past the edge) at `module`'s input. Returns the same for its output. Every layer keeps positions aligned (a
    stride-1 convolution keeps the length, an upsampling by `s` maps position `p` to `s * p ...`), which is checked.
    """
    if isinstance(module, nn.Sequential):
        for layer in module:
            left, right = _edge_reach(layer, left, right)
        return left, right
    if isinstance(module, (DecoderBlock, ResidualUnit)):
        # ResidualUnit adds its input back: the identity path reaches less far than the convolutions.
        return _edge_reach(module.block, left, right)
    if isinstance(module, nn.ConvTranspose1d):
        (stride,), (kernel,), (dilation,) = module.stride, module.kernel_size, module.dilation
        (padding,), (output_padding,) = module.padding, module.output_padding
        span = (kernel - 1) * dilation + 1
        if span - 2 * padding + output_padding != stride:
            raise NotImplementedError(f"{module} does not upsample its input exactly {stride}-fold.")
        # Output n is column n + padding of the uncropped output, which input m reaches for n + padding in
        # [m * stride, m * stride + span). It is right iff every input it reads is.
        reach = span - stride - padding
        return max(0, stride * left + reach), max(0, stride * right + reach + output_padding)
    if isinstance(module, nn.Conv1d):
        (stride,), (kernel,), (dilation,) = module.stride, module.kernel_size, module.dilation
        padding = module.padding[0] if isinstance(module.padding, tuple) else None
        if stride != 1 or padding is None or 2 * padding != (kernel - 1) * dilation:
            raise NotImplementedError(f"{module} is not a length-preserving convolution.")
        return left + padding, right + padding
    if isinstance(module, LocalMHA):
        # Attention mixes whole windows (aligned to the window edge): a wrong position spoils its window.
        window = module.window_size
        return _ceil_div(left, window) * window, _ceil_div(right, window) * window
    if isinstance(module, (Snake1d, NoiseBlock, nn.Tanh, nn.Identity)):
        return left, right  # position-wise (NoiseBlock: with positional noise)
    raise NotImplementedError(f"Cannot work out the receptive field of {type(module).__name__}.")


class DeepOmniCodecNoiseBlock(NoiseBlock):
    """SNAC's `NoiseBlock`, drawing its noise from the source that `decode` installed: a `torch.Generator`
    (`generator=`), positional noise (`noise_seed=`), or else torch's global RNG exactly as `snac`.

    `block_index` numbers the noise blocks of the decoder from 0; `upsampling` is this block's positions per latent
    step (the product of the decoder rates up to and including its block). Neither is a parameter or buffer.
    """

    def __init__(self, dim: int, block_index: int = 0, upsampling: int = 1):
        super().__init__(dim)
        self.block_index = block_index
        self.upsampling = upsampling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        source = _noise_source.get()
        if source is None:
            return super().forward(x)  # snac's own draw from the global RNG
        batch_size, _, length = x.shape
        if isinstance(source, _PositionalNoise):
            noise = source.noise(self.block_index, self.upsampling, batch_size, length)
        else:
            # Drawn on the generator's device, then moved: a CPU generator gives the same noise on any model device.
            noise = torch.randn((batch_size, 1, length), generator=source, device=source.device, dtype=x.dtype)
        return x + noise.to(device=x.device, dtype=x.dtype) * self.linear(x)


class DeepOmniCodecPreTrainedModel(PreTrainedAudioTokenizerBase):
    config: DeepOmniCodecConfig
    base_model_prefix = "codec"
    main_input_name = "waveform"
    _no_split_modules = ["EncoderBlock", "DecoderBlock"]

    # snac's optional local attention has its own kernel: an attention setting meant for DeepOmni's backbone is accepted
    # and ignored here, so it can travel through a composite `from_pretrained(attn_implementation=...)`.
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    @classmethod
    def _can_set_experts_implementation(cls) -> bool:
        # No experts here: inside DeepOmni, an `experts_implementation` meant for the backbone is a no-op for the codec.
        return True

    @torch.no_grad()
    def _init_weights(self, module):
        # Every snac convolution is weight-normed: its weight lives in a `ParametrizationList` as
        # (original0 = g, original1 = v). Initialise v like torch's default conv init and g = ||v|| (per output
        # channel), which is what `weight_norm` computes when it wraps a freshly built convolution.
        if isinstance(module, parametrize.ParametrizationList) and hasattr(module, "original1"):
            direction, magnitude = module.original1, module.original0
            init.kaiming_uniform_(direction, a=math.sqrt(5))
            norm_dims = tuple(range(1, direction.dim()))
            init.copy_(magnitude, torch.linalg.vector_norm(direction, dim=norm_dims, keepdim=True))
        elif isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            if not parametrize.is_parametrized(module, "weight"):
                init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight)  # torch's default, as in snac's codebooks
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, Snake1d):
            init.ones_(module.alpha)
        elif isinstance(module, SinusoidalEmbeddings):
            # Rotary tables of snac's local attention; `scale` is a non-persistent buffer, so it is never loaded.
            dim = 2 * module.inv_freq.shape[0]
            positions = torch.arange(0, dim, 2, dtype=torch.float32, device=module.inv_freq.device)
            init.copy_(module.inv_freq, 1.0 / (10000 ** (positions / dim)))
            init.copy_(module.scale, (positions + 0.4 * dim) / (1.4 * dim))


class DeepOmniCodecModel(DeepOmniCodecPreTrainedModel):
    """SNAC neural audio codec (24 kHz speech model by default) with DeepOmni's code layout.

    `encode` turns a mono 24 kHz waveform `[batch, 1, samples]` into codes `[batch, frames, 7]` (one coarse frame =
    2048 samples, ~85.3 ms); `decode` turns codes back into a waveform `[batch, 1, frames * 2048]`. Both agree with
    `snac.SNAC` on the same weights. Load the published weights with
    `DeepOmniCodecModel.from_snac_checkpoint("hubertsiuzdak/snac_24khz")`, then `save_pretrained` / `from_pretrained`
    as with any transformers model.
    """

    def __init__(self, config: DeepOmniCodecConfig):
        super().__init__(config)
        self.encoder = Encoder(
            config.encoder_dim,
            config.encoder_rates,
            depthwise=config.depthwise,
            attn_window_size=config.attn_window_size,
        )
        self.quantizer = ResidualVectorQuantize(
            input_dim=config.encoder_output_dim,
            codebook_size=config.codebook_size,
            codebook_dim=config.codebook_dim,
            vq_strides=config.vq_strides,
        )
        self.decoder = Decoder(
            config.encoder_output_dim,
            config.decoder_dim,
            config.decoder_rates,
            config.noise,
            depthwise=config.depthwise,
            attn_window_size=config.attn_window_size,
        )
        # Same place in the module tree (so the same state-dict keys), but noise that can follow a generator or be a
        # function of the absolute position (`noise_seed`).
        upsampling, block_index = 1, 0
        for block in self.decoder.model:
            if isinstance(block, DecoderBlock):
                upsampling *= block.block[1].stride[0]  # Snake1d, then the upsampling ConvTranspose1d
                for index, layer in enumerate(block.block):
                    if isinstance(layer, NoiseBlock):
                        block.block[index] = DeepOmniCodecNoiseBlock(layer.linear.in_channels, block_index, upsampling)
                        block_index += 1
        self.post_init()

    def num_frames(self, num_samples: int) -> int:
        """Coarse frames `encode` returns for a waveform of `num_samples` samples (the input is right-padded with
        zeros to a multiple of `config.padding_multiple`): `ceil(num_samples / 2048)` at 24 kHz."""
        padded = math.ceil(num_samples / self.config.padding_multiple) * self.config.padding_multiple
        return padded // self.config.samples_per_frame

    def levels_to_frames(self, levels: list[torch.Tensor]) -> torch.LongTensor:
        """SNAC's per-level codes (`[batch, frames * vq_strides[0] // stride]` each, coarse first) →
        `[batch, frames, 7]` with, for frame f: `level0[f], level1[2f], level1[2f+1], level2[4f .. 4f+3]`."""
        batch_size, num_frames = levels[0].shape
        return torch.cat([level.reshape(batch_size, num_frames, -1) for level in levels], dim=-1)

    def frames_to_levels(self, codes: torch.LongTensor) -> list[torch.LongTensor]:
        """Inverse of `levels_to_frames`: `[batch, frames, 7]` → SNAC's list of per-level codes."""
        codes_per_level = [self.config.vq_strides[0] // stride for stride in self.config.vq_strides]
        return [level.reshape(codes.shape[0], -1) for level in codes.split(codes_per_level, dim=-1)]

    def _check_waveform(self, waveform: torch.Tensor, sampling_rate: int | None) -> torch.Tensor:
        expected_rate = self.config.sampling_rate
        if sampling_rate is not None and sampling_rate != expected_rate:
            raise ValueError(
                f"The waveform is sampled at {sampling_rate} Hz but the codec works at {expected_rate} Hz: resample "
                f"to {expected_rate} Hz first, e.g. `torchaudio.functional.resample(waveform, {sampling_rate}, "
                f"{expected_rate})`."
            )
        if not isinstance(waveform, torch.Tensor):
            raise TypeError(f"`waveform` must be a torch.Tensor of shape [batch, 1, samples], got {type(waveform)}.")
        if waveform.dim() != 3:
            hint = {
                1: "for a single clip use `waveform[None, None]`",
                2: "for a [batch, samples] tensor use `waveform.unsqueeze(1)`",
            }.get(waveform.dim(), "")
            raise ValueError(
                f"`waveform` must have shape [batch, 1, samples], got {tuple(waveform.shape)}"
                + (f"; {hint}." if hint else ".")
            )
        if waveform.shape[1] != 1:
            raise ValueError(
                f"The codec is mono but `waveform` has {waveform.shape[1]} channels (shape {tuple(waveform.shape)}): "
                "downmix to one channel first, e.g. `waveform.mean(dim=1, keepdim=True)`."
            )
        if not waveform.is_floating_point():
            raise ValueError(
                f"`waveform` must be floating point in [-1, 1], got dtype {waveform.dtype}: convert integer PCM "
                "first, e.g. `waveform.float() / 32768` for int16."
            )
        if waveform.shape[-1] == 0:
            raise ValueError("`waveform` is empty (0 samples): there is nothing to encode.")
        if not torch.isfinite(waveform).all():
            raise ValueError("`waveform` contains NaN or infinite values: clean or drop this audio before encoding.")
        return waveform.to(device=self.device, dtype=self.dtype)

    def _pad(self, waveform: torch.Tensor) -> torch.Tensor:
        # As snac's `SNAC.preprocess`: zeros on the right up to a multiple of `padding_multiple`.
        length = waveform.shape[-1]
        right_pad = math.ceil(length / self.config.padding_multiple) * self.config.padding_multiple - length
        return nn.functional.pad(waveform, (0, right_pad))

    @torch.no_grad()
    def encode(self, waveform: torch.Tensor, sampling_rate: int | None = None) -> torch.LongTensor:
        """Encode a mono waveform into codes.

        Args:
            waveform (`torch.FloatTensor` of shape `(batch_size, 1, samples)`):
                Audio at `config.sampling_rate` (24 kHz), values in [-1, 1]; it is moved to the model's device and
                dtype. It is right-padded with zeros to a whole
                number of frames (`config.padding_multiple` samples, 2048 at 24 kHz), exactly as `snac` does, so a
                clip of `n` samples gives `ceil(n / 2048)` frames and the last frame's tail encodes silence.
            sampling_rate (`int`, *optional*):
                Sampling rate of `waveform`; when given, it must equal `config.sampling_rate`.

        Returns:
            `torch.LongTensor` of shape `(batch_size, frames, 7)`: per frame, the level-0 code, the 2 level-1 codes and
            the 4 level-2 codes, each in `0 .. codebook_size - 1`.
        """
        waveform = self._check_waveform(waveform, sampling_rate)
        latents = self.encoder(self._pad(waveform))
        _, levels = self.quantizer(latents)
        return self.levels_to_frames(levels)

    def _check_codes(self, codes: torch.Tensor) -> torch.LongTensor:
        codes_per_frame = self.config.codes_per_frame
        if not isinstance(codes, torch.Tensor):
            raise TypeError(f"`codes` must be a torch.LongTensor of shape [batch, frames, 7], got {type(codes)}.")
        if codes.dim() != 3 or codes.shape[-1] != codes_per_frame:
            raise ValueError(
                f"`codes` must have shape [batch, frames, {codes_per_frame}] (one coarse frame per row: 1 level-0, 2 "
                f"level-1 and 4 level-2 codes), got {tuple(codes.shape)}. For snac's list of per-level codes, use "
                "`model.levels_to_frames(levels)` first."
            )
        if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
            raise ValueError(f"`codes` must be an integer tensor, got dtype {codes.dtype}.")
        if codes.shape[1] == 0:
            raise ValueError("`codes` has 0 frames: there is nothing to decode.")
        low, high = codes.min().item(), codes.max().item()
        if low < 0 or high >= self.config.codebook_size:
            raise ValueError(
                f"`codes` must be raw codebook indices in [0, {self.config.codebook_size - 1}], got values in "
                f"[{low}, {high}]. Token ids from DeepOmni's `input_ids` carry a per-slot offset and special tokens "
                "(EOA, PAD_A, ...): subtract the offset and drop the specials before decoding."
            )
        return codes.long()

    def _noise_source_for(self, generator, noise_seed, latent_offset: int, batch_size: int):
        if generator is not None and noise_seed is not None:
            raise ValueError(
                "Pass `generator` (sequential noise) or `noise_seed` (positional noise, for streaming), not both."
            )
        if generator is not None:
            return generator
        if noise_seed is not None:
            return _PositionalNoise(_normalize_noise_seed(noise_seed, batch_size), latent_offset)
        return None

    def decode(
        self,
        codes: torch.LongTensor,
        generator: torch.Generator | None = None,
        noise_seed: int | Sequence[int] | None = None,
        frame_offset: int = 0,
    ) -> torch.FloatTensor:
        """Decode codes into a waveform.

        Args:
            codes (`torch.LongTensor` of shape `(batch_size, frames, 7)`):
                Raw codes in DeepOmni's slot order (see `encode`), values in `0 .. codebook_size - 1`.
            generator (`torch.Generator`, *optional*):
                Source of the decoder's noise (`config.noise=True`): with the same generator state, decoding is
                reproducible; a CPU generator gives the same noise on any device. Without one (and without
                `noise_seed`), the noise comes from torch's global RNG, exactly as in `snac` (so `torch.manual_seed(s)`
                before `snac.SNAC.decode` and `generator=torch.Generator().manual_seed(s)` here give the same audio on
                CPU). Generator noise is drawn in call order, so it is not consistent between windows of a stream.
            noise_seed (`int` or one `int` per batch row, *optional*):
                Positional noise, for streaming: the noise that noise block `b` adds at absolute position `p` (at that
                block's time resolution) is element `p` of one standard-normal sequence determined by
                `(noise_seed, b)` alone (see `positional_noise`). Decoding is then a deterministic function of the
                codes and the seed, and a window of frames decoded with `frame_offset` set gets exactly the noise the
                full decode uses at those positions. One int gives every row the same noise sequence (a row decodes
                alike alone or in a batch); a list gives row `i` the sequence of `noise_seed[i]`. Not the same noise
                as `generator=` or snac's global-RNG draw. Ignored when `config.noise` is False.
            frame_offset (`int`, *optional*, defaults to 0):
                Absolute index of `codes[:, 0]` in a longer stream; only moves the positional noise (`noise_seed`).
                The convolutions still see `codes` alone, so the first and last `streaming_context_frames()` frames of
                a window differ from the full decode: use `decode_window` or `StreamingCodecDecoder` for exact pieces.

        Returns:
            `torch.FloatTensor` of shape `(batch_size, 1, frames * samples_per_frame)`: 24 kHz audio in [-1, 1]. It
            covers the padded input of `encode`; trim it to the original length if needed.
        """
        codes = self._check_codes(codes)
        frame_offset = self._check_offset(frame_offset, "frame_offset")
        source = self._noise_source_for(generator, noise_seed, frame_offset * self.config.vq_strides[0], len(codes))
        latents = self.quantizer.from_codes(self.frames_to_levels(codes.to(self.device)))
        with _noise_context(source):
            return self.decoder(latents)

    @staticmethod
    def _check_offset(value, name: str) -> int:
        if isinstance(value, bool):
            raise TypeError(f"`{name}` must be an int, got a bool.")
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"`{name}` must be an int, got {type(value).__name__}.") from None
        if value < 0:
            raise ValueError(f"`{name}` must be >= 0, got {value}.")
        return value

    # --- streaming ---------------------------------------------------------------------------------------------------

    def streaming_context_samples(self) -> tuple[int, int]:
        """Exact reach of the decoder's artificial window edges, in output samples: `(left, right)`.

        When the decoder runs on a window of latent steps cut out of a longer sequence, its convolutions read zeros past
        the cut instead of the real neighbours. Output sample `s` of the window is exactly the full decode's if it lies
        at least `left` samples after an artificial left edge and `right` samples before an artificial right edge (a
        window edge that is the sequence's own start or end is no artificial edge). Computed analytically from the
        decoder's modules (kernel sizes, dilations, paddings, strides; attention windows round a reach up to whole
        windows, for windows aligned to them), by propagating, layer by layer, how many positions next to each edge
        read anything past it. For the 24 kHz model: `(4757, 4757)`.
        """
        cached = getattr(self, "_streaming_reach", None)
        if cached is None:
            cached = self._streaming_reach = _edge_reach(self.decoder.model, 0, 0)
        return cached

    def streaming_context_frames(self) -> tuple[int, int]:
        """Context frames `(left, right)` that make a window decode exact on its central frames.

        Decoding frames `[start - left, end + right)` (clipped to the sequence) with `noise_seed` and
        `frame_offset=start - left` gives exactly the full decode's audio for frames `[start, end)`. It is
        `ceil(streaming_context_samples() / samples_per_frame)`, `(3, 3)` for the 24 kHz model (whose reach is 4757
        samples, 2.3 frames, each side): frame `f` can be played once frame `f + 3` exists. With decoder attention
        (`attn_window_size`, not the 24 kHz model) windows must also start and end on attention windows;
        `decode_window` and `StreamingCodecDecoder` add that rounding, which these numbers include as a worst case.
        """
        left, right = self.streaming_context_samples()
        align = self._attention_alignment() - 1  # worst-case rounding, in latent steps
        hop, frame = self.config.hop_length, self.config.samples_per_frame
        return (
            math.ceil((math.ceil(left / hop) + align) * hop / frame),
            math.ceil((math.ceil(right / hop) + align) * hop / frame),
        )

    def _attention_alignment(self) -> int:
        """Latent steps a decoder window must start and end on: the attention window (1 without attention)."""
        return self.config.attn_window_size or 1

    def _decode_span(
        self,
        codes: torch.LongTensor,
        sample_start: int,
        sample_end: int,
        *,
        frame_offset: int = 0,
        complete: bool = True,
        noise_seed: int | Sequence[int] | None = None,
    ) -> torch.FloatTensor:
        """Samples `[sample_start, sample_end)` (absolute) of the full decode of a stream, from the part of it in
        `codes` (checked codes of absolute frames `[frame_offset, frame_offset + frames)`); `complete` says whether
        the stream ends with `codes`. Decodes the smallest aligned window of latent steps whose artificial edges stay
        `streaming_context_samples()` away from the span, with positional noise. Raises if `codes` lacks context."""
        if self.config.noise and noise_seed is None:
            raise ValueError(
                "Windowed decoding with decoder noise (`config.noise=True`) needs `noise_seed`: only positional noise "
                "is the same in every window."
            )
        steps_per_frame, hop = self.config.vq_strides[0], self.config.hop_length
        align = self._attention_alignment()
        reach_left, reach_right = self.streaming_context_samples()
        first_step, end_step = frame_offset * steps_per_frame, (frame_offset + codes.shape[1]) * steps_per_frame
        if complete and end_step % align:
            raise ValueError(
                f"A stream of {end_step // steps_per_frame} frames ({end_step} latent steps) is not a whole number of "
                f"the decoder's attention windows ({align} latent steps): its offline decode stretches the windows, "
                "which no windowed decode can reproduce."
            )
        if not 0 <= sample_start < sample_end <= end_step * hop:
            raise ValueError(
                f"Samples [{sample_start}, {sample_end}) are not a non-empty part of the "
                f"{end_step * hop} samples the codes decode to."
            )
        # Left edge: the sequence start, or far enough before the span.
        window_start = max(0, (sample_start - reach_left) // hop // align * align)
        # Right edge: the sequence end (when the stream is complete), or far enough after the span.
        window_end = _ceil_div(_ceil_div(sample_end + reach_right, hop), align) * align
        available_end = end_step if complete else end_step // align * align
        if complete and window_end >= end_step:
            window_end = end_step
        if window_start < first_step or window_end > available_end:
            raise ValueError(
                f"Samples [{sample_start}, {sample_end}) need the codes of latent steps [{window_start}, {window_end}) "
                f"but frames [{frame_offset}, {frame_offset + codes.shape[1]}) hold latent steps [{first_step}, "
                f"{end_step}){'' if complete else ' of an unfinished stream'}: the decoder's receptive field reaches "
                f"{reach_left} / {reach_right} samples left / right (`streaming_context_samples()`)."
            )
        first_frame, end_frame = window_start // steps_per_frame, _ceil_div(window_end, steps_per_frame)
        window_codes = codes[:, first_frame - frame_offset : end_frame - frame_offset].to(self.device)
        latents = self.quantizer.from_codes(self.frames_to_levels(window_codes))
        skip = first_frame * steps_per_frame
        latents = latents[..., window_start - skip : window_end - skip]
        source = self._noise_source_for(None, noise_seed, window_start, len(codes)) if self.config.noise else None
        with _noise_context(source):
            audio = self.decoder(latents)
        return audio[..., sample_start - window_start * hop : sample_end - window_start * hop]

    def decode_window(
        self,
        codes: torch.LongTensor,
        start: int,
        end: int,
        noise_seed: int | Sequence[int] | None = None,
        *,
        complete: bool = True,
    ) -> torch.FloatTensor:
        """Frames `[start, end)` of `decode(codes, noise_seed=noise_seed)`, decoding only a window around them.

        The window reaches `streaming_context_frames()` frames (3 + 3 at 24 kHz; a bit less in latent steps) past the
        span on each side, clipped to the sequence, and its cut edges are thrown away, so the result equals the
        full decode's frames `[start, end)` up to float rounding (measured: at most ~1e-6 absolute on CPU).

        Args:
            codes (`torch.LongTensor` of shape `(batch_size, frames, 7)`):
                The codes of the stream, from its first frame.
            start, end (`int`):
                The frames to return, `0 <= start < end <= frames`.
            noise_seed (`int` or one `int` per batch row, *optional*):
                Positional noise seed (see `decode`); required when `config.noise` is True.
            complete (`bool`, *optional*, defaults to `True`):
                Whether the stream ends with `codes`. If False, more frames will follow, so `end` must leave
                `streaming_context_frames()[1]` frames of right context in `codes`.

        Returns:
            `torch.FloatTensor` of shape `(batch_size, 1, (end - start) * samples_per_frame)`.
        """
        codes = self._check_codes(codes)
        start, end = self._check_offset(start, "start"), self._check_offset(end, "end")
        if not start < end <= codes.shape[1]:
            raise ValueError(f"Need 0 <= start < end <= {codes.shape[1]} (frames in `codes`), got [{start}, {end}).")
        frame = self.config.samples_per_frame
        return self._decode_span(codes, start * frame, end * frame, complete=complete, noise_seed=noise_seed)

    def streaming_decoder(self, chunk_frames: int = 1, noise_seed: int | Sequence[int] | None = None):
        """A `StreamingCodecDecoder` over this model: push codes as they are generated, get final PCM chunks."""
        from .streaming_codec import StreamingCodecDecoder

        return StreamingCodecDecoder(self, chunk_frames=chunk_frames, noise_seed=noise_seed)

    def forward(
        self,
        waveform: torch.Tensor,
        sampling_rate: int | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
        noise_seed: int | Sequence[int] | None = None,
    ) -> DeepOmniCodecOutput | tuple:
        """Encode and reconstruct `waveform` (`[batch, 1, samples]`), as `snac.SNAC.forward` does: the decoder reads
        the quantizer's straight-through latents (so gradients reach the encoder) and the output is trimmed to the
        input length. See `encode` and `decode` for the arguments."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        waveform = self._check_waveform(waveform, sampling_rate)
        length = waveform.shape[-1]
        latents, levels = self.quantizer(self.encoder(self._pad(waveform)))
        with _noise_context(self._noise_source_for(generator, noise_seed, 0, len(waveform))):
            audio_values = self.decoder(latents)[..., :length]
        audio_codes = self.levels_to_frames(levels)
        if not return_dict:
            return (audio_codes, audio_values)
        return DeepOmniCodecOutput(audio_codes=audio_codes, audio_values=audio_values)

    @classmethod
    def from_snac_checkpoint(cls, path_or_repo_id: str | os.PathLike, **hub_kwargs) -> "DeepOmniCodecModel":
        """Load a checkpoint in the `snac` package's own format: a `config.json` holding `snac.SNAC`'s keyword
        arguments and a `pytorch_model.bin` state dict (the layout of `hubertsiuzdak/snac_24khz`).

        Args:
            path_or_repo_id (`str` or `os.PathLike`):
                A local folder, or a Hugging Face Hub repo id such as `"hubertsiuzdak/snac_24khz"`.
            hub_kwargs:
                Passed to `huggingface_hub.hf_hub_download` when reading from the Hub (`revision`, `cache_dir`,
                `token`, `local_files_only`, ...).

        Returns:
            A `DeepOmniCodecModel` in eval mode holding the checkpoint's weights.
        """
        path_or_repo_id = os.fspath(path_or_repo_id)
        if os.path.isdir(path_or_repo_id):
            paths = {}
            for filename in (SNAC_CONFIG_NAME, SNAC_WEIGHTS_NAME):
                paths[filename] = os.path.join(path_or_repo_id, filename)
                if not os.path.isfile(paths[filename]):
                    raise FileNotFoundError(
                        f"`{filename}` is missing from the snac checkpoint folder {path_or_repo_id!r}: a snac "
                        f"checkpoint holds `{SNAC_CONFIG_NAME}` (the snac.SNAC keyword arguments) and "
                        f"`{SNAC_WEIGHTS_NAME}` (its state dict). For a folder written by `save_pretrained`, use "
                        "`DeepOmniCodecModel.from_pretrained`."
                    )
        else:
            from huggingface_hub import hf_hub_download

            try:
                paths = {
                    filename: hf_hub_download(path_or_repo_id, filename, **hub_kwargs)
                    for filename in (SNAC_CONFIG_NAME, SNAC_WEIGHTS_NAME)
                }
            except Exception as error:
                raise OSError(
                    f"{path_or_repo_id!r} is not a local folder, and `{SNAC_CONFIG_NAME}` / `{SNAC_WEIGHTS_NAME}` "
                    "could not be fetched from the Hugging Face Hub repo of that name "
                    f"({type(error).__name__}: {error})."
                ) from error

        with open(paths[SNAC_CONFIG_NAME], encoding="utf-8") as file:
            snac_kwargs = json.load(file)
        # A key the file leaves out takes snac.SNAC's own default (as `snac` would build it), not the 24 kHz one.
        snac_defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(SNAC.__init__).parameters.items()
            if name != "self"
        }
        if unknown := sorted(set(snac_kwargs) - set(snac_defaults)):
            raise ValueError(
                f"{paths[SNAC_CONFIG_NAME]} is not a snac config: keys {unknown} are not snac.SNAC arguments "
                f"({sorted(snac_defaults)})."
            )
        model = cls(DeepOmniCodecConfig(**{**snac_defaults, **snac_kwargs}))
        state_dict = torch.load(paths[SNAC_WEIGHTS_NAME], map_location="cpu", weights_only=True)
        # nn.Module loading (not transformers'): weight_norm's load hook also accepts older snac checkpoints that
        # store `weight_g` / `weight_v` instead of the parametrization's `original0` / `original1`.
        model.load_state_dict(state_dict, strict=True)
        return model.eval()


__all__ = ["DeepOmniCodecModel", "DeepOmniCodecOutput", "DeepOmniCodecPreTrainedModel"]

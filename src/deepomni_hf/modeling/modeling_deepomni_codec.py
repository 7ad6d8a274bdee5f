# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""DeepOmni's speech codec: SNAC (24 kHz) as a transformers `PreTrainedModel`.

The network is the `snac` package's own encoder, quantizer and decoder modules, so the weights keep `snac`'s
state-dict names (`encoder.*`, `quantizer.*`, `decoder.*`) and results match `snac.SNAC` on the same weights. What this
file adds: codes shaped `[batch, frames, 7]` in DeepOmni's slot order, input checks, reproducible decoder noise,
safetensors `save_pretrained` / `from_pretrained`, and a loader for `snac` checkpoints.
"""

import contextvars
import inspect
import json
import math
import os
from dataclasses import dataclass

import warnings

import torch
from torch import nn


with warnings.catch_warnings():
    # snac scripts its Snake activation with `torch.jit.script`, which torch now flags on every import.
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from snac import SNAC
    from snac.attention import SinusoidalEmbeddings
    from snac.layers import Decoder, DecoderBlock, Encoder, NoiseBlock, Snake1d
    from snac.vq import ResidualVectorQuantize
from torch.nn.utils import parametrize
from transformers import initialization as init
from transformers.modeling_utils import PreTrainedAudioTokenizerBase
from transformers.utils import ModelOutput

from .configuration_deepomni_codec import DeepOmniCodecConfig


SNAC_CONFIG_NAME = "config.json"
SNAC_WEIGHTS_NAME = "pytorch_model.bin"

# The generator `decode(..., generator=)` installs for the duration of the call. A context variable rather than module
# state keeps concurrent decodes (threads, asyncio tasks) from seeing each other's generator.
_noise_generator: contextvars.ContextVar[torch.Generator | None] = contextvars.ContextVar(
    "deepomni_codec_noise_generator", default=None
)


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


class DeepOmniCodecNoiseBlock(NoiseBlock):
    """SNAC's `NoiseBlock`, drawing its noise from the generator that `decode(..., generator=)` installed, if any."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = _noise_generator.get()
        if generator is None:
            return super().forward(x)  # snac's own draw from the global RNG
        batch_size, _, length = x.shape
        # Drawn on the generator's device, then moved: a CPU generator gives the same noise on any model device.
        noise = torch.randn((batch_size, 1, length), generator=generator, device=generator.device, dtype=x.dtype)
        return x + noise.to(x.device) * self.linear(x)


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
        # Same place in the module tree (so the same state-dict keys), but noise that can follow a generator.
        for block in self.decoder.model:
            if isinstance(block, DecoderBlock):
                for index, layer in enumerate(block.block):
                    if isinstance(layer, NoiseBlock):
                        block.block[index] = DeepOmniCodecNoiseBlock(layer.linear.in_channels)
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

    def decode(self, codes: torch.LongTensor, generator: torch.Generator | None = None) -> torch.FloatTensor:
        """Decode codes into a waveform.

        Args:
            codes (`torch.LongTensor` of shape `(batch_size, frames, 7)`):
                Raw codes in DeepOmni's slot order (see `encode`), values in `0 .. codebook_size - 1`.
            generator (`torch.Generator`, *optional*):
                Source of the decoder's noise (`config.noise=True`): with the same generator state, decoding is
                reproducible; a CPU generator gives the same noise on any device. Without one, the noise comes from
                torch's global RNG, exactly as in `snac` (so `torch.manual_seed(s)` before `snac.SNAC.decode` and
                `generator=torch.Generator().manual_seed(s)` here give the same audio on CPU).

        Returns:
            `torch.FloatTensor` of shape `(batch_size, 1, frames * samples_per_frame)`: 24 kHz audio in [-1, 1]. It
            covers the padded input of `encode`; trim it to the original length if needed.
        """
        levels = self.frames_to_levels(self._check_codes(codes).to(self.device))
        latents = self.quantizer.from_codes(levels)
        token = _noise_generator.set(generator)
        try:
            return self.decoder(latents)
        finally:
            _noise_generator.reset(token)

    def forward(
        self,
        waveform: torch.Tensor,
        sampling_rate: int | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> DeepOmniCodecOutput | tuple:
        """Encode and reconstruct `waveform` (`[batch, 1, samples]`), as `snac.SNAC.forward` does: the decoder reads
        the quantizer's straight-through latents (so gradients reach the encoder) and the output is trimmed to the
        input length. See `encode` and `decode` for the arguments."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        waveform = self._check_waveform(waveform, sampling_rate)
        length = waveform.shape[-1]
        latents, levels = self.quantizer(self.encoder(self._pad(waveform)))
        token = _noise_generator.set(generator)
        try:
            audio_values = self.decoder(latents)[..., :length]
        finally:
            _noise_generator.reset(token)
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

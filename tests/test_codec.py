# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""DeepOmniCodecModel: parity with the `snac` package, checkpoint formats, reproducible noise, input checks."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from snac import SNAC

from deepomni_hf import DeepOmniCodecConfig, DeepOmniCodecModel


# hubertsiuzdak/snac_24khz's config.json: the snac.SNAC keyword arguments (it has no `latent_dim`).
SNAC_24KHZ_CONFIG = {
    "sampling_rate": 24000,
    "encoder_dim": 48,
    "encoder_rates": [2, 4, 8, 8],
    "decoder_dim": 1024,
    "decoder_rates": [8, 8, 4, 2],
    "attn_window_size": None,
    "codebook_size": 4096,
    "codebook_dim": 8,
    "vq_strides": [4, 2, 1],
    "noise": True,
    "depthwise": True,
}

# Tiny but complete: 4096 codes (DeepOmni's layout), hop 8, so one coarse frame is 32 samples.
TINY_CONFIG = {
    "sampling_rate": 24000,
    "encoder_dim": 8,
    "encoder_rates": [2, 4],
    "decoder_dim": 32,
    "decoder_rates": [4, 2],
    "attn_window_size": None,
    "codebook_size": 4096,
    "codebook_dim": 8,
    "vq_strides": [4, 2, 1],
    "noise": True,
    "depthwise": True,
}
TINY_FRAME = 32

# With local attention (window 4): exercises snac's LocalMHA and its non-persistent rotary buffer.
TINY_ATTENTION_CONFIG = {**TINY_CONFIG, "encoder_dim": 16, "encoder_rates": [2, 2], "decoder_dim": 64,
                         "decoder_rates": [2, 2], "attn_window_size": 4}  # fmt: skip


def make_pair(snac_kwargs, seed=0):
    """A random DeepOmniCodecModel and a snac.SNAC holding the same weights, both in eval mode."""
    torch.manual_seed(seed)
    model = DeepOmniCodecModel(DeepOmniCodecConfig(**snac_kwargs)).eval()
    reference = SNAC(**snac_kwargs).eval()
    reference.load_state_dict(model.state_dict())
    return model, reference


@pytest.fixture(scope="module")
def tiny():
    return make_pair(TINY_CONFIG)


def waveform(batch_size, samples, seed=0):
    return 0.3 * torch.randn(batch_size, 1, samples, generator=torch.Generator().manual_seed(seed))


def assert_same_weights(model_a, model_b):
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    for (name, buffer_a), (_, buffer_b) in zip(model_a.named_buffers(), model_b.named_buffers()):
        assert torch.equal(buffer_a, buffer_b), name


# --- configuration ---------------------------------------------------------------------------------------------------


def test_config_defaults_are_snac_24khz():
    config = DeepOmniCodecConfig()
    assert config.model_type == "deepomni_codec"
    assert config.to_snac_kwargs() == {**SNAC_24KHZ_CONFIG, "latent_dim": None}
    assert config.hop_length == 512
    assert config.samples_per_frame == 2048
    assert config.codes_per_frame == 7
    assert config.padding_multiple == 2048
    assert config.encoder_output_dim == 768
    assert config.frame_rate == pytest.approx(24000 / 2048)


def test_config_json_round_trip(tmp_path):
    config = DeepOmniCodecConfig(**TINY_CONFIG)
    config.save_pretrained(tmp_path)
    reloaded = DeepOmniCodecConfig.from_pretrained(tmp_path)
    assert reloaded.to_snac_kwargs() == config.to_snac_kwargs() == {**TINY_CONFIG, "latent_dim": None}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"vq_strides": [8, 4, 2, 1]}, r"exactly 3 codebook levels with strides \[4, 2, 1\]"),
        ({"vq_strides": [2, 1, 1]}, r"7 codes per coarse frame"),
        ({"decoder_rates": [4, 4]}, r"decoder must upsample by the factor the encoder downsamples by"),
        ({"latent_dim": 100}, r"`latent_dim` \(100\) must be None or the encoder's output width"),
        ({"decoder_dim": 30}, r"`decoder_dim` \(30\) must be divisible"),
        ({"attn_window_size": 4}, r"must be a multiple of 64"),
        ({"codebook_size": 0}, r"`codebook_size` must be a positive integer"),
    ],
)
def test_config_rejects_unsupported_architectures(overrides, message):
    with pytest.raises(Exception, match=message):
        DeepOmniCodecConfig(**{**TINY_CONFIG, **overrides})


# --- parity with snac ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("samples", [1, TINY_FRAME - 1, TINY_FRAME, 100, 5 * TINY_FRAME, 333])
def test_encode_matches_snac(tiny, samples):
    model, reference = tiny
    audio = waveform(2, samples)
    codes = model.encode(audio)

    frames = -(-samples // TINY_FRAME)  # snac right-pads with zeros to whole frames
    assert codes.shape == (2, frames, 7) and codes.dtype == torch.long
    assert model.num_frames(samples) == frames
    with torch.no_grad():
        levels = reference.encode(audio)
    assert [level.shape[-1] for level in levels] == [frames, 2 * frames, 4 * frames]
    assert torch.equal(codes, model.levels_to_frames(levels))
    assert all(torch.equal(ours, theirs) for ours, theirs in zip(model.frames_to_levels(codes), levels))


def test_codes_slot_order(tiny):
    """Frame f holds level0[f], level1[2f], level1[2f+1], level2[4f .. 4f+3] (DESIGN.md §3)."""
    model, reference = tiny
    audio = waveform(1, 4 * TINY_FRAME)
    codes = model.encode(audio)
    with torch.no_grad():
        level0, level1, level2 = (level[0].tolist() for level in reference.encode(audio))
    for frame in range(codes.shape[1]):
        expected = [level0[frame], *level1[2 * frame : 2 * frame + 2], *level2[4 * frame : 4 * frame + 4]]
        assert codes[0, frame].tolist() == expected


def test_decode_matches_snac_bit_for_bit(tiny):
    model, reference = tiny
    codes = model.encode(waveform(2, 333))
    levels = model.frames_to_levels(codes)
    with torch.no_grad():
        torch.manual_seed(7)
        expected = reference.decode(levels)

        torch.manual_seed(7)  # no generator: the global RNG, exactly as snac
        assert torch.equal(model.decode(codes), expected)
        # A CPU generator seeded like the global RNG draws the same noise.
        decoded = model.decode(codes, generator=torch.Generator().manual_seed(7))
    assert decoded.shape == (2, 1, codes.shape[1] * TINY_FRAME)
    assert torch.equal(decoded, expected)


def test_forward_matches_snac_forward(tiny):
    model, reference = tiny
    audio = waveform(2, 333)
    with torch.no_grad():
        torch.manual_seed(3)
        expected_audio, expected_levels = reference(audio)
        output = model(audio, generator=torch.Generator().manual_seed(3))
    assert output.audio_values.shape == audio.shape
    assert torch.equal(output.audio_values, expected_audio)
    assert torch.equal(output.audio_codes, model.levels_to_frames(expected_levels))
    assert torch.equal(output.audio_codes, model.encode(audio))


def test_default_24khz_model_matches_snac():
    """The full-size snac_24khz architecture: 2048-sample frames, 19.8 M parameters, same codes as snac."""
    model, reference = make_pair(SNAC_24KHZ_CONFIG)
    assert sum(parameter.numel() for parameter in model.parameters()) == 19_842_914
    assert [model.num_frames(n) for n in (1, 2048, 2049, 24000, 120_000)] == [1, 1, 2, 12, 59]

    audio = waveform(1, 24000)
    codes = model.encode(audio, sampling_rate=24000)
    assert codes.shape == (1, 12, 7)
    with torch.no_grad():
        assert torch.equal(codes, model.levels_to_frames(reference.encode(audio)))
        torch.manual_seed(0)
        expected = reference.decode(model.frames_to_levels(codes[:, :2]))
        decoded = model.decode(codes[:, :2], generator=torch.Generator().manual_seed(0))
    assert decoded.shape == (1, 1, 2 * 2048)
    assert torch.equal(decoded, expected)


# --- decoder noise ---------------------------------------------------------------------------------------------------


def test_decode_with_generator_is_reproducible(tiny):
    model, _ = tiny
    codes = model.encode(waveform(1, 200))
    with torch.no_grad():
        first = model.decode(codes, generator=torch.Generator().manual_seed(1))
        again = model.decode(codes, generator=torch.Generator().manual_seed(1))
        other_seed = model.decode(codes, generator=torch.Generator().manual_seed(2))
    assert torch.equal(first, again)
    assert not torch.equal(first, other_seed)


def test_decode_with_generator_leaves_global_rng_alone(tiny):
    model, _ = tiny
    codes = model.encode(waveform(1, 200))
    torch.manual_seed(0)
    expected_next = torch.rand(4)
    torch.manual_seed(0)
    with torch.no_grad():
        model.decode(codes, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(4), expected_next)


def test_decode_without_noise_is_deterministic():
    model, reference = make_pair({**TINY_CONFIG, "noise": False})
    codes = model.encode(waveform(1, 200))
    with torch.no_grad():
        decoded = model.decode(codes)
        assert torch.equal(decoded, model.decode(codes))
        assert torch.equal(decoded, reference.decode(model.frames_to_levels(codes)))


# --- checkpoints -----------------------------------------------------------------------------------------------------


def write_snac_checkpoint(folder, snac_kwargs, state_dict):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as file:
        json.dump(snac_kwargs, file)
    torch.save(state_dict, os.path.join(folder, "pytorch_model.bin"))


def test_from_snac_checkpoint_round_trip(tiny, tmp_path):
    model, reference = tiny
    write_snac_checkpoint(tmp_path, TINY_CONFIG, reference.state_dict())

    loaded = DeepOmniCodecModel.from_snac_checkpoint(tmp_path)
    assert not loaded.training
    assert loaded.config.to_snac_kwargs() == {**TINY_CONFIG, "latent_dim": None}
    assert_same_weights(loaded, model)

    audio = waveform(2, 150)
    codes = loaded.encode(audio)
    with torch.no_grad():
        assert torch.equal(codes, loaded.levels_to_frames(reference.encode(audio)))
        torch.manual_seed(11)
        expected = reference.decode(reference.encode(audio))
        assert torch.equal(loaded.decode(codes, generator=torch.Generator().manual_seed(11)), expected)


def test_from_snac_checkpoint_reads_legacy_weight_norm_keys(tiny, tmp_path):
    """Older snac releases saved torch's old weight_norm (`weight_g` / `weight_v`)."""
    model, _ = tiny
    legacy_state_dict = {
        key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): value
        for key, value in model.state_dict().items()
    }
    assert any(key.endswith("weight_g") for key in legacy_state_dict)
    write_snac_checkpoint(tmp_path, TINY_CONFIG, legacy_state_dict)
    assert_same_weights(DeepOmniCodecModel.from_snac_checkpoint(tmp_path), model)


@pytest.mark.parametrize("missing", ["config.json", "pytorch_model.bin"])
def test_from_snac_checkpoint_names_the_missing_file(tiny, tmp_path, missing):
    write_snac_checkpoint(tmp_path, TINY_CONFIG, tiny[1].state_dict())
    os.remove(tmp_path / missing)
    with pytest.raises(FileNotFoundError, match=rf"`{missing}` is missing .*{tmp_path.name}"):
        DeepOmniCodecModel.from_snac_checkpoint(tmp_path)


def test_from_snac_checkpoint_rejects_a_foreign_config(tiny, tmp_path):
    write_snac_checkpoint(tmp_path, {**TINY_CONFIG, "model_type": "dac"}, tiny[1].state_dict())
    with pytest.raises(ValueError, match=r"not a snac config: keys \['model_type'\]"):
        DeepOmniCodecModel.from_snac_checkpoint(tmp_path)


def test_from_snac_checkpoint_offline_hub_id_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="not a local folder"):
        DeepOmniCodecModel.from_snac_checkpoint("someone/not-a-cached-snac", local_files_only=True)


@pytest.mark.parametrize("snac_kwargs", [TINY_CONFIG, TINY_ATTENTION_CONFIG], ids=["tiny", "tiny_attention"])
def test_save_pretrained_from_pretrained(tmp_path, snac_kwargs):
    model, _ = make_pair(snac_kwargs, seed=4)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))

    loaded, loading_info = DeepOmniCodecModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not loading_info["missing_keys"] and not loading_info["unexpected_keys"]
    assert not loading_info["mismatched_keys"]
    assert_same_weights(loaded, model)  # buffers included: attention's rotary `scale` is never saved

    codes = model.encode(waveform(2, 300))
    assert torch.equal(loaded.encode(waveform(2, 300)), codes)
    with torch.no_grad():
        expected = model.decode(codes, generator=torch.Generator().manual_seed(9))
        assert torch.equal(loaded.eval().decode(codes, generator=torch.Generator().manual_seed(9)), expected)


def test_saved_codec_loads_with_trust_remote_code_alone(tiny, tmp_path):
    """A saved codec carries its code: plain transformers loads it without `deepomni_hf` being imported."""
    model, _ = tiny
    model.save_pretrained(tmp_path)
    codes = model.encode(waveform(1, 100))
    torch.save(codes, tmp_path / "codes.pt")
    with torch.no_grad():
        torch.save(model.decode(codes, generator=torch.Generator().manual_seed(0)), tmp_path / "audio.pt")
    script = textwrap.dedent(
        f"""
        import sys, torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        assert "deepomni_hf" not in sys.modules, "deepomni_hf was imported"
        codes = torch.load({str(tmp_path / "codes.pt")!r})
        audio = model.decode(codes, generator=torch.Generator().manual_seed(0))
        assert torch.equal(audio, torch.load({str(tmp_path / "audio.pt")!r}))
        """
    )
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


# --- input checks ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audio", "kwargs", "message"),
    [
        (torch.zeros(1, 2, 100), {}, r"mono but `waveform` has 2 channels .*downmix"),
        (torch.zeros(1, 100), {}, r"shape \[batch, 1, samples\].*unsqueeze\(1\)"),
        (torch.zeros(100), {}, r"shape \[batch, 1, samples\].*waveform\[None, None\]"),
        (torch.zeros(1, 1, 100, dtype=torch.int16), {}, r"floating point .*int16.*32768"),
        (torch.full((1, 1, 100), float("nan")), {}, r"NaN or infinite"),
        (torch.full((1, 1, 100), float("inf")), {}, r"NaN or infinite"),
        (torch.zeros(1, 1, 0), {}, r"empty \(0 samples\)"),
        (torch.zeros(1, 1, 100), {"sampling_rate": 16000}, r"16000 Hz .*resample to 24000 Hz"),
    ],
    ids=["stereo", "2d", "1d", "int16", "nan", "inf", "empty", "sampling_rate"],
)
def test_encode_rejects_bad_waveforms(tiny, audio, kwargs, message):
    model, _ = tiny
    with pytest.raises(ValueError, match=message):
        model.encode(audio, **kwargs)


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (torch.full((1, 3, 7), 4096), r"raw codebook indices in \[0, 4095\], got values in \[4096, 4096\]"),
        (torch.full((1, 3, 7), -1), r"raw codebook indices in \[0, 4095\]"),
        (torch.zeros(1, 3, 8, dtype=torch.long), r"shape \[batch, frames, 7\].*got \(1, 3, 8\)"),
        (torch.zeros(3, 7, dtype=torch.long), r"shape \[batch, frames, 7\]"),
        (torch.zeros(1, 3, 7), r"integer tensor, got dtype torch.float32"),
        (torch.zeros(1, 0, 7, dtype=torch.long), r"0 frames"),
    ],
    ids=["too_high", "negative", "last_dim_8", "2d", "float", "no_frames"],
)
def test_decode_rejects_bad_codes(tiny, codes, message):
    model, _ = tiny
    with pytest.raises(ValueError, match=message):
        model.decode(codes)

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Streaming codec decoding: positional noise, the decoder's receptive field, windowed decoding, StreamingCodecDecoder.

Tolerance: windows of different lengths make the CPU kernels round differently, so streamed / windowed audio equals the
offline decode within TOLERANCE = 1e-5 absolute (observed: at most ~1e-6), not bit for bit.
"""

import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from deepomni_hf import DeepOmniCodecConfig, DeepOmniCodecModel
from deepomni_hf.modeling.modeling_deepomni_codec import NOISE_CHUNK_SIZE, positional_noise
from deepomni_hf.modeling.streaming_codec import StreamingCodecDecoder
from deepomni_hf.pipelines.streaming import DeepOmniStreamer

from test_codec import SNAC_24KHZ_CONFIG, TINY_ATTENTION_CONFIG, TINY_CONFIG, TINY_FRAME


TOLERANCE = 1e-5


def make_model(snac_kwargs, seed=0):
    torch.manual_seed(seed)
    return DeepOmniCodecModel(DeepOmniCodecConfig(**snac_kwargs)).eval()


def random_codes(batch_size, frames, seed=0):
    return torch.randint(0, 4096, (batch_size, frames, 7), generator=torch.Generator().manual_seed(seed))


def max_diff(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def stream(model, codes, chunk_frames=1, push_frames=1, noise_seed=None):
    """Push `codes` `push_frames` at a time; return (the concatenated chunks, [(frames pushed, chunk samples)])."""
    decoder = StreamingCodecDecoder(model, chunk_frames=chunk_frames, noise_seed=noise_seed)
    chunks, log = [], []
    for start in range(0, codes.shape[1], push_frames):
        audio = decoder.push(codes[:, start : start + push_frames])
        if audio is not None:
            chunks.append(audio)
            log.append((decoder.num_frames, audio.shape[-1]))
    chunks.append(decoder.flush())
    log.append(("flush", chunks[-1].shape[-1]))
    assert decoder.num_samples_emitted == codes.shape[1] * model.config.samples_per_frame
    return torch.cat(chunks, dim=-1), log


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Many small decodes: one intra-op thread avoids thread start-up and spin costs (much faster on a busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    return make_model(TINY_CONFIG)


@pytest.fixture(scope="module")
def tiny_attention():
    return make_model(TINY_ATTENTION_CONFIG)


@pytest.fixture(scope="module")
def tiny_silent():
    return make_model({**TINY_CONFIG, "noise": False})


@pytest.fixture(scope="module")
def snac_24khz():
    """The full-size 24 kHz architecture with random weights (the receptive field depends only on the architecture)."""
    return make_model(SNAC_24KHZ_CONFIG)


# --- positional noise ------------------------------------------------------------------------------------------------


def test_positional_noise_is_a_function_of_position():
    whole = positional_noise(7, 1, 0, 3 * NOISE_CHUNK_SIZE)
    assert whole.dtype == torch.float32 and whole.shape == (3 * NOISE_CHUNK_SIZE,)
    for start, length in [(0, 1), (5, 100), (NOISE_CHUNK_SIZE - 3, 10), (NOISE_CHUNK_SIZE + 17, NOISE_CHUNK_SIZE)]:
        assert torch.equal(positional_noise(7, 1, start, length), whole[start : start + length])
    assert abs(whole.mean().item()) < 0.05 and abs(whole.std().item() - 1) < 0.05
    assert not torch.equal(positional_noise(8, 1, 0, 100), whole[:100])  # another seed
    assert not torch.equal(positional_noise(7, 2, 0, 100), whole[:100])  # another noise block
    far = positional_noise(7, 1, 10**12, 5)  # O(chunk) wherever the position
    assert far.shape == (5,) and torch.isfinite(far).all()


def test_noise_seed_decode_is_deterministic(tiny):
    codes = random_codes(2, 6)
    with torch.no_grad():
        first = tiny.decode(codes, noise_seed=3)
        assert torch.equal(first, tiny.decode(codes, noise_seed=3))
        assert max_diff(first, tiny.decode(codes, noise_seed=4)) > 1e-3
        # The noise is at absolute positions: the same codes placed later in a stream get other noise.
        assert max_diff(first, tiny.decode(codes, noise_seed=3, frame_offset=1)) > 1e-3
        # Positional noise is its own sequence, not the generator's.
        assert max_diff(first, tiny.decode(codes, generator=torch.Generator().manual_seed(3))) > 1e-3


def test_noise_seed_per_row_and_batch_invariance(tiny):
    codes = random_codes(1, 5).expand(2, -1, -1)
    with torch.no_grad():
        shared = tiny.decode(codes, noise_seed=3)  # one int: the same noise in every row
        alone = tiny.decode(codes[:1], noise_seed=3)
        per_row = tiny.decode(codes, noise_seed=[3, 4])
        per_row_alone = tiny.decode(codes[1:], noise_seed=4)
    assert max_diff(shared[0], shared[1]) <= TOLERANCE
    assert max_diff(shared[:1], alone) <= TOLERANCE
    assert max_diff(per_row[:1], alone) <= TOLERANCE and max_diff(per_row[1:], per_row_alone) <= TOLERANCE
    assert max_diff(per_row[0], per_row[1]) > 1e-3


def test_noise_seed_leaves_global_rng_alone(tiny):
    codes = random_codes(1, 4)
    torch.manual_seed(0)
    expected_next = torch.rand(4)
    torch.manual_seed(0)
    with torch.no_grad():
        tiny.decode(codes, noise_seed=5)
        tiny.decode_window(codes, 1, 3, noise_seed=5)
    assert torch.equal(torch.rand(4), expected_next)


def test_noise_seed_is_ignored_without_noise(tiny_silent):
    codes = random_codes(1, 4)
    with torch.no_grad():
        assert torch.equal(tiny_silent.decode(codes, noise_seed=1), tiny_silent.decode(codes))


# --- receptive field -------------------------------------------------------------------------------------------------


def test_context_sizes(tiny, tiny_attention, snac_24khz):
    # 24 kHz: 3 + 5 * 2 + 4 (the 8x upsampling) ... propagated through the blocks: 4757 samples, 2.3 frames.
    assert snac_24khz.streaming_context_samples() == (4757, 4757)
    assert snac_24khz.streaming_context_frames() == (3, 3)
    assert tiny.streaming_context_samples() == (149, 149)
    assert tiny.streaming_context_frames() == (5, 5)  # 149 / 32 samples per frame
    # Attention: reach rounded up to whole attention windows, plus the window alignment (4 latent steps) as worst case.
    assert tiny_attention.streaming_context_samples() == (139, 139)
    assert tiny_attention.streaming_context_frames() == (10, 10)


def test_reach_is_exact_on_24khz_model(snac_24khz):
    """Decode frames [4, 12) of 16 alone: the samples at least `reach` from the cut edges match the full decode, and
    the reach is not overstated: within its last latent step (512 samples) before it, some sample differs."""
    model = snac_24khz
    frame = model.config.samples_per_frame
    reach_left, reach_right = model.streaming_context_samples()
    codes = random_codes(1, 16, seed=1)
    with torch.no_grad():
        full = model.decode(codes, noise_seed=2)[0, 0, 4 * frame : 12 * frame]
        window = model.decode(codes[:, 4:12], noise_seed=2, frame_offset=4)[0, 0]
    diff = (window - full).abs()
    length = diff.shape[0]
    assert diff[reach_left : length - reach_right].max().item() <= TOLERANCE
    assert diff[reach_left - 512 : reach_left].max().item() > TOLERANCE
    assert diff[length - reach_right : length - reach_right + 512].max().item() > TOLERANCE


@pytest.mark.parametrize("model_name", ["tiny", "snac_24khz"])
def test_context_frames_are_sufficient_and_needed(request, model_name):
    """decode(codes[:, start - L : end + R], frame_offset=start - L) is exact on [start, end); one frame less is not."""
    model = request.getfixturevalue(model_name)
    frame = model.config.samples_per_frame
    left, right = model.streaming_context_frames()
    frames = left + right + 4
    codes = random_codes(2, frames, seed=3)
    start, end = left + 1, left + 3
    with torch.no_grad():
        full = model.decode(codes, noise_seed=11)[..., start * frame : end * frame]

        def windowed(context_left, context_right):
            first = start - context_left
            audio = model.decode(codes[:, first : end + context_right], noise_seed=11, frame_offset=first)
            return audio[..., (start - first) * frame : (end - first) * frame]

        assert max_diff(windowed(left, right), full) <= TOLERANCE
        assert max_diff(windowed(left - 1, right), full) > TOLERANCE
        assert max_diff(windowed(left, right - 1), full) > TOLERANCE


@pytest.mark.parametrize("model_name", ["tiny", "tiny_attention", "tiny_silent"])
def test_decode_window_matches_full_decode(request, model_name):
    model = request.getfixturevalue(model_name)
    frame = model.config.samples_per_frame
    codes = random_codes(2, 16, seed=4)
    with torch.no_grad():
        full = model.decode(codes, noise_seed=6)
        for start in range(16):
            for end in {start + 1, min(16, start + 3), 16}:
                window = model.decode_window(codes, start, end, noise_seed=6)
                assert max_diff(window, full[..., start * frame : end * frame]) <= TOLERANCE, (start, end)
        # An unfinished stream: a window is exact once it has its right context.
        right = model.streaming_context_frames()[1]
        prefix = codes[:, : 4 + right]
        window = model.decode_window(prefix, 2, 4, noise_seed=6, complete=False)
        assert max_diff(window, full[..., 2 * frame : 4 * frame]) <= TOLERANCE


# --- StreamingCodecDecoder -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", [1, 3, 14, 23])
@pytest.mark.parametrize("chunk_frames", [1, 2, 4])
@pytest.mark.parametrize("push_frames", [1, 3])
def test_stream_equals_offline_decode(tiny, frames, chunk_frames, push_frames):
    codes = random_codes(2, frames, seed=frames)
    with torch.no_grad():
        offline = tiny.decode(codes, noise_seed=9)
    streamed, _ = stream(tiny, codes, chunk_frames, push_frames, noise_seed=9)
    assert streamed.shape == (2, 1, frames * TINY_FRAME)
    assert max_diff(streamed, offline) <= TOLERANCE


@pytest.mark.parametrize("frames", [1, 5, 24])
@pytest.mark.parametrize("chunk_frames", [1, 3])
def test_stream_equals_offline_decode_with_attention(tiny_attention, frames, chunk_frames):
    codes = random_codes(1, frames, seed=frames)
    with torch.no_grad():
        offline = tiny_attention.decode(codes, noise_seed=9)
    streamed, _ = stream(tiny_attention, codes, chunk_frames, noise_seed=9)
    assert max_diff(streamed, offline) <= TOLERANCE


@pytest.mark.parametrize("frames", [1, 3, 14])
@pytest.mark.parametrize("chunk_frames", [1, 2, 4])
def test_stream_equals_offline_decode_without_noise(tiny_silent, frames, chunk_frames):
    codes = random_codes(2, frames, seed=frames)
    with torch.no_grad():
        offline = tiny_silent.decode(codes)
    streamed, _ = stream(tiny_silent, codes, chunk_frames)  # no seed needed
    assert max_diff(streamed, offline) <= TOLERANCE


def test_stream_emission_rule(tiny):
    """With chunk_frames=1, after n frames every sample before n * frame - reach is out: frame f's audio is complete
    once frame f + right_context has been pushed, and the first chunk comes as soon as any sample is final."""
    reach = tiny.streaming_context_samples()[1]
    right = tiny.streaming_context_frames()[1]
    decoder = StreamingCodecDecoder(tiny, chunk_frames=1, noise_seed=0)
    codes = random_codes(1, 12)
    for n in range(1, 13):
        audio = decoder.push(codes[:, n - 1 : n])
        assert decoder.num_samples_emitted == max(0, n * TINY_FRAME - reach)
        assert (audio is None) == (n * TINY_FRAME <= reach)
        if n > right:
            assert decoder.num_samples_emitted >= (n - right) * TINY_FRAME
    assert decoder.latency_frames == right


def test_stream_chunk_frames_sets_the_chunk_size(tiny):
    _, log = stream(tiny, random_codes(1, 30), chunk_frames=3, noise_seed=0)
    first, *middle, last = log
    assert first == (5, 5 * TINY_FRAME - 149)  # the first sample-complete prefix, at once
    assert all(samples == 3 * TINY_FRAME for _, samples in middle)
    assert last[0] == "flush"


def test_stream_on_24khz_model(snac_24khz):
    """The full-size model: first audio (1387 samples, 58 ms) after 3 frames, then a frame per frame; exact."""
    codes = random_codes(1, 8, seed=5)
    with torch.no_grad():
        offline = snac_24khz.decode(codes, noise_seed=1)
    streamed, log = stream(snac_24khz, codes, chunk_frames=1, noise_seed=1)
    assert log[0] == (3, 3 * 2048 - 4757)
    assert [samples for _, samples in log[1:-1]] == [2048] * 5
    assert log[-1] == ("flush", 4757)
    assert max_diff(streamed, offline) <= TOLERANCE


def test_stream_keeps_bounded_state(tiny):
    decoder = StreamingCodecDecoder(tiny, noise_seed=0)
    for index in range(60):
        decoder.push(random_codes(1, 1, seed=index))
    assert decoder.num_frames == 60
    assert decoder._codes.shape[1] <= sum(tiny.streaming_context_frames()) + 2


def test_stream_seed_defaults_to_global_rng(tiny):
    codes = random_codes(1, 7)
    torch.manual_seed(123)
    first = StreamingCodecDecoder(tiny)
    streamed = torch.cat(list(first.stream(codes.split(2, dim=1))), dim=-1)
    torch.manual_seed(123)
    assert StreamingCodecDecoder(tiny).noise_seed == first.noise_seed
    with torch.no_grad():
        assert max_diff(streamed, tiny.decode(codes, noise_seed=first.noise_seed)) <= TOLERANCE


def test_stream_reset_and_model_helper(tiny):
    codes = random_codes(1, 6)
    decoder = tiny.streaming_decoder(chunk_frames=2, noise_seed=4)
    assert isinstance(decoder, StreamingCodecDecoder) and decoder.chunk_frames == 2
    first = torch.cat(list(decoder.stream([codes])), dim=-1)
    assert decoder.finished
    with pytest.raises(RuntimeError, match="reset"):
        decoder.push(codes)
    decoder.reset(noise_seed=4)
    assert decoder.flush() is None  # nothing pushed
    decoder.reset(noise_seed=4)
    again = torch.cat(list(decoder.stream([codes[:, :2], codes[:, 2:]])), dim=-1)
    assert max_diff(again, first) <= TOLERANCE


def test_stream_accepts_empty_pushes(tiny):
    decoder = StreamingCodecDecoder(tiny, noise_seed=0)
    assert decoder.push(torch.zeros(1, 0, 7, dtype=torch.long)) is None
    assert decoder.num_frames == 0


# --- input checks ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (torch.zeros(1, 2, 8, dtype=torch.long), r"shape \[batch, frames, 7\].*got \(1, 2, 8\)"),
        (torch.zeros(1, 0, 8, dtype=torch.long), r"shape \[batch, frames, 7\]"),
        (torch.zeros(2, 7, dtype=torch.long), r"shape \[batch, frames, 7\]"),
        (torch.full((1, 2, 7), 4096), r"raw codebook indices in \[0, 4095\]"),
        (torch.full((1, 2, 7), -1), r"raw codebook indices in \[0, 4095\]"),
        (torch.zeros(1, 2, 7), r"integer tensor"),
    ],
    ids=["last_dim_8", "empty_last_dim_8", "2d", "too_high", "negative", "float"],
)
def test_push_rejects_bad_codes(tiny, frames, message):
    decoder = StreamingCodecDecoder(tiny, noise_seed=0)
    with pytest.raises(ValueError, match=message):
        decoder.push(frames)


def test_stream_rejects_misuse(tiny):
    decoder = StreamingCodecDecoder(tiny, noise_seed=0)
    decoder.push(random_codes(2, 2))
    with pytest.raises(ValueError, match="batch size 1 but this stream has 2"):
        decoder.push(random_codes(1, 1))
    decoder.flush()
    with pytest.raises(RuntimeError, match="flushed"):
        decoder.push(random_codes(2, 1))
    with pytest.raises(RuntimeError, match="flushed"):
        decoder.flush()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="chunk_frames"):
            StreamingCodecDecoder(tiny, chunk_frames=bad)
    with pytest.raises(ValueError, match="2 noise seeds for a batch of 3 rows"):
        StreamingCodecDecoder(tiny, noise_seed=[1, 2]).push(random_codes(3, 1))


def test_decode_rejects_bad_noise_arguments(tiny):
    codes = random_codes(2, 3)
    with pytest.raises(ValueError, match="not both"):
        tiny.decode(codes, generator=torch.Generator().manual_seed(0), noise_seed=0)
    with pytest.raises(TypeError, match="`noise_seed` must be an int"):
        tiny.decode(codes, noise_seed=1.5)
    with pytest.raises(ValueError, match="3 seeds but the batch has 2 rows"):
        tiny.decode(codes, noise_seed=[1, 2, 3])
    with pytest.raises(ValueError, match="`frame_offset` must be >= 0"):
        tiny.decode(codes, noise_seed=0, frame_offset=-1)


def test_decode_window_rejects_bad_arguments(tiny, tiny_attention):
    codes = random_codes(1, 12)
    with pytest.raises(ValueError, match="needs `noise_seed`"):
        tiny.decode_window(codes, 0, 2)
    with pytest.raises(ValueError, match=r"0 <= start < end <= 12"):
        tiny.decode_window(codes, 3, 3, noise_seed=0)
    with pytest.raises(ValueError, match=r"0 <= start < end <= 12"):
        tiny.decode_window(codes, 0, 13, noise_seed=0)
    with pytest.raises(ValueError, match="of an unfinished stream"):
        tiny.decode_window(codes, 8, 10, noise_seed=0, complete=False)  # frames 10 .. 14 missing
    with pytest.raises(ValueError, match=r"shape \[batch, frames, 7\]"):
        tiny.decode_window(torch.zeros(1, 4, 6, dtype=torch.long), 0, 1, noise_seed=0)
    with pytest.raises(ValueError, match=r"raw codebook indices"):
        tiny.decode_window(torch.full((1, 4, 7), 5000), 0, 1, noise_seed=0)
    # Attention (window 8 latent steps = 2 frames here): a stream must end on a whole attention window.
    odd_window = make_model({**TINY_ATTENTION_CONFIG, "attn_window_size": 8})
    with pytest.raises(ValueError, match="not a whole number of the decoder's attention windows"):
        odd_window.decode_window(random_codes(1, 5), 0, 1, noise_seed=0)


# --- checkpoints -----------------------------------------------------------------------------------------------------


def test_streaming_travels_with_saved_codec(tiny, tmp_path):
    """`streaming_codec.py` is saved with the codec: plain transformers streams without `deepomni_hf`."""
    tiny.save_pretrained(tmp_path)
    codes = random_codes(1, 9)
    torch.save(codes, tmp_path / "codes.pt")
    with torch.no_grad():
        torch.save(tiny.decode(codes, noise_seed=3), tmp_path / "audio.pt")
    script = textwrap.dedent(
        f"""
        import sys, torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        assert "deepomni_hf" not in sys.modules, "deepomni_hf was imported"
        codes = torch.load({str(tmp_path / "codes.pt")!r})
        decoder = model.streaming_decoder(chunk_frames=2, noise_seed=3)
        audio = torch.cat(list(decoder.stream(codes.split(1, dim=1))), dim=-1)
        assert (audio - torch.load({str(tmp_path / "audio.pt")!r})).abs().max() <= {TOLERANCE}
        """
    )
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("catch_up", [True, False])
def test_streamer_decodes_waiting_frames_in_one_window(tiny, catch_up):
    """`DeepOmniStreamer` with frames already queued when its consumer reads them (the codec fell behind generation):
    `catch_up` decodes them all in one window (one chunk, then the flush) instead of one window per frame. The audio
    is the same either way and equals the offline decode."""
    codes = random_codes(1, 12, seed=4)
    no_text = SimpleNamespace(decode=lambda ids, **_: "")
    streamer = DeepOmniStreamer(no_text, tiny, noise_seed=2, catch_up=catch_up)
    for frame in codes[0]:
        streamer.put_step(0, None, frame)
    streamer.end()
    chunks = [audio for _, audio in streamer]
    with torch.no_grad():
        offline = tiny.decode(codes, noise_seed=2)[0, 0].numpy()
    np.testing.assert_allclose(np.concatenate(chunks), offline, atol=TOLERANCE, rtol=0)
    reach = tiny.streaming_context_samples()[1]
    one_window_per_frame = sum(n * TINY_FRAME > reach for n in range(1, 13)) + 1  # + the flush
    assert len(chunks) == (2 if catch_up else one_window_per_frame)

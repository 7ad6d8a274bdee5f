# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`deepomni train-codec`: losses fall, a killed run resumes to the uninterrupted run's weights, the saved codec loads
in `snac.SNAC` and decodes identically, dead-code re-initialisation keeps codebooks in use, the fused Snake is snac's."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file
from snac import SNAC
from snac.layers import snake

from deepomni_hf import DeepOmniCodecConfig, DeepOmniCodecModel
from deepomni_hf.training.codec import CodebookMonitor, CodecTrainingConfig, fuse_snake, fused_snake, quantize_with_losses
from deepomni_hf.training.codec.evaluation import heard_answer, normalize_words
from deepomni_hf.training.codec.export import export_codec, save_snac_checkpoint
from deepomni_hf.training.codec.trainer import train_codec


# A small codec with DeepOmni's layout (strides [4, 2, 1]) whose steps take milliseconds: hop 8, 32-sample frames.
SMALL_CODEC = {"encoder_dim": 4, "encoder_rates": [2, 4], "decoder_dim": 32, "decoder_rates": [4, 2],
               "attn_window_size": None, "codebook_size": 64, "codebook_dim": 4}  # fmt: skip


@pytest.fixture(scope="module")
def speech_folder(tmp_path_factory):
    """Twelve 0.25 s "voiced" clips: harmonic tones with a syllable-like envelope, at varied pitches."""
    folder = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    time = np.arange(6000) / 24000
    for index in range(12):
        pitch = rng.uniform(90, 220)
        tone = sum(np.sin(2 * np.pi * pitch * k * time + rng.uniform(0, 6)) / k for k in range(1, 6))
        envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 6) * time), 0, None)
        sf.write(folder / f"clip_{index:02d}.wav", (0.2 * tone * envelope).astype(np.float32), 24000)
    return folder


def _config(output_dir, data, **overrides):
    settings = dict(output_dir=str(output_dir), data=[str(data)], preset="tiny", codec_config=SMALL_CODEC,
                    batch_size=4, segment_seconds=0.02, max_steps=12, warmup_steps=2, log_every=1,
                    dead_code_check_every=3, eval_every_minutes=None, save_every_minutes=1e9, num_threads=1)  # fmt: skip
    settings.update(overrides)
    return CodecTrainingConfig(**settings)


def _log(output_dir):
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


def test_quantize_with_losses_is_snacs_quantizer():
    torch.manual_seed(0)
    codec = DeepOmniCodecModel(DeepOmniCodecConfig(**SMALL_CODEC))
    latents = torch.randn(2, codec.config.encoder_output_dim, 16)
    expected_latents, expected_codes = codec.quantizer(latents)
    output = quantize_with_losses(codec.quantizer, latents)
    torch.testing.assert_close(output.latents, expected_latents, rtol=0, atol=0)
    for codes, expected in zip(output.codes, expected_codes):
        assert torch.equal(codes, expected)
    assert output.codebook_loss > 0 and torch.allclose(output.codebook_loss, output.commitment_loss)
    names = {name for name, _ in codec.named_parameters()}
    assert "quantizer.quantizers.0.codebook.weight" in names  # snac's names, untouched


def test_fused_snake_matches_snac():
    torch.manual_seed(0)
    small_x = torch.randn(2, 3, 7, dtype=torch.float64, requires_grad=True)  # gradcheck builds dense Jacobians
    small_alpha = (torch.rand(1, 3, 1, dtype=torch.float64) + 0.3).requires_grad_()
    assert torch.autograd.gradcheck(fused_snake, (small_x, small_alpha))
    x32 = torch.randn(3, 16, 500, requires_grad=True)
    alpha32 = (torch.rand(1, 16, 1) + 0.3).requires_grad_()
    grad = torch.randn_like(x32)
    expected = snake(x32, alpha32)
    actual = fused_snake(x32, alpha32)
    assert torch.equal(actual, expected)  # bit-identical forward
    for got, want in zip(torch.autograd.grad(actual, (x32, alpha32), grad),
                         torch.autograd.grad(expected, (x32, alpha32), grad)):  # fmt: skip
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    codec = DeepOmniCodecModel(DeepOmniCodecConfig(**SMALL_CODEC))
    keys = list(codec.state_dict())
    assert fuse_snake(codec) > 0 and list(codec.state_dict()) == keys


def test_few_steps_lower_the_loss(tmp_path, speech_folder):
    train_codec(_config(tmp_path, speech_folder, max_steps=40, learning_rate=3e-3, log_every=10))
    log = _log(tmp_path)
    assert log[-1]["mel"] < 0.8 * log[0]["mel"], [row["mel"] for row in log]


def test_killed_run_resumes_to_the_same_weights(tmp_path, speech_folder):
    straight = tmp_path / "straight"
    train_codec(_config(straight, speech_folder, save_every_steps=5))

    class Killed(Exception):
        pass

    def kill_at_step_8(step):
        if step == 8:
            raise Killed

    resumed = tmp_path / "resumed"
    with pytest.raises(Killed):
        train_codec(_config(resumed, speech_folder, save_every_steps=5), on_step_end=kill_at_step_8)
    state = torch.load(resumed / "checkpoint" / "training_state.pt", weights_only=True)
    assert state["step"] == 5  # the last checkpoint before the kill
    train_codec(_config(resumed, speech_folder, save_every_steps=5))
    expected = load_file(straight / "checkpoint" / "model.safetensors")
    actual = load_file(resumed / "checkpoint" / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    assert _log(resumed)[-1]["step"] == _log(straight)[-1]["step"] == 12


def test_saved_codec_loads_in_snac_and_decodes_identically(tmp_path):
    torch.manual_seed(0)
    codec = DeepOmniCodecModel(DeepOmniCodecConfig(**SMALL_CODEC)).eval()
    fuse_snake(codec)
    export_codec(codec, tmp_path / "final", snac_folder=tmp_path / "snac", training={"steps": 0})
    reference = SNAC.from_pretrained(str(tmp_path / "snac")).eval()
    waveform = 0.1 * torch.randn(1, 1, 320)
    ours = DeepOmniCodecModel.from_pretrained(tmp_path / "final").eval()
    codes = ours.encode(waveform)
    snac_codes = reference.encode(waveform)
    assert all(torch.equal(a, b) for a, b in zip(ours.frames_to_levels(codes), snac_codes))
    torch.manual_seed(1)
    expected = reference.decode(snac_codes)
    actual = ours.decode(codes, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    assert "snac" in (tmp_path / "final" / "README.md").read_text()


def test_dead_code_reinit_keeps_every_level_in_use(tmp_path, speech_folder):
    """Floor: on this tiny run, every level uses at least a quarter of its 64 codes over the last 10 steps with
    re-initialisation, while without it (a check interval longer than the run) a level collapses below that."""
    floor = 16
    train_codec(_config(tmp_path / "revive", speech_folder, max_steps=30, log_every=10, learning_rate=3e-3))
    train_codec(_config(tmp_path / "plain", speech_folder, max_steps=30, log_every=10, learning_rate=3e-3,
                        dead_code_check_every=10_000))  # fmt: skip
    revived = [level["codes_used"] for level in _log(tmp_path / "revive")[-1]["usage"]]
    plain = [level["codes_used"] for level in _log(tmp_path / "plain")[-1]["usage"]]
    assert min(revived) >= floor, revived
    assert min(plain) < floor, plain


def test_codebook_monitor_window_counts_vectors():
    monitor = CodebookMonitor(num_levels=1, codebook_size=8, codebook_dim=2, window_refills=2)
    assert monitor.window == 16
    vectors = torch.ones(1, 2, 4)
    monitor.update([torch.tensor([[0, 1, 2, 3]])], [vectors])
    assert set(monitor.dead_codes(0).tolist()) == {4, 5, 6, 7}  # never used: dead at once
    for _ in range(10):
        monitor.update([torch.tensor([[0, 1, 0, 1]])], [vectors])
    # 44 vectors seen; codes 2 and 3 were last used 40 vectors ago, more than the 16-vector window
    assert set(monitor.dead_codes(0).tolist()) == {2, 3, 4, 5, 6, 7}


def test_answer_matching_normalises_numbers_and_spelling():
    assert normalize_words("One hundred forty-four.") == normalize_words("144") == ["one", "hundred", "forty", "four"]
    assert heard_answer("Brasilia.", "The capital is Brasília.")
    assert heard_answer("Grey.", "gray")
    assert not heard_answer("Twenty-one.", "twenty")


def test_cli_rejects_missing_data(tmp_path, capsys):
    from deepomni_hf.cli import main

    with pytest.raises(SystemExit, match="does not exist"):
        main(["train-codec", "--data", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "run")])


def test_source_weights_set_each_sources_share_of_the_crops(tmp_path, speech_folder):
    from deepomni_hf.training.codec.data import AudioBank

    manifest = tmp_path / "one.jsonl"
    manifest.write_text(json.dumps({"audio": str(speech_folder / "clip_00.wav"), "text": "a"}) + "\n")
    bank = AudioBank.build(tmp_path / "bank", [str(speech_folder), str(manifest)], 24000, [1.0, 1.0])
    assert np.bincount(bank.sources).tolist() == [12, 1]
    assert bank.probabilities[bank.sources == 1].sum() == pytest.approx(0.5)  # one clip gets half of the crops
    assert torch.equal(bank.batch(7, 4, 480, seed=0), AudioBank(tmp_path / "bank", [1.0, 1.0]).batch(7, 4, 480, seed=0))
    with pytest.raises(ValueError, match="2 non-negative source weights"):
        AudioBank(tmp_path / "bank", [1.0])


def test_adversarial_stage_trains_and_resumes_its_discriminator(tmp_path, speech_folder):
    config = _config(tmp_path, speech_folder, max_steps=3, adversarial=True, adversarial_start_step=1,
                     discriminator_channels=4)
    train_codec(config)
    log = _log(tmp_path)
    assert "discriminator" not in log[0] and all(np.isfinite(log[-1][k]) for k in ("adversarial", "feature_matching"))
    state = torch.load(tmp_path / "checkpoint" / "training_state.pt", weights_only=True)
    assert state["discriminator"] and state["disc_optimizer"]["state"]


def test_evaluator_scores_resynthesis_beside_the_originals(tmp_path, speech_folder):
    from deepomni_hf.training.codec.data import SpeechClip
    from deepomni_hf.training.codec.evaluation import CodecEvaluator

    class ParisJudge:  # hears "Paris" in everything
        calls = 0

        def transcribe(self, waveform, rate):
            ParisJudge.calls += 1
            return "Paris"

    clips = sorted(speech_folder.glob("*.wav"))
    heldout = [SpeechClip(str(clips[0]), "Paris is big", "h0")]
    answers = [SpeechClip(str(clips[1]), "Paris.", "a0"), SpeechClip(str(clips[2]), "Rome.", "a1")]
    codec = DeepOmniCodecModel(DeepOmniCodecConfig(**SMALL_CODEC))
    cache = tmp_path / "originals.json"
    evaluator = CodecEvaluator(heldout, answers, ParisJudge(), cache_path=cache, num_wavs=1)
    first = evaluator.evaluate(codec, tmp_path / "wavs")
    assert first["wer"] == pytest.approx(2 / 3) and first["original_wer"] == pytest.approx(2 / 3)
    assert first["answer_heard"] == 0.5 and first["answer_heard_where_original_heard"] == 1.0
    assert len(first["codes_used"]) == 3 and (tmp_path / "wavs" / "heldout_00.wav").exists()
    calls = ParisJudge.calls
    again = CodecEvaluator(heldout, answers, ParisJudge(), cache_path=cache).evaluate(codec)
    assert ParisJudge.calls - calls == 3  # originals come from the cache: only the 3 resyntheses are judged
    assert {k: again[k] for k in ("wer", "answer_heard")} == {k: first[k] for k in ("wer", "answer_heard")}


def test_bundled_domain_codec_converts_to_snac(tmp_path):
    from deepomni_hf.assets import bundled_codec_path

    codec = DeepOmniCodecModel.from_pretrained(bundled_codec_path()).eval()
    assert codec.config.codes_per_frame == 7 and codec.config.codebook_size == 4096
    save_snac_checkpoint(codec, tmp_path / "snac")
    reference = SNAC.from_pretrained(str(tmp_path / "snac")).eval()
    time = torch.arange(4096) / 24000
    waveform = (0.2 * torch.sin(2 * torch.pi * 140 * time) * torch.sin(2 * torch.pi * 3 * time))[None, None]
    codes = codec.encode(waveform)
    assert all(torch.equal(a, b) for a, b in zip(codec.frames_to_levels(codes), reference.encode(waveform)))
    torch.manual_seed(3)
    expected = reference.decode(reference.encode(waveform))
    torch.testing.assert_close(codec.decode(codes, generator=torch.Generator().manual_seed(3)), expected, rtol=0, atol=0)


def test_freeze_codes_trains_the_decoder_and_keeps_every_code(tmp_path, speech_folder):
    """`freeze_codes`: the decoder learns while the encoder and quantizer — hence the codes a language model was
    trained on — stay bit for bit what they were."""
    train_codec(_config(tmp_path / "base", speech_folder, max_steps=6))
    start = DeepOmniCodecModel.from_pretrained(tmp_path / "base" / "checkpoint").eval()
    tuned_dir = tmp_path / "tuned"
    train_codec(_config(tuned_dir, speech_folder, init_from=str(tmp_path / "base" / "checkpoint"), freeze_codes=True,
                        max_steps=30, learning_rate=3e-3, log_every=10, dead_code_check_every=1))  # fmt: skip
    tuned = DeepOmniCodecModel.from_pretrained(tuned_dir / "checkpoint").eval()
    before, after = start.state_dict(), tuned.state_dict()
    for name in before:
        if name.startswith(("encoder.", "quantizer.")):
            assert torch.equal(before[name], after[name]), name
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("decoder.")), "decoder did not move"
    waveform = torch.from_numpy(sf.read(sorted(speech_folder.glob("*.wav"))[0], dtype="float32")[0])[None, None]
    with torch.no_grad():
        for a, b in zip(start.encode(waveform), tuned.encode(waveform)):
            assert torch.equal(a, b)
    log = _log(tuned_dir)
    assert log[-1]["mel"] < log[0]["mel"], [row["mel"] for row in log]
    assert all(sum(row["revived"]) == 0 for row in log)  # re-initialising a code would change the codes


def test_freeze_codes_needs_a_codec_to_start_from(tmp_path, speech_folder):
    with pytest.raises(ValueError, match="init_from"):
        _config(tmp_path, speech_folder, freeze_codes=True)

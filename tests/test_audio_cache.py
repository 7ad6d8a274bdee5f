"""Cached Whisper outputs (`audio_encoder_outputs`) train exactly like `input_features`: same loss, same gradients."""

import datasets
import numpy as np
import pytest
import torch
from training_helpers import collate, speech_examples, spoken_qa, text_examples, tiny_model, tiny_processor

from deepomni_hf.training.data import layout_conversation
from deepomni_hf.training.audio_cache import (
    CACHE_COLUMN,
    cache_audio_encoder_outputs,
    check_audio_encoder_cache,
    save_cached_dataset,
    speech_span_frames,
)


@pytest.fixture(scope="module")
def laid_out():
    # Spoken turns of different lengths (0.2 s and 0.5 s) and text-only rows in one dataset.
    examples = speech_examples(2) + text_examples(2)
    examples.append(layout_conversation(tiny_processor(), spoken_qa(7, seconds=0.5)))
    return datasets.Dataset.from_list(examples)


def rows(dataset):
    return [dataset[i] for i in range(len(dataset))]


def test_cached_outputs_hold_the_frames_each_span_reads(laid_out):
    model = tiny_model().eval()
    cached = cache_audio_encoder_outputs(laid_out, model, batch_size=2)
    assert "input_features" not in cached.column_names
    for row in rows(cached):
        spans = speech_span_frames(np.asarray(row["input_ids"]), model.config)
        outputs = row[CACHE_COLUMN]
        if not spans:
            assert outputs is None
            continue
        assert [len(o) for o in outputs] == spans  # floor(0.2·50)+1 = 11, floor(0.5·50)+1 = 26 frames
        assert all(len(frame) == model.config.audio_config.d_model for o in outputs for frame in o)


def test_cached_path_gives_the_same_loss_and_gradients(laid_out):
    model = tiny_model()
    model.train()  # as in training: the cache must equal the pass Trainer would run
    cached = cache_audio_encoder_outputs(laid_out, model, batch_size=1)
    full, fast = collate(rows(laid_out)), collate(rows(cached))
    assert "input_features" in full and "input_features" not in fast
    assert fast[CACHE_COLUMN].shape[:2] == (3, 26)  # 3 spoken turns, padded to the longest span
    for key in ("input_ids", "labels", "attention_mask"):
        assert torch.equal(full[key], fast[key])

    def loss_and_grads(batch):
        model.zero_grad(set_to_none=True)
        loss = model(**batch, output_router_logits=True).loss
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return loss.detach(), grads

    torch.manual_seed(0)
    loss_full, grads_full = loss_and_grads(full)
    torch.manual_seed(0)
    loss_fast, grads_fast = loss_and_grads(fast)
    torch.testing.assert_close(loss_fast, loss_full, rtol=1e-6, atol=1e-6)
    assert set(grads_fast) <= set(grads_full)
    assert not any(n.startswith("model.audio_tower.") for n in grads_fast)  # Whisper skipped
    for name, grad in grads_fast.items():
        torch.testing.assert_close(grad, grads_full[name], rtol=1e-5, atol=1e-6, msg=name)


def test_cache_is_tied_to_its_whisper(laid_out, tmp_path):
    model = tiny_model()
    save_cached_dataset(cache_audio_encoder_outputs(laid_out, model), tmp_path / "cached", model)
    assert datasets.load_from_disk(str(tmp_path / "cached")).column_names[-1] == CACHE_COLUMN
    assert check_audio_encoder_cache(tmp_path / "cached", model) is True
    assert check_audio_encoder_cache(tmp_path, model) is False  # no cache there
    with pytest.raises(ValueError, match="another Whisper encoder"):
        check_audio_encoder_cache(tmp_path / "cached", tiny_model(seed=1))


def test_a_batch_cannot_mix_features_and_cached_outputs(laid_out):
    model = tiny_model()
    cached = cache_audio_encoder_outputs(laid_out, model)
    with pytest.raises(ValueError, match="mixes examples"):
        collate([laid_out[0], cached[1]])
    with pytest.raises(ValueError, match="exactly one of input_features"):
        model.model.get_audio_features()

"""`forward(labels=..., return_logits=False)` (what `DeepOmniTrainer` runs): the loss from the head rows at the targeted
positions only equals the loss over the full logits — per stream, and in its gradients."""

import torch

from training_helpers import collate, speech_examples, text_examples, tiny_model


def _loss_and_grads(model, batch, return_logits):
    model.zero_grad(set_to_none=True)
    outputs = model(**batch, return_logits=return_logits, output_router_logits=True)
    outputs.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return outputs, grads


def test_loss_at_targets_equals_the_full_logits_loss():
    model = tiny_model()
    batch = collate(speech_examples(2) + text_examples(2))  # speech slots and text targets, padded rows
    full, full_grads = _loss_and_grads(model, batch, True)
    fast, fast_grads = _loss_and_grads(model, batch, False)
    assert fast.logits is None and fast.audio_logits is None and full.logits is not None
    torch.testing.assert_close(fast.stream_losses, full.stream_losses, rtol=1e-5, atol=1e-6, equal_nan=True)
    torch.testing.assert_close(fast.loss, full.loss, rtol=1e-5, atol=1e-6)
    assert full_grads.keys() == fast_grads.keys()
    for name in full_grads:
        torch.testing.assert_close(fast_grads[name], full_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_stream_without_targets_is_left_out_of_both_losses():
    model = tiny_model()
    batch = collate(text_examples(2))  # no speech: the 7 audio slots have no target
    with torch.no_grad():
        full = model(**batch)
        fast = model(**batch, return_logits=False)
    assert torch.isnan(fast.stream_losses[:7]).all() and torch.isnan(full.stream_losses[:7]).all()
    torch.testing.assert_close(fast.loss, full.loss, rtol=1e-5, atol=1e-6)

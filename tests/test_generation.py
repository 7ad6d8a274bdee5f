"""Parallel text + speech generation: layout invariants at every step, batching, batch-parallel text, KV cache."""

import pytest
import torch

from deepomni_hf import DeepOmniForConditionalGeneration
from tiny_models import speech_span_ids, text_only_ids, tiny_config


END_LENGTH = 22  # the rigged model ends text once a row is this long, audio slots two positions later


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DeepOmniForConditionalGeneration(tiny_config()).eval()


def _prompts(config, lengths, voice="ANS_A"):
    """Left-padded prompts of different lengths; the last position carries the speaker token when `voice`."""
    width = max(lengths)
    ids = text_only_ids(config, len(lengths), width, seed=3)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, width - length :] = 1
        ids[row, : width - length, 7] = config.text_token_id("PAD_T")
    if voice:
        for slot in range(7):
            ids[:, -1, slot] = config.audio_token_id(voice, slot)
    return ids, mask


def _rig_endings(model, monkeypatch):
    """Make EOT likely once a row reaches END_LENGTH real positions and EOA two positions later, so requests with
    different prompt lengths end at different, known steps. `generate` runs the backbone, then the text and audio
    heads on the rows that need them: the rig records each step's last hidden states and row lengths, and finds the
    rows a head receives by value."""
    cfg = model.config
    backbone, text_head, audio_head = model.model.forward, model.text_head_logits, model.audio_head_logits
    last = {}

    def rigged_backbone(*args, attention_mask=None, **kwargs):
        out = backbone(*args, attention_mask=attention_mask, **kwargs)
        last["hidden"], last["length"] = out.last_hidden_state[:, -1], attention_mask.sum(-1)
        return out

    def lengths(hidden):
        match = (hidden.unsqueeze(1) == last["hidden"].unsqueeze(0)).all(-1)
        assert bool(match.any(-1).all()), "a head received a hidden state that is not a row of the last step"
        return last["length"][match.float().argmax(-1)]

    def rigged_text_head(hidden):
        logits = text_head(hidden)
        logits[..., cfg.text_token_id("EOT")] += 1e4 * (lengths(hidden) >= END_LENGTH)
        return logits

    def rigged_audio_head(hidden):
        logits = audio_head(hidden)
        logits[..., cfg.audio_code("EOA")] += 1e4 * (lengths(hidden) >= END_LENGTH + 2).unsqueeze(-1)
        return logits

    monkeypatch.setattr(model.model, "forward", rigged_backbone)
    monkeypatch.setattr(model, "text_head_logits", rigged_text_head)
    monkeypatch.setattr(model, "audio_head_logits", rigged_audio_head)


def assert_layout(config, steps: torch.LongTensor, speech: bool):
    """DESIGN §3 answer layout on generated positions [T, 8] (step 0 = first answer text token)."""
    pad_t, eot = config.text_token_id("PAD_T"), config.text_token_id("EOT")
    text = steps[:, 7].tolist()
    ended = False
    for t, token in enumerate(text):
        if ended:
            assert token == pad_t, f"text stream step {t}: {token} after EOT, expected PAD_T"
        else:
            assert token < config.text_vocab_size or token == eot, f"text stream step {t}: special {token}"
            ended = token == eot
    for slot in range(7):
        local = (steps[:, slot] - config.audio_slot_offset(slot)).tolist()
        pad_a, eoa = config.audio_code("PAD_A"), config.audio_code("EOA")
        if not speech:
            assert all(code == pad_a for code in local), f"slot {slot} of a text reply holds audio"
            continue
        assert all(code == pad_a for code in local[: slot + 1]), f"slot {slot} starts before step {slot + 1}"
        closed = False
        for t, code in enumerate(local[slot + 1 :], start=slot + 1):
            if closed:
                assert code == pad_a, f"slot {slot} step {t}: {code} after EOA"
            else:
                assert code < config.codebook_size or code == eoa, f"slot {slot} step {t}: special {code}"
                closed = code == eoa


@pytest.mark.parametrize("batch_lengths", [[7], [7, 4, 10]])
@pytest.mark.parametrize("reply", ["speech", "text"])
def test_layout_invariants_at_every_step(model, monkeypatch, batch_lengths, reply):
    _rig_endings(model, monkeypatch)
    cfg = model.config
    ids, mask = _prompts(cfg, batch_lengths, voice="ANS_A" if reply == "speech" else None)
    out = model.generate(ids, attention_mask=mask, reply_modality=reply, max_new_tokens=40, seed=0)
    assert out.finished.all()
    width = ids.shape[1]
    for row, length in enumerate(batch_lengths):
        steps = out.sequences[row, width:]
        assert_layout(cfg, steps, speech=reply == "speech")
        text_steps = END_LENGTH - length  # EOT is chosen at the step fed with a row of END_LENGTH positions
        assert len(out.text_ids[row]) == text_steps
        assert steps[text_steps, 7] == cfg.text_token_id("EOT")
        if reply == "speech":
            eoa_step = text_steps + 2
            for slot in range(7):
                assert steps[eoa_step, slot] == cfg.audio_token_id("EOA", slot)
            # Slot 6 starts at step 7 and closes at eoa_step: that many complete frames.
            assert out.audio_codes[row].shape == (eoa_step - 7, 7)
            for slot in range(7):
                got = out.audio_codes[row][:, slot] + cfg.audio_slot_offset(slot)
                torch.testing.assert_close(got, steps[slot + 1 : slot + 1 + got.shape[0], slot])
        else:
            assert out.audio_codes[row].shape == (0, 7)


def test_batch_parallel_text_equals_the_text_reply(model):
    """The audio row's text comes from a text-reply row: same tokens as asking for a text reply."""
    cfg = model.config
    ids, mask = _prompts(cfg, [6, 9])
    speech = model.generate(ids, attention_mask=mask, max_new_tokens=12, seed=1)
    text_prompt, _ = _prompts(cfg, [6, 9], voice=None)
    text = model.generate(text_prompt, attention_mask=mask, reply_modality="text", max_new_tokens=12)
    for a, b in zip(speech.text_ids, text.text_ids):
        assert torch.equal(a, b)


def test_batched_requests_match_single_requests(model):
    cfg = model.config
    ids, mask = _prompts(cfg, [5, 8, 3])
    batched = model.generate(ids, attention_mask=mask, max_new_tokens=14, audio_do_sample=False)
    for row, length in enumerate([5, 8, 3]):
        single = model.generate(ids[row : row + 1, -length:], max_new_tokens=14, audio_do_sample=False)
        assert torch.equal(single.text_ids[0], batched.text_ids[row])
        assert torch.equal(single.audio_codes[0], batched.audio_codes[row])


def test_kv_cache_and_recomputation_give_the_same_tokens(model, monkeypatch):
    _rig_endings(model, monkeypatch)
    ids, mask = _prompts(model.config, [7, 4, 10])
    cached = model.generate(ids, attention_mask=mask, max_new_tokens=30, seed=5)
    recomputed = model.generate(ids, attention_mask=mask, max_new_tokens=30, seed=5, use_cache=False)
    assert torch.equal(cached.sequences, recomputed.sequences)


@pytest.mark.parametrize("use_cache", [True, False])
def test_first_step_sees_what_a_plain_forward_of_each_row_computes(model, monkeypatch, use_cache):
    """`generate` embeds a spoken prompt once (one Whisper pass per spoken turn), prefills the part shared by a
    request's audio and text rows once and copies its cache: the first step's hidden states of both rows must equal
    plain forwards of the audio row's prompt and of the text row's prompt (speaker token replaced by PAD_A)."""
    cfg = model.config
    ids = speech_span_ids(cfg, prefix=3, frames=6, suffix=4, seed=1)
    for slot in range(7):
        ids[:, -1, slot] = cfg.audio_token_id("ANS_A", slot)
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(2))
    seen = []
    audio_head, text_head = model.audio_head_logits, model.text_head_logits
    monkeypatch.setattr(model, "audio_head_logits", lambda h: seen.append(("audio", h.clone())) or audio_head(h))
    monkeypatch.setattr(model, "text_head_logits", lambda h: seen.append(("text", h.clone())) or text_head(h))
    model.generate(ids, input_features=features, max_new_tokens=1, seed=0, use_cache=use_cache)
    heads = dict(seen)
    text_prompt = ids.clone()
    for slot in range(7):
        text_prompt[:, -1, slot] = cfg.audio_token_id("PAD_A", slot)
    with torch.no_grad():
        audio_row = model.model(input_ids=ids, input_features=features).last_hidden_state[:, -1]
        text_row = model.model(input_ids=text_prompt, input_features=features).last_hidden_state[:, -1]
    assert not torch.allclose(audio_row, text_row)  # the rows differ only in the speaker token, and that matters
    torch.testing.assert_close(heads["audio"], audio_row, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(heads["text"], text_row, atol=1e-5, rtol=1e-5)


def test_seed_reproduces_a_reply_and_max_new_tokens_bounds_it(model):
    ids, mask = _prompts(model.config, [6])
    a = model.generate(ids, max_new_tokens=9, seed=11, return_audio=True)
    b = model.generate(ids, max_new_tokens=9, seed=11, return_audio=True)
    assert torch.equal(a.sequences, b.sequences) and torch.equal(a.audio_values[0], b.audio_values[0])
    assert a.sequences.shape[1] == ids.shape[1] + 9 and not a.finished.any()
    assert a.audio_values[0].shape == (1, a.audio_codes[0].shape[0] * 2048)
    c = model.generate(ids, max_new_tokens=9, seed=12)
    assert not torch.equal(a.sequences, c.sequences)


def test_generation_errors_are_clear(model):
    ids, _ = _prompts(model.config, [5], voice=None)
    with pytest.raises(ValueError, match="speaker token"):
        model.generate(ids, reply_modality="speech")
    with pytest.raises(ValueError, match="reply_modality"):
        model.generate(ids, reply_modality="video")
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(ids, reply_modality="text", max_new_tokens=0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        model.generate(ids, reply_modality="text", num_beams=4)


def test_per_request_seeds_make_each_reply_independent_of_the_batch(model):
    """`seed=[...]`: each request samples from its own generator, so with sampled audio (and sampled text) a batched
    request gets exactly the reply it gets alone with its seed; one seed in a list equals that seed as an int."""
    cfg = model.config
    lengths, seeds = [5, 8, 3], [21, 22, 23]
    ids, mask = _prompts(cfg, lengths)
    options = dict(max_new_tokens=14, do_sample=True, return_audio=True)
    batched = model.generate(ids, attention_mask=mask, seed=seeds, **options)
    for row, length in enumerate(lengths):
        single = model.generate(ids[row : row + 1, -length:], seed=seeds[row], **options)
        listed = model.generate(ids[row : row + 1, -length:], seed=[seeds[row]], **options)
        assert torch.equal(single.sequences, listed.sequences)
        assert torch.equal(single.text_ids[0], batched.text_ids[row])
        assert torch.equal(single.audio_codes[0], batched.audio_codes[row])
        torch.testing.assert_close(single.audio_values[0], batched.audio_values[row], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="one int per request"):
        model.generate(ids, attention_mask=mask, seed=[1, 2])


class _StoppingStreamer:
    """Records steps per request and stops `request` after `after` steps (a client that went away)."""

    def __init__(self, request, after):
        self.request, self.after, self.steps, self.ended = request, after, {}, {}

    def end_request(self, request):
        self.ended[request] = self.steps[request]

    def put_step(self, request, text_id, frame):
        self.steps[request] = self.steps.get(request, 0) + 1

    def end(self):
        pass

    def stopped_requests(self):
        return [self.request] if self.steps.get(self.request, 0) >= self.after else []


def test_streamer_can_stop_a_request_without_changing_the_others(model):
    """`stopped_requests()`: the stopped request gets no further steps (its rows leave the batch), its reply is what
    `max_new_tokens` equal to its steps would give, and the other requests' replies do not change."""
    cfg = model.config
    ids, mask = _prompts(cfg, [5, 8, 3])
    options = dict(max_new_tokens=16, seed=[1, 2, 3])
    full = model.generate(ids, attention_mask=mask, **options)
    streamer = _StoppingStreamer(request=1, after=6)
    stopped = model.generate(ids, attention_mask=mask, streamer=streamer, **options)
    assert streamer.steps[1] == 6 and streamer.steps[0] == 16
    assert streamer.ended[1] == 6  # told at once, while the others go on
    assert all(streamer.ended[r] == streamer.steps[r] for r in streamer.ended)
    assert {r for r in (0, 2) if r in streamer.ended} == {r for r in (0, 2) if bool(stopped.finished[r])}
    for row in (0, 2):
        assert torch.equal(full.text_ids[row], stopped.text_ids[row])
        assert torch.equal(full.audio_codes[row], stopped.audio_codes[row])
    alone = model.generate(ids[1:2, -8:], max_new_tokens=6, seed=2)
    assert torch.equal(alone.text_ids[0], stopped.text_ids[1])
    assert torch.equal(alone.audio_codes[0], stopped.audio_codes[1])
    assert not bool(stopped.finished[1])

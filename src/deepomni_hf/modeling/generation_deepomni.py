# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Parallel text + speech decoding for DeepOmni (DESIGN §3 "Decoding").

Every step is one forward over all active rows and yields one position of the 8-stream layout: a text token and one
token per SNAC slot. The layout rules are enforced here, not learned: slot *i* holds `PAD_A` for the first *i + 1*
answer positions (the staircase), a slot that emitted `EOA` holds `PAD_A` afterwards, and the text stream holds `PAD_T`
after `EOT`. A speech reply uses "batch-parallel" decoding: each request runs as two rows, an audio row (prompt ends
with the speaker token) whose audio slots are sampled, and a text row (the same prompt asking for a text reply) whose
text token is taken greedily and fed to both rows; once the text ends the text row is dropped from the batch and its
KV cache rows with it.
"""

import operator
from dataclasses import dataclass

import torch
from transformers import GenerationConfig
from transformers.generation.logits_process import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.utils import ModelOutput

from .configuration_deepomni import NUM_AUDIO_STREAMS, TEXT_STREAM


# Defaults of the published system; every one can be overridden per call or in `generation_config.json`.
DEEPOMNI_GENERATION_DEFAULTS = dict(
    max_new_tokens=512,
    reply_modality="speech",  # "speech": text + audio; "text": text only (audio slots stay PAD_A)
    batch_parallel=True,  # speech replies: text from a text-reply row, fed to the audio row
    do_sample=False,  # text stream: greedy by default
    temperature=1.0,
    top_k=None,
    top_p=None,
    repetition_penalty=1.2,  # text stream only
    audio_do_sample=True,
    audio_temperature=1.0,
    audio_top_k=10,
    audio_top_p=None,
)


def deepomni_generation_config(**overrides) -> GenerationConfig:
    return GenerationConfig(**{**DEEPOMNI_GENERATION_DEFAULTS, **overrides})


@dataclass
class DeepOmniGenerateOutput(ModelOutput):
    r"""
    sequences (`torch.LongTensor` of shape `(batch_size, prompt_length + steps, 8)`):
        Prompt and generated positions (the audio row for speech replies), absolute ids; requests that ended early
        are padded with `PAD_A` / `PAD_T`.
    text_ids (`list[torch.LongTensor]`):
        Per request, the answer's text ids without `EOT`.
    audio_codes (`list[torch.LongTensor]`):
        Per request, raw SNAC codes `[frames, 7]` (delay undone, specials dropped); `[0, 7]` for text replies.
    audio_values (`list[torch.FloatTensor]`, *optional*):
        Per request, the 24 kHz waveform `[1, samples]` decoded by the model's codec, when `return_audio=True`.
    finished (`torch.BoolTensor` of shape `(batch_size,)`):
        Whether each request ended on its own (text `EOT` and, for speech, `EOA` in every slot) before
        `max_new_tokens`.
    """

    sequences: torch.LongTensor | None = None
    text_ids: list[torch.LongTensor] | None = None
    audio_codes: list[torch.LongTensor] | None = None
    audio_values: list[torch.FloatTensor] | None = None
    finished: torch.BoolTensor | None = None


def _warpers(temperature, top_k, top_p) -> LogitsProcessorList:
    warpers = LogitsProcessorList()
    if temperature is not None and temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p is not None and top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    return warpers


def check_sampling_settings(values: dict) -> None:
    """Sampling settings out of range are rejected, not silently dropped (`top_p=2` or `repetition_penalty=0` would
    otherwise just switch the warper off). `None` means "off"; `top_k=0` is off too, as in transformers."""
    for prefix in ("", "audio_"):
        temperature, top_k, top_p = (values.get(prefix + name) for name in ("temperature", "top_k", "top_p"))
        if temperature is not None and not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"{prefix}temperature must be a number above 0, got {temperature!r}.")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
            raise ValueError(f"{prefix}top_k must be a whole number >= 0 (0 or None: off), got {top_k!r}.")
        if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
            raise ValueError(f"{prefix}top_p must be in (0, 1] (None: off), got {top_p!r}.")
    penalty = values.get("repetition_penalty")
    if penalty is not None and not (isinstance(penalty, (int, float)) and penalty > 0):
        raise ValueError(f"repetition_penalty must be a number above 0 (1.0 or None: off), got {penalty!r}.")


def check_seed(seed) -> None:
    """`seed` must be a whole number (or, per request, a list of them): a torch error would not say which argument."""
    for value in seed if isinstance(seed, (list, tuple)) else ([] if seed is None else [seed]):
        try:
            operator.index(value)  # int, numpy ints
        except TypeError:
            raise ValueError(f"seed must be a whole number, got {value!r}.") from None


def _choose(scores: torch.Tensor, do_sample: bool, generator: torch.Generator | None) -> torch.LongTensor:
    if not do_sample:
        return scores.argmax(dim=-1)
    probs = scores.float().softmax(dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(scores.device)


def _choose_per_request(
    scores: torch.Tensor, do_sample: bool, generator, requests: torch.LongTensor, rows_per_request: int
) -> torch.LongTensor:
    """`_choose` over consecutive groups of `rows_per_request` score rows, one group per request. With one generator
    per request (a list), each request samples from its own generator only, so its tokens do not depend on which other
    requests share the batch; a single generator (or none) samples the whole batch at once, as before."""
    if not do_sample or not isinstance(generator, list):
        return _choose(scores, do_sample, generator)
    groups = scores.split(rows_per_request)  # `requests` reaches the host only on this per-request path
    return torch.cat([_choose(group, True, generator[r]) for group, r in zip(groups, requests.tolist())])


class DeepOmniGenerationMixin:
    """`generate()` for [`DeepOmniForConditionalGeneration`]: parallel text and speech, one forward per step."""

    def _text_logit_mask(self) -> torch.BoolTensor:
        """True for text ids the text stream may emit: the tokenizer's vocabulary and `EOT` (not PAD_T, AUDIO, …)."""
        cfg = self.config
        allowed = torch.zeros(cfg.padded_text_vocab_size, dtype=torch.bool)
        allowed[: cfg.text_vocab_size] = True
        allowed[cfg.text_token_id("EOT")] = True
        return allowed

    def _audio_logit_mask(self) -> torch.BoolTensor:
        """True for slot-local ids an audio slot may emit once started: the codes and `EOA`."""
        cfg = self.config
        allowed = torch.zeros(cfg.audio_slot_vocab_size, dtype=torch.bool)
        allowed[: cfg.codebook_size] = True
        allowed[cfg.audio_code("EOA")] = True
        return allowed

    def _text_reply_prompt(self, input_ids: torch.LongTensor) -> torch.LongTensor:
        """The same prompt asking for a text reply: the speaker token of the last position becomes PAD_A."""
        text_prompt = input_ids.clone()
        for slot in range(NUM_AUDIO_STREAMS):
            text_prompt[:, -1, slot] = self.config.audio_token_id("PAD_A", slot)
        return text_prompt

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        input_features: torch.FloatTensor | None = None,
        generation_config: GenerationConfig | None = None,
        streamer=None,
        seed: int | None = None,
        return_audio: bool = False,
        use_cache: bool = True,
        text_to_speak: list[torch.LongTensor] | None = None,
        **kwargs,
    ) -> DeepOmniGenerateOutput:
        r"""
        Generates the reply to a prompt built by `DeepOmniProcessor.apply_chat_template(..., add_generation_prompt=True)`.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, prompt_length, 8)`):
                Left-padded prompts. For a speech reply the last prompt position holds the speaker token
                (`ANS_A`, `M29` or `F10`) in its audio slots.
            attention_mask (`torch.LongTensor` of shape `(batch_size, prompt_length)`, *optional*):
                0 on left padding.
            input_features (`torch.FloatTensor`, *optional*):
                Whisper features of the prompt's spoken turns, in order.
            generation_config (`GenerationConfig`, *optional*):
                Overrides `self.generation_config`; keyword arguments override both. DeepOmni reads `reply_modality`,
                `batch_parallel`, `max_new_tokens`, text sampling (`do_sample`, `temperature`, `top_k`, `top_p`,
                `repetition_penalty`) and audio sampling (`audio_do_sample`, `audio_temperature`, `audio_top_k`,
                `audio_top_p`).
            streamer (*optional*):
                Receives `put_step(request, text_id, frame)` after every step (`frame` is the newly completed
                `[7]` code frame or `None`) and `end()` at the end (see `DeepOmniStreamer`). A streamer that also has
                `stopped_requests()` is asked after every step which requests to stop now (e.g. a client went away):
                they end as if they had finished, and their rows leave the batch before the next step. A streamer
                with `end_request(request)` hears when each request is done (finished or stopped), before the batch
                is, so its reply can be closed while the other requests go on.
            seed (`int` or `list[int]`, *optional*):
                Seeds the sampling generator, so a reply can be regenerated exactly. A list gives every request its
                own generator (and codec noise seed): each request's reply is then the one it gets alone with that
                seed, whatever else is in the batch.
            return_audio (`bool`, *optional*):
                Also decode each reply's codes with the model's codec (its positional noise seeded with `seed`, as a
                `DeepOmniStreamer` with the same seed does).
            use_cache (`bool`, *optional*, defaults to `True`):
                `False` recomputes the whole sequence every step (for testing the cache).
            text_to_speak (`list[torch.LongTensor]`, *optional*):
                Per request, text ids that the text stream must carry (then `EOT`): the model only chooses the
                speech, which is how text-to-speech runs. Batch-parallel decoding is not needed then.
        """
        config = self._merged_generation_config(generation_config, kwargs)
        check_seed(seed)
        self.model.check_prompt(input_ids, input_features)  # once per prompt, before any decoding step
        cfg = self.config
        device = input_ids.device
        batch, prompt_len, _ = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones(batch, prompt_len, dtype=torch.long, device=device)
        speech = config.reply_modality == "speech"
        if config.reply_modality not in ("speech", "text"):
            raise ValueError(f"reply_modality must be 'speech' or 'text', got {config.reply_modality!r}.")
        if speech and input_ids.shape[1] and bool((input_ids[:, -1, 0] == cfg.audio_token_id("PAD_A", 0)).any()):
            raise ValueError(
                "A speech reply needs the speaker token (ANS_A, M29 or F10) in the audio slots of the last prompt "
                "position: build the prompt with add_generation_prompt=True and reply_modality='speech'."
            )
        if text_to_speak is not None and len(text_to_speak) != batch:
            raise ValueError(f"text_to_speak needs one id sequence per request ({batch}), got {len(text_to_speak)}.")
        parallel = speech and config.batch_parallel and text_to_speak is None
        if isinstance(seed, (list, tuple)):
            if len(seed) != batch:
                raise ValueError(f"seed needs one int per request ({batch}) when given as a list, got {len(seed)}.")
            generator = [torch.Generator().manual_seed(s) for s in seed]
        else:
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
        stopped = torch.zeros(batch, dtype=torch.bool, device=device)
        finished_before = torch.zeros(batch, dtype=torch.bool, device=device)

        # Rows: one per request, plus one text row per request in batch-parallel mode. A text row is its request's
        # prompt with PAD_A instead of the speaker token at the last position, so the prompt is embedded once (Whisper
        # runs once per spoken turn) and, with the cache, everything before the last position is prefilled once.
        prompt_embeds = self.model.embed_streams(input_ids)
        if input_features is not None:
            audio_frames = self.model.get_audio_features(input_features)
            prompt_embeds = self.model.merge_audio_frames(input_ids, prompt_embeds, audio_frames)
        rows_ids, rows_mask, rows_embeds = input_ids, attention_mask, prompt_embeds
        if parallel:
            text_prompt = self._text_reply_prompt(input_ids)
            text_embeds = torch.cat([prompt_embeds[:, :-1], self.model.embed_streams(text_prompt[:, -1:])], dim=1)
            rows_ids = torch.cat([input_ids, text_prompt])
            rows_mask = torch.cat([attention_mask, attention_mask])
            rows_embeds = torch.cat([prompt_embeds, text_embeds])
        row_request = torch.arange(rows_ids.shape[0], device=device) % batch
        row_is_text = torch.arange(rows_ids.shape[0], device=device) >= batch  # text rows (parallel mode only)

        text_allowed = self._text_logit_mask().to(device)
        audio_allowed = self._audio_logit_mask().to(device)
        text_warpers = _warpers(config.temperature, config.top_k, config.top_p)
        audio_warpers = _warpers(config.audio_temperature, config.audio_top_k, config.audio_top_p)
        penalty = (
            RepetitionPenaltyLogitsProcessor(config.repetition_penalty)
            if config.repetition_penalty and config.repetition_penalty != 1.0
            else None
        )
        eot, pad_t = cfg.text_token_id("EOT"), cfg.text_token_id("PAD_T")
        pad_a_code, eoa_code = cfg.audio_code("PAD_A"), cfg.audio_code("EOA")
        slot_offsets = torch.tensor([cfg.audio_slot_offset(s) for s in range(NUM_AUDIO_STREAMS)], device=device)

        text_done = torch.zeros(batch, dtype=torch.bool, device=device)
        slot_done = torch.zeros(batch, NUM_AUDIO_STREAMS, dtype=torch.bool, device=device)
        if not speech:
            slot_done[:] = True
        generated = []  # per step: [batch, 8] absolute ids of the audio row (or the only row)
        text_history = rows_ids[..., TEXT_STREAM][:batch].clone()
        codes_per_slot = [[[] for _ in range(NUM_AUDIO_STREAMS)] for _ in range(batch)]
        frames_emitted = [0] * batch

        position_ids = (rows_mask.long().cumsum(-1) - 1).clamp(min=0)
        speech_positions = self.model.speech_positions(rows_ids)
        # The backbone runs here and the head below, row by row: a text row only needs text logits and an audio row
        # only audio logits (the head is the largest matmul of a decoding step).
        full_ids, full_mask = rows_ids, rows_mask
        if use_cache:
            cache = None
            if prompt_len > 1:
                prefix = self.model(
                    inputs_embeds=prompt_embeds[:, :-1],
                    speech_positions=speech_positions[:batch, :-1],
                    attention_mask=attention_mask[:, :-1],
                    position_ids=position_ids[:batch, :-1],
                    use_cache=True,
                )
                cache = prefix.cache
                if parallel:  # the text rows start from a copy of their request's prefix
                    cache.batch_select_indices(row_request)
            outputs = self.model(
                inputs_embeds=rows_embeds[:, -1:],
                speech_positions=speech_positions[:, -1:],
                attention_mask=rows_mask,
                position_ids=position_ids[:, -1:],
                cache=cache,
                use_cache=True,
            )
            cache = outputs.cache
        else:
            # Recomputation reuses the prompt's embeddings and appends new positions.
            full_embeds = rows_embeds
            outputs = self.model(
                inputs_embeds=full_embeds,
                speech_positions=speech_positions,
                attention_mask=rows_mask,
                position_ids=position_ids,
                use_cache=False,
            )
        next_position = position_ids[:, -1:] + 1

        for step in range(config.max_new_tokens):
            hidden = outputs.last_hidden_state[:, -1]
            active_requests = row_request[~row_is_text] if parallel else row_request
            # --- text: from the text row while it lives, else from the request's own row ---
            if text_to_speak is not None:
                forced = [
                    int(text_to_speak[r][step]) if step < len(text_to_speak[r]) else eot
                    for r in active_requests.tolist()
                ]
                text_token = torch.tensor(forced, dtype=torch.long, device=device)
            elif bool(text_done[active_requests].all()):  # only audio remains: no text logits needed
                text_token = torch.full((len(active_requests),), pad_t, dtype=torch.long, device=device)
            else:
                text_rows = {}
                for row, (request, is_text) in enumerate(zip(row_request.tolist(), row_is_text.tolist())):
                    if is_text or request not in text_rows:
                        text_rows[request] = row
                source = torch.tensor([text_rows[r] for r in active_requests.tolist()], device=device)
                scores = self.text_head_logits(hidden[source]).float()
                if penalty is not None:
                    scores = penalty(text_history[active_requests], scores)
                scores = scores.masked_fill(~text_allowed, float("-inf"))
                scores = text_warpers(text_history[active_requests], scores)
                text_token = _choose_per_request(scores, config.do_sample, generator, active_requests, 1)
            text_token = torch.where(text_done[active_requests], torch.full_like(text_token, pad_t), text_token)

            # --- audio: sampled in the audio rows; staircase start, PAD_A after EOA ---
            audio_rows = (~row_is_text).nonzero().squeeze(-1)
            codes = torch.full((len(active_requests), NUM_AUDIO_STREAMS), pad_a_code, dtype=torch.long, device=device)
            if speech:
                slot_scores = self.audio_head_logits(hidden[audio_rows]).float()
                slot_scores = slot_scores.masked_fill(~audio_allowed, float("-inf"))
                flat = slot_scores.flatten(0, 1)
                flat = audio_warpers(torch.zeros(flat.shape[0], 0, dtype=torch.long, device=device), flat)
                sampled = _choose_per_request(
                    flat, config.audio_do_sample, generator, active_requests, NUM_AUDIO_STREAMS
                ).view(-1, NUM_AUDIO_STREAMS)
                started = torch.arange(NUM_AUDIO_STREAMS, device=device) < step  # slot i starts at step i + 1
                live = started.unsqueeze(0) & ~slot_done[active_requests]
                codes = torch.where(live, sampled, codes)

            # --- bookkeeping per request ---
            step_ids = torch.empty(batch, 8, dtype=torch.long, device=device)
            step_ids[:, :NUM_AUDIO_STREAMS] = slot_offsets + pad_a_code
            step_ids[:, TEXT_STREAM] = pad_t
            for k, request in enumerate(active_requests.tolist()):
                step_ids[request, :NUM_AUDIO_STREAMS] = slot_offsets + codes[k]
                step_ids[request, TEXT_STREAM] = text_token[k]
                frame = None
                for slot in range(NUM_AUDIO_STREAMS):
                    code = int(codes[k, slot])
                    if code == eoa_code:
                        slot_done[request, slot] = True
                    elif code < cfg.codebook_size:
                        codes_per_slot[request][slot].append(code)
                complete = min(len(c) for c in codes_per_slot[request])
                if complete > frames_emitted[request]:
                    frame = torch.tensor([c[frames_emitted[request]] for c in codes_per_slot[request]])
                    frames_emitted[request] += 1
                if int(text_token[k]) == eot:
                    text_done[request] = True
                if streamer is not None:
                    token = int(text_token[k])
                    streamer.put_step(request, token if token < cfg.text_vocab_size else None, frame)
            generated.append(step_ids)
            text_history = torch.cat([text_history, step_ids[:, TEXT_STREAM : TEXT_STREAM + 1]], dim=1)

            if streamer is not None and hasattr(streamer, "stopped_requests"):
                for request in streamer.stopped_requests():
                    stopped[request] = True
            newly_finished = (text_done & slot_done.all(dim=-1)) | stopped
            if streamer is not None and hasattr(streamer, "end_request"):
                for request in (newly_finished & ~finished_before).nonzero().squeeze(-1).tolist():
                    streamer.end_request(request)
            finished = finished_before = newly_finished
            if bool(finished.all()) or step == config.max_new_tokens - 1:
                break

            # --- next rows: drop finished requests and text rows whose text ended ---
            keep = ~finished[row_request] & ~(row_is_text & text_done[row_request])
            row_ids = torch.empty(len(row_request), 1, 8, dtype=torch.long, device=device)
            row_ids[:, 0] = step_ids[row_request]
            # A text row only feeds the shared text token; its audio slots stay PAD_A.
            row_ids[row_is_text, 0, :NUM_AUDIO_STREAMS] = slot_offsets + pad_a_code
            if not bool(keep.all()):
                indices = keep.nonzero().squeeze(-1)
                if use_cache:
                    cache.batch_select_indices(indices)
                row_request, row_is_text = row_request[indices], row_is_text[indices]
                row_ids, next_position = row_ids[indices], next_position[indices]
                full_ids, full_mask = full_ids[indices], full_mask[indices]
                if not use_cache:
                    full_embeds = full_embeds[indices]
            full_ids = torch.cat([full_ids, row_ids], dim=1)
            full_mask = torch.cat([full_mask, full_mask.new_ones(full_mask.shape[0], 1)], dim=1)
            if use_cache:
                outputs = self.model(
                    input_ids=row_ids,
                    attention_mask=full_mask,
                    position_ids=next_position,
                    cache=cache,
                    use_cache=True,
                )
            else:
                full_embeds = torch.cat([full_embeds, self.model.embed_streams(row_ids)], dim=1)
                outputs = self.model(
                    inputs_embeds=full_embeds,
                    speech_positions=self.model.speech_positions(full_ids),
                    attention_mask=full_mask,
                    position_ids=(full_mask.long().cumsum(-1) - 1).clamp(min=0),
                    use_cache=False,
                )
            next_position = next_position + 1

        if streamer is not None:
            streamer.end()
        return self._generate_output(input_ids, generated, codes_per_slot, text_done & slot_done.all(-1), seed, return_audio)

    def _merged_generation_config(self, generation_config, kwargs) -> GenerationConfig:
        """DeepOmni defaults < `generation_config` (or the model's) < keyword arguments."""
        base = generation_config or getattr(self, "generation_config", None) or deepomni_generation_config()
        unknown = set(kwargs) - set(DEEPOMNI_GENERATION_DEFAULTS)
        if unknown:
            raise TypeError(
                f"generate() got unexpected keyword arguments {sorted(unknown)}; DeepOmni reads "
                f"{sorted(DEEPOMNI_GENERATION_DEFAULTS)}."
            )
        values = {key: getattr(base, key, default) for key, default in DEEPOMNI_GENERATION_DEFAULTS.items()}
        values.update(kwargs)
        if not isinstance(values["max_new_tokens"], int) or values["max_new_tokens"] < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {values['max_new_tokens']!r}.")
        check_sampling_settings(values)
        return GenerationConfig(**values)

    def _generate_output(self, input_ids, generated, codes_per_slot, finished, seed, return_audio):
        cfg = self.config
        steps = torch.stack(generated, dim=1) if generated else input_ids[:, :0]
        sequences = torch.cat([input_ids, steps], dim=1)
        eot = cfg.text_token_id("EOT")
        text_ids = []
        for request in range(input_ids.shape[0]):
            text = steps[request, :, TEXT_STREAM]
            end = (text == eot).nonzero()
            text_ids.append(text[: int(end[0])] if len(end) else text[text < cfg.text_vocab_size])
        audio_codes = []
        for slots in codes_per_slot:
            frames = min(len(c) for c in slots)
            audio_codes.append(
                torch.tensor([c[:frames] for c in slots], dtype=torch.long).T.reshape(frames, NUM_AUDIO_STREAMS)
            )
        audio_values = None
        if return_audio:
            seeds = seed if isinstance(seed, (list, tuple)) else [seed] * len(audio_codes)
            audio_values = [self.decode_audio(codes, seed=s) for codes, s in zip(audio_codes, seeds)]
        return DeepOmniGenerateOutput(
            sequences=sequences, text_ids=text_ids, audio_codes=audio_codes, audio_values=audio_values, finished=finished
        )

    def decode_audio(self, codes: torch.LongTensor, seed: int | None = None) -> torch.FloatTensor:
        """Raw codes `[frames, 7]` → 24 kHz waveform `[1, samples]` (empty for zero frames). `seed` seeds the codec's
        positional noise (`None`: drawn from torch's global RNG)."""
        if codes.shape[0] == 0:
            return torch.zeros(1, 0)
        # Position-consistent noise: a streamed decode of the same codes with the same seed gives the same waveform.
        codec_device = next(self.codec_model.parameters()).device
        return self.codec_model.decode(codes.unsqueeze(0).to(codec_device), noise_seed=seed)[0].float().cpu()


__all__ = ["DeepOmniGenerationMixin", "DeepOmniGenerateOutput", "deepomni_generation_config", "DEEPOMNI_GENERATION_DEFAULTS"]

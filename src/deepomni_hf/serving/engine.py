"""The one place where serving touches the model: build a request's prompt, and decode a batch of requests with
`generate` (batched rows that end independently), each request streaming its own text and PCM.

Everything the scheduler needs from generation goes through [`DeepOmniEngine.run_batch`], so when `generate` becomes a
state + step API only this module changes.
"""

from dataclasses import dataclass

import numpy as np
import torch

from ..pipelines.streaming import DeepOmniStreamer
from ..processors.collator import pad_stream_sequences


@dataclass(frozen=True)
class BatchKey:
    """Requests decode together only when these generation settings agree (one `generate` call takes one config)."""

    reply_modality: str  # "speech" | "text"
    temperature: float  # of the speech codes; 0 = greedy
    top_p: float | None


@dataclass
class Prompt:
    input_ids: np.ndarray  # [positions, 8]
    input_features: torch.FloatTensor | None  # [spoken turns, 80, 3000]

    @property
    def num_positions(self) -> int:
        return int(self.input_ids.shape[0])


class ReplyStream:
    """One request's share of a batch. `generate`'s thread pushes its steps; the HTTP handler iterates
    `(text_piece, float32 audio)` pairs. Codec windows are cut at fixed frame counts (no catch-up), so the PCM of a
    reply depends only on its codes and seed: streamed and non-streamed replies are the same samples."""

    def __init__(self, engine: "DeepOmniEngine", seed: int, max_steps: int, frames_per_chunk: int):
        self.seed, self.max_steps = seed, max_steps
        self.streamer = DeepOmniStreamer(
            engine.processor.tokenizer, engine.model.codec_model, noise_seed=seed,
            frames_per_chunk=frames_per_chunk, catch_up=False,
        )  # fmt: skip
        self.frames: list[torch.LongTensor] = []
        self.steps = 0
        self.cancelled = False  # the client went away: stop at the next step
        self.error: str | None = None

    def put(self, text_id: int | None, frame) -> None:
        self.steps += 1
        if frame is not None:
            self.frames.append(frame)
        self.streamer.put_step(self.streamer.request, text_id, frame)

    def end(self) -> None:
        self.streamer.end()

    def fail(self, message: str) -> None:
        self.error = message
        self.streamer.end()

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def should_stop(self) -> bool:
        return self.cancelled or self.steps >= self.max_steps

    @property
    def truncated(self) -> bool:
        return self.steps >= self.max_steps

    @property
    def codes(self) -> torch.LongTensor:
        return torch.stack(self.frames) if self.frames else torch.zeros(0, 7, dtype=torch.long)

    @property
    def text(self) -> str:
        return self.streamer.text

    def __iter__(self):
        return iter(self.streamer)


class _BatchStreamer:
    """`generate`'s streamer for a batch: routes request k's steps to its `ReplyStream`, stops requests that were
    cancelled or reached their own token limit, and closes each reply as soon as it is done."""

    def __init__(self, streams: list[ReplyStream]):
        self.streams = streams

    def put_step(self, request: int, text_id: int | None, frame) -> None:
        self.streams[request].put(text_id, frame)

    def stopped_requests(self) -> list[int]:
        return [k for k, stream in enumerate(self.streams) if stream.should_stop]

    def end_request(self, request: int) -> None:
        self.streams[request].end()

    def end(self) -> None:
        for stream in self.streams:
            stream.end()


class DeepOmniEngine:
    def __init__(self, model, processor, frames_per_chunk: int = 2):
        self.model, self.processor, self.frames_per_chunk = model.eval(), processor, frames_per_chunk

    @property
    def sampling_rate(self) -> int:
        return self.model.config.codec_config.sampling_rate

    @property
    def max_positions(self) -> int:
        return self.model.config.text_config.max_position_embeddings

    def build_prompt(self, messages: list[dict], reply_modality: str, voice: str) -> Prompt:
        """Raises `ValueError` (layout, audio) with a message fit for the client."""
        batch = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, reply_modality=reply_modality, voice=voice, return_tensors="pt"
        )
        return Prompt(batch["input_ids"][0].numpy(), batch.get("input_features"))

    def new_stream(self, seed: int, max_steps: int) -> ReplyStream:
        return ReplyStream(self, seed, max_steps, self.frames_per_chunk)

    @torch.no_grad()
    def run_batch(self, key: BatchKey, prompts: list[Prompt], streams: list[ReplyStream]) -> None:
        """Decodes the requests together (left-padded rows of one `generate` call, one sampling generator per request
        so each reply equals the one it would get alone); returns when the last request is done."""
        input_ids, attention_mask = pad_stream_sequences(
            [prompt.input_ids for prompt in prompts], self.processor.pad_row, padding_side="left"
        )
        features = [prompt.input_features for prompt in prompts if prompt.input_features is not None]
        device = self.model.device
        greedy = key.temperature == 0
        self.model.generate(
            input_ids=torch.from_numpy(input_ids).to(device),
            attention_mask=torch.from_numpy(attention_mask).to(device),
            input_features=torch.cat(features).to(device, self.model.dtype) if features else None,
            streamer=_BatchStreamer(streams),
            seed=[stream.seed for stream in streams],
            max_new_tokens=max(stream.max_steps for stream in streams),
            reply_modality=key.reply_modality,
            audio_do_sample=not greedy,
            audio_temperature=1.0 if greedy else key.temperature,
            audio_top_p=key.top_p,
        )


__all__ = ["BatchKey", "DeepOmniEngine", "Prompt", "ReplyStream"]

"""Streaming a DeepOmni reply: text pieces and PCM chunks as soon as generation produces them."""

from queue import Queue

import numpy as np
import torch
from transformers.generation.streamers import BaseStreamer

from ..modeling.streaming_codec import StreamingCodecDecoder


_END = object()


class DeepOmniStreamer(BaseStreamer):
    """Receives each decoding step from `DeepOmniForConditionalGeneration.generate(streamer=...)` and yields
    `(text_piece, audio_chunk)` pairs when iterated (typically from another thread than `generate`'s).

    Text: the answer decoded so far, emitted as the new suffix once it is valid UTF-8. Audio: every completed SNAC
    frame is queued and decoded by a [`StreamingCodecDecoder`] in the iterating thread (so the codec overlaps the next
    generation step), which returns PCM as soon as the codec's right context is available and flushes the rest at
    the end: the concatenated chunks equal the offline decode of the same codes with the same seed (within 1e-5) and
    the concatenated text equals the final text.

    Args:
        tokenizer: the processor's tokenizer.
        codec_model: the model's `DeepOmniCodecModel`.
        noise_seed (`int`): seed of the codec's position-consistent noise; use the `seed` given to `generate`.
        frames_per_chunk (`int`): emit audio every this many frames (1 = lowest latency).
        catch_up (`bool`, defaults to `True`): when the codec falls behind generation (frames wait in the queue), decode
            every waiting frame in one window instead of one window per frame. Each window re-decodes ~2.3 frames of
            context on each side, so this cuts the codec's work exactly when it is the bottleneck, and changes nothing
            when it keeps up. The audio is the same either way; only the chunking differs.
        request (`int`): which request of the batch to stream.
        timeout (`float`, *optional*): seconds to wait for the next piece before raising `queue.Empty`.
    """

    def __init__(self, tokenizer, codec_model, noise_seed: int = 0, frames_per_chunk: int = 1, request: int = 0,
                 timeout: float | None = None, catch_up: bool = True):  # fmt: skip
        self.tokenizer = tokenizer
        self.catch_up = catch_up
        self.decoder = StreamingCodecDecoder(codec_model, chunk_frames=frames_per_chunk, noise_seed=noise_seed)
        self.request = request
        self.timeout = timeout
        self.queue: Queue = Queue()
        self.text_ids: list[int] = []
        self.text = ""
        self.ended = False

    def put(self, value):
        raise TypeError("DeepOmniStreamer receives whole decoding steps through `put_step`; use it with DeepOmni.")

    def _new_text(self) -> str:
        decoded = self.tokenizer.decode(self.text_ids, skip_special_tokens=True).lstrip()
        if decoded.endswith("\ufffd"):  # an incomplete UTF-8 character: wait for the next token
            return ""
        piece, self.text = decoded[len(self.text) :], decoded
        return piece

    def put_step(self, request: int, text_id: int | None, frame) -> None:
        if request != self.request:
            return
        piece = ""
        if text_id is not None:
            self.text_ids.append(text_id)
            piece = self._new_text()
        if piece or frame is not None:
            # The codec runs on the consumer's side (`__iter__`), so decoding overlaps the next generation step.
            self.queue.put((piece, None if frame is None else frame.reshape(1, 1, -1)))

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        piece = self._new_text()
        if piece:
            self.queue.put((piece, None))
        self.queue.put(_END)

    def __iter__(self):
        silence = np.zeros(0, np.float32)
        while True:
            items = [self.queue.get(timeout=self.timeout)]
            while self.catch_up and items[-1] is not _END and not self.queue.empty():
                items.append(self.queue.get_nowait())
            ended = items[-1] is _END
            if ended:
                items.pop()
            frames = [frame for _, frame in items if frame is not None]
            chunk = self.decoder.push(torch.cat(frames, dim=1)) if frames else None
            piece = "".join(piece for piece, _ in items)
            audio = chunk[0, 0].float().cpu().numpy() if chunk is not None else silence
            if piece or audio.size:
                yield piece, audio
            if ended:
                rest = self.decoder.flush()
                if rest is not None and rest.numel():
                    yield "", rest[0, 0].float().cpu().numpy()
                return


__all__ = ["DeepOmniStreamer"]

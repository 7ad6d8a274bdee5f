"""Spoken replies kept for a while, so a client can send an assistant audio turn back by id (`audio: {"id": ...}`),
as OpenAI's multi-turn audio works. Bounded in entries and in time; the oldest entries go first."""

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StoredReply:
    codes: torch.LongTensor  # raw SNAC codes [frames, 7]
    transcript: str
    voice: str  # speaker token
    expires_at: int  # unix seconds


class AudioStore:
    def __init__(self, max_entries: int = 256, ttl_seconds: float = 3600.0, clock=time.time):
        self.max_entries, self.ttl_seconds, self.clock = max_entries, ttl_seconds, clock
        self._entries: OrderedDict[str, StoredReply] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def new_id() -> str:
        return f"audio_{secrets.token_hex(12)}"

    def put(self, audio_id: str, codes: torch.LongTensor, transcript: str, voice: str) -> StoredReply:
        entry = StoredReply(codes.cpu(), transcript, voice, int(self.clock() + self.ttl_seconds))
        with self._lock:
            self._entries[audio_id] = entry
            self._entries.move_to_end(audio_id)
            self._expire()
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return entry

    def get(self, audio_id: str) -> StoredReply | None:
        with self._lock:
            self._expire()
            return self._entries.get(audio_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _expire(self) -> None:
        now = self.clock()
        for audio_id in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[audio_id]


__all__ = ["AudioStore", "StoredReply"]

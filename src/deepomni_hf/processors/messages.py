# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Chat messages as `DeepOmniProcessor.apply_chat_template` reads them: one conversation or a batch, each message's
`content` as typed items, checked with one clear error per mistake."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .layout import DeepOmniLayoutError


def as_conversation_batch(conversation) -> tuple[list[list[dict]], bool]:
    """`(conversations, is_batched)` from one list of messages, a list of them, or objects with `.messages`."""
    if hasattr(conversation, "messages"):
        conversation = conversation.messages
    if isinstance(conversation, (list, tuple)) and conversation and isinstance(conversation[0], (list, tuple)):
        return [list(c) for c in conversation], True
    if isinstance(conversation, (list, tuple)) and conversation and hasattr(conversation[0], "messages"):
        return [list(c.messages) for c in conversation], True
    return [list(conversation)], False


def normalize_message(message: Mapping, index: int) -> dict:
    """`content` as a list of typed items; checks roles and item types."""
    if not isinstance(message, Mapping) or "role" not in message:
        raise DeepOmniLayoutError(f"Message {index} must be a dict with 'role' and 'content', got {message!r:.80}.")
    role = message["role"]
    if role not in ("system", "user", "assistant"):
        raise DeepOmniLayoutError(f"Message {index} has role {role!r}; DeepOmni knows system, user and assistant.")
    content = message.get("content")
    if content is None:
        items = []
    elif isinstance(content, str):
        items = [{"type": "text", "text": content}]
    else:
        items = [dict(item) for item in content]
    allowed = ("text", "audio_codes") if role == "assistant" else ("text", "audio")
    for item in items:
        kind = item.get("type")
        if kind not in allowed:
            hint = (
                " Assistant speech is given as codec codes: encode it with DeepOmniCodecModel.encode and pass "
                "{'type': 'audio_codes', 'codes': codes[0]}."
                if role == "assistant" and kind == "audio"
                else ""
            )
            raise DeepOmniLayoutError(
                f"Message {index} ({role}) has an item of type {kind!r}; allowed: {allowed}.{hint}"
            )
        if kind == "text" and not isinstance(item.get("text"), str):
            raise DeepOmniLayoutError(f"Message {index} has a text item without a 'text' string.")
    if sum(item["type"] == "audio_codes" for item in items) > 1:
        raise DeepOmniLayoutError(f"Message {index} has more than one audio_codes item; concatenate the frames.")
    return {**message, "content": items}


def audio_source(item: Mapping) -> Any:
    """What an audio item points at (`audio`, `path` or `url`)."""
    for key in ("audio", "path", "url"):
        if item.get(key) is not None:
            return item[key]
    raise DeepOmniLayoutError(f"An audio item needs 'audio' (or 'path'), got keys {sorted(item)}.")


def codes_item(message: Mapping) -> Mapping | None:
    """The `audio_codes` item of a normalised assistant message, if it has one."""
    for item in message["content"]:
        if item["type"] == "audio_codes":
            if item.get("codes") is None:
                raise DeepOmniLayoutError("An audio_codes item needs 'codes' ([frames, 7] raw codes).")
            return item
    return None


__all__ = ["as_conversation_batch", "audio_source", "codes_item", "normalize_message"]

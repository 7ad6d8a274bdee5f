# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The backbone tokenizer extended with DeepOmni's text specials at fixed ids.

DeepOmni's text stream uses the backbone's token ids `0 .. text_vocab_size - 1` unchanged and puts its own specials
right after them: special `k` of `text_special_tokens` (`EOT, PAD_T, BOT, ANS_T, TTS, TQA, TQAA, AUDIO`) has id
`text_vocab_size + k` (DESIGN §3). A backbone tokenizer usually has fewer tokens than the backbone has embedding rows
(DeepSeek-V2's has 100,015 tokens for 102,400 rows), so the ids in between are filled with reserved placeholders.

Token-string scheme (all added as special tokens, never split, skipped by `decode(..., skip_special_tokens=True)`):

- named specials: `<|NAME|>`, e.g. `<|EOT|>`, `<|PAD_T|>`, `<|AUDIO|>` (the user-speech placeholder);
- every other reserved id `i` (the gap below `text_vocab_size`, and the unnamed specials up to
  `text_vocab_size + num_text_special_tokens - 1`): `<|deepomni_reserved_{i}|>`, named by its own id.

Audio-slot ids (codes and audio specials) have no token strings: they never pass through the tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import AddedToken
from transformers import PreTrainedTokenizerBase


# The names of `DeepOmniConfig.text_special_tokens`, in id order. Repeated here (not imported from `..modeling`) so
# that this folder only imports itself and its code can travel with a saved processor (`trust_remote_code`); a test
# keeps the two in sync.
TEXT_SPECIAL_TOKENS = ("EOT", "PAD_T", "BOT", "ANS_T", "TTS", "TQA", "TQAA", "AUDIO")


def text_special_token(name: str) -> str:
    """Token string of a named text special: `"EOT"` → `"<|EOT|>"`."""
    return f"<|{name}|>"


def reserved_token(token_id: int) -> str:
    """Token string of the reserved placeholder at `token_id`: `"<|deepomni_reserved_{token_id}|>"`."""
    return f"<|deepomni_reserved_{token_id}|>"


def deepomni_text_tokens(
    text_vocab_size: int,
    text_special_tokens: Sequence[str] = TEXT_SPECIAL_TOKENS,
    num_text_special_tokens: int | None = None,
) -> list[str]:
    """The token strings that must sit at ids `text_vocab_size, text_vocab_size + 1, ...` in order."""
    num_text_special_tokens = len(text_special_tokens) if num_text_special_tokens is None else num_text_special_tokens
    if num_text_special_tokens < len(text_special_tokens):
        raise ValueError(
            f"{len(text_special_tokens)} text specials do not fit in num_text_special_tokens={num_text_special_tokens}."
        )
    named = [text_special_token(name) for name in text_special_tokens]
    unnamed = [reserved_token(text_vocab_size + k) for k in range(len(named), num_text_special_tokens)]
    return named + unnamed


def extend_tokenizer(
    tokenizer: PreTrainedTokenizerBase,
    text_vocab_size: int,
    text_special_tokens: Sequence[str] = TEXT_SPECIAL_TOKENS,
    num_text_special_tokens: int | None = None,
) -> PreTrainedTokenizerBase:
    """
    Adds DeepOmni's text specials to `tokenizer` (in place) so that special `k` gets id `text_vocab_size + k`.

    Ids between the tokenizer's last token and `text_vocab_size` are filled with reserved placeholders
    (`<|deepomni_reserved_{id}|>`); with `num_text_special_tokens`, the unnamed special ids after the named ones are
    filled too, so that every text-stream id decodes. Running it again on an extended tokenizer changes nothing.

    Args:
        tokenizer ([`PreTrainedTokenizerBase`]): the backbone's tokenizer (e.g. DeepSeek-V2-Lite-Chat's).
        text_vocab_size (`int`): number of backbone text ids (DeepSeek-V2: 102,400, its embedding rows).
        text_special_tokens (`Sequence[str]`): names of the text specials in id order (`DeepOmniConfig`'s).
        num_text_special_tokens (`int`, *optional*): ids reserved for text specials (defaults to the named ones).

    Returns:
        The same tokenizer, extended.

    Raises:
        `ValueError`: the tokenizer already has more than `text_vocab_size` tokens that are not exactly DeepOmni's
        specials at their ids, or a DeepOmni token string already exists at another id.
    """
    expected = [reserved_token(i) for i in range(len(tokenizer), text_vocab_size)]
    expected += deepomni_text_tokens(text_vocab_size, text_special_tokens, num_text_special_tokens)
    first_id = min(len(tokenizer), text_vocab_size)

    current_size = len(tokenizer)
    if current_size > text_vocab_size:
        # Already extended (fully or partly)? Then the tokens from text_vocab_size on must be ours, in order.
        existing = tokenizer.convert_ids_to_tokens(list(range(text_vocab_size, current_size)))
        ours = deepomni_text_tokens(text_vocab_size, text_special_tokens, num_text_special_tokens)
        if existing != ours[: len(existing)]:
            raise ValueError(
                f"The tokenizer has {current_size} tokens, more than text_vocab_size={text_vocab_size}, and its tokens "
                f"from id {text_vocab_size} on ({existing[:3]}...) are not DeepOmni's text specials. The specials must "
                "start right after the backbone's text ids: set text_vocab_size to the backbone's embedding rows "
                "(DeepSeek-V2: 102,400) and start from the backbone's own tokenizer."
            )
        expected = ours[len(existing) :]
        first_id = current_size

    vocab = tokenizer.get_vocab()
    for offset, token in enumerate(expected):
        if token in vocab and vocab[token] != first_id + offset:
            raise ValueError(
                f"The tokenizer already has {token!r} at id {vocab[token]}, but DeepOmni needs it at id "
                f"{first_id + offset}. Start from the backbone's own tokenizer."
            )
    if expected:
        tokenizer.add_tokens(
            [AddedToken(token, special=True, normalized=False, single_word=False) for token in expected],
            special_tokens=True,
        )
    check_extended_tokenizer(tokenizer, text_vocab_size, text_special_tokens)
    return tokenizer


def check_extended_tokenizer(
    tokenizer: PreTrainedTokenizerBase, text_vocab_size: int, text_special_tokens: Sequence[str] = TEXT_SPECIAL_TOKENS
) -> None:
    """Raises `ValueError` unless every named text special sits at `text_vocab_size + k`."""
    for k, name in enumerate(text_special_tokens):
        token_id = tokenizer.convert_tokens_to_ids(text_special_token(name))
        if token_id != text_vocab_size + k:
            raise ValueError(
                f"Tokenizer maps {text_special_token(name)!r} to id {token_id}, but DeepOmni's layout needs "
                f"{text_vocab_size + k} (text_vocab_size + {k}). Extend the backbone tokenizer with "
                "`deepomni_hf.processors.extend_tokenizer(tokenizer, text_vocab_size, ...)`."
            )


__all__ = [
    "TEXT_SPECIAL_TOKENS",
    "check_extended_tokenizer",
    "deepomni_text_tokens",
    "extend_tokenizer",
    "reserved_token",
    "text_special_token",
]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""The processor of a converted checkpoint, and the tokenizer of an exported text model."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from ...modeling.configuration_deepomni import DeepOmniConfig


def load_text_tokenizer(folder: Path):
    """The backbone's tokenizer from `folder`, or `None` when it holds none.

    A `tokenizer.json` is loaded as it is (`PreTrainedTokenizerFast`): DeepSeek's `tokenizer_config.json` names
    `LlamaTokenizerFast`, and transformers 5's Llama class can replace the byte-level pre-tokenizer of `tokenizer.json`
    with a SentencePiece one (huggingface/transformers#45488), which would change the token ids.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (folder / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(folder)
    if (folder / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    return None


def _processor_class():
    """`DeepOmniProcessor`, or `None` while the package has none."""
    try:
        from ...processors import DeepOmniProcessor
    except ImportError:
        try:
            from ...processors.processing_deepomni import DeepOmniProcessor
        except ImportError:
            return None
    return DeepOmniProcessor


def save_processor(
    save_directory: Path, text_model_dir: Path, audio_encoder_dir: Path, config: DeepOmniConfig
) -> tuple[bool, bool, list[str]]:
    """Saves DeepOmni's processor next to a converted checkpoint: the backbone's tokenizer extended with DeepOmni's
    text specials, and Whisper's feature extractor (from the Whisper checkpoint's `preprocessor_config.json`, or built
    from the config when it has none). Returns `(processor_saved, tokenizer_saved, notes)`."""
    from transformers import WhisperFeatureExtractor

    from ...processors.tokenization import extend_tokenizer

    notes = []
    tokenizer = load_text_tokenizer(text_model_dir)
    if tokenizer is None:
        return False, False, [f"no tokenizer in {str(text_model_dir)!r}: no processor saved"]
    if (audio_encoder_dir / "preprocessor_config.json").is_file():
        feature_extractor = WhisperFeatureExtractor.from_pretrained(audio_encoder_dir)
    else:
        feature_extractor = WhisperFeatureExtractor(
            feature_size=config.audio_config.num_mel_bins, sampling_rate=config.audio_sampling_rate
        )
        notes.append("the Whisper checkpoint has no preprocessor_config.json: default WhisperFeatureExtractor saved")
    processor_class = _processor_class()
    if processor_class is not None:
        processor = processor_class.from_model_config(config, tokenizer, feature_extractor=feature_extractor)
        processor.save_pretrained(save_directory)
        return True, True, notes
    extend_tokenizer(tokenizer, config.text_vocab_size, config.text_special_tokens, config.num_text_special_tokens)
    tokenizer.save_pretrained(save_directory)
    feature_extractor.save_pretrained(save_directory)
    notes.append("DeepOmniProcessor is not available: saved the extended tokenizer and the feature extractor only")
    return False, True, notes


def _deepomni_token_strings(config: DeepOmniConfig) -> Callable[[str], bool]:
    names = {f"<|{name}|>" for name in config.text_special_tokens}
    reserved = re.compile(r"<\|deepomni_reserved_\d+\|>")
    return lambda token: token in names or reserved.fullmatch(token) is not None


def export_tokenizer(checkpoint_dir: Path, output_dir: Path, config: DeepOmniConfig) -> tuple[bool, list[str]]:
    """Copies the tokenizer of a DeepOmni checkpoint for its exported text model, without DeepOmni's tokens.

    The added-token entries DeepOmni made (`<|EOT|>` ... and the `<|deepomni_reserved_{id}|>` placeholders, all at ids
    from the backbone tokenizer's end on) are removed from `tokenizer.json` and from the token lists of
    `tokenizer_config.json` / `special_tokens_map.json`, and `processor_class` is dropped, so the result is the
    backbone's own tokenizer again. When some other token sits after DeepOmni's (so removing them would leave holes),
    the tokenizer is copied unchanged. `chat_template.jinja`, if present, is the checkpoint's chat template (the
    processor's) and is copied as it is. Returns `(copied, notes)`."""
    tokenizer_json = checkpoint_dir / "tokenizer.json"
    if not tokenizer_json.is_file():
        return False, ["the checkpoint has no tokenizer.json: no tokenizer exported"]
    is_ours = _deepomni_token_strings(config)
    content = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    added = content.get("added_tokens", [])
    ours = [t for t in added if is_ours(t["content"])]
    notes = []
    if ours and max((t["id"] for t in added if not is_ours(t["content"])), default=-1) > min(t["id"] for t in ours):
        notes.append("tokens follow DeepOmni's specials in the tokenizer: copied it unchanged, specials included")
        ours = []
    content["added_tokens"] = [t for t in added if not is_ours(t["content"])] if ours else added
    (output_dir / "tokenizer.json").write_text(json.dumps(content, ensure_ascii=False, indent=2), encoding="utf-8")

    def clean(value):
        if isinstance(value, list):
            return [v for v in value if not (ours and isinstance(v, str) and is_ours(v))]
        if isinstance(value, dict) and ours:
            return {k: v for k, v in value.items() if not (isinstance(v, dict) and is_ours(v.get("content", "")))}
        return value

    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if (checkpoint_dir / name).is_file():
            settings = json.loads((checkpoint_dir / name).read_text(encoding="utf-8"))
            settings = {k: clean(v) for k, v in settings.items() if k not in ("processor_class", "auto_map")}
            (output_dir / name).write_text(json.dumps(settings, ensure_ascii=False, indent=2), encoding="utf-8")
    if (checkpoint_dir / "chat_template.jinja").is_file():
        shutil.copyfile(checkpoint_dir / "chat_template.jinja", output_dir / "chat_template.jinja")
    return True, notes

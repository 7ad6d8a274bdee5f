# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Key prefixes of a DeepOmni checkpoint (what `DeepOmniForConditionalGeneration.save_pretrained` writes)."""

# Prefixes of the DeepOmni checkpoint.
TEXT_PREFIX = "model.language_model."
AUDIO_PREFIX = "model.audio_tower."
ADAPTER_PREFIX = "model.speech_adapter."
CODEC_PREFIX = "codec_model."
EMBED_KEY = TEXT_PREFIX + "embed_tokens.weight"
LM_HEAD_KEY = "lm_head.weight"

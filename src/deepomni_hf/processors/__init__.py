"""DeepOmni's processor: speech loading, the extended tokenizer, the 8-stream layout and chat template, collation.

Modules in this folder import only each other (relatively), so the processor's code can travel with a saved
checkpoint for `trust_remote_code`.
"""

from .audio import DEFAULT_SILENCE_THRESHOLD, DeepOmniAudioError, load_speech, num_whisper_frames
from .collator import DeepOmniDataCollator, pad_stream_sequences
from .processing_deepomni import (
    DEFAULT_CHAT_TEMPLATE,
    VOICES,
    DeepOmniDecodedOutput,
    DeepOmniLayoutError,
    DeepOmniProcessor,
    StreamVocabulary,
)
from .tokenization import check_extended_tokenizer, extend_tokenizer, reserved_token, text_special_token


__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "DEFAULT_SILENCE_THRESHOLD",
    "VOICES",
    "DeepOmniAudioError",
    "DeepOmniDataCollator",
    "DeepOmniDecodedOutput",
    "DeepOmniLayoutError",
    "DeepOmniProcessor",
    "StreamVocabulary",
    "check_extended_tokenizer",
    "extend_tokenizer",
    "load_speech",
    "num_whisper_frames",
    "pad_stream_sequences",
    "reserved_token",
    "text_special_token",
]

"""DeepOmni's processor: speech loading, the extended tokenizer, the 8-stream layout and its targets, chat messages and
the chat template, collation.

Modules in this folder import only each other (relatively), so the processor's code can travel with a saved
checkpoint for `trust_remote_code`.
"""

from .audio import DEFAULT_SILENCE_THRESHOLD, DeepOmniAudioError, load_speech, num_whisper_frames
from .collator import IGNORE_INDEX, DeepOmniDataCollator, pad_stream_sequences
from .layout import VOICES, DeepOmniLayoutError, StreamVocabulary, drop_filler_targets, layout_answer
from .processing_deepomni import DEFAULT_CHAT_TEMPLATE, DeepOmniDecodedOutput, DeepOmniProcessor
from .tokenization import check_extended_tokenizer, extend_tokenizer, reserved_token, text_special_token


__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "DEFAULT_SILENCE_THRESHOLD",
    "IGNORE_INDEX",
    "VOICES",
    "DeepOmniAudioError",
    "DeepOmniDataCollator",
    "DeepOmniDecodedOutput",
    "DeepOmniLayoutError",
    "DeepOmniProcessor",
    "StreamVocabulary",
    "check_extended_tokenizer",
    "drop_filler_targets",
    "extend_tokenizer",
    "layout_answer",
    "load_speech",
    "num_whisper_frames",
    "pad_stream_sequences",
    "reserved_token",
    "text_special_token",
]

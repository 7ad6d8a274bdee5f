"""deepomni_hf: DeepOmni (DeepTalk), a native speech-to-speech MoE LLM with modality-specific experts, for 🤗 transformers.

Importing this package registers DeepOmni with transformers' Auto classes, so a saved checkpoint resolves through
`AutoConfig`, `AutoModel`, `AutoModelForMultimodalLM`, `AutoModelForTextToWaveform`, `AutoProcessor` (and the codec through `AutoModel`)
without `trust_remote_code`.
"""

from transformers import AutoConfig, AutoModel, AutoModelForMultimodalLM, AutoModelForTextToWaveform, AutoProcessor

from .modeling import (
    ROUTING_MODES,
    DeepOmniCausalLMOutput,
    DeepOmniCodecConfig,
    DeepOmniCodecModel,
    DeepOmniConfig,
    DeepOmniForConditionalGeneration,
    DeepOmniModel,
    DeepOmniPreTrainedModel,
    DeepOmniSpeechAdapter,
    DeepOmniTextConfig,
    DeepOmniTextModel,
)
from .pipelines import SpeechToSpeechPipeline, register_pipelines
from .processors import DeepOmniDataCollator, DeepOmniProcessor


__version__ = "0.1.0"


def _register() -> None:
    for config_class in (DeepOmniConfig, DeepOmniTextConfig, DeepOmniCodecConfig):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(DeepOmniConfig, DeepOmniModel, exist_ok=True)
    AutoModel.register(DeepOmniTextConfig, DeepOmniTextModel, exist_ok=True)
    AutoModel.register(DeepOmniCodecConfig, DeepOmniCodecModel, exist_ok=True)
    AutoModelForMultimodalLM.register(DeepOmniConfig, DeepOmniForConditionalGeneration, exist_ok=True)
    AutoModelForTextToWaveform.register(DeepOmniConfig, DeepOmniForConditionalGeneration, exist_ok=True)
    AutoProcessor.register(DeepOmniConfig, DeepOmniProcessor, exist_ok=True)
    # Saved checkpoints carry their code and an `auto_map`, for `trust_remote_code=True` without this package.
    DeepOmniConfig.register_for_auto_class()
    DeepOmniCodecConfig.register_for_auto_class()
    DeepOmniForConditionalGeneration.register_for_auto_class("AutoModelForMultimodalLM")
    DeepOmniCodecModel.register_for_auto_class("AutoModel")
    DeepOmniProcessor.register_for_auto_class()
    register_pipelines()


_register()

__all__ = [
    "ROUTING_MODES",
    "DeepOmniCausalLMOutput",
    "DeepOmniCodecConfig",
    "DeepOmniCodecModel",
    "DeepOmniConfig",
    "DeepOmniDataCollator",
    "DeepOmniForConditionalGeneration",
    "DeepOmniModel",
    "DeepOmniPreTrainedModel",
    "DeepOmniProcessor",
    "DeepOmniSpeechAdapter",
    "DeepOmniTextConfig",
    "DeepOmniTextModel",
    "SpeechToSpeechPipeline",
]

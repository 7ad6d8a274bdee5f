"""DeepOmni model, configuration, modality router and SNAC codec.

Modules in this folder import each other relatively only: `save_pretrained` copies them next to the weights so a
checkpoint loads with `trust_remote_code=True` in a process that never imported `deepomni_hf`.
"""

from .configuration_deepomni import ROUTING_MODES, DeepOmniConfig, DeepOmniTextConfig
from .configuration_deepomni_codec import DeepOmniCodecConfig
from .modality_routing import restrict_router_logits, sequence_balance_loss
from .modeling_deepomni import (
    DeepOmniCausalLMOutput,
    DeepOmniForConditionalGeneration,
    DeepOmniModel,
    DeepOmniPreTrainedModel,
    DeepOmniSpeechAdapter,
    DeepOmniTextModel,
)
from .modeling_deepomni_codec import DeepOmniCodecModel

__all__ = [
    "ROUTING_MODES",
    "DeepOmniCausalLMOutput",
    "DeepOmniCodecConfig",
    "DeepOmniCodecModel",
    "DeepOmniConfig",
    "DeepOmniForConditionalGeneration",
    "DeepOmniModel",
    "DeepOmniPreTrainedModel",
    "DeepOmniSpeechAdapter",
    "DeepOmniTextConfig",
    "DeepOmniTextModel",
    "restrict_router_logits",
    "sequence_balance_loss",
]

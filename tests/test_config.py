"""DeepOmniConfig: the published defaults, the vocabulary layout, and validation messages."""

import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import AutoConfig

from deepomni_hf import DeepOmniConfig, DeepOmniTextConfig
from tiny_models import TINY_TEXT, tiny_config


def test_defaults_are_the_published_system():
    config = DeepOmniConfig()
    text = config.text_config
    assert (text.num_hidden_layers, text.hidden_size, text.first_k_dense_replace) == (27, 2048, 1)
    assert (text.n_routed_experts, text.num_experts_per_tok, text.n_shared_experts) == (64, 6, 2)
    assert (text.moe_intermediate_size, text.intermediate_size, text.kv_lora_rank, text.q_lora_rank) == (
        1408, 10944, 512, None,
    )
    assert text.norm_topk_prob is False and text.routed_scaling_factor == 1.0 and text.router_aux_loss_coef == 0.001
    assert text.rope_parameters["rope_type"] == "yarn"
    assert config.audio_config.d_model == 1024 and config.audio_config.num_mel_bins == 80
    assert config.adapter_intermediate_size == 7168
    assert config.codec_config.codebook_size == 4096


def test_vocabulary_layout_matches_design():
    config = DeepOmniConfig()
    assert config.padded_text_vocab_size == 102464
    assert config.audio_slot_vocab_size == 4160
    assert config.total_vocab_size == 131584 == config.text_config.vocab_size
    assert [config.audio_slot_offset(i) for i in (0, 6)] == [102464, 102464 + 6 * 4160]
    assert [config.text_token_id(n) for n in ("EOT", "PAD_T", "BOT", "ANS_T", "TTS", "TQA", "TQAA")] == list(
        range(102400, 102407)
    )
    assert config.audio_code("EOA") == 4096 and config.audio_code("ER") == 4105
    assert config.audio_token_id("PAD_A", 3) == 102464 + 3 * 4160 + 4097


def test_config_round_trip_through_auto_config(tmp_path):
    config = tiny_config()
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, DeepOmniConfig)
    assert loaded.text_config.speech_experts == config.text_config.speech_experts
    as_dicts = [{k: v for k, v in c.to_dict().items() if k != "_name_or_path"} for c in (loaded, config)]
    assert as_dicts[0] == as_dicts[1]


def _text(**overrides):
    return DeepOmniTextConfig(**dict(TINY_TEXT, vocab_size=1000, **overrides))


@pytest.mark.parametrize(
    ("speech_experts", "routing_mode", "message"),
    [
        ([[], [0, 8], []], "all", "out of range"),
        ([[], [1, 1, 2], []], "all", "more than once"),
        ([[0, 1], [1, 2], []], "all", "dense layer"),
        ([[], [0, 1, 2, 3, 4, 5, 6], []], "all", "leaves 1 text experts"),
        ([[], [3], []], "all", "fewer than the 2 experts"),
        ([[], [0, 1]], "all", "one list per decoder layer"),
        ([[], [0, 1], []], "speech", "none assigned"),
        ([[], [0, 1], [2, 3]], "sideways", "routing_mode must be one of"),
    ],
)
def test_bad_speech_experts_are_named(speech_experts, routing_mode, message):
    with pytest.raises(StrictDataclassClassValidationError, match=message):
        _text(speech_experts=speech_experts, routing_mode=routing_mode)


def test_vocab_that_does_not_add_up_is_rejected():
    with pytest.raises(StrictDataclassClassValidationError, match="8-stream layout needs"):
        tiny_config(vocab_size=5000)


def test_too_many_specials_are_rejected():
    with pytest.raises(StrictDataclassClassValidationError, match="do not fit"):
        DeepOmniConfig(audio_special_tokens=[f"S{i}" for i in range(65)] + ["EOA", "PAD_A", "BOA", "ANS_A"])

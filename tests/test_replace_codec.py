"""`replace_codec` / `deepomni replace-codec`: a decoder fine-tuned with the codes frozen replaces a checkpoint's codec;
a codec that assigns other codes is refused; `--dtype float16` halves the file and the model still loads."""

import pytest
import torch
from safetensors.torch import load_file

from deepomni_hf import DeepOmniCodecModel
from deepomni_hf.cli import main
from deepomni_hf.hub.conversion import replace_codec
from deepomni_hf.modeling import DeepOmniForConditionalGeneration
from deepomni_hf.tiny import save_tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


def _codec(checkpoint, folder, perturb: str):
    """The checkpoint's own codec with the tensors under `perturb` (e.g. "decoder.") changed."""
    codec = DeepOmniForConditionalGeneration.from_pretrained(checkpoint).codec_model
    with torch.no_grad():
        for name, parameter in codec.named_parameters():
            if name.startswith(perturb):
                parameter.add_(0.05 * torch.randn_like(parameter))
    codec.save_pretrained(folder)
    return folder


def test_new_decoder_replaces_the_codec_and_nothing_else(checkpoint, tmp_path):
    codec = _codec(checkpoint, tmp_path / "codec", "decoder.")
    result = replace_codec(checkpoint, codec, tmp_path / "out")
    assert result.codes_checked > 0 and result.codes_differing == 0
    before, after = load_file(checkpoint / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    new = DeepOmniCodecModel.from_pretrained(codec).state_dict()
    assert before.keys() == after.keys()
    for name in before:
        if name.startswith("codec_model."):
            assert torch.equal(after[name], new[name.removeprefix("codec_model.")]), name
        else:
            assert torch.equal(after[name], before[name]), name
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("codec_model.decoder."))
    assert (tmp_path / "out" / "processor_config.json").read_bytes() == (checkpoint / "processor_config.json").read_bytes()
    model = DeepOmniForConditionalGeneration.from_pretrained(tmp_path / "out")
    assert torch.equal(model.codec_model.state_dict()["decoder.model.0.bias"], new["decoder.model.0.bias"])


def test_a_codec_with_other_codes_is_refused(checkpoint, tmp_path, capsys):
    codec = _codec(checkpoint, tmp_path / "codec", "encoder.")
    code = main(["replace-codec", str(checkpoint), "--codec", str(codec), "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 1 and "assigns other codes" in error and "--freeze-codes" in error
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    result = replace_codec(checkpoint, codec, tmp_path / "out", allow_new_codes=True)
    assert result.codes_differing > 0 and "retrained" in result.notes[0]


def test_float16_output_loads_in_the_configs_precision(checkpoint, tmp_path):
    codec = _codec(checkpoint, tmp_path / "codec", "decoder.")
    main(["replace-codec", str(checkpoint), "--codec", str(codec), "--output", str(tmp_path / "half"), "--dtype", "float16"])
    stored = load_file(tmp_path / "half" / "model.safetensors")
    assert {t.dtype for t in stored.values() if t.is_floating_point()} == {torch.float16}
    full = (checkpoint / "model.safetensors").stat().st_size
    assert (tmp_path / "half" / "model.safetensors").stat().st_size < 0.55 * full
    model = DeepOmniForConditionalGeneration.from_pretrained(tmp_path / "half")
    reference = DeepOmniForConditionalGeneration.from_pretrained(checkpoint)
    name = "model.language_model.embed_tokens.weight"
    weight = dict(model.named_parameters())[name]
    assert weight.dtype == torch.float32  # config.json's dtype: computes in float32
    assert torch.equal(weight, dict(reference.named_parameters())[name].half().float())

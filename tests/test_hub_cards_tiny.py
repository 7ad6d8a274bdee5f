# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""DeepOmni-Tiny's model card (`hub_cards/model_card_deepomni_tiny.md`) through `deepomni push model --card-template
deepomni_tiny --reproduction R.json --eval-results E.json --dry-run`: the numbers of the JSON files and of the checkpoint
appear in the card, its metadata validates, and a missing or malformed file is one error line. Offline, a tiny random
checkpoint."""

import json

import pytest
import torch
from text_fixtures import tiny_deepomni_config, tiny_tokenizer

from deepomni_hf import DeepOmniForConditionalGeneration
from deepomni_hf.hub.card_facts import checkpoint_parameters, load_reproduction, spoken_qa_domain
from deepomni_hf.hub.cards import card_metadata, check_card_metadata, render_model_card


REPO_ID = "deepomni/DeepOmni-Tiny"
# Values no formatting of another number would produce by chance.
REPRODUCTION = {
    "benchmark": "issue 12 reproduction: DeepOmni-Tiny arms under `deepomni evaluate`",
    "run": "/runs/tiny", "suites": "text,spoken-qa,latency,routing", "limit": None, "text_per_type": 40,
    "spoken_per_type": 20, "sample_seed": 3,
    "arms": {
        "base": {"label": "(a) base", "checkpoint": "/runs/tiny/converted",
                 "metrics": {"text/text_accuracy": 0.9481, "text/text_accuracy_relative_drop": None,
                             "spoken-qa/text_accuracy": None, "spoken-qa/speech_accuracy": None,
                             "latency/ttfa_s": None, "routing/routing_separation": None}},
        "deepomni": {"label": "(b) DeepOmni", "checkpoint": "/runs/tiny/stage3-joint",
                     "positions_trained_last_stage": 123457,
                     "metrics": {"text/text_accuracy": 0.9137, "text/text_accuracy_relative_drop": 0.0363,
                                 "spoken-qa/text_accuracy": 0.8412, "spoken-qa/speech_accuracy": 0.6623,
                                 "spoken-qa/answer_code_error_rate": 0.4321, "spoken-qa/consistency_wer": 0.2187,
                                 "spoken-qa/ended_on_own": 0.9876, "latency/ttfa_s": 1.2345,
                                 "routing/routing_separation": 0.7771}},
        "naive": {"label": "(c) naive", "checkpoint": "/runs/tiny/baseline-naive",
                  "metrics": {"text/text_accuracy": 0.6129, "text/text_accuracy_relative_drop": 0.3536,
                              "spoken-qa/speech_accuracy": 0.6911}},
    },
    "verdict": "(b) text drop +3.6% vs (c) +35.4% (at most a third); claim reproduced (test verdict 4711)",
    "table": "| arm | ... |",
}  # fmt: skip
EVAL_RESULTS = [
    {"task_type": "question-answering", "task_name": "deepomni evaluate --suite spoken-qa", "dataset_type": "local",
     "dataset_name": "spoken-qa (held out)", "dataset_split": "test", "metric_type": "speech_accuracy",
     "metric_value": 0.662345, "metric_name": "speech_accuracy (n=120, judge whisper-tiny.en)"},
    {"task_type": "text-generation", "task_name": "deepomni evaluate --suite text", "dataset_type": "local",
     "dataset_name": "qa-text (held out)", "dataset_split": "test", "metric_type": "text_accuracy",
     "metric_value": 0.913777},
]  # fmt: skip


def _save(folder, config):
    from deepomni_hf.processors import DeepOmniProcessor

    torch.manual_seed(0)
    model = DeepOmniForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    DeepOmniProcessor.from_model_config(config, tiny_tokenizer()).save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random DeepOmni saved like the shipped model, with the `train_result.json` of its last run."""
    folder = tmp_path_factory.mktemp("tiny") / "final"
    model = _save(folder, tiny_deepomni_config())
    (folder / "train_result.json").write_text(json.dumps({
        "stage": "dpo", "routing_mode": "all", "data": ["x"], "seed": 0, "positions_trained": 98765,
        "metrics": {"train_runtime": 1234.5, "train_loss": 0.123456}, "log_history": [{"loss": 9.87654}],
    }))  # fmt: skip
    return {"dir": folder, "model": model}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "reproduction.json").write_text(json.dumps(REPRODUCTION))
    (tmp_path / "eval_results.json").write_text(json.dumps(EVAL_RESULTS))
    return tmp_path


def _push_dry_run(checkpoint, *options):
    from deepomni_hf.cli import main

    return main(["push", "model", str(checkpoint["dir"]), "--repo-id", REPO_ID, "--card-template", "deepomni_tiny",
                 "--dry-run", *options])  # fmt: skip


def test_dry_run_renders_the_tiny_card_with_the_numbers_of_the_json_files(checkpoint, files, capsys):
    from huggingface_hub import ModelCard

    code = _push_dry_run(checkpoint, "--reproduction", str(files / "reproduction.json"),
                         "--eval-results", str(files / "eval_results.json"))  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    text = out.split("\nwould upload ")[0]
    assert "README.md" in out.split("\nwould upload ")[1]
    assert "{{" not in text and "{%" not in text

    card = ModelCard(text)
    assert check_card_metadata(card) == []
    metadata = card_metadata(card)
    # The template's own defaults: no DeepSeek weights, so neither DeepSeek's license nor its checkpoint as base.
    assert metadata["base_model"] == "openai/whisper-tiny.en" and metadata["license"] == "apache-2.0"
    assert metadata["pipeline_tag"] == "any-to-any" and "deepomni-tiny" in metadata["tags"]
    assert [r.metric_value for r in card.data.eval_results] == [0.662345, 0.913777]
    assert card.data.model_name == "DeepOmni-Tiny"

    # Reproduction: one row per arm, formatted from the JSON; missing metrics as "—"; settings, verdict, positions.
    assert "| arm | text-QA acc. | rel. text drop vs (a) | spoken-QA acc. (text) | spoken-QA acc. (speech, judge) |" in text
    assert "| (b) DeepOmni | 91.4% | +3.6% | 84.1% | 66.2% | 0.43 | 21.9% | 98.8% | 1.23 | 0.777 |" in text
    assert "| (c) naive | 61.3% | +35.4% | — | 69.1% | — | — | — | — | — |" in text
    assert "| (a) base | 94.8% | — |" in text
    assert "claim reproduced (test verdict 4711)" in text
    assert "text questions per type 40; spoken questions per type 20; sample seed 3" in text
    assert "(b) DeepOmni 123457" in text
    # Evaluation table from the eval results.
    assert "| speech_accuracy (n=120, judge whisper-tiny.en) | 0.662345 |" in text and "| 0.913777 |" in text
    # Facts read from the checkpoint and from the package's domain tables.
    config = checkpoint["model"].config
    total = sum(p.numel() for p in checkpoint["model"].parameters())
    assert f"| **total** | | **{total / 1e6:.2f} M** |" in text
    assert f"width {config.adapter_intermediate_size} |" in text
    assert f"hidden {config.text_config.hidden_size}, {config.text_config.num_hidden_layers} layers" in text
    for row in spoken_qa_domain():
        assert f"| {row['type']} | {row['description']} | {row['facts']} | {row['phrasings']} |" in text
    assert "| positions trained | 98765 |" in text and "| train minutes | 20.6 |" in text
    assert "9.87654" not in text  # the log history stays out
    # The recipe, with what each stage trains as the trainer's plans say.
    assert "deepomni assign-experts" in text and "`python examples/train_stage.py --stage joint" in text
    assert "| 2-speech — speech experts |" in text


def test_without_reproduction_the_card_says_how_to_add_it(checkpoint):
    card = render_model_card(checkpoint["dir"], REPO_ID, "dpo", card_template="deepomni_tiny")
    assert "No reproduction summary was given" in card.text and "No evaluation numbers were given" in card.text
    assert check_card_metadata(card) == [] and "{{" not in card.text


def test_missing_or_malformed_files_are_one_error_line(checkpoint, files, capsys):
    cases = [
        (["--reproduction", str(files / "nope.json")], "Reproduction summary not found: "),
        (["--reproduction", str(files / "eval_results.json")], "is not a reproduction summary: it needs"),
        (["--card-template", "no_such_card"], "Card template 'no_such_card' not found"),
        (["--card-template", str(files / "missing.md")], "not found"),
    ]
    (files / "text.json").write_text("{not json")
    cases.append((["--reproduction", str(files / "text.json")], "is not valid JSON"))
    for options, message in cases:
        assert _push_dry_run(checkpoint, *options) == 1, options
        captured = capsys.readouterr()
        assert captured.out == ""  # no card printed
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("deepomni push model: error: ") and message in lines[0], lines
    with pytest.raises(FileNotFoundError, match="deepomni_tiny, dpo, joint"):
        render_model_card(checkpoint["dir"], REPO_ID, card_template="no_such_card")
    with pytest.raises(ValueError, match="arm 'naive' has non-numeric metric"):
        load_reproduction({"arms": {"naive": {"label": "(c)", "metrics": {"text/text_accuracy": "high"}}}})


def test_a_template_file_gets_the_same_context_and_keeps_the_default_metadata(checkpoint, files):
    template = files / "card.md"
    template.write_text("---\n{{ card_data }}\n---\n\n# {{ model_title }}\n\n"
                        "{{ reproduction_table.rows[1].cells[1] }} / {{ parameters.codec.count }}\n")  # fmt: skip
    card = render_model_card(checkpoint["dir"], REPO_ID, card_template=template,
                             reproduction=files / "reproduction.json")  # fmt: skip
    codec = sum(p.numel() for p in checkpoint["model"].codec_model.parameters())
    assert f"+3.6% / {codec}" in card.text
    assert card_metadata(card)["license"] == "other"  # a file template brings no defaults: DeepOmni's own


@pytest.mark.parametrize("tied", [True, False])
def test_parameter_counts_match_the_model_and_its_text_llm(checkpoint, tmp_path, tied):
    """`text_llm` is the backbone as the text LLM it was converted from: a `DeepseekV2ForCausalLM` over the text
    vocabulary only, with its own head when the head is untied."""
    from transformers import DeepseekV2Config, DeepseekV2ForCausalLM

    if tied:
        folder, model = checkpoint["dir"], checkpoint["model"]
    else:
        config = tiny_deepomni_config(tie_word_embeddings=False)
        config.tie_word_embeddings = False
        folder = tmp_path / "untied"
        model = _save(folder, config)
    counts = checkpoint_parameters(folder, json.loads((folder / "config.json").read_text()))
    numel = lambda module: sum(p.numel() for p in module.parameters())
    assert counts["total"]["count"] == numel(model)
    assert counts["audio_encoder"]["count"] == numel(model.model.audio_tower)
    assert counts["codec"]["count"] == numel(model.codec_model)
    assert (counts["output_head"]["count"] == 0) == tied
    text = model.config.text_config.to_dict()
    fields = DeepseekV2Config().to_dict().keys()
    base = DeepseekV2Config(**{k: v for k, v in text.items() if k in fields and k not in ("architectures", "model_type")})
    base.vocab_size, base.tie_word_embeddings = model.config.text_vocab_size, tied
    assert counts["text_llm"]["count"] == numel(DeepseekV2ForCausalLM(base))

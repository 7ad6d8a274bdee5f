# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Model and dataset cards for DeepOmni checkpoints and training data, rendered from the Jinja templates in
`hub_cards/` with `huggingface_hub`'s card templating (`ModelCard.from_template` / `DatasetCard.from_template`).

There is one model-card template per training stage (`hub_cards/model_card_<stage>.md`, DESIGN §5 and §7) and one
dataset-card template (`hub_cards/dataset_card.md`). The metadata (the YAML header the Hub indexes) is built here:

* `library_name: transformers`;
* `pipeline_tag: any-to-any`. DeepOmni takes speech (or text) in and answers with text *and* speech. The Hub's
  `audio-to-audio` task is audio in → audio out only (speech enhancement, source separation, codecs), so it would
  hide the text side of the model; the Hub files unified speech/text LLMs that both understand and generate under
  `any-to-any` (the task whose transformers pipeline is served by `AutoModelForMultimodalLM`, the Auto class DeepOmni
  registers). `speech-to-speech` (the name of this package's transformers pipeline) is not a Hub pipeline tag; it is
  added as a tag;
* `base_model`: the three checkpoints DeepOmni is built from (`BASE_CHECKPOINTS`), or the repo of the previous stage
  when given; `license` (default: DeepSeek's model license, which the backbone's weights carry); `datasets`;
  `language`; `tags`; `model-index` from `EvalResult`s when evaluation numbers are given.

The body states the stage, what it trained and what it froze, the speech/text expert split read from the checkpoint's
`config.json`, evaluation numbers and a usage snippet.

Stage plans: what each stage trains and freezes, its routing mode and published lr / epochs are read from the
trainer's own plans (`deepomni_hf.training.stages.STAGES`, see `stage_plan`), so a card states what the trainer
did. `STAGE_PLANS` here holds the stage's prose (title, data, the Hub task categories of its data, the stage it
starts from), the `converted` pseudo-stage the trainer has no plan for, and a DESIGN §5 fallback for the groups.

`card.validate()` posts the card to the Hub's `/api/validate-yaml`, which needs network; `check_card_metadata` does
the checks that matter locally instead: the YAML header parses to a mapping, the metadata survives a round trip
through `ModelCardData` / `DatasetCardData` (so the Hub and `huggingface_hub` read back what was written), and the
fields the Hub validates have valid shapes and values (`model-index` parseable into `EvalResult`s, repo ids,
license, pipeline tag, language codes).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import (
    DatasetCard,
    DatasetCardData,
    EvalResult,
    ModelCard,
    ModelCardData,
)
from huggingface_hub.repocard_data import model_index_to_eval_results


BASE_CHECKPOINTS = ("deepseek-ai/DeepSeek-V2-Lite-Chat", "openai/whisper-medium", "hubertsiuzdak/snac_24khz")
LIBRARY_NAME = "transformers"
PIPELINE_TAG = "any-to-any"
# DeepSeek-V2-Lite-Chat's weights are under the DeepSeek model license; a model built on them inherits it.
DEFAULT_LICENSE = "other"
DEFAULT_LICENSE_NAME = "deepseek"
DEFAULT_LICENSE_LINK = "https://github.com/deepseek-ai/DeepSeek-V2/blob/main/LICENSE-MODEL"
DEFAULT_LANGUAGE = ("en",)
MODEL_TAGS = ("deepomni", "speech-to-speech", "spoken-dialogue", "moe", "mixture-of-experts", "speech", "audio")
DATASET_TAGS = ("deepomni", "speech-to-speech", "speech", "audio")
PAPER_URL = "https://arxiv.org/abs/2506.21864"
TEMPLATES_ENV = "DEEPOMNI_HUB_CARDS"

# Hub pipeline tags this module may write or accept (a subset of the Hub's task list).
HUB_PIPELINE_TAGS = frozenset({
    "any-to-any", "audio-to-audio", "audio-text-to-text", "automatic-speech-recognition", "text-to-speech",
    "text-to-audio", "text-generation", "question-answering", "audio-classification", "feature-extraction",
})  # fmt: skip
# Common license ids of the Hub (https://huggingface.co/docs/hub/repositories-licenses); "other" needs a name + link.
HUB_LICENSES = frozenset({
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "llama2", "llama3", "llama3.1",
    "llama3.2", "gemma", "gpl-3.0", "lgpl-3.0", "agpl-3.0", "bsd-3-clause", "bsd-2-clause", "cc0-1.0", "cc-by-4.0",
    "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "cc-by-3.0", "cc-by-sa-3.0", "odc-by",
    "odbl", "pddl", "unlicense", "mpl-2.0", "artistic-2.0", "deepfloyd-if-license", "other", "unknown",
})  # fmt: skip
SIZE_CATEGORIES = ((10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
                   (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
                   (10**11, "10B<n<100B"), (10**12, "100B<n<1T"))  # fmt: skip
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LANGUAGE = re.compile(r"^([a-z]{2,3}(-[A-Za-z0-9]+)*|code|multilingual)$")


@dataclasses.dataclass(frozen=True)
class StagePlan:
    """One training stage of DESIGN §5: its data, what it trains and freezes, its routing mode, published lr/epochs."""

    name: str
    number: str  # the stage's label in the paper's numbering ("1", "2-speech", ...; "0" for the converted model)
    title: str
    data: str
    trainable: tuple[str, ...]
    frozen: tuple[str, ...]
    routing: str
    learning_rate: float | None = None
    epochs: int | None = None
    task_categories: tuple[str, ...] = ()  # Hub task categories of this stage's training data
    previous: str | None = None  # the stage this one starts from


STAGE_PLANS: dict[str, StagePlan] = {
    plan.name: plan
    for plan in (
        StagePlan(
            "converted", "0", "conversion (no training)",
            "none: the backbone, Whisper encoder and SNAC codec are copied from their checkpoints",
            trainable=(), frozen=(), routing="all",
        ),
        StagePlan(
            "alignment", "1", "speech-text alignment", "ASR: speech → transcript",
            trainable=("speech adapter", "extended embeddings / tied output head"),
            frozen=("backbone LLM", "Whisper encoder"),
            routing="all", learning_rate=2e-5, epochs=1,
            task_categories=("automatic-speech-recognition",), previous="converted",
        ),
        StagePlan(
            "speech", "2-speech", "speech experts", "spoken QA: speech question → text + speech answer",
            trainable=("speech experts", "routers", "shared experts", "embeddings", "output head (tied)",
                       "dense layer", "norms"),
            frozen=("text experts", "attention of the MoE layers", "Whisper encoder", "speech adapter"),
            routing="speech", learning_rate=1e-4, epochs=2,
            task_categories=("any-to-any", "question-answering"), previous="alignment",
        ),
        StagePlan(
            "text", "2-text", "text experts", "text QA / instructions: text → text",
            trainable=("text experts", "routers", "shared experts", "embeddings", "output head (tied)",
                       "dense layer", "norms"),
            frozen=("speech experts", "attention of the MoE layers", "Whisper encoder", "speech adapter"),
            routing="text", learning_rate=2e-5, epochs=2,
            task_categories=("text-generation", "question-answering"), previous="speech",
        ),
        StagePlan(
            "joint", "3", "joint training",
            "a mix of spoken QA and text QA; text questions are fed as speech with probability 0.7",
            trainable=("everything except the Whisper encoder and the speech adapter",),
            frozen=("Whisper encoder", "speech adapter"),
            routing="all", learning_rate=5e-5, epochs=2,
            task_categories=("any-to-any", "text-generation"), previous="text",
        ),
        StagePlan(
            "dpo", "DPO", "preference optimisation of the speech output",
            "pairs of chosen / rejected codec sequences for one answer",
            trainable=("the whole model (a frozen copy serves as the DPO reference)",), frozen=(),
            routing="all", learning_rate=2e-5, epochs=1,
            task_categories=("any-to-any",), previous="joint",
        ),
    )
}  # fmt: skip
STAGES = tuple(STAGE_PLANS)
_STAGE_ALIASES = {
    "0": "converted", "convert": "converted", "base": "converted",
    "1": "alignment", "stage1": "alignment", "align": "alignment", "asr": "alignment",
    "2-speech": "speech", "2speech": "speech", "stage2-speech": "speech", "speech-experts": "speech",
    "2-text": "text", "2text": "text", "stage2-text": "text", "text-experts": "text",
    "3": "joint", "stage3": "joint",
    "4": "dpo", "stage4": "dpo",
}  # fmt: skip


def resolve_stage(stage: str | None) -> str | None:
    """A stage name or alias (`"1"`, `"2-speech"`, `"stage3"`, ...) → one of `STAGES`; `None` stays `None` (the
    stage was not stated: the card then shows the whole recipe instead of one stage)."""
    if stage is None:
        return None
    key = str(stage).strip().lower().replace("_", "-")
    key = _STAGE_ALIASES.get(key, key)
    if key not in STAGE_PLANS:
        raise ValueError(f"Unknown stage {stage!r}: expected one of {', '.join(STAGES)} (or 1, 2-speech, 2-text, 3).")
    return key


# Display names of the parameter groups of `deepomni_hf.training.stages.PARAMETER_GROUPS`.
_GROUP_LABELS = {
    "whisper": "Whisper encoder", "adapter": "speech adapter", "text_embeddings": "text embedding rows",
    "extended_embeddings": "new embedding rows (specials, audio codes)", "dense_layers": "dense layer",
    "moe_attention": "attention of the MoE layers", "norms": "norms", "routers": "routers",
    "shared_experts": "shared experts", "speech_experts": "speech experts", "text_experts": "text experts",
    "codec": "SNAC codec",
}  # fmt: skip


def stage_plan(stage: str | None) -> StagePlan | None:
    """The plan of one stage as the cards state it (`None` for an unstated stage).

    The trainable / frozen groups, routing mode, learning rate and epochs come from the trainer's own plans
    (`deepomni_hf.training.stages.STAGES`) when that module is importable, so the card says what the trainer did;
    `STAGE_PLANS` (DESIGN §5) is the fallback and supplies the prose (title, data, task categories).
    """
    name = resolve_stage(stage)
    if name is None:
        return None
    plan = STAGE_PLANS[name]
    try:
        from ..training.stages import PARAMETER_GROUPS
        from ..training.stages import STAGES as TRAINING_STAGES
    except ImportError:
        return plan
    trained = TRAINING_STAGES.get(name)
    if trained is None:
        return plan
    label = lambda group: _GROUP_LABELS.get(group, group.replace("_", " "))
    groups = list(PARAMETER_GROUPS)
    return dataclasses.replace(
        plan,
        trainable=tuple(label(g) for g in groups if g in trained.trainable),
        frozen=tuple(label(g) for g in groups if g not in trained.trainable),
        routing=trained.routing_mode,
        learning_rate=trained.learning_rate,
        epochs=trained.num_train_epochs,
    )


# --- the checkpoint's expert split ----------------------------------------------------------------------------------
@dataclasses.dataclass
class ExpertSplit:
    """The speech / text expert split of a DeepOmni checkpoint, from `config.text_config` (DESIGN §4)."""

    num_layers: int
    moe_layers: list[int]
    n_routed_experts: int
    n_shared_experts: int
    top_k: int
    routing_mode: str
    speech_experts: list[list[int]]

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Any) -> ExpertSplit:
        """From a `DeepOmniConfig`, its `to_dict()`, or a `config.json` read as a dict."""
        if not isinstance(config, Mapping):
            config = config.to_dict()
        text = config.get("text_config") or {}
        if not isinstance(text, Mapping):
            text = text.to_dict()
        num_layers = int(text.get("num_hidden_layers", 0))
        first_dense = int(text.get("first_k_dense_replace", 0) or 0)
        speech = [sorted(int(e) for e in layer) for layer in (text.get("speech_experts") or [])]
        speech += [[] for _ in range(num_layers - len(speech))]
        return cls(
            num_layers=num_layers,
            moe_layers=list(range(first_dense, num_layers)),
            n_routed_experts=int(text.get("n_routed_experts", 0) or 0),
            n_shared_experts=int(text.get("n_shared_experts", 0) or 0),
            top_k=int(text.get("num_experts_per_tok", 0) or 0),
            routing_mode=str(text.get("routing_mode", "all")),
            speech_experts=speech,
        )

    @property
    def assigned(self) -> bool:
        """Whether every MoE layer has its speech experts assigned."""
        return bool(self.moe_layers) and all(self.speech_experts[layer] for layer in self.moe_layers)

    @property
    def total_speech(self) -> int:
        return sum(len(self.speech_experts[layer]) for layer in self.moe_layers)

    @property
    def total_text(self) -> int:
        return len(self.moe_layers) * self.n_routed_experts - self.total_speech

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One row per MoE layer: layer index, speech / text counts and the speech expert ids (compact ranges)."""
        return [
            {
                "layer": layer,
                "speech": len(self.speech_experts[layer]),
                "text": self.n_routed_experts - len(self.speech_experts[layer]),
                "speech_ids": _ranges(self.speech_experts[layer]) or "—",
            }
            for layer in self.moe_layers
        ]

    @property
    def summary(self) -> str:
        """One sentence: the totals, in the words the cards use."""
        if not self.moe_layers:
            return "This checkpoint has no MoE layers."
        layers = len(self.moe_layers)
        if not self.assigned:
            return (
                f"Speech experts are not assigned yet: each of the {layers} MoE layers routes over all "
                f"{self.n_routed_experts} routed experts."
            )
        counts = sorted({row["speech"] for row in self.rows})
        per_layer = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        return (
            f"{self.total_speech} speech experts and {self.total_text} text experts over {layers} MoE layers "
            f"({per_layer} speech experts per layer, of {self.n_routed_experts} routed experts)."
        )


def _ranges(ids: Sequence[int]) -> str:
    """[0, 1, 2, 5, 7, 8] → "0–2, 5, 7–8"."""
    parts, ids = [], sorted(ids)
    start = prev = None
    for i in [*ids, None]:
        if start is not None and (i is None or i != prev + 1):
            parts.append(str(start) if start == prev else f"{start}–{prev}")
            start = None
        if i is not None and start is None:
            start = i
        prev = i
    return ", ".join(parts)


# --- templates ------------------------------------------------------------------------------------------------------
def templates_dir(path: str | os.PathLike | None = None) -> Path:
    """The card templates folder: `path`, else `$DEEPOMNI_HUB_CARDS`, else the packaged `deepomni_hf/hub_cards`.

    The templates live in `hub_cards/` at the repository root; `src/deepomni_hf/hub_cards` links there, so a
    checkout and an installed wheel (which ships them as package data) find them at the same place.
    """
    candidates = [path, os.environ.get(TEMPLATES_ENV), Path(__file__).parent.parent / "hub_cards"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "dataset_card.md").is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "Could not find the card templates (hub_cards/dataset_card.md). Pass template_dir=, or set "
        f"{TEMPLATES_ENV} to the hub_cards/ folder of the deepomni_hf sources (an install whose package lacks "
        "deepomni_hf/hub_cards is incomplete: reinstall it)."
    )


def model_card_template(stage: str | None, template_dir: str | os.PathLike | None = None) -> Path:
    """`hub_cards/model_card_<stage>.md`, or `hub_cards/model_card.md` when the stage is not stated."""
    name = resolve_stage(stage)
    path = templates_dir(template_dir) / (f"model_card_{name}.md" if name else "model_card.md")
    if not path.is_file():
        raise FileNotFoundError(f"Missing model-card template {path}.")
    return path


# --- evaluation results ---------------------------------------------------------------------------------------------
_EVAL_FIELDS = {f.name for f in dataclasses.fields(EvalResult)}


def load_eval_results(source: str | os.PathLike | Iterable | Mapping | None) -> list[EvalResult]:
    """Evaluation results as `EvalResult`s, from a JSON file path, a list of dicts / `EvalResult`s, or `None`.

    Each dict takes `EvalResult`'s fields; `task_type`, `dataset_type`, `dataset_name`, `metric_type` and
    `metric_value` are required, e.g. `{"task_type": "automatic-speech-recognition", "dataset_type":
    "openslr/librispeech_asr", "dataset_name": "LibriSpeech test-clean", "dataset_split": "test", "metric_type":
    "wer", "metric_value": 5.1}`. A JSON file holds such a list (or `{"results": [...]}`): `deepomni evaluate` writes
    one as `eval_results.json`; its `results.json` is accepted too (the model's rows become `EvalResult`s).
    """
    if source is None:
        return []
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"Evaluation results file not found: {path}")
        try:
            source = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
    if isinstance(source, Mapping) and str(source.get("schema", "")).startswith("deepomni-evaluate/"):
        from ..evaluation.results import model_index_results  # a `deepomni evaluate` results.json

        source = model_index_results(source)
    if isinstance(source, Mapping):
        source = source.get("results", [source]) if "results" in source or "task_type" in source else None
        if source is None:
            raise ValueError("Evaluation results must be a list of objects (or {'results': [...]}).")
    results = []
    for index, item in enumerate(source):
        if isinstance(item, EvalResult):
            results.append(item)
            continue
        if not isinstance(item, Mapping):
            raise ValueError(f"Evaluation result #{index} must be an object, got {type(item).__name__}.")
        unknown = sorted(set(item) - _EVAL_FIELDS)
        if unknown:
            raise ValueError(
                f"Evaluation result #{index} has unknown field(s) {unknown}; allowed: {sorted(_EVAL_FIELDS)}."
            )
        try:
            results.append(EvalResult(**item))
        except TypeError as error:
            raise ValueError(f"Evaluation result #{index} is incomplete: {error}") from error
    return results


# --- model cards ----------------------------------------------------------------------------------------------------
def read_checkpoint_config(checkpoint_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(checkpoint_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint_dir} has no config.json: not a saved DeepOmni checkpoint.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def _as_list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def model_card_data(
    *,
    repo_id: str,
    base_model: str | Sequence[str] | None = None,
    datasets: str | Sequence[str] | None = None,
    eval_results: Sequence[EvalResult] | None = None,
    license: str | None = None,
    license_name: str | None = None,
    license_link: str | None = None,
    language: str | Sequence[str] | None = DEFAULT_LANGUAGE,
    tags: Sequence[str] = (),
) -> ModelCardData:
    """The YAML header of a DeepOmni model card (see the module docstring for each field)."""
    if license is None:
        license, license_name, license_link = DEFAULT_LICENSE, DEFAULT_LICENSE_NAME, DEFAULT_LICENSE_LINK
    base = _as_list(base_model) or list(BASE_CHECKPOINTS)
    return ModelCardData(
        library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG,
        license=license,
        license_name=license_name if license == "other" else None,
        license_link=license_link if license == "other" else None,
        base_model=base[0] if len(base) == 1 else base,
        datasets=_as_list(datasets) or None,
        language=_as_list(language) or None,
        tags=list(dict.fromkeys([*MODEL_TAGS, *tags])),
        eval_results=list(eval_results) if eval_results else None,
        model_name=repo_id.split("/")[-1] if eval_results else None,
    )


def render_model_card(
    checkpoint_dir: str | os.PathLike,
    repo_id: str,
    stage: str | None = None,
    *,
    base_model: str | Sequence[str] | None = None,
    datasets: str | Sequence[str] | None = None,
    eval_results: str | os.PathLike | Iterable | None = None,
    license: str | None = None,
    license_name: str | None = None,
    license_link: str | None = None,
    language: str | Sequence[str] | None = DEFAULT_LANGUAGE,
    tags: Sequence[str] = (),
    template_dir: str | os.PathLike | None = None,
) -> ModelCard:
    """Renders the model card of the checkpoint in `checkpoint_dir` for `repo_id`, from the stage's template.

    `stage` is one of `STAGES` or an alias; `None` when unknown (a generic card showing the whole recipe).
    `base_model` defaults to the three base checkpoints (`BASE_CHECKPOINTS`); pass the previous stage's repo id for a
    later stage. The card is checked with `check_card_metadata` (raises `ValueError` naming the problems).
    """
    stage = resolve_stage(stage)
    plan = stage_plan(stage)
    config = read_checkpoint_config(checkpoint_dir)
    results = load_eval_results(eval_results)
    data = model_card_data(
        repo_id=repo_id, base_model=base_model, datasets=datasets, eval_results=results, license=license,
        license_name=license_name, license_link=license_link, language=language, tags=tags,
    )  # fmt: skip
    files = {p.name for p in Path(checkpoint_dir).iterdir()}
    text = config.get("text_config") or {}
    audio = config.get("audio_config") or {}
    card = ModelCard.from_template(
        data,
        template_path=str(model_card_template(stage, template_dir)),
        repo_id=repo_id,
        model_title=repo_id.split("/")[-1],
        stage=stage,
        plan=plan,
        previous_plan=stage_plan(plan.previous) if plan and plan.previous else None,
        all_plans=[stage_plan(name) for name in STAGES],
        base_models=_as_list(data.base_model),
        derived_from_base=set(_as_list(data.base_model)) == set(BASE_CHECKPOINTS),
        experts=ExpertSplit.from_config(config),
        results=results,
        training_datasets=_as_list(datasets),
        has_processor=bool(files & {"processor_config.json", "tokenizer.json", "tokenizer_config.json"}),
        remote_code=bool(config.get("auto_map")),
        paper_url=PAPER_URL,
        model_facts={
            "hidden size": text.get("hidden_size"),
            "decoder layers": text.get("num_hidden_layers"),
            "routed experts per MoE layer": text.get("n_routed_experts"),
            "experts per token (top-k)": text.get("num_experts_per_tok"),
            "shared experts": text.get("n_shared_experts"),
            "text vocabulary": config.get("text_vocab_size"),
            "audio encoder width": audio.get("d_model"),
        },
    )
    problems = check_card_metadata(card)
    if problems:
        raise ValueError("The rendered model card has invalid metadata:\n- " + "\n- ".join(problems))
    return card


# --- dataset cards --------------------------------------------------------------------------------------------------
def size_category(num_rows: int) -> str:
    for bound, label in SIZE_CATEGORIES:
        if num_rows < bound:
            return label
    return "n>1T"


def render_dataset_card(
    repo_id: str,
    *,
    splits: Mapping[str, int],
    features: Any,
    stage: str | None = None,
    license: str | None = None,
    language: str | Sequence[str] | None = DEFAULT_LANGUAGE,
    pretty_name: str | None = None,
    description: str | None = None,
    tags: Sequence[str] = (),
    extra_metadata: Mapping[str, Any] | None = None,
    template_dir: str | os.PathLike | None = None,
) -> DatasetCard:
    """Renders a dataset card for a DeepOmni training set.

    `splits` maps split names to row counts; `features` is the `datasets.Features` (listed in the body);
    `extra_metadata` is merged into the YAML header (`push_dataset` passes `configs` and `dataset_info` there, so
    `load_dataset` knows the data files and features). `stage` names the training stage the data is for.
    """
    plan = stage_plan(stage)
    total = sum(splits.values())
    data = DatasetCardData(
        license=license,
        language=_as_list(language) or None,
        pretty_name=pretty_name or repo_id.split("/")[-1],
        size_categories=[size_category(total)],
        task_categories=list(plan.task_categories) if plan and plan.task_categories else None,
        tags=list(dict.fromkeys([*DATASET_TAGS, *([f"deepomni-{plan.name}"] if plan else []), *tags])),
        **dict(extra_metadata or {}),
    )
    columns = [(name, _describe_feature(feature)) for name, feature in dict(features or {}).items()]
    card = DatasetCard.from_template(
        data,
        template_path=str(templates_dir(template_dir) / "dataset_card.md"),
        repo_id=repo_id,
        dataset_title=pretty_name or repo_id.split("/")[-1],
        plan=plan,
        split_rows=dict(splits),
        total_rows=total,
        columns=columns,
        description=description,
        paper_url=PAPER_URL,
    )
    problems = check_card_metadata(card)
    if problems:
        raise ValueError("The rendered dataset card has invalid metadata:\n- " + "\n- ".join(problems))
    return card


def _describe_feature(feature: Any) -> str:
    """A short type description of a `datasets` feature, for the card's column table."""
    name = type(feature).__name__
    if name == "Value":
        return str(feature.dtype)
    if name in ("Sequence", "List", "LargeList"):
        inner = getattr(feature, "feature", None)
        return f"list of {_describe_feature(inner)}" if inner is not None else "list"
    if name == "Audio":
        rate = getattr(feature, "sampling_rate", None)
        return f"audio ({rate} Hz)" if rate else "audio"
    if name == "ClassLabel":
        return f"class label ({len(feature.names)} classes)"
    if isinstance(feature, dict):
        return "struct of " + ", ".join(feature)
    if isinstance(feature, list) and feature:
        return f"list of {_describe_feature(feature[0])}"
    return name


# --- local metadata checks ------------------------------------------------------------------------------------------
def card_metadata(card: ModelCard | DatasetCard | str) -> dict[str, Any]:
    """The card's YAML header parsed with a plain YAML parser (what the Hub reads)."""
    text = str(card)
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.DOTALL)
    if not match:
        raise ValueError("The card has no YAML metadata header (--- ... ---).")
    metadata = yaml.safe_load(match.group(1))
    if not isinstance(metadata, dict):
        raise ValueError("The card's YAML header is not a mapping.")
    return metadata


def check_card_metadata(card: ModelCard | DatasetCard) -> list[str]:
    """Checks a card's metadata without the Hub (see the module docstring); returns the problems found, if any."""
    problems: list[str] = []
    try:
        metadata = card_metadata(card)
    except (ValueError, yaml.YAMLError) as error:
        return [str(error)]
    is_model = isinstance(card, ModelCard)
    card_class, data_class = (ModelCard, ModelCardData) if is_model else (DatasetCard, DatasetCardData)
    try:
        reread = card_class(str(card)).data.to_dict()
        if reread != card.data.to_dict():
            problems.append("the metadata does not survive a round trip through " + data_class.__name__)
        if data_class(**metadata).to_dict() != reread:
            problems.append(f"{data_class.__name__} reads the YAML header differently from a plain YAML parser")
    except (ValueError, TypeError) as error:
        problems.append(f"{data_class.__name__} cannot read the metadata: {error}")

    def strings(key: str) -> list:
        value = metadata.get(key)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) and v for v in values):
            problems.append(f"{key} must be a string or a list of non-empty strings, got {value!r}")
            return []
        return values

    for language in strings("language"):
        if not _LANGUAGE.match(language):
            problems.append(f"language {language!r} is not an ISO 639-1/2/3 code")
    licenses = strings("license")
    for license in licenses:
        if license not in HUB_LICENSES:
            problems.append(f"license {license!r} is not a Hub license id (use 'other' with license_name/license_link)")
    if is_model and "other" in licenses and not (metadata.get("license_name") and metadata.get("license_link")):
        problems.append("license 'other' needs license_name and license_link")
    strings("tags")
    if is_model:
        if metadata.get("library_name") != LIBRARY_NAME:
            problems.append(f"library_name must be {LIBRARY_NAME!r}, got {metadata.get('library_name')!r}")
        if metadata.get("pipeline_tag") not in HUB_PIPELINE_TAGS:
            problems.append(f"pipeline_tag {metadata.get('pipeline_tag')!r} is not a Hub pipeline tag")
        for key in ("base_model", "datasets"):
            for repo_id in strings(key):
                if not _REPO_ID.match(repo_id):
                    problems.append(f"{key} entry {repo_id!r} is not a Hub repo id (namespace/name)")
        if not strings("base_model"):
            problems.append("base_model is missing")
        if "model-index" in metadata:
            try:
                model_index_to_eval_results(metadata["model-index"])
            except (KeyError, TypeError, ValueError) as error:
                problems.append(f"model-index cannot be parsed into EvalResults: {error!r}")
    else:
        for category in strings("size_categories"):
            if category not in {label for _, label in SIZE_CATEGORIES} | {"n>1T"}:
                problems.append(f"size_categories entry {category!r} is not a Hub size category")
        strings("task_categories")
        configs = metadata.get("configs")
        if configs is not None and not (
            isinstance(configs, list) and all(isinstance(c, dict) and "config_name" in c for c in configs)
        ):
            problems.append("configs must be a list of mappings with a config_name")
    return problems


__all__ = [
    "BASE_CHECKPOINTS",
    "LIBRARY_NAME",
    "PIPELINE_TAG",
    "STAGES",
    "STAGE_PLANS",
    "ExpertSplit",
    "StagePlan",
    "card_metadata",
    "check_card_metadata",
    "load_eval_results",
    "model_card_data",
    "render_dataset_card",
    "render_model_card",
    "resolve_stage",
    "stage_plan",
    "templates_dir",
]

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

Other templates: `card_template=` renders a named template of `hub_cards/` instead of the stage's (e.g.
`model_card_deepomni_tiny.md`, the card of the shipped DeepOmni-Tiny) or any Jinja file. Every template also gets
facts read from data (`card_facts`): the checkpoint's parameter counts, its last training run, the closed spoken-QA
domain and, when given, a reproduction summary.

Every rendered card is checked locally with `card_checks.check_card_metadata` (`card.validate()` needs the Hub).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import (
    DatasetCard,
    DatasetCardData,
    EvalResult,
    ModelCard,
    ModelCardData,
)

from .card_checks import (  # noqa: F401  (re-exported: part of this module's API)
    HUB_LICENSES,
    HUB_PIPELINE_TAGS,
    LIBRARY_NAME,
    SIZE_CATEGORIES,
    card_metadata,
    check_card_metadata,
)
from .card_facts import (
    TEMPLATE_METADATA,
    checkpoint_parameters,
    load_reproduction,
    reproduction_table,
    spoken_qa_domain,
    training_run,
)


BASE_CHECKPOINTS = ("deepseek-ai/DeepSeek-V2-Lite-Chat", "openai/whisper-medium", "hubertsiuzdak/snac_24khz")
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


def card_template_path(
    card_template: str | os.PathLike, template_dir: str | os.PathLike | None = None
) -> tuple[Path, str | None]:
    """A model-card template given by name or path → (its path, its name in `hub_cards/` or `None` for a file).

    A name is a template of `hub_cards/`: `deepomni_tiny`, `deepomni-tiny` and `model_card_deepomni_tiny.md` all mean
    `hub_cards/model_card_deepomni_tiny.md`. Anything else must be an existing Jinja file.
    """
    path = Path(card_template)
    if path.is_file():
        return path, None
    folder = templates_dir(template_dir)
    name = path.name.removesuffix(".md").removeprefix("model_card_").replace("-", "_")
    named = folder / f"model_card_{name}.md"
    if name and path.name == str(card_template) and named.is_file():  # a bare name, not a missing path
        return named, name
    names = sorted(p.stem.removeprefix("model_card_") for p in folder.glob("model_card_*.md"))
    raise FileNotFoundError(
        f"Card template {str(card_template)!r} not found: give a template of {folder} ({', '.join(names)}) or the "
        "path of a Jinja .md file."
    )


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
    card_template: str | os.PathLike | None = None,
    reproduction: str | os.PathLike | Mapping | None = None,
) -> ModelCard:
    """Renders the model card of the checkpoint in `checkpoint_dir` for `repo_id`, from the stage's template.

    `stage` is one of `STAGES` or an alias; `None` when unknown (a generic card showing the whole recipe).
    `base_model` defaults to the three base checkpoints (`BASE_CHECKPOINTS`); pass the previous stage's repo id for a
    later stage. The card is checked with `check_card_metadata` (raises `ValueError` naming the problems).

    `card_template` replaces the stage's template: a template name of `hub_cards/` (`deepomni_tiny`) or a Jinja file
    (see `card_template_path`); a named template may bring its own `base_model` / `license` defaults
    (`card_facts.TEMPLATE_METADATA`). `reproduction` is a reproduction summary (`benchmarks/reproduction.py`'s
    `reproduction.json`, a path or a mapping), checked by `card_facts.load_reproduction`. Every template also gets the
    checkpoint's `parameters`, its `training_run`, the `spoken_qa_domain` and the raw `config` (`card_facts`).
    """
    stage = resolve_stage(stage)
    plan = stage_plan(stage)
    config = read_checkpoint_config(checkpoint_dir)
    template_path, template_name = (
        card_template_path(card_template, template_dir) if card_template is not None
        else (model_card_template(stage, template_dir), None)
    )  # fmt: skip
    summary = load_reproduction(reproduction)
    results = load_eval_results(eval_results)
    defaults = TEMPLATE_METADATA.get(template_name, {})
    if base_model is None:
        base_model = defaults.get("base_model")
    if license is None and "license" in defaults:
        license = defaults["license"]
    tags = [*defaults.get("tags", ()), *tags]
    data = model_card_data(
        repo_id=repo_id, base_model=base_model, datasets=datasets, eval_results=results, license=license,
        license_name=license_name, license_link=license_link, language=language, tags=tags,
    )  # fmt: skip
    files = {p.name for p in Path(checkpoint_dir).iterdir()}
    plans = {name: stage_plan(name) for name in STAGES}
    text = config.get("text_config") or {}
    audio = config.get("audio_config") or {}
    card = ModelCard.from_template(
        data,
        template_path=str(template_path),
        repo_id=repo_id,
        model_title=repo_id.split("/")[-1],
        stage=stage,
        plan=plan,
        previous_plan=stage_plan(plan.previous) if plan and plan.previous else None,
        all_plans=list(plans.values()),
        plans=plans,
        base_models=_as_list(data.base_model),
        derived_from_base=set(_as_list(data.base_model)) == set(BASE_CHECKPOINTS),
        experts=ExpertSplit.from_config(config),
        results=results,
        training_datasets=_as_list(datasets),
        has_processor=bool(files & {"processor_config.json", "tokenizer.json", "tokenizer_config.json"}),
        remote_code=bool(config.get("auto_map")),
        paper_url=PAPER_URL,
        config=config,
        parameters=checkpoint_parameters(checkpoint_dir, config),
        training_run=training_run(checkpoint_dir),
        spoken_qa_domain=spoken_qa_domain(),
        reproduction=summary,
        reproduction_table=reproduction_table(summary) if summary else None,
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


__all__ = [
    "BASE_CHECKPOINTS",
    "LIBRARY_NAME",
    "PIPELINE_TAG",
    "STAGES",
    "STAGE_PLANS",
    "ExpertSplit",
    "StagePlan",
    "card_metadata",
    "card_template_path",
    "check_card_metadata",
    "load_eval_results",
    "model_card_data",
    "render_dataset_card",
    "render_model_card",
    "resolve_stage",
    "stage_plan",
    "templates_dir",
]

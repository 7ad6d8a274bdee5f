# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Local checks of a model / dataset card's metadata, without the Hub.

`card.validate()` posts the card to the Hub's `/api/validate-yaml`, which needs network; `check_card_metadata` does
the checks that matter locally instead: the YAML header parses to a mapping, the metadata survives a round trip
through `ModelCardData` / `DatasetCardData` (so the Hub and `huggingface_hub` read back what was written), and the
fields the Hub validates have valid shapes and values (`model-index` parseable into `EvalResult`s, repo ids,
license, pipeline tag, language codes, size categories). `cards` renders the cards and runs these checks.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results


LIBRARY_NAME = "transformers"
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
    "HUB_LICENSES",
    "HUB_PIPELINE_TAGS",
    "LIBRARY_NAME",
    "SIZE_CATEGORIES",
    "card_metadata",
    "check_card_metadata",
]

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""`convert_checkpoint`: the DeepOmni checkpoint from its three sources, and its configuration."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from transformers import WhisperConfig

from ...modeling.configuration_deepomni import NUM_AUDIO_STREAMS, DeepOmniConfig, DeepOmniTextConfig
from ...modeling.modeling_deepomni import DeepOmniForConditionalGeneration
from .deepseek import deepseek_text_config_kwargs, plan_text_model
from .layout import ADAPTER_PREFIX
from .processor import save_processor
from .reading import (
    AUDIO_ENCODER_PATTERNS,
    CODEC_PATTERNS,
    CONFIG_NAME,
    PT_FALLBACK_PATTERNS,
    TEXT_MODEL_PATTERNS,
    TOKENIZER_PATTERNS,
    CheckpointReader,
    read_json,
    resolve_checkpoint,
)
from .snac import load_codec_source, plan_codec
from .ctranslate2_whisper import CT2_WEIGHTS_NAME
from .whisper import open_whisper_checkpoint, plan_audio_encoder, read_whisper_config
from .writing import (
    ConversionResult,
    PlannedTensor,
    ShardWriter,
    as_dtype,
    atomic_output_dir,
    check_output_is_not_a_source,
    expected_tensors,
    refuse_existing,
    verify_written,
    write_planned,
)


def load_speech_experts(path: str | os.PathLike) -> list[list[int]]:
    """Per-layer speech-expert ids from a JSON file: `{"speech_experts": [[...], ...]}` or a bare list of lists."""
    path = Path(os.fspath(path))
    try:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"The speech-experts file {str(path)!r} does not exist.") from None
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not read the speech-experts file {str(path)!r} as JSON: {error}") from error
    if isinstance(content, dict):
        if "speech_experts" not in content:
            raise ValueError(f"{str(path)!r} holds an object without a `speech_experts` key (keys: {sorted(content)}).")
        content = content["speech_experts"]
    if not isinstance(content, list) or not all(
        isinstance(layer, list) and all(isinstance(e, int) and not isinstance(e, bool) for e in layer)
        for layer in content
    ):
        raise ValueError(
            f"{str(path)!r} must hold one list of integer expert ids per decoder layer (`[[...], ...]` or "
            '`{"speech_experts": [[...], ...]}`).'
        )
    return content


def build_config(
    text_config: dict,
    audio_config: dict,
    codec_config: dict,
    speech_experts: list[list[int]] | None = None,
    keep_source_lm_head: bool = False,
    **config_overrides,
) -> DeepOmniConfig:
    """The `DeepOmniConfig` of a conversion, from the `config.json` contents of the DeepSeek-V2 and Whisper sources
    and the SNAC keyword arguments (`codec_config`). The backbone's `vocab_size` becomes `text_vocab_size`, and the
    backbone of DeepOmni gets the whole 8-stream vocabulary. `config_overrides` are further `DeepOmniConfig` fields
    (a `text_config` dict among them updates the backbone's). Validation (sizes, vocabulary, speech experts) is
    the configs' own; its errors are raised as `ValueError`."""
    try:
        return _build_config(text_config, audio_config, codec_config, speech_experts, keep_source_lm_head, **config_overrides)
    except StrictDataclassError as error:  # the configs' `@strict` validation: surface the cause, as a ValueError
        cause = error.__cause__ or error
        raise ValueError(f"The converted configuration is invalid: {cause}") from error


def _build_config(text_config, audio_config, codec_config, speech_experts, keep_source_lm_head, **config_overrides):
    text_kwargs, text_vocab_size = deepseek_text_config_kwargs(text_config)
    if audio_config.get("model_type") != "whisper":
        raise ValueError(
            f"The audio encoder has model_type {audio_config.get('model_type')!r}; it must be a Whisper checkpoint "
            "(model_type 'whisper', e.g. openai/whisper-medium)."
        )
    whisper = WhisperConfig.from_dict({k: v for k, v in audio_config.items() if k not in ("architectures", "auto_map")})
    overrides = dict(config_overrides)
    text_kwargs.update(overrides.pop("text_config", None) or {})
    # The sources decide these; everything else of DeepOmniConfig may be overridden.
    decided = {"audio_config", "codec_config", "text_vocab_size", "codebook_size", "tie_word_embeddings"}
    allowed = {field.name for field in dataclasses.fields(DeepOmniConfig)} - decided
    if unknown := sorted(set(overrides) - allowed):
        raise ValueError(f"Unknown DeepOmniConfig field(s) {unknown}; see DeepOmniConfig for the available ones.")
    codebook_size = codec_config.get("codebook_size", 4096)
    defaults = {field.name: field.default for field in dataclasses.fields(DeepOmniConfig)}
    layout = {name: overrides.get(name, defaults[name]) for name in ("num_text_special_tokens", "num_audio_special_tokens")}
    audio_slot_vocab_size = codebook_size + layout["num_audio_special_tokens"]
    total_vocab_size = text_vocab_size + layout["num_text_special_tokens"] + NUM_AUDIO_STREAMS * audio_slot_vocab_size
    text_kwargs.update(vocab_size=total_vocab_size, tie_word_embeddings=not keep_source_lm_head)
    if speech_experts is not None:
        text_kwargs["speech_experts"] = speech_experts
    return DeepOmniConfig(
        text_config=DeepOmniTextConfig(**text_kwargs),
        audio_config=whisper,
        codec_config=dict(codec_config),
        text_vocab_size=text_vocab_size,
        codebook_size=codebook_size,
        tie_word_embeddings=not keep_source_lm_head,
        **overrides,
    )


def init_adapter_weight(shape: Sequence[int], std: float, seed: int) -> torch.Tensor:
    """A new speech-adapter matrix: Normal(0, std) (std = the config's `initializer_range`, as DeepOmni's own
    initialisation of linear layers), drawn in float32 from a CPU generator seeded with `seed`."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float32) * std


def _plan_adapter(config: DeepOmniConfig, expected: dict[str, tuple], dtype: torch.dtype, seed: int) -> list[PlannedTensor]:
    """Planned `model.speech_adapter.*` tensors: new, see `init_adapter_weight` (seeds `seed + 2`, `+ 3`, ...)."""
    names = sorted(k for k in expected if k.startswith(ADAPTER_PREFIX))
    return [
        PlannedTensor(
            name,
            expected[name],
            lambda name=name, i=i: init_adapter_weight(expected[name], config.initializer_range, seed + 2 + i),
            dtype,
        )
        for i, name in enumerate(names)
    ]


def convert_checkpoint(
    text_model: str | os.PathLike,
    audio_encoder: str | os.PathLike,
    codec: str | os.PathLike,
    output_dir: str | os.PathLike,
    speech_experts: str | os.PathLike | list[list[int]] | None = None,
    dtype: str | torch.dtype | None = None,
    max_shard_size: int | str = "5GB",
    overwrite: bool = False,
    keep_source_lm_head: bool = False,
    seed: int = 0,
    with_processor: bool = True,
    progress: bool = True,
    hub_kwargs: dict | None = None,
    **config_overrides,
) -> ConversionResult:
    r"""
    Builds a DeepOmni checkpoint from a DeepSeek-V2 backbone, a Whisper checkpoint and a SNAC checkpoint.

    The output folder loads with `AutoModelForMultimodalLM.from_pretrained` (no missing or unexpected keys), and with
    `trust_remote_code=True` in a process without `deepomni_hf` (the modeling code is saved next to the weights).

    What the weights become (see the module docstring for the key table):

    - backbone: copied; routed experts fused as DeepOmni stores them. Embedding rows `0 .. V-1` (`V` = the
      backbone's vocab_size = `text_vocab_size`) are the source's; the rows of the new ids (text specials, 7 audio
      slots) follow `init_new_embedding_rows` with `seed`. The output head is tied to the embedding, so the source's
      untied `lm_head` (DeepSeek-V2-Lite-Chat has one) is dropped and the text logits differ from the source's until
      the head is trained; `keep_source_lm_head=True` keeps it untied instead (new rows drawn the same way, `seed+1`).
    - Whisper: the encoder only. Speech adapter: new (`init_adapter_weight`). Codec: the SNAC weights.

    Args:
        text_model: folder or Hub repo id of a DeepSeek-V2 checkpoint, in transformers' `deepseek_v2` layout or the
            original hub layout (remote-code config with `rope_scaling`, untied `lm_head`).
        audio_encoder: folder or Hub repo id of a Whisper checkpoint: transformers' layout (`openai/whisper-medium`) or
            CTranslate2's (a faster-whisper folder with `model.bin`, see `ctranslate2_whisper`).
        codec: folder or Hub repo id of a SNAC checkpoint in the `snac` package's format (`hubertsiuzdak/snac_24khz`),
            or a `DeepOmniCodecModel` folder (what `deepomni train-codec` writes).
        output_dir: the folder to create. It is built in a temporary folder next to it and renamed at the end, so a
            failed conversion leaves nothing behind.
        speech_experts: a JSON file (`{"speech_experts": [[...], ...]}` or a bare list of lists) or the lists
            themselves: per decoder layer, the routed experts that are speech experts. Defaults to none assigned.
        dtype: dtype of every floating-point output tensor (e.g. `"bfloat16"`). `None` keeps each source's own dtype
            (the new tensors take the backbone's); the config records the backbone's.
        max_shard_size: largest output shard (`"5GB"`), also the most output the writer holds in memory.
        overwrite: replace an existing `output_dir`; otherwise an existing one is refused before any work.
        keep_source_lm_head: keep the source's untied output head (see above).
        seed: seed of the new embedding rows (`seed`), head rows (`seed + 1`) and adapter matrices (`seed + 2 ...`).
        with_processor: also save `DeepOmniProcessor` (the extended tokenizer and Whisper's feature extractor).
        progress: show tqdm progress bars.
        hub_kwargs: passed to `huggingface_hub.snapshot_download` for Hub sources (`revision`, `token`, `cache_dir`).
        config_overrides: further `DeepOmniConfig` fields (e.g. `adapter_intermediate_size`, `num_text_special_tokens`).

    Returns:
        [`ConversionResult`].
    """
    hub_kwargs = dict(hub_kwargs or {})
    if isinstance(speech_experts, (str, os.PathLike)):
        speech_experts = load_speech_experts(speech_experts)
    dtype = as_dtype(dtype)
    refuse_existing(Path(os.fspath(output_dir)).expanduser().absolute(), overwrite)

    text_dir = resolve_checkpoint(
        text_model, "text model", TEXT_MODEL_PATTERNS + TOKENIZER_PATTERNS, PT_FALLBACK_PATTERNS, **hub_kwargs
    )
    audio_dir = resolve_checkpoint(
        audio_encoder, "audio encoder", AUDIO_ENCODER_PATTERNS, PT_FALLBACK_PATTERNS + [CT2_WEIGHTS_NAME], **hub_kwargs
    )
    codec_dir = resolve_checkpoint(codec, "codec", CODEC_PATTERNS, **hub_kwargs)
    check_output_is_not_a_source(output_dir, {"text model": text_dir, "audio encoder": audio_dir, "codec": codec_dir})

    text_raw = read_json(text_dir / CONFIG_NAME, "text model")
    audio_raw = read_whisper_config(audio_dir)
    codec_model = load_codec_source(codec_dir)
    codec_config = codec_model.config.to_snac_kwargs()
    config = build_config(text_raw, audio_raw, codec_config, speech_experts, keep_source_lm_head, **config_overrides)

    with contextlib.ExitStack() as readers:
        text_reader = readers.enter_context(CheckpointReader(text_dir, "text model"))
        audio_reader = readers.enter_context(open_whisper_checkpoint(audio_dir))
        if "model.embed_tokens.weight" not in text_reader:
            raise ValueError(f"The text model in {str(text_dir)!r} has no `model.embed_tokens.weight`.")
        # New tensors (embedding rows, adapter) take the backbone's dtype unless `dtype` says otherwise.
        text_dtype = dtype or text_reader.dtype("model.embed_tokens.weight")

        with torch.device("meta"):
            skeleton = DeepOmniForConditionalGeneration(config)
        tied = DeepOmniForConditionalGeneration._tied_weights_keys if config.tie_word_embeddings else {}
        expected = expected_tensors(skeleton, tied)

        # Plan (and so check the names and shapes of) everything before writing anything.
        text_plan, notes = plan_text_model(text_reader, config, expected, text_dtype, keep_source_lm_head, seed)
        plan = (
            text_plan
            + plan_audio_encoder(audio_reader, expected, dtype)
            + _plan_adapter(config, expected, text_dtype, seed)
            + plan_codec(codec_model, expected, dtype)
        )
        if missing := sorted(set(expected) - {p.name for p in plan}):
            raise RuntimeError(f"No source planned for {missing[:5]}.")

        processor_saved = tokenizer_saved = False
        with atomic_output_dir(output_dir, overwrite) as temp_dir:
            _save_config_and_code(skeleton, temp_dir, text_dtype)
            writer = ShardWriter(temp_dir, max_shard_size)
            write_planned(plan, writer, "Writing DeepOmni checkpoint", progress)
            writer.finish()
            verify_written(writer, expected, "converted checkpoint")
            if with_processor:
                processor_saved, tokenizer_saved, processor_notes = save_processor(temp_dir, text_dir, audio_dir, config)
                notes += processor_notes
    return ConversionResult(
        output_dir=Path(os.fspath(output_dir)).expanduser().absolute(),
        num_tensors=len(writer.shapes),
        num_shards=writer.num_shards,
        total_bytes=writer.total_bytes,
        config=config,
        processor_saved=processor_saved,
        tokenizer_saved=tokenizer_saved,
        notes=notes,
    )


def _save_config_and_code(skeleton: torch.nn.Module, folder: Path, dtype: torch.dtype) -> None:
    """config.json, generation_config.json, `auto_map` and the modeling files, exactly as the model class's own
    `save_pretrained` writes them: it is called on the meta-device skeleton with an empty state dict, so it writes
    no weights. Must run before the weights are written (save_pretrained removes weight files it did not write)."""
    from transformers.utils import logging as transformers_logging

    skeleton.to(dtype=dtype)  # save_pretrained records the model's dtype in the config
    bars_were_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # its "Writing model shards: 0it" bar would only confuse
    try:
        skeleton.save_pretrained(folder, state_dict={})
    finally:
        if bars_were_enabled:
            transformers_logging.enable_progress_bar()
    if stray := [p.name for p in folder.iterdir() if p.name.endswith((".safetensors", ".bin"))]:
        raise RuntimeError(f"Saving the config unexpectedly wrote weight files {stray}.")

# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Build a DeepOmni checkpoint from its three base checkpoints, and export its text LLM back out.

`convert_checkpoint` reads a DeepSeek-V2 backbone (transformers' native `deepseek_v2` layout or the original hub layout
of `deepseek-ai/DeepSeek-V2-Lite-Chat`), a Whisper checkpoint (only its encoder is kept; transformers' layout or
CTranslate2's `model.bin`, as faster-whisper ships it) and a SNAC checkpoint (the `snac` package's own format), and writes one DeepOmni checkpoint that `AutoModelForMultimodalLM.from_pretrained`
loads with no missing or unexpected keys. `export_text_model` writes the backbone of a DeepOmni checkpoint as a plain
transformers `DeepseekV2ForCausalLM` over the original text vocabulary, for text benchmarks (DESIGN §6).

Key layout (`E` experts, `I` = moe_intermediate_size; the DeepOmni names are what
`DeepOmniForConditionalGeneration.save_pretrained` writes):

| source                                                        | DeepOmni checkpoint                                   |
|---------------------------------------------------------------|-------------------------------------------------------|
| `model.embed_tokens.weight` `[V, H]`                          | `model.language_model.embed_tokens.weight` `[V + new, H]`: rows `0..V-1` copied, the rest initialised (see `init_new_embedding_rows`) |
| `model.layers.N.mlp.experts.e.gate_proj.weight` `[I, H]`,     | `model.language_model.layers.N.mlp.experts.gate_up_proj` `[E, 2I, H]` (per expert: gate rows, then up rows) |
| `model.layers.N.mlp.experts.e.up_proj.weight` `[I, H]`        |                                                       |
| `model.layers.N.mlp.experts.e.down_proj.weight` `[H, I]`      | `model.language_model.layers.N.mlp.experts.down_proj` `[E, H, I]` |
| `model.layers.N.<anything else>`, `model.norm.weight`         | `model.language_model.layers.N.<same>`, `model.language_model.norm.weight` |
| `lm_head.weight`                                              | dropped: the head is tied to the embedding (unless `keep_source_lm_head=True`) |
| Whisper `model.encoder.*` (or `encoder.*` for a `WhisperModel`) | `model.audio_tower.*`; the decoder and `proj_out` are dropped |
| CTranslate2 Whisper `encoder/...` in `model.bin`              | `model.audio_tower.*` (mapping in `ctranslate2_whisper`); the decoder is dropped |
| —                                                             | `model.speech_adapter.{gate,up,down}_proj.weight`: new, ~ Normal(0, initializer_range) |
| SNAC `pytorch_model.bin` (`encoder.*`, `quantizer.*`, `decoder.*`) | `codec_model.*` (weight-norm parametrizations, as `DeepOmniCodecModel` holds them) |

Both DeepSeek layouts store one tensor per expert (transformers 5 writes the legacy per-expert names when it saves a
`DeepseekV2ForCausalLM`); already fused `experts.gate_up_proj` / `experts.down_proj` tensors are accepted too. The two
layouts differ in `config.json`: the original one has `rope_scaling` + `rope_theta`, `aux_loss_alpha`,
`scoring_func`, `auto_map` (remote code) and an untied `lm_head`.

Memory: tensors are streamed. Source files are memory-mapped (`safe_open`) and read one tensor at a time; the output
is written shard by shard. Resident memory is one output shard being filled (at most `max_shard_size`) plus the tensors
of one layer being fused (for DeepSeek-V2-Lite in bf16: ≈ 1.1 GB of experts, or the 0.54 GB embedding), plus the SNAC
codec (≈ 80 MB), never the whole model.

One module per concern: `reading` (source folders, `CheckpointReader`), `writing` (`ShardWriter`, atomic output,
planned tensors), one per source format (`deepseek`, `whisper`, `ctranslate2_whisper`, `snac`), `processor`,
`convert` (`convert_checkpoint`, `build_config`) and `export` (`export_text_model`).

Safety: weights are read with `safetensors`; pickled `.bin` files (the SNAC checkpoint, or a source that has no
safetensors) are read with `torch.load(weights_only=True)` only.
"""

from .codec_swap import CodecSwapResult, replace_codec
from .convert import build_config, convert_checkpoint, init_adapter_weight, load_speech_experts
from .ctranslate2_whisper import CTranslate2WhisperReader, load_ctranslate2_whisper_encoder, read_ctranslate2_index
from .deepseek import deepseek_text_config_kwargs, init_new_embedding_rows
from .export import export_text_model
from .processor import export_tokenizer, load_text_tokenizer, save_processor
from .reading import CheckpointReader, read_json, resolve_checkpoint
from .writing import ConversionResult, PlannedTensor, ShardWriter, atomic_output_dir, parse_size


__all__ = [
    "CodecSwapResult",
    "replace_codec",
    "CTranslate2WhisperReader",
    "CheckpointReader",
    "ConversionResult",
    "PlannedTensor",
    "ShardWriter",
    "atomic_output_dir",
    "build_config",
    "convert_checkpoint",
    "deepseek_text_config_kwargs",
    "export_text_model",
    "export_tokenizer",
    "init_adapter_weight",
    "init_new_embedding_rows",
    "load_ctranslate2_whisper_encoder",
    "load_speech_experts",
    "load_text_tokenizer",
    "parse_size",
    "read_ctranslate2_index",
    "read_json",
    "resolve_checkpoint",
    "save_processor",
]

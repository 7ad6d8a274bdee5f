"""Training DeepOmni: stage plans, modality load and expert assignment, Trainer glue, DPO, LoRA.

| module | what |
|---|---|
| `stages` | `STAGES` (DESIGN §5), `StagePlan`, `apply_stage_plan` → `StagePlanReport`, `ExpertRowFreezer` |
| `modality_load` | `compute_modality_load` → `ModalityLoad` (router forward hooks) |
| `expert_assignment` | `assign_speech_experts` (ratio / top_n rules), heat map, summaries, `update_checkpoint_config` |
| `trainer` | `DeepOmniTrainer` (stage plan + per-stream loss logging) |
| `dpo` | per-slot DPO loss, `DeepOmniDPOCollator`, `DeepOmniDPOTrainer`, `precompute_reference_logps` |
| `lora` | `apply_lora_stage` (PEFT, fused experts included) |
| `data` | dataset formats, `layout_dataset`, `load_stage_dataset` |
| `audio_cache` | `cache_audio_encoder_outputs`: Whisper's (frozen) output stored in the dataset instead of its features |
| `cli` | `deepomni assign-experts` (`add_assign_experts_command`) |

Names are imported lazily, so `import deepomni_hf.training.cli` (the command line) does not load `Trainer`, peft or
matplotlib.
"""

import importlib


_EXPORTS = {
    "DEFAULT_THRESHOLD": "expert_assignment",
    "ExpertAssignment": "expert_assignment",
    "assign_speech_experts": "expert_assignment",
    "plot_modality_load": "expert_assignment",
    "summary_markdown": "expert_assignment",
    "update_checkpoint_config": "expert_assignment",
    "write_assignment_outputs": "expert_assignment",
    "ModalityLoad": "modality_load",
    "RoutingRecorder": "modality_load",
    "compute_modality_load": "modality_load",
    "PARAMETER_GROUPS": "stages",
    "STAGES": "stages",
    "BASELINE_PLANS": "stages",
    "ExpertRowFreezer": "stages",
    "StagePlan": "stages",
    "StagePlanReport": "stages",
    "active_stage_report": "stages",
    "apply_stage_plan": "stages",
    "get_stage_plan": "stages",
    "DeepOmniTrainer": "trainer",
    "DeepOmniDPOCollator": "dpo",
    "DeepOmniDPOTrainer": "dpo",
    "build_dpo_pair": "dpo",
    "deepomni_dpo_loss": "dpo",
    "dpo_slot_losses": "dpo",
    "precompute_reference_logps": "dpo",
    "slot_log_probs": "dpo",
    "text_cross_entropy": "dpo",
    "apply_lora_stage": "lora",
    "LayoutPadding": "data",
    "iterate_batches": "data",
    "layout_conversation": "data",
    "layout_dataset": "data",
    "load_stage_dataset": "data",
    "normalize_messages": "data",
    "cache_audio_encoder_outputs": "audio_cache",
    "check_audio_encoder_cache": "audio_cache",
    "save_cached_dataset": "audio_cache",
}


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)

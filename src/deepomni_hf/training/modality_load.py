# Copyright 2026 The deepomni_hf authors. Licensed under the Apache License, Version 2.0.
"""Modality load of the routed experts (DESIGN §4): how often speech tokens and text tokens are routed to each expert.

The model runs (routing mode `all`, no gradients) over speech-task batches and over text batches; forward hooks on the
routers (`DeepOmniTopkRouter`, output `(router_logits, topk_weights, topk_indices)`) record every MoE layer's top-k
choices per position — nothing in the model is changed. For modality `m`,

    L_m[l, e] = hits_m[l, e] / (k · tokens_m)

where `hits_m[l, e]` counts the top-k slots of layer `l` that went to expert `e` over the counted tokens of modality
`m`, so each row of `L_m` sums to 1.

Which positions count (`positions=`):

* `"all"` (default, the faithful reading of DESIGN §4 "run the model over speech-task data and over text data"): every
  non-padding position (`attention_mask == 1`) of the speech-task data is a speech token, every non-padding position of
  the text data a text token. Speech-task conversations also hold text (role prefixes, the text answer), which is then
  counted as speech; this measures the *task* the experts will be trained on in stage 2-speech.
* `"modality"`: only the speech positions (`model.model.speech_positions`: the text stream holds the `AUDIO`
  placeholder or `PAD_T` — user speech and the audio-only answer tail) of the speech-task data count as speech, and
  only the text positions of the text data as text. This is the per-token notion used by `per_token` routing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..modeling.modeling_deepomni import DeepOmniTopkRouter

POSITION_MODES = ("all", "modality")


@dataclass
class ModalityLoad:
    """
    Routing counts of both modalities.

    Attributes:
        layers: decoder-layer index of each row (the MoE layers).
        num_experts / top_k: routed experts per layer and experts per token.
        speech_hits / text_hits: `[len(layers), num_experts]` int64, top-k slots received.
        speech_tokens / text_tokens: counted positions of each modality.
        positions: `"all"` or `"modality"` (see the module docstring).
    """

    layers: list[int]
    num_experts: int
    top_k: int
    speech_hits: np.ndarray
    text_hits: np.ndarray
    speech_tokens: int
    text_tokens: int
    positions: str = "all"

    @staticmethod
    def _load(hits: np.ndarray, tokens: int, top_k: int) -> np.ndarray:
        if tokens == 0:
            return np.zeros(hits.shape, dtype=np.float64)
        return hits.astype(np.float64) / (top_k * tokens)

    @property
    def speech_load(self) -> np.ndarray:
        """`L_speech[l, e]`: the share of speech tokens' top-k slots that layer row `l` sent to expert `e`."""
        return self._load(self.speech_hits, self.speech_tokens, self.top_k)

    @property
    def text_load(self) -> np.ndarray:
        return self._load(self.text_hits, self.text_tokens, self.top_k)

    @property
    def speech_share(self) -> np.ndarray:
        """`L_speech / (L_speech + L_text)`; 0.5 for an expert that neither modality uses."""
        speech, text = self.speech_load, self.text_load
        total = speech + text
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, speech / np.where(total > 0, total, 1.0), 0.5)

    def to_dict(self) -> dict:
        return {
            "definition": "L_m[l, e] = hits_m[l, e] / (top_k * tokens_m)",
            "positions": self.positions,
            "layers": list(self.layers),
            "num_experts": self.num_experts,
            "top_k": self.top_k,
            "speech_tokens": int(self.speech_tokens),
            "text_tokens": int(self.text_tokens),
            "speech_hits": self.speech_hits.tolist(),
            "text_hits": self.text_hits.tolist(),
            "speech_load": self.speech_load.tolist(),
            "text_load": self.text_load.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ModalityLoad:
        return cls(
            layers=list(data["layers"]),
            num_experts=int(data["num_experts"]),
            top_k=int(data["top_k"]),
            speech_hits=np.asarray(data["speech_hits"], dtype=np.int64),
            text_hits=np.asarray(data["text_hits"], dtype=np.int64),
            speech_tokens=int(data["speech_tokens"]),
            text_tokens=int(data["text_tokens"]),
            positions=data.get("positions", "all"),
        )

    def save_json(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> ModalityLoad:
        with open(path) as f:
            return cls.from_dict(json.load(f))


def write_json_atomic(path: str | os.PathLike, data) -> None:
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def routers_of(model: nn.Module) -> list[DeepOmniTopkRouter]:
    return sorted((m for m in model.modules() if isinstance(m, DeepOmniTopkRouter)), key=lambda r: r.layer_idx)


class RoutingRecorder:
    """
    Context manager that counts, per MoE layer, the top-k expert choices of the positions selected by `mask` (set it
    before each forward: a `[batch, positions]` bool tensor, or `None` to count every position). Uses forward hooks on
    the routers only.
    """

    def __init__(self, model: nn.Module):
        self.routers = routers_of(model)
        if not self.routers:
            raise ValueError("The model has no DeepOmniTopkRouter: nothing to record (no MoE layer?).")
        self.layers = [router.layer_idx for router in self.routers]
        self.num_experts = self.routers[0].num_experts
        self.top_k = self.routers[0].top_k
        self.hits = torch.zeros(len(self.routers), self.num_experts, dtype=torch.long)
        self.mask: torch.Tensor | None = None
        self._handles = []

    def __enter__(self) -> RoutingRecorder:
        for row, router in enumerate(self.routers):
            self._handles.append(router.register_forward_hook(self._hook(row)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, row: int):
        def hook(module, inputs, output):
            indices = output[2]  # [tokens, top_k], tokens = batch * positions flattened row-major
            if self.mask is not None:
                mask = self.mask.reshape(-1).to(indices.device)
                if mask.numel() != indices.shape[0]:
                    raise RuntimeError(
                        f"Router of layer {module.layer_idx} saw {indices.shape[0]} tokens but the position mask has "
                        f"{mask.numel()}; the recorder needs the full sequence in one forward (no KV cache)."
                    )
                indices = indices[mask]
            counts = torch.bincount(indices.reshape(-1), minlength=self.num_experts)
            self.hits[row] += counts.cpu()

        return hook


_MODEL_KEYS = ("input_ids", "attention_mask", "input_features", "audio_encoder_outputs")


def _position_mask(model: nn.Module, batch: Mapping, modality: str, positions: str) -> torch.Tensor:
    input_ids = batch["input_ids"]
    attention_mask = batch.get("attention_mask")
    mask = torch.ones(input_ids.shape[:2], dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    if positions == "modality":
        speech = model.model.speech_positions(input_ids).to(mask.device)
        mask = mask & (speech if modality == "speech" else ~speech)
    return mask


@torch.inference_mode()
def count_routing(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    modality: str,
    positions: str = "all",
    max_batches: int | None = None,
) -> tuple[np.ndarray, int, RoutingRecorder]:
    """Runs `model` over `batches` (collator outputs) and returns `(hits [layers, experts], tokens, recorder)` for
    the positions that count as `modality` ("speech" or "text") under `positions`."""
    if positions not in POSITION_MODES:
        raise ValueError(f"positions must be one of {POSITION_MODES}, got {positions!r}.")
    device = next(model.parameters()).device
    tokens = 0
    with RoutingRecorder(model) as recorder:
        for index, batch in enumerate(batches):
            if max_batches is not None and index >= max_batches:
                break
            mask = _position_mask(model, batch, modality, positions)
            recorder.mask = mask
            tokens += int(mask.sum())
            inputs = {key: batch[key].to(device) for key in _MODEL_KEYS if batch.get(key) is not None}
            model(**inputs, use_cache=False)
    return recorder.hits.numpy().copy(), tokens, recorder


def compute_modality_load(
    model: nn.Module,
    speech_batches: Iterable[Mapping[str, torch.Tensor]],
    text_batches: Iterable[Mapping[str, torch.Tensor]],
    positions: str = "all",
    max_batches: int | None = None,
) -> ModalityLoad:
    """
    Modality load of every MoE layer's routed experts (DESIGN §4).

    Args:
        model: a `DeepOmniForConditionalGeneration` (after stage 1). It runs in eval mode under routing mode `"all"`;
            its previous routing mode and train/eval state are restored afterwards.
        speech_batches / text_batches: iterables of batches as `DeepOmniDataCollator` makes them (`input_ids`,
            `attention_mask`, and `input_features` for spoken turns; `labels` are ignored).
        positions: `"all"` (every non-padding position of each dataset) or `"modality"` (only speech positions of the
            speech data and text positions of the text data); see the module docstring.
        max_batches: stop after this many batches of each dataset.
    """
    previous_mode, was_training = model.routing_mode, model.training
    model.set_routing_mode("all")
    model.eval()
    try:
        speech_hits, speech_tokens, recorder = count_routing(model, speech_batches, "speech", positions, max_batches)
        text_hits, text_tokens, _ = count_routing(model, text_batches, "text", positions, max_batches)
    finally:
        model.set_routing_mode(previous_mode)
        model.train(was_training)
    if speech_tokens == 0 or text_tokens == 0:
        raise ValueError(
            f"Counted {speech_tokens} speech and {text_tokens} text tokens; both datasets must contribute tokens "
            f"(positions={positions!r})."
        )
    return ModalityLoad(
        layers=recorder.layers,
        num_experts=recorder.num_experts,
        top_k=recorder.top_k,
        speech_hits=speech_hits,
        text_hits=text_hits,
        speech_tokens=speech_tokens,
        text_tokens=text_tokens,
        positions=positions,
    )


__all__ = [
    "POSITION_MODES",
    "ModalityLoad",
    "RoutingRecorder",
    "compute_modality_load",
    "count_routing",
    "routers_of",
    "write_json_atomic",
]

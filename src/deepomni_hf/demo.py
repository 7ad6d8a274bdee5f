"""`deepomni demo`: DeepOmni end to end on a tiny random model (build, save, reload through Auto classes, forward)."""

import math
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForMultimodalLM, WhisperFeatureExtractor

from .modeling import DeepOmniForConditionalGeneration
from .modeling.configuration_deepomni import NUM_STREAMS, TEXT_STREAM
from .tiny import tiny_config


def _spoken_turn_ids(config, num_samples: int, text_before: list[int], text_after: list[int]) -> torch.LongTensor:
    """Text positions, a user-speech span for `num_samples` of 16 kHz audio, more text positions (DESIGN §3)."""
    frames = math.floor(num_samples / config.audio_sampling_rate * config.audio_frames_per_second) + 1
    length = len(text_before) + frames + 2 + len(text_after)
    ids = torch.empty(1, length, NUM_STREAMS, dtype=torch.long)
    for slot in range(TEXT_STREAM):
        ids[..., slot] = config.audio_token_id("PAD_A", slot)
    span_start = len(text_before)
    ids[0, :span_start, TEXT_STREAM] = torch.tensor(text_before)
    ids[0, span_start : span_start + frames + 2, TEXT_STREAM] = config.audio_placeholder_id
    ids[0, span_start + frames + 2 :, TEXT_STREAM] = torch.tensor(text_after)
    for slot in range(TEXT_STREAM):
        ids[0, span_start, slot] = config.audio_token_id("BOA", slot)
        ids[0, span_start + frames + 1, slot] = config.audio_token_id("EOA", slot)
    return ids


def run_demo(output_dir: str | Path = "tiny-deepomni") -> list[str]:
    torch.manual_seed(0)
    config = tiny_config()
    DeepOmniForConditionalGeneration(config).save_pretrained(output_dir)
    model = AutoModelForMultimodalLM.from_pretrained(output_dir).eval()

    # One second of a 220 Hz tone stands in for a spoken question.
    audio = (0.1 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    features = WhisperFeatureExtractor(feature_size=80)(audio, sampling_rate=16000, return_tensors="pt").input_features
    input_ids = _spoken_turn_ids(config, len(audio), text_before=[5, 6, 7], text_after=[8, 9, 10, 11])
    with torch.no_grad():
        out = model(input_ids=input_ids, input_features=features, labels=input_ids, output_router_logits=True)
    losses = ", ".join(f"{x:.2f}" for x in out.stream_losses.tolist())
    return [
        f"saved a tiny random DeepOmni to {output_dir}/ and reloaded it as {type(model).__name__}",
        f"input_ids {tuple(input_ids.shape)} (a 1 s spoken turn = {int(out.speech_positions.sum())} speech positions)",
        f"text logits {tuple(out.logits.shape)}, audio logits {tuple(out.audio_logits.shape)}",
        f"loss {out.loss.item():.3f} (per stream, slots 0-6 then text: {losses}); balance loss {out.aux_loss.item():.3f}",
        "the weights are random: these numbers only show the model runs end to end",
    ]

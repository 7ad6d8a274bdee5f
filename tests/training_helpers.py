"""Shared tiny fixtures of the training tests (no tests here): a tiny random DeepOmni, the tiny processor, spoken and
text conversations laid out by the real processor."""

import functools
import hashlib

import numpy as np
import torch
from text_fixtures import english_sentences, tiny_deepomni_config, tiny_tokenizer

from deepomni_hf import DeepOmniForConditionalGeneration
from deepomni_hf.processors import DeepOmniDataCollator, DeepOmniProcessor
from deepomni_hf.training.data import layout_conversation

SR = 16000


@functools.lru_cache(maxsize=1)
def tiny_processor() -> DeepOmniProcessor:
    return DeepOmniProcessor.from_model_config(tiny_deepomni_config(), tiny_tokenizer())


def tiny_model(seed: int = 0) -> DeepOmniForConditionalGeneration:
    torch.manual_seed(seed)
    return DeepOmniForConditionalGeneration(tiny_deepomni_config())


def spoken_qa(seed: int, seconds: float = 0.2, frames: int = 3) -> list[dict]:
    """A spoken question (noise) answered with text and random codes `[frames, 7]`."""
    rng = np.random.default_rng(seed)
    sentences = english_sentences()
    waveform = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    codes = rng.integers(0, 4096, size=(frames, 7))
    return [
        {"role": "user", "content": [{"type": "audio", "audio": waveform, "sampling_rate": SR}]},
        {"role": "assistant", "content": [{"type": "text", "text": sentences[seed % len(sentences)]},
                                          {"type": "audio_codes", "codes": codes}]},
    ]  # fmt: skip


def text_qa(seed: int) -> list[dict]:
    sentences = english_sentences()
    question = sentences[(3 * seed + 1) % len(sentences)]
    answer = " ".join(sentences[(5 * seed + 2 + i) % len(sentences)] for i in range(1 + seed % 2))
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def speech_examples(n: int, start: int = 0) -> list[dict]:
    return [layout_conversation(tiny_processor(), spoken_qa(start + i)) for i in range(n)]


def text_examples(n: int, start: int = 0) -> list[dict]:
    return [layout_conversation(tiny_processor(), text_qa(start + i)) for i in range(n)]


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    return DeepOmniDataCollator(tiny_processor())(examples)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def tensor_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()

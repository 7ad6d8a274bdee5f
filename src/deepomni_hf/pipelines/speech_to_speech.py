"""Pipelines over DeepOmni: `speech-to-speech` (a spoken or written turn in, text and speech out), and the two
single-purpose tasks built on it, `deepomni-asr` (speech → transcript) and `deepomni-tts` (text → speech)."""

import os
import re
import threading
from typing import Any

import numpy as np
import torch
from transformers import Pipeline

from ..processors.audio import DeepOmniAudioError


# The instructions the data builders use for the single-purpose tasks, so prompts at inference match training.
ASR_INSTRUCTION = "Transcribe the speech."
TTS_INSTRUCTION = "Read the text aloud."


# A word ending in a file extension (`question.wav`, `notes.txt`): a letter first, so "3.14" and "e.g." stay text.
_FILE_NAME = re.compile(r"^\S+\.[A-Za-z][A-Za-z0-9]{0,4}$")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus", ".aac", ".webm")


def looks_like_path(text: str) -> bool:
    """Whether a string input is meant as a file rather than as a question. It is a file when it exists, ends in an
    audio extension, starts like a path (`/`, `./`, `../`, `~`), or is one word (no spaces) holding a path separator or
    ending in a file extension (`clips/q1`, `question.txt`). Everything else is text ("What is 3/4?", "Hello.")."""
    stripped = text.strip()
    if os.path.exists(stripped) or stripped.lower().endswith(AUDIO_EXTENSIONS):
        return True
    if stripped.startswith(("/", "./", "../", "~", ".\\", "..\\")):
        return True
    one_word = not any(char.isspace() for char in stripped)
    return one_word and ("/" in stripped or "\\" in stripped or bool(_FILE_NAME.match(stripped)))


def as_user_content(inputs: Any, sampling_rate: int | None = None) -> list[dict]:
    """One pipeline input → the content items of a user turn: text stays text, everything else is audio. A string
    that looks like a path ([`looks_like_path`]) must be an existing file: a typo is an error, never a question."""
    if isinstance(inputs, str):
        if not inputs.strip():
            raise ValueError("The input text is empty: pass a question, a WAV path, audio bytes or an array.")
        if not looks_like_path(inputs):
            return [{"type": "text", "text": inputs}]
        path = os.path.expanduser(inputs.strip())
        if not os.path.isfile(path):
            raise DeepOmniAudioError(
                f"No audio file at {inputs!r} (relative paths start at {os.getcwd()}): check the path. A question "
                "meant as text must not look like a path (one word with a '/' or a file extension)."
            )
        inputs = path
    if isinstance(inputs, dict) and "raw" in inputs:  # transformers' ASR pipeline convention
        inputs = {"array": inputs["raw"], "sampling_rate": inputs.get("sampling_rate", sampling_rate)}
    item = {"type": "audio", "audio": inputs}
    if sampling_rate is not None:
        item["sampling_rate"] = sampling_rate
    return [item]


class SpeechToSpeechPipeline(Pipeline):
    """Answers a spoken (or written) turn with text and speech.

    ```python
    import deepomni_hf
    from transformers import pipeline

    chat = pipeline("speech-to-speech", model="path/or/hub-id")
    reply = chat("question.wav")                      # {"text", "audio" (float32), "sampling_rate": 24000}
    reply = chat(array, sampling_rate=16000, voice="F10")
    for chunk in chat("question.wav", stream=True):    # {"text": new text, "audio": new samples, ...}
        ...
    ```

    Inputs: a WAV path, bytes, an array (with `sampling_rate=`), a `datasets` audio dict, or plain text. Options:
    `voice` (`"ANS_A"`, `"M29"`, `"F10"`), `reply_modality` (`"speech"` or `"text"`), `history` (earlier messages
    in chat format), `system_prompt`, `seed`, `stream`, and any DeepOmni generation setting (`max_new_tokens`,
    `audio_top_k`, `repetition_penalty`, ...).
    """

    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False

    instruction: str | None = None
    default_reply_modality = "speech"

    def _sanitize_parameters(
        self,
        sampling_rate=None,
        voice=None,
        reply_modality=None,
        history=None,
        system_prompt=None,
        seed=None,
        stream=None,
        **generate_kwargs,
    ):
        preprocess = {}
        for name, value in (
            ("sampling_rate", sampling_rate),
            ("voice", voice),
            ("reply_modality", reply_modality),
            ("history", history),
            ("system_prompt", system_prompt),
        ):
            if value is not None:
                preprocess[name] = value
        forward = dict(generate_kwargs)
        if seed is not None:
            forward["seed"] = seed
        if reply_modality is not None:
            forward["reply_modality"] = reply_modality
        return preprocess, forward, {}

    def _messages(self, inputs, sampling_rate=None, history=None, system_prompt=None) -> list[dict]:
        messages = []
        system = system_prompt or self.instruction
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        messages.extend(history or [])
        messages.append({"role": "user", "content": as_user_content(inputs, sampling_rate)})
        return messages

    def preprocess(self, inputs, sampling_rate=None, voice=None, reply_modality=None, history=None, system_prompt=None):
        reply_modality = reply_modality or self.default_reply_modality
        model_inputs = self.processor.apply_chat_template(
            self._messages(inputs, sampling_rate, history, system_prompt),
            add_generation_prompt=True,
            reply_modality=reply_modality,
            voice=voice,
            return_tensors="pt",
        )
        return dict(model_inputs)

    def _forward(self, model_inputs, **generate_kwargs):
        generate_kwargs.setdefault("reply_modality", self.default_reply_modality)
        output = self.model.generate(**model_inputs, return_audio=True, **generate_kwargs)
        return {"output": output}

    def postprocess(self, model_outputs):
        output = model_outputs["output"]
        text = self.processor.tokenizer.decode(output.text_ids[0].tolist(), skip_special_tokens=True).strip()
        audio = output.audio_values[0][0].numpy().astype(np.float32)
        return {"text": text, "audio": audio, "sampling_rate": self.model.config.codec_config.sampling_rate}

    def __call__(self, inputs, **kwargs):
        if kwargs.pop("stream", False):
            return self.stream(inputs, **kwargs)
        return super().__call__(inputs, **kwargs)

    def stream(self, inputs, frames_per_chunk: int = 1, **kwargs):
        """Yields `{"text", "audio", "sampling_rate"}` pieces as the reply is generated: `text` is the new text (may be
        empty), `audio` the new float32 samples (may be empty). Concatenated, they equal the non-streamed reply."""
        from .streaming import DeepOmniStreamer

        preprocess_params, forward_params, _ = self._sanitize_parameters(**kwargs)
        model_inputs = self.preprocess(inputs, **preprocess_params)
        model_inputs = self._ensure_tensor_on_device(model_inputs, device=self.device)
        forward_params.setdefault("reply_modality", self.default_reply_modality)
        seed = forward_params.setdefault("seed", 0)
        streamer = DeepOmniStreamer(
            self.processor.tokenizer, self.model.codec_model, noise_seed=seed, frames_per_chunk=frames_per_chunk
        )
        errors = []

        def generate():
            try:
                with torch.no_grad():
                    self.model.generate(**model_inputs, streamer=streamer, **forward_params)
            except Exception as error:  # surfaced in the consumer's thread below
                errors.append(error)
                streamer.end()

        worker = threading.Thread(target=generate, daemon=True)
        worker.start()
        rate = self.model.config.codec_config.sampling_rate
        for text, audio in streamer:
            yield {"text": text, "audio": audio, "sampling_rate": rate}
        worker.join()
        if errors:
            raise errors[0]


class SpeechRecognitionPipeline(SpeechToSpeechPipeline):
    """`deepomni-asr`: speech in, transcript out (a text reply to the ASR instruction)."""

    instruction = ASR_INSTRUCTION
    default_reply_modality = "text"

    def postprocess(self, model_outputs):
        return {"text": super().postprocess(model_outputs)["text"]}


class TextToSpeechPipeline(SpeechToSpeechPipeline):
    """`deepomni-tts`: text in, speech out. The text stream is forced to the given text, so the model only chooses
    the speech (`{"audio", "sampling_rate", "text"}`)."""

    instruction = TTS_INSTRUCTION

    def preprocess(self, inputs, **kwargs):
        if not isinstance(inputs, str) or os.path.exists(inputs) or not inputs.strip():
            raise ValueError("deepomni-tts reads text: pass the sentence to speak as a non-empty string.")
        model_inputs = super().preprocess(inputs, **kwargs)
        text_ids = self.processor.tokenizer(" " + inputs.strip(), add_special_tokens=False)["input_ids"]
        model_inputs["text_to_speak"] = [torch.tensor(text_ids)]
        return model_inputs


__all__ = [
    "SpeechToSpeechPipeline",
    "SpeechRecognitionPipeline",
    "TextToSpeechPipeline",
    "as_user_content",
    "looks_like_path",
]

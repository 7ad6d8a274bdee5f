"""A `deepomni serve` app on loopback for tests: a tiny random DeepOmni, uvicorn in a thread on a free port."""

import base64
import socket
import threading
import time
from pathlib import Path

import urllib.error
import urllib.request

import torch

from deepomni_hf import DeepOmniForConditionalGeneration
from deepomni_hf.tiny import TINY_TEXT_VOCAB_SIZE, tiny_config, tiny_processor


QUESTION_WAV = Path(__file__).resolve().parents[1] / "examples" / "audio" / "question.wav"
MODEL_ID = "deepomni-tiny"
REPLY_STEPS = 20  # decoding steps per test reply: 13 SNAC frames of audio, seconds on a CPU


def tiny_model_and_processor(seed: int = 0):
    torch.manual_seed(seed)
    config = tiny_config(text_vocab_size=TINY_TEXT_VOCAB_SIZE)
    return DeepOmniForConditionalGeneration(config).eval(), tiny_processor(config)


def question_b64() -> str:
    return base64.b64encode(QUESTION_WAV.read_bytes()).decode()


def spoken_question(text: str | None = None) -> list[dict]:
    content = [{"type": "input_audio", "input_audio": {"data": question_b64(), "format": "wav"}}]
    if text:
        content.insert(0, {"type": "text", "text": text})
    return [{"role": "user", "content": content}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackServer:
    """uvicorn serving `app` in a daemon thread; `url` is its base address."""

    def __init__(self, app):
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise RuntimeError("the test server did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.scheduler.close()

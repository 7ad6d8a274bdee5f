"""`deepomni serve` under load on loopback: concurrent streaming clients are decoded together and each gets the reply
it gets alone; a client that leaves mid-reply frees its rows without disturbing the others; 30 bad requests get their
documented status codes; a full queue answers 429 and a long wait 503; the server stays healthy."""

import base64
import http.client
import io
import json
import threading
import time

import numpy as np
import pytest
import soundfile as sf


openai = pytest.importorskip("openai", reason="the `serve` extra (openai) is not installed")
pytest.importorskip("fastapi", reason="the `serve` extra (fastapi) is not installed")

from deepomni_hf.serving import ServeSettings, create_app  # noqa: E402
from serving_helpers import MODEL_ID, REPLY_STEPS, LoopbackServer, question_b64, spoken_question, tiny_model_and_processor  # noqa: E402
from test_serving_api import ask, collect_stream, wav_samples  # noqa: E402


MAX_AUDIO_SECONDS = 10.0
MAX_BODY_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def server():
    model, processor = tiny_model_and_processor()
    settings = ServeSettings(model_id=MODEL_ID, max_concurrency=8, max_audio_seconds=MAX_AUDIO_SECONDS,
                             max_body_bytes=MAX_BODY_BYTES, max_completion_tokens=1000)  # fmt: skip
    app = create_app(model, processor, settings)
    streams = []
    new_stream = app.state.engine.new_stream
    app.state.engine.new_stream = lambda *args: streams.append(new_stream(*args)) or streams[-1]
    app.state.recorded_streams = streams
    with LoopbackServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0, timeout=300)


def run_together(functions):
    results, threads = [None] * len(functions), []
    for index, function in enumerate(functions):
        threads.append(threading.Thread(target=lambda i=index, f=function: results.__setitem__(i, f())))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return results


def streamed(client, seed):
    return lambda: collect_stream(ask(client, seed=seed, stream=True, audio={"voice": "alloy", "format": "pcm16"}))


def test_eight_concurrent_streams_are_batched_and_each_equals_its_reply_alone(client, server):
    scheduler = server.app.state.scheduler
    before = len(scheduler.batch_sizes)
    seeds = list(range(100, 108))
    together = run_together([streamed(client, seed) for seed in seeds])
    assert scheduler.batch_sizes[before:] == [8]  # arrived together, decoded together
    for seed, (content, transcript, pcm, audio_id, reason) in zip(seeds, together):
        alone = ask(client, seed=seed).choices[0].message
        assert pcm.size == (REPLY_STEPS - 7) * 2048 and reason == "length"
        assert np.array_equal(pcm, wav_samples(alone.audio.data)[0]), f"seed {seed}: batched audio differs from alone"
        assert transcript == alone.audio.transcript
    assert len({pcm.tobytes() for _, _, pcm, _, _ in together}) == 8  # eight different seeds, eight different replies


def _leave_mid_reply(server, seed):
    """A raw streaming client that reads until its first audio chunk, then closes the connection."""
    body = json.dumps({"model": MODEL_ID, "messages": spoken_question(), "modalities": ["text", "audio"],
                       "audio": {"voice": "alloy", "format": "pcm16"}, "stream": True, "seed": seed,
                       "max_completion_tokens": 900})  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    while b'"data"' not in (line := response.readline()) or b'"data": null' in line:
        assert line, "the stream ended before any audio"
    connection.sock.close()
    connection.close()
    return "left"


def test_a_client_leaving_mid_reply_frees_its_rows_and_does_not_disturb_the_others(client, server):
    streams = server.app.state.recorded_streams
    seeds = [200, 201, 202]
    start = len(streams)
    results = run_together([streamed(client, seed) for seed in seeds] + [lambda: _leave_mid_reply(server, 299)])
    assert results[-1] == "left"
    left = next(s for s in streams[start:] if s.seed == 299)
    assert left.cancelled and 8 <= left.steps < 900  # stopped at a step soon after the client went away
    for seed, (_, transcript, pcm, _, _) in zip(seeds, results):
        alone = ask(client, seed=seed).choices[0].message
        assert np.array_equal(pcm, wav_samples(alone.audio.data)[0]) and transcript == alone.audio.transcript


def test_a_non_streamed_client_leaving_mid_reply_frees_its_rows(server):
    streams = server.app.state.recorded_streams
    start = len(streams)
    body = json.dumps({"model": MODEL_ID, "messages": spoken_question(), "modalities": ["text", "audio"],
                       "audio": {"voice": "alloy", "format": "wav"}, "seed": 298, "max_completion_tokens": 900})  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    deadline = time.monotonic() + 300
    while not any(s.seed == 298 and s.steps >= 8 for s in streams[start:]):  # decoding has begun
        assert time.monotonic() < deadline, "the request never started decoding"
        time.sleep(0.05)
    connection.sock.close()
    connection.close()
    left = next(s for s in streams[start:] if s.seed == 298)
    while not left.should_stop:
        assert time.monotonic() < deadline, "the request was not stopped after its client left"
        time.sleep(0.05)
    assert left.cancelled and 8 <= left.steps < 900  # stopped soon after the client went away, not run to its end


def _wav_b64(seconds, rate=8000, silent=False):
    t = np.arange(int(seconds * rate)) / rate
    wave = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 220 * t)
    buffer = io.BytesIO()
    sf.write(buffer, wave.astype(np.float32), rate, subtype="PCM_16", format="WAV")
    return base64.b64encode(buffer.getvalue()).decode()


def _audio_message(data, fmt="wav", role="user"):
    return [{"role": role, "content": [{"type": "input_audio", "input_audio": {"data": data, "format": fmt}}]}]


GOOD = {"model": MODEL_ID, "messages": [{"role": "user", "content": "Hi"}], "modalities": ["text"], "max_completion_tokens": 2}
SPOKEN = {"model": MODEL_ID, "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}, "max_completion_tokens": 2}
USER = {"role": "user", "content": "Hi"}

# (name, method, path, body (dict → JSON; bytes as is), extra headers, status, error code or None)
BAD_REQUESTS = [
    ("invalid JSON", "POST", "/v1/chat/completions", b"{not json", {}, 400, "invalid_json"),
    ("JSON array", "POST", "/v1/chat/completions", b"[1, 2]", {}, 400, "invalid_json"),
    ("no messages", "POST", "/v1/chat/completions", {"model": MODEL_ID}, {}, 400, None),
    ("empty messages", "POST", "/v1/chat/completions", {**GOOD, "messages": []}, {}, 400, None),
    ("unknown role", "POST", "/v1/chat/completions", {**GOOD, "messages": [{"role": "tool", "content": "x"}]}, {}, 400, None),
    ("last turn not the user's", "POST", "/v1/chat/completions", {**GOOD, "messages": [USER, {"role": "assistant", "content": "Yo"}]}, {}, 400, "invalid_messages"),
    ("image part", "POST", "/v1/chat/completions", {**GOOD, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, {}, 400, None),
    ("empty user turn", "POST", "/v1/chat/completions", {**GOOD, "messages": [{"role": "user", "content": []}]}, {}, 400, None),
    ("bad base64", "POST", "/v1/chat/completions", {**SPOKEN, "messages": _audio_message("@@not base64@@")}, {}, 400, "invalid_base64"),
    ("undecodable audio", "POST", "/v1/chat/completions", {**SPOKEN, "messages": _audio_message(base64.b64encode(b"RIFF" + bytes(range(256)) * 8).decode())}, {}, 400, "invalid_audio"),
    ("silent audio", "POST", "/v1/chat/completions", {**SPOKEN, "messages": _audio_message(_wav_b64(1.0, silent=True))}, {}, 400, "silent_audio"),
    ("audio over the limit", "POST", "/v1/chat/completions", {**SPOKEN, "messages": _audio_message(_wav_b64(MAX_AUDIO_SECONDS + 1))}, {}, 400, "audio_too_long"),
    ("unsupported input format", "POST", "/v1/chat/completions", {**SPOKEN, "messages": _audio_message(question_b64(), fmt="aiff")}, {}, 400, "unsupported_audio_format"),
    ("input_audio in an assistant turn", "POST", "/v1/chat/completions", {**SPOKEN, "messages": _audio_message(question_b64(), role="assistant") + [USER]}, {}, 400, None),
    ("unknown audio id", "POST", "/v1/chat/completions", {**GOOD, "messages": [USER, {"role": "assistant", "audio": {"id": "audio_nope"}}, USER]}, {}, 400, "audio_not_found"),
    ("unknown voice", "POST", "/v1/chat/completions", {**SPOKEN, "messages": [USER], "audio": {"voice": "nova", "format": "wav"}}, {}, 400, "unknown_voice"),
    ("unknown modality", "POST", "/v1/chat/completions", {**GOOD, "modalities": ["text", "video"]}, {}, 400, None),
    ("audio without text modality", "POST", "/v1/chat/completions", {**GOOD, "modalities": ["audio"]}, {}, 400, None),
    ("unsupported output format", "POST", "/v1/chat/completions", {**SPOKEN, "messages": [USER], "audio": {"voice": "alloy", "format": "mp3"}}, {}, 400, "unsupported_audio_format"),
    ("temperature too high", "POST", "/v1/chat/completions", {**GOOD, "temperature": 3}, {}, 400, None),
    ("top_p zero", "POST", "/v1/chat/completions", {**GOOD, "top_p": 0}, {}, 400, None),
    ("zero tokens", "POST", "/v1/chat/completions", {**GOOD, "max_completion_tokens": 0}, {}, 400, None),
    ("too many tokens", "POST", "/v1/chat/completions", {**GOOD, "max_completion_tokens": 5000}, {}, 400, "too_many_tokens"),
    ("conversation over the context", "POST", "/v1/chat/completions", {**GOOD, "max_completion_tokens": 1000, "messages": [{"role": "user", "content": "seven " * 3500}]}, {}, 400, "context_length_exceeded"),
    ("seed not an integer", "POST", "/v1/chat/completions", {**GOOD, "seed": "abc"}, {}, 400, None),
    ("n above 1", "POST", "/v1/chat/completions", {**GOOD, "n": 2}, {}, 400, None),
    ("unknown model", "POST", "/v1/chat/completions", {**GOOD, "model": "gpt-4o-audio-preview"}, {}, 404, "model_not_found"),
    ("unknown route", "POST", "/v1/audio/speech", GOOD, {}, 404, None),
    ("wrong method", "GET", "/v1/chat/completions", None, {}, 405, None),
    ("not JSON", "POST", "/v1/chat/completions", b"hello", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    ("body over the limit", "POST", "/v1/chat/completions", b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}", {}, 413, "request_too_large"),
]


def request(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    payload = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    connection.request(method, path, payload, {"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    status, data, retry_after = response.status, response.read(), response.getheader("Retry-After")
    connection.close()
    return status, json.loads(data) if data else None, retry_after


def test_bad_requests_get_their_documented_status_and_the_server_stays_healthy(server, client):
    assert len(BAD_REQUESTS) == 31
    for name, method, path, body, headers, status, code in BAD_REQUESTS:
        got, answer, _ = request(server, method, path, body, headers)
        assert got == status, f"{name}: status {got}, expected {status}: {answer}"
        error = answer["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"], name
        assert code is None or error["code"] == code, f"{name}: code {error['code']}, expected {code}"
        sent = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
        quoted = [sent[i : i + 24] for i in range(0, max(0, len(sent) - 24), 24)]
        assert not any(piece.decode(errors="ignore") in error["message"] for piece in quoted if len(set(piece)) > 4), (
            f"{name}: the message quotes the request"
        )
    status, health, _ = request(server, "GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["running"] == 0
    assert ask(client, seed=1).choices[0].message.audio.data  # still answers


def test_full_queue_is_429_and_a_long_wait_is_503():
    model, processor = tiny_model_and_processor()
    settings = ServeSettings(model_id=MODEL_ID, max_concurrency=1, max_queue=1, queue_timeout=1.0, batch_window=0.0)
    app = create_app(model, processor, settings)
    with LoopbackServer(app) as server:
        long_reply = {**GOOD, "max_completion_tokens": 400}
        results = run_together([lambda: request(server, "POST", "/v1/chat/completions", long_reply)] + [
            lambda: (threading.Event().wait(0.5), request(server, "POST", "/v1/chat/completions", GOOD))[1]
            for _ in range(3)
        ])  # fmt: skip
        statuses = sorted(status for status, _, _ in results)
        assert statuses[0] == 200 and statuses.count(429) >= 1 and statuses.count(503) >= 1, statuses
        for status, answer, retry_after in results:
            if status in (429, 503):
                assert retry_after and int(retry_after) >= 1
                assert answer["error"]["code"] == {429: "queue_full", 503: "queue_timeout"}[status]
        assert request(server, "GET", "/health")[0] == 200

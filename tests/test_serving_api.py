"""`deepomni serve` through the official `openai` client on loopback: spoken question → text and speech, streamed and
not; streamed PCM equals the non-streamed audio; seeds, voices, text replies, multi-turn audio by id, logs."""

import base64
import io
import logging
import time

import numpy as np
import pytest
import soundfile as sf


openai = pytest.importorskip("openai", reason="the `serve` extra (openai) is not installed")
pytest.importorskip("fastapi", reason="the `serve` extra (fastapi) is not installed")

from deepomni_hf.serving import ServeSettings, create_app  # noqa: E402
from serving_helpers import MODEL_ID, QUESTION_WAV, REPLY_STEPS, LoopbackServer, spoken_question, tiny_model_and_processor  # noqa: E402


SAMPLES_PER_FRAME = 2048
# Audio slot i starts i + 1 steps after the text: the last slot's first code comes at step 8, so a reply cut after
# REPLY_STEPS steps holds REPLY_STEPS - 7 complete frames.
REPLY_SAMPLES = (REPLY_STEPS - 7) * SAMPLES_PER_FRAME


@pytest.fixture(scope="module")
def server():
    model, processor = tiny_model_and_processor()
    app = create_app(model, processor, ServeSettings(model_id=MODEL_ID, audio_ttl_seconds=3600))
    with LoopbackServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test-not-a-real-key", max_retries=0, timeout=120)


def ask(client, messages=None, stream=False, **options):
    options = {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}, "seed": 7,
               "max_completion_tokens": REPLY_STEPS, **options}  # fmt: skip
    return client.chat.completions.create(model=MODEL_ID, messages=messages or spoken_question(), stream=stream, **options)


def collect_stream(stream):
    """(content, transcript, pcm16 samples, audio id, finish_reason) of a streamed reply."""
    content, transcript, pcm, audio_id, reason = "", "", b"", None, None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        reason = choice.finish_reason or reason
        delta = choice.delta
        content += delta.content or ""
        if delta.audio is not None:
            audio_id = delta.audio.id or audio_id
            transcript += delta.audio.transcript or ""
            pcm += base64.b64decode(delta.audio.data or "")
    return content, transcript, np.frombuffer(pcm, dtype="<i2"), audio_id, reason


def wav_samples(data_b64: str) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(base64.b64decode(data_b64)), dtype="int16")
    return samples, rate


def test_spoken_question_gets_text_and_speech(client):
    reply = ask(client)
    message = reply.choices[0].message
    assert reply.model == MODEL_ID and reply.object == "chat.completion"
    assert isinstance(message.content, str) and message.content.strip()
    assert message.audio.transcript == message.content
    assert message.audio.id.startswith("audio_") and message.audio.expires_at > time.time() + 3000
    samples, rate = wav_samples(message.audio.data)
    assert rate == 24000 and samples.shape == (REPLY_SAMPLES,) and np.abs(samples).max() > 0
    assert reply.choices[0].finish_reason == "length"  # the untrained tiny model does not stop by itself
    assert reply.usage.completion_tokens == REPLY_STEPS and reply.usage.prompt_tokens > 50


def test_streamed_pcm_equals_the_non_streamed_audio_for_the_same_seed(client):
    whole = ask(client, seed=11).choices[0].message
    content, transcript, pcm, audio_id, reason = collect_stream(ask(client, seed=11, stream=True, audio={"voice": "alloy", "format": "pcm16"}))
    samples, _ = wav_samples(whole.audio.data)
    assert np.array_equal(pcm, samples)
    assert transcript == whole.audio.transcript and content == ""  # spoken replies stream their text as transcript
    assert audio_id.startswith("audio_") and audio_id != whole.audio.id and reason == "length"
    raw = ask(client, seed=11, audio={"voice": "alloy", "format": "pcm16"}).choices[0].message
    assert np.array_equal(np.frombuffer(base64.b64decode(raw.audio.data), dtype="<i2"), samples)


def test_seed_reproduces_a_reply(client):
    first, again = (wav_samples(ask(client, seed=5).choices[0].message.audio.data)[0] for _ in range(2))
    other_seed = wav_samples(ask(client, seed=6).choices[0].message.audio.data)[0]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other_seed)


@pytest.mark.parametrize("voice, token", [("alloy", "ANS_A"), ("echo", "M29"), ("shimmer", "F10"), ("F10", "F10")])
def test_voices_map_to_speaker_tokens(client, server, monkeypatch, voice, token):
    """The speaker token of the voice sits in the audio slots of the prompt's last position (DESIGN §3)."""
    engine, seen = server.app.state.engine, []
    run_batch = engine.run_batch
    monkeypatch.setattr(engine, "run_batch", lambda key, prompts, streams: seen.extend(prompts) or run_batch(key, prompts, streams))
    ask(client, audio={"voice": voice, "format": "wav"}, max_completion_tokens=2)
    config = engine.model.config
    assert seen[0].input_ids[-1, :7].tolist() == [config.audio_token_id(token, slot) for slot in range(7)]


def test_text_only_reply_streamed_and_not(client):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    whole = ask(client, messages, modalities=["text"], audio=None)
    assert whole.choices[0].message.audio is None and whole.choices[0].message.content
    content, transcript, pcm, audio_id, _ = collect_stream(ask(client, messages, stream=True, modalities=["text"], audio=None))
    assert content == whole.choices[0].message.content and transcript == "" and pcm.size == 0 and audio_id is None


def test_multi_turn_with_an_assistant_audio_turn_sent_back_by_id(client, server):
    first = ask(client).choices[0].message
    history = spoken_question() + [{"role": "assistant", "audio": {"id": first.audio.id}}]
    second = ask(client, history + [{"role": "user", "content": "And in German?"}])
    assert second.choices[0].message.audio.data
    stored = server.app.state.store.get(first.audio.id)
    assert stored.transcript == first.audio.transcript and stored.codes.shape == (REPLY_STEPS - 7, 7)
    # the prompt holds the earlier answer as its text and codes: the same layout as the processor builds for them
    engine = server.app.state.engine
    question = {"type": "audio", "audio": str(QUESTION_WAV)}
    expected = engine.build_prompt([
        {"role": "user", "content": [question]},
        {"role": "assistant", "content": [{"type": "text", "text": first.audio.transcript},
                                          {"type": "audio_codes", "codes": stored.codes, "voice": "ANS_A"}]},
        {"role": "user", "content": "And in German?"},
    ], "speech", "ANS_A")  # fmt: skip
    assert second.usage.prompt_tokens == expected.num_positions
    with pytest.raises(openai.BadRequestError) as error:
        ask(client, spoken_question() + [{"role": "assistant", "audio": {"id": "audio_unknown"}}] + spoken_question())
    assert error.value.body["code"] == "audio_not_found"


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list()] == [MODEL_ID]
    assert client.models.retrieve(MODEL_ID).id == MODEL_ID
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o-audio-preview")


def test_errors_never_echo_the_body_or_the_key_into_logs(client, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "SECRET-words-in-the-question"
    with pytest.raises(openai.BadRequestError) as error:
        ask(client, [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": f"{secret}!!", "format": "wav"}}]}])
    assert error.value.status_code == 400 and error.value.body["code"] == "invalid_base64"
    assert secret not in str(error.value.body)
    ask(client, [{"role": "user", "content": secret}], modalities=["text"], audio=None)
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    assert secret not in logged and "sk-test-not-a-real-key" not in logged


def test_serve_command_uses_the_chat_commands_default_model(monkeypatch):
    """`deepomni serve` without --model loads through `deepomni chat`'s own loader (same default), then runs uvicorn
    with the limits from the command line."""
    import types

    import uvicorn

    from deepomni_hf import cli
    from deepomni_hf.pipelines import cli as chat_cli

    model, processor = tiny_model_and_processor()
    loaded, served = [], {}
    monkeypatch.setattr(chat_cli, "load_chat_pipeline", lambda name: loaded.append(name) or types.SimpleNamespace(model=model, processor=processor))
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: served.update(app=app, host=host, port=port))
    assert cli.main(["serve", "--port", "8123", "--max-concurrency", "3", "--max-audio-seconds", "12"]) == 0
    assert loaded == [None] and (served["host"], served["port"]) == ("127.0.0.1", 8123)
    settings = served["app"].state.settings
    assert settings.model_id == chat_cli.DEFAULT_TINY_MODEL and settings.max_concurrency == 3 and settings.max_audio_seconds == 12
    served["app"].state.scheduler.close()
    assert cli.main(["serve", "--max-audio-seconds", "45"]) == 1  # over Whisper's window: one clear line, no server


def test_audio_store_is_bounded_in_entries_and_in_time():
    import torch

    from deepomni_hf.serving.audio_store import AudioStore

    now = [1000.0]
    store = AudioStore(max_entries=2, ttl_seconds=60, clock=lambda: now[0])
    codes = torch.zeros(3, 7, dtype=torch.long)
    first = store.put("a", codes, "one", "ANS_A")
    store.put("b", codes, "two", "M29")
    assert first.expires_at == 1060 and store.get("a").transcript == "one"
    store.put("c", codes, "three", "F10")  # over the bound: the oldest goes
    assert store.get("a") is None and store.get("b").voice == "M29" and len(store) == 2
    now[0] = 1061.0  # past the expiry of everything
    assert store.get("b") is None and store.get("c") is None and len(store) == 0

"""The voice-chat page in a real browser: Debian's headless Chromium, driven by Playwright, with the question WAV as
its (fake) microphone. It records, stops, sends, shows the reply's text and plays its streamed PCM."""

import os
import shutil
from pathlib import Path

import pytest


pytest.importorskip("fastapi", reason="the `serve` extra (fastapi) is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="the `serve` extra (playwright) is not installed")

from deepomni_hf.serving import ServeSettings, create_app  # noqa: E402
from serving_helpers import MODEL_ID, QUESTION_WAV, REPLY_STEPS, LoopbackServer, tiny_model_and_processor  # noqa: E402


CHROMIUM = "/usr/bin/chromium"
# Headless, and no background networking: this machine's network is closed (see the environment notes).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)")
def test_page_records_the_microphone_and_plays_the_streamed_reply(tmp_path):
    model, processor = tiny_model_and_processor()
    app = create_app(model, processor, ServeSettings(model_id=MODEL_ID))
    microphone = [f"--use-file-for-fake-audio-capture={QUESTION_WAV}", "--use-fake-ui-for-media-stream",
                  "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
    with LoopbackServer(app) as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS + microphone)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(f"{server.url}/?max_completion_tokens={REPLY_STEPS}&seed=3")
            page.wait_for_function("window.deepomniModel !== undefined")
            page.click("#talk")
            page.wait_for_selector("#talk.recording")
            page.wait_for_timeout(2500)  # 2.5 s of the question from the fake microphone
            page.click("#talk")
            page.wait_for_function("window.deepomni.replies === 1", timeout=240_000)
            page.wait_for_function("window.deepomni.samplesPlayed >= window.deepomni.samplesReceived", timeout=60_000)
            counters = page.evaluate("window.deepomni")
            turns = page.locator(".turn").all_inner_texts()
            page.select_option("#voice", "shimmer")
            page.fill("#text", "Thank you very much!")
            page.click("#ask button")
            page.wait_for_function("window.deepomni.replies === 2", timeout=240_000)
            second = page.evaluate("window.deepomni")
            screenshot = tmp_path / "serve_page.png"
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    # the user's recorded turn, then the reply's text (the tiny model's text is noise, but it is text)
    assert turns[0].startswith("Spoken question (") and turns[0].endswith(" s)")
    assert "Error" not in turns[1] and turns[1].strip() not in ("", "…")
    assert counters["samplesReceived"] == (REPLY_STEPS - 7) * 2048  # every streamed sample arrived ...
    assert counters["samplesPlayed"] == counters["samplesReceived"]  # ... and was played by Web Audio
    assert second["samplesReceived"] == 2 * counters["samplesReceived"]  # the typed turn got a spoken reply too
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("DEEPOMNI_PAGE_SCREENSHOT"):  # to refresh the README's picture
        shutil.copy(screenshot, os.environ["DEEPOMNI_PAGE_SCREENSHOT"])

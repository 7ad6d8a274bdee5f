"""`deepomni serve` under load: 1, 2, 4 and 8 concurrent streaming clients against the small configuration on CPU.

Every client posts the spoken question (`examples/audio/question.wav`) to `/v1/chat/completions` with `stream: true`
over loopback HTTP and reads the server-sent events. Per stream:
  * TTFA — time from sending the request to the first PCM chunk (audio decoding, Whisper features, queueing, prefill,
    the 7 steps until the first SNAC frame, the codec's first window);
  * RTF — time from sending the request to the last chunk, over the seconds of audio received.
For each concurrency: p50 / p95 of both over the streams, the batches the scheduler formed, and the aggregate audio
throughput (audio seconds per wall second). The same is measured for text-only replies (`modalities: ["text"]`, no
codec): time per reply and decoding steps per second over all clients, which isolates the batched `generate` from the
per-stream codec work. Ratios are to the 1-client figures of the same run; `batched_gain` is
the wall time of N one-at-a-time requests (N × the 1-client wall time) over the wall time of the N together.

    python benchmarks/serve_load.py [--steps 40] [--threads 2]

Writes `benchmarks/results/serve_load.json`.
"""

import argparse
import base64
import http.client
import json
import platform
import socket
import statistics
import threading
import time
from pathlib import Path

import torch
import transformers

from deepomni_hf import DeepOmniForConditionalGeneration
from deepomni_hf.serving import ServeSettings, create_app
from deepomni_hf.tiny import tiny_processor


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
QUESTION = ROOT / "examples" / "audio" / "question.wav"
RATE = 24000


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def stream_once(port: int, body: bytes, text_only: bool = False) -> dict:
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200, response.read()[:200]
    first_audio, samples = None, 0
    for line in response:
        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        delta = ((chunk.get("choices") or [{}])[0].get("delta")) or {}
        data = (delta.get("audio") or {}).get("data")
        if data:
            first_audio = first_audio or time.perf_counter()
            samples += len(base64.b64decode(data)) // 2
    end = time.perf_counter()
    connection.close()
    if text_only:  # random weights mostly pick reserved ids, which decode to no text: time the whole reply
        return {"wall_s": end - start}
    audio_seconds = samples / RATE
    return {"ttfa_s": first_audio - start, "wall_s": end - start, "audio_s": audio_seconds,
            "rtf": (end - start) / audio_seconds}  # fmt: skip


def run_clients(port, clients, steps, seed0, text_only=False):
    question = base64.b64encode(QUESTION.read_bytes()).decode()
    bodies = [json.dumps({
        "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": question, "format": "wav"}}]}],
        "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "pcm16"}, "stream": True,
        "max_completion_tokens": steps, "seed": seed0 + k,
    } if not text_only else {
        "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": question, "format": "wav"}}]}],
        "modalities": ["text"], "stream": True, "max_completion_tokens": steps, "seed": seed0 + k,
    }).encode() for k in range(clients)]  # fmt: skip
    results = [None] * clients
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, stream_once(port, bodies[k], text_only)))
               for k in range(clients)]  # fmt: skip
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - start


def summarise(streams, wall):
    ttfa = [s["ttfa_s"] for s in streams]
    rtf = [s["rtf"] for s in streams]
    return {
        "clients": len(streams), "ttfa_p50_s": statistics.median(ttfa), "ttfa_p95_s": percentile(ttfa, 0.95),
        "rtf_p50": statistics.median(rtf), "rtf_p95": percentile(rtf, 0.95), "wall_s": wall,
        "audio_s_per_stream": statistics.median(s["audio_s"] for s in streams),
        "throughput_audio_s_per_s": sum(s["audio_s"] for s in streams) / wall,
    }  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="decoding steps per reply (40 = 33 frames, 2.8 s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--concurrency", default="1,2,4,8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from latency import build_config

    torch.manual_seed(0)
    config = build_config(full=False)
    model = DeepOmniForConditionalGeneration(config).eval()
    processor = tiny_processor(config)  # a small BPE tokenizer laid out on the full text vocabulary
    levels = [int(n) for n in args.concurrency.split(",")]
    settings = ServeSettings(model_id="deepomni-small", max_concurrency=max(levels), queue_timeout=1800)
    app = create_app(model, processor, settings)

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    run_clients(port, 1, args.steps, seed0=0)  # warm-up
    scheduler = app.state.scheduler
    rows = {}
    for clients in levels:
        before = len(scheduler.batch_sizes)
        streams, wall = run_clients(port, clients, args.steps, seed0=100 * clients)
        rows[clients] = {**summarise(streams, wall), "batches": scheduler.batch_sizes[before:]}
        print(json.dumps(rows[clients]), flush=True)
    text_rows = {}
    for clients in levels:
        before = len(scheduler.batch_sizes)
        streams, wall = run_clients(port, clients, args.steps, seed0=100 * clients, text_only=True)
        reply_s = [s["wall_s"] for s in streams]
        text_rows[clients] = {"clients": clients, "reply_p50_s": statistics.median(reply_s),
                              "reply_p95_s": percentile(reply_s, 0.95), "wall_s": wall,
                              "steps_per_s": clients * args.steps / wall, "batches": scheduler.batch_sizes[before:]}  # fmt: skip
        print(json.dumps(text_rows[clients]), flush=True)
    for clients, row in text_rows.items():
        row["reply_p50_ratio"] = row["reply_p50_s"] / text_rows[levels[0]]["reply_p50_s"]
        row["steps_per_s_ratio"] = row["steps_per_s"] / text_rows[levels[0]]["steps_per_s"]
    one = rows[levels[0]]
    for clients, row in rows.items():
        row["ttfa_p50_ratio"] = row["ttfa_p50_s"] / one["ttfa_p50_s"]
        row["ttfa_p95_ratio"] = row["ttfa_p95_s"] / one["ttfa_p95_s"]
        row["rtf_p50_ratio"] = row["rtf_p50"] / one["rtf_p50"]
        row["rtf_p95_ratio"] = row["rtf_p95"] / one["rtf_p95"]
        row["batched_gain"] = clients * one["wall_s"] / row["wall_s"]
    server.should_exit = True
    result = {
        "benchmark": "deepomni serve: concurrent streaming clients on loopback (random weights)",
        "configuration": "small CPU configuration of benchmarks/latency.py (hidden 512, 8 layers, 16 experts top-4, "
        "4-layer Whisper, full SNAC 24 kHz), float32",
        "device": f"CPU {platform.machine()}, {args.threads} threads, shared machine",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "steps_per_reply": args.steps, "frames_per_chunk": settings.frames_per_chunk,
        "reference": "the 1-client figures of the same run",
        "results": [rows[c] for c in levels],
        "text_only": [text_rows[c] for c in levels],
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_load.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""The batching queue: requests that arrive together are decoded together.

One worker thread takes the oldest waiting request, waits `gather_seconds` for requests that arrive with it (and, up
to `max_prepare_wait` more, for requests that arrived over HTTP but whose audio is still being decoded), and runs up to
`max_concurrency` requests with the same generation settings as one batch through [`DeepOmniEngine.run_batch`]; the
others wait for the next batch. At most `max_queue` requests wait (more: 429 with `Retry-After`); a request that
waits longer than `queue_timeout` gives up (503 with `Retry-After`). A request whose client went away while waiting is
dropped; one that went away while decoding is stopped at the next step (its rows leave the batch).
"""

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from .engine import BatchKey, DeepOmniEngine, Prompt, ReplyStream
from .errors import APIError


logger = logging.getLogger("deepomni_hf.serving")


@dataclass
class Job:
    key: BatchKey
    prompt: Prompt
    stream: ReplyStream
    loop: asyncio.AbstractEventLoop | None = None
    started: asyncio.Future | None = None
    enqueued_at: float = field(default_factory=time.monotonic)


class BatchScheduler:
    def __init__(self, engine: DeepOmniEngine, max_concurrency: int = 8, max_queue: int = 32,
                 queue_timeout: float = 60.0, gather_seconds: float = 0.05, max_prepare_wait: float = 2.0):  # fmt: skip
        if max_concurrency < 1 or max_queue < 0:
            raise ValueError("max_concurrency must be >= 1 and max_queue >= 0.")
        self.engine, self.max_concurrency, self.max_queue = engine, max_concurrency, max_queue
        self.queue_timeout, self.gather_seconds, self.max_prepare_wait = queue_timeout, gather_seconds, max_prepare_wait
        self._preparing = 0  # requests received whose prompts are being built (they join the next batch if they can)
        self._waiting: list[Job] = []
        self._running: list[Job] = []
        self._lock = threading.Condition()
        self._closed = False
        self.batches_run = 0
        self.batch_sizes: list[int] = []  # for tests and benchmarks: how requests were grouped
        self._worker = threading.Thread(target=self._work, name="deepomni-batcher", daemon=True)
        self._worker.start()

    # ----- called from the event loop -----
    @contextlib.contextmanager
    def arrival(self):
        """Wraps a request from its arrival to `admit`: while its prompt is being built the worker waits a little for
        it to join the next batch. Pass the yielded token to `admit`."""
        token = {"preparing": True}
        with self._lock:
            self._preparing += 1
        try:
            yield token
        finally:
            with self._lock:
                self._leave(token)

    def _leave(self, token: dict | None) -> None:
        if token is not None and token["preparing"]:
            token["preparing"] = False
            self._preparing -= 1
            self._lock.notify_all()

    async def admit(self, job: Job, arrival: dict | None = None) -> None:
        """Queues `job` and returns once its batch has started; raises 429 (queue full) or 503 (waited too long)."""
        job.loop = asyncio.get_running_loop()
        job.started = job.loop.create_future()
        with self._lock:
            self._leave(arrival)  # in the same critical section as joining the queue: the worker sees one or the other
            if len(self._waiting) >= self.max_queue + max(0, self.max_concurrency - len(self._running)):
                raise APIError(429, "Too many requests are waiting; retry later.", code="queue_full",
                               retry_after=self._retry_after())  # fmt: skip
            self._waiting.append(job)
            self._lock.notify_all()
        try:
            await asyncio.wait_for(asyncio.shield(job.started), self.queue_timeout)
        except asyncio.TimeoutError:
            if self._withdraw(job):
                raise APIError(503, f"Waited {self.queue_timeout:g} s in the queue; retry later.",
                               code="queue_timeout", retry_after=self._retry_after()) from None  # fmt: skip
            await job.started
        except asyncio.CancelledError:  # the client went away while waiting
            self._withdraw(job)
            job.stream.cancel()
            raise

    def stats(self) -> dict:
        with self._lock:
            return {"waiting": len(self._waiting), "running": len(self._running), "batches": self.batches_run}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def _withdraw(self, job: Job) -> bool:
        with self._lock:
            if job in self._waiting:
                self._waiting.remove(job)
                return True
            return False

    def _retry_after(self) -> int:
        return max(1, int(self.queue_timeout // 4))

    # ----- the worker thread -----
    def _next_batch(self) -> list[Job] | None:
        with self._lock:
            while not self._waiting and not self._closed:
                self._lock.wait()
            if self._closed:
                return None
            oldest_wait = time.monotonic() - self._waiting[0].enqueued_at
        time.sleep(max(0.0, self.gather_seconds - oldest_wait))  # let requests that arrive together join one batch
        with self._lock:
            deadline = time.monotonic() + self.max_prepare_wait
            while self._preparing and len(self._waiting) < self.max_concurrency and time.monotonic() < deadline:
                self._lock.wait(max(0.0, deadline - time.monotonic()))
            self._waiting = [job for job in self._waiting if not job.stream.cancelled]
            if not self._waiting:
                return []
            key = self._waiting[0].key
            batch = [job for job in self._waiting if job.key == key][: self.max_concurrency]
            for job in batch:
                self._waiting.remove(job)
            self._running = batch
            return batch

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:
                continue
            for job in batch:
                job.loop.call_soon_threadsafe(_set_started, job.started)
            self.batches_run += 1
            self.batch_sizes.append(len(batch))
            try:
                self.engine.run_batch(batch[0].key, [job.prompt for job in batch], [job.stream for job in batch])
            except Exception as error:  # never take the server down; never log request content
                logger.error("generation failed for a batch of %d: %s", len(batch), type(error).__name__)
                for job in batch:
                    job.stream.fail("Generation failed on the server.")
            finally:
                with self._lock:
                    self._running = []


def _set_started(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


__all__ = ["BatchScheduler", "Job"]

"""Dynamic batching: concurrent requests to one model coalesced into one ``session.run``.

The same idea as TF Serving's batching (``max_batch_size``, ``batch_timeout_micros``), Triton's
``dynamic_batching`` (``max_queue_delay_microseconds``) and BentoML's adaptive batching::

    batcher = Batcher(lambda x: dict(zip(names, session.run(None, {"images": x}))),
                      max_batch_size=64, max_delay_ms=2.0, on_batch=histogram.observe)
    outputs = await batcher.submit(x)    # x: [n, ...]; outputs: {name: array with n rows}
    await batcher.close()                # drains: every accepted request still gets its answer

Scheduling, chosen so that batching never adds latency at low load:

- One worker thread runs ``run_fn``; the event loop only queues and splits. A request that finds
  the worker idle runs at once (after one loop tick, so requests parsed in the same tick join it).
- While a batch runs, new requests queue; when it ends, everything queued (up to
  ``max_batch_size`` rows, oldest first) runs as the next batch. The busier the server, the
  larger the batches, with no timer involved.
- ``max_delay_ms`` is used only under load (requests were waiting when the last batch ended):
  an under-full batch then waits for more requests until it is full or its oldest request has
  waited ``max_delay_ms`` since it arrived. A lone client never waits for it.

Requests are ``[n, ...]`` arrays; only requests with the same trailing shape and dtype are
concatenated (others wait for the next batch), and a request with more than ``max_batch_size``
rows runs alone. ``inline(rows)``, when given, says which batches are short enough to run on the
event loop itself: with a worker process per core the hop to the worker thread buys no
parallelism, only a thread switch and a wake-up of the loop per batch. ``run_fn`` must return
arrays whose first dimension is the batch. If a coalesced run raises, each of its requests is
re-run alone, so an exception reaches exactly the callers whose input caused it. A caller that
is cancelled (e.g. a request timeout) is dropped from the queue; its batch-mates are unaffected.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

Outputs = Mapping[str, np.ndarray]
RunFn = Callable[[np.ndarray], Outputs]


class BatcherClosedError(RuntimeError):
    """``submit`` after ``close``: the model is being unloaded."""


@dataclass(slots=True)
class _Request:
    x: np.ndarray
    future: asyncio.Future[dict[str, np.ndarray]]
    arrived: float
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = len(self.x)

    def fits_with(self, other: _Request) -> bool:
        return self.x.shape[1:] == other.x.shape[1:] and self.x.dtype == other.x.dtype


class Batcher:
    """Coalesces concurrent ``submit`` calls into batched ``run_fn`` calls on one worker thread."""

    def __init__(
        self,
        run_fn: RunFn,
        max_batch_size: int = 64,
        max_delay_ms: float = 2.0,
        *,
        on_batch: Callable[[int], None] | None = None,
        inline: Callable[[int], bool] | None = None,
        name: str = "batcher",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_delay_ms < 0:
            raise ValueError(f"max_delay_ms must be >= 0, got {max_delay_ms}")
        self._run_fn = run_fn
        self.max_batch_size = max_batch_size
        self.max_delay = max_delay_ms / 1000.0
        self._on_batch = on_batch
        self._inline = inline  # rows -> run this batch on the event loop instead of the worker thread
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._queue: deque[_Request] = deque()
        self._queued_rows = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._under_load = False

    async def submit(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run ``x`` ([n, ...]) as part of a batch; return ``run_fn``'s outputs for its n rows."""
        if self._closed:
            raise BatcherClosedError("the model is being unloaded")
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._dispatch(), name="batcher-dispatch")
        assert self._wakeup is not None
        request = _Request(x, loop.create_future(), loop.time())
        self._queue.append(request)
        self._queued_rows += request.rows
        self._wakeup.set()
        return await request.future

    async def close(self) -> None:
        """Refuse new requests, answer every queued one, then stop the worker thread."""
        self._closed = True
        if self._task is not None and self._wakeup is not None:
            self._wakeup.set()
            await self._task
        self._executor.shutdown(wait=True)

    async def _dispatch(self) -> None:
        assert self._wakeup is not None
        try:
            while True:
                while not self._queue:
                    if self._closed:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                await asyncio.sleep(0)  # requests parsed in this loop tick join the batch
                if self._under_load and self.max_delay > 0 and not self._closed:
                    await self._fill()
                batch = self._take()
                if batch:
                    await self._run(batch)
                self._under_load = bool(self._queue)
        except BaseException as exc:  # a bug here must not leave callers waiting forever
            for request in self._queue:
                if not request.future.done():
                    request.future.set_exception(RuntimeError(f"batcher failed: {exc!r}"))
            raise

    async def _fill(self) -> None:
        """Under load: wait until the batch is full or its oldest request has waited max_delay."""
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        deadline = self._queue[0].arrived + self.max_delay
        while self._queued_rows < self.max_batch_size and not self._closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[_Request]:
        """Oldest first, up to max_batch_size rows of one shape; the rest stay queued in order."""
        batch: list[_Request] = []
        skipped: list[_Request] = []
        rows = 0
        while self._queue:
            request = self._queue[0]
            if request.future.done():  # cancelled while queued
                self._pop()
            elif not batch or (request.fits_with(batch[0]) and rows + request.rows <= self.max_batch_size):
                batch.append(self._pop())
                rows += request.rows
            elif request.fits_with(batch[0]):
                break  # full
            else:
                skipped.append(self._pop())
        self._queue.extendleft(reversed(skipped))
        self._queued_rows += sum(r.rows for r in skipped)
        return batch

    def _pop(self) -> _Request:
        request = self._queue.popleft()
        self._queued_rows -= request.rows
        return request

    async def _run(self, batch: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        x = batch[0].x if len(batch) == 1 else np.concatenate([r.x for r in batch])
        if self._on_batch is not None:
            self._on_batch(len(x))
        try:
            if self._inline is not None and self._inline(len(x)):
                outputs = self._run_fn(x)  # short enough: cheaper than the hop to the worker thread
            else:
                outputs = await loop.run_in_executor(self._executor, self._run_fn, x)
            parts = _split(outputs, [r.rows for r in batch])
        except Exception as exc:
            if len(batch) == 1:
                _resolve(batch[0], exception=exc)
            else:  # find out whose input failed: each request alone
                for request in batch:
                    await self._run([request])
            return
        for request, part in zip(batch, parts, strict=True):
            _resolve(request, result=part)


def _split(outputs: Outputs, rows: list[int]) -> list[dict[str, np.ndarray]]:
    """Cut each output at the requests' row offsets (views, no copies)."""
    total = sum(rows)
    for name, value in outputs.items():
        if value.ndim == 0 or len(value) != total:
            raise ValueError(f"output {name!r} has shape {value.shape}, not a batch of {total} rows")
    if len(rows) == 1:
        return [dict(outputs)]
    offsets = np.cumsum(rows)[:-1]
    split = {name: np.split(value, offsets) for name, value in outputs.items()}
    return [{name: split[name][i] for name in split} for i in range(len(rows))]


def _resolve(
    request: _Request, *, result: dict[str, np.ndarray] | None = None, exception: Exception | None = None
) -> None:
    if request.future.done():  # the caller gave up (cancelled); nobody to tell
        return
    if exception is not None:
        request.future.set_exception(exception)
    else:
        assert result is not None
        request.future.set_result(result)

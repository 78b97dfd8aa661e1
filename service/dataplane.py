"""Protocol-independent serving logic: find the model version a request names, run inference
off the event loop (a small thread pool, or the dynamic batcher), within the request timeout.

Routes parse HTTP and call this; nothing here knows about requests or JSON.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from contracts import RepositoryError, validate_model_name
from service.batching import Batcher, BatcherClosedError
from service.config import Settings
from service.errors import InferenceTimeoutError, InvalidInputError, ModelNotFoundError, ModelNotReadyError
from service.metrics import Metrics
from service.registry import ModelEntry, ModelVersion, Registry, State
from service.runtime import ModelRuntime

log = logging.getLogger("service.dataplane")
_WINDOW_SECONDS = 0.005


class DataPlane:
    def __init__(self, registry: Registry, settings: Settings, metrics: Metrics) -> None:
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        self._pool = ThreadPoolExecutor(settings.inference_threads, thread_name_prefix="inference")
        self._batchers: dict[ModelVersion, Batcher] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.in_flight = 0  # HTTP requests being served, counted by ServiceMiddleware and service.hotpath
        self._window_start = 0.0  # clients seen in the current and the previous 5 ms window
        self._clients: set[object] = set()
        self._previous_clients = 0

    def entry(self, name: str) -> ModelEntry:
        try:
            validate_model_name(name)
        except RepositoryError as e:
            raise ModelNotFoundError(str(e)) from None
        entry = self.registry.models.get(name)
        if entry is None:
            raise ModelNotFoundError.model(name, self.registry.models)
        return entry

    def resolve(self, name: str, version: str | None = None) -> ModelVersion:
        """The version to serve: the given one, or the model's default (highest available)."""
        entry = self.entry(name)
        if version is None:
            default = entry.default
            if default is None:
                raise ModelNotReadyError(f"model {name!r} has no version ready yet: {_states(entry)}")
            return default
        found = entry.versions.get(parse_version(version))
        if found is None:
            raise ModelNotFoundError.version(name, version, entry.versions)
        if found.state is State.LOADING:
            raise ModelNotReadyError(f"model {name!r} version {version} is still loading")
        if found.state is not State.AVAILABLE:
            raise ModelNotFoundError(f"model {name!r} version {version} is not available: {found.error or 'unloaded'}")
        return found

    async def infer(
        self, version: ModelVersion, runtime: ModelRuntime, feeds: dict[str, np.ndarray], outputs: list[str]
    ) -> dict[str, np.ndarray]:
        """Run one request's feeds; ``outputs`` empty means all. 504 after ``request_timeout``."""
        # The batcher only under load (a request alone has nobody to share a batch with), and only
        # for requests smaller than a batch: a bigger one runs in the pool, so it never holds the
        # batcher's one thread (a timed-out caller's run still occupies the thread it runs on).
        batch = len(next(iter(feeds.values())))
        batching = (
            self.settings.batching
            and len(feeds) == 1
            and batch < self.settings.batch_max_size
            and (self.in_flight > 1 or self._busy())
        )
        if not batching:
            self.metrics.observe_batch(version.name, str(version.version), batch)
            if batch * runtime.row_seconds * 1e6 <= self.settings.inline_max_us:
                # cheaper than the hop to a thread (~120 us of CPU) and too short to stall the loop
                return runtime.run(feeds, outputs)
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                if batching:
                    results = await self._batcher(version, runtime).submit(next(iter(feeds.values())))
                    return {n: results[n] for n in outputs} if outputs else results
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._pool, runtime.run, feeds, outputs)
        except BatcherClosedError:
            raise ModelNotReadyError(
                f"model {version.name!r} version {version.version} is being unloaded: retry"
            ) from None
        except TimeoutError:
            raise InferenceTimeoutError(
                f"the inference did not finish within {self.settings.request_timeout:g} s (request_timeout)"
            ) from None

    def note_client(self, client: object) -> None:
        """Called by the middleware for each request with its connection (host, port)."""
        now = time.monotonic()
        if now - self._window_start > _WINDOW_SECONDS:
            self._window_start, self._previous_clients, self._clients = now, len(self._clients), set()
        self._clients.add(client)

    def _busy(self) -> bool:
        """More than one connection sent requests in the last few milliseconds: there is concurrency
        to batch. (Counting requests in flight is not enough: a tiny request is served within one
        event-loop step, so even 64 busy connections rarely have two requests in flight at once.)"""
        return max(self._previous_clients, len(self._clients)) > 1

    def _batcher(self, version: ModelVersion, runtime: ModelRuntime) -> Batcher:
        batcher = self._batchers.get(version)
        if batcher is None:
            name, model, number = runtime.inputs[0].name, version.name, str(version.version)
            batcher = Batcher(
                lambda x: runtime.run({name: x}),
                self.settings.batch_max_size,
                self.settings.batch_max_delay_ms,
                on_batch=lambda rows: self.metrics.observe_batch(model, number, rows),
                inline=lambda rows: rows * runtime.row_seconds * 1e6 <= self.settings.batch_inline_max_us,
                name=f"batcher-{version.name}-{version.version}",
            )
            self._batchers[version] = batcher
        return batcher

    def on_change(self, version: ModelVersion) -> None:
        """Registry listener: metrics of loaded versions and failures; close a drained version's batcher."""
        entry = self.registry.models.get(version.name)
        available = sum(v.state is State.AVAILABLE for v in entry.versions.values()) if entry else 0
        self.metrics.loaded.labels(version.name).set(available)
        if version.state is State.END and version.error:
            self.metrics.load_failures.labels(version.name, str(version.version)).inc()
        if version.state is State.END and version in self._batchers:
            task = asyncio.get_running_loop().create_task(self._batchers.pop(version).close())
            self._closing.add(task)  # keep a reference until it is done
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for batcher in self._batchers.values():
            await batcher.close()
        self._batchers.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def parse_version(version: str) -> int:
    if not (version.isascii() and version.isdigit()) or version.startswith("0") or len(version) > 18:
        raise InvalidInputError(f"version {version!r} is not a version number: expected a positive integer")
    return int(version)


def _states(entry: ModelEntry) -> str:
    parts = [
        f"version {v.version} {v.state.value}" + (f" ({v.error})" if v.error else "") for v in entry.versions.values()
    ]
    return "; ".join(parts) or "no versions"

"""Prometheus metrics, on a registry of the app's own (two apps in one process never share one).

    service_requests_total{model, version, protocol, code}          every model/inference request
    service_request_failures_total{model, version, protocol, code}  the subset with code >= 400
    service_request_duration_seconds{model, version, protocol}      latency histogram, whole request
    service_inference_batch_size{model, version}                    rows per session.run
    service_model_versions_loaded{model}                            versions currently AVAILABLE
    service_model_load_failures_total{model, version}               versions rejected at load or warm-up

``protocol`` is ``tfserving``, ``v2``, ``image`` or ``api``.

With several worker processes (``service.server.serve``), each worker records into mmap files in
one directory and ``/metrics`` sums them (Prometheus multiprocess mode): one scrape shows every
worker's requests. ``use_process_mode`` switches a process into that mode before its app exists.
Observations made on the event loop are buffered and written to those values at most
``FLUSH_SECONDS`` later, in one go, and before every render: with cold CPU caches a lone request
paid ~40 us for writing them one by one (issue 5, goal 3), a batch of them costs ~2 us each.
Every worker loads the whole repository, so the loaded-versions gauge is the max over the live
workers, and a version rejected at load counts once per worker that rejected it.
"""

from __future__ import annotations

import asyncio
import collections
import os
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# a one-image request takes ~0.2-2 ms; a 1000-image binary batch tens of ms
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
# prometheus_client's own variable: its multiprocess values open their files in this directory
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_SECONDS = 0.01  # the longest an observation waits before the values show it


def use_process_mode(directory: Path | None) -> None:
    """Process-wide: where the values of metrics created from now on live. ``None``: in memory, per
    metric object (one worker; many apps in one process stay apart). A directory: mmap files shared
    by the workers, which ``Metrics(directory)`` aggregates. prometheus_client makes this choice
    once, when it is first imported, from ``PROMETHEUS_MULTIPROC_DIR``; setting it here makes it
    independent of import order and of whatever that variable held in the operator's environment."""
    if directory is None:
        os.environ.pop(MULTIPROC_DIR_ENV, None)
        os.environ.pop(MULTIPROC_DIR_ENV.lower(), None)  # the deprecated spelling prometheus_client still reads
        values.ValueClass = values.MutexValue
        return
    os.environ[MULTIPROC_DIR_ENV] = str(directory)
    if not _multiprocess_values():  # a second MultiProcessValue would open this pid's files twice
        values.ValueClass = values.MultiProcessValue()


def _multiprocess_values() -> bool:
    return values.ValueClass is not values.MutexValue


def _forget_dead_workers(directory: Path) -> None:
    """Drop the live-gauge files of workers that died (uvicorn replaces crashed workers), so the
    loaded-versions gauge shows the workers alive now; their counters stay, as counters must."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))
        except PermissionError:
            pass  # alive, owned by someone else


class Metrics:
    """The service's metrics. ``multiprocess_dir``: the directory of ``use_process_mode``, which
    this process must have entered; ``render`` then sums every worker's values."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        if multiprocess_dir is not None and not _multiprocess_values():
            raise RuntimeError("Metrics(multiprocess_dir) needs use_process_mode(multiprocess_dir) first")
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any, Any]] = {}
        self._batch_children: dict[tuple[str, str], Any] = {}
        self._requests: list[tuple[str, str, str, int, float]] = []  # buffered, see the module docstring
        self._batches: list[tuple[str, str, int]] = []
        self._flush: asyncio.TimerHandle | None = None
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # the loop of the pending flush
        labels = ["model", "version", "protocol", "code"]
        self.requests = Counter("service_requests", "Model and inference requests", labels, registry=self.registry)
        self.failures = Counter(
            "service_request_failures", "Requests answered with a 4xx or 5xx status", labels, registry=self.registry
        )
        self.latency = Histogram(
            "service_request_duration_seconds",
            "Request latency, from the first byte read to the last byte written",
            ["model", "version", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "service_inference_batch_size",
            "Rows per onnxruntime session.run (after dynamic batching, when it is on)",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        # every worker loads the whole repository: the workers alive agree, so their max is the count
        # (a sum would multiply it by the worker count)
        self.loaded = Gauge(
            "service_model_versions_loaded",
            "Versions loaded and serving",
            ["model"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.load_failures = Counter(
            "service_model_load_failures",
            "Versions rejected at load or warm-up",
            ["model", "version"],
            registry=self.registry,
        )

    def observe_request(self, model: str, version: str, protocol: str, code: int, seconds: float) -> None:
        """One finished request (buffered)."""
        self._requests.append((model, version, protocol, code, seconds))
        self._flush_soon()

    def observe_batch(self, model: str, version: str, rows: int) -> None:
        """One ``session.run`` of ``rows`` rows (buffered)."""
        self._batches.append((model, version, rows))
        self._flush_soon()

    def _flush_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script or a test): no buffering
            self.flush()
            return
        if self._flush is None or self._flush_loop is not loop:  # none pending on this loop
            self._flush, self._flush_loop = loop.call_later(FLUSH_SECONDS, self.flush), loop

    def flush(self) -> None:
        """Write the buffered observations to the metric values (each worker's own mmap files)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        requests, self._requests = self._requests, []
        batches, self._batches = self._batches, []
        counts = collections.Counter(request[:4] for request in requests)
        for key, count in counts.items():
            counter, failures, _ = self._request_children(*key)
            counter.inc(count)
            if failures is not None:
                failures.inc(count)
        for model, version, protocol, code, seconds in requests:
            self._request_children(model, version, protocol, code)[2].observe(seconds)
        for model, version, rows in batches:
            child = self._batch_children.get((model, version))
            if child is None:
                child = self._batch_children[model, version] = self.batch_size.labels(model, version)
            child.observe(rows)

    def _request_children(self, model: str, version: str, protocol: str, code: int) -> tuple[Any, Any, Any]:
        """The (requests, failures or None, latency) children of one label set, resolved once each."""
        key = (model, version, protocol, code)
        children = self._children.get(key)
        if children is None:
            status = str(code)
            failures = self.failures.labels(model, version, protocol, status) if code >= 400 else None
            children = self._children[key] = (
                self.requests.labels(model, version, protocol, status),
                failures,
                self.latency.labels(model, version, protocol),
            )
        return children

    def render(self) -> bytes:
        self.flush()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        _forget_dead_workers(self.multiprocess_dir)
        registry = CollectorRegistry()  # a fresh one per scrape: the collector reads the files each time
        multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        return generate_latest(registry)

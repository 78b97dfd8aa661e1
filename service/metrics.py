"""Prometheus metrics, on a registry of the app's own (two apps in one process never share one).

    service_requests_total{model, version, protocol, code}          every model/inference request
    service_request_failures_total{model, version, protocol, code}  the subset with code >= 400
    service_request_duration_seconds{model, version, protocol}      latency histogram, whole request
    service_inference_batch_size{model, version}                    rows per session.run
    service_model_versions_loaded{model}                            versions currently AVAILABLE
    service_model_load_failures_total{model, version}               versions rejected at load or warm-up

``protocol`` is ``tfserving``, ``v2``, ``image`` or ``api``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# a one-image request takes ~0.2-2 ms; a 1000-image binary batch tens of ms
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any, Any]] = {}
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
        self.loaded = Gauge(
            "service_model_versions_loaded", "Versions loaded and serving", ["model"], registry=self.registry
        )
        self.load_failures = Counter(
            "service_model_load_failures",
            "Versions rejected at load or warm-up",
            ["model", "version"],
            registry=self.registry,
        )

    def observe_request(self, model: str, version: str, protocol: str, code: int, seconds: float) -> None:
        key = (model, version, protocol, code)
        children = self._children.get(key)
        if children is None:  # labels() costs a lock and a tuple per call: resolve each label set once
            status = str(code)
            failures = self.failures.labels(model, version, protocol, status) if code >= 400 else None
            children = self._children[key] = (
                self.requests.labels(model, version, protocol, status),
                failures,
                self.latency.labels(model, version, protocol),
            )
        requests, failures, latency = children
        requests.inc()
        if failures is not None:
            failures.inc()
        latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

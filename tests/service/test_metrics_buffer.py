"""Observations made on the event loop reach the Prometheus values within ``FLUSH_SECONDS``, and
before any render; made without a loop, at once."""

from __future__ import annotations

import asyncio

from service.metrics import FLUSH_SECONDS, Metrics


def _count(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


OK = {"model": "m", "version": "1", "protocol": "v2", "code": "200"}


def test_observations_on_the_loop_are_written_within_the_flush_interval() -> None:
    metrics = Metrics()

    async def scenario() -> tuple[float | None, float | None]:
        for _ in range(3):
            metrics.observe_request("m", "1", "v2", 200, 0.0003)
        metrics.observe_batch("m", "1", 3)
        before = _count(metrics, "service_requests_total", **OK)
        await asyncio.sleep(FLUSH_SECONDS * 3)
        return before, _count(metrics, "service_requests_total", **OK)

    before, after = asyncio.run(scenario())
    assert (before, after) == (None, 3.0)
    assert _count(metrics, "service_inference_batch_size_sum", model="m", version="1") == 3.0


def test_a_render_writes_what_is_buffered_first() -> None:
    metrics = Metrics()

    async def scenario() -> str:
        metrics.observe_request("m", "1", "v2", 200, 0.0003)
        metrics.observe_request("m", "1", "v2", 404, 0.0002)
        metrics.observe_request("m", "1", "v2", 200, 0.004)
        return metrics.render().decode()

    text = asyncio.run(scenario())
    assert 'service_requests_total{code="200",model="m",protocol="v2",version="1"} 2.0' in text
    assert 'service_request_failures_total{code="404",model="m",protocol="v2",version="1"} 1.0' in text
    assert 'service_request_failures_total{code="200"' not in text
    assert 'service_request_duration_seconds_bucket{le="0.0005",model="m",protocol="v2",version="1"} 2.0' in text
    assert 'service_request_duration_seconds_count{model="m",protocol="v2",version="1"} 3.0' in text


def test_without_an_event_loop_observations_are_written_at_once() -> None:
    metrics = Metrics()
    metrics.observe_request("m", "1", "v2", 200, 0.0003)
    metrics.observe_batch("m", "1", 5)
    assert _count(metrics, "service_requests_total", **OK) == 1.0
    assert _count(metrics, "service_inference_batch_size_sum", model="m", version="1") == 5.0


def test_a_flush_left_pending_on_a_closed_loop_does_not_stop_the_next_loops_flushes() -> None:
    metrics = Metrics()

    async def observe(code: int) -> None:
        metrics.observe_request("m", "1", "v2", code, 0.0003)

    async def observe_and_wait() -> None:
        await observe(200)
        await asyncio.sleep(FLUSH_SECONDS * 3)

    asyncio.run(observe(200))  # the loop closes with its flush still pending
    asyncio.run(observe_and_wait())
    assert _count(metrics, "service_requests_total", **OK) == 2.0

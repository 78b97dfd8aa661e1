"""The dynamic batcher: same answers as unbatched runs, real coalescing, errors to the right
caller, no waiting at low load, draining on close."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
import pytest

from contracts.artifact import Architecture, LayerSpec, ModelSpec, param_name
from exporter.graph import build_model
from service.batching import Batcher, BatcherClosedError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the batcher is built on asyncio (uvicorn's loop is uvloop, asyncio-compatible)


class Recorder:
    """A run_fn that records batch sizes and can hold the worker until released."""

    def __init__(self, hold_first: bool = False) -> None:
        self.sizes: list[int] = []
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.sizes.append(len(x))
        self.started.set()
        self.release.wait(timeout=10)
        if (x < 0).any():
            raise ValueError("negative input")
        return {"total": x.reshape(len(x), -1).sum(axis=1), "twice": 2 * x}


async def _wait_started(recorder: Recorder) -> None:
    while not recorder.started.is_set():
        await asyncio.sleep(0.001)


def _ort_run_fn() -> tuple[ort.InferenceSession, Callable[[np.ndarray], dict[str, np.ndarray]]]:
    rng = np.random.default_rng(0)
    arch = Architecture(input_shape=(28, 28), layers=(LayerSpec(units=32), LayerSpec(units=10, activation="linear")))
    spec = ModelSpec(architecture=arch, labels=tuple(str(i) for i in range(10)))
    weights = {}
    for i, (fan_in, fan_out) in enumerate([(784, 32), (32, 10)]):
        weights[param_name(i, "kernel")] = rng.normal(0, fan_in**-0.5, (fan_in, fan_out)).astype(np.float32)
        weights[param_name(i, "bias")] = rng.normal(0, 0.1, fan_out).astype(np.float32)
    model = build_model(spec, weights, name="t", version=1)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(None, {"images": x}), strict=True))

    return session, run


async def test_batched_results_match_unbatched_onnxruntime_runs() -> None:
    session, run = _ort_run_fn()
    rng = np.random.default_rng(1)
    inputs = [rng.uniform(0, 255, (n, 28, 28)).astype(np.float32) for n in (1, 3, 1, 2, 5, 1, 1, 4)]
    sizes: list[int] = []
    batcher = Batcher(run, max_batch_size=64, max_delay_ms=1.0, on_batch=sizes.append)
    results = await asyncio.gather(*(batcher.submit(x) for x in inputs))
    await batcher.close()
    assert max(sizes) > 1, "concurrent requests should have been coalesced"
    for x, got in zip(inputs, results, strict=True):
        want = run(x)
        assert got.keys() == want.keys()
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got["label"], want["label"])
    del session


async def test_requests_queued_behind_a_running_batch_run_together() -> None:
    recorder = Recorder(hold_first=True)
    batcher = Batcher(recorder, max_batch_size=64, max_delay_ms=0)
    first = asyncio.ensure_future(batcher.submit(np.ones((1, 2, 2), np.float32)))
    await _wait_started(recorder)
    rest = [asyncio.ensure_future(batcher.submit(np.full((1, 2, 2), i, np.float32))) for i in range(9)]
    await asyncio.sleep(0.01)
    recorder.release.set()
    results = await asyncio.gather(first, *rest)
    await batcher.close()
    assert recorder.sizes == [1, 9]
    assert [float(r["total"][0]) for r in results] == [4.0] + [4.0 * i for i in range(9)]


async def test_batches_respect_max_size_and_oversized_requests_run_alone() -> None:
    recorder = Recorder(hold_first=True)
    batcher = Batcher(recorder, max_batch_size=4, max_delay_ms=0)
    first = asyncio.ensure_future(batcher.submit(np.ones((1, 3), np.float32)))
    await _wait_started(recorder)
    shapes = [2, 2, 1, 6, 3]
    rest = [asyncio.ensure_future(batcher.submit(np.ones((n, 3), np.float32))) for n in shapes]
    await asyncio.sleep(0.01)
    recorder.release.set()
    results = await asyncio.gather(first, *rest)
    await batcher.close()
    assert recorder.sizes == [1, 4, 1, 6, 3]
    assert [len(r["total"]) for r in results[1:]] == shapes


async def test_different_trailing_shapes_are_never_concatenated() -> None:
    recorder = Recorder(hold_first=True)
    batcher = Batcher(recorder, max_batch_size=64, max_delay_ms=0)
    first = asyncio.ensure_future(batcher.submit(np.ones((1, 4), np.float32)))
    await _wait_started(recorder)
    xs = [np.ones((1, 4), np.float32), np.ones((1, 5), np.float32), np.ones((1, 4), np.float32)]
    rest = [asyncio.ensure_future(batcher.submit(x)) for x in xs]
    await asyncio.sleep(0.01)
    recorder.release.set()
    results = await asyncio.gather(first, *rest)
    await batcher.close()
    assert recorder.sizes == [1, 2, 1]
    assert [float(r["total"][0]) for r in results[1:]] == [4.0, 5.0, 4.0]


async def test_an_error_reaches_only_the_caller_whose_input_caused_it() -> None:
    recorder = Recorder(hold_first=True)
    batcher = Batcher(recorder, max_batch_size=64, max_delay_ms=0)
    first = asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32)))
    await _wait_started(recorder)
    values = [1.0, -1.0, 2.0]
    rest = [asyncio.ensure_future(batcher.submit(np.full((1, 2), v, np.float32))) for v in values]
    await asyncio.sleep(0.01)
    recorder.release.set()
    outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
    await batcher.close()
    assert float(outcomes[1]["total"][0]) == 2.0
    assert isinstance(outcomes[2], ValueError) and str(outcomes[2]) == "negative input"
    assert float(outcomes[3]["total"][0]) == 4.0


async def test_a_lone_client_never_waits_for_the_batch_delay() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder, max_batch_size=64, max_delay_ms=5000)
    start = time.perf_counter()
    for i in range(20):
        result = await batcher.submit(np.full((1, 2), i, np.float32))
        assert float(result["total"][0]) == 2.0 * i
    elapsed = time.perf_counter() - start
    await batcher.close()
    assert recorder.sizes == [1] * 20
    assert elapsed < 2.0, f"20 sequential requests took {elapsed:.2f}s: the 5 s batch delay was applied"


async def test_a_full_batch_under_load_runs_without_waiting_for_the_delay() -> None:
    recorder = Recorder(hold_first=True)
    batcher = Batcher(recorder, max_batch_size=4, max_delay_ms=5000)
    first = asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32)))
    await _wait_started(recorder)
    rest = [asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32))) for _ in range(4)]
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    recorder.release.set()
    await asyncio.gather(first, *rest)
    assert time.perf_counter() - start < 2.0
    await batcher.close()
    assert recorder.sizes == [1, 4]


async def test_under_load_an_underfull_batch_waits_for_more_requests_up_to_the_delay() -> None:
    recorder = Recorder(hold_first=True)
    batcher = Batcher(recorder, max_batch_size=64, max_delay_ms=300)
    first = asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32)))
    await _wait_started(recorder)
    queued = asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32)))
    await asyncio.sleep(0.01)
    recorder.release.set()
    await first
    late = asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32)))  # joins the waiting batch
    await asyncio.gather(queued, late)
    await batcher.close()
    assert recorder.sizes == [1, 2]


async def test_a_cancelled_caller_is_dropped_and_its_batch_mates_are_answered() -> None:
    recorder = Recorder(hold_first=True)
    batcher = Batcher(recorder, max_batch_size=64, max_delay_ms=0)
    first = asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32)))
    await _wait_started(recorder)
    gone = asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32)))
    kept = asyncio.ensure_future(batcher.submit(np.full((1, 2), 3, np.float32)))
    await asyncio.sleep(0.01)
    gone.cancel()
    recorder.release.set()
    await first
    assert float((await kept)["total"][0]) == 6.0
    await batcher.close()
    assert recorder.sizes == [1, 1]


async def test_close_answers_queued_requests_then_refuses_new_ones() -> None:
    recorder = Recorder(hold_first=True)
    batcher = Batcher(recorder, max_batch_size=64, max_delay_ms=0)
    pending = [asyncio.ensure_future(batcher.submit(np.ones((1, 2), np.float32))) for _ in range(5)]
    await _wait_started(recorder)
    closing = asyncio.ensure_future(batcher.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    recorder.release.set()
    await closing
    assert all(float(p.result()["total"][0]) == 2.0 for p in pending)
    with pytest.raises(BatcherClosedError):
        await batcher.submit(np.ones((1, 2), np.float32))


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        Batcher(Recorder(), max_batch_size=0)
    with pytest.raises(ValueError, match="max_delay_ms"):
        Batcher(Recorder(), max_delay_ms=-1)


async def test_short_batches_run_on_the_event_loop_and_long_ones_on_the_worker_thread() -> None:
    threads: list[int] = []

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        threads.append(threading.get_ident())
        if (x < 0).any():
            raise ValueError("negative input")
        return {"total": x.reshape(len(x), -1).sum(axis=1)}

    batcher = Batcher(run, max_batch_size=64, max_delay_ms=0, inline=lambda rows: rows <= 2)
    inputs = [np.full((1, 3), i, np.float32) for i in range(4)]
    short = await batcher.submit(inputs[0])  # 1 row: inline
    both = await asyncio.gather(*(batcher.submit(x) for x in inputs[1:]))  # 3 rows together: thread
    with pytest.raises(ValueError, match="negative input"):  # an inline error reaches its caller too
        await batcher.submit(np.full((1, 3), -1, np.float32))
    await batcher.close()
    assert [float(r["total"][0]) for r in (short, *both)] == [0.0, 3.0, 6.0, 9.0]
    loop_thread = threading.get_ident()
    assert threads[0] == loop_thread and threads[1] != loop_thread and threads[2] == loop_thread

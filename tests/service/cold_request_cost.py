"""Wall time of one request to the service app in-process with cold caches, against a bare app.

    .venv/bin/python -m tests.service.cold_request_cost [setting=value ...]

One client over HTTP sends its next request only after the previous answer, so each request
finds the CPU caches cold (the kernel, the client and an idle vCPU ran in between): a one-image
predict costs ~100 us back to back in-process but ~220 us this way, and that, not the warm cost,
is what the one-client p50 of ``bench/serve_bench.py`` follows. Before every timed call this
harness streams 8 MB through the cache and sleeps 100 us; the "bare" app does only what a
predict needs (orjson, ``np.asarray``, onnxruntime, orjson) and is the floor. Not a test: it prints
medians (docs/performance.md, "One connection").
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson

from service import Settings, create_app
from tests.e2e.models import write_model
from tests.service.cpu_per_request import ROUTES, call

_EVICT = np.ones(8 << 20, np.uint8)


def bare_app(model: Path) -> Any:
    """The least an ASGI app can do to answer a TF predict: no checks, metrics or routing."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name, outputs = session.get_inputs()[0].name, [o.name for o in session.get_outputs()]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        x = np.asarray(orjson.loads(body)["instances"], dtype=np.float32)
        results = dict(zip(outputs, session.run(outputs, {name: x}), strict=True))
        content = orjson.dumps({"predictions": results}, option=orjson.OPT_SERIALIZE_NUMPY)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": content})

    return app


async def cold_microseconds(app: Any, method: str, path: str, body: bytes, n: int) -> float:
    times = []
    for _ in range(n):
        _EVICT.sum()
        time.sleep(100e-6)
        start = time.perf_counter_ns()
        assert await call(app, method, path, body) == 200
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e3


async def main(overrides: dict[str, str], n: int = 600) -> None:
    root = Path(tempfile.mkdtemp()) / "models"
    write_model(root, "mnist", 1, seed=1)
    app = create_app(Settings(repository=root, poll_interval=0, **overrides))  # type: ignore[arg-type]
    bare = bare_app(root / "mnist" / "1" / "model.onnx")
    async with app.router.lifespan_context(app):
        while not app.state.registry.ready:
            await asyncio.sleep(0.01)
        predict = ROUTES[0]
        for _ in range(200):
            await call(app, *predict)
            await call(bare, *predict)
        print(f"bare app, TF predict: {await cold_microseconds(bare, *predict, n):.0f} us per request (cold)")
        for method, path, body in ROUTES:
            print(f"service, {method} {path}: {await cold_microseconds(app, method, path, body, n):.0f} us (cold)")


if __name__ == "__main__":
    asyncio.run(main(dict(arg.split("=", 1) for arg in sys.argv[1:])))

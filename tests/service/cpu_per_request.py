"""CPU time per request of the service app, called in-process (no HTTP server, no load generator).

    .venv/bin/python -m tests.service.cpu_per_request [setting=value ...]   e.g. batching=false

On a shared machine wall-clock numbers swing by 2x; the process CPU time per request
(``time.process_time``, all threads) is the stable figure for comparing changes to the app.
Not a test: it prints numbers and asserts only that every request answered 200.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from service import Settings, create_app
from tests.e2e.models import write_model

IMAGE = np.random.default_rng(0).uniform(0, 255, (28, 28)).astype(np.float32).tolist()
V2_INPUT = {"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": [v for row in IMAGE for v in row]}
ROUTES = [
    ("POST", "/v1/models/mnist:predict", orjson.dumps({"instances": [IMAGE]})),
    ("POST", "/v2/models/mnist/infer", orjson.dumps({"inputs": [V2_INPUT]})),
    ("GET", "/v2/health/live", b""),
]


async def call(app: Any, method: str, path: str, body: bytes) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"x"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def main(overrides: dict[str, str], n: int = 3000) -> None:
    root = Path(tempfile.mkdtemp()) / "models"
    write_model(root, "mnist", 1, seed=1)
    app = create_app(Settings(repository=root, poll_interval=0, **overrides))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        while not app.state.registry.ready:
            await asyncio.sleep(0.01)
        for method, path, body in ROUTES:
            for _ in range(200):
                assert await call(app, method, path, body) == 200
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                await call(app, method, path, body)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"{method} {path}: cpu {cpu / n * 1e6:.0f} us, wall {wall / n * 1e6:.0f} us per request")


if __name__ == "__main__":
    asyncio.run(main(dict(arg.split("=", 1) for arg in sys.argv[1:])))

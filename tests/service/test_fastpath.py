"""The pure-ASGI fast path answers the inference routes exactly as the FastAPI routes do (both
behind the hot path, which is off here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from service import Settings, create_app, fastpath
from service.middleware import ServiceMiddleware
from service.protocols import binary
from tests.service.conftest import wait_until

IMAGE = (np.arange(784).reshape(28, 28) % 256).tolist()
V2 = {"id": "q", "inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": IMAGE}]}
REQUESTS: list[tuple[str, bytes, dict[str, str]]] = [
    ("/v1/models/mnist:predict", orjson.dumps({"instances": [IMAGE]}), {}),
    ("/v1/models/mnist/versions/1:predict", orjson.dumps({"inputs": [IMAGE, IMAGE]}), {}),
    ("/v2/models/mnist/infer", orjson.dumps(V2), {}),
    ("/v2/models/mnist/versions/1/infer", orjson.dumps({**V2, "outputs": [{"name": "label"}]}), {}),
    ("/v1/models/mnist:predict", b"{bad", {}),
    ("/v1/models/mnist:predict", b"{}", {"content-type": "image/png"}),
    ("/v1/models/nope:predict", b"{}", {}),
    ("/v2/models/mnist/versions/7/infer", orjson.dumps(V2), {}),
    ("/v2/models/.x/infer", orjson.dumps(V2), {}),
    ("/v2/models/mnist/infer", b"{}", {binary.HEADER_LENGTH: "99"}),
]


def started(repository: Path, fast: bool) -> TestClient:
    app = create_app(Settings(repository=repository, poll_interval=0, hot_path=False))  # tests/service/test_hotpath.py
    if not fast:  # the same app with the middleware told to leave every request to FastAPI
        for middleware in app.user_middleware:
            if middleware.cls is ServiceMiddleware:
                middleware.kwargs["dataplane"] = None
    client = TestClient(app)
    client.__enter__()
    wait_until(lambda: client.get("/v2/health/ready").status_code == 200)
    return client


@pytest.fixture
def clients(repository: Path) -> Iterator[tuple[TestClient, TestClient]]:
    fast, slow = started(repository, True), started(repository, False)
    yield fast, slow
    for client in (fast, slow):
        client.__exit__(None, None, None)


def test_fast_path_and_fastapi_routes_answer_the_same(clients: tuple[TestClient, TestClient]) -> None:
    fast, slow = clients
    for path, body, headers in REQUESTS:
        a, b = fast.post(path, content=body, headers=headers), slow.post(path, content=body, headers=headers)
        assert (a.status_code, a.headers["content-type"]) == (b.status_code, b.headers["content-type"]), path
        assert a.content == b.content, path
        assert "x-request-id" in a.headers


def test_only_inference_posts_match() -> None:
    def scope(method: str, path: str) -> dict[str, object]:
        return {"method": method, "path": path}

    assert fastpath.match(scope("POST", "/v1/models/m:predict"))[1:] == ("m", None)  # type: ignore[index]
    assert fastpath.match(scope("POST", "/v1/models/m/versions/3:predict"))[1:] == ("m", "3")  # type: ignore[index]
    assert fastpath.match(scope("POST", "/v2/models/m/versions/3/infer"))[1:] == ("m", "3")  # type: ignore[index]
    for method, path in [("GET", "/v2/models/m/infer"), ("POST", "/v2/models/m"), ("POST", "/v1/models/m/image")]:
        assert fastpath.match(scope(method, path)) is None


def test_a_client_that_hangs_up_mid_body_gets_no_answer_and_counts_as_499(repository: Path) -> None:
    import asyncio

    from service.metrics import Metrics

    async def scenario() -> tuple[list[dict[str, object]], str]:
        client = started(repository, True)
        app = client.app
        messages = iter([{"type": "http.request", "body": b'{"inst', "more_body": True}, {"type": "http.disconnect"}])
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return next(messages)

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {
            "type": "http", "method": "POST", "path": "/v1/models/mnist:predict", "headers": [],
            "query_string": b"", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http",
            "server": ("t", 80), "client": ("c", 1), "root_path": "",
        }  # fmt: skip
        await app(scope, receive, send)  # type: ignore[arg-type]
        metrics: Metrics = app.state.metrics  # type: ignore[attr-defined]
        text = metrics.render().decode()
        client.__exit__(None, None, None)
        return sent, text

    sent, text = asyncio.run(scenario())
    assert sent == []
    assert 'service_request_failures_total{code="499",model="",protocol="tfserving",version=""} 1.0' in text

"""The hot path answers the plain inference request exactly as the general path does, and hands
every other request to it untouched."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from service.errors import InferenceTimeoutError
from service.hotpath import HotPath
from tests.e2e.models import write_model
from tests.service.conftest import Client, wait_until

IMAGE = (np.arange(784).reshape(28, 28) % 256 / 255).tolist()
FLAT = [v for row in IMAGE for v in row]
V2 = {"id": "q-1", "inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": FLAT}]}
TF = "/v1/models/mnist:predict"
INFER = "/v2/models/mnist/infer"


def v2(**tensor: Any) -> bytes:
    return orjson.dumps({"inputs": [{**V2["inputs"][0], **tensor}]})  # type: ignore[index]


def tf(instances: Any) -> bytes:
    return orjson.dumps({"instances": instances})


# (path, body, headers): requests the hot path answers itself
PLAIN: list[tuple[str, bytes, dict[str, str]]] = [
    (TF, tf([IMAGE]), {}),
    (TF, tf([[[int(v * 255) for v in row] for row in IMAGE]] * 2), {}),  # integers, a batch of 2
    (INFER, orjson.dumps(V2), {}),
    ("/v1/models/mnist/versions/1:predict", tf([IMAGE]), {}),
    ("/v2/models/mnist/versions/1/infer", orjson.dumps(V2), {}),
    (TF, tf([IMAGE]), {"content-type": "application/x-www-form-urlencoded"}),  # curl -d
]
# requests the general path must answer: other shapes of request, and every kind of mistake
GENERAL: list[tuple[str, bytes, dict[str, str]]] = [
    (TF, orjson.dumps({"signature_name": "serving_default", "instances": [IMAGE]}), {}),
    (TF, orjson.dumps({"inputs": [IMAGE]}), {}),
    (TF, tf([[["1"] * 28] * 28]), {}),
    (TF, tf([[[True] * 28] * 28]), {}),
    (TF, tf([[[None] * 28] * 28]), {}),
    (TF, tf([IMAGE, IMAGE[:3]]), {}),
    (TF, tf([[1.0, 2.0, 3.0]]), {}),
    (TF, tf([[[1e39] * 28] * 28]), {}),  # finite in JSON, infinite in float32
    (TF, tf([]), {}),
    (TF, tf([IMAGE] * 3), {}),  # more than max_batch_size=2
    (TF, tf([IMAGE]), {"content-type": "image/png"}),
    (TF, b"{bad", {}),
    (TF, b"[1]", {}),
    (TF, gzip.compress(tf([IMAGE])), {"content-encoding": "gzip"}),
    (INFER, v2(data=IMAGE), {}),  # nested data
    (INFER, orjson.dumps({**V2, "id": 7}), {}),  # an id that is not a string
    (TF, tf([[[2**53 + 2] * 28] * 28]), {}),  # beyond the integers every double holds
    (TF, tf([[[True, 1.5] * 14] * 28]), {}),  # true among numbers: accepted, as 1.0
    (INFER, v2(datatype="FP64"), {}),
    (INFER, v2(name="pixels"), {}),
    (INFER, v2(shape=[2, 28, 28]), {}),
    (INFER, v2(shape=[-1, 28, 28]), {}),
    (INFER, v2(parameters={"binary_data": False}), {}),
    (INFER, orjson.dumps({**V2, "outputs": [{"name": "label"}]}), {}),
    (INFER, orjson.dumps({**V2, "parameters": {"binary_data_output": True}}), {}),
    ("/v2/models/mnist/versions/7/infer", orjson.dumps(V2), {}),
    ("/v1/models/nope:predict", tf([IMAGE]), {}),
    ("/v1/models/mnist/versions/01:predict", tf([IMAGE]), {}),
]


def general_path_calls(client: TestClient) -> list[str]:
    """The paths of the requests that reach the general path behind the client's hot path, from now on."""
    stack: Any = client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(stack, HotPath):
        stack = stack.app
    general, seen = stack.app, []

    async def counted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["path"])
        await general(scope, receive, send)

    stack.app = counted
    return seen


def answer(client: TestClient, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    response = client.post(path, content=body, headers={"content-type": "application/json", **headers})
    return response.status_code, response.headers["content-type"], response.content


@pytest.fixture
def clients(make_client: Client) -> tuple[TestClient, TestClient]:
    """The service as configured by default, and with every request sent the general way."""
    return make_client(max_batch_size=2), make_client(max_batch_size=2, hot_path=False)


def test_plain_requests_take_the_hot_path_and_answer_as_the_general_path(
    clients: tuple[TestClient, TestClient],
) -> None:
    hot, general = clients
    reached = general_path_calls(hot)
    for path, body, headers in PLAIN:
        got, want = answer(hot, path, body, headers), answer(general, path, body, headers)
        assert got[0] == 200 and got == want, (path, body[:80], got[2][:300])
    assert reached == []


def test_every_other_request_goes_the_general_way_with_its_body(clients: tuple[TestClient, TestClient]) -> None:
    hot, general = clients
    reached = general_path_calls(hot)
    for path, body, headers in GENERAL:
        got, want = answer(hot, path, body, headers), answer(general, path, body, headers)
        assert got == want, (path, body[:80], got[2][:300], want[2][:300])
    assert reached == [path for path, _, _ in GENERAL]
    statuses = {answer(hot, p, b, h)[0] for p, b, h in GENERAL}
    assert statuses == {200, 400, 404, 415}  # the list covers answers as well as refusals


def test_refusals_come_from_the_general_path_word_for_word(clients: tuple[TestClient, TestClient]) -> None:
    hot, _ = clients
    status, _, body = answer(hot, TF, tf([[[1e39] * 28] * 28]), {})
    assert status == 400
    assert orjson.loads(body)["error"] == (
        "input 'images' contains NaN or Infinity (or a number too large for float32): expected finite numbers"
    )
    status, _, body = answer(hot, TF, tf([[["1"] * 28] * 28]), {})
    assert (status, orjson.loads(body)["error"]) == (
        400,
        "input 'images' contains strings: expected finite numbers convertible to float32",
    )


def test_api_key_and_cors_requests_are_answered_as_before(make_client: Client) -> None:
    hot = make_client(api_key="s3cret", cors_origins=["https://app.example"])
    reached = general_path_calls(hot)
    body = tf([IMAGE])
    ok = hot.post(TF, content=body, headers={"authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and reached == []
    refused = hot.post(TF, content=body, headers={"authorization": "Bearer nope"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    cors = hot.post(TF, content=body, headers={"authorization": "Bearer s3cret", "origin": "https://app.example"})
    assert cors.status_code == 200 and cors.headers["access-control-allow-origin"] == "https://app.example"
    assert cors.content == ok.content
    assert reached == [TF, TF]


def test_request_ids_are_echoed_or_made(clients: tuple[TestClient, TestClient]) -> None:
    hot, _ = clients
    reached = general_path_calls(hot)
    echoed = hot.post(TF, content=tf([IMAGE]), headers={"x-request-id": "trace-9"})
    assert echoed.headers["x-request-id"] == "trace-9"
    made = [hot.post(TF, content=tf([IMAGE]), headers={"x-request-id": "a b"}).headers["x-request-id"] for _ in "ab"]
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in made) and made[0] != made[1]
    assert reached == []


def test_hot_requests_are_counted_in_the_metrics(clients: tuple[TestClient, TestClient]) -> None:
    hot, _ = clients
    for _ in range(3):
        assert hot.post(TF, content=tf([IMAGE])).status_code == 200
    assert hot.post(INFER, content=orjson.dumps(V2)).status_code == 200
    text = hot.get("/metrics").text
    assert 'service_requests_total{code="200",model="mnist",protocol="tfserving",version="1"} 3.0' in text
    assert 'service_requests_total{code="200",model="mnist",protocol="v2",version="1"} 1.0' in text
    assert 'service_request_duration_seconds_count{model="mnist",protocol="tfserving",version="1"} 3.0' in text
    assert 'service_inference_batch_size_count{model="mnist",version="1"} 4.0' in text


def test_inference_failures_are_answered_like_the_general_path(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def too_slow(*args: object) -> None:
        raise InferenceTimeoutError("the inference did not finish within 0.1 s (request_timeout)")

    async def broken(*args: object) -> None:
        raise RuntimeError("boom")

    hot, general = clients
    for client in clients:
        monkeypatch.setattr(client.app.state.dataplane, "infer", too_slow)  # type: ignore[attr-defined]
    reached = general_path_calls(hot)
    got, want = answer(hot, TF, tf([IMAGE]), {}), answer(general, TF, tf([IMAGE]), {})
    assert got == want and got[0] == 504
    for client in clients:
        monkeypatch.setattr(client.app.state.dataplane, "infer", broken)  # type: ignore[attr-defined]
    response = hot.post(INFER, content=orjson.dumps(V2))
    rid = response.headers["x-request-id"]
    assert response.status_code == 500
    assert response.json() == {"error": f"internal server error (request id {rid}); the server log has details"}
    assert reached == []


def test_new_versions_are_served_once_loaded(repository: Path, make_client: Client) -> None:
    hot = make_client()
    reached = general_path_calls(hot)
    assert hot.post(INFER, content=orjson.dumps(V2)).json()["model_version"] == "1"
    write_model(repository, "mnist", 2, seed=2)
    wait_until(lambda: hot.post(INFER, content=orjson.dumps(V2)).json()["model_version"] == "2")
    old = hot.post("/v2/models/mnist/versions/1/infer", content=orjson.dumps(V2))
    assert old.json()["model_version"] == "1"
    assert reached == []


def test_a_version_gone_while_the_body_arrives_is_left_to_the_general_path(
    clients: tuple[TestClient, TestClient],
) -> None:
    hot, _ = clients
    app: Any = hot.app
    stack = app.middleware_stack
    while not isinstance(stack, HotPath):
        stack = stack.app
    registry = app.state.registry
    version = registry.models["mnist"].default
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        registry.models = {}  # the repository scan dropped the model while its body was on the way
        return {"type": "http.request", "body": tf([IMAGE]), "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "POST", "path": TF, "raw_path": TF.encode(), "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"10")], "root_path": "",
        "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http", "server": ("t", 80), "client": ("c", 1),
    }  # fmt: skip
    asyncio.run(stack(scope, receive, send))
    assert sent[0]["status"] == 404
    assert orjson.loads(sent[1]["body"]) == {"error": "model 'mnist' not found; available models: none"}
    assert version.inflight == 0

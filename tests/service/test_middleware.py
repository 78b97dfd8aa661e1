"""Request id, API key, CORS, body limit, batch limit, timeout and metrics, in-process."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from service.runtime import ModelRuntime
from tests.service.conftest import Client

IMAGE = np.zeros((28, 28)).tolist()
PREDICT = {"instances": [IMAGE]}


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/v2/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/v2/health/live").headers["x-request-id"]
    assert len(made) == 32 and made != client.get("/v2/health/live").headers["x-request-id"]
    unsafe = client.get("/v2/health/live", headers={"X-Request-ID": "a b\tc"}).headers["x-request-id"]
    assert unsafe != "a b\tc" and len(unsafe) == 32


def test_failed_requests_are_logged_as_json_with_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    from service.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="service.access"):
        client.post("/v1/models/nope:predict", json=PREDICT, headers={"X-Request-ID": "trace-7"})
    # the request id lives in a context variable; the middleware copies the fields into the record
    record = next(r for r in caplog.records if r.name == "service.access")
    entry = json.loads(JsonFormatter().format(record))
    assert (
        entry["request_id"] == "trace-7"
        and entry["status"] == 404
        and entry["path"] == "/v1/models/nope:predict"
        and entry["level"] == "info"
    )


def test_api_key_guards_model_routes_only(make_client: Client) -> None:
    client = make_client(api_key="s3cret")
    denied = client.post("/v1/models/mnist:predict", json=PREDICT)
    assert denied.status_code == 401 and "Authorization: Bearer" in denied.json()["error"]
    assert denied.headers["www-authenticate"] == "Bearer"
    assert client.post("/v2/models/mnist/infer", json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/models").status_code == 401
    ok = client.post("/v1/models/mnist:predict", json=PREDICT, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    for open_path in ("/v2/health/live", "/v2/health/ready", "/metrics", "/openapi.json", "/docs"):
        assert client.get(open_path).status_code == 200, open_path


def test_cors_preflight_and_headers(make_client: Client) -> None:
    client = make_client(cors_origins=["http://app.example"])
    preflight = client.options(
        "/v2/models/mnist/infer",
        headers={"Origin": "http://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://app.example"
    r = client.post("/v1/models/mnist:predict", json=PREDICT, headers={"Origin": "http://app.example"})
    assert r.headers["access-control-allow-origin"] == "http://app.example"
    assert "x-request-id" in r.headers["access-control-expose-headers"]
    other = client.get("/v2/health/live", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_body_over_the_limit_is_413_and_the_server_stays_ready(make_client: Client) -> None:
    client = make_client(max_body_bytes=1000)
    r = client.post("/v1/models/mnist:predict", json=PREDICT)
    assert r.status_code == 413 and "larger than the limit of 1000 bytes" in r.json()["error"]

    def chunks():  # no Content-Length: counted as it streams in
        yield b'{"instances": ['
        yield b"0," * 600
        yield b"0]}"

    chunked = client.post("/v1/models/mnist:predict", content=chunks())
    assert chunked.status_code == 413
    assert client.get("/v2/health/ready").status_code == 200


def test_batch_over_the_limit_is_400(make_client: Client) -> None:
    client = make_client(max_batch_size=2)
    r = client.post("/v1/models/mnist:predict", json={"instances": [IMAGE] * 3})
    assert r.status_code == 400 and "more than the limit of 2" in r.json()["error"]


def test_slow_inference_times_out_with_504(make_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    slow_run = ModelRuntime.run

    def run(self: ModelRuntime, *args: object, **kwargs: object) -> object:
        time.sleep(0.5)
        return slow_run(self, *args, **kwargs)  # type: ignore[arg-type]

    client = make_client(request_timeout=0.1, inline_max_us=0)
    monkeypatch.setattr(ModelRuntime, "run", run)
    r = client.post("/v1/models/mnist:predict", json=PREDICT)
    assert r.status_code == 504 and "did not finish within 0.1 s" in r.json()["error"]


def test_metrics_count_requests_failures_latency_and_batches(client: TestClient) -> None:
    client.post("/v1/models/mnist:predict", json={"instances": [IMAGE] * 3})
    client.post("/v2/models/mnist/infer", content=b"{bad")
    client.post("/v1/models/nope:predict", json=PREDICT)
    text = client.get("/metrics").text
    assert 'service_requests_total{code="200",model="mnist",protocol="tfserving",version="1"} 1.0' in text
    assert 'service_request_failures_total{code="400",model="mnist",protocol="v2",version="1"} 1.0' in text
    assert 'service_request_failures_total{code="404",model="",protocol="tfserving",version=""} 1.0' in text
    assert 'service_request_duration_seconds_count{model="mnist",protocol="tfserving",version="1"} 1.0' in text
    assert 'service_inference_batch_size_sum{model="mnist",version="1"} 3.0' in text  # warm-up not counted
    assert 'service_model_versions_loaded{model="mnist"} 1.0' in text


def test_batching_on_answers_the_same(make_client: Client) -> None:
    plain = make_client(batching=False).post("/v1/models/mnist:predict", json={"instances": [IMAGE]}).json()
    from concurrent.futures import ThreadPoolExecutor

    batcher = make_client(batching=True)
    with ThreadPoolExecutor(8) as pool:  # concurrent, so the batcher is used
        answers = list(
            pool.map(lambda _: batcher.post("/v1/models/mnist:predict", json={"instances": [IMAGE]}), range(32))
        )
    assert all(r.status_code == 200 and r.json() == plain for r in answers)


def test_concurrent_requests_are_coalesced_when_batching(make_client: Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = make_client(batching=True, batch_max_delay_ms=20)
    x = np.random.default_rng(0).uniform(0, 255, (28, 28)).tolist()
    alone = client.post("/v2/models/mnist/infer", json=_infer(x)).json()["outputs"]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: client.post("/v2/models/mnist/infer", json=_infer(x)), range(64)))
    assert {r.status_code for r in answers} == {200}
    assert all(r.json()["outputs"] == alone for r in answers)  # each caller gets its own rows back
    text = client.get("/metrics").text
    count = float(text.split('service_inference_batch_size_count{model="mnist",version="1"} ')[1].split()[0])
    rows = float(text.split('service_inference_batch_size_sum{model="mnist",version="1"} ')[1].split()[0])
    assert rows == 65 and count < 65  # some session.run calls served several requests


def _infer(x: list[list[float]]) -> dict[str, object]:
    return {"inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": x}]}


def test_gzip_and_deflate_bodies_are_inflated_within_the_body_limit(make_client: Client) -> None:
    import gzip
    import zlib

    client = make_client(max_body_bytes=20_000)
    body = orjson.dumps(PREDICT)
    plain = client.post("/v1/models/mnist:predict", content=body).json()
    for data, encoding in ((gzip.compress(body), "gzip"), (zlib.compress(body), "deflate")):
        r = client.post("/v1/models/mnist:predict", content=data, headers={"content-encoding": encoding})
        assert r.status_code == 200 and r.json() == plain, encoding
    bomb = gzip.compress(b'{"instances": [' + b"0," * 50_000 + b"0]}")
    assert len(bomb) < 20_000
    r = client.post("/v2/models/mnist/infer", content=bomb, headers={"content-encoding": "gzip"})
    assert r.status_code == 413 and "after decompression" in r.json()["error"]
    corrupt = client.post("/v1/models/mnist:predict", content=b"not gzip", headers={"content-encoding": "gzip"})
    assert corrupt.status_code == 400 and "compressed body is corrupt" in corrupt.json()["error"]
    brotli = client.post("/v1/models/mnist:predict", content=body, headers={"content-encoding": "br"})
    assert brotli.status_code == 415 and "Content-Encoding 'br' is not supported" in brotli.json()["error"]


def test_batching_engages_only_when_several_connections_are_active(client: TestClient) -> None:
    plane = client.app.state.dataplane  # type: ignore[attr-defined]
    time.sleep(0.02)
    plane.note_client(("10.0.0.1", 1))
    assert not plane._busy()  # one connection: requests run at once, never wait for a batch
    plane.note_client(("10.0.0.2", 2))
    assert plane._busy()
    time.sleep(0.02)
    plane.note_client(("10.0.0.1", 1))  # the window with two clients just ended: still counted
    assert plane._busy()
    time.sleep(0.02)
    plane.note_client(("10.0.0.1", 1))
    assert not plane._busy()

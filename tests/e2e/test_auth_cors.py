"""Optional bearer API key (inference and model routes closed, health/metrics/docs open) and CORS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import CORS_ORIGIN
from tests.e2e.helpers import images, v2_json_input
from tests.e2e.live import LiveServer, live_server

KEY = "s3cret-key"

CLOSED = [
    ("POST", "/v1/models/mnist:predict", {"json": {"instances": images(1).tolist()}}),
    ("POST", "/v2/models/mnist/infer", {"json": {"inputs": [v2_json_input("images", images(1))]}}),
    ("GET", "/v1/models/mnist", {}),
    ("GET", "/v1/models/mnist/metadata", {}),
    ("GET", "/v2/models/mnist", {}),
    ("GET", "/v2/models/mnist/ready", {}),
    ("POST", "/v1/models/mnist/image", {"files": {"file": ("d.png", b"x", "image/png")}}),
]
OPEN = ["/v2/health/live", "/v2/health/ready", "/metrics", "/docs", "/openapi.json"]


@pytest.fixture(scope="module")
def secured(repository: Path) -> Iterator[LiveServer]:
    with live_server(repository, api_key=KEY, env={"SERVICE_CORS_ORIGINS": CORS_ORIGIN}) as live:
        yield live


@pytest.mark.parametrize(("method", "path", "kwargs"), CLOSED, ids=[f"{m} {p}" for m, p, _ in CLOSED])
def test_model_routes_need_the_key(secured: LiveServer, method: str, path: str, kwargs: dict) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}):
        response = httpx.request(method, secured.url + path, headers=headers, **kwargs)
        assert response.status_code == 401, (headers, response.text)
        assert "error" in response.json() and "bearer" in response.json()["error"].lower()
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    ok = httpx.request(method, secured.url + path, headers={"Authorization": f"Bearer {KEY}"}, **kwargs)
    assert ok.status_code != 401
    if path != "/v1/models/mnist/image":  # that body is not an image: 400 once past auth
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("path", OPEN)
def test_health_metrics_and_docs_stay_open(secured: LiveServer, path: str) -> None:
    assert httpx.get(secured.url + path).status_code == 200


def test_preflight_needs_no_key_and_allows_the_configured_origin(secured: LiveServer) -> None:
    response = httpx.options(
        secured.url + "/v2/models/mnist/infer",
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code in (200, 204), response.text
    assert response.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers


def test_cors_headers_on_answers_to_the_allowed_origin(secured: LiveServer) -> None:
    response = httpx.get(
        secured.url + "/v2/models/mnist", headers={"Origin": CORS_ORIGIN, "Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == CORS_ORIGIN
    # a browser reading a 401 must see the CORS header too, or it reports a network error instead
    denied = httpx.get(secured.url + "/v2/models/mnist", headers={"Origin": CORS_ORIGIN})
    assert denied.status_code == 401
    assert denied.headers.get("access-control-allow-origin") == CORS_ORIGIN


def test_other_origins_get_no_cors_headers(secured: LiveServer) -> None:
    response = httpx.options(
        secured.url + "/v2/models/mnist/infer",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers
    plain = httpx.get(secured.url + "/v2/health/live", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in plain.headers


def test_no_key_configured_means_open(client: httpx.Client) -> None:
    assert client.get("/v2/models/mnist", headers={"Authorization": ""}).status_code == 200


def test_browsers_may_read_and_send_the_binary_extension_headers(client: httpx.Client) -> None:
    # cross-origin JavaScript sees only safelisted response headers unless they are exposed
    request = {"inputs": [v2_json_input("images", images(1))], "parameters": {"binary_data_output": True}}
    response = client.post("/v2/models/mnist/infer", json=request, headers={"Origin": CORS_ORIGIN})
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"inference-header-content-length", "x-request-id"} <= exposed
    preflight = client.options(
        "/v2/models/mnist/infer",
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "inference-header-content-length, x-request-id, content-type",
        },
    )
    assert preflight.status_code == 200
    assert "inference-header-content-length" in preflight.headers["access-control-allow-headers"].lower()

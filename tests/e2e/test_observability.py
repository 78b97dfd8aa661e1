"""Prometheus metrics move with requests (by model, version, protocol, status code); request ids
are echoed and logged as JSON; OpenAPI docs list every route with examples."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import images, v2_json_input
from tests.e2e.live import LiveServer


def _samples(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_request_counters_move_by_model_version_protocol_and_code(client: httpx.Client) -> None:
    before = _samples(client)
    x = images(3, seed=41)
    for _ in range(3):
        assert (
            client.post("/v2/models/mnist/versions/1/infer", json={"inputs": [v2_json_input("images", x)]}).status_code
            == 200
        )
    assert client.post("/v1/models/mnist:predict", json={"instances": x.tolist()}).status_code == 200
    assert client.post("/v1/models/mnist:predict", json={"instances": []}).status_code == 400
    after = _samples(client)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    v2_ok = {"model": "mnist", "version": "1", "protocol": "v2", "code": "200"}
    assert delta("service_requests_total", **v2_ok) == 3
    assert delta("service_requests_total", model="mnist", version="2", protocol="tfserving", code="200") == 1
    assert delta("service_requests_total", model="mnist", version="2", protocol="tfserving", code="400") == 1
    assert delta("service_request_failures_total", model="mnist", version="2", protocol="tfserving", code="400") == 1
    assert delta("service_request_failures_total", **v2_ok) == 0
    latency = {"model": "mnist", "version": "1", "protocol": "v2"}
    assert delta("service_request_duration_seconds_count", **latency) == 3
    assert delta("service_request_duration_seconds_sum", **latency) > 0
    # 3 + 3 + 3 rows went through version 1's session, in however many session.run calls
    assert delta("service_inference_batch_size_sum", model="mnist", version="1") == 9


def test_loaded_versions_gauge(client: httpx.Client) -> None:
    samples = _samples(client)
    assert _value(samples, "service_model_versions_loaded", model="mnist") == 2
    assert _value(samples, "service_model_versions_loaded", model="torch_mlp") == 1


def test_request_id_is_echoed_or_generated(client: httpx.Client) -> None:
    given = client.get("/v2/models/mnist", headers={"X-Request-ID": "trace-abc-123"})
    assert given.headers["x-request-id"] == "trace-abc-123"
    generated = [client.get("/v2/health/live").headers["x-request-id"] for _ in range(2)]
    assert all(re.fullmatch(r"[0-9a-zA-Z-]{8,}", rid) for rid in generated) and generated[0] != generated[1]


def test_request_id_is_in_the_json_log(client: httpx.Client, server: LiveServer) -> None:
    rid = "e2e-log-check-7f3a"
    response = client.post(
        "/v1/models/mnist/versions/9:predict", json={"instances": [[1]]}, headers={"X-Request-ID": rid}
    )
    assert response.status_code == 404

    def logged() -> bool:
        for line in server.log().splitlines():
            if rid in line:
                entry = json.loads(line)  # every line of the log is one JSON object
                return bool(entry["request_id"] == rid and entry["level"] and entry["message"])
        return False

    server.wait_until(logged, timeout=5, what=f"a JSON log line with request_id {rid}")


def test_every_log_line_is_json(server: LiveServer) -> None:
    lines = [line for line in server.log().splitlines() if line.strip()]
    assert lines
    bad = []
    for line in lines:
        try:
            entry = json.loads(line)
            assert {"time", "level", "message"} <= set(entry)
        except (ValueError, AssertionError):
            bad.append(line)
    assert not bad, bad[:5]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/{name}:predict",
        "/v1/models/{name}/versions/{version}:predict",
        "/v1/models/{name}",
        "/v1/models/{name}/metadata",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
        "/v1/models/{name}/image",
        "/api/models",
    ],
)
def test_openapi_documents_each_route(client: httpx.Client, path: str) -> None:
    spec = client.get("/openapi.json").json()
    assert path in spec["paths"], sorted(spec["paths"])
    for method, operation in spec["paths"][path].items():
        assert operation.get("summary") or operation.get("description"), (path, method)


def test_inference_routes_have_request_examples(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/v1/models/{name}:predict", "/v2/models/{name}/infer"):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body.get("example") or body.get("examples") or body.get("schema", {}).get("examples"), path
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("given", ["x" * 5000, "a b<script>", "\u00e9t\u00e9"])
def test_unusable_request_ids_are_replaced_not_echoed(client: httpx.Client, given: str) -> None:
    # echoing an arbitrary header into responses and logs invites log forging and huge log lines
    response = client.get("/v2/health/live", headers={"X-Request-ID": given.encode("utf-8")})
    assert response.status_code == 200
    rid = response.headers["x-request-id"]
    assert rid != given and len(rid) <= 128


def test_documented_request_examples_work(client: httpx.Client) -> None:
    """Every JSON request example in /openapi.json (what /docs' "Try it out" sends) gets a 200 from
    the ``mnist`` model the examples are written for."""
    spec = client.get("/openapi.json").json()
    tried = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if not content:
                continue
            examples = [content["example"]] if "example" in content else []
            examples += [e["value"] for e in content.get("examples", {}).values()]
            url = path.replace("{name}", "mnist").replace("{version}", "1")
            for example in examples:
                response = client.request(method.upper(), url, json=example)
                assert response.status_code == 200, (path, example, response.text[:300])
                tried += 1
    assert tried >= 4, tried


def test_unknown_model_names_do_not_create_metric_series(client: httpx.Client) -> None:
    # a label per client-chosen name would let anyone grow the metrics without bound
    for i in range(20):
        assert client.post(f"/v2/models/probe-{i}/infer", json={"inputs": []}).status_code == 404
        assert client.get(f"/v1/models/probe-{i}/versions/{i + 1}").status_code == 404
    assert "probe-" not in client.get("/metrics").text


def test_docs_page_loads_nothing_from_other_hosts(client: httpx.Client) -> None:
    # the service often runs where the internet is not reachable (containers, clusters): a /docs
    # that pulls Swagger UI from a CDN is a blank page there
    html = client.get("/docs").text
    assets = re.findall(r'(?:src|href|url)\s*[=:]\s*["\']([^"\']+)["\']', html)
    assert any("swagger" in a.lower() for a in assets), assets
    external = [a for a in assets if re.match(r"(?i)^(https?:)?//", a)]
    assert not external, external
    for asset in assets:
        if asset.startswith("/") and not asset.startswith("/openapi.json"):
            assert client.get(asset).status_code == 200, asset

"""Both protocols in-process: answers, status codes and the ``{"error": ...}`` body of every failure."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from service.protocols import binary

IMAGE = (np.arange(784).reshape(28, 28) % 256).tolist()
INFER = {"id": "r1", "inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": IMAGE}]}


def test_health_and_server_metadata(client: TestClient) -> None:
    live, ready = client.get("/v2/health/live"), client.get("/v2/health/ready")
    assert (live.status_code, live.content, ready.status_code, ready.content) == (200, b"", 200, b"")
    meta = client.get("/v2").json()
    assert meta["name"] == "deploy-anywhere" and "binary_tensor_data" in meta["extensions"]


def test_v2_model_metadata_and_ready(client: TestClient) -> None:
    meta = client.get("/v2/models/mnist").json()
    assert meta == client.get("/v2/models/mnist/versions/1").json()
    assert meta["platform"] == "onnxruntime_onnx" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert meta["outputs"][1] == {"name": "label", "datatype": "INT64", "shape": [-1]}
    assert client.get("/v2/models/mnist/ready").status_code == 200
    assert client.get("/v2/models/mnist/versions/1/ready").status_code == 200
    assert client.get("/v2/models/mnist/versions/2/ready").status_code == 404


def test_v2_and_tfserving_predict_agree(client: TestClient) -> None:
    v2 = client.post("/v2/models/mnist/infer", json=INFER)
    assert v2.status_code == 200 and v2.headers["content-type"] == "application/json"
    answer = v2.json()
    assert answer["id"] == "r1" and answer["model_version"] == "1"
    probs = {o["name"]: o for o in answer["outputs"]}["probabilities"]
    assert probs["shape"] == [1, 10] and abs(sum(probs["data"]) - 1) < 1e-5
    tf = client.post("/v1/models/mnist:predict", json={"instances": [IMAGE]}).json()["predictions"][0]
    np.testing.assert_allclose(tf["probabilities"], probs["data"], rtol=1e-6)
    assert tf["label"] == int(np.argmax(probs["data"]))
    versioned = client.post("/v1/models/mnist/versions/1:predict", json={"instances": [IMAGE]}).json()
    assert versioned["predictions"][0]["label"] == tf["label"]


def test_tritonclient_style_binary_request(client: TestClient) -> None:
    x = np.zeros((3, 28, 28), np.float32)
    header = {
        "inputs": [{"name": "images", "shape": [3, 28, 28], "datatype": "FP32"}],
        "parameters": {"binary_data_output": True},
    }
    body, length = binary.encode_request(header, {"images": x})
    r = client.post(
        "/v2/models/mnist/infer",
        content=body,
        headers={binary.HEADER_LENGTH: str(length), "content-type": "application/octet-stream"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    _, arrays = binary.decode_response(r.content, r.headers[binary.HEADER_LENGTH])
    assert arrays["probabilities"].shape == (3, 10) and arrays["label"].shape == (3,)


def test_tfserving_status_and_metadata(client: TestClient) -> None:
    status = client.get("/v1/models/mnist").json()
    assert status == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert client.get("/v1/models/mnist/versions/1").json() == status
    meta = client.get("/v1/models/mnist/metadata").json()
    assert meta["model_spec"] == {"name": "mnist", "signature_name": "", "version": "1"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["images"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["inputs"]["images"]["tensor_shape"]["dim"]] == ["-1", "28", "28"]
    assert sig["outputs"]["label"]["dtype"] == "DT_INT64"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        (
            "POST",
            "/v1/models/nope:predict",
            {"instances": [IMAGE]},
            404,
            "model 'nope' not found; available models: mnist",
        ),
        ("POST", "/v1/models/mnist/versions/7:predict", {"instances": [IMAGE]}, 404, "has no version 7"),
        ("POST", "/v1/models/mnist/versions/x:predict", {"instances": [IMAGE]}, 400, "not a version number"),
        ("GET", "/v1/models/.env", None, 404, "invalid model name"),
        ("GET", "/v1/models/..%2F..%2Fetc", None, 404, "no route"),
        ("GET", "/v2/models/nope", None, 404, "model 'nope' not found"),
        ("POST", "/v2/models/mnist/infer", {"instances": [IMAGE]}, 400, "'inputs' must be a non-empty list"),
        ("POST", "/v1/models/mnist:predict", {"instances": [[1, 2]]}, 400, "expected [batch, 28, 28]"),
        ("GET", "/v1/nothing", None, 404, "no route GET /v1/nothing"),
        ("DELETE", "/v2/models/mnist", None, 405, "method DELETE is not allowed"),
        ("POST", "/v1/models/mnist/image?top_k=0", None, 400, "top_k"),
        ("POST", "/v1/models/mnist:classify", {}, 400, "':classify' is not supported by this server: use ':predict'"),
        ("POST", "/v1/models/mnist/versions/1:regress", {}, 400, "(POST /v1/models/mnist/versions/1:predict)"),
    ],
)
def test_errors_are_json_with_a_message(
    client: TestClient, method: str, path: str, body: object, status: int, message: str
) -> None:
    r = client.request(method, path, content=orjson.dumps(body) if body is not None else None)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_malformed_json_and_wrong_content_type(client: TestClient) -> None:
    bad = client.post(
        "/v1/models/mnist:predict", content=b'{"instances": [', headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and "malformed JSON" in bad.json()["error"]
    wrong = client.post("/v2/models/mnist/infer", content=b"\x89PNG", headers={"content-type": "image/png"})
    assert wrong.status_code == 415 and "expected application/json" in wrong.json()["error"]
    curl_default = client.post(
        "/v1/models/mnist:predict",
        content=orjson.dumps({"instances": [IMAGE]}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert curl_default.status_code == 200  # `curl -d` without -H works, as with TF Serving


def test_bad_input_leaves_the_server_ready(client: TestClient) -> None:
    for body in (b"nan", b"{}", b'{"inputs": [{"name": "images"}]}', b'{"instances": [[NaN]]}'):
        assert client.post("/v2/models/mnist/infer", content=body).status_code == 400
        assert client.post("/v1/models/mnist:predict", content=body).status_code == 400
    assert client.get("/v2/health/ready").status_code == 200


def test_openapi_declares_request_bodies_with_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    infer = schema["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"]
    predict = schema["paths"]["/v1/models/{name}:predict"]["post"]["requestBody"]["content"]["application/json"]
    assert infer["example"]["inputs"][0]["shape"] == [1, 28, 28]
    assert "instances" in predict["example"]
    # the examples work as they are
    assert client.post("/v2/models/mnist/infer", json=infer["example"]).status_code == 200
    assert client.post("/v1/models/mnist:predict", json=predict["example"]).status_code == 200
    assert client.get("/docs").status_code == 200


def test_every_operation_has_examples_and_no_422(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
            for param in operation.get("parameters", []):
                if param["in"] == "path":
                    assert param.get("example") or param["schema"].get("examples"), (method, path, param["name"])
            if method == "post":
                assert "requestBody" in operation, path

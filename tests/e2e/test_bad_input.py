"""Every bad input of issue 4, on both protocols and the image route: a 4xx in the protocol's error
format (``{"error": "<message>"}``) whose message says what was wrong and what is expected; never
a 5xx, and the server stays ready."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from service.protocols.binary import HEADER_LENGTH, encode_request
from tests.e2e.conftest import MAX_BATCH_SIZE, MAX_BODY_BYTES
from tests.e2e.helpers import digit_picture, images, v2_json_input

PREDICT = "/v1/models/mnist:predict"
INFER = "/v2/models/mnist/infer"
IMAGE = "/v1/models/mnist/image"
ONE = images(1).tolist()  # one valid 28x28 instance list


@dataclass
class Bad:
    method: str
    path: str
    words: tuple[str, ...]  # the message must contain each (case-insensitive): what is wrong / expected
    status: tuple[int, ...] = (400,)
    kwargs: dict[str, Any] = field(default_factory=dict)


def _raw(body: bytes | str, content_type: str = "application/json") -> dict[str, Any]:
    return {"content": body, "headers": {"Content-Type": content_type}}


def _binary(x: np.ndarray, datatype: str = "FP32", **extra: Any) -> dict[str, Any]:
    request = {"inputs": [{"name": "images", "shape": list(x.shape), "datatype": datatype}], **extra}
    body, n = encode_request(request, {"images": x})
    return {"content": body, "headers": {HEADER_LENGTH: str(n), "Content-Type": "application/octet-stream"}}


def _infer(*inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"json": {"inputs": list(inputs), **extra}}


def _nan_image(value: float) -> np.ndarray:
    x = images(1)
    x[0, 3, 4] = value
    return x


def _with_token(token: str) -> bytes:
    """A valid one-image request with its first pixel written as a non-finite JSON token (TF Serving's syntax)."""
    body = orjson.dumps({"instances": images(1).astype(int).tolist()})
    start = body.index(b"[[[") + 3
    return body[:start] + token.encode() + body[body.index(b",", start) :]


def _png_truncated() -> bytes:
    return digit_picture("PNG")[:60]


CASES: dict[str, Bad] = {
    # ----- TF Serving REST --------------------------------------------------------------------------
    "tf-malformed-json": Bad("POST", PREDICT, ("json",), kwargs=_raw(b'{"instances": [[1, 2')),
    "tf-deeply-nested": Bad(
        "POST", PREDICT, ("json",), kwargs=_raw(b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    ),
    "tf-invalid-utf8": Bad("POST", PREDICT, ("json",), kwargs=_raw(b'{"instances": "\xff\xfe"}')),
    "tf-overflowing-number": Bad("POST", PREDICT, ("infinity",), kwargs=_raw(_with_token("1e400"))),
    "tf-empty-body": Bad("POST", PREDICT, ("empty",), kwargs=_raw(b"")),
    "tf-body-not-object": Bad("POST", PREDICT, ("object",), kwargs=_raw(b"[1, 2, 3]")),
    "tf-wrong-content-type": Bad(
        "POST", PREDICT, ("content type", "json"), (400, 415), _raw(digit_picture("PNG"), "image/png")
    ),
    "tf-both-instances-and-inputs": Bad(
        "POST", PREDICT, ("instances", "inputs", "both"), kwargs={"json": {"instances": ONE, "inputs": ONE}}
    ),
    "tf-neither": Bad("POST", PREDICT, ("instances", "inputs"), kwargs={"json": {"examples": ONE}}),
    "tf-empty-batch": Bad("POST", PREDICT, ("empty",), kwargs={"json": {"instances": []}}),
    "tf-wrong-rank": Bad("POST", PREDICT, ("28",), kwargs={"json": {"instances": images(2, shape=(784,)).tolist()}}),
    "tf-wrong-shape": Bad("POST", PREDICT, ("28",), kwargs={"json": {"instances": images(1, shape=(27, 28)).tolist()}}),
    "tf-ragged": Bad("POST", PREDICT, ("equal-length",), kwargs={"json": {"instances": [ONE[0], ONE[0][:5]]}}),
    "tf-strings": Bad("POST", PREDICT, ("number",), kwargs={"json": {"instances": [[["a"] * 28] * 28]}}),
    "tf-numeric-strings": Bad("POST", PREDICT, ("number",), kwargs={"json": {"instances": [[["1"] * 28] * 28]}}),
    "tf-booleans": Bad("POST", PREDICT, ("number",), kwargs={"json": {"instances": [[[True] * 28] * 28]}}),
    "tf-instance-object-with-the-wrong-key": Bad(
        "POST", PREDICT, ("images",), kwargs={"json": {"instances": [{"pixels": ONE[0]}]}}
    ),
    "tf-null": Bad("POST", PREDICT, ("finite",), kwargs={"json": {"instances": [[[None] * 28] * 28]}}),
    "tf-nan": Bad("POST", PREDICT, ("nan",), kwargs=_raw(_with_token("NaN"))),
    "tf-infinity": Bad("POST", PREDICT, ("infinity",), kwargs=_raw(_with_token("-Infinity"))),
    "tf-batch-too-large": Bad(
        "POST",
        PREDICT,
        (str(MAX_BATCH_SIZE), "batch"),
        kwargs={"json": {"instances": np.zeros((MAX_BATCH_SIZE + 1, 28, 28), np.uint8).tolist()}},
    ),
    "tf-body-too-large": Bad("POST", PREDICT, (str(MAX_BODY_BYTES),), (413,), _raw(b" " * (MAX_BODY_BYTES + 1))),
    "tf-bad-signature": Bad(
        "POST", PREDICT, ("signature",), kwargs={"json": {"signature_name": "classify", "instances": ONE}}
    ),
    "tf-b64-not-base64": Bad(
        "POST", PREDICT, ("base64",), kwargs={"json": {"instances": [{"b64": "%%% not base64 %%%"}]}}
    ),
    "tf-b64-not-an-image": Bad(
        "POST",
        PREDICT,
        ("png", "jpeg"),
        kwargs={"json": {"instances": [{"b64": base64.b64encode(b"hello, world").decode()}]}},
    ),
    "tf-b64-corrupt-image": Bad(
        "POST",
        PREDICT,
        ("image",),
        kwargs={"json": {"instances": [{"b64": base64.b64encode(_png_truncated()).decode()}]}},
    ),
    "tf-unknown-model": Bad("POST", "/v1/models/nope:predict", ("nope", "mnist"), (404,), {"json": {"instances": ONE}}),
    "tf-unknown-version": Bad(
        "POST", "/v1/models/mnist/versions/9:predict", ("9", "1, 2"), (404,), {"json": {"instances": ONE}}
    ),
    "tf-non-integer-version": Bad(
        "POST", "/v1/models/mnist/versions/latest:predict", ("latest",), (400, 404), {"json": {"instances": ONE}}
    ),
    "tf-status-unknown-model": Bad("GET", "/v1/models/nope", ("nope",), (404,)),
    "tf-name-escaping-repository": Bad("GET", "/v1/models/..%2F..%2Fetc/metadata", ("model",), (400, 404)),
    # ----- Open Inference Protocol ------------------------------------------------------------------
    "v2-malformed-json": Bad("POST", INFER, ("json",), kwargs=_raw(b'{"inputs": [{"name": ')),
    "v2-wrong-content-type": Bad(
        "POST", INFER, ("content type",), (400, 415), {"files": {"file": ("d.png", digit_picture("PNG"), "image/png")}}
    ),
    "v2-no-inputs": Bad("POST", INFER, ("inputs",), kwargs={"json": {"id": "1"}}),
    "v2-instances": Bad("POST", INFER, ("inputs",), kwargs={"json": {"instances": ONE}}),
    "v2-data-length-vs-shape": Bad(
        "POST",
        INFER,
        ("shape", "784", "783"),
        kwargs=_infer({"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": [0.0] * 783}),
    ),
    "v2-unknown-datatype": Bad(
        "POST", INFER, ("datatype", "FLOAT32", "FP32"), kwargs=_infer(v2_json_input("images", images(1), "FLOAT32"))
    ),
    "v2-bytes-datatype": Bad(
        "POST",
        INFER,
        ("BYTES", "FP32"),
        kwargs=_infer({"name": "images", "shape": [1], "datatype": "BYTES", "data": ["x"]}),
    ),
    "v2-unknown-input-name": Bad(
        "POST", INFER, ("pixels", "images"), kwargs=_infer(v2_json_input("pixels", images(1)))
    ),
    "v2-wrong-rank": Bad("POST", INFER, ("28",), kwargs=_infer(v2_json_input("images", images(1, shape=(784,))))),
    "v2-wrong-shape": Bad("POST", INFER, ("28",), kwargs=_infer(v2_json_input("images", images(2, shape=(28, 27))))),
    "v2-negative-dim": Bad(
        "POST",
        INFER,
        ("shape",),
        kwargs=_infer({"name": "images", "shape": [-1, 28, 28], "datatype": "FP32", "data": ONE}),
    ),
    "v2-empty-batch": Bad(
        "POST",
        INFER,
        ("empty",),
        kwargs=_infer({"name": "images", "shape": [0, 28, 28], "datatype": "FP32", "data": []}),
    ),
    "v2-strings": Bad(
        "POST",
        INFER,
        ("number",),
        kwargs=_infer({"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": ["a"] * 784}),
    ),
    "v2-numeric-strings": Bad(
        "POST",
        INFER,
        ("number",),
        kwargs=_infer({"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": ["1"] * 784}),
    ),
    "v2-booleans": Bad(
        "POST",
        INFER,
        ("number",),
        kwargs=_infer({"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": [True] * 784}),
    ),
    "v2-int8-out-of-range": Bad(
        "POST",
        INFER,
        ("INT8",),
        kwargs=_infer({"name": "images", "shape": [1, 28, 28], "datatype": "INT8", "data": [300] * 784}),
    ),
    "v2-ragged-nested-data": Bad(
        "POST",
        INFER,
        ("equal-length",),
        kwargs=_infer({"name": "images", "shape": [2, 28, 28], "datatype": "FP32", "data": [ONE[0], ONE[0][:3]]}),
    ),
    "v2-nan-json": Bad(
        "POST",
        INFER,
        ("nan",),
        kwargs=_raw(b'{"inputs": [{"name": "images", "shape": [1, 1, 1], "datatype": "FP32", "data": [NaN]}]}'),
    ),
    "v2-nan-binary": Bad("POST", INFER, ("nan",), kwargs=_binary(_nan_image(np.nan))),
    "v2-inf-binary": Bad("POST", INFER, ("infinity",), kwargs=_binary(_nan_image(np.inf))),
    "v2-unknown-output": Bad(
        "POST",
        INFER,
        ("logits", "probabilities"),
        kwargs=_infer(v2_json_input("images", images(1)), outputs=[{"name": "logits"}]),
    ),
    "v2-batch-too-large": Bad(
        "POST",
        INFER,
        (str(MAX_BATCH_SIZE), "batch"),
        kwargs=_binary(np.zeros((MAX_BATCH_SIZE + 1, 28, 28), np.float32)),
    ),
    "v2-body-too-large": Bad(
        "POST", INFER, (str(MAX_BODY_BYTES),), (413,), _binary(np.zeros((2600, 28, 28), np.float32))
    ),
    "v2-bad-header-length": Bad(
        "POST", INFER, (HEADER_LENGTH.lower(),), kwargs={**_binary(images(1)), "headers": {HEADER_LENGTH: "many"}}
    ),
    "v2-binary-trailing-bytes": Bad(
        "POST",
        INFER,
        ("binary_data_size",),
        kwargs={**_binary(images(1)), "content": _binary(images(1))["content"] + b"xx"},
    ),
    "v2-unknown-model": Bad(
        "POST", "/v2/models/nope/infer", ("nope",), (404,), _infer(v2_json_input("images", images(1)))
    ),
    "v2-unknown-version": Bad(
        "POST", "/v2/models/mnist/versions/9/infer", ("9",), (404,), _infer(v2_json_input("images", images(1)))
    ),
    "v2-metadata-unknown-model": Bad("GET", "/v2/models/nope", ("nope",), (404,)),
    "v2-name-escaping-repository": Bad("GET", "/v2/models/..%2F..%2Fetc%2Fpasswd", ("model",), (400, 404)),
    # ----- image upload -----------------------------------------------------------------------------
    "image-corrupt-png": Bad(
        "POST", IMAGE, ("image",), kwargs={"files": {"file": ("d.png", _png_truncated(), "image/png")}}
    ),
    "image-not-an-image": Bad(
        "POST", IMAGE, ("png", "jpeg"), kwargs={"files": {"file": ("notes.txt", b"just some text", "text/plain")}}
    ),
    "image-empty-file": Bad("POST", IMAGE, ("empty",), kwargs={"files": {"file": ("d.png", b"", "image/png")}}),
    "image-no-file-field": Bad(
        "POST", IMAGE, ("file",), kwargs={"files": {"picture": ("d.png", digit_picture(), "image/png")}}
    ),
    "image-json-body": Bad("POST", IMAGE, ("multipart",), (400, 415), {"json": {"instances": ONE}}),
    "image-bad-top-k": Bad(
        "POST",
        IMAGE,
        ("top_k",),
        kwargs={"params": {"top_k": "lots"}, "files": {"file": ("d.png", digit_picture(), "image/png")}},
    ),
    "image-zero-top-k": Bad(
        "POST",
        IMAGE,
        ("top_k",),
        kwargs={"params": {"top_k": 0}, "files": {"file": ("d.png", digit_picture(), "image/png")}},
    ),
    "image-to-a-non-image-model": Bad(
        "POST", "/v1/models/pair/image", ("image",), kwargs={"files": {"file": ("d.png", digit_picture(), "image/png")}}
    ),
    "tf-b64-to-a-non-image-model": Bad(
        "POST",
        "/v1/models/pair:predict",
        ("input", "expected"),
        kwargs={"json": {"instances": [{"b64": base64.b64encode(digit_picture()).decode()}]}},
    ),
    "image-unknown-model": Bad(
        "POST", "/v1/models/nope/image", ("nope",), (404,), {"files": {"file": ("d.png", digit_picture(), "image/png")}}
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_a_clear_4xx_and_the_server_stays_ready(client: httpx.Client, case: Bad) -> None:
    response = client.request(case.method, case.path, **case.kwargs)
    assert response.status_code in case.status, f"{response.status_code}: {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/json"), response.headers["content-type"]
    body = orjson.loads(response.content)
    assert set(body) == {"error"}, body
    message = body["error"]
    assert isinstance(message, str) and len(message) > 10
    missing = [w for w in case.words if w.lower() not in message.lower()]
    assert not missing, f"message {message!r} does not mention {missing}"
    assert client.get("/v2/health/ready").status_code == 200


def test_chunked_body_over_the_limit_is_413_too(client: httpx.Client) -> None:
    # no Content-Length to check up front: the limit must hold while the body streams in
    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 1_000_000 + 2):
            yield b" " * 1_000_000

    response = client.post(PREDICT, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.json()["error"]
    assert client.get("/v2/health/ready").status_code == 200


def test_unsupported_tf_serving_verbs_point_to_predict(client: httpx.Client) -> None:
    # TF Serving also has :classify and :regress; this server has :predict only, and should say so
    for verb in ("classify", "regress"):
        response = client.post(f"/v1/models/mnist:{verb}", json={"examples": [{"x": 1.0}]})
        assert 400 <= response.status_code < 500, response.status_code
        message = response.json()["error"]
        assert f":{verb}" in message and ":predict" in message, message


def test_unknown_routes_answer_in_the_error_format(client: httpx.Client) -> None:
    for method, path in (("GET", "/v1/nonsense"), ("GET", "/v2/models/mnist/infer"), ("DELETE", "/v2/models/mnist")):
        response = client.request(method, path)
        assert response.status_code in (404, 405)
        assert set(response.json()) == {"error"} and path in response.json()["error"]

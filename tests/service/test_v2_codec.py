"""service.protocols.v2: JSON and binary inference bodies -> checked numpy feeds -> response bytes."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from service.errors import InvalidInputError
from service.protocols import binary, v2
from service.runtime import ModelRuntime

IMAGE = np.arange(784, dtype=np.float32).reshape(28, 28) % 256


def request(data: Any = None, shape: Any = (1, 28, 28), datatype: str = "FP32", **extra: Any) -> bytes:
    tensor = {
        "name": "images",
        "shape": list(shape),
        "datatype": datatype,
        "data": IMAGE.tolist() if data is None else data,
    }
    return orjson.dumps({"inputs": [tensor], **extra})


def decode_error(body: bytes, model: ModelRuntime, max_batch: int = 64) -> str:
    with pytest.raises(InvalidInputError) as info:
        v2.decode(body, None, model, max_batch)
    return info.value.message


def test_nested_and_flat_data_decode_to_the_same_array(runtime: ModelRuntime) -> None:
    nested = v2.decode(request(), None, runtime, 64)
    flat = v2.decode(request(IMAGE.ravel().tolist()), None, runtime, 64)
    assert nested.feeds["images"].shape == (1, 28, 28) and nested.feeds["images"].dtype == np.float32
    np.testing.assert_array_equal(nested.feeds["images"], flat.feeds["images"])
    np.testing.assert_array_equal(nested.feeds["images"][0], IMAGE)
    assert nested.batch == 1 and nested.outputs == []


def test_integer_datatypes_are_accepted_for_a_float_input(runtime: ModelRuntime) -> None:
    parsed = v2.decode(request(IMAGE.astype(int).tolist(), datatype="UINT8"), None, runtime, 64)
    assert parsed.feeds["images"].dtype == np.float32


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b"", "the request body is empty"),
        (orjson.dumps({"inputs": []}), "'inputs' must be a non-empty list"),
        (request(shape=(1, 28, 27)), "shape [1, 28, 27] holds 756 values but data has 784"),
        (request(datatype="FP8"), "unsupported datatype 'FP8'"),
        (request(datatype="BYTES"), "has datatype BYTES: expected FP32"),
        (request(IMAGE.ravel().tolist(), shape=(1, 784)), "has shape [1, 784], expected [batch, 28, 28]"),
        (request([["a"] * 28] * 28), "contains strings: expected finite numbers convertible to float32"),
        (request([[1.0] * 28] * 27 + [[1.0] * 27]), "equal-length rows"),
        (request([None] * 784), "contains null"),
        (request(["1"] * 784), "contains strings"),
        (request([True] * 784), "contains true/false"),
        (request([300] * 784, datatype="INT8"), "input 'images' (INT8) has values outside the int8 range [-128, 127]"),
        (request([-1] * 784, datatype="UINT8"), "outside the uint8 range [0, 255]"),
        (
            b'{"inputs": [{"name": "images", "shape": [1,28,28], "datatype": "FP32", "data": [NaN]}]}',
            "NaN and Infinity",
        ),
        (request([1e39] * 784), "NaN or Infinity (or a number too large for float32)"),
        (request([], shape=(0, 28, 28)), "empty batch"),
        (request(shape=(1, 28, 28), id="x", instances=[1]), "'instances' is TF Serving's format"),
        (
            orjson.dumps({"inputs": [{"name": "pixels", "shape": [1], "datatype": "FP32", "data": [1]}]}),
            "'images' FP32 [batch, 28, 28]",
        ),
        (request(shape="1x28x28"), "'shape' must be a non-empty list of non-negative integers"),
        (request(outputs=[{"name": "logits"}]), "the model's outputs are ['probabilities', 'label']"),
    ],
)
def test_bad_requests_say_what_is_wrong(runtime: ModelRuntime, body: bytes, message: str) -> None:
    assert message in decode_error(body, runtime)


def test_a_batch_over_the_limit_is_refused(runtime: ModelRuntime) -> None:
    body = request(np.zeros((3, 28, 28)).tolist(), shape=(3, 28, 28))
    assert "batch of 3, more than the limit of 2 (max_batch_size)" in decode_error(body, runtime, max_batch=2)


def test_encode_echoes_id_and_returns_requested_outputs_flat(runtime: ModelRuntime) -> None:
    parsed = v2.decode(request(id="abc", outputs=[{"name": "label"}]), None, runtime, 64)
    results = runtime.run(parsed.feeds, parsed.outputs)
    body, headers = v2.encode(parsed, runtime, "mnist", 3, results)
    answer = orjson.loads(body)
    assert headers == {}
    assert answer["id"] == "abc" and answer["model_name"] == "mnist" and answer["model_version"] == "3"
    assert answer["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [1], "data": [int(results["label"][0])]}
    ]


def test_binary_request_and_binary_response_round_trip(runtime: ModelRuntime) -> None:
    x = np.random.default_rng(0).uniform(0, 255, (5, 28, 28)).astype(np.float32)
    header = {
        "inputs": [{"name": "images", "shape": [5, 28, 28], "datatype": "FP32"}],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "label"}],
    }
    body, length = binary.encode_request(header, {"images": x})
    parsed = v2.decode(body, str(length), runtime, 64)
    np.testing.assert_array_equal(parsed.feeds["images"], x)
    results = runtime.run(parsed.feeds, parsed.outputs)
    out, headers = v2.encode(parsed, runtime, "mnist", 1, results)
    assert headers["content-type"] == "application/octet-stream"
    json_part, arrays = binary.decode_response(out, headers[binary.HEADER_LENGTH])
    np.testing.assert_array_equal(arrays["probabilities"], results["probabilities"])
    assert json_part["outputs"][1]["data"] == results["label"].tolist()


def test_binary_size_mismatch_is_a_400_with_the_sizes(runtime: ModelRuntime) -> None:
    raw = np.zeros((1, 28, 28), np.float32).tobytes()  # one image, but the header claims two
    tensor = {"name": "images", "shape": [2, 28, 28], "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}
    header = orjson.dumps({"inputs": [tensor]})
    body, length = header + raw, len(header)
    with pytest.raises(InvalidInputError, match="needs 1568 x 4 = 6272 bytes"):
        v2.decode(body, str(length), runtime, 64)


def test_foreign_model_inputs_are_read_from_the_model(foreign_runtime: ModelRuntime) -> None:
    spec = foreign_runtime.inputs[0]
    body = orjson.dumps({"inputs": [{"name": spec.name, "shape": [2, 784], "datatype": "FP32", "data": [0.0] * 1568}]})
    parsed = v2.decode(body, None, foreign_runtime, 64)
    assert parsed.feeds[spec.name].shape == (2, 784)


def test_classification_extension_answers_top_k_strings(runtime: ModelRuntime) -> None:
    outputs = [{"name": "probabilities", "parameters": {"classification": 3}}]
    parsed = v2.decode(request(outputs=outputs), None, runtime, 64)
    results = runtime.run(parsed.feeds, parsed.outputs)
    body, _ = v2.encode(parsed, runtime, "mnist", 1, results)
    (output,) = orjson.loads(body)["outputs"]
    assert output["datatype"] == "BYTES" and output["shape"] == [1, 3]
    probs = results["probabilities"][0]
    best = np.argsort(-probs, kind="stable")[:3]
    assert [e.split(":")[1] for e in output["data"]] == [str(i) for i in best]
    assert [e.split(":")[2] for e in output["data"]] == [runtime.labels[i] for i in best]
    np.testing.assert_allclose([float(e.split(":")[0]) for e in output["data"]], probs[best], rtol=1e-6)


@pytest.mark.parametrize(
    ("params", "name", "message"),
    [
        ({"classification": 0}, "probabilities", "positive integer"),
        ({"classification": 2}, "label", "cannot be classified"),
    ],
)
def test_bad_classification_requests(runtime: ModelRuntime, params: dict[str, Any], name: str, message: str) -> None:
    assert message in decode_error(request(outputs=[{"name": name, "parameters": params}]), runtime)

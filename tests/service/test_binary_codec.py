"""The V2 binary tensor extension codec, checked against the spec and against tritonclient's own
encoder/decoder (the client library people will point at the service)."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from hypothesis import given, settings
from hypothesis import strategies as st

from service.protocols.binary import (
    DATATYPES,
    EXTENSION,
    HEADER_LENGTH,
    BinaryDataError,
    binary_outputs,
    datatype_of,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    numpy_dtype,
)


def _body(header: dict, *buffers: bytes) -> tuple[bytes, int]:
    raw = orjson.dumps(header)
    return raw + b"".join(buffers), len(raw)


def _input(name: str, datatype: str, shape: list[int], size: int) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": size}}


def test_constants_follow_the_spec() -> None:
    assert HEADER_LENGTH == "Inference-Header-Content-Length"
    assert EXTENSION == "binary_tensor_data"
    # every datatype of the spec that numpy can represent; sizes as in the spec's table
    sizes = {"BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8, "INT8": 1, "INT16": 2, "INT32": 4}
    sizes |= {"INT64": 8, "FP16": 2, "FP32": 4, "FP64": 8}
    assert {k: DATATYPES[k].itemsize for k in sizes} == sizes
    assert "BYTES" in DATATYPES


@pytest.mark.parametrize("datatype", [d for d in DATATYPES if d != "BYTES"])
def test_datatype_table_round_trips(datatype: str) -> None:
    assert datatype_of(numpy_dtype(datatype)) == datatype


def test_datatype_of_strings_and_objects_is_bytes() -> None:
    assert datatype_of(np.dtype(object)) == "BYTES"
    assert datatype_of(np.dtype("S3")) == "BYTES"


@pytest.mark.parametrize("bad", ["FLOAT32", "fp32", "BF16", 7, None])
def test_unknown_datatype_is_rejected_with_the_supported_list(bad: object) -> None:
    with pytest.raises(BinaryDataError, match=r"unsupported datatype .*expected one of BOOL, UINT8"):
        numpy_dtype(bad)


def test_decode_fp32_batch_is_a_zero_copy_view() -> None:
    images = np.random.default_rng(0).uniform(0, 255, (3, 28, 28)).astype(np.float32)
    body, n = _body({"inputs": [_input("images", "FP32", [3, 28, 28], images.nbytes)]}, images.tobytes())
    request = decode_request(body, str(n))
    got = request.tensors["images"]
    assert got.dtype == np.float32 and got.shape == (3, 28, 28)
    np.testing.assert_array_equal(got, images)
    assert np.shares_memory(got, np.frombuffer(body, np.uint8))
    assert request.header["inputs"][0]["name"] == "images"


def test_mixed_json_and_binary_inputs_keep_order_and_json_data() -> None:
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.array([True, False, True])
    header = {
        "id": "7",
        "inputs": [
            _input("a", "INT64", [2, 3], a.nbytes),
            {"name": "j", "datatype": "FP32", "shape": [2], "data": [1.5, 2.5]},
            _input("b", "BOOL", [3], b.nbytes),
        ],
    }
    body, n = _body(header, a.tobytes(), b.tobytes())
    request = decode_request(body, n)
    assert set(request.tensors) == {"a", "b"}
    np.testing.assert_array_equal(request.tensors["a"], a)
    np.testing.assert_array_equal(request.tensors["b"], b)
    assert request.header["inputs"][1]["data"] == [1.5, 2.5]
    assert request.header["id"] == "7"


def test_bytes_elements_are_length_prefixed() -> None:
    raw = b"".join(struct.pack("<I", len(s)) + s for s in (b"ab", b"", b"xyz\x00"))
    body, n = _body({"inputs": [_input("s", "BYTES", [3], len(raw))]}, raw)
    got = decode_request(body, n).tensors["s"]
    assert got.tolist() == [b"ab", b"", b"xyz\x00"]


def test_zero_element_tensor() -> None:
    body, n = _body({"inputs": [_input("x", "FP32", [0, 4], 0)]})
    assert decode_request(body, n).tensors["x"].shape == (0, 4)


@pytest.mark.parametrize(
    ("header_length", "message"),
    [
        (None, "must be a non-negative integer"),
        ("abc", "must be a non-negative integer"),
        ("-1", r"is -1 but the body has \d+ bytes"),
        ("0", "is 0 but the body"),
        ("100000", "is 100000 but the body has"),
    ],
)
def test_bad_header_length(header_length: object, message: str) -> None:
    body, _ = _body({"inputs": [_input("x", "FP32", [1], 4)]}, b"\0" * 4)
    with pytest.raises(BinaryDataError, match=message):
        decode_request(body, header_length)  # type: ignore[arg-type]


def test_header_length_cutting_the_json_says_so() -> None:
    body, n = _body({"inputs": [_input("x", "FP32", [1], 4)]}, b"\0" * 4)
    with pytest.raises(BinaryDataError, match=r"are not valid JSON .*expected the JSON inference header"):
        decode_request(body, n - 3)


def test_json_header_must_be_an_object() -> None:
    body, n = _body([1, 2])  # type: ignore[arg-type]
    with pytest.raises(BinaryDataError, match="must be an object"):
        decode_request(body, n)


def test_size_not_matching_shape_and_dtype() -> None:
    body, n = _body({"inputs": [_input("x", "FP32", [2, 3], 20)]}, b"\0" * 20)
    with pytest.raises(
        BinaryDataError, match=r"binary_data_size is 20 bytes, but shape \[2, 3\] of FP32 needs 6 x 4 = 24"
    ):
        decode_request(body, n)


def test_truncated_body() -> None:
    body, n = _body({"inputs": [_input("x", "FP32", [4], 16)]}, b"\0" * 10)
    with pytest.raises(BinaryDataError, match=r"declares binary_data_size 16 .* body ends"):
        decode_request(body, n)


def test_trailing_bytes() -> None:
    body, n = _body({"inputs": [_input("x", "FP32", [1], 4)]}, b"\0" * 9)
    with pytest.raises(BinaryDataError, match=r"5 bytes after the binary inputs are not claimed"):
        decode_request(body, n)


def test_binary_data_without_any_binary_input_is_trailing_garbage() -> None:
    body, n = _body({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}, b"junk")
    with pytest.raises(BinaryDataError, match="4 bytes after the binary inputs"):
        decode_request(body, n)


@pytest.mark.parametrize("size", [-4, "16", 1.5, True, None])
def test_bad_binary_data_size(size: object) -> None:
    body, n = _body({"inputs": [_input("x", "FP32", [4], size)]}, b"\0" * 16)  # type: ignore[arg-type]
    with pytest.raises(BinaryDataError, match="binary_data_size must be a non-negative integer"):
        decode_request(body, n)


@pytest.mark.parametrize("shape", [None, [-1, 4], [2, "2"], "4", [True]])
def test_bad_shape(shape: object) -> None:
    body, n = _body({"inputs": [_input("x", "FP32", shape, 16)]}, b"\0" * 16)  # type: ignore[arg-type]
    with pytest.raises(BinaryDataError, match="shape must be a list of non-negative integers"):
        decode_request(body, n)


def test_unknown_datatype_in_binary_input() -> None:
    body, n = _body({"inputs": [_input("x", "FLOAT", [4], 16)]}, b"\0" * 16)
    with pytest.raises(BinaryDataError, match="unsupported datatype 'FLOAT'"):
        decode_request(body, n)


def test_data_and_binary_size_together_is_ambiguous() -> None:
    tensor = _input("x", "FP32", [1], 4) | {"data": [1.0]}
    body, n = _body({"inputs": [tensor]}, b"\0" * 4)
    with pytest.raises(BinaryDataError, match="both 'data' and parameters.binary_data_size"):
        decode_request(body, n)


def test_duplicate_input_names() -> None:
    body, n = _body({"inputs": [_input("x", "FP32", [1], 4), _input("x", "FP32", [1], 4)]}, b"\0" * 8)
    with pytest.raises(BinaryDataError, match="appears twice"):
        decode_request(body, n)


def test_bool_bytes_other_than_0_1() -> None:
    body, n = _body({"inputs": [_input("b", "BOOL", [2], 2)]}, b"\x01\x07")
    with pytest.raises(BinaryDataError, match="BOOL elements must be bytes 0 or 1"):
        decode_request(body, n)


@pytest.mark.parametrize(
    ("raw", "shape", "message"),
    [
        (struct.pack("<I", 5) + b"ab", [1], "declares 5 bytes but only 2 remain"),
        (struct.pack("<I", 1) + b"a" + b"\x01\x00", [2], "truncated 4-byte length prefix"),
        (struct.pack("<I", 1) + b"a", [2], "1 BYTES elements, but its shape holds 2"),
    ],
)
def test_malformed_bytes_tensor(raw: bytes, shape: list[int], message: str) -> None:
    body, n = _body({"inputs": [_input("s", "BYTES", shape, len(raw))]}, raw)
    with pytest.raises(BinaryDataError, match=message):
        decode_request(body, n)


def test_errors_are_value_errors() -> None:
    # the service maps ValueError to a 400 in the protocol's error format
    assert issubclass(BinaryDataError, ValueError)


# ----- which outputs are binary -------------------------------------------------------------------

NAMES = ["probabilities", "label"]


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        ({}, set()),
        ({"parameters": {"binary_data_output": True}}, {"probabilities", "label"}),
        ({"outputs": [{"name": "label", "parameters": {"binary_data": True}}]}, {"label"}),
        (
            {
                "parameters": {"binary_data_output": True},
                "outputs": [{"name": "label", "parameters": {"binary_data": False}}, {"name": "probabilities"}],
            },
            {"probabilities"},
        ),
        ({"parameters": {"binary_data_output": False}, "outputs": [{"name": "label"}]}, set()),
    ],
)
def test_binary_outputs_rules(request_body: dict, expected: set[str]) -> None:
    assert binary_outputs(request_body, NAMES) == expected


# ----- responses ----------------------------------------------------------------------------------


def test_encode_response_mixes_binary_and_json_outputs_in_order() -> None:
    probs = np.random.default_rng(1).random((4, 10), dtype=np.float32)
    labels = probs.argmax(1).astype(np.int64)
    response = {
        "model_name": "mnist",
        "model_version": "2",
        "id": "abc",
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [4, 10]},
            {"name": "label", "datatype": "INT64", "shape": [4], "data": labels.tolist()},
        ],
    }
    body, n = encode_response(response, {"probabilities": probs})
    header = orjson.loads(body[:n])
    assert header["model_name"] == "mnist" and header["id"] == "abc"
    out = header["outputs"]
    assert out[0]["parameters"] == {"binary_data_size": probs.nbytes} and "data" not in out[0]
    assert out[1]["data"] == labels.tolist() and "parameters" not in out[1]
    assert len(body) == n + probs.nbytes
    np.testing.assert_array_equal(np.frombuffer(body[n:], np.float32).reshape(4, 10), probs)


def test_encode_response_fills_datatype_shape_and_drops_json_data() -> None:
    labels = np.array([3, 1], dtype=np.int64)
    body, n = encode_response({"outputs": [{"name": "label", "data": [9, 9]}]}, {"label": labels})
    (out,) = orjson.loads(body[:n])["outputs"]
    assert out == {"name": "label", "datatype": "INT64", "shape": [2], "parameters": {"binary_data_size": 16}}
    header, arrays = decode_response(body, n)
    np.testing.assert_array_equal(arrays["label"], labels)


def test_encode_response_keeps_output_parameters() -> None:
    body, n = encode_response(
        {"outputs": [{"name": "x", "parameters": {"note": "kept"}}]}, {"x": np.zeros(2, np.float32)}
    )
    assert orjson.loads(body[:n])["outputs"][0]["parameters"] == {"note": "kept", "binary_data_size": 8}


def test_non_contiguous_and_big_endian_arrays_go_out_little_endian_row_major() -> None:
    a = np.arange(12, dtype=">f4").reshape(3, 4).T  # big-endian and Fortran order
    body, n = encode_response({"outputs": [{"name": "a"}]}, {"a": a})
    _, arrays = decode_response(body, n)
    np.testing.assert_array_equal(arrays["a"], a)
    assert body[n : n + 4] == struct.pack("<f", 0.0) and body[n + 4 : n + 8] == struct.pack("<f", 4.0)


def test_request_round_trip_with_bytes() -> None:
    s = np.array([[b"a", b"bc"], [b"", "d\u00e9"]], dtype=object)
    x = np.linspace(0, 1, 6, dtype=np.float64).reshape(2, 3)
    body, n = encode_request({"inputs": [{"name": "s"}, {"name": "x"}]}, {"s": s, "x": x})
    request = decode_request(body, n)
    assert request.tensors["s"].tolist() == [[b"a", b"bc"], [b"", "d\u00e9".encode()]]
    np.testing.assert_array_equal(request.tensors["x"], x)


@settings(max_examples=60, deadline=None)
@given(
    datatype=st.sampled_from([d for d in DATATYPES if d not in ("BYTES", "BOOL")]),
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_round_trip_any_numeric_tensor(datatype: str, shape: list[int], seed: int) -> None:
    dtype = DATATYPES[datatype]
    data = np.random.default_rng(seed).integers(0, 100, size=shape).astype(dtype)
    body, n = encode_request({"id": "r", "inputs": [{"name": "t"}]}, {"t": data})
    request = decode_request(body, n)
    assert request.header["inputs"][0]["datatype"] == datatype
    assert request.tensors["t"].dtype == dtype and request.tensors["t"].shape == tuple(shape)
    np.testing.assert_array_equal(request.tensors["t"], data)


# ----- interoperability with tritonclient ---------------------------------------------------------


def test_decodes_what_tritonclient_sends() -> None:
    images = np.random.default_rng(2).uniform(0, 255, (5, 784)).astype(np.float32)
    names = np.array([b"x", b"yz"], dtype=object)
    a = triton.InferInput("input", [5, 784], "FP32")
    a.set_data_from_numpy(images, binary_data=True)
    b = triton.InferInput("names", [2], "BYTES")
    b.set_data_from_numpy(names, binary_data=True)
    c = triton.InferInput("json", [2], "INT32")
    c.set_data_from_numpy(np.array([4, 5], dtype=np.int32), binary_data=False)
    out = triton.InferRequestedOutput("logits", binary_data=True)
    body, n = triton.InferenceServerClient.generate_request_body([a, b, c], outputs=[out], request_id="42")
    request = decode_request(body, n)
    np.testing.assert_array_equal(request.tensors["input"], images)
    assert request.tensors["names"].tolist() == [b"x", b"yz"]
    assert request.header["inputs"][2]["data"] == [4, 5]
    assert request.header["id"] == "42"
    assert binary_outputs(request.header, ["logits", "other"]) == {"logits"}


def test_tritonclient_without_requested_outputs_asks_for_all_binary() -> None:
    a = triton.InferInput("input", [1, 4], "FP32")
    a.set_data_from_numpy(np.zeros((1, 4), np.float32), binary_data=False)
    body, n = triton.InferenceServerClient.generate_request_body([a])
    assert n is None  # a plain JSON request ...
    assert binary_outputs(orjson.loads(body), NAMES) == set(NAMES)  # ... that wants binary outputs


def test_tritonclient_reads_our_response() -> None:
    probs = np.random.default_rng(3).random((1000, 10), dtype=np.float32)
    labels = probs.argmax(1).astype(np.int64)
    response = {
        "model_name": "m",
        "model_version": "1",
        "id": "9",
        "outputs": [{"name": "probabilities"}, {"name": "label"}],
    }
    body, n = encode_response(response, {"probabilities": probs, "label": labels})
    result = triton.InferenceServerClient.parse_response_body(body, header_length=n)
    np.testing.assert_array_equal(result.as_numpy("probabilities"), probs)
    np.testing.assert_array_equal(result.as_numpy("label"), labels)
    assert result.get_response()["id"] == "9"


def test_declared_datatype_wins_over_the_arrays_dtype() -> None:
    # a float64 array answered as a model's FP32 output must not go out as 8-byte floats
    probs = np.array([[0.25, 0.75]], dtype=np.float64)
    body, n = encode_response({"outputs": [{"name": "p", "datatype": "FP32", "shape": [9, 9]}]}, {"p": probs})
    header, arrays = decode_response(body, n)
    assert header["outputs"][0]["shape"] == [1, 2]
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 8
    assert arrays["p"].dtype == np.float32 and arrays["p"].tolist() == [[0.25, 0.75]]

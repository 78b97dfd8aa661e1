"""The plain decoders of the hot path: a request they accept decodes exactly as the general
decoder decodes it; everything else is None, never an error."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from service.protocols import tfserving, v2
from service.protocols.tensors import plain_array, to_array
from service.runtime import ModelRuntime

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
IMAGE = (np.arange(784).reshape(28, 28) % 256).tolist()


@pytest.mark.parametrize(
    "value",
    [[1.5, 2.0], [[1, 2], [3, 4]], [3.0e38, -1.0], [2**63 + 1, 0], [True, 1.0], [1e-300, 0.0]],
)
def test_plain_values_convert_as_to_array_converts_them(value: list[Any]) -> None:
    for dtype in (F32, F64):
        got = plain_array(value, dtype)
        assert got is not None and got.dtype == dtype
        np.testing.assert_array_equal(got, to_array(value, dtype, "x"))


@pytest.mark.parametrize(
    "value",
    [[3.5e38], [-1e39, 1.0], [1e200], ["1"], [True, False], [None], [[1.0], [1.0, 2.0]], [], [{"a": 1}], [[]]],
)
def test_values_that_are_not_plainly_numbers_in_range_are_left_to_to_array(value: list[Any]) -> None:
    assert plain_array(value, F32) is None


def test_only_float32_and_float64_tensors_are_plain() -> None:
    for dtype in (np.float16, np.int64, np.int32, np.uint8, np.bool_):
        assert plain_array([1, 2], np.dtype(dtype)) is None


def test_plain_tf_request_decodes_like_the_general_decoder(runtime: ModelRuntime) -> None:
    body = orjson.dumps({"instances": [IMAGE, IMAGE]})
    plain = tfserving.decode_plain(body, runtime, 8)
    general = tfserving.decode(body, runtime, 8, lambda *a: np.zeros(0))
    assert plain is not None and (plain.row_format, plain.batch) == (general.row_format, general.batch)
    np.testing.assert_array_equal(plain.feeds["images"], general.feeds["images"])
    assert plain.feeds["images"].dtype == np.float32


@pytest.mark.parametrize(
    "payload",
    [
        {"instances": [IMAGE] * 9},  # over the batch limit of 8
        {"instances": [IMAGE], "signature_name": ""},
        {"inputs": [IMAGE]},
        {"instances": [{"images": IMAGE}]},
        {"instances": [IMAGE[:27]]},
        {"instances": IMAGE},
        {"instances": []},
        [IMAGE],
    ],
)
def test_other_tf_requests_are_not_plain(runtime: ModelRuntime, payload: Any) -> None:
    assert tfserving.decode_plain(orjson.dumps(payload), runtime, 8) is None
    assert tfserving.decode_plain(b"{not json", runtime, 8) is None


def test_plain_v2_request_decodes_like_the_general_decoder(runtime: ModelRuntime) -> None:
    tensor = {"name": "images", "shape": [2, 28, 28], "datatype": "FP32", "data": IMAGE + IMAGE}
    body = orjson.dumps({"id": "7", "inputs": [tensor]})
    plain, general = v2.decode_plain(body, runtime, 8), v2.decode(body, None, runtime, 8)
    assert plain is not None
    assert (plain.header, plain.outputs, plain.batch, plain.classify) == (
        general.header,
        general.outputs,
        general.batch,
        general.classify,
    )
    np.testing.assert_array_equal(plain.feeds["images"], general.feeds["images"])


TENSOR = {"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": IMAGE}


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": [{**TENSOR, "datatype": "INT32"}]},
        {"inputs": [{**TENSOR, "name": "x"}]},
        {"inputs": [{**TENSOR, "shape": [-1, 28, 28]}]},
        {"inputs": [{**TENSOR, "shape": [1, 784]}]},
        {"inputs": [{**TENSOR, "shape": [2, 28, 28]}]},
        {"inputs": [{**TENSOR, "shape": [9, 28, 28], "data": IMAGE * 9}]},  # over the batch limit
        {"inputs": [{**TENSOR, "shape": [1, 28, 28.0]}]},
        {"inputs": [{**TENSOR, "parameters": {}}]},
        {"inputs": [TENSOR], "outputs": [{"name": "label"}]},
        {"inputs": [TENSOR], "parameters": {"binary_data_output": True}},
        {"inputs": [TENSOR, TENSOR]},
        {"inputs": TENSOR},
        {"inputs": [{**TENSOR, "data": [[1e39] * 28] * 28}]},
    ],
)
def test_other_v2_requests_are_not_plain(runtime: ModelRuntime, payload: Any) -> None:
    assert v2.decode_plain(orjson.dumps(payload), runtime, 8) is None

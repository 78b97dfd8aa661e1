"""The plain decoders of the hot path: a request they accept decodes exactly as the general
decoder decodes it; everything else is None, never an error."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.protocols import tfserving, v2
from service.protocols.tensors import PlainNumber, plain_array
from service.runtime import ModelRuntime

IMAGE = (np.arange(784).reshape(28, 28) % 256).tolist()
LIMIT = 2**53
# numbers as clients write them: integers, shortest repr, 17 significant digits, long fixed-point
NUMBERS = st.one_of(
    st.integers(-LIMIT, LIMIT).map(str),
    st.floats(-LIMIT, LIMIT).map(repr),
    st.floats(-1e6, 1e6).map(lambda x: f"{x:.17g}"),
    st.floats(-1e3, 1e3).map(lambda x: f"{x:.30f}"),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(NUMBERS, min_size=1, max_size=20))
def test_the_schema_reads_numbers_as_orjson_does(texts: list[str]) -> None:
    body = f"[{','.join(texts)}]".encode()
    plain = msgspec.json.decode(body, type=list[PlainNumber])
    general = np.asarray(orjson.loads(body))
    np.testing.assert_array_equal(np.asarray(plain, dtype=np.float32), general.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(plain, dtype=np.float64), general.astype(np.float64))


@settings(max_examples=40, deadline=None)
@given(st.lists(NUMBERS, min_size=784, max_size=784), st.integers(1, 3))
def test_plain_and_general_tf_decoders_give_the_same_array(runtime: ModelRuntime, texts: list[str], batch: int) -> None:
    rows = ",".join("[" + ",".join(texts[r * 28 : r * 28 + 28]) + "]" for r in range(28))
    body = ('{"instances": [' + ",".join([f"[{rows}]"] * batch) + "]}").encode()
    plain = tfserving.decode_plain(body, runtime, 8)
    general = tfserving.decode(body, runtime, 8, lambda *a: np.zeros(0))
    assert plain is not None and (plain.row_format, plain.batch) == (general.row_format, general.batch) == (True, batch)
    assert plain.feeds["images"].dtype == general.feeds["images"].dtype == np.float32
    np.testing.assert_array_equal(plain.feeds["images"], general.feeds["images"])


def test_plain_values_convert_to_the_tensor_dtype() -> None:
    for dtype in (np.float32, np.float64):
        got = plain_array([[1, 2.5], [3, 4]], np.dtype(dtype))
        assert got is not None and got.dtype == dtype and got.tolist() == [[1, 2.5], [3, 4]]


def test_ragged_empty_or_other_dtypes_are_not_plain() -> None:
    assert plain_array([[1.0], [1.0, 2.0]], np.dtype(np.float32)) is None
    assert plain_array([], np.dtype(np.float32)) is None
    for dtype in (np.float16, np.int64, np.int32, np.uint8, np.bool_):
        assert plain_array([1, 2], np.dtype(dtype)) is None


@pytest.mark.parametrize(
    "payload",
    [
        {"instances": [IMAGE] * 9},  # over the batch limit of 8
        {"instances": [IMAGE], "signature_name": ""},
        {"inputs": [IMAGE]},
        {"instances": [{"images": IMAGE}]},
        {"instances": [IMAGE[:27]]},
        {"instances": [IMAGE, IMAGE[:27]]},
        {"instances": IMAGE},
        {"instances": []},
        {"instances": [[["1"] * 28] * 28]},
        {"instances": [[[True] * 28] * 28]},
        {"instances": [[[None] * 28] * 28]},
        {"instances": [[[1e39] * 28] * 28]},
        {"instances": [[[2**53 + 2] * 28] * 28]},
        [IMAGE],
    ],
)
def test_other_tf_requests_are_not_plain(runtime: ModelRuntime, payload: Any) -> None:
    assert tfserving.decode_plain(orjson.dumps(payload), runtime, 8) is None
    assert tfserving.decode_plain(b"{not json", runtime, 8) is None


FLAT = [v for row in IMAGE for v in row]
TENSOR = {"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": FLAT}


def test_plain_v2_request_decodes_like_the_general_decoder(runtime: ModelRuntime) -> None:
    body = orjson.dumps({"id": "7", "inputs": [{**TENSOR, "shape": [2, 28, 28], "data": FLAT + FLAT}]})
    plain, general = v2.decode_plain(body, runtime, 8), v2.decode(body, None, runtime, 8)
    assert plain is not None
    assert (plain.header["id"], plain.outputs, plain.batch, plain.classify) == (
        general.header["id"],
        general.outputs,
        general.batch,
        general.classify,
    )
    np.testing.assert_array_equal(plain.feeds["images"], general.feeds["images"])
    assert v2.decode_plain(orjson.dumps({"inputs": [TENSOR]}), runtime, 8).header == {}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": [{**TENSOR, "datatype": "INT32"}]},
        {"inputs": [{**TENSOR, "name": "x"}]},
        {"inputs": [{**TENSOR, "shape": [-1, 28, 28]}]},
        {"inputs": [{**TENSOR, "shape": [1, 784]}]},
        {"inputs": [{**TENSOR, "shape": [2, 28, 28]}]},
        {"inputs": [{**TENSOR, "shape": [9, 28, 28], "data": FLAT * 9}]},  # over the batch limit
        {"inputs": [{**TENSOR, "shape": [1, 28, 28.0]}]},
        {"inputs": [{**TENSOR, "shape": [True, 28, 28]}]},
        {"inputs": [{**TENSOR, "data": IMAGE}]},  # nested data
        {"inputs": [{**TENSOR, "data": ["1"] * 784}]},
        {"inputs": [{**TENSOR, "parameters": {}}]},
        {"inputs": [TENSOR], "outputs": [{"name": "label"}]},
        {"inputs": [TENSOR], "parameters": {"binary_data_output": True}},
        {"inputs": [TENSOR], "id": 7},
        {"inputs": [TENSOR, TENSOR]},
        {"inputs": TENSOR},
        {"inputs": [{**TENSOR, "data": [1e39] * 784}]},
    ],
)
def test_other_v2_requests_are_not_plain(runtime: ModelRuntime, payload: Any) -> None:
    assert v2.decode_plain(orjson.dumps(payload), runtime, 8) is None

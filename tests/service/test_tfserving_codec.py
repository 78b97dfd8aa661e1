"""service.protocols.tfserving: predict bodies (row and columnar, b64 images) -> feeds -> TF Serving answers."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import orjson
import pytest
from PIL import Image

from service.errors import InvalidInputError
from service.images import preprocess_image
from service.protocols import tfserving
from service.runtime import ModelRuntime

IMAGE = (np.arange(784).reshape(28, 28) % 256).tolist()


def decode(payload: Any, model: ModelRuntime, max_batch: int = 64) -> tfserving.PredictRequest:
    return tfserving.decode(orjson.dumps(payload), model, max_batch, preprocess_image)


def png_b64(white_background: bool = True) -> str:
    image = Image.new("L", (40, 40), 255 if white_background else 0)
    for i in range(10, 30):
        image.putpixel((20, i), 0 if white_background else 255)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_row_format_answers_one_object_per_instance(runtime: ModelRuntime) -> None:
    parsed = decode({"instances": [IMAGE, IMAGE]}, runtime)
    assert parsed.row_format and parsed.batch == 2 and parsed.feeds["images"].shape == (2, 28, 28)
    results = runtime.run(parsed.feeds)
    answer = orjson.loads(tfserving.encode(parsed, results))
    assert len(answer["predictions"]) == 2
    first = answer["predictions"][0]
    assert set(first) == {"probabilities", "label"}
    assert first["label"] == int(np.argmax(first["probabilities"]))


def test_columnar_format_answers_outputs_keyed_by_name(runtime: ModelRuntime) -> None:
    parsed = decode({"inputs": {"images": [IMAGE]}}, runtime)
    assert not parsed.row_format
    answer = orjson.loads(tfserving.encode(parsed, runtime.run(parsed.feeds)))
    assert set(answer["outputs"]) == {"probabilities", "label"}
    assert len(answer["outputs"]["label"]) == 1 and len(answer["outputs"]["probabilities"][0]) == 10


def test_instances_may_be_objects_keyed_by_input_name(runtime: ModelRuntime) -> None:
    parsed = decode({"instances": [{"images": IMAGE}]}, runtime)
    assert parsed.feeds["images"].shape == (1, 28, 28)


def test_single_output_model_answers_plain_values(foreign_runtime: ModelRuntime) -> None:
    parsed = decode({"instances": [[0.0] * 784]}, foreign_runtime)
    answer = orjson.loads(tfserving.encode(parsed, foreign_runtime.run(parsed.feeds)))
    assert isinstance(answer["predictions"], list) and len(answer["predictions"][0]) == 10


def test_b64_images_are_preprocessed_to_the_model_input(runtime: ModelRuntime) -> None:
    parsed = decode({"instances": [{"b64": png_b64()}, {"b64": png_b64(False)}]}, runtime)
    x = parsed.feeds["images"]
    assert x.shape == (2, 28, 28) and x.dtype == np.float32
    assert x.max() > 200 and x[0, 0, 0] == 0  # white background inverted: ink is bright, border dark
    np.testing.assert_allclose(x[0], x[1])


def test_b64_images_also_fit_a_flat_foreign_input(foreign_runtime: ModelRuntime) -> None:
    parsed = decode({"instances": [{"b64": png_b64()}]}, foreign_runtime)
    assert parsed.feeds[foreign_runtime.inputs[0].name].shape == (1, 784)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"instances": [IMAGE], "inputs": [IMAGE]}, "got both"),
        ({"signature_name": "serving_default"}, "got neither"),
        ({"instances": []}, "non-empty list"),
        ({"instances": 5}, "non-empty list"),
        ({"instances": [[[1.0] * 28] * 27]}, "has shape [1, 27, 28], expected [batch, 28, 28]"),
        ({"instances": [IMAGE[:-1] + [IMAGE[0][:-1]]]}, "equal-length rows"),
        ({"instances": [[["x"] * 28] * 28]}, "contains strings"),
        ({"instances": [[["1"] * 28] * 28]}, "contains strings"),
        ({"instances": [[[None] * 28] * 28]}, "contains null"),
        ({"instances": [{"pixels": IMAGE}]}, "instance 0 has no input 'images'"),
        ({"instances": [{"b64": "!!!not base64"}]}, "'b64' is not valid base64"),
        ({"instances": [{"b64": base64.b64encode(b"not an image").decode()}]}, "instance 0:"),
        ({"inputs": {"pixels": [IMAGE]}}, "expected 'images' or a list"),
        ({"signature_name": "other", "instances": [IMAGE]}, "signature_name 'other' not found"),
    ],
)
def test_bad_requests_say_what_is_wrong(runtime: ModelRuntime, payload: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        decode(payload, runtime)
    assert message in info.value.message


def test_batch_limit(runtime: ModelRuntime) -> None:
    with pytest.raises(InvalidInputError, match=r"'instances' has a batch of 3, more than the limit of 2"):
        decode({"instances": [IMAGE] * 3}, runtime, max_batch=2)

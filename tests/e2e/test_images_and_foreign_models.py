"""Images (multipart PNG/JPEG, TF Serving ``{"b64"}``) and models exported by other tools."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.images import preprocess_image
from tests.e2e.helpers import digit_picture, images, reference, v2_json_input
from tests.e2e.models import DIGITS


def _expected_probabilities(
    repository: Path, name: str, version: int, picture: bytes, flat: bool = False
) -> np.ndarray:
    x = preprocess_image(picture, 28, 28)[None]
    x = x.reshape(1, 784) if flat else x
    out = reference(repository, name, version, x)
    if "probabilities" in out:
        return out["probabilities"][0]
    logits = out["logits"][0].astype(np.float64)
    e = np.exp(logits - logits.max())
    return e / e.sum()


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_upload_an_image_gets_label_name_and_top_k(client: httpx.Client, repository: Path, fmt: str, mime: str) -> None:
    picture = digit_picture(fmt)
    response = client.post("/v1/models/mnist/image", files={"file": (f"digit.{fmt.lower()}", picture, mime)})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = _expected_probabilities(repository, "mnist", 2, picture)
    assert body["model_name"] == "mnist" and body["model_version"] == "2"
    assert body["label"] == int(expected.argmax())
    assert body["label_name"] == DIGITS[body["label"]]
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-5, atol=1e-7)
    top = body["top_k"]
    assert len(top) == 5  # the default
    assert [t["label"] for t in top] == [int(i) for i in np.argsort(-expected, kind="stable")[:5]]
    assert all(t["label_name"] == DIGITS[t["label"]] for t in top)
    assert [t["probability"] for t in top] == sorted((t["probability"] for t in top), reverse=True)


def test_top_k_and_version_of_an_upload(client: httpx.Client, repository: Path) -> None:
    picture = digit_picture("PNG", white_background=False)
    response = client.post(
        "/v1/models/mnist/versions/1/image", params={"top_k": 3}, files={"file": ("d.png", picture, "image/png")}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "1" and len(body["top_k"]) == 3
    assert body["label"] == int(_expected_probabilities(repository, "mnist", 1, picture).argmax())


def test_white_and_black_backgrounds_give_the_same_picture(client: httpx.Client) -> None:
    # a white-background image is inverted to MNIST's white-on-black
    answers = [
        client.post(
            "/v1/models/mnist/image", files={"file": ("d.png", digit_picture("PNG", white_background=w), "image/png")}
        ).json()
        for w in (True, False)
    ]
    np.testing.assert_allclose(answers[0]["probabilities"], answers[1]["probabilities"], atol=1e-6)


def test_b64_instances_match_the_upload(client: httpx.Client) -> None:
    pictures = [digit_picture("PNG"), digit_picture("JPEG", white_background=False)]
    instances = [{"b64": base64.b64encode(p).decode()} for p in pictures]
    response = client.post("/v1/models/mnist:predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    for picture, prediction in zip(pictures, predictions, strict=True):
        upload = client.post("/v1/models/mnist/image", files={"file": ("d", picture, "image/png")}).json()
        assert prediction["label"] == upload["label"]
        np.testing.assert_allclose(prediction["probabilities"], upload["probabilities"], rtol=1e-5, atol=1e-7)


def test_image_to_a_flat_784_foreign_model_uses_class_indices(client: httpx.Client, repository: Path) -> None:
    picture = digit_picture("PNG")
    response = client.post("/v1/models/torch_mlp/image", files={"file": ("d.png", picture, "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = _expected_probabilities(repository, "torch_mlp", 1, picture, flat=True)
    assert body["label"] == int(expected.argmax())
    assert body["label_name"] == str(body["label"])
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-5, atol=1e-7)


# ----- foreign models -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "input_name", "output_name", "output_shape"),
    [("torch_mlp", "input", "logits", [-1, 10]), ("tf_mlp", "dense_input", "dense_1", [-1, 10])],
)
def test_foreign_model_metadata_uses_its_own_names_and_shapes(
    client: httpx.Client, name: str, input_name: str, output_name: str, output_shape: list[int]
) -> None:
    body = client.get(f"/v2/models/{name}").json()
    assert body["inputs"] == [{"name": input_name, "datatype": "FP32", "shape": [-1, 784]}]
    assert body["outputs"] == [{"name": output_name, "datatype": "FP32", "shape": output_shape}]
    assert body["versions"] == ["1"]


@pytest.mark.parametrize(
    ("name", "input_name", "output_name"), [("torch_mlp", "input", "logits"), ("tf_mlp", "dense_input", "dense_1")]
)
def test_foreign_model_infers_like_onnxruntime(
    client: httpx.Client, repository: Path, name: str, input_name: str, output_name: str
) -> None:
    x = images(4, seed=31, shape=(784,))
    expected = reference(repository, name, 1, x)[output_name]
    body = client.post(f"/v2/models/{name}/infer", json={"inputs": [v2_json_input(input_name, x)]}).json()
    (output,) = body["outputs"]
    assert output["name"] == output_name and output["shape"] == [4, 10] and output["datatype"] == "FP32"
    np.testing.assert_allclose(np.array(output["data"], np.float32).reshape(4, 10), expected, rtol=1e-5, atol=1e-6)
    predictions = client.post(f"/v1/models/{name}:predict", json={"instances": x.tolist()}).json()["predictions"]
    np.testing.assert_allclose(np.array(predictions, np.float32), expected, rtol=1e-5, atol=1e-6)


def test_foreign_models_get_class_index_labels_in_the_project_api(client: httpx.Client) -> None:
    response = client.get("/api/models")
    assert response.status_code == 200
    models = {m["name"]: m for m in response.json()["models"]}
    assert set(models) >= {"mnist", "torch_mlp", "tf_mlp"}
    assert models["torch_mlp"]["labels"] == [str(i) for i in range(10)]
    assert models["tf_mlp"]["labels"] == [str(i) for i in range(10)]
    assert models["mnist"]["labels"] == list(DIGITS)
    assert models["mnist"]["default_version"] in (2, "2")
    assert models["mnist"]["input_shape"] == [28, 28]
    versions = {str(v["version"]): v for v in models["mnist"]["versions"]}
    assert set(versions) == {"1", "2"} and all(v["state"] == "AVAILABLE" for v in versions.values())
    assert "model.onnx" in versions["1"]["files"]


def test_version_files_are_downloadable_and_nothing_else(client: httpx.Client, repository: Path) -> None:
    response = client.get("/api/models/mnist/versions/1/files/model.onnx")
    assert response.status_code == 200
    assert response.content == (repository / "mnist" / "1" / "model.onnx").read_bytes()
    for path in (
        "/api/models/mnist/versions/1/files/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/models/mnist/versions/1/files/missing.bin",
        "/api/models/..%2F..%2Fetc/versions/1/files/passwd",
        "/api/models/mnist/versions/7/files/model.onnx",
    ):
        assert client.get(path).status_code == 404, path

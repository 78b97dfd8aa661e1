"""The project API (/api/models, file downloads) and the image upload route."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from tests.e2e.models import TORCH_MLP, write_onnx


def digit_png(white_background: bool = True) -> bytes:
    image = Image.new("L", (56, 56), 255 if white_background else 0)
    for y in range(12, 44):
        for x in range(26, 30):
            image.putpixel((x, y), 0 if white_background else 255)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_api_models_lists_versions_labels_and_files(client: TestClient) -> None:
    (model,) = client.get("/api/models").json()["models"]
    assert model["name"] == "mnist" and model["default_version"] == 1 and model["input_shape"] == [28, 28]
    assert model["labels"][:2] == ["zero", "one"]
    assert model["versions"] == [{"version": 1, "state": "AVAILABLE", "error": "", "files": ["model.onnx"]}]


def test_file_download_serves_only_files_of_the_version(client: TestClient, repository: Path) -> None:
    r = client.get("/api/models/mnist/versions/1/files/model.onnx")
    assert r.status_code == 200 and r.content == (repository / "mnist" / "1" / "model.onnx").read_bytes()
    (repository / "secret.txt").write_text("no")
    (repository / "mnist" / "1" / "link.txt").symlink_to(repository / "secret.txt")
    (repository / "mnist" / "1" / ".hidden").write_text("no")
    files = client.get("/api/models").json()["models"][0]["versions"][0]["files"]
    assert files == ["model.onnx"]  # what can be downloaded, nothing else
    for path in (
        "/api/models/mnist/versions/1/files/..%2F..%2Fsecret.txt",
        "/api/models/mnist/versions/1/files/nothing.onnx",
        "/api/models/mnist/versions/1/files/link.txt",
        "/api/models/mnist/versions/1/files/.hidden",
        "/api/models/mnist/versions/9/files/model.onnx",
        "/api/models/..%2Fmnist/versions/1/files/model.onnx",
    ):
        r = client.get(path)
        assert r.status_code == 404 and "error" in r.json(), path


def test_image_upload_answers_label_name_and_top_k(client: TestClient) -> None:
    files = {"file": ("digit.png", digit_png(), "image/png")}
    r = client.post("/v1/models/mnist/image?top_k=3", files=files)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["model_name"] == "mnist" and answer["model_version"] == "1"
    assert len(answer["top_k"]) == 3 and len(answer["probabilities"]) == 10
    assert answer["top_k"][0]["label"] == answer["label"] and answer["label_name"] == answer["top_k"][0]["label_name"]
    assert abs(sum(answer["probabilities"]) - 1) < 1e-5
    # the same digit on black and on white is the same input after preprocessing
    black = client.post("/v1/models/mnist/versions/1/image", files={"file": ("d.png", digit_png(False), "image/png")})
    assert black.json()["probabilities"] == answer["probabilities"]
    raw = client.post("/v1/models/mnist/image", content=digit_png(), headers={"content-type": "image/png"})
    assert raw.json()["label"] == answer["label"]


def test_bad_uploads_are_400_or_415(client: TestClient) -> None:
    corrupt = client.post("/v1/models/mnist/image", files={"file": ("x.png", b"\x89PNG garbage", "image/png")})
    assert corrupt.status_code == 400 and "error" in corrupt.json()
    no_file = client.post("/v1/models/mnist/image", files={"other": ("x.png", digit_png(), "image/png")})
    assert no_file.status_code == 400 and "no 'file' field" in no_file.json()["error"]
    as_json = client.post("/v1/models/mnist/image", json={"b64": "x"})
    assert as_json.status_code == 415 and "multipart/form-data" in as_json.json()["error"]


def test_foreign_model_classifies_images_with_softmaxed_logits(client: TestClient, repository: Path) -> None:
    write_onnx(repository, "torch", 1, TORCH_MLP)
    from tests.service.conftest import wait_until

    wait_until(lambda: client.get("/v2/models/torch/ready").status_code == 200)
    answer = client.post("/v1/models/torch/image", files={"file": ("d.png", digit_png(), "image/png")}).json()
    assert answer["label_name"] == str(answer["label"])  # no labels in its metadata: class ids
    assert abs(sum(answer["probabilities"]) - 1) < 1e-5 and min(answer["probabilities"]) >= 0
    meta = client.get("/v2/models/torch").json()
    assert meta["inputs"][0]["shape"] == [-1, 784]

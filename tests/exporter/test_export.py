"""export(): versions, atomicity, no overwrite without force, and what lands on disk."""

import json
import os
import shutil
import stat

import numpy as np
import onnxruntime as ort
import pytest

from contracts import list_versions
from exporter.errors import ValidationFailedError, VersionExistsError
from exporter.export import export
from exporter.manifest import read_manifest, verify_files

VERSION_FILES = {
    "model.onnx",
    "model.int8.onnx",
    "model.ort",
    "model.required_operators.config",
    "manifest.json",
    "README.md",
}


@pytest.fixture(scope="module")
def tiny_repo(tiny_artifact, tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_repo")
    export(tiny_artifact, root, "tiny")
    return root


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_first_export_is_version_1_with_every_file_and_a_triton_config(tiny_repo):
    assert list_versions(tiny_repo / "tiny") == [1]
    assert {p.name for p in (tiny_repo / "tiny" / "1").iterdir()} == VERSION_FILES
    assert (tiny_repo / "tiny" / "config.pbtxt").read_text().count('name: "tiny"') == 1
    assert (tiny_repo / "tiny" / "labels.txt").read_text().splitlines() == [str(i) for i in range(10)]
    assert leftovers(tiny_repo / "tiny") == []


def test_manifest_lists_every_file_with_its_sha256_and_size(tiny_repo):
    folder = tiny_repo / "tiny" / "1"
    manifest = read_manifest(folder)
    assert set(manifest["files"]) == VERSION_FILES - {"manifest.json"}
    assert manifest["files"]["model.onnx"]["bytes"] == (folder / "model.onnx").stat().st_size
    assert verify_files(folder) == []
    copy = folder.parent / ".tampered"
    shutil.copytree(folder, copy)
    try:
        (copy / "model.int8.onnx").write_bytes(b"not a model")
        assert verify_files(copy) == ["model.int8.onnx"]
    finally:
        shutil.rmtree(copy)


def test_manifest_records_checks_parity_variants_and_both_quantizations(tiny_repo):
    manifest = read_manifest(tiny_repo / "tiny" / "1")
    assert manifest["model"] | {"created": None, "artifact": None} == {
        "name": "tiny",
        "version": 1,
        "created": None,
        "producer": manifest["model"]["producer"],
        "onnx_opset": 17,
        "onnx_ir_version": 8,
        "onnxruntime": "1.30.0",
        "artifact": None,
    }
    checks = manifest["checks"]
    assert checks["parity_trainer"]["images"] == 10000 and checks["parity_trainer"]["passed"]
    assert checks["parity_trainer"]["max_abs_diff"] <= 1e-5 and checks["parity_trainer"]["label_mismatches"] == 0
    assert checks["reference_evaluator"]["passed"]
    assert {c["method"] for c in manifest["quantization"]["candidates"]} == {"dynamic", "static"}
    assert manifest["quantization"]["chosen"] in {"dynamic", "static"}
    assert manifest["variants"]["model.ort"]["parity_onnx"]["max_abs_diff"] <= 1e-5
    int8 = manifest["variants"]["model.int8.onnx"]
    assert int8["size_ratio"] == pytest.approx(int8["bytes"] / manifest["variants"]["model.onnx"]["bytes"], abs=1e-4)
    assert int8["goals"]["size_met"] == (int8["size_ratio"] <= 0.30)  # a 16-unit model is mostly overhead


def test_variants_on_disk_load_in_onnxruntime_and_agree_with_the_manifest(tiny_repo):
    folder = tiny_repo / "tiny" / "1"
    manifest = read_manifest(folder)
    from trainer import load_mnist

    test = load_mnist("test")
    for file in ("model.onnx", "model.int8.onnx", "model.ort"):
        sess = ort.InferenceSession(str(folder / file), providers=["CPUExecutionProvider"])
        (labels,) = sess.run(["label"], {"images": test.x.astype(np.float32)})
        assert float(np.mean(labels == test.y)) == pytest.approx(manifest["variants"][file]["accuracy"], abs=1e-9)


def test_published_files_are_readable_by_other_users(tiny_repo):
    folder = tiny_repo / "tiny" / "1"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    for path in [*folder.iterdir(), tiny_repo / "tiny" / "config.pbtxt"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_next_export_takes_the_next_free_version(tiny_artifact, tmp_path):
    shutil.copytree(tiny_artifact, tmp_path / "a")
    (tmp_path / "models" / "m" / "4").mkdir(parents=True)
    assert export(tmp_path / "a", tmp_path / "models", "m") == tmp_path / "models" / "m" / "5"


def test_existing_version_is_never_overwritten_without_force(tiny_artifact, tmp_path):
    existing = tmp_path / "models" / "m" / "1"
    existing.mkdir(parents=True)
    (existing / "model.onnx").write_bytes(b"old")
    with pytest.raises(VersionExistsError, match=r"models/m/1 already exists; .*--force"):
        export(tiny_artifact, tmp_path / "models", "m", version=1)
    assert (existing / "model.onnx").read_bytes() == b"old"
    assert leftovers(existing.parent) == []


def test_force_replaces_the_version_atomically(tiny_artifact, tmp_path):
    existing = tmp_path / "models" / "m" / "1"
    existing.mkdir(parents=True)
    (existing / "stale.txt").write_text("from an older export")
    assert export(tiny_artifact, tmp_path / "models", "m", version=1, force=True) == existing
    assert {p.name for p in existing.iterdir()} == VERSION_FILES
    assert leftovers(existing.parent) == []


def test_parity_failure_leaves_no_version_and_no_temporary_folder(tiny_artifact, tmp_path, monkeypatch):
    from trainer import MLPClassifier

    real = MLPClassifier.predict_proba
    monkeypatch.setattr(MLPClassifier, "predict_proba", lambda self, x: real(self, x) + np.float32(1e-3))
    with pytest.raises(ValidationFailedError, match="parity with trainer.MLPClassifier.predict_proba failed"):
        export(tiny_artifact, tmp_path / "models", "m")
    assert os.listdir(tmp_path / "models" / "m") == []


def test_metrics_from_the_artifact_reach_manifest_and_card(tmp_path):
    from contracts import save_artifact
    from tests.exporter.models import random_spec, random_weights

    spec = random_spec().model_copy(update={"test_metrics": {"test_accuracy": 0.5}})
    save_artifact(tmp_path / "a", spec, random_weights(spec), {"confusion.png": b"\x89PNG fake image bytes"})
    folder = export(tmp_path / "a", tmp_path / "models", "m")
    assert read_manifest(folder)["training"]["metrics"] == {"test_accuracy": 0.5}
    card = (folder / "README.md").read_text()
    assert "test_accuracy 0.5" in card and "![confusion matrix](confusion.png)" in card
    assert (folder / "confusion.png").read_bytes() == b"\x89PNG fake image bytes"
    assert json.loads((folder / "manifest.json").read_text())["files"]["confusion.png"]["bytes"] == 21


def test_a_named_dataset_validates_and_calibrates_a_non_mnist_model(tmp_path):
    from contracts import save_artifact
    from tests.exporter.models import random_spec, random_weights

    spec = random_spec(input_shape=(4, 5), hidden=(8,), classes=3)
    save_artifact(tmp_path / "a", spec, random_weights(spec))
    rng = np.random.default_rng(0)
    x, x_test = rng.integers(0, 256, (300, 4, 5), dtype=np.uint8), rng.integers(0, 256, (120, 4, 5), dtype=np.uint8)
    y, y_test = rng.integers(0, 3, 300), rng.integers(0, 3, 120)
    np.savez(tmp_path / "data.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    folder = export(tmp_path / "a", tmp_path / "models", "small", dataset=tmp_path / "data.npz")
    manifest = read_manifest(folder)
    assert manifest["evaluation"] == {"dataset": f"{tmp_path / 'data.npz'} test split", "images": 120, "labelled": True}
    assert manifest["checks"]["parity_trainer"]["images"] == 120
    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    (labels,) = sess.run(["label"], {"images": x_test.astype(np.float32)})
    assert manifest["variants"]["model.onnx"]["accuracy"] == float(np.mean(labels == y_test))


def test_without_a_dataset_a_non_mnist_model_is_checked_on_random_images(tmp_path):
    from contracts import save_artifact
    from tests.exporter.models import random_spec, random_weights

    spec = random_spec(input_shape=(3, 8, 8), hidden=(8,), classes=4)
    save_artifact(tmp_path / "a", spec, random_weights(spec))
    manifest = read_manifest(export(tmp_path / "a", tmp_path / "models", "rgb"))
    assert manifest["evaluation"]["labelled"] is False and manifest["evaluation"]["images"] == 1000
    assert manifest["checks"]["parity_trainer"]["passed"]
    assert manifest["variants"]["model.onnx"]["accuracy"] is None
    assert manifest["quantization"]["chosen"] == "dynamic"


def test_dataset_of_the_wrong_shape_is_refused_before_anything_is_written(tiny_artifact, tmp_path):
    from exporter.errors import ArtifactInvalidError

    ids = np.arange(10) % 2
    np.savez(
        tmp_path / "data.npz",
        x=np.zeros((10, 4, 5), np.uint8),
        y=ids,
        x_test=np.zeros((10, 4, 5), np.uint8),
        y_test=ids,
    )
    with pytest.raises(ArtifactInvalidError, match=r"images have shape \[4, 5\], the model expects \[28, 28\]"):
        export(tiny_artifact, tmp_path / "models", "m", dataset=tmp_path / "data.npz")
    assert not (tmp_path / "models").exists()

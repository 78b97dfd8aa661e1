"""The model card: its numbers are the manifest's, and its code snippets actually run."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest

from exporter.manifest import read_manifest


@pytest.fixture(scope="module")
def version(exported_repository):
    return exported_repository / "mnist" / "1"


@pytest.fixture(scope="module")
def card(version):
    return (version / "README.md").read_text()


def code_blocks(card: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", card, flags=re.S)


def test_card_has_every_section(card):
    for heading in (
        "# mnist, version 1",
        "## Intended use",
        "## Input and output",
        "## Metrics",
        "## Confusion matrix",
        "## Run it in Python",
        "## Run it on Android and iOS (onnxruntime mobile)",
        "## Run it in a browser (onnxruntime-web)",
    ):
        assert heading in card


def test_metrics_on_the_card_are_the_measured_ones(card, version):
    manifest = read_manifest(version)
    for file in ("model.onnx", "model.int8.onnx", "model.ort"):
        v = manifest["variants"][file]
        assert f"| `{file}` | {100 * v['accuracy']:.2f}% | {v['bytes']:,} |" in card
    assert f"int8: {manifest['quantization']['chosen']} quantization" in card
    assert f"test_accuracy {manifest['training']['metrics']['test_accuracy']:.4g}" in card


def test_confusion_matrix_image_is_copied_and_shown(card, version, trained_artifact):
    assert "![confusion matrix](confusion.png)" in card
    assert (version / "confusion.png").read_bytes() == (trained_artifact / "confusion.png").read_bytes()


def test_example_request_commands_write_valid_bodies_of_the_right_shape(card, tmp_path):
    (bash,) = code_blocks(card, "bash")
    makers = [line for line in bash.splitlines() if line.startswith("python -c")]
    assert len(makers) == 2
    for line in makers:
        subprocess.run(line.replace("python ", f"{sys.executable} ", 1), shell=True, check=True, cwd=tmp_path)
    predict = json.loads((tmp_path / "predict.json").read_text())
    assert np.asarray(predict["instances"]).shape == (1, 28, 28)
    infer = json.loads((tmp_path / "infer.json").read_text())
    (tensor,) = infer["inputs"]
    assert tensor["name"] == "images" and tensor["datatype"] == "FP32" and tensor["shape"] == [1, 28, 28]
    assert len(tensor["data"]) == 784
    assert "/v1/models/mnist/versions/1:predict" in bash and "/v2/models/mnist/versions/1/infer" in bash


def test_python_snippet_runs_in_the_version_folder(card, version):
    (snippet,) = code_blocks(card, "python")
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(version)
    try:
        exec(snippet, namespace)  # the card's own code, unchanged
    finally:
        os.chdir(cwd)
    assert namespace["probabilities"].shape == (1, 10) and namespace["label"].shape == (1,)


def test_mobile_section_names_the_ort_file_and_its_operator_config(card, version):
    config = (version / "model.required_operators.config").read_text()
    assert "--include_ops_by_config model.required_operators.config" in card
    for line in config.splitlines():
        if not line.startswith("#"):
            assert line in card
    assert onnx.load(version / "model.onnx").graph.input[0].name == "images"

"""The whole promise through the console scripts, as `make run` does it: train on MNIST, export, serve,
and get the same labels over both REST protocols as the exported model gives in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.e2e.live import ROOT, live_server
from trainer.data import load_mnist


def run_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args[0]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def pipeline_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("pipeline")
    artifact, repository = work / "artifact", work / "models"
    small = ("--hidden", "64", "--epochs", "2", "--limit", "6000", "--quiet")
    trained = run_cli("trainer", *small, "--out", str(artifact))
    assert str(artifact) in trained and "accuracy" in trained
    exported = run_cli("exporter", str(artifact), "--repository", str(repository), "--name", "mnist")
    assert "mnist version 1" in exported
    return repository


def test_trained_exported_model_is_served_with_the_labels_it_gives_in_process(pipeline_repository: Path) -> None:
    test = load_mnist("test")
    x, y = test.x[:64].astype(np.float32), test.y[:64]
    session = ort.InferenceSession(str(pipeline_repository / "mnist" / "1" / "model.onnx"))
    expected = session.run(["label"], {"images": x})[0]
    assert (expected == y).mean() >= 0.85, "the small model should already read most digits"

    with live_server(pipeline_repository) as server, server.client() as client:
        tf = client.post("/v1/models/mnist:predict", json={"instances": x.tolist()})
        assert tf.status_code == 200, tf.text
        assert [p["label"] for p in tf.json()["predictions"]] == expected.tolist()

        tensor = {"name": "images", "shape": [64, 28, 28], "datatype": "FP32", "data": x.ravel().tolist()}
        v2_body = {"inputs": [tensor]}
        v2 = client.post("/v2/models/mnist/versions/1/infer", content=json.dumps(v2_body))
        assert v2.status_code == 200, v2.text
        outputs = {o["name"]: o for o in v2.json()["outputs"]}
        assert outputs["label"]["data"] == expected.tolist()
        assert outputs["probabilities"]["shape"] == [64, 10]

        meta = client.get("/api/models").json()["models"][0]
        assert meta["name"] == "mnist" and meta["labels"] == [str(i) for i in range(10)]

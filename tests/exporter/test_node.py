"""Cross-runtime proof of "deploy anywhere": the exported files give Python's answers in JavaScript.

model.onnx and model.ort must match Python's model.onnx (labels equal, probabilities within 1e-5);
model.int8.onnx, the smallest browser download, must match Python's run of the same int8 file.

onnxruntime-node (native) and onnxruntime-web (WebAssembly, what browsers run) come pinned from
package.json; ``tests/exporter/js/run_model.cjs`` runs a model in either and prints JSON.
"""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).parent / "js" / "run_model.cjs"
BATCH = 256

pytestmark = pytest.mark.node


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs npm; .ci/run does this)")
    for package in ("onnxruntime-node", "onnxruntime-web"):
        if not (ROOT / "node_modules" / package / "package.json").is_file():
            pytest.skip(f"node_modules/{package} is missing: run `npm ci` in {ROOT}")
    return node


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from trainer import load_mnist

    x = load_mnist("test").x[:BATCH].astype("<f4")
    path = tmp_path_factory.mktemp("js") / "images.f32"
    x.tofile(path)
    return x, path


def python_outputs(model: Path, x: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return sess.run(["probabilities", "label"], {"images": x})


def run_js(node: str, runtime: str, model: Path, images_path: Path) -> dict:
    result = subprocess.run(
        [node, str(RUNNER), runtime, str(model), str(images_path), f"{BATCH},28,28"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("runtime", ["node", "web"])
@pytest.mark.parametrize("file", ["model.onnx", "model.ort", "model.int8.onnx"])
def test_javascript_runtimes_match_python(exported_repository, images, runtime, file):
    node = node_or_skip()
    model = exported_repository / "mnist" / "1" / file
    out = run_js(node, runtime, model, images[1])
    assert out["runtime"] == f"onnxruntime-{runtime}" and out["version"] == "1.30.0"
    assert out["inputs"] == ["images"] and out["outputs"] == ["probabilities", "label"]
    assert out["label_type"] == "int64"
    # the float files are compared with Python's model.onnx, the int8 file with Python's int8 run
    probabilities, labels = python_outputs(
        model if file == "model.int8.onnx" else model.with_name("model.onnx"), images[0]
    )
    np.testing.assert_array_equal(np.array(out["label"]), labels)
    np.testing.assert_allclose(np.array(out["probabilities"], dtype=np.float32), probabilities, rtol=0, atol=1e-5)

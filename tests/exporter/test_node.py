"""Cross-runtime proof of "deploy anywhere": the exported files give Python's answers in JavaScript.

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


@pytest.fixture(scope="module")
def python_outputs(exported_repository, images):
    sess = ort.InferenceSession(
        str(exported_repository / "mnist" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    return sess.run(["probabilities", "label"], {"images": images[0]})


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
@pytest.mark.parametrize("file", ["model.onnx", "model.ort"])
def test_javascript_runtimes_match_python(exported_repository, images, python_outputs, runtime, file):
    node = node_or_skip()
    out = run_js(node, runtime, exported_repository / "mnist" / "1" / file, images[1])
    assert out["runtime"] == f"onnxruntime-{runtime}" and out["version"] == "1.30.0"
    assert out["inputs"] == ["images"] and out["outputs"] == ["probabilities", "label"]
    assert out["label_type"] == "int64"
    probabilities, labels = python_outputs
    np.testing.assert_array_equal(np.array(out["label"]), labels)
    np.testing.assert_allclose(np.array(out["probabilities"], dtype=np.float32), probabilities, rtol=0, atol=1e-5)

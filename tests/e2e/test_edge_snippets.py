"""docs/edge.md's snippets run as written: Node, the browser, Python onnxruntime, the ONNX reference evaluator.

Each fenced block after a ``<!-- snippet: NAME -->`` marker is extracted, written to a file in a
folder laid out as the snippets expect (``models/mnist/1/`` from a real export, ``digit.pgm``, a
28x28 MNIST-style image, and ``digit.png``, the same digit photographed dark on light paper), and
run. Every runtime must print the digit's true label, with the probability onnxruntime gives.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from service.images import preprocess_image
from tests.e2e.browser import browser_fixture  # noqa: F401 - the `browser` fixture
from tests.e2e.live import LiveServer, live_server
from tests.e2e.node import NODE_MODULES, PACKAGES, require_node

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ROOT = Path(__file__).resolve().parents[2]
EDGE_DOC = ROOT / "docs" / "edge.md"
SNIPPET = re.compile(r"<!-- snippet: (?P<name>[\w-]+) -->\s*```(?P<lang>\w+)\n(?P<code>.*?)```", re.DOTALL)
EXPECTED_SNIPPETS = {"node", "browser", "python-onnxruntime", "python-reference"}
MNIST_TEST_INDEX = 0  # a clearly written 7
PRINTED = re.compile(r"label (?P<label>\S+) \(p=(?P<p>[0-9.]+)\)")


def snippets() -> dict[str, tuple[str, str]]:
    """{name: (language, code)} of every marked block in docs/edge.md."""
    found = {m["name"]: (m["lang"], m["code"]) for m in SNIPPET.finditer(EDGE_DOC.read_text(encoding="utf-8"))}
    assert found, f"no <!-- snippet: NAME --> blocks in {EDGE_DOC}"
    return found


def test_every_runnable_snippet_is_marked_and_tested() -> None:
    assert set(snippets()) == EXPECTED_SNIPPETS


@pytest.fixture(scope="module")
def workdir(exported_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder a user runs the snippets in: models/mnist/1 (a real export) and the digit images."""
    from trainer import load_mnist

    folder = tmp_path_factory.mktemp("edge")
    shutil.copytree(exported_repository, folder / "models")
    test = load_mnist("test")
    digit = Image.fromarray(test.x[MNIST_TEST_INDEX])
    digit.save(folder / "digit.pgm")  # binary PGM (P5): header + 784 bytes
    photo = Image.fromarray(255 - test.x[MNIST_TEST_INDEX]).resize((140, 140), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    photo.convert("RGB").save(buffer, format="PNG")
    (folder / "digit.png").write_bytes(buffer.getvalue())
    (folder / "expected.txt").write_text(test.labels[int(test.y[MNIST_TEST_INDEX])])
    return folder


def _reference(workdir: Path, filename: str, pixels: np.ndarray) -> tuple[int, float]:
    """(label, its probability) from onnxruntime in this process, the numbers every snippet must print."""
    session = ort.InferenceSession(str(workdir / "models/mnist/1" / filename), providers=["CPUExecutionProvider"])
    probabilities, label = session.run(["probabilities", "label"], {"images": pixels[np.newaxis]})
    return int(label[0]), float(probabilities[0, label[0]])


def _mnist_pixels(workdir: Path) -> np.ndarray:
    return np.asarray(Image.open(workdir / "digit.pgm"), dtype=np.float32)


def _check_printed(output: str, workdir: Path, expected_p: float) -> None:
    match = PRINTED.search(output)
    assert match, f"snippet printed no 'label X (p=...)' line:\n{output}"
    assert match["label"] == (workdir / "expected.txt").read_text()
    assert float(match["p"]) == pytest.approx(expected_p, abs=1.5e-3)


def _run(cmd: list[str], cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("filename", ["model.ort", "model.onnx"])
def test_python_onnxruntime_snippet(workdir: Path, filename: str) -> None:
    lang, code = snippets()["python-onnxruntime"]
    assert lang == "python" and "model.ort" in code
    script = workdir / "predict_ort.py"
    script.write_text(code.replace("model.ort", filename))
    pixels = preprocess_image((workdir / "digit.png").read_bytes(), 28, 28)
    _check_printed(_run([sys.executable, str(script)], workdir), workdir, _reference(workdir, filename, pixels)[1])


def test_python_reference_evaluator_snippet(workdir: Path) -> None:
    lang, code = snippets()["python-reference"]
    assert lang == "python"
    script = workdir / "predict_reference.py"
    script.write_text(code)
    expected = _reference(workdir, "model.onnx", _mnist_pixels(workdir))[1]
    _check_printed(_run([sys.executable, str(script)], workdir), workdir, expected)


def _link_node_modules(workdir: Path) -> None:
    # Node resolves packages from node_modules next to (or above) the script, as in a user's project.
    link = workdir / "node_modules"
    if not link.exists():
        link.symlink_to(NODE_MODULES, target_is_directory=True)


@pytest.mark.node
@pytest.mark.parametrize("filename", ["model.onnx", "model.ort"])
def test_node_snippet_with_onnxruntime_node(workdir: Path, filename: str) -> None:
    node = require_node(*PACKAGES)
    _link_node_modules(workdir)
    lang, code = snippets()["node"]
    assert lang == "javascript" and "model.onnx" in code
    script = workdir / f"predict-{filename}.mjs"
    script.write_text(code.replace("model.onnx", filename))
    expected = _reference(workdir, filename, _mnist_pixels(workdir))[1]
    _check_printed(_run([node, str(script)], workdir), workdir, expected)


NODE_WEB_CHECK = """
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-web";
ort.env.wasm.numThreads = 1;
const pgm = readFileSync("digit.pgm");
const pixels = Float32Array.from(pgm.subarray(pgm.length - 784));
for (const file of ["model.onnx", "model.ort", "model.int8.onnx"]) {
  const session = await ort.InferenceSession.create(readFileSync(`models/mnist/1/${file}`));
  const { probabilities, label } = await session.run({ images: new ort.Tensor("float32", pixels, [1, 28, 28]) });
  const index = Number(label.data[0]);
  console.log(`${file} label ${index} (p=${probabilities.data[index].toFixed(4)})`);
}
"""


@pytest.mark.node
def test_onnxruntime_web_loads_every_exported_file(workdir: Path) -> None:
    """docs/edge.md says the browser runtime takes model.onnx, model.ort and model.int8.onnx: check all three."""
    node = require_node(*PACKAGES)
    _link_node_modules(workdir)
    script = workdir / "web_check.mjs"
    script.write_text(NODE_WEB_CHECK)
    lines = _run([node, str(script)], workdir).splitlines()
    pixels = _mnist_pixels(workdir)
    for filename in ("model.onnx", "model.ort", "model.int8.onnx"):
        line = next(x for x in lines if x.startswith(filename + " "))
        label, p = _reference(workdir, filename, pixels)
        assert f"label {label} " in line, line
        assert float(PRINTED.search(line)["p"]) == pytest.approx(p, abs=2e-4)  # type: ignore[index]


@pytest.fixture(scope="module")
def snippet_server(exported_repository: Path) -> Iterator[LiveServer]:
    with live_server(exported_repository, "--log-format", "text") as live:
        yield live


@pytest.mark.slow
@pytest.mark.browser
def test_browser_snippet_in_chromium(browser: Browser, snippet_server: LiveServer, workdir: Path) -> None:
    """The page in docs/edge.md, served from the service's origin, runs the model with onnxruntime-web."""
    lang, code = snippets()["browser"]
    assert lang == "html"
    context = browser.new_context()
    try:
        page = context.new_page()
        url = snippet_server.url + "/edge-snippet.html"
        # Served as if it were a page of the service's origin, so its /ui/ort/ and /api/ paths resolve there.
        page.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=code))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_function("() => document.getElementById('result').textContent.startsWith('label')")
        output = page.inner_text("#result")
    finally:
        context.close()
    assert errors == []
    label, p = _reference(workdir, "model.onnx", np.zeros((28, 28), dtype=np.float32))
    match = PRINTED.search(output)
    assert match and match["label"] == str(label), output
    assert float(match["p"]) == pytest.approx(p, abs=1.5e-3)

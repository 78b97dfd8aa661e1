"""The web page's preprocessing (service/static/preprocess.js) gives the numbers service/images.py gives.

The page's in-browser prediction can only agree with the service's if both feed the model the
same 28x28 input, so the JavaScript runs in Node on the same pixels and is compared value by value.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from service.images import normalise_digit
from tests.e2e.node import require_node

pytestmark = pytest.mark.node

RunJs = Callable[[list[dict[str, object]]], list[np.ndarray]]

STATIC = Path(__file__).resolve().parents[2] / "service" / "static"

RUNNER = """
import { readFileSync } from "node:fs";
import { grayscale, normaliseDigit } from "./preprocess.mjs";
const cases = JSON.parse(readFileSync(0, "utf8"));
const results = cases.map((c) =>
  c.rgba
    ? Array.from(grayscale(Uint8ClampedArray.from(c.rgba), c.w, c.h))
    : Array.from(normaliseDigit(Float32Array.from(c.gray), c.w, c.h, c.height, c.width)),
);
process.stdout.write(JSON.stringify(results));
"""


@pytest.fixture(scope="module")
def run_js(tmp_path_factory: pytest.TempPathFactory) -> RunJs:
    node = require_node()
    folder = tmp_path_factory.mktemp("preprocess-js")
    # .mjs: Node treats the module as ESM without a package.json "type" (the browser does not care).
    shutil.copy(STATIC / "preprocess.js", folder / "preprocess.mjs")
    (folder / "run.mjs").write_text(RUNNER)

    def run(cases: list[dict[str, object]]) -> list[np.ndarray]:
        result = subprocess.run(
            [node, "run.mjs"], cwd=folder, input=json.dumps(cases), capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        return [np.array(r, dtype=np.float32) for r in json.loads(result.stdout)]

    return run


def _drawing(size: tuple[int, int], ink: int, paper: int, blur: float = 0.0) -> np.ndarray:
    image = Image.new("L", size, paper)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.line([(0.2 * w, 0.2 * h), (0.75 * w, 0.2 * h), (0.45 * w, 0.85 * h)], fill=ink, width=max(2, w // 14))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(image, dtype=np.float32)


def _cases() -> dict[str, tuple[np.ndarray, int, int]]:
    rng = np.random.default_rng(0)
    noisy_paper = np.clip(_drawing((300, 240), ink=60, paper=200, blur=1.5) + rng.normal(0, 6, (240, 300)), 0, 255)
    return {
        "canvas 280x280 black on white": (_drawing((280, 280), ink=0, paper=255), 28, 28),
        "white on black, off-centre": (np.roll(_drawing((200, 160), ink=255, paper=0), (30, -20), (0, 1)), 28, 28),
        "grey noisy paper photo": (np.round(noisy_paper), 28, 28),
        "non-square target": (_drawing((120, 90), ink=0, paper=255), 40, 20),
        "upscaling a tiny image": (_drawing((12, 10), ink=0, paper=255), 28, 28),
        "blank": (np.full((50, 50), 255.0, dtype=np.float32), 28, 28),
    }


def test_normalisation_matches_python_value_for_value(run_js: RunJs) -> None:
    cases = _cases()
    inputs = [
        {"gray": g.ravel().tolist(), "w": g.shape[1], "h": g.shape[0], "height": h, "width": w}
        for g, h, w in cases.values()
    ]
    for (name, (gray, height, width)), js in zip(cases.items(), run_js(inputs), strict=True):
        expected = normalise_digit(gray, height, width)
        assert name == "blank" or expected.max() > 200, name  # a real digit, not an empty frame
        np.testing.assert_allclose(js.reshape(height, width), expected, atol=2e-3, err_msg=name)


def test_grayscale_matches_pillow_exactly(run_js: RunJs) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((16, 16, 1), 255, np.uint8)], axis=2)
    (js,) = run_js([{"rgba": rgba.ravel().tolist(), "w": 16, "h": 16}])
    pillow = np.asarray(Image.fromarray(rgb, "RGB").convert("L"), dtype=np.float32)
    np.testing.assert_array_equal(js.reshape(16, 16), pillow)

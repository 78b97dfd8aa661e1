"""The web page in a real browser: draw a digit, both panels (REST and onnxruntime-web) agree on it.

Debian's chromium driven by Playwright, headless, against ``python -m service`` on a free port
serving a model really trained on MNIST. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import base64
import io
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from service.images import preprocess_image
from tests.e2e.browser import browser_fixture, require_browser  # noqa: F401 - the `browser` fixture
from tests.e2e.live import LiveServer, live_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "browser"
PANEL_TIMEOUT_MS = 30_000

# Strokes per digit, in fractions of the canvas; each stroke is a polyline drawn with the mouse.
Stroke = list[tuple[float, float]]


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28) -> Stroke:
    return [(cx + rx * math.sin(2 * math.pi * i / n), cy - ry * math.cos(2 * math.pi * i / n)) for i in range(n + 1)]


DIGITS: dict[int, list[Stroke]] = {
    1: [[(0.5, 0.15), (0.5, 0.85)]],
    7: [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]],
    0: [_ellipse(0.5, 0.5, 0.2, 0.32)],
}


@pytest.fixture(scope="module")
def web_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model really trained on MNIST (784-128-10, 20k images, 3 epochs: ~95 %), exported as users do."""
    require_browser()
    from exporter.export import export
    from trainer import MLPClassifier, load_mnist

    train = load_mnist("train").subset(20_000)
    model = MLPClassifier(hidden=(128,), epochs=3, batch_size=64, seed=0)
    model.fit(train.x, train.y, labels=train.labels)
    artifact = tmp_path_factory.mktemp("web-artifact") / "artifact"
    model.save(artifact)
    repository = tmp_path_factory.mktemp("web-models") / "models"
    export(artifact, repository, "mnist")
    return repository


@pytest.fixture(scope="module")
def web_server(web_repository: Path) -> Iterator[LiveServer]:
    with live_server(web_repository, "--log-format", "text") as live:
        yield live


@dataclass
class Tab:
    """A fresh page plus what it did: page errors and every URL it requested (to prove it stays offline)."""

    page: Page
    errors: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    recorded = Tab(context.new_page())
    recorded.page.on("pageerror", lambda e: recorded.errors.append(str(e)))
    recorded.page.on("request", lambda r: recorded.requested.append(r.url))
    yield recorded
    context.close()


def _open(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("[data-testid=version-select]:not([disabled])", timeout=PANEL_TIMEOUT_MS)


def _draw(page: Page, strokes: list[Stroke]) -> None:
    box = page.get_by_test_id("draw-canvas").bounding_box()
    assert box is not None, "the canvas is not visible"
    mouse = page.mouse
    for stroke in strokes:
        x, y = stroke[0]
        mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        mouse.down()
        for x, y in stroke[1:]:
            mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=6)
        mouse.up()


def _wait_panels(page: Page) -> dict[str, dict[str, str]]:
    """Wait until both panels show a result (or an error) for the latest drawing; return what they show."""
    page.wait_for_function(
        """() => {
            const seq = String(window.deployAnywhere.state.seq);
            return ['rest', 'browser'].every((name) => {
                const panel = document.querySelector(`[data-testid=${name}-panel]`);
                return panel.dataset.seq === seq && ['done', 'error'].includes(panel.dataset.state);
            });
        }""",
        timeout=PANEL_TIMEOUT_MS,
    )
    shown = {}
    for name in ("rest", "browser"):
        shown[name] = {
            "state": page.get_by_test_id(f"{name}-panel").get_attribute("data-state") or "",
            "label": page.get_by_test_id(f"{name}-label").inner_text(),
            "latency": page.get_by_test_id(f"{name}-latency").inner_text(),
            "status": page.get_by_test_id(f"{name}-status").inner_text(),
            "topk": page.get_by_test_id(f"{name}-topk").inner_text(),
        }
    return shown


def _screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _browser_input_matches_service_preprocessing(page: Page) -> None:
    """The 28x28 the browser fed onnxruntime-web equals service/images.py on the PNG the page posted."""
    data_url = page.evaluate("() => document.querySelector('[data-testid=draw-canvas]').toDataURL('image/png')")
    png = base64.b64decode(data_url.split(",", 1)[1])
    expected = preprocess_image(png, 28, 28)
    seen = np.array(page.evaluate("() => Array.from(window.deployAnywhere.state.lastInput)"), dtype=np.float32)
    np.testing.assert_allclose(seen.reshape(28, 28), expected, atol=0.05)


@pytest.mark.parametrize("digit", sorted(DIGITS))
def test_drawn_digit_gets_the_same_label_from_the_service_and_the_browser(
    tab: Tab, web_server: LiveServer, digit: int
) -> None:
    page = tab.page
    _open(page, web_server)
    _draw(page, DIGITS[digit])
    shown = _wait_panels(page)
    shot = _screenshot(page, f"drawn-{digit}")
    assert shown["rest"]["state"] == "done", shown
    assert shown["browser"]["state"] == "done", shown
    assert shown["rest"]["label"] == shown["browser"]["label"] == str(digit), (shown, shot)
    assert shown["rest"]["latency"].endswith(" ms") and shown["browser"]["latency"].endswith(" ms")
    assert str(digit) in shown["rest"]["topk"] and str(digit) in shown["browser"]["topk"]
    assert page.get_by_test_id("agreement").get_attribute("data-agree") == "true"
    _browser_input_matches_service_preprocessing(page)
    assert tab.errors == []
    # Offline by construction: every request (onnxruntime-web and its .wasm included) went to the service.
    assert tab.requested and all(url.startswith(web_server.url) for url in tab.requested), tab.requested
    assert any("/ui/ort/" in url and url.endswith(".wasm") for url in tab.requested)


def test_clear_then_redraw_updates_both_panels(tab: Tab, web_server: LiveServer) -> None:
    page = tab.page
    _open(page, web_server)
    _draw(page, DIGITS[7])
    assert _wait_panels(page)["browser"]["label"] == "7"
    page.get_by_test_id("clear-button").click()
    assert page.get_by_test_id("rest-label").inner_text() == "–"
    assert page.get_by_test_id("browser-panel").get_attribute("data-state") == "idle"
    _draw(page, DIGITS[1])
    shown = _wait_panels(page)
    assert shown["rest"]["label"] == shown["browser"]["label"] == "1", shown


def test_touch_drawing_on_a_phone_sized_screen(browser: Browser, web_server: LiveServer) -> None:
    """A finger on a phone: real touch events (CDP), which Chromium turns into pointer events."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    try:
        page = context.new_page()
        _open(page, web_server)
        box = page.get_by_test_id("draw-canvas").bounding_box()
        assert box is not None and box["width"] <= 390, box  # the layout fits the phone's width
        cdp = context.new_cdp_session(page)

        def touch(kind: str, x: float, y: float) -> None:
            points = (
                [] if kind == "touchEnd" else [{"x": box["x"] + x * box["width"], "y": box["y"] + y * box["height"]}]
            )
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        touch("touchStart", 0.5, 0.15)
        for i in range(1, 15):
            touch("touchMove", 0.5, 0.15 + 0.05 * i)
        touch("touchEnd", 0.5, 0.85)
        shown = _wait_panels(page)
        _screenshot(page, "phone-touch")
        assert shown["rest"]["label"] == shown["browser"]["label"] == "1", shown
        # Drawing must not have scrolled the page (touch-action: none on the canvas).
        assert page.evaluate("() => window.scrollY") == 0
    finally:
        context.close()


def _mnist_photo(tmp_path: Path) -> tuple[Path, int]:
    """An MNIST test digit as a 'photo': dark ink on light paper, 4x size, JPEG; and its true label."""
    from trainer import load_mnist

    test = load_mnist("test")
    index = 0  # a 7, clearly written
    paper = Image.fromarray(255 - test.x[index]).resize((112, 112), Image.Resampling.BICUBIC).convert("RGB")
    path = tmp_path / "digit.jpg"
    buffer = io.BytesIO()
    paper.save(buffer, format="JPEG", quality=92)
    path.write_bytes(buffer.getvalue())
    return path, int(test.y[index])


def test_chosen_image_file_is_classified_on_both_sides(tab: Tab, web_server: LiveServer, tmp_path: Path) -> None:
    page = tab.page
    photo, label = _mnist_photo(tmp_path)
    _open(page, web_server)
    page.get_by_test_id("file-input").set_input_files(str(photo))
    shown = _wait_panels(page)
    _screenshot(page, "chosen-image")
    assert shown["rest"]["label"] == shown["browser"]["label"] == str(label), shown
    _browser_input_matches_service_preprocessing(page)


def test_dropped_image_file_is_classified_on_both_sides(tab: Tab, web_server: LiveServer, tmp_path: Path) -> None:
    """Drag and drop: a real DataTransfer carrying the file, dropped on the drawing area."""
    photo, label = _mnist_photo(tmp_path)
    page = tab.page
    _open(page, web_server)
    data = base64.b64encode(photo.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "digit.jpg", { type: "image/jpeg" }));
            return transfer;
        }""",
        data,
    )
    zone = page.get_by_test_id("drop-zone")
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    assert "dragging" in (zone.get_attribute("class") or "")
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    shown = _wait_panels(page)
    assert shown["rest"]["label"] == shown["browser"]["label"] == str(label), shown
    assert "dragging" not in (zone.get_attribute("class") or "")


def test_page_works_without_the_browser_runtime(
    tab: Tab, web_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No onnxruntime-web on the server: the REST half still answers; the browser half says why not."""
    page = tab.page
    missing = tmp_path_factory.mktemp("no-ort") / "dist"
    with live_server(web_repository, "--log-format", "text", env={"SERVICE_ORT_WEB_DIR": str(missing)}) as server:
        _open(page, server)
        page.wait_for_selector("[data-testid=browser-panel][data-runtime=unavailable]", timeout=PANEL_TIMEOUT_MS)
        _draw(page, DIGITS[1])
        shown = _wait_panels(page)
        _screenshot(page, "no-browser-runtime")
        assert "onnxruntime-web not found" in server.log()
    assert shown["rest"]["state"] == "done" and shown["rest"]["label"] == "1", shown
    assert shown["browser"]["state"] == "error", shown
    assert "unavailable" in shown["browser"]["status"], shown


def test_api_key_protected_service_asks_for_the_key(tab: Tab, web_repository: Path) -> None:
    """With --api-key the model routes need a bearer token; the page asks for it and then works."""
    page = tab.page
    with live_server(web_repository, "--log-format", "text", api_key="s3cret") as server:
        page.goto(server.url + "/")
        key = page.get_by_test_id("api-key-input")
        key.wait_for(state="visible", timeout=PANEL_TIMEOUT_MS)
        assert "API key" in page.get_by_test_id("service-status").inner_text()
        key.fill("s3cret")
        key.press("Enter")
        page.wait_for_selector("[data-testid=version-select]:not([disabled])", timeout=PANEL_TIMEOUT_MS)
        _draw(page, DIGITS[1])
        shown = _wait_panels(page)
    assert shown["rest"]["label"] == shown["browser"]["label"] == "1", shown
    assert page.get_by_test_id("service-status").is_hidden()


def _topk(page: Page, panel: str) -> list[tuple[str, float]]:
    """(label, percent) of each top-k row a panel shows."""
    rows = page.eval_on_selector_all(
        f"[data-testid={panel}-topk] li",
        "rows => rows.map(r => [r.dataset.label, parseFloat(r.querySelector('.topk-p').textContent)])",
    )
    return [(str(label), float(percent)) for label, percent in rows]


def _takes_images(input_shape: list[int]) -> bool:
    """The page's rule: [H, W] (ignoring 1s), or a flat square [H * W] such as torch's [784]."""
    dims = [d for d in input_shape if d != 1]
    return len(dims) == 2 or (len(input_shape) == 1 and math.isqrt(input_shape[0]) ** 2 == input_shape[0])


def test_every_model_of_the_shared_repository_agrees_across_panels(tab: Tab, server: LiveServer) -> None:
    """Ours and foreign models (torch.onnx.export: [batch, 784] in, logits out; tf2onnx-style) alike;
    a model that takes no image gets a clear error on both sides."""
    with server.client() as client:
        listed = client.get("/api/models").json()["models"]
    # The page offers the models that have a version to serve.
    models = {m["name"]: m for m in listed if any(v["state"] == "AVAILABLE" for v in m["versions"])}
    assert {"mnist", "torch_mlp", "tf_mlp"} <= set(models)
    page = tab.page
    _open(page, server)
    offered = page.eval_on_selector_all("[data-testid=model-select] option", "options => options.map(o => o.value)")
    assert set(offered) == set(models)
    for name, model in models.items():
        page.get_by_test_id("model-select").select_option(name)
        page.get_by_test_id("clear-button").click()
        _draw(page, DIGITS[7])
        shown = _wait_panels(page)
        if not _takes_images(model["input_shape"]):
            assert shown["rest"]["state"] == shown["browser"]["state"] == "error", (name, shown)
            assert "not an image" in shown["browser"]["status"], (name, shown)
            continue
        assert shown["rest"]["state"] == shown["browser"]["state"] == "done", (name, shown)
        assert shown["rest"]["label"] == shown["browser"]["label"], (name, shown)
        rest, browser = _topk(page, "rest"), _topk(page, "browser")
        assert [label for label, _ in rest] == [label for label, _ in browser], (name, shown)
        assert [p for _, p in rest] == pytest.approx([p for _, p in browser], abs=0.15), (name, shown)


def test_screenshot_directory_is_kept_out_of_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    import subprocess

    result = subprocess.run(
        ["git", "check-ignore", "-q", str(SCREENSHOTS / "x.png")], cwd=ROOT, capture_output=True, check=False
    )
    assert result.returncode == 0, "test-artifacts/ must be in .gitignore"

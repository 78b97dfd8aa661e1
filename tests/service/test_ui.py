"""service.ui: the page at /, its files under /ui/, onnxruntime-web under /ui/ort/ (or a clear 404 without it)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.config import Settings
from service.ui import ORT_ENTRY, STATIC_DIR, mount_ui


def _client(ort_web_dir: Path) -> TestClient:
    app = FastAPI()
    mount_ui(app, Settings(ort_web_dir=ort_web_dir))
    return TestClient(app)


@pytest.fixture
def fake_ort(tmp_path: Path) -> Path:
    """A stand-in onnxruntime-web dist folder (the real one is tested in the browser test)."""
    (tmp_path / ORT_ENTRY).write_text("export const env = {};\n")
    (tmp_path / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm\x01\0\0\0")
    return tmp_path


def test_root_serves_the_page(fake_ort: Path) -> None:
    response = _client(fake_ort).get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'data-testid="draw-canvas"' in response.text
    assert "/ui/app.js" in response.text


def test_every_static_file_is_served_under_ui_with_its_type(fake_ort: Path) -> None:
    client = _client(fake_ort)
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}
    files = sorted(p for p in STATIC_DIR.iterdir() if p.is_file())
    assert {"app.js", "preprocess.js", "style.css", "index.html"} <= {p.name for p in files}
    for path in files:
        response = client.get(f"/ui/{path.name}")
        assert response.status_code == 200, path.name
        assert response.headers["content-type"].startswith(types[path.suffix]), path.name
        assert response.content == path.read_bytes()


def test_page_modules_import_only_what_the_service_serves() -> None:
    """Every ES module import in the page resolves to a file in static/ (or the runtime under /ui/ort/)."""
    import re

    for script in STATIC_DIR.glob("*.js"):
        for target in re.findall(r'^import .* from "([^"]+)";$', script.read_text(), flags=re.MULTILINE):
            assert target.startswith("./") and (STATIC_DIR / target[2:]).is_file(), (script.name, target)


def test_ort_files_are_served_with_the_types_browsers_require(fake_ort: Path) -> None:
    client = _client(fake_ort)
    module = client.get(f"/ui/ort/{ORT_ENTRY}")
    assert module.status_code == 200 and module.headers["content-type"].startswith("text/javascript")
    wasm = client.get("/ui/ort/ort-wasm-simd-threaded.wasm")
    assert wasm.status_code == 200 and wasm.headers["content-type"] == "application/wasm"
    assert client.get("/ui/ort/../ui.py").status_code == 404


def test_missing_ort_dir_keeps_the_page_and_explains(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = tmp_path / "nowhere"
    with caplog.at_level(logging.WARNING, logger="service.ui"):
        client = _client(missing)
    assert "onnxruntime-web not found" in caplog.text
    assert client.get("/").status_code == 200
    assert client.get("/ui/app.js").status_code == 200
    response = client.get(f"/ui/ort/{ORT_ENTRY}")
    assert response.status_code == 404
    assert "npm ci" in response.json()["error"]


def test_ui_routes_stay_out_of_the_openapi_schema(fake_ort: Path) -> None:
    paths = _client(fake_ort).get("/openapi.json").json()["paths"]
    assert not any(p == "/" or p.startswith("/ui") for p in paths)


def test_default_ort_dir_is_the_pinned_npm_install() -> None:
    # The project's package.json pins onnxruntime-web; `npm ci` puts it where Settings looks by default.
    default = Settings().ort_web_dir
    assert default.parts[-3:] == ("node_modules", "onnxruntime-web", "dist")
    if default.is_dir():
        assert (default / ORT_ENTRY).is_file()


def test_the_page_imports_the_runtime_file_the_server_checks_for() -> None:
    # ORT_ENTRY decides "runtime available" here and which files the container image keeps
    # (docker/fetch_ort_web.py); the page must import that very file.
    runtime = (STATIC_DIR / "runtime.js").read_text()
    assert f'const ORT_MODULE = ORT_BASE + "{ORT_ENTRY}";' in runtime
    assert 'export const ORT_BASE = "/ui/ort/";' in runtime

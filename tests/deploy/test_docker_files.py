"""The image's source files, checked without a Docker engine: Dockerfile rules that keep it building
with the classic builder and running as a non-root user, the health check script, the entry point's
dispatch, the onnxruntime-web file selection and the build context."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.commands import ROOT, dockerfile_env, dockerfile_text, instructions


def _load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fetch_ort_web = _load_script(ROOT / "docker" / "fetch_ort_web.py")  # a build-stage script, not a package

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
HEALTHCHECK = ROOT / "docker" / "healthcheck.py"


def final_stage() -> list[str]:
    return instructions(dockerfile_text().rsplit("\nFROM ", 1)[1])


def test_every_stage_starts_from_the_unchanged_official_base() -> None:
    froms = [i.split() for i in instructions() if i.startswith("FROM ")]
    stages = {f[3] for f in froms if len(f) == 4 and f[2] == "AS"}
    bases = {f[1] for f in froms} - stages  # a stage may build on an earlier stage (FROM deps AS project)
    assert bases == {"python:3.11-slim"}
    assert froms[-1] == ["FROM", "python:3.11-slim"]  # the runtime starts clean, not from a build stage


def test_classic_builder_only() -> None:
    text = dockerfile_text()
    assert not text.startswith("# syntax")
    assert "--mount" not in text and "--pull" not in text and "<<" not in text


def test_dependencies_come_from_the_constraints_file_before_the_code() -> None:
    lines = instructions()
    install = next(i for i, line in enumerate(lines) if "-c constraints.txt -r requirements.txt" in line)
    first_code_copy = next(i for i, line in enumerate(lines) if line.startswith("COPY service"))
    assert install < first_code_copy
    assert any(line.startswith("COPY pyproject.toml constraints.txt") for line in lines[:install])
    assert "pip install -q --no-deps --target" in "\n".join(lines)  # the project: not editable


def test_runtime_stage_is_non_root_with_health_check_and_entry_point() -> None:
    stage = final_stage()
    (user,) = (i for i in stage if i.startswith("USER "))
    assert user.split()[1] not in {"root", "0"}
    assert any(i.startswith("EXPOSE 8000") for i in stage)
    (healthcheck,) = (i for i in stage if i.startswith("HEALTHCHECK "))
    assert '"/usr/local/lib/deploy-anywhere/healthcheck.py"' in healthcheck
    assert any(i.startswith('ENTRYPOINT ["tini", "--", "/usr/local/lib/deploy-anywhere/entrypoint.sh"]') for i in stage)
    assert 'CMD ["serve"]' in stage
    assert any(i.startswith("VOLUME ") and "/models" in i for i in stage)
    # No compilers, pip or build caches: the runtime copies finished folders and installs only tini.
    runs = [i for i in stage if i.startswith("RUN ")]
    assert len(runs) == 1 and "--no-install-recommends tini" in runs[0] and "rm -rf /var/lib/apt/lists/*" in runs[0]


def test_image_environment_configures_the_service_for_a_container() -> None:
    env = dockerfile_env()
    assert env["SERVICE_HOST"] == "0.0.0.0"
    assert env["SERVICE_REPOSITORY"] == "/models"
    assert env["SERVICE_ORT_WEB_DIR"] == "/opt/onnxruntime-web"
    assert env["PYTHONUNBUFFERED"] == "1"  # logs reach `docker logs` at once
    assert env["ORT_DISABLE_TELEMETRY"] == "1"  # no device-id files, no non-JSON warning on a read-only root


def test_build_context_leaves_out_local_state() -> None:
    rules = [r for r in (ROOT / ".dockerignore").read_text().splitlines() if r and not r.startswith("#")]
    assert rules[0] == "*"  # deny by default, then allow what the Dockerfile copies
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied = {
        part.rstrip("/")
        for i in instructions()
        if i.startswith("COPY ") and "--from=" not in i
        for part in i.split()[1:-1]
    }
    copied = {c.split("/")[0] if c.startswith(("docker/", "service/")) else c for c in copied}
    assert copied <= allowed
    assert not allowed & {".venv", "node_modules", "tests", "models", "artifacts", ".git"}


# --- docker/healthcheck.py -----------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(self.status if self.path == "/v2/health/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[http.server.HTTPServer, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SERVICE_PORT": str(port)}
    return subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, capture_output=True, text=True, timeout=20)


def test_healthcheck_passes_only_when_ready(health_server: tuple[http.server.HTTPServer, type[_Handler]]) -> None:
    server, handler = health_server
    port = server.server_address[1]
    assert run_healthcheck(port).returncode == 0
    handler.status = 503  # loading models
    result = run_healthcheck(port)
    assert result.returncode == 1 and "not ready" in result.stderr


def test_healthcheck_fails_when_nothing_listens() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    server.server_close()
    result = run_healthcheck(port)
    assert result.returncode == 1 and "not ready" in result.stderr


# --- docker/entrypoint.sh ------------------------------------------------------------------------


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    """A `python` first on PATH that prints its arguments, to see what the entry point runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python"
    fake.write_text('#!/bin/sh\necho "python $*"\n')
    fake.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize(
    ("args", "runs"),
    [
        ([], "python -m service"),
        (["serve", "--port", "9000"], "python -m service --port 9000"),
        (["--workers", "2"], "python -m service --workers 2"),
        (["train", "--out", "/artifacts/m", "--epochs", "1"], "python -m trainer --out /artifacts/m --epochs 1"),
        (["export", "/artifacts/m", "--name", "m"], "python -m exporter /artifacts/m --name m"),
        (["python", "-c", "pass"], "python -c pass"),
    ],
)
def test_entrypoint_dispatches_commands(fake_python: Path, args: list[str], runs: str) -> None:
    env = {**os.environ, "PATH": f"{fake_python}:{os.environ['PATH']}"}
    result = subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == runs


def test_entrypoint_help_lists_the_commands() -> None:
    result = subprocess.run(["sh", str(ENTRYPOINT), "help"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0
    for command in ("serve", "train", "export"):
        assert f"  {command} " in result.stdout


def test_entrypoint_passes_the_exit_status_through() -> None:
    result = subprocess.run(["sh", str(ENTRYPOINT), "sh", "-c", "exit 7"], capture_output=True, timeout=20)
    assert result.returncode == 7


# --- docker/fetch_ort_web.py ---------------------------------------------------------------------


def test_the_page_entry_is_read_from_the_service() -> None:
    from service.ui import ORT_ENTRY

    assert fetch_ort_web.page_entry(ROOT / "service" / "ui.py") == ORT_ENTRY


def test_only_the_entry_its_loader_and_binary_are_kept() -> None:
    dist = {
        "ort.wasm.min.mjs": b'...import("./ort-wasm-simd-threaded.mjs")...',
        "ort-wasm-simd-threaded.mjs": b"loader",
        "ort-wasm-simd-threaded.wasm": b"",
        "ort-wasm-simd-threaded.jsep.mjs": b"webgpu loader",
        "ort-wasm-simd-threaded.jsep.wasm": b"",
        "ort.min.mjs": b'import("./ort-wasm-simd-threaded.jsep.mjs")',
    }
    assert fetch_ort_web.needed(dist, "ort.wasm.min.mjs") == [
        "ort.wasm.min.mjs",
        "ort-wasm-simd-threaded.mjs",
        "ort-wasm-simd-threaded.wasm",
    ]
    with pytest.raises(SystemExit, match="no dist/ort.all.min.mjs"):
        fetch_ort_web.needed(dist, "ort.all.min.mjs")


def test_installed_onnxruntime_web_has_what_the_image_keeps() -> None:
    # The same selection against the npm install the tests use (same version as the lockfile).
    dist_dir = ROOT / "node_modules" / "onnxruntime-web" / "dist"
    if not dist_dir.is_dir():
        pytest.skip("node_modules/onnxruntime-web not installed (npm ci)")
    entry = fetch_ort_web.page_entry(ROOT / "service" / "ui.py")
    dist = {p.name: b"" if p.suffix == ".wasm" else p.read_bytes() for p in dist_dir.iterdir() if p.is_file()}
    kept = fetch_ort_web.needed(dist, entry)
    assert kept[0] == entry and any(name.endswith(".wasm") for name in kept)
    version, digest = fetch_ort_web.pinned(ROOT / "package-lock.json")
    assert version == json.loads((dist_dir.parent / "package.json").read_text())["version"]
    assert len(digest) == 88  # base64 of a sha512

"""The container image and the Compose pipeline, against a real Docker engine.

Builds the image once per session (the Dockerfile, classic builder), then:
- runs it hardened as in Kubernetes (read-only root, /tmp tmpfs, no capabilities) with a model
  repository mounted at /models, waits for readiness through the published 127.0.0.1 port and
  checks predictions against onnxruntime in this process, the web page's runtime files, the user,
  and Docker's own health status;
- stops it with SIGTERM: idle it exits within seconds, and a request in flight still gets its answer;
- `docker-compose up` (Compose v1, or `docker compose`) the whole pipeline from empty volumes, with
  one training epoch, predicts real MNIST digits on 127.0.0.1, then `down -v`.

Without a Docker engine these tests skip with the reason; with REQUIRE_DOCKER=1 (CI) they fail
instead, so CI can never pass without running them. Names and tags are unique per run and
everything is removed afterwards, except the newest image, kept as deploy-anywhere:test-cache so
the next run reuses its layers.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from contracts import INPUT_NAME, LABEL_NAME, MODEL_ONNX, PROBABILITIES_NAME
from tests.e2e.browser import browser_fixture  # noqa: F401 - the `browser` fixture (skips without chromium)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = uuid.uuid4().hex[:8]
BUILD_TIMEOUT = 1500  # a cold build downloads ~150 MB of wheels and Debian's npm; a warm one takes seconds
READY_TIMEOUT = 90.0
COMPOSE_TIMEOUT = 420.0  # one epoch of training on a busy 2-core machine took 70 s, export 5 s
MODEL = "mnist"
CACHE_TAG = "deploy-anywhere:test-cache"
TITLE_LABEL = "org.opencontainers.image.title=deploy-anywhere"

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(BUILD_TIMEOUT + 600)]


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (CI installs it with ../shared/tools/docker-ready.sh)"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "no Docker engine answered `docker info` within 30 s"
    if info.returncode != 0:
        return f"no Docker engine answers `docker info`: {info.stderr.strip()[:300]}"
    return None


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return ["docker", "compose"]
    pytest.fail("neither docker-compose (v1) nor the docker compose plugin (v2) is installed")


@pytest.fixture(scope="session")
def engine() -> None:
    problem = engine_problem()
    if problem:
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(f"REQUIRE_DOCKER=1 but {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="session")
def image(engine: None) -> Iterator[str]:
    tag = f"deploy-anywhere:test-{RUN_ID}"
    started = time.monotonic()
    docker("build", "--tag", tag, str(ROOT), timeout=BUILD_TIMEOUT)
    print(f"\nimage {tag} built in {time.monotonic() - started:.0f} s")
    yield tag
    # Keep the newest test image under one stable tag, as the layer cache of the next run, and
    # delete the one it replaces (dangling now; the final stage's label marks our images only).
    docker("tag", tag, CACHE_TAG, check=False)
    docker("rmi", tag, check=False)
    docker("image", "prune", "--force", "--filter", f"label={TITLE_LABEL}", check=False)


@dataclass
class Container:
    name: str
    url: str

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def state(self, field: str) -> str:
        return docker("inspect", "--format", "{{" + field + "}}", self.name).stdout.strip()


def published_url(name: str, port: int = 8000) -> str:
    (mapping,) = docker("port", name, f"{port}/tcp").stdout.split()[:1]
    host, _, host_port = mapping.rpartition(":")
    assert host == "127.0.0.1", f"published on {host}, not on loopback only"
    return f"http://127.0.0.1:{host_port}"


def wait_ready(url: str, timeout: float, alive: Callable[[], bool], logs: Callable[[], str]) -> None:
    """Poll the readiness route; connection resets while the app starts are retried."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/v2/health/ready", timeout=5)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.TransportError as exc:
            last = repr(exc)
        if not alive():
            pytest.fail(f"the container exited before it was ready ({last}):\n{logs()[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"not ready after {timeout:.0f} s ({last}):\n{logs()[-4000:]}")


@pytest.fixture(scope="module")
def models(exported_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exporter's output for a small trained model, readable by the image's non-root user."""
    root = tmp_path_factory.mktemp("container") / "models"
    shutil.copytree(exported_repository, root)
    for path in [root.parent, root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def run_container(image: str, repository: Path, *extra: str) -> Container:
    name = f"deploy-anywhere-test-{RUN_ID}-{uuid.uuid4().hex[:6]}"
    docker(
        "run", "--detach", "--name", name,
        "--publish", "127.0.0.1::8000",
        "--volume", f"{repository}:/models:ro",
        # Hardened as the Kubernetes manifests run it.
        "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        *extra, image,
    )  # fmt: skip
    container = Container(name, published_url(name))
    wait_ready(container.url, READY_TIMEOUT, lambda: container.state(".State.Running") == "true", container.logs)
    return container


@pytest.fixture(scope="module")
def container(image: str, models: Path) -> Iterator[Container]:
    started = time.monotonic()
    running = run_container(image, models)
    print(f"\ncontainer ready in {time.monotonic() - started:.1f} s")
    yield running
    docker("rm", "--force", "--volumes", running.name, check=False)


def local_predictions(repository: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(repository / MODEL / "1" / MODEL_ONNX), providers=["CPUExecutionProvider"])
    probabilities, labels = session.run([PROBABILITIES_NAME, LABEL_NAME], {INPUT_NAME: images})
    return np.asarray(probabilities), np.asarray(labels)


def mnist_digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    from trainer import load_mnist

    test = load_mnist("test").subset(n)
    return test.x.astype(np.float32), test.y


# --- the image ---------------------------------------------------------------------------------


def test_image_metadata(image: str) -> None:
    (config,) = json.loads(docker("image", "inspect", image).stdout)
    assert config["Config"]["User"] == "app"
    assert "8000/tcp" in config["Config"]["ExposedPorts"]
    assert set(config["Config"]["Volumes"]) == {"/models", "/artifacts"}
    assert config["Config"]["Healthcheck"]["Test"][0] == "CMD"
    assert config["Config"]["Cmd"] == ["serve"]
    assert config["Config"]["Labels"]["org.opencontainers.image.title"] == "deploy-anywhere"
    size_mb = config["Size"] / 1e6
    print(f"\nimage size: {size_mb:.0f} MB")
    assert size_mb < 800, f"the image grew to {size_mb:.0f} MB"


def test_image_has_no_compilers_or_package_caches(image: str) -> None:
    script = (
        "for t in gcc cc g++ make npm node; do command -v $t; done; "
        "ls /opt/venv/bin | grep -e '^pip' -e '^easy_install'; "
        "find /opt /home /root /tmp /models /artifacts \\( -name .cache -o -name '*.whl' \\) -print; "
        "ls /var/lib/apt/lists | grep -v -e lock -e partial; true"
    )
    # As root, to see into every home folder (the base image's own pip stays: it is python:3.11-slim's).
    result = docker("run", "--rm", "--user", "0", "--entrypoint", "sh", image, "-c", script)
    assert result.stdout.split() == []


def test_train_and_export_commands_run_in_the_image(image: str, tmp_path: Path) -> None:
    # The same image trains and exports (tiny run); the service test below uses a real export.
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)
    mount = ["--volume", f"{work}:/work", "--read-only", "--tmpfs", "/tmp"]
    trained = docker(
        "run", "--rm", *mount, image,
        "train", "--out", "/work/artifact", "--limit", "2000", "--epochs", "1", "--hidden", "16", "--quiet",
        timeout=300,
    )  # fmt: skip
    assert (work / "artifact" / "model.json").is_file(), trained.stdout + trained.stderr
    export = ["export", "/work/artifact", "--repository", "/work/models", "--name", "m"]
    docker("run", "--rm", *mount, image, *export, timeout=300)
    assert (work / "models" / "m" / "1" / MODEL_ONNX).is_file()
    assert (work / "models" / "m" / "config.pbtxt").is_file()


# --- a running container -----------------------------------------------------------------------


def test_predicts_through_the_published_port(container: Container, models: Path) -> None:
    images, truth = mnist_digits(64)
    expected_probabilities, expected_labels = local_predictions(models, images)
    # TF Serving REST, row format
    response = httpx.post(f"{container.url}/v1/models/{MODEL}:predict", json={"instances": images.tolist()}, timeout=30)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p[LABEL_NAME] for p in predictions] == expected_labels.tolist()
    np.testing.assert_allclose([p[PROBABILITIES_NAME] for p in predictions], expected_probabilities, atol=1e-5)
    assert np.mean(expected_labels == truth) > 0.7  # a trained model, not noise
    # Open Inference Protocol (V2)
    tensor = {"name": INPUT_NAME, "shape": list(images.shape), "datatype": "FP32", "data": images.ravel().tolist()}
    body = {"id": "container", "inputs": [tensor]}
    response = httpx.post(f"{container.url}/v2/models/{MODEL}/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert response.json()["id"] == "container"
    assert outputs[LABEL_NAME]["data"] == expected_labels.tolist()


def test_serves_the_web_page_and_its_browser_runtime(container: Container) -> None:
    from service.ui import ORT_ENTRY

    page = httpx.get(f"{container.url}/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    runtime = httpx.get(f"{container.url}/ui/ort/{ORT_ENTRY}", timeout=10)
    assert runtime.status_code == 200 and "javascript" in runtime.headers["content-type"]
    wasm = [
        name
        for name in docker("exec", container.name, "ls", "/opt/onnxruntime-web").stdout.split()
        if name.endswith(".wasm")
    ]
    assert wasm
    binary = httpx.get(f"{container.url}/ui/ort/{wasm[0]}", timeout=30)
    assert binary.status_code == 200 and binary.content[:4] == b"\0asm"


def test_runs_as_a_non_root_user(container: Container) -> None:
    uid = docker("exec", container.name, "id", "-u").stdout.strip()
    assert uid.isdigit() and int(uid) != 0
    # PID 1 is tini, and the service under it runs as the same unprivileged user.
    processes = docker("exec", container.name, "ps", "-o", "uid=,comm=", check=False)
    if processes.returncode == 0:  # procps is not in the slim base; /proc is
        assert all(line.split()[0] == uid for line in processes.stdout.splitlines() if line.strip())
    status = docker("exec", container.name, "cat", "/proc/1/status").stdout
    (uid_line,) = (line for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uid_line.split()[1:]) == {uid}


def test_docker_reports_the_container_healthy(container: Container) -> None:
    deadline = time.monotonic() + 60  # first check after the 10 s interval
    status = ""
    while time.monotonic() < deadline:
        status = container.state(".State.Health.Status")
        if status == "healthy":
            return
        assert status in {"starting", "healthy"}, container.state("json .State.Health")
        time.sleep(1)
    pytest.fail(f"health status {status!r} after 60 s: {container.state('json .State.Health')}")


def test_logs_are_json_lines_on_the_container_output(container: Container) -> None:
    lines = [line for line in container.logs().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert any(r["message"] == "version loaded" and r.get("model") == MODEL for r in records)


@pytest.mark.browser
def test_the_page_runs_the_model_in_a_browser_from_the_images_files(container: Container, browser: Browser) -> None:
    """The image keeps only the onnxruntime-web files the page loads: prove the page needs no other.

    Chromium opens the page the container serves, a stroke is drawn, and both panels answer: the
    service over REST, and onnxruntime-web in the browser with the runtime fetched from the container.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        failed: list[str] = []
        requested: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requested.append(r.url))
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{container.url}/")
        page.wait_for_selector("[data-testid=version-select]:not([disabled])", timeout=30_000)
        box = page.get_by_test_id("draw-canvas").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.15 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.85 * box["height"], steps=12)
        page.mouse.up()
        page.wait_for_function(
            """() => ['rest', 'browser'].every((name) => {
                const panel = document.querySelector(`[data-testid=${name}-panel]`);
                return ['done', 'error'].includes(panel.dataset.state);
            })""",
            timeout=60_000,
        )
        states = {n: page.get_by_test_id(f"{n}-panel").get_attribute("data-state") for n in ("rest", "browser")}
        status = page.get_by_test_id("browser-status").inner_text()
        assert states == {"rest": "done", "browser": "done"}, (states, status, failed)
        labels = {n: page.get_by_test_id(f"{n}-label").inner_text() for n in ("rest", "browser")}
        assert labels["rest"] == labels["browser"], labels  # same model, same input, two runtimes
        assert errors == [] and failed == [], (errors, failed)
        assert all(url.startswith(container.url) for url in requested), requested  # nothing from a CDN
        assert any("/ui/ort/" in url and url.endswith(".wasm") for url in requested), requested
    finally:
        context.close()


# --- SIGTERM -----------------------------------------------------------------------------------


def stop(container: Container) -> float:
    started = time.monotonic()
    docker("stop", "--time", "10", container.name, timeout=60)
    return time.monotonic() - started


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_an_idle_container_cleanly_within_seconds(image: str, models: Path, workers: int) -> None:
    running = run_container(image, models, "--env", f"SERVICE_WORKERS={workers}")
    try:
        # Every worker answers (the one listening socket is shared; a few requests reach both).
        for _ in range(4 * workers):
            assert httpx.get(f"{running.url}/v1/models/{MODEL}", timeout=10).status_code == 200
        elapsed = stop(running)
        code = int(running.state(".State.ExitCode"))
        logs = running.logs()
        assert elapsed < 5, f"docker stop took {elapsed:.1f} s (SIGKILL comes at 10 s)"
        assert code in {0, 143}, f"exit code {code}:\n{logs[-3000:]}"
        assert running.state(".State.OOMKilled") == "false"
        assert f"with {workers} worker(s)" in logs, logs[-3000:]
        # Each worker process ran the app's shutdown and finished.
        messages = [json.loads(line)["message"] for line in logs.splitlines() if line.startswith("{")]
        assert messages.count("Application shutdown complete.") == workers, logs[-3000:]
        assert sum(m.startswith("Finished server process") for m in messages) == workers, logs[-3000:]
        assert "Traceback" not in logs
    finally:
        docker("rm", "--force", "--volumes", running.name, check=False)


def test_sigterm_lets_a_request_in_flight_finish(image: str, models: Path) -> None:
    running = run_container(image, models)
    try:
        images, _ = mnist_digits(8)
        _, expected_labels = local_predictions(models, images)
        body = json.dumps({"instances": images.tolist()}).encode()
        host, port = running.url.removeprefix("http://").split(":")
        head = (
            f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(head + body[: len(body) // 2])  # the request is in flight: half its body sent
            time.sleep(0.5)
            stopper = threading.Thread(target=stop, args=(running,))
            stopper.start()
            # Wait until the server is shutting down (SIGTERM arrived: no new connections), then finish the request.
            deadline = time.monotonic() + 15
            while "Shutting down" not in running.logs():
                assert time.monotonic() < deadline, f"no shutdown within 15 s of SIGTERM:\n{running.logs()[-2000:]}"
                time.sleep(0.1)
            assert running.state(".State.Running") == "true"  # still draining: this request holds it open
            sock.sendall(body[len(body) // 2 :])
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
            stopper.join(timeout=30)
        status_line, _, rest = response.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 200"), response[:500]
        payload = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert [p[LABEL_NAME] for p in payload["predictions"]] == expected_labels.tolist()
        assert running.state(".State.Running") == "false"
        assert int(running.state(".State.ExitCode")) in {0, 143}
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{running.url}/v2/health/live", timeout=2)
    finally:
        docker("rm", "--force", "--volumes", running.name, check=False)


# --- Compose -------------------------------------------------------------------------------------


def free_host_port(preferred: int = 8000) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise AssertionError("no free port")


def test_compose_pipeline_from_empty_volumes_to_a_served_model(image: str) -> None:
    project = f"dapipeline{RUN_ID}"
    port = free_host_port(8000)  # the documented 127.0.0.1:8000 unless something here already uses it
    env = {**os.environ, "IMAGE": image, "TRAIN_EPOCHS": "1", "HOST_PORT": str(port)}
    base = [*compose_command(), "--project-name", project, "--file", str(ROOT / "docker-compose.yml")]

    def compose(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

    def logs() -> str:
        return compose("logs", "--no-color", "--tail", "60").stdout

    def service_running() -> bool:
        state = docker("ps", "--all", "--filter", f"label=com.docker.compose.project={project}",
                       "--filter", "label=com.docker.compose.service=service",
                       "--format", "{{.State}}", check=False)  # fmt: skip
        return "running" in state.stdout or state.stdout.strip() == ""

    started = time.monotonic()
    try:
        up = compose("up", "--detach", timeout=COMPOSE_TIMEOUT)
        assert up.returncode == 0, up.stdout + up.stderr + logs()
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, READY_TIMEOUT, service_running, logs)
        print(f"\ncompose pipeline served a model after {time.monotonic() - started:.0f} s")
        # The jobs ran once and succeeded.
        for job in ("train", "export"):
            ids = docker("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={project}",
                         "--filter", f"label=com.docker.compose.service={job}").stdout.split()  # fmt: skip
            assert len(ids) == 1, job
            assert docker("inspect", "--format", "{{.State.ExitCode}}", ids[0]).stdout.strip() == "0", job
        images, truth = mnist_digits(200)
        response = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": images.tolist()}, timeout=60)
        assert response.status_code == 200, response.text
        labels = np.array([p[LABEL_NAME] for p in response.json()["predictions"]])
        assert np.mean(labels == truth) > 0.85  # one epoch on the full training split: ~95%
        status = httpx.get(f"{url}/v1/models/{MODEL}", timeout=10).json()
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        down = compose("down", "--volumes", "--remove-orphans", timeout=180)
        leftovers = docker("volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={project}").stdout
        print(f"compose test took {time.monotonic() - started:.0f} s")
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers.split() == []

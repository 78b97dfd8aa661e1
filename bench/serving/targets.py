"""The servers under test, each a subprocess on 127.0.0.1 with its log in the work folder."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort

from service.config import Settings
from serving.payloads import Body, Payloads

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
# The service as users run it: `python -m service`, configured by environment variables.
SERVICE_LAUNCH = ["-m", "service"]  # the real CLI; every setting comes from SERVICE_* variables


@dataclass
class Target:
    name: str
    kind: str  # hello | baseline | service
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    model: Path
    workers: int = 1
    ready_path: str = "/"
    notes: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def check(self, payloads: Payloads) -> list[str]:
        """Post each benchmark body once and compare the answer with onnxruntime in-process."""
        return check_answers(self, payloads)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _start(name: str, kind: str, argv: list[str], env: dict[str, str], work: Path, model: Path, **kw: object) -> Target:
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    env = {k: v.replace("{port}", str(port)) for k, v in env.items()}
    log = work / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return Target(name, kind, port, process, log, model, **kw)  # type: ignore[arg-type]


def _uvicorn(app: str, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--app-dir",
        str(BENCH),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        *options,
    ]


def start_hello(work: Path, model: Path) -> Target:
    """FastAPI hello world with the same uvicorn options as the service (``service.server``)."""
    same_as_service = ("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-server-header")
    argv = _uvicorn("hello_app:app", *same_as_service, "--log-level", "warning")
    return _start("hello", "hello", argv, _clean_env(), work, model)


@contextlib.contextmanager
def start_targets(work: Path, model: Path) -> Iterator[dict[str, Target]]:
    """hello, baseline, service (default settings), service with batching flipped, the other worker count."""
    defaults = Settings()
    default_workers = defaults.workers
    alt_workers = 2 if default_workers == 1 else 1
    service_env = {"SERVICE_REPOSITORY": str(model.parents[2]), "SERVICE_PORT": "{port}"}
    targets = {
        "hello": start_hello(work, model),
        "baseline": _start(
            "baseline",
            "baseline",
            _uvicorn("baseline_app:app", "--loop", "asyncio", "--http", "h11"),
            _clean_env(BENCH_MODEL=str(model)),
            work,
            model,
            ready_path="/health",
        ),
    }
    launch = [sys.executable, *SERVICE_LAUNCH]
    variants = {
        "service": ({}, default_workers),
        "service-other-batching": ({"SERVICE_BATCHING": str(not defaults.batching).lower()}, default_workers),
        "service-alt-workers": ({"SERVICE_WORKERS": str(alt_workers)}, alt_workers),
    }
    for name, (extra, workers) in variants.items():
        env = _clean_env(**service_env, **extra)
        targets[name] = _start(
            name, "service", launch, env, work, model, workers=workers, ready_path="/v2/health/ready"
        )
    try:
        for target in targets.values():
            _wait_ready(target)
        yield targets
    finally:
        for target in targets.values():
            _stop(target)


def _wait_ready(target: Target, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if target.process.poll() is not None:
            raise RuntimeError(f"{target.name} exited with {target.process.returncode}:\n{_tail(target.log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(target.url(target.ready_path), timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{target.name} not ready after {timeout:.0f}s:\n{_tail(target.log)}")


def _stop(target: Target) -> None:
    if target.process.poll() is None:
        target.process.send_signal(signal.SIGTERM)
        try:
            target.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            target.process.kill()
            target.process.wait()


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def check_answers(target: Target, payloads: Payloads) -> list[str]:
    """Wrong or failed answers of ``target`` to each body it is benchmarked with."""
    if target.kind == "hello":
        response = httpx.get(target.url("/"))
        return [] if response.status_code == 200 else [f"{target.name} GET /: {response.status_code}"]
    session = ort.InferenceSession(str(target.model), providers=["CPUExecutionProvider"])
    want_one = int(session.run(["label"], {"images": payloads.image})[0][0])
    want_batch = session.run(["label"], {"images": payloads.batch})[0]
    problems: list[str] = []
    got = _post(target, payloads.tf_path, payloads.tf, problems)
    if got is not None and json.loads(got.content)["predictions"][0]["label"] != want_one:
        problems.append(f"{target.name} TF instances: {got.text[:200]}")
    if target.kind == "service":
        got = _post(target, payloads.v2_path, payloads.v2, problems)
        labels = {o["name"]: o["data"] for o in json.loads(got.content)["outputs"]} if got is not None else {}
        if got is not None and labels.get("label") != [want_one]:
            problems.append(f"{target.name} V2 infer JSON: {got.text[:200]}")
        got = _post(target, payloads.v2_path, payloads.binary, problems)
        if got is not None and not np.array_equal(_binary_output(got, "label"), want_batch):
            problems.append(f"{target.name} V2 binary x1000: labels differ from onnxruntime in-process")
    return problems


def _post(target: Target, path: str, body: Body, problems: list[str]) -> httpx.Response | None:
    response = httpx.post(target.url(path), content=body.path.read_bytes(), headers=body.headers(), timeout=30)
    if response.status_code != 200:
        problems.append(f"{target.name} POST {path} ({body.path.name}): {response.status_code} {response.text[:300]}")
        return None
    return response


def _binary_output(response: httpx.Response, name: str) -> np.ndarray:
    """One output of a V2 binary-extension answer (JSON header, then the binary outputs in order)."""
    length = int(response.headers["Inference-Header-Content-Length"])
    header = json.loads(response.content[:length])
    offset = length
    dtypes = {"FP32": "<f4", "INT64": "<i8"}
    for output in header["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is None:
            continue
        if output["name"] == name:
            raw = response.content[offset : offset + size]
            return np.frombuffer(raw, dtypes[output["datatype"]]).reshape(output["shape"])
        offset += size
    raise ValueError(f"no binary output {name!r} in {header}")

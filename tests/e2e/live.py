"""A real service process on a real TCP port, for end-to-end tests (any test may use it).

    with live_server(repository, "--api-key", "secret") as server:
        httpx.get(server.url + "/v2/health/ready")

The server runs ``python -m service`` exactly as a user would, logs to a file (``server.log()``),
and is stopped with SIGTERM (then SIGKILL) on exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
RUNNING: list[LiveServer] = []  # servers alive now, so a failing test's report can show their logs


@dataclass
class LiveServer:
    url: str
    repository: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    api_key: str | None = None
    args: tuple[str, ...] = field(default_factory=tuple)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 80, width: int = 600) -> str:
        """The last ``lines`` lines of the log, each cut to ``width`` characters (tracebacks are long)."""
        tail = self.log().splitlines()[-lines:]
        return "\n".join(line if len(line) <= width else line[:width] + " [...]" for line in tail)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def client(self, **kwargs: object) -> httpx.Client:
        """An httpx client on this server (with the API key, if the server has one)."""
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, headers=self.headers(), **kwargs)  # type: ignore[arg-type]

    def wait_until(self, predicate: object, timeout: float = 20.0, what: str = "condition") -> None:
        """Poll ``predicate()`` (a callable) until it is truthy; fail with the server log if it never is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; server log tail:\n{self.log_tail()}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(
    repository: Path,
    *args: str,
    api_key: str | None = None,
    poll_interval: float = 0.2,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
) -> Iterator[LiveServer]:
    """Start ``python -m service`` on a free port; yield once ``/v2/health/ready`` answers 200."""
    port = free_port()
    cmd = [sys.executable, "-m", "service", "--repository", str(repository), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--poll-interval", str(poll_interval), "--workers", "1", *args]
    if api_key:
        cmd += ["--api-key", api_key]
    fd, log_name = tempfile.mkstemp(prefix="service-e2e-", suffix=".log")
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with os.fdopen(fd, "wb") as log_file:
        process = subprocess.Popen(cmd, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, env=full_env)
    server = LiveServer(f"http://127.0.0.1:{port}", repository, process, Path(log_name), api_key, tuple(args))
    RUNNING.append(server)
    try:
        if wait_ready:
            _wait_ready(server)
        yield server
    except BaseException:
        # the test failed inside the block: pytest shows captured stderr under the failure
        print(f"--- log of the service at {server.url} (tail) ---\n{server.log_tail(80)}", file=sys.stderr)
        raise
    finally:
        RUNNING.remove(server)
        stop(server)


def _wait_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"service exited with {server.process.returncode} before ready:\n{server.log_tail(200)}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(server.url + "/v2/health/ready", timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"service not ready after {STARTUP_TIMEOUT}s:\n{server.log_tail(200)}")


def stop(server: LiveServer, timeout: float = 10.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)
    return int(server.process.returncode)

"""Several worker processes, one server: ready only once every worker has loaded the repository,
every scrape of ``/metrics`` counts the requests of all workers (Prometheus multiprocess mode),
and SIGTERM removes the directory they share."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import FLUSH_SECONDS
from tests.e2e.helpers import images
from tests.e2e.live import live_server, stop
from tests.e2e.models import write_model

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
OK = {"model": "m", "version": "1", "protocol": "tfserving", "code": "200"}


def _samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _by_worker(metrics_dir: Path, kind: str, name: str, **labels: str) -> dict[int, float]:
    """One sample as each worker alone recorded it, read from its own ``<kind>_<pid>.db`` file."""
    found = {}
    for path in metrics_dir.glob(f"{kind}_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            samples = _samples(generate_latest(registry).decode())
        found[int(path.stem.rsplit("_", 1)[1])] = _value(samples, name, **labels)
    return found


def _requests_by_worker(metrics_dir: Path) -> dict[int, float]:
    return _by_worker(metrics_dir, "counter", "service_requests_total", **OK)


def _loaded_by_worker(metrics_dir: Path) -> dict[int, float]:
    return _by_worker(metrics_dir, "gauge_livemax", "service_model_versions_loaded", model="m")


def _written(metrics_dir: Path, sent: int, timeout: float = 5.0) -> dict[int, float]:
    """Requests by worker once all ``sent`` are in the files: each worker writes its observations
    at most ``service.metrics.FLUSH_SECONDS`` after making them."""
    deadline = time.monotonic() + timeout
    while sum((by_worker := _requests_by_worker(metrics_dir)).values()) < sent and time.monotonic() < deadline:
        time.sleep(FLUSH_SECONDS)
    return by_worker


def _post_concurrently(url: str, request: dict, clients: int, each: int) -> list[int]:
    """``clients`` threads, each with its own connection, so both workers' accept loops get some."""
    codes: list[int] = []

    def client() -> None:
        with httpx.Client(timeout=30) as c:
            codes.extend(c.post(url, json=request).status_code for _ in range(each))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return codes


def test_one_scrape_counts_the_requests_of_every_worker(tmp_path: Path) -> None:
    write_model(tmp_path / "models", "m", 1, seed=11)
    tmp = tmp_path / "tmp"  # the server's TMPDIR, to see its metrics directory come and go
    tmp.mkdir()
    request = {"instances": images(1, seed=12).tolist()}
    with live_server(tmp_path / "models", "--workers", "2", env={"TMPDIR": str(tmp)}) as server:
        (metrics_dir,) = tmp.glob("service-metrics-*")
        # ready means every worker has loaded the version, whichever worker answered the probe
        assert list(_loaded_by_worker(metrics_dir).values()) == [1.0, 1.0]
        sent = 0
        while len([n for n in _requests_by_worker(metrics_dir).values() if n > 0]) < 2:
            assert sent < 2000, f"one worker served every request: {_requests_by_worker(metrics_dir)}"
            codes = _post_concurrently(server.url + "/v1/models/m:predict", request, clients=4, each=10)
            assert codes == [200] * 40, codes
            sent += len(codes)
        by_worker = _written(metrics_dir, sent)
        assert len(by_worker) == 2 and sum(by_worker.values()) == sent, (by_worker, sent)
        for _ in range(6):  # a new connection per scrape: whichever worker accepts it answers
            samples = _samples(httpx.get(server.url + "/metrics", timeout=30).text)
            assert _value(samples, "service_requests_total", **OK) == sent
            assert _value(samples, "service_request_failures_total", **OK) == 0
            latency = {"model": "m", "version": "1", "protocol": "tfserving"}
            assert _value(samples, "service_request_duration_seconds_count", **latency) == sent
            assert _value(samples, "service_inference_batch_size_sum", model="m", version="1") == sent
            # every worker loaded the one version: the gauge is 1, not 1 per worker
            assert _value(samples, "service_model_versions_loaded", model="m") == 1
        code = stop(server)
    assert code in (0, -signal.SIGTERM), server.log_tail()
    messages = [json.loads(line)["message"] for line in server.log().splitlines() if line.startswith("{")]
    assert messages.count("Application shutdown complete.") == 2, server.log_tail()
    assert not metrics_dir.exists(), "the multiprocess metrics directory outlived the server"
    assert not [pid for pid in by_worker if os.path.exists(f"/proc/{pid}")], "a worker outlived the server"


def _connect_at_once(port: int, count: int) -> list[socket.socket]:
    """``count`` connections whose handshakes all start within a few hundred microseconds, as a
    client pool opening its connections does."""
    connections = [socket.socket() for _ in range(count)]
    for connection in connections:
        connection.setblocking(False)
    for connection in connections:
        connection.connect_ex(("127.0.0.1", port))
    for connection in connections:
        select.select([], [connection], [], 30)
        connection.setblocking(True)
        connection.settimeout(30)
    return connections


def test_connections_opened_at_once_are_spread_over_the_workers(tmp_path: Path) -> None:
    """Each worker listens on its own SO_REUSEPORT socket. With one shared socket, the worker that
    wakes first accepts every pending connection, and a client pool that connects at once is then
    served by one worker while the other idles."""
    write_model(tmp_path / "models", "m", 1, seed=11)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    body = json.dumps({"instances": images(1, seed=12).tolist()}).encode()
    with live_server(tmp_path / "models", "--workers", "2", env={"TMPDIR": str(tmp)}) as server:
        (metrics_dir,) = tmp.glob("service-metrics-*")
        port = int(server.url.rsplit(":", 1)[1])
        connections = _connect_at_once(port, 32)
        request = (
            f"POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for connection in connections:  # all 32 are connected before any request is sent
            connection.sendall(request)
        for connection in connections:
            assert connection.recv(65536).startswith(b"HTTP/1.1 200"), "a request failed"
            connection.close()
        listeners = _listening_sockets(port)
        server.wait_until(lambda: sum(_requests_by_worker(metrics_dir).values()) == 32, what="32 requests counted")
        by_worker = _requests_by_worker(metrics_dir)
    assert listeners == 2, f"{listeners} listening socket(s) on the port: expected one per worker"
    # the kernel hashes each connection to a worker: fewer than 4 of 32 on one has odds of 3 in a million
    assert len(by_worker) == 2 and min(by_worker.values()) >= 4, by_worker


def _listening_sockets(port: int) -> int:
    """TCP sockets in LISTEN state on ``port`` (IPv4), from /proc/net/tcp."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")

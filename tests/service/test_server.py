"""service.server: the worker rule, the CPU quota, the TCP_NODELAY listening socket and the
settings hand-over to spawned workers. (Starting, two workers and SIGTERM draining are tested
end to end in tests/e2e/test_server_process.py.)"""

from __future__ import annotations

import asyncio
import os
import pickle
import platform
import socket
import subprocess
import sys
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service import server
from service.config import Settings
from service.http_protocol import WholeBodyHttpToolsProtocol, _WholeBodyHttp

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("intra_op_threads", "cores", "workers"),
    [(1, 1, 1), (1, 2, 2), (1, 3, 3), (1, 4, 4), (1, 8, 8), (2, 8, 4), (3, 8, 2), (7, 8, 1), (0, 8, 1), (1, 64, 64)],
)
def test_one_worker_per_core_so_workers_times_threads_fill_the_cores(
    intra_op_threads: int, cores: int, workers: int
) -> None:
    assert server.default_workers(intra_op_threads, cores=cores) == workers
    threads = intra_op_threads or cores
    assert workers * threads <= cores  # never two onnxruntime threads on one core
    assert cores - workers * threads < threads  # and no core left that a worker more would fit on


@pytest.mark.parametrize(
    ("cpus", "cpu_max", "workers"),
    [(1, "max 100000\n", 1), (2, "max 100000\n", 2), (4, "max 100000\n", 4), (8, "200000 100000\n", 2)],
)
def test_default_settings_run_one_worker_per_usable_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpus: int, cpu_max: str, workers: int
) -> None:
    """Affinity mask and cgroup quota (``docker run --cpus 2`` on an 8-core host gives 2) reach the
    default of ``Settings().workers``, with one intra-op and one inter-op thread each."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    (tmp_path / "cpu.max").write_text(cpu_max)
    monkeypatch.setattr(server, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    for name in ("SERVICE_WORKERS", "SERVICE_INTRA_OP_THREADS", "SERVICE_INTER_OP_THREADS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.workers, settings.intra_op_threads, settings.inter_op_threads) == (workers, 1, 1)


@pytest.mark.parametrize(
    ("content", "quota"),
    [("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000\n", 2), ("50000 100000\n", 1), ("junk", None)],
)
def test_cgroup_cpu_quota_rounds_up_to_whole_cores(tmp_path: Path, content: str, quota: int | None) -> None:
    path = tmp_path / "cpu.max"
    path.write_text(content)
    assert server._cgroup_cpu_quota(path) == quota


def test_no_cgroup_file_means_no_quota(tmp_path: Path) -> None:
    assert server._cgroup_cpu_quota(tmp_path / "missing") is None
    assert 1 <= server.usable_cores() <= len(os.sched_getaffinity(0))


def test_connections_accepted_by_the_plain_asyncio_loop_get_tcp_nodelay() -> None:
    """The 44 ms delayed-ACK stall of several workers: asyncio sets TCP_NODELAY only on sockets whose
    proto is IPPROTO_TCP, and uvicorn's own multi-worker socket has proto 0. Ours has it set."""

    async def accepted_nodelay() -> int:
        listener = server.bind_socket("127.0.0.1", 0)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        srv = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(seen, 5)
        writer.close()
        srv.close()
        await srv.wait_closed()
        return value

    assert asyncio.run(accepted_nodelay()) != 0  # asyncio.run: the default loop, not uvloop


def test_a_port_in_use_is_a_startup_failure() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit) as exc:
            server.bind_socket("127.0.0.1", taken.getsockname()[1])
    assert exc.value.code == 3


def test_spawned_workers_rebuild_the_exact_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(repository=tmp_path, port=1234, api_key="secret", cors_origins=["http://a"], batching=True)
    monkeypatch.setenv(server.SETTINGS_ENV, settings.model_dump_json())
    monkeypatch.setenv("SERVICE_PORT", "9999")  # the parent's settings win over the worker's environment
    app = server.app_from_environment()
    assert app.state.settings == settings


def test_uvicorn_gets_the_fast_options() -> None:
    config = server.uvicorn_config(Settings(request_timeout=10), "service.server:app_from_environment")
    assert (config.loop, config.http, config.access_log) == ("uvloop", WholeBodyHttpToolsProtocol, False)
    assert issubclass(_WholeBodyHttp, HttpToolsProtocol)  # uvicorn's httptools protocol underneath
    assert config.ws == "none"  # no websocket routes: an upgrade request is a plain request
    assert config.timeout_graceful_shutdown == 15


_PAGE_FAULTS_OF_LARGE_BUFFERS = """
import resource, sys
from service.server import keep_large_buffers_warm
if sys.argv[1] == "tuned":
    assert keep_large_buffers_warm()
piece = b"x" * (256 * 1024)
def one_request():  # three 3 MB buffers alive at once, as a binary request's body, join and array
    buffers = [piece * 12 for _ in range(3)]
    del buffers
for _ in range(3):
    one_request()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    one_request()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_large_buffers_reuse_their_pages_instead_of_faulting_them_in_per_request() -> None:
    """With glibc's defaults every request's multi-megabyte buffers are mapped afresh and each page
    faults in again (~1500 page faults per 3 buffers of 3 MB); once tuned, the heap keeps them."""

    def page_faults(mode: str) -> int:
        argv = [sys.executable, "-c", _PAGE_FAULTS_OF_LARGE_BUFFERS, mode]
        done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
        return int(done.stdout)

    default, tuned = page_faults("default"), page_faults("tuned")
    assert default > 50 * 1000  # the cost this removes: ~1500 faults per request
    assert tuned < default / 20


@pytest.mark.skipif(not server.spread_connections(2), reason="SO_REUSEPORT balancing is Linux-only")
def test_each_spawned_worker_gets_its_own_listening_socket_on_the_same_port() -> None:
    """uvicorn pickles the parent's sockets into every worker it spawns; a ReusePortSocket arrives
    as a new socket on the same address with SO_REUSEPORT, so each worker has its own accept queue."""
    parent = server.bind_socket("127.0.0.1", 0, reuse_port=True)
    with parent:
        worker = pickle.loads(ForkingPickler.dumps(parent))  # what multiprocessing's spawn does
        with worker:
            assert worker.getsockname() == parent.getsockname()
            assert os.fstat(worker.fileno()).st_ino != os.fstat(parent.fileno()).st_ino  # not a duplicate
            assert worker.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            assert worker.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            worker.listen()
            with socket.create_connection(parent.getsockname(), timeout=5):
                accepted, _ = worker.accept()  # the parent never listens: connections reach the worker
                accepted.close()


def test_one_worker_or_another_system_keeps_the_shared_socket() -> None:
    assert not server.spread_connections(1)
    assert type(server.bind_socket("127.0.0.1", 0)) is socket.socket


def test_a_port_in_use_is_a_startup_failure_with_several_workers_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """SO_REUSEPORT would let a second copy of the service share the port of a running one; the
    plain bind first makes that a startup failure, as with one worker."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # even a reuse-port listener
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = Settings(host="127.0.0.1", port=taken.getsockname()[1], workers=2)
        monkeypatch.setattr(server, "_run_workers", lambda *a: pytest.fail("workers started on a taken port"))
        with pytest.raises(SystemExit) as exc:
            server.serve(settings)
    assert exc.value.code == 3

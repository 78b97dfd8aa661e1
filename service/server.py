"""Run the service under uvicorn the fast way: ``serve(settings)``.

What this module guarantees, and why (numbers: ``docs/performance.md``):

- uvloop + httptools. They are uvicorn's fastest loop and HTTP parser; on these machines they
  serve a FastAPI app 1.3-1.6x faster than asyncio + h11.
- TCP_NODELAY on every accepted connection, with any loop and any worker count. uvicorn binds
  the socket itself when ``workers > 1`` and creates it with ``proto=0``; asyncio then skips
  TCP_NODELAY on accepted sockets (it only sets it when ``proto == IPPROTO_TCP``), and every
  response written in two pieces waits ~44 ms for the client's delayed ACK (23 requests/s at one
  client). We bind the listening socket ourselves with ``IPPROTO_TCP`` and TCP_NODELAY set on it
  (Linux copies it to accepted sockets), so the cliff cannot happen even without uvloop.
- No uvicorn access log and no uvicorn logging config: ``service.logs.configure_logging`` sends
  the service's and uvicorn's loggers to stdout as JSON (or text); the service's middleware logs
  failed requests (and every request at debug level).
- glibc malloc keeps large freed buffers (``keep_large_buffers_warm``). Every 1000-image binary
  request allocates the same few megabytes (the body, the arrays made from it); with glibc's
  defaults they were mapped fresh each time and every page faulted in again (12% of a worker's
  CPU in ``perf``). Serving them from the heap and trimming it only past 64 MiB cut the server CPU
  per such request from 6.6 to 4.7 ms.
- Graceful shutdown: on SIGTERM/SIGINT uvicorn stops accepting, lets in-flight requests finish
  (at most ``request_timeout`` + 5 s) and then runs the app's lifespan shutdown, which drains
  the model registry and any batcher.
- Workers: ``settings.workers`` processes listen on one address, each (on Linux) on its own
  SO_REUSEPORT socket so the kernel spreads connections over them (``ReusePortSocket``). Each
  worker is a full copy of the app (its own onnxruntime sessions and repository poller); with more than one, the
  settings reach the spawned workers as JSON in an environment variable, because uvicorn can only
  start workers from an import string.
- One metrics view over all workers: with more than one worker, ``serve`` creates a private
  temporary directory for Prometheus multiprocess mode before spawning them, every worker records
  into it, and ``/metrics`` in any worker sums them all; the directory is removed at shutdown.
  With one worker the app keeps its own in-memory registry.

The worker/thread rule (``default_workers``): one worker per core, each with one onnxruntime
intra-op thread (and one inter-op thread): ``workers = max(1, cores // intra_op_threads)`` with
``cores`` = the CPUs this process may use (affinity mask and cgroup CPU quota), so workers x
intra-op threads == cores and workers never fight over cores. With ``intra_op_threads = 1``,
onnxruntime runs on the calling thread (no spinning pool), so a worker's event loop and its
inferences share its core. ``intra_op_threads = 0`` (onnxruntime's default, one per core) gives
one worker. Measured on 2 cores (docs/performance.md): 2 workers are as fast as 1 up to 8
connections and x1.4-2.1 at 64, where one event loop is the bottleneck.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import platform
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from service.config import Settings
from service.http_protocol import WholeBodyHttpToolsProtocol
from service.logs import configure_logging
from service.metrics import MULTIPROC_DIR_ENV, use_process_mode

logger = logging.getLogger("service.server")

# Spawned workers rebuild the parent's exact Settings from this variable (JSON, not pickle: an
# environment variable must never be able to run code).
SETTINGS_ENV = "DEPLOY_ANYWHERE_SERVE_SETTINGS"
_GRACE_SECONDS = 5
# glibc mallopt parameters: allocations below the mmap threshold come from the heap, and the heap is
# returned to the kernel only when more than the trim threshold is free at its top.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's own ceiling for its dynamic threshold
_TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "<quota> <period>" or "max <period>"


def usable_cores() -> int:
    """CPUs this process may really use: the affinity mask, capped by a cgroup v2 CPU quota
    (``docker run --cpus 2`` leaves all host CPUs in the mask but only 2 cores of time)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpu_quota(CGROUP_CPU_MAX)
    return max(1, min(cores, quota) if quota else cores)


def _cgroup_cpu_quota(path: Path) -> int | None:
    try:
        limit, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return max(1, math.ceil(int(limit) / int(period)))


def default_workers(intra_op_threads: int = 1, cores: int | None = None) -> int:
    """The worker rule of the module docstring: as many workers as the cores hold their onnxruntime
    intra-op threads (``0`` means onnxruntime's default of one thread per core: one worker)."""
    cores = cores if cores is not None else usable_cores()
    threads = intra_op_threads if intra_op_threads > 0 else cores
    return max(1, cores // threads)


def keep_large_buffers_warm() -> bool:
    """Make glibc serve buffers below 32 MiB from the heap and keep up to 64 MiB of it when freed,
    so the request bodies and arrays of large batches reuse pages instead of faulting in new ones
    on every request. Returns False (and changes nothing) on another C library."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    )


def app_from_environment() -> FastAPI:
    """uvicorn factory for spawned workers: the app for the settings ``serve`` exported."""
    from service.app import create_app

    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    keep_large_buffers_warm()
    configure_logging(settings.log_level, settings.log_format)  # a spawned worker starts with no handlers
    directory = os.environ.get(MULTIPROC_DIR_ENV)  # set by serve() for its workers
    metrics_dir = Path(directory) if directory else None
    use_process_mode(metrics_dir)  # before create_app makes any metric
    return create_app(settings, metrics_dir)


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound TCP socket whose accepted connections have TCP_NODELAY, whatever the loop; with
    ``reuse_port``, a ``ReusePortSocket`` (SO_REUSEPORT set) that every worker reopens for itself."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = (ReusePortSocket if reuse_port else socket.socket)(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        logger.error("cannot listen on %s:%s: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    sock.set_inheritable(True)
    return sock


class ReusePortSocket(socket.socket):
    """The listening address of several workers, which each worker opens for itself (Linux).

    uvicorn's supervisor pickles the sockets it is given into every worker it spawns (and into
    replacements). A plain socket arrives as a duplicate of the parent's: one accept queue for all
    workers, where the worker that wakes first accepts every pending connection (4 clients
    connecting at once all landed on one of 2 workers, which then served them alone). This one
    arrives as a new socket bound to the same address with SO_REUSEPORT: each worker listens on
    its own queue and the kernel spreads new connections over them. The parent's socket stays
    bound but never listens, so it holds the port and receives nothing.
    """

    def __reduce__(self) -> tuple[Callable[..., socket.socket], tuple[str, int]]:
        host, port = self.getsockname()[:2]
        return _reopen_for_worker, (host, port)


def _reopen_for_worker(host: str, port: int) -> socket.socket:
    return bind_socket(host, port, reuse_port=True)


def spread_connections(workers: int) -> bool:
    """Give each worker its own accept queue: with several workers, where the kernel balances
    SO_REUSEPORT listeners (Linux; elsewhere the last one bound would get every connection)."""
    return workers > 1 and sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def uvicorn_config(settings: Settings, app: str | Callable[[], FastAPI]) -> uvicorn.Config:
    """The uvicorn options every deployment gets (the benchmark uses the same)."""
    return uvicorn.Config(
        app,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        # httptools, with a known-length body read in one piece (a BufferedProtocol, which uvicorn's
        # annotation does not list but its server runs like any protocol)
        http=WholeBodyHttpToolsProtocol,  # type: ignore[arg-type]
        ws="none",  # no websocket routes
        lifespan="on",
        access_log=False,
        log_config=None,  # service.logs.configure_logging owns the handlers (JSON or text)
        log_level=settings.log_level,
        server_header=False,
        timeout_graceful_shutdown=int(settings.request_timeout) + _GRACE_SECONDS,
    )


def serve(settings: Settings) -> None:
    """Serve ``create_app(settings)`` until SIGTERM/SIGINT; exit with status 3 if it cannot start."""
    configure_logging(settings.log_level, settings.log_format)
    sock = bind_socket(settings.host, settings.port)  # a plain bind fails if anything holds the port
    host, port = sock.getsockname()[:2]
    if spread_connections(settings.workers):
        sock.close()
        sock = bind_socket(host, port, reuse_port=True)
    logger.info("Serving on http://%s:%d with %d worker(s)", host, port, settings.workers)
    try:
        if settings.workers > 1:
            _run_workers(settings, sock)
        else:
            _run_one(settings, sock)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def _run_one(settings: Settings, sock: socket.socket) -> None:
    from service.app import create_app

    use_process_mode(None)  # the app's in-memory registry, whatever PROMETHEUS_MULTIPROC_DIR says
    keep_large_buffers_warm()
    server = uvicorn.Server(uvicorn_config(settings, lambda: create_app(settings)))
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _run_workers(settings: Settings, sock: socket.socket) -> None:
    """uvicorn's supervisor and ``settings.workers`` spawned workers, recording metrics into one
    fresh directory (mkdtemp: mode 0700) that is removed once they have all exited."""
    metrics_dir = Path(tempfile.mkdtemp(prefix="service-metrics-"))
    try:
        use_process_mode(metrics_dir)  # exported in the environment the workers inherit
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        Multiprocess(uvicorn_config(settings, f"{__name__}:app_from_environment"), sockets=[sock]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)

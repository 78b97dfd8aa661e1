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
  the service's and uvicorn's loggers to stderr as JSON (or text); the service's middleware logs
  failed requests (and every request at debug level).
- Graceful shutdown: on SIGTERM/SIGINT uvicorn stops accepting, lets in-flight requests finish
  (at most ``request_timeout`` + 5 s) and then runs the app's lifespan shutdown, which drains
  the model registry and any batcher.
- Workers: ``settings.workers`` processes share the one listening socket. Each worker is a full
  copy of the app (its own onnxruntime sessions, metrics registry and repository poller); with
  more than one, the settings reach the spawned workers as JSON in an environment variable,
  because uvicorn can only start workers from an import string.

The worker/thread rule (``default_workers``): a worker needs one core for its event loop (JSON
parsing, routing: most of the time of a one-image request) and ``intra_op_threads`` cores for
onnxruntime, whose pool spins; so ``workers = max(1, cores // (1 + intra_op_threads))`` with
``cores`` = the CPUs this process may use (affinity mask and cgroup CPU quota). With the default
``intra_op_threads = 1`` that is one worker on 2 cores and four on 8; workers x threads never
exceed the cores, so workers never fight over them. Measured on 2 cores (docs/performance.md):
a second worker is noise up to 8 connections and x1.4-2.1 at 64 with batching on, where one
event loop is the bottleneck and wrk leaves a core idle; it is not the default there because each
worker has its own metrics registry (a scrape sees one worker) and its own model copies.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from service.config import Settings
from service.logs import configure_logging

logger = logging.getLogger("service.server")

# Spawned workers rebuild the parent's exact Settings from this variable (JSON, not pickle: an
# environment variable must never be able to run code).
SETTINGS_ENV = "DEPLOY_ANYWHERE_SERVE_SETTINGS"
_GRACE_SECONDS = 5


def usable_cores() -> int:
    """CPUs this process may really use: the affinity mask, capped by a cgroup v2 CPU quota
    (``docker run --cpus 2`` leaves all host CPUs in the mask but only 2 cores of time)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpu_quota(Path("/sys/fs/cgroup/cpu.max"))
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
    """The worker rule of the module docstring: one core per worker's event loop plus its
    onnxruntime intra-op threads (``0`` means onnxruntime's default of one thread per core)."""
    cores = cores if cores is not None else usable_cores()
    threads = intra_op_threads if intra_op_threads > 0 else cores
    return max(1, cores // (1 + threads))


def app_from_environment() -> FastAPI:
    """uvicorn factory for spawned workers: the app for the settings ``serve`` exported."""
    from service.app import create_app

    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings.log_level, settings.log_format)  # a spawned worker starts with no handlers
    return create_app(settings)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose accepted connections have TCP_NODELAY, whatever the loop."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        logger.error("cannot listen on %s:%s: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    sock.set_inheritable(True)
    return sock


def uvicorn_config(settings: Settings, app: str | Callable[[], FastAPI]) -> uvicorn.Config:
    """The uvicorn options every deployment gets (the benchmark uses the same)."""
    return uvicorn.Config(
        app,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,  # service.logs.configure_logging owns the handlers (JSON or text)
        log_level=settings.log_level,
        server_header=False,
        timeout_graceful_shutdown=int(settings.request_timeout) + _GRACE_SECONDS,
    )


def serve(settings: Settings) -> None:
    """Serve ``create_app(settings)`` until SIGTERM/SIGINT; exit with status 3 if it cannot start."""
    from service.app import create_app

    configure_logging(settings.log_level, settings.log_format)
    if settings.workers > 1:
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        config = uvicorn_config(settings, f"{__name__}:app_from_environment")
    else:
        config = uvicorn_config(settings, lambda: create_app(settings))
    sock = bind_socket(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    logger.info("Serving on http://%s:%d with %d worker(s)", host, port, settings.workers)
    try:
        if settings.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
            return
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
        if not server.started:
            sys.exit(STARTUP_FAILURE)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()

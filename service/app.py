"""``create_app(settings)``: the FastAPI app, with the model registry loaded in its lifespan.

No global state: each app has its own registry, metrics and thread pool, so tests can build
as many as they like. The repository is loaded in the background, so ``/v2/health/live``
answers at once and ``/v2/health/ready`` turns 200 when every version has been loaded and
warmed up (or rejected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware

from contracts import PRODUCER_VERSION
from service.config import Settings
from service.dataplane import DataPlane
from service.handlers import install_error_handlers
from service.hotpath import HotPath
from service.metrics import Metrics
from service.middleware import RequestIds, ServiceMiddleware
from service.openapi import without_422
from service.registry import Registry
from service.routes import api, images, monitoring, tfserving, v2
from service.runtime import RuntimeOptions
from service.ui import mount_ui
from service.workers import WorkerReadiness

log = logging.getLogger("service.app")
DESCRIPTION = (
    "Serves every ONNX model of a model repository over TensorFlow Serving's REST API and the Open "
    'Inference Protocol (KServe V2), with hot-reloaded versions. Errors are `{"error": "..."}`.'
)


async def _keep_loaded(registry: Registry, poll_interval: float, readiness: WorkerReadiness) -> None:
    try:
        await registry.scan()
    except Exception:
        log.exception("initial repository scan failed")
    if registry.ready:
        readiness.mark()
    if poll_interval > 0:
        await registry.poll(poll_interval)


def _document_errors_as_400(app: FastAPI) -> None:
    build = app.openapi

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = without_422(build())
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]


def create_app(settings: Settings | None = None, metrics_dir: Path | None = None) -> FastAPI:
    """``metrics_dir``: the Prometheus multiprocess directory shared by the workers of one server
    (``service.server.serve``); ``None``, as in tests: the app's own in-memory registry."""
    settings = settings or Settings()
    metrics = Metrics(metrics_dir)
    registry = Registry(settings.repository, RuntimeOptions(settings.intra_op_threads, settings.inter_op_threads))
    dataplane = DataPlane(registry, settings, metrics)
    registry.listen(dataplane.on_change)
    readiness = WorkerReadiness(metrics_dir, settings.workers)  # the workers of one server share the directory

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("loading the model repository", extra={"repository": str(settings.repository)})
        loader = asyncio.create_task(_keep_loaded(registry, settings.poll_interval, readiness))
        try:
            yield
        finally:
            loader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loader
            await dataplane.close()
            await registry.close()
            metrics.flush()  # the last buffered observations, before the worker exits

    # FastAPIOffline: /docs and /redoc with Swagger UI and ReDoc served from the installed package
    # (the service often runs where a CDN is unreachable: containers, clusters)
    app = FastAPIOffline(
        static_url="/docs-assets",
        title="deploy-anywhere service",
        version=PRODUCER_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's OpenTelemetry hook checks providers on every request; we export Prometheus metrics
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.registry = registry
    app.state.dataplane = dataplane
    app.state.readiness = readiness
    install_error_handlers(app)
    _document_errors_as_400(app)
    for router in (tfserving.hot, v2.hot, v2.router, tfserving.router, images.router, api.router):
        app.include_router(router)
    app.include_router(monitoring.router)
    mount_ui(app, settings)
    ids = RequestIds()
    app.add_middleware(ServiceMiddleware, settings=settings, metrics=metrics, dataplane=dataplane, ids=ids)
    if settings.cors_origins:  # outside ServiceMiddleware: preflights and 401s get CORS headers too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["x-request-id", "inference-header-content-length"],
        )
    if settings.hot_path:  # outermost of ours (added last): it answers its requests completely
        app.add_middleware(HotPath, plane=dataplane, settings=settings, metrics=metrics, ids=ids)
    return app

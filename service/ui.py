"""The web page: ``/`` serves it, ``/ui/`` its static files, ``/ui/ort/`` the onnxruntime-web runtime.

The page (``service/static/``) is plain HTML/CSS/JS with no build step. It runs the same model
in the browser with onnxruntime-web, which the service serves from the pinned npm install
(``settings.ort_web_dir``) so the page works offline and never loads code from a CDN. Without
that folder the REST half of the page still works and the page says the browser runtime is
unavailable.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from service.config import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The file the page imports from /ui/ort/; its presence is what "runtime available" means.
ORT_ENTRY = "ort.wasm.min.mjs"

logger = logging.getLogger("service.ui")

# ES modules must be served as JavaScript and WebAssembly as application/wasm (streaming
# compilation); minimal container images may lack /etc/mime.types, so do not rely on it.
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("application/wasm", ".wasm")


def mount_ui(app: FastAPI, settings: Settings) -> None:
    """Add the page routes to ``app``; none of them appears in the OpenAPI schema."""
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        # no-cache: revalidate, so a new page and a new app.js arrive together after an upgrade.
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    ort_dir = Path(settings.ort_web_dir)
    # Mount /ui/ort before /ui: Starlette matches mounts in order and /ui would swallow it.
    if (ort_dir / ORT_ENTRY).is_file():
        app.mount("/ui/ort", StaticFiles(directory=ort_dir), name="ui-ort")
    else:
        logger.warning(
            "onnxruntime-web not found at %s (no %s): the page will only use the REST API; "
            "run `npm ci` in the project root or set SERVICE_ORT_WEB_DIR",
            ort_dir,
            ORT_ENTRY,
        )
        message = f"onnxruntime-web is not installed on the server (looked in {ort_dir}); run `npm ci`"

        @app.get("/ui/ort/{path:path}", include_in_schema=False)
        async def ort_missing(path: str) -> JSONResponse:
            return JSONResponse({"error": message}, status_code=404)

    app.mount("/ui", StaticFiles(directory=STATIC_DIR), name="ui")

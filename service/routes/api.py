"""The project's own API for the web page and tooling: the models with their versions and files,
and a download of any file of a version (the ONNX, int8 and ORT variants, manifest, model card)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from service import openapi
from service.dataplane import parse_version
from service.errors import ModelNotFoundError
from service.registry import ModelEntry, ModelVersion
from service.routes.common import FileName, Name, Version, dataplane, json_response

router = APIRouter(tags=["Project API"])


def _files(folder: Path) -> list[str]:
    try:
        # exactly what download() serves: plain files, no dot files, no symlinks
        return sorted(p.name for p in folder.iterdir() if _downloadable(p))
    except OSError:
        return []


def _downloadable(path: Path) -> bool:
    return not path.name.startswith(".") and not path.is_symlink() and path.is_file()


def _version(version: ModelVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "state": version.state.value,
        "error": version.error,
        "files": _files(version.path),
    }


def _model(entry: ModelEntry) -> dict[str, Any]:
    default = entry.default
    runtime = default.runtime if default else None
    return {
        "name": entry.name,
        "default_version": default.version if default else None,
        "labels": list(runtime.labels) if runtime else [],
        "input_shape": runtime.inputs[0].wire_shape[1:] if runtime else [],
        "versions": [_version(v) for v in sorted(entry.versions.values(), key=lambda v: -v.version)],
    }


_MODELS_EXAMPLE = {
    "models": [
        {
            "name": "mnist",
            "default_version": 1,
            "labels": [str(i) for i in range(10)],
            "input_shape": [28, 28],
            "versions": [
                {"version": 1, "state": "AVAILABLE", "error": "", "files": ["README.md", "manifest.json", "model.onnx"]}
            ],
        }
    ]
}


@router.get(
    "/api/models",
    summary="Every model with its default version, labels, input shape and versions (state, error, files)",
    responses={200: {"content": {"application/json": {"example": _MODELS_EXAMPLE}}}, **openapi.errors(401)},
)
async def models(request: Request) -> Response:
    snapshot = dataplane(request).registry.models
    return json_response({"models": [_model(snapshot[name]) for name in sorted(snapshot)]})


@router.get(
    "/api/models/{name}/versions/{version}/files/{filename}",
    summary="Download one file of a model version (e.g. model.onnx, model.ort, manifest.json)",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **openapi.errors(400, 401, 404)},
)
async def download(request: Request, name: Name, version: Version, filename: FileName) -> FileResponse:
    entry = dataplane(request).entry(name)
    found = entry.versions.get(parse_version(version))
    if found is None:
        raise ModelNotFoundError.version(name, version, entry.versions)
    # one plain file directly inside the version folder: no dot files, no links out of it
    path = found.path / filename
    if "/" in filename or "\\" in filename or not _downloadable(path):
        raise ModelNotFoundError(
            f"model {name!r} version {version} has no file {filename!r}; files: {_files(found.path)}"
        )
    return FileResponse(path, filename=filename)

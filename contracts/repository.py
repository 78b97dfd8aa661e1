"""Exporter -> service contract: the model repository, laid out as TF Serving and Triton expect.

    <root>/<name>/config.pbtxt              Triton config (onnxruntime backend)
    <root>/<name>/<version>/model.onnx      float32 reference model
    <root>/<name>/<version>/model.int8.onnx int8 variant
    <root>/<name>/<version>/model.ort       ORT format for onnxruntime mobile
    <root>/<name>/<version>/manifest.json   files (sha256, size), metrics, checks
    <root>/<name>/<version>/README.md       model card

Versions are positive integers. A version folder appears atomically (written under a dotted
temporary name, then renamed), so scanners skip names that start with a dot.
"""

from __future__ import annotations

import re
from pathlib import Path

CONFIG_PBTXT = "config.pbtxt"
MODEL_ONNX = "model.onnx"
INT8_ONNX = "model.int8.onnx"
MODEL_ORT = "model.ort"
MANIFEST_JSON = "manifest.json"
MODEL_CARD = "README.md"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION = re.compile(r"^[1-9][0-9]{0,17}$")


class RepositoryError(ValueError):
    """A model name or version that cannot be part of the repository."""


def validate_model_name(name: str) -> str:
    """Model names are one path segment: letters, digits, ``_ . -``; never ``..`` or a slash."""
    if not _NAME.match(name) or ".." in name:
        raise RepositoryError(
            f"invalid model name {name!r}: expected 1-64 characters of letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name


def model_dir(root: str | Path, name: str) -> Path:
    return Path(root) / validate_model_name(name)


def version_dir(root: str | Path, name: str, version: int) -> Path:
    if version < 1:
        raise RepositoryError(f"invalid version {version}: versions are positive integers")
    return model_dir(root, name) / str(version)


def list_models(root: str | Path) -> list[str]:
    """Names of the model folders under ``root`` (sorted); hidden and invalid names are skipped."""
    base = Path(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and _NAME.match(p.name) and ".." not in p.name)


def list_versions(folder: str | Path) -> list[int]:
    """Version numbers present in a model folder, ascending; temporary (dotted) folders skipped."""
    base = Path(folder)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and _VERSION.match(p.name))


def next_version(folder: str | Path) -> int:
    versions = list_versions(folder)
    return versions[-1] + 1 if versions else 1

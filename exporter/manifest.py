"""``manifest.json``: what a version folder holds and the evidence that it is right.

Written last, so its ``files`` table (sha256 and size of every other file) covers the final
bytes; a reader can verify a copy of the folder against it (``verify_files``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from contracts import MANIFEST_JSON, atomic_write_text

MANIFEST_SCHEMA_VERSION = 1


def file_table(folder: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of each file in ``folder`` (recursively, names relative), the manifest excluded."""
    return {
        path.relative_to(folder).as_posix(): {"sha256": sha256(path), "bytes": path.stat().st_size}
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_JSON
    }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, content: dict[str, Any]) -> dict[str, Any]:
    manifest = {"schema_version": MANIFEST_SCHEMA_VERSION, **content, "files": file_table(folder)}
    atomic_write_text(folder / MANIFEST_JSON, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / MANIFEST_JSON).read_text(encoding="utf-8"))
    return data


def verify_files(folder: Path) -> list[str]:
    """Names of files whose size or sha256 no longer match the manifest (missing ones included)."""
    expected = read_manifest(folder)["files"]
    actual = file_table(folder)
    return sorted(name for name, entry in expected.items() if actual.get(name) != entry)

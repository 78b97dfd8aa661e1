"""The import graph is a star around `contracts`: the service never imports trainer or exporter,
and contracts imports none of the parts (so the service image stays lean)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("contracts", "trainer", "exporter", "service")
FORBIDDEN = {
    "contracts": {"trainer", "exporter", "service", "onnx", "onnxruntime", "fastapi"},
    "trainer": {"exporter", "service", "onnx", "onnxruntime", "fastapi"},
    "exporter": {"service", "fastapi"},
    "service": {"trainer", "exporter", "torch", "tensorflow"},
}


def imported_roots(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", PARTS)
def test_package_imports_respect_the_star(package: str) -> None:
    imports = imported_roots(package)
    bad = {name: sorted(files) for name, files in imports.items() if name in FORBIDDEN[package]}
    assert not bad, f"{package} must not import {sorted(bad)}: {bad}"

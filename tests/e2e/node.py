"""Node.js and the pinned npm packages, for the tests marked ``node``.

Without them the tests skip with the reason, or fail when ``REQUIRE_NODE=1`` (CI installs both),
so a missing runtime never passes silently.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
PACKAGES = ("onnxruntime-node", "onnxruntime-web")


def require_node(*packages: str) -> str:
    """The node executable; skip (or fail with REQUIRE_NODE=1) if it or a needed npm package is missing."""
    reason = None
    node = shutil.which("node")
    missing = [p for p in packages if not (NODE_MODULES / p).is_dir()]
    if node is None:
        reason = "node is not installed (Node.js 20+: apt-get install nodejs npm)"
    elif missing:
        reason = f"{', '.join(missing)} not installed in {NODE_MODULES}: run `npm ci`"
    if reason:
        if os.environ.get("REQUIRE_NODE") == "1":
            pytest.fail(reason + "; REQUIRE_NODE=1 makes this an error")
        pytest.skip(reason)
    assert node is not None
    return node

"""Graph optimisation of large models in a child process, so a hot reload does not freeze the server.

``onnxruntime.InferenceSession(...)`` holds the GIL while it builds and optimises the graph (measured:
a 1.4 s optimisation kept the event loop from running for 1.4 s, although the load runs in a worker
thread). For a model above ``CHILD_OPTIMIZE_BYTES`` the optimisation runs in a child process that
writes the optimised graph to a temporary file; the server then loads that file with optimisations
off, which is mostly parsing. Small models (ours are ~0.4 MB and load in milliseconds) skip this.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("service.registry")
CHILD_OPTIMIZE_BYTES = 8 * 1024 * 1024
_TIMEOUT_SECONDS = 600
_SCRIPT = """
import sys, onnxruntime as ort
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.optimized_model_filepath = sys.argv[2]
ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
"""


@contextlib.contextmanager
def optimized_copy(path: Path) -> Iterator[Path | None]:
    """Yield an optimised copy of a large model (deleted afterwards), or None: load ``path`` as usual."""
    if path.stat().st_size <= CHILD_OPTIMIZE_BYTES:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="service-optimized-"))
    target = folder / path.name
    try:
        result = subprocess.run(
            [sys.executable, "-c", _SCRIPT, str(path), str(target)],
            capture_output=True,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0 or not target.is_file():
            # let the in-process load produce the real error message
            log.warning("child-process optimisation failed; loading in-process", extra={"path": str(path)})
            yield None
        else:
            yield target
    except subprocess.TimeoutExpired:
        yield None
    finally:
        shutil.rmtree(folder, ignore_errors=True)

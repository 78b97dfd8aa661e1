"""Server-wide readiness when several worker processes share the port.

Each worker loads the whole repository itself, and a probe reaches whichever worker accepts it;
without this, ``/v2/health/ready`` could answer 200 from a loaded worker while another one still
answers 503 to predictions. So a worker that has loaded its repository leaves a marker file
``ready_<pid>`` in the directory the workers share (the Prometheus multiprocess directory that
``service.server.serve`` creates), and a worker reports ready only when it is itself and the
markers of ``workers`` live processes exist. A worker that uvicorn starts to replace a dead one
therefore keeps the server not-ready until it has loaded, too. One worker: its own registry decides.
"""

from __future__ import annotations

import os
from pathlib import Path


class WorkerReadiness:
    def __init__(self, directory: Path | None, workers: int) -> None:
        self.directory = directory
        self.workers = workers
        self._marked = False

    def mark(self) -> None:
        """This worker has loaded (or rejected) every version of its first repository scan."""
        if self.directory is not None and not self._marked:
            (self.directory / f"ready_{os.getpid()}").touch()
            self._marked = True

    def ready(self, registry_ready: bool) -> bool:
        if not registry_ready:
            return False
        if self.directory is None:
            return True
        self.mark()  # a worker whose first scan failed and a later poll succeeded marks itself here
        return sum(_alive(int(path.name.split("_", 1)[1])) for path in self.directory.glob("ready_*")) >= self.workers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    return True

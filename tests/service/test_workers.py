"""service.workers: with several workers, ready only when every live worker has loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.workers import WorkerReadiness


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_one_worker_follows_its_registry() -> None:
    readiness = WorkerReadiness(None, 1)
    assert readiness.ready(True) and not readiness.ready(False)


def test_ready_once_as_many_live_workers_as_the_server_runs_have_loaded(tmp_path: Path) -> None:
    readiness = WorkerReadiness(tmp_path, 2)
    assert not readiness.ready(False)
    assert not list(tmp_path.iterdir())  # not loaded: no marker
    assert not readiness.ready(True)  # this worker is, the other is not
    assert (tmp_path / f"ready_{os.getpid()}").exists()
    (tmp_path / f"ready_{_dead_pid()}").touch()  # a worker that died does not count
    assert not readiness.ready(True)
    (tmp_path / f"ready_{os.getppid()}").touch()  # a live one does
    assert readiness.ready(True)
    assert not readiness.ready(False)  # and this worker's own registry still decides for itself

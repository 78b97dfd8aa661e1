"""service.metrics' two process modes, each in a fresh interpreter (the mode is process-wide):
in memory whatever ``PROMETHEUS_MULTIPROC_DIR`` held when prometheus_client was imported, and
multiprocess files summed over every process that wrote them. (Two real workers: e2e
tests/e2e/test_workers_metrics.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINE = 'service_requests_total{code="200",model="m",protocol="v2",version="1"}'


def _python(code: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_one_process_counts_in_memory_even_if_the_environment_says_multiprocess(tmp_path: Path) -> None:
    stale = tmp_path / "not-there"  # prometheus_client would fail to open its files here
    out = _python(
        """
        import prometheus_client  # imported first, while PROMETHEUS_MULTIPROC_DIR is set
        from service.metrics import Metrics, use_process_mode
        use_process_mode(None)
        metrics = Metrics()
        metrics.observe_request("m", "1", "v2", 200, 0.001)
        print(metrics.render().decode())
        """,
        {"PROMETHEUS_MULTIPROC_DIR": str(stale)},
    )
    assert f"{LINE} 1.0" in out
    assert not stale.exists()


def test_multiprocess_mode_sums_every_process_and_needs_the_switch_first(tmp_path: Path) -> None:
    record = """
        from pathlib import Path
        from service.metrics import Metrics, use_process_mode
        directory = Path("{dir}")
        use_process_mode(directory)
        metrics = Metrics(directory)
        for _ in range({n}):
            metrics.observe_request("m", "1", "v2", 200, 0.001)
        metrics.loaded.labels("m").set(2)
        print(metrics.render().decode())
        """
    _python(record.format(dir=tmp_path, n=3), {})
    out = _python(record.format(dir=tmp_path, n=4), {})
    assert f"{LINE} 7.0" in out
    # both writers have exited: the live-gauge files of dead processes are dropped at the scrape
    assert 'service_model_versions_loaded{model="m"} 2.0' in out
    refused = _python(
        f"""
        from pathlib import Path
        from service.metrics import Metrics
        try:
            Metrics(Path({str(tmp_path)!r}))
        except RuntimeError as e:
            print(e)
        """,
        {},
    )
    assert "use_process_mode" in refused

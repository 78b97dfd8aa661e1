"""A/B of the service between two checkouts: both served at once, wrk alternating between them.

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/serve_ab.py /tmp/before . [--rounds 4] [--workers N]

A change that moves CPU per request by 5% is invisible between two bench runs minutes apart on
these shared machines; interleaving the two versions round by round, with the same model and
bodies, shows it. Prints medians over rounds of images/s, p99 and server CPU per request for
1000-image V2 binary requests (1 and 4 connections) and one-image TF predicts (1 and 64), and
exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from serving.payloads import Body, build_repository, write_payloads  # noqa: E402
from serving.targets import free_port  # noqa: E402
from serving.wrk import Scenario, WrkResult, run_wrk  # noqa: E402


def start(checkout: Path, repository: Path, workers: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env.update(SERVICE_REPOSITORY=str(repository), SERVICE_PORT=str(port), SERVICE_LOG_LEVEL="warning")
    env["PYTHONPATH"] = str(checkout.resolve())
    if workers:
        env["SERVICE_WORKERS"] = workers
    process = subprocess.Popen([sys.executable, "-m", "service"], env=env, cwd=checkout)
    return process, port


def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the service on port {port} did not get ready in {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="checkout A (e.g. a git worktree of the commit before)")
    parser.add_argument("b", type=Path, help="checkout B")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    parser.add_argument("--workers", help="SERVICE_WORKERS for both (default: the service's own default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serve-ab-") as tmp:
        model = build_repository(Path(tmp) / "models")
        payloads = write_payloads(Path(tmp) / "bodies")
        servers = {str(c): start(c, model.parents[2], args.workers) for c in (args.a, args.b)}
        try:
            for _, port in servers.values():
                wait_ready(port)
            runs: list[tuple[str, str, int, Body, int]] = [
                ("V2 binary x1000", payloads.v2_path, c, payloads.binary, 1000) for c in (1, 4)
            ] + [("TF instances", payloads.tf_path, c, payloads.tf, 1) for c in (1, 64)]
            results: dict[tuple[str, int, str], list[WrkResult]] = {}
            for _ in range(args.rounds):
                for request, path, conns, body, rows in runs:
                    for name, (process, port) in servers.items():
                        scenario = Scenario(name, request, f"http://127.0.0.1:{port}{path}", conns, body, rows)
                        result = run_wrk(scenario, duration=args.duration, server_pid=process.pid)
                        results.setdefault((request, conns, name), []).append(result)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(30)
    for (request, conns, name), rs in results.items():
        images = statistics.median(r.images_per_second for r in rs)
        p99, cpu = statistics.median(r.p99_ms for r in rs), statistics.median(r.cpu_us for r in rs)
        print(
            f"{request:16} {conns:3} conns  {name:30} images/s {images:>10,.0f}  p99 {p99:6.2f} ms  CPU {cpu:7,.0f} us"
        )
    errors = sum(r.errors for rs in results.values() for r in rs)
    if errors:
        print(f"FAILED: {errors} request(s) failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""A/B of the service between two checkouts: both served at once, wrk alternating between them.

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/serve_ab.py /tmp/before . [--rounds 4] [--workers N]

A change that moves CPU per request by 5% is invisible between two bench runs minutes apart on
these shared machines; interleaving the two versions round by round, with the same model and
bodies, shows it. Prints medians over rounds of images/s, p50, p99 and server CPU per request for
1000-image V2 binary requests (1 and 4 connections), one-image TF predicts (1 and 64) and V2
JSON infers (1), with FastAPI hello world at one connection in the same rounds for the p50 ratio
of goal 3; exits 1 if any request failed.
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
from serving.targets import free_port, start_hello  # noqa: E402
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


def wait_ready(port: int, path: str = "/v2/health/ready", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the service on port {port} did not get ready in {timeout:.0f} s")


def rows_of(request: str) -> int:
    return 1000 if request == "V2 binary x1000" else 1


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
        hello = start_hello(Path(tmp), model)
        servers["hello world"] = (hello.process, hello.port)
        try:
            for name, (_, port) in servers.items():
                wait_ready(port, "/" if name == "hello world" else "/v2/health/ready")
            runs: list[tuple[str, str, int, Body | None, int]] = [
                ("V2 binary x1000", payloads.v2_path, 1, payloads.binary, 1000),
                ("V2 binary x1000", payloads.v2_path, 4, payloads.binary, 1000),
                ("TF instances", payloads.tf_path, 1, payloads.tf, 1),
                ("TF instances", payloads.tf_path, 64, payloads.tf, 1),
                ("V2 infer JSON", payloads.v2_path, 1, payloads.v2, 1),
                ("GET /", "/", 1, None, 1),
            ]
            results: dict[tuple[str, int, str], list[WrkResult]] = {}
            for _ in range(args.rounds):
                for request, path, conns, body, rows in runs:
                    for name, (process, port) in servers.items():
                        if (name == "hello world") != (request == "GET /"):
                            continue
                        scenario = Scenario(name, request, f"http://127.0.0.1:{port}{path}", conns, body, rows)
                        result = run_wrk(scenario, duration=args.duration, server_pid=process.pid)
                        results.setdefault((request, conns, name), []).append(result)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(30)
    hello_p50 = statistics.median(r.p50_ms for r in results[("GET /", 1, "hello world")])
    for (request, conns, name), rs in results.items():
        images, p50 = statistics.median(r.images_per_second for r in rs), statistics.median(r.p50_ms for r in rs)
        p99, cpu = statistics.median(r.p99_ms for r in rs), statistics.median(r.cpu_us for r in rs)
        ratio = f"  p50 {p50 / hello_p50:4.2f}x hello world's" if conns == 1 and rows_of(request) == 1 else ""
        print(
            f"{request:16} {conns:3} conns  {name:30} images/s {images:>10,.0f}  p50 {p50:6.3f} ms"
            f"  p99 {p99:6.2f} ms  CPU {cpu:7,.0f} us{ratio}"
        )
    errors = sum(r.errors for rs in results.values() for r in rs)
    if errors:
        print(f"FAILED: {errors} request(s) failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

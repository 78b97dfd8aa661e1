"""One wrk run and its parsed result (the Lua script prints a JSON summary line)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

from serving.cpu import cpu_seconds
from serving.payloads import Body

LUA = Path(__file__).resolve().parents[1] / "wrk" / "bench.lua"


@dataclass(frozen=True)
class Scenario:
    target: str
    request: str
    url: str
    connections: int
    body: Body | None = None
    rows: int = 1  # images per request

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.target, self.request, self.connections)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    rows: int = 1
    cpu_us: float = 0.0  # server CPU time per request (all its processes and threads)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def images_per_second(self) -> float:
        return self.rps * self.rows

    @staticmethod
    def median(results: list[WrkResult]) -> WrkResult:
        """Median throughput and latencies over rounds; errors and requests summed (none may be lost)."""
        rps = statistics.median(r.rps for r in results)
        return WrkResult(
            requests=sum(r.requests for r in results),
            seconds=sum(r.requests for r in results) / rps,
            p50_ms=statistics.median(r.p50_ms for r in results),
            p99_ms=statistics.median(r.p99_ms for r in results),
            errors=sum(r.errors for r in results),
            rows=results[0].rows,
            cpu_us=statistics.median(r.cpu_us for r in results),
        )


def run_wrk(scenario: Scenario, duration: float, server_pid: int | None = None) -> WrkResult:
    """Drive ``scenario.url`` for ``duration`` seconds; one wrk thread so the load generator takes
    as little as possible of the cores the server needs."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found: apt-get install -y wrk (Debian package)")
    env = dict(os.environ)
    if scenario.body is not None:
        env["WRK_BODY"] = str(scenario.body.path)
        env["WRK_CONTENT_TYPE"] = scenario.body.content_type
        if scenario.body.header_length is not None:
            env["WRK_HEADER_LENGTH"] = str(scenario.body.header_length)
    seconds = max(1, round(duration))  # wrk takes whole seconds only
    argv = [wrk, "-t1", f"-c{scenario.connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), scenario.url]
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary for {scenario}:\n{out}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    cpu = cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        rows=scenario.rows,
        cpu_us=cpu / max(1, data["requests"]) * 1e6,
    )

"""Serving benchmark (issue 5): our service vs a typical FastAPI app vs FastAPI hello world.

Starts every target on 127.0.0.1 (free ports), drives each with wrk (Debian package, Lua script
``bench/wrk/bench.lua``) at 1, 8 and 64 keep-alive connections for a fixed time, and prints
req/s, p50, p99 and errors per run, then the goal ratios. All servers stay up for the whole run
and the runs are interleaved over ``--repeats`` rounds; each figure is the median over rounds,
so slow phases of this shared machine hit every target alike. Exits 1 if any request failed
(non-2xx status or socket error) or any answer was wrong.

Targets: hello world (FastAPI, same uvicorn options as the service), the baseline app
(``bench/baseline_app.py``), the service in its default configuration, with batching on, and
with two workers. The model is the MNIST MLP 784-256-128-10 built with ``exporter.graph`` (random
weights: same compute as a trained one); request images are MNIST test digits.

    .venv/bin/python bench/serve_bench.py [--duration 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from serving.inprocess import ort_images_per_second  # noqa: E402
from serving.payloads import Payloads, build_repository, write_payloads  # noqa: E402
from serving.report import print_goals, print_table, target_labels  # noqa: E402
from serving.targets import Target, start_targets  # noqa: E402
from serving.wrk import Scenario, WrkResult, run_wrk  # noqa: E402

from service.config import Settings  # noqa: E402

CONNECTIONS = (1, 8, 64)
# Goal 2: two 1000-image requests per worker, so a worker receives one body while it computes the other.
BINARY_CONNECTIONS = (1, 4)


def scenarios(targets: dict[str, Target], payloads: Payloads) -> list[Scenario]:
    """Every (target, request, connections) run of one round."""
    hello, base = targets["hello"], targets["baseline"]
    runs = [Scenario("hello", "GET /", hello.url("/"), c) for c in CONNECTIONS]
    runs += [Scenario("baseline", "TF instances", base.url(payloads.tf_path), c, payloads.tf) for c in CONNECTIONS]
    for name in ("service", "service-other-batching", "service-alt-workers"):
        url = targets[name].url(payloads.tf_path)
        runs += [Scenario(name, "TF instances", url, c, payloads.tf) for c in CONNECTIONS]
    v2 = targets["service"].url(payloads.v2_path)
    runs += [Scenario("service", "V2 infer JSON", v2, c, payloads.v2) for c in CONNECTIONS]
    other = targets["service-other-batching"].url(payloads.v2_path)
    runs += [Scenario("service-other-batching", "V2 infer JSON", other, 64, payloads.v2)]
    for name in ("service", "service-alt-workers"):
        url = targets[name].url(payloads.v2_path)
        runs += [Scenario(name, "V2 binary x1000", url, c, payloads.binary, rows=1000) for c in BINARY_CONNECTIONS]
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds; medians are reported (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        work = Path(tmp)
        model = build_repository(work / "models")
        payloads = write_payloads(work / "bodies")
        ort_rounds = [ort_images_per_second(model, payloads.batch)]  # before the servers start
        with start_targets(work, model) as targets:
            problems = [p for t in targets.values() for p in t.check(payloads)]
            results: dict[tuple[str, str, int], list[WrkResult]] = {}
            runs = scenarios(targets, payloads)
            for run in runs:  # warm-up: JIT-free, but connection pools, caches and lazy imports
                run_wrk(run, duration=1.0)
            for _ in range(args.repeats):
                ort_rounds.append(ort_images_per_second(model, payloads.batch))  # servers idle, same minute
                for run in runs:
                    pid = targets[run.target].process.pid
                    results.setdefault(run.key, []).append(run_wrk(run, duration=args.duration, server_pid=pid))
            workers = {name: t.workers for name, t in targets.items()}
    medians = {key: WrkResult.median(rs) for key, rs in results.items()}
    ort_rates = {k: statistics.median(r[k] for r in ort_rounds) for k in ort_rounds[0]}
    labels = target_labels(Settings().batching, workers)
    print_table(medians, labels)
    ok = print_goals(medians, ort_rates, labels, default_workers=workers["service"])
    errors = sum(r.errors for rs in results.values() for r in rs)
    if problems or errors:
        for problem in problems:
            print(f"WRONG ANSWER: {problem}")
        print(f"FAILED: {errors} request(s) failed during the load runs")
        return 1
    print(
        f"all {sum(r.requests for rs in results.values() for r in rs):,} requests succeeded; "
        f"{'every goal met' if ok else 'some goals not met (see above)'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

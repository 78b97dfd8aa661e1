"""The benchmark's table and the issue-5 goal checks, printed as markdown."""

from __future__ import annotations

from serving.wrk import WrkResult

Key = tuple[str, str, int]


def target_labels(default_batching: bool, workers: dict[str, int]) -> dict[str, str]:
    """Table names; the service variants say what differs from the defaults."""
    on_off = "on" if default_batching else "off"
    return {
        "hello": "FastAPI hello world (uvloop+httptools, no access log)",
        "baseline": "baseline app (pydantic, sync, asyncio+h11)",
        "service": f"service, defaults (batching {on_off}, {_workers(workers['service'])})",
        "service-other-batching": f"service, batching {'off' if default_batching else 'on'}",
        "service-alt-workers": f"service, {_workers(workers['service-alt-workers'])}",
    }


def _workers(n: int) -> str:
    return f"{n} worker" if n == 1 else f"{n} workers"


def print_table(results: dict[Key, WrkResult], labels: dict[str, str]) -> None:
    print("\n| target | request | conns | req/s | images/s | p50 ms | p99 ms | CPU us/req | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (target, request, conns), r in results.items():
        images = f"{r.images_per_second:,.0f}" if r.rows > 1 else ""
        print(
            f"| {labels.get(target, target)} | {request} | {conns} | {r.rps:,.0f} | {images} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.cpu_us:,.0f} | {r.errors} |"
        )


def _check(label: str, value: float, goal: float, *, at_most: bool = False, unit: str = "") -> bool:
    ok = value <= goal if at_most else value >= goal
    sign = "<=" if at_most else ">="
    print(f"- {label}: {value:.2f}{unit} (goal {sign} {goal}{unit}) {'MET' if ok else 'NOT MET'}")
    return ok


def print_goals(
    results: dict[Key, WrkResult], ort_rates: dict[str, float], labels: dict[str, str], default_workers: int
) -> bool:
    """Print goals 1-4 with the measured ratios; True when goals 1-3 are all met."""
    hello64, base64 = results[("hello", "GET /", 64)], results[("baseline", "TF instances", 64)]
    hello1 = results[("hello", "GET /", 1)]
    ok = True
    print("\n### Goals (issue 5), medians of this run")
    for request in ("TF instances", "V2 infer JSON"):
        r64, r1 = results[("service", request, 64)], results[("service", request, 1)]
        ok &= _check(f"1. {request}, 64 conns: x baseline", r64.rps / base64.rps, 4.0)
        ok &= _check(f"1. {request}, 64 conns: share of hello world", r64.rps / hello64.rps, 0.70)
        ok &= _check(f"1. {request}, 64 conns: p99", r64.p99_ms, 30.0, at_most=True, unit=" ms")
        ok &= _check(f"3. {request}, 1 conn: p50 / hello-world p50", r1.p50_ms / hello1.p50_ms, 1.5, at_most=True)
    _print_cpu_view(results)
    best_ort = max(ort_rates.values())
    binary = max(
        r.images_per_second for (t, q, _), r in results.items() if t == "service" and q.startswith("V2 binary")
    )
    ort_text = ", ".join(f"{k} {v:,.0f}" for k, v in ort_rates.items())
    print(f"- in-process onnxruntime, batch 1000, images/s: {ort_text}")
    ok &= _check("2. V2 binary x1000: share of in-process onnxruntime (best)", binary / best_ort, 0.50)
    cpu_ms = min(r.cpu_us for (t, q, _), r in results.items() if t == "service" and q.startswith("V2 binary")) / 1e3
    one_thread_ms = 1000 / ort_rates["1 intra-op thread"] * 1e3
    print(
        f"  (load-independent view: {one_thread_ms:.1f} ms per batch in-process with one thread vs {cpu_ms:.1f} ms"
        f" of server CPU per 1000-image request = {one_thread_ms / cpu_ms:.2f})"
    )
    print(f"- 4. default workers on this machine: {default_workers} (rule: service/server.py default_workers)")
    for other in ("service-alt-workers", "service-other-batching"):
        _print_pairs(results, "service", other, f"{labels['service']} vs {labels[other]}")
    return ok


def _print_cpu_view(results: dict[Key, WrkResult]) -> None:
    """Goal 1 in CPU time per request, which other jobs on the machine move far less than req/s."""
    hello = results[("hello", "GET /", 64)].cpu_us
    for request in ("TF instances", "V2 infer JSON"):
        service, base = results[("service", request, 64)].cpu_us, results[("baseline", "TF instances", 64)].cpu_us
        print(
            f"  (load-independent view, {request}, 64 conns, CPU per request: service {service:.0f} us, "
            f"baseline {base:.0f} us = x{base / service:.2f}, hello world {hello:.0f} us = {hello / service:.2f})"
        )


def _print_pairs(results: dict[Key, WrkResult], a: str, b: str, title: str) -> None:
    print(f"\n{title}: req/s (p99 ms)")
    for (target, request, conns), r in results.items():
        other = results.get((b, request, conns))
        if target == a and other is not None:
            print(
                f"- {request}, {conns} conns: {r.rps:,.0f} ({r.p99_ms:.1f}) vs {other.rps:,.0f} ({other.p99_ms:.1f}) "
                f"= x{other.rps / r.rps:.2f}"
            )

"""Export benchmark (issue 3): the whole export of the MNIST MLP, and float32 vs int8 latency.

1. Export time: ``exporter.export.export`` of the 784-256-128-10 MLP, everything included
   (graph, checker, parity with the trainer on the 10,000 MNIST test images, the reference
   evaluator, both int8 quantizations measured, ORT conversion, each variant evaluated on the
   test set, card, manifest). Goal: under 10 s on 2 cores. Median of ``--repeats`` fresh exports.
2. In-process onnxruntime latency of ``model.onnx`` vs ``model.int8.onnx`` at batch 1 and
   batch 1000 (medians of interleaved runs), printed side by side with throughput.

The artifact is ``artifacts/mnist`` when present (``make train`` writes it); otherwise one is
trained first (not timed): 2 epochs on full MNIST.

    .venv/bin/python bench/export_bench.py [--artifact artifacts/mnist] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
EXPORT_GOAL_S = 10.0


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        artifact = args.artifact if (args.artifact / "model.json").is_file() else train(Path(tmp) / "artifact")
        seconds, folder = time_exports(artifact, Path(tmp) / "models", args.repeats)
        report_export(artifact, folder, seconds)
        report_latency(folder, args.threads, args.rounds)
    return 0 if statistics.median(seconds) < EXPORT_GOAL_S else 1


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact", type=Path, default=ROOT / "artifacts" / "mnist", help="artifact to export")
    p.add_argument("--repeats", type=int, default=3, help="exports to time (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved latency rounds (default: %(default)s)")
    return p.parse_args()


def train(path: Path) -> Path:
    from trainer import MLPClassifier, load_mnist

    print("no artifact given: training 784-256-128-10 for 2 epochs on MNIST (not timed) ...", flush=True)
    return MLPClassifier(hidden=(256, 128), epochs=2, seed=0).fit(load_mnist("train")).save(path)


def time_exports(artifact: Path, repository: Path, repeats: int) -> tuple[list[float], Path]:
    from exporter.export import export

    seconds, folder = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        folder = export(artifact, repository, "mnist")
        seconds.append(time.perf_counter() - start)
    assert folder is not None
    return seconds, folder


def report_export(artifact: Path, folder: Path, seconds: list[float]) -> None:
    from exporter.manifest import read_manifest

    m = read_manifest(folder)
    median = statistics.median(seconds)
    verdict = "meets" if median < EXPORT_GOAL_S else "MISSES"
    print(f"\nexport of {artifact} ({' -> '.join(m['training']['architecture'])}), {len(seconds)} runs")
    runs = ", ".join(f"{s:.2f}" for s in seconds)
    print(f"  median {median:.2f} s (runs: {runs}); {verdict} the {EXPORT_GOAL_S:.0f} s goal")
    print("  stages of the last run: " + ", ".join(f"{k} {v:.2f} s" for k, v in m["timings_s"].items()))
    for file, v in m["variants"].items():
        acc = "n/a" if v["accuracy"] is None else f"{100 * v['accuracy']:.2f}%"
        print(f"  {file:<16} {v['bytes']:>10,} bytes  accuracy {acc}")
    q = ", ".join(f"{c['method']} {100 * c['accuracy']:.2f}%" for c in m["quantization"]["candidates"] if c["accuracy"])
    print(f"  int8 chosen: {m['quantization']['chosen']} (measured {q})")


def report_latency(folder: Path, threads: int, rounds: int) -> None:
    from trainer import load_mnist

    x = load_mnist("test").x[:1000].astype(np.float32)
    sessions = {name: session(folder / name, threads) for name in ("model.onnx", "model.int8.onnx")}
    cases = {1: (x[:1], 2000), 1000: (x, 20)}  # batch -> (input, calls per round)
    timings: dict[tuple[str, int], list[float]] = {(n, b): [] for n in sessions for b in cases}
    for _ in range(rounds):  # interleaved, so a slow phase of the shared machine hits both models
        for batch, (inp, calls) in cases.items():
            for name, sess in sessions.items():
                timings[name, batch].append(per_call(sess, inp, calls))
    print(
        f"\nin-process onnxruntime {ort.__version__} latency, {threads} intra-op thread(s), median of {rounds} rounds"
    )
    print(f"  {'batch':>5}  {'model.onnx':>14}  {'model.int8.onnx':>16}  {'int8/float':>10}  images/s float / int8")
    for batch in cases:
        f, q = (statistics.median(timings[n, batch]) for n in sessions)
        print(f"  {batch:>5}  {fmt(f):>14}  {fmt(q):>16}  {q / f:>10.2f}  {batch / f:,.0f} / {batch / q:,.0f}")


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def per_call(sess: ort.InferenceSession, x: np.ndarray, calls: int) -> float:
    feed = {"images": x}
    sess.run(None, feed)  # warm-up
    start = time.perf_counter()
    for _ in range(calls):
        sess.run(None, feed)
    return (time.perf_counter() - start) / calls


def fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


if __name__ == "__main__":
    sys.exit(main())

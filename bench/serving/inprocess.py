"""onnxruntime in-process, the ceiling of goal 2: images/s at batch 1000 with no server at all."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def ort_images_per_second(model: Path, batch: np.ndarray, seconds: float = 1.5) -> dict[str, float]:
    """Images/s of ``session.run`` on ``batch`` with onnxruntime's default threads and with one thread."""
    rates = {}
    for label, threads in (("default threads", 0), ("1 intra-op thread", 1)):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1 if threads else 0
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        rates[label] = len(batch) / _median_run_seconds(session, batch, seconds)
    return rates


def _median_run_seconds(session: ort.InferenceSession, batch: np.ndarray, seconds: float) -> float:
    feed = {session.get_inputs()[0].name: batch}
    for _ in range(3):
        session.run(None, feed)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times)

"""``python -m exporter ARTIFACT --repository models --name NAME``: see ``--help``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contracts import INT8_ONNX, MODEL_ONNX, MODEL_ORT
from exporter.errors import ExportError
from exporter.manifest import read_manifest
from exporter.triton import DEFAULT_MAX_BATCH_SIZE


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="exporter",
        description=(
            "Export a trainer artifact (model.json + weights.npz) as a new version of an ONNX model repository: "
            "<repository>/<name>/<version>/ with model.onnx (float32), model.int8.onnx, model.ort (onnxruntime "
            "mobile/web), the mobile operator config, manifest.json and a model card, plus <repository>/<name>/"
            "config.pbtxt for Triton. The version appears atomically, only after the ONNX checker, shape "
            "inference, parity with the numpy trainer and the ONNX reference evaluator all pass."
        ),
        epilog="Exit status: 0 exported, 2 bad input or a failed check (nothing is left behind).",
    )
    p.add_argument("artifact", type=Path, metavar="ARTIFACT", help="artifact folder written by `python -m trainer`")
    p.add_argument(
        "--repository", type=Path, default=Path("models"), help="model repository root (default: %(default)s)"
    )
    p.add_argument(
        "--name", required=True, help="model name: 1-64 letters, digits, '_', '.', '-' (the URL path segment)"
    )
    p.add_argument(
        "--version",
        type=_positive_int,
        default=None,
        help="version number to write (default: one more than the highest existing version, 1 for a new model)",
    )
    p.add_argument("--force", action="store_true", help="replace the version if it already exists (atomically)")
    p.add_argument(
        "--dataset",
        type=Path,
        default=None,
        help="IDX folder, .npz or image folder whose test split validates the export and whose train split "
        "calibrates int8 (default: the built-in MNIST for 28x28 ten-class models, random images otherwise)",
    )
    p.add_argument(
        "--max-batch-size",
        type=_positive_int,
        default=DEFAULT_MAX_BATCH_SIZE,
        help="max_batch_size written to Triton's config.pbtxt (default: %(default)s)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from exporter.export import export  # after parsing, so --help stays instant

    start = time.perf_counter()
    try:
        folder = export(
            args.artifact,
            args.repository,
            args.name,
            args.version,
            args.force,
            dataset=args.dataset,
            max_batch_size=args.max_batch_size,
        )
    except ExportError as e:
        print(f"exporter: error: {e}", file=sys.stderr)
        return e.exit_code
    print(summary(folder, time.perf_counter() - start))
    return 0


def summary(folder: Path, seconds: float) -> str:
    m = read_manifest(folder)
    variants, checks, q = m["variants"], m["checks"], m["quantization"]
    lines = [
        f"exported {m['model']['name']} version {m['model']['version']} to {folder} in {seconds:.1f} s",
        f"  validated on {m['evaluation']['dataset']} ({m['evaluation']['images']} images)",
        f"  parity with trainer: max |diff| {checks['parity_trainer']['max_abs_diff']:.2g}, "
        f"{checks['parity_trainer']['label_mismatches']} label mismatches; reference evaluator: max |diff| "
        f"{checks['reference_evaluator']['max_abs_diff']:.2g}",
    ]
    for file in (MODEL_ONNX, INT8_ONNX, MODEL_ORT):
        lines.append(f"  {file:<16} {variants[file]['bytes']:>10,} bytes  accuracy {_pct(variants[file]['accuracy'])}")
    measured = ", ".join(f"{c['method']} {_pct(c['accuracy'])}" for c in q["candidates"])
    lines.append(f"  int8: chose {q['chosen']} quantization (measured {measured})")
    missed = [k for k, ok in variants[INT8_ONNX]["goals"].items() if k.endswith("_met") and not ok]
    if missed:
        lines.append(f"  warning: int8 goals missed: {', '.join(missed)} (see manifest.json)")
    lines.append(f"  Triton config: {folder.parent / 'config.pbtxt'}; model card: {folder / 'README.md'}")
    return "\n".join(lines)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())

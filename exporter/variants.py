"""Edge and mobile variants of a float32 ``model.onnx``, each loaded back and measured.

* int8 (``model.int8.onnx``): onnxruntime's dynamic quantizer (weights int8, activations
  quantized at run time) and its static quantizer (QDQ, S8S8, MinMax calibration on training
  images) are both run; the more accurate on the evaluation set wins, dynamic on a tie
  because it needs no calibration data to reproduce.
* ORT format (``model.ort``) for onnxruntime mobile (Android/iOS) and web, converted by
  onnxruntime's own converter, with the ``required_operators.config`` that a reduced-size
  mobile build (``build.py --include_ops_by_config``) needs to run it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contracts import INPUT_NAME
from exporter.errors import VariantFailedError
from exporter.validate import accuracy, session

OPERATOR_CONFIG = "model.required_operators.config"
CALIBRATION_IMAGES = 1000
CALIBRATION_BATCH = 100


@dataclass(frozen=True)
class Candidate:
    method: str  # "dynamic" | "static"
    settings: str
    accuracy: float | None
    bytes: int


@dataclass(frozen=True)
class QuantizationResult:
    chosen: Candidate
    candidates: tuple[Candidate, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen.method, "candidates": [asdict(c) for c in self.candidates]}


def quantize_int8(
    float_path: Path, out_path: Path, calibration: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray | None
) -> QuantizationResult:
    """Write the better int8 model to ``out_path``; without labels, accuracy is unknown and dynamic wins."""
    with tempfile.TemporaryDirectory(prefix=".int8-", dir=out_path.parent) as tmp:
        paths = {"dynamic": Path(tmp) / "dynamic.onnx", "static": Path(tmp) / "static.onnx"}
        try:
            with _quiet():
                _quantize_dynamic(float_path, paths["dynamic"])
                _quantize_static(float_path, paths["static"], calibration)
        except Exception as e:  # the quantizers raise whatever onnx/onnxruntime raised
            raise VariantFailedError(f"int8 quantization of {float_path.name} failed: {e}") from e
        candidates = tuple(
            Candidate(method, settings, _accuracy(paths[method], x_eval, y_eval), paths[method].stat().st_size)
            for method, settings in (
                ("dynamic", "weights int8 per tensor, activations uint8 at run time"),
                ("static", f"QDQ S8S8 per tensor, MinMax calibration on {len(calibration)} training images"),
            )
        )
        chosen = max(candidates, key=lambda c: -1.0 if c.accuracy is None else c.accuracy)  # first wins ties
        shutil.move(paths[chosen.method], out_path)
    return QuantizationResult(chosen=chosen, candidates=candidates)


def convert_to_ort(float_path: Path, out_dir: Path) -> tuple[Path, Path]:
    """Convert with onnxruntime's converter; return (``.ort`` file, operator config), both in ``out_dir``."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    with tempfile.TemporaryDirectory(prefix=".ort-", dir=out_dir) as tmp:
        try:
            with _quiet():
                convert_onnx_models_to_ort(
                    float_path, output_dir=Path(tmp), optimization_styles=[OptimizationStyle.Fixed]
                )
        except Exception as e:  # the converter raises whatever onnxruntime raised
            raise VariantFailedError(f"ORT-format conversion of {float_path.name} failed: {e}") from e
        ort_file = out_dir / float_path.with_suffix(".ort").name
        config = out_dir / OPERATOR_CONFIG
        shutil.move(Path(tmp) / ort_file.name, ort_file)
        generated = (Path(tmp) / float_path.with_suffix(".required_operators.config").name).read_text(encoding="utf-8")
        # The converter's header names its temporary output; say what the file is for instead.
        operators = [line for line in generated.splitlines() if line.strip() and not line.startswith("#")]
        config.write_text(_config_header(ort_file.name) + "\n".join(operators) + "\n", encoding="utf-8")
    return ort_file, config


def _config_header(ort_name: str) -> str:
    import onnxruntime

    return (
        f"# Operators that {ort_name} needs, from onnxruntime {onnxruntime.__version__}'s ORT-format converter.\n"
        "# Reduced-size build: ./build.sh --minimal_build --include_ops_by_config <this file> (see docs/exporter.md)\n"
    )


def evaluate(path: Path, x: np.ndarray, y: np.ndarray | None) -> dict[str, Any]:
    """Load a variant back in onnxruntime; its size and (with labels) its accuracy."""
    return {"bytes": path.stat().st_size, "accuracy": _accuracy(path, x, y)}


def _accuracy(path: Path, x: np.ndarray, y: np.ndarray | None) -> float | None:
    try:
        sess = session(str(path))
    except Exception as e:  # onnxruntime raises several unrelated types for unloadable files
        raise VariantFailedError(f"{path.name} does not load in onnxruntime: {e}") from e
    return None if y is None else accuracy(sess, x, y)


def _quantize_dynamic(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(src, dst, weight_type=QuantType.QInt8)


def _quantize_static(src: Path, dst: Path, calibration: np.ndarray) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        src,
        dst,
        _Calibration(calibration),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over an array of raw images."""

    def __init__(self, x: np.ndarray) -> None:
        self._batches = iter(
            {INPUT_NAME: x[i : i + CALIBRATION_BATCH].astype(np.float32)} for i in range(0, len(x), CALIBRATION_BATCH)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The quantizer logs advice at WARNING and the converter prints progress; neither helps a user here.
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)

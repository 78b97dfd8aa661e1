"""``export()``: a trainer artifact -> a validated, versioned model-repository entry.

The version folder is assembled under a dotted temporary name inside the model folder and
renamed into place only when every file is written and every check has passed, so a watcher
never sees half a model and a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from contracts import (
    ACTIVATIONS,
    CONFIG_PBTXT,
    INT8_ONNX,
    MODEL_CARD,
    MODEL_JSON,
    MODEL_ONNX,
    ArtifactError,
    ModelSpec,
    RepositoryError,
    atomic_directory,
    atomic_write_text,
    load_artifact,
    model_dir,
    next_version,
    version_dir,
)
from exporter import report, validate, variants
from exporter.card import CONFUSION_PNG, render_card
from exporter.data import EvalData, evaluation_data
from exporter.errors import (
    ArtifactInvalidError,
    ExportError,
    RepositoryUnwritableError,
    UnsupportedModelError,
    VersionExistsError,
)
from exporter.graph import build_model
from exporter.manifest import write_manifest
from exporter.triton import DEFAULT_MAX_BATCH_SIZE, LABELS_FILE, config_pbtxt, labels_txt

DIR_MODE, FILE_MODE = 0o755, 0o644  # published models are readable by every user, writable by the owner


def export(
    artifact: str | Path,
    repository: str | Path,
    name: str,
    version: int | None = None,
    force: bool = False,
    *,
    dataset: str | Path | None = None,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> Path:
    """Export ``artifact`` as ``<repository>/<name>/<version>``; return that folder.

    ``version=None`` takes the next free number. An existing version is replaced only with
    ``force``. ``dataset`` (IDX folder, .npz, image folder) overrides the evaluation data.
    Raises an ``ExportError`` subclass with a message for the user on anything wrong.
    """
    spec, weights = _load(Path(artifact))
    target = _target(Path(repository), name, version, force)
    data = evaluation_data(spec, dataset)
    with _repository_errors(target):
        try:
            with atomic_directory(target, overwrite=force) as tmp:
                _build_version(tmp, Path(artifact), spec, weights, data, name=name, version=int(target.name))
        except FileExistsError as e:  # another export took the number between our check and the rename
            raise VersionExistsError(f"{target} appeared while exporting; nothing was written") from e
        folder = target.parent
        _publish_text(folder / CONFIG_PBTXT, config_pbtxt(spec, name=name, max_batch_size=max_batch_size))
        _publish_text(folder / LABELS_FILE, labels_txt(spec))
    return target


def _publish_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)
    path.chmod(FILE_MODE)


def _make_readable(folder: Path) -> None:
    # Temporary files and folders are created owner-only; a server running as another user
    # (the container's non-root user, say) must be able to read the published model.
    folder.chmod(DIR_MODE)
    for path in folder.rglob("*"):
        path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)


def _load(artifact: Path) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    _check_activations(artifact / MODEL_JSON)
    try:
        return load_artifact(artifact)
    except ArtifactError as e:
        raise ArtifactInvalidError(str(e)) from e


def _check_activations(model_json: Path) -> None:
    # Named before schema validation so the user reads which layer, not a pydantic dump.
    try:
        layers = json.loads(model_json.read_text(encoding="utf-8"))["architecture"]["layers"]
        activations = [layer.get("activation", "relu") for layer in layers]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return  # load_artifact reports unreadable or malformed files
    for i, activation in enumerate(activations):
        if activation not in ACTIVATIONS:
            raise UnsupportedModelError(
                f"{model_json}: layer {i} uses activation {activation!r}, which the exporter does not support "
                f"(expected one of {', '.join(ACTIVATIONS)})"
            )


def _target(repository: Path, name: str, version: int | None, force: bool) -> Path:
    try:
        folder = model_dir(repository, name)
        target = version_dir(repository, name, version if version is not None else next_version(folder))
    except RepositoryError as e:
        raise ExportError(str(e)) from e
    _check_writable(folder)
    if target.exists() and not force:
        raise VersionExistsError(
            f"{target} already exists; choose another --version, omit it for the next free one "
            f"({next_version(folder)}), or pass --force to replace it"
        )
    return target


def _check_writable(folder: Path) -> None:
    # Fail before the work, not at the final rename: find the nearest folder that exists.
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RepositoryUnwritableError(f"cannot create {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RepositoryUnwritableError(f"cannot write to {folder}: {existing} is not writable")


@contextmanager
def _repository_errors(target: Path) -> Iterator[None]:
    try:
        yield
    except PermissionError as e:
        raise RepositoryUnwritableError(f"cannot write the model repository at {target.parent}: {e.strerror}") from e
    except (FileNotFoundError, NotADirectoryError, FileExistsError) as e:
        raise RepositoryUnwritableError(f"cannot create {target}: {e}") from e


def _build_version(
    tmp: Path,
    artifact: Path,
    spec: ModelSpec,
    weights: dict[str, np.ndarray],
    data: EvalData,
    *,
    name: str,
    version: int,
) -> None:
    timings: dict[str, float] = {}
    with _timed(timings, "graph"):
        model = build_model(spec, weights, name=name, version=version)
        checks: dict[str, Any] = validate.check_graph(model)
        onnx.save(model, tmp / MODEL_ONNX)
    with _timed(timings, "parity"):
        sess = validate.session(model)
        checks |= _parity(model, sess, artifact, data)
    with _timed(timings, "int8"):
        int8 = variants.quantize_int8(tmp / MODEL_ONNX, tmp / INT8_ONNX, data.calibration, data.x, data.y)
    with _timed(timings, "ort"):
        ort_file, op_config = variants.convert_to_ort(tmp / MODEL_ONNX, tmp)
        ort_report = variants.evaluate(ort_file, data.x, data.y)
        ort_report["parity_onnx"] = validate.require(
            validate.parity(
                validate.session(str(ort_file)), lambda x: validate.run(sess, x)[0], data.x, against=MODEL_ONNX
            )
        ).as_dict()
    float_report = {"bytes": (tmp / MODEL_ONNX).stat().st_size, "accuracy": report.accuracy(sess, data)}
    content = report.describe(artifact, spec, data, name=name, version=version)
    content["checks"] = checks
    content["quantization"] = int8.as_dict()
    content["variants"] = {
        MODEL_ONNX: float_report,
        INT8_ONNX: report.int8_report(tmp / INT8_ONNX, float_report, sess, data),
        ort_file.name: ort_report,
    }
    content["mobile"] = report.mobile_report(op_config)
    has_confusion = _copy_confusion(artifact, tmp)
    (tmp / MODEL_CARD).write_text(render_card(content, has_confusion=has_confusion), encoding="utf-8")
    content["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    write_manifest(tmp, content)
    _make_readable(tmp)


def _parity(model: onnx.ModelProto, sess: ort.InferenceSession, artifact: Path, data: EvalData) -> dict[str, Any]:
    from trainer import MLPClassifier

    trainer = MLPClassifier.load(artifact)
    return {
        "parity_trainer": validate.require(
            validate.parity(sess, trainer.predict_proba, data.x, against="trainer.MLPClassifier.predict_proba")
        ).as_dict(),
        "reference_evaluator": validate.require(validate.reference_agreement(model, sess, data.x)).as_dict(),
    }


def _copy_confusion(artifact: Path, tmp: Path) -> bool:
    source = artifact / CONFUSION_PNG
    if source.is_file():
        shutil.copyfile(source, tmp / CONFUSION_PNG)
    return source.is_file()


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - start

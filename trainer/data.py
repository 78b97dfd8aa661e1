"""Datasets: raw inputs ``x`` ``[N, *input_shape]`` (uint8 or float32), int64 class ids ``y``, class names.

Three sources, chosen by what the path is:

- a folder of IDX files (MNIST layout: ``train-images-idx3-ubyte[.gz]`` + ``train-labels-idx1-ubyte[.gz]``,
  optionally ``t10k-*`` for the test split); a ``SHA256SUMS`` file beside them is checked;
- an ``.npz`` with ``x`` and ``y`` (optional ``labels``, ``x_test``, ``y_test``), read without pickle;
- a folder of class sub-folders of images (optionally split into ``train/`` and ``test/``).

Inputs stay raw intensities: normalisation belongs to the model (see ``contracts.Preprocessing``).
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from trainer.errors import DataError
from trainer.idx import read_idx
from trainer.images import IMAGE_SUFFIXES, load_image_folder

_IDX_PREFIX = {"train": "train", "test": "t10k"}

Split = Literal["train", "test"]


@dataclass(frozen=True)
class Dataset:
    """Raw inputs, class ids and class names. ``labels[y[i]]`` names sample ``i``."""

    x: np.ndarray
    y: np.ndarray
    labels: tuple[str, ...]
    name: str = "dataset"

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    def fingerprint(self) -> str:
        """sha256 over dtype, shape and bytes of ``x`` and ``y``: identifies the exact training data."""
        h = hashlib.sha256()
        for a in (self.x, self.y):
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).data)
        return h.hexdigest()

    def subset(self, n: int) -> Dataset:
        """The first ``n`` samples (all of them if ``n`` is larger)."""
        return Dataset(self.x[:n], self.y[:n], self.labels, self.name)


def mnist_dir() -> Path:
    """The MNIST copy shipped inside the package."""
    return Path(str(resources.files("trainer") / "datasets" / "mnist"))


def load_mnist(split: Split = "train") -> Dataset:
    """The built-in MNIST split, verified against its ``SHA256SUMS``: x uint8 [N, 28, 28]."""
    dataset = _load_idx_split(mnist_dir(), split)
    if dataset is None:
        raise DataError(f"{mnist_dir()}: the built-in MNIST files are missing; reinstall the package")
    return dataset


def load_dataset(path: str | Path, split: Split = "train") -> Dataset:
    """Load one split from an IDX folder, an ``.npz`` or an image folder (see the module docstring)."""
    train, test = load_splits(path)
    if split == "train":
        return train
    if test is None:
        raise DataError(f"{path}: has no test split (expected t10k-* IDX files, x_test/y_test in the npz, or test/)")
    return test


def load_splits(path: str | Path | None = None) -> tuple[Dataset, Dataset | None]:
    """(train, test or None) from ``path``; the built-in MNIST when ``path`` is None."""
    if path is None:
        return load_mnist("train"), load_mnist("test")
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder (expected an IDX folder, an .npz file or an image folder)")
    if p.is_file():
        if p.suffix != ".npz":
            raise DataError(f"{p}: unsupported file type (expected an .npz with arrays x and y)")
        return _load_npz(p)
    train = _load_idx_split(p, "train")
    if train is not None:
        return train, _load_idx_split(p, "test")
    return _load_image_splits(p)


def _load_idx_split(folder: Path, split: Split) -> Dataset | None:
    images = _find_idx(folder, f"{_IDX_PREFIX[split]}-images-idx3-ubyte")
    labels = _find_idx(folder, f"{_IDX_PREFIX[split]}-labels-idx1-ubyte")
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        missing = "images" if images is None else "labels"
        raise DataError(f"{folder}: {split} {missing} IDX file missing (expected {_IDX_PREFIX[split]}-{missing}-...)")
    _verify_checksums(folder, (images, labels))
    x, y = read_idx(images), read_idx(labels)
    if y.ndim != 1:
        raise DataError(f"{labels}: labels must be one-dimensional, got shape {y.shape}")
    name = "mnist" if folder == mnist_dir() else folder.name
    return _checked(x, y.astype(np.int64), None, f"{name}-{split}", images)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _verify_checksums(folder: Path, files: tuple[Path, ...]) -> None:
    sums_file = folder / "SHA256SUMS"
    if not sums_file.is_file():
        return
    expected: dict[str, str] = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            expected[name.strip()] = digest
    for f in files:
        want = expected.get(f.name) or expected.get(f"*{f.name}")
        if want is None:
            continue
        got = hashlib.sha256(f.read_bytes()).hexdigest()
        if got != want:
            raise DataError(f"{f}: sha256 {got} does not match SHA256SUMS ({want}); the file is corrupt")


def _load_npz(path: Path) -> tuple[Dataset, Dataset | None]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: corrupt .npz or one holding Python objects ({e}); expected arrays x, y") from e
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing arrays {missing} (expected x [N, ...] inputs and y [N] class ids)")
    labels = _npz_labels(path, arrays)
    train = _checked(arrays["x"], _class_ids(path, arrays["y"], "y"), labels, path.stem, path)
    if "x_test" not in arrays or "y_test" not in arrays:
        return train, None
    test = _checked(arrays["x_test"], _class_ids(path, arrays["y_test"], "y_test"), train.labels, path.stem, path)
    if test.input_shape != train.input_shape:
        raise DataError(f"{path}: x_test has input shape {test.input_shape}, x has {train.input_shape}")
    return train, test


def _npz_labels(path: Path, arrays: dict[str, np.ndarray]) -> tuple[str, ...] | None:
    if "labels" not in arrays:
        return None
    labels = arrays["labels"]
    if labels.ndim != 1 or labels.dtype.kind not in "UiuS":
        raise DataError(f"{path}: labels must be a 1-D array of class names, got {labels.dtype} {labels.shape}")
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in labels.tolist())


def _class_ids(path: Path, y: np.ndarray, key: str) -> np.ndarray:
    if y.ndim != 1:
        raise DataError(f"{path}: {key} must be one-dimensional class ids, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{path}: {key} must hold whole-number class ids, found NaN/Inf or fractions")
    elif y.dtype.kind not in "iub":
        raise DataError(f"{path}: {key} must hold integer class ids, got dtype {y.dtype}")
    return y.astype(np.int64)


def _load_image_splits(folder: Path) -> tuple[Dataset, Dataset | None]:
    if (folder / "train").is_dir():
        x, y, labels = load_image_folder(folder / "train")
        train = _checked(x, y, labels, folder.name, folder / "train")
        if not (folder / "test").is_dir():
            return train, None
        x, y, _ = load_image_folder(folder / "test", labels=labels)
        return train, _checked(x, y, labels, folder.name, folder / "test")
    if not any(p.is_dir() for p in folder.iterdir()):
        raise DataError(
            f"{folder}: neither MNIST IDX files nor class sub-folders of images ({', '.join(IMAGE_SUFFIXES)}) found"
        )
    x, y, labels = load_image_folder(folder)
    return _checked(x, y, labels, folder.name, folder), None


def make_dataset(x: np.ndarray, y: np.ndarray, labels: tuple[str, ...] | None = None, name: str = "arrays") -> Dataset:
    """A validated ``Dataset`` from in-memory arrays (the checks the file loaders apply)."""
    y = np.asarray(y)
    return _checked(np.asarray(x), _class_ids(Path(name), y, "y"), labels, name, Path(name))


def _checked(x: np.ndarray, y: np.ndarray, labels: tuple[str, ...] | None, name: str, source: Path) -> Dataset:
    """Validate shapes, values and classes; return x as uint8 or float32."""
    if x.ndim < 2:
        raise DataError(f"{source}: inputs must have shape [N, *input_shape], got {x.shape}")
    if len(x) != len(y):
        raise DataError(f"{source}: {len(x)} inputs but {len(y)} labels (expected one label per input)")
    if len(y) == 0:
        raise DataError(f"{source}: no samples")
    if x.dtype != np.uint8:
        if x.dtype.kind not in "fiub":
            raise DataError(f"{source}: inputs must be numeric, got dtype {x.dtype}")
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise DataError(f"{source}: inputs contain NaN or Inf (expected finite intensities)")
    if y.min() < 0:
        raise DataError(f"{source}: negative class id {y.min()} (expected ids 0..classes-1)")
    num_classes = len(labels) if labels is not None else int(y.max()) + 1
    if int(y.max()) >= num_classes:
        raise DataError(f"{source}: class id {y.max()} but only {num_classes} labels")
    if num_classes < 2 or len(np.unique(y)) < 2:
        raise DataError(f"{source}: only one class present (expected at least 2 classes to tell apart)")
    if labels is None:
        labels = tuple(str(i) for i in range(num_classes))
    return Dataset(x, y, labels, name)

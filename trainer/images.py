"""A folder of class sub-folders of images (``root/<class>/<file>``), the layout most public image datasets use.

Class names are the sub-folder names in sorted order; every image must have the size and mode of
the first one (an image dataset of mixed sizes needs resizing first, and silently resizing would
hide that). Greyscale images give ``[N, H, W]``, colour ``[N, H, W, 3]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from trainer.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".bmp")


def load_image_folder(
    root: Path, labels: tuple[str, ...] | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Return (x uint8, y int64, labels); with ``labels`` given, sub-folders must be among them."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if labels is None:
        labels = tuple(classes)
    unknown = sorted(set(classes) - set(labels))
    if unknown:
        raise DataError(f"{root}: class folders {unknown} are not among the training classes {list(labels)}")
    files = [(f, labels.index(c)) for c in classes for f in _image_files(root / c)]
    if not files:
        raise DataError(f"{root}: no images found (expected {root}/<class>/<image> with suffix {IMAGE_SUFFIXES})")
    first = _read(files[0][0])
    x = np.empty((len(files), *first.shape), dtype=np.uint8)
    for i, (f, _) in enumerate(files):
        image = first if i == 0 else _read(f)
        if image.shape != first.shape:
            raise DataError(f"{f}: shape {image.shape} differs from {files[0][0]} {first.shape} (resize images first)")
        x[i] = image
    return x, np.array([c for _, c in files], dtype=np.int64), labels


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            mode = "L" if im.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
            return np.asarray(im.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"{path}: not a readable image ({e})") from e

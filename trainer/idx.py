"""Reader for the IDX format of MNIST (gzipped or not): big-endian magic, dimensions, raw data.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code (0x08 = uint8), the
number of dimensions, then one big-endian uint32 per dimension, then the data row-major.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from trainer.errors import DataError

_UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Return the uint8 array stored in an IDX file; ``.gz`` files are decompressed."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE or raw[3] == 0:
        raise DataError(
            f"{path}: wrong IDX magic {raw[:4].hex() or 'empty file'} "
            "(expected 0000 08 NN: an unsigned-byte IDX file, e.g. train-images-idx3-ubyte[.gz])"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header (expected {ndim} dimension sizes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX header promises shape {shape} = {expected} bytes of data, the file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError as e:
        raise DataError(f"{path}: no such file") from e
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated file ({e})") from e

"""Dataset loaders: built-in MNIST, IDX folders, .npz, image folders, and their error messages."""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainer import DataError, load_dataset, load_mnist, load_splits
from trainer.data import make_dataset


def write_idx(path: Path, array: np.ndarray) -> Path:
    raw = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = raw + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def idx_folder(root: Path, n: int = 6, gz: bool = True, test: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k") if test else ("train",):
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 4, 3)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 3)
    return root


def test_builtin_mnist_is_verified_and_shaped():
    train, test = load_mnist("train"), load_mnist("test")
    assert train.x.shape == (60000, 28, 28) and train.x.dtype == np.uint8
    assert test.x.shape == (10000, 28, 28)
    assert train.y.dtype == np.int64 and train.labels == tuple("0123456789")
    assert list(train.y[:5]) == [5, 0, 4, 1, 9]  # the well-known first MNIST labels
    assert train.fingerprint() == load_mnist("train").fingerprint() != test.fingerprint()


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_gz_or_raw(tmp_path, gz):
    train, test = load_splits(idx_folder(tmp_path / "d", gz=gz))
    assert train.x.shape == (6, 4, 3) and list(train.y) == [0, 1, 2, 0, 1, 2]
    assert test is not None and len(test) == 6
    assert train.labels == ("0", "1", "2")


def test_idx_checksum_mismatch_is_refused(tmp_path):
    folder = idx_folder(tmp_path / "d")
    sums = [f"{'0' * 64}  train-images-idx3-ubyte.gz"]
    f = folder / "train-labels-idx1-ubyte.gz"
    sums.append(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}")
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: sha256 [0-9a-f]+ does not match SHA256SUMS"):
        load_splits(folder)


def test_wrong_idx_magic(tmp_path):
    folder = idx_folder(tmp_path / "d", gz=False)
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + bytes(100))
    with pytest.raises(DataError, match=r"wrong IDX magic 00000d03 \(expected 0000 08 NN"):
        load_splits(folder)


def test_truncated_idx_data(tmp_path):
    folder = idx_folder(tmp_path / "d", gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"header promises shape \(6, 4, 3\) = 72 bytes of data, the file has 67"):
        load_splits(folder)


def test_corrupt_gzip(tmp_path):
    folder = idx_folder(tmp_path / "d")
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: corrupt or truncated file"):
        load_splits(folder)


def test_image_label_count_mismatch(tmp_path):
    folder = idx_folder(tmp_path / "d")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(5) % 3)
    with pytest.raises(DataError, match="6 inputs but 5 labels"):
        load_splits(folder)


def test_missing_labels_file(tmp_path):
    folder = idx_folder(tmp_path / "d", test=False)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train labels IDX file missing"):
        load_splits(folder)


def test_npz_with_labels_and_test_split(tmp_path):
    x = np.random.default_rng(0).random((8, 5)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1] * 4), labels=np.array(["cat", "dog"]),
             x_test=x[:3], y_test=np.array([1, 0, 1]))  # fmt: skip
    train, test = load_splits(tmp_path / "d.npz")
    assert train.labels == ("cat", "dog") and train.x.dtype == np.float32 and train.input_shape == (5,)
    assert test is not None and list(test.y) == [1, 0, 1]
    assert load_dataset(tmp_path / "d.npz", "test").x.shape == (3, 5)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 2))}, r"missing arrays \['y'\]"),
        ({"x": np.array([[0.0, np.nan]] * 4), "y": np.array([0, 1, 0, 1])}, "inputs contain NaN or Inf"),
        ({"x": np.array([[0.0, np.inf]] * 4), "y": np.array([0, 1, 0, 1])}, "inputs contain NaN or Inf"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(4, dtype=np.int64)}, "only one class present"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0])}, "4 inputs but 3 labels"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0.5, 1])}, "whole-number class ids"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, -1, 1])}, "negative class id -1"),
        ({"x": np.zeros((2, 2)), "y": np.array([0, 2]), "labels": np.array(["a", "b"])}, "class id 2 but only 2"),
        ({"x": np.zeros(4), "y": np.array([0, 1, 0, 1])}, r"inputs must have shape \[N, \*input_shape\]"),
    ],
)
def test_bad_npz_contents(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_splits(tmp_path / "d.npz")


def test_npz_with_python_objects_is_refused_without_unpickling(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.array([{"evil": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(DataError, match="corrupt .npz or one holding Python objects"):
        load_splits(tmp_path / "d.npz")


def test_truncated_npz(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]))
    (tmp_path / "d.npz").write_bytes((tmp_path / "d.npz").read_bytes()[:50])
    with pytest.raises(DataError, match="corrupt .npz"):
        load_splits(tmp_path / "d.npz")


def test_missing_path_and_unsupported_file(tmp_path):
    with pytest.raises(DataError, match=r"no such file or folder \(expected an IDX folder, an .npz file"):
        load_splits(tmp_path / "nope")
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(DataError, match=r"unsupported file type \(expected an .npz"):
        load_splits(tmp_path / "d.csv")


def image_folder(root: Path, classes=("stop", "yield"), per_class=3, size=(5, 4), fmt="png", mode="RGB") -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / c / f"{i}.{fmt}")
    return root


@pytest.mark.parametrize(
    ("fmt", "mode", "shape"), [("png", "L", (4, 5)), ("jpg", "RGB", (4, 5, 3)), ("ppm", "RGB", (4, 5, 3))]
)
def test_image_folder_formats(tmp_path, fmt, mode, shape):
    train, test = load_splits(image_folder(tmp_path / "signs", fmt=fmt, mode=mode))
    assert test is None
    assert train.x.shape == (6, *shape) and train.x.dtype == np.uint8
    assert train.labels == ("stop", "yield") and list(train.y) == [0, 0, 0, 1, 1, 1]


def test_image_folder_png_pixels_are_exact(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(pixels, "L").save(tmp_path / "a" / "x.png")
    Image.fromarray(255 - pixels, "L").save(tmp_path / "b" / "x.png")
    train, _ = load_splits(tmp_path)
    np.testing.assert_array_equal(train.x[0], pixels)


def test_image_folder_with_train_and_test(tmp_path):
    image_folder(tmp_path / "d" / "train")
    image_folder(tmp_path / "d" / "test", per_class=1)
    train, test = load_splits(tmp_path / "d")
    assert len(train) == 6 and test is not None and list(test.y) == [0, 1]


def test_image_folder_mixed_sizes_are_refused(tmp_path):
    root = image_folder(tmp_path / "d")
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(root / "stop" / "big.png")
    with pytest.raises(
        DataError, match=r"big.png: shape \(9, 9, 3\) differs from .* \(4, 5, 3\) \(resize images first\)"
    ):
        load_splits(root)


def test_unreadable_image_is_named(tmp_path):
    root = image_folder(tmp_path / "d")
    (root / "yield" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        load_splits(root)


def test_single_class_image_folder_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="only one class present"):
        load_splits(image_folder(tmp_path / "one", classes=("only",)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither MNIST IDX files nor class sub-folders of images"):
        load_splits(tmp_path / "empty")


def test_make_dataset_validates_arrays():
    with pytest.raises(DataError, match="only one class present"):
        make_dataset(np.zeros((3, 2)), np.zeros(3, dtype=np.int64))
    d = make_dataset(np.ones((4, 2), dtype=np.float64), np.array([0, 1, 1, 0]))
    assert d.x.dtype == np.float32 and d.labels == ("0", "1")

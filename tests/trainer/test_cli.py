"""``python -m trainer``: a real run, and every bad input -> one message, exit code 2, nothing written."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.trainer.test_data import idx_folder, write_idx
from trainer.__main__ import main

BASE = ["--epochs", "1", "--threads", "1", "--quiet"]
FAST = [*BASE, "--hidden", "16"]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_training_run_writes_the_artifact_and_reports(tmp_path, capsys):
    code, out, err = run([*FAST, "--limit", "2000", "--out", str(tmp_path / "m")], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("epoch 1: loss ") and "val_acc" in lines[0]
    assert lines[-2].startswith("test accuracy: ") and lines[-2].endswith("(10000 images, loss " + lines[-2][-7:])
    assert lines[-1] == f"artifact: {tmp_path / 'm'}"
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == ["confusion.png", "curves.png", "model.json", "optimizer.npz", "weights.npz"]
    for png in ("confusion.png", "curves.png"):
        assert (tmp_path / "m" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    spec = json.loads((tmp_path / "m" / "model.json").read_text())
    accuracy = float(lines[-2].split()[2].rstrip("%")) / 100
    assert spec["test_metrics"]["accuracy"] == pytest.approx(accuracy, abs=5e-5)
    assert spec["dataset"]["num_train"] == 1800 and spec["dataset"]["num_val"] == 200
    assert spec["dataset"]["num_test"] == 10000 and spec["dataset"]["name"] == "mnist-train"
    assert [layer["units"] for layer in spec["architecture"]["layers"]] == [16, 10]


def test_seed_preset_and_resume(tmp_path, capsys):
    code, _, err = run(["--preset", "seed", *FAST[:2], "--threads", "1", "--quiet", "--limit", "1000",
                        "--out", str(tmp_path / "s")], capsys)  # fmt: skip
    assert code == 0, err
    spec = json.loads((tmp_path / "s" / "model.json").read_text())
    assert spec["architecture"]["layers"] == [{"units": 10, "activation": "relu"}]
    code, out, err = run(["--resume", str(tmp_path / "s"), "--epochs", "2", "--quiet", "--threads", "1",
                          "--limit", "1000", "--out", str(tmp_path / "s"), "--overwrite"], capsys)  # fmt: skip
    assert code == 0, err
    assert [line.split(":")[0] for line in out.splitlines()[:2]] == ["epoch 2", "epoch 3"]
    spec = json.loads((tmp_path / "s" / "model.json").read_text())
    assert [m["epoch"] for m in spec["metrics"]] == [1, 2, 3]


def test_npz_without_test_split_reports_validation_accuracy(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (200, 6, 6), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0, 0] > 127).astype(np.int64), labels=np.array(["dark", "light"]))
    code, out, err = run([*FAST, "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "m")], capsys)
    assert code == 0, err
    assert "validation accuracy: " in out and "(20 images" in out
    assert json.loads((tmp_path / "m" / "model.json").read_text())["labels"] == ["dark", "light"]


def test_overwrite(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "old").write_text("x")
    code, _, err = run([*FAST, "--limit", "300", "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and "already exists (pass --overwrite to replace it" in err
    assert (tmp_path / "m" / "old").exists()
    code, _, err = run([*FAST, "--limit", "300", "--out", str(tmp_path / "m"), "--overwrite"], capsys)
    assert code == 0, err
    assert not (tmp_path / "m" / "old").exists() and (tmp_path / "m" / "weights.npz").exists()


def _npz(tmp_path: Path, **arrays) -> str:
    np.savez(tmp_path / "bad.npz", **arrays)
    return str(tmp_path / "bad.npz")


def _idx_with(tmp_path: Path, fix) -> str:
    folder = idx_folder(tmp_path / "idx", test=False)
    fix(folder)
    return str(folder)


BAD_INPUTS = {
    "missing data": (lambda t: ["--data", str(t / "nope")], "no such file or folder"),
    "corrupt npz": (lambda t: ["--data", str(_corrupt(t))], "corrupt .npz"),
    "wrong idx magic": (
        lambda t: [
            "--data",
            _idx_with(
                t,
                lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0c\x03" + bytes(8))),
            ),
        ],
        "wrong IDX magic 00000c03",
    ),
    "corrupt gzip": (
        lambda t: ["--data", _idx_with(t, lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b"))],
        "corrupt or truncated file",
    ),
    "labels not 1-d": (
        lambda t: ["--data", _idx_with(t, lambda f: write_idx(f / "train-labels-idx1-ubyte.gz", np.zeros((2, 2))))],
        "labels must be one-dimensional",
    ),
    "count mismatch": (
        lambda t: ["--data", _idx_with(t, lambda f: write_idx(f / "train-labels-idx1-ubyte.gz", np.arange(4) % 2))],
        "6 inputs but 4 labels",
    ),
    "nan": (lambda t: ["--data", _npz(t, x=np.full((4, 2), np.nan), y=np.array([0, 1, 0, 1]))], "NaN or Inf"),
    "one class": (lambda t: ["--data", _npz(t, x=np.zeros((4, 2)), y=np.zeros(4, np.int64))], "only one class"),
    "batch size 0": (lambda t: ["--batch-size", "0"], "argument --batch-size: expected a positive integer, got '0'"),
    "epochs 0": (lambda t: ["--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
    "epochs text": (lambda t: ["--epochs", "ten"], "argument --epochs: expected a positive integer, got 'ten'"),
    "lr nan": (lambda t: ["--lr", "nan"], "argument --lr: expected a finite number, got 'nan'"),
    "unknown preset": (lambda t: ["--preset", "vgg"], "argument --preset: invalid choice: 'vgg' (choose from"),
    "unknown activation": (lambda t: ["--activation", "swish"], "argument --activation: invalid choice: 'swish'"),
    "bad hidden": (lambda t: ["--hidden", "256,x"], "expected comma-separated positive layer widths"),
    "preset clash": (lambda t: ["--preset", "seed", "--hidden", "64"], "--preset seed fixes --hidden"),
    "resume missing": (lambda t: ["--resume", str(t / "none")], "no such artifact directory"),
    "resume clash": (lambda t: ["--resume", str(t), "--hidden", "8"], "--resume takes the architecture"),
}


def _corrupt(tmp_path: Path) -> Path:
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 truncated")
    return tmp_path / "c.npz"


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_with_one_message_and_writes_nothing(case, tmp_path, capsys):
    data_dir = tmp_path / "in"
    data_dir.mkdir()
    make_args, message = BAD_INPUTS[case]
    out_dir = tmp_path / "out"
    code, out, err = run([*BASE, "--limit", "300", *make_args(data_dir), "--out", str(out_dir / "m")], capsys)
    assert code == 2
    assert message in err
    assert err.strip().splitlines()[-1].startswith("python -m trainer: error: ")  # one line, after any usage
    assert not out_dir.exists() and "artifact" not in out


def test_real_process_exit_code_and_console_script():
    result = subprocess.run([sys.executable, "-m", "trainer", "--epochs", "0"], capture_output=True, text=True)
    assert result.returncode == 2 and "--epochs: expected a positive integer" in result.stderr
    script = Path(sys.executable).with_name("trainer")
    help_text = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--data", "--preset", "--hidden", "--epochs", "--batch-size", "--lr", "--optimizer", "--seed",
                   "--val-split", "--patience", "--out", "--quiet", "--overwrite", "--limit", "--resume",
                   "--weight-decay", "--activation"):  # fmt: skip
        assert option in help_text

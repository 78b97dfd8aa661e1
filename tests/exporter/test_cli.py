"""``python -m exporter``: every bad input -> exit 2, one clear message, nothing left behind."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from exporter.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def artifact(tiny_artifact, tmp_path):
    return Path(shutil.copytree(tiny_artifact, tmp_path / "artifact"))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(capsys, repository, *argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert out == ""
    assert err.startswith("exporter: error: ") and message in err, err
    assert err.count("\n") == 1  # one message, not a traceback
    if repository.exists():  # no version and no temporary folder
        assert not any(p.name.isdigit() or p.name.startswith(".") for p in repository.rglob("*") if p.is_dir())


def test_export_prints_where_the_model_is_and_a_summary(capsys, artifact, tmp_path):
    code, out, err = run(capsys, artifact, "--repository", tmp_path / "models", "--name", "digits")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"exported digits version 1 to {tmp_path / 'models' / 'digits' / '1'} in ")
    assert "validated on MNIST (built in) test split (10000 images)" in lines[1]
    assert "0 label mismatches" in lines[2]
    assert [line.split()[0] for line in lines[3:6]] == ["model.onnx", "model.int8.onnx", "model.ort"]
    assert "int8: chose" in lines[6] and "dynamic" in lines[6] and "static" in lines[6]
    assert (tmp_path / "models" / "digits" / "1" / "model.onnx").is_file()


def test_missing_artifact(capsys, tmp_path):
    repo = tmp_path / "models"
    assert_refused(
        capsys, repo, tmp_path / "nope", "--repository", repo, "--name", "m", message="no such artifact directory"
    )


def test_corrupt_weights(capsys, artifact, tmp_path):
    (artifact / "weights.npz").write_bytes(b"this is not a zip file at all")
    repo = tmp_path / "models"
    assert_refused(capsys, repo, artifact, "--repository", repo, "--name", "m", message="corrupt or truncated weights")


def test_truncated_weights(capsys, artifact, tmp_path):
    data = (artifact / "weights.npz").read_bytes()
    (artifact / "weights.npz").write_bytes(data[: len(data) // 2])
    repo = tmp_path / "models"
    assert_refused(capsys, repo, artifact, "--repository", repo, "--name", "m", message="corrupt or truncated weights")


def test_weights_that_disagree_with_model_json(capsys, artifact, tmp_path):
    spec = json.loads((artifact / "model.json").read_text())
    spec["architecture"]["layers"][0]["units"] = 32  # weights.npz holds a 16-unit layer
    (artifact / "model.json").write_text(json.dumps(spec))
    repo = tmp_path / "models"
    assert_refused(
        capsys, repo, artifact, "--repository", repo, "--name", "m", message="dense_0/kernel has shape (784, 16)"
    )


def test_missing_parameter(capsys, artifact, tmp_path):
    with np.load(artifact / "weights.npz") as npz:
        kept = {k: npz[k] for k in npz.files if k != "dense_1/bias"}
    np.savez(artifact / "weights.npz", **kept)
    repo = tmp_path / "models"
    assert_refused(capsys, repo, artifact, "--repository", repo, "--name", "m", message="missing ['dense_1/bias']")


def test_unsupported_activation(capsys, artifact, tmp_path):
    spec = json.loads((artifact / "model.json").read_text())
    spec["architecture"]["layers"][0]["activation"] = "softplus"
    (artifact / "model.json").write_text(json.dumps(spec))
    repo = tmp_path / "models"
    assert_refused(
        capsys,
        repo,
        artifact,
        "--repository",
        repo,
        "--name",
        "m",
        message="layer 0 uses activation 'softplus', which the exporter does not support "
        "(expected one of relu, tanh, sigmoid, linear)",
    )


def test_existing_version(capsys, artifact, tmp_path):
    repo = tmp_path / "models"
    (repo / "m" / "3").mkdir(parents=True)
    (repo / "m" / "3" / "model.onnx").write_bytes(b"keep me")
    code, _, err = run(capsys, artifact, "--repository", repo, "--name", "m", "--version", "3")
    assert code == 2
    assert f"{repo / 'm' / '3'} already exists; choose another --version, omit it for the next free one (4)" in err
    assert (repo / "m" / "3" / "model.onnx").read_bytes() == b"keep me"
    assert sorted(p.name for p in (repo / "m").iterdir()) == ["3"]


def test_force_replaces_an_existing_version(capsys, artifact, tmp_path):
    repo = tmp_path / "models"
    (repo / "m" / "3").mkdir(parents=True)
    code, out, _ = run(capsys, artifact, "--repository", repo, "--name", "m", "--version", "3", "--force")
    assert code == 0 and "exported m version 3" in out
    assert (repo / "m" / "3" / "model.onnx").stat().st_size > 10_000


def test_repository_that_is_a_file(capsys, artifact, tmp_path):
    repo = tmp_path / "models"
    repo.write_text("not a folder")
    code, _, err = run(capsys, artifact, "--repository", repo, "--name", "m")
    assert code == 2 and f"cannot create {repo / 'm'}: {repo} is a file, not a folder" in err
    assert repo.read_text() == "not a folder"


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable for this process: mode 0555, plus the immutable attribute as root
    (root ignores the mode bits but not ``chattr +i``)."""
    folder.chmod(0o555)
    immutable = os.geteuid() == 0
    if immutable and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root and chattr +i is not available here, so nothing is read-only")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_read_only_repository(capsys, artifact, tmp_path):
    repo = tmp_path / "models"
    repo.mkdir()
    with read_only(repo):
        assert_refused(capsys, repo, artifact, "--repository", repo, "--name", "m", message="is not writable")
    assert list(repo.iterdir()) == []


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", ""])
def test_invalid_model_name(capsys, artifact, tmp_path, name):
    repo = tmp_path / "models"
    assert_refused(capsys, repo, artifact, "--repository", repo, "--name", name, message="invalid model name")


@pytest.mark.parametrize("version", ["0", "-1", "two"])
def test_invalid_version_is_a_usage_error(capsys, artifact, tmp_path, version):
    with pytest.raises(SystemExit) as exit_info:
        main([str(artifact), "--repository", str(tmp_path / "models"), "--name", "m", "--version", version])
    assert exit_info.value.code == 2
    assert "--version: expected a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_console_script_help_explains_every_option():
    result = subprocess.run(
        [Path(sys.executable).parent / "exporter", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    text = " ".join(result.stdout.split())  # argparse wraps to the terminal width
    for option in ("ARTIFACT", "--repository", "--name", "--version", "--force", "--dataset", "--max-batch-size"):
        assert option in text
    assert "(default: one more than the highest existing version, 1 for a new model)" in text
    assert "Exit status: 0 exported, 2 bad input or a failed check (nothing is left behind)." in text

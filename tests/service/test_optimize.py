"""Large models are optimised in a child process and answer exactly like an in-process load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service import optimize
from service.runtime import ModelRuntime
from tests.e2e.models import write_broken, write_model


def test_child_process_optimisation_gives_the_same_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_model(tmp_path, "m", 1, seed=4)
    x = np.random.default_rng(0).uniform(0, 255, (3, 28, 28)).astype(np.float32)
    in_process = ModelRuntime(path)
    direct = in_process.run({"images": x})
    monkeypatch.setattr(optimize, "CHILD_OPTIMIZE_BYTES", 0)  # every model counts as large
    with optimize.optimized_copy(path) as copy:
        assert copy is not None and copy.is_file()
        folder = copy.parent
    assert not folder.exists()  # the temporary copy is removed
    via_child = ModelRuntime(path)
    np.testing.assert_allclose(via_child.run({"images": x})["probabilities"], direct["probabilities"], rtol=1e-6)
    assert via_child.labels == in_process.labels and via_child.labels[0] == "zero"  # metadata survives


def test_a_broken_large_model_still_gets_onnxruntimes_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(optimize, "CHILD_OPTIMIZE_BYTES", 0)
    path = write_broken(tmp_path, "m", 1)
    with pytest.raises(Exception, match="onnxruntime cannot load it"):
        ModelRuntime(path)

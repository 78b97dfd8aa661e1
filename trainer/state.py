"""``optimizer.npz`` beside an artifact: the optimizer state that ``--resume`` continues from.

Not part of the artifact contract (the exporter ignores it); arrays only, read without pickle.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from contracts import ArtifactError, ModelSpec

OPTIMIZER_NPZ = "optimizer.npz"


def optimizer_state_bytes(state: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    savez: Any = np.savez  # numpy's stub types **kwds as if a key could be allow_pickle
    savez(buf, **dict(state))
    return buf.getvalue()


def load_optimizer_state(root: Path, num_params: int, spec: ModelSpec) -> dict[str, np.ndarray] | None:
    """The saved state, or None when the artifact has none (then a resumed run starts fresh moments)."""
    path = root / OPTIMIZER_NPZ
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            state = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ArtifactError(f"{path}: corrupt or truncated optimizer state ({e})") from e
    if "t" not in state or any(a.size != num_params for k, a in state.items() if k != "t"):
        raise ArtifactError(f"{path}: does not match the {num_params} parameters of the model")
    if not all(np.all(np.isfinite(a)) for a in state.values()):
        raise ArtifactError(f"{path}: contains NaN or Inf")
    return state

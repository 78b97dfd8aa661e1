"""Adam's update in one pass over memory, when numba is installed (the ``fast`` extra).

As numpy operations Adam is eleven passes over four parameter-sized arrays, which on the
784-256-128-10 MLP (235k parameters, arrays larger than the L2 cache) cost ~410 us a step, about
as much as the step's matrix products. Compiled with numba, the same arithmetic, element by
element and in the same order, is one loop that reads each array once: ~130-150 us, with
bit-identical results. Without numba (e.g. the lean serving image, which trains rarely) the numpy
passes run instead. ``nogil`` lets ``Optimizer``'s worker threads run chunks in parallel.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # numba is optional: `pip install deploy-anywhere[fast]`
    numba = None  # type: ignore[assignment]


def adam_numpy(p, g, m, v, b1, b2, lr_t, eps_t, tmp):  # type: ignore[no-untyped-def]
    """The update as in-place numpy passes, with ``tmp`` (shaped like ``p``) as the only scratch."""
    m -= g  # m = b1 * m + (1 - b1) * g  ==  b1 * (m - g) + g
    m *= b1
    m += g
    np.multiply(g, g, out=tmp)  # v = b2 * (v - g^2) + g^2
    v -= tmp
    v *= b2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp += eps_t
    np.divide(m, tmp, out=tmp)
    tmp *= lr_t
    p -= tmp


def _adam_loop(p, g, m, v, b1, b2, lr_t, eps_t):  # type: ignore[no-untyped-def]  # numba compiles per dtype
    for i in range(p.shape[0]):
        gi = g[i]
        mi = b1 * (m[i] - gi) + gi
        g2 = gi * gi
        vi = b2 * (v[i] - g2) + g2
        m[i] = mi
        v[i] = vi
        p[i] -= (mi / (np.sqrt(vi) + eps_t)) * lr_t


# error_model="numpy": no Python-style zero-division checks inside the loop, so it vectorises
_adam_jit = numba.njit(nogil=True, error_model="numpy", cache=False)(_adam_loop) if numba else None
FUSED = _adam_jit is not None


def adam_update(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    b1: float,
    b2: float,
    lr_t: float,
    eps_t: float,
    tmp: np.ndarray,
) -> None:
    """In place: ``m``, ``v`` take the new moments, ``p`` the step ``lr_t * m / (sqrt(v) + eps_t)``.

    Arrays are 1-D views of one dtype; scalars are cast to it so float32 stays float32 throughout.
    ``tmp`` is scratch for the numpy passes (unused by the compiled loop).
    """
    arrays = (p, g, m, v, tmp)
    if not all(a.ndim == 1 and a.flags.c_contiguous and a.dtype == p.dtype for a in arrays):
        raise ValueError("adam_update needs 1-D contiguous arrays of one dtype (an in-place update of a copy is lost)")
    dtype = p.dtype.type
    scalars = dtype(b1), dtype(b2), dtype(lr_t), dtype(eps_t)
    if _adam_jit is not None:
        _adam_jit(p, g, m, v, *scalars)
    else:
        adam_numpy(p, g, m, v, *scalars, tmp)

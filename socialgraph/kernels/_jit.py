"""The one place where numba flags are decided.

``cache=True`` keeps compiled kernels on disk between runs and Dask worker processes;
``fastmath`` stays off because exact integer counts and reproducible floating-point sums matter
more here than the last few percent of speed. ``NUMBA_CACHE_DIR`` can point the cache elsewhere
when the package directory is read-only.
"""

from __future__ import annotations

import numba

__all__ = ["njit", "pjit", "prange"]

prange = numba.prange


def njit(func=None, **kw):
    """Serial kernel: ``nopython``, cached, no fastmath."""
    opts = {"cache": True, "nogil": True, "fastmath": False}
    opts.update(kw)
    if func is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(func)


def pjit(func=None, **kw):
    """Parallel kernel (``prange`` loops) with the same flags as :func:`njit`."""
    return njit(func, parallel=True, **kw)

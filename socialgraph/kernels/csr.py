"""Symmetric CSR from a tie list already in ``(a, b)`` order, without sorting.

The graph stage hands over ties sorted by ``(a, b)`` with ``a < b`` (its buckets are key
ranges, each sorted). Row ``i`` of the symmetric CSR then holds first the ties ``(j, i)``,
``j < i``, in increasing ``j`` (met in that order scanning the list), then the ties ``(i, j)``,
``j > i``, in increasing ``j``: two counting passes place every entry, where an argsort of 2E
int64 keys needed ~48 bytes a tie more memory and most of the stage's time at 100M CDR rows.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit
def canonical_order(src: np.ndarray, dst: np.ndarray) -> bool:
    """True when ``src < dst`` everywhere and the pairs are strictly increasing."""
    for e in range(src.size):
        if src[e] >= dst[e]:
            return False
        if e and (src[e] < src[e - 1] or (src[e] == src[e - 1] and dst[e] <= dst[e - 1])):
            return False
    return True


@njit
def csr_slots(src: np.ndarray, dst: np.ndarray, keep: np.ndarray, n: int):
    """``indptr`` and, per kept tie (in order), the CSR positions of its entry in row ``src``
    (forward) and in row ``dst`` (reverse). Input in canonical order."""
    indptr = np.zeros(n + 1, np.int64)
    k = 0
    for e in range(src.size):
        if keep[e]:
            indptr[src[e] + 1] += 1
            indptr[dst[e] + 1] += 1
            k += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    pos = indptr[:-1].copy()
    fwd = np.empty(k, np.int64)
    rev = np.empty(k, np.int64)
    k = 0
    for e in range(src.size):  # row dst[e] gets its smaller neighbours src[e], increasing
        if keep[e]:
            r = dst[e]
            rev[k] = pos[r]
            pos[r] += 1
            k += 1
    k = 0
    for e in range(src.size):  # then row src[e] gets its larger neighbours, increasing
        if keep[e]:
            r = src[e]
            fwd[k] = pos[r]
            pos[r] += 1
            k += 1
    return indptr, fwd, rev

"""Kernels for finding repeated record ids without sorting: bucketing and hash counting."""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit
def _bucket_of(v, n_buckets):
    x = np.uint64(v) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64((x >> np.uint64(40)) % np.uint64(n_buckets))


@njit
def _split_by_bucket(vals, n_buckets):
    """Counting sort of ``vals`` (uint64) by bucket; returns (sorted values, bucket offsets)."""
    n = vals.shape[0]
    counts = np.zeros(n_buckets + 1, dtype=np.int64)
    for i in range(n):
        counts[_bucket_of(vals[i], n_buckets) + 1] += 1
    for k in range(n_buckets):
        counts[k + 1] += counts[k]
    pos = counts[:-1].copy()
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        k = _bucket_of(vals[i], n_buckets)
        out[pos[k]] = vals[i]
        pos[k] += 1
    return out, counts


@njit
def _repeated_values(vals):
    """The distinct values that occur more than once in ``vals`` (uint64), by hash counting."""
    n = vals.shape[0]
    cap = 16
    while cap < 2 * n:
        cap *= 2
    mask = np.uint64(cap - 1)
    keys = np.empty(cap, dtype=np.uint64)
    seen = np.zeros(cap, dtype=np.int8)  # 0 empty, 1 once, 2 repeated
    n_rep = 0
    for i in range(n):
        v = vals[i]
        h = (v * np.uint64(0xBF58476D1CE4E5B9)) & mask
        while True:
            if seen[h] == 0:
                keys[h] = v
                seen[h] = 1
                break
            if keys[h] == v:
                if seen[h] == 1:
                    seen[h] = 2
                    n_rep += 1
                break
            h = (h + np.uint64(1)) & mask
    out = np.empty(n_rep, dtype=np.uint64)
    j = 0
    for h in range(cap):
        if seen[h] == 2:
            out[j] = keys[h]
            j += 1
    return out

"""Influence kernels over the symmetric CSR: dependence and personalised PageRank.

Rows are processed in fixed blocks of about equal work (edges + rows). Every reduction is
summed per block and then over blocks in block order, so a result depends only on the graph
and the inputs, never on the number of threads or on how numba schedules the blocks.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit, pjit, prange

# Work (CSR entries + rows) per block: large enough to amortise the scheduling, small enough
# to balance two threads on skewed degree distributions.
_BLOCK_WORK = 1 << 15


@njit
def _split_blocks(indptr, block_work):
    """Row boundaries of consecutive blocks of about ``block_work`` (entries + rows) each."""
    n = indptr.shape[0] - 1
    total = indptr[n] + n
    n_blocks = max(1, min(n, (total + block_work - 1) // block_work))
    bounds = np.empty(n_blocks + 1, dtype=np.int64)
    bounds[0] = 0
    b = 1
    for i in range(n):
        # row i ends at work indptr[i + 1] + i + 1; close a block when it passes its share
        if b < n_blocks and indptr[i + 1] + i + 1 >= (total * b) // n_blocks:
            bounds[b] = i + 1
            b += 1
    while b <= n_blocks:
        bounds[b] = n
        b += 1
    return bounds


@pjit
def _invert_strength(indptr, weights):
    """``1 / s_i`` per node with ``s_i`` the sum of the row's weights; 0 where ``s_i == 0``."""
    n = indptr.shape[0] - 1
    inv = np.empty(n, dtype=np.float64)
    for i in prange(n):
        s = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            s += weights[e]
        inv[i] = 1.0 / s if s > 0.0 else 0.0
    return inv


@pjit
def _sum_dependence(indptr, indices, weights, inv_strength):
    """``sum_j w_ij / s_j`` over the row of every node (0 for isolated nodes)."""
    n = indptr.shape[0] - 1
    out = np.empty(n, dtype=np.float64)
    for i in prange(n):
        acc = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            acc += weights[e] * inv_strength[indices[e]]
        out[i] = acc
    return out


@pjit
def _iterate_pagerank(indptr, indices, weights, inv_strength, p, alpha, tol, max_iter, bounds):
    """Power iteration of PageRank with teleport and dangling mass both following ``p``.

    Pull form (the CSR is symmetric): ``x'[i] = alpha * sum_j w_ij * y[j] + c * p[i]`` with
    ``y[j] = x[j] / s_j`` and ``c = alpha * (mass on dangling nodes) + 1 - alpha``. ``y``, the
    dangling mass and the L1 change are produced in the same pass as ``x'``, so an iteration
    is one sweep over the CSR and writes no temporary arrays.

    Returns ``(x, iterations, l1_change)``; ``iterations == max_iter + 1`` means no
    convergence (``l1_change >= n * tol`` after ``max_iter`` sweeps).
    """
    n = indptr.shape[0] - 1
    n_blocks = bounds.shape[0] - 1
    x = np.empty(n, dtype=np.float64)
    x_new = np.empty(n, dtype=np.float64)
    y = np.empty(n, dtype=np.float64)
    y_new = np.empty(n, dtype=np.float64)
    err_part = np.zeros(n_blocks, dtype=np.float64)
    dang_part = np.zeros(n_blocks, dtype=np.float64)
    x0 = 1.0 / n
    for b in prange(n_blocks):
        d = 0.0
        for i in range(bounds[b], bounds[b + 1]):
            x[i] = x0
            y[i] = x0 * inv_strength[i]
            if inv_strength[i] == 0.0:
                d += x0
        dang_part[b] = d
    dangling = 0.0
    for b in range(n_blocks):
        dangling += dang_part[b]
    limit = n * tol
    err = np.inf
    for it in range(1, max_iter + 1):
        c = alpha * dangling + (1.0 - alpha)
        for b in prange(n_blocks):
            e_sum = 0.0
            d = 0.0
            for i in range(bounds[b], bounds[b + 1]):
                acc = 0.0
                for e in range(indptr[i], indptr[i + 1]):
                    acc += weights[e] * y[indices[e]]
                xi = alpha * acc + c * p[i]
                e_sum += abs(xi - x[i])
                x_new[i] = xi
                y_new[i] = xi * inv_strength[i]
                if inv_strength[i] == 0.0:
                    d += xi
            err_part[b] = e_sum
            dang_part[b] = d
        err = 0.0
        dangling = 0.0
        for b in range(n_blocks):
            err += err_part[b]
            dangling += dang_part[b]
        x, x_new = x_new, x
        y, y_new = y_new, y
        if err < limit:
            return x, it, err
    return x, max_iter + 1, err

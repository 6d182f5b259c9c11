"""Influence kernels over the symmetric CSR: dependence and personalised PageRank.

Rows are processed in fixed blocks of about equal work (edges + rows). Every reduction is
summed per block and then over blocks in block order, so a result depends only on the graph
and the inputs, never on the number of threads or on how numba schedules the blocks.

Inner loops index with unsigned integers (``np.uint64`` bounds, a ``uint32`` view of
``indices``, which the wrappers check lie in ``[0, n)``): numba then emits no negative-index
wraparound, which otherwise costs about half the speed of the random gather ``x[indices[e]]``
that dominates every kernel here.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit, pjit, prange

# Work (CSR entries + rows) per block: large enough to amortise the scheduling, small enough
# to balance two threads on skewed degree distributions.
_BLOCK_WORK = 1 << 15

# Column window of the PageRank sweep: 2**19 nodes, 4 MiB of float64 scores. The random
# gather x[j] is fast while x fits the cache share a core really gets (measured on the
# project's machine of 2026-11-26: 4 MiB about 2.5x faster than the 10 MiB of a million-node
# graph); graphs with more nodes are swept window by window (:func:`_window_transition`).
# Every window costs a pass over the partial sums and an (n + 1) int64 row pointer, so beyond
# _MAX_WINDOWS windows (4.2M nodes) the sweep stays whole: there a window layout would need
# per-window lists of the rows it touches.
_WINDOW_SHIFT = 19
_MAX_WINDOWS = 8
# Windows pay only where the scores do not fit the cache: a machine whose last-level cache
# holds twice the score vector sweeps whole (measured on a 32 MiB L3 and 1.3M nodes: 15 ms a
# sweep whole against 25 ms in three windows). Bytes of scores that sweep whole; None reads
# half the last-level cache of the machine (0 where it is not known: windows as above).
_WHOLE_SWEEP_BYTES: int | None = None


@njit
def _split_blocks(indptr, block_work):
    """Row boundaries of consecutive non-empty blocks of about ``block_work`` (entries + rows)."""
    n = indptr.shape[0] - 1
    total = indptr[n] + n
    n_shares = max(1, min(n, (total + block_work - 1) // block_work))
    bounds = np.empty(n_shares + 1, dtype=np.int64)
    bounds[0] = 0
    n_blocks = 0
    k = 1  # next share boundary to pass: total * k // n_shares
    for i in range(n):
        done = indptr[i + 1] + i + 1  # work up to the end of row i
        if k < n_shares and done >= (total * k) // n_shares:
            n_blocks += 1
            bounds[n_blocks] = i + 1
            while k < n_shares and done >= (total * k) // n_shares:
                k += 1  # a long row can pass several shares; the block just closed takes them
    if bounds[n_blocks] != n or n_blocks == 0:
        n_blocks += 1
        bounds[n_blocks] = n
    return bounds[: n_blocks + 1].copy()


@pjit
def _invert_strength(indptr, weights):
    """``1 / s_i`` per node with ``s_i`` the sum of the row's weights; 0 where ``s_i == 0``."""
    n = indptr.shape[0] - 1
    inv = np.empty(n, dtype=np.float64)
    for i in prange(n):
        s = 0.0
        for e in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            s += weights[e]
        inv[i] = 1.0 / s if s > 0.0 else 0.0
    return inv


@pjit
def _sum_dependence(indptr, indices, weights, inv_strength):
    """``sum_j w_ij / s_j`` over the row of every node (0 for isolated nodes)."""
    n = indptr.shape[0] - 1
    cols = indices.view(np.uint32)
    out = np.empty(n, dtype=np.float64)
    for i in prange(n):
        acc = 0.0
        for e in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            acc += weights[e] * inv_strength[cols[e]]
        out[i] = acc
    return out


@pjit
def _fill_transition(indptr, indices, weights, inv_strength, out):
    """``out[e] = w_ij / s_j`` for the CSR entry ``e = (i, j)``: the probability of the step
    ``j -> i``, so that row ``i`` pulls from its neighbours with one multiply per entry."""
    n = indptr.shape[0] - 1
    cols = indices.view(np.uint32)
    for i in prange(n):
        for e in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            out[e] = weights[e] * inv_strength[cols[e]]


@pjit
def _window_transition(indptr, indices, weights, inv_strength, shift, bounds, win_indptr, cols, transition):
    """Fill ``win_indptr``, ``cols``, ``transition``: the CSR split by column window, with the
    transition probabilities ``w_ij / s_j``.

    Window ``k`` holds the columns ``j`` with ``j >> shift == k``. The result is one CSR per
    window, stored one after the other: the entries of row ``i`` in window ``k`` are
    ``win_indptr[k, i] : win_indptr[k, i + 1]`` of ``cols`` / ``transition``, in the order
    they have in the row, so a row summed window after window adds the same terms in the same
    order as the whole row. The transition values are scaled window by window, so that the
    gather of ``inv_strength`` stays inside one window too.

    The caller allocates the outputs (``win_indptr`` ``(n_windows, n + 1)`` int64, ``cols``
    int32 and ``transition`` float64 like ``indices``): numpy asks the kernel for huge pages
    on large arrays, which makes first touching them several times cheaper than numba's own
    allocation.
    """
    n = indptr.shape[0] - 1
    n_blocks = bounds.shape[0] - 1
    n_windows = win_indptr.shape[0]
    src = indices.view(np.uint32)
    out_cols = cols.view(np.uint32)
    # where each block starts in each window: entries per (window, block), scanned window-major
    start = np.zeros((n_windows, n_blocks), dtype=np.int64)
    for b in prange(n_blocks):
        for e in range(np.uint64(indptr[bounds[b]]), np.uint64(indptr[bounds[b + 1]])):
            start[src[e] >> shift, b] += 1
    o = 0
    for k in range(n_windows):
        for b in range(n_blocks):
            m = start[k, b]
            start[k, b] = o
            o += m
        win_indptr[k, n] = o
    for b in prange(n_blocks):
        cursor = start[:, b].copy()
        for i in range(bounds[b], bounds[b + 1]):
            for k in range(n_windows):
                win_indptr[k, i] = cursor[k]
            for e in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
                j = src[e]
                k = j >> shift
                q = cursor[k]
                out_cols[q] = j
                transition[q] = weights[e]
                cursor[k] = q + 1
    for k in range(n_windows):
        for b in prange(n_blocks):
            for e in range(np.uint64(start[k, b]), np.uint64(win_indptr[k, bounds[b + 1]])):
                transition[e] *= inv_strength[out_cols[e]]


@njit(inline="always")
def _finish_row(i, acc, x, x_new, part, p, alpha, c, omega, keep, blend):
    """Row ``i`` of a sweep from its sum ``acc = sum_j t_ij * x[j]``: writes the new iterate
    (and the power step into ``part`` when ``keep``), returns the row's L1 change."""
    xi = alpha * acc + c * p[i]
    change = abs(xi - x[i])
    if keep:
        part[i] = xi
    if blend:
        xi = omega * xi + (1.0 - omega) * x_new[i]
    x_new[i] = xi
    return change


@pjit
def _iterate_pagerank(win_indptr, indices, transition, dangling_nodes, p, alpha, rho, tol, max_iter, bounds,
                      n_lanes, work):
    """PageRank with teleport and dangling mass both following ``p``: power iteration, or its
    Chebyshev acceleration.

    One sweep applies the Google matrix ``M`` in pull form (the CSR is symmetric):
    ``(M y)[i] = alpha * sum_j t_ij * y[j] + c * p[i]`` with ``t_ij = w_ij / s_j`` (0 when
    ``s_j == 0``) and ``c = alpha * (mass on dangling nodes) + 1 - alpha``;
    ``dangling_nodes`` (ascending ids) are the nodes of strength 0, whose mass is summed after
    each sweep (a test per row would cost a load and a branch in the hot loop).

    ``rho = 0`` is the power iteration ``y_k = M y_{k-1}``: networkx's iterates (to rounding).
    ``rho > 0`` is the Chebyshev semi-iteration (Golub and Varga 1961)
    ``y_k = omega_k * M y_{k-1} + (1 - omega_k) * y_{k-2}`` with ``omega_1 = 1``,
    ``omega_2 = 2 / (2 - rho**2)``, ``omega_k = 1 / (1 - rho**2 * omega_{k-1} / 4)``. Its error
    after ``k`` sweeps is ``P_k(M)`` times the first, where ``P_k(z) = T_k(z / rho) / T_k(1 / rho)``
    (``T_k`` the Chebyshev polynomial) keeps the eigenvalue 1 (the PageRank vector) and damps
    the spectrum on ``[-rho, rho]`` by ``1 / T_k(1 / rho)``. On an undirected graph the
    transition matrix is similar to a symmetric one, so every other eigenvalue of ``M`` is real
    and within ``[-alpha, alpha]``: ``rho = alpha`` damps all of them, at rate
    ``(1 - sqrt(1 - alpha**2)) / alpha`` per sweep (0.56 at ``alpha = 0.85``) where the power
    iteration gives ``alpha``. The weights sum to 1, so every iterate keeps a total of 1.

    Both stop on the same rule: a sweep also measures the L1 change ``|M y - y|`` that one
    power step would make to the iterate it reads, and once that is below ``n * tol`` the
    result is that power step ``M y``. For the power iteration it is the sweep's own output
    (networkx's rule and return value). Chebyshev keeps it in ``work[2]`` in the sweep where
    the change, shrinking at the rate of the sweep before, should pass the rule; when it
    passes earlier than that, one more sweep (``omega = 1``) computes it. Either way the
    result is a power step from an iterate whose change was below ``n * tol``, so it lies
    within ``alpha * n * tol / (1 - alpha)`` of the fixed point in L1.

    ``win_indptr`` is ``(n_windows, n + 1)``: the CSR split by column window
    (:func:`_window_transition`; one window is the plain CSR). Rows are swept window after
    window, so that the gathers ``y[j]`` stay inside a few MiB that stay in cache, where a
    gather over all of ``y`` would mostly miss it. The partial row sums wait in ``work[2]``;
    each row keeps one running sum in column order, so the result does not depend on the
    number of windows. The last window also finishes the iterate and the L1 change, so a
    sweep reads the CSR once and allocates nothing.

    With one window the blocks are the parallel tasks. With more, the blocks are cut into
    ``n_lanes`` runs of consecutive blocks (one per thread), each taken through all the
    windows: one parallel region, hence one barrier, per sweep rather than one per window (on
    a shared machine a barrier waits until the slowest thread is scheduled again). Tasks and
    lanes only decide which thread computes a row, never how. ``work`` is a
    ``(3, n)`` float64 scratch array allocated by the caller: two iterates and the partial
    sums (with more than one window) and the kept power step.

    Returns ``(row of work holding the result, sweeps, l1_change, converged)``; not converged
    means ``l1_change >= n * tol`` still after ``max_iter`` sweeps. The sweeps count the extra
    one of Chebyshev, which may be the ``max_iter + 1``-th.
    """
    n_windows = win_indptr.shape[0]
    n = win_indptr.shape[1] - 1
    n_blocks = bounds.shape[0] - 1
    cols = indices.view(np.uint32)
    n_lanes = max(1, min(n_lanes, n_blocks))
    lanes = np.empty(n_lanes + 1, dtype=np.int64)
    for lane in range(n_lanes + 1):
        lanes[lane] = (n_blocks * lane) // n_lanes
    err_part = np.zeros(n_blocks, dtype=np.float64)
    part = work[2]
    cur = 1  # y_{k-1} = work[cur]; the sweep writes y_k over y_{k-2} in work[1 - cur]
    x0 = 1.0 / n
    x = work[cur]
    for b in prange(n_blocks):
        for i in range(bounds[b], bounds[b + 1]):
            x[i] = x0
    dangling = 0.0
    for j in dangling_nodes:
        dangling += x[j]
    limit = n * tol
    rho2 = rho * rho
    omega = 1.0
    finishing = False  # Chebyshev has converged: this sweep is the last power step
    keep = False  # Chebyshev is expected to converge in this sweep: keep its power step in part
    converged_err = np.inf
    err = np.inf
    last_err = np.inf
    last = win_indptr[n_windows - 1]
    it = 0
    while True:
        it += 1
        if finishing or it == 1:
            omega = 1.0
        elif it == 2:
            omega = 2.0 / (2.0 - rho2)
        else:
            omega = 1.0 / (1.0 - rho2 * omega / 4.0)
        blend = omega != 1.0
        x = work[cur]
        x_new = work[1 - cur]
        c = alpha * dangling + (1.0 - alpha)
        if n_windows == 1:
            # the whole CSR: one block per task, no partial sums
            for b in prange(n_blocks):
                e_sum = 0.0
                for i in range(bounds[b], bounds[b + 1]):
                    acc = 0.0
                    for e in range(np.uint64(last[i]), np.uint64(last[i + 1])):
                        acc += transition[e] * x[cols[e]]
                    e_sum += _finish_row(i, acc, x, x_new, part, p, alpha, c, omega, keep, blend)
                err_part[b] = e_sum
        else:
            for lane in prange(n_lanes):
                first_row = bounds[lanes[lane]]
                end_row = bounds[lanes[lane + 1]]
                for k in range(n_windows - 1):
                    ptr = win_indptr[k]
                    for i in range(first_row, end_row):
                        acc = part[i] if k > 0 else 0.0
                        for e in range(np.uint64(ptr[i]), np.uint64(ptr[i + 1])):
                            acc += transition[e] * x[cols[e]]
                        part[i] = acc
                for b in range(lanes[lane], lanes[lane + 1]):
                    e_sum = 0.0
                    for i in range(bounds[b], bounds[b + 1]):
                        acc = part[i]
                        for e in range(np.uint64(last[i]), np.uint64(last[i + 1])):
                            acc += transition[e] * x[cols[e]]
                        e_sum += _finish_row(i, acc, x, x_new, part, p, alpha, c, omega, keep, blend)
                    err_part[b] = e_sum
        err = 0.0
        for b in range(n_blocks):
            err += err_part[b]
        if finishing:
            return 1 - cur, it, converged_err, True
        if err < limit:
            if not blend:
                return 1 - cur, it, err, True
            if keep:
                return 2, it, err, True
            finishing = True  # the result is M y_{k-1}: sweep again from the same iterate
            converged_err = err
            continue
        if it >= max_iter:
            return 1 - cur, it, err, False
        # keep the next power step if the change, shrinking as it did in this sweep, should pass
        keep = rho2 > 0.0 and err * err < limit * last_err
        last_err = err
        dangling = 0.0
        for j in dangling_nodes:
            dangling += x_new[j]
        cur = 1 - cur

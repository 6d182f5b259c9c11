"""Kernels of the significance tests: exact tails of churn scores, Heyse's jumps, the null's
expected counts below thresholds."""

from __future__ import annotations

import numpy as np

from ._jit import njit, pjit, prange


@pjit
def _score_tails(ptr, probs, weights, shares, observed, tails, tail_ptr, out):
    """Per group ``c`` (members ``ptr[c]:ptr[c+1]`` of ``probs``): the whole upper-tail function
    of its churn score, ``tails[tail_ptr[c] + s] = P(S >= s)`` for ``s = 0..n * max(weights)``,
    and the p-value of the observed score, ``out[c] = P(S >= observed[c])``, read from the same
    array so both agree to the bit.

    Member ``i`` scores 0 with probability ``1 - probs[i]`` and ``weights[b]`` with probability
    ``probs[i] * shares[b]`` (it churned, in period ``b``), independently of the others; ``S``
    is the sum. With ``weights = [1]``, ``shares = [1]`` it is the Poisson-binomial count."""
    n_groups = ptr.shape[0] - 1
    w_max = 0
    for b in range(weights.shape[0]):
        w_max = max(w_max, weights[b])
    for c in prange(n_groups):
        lo = ptr[c]
        n = ptr[c + 1] - lo
        top_all = n * w_max
        pmf = np.zeros(top_all + 1)
        pmf[0] = 1.0
        top = 0  # highest score reachable with the members so far
        for i in range(n):
            p = probs[lo + i]
            # in place, from the top down: pmf[s] still holds the old value when it is read
            for s in range(top, -1, -1):
                v = pmf[s]
                if v == 0.0:
                    continue
                pmf[s] = v * (1.0 - p)
                for b in range(weights.shape[0]):
                    pmf[s + weights[b]] += v * p * shares[b]
            top += w_max
        base = tail_ptr[c]
        acc = 0.0
        for x in range(top_all, -1, -1):
            acc += pmf[x]
            tails[base + x] = min(1.0, acc)
        tails[base] = 1.0  # P(S >= 0), exactly
        k = observed[c]
        if k <= 0:
            out[c] = 1.0
        elif k > top_all:
            out[c] = 0.0
        else:
            out[c] = tails[base + k]


@njit
def _largest_at_most(ptr, flat, group, thresholds, out):
    """``out[g, k] = sum`` over the tests ``j`` of group ``g = group[j]`` (``-1``: left out) of
    the largest value of their support ``flat[ptr[j]:ptr[j+1]]`` at or below ``thresholds[k]``
    (0 if none): the null's expected number of tests at ``p <= thresholds[k]``. One pass over
    the supports for every group, nothing allocated per value (they are ~0.5 GB at 100M rows)."""
    n_t = thresholds.shape[0]
    best = np.zeros(n_t)
    for j in range(ptr.shape[0] - 1):
        g = group[j]
        if g < 0:
            continue
        best[:] = 0.0
        for i in range(ptr[j], ptr[j + 1]):
            v = flat[i]
            for k in range(n_t):
                if best[k] < v <= thresholds[k]:
                    best[k] = v
        for k in range(n_t):
            out[g, k] += best[k]


@njit
def _heyse_jumps(ptr, flat, w, ok, ranked, acc):
    """For each tested ``j`` and each value ``a`` of its descending support: its jump
    ``a - next`` is added to ``acc[k]``, ``k`` the first ranked ``p / w`` at or above ``a / w_j``."""
    for j in range(ptr.shape[0] - 1):
        if not ok[j]:
            continue
        hi = ptr[j + 1]
        for i in range(ptr[j], hi):
            step = flat[i] - (flat[i + 1] if i + 1 < hi else 0.0)
            if step > 0.0:
                acc[np.searchsorted(ranked, flat[i] / w[j])] += step


@njit
def _poisson_binomial_pmf(probs):
    n = probs.shape[0]
    pmf = np.zeros(n + 1)
    pmf[0] = 1.0
    for i in range(n):
        p = probs[i]
        for k in range(i + 1, 0, -1):
            pmf[k] = pmf[k] * (1.0 - p) + pmf[k - 1] * p
        pmf[0] *= 1.0 - p
    return pmf

"""The statistics of community-level churn contagion.

A circle's churn in the look-back window is compared with what its members' own baseline
risks predict. With independent members of churn probabilities ``p_1..p_n``, the number of
churners is Poisson-binomial; the one-sided p-value of observing ``k`` or more churners is its
exact upper tail (:func:`churn_excess_pvalue`). Across thousands of circles the p-values are
turned into Benjamini-Hochberg q-values (:func:`bh_qvalues`), so that flagging circles with
``q <= FDR`` keeps the expected share of false alarms among the flagged at most ``FDR``.
"""

from __future__ import annotations

import numpy as np

from .kernels._jit import njit

__all__ = ["bh_qvalues", "poisson_binomial_sf", "churn_excess_pvalue"]


def bh_qvalues(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), as ``scipy.stats.false_discovery_control``.

    NaN p-values (circles that could not be tested) stay NaN and do not count as tests.

    >>> bh_qvalues(np.array([0.01, 0.04, 0.03, 0.5])).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.5]
    """
    p = np.asarray(p_values, np.float64)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("bh_qvalues: p-values must be in [0, 1]")
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


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


def poisson_binomial_sf(k: int, probs: np.ndarray) -> float:
    """P(X >= k) for X the number of successes of independent trials with ``probs``.

    Exact (dynamic programming over members, O(n^2)), so small circles get honest p-values
    where a normal approximation would not.

    >>> round(poisson_binomial_sf(2, np.array([0.5, 0.5, 0.5])), 6)
    0.5
    """
    probs = np.ascontiguousarray(probs, np.float64)
    if probs.ndim != 1 or np.any((probs < 0) | (probs > 1)) or np.any(np.isnan(probs)):
        raise ValueError("poisson_binomial_sf: probs must be a 1-D array of probabilities")
    if k <= 0:
        return 1.0
    if k > probs.size:
        return 0.0
    pmf = _poisson_binomial_pmf(probs)
    return float(min(1.0, max(0.0, pmf[k:].sum())))


def churn_excess_pvalue(churned: int, member_risk: np.ndarray) -> float:
    """One-sided p-value that a circle's churn count is above its members' baseline risks.

    ``member_risk`` holds each member's probability of churning in the window (members active
    at its start); ``churned`` how many did.

    >>> churn_excess_pvalue(4, np.full(8, 0.05)) < 0.001, churn_excess_pvalue(0, np.full(8, 0.05))
    (True, 1.0)
    """
    member_risk = np.asarray(member_risk, np.float64)
    if churned < 0 or churned > member_risk.size:
        raise ValueError(f"churn_excess_pvalue: churned must be in [0, {member_risk.size}], got {churned}")
    return poisson_binomial_sf(int(churned), member_risk)

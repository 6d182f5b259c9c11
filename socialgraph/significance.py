"""The exact significance of churn counts and scores, and their q-values across many tests.

A circle's members churn independently under the null, each with its own probability, so its
churn count is Poisson-binomial: :func:`poisson_binomial_sf` and :func:`churn_excess_pvalue`
give its exact upper tail, :func:`excess_tails` the tails of many groups at once, and
:func:`score_tails` those of a churn *score* whose churners count by when they left. Across
many tests, :func:`bh_qvalues` gives (weighted) Benjamini-Hochberg q-values and
:func:`discrete_bh_qvalues` Heyse's discrete version, which uses each test's attainable
p-values; :func:`beyond_chance` counts the tests below a few thresholds against what chance
alone puts there. :mod:`socialgraph.contagion` applies them to circles.
"""

from __future__ import annotations

import numpy as np

from .kernels.significance import _heyse_jumps, _largest_at_most, _poisson_binomial_pmf, _score_tails

__all__ = ["bh_qvalues", "discrete_bh_qvalues", "beyond_chance", "poisson_binomial_sf", "churn_excess_pvalue",
           "excess_tails", "score_tails"]


def _check_weights(weights, p: np.ndarray, name: str) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    if w.shape != p.shape or not np.all(w > 0):
        raise ValueError(f"{name}: need one positive weight per p-value")
    return w


def bh_qvalues(p_values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), as ``scipy.stats.false_discovery_control``.

    NaN p-values (circles that could not be tested) stay NaN and do not count as tests.
    ``weights`` (positive, one per p-value, averaging 1 over the tests) give the weighted BH
    procedure of Genovese, Roeder and Wasserman (2006): BH on ``p / w``, which keeps the FDR
    bound when the weights are fixed before the data are seen.

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
    if weights is not None:
        pv = pv / _check_weights(weights, p, "bh_qvalues")[ok]
    order = np.argsort(pv, kind="stable")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


def discrete_bh_qvalues(p_values: np.ndarray, supports: list[np.ndarray],
                        weights: np.ndarray | None = None) -> np.ndarray:
    """Discrete Benjamini-Hochberg (Heyse 2011) adjusted p-values.

    BH bounds the expected number of null p-values at or below ``t`` by ``m * t``, which is
    right for continuous tests. A circle's churn count is discrete: a 2-member circle can only
    reach p-values 1, about ``2p`` or ``p**2``, so most circles cannot fall below a small ``t``
    at all. Heyse's procedure replaces ``m * t`` by ``sum_j F_j(t)``, ``F_j(t)`` the largest
    p-value test ``j`` can attain at or below ``t`` (its exact null probability of being
    ``<= t``): ``q_(i) = min_{k >= i} sum_j F_j(p_(k)) / k``. With continuous supports it is
    BH; with discrete ones it is never larger and usually much smaller. ``supports[j]`` holds
    the attainable p-values of test ``j`` (any order, containing 1); NaN p-values stay NaN.

    ``weights`` (positive, averaging 1 over the tests) make it the weighted procedure: test
    ``j`` is ranked by ``p_j / w_j`` and the expected null count below ``t`` is
    ``sum_j F_j(w_j t)``, which is weighted BH (:func:`bh_qvalues`) for continuous supports.

    A 2-member circle at baseline 1 % where both left, and two 1-member circles that cannot
    go below 0.5 whatever happens:

    >>> sup = [np.array([1.0, 0.0199, 1e-4]), np.array([1.0, 0.5]), np.array([1.0, 0.5])]
    >>> p = np.array([1e-4, 1.0, 1.0])
    >>> discrete_bh_qvalues(p, sup).tolist(), bh_qvalues(p).round(6).tolist()
    ([0.0001, 1.0, 1.0], [0.0003, 1.0, 1.0])
    """
    p = np.asarray(p_values, np.float64)
    flat, ptr = _flat_supports(p, supports, "discrete_bh_qvalues")
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return q
    w = np.ones(p.size) if weights is None else _check_weights(weights, p, "discrete_bh_qvalues")
    # each test's support in descending order (the job's tails P(X >= x), x = 0..n, already are)
    if not np.all((flat[1:] <= flat[:-1]) | _run_starts(ptr, flat.size)[1:]):
        flat = flat[np.lexsort((-flat, np.repeat(np.arange(p.size), np.diff(ptr))))]
    r = p / w  # tests ranked by p / w; NaN (not a test) sorts last and is left out
    rank = np.argsort(r, kind="stable")[: int(ok.sum())]
    rs = r[rank]
    # F_j jumps at each attainable value a by (a - the next smaller attainable value of the
    # same test), at a / w_j on the scale of p / w: add each jump at the first ranked test it
    # reaches, then sum (no array of all the tests' jumps is sorted: at 100M CDRs that is 30M)
    acc = np.zeros(rs.size + 1)
    _heyse_jumps(ptr, flat, w, ok, rs, acc)
    expected = np.cumsum(acc[:-1])
    adj = expected / np.arange(1, rs.size + 1)
    adj = np.minimum(np.minimum.accumulate(adj[::-1])[::-1], 1.0)
    q[rank] = adj
    return q


def beyond_chance(p_values: np.ndarray, supports, thresholds=(0.01, 0.001, 0.0001),
                  groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """How many tests reached ``p <= t``, for each threshold ``t``, and how many chance alone
    would put there: ``(observed, expected)``, one entry per threshold.

    Under its null a discrete test reaches ``p <= t`` with probability ``F_j(t)``, the largest
    p-value it can attain at or below ``t`` (what :func:`discrete_bh_qvalues` charges it), so
    ``sum_j F_j(t)`` tests are expected there by chance. Far more observed than expected: the
    tests hold real signal (churn that clusters in circles beyond the members' own risks);
    about as many: no more than chance, or a null that describes the data; clearly fewer: a
    conservative null (risks set too high), which costs power. ``supports`` as in
    :func:`discrete_bh_qvalues`; NaN p-values are not tests. ``groups`` (an integer ``0..G-1``
    per test) counts each group apart, in one pass: both results then have one row per group.

    A circle of two at 1 % each where both left, and one that cannot go below 0.5:

    >>> sup = [np.array([1.0, 0.0199, 1e-4]), np.array([1.0, 0.5])]
    >>> seen, chance = beyond_chance(np.array([1e-4, 1.0]), sup, (0.05, 0.001))
    >>> seen.tolist(), chance.round(4).tolist()
    ([1, 1], [0.0199, 0.0001])
    >>> seen, chance = beyond_chance(np.array([1e-4, 1.0]), sup, (0.05, 0.001), groups=np.array([1, 0]))
    >>> seen.tolist(), chance.round(4).tolist()
    ([[0, 0], [1, 1]], [[0.0, 0.0], [0.0199, 0.0001]])
    """
    p = np.asarray(p_values, np.float64)
    flat, ptr = _flat_supports(p, supports, "beyond_chance")
    t = np.asarray(thresholds, np.float64)
    if t.ndim != 1 or np.any((t <= 0) | (t > 1)):
        raise ValueError(f"beyond_chance: thresholds must be in (0, 1], got {thresholds!r}")
    tested = ~np.isnan(p)
    if groups is None:
        group = np.zeros(p.size, np.int64)
    else:
        group = np.asarray(groups, np.int64)
        if group.shape != p.shape or np.any(group < 0):
            raise ValueError("beyond_chance: need one group number (0 or more) per p-value")
    n_groups = int(group.max()) + 1 if group.size else 1
    group = np.where(tested, group, -1)
    observed = np.stack([np.bincount(group[tested], weights=p[tested] <= x, minlength=n_groups).astype(np.int64)
                         for x in t], axis=1)
    expected = np.zeros((n_groups, t.size))
    _largest_at_most(ptr, np.ascontiguousarray(flat), group, np.ascontiguousarray(t), expected)
    return (observed[0], expected[0]) if groups is None else (observed, expected)


def _flat_supports(p: np.ndarray, supports, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Supports as ``(all values one after the other, offsets)``, checked against ``p``."""
    if isinstance(supports, tuple):  # (all supports one after the other, offsets): no per-test arrays
        flat, ptr = np.asarray(supports[0], np.float64), np.asarray(supports[1], np.int64)
    else:
        flat = np.concatenate([np.asarray(s, np.float64) for s in supports]) if len(supports) else np.zeros(0)
        ptr = np.zeros(len(supports) + 1, np.int64)
        np.cumsum([len(s) for s in supports], out=ptr[1:])
    if p.ndim != 1 or ptr.size - 1 != p.size:
        raise ValueError(f"{name}: need one support per p-value, got {ptr.size - 1} supports for {p.size} p-values")
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"{name}: p-values must be in [0, 1]")
    if (flat < 0).any():
        raise ValueError(f"{name}: attainable p-values must not be negative")
    return flat, ptr


def _run_starts(ptr: np.ndarray, size: int) -> np.ndarray:
    """Bool per flat position: the first value of a test's support."""
    starts = np.zeros(size + 1, bool)
    starts[ptr[:-1]] = True
    return starts[:size]


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


def excess_tails(sizes: np.ndarray, probs: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Exact churn-excess p-values of many groups at once, and each group's attainable p-values.

    Group ``c`` has ``sizes[c]`` consecutive members in ``probs``; returns ``P(X_c >= observed[c])``
    per group and the list of ``P(X_c >= x)``, ``x = 0..sizes[c]`` (the support that
    :func:`discrete_bh_qvalues` needs).

    >>> p, sup = excess_tails(np.array([2, 1]), np.array([0.1, 0.1, 0.5]), np.array([2, 0]))
    >>> p.round(4).tolist(), [s.round(4).tolist() for s in sup]
    ([0.01, 1.0], [[1.0, 0.19, 0.01], [1.0, 0.5]])
    """
    return score_tails(sizes, probs, observed)


def score_tails(sizes: np.ndarray, probs: np.ndarray, observed: np.ndarray, weights=(1,), shares=(1.0,)
                ) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`excess_tails` of a churn *score*: a member who churns in period ``b`` of the window
    scores ``weights[b]`` (positive integers), and under the null churns (probability
    ``probs[i]``) in period ``b`` with probability ``shares[b]`` (summing to 1). Returns
    ``P(S_c >= observed[c])`` per group and ``P(S_c >= s)``, ``s = 0..sizes[c] * max(weights)``.

    Two members at 10 %, a churn in the second half counting 2, churn split 40/60 between the
    halves: both churning late (score 4) has probability ``(0.1 * 0.6) ** 2``:

    >>> p, sup = score_tails(np.array([2]), np.array([0.1, 0.1]), np.array([4]), (1, 2), (0.4, 0.6))
    >>> round(float(p[0]), 6), len(sup[0])
    (0.0036, 5)
    """
    p, tails, ptr = _score_tails_flat(sizes, probs, observed, weights, shares)
    return p, (np.split(tails, ptr[1:-1]) if p.size else [])


def _score_tails_flat(sizes: np.ndarray, probs: np.ndarray, observed: np.ndarray, weights=(1,), shares=(1.0,)):
    """:func:`score_tails` with the supports one after the other: ``(p, tails, offsets)``."""
    sizes = np.asarray(sizes, np.int64)
    probs = np.ascontiguousarray(probs, np.float64)
    observed = np.ascontiguousarray(observed, np.int64)
    weights = np.ascontiguousarray(weights, np.int64)
    shares = np.ascontiguousarray(shares, np.float64)
    if sizes.sum() != probs.size or observed.size != sizes.size:
        raise ValueError("excess_tails: sizes must sum to len(probs) and match observed")
    if np.any((probs < 0) | (probs > 1)) or np.any(np.isnan(probs)):
        raise ValueError("excess_tails: probs must be probabilities")
    if (weights.ndim != 1 or weights.size == 0 or weights.shape != shares.shape or np.any(weights < 1)
            or np.any(shares < 0) or not np.isclose(shares.sum(), 1.0)):
        raise ValueError("score_tails: need positive integer weights and one share per weight, summing to 1")
    ptr = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes, out=ptr[1:])
    tail_ptr = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes * int(weights.max()) + 1, out=tail_ptr[1:])
    tails = np.empty(int(tail_ptr[-1]))
    out = np.empty(sizes.size)
    if sizes.size:
        _score_tails(ptr, probs, weights, shares, observed, tails, tail_ptr, out)
    return out, tails, tail_ptr

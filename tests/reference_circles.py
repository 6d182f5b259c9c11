"""Slow, obviously-correct oracles for the circle kernels and the contagion statistics.

Each one follows its definition literally, with Python loops and dicts: no CSR, no sorting
tricks, no cumulative sums. They are only fit for the small inputs of the tests.
"""

from __future__ import annotations

import itertools
import math


def in_circle_ties_reference(ties: dict[tuple[int, int], float], circles: list[list[int | None]]):
    """Per member of each circle, in the given order: (in-circle strength, strongest in-circle
    tie, in-circle influence).

    ``ties`` maps an unordered pair ``(u, v)`` (either order, stored once) to its weight; a
    member ``None`` is a number without ties. Influence of ``u`` is the sum over the circle
    members ``v`` tied to ``u`` of ``w_uv / strength_v``.
    """
    def weight(u, v):
        if u is None or v is None or u == v:
            return 0.0
        return ties.get((u, v), ties.get((v, u), 0.0))

    strength, strongest, influence = [], [], []
    for members in circles:
        distinct = list(dict.fromkeys(m for m in members if m is not None))
        s = {u: sum(weight(u, v) for v in distinct) for u in distinct}
        for u in members:
            if u is None:
                strength.append(0.0)
                strongest.append(0.0)
                influence.append(0.0)
                continue
            strength.append(s[u])
            strongest.append(max([weight(u, v) for v in distinct] + [0.0]))
            influence.append(sum(weight(u, v) / s[v] for v in distinct if weight(u, v) > 0 and s[v] > 0))
    return strength, strongest, influence


def tail_by_enumeration(probs: list[float]) -> list[float]:
    """``P(X >= x)`` for ``x = 0..n``, X the number of successes, by summing the probability of
    every one of the ``2**n`` outcomes."""
    n = len(probs)
    pmf = [0.0] * (n + 1)
    for outcome in itertools.product((0, 1), repeat=n):
        pr = 1.0
        for o, p in zip(outcome, probs):
            pr *= p if o else 1.0 - p
        pmf[sum(outcome)] += pr
    return [sum(pmf[x:]) for x in range(n + 1)]


def score_tail_by_enumeration(probs: list[float], weights: list[int], shares: list[float]) -> list[float]:
    """``P(S >= s)`` for ``s = 0..n * max(weights)``, S the sum of the members' scores (0 if the
    member stays, ``weights[b]`` if it churns in period ``b``, probability ``p * shares[b]``),
    by summing the probability of every one of the ``(1 + len(weights)) ** n`` outcomes."""
    n, top = len(probs), len(probs) * max(weights)
    pmf = [0.0] * (top + 1)
    for outcome in itertools.product(range(len(weights) + 1), repeat=n):  # 0 = stays, b + 1 = period b
        pr, score = 1.0, 0
        for o, p in zip(outcome, probs):
            if o == 0:
                pr *= 1.0 - p
            else:
                pr *= p * shares[o - 1]
                score += weights[o - 1]
        pmf[score] += pr
    return [sum(pmf[x:]) for x in range(top + 1)]


def heyse_qvalues(p_values: list[float], supports: list[list[float]],
                  weights: list[float] | None = None) -> list[float]:
    """Heyse's discrete BH, literally: ``q_(i) = min_{k >= i} sum_j F_j(p_(k)) / k`` (capped at 1),
    ``F_j(t)`` the largest attainable p-value of test ``j`` that is ``<= t`` (0 if none).
    NaN p-values are not tests and stay NaN. With ``weights``, tests are ordered by
    ``r_j = p_j / w_j`` and the sum is ``sum_j F_j(w_j r_(k))``."""
    tests = [j for j, p in enumerate(p_values) if not math.isnan(p)]
    m = len(tests)
    w = [1.0] * len(p_values) if weights is None else list(weights)

    def big_f(j, t):
        return max([a for a in supports[j] if a <= t], default=0.0)

    r = {j: p_values[j] / w[j] for j in tests}
    ordered = sorted(tests, key=lambda j: r[j])
    expected_at = [sum(big_f(j, w[j] * r[ordered[k]]) for j in tests) for k in range(m)]
    q = [math.nan] * len(p_values)
    for i, j in enumerate(ordered):
        q[j] = min(1.0, min(expected_at[k] / (k + 1) for k in range(i, m)))
    return q


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Plain BH on the non-NaN p-values: ``q_(i) = min_{k >= i} m p_(k) / k``."""
    tests = [j for j, p in enumerate(p_values) if not math.isnan(p)]
    m = len(tests)
    ordered = sorted(tests, key=lambda j: p_values[j])
    q = [math.nan] * len(p_values)
    for i, j in enumerate(ordered):
        q[j] = min(1.0, min(m * p_values[ordered[k]] / (k + 1) for k in range(i, m)))
    return q


def cpm_reference(src, dst, weight, node_weight, membership, resolution: float) -> float:
    """The CPM quality as igraph defines it, with node weights (1 each: plain CPM): the weight
    of the ties inside communities minus ``resolution * W**2 / 2`` per community, ``W`` its
    total node weight. ``src, dst, weight``: each undirected tie once."""
    inside = sum(float(w) for u, v, w in zip(src, dst, weight) if membership[u] == membership[v])
    total: dict = {}
    for node, community in enumerate(membership):
        total[community] = total.get(community, 0.0) + float(node_weight[node])
    return inside - resolution * sum(t * t for t in total.values()) / 2

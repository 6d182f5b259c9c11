"""socialgraph.significance: exact tails against brute-force enumeration, q-values against
scipy and Heyse's formula written out."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from reference_circles import benjamini_hochberg, heyse_qvalues, score_tail_by_enumeration, tail_by_enumeration
from scipy import stats

from socialgraph.significance import (
    beyond_chance,
    bh_qvalues,
    churn_excess_pvalue,
    discrete_bh_qvalues,
    excess_tails,
    poisson_binomial_sf,
    score_tails,
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_bh_matches_scipy(ps):
    p = np.array(ps)
    assert_allclose(bh_qvalues(p), stats.false_discovery_control(p, method="bh"), rtol=1e-12, atol=0)


def test_bh_leaves_untestable_circles_out():
    p = np.array([0.01, np.nan, 0.04, 0.03])
    q = bh_qvalues(p)
    assert np.isnan(q[1])
    assert_allclose(q[[0, 2, 3]], stats.false_discovery_control(p[[0, 2, 3]], method="bh"))


def test_bh_rejects_bad_p():
    with pytest.raises(ValueError):
        bh_qvalues(np.array([0.5, 1.5]))


def _brute_sf(k, probs):
    total = 0.0
    for outcome in itertools.product([0, 1], repeat=len(probs)):
        if sum(outcome) >= k:
            total += np.prod([p if o else 1 - p for o, p in zip(outcome, probs)])
    return total


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10), st.integers(0, 11))
def test_poisson_binomial_matches_enumeration(probs, k):
    assert poisson_binomial_sf(k, np.array(probs)) == pytest.approx(_brute_sf(k, probs), abs=1e-12)


@pytest.mark.parametrize("n,p", [(5, 0.1), (40, 0.02), (300, 0.3)])
def test_equal_risks_give_the_binomial_tail(n, p):
    for k in range(0, n + 1, max(1, n // 7)):
        assert poisson_binomial_sf(k, np.full(n, p)) == pytest.approx(stats.binom.sf(k - 1, n, p), rel=1e-9, abs=1e-15)


def test_excess_churn_is_significant_and_expected_churn_is_not():
    risk = np.full(10, 0.03)
    assert churn_excess_pvalue(5, risk) < 1e-5   # a planted clique of churners
    assert churn_excess_pvalue(0, risk) == 1.0   # nothing happened
    assert churn_excess_pvalue(1, np.full(40, 0.03)) > 0.5  # about what 40 x 3 % predicts


def test_bad_inputs():
    with pytest.raises(ValueError):
        churn_excess_pvalue(3, np.array([0.1, 0.2]))
    with pytest.raises(ValueError):
        poisson_binomial_sf(1, np.array([0.1, 1.2]))


# -- excess_tails: the batched exact tails ------------------------------------------------------

def _random_groups(rng, n_groups, max_size=10):
    sizes = rng.integers(0, max_size + 1, n_groups)
    probs = rng.random(sizes.sum()) ** 2  # many small risks, as churn baselines are
    probs[rng.random(probs.size) < 0.05] = 0.0
    probs[rng.random(probs.size) < 0.05] = 1.0
    observed = np.array([rng.integers(-1, s + 2) for s in sizes])
    return sizes, probs, observed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_excess_tails_match_enumeration_of_every_outcome(seed):
    rng = np.random.default_rng(seed)
    sizes, probs, observed = _random_groups(rng, 25)
    p, supports = excess_tails(sizes, probs, observed)
    assert len(supports) == sizes.size and p.shape == (sizes.size,)
    start = 0
    for c, n in enumerate(sizes):
        truth = tail_by_enumeration(list(probs[start:start + n]))
        start += n
        assert supports[c].shape == (n + 1,)
        assert_allclose(supports[c], truth, rtol=1e-12, atol=1e-14)
        k = observed[c]
        assert p[c] == pytest.approx(1.0 if k <= 0 else 0.0 if k > n else truth[k], rel=1e-12, abs=1e-14)
        # the support starts at 1 exactly and never increases, and holds the p-value itself
        assert supports[c][0] == 1.0
        assert np.all(np.diff(supports[c]) <= 0)
        if 0 <= k <= n:
            assert p[c] in supports[c]


@pytest.mark.parametrize("n,prob", [(1, 0.3), (7, 0.05), (60, 0.02), (250, 0.1)])
def test_excess_tails_with_equal_risks_are_binomial(n, prob):
    observed = np.arange(n + 1)
    sizes = np.full(n + 1, n)
    p, supports = excess_tails(sizes, np.full(sizes.sum(), prob), observed)
    truth = stats.binom.sf(observed - 1, n, prob)
    assert_allclose(p, truth, rtol=1e-9, atol=1e-300)
    for s in supports:
        assert_allclose(s, truth, rtol=1e-9, atol=1e-300)


def test_excess_tails_edge_cases_and_bad_input():
    p, supports = excess_tails(np.array([], np.int64), np.array([]), np.array([], np.int64))
    assert p.size == 0 and supports == []
    p, supports = excess_tails(np.array([0, 1]), np.array([0.25]), np.array([0, 1]))
    assert p.tolist() == [1.0, 0.25] and [s.tolist() for s in supports] == [[1.0], [1.0, 0.25]]
    with pytest.raises(ValueError):
        excess_tails(np.array([2]), np.array([0.1]), np.array([1]))
    with pytest.raises(ValueError):
        excess_tails(np.array([1]), np.array([1.5]), np.array([1]))
    with pytest.raises(ValueError):
        excess_tails(np.array([1]), np.array([np.nan]), np.array([1]))


@pytest.mark.parametrize("seed,weights", [(0, (1, 2)), (1, (1, 2)), (2, (1, 3)), (3, (2, 1)), (4, (1,))])
def test_score_tails_match_enumeration_of_every_outcome(seed, weights):
    rng = np.random.default_rng(seed)
    sizes, probs, _ = _random_groups(rng, 12, max_size=6)
    shares = rng.dirichlet(np.ones(len(weights)))
    top = sizes * max(weights)
    observed = np.array([rng.integers(-1, t + 2) for t in top])
    p, supports = score_tails(sizes, probs, observed, weights, shares)
    start = 0
    for c, n in enumerate(sizes):
        truth = score_tail_by_enumeration(list(probs[start:start + n]), list(weights), list(shares))
        start += n
        assert supports[c].shape == (top[c] + 1,)
        assert_allclose(supports[c], truth, rtol=1e-11, atol=1e-14)
        k = observed[c]
        assert p[c] == pytest.approx(1.0 if k <= 0 else 0.0 if k > top[c] else truth[k], rel=1e-11, abs=1e-14)
        assert supports[c][0] == 1.0 and np.all(np.diff(supports[c]) <= 1e-15)


def test_score_tails_with_weight_one_is_the_count_and_bad_input_is_refused():
    rng = np.random.default_rng(9)
    sizes, probs, observed = _random_groups(rng, 30)
    p1, s1 = excess_tails(sizes, probs, observed)
    p2, s2 = score_tails(sizes, probs, observed, (1, 1), (0.3, 0.7))  # a churn is a churn, whenever
    assert_allclose(p1, p2, rtol=1e-12, atol=1e-15)
    for a, b in zip(s1, s2):
        assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # a late pair is rarer than any pair: (p * late share)^2 when both of two members churn late
    p_late, _ = score_tails(np.array([2]), np.array([0.1, 0.1]), np.array([4]), (1, 2), (0.4, 0.6))
    assert p_late[0] == pytest.approx((0.1 * 0.6) ** 2, rel=1e-12)
    for weights, shares in (((1, 2), (0.5,)), ((0, 2), (0.5, 0.5)), ((1, 2), (0.5, 0.6)), ((), ())):
        with pytest.raises(ValueError, match="score_tails"):
            score_tails(np.array([1]), np.array([0.1]), np.array([1]), weights, shares)


# -- discrete Benjamini-Hochberg ----------------------------------------------------------------

def test_discrete_bh_on_a_fine_uniform_grid_is_plain_bh():
    grid = np.linspace(0, 1, 100_001)[1:]  # F_j(t) = floor(t * 1e5) / 1e5, within 1e-5 of t
    rng = np.random.default_rng(4)
    for m in (1, 7, 40):
        on_grid = grid[rng.integers(0, grid.size, m)]  # attainable values, to the bit
        q = discrete_bh_qvalues(on_grid, [grid] * m)
        assert_allclose(q, stats.false_discovery_control(on_grid, method="bh"), rtol=1e-9)
        anywhere = rng.random(m) ** 3
        q = discrete_bh_qvalues(anywhere, [grid] * m)
        assert_allclose(q, stats.false_discovery_control(anywhere, method="bh"), rtol=0, atol=m * 1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_discrete_bh_is_heyse_formula_literally(seed):
    rng = np.random.default_rng(seed)
    sizes, probs, _ = _random_groups(rng, int(rng.integers(1, 30)), max_size=6)
    observed = np.array([rng.integers(0, s + 1) for s in sizes])
    p, supports = excess_tails(sizes, probs, observed)
    p[rng.random(p.size) < 0.2] = np.nan
    q = discrete_bh_qvalues(p, supports)
    truth = heyse_qvalues(list(p), [list(s) for s in supports])
    assert_allclose(q, truth, rtol=1e-12, atol=1e-15)
    # the flat form the job uses (every support one after the other, and their offsets)
    ptr = np.cumsum([0] + [len(s) for s in supports])
    flat = np.concatenate(supports) if supports else np.zeros(0)
    assert_allclose(discrete_bh_qvalues(p, (flat, ptr)), truth, rtol=1e-12, atol=1e-15)
    # discreteness only helps: never above BH on the same p-values
    tested = ~np.isnan(p)
    assert np.all(q[tested] <= bh_qvalues(p)[tested] * (1 + 1e-12))
    assert_allclose(bh_qvalues(p), benjamini_hochberg(list(p)), rtol=1e-12)


def test_discrete_bh_with_arbitrary_supports_and_ties():
    supports = [np.array([1.0, 0.3, 0.01]), np.array([0.5, 1.0]), np.array([1.0, 0.3, 0.05, 0.01]),
                np.array([1.0]), np.array([1.0, 0.3, 0.01])]
    p = np.array([0.01, 0.5, 0.01, 1.0, 0.3])
    truth = heyse_qvalues(list(p), [list(s) for s in supports])
    assert_allclose(discrete_bh_qvalues(p, supports), truth, rtol=1e-12)
    # by hand: at t = 0.01 the tests reach 0.01 + 0 + 0.01 + 0 + 0.01 = 0.03, two p-values there
    assert discrete_bh_qvalues(p, supports)[0] == pytest.approx(0.015)


def test_discrete_bh_nan_tests_are_left_out():
    supports = [np.array([1.0, 0.2, 0.004]), np.array([1.0, 0.5]), np.array([1.0, 0.1, 0.001]),
                np.array([1.0, 0.02])]
    p = np.array([0.004, np.nan, 0.1, 0.02])
    q = discrete_bh_qvalues(p, supports)
    assert np.isnan(q[1]) and not np.isnan(q[[0, 2, 3]]).any()
    keep = [0, 2, 3]
    assert_allclose(q[keep], discrete_bh_qvalues(p[keep], [supports[i] for i in keep]), rtol=1e-15)
    assert np.isnan(discrete_bh_qvalues(np.array([np.nan, np.nan]), supports[:2])).all()
    assert discrete_bh_qvalues(np.array([]), []).size == 0


@pytest.mark.parametrize("seed", range(5))
def test_weighted_discrete_bh_is_the_weighted_heyse_formula(seed):
    rng = np.random.default_rng(100 + seed)
    sizes, probs, _ = _random_groups(rng, int(rng.integers(2, 30)), max_size=6)
    observed = np.array([rng.integers(0, 2 * s + 1) for s in sizes])
    p, supports = score_tails(sizes, probs, observed, (1, 2), (0.45, 0.55))
    p[rng.random(p.size) < 0.2] = np.nan
    w = rng.choice([0.25, 1.0, 2.0], p.size)
    q = discrete_bh_qvalues(p, supports, w)
    truth = heyse_qvalues(list(p), [list(s) for s in supports], list(w))
    assert_allclose(q, truth, rtol=1e-12, atol=1e-15)
    # unit weights are the unweighted procedure
    assert_allclose(discrete_bh_qvalues(p, supports, np.ones(p.size)), discrete_bh_qvalues(p, supports), rtol=0)


def test_weighted_bh_is_bh_on_p_over_w():
    rng = np.random.default_rng(5)
    p = rng.random(50) ** 3
    w = rng.choice([0.5, 1.5], 50)
    w /= w.mean()
    assert_allclose(bh_qvalues(p, w), np.minimum(stats.false_discovery_control(np.minimum(p / w, 1.0)), 1.0),
                    rtol=1e-12)
    # the continuous limit of the discrete procedure (where no w * t passes 1: beyond, a test's
    # null probability stops at 1 and the discrete procedure is the less conservative)
    grid = np.linspace(0, 1, 100_001)[1:]
    on_grid = grid[rng.integers(0, 1000, 20)]
    w20 = w[:20] / w[:20].mean()
    assert_allclose(discrete_bh_qvalues(on_grid, [grid] * 20, w20), bh_qvalues(on_grid, w20), rtol=0, atol=20e-5)
    with pytest.raises(ValueError, match="positive weight"):
        bh_qvalues(p, np.zeros(50))
    with pytest.raises(ValueError, match="positive weight"):
        discrete_bh_qvalues(on_grid, [grid] * 20, w20[:3])


def test_discrete_bh_rejects_supports_that_do_not_match():
    with pytest.raises(ValueError):
        discrete_bh_qvalues(np.array([0.5, 0.2]), [np.array([1.0, 0.5])])
    with pytest.raises(ValueError):
        discrete_bh_qvalues(np.array([0.5, 1.2]), [np.array([1.0, 0.5]), np.array([1.0])])


# -- tests beyond chance ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_beyond_chance_counts_and_the_null_expectation_by_brute_force(seed):
    """Observed: tests with p <= t; expected: the sum over tests of the largest attainable
    p-value at or below t (support values in any order; NaN p-values are not tests)."""
    rng = np.random.default_rng(200 + seed)
    sizes, probs, _ = _random_groups(rng, int(rng.integers(2, 40)), max_size=6)
    observed = np.array([rng.integers(0, 2 * s + 1) for s in sizes])
    p, supports = score_tails(sizes, probs, observed, (2, 3), (0.4, 0.6))
    p[rng.random(p.size) < 0.2] = np.nan
    supports = [rng.permutation(sup) for sup in supports]
    t = (0.2, 0.01, 1e-4)
    seen, chance = beyond_chance(p, supports, t)
    for i, x in enumerate(t):
        assert seen[i] == sum(1 for v in p if not np.isnan(v) and v <= x)
        want = sum(max((a for a in sup if a <= x), default=0.0) for v, sup in zip(p, supports) if not np.isnan(v))
        assert chance[i] == pytest.approx(want, rel=1e-12, abs=1e-300)
    flat, ptr = np.concatenate(supports), np.cumsum([0] + [len(sup) for sup in supports])
    seen2, chance2 = beyond_chance(p, (flat, ptr), t)
    assert (seen2 == seen).all()
    assert_allclose(chance2, chance, rtol=1e-12, atol=0)
    # by group, in one pass: each group's row is the count over its tests alone, rows add up
    groups = rng.integers(0, 3, p.size)
    seen_g, chance_g = beyond_chance(p, supports, t, groups=groups)
    assert seen_g.shape == chance_g.shape == (int(groups.max()) + 1, len(t))
    for g in range(seen_g.shape[0]):
        alone = beyond_chance(np.where(groups == g, p, np.nan), supports, t)
        assert (seen_g[g] == alone[0]).all()
        assert_allclose(chance_g[g], alone[1], rtol=1e-12, atol=0)
    assert (seen_g.sum(axis=0) == seen).all()
    assert_allclose(chance_g.sum(axis=0), chance, rtol=1e-12, atol=1e-300)


def test_beyond_chance_matches_its_expectation_when_the_null_holds():
    """Simulate the null itself: churn drawn at each member's own rate. The count of groups at
    p <= t then averages the expectation (here over 40 draws of 400 groups, within 4 standard
    errors of a Poisson count), and planting whole groups that all left pushes it far above."""
    rng = np.random.default_rng(7)
    sizes = rng.integers(2, 8, 400)
    probs = rng.uniform(0.02, 0.2, sizes.sum())
    group = np.repeat(np.arange(sizes.size), sizes)
    seen, chance = np.zeros(3), np.zeros(3)
    t = (0.05, 0.01, 0.002)
    for _ in range(40):
        left = rng.random(probs.size) < probs
        p, sup = excess_tails(sizes, probs, np.bincount(group, weights=left, minlength=sizes.size).astype(np.int64))
        a, b = beyond_chance(p, sup, t)
        seen += a
        chance += b
    assert np.all(np.abs(seen - chance) <= 4 * np.sqrt(chance) + 1), (seen, chance)
    # 30 groups where everybody left: far beyond chance
    left = rng.random(probs.size) < probs
    left[np.isin(group, np.arange(30))] = True
    p, sup = excess_tails(sizes, probs, np.bincount(group, weights=left, minlength=sizes.size).astype(np.int64))
    a, b = beyond_chance(p, sup, t)
    assert a[2] >= 25 and b[2] < 5


def test_beyond_chance_bad_input():
    sup = [np.array([1.0, 0.1])]
    with pytest.raises(ValueError, match="thresholds"):
        beyond_chance(np.array([0.1]), sup, (0.0,))
    with pytest.raises(ValueError, match="one support per p-value"):
        beyond_chance(np.array([0.1, 0.2]), sup)
    with pytest.raises(ValueError, match="group number"):
        beyond_chance(np.array([0.1]), sup, groups=np.array([-1]))
    seen, chance = beyond_chance(np.array([np.nan]), sup, (0.5,))
    assert seen.tolist() == [0] and chance.tolist() == [0.0]

"""The contagion statistics against scipy and brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats

from socialgraph.contagion import bh_qvalues, churn_excess_pvalue, poisson_binomial_sf


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

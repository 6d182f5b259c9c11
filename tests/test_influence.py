"""Influence scores against slow oracles (tests/reference_kernels.py) on random call graphs."""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from socialgraph.graph import build_call_graph
from socialgraph.influence import (
    PowerIterationFailedConvergence,
    _run_pagerank,
    dependence,
    personalized_pagerank,
    personalized_pagerank_from_seeds,
    spreading_activation,
)
from socialgraph.kernels import influence as _k

from reference_kernels import (
    reference_dependence,
    reference_pagerank_dense,
    reference_pagerank_exact,
    reference_pagerank_networkx,
)

TIGHT = {"tol": 1e-12, "max_iter": 1000}
# Exact fixed points (reference_pagerank_exact) differ from the iterates by the truncation
# error of the power iteration, hence atol=2e-9 there.


def random_graph(seed: int, n_keys: int = 60, n_ties: int = 150, n_isolated: int = 5,
                 zero_share: float = 0.1):
    """Random distinct undirected pairs of number keys, positive weights with some zeros (left
    out of the CSR by the builder) and isolated subscribers (``extra_keys``)."""
    rng = np.random.default_rng(seed)
    keys = 13_000_000_000 + rng.choice(10**6, size=n_keys + n_isolated, replace=False)
    pool, isolated = keys[:n_keys], keys[n_keys:]
    a = rng.choice(pool, size=n_ties)
    b = rng.choice(pool, size=n_ties)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs = np.unique(np.column_stack([lo, hi])[lo != hi], axis=0)
    w = rng.gamma(1.0, 2.0, size=len(pairs))
    w[rng.random(len(pairs)) < zero_share] = 0.0
    swap = rng.random(len(pairs)) < 0.5  # either orientation
    a, b = np.where(swap, pairs[:, 1], pairs[:, 0]), np.where(swap, pairs[:, 0], pairs[:, 1])
    return build_call_graph(a, b, w, on_net_keys=keys, extra_keys=isolated)


def components_graph():
    """Three components (a triangle, a path, a star), two isolated nodes and a zero-weight tie."""
    a = np.array([1, 2, 3, 10, 11, 12, 20, 20, 20, 30])
    b = np.array([2, 3, 1, 11, 12, 13, 21, 22, 23, 31])
    w = np.array([1.0, 2.0, 3.0, 0.5, 0.5, 4.0, 1.0, 1.0, 7.0, 0.0])
    return build_call_graph(a, b, w, on_net_keys=a, extra_keys=np.array([40, 41]))


def one_node_graph():
    return build_call_graph(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0),
                            on_net_keys=np.array([5]), extra_keys=np.array([5]))


def stopping_bound(graph, alpha=0.85, tol=1e-6, **_):
    """L1 distance to the fixed point that the stopping rule guarantees: the result is a power
    step from an iterate that one step moves by under ``n * tol``, and a step shrinks any
    difference of two score vectors by ``alpha`` in L1."""
    return alpha * graph.n_nodes * tol / (1.0 - alpha)


def assert_pagerank_matches(graph, personalization=None, **kw):
    """Both methods against the oracles; returns the default (Chebyshev) scores.

    The power iteration is networkx's, iterate for iterate: it must agree with networkx and the
    dense reference at any ``tol``. Chebyshev stops elsewhere on the way to the same fixed
    point: it must lie within the stopping rule's bound of the exact scores, and as close to
    networkx's as both bounds allow."""
    alpha = kw.get("alpha", 0.85)
    exact = reference_pagerank_exact(graph, personalization, alpha=alpha)
    bound = stopping_bound(graph, **kw)
    power = personalized_pagerank(graph, personalization, method="power", **kw)
    got = personalized_pagerank(graph, personalization, **kw)
    for x in (power, got):
        assert x.dtype == np.float64 and x.shape == (graph.n_nodes,)
        assert_allclose(x.sum(), 1.0, rtol=1e-12)
        assert np.abs(x - exact).sum() <= bound * (1 + 1e-9) + 1e-13
    assert_allclose(power, reference_pagerank_networkx(graph, personalization, **kw), rtol=1e-6, atol=1e-14)
    assert_allclose(power, reference_pagerank_dense(graph, personalization, **kw), rtol=1e-6, atol=1e-14)
    assert_allclose(got, power, rtol=1e-6, atol=2 * bound)
    return got


# --------------------------------------------------------------------------- dependence


@pytest.mark.parametrize("seed", range(4))
def test_dependence_matches_reference(seed):
    g = random_graph(seed)
    got = dependence(g)
    assert got.dtype == np.float64 and got.shape == (g.n_nodes,)
    assert_allclose(got, reference_dependence(g), rtol=1e-12)
    # every non-isolated neighbour hands out exactly its whole strength
    assert_allclose(got.sum(), np.count_nonzero(np.diff(g.indptr)), rtol=1e-12)
    assert np.all(got[np.diff(g.indptr) == 0] == 0)


def test_dependence_components_and_tiny_graphs():
    g = components_graph()
    assert_allclose(dependence(g), reference_dependence(g), rtol=1e-12)
    assert dependence(one_node_graph()).tolist() == [0.0]
    empty = build_call_graph(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0),
                             on_net_keys=np.empty(0, np.int64))
    assert dependence(empty).shape == (0,)


# --------------------------------------------------------------------------- pagerank


@pytest.mark.parametrize("seed", range(3))
def test_pagerank_uniform_matches_oracles(seed):
    g = random_graph(seed)
    got = assert_pagerank_matches(g, **TIGHT)
    assert_allclose(got, reference_pagerank_exact(g), rtol=1e-6, atol=2e-9)


@pytest.mark.parametrize("seed", range(3))
def test_pagerank_personalized_matches_oracles(seed):
    g = random_graph(100 + seed)
    rng = np.random.default_rng(seed)
    p = rng.random(g.n_nodes) * (rng.random(g.n_nodes) < 0.3)
    p[0] += 0.1  # never all zero
    got = assert_pagerank_matches(g, p, **TIGHT)
    assert_allclose(got, reference_pagerank_exact(g, p), rtol=1e-6, atol=2e-9)
    # normalised inside: scaling the vector changes nothing
    assert_allclose(got, personalized_pagerank(g, p / p.sum(), **TIGHT), rtol=1e-13)


def test_pagerank_concentrated_on_one_node():
    g = random_graph(7)
    hub = int(np.argmax(np.diff(g.indptr)))
    p = np.zeros(g.n_nodes)
    p[hub] = 3.0
    got = assert_pagerank_matches(g, p, **TIGHT)
    assert got.argmax() == hub
    # mass stays in the hub's component
    assert_allclose(got[np.diff(g.indptr) == 0], 0.0, atol=0)


def test_pagerank_concentrated_on_an_isolated_node_keeps_all_mass_there():
    g = components_graph()
    isolated = int(np.flatnonzero(np.diff(g.indptr) == 0)[0])
    p = np.zeros(g.n_nodes)
    p[isolated] = 1.0
    got = assert_pagerank_matches(g, p, **TIGHT)
    assert_allclose(got[isolated], 1.0, rtol=1e-9)


@pytest.mark.parametrize("alpha", [0.5, 0.85, 0.99])
def test_pagerank_components_and_dangling(alpha):
    g = components_graph()
    assert np.any(np.diff(g.indptr) == 0)  # isolated = dangling nodes
    assert_pagerank_matches(g, alpha=alpha, tol=1e-12, max_iter=5000)
    p = np.arange(g.n_nodes, dtype=float)
    assert_pagerank_matches(g, p, alpha=alpha, tol=1e-12, max_iter=5000)


@pytest.mark.parametrize("seed", range(3))
def test_reweighted_csr_with_zero_weights(seed):
    # callers reweigh the same CSR (e.g. activity before a cut-off), leaving some ties at 0 and
    # some nodes with strength 0: those are dangling, as in networkx
    g = random_graph(400 + seed)
    rng = np.random.default_rng(seed)
    w = g.weights.copy()
    src = np.repeat(np.arange(g.n_nodes), np.diff(g.indptr))
    zero_pair = rng.random(g.weights.size) < 0.3
    # zero both directions of a tie: look up (j, i) for every entry (i, j)
    key = src * g.n_nodes + g.indices
    back = np.searchsorted(key, g.indices.astype(np.int64) * g.n_nodes + src)
    w[zero_pair | zero_pair[back]] = 0.0
    gz = dataclasses.replace(g, weights=w)
    strength = np.bincount(src, weights=w, minlength=g.n_nodes)
    assert np.any((strength == 0) & (np.diff(g.indptr) > 0))  # dangling nodes that have ties
    assert_allclose(dependence(gz), reference_dependence(gz), rtol=1e-12)
    assert_pagerank_matches(gz, **TIGHT)
    p = rng.random(g.n_nodes)
    assert_pagerank_matches(gz, p, **TIGHT)
    assert_pagerank_matches(gz, p)


def test_pagerank_default_tolerance_stops_at_the_same_iteration_as_networkx():
    # with networkx's loose n * tol rule the answer depends on where it stops: the power
    # iteration must agree; Chebyshev stops elsewhere, within the rule's bound of the fixed point
    for seed in range(3):
        g = random_graph(200 + seed)
        got = personalized_pagerank(g, method="power")
        assert_allclose(got, reference_pagerank_networkx(g), rtol=1e-10)
        assert np.abs(personalized_pagerank(g) - reference_pagerank_exact(g)).sum() <= stopping_bound(g)


def test_chebyshev_needs_fewer_sweeps_and_ends_closer():
    g = random_graph(21, n_keys=3000, n_ties=9000, n_isolated=30)
    p = np.random.default_rng(21).random(g.n_nodes) * (np.arange(g.n_nodes) % 10 == 0)
    exact = reference_pagerank_exact(g, p)
    for tol in (1e-9, 1e-12):
        x_power, it_power = _run_pagerank(g, p, 0.85, tol, 1000, "test", "power")
        x_cheb, it_cheb = _run_pagerank(g, p, 0.85, tol, 1000, "test", "chebyshev")
        assert it_cheb <= 0.8 * it_power
        assert np.abs(x_cheb - exact).sum() <= np.abs(x_power - exact).sum()


def test_first_chebyshev_sweep_is_the_power_step():
    # where the rule stops after one sweep (large graphs at the default tol), the two agree bit
    # for bit: the recurrence starts with the plain power step
    g = random_graph(22)
    p = np.random.default_rng(22).random(g.n_nodes)
    got = {m: _run_pagerank(g, p, 0.85, 1.0, 100, "test", m) for m in ("power", "chebyshev")}
    assert got["power"][1] == got["chebyshev"][1] == 1
    assert_array_equal(got["power"][0], got["chebyshev"][0])


@pytest.mark.parametrize("seed", range(6))
def test_chebyshev_max_iter_counts_the_sweeps_that_test_convergence(seed):
    # the result is the power step from the iterate that passed the rule: kept from that sweep,
    # or (when the rule passes sooner than the residual's trend said) one more sweep, which may
    # be sweep max_iter + 1 - convergence all the same
    g = random_graph(23 + seed)
    p = np.random.default_rng(seed).random(g.n_nodes)
    x, sweeps = _run_pagerank(g, p, 0.85, 1e-9, 1000, "test")
    _, power_sweeps = _run_pagerank(g, p, 0.85, 1e-9, 1000, "test", "power")
    try:  # converged with a finishing sweep: that sweep is beyond the ones that tested
        assert _run_pagerank(g, p, 0.85, 1e-9, sweeps - 1, "test")[1] == sweeps
        tested = sweeps - 1
    except PowerIterationFailedConvergence:  # converged with the kept power step
        tested = sweeps
    assert_array_equal(_run_pagerank(g, p, 0.85, 1e-9, tested, "test")[0], x)
    with pytest.raises(PowerIterationFailedConvergence):
        _run_pagerank(g, p, 0.85, 1e-9, tested - 1, "test")
    assert tested < power_sweeps


def test_pagerank_one_node_and_empty_graph():
    assert personalized_pagerank(one_node_graph()).tolist() == [1.0]
    assert personalized_pagerank(one_node_graph(), np.array([2.0])).tolist() == [1.0]
    empty = build_call_graph(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0),
                             on_net_keys=np.empty(0, np.int64))
    assert personalized_pagerank(empty).shape == (0,)


def test_pagerank_fails_loudly_without_convergence():
    g = random_graph(3)
    with pytest.raises(PowerIterationFailedConvergence, match="max_iter=2") as info:
        personalized_pagerank(g, tol=1e-15, max_iter=2)
    assert isinstance(info.value, ValueError)


def test_pagerank_accepts_lists_ints_and_strided_arrays():
    g = random_graph(4)
    p = np.arange(2 * g.n_nodes) % 3
    want = personalized_pagerank(g, np.ascontiguousarray(p[::2], dtype=float))
    assert_array_equal(personalized_pagerank(g, p[::2]), want)
    assert_array_equal(personalized_pagerank(g, p[::2].tolist()), want)


# --------------------------------------------------------------------------- seeds


def test_seeds_build_the_personalization_vector():
    g = random_graph(5)
    ids = np.array([3, 8, 3, 11])
    w = np.array([1.0, 2.0, 0.5, 0.0])
    p = np.zeros(g.n_nodes)
    np.add.at(p, ids, w)
    got = personalized_pagerank_from_seeds(g, ids, w, **TIGHT)
    assert_array_equal(got, personalized_pagerank(g, p, **TIGHT))
    assert_allclose(personalized_pagerank_from_seeds(g, ids, w, method="power", **TIGHT),
                    reference_pagerank_networkx(g, p, **TIGHT), rtol=1e-6, atol=1e-14)
    assert_array_equal(personalized_pagerank_from_seeds(g, np.array([4, 9])),
                       personalized_pagerank(g, np.isin(np.arange(g.n_nodes), [4, 9]).astype(float)))


def test_spreading_activation_is_pagerank_times_n():
    g = random_graph(6)
    ids = np.array([1, 2, 30])
    act = spreading_activation(g, ids, alpha=0.7, **TIGHT)
    assert_array_equal(act, personalized_pagerank_from_seeds(g, ids, alpha=0.7, **TIGHT) * g.n_nodes)
    assert_allclose(act.mean(), 1.0, rtol=1e-12)
    assert np.all(act[ids] > 1.0)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_seeds=st.integers(1, 5),
       alpha=st.floats(0.1, 0.95), weighted=st.booleans())
def test_seeded_pagerank_property(seed, n_seeds, alpha, weighted):
    rng = np.random.default_rng(seed)
    g = random_graph(seed, n_keys=int(rng.integers(2, 40)), n_ties=int(rng.integers(1, 90)),
                     n_isolated=int(rng.integers(0, 4)), zero_share=float(rng.random() * 0.5))
    ids = rng.integers(0, g.n_nodes, size=n_seeds)
    w = rng.random(n_seeds) + 0.01 if weighted else None
    p = np.zeros(g.n_nodes)
    np.add.at(p, ids, 1.0 if w is None else w)
    power = personalized_pagerank_from_seeds(g, ids, w, alpha=alpha, method="power", **TIGHT)
    assert_allclose(power, reference_pagerank_networkx(g, p, alpha=alpha, **TIGHT), rtol=1e-6, atol=1e-14)
    # the exact fixed point differs from the iterations by their truncation error
    exact = reference_pagerank_exact(g, p, alpha=alpha)
    got = personalized_pagerank_from_seeds(g, ids, w, alpha=alpha, **TIGHT)
    for x in (power, got):
        assert_allclose(x, exact, rtol=1e-6, atol=2e-9)
        assert np.abs(x - exact).sum() <= stopping_bound(g, alpha, **TIGHT) * (1 + 1e-9) + 1e-13
    assert_allclose(dependence(g), reference_dependence(g), rtol=1e-12)


# --------------------------------------------------------------------------- determinism


@pytest.fixture
def small_blocks(monkeypatch):
    """Many row blocks even on small graphs, to exercise the blocked reductions."""
    monkeypatch.setattr(_k, "_BLOCK_WORK", 64)


def test_row_blocks_cover_the_rows_in_order():
    g = random_graph(8, n_keys=500, n_ties=3000)
    for work in (1, 7, 64, 10**9):
        bounds = _k._split_blocks(g.indptr, work)
        assert bounds[0] == 0 and bounds[-1] == g.n_nodes and np.all(np.diff(bounds) > 0)
    assert _k._split_blocks(g.indptr, 64).size > 50


@pytest.mark.parametrize("seed", range(2))
def test_pagerank_with_many_blocks_matches_oracles(seed, small_blocks):
    g = random_graph(300 + seed)
    p = np.random.default_rng(seed).random(g.n_nodes)
    assert_pagerank_matches(g, **TIGHT)
    assert_pagerank_matches(g, p, **TIGHT)
    assert_pagerank_matches(g, p)  # stops at the same iteration as networkx


@pytest.mark.parametrize("method", ["chebyshev", "power"])
def test_same_input_same_bits_whatever_the_thread_count(small_blocks, method):
    g = random_graph(9, n_keys=3000, n_ties=20000, n_isolated=50)
    p = np.random.default_rng(0).random(g.n_nodes)
    first = (personalized_pagerank(g, p, method=method, **TIGHT), dependence(g))
    again = (personalized_pagerank(g, p, method=method, **TIGHT), dependence(g))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = (personalized_pagerank(g, p, method=method, **TIGHT), dependence(g))
    finally:
        numba.set_num_threads(before)
    for x, y, z in zip(first, again, single):
        assert_array_equal(x, y)
        assert_array_equal(x, z)


# --------------------------------------------------------------------------- column windows


@pytest.fixture
def tiny_windows(monkeypatch):
    """Column windows of 4 nodes: the windowed sweep of large graphs, on small ones."""
    monkeypatch.setattr(_k, "_WINDOW_SHIFT", 2)
    monkeypatch.setattr(_k, "_MAX_WINDOWS", 10**9)
    monkeypatch.setattr(_k, "_WHOLE_SWEEP_BYTES", 0)


def count_window_layouts(monkeypatch):
    """Counts the calls of ``_k._window_transition`` (a list that grows by one per call)."""
    calls = []
    kernel = _k._window_transition

    def spy(*args):
        calls.append(args[5])
        return kernel(*args)

    monkeypatch.setattr(_k, "_window_transition", spy)
    return calls


def with_dangling_ties(g, seed):
    """``g`` with about a third of its ties reweighted to 0 (both directions), so that some
    nodes have ties but strength 0, as when callers reweigh the CSR."""
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(g.n_nodes), np.diff(g.indptr))
    zero = rng.random(g.weights.size) < 0.3
    back = np.searchsorted(src * g.n_nodes + g.indices, g.indices.astype(np.int64) * g.n_nodes + src)
    w = g.weights.copy()
    w[zero | zero[back]] = 0.0
    return dataclasses.replace(g, weights=w)


def window_layout(graph, shift):
    """Slow layout of :func:`_window_transition`: window after window, row after row, the
    entries whose column lies in the window, in row order, with ``w_ij / s_j``."""
    n = graph.n_nodes
    strength = [sum(graph.weights[graph.indptr[j]:graph.indptr[j + 1]]) for j in range(n)]
    n_windows = ((n - 1) >> shift) + 1
    win_indptr, cols, transition = np.zeros((n_windows, n + 1), np.int64), [], []
    for k in range(n_windows):
        for i in range(n):
            win_indptr[k, i] = len(cols)
            for e in range(graph.indptr[i], graph.indptr[i + 1]):
                j = int(graph.indices[e])
                if j >> shift == k:
                    cols.append(j)
                    transition.append(graph.weights[e] / strength[j] if strength[j] > 0 else 0.0)
        win_indptr[k, n] = len(cols)
    return win_indptr, np.array(cols), np.array(transition)


def window_kernel_layout(graph, shift, block_work):
    """:func:`_window_transition` on ``graph``, outputs pre-filled with garbage."""
    n = graph.n_nodes
    n_windows = ((n - 1) >> shift) + 1
    win_indptr = np.full((n_windows, n + 1), -1, np.int64)
    cols = np.full(graph.indices.size, -1, np.int32)
    transition = np.full(graph.indices.size, np.nan)
    inv = _k._invert_strength(graph.indptr, graph.weights)
    _k._window_transition(graph.indptr, graph.indices, graph.weights, inv, shift,
                          _k._split_blocks(graph.indptr, block_work), win_indptr, cols, transition)
    return win_indptr, cols, transition


@pytest.mark.parametrize("shift", [0, 2, 5, 30])
def test_window_layout_matches_reference(shift):
    g = with_dangling_ties(random_graph(11, n_keys=120, n_ties=500, n_isolated=4), 0)
    win_indptr, cols, transition = window_kernel_layout(g, shift, 64)
    want_indptr, want_cols, want_transition = window_layout(g, shift)
    assert_array_equal(win_indptr, want_indptr)
    assert_array_equal(cols, want_cols)
    assert_allclose(transition, want_transition, rtol=1e-15, atol=0)


@pytest.mark.parametrize("seed", range(3))
def test_windowed_sweep_gives_the_same_bits_as_one_window(seed, monkeypatch):
    # a row summed window after window adds the same terms in the same order as the whole row
    g = random_graph(500 + seed, n_keys=400, n_ties=2500, n_isolated=10)
    if seed == 2:
        g = with_dangling_ties(g, seed)
    rng = np.random.default_rng(seed)
    p = rng.random(g.n_nodes) * (rng.random(g.n_nodes) < 0.2)
    p[0] += 0.1
    calls = count_window_layouts(monkeypatch)
    monkeypatch.setattr(_k, "_MAX_WINDOWS", 10**9)
    monkeypatch.setattr(_k, "_WHOLE_SWEEP_BYTES", 0)
    monkeypatch.setattr(_k, "_WINDOW_SHIFT", 62)
    cases = [(q, tol, m) for q in (None, p) for tol in (1e-6, 1e-12) for m in ("power", "chebyshev")]
    want = [_run_pagerank(g, q, 0.85, tol, 1000, "test", m) for q, tol, m in cases]
    assert not calls
    for done, shift in enumerate((0, 3, 6), start=1):
        monkeypatch.setattr(_k, "_WINDOW_SHIFT", shift)
        got = [_run_pagerank(g, q, 0.85, tol, 1000, "test", m) for q, tol, m in cases]
        assert len(calls) == len(cases) * done  # every call took the windowed path
        for (x, it), (y, want_it) in zip(got, want):
            assert it == want_it
            assert_array_equal(x, y)


@pytest.mark.parametrize("seed", range(2))
def test_windowed_pagerank_matches_oracles(seed, tiny_windows, small_blocks):
    g = random_graph(600 + seed)
    p = np.random.default_rng(seed).random(g.n_nodes)
    got = assert_pagerank_matches(g, p, **TIGHT)
    assert_allclose(got, reference_pagerank_exact(g, p), rtol=1e-6, atol=2e-9)
    assert_pagerank_matches(g, **TIGHT)
    assert_pagerank_matches(g, p)  # stops at the same iteration as networkx
    gz = with_dangling_ties(g, seed)
    assert_pagerank_matches(gz, p, **TIGHT)
    assert_pagerank_matches(gz)


def test_more_windows_than_the_cap_sweep_whole(monkeypatch):
    g = random_graph(14, n_keys=200, n_ties=900)
    want = personalized_pagerank(g, **TIGHT)
    calls = count_window_layouts(monkeypatch)
    monkeypatch.setattr(_k, "_WHOLE_SWEEP_BYTES", 0)
    monkeypatch.setattr(_k, "_WINDOW_SHIFT", 5)
    n_windows = ((g.n_nodes - 1) >> 5) + 1
    monkeypatch.setattr(_k, "_MAX_WINDOWS", n_windows - 1)
    assert_array_equal(personalized_pagerank(g, **TIGHT), want)
    assert calls == []
    monkeypatch.setattr(_k, "_MAX_WINDOWS", n_windows)
    assert_array_equal(personalized_pagerank(g, **TIGHT), want)
    assert len(calls) == 1


def test_scores_that_fit_the_cache_sweep_whole(monkeypatch):
    g = random_graph(15, n_keys=200, n_ties=900)
    want = personalized_pagerank(g, **TIGHT)
    calls = count_window_layouts(monkeypatch)
    monkeypatch.setattr(_k, "_WINDOW_SHIFT", 5)
    monkeypatch.setattr(_k, "_WHOLE_SWEEP_BYTES", 8 * g.n_nodes)  # the scores just fit
    assert_array_equal(personalized_pagerank(g, **TIGHT), want)
    assert calls == []
    monkeypatch.setattr(_k, "_WHOLE_SWEEP_BYTES", 8 * g.n_nodes - 1)
    assert_array_equal(personalized_pagerank(g, **TIGHT), want)
    assert len(calls) == 1


def test_last_level_cache_is_read_from_sysfs(tmp_path):
    from socialgraph.influence import _last_level_cache_bytes

    for index, size in [(0, "32K"), (1, "32K"), (2, "1024K"), (3, "32768K"), (4, "junk")]:
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size + "\n")
    assert _last_level_cache_bytes(str(tmp_path)) == 32 << 20
    (tmp_path / "index5").mkdir()
    (tmp_path / "index5" / "size").write_text("64M\n")
    assert _last_level_cache_bytes(str(tmp_path)) == 32 << 20  # read once per root, then cached
    _last_level_cache_bytes.cache_clear()
    assert _last_level_cache_bytes(str(tmp_path)) == 64 << 20  # the largest cache wins
    assert _last_level_cache_bytes(str(tmp_path / "nothing-here")) == 0


@pytest.mark.parametrize("rho", [0.0, 0.85])
def test_lanes_do_not_change_the_bits(tiny_windows, small_blocks, rho):
    g = with_dangling_ties(random_graph(12, n_keys=600, n_ties=4000, n_isolated=20), 1)
    win_indptr, cols, transition = window_kernel_layout(g, _k._WINDOW_SHIFT, _k._BLOCK_WORK)
    dangling = np.flatnonzero(_k._invert_strength(g.indptr, g.weights) == 0)
    bounds = _k._split_blocks(g.indptr, _k._BLOCK_WORK)
    p = np.random.default_rng(2).random(g.n_nodes)
    p /= p.sum()
    runs = []
    for lanes in (1, 2, 3, 7, 10**6):
        work = np.empty((3, g.n_nodes))
        row, it, err, converged = _k._iterate_pagerank(win_indptr, cols, transition, dangling, p, 0.85, rho, 1e-12,
                                                       1000, bounds, lanes, work)
        assert converged
        runs.append((work[row].copy(), it, err))
    for x, it, err in runs[1:]:
        assert_array_equal(x, runs[0][0])
        assert (it, err) == runs[0][1:]
    assert_allclose(runs[0][0], reference_pagerank_dense(g, p, **TIGHT), rtol=1e-6, atol=1e-14 if rho == 0 else 1e-10)


@pytest.mark.parametrize("method", ["chebyshev", "power"])
def test_windowed_same_bits_whatever_the_thread_count(tiny_windows, small_blocks, method):
    g = random_graph(13, n_keys=1500, n_ties=10000, n_isolated=50)
    p = np.random.default_rng(3).random(g.n_nodes)
    first = personalized_pagerank(g, p, method=method, **TIGHT)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = personalized_pagerank(g, p, method=method, **TIGHT)
    finally:
        numba.set_num_threads(before)
    assert_array_equal(first, single)
    assert_array_equal(first, personalized_pagerank(g, p, method=method, **TIGHT))


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize("kw, match", [
    ({"alpha": 0.0}, "alpha"), ({"alpha": 1.0}, "alpha"), ({"alpha": 1.5}, "alpha"),
    ({"alpha": True}, "alpha"), ({"alpha": "0.85"}, "alpha"), ({"alpha": float("nan")}, "alpha"),
    ({"tol": 0.0}, "tol"), ({"tol": -1e-6}, "tol"), ({"tol": float("inf")}, "tol"),
    ({"tol": float("nan")}, "tol"), ({"max_iter": 0}, "max_iter"), ({"max_iter": 2.5}, "max_iter"),
    ({"method": "gauss-seidel"}, "method"), ({"method": None}, "method"),
])
def test_pagerank_rejects_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        personalized_pagerank(components_graph(), **kw)


@pytest.mark.parametrize("make, match", [
    (lambda n: np.ones(n - 1), "length"),
    (lambda n: np.ones((n, 1)), "1-D"),
    (lambda n: -np.ones(n), "non-negative"),
    (lambda n: np.full(n, np.nan), "finite"),
    (lambda n: np.zeros(n), "all zero"),
    (lambda n: np.array(["1"] * n), "numeric"),
])
def test_pagerank_rejects_bad_personalization(make, match):
    g = components_graph()
    with pytest.raises(ValueError, match=match):
        personalized_pagerank(g, make(g.n_nodes))


@pytest.mark.parametrize("ids, weights, match", [
    ([], None, "non-empty"), ([-1, 2], None, "ids_of"), ([0, 99], None, "not a node id"),
    ([0.0, 1.0], None, "integer"), ([0, 1], [1.0], "length"), ([0, 1], [0.0, 0.0], "all zero"),
    ([0, 1], [1.0, -1.0], "non-negative"),
])
def test_seeds_reject_bad_input(ids, weights, match):
    g = components_graph()
    for f in (personalized_pagerank_from_seeds, spreading_activation):
        with pytest.raises(ValueError, match=match):
            f(g, np.array(ids), None if weights is None else np.array(weights))


def test_corrupt_graphs_are_refused():
    g = components_graph()
    bad_index = g.indices.copy()
    bad_index[0] = g.n_nodes
    negative, nan = g.weights.copy(), g.weights.copy()
    negative[0], nan[0] = -1.0, np.nan
    for bad, match in [(dataclasses.replace(g, indices=bad_index), "indices"),
                       (dataclasses.replace(g, weights=negative), "non-negative"),
                       (dataclasses.replace(g, weights=nan), "finite"),
                       (dataclasses.replace(g, weights=g.weights[:-1]), "weights"),
                       (dataclasses.replace(g, indptr=g.indptr[:-1]), "indptr")]:
        for f in (dependence, personalized_pagerank):
            with pytest.raises(ValueError, match=match):
                f(bad)
    wrapping = g.indices.astype(np.int64)
    wrapping[0] = 2**32 + 1  # would become a valid id 1 if cast to int32 before the range check
    for f in (dependence, personalized_pagerank):
        with pytest.raises(ValueError, match="indices"):
            f(dataclasses.replace(g, indices=wrapping))
    with pytest.raises(TypeError, match="CallGraph"):
        dependence(g.to_networkx())


def test_other_index_dtypes_give_the_same_scores():
    g = random_graph(10)
    wide = dataclasses.replace(g, indptr=g.indptr.astype(np.uint64), indices=g.indices.astype(np.int64))
    assert_array_equal(dependence(wide), dependence(g))
    assert_array_equal(personalized_pagerank(wide), personalized_pagerank(g))

"""Tie features against two oracles (tests/reference_scoring.py) on random call graphs, input
checks, and the stickiness components: range, monotonicity, weights, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from reference_scoring import n_feature_columns, node_features_loop, node_features_numpy
from socialgraph.config import ScoringConfig
from socialgraph.graph import build_call_graph
from socialgraph.stickiness import STICKINESS_COMPONENTS, stickiness_components, tie_features

N_BLOCKS = 4


def random_tie_graph(seed: int, n_keys: int = 50, n_ties: int = 140, n_isolated: int = 4,
                     n_blocks: int = N_BLOCKS, zero_share: float = 0.1):
    """A random call graph with every per-tie array ``tie_features`` reads.

    Distinct undirected pairs in either orientation, gamma weights with some zeros (left out of
    the CSR), events each way with many zeros, ``n_blocks`` activity blocks per tie and
    ``active_days >= sum(blocks)``, random on-net flags, isolated subscribers.
    """
    rng = np.random.default_rng(seed)
    keys = 13_800_000_000 + rng.choice(10**6, size=n_keys + n_isolated, replace=False)
    pool, isolated = keys[:n_keys], keys[n_keys:]
    a = rng.choice(pool, size=n_ties)
    b = rng.choice(pool, size=n_ties)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs = np.unique(np.column_stack([lo, hi])[lo != hi], axis=0)
    m = len(pairs)
    swap = rng.random(m) < 0.5
    a = np.where(swap, pairs[:, 1], pairs[:, 0])
    b = np.where(swap, pairs[:, 0], pairs[:, 1])
    w = rng.gamma(1.0, 2.0, size=m)
    w[rng.random(m) < zero_share] = 0.0
    events_ab = np.where(rng.random(m) < 0.35, 0, rng.integers(1, 30, m))
    events_ba = np.where(rng.random(m) < 0.35, 0, rng.integers(1, 30, m))
    blocks = np.where(rng.random((m, n_blocks)) < 0.3, 0, rng.integers(1, 15, (m, n_blocks)))
    active_days = blocks.sum(axis=1) + np.where(rng.random(m) < 0.5, 0, rng.integers(0, 20, m))
    on_net = pool[rng.random(n_keys) < 0.7]
    g = build_call_graph(a, b, w, on_net_keys=np.concatenate([on_net, isolated]), extra_keys=isolated,
                         events_ab=events_ab, events_ba=events_ba,
                         tie_arrays={"active_days": active_days, "blocks": blocks.astype(np.int16)})
    return g, rng


def random_node_inputs(graph, rng, n_cut: int):
    """Competitor flags (never on-net) and churn ages per cut-off, consistent across cut-offs:
    a node churned ``d`` days before as-of has age ``d - 28 c`` at cut-off ``c`` (-1 if not yet
    churned then); about a third of the nodes never churned."""
    n = graph.n_nodes
    competitor = ~graph.nodes["on_net"].to_numpy() & (rng.random(n) < 0.6)
    churned_days_ago = np.where(rng.random(n) < 0.35, rng.integers(0, 150, n), -1)
    churn_age = np.full((n, n_cut), -1.0)
    for c in range(n_cut):
        age = churned_days_ago - 28.0 * c
        churn_age[:, c] = np.where((churned_days_ago >= 0) & (age >= 0), age, -1.0)
    return competitor, churn_age


def assert_features_match(graph, competitor, churn_age, *, half_life=30.0, inbound_factor=2.0, n_cut=2):
    got = tie_features(graph, competitor=competitor, churn_age=churn_age, half_life_days=half_life,
                       inbound_factor=inbound_factor, n_cut=n_cut).values
    assert got.shape == (graph.n_nodes, n_feature_columns(n_cut)) and got.dtype == np.float64
    args = (graph, competitor, churn_age, half_life, inbound_factor, n_cut)
    loop = node_features_loop(*args)
    vec = node_features_numpy(*args)
    assert_allclose(got, loop, rtol=1e-12, atol=1e-12)
    assert_allclose(got, vec, rtol=1e-12, atol=1e-12)
    return got


# --------------------------------------------------------------------------- tie features


@pytest.mark.parametrize("seed", range(3))
def test_tie_features_match_references(seed):
    g, rng = random_tie_graph(seed)
    assert (g.weights > 0).all() and g.n_edges > 50  # zero-weight ties really left out
    competitor, churn_age = random_node_inputs(g, rng, 2)
    got = assert_features_match(g, competitor, churn_age)
    isolated = np.diff(g.indptr) == 0
    assert isolated.sum() >= 4
    assert_array_equal(got[isolated], 0.0)
    # the random graph exercises every branch: inbound-only, reciprocal, churned, competitor
    assert (got[:, 1] > got[:, 2]).any() and (got[:, 2] > 0).any()
    assert (got[:, 6] > 0).any() and (got[:, 7] > 0).any()
    assert (got[:, 8 + 6 + 2] < got[:, 8 + 2]).any()  # fewer contacts one block earlier


@pytest.mark.parametrize("n_cut", [1, 3])
@pytest.mark.parametrize("half_life,inbound_factor", [(7.0, 1.0), (90.0, 5.0)])
def test_tie_features_other_parameters(n_cut, half_life, inbound_factor):
    g, rng = random_tie_graph(100 + n_cut, n_blocks=n_cut + 2)
    competitor, churn_age = random_node_inputs(g, rng, n_cut)
    assert_features_match(g, competitor, churn_age, half_life=half_life,
                          inbound_factor=inbound_factor, n_cut=n_cut)


def test_tie_features_more_blocks_than_needed():
    g, rng = random_tie_graph(7, n_blocks=6)
    competitor, churn_age = random_node_inputs(g, rng, 2)
    assert_features_match(g, competitor, churn_age)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(2, 40), st.floats(0.0, 0.9))
def test_tie_features_match_references_hypothesis(seed, n_keys, zero_share):
    g, rng = random_tie_graph(seed, n_keys=n_keys, n_ties=3 * n_keys, zero_share=zero_share)
    competitor, churn_age = random_node_inputs(g, rng, 2)
    assert_features_match(g, competitor, churn_age)


def _graph(a, b, w, *, on_net, extra=None, ab=None, ba=None, days=None, blocks=None):
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    m = a.size
    return build_call_graph(
        a, b, np.asarray(w, float), on_net_keys=np.asarray(on_net, np.int64), extra_keys=extra,
        events_ab=np.ones(m, int) if ab is None else ab, events_ba=np.ones(m, int) if ba is None else ba,
        tie_arrays={"active_days": np.full(m, 4) if days is None else np.asarray(days),
                    "blocks": np.ones((m, N_BLOCKS), int) if blocks is None else np.asarray(blocks)})


def test_tie_features_one_node_and_no_ties():
    empty = np.empty(0, np.int64)
    one = _graph(empty, empty, [], on_net=[5], extra=np.array([5]), ab=empty, ba=empty, days=empty,
                 blocks=np.empty((0, N_BLOCKS), int))
    got = assert_features_match(one, np.zeros(1, bool), np.full((1, 2), -1.0))
    assert_array_equal(got, np.zeros((1, n_feature_columns(2))))

    none = _graph(empty, empty, [], on_net=[], extra=np.array([3, 1, 2]), ab=empty, ba=empty, days=empty,
                  blocks=np.empty((0, N_BLOCKS), int))
    got = assert_features_match(none, np.array([True, False, False]), np.array([[3.0, -1], [-1, -1], [0, -1]]))
    assert_array_equal(got, 0.0)

    all_zero = _graph([1, 2], [2, 3], [0.0, 0.0], on_net=[1, 2, 3])
    assert all_zero.indices.size == 0
    got = assert_features_match(all_zero, np.zeros(3, bool), np.zeros((3, 2)))
    assert_array_equal(got, 0.0)


def test_tie_features_hand_example():
    """Node 1 with three ties, every column worked out by hand."""
    # 1-2 on-net, reciprocal, 2 churned 30 days before as-of; 1-3 competitor, 1 -> 3 only;
    # 1-4 on-net, 4 -> 1 only, active only in the most recent block.
    g = _graph([1, 1, 4], [2, 3, 1], [2.0, 1.0, 1.0], on_net=[1, 2, 4],
               ab=np.array([3, 5, 4]), ba=np.array([1, 0, 0]),
               days=[6, 2, 3], blocks=[[1, 2, 0, 0], [0, 1, 1, 0], [3, 0, 0, 0]])
    ids = g.ids_of(np.array([1, 2, 3, 4]))
    competitor = np.zeros(4, bool)
    competitor[ids[2]] = True
    churn_age = np.full((4, 2), -1.0)
    churn_age[ids[1]] = [30.0, 2.0]
    f = tie_features(g, competitor=competitor, churn_age=churn_age)
    i = ids[0]
    u0 = {2: np.log1p(6), 3: np.log1p(2), 4: np.log1p(3)}  # days before as-of
    u1 = {2: np.log1p(5), 3: np.log1p(2)}  # days before one block earlier (4 has none)
    p = np.array([0.5, 0.25, 0.25])
    expected = {
        "strength": 4.0, "inbound_contacts": 2, "reciprocal_contacts": 1,
        "social_raw": 2.0 + 1.0 / 2 + 1.0, "diversity": 1 - np.exp(p @ np.log(p)),
        "onnet_share": 3.0 / 4.0, "exposure": 2.0 * 0.5 / 4.0, "competitor_share": 5.0 / 8.0,
    }
    for name, value in expected.items():
        assert_allclose(f[name][i], value, rtol=1e-12, err_msg=name)
    at = lambda name, c: f.at_cut(name, c)[i]  # noqa: E731
    assert (at("recent_days", 0), at("base_days", 0), at("contacts", 0)) == (4, 4, 3)
    assert (at("recent_days", 1), at("base_days", 1), at("contacts", 1)) == (3, 1, 2)
    assert_allclose(at("exposure_u", 0), u0[2] * 0.5 / sum(u0.values()), rtol=1e-12)
    assert_allclose(at("exposure_u", 1), u1[2] * 0.5 ** (2 / 30) / sum(u1.values()), rtol=1e-12)
    assert_allclose(at("competitor_u", 1), u1[3] / sum(u1.values()), rtol=1e-12)
    assert_allclose(at("onnet_u", 0), (u0[2] + u0[4]) / sum(u0.values()), rtol=1e-12)


def test_tie_features_deterministic():
    g, rng = random_tie_graph(3, n_keys=300, n_ties=2000)
    competitor, churn_age = random_node_inputs(g, rng, 2)
    first = tie_features(g, competitor=competitor, churn_age=churn_age).values
    for _ in range(3):
        assert_array_equal(tie_features(g, competitor=competitor, churn_age=churn_age).values, first)


def test_tie_features_input_checks():
    g, rng = random_tie_graph(1)
    n = g.n_nodes
    competitor, churn_age = random_node_inputs(g, rng, 2)
    with pytest.raises(ValueError, match="churn_age"):
        tie_features(g, competitor=competitor, churn_age=churn_age[:, :1])
    with pytest.raises(ValueError, match="churn_age"):
        tie_features(g, competitor=competitor, churn_age=churn_age[:-1])
    with pytest.raises(ValueError, match="churn_age"):
        tie_features(g, competitor=competitor, churn_age=churn_age[:, 0])
    with pytest.raises(ValueError, match="competitor"):
        tie_features(g, competitor=competitor[:-1], churn_age=churn_age)
    with pytest.raises(ValueError, match="competitor"):
        tie_features(g, competitor=np.zeros((n, 1), bool), churn_age=churn_age)
    with pytest.raises(ValueError, match="blocks"):  # 4 blocks carry at most 2 cut-offs
        tie_features(g, competitor=competitor, churn_age=np.full((n, 3), -1.0), n_cut=3)
    one_block = dataclasses.replace(g, entry={**g.entry, "blocks": g.entry["blocks"][:, 0]})
    with pytest.raises(ValueError, match="blocks"):
        tie_features(one_block, competitor=competitor, churn_age=churn_age)
    for missing in ("active_days", "blocks"):
        bare = dataclasses.replace(g, entry={k: v for k, v in g.entry.items() if k != missing})
        with pytest.raises(ValueError, match="active_days/blocks"):
            tie_features(bare, competitor=competitor, churn_age=churn_age)
    plain = build_call_graph(np.array([1]), np.array([2]), np.array([1.0]), on_net_keys=np.array([1]))
    with pytest.raises(ValueError, match="active_days/blocks"):
        tie_features(plain, competitor=np.zeros(2, bool), churn_age=np.full((2, 2), -1.0))


def test_tie_features_rejects_no_cut_off():
    """``n_cut=0`` leaves no as-of column in ``churn_age`` for the exposure column, which reads
    ``churn_age[:, 0]``: it must be refused, not read past the end of the array."""
    g, rng = random_tie_graph(2)
    competitor, _ = random_node_inputs(g, rng, 1)
    with pytest.raises(ValueError):
        tie_features(g, competitor=competitor, churn_age=np.empty((g.n_nodes, 0)), n_cut=0)


# --------------------------------------------------------------------------- stickiness


def _random_inputs(seed: int, n: int = 500) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "tenure_days": rng.integers(0, 6000, n),
        "social_raw": rng.gamma(1.0, 10.0, n),
        "diversity": rng.random(n),
        "onnet_share": rng.random(n),
        "vas_count": rng.integers(0, 12, n),
        "in_group": rng.random(n) < 0.4,
        "balance": rng.gamma(1.0, 60.0, n),
    }


INPUT_OF = {"tenure": "tenure_days", "social": "social_raw", "diversity": "diversity",
            "onnet": "onnet_share", "services": "vas_count", "group": "in_group", "balance": "balance"}


def test_stickiness_components_in_unit_interval():
    extreme = {
        "tenure_days": np.array([0, 10**6, -5, 0]), "social_raw": np.array([0.0, 1e9, -1.0, 0.0]),
        "diversity": np.array([0.0, 1.0, -0.1, 1.2]), "onnet_share": np.array([0.0, 1.0, -0.2, 1.5]),
        "vas_count": np.array([0, 1000, -2, 0]), "in_group": np.array([False, True, False, True]),
        "balance": np.array([0.0, 1e9, -30.0, 0.0]),
    }
    for inputs in (_random_inputs(0), extreme):
        comp = stickiness_components(**inputs)
        assert list(comp.columns) == [*STICKINESS_COMPONENTS, "stickiness"]
        assert len(comp) == len(inputs["tenure_days"])
        values = comp.to_numpy()
        assert np.isfinite(values).all()
        assert (values >= 0).all() and (values <= 1).all()
    comp = stickiness_components(**extreme)
    assert_array_equal(comp.iloc[0].drop("group").to_numpy(), 0.0)
    assert comp["stickiness"].iloc[1] == pytest.approx(1.0, abs=1e-9)


def test_stickiness_component_formulas():
    cfg = ScoringConfig()
    one = {k: np.array([v]) for k, v in {
        "tenure_days": cfg.tenure_scale_days, "social_raw": cfg.social_scale, "diversity": 0.3,
        "onnet_share": 0.6, "vas_count": cfg.services_scale, "in_group": True,
        "balance": cfg.balance_scale}.items()}
    row = stickiness_components(**one).iloc[0]
    saturated = 1 - np.exp(-1)  # each saturating component at its scale
    for name in ("tenure", "social", "services", "balance"):
        assert row[name] == pytest.approx(saturated, rel=1e-12)
    assert (row["diversity"], row["onnet"], row["group"]) == (pytest.approx(0.3), pytest.approx(0.6), 1.0)
    w = cfg.stickiness_weights
    assert sum(w.values()) == pytest.approx(1.0)
    assert row["stickiness"] == pytest.approx(sum(w[c] * row[c] for c in STICKINESS_COMPONENTS), rel=1e-12)


@pytest.mark.parametrize("component", STICKINESS_COMPONENTS)
def test_stickiness_monotone_in_each_input(component):
    """More tenure, more inbound ties, more services, ... never lower stickiness; where the
    component has weight and is not saturated, it raises it."""
    base = _random_inputs(1)
    more = dict(base)
    name = INPUT_OF[component]
    x = base[name]
    if component == "group":
        more[name] = np.ones_like(x, bool)
    elif component in ("diversity", "onnet"):
        more[name] = np.minimum(x + 0.1, 1.0)
    else:
        more[name] = x + np.maximum(1, np.abs(x) * 0.2).astype(x.dtype)
    lo, hi = stickiness_components(**base), stickiness_components(**more)
    assert (hi[component] >= lo[component]).all()
    assert (hi["stickiness"] >= lo["stickiness"] - 1e-15).all()
    for other in STICKINESS_COMPONENTS:
        if other != component:
            assert_array_equal(hi[other], lo[other])
    changed = hi[component] > lo[component]
    assert changed.sum() > 50
    assert (hi["stickiness"][changed] > lo["stickiness"][changed]).all()


@pytest.mark.parametrize("component", STICKINESS_COMPONENTS)
def test_stickiness_weights_respected(component):
    only = ScoringConfig(**{f"w_{c}": (3.0 if c == component else 0.0) for c in STICKINESS_COMPONENTS})
    comp = stickiness_components(**_random_inputs(2), cfg=only)
    assert_allclose(comp["stickiness"], comp[component], rtol=1e-15)


def test_stickiness_weights_are_normalised():
    inputs = _random_inputs(3)
    default = ScoringConfig()
    doubled = ScoringConfig(**{f"w_{c}": 2 * getattr(default, f"w_{c}") for c in STICKINESS_COMPONENTS})
    assert_allclose(stickiness_components(**inputs, cfg=doubled)["stickiness"],
                    stickiness_components(**inputs, cfg=default)["stickiness"], rtol=1e-14)
    half = ScoringConfig(w_tenure=1.0, w_social=1.0, w_diversity=0, w_onnet=0, w_services=0,
                         w_group=0, w_balance=0)
    comp = stickiness_components(**inputs, cfg=half)
    assert_allclose(comp["stickiness"], (comp["tenure"] + comp["social"]) / 2, rtol=1e-14)


def test_stickiness_scales_respected():
    inputs = _random_inputs(4)
    slow = ScoringConfig(tenure_scale_days=3650.0)
    lo = stickiness_components(**inputs, cfg=slow)
    hi = stickiness_components(**inputs)
    positive = inputs["tenure_days"] > 0
    assert (lo["tenure"][positive] < hi["tenure"][positive]).all()
    assert_allclose(lo["tenure"], 1 - np.exp(-inputs["tenure_days"] / 3650.0), rtol=1e-14)


def test_stickiness_deterministic():
    inputs = _random_inputs(5)
    first = stickiness_components(**inputs)
    assert first.equals(stickiness_components(**{k: v.copy() for k, v in inputs.items()}))

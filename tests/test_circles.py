"""Declared circles against the subscriber table they come from."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from socialgraph.circles import declared_circles
from socialgraph.subscribers import subscribers_from_arrow
from socialgraph.synth import SynthConfig, make_operator


def _subs(family, vnet):
    n = len(family)
    return subscribers_from_arrow(pa.table({
        "msisdn": [f"1380000{i:04d}" for i in range(n)],
        "activation_date": pa.array([dt.date(2025, 1, 1)] * n),
        "family_id": pa.array(family, pa.string()),
        "vnet_id": pa.array(vnet, pa.string()),
    }))


def test_member_of_both_family_and_vnet():
    c = declared_circles(_subs(["F", "F", None], [None, "V", "V"]))
    by_circle = c.groupby("circle_id")["key"].apply(set).to_dict()
    keys = _subs(["F", "F", None], [None, "V", "V"]).key
    assert by_circle == {"family:F": {keys[0], keys[1]}, "vnet:V": {keys[1], keys[2]}}
    assert set(c["source"]) == {"declared"}


def test_no_declared_circles_gives_an_empty_typed_table():
    c = declared_circles(_subs([None, None], [None, None]))
    assert len(c) == 0 and list(c.columns) == ["circle_id", "kind", "source", "key"]


def test_synthetic_operator_circles_match_the_subscriber_table():
    op = make_operator(SynthConfig(n_subscribers=2000, weeks=4, seed=5))
    subs = subscribers_from_arrow(op.subscribers)
    c = declared_circles(subs)
    fam = op.subscribers.column("family_id").to_pandas()
    vnet = op.subscribers.column("vnet_id").to_pandas()
    assert (c["kind"] == "family").sum() == fam.notna().sum()
    assert (c["kind"] == "vnet").sum() == vnet.notna().sum()
    assert c["circle_id"].nunique() == fam.dropna().nunique() + vnet.dropna().nunique()
    # deterministic and ordered
    again = declared_circles(subscribers_from_arrow(op.subscribers))
    assert again.equals(c)
    assert c.sort_values(["circle_id", "key"]).reset_index(drop=True).equals(c)
    assert np.all(c.groupby("circle_id")["key"].apply(lambda k: k.is_unique))


def _random_graph(seed, n=300, m=1200):
    from socialgraph.graph import build_call_graph

    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, m)
    b = rng.integers(0, n, m)
    keep = a != b
    a, b = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    pairs = np.unique(np.column_stack([a, b]), axis=0)
    w = rng.random(len(pairs)) + 0.1
    return build_call_graph(pairs[:, 0] + 10, pairs[:, 1] + 10, w, on_net_keys=np.arange(10, n + 10),
                            extra_keys=np.arange(n + 10, n + 15))  # five isolated nodes


def test_leiden_equals_igraph_called_directly_and_is_deterministic():
    import random

    from socialgraph.circles import leiden_communities

    g = _random_graph(3)
    m1, q1 = leiden_communities(g, seed=7, resolution=1.0)
    m2, q2 = leiden_communities(g, seed=7, resolution=1.0)
    assert np.array_equal(m1, m2) and q1 == q2
    ig_graph = g.to_igraph()
    random.seed(7)
    direct = ig_graph.community_leiden(objective_function="modularity", weights="weight", resolution=1.0)
    assert np.array_equal(m1, np.asarray(direct.membership))
    assert q1 == pytest.approx(ig_graph.modularity(direct.membership, weights="weight"))
    # isolated nodes are singletons
    iso = np.flatnonzero(np.diff(g.indptr) == 0)
    assert iso.size == 5 and all((m1 == m1[i]).sum() == 1 for i in iso)


def test_leiden_finds_planted_communities():
    from socialgraph.circles import leiden_communities
    from socialgraph.graph import build_call_graph

    rng = np.random.default_rng(0)
    blocks = np.repeat(np.arange(10), 20)  # 10 planted groups of 20
    a, b = np.triu_indices(200, 1)
    p = np.where(blocks[a] == blocks[b], 0.5, 0.01)
    keep = rng.random(a.size) < p
    g = build_call_graph(a[keep] + 1, b[keep] + 1, np.ones(keep.sum()), on_net_keys=np.arange(1, 201))
    m, q = leiden_communities(g, seed=1)
    # every planted group lands in one community, and no community mixes groups
    ids = g.ids_of(np.arange(1, 201))
    found = m[ids]
    assert all(len(set(found[blocks == k])) == 1 for k in range(10))
    assert len(set(found)) == 10
    assert q > 0.6

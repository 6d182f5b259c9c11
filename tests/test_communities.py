"""socialgraph.communities: the Leiden wrapper against igraph called directly, batches of whole
components, partition modularity, and the CPM join's cut and leaves against CPM from scratch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from reference_circles import cpm_reference

from socialgraph.config import CirclesConfig
from socialgraph.graph import build_call_graph


def _random_graph(seed, n=300, m=1200):
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

    from socialgraph.communities import leiden_communities

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
    from socialgraph.communities import leiden_communities

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


def _random_join_graph(rng, n_core, n_leaf, core_w=(2, 7), tie_scale=1.0):
    """A random graph of communities (node weights ``core_w``) with leaves (weight 1, one tie)
    hung on them, half on node 0: (n, u, v, w, node weights, leaf's neighbour)."""
    ij = np.unique(np.sort(rng.integers(0, n_core, (3 * n_core, 2)), axis=1), axis=0)
    ij = ij[ij[:, 0] != ij[:, 1]]
    hang = np.where(rng.random(n_leaf) < 0.5, 0, rng.integers(0, n_core, n_leaf))
    u = np.concatenate([ij[:, 0], n_core + np.arange(n_leaf)])
    v = np.concatenate([ij[:, 1], hang])
    w = np.concatenate([rng.gamma(2.0, tie_scale, ij.shape[0]), rng.gamma(2.0, 1.5, n_leaf)])
    node_w = np.concatenate([rng.integers(*core_w, n_core), np.ones(n_leaf, np.int64)])
    return n_core + n_leaf, u, v, w, node_w, hang


@pytest.mark.parametrize("seed", range(5))
def test_leaves_are_placed_where_cpm_gains_and_no_community_crosses_a_non_gaining_cut(seed):
    """On random graphs of communities with leaves hung on them: no single leaf can raise the
    CPM, from scratch, by moving (to its neighbour's community or alone): the placement is a
    local optimum for every leaf; and no community holds two nodes that only ties which do
    not gain (``w <= resolution * n_i * n_j``) connect (networkx's components)."""
    import networkx as nx

    from socialgraph.communities import _join_with_leaves

    rng = np.random.default_rng(seed)
    n_core, n_leaf = int(rng.integers(20, 60)), int(rng.integers(10, 40))
    n, u, v, w, node_w, hang = _random_join_graph(rng, n_core, n_leaf)
    res, cfg = 0.15, CirclesConfig()
    joined = _join_with_leaves(n, u, v, w, node_w, res, cfg, None)
    q = cpm_reference(u, v, w, node_w, joined, res)
    joined_somewhere = 0
    for k in range(n_leaf):
        leaf, nbr = n_core + k, hang[k]
        joined_somewhere += joined[leaf] == joined[nbr]
        moved = joined.copy()
        moved[leaf] = joined.max() + 1 if joined[leaf] == joined[nbr] else joined[nbr]
        assert cpm_reference(u, v, w, node_w, moved, res) <= q + 1e-9
    assert 0 < joined_somewhere < n_leaf  # both outcomes occur on these graphs
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from((a, b) for a, b, x in zip(u, v, w) if x > res * node_w[a] * node_w[b])
    part = {node: i for i, comp in enumerate(nx.connected_components(g)) for node in comp}
    assert pd.Series([part[i] for i in range(n)]).groupby(joined).nunique().max() == 1
    assert len(set(part.values())) > 1  # the cut does cut these graphs


@pytest.mark.parametrize("seed", range(4))
def test_cutting_a_partition_along_non_gaining_ties_never_lowers_its_cpm(seed):
    """Why the join may run Leiden on the parts apart: for any partition, splitting each
    community along the components of its gaining ties (``w > resolution * n_i * n_j``)
    gives a CPM at least as high (from scratch), so some best partition lies within the parts.
    Partitions: Leiden's (several seeds) and random ones. A stricter rule (``w > 2 *
    resolution * n_i * n_j``) cuts ties that do gain, and lowers good partitions' CPM."""
    import networkx as nx

    from socialgraph.communities import leiden_edges

    rng = np.random.default_rng(200 + seed)
    n, u, v, w, node_w, _ = _random_join_graph(rng, 30, 0, core_w=(1, 6), tie_scale=2.0)
    res = 0.5

    def cut(labels, gains):
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from((a, b) for a, b, x, ok in zip(u, v, w, gains) if ok and labels[a] == labels[b])
        out = np.empty(n, np.int64)
        for i, comp in enumerate(nx.connected_components(g)):
            out[list(comp)] = i
        return out

    gaining = w > res * node_w[u] * node_w[v]
    wrong = w > 2 * res * node_w[u] * node_w[v]
    rose, fell_wrong = 0, 0
    partitions = [leiden_edges(n, u, v, w, resolution=res, seed=s, objective="CPM", modularity=False,
                               node_weights=node_w)[0] for s in range(10)]
    for labels in partitions + [rng.integers(0, 4, n) for _ in range(10)]:
        q = cpm_reference(u, v, w, node_w, labels, res)
        q_cut = cpm_reference(u, v, w, node_w, cut(labels, gaining), res)
        assert q_cut >= q - 1e-9
        rose += q_cut > q + 1e-9
        fell_wrong += cpm_reference(u, v, w, node_w, cut(labels, wrong), res) < q - 1e-9
    assert rose > 0 and fell_wrong > 0


def _random_forest_of_groups(seed: int, n_groups: int = 300):
    """Many small dense groups, a few chained together by weak ties: a family layer in miniature."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, n_groups)
    start = np.concatenate([[0], np.cumsum(sizes)])
    src, dst = [], []
    for g in range(n_groups):
        nodes = np.arange(start[g], start[g + 1])
        for i in range(nodes.size):
            for j in range(i + 1, nodes.size):
                if rng.random() < 0.8:
                    src.append(nodes[i]), dst.append(nodes[j])
        if g and rng.random() < 0.2:  # a weak tie to the previous group
            src.append(start[g - 1]), dst.append(start[g])
    n = int(start[-1])
    src, dst = np.array(src, np.int64), np.array(dst, np.int64)
    w = np.where(rng.random(src.size) < 0.9, rng.uniform(1.5, 6.0, src.size), rng.uniform(0.1, 0.5, src.size))
    return n, src, dst, w


@pytest.mark.parametrize("seed", range(4))
def test_leiden_batches_hold_whole_components_in_order(seed):
    import networkx as nx

    from socialgraph.communities import leiden_batches

    n, src, dst, _ = _random_forest_of_groups(seed)
    for batch_edges in (1, 7, 50, 10**9):
        batch, ties = leiden_batches(n, src, dst, batch_edges)
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(zip(src.tolist(), dst.tolist()))
        comps = sorted((sorted(c) for c in nx.connected_components(g)), key=lambda c: c[0])
        for c in comps:
            assert len(set(batch[c])) == 1, "a component was split between batches"
        # consecutive components (by lowest node) fill consecutive batches
        first_batch = [batch[c[0]] for c in comps]
        assert first_batch == sorted(first_batch) and set(first_batch) == set(range(ties.size))
        assert ties.tolist() == np.bincount(batch[src], minlength=ties.size).tolist()
        if batch_edges < 10**9:
            # a batch starts where the ties before it reach a multiple of batch_edges
            before = np.cumsum(ties) - ties
            assert (np.diff(before // batch_edges) >= 1).all()
        else:
            assert ties.size == 1


@pytest.mark.parametrize("seed", range(4))
def test_partition_modularity_is_igraphs(seed):
    import igraph as ig

    from socialgraph.communities import partition_modularity

    n, src, dst, w = _random_forest_of_groups(seed, 80)
    rng = np.random.default_rng(seed)
    m = rng.integers(0, 25, n)
    g = ig.Graph(n=n, edges=list(zip(src.tolist(), dst.tolist())))
    assert_allclose(partition_modularity(src, dst, w, m), g.modularity(m.tolist(), weights=w.tolist()), rtol=1e-12)


@pytest.mark.parametrize("objective, resolution", [("CPM", 1.0), ("modularity", 1.0)])
def test_batched_leiden_is_as_good_as_one_run_and_needs_no_particular_executor(objective, resolution):
    from concurrent.futures import ThreadPoolExecutor

    import igraph as ig

    from socialgraph.communities import partition_modularity
    from socialgraph.layers import _communities

    n, src, dst, w = _random_forest_of_groups(11, 600)
    graph = build_call_graph(src + 1, dst + 1, w, on_net_keys=np.arange(1, n + 1))
    keep = np.ones(graph.n_edges * 2, bool)
    whole = _communities(graph, keep, objective, resolution, 1, 10**9, CirclesConfig(leiden_batch_edges=0))
    calls = []

    def pool_map(fn, tasks, costs):  # another executor: threads, costliest task first
        calls.append(costs)
        with ThreadPoolExecutor(2) as ex:
            futures = {i: ex.submit(fn, *tasks[i]) for i in sorted(range(len(tasks)), key=lambda i: -costs[i])}
            return [futures[i].result() for i in range(len(tasks))]

    batched_cfg = CirclesConfig(leiden_batch_edges=40)
    batched = _communities(graph, keep, objective, resolution, 1, 10**9, batched_cfg)
    pooled = _communities(graph, keep, objective, resolution, 1, 10**9, batched_cfg, map_tasks=pool_map)
    assert len(calls[0]) > 10, "the graph was not cut into batches"
    # the same batches give the same circles, whoever runs them
    assert np.array_equal(batched[0], pooled[0]) and np.array_equal(batched[1], pooled[1])
    # every node has a tie; the labels partition them, and no circle spans two components
    assert np.array_equal(whole[0], np.arange(graph.n_nodes)) and np.array_equal(batched[0], whole[0])
    comp = ig.Graph(n=n, edges=list(zip(src.tolist(), dst.tolist()))).connected_components().membership
    node_key = graph.keys - 1  # node -> original vertex
    assert (pd.Series(np.asarray(comp)[node_key]).groupby(batched[1]).nunique() == 1).all()

    def quality(labels):
        m = np.empty(graph.n_nodes, np.int64)
        m[batched[0]] = labels
        s_, d_ = np.searchsorted(graph.keys, src + 1), np.searchsorted(graph.keys, dst + 1)
        if objective == "modularity":
            return partition_modularity(s_, d_, w, m)
        inside = np.where(m[s_] == m[d_], w, 0.0).sum()
        sizes = np.bincount(m)
        return inside - resolution * (sizes * (sizes - 1) / 2).sum()

    qw, qb = quality(whole[1]), quality(batched[1])
    assert qb >= qw - 0.01 * abs(qw), (qb, qw)
    assert abs(batched[2] - whole[2]) < 0.02  # the reported modularity of the layer

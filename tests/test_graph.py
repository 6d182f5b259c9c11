"""CallGraph: CSR against networkx on random edge lists, node table, conversions, ids_of."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import reference_prefix_lookup
from socialgraph.graph import CallGraph, build_call_graph
from socialgraph.numbers import format_numbers, number_keys


@st.composite
def edge_lists(draw):
    n = draw(st.integers(2, 30))
    numbers = draw(st.lists(st.text(alphabet="0123456789", min_size=3, max_size=12)
                            .filter(lambda s: not s.startswith("00")),
                            min_size=n, max_size=n, unique=True))
    keys = number_keys(pa.array(numbers, pa.string()))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] != p[1]),
                          max_size=60, unique_by=lambda p: (min(p), max(p))))
    weights = draw(st.lists(st.one_of(st.just(0.0), st.floats(0.01, 100.0), st.floats(-5.0, -0.01)),
                            min_size=len(pairs), max_size=len(pairs)))
    n_extra = draw(st.integers(0, 4))
    extra = draw(st.lists(st.text(alphabet="0123456789", min_size=3, max_size=12)
                          .filter(lambda s: not s.startswith("00")), max_size=n_extra))
    return numbers, keys, pairs, weights, extra


def _reference_graph(numbers, pairs, weights, extra):
    """networkx graph over sorted digit strings (order of keys = order of the strings)."""
    g = nx.Graph()
    nodes = set(numbers[i] for p in pairs for i in p) | set(extra)
    g.add_nodes_from(nodes)
    for (i, j), w in zip(pairs, weights):
        if w > 0:
            g.add_edge(numbers[i], numbers[j], weight=w)
    return g, sorted(nodes)


def _dense(graph: CallGraph) -> np.ndarray:
    n = graph.n_nodes
    m = np.zeros((n, n))
    for u in range(n):
        for p in range(graph.indptr[u], graph.indptr[u + 1]):
            v = graph.indices[p]
            assert m[u, v] == 0, "an edge is stored twice"
            m[u, v] = graph.weights[p]
    return m


@settings(max_examples=150, deadline=None)
@given(edge_lists())
def test_csr_equals_networkx_adjacency(data):
    numbers, keys, pairs, weights, extra = data
    a = np.array([keys[i] for i, _ in pairs], np.int64)
    b = np.array([keys[j] for _, j in pairs], np.int64)
    extra_keys = number_keys(pa.array(extra, pa.string()))
    g = build_call_graph(a, b, np.array(weights, float), on_net_keys=np.array([], np.int64), extra_keys=extra_keys)
    ref, order = _reference_graph(numbers, pairs, weights, extra)

    assert g.nodes["msisdn"].tolist() == order
    assert format_numbers(g.keys).to_pylist() == order
    assert g.n_nodes == len(order)
    assert g.indptr.dtype == np.int64 and g.indices.dtype == np.int32 and g.weights.dtype == np.float64
    assert g.indptr.shape == (g.n_nodes + 1,) and g.indptr[0] == 0 and g.indptr[-1] == g.indices.size
    assert np.all(np.diff(g.indptr) >= 0)
    assert g.n_edges == sum(w > 0 for w in weights) == ref.number_of_edges()
    m = _dense(g)
    want = nx.to_numpy_array(ref, nodelist=order, weight="weight") if order else np.zeros((0, 0))
    np.testing.assert_array_equal(m, want)
    np.testing.assert_array_equal(m, m.T)
    assert not np.any(np.diag(m))
    # isolated extra nodes are in the graph with no neighbours
    for s in extra:
        if ref.degree(s) == 0:
            i = order.index(s)
            assert g.indptr[i + 1] == g.indptr[i]


@settings(max_examples=60, deadline=None)
@given(edge_lists())
def test_to_networkx_and_igraph_round_trip(data):
    numbers, keys, pairs, weights, extra = data
    a = np.array([keys[i] for i, _ in pairs], np.int64)
    b = np.array([keys[j] for _, j in pairs], np.int64)
    g = build_call_graph(a, b, np.array(weights, float), on_net_keys=np.array([], np.int64),
                         extra_keys=number_keys(pa.array(extra, pa.string())))
    ref, order = _reference_graph(numbers, pairs, weights, extra)
    want = {(min(order.index(u), order.index(v)), max(order.index(u), order.index(v))): d["weight"]
            for u, v, d in ref.edges(data=True)}

    G = g.to_networkx()
    assert sorted(G.nodes) == list(range(g.n_nodes))
    got = {(min(u, v), max(u, v)): d["weight"] for u, v, d in G.edges(data=True)}
    assert got == want
    # back to CSR through networkx: the same matrix
    if g.n_nodes:
        np.testing.assert_array_equal(nx.to_numpy_array(G, nodelist=range(g.n_nodes)), _dense(g))

    pytest.importorskip("igraph")
    ig_g = g.to_igraph()
    assert ig_g.vcount() == g.n_nodes and not ig_g.is_directed()
    got_ig = {(min(e.source, e.target), max(e.source, e.target)): e["weight"] for e in ig_g.es}
    assert got_ig == want
    assert ig_g.ecount() == len(want)


def test_ids_of():
    keys = number_keys(["200", "100", "300", "150"])
    g = build_call_graph(keys[[0, 1]], keys[[2, 3]], np.array([1.0, 2.0]), on_net_keys=np.array([], np.int64))
    # node ids follow the sorted keys: 100, 150, 200, 300
    probe = number_keys(["100", "150", "200", "300", "0999", "999", "1000", "15"])
    assert g.ids_of(probe).tolist() == [0, 1, 2, 3, -1, -1, -1, -1]
    assert g.ids_of(np.array([], np.int64)).tolist() == []
    empty = build_call_graph(np.array([], np.int64), np.array([], np.int64), np.array([]),
                             on_net_keys=np.array([], np.int64))
    assert empty.n_nodes == 0 and empty.n_edges == 0 and empty.indptr.tolist() == [0]
    assert empty.ids_of(probe).tolist() == [-1] * len(probe)


@pytest.mark.parametrize("sort", [False, True])
def test_ids_of_many_keys_matches_a_dictionary(sort):
    # past 4096 unsorted keys ids_of takes a hash lookup instead of the binary search
    rng = np.random.default_rng(7)
    a, b = rng.integers(1, 50_000, 20_000), rng.integers(1, 50_000, 20_000)
    a, b = a[a != b], b[a != b]
    g = build_call_graph(a, b, np.ones(a.size), on_net_keys=a)
    probe = rng.integers(0, 60_000, 9_000)
    probe = np.sort(probe) if sort else probe
    where = {int(k): i for i, k in enumerate(g.keys)}
    assert g.ids_of(probe).tolist() == [where.get(int(k), -1) for k in probe]
    assert g.ids_of(probe.reshape(3, -1)).shape == (3, 3000)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=10).filter(lambda s: not s.startswith("00")),
                min_size=1, max_size=20, unique=True),
       st.lists(st.text(alphabet="0123456789", min_size=1, max_size=10).filter(lambda s: not s.startswith("00")),
                max_size=10))
def test_ids_of_matches_positions(nodes, probes):
    keys = number_keys(pa.array(nodes, pa.string()))
    g = build_call_graph(np.array([], np.int64), np.array([], np.int64), np.array([]),
                         on_net_keys=np.array([], np.int64), extra_keys=keys)
    order = sorted(nodes)
    got = g.ids_of(number_keys(pa.array(probes + nodes, pa.string()))).tolist()
    assert got == [order.index(p) if p in order else -1 for p in probes + nodes]


def test_node_table():
    numbers = ["13800000001", "13900000002", "13000000003", "18900000004", "95580000", "77700000005",
               "13800000009"]
    k = number_keys(numbers)
    a = k[[0, 0, 0, 1, 4, 5]]
    b = k[[1, 2, 3, 2, 0, 1]]
    w = np.array([1.0, 2.0, 0.5, 1.5, 0.0, 0.7])
    operators = {"130": "CompA", "189": "CompB", "9558": "Service", "1": "Other"}
    g = build_call_graph(a, b, w, on_net_keys=k[[0, 1]], home_prefixes=("777",), operators=operators,
                         home_operator="HomeTel", service_hub_keys=k[[4]], extra_keys=k[[6]])
    nodes = g.nodes.set_index("msisdn")
    assert sorted(nodes.index) == sorted(numbers)
    assert list(g.nodes["msisdn"]) == sorted(numbers)
    on_net = {"13800000001", "13900000002", "77700000005"}  # subscribers + a home prefix
    for n in numbers:
        assert bool(nodes.loc[n, "on_net"]) == (n in on_net), n
        want_op = "HomeTel" if n in on_net else reference_prefix_lookup([n], operators, "unknown")[0]
        assert nodes.loc[n, "operator"] == want_op, n
        assert bool(nodes.loc[n, "service_hub"]) == (n == "95580000"), n
    assert nodes.loc["13800000009", "on_net"] == False  # noqa: E712 - an isolated extra node
    # the zero-weight tie to the hub is not in the CSR, the hub's node stays
    hub = g.ids_of(k[[4]])[0]
    assert g.indptr[hub + 1] == g.indptr[hub]
    assert g.n_edges == 5


def test_build_call_graph_rejects_bad_input():
    k = number_keys(["111", "222"])
    with pytest.raises(ValueError):
        build_call_graph(k[[0]], k[[0]], np.array([1.0]), on_net_keys=k)
    with pytest.raises(ValueError):
        build_call_graph(k[[0, 1]], k[[1, 0]], np.array([1.0]), on_net_keys=k)


@pytest.mark.parametrize("seed", range(6))
def test_csr_without_sorting_equals_the_sorted_build(seed):
    # the job's ties come in (a, b) order with a < b: the CSR is placed by counting, no sort;
    # the same ties in any other order take the argsort path: both must give the same arrays
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    m = int(rng.integers(1, 3 * n))
    ij = np.unique(np.sort(rng.integers(0, n, (m, 2)), axis=1), axis=0)
    ij = ij[ij[:, 0] != ij[:, 1]]
    keys = np.sort(rng.choice(10**9, n, replace=False)) + 10**9
    a, b = keys[ij[:, 0]], keys[ij[:, 1]]
    w = np.where(rng.random(a.size) < 0.1, 0.0, rng.random(a.size))
    ab, ba = rng.integers(0, 50, a.size), rng.integers(0, 50, a.size)
    days = rng.integers(0, 90, a.size).astype(np.int32)
    blocks = rng.integers(0, 28, (a.size, 4)).astype(np.int16)
    extra = rng.choice(10**9, 5) + 3 * 10**9

    def build(perm, flip):
        x, y = a[perm], b[perm]
        e_ab, e_ba = ab[perm], ba[perm]
        if flip is not None:  # the same tie as (b, a): its directions swap
            x, y = np.where(flip, y, x), np.where(flip, x, y)
            e_ab, e_ba = np.where(flip, e_ba, e_ab), np.where(flip, e_ab, e_ba)
        return build_call_graph(x, y, w[perm], on_net_keys=keys[:3], extra_keys=extra,
                                events_ab=e_ab, events_ba=e_ba,
                                tie_arrays={"days": days[perm], "blocks": blocks[perm]})

    sorted_build = build(np.arange(a.size), None)
    perm = rng.permutation(a.size)
    other = build(perm, rng.random(a.size) < 0.5)
    for name in ("keys", "indptr", "indices", "weights", "received", "sent"):
        np.testing.assert_array_equal(getattr(sorted_build, name), getattr(other, name), err_msg=name)
        assert getattr(sorted_build, name).dtype == getattr(other, name).dtype
    for name in ("days", "blocks"):
        np.testing.assert_array_equal(sorted_build.entry[name], other.entry[name])
    # rows hold their neighbours in increasing order, each tie in both rows
    for u in range(sorted_build.n_nodes):
        row = sorted_build.indices[sorted_build.indptr[u]:sorted_build.indptr[u + 1]]
        assert np.all(np.diff(row) > 0)
    assert sorted_build.n_edges == int((w > 0).sum())


@pytest.mark.parametrize("seed", range(5))
def test_node_max_is_the_largest_value_over_each_nodes_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    ij = np.unique(np.sort(rng.integers(0, n, (2 * n, 2)), axis=1), axis=0)
    ij = ij[ij[:, 0] != ij[:, 1]]
    keys = np.sort(rng.choice(10**6, n, replace=False))
    days = rng.integers(0, 500, ij.shape[0]).astype(np.int32)
    g = build_call_graph(keys[ij[:, 0]], keys[ij[:, 1]], np.ones(ij.shape[0]), on_net_keys=keys, extra_keys=keys,
                         tie_arrays={"last_day": days})
    expect = {int(k): -1 for k in keys}
    for (i, j), d in zip(ij, days):
        for k in (keys[i], keys[j]):
            expect[int(k)] = max(expect[int(k)], int(d))
    assert dict(zip(g.keys.tolist(), g.node_max("last_day").tolist())) == expect


def test_canonical_order_detects_unsorted_ties():
    from socialgraph.kernels.csr import canonical_order

    assert canonical_order(np.array([0, 0, 1], np.int32), np.array([1, 2, 2], np.int32))
    assert not canonical_order(np.array([0, 1, 0], np.int32), np.array([1, 2, 2], np.int32))
    assert not canonical_order(np.array([0, 2], np.int32), np.array([1, 1], np.int32))  # a > b
    assert not canonical_order(np.array([0, 0], np.int32), np.array([1, 1], np.int32))  # repeated

"""Community detection for the circles: igraph's Leiden on call graphs and edge lists.

:func:`leiden_communities` and :func:`leiden_edges` wrap ``igraph.Graph.community_leiden``
(seeded per call, weighted modularity of the result); :func:`leiden_batches` cuts a graph into
batches of whole connected components, which Leiden can solve apart and in parallel; and
:func:`_join_with_leaves` runs CPM Leiden on a graph of communities (households, workplaces)
cut first into the parts it can be solved in apart, an exact shortcut for CPM. The circle
layers built on them are in :mod:`socialgraph.layers`.
"""

from __future__ import annotations

import random

import numpy as np

from .arrays import unique_inverse
from .config import CirclesConfig
from .graph import CallGraph

__all__ = ["leiden_communities", "leiden_edges", "partition_modularity", "leiden_batches", "serial_map"]


def leiden_communities(graph: CallGraph, *, resolution: float = 1.0, seed: int = 42,
                       n_iterations: int = 2, initial_membership: np.ndarray | None = None,
                       objective: str = "modularity") -> tuple[np.ndarray, float]:
    """Weighted Leiden communities with igraph; returns (membership, modularity).

    ``objective`` is ``"modularity"`` (resolution dimensionless) or ``"CPM"`` (resolution in
    weight units). The modularity returned is the weighted modularity (resolution 1) of the
    partition found, whatever the objective. Deterministic for a seed, in any thread: igraph
    is given its own seeded generator for the call.
    ``initial_membership`` warm-starts from a previous partition. Isolated nodes are
    singleton communities.

    >>> from socialgraph.graph import build_call_graph
    >>> a = np.array([1, 1, 2, 4, 4, 5, 3]); b = np.array([2, 3, 3, 5, 6, 6, 4])
    >>> w = np.array([5.0, 5, 5, 5, 5, 5, 0.1])
    >>> m, q = leiden_communities(build_call_graph(a, b, w, on_net_keys=a), seed=1)
    >>> len(set(m[:3])), len(set(m[3:])), bool(m[0] != m[3]), round(q, 3)
    (1, 1, True, 0.497)
    """
    src = graph.entry_rows()
    keep = src < graph.indices
    return leiden_edges(graph.n_nodes, src[keep], graph.indices[keep], graph.weights[keep],
                        resolution=resolution, seed=seed, n_iterations=n_iterations,
                        initial_membership=initial_membership, objective=objective)


def leiden_edges(n_nodes: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, *,
                 resolution: float = 1.0, seed: int = 42, n_iterations: int = 2,
                 initial_membership: np.ndarray | None = None,
                 objective: str = "modularity", modularity: bool = True,
                 node_weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """:func:`leiden_communities` on an undirected edge list (each edge once, nodes ``0..n-1``);
    ``modularity=False`` skips computing the modularity (returned as NaN). ``node_weights``
    (CPM): each node counts as that many nodes in the size penalty, so that Leiden on a graph
    of communities (sizes as weights, ties between them summed) optimises the same CPM
    objective over unions of those communities.

    >>> m, q = leiden_edges(4, np.array([0, 2]), np.array([1, 3]), np.array([1.0, 1.0]))
    >>> bool(m[0] == m[1] and m[2] == m[3] and m[0] != m[2]), q
    (True, 0.5)
    """
    import igraph as ig

    if resolution <= 0:
        raise ValueError(f"leiden_communities: resolution must be > 0, got {resolution}")
    if objective not in ("modularity", "CPM"):
        raise ValueError(f"leiden_communities: objective must be 'modularity' or 'CPM', got {objective!r}")
    # a list of pairs converts ~1.7x faster than an ndarray in igraph's constructor
    g = ig.Graph(n=int(n_nodes), edges=list(zip(np.asarray(src).tolist(), np.asarray(dst).tolist())), directed=False)
    g.es["weight"] = np.asarray(weight, np.float64).tolist()
    # igraph draws from the generator set with set_random_number_generator (per thread: the
    # module-level default is not used outside the main thread), so give it a seeded one
    rng = random.Random(seed)
    ig.set_random_number_generator(rng)
    try:
        part = g.community_leiden(
            objective_function=objective, weights="weight", resolution=resolution,
            n_iterations=n_iterations,
            initial_membership=None if initial_membership is None else np.asarray(initial_membership).tolist(),
            node_weights=None if node_weights is None else np.asarray(node_weights, np.float64).tolist(),
        )
    finally:
        ig.set_random_number_generator(random)
    membership = np.asarray(part.membership, dtype=np.int64)
    if not modularity:
        return membership, float("nan")
    if g.ecount() == 0:
        return membership, 0.0
    return membership, partition_modularity(np.asarray(src, np.int64), np.asarray(dst, np.int64), weight, membership)


def partition_modularity(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, membership: np.ndarray) -> float:
    """Weighted modularity (resolution 1) of ``membership`` on an undirected edge list (each
    edge once), as igraph's ``Graph.modularity``: ``sum_c w_in(c) / W - (s_c / 2W)^2``.

    >>> round(partition_modularity(np.array([0, 2]), np.array([1, 3]), np.ones(2), np.array([0, 0, 1, 1])), 3)
    0.5
    """
    w = np.asarray(weight, np.float64)
    total = float(w.sum())
    if total <= 0:
        return 0.0
    m = np.asarray(membership, np.int64)
    n_c = int(m.max()) + 1 if m.size else 0
    inside = np.bincount(m[src], weights=np.where(m[src] == m[dst], w, 0.0), minlength=n_c).sum()
    strength = np.bincount(m[src], weights=w, minlength=n_c) + np.bincount(m[dst], weights=w, minlength=n_c)
    return float(inside / total - np.sum((strength / (2 * total)) ** 2))


def leiden_batches(n_nodes: int, src: np.ndarray, dst: np.ndarray, batch_edges: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut a graph into batches of whole connected components, for Leiden run batch by batch.

    Neither objective gains by putting unconnected nodes together, so Leiden never merges two
    components, and running it on a few components at a time finds circles of the same
    quality (CPM is a sum over communities; modularity needs the resolution scaled by the
    batch's share of the total weight, which :func:`socialgraph.layers._layer_plan` does). On a
    graph of many small components (the family layer) it is also faster: igraph's Leiden
    costs ~2x less per tie on 100k ties than on a million (its working set then stays in the
    cache), and separate batches can run in parallel on separate processes.

    Components, in the order of their lowest node, are packed into consecutive batches of
    about ``batch_edges`` ties (one batch when ``batch_edges`` is 0); a component larger than
    that is a batch of its own. Returns ``(batch of each node, number of ties of each
    batch)``: the batches depend only on the graph, never on the machine.

    >>> b, e = leiden_batches(6, np.array([0, 2, 4]), np.array([1, 3, 5]), 2)
    >>> b.tolist(), e.tolist()
    ([0, 0, 0, 0, 1, 1], [2, 1])
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    if n_nodes == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if batch_edges <= 0 or src.size <= batch_edges:
        return np.zeros(n_nodes, np.int64), np.array([src.size], np.int64)
    adj = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(n_nodes, n_nodes))
    n_comp, comp = connected_components(adj, directed=False)  # labelled in order of lowest node
    comp_edges = np.bincount(comp[src], minlength=n_comp)
    before = np.cumsum(comp_edges) - comp_edges  # ties of the components before this one
    batch_of_comp = unique_inverse(before // batch_edges)[1]
    batch = batch_of_comp[comp]
    return batch, np.bincount(batch[src], minlength=int(batch.max()) + 1)


def _leiden_batch(n_nodes: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, initial, kwargs: dict):
    """One batch's membership (its modularity is computed for the whole layer afterwards)."""
    return leiden_edges(n_nodes, src, dst, weight, initial_membership=initial, modularity=False, **kwargs)[0]


def serial_map(fn, tasks: list[tuple], costs: list[float]) -> list:
    """The default executor of batched Leiden: one task after the other, in this process."""
    return [fn(*t) for t in tasks]


def _join_with_leaves(n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray, node_w: np.ndarray,
                      resolution: float, cfg: CirclesConfig, start: np.ndarray | None) -> np.ndarray:
    """CPM Leiden (``node_w`` as node weights) on the graph of communities (each edge once),
    cut first into the parts it can be solved in apart, its *leaves* placed afterwards.

    - **Parts.** A tie gains only if ``w_ij > resolution * n_i * n_j`` (*positive*); a
      community's CPM over its nodes alone is the sum of ``w_ij - resolution * n_i * n_j`` over
      its pairs. Split any community along the components of the positive ties: the pairs cut
      apart are all not positive, so the CPM does not fall. Some optimal partition therefore
      lies within those components, and Leiden runs on them with the ties between them left
      out, the nodes alone in theirs left alone. At the household resolution (1.0) a friend's
      tie between two families is rarely positive, so the joined graph, one giant component,
      falls apart into families and their close contacts.
    - **Leaves.** A lone member (weight 1) tied to one community only can join that
      community ``C`` or stay alone: it joins when its tie outweighs the resolution times
      ``C``'s weight, the CPM gain of the move (leaves are left out of Leiden's graph, and
      their own weight out of the other moves' costs). The members the workplace join takes
      in from outside the work layer are mostly such leaves.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    deg = np.bincount(u, minlength=n) + np.bincount(v, minlength=n)
    leaf = (node_w == 1) & (deg == 1)
    one = leaf[u] != leaf[v]  # a leaf tied to another leaf (a pair apart) stays in the graph
    leaf_end, other, tie = np.where(leaf[u], u, v)[one], np.where(leaf[u], v, u)[one], w[one]
    drop = np.zeros(n, bool)
    drop[leaf_end] = True
    e = ~(drop[u] | drop[v])
    positive = e & (w > resolution * node_w[u].astype(np.float64) * node_w[v])
    _, part = connected_components(coo_matrix((np.ones(int(positive.sum())), (u[positive], v[positive])),
                                              shape=(n, n)), directed=False)
    e &= part[u] == part[v]
    in_part = np.bincount(part, minlength=n)[part] > 1
    kept = np.flatnonzero(in_part & ~drop)
    local = np.full(n, -1, np.int64)
    local[kept] = np.arange(kept.size)
    joined = np.full(n, -1, np.int64)
    joined[kept], _ = leiden_edges(kept.size, local[u[e]], local[v[e]], w[e], resolution=resolution,
                                   seed=cfg.seed, n_iterations=cfg.leiden_iterations, objective="CPM",
                                   initial_membership=None if start is None else unique_inverse(start[kept])[1].reshape(-1),
                                   modularity=False, node_weights=node_w[kept])
    lone = np.flatnonzero(~in_part & ~drop)  # alone in their part: communities of their own
    joined[lone] = (int(joined[kept].max()) + 1 if kept.size else 0) + np.arange(lone.size)
    placed = joined >= 0
    weight_of = np.bincount(joined[placed], weights=node_w[placed])
    target = joined[other]
    # leaves into one community, strongest tie first: the k-th (from 0) also pays for the k
    # before it, so those that join are a prefix and each one's move gains given the others
    order = np.lexsort((-tie, target))
    first = np.ones(order.size, bool)
    first[1:] = target[order][1:] != target[order][:-1]
    start_of = np.maximum.accumulate(np.where(first, np.arange(order.size), 0))
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size) - start_of
    stays = tie <= resolution * (weight_of[target] + rank)
    alone = int(joined.max()) + 1 if n else 0
    joined[leaf_end] = np.where(stays, alone + np.cumsum(stays) - 1, target)
    return joined

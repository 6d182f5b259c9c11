"""Circles: groups of numbers that churn together.

*Declared* circles come from the subscriber table: a corporate V-net (``vnet_id``) or a family
plan (``family_id``); their ids are the operator's own (``vnet:<vnet_id>``,
``family:<family_id>``), so they are the same in every run.

*Inferred* circles come from the call graph, split into layers by when people call (see
:class:`~socialgraph.config.CirclesConfig` and :func:`social_layers`): small *family* circles
from strong reciprocal evening/weekend ties, and *social* circles from the remaining repeated
ties, in two layers (working-hours ties: colleagues; the rest: friends), each layer
partitioned by igraph's Leiden; the family and work layers' circles are joined again,
coarser, into *households* and *workplaces* (:func:`joined_levels`,
:meth:`_LayerPlan.coarse`). Off-net numbers belong to inferred circles like anyone else. An
inferred circle's id is ``fam-<hex>``, ``hhd-<hex>``, ``wrk-<hex>``, ``wpl-<hex>`` or
``soc-<hex>`` (its layer), a hash of its lowest member number (stable while that member
stays; never the number itself).

:func:`circle_members` puts both together, one row per (circle, member), with each member's
in-circle influence (its neighbours' dependence on it inside the circle), strongest in-circle
tie, and role: the circle's ``anchor`` is its most influential active on-net member.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .arrays import isin, unique, unique_inverse
from .config import CirclesConfig
from .graph import CallGraph
from .kernels.circles import _circle_anchors, _in_circle_ties
from .subscribers import Subscribers

__all__ = ["declared_circles", "leiden_communities", "leiden_edges", "family_tie_mask", "layer_graph",
           "inferred_circles", "circle_members", "in_circle_ties"]

MEMBER_COLUMNS = ("circle_id", "kind", "source", "key")


def declared_circles(subs: Subscribers) -> pd.DataFrame:
    """One row per (declared circle, member subscriber).

    Columns: ``circle_id``, ``kind`` (``family`` or ``vnet``), ``source`` (``declared``),
    ``key`` (the member's number key). A subscriber in both a family plan and a V-net is a
    member of both circles. Rows are ordered by ``circle_id`` then ``key``.

    >>> import pyarrow as pa, datetime as dt
    >>> from socialgraph.subscribers import subscribers_from_arrow
    >>> t = pa.table({"msisdn": ["13800000001", "13800000002", "13800000003"],
    ...               "activation_date": pa.array([dt.date(2025, 1, 1)] * 3),
    ...               "family_id": ["F1", "F1", None], "vnet_id": [None, "V9", "V9"]})
    >>> declared_circles(subscribers_from_arrow(t))[["circle_id", "kind"]].values.tolist()
    [['family:F1', 'family'], ['family:F1', 'family'], ['vnet:V9', 'vnet'], ['vnet:V9', 'vnet']]
    """
    names, circle, kind, sub_row = _declared_rows(subs)
    if not circle.size:
        return pd.DataFrame({"circle_id": pd.Series(dtype=object), "kind": pd.Series(dtype=object),
                             "source": pd.Series(dtype=object), "key": pd.Series(dtype=np.int64)})
    return _rows_frame(names, circle, kind, subs.key[sub_row], "declared")


def _rows_frame(names: np.ndarray, circle: np.ndarray, kind: np.ndarray, key: np.ndarray, source: str) -> pd.DataFrame:
    """Circle rows as arrays (:func:`_declared_rows`, :func:`_inferred_rows`) as the table
    ``circle_id, kind, source, key``, ordered by circle id then key."""
    codes, names = _sorted_names(names, circle)
    order = np.lexsort((key, codes))
    return pd.DataFrame({"circle_id": _str_take(names, codes[order]), "kind": _str_take(_KINDS, kind[order]),
                         "source": source, "key": key[order]})


#: kinds of circles, as coded in the row arrays of :func:`circle_members`
_KINDS = ("family", "vnet", "social")
_FAMILY, _VNET, _SOCIAL = 0, 1, 2


def _declared_rows(subs: Subscribers) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Declared circles as arrays: (circle names, per row: circle (index into the names), kind
    code, subscriber row); family-plan rows first, then V-net rows, each in subscriber order."""
    names, circle, kind, sub_row = [], [], [], []
    for code, ids in ((_FAMILY, subs.family_id), (_VNET, subs.vnet_id)):
        has = np.flatnonzero(pd.notna(ids))
        if not has.size:
            continue
        c, uniq = pd.factorize(np.asarray(ids, dtype=object)[has])
        circle.append(c.astype(np.int64) + sum(len(n) for n in names))
        names.append(np.array([f"{_KINDS[code]}:{v}" for v in uniq], dtype=object))
        kind.append(np.full(has.size, code, np.int8))
        sub_row.append(has.astype(np.int64))
    if not circle:
        return np.zeros(0, object), np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int64)
    return np.concatenate(names), np.concatenate(circle), np.concatenate(kind), np.concatenate(sub_row)


def _sorted_names(names: np.ndarray, circle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows' circles as codes into the sorted distinct names: codes follow the names' string
    order, so sorting rows by code sorts them by circle id (equal names, e.g. two hashes that
    collide, are one circle) without ever sorting the member rows' strings."""
    codes, uniq = pd.factorize(pd.array(names, dtype="str"), sort=True)
    return codes.astype(np.int64)[circle], np.asarray(uniq, dtype=object)


def _str_take(values, codes: np.ndarray):
    """A pandas string column of ``values[codes]`` (built in Arrow, not from Python strings)."""
    import pyarrow as pa

    return pd.array(pa.array(list(values), pa.large_string()).take(pa.array(codes)), dtype="str")


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
    src = _entry_rows(graph)
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


def family_tie_mask(graph: CallGraph, cfg: CirclesConfig = CirclesConfig()) -> np.ndarray:
    """Per CSR entry: is the tie family-like (reciprocal, repeated, evening/weekend)?

    Needs ``graph.entry["active_days"]`` and ``graph.entry["evening_weekend_share"]``; the
    mask is symmetric (both entries of a tie agree).
    """
    e = graph.entry
    for name in ("active_days", "evening_weekend_share"):
        if name not in e:
            raise ValueError(f"family_tie_mask: the call graph has no per-tie {name!r}; "
                             "build it with tie_arrays including it")
    reciprocal = (graph.received > 0) & (graph.sent > 0)
    return (reciprocal & (e["active_days"] >= cfg.family_min_days)
            & (e["evening_weekend_share"] >= cfg.family_evening_share))


#: each layer's circle-id prefix: an inferred circle's id starts ``<prefix>-`` (lineage keeps it);
#: ``workplace`` is the work layer's second, coarser partition (unions of work circles)
LAYER_PREFIX = {"family": "fam", "household": "hhd", "work": "wrk", "workplace": "wpl", "social": "soc"}
#: the layer a circle is tested and offered in: a household is a family, a workplace colleagues
_TEST_LAYER = {"family": "family", "household": "family", "work": "work", "workplace": "work", "social": "social"}


def _by_prefix(circle_ids, kinds, of_level: dict) -> np.ndarray:
    """``of_level[level]`` of each inferred circle (its level from the id prefix,
    :data:`LAYER_PREFIX`), else the circle's kind."""
    ids = pd.Series(np.asarray(circle_ids, dtype=object)).astype(str)
    of_prefix = {prefix: of_level[level] for level, prefix in LAYER_PREFIX.items()}
    found = ids.str.split("-", n=1).str[0].map(of_prefix)
    return found.fillna(pd.Series(np.asarray(kinds, dtype=object))).to_numpy(dtype=object)


def circle_level(circle_ids, kinds) -> np.ndarray:
    """The level each circle was found at: ``family``, ``household``, ``work``, ``workplace``
    or ``social`` for inferred circles (from the id prefix, :data:`LAYER_PREFIX`), else the
    circle's kind (declared ``family`` and ``vnet`` circles; an inferred id without a known
    prefix).

    >>> circle_level(["wpl-1b", "hhd-3d", "vnet:V1"], ["social", "family", "vnet"]).tolist()
    ['workplace', 'household', 'vnet']
    """
    return _by_prefix(circle_ids, kinds, {level: level for level in LAYER_PREFIX})


def circle_layer(circle_ids, kinds) -> np.ndarray:
    """The layer each circle is tested and offered in (:func:`circle_level`, households as
    ``family``, workplaces as ``work``).

    >>> circle_layer(["wrk-1a", "wpl-1b", "soc-2b", "fam-3c", "hhd-3d", "vnet:V1", "family:F1"],
    ...              ["social", "social", "social", "family", "family", "vnet", "family"]).tolist()
    ['work', 'work', 'social', 'family', 'family', 'vnet', 'family']
    """
    return _by_prefix(circle_ids, kinds, _TEST_LAYER)


def social_layers(graph: CallGraph, cfg: CirclesConfig = CirclesConfig()) -> list[tuple[str, str, str, np.ndarray]]:
    """The layers community detection runs on: ``(layer, circle kind, id prefix, tie mask)``.

    ``family`` (:func:`family_tie_mask`, kind ``family``, ids ``fam-``) and the other ties with
    at least ``social_min_days`` active days, kind ``social``: with
    ``cfg.split_social_by_hours`` split into ``work`` (less than ``family_evening_share`` of
    the tie's events in the evening or at the weekend: colleagues, ids ``wrk-``) and ``social``
    (the rest: friends, ids ``soc-``); else one ``social`` layer.
    """
    family = family_tie_mask(graph, cfg)
    social = ~family & (graph.entry["active_days"] >= cfg.social_min_days)
    if cfg.split_social_by_hours:
        working_hours = graph.entry["evening_weekend_share"] < cfg.family_evening_share
        layers = [("family", "family", family), ("work", "social", social & working_hours),
                  ("social", "social", social & ~working_hours)]
    else:
        layers = [("family", "family", family), ("social", "social", social)]
    return [(layer, kind, LAYER_PREFIX[layer], keep) for layer, kind, keep in layers]


def joined_levels(graph: CallGraph, layer: str, keep: np.ndarray, cfg: CirclesConfig = CirclesConfig()
                  ) -> list[tuple[str, np.ndarray]]:
    """The coarser levels built on a layer's communities: ``(level, tie mask)``.

    - ``household`` on the ``family`` layer (``cfg.household_resolution`` > 0): family
      circles joined over the family ties and every other evening/weekend tie of at least
      ``social_min_days`` days that reaches a family-layer member (a household member whose
      calls are one-way or on two days lands among friends, not in the family layer);
    - ``workplace`` on the ``work`` layer (``cfg.work_coarse_resolution`` > 0): work circles
      joined over the work ties and every other working-hours tie of at least
      ``workplace_min_days`` days (1: a colleague seen on one day, whom the layer's
      ``social_min_days`` leaves out) that reaches a work-layer member.
    """
    keep = np.asarray(keep, bool)
    household = layer == "family" and cfg.household_resolution > 0
    workplace = layer == "work" and cfg.work_coarse_resolution > 0
    if not (household or workplace):
        return []
    if workplace and cfg.workplace_min_days >= cfg.social_min_days:
        return [("workplace", keep)]  # no ties beyond the layer's own
    rows = _entry_rows(graph)
    in_layer = np.zeros(graph.n_nodes, bool)
    in_layer[rows[keep]] = True
    # a household / workplace holds a layer circle; a number in touch with more than
    # ``join_max_contacts`` others (a call centre, a telemarketer) comes in through no extra tie
    few = np.diff(graph.indptr) <= cfg.join_max_contacts
    reaches = (in_layer[rows] | in_layer[graph.indices]) & few[rows] & few[graph.indices]
    evening = graph.entry["evening_weekend_share"] >= cfg.family_evening_share
    if household:
        return [("household", keep | ((graph.entry["active_days"] >= cfg.social_min_days) & evening & reaches))]
    return [("workplace", keep | ((graph.entry["active_days"] >= cfg.workplace_min_days) & ~evening & reaches))]


def layer_graph(graph: CallGraph, keep: np.ndarray) -> CallGraph:
    """The same nodes with only the CSR entries where ``keep`` (a symmetric mask) is true."""
    keep = np.asarray(keep, bool)
    if keep.shape != graph.indices.shape:
        raise ValueError("layer_graph: keep must have one value per CSR entry")
    rows = _entry_rows(graph)
    indptr = np.zeros(graph.n_nodes + 1, np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=graph.n_nodes), out=indptr[1:])
    return replace(graph, indptr=indptr, indices=graph.indices[keep], weights=graph.weights[keep],
                   received=graph.received[keep], sent=graph.sent[keep],
                   entry={k: v[keep] for k, v in graph.entry.items()})


def _entry_rows(graph: CallGraph) -> np.ndarray:
    """The row (node) of every CSR entry, int32 where the node ids fit (half the memory: at
    100M CDR rows there are ~60M entries, and the circles stage holds the client's peak).
    Rebuilt where needed rather than held through the stage: ~0.2 s each at that size,
    against 240 MB more at the peak."""
    dtype = np.int32 if graph.n_nodes < 2**31 else np.int64
    return np.repeat(np.arange(graph.n_nodes, dtype=dtype), np.diff(graph.indptr))


def _hash_ids(prefix: str, keys: np.ndarray) -> np.ndarray:
    """:func:`socialgraph.lineage.inferred_id` of each key (unsalted), without its per-call
    conversions: the keys' little-endian bytes are cut from one buffer."""
    import hashlib

    buf = np.ascontiguousarray(keys, dtype="<i8").tobytes()
    blake2b, head = hashlib.blake2b, f"{prefix}-"
    return np.array([head + blake2b(buf[i:i + 8], digest_size=5).hexdigest() for i in range(0, len(buf), 8)],
                    dtype=object)


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
    batch's share of the total weight, which :func:`_layer_plan` does). On a
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


def shared_contacts(graph: CallGraph, entries: np.ndarray, max_contacts: int,
                    rows: np.ndarray | None = None) -> np.ndarray:
    """Per CSR entry in ``entries``: how many contacts the tie's two ends share, counting only
    numbers with at most ``max_contacts`` ties (a call centre in touch with everyone is
    nobody's shared contact). This is the tie's *embeddedness*, the numerator of Onnela et
    al.'s (2007) overlap. Needs each CSR row's indices ascending, as
    :func:`socialgraph.graph.build_call_graph` builds them. ``rows``: the row (node) of each
    entry, if the caller has it (else found by a search of ``indptr``).

    >>> import numpy as np
    >>> from socialgraph.graph import build_call_graph
    >>> g = build_call_graph(np.array([1, 1, 2, 3]), np.array([2, 3, 3, 4]), np.ones(4), on_net_keys=np.arange(1, 5))
    >>> shared_contacts(g, np.arange(g.indices.size), 200).tolist()  # the triangle 1-2-3 and 3-4
    [1, 1, 1, 1, 1, 1, 0, 0]
    """
    from .kernels.circles import _rows_ascending, _shared_contacts

    entries = np.asarray(entries, np.int64)
    if not _rows_ascending(graph.indptr, graph.indices):
        raise ValueError("shared_contacts: the graph's CSR rows must list their neighbours in ascending order")
    rows = np.searchsorted(graph.indptr, entries, side="right") - 1 if rows is None else np.asarray(rows, np.int64)
    out = np.zeros(entries.size, np.int64)
    _shared_contacts(graph.indptr, graph.indices, rows, entries, int(max_contacts), out)
    return out


def shared_contact_factor(shared: np.ndarray, strength: float) -> np.ndarray:
    """A family tie's weight factor from its shared contacts (:class:`CirclesConfig`,
    ``family_shared_contacts``): ``(1 + strength * min(shared, 2)) / (1 + strength)``. (A tie
    of a number with no other contact keeps factor 1: :func:`_layer_ties`.)

    >>> shared_contact_factor(np.array([0, 1, 2, 7]), 1.0).tolist()
    [0.5, 1.0, 1.5, 1.5]
    """
    return (1.0 + strength * np.minimum(np.asarray(shared), 2)) / (1.0 + strength)


def _layer_ties(graph: CallGraph, keep: np.ndarray, cfg: CirclesConfig | None = None,
                memo: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A layer's nodes (graph ids of the nodes with a tie in it) and its ties, each once, as
    positions among those nodes: ``(nodes, src, dst, weight)``. With ``cfg`` (the family layer
    and its households) each weight is scaled by the tie's shared contacts
    (:func:`shared_contact_factor`, ``cfg.family_shared_contacts``). ``memo`` (int8 per CSR
    entry, -1 = not counted yet) keeps the counts, capped at 2 as the factor caps them, for
    the next caller: the household join's ties include the family layer's."""
    rows = _entry_rows(graph)
    once = np.flatnonzero(keep & (rows < graph.indices))
    has_tie = np.zeros(graph.n_nodes, bool)
    has_tie[rows[once]] = True
    has_tie[graph.indices[once]] = True
    nodes = np.flatnonzero(has_tie)
    index = np.cumsum(has_tie) - 1  # node -> its number among the layer's nodes (a lookup, not a search)
    weight = np.asarray(graph.weights[once], np.float64)
    if cfg is not None and cfg.family_shared_contacts > 0:
        if memo is None:
            shared = shared_contacts(graph, once, cfg.join_max_contacts, rows=rows[once])
        else:
            todo = once[memo[once] < 0]
            memo[todo] = np.minimum(shared_contacts(graph, todo, cfg.join_max_contacts, rows=rows[todo]), 2)
            shared = memo[once]
        factor = shared_contact_factor(shared, cfg.family_shared_contacts)
        # a number with this one contact cannot share any: no evidence either way (a child's or
        # a grandparent's phone that only ever calls one parent is family all the same)
        deg = np.diff(graph.indptr)
        factor[(deg[rows[once]] <= 1) | (deg[graph.indices[once]] <= 1)] = 1.0
        weight = weight * factor
    return nodes, index[rows[once]], index[graph.indices[once]], weight


def _layer_plan(graph: CallGraph, keep: np.ndarray, objective: str, resolution: float,
                min_size: int, max_size: int, cfg: CirclesConfig, initial: np.ndarray | None = None,
                shared: bool = False, memo: np.ndarray | None = None) -> "_LayerPlan":
    """The Leiden tasks of a layer: communities of an allowed size, and the modularity.

    Leiden runs on the layer's nodes that have a tie in it: the others would be singletons,
    which no circle keeps, and carrying them costs Leiden ~40 % of its time on a call graph.
    It runs on batches of whole components (:func:`leiden_batches`): one task each, run by a
    ``map_tasks(fn, tasks, costs) -> results`` (:func:`serial_map` here; the job passes one
    that runs them on the Dask workers, costliest first). ``shared``: weights scaled by shared
    contacts (the family layer, :func:`_layer_ties`; ``memo`` keeps the counts).
    """
    nodes, src, dst, weight = _layer_ties(graph, keep, cfg if shared else None, memo)
    start = None
    if initial is not None:
        start = unique_inverse(initial[nodes])[1]
    batch, batch_ties = leiden_batches(nodes.size, src, dst, cfg.leiden_batch_edges)
    n_batches = batch_ties.size
    # each batch's nodes, numbered in node order; its ties, in tie order
    node_order = np.argsort(batch, kind="stable")
    node_ptr = np.zeros(n_batches + 1, np.int64)
    np.cumsum(np.bincount(batch, minlength=n_batches), out=node_ptr[1:])
    local = np.empty(nodes.size, np.int64)
    local[node_order] = np.arange(nodes.size) - np.repeat(node_ptr[:-1], np.diff(node_ptr))
    tie_order = np.argsort(batch[src], kind="stable")
    tie_ptr = np.zeros(n_batches + 1, np.int64)
    np.cumsum(batch_ties, out=tie_ptr[1:])
    total = float(weight.sum())
    tasks, costs = [], []
    for b in range(n_batches):
        t = tie_order[tie_ptr[b]:tie_ptr[b + 1]]
        init = None
        if start is not None:
            init = unique_inverse(start[node_order[node_ptr[b]:node_ptr[b + 1]]])[1]
        # modularity's null model scales with the graph's total weight: on a batch, the same
        # optimum needs the resolution scaled by the batch's share of it (CPM has no such term)
        res = resolution * float(weight[t].sum()) / total if objective == "modularity" and total > 0 else resolution
        kwargs = {"resolution": res, "seed": cfg.seed, "n_iterations": cfg.leiden_iterations, "objective": objective}
        tasks.append((int(node_ptr[b + 1] - node_ptr[b]), local[src[t]], local[dst[t]], weight[t], init, kwargs))
        costs.append(float(t.size))
    return _LayerPlan(nodes, src, dst, weight, node_order, node_ptr, tasks, costs, min_size, max_size)


@dataclass
class _LayerPlan:
    """A layer's Leiden batches (tasks) and what turns their results into circles."""

    nodes: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    node_order: np.ndarray
    node_ptr: np.ndarray
    tasks: list
    costs: list
    min_size: int
    max_size: int

    def membership(self, results: list) -> np.ndarray:
        """Every layer node's community (per ``nodes``), the batches' labels made disjoint."""
        membership = np.empty(self.nodes.size, np.int64)
        offset = 0
        for b, m in enumerate(results):  # a batch's labels follow the previous batches' labels
            membership[self.node_order[self.node_ptr[b]:self.node_ptr[b + 1]]] = np.asarray(m, np.int64) + offset
            offset += int(np.max(m)) + 1 if len(m) else 0
        return membership

    def finish(self, results: list) -> tuple[np.ndarray, np.ndarray, float]:
        return self.circles(self.membership(results))

    def circles(self, membership: np.ndarray, min_parts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """(nodes, labels) of the communities of an allowed size, and the partition's modularity;
        ``min_parts``: per community, False drops it whatever its size."""
        q = partition_modularity(self.src, self.dst, self.weight, membership) if self.src.size else 0.0
        sizes = np.bincount(membership) if membership.size else np.zeros(0, np.int64)
        ok = (sizes >= self.min_size) & (sizes <= self.max_size)
        if min_parts is not None:
            ok &= min_parts
        ok = ok[membership] if membership.size else np.zeros(0, bool)
        return self.nodes[ok], membership[ok], q

    def coarse(self, fine: np.ndarray, resolution: float, cfg: CirclesConfig, min_size: int, max_size: int,
               initial: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """A second, coarser partition of the layer as unions of the ``fine`` communities:
        Leiden (CPM at ``resolution``) on the graph whose nodes are the fine communities, with
        their sizes as node weights and the ties between them summed, so it optimises the
        layer's own CPM objective over unions of fine communities. Returns the communities of
        ``min_size``..``max_size`` nodes that join at least two fine communities (one alone is
        a fine circle already), as :meth:`circles`. ``initial``: a start label per layer node.
        """
        fine = unique_inverse(fine)[1].reshape(-1)
        n_fine = int(fine.max()) + 1 if fine.size else 0
        a, b = fine[self.src], fine[self.dst]
        cross = a != b
        lo, hi = np.minimum(a[cross], b[cross]), np.maximum(a[cross], b[cross])
        pair, inv = unique_inverse(lo * np.int64(max(n_fine, 1)) + hi)
        w = np.bincount(inv.reshape(-1), weights=self.weight[cross], minlength=pair.size)
        start = None
        if initial is not None:  # a fine community starts in the label of its first node
            first = np.full(n_fine, self.nodes.size, np.int64)
            np.minimum.at(first, fine, np.arange(fine.size))
            start = unique_inverse(np.asarray(initial)[first])[1].reshape(-1)
        joined = _join_with_leaves(n_fine, pair // max(n_fine, 1), pair % max(n_fine, 1), w,
                                   np.bincount(fine, minlength=n_fine), resolution, cfg, start)
        membership = joined[fine]
        parts = np.bincount(joined, minlength=int(joined.max()) + 1 if joined.size else 0)
        plan = replace(self, min_size=min_size, max_size=max_size)
        return plan.circles(membership, parts >= 2)


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


def _communities(graph: CallGraph, keep: np.ndarray, objective: str, resolution: float,
                 min_size: int, max_size: int, cfg: CirclesConfig,
                 initial: np.ndarray | None = None, map_tasks=serial_map) -> tuple[np.ndarray, np.ndarray, float]:
    """(node ids, community label) of nodes in communities of an allowed size, and modularity
    of the layer's partition (:func:`_layer_plan`, run through ``map_tasks``)."""
    plan = _layer_plan(graph, keep, objective, resolution, min_size, max_size, cfg, initial)
    return plan.finish(map_tasks(_leiden_batch, plan.tasks, plan.costs))


def inferred_circles(graph: CallGraph, cfg: CirclesConfig = CirclesConfig(),
                     previous: pd.DataFrame | None = None, map_tasks=serial_map) -> tuple[pd.DataFrame, dict]:
    """Family and social circles of the call graph; one row per (circle, member node).

    Returns the members (columns ``circle_id, kind, source, key``, ordered by ``circle_id``
    then ``key``) and a summary (circles per kind, modularity of each layer's partition).
    ``previous`` (a previous run's members: ``circle_id, kind, source, key``) warm-starts
    each layer's Leiden from that run's circles of the same layer
    (:func:`socialgraph.lineage.initial_membership`). ``map_tasks`` runs the Leiden batches
    of all layers (:func:`_communities`); they are submitted together, so that a cluster runs
    the layers side by side.
    """
    names, circle, kind, node, info = _inferred_rows(graph, cfg, previous, map_tasks)
    return _rows_frame(names, circle, kind, graph.keys[node], "inferred"), info


def _inferred_rows(graph: CallGraph, cfg: CirclesConfig, previous: pd.DataFrame | None, map_tasks
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """:func:`inferred_circles` as arrays: (circle names, per row: circle (index into the
    names), kind code, graph node; the summary), the family layer's rows first."""
    from .lineage import initial_membership

    def previous_of(kind, *prefixes):
        """The previous run's circles of a layer (ids keep their layer's prefix), or None."""
        if previous is None:
            return None
        inferred = previous[(previous["source"] == "inferred") & (previous["kind"] == kind)]
        return pd.concat([inferred[inferred["circle_id"].str.startswith(f"{p}-")] for p in prefixes])

    info, plans = {}, []
    # the family layer's shared-contact counts, kept for its household join (a superset of its
    # ties) instead of counted twice
    memo = (np.full(graph.indices.size, -1, np.int8)
            if cfg.family_shared_contacts > 0 and cfg.household_resolution > 0 else None)
    for layer, kind, prefix, keep in social_layers(graph, cfg):
        objective, resolution, lo, hi = cfg.leiden_params(layer)
        prev = previous_of(kind, prefix)
        initial = None if prev is None else initial_membership(graph.keys, prev)
        plans.append((layer, kind, prefix, keep, _layer_plan(graph, keep, objective, resolution, lo, hi, cfg, initial,
                                                             shared=layer == "family", memo=memo)))
    tasks = [t for *_, plan in plans for t in plan.tasks]
    results = map_tasks(_leiden_batch, tasks, [c for *_, plan in plans for c in plan.costs])
    del tasks
    found = []  # (layer, kind, prefix, keep, plan, (node, label, modularity))
    seconds = {}  # of the joined levels, run here after the layers' batches
    for layer, kind, prefix, keep, plan in plans:
        n_tasks = len(plan.costs)
        plan.tasks.clear()  # the batches' copies of the layer's ties: done with before the joins
        fine = plan.membership(results[:n_tasks])
        results = results[n_tasks:]
        found.append((layer, kind, prefix, keep, plan, plan.circles(fine)))
        for level, mask in joined_levels(graph, layer, keep, cfg):
            # households / workplaces: the layer's circles joined again, coarser (warm start:
            # the previous run's circles of the level, and of the layer where it had none)
            t0 = time.perf_counter()
            _, resolution, lo, hi = cfg.leiden_params(level)
            on = plan
            if mask is not keep:  # more ties than the layer's (no Leiden batches of its own)
                n, a, b, w = _layer_ties(graph, mask, cfg if level == "household" else None, memo)
                on = _LayerPlan(n, a, b, w, np.zeros(0, np.int64), np.zeros(1, np.int64), [], [], lo, hi)
                label = np.full(graph.n_nodes, -1, np.int64)
                label[plan.nodes] = fine
                fine_on = label[on.nodes]
                alone = fine_on < 0  # tied only by the extra ties: each a community of its own
                fine_on[alone] = (int(fine.max()) + 1 if fine.size else 0) + np.arange(int(alone.sum()))
            else:
                fine_on = fine
            prev = previous_of(kind, LAYER_PREFIX[level], prefix)
            start = None
            if prev is not None:
                prev = prev[~prev["key"].duplicated()]  # listed first: the level beats the layer
                start = initial_membership(graph.keys, prev)[on.nodes]
            found.append((level, kind, LAYER_PREFIX[level], mask, on, on.coarse(fine_on, resolution, cfg, lo, hi, start)))
            seconds[level] = round(time.perf_counter() - t0, 2)
    names, circle, kinds, nodes = [], [], [], []
    n_names = 0
    for layer, kind, prefix, keep, plan, (node, label, q) in found:
        keys = graph.keys[node]
        # a circle is named after its lowest member number: label -> min key -> hashed id
        label = unique_inverse(label)[1]
        low = np.full(int(label.max()) + 1 if label.size else 0, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(low, label, keys)
        uniq, inv = unique_inverse(low[label])
        names.append(_hash_ids(prefix, uniq))
        circle.append(inv.reshape(-1).astype(np.int64) + n_names)
        n_names += uniq.size
        kinds.append(np.full(node.size, _FAMILY if kind == "family" else _SOCIAL, np.int8))
        nodes.append(np.asarray(node, np.int64))
        info[layer] = {"circles": int(uniq.size), "members": int(keys.size), "modularity": round(q, 4),
                      "layer_ties": int(keep.sum() // 2),
                      "leiden_batches": 1 if layer in seconds else len(plan.costs)}
        if layer in seconds:
            info[layer]["seconds"] = seconds[layer]
    return np.concatenate(names), np.concatenate(circle), np.concatenate(kinds), np.concatenate(nodes), info


def drop_declared_duplicates(inferred: pd.DataFrame, declared: pd.DataFrame, min_jaccard: float) -> tuple[pd.DataFrame, int]:
    """Remove inferred circles that are a declared circle found again (family circle vs family
    plan, social circle vs V-net, member Jaccard >= ``min_jaccard``); returns them and the count."""
    if inferred.empty or declared.empty:
        return inferred, 0
    i_circle, _ = pd.factorize(inferred["circle_id"])
    d_circle, _ = pd.factorize(declared["circle_id"])
    # kind codes: an inferred family circle matches family plans, a social one V-nets
    i_kind = inferred["kind"].map({"family": _FAMILY, "social": _VNET}).fillna(-1).to_numpy(np.int64)
    d_kind = declared["kind"].map({"family": _FAMILY, "vnet": _VNET}).fillna(-2).to_numpy(np.int64)
    dup = _duplicate_circles(i_circle, i_kind, inferred["key"].to_numpy(np.int64),
                             d_circle, d_kind, declared["key"].to_numpy(np.int64), min_jaccard)
    if not dup.size:
        return inferred, 0
    keep = np.ones(int(i_circle.max()) + 1, bool)
    keep[dup] = False
    return inferred[keep[i_circle]].reset_index(drop=True), int(dup.size)


def _duplicate_circles(i_circle: np.ndarray, i_kind: np.ndarray, i_key: np.ndarray,
                       d_circle: np.ndarray, d_kind: np.ndarray, d_key: np.ndarray, min_jaccard: float) -> np.ndarray:
    """:func:`drop_declared_duplicates` on integer codes: inferred rows (circle code, the kind
    code of the declared circles they may repeat, key) against declared rows (circle code, kind
    code, key); returns the inferred circle codes that repeat a declared circle, ascending."""
    i_circle = np.asarray(i_circle, np.int64)
    d_circle = np.asarray(d_circle, np.int64)
    if not i_circle.size or not d_circle.size:
        return np.zeros(0, np.int64)
    both = pd.DataFrame({"key": i_key, "kind": i_kind, "i": i_circle}).merge(
        pd.DataFrame({"key": d_key, "kind": d_kind, "d": d_circle}), on=["key", "kind"])
    if both.empty:
        return np.zeros(0, np.int64)
    n_d_circles = int(d_circle.max()) + 1
    pair, shared = np.unique(both["i"].to_numpy(np.int64) * n_d_circles + both["d"].to_numpy(np.int64),
                             return_counts=True)
    ic, dc = pair // n_d_circles, pair % n_d_circles
    n_i = np.bincount(i_circle)[ic]
    n_d = np.bincount(d_circle)[dc]
    jac = shared / (n_i + n_d - shared)
    return unique(ic[jac >= min_jaccard])


def in_circle_ties(graph: CallGraph, circle_ptr: np.ndarray, member_node: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per member row: (in-circle tie strength, strongest in-circle tie, in-circle influence).

    Members of circle ``c`` are rows ``circle_ptr[c]:circle_ptr[c+1]`` of ``member_node``
    (graph node ids, -1 for numbers without ties), sorted ascending within each circle. A
    member's influence is the sum, over its neighbours ``v`` in the circle, of ``v``'s share of
    its in-circle tie strength that goes to this member: how much the rest of the circle
    depends on it (:func:`socialgraph.influence.dependence` restricted to the circle).

    >>> from socialgraph.graph import build_call_graph
    >>> g = build_call_graph(np.array([1, 1, 2]), np.array([2, 3, 3]), np.array([2.0, 2.0, 1.0]),
    ...                      on_net_keys=np.array([1, 2, 3]))
    >>> s, best, infl = in_circle_ties(g, np.array([0, 3]), np.array([0, 1, 2]))
    >>> s.tolist(), best.tolist(), infl.round(3).tolist()
    ([4.0, 3.0, 3.0], [2.0, 2.0, 2.0], [1.333, 0.833, 0.833])
    """
    circle_ptr = np.ascontiguousarray(circle_ptr, np.int64)
    member_node = np.ascontiguousarray(member_node, np.int64)
    if circle_ptr.ndim != 1 or circle_ptr.size < 1 or circle_ptr[0] != 0 or circle_ptr[-1] != member_node.size:
        raise ValueError("in_circle_ties: circle_ptr must run from 0 to the number of member rows")
    if np.any(np.diff(circle_ptr) < 0) or np.any(member_node >= graph.n_nodes) or np.any(member_node < -1):
        raise ValueError("in_circle_ties: bad circle_ptr or member node ids")
    # the kernel binary-searches each circle's members: unsorted input would give wrong sums
    step = np.diff(member_node)
    first = np.zeros(member_node.size, bool)
    first[circle_ptr[:-1][circle_ptr[:-1] < member_node.size]] = True
    if np.any((step < 0) & ~first[1:]):
        raise ValueError("in_circle_ties: member_node must be sorted ascending within each circle")
    n = member_node.size
    strength, strongest, influence = np.zeros(n), np.zeros(n), np.zeros(n)
    if n:
        _in_circle_ties(circle_ptr, member_node, graph.indptr, graph.indices,
                        np.ascontiguousarray(graph.weights, np.float64), strength, strongest, influence)
    return strength, strongest, influence


def circle_members(graph: CallGraph, subs: Subscribers, as_of_day: int,
                   cfg: CirclesConfig = CirclesConfig(), previous: pd.DataFrame | None = None,
                   map_tasks=serial_map) -> tuple[pd.DataFrame, dict]:
    """All circles, declared and inferred, one row per (circle, member number).

    Columns: ``circle_id, kind, source, key, node`` (graph id, -1 without ties), ``on_net``,
    ``active`` (on-net subscriber active at ``as_of_day``), ``strength`` (in-circle tie
    strength), ``strongest_tie``, ``influence`` (in-circle) and ``role``: ``anchor`` for the
    circle's most influential active on-net member (ties broken by in-circle strength, then
    the lower number), ``member`` for the rest. Ordered by ``circle_id`` then ``key``.
    Returns the members and a summary for the manifest. ``previous`` (a previous run's
    members) warm-starts community detection; ids are matched to it by
    :func:`socialgraph.lineage.match_circles`.
    """
    # Everything is done on integer codes (rows: circle code, kind code, key, node, subscriber
    # row); the circle ids are strings only in the table returned. Circle codes follow the ids'
    # string order, so sorting by code sorts by id.
    d_names, d_circle, d_kind, d_sub = _declared_rows(subs)
    i_names, i_circle, i_kind, i_node, info = _inferred_rows(graph, cfg, previous, map_tasks)
    codes, names = _sorted_names(np.concatenate([d_names, i_names]),
                                 np.concatenate([d_circle, i_circle + d_names.size]))
    d_circle, i_circle = codes[:d_circle.size], codes[d_circle.size:]
    # each subscriber's node and each node's subscriber row (numbers are unique in both)
    sub_node = graph.ids_of(subs.key)
    node_sub = np.full(graph.n_nodes, -1, np.int64)
    node_sub[sub_node[sub_node >= 0]] = np.flatnonzero(sub_node >= 0)
    i_sub = node_sub[i_node]
    # an inferred family circle may repeat a family plan, a social circle a V-net
    dup = _duplicate_circles(i_circle, np.where(i_kind == _FAMILY, _FAMILY, _VNET), graph.keys[i_node],
                             d_circle, d_kind, subs.key[d_sub], cfg.declared_jaccard)
    info["dropped_as_declared"] = int(dup.size)
    info["declared"] = {"circles": int(np.count_nonzero(np.bincount(d_circle, minlength=names.size))),
                        "members": int(d_circle.size)}
    keep = ~isin(i_circle, dup)
    # declared rows first, then inferred, sorted by (circle id, key) (never equal twice)
    circle = np.concatenate([d_circle, i_circle[keep]])
    kind = np.concatenate([d_kind, i_kind[keep]])
    declared = np.concatenate([np.ones(d_circle.size, bool), np.zeros(int(keep.sum()), bool)])
    sub_row = np.concatenate([d_sub, i_sub[keep]])
    node = np.concatenate([sub_node[d_sub], i_node[keep]])
    key = np.concatenate([subs.key[d_sub], graph.keys[i_node[keep]]]).astype(np.int64)
    order = np.lexsort((key, circle))
    circle, kind, declared, sub_row, node, key = (x[order] for x in (circle, kind, declared, sub_row, node, key))
    on_net = np.where(node >= 0, graph.nodes["on_net"].to_numpy()[np.maximum(node, 0)], False) | (sub_row >= 0)
    active = np.zeros(key.size, bool)
    has = sub_row >= 0
    active[has] = subs.active_at(as_of_day)[sub_row[has]]
    # members sorted by key within a circle are sorted by node id too (ids follow key order),
    # except members without a node (-1), which sort first: re-sort nodes within each circle
    n_circles = names.size
    by_node = np.argsort(circle * np.int64(graph.n_nodes + 1) + node, kind="stable")  # (circle, node), one key
    ptr = np.zeros(n_circles + 1, np.int64)
    np.cumsum(np.bincount(circle, minlength=n_circles), out=ptr[1:])
    strength, strongest, influence = (np.empty(key.size) for _ in range(3))
    strength[by_node], strongest[by_node], influence[by_node] = in_circle_ties(graph, ptr, node[by_node])
    # anchor: max influence among active on-net members, then strength, then lowest key
    cand = np.flatnonzero(active)  # rows in circle order
    best = np.empty(cand.size, np.int64)
    best = best[:_circle_anchors(cand, circle, influence, strength, key, best)]
    role = np.zeros(key.size, np.int8)
    role[best] = 1
    info["circles"] = int(np.count_nonzero(np.bincount(circle, minlength=n_circles)))
    m = pd.DataFrame({
        "circle_id": _str_take(names, circle), "kind": _str_take(_KINDS, kind),
        "source": _str_take(("inferred", "declared"), declared.astype(np.int8)), "key": key, "node": node,
        "on_net": on_net, "active": active, "strength": strength, "strongest_tie": strongest,
        "influence": influence, "role": _str_take(("member", "anchor"), role),
    })
    return m, info

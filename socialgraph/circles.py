"""Circles: groups of numbers that churn together.

*Declared* circles come from the subscriber table: a corporate V-net (``vnet_id``) or a family
plan (``family_id``); their ids are the operator's own (``vnet:<vnet_id>``,
``family:<family_id>``), so they are the same in every run.

*Inferred* circles come from the call graph, split into layers by when people call (see
:class:`~socialgraph.config.CirclesConfig` and :func:`socialgraph.layers.social_layers`):
small *family* circles from strong reciprocal evening/weekend ties, and *social* circles from
the remaining repeated ties, in two layers (working-hours ties: colleagues; the rest:
friends), each layer partitioned by igraph's Leiden (:mod:`socialgraph.communities`); the
family and work layers' circles are joined again, coarser, into *households* and
*workplaces* (:func:`socialgraph.layers.joined_levels`,
:meth:`socialgraph.layers._LayerPlan.coarse`). Off-net numbers belong to inferred circles like
anyone else. An inferred circle's id is ``fam-<hex>``, ``hhd-<hex>``, ``wrk-<hex>``, ``wpl-<hex>`` or
``soc-<hex>`` (its layer), a hash of its lowest member number (stable while that member
stays; never the number itself).

:func:`circle_members` puts both together, one row per (circle, member), with each member's
in-circle influence (its neighbours' dependence on it inside the circle), strongest in-circle
tie, and role: the circle's ``anchor`` is its most influential active on-net member.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .arrays import isin, unique, unique_inverse
from .communities import _leiden_batch, serial_map
from .config import CirclesConfig
from .graph import CallGraph
from .kernels.circles import _circle_anchors, _in_circle_ties
from .layers import LAYER_PREFIX, _layer_plan, joined_levels, social_layers
from .subscribers import Subscribers

__all__ = ["declared_circles", "inferred_circles", "circle_members", "in_circle_ties", "drop_declared_duplicates"]

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
# Arrow-backed strings: pandas 3's default "str"; in pandas 2.x "str" means NumPy fixed-width
# unicode (as wide as the longest name, and factorize warns on it), so there "string[pyarrow]"
_ARROW_STR = "str" if int(pd.__version__.split(".")[0]) >= 3 else "string[pyarrow]"


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
    codes, uniq = pd.factorize(pd.array(names, dtype=_ARROW_STR), sort=True)
    return codes.astype(np.int64)[circle], np.asarray(uniq, dtype=object)


def _str_take(values, codes: np.ndarray):
    """A pandas string column of ``values[codes]`` (built in Arrow, not from Python strings)."""
    import pyarrow as pa

    return pd.array(pa.array(list(values), pa.large_string()).take(pa.array(codes)), dtype=_ARROW_STR)


def _hash_ids(prefix: str, keys: np.ndarray) -> np.ndarray:
    """:func:`socialgraph.lineage.inferred_id` of each key (unsalted), without its per-call
    conversions: the keys' little-endian bytes are cut from one buffer."""
    import hashlib

    buf = np.ascontiguousarray(keys, dtype="<i8").tobytes()
    blake2b, head = hashlib.blake2b, f"{prefix}-"
    return np.array([head + blake2b(buf[i:i + 8], digest_size=5).hexdigest() for i in range(0, len(buf), 8)],
                    dtype=object)


def inferred_circles(graph: CallGraph, cfg: CirclesConfig = CirclesConfig(),
                     previous: pd.DataFrame | None = None, map_tasks=serial_map) -> tuple[pd.DataFrame, dict]:
    """Family and social circles of the call graph; one row per (circle, member node).

    Returns the members (columns ``circle_id, kind, source, key``, ordered by ``circle_id``
    then ``key``) and a summary (circles per kind, modularity of each layer's partition).
    ``previous`` (a previous run's members: ``circle_id, kind, source, key``) warm-starts
    each layer's Leiden from that run's circles of the same layer
    (:func:`socialgraph.lineage.initial_membership`). ``map_tasks`` runs the Leiden batches
    of all layers (:func:`socialgraph.layers._communities`); they are submitted together, so that a cluster runs
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
            if mask is not keep:  # more ties than the layer's (no Leiden batches of its own)
                on, fine_on = plan.joined(graph, fine, mask, level == "household", cfg, memo, lo, hi)
            else:
                on, fine_on = plan, fine
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

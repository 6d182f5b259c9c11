"""The layers of the call graph that circles are found in, and their Leiden plans.

A layer is a symmetric mask over the call graph's CSR entries (:func:`social_layers`):
family ties (:func:`family_tie_mask`: reciprocal, repeated, evening/weekend), colleagues'
working-hours ties and friends' ties. :func:`joined_levels` adds the ties over which a
layer's circles are joined again, coarser, into households and workplaces. A layer's ties
(:func:`_layer_ties`, family ties scaled by their :func:`shared_contacts`) become Leiden tasks
in batches of whole components (:func:`_layer_plan`), and :class:`_LayerPlan` turns their
results into circles of an allowed size and joins them (:meth:`_LayerPlan.coarse`).
:func:`circle_level` and :func:`circle_layer` read a circle's level and test layer from its
id's prefix (:data:`LAYER_PREFIX`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .arrays import unique_inverse
from .communities import _join_with_leaves, _leiden_batch, leiden_batches, partition_modularity, serial_map
from .config import CirclesConfig
from .graph import CallGraph

__all__ = ["family_tie_mask", "social_layers", "joined_levels", "layer_graph", "shared_contacts",
           "shared_contact_factor", "circle_level", "circle_layer", "LAYER_PREFIX"]


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
    :data:`LAYER_PREFIX`), else the circle's kind.

    The ids are read as Arrow strings (an Arrow-backed column without a copy), compared on
    their first characters: splitting 3.3M Python strings into lists (100M CDR rows) held
    about 1 GB at the circles stage's memory peak.
    """
    ids = circle_ids.array if isinstance(circle_ids, pd.Series) else circle_ids
    ids = pa.array(ids, pa.string()) if not isinstance(ids, pd.api.extensions.ExtensionArray) \
        else pa.array(ids).cast(pa.string())
    n = len(ids)
    out = np.empty(n, dtype=object)
    matched = np.zeros(n, bool)
    for level, prefix in LAYER_PREFIX.items():
        hit = pc.fill_null(pc.starts_with(ids, prefix + "-"), False).to_numpy(zero_copy_only=False)
        out[hit] = of_level[level]
        matched |= hit
    rest = np.flatnonzero(~matched)
    if rest.size:
        out[rest] = pd.Series(kinds, copy=False).iloc[rest].to_numpy(dtype=object)
    return out


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
    rows = graph.entry_rows()
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
    rows = graph.entry_rows()
    indptr = np.zeros(graph.n_nodes + 1, np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=graph.n_nodes), out=indptr[1:])
    return replace(graph, indptr=indptr, indices=graph.indices[keep], weights=graph.weights[keep],
                   received=graph.received[keep], sent=graph.sent[keep],
                   entry={k: v[keep] for k, v in graph.entry.items()})


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
    rows = graph.entry_rows()
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

    def joined(self, graph: CallGraph, fine: np.ndarray, mask: np.ndarray, shared: bool, cfg: CirclesConfig,
               memo: np.ndarray | None, min_size: int, max_size: int) -> tuple["_LayerPlan", np.ndarray]:
        """The plan of a coarser level over ``mask`` (the layer's ties and more:
        :func:`joined_levels`; ``shared``: weights scaled by shared contacts, ``memo`` keeping
        the counts), and the start label of each of its nodes for :meth:`coarse`: its community
        ``fine`` in this layer, or a community of its own for a node tied only by the extra ties."""
        n, a, b, w = _layer_ties(graph, mask, cfg if shared else None, memo)
        on = _LayerPlan(n, a, b, w, np.zeros(0, np.int64), np.zeros(1, np.int64), [], [], min_size, max_size)
        label = np.full(graph.n_nodes, -1, np.int64)
        label[self.nodes] = fine
        fine_on = label[on.nodes]
        alone = fine_on < 0
        fine_on[alone] = (int(fine.max()) + 1 if fine.size else 0) + np.arange(int(alone.sum()))
        return on, fine_on

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


def _communities(graph: CallGraph, keep: np.ndarray, objective: str, resolution: float,
                 min_size: int, max_size: int, cfg: CirclesConfig,
                 initial: np.ndarray | None = None, map_tasks=serial_map) -> tuple[np.ndarray, np.ndarray, float]:
    """(node ids, community label) of nodes in communities of an allowed size, and modularity
    of the layer's partition (:func:`_layer_plan`, run through ``map_tasks``)."""
    plan = _layer_plan(graph, keep, objective, resolution, min_size, max_size, cfg, initial)
    return plan.finish(map_tasks(_leiden_batch, plan.tasks, plan.costs))

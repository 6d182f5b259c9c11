"""The subscriber call graph: dense ids, symmetric CSR arrays and a node table.

Kernels of later stages take ``indptr, indices, weights`` straight from here. Ties of weight 0
(service hubs) are left out of the CSR but their nodes stay in the node table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .arrays import isin, unique, unique_inverse
from .kernels.csr import canonical_order, csr_slots
from .numbers import format_numbers, prefix_lookup

__all__ = ["CallGraph", "build_call_graph", "dense_ids"]


@dataclass(frozen=True)
class CallGraph:
    """Undirected weighted call graph.

    Attributes
    ----------
    keys : int64 number key of each node, sorted (node id = position)
    indptr, indices, weights : symmetric CSR (int64, int32, float64); no self-loops
    received, sent : int32 per CSR entry ``(i, j)``: events (calls + SMS) from ``j`` to ``i``
        and from ``i`` to ``j`` (all zero when the graph was built without directions)
    nodes : DataFrame, one row per node: ``msisdn, on_net, operator, service_hub``
    entry : more per-entry arrays (first axis aligned with ``indices``), e.g. ``active_days``
    """

    keys: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    nodes: pd.DataFrame
    received: np.ndarray | None = None
    sent: np.ndarray | None = None
    entry: dict = field(default_factory=dict)

    def __post_init__(self):
        zeros = np.zeros(self.indices.size, np.int32)
        if self.received is None:
            object.__setattr__(self, "received", zeros)
        if self.sent is None:
            object.__setattr__(self, "sent", zeros.copy())

    @property
    def n_nodes(self) -> int:
        return int(self.keys.size)

    @property
    def n_edges(self) -> int:
        """Number of undirected edges in the CSR."""
        return int(self.indices.size // 2)

    def ids_of(self, keys: np.ndarray) -> np.ndarray:
        """Dense ids of number keys; -1 for numbers not in the graph.

        Many unsorted keys (a subscriber table) go through a hash lookup: a binary search of
        5.2M unsorted keys over 6.6M nodes took 8.6 s (every step misses the cache), the hash
        2.9 s. Sorted or few keys are searched.
        """
        keys = np.asarray(keys, dtype=np.int64)
        flat = keys.reshape(-1)
        if flat.size > 4096 and self.n_nodes and not bool(np.all(flat[1:] >= flat[:-1])):
            return pd.Index(self.keys).get_indexer(flat).astype(np.int64).reshape(keys.shape)
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, max(self.n_nodes - 1, 0))
        found = self.keys[pos] == keys if self.n_nodes else np.zeros(keys.size, bool)
        return np.where(found, pos, -1)

    def node_max(self, name: str, empty: int = -1) -> np.ndarray:
        """Per node, the largest value of per-entry array ``entry[name]`` over its ties
        (``empty`` for a node without ties), e.g. the day of a number's last event.

        >>> g = build_call_graph(np.array([1, 1]), np.array([2, 3]), np.array([1.0, 1.0]), on_net_keys=np.array([1]),
        ...                      extra_keys=np.array([4]), tie_arrays={"last_day": np.array([10, 12])})
        >>> g.node_max("last_day").tolist()
        [12, 10, 12, -1]
        """
        vals = np.asarray(self.entry[name])
        out = np.full(self.n_nodes, empty, dtype=np.result_type(vals.dtype, np.min_scalar_type(empty)))
        has = np.diff(self.indptr) > 0
        if vals.size:
            out[has] = np.maximum.reduceat(vals, self.indptr[:-1][has])
        return out

    def entry_rows(self) -> np.ndarray:
        """The row (node) of every CSR entry, int32 where the node ids fit (half the memory: at
        100M CDR rows there are ~60M entries, and the circles stage holds the client's peak).
        Rebuilt where needed rather than held through the stage: ~0.2 s each at that size,
        against 240 MB more at the peak.

        >>> import numpy as np
        >>> g = build_call_graph(np.array([1, 1]), np.array([2, 3]), np.ones(2), on_net_keys=np.arange(1, 4))
        >>> g.entry_rows().tolist()
        [0, 0, 1, 2]
        """
        dtype = np.int32 if self.n_nodes < 2**31 else np.int64
        return np.repeat(np.arange(self.n_nodes, dtype=dtype), np.diff(self.indptr))

    def to_networkx(self):
        """A ``networkx.Graph`` with node ids 0..n-1 and edge attribute ``weight``."""
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(self.n_nodes))
        src = self.entry_rows()
        keep = src < self.indices
        g.add_weighted_edges_from(zip(src[keep].tolist(), self.indices[keep].tolist(), self.weights[keep].tolist()))
        return g

    def to_igraph(self):
        """An undirected ``igraph.Graph`` with edge attribute ``weight``."""
        import igraph as ig

        src = self.entry_rows()
        keep = src < self.indices
        # a list of pairs converts ~1.7x faster than an ndarray in igraph's constructor
        edges = list(zip(src[keep].tolist(), self.indices[keep].tolist()))
        g = ig.Graph(n=self.n_nodes, edges=edges, directed=False)
        g.es["weight"] = self.weights[keep].tolist()
        return g


def dense_ids(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sorted unique keys over all arrays, and the dense id of every element of each array.

    Each array's distinct keys come from :func:`socialgraph.arrays.unique_inverse` (the tie
    table's ``a`` is sorted, so by comparing neighbours; ``b`` and the subscribers by hashing),
    and each element's id is its key's rank among all the keys. At 100M CDR rows (30M ties,
    6.5M numbers) hashing ``a``, ``b`` and the subscribers together took 11.5 s of the
    call-graph stage (the hash table does not fit the cache): the sorted half needs no hash.

    >>> keys, x, y = dense_ids(np.array([30, 10]), np.array([10, 20]))
    >>> keys.tolist(), x.tolist(), y.tolist()
    ([10, 20, 30], [2, 0], [0, 1])
    >>> keys, x, y = dense_ids(np.array([5, 5, 7]), np.array([9, 5, 1]))
    >>> keys.tolist(), x.tolist(), y.tolist()
    ([1, 5, 7, 9], [1, 1, 2], [3, 1, 0])
    """
    groups = [unique_inverse(np.asarray(x, np.int64).reshape(-1)) for x in arrays]
    keys = unique(np.concatenate([u for u, _ in groups])) if groups else np.zeros(0, np.int64)
    # ranks of each array's distinct keys (ascending queries: a fast search), per element
    return (keys, *(np.searchsorted(keys, u)[pos] for u, pos in groups))


def _slots_by_sorting(src: np.ndarray, dst: np.ndarray, n: int):
    """:func:`csr_slots` for ties in any order (an argsort of the 2E entries)."""
    s = np.concatenate([src, dst]).astype(np.int64)
    d = np.concatenate([dst, src]).astype(np.int64)
    order = np.argsort(s * np.int64(n) + d, kind="stable")
    slot = np.empty(order.size, np.int64)
    slot[order] = np.arange(order.size)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(s, minlength=n), out=indptr[1:])
    return indptr, slot[:src.size], slot[src.size:]


def build_call_graph(
    a: np.ndarray,
    b: np.ndarray,
    weight: np.ndarray,
    *,
    on_net_keys: np.ndarray,
    home_prefixes: tuple[str, ...] = (),
    operators: Mapping[str, str] | None = None,
    home_operator: str = "home",
    service_hub_keys: np.ndarray | None = None,
    extra_keys: np.ndarray | None = None,
    events_ab: np.ndarray | None = None,
    events_ba: np.ndarray | None = None,
    tie_arrays: Mapping[str, np.ndarray] | None = None,
) -> CallGraph:
    """Build the CSR call graph from a tie table.

    Parameters
    ----------
    a, b : int64 number keys of each tie (a != b)
    weight : tie strength; ties with weight <= 0 stay out of the CSR
    on_net_keys : keys of the operator's subscribers (on-net by definition)
    home_prefixes : numbers with these prefixes are on-net even if not subscribers
    operators : prefix -> operator name for off-net numbers (longest prefix wins)
    service_hub_keys : keys of numbers flagged as service hubs
    extra_keys : numbers to include as (isolated) nodes even without ties, e.g. subscribers
    events_ab, events_ba : optional events (calls + SMS) from a to b and from b to a, which
        become the ``received`` / ``sent`` arrays of the CSR
    tie_arrays : per-tie arrays, the same in both directions (first axis aligned with ``a``),
        carried into ``CallGraph.entry`` in CSR order. A ``dict`` is emptied as its arrays are
        placed, so that each can be freed then (memory: the job builds the graph at its peak)

    Ties in canonical order (``a < b``, sorted by ``(a, b)``, as the job's graph stage gives
    them) are placed by counting (:mod:`socialgraph.kernels.csr`); others are sorted.

    Examples
    --------
    >>> g = build_call_graph(np.array([10, 10]), np.array([20, 30]), np.array([1.0, 0.0]),
    ...                      on_net_keys=np.array([10]))
    >>> g.n_nodes, g.n_edges, g.indptr.tolist()
    (3, 1, [0, 1, 2, 2])
    """
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    weight = np.asarray(weight, np.float64)
    if a.shape != b.shape or a.shape != weight.shape:
        raise ValueError("build_call_graph: a, b and weight must have the same length")
    if np.any(a == b):
        raise ValueError("build_call_graph: self-loops are not allowed (a == b)")
    extra = np.empty(0, np.int64) if extra_keys is None else np.asarray(extra_keys, np.int64)
    keys, src, dst, extra_ids = dense_ids(a, b, extra)
    del a, b  # with the caller's references gone (see tie_arrays), freed here
    n = keys.size
    src, dst = src.astype(np.int32), dst.astype(np.int32)  # n < 2**31 nodes: half the memory
    del extra_ids  # a view: it would keep the int64 ids of every tie alive
    keep = weight > 0
    if canonical_order(src, dst):  # the job's tie table: no sort needed
        indptr, fwd, rev = csr_slots(src, dst, keep, n)
    else:
        indptr, fwd, rev = _slots_by_sorting(src[keep], dst[keep], n)
    all_kept = bool(keep.all())

    def kept(x):
        x = np.asarray(x)
        return x if all_kept else x[keep]

    def place(forward, reverse, dtype=None):
        """The CSR array whose entry (src -> dst) is ``forward`` and (dst -> src) ``reverse``."""
        forward, reverse = kept(forward), kept(reverse)
        out = np.empty((2 * fwd.size,) + forward.shape[1:], dtype or forward.dtype)
        out[fwd] = forward
        out[rev] = reverse
        return out

    indices = place(dst, src, np.int32)
    weights = place(weight, weight, np.float64)
    del weight
    received = sent = None
    if events_ab is not None and events_ba is not None:
        # entry (a -> b) receives b's events to a; entry (b -> a) receives a's events to b
        received = place(events_ba, events_ab, np.int32)
        sent = place(events_ab, events_ba, np.int32)
    del events_ab, events_ba
    entry = {}
    for name in list(tie_arrays or {}):
        # taken out of the caller's dict as placed: the job's 100M-row graph is built near
        # the client's memory peak, and each input can go once its CSR copy exists
        arr = tie_arrays.pop(name) if isinstance(tie_arrays, dict) else tie_arrays[name]
        entry[name] = place(arr, arr)
        del arr
    fwd = rev = src = dst = None  # freed before the node table is built

    on_net = isin(keys, on_net_keys)
    if home_prefixes:
        on_net |= prefix_lookup(keys, {p: "home" for p in home_prefixes}) == "home"
    operator = prefix_lookup(keys, dict(operators or {}), default="unknown")
    operator = np.where(on_net, home_operator, operator)
    nodes = pd.DataFrame({
        "msisdn": format_numbers(keys).to_pandas(),
        "on_net": on_net,
        "operator": operator.astype(str),
        "service_hub": isin(keys, [] if service_hub_keys is None else service_hub_keys),
    })
    return CallGraph(
        keys=keys,
        indptr=indptr,
        indices=indices,
        weights=weights,
        nodes=nodes,
        received=received,
        sent=sent,
        entry=entry,
    )

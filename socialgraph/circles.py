"""Circles: groups of numbers that churn together.

So far: the *declared* circles of the subscriber table, a corporate V-net (``vnet_id``) or a
family plan (``family_id``). Their ids are derived from the operator's own ids
(``vnet:<vnet_id>``, ``family:<family_id>``), so they are the same in every run. Inferred
circles (call-graph communities) come next.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from .graph import CallGraph
from .subscribers import Subscribers

__all__ = ["declared_circles", "leiden_communities"]


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
    parts = []
    for kind, ids in (("family", subs.family_id), ("vnet", subs.vnet_id)):
        has = pd.notna(ids)
        if not has.any():
            continue
        parts.append(pd.DataFrame({
            "circle_id": np.array([f"{kind}:{v}" for v in ids[has]], dtype=object),
            "kind": kind,
            "source": "declared",
            "key": subs.key[has],
        }))
    if not parts:
        return pd.DataFrame({"circle_id": pd.Series(dtype=object), "kind": pd.Series(dtype=object),
                             "source": pd.Series(dtype=object), "key": pd.Series(dtype=np.int64)})
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["circle_id", "key"], kind="stable").reset_index(drop=True)


def leiden_communities(graph: CallGraph, *, resolution: float = 1.0, seed: int = 42,
                       n_iterations: int = 2, initial_membership: np.ndarray | None = None
                       ) -> tuple[np.ndarray, float]:
    """Weighted modularity communities with igraph's Leiden; returns (membership, modularity).

    Deterministic for a seed: igraph draws from Python's ``random`` module, which is seeded
    here and restored afterwards. ``initial_membership`` warm-starts from a previous partition.
    Isolated nodes are singleton communities.

    >>> from socialgraph.graph import build_call_graph
    >>> a = np.array([1, 1, 2, 4, 4, 5, 3]); b = np.array([2, 3, 3, 5, 6, 6, 4])
    >>> w = np.array([5.0, 5, 5, 5, 5, 5, 0.1])
    >>> m, q = leiden_communities(build_call_graph(a, b, w, on_net_keys=a), seed=1)
    >>> len(set(m[:3])), len(set(m[3:])), bool(m[0] != m[3]), round(q, 3)
    (1, 1, True, 0.497)
    """
    if resolution <= 0:
        raise ValueError(f"leiden_communities: resolution must be > 0, got {resolution}")
    g = graph.to_igraph()
    state = random.getstate()
    try:
        random.seed(seed)
        part = g.community_leiden(
            objective_function="modularity", weights="weight", resolution=resolution,
            n_iterations=n_iterations,
            initial_membership=None if initial_membership is None else [int(x) for x in initial_membership],
        )
    finally:
        random.setstate(state)
    membership = np.asarray(part.membership, dtype=np.int64)
    return membership, float(g.modularity(membership.tolist(), weights="weight", resolution=resolution))

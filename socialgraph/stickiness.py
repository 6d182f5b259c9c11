"""Number stickiness: how costly it would be for a subscriber to give up this number.

The composite is a weighted mean of explainable components, each in [0, 1] and reported next
to it (``ScoringConfig`` holds the weights):

- ``tenure``: ``1 - exp(-tenure_days / tenure_scale_days)``;
- ``social``: breadth and strength of the people who reach the subscriber on this number:
  ``1 - exp(-social_raw / social_scale)``, where ``social_raw`` sums tie strengths and counts a
  tie whose contact calls or texts in ``inbound_factor`` times an outbound-only one;
- ``diversity``: ``1 - 1/N_eff``, ``N_eff = exp(entropy of tie strengths)`` the effective
  number of contacts (one contact: 0; ten equal contacts: 0.9);
- ``onnet``: share of tie strength to on-net numbers (those calls would become off-net);
- ``services``: ``1 - exp(-vas_count / services_scale)`` (services using the number as identity);
- ``group``: 1 in a family plan or a V-net, 0 otherwise;
- ``balance``: ``1 - exp(-balance / balance_scale)`` (what leaving forfeits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import ScoringConfig
from .graph import CallGraph
from .kernels import scoring as _k

__all__ = ["TieFeatures", "tie_features", "stickiness_components", "STICKINESS_COMPONENTS"]

STICKINESS_COMPONENTS = ("tenure", "social", "diversity", "onnet", "services", "group", "balance")


@dataclass(frozen=True)
class TieFeatures:
    """Per-node tie features (see :mod:`socialgraph.kernels.scoring` for each column)."""

    values: np.ndarray  # (n_nodes, 8 + 6 * n_cut) float64

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[:, _COLUMNS.index(name)]

    def at_cut(self, name: str, cut: int) -> np.ndarray:
        return self.values[:, _k.N_BASE + _k.N_PER_CUT * cut + _CUT_COLUMNS.index(name)]


_COLUMNS = ("strength", "inbound_contacts", "reciprocal_contacts", "social_raw", "diversity",
            "onnet_share", "exposure", "competitor_share")
_CUT_COLUMNS = ("recent_days", "base_days", "contacts", "exposure_u", "competitor_u", "onnet_u")


def tie_features(graph: CallGraph, *, competitor: np.ndarray, churn_age: np.ndarray,
                 half_life_days: float = 30.0, inbound_factor: float = 2.0, n_cut: int = 2) -> TieFeatures:
    """All per-node tie features in one parallel pass over the CSR.

    Parameters
    ----------
    graph : CallGraph with ``entry["active_days"]`` and ``entry["blocks"]`` (active days per
        block, most recent first, at least ``n_cut + 2`` blocks)
    competitor : bool per node, a competitor's number
    churn_age : float (n_nodes, n_cut): days from a node's churn to each cut-off, -1 where the
        node had not churned before that cut-off
    half_life_days, inbound_factor : see :class:`~socialgraph.config.ScoringConfig`

    Examples
    --------
    >>> from socialgraph.graph import build_call_graph
    >>> g = build_call_graph(np.array([1, 1]), np.array([2, 3]), np.array([1.0, 1.0]),
    ...     on_net_keys=np.array([1, 2]), events_ab=np.array([1, 1]), events_ba=np.array([1, 0]),
    ...     tie_arrays={"active_days": np.array([3, 3]), "blocks": np.array([[1, 1, 1, 0]] * 2)})
    >>> f = tie_features(g, competitor=np.array([False, False, True]),
    ...                  churn_age=np.array([[-1.0, -1.0], [0.0, -1.0], [-1.0, -1.0]]))
    >>> [float(f[c][0]) for c in ("reciprocal_contacts", "onnet_share", "exposure", "competitor_share")]
    [1.0, 0.5, 0.5, 0.5]
    """
    n = graph.n_nodes
    if int(n_cut) < 1:
        raise ValueError(f"tie_features: n_cut must be >= 1 (cut-off 0 is the as-of date), got {n_cut}")
    if "active_days" not in graph.entry or "blocks" not in graph.entry:
        raise ValueError("tie_features: the call graph was built without active_days/blocks tie arrays")
    blocks = np.ascontiguousarray(graph.entry["blocks"], np.int32)
    if blocks.ndim != 2 or blocks.shape[1] < n_cut + 2:
        raise ValueError(f"tie_features: need at least {n_cut + 2} activity blocks per tie")
    churn_age = np.ascontiguousarray(churn_age, np.float64)
    if churn_age.shape != (n, n_cut):
        raise ValueError(f"tie_features: churn_age must have shape ({n}, {n_cut}), got {churn_age.shape}")
    competitor = np.ascontiguousarray(competitor, np.bool_)
    if competitor.shape != (n,):
        raise ValueError("tie_features: competitor must have one flag per node")
    out = np.zeros((n, _k.N_BASE + _k.N_PER_CUT * n_cut), np.float64)
    _k._node_features(
        graph.indptr, graph.indices, np.ascontiguousarray(graph.weights, np.float64),
        np.ascontiguousarray(graph.received, np.int32), np.ascontiguousarray(graph.sent, np.int32),
        np.ascontiguousarray(graph.entry["active_days"], np.int32), blocks,
        graph.nodes["on_net"].to_numpy(np.bool_), competitor, churn_age,
        float(half_life_days), float(inbound_factor), int(n_cut), out,
    )
    return TieFeatures(out)


def _saturate(x: np.ndarray, scale: float) -> np.ndarray:
    return 1.0 - np.exp(-np.maximum(x, 0.0) / scale)


def stickiness_components(*, tenure_days: np.ndarray, social_raw: np.ndarray, diversity: np.ndarray,
                          onnet_share: np.ndarray, vas_count: np.ndarray, in_group: np.ndarray,
                          balance: np.ndarray, cfg: ScoringConfig = ScoringConfig()) -> pd.DataFrame:
    """Stickiness components and the composite ``stickiness`` (all in [0, 1]).

    >>> c = stickiness_components(tenure_days=np.array([0, 3650]), social_raw=np.array([0, 50]),
    ...     diversity=np.array([0, .9]), onnet_share=np.array([0, 1]), vas_count=np.array([0, 10]),
    ...     in_group=np.array([False, True]), balance=np.array([0, 500]))
    >>> c["stickiness"].round(2).tolist()
    [0.0, 0.98]
    """
    comp = pd.DataFrame({
        "tenure": _saturate(np.asarray(tenure_days, np.float64), cfg.tenure_scale_days),
        "social": _saturate(np.asarray(social_raw, np.float64), cfg.social_scale),
        "diversity": np.clip(np.asarray(diversity, np.float64), 0.0, 1.0),
        "onnet": np.clip(np.asarray(onnet_share, np.float64), 0.0, 1.0),
        "services": _saturate(np.asarray(vas_count, np.float64), cfg.services_scale),
        "group": np.asarray(in_group, np.float64),
        "balance": _saturate(np.asarray(balance, np.float64), cfg.balance_scale),
    })
    weights = cfg.stickiness_weights
    comp["stickiness"] = sum(weights[c] * comp[c] for c in STICKINESS_COMPONENTS)
    return comp

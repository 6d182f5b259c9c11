"""Two oracles for the per-node tie features of :mod:`socialgraph.kernels.scoring`.

Both are written from the column definitions in that module's docstring, never from the
kernel's code:

* :func:`node_features_loop` - plain Python over dicts and lists, one node and one tie at a
  time: slow and obviously correct;
* :func:`node_features_numpy` - the same columns vectorised with NumPy (per-entry arrays over
  the CSR, per-node sums with ``np.bincount``): a second oracle, and the peer that
  ``benchmarks/kernels.py`` times against the numba kernel.

Conventions the docstring implies: a node without ties (strength 0) gets 0 in every ratio
column; ``churn_age < 0`` means "not churned before that cut-off" (decay 0); a contact counts
at a cut-off when it has at least one active day before it.
"""

from __future__ import annotations

import math

import numpy as np

N_BASE = 8
N_PER_CUT = 6


def n_feature_columns(n_cut: int) -> int:
    return N_BASE + N_PER_CUT * n_cut


def _decay(age: float, half_life: float) -> float:
    return 0.5 ** (age / half_life) if age >= 0 else 0.0


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def node_features_loop(graph, competitor, churn_age, half_life, inbound_factor, n_cut) -> np.ndarray:
    """Every feature column, in plain Python: one dict of ties per node."""
    n = graph.n_nodes
    on_net = [bool(x) for x in graph.nodes["on_net"]]
    competitor = [bool(x) for x in competitor]
    churn_age = [[float(x) for x in row] for row in np.asarray(churn_age, float).reshape(n, n_cut)]
    indptr = graph.indptr.tolist()
    indices = graph.indices.tolist()
    weights = graph.weights.tolist()
    received = graph.received.tolist()
    sent = graph.sent.tolist()
    active_days = graph.entry["active_days"].tolist()
    blocks = [list(row) for row in np.asarray(graph.entry["blocks"]).tolist()]

    # ties[i] = list of the ties of node i, each a dict of everything known about it
    ties = {i: [] for i in range(n)}
    for i in range(n):
        for e in range(indptr[i], indptr[i + 1]):
            ties[i].append({"j": indices[e], "w": weights[e], "received": received[e], "sent": sent[e],
                            "days": active_days[e], "blocks": blocks[e]})

    out = np.zeros((n, n_feature_columns(n_cut)))
    for i in range(n):
        mine = ties[i]
        strength = sum(t["w"] for t in mine)
        row = [0.0] * n_feature_columns(n_cut)
        row[0] = strength
        row[1] = sum(1 for t in mine if t["received"] > 0)
        row[2] = sum(1 for t in mine if t["received"] > 0 and t["sent"] > 0)
        row[3] = sum(t["w"] * (inbound_factor if t["received"] > 0 else 1.0) / inbound_factor for t in mine)
        if strength > 0:
            entropy = -sum((t["w"] / strength) * math.log(t["w"] / strength) for t in mine if t["w"] > 0)
            row[4] = 1.0 - 1.0 / math.exp(entropy)
        row[5] = _ratio(sum(t["w"] for t in mine if on_net[t["j"]]), strength)
        row[6] = _ratio(sum(t["w"] * _decay(churn_age[t["j"]][0], half_life) for t in mine), strength)
        row[7] = _ratio(sum(t["sent"] for t in mine if competitor[t["j"]]), sum(t["sent"] for t in mine))
        for c in range(n_cut):
            col = N_BASE + N_PER_CUT * c
            u = {}  # contact -> log1p(active days before cut-off c)
            for t in mine:
                days_before = t["days"] - sum(t["blocks"][:c])
                u[t["j"]] = math.log1p(days_before) if days_before > 0 else 0.0
            total_u = sum(u.values())
            row[col] = sum(t["blocks"][c] for t in mine)
            row[col + 1] = sum(t["blocks"][c + 1] + t["blocks"][c + 2] for t in mine)
            row[col + 2] = sum(1 for x in u.values() if x > 0)
            row[col + 3] = _ratio(sum(x * _decay(churn_age[j][c], half_life) for j, x in u.items()), total_u)
            row[col + 4] = _ratio(sum(x for j, x in u.items() if competitor[j]), total_u)
            row[col + 5] = _ratio(sum(x for j, x in u.items() if on_net[j]), total_u)
        out[i] = row
    return out


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def node_features_numpy(graph, competitor, churn_age, half_life, inbound_factor, n_cut) -> np.ndarray:
    """Every feature column, vectorised: per-entry arrays over the CSR, per-node sums by
    ``np.bincount`` on the row id of each entry (no Python loop over nodes or ties)."""
    n = graph.n_nodes
    indptr = graph.indptr
    j = graph.indices
    w = np.asarray(graph.weights, np.float64)
    received = np.asarray(graph.received)
    sent = np.asarray(graph.sent, np.float64)
    active_days = np.asarray(graph.entry["active_days"], np.float64)
    blocks = np.asarray(graph.entry["blocks"], np.float64)
    on_net = graph.nodes["on_net"].to_numpy(bool)[j]
    comp = np.asarray(competitor, bool)[j]
    churn_age = np.asarray(churn_age, np.float64)

    row = np.repeat(np.arange(n), np.diff(indptr))

    def per_node(values):
        return np.bincount(row, weights=values, minlength=n)

    ln_half = np.log(0.5) / half_life
    # decay of each node's churn at each cut-off, gathered per entry
    node_decay = np.where(churn_age >= 0, np.exp(np.maximum(churn_age, 0.0) * ln_half), 0.0)
    entry_decay = node_decay[j]

    out = np.zeros((n, n_feature_columns(n_cut)))
    strength = per_node(w)
    inbound = received > 0
    out[:, 0] = strength
    out[:, 1] = np.bincount(row[inbound], minlength=n)
    out[:, 2] = np.bincount(row[inbound & (sent > 0)], minlength=n)
    out[:, 3] = per_node(np.where(inbound, w, w / inbound_factor))
    p = _safe_div(w, strength[row])
    plogp = np.zeros_like(p)
    np.multiply(p, np.log(p, where=p > 0, out=np.zeros_like(p)), out=plogp, where=p > 0)
    entropy = -per_node(plogp)
    out[:, 4] = np.where(strength > 0, 1.0 - np.exp(-entropy), 0.0)
    out[:, 5] = _safe_div(per_node(w * on_net), strength)
    out[:, 6] = _safe_div(per_node(w * entry_decay[:, 0]), strength)
    out[:, 7] = _safe_div(per_node(sent * comp), per_node(sent))

    # active days before cut-off c: all active days minus the c most recent blocks
    days_before = active_days[:, None] - np.concatenate(
        [np.zeros((blocks.shape[0], 1)), np.cumsum(blocks[:, :max(n_cut - 1, 0)], axis=1)], axis=1)[:, :n_cut]
    u = np.where(days_before > 0, np.log1p(np.maximum(days_before, 0.0)), 0.0)
    for c in range(n_cut):
        col = N_BASE + N_PER_CUT * c
        uc = u[:, c]
        u_sum = per_node(uc)
        out[:, col] = per_node(blocks[:, c])
        out[:, col + 1] = per_node(blocks[:, c + 1] + blocks[:, c + 2])
        out[:, col + 2] = np.bincount(row[uc > 0], minlength=n)
        out[:, col + 3] = _safe_div(per_node(uc * entry_decay[:, c]), u_sum)
        out[:, col + 4] = _safe_div(per_node(uc * comp), u_sum)
        out[:, col + 5] = _safe_div(per_node(uc * on_net), u_sum)
    return out

"""Churn exposure and an honest churn-risk score for every subscriber active at the as-of date.

How ``churn_risk`` is fitted, and why it is honest
--------------------------------------------------
It is a logistic regression, refitted on every run from the run's own data, that never sees
churn after the as-of date:

1. **Training cut-off** ``T0 = as_of - block_days`` (14 days by default). Features are
   computed as of ``T0`` from information before ``T0`` only: tenure at ``T0``; the subscriber's
   active tie-days in the block before ``T0`` and in the two blocks before that (trend); ties
   active before ``T0``; exposure to contacts who churned before ``T0`` (ties weighted by
   ``log1p(active days before T0)``, never by activity after it); spreading activation seeded
   by those churners over the same pre-``T0`` weights; contacts who churned in the two blocks
   before ``T0``; whether tenure at ``T0`` is 3-9 months; the share of pre-``T0`` tie-days spent
   with competitor and on-net numbers; ``vas_count``, group membership and ARPU (snapshots of
   the subscriber table).
2. **Label**: churned in ``[T0, as_of)``, among subscribers active at ``T0``.
3. **Scoring**: the same features computed as of ``as_of`` (the block before it, churners
   before it) go through the fitted model. ``churn_risk`` is thus the probability of churning
   within the next ``block_days`` days, calibrated on the most recent such period.

Features are standardised; the fit is L2-penalised IRLS (``risk_l2``). With fewer than 20
churners in the training period there is nothing to learn from, and the score falls back to a
documented fixed combination (see :func:`fallback_risk`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .config import ScoringConfig
from .graph import CallGraph
from .kernels.scoring import _count_recent_churned
from .stickiness import TieFeatures, stickiness_components, tie_features
from .subscribers import Subscribers

__all__ = ["RISK_FEATURES", "RiskModel", "fit_logistic", "score_subscribers", "auc", "lift_at"]

RISK_FEATURES = ("log_tenure", "tenure_3_9_months", "log_recent_days", "activity_trend",
                 "log_contacts", "exposure", "log_churned_contacts", "log_activation",
                 "competitor_share", "onnet_share", "log_vas", "in_group", "log_arpu")
_SUBSCRIBER_FEATURES = ("log_tenure", "tenure_3_9_months", "log_vas", "in_group", "log_arpu")
MIN_POSITIVES = 20


@dataclass(frozen=True)
class RiskModel:
    """A fitted logistic model on standardised features."""

    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    std: np.ndarray
    n_train: int = 0
    n_positive: int = 0
    train_auc: float = float("nan")
    fitted: bool = True
    features: tuple = field(default=RISK_FEATURES)

    def predict(self, X: np.ndarray) -> np.ndarray:
        # summed feature by feature, in order: no standardised n x k copy of X
        z = np.full(len(X), float(self.intercept))
        for k in range(X.shape[1]):
            if self.coef[k] != 0.0:
                z += (X[:, k] - self.mean[k]) * (self.coef[k] / self.std[k])
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def describe(self) -> dict:
        return {
            "fitted": self.fitted,
            "n_train": self.n_train,
            "n_positive": self.n_positive,
            "train_auc": None if np.isnan(self.train_auc) else round(float(self.train_auc), 4),
            "intercept": round(float(self.intercept), 4),
            "coefficients": {f: round(float(c), 4) for f, c in zip(self.features, self.coef)},
        }


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1.0, max_iter: int = 50) -> RiskModel:
    """L2-penalised logistic regression by iteratively reweighted least squares.

    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 2)); y = (X[:, 0] + 0.3 * rng.normal(size=2000) > 0).astype(float)
    >>> m = fit_logistic(X, y)
    >>> bool(m.coef[0] > 2 and abs(m.coef[1]) < 0.5)
    True
    """
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    constant = std == 0  # e.g. an optional column the operator does not provide
    std[constant] = 1.0
    # a constant column has no information; it stays in the model with coefficient 0 and is
    # left out of the fit, where it would make the unpenalised Hessian singular
    keep = np.flatnonzero(~constant)
    Z = np.empty((len(X), keep.size + 1))
    Z[:, 0] = 1.0
    for j, k in enumerate(keep, start=1):  # column by column: no n x k temporaries
        np.subtract(X[:, k], mean[k], out=Z[:, j])
        Z[:, j] /= std[k]
    beta = np.zeros(Z.shape[1])
    p0 = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    beta[0] = np.log(p0 / (1 - p0))
    penalty = np.full(Z.shape[1], l2)
    penalty[0] = 0.0
    # einsum, not @: BLAS sums in an order that depends on its thread count, and the scores
    # must be the same to the last bit wherever the job runs
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(np.einsum("ij,j->i", Z, beta), -40, 40)))
        w = np.maximum(p * (1 - p), 1e-9)
        grad = np.einsum("ij,i->j", Z, y - p) - penalty * beta
        hess = _weighted_gram(Z, w) + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    coef = np.zeros(X.shape[1])
    coef[~constant] = beta[1:]
    model = RiskModel(coef=coef, intercept=float(beta[0]), mean=mean, std=std,
                      n_train=len(y), n_positive=int(y.sum()))
    return replace(model, train_auc=auc(model.predict(X), y))


#: rows per block of the Hessian's sum: fixed, so the sum's order (and every bit of the fitted
#: model) does not depend on the machine; small, so no n x k temporary (0.56 GB at 5M rows)
_GRAM_ROWS = 65536


def _weighted_gram(Z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``Z.T @ diag(w) @ Z`` summed in fixed blocks of rows (einsum: BLAS would sum in an order
    that depends on its threads)."""
    out = np.zeros((Z.shape[1], Z.shape[1]))
    for s in range(0, Z.shape[0], _GRAM_ROWS):
        z = Z[s:s + _GRAM_ROWS]
        out += np.einsum("ij,ik->jk", z * w[s:s + _GRAM_ROWS, None], z)
    return out


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC by ranks (ties get their average rank); NaN when one class is missing.

    >>> auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    """
    label = np.asarray(label, bool)
    n_pos = int(label.sum())
    n_neg = label.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(score, np.float64)).rank(method="average").to_numpy()
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def lift_at(score: np.ndarray, label: np.ndarray, share: float = 0.1) -> float:
    """Churn rate in the top ``share`` by score over the base churn rate."""
    label = np.asarray(label, bool)
    base = label.mean()
    if base == 0:
        return float("nan")
    k = max(1, int(round(share * label.size)))
    top = np.argsort(-np.asarray(score, np.float64), kind="stable")[:k]
    return float(label[top].mean() / base)


def fallback_risk(X: np.ndarray) -> np.ndarray:
    """Fixed, unfitted risk when there are too few recent churners to learn from: falling
    activity, exposure to churners and competitor traffic raise it; tenure, ties and group
    membership lower it. Scaled to (0, 1) by a logistic; a ranking, not a probability."""
    f = {name: X[:, i] for i, name in enumerate(RISK_FEATURES)}
    z = (-0.5 * f["activity_trend"] + 2.0 * f["exposure"] + 1.0 * np.log1p(f["log_activation"])
         + 2.0 * f["competitor_share"] - 0.3 * f["log_tenure"] - 0.3 * f["log_contacts"]
         - 0.5 * f["in_group"])
    return 1.0 / (1.0 + np.exp(-z))


def competitor_mask(graph: CallGraph) -> np.ndarray:
    """Off-net numbers of a known operator: not of an unknown prefix, not a service operator
    (an operator named ``Service``, as in the contract's example), not a detected hub."""
    nodes = graph.nodes
    op = nodes["operator"].astype(str).str.lower()
    return (~nodes["on_net"].to_numpy() & (op != "unknown").to_numpy() & (op != "service").to_numpy()
            & ~nodes["service_hub"].to_numpy())


def _churned_contacts(graph: CallGraph, churn_age: np.ndarray, within_days: float) -> np.ndarray:
    """Per node: contacts who churned less than ``within_days`` before the cut-off."""
    out = np.zeros(graph.n_nodes, np.float64)
    _count_recent_churned(graph.indptr, graph.indices, np.ascontiguousarray(churn_age, np.float64),
                          float(within_days), out)
    return out


def _features(graph_ids: np.ndarray, tenure_days: np.ndarray, tf: TieFeatures, activation: np.ndarray,
              churned: np.ndarray, subs: Subscribers, rows: np.ndarray, cut: int) -> np.ndarray:
    ids = graph_ids[rows]
    tenure = tenure_days[rows]
    recent = tf.at_cut("recent_days", cut)[ids]
    base = tf.at_cut("base_days", cut)[ids]
    # each column computed when it is written (a dict of all of them, then a stacked copy,
    # was ~1 GB at 5M subscribers, at the client's peak)
    cols = {
        "log_tenure": lambda: np.log1p(np.maximum(tenure, 0)),
        # operators' own observation: subscribers at 3-9 months churn most
        "tenure_3_9_months": lambda: (tenure >= 90) & (tenure < 270),
        "log_recent_days": lambda: np.log1p(recent),
        "activity_trend": lambda: np.log((recent + 1.0) / (base / 2.0 + 1.0)),
        "log_contacts": lambda: np.log1p(tf.at_cut("contacts", cut)[ids]),
        "exposure": lambda: tf.at_cut("exposure_u", cut)[ids],
        "log_churned_contacts": lambda: np.log1p(churned[ids]),
        "log_activation": lambda: np.log1p(activation[ids]),
        "competitor_share": lambda: tf.at_cut("competitor_u", cut)[ids],
        "onnet_share": lambda: tf.at_cut("onnet_u", cut)[ids],
        "log_vas": lambda: np.log1p(subs.vas_count[rows].astype(np.float64)),
        "in_group": lambda: subs.in_group()[rows],
        "log_arpu": lambda: np.log1p(np.maximum(subs.arpu[rows], 0.0)),
    }
    X = np.empty((rows.size, len(RISK_FEATURES)))
    for k, f in enumerate(RISK_FEATURES):
        X[:, k] = cols[f]()
    return X


def _activation(graph: CallGraph, weights: np.ndarray, churn_age: np.ndarray, half_life: float,
                alpha: float) -> np.ndarray:
    """Spreading activation (personalised PageRank x n) seeded by churners, decayed by age."""
    from .influence import spreading_activation

    seeds = np.flatnonzero(churn_age >= 0)
    if seeds.size == 0:
        return np.zeros(graph.n_nodes)
    g = replace(graph, weights=weights)
    # networkx's convergence test is sum|dx| < n * tol: at a million nodes the default tol
    # (1e-6) stops after one step, so ask for a tolerance that scales with the graph
    return spreading_activation(g, seeds, 0.5 ** (churn_age[seeds] / half_life), alpha=alpha,
                                tol=1e-10, max_iter=200)


def score_subscribers(graph: CallGraph, subs: Subscribers, as_of_day: int,
                      cfg: ScoringConfig = ScoringConfig()) -> tuple[pd.DataFrame, dict]:
    """Stickiness, influence, exposure and churn risk of every subscriber active at as-of.

    Returns one row per active subscriber (``key`` plus the scores) and a description of the
    fitted risk model (for the manifest).
    """
    from .influence import dependence

    n_cut = 2
    cut_days = np.array([as_of_day - c * cfg.block_days for c in range(n_cut)])
    ids = graph.ids_of(subs.key)
    # churn age (days) of each node at each cut-off; -1 = not churned before it
    churn_age = np.full((graph.n_nodes, n_cut), -1.0)
    in_graph = ids >= 0
    for c, day in enumerate(cut_days):
        before = in_graph & (subs.churn_day < day)
        churn_age[ids[before], c] = day - subs.churn_day[before]
    competitor = competitor_mask(graph)
    tf = tie_features(graph, competitor=competitor, churn_age=churn_age,
                      half_life_days=cfg.half_life_days, inbound_factor=cfg.inbound_factor, n_cut=n_cut)

    # day-based tie weights before each cut-off, for activation that ignores later activity
    # (in integers: float64 copies of the per-entry day blocks were 1.9 GB at 100M CDR rows)
    active_days = graph.entry["active_days"].astype(np.int32, copy=False)
    blocks = graph.entry["blocks"]
    activation = []
    churned = []
    for c in range(n_cut):
        days = active_days - blocks[:, :c].sum(axis=1, dtype=np.int32) if c else active_days
        u = np.log1p(np.maximum(days, 0).astype(np.float64))
        del days
        activation.append(_activation(graph, u, churn_age[:, c], cfg.half_life_days, cfg.alpha))
        churned.append(_churned_contacts(graph, churn_age[:, c], 2 * cfg.block_days))

    # subscribers absent from the graph (no ties) get node features of zero via a dummy row
    safe_ids = np.where(in_graph, ids, 0)
    zero_row = ~in_graph

    def feats(rows, cut):
        X = _features(safe_ids, cut_days[cut] - subs.activation_day, tf, activation[cut], churned[cut],
                      subs, rows, cut)
        node_cols = [i for i, f in enumerate(RISK_FEATURES) if f not in _SUBSCRIBER_FEATURES]
        X[np.ix_(zero_row[rows], node_cols)] = 0.0
        return X

    train_rows = np.flatnonzero(subs.active_at(int(cut_days[1])))
    y = (subs.churn_day[train_rows] < as_of_day).astype(np.float64)
    score_rows = np.flatnonzero(subs.active_at(as_of_day))
    X_score = feats(score_rows, 0)
    if y.sum() >= MIN_POSITIVES and (1 - y).sum() >= MIN_POSITIVES:
        model = fit_logistic(feats(train_rows, 1), y, cfg.risk_l2)
        risk = model.predict(X_score)
        info = model.describe()
    else:
        risk = fallback_risk(X_score)
        info = {"fitted": False, "reason": f"only {int(y.sum())} churners in the training period"}
    info["train_cutoff_day"] = int(cut_days[1])

    sid = safe_ids[score_rows]
    absent = zero_row[score_rows]

    def node(values):
        out = values[sid].astype(np.float64)
        out[absent] = 0.0
        return out

    tenure_days = as_of_day - subs.activation_day[score_rows]
    comp = stickiness_components(
        tenure_days=tenure_days, social_raw=node(tf["social_raw"]), diversity=node(tf["diversity"]),
        onnet_share=node(tf["onnet_share"]), vas_count=subs.vas_count[score_rows],
        in_group=subs.in_group()[score_rows], balance=subs.balance[score_rows], cfg=cfg,
    )
    recent = node(tf.at_cut("recent_days", 0))
    base = node(tf.at_cut("base_days", 0))
    scored = pd.DataFrame({
        "key": subs.key[score_rows],
        "stickiness": comp["stickiness"].to_numpy(),
        "influence": node(dependence(graph)),
        "exposure": node(tf["exposure"]),
        "churn_risk": risk,
        **{f"sticky_{c}": comp[c].to_numpy() for c in comp.columns if c != "stickiness"},
        "tenure_days": tenure_days.astype(np.int64),
        "inbound_contacts": node(tf["inbound_contacts"]).astype(np.int64),
        "reciprocal_contacts": node(tf["reciprocal_contacts"]).astype(np.int64),
        "spreading_activation": node(activation[0]),
        "competitor_share": node(tf["competitor_share"]),
        "activity_trend": np.log((recent + 1.0) / (base / 2.0 + 1.0)),
        "dnd": subs.dnd[score_rows],
    })
    return scored, info

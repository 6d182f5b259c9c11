"""Churn risk: AUC and lift against hand/brute-force computations, the logistic fit against a
simulation and scipy, and ``score_subscribers`` on a small synthetic operator: contract,
honesty (nothing at or after as-of is ever learnt from), exposure on a crafted graph."""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import minimize

from socialgraph.config import NumberConfig, ScoringConfig
from socialgraph.graph import build_call_graph
from socialgraph.numbers import number_keys
from socialgraph.risk import auc, fit_logistic, lift_at, score_subscribers
from socialgraph.schema import SUBSCRIBERS_SCORED
from socialgraph.stickiness import STICKINESS_COMPONENTS
from socialgraph.subscribers import NEVER, day_number, subscribers_from_arrow
from socialgraph.synth import COUNTRY_CODE, NATIONAL_LENGTH
from worlds import synthetic_world
from socialgraph.ties import N_BLOCKS

# Explicit, so these tests do not move with the default: 28-day blocks give the synthetic
# operator enough churners in the training period to fit a model.
CFG = ScoringConfig(block_days=28)
NUMBERS = NumberConfig(country_code=COUNTRY_CODE, national_length=NATIONAL_LENGTH)
SEED = 3


# --------------------------------------------------------------------------- AUC and lift


def brute_force_auc(score, label) -> float:
    pos = [s for s, y in zip(score, label) if y]
    neg = [s for s, y in zip(score, label) if not y]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    label = rng.random(n) < rng.uniform(0.05, 0.6)
    label[:2] = [True, False]
    # few distinct values, so that many scores tie (ties count 1/2)
    score = rng.integers(0, 8, n) + (0.5 * label if seed % 2 else 0.0)
    assert auc(score, label) == pytest.approx(brute_force_auc(score, label), abs=1e-12)
    continuous = rng.normal(size=n) + label
    assert auc(continuous, label) == pytest.approx(brute_force_auc(continuous, label), abs=1e-12)
    assert auc(continuous, label.astype(int)) == auc(continuous, label)


def test_auc_edge_cases():
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert auc(np.array([1.0, 2, 3, 4]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([4.0, 3, 2, 1]), np.array([0, 0, 1, 1])) == 0.0
    assert auc(np.ones(6), np.array([0, 1, 0, 1, 0, 0])) == 0.5
    assert np.isnan(auc(np.arange(5.0), np.zeros(5)))
    assert np.isnan(auc(np.arange(5.0), np.ones(5)))
    assert np.isnan(auc(np.empty(0), np.empty(0, bool)))


def test_lift_at_by_hand():
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    label = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], bool)
    # base rate 2/10; top 10 % = the first row (churned): 1 / 0.2 = 5
    assert lift_at(score, label, 0.1) == pytest.approx(5.0)
    # top 20 %: one churner of two -> 0.5 / 0.2
    assert lift_at(score, label, 0.2) == pytest.approx(2.5)
    # top 30 %: two of three -> (2/3) / 0.2
    assert lift_at(score, label, 0.3) == pytest.approx(10 / 3)
    assert lift_at(score, label, 1.0) == pytest.approx(1.0)
    # at least one row is taken, however small the share
    assert lift_at(score, label, 0.001) == pytest.approx(5.0)
    # the order of the rows does not matter, only the score
    perm = np.random.default_rng(0).permutation(10)
    assert lift_at(score[perm], label[perm], 0.3) == pytest.approx(10 / 3)
    assert np.isnan(lift_at(score, np.zeros(10, bool)))


@pytest.mark.parametrize("seed", range(3))
def test_lift_at_matches_hand_computation(seed):
    rng = np.random.default_rng(seed)
    n = 1000
    score = rng.random(n)  # no ties
    label = rng.random(n) < 0.1 + 0.3 * score
    k = 100
    top = sorted(range(n), key=lambda i: -score[i])[:k]
    expected = (sum(label[i] for i in top) / k) / (label.sum() / n)
    assert lift_at(score, label, 0.1) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- logistic fit


def _simulate(n, rng, beta, intercept):
    X = np.column_stack([rng.normal(2.0, 3.0, n), rng.normal(-1.0, 0.5, n), rng.random(n) < 0.3])
    z = intercept + X @ beta
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return X, y


def test_fit_logistic_recovers_simulated_coefficients():
    rng = np.random.default_rng(0)
    beta, intercept = np.array([0.8, -1.5, 1.0]), -1.0
    X, y = _simulate(60_000, rng, beta, intercept)
    m = fit_logistic(X, y)
    # the model is on standardised features: back to the raw scale
    raw = m.coef / m.std
    raw_intercept = m.intercept - np.sum(m.coef * m.mean / m.std)
    assert_allclose(raw, beta, atol=0.06)
    assert raw_intercept == pytest.approx(intercept, abs=0.06)
    assert_allclose(m.mean, X.mean(axis=0))
    assert_allclose(m.std, X.std(axis=0))
    assert (m.n_train, m.n_positive) == (60_000, int(y.sum()))
    p = m.predict(X)
    assert_allclose(p, 1 / (1 + np.exp(-(intercept + X @ beta))), atol=0.02)
    assert m.train_auc == pytest.approx(auc(p, y), abs=1e-12)


@pytest.mark.parametrize("l2", [0.0, 1.0, 25.0])
def test_fit_logistic_matches_scipy(l2):
    rng = np.random.default_rng(int(l2) + 1)
    X, y = _simulate(600, rng, np.array([0.5, -1.0, 0.7]), -0.5)
    m = fit_logistic(X, y, l2=l2)
    Z = np.column_stack([np.ones(len(X)), (X - X.mean(axis=0)) / X.std(axis=0)])

    def penalised_nll(b):
        z = Z @ b
        return np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * np.sum(b[1:] ** 2)

    def grad(b):
        p = 1 / (1 + np.exp(-(Z @ b)))
        return Z.T @ (p - y) + l2 * np.concatenate([[0.0], b[1:]])

    def hess(b):
        p = 1 / (1 + np.exp(-(Z @ b)))
        return (Z * (p * (1 - p))[:, None]).T @ Z + l2 * np.diag([0.0] + [1.0] * (Z.shape[1] - 1))

    ref = minimize(penalised_nll, np.zeros(Z.shape[1]), jac=grad, hess=hess, method="trust-exact",
                   options={"gtol": 1e-9})
    # at the optimum (scipy may report "precision loss" there): the gradient vanishes
    assert np.abs(grad(ref.x)).max() < 1e-5
    assert_allclose(m.coef, ref.x[1:], atol=1e-6)
    assert m.intercept == pytest.approx(ref.x[0], abs=1e-6)


def test_fit_logistic_stronger_penalty_shrinks():
    rng = np.random.default_rng(5)
    X, y = _simulate(400, rng, np.array([0.5, -1.0, 0.7]), -0.5)
    norms = [np.linalg.norm(fit_logistic(X, y, l2=l2).coef) for l2 in (0.0, 10.0, 100.0, 1000.0)]
    assert norms == sorted(norms, reverse=True)


def test_fit_logistic_constant_feature():
    """A constant column (e.g. ``log_vas`` when the subscriber table has no ``vas_count``) gets
    coefficient 0, also without a penalty (``risk_l2 = 0`` is allowed by ScoringConfig)."""
    rng = np.random.default_rng(2)
    X, y = _simulate(500, rng, np.array([0.5, -1.0, 0.7]), -0.5)
    X = np.column_stack([X, np.full(len(X), 3.0)])
    for l2 in (1.0, 0.0):
        m = fit_logistic(X, y, l2=l2)
        assert np.isfinite(m.coef).all() and m.coef[-1] == 0.0
        assert_allclose(m.coef[:3], fit_logistic(X[:, :3], y, l2=l2).coef, atol=1e-8)


# --------------------------------------------------------------------------- synthetic operator


@dataclasses.dataclass(frozen=True)
class World:
    op: object
    graph: object
    subscribers: pa.Table  # the subscriber table as given to the engine
    as_of_day: int


@cache
def world() -> World:
    """The graph stage run on the synthetic operator's CDR chunks, in process, without Dask
    (tests/worlds.py), with this module's activity blocks."""
    w = synthetic_world(3000, 12, SEED, block_days=CFG.block_days)
    return World(w.op, w.graph, w.op.subscribers, w.as_of_day)


@cache
def scored_world():
    w = world()
    return score_subscribers(w.graph, subscribers_from_arrow(w.subscribers, NUMBERS), w.as_of_day, CFG)


def churn_days(table: pa.Table) -> np.ndarray:
    return pc.fill_null(table.column("churn_date").cast(pa.int32()), NEVER).to_numpy().astype(np.int64)


def with_churn_days(table: pa.Table, days: np.ndarray) -> pa.Table:
    """The subscriber table with a new ``churn_date`` column (``NEVER`` = null)."""
    values = pa.array(np.where(days == NEVER, 0, days).astype(np.int32), mask=days == NEVER).cast(pa.date32())
    return table.set_column(table.column_names.index("churn_date"), "churn_date", values)


def rescore(table: pa.Table, graph=None, cfg: ScoringConfig = CFG):
    w = world()
    return score_subscribers(graph or w.graph, subscribers_from_arrow(table, NUMBERS), w.as_of_day, cfg)


def test_score_subscribers_contract():
    w = world()
    scored, info = scored_world()
    expected_cols = [c for c in SUBSCRIBERS_SCORED.names if c != "msisdn"]
    assert set(expected_cols) <= set(scored.columns) and "key" in scored.columns
    assert {f"sticky_{c}" for c in STICKINESS_COMPONENTS} <= set(scored.columns)
    for f in SUBSCRIBERS_SCORED:
        if f.name in scored.columns and pa.types.is_floating(f.type):
            assert scored[f.name].dtype == np.float64, f.name
            assert np.isfinite(scored[f.name]).all(), f.name
    # one row per subscriber active at as-of, worked out from the table itself
    t = w.subscribers
    act = t.column("activation_date").cast(pa.int32()).to_numpy()
    churn = churn_days(t)
    active = (act < w.as_of_day) & (churn >= w.as_of_day)
    expected = number_keys(t.column("msisdn"), NUMBERS)[active]
    assert len(scored) == active.sum() > 2000
    assert_array_equal(scored["key"].to_numpy(), expected)
    for name in ("stickiness", "exposure", "churn_risk", *(f"sticky_{c}" for c in STICKINESS_COMPONENTS)):
        v = scored[name].to_numpy()
        assert ((v >= 0) & (v <= 1)).all(), name
    assert (scored["tenure_days"] > 0).all()
    assert (scored["reciprocal_contacts"] <= scored["inbound_contacts"]).all()
    assert scored["dnd"].dtype == bool
    assert info["fitted"] and info["n_positive"] >= 20
    assert info["train_cutoff_day"] == w.as_of_day - CFG.block_days


def test_score_subscribers_deterministic():
    w = world()
    first, info = scored_world()
    again, info2 = rescore(w.subscribers)
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert info == info2


def test_churn_at_or_after_as_of_changes_nothing():
    """The engine never learns from churn at or after as-of: moving (or adding) churn dates
    anywhere in [as_of, ...) for people still active at as-of leaves every output unchanged."""
    w = world()
    base, base_info = scored_world()
    days = churn_days(w.subscribers)
    rng = np.random.default_rng(0)
    still = np.flatnonzero(days >= w.as_of_day)
    pick = rng.choice(still, size=len(still) // 3, replace=False)
    moved = days.copy()
    moved[pick] = w.as_of_day + rng.integers(0, 90, pick.size)
    moved[pick[:10]] = w.as_of_day  # churned on the as-of day itself: still active at as-of
    scored, info = rescore(with_churn_days(w.subscribers, moved))
    pd.testing.assert_frame_equal(base, scored, check_exact=True)
    assert info == base_info


def test_training_labels_are_churn_before_as_of():
    """Moving one churn from before T0 into [T0, as_of) adds one training row and one positive;
    moving one from [T0, as_of) to after as-of turns a positive into a negative."""
    w = world()
    _, base = scored_world()
    t0 = w.as_of_day - CFG.block_days
    days = churn_days(w.subscribers)
    act = w.subscribers.column("activation_date").cast(pa.int32()).to_numpy()

    early = np.flatnonzero((days < t0 - 10) & (act < t0 - 30))[0]
    moved = days.copy()
    moved[early] = t0 + 3
    _, info = rescore(with_churn_days(w.subscribers, moved))
    assert info["fitted"] and base["fitted"]
    assert (info["n_train"], info["n_positive"]) == (base["n_train"] + 1, base["n_positive"] + 1)

    recent = np.flatnonzero((days >= t0) & (days < w.as_of_day))[0]
    moved = days.copy()
    moved[recent] = w.as_of_day + 5
    _, info = rescore(with_churn_days(w.subscribers, moved))
    assert (info["n_train"], info["n_positive"]) == (base["n_train"], base["n_positive"] - 1)


def test_training_features_ignore_activity_after_cutoff():
    """Features at T0 use only activity before T0: erasing every tie-day of the last block
    (after T0) leaves the fitted model exactly as it was."""
    w = world()
    _, base = scored_world()
    blocks = w.graph.entry["blocks"].copy()
    days = w.graph.entry["active_days"] - blocks[:, 0]
    blocks[:, 0] = 0
    assert (days >= 0).all()
    erased = dataclasses.replace(w.graph, entry={**w.graph.entry, "active_days": days, "blocks": blocks})
    scored, info = rescore(w.subscribers, graph=erased)
    assert info == base
    # ... while the scores as of as-of, which may use that block, do change
    assert not np.array_equal(scored["churn_risk"], scored_world()[0]["churn_risk"])


@pytest.mark.parametrize("l2", [1.0, 0.0])
def test_fit_without_optional_columns(l2):
    """An operator exporting only the required subscriber columns: the group/services/ARPU
    features are constant; the fit must succeed, also with ``risk_l2: 0`` (allowed)."""
    w = world()
    minimal = w.subscribers.select(["msisdn", "activation_date", "churn_date"])
    scored, info = rescore(minimal, cfg=dataclasses.replace(CFG, risk_l2=l2))
    assert info["fitted"]
    assert np.isfinite(scored["churn_risk"]).all()


def test_report_churn_risk_against_future_churn():
    """Not an assertion on quality: prints AUC and lift@10 % of ``churn_risk`` and of a
    tenure-only score on the synthetic truth of churn after as-of (re-entries excluded)."""
    w = world()
    scored, info = scored_world()
    truth = w.op.truth["churn"]
    lost = pc.and_(truth.column("after_as_of"), pc.not_equal(truth.column("destination"), "reentry"))
    future = truth.filter(lost)
    label = np.isin(scored["key"].to_numpy(), number_keys(future.column("msisdn"), NUMBERS))
    churn_day = future.column("churn_date").cast(pa.int32()).to_numpy()
    soon = np.isin(scored["key"].to_numpy(),
                   number_keys(future.column("msisdn"), NUMBERS)[churn_day < w.as_of_day + CFG.block_days])
    tenure_only = -scored["tenure_days"].to_numpy(np.float64)
    risk = scored["churn_risk"].to_numpy()
    print(f"\nsynthetic operator seed={SEED}: {len(scored)} scored, model fitted={info['fitted']} "
          f"(train n={info.get('n_train')}, positives={info.get('n_positive')}, train AUC={info.get('train_auc')})")
    for name, y in (("all future churn", label), (f"churn within {CFG.block_days} days", soon)):
        print(f"  {name}: {int(y.sum())} churners | churn_risk AUC={auc(risk, y):.3f} "
              f"lift@10%={lift_at(risk, y, 0.1):.2f} | tenure-only AUC={auc(tenure_only, y):.3f} "
              f"lift@10%={lift_at(tenure_only, y, 0.1):.2f}")
    assert label.sum() > 20


# --------------------------------------------------------------------------- crafted exposure


def test_exposure_from_recently_churned_contacts():
    """X, Y and Z have five identical ties each; X's contacts churned 3 days before as-of, Z's
    60 days before, Y's never. X gets the highest exposure, Y none; nothing else differs."""
    as_of = dt.date(2026, 5, 1)
    as_of_day = day_number(as_of)
    centres = {"X": "13800000001", "Y": "13800000002", "Z": "13800000003"}
    contacts = {c: [f"1380000{i}{k:03d}" for k in range(5)] for i, c in enumerate(centres, start=1)}
    churned_days_ago = {"X": 3, "Y": None, "Z": 60}
    msisdn, churn = [], []
    for c, number in centres.items():
        msisdn.append(number)
        churn.append(None)
        for other in contacts[c]:
            msisdn.append(other)
            ago = churned_days_ago[c]
            churn.append(None if ago is None else as_of - dt.timedelta(days=ago))
    table = pa.table({
        "msisdn": msisdn,
        "activation_date": pa.array([dt.date(2024, 1, 1)] * len(msisdn), pa.date32()),
        "churn_date": pa.array(churn, pa.date32()),
    })
    subs = subscribers_from_arrow(table)
    keys = dict(zip(msisdn, subs.key))
    a = [keys[centres[c]] for c in centres for _ in range(5)]
    b = [keys[o] for c in centres for o in contacts[c]]
    m = len(a)
    graph = build_call_graph(
        np.array(a), np.array(b), np.full(m, 3.0), on_net_keys=subs.key, extra_keys=subs.key,
        events_ab=np.full(m, 5), events_ba=np.full(m, 5),
        tie_arrays={"active_days": np.full(m, 20), "blocks": np.full((m, N_BLOCKS), 5)})
    scored, info = score_subscribers(graph, subs, as_of_day, CFG)
    row = scored.set_index("key")
    x, y, z = (row.loc[keys[centres[c]]] for c in ("X", "Y", "Z"))
    assert y["exposure"] == 0.0
    assert x["exposure"] > z["exposure"] > 0.0
    assert x["exposure"] == pytest.approx(0.5 ** (3 / CFG.half_life_days))
    assert x["spreading_activation"] > y["spreading_activation"]
    assert x["churn_risk"] > y["churn_risk"]
    for name in ("stickiness", "influence", "inbound_contacts", "reciprocal_contacts", "competitor_share"):
        assert x[name] == y[name] == z[name], name


@pytest.mark.parametrize("seed", range(3))
def test_churned_contacts_kernel_matches_a_count_over_ties(seed):
    """Per node, contacts whose churn age at the cut-off is in [0, within): the CSR kernel
    against a plain count over the tie list."""
    from socialgraph.risk import _churned_contacts

    rng = np.random.default_rng(seed)
    n = 300
    a = rng.integers(0, n, 2000)
    b = rng.integers(0, n, 2000)
    ok = a != b
    lo, hi = np.minimum(a[ok], b[ok]), np.maximum(a[ok], b[ok])
    pairs = np.unique(np.c_[lo, hi], axis=0)
    keys = np.arange(n, dtype=np.int64) * 32 + 1000
    graph = build_call_graph(keys[pairs[:, 0]], keys[pairs[:, 1]], np.ones(len(pairs)), on_net_keys=keys)
    age = np.where(rng.random(graph.n_nodes) < 0.3, rng.integers(0, 60, graph.n_nodes), -1).astype(np.float64)
    want = np.zeros(graph.n_nodes)
    for i, j in pairs:  # each tie counts for both ends
        ii, jj = graph.ids_of(keys[[i, j]])
        want[ii] += 0 <= age[jj] < 28
        want[jj] += 0 <= age[ii] < 28
    assert want.sum() > 0
    assert_array_equal(_churned_contacts(graph, age, 28.0), want)

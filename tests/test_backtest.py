"""Back-test figures against direct computations on hand-made and synthetic data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from socialgraph.backtest import backtest
from socialgraph.subscribers import day_number, subscribers_from_arrow

AS_OF = dt.date(2026, 3, 1)


def _world(n=400, seed=0):
    rng = np.random.default_rng(seed)
    churn = np.where(rng.random(n) < 0.2, rng.integers(-20, 40, n), 10_000)
    dates = [None if c == 10_000 else AS_OF + dt.timedelta(days=int(c)) for c in churn]
    subs = subscribers_from_arrow(pa.table({
        "msisdn": [f"1380000{i:04d}" for i in range(n)],
        "activation_date": pa.array([dt.date(2024, 1, 1)] * n),
        "churn_date": pa.array(dates, pa.date32()),
    }))
    active = subs.active_at(day_number(AS_OF))
    scored = pd.DataFrame({"key": subs.key[active], "churn_risk": rng.random(int(active.sum())),
                           "tenure_days": rng.integers(10, 2000, int(active.sum()))})
    return subs, scored, churn[active]


def _empty():
    return pd.DataFrame({"key": pd.Series(dtype="int64"), "circle_id": pd.Series(dtype=object)})


def test_backtest_matches_direct_computation():
    subs, scored, churn = _world()
    r = backtest(subs, scored, _empty(), _empty(), pd.DataFrame({"circle_id": [], "contagion": []}),
                 day_number(AS_OF), 28)
    y = (churn >= 0) & (churn < 28)
    assert r["horizon_days"] == 28
    assert r["churned_after_as_of"] == y.sum()
    assert r["base_future_churn"] == pytest.approx(y.mean(), abs=1e-4)
    # AUC by brute force over all (churner, stayer) pairs
    s = scored["churn_risk"].to_numpy()
    pos, neg = s[y], s[~y]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (pos.size * neg.size)
    assert r["auc"] == pytest.approx(brute, abs=1e-4)
    k = round(0.1 * s.size)
    top = np.argsort(-s, kind="stable")[:k]
    assert r["lift_at_10"] == pytest.approx(y[top].mean() / y.mean(), abs=1e-4)


def test_backtest_targets_and_flagged_circles():
    subs, scored, churn = _world(seed=1)
    y = (churn >= 0) & (churn < 28)
    keys = scored["key"].to_numpy()
    churners, stayers = keys[y], keys[~y]
    targets = pd.DataFrame({"key": np.concatenate([churners[:3], stayers[:1]]), "circle_id": "c1"})
    members = pd.DataFrame({"circle_id": ["c1"] * 4 + ["c2"] * 4,
                            "key": np.concatenate([churners[:3], stayers[:1], stayers[1:5]])})
    circles = pd.DataFrame({"circle_id": ["c1", "c2"], "contagion": [True, False]})
    r = backtest(subs, scored, targets, members, circles, day_number(AS_OF), 28)
    assert r["targets"] == 4 and r["targets_future_churn"] == 0.75
    assert r["flagged_members_future_churn"] == 0.75 and r["other_circle_members_future_churn"] == 0.0
    assert r["targets_lift"] == pytest.approx(0.75 / r["base_future_churn"], rel=1e-3)


def test_no_future_churn_means_no_backtest():
    subs, scored, _ = _world(seed=2)
    # as of a date after every churn: nothing follows it
    late = day_number(AS_OF) + 100
    assert backtest(subs, scored, _empty(), _empty(), pd.DataFrame({"circle_id": [], "contagion": []}), late, 28) is None


def test_horizon_is_cut_to_the_data():
    subs, scored, churn = _world(seed=3)
    r = backtest(subs, scored, _empty(), _empty(), pd.DataFrame({"circle_id": [], "contagion": []}),
                 day_number(AS_OF), 1000)
    assert r["horizon_days"] == int(churn[churn < 10_000].max()) + 1

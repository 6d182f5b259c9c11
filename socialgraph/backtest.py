"""Back-test: how the scores and flags of a run did on the churn that followed its as-of date.

A data engineer runs ``socialgraph run --as-of DATE`` on data that goes on past ``DATE``: the
job sees only CDRs before ``DATE`` (later rows are counted as outside the window), but the
subscriber table knows who left afterwards. Scoring that churn against what the run said is how
a marketer is convinced the lists are worth calling. Nothing here feeds back into the scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .risk import auc, lift_at
from .subscribers import NEVER, Subscribers

__all__ = ["backtest", "LIFT_SHARES"]

#: shares of the base (ranked by score) at which the lift curve is reported
LIFT_SHARES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def backtest(subs: Subscribers, scored: pd.DataFrame, targets: pd.DataFrame, members: pd.DataFrame,
             circles: pd.DataFrame, as_of_day: int, horizon_days: int) -> dict | None:
    """Churn in ``[as_of, as_of + horizon)`` against ``churn_risk``, the flags and the targets.

    Returns ``None`` when the subscriber table shows no churn on or after the as-of date (there
    is nothing to test against); otherwise the horizon actually covered (up to the last churn
    date known), AUC and lift at 10 % of ``churn_risk`` and of a tenure-only score (longer
    tenure = lower risk, the operators' rule of thumb), the lift curve, the future churn rate of
    targeted members, of members of flagged and of other circles, and of the whole base.

    >>> import pyarrow as pa, datetime as dt
    >>> from socialgraph.subscribers import subscribers_from_arrow, day_number
    >>> t = pa.table({"msisdn": [f"1380000{i:04d}" for i in range(4)],
    ...               "activation_date": pa.array([dt.date(2024, 1, 1)] * 4),
    ...               "churn_date": pa.array([dt.date(2026, 1, 10), None, None, None], pa.date32())})
    >>> s = subscribers_from_arrow(t)
    >>> scored = pd.DataFrame({"key": s.key, "churn_risk": [0.9, 0.1, 0.2, 0.3], "tenure_days": 700})
    >>> empty = pd.DataFrame({"key": pd.Series(dtype="int64"), "circle_id": pd.Series(dtype=object)})
    >>> r = backtest(s, scored, empty, empty, pd.DataFrame({"circle_id": [], "contagion": []}),
    ...              day_number(dt.date(2026, 1, 1)), 28)
    >>> r["auc"], r["base_future_churn"], r["horizon_days"]
    (1.0, 0.25, 10)
    """
    later = subs.churn_day[(subs.churn_day >= as_of_day) & (subs.churn_day < NEVER)]
    if later.size == 0:
        return None
    horizon = int(min(horizon_days, later.max() - as_of_day + 1))
    end = as_of_day + horizon
    churn_day = pd.Series(subs.churn_day, index=subs.key)

    def left(keys) -> np.ndarray:
        d = churn_day.reindex(np.asarray(keys, np.int64)).to_numpy(dtype=np.float64)
        return (d >= as_of_day) & (d < end)

    y = left(scored["key"])
    risk = scored["churn_risk"].to_numpy(np.float64)
    tenure_score = -scored["tenure_days"].to_numpy(np.float64)
    base = float(y.mean()) if y.size else float("nan")
    n = y.size
    curve_share, curve_lift, curve_tenure = [], [], []
    for share in LIFT_SHARES:
        if share * n >= 1:
            curve_share.append(share)
            curve_lift.append(round(lift_at(risk, y, share), 4))
            curve_tenure.append(round(lift_at(tenure_score, y, share), 4))

    on_net_targets = targets[targets["key"].isin(scored["key"])] if len(targets) else targets
    t_rate = float(left(on_net_targets["key"]).mean()) if len(on_net_targets) else float("nan")
    flagged_ids = set(circles.loc[circles["contagion"].astype(bool), "circle_id"]) if len(circles) else set()
    active = members[members["key"].isin(scored["key"])] if len(members) else members
    in_flagged = active["circle_id"].isin(flagged_ids) if len(active) else pd.Series(dtype=bool)
    flagged_keys = active.loc[in_flagged, "key"].unique() if len(active) else np.array([], np.int64)
    other_keys = np.setdiff1d(active["key"].unique(), flagged_keys) if len(active) else np.array([], np.int64)

    def rate(keys):
        return float(left(keys).mean()) if len(keys) else float("nan")

    def r4(x):
        return None if x is None or np.isnan(x) else round(float(x), 4)

    return {
        "horizon_days": horizon,
        "scored": int(n),
        "churned_after_as_of": int(y.sum()),
        "base_future_churn": r4(base),
        "auc": r4(auc(risk, y)),
        "lift_at_10": r4(lift_at(risk, y, 0.1)) if n else None,
        "tenure_only_auc": r4(auc(tenure_score, y)),
        "tenure_only_lift_at_10": r4(lift_at(tenure_score, y, 0.1)) if n else None,
        "lift_curve": {"share": curve_share, "lift": curve_lift, "tenure_only": curve_tenure},
        "targets": int(len(on_net_targets)),
        "targets_future_churn": r4(t_rate),
        "targets_lift": r4(t_rate / base) if base else None,
        "flagged_members_future_churn": r4(rate(flagged_keys)),
        "other_circle_members_future_churn": r4(rate(other_keys)),
    }

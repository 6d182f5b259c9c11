"""The subscriber table, normalised: number keys, dates as day numbers, defaults for optional
columns, and the questions later stages ask of it (who is active at a date, who churned when).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import NumberConfig
from .numbers import format_numbers, mask_number, number_keys

__all__ = ["Subscribers", "subscribers_from_arrow", "day_number"]

_EPOCH = dt.date(1970, 1, 1)
NEVER = np.iinfo(np.int32).max  # churn day of a subscriber who has not churned


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01."""
    return (d - _EPOCH).days


def _days(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.timestamp("s", tz=col.type.tz), safe=False).cast(pa.int64())
        vals = pc.fill_null(col, NEVER * 86400).to_numpy() // 86400
        return vals.astype(np.int64)
    col = col.cast(pa.date32()).cast(pa.int32())
    return pc.fill_null(col, NEVER).to_numpy().astype(np.int64)


class Subscribers:
    """Subscriber attributes aligned by row; ``key`` is the number key of each row.

    Attributes (numpy arrays): ``key``, ``activation_day``, ``churn_day`` (``NEVER`` if
    active), ``arpu``, ``balance``, ``vas_count``, ``dnd``, ``family_id``, ``vnet_id``,
    ``plan``, ``imei`` (object arrays, None where missing).
    """

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        for c in frame.columns:
            setattr(self, c, frame[c].to_numpy())

    def __len__(self) -> int:
        return len(self.frame)

    def active_at(self, day: int) -> np.ndarray:
        """Joined before ``day`` and not churned before it."""
        return (self.activation_day < day) & (self.churn_day >= day)

    def in_group(self) -> np.ndarray:
        """On a family plan or in a V-net."""
        return pd.notna(self.family_id) | pd.notna(self.vnet_id)


def subscribers_from_arrow(table: pa.Table, numbers: NumberConfig = NumberConfig()) -> Subscribers:
    """Normalise a subscriber table (contract columns; optional ones may be missing).

    Raises ``ValueError`` naming the problem for a bad or repeated msisdn.

    >>> t = pa.table({"msisdn": ["13800000001", "13800000002"],
    ...               "activation_date": pa.array([dt.date(2025, 1, 1)] * 2)})
    >>> s = subscribers_from_arrow(t)
    >>> len(s), s.vas_count.tolist(), bool(s.dnd.any())
    (2, [0, 0], False)
    """
    n = table.num_rows
    names = table.column_names
    keys = number_keys(table.column("msisdn"), numbers)
    uniq, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        first = mask_number(format_numbers(uniq[counts > 1][:1]).to_pylist()[0])
        raise ValueError(f"column 'msisdn': {int((counts > 1).sum())} number(s) appear more than once "
                         f"(e.g. {first}); keep one row per number")

    def col(name, default, kind):
        if name not in names:
            return np.full(n, default, dtype=kind)
        c = table.column(name)
        if kind is object:
            return np.array([None if v is None else str(v) for v in c.to_pylist()], dtype=object)
        return pc.fill_null(c.cast(pa.float64()), float(default)).to_numpy().astype(kind)

    frame = pd.DataFrame({
        "key": keys,
        "activation_day": _days(table.column("activation_date")),
        "churn_day": _days(table.column("churn_date")) if "churn_date" in names else np.full(n, NEVER, np.int64),
        "arpu": col("arpu", 0.0, np.float64),
        "balance": col("balance", 0.0, np.float64),
        "vas_count": col("vas_count", 0, np.int64),
        "dnd": col("dnd", 0, np.int64).astype(bool),
        "family_id": col("family_id", None, object),
        "vnet_id": col("vnet_id", None, object),
        "plan": col("plan", None, object),
        "imei": col("imei", None, object),
    })
    for c in ("family_id", "vnet_id", "plan", "imei"):  # keep None (pandas would make str + NaN)
        frame[c] = pd.Series(col(c, None, object), dtype=object)
    return Subscribers(frame)

"""Arrow columns from the simulation's integer arrays: numbers, padded ids and dates.

The simulation works on int64 arrays (numbers, person/household indices, day indices counted
from ``start_date``); these helpers turn them into the string and date columns of the
subscriber, truth and CDR tables, in one place so every table spells them the same way.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .config import COUNTRY_CODE


def _str(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Integers to an Arrow string array (``null`` marks missing values)."""
    arr = pa.array(np.asarray(values, dtype=np.int64), mask=null)
    return pc.cast(arr, pa.string())


def _ids(prefix: str, values: np.ndarray, null: np.ndarray | None = None, width: int = 6) -> pa.Array:
    """``prefix`` + zero-padded integers, e.g. ``H000042``."""
    s = pc.utf8_lpad(_str(values, null), width, "0")
    return pc.binary_join_element_wise(prefix, s, "")


def _dates(start: _dt.date, days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    base = np.datetime64(start.isoformat(), "D")
    values = base + np.asarray(days, dtype=np.int64).astype("timedelta64[D]")
    return pa.array(values, type=pa.date32(), mask=null)


def _formatted(rng: np.random.Generator, numbers: np.ndarray, share: float) -> pa.Array:
    """Numbers as strings, a ``share`` of them written with the country code."""
    s = _str(numbers)
    u = rng.random(numbers.size)
    plus = u < 0.75 * share
    zero = (u >= 0.75 * share) & (u < share)
    if plus.any():
        s = pc.if_else(pa.array(plus), pc.binary_join_element_wise("+" + COUNTRY_CODE, s, ""), s)
    if zero.any():
        s = pc.if_else(pa.array(zero), pc.binary_join_element_wise("00" + COUNTRY_CODE, s, ""), s)
    return s

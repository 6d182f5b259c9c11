"""Slow, obviously-correct oracles for the tests.

Everything here is plain Python over one row at a time, written from the contract and the
documented rules, never from the engine's code. Nothing here imports :mod:`socialgraph` except
the list of reason names and the tie-strength tunables (both are the documented interface).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict

import pandas as pd

from socialgraph.config import TieConfig
from socialgraph.ties import REASONS

ASCII_WHITESPACE = " \t\n\v\f\r"
DIGITS = "0123456789"
MAX_DIGITS = 17


# --------------------------------------------------------------------------- numbers


def _is_null(v) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def reference_normalize(value, country_code: str | None = None,
                        national_length: int | None = None) -> tuple[str | None, str]:
    """One raw number -> (digits or None, status) with status in
    ``ok, null_number, non_numeric_number, number_too_long``.

    Rules: strip ASCII whitespace (empty = null); a leading ``+``, or a leading ``00`` followed by
    something, marks an international number and is removed; what is left must be 1+ ASCII
    digits; the country code is removed when the number is international and starts with it,
    or when ``national_length`` is set, the number has ``len(cc) + national_length`` digits and
    starts with it (never leaving an empty number); more than 17 digits is too long.
    """
    if _is_null(value):
        return None, "null_number"
    s = str(value).strip(ASCII_WHITESPACE)
    if s == "":
        return None, "null_number"
    intl = False
    if s.startswith("+"):
        intl, s = True, s[1:]
    elif s.startswith("00") and len(s) > 2:
        intl, s = True, s[2:]
    if s == "" or any(c not in DIGITS for c in s):
        return None, "non_numeric_number"
    cc = country_code or ""
    if cc and len(s) > len(cc) and s.startswith(cc):
        if intl or (national_length and len(s) == len(cc) + national_length):
            s = s[len(cc):]
    if len(s) > MAX_DIGITS:
        return None, "number_too_long"
    return s, "ok"


def reference_key(digits: str) -> int:
    """The documented int64 key of a normalised number (order = string order)."""
    return int(digits.ljust(MAX_DIGITS, "0")) * 32 + len(digits)


def reference_prefix_lookup(numbers: list[str], prefixes: dict[str, str], default=None) -> list:
    out = []
    for n in numbers:
        best = None
        for p in prefixes:
            if n.startswith(p) and (best is None or len(p) > len(best)):
                best = p
        out.append(default if best is None else prefixes[best])
    return out


# --------------------------------------------------------------------------- CDR rows


def _ns(ts) -> int | None:
    """Epoch nanoseconds (UTC) of a timestamp; naive means UTC."""
    if _is_null(ts):
        return None
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return int(t.tz_convert("UTC").as_unit("ns").value)


def _day_ns(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86400 * 10**9


def _sort_key(v):
    """Ascending with nulls last."""
    return (1, 0) if _is_null(v) else (0, v)


def reference_rows(cdr: pd.DataFrame, as_of: dt.date, lookback_days: int,
                   country_code: str | None = None, national_length: int | None = None) -> pd.DataFrame:
    """Per input row: the quarantine reason (None = used) and, for used rows, the parsed event.

    ``cdr`` has contract column names (``cdr_id`` optional). A row gets the first reason in the
    order of ``REASONS``. Rows sharing a non-null ``cdr_id`` are one record: exactly one of them
    (the first without another fault by ``start_time, caller, callee, duration_s, event_type``,
    nulls last; the first of all when every copy has a fault) is the record, every other one
    is ``duplicate_cdr_id`` unless it has an earlier reason.
    """
    start_ns = _day_ns(as_of - dt.timedelta(days=lookback_days))
    end_ns = _day_ns(as_of)
    n = len(cdr)
    cols = {c: list(cdr[c]) for c in cdr.columns}
    has_id = "cdr_id" in cols

    def parse(i, dup):
        a, sa = reference_normalize(cols["caller"][i], country_code, national_length)
        b, sb = reference_normalize(cols["callee"][i], country_code, national_length)
        ns = _ns(cols["start_time"][i])
        et = cols["event_type"][i]
        et = None if _is_null(et) else str(et).strip().lower()
        d = cols["duration_s"][i]
        d = None if _is_null(d) or (isinstance(d, float) and not math.isfinite(d)) else math.floor(d)
        faults = {
            "null_number": "null_number" in (sa, sb),
            "non_numeric_number": "non_numeric_number" in (sa, sb),
            "number_too_long": "number_too_long" in (sa, sb),
            "null_timestamp": ns is None,
            "outside_window": ns is not None and not (start_ns <= ns < end_ns),
            "unknown_event_type": et not in ("voice", "sms"),
            "null_duration": d is None and et != "sms",
            "negative_duration": d is not None and d < 0,
            "self_call": a is not None and a == b,
            "duplicate_cdr_id": dup,
        }
        assert set(faults) == set(REASONS)
        reason = next((r for r in REASONS if faults[r]), None)
        return {"row": i, "reason": reason, "caller": a, "callee": b, "ns": ns,
                "event_type": et, "duration": d}

    # duplicates: decided among all rows carrying the same id; the record is the first copy
    # that has no other fault (so a garbled copy never displaces a good one), else the first
    dup = [False] * n
    if has_id:
        bad = [parse(i, False)["reason"] is not None for i in range(n)]
        by_id = defaultdict(list)
        for i, v in enumerate(cols["cdr_id"]):
            if not _is_null(v):
                by_id[str(v)].append(i)
        for rows in by_id.values():
            if len(rows) < 2:
                continue
            rows = sorted(rows, key=lambda i: (
                bad[i],
                _sort_key(_ns(cols["start_time"][i])),
                _sort_key(cols["caller"][i]), _sort_key(cols["callee"][i]),
                _sort_key(cols["duration_s"][i]), _sort_key(cols["event_type"][i]), i))
            for i in rows[1:]:
                dup[i] = True

    out = [parse(i, dup[i]) for i in range(n)]
    return pd.DataFrame(out, columns=["row", "reason", "caller", "callee", "ns", "event_type", "duration"])


def reference_quality(cdr: pd.DataFrame, as_of: dt.date, lookback_days: int,
                      country_code: str | None = None, national_length: int | None = None) -> dict:
    """Rows in, used, quarantined and quarantined per reason."""
    rows = reference_rows(cdr, as_of, lookback_days, country_code, national_length)
    by = {r: int((rows["reason"] == r).sum()) for r in REASONS}
    used = int(rows["reason"].isna().sum())
    return {
        "rows_in": len(rows),
        "rows_used": used,
        "rows_quarantined": sum(by.values()),
        "quarantined_by_reason": by,
    }


EDGE_COLUMNS = ["a", "b", "calls", "sms", "duration_s", "active_days", "reciprocal",
                "calls_ab", "calls_ba", "sms_ab", "sms_ba", "first_seen", "last_seen",
                "evening_weekend_share", "working_hours_share"]


def reference_edges(cdr: pd.DataFrame, as_of: dt.date, lookback_days: int,
                    country_code: str | None = None, national_length: int | None = None,
                    ties: TieConfig = TieConfig()) -> pd.DataFrame:
    """The undirected tie table of the used rows, sorted by ``(a, b)`` (digit strings, a < b).

    ``*_ab`` count events from ``a`` to ``b``; ``duration_s`` sums voice calls only;
    ``active_days`` counts distinct UTC dates; ``first_seen``/``last_seen`` are whole seconds;
    the two shares are fractions of all events of the pair (UTC hours, Monday = 0).
    """
    rows = reference_rows(cdr, as_of, lookback_days, country_code, national_length)
    used = rows[rows["reason"].isna()]
    agg: dict[tuple[str, str], dict] = {}
    for r in used.itertuples(index=False):
        a, b = (r.caller, r.callee) if r.caller < r.callee else (r.callee, r.caller)
        e = agg.setdefault((a, b), {"calls_ab": 0, "calls_ba": 0, "sms_ab": 0, "sms_ba": 0,
                                    "duration_s": 0, "days": set(), "secs": [],
                                    "ew": 0, "work": 0})
        forward = r.caller == a
        kind = "sms" if r.event_type == "sms" else "calls"
        e[f"{kind}_{'ab' if forward else 'ba'}"] += 1
        if kind == "calls":
            e["duration_s"] += int(r.duration)
        secs = r.ns // 10**9
        e["secs"].append(secs)
        when = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=secs)
        e["days"].add(when.date())
        weekend = when.weekday() in ties.weekend_days
        evening = when.hour >= ties.evening_start_hour or when.hour < ties.morning_end_hour
        e["ew"] += weekend or evening
        e["work"] += (not weekend) and ties.work_start_hour <= when.hour < ties.work_end_hour
    out = []
    for (a, b), e in sorted(agg.items()):
        events = e["calls_ab"] + e["calls_ba"] + e["sms_ab"] + e["sms_ba"]
        out.append({
            "a": a, "b": b,
            "calls": e["calls_ab"] + e["calls_ba"],
            "sms": e["sms_ab"] + e["sms_ba"],
            "duration_s": e["duration_s"],
            "active_days": len(e["days"]),
            "reciprocal": (e["calls_ab"] + e["sms_ab"]) > 0 and (e["calls_ba"] + e["sms_ba"]) > 0,
            "calls_ab": e["calls_ab"], "calls_ba": e["calls_ba"],
            "sms_ab": e["sms_ab"], "sms_ba": e["sms_ba"],
            "first_seen": min(e["secs"]), "last_seen": max(e["secs"]),
            "evening_weekend_share": e["ew"] / events,
            "working_hours_share": e["work"] / events,
        })
    return pd.DataFrame(out, columns=EDGE_COLUMNS)


def reference_weight(calls_ab: int, calls_ba: int, sms_ab: int, sms_ba: int, duration_s: int,
                     active_days: int, ties: TieConfig = TieConfig()) -> float:
    """Tie strength as documented on :class:`socialgraph.config.TieConfig`.

    The reciprocity factor is ``one_way_factor`` for a one-way tie and rises linearly to 1 with
    the balance ``min(out, in) / max(out, in)`` of events in the two directions.
    """
    out, inn = calls_ab + sms_ab, calls_ba + sms_ba
    intensity = (ties.w_calls * math.log1p(calls_ab + calls_ba)
                 + ties.w_sms * math.log1p(sms_ab + sms_ba)
                 + ties.w_duration * math.log1p(duration_s / 60.0)
                 + ties.w_days * math.log1p(active_days))
    balance = min(out, inn) / max(out, inn) if max(out, inn) else 0.0
    return intensity * (ties.one_way_factor + (1 - ties.one_way_factor) * balance)


def reference_service_hubs(pairs: list[tuple[int, int]], out_ab: list[int], out_ba: list[int],
                           ties: TieConfig = TieConfig()) -> set[int]:
    """Nodes reached by >= hub_min_contacts distinct numbers that answer at most
    hub_max_reply_share of them."""
    reached_by = defaultdict(set)
    answered = defaultdict(set)
    for (u, v), fwd, back in zip(pairs, out_ab, out_ba):
        if fwd > 0:
            reached_by[v].add(u)
        if back > 0:
            reached_by[u].add(v)
        if fwd > 0 and back > 0:
            answered[u].add(v)
            answered[v].add(u)
    return {n for n, s in reached_by.items()
            if len(s) >= ties.hub_min_contacts
            and len(answered[n] & s) <= ties.hub_max_reply_share * len(s)}


# --------------------------------------------------------------------------- comparison


def assert_edges_equal_reference(edges, ref: pd.DataFrame, ties: TieConfig = TieConfig(),
                                 check_weight: bool = True) -> None:
    """Compare an ``edges.parquet`` table (pyarrow or pandas) with :func:`reference_edges`."""
    import numpy as np

    got = edges.to_pandas() if hasattr(edges, "to_pandas") else edges.copy()
    assert list(got["a"]) == list(ref["a"]), "pairs differ"
    assert list(got["b"]) == list(ref["b"]), "pairs differ"
    for c in ("calls", "sms", "duration_s", "active_days", "calls_ab", "calls_ba", "sms_ab", "sms_ba"):
        if c in got.columns:
            assert [int(x) for x in got[c]] == [int(x) for x in ref[c]], c
    assert [bool(x) for x in got["reciprocal"]] == [bool(x) for x in ref["reciprocal"]]
    for c in ("first_seen", "last_seen"):
        if c in got.columns:
            secs = [int(pd.Timestamp(x).as_unit("ns").value) // 10**9 for x in got[c]]
            assert secs == [int(x) for x in ref[c]], c
    for c in ("evening_weekend_share", "working_hours_share"):
        if c in got.columns:
            np.testing.assert_allclose(got[c].to_numpy(float), ref[c].to_numpy(float), rtol=1e-12, err_msg=c)
    if check_weight:
        want = [reference_weight(r.calls_ab, r.calls_ba, r.sms_ab, r.sms_ba, r.duration_s,
                                 r.active_days, ties) for r in ref.itertuples()]
        hubs = reference_service_hubs(list(zip(ref["a"], ref["b"])),
                                      list(ref["calls_ab"] + ref["sms_ab"]),
                                      list(ref["calls_ba"] + ref["sms_ba"]), ties)
        touches = np.array([a in hubs or b in hubs for a, b in zip(ref["a"], ref["b"])], dtype=bool)
        if "service_hub" in got.columns:
            assert got["service_hub"].to_numpy(bool).tolist() == touches.tolist(), "service_hub"
        want = np.where(touches, 0.0, np.array(want, dtype=float))
        np.testing.assert_allclose(got["weight"].to_numpy(float), want, rtol=1e-12, atol=0)

"""Real interaction data as test fixtures: the Copenhagen Networks Study (CNS) calls and SMS.

The data lives outside the repository, in ``shared/realdata`` next to the checkout (see its
README: Sapiezynski et al., Scientific Data 6:315, 2019, CC BY 4.0). Everything here converts it
the way a user would to the CDR contract; nothing imports the engine's cleaning code, so the
tests compare the engine with an independent reading of the raw files.

Nothing is read at import time: pytest imports this module for doctests even when the data is
absent, and the tests skip (never fail) through :func:`cns_dir` then.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
CNS = REALDATA / "copenhagen_cns"
EU_CORE = REALDATA / "email_eu_core"

#: The study ran in autumn 2013; ``timestamp`` counts seconds from this (a Monday, 00:00 UTC).
STUDY_START = dt.datetime(2013, 9, 2)
#: The 28 days of the study are exactly the analysis window [as_of - 28 days, as_of).
AS_OF = dt.date(2013, 9, 30)
LOOKBACK_DAYS = 28

CDR_SCHEMA = pa.schema([
    ("caller", pa.string()),
    ("callee", pa.string()),
    ("start_time", pa.timestamp("s")),
    ("duration_s", pa.int64()),
    ("event_type", pa.string()),
    ("cdr_id", pa.string()),
])


def cns_dir() -> Path:
    """The CNS folder; skips the calling test with the reason when the data is not there."""
    files = [CNS / n for n in ("calls.csv", "sms.csv", "fb_friends.csv")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        pytest.skip(f"real data not found: {', '.join(missing)} missing in {CNS} (the "
                    f"shared/realdata folder is expected next to the repository checkout)")
    return CNS


def read_cns_calls() -> pd.DataFrame:
    """``calls.csv`` as read from disk: ``timestamp, from, to, duration`` (int64)."""
    return pd.read_csv(cns_dir() / "calls.csv", dtype="int64")


def read_cns_sms() -> pd.DataFrame:
    """``sms.csv`` as read from disk: ``timestamp, from, to`` (int64)."""
    return pd.read_csv(cns_dir() / "sms.csv", dtype="int64")


def cns_number(uid) -> str:
    """A plausible 10-digit number for a CNS participant id.

    >>> cns_number(7), cns_number(846)
    ('4520000007', '4520000846')
    """
    return f"4520{int(uid):06d}"


def _numbers(uids: pd.Series) -> list[str]:
    return [cns_number(u) for u in uids]


def _row_ids(kind: str, frame: pd.DataFrame) -> list[str]:
    """An id per source row from its fields: exact duplicate rows share it, others never do."""
    fields = zip(*(frame[c].astype(str) for c in frame.columns))
    return [f"{kind}-" + hashlib.blake2b(",".join((kind, *row)).encode(), digest_size=8).hexdigest()
            for row in fields]


def cns_cdr_table() -> pa.Table:
    """CNS calls + SMS in the CDR contract, ordered by time (stable), one row per source row.

    ``duration`` -1 (a missed call) becomes a 0-second voice event: it is still contact. Any
    other duration is kept as it is, so a bad value would reach the engine's checks.
    """
    calls = read_cns_calls()
    sms = read_cns_sms()
    start = pd.Timestamp(STUDY_START)
    voice = pd.DataFrame({
        "caller": _numbers(calls["from"]),
        "callee": _numbers(calls["to"]),
        "start_time": start + pd.to_timedelta(calls["timestamp"], unit="s"),
        "duration_s": np.where(calls["duration"] == -1, 0, calls["duration"]).astype(np.int64),
        "event_type": "voice",
        "cdr_id": _row_ids("voice", calls),
    })
    text = pd.DataFrame({
        "caller": _numbers(sms["from"]),
        "callee": _numbers(sms["to"]),
        "start_time": start + pd.to_timedelta(sms["timestamp"], unit="s"),
        "duration_s": np.zeros(len(sms), np.int64),
        "event_type": "sms",
        "cdr_id": _row_ids("sms", sms),
    })
    cdr = pd.concat([voice, text], ignore_index=True)
    cdr = cdr.sort_values("start_time", kind="stable", ignore_index=True)
    cdr["start_time"] = cdr["start_time"].astype("datetime64[s]")
    return pa.Table.from_pandas(cdr, schema=CDR_SCHEMA, preserve_index=False)


def fb_friend_pairs() -> set[tuple[str, str]]:
    """Facebook friendships as ``(number_a, number_b)`` with ``a < b``.

    The file lists each friendship once in either orientation; its few ``user_a == user_b``
    rows are not friendships between two people and are left out.
    """
    fb = pd.read_csv(cns_dir() / "fb_friends.csv", dtype="int64")
    pairs = set()
    for u, v in zip(fb["user_a"], fb["user_b"]):
        if u != v:
            a, b = cns_number(u), cns_number(v)
            pairs.add((a, b) if a < b else (b, a))
    return pairs


def fb_users() -> set[str]:
    """Numbers of the participants with at least one Facebook friendship in the file."""
    return {n for pair in fb_friend_pairs() for n in pair}


def roc_auc(scores, labels) -> float:
    """Rank-based ROC AUC (Mann-Whitney U / (n_pos * n_neg)); tied scores count one half.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    >>> roc_auc([1, 1, 2], [True, False, True])
    0.75
    """
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def read_eu_core() -> tuple[pd.DataFrame, pd.Series]:
    """SNAP email-Eu-core: directed e-mail edges ``src, dst`` (self-loops dropped) and each
    person's department (index: person). Skips the calling test when the files are absent."""
    files = [EU_CORE / n for n in ("email-Eu-core.txt", "email-Eu-core-department-labels.txt")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        pytest.skip(f"real data not found: {', '.join(missing)} missing in {EU_CORE}")
    edges = pd.read_csv(files[0], sep=" ", header=None, names=["src", "dst"], dtype="int64")
    labels = pd.read_csv(files[1], sep=" ", header=None, names=["person", "department"], dtype="int64")
    return edges[edges["src"] != edges["dst"]].reset_index(drop=True), labels.set_index("person")["department"]

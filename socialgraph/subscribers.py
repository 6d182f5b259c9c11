"""The subscriber table, normalised: number keys, dates as day numbers, defaults for optional
columns, and the questions later stages ask of it (who is active at a date, who churned when).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import NumberConfig
from .numbers import format_numbers, mask_number, number_keys
from .schema import blank_as_null, is_text, number_text

if TYPE_CHECKING:
    from .graph import CallGraph

__all__ = ["Subscribers", "subscribers_from_arrow", "subscriber_quality", "day_number", "active_after_churn"]

_EPOCH = dt.date(1970, 1, 1)
NEVER = np.iinfo(np.int32).max  # churn day of a subscriber who has not churned


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01."""
    return (d - _EPOCH).days


_ISO_DATE = r"^\d{4}-\d{2}-\d{2}([T ].*)?$"


def dates_from_text(col, name: str) -> pa.Array:
    """ISO dates written as text (``2024-01-05``, or with a time after it, as CRM extracts
    write them) as ``date32``; an empty value is null. Any other text is refused, naming the
    column and an example: ``05/01/2024`` could be either of two days.

    >>> dates_from_text(pa.chunked_array([["2024-01-05", " 2024-02-29 00:00:00", "", None]]), "x").to_pylist()
    [datetime.date(2024, 1, 5), datetime.date(2024, 2, 29), None, None]
    >>> dates_from_text(pa.chunked_array([["2024-01-05", "05/01/2024", "2024-02-30"]]), "activation_date")
    Traceback (most recent call last):
    ...
    ValueError: column 'activation_date': 2 value(s) are not ISO dates (YYYY-MM-DD), e.g. '05/01/2024'
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    text = pc.utf8_trim_whitespace(col.cast(pa.string()))
    given = blank_as_null(text).is_valid()
    head = pc.if_else(pc.fill_null(pc.match_substring_regex(text, _ISO_DATE), False),
                      pc.utf8_slice_codeunits(text, 0, 10), pa.scalar(None, pa.string()))
    try:  # Arrow's cast refuses an impossible day (2024-02-30), where its strptime rolls it over
        dates = head.cast(pa.date32())
    except pa.ArrowInvalid:
        dates = pa.array([_iso_date(v) for v in head.to_pylist()], pa.date32())
    bad = pc.and_(given, dates.is_null())
    n_bad = pc.sum(bad).as_py() or 0
    if n_bad:
        example = pc.filter(text, bad)[0].as_py()
        raise ValueError(f"column {name!r}: {n_bad} value(s) are not ISO dates (YYYY-MM-DD), e.g. {example[:30]!r}")
    return dates


def _iso_date(v: str | None) -> dt.date | None:
    try:
        return None if v is None else dt.date.fromisoformat(v)
    except ValueError:
        return None


def _days(col: pa.ChunkedArray, name: str = "date") -> np.ndarray:
    if is_text(col.type):
        col = dates_from_text(col, name)
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
    ``plan``, ``imei`` (object arrays, None where missing). ``issues`` counts rows with
    doubtful dates (see :func:`subscribers_from_arrow`).
    """

    def __init__(self, frame: pd.DataFrame, issues: dict[str, int] | None = None):
        self.frame = frame
        self.issues = dict(issues or {})
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


#: text values of ``dnd`` (any case, surrounding spaces ignored): opted out, and not
DND_TEXT = {True: ("y", "yes", "true", "t", "1"), False: ("n", "no", "false", "f", "0")}


def dnd_from_text(column) -> tuple[pa.ChunkedArray, dict[str, int]]:
    """A text ``dnd`` column as booleans by :data:`DND_TEXT`. Any other text (``""``,
    ``"?"``) counts as opted out, whatever ``privacy.contact_unknown_dnd`` says of a missing
    value: a flag the job cannot read must not put someone on a contact list. Null stays
    null (missing). Returns the column and the values not read with their counts.

    >>> flags, unread = dnd_from_text(pa.chunked_array([["Y", " n ", "YES", "", "maybe", None, "0"]]))
    >>> flags.to_pylist(), unread
    ([True, False, True, True, True, None, False], {'': 1, 'maybe': 1})
    >>> unread_dnd_message(unread)
    "2 subscriber(s) have a dnd value the job does not read ('' 1, 'maybe' 1): kept off the contact lists; as text, dnd reads Y/N, yes/no, true/false, t/f and 1/0"
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    norm = pc.utf8_lower(pc.utf8_trim_whitespace(column.cast(pa.string())))
    yes = pc.is_in(norm, pa.array(DND_TEXT[True]))
    no = pc.is_in(norm, pa.array(DND_TEXT[False]))
    flags = pc.if_else(column.is_valid(), pc.invert(no), pa.scalar(None, pa.bool_()))
    unread = pc.filter(column, pc.and_(column.is_valid(), pc.invert(pc.or_(yes, no))))
    counts = {d["values"]: d["counts"] for d in pc.value_counts(unread).to_pylist()}
    return pa.chunked_array([flags]), dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def unread_dnd_message(unread: dict[str, int]) -> str:
    """The warning for text ``dnd`` values that do not read (:func:`dnd_from_text`)."""
    shown = ", ".join(f"{v[:20]!r} {c:,}" for v, c in list(unread.items())[:3])
    return (f"{sum(unread.values()):,} subscriber(s) have a dnd value the job does not read ({shown}): kept off the "
            "contact lists; as text, dnd reads Y/N, yes/no, true/false, t/f and 1/0")


def null_dnd_message(count: int, contact_unknown: bool) -> str:
    """The warning for subscribers without a ``dnd`` value (``privacy.contact_unknown_dnd``)."""
    return (f"{count:,} subscriber(s) have no dnd value: "
            + ("listed as contactable (privacy.contact_unknown_dnd)" if contact_unknown
               else "kept off the contact lists (privacy.contact_unknown_dnd: true would list them)"))


def subscribers_from_arrow(table: pa.Table, numbers: NumberConfig = NumberConfig(),
                           unknown_dnd: bool = True) -> Subscribers:
    """Normalise a subscriber table (contract columns; optional ones may be missing).

    Raises ``ValueError`` naming the problem for a bad or repeated msisdn. Doubtful dates are
    kept as given and counted in ``issues``: a churn date before the activation date (which
    of the two is wrong cannot be told; such a number is never active) and a missing
    activation date (never active either).

    A ``dnd`` column with a missing value says nothing about consent: such a subscriber
    counts as opted out (``unknown_dnd``, the default; a lost flag must not put someone who
    said no on a contact list), and ``issues["null_dnd"]`` counts them. Without a ``dnd``
    column nobody has opted out. A text ``dnd`` (a BSS extract's ``Y``/``N``) reads by
    :data:`DND_TEXT`; any other text counts as opted out, and ``issues["unread_dnd"]`` holds
    those values and their counts (a flag, not personal data).

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
            return _strings(c)
        if is_text(c.type):  # a CSV export's: a plain number, or empty for none
            if pa.types.is_dictionary(c.type):
                c = c.cast(c.type.value_type)
            read = number_text(c)
            given = blank_as_null(c).is_valid()
            bad = pc.and_(given, read.is_null())
            if n_bad := pc.sum(bad).as_py():
                example = pc.filter(c, bad)[0].as_py()
                raise ValueError(f"column {name!r}: {n_bad} value(s) are not numbers, e.g. {example[:20]!r}")
            c = read
        return pc.fill_null(c.cast(pa.float64()), float(default)).to_numpy().astype(kind)

    unread_dnd: dict[str, int] = {}
    if "dnd" in names and is_text(table.column("dnd").type):
        dnd, unread_dnd = dnd_from_text(table.column("dnd"))
        table = table.set_column(names.index("dnd"), "dnd", dnd)
    activation = _days(table.column("activation_date"), "activation_date")
    churn = _days(table.column("churn_date"), "churn_date") if "churn_date" in names else np.full(n, NEVER, np.int64)
    issues = {"null_activation_date": int((activation == NEVER).sum()),
              "churn_before_activation": int((churn < activation).sum()),
              "null_dnd": int(table.column("dnd").null_count) if "dnd" in names else 0,
              "unread_dnd": unread_dnd}
    frame = pd.DataFrame({
        "key": keys,
        "activation_day": activation,
        "churn_day": churn,
        "arpu": col("arpu", 0.0, np.float64),
        "balance": col("balance", 0.0, np.float64),
        "vas_count": col("vas_count", 0, np.int64),
        "dnd": (col("dnd", int(unknown_dnd), np.int64) if "dnd" in names else np.zeros(n, np.int64)).astype(bool),
        # object Series keep None (pandas would make str + NaN from a plain array)
        **{c: pd.Series(col(c, None, object), dtype=object, copy=False)
           for c in ("family_id", "vnet_id", "plan", "imei")},
    })
    return Subscribers(frame, issues)


def _strings(column) -> np.ndarray:
    """A string column as an object array of ``str`` (None where missing).

    Columns of few distinct values (plan, family and V-net ids) share one ``str`` object per
    value: at 5M subscribers a plan column of separate objects took 0.38 GiB, shared 0.09.

    A blank value is missing too: a CSV export writes a subscriber without a family plan as
    an empty cell, and ``""`` must not make all of them one family.

    >>> _strings(pa.chunked_array([["a", None, "a", "", " "]])).tolist()
    ['a', None, 'a', None, None]
    """
    t = column.type
    c = column if pa.types.is_string(t) or pa.types.is_large_string(t) else column.cast(pa.string())
    c = c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c
    c = blank_as_null(c)
    n = len(c)
    if n == 0:
        return np.empty(0, object)
    enc = pc.dictionary_encode(c)
    if len(enc.dictionary) * 2 > n:  # mostly distinct (IMEIs): no sharing to gain
        return c.to_numpy(zero_copy_only=False).astype(object, copy=False)
    values = np.array(enc.dictionary.to_pylist() + [None], dtype=object)
    idx = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
    return values[idx]


def subscriber_quality(subs: Subscribers, as_of_day: int, today_day: int) -> dict[str, int]:
    """Counts of doubtful subscriber rows, for ``quality.json`` (none of them stops a run).

    ``activation_after_as_of`` are numbers that join after the analysis date (normal when a
    run looks back: they are not scored); ``activation_in_future`` join after ``today_day``,
    which no real number does (a date error; they are never active); ``churn_before_activation``
    , ``null_activation_date`` and ``null_dnd`` as in :func:`subscribers_from_arrow`.

    >>> t = pa.table({"msisdn": ["13800000001", "13800000002", "13800000003"],
    ...               "activation_date": pa.array([dt.date(2025, 1, 1), dt.date(2099, 1, 1), dt.date(2025, 6, 1)]),
    ...               "churn_date": pa.array([None, None, dt.date(2025, 2, 1)], pa.date32())})
    >>> q = subscriber_quality(subscribers_from_arrow(t), day_number(dt.date(2026, 5, 1)), day_number(dt.date(2026, 6, 1)))
    >>> q["rows"], q["active_at_as_of"], q["activation_in_future"], q["churn_before_activation"]
    (3, 1, 1, 1)
    """
    known = subs.activation_day != NEVER
    return {
        "rows": len(subs),
        "active_at_as_of": int(subs.active_at(as_of_day).sum()),
        "activation_after_as_of": int((known & (subs.activation_day >= as_of_day)).sum()),
        "activation_in_future": int((known & (subs.activation_day > today_day)).sum()),
        "null_activation_date": int(subs.issues.get("null_activation_date", 0)),
        "churn_before_activation": int(subs.issues.get("churn_before_activation", 0)),
        "null_dnd": int(subs.issues.get("null_dnd", 0)),
    }


def active_after_churn(subs: Subscribers, graph: CallGraph, as_of_day: int, grace_days: int = 1) -> int:
    """How many subscribers who churned before ``as_of_day`` still have CDRs more than
    ``grace_days`` after their churn date (their last event: the latest ``last_day`` over
    their ties in ``graph``, :meth:`~socialgraph.graph.CallGraph.node_max`).

    A number cannot call after it left: these are recycled numbers (reissued to someone new
    while the subscriber table still holds the old owner's churn) or stale churn dates. The
    job still treats them as churned, so their later ties count for a person who left; a
    count above a handful says the subscriber extract and the CDRs disagree.

    >>> from socialgraph.graph import build_call_graph
    >>> t = pa.table({"msisdn": ["13800000001", "13800000002", "13800000003"],
    ...               "activation_date": pa.array([dt.date(2025, 1, 1)] * 3),
    ...               "churn_date": pa.array([dt.date(2026, 3, 1), dt.date(2026, 3, 1), None])})
    >>> subs = subscribers_from_arrow(t)
    >>> k1, k2, k3 = subs.key.tolist()
    >>> d = day_number(dt.date(2026, 3, 1))
    >>> # last events: the first number 1 day after its churn (within grace), the second 5 days
    >>> g = build_call_graph(np.array([k1, k2]), np.array([k3, k3]), np.ones(2), on_net_keys=subs.key,
    ...                      tie_arrays={"last_day": np.array([d + 1, d + 5])})
    >>> active_after_churn(subs, g, d + 30)
    1
    """
    churned = np.flatnonzero(subs.churn_day < as_of_day)
    if not churned.size or not graph.n_nodes:
        return 0
    node = graph.ids_of(subs.key[churned])
    last = graph.node_max("last_day")[np.maximum(node, 0)]
    return int(((node >= 0) & (last > subs.churn_day[churned] + grace_days)).sum())

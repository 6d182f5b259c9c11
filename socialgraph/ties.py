"""CDR rows -> per-pair partial aggregates -> combined ties -> tie strength.

Every function here is pure and works on one partition's worth of data; :mod:`pipelines`
maps them over Dask partitions and combines. The flow for one partition::

    clean = clean_events(table, window, numbers)          # reasons for every row
    part = aggregate_events(clean, window, ties)           # one row per undirected pair
    edges = finalize_edges(combine_partials([part, ...]))  # after the shuffle

A pair is stored with ``a < b`` (number keys, whose order is the order of the digit strings);
``*_ab`` columns count events from ``a`` to ``b``. Distinct active days are kept as a bitmask
of the analysis window, so partials combine exactly with a bitwise OR, whatever the number of
partitions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import NumberConfig, TieConfig
from .kernels import ties as _k
from .numbers import normalize_numbers

__all__ = [
    "REASONS",
    "Window",
    "CleanEvents",
    "clean_events",
    "aggregate_events",
    "combine_partials",
    "split_partial",
    "PairPartial",
    "empty_partial",
    "range_boundaries",
    "finalize_edges",
    "service_hub_mask",
    "tie_strength",
    "partial_columns",
    "weigh_edges",
    "activity_block_masks",
    "node_contact_stats",
    "hub_keys",
    "apply_weights",
    "edges_to_arrow",
]

#: Reasons a CDR row is quarantined, in the order they are checked (a row gets the first).
REASONS = (
    "null_number",
    "non_numeric_number",
    "number_too_long",
    "null_timestamp",
    "outside_window",
    "unknown_event_type",
    "null_duration",
    "negative_duration",
    "self_call",
    "duplicate_cdr_id",
)
_CODE = {r: i + 1 for i, r in enumerate(REASONS)}
_NUMBER_REASON = np.array([0, _CODE["null_number"], _CODE["non_numeric_number"], _CODE["number_too_long"]], dtype=np.int8)
DUPLICATE = _CODE["duplicate_cdr_id"]

_SCALARS = ("calls_ab", "calls_ba", "sms_ab", "sms_ba", "duration_s", "first_ts", "last_ts",
            "n_evening_weekend", "n_working")


def partial_columns(n_words: int) -> list[str]:
    """Column names of a partial aggregate with ``n_words`` day-bitmask words."""
    return ["a", "b", *_SCALARS, *(f"days_{i}" for i in range(n_words))]


@dataclass(frozen=True)
class Window:
    """The analysis window ``[as_of - lookback_days, as_of)`` in local calendar days.

    >>> w = Window(dt.date(2026, 3, 1), 31)
    >>> w.start_date, w.n_words, w.end_utc - w.start_utc == 31 * 86400
    (datetime.date(2026, 1, 29), 1, True)
    """

    as_of: dt.date
    lookback_days: int
    timezone: str = "UTC"

    @property
    def start_date(self) -> dt.date:
        return self.as_of - dt.timedelta(days=self.lookback_days)

    def _utc(self, day: dt.date) -> int:
        local = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(self.timezone))
        return int(local.timestamp())

    @cached_property
    def start_utc(self) -> int:
        return self._utc(self.start_date)

    @cached_property
    def end_utc(self) -> int:
        return self._utc(self.as_of)

    @property
    def local_start(self) -> int:
        """The window start as naive local epoch seconds (for day and hour arithmetic)."""
        return int((self.start_date - dt.date(1970, 1, 1)).days) * 86400

    @property
    def n_words(self) -> int:
        return (self.lookback_days + 63) // 64


@dataclass
class CleanEvents:
    """One partition after validation.

    ``reason`` has one code per input row (0 = used, else ``REASONS[code-1]``); the other
    arrays hold the used rows only.
    """

    reason: np.ndarray
    a: np.ndarray
    b: np.ndarray
    reverse: np.ndarray  # the caller is b
    is_sms: np.ndarray
    duration: np.ndarray
    ts: np.ndarray  # UTC epoch seconds

    def counts(self) -> dict[str, int]:
        """Rows per outcome: ``{"used": n, reason: n, ...}`` (every reason present)."""
        c = np.bincount(self.reason, minlength=len(REASONS) + 1)
        return {"used": int(c[0]), **{r: int(c[i + 1]) for i, r in enumerate(REASONS)}}


def _column(table: pa.Table, name: str) -> pa.ChunkedArray | None:
    return table.column(name) if name in table.column_names else None


def _timestamps(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_date(col.type):
        col = pc.cast(col, pa.timestamp("s"))
    if not pa.types.is_timestamp(col.type):
        raise TypeError(f"start_time must be a timestamp, got {col.type}")
    if col.type.unit != "s":
        col = pc.cast(col, pa.timestamp("s", tz=col.type.tz), safe=False)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    secs = pc.fill_null(col.cast(pa.int64()), 0).to_numpy()
    return secs, valid


def _event_types(col: pa.ChunkedArray | None, n: int, voice: tuple[str, ...] = ("voice",),
                 sms: tuple[str, ...] = ("sms",)) -> tuple[np.ndarray, np.ndarray]:
    """(known, is_sms) per row: the value, trimmed and in lower case, is one of ``voice`` / ``sms``."""
    if col is None:
        raise TypeError("event_type column is missing")
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    norm = pc.utf8_lower(pc.utf8_trim_whitespace(col))

    def among(values):
        values = sorted({v.strip().lower() for v in values})
        if len(values) == 1:  # the usual case: a comparison costs less than a hash-set look-up
            hit = pc.equal(norm, values[0])
        else:
            hit = pc.is_in(norm, value_set=pa.array(values, norm.type))
        return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)

    is_voice, is_sms = among(voice), among(sms)
    return is_voice | is_sms, is_sms


def _durations(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise TypeError(f"duration_s must be an integer, got {col.type}")
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_floating(col.type):
        vals = pc.fill_null(col, 0.0).to_numpy()
        valid &= np.isfinite(vals)
        dur = np.where(valid, np.floor(vals), 0).astype(np.int64)
    else:
        dur = pc.fill_null(col.cast(pa.int64()), 0).to_numpy()
    return dur, valid


def clean_events(table: pa.Table, window: Window, numbers: NumberConfig = NumberConfig(),
                 duplicate: np.ndarray | None = None,
                 event_types: tuple[tuple[str, ...], tuple[str, ...]] = (("voice",), ("sms",))) -> CleanEvents:
    """Validate and normalise one batch of CDR rows (contract column names).

    Parameters
    ----------
    table : pyarrow.Table with ``caller, callee, start_time, duration_s, event_type``
    window : Window of the analysis
    numbers : NumberConfig for normalisation
    duplicate : optional bool array, True for rows that are a repeat of a ``cdr_id`` kept elsewhere
    event_types : the ``event_type`` values of a voice call and of an SMS (any case; the job's
        ``ingest.voice_types`` / ``ingest.sms_types``)

    Examples
    --------
    >>> t = pa.table({"caller": ["111", "222", "x", "111"], "callee": ["222", "111", "333", "111"],
    ...     "start_time": pa.array([dt.datetime(2026, 1, 2, 10)] * 4, pa.timestamp("s")),
    ...     "duration_s": [60, 30, 5, 5], "event_type": ["voice", "sms", "voice", "voice"]})
    >>> c = clean_events(t, Window(dt.date(2026, 1, 3), 7))
    >>> c.counts()["used"], c.counts()["non_numeric_number"], c.counts()["self_call"]
    (2, 1, 1)
    >>> c.reverse.tolist(), c.is_sms.tolist()
    ([False, True], [False, True])
    """
    n = table.num_rows
    caller, s_caller = normalize_numbers(table.column("caller"), numbers)
    callee, s_callee = normalize_numbers(table.column("callee"), numbers)
    r_caller = _NUMBER_REASON[s_caller]
    r_callee = _NUMBER_REASON[s_callee]
    # The earlier reason in REASONS wins, whichever side has it (codes follow that order).
    reason = np.where((r_caller == 0) | ((r_callee != 0) & (r_callee < r_caller)), r_callee, r_caller)

    ts, ts_valid = _timestamps(table.column("start_time"))
    known, is_sms = _event_types(_column(table, "event_type"), n, *event_types)
    dur, dur_valid = _durations(table.column("duration_s"))
    in_window = (ts >= window.start_utc) & (ts < window.end_utc)

    # Later checks only fill rows still unflagged, so each row keeps its first reason.
    for code, bad in (
        (_CODE["null_timestamp"], ~ts_valid),
        (_CODE["outside_window"], ~in_window),
        (_CODE["unknown_event_type"], ~known),
        # an SMS has no duration: a null there (exports often leave it empty) reads as 0
        (_CODE["null_duration"], ~dur_valid & ~is_sms),
        (_CODE["negative_duration"], dur < 0),
        (_CODE["self_call"], caller == callee),
        (DUPLICATE, duplicate if duplicate is not None else np.zeros(n, bool)),
    ):
        reason = np.where((reason == 0) & bad, np.int8(code), reason)
    reason = reason.astype(np.int8)

    ok = reason == 0
    ca, cb = caller[ok], callee[ok]
    reverse = ca > cb
    return CleanEvents(
        reason=reason,
        a=np.where(reverse, cb, ca),
        b=np.where(reverse, ca, cb),
        reverse=reverse,
        is_sms=is_sms[ok],
        duration=dur[ok],
        ts=ts[ok],
    )


def _local_seconds(ts: np.ndarray, timezone: str) -> np.ndarray:
    if timezone == "UTC" or ts.size == 0:
        return ts
    aware = pa.array(ts, type=pa.timestamp("s", tz=timezone))
    return pc.local_timestamp(aware).cast(pa.int64()).to_numpy()


def _group_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense group id per row (first-appearance order), and the (a, b) of each group."""
    a = np.ascontiguousarray(a, np.int64)
    b = np.ascontiguousarray(b, np.int64)
    n = a.size
    group, ga, gb = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    ng = _k._group_pairs(a, b, np.empty((_k.table_capacity(n), 3), np.int64), group, ga, gb)
    return group, ga[:ng].copy(), gb[:ng].copy()


@dataclass(frozen=True)
class PairPartial:
    """Partial aggregates of pairs ``a < b`` over part of the CDRs.

    Three row-aligned blocks (see :mod:`socialgraph.kernels.ties`): ``counts`` int32
    ``(n, 8)``, ``duration`` int64 ``(n,)``, ``days`` int64 ``(n, n_words)``. Compact (72 bytes a
    pair for a 128-day window) and plain arrays, so a partial pickles between Dask workers
    without pandas overhead. ``t0`` is the window start (UTC seconds) that times count from.
    """

    a: np.ndarray
    b: np.ndarray
    counts: np.ndarray
    duration: np.ndarray
    days: np.ndarray
    t0: int

    def __len__(self) -> int:
        return int(self.a.size)

    @property
    def n_words(self) -> int:
        return int(self.days.shape[1])

    def take(self, idx) -> "PairPartial":
        if isinstance(idx, slice):
            return PairPartial(self.a[idx], self.b[idx], self.counts[idx], self.duration[idx],
                               self.days[idx], self.t0)
        # np.take along axis 0 copies whole rows; fancy indexing of the 2-D blocks goes element
        # by element and was 4x slower (the bucket split of a 1.3M-pair partial: 166 -> 50 ms)
        return PairPartial(np.take(self.a, idx), np.take(self.b, idx), np.take(self.counts, idx, axis=0),
                           np.take(self.duration, idx), np.take(self.days, idx, axis=0), self.t0)

    def to_frame(self) -> pd.DataFrame:
        """The partial as a DataFrame with :func:`partial_columns` (tests and debugging)."""
        c = self.counts.astype(np.int64)
        data = {
            "a": self.a, "b": self.b,
            "calls_ab": c[:, _k.CALLS_AB], "calls_ba": c[:, _k.CALLS_BA],
            "sms_ab": c[:, _k.SMS_AB], "sms_ba": c[:, _k.SMS_BA],
            "duration_s": self.duration,
            "first_ts": self.t0 + c[:, _k.FIRST], "last_ts": self.t0 + c[:, _k.LAST],
            "n_evening_weekend": c[:, _k.N_EW], "n_working": c[:, _k.N_WORK],
            **{f"days_{i}": self.days[:, i] for i in range(self.n_words)},
        }
        return pd.DataFrame(data, columns=partial_columns(self.n_words))


def _zeroed_blocks(n: int, n_words: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``counts``, ``duration`` and ``days`` blocks of a partial of ``n`` pairs, zeroed, for
    a kernel to fill (allocated by NumPy, which asks for huge pages: see ``_group_pairs``)."""
    return (np.zeros((n, _k.N_COUNTS), np.int32), np.zeros(n, np.int64), np.zeros((n, n_words), np.int64))


def empty_partial(n_words: int, t0: int = 0) -> PairPartial:
    """A partial with no pairs."""
    e = np.empty(0, np.int64)
    counts, duration, days = _zeroed_blocks(0, n_words)
    return PairPartial(e, e, counts, duration, days, t0)


def aggregate_events(clean: CleanEvents, window: Window, ties: TieConfig = TieConfig()) -> PairPartial:
    """Aggregate the used rows of one partition to one row per undirected pair.

    >>> t = pa.table({"caller": ["111", "222", "111"], "callee": ["222", "111", "222"],
    ...     "start_time": pa.array([dt.datetime(2026, 1, 2, 20), dt.datetime(2026, 1, 2, 21),
    ...                             dt.datetime(2026, 1, 1, 10)], pa.timestamp("s")),
    ...     "duration_s": [60, 0, 30], "event_type": ["voice", "sms", "voice"]})
    >>> w = Window(dt.date(2026, 1, 3), 7)
    >>> p = aggregate_events(clean_events(t, w), w).to_frame()
    >>> p[["calls_ab", "sms_ba", "duration_s", "n_evening_weekend"]].values.tolist()
    [[2, 1, 90, 2]]
    """
    group, ga, gb = _group_pairs(clean.a, clean.b)
    local = _local_seconds(clean.ts, window.timezone)
    hour = (local // 3600) % 24
    dow = ((local // 86400) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    weekend = np.isin(dow, np.array(ties.weekend_days, dtype=np.int64))
    evening = (hour >= ties.evening_start_hour) | (hour < ties.morning_end_hour)
    working = ~weekend & (hour >= ties.work_start_hour) & (hour < ties.work_end_hour)
    day = np.clip((local - window.local_start) // 86400, 0, window.lookback_days - 1)
    counts, duration, days = _zeroed_blocks(ga.size, window.n_words)
    _k._aggregate_events(group, clean.reverse, clean.is_sms, clean.duration, clean.ts,
                         window.start_utc, day, evening | weekend, working, counts, duration, days)
    return PairPartial(ga, gb, counts, duration, days, window.start_utc)


def combine_partials(parts: list[PairPartial]) -> PairPartial:
    """Combine partial aggregates of the same pairs (sums, min/max times, OR of day bits).

    Pairs come out in order of first appearance; callers that need an order independent of
    the partitioning sort the final table (:func:`finalize_edges` does).
    """
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError("combine_partials needs at least one non-empty partial")
    if len({p.t0 for p in parts}) > 1:
        raise ValueError("combine_partials: partials of different windows")
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    group, ga, gb = _group_pairs(cat("a"), cat("b"))
    counts, duration, days = _zeroed_blocks(ga.size, parts[0].n_words)
    _k._combine_partials(group, cat("counts"), cat("duration"), cat("days"), counts, duration, days)
    return PairPartial(ga, gb, counts, duration, days, parts[0].t0)


def range_boundaries(sample_keys: np.ndarray, n_buckets: int) -> np.ndarray:
    """Split points that cut ``sample_keys`` into ``n_buckets`` ranges of about equal size.

    Pairs are routed to buckets by their ``a`` key, so concatenating the sorted buckets in order
    gives a globally sorted tie table. The split points only balance the work: any split points
    give the same final table.

    >>> range_boundaries(np.arange(100), 4).tolist()
    [25, 50, 75]
    """
    if n_buckets < 1:
        raise ValueError("range_boundaries: n_buckets must be >= 1")
    keys = np.sort(np.asarray(sample_keys, np.int64))
    if keys.size == 0:
        return np.empty(0, np.int64)
    q = (np.arange(1, n_buckets) * keys.size) // n_buckets
    return np.unique(keys[q])


def split_partial(part: PairPartial, boundaries: np.ndarray) -> list[PairPartial]:
    """Split a partial by the range of its ``a`` key (the shuffle's map side).

    Returns ``len(boundaries) + 1`` partials; bucket ``i`` holds ``boundaries[i-1] <= a <
    boundaries[i]``.
    """
    n_buckets = boundaries.size + 1
    bucket = np.searchsorted(boundaries, part.a, side="right").astype(np.int16)
    order = np.argsort(bucket, kind="stable")  # a radix sort for int16 keys
    bounds = np.searchsorted(bucket[order], np.arange(n_buckets + 1))
    moved = part.take(order)  # one gather; the buckets are slices of it
    return [moved.take(slice(bounds[i], bounds[i + 1])) for i in range(n_buckets)]


TIE_INT_COLUMNS = ("a", "b", "calls", "sms", "duration_s", "active_days", "calls_ab", "calls_ba",
                   "sms_ab", "sms_ba", "first_seen", "last_seen")


N_BLOCKS = 4


def activity_block_masks(window: Window, block_days: int = 28, n_blocks: int = N_BLOCKS) -> np.ndarray:
    """Bitmasks of the day ranges ``[L - block_days*(k+1), L - block_days*k)`` (``L`` the window
    length), most recent first: block ``k`` of a tie counts its active days in that range.

    >>> m = activity_block_masks(Window(dt.date(2026, 3, 1), 70), block_days=7, n_blocks=2)
    >>> [sum(bin(int(x) & (2**64 - 1)).count("1") for x in row) for row in m], m.shape
    ([7, 7], (2, 2))
    """
    masks = np.zeros((n_blocks, window.n_words), np.uint64)
    for k in range(n_blocks):
        hi = window.lookback_days - block_days * k
        for d in range(max(0, hi - block_days), max(0, hi)):
            masks[k, d >> 6] |= np.uint64(1) << np.uint64(d & 63)
    return masks.view(np.int64)


def finalize_edges(combined: PairPartial, block_masks: np.ndarray | None = None) -> pa.Table:
    """Combined partials -> the tie table, sorted by ``(a, b)`` (number keys, no weight yet).

    Columns: ``a, b, calls, sms, duration_s, active_days, calls_ab, calls_ba, sms_ab, sms_ba,
    first_seen, last_seen`` (int64; times as UTC epoch seconds), ``reciprocal`` (bool),
    ``evening_weekend_share, working_hours_share`` (float64), and ``days_block_0..`` (int16:
    active days in each range of ``block_masks``, see :func:`activity_block_masks`). An Arrow
    table of 1-D arrays: it concatenates and crosses process boundaries without copies.
    """
    n = len(combined)
    if block_masks is None:
        block_masks = np.zeros((0, combined.n_words), np.int64)
    order = np.argsort(combined.a)  # NumPy's vectorised sort is ~2x numba's here
    _k._order_runs_by_b(order, combined.a, combined.b)
    ints = np.empty((len(TIE_INT_COLUMNS), n), np.int64)
    recip = np.empty(n, np.bool_)
    shares = np.empty((2, n), np.float64)
    blocks = np.empty((block_masks.shape[0], n), np.int16)
    _k._finalize_columns(order, combined.a, combined.b, combined.counts, combined.duration,
                         combined.days, combined.t0, np.ascontiguousarray(block_masks, np.int64),
                         ints, recip, shares, blocks)
    cols = {name: ints[j] for j, name in enumerate(TIE_INT_COLUMNS)}
    cols["reciprocal"] = recip
    cols["evening_weekend_share"] = shares[0]
    cols["working_hours_share"] = shares[1]
    for k in range(blocks.shape[0]):
        cols[f"days_block_{k}"] = blocks[k]
    return pa.table(cols)


def service_hub_mask(src: np.ndarray, dst: np.ndarray, out_ab: np.ndarray, out_ba: np.ndarray,
                     n_nodes: int, ties: TieConfig = TieConfig()) -> np.ndarray:
    """Flag service-like hubs: reached by many distinct numbers, answering almost none.

    ``src, dst`` are dense node ids of each pair, ``out_ab / out_ba`` event counts per direction.

    >>> src = np.zeros(300, np.int64); dst = np.arange(1, 301)
    >>> hub = service_hub_mask(src, dst, np.zeros(300), np.ones(300), 301)
    >>> bool(hub[0]), int(hub.sum())
    (True, 1)
    """
    return _is_hub(*_contact_counts(src, dst, out_ab, out_ba, n_nodes), ties)


def _contact_counts(src, dst, out_ab, out_ba, n_nodes) -> tuple[np.ndarray, np.ndarray]:
    """Per node: distinct numbers that reached it, and how many of those it answered."""
    in_a = out_ba > 0  # b reached a
    in_b = out_ab > 0
    both = in_a & in_b
    contacts_in = np.bincount(src[in_a], minlength=n_nodes) + np.bincount(dst[in_b], minlength=n_nodes)
    replies = np.bincount(src[both], minlength=n_nodes) + np.bincount(dst[both], minlength=n_nodes)
    return contacts_in, replies


def _is_hub(contacts_in: np.ndarray, replies: np.ndarray, ties: TieConfig) -> np.ndarray:
    return (contacts_in >= ties.hub_min_contacts) & (
        replies <= ties.hub_max_reply_share * np.maximum(contacts_in, 1)
    )


def tie_strength(edges: pa.Table | pd.DataFrame, ties: TieConfig = TieConfig()) -> np.ndarray:
    """Tie strength of each pair (see :class:`~socialgraph.config.TieConfig` for the formula).

    >>> e = pd.DataFrame({"calls_ab": [5, 5], "calls_ba": [5, 0], "sms_ab": [0, 0], "sms_ba": [0, 0],
    ...                   "duration_s": [600, 600], "active_days": [4, 4]})
    >>> w = tie_strength(e)
    >>> bool(w[0] > 3 * w[1])  # reciprocal beats one-way at the same volume
    True
    """
    col = lambda name: np.asarray(edges[name]).astype(np.float64)  # noqa: E731
    out = col("calls_ab") + col("sms_ab")
    inn = col("calls_ba") + col("sms_ba")
    intensity = (
        ties.w_calls * np.log1p(col("calls_ab") + col("calls_ba"))
        + ties.w_sms * np.log1p(col("sms_ab") + col("sms_ba"))
        + ties.w_duration * np.log1p(col("duration_s") / 60.0)
        + ties.w_days * np.log1p(col("active_days"))
    )
    balance = np.minimum(out, inn) / np.maximum(np.maximum(out, inn), 1)
    return intensity * (ties.one_way_factor + (1.0 - ties.one_way_factor) * balance)


def node_contact_stats(edges: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per number in a tie table: how many distinct numbers reached it, and how many of those
    it answered. Stats of disjoint tie tables add up per number (see :func:`hub_keys`).
    """
    from .graph import dense_ids

    col = lambda name: edges.column(name).to_numpy()  # noqa: E731
    keys, src, dst = dense_ids(col("a"), col("b"))
    contacts_in, replies = _contact_counts(src, dst, col("calls_ab") + col("sms_ab"),
                                           col("calls_ba") + col("sms_ba"), keys.size)
    return keys, contacts_in, replies


def hub_keys(stats: list[tuple[np.ndarray, np.ndarray, np.ndarray]], ties: TieConfig = TieConfig()) -> np.ndarray:
    """Service-hub numbers from the contact stats of one or more disjoint tie tables.

    >>> e = pa.table({"a": np.arange(1, 301), "b": np.full(300, 999), "calls_ab": np.ones(300, int),
    ...               "calls_ba": np.zeros(300, int), "sms_ab": np.zeros(300, int), "sms_ba": np.zeros(300, int)})
    >>> hub_keys([node_contact_stats(e)]).tolist()
    [999]
    """
    if not stats:
        return np.empty(0, np.int64)
    keys = np.concatenate([s[0] for s in stats])
    codes, uniq = pd.factorize(keys)
    contacts_in = np.bincount(codes, np.concatenate([s[1] for s in stats]), minlength=uniq.size)
    replies = np.bincount(codes, np.concatenate([s[2] for s in stats]), minlength=uniq.size)
    return np.sort(uniq[_is_hub(contacts_in, replies, ties)]).astype(np.int64)


def apply_weights(edges: pa.Table, hubs: np.ndarray, ties: TieConfig = TieConfig()) -> pa.Table:
    """Add ``weight`` (tie strength, 0 for ties touching a hub) and ``service_hub``."""
    a = edges.column("a").to_numpy()
    b = edges.column("b").to_numpy()
    touches_hub = np.isin(a, hubs) | np.isin(b, hubs)
    weight = np.where(touches_hub, 0.0, tie_strength(edges, ties))
    return edges.append_column("weight", pa.array(weight)).append_column("service_hub", pa.array(touches_hub))


def weigh_edges(edges: pa.Table, ties: TieConfig = TieConfig()) -> tuple[pa.Table, np.ndarray]:
    """Add ``weight`` and ``service_hub`` to a whole tie table; return it and the hub keys.

    Ties touching a service hub keep their counts but get weight 0.
    """
    hubs = hub_keys([node_contact_stats(edges)], ties)
    return apply_weights(edges, hubs, ties), hubs


def edges_to_arrow(edges: pa.Table, secret: bytes | None = None) -> pa.Table:
    """The tie table as written to ``edges.parquet``: msisdn strings (or keyed pseudonyms when
    ``secret`` is given), timestamps, contract order."""
    from .numbers import numbers_out
    from .schema import EDGES

    cols = {}
    for f in EDGES:
        col = edges.column(f.name)
        if f.name in ("a", "b"):
            cols[f.name] = numbers_out(col.to_numpy(), secret)
        elif pa.types.is_timestamp(f.type):
            cols[f.name] = col.cast(pa.int64()).cast(f.type)
        else:
            cols[f.name] = col.cast(f.type)
    return pa.table(cols, schema=EDGES)

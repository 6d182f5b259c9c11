"""Times in the CDRs: ``start_time`` as text or numbers, and the zone the clock keeps.

The contract asks for a timestamp column, and a timestamp column is always read as it is.
Real exports often carry the time as text (a switch's ``20260105143000``, a CSV's
``2026-01-05 14:30:00``) or as seconds since 1970 in an integer; rewriting 100M rows only to
change a column's type is a job the reader can do on the way. It does so only when told how
(``ingest.start_time_format`` / ``ingest.start_time_unit``): a guessed day-month order or
unit would shift every call silently. Without the setting such a column is refused up front
with the line to add, guessed from the file's own statistics (:func:`time_hint`).

The readers return naive UTC microseconds (``timestamp[us]``), the type the rest of the job
reads; a value that cannot be read becomes null, which the job quarantines as
``null_timestamp`` (the quarantine then keeps the value as read in ``start_time_text``).

The second part (:func:`quiet_hours`, :func:`zone_advice`) places the night: people call
least at night, so calls quietest at noon in ``window.timezone`` mean the zone is wrong, and
with it the evening and weekend hours that tell family ties from work ties.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socialgraph.schema import is_text

#: ``ingest.start_time_unit`` values and microseconds per unit
UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}

#: ``ingest.start_time_format: iso``: ISO 8601 date and time, ``T`` or a space between them,
#: optional seconds, fractions of a second and offset (``Z``, ``+01:00``, ``+0100``)
ISO = "iso"
_ISO_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
_OFFSET_RE = r"(Z|[+-]\d{2}(:?\d{2})?)$"

#: formats :func:`time_hint` tries on a sample value, most common in CDR exports first; a
#: value two of them read (``03/04/2026``: March or April) is reported as ambiguous
_CANDIDATES = ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%d/%m/%Y %H:%M:%S",
               "%m/%d/%Y %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S", "%Y%m%d %H%M%S")

# the years a start time may plausibly hold: where a unit's reading of a value falls outside,
# the unit is wrong (a millisecond count read as seconds lands tens of thousands of years out)
_PLAUSIBLE = (1990, 2100)


def is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _naive_us(col) -> pa.ChunkedArray | pa.Array:
    if col.type.tz is not None or col.type.unit != "us":
        col = pc.cast(col, pa.timestamp("us", tz="UTC"), safe=False).cast(pa.timestamp("us"))
    return col


def parse_text(col, fmt: str):
    """Text times read with ``fmt`` (a strptime format, or ``iso``) as naive UTC microseconds.

    Values with an offset (``%z``, or one in ISO text) are converted to UTC; values without
    are UTC already (the contract's "naive = UTC"). Arrow's strptime reads whole seconds, so
    text with fractions of a second takes ``iso``.

    >>> parse_text(pa.array(["20260105143000", "2026", None]), "%Y%m%d%H%M%S").to_pylist()
    [datetime.datetime(2026, 1, 5, 14, 30), None, None]
    >>> parse_text(pa.array(["2026-01-05T14:30:00.250+01:00", "2026-01-05 14:30", "x"]), "iso").to_pylist()
    [datetime.datetime(2026, 1, 5, 13, 30, 0, 250000), datetime.datetime(2026, 1, 5, 14, 30), None]
    """
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if fmt != ISO:
        col = pc.utf8_trim_whitespace(col)  # fixed-width exports pad their fields
        return _naive_us(_no_rollover(col, pc.strptime(col, format=fmt, unit="us", error_is_null=True), fmt))
    if isinstance(col, pa.ChunkedArray):
        return pa.chunked_array([_parse_iso(c) for c in col.chunks], pa.timestamp("us"))
    return _parse_iso(col)


_WIDTH = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2, "y": 2}


def day_offset(fmt: str) -> int | None:
    """Where the day of the month stands in text of a fixed-width format (None: not fixed).

    >>> day_offset("%Y%m%d%H%M%S"), day_offset("%d/%m/%Y"), day_offset("%Y-%m-%d %z")
    (6, 0, None)
    """
    pos, i, day = 0, 0, None
    while i < len(fmt):
        if fmt[i] == "%":
            d = fmt[i + 1:i + 2]
            if d not in _WIDTH:
                return None
            if d == "d":
                day = pos
            pos += _WIDTH[d]
            i += 2
        else:
            pos += 1
            i += 1
    return day


def _no_rollover(text, parsed, fmt: str):
    """Null where Arrow's strptime rolled an impossible day over into the next month (it
    reads 2024-02-30 as 2024-03-01): the day it read must be the day written. Checked for
    fixed-width formats, where the day's place is known, and only on days 29-31, the only
    ones that can roll over."""
    at = day_offset(fmt)
    if at is None:
        return parsed
    if isinstance(text, pa.ChunkedArray):
        text, parsed = text.combine_chunks(), parsed.combine_chunks()
    digits = pc.utf8_slice_codeunits(text, at, at + 2)
    late = pc.and_(pc.and_(pc.greater_equal(digits, "29"), pc.less_equal(digits, "31")), pc.utf8_is_digit(digits))
    late = np.flatnonzero(pc.fill_null(late, False).to_numpy(zero_copy_only=False))
    if late.size == 0:
        return parsed
    idx = pa.array(late)
    written = pc.cast(digits.take(idx), pa.int64())
    rolled = late[pc.fill_null(pc.not_equal(pc.day(parsed.take(idx)), written), False).to_numpy(zero_copy_only=False)]
    if rolled.size == 0:
        return parsed
    keep = np.ones(len(parsed), bool)
    keep[rolled] = False
    return pc.if_else(pa.array(keep), parsed, pa.scalar(None, parsed.type))


def _parse_iso(arr: pa.Array) -> pa.Array:
    # Arrow's cast reads ISO 8601 (fractions, offsets with or without a colon, no seconds),
    # naive text into a naive type and text with an offset into a zoned one, and fails the
    # whole array on one value it cannot read. Clean input takes one cast; otherwise the
    # values of ISO shape are cast in their two groups, and the rest are null.
    # A cast that fails costs 0.6 us a value, ten times one that works: the first value says
    # which of the two to try on the whole array.
    first = arr.drop_null()[:1].to_pylist()
    zoned_first = bool(first) and re.search(_OFFSET_RE, first[0]) is not None
    try:
        return _naive_us(pc.cast(arr, pa.timestamp("us", tz="UTC") if zoned_first else pa.timestamp("us")))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    null = pa.scalar(None, arr.type)
    iso = pc.fill_null(pc.match_substring_regex(arr, _ISO_RE), False)
    zoned = pc.and_(iso, pc.match_substring_regex(arr, _OFFSET_RE))
    n_zoned, n_iso = pc.sum(zoned).as_py() or 0, pc.sum(iso).as_py() or 0
    try:
        if n_zoned == 0:
            return pc.cast(pc.if_else(iso, arr, null), pa.timestamp("us"))
        utc = _naive_us(pc.cast(pc.if_else(zoned, arr, null), pa.timestamp("us", tz="UTC")))
        if n_zoned == n_iso:
            return utc
        return pc.if_else(zoned, utc, pc.cast(pc.if_else(pc.xor(iso, zoned), arr, null), pa.timestamp("us")))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # ISO shape, impossible date (02-30)
        return pa.array([_iso_value(v) for v in pc.if_else(iso, arr, null).to_pylist()], pa.timestamp("us"))


def _iso_value(v: str | None) -> dt.datetime | None:
    if v is None:
        return None
    try:
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def parse_number(col, unit: str):
    """Numbers since 1970-01-01 UTC in ``unit`` as naive UTC microseconds; a value outside
    what a timestamp holds becomes null (it is garbage, not a time).

    >>> parse_number(pa.array([1767623400, None, 2**62]), "s").to_pylist()
    [datetime.datetime(2026, 1, 5, 14, 30), None, None]
    >>> parse_number(pa.array([1767623400.5]), "s").to_pylist()
    [datetime.datetime(2026, 1, 5, 14, 30, 0, 500000)]
    """
    if isinstance(col, pa.ChunkedArray):
        return pa.chunked_array([parse_number(c, unit) for c in col.chunks], pa.timestamp("us"))
    factor = UNITS[unit]
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    v = col.to_numpy(zero_copy_only=False)
    if pa.types.is_integer(col.type):  # exact: no detour through float64 (ns since 1970 need 61 bits)
        v = np.where(valid, v, 0).astype(np.int64)
        if factor >= 1:
            valid &= np.abs(v) <= np.iinfo(np.int64).max // int(factor)
            us = np.where(valid, v, 0) * int(factor)
        else:
            us = v // 1000
    else:
        f = np.where(valid, v, 0).astype(np.float64) * factor
        valid &= np.isfinite(f) & (np.abs(f) < 2.0**62)
        us = np.round(np.where(valid, f, 0.0)).astype(np.int64)
    return pa.array(us, pa.int64(), mask=~valid).cast(pa.timestamp("us"))


def plausible(us: int | None) -> bool:
    """Whether a microsecond timestamp lies in the years a CDR can hold."""
    if us is None:
        return False
    lo = dt.datetime(_PLAUSIBLE[0], 1, 1) - dt.datetime(1970, 1, 1)
    hi = dt.datetime(_PLAUSIBLE[1], 1, 1) - dt.datetime(1970, 1, 1)
    return lo // dt.timedelta(microseconds=1) <= us < hi // dt.timedelta(microseconds=1)


def guess_unit(value: float) -> str | None:
    """The unit in which a number since the epoch reads as a plausible date (None if none).

    >>> guess_unit(1767623400), guess_unit(1767623400000), guess_unit(42)
    ('s', 'ms', None)
    """
    for unit in UNITS:
        us = parse_number(pa.array([value]), unit)[0].value
        if plausible(us):
            return unit
    return None


def guess_format(value: str) -> str | None:
    """The format setting that reads a sample text time: ``iso`` or a strptime format; None
    where none of the common ones does, or where two read it differently (day and month).

    >>> guess_format("20260105143000"), guess_format("2026-01-05 14:30:00"), guess_format("2026-01-05T14:30:00.25Z")
    ('%Y%m%d%H%M%S', '%Y-%m-%d %H:%M:%S', 'iso')
    >>> guess_format("25/01/2026 14:30:00"), guess_format("03/04/2026 14:30:00")
    ('%d/%m/%Y %H:%M:%S', None)
    """
    value = value.strip()
    found = []
    for fmt in _CANDIDATES:
        try:
            found.append((fmt, dt.datetime.strptime(value, fmt)))
        except ValueError:
            continue
    if len({t for _, t in found}) == 1:
        return found[0][0]
    if not found and re.fullmatch(_ISO_RE, value):
        return ISO  # fractions of a second, an offset, or no seconds: what only iso reads
    return None


def time_hint(typ: pa.DataType, samples=()) -> str:
    """What to set in the job config to read a ``start_time`` column of type ``typ``, given
    sample values (the file's smallest and largest, from its statistics; a clock error can
    make either one a poor guide, so the first that reads is shown)."""
    samples = [v for v in samples if v is not None]
    if is_text(typ):
        read = [(v, guess_format(str(v))) for v in samples]
        sample, fmt = next((r for r in read if r[1] is not None), read[0] if read else (None, None))
        seen = f" (it holds text such as {str(sample)[:40]!r})" if sample is not None else " (it holds text)"
        if fmt is None:
            return (f"{seen}: set the job config's ingest.start_time_format to its strptime format, "
                    "e.g. '%Y-%m-%d %H:%M:%S', or iso for ISO 8601")
        return f"{seen}: set the job config's ingest.start_time_format: '{fmt}'"
    if is_number(typ):
        read = [(v, guess_unit(v)) for v in samples]
        sample, unit = next((r for r in read if r[1] is not None), read[0] if read else (None, None))
        seen = f" (it holds numbers such as {sample})" if sample is not None else " (it holds numbers)"
        if unit is None:
            return f"{seen}: for times since 1970 set the job config's ingest.start_time_unit to s, ms, us or ns"
        return f"{seen}: for times since 1970 set the job config's ingest.start_time_unit: {unit}"
    return ""


def read_start_time(col, fmt: str | None, unit: str | None):
    """A ``start_time`` column as naive UTC microseconds: timestamps as they are, text with
    ``fmt``, numbers with ``unit``. Raises ``TypeError`` for a type no setting reads (the
    file checks refuse those before any row is read)."""
    t = col.type
    if pa.types.is_timestamp(t):
        return _naive_us(col)
    if fmt is not None and is_text(t):
        return parse_text(col, fmt)
    if unit is not None and is_number(t):
        return parse_number(col, unit)
    if pa.types.is_null(t):
        return pc.cast(col, pa.timestamp("us"))
    raise TypeError(f"start_time has type {t}{time_hint(t)}")


# --------------------------------------------------------------------------- the clock's zone

#: people everywhere call least at night: the quietest eight hours of the day centre on about
#: 04:00 local time (the Copenhagen phones: 00:00-08:00; the synthetic operator: the same). A
#: centre more than NIGHT_TOLERANCE hours away means the times are read in a wrong zone;
#: smaller differences (a neighbouring zone, summer time) are within what the data can tell.
NIGHT_CENTRE = 4
NIGHT_TOLERANCE = 3
QUIET_SPAN = 8
#: the least rows from which the check judges, and how deep the night must be: the quietest
#: span holds under this share of what an even spread of the day would give it (Copenhagen
#: 0.21, the synthetic operator 0.09)
QUIET_MIN_ROWS = 2_000
QUIET_MAX_RATIO = 0.6
#: a zone for each whole offset, for the advice (any zone of that offset will do)
_ZONE_FOR_OFFSET = {-8: "America/Los_Angeles", -7: "America/Denver", -6: "America/Chicago",
                    -5: "America/New_York", -4: "America/Santiago", -3: "America/Sao_Paulo", 0: "Europe/London",
                    1: "Europe/Berlin", 2: "Africa/Cairo", 3: "Europe/Moscow", 4: "Asia/Dubai", 5: "Asia/Karachi",
                    6: "Asia/Dhaka", 7: "Asia/Jakarta", 8: "Asia/Shanghai", 9: "Asia/Tokyo", 10: "Australia/Brisbane"}


def utc_offset_hours(zone: str, on: dt.date) -> float:
    """The zone's offset from UTC on a day, in hours (5.5 for Asia/Kolkata)."""
    from zoneinfo import ZoneInfo

    moment = dt.datetime(on.year, on.month, on.day, 12, tzinfo=ZoneInfo(zone))
    return moment.utcoffset().total_seconds() / 3600


def quiet_hours(rows_by_utc_hour, zone: str, on: dt.date) -> dict | None:
    """The quietest :data:`QUIET_SPAN` hours of the day in ``zone``, from rows counted per
    UTC hour of day: ``{"start": its first local hour, "share": of all rows, "ratio": to an
    even spread, "data_offset": the UTC offset of a zone in whose clock it would centre on
    04:00}``; None with too few rows to tell.

    >>> counts = [200] * 24; counts[16:24] = [9, 5, 2, 1, 1, 2, 5, 9]  # 16-24 UTC: 00-08 in UTC+8
    >>> q = quiet_hours(counts, "Asia/Shanghai", dt.date(2026, 1, 5)); q["start"], q["data_offset"]
    (0, 8)
    >>> q = quiet_hours(counts, "UTC", dt.date(2026, 1, 5)); q["start"], q["data_offset"]
    (16, 8)
    """
    utc = np.asarray(rows_by_utc_hour, np.float64)
    total = utc.sum()
    if total < QUIET_MIN_ROWS:
        return None
    offset = int(round(utc_offset_hours(zone, on)))
    local = np.roll(utc, offset)  # local[h] = utc[h - offset]
    spans = sum(np.roll(local, -k) for k in range(QUIET_SPAN))  # spans[h] = local[h .. h + 7]
    start = int(np.argmin(spans))
    share = float(spans[start] / total)
    # the data's night centres on (start + 4) local, (start + 4 - offset) UTC: a clock at UTC+o
    # reads NIGHT_CENTRE then
    data_offset = (NIGHT_CENTRE - (start + QUIET_SPAN // 2 - offset)) % 24
    return {"start": start, "share": round(share, 4), "ratio": round(share * 24 / QUIET_SPAN, 3),
            "data_offset": int(data_offset - 24 if data_offset > 12 else data_offset)}


def zone_advice(quiet: dict | None, zone: str) -> str | None:
    """A warning when the quietest hours of the calls fall outside the night in ``zone``
    (None when they are at night, the data is too small, or it has no clear night).

    >>> zone_advice({"start": 16, "ratio": 0.1, "data_offset": 8}, "UTC").split("hours: ")[1]
    'the times look like UTC from an operator at UTC+8: set window.timezone to its zone (such as Asia/Shanghai)'
    >>> zone_advice({"start": 8, "ratio": 0.1, "data_offset": 0}, "Asia/Shanghai").split("hours: ")[1]
    'the times look like local times written without a zone: set window.timezone: UTC (naive times are read as UTC, and a local time is then shifted twice)'
    >>> zone_advice({"start": 1, "ratio": 0.1, "data_offset": 8}, "Asia/Shanghai") is None
    True
    """
    if quiet is None or quiet["ratio"] > QUIET_MAX_RATIO:
        return None
    centre = quiet["start"] + QUIET_SPAN // 2
    if abs((centre - NIGHT_CENTRE + 12) % 24 - 12) <= NIGHT_TOLERANCE:
        return None
    start, off = quiet["start"], quiet["data_offset"]
    head = (f"the CDRs' quietest eight hours are {start:02d}:00-{(start + QUIET_SPAN) % 24:02d}:00 in "
            f"window.timezone {zone!r}, not the night, so the evenings and weekends that tell family ties from work "
            "ties are read at the wrong hours")
    example = _ZONE_FOR_OFFSET.get(off)
    operator = f"an operator at UTC{off:+d}" if off else "UTC"
    such = f" (such as {example})" if example and off else ""
    if zone == "UTC":
        return f"{head}: the times look like UTC from {operator}: set window.timezone to its zone{such}"
    if off == 0:
        return (f"{head}: the times look like local times written without a zone: set window.timezone: UTC "
                "(naive times are read as UTC, and a local time is then shifted twice)")
    return f"{head}: if start_time is UTC, the operator's clock is at UTC{off:+d}{such}, not {zone}"

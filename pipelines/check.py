"""``socialgraph check``: the inputs and the job config tried on a sample, in seconds.

A first run on a new operator's exports is where the settings are wrong: the time format,
the event types, the country code, the time zone, a subscriber table that spells numbers
differently. ``socialgraph run`` finds each of them, but at 100M rows only after minutes of
work. ``check`` runs the same checks on the files' footers and on a sample of rows spread
over the input (``--sample-rows``, whole row groups of files taken evenly over the listing)
and prints what a run would meet: the refusals a run would stop with (exit 2, the same one
line), and the warnings it would give, with the setting each one names. Nothing is written.

Figures from a sample are estimates: a value seen in no sampled file is not seen, and the
as-of date is the sample's last day. The refusals are not estimates: every file's footer is
checked as ``run`` checks it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from socialgraph.config import JobConfig
from socialgraph.kernels.numbers import NON_NUMERIC
from socialgraph.numbers import normalize_numbers, number_shape, separators_in
from socialgraph.subscribers import (
    day_number,
    null_dnd_message,
    subscriber_quality,
    subscribers_from_arrow,
    unread_dnd_message,
)
from socialgraph.ties import REASONS, Window, clean_events

from .ingest import (
    _as_table,
    _time_range,
    _unreadable,
    _unreadable_error,
    clock_zone,
    open_cdrs,
    short_lookback,
    sum_counts,
    time_setting,
    unread_durations,
    unread_times,
)
from .io import InputError, read_operators, read_subscribers
from .spellings import spelling_findings

#: rows sampled by default: a few seconds of reading, and enough for shares to 0.1 %
SAMPLE_ROWS = 1_000_000
#: an operator records its own subscribers' events: below this share of rows with a
#: subscriber at one end, the subscriber table is not the whole base
ON_NET_LEAST = 0.5


@dataclass
class CheckReport:
    """What ``check`` found: figures (as ``quality.json`` names them) and warnings."""

    figures: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        self.warnings.append(" ".join(text.split()))


def _sample(source, sample_rows: int) -> list:
    """Pieces spread evenly over the input (first, last and between) until ``sample_rows``."""
    pieces = [p for p in source.pieces if p.error is None]
    if not pieces:
        return []
    total = sum(p.rows for p in pieces)
    share = min(1.0, sample_rows / max(total, 1))
    k = max(1, min(len(pieces), int(np.ceil(share * len(pieces)))))
    order = np.unique(np.linspace(0, len(pieces) - 1, k).round().astype(int))
    return [pieces[i] for i in order]


def check_inputs(cdr: str, subscribers: str, operators: str | None, cfg: JobConfig, as_of: dt.date | None = None,
                 sample_rows: int = SAMPLE_ROWS, skip_bad_files: bool = False) -> CheckReport:
    """Check the inputs as ``run`` would, on every footer and a sample of rows.

    Raises :class:`InputError` where ``run`` would refuse (the same message). With
    ``skip_bad_files`` (as ``run --skip-bad-files``) unreadable files are listed in the figures
    (``cdr.skipped_files``) and a warning instead."""
    report = CheckReport()
    fig = report.figures
    read_operators(operators)
    subs_table = read_subscribers(subscribers)
    try:
        subs = subscribers_from_arrow(subs_table, cfg.numbers, unknown_dnd=not cfg.privacy.contact_unknown_dnd)
    except ValueError as e:
        raise InputError(f"{subscribers}: {e}") from None
    source = open_cdrs(cdr, cfg, skip_bad_files=skip_bad_files)
    total_rows = sum(p.rows for p in source.pieces)
    fig["cdr"] = {"files": len(source.files), "rows": total_rows, "columns": list(source.columns)}
    skipped = sorted({p.file: p.error for p in source.pieces if p.error is not None}.items())

    # the sample, read as the run reads it
    input_of = {v: k for k, v in source.rename.items()}
    read_cols = tuple(input_of.get(c, c) for c in source.columns)
    tables, ranges = [], []
    sample = _sample(source, sample_rows)
    for piece in sample:
        df = source.reader(piece, read_cols)
        bad = _unreadable(df)
        if bad is not None:
            if not bad["skip"]:
                raise _unreadable_error([bad])
            skipped.append((bad["file"], bad["reason"]))
            continue
        t = _as_table(df, source.rename, source.time_format, source.time_unit)
        tables.append(t)
        ranges.append({"rows_in": t.num_rows, "used": t.num_rows, "time_range": _time_range(t)})
    n = sum(t.num_rows for t in tables)
    fig["cdr"].update(sampled_rows=n, sampled_files=len({p.file for p in sample} - {f for f, _ in skipped}))
    if skipped:
        fig["cdr"]["skipped_files"] = [{"file": f, "reason": r} for f, r in skipped]
        report.warn(f"{len(skipped)} unreadable CDR file(s) would be skipped (first: {skipped[0][0]}: {skipped[0][1]})")
    if n == 0:
        raise InputError(f"{cdr}: no CDR rows in the sampled files")
    tr = sum_counts(ranges)["time_range"]
    fig["time_range"] = tr

    # the window a run would use: --as-of, or the day after the sample's last core day
    given = as_of is not None
    if not given:
        if not tr or "core" not in tr:
            raise InputError(f"{cdr}: no row of the sample has a start_time; give --as-of")
        as_of = dt.date.fromisoformat(tr["core"]["last"]) + dt.timedelta(days=1)
    window = Window(as_of, cfg.window.lookback_days, cfg.window.timezone)
    fig["window"] = {"as_of": as_of.isoformat(), "start": window.start_date.isoformat(),
                     "as_of_from": "--as-of" if given else "the sample's last day"}

    # rows: what a run would use and quarantine (duplicates are not resolved on a sample)
    counts = np.zeros(len(REASONS) + 1, np.int64)
    a_keys, b_keys = [], []
    types, non_numeric = [], []
    code = REASONS.index("non_numeric_number") + 1
    for t in tables:
        clean = clean_events(t, window, cfg.numbers, event_types=(cfg.ingest.voice_types, cfg.ingest.sms_types))
        counts += np.bincount(clean.reason, minlength=len(REASONS) + 1)
        bad = pa.array(clean.reason == code)
        for c in ("caller", "callee"):
            if len(non_numeric) < 1000:
                values = t.column(c).filter(bad)
                status = normalize_numbers(values, cfg.numbers)[1]
                non_numeric += values.filter(pa.array(status == NON_NUMERIC)).cast(pa.string()).to_pylist()[:1000]
        a_keys.append(clean.a)
        b_keys.append(clean.b)
        types.append(pc.utf8_lower(pc.utf8_trim_whitespace(t.column("event_type").cast(pa.string()))))
    fig["rows"] = {"used": int(counts[0]), **{r: int(counts[i + 1]) for i, r in enumerate(REASONS) if counts[i + 1]}}
    _event_types(report, pa.chunked_array(types), cfg)
    _rows(report, counts, n, window, cfg, tr)
    _number_shapes(report, non_numeric, counts[code], n, cfg)

    # numbers: the subscribers' share of the used rows, and their spellings
    a, b = np.concatenate(a_keys), np.concatenate(b_keys)
    sub_keys = np.sort(subs.key)
    on_net = np.isin(a, sub_keys) | np.isin(b, sub_keys)
    seen = np.unique(np.concatenate([a, b]))
    fig["numbers"] = {"distinct_in_sample": int(seen.size),
                      "rows_with_a_subscriber": round(float(on_net.mean()), 4) if on_net.size else None}
    if on_net.size and not on_net.any():
        report.warn(f"none of the {on_net.size:,} usable sampled rows has a subscriber's number at either end: the "
                    "subscriber table and the CDRs spell numbers differently (see numbers.country_code), or are "
                    "not of the same operator")
    elif on_net.size and on_net.mean() < ON_NET_LEAST:
        report.warn(f"only {on_net.mean():.1%} of the usable sampled rows have a subscriber's number at either end, "
                    "where an operator's own CDRs nearly always do: the subscriber table may miss part of the base "
                    "(prepaid lines, a region) or spell some numbers differently")
    found, messages = spelling_findings(seen, sub_keys, cfg.numbers, scale=seen.size)
    fig["numbers"].update(found)
    for m in messages:
        report.warn(m)

    # the clock's zone
    quiet, advice = clock_zone(tr, cfg.window.timezone, as_of)
    if quiet is not None:
        fig["quiet_hours"] = quiet
    if advice:
        report.warn(advice)

    # the subscriber table at that as-of
    today = day_number(dt.datetime.now(dt.timezone.utc).date())
    fig["subscribers"] = subscriber_quality(subs, day_number(as_of), today)
    if subs.issues.get("unread_dnd"):
        report.warn(unread_dnd_message(subs.issues["unread_dnd"]))
    if subs.issues.get("null_dnd"):
        report.warn(null_dnd_message(subs.issues["null_dnd"], cfg.privacy.contact_unknown_dnd))
    if fig["subscribers"]["active_at_as_of"] == 0:
        report.warn(f"no subscriber is active on {as_of}: check the subscriber table's activation and churn dates")
    if lookback := short_lookback(cfg):
        report.warn(lookback)
    return report


def _event_types(report: CheckReport, types: pa.ChunkedArray, cfg: JobConfig) -> None:
    voice = {v.strip().lower() for v in cfg.ingest.voice_types}
    sms = {v.strip().lower() for v in cfg.ingest.sms_types}
    vc = pc.value_counts(types).to_pylist()
    vc.sort(key=lambda d: -d["counts"])
    total = sum(d["counts"] for d in vc)
    rows = []
    for d in vc[:10]:
        v = d["values"]
        rows.append({"value": v, "rows": d["counts"],
                     "read_as": "voice" if v in voice else "sms" if v in sms else "skipped"})
    report.figures["event_types"] = rows
    skipped = [r for r in rows if r["read_as"] == "skipped"]
    if skipped and sum(r["rows"] for r in skipped) > 0.5 * total:
        names = ", ".join(repr(r["value"]) for r in skipped[:5])
        report.warn(f"most sampled rows have an event_type the job skips ({names}): set the job config's "
                    "ingest.voice_types and ingest.sms_types to the export's values for calls and SMS "
                    "(originating records only)")


def _rows(report: CheckReport, counts: np.ndarray, n: int, window: Window, cfg: JobConfig, tr: dict) -> None:
    used = int(counts[0])
    by_reason = {r: int(counts[i + 1]) for i, r in enumerate(REASONS)}
    if used == 0:
        top = max(by_reason, key=by_reason.get)
        hint = {"outside_window": f"no sampled row falls in the window [{window.start_date}, {window.as_of}); the "
                                  f"sample covers {tr['core']['first']}..{tr['core']['last']}" if tr and "core" in tr
                                  else "no sampled row falls in the window",
                "unknown_event_type": "set ingest.voice_types and ingest.sms_types",
                "non_numeric_number": "the numbers are not plain digits (next warning)",
                "null_timestamp": f"the start_time values do not read with {time_setting(cfg)}" if time_setting(cfg)
                                  else "start_time is null"}.get(top, "check the columns and the numbers section")
        report.warn(f"no sampled row is usable ({top} {by_reason[top]:,} of {n:,}): {hint}")
    for unread in (unread_times(n, by_reason["null_timestamp"], cfg), unread_durations(n, by_reason["null_duration"])):
        if unread:
            report.warn(unread)
    for reason in ("number_too_long", "null_number"):
        if n and by_reason[reason] / n > 0.01:
            report.warn(f"{by_reason[reason] / n:.1%} of the sampled rows are quarantined as {reason}: check the "
                        "caller and callee columns (and columns.caller / columns.callee)")


def _number_shapes(report: CheckReport, values: list[str], rows: int, n: int, cfg: JobConfig) -> None:
    """Non-numeric numbers by shape (``ddd-dddd-dddd``: no digit shown), and the separators
    that would read the formatted ones."""
    if not values:
        return
    shapes = Counter(number_shape(v) for v in values)
    report.figures["non_numeric_shapes"] = [{"shape": s, "numbers": c} for s, c in shapes.most_common(5)]
    if rows / n <= 0.01:
        return
    seps = Counter(c for v in values for c in separators_in(v))
    readable = sum(1 for v in values if separators_in(v))
    text = (f"{rows / n:.1%} of the sampled rows are quarantined as non_numeric_number, most numbers shaped "
            f"{shapes.most_common(1)[0][0]}")
    if readable >= 0.5 * len(values):
        chars = "".join(sorted(set(seps) | set(cfg.numbers.separators)))
        text += f": numbers.separators: {chars!r} in the job config reads the formatted ones"
    else:
        text += ": check the caller and callee columns (and columns.caller / columns.callee)"
    report.warn(text)


def format_report(report: CheckReport) -> str:
    """The report as text for a terminal."""
    f = report.figures
    c = f["cdr"]
    lines = [f"CDRs         {c['files']:,} file(s), {c['rows']:,} rows by their footers; "
             f"{c['sampled_rows']:,} rows sampled from {c['sampled_files']:,} file(s)"]
    tr = f.get("time_range") or {}
    if "core" in tr:
        lines.append(f"times        {tr['core']['first']} .. {tr['core']['last']} ({tr['core']['share']:.1%} of the "
                     f"sampled rows; all: {tr['first'][:10]} .. {tr['last'][:10]})")
    w = f["window"]
    lines.append(f"window       [{w['start']}, {w['as_of']}): as-of from {w['as_of_from']}")
    q = f.get("quiet_hours")
    if q:
        lines.append(f"night        quietest 8 hours start at {q['start']:02d}:00 in window.timezone {q['timezone']}")
    rows = f["rows"]
    n = c["sampled_rows"]
    quarantined = sorted(((k, v) for k, v in rows.items() if k != "used"), key=lambda kv: -kv[1])
    lines.append(f"rows         {rows['used'] / n:.1%} usable" + (
        "; quarantined: " + ", ".join(f"{k} {v / n:.1%}" for k, v in quarantined[:4]) if quarantined else ""))
    ev = f.get("event_types") or []
    if ev:
        total = sum(e["rows"] for e in ev)
        lines.append("event types  " + ", ".join(
            f"{e['value']!s} {e['rows'] / total:.1%} ({e['read_as']})" for e in ev[:6]))
    nums = f["numbers"]
    share = nums["rows_with_a_subscriber"]
    lines.append(f"numbers      {nums['distinct_in_sample']:,} distinct in the sample"
                 + (f"; {share:.1%} of the usable rows have a subscriber at one end" if share is not None else ""))
    s = f["subscribers"]
    lines.append(f"subscribers  {s['rows']:,} rows, {s['active_at_as_of']:,} active at as-of; {s['null_dnd']:,} "
                 f"without a dnd value, {s['null_activation_date']:,} without an activation date")
    if report.warnings:
        lines.append("")
        lines.append(f"{len(report.warnings)} warning(s): a run would say the same")
        lines += [f"  ! {w}" for w in report.warnings]
    else:
        lines.append("")
        lines.append("no warnings")
    return "\n".join(lines) + "\n"


__all__ = ["CheckReport", "check_inputs", "format_report", "SAMPLE_ROWS"]

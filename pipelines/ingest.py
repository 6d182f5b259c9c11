"""Ingest: CDR Parquet -> validated rows -> per-partition pair partials, with exact row accounting.

Duplicates are found by value, not by position, so the result does not depend on how the input
is split into partitions: a cheap pre-pass over the ``cdr_id`` column alone finds the ids that
occur more than once (a hash-bucketed reduction, never a shuffle of whole rows). In the main
pass the (rare) rows carrying such an id are set aside and resolved together in one task,
which keeps exactly one row per id (the first in a content order) and counts the rest as
``duplicate_cdr_id``.

Files are checked by their footers only, then read piece by piece (a file, or a run of its row
groups) inside the tasks. A piece that turns out unreadable there does not raise on the worker:
it comes back as a marker that the client turns into one line naming the file, or, with
``--skip-bad-files``, into an entry of ``skipped_files``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dask.sizeof import sizeof
from dask.utils import parse_bytes

from socialgraph.config import JobConfig
from socialgraph.kernels import dedup as _dedup
from socialgraph.numbers import pseudonymise_strings
from socialgraph.reentry import handset_tokens
from socialgraph.schema import blank_as_null, is_text, number_text
from socialgraph.ties import (
    REASONS,
    PairPartial,
    Window,
    aggregate_events,
    clean_events,
    empty_partial,
    split_partial,
)

from . import times
from .io import FILE_MODE, SKIP_HINT, TEXT_COLUMNS, CdrFile, InputError, check_cdr_files, list_parquet_files

log = logging.getLogger("socialgraph")

ID_BUCKETS = 16


@sizeof.register(PairPartial)
def _sizeof_partial(p: PairPartial) -> int:
    # Without this Dask takes a partial for a 56-byte object, never spills the partials that
    # wait for their combine, and a worker under a tight limit is killed instead (seen at
    # 700 MiB on the 10M-row world). Registered here, in the module whose tasks make them.
    return int(p.a.nbytes + p.b.nbytes + p.counts.nbytes + p.duration.nbytes + p.days.nbytes) + 64

#: the one column of the frame that stands for a piece that could not be read
UNREADABLE = "__unreadable__"


@dataclass(frozen=True)
class Piece:
    """One partition of the input: row groups of one file (``None`` = all of them).

    ``rows`` is the footer's row count; ``error`` is set for a file already known to be bad
    (skipped with ``--skip-bad-files``).
    """

    file: str
    row_groups: tuple[int, ...] | None = None
    rows: int = 0
    columns: tuple[str, ...] = ()
    error: str | None = None


class PieceReader:
    """Reads a piece as Arrow-backed pandas. A piece whose data cannot be read comes back as a
    one-row frame with the single column :data:`UNREADABLE` (file, reason, whether to skip it):
    raising in a task would make the worker log a traceback, and the error would not name the
    file; the client turns the marker into one line (:func:`sum_counts`, :func:`scan`)."""

    def __init__(self, fs, skip_bad_files: bool):
        self.fs = fs  # an fsspec file system for remote paths; None = pyarrow's (faster) local one
        self.skip_bad_files = skip_bad_files

    def __dask_tokenize__(self):
        return ("PieceReader", None if self.fs is None else self.fs.__dask_tokenize__(), self.skip_bad_files)

    def __call__(self, piece: Piece, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
        want = piece.columns if columns is None else columns
        try:
            if piece.error is not None:
                return self._unreadable(piece, piece.error)
            cols = [c for c in want if c in piece.columns]
            if self.fs is None:
                t = _read(piece.file, piece.row_groups, cols)
            else:
                with self.fs.open(piece.file, "rb") as fh:
                    t = _read(fh, piece.row_groups, cols)
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - bad bytes in a file are bad input, not a bug
            return self._unreadable(piece, f"cannot read its data ({type(e).__name__}: {' '.join(str(e).split())})")
        for c in want:  # an optional column absent from this file: all null
            if c not in t.column_names:
                t = t.append_column(c, pa.nulls(t.num_rows))
        return _decoded(t.select(list(want))).to_pandas(types_mapper=pd.ArrowDtype)

    def _unreadable(self, piece: Piece, reason: str) -> pd.DataFrame:
        info = {"file": piece.file, "reason": reason[:300], "rows": piece.rows if piece.error is None else None,
                "skip": self.skip_bad_files}
        return pd.DataFrame({UNREADABLE: [json.dumps(info)]})


def _decoded(t: pa.Table) -> pa.Table:
    """Dictionary-encoded columns as plain ones. A pandas ``category`` column written to
    Parquet reads back dictionary-encoded (so do files written with a dictionary schema); the
    job sorts, hashes and compares the values, which Arrow does not do on dictionaries."""
    for i, field in enumerate(t.schema):
        if pa.types.is_dictionary(field.type):
            t = t.set_column(i, field.name, t.column(i).cast(field.type.value_type))
    return t


def _read(source, row_groups: tuple[int, ...] | None, columns: list[str]) -> pa.Table:
    # page checksums are verified where the writer stored them: corruption is an error, not
    # wrong numbers
    pf = pq.ParquetFile(source, page_checksum_verification=True)
    return pf.read(columns=columns) if row_groups is None else pf.read_row_groups(list(row_groups), columns=columns)


def _unreadable(df: pd.DataFrame) -> dict | None:
    return json.loads(df[UNREADABLE].iloc[0]) if UNREADABLE in df.columns else None


def _unreadable_error(bad: list[dict]) -> InputError:
    first = bad[0]
    more = f" (and {len(bad) - 1} more unreadable piece(s))" if len(bad) > 1 else ""
    return InputError(f"{first['file']}: {first['reason']}{more}; {SKIP_HINT}")


@dataclass
class CdrSource:
    """The CDR input: files, columns to read, the pieces and the Dask dataframe over them."""

    path: str
    files: list[str]
    columns: list[str]  # contract names present
    rename: dict[str, str]  # input name -> contract name
    ddf: dd.DataFrame
    pieces: list[Piece]
    reader: PieceReader
    time_format: str | None = None  # ingest.start_time_format / _unit: how start_time reads
    time_unit: str | None = None

    @property
    def has_ids(self) -> bool:
        return "cdr_id" in self.columns


def _pieces(files: list[CdrFile], blocksize: int | None) -> list[Piece]:
    """One piece per file, or runs of row groups of about ``blocksize`` uncompressed bytes."""
    out = []
    for f in files:
        if f.error is not None:
            out.append(Piece(f.path, error=f.error))
            continue
        if not blocksize or len(f.row_group_rows) <= 1:
            out.append(Piece(f.path, None, f.rows, f.columns))
            continue
        group, size = [], 0
        for i, nbytes in enumerate(f.row_group_bytes):
            if group and size + nbytes > blocksize:
                out.append(Piece(f.path, tuple(group), sum(f.row_group_rows[j] for j in group), f.columns))
                group, size = [], 0
            group.append(i)
            size += nbytes
        out.append(Piece(f.path, tuple(group), sum(f.row_group_rows[j] for j in group), f.columns))
    return out


def resolve_blocksize(setting: str | None, worker_memory: int = 0) -> int | None:
    """``ingest.blocksize`` in bytes (``None``: a task per file); ``auto`` from the workers'
    memory limit (0: unknown)."""
    if setting is None:
        return None
    if setting != "auto":
        return parse_bytes(setting)
    if not worker_memory:
        return 256 << 20
    return int(min(max((worker_memory - (300 << 20)) // 16, 16 << 20), 1 << 30))


def open_cdrs(path: str, cfg: JobConfig, skip_bad_files: bool = False, worker_memory: int = 0) -> CdrSource:
    """List and check the CDR files (footers only), and open them lazily with Dask.

    ``worker_memory``: the workers' memory limit in bytes if known (sizes ``blocksize: auto``).

    Raises :class:`InputError` (one line naming the file and the fix) for a file that cannot
    be used, unless ``skip_bad_files``: then it becomes a piece that every pass skips and
    counts (``skipped_files`` in the row counts). Input without a single row is an error.
    """
    rename = cfg.columns.input_to_contract()
    fs, files = list_parquet_files(path)
    columns, infos = check_cdr_files(fs, files, rename, skip_bad_files,
                                     cfg.ingest.start_time_format, cfg.ingest.start_time_unit)
    input_of = {v: k for k, v in rename.items()}
    read_cols = tuple(input_of.get(c, c) for c in columns)
    good = [f for f in infos if f.error is None]
    if not good:
        bad = infos[0]
        raise InputError(f"{path}: none of the {len(infos)} CDR file(s) can be read (e.g. {bad.path}: {bad.error})")
    if sum(f.rows for f in good) == 0:
        raise InputError(f"{path}: no CDR rows (its {len(good)} readable Parquet file(s) hold 0 rows); "
                         "point --cdr at an export with data")
    reader = PieceReader(fs if "://" in str(path) else None, skip_bad_files)
    pieces = _pieces(infos, resolve_blocksize(cfg.ingest.blocksize, worker_memory))
    meta = pd.DataFrame({c: pd.Series(dtype=object) for c in read_cols})
    # Arrow-backed columns: no conversion to NumPy blocks, nulls and timestamp units kept.
    ddf = dd.from_map(reader, pieces, meta=meta, enforce_metadata=False, label="read-cdr")
    return CdrSource(path=str(path), files=[f.path for f in infos], columns=columns, rename=rename,
                     ddf=ddf, pieces=pieces, reader=reader, time_format=cfg.ingest.start_time_format,
                     time_unit=cfg.ingest.start_time_unit)


def _as_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text as valid UTF-8: bytes columns read as text, and a value that is not UTF-8 gets its
    bad bytes escaped (``\\xff``), so it is garbage to the number parser (quarantined by
    reason) instead of an error in a string function, and stays readable in the quarantine."""
    typ = col.type
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        typ = pa.large_string() if pa.types.is_large_binary(typ) else pa.string()
    elif not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        return col
    chunks = []
    for ch in col.chunks:
        ch = ch.view(typ)
        try:
            ch.validate(full=True)
        except pa.ArrowInvalid:
            raw = ch.view(pa.large_binary() if pa.types.is_large_string(typ) else pa.binary()).to_pylist()
            ch = pa.array([None if v is None else v.decode("utf-8", "backslashreplace") for v in raw], typ)
        chunks.append(ch)
    return pa.chunked_array(chunks, typ)


def _as_table(df: pd.DataFrame, rename: dict[str, str], time_format: str | None = None,
              time_unit: str | None = None) -> pa.Table:
    """A partition as an Arrow table with contract names; ``start_time`` as naive UTC.

    Files may differ in timestamp unit and zone; one type here lets rows from different files
    (e.g. the copies of a repeated ``cdr_id``) be concatenated and compared. Text or numbers
    are read with ``ingest.start_time_format`` / ``_unit`` (:mod:`pipelines.times`); the
    column as read is then kept as ``start_time_text``, so that a quarantined row shows the
    value that did not read.
    """
    t = pa.Table.from_pandas(df, preserve_index=False)
    t = t.rename_columns([rename.get(c, c) for c in t.column_names])
    for i, name in enumerate(t.column_names):
        if name in TEXT_COLUMNS:
            t = t.set_column(i, name, _as_text(t.column(i)))
    if "cdr_id" in t.column_names and is_text(t.schema.field("cdr_id").type):
        # a CSV export's empty cell is no id, not one id that all such rows repeat
        t = t.set_column(t.column_names.index("cdr_id"), "cdr_id", blank_as_null(t.column("cdr_id")))
    if "start_time" in t.column_names:
        i = t.column_names.index("start_time")
        col = t.column(i)
        t = t.set_column(i, "start_time", times.read_start_time(col, time_format, time_unit))
        if time_format is not None or time_unit is not None:
            t = t.append_column("start_time_text", col)
    if "duration_s" in t.column_names and is_text(t.schema.field("duration_s").type):
        i = t.column_names.index("duration_s")
        col = _as_text(t.column(i))
        # a CSV export's text: what does not read is quarantined as null_duration, kept as written
        t = t.set_column(i, "duration_s", number_text(col)).append_column("duration_s_text", col)
    return t


def _id_values(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Comparable uint64 values of ids (the id itself for integers, a hash for strings)."""
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_integer(col.type):
        vals = pc.fill_null(col.cast(pa.int64()), 0).to_numpy().view(np.uint64)
    else:
        s = col.cast(pa.large_string()).to_pandas()
        vals = pd.util.hash_array(s.to_numpy(dtype=object, na_value=""))
    return vals, valid


def _scan_piece(reader: PieceReader, piece: Piece, columns: tuple[str, ...], rename: dict[str, str],
                now_s: int, time_format: str | None = None, time_unit: str | None = None):
    """Latest plausible timestamp, the piece's id values split into hash buckets, and the
    unreadable marker (or None)."""
    df = reader(piece, columns)
    bad = _unreadable(df)
    if bad is not None:
        return None, [np.empty(0, np.uint64)] * ID_BUCKETS, bad
    t = _as_table(df, rename, time_format, time_unit)
    max_ts = None
    if "start_time" in t.column_names:
        secs = t.column("start_time").cast(pa.int64())
        secs = pc.filter(secs, pc.less_equal(secs, now_s * 1_000_000))  # _as_table: microseconds
        m = pc.max(secs).as_py()
        max_ts = None if m is None else int(m) // 1_000_000
    buckets = None
    if "cdr_id" in t.column_names:
        vals, valid = _id_values(t.column("cdr_id"))
        sorted_vals, offsets = _dedup._split_by_bucket(np.ascontiguousarray(vals[valid]), ID_BUCKETS)
        buckets = [sorted_vals[offsets[i]:offsets[i + 1]] for i in range(ID_BUCKETS)]
    return max_ts, buckets, None


def _duplicated_in_bucket(*pieces) -> np.ndarray:
    vals = np.concatenate(pieces) if pieces else np.empty(0, np.uint64)
    return _dedup._repeated_values(vals)


def scan(source: CdrSource, compute, need_max_ts: bool, now: dt.datetime) -> tuple[int | None, np.ndarray]:
    """Pre-pass: the latest plausible timestamp and the duplicated id values.

    Each partition's ids are split into hash buckets (a counting sort, no comparison sort);
    each bucket task counts its ids with a hash table. Only the repeated ids come back.
    """
    cols = [c for c in (("start_time",) if need_max_ts else ()) + (("cdr_id",) if source.has_ids else ())]
    if not cols:
        return None, np.empty(0, np.uint64)
    input_of = {v: k for k, v in source.rename.items()}
    read_cols = tuple(input_of.get(c, c) for c in cols)
    now_s = int(now.timestamp())
    parts = [dask.delayed(_scan_piece, nout=3)(source.reader, piece, read_cols, source.rename, now_s,
                                               source.time_format, source.time_unit)
             for piece in source.pieces]
    max_list = [p[0] for p in parts]
    bad_list = [p[2] for p in parts]
    dup_ids = np.empty(0, np.uint64)
    if source.has_ids:
        per_bucket = [
            dask.delayed(_duplicated_in_bucket)(*[p[1][i] for p in parts]) for i in range(ID_BUCKETS)
        ]
        maxes, bad, buckets = compute(max_list, bad_list, per_bucket, label="scan ids")
        dup_ids = np.sort(np.concatenate(buckets)) if buckets else dup_ids
    else:
        maxes, bad = compute(max_list, bad_list, label="scan times")
    fatal = [b for b in bad if b is not None and not b["skip"]]
    if fatal:  # fail before the main pass; skipped pieces are counted by the main pass
        raise _unreadable_error(fatal)
    found = [m for m in maxes if m is not None]
    return (max(found) if found else None), dup_ids


#: quarantine columns that identify a person: pseudonymised with the job's secret
_PERSONAL = ("caller", "callee", "caller_imei")


def _quarantine_table(t: pa.Table, reason: np.ndarray, secret: bytes | None = None) -> pa.Table:
    """Bad rows with their reason, in one schema whatever the input types were (numbers and
    IMEIs as keyed pseudonyms of their raw text when ``secret`` is given)."""
    bad = reason != 0
    t = t.filter(pa.array(bad))
    cols = {}
    for name in t.column_names:
        col = t.column(name)
        if name == "start_time":
            col = pc.cast(col, pa.timestamp("ms"), safe=False)
        elif name == "duration_s":
            col = pc.cast(col, pa.float64(), safe=False)
        else:
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            col = pc.cast(col, pa.string())
            if secret is not None and name in _PERSONAL:
                col = pseudonymise_strings(col, secret)
        cols[name] = col
    cols["reason"] = pa.array(np.array(REASONS, dtype=object)[reason[bad] - 1], pa.string())
    return pa.table(cols)


def _write_quarantine(t: pa.Table, reason: np.ndarray, qdir: str | None, name: str,
                      secret: bytes | None = None) -> None:
    if qdir is None or not (reason != 0).any():
        return
    target = Path(qdir) / f"{name}.parquet"
    pq.write_table(_quarantine_table(t, reason, secret), str(target), compression="zstd")
    os.chmod(target, FILE_MODE)


def _event_types(cfg: JobConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return cfg.ingest.voice_types, cfg.ingest.sms_types


def _split(part: PairPartial, boundaries: np.ndarray | None):
    return part if boundaries is None else split_partial(part, boundaries)


def _handsets(t: pa.Table, clean, handset_keys: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(keys, tokens)``: the distinct (caller, handset) pairs of the used rows whose caller is
    one of ``handset_keys`` (the numbers a re-entry could involve), from ``caller_imei``."""
    if handset_keys is None or not handset_keys.size or "caller_imei" not in t.column_names:
        return None
    caller = np.where(clean.reverse, clean.b, clean.a)
    wanted = pd.Series(caller, copy=False).isin(handset_keys).to_numpy()  # a hash: 5x a binary search here
    rows = np.flatnonzero(clean.reason == 0)[wanted]
    tokens = handset_tokens(pc.cast(t.column("caller_imei").take(pa.array(rows)), pa.string()))
    known = tokens != 0
    return _distinct_pairs(caller[wanted][known], tokens[known])


def _distinct_pairs(keys: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each (number, handset) pair once (pandas hashes them; ``np.unique(axis=0)`` sorts)."""
    pairs = pd.DataFrame({"key": keys, "token": tokens}).drop_duplicates()
    return pairs["key"].to_numpy(np.int64), pairs["token"].to_numpy(np.uint64)


def process_partition(df: pd.DataFrame, index: int, rename: dict[str, str], window: Window,
                      cfg: JobConfig, dup_ids: np.ndarray, qdir: str | None,
                      boundaries: np.ndarray | None, secret: bytes | None = None,
                      handset_keys: np.ndarray | None = None):
    """Main pass over one partition.

    Returns the pair partial (split into the combine buckets of ``boundaries``, unless
    ``None``), the row counts (with ``handsets``: :func:`_handsets` of ``handset_keys``), and
    the rows set aside for duplicate resolution.
    """
    bad = _unreadable(df)
    if bad is not None:
        counts = {"rows_in": 0, "used": 0, **{r: 0 for r in REASONS}, "unreadable": [bad]}
        return _split(empty_partial(window.n_words, window.start_utc), boundaries), counts, None
    t = _as_table(df, rename, cfg.ingest.start_time_format, cfg.ingest.start_time_unit)
    time_range = _time_range(t)
    held = None
    if dup_ids.size and "cdr_id" in t.column_names:
        vals, valid = _id_values(t.column("cdr_id"))
        pos = np.minimum(np.searchsorted(dup_ids, vals), dup_ids.size - 1)
        hold = valid & (dup_ids[pos] == vals)
        if hold.any():
            held = t.filter(pa.array(hold))
            for name in ("start_time_text", "duration_s_text"):  # one type whatever each file's was
                if name in held.column_names:
                    j = held.column_names.index(name)
                    held = held.set_column(j, name, pc.cast(held.column(j), pa.string()))
            t = t.filter(pa.array(~hold))
    clean = clean_events(t, window, cfg.numbers, event_types=_event_types(cfg))
    _write_quarantine(t, clean.reason, qdir, f"part-{index:05d}", secret)
    counts = clean.counts()
    counts["rows_in"] = t.num_rows  # the held rows are counted where they are resolved
    counts["time_range"] = time_range
    if (handsets := _handsets(t, clean, handset_keys)) is not None:
        counts["handsets"] = handsets
    return _split(aggregate_events(clean, window, cfg.ties), boundaries), counts, held


def resolve_duplicates(held: list[pa.Table | None], window: Window, cfg: JobConfig, qdir: str | None,
                       boundaries: np.ndarray | None, secret: bytes | None = None,
                       handset_keys: np.ndarray | None = None):
    """Keep one row per repeated ``cdr_id``, count the others as duplicates.

    The kept row is the first copy, in content order, that has no other fault, so a garbled
    copy never displaces a good one (the first copy of all when every copy is bad).
    """
    tables = [h for h in held if h is not None and h.num_rows]
    if not tables:
        return _split(empty_partial(window.n_words, window.start_utc), boundaries), {"rows_in": 0, "used": 0, **{r: 0 for r in REASONS}}
    t = pa.concat_tables(tables, promote_options="permissive")
    key = pc.cast(t.column("cdr_id"), pa.string())
    order_cols = [c for c in ("start_time", "caller", "callee", "duration_s", "event_type") if c in t.column_names]
    bad = clean_events(t, window, cfg.numbers, event_types=_event_types(cfg)).reason != 0
    sort_t = pa.table({"__id": key, "__bad": bad, **{c: t.column(c) for c in order_cols},
                       "__row": np.arange(t.num_rows)})
    sort_t = sort_t.sort_by([("__id", "ascending"), ("__bad", "ascending")]
                            + [(c, "ascending") for c in order_cols] + [("__row", "ascending")])
    rows = sort_t.column("__row").to_numpy()
    ids = sort_t.column("__id").to_pandas().to_numpy(dtype=object)
    first = np.ones(rows.size, bool)
    first[1:] = ids[1:] != ids[:-1]
    duplicate = np.zeros(t.num_rows, bool)
    duplicate[rows[~first]] = True
    clean = clean_events(t, window, cfg.numbers, duplicate=duplicate, event_types=_event_types(cfg))
    _write_quarantine(t, clean.reason, qdir, "part-duplicates", secret)
    counts = clean.counts()
    counts["rows_in"] = t.num_rows
    if (handsets := _handsets(t, clean, handset_keys)) is not None:
        counts["handsets"] = handsets
    return _split(aggregate_events(clean, window, cfg.ties), boundaries), counts, None


def _time_range(t: pa.Table) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray] | None:
    """First and last ``start_time`` of a partition (UTC seconds), whatever the window, its
    rows per UTC day (the days that have rows, and their counts) and per UTC hour of the day
    (24 counts: where the night falls, :func:`pipelines.times.quiet_hours`)."""
    us = pc.drop_null(t.column("start_time").cast(pa.int64())).to_numpy()
    if us.size == 0:
        return None
    lo, hi = int(us.min()), int(us.max())
    hours = us // 3_600_000_000
    day = hours // 24
    by_hour = np.bincount(hours - day * 24, minlength=24).astype(np.int64)
    first = int(day.min())
    if int(day.max()) - first < 1_000_000:  # a bincount over the span (a clock error in year 9999: unique)
        per_day = np.bincount(day - first)
        days = np.flatnonzero(per_day)
        per_day_days, per_day_rows = days + first, per_day[days]
    else:
        per_day_days, per_day_rows = np.unique(day, return_counts=True)
    return lo // 1_000_000, hi // 1_000_000, per_day_days.astype(np.int64), per_day_rows.astype(np.int64), by_hour


#: the share of the rows, the earliest and the latest as many left out, whose days a refused
#: run names as where "the data" lies: a few rows with a broken clock (1970, 2099) would
#: otherwise stretch it over a century
CORE_SHARE = 0.998


def _core_days(days: np.ndarray, rows: np.ndarray, share: float = CORE_SHARE) -> tuple[int, int]:
    """First and last day of the middle ``share`` of the rows (days: day numbers, any order)."""
    day, inv = np.unique(days, return_inverse=True)
    per_day = np.bincount(inv.reshape(-1), weights=rows).astype(np.int64)
    cum = np.cumsum(per_day)
    cut = (1.0 - share) / 2.0 * cum[-1]
    first = int(np.searchsorted(cum, cut, side="right"))
    last = int(np.searchsorted(cum, cum[-1] - cut, side="left"))
    return int(day[min(first, day.size - 1)]), int(day[max(min(last, day.size - 1), 0)])


def _iso(seconds: int) -> str:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # a clock error beyond year 9999
        return f"{seconds} s after 1970"


def _skipped_files(bad: list[dict]) -> list[dict]:
    """Skipped pieces per file: the first reason, and the footer's row count when known."""
    by_file: dict[str, dict] = {}
    for b in bad:
        f = by_file.setdefault(b["file"], {"file": b["file"], "reason": b["reason"], "rows": 0})
        f["rows"] = None if f["rows"] is None or b["rows"] is None else f["rows"] + b["rows"]
    return [by_file[k] for k in sorted(by_file)]


def sum_counts(counts: list[dict]) -> dict:
    """Quality accounting over partitions; rows in = used + quarantined, checked.

    ``rows_in`` counts the rows of the pieces that could be read: ``skipped_files`` lists the
    others (file, reason, rows by the footer or None) and their rows are not in any count. A
    piece that could not be read and was not to be skipped raises :class:`InputError`.
    ``time_range`` is the first and last ``start_time`` of the readable rows (UTC).

    >>> q = sum_counts([{"rows_in": 3, "used": 2, "self_call": 1, "time_range": (0, 86400)}])
    >>> q["rows_in"], q["rows_used"], q["rows_quarantined"], q["balanced"], q["time_range"]["last"]
    (3, 2, 1, True, '1970-01-02T00:00:00Z')
    """
    total = {"rows_in": 0, "used": 0, **{r: 0 for r in REASONS}}
    bad: list[dict] = []
    ranges = []
    days, rows = [], []
    by_hour = np.zeros(24, np.int64)
    handsets = []
    for c in counts:
        for k, v in c.items():
            if k == "unreadable":
                bad += v
            elif k == "handsets":
                handsets.append(v)
            elif k == "time_range":
                if v is not None:
                    ranges.append(v[:2])
                    if len(v) > 2:
                        days.append(v[2])
                        rows.append(v[3])
                    if len(v) > 4:
                        by_hour += v[4]
            else:
                total[k] += v
    fatal = [b for b in bad if not b["skip"]]
    if fatal:
        raise _unreadable_error(fatal)
    quarantined = sum(total[r] for r in REASONS)
    quality = {
        "rows_in": total["rows_in"],
        "rows_used": total["used"],
        "rows_quarantined": quarantined,
        "quarantined_by_reason": {r: total[r] for r in REASONS},
        "skipped_files": _skipped_files(bad),
        "time_range": {"first": _iso(min(r[0] for r in ranges)), "last": _iso(max(r[1] for r in ranges))}
        if ranges else None,
        "balanced": total["rows_in"] == total["used"] + quarantined,
    }
    if days:  # where most rows are: the middle CORE_SHARE of them, by day
        first_day, last_day = _core_days(np.concatenate(days), np.concatenate(rows))
        quality["time_range"]["core"] = {"first": _iso(first_day * 86400)[:10], "last": _iso(last_day * 86400)[:10],
                                         "share": CORE_SHARE}
    if by_hour.any():
        quality["time_range"]["rows_by_utc_hour"] = by_hour.tolist()
    if handsets:  # not figures: the caller takes them out before quality.json is written
        quality["handsets"] = _distinct_pairs(np.concatenate([k for k, _ in handsets]),
                                              np.concatenate([t for _, t in handsets]))
    if quality["skipped_files"]:
        quality["rows_in_note"] = "rows_in counts the rows of readable files only; skipped_files are in no count"
        first = quality["skipped_files"][0]
        log.warning("skipped %d unreadable CDR file(s), listed in quality.json (first: %s: %s)",
                    len(quality["skipped_files"]), first["file"], first["reason"])
    return quality


def time_setting(cfg: JobConfig) -> str | None:
    """The job config's way of reading text or number times, as a config line; None if unset."""
    if cfg.ingest.start_time_format is not None:
        return f"ingest.start_time_format {cfg.ingest.start_time_format!r}"
    if cfg.ingest.start_time_unit is not None:
        return f"ingest.start_time_unit {cfg.ingest.start_time_unit!r}"
    return None


def short_lookback(cfg: JobConfig) -> str | None:
    """The warning for a look-back under twice the contagion test's window (None if not)."""
    if cfg.window.lookback_days >= 2 * cfg.contagion.window_days:
        return None
    # a member who left early in the test's window made their calls before it: with too short
    # a look-back, no circle can hold them
    return (f"a look-back of {cfg.window.lookback_days} days is short: the contagion test counts the churn of the "
            f"last {cfg.contagion.window_days} days, and members who left early in it had little or no time to call "
            f"inside the look-back, so circles miss them; use {2 * cfg.contagion.window_days} days or more "
            "(the default is 180)")


#: share of rows with an unreadable time or duration above which :func:`check_unread_values` warns
TIME_WARN_SHARE = 0.01


def clock_zone(time_range: dict | None, zone: str, on: dt.date) -> tuple[dict | None, str | None]:
    """The quiet hours of a ``time_range`` (:func:`sum_counts`) in ``zone``, and the warning
    when they fall outside the night there (a zone left at UTC for an operator elsewhere, or
    local times read as UTC and shifted again); ``(None, None)`` when there is too little."""
    hours = (time_range or {}).get("rows_by_utc_hour")
    quiet = times.quiet_hours(hours, zone, on) if hours else None
    if quiet is None:
        return None, None
    return {**quiet, "timezone": zone}, times.zone_advice(quiet, zone)


def check_clock_zone(quality: dict, zone: str, on: dt.date) -> None:
    """:func:`clock_zone` of a run: the quiet hours into ``quality["time_range"]``, the
    warning logged."""
    quiet, advice = clock_zone(quality.get("time_range"), zone, on)
    if quiet is not None:
        quality["time_range"]["quiet_hours"] = quiet
    if advice:
        log.warning("%s", advice)


def unread_times(rows: int, null_timestamp: int, cfg: JobConfig) -> str | None:
    """The warning when more than :data:`TIME_WARN_SHARE` of ``rows`` have a ``start_time``
    that the configured format or unit does not read (None otherwise): a format with day and
    month swapped reads only the days up to the 12th, and the file checks (which see a file's
    smallest and largest value) cannot tell."""
    setting = time_setting(cfg)
    if setting is None or not rows or null_timestamp / rows <= TIME_WARN_SHARE:
        return None
    return (f"{null_timestamp:,} of {rows:,} CDR rows ({null_timestamp / rows:.1%}) have a start_time that does not "
            f"read with {setting}: they are quarantined as null_timestamp, their text in the quarantine's "
            "start_time_text; check the setting")


def unread_durations(rows: int, null_duration: int) -> str | None:
    """The warning when more than :data:`TIME_WARN_SHARE` of ``rows`` are voice calls without
    a duration that reads (an export writing ``00:01:23``, which a CSV's text keeps): each is
    a call lost to the ties."""
    if not rows or null_duration / rows <= TIME_WARN_SHARE:
        return None
    return (f"{null_duration:,} of {rows:,} CDR rows ({null_duration / rows:.1%}) are calls without a duration that "
            "reads: they are quarantined as null_duration (the quarantine's duration_s_text shows text as written); "
            "duration_s must be seconds, such as 83 for 00:01:23")


def check_unread_values(quality: dict, cfg: JobConfig) -> None:
    """:func:`unread_times` and :func:`unread_durations` of a run, logged."""
    by_reason = quality["quarantined_by_reason"]
    for warning in (unread_times(quality["rows_in"], by_reason["null_timestamp"], cfg),
                    unread_durations(quality["rows_in"], by_reason["null_duration"])):
        if warning:
            log.warning("%s", warning)


def check_usable_rows(quality: dict, window: Window, path: str, time_read: str | None = None) -> None:
    """Refuse a run without a single usable CDR row, with one line saying why and what to do.

    Typically an ``--as-of`` whose window misses the data (before the first CDR, or more than
    the lookback after the last); also input whose every row is quarantined.

    >>> w = Window(dt.date(2020, 1, 1), 30)
    >>> q = sum_counts([{"rows_in": 2, "used": 0, "outside_window": 2, "time_range": (1775000000, 1777000000)}])
    >>> check_usable_rows(q, w, "cdr/")
    Traceback (most recent call last):
    ...
    pipelines.io.InputError: cdr/: no CDR rows fall in the window [2019-12-02, 2020-01-01) (2 of 2 rows are outside it); the data covers 2026-03-31..2026-04-24: give an --as-of from 2026-04-01 to 2026-05-24 (or none: the day after the last CDR)
    """
    if quality["rows_used"] > 0:
        return
    n = quality["rows_in"]
    if n == 0:
        skipped = quality.get("skipped_files") or []
        raise InputError(f"{path}: no readable CDR rows ({len(skipped)} file(s) skipped as unreadable); "
                         "repair the files")
    by_reason = quality["quarantined_by_reason"]
    outside = by_reason["outside_window"]
    tr = quality.get("time_range")
    if outside and tr:
        first, last = dt.date.fromisoformat(tr["first"][:10]), dt.date.fromisoformat(tr["last"][:10])
        covers = f"{first}..{last}"
        core = tr.get("core")
        if core and (core["first"], core["last"]) != (str(first), str(last)):
            # a few rows with a broken clock must not stretch the advice over a century
            covers = f"{core['first']}..{core['last']} ({core['share']:.1%} of its rows; all: {first}..{last})"
            first, last = dt.date.fromisoformat(core["first"]), dt.date.fromisoformat(core["last"])
        lo, hi = first + dt.timedelta(days=1), last + dt.timedelta(days=window.lookback_days)
        raise InputError(
            f"{path}: no CDR rows fall in the window [{window.start_date}, {window.as_of}) ({outside:,} of {n:,} rows "
            f"are outside it); the data covers {covers}: give an --as-of from {lo} to {hi} "
            "(or none: the day after the last CDR)")
    ranked = sorted(by_reason.items(), key=lambda rc: -rc[1])
    top = ", ".join(f"{r} {c:,}" for r, c in ranked[:3] if c)
    if ranked[0][0] == "unknown_event_type":
        hint = ("set the job config's ingest.voice_types and ingest.sms_types to the export's event_type values "
                "(e.g. voice_types: [moc])")
    elif ranked[0][0] == "null_timestamp" and time_read is not None:
        hint = f"the start_time values do not read with {time_read} (the quarantine's start_time_text shows them)"
    else:
        hint = "check the input's columns and the job config's numbers and columns sections"
    raise InputError(f"{path}: no usable CDR rows: all {n:,} rows are quarantined ({top}); {hint}")

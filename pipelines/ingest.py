"""Ingest: CDR Parquet -> validated rows -> per-partition pair partials, with exact row accounting.

Duplicates are found by value, not by position, so the result does not depend on how the input
is split into partitions: a cheap pre-pass over the ``cdr_id`` column alone finds the ids that
occur more than once (a hash-bucketed reduction, never a shuffle of whole rows). In the main
pass the (rare) rows carrying such an id are set aside and resolved together in one task,
which keeps exactly one row per id (the first in a content order) and counts the rest as
``duplicate_cdr_id``.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from socialgraph.config import JobConfig
from socialgraph.kernels import dedup as _dedup
from socialgraph.ties import (
    REASONS,
    Window,
    aggregate_events,
    clean_events,
    empty_partial,
    split_partial,
)

from .io import FILE_MODE, check_cdr_files, list_parquet_files

ID_BUCKETS = 16


@dataclass
class CdrSource:
    """The CDR input: files, columns to read and the Dask dataframe over them."""

    path: str
    files: list[str]
    columns: list[str]  # contract names present
    rename: dict[str, str]  # input name -> contract name
    ddf: dd.DataFrame

    @property
    def has_ids(self) -> bool:
        return "cdr_id" in self.columns


def open_cdrs(path: str, cfg: JobConfig) -> CdrSource:
    """List and schema-check the CDR files, and open them lazily with Dask."""
    rename = cfg.columns.input_to_contract()
    fs, files = list_parquet_files(path)
    columns = check_cdr_files(fs, files, rename)
    input_of = {v: k for k, v in rename.items()}
    read_cols = [input_of.get(c, c) for c in columns]
    kw = {}
    if cfg.ingest.blocksize:
        kw["blocksize"] = cfg.ingest.blocksize
    if "://" not in str(path):
        files = [str(Path(f)) for f in files]
        if not cfg.ingest.blocksize:
            # pyarrow's native local file system reads ~2x faster than fsspec file objects;
            # Dask splits files by row groups (blocksize) only through fsspec
            kw["filesystem"] = pafs.LocalFileSystem()
    # Arrow-backed columns: no conversion to NumPy blocks, nulls and timestamp units kept.
    ddf = dd.read_parquet(files, columns=read_cols, dtype_backend="pyarrow", **kw)
    return CdrSource(path=str(path), files=files, columns=columns, rename=rename, ddf=ddf)


def _as_table(df: pd.DataFrame, rename: dict[str, str]) -> pa.Table:
    """A partition as an Arrow table with contract names; ``start_time`` as naive UTC.

    Files may differ in timestamp unit and zone; one type here lets rows from different files
    (e.g. the copies of a repeated ``cdr_id``) be concatenated and compared.
    """
    t = pa.Table.from_pandas(df, preserve_index=False)
    t = t.rename_columns([rename.get(c, c) for c in t.column_names])
    if "start_time" in t.column_names:
        i = t.column_names.index("start_time")
        col = t.column(i)
        if pa.types.is_timestamp(col.type) and (col.type.tz is not None or col.type.unit != "us"):
            col = pc.cast(col, pa.timestamp("us", tz="UTC"), safe=False).cast(pa.timestamp("us"))
            t = t.set_column(i, "start_time", col)
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


def _scan_partition(df: pd.DataFrame, rename: dict[str, str], now_s: int):
    """Latest plausible timestamp, and the partition's id values split into hash buckets."""
    t = _as_table(df, rename)
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
    return max_ts, buckets


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
    ddf = source.ddf[[input_of.get(c, c) for c in cols]]
    now_s = int(now.timestamp())
    parts = [dask.delayed(_scan_partition, nout=2)(p, source.rename, now_s) for p in ddf.to_delayed()]
    max_list = [p[0] for p in parts]
    dup_ids = np.empty(0, np.uint64)
    if source.has_ids:
        per_bucket = [
            dask.delayed(_duplicated_in_bucket)(*[p[1][i] for p in parts]) for i in range(ID_BUCKETS)
        ]
        maxes, buckets = compute(max_list, per_bucket, label="scan ids")
        dup_ids = np.sort(np.concatenate(buckets)) if buckets else dup_ids
    else:
        (maxes,) = compute(max_list, label="scan times")
    found = [m for m in maxes if m is not None]
    return (max(found) if found else None), dup_ids


def _quarantine_table(t: pa.Table, reason: np.ndarray) -> pa.Table:
    """Bad rows with their reason, in one schema whatever the input types were."""
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
        cols[name] = col
    cols["reason"] = pa.array(np.array(REASONS, dtype=object)[reason[bad] - 1], pa.string())
    return pa.table(cols)


def _write_quarantine(t: pa.Table, reason: np.ndarray, qdir: str | None, name: str) -> None:
    if qdir is None or not (reason != 0).any():
        return
    target = Path(qdir) / f"{name}.parquet"
    pq.write_table(_quarantine_table(t, reason), str(target), compression="zstd")
    os.chmod(target, FILE_MODE)


def process_partition(df: pd.DataFrame, index: int, rename: dict[str, str], window: Window,
                      cfg: JobConfig, dup_ids: np.ndarray, qdir: str | None,
                      boundaries: np.ndarray):
    """Main pass over one partition.

    Returns the pair partials split into the combine buckets of ``boundaries``, the row
    counts, and the rows set aside for duplicate resolution.
    """
    t = _as_table(df, rename)
    held = None
    if dup_ids.size and "cdr_id" in t.column_names:
        vals, valid = _id_values(t.column("cdr_id"))
        pos = np.minimum(np.searchsorted(dup_ids, vals), dup_ids.size - 1)
        hold = valid & (dup_ids[pos] == vals)
        if hold.any():
            held = t.filter(pa.array(hold))
            t = t.filter(pa.array(~hold))
    clean = clean_events(t, window, cfg.numbers)
    _write_quarantine(t, clean.reason, qdir, f"part-{index:05d}")
    counts = clean.counts()
    counts["rows_in"] = t.num_rows
    return split_partial(aggregate_events(clean, window, cfg.ties), boundaries), counts, held


def resolve_duplicates(held: list[pa.Table | None], window: Window, cfg: JobConfig, qdir: str | None,
                       boundaries: np.ndarray):
    """Keep one row per repeated ``cdr_id``, count the others as duplicates.

    The kept row is the first copy, in content order, that has no other fault, so a garbled
    copy never displaces a good one (the first copy of all when every copy is bad).
    """
    tables = [h for h in held if h is not None and h.num_rows]
    if not tables:
        return split_partial(empty_partial(window.n_words, window.start_utc), boundaries), {"rows_in": 0, "used": 0, **{r: 0 for r in REASONS}}
    t = pa.concat_tables(tables, promote_options="permissive")
    key = pc.cast(t.column("cdr_id"), pa.string())
    order_cols = [c for c in ("start_time", "caller", "callee", "duration_s", "event_type") if c in t.column_names]
    bad = clean_events(t, window, cfg.numbers).reason != 0
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
    clean = clean_events(t, window, cfg.numbers, duplicate=duplicate)
    _write_quarantine(t, clean.reason, qdir, "part-duplicates")
    counts = clean.counts()
    counts["rows_in"] = t.num_rows
    return split_partial(aggregate_events(clean, window, cfg.ties), boundaries), counts, None


def sum_counts(counts: list[dict]) -> dict:
    """Quality accounting over partitions; rows in = used + quarantined, checked."""
    total = {"rows_in": 0, "used": 0, **{r: 0 for r in REASONS}}
    for c in counts:
        for k, v in c.items():
            total[k] += v
    quarantined = sum(total[r] for r in REASONS)
    return {
        "rows_in": total["rows_in"],
        "rows_used": total["used"],
        "rows_quarantined": quarantined,
        "quarantined_by_reason": {r: total[r] for r in REASONS},
        "balanced": total["rows_in"] == total["used"] + quarantined,
    }

"""Shared fixtures: random dirty CDR tables, partitioned Parquet writing, and the graph stage
run in-process on Dask's synchronous scheduler (no cluster)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import dask
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.graph_build import build_ties
from pipelines.ingest import open_cdrs, scan
from socialgraph.config import JobConfig, NumberConfig
from socialgraph.numbers import number_keys
from socialgraph.ties import Window, edges_to_arrow, weigh_edges

AS_OF = dt.date(2026, 5, 1)
LOOKBACK = 30
COUNTRY_CODE = "86"
NATIONAL_LENGTH = 11

CDR_SCHEMA = pa.schema([
    ("caller", pa.string()),
    ("callee", pa.string()),
    ("start_time", pa.timestamp("ms")),
    ("duration_s", pa.int64()),
    ("event_type", pa.string()),
    ("cdr_id", pa.string()),
    ("caller_imei", pa.string()),
])


def _epoch_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86_400_000


def make_random_cdr(seed: int, n_rows: int, n_numbers: int, dirty: bool = True, *,
                    as_of: dt.date = AS_OF, lookback_days: int = LOOKBACK) -> pa.Table:
    """A CDR table in contract schema (timestamps in ms, naive = UTC).

    Numbers are 11-digit nationals of country 86, written as ``n``, ``+86n``, ``0086n``,
    ``86n`` or padded with whitespace; a few foreign (``+44...``) and short service numbers.
    With ``dirty``: garbage, null and over-long numbers, self-calls in mixed spellings, null or
    negative durations, ``data``/``mms``/null event types, timestamps outside the window or null,
    null ids, and repeated ids (exact copies and copies with different content), shuffled.
    """
    rng = random.Random(seed)
    pool: list[str] = []
    seen = set()
    while len(pool) < n_numbers:
        r = rng.random()
        if r < 0.08:
            n = "86" + "".join(rng.choice("0123456789") for _ in range(9))  # national starting 86
        elif r < 0.14:
            n = "+44" + "".join(rng.choice("0123456789") for _ in range(10))  # foreign
        elif r < 0.18:
            n = "100" + "".join(rng.choice("0123456789") for _ in range(2))  # short service code
        else:
            n = "1" + rng.choice("3589") + "".join(rng.choice("0123456789") for _ in range(9))
        if n not in seen:
            seen.add(n)
            pool.append(n)
    friends = {n: rng.sample(pool, k=min(3, len(pool))) for n in pool}

    def spell(n: str) -> str:
        if n.startswith("+"):
            return n if rng.random() < 0.7 else "00" + n[1:]
        r = rng.random()
        if len(n) != NATIONAL_LENGTH or r < 0.55:
            return n
        if r < 0.7:
            return "+86" + n
        if r < 0.8:
            return "0086" + n
        if r < 0.9:
            return "86" + n
        return rng.choice([" ", "\t", ""]) + n + rng.choice([" ", "  ", "\n"])

    garbage = [None, "", "   ", "12a45", "+", "abc", "13-800-138", "1" * 18, "+86" + "1" * 18,
               "+" + "9" * 18, "0086" + "1" * 16]
    start_ms = _epoch_ms(as_of - dt.timedelta(days=lookback_days))
    end_ms = _epoch_ms(as_of)
    rows = []
    for i in range(n_rows):
        caller = rng.choice(pool)
        callee = rng.choice(friends[caller]) if rng.random() < 0.8 else rng.choice(pool)
        if callee == caller:
            callee = pool[(pool.index(caller) + 1) % len(pool)]
        if rng.random() < 0.3:
            caller, callee = callee, caller
        kind = rng.random()
        event = "voice" if kind < 0.55 else "sms"
        if rng.random() < 0.06:
            event = rng.choice([" Voice ", "SMS", "VOICE", " sms"])
        duration = rng.randint(0, 900) if event.strip().lower() == "voice" else 0
        ts = rng.randrange(start_ms, end_ms)
        if rng.random() < 0.02:
            ts = rng.choice([start_ms, end_ms - 1])  # the window's edges are inside
        row = {"caller": spell(caller), "callee": spell(callee), "start_time": ts,
               "duration_s": duration, "event_type": event, "cdr_id": f"c{i:06d}",
               "caller_imei": f"35{rng.randrange(10**12):012d}"}
        if dirty:
            r = rng.random()
            if r < 0.03:
                row[rng.choice(["caller", "callee"])] = rng.choice(garbage)
            elif r < 0.04:
                row["caller"], row["callee"] = rng.choice(garbage), rng.choice(garbage)
            elif r < 0.07:
                row["caller"], row["callee"] = spell(caller), spell(caller)  # self-call
            elif r < 0.10:
                row["start_time"] = rng.choice([
                    None, end_ms, start_ms - 1,
                    rng.randrange(start_ms - 3 * 86_400_000, start_ms),
                    rng.randrange(end_ms, end_ms + 2 * 86_400_000)])
            elif r < 0.13:
                row["event_type"] = rng.choice(["data", "mms", None, "", "vo ice"])
            elif r < 0.15:
                row["duration_s"] = rng.choice([None, -1, -300])
            elif r < 0.16:
                row["duration_s"] = 7 if event.strip().lower() == "sms" else row["duration_s"]
            if rng.random() < 0.03:
                row["cdr_id"] = None
            if rng.random() < 0.01:
                row["caller_imei"] = None
        rows.append(row)

    if dirty:
        extra = []
        for row in rng.sample(rows, k=max(1, n_rows // 15)):
            copy = dict(row)
            r = rng.random()
            if r < 0.6 or copy["cdr_id"] is None:
                pass  # an exact re-send
            elif r < 0.75:
                copy["start_time"] = (copy["start_time"] or start_ms) + rng.randint(-5000, 5000)
            elif r < 0.85:
                copy["caller"] = rng.choice(garbage)
            elif r < 0.95:
                copy["duration_s"] = rng.choice([None, 5, -2])
            else:
                copy["event_type"] = "data"
            extra.append(copy)
            if rng.random() < 0.2:
                extra.append(dict(copy))  # three of the same id
        rows += extra
        rng.shuffle(rows)

    return pa.Table.from_pylist(rows, schema=CDR_SCHEMA)


def write_partition_files(table: pa.Table, directory, k: int, prefix: str = "part") -> list[Path]:
    """Write ``table`` as ``k`` Parquet files of contiguous row ranges; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, table.num_rows, k + 1).astype(int)
    paths = []
    for i in range(k):
        p = directory / f"{prefix}-{i:03d}.parquet"
        pq.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]), p)
        paths.append(p)
    return paths


def synchronous_compute(*objs, label: str = ""):
    return dask.compute(*objs, scheduler="synchronous")


def number_config() -> NumberConfig:
    return NumberConfig(country_code=COUNTRY_CODE, national_length=NATIONAL_LENGTH)


def graph_stage(path, cfg: JobConfig | None = None, *, as_of: dt.date = AS_OF,
                lookback_days: int = LOOKBACK, quarantine_dir=None, n_buckets: int = 3,
                balance_keys=None, expect_partitions: int | None = None):
    """Run scan + build_ties + weigh_edges on Dask's synchronous scheduler.

    ``balance_keys`` (number keys) place the combine's range split points; by default a few
    typical prefixes, so that several buckets are really used.
    Returns ``(edges, quality, hub_keys)`` with ``edges`` the Arrow table of ``edges.parquet``.
    """
    if balance_keys is None:
        balance_keys = number_keys(["10", "13", "135", "138", "15", "18", "44", "86"])
    cfg = cfg or JobConfig(numbers=number_config())
    source = open_cdrs(str(path), cfg)
    if expect_partitions is not None:
        assert source.ddf.npartitions == expect_partitions
    now = dt.datetime.now(dt.timezone.utc)
    _, dup_ids = scan(source, synchronous_compute, need_max_ts=False, now=now)
    window = Window(as_of, lookback_days, cfg.window.timezone)
    edges, quality = build_ties(source, window, cfg, dup_ids, synchronous_compute, n_buckets,
                                None if quarantine_dir is None else str(quarantine_dir),
                                balance_keys=np.asarray(balance_keys, np.int64))
    weighed, hub_keys = weigh_edges(edges, cfg.ties)
    return edges_to_arrow(weighed), quality, hub_keys


@pytest.fixture(scope="session")
def random_cdr():
    """Factory ``random_cdr(seed, n_rows, n_numbers, dirty=True, *, as_of, lookback_days)``."""
    return make_random_cdr


@pytest.fixture(scope="session")
def write_partitions():
    """Helper ``write_partitions(table, dir, k)`` -> list of k Parquet paths."""
    return write_partition_files


@pytest.fixture(scope="session")
def run_graph_stage():
    """Helper ``run_graph_stage(path, cfg=None, *, as_of, lookback_days, quarantine_dir, ...)``."""
    return graph_stage

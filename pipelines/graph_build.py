"""Stage: CDR partitions -> pair partials -> range-bucketed combine -> weighed ties.

The Dask graph is explicit: one task per input partition (validate, pre-aggregate to pairs,
split by key range), one task for rows with repeated ids, then a task-based shuffle of the
(much smaller) pair partials into buckets, each combined and sorted on a worker. The full tie
table stays on the workers, which also write it; the client receives per-number contact counts
(to find service hubs, a whole-graph property) and a compact copy of the ties for the graph.
"""

from __future__ import annotations

import os
from pathlib import Path

import dask
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from socialgraph.config import JobConfig
from socialgraph.ties import (
    PairPartial,
    Window,
    N_BLOCKS,
    activity_block_masks,
    apply_weights,
    combine_partials,
    edges_to_arrow,
    empty_partial,
    finalize_edges,
    hub_keys,
    node_contact_stats,
    range_boundaries,
    split_partial,
)

from .io import FILE_MODE
from .ingest import CdrSource, process_partition, resolve_duplicates, sum_counts


def _combine_bucket(*pieces: PairPartial, n_words: int, block_masks: np.ndarray) -> pa.Table:
    nonempty = [p for p in pieces if len(p)]
    if not nonempty:
        return finalize_edges(empty_partial(n_words), block_masks)
    return finalize_edges(combine_partials(nonempty), block_masks)


def partial_bytes_per_row(window: Window) -> int:
    """Bytes of a pair partial's row: two keys, 8 counts, a duration, the day bitmap."""
    return 16 + 32 + 8 + 8 * window.n_words


def default_buckets(cfg: JobConfig, threads: int, cdr_rows: int = 0, window: Window | None = None,
                    worker_memory: int = 0) -> int:
    """Combine buckets: eight per worker thread, so one combine's working set stays small and an
    uneven bucket delays the stage little; and more when the workers' memory is tight.

    A bucket's combine holds its partials and about 1.7 times their size more at its peak
    (measured on the 10M-row world), on top of the ~300 MiB a worker holds anyway. Partials
    hardly shrink below one row per CDR row within a task, so with ``worker_memory`` (the
    smallest worker's limit) known, buckets are made small enough that a bucket's partials
    are at most 1/16 of it.
    """
    if cfg.ingest.combine_partitions:
        return cfg.ingest.combine_partitions
    n = 8 * threads
    if worker_memory and cdr_rows and window is not None:
        n = max(n, -(-cdr_rows * partial_bytes_per_row(window) * 16 // worker_memory))
    return int(min(n, 4096))


#: every this many rows of a partial, its ``a`` key goes into the sample that places the
#: combine buckets' split points (1.6 % of the pairs: ~1.5M keys at 100M CDR rows)
KEY_SAMPLE_STRIDE = 64


def _key_sample(part: PairPartial) -> np.ndarray:
    return part.a[::KEY_SAMPLE_STRIDE].copy()


#: pieces whose partials place the split points (spread over the input: weekly files differ
#: little in which numbers call)
SAMPLE_PIECES = 4
#: a bucket's partials are first combined in groups of this many pieces (a tree reduction):
#: a group's combine can run, and free its pieces' partials, before the other pieces are read
COMBINE_GROUP = 8


def _combine_group(*pieces: PairPartial) -> PairPartial:
    nonempty = [p for p in pieces if len(p)]
    return combine_partials(nonempty) if nonempty else pieces[0]


def _bucket_tasks(source: CdrSource, window: Window, cfg: JobConfig, dup_ids: np.ndarray,
                  n_buckets: int, quarantine_dir: str | None, balance_keys: np.ndarray | None,
                  compute, secret: bytes | None = None, handset_keys: np.ndarray | None = None):
    """Delayed tie tables, one per bucket (sorted, concatenating in order), and row counts.

    Buckets are ranges of the pairs' ``a`` key. Their split points come from a sample of the
    pairs' own keys in a few pieces spread over the input (computed first and kept), so the
    buckets hold about equal numbers of pairs: quantiles of the subscriber numbers made the
    first bucket three times the average (``a`` is the smaller number of a pair, and off-net
    numbers below the operator's range all land there), the one that killed workers under a
    tight memory limit. ``balance_keys`` places the split points instead (tests). The other
    pieces split their partials as they make them, and each bucket combines its partials in
    groups of :data:`COMBINE_GROUP` pieces first, so the workers never hold every piece's
    partials at once (the combine's sums, minima, maxima and day bits do not depend on it).
    """
    block_masks = activity_block_masks(window, cfg.scoring.block_days)
    parts = source.ddf.to_delayed()
    if handset_keys is not None:  # one copy in the task graph, sent once to each worker
        handset_keys = dask.delayed(np.asarray(handset_keys, np.int64), pure=True)
    sampled: dict[int, object] = {}
    counts_of: dict[int, dict] = {}
    if balance_keys is None:
        picks = sorted(set(np.linspace(0, len(parts) - 1, min(len(parts), SAMPLE_PIECES)).round().astype(int).tolist()))
        tasks = [dask.delayed(process_partition, nout=3)(parts[i], i, source.rename, window, cfg, dup_ids,
                                                         quarantine_dir, None, secret=secret,
                                                         handset_keys=handset_keys) for i in picks]
        sampled = dict(zip(picks, dask.persist(*tasks)))  # computed once, kept for the split below
        samples, sampled_counts = compute([dask.delayed(_key_sample)(t[0]) for t in sampled.values()],
                                          [t[1] for t in sampled.values()], label="read CDRs")
        # Their row counts are fetched now, so that nothing the caller keeps refers to the
        # sampled pieces' results: a delayed count would hold each piece's whole partial on
        # its worker until the end of the stage (350 MiB at 20M CDR rows, at the stage's peak).
        counts_of = dict(zip(sampled, sampled_counts))
        balance_keys = np.concatenate(samples) if samples else np.empty(0, np.int64)
    boundaries = range_boundaries(np.asarray(balance_keys, np.int64), n_buckets)
    n_buckets = boundaries.size + 1
    processed = [
        sampled[i] if i in sampled else
        dask.delayed(process_partition, nout=3)(p, i, source.rename, window, cfg, dup_ids,
                                                quarantine_dir, boundaries, secret=secret, handset_keys=handset_keys)
        for i, p in enumerate(parts)
    ]
    dups = dask.delayed(resolve_duplicates, nout=3)([p[2] for p in processed], window, cfg,
                                                    quarantine_dir, boundaries, secret=secret,
                                                    handset_keys=handset_keys)
    split = [dask.delayed(split_partial, nout=n_buckets)(p[0], boundaries) if i in sampled else p[0]
             for i, p in enumerate(processed)] + [dups[0]]
    counts = [counts_of[i] if i in counts_of else p[1] for i, p in enumerate(processed)] + [dups[1]]
    groups = [split[g:g + COMBINE_GROUP] for g in range(0, len(split), COMBINE_GROUP)]
    combined = []
    for k in range(n_buckets):
        pieces = [s[k] for s in split] if len(groups) == 1 else \
            [dask.delayed(_combine_group)(*[s[k] for s in grp]) for grp in groups]
        combined.append(dask.delayed(_combine_bucket)(*pieces, n_words=window.n_words, block_masks=block_masks))
    return combined, counts


def build_ties(source: CdrSource, window: Window, cfg: JobConfig, dup_ids: np.ndarray,
               compute, n_buckets: int, quarantine_dir: str | None,
               balance_keys: np.ndarray | None = None) -> tuple[pa.Table, dict]:
    """Run ingest + pair aggregation; return the whole tie table (number keys) and the counts.

    Pairs are range-partitioned by their ``a`` key into ``n_buckets``, split at quantiles of
    ``balance_keys`` (the subscriber numbers: most pairs have an on-net ``a``), so each
    bucket is combined and sorted on a worker and the buckets concatenate into a sorted table.
    The job itself uses :func:`build_graph_edges`, which keeps the full table on the workers.
    """
    combined, counts = _bucket_tasks(source, window, cfg, dup_ids, n_buckets, quarantine_dir, balance_keys,
                                    compute)
    buckets, counts = compute(combined, counts, label="build call graph")
    edges = pa.concat_tables(buckets)  # chunked, no copy: buckets are already in (a, b) order
    return edges, sum_counts(counts)


#: What the client keeps of each tie for the call graph and the later stages (61 bytes a tie);
#: the full table is written by the workers.
GRAPH_COLUMNS = {
    "a": pa.int64(), "b": pa.int64(), "weight": pa.float64(), "reciprocal": pa.bool_(),
    "calls_ab": pa.int32(), "calls_ba": pa.int32(), "sms_ab": pa.int32(), "sms_ba": pa.int32(),
    "active_days": pa.int32(), "evening_weekend_share": pa.float32(), "working_hours_share": pa.float32(),
    "first_seen": pa.int64(), "last_seen": pa.int64(),
    **{f"days_block_{k}": pa.int16() for k in range(N_BLOCKS)},
}


def _finish_bucket(ties: pa.Table, hubs: np.ndarray, cfg: JobConfig, path: str | None,
                   secret: bytes | None = None) -> pa.Table:
    weighed = apply_weights(ties, hubs, cfg.ties)
    if path is not None:
        target = Path(path)
        pq.write_table(edges_to_arrow(weighed, secret), str(target), compression="zstd")
        os.chmod(target, FILE_MODE)
    return pa.table({name: weighed.column(name).cast(typ) for name, typ in GRAPH_COLUMNS.items()})


def build_graph_edges(source: CdrSource, window: Window, cfg: JobConfig, dup_ids: np.ndarray,
                      compute, n_buckets: int, quarantine_dir: str | None, edges_dir: str | None,
                      balance_keys: np.ndarray | None = None, secret: bytes | None = None,
                      handset_keys: np.ndarray | None = None) -> tuple[pa.Table, np.ndarray, dict]:
    """The job's graph stage: ties built, weighed and written on the workers.

    ``secret``: write keyed pseudonyms instead of numbers (edges and quarantine).
    ``handset_keys``: numbers whose handsets (``caller_imei``) to collect, returned in the
    counts as ``handsets`` (``(keys, tokens)``, see :func:`pipelines.ingest._handsets`).

    Phase 1 combines each bucket and keeps its tie table on the worker, sending the client only
    per-number contact counts, from which the client finds the service hubs. Phase 2 weighs
    each bucket, writes it as ``edges_dir/part-NNNNN.parquet`` (buckets are key ranges, so the
    parts in name order are sorted by ``(a, b)``), and sends the client only
    :data:`GRAPH_COLUMNS`. Returns that table, the hub keys and the row counts.
    """
    combined, counts = _bucket_tasks(source, window, cfg, dup_ids, n_buckets, quarantine_dir, balance_keys,
                                    compute, secret, handset_keys)
    combined = list(dask.persist(*combined))
    stats = [dask.delayed(node_contact_stats)(c) for c in combined]
    stats, counts = compute(stats, counts, label="build call graph")
    hubs = hub_keys(stats, cfg.ties)
    finished = [
        dask.delayed(_finish_bucket)(c, hubs, cfg, None if edges_dir is None else f"{edges_dir}/part-{k:05d}.parquet",
                                     secret)
        for k, c in enumerate(combined)
    ]
    (tables,) = compute(finished, label="weigh and write ties")
    del combined
    return pa.concat_tables(tables), hubs, sum_counts(counts)

"""Stage: CDR partitions -> pair partials -> hash-bucketed combine -> tie table on the client.

The Dask graph is explicit: one task per input partition (validate + pre-aggregate), one task
for rows with repeated ids, then a task-based shuffle of the (much smaller) pair partials into
``n_buckets`` buckets, each combined and finalised on a worker. Only the finished ties come to
the client, where tie strength and service hubs need the whole graph.
"""

from __future__ import annotations

import dask
import numpy as np
import pyarrow as pa

from socialgraph.config import JobConfig
from socialgraph.ties import (
    PairPartial,
    Window,
    combine_partials,
    empty_partial,
    finalize_edges,
    range_boundaries,
)

from .ingest import CdrSource, process_partition, resolve_duplicates, sum_counts


def _combine_bucket(*pieces: PairPartial, n_words: int) -> pa.Table:
    nonempty = [p for p in pieces if len(p)]
    if not nonempty:
        return finalize_edges(empty_partial(n_words))
    return finalize_edges(combine_partials(nonempty))


def default_buckets(cfg: JobConfig, threads: int) -> int:
    """Combine buckets: four per worker thread, so one combine's working set stays small and an
    uneven bucket delays the stage little."""
    return cfg.ingest.combine_partitions or 4 * threads


def build_ties(source: CdrSource, window: Window, cfg: JobConfig, dup_ids: np.ndarray,
               compute, n_buckets: int, quarantine_dir: str | None,
               balance_keys: np.ndarray | None = None) -> tuple[pa.Table, dict]:
    """Run ingest + pair aggregation; return the tie table (number keys) and quality counts.

    Pairs are range-partitioned by their ``a`` key into ``n_buckets``, split at quantiles of
    ``balance_keys`` (the subscriber numbers: most pairs have an on-net ``a``), so each
    bucket is combined and sorted on a worker and the buckets concatenate into a sorted table.
    """
    boundaries = range_boundaries(balance_keys if balance_keys is not None else np.empty(0, np.int64), n_buckets)
    n_buckets = boundaries.size + 1
    parts = source.ddf.to_delayed()
    processed = [
        dask.delayed(process_partition, nout=3)(p, i, source.rename, window, cfg, dup_ids,
                                                quarantine_dir, boundaries)
        for i, p in enumerate(parts)
    ]
    dups = dask.delayed(resolve_duplicates, nout=3)([p[2] for p in processed], window, cfg,
                                                    quarantine_dir, boundaries)
    split = [p[0] for p in processed] + [dups[0]]
    counts = [p[1] for p in processed] + [dups[1]]
    combined = [
        dask.delayed(_combine_bucket)(*[s[k] for s in split], n_words=window.n_words)
        for k in range(n_buckets)
    ]
    buckets, counts = compute(combined, counts, label="build call graph")
    edges = pa.concat_tables(buckets)  # chunked, no copy: buckets are already in (a, b) order
    return edges, sum_counts(counts)

"""Write a synthetic operator to disk: CDR dataset, subscribers, operators file, job config, truth."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from socialgraph.synth import SynthConfig, make_operator

from .io import atomic_path, ensure_dir, replace_dir, write_parquet

log = logging.getLogger("socialgraph")

#: rows per Parquet row group of the CDR files (~10 MiB uncompressed): a week's file can be
#: split into small tasks (``ingest.blocksize``) for workers with little memory
ROW_GROUP_ROWS = 1 << 17


def write_synthetic(out: str | Path, config: SynthConfig) -> dict:
    """Generate and write a synthetic operator under ``out``; return the paths written."""
    t0 = time.perf_counter()
    out = ensure_dir(Path(out))
    op = make_operator(config)
    # the CDR and truth datasets are written aside and then replace the old ones whole: a
    # world written over another (fewer weeks, another size) must not keep the other's weeks
    cdr_dir = out / "cdr"
    cdr_tmp = out / ".cdr.tmp"
    shutil.rmtree(cdr_tmp, ignore_errors=True)
    rows = 0
    for name, table in op.cdr_chunks():
        part = ensure_dir(cdr_tmp / name)
        with atomic_path(part / "part-0.parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        rows += table.num_rows
        log.info("synth: wrote %s (%s rows)", name, f"{table.num_rows:,}")
    replace_dir(ensure_dir(cdr_tmp), cdr_dir)
    write_parquet(op.subscribers, out / "subscribers.parquet")
    with atomic_path(out / "operators.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(op.operators, sort_keys=False), encoding="utf-8")
    job = {"numbers": {"country_code": op.country_code, "national_length": op.national_length}}
    with atomic_path(out / "job.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    truth, truth_tmp = out / "truth", out / ".truth.tmp"
    shutil.rmtree(truth_tmp, ignore_errors=True)
    ensure_dir(truth_tmp)
    for name, table in op.truth.items():
        write_parquet(table, truth_tmp / f"{name}.parquet")
    replace_dir(truth_tmp, truth)
    info = {
        "cdr": str(cdr_dir),
        "subscribers": str(out / "subscribers.parquet"),
        "operators": str(out / "operators.yaml"),
        "config": str(out / "job.yaml"),
        "truth": str(truth),
        "as_of": op.as_of.isoformat(),
        "cdr_rows": rows,
        "subscriber_rows": op.subscribers.num_rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return info

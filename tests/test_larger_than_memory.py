"""Input larger than the workers' memory: the job spills to disk instead of dying, and gives
the same outputs as a run with plenty of memory.

CI size: a small world split into many small tasks, and one worker told to keep at most
10 MiB of results in memory (Dask's ``target`` fraction of its limit): everything the graph
stage holds between tasks, a few tens of MiB here, goes to disk and comes back. (A limit low
enough to force that by itself would sit too close to the ~300 MiB a worker with the engine
imported holds anyway for a CI machine.) Dask judges what it holds by ``sizeof``: without the
pair partials' own, it took them for 56 bytes each and never spilled them, which this test
would catch.
The full-size run (1.5 GiB of CDRs in Arrow, one worker of 700 MiB) is
``benchmarks/scale.py --world ... --workers 1 --worker-memory 700MiB --blocksize 16MiB``
(README "Memory envelope").
"""

from __future__ import annotations

import hashlib

import dask
import numpy as np
import pyarrow.parquet as pq
import pytest
from dask.sizeof import sizeof

from pipelines.config_file import config_from_mapping
from pipelines.run import JobSpec, run_job
from pipelines.synth_io import write_synthetic
from socialgraph.synth import COUNTRY_CODE, NATIONAL_LENGTH, SynthConfig

COMPARED = ["subscribers_scored.parquet", "circles.parquet", "circle_members.parquet", "number_changes.parquet",
            "nodes.parquet", "edges.parquet"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ltm")
    write_synthetic(root, SynthConfig(n_subscribers=12000, weeks=8, seed=33))
    # small row groups, so a file can be read in many small tasks
    for f in sorted((root / "cdr").rglob("*.parquet")):
        pq.write_table(pq.read_table(f), f, row_group_size=4096)
    return root


def _run(world, out, cluster, ingest):
    cfg = config_from_mapping({
        "numbers": {"country_code": COUNTRY_CODE, "national_length": NATIONAL_LENGTH},
        "cluster": cluster, "ingest": ingest, "contagion": {"fdr": 0.5},
    })
    return run_job(JobSpec(cdr=str(world / "cdr"), subscribers=str(world / "subscribers.parquet"),
                           operators=str(world / "operators.yaml"), out=str(out), config=cfg, progress=False))


def test_a_worker_with_too_little_memory_spills_and_the_outputs_are_unchanged(world, tmp_path):
    roomy = _run(world, tmp_path / "roomy", {"n_workers": 2}, {})
    with dask.config.set({"distributed.worker.memory.target": 10 / 1024,
                          "distributed.worker.memory.spill": 0.9}):
        tight = _run(world, tmp_path / "tight", {"n_workers": 1, "memory_limit": "1GiB"},
                     {"blocksize": "128KiB"})
    graph = {s["name"]: s for s in tight["stages"]}["graph"]
    assert graph["workers_spilled_gib"] > 0, "the tight worker never spilled: the test shows nothing"
    assert {s["name"]: s for s in roomy["stages"]}["graph"]["workers_spilled_gib"] == 0
    assert tight["rows"] == roomy["rows"]
    for name in COMPARED:
        a, b = pq.read_table(tmp_path / "roomy" / name), pq.read_table(tmp_path / "tight" / name)
        assert a.num_rows > 0 and a.equals(b), f"{name} differs under a tight memory limit"
    digest = [hashlib.sha256((tmp_path / d / "targets.csv").read_bytes()).hexdigest() for d in ("roomy", "tight")]
    assert digest[0] == digest[1]


def test_dask_sees_the_size_of_a_pair_partial():
    import pipelines.ingest  # noqa: F401  (registers it, as on a worker running its tasks)
    from socialgraph.ties import PairPartial

    n = 1000
    p = PairPartial(np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 8), np.int32),
                    np.zeros(n, np.int64), np.zeros((n, 3), np.int64), 0)
    assert n * 80 <= sizeof(p) <= n * 80 + 1024
    assert sizeof([p, p]) >= 2 * n * 80


def test_combine_buckets_hold_about_equal_shares_of_the_ties(world, tmp_path):
    # split points from a sample of the pairs' own keys; quantiles of the subscriber numbers
    # gave the first bucket ~3x the average (the smaller number of a pair is its `a` key)
    _run(world, tmp_path / "out", {"n_workers": 2}, {})
    parts = sorted((tmp_path / "out" / "edges.parquet").glob("part-*.parquet"))
    rows = np.array([pq.ParquetFile(p).metadata.num_rows for p in parts])
    assert len(parts) == 16
    assert rows.max() <= 1.5 * rows.mean(), rows.tolist()


def test_tight_workers_get_more_combine_buckets():
    import datetime as dt

    from pipelines.graph_build import default_buckets
    from socialgraph.config import JobConfig
    from socialgraph.ties import Window

    cfg, w = JobConfig(), Window(dt.date(2026, 3, 1), 180)
    assert default_buckets(cfg, 2) == 16
    assert default_buckets(cfg, 2, 10_000_000, w, 0) == 16  # no limit known
    assert default_buckets(cfg, 2, 10_000_000, w, 24 << 30) == 16  # roomy
    # 10M rows of 80-byte partials, each bucket's at most 1/16 of a 700 MiB worker
    n = default_buckets(cfg, 2, 10_000_000, w, 700 << 20)
    assert 10_000_000 * 80 / n <= (700 << 20) / 16 and n < 40


def test_auto_blocksize_follows_the_workers_memory():
    from pipelines.ingest import resolve_blocksize
    from socialgraph.config import IngestConfig

    mib = 1 << 20
    assert resolve_blocksize(None) is None and resolve_blocksize("64MiB") == 64 * mib
    assert resolve_blocksize("auto") == 256 * mib  # an external cluster: limits unknown
    assert resolve_blocksize("auto", 700 * mib) == 25 * mib  # (700 - 300) / 16
    assert resolve_blocksize("auto", 400 * mib) == 16 * mib  # never below 16 MiB
    assert resolve_blocksize("auto", 9830 * mib) == (9830 - 300) * mib // 16
    assert resolve_blocksize("auto", 64 << 30) == 1 << 30  # never above 1 GiB
    assert IngestConfig().blocksize == "auto"
    with pytest.raises(ValueError, match="ingest.blocksize"):
        IngestConfig(blocksize="big")

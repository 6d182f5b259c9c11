"""The job on a real Dask cluster: a `dask scheduler` and two `dask worker` processes started
from the command line on 127.0.0.1, as on a cluster; `socialgraph run --scheduler` must give
outputs identical to the embedded local cluster on the same input."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.synth_io import write_synthetic
from scripts import console_script
from socialgraph.synth import SynthConfig

COMPARED = ["subscribers_scored.parquet", "circles.parquet", "circle_members.parquet",
            "number_changes.parquet", "nodes.parquet"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    sched_file = root / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([console_script("dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), "the scheduler did not start"
        for _ in range(2):
            procs.append(subprocess.Popen(
                [console_script("dask"), "worker", "--scheduler-file", str(sched_file), "--nworkers", "1", "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "2GiB",
                 "--local-directory", str(root / "workers")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        from distributed import Client

        with Client(scheduler_file=str(sched_file), timeout="60s") as c:
            c.wait_for_workers(2, timeout=90)
            address = c.scheduler.address
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cworld")
    write_synthetic(root, SynthConfig(n_subscribers=2000, weeks=6, seed=8))
    return root


def _run(world: Path, out: Path, *extra: str) -> None:
    proc = subprocess.run([console_script("socialgraph"), "run", "--cdr", str(world / "cdr"),
                           "--subscribers", str(world / "subscribers.parquet"),
                           "--operators", str(world / "operators.yaml"), "--config", str(world / "job.yaml"),
                           "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr


def test_external_cluster_gives_the_embedded_outputs(cluster, world, tmp_path):
    _run(world, tmp_path / "embedded")
    _run(world, tmp_path / "external", "--scheduler", cluster)
    for name in COMPARED:
        a = pq.read_table(tmp_path / "embedded" / name)
        b = pq.read_table(tmp_path / "external" / name)
        assert a.equals(b), f"{name} differs between the embedded and the external cluster"
    assert pq.read_table(tmp_path / "embedded" / "edges.parquet").equals(pq.read_table(tmp_path / "external" / "edges.parquet"))
    assert (tmp_path / "embedded" / "targets.csv").read_bytes() == (tmp_path / "external" / "targets.csv").read_bytes()

"""The same inputs and seed give the same outputs, whatever the number of Dask workers and
partitions: circles, their ids, flags, targets, number changes and scores (issue: monthly runs
must be reproducible)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_allclose

from pipelines.config_file import config_from_mapping
from pipelines.run import JobSpec, run_job
from pipelines.synth_io import write_synthetic
from socialgraph.config import NumberConfig
from socialgraph.contagion import baseline_churn_probability, independent_churn_probability
from socialgraph.numbers import number_keys
from socialgraph.subscribers import day_number, subscribers_from_arrow
from socialgraph.synth import COUNTRY_CODE, NATIONAL_LENGTH, SynthConfig

COMPARED = ["subscribers_scored.parquet", "circles.parquet", "circle_members.parquet", "number_changes.parquet",
            "nodes.parquet", "circle_history.parquet"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    write_synthetic(root, SynthConfig(n_subscribers=2500, weeks=8, seed=21))
    return root


def _run(world, out, n_workers, blocksize):
    cfg = config_from_mapping({
        "numbers": {"country_code": COUNTRY_CODE, "national_length": NATIONAL_LENGTH},
        "cluster": {"n_workers": n_workers, "threads_per_worker": 1},
        "ingest": {"blocksize": blocksize},
        # contagion flags on this small world need a lenient FDR to have targets to compare
        "contagion": {"fdr": 0.5},
        # small Leiden batches: the layers run as many tasks on the workers (as a large world's do)
        "circles": {"leiden_batch_edges": 300},
    })
    manifest = run_job(JobSpec(cdr=str(world / "cdr"), subscribers=str(world / "subscribers.parquet"),
                               operators=str(world / "operators.yaml"), out=str(out), config=cfg, progress=False))
    assert min(manifest["circles"][k]["leiden_batches"] for k in ("family", "social")) > 1
    # the scores and number changes ran in the client while the workers ran Leiden: inside the
    # circles stage's time (so the outputs compared below were made that way)
    stages = {s["name"]: s for s in manifest["stages"]}
    circles = stages["circles"]
    assert circles.get("overlapped") == ["scores", "number_changes"]
    for name in circles["overlapped"]:
        inner = stages[name]
        assert circles["started_s"] <= inner["started_s"]
        assert inner["started_s"] + inner["seconds"] <= circles["started_s"] + circles["seconds"] + 1e-3
    return out


def _assert_one_row_per_circle_member_and_subscriber(out):
    """What the job's contact list assumes of its own tables without checking them
    (``build_targets(check_tables=False)``), checked on the tables it wrote."""
    circles = pq.read_table(out / "circles.parquet").to_pandas()
    members = pq.read_table(out / "circle_members.parquet").to_pandas()
    scored = pq.read_table(out / "subscribers_scored.parquet").to_pandas()
    assert not circles["circle_id"].duplicated().any()
    assert not members.duplicated(["circle_id", "msisdn"]).any()
    assert set(members["circle_id"]) <= set(circles["circle_id"])
    assert members.loc[members["role"] == "anchor", "circle_id"].is_unique
    assert (members["role"] == "anchor").any()
    assert not scored["msisdn"].duplicated().any()


def _assert_expected_churn_is_the_sum_of_member_baselines(world, out):
    """The job's baselines are strata of tenure x plan x ARPU x contacts, the contacts being
    each subscriber's degree in the call graph the job wrote (``nodes.parquet``), each
    stratum's rate taken where no co-member churned."""
    numbers = NumberConfig(country_code=COUNTRY_CODE, national_length=NATIONAL_LENGTH)
    subs = subscribers_from_arrow(pq.read_table(world / "subscribers.parquet"), numbers)
    nodes = pq.read_table(out / "nodes.parquet").to_pandas()
    degree = pd.Series(nodes["degree"].to_numpy(), index=number_keys(nodes["msisdn"].to_numpy(object), numbers))
    contacts = degree.reindex(subs.key).fillna(0).to_numpy()
    manifest = json.loads((out / "manifest.json").read_text())
    as_of = day_number(pd.Timestamp(manifest["window"]["as_of"]).date())
    circles = pq.read_table(out / "circles.parquet").to_pandas()
    start = as_of - int(circles["window_days"].iloc[0])
    churned_window = (subs.churn_day >= start) & (subs.churn_day < as_of)
    changes = pq.read_table(out / "number_changes.parquet").to_pandas()
    reentered = np.isin(subs.key, number_keys(changes.loc[changes["kind"] == "reentry", "old_msisdn"]
                                              .to_numpy(object), numbers))
    members = pq.read_table(out / "circle_members.parquet").to_pandas()
    members["row"] = pd.Index(subs.key).get_indexer(number_keys(members["msisdn"].to_numpy(object), numbers))
    # the tested members (on-net, active at the window start), grouped by circle: the rate is
    # estimated where none of a subscriber's co-members churned
    tested = members[(members["row"] >= 0)].sort_values("circle_id", kind="stable")
    tested = tested[subs.active_at(start)[tested["row"].to_numpy()]]
    codes = tested["circle_id"].factorize()[0]
    ptr = np.r_[0, np.cumsum(np.bincount(codes))]
    rate, _ = independent_churn_probability(subs, start, as_of, (ptr, tested["row"].to_numpy()),
                                            not_churn=reentered & churned_window, contacts=contacts)
    base = pd.Series(rate, index=subs.key)
    members["baseline"] = base.reindex(number_keys(members["msisdn"].to_numpy(object), numbers)).to_numpy()
    expected = members.groupby("circle_id")["baseline"].sum().reindex(circles["circle_id"]).fillna(0.0)
    assert_allclose(circles["expected_churn"].to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-12)
    # the contact quartiles do split the strata: without them the sums differ
    plain = pd.Series(baseline_churn_probability(subs, start, as_of, not_churn=reentered & churned_window),
                      index=subs.key)
    assert not np.allclose(plain.dropna().to_numpy(), base.dropna().to_numpy())


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_outputs_identical_across_1_2_4_workers(world, tmp_path):
    # 1, 2 and 4 workers split the ties into different key-range buckets; blocksize reads through fsspec instead
    # of pyarrow's file system
    runs = [_run(world, tmp_path / f"w{n}", n, bs) for n, bs in ((1, None), (2, "256KiB"), (4, "64KiB"))]
    first = runs[0]
    assert pq.read_table(first / "circles.parquet").num_rows > 0
    _assert_one_row_per_circle_member_and_subscriber(first)
    _assert_expected_churn_is_the_sum_of_member_baselines(world, first)
    assert (first / "targets.csv").read_text().count("\n") > 1, "no targets to compare"
    for other in runs[1:]:
        for name in COMPARED:
            a, b = pq.read_table(first / name), pq.read_table(other / name)
            assert a.equals(b), f"{name} differs between {first.name} and {other.name}"
        assert _digest(first / "targets.csv") == _digest(other / "targets.csv")
        assert pq.read_table(first / "edges.parquet").equals(pq.read_table(other / "edges.parquet"))


def test_workers_restarted_before_leiden_give_the_same_outputs(world, tmp_path, monkeypatch, caplog):
    """The embedded workers are restarted before Leiden only when they hold a lot (never on
    this small world); forced to restart, the job gives the same outputs."""
    import logging

    import pipelines.cluster as cluster

    with caplog.at_level(logging.INFO, logger=cluster.log.name):
        plain = _run(world, tmp_path / "plain", 2, None)
        assert "restarting the workers" not in caplog.text
        monkeypatch.setattr(cluster, "RESTART_ABOVE_BYTES", -(2**40))
        restarted = _run(world, tmp_path / "restarted", 2, None)
        assert "restarting the workers" in caplog.text
    for name in COMPARED:
        assert pq.read_table(plain / name).equals(pq.read_table(restarted / name)), name
    assert _digest(plain / "targets.csv") == _digest(restarted / "targets.csv")

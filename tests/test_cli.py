"""The installed ``socialgraph`` console script, run as a user runs it (a real local Dask cluster)."""

from __future__ import annotations

import datetime as dt
import json
import stat
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import AS_OF, COUNTRY_CODE, LOOKBACK, NATIONAL_LENGTH, make_random_cdr, write_partition_files
from reference import assert_edges_equal_reference, reference_edges, reference_quality
from scripts import console_script

CONTRACT_EDGE_COLUMNS = ["a", "b", "calls", "sms", "duration_s", "active_days", "reciprocal", "weight"]


def _run(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([console_script("socialgraph"), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    table = make_random_cdr(seed=77, n_rows=500, n_numbers=30)
    write_partition_files(table, root / "cdr" / "day=2026-04", 2)
    subs = pa.table({"msisdn": ["13800000001", "13900000002"],
                     "activation_date": pa.array([dt.date(2020, 1, 1), dt.date(2024, 6, 1)])})
    pq.write_table(subs, root / "subscribers.parquet")
    (root / "job.yaml").write_text(
        f"numbers:\n  country_code: {COUNTRY_CODE}\n  national_length: {NATIONAL_LENGTH}\n"
        "cluster:\n  n_workers: 1\n  threads_per_worker: 2\n")
    return root, table


@pytest.fixture(scope="module")
def good_run(dataset):
    root, table = dataset
    out = root / "out"
    proc = _run("run", "--cdr", root / "cdr", "--subscribers", root / "subscribers.parquet", "--out", out,
                "--as-of", AS_OF.isoformat(), "--lookback-days", LOOKBACK, "--config", root / "job.yaml",
                cwd=root)
    return proc, out, table


def test_run_exits_zero_and_writes_outputs(good_run):
    proc, out, _ = good_run
    assert proc.returncode == 0, proc.stderr
    for name in ("edges.parquet", "nodes.parquet", "quality.json", "manifest.json"):
        assert (out / name).exists(), name


def test_manifest_complete_with_timed_stages(good_run):
    proc, out, _ = good_run
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    stages = manifest["stages"]
    assert stages and all(isinstance(s["seconds"], (int, float)) and s["seconds"] >= 0 for s in stages)
    assert {"scan", "graph"} <= {s["name"] for s in stages}
    assert manifest["window"]["as_of"] == AS_OF.isoformat()
    assert manifest["config"]["numbers"]["country_code"] == COUNTRY_CODE
    # the contagion test's circles at p <= t against chance, counted from circles.parquet
    bc = manifest["circles"]["beyond_chance"]
    p_values = pq.read_table(out / "circles.parquet", columns=["p_value"]).column("p_value").to_numpy()
    assert bc["circles"] == [int((p_values <= t).sum()) for t in bc["p_at_most"]]
    assert len(bc["by_chance"]) == len(bc["p_at_most"]) and all(x >= 0 for x in bc["by_chance"])
    # and the run says it in one line: flagged of tested, beyond chance, contacts listed
    i = bc["p_at_most"].index(0.001)
    targets = sum(1 for _ in (out / "targets.csv").open(encoding="utf-8")) - 1
    said = (f"socialgraph: {manifest['circles']['flagged']:,} of {manifest['circles']['tested']:,} tested circles "
            f"flagged; {bc['circles'][i]:,} at p <= 0.001 where chance alone gives about {bc['by_chance'][i]:,.1f}; "
            f"{targets:,} contacts in targets.csv")
    assert said in _lines(proc.stderr), proc.stderr


def test_edges_parquet_is_the_contract_table(good_run):
    proc, out, table = good_run
    assert proc.returncode == 0, proc.stderr
    edges = pq.read_table(out / "edges.parquet")
    assert set(CONTRACT_EDGE_COLUMNS) <= set(edges.column_names)
    df = edges.to_pandas()
    assert len(df) > 20
    assert (df["a"] < df["b"]).all()
    assert not df.duplicated(["a", "b"]).any()
    assert_edges_equal_reference(edges, reference_edges(table.to_pandas(), AS_OF, LOOKBACK,
                                                        COUNTRY_CODE, NATIONAL_LENGTH))
    nodes = pq.read_table(out / "nodes.parquet").to_pandas()
    # every number with a tie, plus every subscriber (a subscriber without ties is a node of
    # degree 0: later stages score it too)
    subscribers = set(pq.read_table(out.parent / "subscribers.parquet").column("msisdn").to_pylist())
    assert set(nodes["msisdn"]) == set(df["a"]) | set(df["b"]) | subscribers
    isolated = nodes[~nodes["msisdn"].isin(set(df["a"]) | set(df["b"]))]
    assert (isolated["degree"] == 0).all() and isolated["on_net"].all()


def test_quality_json_balances(good_run):
    proc, out, table = good_run
    assert proc.returncode == 0, proc.stderr
    q = json.loads((out / "quality.json").read_text())
    ref = reference_quality(table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)
    assert q["rows_in"] == ref["rows_in"] == table.num_rows
    assert q["rows_used"] == ref["rows_used"]
    assert q["rows_quarantined"] == ref["rows_quarantined"]
    assert q["rows_in"] == q["rows_used"] + q["rows_quarantined"]
    assert sum(q["quarantined_by_reason"].values()) == q["rows_quarantined"]
    quarantined = sum(pq.read_table(f).num_rows for f in (out / "quarantine").glob("*.parquet"))
    assert quarantined == q["rows_quarantined"]


def test_outputs_are_owner_only(good_run):
    proc, out, _ = good_run
    assert proc.returncode == 0, proc.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 4
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p, oct(p.stat().st_mode))
    for d in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, (d, oct(d.stat().st_mode))
    # no temporary files left; the one hidden name is the checkpoints kept for --resume
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".checkpoints"]


def test_missing_column_one_line_error(dataset):
    root, table = dataset
    bad = root / "bad" / "cdr-2026-04-30.parquet"
    bad.parent.mkdir(exist_ok=True)
    pq.write_table(table.drop_columns(["callee"]), bad)
    proc = _run("run", "--cdr", bad, "--subscribers", root / "subscribers.parquet", "--out", root / "out-bad",
                "--as-of", AS_OF.isoformat(), cwd=root)
    assert proc.returncode != 0
    lines = _lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert "callee" in lines[0] and str(bad) in lines[0]
    assert "Traceback" not in proc.stderr


def test_unknown_config_key_is_an_error(dataset):
    root, _ = dataset
    cfg = root / "typo.yaml"
    cfg.write_text("ties:\n  one_way_factr: 0.5\n")
    proc = _run("run", "--cdr", root / "cdr", "--subscribers", root / "subscribers.parquet", "--out",
                root / "out-typo", "--config", cfg, cwd=root)
    assert proc.returncode != 0
    lines = _lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert "ties.one_way_factr" in lines[0]
    assert "Traceback" not in proc.stderr


def test_an_in_process_command_leaves_the_logging_as_it_found_it(dataset):
    """The command takes over the ``socialgraph`` and Dask loggers while it runs (one-line
    stderr output), and gives them back: a notebook or test calling it in-process keeps its
    own logging (before, the ``socialgraph`` logger stayed cut off from the root's handlers)."""
    import logging

    from click.testing import CliRunner

    from pipelines.cli import main

    root, _ = dataset
    names = ("socialgraph", "distributed", "dask")
    before = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate)
              for n in names}
    cfg = root / "typo-in-process.yaml"
    cfg.write_text("ties:\n  one_way_factr: 0.5\n")
    res = CliRunner().invoke(main, ["run", "--cdr", str(root / "cdr"), "--subscribers", str(root / "subscribers.parquet"),
                                    "--out", str(root / "out-in-process"), "--config", str(cfg), "--verbose"])
    assert res.exit_code == 2 and "ties.one_way_factr" in res.output
    after = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate)
             for n in names}
    assert after == before

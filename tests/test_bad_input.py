"""Bad input gets a clear error and nothing is lost (issue #7, part 1).

Corrupt, empty and unreadable CDR files, bad subscriber tables, an ``--as-of`` that misses the
data, config typos, garbage bytes in number fields, extremely high-degree numbers, and random
messy batches. A case where the job cannot go on must exit 2 with one line naming the problem
and the fix; any other case must complete and count what it set aside in ``quality.json``.

The runs go through the real ``socialgraph run`` command (click's runner, in this process) on
one in-process Dask cluster given as ``--scheduler``, so each costs a second or two; one runs
the installed console script with its own local cluster, exactly as a user does.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import (
    AS_OF, CDR_SCHEMA, COUNTRY_CODE, LOOKBACK, NATIONAL_LENGTH, graph_stage, make_random_cdr, write_partition_files,
)
from pipelines.cli import main
from pipelines.synth_io import write_synthetic
from reference import reference_quality
from socialgraph.numbers import mask_number
from socialgraph.synth import SynthConfig
from socialgraph.ties import REASONS

JOB_YAML = f"numbers:\n  country_code: '{COUNTRY_CODE}'\n  national_length: {NATIONAL_LENGTH}\n"


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_input")
    table = make_random_cdr(seed=17, n_rows=300, n_numbers=30)
    files = write_partition_files(table, root / "good", 2)
    subs = pa.table({"msisdn": ["13800000001", "13900000002"],
                     "activation_date": pa.array([dt.date(2020, 1, 1), dt.date(2024, 6, 1)])})
    pq.write_table(subs, root / "subscribers.parquet")
    (root / "job.yaml").write_text(JOB_YAML)
    return SimpleNamespace(root=root, table=table, files=files, subscribers=root / "subscribers.parquet",
                           config=root / "job.yaml")


def _run(scheduler, world, cdr, out, *args, subscribers=None, config=None):
    return CliRunner().invoke(main, [
        "run", "--cdr", str(cdr), "--subscribers", str(subscribers or world.subscribers), "--out", str(out),
        "--config", str(config or world.config), "--scheduler", scheduler, *map(str, args)])


def _error_line(res) -> str:
    """The one line of a refused run (exit 2), without a traceback."""
    assert res.exit_code == 2, (res.exit_code, res.stderr, res.exception)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("socialgraph: error: ") and "Traceback" not in res.stderr
    return lines[0]


def _ok(res, out: Path) -> tuple[dict, dict]:
    assert res.exit_code == 0, (res.exit_code, res.stderr, res.exception)
    quality = json.loads((out / "quality.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert quality["balanced"] is True
    assert quality["rows_in"] == quality["rows_used"] + quality["rows_quarantined"]
    assert sum(quality["quarantined_by_reason"].values()) == quality["rows_quarantined"]
    return quality, manifest


def _quality_of(table: pa.Table, as_of=AS_OF, lookback=LOOKBACK) -> dict:
    return reference_quality(table.to_pandas(), as_of, lookback, COUNTRY_CODE, NATIONAL_LENGTH)


def _cdr_dir(world, name: str) -> Path:
    d = world.root / name
    d.mkdir()
    for f in world.files:
        shutil.copy(f, d / f.name)
    return d


# --------------------------------------------------------------------------- corrupt files


def _truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _random_bytes(dst: Path) -> Path:
    dst.write_bytes(np.random.default_rng(0).bytes(3000))
    return dst


def _corrupt_pages(src: Path, dst: Path) -> Path:
    """Garbage in the middle of the data pages; the footer still reads."""
    data = bytearray(src.read_bytes())
    n = len(data)
    data[n // 5: n // 2] = np.random.default_rng(1).bytes(n // 2 - n // 5)
    dst.write_bytes(bytes(data))
    pq.read_metadata(dst)  # the footer reads ...
    with pytest.raises(Exception):
        pq.read_table(dst)  # ... the data does not
    return dst


@pytest.mark.parametrize("make_bad", ["truncated", "random_bytes"])
def test_corrupt_file_names_the_file_and_the_fix(make_bad, scheduler, world):
    d = _cdr_dir(world, f"cdr-{make_bad}")
    bad = d / "part-001b.parquet"
    _truncated(world.files[1], bad) if make_bad == "truncated" else _random_bytes(bad)
    line = _error_line(_run(scheduler, world, d, world.root / f"out-{make_bad}"))
    assert str(bad) in line and "--skip-bad-files" in line


def test_corrupt_data_pages_one_line_from_the_console_script(world):
    """The file's footer reads, so it fails only inside a Dask task on a worker process; the
    user still sees one line naming it (no worker traceback on stderr)."""
    exe = Path(sys.executable).parent / "socialgraph"
    if not exe.exists():
        pytest.skip("the socialgraph console script is not installed")
    d = _cdr_dir(world, "cdr-pages-script")
    bad = _corrupt_pages(world.files[1], d / "part-001b.parquet")
    cfg = world.root / "one-worker.yaml"
    cfg.write_text(JOB_YAML + "cluster:\n  n_workers: 1\n  threads_per_worker: 1\n")
    proc = subprocess.run([str(exe), "run", "--cdr", str(d), "--subscribers", str(world.subscribers), "--out",
                           str(world.root / "out-pages-script"), "--config", str(cfg)],
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(bad) in lines[0] and "--skip-bad-files" in lines[0]


def test_corrupt_data_pages_found_by_the_main_pass(scheduler, world):
    """Without ids and with --as-of the pre-pass reads nothing: the main pass names the file."""
    d = world.root / "cdr-noids"
    d.mkdir()
    for f in world.files:
        pq.write_table(pq.read_table(f).drop_columns(["cdr_id"]), d / f.name)
    bad = _corrupt_pages(d / world.files[1].name, d / "part-001b.parquet")
    res = _run(scheduler, world, d, world.root / "out-noids", "--as-of", AS_OF, "--lookback-days", LOOKBACK)
    line = _error_line(res)
    assert str(bad) in line and "--skip-bad-files" in line


def test_page_checksums_catch_silent_corruption(scheduler, world):
    """Uncompressed plain pages decode whatever their bytes; the stored checksums do not match."""
    d = world.root / "cdr-crc"
    d.mkdir()
    f = d / "crc.parquet"
    pq.write_table(world.table, f, compression="none", use_dictionary=False, write_page_checksum=True)
    col = pq.read_metadata(f).row_group(0).column(world.table.column_names.index("duration_s"))
    end = col.data_page_offset + col.total_compressed_size
    data = bytearray(f.read_bytes())
    data[end - 16: end - 8] = b"\x7f" * 8  # one duration value, in the page body
    f.write_bytes(bytes(data))
    assert pq.read_table(f).column("duration_s") != world.table.column("duration_s")  # silently wrong
    line = _error_line(_run(scheduler, world, d, world.root / "out-crc", "--as-of", AS_OF))
    assert str(f) in line and "--skip-bad-files" in line


def test_skip_bad_files_completes_and_counts_them(scheduler, world):
    d = _cdr_dir(world, "cdr-skip")
    bad = {
        _truncated(world.files[0], d / "bad-truncated.parquet"): None,
        _random_bytes(d / "bad-random.parquet"): None,
        _corrupt_pages(world.files[1], d / "bad-pages.parquet"): pq.read_metadata(world.files[1]).num_rows,
    }
    pq.write_table(world.table.drop_columns(["callee"]), d / "bad-schema.parquet")
    bad[d / "bad-schema.parquet"] = None
    out = world.root / "out-skip"
    res = _run(scheduler, world, d, out, "--skip-bad-files", "--as-of", AS_OF, "--lookback-days", LOOKBACK)
    quality, manifest = _ok(res, out)
    skipped = {s["file"]: s for s in quality["skipped_files"]}
    assert set(skipped) == {str(p) for p in bad}
    for path, rows in bad.items():
        assert skipped[str(path)]["rows"] == rows and skipped[str(path)]["reason"]
    assert "callee" in skipped[str(d / "bad-schema.parquet")]["reason"]
    assert manifest["inputs"]["cdr"]["skipped_files"] == quality["skipped_files"]
    assert "readable files only" in quality["rows_in_note"]
    assert "skipped 4 unreadable CDR file(s)" in res.stderr  # a warning even for an unattended run
    # nothing of the good files is lost: their rows are counted as if the bad ones were absent
    ref = _quality_of(world.table)
    assert quality["rows_in"] == world.table.num_rows
    assert quality["rows_used"] == ref["rows_used"]
    assert quality["quarantined_by_reason"] == ref["quarantined_by_reason"]


def test_skip_bad_files_with_nothing_readable_is_refused(scheduler, world):
    d = world.root / "cdr-all-bad"
    d.mkdir()
    bad = _random_bytes(d / "only.parquet")
    line = _error_line(_run(scheduler, world, d, world.root / "out-all-bad", "--skip-bad-files"))
    assert "none of the 1 CDR file(s) can be read" in line and str(bad) in line


# --------------------------------------------------------------------------- empty input


def test_empty_directory_is_refused(scheduler, world):
    d = world.root / "cdr-empty"
    d.mkdir()
    (d / "_SUCCESS").write_text("")
    line = _error_line(_run(scheduler, world, d, world.root / "out-empty"))
    assert "no Parquet files found" in line and "cdr-empty" in line


def test_only_zero_row_files_are_refused(scheduler, world):
    d = world.root / "cdr-zero"
    d.mkdir()
    for i in range(2):
        pq.write_table(world.table.slice(0, 0), d / f"z{i}.parquet")
    for extra in ((), ("--as-of", AS_OF)):
        line = _error_line(_run(scheduler, world, d, world.root / "out-zero", *extra))
        assert "no CDR rows" in line and "cdr-zero" in line


def test_zero_row_file_among_good_ones_is_just_counted(scheduler, world):
    d = _cdr_dir(world, "cdr-some-zero")
    pq.write_table(world.table.slice(0, 0), d / "part-000a.parquet")
    out = world.root / "out-some-zero"
    quality, _ = _ok(_run(scheduler, world, d, out, "--as-of", AS_OF, "--lookback-days", LOOKBACK), out)
    assert quality["rows_in"] == world.table.num_rows
    assert quality["rows_used"] == _quality_of(world.table)["rows_used"]
    assert quality["skipped_files"] == []


def test_file_without_the_optional_columns_among_files_with_them(scheduler, world):
    """One export without cdr_id and caller_imei: its rows are read (ids null), not a crash."""
    d = _cdr_dir(world, "cdr-fewer-columns")
    extra = world.table.slice(0, 40).drop_columns(["cdr_id", "caller_imei"])
    pq.write_table(extra, d / "part-002.parquet")
    out = world.root / "out-fewer-columns"
    quality, _ = _ok(_run(scheduler, world, d, out, "--as-of", AS_OF, "--lookback-days", LOOKBACK), out)
    ids = world.table.column("cdr_id")
    both = pa.concat_tables([world.table, extra.append_column("cdr_id", pa.nulls(40, ids.type))
                             .append_column("caller_imei", pa.nulls(40, pa.string())).select(world.table.column_names)])
    ref = _quality_of(both)
    assert quality["rows_in"] == both.num_rows
    assert quality["quarantined_by_reason"] == ref["quarantined_by_reason"]


# --------------------------------------------------------------------------- subscribers


def _subs_file(world, name: str, table: pa.Table) -> Path:
    p = world.root / name
    pq.write_table(table, p)
    return p


def test_subscribers_missing_required_column(scheduler, world):
    p = _subs_file(world, "subs-nocol.parquet", pa.table({"msisdn": ["13800000001"], "plan": ["A"]}))
    line = _error_line(_run(scheduler, world, world.root / "good", world.root / "out-s1", subscribers=p))
    assert "'activation_date'" in line and str(p) in line


def test_subscribers_without_rows_are_refused_before_the_graph_is_built(scheduler, world):
    p = _subs_file(world, "subs-empty.parquet", pa.table({
        "msisdn": pa.array([], pa.string()), "activation_date": pa.array([], pa.date32())}))
    out = world.root / "out-s0"
    line = _error_line(_run(scheduler, world, world.root / "good", out, subscribers=p))
    assert str(p) in line and "has no rows" in line
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest.get("stages", [])] in ([], ["inputs"])  # no graph stage ran


def test_duplicate_msisdn_is_refused_with_a_masked_number(scheduler, world):
    p = _subs_file(world, "subs-dup.parquet", pa.table({
        "msisdn": ["13800000001", "13900000002", "+8613800000001"],
        "activation_date": pa.array([dt.date(2020, 1, 1)] * 3)}))
    line = _error_line(_run(scheduler, world, world.root / "good", world.root / "out-s2", subscribers=p))
    assert "more than once" in line and mask_number("13800000001") in line
    assert "13800000001" not in line and str(p) in line


def test_unreadable_subscribers_file(scheduler, world):
    p = _random_bytes(world.root / "subs-garbage.parquet")
    line = _error_line(_run(scheduler, world, world.root / "good", world.root / "out-s3", subscribers=p))
    assert str(p) in line and "not a readable Parquet file" in line


def test_doubtful_subscriber_dates_are_counted_not_fatal(scheduler, world):
    """Decision: a run is not refused for a few impossible dates; quality.json counts them."""
    p = _subs_file(world, "subs-dates.parquet", pa.table({
        "msisdn": ["13800000001", "13900000002", "13700000003", "13600000004"],
        "activation_date": pa.array([dt.date(2020, 1, 1), dt.date(2099, 1, 1), dt.date(2025, 3, 1), None],
                                    pa.date32()),
        "churn_date": pa.array([None, None, dt.date(2024, 1, 1), None], pa.date32())}))
    out = world.root / "out-s4"
    quality, _ = _ok(_run(scheduler, world, world.root / "good", out, "--as-of", AS_OF, subscribers=p), out)
    quality["subscribers"].pop("active_after_churn")  # its own test below
    assert quality["subscribers"] == {"rows": 4, "active_at_as_of": 1, "activation_after_as_of": 1,
                                      "activation_in_future": 1, "null_activation_date": 1,
                                      "churn_before_activation": 1, "null_dnd": 0}


def test_calls_after_the_churn_date_are_counted_and_warned(scheduler, world):
    """A number that still calls days after its churn date (recycled, or a stale date) is counted
    in quality.json and named on stderr by count only; the churn day itself and the day after
    (a port takes a day) are not."""
    day = lambda n: dt.datetime.combine(AS_OF - dt.timedelta(days=n), dt.time(12))  # noqa: E731
    a, b, c, d = "13800000011", "13800000012", "13800000013", "13800000014"
    rows = [(a, b, 10), (a, c, 2), (d, b, 5), (c, d, 1)]
    cdr = pa.Table.from_pylist([
        {"caller": x, "callee": y, "start_time": day(n), "duration_s": 30, "event_type": "voice",
         "cdr_id": f"late-{i}", "caller_imei": None} for i, (x, y, n) in enumerate(rows)], schema=CDR_SCHEMA)
    cdr_dir = world.root / "cdr-late"
    cdr_dir.mkdir()
    pq.write_table(cdr, cdr_dir / "part-0.parquet")
    churn = {a: 5,   # last event 2 days before as-of: 3 days after its churn -> counted
             b: 6,   # last event (from d) 5 days before as-of: the day after its churn -> grace
             d: 1}   # last event 1 day before as-of: its churn day -> not counted
    p = _subs_file(world, "subs-late.parquet", pa.table({
        "msisdn": [a, b, c, d],
        "activation_date": pa.array([dt.date(2020, 1, 1)] * 4),
        "churn_date": pa.array([AS_OF - dt.timedelta(days=churn[x]) if x in churn else None
                                for x in (a, b, c, d)], pa.date32())}))
    out = world.root / "out-late"
    res = _run(scheduler, world, cdr_dir, out, "--as-of", AS_OF, subscribers=p)
    quality, _ = _ok(res, out)
    assert quality["subscribers"]["active_after_churn"] == 1
    assert "1 churned subscriber(s) still have CDRs" in res.stderr
    assert a not in res.stderr and a[-8:] not in res.stderr  # no number, not even masked


# --------------------------------------------------------------------------- dates and windows


def test_future_cdrs_are_outside_the_window_and_ignored_by_the_default_as_of(scheduler, world):
    future = pa.Table.from_pylist([
        {"caller": "13800000001", "callee": "13900000002", "start_time": dt.datetime(2099, 1, 1, 12),
         "duration_s": 60, "event_type": "voice", "cdr_id": f"future-{i}", "caller_imei": None}
        for i in range(4)], schema=CDR_SCHEMA)
    d = _cdr_dir(world, "cdr-future")
    pq.write_table(future, d / "part-009.parquet")
    out = world.root / "out-future"
    quality, manifest = _ok(_run(scheduler, world, d, out), out)
    last = max(t for t in world.table.column("start_time").to_pylist() if t is not None)
    as_of = last.date() + dt.timedelta(days=1)
    assert manifest["window"]["as_of"] == as_of.isoformat()
    ref = _quality_of(pa.concat_tables([world.table, future]), as_of, 180)
    assert quality["quarantined_by_reason"] == ref["quarantined_by_reason"]
    assert quality["rows_used"] == ref["rows_used"] > 0
    assert quality["time_range"]["last"].startswith("2099-01-01")


@pytest.mark.parametrize("as_of", ["2020-01-01", "2030-01-01"])
def test_as_of_whose_window_misses_the_data_is_refused(as_of, scheduler, world):
    out = world.root / f"out-asof-{as_of}"
    line = _error_line(_run(scheduler, world, world.root / "good", out, "--as-of", as_of, "--lookback-days", 30))
    assert "no CDR rows fall in the window [" in line and f", {as_of})" in line
    first = min(t for t in world.table.column("start_time").to_pylist() if t is not None).date()
    assert f"the data covers {first}.." in line
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "no CDR rows fall in the window" in manifest["error"]
    # the graph stage had written its datasets into hidden directories: none is left or published
    assert not (out / "edges.parquet").exists() and not (out / "quality.json").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_a_few_broken_clocks_do_not_stretch_the_advice_of_a_refused_run(scheduler, world):
    """Rows stamped 1970 and 2099 make the data "cover" a century; the refusal names the days
    that hold nearly all rows, and the --as-of range that follows from them."""
    broken = pa.Table.from_pylist([
        {"caller": "13800000001", "callee": "13900000002", "start_time": when, "duration_s": 60,
         "event_type": "voice", "cdr_id": f"clock-{i}", "caller_imei": None}
        for i, when in enumerate([dt.datetime(1970, 1, 1, 0, 3), dt.datetime(2099, 12, 29, 22)])], schema=CDR_SCHEMA)
    many = pa.concat_tables([world.table] * 5)  # 1,500 rows: the 2 broken ones are under 0.1 % each side
    d = world.root / "cdr-clocks"
    write_partition_files(many, d, 3)
    pq.write_table(broken, d / "part-broken.parquet")
    line = _error_line(_run(scheduler, world, d, world.root / "out-clocks", "--as-of", "2040-01-01"))
    ts = [t for t in world.table.column("start_time").to_pylist() if t is not None]
    first, last = min(ts).date(), max(ts).date()
    assert f"the data covers {first}..{last} (99.8% of its rows; all: 1970-01-01..2099-12-29)" in line
    assert f"give an --as-of from {first + dt.timedelta(days=1)} to {last + dt.timedelta(days=180)}" in line


def test_an_export_with_its_own_event_types_is_told_which_keys_to_set(scheduler, world):
    t = world.table
    coded = t.set_column(t.schema.get_field_index("event_type"), "event_type", pa.array(["MOC"] * t.num_rows))
    d = world.root / "cdr-moc"
    write_partition_files(coded, d, 2)
    line = _error_line(_run(scheduler, world, d, world.root / "out-moc"))
    assert "unknown_event_type" in line and "ingest.voice_types" in line and "ingest.sms_types" in line
    cfg = world.root / "cfg-moc.yaml"
    cfg.write_text(JOB_YAML + "ingest:\n  voice_types: [moc]\n")
    out = world.root / "out-moc-mapped"
    quality, _ = _ok(_run(scheduler, world, d, out, config=cfg), out)
    assert quality["rows_used"] > 0


def test_as_of_after_the_data_with_a_window_that_still_covers_it(scheduler, world):
    as_of = AS_OF + dt.timedelta(days=10)
    out = world.root / "out-asof-late"
    res = _run(scheduler, world, world.root / "good", out, "--as-of", as_of, "--lookback-days", 30, "--verbose")
    quality, _ = _ok(res, out)
    ref = _quality_of(world.table, as_of, 30)
    assert quality["rows_used"] == ref["rows_used"] > 0
    # 30 days of calls against a 28-day test window: said, not refused
    assert "a look-back of 30 days is short" in res.stderr and "use 56 days or more" in res.stderr
    res = _run(scheduler, world, world.root / "good", world.root / "out-asof-late-56", "--as-of", as_of,
               "--lookback-days", 56, "--verbose")
    assert res.exit_code == 0 and "is short" not in res.stderr



def test_a_country_code_the_config_does_not_strip_is_named(scheduler, world, tmp_path):
    """Subscribers written nationally, the CDRs half with +86 in front, no numbers section:
    the run still completes, and says which setting joins the two spellings."""
    n = 40
    subs = [f"138{i:08d}" for i in range(n)]
    p = _subs_file(world, "subs-cc.parquet", pa.table({"msisdn": subs, "activation_date": pa.array([dt.date(2020, 1, 1)] * n)}))
    when = dt.datetime.combine(AS_OF, dt.time()) - dt.timedelta(days=3)
    rows = [{"caller": ("+86" if i % 2 else "") + subs[i], "callee": subs[(i + 1) % n], "start_time": when,
             "duration_s": 60, "event_type": "voice", "cdr_id": f"cc-{i}", "caller_imei": None} for i in range(n)]
    d = world.root / "cdr-cc"
    write_partition_files(pa.Table.from_pylist(rows, schema=CDR_SCHEMA), d, 1)
    bare = tmp_path / "bare.yaml"
    bare.write_text("contagion:\n  fdr: 0.12\n")
    out = world.root / "out-cc"
    res = _run(scheduler, world, d, out, "--verbose", subscribers=p, config=bare)
    quality, _ = _ok(res, out)
    assert quality["numbers"]["longer_spellings"] == {"86": n // 2}
    assert "subscribers' numbers with 86 in front" in res.stderr and "numbers.country_code: '86'" in res.stderr
    assert "national_length: 11" in res.stderr
    out2 = world.root / "out-cc-set"
    res = _run(scheduler, world, d, out2, "--verbose", subscribers=p)  # the world's config sets them
    quality, _ = _ok(res, out2)
    assert quality["numbers"] == {"longer_spellings": {}, "subscribers_with_longer_spellings": {}}
    assert "in front" not in res.stderr
    # the other way round: the subscriber table written with the code, the CDRs without it
    p86 = _subs_file(world, "subs-86.parquet", pa.table({"msisdn": ["86" + m for m in subs],
                                                         "activation_date": pa.array([dt.date(2020, 1, 1)] * n)}))
    national = pa.Table.from_pylist([{**r, "caller": r["caller"].removeprefix("+86")} for r in rows], schema=CDR_SCHEMA)
    d2 = world.root / "cdr-cc-national"
    write_partition_files(national, d2, 1)
    out3 = world.root / "out-cc-reverse"
    res = _run(scheduler, world, d2, out3, "--verbose", subscribers=p86, config=bare)
    quality, _ = _ok(res, out3)
    assert quality["numbers"]["subscribers_with_longer_spellings"] == {"86": n}
    assert "subscribers' numbers are numbers in the CDRs with 86 in front" in res.stderr


def test_a_clock_in_another_zone_is_named(scheduler, world, tmp_path):
    """Calls that sleep from 08:00 to 16:00 UTC are an operator at UTC-8 whose times are UTC:
    the run completes, says which zone would put the night at night, and keeps the quiet
    hours in quality.json; with that zone set it says nothing."""
    rng = np.random.default_rng(5)
    n = 3000
    day_hours = np.array([h for h in range(24) if not 8 <= h < 16])
    hours = np.where(rng.random(n) < 0.97, rng.choice(day_hours, n), rng.integers(8, 16, n))
    days = rng.integers(1, 20, n)
    start = dt.datetime.combine(AS_OF, dt.time())
    numbers = [f"138{i:08d}" for i in range(60)]
    rows = [{"caller": numbers[i % 60], "callee": numbers[(i * 7 + 1) % 60], "duration_s": 60, "event_type": "voice",
             "start_time": start - dt.timedelta(days=int(d)) + dt.timedelta(hours=int(h), minutes=int(i % 60)),
             "cdr_id": f"tz-{i}", "caller_imei": None} for i, (d, h) in enumerate(zip(days, hours))]
    d = world.root / "cdr-tz"
    write_partition_files(pa.Table.from_pylist(rows, schema=CDR_SCHEMA), d, 2)
    out = world.root / "out-tz"
    res = _run(scheduler, world, d, out, "--verbose")
    quality, _ = _ok(res, out)
    assert quality["time_range"]["quiet_hours"]["start"] == 8
    assert "quietest eight hours are 08:00-16:00 in window.timezone 'UTC'" in res.stderr
    assert "an operator at UTC-8: set window.timezone to its zone (such as America/Los_Angeles)" in res.stderr
    cfg = tmp_path / "la.yaml"
    cfg.write_text(JOB_YAML + "window:\n  timezone: America/Los_Angeles\n")
    out2 = world.root / "out-tz-la"
    res = _run(scheduler, world, d, out2, "--verbose", config=cfg)
    quality, _ = _ok(res, out2)
    # 01:00-09:00: on the as-of day (May) Los Angeles keeps summer time, UTC-7
    assert quality["time_range"]["quiet_hours"]["start"] == 1 and "quietest" not in res.stderr


def test_an_output_directory_inside_the_cdr_directory_is_refused(scheduler, world):
    """The next run would list the outputs (circle_history.parquet, edges.parquet ...) as CDRs."""
    d = world.root / "cdr-with-out"
    write_partition_files(world.table, d, 2)
    out = d / "run"
    line = _error_line(_run(scheduler, world, d, out))
    assert "inside --cdr" in line and str(out) in line
    assert not out.exists()

# --------------------------------------------------------------------------- config


def test_a_column_mapping_to_a_column_the_files_lack_names_it(scheduler, world):
    """columns.caller names calling_number, the files have caller: one line before any row is
    read (it used to read every row and quarantine them all as null numbers)."""
    cfg = world.root / "cfg-columns.yaml"
    cfg.write_text(JOB_YAML + "columns:\n  caller: calling_number\n")
    out = world.root / "out-columns"
    line = _error_line(_run(scheduler, world, world.root / "good", out, config=cfg))
    assert "required column 'calling_number' (contract 'caller') is missing" in line
    assert not (out / "quality.json").exists()


@pytest.mark.parametrize("text,key", [
    ("ties:\n  one_way_factr: 0.5\n", "ties.one_way_factr"),
    ("scoring:\n  alpha: high\n", "scoring.alpha"),
    ("ties:\n  hub_min_contacts: [200]\n", "ties.hub_min_contacts"),
])
def test_config_typo_or_wrong_type_names_the_key(text, key, scheduler, world):
    cfg = world.root / f"cfg-{key}.yaml"
    cfg.write_text(JOB_YAML + text)
    line = _error_line(_run(scheduler, world, world.root / "good", world.root / "out-cfg", config=cfg))
    assert key in line



@pytest.mark.parametrize("text,says", [
    ("operators: [1,2\n", "not valid YAML"),
    ("- '130'\n- '189'\n", "expected a mapping"),
    ("operators: ['130', '189']\n", "operators must map prefixes"),
    ("operators: {'13O': CompA}\n", "'13O' must be digits"),
    ("home_prefixes: ['138', '+86']\n", "'+86' must be digits"),
    ("operators: {'130': }\n", "needs an operator name"),
    ("operatorz: {'130': CompA}\n", "unknown key 'operatorz'"),
])
def test_a_bad_operators_file_is_one_line_naming_it(text, says, scheduler, world):
    f = world.root / f"ops-{abs(hash(text))}.yaml"
    f.write_text(text)
    line = _error_line(_run(scheduler, world, world.root / "good", world.root / "out-ops", "--operators", f))
    assert str(f) in line and says in line


def test_operator_prefixes_are_read_as_written(tmp_path):
    """YAML would read an unquoted ``0130`` as the octal number 88 and ``130`` as a number: the
    prefixes must stay the digits the file shows."""
    from pipelines.io import read_operators

    f = tmp_path / "ops.yaml"
    f.write_text("home_operator: HomeTel\nhome_prefixes: [0138, 139]\noperators: {0130: CompA, 189: CompB}\n")
    ops = read_operators(str(f))
    assert ops == {"home_operator": "HomeTel", "home_prefixes": ["0138", "139"],
                   "operators": {"0130": "CompA", "189": "CompB"}}

# --------------------------------------------------------------------------- garbage bytes


def _raw_text(values: list, typ=pa.string()) -> pa.Array:
    """Text columns with any bytes (Parquet writers outside Arrow do not check UTF-8)."""
    raw = [v.encode() if isinstance(v, str) else v for v in values]
    valid = np.array([v is not None for v in raw])
    lens = [0 if v is None else len(v) for v in raw]
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    return pa.Array.from_buffers(typ, len(raw), [pa.py_buffer(np.packbits(valid, bitorder="little").tobytes()),
                                                 pa.py_buffer(offsets.tobytes()),
                                                 pa.py_buffer(b"".join(v for v in raw if v is not None))])


def test_garbage_bytes_in_number_fields_are_quarantined(scheduler, world):
    when = dt.datetime.combine(AS_OF, dt.time()) - dt.timedelta(days=3)
    good_a, good_b = "13800000001", "13900000002"
    # (caller, callee, event_type, cdr_id, expected reason)
    rows = [
        (good_a, good_b, "voice", "g1", None),
        (good_b, good_a, "sms", "g2", None),
        ("📞" + good_a, good_b, "voice", "e1", "non_numeric_number"),
        (good_a, "138\x0000000001", "voice", "e2", "non_numeric_number"),
        ("１３８００００００００１", good_b, "voice", "e3", "non_numeric_number"),
        (b"\xff\xfe13800000001", good_b, "voice", "e4", "non_numeric_number"),
        (good_a, b"\xc3\x28" * 6, "voice", "e5", "non_numeric_number"),
        ("1" * 5000, good_b, "voice", "e6", "number_too_long"),
        (good_a, "+86" + "9" * 40, "voice", "e7", "number_too_long"),
        (good_a, good_b, b"vo\xffice", "e8", "unknown_event_type"),
        (good_a, good_b, "voice", b"\xfe\xfe", None),
        (good_a, good_b, "sms", b"\xfe\xfe", "duplicate_cdr_id"),
    ]
    n = len(rows)
    text = pa.table({
        "caller": _raw_text([r[0] for r in rows]), "callee": _raw_text([r[1] for r in rows]),
        "start_time": pa.array([when] * n, pa.timestamp("ms")), "duration_s": pa.array([30] * n, pa.int64()),
        "event_type": _raw_text([r[2] for r in rows]), "cdr_id": _raw_text([r[3] for r in rows])})
    # a file whose number columns are bytes, not text
    binary_rows = [(good_a.encode(), good_b.encode(), None), (b"\x80\x81", good_b.encode(), "non_numeric_number"),
                   (b"9" * 30, good_a.encode(), "number_too_long"), (None, good_a.encode(), "null_number")]
    m = len(binary_rows)
    binary = pa.table({
        "caller": pa.array([r[0] for r in binary_rows], pa.binary()),
        "callee": pa.array([r[1] for r in binary_rows], pa.large_binary()),
        "start_time": pa.array([when] * m, pa.timestamp("ms")), "duration_s": pa.array([5] * m, pa.int64()),
        "event_type": ["voice"] * m, "cdr_id": [f"b{i}" for i in range(m)]})
    d = world.root / "cdr-garbage"
    d.mkdir()
    pq.write_table(text, d / "text.parquet")
    pq.write_table(binary, d / "binary.parquet")
    out = world.root / "out-garbage"
    quality, _ = _ok(_run(scheduler, world, d, out, "--as-of", AS_OF, "--lookback-days", LOOKBACK), out)
    want = {r: 0 for r in REASONS}
    for reason in [r[4] for r in rows] + [r[2] for r in binary_rows]:
        if reason is not None:
            want[reason] += 1
    assert quality["quarantined_by_reason"] == want
    assert quality["rows_in"] == n + m and quality["rows_used"] == n + m - sum(want.values())
    assert pq.read_table(out / "quarantine").num_rows == quality["rows_quarantined"]
    edges = pq.read_table(out / "edges.parquet").to_pandas()
    assert edges[["a", "b"]].values.tolist() == [[good_a, good_b]]


# --------------------------------------------------------------------------- extreme degree


def test_extremely_high_degree_numbers(scheduler, tmp_path):
    """A hotline called by 5,000 numbers that never answers, and a number that calls 5,000
    numbers once each, both on-net, added to a small synthetic operator."""
    info = write_synthetic(tmp_path / "w", SynthConfig(n_subscribers=600, weeks=6, seed=5))
    as_of = dt.date.fromisoformat(info["as_of"])
    subs = pq.read_table(info["subscribers"])
    hotline, caller = "13999000001", "13999000002"
    added = pa.table({"msisdn": [hotline, caller],
                      "activation_date": pa.array([dt.date(2020, 1, 1)] * 2, subs.schema.field("activation_date").type)})
    pq.write_table(pa.concat_tables([subs, added], promote_options="permissive"), info["subscribers"])
    on_net = subs.column("msisdn").to_pylist()
    n = 5000
    reach = on_net + [f"155{i:08d}" for i in range(n - len(on_net))]
    called = on_net + [f"156{i:08d}" for i in range(n - len(on_net))]
    days = np.random.default_rng(1).integers(1, 28, size=2 * n)
    pq.write_table(pa.table({
        "caller": reach + [caller] * n, "callee": [hotline] * n + called,
        "start_time": pa.array([dt.datetime.combine(as_of - dt.timedelta(days=int(k)), dt.time(10)) for k in days],
                               pa.timestamp("ms")),
        "duration_s": [30] * (2 * n), "event_type": ["voice"] * (2 * n)}), tmp_path / "w" / "cdr" / "extra.parquet")
    cfg = Path(info["config"])
    cfg.write_text(cfg.read_text() + "contagion:\n  fdr: 0.5\n")  # a lenient FDR: some circles to target
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", "--cdr", info["cdr"], "--subscribers", info["subscribers"], "--operators",
                                    info["operators"], "--config", str(cfg), "--out", str(out), "--scheduler", scheduler])
    _ok(res, out)
    nodes = pq.read_table(out / "nodes.parquet").to_pandas().set_index("msisdn")
    assert bool(nodes.loc[hotline, "service_hub"]) and nodes.loc[hotline, "strength"] == 0
    assert nodes.loc[caller, "degree"] == n
    members = pq.read_table(out / "circle_members.parquet").to_pandas()
    targets = pd.read_csv(out / "targets.csv", dtype=str)
    assert members["circle_id"].nunique() > 50 and len(targets) > 0  # the check below can fail
    assert not members["msisdn"].isin([hotline, caller]).any()
    assert not targets["msisdn"].isin([hotline, caller]).any()


# --------------------------------------------------------------------------- random messy batches


_NUMBERS = st.one_of(
    st.sampled_from(["13800000001", "+8613800000001", "008613900000002", " 13700000003\t", "13900000002",
                     "8613900000002", "10086", "+441234567890"]),
    st.none(),
    st.text(max_size=24),  # emoji, NUL, letters, anything
    st.from_regex(r"\+?[0-9]{0,30}", fullmatch=True),
)
_WINDOW_START = dt.datetime.combine(AS_OF - dt.timedelta(days=LOOKBACK), dt.time())
_TIMES = st.one_of(
    st.none(),
    st.integers(-3 * 86400, (LOOKBACK + 3) * 86400).map(lambda s: _WINDOW_START + dt.timedelta(seconds=s)),
    st.sampled_from([dt.datetime(2099, 1, 1), dt.datetime(1970, 1, 1), dt.datetime(1900, 1, 1)]),
)
_ROWS = st.lists(st.fixed_dictionaries({
    "caller": _NUMBERS,
    "callee": _NUMBERS,
    "start_time": _TIMES,
    "duration_s": st.one_of(st.none(), st.integers(-10**6, 10**7)),
    "event_type": st.one_of(st.none(), st.sampled_from(["voice", "sms", "SMS", " Voice ", "data", "mms", ""]),
                            st.text(max_size=6)),
    "cdr_id": st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])),  # repeats are likely
    "caller_imei": st.none(),
}), min_size=1, max_size=40)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_ROWS, k=st.sampled_from([1, 2, 3]))
def test_random_messy_batches_always_balance(rows, k, tmp_path_factory):
    """Rows in = rows used + rows quarantined, reason by reason as the slow reference says,
    whatever the rows and however they are split into files; never a crash."""
    table = pa.Table.from_pylist(rows, schema=CDR_SCHEMA)
    d = tmp_path_factory.mktemp("messy")
    write_partition_files(table, d, k)
    _, quality, _ = graph_stage(d)
    assert quality["balanced"] is True
    assert quality["rows_in"] == len(rows) == quality["rows_used"] + quality["rows_quarantined"]
    ref = _quality_of(table)
    assert quality["rows_used"] == ref["rows_used"]
    assert quality["quarantined_by_reason"] == ref["quarantined_by_reason"]

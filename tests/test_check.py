"""``socialgraph check``: the run's checks on the footers and a sample, without a run.

The sample's row accounting is checked against the graph stage on the same input (a sample
that is the whole input must count what the run counts, duplicates aside), and each warning
against an input built to need it: switch event types, a country code left in the CDRs, a
clock in another zone, a subscriber table of other numbers. A refusal is the run's own line.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import AS_OF, CDR_SCHEMA, LOOKBACK, number_config, write_partition_files
from pipelines.check import check_inputs, format_report
from pipelines.cli import main
from pipelines.io import InputError
from socialgraph.config import JobConfig, WindowConfig

JOB_YAML = "numbers:\n  country_code: '86'\n  national_length: 11\nwindow:\n  lookback_days: 60\n"


def _config(**window) -> JobConfig:
    return JobConfig(numbers=number_config(), window=WindowConfig(lookback_days=60, **window))


def _subscribers(path, numbers) -> str:
    pq.write_table(pa.table({"msisdn": list(numbers),
                             "activation_date": pa.array([dt.date(2020, 1, 1)] * len(numbers)),
                             "dnd": pa.array([False] * len(numbers))}), path)
    return str(path)


def _calls(n: int, numbers: list[str], seed: int, night_utc=(0, 8), prefix: str = "") -> pa.Table:
    """Calls among ``numbers`` over the 50 days before AS_OF, 3 % of them in the night hours."""
    rng = np.random.default_rng(seed)
    lo, hi = night_utc
    night = np.array([h % 24 for h in range(lo, hi)])
    day = np.array([h for h in range(24) if h not in set(night)])
    hours = np.where(rng.random(n) < 0.97, rng.choice(day, n), rng.choice(night, n))
    start = dt.datetime.combine(AS_OF, dt.time())
    rows = [{"caller": prefix + numbers[int(i)], "callee": numbers[int(j)], "duration_s": 30, "event_type": "voice",
             "start_time": start - dt.timedelta(days=int(d) + 1) + dt.timedelta(hours=int(h), seconds=int(s)),
             "cdr_id": f"c{k}", "caller_imei": None}
            for k, (i, j, d, h, s) in enumerate(zip(rng.integers(0, len(numbers), n), rng.integers(0, len(numbers), n),
                                                   rng.integers(0, 50, n), hours, rng.integers(0, 3600, n)))]
    return pa.Table.from_pylist(rows, schema=CDR_SCHEMA)


NUMBERS = [f"138{i:08d}" for i in range(200)]


def test_a_whole_sample_counts_what_the_run_counts(random_cdr, write_partitions, run_graph_stage, tmp_path):
    table = random_cdr(seed=31, n_rows=2000, n_numbers=60)
    write_partitions(table, tmp_path / "cdr", 3)
    cfg = JobConfig(numbers=number_config(), window=WindowConfig(lookback_days=LOOKBACK))
    subs = _subscribers(tmp_path / "subs.parquet", NUMBERS)
    report = check_inputs(str(tmp_path / "cdr"), subs, None, cfg, as_of=AS_OF)
    _, quality, _ = run_graph_stage(tmp_path / "cdr", cfg)
    rows = report.figures["rows"]
    assert report.figures["cdr"]["sampled_rows"] == report.figures["cdr"]["rows"] == table.num_rows
    ran = quality["quarantined_by_reason"]
    # the sample does not resolve repeated ids: their extra clean copies count as used there
    assert rows["used"] == quality["rows_used"] + ran["duplicate_cdr_id"]
    assert {k: v for k, v in rows.items() if k != "used"} == {k: v for k, v in ran.items()
                                                              if v and k != "duplicate_cdr_id"}
    assert report.figures["time_range"]["rows_by_utc_hour"] == quality["time_range"]["rows_by_utc_hour"]


def test_a_clean_input_has_no_warnings_and_the_sample_spans_the_files(tmp_path):
    table = _calls(6000, NUMBERS, seed=1)
    write_partition_files(table, tmp_path / "cdr", 12)
    subs = _subscribers(tmp_path / "subs.parquet", NUMBERS)
    report = check_inputs(str(tmp_path / "cdr"), subs, None, _config(), sample_rows=1500)
    assert report.warnings == []
    c = report.figures["cdr"]
    assert c["files"] == 12 and c["rows"] == 6000
    assert 1500 <= c["sampled_rows"] < 6000 and 3 <= c["sampled_files"] < 12
    assert report.figures["numbers"]["rows_with_a_subscriber"] == 1.0
    # as-of: the day after the sample's last day (the last file is always sampled)
    assert report.figures["window"]["as_of"] == AS_OF.isoformat()
    assert "no warnings" in format_report(report)


def test_each_warning_names_its_setting(tmp_path):
    subs = _subscribers(tmp_path / "subs.parquet", NUMBERS)
    # switch event types
    t = _calls(3000, NUMBERS, seed=2)
    moc = t.set_column(t.schema.get_field_index("event_type"), "event_type", pa.array(["MOC"] * t.num_rows))
    write_partition_files(moc, tmp_path / "moc", 2)
    report = check_inputs(str(tmp_path / "moc"), subs, None, _config())
    assert any("'moc'" in w and "ingest.voice_types" in w for w in report.warnings), report.warnings
    # a country code in front of every caller, with no numbers section to strip it
    write_partition_files(_calls(3000, NUMBERS, seed=3, prefix="86"), tmp_path / "cc", 2)
    bare = JobConfig(window=WindowConfig(lookback_days=60))
    report = check_inputs(str(tmp_path / "cc"), subs, None, bare)
    assert any("with 86 in front" in w and "numbers.country_code: '86'" in w for w in report.warnings), report.warnings
    assert report.figures["numbers"]["longer_spellings"]["86"] > 0
    # a clock eight hours behind: the night at 08:00-16:00 UTC
    write_partition_files(_calls(3000, NUMBERS, seed=4, night_utc=(8, 16)), tmp_path / "tz", 2)
    report = check_inputs(str(tmp_path / "tz"), subs, None, _config())
    assert any("an operator at UTC-8" in w for w in report.warnings), report.warnings
    assert not check_inputs(str(tmp_path / "tz"), subs, None, _config(timezone="America/Los_Angeles")).warnings
    # a subscriber table of other numbers
    other = _subscribers(tmp_path / "other.parquet", [f"139{i:08d}" for i in range(200)])
    report = check_inputs(str(tmp_path / "tz"), other, None, _config(timezone="America/Los_Angeles"))
    assert any("has a subscriber's number at either end" in w for w in report.warnings), report.warnings
    part = _subscribers(tmp_path / "part.parquet", NUMBERS[:40])  # a fifth of the base: about 36 % of the rows
    report = check_inputs(str(tmp_path / "tz"), part, None, _config(timezone="America/Los_Angeles"))
    share = report.figures["numbers"]["rows_with_a_subscriber"]
    assert 0.3 < share < 0.45 and any(f"only {share:.1%} of the usable" in w for w in report.warnings)
    # text times without a format: the run's refusal, before any row is read
    text = t.set_column(t.schema.get_field_index("start_time"), "start_time",
                        pc.strftime(t.column("start_time").cast(pa.timestamp("s")), format="%Y%m%d%H%M%S"))
    write_partition_files(text, tmp_path / "text", 1)
    with pytest.raises(InputError, match="ingest.start_time_format: '%Y%m%d%H%M%S'"):
        check_inputs(str(tmp_path / "text"), subs, None, _config())
    report = check_inputs(str(tmp_path / "text"), subs, None,
                          replace(_config(), ingest=replace(_config().ingest, start_time_format="%Y%m%d%H%M%S")))
    write_partition_files(t, tmp_path / "plain", 1)
    plain = check_inputs(str(tmp_path / "plain"), subs, None, _config())
    assert report.warnings == [] and report.figures["rows"] == plain.figures["rows"]
    assert report.figures["rows"]["used"] > 2900


def test_the_command(tmp_path):
    write_partition_files(_calls(3000, NUMBERS, seed=5), tmp_path / "cdr", 2)
    write_partition_files(_calls(3000, NUMBERS, seed=6, night_utc=(8, 16)), tmp_path / "tz", 2)
    subs = _subscribers(tmp_path / "subs.parquet", NUMBERS)
    (tmp_path / "job.yaml").write_text(JOB_YAML)
    args = ["check", "--subscribers", subs, "--config", str(tmp_path / "job.yaml")]
    res = CliRunner().invoke(main, [*args, "--cdr", str(tmp_path / "cdr")])
    assert res.exit_code == 0, res.output
    assert "3,000 rows by their footers" in res.stdout and "no warnings" in res.stdout
    res = CliRunner().invoke(main, [*args, "--cdr", str(tmp_path / "tz"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["figures"]["quiet_hours"]["start"] == 8 and len(out["warnings"]) == 1
    res = CliRunner().invoke(main, [*args, "--cdr", str(tmp_path / "tz"), "--strict"])
    assert res.exit_code == 3 and "! the CDRs' quietest eight hours are 08:00-16:00" in res.stdout
    res = CliRunner().invoke(main, [*args, "--cdr", str(tmp_path / "missing")])
    assert res.exit_code == 2
    assert [line for line in res.stderr.splitlines() if line.strip()][0].startswith("socialgraph: error: ")
    assert not (tmp_path / "missing").exists()


def _dashed(table: pa.Table) -> pa.Table:
    for c in ("caller", "callee"):
        col = table.column(c)
        dashed = pc.binary_join_element_wise(pc.utf8_slice_codeunits(col, 0, 3), pc.utf8_slice_codeunits(col, 3, 7),
                                             pc.utf8_slice_codeunits(col, 7, 30), "-")
        table = table.set_column(table.schema.get_field_index(c), c, dashed)
    return table


def test_formatted_numbers_are_named_and_read_with_separators(random_cdr, write_partitions, run_graph_stage, tmp_path):
    subs = _subscribers(tmp_path / "subs.parquet", NUMBERS)
    t = _calls(3000, NUMBERS, seed=7)
    write_partition_files(t, tmp_path / "plain", 2)
    write_partition_files(_dashed(t), tmp_path / "dash", 2)
    report = check_inputs(str(tmp_path / "dash"), subs, None, _config())
    assert any("shaped ddd-dddd-dddd: numbers.separators: '-'" in w for w in report.warnings), report.warnings
    assert report.figures["non_numeric_shapes"][0]["shape"] == "ddd-dddd-dddd"
    cfg = _config()
    dashed_cfg = replace(cfg, numbers=replace(cfg.numbers, separators="-"))
    report = check_inputs(str(tmp_path / "dash"), subs, None, dashed_cfg)
    assert report.warnings == []
    assert report.figures["rows"] == check_inputs(str(tmp_path / "plain"), subs, None, cfg).figures["rows"]
    # the run: the same ties from formatted numbers as from plain ones
    table = random_cdr(seed=32, n_rows=800, n_numbers=40, dirty=False)
    write_partitions(table, tmp_path / "r-plain", 2)
    write_partitions(_dashed(table), tmp_path / "r-dash", 2)
    base = JobConfig(numbers=number_config())
    plain, q_plain, _ = run_graph_stage(tmp_path / "r-plain", base)
    ours, q_ours, _ = run_graph_stage(tmp_path / "r-dash", replace(base, numbers=replace(base.numbers, separators="-")))
    assert q_ours["quarantined_by_reason"] == q_plain["quarantined_by_reason"] and q_ours["rows_used"] > 0
    key = ["a", "b"]
    assert ours.to_pandas().sort_values(key, ignore_index=True).equals(plain.to_pandas().sort_values(key, ignore_index=True))


def test_subscriber_flags_are_named(tmp_path):
    write_partition_files(_calls(3000, NUMBERS, seed=8), tmp_path / "cdr", 2)
    flags = ["Y", "n", " yes", "?", None] * 40
    pq.write_table(pa.table({"msisdn": NUMBERS, "activation_date": pa.array([dt.date(2020, 1, 1)] * 200),
                             "dnd": pa.array(flags, pa.string())}), tmp_path / "subs.parquet")
    report = check_inputs(str(tmp_path / "cdr"), str(tmp_path / "subs.parquet"), None, _config())
    assert report.figures["subscribers"]["null_dnd"] == 40
    assert any("40 subscriber(s) have a dnd value the job does not read ('?' 40)" in w for w in report.warnings)
    assert any("40 subscriber(s) have no dnd value: kept off" in w for w in report.warnings)
    asked = replace(_config(), privacy=replace(_config().privacy, contact_unknown_dnd=True))
    report = check_inputs(str(tmp_path / "cdr"), str(tmp_path / "subs.parquet"), None, asked)
    assert any("40 subscriber(s) have no dnd value: listed as contactable" in w for w in report.warnings)


def test_unreadable_files_are_refused_or_listed_as_run_would(tmp_path):
    subs = _subscribers(tmp_path / "subs.parquet", NUMBERS)
    write_partition_files(_calls(3000, NUMBERS, seed=9), tmp_path / "cdr", 4)
    (tmp_path / "cdr" / "part-002.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"part-002\.parquet: not a readable Parquet file.*--skip-bad-files"):
        check_inputs(str(tmp_path / "cdr"), subs, None, _config())
    report = check_inputs(str(tmp_path / "cdr"), subs, None, _config(), skip_bad_files=True)
    assert [f["file"].rsplit("/", 1)[1] for f in report.figures["cdr"]["skipped_files"]] == ["part-002.parquet"]
    assert report.figures["cdr"]["sampled_files"] == 3 and report.figures["cdr"]["sampled_rows"] == 2250
    assert any("1 unreadable CDR file(s) would be skipped" in w for w in report.warnings)
    (tmp_path / "job.yaml").write_text(JOB_YAML)
    res = CliRunner().invoke(main, ["check", "--cdr", str(tmp_path / "cdr"), "--subscribers", subs,
                                    "--config", str(tmp_path / "job.yaml"), "--skip-bad-files"])
    assert res.exit_code == 0 and "would be skipped" in res.stdout

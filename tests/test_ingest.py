"""Ingest: every quarantine reason, exact row accounting, quarantine files, column mapping and
schema errors."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import AS_OF, CDR_SCHEMA, COUNTRY_CODE, LOOKBACK, NATIONAL_LENGTH, number_config
from pipelines.config_file import config_from_mapping
from pipelines.ingest import check_unread_values, open_cdrs, scan, unread_durations
from pipelines.io import InputError
from reference import assert_edges_equal_reference, reference_edges, reference_quality, reference_rows
from socialgraph.config import JobConfig
from socialgraph.ties import REASONS

START = dt.datetime.combine(AS_OF - dt.timedelta(days=LOOKBACK), dt.time())
END = dt.datetime.combine(AS_OF, dt.time())


def _at(days_before: float, hour: int = 12) -> dt.datetime:
    return END - dt.timedelta(days=days_before) + dt.timedelta(hours=hour)


GOOD = [
    {"caller": "13800000001", "callee": "13900000002", "start_time": _at(2, 10), "duration_s": 60,
     "event_type": "voice", "cdr_id": "g1", "caller_imei": "351"},
    {"caller": "13900000002", "callee": "13800000001", "start_time": _at(1, 20), "duration_s": 0,
     "event_type": "sms", "cdr_id": "g2", "caller_imei": "352"},
    {"caller": "+8613700000003", "callee": "13800000001", "start_time": _at(5, 9), "duration_s": 30,
     "event_type": "voice", "cdr_id": "g3", "caller_imei": None},
]
BASE_BAD = {"caller": "13600000004", "callee": "13800000001", "start_time": _at(3), "duration_s": 45,
            "event_type": "voice", "cdr_id": "bad", "caller_imei": None}

# (reason, overrides of a good row); each case has exactly one bad row
CASES = [
    ("null_number", {"caller": None}),
    ("null_number", {"callee": None}),
    ("null_number", {"caller": "   "}),
    ("non_numeric_number", {"caller": "13800a00001"}),
    ("non_numeric_number", {"callee": "+"}),
    ("non_numeric_number", {"callee": "138 0000 0001"}),
    ("non_numeric_number", {"callee": "-13800000001"}),
    ("number_too_long", {"caller": "1" * 18}),
    ("number_too_long", {"callee": "+86" + "1" * 18}),
    ("null_timestamp", {"start_time": None}),
    ("outside_window", {"start_time": END}),
    ("outside_window", {"start_time": START - dt.timedelta(milliseconds=1)}),
    ("outside_window", {"start_time": dt.datetime(2020, 1, 1)}),
    ("unknown_event_type", {"event_type": "data"}),
    ("unknown_event_type", {"event_type": None}),
    ("unknown_event_type", {"event_type": ""}),
    ("null_duration", {"duration_s": None}),
    ("null_duration", {"duration_s": None, "event_type": "Voice"}),
    ("negative_duration", {"duration_s": -1}),
    ("negative_duration", {"duration_s": -1, "event_type": "sms"}),
    ("self_call", {"callee": "13600000004"}),
    ("self_call", {"callee": "+8613600000004"}),
    ("self_call", {"callee": "008613600000004", "caller": " 13600000004 "}),
    ("self_call", {"callee": "8613600000004"}),  # national length + country code
    ("duplicate_cdr_id", {**GOOD[0]}),  # an exact re-send of g1
    ("duplicate_cdr_id", {**GOOD[0], "start_time": GOOD[0]["start_time"] + dt.timedelta(seconds=2)}),
    ("duplicate_cdr_id", {**GOOD[0], "start_time": GOOD[0]["start_time"] - dt.timedelta(seconds=2)}),
]


def _quarantine_rows(qdir: Path) -> list[dict]:
    files = sorted(Path(qdir).glob("*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def _canon(row: dict) -> tuple:
    """A bad row as comparable plain values (quarantine stores text, ms timestamps, floats)."""
    ts = row["start_time"]
    dur = row["duration_s"]
    return (row["caller"], row["callee"], None if ts is None else ts.replace(tzinfo=None),
            None if dur is None else float(dur), row["event_type"],
            None if row.get("cdr_id") is None else str(row["cdr_id"]), row.get("reason"))


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("reason,overrides", CASES,
                         ids=[f"{r}-{i}" for i, (r, _) in enumerate(CASES)])
def test_each_reason_counted_once(reason, overrides, k, write_partitions, run_graph_stage, tmp_path):
    bad = {**BASE_BAD, **overrides}
    table = pa.Table.from_pylist(GOOD + [bad], schema=CDR_SCHEMA)
    write_partitions(table, tmp_path / "in", k)
    edges, quality, _ = run_graph_stage(tmp_path / "in", quarantine_dir=_mk(tmp_path / "q"))
    assert quality["quarantined_by_reason"] == {r: int(r == reason) for r in REASONS}
    assert quality["rows_in"] == 4
    assert quality["rows_used"] == 3
    assert quality["rows_quarantined"] == 1
    assert quality["balanced"] is True
    ref = reference_edges(table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)
    assert_edges_equal_reference(edges, ref)
    q = _quarantine_rows(tmp_path / "q")
    assert [r["reason"] for r in q] == [reason]
    # the quarantined row is the bad row, or (for a duplicate) one of the two copies of g1
    kept_out = reference_rows(table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)
    want = [_canon({**table.slice(i, 1).to_pylist()[0], "reason": r})
            for i, r in zip(kept_out["row"], kept_out["reason"]) if isinstance(r, str)]
    assert [_canon(r) for r in q] == want


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason_has_a_case(reason):
    assert reason in {r for r, _ in CASES}


# rows with more than one fault get the first reason in the order of REASONS
PRECEDENCE = [
    ("null_number", {"caller": "12ab", "callee": None}),
    ("null_number", {"caller": None, "callee": "12ab"}),
    ("non_numeric_number", {"caller": "1" * 20, "callee": "x"}),
    ("non_numeric_number", {"caller": "x", "start_time": None}),
    ("number_too_long", {"callee": "1" * 20, "event_type": "data"}),
    ("null_timestamp", {"start_time": None, "event_type": "data", "duration_s": -5}),
    ("outside_window", {"start_time": END, "event_type": "mms"}),
    ("unknown_event_type", {"event_type": "data", "duration_s": None}),
    ("null_duration", {"duration_s": None, "callee": "13600000004"}),
    ("negative_duration", {"duration_s": -3, "callee": "13600000004"}),
    # shares g1's id but comes after it in content order, so g1 is the record
    ("self_call", {"callee": "13600000004", "cdr_id": "g1", "start_time": _at(1, 23)}),
]


@pytest.mark.parametrize("reason,overrides", PRECEDENCE,
                         ids=[f"{r}-{i}" for i, (r, _) in enumerate(PRECEDENCE)])
def test_reason_precedence_follows_REASONS_order(reason, overrides, write_partitions, run_graph_stage, tmp_path):
    bad = {**BASE_BAD, **overrides}
    table = pa.Table.from_pylist(GOOD + [bad], schema=CDR_SCHEMA)
    # the oracle agrees with the hand-written expectation
    assert reference_quality(table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE,
                             NATIONAL_LENGTH)["quarantined_by_reason"][reason] == 1
    write_partitions(table, tmp_path, 1)
    _, quality, _ = run_graph_stage(tmp_path)
    assert quality["quarantined_by_reason"] == {r: int(r == reason) for r in REASONS}


def test_repeated_id_is_one_record_whatever_its_rows(write_partitions, run_graph_stage, tmp_path):
    """Three rows share an id; the first in content order (here the earliest) is the record."""
    early = {**GOOD[0], "cdr_id": "dup", "start_time": _at(4)}
    late_bad = {**early, "start_time": _at(3), "caller": "zz"}      # has its own, earlier reason
    late_ok = {**early, "start_time": _at(2), "duration_s": 999}     # a duplicate
    table = pa.Table.from_pylist([late_ok, GOOD[1], late_bad, early], schema=CDR_SCHEMA)
    write_partitions(table, tmp_path, 3)
    edges, quality, _ = run_graph_stage(tmp_path)
    assert quality["rows_used"] == 2
    assert quality["quarantined_by_reason"]["duplicate_cdr_id"] == 1
    assert quality["quarantined_by_reason"]["non_numeric_number"] == 1
    df = edges.to_pandas()
    assert df["duration_s"].tolist() == [60]  # the record's duration, not the duplicate's 999


def test_garbled_first_copy_does_not_displace_a_good_copy(write_partitions, run_graph_stage, tmp_path):
    """The earliest copy of an id is garbled; the later, good copy is the record (nothing lost)."""
    garbled = {**GOOD[0], "cdr_id": "dup", "start_time": _at(4), "caller": None}
    good = {**GOOD[0], "cdr_id": "dup", "start_time": _at(3), "duration_s": 77}
    table = pa.Table.from_pylist([good, garbled, GOOD[1]], schema=CDR_SCHEMA)
    write_partitions(table, tmp_path, 2)
    edges, quality, _ = run_graph_stage(tmp_path)
    assert quality["rows_used"] == 2
    assert quality["quarantined_by_reason"]["null_number"] == 1
    assert quality["quarantined_by_reason"]["duplicate_cdr_id"] == 0
    assert edges.to_pandas()["duration_s"].tolist() == [77]


# --------------------------------------------------------------------------- random dirty input


@pytest.mark.parametrize("k", [1, 3])
def test_quality_matches_reference(k, random_cdr, write_partitions, run_graph_stage, tmp_path):
    table = random_cdr(seed=100 + k, n_rows=1200, n_numbers=50)
    write_partitions(table, tmp_path / "in", k)
    edges, quality, _ = run_graph_stage(tmp_path / "in", quarantine_dir=_mk(tmp_path / "q"))
    ref = reference_quality(table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)
    assert quality["rows_in"] == table.num_rows
    assert quality["rows_in"] == quality["rows_used"] + quality["rows_quarantined"]
    assert quality["balanced"] is True
    for key in ("rows_in", "rows_used", "rows_quarantined"):
        assert quality[key] == ref[key], key
    assert quality["quarantined_by_reason"] == ref["quarantined_by_reason"]
    assert all(v > 0 for v in ref["quarantined_by_reason"].values())  # every reason exercised

    # quarantine holds exactly the bad rows, each with its reason
    rows = reference_rows(table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)
    src = table.to_pylist()
    want = Counter(_canon({**src[i], "reason": r}) for i, r in zip(rows["row"], rows["reason"]) if isinstance(r, str))
    got_rows = _quarantine_rows(tmp_path / "q")
    assert set(got_rows[0]) >= {"caller", "callee", "start_time", "duration_s", "event_type", "cdr_id", "reason"}
    assert Counter(_canon(r) for r in got_rows) == want


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from([1, 2, 4]))
def test_quality_matches_reference_random_seeds(seed, k, random_cdr, write_partitions, run_graph_stage,
                                                tmp_path_factory):
    table = random_cdr(seed=seed, n_rows=400, n_numbers=30)
    d = tmp_path_factory.mktemp("q")
    write_partitions(table, d, k)
    _, quality, _ = run_graph_stage(d)
    ref = reference_quality(table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)
    assert quality["rows_in"] == ref["rows_in"] == quality["rows_used"] + quality["rows_quarantined"]
    assert quality["rows_used"] == ref["rows_used"]
    assert quality["quarantined_by_reason"] == ref["quarantined_by_reason"]


def test_no_quarantine_dir_writes_nothing(random_cdr, write_partitions, run_graph_stage, tmp_path):
    table = random_cdr(seed=4, n_rows=200, n_numbers=20)
    write_partitions(table, tmp_path / "in", 2)
    before = sorted(p.name for p in (tmp_path / "in").iterdir())
    run_graph_stage(tmp_path / "in")
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == before


# --------------------------------------------------------------------------- input shapes


MAPPING = {"caller": "calling_number", "callee": "called_number", "start_time": "event_time",
           "duration_s": "call_duration", "event_type": "record_type", "cdr_id": "record_id",
           "caller_imei": "imei"}


def test_column_remapping_from_config(random_cdr, write_partitions, run_graph_stage, tmp_path):
    table = random_cdr(seed=9, n_rows=500, n_numbers=30)
    renamed = table.rename_columns([MAPPING[c] for c in table.column_names])
    write_partitions(renamed, tmp_path / "in", 2)
    cfg = config_from_mapping({"columns": MAPPING,
                               "numbers": {"country_code": COUNTRY_CODE, "national_length": NATIONAL_LENGTH}})
    edges, quality, _ = run_graph_stage(tmp_path / "in", cfg, quarantine_dir=_mk(tmp_path / "q"))
    ref = reference_edges(table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)
    assert_edges_equal_reference(edges, ref)
    refq = reference_quality(table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)
    assert quality["rows_used"] == refq["rows_used"]
    assert quality["rows_quarantined"] == refq["rows_quarantined"]
    # the quarantine speaks the contract's column names
    q = _quarantine_rows(tmp_path / "q")
    assert q and {"caller", "callee", "start_time", "reason"} <= set(q[0])


def test_remapping_to_a_missing_input_column_names_both(write_partitions, tmp_path):
    table = pa.Table.from_pylist(GOOD, schema=CDR_SCHEMA)
    renamed = table.rename_columns([MAPPING[c] for c in table.column_names]).drop_columns(["called_number"])
    files = write_partitions(renamed, tmp_path, 1)
    cfg = config_from_mapping({"columns": MAPPING})
    with pytest.raises(InputError) as e:
        open_cdrs(str(tmp_path), cfg)
    msg = str(e.value)
    assert "\n" not in msg
    assert "called_number" in msg and str(files[0]) in msg


@pytest.mark.parametrize("column", ["caller", "callee", "start_time", "duration_s", "event_type"])
def test_missing_required_column_is_an_input_error(column, write_partitions, tmp_path):
    table = pa.Table.from_pylist(GOOD, schema=CDR_SCHEMA)
    write_partitions(table, tmp_path, 1)  # a good file first: the error must name the bad one
    bad = tmp_path / "sub" / "day=2026-04-20" / "bad.parquet"
    bad.parent.mkdir(parents=True)
    pq.write_table(table.drop_columns([column]), bad)
    with pytest.raises(InputError) as e:
        open_cdrs(str(tmp_path), JobConfig())
    msg = str(e.value)
    assert "\n" not in msg
    assert repr(column) in msg or f'"{column}"' in msg
    assert str(bad) in msg


def test_optional_columns_may_be_missing(write_partitions, run_graph_stage, tmp_path):
    table = pa.Table.from_pylist(GOOD + [{**GOOD[0]}], schema=CDR_SCHEMA).drop_columns(["cdr_id", "caller_imei"])
    write_partitions(table, tmp_path, 2)
    edges, quality, _ = run_graph_stage(tmp_path)
    # without ids, a repeated row cannot be told from a second call: both are used
    assert quality["rows_used"] == 4
    assert_edges_equal_reference(edges, reference_edges(table.to_pandas(), AS_OF, LOOKBACK,
                                                        COUNTRY_CODE, NATIONAL_LENGTH))


@pytest.mark.parametrize("column,values,word", [
    ("start_time", pa.array(["2026-04-28 10:00:00"] * 3), "start_time"),
    ("duration_s", pa.array([True, False, True]), "duration_s"),
    ("caller", pa.array([1.5, 2.5, 3.5]), "caller"),
    ("event_type", pa.array([1, 2, 1]), "event_type"),
])
def test_wrong_column_type_is_an_input_error(column, values, word, tmp_path):
    table = pa.Table.from_pylist(GOOD, schema=CDR_SCHEMA)
    table = table.set_column(table.column_names.index(column), column, values)
    f = tmp_path / "cdr.parquet"
    pq.write_table(table, f)
    with pytest.raises(InputError) as e:
        open_cdrs(str(f), JobConfig())
    msg = str(e.value)
    assert "\n" not in msg
    assert word in msg and str(f) in msg


def test_durations_as_text_read_as_seconds(write_partitions, run_graph_stage, tmp_path):
    """A CSV export's durations are text: numbers read as seconds, as an integer column would;
    text that is no number of seconds is quarantined as ``null_duration`` (an SMS's empty
    duration is 0, as a null one is) and kept as written in the quarantine's ``duration_s_text``."""
    text = [" 60", "0", "30.9"]  # GOOD's durations, one with a fraction cut as a float's is
    table = pa.Table.from_pylist(GOOD, schema=CDR_SCHEMA)
    bad = [{**BASE_BAD, "duration_s": None, "cdr_id": f"b{i}"} for i in range(3)]
    sms_blank = {**GOOD[1], "cdr_id": "g4", "start_time": _at(4)}
    as_text = pa.Table.from_pylist(GOOD + bad + [sms_blank], schema=CDR_SCHEMA)
    as_text = as_text.set_column(as_text.column_names.index("duration_s"), "duration_s",
                                 pa.array(text + ["1:23", "12s", ""] + [""]))
    reference = pa.concat_tables([table, pa.Table.from_pylist([sms_blank], schema=CDR_SCHEMA)])
    write_partitions(reference, tmp_path / "ref", 1)
    write_partitions(as_text, tmp_path / "in", 2)
    want, _, _ = run_graph_stage(tmp_path / "ref")
    got, quality, _ = run_graph_stage(tmp_path / "in", quarantine_dir=_mk(tmp_path / "q"))
    assert got.equals(want)
    assert quality["quarantined_by_reason"] == {r: 3 * (r == "null_duration") for r in REASONS}
    q = _quarantine_rows(tmp_path / "q")
    assert sorted(r["duration_s_text"] for r in q) == ["", "12s", "1:23"]
    assert all(r["duration_s"] is None for r in q)


def test_durations_written_as_clock_times_are_warned(random_cdr, write_partitions, run_graph_stage, tmp_path, caplog):
    """An export writing ``00:01:23`` loses every call to ``null_duration``; the run says so."""
    table = random_cdr(seed=31, n_rows=300, n_numbers=25, dirty=False)
    secs = table.column("duration_s").to_pylist()
    clock = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in secs]
    table = table.set_column(table.column_names.index("duration_s"), "duration_s", pa.array(clock))
    write_partitions(table, tmp_path / "in", 1)
    _, quality, _ = run_graph_stage(tmp_path / "in")
    n = quality["quarantined_by_reason"]["null_duration"]
    assert n == sum(1 for e in table.column("event_type").to_pylist() if e.strip().lower() == "voice") > 0
    with caplog.at_level("WARNING", logger="socialgraph"):
        check_unread_values(quality, JobConfig())
    assert [r.getMessage() for r in caplog.records] == [unread_durations(300, n)]
    assert f"{n:,} of 300 CDR rows" in caplog.records[0].getMessage() and "83 for 00:01:23" in caplog.records[0].getMessage()
    assert unread_durations(300, 3) is None  # 1 %: a few bad values are only counted


def test_blank_ids_are_no_ids(write_partitions, run_graph_stage, tmp_path):
    """A CSV export writes a record without an id as an empty cell: such rows are not copies
    of one another (the same rows with null ids give the same ties and counts)."""
    blank = pa.Table.from_pylist([{**r, "cdr_id": ["", " ", ""][i]} for i, r in enumerate(GOOD)], schema=CDR_SCHEMA)
    null = pa.Table.from_pylist([{**r, "cdr_id": None} for r in GOOD], schema=CDR_SCHEMA)
    write_partitions(blank, tmp_path / "blank", 2)
    write_partitions(null, tmp_path / "null", 1)
    got, quality, _ = run_graph_stage(tmp_path / "blank")
    want, _, _ = run_graph_stage(tmp_path / "null")
    assert quality["rows_used"] == 3 and quality["quarantined_by_reason"]["duplicate_cdr_id"] == 0
    assert got.equals(want)


def test_not_parquet_is_an_input_error(tmp_path):
    f = tmp_path / "cdr.parquet"
    f.write_text("caller,callee\n1,2\n")
    with pytest.raises(InputError) as e:
        open_cdrs(str(f), JobConfig())
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_no_files_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        open_cdrs(str(tmp_path), JobConfig())


def test_directory_glob_and_hive_partitions(write_partitions, run_graph_stage, tmp_path, random_cdr):
    table = random_cdr(seed=13, n_rows=300, n_numbers=20)
    half = table.num_rows // 2
    for i, (part, day) in enumerate(((table.slice(0, half), "2026-04-01"), (table.slice(half), "2026-04-02"))):
        d = tmp_path / "root" / f"day={day}"
        d.mkdir(parents=True)
        pq.write_table(part, d / f"p{i}.parquet")
    (tmp_path / "root" / "_SUCCESS").write_text("")
    ref = reference_edges(table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)
    edges, quality, _ = run_graph_stage(tmp_path / "root")
    assert quality["rows_in"] == table.num_rows
    assert_edges_equal_reference(edges, ref)
    edges2, _, _ = run_graph_stage(str(tmp_path / "root" / "day=*" / "*.parquet"))
    assert edges2.equals(edges)


def test_integer_numbers_and_ids(write_partitions, run_graph_stage, tmp_path):
    """The contract allows integer numbers and ids; a null in such a column is a bad row, not a crash."""
    rows = [{"caller": 13800000001, "callee": 13900000002, "start_time": _at(2), "duration_s": 60,
             "event_type": "voice", "cdr_id": 1},
            {"caller": 13900000002, "callee": 13800000001, "start_time": _at(1), "duration_s": 0,
             "event_type": "sms", "cdr_id": 2},
            {"caller": 13900000002, "callee": 13800000001, "start_time": _at(1), "duration_s": 0,
             "event_type": "sms", "cdr_id": 2},
            {"caller": None, "callee": 13800000001, "start_time": _at(1), "duration_s": 5,
             "event_type": "voice", "cdr_id": None}]
    schema = pa.schema([("caller", pa.int64()), ("callee", pa.int64()), ("start_time", pa.timestamp("us")),
                        ("duration_s", pa.int32()), ("event_type", pa.string()), ("cdr_id", pa.int64())])
    table = pa.Table.from_pylist(rows, schema=schema)
    write_partitions(table, tmp_path, 1)
    edges, quality, _ = run_graph_stage(tmp_path)
    assert quality["rows_used"] == 2
    assert quality["quarantined_by_reason"]["duplicate_cdr_id"] == 1
    assert quality["quarantined_by_reason"]["null_number"] == 1
    df = edges.to_pandas()
    assert df[["a", "b", "calls", "sms"]].values.tolist() == [["13800000001", "13900000002", 1, 1]]


def test_integer_numbers_without_nulls(write_partitions, run_graph_stage, tmp_path):
    rows = [{"caller": 13800000001, "callee": 13900000002, "start_time": _at(2), "duration_s": 60,
             "event_type": "voice", "cdr_id": 1},
            {"caller": 8613900000002, "callee": 13800000001, "start_time": _at(1), "duration_s": 0,
             "event_type": "sms", "cdr_id": 2}]
    schema = pa.schema([("caller", pa.int64()), ("callee", pa.int64()), ("start_time", pa.timestamp("us")),
                        ("duration_s", pa.int32()), ("event_type", pa.string()), ("cdr_id", pa.int64())])
    write_partitions(pa.Table.from_pylist(rows, schema=schema), tmp_path, 1)
    edges, quality, _ = run_graph_stage(tmp_path)
    assert quality["rows_used"] == 2
    df = edges.to_pandas()
    assert df[["a", "b", "calls", "sms", "reciprocal"]].values.tolist() == [
        ["13800000001", "13900000002", 1, 1, True]]


def _files_with_types(table: pa.Table, types, d: Path) -> Path:
    d.mkdir()
    for i, typ in enumerate(types):
        part = table.slice(i, 1)
        part = part.set_column(2, "start_time", part.column("start_time").cast(typ))
        pq.write_table(part, d / f"p{i}.parquet")
    return d


def test_timestamps_in_any_unit(run_graph_stage, tmp_path):
    """Files in different units give the same ties; a repeated id across them is one record."""
    table = pa.Table.from_pylist(GOOD + [{**GOOD[0]}], schema=CDR_SCHEMA)  # last row: a re-send of g1
    d = _files_with_types(table, [pa.timestamp("s"), pa.timestamp("us"), pa.timestamp("ns"),
                                  pa.timestamp("ms")], tmp_path / "mixed")
    edges, quality, _ = run_graph_stage(d)
    assert quality["rows_used"] == 3
    assert quality["quarantined_by_reason"]["duplicate_cdr_id"] == 1
    assert_edges_equal_reference(edges, reference_edges(table.slice(0, 3).to_pandas(), AS_OF, LOOKBACK,
                                                        COUNTRY_CODE, NATIONAL_LENGTH))


@pytest.mark.parametrize("tz", ["UTC", "Asia/Shanghai"])
def test_time_zone_aware_timestamps(tz, run_graph_stage, tmp_path):
    """An aware timestamp is an instant; naive ones are UTC. Mixed files, a repeated id across them."""
    table = pa.Table.from_pylist(GOOD + [{**GOOD[0]}], schema=CDR_SCHEMA)
    d = _files_with_types(table, [pa.timestamp("ms"), pa.timestamp("us", tz=tz), pa.timestamp("ms"),
                                  pa.timestamp("ns", tz=tz)], tmp_path / "aware")
    edges, quality, _ = run_graph_stage(d)
    assert quality["rows_used"] == 3
    assert quality["quarantined_by_reason"]["duplicate_cdr_id"] == 1
    assert_edges_equal_reference(edges, reference_edges(table.slice(0, 3).to_pandas(), AS_OF, LOOKBACK,
                                                        COUNTRY_CODE, NATIONAL_LENGTH))


def test_sub_second_timestamps_at_window_edges(write_partitions, run_graph_stage, tmp_path):
    rows = [{**GOOD[0], "cdr_id": "a", "start_time": START},                                  # in
            {**GOOD[0], "cdr_id": "b", "start_time": END - dt.timedelta(microseconds=1)},      # in
            {**GOOD[0], "cdr_id": "c", "start_time": START - dt.timedelta(microseconds=1)},    # out
            {**GOOD[0], "cdr_id": "d", "start_time": END}]                                      # out
    schema = CDR_SCHEMA.set(2, pa.field("start_time", pa.timestamp("us")))
    write_partitions(pa.Table.from_pylist(rows, schema=schema), tmp_path, 1)
    edges, quality, _ = run_graph_stage(tmp_path)
    assert quality["rows_used"] == 2
    assert quality["quarantined_by_reason"]["outside_window"] == 2
    df = edges.to_pandas()
    assert int(df["active_days"].iloc[0]) == 2


def test_scan_finds_latest_plausible_timestamp(random_cdr, write_partitions, tmp_path):
    table = random_cdr(seed=6, n_rows=300, n_numbers=20)
    future = pa.Table.from_pylist([{**GOOD[0], "cdr_id": "future", "start_time": dt.datetime(2099, 1, 1)}],
                                  schema=CDR_SCHEMA)
    write_partitions(pa.concat_tables([table, future]), tmp_path, 3)
    source = open_cdrs(str(tmp_path), JobConfig(numbers=number_config()))
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    from conftest import synchronous_compute

    max_ts, dup_ids = scan(source, synchronous_compute, need_max_ts=True, now=now)
    ts = [t for t in table.column("start_time").to_pylist() if t is not None]
    assert max_ts == int(max(ts).replace(tzinfo=dt.timezone.utc).timestamp())
    ids = [i for i in table.column("cdr_id").to_pylist() if i is not None]
    assert dup_ids.size == sum(1 for c in Counter(ids).values() if c > 1)
    assert np.all(dup_ids[1:] >= dup_ids[:-1])


def test_dictionary_encoded_columns_read_as_their_values(random_cdr, write_partitions, run_graph_stage, tmp_path):
    """A pandas ``category`` column written to Parquet reads back dictionary-encoded: numbers,
    event types, ids and IMEIs in that form give the same ties and the same row accounting as
    plain strings (Arrow cannot sort dictionaries: the job once stopped with its error)."""
    table = random_cdr(seed=11, n_rows=400, n_numbers=30)
    plain_dir, dict_dir = tmp_path / "plain", tmp_path / "dict"
    write_partitions(table, plain_dir, 2)
    df = table.to_pandas()
    for c in ("caller", "callee", "event_type", "cdr_id"):
        df[c] = df[c].astype("category")
    as_category = pa.Table.from_pandas(df, preserve_index=False)
    assert pa.types.is_dictionary(as_category.schema.field("caller").type)
    write_partitions(as_category, dict_dir, 2)
    assert pa.types.is_dictionary(pq.read_schema(next(dict_dir.glob("*.parquet"))).field("event_type").type)
    plain, q_plain, _ = run_graph_stage(plain_dir)
    coded, q_coded, _ = run_graph_stage(dict_dir)
    assert q_coded["rows_in"] == table.num_rows and q_coded["quarantined_by_reason"] == q_plain["quarantined_by_reason"]
    assert q_coded["rows_used"] == q_plain["rows_used"] > 0
    key = ["a", "b"]
    assert coded.to_pandas().sort_values(key, ignore_index=True).equals(plain.to_pandas().sort_values(key, ignore_index=True))



def test_the_exports_own_event_type_values(random_cdr, write_partitions, run_graph_stage, tmp_path):
    """A switch export names records MOC / SMS_MO: with ``ingest.voice_types`` and
    ``sms_types`` set to them, the same ties and counts as the contract's voice / sms; without,
    every such row is an unknown event type."""
    from dataclasses import replace

    import pyarrow.compute as pc

    table = random_cdr(seed=12, n_rows=400, n_numbers=30)
    write_partitions(table, tmp_path / "plain", 2)
    norm = pc.utf8_lower(pc.utf8_trim_whitespace(table.column("event_type")))
    coded = pc.if_else(pc.equal(norm, "voice"), "MOC", pc.if_else(pc.equal(norm, "sms"), " sms_mo", table.column("event_type")))
    switch = table.set_column(table.schema.get_field_index("event_type"), "event_type", coded)
    write_partitions(switch, tmp_path / "switch", 2)
    base = JobConfig(numbers=number_config())
    mapped = replace(base, ingest=replace(base.ingest, voice_types=("moc",), sms_types=("SMS_MO", "smsmo")))
    plain, q_plain, _ = run_graph_stage(tmp_path / "plain", base)
    ours, q_ours, _ = run_graph_stage(tmp_path / "switch", mapped)
    assert q_ours["quarantined_by_reason"] == q_plain["quarantined_by_reason"]
    assert q_ours["rows_used"] == q_plain["rows_used"] > 0
    key = ["a", "b"]
    assert ours.to_pandas().sort_values(key, ignore_index=True).equals(plain.to_pandas().sort_values(key, ignore_index=True))
    assert int(pc.sum(ours.column("sms")).as_py()) > 0
    _, q_unmapped, _ = run_graph_stage(tmp_path / "switch", base)
    assert q_unmapped["rows_used"] == 0
    assert q_unmapped["quarantined_by_reason"]["unknown_event_type"] > q_plain["quarantined_by_reason"]["unknown_event_type"]


@pytest.mark.parametrize("section, says", [
    ({"voice_types": ["voice", "sms"]}, "in both voice_types and sms_types"),
    ({"voice_types": [], "sms_types": []}, "both empty"),
    ({"sms_types": [""]}, "ingest.sms_types must be a list of event_type values"),
])
def test_event_type_settings_are_checked(section, says):
    from pipelines.config_file import ConfigError

    with pytest.raises(ConfigError, match=says):
        config_from_mapping({"ingest": section})

"""``start_time`` as text or as a number since 1970 (``ingest.start_time_format`` / ``_unit``).

The readers are checked against Python's own datetime on random times, and the whole graph
stage on a dirty random CDR written four ways (switch text, ISO text with an offset, epoch
milliseconds, epoch seconds as floats) against the same CDR as Parquet timestamps: the same
ties and the same row accounting. Without the setting such a file is refused before any row
is read, with the line to add.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import times
from pipelines.ingest import check_unread_values, check_usable_rows, open_cdrs, scan, time_setting
from pipelines.io import InputError
from socialgraph.config import IngestConfig, JobConfig
from socialgraph.ties import REASONS, Window

from conftest import AS_OF, LOOKBACK, number_config, synchronous_compute

moments = st.datetimes(min_value=dt.datetime(1995, 1, 1), max_value=dt.datetime(2090, 12, 31))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timedelta(minutes=m))


@settings(max_examples=200, deadline=None)
@given(moments, offsets, st.sampled_from(["%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S"]))
def test_text_reads_as_python_reads_it(moment, offset, fmt):
    moment = moment.replace(microsecond=0)
    text = moment.strftime(fmt)
    assert times.parse_text(pa.array([text]), fmt).to_pylist() == [moment]
    # ISO text: fractions of a second and an offset, which the result turns into UTC
    local = moment.replace(microsecond=123456, tzinfo=dt.timezone(offset))
    iso = local.isoformat()
    utc = local.astimezone(dt.timezone.utc).replace(tzinfo=None)
    assert times.parse_text(pa.array([iso, iso.replace("T", " ")]), "iso").to_pylist() == [utc, utc]


@settings(max_examples=200, deadline=None)
@given(moments, st.sampled_from(list(times.UNITS)))
def test_numbers_read_in_their_unit(moment, unit):
    us = (moment - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    per = {"s": 10**6, "ms": 10**3, "us": 1, "ns": 10**-3}[unit]
    whole = us // per if unit != "ns" else us * 1000
    expect = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=whole * per if unit != "ns" else us)
    assert times.parse_number(pa.array([whole], pa.int64()), unit).to_pylist() == [expect]
    assert times.guess_unit(whole) == unit
    if unit == "s":  # seconds with a fraction, as a float column holds them
        got = times.parse_number(pa.array([whole + 0.25]), "s").to_pylist()[0]
        assert got == expect + dt.timedelta(milliseconds=250)


def test_values_that_are_not_times_become_null():
    text = pa.array(["20260105143000", "2026-01-05", "", None, "20261305143000", "garbage", "20260230143000",
                     "20260431000000", " 20260105143000 "])
    assert times.parse_text(text, "%Y%m%d%H%M%S").to_pylist() == \
        [dt.datetime(2026, 1, 5, 14, 30)] + [None] * 7 + [dt.datetime(2026, 1, 5, 14, 30)]
    # Arrow's strptime reads 30 February as 1 March; an impossible day is not a time
    dmy = pa.array(["31/04/2026 10:00:00", "30/04/2026 10:00:00", "29/02/2024 10:00:00", "29/02/2026 10:00:00"])
    assert times.parse_text(dmy, "%d/%m/%Y %H:%M:%S").to_pylist() == \
        [None, dt.datetime(2026, 4, 30, 10), dt.datetime(2024, 2, 29, 10), None]
    iso = pa.array(["2026-01-05T14:30:00", "2026-02-30T10:00:00", "x", "2026-01-05T14:30:00+01:00", None])
    assert times.parse_text(iso, "iso").to_pylist() == [dt.datetime(2026, 1, 5, 14, 30), None, None,
                                                       dt.datetime(2026, 1, 5, 13, 30), None]
    nums = pa.array([1767623400, 2**62, -(2**62), None], pa.int64())
    assert times.parse_number(nums, "s").to_pylist() == [dt.datetime(2026, 1, 5, 14, 30), None, None, None]
    assert times.parse_number(pa.array([float("nan"), float("inf"), 1e300]), "ms").null_count == 3


@settings(max_examples=100, deadline=None)
@given(moments)
def test_a_guessed_format_reads_the_sample_back(moment):
    moment = moment.replace(microsecond=0)
    for fmt in times._CANDIDATES:
        text = moment.strftime(fmt)
        guess = times.guess_format(text)
        if guess is None:  # only where day and month could be swapped
            assert "%d/%m" in fmt or "%m/%d" in fmt
            assert moment.day <= 12 and moment.day != moment.month
            continue
        assert times.parse_text(pa.array([text]), guess).to_pylist() == [moment]


def test_config_refuses_a_format_or_unit_it_cannot_use():
    for bad in ({"start_time_format": "YYYY-MM-DD"}, {"start_time_format": 5}, {"start_time_unit": "min"}):
        with pytest.raises(ValueError, match="ingest.start_time_"):
            IngestConfig(**bad)
    assert IngestConfig(start_time_format="iso", start_time_unit="ms").start_time_unit == "ms"


def _whole_seconds(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("start_time")
    return table.set_column(i, "start_time", table.column(i).cast(pa.timestamp("s"), safe=False))


def _with_time(table: pa.Table, col) -> pa.Table:
    return table.set_column(table.schema.get_field_index("start_time"), "start_time", col)


def _config(**ingest) -> JobConfig:
    base = JobConfig(numbers=number_config())
    return replace(base, ingest=replace(base.ingest, **ingest))


def test_text_and_epoch_times_give_the_same_ties(random_cdr, write_partitions, run_graph_stage, tmp_path):
    table = _whole_seconds(random_cdr(seed=21, n_rows=600, n_numbers=40))
    ts = table.column("start_time")
    local = pc.add(ts, pa.scalar(dt.timedelta(hours=2)))  # the same instants, written at UTC+02:00
    variants = {
        "switch": (pc.strftime(ts, format="%Y%m%d%H%M%S"), {"start_time_format": "%Y%m%d%H%M%S"}),
        "iso": (pc.binary_join_element_wise(pc.strftime(local, format="%Y-%m-%dT%H:%M:%S"), "+02:00", ""),
                {"start_time_format": "iso"}),
        "epoch_ms": (pc.multiply(ts.cast(pa.int64()), 1000), {"start_time_unit": "ms"}),
        "epoch_float": (ts.cast(pa.int64()).cast(pa.float64()), {"start_time_unit": "s"}),
    }
    write_partitions(table, tmp_path / "plain", 2)
    plain, q_plain, _ = run_graph_stage(tmp_path / "plain")
    assert q_plain["quarantined_by_reason"]["null_timestamp"] > 0  # the random CDR has null times
    key = ["a", "b"]
    expect = plain.to_pandas().sort_values(key, ignore_index=True)
    for name, (col, setting) in variants.items():
        write_partitions(_with_time(table, col), tmp_path / name, 2)
        ours, q_ours, _ = run_graph_stage(tmp_path / name, _config(**setting))
        assert q_ours["quarantined_by_reason"] == q_plain["quarantined_by_reason"], name
        assert q_ours["rows_used"] == q_plain["rows_used"] > 0, name
        assert ours.to_pandas().sort_values(key, ignore_index=True).equals(expect), name
    # the scan's latest time (the default --as-of) reads the text too
    now = dt.datetime.now(dt.timezone.utc)
    latest_plain, _ = scan(open_cdrs(str(tmp_path / "plain"), _config()), synchronous_compute, True, now)
    latest_text, _ = scan(open_cdrs(str(tmp_path / "iso"), _config(start_time_format="iso")),
                          synchronous_compute, True, now)
    assert latest_text == latest_plain is not None


def test_a_value_that_does_not_read_is_quarantined_with_its_text(random_cdr, write_partitions, run_graph_stage,
                                                                tmp_path):
    table = _whole_seconds(random_cdr(seed=22, n_rows=300, n_numbers=30, dirty=False))
    text = pc.strftime(table.column("start_time"), format="%Y%m%d%H%M%S").to_pylist()
    rows_in_window = [i for i, t in enumerate(table.column("start_time").to_pylist())
                      if t is not None and t.date() < AS_OF]
    broken = rows_in_window[:7]
    for i in broken:
        text[i] = f"2026-13-{i:02d}"
    write_partitions(_with_time(table, pa.array(text)), tmp_path / "cdr", 2)
    qdir = tmp_path / "q"
    qdir.mkdir()
    _, quality, _ = run_graph_stage(tmp_path / "cdr", _config(start_time_format="%Y%m%d%H%M%S"), quarantine_dir=qdir)
    assert quality["quarantined_by_reason"]["null_timestamp"] == len(broken)
    q = ds.dataset(qdir).to_table().to_pandas()
    nulls = q[q["reason"] == "null_timestamp"]
    assert sorted(nulls["start_time_text"]) == sorted(text[i] for i in broken)
    assert nulls["start_time"].isna().all()


def test_text_or_numbers_without_the_setting_are_refused_with_it(random_cdr, write_partitions, tmp_path):
    table = _whole_seconds(random_cdr(seed=23, n_rows=200, n_numbers=20, dirty=False))
    ts = table.column("start_time")
    write_partitions(_with_time(table, pc.strftime(ts, format="%Y-%m-%d %H:%M:%S")), tmp_path / "text", 1)
    write_partitions(_with_time(table, pc.multiply(ts.cast(pa.int64()), 1000)), tmp_path / "ms", 1)
    with pytest.raises(InputError, match=r"type string.*ingest.start_time_format: '%Y-%m-%d %H:%M:%S'"):
        open_cdrs(str(tmp_path / "text"), _config())
    with pytest.raises(InputError, match=r"type int64.*ingest.start_time_unit: ms"):
        open_cdrs(str(tmp_path / "ms"), _config())
    # a wrong format or unit, caught on the file's statistics before any row is read
    with pytest.raises(InputError, match=r"do not read with ingest.start_time_format '%Y%m%d%H%M%S'.*'%Y-%m-%d %H:%M:%S'"):
        open_cdrs(str(tmp_path / "text"), _config(start_time_format="%Y%m%d%H%M%S"))
    with pytest.raises(InputError, match=r"not a date .* in ingest.start_time_unit 's'.*unit: ms"):
        open_cdrs(str(tmp_path / "ms"), _config(start_time_unit="s"))
    # a timestamp column ignores the settings
    write_partitions(table, tmp_path / "ts", 1)
    assert "start_time" in open_cdrs(str(tmp_path / "ts"), _config(start_time_format="iso", start_time_unit="s")).columns


def test_iso_with_bad_values_is_read_value_by_value():
    """One bad value must not cost the clean ones (Arrow's cast fails the whole array)."""
    rng = np.random.default_rng(3)
    secs = rng.integers(1_767_225_600, 1_775_000_000, 5_000)
    moments = [dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(s)) for s in secs]
    text = [m.isoformat() + ("Z" if i % 3 == 0 else "") for i, m in enumerate(moments)]
    text[17], text[4000] = "not a time", "2026-02-30T01:00:00"
    got = times.parse_text(pa.chunked_array([text[:2500], text[2500:]]), "iso").to_pylist()
    assert got[17] is None and got[4000] is None
    assert [g for i, g in enumerate(got) if i not in (17, 4000)] == [m for i, m in enumerate(moments) if i not in (17, 4000)]


def test_day_and_month_swapped_is_warned(random_cdr, write_partitions, run_graph_stage, tmp_path, caplog):
    """A file's smallest and largest text can both read with day and month swapped; the rows
    after the 12th of a month do not, and the run says so with the setting."""
    table = _whole_seconds(random_cdr(seed=24, n_rows=400, n_numbers=30, dirty=False))
    ts = table.column("start_time")
    write_partitions(_with_time(table, pc.strftime(ts, format="%d/%m/%Y %H:%M:%S")), tmp_path / "dmy", 2)
    cfg = _config(start_time_format="%m/%d/%Y %H:%M:%S")
    _, quality, _ = run_graph_stage(tmp_path / "dmy", cfg)
    late = sum(1 for t in ts.to_pylist() if t.day > 12)
    assert 0 < quality["quarantined_by_reason"]["null_timestamp"] == late
    with caplog.at_level("WARNING", logger="socialgraph"):
        check_unread_values(quality, cfg)
        check_unread_values(quality, _config(start_time_unit="s"))  # any setting is named
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and "ingest.start_time_format '%m/%d/%Y %H:%M:%S'" in warned[0]
    assert f"{late:,} of 400 CDR rows" in warned[0] and "ingest.start_time_unit 's'" in warned[1]
    caplog.clear()
    with caplog.at_level("WARNING", logger="socialgraph"):
        check_unread_values(quality, _config())  # timestamps: nothing to blame on a setting
        check_unread_values({**quality, "quarantined_by_reason": {"null_timestamp": 0, "null_duration": 0}}, cfg)
    assert not caplog.records
    # every row unreadable: the refusal names the setting
    window = Window(AS_OF, LOOKBACK)
    every = {"rows_in": 10, "rows_used": 0, "quarantined_by_reason": {r: 0 for r in REASONS} | {"null_timestamp": 10}}
    with pytest.raises(InputError, match=r"do not read with ingest.start_time_format '%m/%d/%Y %H:%M:%S'"):
        check_usable_rows(every, window, "cdr/", time_setting(cfg))


# ----------------------------------------------------------------------------- the clock's zone

def _hours_of(table: pa.Table) -> np.ndarray:
    us = pc.drop_null(table.column("start_time").cast(pa.timestamp("us")).cast(pa.int64())).to_numpy()
    return np.bincount((us // 3_600_000_000) % 24, minlength=24)


def test_the_hour_histogram_counts_every_timed_row(random_cdr, write_partitions, run_graph_stage, tmp_path):
    table = random_cdr(seed=25, n_rows=3000, n_numbers=40)
    write_partitions(table, tmp_path / "cdr", 3)
    _, quality, _ = run_graph_stage(tmp_path / "cdr")
    assert quality["time_range"]["rows_by_utc_hour"] == _hours_of(table).tolist()
    # calls spread evenly over the day have no night to place: no advice either way
    quiet = times.quiet_hours(quality["time_range"]["rows_by_utc_hour"], "UTC", AS_OF)
    assert quiet["ratio"] > times.QUIET_MAX_RATIO and times.zone_advice(quiet, "UTC") is None


def test_real_phones_sleep_at_night_and_a_shifted_clock_is_named():
    """The Copenhagen phones, their clock moved by k hours: within 3 hours nothing is said;
    beyond, the advice names the zone whose clock they would be (UTC-k)."""
    from realdata import AS_OF as CNS_AS_OF
    from realdata import cns_cdr_table

    hours = _hours_of(cns_cdr_table())
    for k in range(-11, 13):
        shifted = np.roll(hours, k)  # every call k hours later on the clock
        quiet = times.quiet_hours(shifted, "UTC", CNS_AS_OF)
        advice = times.zone_advice(quiet, "UTC")
        if abs(k) <= times.NIGHT_TOLERANCE:
            assert advice is None, (k, quiet)
        else:
            assert quiet["data_offset"] == (-k if k < 12 else 12), (k, quiet)
            assert f"an operator at UTC{-k if k < 12 else 12:+d}" in advice, (k, advice)
    # local times written without a zone, read with the operator's zone: shifted twice
    advice = times.zone_advice(times.quiet_hours(hours, "Asia/Shanghai", CNS_AS_OF), "Asia/Shanghai")
    assert "local times written without a zone: set window.timezone: UTC" in advice
    assert times.zone_advice(times.quiet_hours(hours, "Europe/Copenhagen", CNS_AS_OF), "Europe/Copenhagen") is None

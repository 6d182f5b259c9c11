"""Ties: the pipeline's edge table against a slow reference, partition invariance, tie strength,
service hubs and the day bitmask."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import AS_OF, CDR_SCHEMA, COUNTRY_CODE, LOOKBACK, NATIONAL_LENGTH
from reference import (
    assert_edges_equal_reference,
    reference_edges,
    reference_quality,
    reference_service_hubs,
    reference_weight,
)
from socialgraph.config import JobConfig, TieConfig
from socialgraph.numbers import normalize_numbers, number_keys
from socialgraph.schema import EDGES
from socialgraph.ties import service_hub_mask, tie_strength, weigh_edges


def _reference(table: pa.Table, *, cc=COUNTRY_CODE, nl=NATIONAL_LENGTH, as_of=AS_OF, lookback=LOOKBACK):
    return reference_edges(table.to_pandas(), as_of, lookback, cc, nl)


# --------------------------------------------------------------------------- pipeline vs reference


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("dirty", [True, False])
def test_edges_equal_reference(k, dirty, random_cdr, write_partitions, run_graph_stage, tmp_path):
    table = random_cdr(seed=11 + k, n_rows=900, n_numbers=60, dirty=dirty)
    write_partitions(table, tmp_path, k)
    edges, quality, _ = run_graph_stage(tmp_path, expect_partitions=k)
    assert edges.schema.equals(EDGES)
    ref = _reference(table)
    assert len(ref) > 50  # the test means something
    assert_edges_equal_reference(edges, ref)
    assert quality["rows_used"] == reference_quality(
        table.to_pandas(), AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)["rows_used"]


def test_edges_without_country_code(random_cdr, write_partitions, run_graph_stage, tmp_path):
    """Without a country code, '+86n' and 'n' are different numbers (and not self-calls)."""
    table = random_cdr(seed=5, n_rows=700, n_numbers=40)
    write_partitions(table, tmp_path, 2)
    edges, _, _ = run_graph_stage(tmp_path, JobConfig())
    ref = _reference(table, cc=None, nl=None)
    assert ref["a"].str.startswith("86").any() or ref["b"].str.startswith("86").any()
    assert_edges_equal_reference(edges, ref)


@pytest.mark.parametrize("n_buckets", [1, 2, 7])
def test_identical_across_partition_counts(n_buckets, random_cdr, write_partitions, run_graph_stage, tmp_path):
    table = random_cdr(seed=3, n_rows=800, n_numbers=50)
    results = []
    for k in (1, 2, 4):
        d = tmp_path / f"k{k}"
        write_partitions(table, d, k)
        edges, quality, hubs = run_graph_stage(d, n_buckets=n_buckets, expect_partitions=k)
        results.append((edges, quality, hubs))
    # split points of the combine only balance work: any of them give the same table
    keys, status = normalize_numbers(table.column("caller"))
    callers = keys[status == 0]
    for keys in (np.array([], np.int64), callers, callers[:1], np.array([0, 2**62], np.int64)):
        results.append(run_graph_stage(tmp_path / "k2", n_buckets=n_buckets, balance_keys=keys))
    first = results[0]
    for edges, quality, hubs in results[1:]:
        assert edges.equals(first[0])
        assert quality == first[1]
        assert hubs.tolist() == first[2].tolist()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_numbers=st.integers(3, 40))
def test_edges_equal_reference_random_seeds(seed, n_numbers, random_cdr, write_partitions, run_graph_stage,
                                            tmp_path_factory):
    table = random_cdr(seed=seed, n_rows=300, n_numbers=n_numbers)
    ref = _reference(table)
    base = tmp_path_factory.mktemp("seed")
    tables = []
    for k in (1, 2, 4):
        write_partitions(table, base / f"k{k}", k)
        edges, _, _ = run_graph_stage(base / f"k{k}", expect_partitions=k)
        assert_edges_equal_reference(edges, ref)
        tables.append(edges)
    assert tables[1].equals(tables[0]) and tables[2].equals(tables[0])


def test_pipeline_on_clean_rows_from_many_files_uses_everything(random_cdr, write_partitions,
                                                                run_graph_stage, tmp_path):
    table = random_cdr(seed=8, n_rows=400, n_numbers=25, dirty=False)
    write_partitions(table, tmp_path, 4)
    edges, quality, _ = run_graph_stage(tmp_path)
    assert quality["rows_in"] == quality["rows_used"] == table.num_rows
    df = edges.to_pandas()
    assert (df["a"] < df["b"]).all()
    assert int(df["calls"].sum() + df["sms"].sum()) == table.num_rows


# --------------------------------------------------------------------------- day bitmask


def _ts(day_offset: int, hour: int = 12, start: dt.date = AS_OF - dt.timedelta(days=150)):
    return dt.datetime.combine(start + dt.timedelta(days=day_offset), dt.time(hour))


def test_active_days_past_64_days(write_partitions, run_graph_stage, tmp_path):
    """A 150-day window needs three 64-bit words; every day counts once, wherever it falls."""
    days = [0, 1, 63, 64, 65, 127, 128, 149]
    rows = []
    for i, d in enumerate(days):
        for rep, hour in enumerate((1, 23)):  # two events on the same day count one day
            caller, callee = ("13800000001", "13900000002") if rep == 0 else ("13900000002", "13800000001")
            rows.append({"caller": caller, "callee": callee, "start_time": _ts(d, hour),
                         "duration_s": 10 * (i + 1), "event_type": "voice", "cdr_id": f"x{i}-{rep}",
                         "caller_imei": None})
    # a second pair, only on days far apart, in the other word positions
    for i, d in enumerate((2, 70, 140)):
        rows.append({"caller": "13700000003", "callee": "13800000001", "start_time": _ts(d),
                     "duration_s": 0, "event_type": "sms", "cdr_id": f"y{i}", "caller_imei": None})
    table = pa.Table.from_pylist(rows, schema=CDR_SCHEMA)
    # events of the same pair in different files: the words are OR-ed across partitions
    write_partitions(table, tmp_path, 4)
    edges, quality, _ = run_graph_stage(tmp_path, lookback_days=150)
    assert quality["rows_used"] == len(rows)
    df = edges.to_pandas().set_index(["a", "b"])
    assert int(df.loc[("13800000001", "13900000002"), "active_days"]) == len(days)
    assert int(df.loc[("13700000003", "13800000001"), "active_days"]) == 3
    assert int(df.loc[("13800000001", "13900000002"), "calls"]) == 2 * len(days)
    first = pd.Timestamp(df.loc[("13800000001", "13900000002"), "first_seen"])
    last = pd.Timestamp(df.loc[("13800000001", "13900000002"), "last_seen"])
    assert first == pd.Timestamp(_ts(0, 1)) and last == pd.Timestamp(_ts(149, 23))


def test_active_days_random_long_window(random_cdr, write_partitions, run_graph_stage, tmp_path):
    table = random_cdr(seed=21, n_rows=2500, n_numbers=6, lookback_days=150)
    write_partitions(table, tmp_path, 2)
    edges, _, _ = run_graph_stage(tmp_path, lookback_days=150)
    ref = _reference(table, lookback=150)
    assert ref["active_days"].max() > 64  # the test reaches past the first word
    assert_edges_equal_reference(edges, ref)


# --------------------------------------------------------------------------- tie strength


def _one(calls_ab=0, calls_ba=0, sms_ab=0, sms_ba=0, duration_s=0, active_days=1, ties=TieConfig()):
    e = pd.DataFrame({"calls_ab": [calls_ab], "calls_ba": [calls_ba], "sms_ab": [sms_ab],
                      "sms_ba": [sms_ba], "duration_s": [duration_s], "active_days": [active_days]})
    return float(tie_strength(e, ties)[0])


counts = st.integers(0, 500)


@settings(max_examples=100, deadline=None)
@given(calls_ab=counts, calls_ba=counts, sms_ab=counts, sms_ba=counts,
       duration_s=st.integers(0, 10**6), active_days=st.integers(0, 400))
def test_tie_strength_matches_documented_formula(calls_ab, calls_ba, sms_ab, sms_ba, duration_s, active_days):
    got = _one(calls_ab, calls_ba, sms_ab, sms_ba, duration_s, active_days)
    want = reference_weight(calls_ab, calls_ba, sms_ab, sms_ba, duration_s, active_days)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 500), sms_share=st.floats(0, 1), duration_s=st.integers(0, 10**5),
       active_days=st.integers(1, 180))
def test_reciprocal_beats_one_way_at_equal_volume(n, sms_share, duration_s, active_days):
    sms = int(round(2 * n * sms_share))
    calls = 2 * n - sms
    # same totals; one tie balanced, the other all one way
    both = _one(calls_ab=calls // 2, calls_ba=calls - calls // 2, sms_ab=sms - sms // 2, sms_ba=sms // 2,
                duration_s=duration_s, active_days=active_days)
    one_way = _one(calls_ab=calls, sms_ab=sms, duration_s=duration_s, active_days=active_days)
    assert both > one_way > 0


@settings(max_examples=100, deadline=None)
@given(c=st.integers(0, 1000), extra=st.integers(1, 100), d=st.integers(1, 300), more_days=st.integers(1, 50),
       duration_s=st.integers(0, 10**5))
def test_tie_strength_monotone_in_calls_and_days(c, extra, d, more_days, duration_s):
    # balanced ties stay balanced when both sides call more
    assert _one(c + extra, c + extra, duration_s=duration_s, active_days=d) > _one(c, c, duration_s=duration_s, active_days=d)
    # one-way ties stay one-way
    assert _one(c + extra, 0, duration_s=duration_s, active_days=d) > _one(c, 0, duration_s=duration_s, active_days=d)
    # more distinct days, same events
    assert _one(c + 1, c, duration_s=duration_s, active_days=d + more_days) > _one(c + 1, c, duration_s=duration_s, active_days=d)
    # longer calls
    assert _one(c + 1, c, duration_s=duration_s + 60 * extra, active_days=d) > _one(c + 1, c, duration_s=duration_s, active_days=d)


def test_tie_strength_is_zero_without_events():
    assert _one(0, 0, 0, 0, 0, 0) == 0.0


# --------------------------------------------------------------------------- service hubs


def _star(center: int, n_leaves: int, n_replies: int, first_leaf: int, rng):
    """Edges of a star: every leaf reaches the centre; the centre answers ``n_replies`` of them.

    Pairs are stored with random orientation, as a tie table stores them by number order.
    """
    src, dst, out_ab, out_ba = [], [], [], []
    for i in range(n_leaves):
        leaf = first_leaf + i
        reply = i < n_replies
        if rng.random() < 0.5:
            src.append(leaf); dst.append(center)
            out_ab.append(rng.integers(1, 5)); out_ba.append(1 if reply else 0)
        else:
            src.append(center); dst.append(leaf)
            out_ab.append(1 if reply else 0); out_ba.append(rng.integers(1, 5))
    return src, dst, out_ab, out_ba


def test_service_hub_mask_on_crafted_stars():
    rng = np.random.default_rng(0)
    # default config: >= 200 distinct callers, answering <= 2 % of them
    specs = {0: (250, 5), 1: (250, 6), 2: (199, 0), 3: (200, 0), 4: (200, 4), 5: (200, 5)}
    want_hub = {0: True, 1: False, 2: False, 3: True, 4: True, 5: False}
    src, dst, ab, ba = [], [], [], []
    leaf = 10
    for center, (n, replies) in specs.items():
        s, d, x, y = _star(center, n, replies, leaf, rng)
        src += s; dst += d; ab += x; ba += y
        leaf += n
    n_nodes = leaf
    hub = service_hub_mask(np.array(src), np.array(dst), np.array(ab), np.array(ba), n_nodes)
    assert hub.shape == (n_nodes,)
    for center, expected in want_hub.items():
        assert bool(hub[center]) == expected, center
    assert int(hub.sum()) == sum(want_hub.values())  # leaves are never hubs
    ref = reference_service_hubs(list(zip(src, dst)), ab, ba)
    assert set(np.flatnonzero(hub).tolist()) == ref


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_service_hub_mask_matches_reference_on_random_graphs(data):
    n = data.draw(st.integers(2, 25))
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
                               .filter(lambda p: p[0] != p[1]), max_size=80,
                               unique_by=lambda p: (min(p), max(p))))
    ab = [data.draw(st.integers(0, 3)) for _ in pairs]
    ba = [data.draw(st.integers(0, 3)) for _ in pairs]
    ab = [max(x, 1) if x + y == 0 else x for x, y in zip(ab, ba)]  # a tie has at least one event
    ties = TieConfig(hub_min_contacts=data.draw(st.integers(1, 5)),
                     hub_max_reply_share=data.draw(st.sampled_from([0.0, 0.2, 0.34, 0.5, 1.0])))
    src = np.array([p[0] for p in pairs], np.int64)
    dst = np.array([p[1] for p in pairs], np.int64)
    hub = service_hub_mask(src, dst, np.array(ab, np.int64), np.array(ba, np.int64), n, ties)
    assert set(np.flatnonzero(hub).tolist()) == reference_service_hubs(pairs, ab, ba, ties)


def test_ties_to_service_hubs_weigh_zero(write_partitions, run_graph_stage, tmp_path):
    hub = "4008000000"
    rows = []
    callers = [f"139{i:08d}" for i in range(230)]
    t0 = dt.datetime.combine(AS_OF - dt.timedelta(days=3), dt.time(10))
    for i, c in enumerate(callers):
        rows.append({"caller": c, "callee": hub, "start_time": t0 + dt.timedelta(minutes=i),
                     "duration_s": 120, "event_type": "voice", "cdr_id": f"h{i}", "caller_imei": None})
    for i, c in enumerate(callers[:3]):  # the hub answers 3 of 230 (<= 2 %)
        rows.append({"caller": hub, "callee": c, "start_time": t0 + dt.timedelta(hours=5, minutes=i),
                     "duration_s": 30, "event_type": "voice", "cdr_id": f"r{i}", "caller_imei": None})
    for i in range(4):  # a real friendship between two of the callers
        a, b = (callers[0], callers[1]) if i % 2 else (callers[1], callers[0])
        rows.append({"caller": a, "callee": b, "start_time": t0 - dt.timedelta(days=i),
                     "duration_s": 300, "event_type": "voice", "cdr_id": f"f{i}", "caller_imei": None})
    table = pa.Table.from_pylist(rows, schema=CDR_SCHEMA)
    write_partitions(table, tmp_path, 2)
    edges, _, hub_keys = run_graph_stage(tmp_path)
    df = edges.to_pandas()
    touches = (df["a"] == hub) | (df["b"] == hub)
    assert touches.sum() == 230
    assert (df.loc[touches, "weight"] == 0).all()
    assert df.loc[touches, "service_hub"].all()
    assert (df.loc[~touches, "weight"] > 0).all() and not df.loc[~touches, "service_hub"].any()
    # counts are kept for hub ties
    assert int(df.loc[touches, "calls"].sum()) == 233
    assert hub_keys.tolist() == number_keys([hub]).tolist()
    assert_edges_equal_reference(edges, _reference(table))


def test_weigh_edges_keeps_counts_and_flags_hub_pairs_only():
    keys = number_keys([f"1{i:04d}" for i in range(8)])
    # node 0 reached by 4 numbers, answers none: a hub with hub_min_contacts=4
    e = pa.table({
        "a": keys[[0, 0, 0, 0, 5, 6]], "b": keys[[1, 2, 3, 4, 6, 7]],
        "calls_ab": [0, 0, 0, 0, 3, 1], "calls_ba": [2, 1, 1, 1, 3, 0],
        "sms_ab": [0, 0, 0, 0, 0, 0], "sms_ba": [0, 0, 0, 0, 1, 0],
        "duration_s": [60, 60, 60, 60, 600, 30], "active_days": [1, 1, 1, 1, 3, 1],
    })
    ties = TieConfig(hub_min_contacts=4, hub_max_reply_share=0.0)
    out, hubs = weigh_edges(e, ties)
    out = out.to_pandas()
    assert hubs.tolist() == [int(keys[0])]
    assert out["service_hub"].tolist() == [True] * 4 + [False, False]
    assert (out["weight"].iloc[:4] == 0).all() and (out["weight"].iloc[4:] > 0).all()
    assert out["calls_ba"].tolist() == e.column("calls_ba").to_pylist()
    want = [reference_weight(3, 3, 0, 1, 600, 3, ties), reference_weight(1, 0, 0, 0, 30, 1, ties)]
    np.testing.assert_allclose(out["weight"].iloc[4:].to_numpy(), want, rtol=1e-12)


def test_edges_parquet_roundtrip(random_cdr, write_partitions, run_graph_stage, tmp_path):
    """The edge table survives Parquet with the contract's schema."""
    table = random_cdr(seed=2, n_rows=200, n_numbers=20)
    write_partitions(table, tmp_path / "in", 1)
    edges, _, _ = run_graph_stage(tmp_path / "in")
    pq.write_table(edges, tmp_path / "edges.parquet")
    back = pq.read_table(tmp_path / "edges.parquet")
    assert back.select(["a", "b", "calls", "sms", "duration_s", "active_days", "reciprocal", "weight"]).equals(
        edges.select(["a", "b", "calls", "sms", "duration_s", "active_days", "reciprocal", "weight"]))

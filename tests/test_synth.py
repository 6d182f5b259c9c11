"""Tests of the synthetic operator (small world: 2,000 subscribers, 6 weeks)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from socialgraph.config import NumberConfig
from socialgraph.numbers import normalize_numbers, number_keys
from socialgraph.synth import CDR_SCHEMA, SUBSCRIBER_SCHEMA, SynthConfig, make_operator

CFG = SynthConfig(n_subscribers=2_000, weeks=6, future_weeks=8, seed=11)
NUMCFG = NumberConfig(country_code="86", national_length=11)


@pytest.fixture(scope="module")
def op():
    return make_operator(CFG)


@pytest.fixture(scope="module")
def chunks(op):
    return list(op.cdr_chunks())


@pytest.fixture(scope="module")
def cdr(chunks):
    return pa.concat_tables([t for _, t in chunks])


@pytest.fixture(scope="module")
def frame(op, cdr):
    return _frame(op, cdr)


@pytest.fixture(scope="module")
def big():
    """A larger world (20,000 subscribers) for statistics over number changes."""
    world = make_operator(SynthConfig(n_subscribers=20_000, weeks=6, future_weeks=4, seed=3))
    cdr = pa.concat_tables([t for _, t in world.cdr_chunks()])
    return world, _frame(world, cdr)


def _frame(op, cdr) -> pd.DataFrame:
    """All CDR rows with normalised keys ``a``/``b`` (-1 if bad) and a ``clean`` flag."""
    cfg = op.config
    df = pd.DataFrame(
        {
            "start_time": cdr["start_time"].to_numpy(),
            "duration_s": cdr["duration_s"].to_numpy(),
            "event_type": cdr["event_type"].to_numpy(zero_copy_only=False),
            "cdr_id": cdr["cdr_id"].to_numpy(),
        }
    )
    df["a"], sa = normalize_numbers(cdr["caller"], NUMCFG)
    df["b"], sb = normalize_numbers(cdr["callee"], NUMCFG)
    lo = pd.Timestamp(cfg.start_date)
    hi = pd.Timestamp(op.as_of)
    df["clean"] = (
        (sa == 0)
        & (sb == 0)
        & (df.a != df.b)
        & (df.duration_s >= 0)
        & df.event_type.isin(["voice", "sms", "mms", "data"])
        & (df.start_time >= lo)
        & (df.start_time < hi)
        & ~df.cdr_id.duplicated()
    )
    return df


def _keys(table, column):
    return number_keys(table[column], NUMCFG)


def _contacts(clean: pd.DataFrame) -> pd.DataFrame:
    """Undirected (number, contact) pairs of the clean rows."""
    forward = clean[["a", "b"]].rename(columns={"a": "x", "b": "y"})
    backward = clean[["b", "a"]].rename(columns={"b": "x", "a": "y"})
    both = pd.concat([forward, backward])
    return both.drop_duplicates()


# ---------------------------------------------------------------------------------------------


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="weeks"):
        SynthConfig(weeks=0)
    with pytest.raises(ValueError, match="dirty_rate"):
        SynthConfig(dirty_rate=2.0)
    with pytest.raises(ValueError, match="Monday"):
        SynthConfig(start_date=dt.date(2026, 1, 6))
    with pytest.raises(ValueError, match="n_subscribers"):
        SynthConfig(n_subscribers=True)
    with pytest.raises(ValueError, match="reentry_share"):
        SynthConfig(reentry_share=0.8, gone_share=0.5)


def test_same_seed_gives_identical_tables(op, chunks):
    again = make_operator(CFG)
    assert again.subscribers.equals(op.subscribers)
    assert again.as_of == op.as_of == dt.date(2026, 2, 16)
    for name in op.truth:
        assert again.truth[name].equals(op.truth[name]), name
    # weeks are independent of each other: generate them backwards
    for w in reversed(range(CFG.weeks)):
        assert again.cdr_chunk(w).equals(chunks[w][1])
    mondays = [CFG.start_date + dt.timedelta(days=7 * w) for w in range(CFG.weeks)]
    assert [n for n, _ in chunks] == [f"week={d.isoformat()}" for d in mondays]


def test_different_seed_differs(op, chunks):
    other = make_operator(SynthConfig(n_subscribers=2_000, weeks=6, future_weeks=8, seed=12))
    assert not other.subscribers["msisdn"].equals(op.subscribers["msisdn"])
    assert not other.cdr_chunk(0).equals(chunks[0][1])
    assert not other.truth["churn"].equals(op.truth["churn"])


def test_subscriber_columns_and_types(op):
    subs = op.subscribers
    assert subs.schema.equals(SUBSCRIBER_SCHEMA)
    msisdn = subs["msisdn"].to_pylist()
    assert len(set(msisdn)) == len(msisdn)
    assert all(len(m) == 11 and m.startswith("138") and m.isdigit() for m in msisdn)
    # the starting base plus new joiners and re-entries
    assert CFG.n_subscribers <= subs.num_rows < CFG.n_subscribers * 1.1
    df = subs.to_pandas()
    assert (df.activation_date < op.as_of).all()
    churned = df.churn_date.notna()
    assert 0 < churned.sum() < 0.2 * len(df)
    assert (df.churn_date[churned] < op.as_of).all()
    assert (df.churn_date[churned] >= df.activation_date[churned]).all()
    assert df.vas_count.between(0, 10).all()
    assert df.arpu.gt(0).all()
    assert df.plan.nunique() >= 4
    assert df.imei.str.fullmatch(r"\d{15}").all()
    assert 0.05 < df.vnet_id.notna().mean() < 0.6
    assert 0.1 < df.family_id.notna().mean() < 0.7
    # some subscribers joined within the last 3-9 months, some during the data weeks
    tenure = (pd.Timestamp(op.as_of) - pd.to_datetime(df.activation_date)).dt.days
    assert 0.05 < tenure.between(90, 270).mean() < 0.4
    assert (df.activation_date >= CFG.start_date).sum() > 10


def test_dnd_share_as_configured(op):
    share = pc.mean(op.subscribers["dnd"].cast(pa.float64())).as_py()
    assert abs(share - CFG.dnd_rate) < 0.02


def test_cdr_schema_ids_and_formats(cdr, chunks):
    for _, t in chunks:
        assert t.schema.equals(CDR_SCHEMA)
        ts = t["start_time"].to_numpy()
        assert (np.diff(ts.astype(np.int64)) >= 0).all()  # time order
    caller = pd.Series(cdr["caller"].to_pylist())
    assert 0.01 < caller.str.startswith("+86", na=False).mean() < 0.06
    assert 0.002 < caller.str.startswith("0086", na=False).mean() < 0.03
    ids = cdr["cdr_id"].to_numpy()
    assert len(np.unique(ids)) > 0.99 * len(ids)


def test_every_clean_row_touches_an_on_net_number(op, frame):
    clean = frame[frame.clean]
    on_net = _keys(op.subscribers, "msisdn")
    touches = np.isin(clean.a, on_net) | np.isin(clean.b, on_net)
    assert len(clean) > 10_000
    assert touches.all()
    # and every number is a known person-number or a service number
    mem = _keys(op.truth["membership"], "msisdn")
    svc = np.array([k for k in np.unique(clean.b) if not np.isin(k, mem)])
    assert 0 < svc.size <= 40
    assert np.isin(clean.a, mem).all()  # service numbers never call anyone


def test_churned_numbers_are_silent_after_churn(op, frame):
    clean = frame[frame.clean]
    churn = op.truth["churn"].to_pandas()
    before = churn[~churn.after_as_of]
    assert len(before) > 20
    keys = number_keys(pa.array(before.msisdn.tolist()), NUMCFG)
    last = pd.concat(
        [
            clean[["a", "start_time"]].rename(columns={"a": "k"}),
            clean[["b", "start_time"]].rename(columns={"b": "k"}),
        ]
    )
    last = last.groupby("k").start_time.max()
    cutoff = pd.Series(pd.to_datetime(before.churn_date).to_numpy(), index=keys)
    seen = last.reindex(keys)
    ok = seen.isna() | (seen.to_numpy() < cutoff.to_numpy())
    assert ok.all()
    # and they were active before: most churners have events before their churn date
    assert seen.notna().mean() > 0.7


def test_number_changes_keep_calling_old_contacts(op, frame, big):
    changes = op.truth["number_changes"].to_pandas()
    assert set(changes.kind) == {"port", "reentry"}
    # statistics on the larger world: a changed number that had contacts and has had two weeks
    # since the change talks to at least one of its old contacts
    world, wframe = big
    pairs = _contacts(wframe[wframe.clean])
    ch = world.truth["number_changes"].to_pandas()
    ch = ch[ch.change_date <= world.as_of - dt.timedelta(days=14)].reset_index(drop=True)
    ch["old"] = number_keys(pa.array(ch.old_msisdn.tolist()), NUMCFG)
    ch["new"] = number_keys(pa.array(ch.new_msisdn.tolist()), NUMCFG)
    old_c = ch[["old"]].reset_index().merge(pairs, left_on="old", right_on="x")[["index", "y"]]
    new_c = ch[["new"]].reset_index().merge(pairs, left_on="new", right_on="x")[["index", "y"]]
    n_old = old_c.groupby("index").size().reindex(ch.index, fill_value=0)
    shared = old_c.merge(new_c, on=["index", "y"]).groupby("index").size().reindex(ch.index, fill_value=0)
    eligible = n_old >= 3
    for kind in ("port", "reentry"):
        m = eligible & (ch.kind == kind)
        assert m.sum() >= 15, kind
        assert (shared[m] > 0).mean() > 0.75, (kind, (shared[m] > 0).mean())
    # and a new number is silent before its change date
    wclean = wframe[wframe.clean]
    seen = pd.concat(
        [
            wclean[["a", "start_time"]].rename(columns={"a": "k"}),
            wclean[["b", "start_time"]].rename(columns={"b": "k"}),
        ]
    ).groupby("k").start_time.min()
    first = seen.reindex(ch.new.to_numpy()).to_numpy()
    assert (pd.isna(first) | (first >= pd.to_datetime(ch.change_date).to_numpy())).all()
    # the new number of a re-entry is a subscriber activated right after the old one left
    subs = op.subscribers.to_pandas().set_index("msisdn")
    re = changes[(changes.kind == "reentry") & (changes.change_date < op.as_of)]
    assert len(re) >= 3
    act = subs.activation_date.reindex(re.new_msisdn).to_numpy()
    old_churn = subs.churn_date.reindex(re.old_msisdn).to_numpy()
    assert all(a == c + dt.timedelta(days=1) for a, c in zip(act, old_churn))
    same = subs.imei.reindex(re.new_msisdn).to_numpy() == subs.imei.reindex(re.old_msisdn).to_numpy()
    assert (same == re.same_imei.to_numpy()).all()
    # ports go to an off-net number of their competitor
    ports = changes[changes.kind == "port"]
    prefix = ports.new_msisdn.str[:3].map({"130": "CompA", "189": "CompB"})
    assert (prefix == ports.competitor).all()
    assert not ports.new_msisdn.isin(subs.index).any()


def test_reentries_mostly_keep_their_handset(big):
    world, _ = big
    ch = world.truth["number_changes"].to_pandas()
    share = ch[ch.kind == "reentry"].same_imei.mean()
    assert 0.65 < share < 0.95


def test_campaign_circles_churn_well_above_base(op):
    camps = op.truth["campaigns"].to_pandas()
    assert len(camps) >= 5
    assert set(camps.circle_kind) <= {"family", "household", "vnet", "workplace"}
    mem = op.truth["membership"].to_pandas()
    mem = mem[mem.on_net & mem.active_from.isna()]  # starting subscribers, by their first number
    key = {"family": "family_id", "household": "household_id", "vnet": "vnet_id", "workplace": "workplace_id"}
    in_campaign = np.zeros(len(mem), bool)
    for kind, col in key.items():
        in_campaign |= mem[col].isin(camps.circle_key[camps.circle_kind == kind]).to_numpy()
    churned = mem.msisdn.isin(op.truth["churn"]["msisdn"].to_pylist()).to_numpy()
    rate_in = churned[in_campaign].mean()
    rate_out = churned[~in_campaign].mean()
    assert in_campaign.sum() >= 20
    assert rate_in > 4 * rate_out
    # campaigns start in the last weeks of data; several circles churn mostly after as_of
    first_start = CFG.start_date + dt.timedelta(days=7 * (CFG.weeks - CFG.campaign_lead_weeks))
    assert (camps.start_date >= first_start).all()
    assert (camps.start_date < op.as_of).all()
    churn = op.truth["churn"].to_pandas()
    by_cause = churn[churn.cause == "campaign"]
    assert by_cause.after_as_of.mean() > 0.5
    # mostly to the campaign's competitor
    assert by_cause.destination.isin(["CompA", "CompB"]).mean() > 0.8
    assert camps.active_before_as_of.any() and not camps.active_before_as_of.all()


def test_overall_churn_rate_is_plausible(op):
    churn = op.truth["churn"].to_pandas()
    months = (CFG.weeks + CFG.future_weeks) * 7 / 30.4
    monthly = len(churn) / CFG.n_subscribers / months
    assert 0.008 < monthly < 0.03
    assert set(churn.destination) == {"CompA", "CompB", "reentry", "gone"}
    assert (churn.after_as_of == (churn.churn_date >= op.as_of)).all()
    assert churn.msisdn.is_unique
    assert churn.destination.isin(["CompA", "CompB"]).mean() > 0.5


def test_dirty_rows_at_about_dirty_rate(cdr, frame):
    n_clean = int(frame.clean.sum())
    n_dirty = len(frame) - n_clean
    assert abs(n_dirty / n_clean - CFG.dirty_rate) < 0.4 * CFG.dirty_rate
    caller = pd.Series(cdr["caller"].to_pylist())
    callee = pd.Series(cdr["callee"].to_pylist())
    assert caller.isna().any() and callee.isna().any()
    garbage = ["abc", "12-34", "\U0001f4de123", ""]
    assert caller.isin(garbage).any() and callee.isin(garbage).any()
    assert (frame.duration_s < 0).any()
    assert (caller == callee).any()
    assert frame.cdr_id.duplicated().any()
    years = frame.start_time.dt.year
    assert (years == 1970).any() and (years == 2099).any()
    assert (~frame.event_type.isin(["voice", "sms", "mms", "data"])).any()


def test_event_mix(frame):
    clean = frame[frame.clean]
    share = clean.event_type.value_counts(normalize=True)
    assert share["voice"] > 0.5 and share["sms"] > 0.15
    assert 0.003 < share.get("data", 0) + share.get("mms", 0) < 0.03
    assert (clean.duration_s[clean.event_type == "sms"] == 0).all()
    voice = clean.duration_s[clean.event_type == "voice"]
    assert 60 <= voice.median() <= 300


def test_service_numbers_are_one_way_hubs(op, frame):
    clean = frame[frame.clean]
    mem = _keys(op.truth["membership"], "msisdn")
    svc = clean[~np.isin(clean.b, mem)]
    callers = svc.groupby("b").a.nunique()
    assert callers.max() > 100
    assert not np.isin(clean.a, svc.b.unique()).any()


def test_family_calls_in_evenings_work_calls_in_office_hours(op, frame):
    clean = frame[frame.clean & (frame.event_type == "voice")]
    mem = op.truth["membership"].to_pandas()
    k = number_keys(pa.array(mem.msisdn.tolist()), NUMCFG)
    hh = pd.Series(mem.household_id.to_numpy(), index=k)
    wp = pd.Series(mem.workplace_id.to_numpy(), index=k)
    ha, hb = hh.reindex(clean.a).to_numpy(), hh.reindex(clean.b).to_numpy()
    wa, wb = wp.reindex(clean.a).to_numpy(), wp.reindex(clean.b).to_numpy()
    family = pd.notna(ha) & (ha == hb)
    work = pd.notna(wa) & (wa == wb) & ~family
    hour = clean.start_time.dt.hour.to_numpy()
    weekend = clean.start_time.dt.day_of_week.to_numpy() >= 5
    evening_or_weekend = (hour >= 18) | weekend
    office = (hour >= 9) & (hour < 17) & ~weekend
    assert evening_or_weekend[family].mean() > 0.6
    assert office[work].mean() > 0.7
    assert office[family].mean() < 0.3


def test_truth_tables(op):
    t = op.truth
    assert {"msisdn", "churn_date", "after_as_of", "cause", "destination"} <= set(t["churn"].column_names)
    campaign_cols = {"circle_kind", "circle_key", "competitor", "start_date", "n_members", "active_before_as_of"}
    assert campaign_cols <= set(t["campaigns"].column_names)
    change_cols = {"old_msisdn", "new_msisdn", "kind", "same_imei", "change_date"}
    assert change_cols <= set(t["number_changes"].column_names)
    member_cols = {"msisdn", "on_net", "household_id", "workplace_id", "locality_id"}
    assert member_cols <= set(t["membership"].column_names)
    mem = t["membership"].to_pandas()
    assert mem.msisdn.is_unique
    assert set(op.subscribers["msisdn"].to_pylist()) <= set(mem.msisdn[mem.on_net])
    persons = mem.drop_duplicates("person_id")
    off_share = 1 - persons.on_net.mean()
    assert 0.15 < off_share < 0.25, off_share
    assert mem.workplace_id.isna().any() and mem.workplace_id.notna().mean() > 0.5
    sizes = persons.groupby("household_id").size()
    assert sizes.max() <= 5 and sizes.median() >= 2
    assert op.operators["operators"]["189"] == "CompB"
    assert op.country_code == "86" and op.national_length == 11


def test_campaign_leavers_are_members_lost_to_the_operator():
    """``churned_before_as_of`` / ``churned_total`` count the unit's members, active when the
    campaign started, who left from then on (before as-of / in the whole horizon); a member who
    re-entered on a new on-net number is still a customer and is not counted (DOMAIN.md)."""
    # many campaigns and re-entries, so that campaigned units hold re-entered members
    world = make_operator(SynthConfig(n_subscribers=6_000, weeks=6, future_weeks=3, seed=11,
                                      campaign_share=0.3, reentry_share=0.6))
    camps = world.truth["campaigns"].to_pandas()
    mem = world.truth["membership"].to_pandas()
    churn = world.truth["churn"].to_pandas()
    new_numbers = set(world.truth["number_changes"]["new_msisdn"].to_pylist())
    first = mem[mem.on_net & ~mem.msisdn.isin(new_numbers)]  # each on-net person's first number
    first = first.merge(churn[["msisdn", "churn_date", "destination"]], on="msisdn", how="left")
    as_of = pd.Timestamp(world.as_of)
    reentered = left_before = 0
    for _, c in camps.iterrows():
        col = "household_id" if c.circle_kind in ("family", "household") else "workplace_id"
        unit = ("H" if col == "household_id" else "W") + c.circle_key[1:]
        start = pd.Timestamp(c.start_date)
        m = first[first[col] == unit]
        day = pd.to_datetime(m.churn_date)
        joined = pd.to_datetime(m.active_from)
        active = (joined.isna() | (joined < start)) & (day.isna() | (day >= start))
        gone = active & day.notna() & (m.destination != "reentry")
        assert c.churned_total == int(gone.sum())
        assert c.churned_before_as_of == int((gone & (day < as_of)).sum())
        assert c.cluster_before_as_of == (c.churned_before_as_of >= 2)
        reentered += int((active & (m.destination == "reentry")).sum())
        left_before += int((gone & (day < as_of)).sum())
    assert reentered > 0 and left_before > 0  # the world has both, so the rule was exercised


def test_world_without_workers_has_no_workplaces():
    """``worker_share`` 0 is a valid setting (it used to fail looking up a V-net of no
    workplace): nobody is in a workplace or a V-net, no workplace is campaigned, and the
    households still call (CDRs are produced)."""
    world = make_operator(SynthConfig(n_subscribers=1_500, weeks=2, future_weeks=2, seed=3,
                                      worker_share=0.0, campaign_share=0.5))
    assert world.subscribers["vnet_id"].null_count == world.subscribers.num_rows
    assert world.truth["membership"]["workplace_id"].null_count == world.truth["membership"].num_rows
    kinds = set(world.truth["campaigns"]["circle_kind"].to_pylist())
    assert kinds and kinds <= {"family", "household"}
    assert sum(t.num_rows for _, t in world.cdr_chunks()) > 0


def test_a_world_written_over_another_keeps_none_of_its_weeks(tmp_path):
    """``socialgraph synth --out W`` over an earlier world: the CDR and truth datasets are the
    new world's alone (the older, longer world's last weeks used to stay in ``cdr/``)."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from pipelines.synth_io import write_synthetic

    write_synthetic(tmp_path, SynthConfig(n_subscribers=300, weeks=6, seed=1))
    info = write_synthetic(tmp_path, SynthConfig(n_subscribers=200, weeks=2, seed=2))
    weeks = sorted(p.name for p in (tmp_path / "cdr").iterdir())
    assert len(weeks) == 2 and all(w.startswith("week=") for w in weeks)
    assert ds.dataset(tmp_path / "cdr").count_rows() == info["cdr_rows"]
    assert pq.read_table(tmp_path / "subscribers.parquet").num_rows == info["subscriber_rows"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]

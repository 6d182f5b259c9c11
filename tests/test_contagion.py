"""The contagion test of circles: baselines, planted cliques, re-entries, q-values over circles."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from socialgraph.circles import circle_members
from socialgraph.config import ContagionConfig
from socialgraph.contagion import (
    _PRIOR_WEIGHT,
    baseline_churn_probability,
    baseline_strata,
    churn_half_shares,
    circle_contagion,
    independent_churn_probability,
    layer_test_weights,
)
from socialgraph.graph import build_call_graph
from socialgraph.significance import poisson_binomial_sf
from socialgraph.subscribers import day_number, subscribers_from_arrow



# -- baseline churn probability -----------------------------------------------------------------

AS_OF = dt.date(2026, 5, 1)


def _subscriber_table(rows):
    """rows: dicts with activation, churn (date or None), and optional plan/family/vnet/dnd."""
    return subscribers_from_arrow(pa.table({
        "msisdn": [f"138{i:08d}" for i in range(1, len(rows) + 1)],
        "activation_date": pa.array([r["activation"] for r in rows], pa.date32()),
        "churn_date": pa.array([r.get("churn") for r in rows], pa.date32()),
        "plan": pa.array([r.get("plan") for r in rows], pa.string()),
        "family_id": pa.array([r.get("family") for r in rows], pa.string()),
        "vnet_id": pa.array([r.get("vnet") for r in rows], pa.string()),
        "dnd": pa.array([r.get("dnd", False) for r in rows]),
    }))


def test_baseline_is_the_shrunk_rate_of_each_tenure_band_and_plan():
    start, end = dt.date(2026, 4, 1), dt.date(2026, 5, 1)
    new, old = dt.date(2026, 2, 1), dt.date(2025, 1, 1)  # tenure 59 days (< 90) and 455 days (270-730)
    inside = dt.date(2026, 4, 20)
    rows = []
    # (tenure, plan): members, churned in the window
    strata = {(new, "A"): (10, 4), (new, "B"): (6, 0), (old, "A"): (8, 1), (old, "B"): (16, 2)}
    for (act, plan), (n, c) in strata.items():
        rows += [{"activation": act, "plan": plan, "churn": inside if i < c else None} for i in range(n)]
    # a churn on the window's first day counts; on its end day (the as-of date) it does not
    rows[5]["churn"] = start              # (new, A): 5th churner
    rows[10]["churn"] = end               # (new, B): stays, churns later
    reentry_row = len(rows)
    rows.append({"activation": old, "plan": "B", "churn": inside})  # a re-entry: stays
    not_active = len(rows)
    rows.append({"activation": dt.date(2026, 4, 10), "plan": "A"})   # joined inside the window
    rows.append({"activation": old, "plan": "A", "churn": dt.date(2026, 3, 31)})  # gone before it
    subs = _subscriber_table(rows)
    not_churn = np.zeros(len(rows), bool)
    not_churn[reentry_row] = True
    p = baseline_churn_probability(subs, day_number(start), day_number(end), not_churn=not_churn)

    assert np.isnan(p[not_active:]).all() and not np.isnan(p[:not_active]).any()
    active, churned = 10 + 6 + 8 + 17, 5 + 0 + 1 + 2
    overall = churned / active
    expect = {(new, "A"): (5 + 20 * overall) / (10 + 20), (new, "B"): (0 + 20 * overall) / (6 + 20),
              (old, "A"): (1 + 20 * overall) / (8 + 20), (old, "B"): (2 + 20 * overall) / (17 + 20)}
    assert _PRIOR_WEIGHT == 20
    got, start_row = {}, 0
    for key, (n, _) in strata.items():
        assert np.unique(p[start_row:start_row + n]).size == 1  # one rate per stratum
        got[key] = p[start_row]
        start_row += n
    assert p[reentry_row] == got[(old, "B")]  # the re-entry row belongs to that stratum
    for key, value in expect.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    # without the re-entry flag that number is one more loss
    p2 = baseline_churn_probability(subs, day_number(start), day_number(end))
    assert p2[reentry_row] == pytest.approx((3 + 20 * (churned + 1) / active) / (17 + 20), rel=1e-12)


def test_baseline_strata_split_by_spend_and_contacts_quartiles():
    """Low spenders and people with few contacts churn more: their baseline is their own
    stratum's rate, not the plan's. Four equal ARPU groups are the four ARPU quartiles; two
    contact counts split the quartiles of contacts in two bands."""
    start, end = dt.date(2026, 4, 1), dt.date(2026, 5, 1)
    inside, act = dt.date(2026, 4, 20), dt.date(2025, 1, 1)
    churners = {(10.0, 1): 9, (10.0, 9): 5, (20.0, 1): 4, (20.0, 9): 2,
                (30.0, 1): 2, (30.0, 9): 1, (40.0, 1): 1, (40.0, 9): 0}
    rows, arpu, contacts = [], [], []
    for (spend, n_contacts), c in churners.items():
        for i in range(20):
            rows.append({"activation": act, "plan": "P", "churn": inside if i < c else None})
            arpu.append(spend)
            contacts.append(n_contacts)
    subs = _subscriber_table(rows)
    subs = type(subs)(subs.frame.assign(arpu=np.array(arpu)))
    contacts = np.array(contacts)
    strata = baseline_strata(subs, day_number(start), contacts)
    assert np.unique(strata).size == 8
    p = baseline_churn_probability(subs, day_number(start), day_number(end), contacts=contacts)
    overall = sum(churners.values()) / len(rows)
    for j, c in enumerate(churners.values()):
        cell = slice(20 * j, 20 * (j + 1))
        assert np.unique(strata[cell]).size == 1
        assert_allclose(p[cell], (c + _PRIOR_WEIGHT * overall) / (20 + _PRIOR_WEIGHT), rtol=1e-12)
    # without contact counts the two contact bands of a spend quartile share one rate
    p_spend = baseline_churn_probability(subs, day_number(start), day_number(end))
    for j in range(0, 8, 2):
        c = list(churners.values())[j] + list(churners.values())[j + 1]
        assert_allclose(p_spend[20 * j:20 * (j + 2)], (c + _PRIOR_WEIGHT * overall) / (40 + _PRIOR_WEIGHT),
                        rtol=1e-12)
    with pytest.raises(ValueError, match="one contact count per subscriber"):
        baseline_strata(subs, day_number(start), contacts[:-1])


# -- the baseline from isolated churn ---------------------------------------------------------

def _random_circles(rng, n_subs, n_circles, max_size):
    """Random overlapping circles: (offsets, subscriber rows), each circle without repeats."""
    sizes = rng.integers(2, max_size + 1, n_circles)
    rows = np.concatenate([np.sort(rng.choice(n_subs, k, replace=False)) for k in sizes])
    ptr = np.zeros(n_circles + 1, np.int64)
    np.cumsum(sizes, out=ptr[1:])
    return ptr, rows.astype(np.int64)


def _co_members(ptr, rows):
    """Brute force: each subscriber row's set of co-members over all its circles."""
    co = {}
    for c in range(ptr.size - 1):
        group = set(rows[ptr[c]:ptr[c + 1]].tolist())
        for u in group:
            co.setdefault(u, set()).update(group - {u})
    return co


def _churn_world(rng, n, rates, planted=0, planted_size=5, planted_churn=3):
    """``n`` subscribers per plan of ``rates`` (one stratum each), churning independently at
    those rates inside the window; random overlapping circles among them; plus ``planted``
    circles of new plan-A subscribers of whom ``planted_churn`` leave together (dependent)."""
    act, inside = dt.date(2024, 1, 1), [START + dt.timedelta(days=int(d)) for d in range(28)]
    rows = []
    for plan, rate in rates.items():
        for _ in range(n):
            rows.append({"activation": act, "plan": plan,
                         "churn": inside[rng.integers(28)] if rng.random() < rate else None})
    ptr, crow = _random_circles(rng, len(rows), len(rows) // 3, 6)
    extra = []
    for _ in range(planted):
        first = len(rows)
        for i in range(planted_size):
            rows.append({"activation": act, "plan": "A",
                         "churn": inside[20 + i] if i < planted_churn else None})
        extra.append(np.arange(first, first + planted_size))
    if extra:
        crow = np.concatenate([crow, *extra])
        ptr = np.concatenate([ptr, ptr[-1] + planted_size * np.arange(1, planted + 1)])
    return _subscriber_table(rows), (ptr, crow)


@pytest.mark.parametrize("seed", range(3))
def test_independent_baseline_is_the_rate_where_no_co_member_churned(seed):
    """Brute force over random overlapping circles: a subscriber counts towards its stratum's
    rate when none of its co-members (any circle) churned; the rate is shrunk as usual."""
    rng = np.random.default_rng(seed)
    subs, (ptr, rows) = _churn_world(rng, 300, {"A": 0.1, "B": 0.25}, planted=8)
    start, end = day_number(START), day_number(AS_OF)
    reentry = rng.random(len(subs)) < 0.05  # re-entries are not churn, here either
    p, counted = independent_churn_probability(subs, start, end, (ptr, rows), not_churn=reentry)
    churned = subs.active_at(start) & (subs.churn_day < end) & ~reentry
    co = _co_members(ptr, rows)
    alone = np.array([not any(churned[j] for j in co.get(i, ())) for i in range(len(subs))])
    assert (counted == alone).all() and 0 < (~alone).sum() < len(subs)
    strata = baseline_strata(subs, start)
    overall = churned.sum() / subs.active_at(start).sum()  # shrunk towards the plain overall rate
    for s_ in np.unique(strata):
        sel = (strata == s_) & alone
        assert_allclose(p[strata == s_], (churned[sel].sum() + _PRIOR_WEIGHT * overall) / (sel.sum() + _PRIOR_WEIGHT),
                        rtol=1e-12)
    # the isolated churners' timing is what the score's null uses
    late = subs.churn_day[churned & alone] >= start + 14
    assert_allclose(churn_half_shares(subs, start, end, reentry, among=counted), [1 - late.mean(), late.mean()])
    with pytest.raises(ValueError, match="circle_rows"):
        independent_churn_probability(subs, start, end, (ptr[:-1], rows))


def test_independent_baseline_recovers_the_rates_that_clustered_churn_inflates():
    """Without contagion both baselines find the true rates (5 % and 12 %). With 300 circles
    where 3 of 5 leave together, the rate over every subscriber rises far above plan A's 5 %;
    the rate where no co-member churned stays at it (the planted circles drop out whole)."""
    rates = {"A": 0.05, "B": 0.12}
    start, end = day_number(START), day_number(AS_OF)
    for planted in (0, 300):
        subs, circles = _churn_world(np.random.default_rng(11), 12000, rates, planted=planted)
        p, _ = independent_churn_probability(subs, start, end, circles)
        naive = baseline_churn_probability(subs, start, end)
        plan = subs.frame["plan"].to_numpy()
        for name, rate in rates.items():
            se = math.sqrt(rate * (1 - rate) / 12000)
            assert abs(p[plan == name][0] - rate) < 4 * se, (planted, name)
            if planted == 0:
                assert abs(naive[plan == name][0] - rate) < 4 * se
        if planted:
            assert naive[plan == "A"][0] > 1.5 * rates["A"]


# -- the contagion test of circles --------------------------------------------------------------

START = AS_OF - dt.timedelta(days=28)  # the default window


def _day(offset):
    """A churn date ``offset`` days after the window start."""
    return START + dt.timedelta(days=offset)


def _declared_members(subs):
    """The circle members of a call graph without ties: only the declared circles."""
    empty = np.array([], np.int64)
    graph = build_call_graph(empty, empty, np.array([]), on_net_keys=subs.key, extra_keys=subs.key,
                             events_ab=empty, events_ba=empty,
                             tie_arrays={"active_days": empty, "evening_weekend_share": np.array([])})
    return circle_members(graph, subs, day_number(AS_OF))[0]


def _contagion_world():
    """Declared V-nets (one stratum, so every tested member's baseline is the overall rate).

    300 normal 6-member circles churn about as a 5 % rate predicts (220 with none, 70 with
    one, 10 with two, spread over the window); planted on top: ``clique`` (4 of 6 in the last
    two weeks), ``match`` (2 of 34), ``reentered`` (4 of 6 left, all re-entered), ``half``
    (4 of 6 left, 2 re-entered), ``old`` (4 of 6 in the first days, none since), ``rising``
    (4 of 6 in days 15-18), ``flat`` (2 + 2 of 6, none in the last week) and ``tiny``
    (two members, one joined inside the window, the other left).
    """
    act = dt.date(2024, 1, 1)
    rows, reentry = [], []

    def circle(name, n, churn_offsets=(), reentered=0):
        for i in range(n):
            r = {"activation": act, "vnet": name, "plan": "P"}
            if i < len(churn_offsets):
                r["churn"] = _day(churn_offsets[i])
                if i < reentered:
                    reentry.append(len(rows))
            rows.append(r)

    counts = [0] * 220 + [1] * 70 + [2] * 10
    for c, k in enumerate(counts):
        circle(f"n{c:03d}", 6, [(7 * c + 11 * j) % 28 for j in range(k)])
    circle("clique", 6, [18, 22, 25, 27])
    circle("match", 34, [5, 20])
    circle("reentered", 6, [20, 21, 22, 23], reentered=4)
    circle("half", 6, [20, 21, 22, 23], reentered=2)
    circle("old", 6, [1, 2, 3, 4])
    circle("rising", 6, [15, 16, 17, 18])
    circle("flat", 6, [2, 3, 15, 16])
    circle("tiny", 1, [24])
    rows.append({"activation": _day(3), "vnet": "tiny", "plan": "P"})  # not a member at the start
    subs = _subscriber_table(rows)
    members = _declared_members(subs)
    return subs, members, subs.key[reentry]


@pytest.fixture(scope="module")
def contagion_world():
    return _contagion_world()


def _by_id(circles):
    return circles.set_index("circle_id")


def test_planted_clique_is_flagged_and_normal_circles_are_not(contagion_world):
    subs, members, reentry = contagion_world
    cfg = ContagionConfig()
    circles, m = circle_contagion(members, subs, day_number(AS_OF), cfg, reentry_keys=reentry)
    c = _by_id(circles)
    assert c.loc["vnet:clique", "contagion"] and c.loc["vnet:clique", "q_value"] <= cfg.fdr
    assert c.loc["vnet:clique", "churned_recent"] == 4 and c.loc["vnet:clique", "churned_last_days"] == 4
    normal = c[c.index.str.startswith("vnet:n")]
    assert len(normal) == 300 and (normal["churned_recent"] >= 2).sum() == 10
    assert not normal["contagion"].any()
    assert normal["q_value"].min() > cfg.fdr
    # a circle whose churn is what its rate predicts (5 %: the planted circles do not raise it)
    assert c.loc["vnet:match", "expected_churn"] == pytest.approx(34 * 0.05, abs=0.1)
    assert c.loc["vnet:match", "p_value"] > 0.3 and not c.loc["vnet:match", "contagion"]
    flagged = set(c.index[c["contagion"]])
    assert flagged == {"vnet:clique", "vnet:rising", "vnet:flat"}
    assert circles["contagion"].dtype == bool


def test_diagnostics_count_circles_beyond_chance(contagion_world):
    """``diagnostics`` receives, per threshold, the tested circles at p <= t (from the circles
    table) and the null's expected count; the planted circles put the observed far above it."""
    subs, members, reentry = contagion_world
    diagnostics = {}
    circles, _ = circle_contagion(members, subs, day_number(AS_OF), ContagionConfig(), reentry_keys=reentry,
                                  diagnostics=diagnostics)
    bc = diagnostics["beyond_chance"]
    assert bc["p_at_most"] == [0.01, 0.001, 0.0001]
    assert bc["circles"] == [int((circles["p_value"] <= t).sum()) for t in bc["p_at_most"]]
    # 300 normal circles of 6 at 5 %: chance puts about (at most) 300 * 0.001 at p <= 0.001
    assert 0 < bc["by_chance"][1] <= 0.001 * circles["p_value"].notna().sum()
    assert bc["circles"][1] >= 3 > 3 * bc["by_chance"][1]
    # every circle here is a declared V-net: one layer, holding all of it
    assert list(bc["by_layer"]) == ["vnet"]
    assert bc["by_layer"]["vnet"] == {"circles": bc["circles"], "by_chance": bc["by_chance"]}
    asked = {"p_at_most": (0.05,)}
    circle_contagion(members, subs, day_number(AS_OF), ContagionConfig(), reentry_keys=reentry, diagnostics=asked)
    assert asked["beyond_chance"]["p_at_most"] == [0.05]
    assert asked["beyond_chance"]["circles"] == [int((circles["p_value"] <= 0.05).sum())]


def _score_sf(score, n, rate, late_share, weights=(2, 3)):
    """P(S >= score): n members churning at ``rate``, an early churn counting ``weights[0]``
    and a late one (``late_share`` of churns) ``weights[1]``; the multinomial sum over
    (early, late) churner counts."""
    total = 0.0
    for i in range(n + 1):
        for j in range(n + 1 - i):
            if weights[0] * i + weights[1] * j >= score:
                total += (math.factorial(n) / (math.factorial(i) * math.factorial(j) * math.factorial(n - i - j))
                          * (rate * (1 - late_share)) ** i * (rate * late_share) ** j * (1 - rate) ** (n - i - j))
    return total


def test_expected_churn_and_p_values_are_the_members_baselines(contagion_world):
    subs, members, reentry = contagion_world
    # the default baseline is the rate where no co-member churned
    _, m_default = circle_contagion(members, subs, day_number(AS_OF), reentry_keys=reentry)
    t_rows = m_default.sort_values("circle_id", kind="stable")
    t_rows = t_rows[t_rows["baseline"].notna()]
    codes = t_rows["circle_id"].factorize()[0]
    ptr = np.r_[0, np.cumsum(np.bincount(codes))]
    row = pd.Index(subs.key).get_indexer(t_rows["key"])
    expect, _ = independent_churn_probability(subs, day_number(START), day_number(AS_OF), (ptr, row),
                                              not_churn=np.isin(subs.key, reentry))
    assert_allclose(t_rows["baseline"], expect[row], rtol=1e-12)
    # the plain rate over every subscriber: one stratum, so the overall rate
    circles, m = circle_contagion(members, subs, day_number(AS_OF), ContagionConfig(baseline="all"),
                                  reentry_keys=reentry)
    c = _by_id(circles)
    # one stratum: everyone's baseline is the overall rate, re-entries staying
    tested = subs.active_at(day_number(START))
    left = tested & (subs.churn_day < day_number(AS_OF)) & ~np.isin(subs.key, reentry)
    rate = left.sum() / tested.sum()
    late_share = np.mean(subs.churn_day[left & (subs.churn_day >= day_number(START))] >= day_number(_day(14)))
    assert_allclose(churn_half_shares(subs, day_number(START), day_number(AS_OF), np.isin(subs.key, reentry)),
                    [1 - late_share, late_share], rtol=1e-12)
    assert_allclose(m.loc[m["baseline"].notna(), "baseline"], rate, rtol=1e-12)
    assert_allclose(c["expected_churn"], c["tested"] * rate, rtol=1e-12)
    plain = _by_id(circle_contagion(members, subs, day_number(AS_OF), ContagionConfig(recent_weight=1, baseline="all"),
                                    reentry_keys=reentry)[0])
    twice = _by_id(circle_contagion(members, subs, day_number(AS_OF), ContagionConfig(recent_weight=2, baseline="all"),
                                    reentry_keys=reentry)[0])
    for cid in ("vnet:clique", "vnet:match", "vnet:old", "vnet:flat", "vnet:n000", "vnet:n250", "vnet:n295"):
        n, k = c.loc[cid, "tested"], c.loc[cid, "churned_recent"]
        # a plain count: the binomial tail
        assert plain.loc[cid, "churn_score"] == k
        assert plain.loc[cid, "p_value"] == pytest.approx(stats.binom.sf(k - 1, n, rate), rel=1e-9)
        assert plain.loc[cid, "p_value"] == pytest.approx(poisson_binomial_sf(k, np.full(n, rate)), rel=1e-12)
        # the default score: an early churn counts 2, a late one 3 (recent_weight 1.5)
        score = 2 * c.loc[cid, "churned_first_half"] + 3 * c.loc[cid, "churned_second_half"]
        assert c.loc[cid, "churn_score"] == score
        assert c.loc[cid, "p_value"] == pytest.approx(_score_sf(score, n, rate, late_share), rel=1e-9)
        # recent_weight 2: 1 and 2
        score2 = c.loc[cid, "churned_first_half"] + 2 * c.loc[cid, "churned_second_half"]
        assert twice.loc[cid, "churn_score"] == score2
        assert twice.loc[cid, "p_value"] == pytest.approx(_score_sf(score2, n, rate, late_share, (1, 2)), rel=1e-9)
    # members: churned, the day, and a baseline for the tested only
    tiny = m[m["circle_id"] == "vnet:tiny"].sort_values("key")
    assert tiny["churned"].tolist() == [True, False]
    assert tiny["churn_day"].tolist() == [day_number(_day(24)), -1]
    assert np.isnan(tiny["baseline"].iloc[1]) and tiny["baseline"].iloc[0] == pytest.approx(rate)
    assert c.loc["vnet:tiny", "tested"] == 1 and c.loc["vnet:tiny", "size"] == 2
    assert c.loc["vnet:tiny", "active_members"] == 1  # the newcomer is active at as-of, untested


def test_reentries_are_not_churn(contagion_world):
    subs, members, reentry = contagion_world
    circles, m = circle_contagion(members, subs, day_number(AS_OF), reentry_keys=reentry)
    c = _by_id(circles)
    r = c.loc["vnet:reentered"]
    assert (r["churned_recent"], r["reentries"], r["p_value"], r["contagion"]) == (0, 4, 1.0, False)
    h = c.loc["vnet:half"]
    assert (h["churned_recent"], h["reentries"]) == (2, 2)
    assert not m.loc[np.isin(m["key"], reentry), "churned"].any()
    # the same data without the re-entries detected: the circle looks like a planted clique
    c2 = _by_id(circle_contagion(members, subs, day_number(AS_OF))[0])
    assert c2.loc["vnet:reentered", "churned_recent"] == 4 and c2.loc["vnet:reentered", "contagion"]


def test_old_churn_is_not_flagged_however_significant(contagion_world):
    subs, members, reentry = contagion_world
    cfg = ContagionConfig(recent_weight=1)  # a plain count: four churners are four churners
    c = _by_id(circle_contagion(members, subs, day_number(AS_OF), cfg, reentry_keys=reentry)[0])
    old = c.loc["vnet:old"]
    assert old["q_value"] <= cfg.fdr and old["churned_recent"] == 4
    assert (old["churned_first_half"], old["churned_second_half"], old["churned_last_days"]) == (4, 0, 0)
    assert not old["contagion"]
    # the default score weighs recent churn: the same four churners are weaker evidence a month
    # ago than in the last two weeks, and half-and-half lies between
    d = _by_id(circle_contagion(members, subs, day_number(AS_OF), reentry_keys=reentry)[0])
    assert d.loc["vnet:clique", "p_value"] == d.loc["vnet:rising", "p_value"]
    assert d.loc["vnet:rising", "p_value"] < d.loc["vnet:flat", "p_value"] < d.loc["vnet:old", "p_value"]
    assert d.loc["vnet:old", "q_value"] > d.loc["vnet:old", "p_value"] and not d.loc["vnet:old", "contagion"]
    # with a one-week "recent", rising churn still counts and flat churn does not
    week = ContagionConfig(recent_days=7, recent_weight=1)
    c = _by_id(circle_contagion(members, subs, day_number(AS_OF), week, reentry_keys=reentry)[0])
    assert c.loc["vnet:rising", "churned_last_days"] == 0 and c.loc["vnet:rising", "contagion"]
    assert c.loc["vnet:flat", "q_value"] <= week.fdr and not c.loc["vnet:flat", "contagion"]
    assert c.loc["vnet:clique", "contagion"]


def test_circles_too_small_to_test_get_no_p_value(contagion_world):
    subs, members, reentry = contagion_world
    c = _by_id(circle_contagion(members, subs, day_number(AS_OF), reentry_keys=reentry)[0])
    tiny = c.loc["vnet:tiny"]
    assert tiny["tested"] == 1 and tiny["churned_recent"] == 1
    assert np.isnan(tiny["p_value"]) and np.isnan(tiny["q_value"]) and not tiny["contagion"]
    # with min_churned 1 it is a test like the others
    one = ContagionConfig(min_churned=1)
    c1 = _by_id(circle_contagion(members, subs, day_number(AS_OF), one, reentry_keys=reentry)[0])
    assert not np.isnan(c1.loc["vnet:tiny", "p_value"])
    assert c.loc[c["tested"] < 2, "p_value"].isna().all()


def test_q_values_are_bh_over_the_tested_circles(contagion_world):
    subs, members, reentry = contagion_world
    circles = circle_contagion(members, subs, day_number(AS_OF), reentry_keys=reentry)[0]
    p = circles["p_value"].to_numpy()
    ok = ~np.isnan(p)
    assert ok.sum() == len(circles) - 1  # only the tiny circle is untested
    assert_allclose(circles["q_bh"].to_numpy()[ok], stats.false_discovery_control(p[ok], method="bh"),
                    rtol=1e-12)
    assert np.isnan(circles["q_bh"].to_numpy()[~ok]).all()
    assert_allclose(circles["q_value"], circles["q_discrete"], rtol=0)
    assert np.all(circles["q_discrete"].to_numpy()[ok] <= circles["q_bh"].to_numpy()[ok] * (1 + 1e-12))
    bh = circle_contagion(members, subs, day_number(AS_OF), ContagionConfig(method="bh"), reentry_keys=reentry)[0]
    assert_allclose(bh["q_value"], bh["q_bh"], rtol=0)
    assert_allclose(bh["q_bh"], circles["q_bh"], rtol=0)
    assert bh.set_index("circle_id").loc["vnet:clique", "contagion"]


def test_layer_weights_favour_family_and_work_circles_over_friends(contagion_world):
    """The same members and churn as the planted ``rising`` circle, once as a friends' circle
    (``soc-``), once as a work circle (``wrk-``): same p-value, the friends' circle needs more."""
    subs, members, reentry = contagion_world
    rising = members[members["circle_id"] == "vnet:rising"]
    copies = [rising.assign(circle_id=cid, kind="social", source="inferred") for cid in ("soc-r", "wrk-r")]
    both = pd.concat([members] + copies, ignore_index=True)
    cfg = ContagionConfig()
    c = _by_id(circle_contagion(both, subs, day_number(AS_OF), cfg, reentry_keys=reentry)[0])
    tested = c["p_value"].notna()
    assert c.loc[tested, "test_weight"].mean() == pytest.approx(1.0)
    assert c.loc["soc-r", "test_weight"] == pytest.approx(cfg.layer_weight_social * c.loc["wrk-r", "test_weight"])
    assert c.loc["wrk-r", "test_weight"] == c.loc["vnet:rising", "test_weight"] > 1
    assert c.loc["soc-r", "p_value"] == c.loc["wrk-r", "p_value"] == c.loc["vnet:rising", "p_value"]
    assert (c.loc["soc-r", "layer"], c.loc["wrk-r", "layer"], c.loc["vnet:rising", "layer"]) == ("social", "work", "vnet")
    assert c.loc["soc-r", "q_value"] >= c.loc["wrk-r", "q_value"]
    assert c.loc["soc-r", "q_bh"] > c.loc["wrk-r", "q_bh"]
    # the q-values are the weighted procedure's, by the literal formula (plain BH on p / w)
    ok = tested.to_numpy()
    assert_allclose(c["q_bh"].to_numpy()[ok],
                    stats.false_discovery_control(np.minimum(c["p_value"] / c["test_weight"], 1)[ok]), rtol=1e-12)
    # equal weights for every layer: the unweighted procedure
    flat = ContagionConfig(layer_weight_social=1.0)
    f = _by_id(circle_contagion(both, subs, day_number(AS_OF), flat, reentry_keys=reentry)[0])
    assert (f["test_weight"] == 1.0).all() and f.loc["soc-r", "q_value"] == f.loc["wrk-r", "q_value"]
    assert_allclose(layer_test_weights(np.array(["social", "vnet"]), np.array([True, True]), cfg), [0.4, 1.6])
    with pytest.raises(ValueError, match="layer_weight_social"):
        ContagionConfig(layer_weight_social=0)
    with pytest.raises(ValueError, match="recent_weight"):
        ContagionConfig(recent_weight=0)
    with pytest.raises(ValueError, match="ratio of small integers"):
        ContagionConfig(recent_weight=1.3)  # 13/10: no exact integer weights of denominator <= 4
    assert ContagionConfig(recent_weight=1.25).score_weights() == (4, 5)
    with pytest.raises(ValueError, match="contagion.method"):
        ContagionConfig(method="holm")


def test_a_seasonal_rise_in_churn_does_not_look_like_contagion():
    """No contagion, but 80 % of the window's churn falls in its second half (a season). The
    score's null takes the halves from the window's churners, so late churn is expected and
    p-values stay calibrated; a null that assumed churn even over the window would put 1.9 %
    of these circles at p <= 0.01 (measured when the test was written)."""
    rng = np.random.default_rng(7)
    rows = []
    for c in range(3000):
        for _ in range(5):
            r = {"activation": dt.date(2024, 1, 1), "vnet": f"c{c:04d}", "plan": "P"}
            if rng.random() < 0.06:
                late = rng.random() < 0.8
                r["churn"] = _day(int(rng.integers(14, 28)) if late else int(rng.integers(0, 14)))
            rows.append(r)
    subs = _subscriber_table(rows)
    members = _declared_members(subs)
    shares = churn_half_shares(subs, day_number(START), day_number(AS_OF))
    assert shares[1] == pytest.approx(0.8, abs=0.03)
    circles, _ = circle_contagion(members, subs, day_number(AS_OF))
    p = circles["p_value"].dropna()
    assert len(p) == 3000
    for alpha in (0.001, 0.01, 0.05):
        assert (p <= alpha).mean() <= alpha
    assert not circles["contagion"].any()


def test_hand_built_members_with_an_off_net_number_and_ports():
    rows = [{"activation": dt.date(2024, 1, 1), "churn": _day(d) if d is not None else None}
            for d in (20, 25, None, None)]
    rows += [{"activation": dt.date(2024, 1, 1)} for _ in range(40)]  # the rest of the base
    subs = _subscriber_table(rows)
    off_net = 8613000000001
    keys = np.concatenate([subs.key[:4], [off_net]])
    members = pd.DataFrame({"circle_id": "soc-0123456789", "kind": "social", "source": "inferred",
                            "key": keys, "on_net": [True] * 4 + [False],
                            "active": [False, False, True, True, False]})
    circles, m = circle_contagion(members, subs, day_number(AS_OF), port_keys=subs.key[[1, 2]])
    c = circles.iloc[0]
    assert (c["size"], c["on_net_members"], c["active_members"], c["tested"]) == (5, 4, 2, 4)
    assert (c["churned_recent"], c["ported"]) == (2, 1)  # a port key that did not churn is no port
    # the rate where no co-member churned: the 40 others, none churned, shrunk towards 2 / 44
    assert c["expected_churn"] == pytest.approx(4 * (0 + 20 * 2 / 44) / (40 + 20))
    off = m[m["key"] == off_net].iloc[0]
    assert not off["churned"] and off["churn_day"] == -1 and np.isnan(off["baseline"])
    assert m["churned"].tolist() == [True, True, False, False, False]

"""Re-entry and port detection: crafted call graphs, the numba path against the pure-Python
oracle (tests/reference_changes.py) on random graphs, determinism across thread counts, input
checks, and precision / recall against the synthetic operator's truth."""

from __future__ import annotations

import dataclasses
import re
import time

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from reference_changes import number_changes_reference
from socialgraph.config import NumberChangeConfig
from socialgraph.graph import build_call_graph
from socialgraph.numbers import number_keys
from socialgraph.reentry import NUMBER_CHANGE_COLUMNS, detect_number_changes
from socialgraph.subscribers import NEVER, Subscribers
from worlds import synthetic_world

OPERATORS = {"130": "CompA", "189": "CompB", "9558": "Service"}
AS_OF = 20_000  # a day number; crafted churn happens shortly before it


def key(label: str) -> int:
    """Number key of a crafted label: ``on:<n>`` (138..., home), ``a:<n>`` (CompA), ``b:<n>``
    (CompB), ``svc:<n>`` (service prefix)."""
    head, n = label.split(":")
    prefix = {"on": "138", "a": "130", "b": "189", "svc": "9558"}[head]
    return int(number_keys(pa.array([prefix + str(int(n)).zfill(11 - len(prefix))]))[0])


def subscriber_table(rows: list[dict]) -> Subscribers:
    """Subscribers from dicts ``label, activation, churn (None), imei (None)``."""
    return subscribers_frame(np.array([key(r["label"]) for r in rows], np.int64),
                             [r.get("activation", AS_OF - 2000) for r in rows],
                             [NEVER if r.get("churn") is None else r["churn"] for r in rows],
                             [r.get("imei") for r in rows])


def subscribers_frame(keys, activation, churn, imei) -> Subscribers:
    """The columns detect_number_changes reads, with ``imei`` an object column holding None
    where missing (as subscribers_from_arrow keeps it)."""
    frame = pd.DataFrame({"key": np.asarray(keys, np.int64), "activation_day": np.asarray(activation, np.int64),
                          "churn_day": np.asarray(churn, np.int64)})
    frame["imei"] = pd.Series(list(imei), dtype=object)
    return Subscribers(frame)


def crafted_graph(ties: list[tuple], subs: Subscribers, hubs=()):
    """CallGraph from ``(label_a, label_b, weight, first_day, last_day)``; every subscriber is a
    node (as in the job)."""
    a = np.array([key(t[0]) for t in ties], np.int64)
    b = np.array([key(t[1]) for t in ties], np.int64)
    return build_call_graph(
        a, b, np.array([t[2] for t in ties], float), on_net_keys=subs.key, home_prefixes=("138",),
        operators=OPERATORS, home_operator="HomeTel", extra_keys=subs.key,
        service_hub_keys=np.array([key(h) for h in hubs], np.int64),
        tie_arrays={"first_day": np.array([t[3] for t in ties], np.int32),
                    "last_day": np.array([t[4] for t in ties], np.int32)})


def old_life(old: str, contacts: list[str], churn: int, weight=2.0, since=AS_OF - 80):
    """Ties of a churned number to its contacts over the months before ``churn``."""
    return [(old, c, weight, since, churn - 1) for c in contacts]


def new_life(new: str, contacts: list[str], start: int, weight=1.5):
    return [(new, c, weight, start, AS_OF - 1) for c in contacts]


def pairs(found: pd.DataFrame) -> set:
    return set(zip(found["old_key"].tolist(), found["new_key"].tolist(), found["kind"].tolist()))


def check_frame(found: pd.DataFrame):
    assert list(found.columns) == list(NUMBER_CHANGE_COLUMNS)
    for c, t in NUMBER_CHANGE_COLUMNS.items():
        assert found[c].dtype == np.dtype(t), c
    assert found["old_key"].is_unique and found["new_key"].is_unique
    assert ((found["similarity"] >= 0) & (found["similarity"] <= 1)).all()
    order = found.sort_values(["churn_day", "old_key"], kind="stable").index
    assert_array_equal(found.index, order)
    for text in found["evidence"]:
        # counts and days only: never a run of digits as long as a phone number or an IMEI
        assert not re.search(r"\d{5,}", text), text


# ------------------------------------------------------------------------------ crafted graphs

CHURN = AS_OF - 30
FRIENDS = [f"on:{100 + i}" for i in range(8)]


def test_reentry_by_same_handset_with_almost_no_shared_contacts():
    rows = [{"label": "on:1", "churn": CHURN, "imei": "356938035643809"},
            {"label": "on:2", "activation": CHURN + 3, "imei": "356938035643809"},
            *[{"label": f} for f in FRIENDS]]
    subs = subscriber_table(rows)
    ties = old_life("on:1", FRIENDS, CHURN) + new_life("on:2", ["on:100", "on:200", "on:201", "on:202"], CHURN + 3)
    found = detect_number_changes(crafted_graph(ties, subs), subs, AS_OF)
    check_frame(found)
    assert pairs(found) == {(key("on:1"), key("on:2"), "reentry")}
    row = found.iloc[0]
    assert row["same_imei"] and row["shared_contacts"] == 1 and row["operator"] == "HomeTel"
    assert row["new_first_day"] == CHURN + 3 and row["churn_day"] == CHURN
    assert "handset" in row["evidence"] and "356938" not in row["evidence"]
    # without the handset, one shared contact of eight is no evidence at all
    rows[1] = rows[1] | {"imei": "490154203237518"}
    subs = subscriber_table(rows)
    assert detect_number_changes(crafted_graph(ties, subs), subs, AS_OF).empty


def test_reentry_by_a_handset_seen_in_the_cdrs_only():
    """A BSS extract without handsets: the CDRs' ``caller_imei`` saw both numbers on one
    handset, which makes the re-entry as certain; a handset the CDRs saw with nine numbers
    (a shop's test phone) is a placeholder; and the same handset as a token from the
    subscriber table and from the CDRs is one handset."""
    from socialgraph.reentry import handset_tokens

    rows = [{"label": "on:1", "churn": CHURN}, {"label": "on:2", "activation": CHURN + 3},
            {"label": "on:5", "churn": CHURN}, *[{"label": f"on:{10 + i}", "activation": CHURN + 1} for i in range(8)],
            *[{"label": f} for f in FRIENDS]]
    subs = subscriber_table(rows)
    ties = old_life("on:1", FRIENDS, CHURN) + new_life("on:2", ["on:100", "on:200", "on:201", "on:202"], CHURN + 3)
    ties += old_life("on:5", FRIENDS[:2], CHURN) + [(f"on:{10 + i}", "on:300", 1.0, CHURN + 1, CHURN + 9)
                                                  for i in range(8)]
    g = crafted_graph(ties, subs)
    assert detect_number_changes(g, subs, AS_OF).empty  # no handset known: one contact of eight is nothing
    phone, test_phone = handset_tokens(np.array(["356938035643809", "000000000000000"], dtype=object))
    seen = [("on:1", phone), ("on:2", phone), ("on:5", test_phone)] + [(f"on:{10 + i}", test_phone) for i in range(8)]
    handsets = (np.array([key(k) for k, _ in seen], np.int64), np.array([t for _, t in seen], np.uint64))
    found = detect_number_changes(g, subs, AS_OF, handsets=handsets)
    check_frame(found)
    assert pairs(found) == {(key("on:1"), key("on:2"), "reentry")}
    assert found["same_imei"].tolist() == [True] and "same handset" in found["evidence"].iloc[0]
    # the old number's handset in the subscriber table, the new one's in the CDRs: one handset
    rows[0] = rows[0] | {"imei": " 356938035643809"}
    subs = subscriber_table(rows)
    found = detect_number_changes(crafted_graph(ties, subs), subs, AS_OF, handsets=(handsets[0][1:2], handsets[1][1:2]))
    assert pairs(found) == {(key("on:1"), key("on:2"), "reentry")} and found["same_imei"].all()


def test_reentry_by_contact_overlap():
    """The new on-net number calls 6 of the old number's 8 contacts (and 2 new people)."""
    subs = subscriber_table([{"label": "on:1", "churn": CHURN}, {"label": "on:2", "activation": CHURN + 2},
                             *[{"label": f} for f in FRIENDS]])
    ties = old_life("on:1", FRIENDS, CHURN) + new_life("on:2", FRIENDS[:6] + ["a:300", "on:301"], CHURN + 2)
    found = detect_number_changes(crafted_graph(ties, subs), subs, AS_OF)
    check_frame(found)
    assert pairs(found) == {(key("on:1"), key("on:2"), "reentry")}
    row = found.iloc[0]
    assert not row["same_imei"] and row["shared_contacts"] == 6
    assert_allclose(row["similarity"], np.sqrt(6 / 8 * 6 / 8))
    assert row["evidence"].startswith("6 of 8 contacts shared, similarity 0.75")


def test_port_to_a_competitor_number():
    """A new CompA number (off-net: first day from its ties) takes over the contacts."""
    subs = subscriber_table([{"label": "on:1", "churn": CHURN}, *[{"label": f} for f in FRIENDS]])
    ties = old_life("on:1", FRIENDS, CHURN) + new_life("a:7", FRIENDS[1:7], CHURN + 1)
    found = detect_number_changes(crafted_graph(ties, subs), subs, AS_OF)
    check_frame(found)
    assert pairs(found) == {(key("on:1"), key("a:7"), "port")}
    row = found.iloc[0]
    assert row["operator"] == "CompA" and row["new_first_day"] == CHURN + 1
    assert "CompA" in row["evidence"]
    # the same takeover by a service number, a hub or a number of an unknown operator is no port
    for label, hubs in (("svc:7", ()), ("a:7", ("a:7",)), ("b:7", ())):
        g = crafted_graph(old_life("on:1", FRIENDS, CHURN) + new_life(label, FRIENDS[1:7], CHURN + 1), subs, hubs)
        if label == "b:7":
            g = dataclasses.replace(g, nodes=g.nodes.assign(operator=g.nodes["operator"].replace("CompB", "unknown")))
        assert detect_number_changes(g, subs, AS_OF).empty, label
    # an on-net number that is not a subscriber (home prefix) is a re-entry
    g = crafted_graph(old_life("on:1", FRIENDS, CHURN) + new_life("on:7", FRIENDS[1:7], CHURN + 1), subs)
    assert pairs(detect_number_changes(g, subs, AS_OF)) == {(key("on:1"), key("on:7"), "reentry")}


@pytest.mark.parametrize("new_number", [True, False])
def test_stranger_sharing_two_of_twenty_contacts_is_not_matched(new_number):
    """An old number with 20 contacts; a stranger (a brand-new subscriber, or an existing one
    whose first call in the data falls in the window) shares 2 of them and has 6 of their own.
    An existing subscriber is never new, however much it shares."""
    contacts = [f"on:{100 + i}" for i in range(20)]
    start = CHURN + 2
    own = [f"on:{400 + i}" for i in range(6)]
    subs = subscriber_table([{"label": "on:1", "churn": CHURN}, *[{"label": c} for c in contacts],
                             {"label": "on:2", "activation": start if new_number else AS_OF - 900}])
    ties = old_life("on:1", contacts, CHURN) + new_life("on:2", contacts[:2] + own, start)
    assert detect_number_changes(crafted_graph(ties, subs), subs, AS_OF).empty
    ties = old_life("on:1", contacts, CHURN) + new_life("on:2", contacts[:15] + own, start)
    assert len(detect_number_changes(crafted_graph(ties, subs), subs, AS_OF)) == int(new_number)
    # the same stranger on a competitor's number is no port either
    ties = old_life("on:1", contacts, CHURN) + new_life("a:2", contacts[:2] + own, start)
    assert detect_number_changes(crafted_graph(ties, subs), subs, AS_OF).empty


def test_new_number_long_after_the_gap_is_not_matched():
    """``L`` = churn day (the last tie day is the day before); the new number's first day must
    lie in ``[L - lead_days, L + max_gap_days]``."""
    cfg = NumberChangeConfig()
    subs = subscriber_table([{"label": "on:1", "churn": CHURN}, *[{"label": f} for f in FRIENDS]])
    for start, expected in ((CHURN + cfg.max_gap_days + 1, 0), (CHURN + cfg.max_gap_days, 1),
                            (CHURN - cfg.lead_days - 1, 0), (CHURN - cfg.lead_days, 1)):
        as_of = max(AS_OF, start + 10)
        ties = old_life("on:1", FRIENDS, CHURN) + [("a:7", f, 1.0, start, as_of - 1) for f in FRIENDS]
        assert len(detect_number_changes(crafted_graph(ties, subs), subs, as_of)) == expected, start
    # a last tie day after the churn day moves L: the window follows the number's real activity
    late = CHURN + 20
    ties = [("on:1", f, 2.0, AS_OF - 80, late) for f in FRIENDS]
    ties += [("a:7", f, 1.0, late + cfg.max_gap_days, AS_OF + 60) for f in FRIENDS]
    assert len(detect_number_changes(crafted_graph(ties, subs), subs, AS_OF + 70)) == 1


def test_conflicts_are_resolved_one_to_one():
    """Two new numbers compete for old 1 (the closer copy wins); old 3 then takes the loser.
    A handset match beats a better contact overlap."""
    f1, f3 = FRIENDS, [f"on:{200 + i}" for i in range(8)]
    rows = [{"label": "on:1", "churn": CHURN}, {"label": "on:3", "churn": CHURN + 1},
            {"label": "on:2", "activation": CHURN + 2}, {"label": "on:4", "activation": CHURN + 3},
            *[{"label": f} for f in f1 + f3]]
    subs = subscriber_table(rows)
    ties = old_life("on:1", f1, CHURN) + old_life("on:3", f3, CHURN + 1)
    ties += new_life("on:2", f1, CHURN + 2)  # a perfect copy of old 1
    ties += new_life("on:4", f1[:5] + f3[:6], CHURN + 3)  # half of old 1, most of old 3
    found = detect_number_changes(crafted_graph(ties, subs), subs, AS_OF)
    check_frame(found)
    assert pairs(found) == {(key("on:1"), key("on:2"), "reentry"), (key("on:3"), key("on:4"), "reentry")}
    # same handset on old 1 and new 4: it wins old 1 even though new 2 copies it better
    rows[0] = rows[0] | {"imei": "352099001761481"}
    rows[3] = rows[3] | {"imei": "352099001761481"}
    subs = subscriber_table(rows)
    found = detect_number_changes(crafted_graph(ties, subs), subs, AS_OF)
    check_frame(found)
    assert pairs(found) == {(key("on:1"), key("on:4"), "reentry")}
    assert found["same_imei"].tolist() == [True]


def test_placeholder_imei_and_missing_history():
    """An IMEI on many subscribers is a placeholder; a churned number without ties can still
    re-enter by handset; subscribers that are not nodes of the graph are ignored."""
    junk = "000000000000000"
    rows = [{"label": "on:1", "churn": CHURN, "imei": junk}]
    rows += [{"label": f"on:{10 + i}", "activation": CHURN + 1, "imei": junk} for i in range(9)]
    rows += [{"label": "on:2", "churn": CHURN, "imei": "356938035643809"},
             {"label": "on:3", "activation": CHURN + 5, "imei": "356938035643809"}]
    subs = subscriber_table(rows)
    g = crafted_graph([("on:10", "on:11", 1.0, CHURN, CHURN + 5)], subs)
    found = detect_number_changes(g, subs, AS_OF)
    assert pairs(found) == {(key("on:2"), key("on:3"), "reentry")}
    assert found["shared_contacts"].tolist() == [0] and found["similarity"].tolist() == [0.0]
    g_small = crafted_graph([("on:10", "on:11", 1.0, CHURN, CHURN + 5)],
                            subscriber_table(rows[:-2]))
    assert detect_number_changes(g_small, subs, AS_OF).empty


def test_since_day_and_empty_result():
    subs = subscriber_table([{"label": "on:1", "churn": CHURN}, *[{"label": f} for f in FRIENDS]])
    ties = old_life("on:1", FRIENDS, CHURN) + new_life("a:7", FRIENDS, CHURN + 1)
    g = crafted_graph(ties, subs)
    assert len(detect_number_changes(g, subs, AS_OF, since_day=CHURN)) == 1
    empty = detect_number_changes(g, subs, AS_OF, since_day=CHURN + 1)
    check_frame(empty)
    assert empty.empty
    assert detect_number_changes(g, subs, CHURN).empty  # churn on the as-of day is not history


def test_input_checks():
    subs = subscriber_table([{"label": "on:1", "churn": CHURN}, *[{"label": f} for f in FRIENDS]])
    g = crafted_graph(old_life("on:1", FRIENDS, CHURN), subs)
    with pytest.raises(ValueError, match="first_day"):
        detect_number_changes(dataclasses.replace(g, entry={}), subs, AS_OF)
    with pytest.raises(ValueError, match="since_day"):
        detect_number_changes(g, subs, AS_OF, since_day=AS_OF + 1)
    with pytest.raises(ValueError, match="as_of_day"):
        detect_number_changes(g, subs, "2026-01-01")
    with pytest.raises(TypeError, match="NumberChangeConfig"):
        detect_number_changes(g, subs, AS_OF, {"min_similarity": 0.3})
    with pytest.raises(ValueError, match="min_similarity"):
        NumberChangeConfig(min_similarity=1.5)


# ------------------------------------------------------------------- random graphs vs oracle


def random_case(seed: int, n_base: int = 60, n_ties: int = 220, n_copies: int = 14):
    """A small random world with day numbers in [0, 100) and as-of 100.

    ``n_base`` numbers of every kind (on-net subscribers, about a third churned; on-net
    non-subscribers; CompA, CompB, service and unknown-operator numbers; hubs) with random
    ties, then ``n_copies`` numbers born around the churn of a random churned subscriber that
    call a random part of its contacts and a few others: takeovers, strangers and rivals for
    the same old number. Handsets are drawn from a small pool (shared IMEIs) plus a placeholder
    held by more than 8 subscribers. Thresholds and ``since_day`` vary with the seed."""
    rng = np.random.default_rng(seed)
    n = n_base + n_copies
    heads = rng.choice(["138", "130", "189", "9558", "777"], size=n, p=[0.5, 0.2, 0.15, 0.05, 0.1])
    labels = [h + str(x).zfill(11 - len(h)) for h, x in zip(heads, rng.choice(10**6, n, replace=False))]
    keys = number_keys(pa.array(labels))
    born = np.where(rng.random(n) < 0.6, 0, rng.integers(0, 100, n))
    is_sub = (heads == "138") & (rng.random(n) < 0.85)
    churn = np.where(is_sub & (rng.random(n) < 0.4) & (np.arange(n) < n_base), rng.integers(15, 105, n), NEVER)
    a, b = rng.integers(0, n_base, n_ties), rng.integers(0, n_base, n_ties)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    ties = [tuple(p) for p in np.unique(np.column_stack([lo, hi])[lo != hi], axis=0)]
    contacts = {i: [] for i in range(n_base)}
    for u, v in ties:
        contacts[u].append(v)
        contacts[v].append(u)
    churned = np.flatnonzero(churn < NEVER)
    for c in range(n_base, n):
        old = rng.choice(churned)
        born[c] = min(max(churn[old] + rng.integers(-12, 50), 0), 99)
        own = list(contacts[old])
        take = rng.choice(own, size=rng.integers(0, len(own) + 1), replace=False) if own else []
        others = rng.integers(0, n_base, rng.integers(0, 4))
        ties += [(int(x), c) for x in set(take) | set(others.tolist()) if x != c]
    ties = np.array(sorted(set(ties)))
    m = len(ties)
    first = np.minimum(np.maximum(born[ties[:, 0]], born[ties[:, 1]]) + rng.integers(0, 5, m), 99)
    last = np.minimum(first + rng.integers(0, 60, m), 99)
    end = np.minimum(churn[ties[:, 0]], churn[ties[:, 1]]) - 1  # a churned number falls silent
    last = np.maximum(np.minimum(last, end), first)
    w = np.round(rng.gamma(1.0, 2.0, m), 2)
    w[rng.random(m) < 0.05] = 0.0
    sub_idx = np.flatnonzero(is_sub)
    k = sub_idx.size
    activation = np.where(born[sub_idx] > 0, born[sub_idx], -500)
    pool = np.array(["35693803564380%d" % i for i in range(5)], dtype=object)
    imei = np.where(rng.random(k) < 0.5, rng.choice(pool, k), None)
    imei[rng.random(k) < 0.3] = "000000000000000"  # usually more than 8 holders: a placeholder
    subs = subscribers_frame(keys[sub_idx], activation, churn[sub_idx], imei)
    hubs = keys[rng.random(n) < 0.05]
    g = build_call_graph(keys[ties[:, 0]], keys[ties[:, 1]], w, on_net_keys=subs.key,
                         home_prefixes=("138",), operators=OPERATORS | {"777": "unknown"},
                         home_operator="HomeTel", service_hub_keys=hubs, extra_keys=subs.key[:-2],
                         tie_arrays={"first_day": first.astype(np.int32), "last_day": last.astype(np.int32)})
    cfg = NumberChangeConfig(min_similarity=float(rng.choice([0.0, 0.15, 0.3])), min_shared=int(rng.integers(1, 3)),
                             lead_days=int(rng.integers(0, 15)), max_gap_days=int(rng.integers(5, 60)))
    since = None if seed % 2 else 30
    return g, subs, cfg, since


def assert_same_as_reference(found, expected):
    check_frame(found)
    exp = pd.DataFrame(expected, columns=[c for c in NUMBER_CHANGE_COLUMNS if c != "evidence"])
    got = found.drop(columns="evidence")
    for c in ("old_key", "new_key", "kind", "operator", "shared_contacts", "same_imei", "churn_day", "new_first_day"):
        assert got[c].tolist() == exp[c].tolist(), c
    assert_allclose(got["similarity"].to_numpy(), exp["similarity"].to_numpy(float), rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed", range(16))
def test_matches_reference_on_random_graphs(seed):
    g, subs, cfg, since = random_case(seed)
    found = detect_number_changes(g, subs, 100, cfg, since_day=since)
    expected = number_changes_reference(g, subs, 100, cfg, since_day=since)
    assert_same_as_reference(found, expected)


def test_random_graphs_are_not_trivial():
    """The oracle comparison means something only if the random worlds produce matches of
    every kind, including handset matches and contested numbers."""
    found, contested = [], 0
    for seed in range(16):
        g, subs, cfg, since = random_case(seed)
        found.append(detect_number_changes(g, subs, 100, cfg, since_day=since))
        every = number_changes_reference(g, subs, 100, dataclasses.replace(cfg), since_day=since, one_to_one=False)
        olds = [p["old_key"] for p in every]
        contested += len(olds) - len(set(olds))
    found = pd.concat(found)
    print(f"\nrandom worlds: {len(found)} changes, {contested} rival candidates dropped by one-to-one")
    assert (found["kind"] == "reentry").sum() >= 20 and (found["kind"] == "port").sum() >= 20
    assert set(found["operator"]) >= {"HomeTel", "CompA", "CompB"}
    assert found["same_imei"].sum() >= 5 and (found["shared_contacts"] >= 2).sum() >= 20
    assert contested >= 10


def test_same_result_for_any_thread_count():
    g, subs, cfg, since = random_case(3, n_base=300, n_ties=1500, n_copies=60)
    before = numba.get_num_threads()
    try:
        runs = []
        for t in sorted({1, before}):
            numba.set_num_threads(t)
            runs.append(detect_number_changes(g, subs, 100, cfg, since_day=since))
    finally:
        numba.set_num_threads(before)
    for r in runs[1:]:
        pd.testing.assert_frame_equal(r, runs[0])
    assert_same_as_reference(runs[0], number_changes_reference(g, subs, 100, cfg, since_day=since))


# -------------------------------------------------------------------------- synthetic operator


def truth_scores(w, found: pd.DataFrame, cfg: NumberChangeConfig) -> dict:
    """Precision and recall per kind against the changes whose churn is before as-of.

    The recall denominator leaves out changes the call graph cannot show: fewer than
    ``min_shared`` contacts of the old number reached by the true new number in the data (the
    change came right before as-of, or the contacts left too), unless it is a re-entry on the
    same handset (which the IMEI alone reveals). Both recalls are returned."""
    t = w.op.truth["number_changes"]
    churn_day = t.column("churn_date").cast(pa.int32()).to_numpy().astype(np.int64)
    keep = churn_day < w.as_of_day
    old, new = w.keys(t.column("old_msisdn"))[keep], w.keys(t.column("new_msisdn"))[keep]
    kind = np.array(t.column("kind").to_pylist(), dtype=object)[keep]
    same = t.column("same_imei").to_numpy(zero_copy_only=False)[keep]
    g = w.graph
    io, inn = g.ids_of(old), g.ids_of(new)

    def contacts(i):
        return set() if i < 0 else set(g.indices[g.indptr[i]:g.indptr[i + 1]].tolist())

    shared = np.array([len((contacts(a) - {b}) & (contacts(b) - {a})) for a, b in zip(io, inn)])
    visible = (shared >= cfg.min_shared) | ((kind == "reentry") & same)
    truth = list(zip(old.tolist(), new.tolist(), kind.tolist()))
    detected = pairs(found)
    out = {}
    for k in ("reentry", "port"):
        tk = {x for x in truth if x[2] == k}
        vis = {x for x, v in zip(truth, visible) if v and x[2] == k}
        dk = {x for x in detected if x[2] == k}
        out[k] = {"truth": len(tk), "visible": len(vis), "detected": len(dk),
                  "precision": len(tk & dk) / max(1, len(dk)), "recall": len(tk & dk) / max(1, len(tk)),
                  "recall_visible": len(vis & dk) / max(1, len(vis))}
    return out


def test_precision_and_recall_on_the_synthetic_operator():
    """Thresholds were tuned on seeds 1, 2, 4 (3000 subscribers) and 7, 8 (20000), never on
    seed 3 asserted here."""
    w = synthetic_world(3000, 12, 3)
    cfg = NumberChangeConfig()
    detect_number_changes(w.graph, w.subscribers, w.as_of_day, cfg)  # compile / load the kernels
    t0 = time.perf_counter()
    found = detect_number_changes(w.graph, w.subscribers, w.as_of_day, cfg)
    elapsed = time.perf_counter() - t0
    check_frame(found)
    scores = truth_scores(w, found, cfg)
    print(f"\nsynthetic operator 3000 subscribers, seed 3: {len(found)} changes in {elapsed * 1000:.0f} ms")
    for k, s in scores.items():
        print(f"  {k}: truth {s['truth']} (visible {s['visible']}), detected {s['detected']}, "
              f"precision {s['precision']:.3f}, recall {s['recall']:.3f}, recall of visible {s['recall_visible']:.3f}")
    for k, s in scores.items():
        assert s["visible"] >= 10, k
        assert s["precision"] >= 0.9, (k, s)
        assert s["recall_visible"] >= 0.9, (k, s)
    assert scores["reentry"]["recall"] >= 0.8  # re-entries are mostly visible even without the exclusion


@pytest.mark.parametrize("k", [1, 3])
def test_the_graph_stage_collects_the_handsets_of_the_numbers_asked(k, random_cdr, write_partitions, tmp_path):
    """The (caller, handset) pairs the graph stage returns are those of the used rows whose
    caller is asked for, as the slow reference reads them, whatever the split into files
    (repeated ids resolved: a duplicate's handset is counted once, from the kept copy)."""
    import datetime as dt

    from conftest import AS_OF as CDR_AS_OF, COUNTRY_CODE, LOOKBACK, NATIONAL_LENGTH, number_config, \
        synchronous_compute
    from pipelines.graph_build import build_graph_edges
    from pipelines.ingest import open_cdrs, scan
    from reference import reference_rows
    from socialgraph.config import JobConfig
    from socialgraph.reentry import handset_tokens
    from socialgraph.ties import Window

    table = random_cdr(seed=41 + k, n_rows=600, n_numbers=40)
    write_partitions(table, tmp_path / "in", k)
    df = table.to_pandas()
    rows = reference_rows(df, CDR_AS_OF, LOOKBACK, COUNTRY_CODE, NATIONAL_LENGTH)
    used = rows[rows["reason"].isna()]
    callers = number_keys(pa.array(used["caller"].tolist()))
    asked = np.unique(callers)[::2]  # every other caller
    imei = df["caller_imei"].to_numpy(dtype=object)[used["row"].to_numpy()]
    tokens = handset_tokens(imei)
    want = {(int(c), int(t)) for c, t in zip(callers, tokens) if t != 0 and c in set(asked.tolist())}
    assert len(want) > 10

    cfg = JobConfig(numbers=number_config())
    source = open_cdrs(str(tmp_path / "in"), cfg)
    _, dup_ids = scan(source, synchronous_compute, need_max_ts=False, now=dt.datetime.now(dt.timezone.utc))
    _, _, quality = build_graph_edges(source, Window(CDR_AS_OF, LOOKBACK), cfg, dup_ids, synchronous_compute, 3,
                                      None, None, balance_keys=number_keys(["10", "13", "138", "15"]),
                                      handset_keys=asked[::-1])  # any order
    keys, got_tokens = quality["handsets"]
    assert set(zip(keys.tolist(), got_tokens.tolist())) == want
    assert keys.size == len(want)  # each pair once


def test_a_run_without_handsets_in_the_subscriber_table_finds_them_in_the_cdrs(tmp_path):
    """The whole job on a synthetic operator whose subscriber table has no ``imei`` column (a
    BSS extract without handsets): the CDRs' ``caller_imei`` still makes re-entries certain,
    and every change found by handset is a true one."""
    import json
    import subprocess

    import pyarrow.parquet as pq

    from pipelines.synth_io import write_synthetic
    from scripts import console_script
    from socialgraph.synth import SynthConfig

    world = tmp_path / "world"
    write_synthetic(world, SynthConfig(n_subscribers=3000, weeks=10, seed=9))
    subs = pq.read_table(world / "subscribers.parquet")
    pq.write_table(subs.drop(["imei"]), tmp_path / "subscribers.parquet")
    out = tmp_path / "out"
    proc = subprocess.run([console_script("socialgraph"), "run", "--cdr", str(world / "cdr"), "--subscribers",
                           str(tmp_path / "subscribers.parquet"), "--operators", str(world / "operators.yaml"),
                           "--config", str(world / "job.yaml"), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    found = pd.read_parquet(out / "number_changes.parquet")
    truth = pd.read_parquet(world / "truth" / "number_changes.parquet")
    true_pairs = set(zip(truth["old_msisdn"], truth["new_msisdn"]))
    by_handset = found[found["same_imei"]]
    assert len(by_handset) >= 5
    assert set(by_handset["kind"]) == {"reentry"}
    assert set(zip(by_handset["old_msisdn"], by_handset["new_msisdn"])) <= true_pairs
    (graph,) = [s for s in json.loads((out / "manifest.json").read_text())["stages"] if s["name"] == "graph"]
    assert graph["handsets_seen"] > 0
    assert "handsets" not in json.loads((out / "quality.json").read_text())

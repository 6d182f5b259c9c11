"""Offers and target lists: each rule on crafted tables, the whole of ``build_targets`` against
a slow pure-Python reference on random tables, and the CSV / Excel writer."""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
import re
import stat
import zipfile
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pandas.testing import assert_frame_equal

from pipelines.io import write_targets
from socialgraph.config import OffersConfig
from socialgraph.numbers import format_numbers, number_keys
from socialgraph.offers import TARGET_COLUMNS, build_targets, circle_reason
from socialgraph.schema import TARGETS
from socialgraph.subscribers import subscribers_from_arrow


def num(i: int) -> str:
    return f"138{i:08d}"


def key(i: int) -> int:
    return int(number_keys([num(i)])[0])


def off(i: int) -> int:
    """A competitor number (never in the subscriber table)."""
    return int(number_keys([f"130{i:08d}"])[0])


def subs_of(arpu: dict[int, float], dnd=()):
    ids = sorted(arpu)
    return subscribers_from_arrow(pa.table({
        "msisdn": [num(i) for i in ids],
        "activation_date": pa.array([dt.date(2025, 1, 1)] * len(ids), pa.date32()),
        "arpu": [float(arpu[i]) for i in ids],
        "dnd": [i in dnd for i in ids],
    }))


def circle(cid, kind="family", contagion=True, **kw):
    row = {"circle_id": cid, "kind": kind, "source": "declared" if kind != "social" else "inferred",
           "size": 6, "active_members": 4, "churned_recent": 2, "expected_churn": 0.3,
           "p_value": 0.001, "q_value": 0.01, "contagion": contagion, "window_days": 28,
           "competitor_members": 0}
    row.update(kw)
    return row


def member(cid, k, role="member", on_net=True, active=True, churned=False, tie=2.0):
    return {"circle_id": cid, "key": k, "on_net": on_net, "role": role, "influence": 0.1,
            "churned": churned, "active": active, "strongest_tie": tie}


def changes_of(rows=()):
    frame = pd.DataFrame(list(rows), columns=["old_key", "new_key", "kind", "operator", "similarity"])
    return frame.astype({"old_key": np.int64, "new_key": np.int64, "similarity": float})


def run(circles, members, risk, subs, changes=None, cfg=OffersConfig(), scored_dnd=(), **kw):
    scored = pd.DataFrame({"key": list(risk), "churn_risk": list(risk.values()),
                           "dnd": [k in scored_dnd for k in risk]})
    return build_targets(pd.DataFrame(circles), pd.DataFrame(members), scored, subs,
                         changes if changes is not None else changes_of(), cfg, **kw)


def pair(t):
    return list(zip(t["circle_id"], t["key"]))


# ---- crafted tables: one rule each ---------------------------------------------------------------

def test_anchor_first_then_risk_then_key_then_bring_back():
    subs = subs_of({i: 10.0 for i in range(1, 7)})
    members = [member("family:F", key(1)), member("family:F", key(2)), member("family:F", key(3)),
               member("family:F", key(4), role="anchor"),
               member("family:F", key(5), active=False, churned=True, tie=3.0),
               member("family:F", key(6), active=False, churned=True, tie=4.0)]
    risk = {key(1): 0.3, key(2): 0.6, key(3): 0.3, key(4): 0.1}
    changes = changes_of([(key(5), off(5), "port", "CompA", 0.8), (key(6), off(6), "port", "CompA", 0.9)])
    t = run([circle("family:F")], members, risk, subs, changes)
    assert t["key"].tolist() == [key(4), key(2), key(1), key(3), off(6), off(5)]
    assert t["role"].tolist() == ["anchor"] + ["member"] * 5
    assert t["offer"].tolist() == ["family_bundle"] * 4 + ["bring_back"] * 2
    assert t["churn_risk"].iloc[:4].tolist() == [0.1, 0.6, 0.3, 0.3]
    assert t["churn_risk"].iloc[4:].isna().all()
    assert t["arpu"].tolist() == [10.0] * 6  # bring-back rows: the old subscription's ARPU
    assert (t["priority"] == 1).all()
    assert t.dtypes.to_dict() == {c: np.dtype(d) for c, d in TARGET_COLUMNS.items()}


def test_dnd_never_appears_as_anchor_member_or_bring_back():
    subs = subs_of({i: 10.0 for i in range(1, 9)}, dnd={1, 2, 5})
    members = [member("vnet:V", key(1), role="anchor"), member("vnet:V", key(2)), member("vnet:V", key(3)),
               member("vnet:V", key(4)),
               member("vnet:V", key(5), active=False, churned=True, tie=9.0),   # opted out, ported
               member("vnet:V", key(6), active=False, churned=True, tie=9.0),   # ported to a number
               member("vnet:V", key(7), active=False, churned=True, tie=9.0)]   # re-entered as 8's
    risk = {key(i): 0.5 for i in (1, 2, 3, 4, 8)}
    changes = changes_of([(key(5), off(5), "port", "CompA", 0.9),
                          (key(2), off(2), "port", "CompA", 0.9),    # dnd old number
                          (key(6), off(6), "port", "CompA", 0.9),
                          (key(2), key(8), "reentry", "HomeTel", 0.9)])
    members.append(member("vnet:V", key(8)))
    t = run([circle("vnet:V", kind="vnet")], members, risk, subs, changes, scored_dnd={key(4)})
    assert "anchor" not in set(t["role"])  # the anchor opted out; nobody is promoted
    listed = set(t["key"])
    assert listed == {key(3), off(6)}
    # opted-out numbers, numbers that inherit the opt-out, and the anchor are all absent
    assert not listed & {key(1), key(2), key(4), key(5), off(5), key(8)}
    assert t["offer"].tolist() == ["group_bundle", "bring_back"]


def test_bring_back_only_for_a_strong_port_of_a_churned_member():
    subs = subs_of({i: 10.0 for i in range(1, 6)})
    cfg = OffersConfig(bring_back_min_weight=2.0)
    members = [member("family:F", key(1), role="anchor"),
               member("family:F", key(2), active=False, churned=True, tie=2.0),   # strong: yes
               member("family:F", key(3), active=False, churned=True, tie=1.99),  # weak: no
               member("family:F", key(4), active=False, churned=True, tie=5.0),   # re-entry: no
               member("family:F", key(5), active=False, churned=False, tie=5.0)]  # not churned now
    changes = changes_of([(key(2), off(2), "port", "CompA", 0.5), (key(2), off(9), "port", "CompB", 0.7),
                          (key(3), off(3), "port", "CompA", 0.9), (key(4), off(4), "reentry", "x", 0.9),
                          (key(5), off(5), "port", "CompA", 0.9)])
    t = run([circle("family:F")], members, {key(1): 0.2}, subs, changes, cfg)
    assert t["key"].tolist() == [key(1), off(9)]  # the most similar detection wins
    assert t["offer"].tolist() == ["family_bundle", "bring_back"]
    assert "1 who moved to a competitor can be won back" in t["reason"].iloc[0]


def test_unflagged_circles_and_uncontactable_members_give_no_rows():
    subs = subs_of({i: 10.0 for i in range(1, 6)})
    members = [member("social:a", key(1)), member("social:a", key(2), on_net=False),
               member("social:a", key(3), active=False), member("family:b", key(4)),
               member("family:b", key(5))]
    circles = [circle("social:a", kind="social"), circle("family:b", contagion=False)]
    t = run(circles, members, {key(i): 0.5 for i in range(1, 6)}, subs)
    assert pair(t) == [("social:a", key(1))]
    none = run([circle("family:b", contagion=False)], members, {key(4): 0.5}, subs)
    assert none.empty and list(none.columns) == list(TARGET_COLUMNS)


def test_priority_by_value_at_stake():
    # value at stake = sum(arpu * risk) over active on-net members, opted-out ones included
    subs = subs_of({1: 100.0, 2: 10.0, 3: 10.0, 4: 50.0, 5: 1.0}, dnd={4})
    members = [member("family:low", key(1)), member("vnet:high", key(2)), member("vnet:high", key(3)),
               member("vnet:high", key(4)), member("social:zero", key(5))]
    risk = {key(1): 0.1, key(2): 0.5, key(3): 0.5, key(4): 0.2, key(5): 0.0}
    circles = [circle("family:low"), circle("vnet:high", kind="vnet"),
               circle("social:zero", kind="social")]
    t = run(circles, members, risk, subs)
    by_circle = t.groupby("circle_id")[["priority", "value_at_stake"]].first()
    assert by_circle.loc["vnet:high"].tolist() == [1, 20.0]
    assert by_circle.loc["family:low"].tolist() == [2, 10.0]
    assert by_circle.loc["social:zero"].tolist() == [3, 0.0]
    assert t["priority"].is_monotonic_increasing


def test_number_in_two_circles_is_listed_once_in_the_higher():
    subs = subs_of({1: 100.0, 2: 10.0, 3: 10.0, 4: 5.0})
    members = [member("vnet:big", key(1)), member("vnet:big", key(2)),
               member("social:small", key(2), role="anchor"), member("social:small", key(3)),
               member("family:only-shared", key(1), role="anchor")]
    risk = {key(1): 0.5, key(2): 0.5, key(3): 0.5}
    circles = [circle("vnet:big", kind="vnet"), circle("social:small", kind="social"),
               circle("family:only-shared")]
    t = run(circles, members, risk, subs)
    assert t["key"].is_unique
    assert pair(t) == [("vnet:big", key(1)), ("vnet:big", key(2)), ("social:small", key(3))]
    # "family:only-shared" (value 50, rank 2) lost its only row, so priorities stay consecutive
    assert t["priority"].tolist() == [1, 1, 2]


def test_max_contacts_keeps_the_top_circles_that_fit_whole():
    """Circles in priority order, each whole or not at all; one that does not fit is skipped
    and the next tried, so a large first circle never empties the list."""
    subs = subs_of({i: float(100 - i) for i in range(1, 10)})
    members = ([member("c:1", key(i)) for i in (1, 2, 3)] + [member("c:2", key(i)) for i in (4, 5)]
               + [member("c:3", key(6))] + [member("c:4", key(i)) for i in (7, 8)])
    circles = [circle(c, kind="social") for c in ("c:1", "c:2", "c:3", "c:4")]
    risk = {key(i): 0.5 for i in range(1, 9)}
    full = run(circles, members, risk, subs)
    order = full.groupby("priority")["circle_id"].first().tolist()
    assert order == ["c:1", "c:2", "c:4", "c:3"]  # sizes 3, 2, 2, 1
    for budget, kept in [(1, ["c:3"]), (2, ["c:2"]), (3, ["c:1"]), (4, ["c:1", "c:3"]), (5, ["c:1", "c:2"]),
                         (6, ["c:1", "c:2", "c:3"]), (7, ["c:1", "c:2", "c:4"]), (8, order), (100, order)]:
        t = run(circles, members, risk, subs, cfg=OffersConfig(max_contacts=budget))
        assert len(t) <= budget
        expected = full[full["circle_id"].isin(kept)].reset_index(drop=True)
        expected["priority"] = expected["circle_id"].map({c: i + 1 for i, c in enumerate(kept)}).astype(expected["priority"].dtype)
        assert_frame_equal(t, expected)


def test_a_number_of_a_skipped_circle_is_listed_in_the_next_kept_one():
    """The one-listing rule counts only circles on the list: a member shared with a circle
    skipped for the budget is still called, in the next kept circle that has it."""
    subs = subs_of({i: float(100 - i) for i in range(1, 10)})
    members = ([member("c:big", key(i)) for i in (1, 2, 3, 4)] + [member("c:small", key(i)) for i in (4, 5)])
    circles = [circle(c, kind="social") for c in ("c:big", "c:small")]
    risk = {key(i): 0.5 for i in range(1, 6)}
    t = run(circles, members, risk, subs, cfg=OffersConfig(max_contacts=3))
    assert t["circle_id"].tolist() == ["c:small", "c:small"] and set(t["key"]) == {key(4), key(5)}
    assert t["priority"].tolist() == [1, 1]


def test_reason_is_plain_and_numberless():
    subs = subs_of({i: 10.0 for i in range(1, 4)})
    members = [member("family:F0012", key(1), role="anchor"), member("family:F0012", key(2)),
               member("family:F0012", key(3), active=False, churned=True, tie=3.0)]
    changes = changes_of([(key(3), off(3), "port", "CompA", 0.9)])
    c = circle("family:F0012", size=8, churned_recent=3, expected_churn=0.42, competitor_members=2)
    t = run([c], members, {key(1): 0.5, key(2): 0.5}, subs, changes)
    assert t["reason"].nunique() == 1
    assert t["reason"].iloc[0] == ("Family plan: 3 of 8 members left in the last 28 days (0.4 expected); "
                                   "2 others now call a competitor often; "
                                   "1 who moved to a competitor can be won back.")
    assert not re.search(r"\d{4}", t["reason"].iloc[0])
    assert circle_reason("social", "inferred", 5, 1, 0.1, 14, 1) == (
        "Social circle: 1 of 5 members left in the last 14 days (0.1 expected); "
        "1 other now calls a competitor often.")
    assert circle_reason("vnet", None, 1, 1, math.nan, 7) == "V-net work group: 1 of 1 member left in the last 7 days."
    # a team and the workplace that joins it with another: told apart on the list
    subs = subs_of({i: 10.0 for i in range(1, 5)})
    cs = [circle("wrk-team", kind="social", size=5, churned_recent=2, expected_churn=0.2),
          circle("wpl-place", kind="social", size=12, churned_recent=3, expected_churn=0.5, q_value=0.02)]
    ms = [member("wrk-team", key(1), role="anchor"), member("wrk-team", key(2)),
          member("wpl-place", key(3), role="anchor"), member("wpl-place", key(4))]
    t = run(cs, ms, {key(i): 0.5 for i in range(1, 5)}, subs).set_index("circle_id")
    assert t.loc["wrk-team", "reason"].iloc[0].startswith("Work circle: 2 of 5 members")
    assert t.loc["wpl-place", "reason"].iloc[0].startswith("Workplace: 3 of 12 members")


def test_inputs_are_checked():
    subs = subs_of({1: 1.0})
    good = [member("family:F", key(1))]
    with pytest.raises(ValueError, match="'circles' lacks column.*window_days"):
        run([{k: v for k, v in circle("family:F").items() if k != "window_days"}], good, {}, subs)
    with pytest.raises(ValueError, match="circles.kind.*'club'"):
        run([circle("family:F", kind="club")], good, {}, subs)
    with pytest.raises(ValueError, match="more than one anchor"):
        run([circle("family:F")], [member("family:F", key(1), role="anchor"),
                                   member("family:F", key(2), role="anchor")], {}, subs)
    with pytest.raises(ValueError, match="repeats a circle_id"):
        run([circle("family:F"), circle("family:F")], good, {}, subs)


def test_the_jobs_unchecked_tables_still_get_their_columns_and_values_checked():
    """``check_tables=False`` (the job's own tables) skips only the one-row-per checks."""
    subs = subs_of({1: 1.0})
    good = [member("family:F", key(1))]
    twice = [member("family:F", key(1), role="anchor"), member("family:F", key(2), role="anchor")]
    with pytest.raises(ValueError, match="more than one anchor"):
        run([circle("family:F")], twice, {}, subs)
    run([circle("family:F")], twice, {}, subs, check_tables=False)  # not checked: the job's tables
    with pytest.raises(ValueError, match="circles.kind.*'club'"):
        run([circle("family:F", kind="club")], good, {}, subs, check_tables=False)
    with pytest.raises(ValueError, match="members.role"):
        run([circle("family:F")], [member("family:F", key(1), role="boss")], {}, subs, check_tables=False)
    with pytest.raises(ValueError, match="'circles' lacks column.*window_days"):
        run([{k: v for k, v in circle("family:F").items() if k != "window_days"}], good, {}, subs,
            check_tables=False)


# ---- the whole function against a slow reference on random tables -------------------------------

def reference_targets(circles, members, scored, subs, changes, cfg):
    """The rules of socialgraph.offers written as plainly as possible, one circle at a time."""
    dnd = {int(k) for k, d in zip(subs.key, subs.dnd) if d}
    dnd |= {int(k) for k, d in zip(scored["key"], scored["dnd"]) if d}
    grew = True
    while grew:
        grew = False
        for old, new in zip(changes["old_key"], changes["new_key"]):
            if old in dnd and new not in dnd:
                dnd.add(int(new))
                grew = True
    risk = dict(zip(scored["key"], scored["churn_risk"]))
    arpu = dict(zip(subs.key.tolist(), subs.arpu.tolist()))
    best_port = {}
    for old, new, kind, sim in zip(changes["old_key"], changes["new_key"], changes["kind"],
                                   changes["similarity"]):
        if kind == "port" and (old not in best_port or (-sim, new) < best_port[old]):
            best_port[old] = (-sim, new)
    mem = members.to_dict("records")
    value = {}
    for c in circles.to_dict("records"):
        value[c["circle_id"]] = sum(arpu.get(m["key"], 0.0) * (0.0 if math.isnan(risk.get(m["key"], math.nan))
                                                             else risk[m["key"]])
                                    for m in mem if m["circle_id"] == c["circle_id"]
                                    and m["on_net"] and m["active"])
    flagged = [c for c in circles.to_dict("records") if c["contagion"]]
    flagged.sort(key=lambda c: (-value[c["circle_id"]],
                                math.inf if math.isnan(c["q_value"]) else c["q_value"], c["circle_id"]))
    out, listed, priority = [], set(), 0
    for c in flagged:
        cid = c["circle_id"]
        ms = [m for m in mem if m["circle_id"] == cid]
        live = [m for m in ms if m["on_net"] and m["active"] and m["key"] not in dnd]
        r = lambda m: math.inf if math.isnan(risk.get(m["key"], math.nan)) else -risk[m["key"]]  # noqa: E731
        rows = [(m["key"], "anchor", risk.get(m["key"], math.nan), arpu.get(m["key"], 0.0))
                for m in live if m["role"] == "anchor"]
        rows += [(m["key"], "member", risk.get(m["key"], math.nan), arpu.get(m["key"], 0.0))
                 for m in sorted(live, key=lambda m: (r(m), m["key"])) if m["role"] == "member"]
        offer = "family_bundle" if c["kind"] == "family" else "group_bundle"
        rows = [row + (offer,) for row in rows]
        back = [(m["strongest_tie"], m["key"], best_port[m["key"]][1]) for m in ms
                if m["churned"] and m["strongest_tie"] >= cfg.bring_back_min_weight
                and m["key"] in best_port and m["key"] not in dnd and best_port[m["key"]][1] not in dnd]
        rows += [(new, "member", math.nan, arpu.get(old, 0.0), "bring_back")
                 for _, old, new in sorted(back, key=lambda b: (-b[0], b[2]))]
        kept, seen = [], set()
        for row in rows:
            if row[0] not in listed and row[0] not in seen:
                seen.add(row[0])
                kept.append(row)
        if not kept:
            continue
        if cfg.max_contacts and len(out) + len(kept) > cfg.max_contacts:
            continue  # skipped whole; later circles may still fit
        listed |= seen
        priority += 1
        n_back = sum(row[4] == "bring_back" for row in kept)
        reason = circle_reason(c["kind"], c["source"], c["size"], c["churned_recent"], c["expected_churn"],
                               c["window_days"], c["competitor_members"], n_back,
                               layer={"wrk": "work", "wpl": "workplace"}.get(cid[:3]))
        out += [{"priority": priority, "circle_id": cid, "kind": c["kind"], "key": k, "role": role,
                 "offer": o, "churn_risk": rk, "reason": reason, "value_at_stake": value[cid], "arpu": a}
                for k, role, rk, a, o in kept]
    return pd.DataFrame(out, columns=list(TARGET_COLUMNS)).astype(TARGET_COLUMNS)


def random_world(seed: int):
    rng = random.Random(seed)
    n_on, n_off = 30, 8
    subs = subs_of({i: rng.choice([0.0, 5.0, 20.0, 80.0]) for i in range(n_on)},
                   dnd={i for i in range(n_on) if rng.random() < 0.12})
    kinds = ["family", "vnet", "social", "work"]
    circles, members, churned = [], [], []
    for c in range(rng.randint(1, 8)):
        layer = rng.choice(kinds)
        # a work circle is a social one whose id has the work layer's prefix
        cid, kind = (f"wrk-{c}", "social") if layer == "work" else (f"{layer}:{c}", layer)
        ks = rng.sample(range(n_on), rng.randint(1, 7))
        ms = []
        for i in ks:
            state = rng.random()
            m = member(cid, key(i), active=state > 0.3, churned=state < 0.2,
                       tie=rng.choice([0.5, 1.0, 2.0, 3.0]))
            ms.append(m)
            if m["churned"]:
                churned.append(key(i))
        ms += [member(cid, off(j), on_net=False, active=False) for j in rng.sample(range(n_off), 2)]
        live = [m for m in ms if m["active"]]
        if live and rng.random() < 0.8:
            rng.choice(live)["role"] = "anchor"
        members += ms
        circles.append(circle(cid, kind=kind, contagion=rng.random() < 0.75, size=len(ms),
                              q_value=rng.choice([0.01, 0.02, math.nan]),
                              competitor_members=rng.randint(0, 2)))
    risk = {key(i): rng.choice([0.1, 0.25, 0.5, 0.9, math.nan]) for i in range(n_on)
            if rng.random() < 0.9}
    ch = [(k, off(rng.randrange(n_off)) if rng.random() < 0.7 else key(rng.randrange(n_on)),
           rng.choice(["port", "port", "reentry"]), "CompA", round(rng.random(), 3))
          for k in churned for _ in range(rng.randint(0, 2))]
    scored_dnd = {k for k in risk if rng.random() < 0.05}
    cfg = OffersConfig(max_contacts=rng.choice([0, 0, 3, 8, 15]),
                       bring_back_min_weight=rng.choice([1.0, 2.0]))
    return circles, members, risk, subs, changes_of(ch), cfg, scored_dnd


@pytest.mark.parametrize("seed", range(40))
def test_matches_reference_on_random_tables(seed):
    circles, members, risk, subs, changes, cfg, scored_dnd = random_world(seed)
    t = run(circles, members, risk, subs, changes, cfg, scored_dnd)
    scored = pd.DataFrame({"key": list(risk), "churn_risk": list(risk.values()),
                           "dnd": [k in scored_dnd for k in risk]})
    expected = reference_targets(pd.DataFrame(circles), pd.DataFrame(members), scored, subs, changes, cfg)
    assert_frame_equal(t, expected, check_exact=False, rtol=1e-12)
    opted_out = set(subs.key[subs.dnd].tolist()) | scored_dnd
    assert not set(t["key"]) & opted_out
    assert t["key"].is_unique


# ---- the writer ----------------------------------------------------------------------------------

def _targets():
    subs = subs_of({1: 12.5, 2: 30.0, 3: 8.0})
    members = [member("family:=F1,\"x\"", key(1), role="anchor"), member("family:=F1,\"x\"", key(2)),
               member("family:=F1,\"x\"", key(3), active=False, churned=True, tie=3.0)]
    changes = changes_of([(key(3), off(3), "port", "CompA", 0.9)])
    return run([circle("family:=F1,\"x\"")], members, {key(1): 0.123456, key(2): 1 / 3}, subs, changes)


def _xlsx_cells(path):
    """{cell ref: (type attribute, text)} of the first sheet, read with the standard library."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        shared = []
        if "xl/sharedStrings.xml" in names:
            root = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{ns['m']}}}t")) for si in root]
        sheet = ElementTree.fromstring(z.read("xl/worksheets/sheet1.xml"))
    cells = {}
    for c in sheet.iter(f"{{{ns['m']}}}c"):
        kind = c.get("t", "n")
        if kind == "s":
            text = shared[int(c.find("m:v", ns).text)]
        elif kind == "inlineStr":
            text = "".join(t.text or "" for t in c.iter(f"{{{ns['m']}}}t"))
        else:
            v = c.find("m:v", ns)
            text = None if v is None else v.text
        cells[c.get("r")] = (kind, text)
    return sheet, ns, cells


def test_csv_round_trips_without_bom(tmp_path):
    t = _targets()
    write_targets(t, tmp_path / "targets.csv", None)
    raw = (tmp_path / "targets.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.split(b"\n")[0] == b",".join(n.encode() for n in TARGETS.names)
    back = pd.read_csv(tmp_path / "targets.csv", dtype={"msisdn": str})
    assert list(back.columns) == TARGETS.names
    assert back["msisdn"].tolist() == format_numbers(t["key"].to_numpy()).to_pylist()
    assert back["msisdn"].tolist()[:2] == [num(1), num(2)]
    assert back["circle_id"].tolist() == t["circle_id"].tolist()  # commas and quotes survive
    assert back["churn_risk"].iloc[:2].tolist() == [0.1235, 0.3333] and math.isnan(back["churn_risk"].iloc[2])
    assert back["value_at_stake"].tolist() == [11.54] * 3  # 12.5*0.123456 + 30/3
    assert back["reason"].tolist() == t["reason"].tolist()
    assert back["priority"].tolist() == [1, 1, 1] and back["offer"].iloc[2] == "bring_back"
    with open(tmp_path / "targets.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[1][TARGETS.names.index("churn_risk")] == "0.1235"
    assert rows[1][TARGETS.names.index("value_at_stake")] == "11.54"
    assert rows[3][TARGETS.names.index("churn_risk")] == ""


def test_xlsx_has_text_numbers_frozen_header_and_filter(tmp_path):
    t = _targets()
    write_targets(t, tmp_path / "t.csv", tmp_path / "t.xlsx")
    sheet, ns, cells = _xlsx_cells(tmp_path / "t.xlsx")
    col = {n: chr(ord("A") + j) for j, n in enumerate(TARGETS.names)}
    assert [cells[f"{col[n]}1"][1] for n in TARGETS.names] == TARGETS.names
    for r, k in enumerate(t["key"], start=2):
        kind, text = cells[f"{col['msisdn']}{r}"]
        assert kind in ("s", "inlineStr", "str") and text == format_numbers(np.array([k])).to_pylist()[0]
    assert cells[f"{col['circle_id']}2"] == (cells[f"{col['circle_id']}2"][0], t["circle_id"].iloc[0])
    assert cells[f"{col['circle_id']}2"][0] in ("s", "inlineStr")  # "=..." stays text, not a formula
    assert not list(sheet.iter(f"{{{ns['m']}}}f"))
    assert cells[f"{col['churn_risk']}2"] == ("n", "0.1235")
    assert f"{col['churn_risk']}4" not in cells or cells[f"{col['churn_risk']}4"][1] is None
    pane = sheet.find(".//m:pane", ns)
    assert pane.get("state") == "frozen" and pane.get("topLeftCell") == "A2"
    assert sheet.find("m:autoFilter", ns).get("ref") == f"A1:{col[TARGETS.names[-1]]}4"
    widths = [float(c.get("width")) for c in sheet.find("m:cols", ns)]
    assert min(widths) >= 8 and max(widths) <= 101


def test_empty_list_writes_headers_only(tmp_path):
    empty = pd.DataFrame({c: pd.Series(dtype=d) for c, d in TARGET_COLUMNS.items()})
    write_targets(empty, tmp_path / "t.csv", tmp_path / "t.xlsx")
    assert (tmp_path / "t.csv").read_text(encoding="utf-8") == ",".join(TARGETS.names) + "\n"
    _, _, cells = _xlsx_cells(tmp_path / "t.xlsx")
    assert sorted(cells) == sorted(f"{chr(ord('A') + j)}1" for j in range(len(TARGETS.names)))


def test_files_are_owner_only_and_replace_atomically(tmp_path):
    out = tmp_path / "out"
    write_targets(_targets(), out / "t.csv", out / "t.xlsx")
    for name in ("t.csv", "t.xlsx"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    before = (out / "t.csv").read_bytes()
    with pytest.raises(ValueError, match="lacks column"):
        write_targets(_targets().drop(columns="reason"), out / "t.csv", out / "t.xlsx")
    assert (out / "t.csv").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["t.csv", "t.xlsx"]  # no temporary left over

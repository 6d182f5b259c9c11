"""The marketer report: its numbers against the job's tables (recomputed here the slow way),
privacy (no full number anywhere in the page), escaping, and the page in headless Chromium
(no script errors, the circles table and the figures are there, click-sorting works)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from numpy.testing import assert_allclose

from socialgraph.circles import circle_members
from socialgraph.config import JobConfig
from socialgraph.contagion import circle_contagion
from socialgraph.graph import build_call_graph
from socialgraph.lineage import carry_history, history_rows
from socialgraph.numbers import format_numbers, mask_number
from socialgraph.offers import build_targets
from socialgraph.reentry import detect_number_changes
from socialgraph.backtest import backtest
from socialgraph.report import render_report, report_inputs
from socialgraph.risk import score_subscribers
from socialgraph.subscribers import subscribers_from_arrow
from worlds import NUMBERS, synthetic_world

CHROMIUM = "/usr/bin/chromium"
CFG = JobConfig()


@cache
def job():
    """The job's stages ``scores`` .. ``offers`` on the synthetic world, as ``pipelines.run``."""
    w = synthetic_world(3000, 12, 3)
    subs, graph, as_of = w.subscribers, w.graph, w.as_of_day
    start = as_of - CFG.window.lookback_days
    scored, _ = score_subscribers(graph, subs, as_of, CFG.scoring)
    changes = detect_number_changes(graph, subs, as_of, CFG.number_changes, since_day=start)
    members, _ = circle_members(graph, subs, as_of, CFG.circles)
    diagnostics = {}
    circles, members = circle_contagion(
        members, subs, as_of, CFG.contagion,
        reentry_keys=changes.loc[changes["kind"] == "reentry", "old_key"].to_numpy(),
        port_keys=changes.loc[changes["kind"] == "port", "old_key"].to_numpy(),
        competitor_share=pd.Series(scored["competitor_share"].to_numpy(), index=scored["key"].to_numpy()),
        diagnostics=diagnostics)
    targets = build_targets(circles, members, scored, subs, changes, CFG.offers)
    return dict(w=w, graph=graph, subs=subs, scored=scored, circles=circles, members=members,
                targets=targets, as_of=as_of, start=start, beyond_chance=diagnostics["beyond_chance"])


@cache
def earlier_runs():
    """Two earlier runs (56 and 28 days before as-of) written by hand for flagged circles: ``a``
    in both, targeted the second time; ``b`` once, and in a later run the report must ignore;
    ``c`` in none. An unflagged circle was targeted before. Rows not in date order."""
    j = job()
    now = history_rows(j["circles"], j["targets"], j["as_of"])
    flagged = sorted(now.loc[now["contagion"], "circle_id"])
    assert len(flagged) >= 3, "the synthetic world should flag some circles"
    a, b, c = flagged[:3]
    other = now.loc[~now["contagion"], "circle_id"].iloc[0]
    rows = [(a, -56, 0, False), (a, -28, 1, True), (b, 28, 9, True), (b, -28, 3, False), (other, -28, 5, True)]
    base = now.set_index("circle_id")
    earlier = pd.DataFrame([{**base.loc[cid].to_dict(), "circle_id": cid, "as_of_day": j["as_of"] + shift,
                             "churned_recent": churned, "targeted": targeted}
                            for cid, shift, churned, targeted in rows])[now.columns]
    return (a, b, c), earlier


@cache
def history():
    """The run's ``circle_history`` as ``pipelines.run`` builds it from the earlier runs, newest
    rows first (the report must not rely on the table's order)."""
    j = job()
    hist = carry_history(earlier_runs()[1], None, history_rows(j["circles"], j["targets"], j["as_of"]))
    return hist.sort_values("as_of_day", ascending=False, kind="stable").reset_index(drop=True)


@cache
def report(max_drawn: int = 6, with_history: bool = True):
    j = job()
    data = report_inputs(j["graph"], j["subs"], j["scored"], j["circles"], j["members"], j["targets"],
                         as_of_day=j["as_of"], window_start_day=j["start"], max_drawn=max_drawn,
                         history=history() if with_history else None, beyond_chance=j["beyond_chance"])
    return data, render_report(data)


class Page(HTMLParser):
    """Elements with an id (their data-value and text) and the rows of ``table#circles``."""

    def __init__(self, text: str):
        super().__init__()
        self.by_id, self.rows, self.svgs, self._open, self._table, self.head = {}, [], 0, [], None, []
        self.feed(text)

    def cells(self, row) -> dict:
        """A row of ``table#circles`` by column key: (data-value, text, title) per cell."""
        return dict(zip(self.head, zip(row["cells"], row["texts"], row["titles"]), strict=True))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.svgs += tag == "svg"
        if tag == "table":
            self._table = a.get("id")
        if self._table == "circles" and tag == "th":
            self.head.append(a.get("data-key"))
        if self._table == "circles" and tag == "tr" and "data-circle-id" in a:
            self.rows.append({"circle_id": a["data-circle-id"], "cells": []})
        if self._table == "circles" and tag == "td" and self.rows:
            self.rows[-1]["cells"].append(a.get("data-value"))
            self.rows[-1].setdefault("texts", []).append("")
            self.rows[-1].setdefault("titles", []).append(a.get("title"))
            self._in_td = True
        if "id" in a:
            self.by_id[a["id"]] = {"value": a.get("data-value"), "text": ""}
            self._open.append((tag, a["id"]))

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_td = False
        if tag == "table":
            self._table = None
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data):
        if getattr(self, "_in_td", False) and self._table == "circles":
            self.rows[-1]["texts"][-1] += data
        for _, id_ in self._open:
            self.by_id[id_]["text"] += data

    def value(self, id_: str) -> float:
        return float(self.by_id[id_]["value"])


# --------------------------------------------------------------------- slow references


def reference_window_churn(subs, start, as_of):
    active = churned = 0
    for act, gone in zip(subs.activation_day.tolist(), subs.churn_day.tolist()):
        if act < start <= gone:
            active += 1
            churned += gone < as_of
    return active, churned


def reference_tenure(subs, start, as_of):
    bands = {}
    for act, gone in zip(subs.activation_day.tolist(), subs.churn_day.tolist()):
        if act < start <= gone:
            months = (start - act)
            band = 0 if months < 90 else 1 if months < 270 else 2 if months < 730 else 3
            a, c = bands.get(band, (0, 0))
            bands[band] = (a + 1, c + (gone < as_of))
    return [bands.get(b, (0, 0)) for b in range(4)]


def reference_cohort_final(subs, start, as_of):
    rows = [(-arpu, key, gone) for arpu, key, act, gone in
            zip(subs.arpu.tolist(), subs.key.tolist(), subs.activation_day.tolist(), subs.churn_day.tolist())
            if act < start <= gone]
    rows.sort()
    top = rows[:int(np.ceil(0.2 * len(rows)))]
    return len(top), sum(gone >= as_of for _, _, gone in top) / len(top)


def reference_ties(graph, nodes):
    pairs = {}
    for i, u in enumerate(nodes):
        for j, v in enumerate(nodes):
            if u < 0 or v < 0 or i >= j:
                continue
            for e in range(graph.indptr[u], graph.indptr[u + 1]):
                if graph.indices[e] == v:
                    pairs[(i, j)] = graph.weights[e]
    return pairs


# --------------------------------------------------------------------- numbers in the page


def test_kpis_match_the_tables():
    j = job()
    data, page = report()
    p = Page(page)
    assert p.value("kpi-base") == data.base_size == len(j["scored"])
    active, churned = reference_window_churn(j["subs"], j["start"], j["as_of"])
    assert (data.window_active, data.window_churned) == (active, churned)
    assert p.value("kpi-window-active") == active and p.value("kpi-window-churned") == churned
    assert_allclose(p.value("kpi-window-churn"), churned / active, rtol=1e-5)
    assert churned > 0
    bands = reference_tenure(j["subs"], j["start"], j["as_of"])
    assert list(zip(data.churn_by_tenure["active"], data.churn_by_tenure["churned"])) == bands
    plans = data.churn_by_plan
    assert plans["active"].sum() == active and plans["churned"].sum() == churned
    size, kept = reference_cohort_final(j["subs"], j["start"], j["as_of"])
    assert p.value("kpi-cohort-size") == size
    assert_allclose(p.value("kpi-cohort-retention"), kept, rtol=1e-5)
    assert p.value("kpi-flagged") == j["circles"]["contagion"].sum()
    assert p.value("kpi-circles") == len(j["circles"])
    assert p.value("kpi-targets") == len(j["targets"])
    assert p.by_id["as-of"]["value"] == (dt.date(1970, 1, 1) + dt.timedelta(days=j["as_of"])).isoformat()


def test_beyond_chance_sentence_counts_the_circles_of_the_test():
    """The circles at p <= 0.001 are counted from the circles table; the expected count is
    the test's own (its p-value supports), and the words follow the ratio."""
    j = job()
    data, page = report()
    p = Page(page)
    seen = int((j["circles"]["p_value"] <= 0.001).sum())
    chance = j["beyond_chance"]["by_chance"][j["beyond_chance"]["p_at_most"].index(0.001)]
    assert p.value("beyond-chance-circles") == seen and p.value("beyond-chance-expected") == chance
    assert_allclose(p.value("beyond-chance"), seen / chance, rtol=1e-5)
    # per layer: the counts of the test's own circles of each layer
    layers = j["circles"]["layer"]
    for layer, counts in j["beyond_chance"]["by_layer"].items():
        assert p.value(f"beyond-chance-{layer}") == counts["circles"][1] == int(
            (j["circles"]["p_value"][layers == layer] <= 0.001).sum())
    assert sum(c["circles"][1] for c in j["beyond_chance"]["by_layer"].values()) == seen
    assert sum(c["by_chance"][1] for c in j["beyond_chance"]["by_layer"].values()) == pytest.approx(chance, abs=0.05)
    assert len(j["beyond_chance"]["by_layer"]) >= 3
    # the synthetic world plants contagion: far beyond chance, and the page says so
    assert seen / chance >= 1.5 and "times what chance gives" in p.by_id["beyond-chance"]["text"]
    for circles, by_chance, words in ((9, 10.0, "about what chance gives"), (0, 10.0, "fewer than chance"),
                                      (30, 10.0, "3.0 times"), (3, 1.0, "too few circles to tell"),
                                      (4, 10.0, "about what chance gives")):
        d = dataclasses.replace(data, beyond_chance={"p_at_most": [0.01, 0.001], "circles": [0, circles],
                                                      "by_chance": [0.0, by_chance]})
        assert words in Page(render_report(d)).by_id["beyond-chance"]["text"]
    assert "beyond-chance" not in Page(render_report(dataclasses.replace(data, beyond_chance=None))).by_id
    nothing = dataclasses.replace(data, n_tested=0, beyond_chance={"p_at_most": [0.001], "circles": [0], "by_chance": [0.0]})
    assert "beyond-chance" not in Page(render_report(nothing)).by_id


def test_flagged_circles_table_matches_circles():
    j = job()
    data, page = report()
    p = Page(page)
    circles = j["circles"].set_index("circle_id")
    flagged = circles[circles["contagion"]]
    assert len(flagged) >= 2, "the synthetic world should flag some circles"
    assert len(p.rows) == len(flagged) == p.value("flagged-count") == len(data.flagged)
    assert {r["circle_id"] for r in p.rows} == set(flagged.index)
    first = j["targets"].drop_duplicates("circle_id").set_index("circle_id")
    members = j["members"]
    priorities = []
    for row in p.rows:
        c = flagged.loc[row["circle_id"]]
        cell = {k: v for k, (v, _, _) in p.cells(row).items()}
        kind, size, active, churned = cell["kind"], cell["size"], cell["active_members"], cell["churned"]
        expected, q, offer, priority = cell["expected"], cell["q_value"], cell["offer"], cell["priority"]
        assert kind == c["kind"]
        assert (int(size), int(active), int(churned)) == (c["size"], c["active_members"], c["churned_recent"])
        assert_allclose([float(expected), float(q)], [c["expected_churn"], c["q_value"]], rtol=1e-5)
        has = row["circle_id"] in first.index
        assert offer == (first.loc[row["circle_id"], "offer"] if has else "")
        assert priority == (str(first.loc[row["circle_id"], "priority"]) if has else "")
        priorities.append(int(priority) if priority else np.inf)
        anchor = members[(members["circle_id"] == row["circle_id"]) & (members["role"] == "anchor")]
        want = mask_number(format_numbers(anchor["key"].to_numpy()).to_pylist()[0]) if len(anchor) else "-"
        assert p.cells(row)["anchor"][1] == want
    assert priorities == sorted(priorities), "rows are in priority order, uncontactable circles last"


def reference_trajectory(history, circle_id, as_of, churned_now):
    """(text, targeted before) of a circle, from the history rows one by one."""
    runs = sorted((r.as_of_day, r.churned_recent, r.targeted) for r in history.itertuples()
                  if r.circle_id == circle_id and r.as_of_day < as_of)
    values = [churned for _, churned, _ in runs] + [churned_now]
    return ("first run" if len(values) == 1 else " \u2192 ".join(map(str, values)),
            "yes" if any(t for _, _, t in runs) else "no")


def trajectories(page) -> dict:
    p = Page(page)
    return {row["circle_id"]: p.cells(row) for row in p.rows}


def test_trajectory_and_targeted_before_from_the_history():
    j = job()
    data, page = report()
    (a, b, c), _ = earlier_runs()
    hist = history()
    assert (hist["as_of_day"] == j["as_of"]).sum() == len(j["circles"]), "this run's rows are in the history"
    now = j["circles"].set_index("circle_id")["churned_recent"]
    cells = trajectories(page)
    assert len(cells) == len(data.flagged) >= 3
    # by hand: oldest first, this run last; a later run and this run's own targeting do not count
    assert cells[a]["trajectory"][1] == f"0 \u2192 1 \u2192 {now[a]}" and cells[a]["targeted_before"][1] == "yes"
    assert cells[b]["trajectory"][1] == f"3 \u2192 {now[b]}" and cells[b]["targeted_before"][1] == "no"
    assert cells[c]["trajectory"][1] == "first run" and cells[c]["targeted_before"][1] == "no"
    assert j["targets"]["circle_id"].isin([a, b, c]).any(), "some of them are targeted in this run"
    for cid, cell in cells.items():
        value, text, title = cell["trajectory"]
        assert (text, cell["targeted_before"][1]) == reference_trajectory(hist, cid, j["as_of"], now[cid])
        assert int(value) == now[cid] == int(cell["churned"][0]), "sorts by this run's churn"
        # the dates on hover, oldest first, ending with the as-of date
        days = [dt.datetime.strptime(d.split(":")[0].strip(), "%d %b %Y").date() for d in title.split(";")]
        assert days == sorted(days) and len(days) == text.count("\u2192") + 1
        assert days[-1] == dt.date(1970, 1, 1) + dt.timedelta(days=int(j["as_of"]))
    row = data.flagged.set_index("circle_id").loc[a]
    assert row["trajectory"] == ((j["as_of"] - 56, 0), (j["as_of"] - 28, 1), (j["as_of"], now[a]))
    assert_no_full_numbers(page)


def test_first_run_without_earlier_history():
    """No history, or only this run's rows: every flagged circle is on its first run and was never
    targeted before (being on this run's list does not count); ``circle_targeted_last_run`` on
    the target list does count."""
    j = job()
    only_now = history_rows(j["circles"], j["targets"], j["as_of"])
    assert only_now["targeted"].any()
    flagged_ids = j["circles"].loc[j["circles"]["contagion"], "circle_id"]
    last = flagged_ids[flagged_ids.isin(j["targets"]["circle_id"])].iloc[0]  # on last run's list
    marked = j["targets"].assign(circle_targeted_last_run=j["targets"]["circle_id"] == last)
    args = (j["graph"], j["subs"], j["scored"], j["circles"], j["members"])
    kw = dict(as_of_day=j["as_of"], window_start_day=j["start"], max_drawn=0)
    for targets, history_ in [(j["targets"], None), (j["targets"], only_now), (marked, None)]:
        flagged = report_inputs(*args, targets, history=history_, **kw).flagged
        assert len(flagged) >= 3 and all(len(runs) == 1 for runs in flagged["trajectory"])
        want = flagged["circle_id"].eq(last) if targets is marked else pd.Series(False, index=flagged.index)
        assert flagged["targeted_before"].tolist() == want.tolist()
    # the page of the last one (rendering is the slow part)
    cells = trajectories(render_report(report_inputs(*args, marked, **kw)))
    assert {cid: cell["trajectory"][1] for cid, cell in cells.items()} == dict.fromkeys(cells, "first run")
    assert {cid: cell["targeted_before"][1] for cid, cell in cells.items()} == {
        cid: "yes" if cid == last else "no" for cid in cells}


def test_drawings_show_the_ties_among_members():
    j = job()
    data, page = report()
    assert len(data.drawings) == min(6, len(data.flagged))
    assert [g.circle_id for g in data.drawings] == data.flagged["circle_id"].head(6).tolist()
    for g in data.drawings:
        mem = j["members"][j["members"]["circle_id"] == g.circle_id].reset_index(drop=True)
        assert len(g.nodes) == len(mem)  # small circles are drawn whole, in member order
        want = reference_ties(j["graph"], mem["node"].tolist())
        got = {(int(i), int(k)): w for i, k, w in g.edges[["i", "j", "weight"]].itertuples(index=False)}
        assert got.keys() == want.keys()
        assert_allclose([got[k] for k in want], [want[k] for k in want])
        assert g.nodes["churned"].sum() == mem["churned"].sum()
        assert (g.nodes["role"] == "anchor").sum() == (mem["role"] == "anchor").sum()
        assert f'data-circle-id="{g.circle_id}"' in page
    few, _ = report(max_drawn=1)
    assert len(few.drawings) == 1
    # members without graph ids (e.g. from Parquet): looked up in the graph, the same drawing
    again = report_inputs(j["graph"], j["subs"], j["scored"], j["circles"], j["members"].drop(columns="node"),
                          j["targets"], as_of_day=j["as_of"], window_start_day=j["start"], max_drawn=1)
    assert again.drawings[0].edges.equals(few.drawings[0].edges)


def test_weekly_timeline_against_member_churn():
    j = job()
    data, _ = report()
    t = data.timeline
    assert t["week_start"].iloc[-1] == j["as_of"] - 7 and (np.diff(t["week_start"]) == 7).all()
    on = j["members"][j["members"]["on_net"]]
    flagged_ids = set(j["circles"].loc[j["circles"]["contagion"], "circle_id"])
    fkeys = set(on.loc[on["circle_id"].isin(flagged_ids), "key"])
    day_of = dict(zip(j["subs"].key.tolist(), j["subs"].churn_day.tolist()))
    act_of = dict(zip(j["subs"].key.tolist(), j["subs"].activation_day.tolist()))
    for r in t.itertuples(index=False):
        d = r.week_start
        alive = [k for k in fkeys if k in day_of and act_of[k] < d <= day_of[k]]
        assert r.flagged_active == len(alive)
        assert r.flagged_churned == sum(day_of[k] < d + 7 for k in alive)
    okeys = set(on.loc[~on["circle_id"].isin(flagged_ids), "key"]) - fkeys
    last = t.iloc[-1]
    alive = [k for k in okeys if k in day_of and act_of[k] < last.week_start <= day_of[k]]
    assert (last.other_active, last.other_churned) == (len(alive), sum(day_of[k] < j["as_of"] for k in alive))


# --------------------------------------------------------------------- privacy and safety


def assert_no_full_numbers(page):
    j = job()
    assert not re.search(r"\d{11,}", page), "a run of 11+ digits"
    numbers = set(j["w"].op.subscribers.column("msisdn").to_pylist()) | set(j["graph"].nodes["msisdn"])
    numbers |= set(j["w"].op.truth["number_changes"].column("new_msisdn").to_pylist())
    assert len(numbers) > 3000
    assert not [n for n in numbers if n in page]


def test_no_full_phone_number_anywhere():
    j = job()
    data, page = report()
    assert_no_full_numbers(page)
    anchors = data.flagged.loc[data.flagged["anchor"] != "-", "anchor"]
    assert len(anchors) >= 1 and all(re.fullmatch(r"\d{3}\*{4}\d{4}", a) and a in page for a in anchors)
    # the frames handed to the page hold no number keys either
    keys = set(j["subs"].key.tolist()) | set(j["graph"].keys.tolist())
    for frame in [data.flagged, data.timeline, data.cohort, *[g.nodes for g in data.drawings]]:
        for col in frame.columns:
            if frame[col].dtype.kind in "iu":
                assert not keys & set(frame[col].tolist()), col


def test_page_is_self_contained():
    _, page = report()
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert not re.search(r"<(link|img|iframe|object|embed)\b|\bsrc=|@import|url\((?!#)", page, re.I)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    ids = re.findall(r'(?<![\w-])id="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "ids are unique across the inline figures"


def small_world(plan: str, contagion: bool):
    """Two subscribers and one declared circle, by hand."""
    t = pa.table({"msisdn": ["13800000001", "13800000002", "13800000003"],
                  "activation_date": pa.array([dt.date(2025, 1, 1)] * 3),
                  "churn_date": pa.array([dt.date(2026, 4, 20), None, None], pa.date32()),
                  "plan": [plan, plan, None], "arpu": [10.0, 20.0, 30.0]})
    subs = subscribers_from_arrow(t)
    k = subs.key
    g = build_call_graph(k[[0, 0]], k[[1, 2]], np.array([2.0, 1.0]), on_net_keys=k)
    scored = pd.DataFrame({"key": k[1:], "stickiness": [0.3, 0.7], "sticky_tenure": [0.2, 0.4],
                           "churn_risk": [0.1, 0.2]})
    cid = 'family:"<F&1>"'
    circles = pd.DataFrame({"circle_id": [cid], "kind": ["family"], "source": ["declared"], "size": [3],
                            "active_members": [2], "churned_recent": [1], "expected_churn": [0.1],
                            "p_value": [0.01], "q_value": [0.02], "contagion": [contagion], "window_days": [28]})
    members = pd.DataFrame({"circle_id": [cid] * 3, "kind": ["family"] * 3, "key": k, "node": g.ids_of(k),
                            "on_net": [True] * 3, "active": [False, True, True], "role": ["member", "anchor", "member"],
                            "influence": [1.0, 2.0, 0.5], "churned": [True, False, False],
                            "churn_day": [int(subs.churn_day[0]), -1, -1]})
    targets = pd.DataFrame({"priority": [1, 1], "circle_id": [cid] * 2, "kind": ["family"] * 2, "key": k[1:],
                            "role": ["anchor", "member"], "offer": ["family_bundle"] * 2})
    if not contagion:
        targets = targets.iloc[:0]
    day = 20574  # 2026-05-01
    return report_inputs(g, subs, scored, circles, members, targets, as_of_day=day, window_start_day=day - 28)


def test_strings_are_escaped():
    page = render_report(small_world("<script>alert(1)</script> & $5", contagion=True))
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; $5" in page
    assert 'data-circle-id="family:&quot;&lt;F&amp;1&gt;&quot;"' in page and "<F&1>" not in page
    assert page.count("<script>") == 1
    p = Page(page)
    assert len(p.rows) == 1 and p.rows[0]["circle_id"] == 'family:"<F&1>"'
    assert "138****0002" in page and "13800000002" not in page


def test_no_flagged_circle_says_so():
    data = small_world("Basic", contagion=False)
    page = render_report(data)
    p = Page(page)
    assert data.n_flagged == 0 and "no-flagged" in p.by_id and "circles" not in p.by_id
    assert "No circle is flagged" in page
    assert 'id="drawings"' not in page
    assert p.value("kpi-window-churned") == 1 and p.value("kpi-window-active") == 3


def test_window_boundaries():
    """Active at the window start = joined before it and not gone before it; churned in the
    window = gone in [start, as-of)."""
    as_of, start = dt.date(2026, 5, 1), dt.date(2026, 4, 3)
    joined = [dt.date(2025, 1, 1)] * 4 + [start, dt.date(2025, 1, 1)]
    gone = [start, as_of, as_of - dt.timedelta(days=1), start - dt.timedelta(days=1), None, None]
    subs = subscribers_from_arrow(pa.table({"msisdn": [f"1380000000{i}" for i in range(6)],
                                            "activation_date": pa.array(joined, pa.date32()),
                                            "churn_date": pa.array(gone, pa.date32())}))
    g = build_call_graph(subs.key[:1], subs.key[1:2], np.array([1.0]), on_net_keys=subs.key)
    empty = pd.DataFrame(columns=["circle_id", "kind", "contagion", "priority", "offer", "key", "role",
                                  "on_net", "churned", "active", "node"])
    day = lambda d: (d - dt.date(1970, 1, 1)).days  # noqa: E731
    data = report_inputs(g, subs, pd.DataFrame({"key": subs.key[[1, 4, 5]], "stickiness": [0.1, 0.2, 0.3]}),
                         empty, empty, empty, as_of_day=day(as_of), window_start_day=day(start))
    assert (data.window_active, data.window_churned) == (4, 2)
    # top 20 % of 4 -> 1; all ARPU 0, so the lowest key: the one gone on the start day
    assert (data.cohort_size, data.cohort["active"].iloc[0], data.cohort["active"].iloc[-1]) == (1, 1, 0)
    assert reference_window_churn(subs, day(start), day(as_of)) == (4, 2)


def test_bad_inputs_are_refused():
    j = job()
    args = (j["graph"], j["subs"], j["scored"], j["circles"], j["members"], j["targets"])
    with pytest.raises(ValueError, match="window_start_day"):
        report_inputs(*args, as_of_day=j["as_of"], window_start_day=j["as_of"])
    with pytest.raises(ValueError, match="scored lacks column"):
        report_inputs(j["graph"], j["subs"], j["scored"].drop(columns="stickiness"), *args[3:],
                      as_of_day=j["as_of"], window_start_day=j["start"])
    with pytest.raises(ValueError, match=r"circle_history lacks column\(s\) \['as_of_day'\]"):
        report_inputs(*args, as_of_day=j["as_of"], window_start_day=j["start"],
                      history=history().rename(columns={"as_of_day": "as_of"}))


# --------------------------------------------------------------------- back-test


def future_subscribers():
    """The subscriber table with the simulated churn after as-of written in (as a later run sees it)."""
    w = job()["w"]
    truth = w.op.truth["churn"].to_pandas()
    t = w.op.subscribers
    day_of = dict(zip(truth["msisdn"], truth["churn_date"]))
    dates = [day_of.get(m, d) for m, d in zip(t.column("msisdn").to_pylist(), t.column("churn_date").to_pylist())]
    t = t.set_column(t.column_names.index("churn_date"), "churn_date", pa.array(dates, pa.date32()))
    return subscribers_from_arrow(t, NUMBERS)


def test_backtest_section_shows_the_backtest():
    """The job's back-test dict (``socialgraph.backtest.backtest``) shown as it is: cards, the
    lift chart against tenure alone, the other figures in a table; missing figures as '-'."""
    j = job()
    bt = backtest(future_subscribers(), j["scored"], j["targets"], j["members"], j["circles"], j["as_of"], 28)
    assert bt is not None and bt["churned_after_as_of"] > 10
    bt = {**bt, "targets_lift": None}  # what the job writes when a figure cannot be computed
    data = report_inputs(j["graph"], j["subs"], j["scored"], j["circles"], j["members"], j["targets"],
                         as_of_day=j["as_of"], window_start_day=j["start"], backtest=bt, max_drawn=0)
    page = render_report(data)
    p = Page(page)
    for key in ("auc", "lift_at_10", "base_future_churn", "targets_future_churn", "tenure_only_auc"):
        if bt[key] is None:
            assert p.by_id["bt-" + key.replace("_", "-")]["value"] == ""
        else:
            assert_allclose(p.value("bt-" + key.replace("_", "-")), bt[key], rtol=1e-5)
    assert f"over the {bt['horizon_days']} days" in page
    assert 'id="fig-lift"' in page and "tenure alone" in page and "backtest-missing" not in p.by_id
    table = page[page.index('id="backtest-table"'):]
    assert "lift of the target list" in table and 'data-value="">-</td>' in table
    assert f'data-value="{bt["churned_after_as_of"]}"' in table
    assert "backtest-missing" in Page(report()[1]).by_id
    assert not re.search(r"\d{11,}", page)


# --------------------------------------------------------------------- the page in a browser

# Installed before the page's own script: every error or console.error is kept for the test.
_HOOK = """<script>window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
(function () { var ce = console.error; console.error = function () {
  window.__errors.push(Array.prototype.join.call(arguments, " ")); ce.apply(console, arguments); }; })();
</script>"""

# Run after the page's script: click headers like a user and write what the table shows.
_PROBE = """<script>(function () {
  var t = document.getElementById("circles"), out = {errors: window.__errors, sorts: {}};
  function column(key) {
    var ths = t.tHead.rows[0].cells, col = -1;
    for (var i = 0; i < ths.length; i++) { if (ths[i].getAttribute("data-key") === key) { col = i; } }
    return [col, Array.prototype.map.call(t.tBodies[0].rows, function (r) {
      return r.cells[col].getAttribute("data-value"); })];
  }
  ["q_value", "churned", "trajectory", "priority", "circle_id"].forEach(function (key) {
    var c = column(key), th = t.tHead.rows[0].cells[c[0]];
    th.click(); var up = column(key)[1], upSort = th.getAttribute("aria-sort");
    th.click(); var down = column(key)[1], downSort = th.getAttribute("aria-sort");
    out.sorts[key] = {up: up, down: down, upSort: upSort, downSort: downSort};
  });
  var pre = document.createElement("pre"); pre.id = "probe"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();</script>"""


def chromium_or_skip():
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing in CI (.ci/run installs Debian's chromium)")
    pytest.skip(f"{CHROMIUM} not installed")


def run_chromium(args, tmp_path):
    cmd = [chromium_or_skip(), "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
           "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_page_in_headless_chromium(tmp_path):
    _, page = report()
    head_end = page.index("<style>")
    probed = page[:head_end] + _HOOK + page[head_end:].replace("</body>", _PROBE + "</body>")
    path = tmp_path / "report.html"
    path.write_text(probed, encoding="utf-8")
    res = run_chromium(["--dump-dom", path.as_uri()], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln]
    assert not [ln for ln in console if "Uncaught" in ln or ":ERROR:CONSOLE" in ln], console
    dom = res.stdout
    probe = json.loads(Page(dom).by_id["probe"]["text"])
    assert probe["errors"] == []
    p = Page(dom)
    assert len(p.rows) == len(report()[0].flagged) >= 2
    assert p.svgs >= 5 + len(report()[0].drawings)  # tenure, plan, cohort, stickiness, time line, drawings
    for key, s in probe["sorts"].items():
        assert (s["upSort"], s["downSort"]) == ("ascending", "descending")
        present = [v for v in s["up"] if v]
        if key == "circle_id":
            assert present == sorted(present, key=str.lower)
            continue
        up = [float(v) for v in present]
        down = [float(v) for v in s["down"] if v]
        assert up == sorted(up) and down == sorted(down, reverse=True), (key, s)
        missing = len(s["up"]) - len(present)
        assert all(not v for v in s["up"][len(s["up"]) - missing:]), "empty values sort last"
        assert all(not v for v in s["down"][len(s["down"]) - missing:])


def test_screenshot_renders(tmp_path):
    """The screenshot path of ``benchmarks/report_screenshot.py`` works here (a PNG comes out)."""
    _, page = report()
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    png = tmp_path / "shot.png"
    res = run_chromium([f"--screenshot={png}", "--window-size=800,600", "--hide-scrollbars", path.as_uri()], tmp_path)
    assert res.returncode == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", res.stderr[-2000:]

"""The marketer report's page: its HTML sections and sort script (:func:`render_report`).

:func:`socialgraph.report.report_inputs` aggregates the job's tables into a
:class:`~socialgraph.report.ReportData`; this module only formats it. Every string from the data
is escaped here, and every key figure sits in the ``data-value`` attribute of an element with a
stable id (``#kpi-base``, ``#circles`` ...) so people and tests can check it against the Parquet
files. The page opens offline: CSS, JavaScript and figures (inline SVG; figures and style sheet
from :mod:`socialgraph.report_figures`) are in the file, and a Content-Security-Policy forbids
any request.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from . import report_figures as rf

if TYPE_CHECKING:  # the data module imports this one; the page only reads its fields
    from .report import ReportData

__all__ = ["render_report", "PAGE_JS"]

_KIND = {"family": "family", "vnet": "V-net", "social": "social"}
_COMPONENTS = {
    "sticky_tenure": "years on the number", "sticky_social": "people who reach them on it",
    "sticky_diversity": "spread over many contacts", "sticky_onnet": "ties on our network",
    "sticky_services": "services using the number", "sticky_group": "family plan or V-net",
    "sticky_balance": "remaining balance",
}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _e(s) -> str:
    return html.escape(str(s), quote=True)


def _v(x) -> str:
    """A ``data-value``: integers exact, floats to 6 significant digits, missing empty."""
    if x is None or x is pd.NA or (isinstance(x, float | np.floating) and not np.isfinite(x)):
        return ""
    if isinstance(x, bool | np.bool_):
        return "true" if x else "false"
    if isinstance(x, int | np.integer):
        return str(int(x))
    if isinstance(x, float | np.floating):
        return f"{float(x):.6g}"
    return _e(x)


def _pct(x, digits: int = 1) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{100 * x:.{digits + 1 if abs(x) < 0.01 else digits}f}%"


def _num(x, digits: int = 2) -> str:
    if x is None or x is pd.NA or not np.isfinite(float(x)):
        return "-"
    return f"{x:,}" if isinstance(x, int | np.integer) else f"{float(x):,.{digits}f}"


def _date(day: int) -> str:
    d = dt.date(1970, 1, 1) + dt.timedelta(days=int(day))
    return f"{d.day} {d:%b %Y}"


def _el(tag: str, id_: str, value, text: str) -> str:
    return f'<{tag} id="{id_}" data-value="{_v(value)}">{_e(text)}</{tag}>'


def _card(label: str, value_html: str, note_html: str = "") -> str:
    return (f'<div class="card"><span class="label">{_e(label)}</span>'
            f'<span class="big">{value_html}</span><span class="note">{note_html}</span></div>')


def _td(value, text: str | None = None) -> str:
    return f'<td class="n" data-value="{_v(value)}">{_e(_num(value) if text is None else text)}</td>'


def _table(id_: str, head: list[tuple[str, str, bool]], rows: list[str], sortable: bool = False) -> str:
    """``head``: (key, title, numeric) per column; the key is the header's ``data-key``."""
    cls = ' class="sortable"' if sortable else ""
    ths = "".join(f'<th scope="col" data-key="{_e(k)}"{" class=n" if n else ""}>{_e(t)}</th>' for k, t, n in head)
    return f'<table id="{id_}"{cls}><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _figure(svg: str, caption: str = "", after: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f"<figure>{svg}{cap}{after}</figure>"


def _rate_table(id_: str, frame: pd.DataFrame, label: str, name: str) -> str:
    rows = [f'<tr><td>{_e(getattr(r, label))}</td>{_td(int(r.active))}{_td(int(r.churned))}'
            f'{_td(r.rate, _pct(r.rate))}</tr>' for r in frame.itertuples(index=False)]
    return _table(id_, [(label, name, False), ("active", "active at start", True),
                        ("churned", "churned", True), ("rate", "churn rate", True)], rows)


def _header(d: ReportData) -> str:
    as_of = _el("b", "as-of", d.day(d.as_of_day), _date(d.as_of_day))
    start = _el("span", "window-start", d.day(d.window_start_day), _date(d.window_start_day))
    return (f'<header><h1>Retention report</h1><p>As of {as_of} &middot; look-back window {start} to '
            f'{_e(_date(d.as_of_day - 1))} ({d.as_of_day - d.window_start_day} days)</p>'
            f'<p>{_e(d.generated_by)}</p></header>')


def _kpis(d: ReportData) -> str:
    monthly = 1 - (1 - d.window_churn_rate) ** (30 / (d.as_of_day - d.window_start_day))
    final = d.cohort["share"].iloc[-1] if len(d.cohort) else float("nan")
    cards = "".join([
        _card("Subscribers (base)", _el("span", "kpi-base", d.base_size, _num(d.base_size)),
              "active at the as-of date"),
        _card("Churn in the window", _el("span", "kpi-window-churn", d.window_churn_rate, _pct(d.window_churn_rate)),
              f'{_el("span", "kpi-window-churned", d.window_churned, _num(d.window_churned))} of '
              f'{_el("span", "kpi-window-active", d.window_active, _num(d.window_active))} active at the start; '
              f'about {_e(_pct(monthly))} a month'),
        _card("High-value cohort retained", _el("span", "kpi-cohort-retention", final, _pct(final)),
              f'{_el("span", "kpi-cohort-size", d.cohort_size, _num(d.cohort_size))} subscribers, the top '
              f'{d.cohort_share:.0%} by ARPU at the window start (ARPU {_e(_num(d.cohort_min_arpu))} or more)'),
        _card("Flagged circles", _el("span", "kpi-flagged", d.n_flagged, _num(d.n_flagged)),
              f'of {_el("span", "kpi-tested", d.n_tested, _num(d.n_tested))} tested '
              f'({_el("span", "kpi-circles", d.n_circles, _num(d.n_circles))} circles)'),
        _card("Contacts on the target list", _el("span", "kpi-targets", d.n_targets, _num(d.n_targets)),
              "rows of targets.csv"),
    ])
    tenure, plans, cohort = d.churn_by_tenure, d.churn_by_plan, d.cohort
    cohort_rows = [f'<tr><td data-value="{d.day(r.day)}">{_e(_date(r.day))}</td>{_td(int(r.active))}'
                   f'{_td(r.share, _pct(r.share))}</tr>' for r in cohort.itertuples(index=False)]
    low = min(0.9, float(cohort["share"].min()) - 0.01) if len(cohort) else 0.0
    figs = [
        _figure(rf.bar_svg(tenure["band"], tenure["rate"], name="fig-tenure",
                           title="Churn by tenure at the window start"),
                "Tenure on the number at the window start: operators see new subscribers at 3-9 months churn most.",
                _rate_table("tenure-churn", tenure, "band", "tenure")),
        _figure(rf.bar_svg(plans["plan"], plans["rate"], name="fig-plan", horizontal=True, height=2.6,
                           title="Churn by plan"),
                "Churn in the window by tariff plan, largest plans first.",
                _rate_table("plan-churn", plans, "plan", "plan")),
        _figure(rf.line_svg(cohort["day"], {"still active": cohort["share"]}, name="fig-cohort", dates=True,
                            ylim=(low, 1.005), title="High-value snapshot cohort: share still active"),
                f"The top {d.cohort_share:.0%} by ARPU among subscribers active at the window start, followed week "
                "by week.", '<details><summary>Cohort week by week</summary>' + _table(
                    "cohort", [("day", "date", False), ("active", "still active", True), ("share", "share", True)],
                    cohort_rows) + "</details>"),
    ]
    return (f'<section id="kpis"><h2>Headline KPIs</h2><div class="cards">{cards}</div>'
            f'<div class="grid">{"".join(figs)}</div></section>')


_FLAGGED_HEAD = [("circle_id", "circle", False), ("kind", "kind", False), ("source", "source", False),
                 ("size", "size", True), ("active_members", "active", True), ("churned", "churned", True),
                 ("trajectory", "trajectory", True), ("expected", "expected", True), ("q_value", "q\u2011value", True),
                 ("offer", "offer", False), ("targeted_before", "targeted before", False),
                 ("anchor", "anchor", False), ("priority", "priority", True)]


def _trajectory(runs: tuple) -> str:
    """Churned members at each run, oldest first; sorts by this run's value, dates on hover."""
    text = "first run" if len(runs) < 2 else " \u2192 ".join(str(c) for _, c in runs)
    dates = "; ".join(f"{_date(day)}: {c} churned" for day, c in runs)
    return f'<td class="n" data-value="{_v(runs[-1][1])}" title="{_e(dates)}">{_e(text)}</td>'


def _flagged(d: ReportData) -> str:
    intro = (f'<p class="note">Circles whose churn in the last {d.contagion_window_days} days is well above what '
             f"their members' own profiles predict, and still rising (q-value: the expected share of false alarms "
             f'among circles flagged at that level). Trajectory: churned members as each run saw them, oldest first '
             f'(hover for the dates); targeted before: on an earlier run\'s target list. Click a column to sort. '
             f'The contact list is targets.csv.</p>') + _beyond_chance(d)
    if d.flagged.empty:
        return (f'<section id="flagged"><h2>Flagged circles</h2>{intro}<p id="no-flagged" data-value="0">'
                f"<b>No circle is flagged in this run.</b> No circle's recent churn stands out from its members' "
                f'baseline risk, so there is no circle to approach.</p></section>')
    rows = []
    for r in d.flagged.itertuples(index=False):
        pri = None if r.priority is pd.NA else int(r.priority)
        offer = "" if r.offer == "-" else r.offer
        q = "<0.001" if r.q_value < 0.001 else f"{r.q_value:.3f}"
        rows.append(
            f'<tr data-circle-id="{_e(r.circle_id)}"><td>{_e(r.circle_id)}</td>'
            f'<td data-value="{_e(r.kind)}">{_e(_KIND.get(r.kind, r.kind))}</td><td>{_e(r.source)}</td>'
            f'{_td(int(r.size))}{_td(int(r.active_members))}{_td(int(r.churned))}{_trajectory(r.trajectory)}'
            f'{_td(r.expected, _num(r.expected))}{_td(r.q_value, q)}<td data-value="{_e(offer)}">{_e(r.offer)}</td>'
            f'<td>{"yes" if r.targeted_before else "no"}</td><td>{_e(r.anchor)}</td>'
            f'{_td(pri, "-" if pri is None else str(pri))}</tr>')
    count = f'<span id="flagged-count" data-value="{len(rows)}">{len(rows)}</span>'
    return (f'<section id="flagged"><h2>Flagged circles ({count})</h2>{intro}<div class="scroll">'
            f'{_table("circles", _FLAGGED_HEAD, rows, sortable=True)}</div></section>')


#: the contagion test's layers (:func:`socialgraph.layers.circle_layer`) as the report names them
_LAYER_LABEL = {"family": "family circles", "vnet": "V-nets", "work": "work circles", "social": "friends' circles"}


def _beyond_chance(d: ReportData) -> str:
    """One sentence: how many circles reached p <= 0.001 against how many chance puts there."""
    bc = d.beyond_chance
    if not bc or 0.001 not in bc.get("p_at_most", []) or d.n_tested == 0:  # nothing was tested
        return ""
    i = bc["p_at_most"].index(0.001)
    seen, chance = int(bc["circles"][i]), float(bc["by_chance"][i])
    ratio = seen / chance if chance > 0 else (float("inf") if seen else 1.0)
    # a few circles prove nothing either way: the words need the count to be far out in the
    # Poisson tail of what chance gives (strictly: overlapping circles make it overdispersed)
    more = stats.poisson.sf(seen - 1, chance) if chance > 0 else float(seen == 0)
    fewer = stats.poisson.cdf(seen, chance) if chance > 0 else 1.0
    if ratio >= 1.5 and more < 0.001:
        times = "many" if not np.isfinite(ratio) else f"{ratio:.1f}"
        verdict = f"{times} times what chance gives. People leave together: churn clusters in circles."
    elif ratio >= 1.5:
        verdict = "more than chance gives, but too few circles to tell."
    elif ratio < 2 / 3 and fewer < 0.001:
        verdict = ("fewer than chance: the members' baseline risks look set too high, and the test is more "
                   "cautious than its q-values say.")
    else:
        verdict = "about what chance gives: churn does not cluster in circles beyond the members' own risks."
    kinds = []
    for layer, label in _LAYER_LABEL.items():
        sub = (bc.get("by_layer") or {}).get(layer)
        if sub:
            n, c = int(sub["circles"][i]), float(sub["by_chance"][i])
            kinds.append(f'{label} {_el("span", f"beyond-chance-{layer}", n, _num(n))} against {_e(_num(c, 1))}')
    by_kind = f' By kind of circle: {", ".join(kinds)}.' if kinds else ""
    return (f'<p id="beyond-chance" class="note" data-value="{_v(ratio)}">Beyond chance: '
            f'{_el("span", "beyond-chance-circles", seen, _num(seen))} of the {_e(_num(d.n_tested))} tested circles '
            f"lost members at p &le; 0.001, where churn at each member's own baseline risk, independent of the "
            f'others, would put about {_el("span", "beyond-chance-expected", chance, _num(chance, 1))}: '
            f'{_e(verdict)}{by_kind}</p>')


def _drawings(d: ReportData) -> str:
    if not d.drawings:
        return ""
    figs = []
    for k, g in enumerate(d.drawings):
        shown = "" if len(g.nodes) == g.size else f" ({len(g.nodes)} drawn)"
        alone = len(g.nodes) - len(np.union1d(g.edges["i"], g.edges["j"]))
        alone = f" {alone} without a tie to the others (bottom)." if alone and len(g.edges) else ""
        svg = rf.circle_svg(g.nodes, g.edges, name=f"fig-circle-{k + 1}", title=g.circle_id)
        figs.append(f'<figure data-circle-id="{_e(g.circle_id)}">{svg}<figcaption>{_e(_KIND.get(g.kind, g.kind))} '
                    f'circle ({_e(g.source)}), {g.size} members{_e(shown)}: {g.churned} churned vs '
                    f'{_num(g.expected)} expected.{alone}</figcaption></figure>')
    return (f'<section id="drawings"><h2>The top {len(figs)} flagged circles</h2>{rf.legend_html()}'
            f'<div class="grid drawings">{"".join(figs)}</div></section>')


def _stickiness(d: ReportData) -> str:
    rows = [f'<tr><td>{_e(r.component.removeprefix("sticky_"))}</td><td>{_e(_COMPONENTS.get(r.component, ""))}</td>'
            f'<td class="n" data-value="{_v(r.mean)}"><span class="bar" style="width:'
            f'{max(0.0, min(1.0, r.mean)) * 5:.2f}rem"></span>{_num(r.mean)}</td></tr>'
            for r in d.components.itertuples(index=False)]
    svg = rf.histogram_svg(d.stickiness_counts, d.stickiness_edges, name="fig-stickiness",
                           title="Stickiness of the base", xlabel="stickiness (0 = cheap to give up, 1 = a moat)")
    mean = _el("span", "stickiness-mean", d.stickiness_mean, _num(d.stickiness_mean))
    table = _table("sticky-components", [("component", "component", False), ("meaning", "meaning", False),
                                         ("mean", "mean", True)], rows)
    return (f'<section id="stickiness"><h2>Number stickiness</h2><div class="grid">'
            f'{_figure(svg, f"Mean {mean}: how costly it would be to give up the number.")}'
            f'<div><h3>Components (mean over the base)</h3>{table}</div></div></section>')


#: the back-test figures shown as cards / in the table, with their labels (rates shown as %)
_BACKTEST_CARDS = {"auc": "AUC of churn risk", "lift_at_10": "Lift in the top 10 %",
                   "base_future_churn": "Future churn, whole base", "targets_future_churn": "Future churn, targeted",
                   "tenure_only_auc": "AUC of tenure alone"}
_BACKTEST_ROWS = {"scored": "subscribers scored", "churned_after_as_of": "of them churned in the horizon",
                  "tenure_only_lift_at_10": "lift in the top 10 %, tenure alone",
                  "targets": "targeted members (on-net)", "targets_lift": "lift of the target list",
                  "flagged_members_future_churn": "future churn, members of flagged circles",
                  "other_circle_members_future_churn": "future churn, members of other circles"}


def _bt_text(key: str, v) -> str:
    if v is None or isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
        return "-" if v is None or isinstance(v, int | float) else str(v)
    if key.endswith("churn"):
        return _pct(v)
    if "lift" in key:
        return f"{v:.2f}x"
    return f"{v:.3f}" if key.endswith("auc") else _num(v, 4)


def _backtest(d: ReportData) -> str:
    b = d.backtest
    if not b:
        return ('<section id="backtest"><h2>Back-test</h2><p id="backtest-missing" class="note">The back-test appears '
                'when the data extend past the as-of date: run again with an earlier <code>--as-of</code>, so that '
                'churn after it is known, to see how well the churn risk ranked who actually left.</p></section>')
    cards = "".join(_card(label, _el("span", "bt-" + k.replace("_", "-"), b[k], _bt_text(k, b[k])))
                    for k, label in _BACKTEST_CARDS.items() if k in b)
    rows = [f'<tr><td>{_e(_BACKTEST_ROWS.get(k, k))}</td>{_td(v, _bt_text(k, v))}</tr>' for k, v in b.items()
            if k not in _BACKTEST_CARDS and k != "horizon_days" and (v is None or isinstance(v, int | float))]
    parts = []
    curve = b.get("lift_curve")
    if isinstance(curve, dict) and curve.get("share"):
        series = {"churn risk": curve["lift"]}
        tenure = curve.get("tenure_only") or (b.get("tenure_only_lift_curve") or {}).get("lift")
        if tenure:
            series["tenure alone"] = tenure
        svg = rf.line_svg(curve["share"], series, name="fig-lift", percent=False, xpercent=True, reference=1.0,
                          title="Lift by top share of the ranking", xlabel="top share contacted", ylabel="lift")
        parts.append(_figure(svg, "Lift: the churn rate in the top share of the ranking over the base rate "
                                  "(1 = no better than random)."))
    if rows:
        parts.append(_table("backtest-table", [("name", "figure", False), ("value", "value", True)], rows))
    horizon = f" over the {_e(b['horizon_days'])} days after the as-of date" if "horizon_days" in b else ""
    return (f'<section id="backtest"><h2>Back-test{horizon}</h2><div class="cards">{cards}</div>'
            f'<div class="grid">{"".join(parts)}</div></section>')


_TIMELINE_HEAD = [("week_start", "week from", False), ("flagged_active", "flagged: active", True),
                  ("flagged_churned", "churned", True), ("flagged_rate", "rate", True),
                  ("other_active", "other circles: active", True), ("other_churned", "churned", True),
                  ("other_rate", "rate", True)]


def _timeline(d: ReportData) -> str:
    t = d.timeline
    if t.empty:
        return ""
    rows = [f'<tr><td data-value="{d.day(r.week_start)}">{_e(_date(r.week_start))}</td>{_td(int(r.flagged_active))}'
            f'{_td(int(r.flagged_churned))}{_td(r.flagged_rate, _pct(r.flagged_rate, 2))}{_td(int(r.other_active))}'
            f'{_td(int(r.other_churned))}{_td(r.other_rate, _pct(r.other_rate, 2))}</tr>'
            for r in t.itertuples(index=False)]
    svg = rf.line_svg(t["week_start"], {"members of flagged circles": t["flagged_rate"],
                                        "members of other circles": t["other_rate"]},
                      name="fig-timeline", dates=True, title="Weekly churn rate of circle members",
                      ylabel="churned that week")
    caption = ("On-net members, by the week their number left. Flagged circles were chosen for their recent churn, "
               "so their last weeks are high by construction; the earlier weeks show whether it was building up.")
    return (f'<section id="timeline"><h2>Contagion time line</h2>{_figure(svg, caption)}<details><summary>Week by '
            f'week</summary>{_table("timeline-table", _TIMELINE_HEAD, rows)}</details></section>')


def render_report(data: ReportData) -> str:
    """The report as one self-contained HTML document (no external requests, prints cleanly).

    ``data`` comes from :func:`socialgraph.report.report_inputs` (also importable from there).

    >>> import pyarrow as pa
    >>> from socialgraph.graph import build_call_graph
    >>> from socialgraph.report import report_inputs
    >>> from socialgraph.subscribers import subscribers_from_arrow
    >>> subs = subscribers_from_arrow(pa.table({"msisdn": ["13800000001", "13800000002"],
    ...     "activation_date": pa.array([dt.date(2025, 1, 1)] * 2)}))
    >>> g = build_call_graph(subs.key[:1], subs.key[1:], np.array([1.0]), on_net_keys=subs.key)
    >>> scored = pd.DataFrame({"key": subs.key, "stickiness": [0.2, 0.6]})
    >>> circles = pd.DataFrame({"circle_id": ["fam-1"], "kind": "family", "source": "declared", "size": 2,
    ...     "active_members": 1, "churned_recent": 1, "expected_churn": 0.1, "q_value": 0.01, "contagion": True})
    >>> members = pd.DataFrame({"circle_id": "fam-1", "key": subs.key, "role": ["anchor", "member"],
    ...                         "on_net": True, "churned": [False, True], "active": [True, False]})
    >>> targets = pd.DataFrame({"circle_id": ["fam-1"], "priority": [1], "offer": ["family_bundle"]})
    >>> history = pd.DataFrame({"as_of_day": [20546, 20574], "circle_id": "fam-1",
    ...                         "churned_recent": [0, 1], "targeted": [True, True]})
    >>> page = render_report(report_inputs(g, subs, scored, circles, members, targets, as_of_day=20574,
    ...                                    window_start_day=20546, history=history, max_drawn=0))
    >>> page.startswith("<!doctype html>") and 'id="kpi-base" data-value="2"' in page
    True
    >>> "0 \u2192 1</td>" in page, "<td>yes</td>" in page  # trajectory; targeted by the earlier run
    (True, True)
    """
    body = "".join([_kpis(data), _flagged(data), _drawings(data), _stickiness(data), _backtest(data),
                    _timeline(data)])
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<title>Retention report, as of {_e(data.day(data.as_of_day))}</title><style>{rf.PAGE_CSS}</style>'
            f'</head><body>{_header(data)}<main>{body}</main><footer>Phone numbers are masked (first 3 and last 4 '
            f'digits); drawings carry no labels. Full numbers are only in targets.csv.</footer>'
            f'<script>{PAGE_JS}</script></body></html>\n')


#: click-to-sort for ``table.sortable``: by ``data-value`` when a cell has one (numbers sort as
#: numbers), else by text; empty values last in both directions; stable. ``socialgraphSort``
#: is exposed so the sort can be driven (and tested) without a mouse.
PAGE_JS = """
(function () {
  "use strict";
  function key(row, col) {
    var cell = row.cells[col];
    var v = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
    if (v === "" || v === "-") { return {missing: true}; }
    var x = Number(v);
    return isNaN(x) ? {text: v.toLowerCase()} : {num: x};
  }
  function compare(a, b) {
    if (a.num !== undefined && b.num !== undefined) { return a.num - b.num; }
    if (a.num !== undefined) { return -1; }
    if (b.num !== undefined) { return 1; }
    return a.text < b.text ? -1 : (a.text > b.text ? 1 : 0);
  }
  function sortTable(table, col, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (r, i) { return {r: r, i: i, k: key(r, col)}; });
    var sign = descending ? -1 : 1;
    rows.sort(function (x, y) {
      if (x.k.missing || y.k.missing) {
        return (x.k.missing ? 1 : 0) - (y.k.missing ? 1 : 0) || x.i - y.i;
      }
      return sign * compare(x.k, y.k) || x.i - y.i;
    });
    rows.forEach(function (x) { body.appendChild(x.r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (i === col) { th.setAttribute("aria-sort", descending ? "descending" : "ascending"); }
      else { th.removeAttribute("aria-sort"); }
    });
  }
  window.socialgraphSort = sortTable;
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.tabIndex = 0;
      function go() { sortTable(table, col, th.getAttribute("aria-sort") === "ascending"); }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); }
      });
    });
  });
})();
"""

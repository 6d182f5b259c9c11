"""The marketer report: one self-contained HTML page (``report.html``).

:func:`report_inputs` aggregates the job's tables into a :class:`ReportData` (plain numbers and
small tables, no phone numbers: anchors are masked, drawings carry no numbers at all);
:func:`render_report` turns it into the page (figures, style and script:
:mod:`socialgraph.report_figures`). The page opens offline: CSS, JavaScript and figures (inline
SVG) are in the file, and a Content-Security-Policy forbids any request. Key figures sit in
``data-value`` attributes of elements with stable ids (``#kpi-base``, ``#circles`` ...) so
people and tests can check them against the Parquet files.
:func:`socialgraph.backtest.backtest` computes the optional back-test section (when the
subscriber table knows churn after the as-of date).
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import pandas as pd

from . import report_figures as rf
from .contagion import TENURE_BANDS
from .graph import CallGraph
from .numbers import format_numbers, mask_number
from .report_figures import CircleDrawing
from .subscribers import Subscribers

__all__ = ["CircleDrawing", "ReportData", "report_inputs", "render_report"]

TENURE_LABELS = ("0-3 months", "3-9 months", "9-24 months", "24+ months")
#: plans shown by name in the churn-by-plan chart; the rest are one "other plans" bar
TOP_PLANS = 8
#: share of the base, by ARPU, in the high-value snapshot cohort
COHORT_SHARE = 0.2
STICKINESS_BINS = 20

_FLAGGED_COLUMNS = ("circle_id", "kind", "source", "size", "active_members", "churned",
                    "expected", "q_value", "offer", "anchor", "priority")


@dataclass(frozen=True, kw_only=True, eq=False)
class ReportData:
    """Everything the report shows, already aggregated (no phone numbers anywhere).

    Rates are fractions in [0, 1]; days are day numbers (days since 1970-01-01).
    ``churn_by_tenure`` / ``churn_by_plan``: ``band`` or ``plan``, ``active`` (at the window
    start), ``churned`` (in the window), ``rate``. ``cohort``: ``day, active, share`` of the
    high-value snapshot cohort. ``flagged``: one row per flagged circle in priority order
    (``priority`` is ``<NA>`` for a circle with nobody to contact), ``anchor`` masked.
    ``timeline``: per week, ``week_start`` and ``active``/``churned``/``rate`` of on-net
    members of flagged circles (``flagged_*``) and of other circles (``other_*``).
    """

    as_of_day: int
    window_start_day: int
    generated_by: str
    base_size: int
    window_active: int
    window_churned: int
    window_churn_rate: float
    churn_by_tenure: pd.DataFrame
    churn_by_plan: pd.DataFrame
    cohort: pd.DataFrame
    cohort_size: int
    cohort_min_arpu: float
    n_circles: int
    n_tested: int
    n_flagged: int
    n_targets: int
    contagion_window_days: int
    flagged: pd.DataFrame
    drawings: tuple[CircleDrawing, ...]
    stickiness_counts: np.ndarray
    stickiness_edges: np.ndarray
    stickiness_mean: float
    components: pd.DataFrame
    timeline: pd.DataFrame
    backtest: dict | None = None

    def day(self, day: int) -> str:
        """A day number as an ISO date."""
        return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat()


def _check_frame(frame: pd.DataFrame, name: str, required) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"report_inputs: {name} lacks column(s) {missing}; pass the job's {name} table")


def _rates(labels, active: np.ndarray, churned: np.ndarray, name: str) -> pd.DataFrame:
    active = np.asarray(active, np.int64)
    churned = np.asarray(churned, np.int64)
    rate = np.divide(churned, active, out=np.full(active.size, np.nan), where=active > 0)
    return pd.DataFrame({name: list(labels), "active": active, "churned": churned, "rate": rate})


def _churn_tables(subs: Subscribers, start: int, as_of: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    active = subs.active_at(start)
    churned = active & (subs.churn_day < as_of)
    band = np.searchsorted(np.asarray(TENURE_BANDS), start - subs.activation_day, side="right")
    tenure = _rates(TENURE_LABELS, np.bincount(band[active], minlength=4),
                    np.bincount(band[churned], minlength=4), "band")
    plan = pd.Series(subs.plan, dtype=object).fillna("(no plan)").astype(str).to_numpy(dtype=object)
    counts = pd.DataFrame({"plan": plan[active], "churned": churned[active]}).groupby("plan", sort=True)["churned"]
    by_plan = pd.DataFrame({"active": counts.size(), "churned": counts.sum()})
    by_plan = by_plan.sort_values("active", ascending=False, kind="stable")
    top, rest = by_plan.iloc[:TOP_PLANS], by_plan.iloc[TOP_PLANS:]
    labels = list(top.index)
    act, chu = top["active"].tolist(), top["churned"].tolist()
    if len(rest):
        labels.append(f"other plans ({len(rest)})")
        act.append(int(rest["active"].sum()))
        chu.append(int(rest["churned"].sum()))
    return tenure, _rates(labels, np.array(act, np.int64), np.array(chu, np.int64), "plan")


def _cohort(subs: Subscribers, start: int, as_of: int) -> tuple[pd.DataFrame, float]:
    rows = np.flatnonzero(subs.active_at(start))
    size = int(np.ceil(COHORT_SHARE * rows.size))
    # top ARPU first, ties broken by number key so the cohort is the same every run
    order = np.lexsort((subs.key[rows], -subs.arpu[rows]))
    cohort = rows[order[:size]]
    days = np.arange(start, as_of + 1, 7, dtype=np.int64)
    if days[-1] != as_of:
        days = np.append(days, as_of)
    left = np.sort(subs.churn_day[cohort])
    still = cohort.size - np.searchsorted(left, days, side="left")
    share = still / cohort.size if cohort.size else np.full(days.size, np.nan)
    min_arpu = float(subs.arpu[cohort].min()) if cohort.size else float("nan")
    return pd.DataFrame({"day": days, "active": still.astype(np.int64), "share": share}), min_arpu


def _weekly_churn(rows: np.ndarray, subs: Subscribers, weeks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    act = np.array([int(((subs.activation_day[rows] < d) & (subs.churn_day[rows] >= d)).sum()) for d in weeks])
    gone = np.array([int(((subs.churn_day[rows] >= d) & (subs.churn_day[rows] < d + 7)).sum()) for d in weeks])
    return act.astype(np.int64), gone.astype(np.int64)


def _weekly_churn_of_circles(members: pd.DataFrame, flagged_ids, subs: Subscribers, start: int,
                             as_of: int) -> pd.DataFrame:
    weeks = np.arange(as_of - 7 * ((as_of - start) // 7), as_of, 7, dtype=np.int64)
    rows = pd.Index(subs.key).get_indexer(members["key"].to_numpy(np.int64))
    ours = members["on_net"].to_numpy(bool) & (rows >= 0)
    flagged = members["circle_id"].isin(flagged_ids).to_numpy()
    # a person in a flagged and in another circle counts once, with the flagged
    in_flagged = np.zeros(len(subs), bool)
    in_flagged[rows[ours & flagged]] = True
    in_other = np.zeros(len(subs), bool)
    in_other[rows[ours & ~flagged]] = True
    in_other &= ~in_flagged
    out = {"week_start": weeks}
    for name, group in (("flagged", in_flagged), ("other", in_other)):
        act, gone = _weekly_churn(np.flatnonzero(group), subs, weeks)
        out[f"{name}_active"], out[f"{name}_churned"] = act, gone
        out[f"{name}_rate"] = np.divide(gone, act, out=np.full(act.size, np.nan), where=act > 0)
    return pd.DataFrame(out)


def _masked(keys: np.ndarray) -> list[str]:
    return [mask_number(s) for s in format_numbers(np.asarray(keys, np.int64)).to_pylist()]


def _flagged_table(circles: pd.DataFrame, members: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    flagged = circles[circles["contagion"].to_numpy(bool)]
    first = targets.drop_duplicates("circle_id", keep="first").set_index("circle_id")
    is_anchor = (members["role"] == "anchor").to_numpy(bool)
    anchors = members[is_anchor & members["circle_id"].isin(flagged["circle_id"]).to_numpy()]
    anchors = anchors.drop_duplicates("circle_id")
    anchor_of = dict(zip(anchors["circle_id"], _masked(anchors["key"].to_numpy())))
    ids = flagged["circle_id"].astype(str)
    table = pd.DataFrame({
        "circle_id": ids.to_numpy(dtype=object),
        "kind": flagged["kind"].astype(str).to_numpy(dtype=object),
        "source": flagged["source"].astype(str).to_numpy(dtype=object),
        "size": flagged["size"].to_numpy(np.int64),
        "active_members": flagged["active_members"].to_numpy(np.int64),
        "churned": flagged["churned_recent"].to_numpy(np.int64),
        "expected": flagged["expected_churn"].to_numpy(np.float64),
        "q_value": flagged["q_value"].to_numpy(np.float64),
        "offer": [str(first["offer"].get(c, "-")) for c in ids],
        "anchor": [anchor_of.get(c, "-") for c in ids],
        "priority": pd.array([first["priority"].get(c, pd.NA) for c in ids], dtype="Int64"),
    })
    # contactable circles by priority; the rest after them, strongest evidence first
    table["_p"] = table["priority"].fillna(np.iinfo(np.int64).max).astype(np.int64)
    table = table.sort_values(["_p", "q_value", "circle_id"], kind="stable").drop(columns="_p")
    return table.reset_index(drop=True)[list(_FLAGGED_COLUMNS)]


def report_inputs(graph: CallGraph, subs: Subscribers, scored: pd.DataFrame, circles: pd.DataFrame,
                  members: pd.DataFrame, targets: pd.DataFrame, *, as_of_day: int, window_start_day: int,
                  backtest: dict | None = None, max_drawn: int = 6) -> ReportData:
    """Aggregate the job's tables into what the report shows.

    Parameters
    ----------
    graph, subs : the call graph and the subscribers of the run
    scored : one row per subscriber active at as-of (``key, stickiness, sticky_*`` ...)
    circles, members : the circles stage's tables (after the contagion test)
    targets : the contact list (``priority, circle_id, offer`` ...), in its own order
    as_of_day, window_start_day : day numbers of the as-of date and of the look-back start
    backtest : optional, :func:`socialgraph.backtest.backtest`'s result (None: the section says
        how to get one)
    max_drawn : how many of the top flagged circles get a drawing

    Examples
    --------
    >>> import pyarrow as pa
    >>> from socialgraph.graph import build_call_graph
    >>> from socialgraph.subscribers import subscribers_from_arrow
    >>> subs = subscribers_from_arrow(pa.table({
    ...     "msisdn": ["13800000001", "13800000002"],
    ...     "activation_date": pa.array([dt.date(2025, 1, 1)] * 2),
    ...     "churn_date": pa.array([dt.date(2026, 4, 20), None], pa.date32())}))
    >>> k = subs.key
    >>> g = build_call_graph(k[:1], k[1:], np.array([1.0]), on_net_keys=k)
    >>> scored = pd.DataFrame({"key": k[1:], "stickiness": [0.5], "sticky_tenure": [0.4]})
    >>> empty = pd.DataFrame(columns=["circle_id", "kind", "contagion", "priority", "offer", "key",
    ...                               "role", "on_net", "churned", "active", "node"])
    >>> data = report_inputs(g, subs, scored, empty, empty, empty,
    ...                      as_of_day=20574, window_start_day=20574 - 28)
    >>> data.base_size, data.window_churned, round(data.window_churn_rate, 2), data.n_flagged
    (1, 1, 0.5, 0)
    """
    _check_frame(scored, "scored", ("key", "stickiness"))
    _check_frame(circles, "circles", ("circle_id", "kind", "contagion"))
    _check_frame(members, "members", ("circle_id", "key", "role", "on_net", "churned", "active"))
    _check_frame(targets, "targets", ("circle_id", "priority", "offer"))
    as_of, start = int(as_of_day), int(window_start_day)
    if start >= as_of:
        raise ValueError(f"report_inputs: window_start_day ({start}) must be before as_of_day ({as_of})")
    if max_drawn < 0:
        raise ValueError(f"report_inputs: max_drawn must be >= 0, got {max_drawn}")

    active = subs.active_at(start)
    churned = active & (subs.churn_day < as_of)
    tenure, by_plan = _churn_tables(subs, start, as_of)
    cohort, min_arpu = _cohort(subs, start, as_of)
    flagged = _flagged_table(circles, members, targets) if len(circles) else \
        pd.DataFrame({c: [] for c in _FLAGGED_COLUMNS})
    if "node" not in members.columns:
        members = members.assign(node=graph.ids_of(members["key"].to_numpy(np.int64)))
    drawings = []
    for _, row in flagged.head(max_drawn).iterrows():
        drawings.append(rf.circle_drawing(graph, row, members[members["circle_id"] == row["circle_id"]]))
    stick = scored["stickiness"].to_numpy(np.float64)
    counts, edges = np.histogram(stick[np.isfinite(stick)], bins=STICKINESS_BINS, range=(0.0, 1.0))
    comp = [c for c in scored.columns if str(c).startswith("sticky_")]
    window_days = circles["window_days"].iloc[0] if "window_days" in circles.columns and len(circles) else 0
    try:
        version = metadata.version("socialgraph")
    except metadata.PackageNotFoundError:
        version = "(development)"
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    return ReportData(
        as_of_day=as_of, window_start_day=start,
        generated_by=f"Generated by socialgraph {version} on {today}",
        base_size=len(scored),
        window_active=int(active.sum()), window_churned=int(churned.sum()),
        window_churn_rate=float(churned.sum() / active.sum()) if active.any() else float("nan"),
        churn_by_tenure=tenure, churn_by_plan=by_plan, cohort=cohort,
        cohort_size=int(cohort["active"].iloc[0]) if len(cohort) else 0, cohort_min_arpu=min_arpu,
        n_circles=len(circles),
        n_tested=int(circles["p_value"].notna().sum()) if "p_value" in circles.columns else 0,
        n_flagged=len(flagged), n_targets=len(targets), contagion_window_days=int(window_days),
        flagged=flagged, drawings=tuple(drawings),
        stickiness_counts=counts, stickiness_edges=edges,
        stickiness_mean=float(np.nanmean(stick)) if stick.size else float("nan"),
        components=pd.DataFrame({"component": comp,
                                 "mean": [float(scored[c].astype(np.float64).mean()) for c in comp]}),
        timeline=_weekly_churn_of_circles(members, set(flagged["circle_id"]), subs, start, as_of),
        backtest=backtest,
    )


# ----------------------------------------------------------------------------- the page

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
              f'{COHORT_SHARE:.0%} by ARPU at the window start (ARPU {_e(_num(d.cohort_min_arpu))} or more)'),
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
                f"The top {COHORT_SHARE:.0%} by ARPU among subscribers active at the window start, followed week "
                "by week.", '<details><summary>Cohort week by week</summary>' + _table(
                    "cohort", [("day", "date", False), ("active", "still active", True), ("share", "share", True)],
                    cohort_rows) + "</details>"),
    ]
    return (f'<section id="kpis"><h2>Headline KPIs</h2><div class="cards">{cards}</div>'
            f'<div class="grid">{"".join(figs)}</div></section>')


_FLAGGED_HEAD = [("circle_id", "circle", False), ("kind", "kind", False), ("source", "source", False),
                 ("size", "size", True), ("active_members", "active", True), ("churned", "churned", True),
                 ("expected", "expected", True), ("q_value", "q-value", True), ("offer", "offer", False),
                 ("anchor", "anchor", False), ("priority", "priority", True)]


def _flagged(d: ReportData) -> str:
    intro = (f'<p class="note">Circles whose churn in the last {d.contagion_window_days} days is well above what '
             f"their members' own profiles predict, and still rising (q-value: the expected share of false alarms "
             f'among circles flagged at that level). Click a column to sort. The contact list is targets.csv.</p>')
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
            f'{_td(int(r.size))}{_td(int(r.active_members))}{_td(int(r.churned))}{_td(r.expected, _num(r.expected))}'
            f'{_td(r.q_value, q)}<td data-value="{_e(offer)}">{_e(r.offer)}</td>'
            f'<td>{_e(r.anchor)}</td>{_td(pri, "-" if pri is None else str(pri))}</tr>')
    count = f'<span id="flagged-count" data-value="{len(rows)}">{len(rows)}</span>'
    return (f'<section id="flagged"><h2>Flagged circles ({count})</h2>{intro}<div class="scroll">'
            f'{_table("circles", _FLAGGED_HEAD, rows, sortable=True)}</div></section>')


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

    >>> import pyarrow as pa
    >>> from socialgraph.graph import build_call_graph
    >>> from socialgraph.subscribers import subscribers_from_arrow
    >>> subs = subscribers_from_arrow(pa.table({"msisdn": ["13800000001", "13800000002"],
    ...     "activation_date": pa.array([dt.date(2025, 1, 1)] * 2)}))
    >>> g = build_call_graph(subs.key[:1], subs.key[1:], np.array([1.0]), on_net_keys=subs.key)
    >>> empty = pd.DataFrame(columns=["circle_id", "kind", "contagion", "priority", "offer", "key",
    ...                               "role", "on_net", "churned", "active", "node"])
    >>> scored = pd.DataFrame({"key": subs.key, "stickiness": [0.2, 0.6]})
    >>> page = render_report(report_inputs(g, subs, scored, empty, empty, empty,
    ...                                    as_of_day=20574, window_start_day=20546))
    >>> page.startswith("<!doctype html>") and 'id="kpi-base" data-value="2"' in page
    True
    """
    body = "".join([_kpis(data), _flagged(data), _drawings(data), _stickiness(data), _backtest(data),
                    _timeline(data)])
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<title>Retention report, as of {_e(data.day(data.as_of_day))}</title><style>{rf.PAGE_CSS}</style>'
            f'</head><body>{_header(data)}<main>{body}</main><footer>Phone numbers are masked (first 3 and last 4 '
            f'digits); drawings carry no labels. Full numbers are only in targets.csv.</footer>'
            f'<script>{rf.PAGE_JS}</script></body></html>\n')

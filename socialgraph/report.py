"""The marketer report: one self-contained HTML page (``report.html``).

:func:`report_inputs` aggregates the job's tables into a :class:`ReportData` (plain numbers and
small tables, no phone numbers: anchors are masked, drawings carry no numbers at all);
:func:`render_report` (:mod:`socialgraph.report_html`) turns it into the page, with the figures
of :mod:`socialgraph.report_figures`. The page opens offline: CSS, JavaScript and figures (inline
SVG) are in the file, and a Content-Security-Policy forbids any request. Key figures sit in
``data-value`` attributes of elements with stable ids (``#kpi-base``, ``#circles`` ...) so
people and tests can check them against the Parquet files.
:func:`socialgraph.backtest.backtest` computes the optional back-test section (when the
subscriber table knows churn after the as-of date); the run's ``circle_history``
(:func:`socialgraph.lineage.carry_history`) gives each flagged circle its trajectory over the
runs and whether an earlier run targeted it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import pandas as pd

from .contagion import TENURE_BANDS
from .graph import CallGraph
from .numbers import format_numbers, mask_number
from .report_html import render_report
from .subscribers import Subscribers

__all__ = ["CircleDrawing", "ReportData", "circle_drawing", "report_inputs", "render_report"]

TENURE_LABELS = ("0-3 months", "3-9 months", "9-24 months", "24+ months")
#: plans shown by name in the churn-by-plan chart; the rest are one "other plans" bar
TOP_PLANS = 8
#: share of the base, by ARPU, in the high-value snapshot cohort
COHORT_SHARE = 0.2
STICKINESS_BINS = 20
#: a drawing shows at most this many members (a hairball of 300 tells nothing)
MAX_DRAWN_MEMBERS = 60

_FLAGGED_COLUMNS = ("circle_id", "kind", "source", "size", "active_members", "churned", "trajectory",
                    "expected", "q_value", "offer", "targeted_before", "anchor", "priority")
_HISTORY_COLUMNS = ("as_of_day", "circle_id", "churned_recent", "targeted")


@dataclass(frozen=True, kw_only=True, eq=False)
class CircleDrawing:
    """One flagged circle's call graph, anonymous: ``nodes`` (``role, on_net, active,
    churned``; one row per drawn member) and ``edges`` (``i, j, weight``: rows of ``nodes``)."""

    circle_id: str
    kind: str
    source: str
    size: int
    churned: int
    expected: float
    nodes: pd.DataFrame
    edges: pd.DataFrame


def _circle_ties(graph: CallGraph, nodes: np.ndarray) -> pd.DataFrame:
    """Ties among ``nodes`` (graph ids, -1 = not in the graph) as row pairs ``i < j``."""
    present = np.flatnonzero(nodes >= 0)
    order = np.argsort(nodes[present])
    sorted_nodes, sorted_rows = nodes[present][order], present[order]
    ii, jj, ww = [], [], []
    for r in present:
        u = nodes[r]
        lo, hi = graph.indptr[u], graph.indptr[u + 1]
        nb, w = graph.indices[lo:hi].astype(np.int64), graph.weights[lo:hi]
        pos = np.minimum(np.searchsorted(sorted_nodes, nb), sorted_nodes.size - 1)
        hit = sorted_nodes[pos] == nb
        other = sorted_rows[pos[hit]]
        keep = other > r
        ii.append(np.full(int(keep.sum()), r))
        jj.append(other[keep])
        ww.append(w[hit][keep])
    cat = lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)  # noqa: E731
    return pd.DataFrame({"i": cat(ii, np.int64), "j": cat(jj, np.int64), "weight": cat(ww, np.float64)})


def circle_drawing(graph: CallGraph, circle, members: pd.DataFrame) -> CircleDrawing:
    """The drawing of one circle: its members (``role, on_net, active, churned, influence,
    node``) and the ties among them in ``graph``; ``circle`` has ``circle_id, kind, source,
    size, churned, expected``. Past ``MAX_DRAWN_MEMBERS`` the anchor and the churned members
    are kept, then the most influential.

    >>> from socialgraph.graph import build_call_graph
    >>> g = build_call_graph(np.array([10, 10]), np.array([20, 30]), np.array([2.0, 1.0]), on_net_keys=[])
    >>> mem = pd.DataFrame({"role": ["anchor", "member", "member"], "on_net": [True] * 3,
    ...                     "active": [True, True, False], "churned": [False, False, True],
    ...                     "influence": [2.0, 1.0, 0.5], "node": g.ids_of(np.array([10, 20, 30]))})
    >>> d = circle_drawing(g, {"circle_id": "c", "kind": "family", "source": "inferred", "size": 3,
    ...                        "churned": 1, "expected": 0.1}, mem)
    >>> d.edges.values.tolist()
    [[0.0, 1.0, 2.0], [0.0, 2.0, 1.0]]
    """
    mem = members
    if len(mem) > MAX_DRAWN_MEMBERS:  # the anchor and the churned always, then by influence
        rank = mem["role"].eq("anchor").astype(int) * 2 + mem["churned"].astype(int)
        mem = mem.assign(_r=rank.to_numpy()).sort_values(["_r", "influence"], ascending=False, kind="stable")
        mem = mem.iloc[:MAX_DRAWN_MEMBERS].drop(columns="_r")
    mem = mem.reset_index(drop=True)
    nodes = pd.DataFrame({"role": mem["role"].astype(str).to_numpy(dtype=object),
                          "on_net": mem["on_net"].to_numpy(bool), "active": mem["active"].to_numpy(bool),
                          "churned": mem["churned"].to_numpy(bool)})
    return CircleDrawing(circle_id=str(circle["circle_id"]), kind=str(circle["kind"]), source=str(circle["source"]),
                         size=int(circle["size"]), churned=int(circle["churned"]),
                         expected=float(circle["expected"]), nodes=nodes,
                         edges=_circle_ties(graph, mem["node"].to_numpy(np.int64)))


@dataclass(frozen=True, kw_only=True, eq=False)
class ReportData:
    """Everything the report shows, already aggregated (no phone numbers anywhere).

    Rates are fractions in [0, 1]; days are day numbers (days since 1970-01-01).
    ``churn_by_tenure`` / ``churn_by_plan``: ``band`` or ``plan``, ``active`` (at the window
    start), ``churned`` (in the window), ``rate``. ``cohort``: ``day, active, share`` of the
    high-value snapshot cohort. ``flagged``: one row per flagged circle in priority order
    (``priority`` is ``<NA>`` for a circle with nobody to contact), ``anchor`` masked;
    ``trajectory`` is a tuple of ``(as_of_day, churned)`` over the runs that saw the circle,
    oldest first, this run last (one pair: its first run); ``targeted_before`` is True when an
    earlier run put the circle on its target list.
    ``timeline``: per week, ``week_start`` and ``active``/``churned``/``rate`` of on-net
    members of flagged circles (``flagged_*``) and of other circles (``other_*``).
    ``beyond_chance``: ``p_at_most``, ``circles`` and ``by_chance`` lists (or None).
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
    beyond_chance: dict | None = None
    cohort_share: float = COHORT_SHARE

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


def _earlier_runs(history: pd.DataFrame | None, ids: list[str], as_of: int) -> pd.DataFrame:
    """The rows of ``history`` about ``ids`` from runs before ``as_of``, by circle and date.

    This run's own rows are left out (its figures come from ``circles``), and so are later
    runs: a report re-run as of an old date shows what was known then.
    """
    if history is None or not len(history):
        return pd.DataFrame({"circle_id": [], "day": [], "churned": [], "targeted": []})
    cid = history["circle_id"].astype(str)
    day = history["as_of_day"].to_numpy(np.int64)
    churned = pd.to_numeric(history["churned_recent"])
    keep = (day < as_of) & cid.isin(ids).to_numpy() & churned.notna().to_numpy()
    runs = pd.DataFrame({"circle_id": cid[keep].to_numpy(dtype=object), "day": day[keep],
                         "churned": churned[keep].to_numpy(np.int64),
                         "targeted": history["targeted"][keep].fillna(False).to_numpy(bool)})
    # one line per circle and run, as carry_history keeps it
    runs = runs.drop_duplicates(["circle_id", "day"], keep="last")
    return runs.sort_values(["circle_id", "day"], kind="stable").reset_index(drop=True)


def _trajectories(history: pd.DataFrame | None, ids: list[str], churned_now: np.ndarray, as_of: int,
                  targeted_last_run: set) -> tuple[list[tuple], list[bool]]:
    earlier = {c: g for c, g in _earlier_runs(history, ids, as_of).groupby("circle_id", sort=False)}
    runs, before = [], []
    for c, now in zip(ids, churned_now.tolist()):
        g = earlier.get(c)
        past = () if g is None else tuple(zip(g["day"].tolist(), g["churned"].tolist()))
        runs.append(past + ((as_of, int(now)),))
        before.append(c in targeted_last_run or bool(g is not None and g["targeted"].any()))
    return runs, before


def _flagged_table(circles: pd.DataFrame, members: pd.DataFrame, targets: pd.DataFrame,
                   history: pd.DataFrame | None, as_of: int) -> pd.DataFrame:
    flagged = circles[circles["contagion"].to_numpy(bool)]
    first = targets.drop_duplicates("circle_id", keep="first").set_index("circle_id")
    is_anchor = (members["role"] == "anchor").to_numpy(bool)
    anchors = members[is_anchor & members["circle_id"].isin(flagged["circle_id"]).to_numpy()]
    anchors = anchors.drop_duplicates("circle_id")
    anchor_of = dict(zip(anchors["circle_id"], _masked(anchors["key"].to_numpy())))
    ids = flagged["circle_id"].astype(str)
    last_run = set()
    if "circle_targeted_last_run" in targets.columns:
        marked = targets["circle_targeted_last_run"].fillna(False).to_numpy(bool)
        last_run = set(targets.loc[marked, "circle_id"].astype(str))
    churned = flagged["churned_recent"].to_numpy(np.int64)
    runs, before = _trajectories(history, ids.tolist(), churned, as_of, last_run)
    table = pd.DataFrame({
        "circle_id": ids.to_numpy(dtype=object),
        "kind": flagged["kind"].astype(str).to_numpy(dtype=object),
        "source": flagged["source"].astype(str).to_numpy(dtype=object),
        "size": flagged["size"].to_numpy(np.int64),
        "active_members": flagged["active_members"].to_numpy(np.int64),
        "churned": churned,
        "trajectory": pd.Series(runs, dtype=object).to_numpy(),
        "expected": flagged["expected_churn"].to_numpy(np.float64),
        "q_value": flagged["q_value"].to_numpy(np.float64),
        "offer": [str(first["offer"].get(c, "-")) for c in ids],
        "targeted_before": np.array(before, bool),
        "anchor": [anchor_of.get(c, "-") for c in ids],
        "priority": pd.array([first["priority"].get(c, pd.NA) for c in ids], dtype="Int64"),
    })
    # contactable circles by priority; the rest after them, strongest evidence first
    table["_p"] = table["priority"].fillna(np.iinfo(np.int64).max).astype(np.int64)
    table = table.sort_values(["_p", "q_value", "circle_id"], kind="stable").drop(columns="_p")
    return table.reset_index(drop=True)[list(_FLAGGED_COLUMNS)]


def report_inputs(graph: CallGraph, subs: Subscribers, scored: pd.DataFrame, circles: pd.DataFrame,
                  members: pd.DataFrame, targets: pd.DataFrame, *, as_of_day: int, window_start_day: int,
                  backtest: dict | None = None, history: pd.DataFrame | None = None,
                  max_drawn: int = 6, beyond_chance: dict | None = None,
                  contagion_window_days: int = 28) -> ReportData:
    """Aggregate the job's tables into what the report shows.

    Parameters
    ----------
    graph, subs : the call graph and the subscribers of the run
    scored : one row per subscriber active at as-of (``key, stickiness, sticky_*`` ...)
    circles, members : the circles stage's tables (after the contagion test)
    targets : the contact list (``priority, circle_id, offer`` ...), in its own order; an
        optional ``circle_targeted_last_run`` (bool) counts as targeted before
    as_of_day, window_start_day : day numbers of the as-of date and of the look-back start
    backtest : optional, :func:`socialgraph.backtest.backtest`'s result (None: the section says
        how to get one)
    history : optional, the run's ``circle_history`` (:func:`socialgraph.lineage.carry_history`:
        ``as_of_day, circle_id, churned_recent, targeted`` ..., one row per circle per run; this
        run's rows may be in it). None: every flagged circle is on its first run
    max_drawn : how many of the top flagged circles get a drawing
    beyond_chance : optional, the contagion test's ``beyond_chance`` diagnostics
        (:func:`socialgraph.contagion.circle_contagion`): circles at ``p <= t`` against chance
    contagion_window_days : the test's window (``contagion.window_days``), named in the text
        when there is no circle to read it from

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
    >>> data.contagion_window_days  # no circle to read it from: the test's default window
    28
    """
    _check_frame(scored, "scored", ("key", "stickiness"))
    _check_frame(circles, "circles", ("circle_id", "kind", "contagion"))
    _check_frame(members, "members", ("circle_id", "key", "role", "on_net", "churned", "active"))
    _check_frame(targets, "targets", ("circle_id", "priority", "offer"))
    if history is not None:
        _check_frame(history, "circle_history", _HISTORY_COLUMNS)
    as_of, start = int(as_of_day), int(window_start_day)
    if start >= as_of:
        raise ValueError(f"report_inputs: window_start_day ({start}) must be before as_of_day ({as_of})")
    if max_drawn < 0:
        raise ValueError(f"report_inputs: max_drawn must be >= 0, got {max_drawn}")

    active = subs.active_at(start)
    churned = active & (subs.churn_day < as_of)
    tenure, by_plan = _churn_tables(subs, start, as_of)
    cohort, min_arpu = _cohort(subs, start, as_of)
    flagged = _flagged_table(circles, members, targets, history, as_of) if len(circles) else \
        pd.DataFrame({c: [] for c in _FLAGGED_COLUMNS})
    if "node" not in members.columns:
        members = members.assign(node=graph.ids_of(members["key"].to_numpy(np.int64)))
    drawings = []
    for _, row in flagged.head(max_drawn).iterrows():
        drawings.append(circle_drawing(graph, row, members[members["circle_id"] == row["circle_id"]]))
    stick = scored["stickiness"].to_numpy(np.float64)
    counts, edges = np.histogram(stick[np.isfinite(stick)], bins=STICKINESS_BINS, range=(0.0, 1.0))
    comp = [c for c in scored.columns if str(c).startswith("sticky_")]
    window_days = circles["window_days"].iloc[0] if "window_days" in circles.columns and len(circles) \
        else contagion_window_days
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
        backtest=backtest, beyond_chance=beyond_chance,
    )


"""The look of the marketer report: its palette, its figures as inline SVG strings
(matplotlib), the legend of the circle drawings and the page's style sheet (the page itself:
:mod:`socialgraph.report_html`).

Figures are drawn on matplotlib's Agg canvas, chosen explicitly per figure rather than with
``matplotlib.use``, so importing this module never changes the backend of the caller's
process (a notebook keeps its own). Text stays text (``svg.fonttype: none``): a page of
figures stays small, searchable and sharp in print. Every figure gets its own id salt and
loses matplotlib's structural ``<g id=...>`` names, so several SVGs can live in one HTML
document without clashing ids.
"""

from __future__ import annotations

import html
import io
import re

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

__all__ = ["COLORS", "figure_svg", "bar_svg", "line_svg", "histogram_svg", "circle_layout", "circle_svg",
           "legend_html", "PAGE_CSS"]

#: one restrained palette for the page (the HTML legend uses the same colours)
COLORS = {"blue": "#2f5d8a", "orange": "#d9822b", "red": "#b03a2e", "grey": "#9aa5b1",
          "ink": "#243447", "light": "#d5dde5"}

_STYLE = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.titleweight": "bold",
    "axes.edgecolor": COLORS["grey"],
    "axes.labelcolor": COLORS["ink"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6eaee",
    "grid.linewidth": 0.6,
    "xtick.color": COLORS["ink"],
    "ytick.color": COLORS["ink"],
    "legend.frameon": False,
    "text.usetex": False,
}
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_HEADER = re.compile(r"^.*?(?=<svg)", re.S)
_SIZE = re.compile(r'<svg([^>]*?) width="([\d.]+)pt" height="([\d.]+)pt"')
_GROUP_ID = re.compile(r'<g id="[^"]*"')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plain_text(s: str) -> str:
    """A label matplotlib shows literally (a ``$`` would start mathtext).

    >>> plain_text("Plan $5")
    'Plan \\\\$5'
    """
    return str(s).replace("$", r"\$")


def figure_svg(fig: Figure, name: str, label: str = "") -> str:
    """The figure as an SVG element to inline in HTML (no XML header), scaling with its box.

    ``name`` becomes the element's id (and salts matplotlib's internal ids); ``label`` its
    accessible name.

    >>> with matplotlib.rc_context(_STYLE):
    ...     fig = _figure(2, 1)
    ...     _ = fig.add_subplot().plot([0, 1], [1, 0])
    ...     svg = figure_svg(fig, "fig-demo", "a line")
    >>> svg.startswith('<svg') and 'id="fig-demo"' in svg and "<?xml" not in svg
    True
    """
    buf = io.StringIO()
    with matplotlib.rc_context({**_STYLE, "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata=_NO_METADATA)
    svg = _METADATA.sub("", _HEADER.sub("", buf.getvalue(), count=1))
    svg = _GROUP_ID.sub("<g", svg)
    # the id is set here, not by rcParam "svg.id": that came only with matplotlib 3.10
    svg = svg.replace("<svg", f'<svg id="{_attr(name)}"', 1)
    # drop the fixed size (the viewBox keeps the aspect ratio); CSS caps it at its natural width
    m = _SIZE.search(svg)
    if m:
        attrs = f'{m.group(1)} role="img" aria-label="{_attr(label)}" style="max-width:{m.group(2)}pt"'
        svg = svg[:m.start()] + f"<svg{attrs}" + svg[m.end():]
    return svg.strip()


def _attr(s: str) -> str:
    return html.escape(str(s), quote=True)


def _percent_axis(ax, axis: str = "y") -> None:
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=None))


def bar_svg(labels, values, *, name: str, title: str = "", horizontal: bool = False,
            width: float = 3.6, height: float = 2.3) -> str:
    """Bars of rates in [0, 1], each labelled with its percentage.

    >>> svg = bar_svg(["0-3", "3-9"], [0.02, 0.05], name="fig-bars", title="Churn")
    >>> svg.count("<text") >= 4 and "5.0%" in svg
    True
    """
    labels = [plain_text(s) for s in labels]
    values = np.asarray(values, np.float64)
    with matplotlib.rc_context(_STYLE):
        fig = _figure(width, height)
        ax = fig.add_subplot()
        pos = np.arange(len(labels))
        if horizontal:
            ax.barh(pos, values, color=COLORS["blue"], height=0.65)
            ax.set_yticks(pos, labels)
            ax.invert_yaxis()
            ax.grid(axis="y", visible=False)
            _percent_axis(ax, "x")
        else:
            ax.bar(pos, values, color=COLORS["blue"], width=0.65)
            ax.set_xticks(pos, labels)
            ax.grid(axis="x", visible=False)
            _percent_axis(ax, "y")
        top = float(np.nanmax(values)) if values.size and np.isfinite(values).any() else 0.0
        for p, v in zip(pos, values):
            if np.isfinite(v):
                text = f"{100 * v:.1f}%"
                if horizontal:
                    ax.text(v + 0.01 * max(top, 1e-9), p, text, va="center", fontsize=7.5)
                else:
                    ax.text(p, v + 0.02 * max(top, 1e-9), text, ha="center", va="bottom", fontsize=7.5)
        if horizontal:
            ax.set_xlim(0, max(top * 1.2, 1e-3))
        else:
            ax.set_ylim(0, max(top * 1.2, 1e-3))
        if title:
            ax.set_title(plain_text(title), loc="left")
        return figure_svg(fig, name, title)


def line_svg(x, series: dict, *, name: str, title: str = "", ylabel: str = "", xlabel: str = "",
             percent: bool = True, xpercent: bool = False, reference: float | None = None, dates: bool = False,
             ylim: tuple | None = None, width: float = 4.8, height: float = 2.4) -> str:
    """Lines sharing an x axis; ``series`` maps a legend label to y values (NaN = gap).

    ``dates``: x are day numbers (days since 1970-01-01), shown as dates; ``percent`` /
    ``xpercent``: y / x are shares shown as percentages. ``reference``: a dashed horizontal
    line (e.g. lift 1 = random).

    >>> svg = line_svg([0, 1, 2], {"a": [1.0, 0.9, 0.8]}, name="fig-line", title="Cohort")
    >>> "Cohort" in svg and "<path" in svg
    True
    """
    xs = np.asarray(x)
    if dates:
        xs = xs.astype("datetime64[D]")
    palette = [COLORS["red"], COLORS["blue"], COLORS["orange"], COLORS["grey"]]
    with matplotlib.rc_context(_STYLE):
        fig = _figure(width, height)
        ax = fig.add_subplot()
        for (label, ys), color in zip(series.items(), palette):
            ax.plot(xs, np.asarray(ys, np.float64), color=color, lw=1.6, marker="o" if xs.size <= 40 else None,
                    ms=2.5, label=plain_text(label))
        if reference is not None:
            ax.axhline(reference, color=COLORS["grey"], lw=1, ls="--")
        if dates:
            from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

            loc = AutoDateLocator(maxticks=7)
            ax.xaxis.set_major_locator(loc)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
        if percent:
            _percent_axis(ax)
        if xpercent:
            _percent_axis(ax, "x")
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_ylabel(plain_text(ylabel))
        ax.set_xlabel(plain_text(xlabel))
        if len(series) > 1:
            ax.legend(fontsize=7.5, loc="best")
        if title:
            ax.set_title(plain_text(title), loc="left")
        return figure_svg(fig, name, title)


def histogram_svg(counts, edges, *, name: str, title: str = "", xlabel: str = "",
                  width: float = 4.8, height: float = 2.3) -> str:
    """A histogram from counts already binned (``len(edges) == len(counts) + 1``).

    >>> svg = histogram_svg([3, 5, 2], [0, 0.5, 1.0, 1.5], name="fig-hist", xlabel="score")
    >>> "score" in svg
    True
    """
    counts = np.asarray(counts, np.float64)
    edges = np.asarray(edges, np.float64)
    with matplotlib.rc_context(_STYLE):
        fig = _figure(width, height)
        ax = fig.add_subplot()
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=COLORS["blue"],
               edgecolor="white", linewidth=0.5)
        ax.grid(axis="x", visible=False)
        ax.set_xlabel(plain_text(xlabel))
        ax.set_ylabel("subscribers")
        if title:
            ax.set_title(plain_text(title), loc="left")
        return figure_svg(fig, name, title)


def circle_layout(n: int, i: np.ndarray, j: np.ndarray, weight: np.ndarray, seed: int = 7) -> np.ndarray:
    """Deterministic 2-D positions (n x 2) of a small graph: a spring layout (by tie weight) of
    the members with ties, and the members without any tie in rows underneath, where they
    neither crowd the picture nor pretend to be on its edge.

    >>> xy = circle_layout(4, np.array([0, 1]), np.array([1, 2]), np.array([1.0, 1.0]))
    >>> xy.shape, bool(xy[3, 1] < xy[:3, 1].min())
    ((4, 2), True)
    """
    import networkx as nx

    xy = np.zeros((n, 2))
    tied = np.zeros(n, bool)
    tied[i] = tied[j] = True
    ids = np.flatnonzero(tied)
    if ids.size:
        g = nx.Graph()
        g.add_nodes_from(ids.tolist())
        g.add_weighted_edges_from(zip(i.tolist(), j.tolist(), np.log1p(weight).tolist()))
        pos = nx.spring_layout(g, seed=seed, weight="weight", iterations=100)
        xy[ids] = [pos[k] for k in ids.tolist()]
    alone = np.flatnonzero(~tied)
    if alone.size:
        per_row = max(6, int(np.ceil(np.sqrt(alone.size * 3))))
        col, row = np.arange(alone.size) % per_row, np.arange(alone.size) // per_row
        span = min(alone.size, per_row)
        x = (col - (span - 1) / 2) * (2.0 / max(per_row - 1, 1))
        top = xy[ids, 1].min() - 0.45 if ids.size else 0.0
        xy[alone] = np.column_stack([x, top - 0.25 * row])
    return xy


def circle_svg(nodes, edges, *, name: str, title: str = "", size: float = 2.9) -> str:
    """A circle's call graph: ties as lines (width by strength), on-net members blue, off-net
    orange, members who left earlier grey, churned members (in the contagion window) crossed
    in red, the anchor larger with a dark ring. No labels: the people stay anonymous.

    ``nodes``: DataFrame with ``role, on_net, active, churned``; ``edges``: ``i, j, weight``
    (rows of ``nodes``).

    >>> import pandas as pd
    >>> nodes = pd.DataFrame({"role": ["anchor", "member"], "on_net": [True, False],
    ...                       "active": [True, False], "churned": [False, False]})
    >>> edges = pd.DataFrame({"i": [0], "j": [1], "weight": [2.0]})
    >>> svg = circle_svg(nodes, edges, name="fig-circle-demo")
    >>> svg.startswith("<svg")
    True
    """
    i = edges["i"].to_numpy(np.int64)
    j = edges["j"].to_numpy(np.int64)
    w = edges["weight"].to_numpy(np.float64)
    xy = circle_layout(len(nodes), i, j, w)
    on_net = nodes["on_net"].to_numpy(bool)
    active = nodes["active"].to_numpy(bool)
    churned = nodes["churned"].to_numpy(bool)
    anchor = (nodes["role"] == "anchor").to_numpy(bool)
    color = np.where(~on_net, COLORS["orange"], np.where(active | churned, COLORS["blue"], COLORS["grey"]))
    big = len(nodes) > 30
    with matplotlib.rc_context(_STYLE):
        fig = _figure(size, size)
        ax = fig.add_subplot()
        ax.set_axis_off()
        if i.size:
            lw = 0.4 + 2.2 * np.log1p(w) / max(np.log1p(w).max(), 1e-9)
            ax.add_collection(LineCollection(np.stack([xy[i], xy[j]], axis=1), linewidths=lw,
                                             colors=COLORS["grey"], alpha=0.6, zorder=1))
        s = 18 if big else 60
        ax.scatter(xy[~anchor, 0], xy[~anchor, 1], s=s, c=color[~anchor], zorder=2, linewidths=0)
        ax.scatter(xy[anchor, 0], xy[anchor, 1], s=s * 2.6, c=color[anchor], zorder=3,
                   edgecolors=COLORS["ink"], linewidths=2)
        if churned.any():
            ax.scatter(xy[churned, 0], xy[churned, 1], s=s * 1.3, marker="x", c=COLORS["red"],
                       zorder=4, linewidths=1.8)
        if len(nodes):
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            pad = 0.12 * max(float((hi - lo).max()), 1e-3)
            ax.set_xlim(lo[0] - pad, hi[0] + pad)
            ax.set_ylim(lo[1] - pad, hi[1] + pad)
        ax.set_aspect("equal", adjustable="box")
        if title:
            ax.set_title(plain_text(title), loc="left", fontsize=8)
        return figure_svg(fig, name, title or "circle drawing")


def legend_html() -> str:
    """The legend of the circle drawings, as HTML with tiny inline SVG symbols (one for the page).

    >>> "anchor" in legend_html()
    True
    """
    c = COLORS

    def dot(color, ring=False, cross=False):
        inner = (f'<circle cx="7" cy="7" r="{6 if ring else 5}" fill="{color}"'
                 f'{" stroke=" + chr(34) + c["ink"] + chr(34) + " stroke-width=2" if ring else ""}/>')
        if cross:
            inner = f'<path d="M2 2L12 12M12 2L2 12" stroke="{c["red"]}" stroke-width="2.2"/>'
        return f'<svg width="14" height="14" aria-hidden="true">{inner}</svg>'

    items = [(dot(c["blue"], ring=True), "anchor (approach first)"), (dot(c["blue"]), "on-net member"),
             (dot(c["orange"]), "off-net member (competitor or other)"), (dot(c["grey"]), "left before the window"),
             (dot(c["red"], cross=True), "churned in the window")]
    return '<p class="legend">' + "".join(f"<span>{s}{html.escape(t)}</span>" for s, t in items) + "</p>"


#: the page's style: readable on a phone, a laptop and on paper
PAGE_CSS = """
:root{--ink:#243447;--muted:#5f6b78;--line:#d5dde5;--blue:#2f5d8a;--grey:#9aa5b1;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;
 color:var(--ink);background:#fff}
header{background:var(--ink);color:#fff;padding:1.1rem 1.5rem}
header h1{margin:0 0 .3rem;font-size:1.5rem}
header p{margin:.1rem 0;color:#d5dde5}
main{max-width:1320px;margin:0 auto;padding:.5rem 1.5rem 2rem}
section{margin:1.8rem 0}
h2{font-size:1.2rem;border-bottom:2px solid var(--line);padding-bottom:.25rem;margin-bottom:.6rem}
h3{font-size:1rem;margin:.2rem 0 .4rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:.8rem;margin-bottom:1rem}
.card{border:1px solid var(--line);border-radius:6px;padding:.6rem .9rem;background:var(--bg)}
.card .big{font-size:1.6rem;font-weight:600;display:block}
.card .label{font-weight:600}
.note,.card .note,figcaption{color:var(--muted);font-size:.85rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:1.2rem;align-items:start}
.drawings{grid-template-columns:repeat(auto-fit,minmax(250px,1fr))}
figure{margin:0}
figure svg{width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;font-size:.88rem;font-variant-numeric:tabular-nums}
th,td{padding:.28rem .45rem;border-bottom:1px solid var(--line);text-align:left}
th{background:var(--bg)}
.n{text-align:right}
td:first-child{white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th::after{content:"\\00a0\\2195";color:var(--grey)}
table.sortable th[aria-sort=ascending]::after{content:"\\00a0\\25B2";color:var(--ink)}
table.sortable th[aria-sort=descending]::after{content:"\\00a0\\25BC";color:var(--ink)}
.scroll{max-height:34rem;overflow:auto;border:1px solid var(--line)}
.bar{display:inline-block;height:.6rem;background:var(--blue);vertical-align:middle;margin-right:.4rem}
.legend{margin:.3rem 0 .8rem}
.legend span{margin-right:1.1rem;white-space:nowrap}
.legend svg{vertical-align:middle;margin-right:.25rem}
details{margin-top:.4rem}
footer{max-width:1320px;margin:0 auto;padding:0 1.5rem 2rem;color:var(--muted);font-size:.85rem}
@media print{
 header{background:none;color:#000;border-bottom:2px solid #000;padding:0 0 .5rem}
 header p{color:#333}
 main{padding:0;max-width:none}
 .scroll{max-height:none;overflow:visible;border:none}
 table.sortable th::after{content:none}
 figure,.card,tr{break-inside:avoid}
 h2{break-after:avoid}
 details>*{display:block}
}
"""

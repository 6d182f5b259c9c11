"""The marketer report of a synthetic operator, and its screenshot (``docs/report.png``).

    python benchmarks/report_screenshot.py [--subscribers 20000] [--weeks 12] [--seed 3]
        [--png docs/report.png] [--html report.html] [--window-size 1280,2400]

Builds the synthetic world in process (``tests/worlds.py``: the graph stage without Dask), runs
the job's stages from the call graph to the target list with the same engine calls as
``pipelines/run.py``, renders the report, and has headless Chromium take the picture. Prints
the page's size and the time of each step.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from socialgraph.circles import circle_members  # noqa: E402
from socialgraph.config import JobConfig  # noqa: E402
from socialgraph.contagion import circle_contagion  # noqa: E402
from socialgraph.offers import build_targets  # noqa: E402
from socialgraph.reentry import detect_number_changes  # noqa: E402
from socialgraph.report import render_report, report_inputs  # noqa: E402
from socialgraph.risk import score_subscribers  # noqa: E402
from worlds import synthetic_world  # noqa: E402


def build_report(n_subscribers: int, weeks: int, seed: int, cfg: JobConfig = JobConfig()) -> str:
    t0 = time.perf_counter()
    w = synthetic_world(n_subscribers, weeks, seed)
    graph, subs, as_of = w.graph, w.subscribers, w.as_of_day
    start = as_of - cfg.window.lookback_days
    print(f"world: {len(subs):,} subscribers, {graph.n_nodes:,} nodes, {graph.n_edges:,} ties "
          f"({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    scored, _ = score_subscribers(graph, subs, as_of, cfg.scoring)
    changes = detect_number_changes(graph, subs, as_of, cfg.number_changes, since_day=start)
    members, _ = circle_members(graph, subs, as_of, cfg.circles)
    diagnostics = {}
    circles, members = circle_contagion(
        members, subs, as_of, cfg.contagion,
        reentry_keys=changes.loc[changes["kind"] == "reentry", "old_key"].to_numpy(),
        port_keys=changes.loc[changes["kind"] == "port", "old_key"].to_numpy(),
        competitor_share=pd.Series(scored["competitor_share"].to_numpy(), index=scored["key"].to_numpy()),
        diagnostics=diagnostics)
    targets = build_targets(circles, members, scored, subs, changes, cfg.offers)
    print(f"stages: {len(circles):,} circles, {int(circles['contagion'].sum())} flagged, "
          f"{len(targets)} contacts ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    data = report_inputs(graph, subs, scored, circles, members, targets, as_of_day=as_of, window_start_day=start,
                         beyond_chance=diagnostics["beyond_chance"])
    page = render_report(data)
    print(f"report: {len(page.encode()) / 1e3:,.0f} kB ({time.perf_counter() - t0:.1f} s)")
    return page


def screenshot(html: Path, png: Path, window_size: str, chromium: str = "/usr/bin/chromium") -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                        f"--screenshot={png.resolve()}", f"--window-size={window_size}", html.resolve().as_uri()],
                       check=True, capture_output=True, timeout=300)
    print(f"screenshot: {png} ({png.stat().st_size / 1e3:,.0f} kB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", type=int, default=20_000)
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "report.png")
    ap.add_argument("--html", type=Path, default=None, help="keep the HTML here (default: a temporary file)")
    ap.add_argument("--window-size", default="1280,2400")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    page = build_report(args.subscribers, args.weeks, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        html = args.html or Path(tmp) / "report.html"
        html.write_text(page, encoding="utf-8")
        screenshot(html, args.png, args.window_size, args.chromium)


if __name__ == "__main__":
    main()

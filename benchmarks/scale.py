"""Scale: `socialgraph run` end to end on synthetic operators of ~10M and ~100M CDR rows.

    python benchmarks/scale.py                        # 10M and 100M rows (generates them once)
    python benchmarks/scale.py --subscribers 500000   # one size
    python benchmarks/scale.py --subscribers 20000 --worker-memory 200MiB   # CI-sized, spilling

Each size is written once under ``benchmarks/data/synth-N-12w`` (about 20 CDR rows per
subscriber per week: 500,000 subscribers x 12 weeks ~ 10M rows, 5,000,000 ~ 100M). The job
runs in a child process, as a user would run it; the table gives the wall time of every stage
(from ``manifest.json``), the peak resident memory of the whole process tree (client,
scheduler, nannies and workers, sampled every 50 ms), and rows per second. Targets on this
2-core, 24 GiB machine: 100M rows end to end <= 10 minutes, peak <= 12 GiB, and
time(100M) / time(10M) <= 11.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _measure import run_measured  # noqa: E402

SIZES = (500_000, 5_000_000)


def ensure_world(n_subscribers: int, weeks: int, data: Path) -> Path:
    world = data / f"synth-{n_subscribers}-{weeks}w"
    if not (world / "job.yaml").exists():
        from pipelines.synth_io import write_synthetic
        from socialgraph.synth import SynthConfig

        print(f"generating {world} ...", file=sys.stderr, flush=True)
        write_synthetic(world, SynthConfig(n_subscribers=n_subscribers, weeks=weeks))
    return world


def _child(world: str, out: str, worker_memory: str | None) -> None:
    """Run the job like the CLI does and print the manifest's figures as one JSON line."""
    from pipelines.config_file import load_config
    from pipelines.run import JobSpec, run_job

    cfg = load_config(f"{world}/job.yaml")
    if worker_memory:
        from dataclasses import replace

        cfg = replace(cfg, cluster=replace(cfg.cluster, memory_limit=worker_memory))
    m = run_job(JobSpec(cdr=f"{world}/cdr", subscribers=f"{world}/subscribers.parquet",
                        operators=f"{world}/operators.yaml", out=out, config=cfg, progress=False))
    print(json.dumps({"stages": {s["name"]: s["seconds"] for s in m["stages"]}, "rows": m["rows"],
                      "client_peak": {s["name"]: s.get("client_peak_gib") for s in m["stages"]},
                      "circles": m.get("circles", {}).get("circles"), "flagged": m.get("circles", {}).get("flagged"),
                      "subscribers": m["inputs"]["subscribers"]["rows"]}))


def measure(world: Path, out: Path, worker_memory: str | None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    args = [__file__, "--child", str(world), str(out)] + (["--worker-memory", worker_memory] if worker_memory else [])
    return run_measured(args, timeout=4 * 3600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, action="append", help="world size(s); default 500k and 5M")
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--worker-memory", default=None, help="memory limit per worker, e.g. 1GiB (forces spilling)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _child(*a.child, a.worker_memory)
        return
    results = []
    for n in a.subscribers or SIZES:
        world = ensure_world(n, a.weeks, a.data)
        r = measure(world, a.data / f"run-scale-{n}", a.worker_memory)
        r["n"] = n
        results.append(r)
        print(f"done {n:,} subscribers: {r['process_seconds']:.0f} s, peak {r['peak_rss_gib']:.2f} GiB", file=sys.stderr)
    stages = list(results[0]["stages"])
    head = f"{'':<22}" + "".join(f"{r['rows']['cdr_in']/1e6:>12.1f}M" for r in results)
    print("\nrows (CDR)" + head[10:])
    def line(label, vals):
        print(f"{label:<22}" + "".join(f"{v:>13}" for v in vals))
    line("subscribers", [f"{r['subscribers']:,}" for r in results])
    line("edges", [f"{r['rows']['edges']:,}" for r in results])
    line("circles", [f"{r['circles']:,}" for r in results])
    line("flagged", [f"{r['flagged']:,}" for r in results])
    for s in stages:
        line(f"  {s} s", [f"{r['stages'].get(s, 0):.1f}" for r in results])
    line("end to end s", [f"{r['process_seconds']:.1f}" for r in results])
    line("peak GiB (all procs)", [f"{r['peak_rss_gib']:.2f}" for r in results])
    # the client's peak and the stage that reached it (the workers hold the rest)
    line("client peak GiB", [f"{max(r['client_peak'].values()):.2f}" for r in results])
    line("  reached in", [next(k for k, v in r["client_peak"].items() if v == max(r["client_peak"].values()))
                          for r in results])
    line("bytes/CDR row (peak)", [f"{r['peak_rss_gib'] * 2**30 / r['rows']['cdr_in']:.0f}" for r in results])
    line("bytes/edge (client)", [f"{max(r['client_peak'].values()) * 2**30 / r['rows']['edges']:.0f}" for r in results])
    line("rows/s", [f"{r['rows']['cdr_in'] / r['process_seconds']:,.0f}" for r in results])
    if len(results) >= 2:
        ratio = results[-1]["process_seconds"] / results[0]["process_seconds"]
        rows = results[-1]["rows"]["cdr_in"] / results[0]["rows"]["cdr_in"]
        print(f"\ntime ratio {ratio:.2f} for {rows:.1f}x the rows (target <= 11 for 10x)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

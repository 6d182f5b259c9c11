"""Scale: `socialgraph run` end to end on synthetic operators of ~10M and ~100M CDR rows.

    python benchmarks/scale.py                        # 10M and 100M rows (generates them once)
    python benchmarks/scale.py --subscribers 500000   # one size
    python benchmarks/scale.py --world benchmarks/data/synth-1000000-12w --workers 1 \
        --worker-memory 700MiB --blocksize 16MiB     # larger than memory: spills, completes

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
import time
from pathlib import Path

import numpy as np

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


def cdr_bytes(world: Path) -> int:
    """The CDRs' uncompressed size as the Parquet footers give it (Arrow in memory: ~1.25x)."""
    import pyarrow.parquet as pq

    total = 0
    for f in sorted((world / "cdr").rglob("*.parquet")):
        meta = pq.ParquetFile(f).metadata
        total += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return total


def _child(world: str, out: str, cluster: str) -> None:
    """Run the job like the CLI does and print the manifest's figures as one JSON line."""
    from dataclasses import replace

    from pipelines.config_file import load_config
    from pipelines.run import JobSpec, run_job

    cfg = load_config(f"{world}/job.yaml")
    opts = json.loads(cluster)
    if opts.get("worker_memory"):
        cfg = replace(cfg, cluster=replace(cfg.cluster, memory_limit=opts["worker_memory"]))
    if opts.get("workers"):
        cfg = replace(cfg, cluster=replace(cfg.cluster, n_workers=opts["workers"]))
    if opts.get("blocksize"):
        cfg = replace(cfg, ingest=replace(cfg.ingest, blocksize=opts["blocksize"]))
    job_started = time.time()
    m = run_job(JobSpec(cdr=f"{world}/cdr", subscribers=f"{world}/subscribers.parquet",
                        operators=f"{world}/operators.yaml", out=out, config=cfg, progress=False))
    print(json.dumps({"stages": {s["name"]: s["seconds"] for s in m["stages"]}, "rows": m["rows"],
                      "job_started": job_started, "stage_starts": {s["name"]: s.get("started_s") for s in m["stages"]},
                      "client_peak": {s["name"]: s.get("client_peak_gib") for s in m["stages"]},
                      "circles": m.get("circles", {}).get("circles"), "flagged": m.get("circles", {}).get("flagged"),
                      "spilled_gib": next((s.get("workers_spilled_gib", 0) for s in m["stages"] if s["name"] == "graph"), 0),
                      "subscribers": m["inputs"]["subscribers"]["rows"]}))


def stage_peaks(r: dict) -> dict[str, tuple[float, float]]:
    """Peak (all processes, client) in GiB while each stage ran, from the sampled timeline.

    A stage's window starts at its ``started_s`` in the manifest (seconds since the job's stage
    log began, about ``job_started``) and lasts its seconds; stages can overlap (the circles
    stage runs the scores while the workers run Leiden)."""
    t0 = r["job_started"] - r["started"]
    tl = np.asarray(r["timeline"], dtype=float).reshape(-1, 3)
    out = {}
    t = t0
    for name, secs in r["stages"].items():
        if r.get("stage_starts", {}).get(name) is not None:
            t = t0 + r["stage_starts"][name]
        sel = (tl[:, 0] >= t) & (tl[:, 0] <= t + secs)
        # the sample just before the window holds the level the stage started from
        before = np.flatnonzero(tl[:, 0] < t)
        if before.size:
            sel[before[-1]] = True
        total, client = tl[sel, 1] + tl[sel, 2], tl[sel, 1]
        out[name] = (total.max() / 2**30 if total.size else float("nan"),
                     client.max() / 2**30 if client.size else float("nan"))
        t += secs
    return out


def measure(world: Path, out: Path, cluster: dict) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    args = [__file__, "--child", str(world), str(out), "--cluster", json.dumps(cluster)]
    return run_measured(args, timeout=4 * 3600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, action="append", help="world size(s); default 500k and 5M")
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--world", type=Path, action="append", help="an existing world directory instead of --subscribers")
    ap.add_argument("--worker-memory", default=None, help="memory limit per worker, e.g. 1GiB (forces spilling)")
    ap.add_argument("--workers", type=int, default=0, help="worker processes (default: one per core)")
    ap.add_argument("--blocksize", default=None, help="ingest.blocksize, e.g. 16MiB (smaller tasks for tight workers)")
    ap.add_argument("--cluster", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _child(*a.child, a.cluster)
        return
    cluster = {"worker_memory": a.worker_memory, "workers": a.workers, "blocksize": a.blocksize}
    worlds = a.world or [ensure_world(n, a.weeks, a.data) for n in a.subscribers or SIZES]
    results = []
    for world in worlds:
        r = measure(world, a.data / f"run-scale-{world.name.removeprefix('synth-')}", cluster)
        r["cdr_bytes"] = cdr_bytes(world)
        results.append(r)
        print(f"done {world.name}: {r['process_seconds']:.0f} s, peak {r['peak_rss_gib']:.2f} GiB", file=sys.stderr)
    stages = list(results[0]["stages"])
    head = f"{'':<22}" + "".join(f"{r['rows']['cdr_in']/1e6:>12.1f}M" for r in results)
    print("\nrows (CDR)" + head[10:])
    def line(label, vals):
        print(f"{label:<22}" + "".join(f"{v:>13}" for v in vals))
    line("CDR MiB uncompressed", [f"{r['cdr_bytes'] / 2**20:,.0f}" for r in results])
    line("subscribers", [f"{r['subscribers']:,}" for r in results])
    line("edges", [f"{r['rows']['edges']:,}" for r in results])
    line("circles", [f"{r['circles']:,}" for r in results])
    line("flagged", [f"{r['flagged']:,}" for r in results])
    for s in stages:
        line(f"  {s} s", [f"{r['stages'].get(s, 0):.1f}" for r in results])
    print("peak GiB while each stage ran: all processes / client")
    peaks = [stage_peaks(r) for r in results]
    for s in stages:
        line(f"  {s}", [f"{p[s][0]:.1f} / {p[s][1]:.1f}" if s in p else "-" for p in peaks])
    line("end to end s", [f"{r['process_seconds']:.1f}" for r in results])
    line("peak GiB (all procs)", [f"{r['peak_rss_gib']:.2f}" for r in results])
    # the client's peak and the stage that reached it (the workers hold the rest)
    line("client peak GiB", [f"{max(r['client_peak'].values()):.2f}" for r in results])
    line("  reached in", [next(k for k, v in r["client_peak"].items() if v == max(r["client_peak"].values()))
                          for r in results])
    line("bytes/CDR row (peak)", [f"{r['peak_rss_gib'] * 2**30 / r['rows']['cdr_in']:.0f}" for r in results])
    line("bytes/edge (client)", [f"{max(r['client_peak'].values()) * 2**30 / r['rows']['edges']:.0f}" for r in results])
    if a.worker_memory:
        line("worker memory", [f"{a.workers or 'auto'} x {a.worker_memory}" for _ in results])
    line("workers spilled GiB", [f"{r['spilled_gib']:.1f}" for r in results])
    line("rows/s", [f"{r['rows']['cdr_in'] / r['process_seconds']:,.0f}" for r in results])
    if len(results) >= 2:
        ratio = results[-1]["process_seconds"] / results[0]["process_seconds"]
        rows = results[-1]["rows"]["cdr_in"] / results[0]["rows"]["cdr_in"]
        print(f"\ntime ratio {ratio:.2f} for {rows:.1f}x the rows (target <= 11 for 10x)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

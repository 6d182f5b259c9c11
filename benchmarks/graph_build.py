"""Graph build: socialgraph vs DuckDB vs Polars on the same CDR files, same 2 cores.

    python benchmarks/graph_build.py                      # 1M subscribers (~20M rows)
    python benchmarks/graph_build.py --subscribers 50000  # a quick look
    python benchmarks/graph_build.py --repeats 1          # one round (default 3)

Each engine runs in its own process (peak memory = the whole process tree, Dask workers
included) on a synthetic operator written once under ``benchmarks/data/``. All three do the
same job: read the CDR Parquet, normalise numbers (``+86`` / ``0086``), drop invalid rows
(bad numbers, negative durations, non voice/SMS events, self-calls), keep one row per
``cdr_id``, and aggregate undirected pairs to calls, SMS, total duration and distinct active
days. Their outputs are checked to agree (number of ties, total calls, total days) before the
times are compared. socialgraph's time is the job's graph stage (scan for repeated ids,
validate, aggregate, combine, find service hubs, weigh) on an already-started local cluster
(start-up is printed separately), without writing Parquet; the peers' time is their query. The peers need ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _measure import run_measured  # noqa: E402

VALID = r"^(\+86|0086)?[0-9]{1,17}$"


def _peer_sql(cdr_glob: str, start: str, end: str) -> str:
    norm = lambda c: f"regexp_replace(trim({c}), '^(\\+86|0086)', '')"  # noqa: E731
    return f"""
    WITH raw AS (
      SELECT {norm('caller')} AS x, {norm('callee')} AS y, start_time, duration_s,
             lower(trim(event_type)) AS et, cdr_id
      FROM read_parquet('{cdr_glob}', hive_partitioning = false)
      WHERE regexp_full_match(trim(caller), '{VALID}') AND regexp_full_match(trim(callee), '{VALID}')
        AND start_time >= TIMESTAMP '{start}' AND start_time < TIMESTAMP '{end}'
        AND lower(trim(event_type)) IN ('voice', 'sms') AND duration_s >= 0
    ), dedup AS (
      SELECT * FROM raw WHERE x <> y
      QUALIFY row_number() OVER (PARTITION BY cdr_id ORDER BY start_time, x, y) = 1
    )
    SELECT least(x, y) AS a, greatest(x, y) AS b,
           count(*) FILTER (WHERE et = 'voice') AS calls,
           count(*) FILTER (WHERE et = 'sms') AS sms,
           sum(CASE WHEN et = 'voice' THEN duration_s ELSE 0 END) AS duration_s,
           count(DISTINCT CAST(start_time AS DATE)) AS active_days
    FROM dedup GROUP BY 1, 2
    """


def run_duckdb(data: Path, start: str, end: str) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    t0 = time.perf_counter()
    sql = _peer_sql(str(data / "cdr" / "**" / "*.parquet"), start, end)
    r = con.execute(f"SELECT count(*), sum(calls), sum(active_days) FROM ({sql})").fetchone()
    return {"seconds": time.perf_counter() - t0, "ties": r[0], "calls": int(r[1]), "days": int(r[2])}


def run_polars(data: Path, start: str, end: str) -> dict:
    os.environ["POLARS_MAX_THREADS"] = "2"
    import datetime as dt

    import polars as pl

    t0 = time.perf_counter()
    strip = lambda c: pl.col(c).str.strip_chars().str.replace(r"^(\+86|0086)", "")  # noqa: E731
    lf = (
        pl.scan_parquet(str(data / "cdr" / "**" / "*.parquet"), hive_partitioning=False)
        .filter(
            pl.col("caller").str.strip_chars().str.contains(VALID)
            & pl.col("callee").str.strip_chars().str.contains(VALID)
            & (pl.col("start_time") >= dt.datetime.fromisoformat(start))
            & (pl.col("start_time") < dt.datetime.fromisoformat(end))
            & pl.col("event_type").str.strip_chars().str.to_lowercase().is_in(["voice", "sms"])
            & (pl.col("duration_s") >= 0)
        )
        .with_columns(x=strip("caller"), y=strip("callee"),
                      et=pl.col("event_type").str.strip_chars().str.to_lowercase())
        .filter(pl.col("x") != pl.col("y"))
        .sort(["cdr_id", "start_time", "x", "y"])
        .unique(subset=["cdr_id"], keep="first", maintain_order=False)
        .with_columns(a=pl.min_horizontal("x", "y"), b=pl.max_horizontal("x", "y"),
                      day=pl.col("start_time").dt.date())
        .group_by(["a", "b"])
        .agg(
            calls=(pl.col("et") == "voice").sum(),
            sms=(pl.col("et") == "sms").sum(),
            duration_s=pl.when(pl.col("et") == "voice").then(pl.col("duration_s")).otherwise(0).sum(),
            active_days=pl.col("day").n_unique(),
        )
    )
    df = lf.collect(engine="streaming")
    return {"seconds": time.perf_counter() - t0, "ties": df.height, "calls": int(df["calls"].sum()),
            "days": int(df["active_days"].sum())}


def run_ours(data: Path, as_of: str, lookback: int) -> dict:
    import datetime as dt

    from pipelines.cluster import dask_client, make_compute, total_threads
    from pipelines.config_file import load_config
    from pipelines.graph_build import build_graph_edges, default_buckets
    from pipelines.ingest import open_cdrs, scan
    from socialgraph.ties import Window

    cfg = load_config(data / "job.yaml")
    t0 = time.perf_counter()
    with dask_client(None, cfg.cluster) as client:
        t_cluster = time.perf_counter() - t0
        client.run(lambda: __import__("socialgraph.kernels.ties"))  # warm imports, like the peers' own
        compute = make_compute(client, show_progress=False)
        t1 = time.perf_counter()
        source = open_cdrs(str(data / "cdr"), cfg)
        _, dup_ids = scan(source, compute, need_max_ts=False, now=dt.datetime.now(dt.timezone.utc))
        window = Window(dt.date.fromisoformat(as_of), lookback)
        # The job's own graph stage, less the Parquet write (the peers write nothing either).
        edges, _, quality = build_graph_edges(source, window, cfg, dup_ids, compute,
                                              default_buckets(cfg, total_threads(client)), None, None)
        seconds = time.perf_counter() - t1
    return {"seconds": seconds, "cluster_start_s": t_cluster, "ties": edges.num_rows,
            "calls": int(edges.column("calls_ab").to_numpy().sum() + edges.column("calls_ba").to_numpy().sum()),
            "days": int(edges.column("active_days").to_numpy().sum()),
            "rows_in": quality["rows_in"]}


def ensure_data(n_subscribers: int, weeks: int) -> Path:
    data = HERE / "data" / f"synth-{n_subscribers}-{weeks}w"
    if not (data / "job.yaml").exists():
        from pipelines.synth_io import write_synthetic
        from socialgraph.synth import SynthConfig

        print(f"generating synthetic operator in {data} ...", file=sys.stderr)
        write_synthetic(data, SynthConfig(n_subscribers=n_subscribers, weeks=weeks))
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=1_000_000)
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--engine", choices=["ours", "duckdb", "polars"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--as-of", help=argparse.SUPPRESS)
    ap.add_argument("--lookback", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--skip", nargs="*", default=[], help="engines to leave out")
    ap.add_argument("--repeats", type=int, default=3,
                    help="rounds, each running every engine once (default 3; the table gives medians)")
    args = ap.parse_args()

    if args.engine:  # child mode: one engine, one JSON line
        import datetime as dt

        data = Path(args.data)
        as_of = dt.date.fromisoformat(args.as_of)
        start = (as_of - dt.timedelta(days=args.lookback)).isoformat()
        if args.engine == "ours":
            res = run_ours(data, args.as_of, args.lookback)
        elif args.engine == "duckdb":
            res = run_duckdb(data, start, args.as_of)
        else:
            res = run_polars(data, start, args.as_of)
        print(json.dumps(res))
        return

    data = ensure_data(args.subscribers, args.weeks)
    import yaml  # noqa: F401
    from socialgraph.synth import SynthConfig

    sc = SynthConfig(n_subscribers=args.subscribers, weeks=args.weeks)
    import datetime as dt

    as_of = (sc.start_date + dt.timedelta(days=7 * sc.weeks)).isoformat()
    lookback = 7 * sc.weeks
    engines = [e for e in ("ours", "duckdb", "polars") if e not in args.skip]
    # Rounds interleave the engines, so a slow spell of the machine hits every engine alike; the
    # table gives each engine's median time and the median of the per-round ratios.
    rounds: list[dict] = []
    n_rounds = max(1, args.repeats)
    for k in range(n_rounds):
        rounds.append({})
        for engine in engines:
            print(f"round {k + 1}/{n_rounds}: running {engine} ...", file=sys.stderr)
            rounds[-1][engine] = run_measured([__file__, "--engine", engine, "--data", str(data),
                                               "--as-of", as_of, "--lookback", str(lookback)])
    print(summary(rounds, data.name))


def summary(rounds: list[dict], world: str) -> str:
    """The benchmark's table: per engine the median seconds over the rounds, the median and
    range of its per-round ratio to DuckDB, and the largest peak memory of any round.

    >>> r = lambda s, g: {"seconds": s, "peak_rss_gib": g, "ties": 2, "calls": 3, "days": 4}
    >>> rounds = [{"ours": r(8.0, 3.5), "duckdb": r(10.0, 3.0)}, {"ours": r(9.0, 3.6), "duckdb": r(9.0, 3.1)},
    ...           {"ours": r(7.0, 3.4), "duckdb": r(10.0, 3.2)}]
    >>> print(summary(rounds, "w").splitlines()[4])
    ours              8.00          0.80   0.70-1.00      3.60           2             3             4
    """
    engines = list(rounds[0])
    lines = [f"graph build on {world}: {rounds[0].get('ours', {}).get('rows_in', 0):,} CDR rows, 2 cores, "
             f"{len(rounds)} round(s)", "",
             f"{'engine':<12}{'seconds':>10}{'ratio/duckdb':>14}{'range':>12}{'peak GiB':>10}{'ties':>12}"
             f"{'calls':>14}{'days':>14}", f"{'':<12}{'(median)':>10}{'(median)':>14}{'':>12}{'(max)':>10}"]
    for name in engines:
        runs = [rd[name] for rd in rounds]
        ratios = [rd[name]["seconds"] / rd["duckdb"]["seconds"] for rd in rounds if "duckdb" in rd]
        ratio = f"{median(ratios):.2f}" if ratios else "-"
        span = f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "-"
        r = runs[0]
        lines.append(f"{name:<12}{median([x['seconds'] for x in runs]):>10.2f}{ratio:>14}{span:>12}"
                     f"{max(x['peak_rss_gib'] for x in runs):>10.2f}{r['ties']:>12,}{r['calls']:>14,}{r['days']:>14,}")
    if "ours" in engines and "cluster_start_s" in rounds[0]["ours"]:
        start = median([rd["ours"]["cluster_start_s"] for rd in rounds])
        lines.append(f"\n(ours: local cluster start-up {start:.1f} s, not included)")
    agree = {(x["ties"], x["calls"], x["days"]) for rd in rounds for x in rd.values()}
    lines.append("outputs agree" if len(agree) == 1 else f"OUTPUTS DIFFER: {agree}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""CSV exports to Parquet: ``socialgraph convert`` vs DuckDB vs Polars on the same files, 2 cores.

    python benchmarks/convert.py                      # the 500k-subscriber operator (~10M rows)
    python benchmarks/convert.py --subscribers 50000  # a quick look
    python benchmarks/convert.py --repeats 1          # one round (default 3)

The synthetic operator's CDRs are written once as CSV under ``benchmarks/data/`` (times as
text, one file per week, as exports come). Each engine then converts them in its own process
(peak memory = the process's resident memory, sampled) to Parquet with every column as text,
zstd-compressed, one output file per input file: ``socialgraph convert`` (the command's own
function, streaming in row groups, a file per core at once), DuckDB (``read_csv(all_varchar=true)``
then ``COPY ... TO``, 2 threads) and Polars (``scan_csv(infer_schema=False).sink_parquet``,
2 threads), each peer a file after the other as a script would loop over an export's files. The outputs are checked to hold the
same rows and the same text (the peers read an empty cell as null, ``convert`` as the empty
text it is) before the times are compared. Rounds interleave the engines. The
peers need ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _measure import run_measured  # noqa: E402


def ensure_csv(subscribers: int) -> Path:
    """The operator's CDRs as CSV files (written once), and the world behind them."""
    world = HERE / "data" / f"synth-{subscribers}-12w"
    csv_dir = HERE / "data" / f"csv-{subscribers}-12w"
    if not (world / "cdr").exists():
        from pipelines.synth_io import write_synthetic
        from socialgraph.synth import SynthConfig

        print(f"generating the synthetic operator in {world} ...", flush=True)
        write_synthetic(world, SynthConfig(n_subscribers=subscribers, weeks=12))
    if not (csv_dir / "done").exists():
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        print(f"writing its CDRs as CSV in {csv_dir} ...", flush=True)
        shutil.rmtree(csv_dir, ignore_errors=True)
        csv_dir.mkdir(parents=True)
        for i, f in enumerate(sorted((world / "cdr").rglob("*.parquet"))):
            t = pq.read_table(f)
            t = t.set_column(t.column_names.index("start_time"), "start_time",
                             pc.strftime(t.column("start_time"), format="%Y-%m-%d %H:%M:%S"))
            pacsv.write_csv(pa.table({n: pc.cast(t.column(n), pa.string()) for n in t.column_names}),
                            csv_dir / f"cdr-{i:03d}.csv")
        (csv_dir / "done").write_text("")
    return csv_dir


def _files(csv_dir: Path) -> list[Path]:
    return sorted(csv_dir.glob("*.csv"))


def run_ours(csv_dir: Path, out: Path) -> dict:
    from pipelines.convert import convert

    t0 = time.perf_counter()
    results = convert([str(csv_dir)], out, force=True)
    return {"seconds": time.perf_counter() - t0, "rows": sum(r.rows for r in results)}


def run_duckdb(csv_dir: Path, out: Path) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = 0
    for f in _files(csv_dir):
        target = out / f"{f.stem}.parquet"
        con.execute(f"COPY (SELECT * FROM read_csv('{f}', all_varchar = true, header = true)) "
                    f"TO '{target}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 131072)")
        rows += con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0]
    return {"seconds": time.perf_counter() - t0, "rows": int(rows)}


def run_polars(csv_dir: Path, out: Path) -> dict:
    os.environ["POLARS_MAX_THREADS"] = "2"
    import polars as pl

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = 0
    for f in _files(csv_dir):
        target = out / f"{f.stem}.parquet"
        pl.scan_csv(f, infer_schema=False).sink_parquet(target, compression="zstd", row_group_size=131072)
        rows += pl.scan_parquet(target).select(pl.len()).collect().item()
    return {"seconds": time.perf_counter() - t0, "rows": int(rows)}


ENGINES = {"socialgraph convert": run_ours, "duckdb": run_duckdb, "polars": run_polars}


def _child(engine: str, csv_dir: str, out: str) -> None:
    print(json.dumps(ENGINES[engine](Path(csv_dir), Path(out))))


def _same_text(a: Path, b: Path) -> bool:
    """Two engines' outputs hold the same rows in the same order in their first files, an
    empty cell compared as empty text (DuckDB and Polars read one as null; ``convert`` keeps
    it as the empty string it is)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    first = sorted(a.rglob("*.parquet"))[0].name
    ta, tb = pq.read_table(a / first), pq.read_table(b / first)
    if sorted(ta.column_names) != sorted(tb.column_names) or ta.num_rows != tb.num_rows:
        return False
    return all(pc.fill_null(ta.column(c), "").equals(pc.fill_null(tb.column(c).cast(pa.string()), ""))
               for c in ta.column_names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=500_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    csv_dir = ensure_csv(args.subscribers)
    size = sum(f.stat().st_size for f in _files(csv_dir))
    scratch = HERE / "data" / f"convert-out-{args.subscribers}"
    times: dict[str, list[float]] = {e: [] for e in ENGINES}
    peaks: dict[str, list[float]] = {e: [] for e in ENGINES}
    rows: dict[str, int] = {}
    names = list(ENGINES)
    for r in range(args.repeats):
        for k in range(len(names)):
            engine = names[(r + k) % len(names)]
            out = scratch / engine.replace(" ", "-")
            shutil.rmtree(out, ignore_errors=True)
            res = run_measured([__file__, "--child", engine, str(csv_dir), str(out)])
            times[engine].append(res["seconds"])
            peaks[engine].append(res["peak_rss_gib"])
            rows[engine] = res["rows"]
    if len(set(rows.values())) != 1:
        raise SystemExit(f"the engines disagree on the rows: {rows}")
    outs = [scratch / e.replace(" ", "-") for e in names]
    for other in outs[1:]:
        if not _same_text(outs[0], other):
            raise SystemExit(f"{other.name} wrote other text than {outs[0].name}")
    ref = median(times["duckdb"])
    print(f"\n{len(_files(csv_dir))} CSV files, {size / 2**30:.2f} GiB, {rows['duckdb']:,} rows; "
          f"{args.repeats} interleaved round(s); same rows and text in every engine's output")
    print(f"{'engine':<22}{'best s':>9}{'median s':>10}{'MiB/s':>8}{'time / DuckDB':>15}{'peak GiB':>10}")
    for e in names:
        med = median(times[e])
        print(f"{e:<22}{min(times[e]):>9.2f}{med:>10.2f}{size / 2**20 / med:>8.0f}{med / ref:>15.2f}"
              f"{max(peaks[e]):>10.2f}")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Score churn_risk against the synthetic operator's ground truth (churn after the as-of date).

    python benchmarks/churn_eval.py --subscribers 50000            # synth + run + evaluate
    python benchmarks/churn_eval.py --world DIR --out DIR          # evaluate an existing run

Prints AUC and lift in the top 10 % for ``churn_risk`` and for simpler scores (tenure only,
exposure only, inverse stickiness) on the churn that followed the as-of date; re-entries (the
same person on a new on-net number) are not losses and are not counted as churn.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from socialgraph.risk import auc, lift_at


def evaluate(world: Path, out: Path) -> list[tuple[str, float, float]]:
    scored = pq.read_table(out / "subscribers_scored.parquet").to_pandas()
    churn = pq.read_table(world / "truth" / "churn.parquet").to_pandas()
    future = churn[churn["after_as_of"] & (churn["destination"] != "reentry")]
    y = scored["msisdn"].isin(set(future["msisdn"])).to_numpy()
    tenure = scored["tenure_days"].to_numpy()
    scores = {
        "churn_risk": scored["churn_risk"].to_numpy(),
        "tenure only (3-9 months riskiest, then newest)": -np.abs(tenure - 180) ,
        "tenure only (newest riskiest)": -tenure.astype(float),
        "exposure only": scored["exposure"].to_numpy(),
        "1 - stickiness": 1 - scored["stickiness"].to_numpy(),
    }
    print(f"{len(y):,} subscribers active at as-of; {int(y.sum()):,} churn after it "
          f"({y.mean():.2%}, re-entries excluded)\n")
    print(f"{'score':<48}{'AUC':>8}{'lift@10%':>10}")
    rows = []
    for name, s in scores.items():
        rows.append((name, auc(s, y), lift_at(s, y, 0.1)))
        print(f"{name:<48}{rows[-1][1]:>8.3f}{rows[-1][2]:>10.2f}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=50_000)
    ap.add_argument("--weeks", type=int, default=12)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--world")
    ap.add_argument("--out")
    args = ap.parse_args()
    here = Path(__file__).resolve().parent / "data"
    world = Path(args.world) if args.world else here / f"synth-{args.subscribers}-{args.weeks}w-s{args.seed}"
    out = Path(args.out) if args.out else world / "run"
    exe = [sys.executable, "-m", "pipelines.cli"]
    if not (world / "job.yaml").exists():
        subprocess.run(exe + ["synth", "--out", str(world), "--subscribers", str(args.subscribers),
                              "--weeks", str(args.weeks), "--seed", str(args.seed)], check=True)
    if not (out / "subscribers_scored.parquet").exists():
        subprocess.run(exe + ["run", "--cdr", str(world / "cdr"), "--subscribers", str(world / "subscribers.parquet"),
                              "--operators", str(world / "operators.yaml"), "--config", str(world / "job.yaml"),
                              "--out", str(out)], check=True)
    evaluate(world, out)


if __name__ == "__main__":
    main()

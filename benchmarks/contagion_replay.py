"""Re-run only the contagion test of a finished run, from its checkpoints, and score it.

    python benchmarks/contagion_replay.py --world benchmarks/data/synth-500000-12w --run OUT
    python benchmarks/contagion_replay.py --world ... --run OUT --set fdr=0.2 --set window_days=21
    python benchmarks/contagion_replay.py --world ... --run OUT --permutations 6
    python benchmarks/contagion_replay.py --world ... --run OUT --truth-circles
    python benchmarks/contagion_replay.py --world ... --run OUT --calibration

A change to the contagion code changes every stage's fingerprint (the code is hashed), so
``socialgraph run --resume`` recomputes the whole job; this replays just
:func:`socialgraph.contagion.circle_contagion` on the circles, number changes and scores saved
under ``OUT/.checkpoints`` (a few seconds at 500,000 subscribers instead of minutes), writes
``circles.parquet``, ``circle_members.parquet`` and ``targets.csv`` to a scratch directory and
prints :mod:`circles_eval`'s campaign figures.

``--permutations N`` is the null check: churn (its day and whether it was a re-entry) is
shuffled among the subscribers active at the window start within each baseline stratum (tenure
band x plan x ARPU quartile x contact-count quartile), which keeps every stratum's churn rate
and removes any tie between churn and circles; every circle flagged then is a false discovery,
so under this global null the share of permutations with any flag estimates the family-wise
error, which BH bounds by ``fdr``.

``--truth-circles`` tests the world's true households and workplaces (from ``truth/``) instead
of the run's circles, with the same null, weights and q-values: the recall and precision the
test would reach if circle inference from calls were perfect. The gap to the run's own figures
is what circle recovery costs, not the test.

``--calibration`` checks the null against the world's own independent churn, heterogeneity
included (the permutations above only check the arithmetic of a null that holds by
construction): every churn the truth marks as dependent (a campaign's, or social contagion's)
is undone, the test is replayed, and for thresholds ``t`` the circles with ``p <= t`` are
counted against the null's own expectation, ``sum_j F_j(t)`` (``F_j(t)``: the largest p-value
circle ``j`` can reach at or below ``t``, the count discrete BH uses). These are a run's own
``beyond_chance`` figures (manifest ``circles``), on the world with its dependent churn undone.
A ratio near 1 says the stratum baselines describe the members' churn; well below 1 would say
the test is conservative and leaves power unused, well above that it is anti-conservative.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from circles_eval import evaluate  # noqa: E402
from pipelines.config_file import load_config  # noqa: E402
from socialgraph.contagion import baseline_strata, circle_contagion  # noqa: E402
from socialgraph.numbers import format_numbers, number_keys  # noqa: E402
from socialgraph.offers import build_targets  # noqa: E402
from socialgraph.subscribers import NEVER, Subscribers, day_number, subscribers_from_arrow  # noqa: E402

_MEMBER_COLS = ["circle_id", "kind", "source", "key", "node", "on_net", "active", "strength",
                "strongest_tie", "influence", "role"]
_SHOW = ["flagged", "recall_cluster_before_as_of", "campaign_precision", "social_precision", "cluster_precision",
         "dependent_churn_precision", "off_campaign", "targets_lift",
         "recall_if_2_left_before_as_of", "recall_if_3_left_before_as_of", "recall_if_4+_left_before_as_of",
         "recall_family", "recall_vnet", "recall_household", "recall_workplace"]


def _msisdn(keys: np.ndarray) -> np.ndarray:
    f = format_numbers(np.asarray(keys, np.int64))
    return f.to_numpy(zero_copy_only=False) if hasattr(f, "to_numpy") else np.asarray(f)


def load(world: Path, run: Path) -> dict:
    """The inputs of the contagion test, as the circles stage of ``run`` saw them."""
    ck = run / ".checkpoints"
    with open(ck / "circles" / "payload.pkl", "rb") as fh:
        saved = pickle.load(fh)
    with open(ck / "number_changes" / "payload.pkl", "rb") as fh:
        changes = pickle.load(fh)
    with open(ck / "scores" / "payload.pkl", "rb") as fh:
        scored = pickle.load(fh)["scored"]
    cfg = load_config(str(world / "job.yaml"))
    manifest = json.loads((run / "manifest.json").read_text())
    subs = subscribers_from_arrow(pq.read_table(world / "subscribers.parquet"), cfg.numbers)
    nodes = pq.read_table(run / "nodes.parquet", columns=["msisdn", "degree"]).to_pandas()
    degree = pd.Series(nodes["degree"].to_numpy(), index=number_keys(nodes["msisdn"].to_numpy(object), cfg.numbers))
    return {
        "members": saved["members"][_MEMBER_COLS].copy(), "changes": changes, "scored": scored, "cfg": cfg,
        "subs": subs, "contacts": degree.reindex(subs.key).fillna(0).to_numpy(np.int64),
        "as_of_day": day_number(pd.Timestamp(manifest["window"]["as_of"]).date()), "manifest": manifest,
    }


def contagion(inputs: dict, cfg, subs: Subscribers | None = None, reentry_keys=None, diagnostics=None):
    ch, sc = inputs["changes"], inputs["scored"]
    return circle_contagion(
        inputs["members"], inputs["subs"] if subs is None else subs, inputs["as_of_day"], cfg,
        reentry_keys=ch.loc[ch["kind"] == "reentry", "old_key"].to_numpy() if reentry_keys is None else reentry_keys,
        port_keys=ch.loc[ch["kind"] == "port", "old_key"].to_numpy(),
        competitor_share=pd.Series(sc["competitor_share"].to_numpy(), index=sc["key"].to_numpy()),
        contacts=inputs["contacts"], diagnostics=diagnostics)


def score(world: Path, run: Path, inputs: dict, circles: pd.DataFrame, members: pd.DataFrame) -> dict:
    """circles_eval's figures of a replayed test (targets rebuilt with the run's offers config)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "manifest.json").write_text(json.dumps(inputs["manifest"]))
        circles.to_parquet(out / "circles.parquet")
        pd.DataFrame({"circle_id": members["circle_id"].to_numpy(), "msisdn": _msisdn(members["key"]),
                      "churned": members["churned"].to_numpy()}).to_parquet(out / "circle_members.parquet")
        (out / "number_changes.parquet").symlink_to((run / "number_changes.parquet").resolve())
        t = build_targets(circles, members, inputs["scored"], inputs["subs"], inputs["changes"], inputs["cfg"].offers)
        t.assign(msisdn=_msisdn(t["key"])).to_csv(out / "targets.csv", index=False)
        return evaluate(world, out)


def truth_members(world: Path, inputs: dict) -> pd.DataFrame:
    """The world's true households (2+ on-net members) and workplaces (3+) as circles, in the
    members table's shape: what the test would find if circle inference were perfect."""
    memb = pq.read_table(world / "truth" / "membership.parquet",
                         columns=["msisdn", "on_net", "household_id", "workplace_id"]).to_pandas()
    memb = memb[memb["on_net"].astype(bool)]
    keys = number_keys(memb["msisdn"].astype(str).to_numpy(object), inputs["cfg"].numbers)
    parts = []
    for col, prefix, kind, least in (("household_id", "fam", "family", 2), ("workplace_id", "wrk", "social", 3)):
        d = pd.DataFrame({"unit": memb[col].to_numpy(), "key": keys}).dropna(subset=["unit"]).drop_duplicates()
        d = d[d.groupby("unit")["key"].transform("size") >= least]
        parts.append(d.assign(circle_id=prefix + "-" + d["unit"].astype(str), kind=kind))
    m = pd.concat(parts, ignore_index=True).sort_values(["circle_id", "key"], ignore_index=True)
    # ``node`` (the graph row) is not read by the test or the offers
    return m.assign(source="inferred", node=-1, on_net=True, active=True, strength=1.0, strongest_tie=1.0, influence=0.0,
                    role=np.where(m.groupby("circle_id").cumcount() == 0, "anchor", "member"))[_MEMBER_COLS]


def permuted_null(inputs: dict, cfg, n: int) -> list[tuple[int, int]]:
    """(circles with q <= fdr, circles flagged) under each of ``n`` within-stratum permutations."""
    subs, start = inputs["subs"], inputs["as_of_day"] - cfg.window_days
    act = np.flatnonzero(subs.active_at(start))
    stratum = baseline_strata(subs, start, inputs["contacts"])[act]
    ch = inputs["changes"]
    reentry = np.isin(subs.key, ch.loc[ch["kind"] == "reentry", "old_key"].to_numpy())
    out = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        perm = np.arange(act.size)
        for s in np.unique(stratum):
            i = np.flatnonzero(stratum == s)
            perm[i] = i[rng.permutation(i.size)]
        churn_day, re = subs.churn_day.copy(), reentry.copy()
        churn_day[act], re[act] = subs.churn_day[act[perm]], reentry[act[perm]]
        c, _ = contagion(inputs, cfg, Subscribers(subs.frame.assign(churn_day=churn_day)), subs.key[re])
        out.append((int((c["q_value"] <= cfg.fdr).sum()), int(c["contagion"].sum())))
    return out


def calibration(world: Path, inputs: dict, cfg, thresholds=(1e-2, 1e-3, 1e-4, 1e-5)) -> tuple[list[tuple], int]:
    """(t, circles with p <= t, the null's expected count) with the world's dependent churn
    undone, and the circles flagged there (every one a false discovery)."""
    churn = pq.read_table(world / "truth" / "churn.parquet", columns=["msisdn", "cause"]).to_pandas()
    dependent = churn.loc[churn["cause"] != "base", "msisdn"].astype(str).to_numpy(object)
    subs = inputs["subs"]
    undone = np.isin(subs.key, number_keys(dependent, inputs["cfg"].numbers))
    clean = Subscribers(subs.frame.assign(churn_day=np.where(undone, NEVER, subs.churn_day)))
    diagnostics = {"p_at_most": thresholds}
    circles, _ = contagion(inputs, cfg, clean, diagnostics=diagnostics)
    bc = diagnostics["beyond_chance"]
    out = list(zip(bc["p_at_most"], bc["circles"], bc["by_chance"]))
    return out, int(circles["contagion"].sum())


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", required=True, type=Path)
    ap.add_argument("--run", required=True, type=Path, help="a finished run of the world (with .checkpoints)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="contagion config override")
    ap.add_argument("--permutations", type=int, default=0, help="null check: permutations of churn labels")
    ap.add_argument("--truth-circles", action="store_true",
                    help="test the world's true households and workplaces instead of the run's circles "
                         "(the bound that perfect circle inference would reach)")
    ap.add_argument("--calibration", action="store_true",
                    help="null check on the world's own churn: undo its dependent churn and compare "
                         "circles with p <= t against the null's expected count")
    a = ap.parse_args()
    inputs = load(a.world, a.run)
    if a.truth_circles:
        inputs["members"] = truth_members(a.world, inputs)
    cfg = replace(inputs["cfg"].contagion, **{k: _value(v) for k, v in (s.split("=", 1) for s in a.set)})
    circles, members = contagion(inputs, cfg)
    res = score(a.world, a.run, inputs, circles, members)
    for k in _SHOW:
        v = res[k]
        print(f"{k:<32}  {v:.3f}" if isinstance(v, float) else f"{k:<32}  {v}")
    if a.permutations:
        null = permuted_null(inputs, cfg, a.permutations)
        print(f"permuted null: (q <= {cfg.fdr}, flagged) per permutation {null}; "
              f"share with any flag {np.mean([f > 0 for _, f in null]):.2f}")
    if a.calibration:
        rows, flagged = calibration(a.world, inputs, cfg)
        print(f"calibration (dependent churn undone; {flagged} flagged, all false):")
        print(f"{'':<40}    t  circles p<=t   expected   ratio")
        for t, seen, expected in rows:
            print(f"{'':<40}{t:.0e}  {seen:12d}  {expected:9.1f}  {seen / expected if expected else float('nan'):6.2f}")


if __name__ == "__main__":
    main()

"""Circle identity across runs: warm starts, stable ids, lineage and history.

Community detection reshuffles communities after small changes of the graph, and a marketer
cannot follow "circle 4711" if it is called something else next month. With the previous
run's circles:

1. **Warm start** (:func:`initial_membership`): Leiden starts each layer from the previous
   partition, so a month in which a few ties change keeps nearly every circle.
2. **Stable ids** (:func:`match_circles`): a current inferred circle takes the id of the
   previous circle of the same kind and layer (id prefix: a work circle never continues a
   friends circle) it overlaps most when each is the other's best match
   (member Jaccard) and the Jaccard reaches ``min_jaccard``; declared circles keep the
   operator's ids by construction.
3. **Lineage**: one row per link between a previous and a current circle: ``kept`` (matched),
   ``split`` (a previous circle whose members now make up several current circles),
   ``merged`` (a current circle made of several previous ones), ``new`` and ``gone``. A link is
   significant when at least half of the smaller circle's members are in the other.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from .arrays import unique_inverse

__all__ = ["initial_membership", "match_circles", "LINEAGE_EVENTS", "inferred_id", "previous_churn",
           "history_rows", "carry_history", "mark_previous_targets"]

LINEAGE_EVENTS = ("kept", "split", "merged", "new", "gone")
_SIGNIFICANT = 0.5


def inferred_id(prefix: str, key: int, salt: int = 0) -> str:
    """The id of an inferred circle: a hash of its lowest member number (never the number)."""
    data = int(key).to_bytes(8, "little", signed=True) + (b"" if salt == 0 else salt.to_bytes(4, "little"))
    return f"{prefix}-{hashlib.blake2b(data, digest_size=5).hexdigest()}"


def initial_membership(node_keys: np.ndarray, previous: pd.DataFrame) -> np.ndarray:
    """A start partition for Leiden: nodes of a previous circle share its label, every other
    node is alone. ``previous`` has ``circle_id, key`` (one layer's circles); labels are
    ``0..n-1``.

    >>> initial_membership(np.array([5, 6, 7, 8]), pd.DataFrame({"circle_id": ["a", "a", "b"], "key": [6, 8, 99]})).tolist()
    [0, 1, 2, 1]
    """
    n = node_keys.size
    label = np.arange(n, dtype=np.int64)
    if len(previous):
        pos = np.searchsorted(node_keys, previous["key"].to_numpy(np.int64))
        pos = np.minimum(pos, max(n - 1, 0))
        found = node_keys[pos] == previous["key"].to_numpy(np.int64)
        codes = pd.factorize(previous["circle_id"])[0]
        # each previous circle takes the label of its first present node
        p, c = pos[found], codes[found]
        first = pd.Series(p).groupby(c).transform("min").to_numpy()
        label[p] = first
    _, compact = unique_inverse(label)
    return compact.astype(np.int64)


def _layer_key(members: pd.DataFrame) -> pd.DataFrame:
    """``circle_id, key`` and the circle's layer: its kind and id prefix (``wrk``, ``soc``...)."""
    return pd.DataFrame({"circle_id": members["circle_id"].to_numpy(), "key": members["key"].to_numpy(),
                         "layer": (members["kind"].astype(str) + "/"
                                   + members["circle_id"].astype(str).str.split("-", n=1).str[0]).to_numpy()})


def _overlaps(current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    both = _layer_key(current).merge(_layer_key(previous), on=["layer", "key"], suffixes=("", "_prev"))
    ov = both.groupby(["circle_id", "circle_id_prev"]).size().rename("overlap").reset_index()
    ov["n"] = ov["circle_id"].map(current.groupby("circle_id").size())
    ov["n_prev"] = ov["circle_id_prev"].map(previous.groupby("circle_id").size())
    ov["jaccard"] = ov["overlap"] / (ov["n"] + ov["n_prev"] - ov["overlap"])
    ov["significant"] = ov["overlap"] >= _SIGNIFICANT * np.minimum(ov["n"], ov["n_prev"])
    return ov


def match_circles(current: pd.DataFrame, previous: pd.DataFrame, min_jaccard: float = 0.5
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give current inferred circles the ids of the previous circles they continue.

    ``current`` and ``previous``: one row per (circle, member) with ``circle_id, kind,
    source, key``. Declared circles keep their ids. Returns the current members with ids
    replaced, and the lineage (``previous_id, circle_id, kind, overlap, jaccard, event``).

    >>> prev = pd.DataFrame({"circle_id": ["soc-a"] * 4, "kind": "social", "source": "inferred",
    ...                      "key": [1, 2, 3, 4]})
    >>> cur = pd.DataFrame({"circle_id": ["soc-x"] * 4, "kind": "social", "source": "inferred",
    ...                     "key": [1, 2, 3, 5]})
    >>> m, lin = match_circles(cur, prev)
    >>> m["circle_id"].unique().tolist(), lin[["previous_id", "circle_id", "event"]].values.tolist()
    (['soc-a'], [['soc-a', 'soc-a', 'kept']])
    """
    if not 0 < min_jaccard <= 1:
        raise ValueError(f"match_circles: min_jaccard must be in (0, 1], got {min_jaccard}")
    cur_inf = current[current["source"] == "inferred"]
    prev_inf = previous[previous["source"] == "inferred"]
    ov = _overlaps(cur_inf, prev_inf)
    # mutual best matches by Jaccard (ties: lower previous id, then lower current id)
    best_c = ov.sort_values(["circle_id", "jaccard", "circle_id_prev"], ascending=[True, False, True]).drop_duplicates("circle_id")
    best_p = ov.sort_values(["circle_id_prev", "jaccard", "circle_id"], ascending=[True, False, True]).drop_duplicates("circle_id_prev")
    kept = best_c.merge(best_p[["circle_id", "circle_id_prev"]], on=["circle_id", "circle_id_prev"])
    kept = kept[kept["jaccard"] >= min_jaccard]
    rename = dict(zip(kept["circle_id"], kept["circle_id_prev"]))

    # a fresh id that collides with a previous id it does not continue is re-salted
    used = set(previous["circle_id"]) | set(rename.values())
    for cid in sorted(set(cur_inf["circle_id"]) - set(rename)):
        new = cid
        if new in used:
            prefix = cid.split("-", 1)[0]
            low = int(cur_inf.loc[cur_inf["circle_id"] == cid, "key"].min())
            salt = 1
            while (new := inferred_id(prefix, low, salt)) in used:
                salt += 1
        rename[cid] = new
        used.add(new)

    out = current.copy()
    out["circle_id"] = out["circle_id"].map(lambda c: rename.get(c, c))

    kind_of = pd.concat([cur_inf.drop_duplicates("circle_id").set_index("circle_id")["kind"],
                         prev_inf.drop_duplicates("circle_id").set_index("circle_id")["kind"]])
    kind_of = kind_of[~kind_of.index.duplicated()]
    sig = ov[ov["significant"]]
    links_p = ov["circle_id_prev"].map(sig.groupby("circle_id_prev").size()).fillna(0)
    links_c = ov["circle_id"].map(sig.groupby("circle_id").size()).fillna(0)
    is_kept = pd.MultiIndex.from_frame(ov[["circle_id", "circle_id_prev"]]).isin(
        pd.MultiIndex.from_frame(kept[["circle_id", "circle_id_prev"]])) if len(kept) else np.zeros(len(ov), bool)
    event = np.select([is_kept, ov["significant"] & (links_p >= 2), ov["significant"] & (links_c >= 2)],
                      ["kept", "split", "merged"], default="")
    # a one-to-one link too weak to keep the id is no link: the circles are new and gone
    linked = ov[event != ""].assign(event=event[event != ""])
    parts = [pd.DataFrame({"previous_id": linked["circle_id_prev"], "circle_id": linked["circle_id"].map(rename),
                           "kind": linked["circle_id"].map(kind_of), "overlap": linked["overlap"].astype(np.int64),
                           "jaccard": linked["jaccard"].astype(np.float64), "event": linked["event"]})]
    fresh = np.setdiff1d(cur_inf["circle_id"].unique(), linked["circle_id"].unique())
    parts.append(pd.DataFrame({"previous_id": None, "circle_id": pd.Series(fresh).map(rename),
                               "kind": pd.Series(fresh).map(kind_of), "overlap": 0, "jaccard": 0.0, "event": "new"}))
    gone = np.setdiff1d(prev_inf["circle_id"].unique(), linked["circle_id_prev"].unique())
    parts.append(pd.DataFrame({"previous_id": gone, "circle_id": None, "kind": pd.Series(gone).map(kind_of),
                               "overlap": 0, "jaccard": 0.0, "event": "gone"}))
    # declared circles: the operator's ids are the identity
    cur_dec = current.loc[current["source"] == "declared", ["circle_id", "kind"]].drop_duplicates("circle_id")
    prev_dec = previous.loc[previous["source"] == "declared", ["circle_id", "kind"]].drop_duplicates("circle_id")
    both = cur_dec["circle_id"].isin(set(prev_dec["circle_id"])).to_numpy()
    parts.append(pd.DataFrame({"previous_id": np.where(both, cur_dec["circle_id"], None), "circle_id": cur_dec["circle_id"],
                               "kind": cur_dec["kind"], "overlap": 0, "jaccard": np.where(both, 1.0, 0.0),
                               "event": np.where(both, "kept", "new")}))
    lost = prev_dec[~prev_dec["circle_id"].isin(set(cur_dec["circle_id"]))]
    parts.append(pd.DataFrame({"previous_id": lost["circle_id"], "circle_id": None, "kind": lost["kind"],
                               "overlap": 0, "jaccard": 0.0, "event": "gone"}))
    parts = [p for p in parts if len(p)]
    columns = ["previous_id", "circle_id", "kind", "overlap", "jaccard", "event"]
    lineage = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    lineage["overlap"] = lineage["overlap"].astype(np.int64)
    lineage["jaccard"] = lineage["jaccard"].astype(np.float64)
    for c in ("previous_id", "circle_id", "kind", "event"):
        lineage[c] = lineage[c].astype(object).where(lineage[c].notna(), None)
    return out, lineage


def previous_churn(previous_circles: pd.DataFrame, lineage: pd.DataFrame) -> pd.Series:
    """Churn the previous run saw in each circle that continues (``kept``), by current id."""
    kept = lineage[lineage["event"] == "kept"]
    prev = previous_circles.set_index("circle_id")["churned_recent"]
    return pd.Series(prev.reindex(kept["previous_id"]).to_numpy(), index=kept["circle_id"].to_numpy()).dropna()


def history_rows(circles: pd.DataFrame, targets: pd.DataFrame, as_of_day: int) -> pd.DataFrame:
    """This run's line of ``circle_history.parquet``: one row per circle.

    >>> c = pd.DataFrame({"circle_id": ["a"], "kind": ["family"], "size": [3], "active_members": [2],
    ...                   "churned_recent": [1], "expected_churn": [0.1], "q_value": [0.5], "contagion": [False]})
    >>> history_rows(c, pd.DataFrame({"circle_id": []}), 20000)[["as_of_day", "circle_id", "targeted"]].values.tolist()
    [[20000, 'a', False]]
    """
    cols = ["circle_id", "kind", "size", "active_members", "churned_recent", "expected_churn", "q_value", "contagion"]
    out = circles[cols].copy()
    out.insert(0, "as_of_day", np.int64(as_of_day))
    out["targeted"] = out["circle_id"].isin(set(targets["circle_id"])) if len(targets) else False
    return out.reset_index(drop=True)


def carry_history(previous_history: pd.DataFrame | None, lineage: pd.DataFrame | None,
                  current: pd.DataFrame) -> pd.DataFrame:
    """The previous runs' history with ids brought up to date (a circle that continues under
    the same id needs nothing; rows of circles that split, merged or went stay under their old
    ids), followed by this run's rows. Sorted by circle, then date."""
    parts = [] if previous_history is None else [previous_history[current.columns]]
    out = pd.concat([*parts, current], ignore_index=True)
    out = out.drop_duplicates(["circle_id", "as_of_day"], keep="last")
    return out.sort_values(["circle_id", "as_of_day"], kind="stable").reset_index(drop=True)


def mark_previous_targets(targets: pd.DataFrame, previous_targets: pd.DataFrame | None) -> pd.DataFrame:
    """Add ``circle_targeted_last_run`` and ``listed_last_run`` (the number was on the previous
    list): a marketer should not call the same people twice in a row without a reason."""
    out = targets.copy()
    if previous_targets is None or not len(previous_targets):
        out["circle_targeted_last_run"] = False
        out["listed_last_run"] = False
        return out
    out["circle_targeted_last_run"] = out["circle_id"].isin(set(previous_targets["circle_id"]))
    out["listed_last_run"] = out["key"].isin(set(previous_targets["key"]))
    return out

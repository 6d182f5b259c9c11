"""Offers: flagged circles become the marketer's contact list (``targets.csv``).

Only circles flagged by the contagion test (``contagion`` true) produce rows. The rules, and
why they are what they are:

**Who is on the list.** The active on-net members of a flagged circle (``on_net`` and
``active``), plus "bring back" rows (below). Off-net members who were never ours are not
contacted: the list is for retention, not acquisition.

**Do-not-disturb is absolute.** A number whose subscriber record has ``dnd`` (in the subscriber
table *or* the scored table) never appears anywhere in the list: not as anchor, not as member,
not as the target of a bring-back. The opt-out belongs to the person, so it also follows the
person across detected number changes: the new number of a re-entry or a port whose old
number opted out is treated as opted out too. A false detection then suppresses a contact
that was allowed, which is the safe direction.

**Offers.** ``family_bundle`` for family circles (declared family plans and inferred
households), ``group_bundle`` for V-nets and social circles (work circles, found among
working-hours ties, are named so in the reason). A member who churned in the contagion window
and was detected as a *port* (``changes.kind == 'port'``, ``old_key`` the member) on a tie of at
least ``OffersConfig.bring_back_min_weight`` to the circle (``strongest_tie``) gets one extra
row for the new, competitor number with offer ``bring_back`` and role ``member``. If a number
has several port detections, the most similar one is used. Bring-back rows have ``churn_risk``
NaN (we do not score competitors' subscribers) and, as ``arpu``, the ARPU of the old
subscription: what winning them back is worth.

**Order inside a circle.** The anchor first (the circle's most influential active member;
if the anchor opted out the circle has no anchor row -- the role is never reassigned, so it
always agrees with ``circle_members.parquet``), then members by ``churn_risk`` descending
(missing risk last), then number key ascending, so the order is deterministic; then the
bring-back rows by ``strongest_tie`` descending, then key.

**Priority.** Circles are ranked by ``value_at_stake``: the sum over the circle's active
on-net members of ``arpu * churn_risk``, the revenue per month expected to leave if nothing
is done (opted-out members count: their revenue is at stake even though only the others are
called; a member without a risk score counts 0). No circle-level factor (such as
observed/expected churn) is applied: ``churn_risk`` already carries the circle's pull through
its exposure features, a factor would count it twice, and the value would stop being money a
marketer can compare with the offer's cost. Ties are broken by ``q_value`` ascending (stronger
evidence first), then ``circle_id``. ``priority`` is 1 for the highest-ranked circle that has
rows, and consecutive over circles with rows.

**One call per person.** A number in several flagged circles is listed once, in its
highest-priority circle (a marketer must not call the same person twice with two offers). A
circle left without rows by this is dropped before priorities are numbered.
``value_at_stake`` stays the whole circle's value.

**Budget.** With ``OffersConfig.max_contacts > 0``, circles are taken in priority order, each
whole or not at all (its bundle is offered to the circle as a whole): a circle whose rows fit
in what is left of the budget is kept, one that does not is skipped and the next ones are
tried, so a large first circle does not leave a marketer with an empty list (it used to: a
budget of 20 and a V-net of 45 gave no row at all). A number is listed in the first kept
circle that has it. Priorities number the kept circles 1, 2, ... in order.

**Reason.** One plain-language sentence per circle, the same on all its rows, e.g. "Family
plan: 3 of 8 members left in the last 28 days (0.4 expected); 2 others now call a competitor
often; 1 who moved to a competitor can be won back." It holds counts only, never a number
or a circle id (declared ids come from the operator and could be anything).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .arrays import isin, unique
from .layers import circle_level
from .config import OffersConfig
from .subscribers import Subscribers

__all__ = ["OFFER_OF_KIND", "TARGET_COLUMNS", "build_targets", "circle_reason"]

#: the bundle offered to the active members of a circle of each kind
OFFER_OF_KIND = {"family": "family_bundle", "vnet": "group_bundle", "social": "group_bundle"}
BRING_BACK = "bring_back"

#: columns (and dtypes) of :func:`build_targets`' result
TARGET_COLUMNS = {
    "priority": np.int64, "circle_id": object, "kind": object, "key": np.int64, "role": object,
    "offer": object, "churn_risk": np.float64, "reason": object, "value_at_stake": np.float64,
    "arpu": np.float64,
}

_CIRCLE_COLUMNS = ("circle_id", "kind", "contagion", "size", "churned_recent", "expected_churn",
                   "window_days")
_MEMBER_COLUMNS = ("circle_id", "key", "on_net", "role", "churned", "active", "strongest_tie")
_CHANGE_COLUMNS = ("old_key", "new_key", "kind")

_LABEL = {("family", "declared"): "Family plan", ("family", "inferred"): "Household",
          ("social", "work"): "Work circle", ("social", "workplace"): "Workplace",
          "family": "Family circle", "vnet": "V-net work group", "social": "Social circle"}


def _check_columns(frame: pd.DataFrame, name: str, required) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"build_targets: table {name!r} lacks column(s) {', '.join(missing)} "
                         f"(has: {', '.join(map(str, frame.columns))}); produce them upstream")


def _check_values(values: pd.Series, name: str, allowed) -> None:
    bad = sorted(set(values.dropna().unique()) - set(allowed))
    if bad or values.isna().any():
        shown = bad[0] if bad else None
        raise ValueError(f"build_targets: column {name!r} has value {shown!r}; "
                         f"expected one of {', '.join(sorted(allowed))}")


def _flag(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A boolean column; missing values count as False (the cautious reading for every flag)."""
    col = frame[column]
    return col.fillna(False).astype(bool).to_numpy() if col.dtype != bool else col.to_numpy()


def _lookup(keys: np.ndarray, table_keys: np.ndarray, values: np.ndarray, default) -> np.ndarray:
    order = np.argsort(table_keys, kind="stable")
    sorted_keys = table_keys[order]
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, max(len(sorted_keys) - 1, 0))
    hit = (sorted_keys[pos] == keys) if len(sorted_keys) else np.zeros(len(keys), bool)
    out = np.full(len(keys), default, dtype=np.asarray(values).dtype if len(values) else float)
    out[hit] = np.asarray(values)[order][pos[hit]]
    return out


def _opted_out(subs: Subscribers, scored: pd.DataFrame, changes: pd.DataFrame) -> np.ndarray:
    """Sorted number keys that must never be listed (see the module docstring)."""
    parts = [np.asarray(subs.key, np.int64)[np.asarray(subs.dnd, bool)]]
    if "dnd" in scored.columns:
        parts.append(scored["key"].to_numpy(np.int64)[_flag(scored, "dnd")])
    dnd = unique(np.concatenate(parts))
    if len(changes):
        # a chain old -> new -> newer: repeat until no new number inherits the opt-out
        old = changes["old_key"].to_numpy(np.int64)
        new = changes["new_key"].to_numpy(np.int64)
        while True:
            grown = unique(np.concatenate([dnd, new[isin(old, dnd)]]))
            if len(grown) == len(dnd):
                break
            dnd = grown
    return dnd


def circle_reason(kind: str, source: str | None, size: int, churned: int, expected: float,
                  window_days: int, competitor_members: int = 0, bring_back: int = 0,
                  layer: str | None = None) -> str:
    """The plain-language sentence explaining why a circle is on the list.

    Parameters
    ----------
    kind, source : str
        Circle kind (``family``, ``vnet``, ``social``) and source (``declared``,
        ``inferred``; None if unknown).
    size, churned : int
        Members of the circle, and those who churned in the contagion window.
    expected : float
        Churners the members' baseline risks predict for the window (NaN: not quoted).
    window_days : int
        Length of the contagion window.
    competitor_members : int
        Active members now sending a large share of their traffic to competitors.
    bring_back : int
        Bring-back rows the circle has on the list.
    layer : str, optional
        The level the circle was found at (:func:`socialgraph.layers.circle_level`): ``work``
        names a social circle found among working-hours ties (colleagues) a work circle,
        ``workplace`` one that joins several of them a workplace.

    Returns
    -------
    str
        One sentence with counts only: never a phone number or a circle id.

    Examples
    --------
    >>> circle_reason("family", "declared", 8, 3, 0.42, 28, competitor_members=2, bring_back=1)
    'Family plan: 3 of 8 members left in the last 28 days (0.4 expected); 2 others now call a competitor often; 1 who moved to a competitor can be won back.'
    >>> circle_reason("vnet", "declared", 12, 1, 0.05, 1)
    'V-net work group: 1 of 12 members left in the last day (0.1 expected).'
    >>> circle_reason("social", "inferred", 9, 2, 0.1, 28, layer="work")
    'Work circle: 2 of 9 members left in the last 28 days (0.1 expected).'
    >>> circle_reason("social", "inferred", 25, 4, 1.2, 28, layer="workplace")
    'Workplace: 4 of 25 members left in the last 28 days (1.2 expected).'
    """
    label = _LABEL.get((kind, layer), _LABEL.get((kind, source), _LABEL.get(kind, "Circle")))
    members = "member" if size == 1 else "members"
    period = "the last day" if window_days == 1 else f"the last {window_days} days"
    text = f"{label}: {churned} of {size} {members} left in {period}"
    if np.isfinite(expected):  # a circle that could not be tested has no expectation to quote
        text += f" ({expected:.1f} expected)"
    if competitor_members > 0:
        text += ("; 1 other now calls a competitor often" if competitor_members == 1
                 else f"; {competitor_members} others now call a competitor often")
    if bring_back > 0:
        text += ("; 1 who moved to a competitor can be won back" if bring_back == 1
                 else f"; {bring_back} who moved to a competitor can be won back")
    return text + "."


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in TARGET_COLUMNS.items()})


def _check_inputs(circles, members, scored, subs, changes, check_tables: bool = True) -> None:
    _check_columns(circles, "circles", _CIRCLE_COLUMNS)
    _check_columns(members, "members", _MEMBER_COLUMNS)
    _check_columns(scored, "scored", ("key", "churn_risk"))
    _check_columns(changes, "changes", _CHANGE_COLUMNS)
    if not isinstance(subs, Subscribers):
        raise TypeError("build_targets: subs must be a socialgraph.subscribers.Subscribers "
                        "(use subscribers_from_arrow)")
    _check_values(circles["kind"], "circles.kind", OFFER_OF_KIND)
    _check_values(members["role"], "members.role", ("anchor", "member"))
    if len(members) and members["key"].min() < 0:
        raise ValueError("build_targets: column 'members.key' holds a negative (bad) number key")
    if not check_tables:
        return
    if circles["circle_id"].duplicated().any():
        raise ValueError("build_targets: table 'circles' repeats a circle_id; keep one row per circle")
    if members.duplicated(["circle_id", "key"]).any():
        raise ValueError("build_targets: table 'members' repeats a (circle_id, key) pair; "
                         "keep one row per circle member")
    if scored["key"].duplicated().any():
        raise ValueError("build_targets: table 'scored' repeats a key; keep one row per subscriber")
    anchors = members.loc[members["role"] == "anchor", "circle_id"]
    if anchors.duplicated().any():
        raise ValueError("build_targets: a circle has more than one anchor in 'members' "
                         "(column 'role'); keep at most one per circle")


def _within_budget(rank: np.ndarray, keys: np.ndarray, budget: int) -> np.ndarray:
    """Rows to keep (rows sorted by circle ``rank``, in call order within a circle): circles in
    rank order, each whole or not at all, a circle kept while its rows (numbers not listed in
    a circle kept before) fit in what is left of ``budget``, skipped otherwise; a number
    listed once, in the first kept circle that has it.

    >>> _within_budget(np.array([0, 0, 0, 1, 1, 2]), np.array([1, 2, 3, 4, 1, 5]), 2).tolist()
    [False, False, False, True, True, False]
    >>> _within_budget(np.array([0, 0, 0, 1, 1, 2]), np.array([1, 2, 3, 4, 1, 5]), 4).tolist()
    [True, True, True, True, False, False]
    """
    keep = np.zeros(rank.size, bool)
    starts = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]]) if rank.size else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], rank.size]
    listed: set = set()
    used = 0
    for s, e in zip(starts.tolist(), ends.tolist()):
        fresh, seen = [], set()
        for i in range(s, e):
            k = int(keys[i])
            if k not in listed and k not in seen:
                seen.add(k)
                fresh.append(i)
        if fresh and used + len(fresh) <= budget:
            keep[fresh] = True
            listed |= seen
            used += len(fresh)
    return keep


def build_targets(circles: pd.DataFrame, members: pd.DataFrame, scored: pd.DataFrame,
                  subs: Subscribers, changes: pd.DataFrame,
                  cfg: OffersConfig = OffersConfig(), *, check_tables: bool = True) -> pd.DataFrame:
    """The contact list: one row per (flagged circle, number to contact), in call order.

    Parameters
    ----------
    circles : DataFrame
        One row per circle: ``circle_id``, ``kind``, ``contagion``, ``size``,
        ``churned_recent``, ``expected_churn``, ``window_days``; optional ``source``,
        ``q_value`` (tie-break) and ``competitor_members`` (used in the reason).
    members : DataFrame
        One row per (circle, member): ``circle_id``, ``key``, ``on_net``, ``role``,
        ``churned``, ``active``, ``strongest_tie``.
    scored : DataFrame
        Scored subscribers: ``key``, ``churn_risk``, optional ``dnd``.
    subs : Subscribers
        The subscriber table (``key``, ``arpu``, ``dnd``).
    changes : DataFrame
        Detected number changes: ``old_key``, ``new_key``, ``kind``; optional ``similarity``.
    cfg : OffersConfig
    check_tables : bool
        Check that the tables hold one row per circle, per (circle, member) and per scored
        subscriber, with at most one anchor per circle (columns and values are checked
        always). The job passes False: its tables come from
        :func:`socialgraph.contagion.circle_contagion` and
        :func:`socialgraph.risk.score_subscribers`, whose outputs are tested to be so, and at
        100M CDR rows the checks (hashing 11M member rows' circle ids) took 10 of the offers
        stage's 14 s.

    Returns
    -------
    DataFrame
        Columns of :data:`TARGET_COLUMNS`, sorted by priority then call order. The rules
        (opt-outs, offers, order, priority, one listing per number, budget) are in the module
        docstring.

    Examples
    --------
    >>> import datetime as dt, pyarrow as pa
    >>> from socialgraph.subscribers import subscribers_from_arrow
    >>> subs = subscribers_from_arrow(pa.table({
    ...     "msisdn": ["13800000001", "13800000002", "13800000003"],
    ...     "activation_date": pa.array([dt.date(2025, 1, 1)] * 3),
    ...     "arpu": [50.0, 30.0, 20.0], "dnd": [False, False, True]}))
    >>> k1, k2, k3 = subs.key.tolist()
    >>> circles = pd.DataFrame({"circle_id": ["family:F1"], "kind": ["family"],
    ...     "source": ["declared"], "contagion": [True], "size": [4], "churned_recent": [1],
    ...     "expected_churn": [0.2], "window_days": [28], "competitor_members": [0]})
    >>> members = pd.DataFrame({"circle_id": "family:F1", "key": [k1, k2, k3],
    ...     "on_net": True, "role": ["member", "anchor", "member"], "churned": False,
    ...     "active": True, "strongest_tie": 3.0})
    >>> scored = pd.DataFrame({"key": [k1, k2, k3], "churn_risk": [0.5, 0.1, 0.9]})
    >>> changes = pd.DataFrame({"old_key": pd.Series(dtype="int64"),
    ...     "new_key": pd.Series(dtype="int64"), "kind": pd.Series(dtype=object)})
    >>> t = build_targets(circles, members, scored, subs, changes)
    >>> t[["priority", "role", "offer", "churn_risk"]].values.tolist()
    [[1, 'anchor', 'family_bundle', 0.1], [1, 'member', 'family_bundle', 0.5]]
    >>> float(t["value_at_stake"].iloc[0])  # 50*0.5 + 30*0.1 + 20*0.9 (opted out, still at stake)
    46.0
    """
    _check_inputs(circles, members, scored, subs, changes, check_tables)
    flagged = circles[_flag(circles, "contagion")].reset_index(drop=True)
    if flagged.empty:
        return _empty()
    dnd = _opted_out(subs, scored, changes)
    sub_keys = np.asarray(subs.key, np.int64)
    sub_arpu = np.asarray(subs.arpu, np.float64)

    mem = members[members["circle_id"].isin(flagged["circle_id"])].reset_index(drop=True)
    keys = mem["key"].to_numpy(np.int64)
    risk = _lookup(keys, scored["key"].to_numpy(np.int64),
                   scored["churn_risk"].to_numpy(np.float64), np.nan)
    arpu = _lookup(keys, sub_keys, sub_arpu, 0.0)
    live = _flag(mem, "on_net") & _flag(mem, "active")
    at_stake = pd.Series(np.where(live, arpu * np.nan_to_num(risk, nan=0.0), 0.0))
    value = at_stake.groupby(mem["circle_id"].to_numpy()).sum()
    flagged["value_at_stake"] = flagged["circle_id"].map(value).fillna(0.0).to_numpy(np.float64)
    q = flagged["q_value"] if "q_value" in flagged.columns else pd.Series(np.nan, index=flagged.index)
    flagged["_q"] = q.astype(float).fillna(np.inf)
    flagged = flagged.sort_values(["value_at_stake", "_q", "circle_id"], ascending=[False, True, True],
                                  kind="stable").reset_index(drop=True)
    rank = pd.Series(np.arange(len(flagged)), index=flagged["circle_id"].to_numpy())
    kind_of = pd.Series(flagged["kind"].to_numpy(), index=flagged["circle_id"].to_numpy())

    contact = live & ~isin(keys, dnd)
    anchor = (mem["role"] == "anchor").to_numpy()
    rows = pd.DataFrame({
        "circle_id": mem["circle_id"].to_numpy()[contact], "key": keys[contact],
        "role": np.where(anchor[contact], "anchor", "member").astype(object),
        "churn_risk": risk[contact], "arpu": arpu[contact],
        "_group": np.where(anchor[contact], 0, 1),
        "_tie": 0.0,
    })
    rows["offer"] = rows["circle_id"].map(kind_of).map(OFFER_OF_KIND)
    rows = pd.concat([rows, _bring_back_rows(mem, changes, dnd, sub_keys, sub_arpu, cfg)],
                     ignore_index=True)
    if rows.empty:
        return _empty()

    rows["_rank"] = rows["circle_id"].map(rank).to_numpy(np.int64)
    rows["_risk"] = (-rows["churn_risk"]).fillna(np.inf)
    rows = rows.sort_values(["_rank", "_group", "_risk", "_tie", "key"], kind="stable")
    if cfg.max_contacts > 0:
        rows = rows[_within_budget(rows["_rank"].to_numpy(), rows["key"].to_numpy(), cfg.max_contacts)]
        if rows.empty:
            return _empty()
    else:
        rows = rows.drop_duplicates("key", keep="first")
    # circles emptied by the one-listing rule (or left off for the budget) are dropped, so
    # priorities stay consecutive
    circle_rank = unique(rows["_rank"].to_numpy())
    rows["priority"] = np.searchsorted(circle_rank, rows["_rank"].to_numpy()).astype(np.int64) + 1

    bring_back = rows[rows["offer"] == BRING_BACK].groupby("circle_id").size()
    listed = flagged[flagged["circle_id"].isin(rows["circle_id"].unique())]
    rows["reason"] = rows["circle_id"].map(_reasons(listed, bring_back))
    rows["kind"] = rows["circle_id"].map(kind_of)
    rows["value_at_stake"] = rows["circle_id"].map(
        pd.Series(flagged["value_at_stake"].to_numpy(), index=flagged["circle_id"].to_numpy()))
    out = rows[list(TARGET_COLUMNS)].reset_index(drop=True)
    return out.astype(TARGET_COLUMNS)


def _bring_back_rows(mem: pd.DataFrame, changes: pd.DataFrame, dnd: np.ndarray,
                     sub_keys: np.ndarray, sub_arpu: np.ndarray, cfg: OffersConfig) -> pd.DataFrame:
    ports = changes[changes["kind"] == "port"]
    if "similarity" in ports.columns:
        ports = ports.sort_values(["similarity", "new_key"], ascending=[False, True], kind="stable")
    ports = ports.drop_duplicates("old_key", keep="first")
    strong = _flag(mem, "churned") & (mem["strongest_tie"].to_numpy(np.float64)
                                      >= cfg.bring_back_min_weight)
    cand = mem.loc[strong, ["circle_id", "key", "strongest_tie"]].merge(
        ports[["old_key", "new_key"]], left_on="key", right_on="old_key", how="inner")
    old = cand["old_key"].to_numpy(np.int64)
    new = cand["new_key"].to_numpy(np.int64)
    keep = ~isin(old, dnd) & ~isin(new, dnd) & (new >= 0)
    cand = cand[keep]
    return pd.DataFrame({
        "circle_id": cand["circle_id"].to_numpy(), "key": new[keep], "role": "member",
        "churn_risk": np.nan, "arpu": _lookup(old[keep], sub_keys, sub_arpu, 0.0),
        "_group": 2, "_tie": -cand["strongest_tie"].to_numpy(np.float64), "offer": BRING_BACK,
    })


def _reasons(flagged: pd.DataFrame, bring_back: pd.Series) -> pd.Series:
    source = flagged["source"] if "source" in flagged.columns else pd.Series(None, index=flagged.index)
    competitor = (flagged["competitor_members"].fillna(0) if "competitor_members" in flagged.columns
                  else pd.Series(0, index=flagged.index))
    text = [
        circle_reason(k, s, int(n), int(c), float(e), int(w), int(m), int(bring_back.get(cid, 0)), layer=lay)
        for cid, k, s, n, c, e, w, m, lay in zip(
            flagged["circle_id"], flagged["kind"], source, flagged["size"],
            flagged["churned_recent"], flagged["expected_churn"], flagged["window_days"], competitor,
            circle_level(flagged["circle_id"].to_numpy(), flagged["kind"].to_numpy()))
    ]
    return pd.Series(text, index=flagged["circle_id"].to_numpy(), dtype=object)

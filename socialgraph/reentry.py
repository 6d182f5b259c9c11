"""Re-entry and port detection: which churned numbers were not lost customers.

A churned on-net number whose contact set is taken over by a new on-net number is an
in-network **re-entry** (the same person on a new SIM: not a loss, not contagion); taken over
by a new off-net number it is a **port** to that number's operator. The same handset (IMEI) on
the churned and a newly activated subscriber makes a re-entry certain, whatever the contacts.

Definitions (thresholds from :class:`~socialgraph.config.NumberChangeConfig`):

- **old numbers**: subscribers in the graph with ``since_day <= churn_day < as_of_day``; their
  last activity ``L`` is the churn day, or the node's last tie day if that is later.
- **candidate new numbers**: nodes other than the old one, not service hubs, first active ``F``
  in ``[L - lead_days, L + max_gap_days]``. ``F`` is the activation day of a subscriber, else
  the node's first tie day. On-net candidates are re-entries; off-net ones are ports to
  ``nodes.operator``, except operators ``unknown`` and ``service`` (any case), never ports.
- **similarity** ``sqrt(cover_old * cover_new)``: ``cover_old`` is the share of the old
  number's tie strength going to contacts the new number also reaches, ``cover_new`` the share
  of the new number's contacts that were the old number's. A direct tie between the two is
  neither a shared contact nor part of either denominator.
- a pair **qualifies** with ``similarity >= min_similarity`` and ``shared >= min_shared``, or
  when both were seen on the same handset: the subscriber table's ``imei``, or the CDRs'
  ``caller_imei`` (a handset seen with more than :data:`MAX_NUMBERS_PER_IMEI` numbers is a
  placeholder and ignored).
- **one-to-one**: qualifying pairs are taken greedily, IMEI matches first, then by similarity
  (descending), then old and new key (ascending); a pair is dropped when its old or its new
  number was already taken.

Subscribers that are not nodes of the graph are ignored (the job adds every subscriber as a
node). The scan from the churned numbers runs in numba (:mod:`socialgraph.kernels.changes`).

What the call graph cannot show
-------------------------------
- A change whose new number reached fewer than ``min_shared`` of the old number's contacts
  (it started right before as-of, or the contacts left too, as when a household moves to a
  competitor together) is found only by handset, so only as a re-entry. On synthetic
  operators about half of the ports are of this kind; of the others about 98 % are found,
  with a precision of about 0.99 for both kinds.
- An off-net number's first day is its first tie *in the data*: for numbers churned in the
  first ``lead_days`` days of the data, an existing competitor number first seen then looks
  new. Most remaining false matches are of this kind or are a household member who joins
  around the churn.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import NumberChangeConfig
from .graph import CallGraph
from .kernels import changes as _k
from .subscribers import NEVER, Subscribers

__all__ = ["detect_number_changes", "handset_tokens", "NUMBER_CHANGE_COLUMNS", "MAX_NUMBERS_PER_IMEI"]

#: output columns and dtypes, in order
NUMBER_CHANGE_COLUMNS = {
    "old_key": np.int64, "new_key": np.int64, "kind": object, "operator": object,
    "similarity": np.float64, "shared_contacts": np.int64, "same_imei": bool, "churn_day": np.int64,
    "new_first_day": np.int64, "evidence": object,
}
#: an IMEI carried by more subscribers than this is a placeholder ("000000..."), not a handset
MAX_NUMBERS_PER_IMEI = 8
_NOT_PORT_OPERATORS = ("unknown", "service")


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in NUMBER_CHANGE_COLUMNS.items()})


def _check_inputs(graph: CallGraph, subs: Subscribers, as_of_day, cfg, since_day) -> None:
    if not isinstance(cfg, NumberChangeConfig):
        raise TypeError(f"detect_number_changes: cfg must be a NumberChangeConfig, got {type(cfg).__name__}")
    for name in ("first_day", "last_day"):
        if name not in graph.entry:
            raise ValueError(f"detect_number_changes: the call graph has no entry[{name!r}]; build it with "
                             f"tie_arrays={{'first_day': ..., 'last_day': ...}} (day numbers of each tie)")
        if graph.entry[name].shape[0] != graph.indices.shape[0]:
            raise ValueError(f"detect_number_changes: entry[{name!r}] has {graph.entry[name].shape[0]} values "
                             f"for {graph.indices.shape[0]} CSR entries")
    for name in ("key", "activation_day", "churn_day", "imei"):
        if not hasattr(subs, name):
            raise ValueError(f"detect_number_changes: subscribers lack {name!r}; "
                             "build them with subscribers_from_arrow")
    if isinstance(as_of_day, bool) or not isinstance(as_of_day, int | np.integer):
        raise ValueError(f"detect_number_changes: as_of_day must be an integer day number, got {as_of_day!r}")
    if since_day is not None:
        if isinstance(since_day, bool) or not isinstance(since_day, int | np.integer):
            raise ValueError(f"detect_number_changes: since_day must be an integer day number or None, "
                             f"got {since_day!r}")
        if since_day > as_of_day:
            raise ValueError(f"detect_number_changes: since_day ({since_day}) is after as_of_day ({as_of_day}); "
                             "pass an earlier since_day or None")


def handset_tokens(imei) -> np.ndarray:
    """A ``uint64`` token per IMEI text (its trimmed text hashed), the same wherever the IMEI
    was read: the subscriber table's current handset and the CDRs' ``caller_imei``. ``0`` for
    a missing or blank one.

    >>> t = handset_tokens(np.array(["35123 ", "35123", None, " "], dtype=object))
    >>> bool(t[0] == t[1] != 0), t[2:].tolist()
    (True, [0, 0])
    """
    if isinstance(imei, pa.ChunkedArray):
        imei = imei.combine_chunks()
    if not isinstance(imei, pa.Array):
        imei = pa.array(imei, pa.string(), from_pandas=True)
    # trimmed text as Arrow lays it out (offsets and bytes), hashed in numba: no Python string
    # per value (5M subscribers' IMEIs took 5 s and 1.7 GiB as Python strings)
    text = pc.utf8_trim_whitespace(imei.cast(pa.large_string()))
    n = len(text)
    tokens = np.zeros(n, np.uint64)
    if n:
        _, offs, data = text.buffers()
        offsets = np.frombuffer(offs, np.int64)[text.offset:text.offset + n + 1]
        raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        _k._hash_texts(offsets, raw, text.is_valid().to_numpy(zero_copy_only=False), tokens)
    return tokens


def _handset_partners(nodes: np.ndarray, tokens: np.ndarray, old_nodes: np.ndarray):
    """CSR (``ptr``, partner node ids) of the other nodes that used a handset of each old node.

    ``nodes`` / ``tokens``: who was seen on which handset (subscriber table and CDRs; a node
    may have several, ``-1`` nodes and ``0`` tokens are ignored). A handset seen with more than
    :data:`MAX_NUMBERS_PER_IMEI` numbers is a placeholder, not a handset.
    """
    nodes, tokens = np.asarray(nodes, np.int64), np.asarray(tokens, np.uint64)
    valid = (nodes >= 0) & (tokens != 0)
    nodes, tokens = nodes[valid], tokens[valid]
    # only the handsets of old numbers matter: a few percent of all (hashes, not a sort)
    mine = tokens[pd.Series(nodes, copy=False).isin(old_nodes).to_numpy()]
    keep = pd.Series(tokens, copy=False).isin(mine).to_numpy()
    pairs = pd.DataFrame({"node": nodes[keep], "token": tokens[keep]}).drop_duplicates()
    size = pairs.groupby("token")["node"].transform("size")
    pairs = pairs[(size >= 2) & (size <= MAX_NUMBERS_PER_IMEI)]
    left = pd.DataFrame({"i": np.arange(old_nodes.size), "node": old_nodes}).merge(pairs, on="node")
    both = left[["i", "node", "token"]].merge(pairs.rename(columns={"node": "partner"}), on="token")
    both = both[both["partner"].to_numpy() != both["node"].to_numpy()]
    both = both.drop_duplicates(["i", "partner"]).sort_values(["i", "partner"], kind="stable")
    ptr = np.zeros(old_nodes.size + 1, np.int64)
    np.cumsum(np.bincount(both["i"].to_numpy(), minlength=old_nodes.size), out=ptr[1:])
    return ptr, both["partner"].to_numpy(np.int64)


def _blocks(n_items: int) -> np.ndarray:
    """Boundaries of one block of churned numbers per thread: each block holds scratch arrays
    of 32 bytes per node, so more blocks would cost memory at province scale, and thousands of
    churned numbers per block balance the threads well enough."""
    n_blocks = max(1, min(n_items, numba.get_num_threads()))
    return np.linspace(0, n_items, n_blocks + 1).astype(np.int64)


def _evidence(same, shared, contacts, sim, kind, operator, gap) -> list[str]:
    out = []
    for s, k, c, x, kd, op, g in zip(same, shared, contacts, sim, kind, operator, gap):
        handset = "same handset (IMEI); " if s else ""
        when = (f"{g} day{'s' if abs(g) != 1 else ''} after" if g >= 0 else
                f"{-g} day{'s' if g != -1 else ''} before")
        who = "new on-net number" if kd == "reentry" else f"new {op} number"
        out.append(f"{handset}{k} of {c} contacts shared, similarity {x:.2f}; "
                   f"{who} first active {when} the old number's last activity")
    return out


def detect_number_changes(graph: CallGraph, subs: Subscribers, as_of_day: int,
                          cfg: NumberChangeConfig = NumberChangeConfig(),
                          since_day: int | None = None,
                          handsets: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """Detect re-entries (same person, new on-net number) and ports (new off-net number).

    Parameters
    ----------
    graph : CallGraph with ``entry["first_day"]`` and ``entry["last_day"]`` (day numbers)
    subs : Subscribers (``key``, ``activation_day``, ``churn_day``, ``imei``)
    as_of_day : day number of the analysis date; churn from this day on is not history
    cfg : thresholds, see :class:`~socialgraph.config.NumberChangeConfig`
    since_day : earliest churn day looked at (``None``: no lower bound)
    handsets : ``(keys, tokens)``: numbers and the :func:`handset_tokens` of the handsets the
        CDRs saw them on (``caller_imei``), beside the subscriber table's current ``imei``; a
        BSS extract often has no handset, or only the current one of a number long gone

    Returns
    -------
    DataFrame, one row per change: ``old_key, new_key`` (int64 number keys), ``kind``
    (``reentry`` or ``port``), ``operator`` (of the new number), ``similarity`` (in [0, 1]),
    ``shared_contacts``, ``same_imei``, ``churn_day`` (old number), ``new_first_day``,
    ``evidence`` (plain language, never a number or an IMEI); sorted by ``(churn_day,
    old_key)``. Each old and each new number appears at most once. See the module docstring
    for the definitions.

    Examples
    --------
    >>> import datetime as dt, pyarrow as pa
    >>> from socialgraph.graph import build_call_graph
    >>> from socialgraph.numbers import number_keys
    >>> from socialgraph.subscribers import day_number, subscribers_from_arrow
    >>> subs = subscribers_from_arrow(pa.table({
    ...     "msisdn": ["13800000001", "13800000002"],
    ...     "activation_date": [dt.date(2025, 1, 1), dt.date(2026, 3, 2)],
    ...     "churn_date": pa.array([dt.date(2026, 3, 1), None], pa.date32())}))
    >>> old, new, friends = subs.key[0], subs.key[1], number_keys(pa.array(["13800000011", "13800000012"]))
    >>> d0, d1 = day_number(dt.date(2026, 2, 1)), day_number(dt.date(2026, 3, 10))
    >>> g = build_call_graph(np.array([old, old, new, new]), np.r_[friends, friends],
    ...     np.array([3.0, 1.0, 2.0, 2.0]), on_net_keys=subs.key, operators={}, home_operator="HomeTel",
    ...     tie_arrays={"first_day": np.array([d0, d0, d1, d1]), "last_day": np.array([d1 - 10] * 2 + [d1] * 2)})
    >>> found = detect_number_changes(g, subs, as_of_day=d1 + 1)
    >>> found[["kind", "operator", "similarity", "shared_contacts", "same_imei"]].values.tolist()
    [['reentry', 'HomeTel', 1.0, 2, False]]
    >>> found["evidence"].iloc[0]
    "2 of 2 contacts shared, similarity 1.00; new on-net number first active 1 day after the old number's last activity"
    """
    _check_inputs(graph, subs, as_of_day, cfg, since_day)
    n = graph.n_nodes
    if n == 0 or len(subs) == 0:
        return _empty()
    indptr = np.ascontiguousarray(graph.indptr, np.int64)
    indices = np.ascontiguousarray(graph.indices, np.int32)
    weights = np.ascontiguousarray(graph.weights, np.float64)
    node_first, node_last = _k._reduce_node_days(
        indptr, np.ascontiguousarray(graph.entry["first_day"], np.int32),
        np.ascontiguousarray(graph.entry["last_day"], np.int32))

    sub_key = np.asarray(subs.key, np.int64)
    sub_node = graph.ids_of(sub_key)
    activation = np.asarray(subs.activation_day, np.int64)
    churn = np.asarray(subs.churn_day, np.int64)
    first = node_first.copy()
    known = (sub_node >= 0) & (activation < NEVER)
    first[sub_node[known]] = activation[known]

    nodes = graph.nodes
    on_net = nodes["on_net"].to_numpy(bool)
    codes, names = pd.factorize(nodes["operator"])
    names = np.array([str(x) for x in names] + ["unknown"], dtype=object)  # code -1 (null): unknown
    not_port = np.array([x.lower() in _NOT_PORT_OPERATORS for x in names], dtype=bool)
    bad_operator = not_port[codes]
    eligible = ~nodes["service_hub"].to_numpy(bool) & (on_net | ~bad_operator)

    is_old = (sub_node >= 0) & (churn < as_of_day) & (churn < NEVER)
    if since_day is not None:
        is_old &= churn >= since_day
    old_rows = np.flatnonzero(is_old)
    old_rows = old_rows[np.argsort(sub_node[old_rows], kind="stable")]
    if old_rows.size == 0:
        return _empty()
    old_nodes = sub_node[old_rows].astype(np.int64)
    old_last = np.maximum(churn[old_rows], node_last[old_nodes])
    seen_nodes, seen_tokens = sub_node, handset_tokens(np.asarray(subs.imei, dtype=object))
    if handsets is not None:  # the CDRs' caller_imei: the handsets each number was seen on
        seen_nodes = np.concatenate([seen_nodes, graph.ids_of(np.asarray(handsets[0], np.int64))])
        seen_tokens = np.concatenate([seen_tokens, np.asarray(handsets[1], np.uint64)])
    imei_ptr, imei_nodes = _handset_partners(seen_nodes, seen_tokens, old_nodes)

    bounds = _blocks(old_rows.size)
    counts = np.zeros(old_rows.size, np.int64)
    offsets = np.zeros(old_rows.size, np.int64)
    args = (indptr, indices, weights, old_nodes, old_last, first, eligible, imei_ptr, imei_nodes,
            np.int64(cfg.lead_days), np.int64(cfg.max_gap_days), float(cfg.min_similarity),
            np.int64(cfg.min_shared), bounds)
    dummy_i, dummy_f, dummy_b = np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.bool_)
    _k._scan_changes(*args, False, offsets, counts, dummy_i, dummy_i, dummy_i, dummy_f, dummy_b)
    np.cumsum(counts[:-1], out=offsets[1:])
    total = int(counts.sum())
    if total == 0:
        return _empty()
    out_new = np.empty(total, np.int64)
    out_shared = np.empty(total, np.int64)
    out_contacts = np.empty(total, np.int64)
    out_sim = np.empty(total, np.float64)
    out_imei = np.empty(total, np.bool_)
    _k._scan_changes(*args, True, offsets, counts, out_new, out_shared, out_contacts, out_sim, out_imei)

    pair_old = np.repeat(np.arange(old_rows.size), counts)
    old_node = old_nodes[pair_old]
    old_key, new_key = graph.keys[old_node], graph.keys[out_new]
    order = np.lexsort((new_key, old_key, -out_sim, ~out_imei))
    keep = order[_k._match_greedy(old_node[order], out_new[order], n)]
    keep = keep[np.lexsort((old_key[keep], churn[old_rows][pair_old[keep]]))]

    new = out_new[keep]
    kind = np.where(on_net[new], "reentry", "port").astype(object)
    operator = names[codes[new]]
    sim = np.clip(out_sim[keep], 0.0, 1.0)
    gap = first[new] - old_last[pair_old[keep]]
    return pd.DataFrame({
        "old_key": old_key[keep].astype(np.int64),
        "new_key": new_key[keep].astype(np.int64),
        "kind": pd.Series(kind, dtype=object),  # object, not pandas' str dtype: the contract of the job
        "operator": pd.Series(operator, dtype=object),
        "similarity": sim,
        "shared_contacts": out_shared[keep],
        "same_imei": out_imei[keep],
        "churn_day": churn[old_rows][pair_old[keep]].astype(np.int64),
        "new_first_day": first[new].astype(np.int64),
        "evidence": pd.Series(_evidence(out_imei[keep], out_shared[keep], out_contacts[keep], sim, kind,
                                        operator, gap.tolist()), dtype=object),
    }).reset_index(drop=True)

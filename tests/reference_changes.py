"""Slow, obviously-correct oracle of :func:`socialgraph.reentry.detect_number_changes`.

Pure Python over dicts and sets: every churned number is compared with *every* node of the
graph (no two-hop shortcut), handset partners come from a plain dict of IMEI -> subscribers,
and the one-to-one matching is a sort and a loop. Sums over an old number's ties run in
ascending contact order, as the CSR stores them, so similarities agree to the last bit.
"""

from __future__ import annotations

import math

import numpy as np

NEVER = np.iinfo(np.int32).max


def number_changes_reference(graph, subs, as_of_day, cfg, since_day=None, max_numbers_per_imei=8,
                             one_to_one=True):
    """List of dicts ``old_key, new_key, kind, operator, similarity, shared_contacts, same_imei,
    churn_day, new_first_day`` sorted by ``(churn_day, old_key)``; with ``one_to_one`` false,
    every qualifying pair (before the matching)."""
    n = graph.n_nodes
    adj = [{} for _ in range(n)]
    first_tie = [None] * n
    last_tie = [None] * n
    for i in range(n):
        for e in range(graph.indptr[i], graph.indptr[i + 1]):
            j = int(graph.indices[e])
            adj[i][j] = float(graph.weights[e])
            f, la = int(graph.entry["first_day"][e]), int(graph.entry["last_day"][e])
            first_tie[i] = f if first_tie[i] is None else min(first_tie[i], f)
            last_tie[i] = la if last_tie[i] is None else max(last_tie[i], la)
    keys = [int(k) for k in graph.keys]
    node_of = {k: i for i, k in enumerate(keys)}
    on_net = graph.nodes["on_net"].tolist()
    operator = [str(x) for x in graph.nodes["operator"].tolist()]
    hub = graph.nodes["service_hub"].tolist()
    eligible = [not hub[i] and (on_net[i] or operator[i].lower() not in ("unknown", "service")) for i in range(n)]

    first = list(first_tie)
    rows = [r for r in range(len(subs)) if int(subs.key[r]) in node_of]
    for r in rows:
        if int(subs.activation_day[r]) < NEVER:
            first[node_of[int(subs.key[r])]] = int(subs.activation_day[r])

    def imei_of(r):
        v = subs.imei[r]
        return None if v is None or v != v else str(v)  # None or NaN: no handset known

    holders = {}
    for r in rows:
        if imei_of(r) is not None:
            holders.setdefault(imei_of(r), []).append(node_of[int(subs.key[r])])

    candidates = []
    for r in rows:
        churn = int(subs.churn_day[r])
        if not (churn < as_of_day and churn < NEVER and (since_day is None or churn >= since_day)):
            continue
        o = node_of[int(subs.key[r])]
        last = churn if last_tie[o] is None else max(churn, last_tie[o])
        partners = set()
        imei = imei_of(r)
        if imei is not None and 2 <= len(holders[imei]) <= max_numbers_per_imei:
            partners = set(holders[imei]) - {o}
        total = 0.0
        for k in sorted(adj[o]):
            total += adj[o][k]
        for c in range(n):
            if c == o or not eligible[c] or first[c] is None:
                continue
            if not last - cfg.lead_days <= first[c] <= last + cfg.max_gap_days:
                continue
            shared = sorted((set(adj[o]) & set(adj[c])) - {o, c})
            contacts_new = set(adj[c]) - {o}
            rest = total - adj[o].get(c, 0.0)
            acc = 0.0
            for k in shared:
                acc += adj[o][k]
            cover_old = acc / rest if rest > 0 else 0.0
            cover_new = len(shared) / len(contacts_new) if contacts_new else 0.0
            sim = math.sqrt(cover_old * cover_new)
            same = c in partners
            if same or (sim >= cfg.min_similarity and len(shared) >= cfg.min_shared):
                candidates.append({
                    "old_key": keys[o], "new_key": keys[c], "kind": "reentry" if on_net[c] else "port",
                    "operator": operator[c], "similarity": sim, "shared_contacts": len(shared),
                    "same_imei": same, "churn_day": churn, "new_first_day": first[c],
                })

    candidates.sort(key=lambda p: (not p["same_imei"], -p["similarity"], p["old_key"], p["new_key"]))
    if not one_to_one:
        return candidates
    used_old, used_new, kept = set(), set(), []
    for p in candidates:
        if p["old_key"] not in used_old and p["new_key"] not in used_new:
            used_old.add(p["old_key"])
            used_new.add(p["new_key"])
            kept.append(p)
    kept.sort(key=lambda p: (p["churn_day"], p["old_key"]))
    return kept

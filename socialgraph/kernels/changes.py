"""Number-change kernels: first/last tie day per node, the two-hop candidate scan from each
churned number, and the greedy one-to-one matching of the qualifying pairs.

The scan is parallel over blocks of churned numbers. Each block owns scratch arrays of one
slot per node, reset after every churned number through the list of slots it touched, so a
churned number costs the size of its two-hop neighbourhood, never ``n_nodes``. What a churned
number yields depends only on the graph and the inputs, not on the block or thread that ran it.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit, pjit, prange

_NO_DAY = np.iinfo(np.int32).max  # first day of a node without ties (never a candidate by ties)


@pjit
def _reduce_node_days(indptr, first_day, last_day):
    """``(min first_day, max last_day)`` over each node's CSR entries; ``(_NO_DAY, -_NO_DAY)``
    for nodes without entries."""
    n = indptr.shape[0] - 1
    lo = np.empty(n, dtype=np.int64)
    hi = np.empty(n, dtype=np.int64)
    for i in prange(n):
        a = np.int64(_NO_DAY)
        b = -np.int64(_NO_DAY)
        for e in range(indptr[i], indptr[i + 1]):
            if first_day[e] < a:
                a = first_day[e]
            if last_day[e] > b:
                b = last_day[e]
        lo[i] = a
        hi[i] = b
    return lo, hi


@pjit
def _scan_changes(indptr, indices, weights, old_nodes, old_last, first_day, eligible, imei_ptr,
                  imei_nodes, lead_days, max_gap_days, min_similarity, min_shared, bounds,
                  fill, offsets, counts, out_new, out_shared, out_contacts, out_sim, out_imei):
    """Qualifying ``(old, new)`` pairs of every churned node ``old_nodes[i]``.

    A candidate ``n`` is an ``eligible`` node other than the old one with
    ``old_last[i] - lead_days <= first_day[n] <= old_last[i] + max_gap_days`` that is two hops
    away (shares a contact) or is one of the old number's handset partners
    ``imei_nodes[imei_ptr[i]:imei_ptr[i + 1]]``. With ``W`` the old row's weight sum in CSR
    order and ``w_o(k)`` its weight to ``k``::

        shared    = |N(old) & N(n)|        (the tie old-n itself is never a shared contact)
        cover_old = sum_{k shared} w_o(k) / (W - w_o(n))      (summed in CSR order of old)
        cover_new = shared / (deg(n) - [old in N(n)])
        similarity = sqrt(cover_old * cover_new)

    A pair qualifies with ``similarity >= min_similarity and shared >= min_shared`` or as a
    handset partner. With ``fill`` false only ``counts[i]`` (pairs of old ``i``) is written;
    with ``fill`` true the pairs go to ``out_*[offsets[i]:offsets[i] + counts[i]]`` in the
    order the scan meets them (``out_contacts``: the old number's contacts other than ``n``). ``bounds`` splits ``old_nodes`` into blocks, one scratch each.
    """
    n = indptr.shape[0] - 1
    n_blocks = bounds.shape[0] - 1
    for b in prange(n_blocks):
        w_old = np.zeros(n, dtype=np.float64)  # old's weight to each of its contacts
        acc = np.zeros(n, dtype=np.float64)  # shared weight per candidate
        cnt = np.zeros(n, dtype=np.int32)  # shared contacts per candidate
        stamp = np.full(n, -1, dtype=np.int32)  # last old (index) that touched the slot
        partner = np.full(n, -1, dtype=np.int32)  # last old (index) the slot is a handset partner of
        touched = np.empty(n, dtype=np.int32)
        for i in range(bounds[b], bounds[b + 1]):
            o = old_nodes[i]
            deg_old = indptr[o + 1] - indptr[o]
            lo = old_last[i] - lead_days
            hi = old_last[i] + max_gap_days
            total = 0.0
            for e in range(indptr[o], indptr[o + 1]):
                w_old[indices[e]] = weights[e]
                total += weights[e]
            m = 0
            for e in range(indptr[o], indptr[o + 1]):
                k = indices[e]
                w = weights[e]
                for f in range(indptr[k], indptr[k + 1]):
                    c = indices[f]
                    if c == o or not eligible[c] or first_day[c] < lo or first_day[c] > hi:
                        continue
                    if stamp[c] != i:
                        stamp[c] = i
                        touched[m] = c
                        m += 1
                    cnt[c] += 1
                    acc[c] += w
            for q in range(imei_ptr[i], imei_ptr[i + 1]):
                c = imei_nodes[q]
                if c == o or not eligible[c] or first_day[c] < lo or first_day[c] > hi:
                    continue
                partner[c] = i
                if stamp[c] != i:
                    stamp[c] = i
                    touched[m] = c
                    m += 1
            found = 0
            for t in range(m):
                c = touched[t]
                shared = cnt[c]
                tie = 1 if w_old[c] > 0.0 else 0
                deg = indptr[c + 1] - indptr[c] - tie
                rest = total - w_old[c]
                cover_new = shared / deg if deg > 0 else 0.0
                cover_old = acc[c] / rest if rest > 0.0 else 0.0
                sim = np.sqrt(cover_old * cover_new)
                same = partner[c] == i
                if same or (sim >= min_similarity and shared >= min_shared):
                    if fill:
                        p = offsets[i] + found
                        out_new[p] = c
                        out_shared[p] = shared
                        out_contacts[p] = deg_old - tie
                        out_sim[p] = sim
                        out_imei[p] = same
                    found += 1
                cnt[c] = 0
                acc[c] = 0.0
            if not fill:
                counts[i] = found
            for e in range(indptr[o], indptr[o + 1]):
                w_old[indices[e]] = 0.0


@njit
def _match_greedy(old_ids, new_ids, n_nodes):
    """Keep each pair, in the given priority order, whose old and new node are both still
    unused; returns the keep mask."""
    used_old = np.zeros(n_nodes, dtype=np.bool_)
    used_new = np.zeros(n_nodes, dtype=np.bool_)
    keep = np.zeros(old_ids.shape[0], dtype=np.bool_)
    for p in range(old_ids.shape[0]):
        o = old_ids[p]
        c = new_ids[p]
        if not used_old[o] and not used_new[c]:
            used_old[o] = True
            used_new[c] = True
            keep[p] = True
    return keep


_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


@njit
def _hash_texts(offsets, data, valid, out):
    """FNV-1a of each text (bytes ``data[offsets[i]:offsets[i + 1]]``), with the lowest bit
    set so no text hashes to 0; 0 where ``valid`` is False or the text is empty."""
    for i in range(out.shape[0]):
        lo, hi = offsets[i], offsets[i + 1]
        if not valid[i] or hi <= lo:
            out[i] = 0
            continue
        h = _FNV_OFFSET
        for j in range(lo, hi):
            h = (h ^ np.uint64(data[j])) * _FNV_PRIME
        out[i] = h | np.uint64(1)

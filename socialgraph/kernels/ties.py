"""Pair aggregation kernels: events -> per-pair partial aggregates, and partials -> combined.

Columns of a partial (all int64): calls_ab, calls_ba, sms_ab, sms_ba, duration_s, first_ts,
last_ts, n_evening_weekend, n_working, and ``n_words`` bitmask words of active days.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

N_SCALARS = 9  # calls_ab, calls_ba, sms_ab, sms_ba, duration_s, first_ts, last_ts, n_ew, n_work
I_FIRST = 5
I_LAST = 6


@njit
def _aggregate_events(group, n_groups, reverse, is_sms, duration, ts, day, evening_weekend,
                      working, n_words):
    out = np.zeros((n_groups, N_SCALARS + n_words), dtype=np.int64)
    for g in range(n_groups):
        out[g, I_FIRST] = np.iinfo(np.int64).max
        out[g, I_LAST] = np.iinfo(np.int64).min
    for i in range(group.shape[0]):
        g = group[i]
        col = (2 if is_sms[i] else 0) + (1 if reverse[i] else 0)
        out[g, col] += 1
        if not is_sms[i]:
            out[g, 4] += duration[i]
        t = ts[i]
        if t < out[g, I_FIRST]:
            out[g, I_FIRST] = t
        if t > out[g, I_LAST]:
            out[g, I_LAST] = t
        if evening_weekend[i]:
            out[g, 7] += 1
        if working[i]:
            out[g, 8] += 1
        d = day[i]
        w = d >> 6
        out[g, N_SCALARS + w] |= np.int64(1) << (d & 63)
    return out


@njit
def _combine_partials(group, n_groups, values):
    k = values.shape[1]
    out = np.zeros((n_groups, k), dtype=np.int64)
    for g in range(n_groups):
        out[g, I_FIRST] = np.iinfo(np.int64).max
        out[g, I_LAST] = np.iinfo(np.int64).min
    for i in range(group.shape[0]):
        g = group[i]
        for c in range(5):
            out[g, c] += values[i, c]
        if values[i, I_FIRST] < out[g, I_FIRST]:
            out[g, I_FIRST] = values[i, I_FIRST]
        if values[i, I_LAST] > out[g, I_LAST]:
            out[g, I_LAST] = values[i, I_LAST]
        out[g, 7] += values[i, 7]
        out[g, 8] += values[i, 8]
        for c in range(N_SCALARS, k):
            out[g, c] |= values[i, c]
    return out


@njit
def _popcount_rows(words):
    out = np.zeros(words.shape[0], dtype=np.int64)
    for i in range(words.shape[0]):
        s = 0
        for j in range(words.shape[1]):
            x = np.uint64(words[i, j])
            while x:
                x &= x - np.uint64(1)
                s += 1
        out[i] = s
    return out


@njit
def _mix(a, b):
    x = np.uint64(a) * np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(b) * np.uint64(0xC2B2AE3D27D4EB4F)
    x ^= x >> np.uint64(29)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(32)
    return x


@njit
def _group_pairs(a, b):
    """Exact grouping of (a, b) pairs with an open-addressing hash table.

    Returns the group id of each row (in order of first appearance) and each group's (a, b).
    Each table slot holds (a, b, group) side by side, so a probe touches one cache line.
    """
    n = a.shape[0]
    cap = 16
    while cap < 2 * n:
        cap *= 2
    mask = np.uint64(cap - 1)
    table = np.empty((cap, 3), dtype=np.int64)
    table[:, 2] = -1
    group = np.empty(n, dtype=np.int64)
    ga = np.empty(n, dtype=np.int64)
    gb = np.empty(n, dtype=np.int64)
    ng = 0
    for i in range(n):
        ai = a[i]
        bi = b[i]
        h = _mix(ai, bi) & mask
        while True:
            g = table[h, 2]
            if g == -1:
                table[h, 0] = ai
                table[h, 1] = bi
                table[h, 2] = ng
                ga[ng] = ai
                gb[ng] = bi
                group[i] = ng
                ng += 1
                break
            if table[h, 0] == ai and table[h, 1] == bi:
                group[i] = g
                break
            h = (h + np.uint64(1)) & mask
    return group, ga[:ng].copy(), gb[:ng].copy()


@njit
def _order_runs_by_b(order, a, b):
    """Given ``order`` sorting ``a``, sort each run of equal ``a`` by ``b`` in place."""
    n = a.shape[0]
    i = 0
    while i < n:
        ai = a[order[i]]
        j = i + 1
        while j < n and a[order[j]] == ai:
            j += 1
        r = j - i
        if 1 < r <= 32:
            for k in range(i + 1, j):
                x = order[k]
                bx = b[x]
                m = k - 1
                while m >= i and b[order[m]] > bx:
                    order[m + 1] = order[m]
                    m -= 1
                order[m + 1] = x
        elif r > 32:
            sub = order[i:j].copy()
            sb = np.empty(r, dtype=np.int64)
            for k in range(r):
                sb[k] = b[sub[k]]
            o = np.argsort(sb, kind="mergesort")
            for k in range(r):
                order[i + k] = sub[o[k]]
        i = j


@njit
def _finalize_columns(order, a, b, values, ints, recip, shares):
    """Gather pairs in ``order`` into output columns in one pass.

    ints columns: a, b, calls, sms, duration_s, active_days, calls_ab, calls_ba, sms_ab, sms_ba,
    first_seen, last_seen; shares: evening_weekend, working_hours.
    """
    k = values.shape[1]
    for i in range(order.shape[0]):
        r = order[i]
        v = values[r]
        out_ab = v[0] + v[2]
        out_ba = v[1] + v[3]
        events = out_ab + out_ba
        days = 0
        for c in range(N_SCALARS, k):
            x = np.uint64(v[c])
            while x:
                x &= x - np.uint64(1)
                days += 1
        ints[0, i] = a[r]
        ints[1, i] = b[r]
        ints[2, i] = v[0] + v[1]
        ints[3, i] = v[2] + v[3]
        ints[4, i] = v[4]
        ints[5, i] = days
        ints[6, i] = v[0]
        ints[7, i] = v[1]
        ints[8, i] = v[2]
        ints[9, i] = v[3]
        ints[10, i] = v[I_FIRST]
        ints[11, i] = v[I_LAST]
        recip[i] = out_ab > 0 and out_ba > 0
        denom = max(events, 1)
        shares[0, i] = v[7] / denom
        shares[1, i] = v[8] / denom

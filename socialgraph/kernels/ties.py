"""Pair aggregation kernels: events -> per-pair partial aggregates, and partials -> combined.

A partial is three row-aligned blocks: ``counts`` (int32: directional calls and SMS, first and
last event as seconds since the window start, evening/weekend and working-hours events),
``duration`` (int64 seconds) and ``days`` (int64 bitmask words of active days in the window).
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

# Columns of the int32 ``counts`` block of a partial. Times are seconds since the window start.
CALLS_AB, CALLS_BA, SMS_AB, SMS_BA, FIRST, LAST, N_EW, N_WORK = range(8)
N_COUNTS = 8
_I32_MAX = np.iinfo(np.int32).max
_I32_MIN = np.iinfo(np.int32).min


@njit
def _aggregate_events(group, reverse, is_sms, duration, ts, t0, day, evening_weekend, working,
                      counts, dur, days):
    """Fill the zeroed ``counts``, ``dur`` and ``days`` blocks of ``n_groups`` rows (allocated by
    the caller with NumPy: see :func:`_group_pairs`)."""
    n_groups = counts.shape[0]
    for g in range(n_groups):
        counts[g, FIRST] = _I32_MAX
        counts[g, LAST] = _I32_MIN
    for i in range(group.shape[0]):
        g = group[i]
        col = (SMS_AB if is_sms[i] else CALLS_AB) + (1 if reverse[i] else 0)
        counts[g, col] += 1
        if not is_sms[i]:
            dur[g] += duration[i]
        t = ts[i] - t0
        if t < counts[g, FIRST]:
            counts[g, FIRST] = t
        if t > counts[g, LAST]:
            counts[g, LAST] = t
        if evening_weekend[i]:
            counts[g, N_EW] += 1
        if working[i]:
            counts[g, N_WORK] += 1
        d = day[i]
        days[g, d >> 6] |= np.int64(1) << (d & 63)


@njit
def _combine_partials(group, counts, dur, days, out_c, out_d, out_w):
    """Combine rows of partials into the zeroed ``out_*`` blocks, one row per group."""
    n_words = days.shape[1]
    n_groups = out_c.shape[0]
    for g in range(n_groups):
        out_c[g, FIRST] = _I32_MAX
        out_c[g, LAST] = _I32_MIN
    for i in range(group.shape[0]):
        g = group[i]
        out_c[g, CALLS_AB] += counts[i, CALLS_AB]
        out_c[g, CALLS_BA] += counts[i, CALLS_BA]
        out_c[g, SMS_AB] += counts[i, SMS_AB]
        out_c[g, SMS_BA] += counts[i, SMS_BA]
        out_c[g, FIRST] = min(out_c[g, FIRST], counts[i, FIRST])
        out_c[g, LAST] = max(out_c[g, LAST], counts[i, LAST])
        out_c[g, N_EW] += counts[i, N_EW]
        out_c[g, N_WORK] += counts[i, N_WORK]
        out_d[g] += dur[i]
        for c in range(n_words):
            out_w[g, c] |= days[i, c]


@njit
def _mix(a, b):
    x = np.uint64(a) * np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(b) * np.uint64(0xC2B2AE3D27D4EB4F)
    x ^= x >> np.uint64(29)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(32)
    return x


def table_capacity(n):
    """Slots of :func:`_group_pairs`' hash table for ``n`` rows: a power of two, at least 2n."""
    cap = 16
    while cap < 2 * n:
        cap *= 2
    return cap


@njit
def _group_pairs(a, b, table, group, ga, gb):
    """Exact grouping of (a, b) pairs with an open-addressing hash table.

    Fills the group id of each row (in order of first appearance) and each group's (a, b);
    returns the number of groups. Each table slot holds (a, b, group) side by side, so a probe
    touches one cache line. The caller allocates every array (``table``: ``(cap, 3)`` int64 of
    :func:`table_capacity` rows; the others ``n`` int64): NumPy asks the kernel for huge pages
    for large arrays, while arrays allocated inside numba are faulted in 4 KiB at a time, which
    cost a quarter of a partition's aggregation in page faults.
    """
    n = a.shape[0]
    cap = table.shape[0]
    mask = np.uint64(cap - 1)
    for s in range(cap):
        table[s, 2] = -1
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
    return ng


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
def _popcount(x):
    x = np.uint64(x)
    n = 0
    while x:
        x &= x - np.uint64(1)
        n += 1
    return n


@njit
def _finalize_columns(order, a, b, counts, dur, days, t0, block_masks, ints, recip, shares, blocks):
    """Gather pairs in ``order`` into output columns in one pass.

    ints columns: a, b, calls, sms, duration_s, active_days, calls_ab, calls_ba, sms_ab, sms_ba,
    first_seen, last_seen; shares: evening_weekend, working_hours; blocks: active days within
    each day-range mask of ``block_masks`` (n_blocks, n_words).
    """
    n_words = days.shape[1]
    n_blocks = block_masks.shape[0]
    for i in range(order.shape[0]):
        r = order[i]
        c = counts[r]
        out_ab = np.int64(c[CALLS_AB]) + c[SMS_AB]
        out_ba = np.int64(c[CALLS_BA]) + c[SMS_BA]
        events = out_ab + out_ba
        n_days = 0
        for w in range(n_words):
            n_days += _popcount(days[r, w])
        for k in range(n_blocks):
            m = 0
            for w in range(n_words):
                m += _popcount(days[r, w] & block_masks[k, w])
            blocks[k, i] = m
        ints[0, i] = a[r]
        ints[1, i] = b[r]
        ints[2, i] = np.int64(c[CALLS_AB]) + c[CALLS_BA]
        ints[3, i] = np.int64(c[SMS_AB]) + c[SMS_BA]
        ints[4, i] = dur[r]
        ints[5, i] = n_days
        ints[6, i] = c[CALLS_AB]
        ints[7, i] = c[CALLS_BA]
        ints[8, i] = c[SMS_AB]
        ints[9, i] = c[SMS_BA]
        ints[10, i] = t0 + c[FIRST]
        ints[11, i] = t0 + c[LAST]
        recip[i] = out_ab > 0 and out_ba > 0
        denom = max(events, 1)
        shares[0, i] = c[N_EW] / denom
        shares[1, i] = c[N_WORK] / denom

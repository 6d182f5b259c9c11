"""Phone-number parsing and formatting kernels over Arrow string buffers.

A normalised number is a string of 1-17 digits, stored as one ``int64`` key::

    key = int(digits.ljust(17, "0")) * 32 + len(digits)

The key keeps leading zeros, and integer order equals the lexicographic order of the digit
strings, so ``a < b`` on keys is ``a < b`` on the msisdn strings of the output tables.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

OK = 0
NULL = 1
NON_NUMERIC = 2
TOO_LONG = 3
MAX_DIGITS = 17

_POW10 = np.array([10**i for i in range(18)], dtype=np.int64)


@njit
def _is_space(c):
    return c == 32 or (9 <= c <= 13)


@njit
def _parse_numbers(data, offsets, valid, cc, national_len, keys, status):
    pow10 = _POW10
    ncc = cc.shape[0]
    for i in range(offsets.shape[0] - 1):
        if not valid[i]:
            keys[i] = -1
            status[i] = NULL
            continue
        s = offsets[i]
        e = offsets[i + 1]
        while s < e and _is_space(data[s]):
            s += 1
        while e > s and _is_space(data[e - 1]):
            e -= 1
        if s == e:
            keys[i] = -1
            status[i] = NULL
            continue
        intl = False
        if data[s] == 43:  # '+'
            intl = True
            s += 1
        elif e - s > 2 and data[s] == 48 and data[s + 1] == 48:  # '00' international prefix
            intl = True
            s += 2
        bad = s == e
        for j in range(s, e):
            c = data[j]
            if c < 48 or c > 57:
                bad = True
                break
        if bad:
            keys[i] = -1
            status[i] = NON_NUMERIC
            continue
        n = e - s
        if ncc > 0 and n > ncc and (intl or (national_len > 0 and n == ncc + national_len)):
            same = True
            for j in range(ncc):
                if data[s + j] != cc[j]:
                    same = False
                    break
            if same:
                s += ncc
                n -= ncc
        if n > MAX_DIGITS:
            keys[i] = -1
            status[i] = TOO_LONG
            continue
        v = np.int64(0)
        for j in range(n):
            v = v * 10 + (data[s + j] - 48)
        v = v * pow10[MAX_DIGITS - n]
        keys[i] = v * 32 + n
        status[i] = OK


@njit
def _format_lengths(keys, offsets):
    offsets[0] = 0
    for i in range(keys.shape[0]):
        offsets[i + 1] = offsets[i] + (keys[i] & 31)


@njit
def _format_numbers(keys, offsets, out):
    pow10 = _POW10
    for i in range(keys.shape[0]):
        v = keys[i] >> 5
        n = keys[i] & 31
        o = offsets[i]
        for j in range(n):
            out[o + j] = 48 + (v // pow10[MAX_DIGITS - 1 - j]) % 10

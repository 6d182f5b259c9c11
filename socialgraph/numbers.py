"""Number normalisation, operator prefix lookup and masking.

Numbers travel through the engine as ``int64`` keys (see :mod:`socialgraph.kernels.numbers`):
eight bytes instead of a Python string, exact, order-preserving and cheap to hash, sort and
shuffle. They become strings again only when an output table is written.

>>> import pyarrow as pa
>>> keys, status = normalize_numbers(pa.array(["+4512345678", " 12345678", "004512345678", None, "12-34"]),
...                                  NumberConfig(country_code="45", national_length=8))
>>> format_numbers(keys[:3]).to_pylist()
['12345678', '12345678', '12345678']
>>> [NUMBER_STATUS[s] for s in status]
['ok', 'ok', 'ok', 'null_number', 'non_numeric_number']
>>> mask_number("13812345678")
'138****5678'
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .arrays import unique
from .config import NumberConfig
from .kernels import numbers as _k

__all__ = [
    "NUMBER_STATUS",
    "mask_numbers",
    "normalize_numbers",
    "format_numbers",
    "number_keys",
    "prefix_lookup",
    "mask_number",
    "pseudonymise_strings",
    "pseudonymise_keys",
    "longer_spellings",
    "numbers_out",
]

#: status code -> quality reason (``ok`` rows are kept)
NUMBER_STATUS = {
    _k.OK: "ok",
    _k.NULL: "null_number",
    _k.NON_NUMERIC: "non_numeric_number",
    _k.TOO_LONG: "number_too_long",
}


def _as_large_string_chunks(values) -> list[pa.Array]:
    if isinstance(values, pa.ChunkedArray):
        chunks = values.chunks
    elif isinstance(values, pa.Array):
        chunks = [values]
    else:
        chunks = [pa.array(values)]
    out = []
    for ch in chunks:
        if pa.types.is_null(ch.type):
            ch = pa.nulls(len(ch), pa.large_string())
        if pa.types.is_integer(ch.type):
            ch = pc.cast(ch, pa.string())
        if pa.types.is_dictionary(ch.type):
            ch = ch.dictionary_decode()
        if not (pa.types.is_string(ch.type) or pa.types.is_large_string(ch.type)):
            raise TypeError(f"phone numbers must be strings or integers, got {ch.type}")
        out.append(pc.cast(ch, pa.large_string()) if pa.types.is_string(ch.type) else ch)
    return out


def normalize_numbers(values, numbers: NumberConfig = NumberConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Parse raw numbers to ``int64`` keys.

    Parameters
    ----------
    values : pyarrow Array/ChunkedArray (string or integer), or anything ``pa.array`` accepts
    numbers : NumberConfig
        Country code and national length used to strip the country prefix.

    Returns
    -------
    keys : ndarray of int64, -1 where the number is bad
    status : ndarray of int8, a key of :data:`NUMBER_STATUS`
    """
    chunks = _as_large_string_chunks(values)
    for sep in numbers.separators:  # a literal replace per character: no regex on every number
        chunks = [pc.replace_substring(ch, sep, "") for ch in chunks]
    n = sum(len(c) for c in chunks)
    keys = np.empty(n, dtype=np.int64)
    status = np.empty(n, dtype=np.int8)
    cc = np.frombuffer((numbers.country_code or "").encode(), dtype=np.uint8).copy()
    national_len = numbers.national_length or 0
    pos = 0
    for ch in chunks:
        m = len(ch)
        if m == 0:
            continue
        _, offs_buf, data_buf = ch.buffers()
        offsets = np.frombuffer(offs_buf, dtype=np.int64)[ch.offset : ch.offset + m + 1]
        data = (
            np.frombuffer(data_buf, dtype=np.uint8)
            if data_buf is not None
            else np.zeros(1, dtype=np.uint8)
        )
        valid = ch.is_valid().to_numpy(zero_copy_only=False)
        _k._parse_numbers(data, offsets, valid, cc, national_len, keys[pos : pos + m], status[pos : pos + m])
        pos += m
    return keys, status


def number_keys(values, numbers: NumberConfig = NumberConfig()) -> np.ndarray:
    """Keys of numbers that must all be valid (e.g. a subscriber table); raises on a bad one,
    naming its shape (never its digits) and, for a formatted number, the setting that reads it.

    >>> number_keys(["13800000001", "138-0000-0002"])
    Traceback (most recent call last):
    ...
    ValueError: 1 number(s) cannot be normalised (first at row 1: non_numeric_number, shaped ddd-dddd-dddd; numbers.separators: '-' would read it)
    """
    keys, status = normalize_numbers(values, numbers)
    bad = np.flatnonzero(status != _k.OK)
    if bad.size:
        first = int(bad[0])
        detail = NUMBER_STATUS[int(status[first])]
        if status[first] == _k.NON_NUMERIC:
            raw = _as_large_string_chunks(values)
            text = pa.chunked_array(raw).take([first]).to_pylist()[0] if raw else None
            if text is not None:
                detail += f", shaped {number_shape(text)}"
                sep = separators_in(text)
                if sep:
                    detail += f"; numbers.separators: {''.join(sorted(set(sep + numbers.separators)))!r} would read it"
        raise ValueError(f"{bad.size} number(s) cannot be normalised (first at row {first}: {detail})")
    return keys


#: characters a formatted number is written with, besides digits and a leading +
SEPARATORS = " -.()/"


def number_shape(text: str, limit: int = 24) -> str:
    """A number's shape with every digit as ``d`` and every other letter as ``a``: what is
    wrong with it, without a digit of it (personal data).

    >>> number_shape("+86 138-0000-0001"), number_shape("tel:138"), number_shape("١٣٨")
    ('+dd ddd-dddd-dddd', 'aaa:ddd', 'ddd')
    """
    out = "".join("d" if c.isdigit() else "a" if c.isalpha() else c for c in text.strip())
    return out if len(out) <= limit else out[:limit] + "..."


def separators_in(text: str) -> str:
    """The separators that, removed, leave ``text`` a number of ASCII digits (with an
    optional leading +); empty when none would (letters, or not a number at all).

    >>> separators_in("138-0000 0001"), separators_in("+86 (138) 0000"), separators_in("138a0001")
    ('- ', ' ()', '')
    """
    body = text.strip().removeprefix("+")
    kept = "".join(c for c in body if c not in SEPARATORS)
    if not kept or not all("0" <= c <= "9" for c in kept):
        return ""
    return "".join(dict.fromkeys(c for c in body if c in SEPARATORS))


def format_numbers(keys: np.ndarray) -> pa.Array:
    """``int64`` keys back to digit strings (an Arrow ``string`` array)."""
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    if keys.size and keys.min() < 0:
        raise ValueError("format_numbers: negative key (a bad number) cannot be formatted")
    offsets = np.empty(keys.size + 1, dtype=np.int32)
    _k._format_lengths(keys, offsets)
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    _k._format_numbers(keys, offsets, data)
    return pa.StringArray.from_buffers(keys.size, pa.py_buffer(offsets), pa.py_buffer(data))


def prefix_lookup(keys: np.ndarray, prefixes: Mapping[str, str], default: str | None = None) -> np.ndarray:
    """Label each number by its longest matching prefix.

    >>> k = number_keys(["13012345", "1891", "9558000", "777"])
    >>> prefix_lookup(k, {"130": "CompA", "1": "X", "9558": "Service"}, default="?").tolist()
    ['CompA', 'X', 'Service', '?']
    """
    keys = np.asarray(keys, dtype=np.int64)
    out = np.full(keys.size, default, dtype=object)
    done = np.zeros(keys.size, dtype=bool)
    lengths = keys & 31
    padded = keys >> 5
    by_len: dict[int, dict[int, str]] = {}
    for p, label in prefixes.items():
        p = str(p)
        if not p.isdigit() or len(p) > _k.MAX_DIGITS:
            raise ValueError(f"operator prefix must be digits, got {p!r}")
        by_len.setdefault(len(p), {})[int(p)] = label
    for L in sorted(by_len, reverse=True):
        table = by_len[L]
        head = padded // _k._POW10[_k.MAX_DIGITS - L]
        cand = ~done & (lengths >= L)
        vals = np.fromiter(table.keys(), dtype=np.int64)
        labels = np.array(list(table.values()), dtype=object)
        order = np.argsort(vals)
        vals, labels = vals[order], labels[order]
        pos = np.minimum(np.searchsorted(vals, head), vals.size - 1)
        hit = cand & (vals[pos] == head)
        out[hit] = labels[pos[hit]]
        done |= hit
    return out


PSEUDONYM_PREFIX = "p-"
MIN_SECRET_BYTES = 16


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"pseudonymisation needs a secret key of at least {MIN_SECRET_BYTES} bytes")


def pseudonymise_strings(values, secret: bytes) -> pa.Array:
    """Keyed pseudonyms (HMAC-SHA256, 80 bits, ``p-`` + 20 hex digits) of strings; nulls stay null.

    The same secret always gives the same pseudonym for the same text, so tables written in
    different runs still join; without the secret nobody can get back to the number or test a
    guess (unlike a plain hash, which anyone can compute for every possible number).

    >>> pseudonymise_strings(pa.array(["13812345678", None]), b"0123456789abcdef").to_pylist()
    ['p-9a6a05aaf6e16b453362', None]
    """
    import hashlib
    import hmac

    _check_secret(secret)
    arr = pa.array(values) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    codes, uniq = pd.factorize(np.asarray(arr.to_pandas(), dtype=object), use_na_sentinel=True)
    names = np.array([PSEUDONYM_PREFIX + hmac.new(secret, str(u).encode("utf-8"), hashlib.sha256).hexdigest()[:20]
                      for u in uniq], dtype=object)
    out = np.where(codes >= 0, names[np.maximum(codes, 0)] if names.size else None, None)
    return pa.array(out, pa.string())


def pseudonymise_keys(keys: np.ndarray, secret: bytes) -> pa.Array:
    """Pseudonyms of number keys: :func:`pseudonymise_strings` of their digit strings, so a
    number gets the same pseudonym wherever it is written."""
    return pseudonymise_strings(format_numbers(keys), secret)


def numbers_out(keys: np.ndarray, secret: bytes | None = None) -> pa.Array:
    """How numbers are written to outputs: digit strings, or pseudonyms when a secret is given."""
    return format_numbers(keys) if secret is None else pseudonymise_keys(keys, secret)


def mask_numbers(numbers: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`mask_number` of every string of an Arrow array (nulls stay null), vectorised:
    the job masks the anchor of each of millions of circles.

    >>> mask_numbers(pa.array(["4512", "+4512345678", "12345678", None])).to_pylist()
    ['****', '+45****5678', '******78', None]
    """
    arr = numbers.combine_chunks() if isinstance(numbers, pa.ChunkedArray) else numbers
    arr = arr.cast(pa.string())
    length = pc.utf8_length(arr).to_numpy(zero_copy_only=False)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    out = np.empty(len(arr), object)
    out[~valid] = None
    for n in unique(length[valid].astype(np.int64, copy=False)).tolist():
        rows = np.flatnonzero(valid & (length == n))
        part = arr.take(pa.array(rows))
        if n >= 11:
            masked = pc.binary_join_element_wise(pc.utf8_slice_codeunits(part, 0, 3),
                                                 pc.utf8_slice_codeunits(part, n - 4, n), "****")
        elif n <= 4:
            masked = pa.array(["*" * n] * len(rows), pa.string())
        else:
            masked = pc.binary_join_element_wise("*" * (n - 2), pc.utf8_slice_codeunits(part, n - 2, n), "")
        out[rows] = masked.to_numpy(zero_copy_only=False)
    return pa.array(out, pa.string())


def mask_number(msisdn: str) -> str:
    """Mask a number for logs and reports: keep the first 3 and last 4 digits.

    >>> mask_number("4512"), mask_number("+4512345678"), mask_number("12345678")
    ('****', '+45****5678', '******78')
    """
    s = str(msisdn)
    if len(s) >= 11:  # the operators' own convention: 138****5678
        return s[:3] + "****" + s[-4:]
    if len(s) <= 4:
        return "*" * len(s)
    return "*" * (len(s) - 2) + s[-2:]  # short numbers: too few digits to show more


def longer_spellings(keys: np.ndarray, subscriber_keys: np.ndarray, max_extra: int = 4) -> dict[str, int]:
    """Numbers among ``keys`` that are not subscribers' but are a subscriber's number with 1 to
    ``max_extra`` more digits in front, counted by those leading digits (``{"86": 16154}``).

    That is a country code written in front of a national number that ``numbers.country_code``
    (and ``national_length``, for the spelling without ``+``) do not strip: the same person
    under two spellings, each with part of their ties. Only numbers that keep at least 5 digits
    of their own count.

    >>> subs = number_keys(["13800000001", "13800000002"])
    >>> seen = number_keys(["13800000001", "8613800000001", "8613800000002", "4413800000002", "999"])
    >>> longer_spellings(seen, subs)
    {'86': 2, '44': 1}
    """
    keys = np.asarray(keys, np.int64)
    subs = np.asarray(subscriber_keys, np.int64)
    if subs.size > 1 and not bool(np.all(subs[1:] >= subs[:-1])):
        subs = np.sort(subs)
    if keys.size == 0 or subs.size == 0:
        return {}
    pos = np.minimum(np.searchsorted(subs, keys), subs.size - 1)
    keys = keys[subs[pos] != keys]  # the subscribers' own numbers have nothing in front
    pow10 = _k._POW10
    n = keys & 31
    digits = (keys >> 5) // pow10[_k.MAX_DIGITS - n]  # the number's digits as an integer
    lengths = np.unique(subs & 31)  # a tail can only be a subscriber's number of one of these lengths
    found: dict[str, int] = {}
    for extra in range(1, max_extra + 1):
        sel = (n - extra >= 5) & np.isin(n - extra, lengths)
        rest = n[sel] - extra
        tail = digits[sel] % pow10[rest]
        lead = digits[sel] // pow10[rest]
        tail_key = tail * pow10[_k.MAX_DIGITS - rest] * 32 + rest  # the last ``rest`` digits, zeros kept
        pos = np.minimum(np.searchsorted(subs, tail_key), subs.size - 1)
        hit = subs[pos] == tail_key
        if hit.any():
            lead_values, counts = np.unique(lead[hit], return_counts=True)
            for v, c in zip(lead_values.tolist(), counts.tolist()):
                found[str(v).zfill(extra)] = found.get(str(v).zfill(extra), 0) + int(c)
    return dict(sorted(found.items(), key=lambda kv: -kv[1]))

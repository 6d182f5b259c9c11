"""Number normalisation, formatting, key order, prefix lookup and masking against pure Python."""

from __future__ import annotations


import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import reference_key, reference_normalize, reference_prefix_lookup
from socialgraph.config import NumberConfig
from socialgraph.numbers import NUMBER_STATUS, format_numbers, mask_number, normalize_numbers, number_keys, prefix_lookup

digits = st.text(alphabet="0123456789", min_size=0, max_size=21)
messy_char = st.sampled_from(list("0123456789") * 4 + list("+ \t\n-a.()") + ["\x0b", "\u00a0", "٣", "é"])


@st.composite
def raw_numbers(draw):
    """Mostly number-like strings: whitespace, prefixes, country codes, digits; sometimes junk."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return None
    if kind == 1:
        return draw(st.text(messy_char, max_size=12))
    ws = st.sampled_from(["", "", " ", "\t", "  ", "\n", "\r\n"])
    prefix = draw(st.sampled_from(["", "", "+", "00", "0", "+00"]))
    cc = draw(st.sampled_from(["", "", "45", "86", "1", "353"]))
    body = draw(digits)
    return draw(ws) + prefix + cc + body + draw(ws)


configs = st.builds(
    lambda cc, nl: NumberConfig(country_code=cc, national_length=nl),
    st.sampled_from([None, "45", "86", "1", "353", "0"]),
    st.sampled_from([None, 3, 8, 11, 15]),
)


def _check(values, cfg):
    keys, status = normalize_numbers(pa.array(values, pa.string()), cfg)
    assert keys.dtype == np.int64 and status.dtype == np.int8
    assert keys.shape == status.shape == (len(values),)
    want = [reference_normalize(v, cfg.country_code, cfg.national_length) for v in values]
    assert [NUMBER_STATUS[int(s)] for s in status] == [w[1] for w in want]
    ok = status == 0
    assert (keys[~ok] == -1).all()
    assert format_numbers(keys[ok]).to_pylist() == [w[0] for w in want if w[1] == "ok"]
    assert keys[ok].tolist() == [reference_key(w[0]) for w in want if w[1] == "ok"]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(raw_numbers(), max_size=40), cfg=configs)
def test_normalize_matches_reference(values, cfg):
    _check(values, cfg)


@pytest.mark.parametrize("value,cfg,want", [
    ("+4512345678", NumberConfig(country_code="45"), ("12345678", "ok")),
    ("004512345678", NumberConfig(country_code="45"), ("12345678", "ok")),
    ("4512345678", NumberConfig(country_code="45", national_length=8), ("12345678", "ok")),
    ("4512345678", NumberConfig(country_code="45"), ("4512345678", "ok")),          # no national length
    ("451234567", NumberConfig(country_code="45", national_length=8), ("451234567", "ok")),  # wrong length
    ("+4912345678", NumberConfig(country_code="45"), ("4912345678", "ok")),         # foreign keeps its code
    ("  12345678\t", NumberConfig(), ("12345678", "ok")),
    ("0012345678", NumberConfig(), ("12345678", "ok")),
    ("0812345678", NumberConfig(), ("0812345678", "ok")),                            # leading zero kept
    ("+", NumberConfig(), (None, "non_numeric_number")),
    ("", NumberConfig(), (None, "null_number")),
    ("  ", NumberConfig(), (None, "null_number")),
    (None, NumberConfig(), (None, "null_number")),
    ("12 34", NumberConfig(), (None, "non_numeric_number")),
    ("++12", NumberConfig(), (None, "non_numeric_number")),
    ("1" * 17, NumberConfig(), ("1" * 17, "ok")),
    ("1" * 18, NumberConfig(), (None, "number_too_long")),
    ("+45" + "1" * 17, NumberConfig(country_code="45"), ("1" * 17, "ok")),
    ("+45" + "1" * 18, NumberConfig(country_code="45"), (None, "number_too_long")),
    ("٣٣٣", NumberConfig(), (None, "non_numeric_number")),                           # not ASCII digits
])
def test_normalize_hand_cases(value, cfg, want):
    assert reference_normalize(value, cfg.country_code, cfg.national_length) == want
    _check([value], cfg)


def test_normalize_accepts_chunked_sliced_dictionary_and_integer_input():
    values = ["+4512345678", None, " 87654321", "x1", "004511112222", "12"]
    cfg = NumberConfig(country_code="45", national_length=8)
    k0, s0 = normalize_numbers(pa.array(values), cfg)
    big = pa.array(["junk"] * 3 + values + ["junk"])
    k1, s1 = normalize_numbers(big.slice(3, len(values)), cfg)  # an array with an offset
    k2, s2 = normalize_numbers(pa.chunked_array([values[:2], [], values[2:]]), cfg)
    k3, s3 = normalize_numbers(pa.array(values).dictionary_encode(), cfg)
    k4, s4 = normalize_numbers(pa.array(values, pa.large_string()), cfg)
    k5, s5 = normalize_numbers(values, cfg)
    for k, s in ((k1, s1), (k2, s2), (k3, s3), (k4, s4), (k5, s5)):
        assert k.tolist() == k0.tolist() and s.tolist() == s0.tolist()
    ik, istat = normalize_numbers(pa.array([4512345678, None, 87654321], pa.int64()), cfg)
    assert format_numbers(ik[[0, 2]]).to_pylist() == ["12345678", "87654321"]
    assert NUMBER_STATUS[int(istat[1])] == "null_number"


def test_normalize_rejects_other_types():
    with pytest.raises(TypeError):
        normalize_numbers(pa.array([1.5, 2.5]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=17)
                .filter(lambda s: not (s.startswith("00") and len(s) > 2)),  # '00...' is international
                max_size=50))
def test_format_roundtrip_and_key_order_is_string_order(numbers):
    keys = number_keys(pa.array(numbers, pa.string()))
    assert format_numbers(keys).to_pylist() == numbers
    # comparing keys is comparing the digit strings
    assert [numbers[i] for i in np.argsort(keys, kind="stable")] == sorted(numbers)
    for i in range(len(numbers) - 1):
        x, y = numbers[i], numbers[i + 1]
        assert (keys[i] < keys[i + 1]) == (x < y)
        assert (keys[i] == keys[i + 1]) == (x == y)


def test_format_numbers_rejects_bad_keys():
    with pytest.raises(ValueError):
        format_numbers(np.array([-1], np.int64))
    assert format_numbers(np.array([], np.int64)).to_pylist() == []


def test_number_keys_raises_on_bad_number():
    with pytest.raises(ValueError, match="row 1"):
        number_keys(["123", "abc"])


prefix_sets = st.dictionaries(st.text(alphabet="0123456789", min_size=1, max_size=5),
                              st.sampled_from(["A", "B", "C", "Svc"]), max_size=8)


@settings(max_examples=300, deadline=None)
@given(numbers=st.lists(st.text(alphabet="0123456789", min_size=1, max_size=17), max_size=40),
       prefixes=prefix_sets, default=st.sampled_from([None, "?"]))
def test_prefix_lookup_longest_prefix_wins(numbers, prefixes, default):
    numbers = [n for n in numbers if not (n.startswith("00") and len(n) > 2)]
    keys = number_keys(pa.array(numbers, pa.string()))
    got = prefix_lookup(keys, prefixes, default=default).tolist()
    assert got == reference_prefix_lookup(numbers, prefixes, default)


def test_prefix_lookup_leading_zeros_and_exact_match():
    numbers = ["0130", "130", "13", "1301", "01", "9558"]
    got = prefix_lookup(number_keys(numbers), {"130": "A", "01": "Z", "9558": "S", "1": "X"}, default="?")
    assert got.tolist() == ["Z", "A", "X", "A", "Z", "S"]


def test_prefix_lookup_rejects_bad_prefix():
    with pytest.raises(ValueError):
        prefix_lookup(number_keys(["123"]), {"1a": "x"})


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", max_size=20), st.sampled_from(["", "+", "00"]))
def test_mask_number_never_reveals_more_than_7_digits(body, prefix):
    s = prefix + body
    m = mask_number(s)
    assert sum(c.isdigit() for c in m) <= 7
    if len(s) <= 4:
        assert set(m) <= {"*"} and len(m) == len(s)
    elif len(s) < 11:
        # short numbers show at most their last two digits
        assert m == "*" * (len(s) - 2) + s[-2:]
    else:
        # what is shown is the start and the end of the number, the middle is hidden
        assert m == s[:3] + "****" + s[-4:]
    assert mask_number(int(body)) == mask_number(str(int(body))) if body else True


def test_mask_number_examples():
    assert mask_number("13812345678") == "138****5678"
    assert mask_number("1234567") == "*****67"
    assert mask_number("1234") == "****"


separator = st.sampled_from([" ", "-", ".", "(", ")", "/"])


@settings(max_examples=200, deadline=None)
@given(values=st.lists(raw_numbers(), max_size=30), cfg=configs, data=st.data())
def test_separators_are_read_as_if_absent(values, cfg, data):
    """A number formatted with separators (``numbers.separators``) reads as the same number
    written without them; without the setting it is non-numeric."""
    from dataclasses import replace

    seps = "".join(data.draw(st.sets(separator, min_size=1)))

    def format_(v):
        if v is None or len(v) < 2:
            return v
        cut = data.draw(st.integers(1, len(v) - 1))
        return v[:cut] + data.draw(st.sampled_from(sorted(seps))) + v[cut:]

    formatted = [format_(v) for v in values]
    stripped = [None if v is None else "".join(c for c in v if c not in seps) for v in formatted]
    keys, status = normalize_numbers(pa.array(formatted, pa.string()), replace(cfg, separators=seps))
    want_keys, want_status = normalize_numbers(pa.array(stripped, pa.string()), cfg)
    assert status.tolist() == want_status.tolist() and keys.tolist() == want_keys.tolist()


def test_a_formatted_number_is_named_by_its_shape_and_the_setting():
    with pytest.raises(ValueError, match=r"shaped \+dd ddd-dddd-dddd; numbers.separators: ' -' would read it"):
        number_keys(["13800000001", "+86 138-0000-0002"])
    assert number_keys(["+86 138-0000-0002"], NumberConfig(country_code="86", separators=" -")).tolist() == \
        number_keys(["13800000002"]).tolist()
    for bad in ("1", "+", "-a"):
        with pytest.raises(ValueError, match="numbers.separators"):
            NumberConfig(separators=bad)

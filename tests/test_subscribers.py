"""The subscriber table: repeated numbers, defaults for optional columns, dates and timestamps,
and who is active at a date."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from socialgraph.config import NumberConfig
from socialgraph.numbers import number_keys
from socialgraph.subscribers import NEVER, day_number, subscribers_from_arrow

NUMBERS = NumberConfig(country_code="86", national_length=11)
MSISDN = ["13800000001", "13800000002", "13800000003"]
JAN1 = dt.date(2025, 1, 1)


def table(**columns) -> pa.Table:
    cols = {"msisdn": MSISDN, "activation_date": pa.array([JAN1] * len(MSISDN), pa.date32())}
    cols.update(columns)
    return pa.table(cols)


def test_day_number():
    assert day_number(dt.date(1970, 1, 1)) == 0
    assert day_number(dt.date(1970, 1, 2)) == 1
    assert day_number(dt.date(1969, 12, 31)) == -1
    assert day_number(JAN1) == (JAN1 - dt.date(1970, 1, 1)).days == 20089


def test_repeated_msisdn_is_refused():
    with pytest.raises(ValueError, match="msisdn"):
        subscribers_from_arrow(pa.table({"msisdn": ["13800000001", "13800000002", "13800000001"],
                                         "activation_date": pa.array([JAN1] * 3, pa.date32())}))


def test_repeated_msisdn_after_normalisation_is_refused():
    """'+86...' and '0086...' are the same subscriber as the national number."""
    t = pa.table({"msisdn": ["13800000001", "+8613800000001", " 008613800000002", "13800000002"],
                  "activation_date": pa.array([JAN1] * 4, pa.date32())})
    with pytest.raises(ValueError, match="msisdn"):
        subscribers_from_arrow(t, NUMBERS)
    # without the country code they are different numbers
    assert len(subscribers_from_arrow(t.slice(0, 2))) == 2


def test_bad_msisdn_is_refused():
    with pytest.raises(ValueError):
        subscribers_from_arrow(table(msisdn=["13800000001", "abc", "13800000003"]))
    with pytest.raises(ValueError):
        subscribers_from_arrow(table(msisdn=["13800000001", None, "13800000003"]))


def test_keys_follow_rows_and_number_normalisation():
    t = table(msisdn=["+8613800000003", "13800000001", "008613800000002"])
    s = subscribers_from_arrow(t, NUMBERS)
    assert_array_equal(s.key, number_keys(["13800000003", "13800000001", "13800000002"], NUMBERS))
    assert len(s) == 3


def test_missing_optional_columns_get_defaults():
    s = subscribers_from_arrow(table())
    assert len(s) == 3
    assert_array_equal(s.churn_day, NEVER)
    assert_array_equal(s.arpu, 0.0)
    assert_array_equal(s.balance, 0.0)
    assert_array_equal(s.vas_count, 0)
    assert s.vas_count.dtype.kind == "i"
    assert s.dnd.dtype == bool and not s.dnd.any()
    for name in ("family_id", "vnet_id", "plan", "imei"):
        assert all(v is None for v in getattr(s, name)), name
    assert not s.in_group().any()
    assert_array_equal(s.activation_day, day_number(JAN1))


def test_nulls_in_optional_columns_get_defaults():
    s = subscribers_from_arrow(table(
        arpu=pa.array([12.5, None, 3.0]), balance=pa.array([None, 7.0, 0.0]),
        vas_count=pa.array([2, None, 0], pa.int64()), dnd=pa.array([True, None, False]),
        family_id=pa.array(["F1", None, None]), vnet_id=pa.array([None, "V9", None]),
        plan=pa.array(["Smart 38", None, "Basic 18"]),
    ))
    assert_array_equal(s.arpu, [12.5, 0.0, 3.0])
    assert_array_equal(s.balance, [0.0, 7.0, 0.0])
    assert_array_equal(s.vas_count, [2, 0, 0])
    assert_array_equal(s.dnd, [True, True, False])  # a missing flag is no consent
    assert s.issues["null_dnd"] == 1
    assert_array_equal(s.in_group(), [True, True, False])


def test_missing_dnd_values_are_contactable_only_when_asked_and_no_column_means_no_opt_out():
    flags = pa.array([True, None, False])
    assert_array_equal(subscribers_from_arrow(table(dnd=flags), unknown_dnd=False).dnd, [True, False, False])
    no_column = subscribers_from_arrow(table())
    assert not no_column.dnd.any() and no_column.issues["null_dnd"] == 0


def test_string_columns_are_objects_with_none_for_missing():
    """As documented on :class:`Subscribers`: object arrays, ``None`` where missing, whether
    or not a column has any value (``plan`` has some, ``imei`` none)."""
    s = subscribers_from_arrow(table(family_id=pa.array(["F1", None, None]),
                                     plan=pa.array([None, "Smart 38", None])))
    for name, expected in (("family_id", ["F1", None, None]), ("plan", [None, "Smart 38", None]),
                           ("vnet_id", [None, None, None]), ("imei", [None, None, None])):
        values = getattr(s, name)
        assert values.dtype == object, name
        assert list(values) == expected, name


def test_integer_group_ids_become_strings():
    s = subscribers_from_arrow(table(vnet_id=pa.array([7, None, 7], pa.int64())))
    assert_array_equal(s.in_group(), [True, False, True])
    assert s.vnet_id[0] == s.vnet_id[2] == "7"


def as_type(days, typ, time=dt.time(23, 59, 59)) -> pa.Array:
    """Dates as an Arrow array of ``typ``; timestamps at ``time`` of each day (UTC)."""
    if not pa.types.is_timestamp(typ):
        return pa.array(days, typ)
    naive = [None if d is None else dt.datetime.combine(d, time) for d in days]
    return pa.array(naive, pa.timestamp(typ.unit)).cast(typ)


@pytest.mark.parametrize("typ", [pa.date32(), pa.date64(), pa.timestamp("s"), pa.timestamp("ms"),
                                 pa.timestamp("us"), pa.timestamp("ns"), pa.timestamp("ms", tz="UTC")])
def test_dates_and_timestamps_accepted(typ):
    churn = [dt.date(2024, 2, 29), dt.date(1969, 12, 31), None]
    s = subscribers_from_arrow(table(activation_date=as_type([dt.date(2020, 5, 17)] * 3, typ, dt.time(0, 0, 1)),
                                     churn_date=as_type(churn, typ)))
    assert_array_equal(s.activation_day, day_number(dt.date(2020, 5, 17)))
    assert_array_equal(s.churn_day, [day_number(dt.date(2024, 2, 29)), -1, NEVER])
    assert s.churn_day.dtype == np.int64 and s.activation_day.dtype == np.int64


def test_date_and_timestamp_give_the_same_days():
    dates = [dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2026, 1, 31)]
    as_dates = subscribers_from_arrow(table(churn_date=pa.array(dates, pa.date32())))
    as_ts = subscribers_from_arrow(table(churn_date=pa.array(
        [dt.datetime.combine(d, dt.time(12)) for d in dates], pa.timestamp("ms"))))
    assert_array_equal(as_dates.churn_day, as_ts.churn_day)


def test_active_at():
    """Joined before the day and not churned before it: a subscriber activated on the day is not
    yet active at it; one churning on the day still is."""
    d = day_number(dt.date(2025, 6, 1))
    one = dt.timedelta(days=1)
    day0 = dt.date(2025, 6, 1)
    rows = {  # msisdn: (activation_date, churn_date, active at d?)
        "13800000001": (day0 - one, None, True),
        "13800000002": (day0, None, False),  # joins on the day
        "13800000003": (day0 + one, None, False),
        "13800000004": (dt.date(2020, 1, 1), day0, True),  # churns on the day
        "13800000005": (dt.date(2020, 1, 1), day0 - one, False),  # churned the day before
        "13800000006": (dt.date(2020, 1, 1), day0 + one, True),
        "13800000007": (day0 - one, day0 - one, False),
    }
    t = pa.table({"msisdn": list(rows), "activation_date": pa.array([v[0] for v in rows.values()], pa.date32()),
                  "churn_date": pa.array([v[1] for v in rows.values()], pa.date32())})
    s = subscribers_from_arrow(t)
    assert_array_equal(s.active_at(d), [v[2] for v in rows.values()])
    # never churned: active from the day after activation, forever
    assert s.active_at(d + 10**6)[0]
    assert not s.active_at(d - 1)[0] and s.active_at(d)[0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.dates(dt.date(1990, 1, 1), dt.date(2090, 12, 31))), min_size=1, max_size=30),
       st.sampled_from(["", " 00:00:00", "T08:15:00"]))
def test_iso_text_dates_read_as_dates(dates, time_part):
    """A CRM extract's dates as text (``2024-01-05``, with a time, or empty for none) give the
    days a date column gives."""
    msisdn = [f"138{i:08d}" for i in range(len(dates))]
    as_date = pa.table({"msisdn": msisdn, "activation_date": pa.array(dates, pa.date32()),
                        "churn_date": pa.array(dates, pa.date32())})
    text = [" " + d.isoformat() + time_part if d else ("" if i % 2 else None) for i, d in enumerate(dates)]
    as_text = pa.table({"msisdn": msisdn, "activation_date": pa.array(text, pa.string()),
                        "churn_date": pa.array(text, pa.string())})
    a, b = subscribers_from_arrow(as_date), subscribers_from_arrow(as_text)
    assert_array_equal(a.activation_day, b.activation_day)
    assert_array_equal(a.churn_day, b.churn_day)
    assert a.issues == b.issues


def test_text_dates_that_are_not_iso_are_refused_naming_the_column():
    for bad in ("05/01/2024", "2024-02-30", "2024-1-5", "yesterday"):
        t = pa.table({"msisdn": ["13800000001", "13800000002"], "activation_date": ["2024-01-05", "2024-01-06"],
                      "churn_date": pa.array([None, bad], pa.string())})
        with pytest.raises(ValueError, match=f"column 'churn_date': 1 value\\(s\\) are not ISO dates .*{bad[:4]}"):
            subscribers_from_arrow(t)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)), st.integers(0, 50)),
                min_size=1, max_size=30))
def test_numbers_as_text_read_as_numbers(rows):
    """A CSV export's ``arpu``, ``balance`` and ``vas_count`` are text: written with Python's
    ``repr`` of the number (or empty / null for none) they give what number columns give."""
    msisdn = [f"138{i:08d}" for i in range(len(rows))]
    money = [v for v, _ in rows]
    counts = [c if v is not None else None for v, c in rows]
    base = {"msisdn": msisdn, "activation_date": pa.array([JAN1] * len(rows), pa.date32())}
    as_numbers = pa.table({**base, "arpu": pa.array(money, pa.float64()), "balance": pa.array(money, pa.float64()),
                           "vas_count": pa.array(counts, pa.int64())})
    blank = lambda i: "" if i % 2 else None  # noqa: E731
    as_text = pa.table({**base,
                        "arpu": [f" {v!r}" if v is not None else blank(i) for i, v in enumerate(money)],
                        "balance": pa.array([repr(v) if v is not None else blank(i) for i, v in enumerate(money)]
                                            ).dictionary_encode(),
                        "vas_count": [str(c) if c is not None else blank(i) for i, c in enumerate(counts)]})
    a, b = subscribers_from_arrow(as_numbers), subscribers_from_arrow(as_text)
    for name in ("arpu", "balance", "vas_count"):
        assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("bad", ["1,5", "12 EUR", "1.2.3", "n/a"])
def test_number_text_that_is_no_number_is_refused_naming_the_column(bad):
    t = table(arpu=["10.5", bad, ""])
    with pytest.raises(ValueError, match=f"column 'arpu': 1 value\\(s\\) are not numbers, e.g. '{bad}'"):
        subscribers_from_arrow(t)

"""Schemas of every input and output table: the one source of column names and types.

Input tables are described by *accepted type families* (a CDR export may store numbers as
strings or integers, timestamps in any unit); output tables by exact pyarrow schemas, which
every writer uses.

>>> check_input_schema(pa.schema([("caller", pa.string())]), CDR_INPUT, "f.parquet")
Traceback (most recent call last):
...
ValueError: f.parquet: required column 'callee' is missing (columns: caller)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pyarrow as pa

__all__ = [
    "CDR_INPUT",
    "SUBSCRIBER_INPUT",
    "EDGES",
    "check_input_schema",
]

_t = pa.types


def is_text(t: pa.DataType) -> bool:
    """A text column's type: string, large string or string view, dictionary-encoded or not."""
    if _t.is_dictionary(t):
        t = t.value_type
    return _t.is_string(t) or _t.is_large_string(t) or _t.is_string_view(t)


_stringish = is_text

#: a number written as text (a CSV export's): digits with an optional sign, decimal point and
#: exponent, blanks around them; anything else (``1:23``, ``12s``, ``1,5``) does not read
_NUMBER_TEXT = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"


def blank_as_null(col):
    """Text with its empty and all-blank values as nulls (a CSV's empty cell is no value).

    >>> import pyarrow as pa
    >>> blank_as_null(pa.array(["a", "", "  ", None])).to_pylist()
    ['a', None, None, None]
    """
    import pyarrow.compute as pc

    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(col), ""), False)
    return pc.if_else(blank, pa.scalar(None, col.type), col)


def number_text(col):
    """Numbers from text as ``float64``, null where the text is not a plain number
    (Arrow's own cast would fail the whole column on one such value).

    >>> import pyarrow as pa
    >>> number_text(pa.chunked_array([[" 60", "12.5", "", "1:23", None, "-3", "1.5e2"]])).to_pylist()
    [60.0, 12.5, None, None, None, -3.0, 150.0]
    """
    import pyarrow.compute as pc

    if _t.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    ok = pc.fill_null(pc.match_substring_regex(col, _NUMBER_TEXT), False)
    return pc.cast(pc.utf8_trim_whitespace(pc.if_else(ok, col, pa.scalar(None, col.type))), pa.float64())


def _number(t):
    return _stringish(t) or _t.is_integer(t)


def _timestamp(t):
    return _t.is_timestamp(t)


def _date(t):
    return _t.is_date(t) or _t.is_timestamp(t)


def _integer(t):
    return _t.is_integer(t)


def _numeric(t):
    return _t.is_integer(t) or _t.is_floating(t) or _t.is_decimal(t)


def _boolean(t):
    return _t.is_boolean(t) or _t.is_integer(t)


def _any(t):
    return True


# name -> (required, accepted-type predicate, what to say when it does not match)
InputSpec = Mapping[str, tuple[bool, Callable[[pa.DataType], bool], str]]

CDR_INPUT: InputSpec = {
    "caller": (True, _number, "a string (or integer) phone number"),
    "callee": (True, _number, "a string (or integer) phone number"),
    "start_time": (True, _timestamp, "a timestamp"),
    "duration_s": (True, lambda t: _numeric(t) or _stringish(t), "an integer number of seconds"),
    "event_type": (True, _stringish, "a string ('voice' or 'sms')"),
    "cdr_id": (False, lambda t: _stringish(t) or _t.is_integer(t), "a string or integer id"),
    "caller_imei": (False, _number, "a string"),
}

SUBSCRIBER_INPUT: InputSpec = {
    "msisdn": (True, _number, "a string phone number"),
    "activation_date": (True, lambda t: _date(t) or _stringish(t), "a date (or ISO text: 2024-01-05)"),
    "churn_date": (False, lambda t: _date(t) or _stringish(t), "a date, null = active (or ISO text)"),
    "plan": (False, _stringish, "a string"),
    "arpu": (False, lambda t: _numeric(t) or _stringish(t), "a float"),
    "balance": (False, lambda t: _numeric(t) or _stringish(t), "a float"),
    "vnet_id": (False, lambda t: _stringish(t) or _t.is_integer(t), "a string"),
    "family_id": (False, lambda t: _stringish(t) or _t.is_integer(t), "a string"),
    "vas_count": (False, lambda t: _numeric(t) or _stringish(t), "an integer"),
    "dnd": (False, lambda t: _boolean(t) or _stringish(t), "a boolean (or text: Y/N, yes/no, true/false)"),
    "imei": (False, _number, "a string"),
}


def check_input_schema(schema: pa.Schema, spec: InputSpec, source: str) -> list[str]:
    """Check a file's schema against an input spec; return the columns present to read.

    Raises ``ValueError`` with one line naming the file and the column.
    """
    names = schema.names
    for name, (required, ok, what) in spec.items():
        if name not in names:
            if required:
                raise ValueError(
                    f"{source}: required column {name!r} is missing (columns: {', '.join(names)})"
                )
            continue
        typ = schema.field(name).type
        if _t.is_null(typ):
            continue  # an all-null column in one file: its rows fail validation, not the schema
        if not ok(typ):
            raise ValueError(f"{source}: column {name!r} has type {typ}, expected {what}")
    return [n for n in spec if n in names]


EDGES = pa.schema([
    ("a", pa.string()),
    ("b", pa.string()),
    ("calls", pa.int64()),
    ("sms", pa.int64()),
    ("duration_s", pa.int64()),
    ("active_days", pa.int32()),
    ("reciprocal", pa.bool_()),
    ("weight", pa.float64()),
    ("calls_ab", pa.int64()),
    ("calls_ba", pa.int64()),
    ("sms_ab", pa.int64()),
    ("sms_ba", pa.int64()),
    ("first_seen", pa.timestamp("s")),
    ("last_seen", pa.timestamp("s")),
    ("evening_weekend_share", pa.float64()),
    ("working_hours_share", pa.float64()),
    ("service_hub", pa.bool_()),
])

NODES = pa.schema([
    ("msisdn", pa.string()),
    ("on_net", pa.bool_()),
    ("operator", pa.string()),
    ("service_hub", pa.bool_()),
    ("degree", pa.int64()),
    ("strength", pa.float64()),
])

SUBSCRIBERS_SCORED = pa.schema([
    ("msisdn", pa.string()),
    ("stickiness", pa.float64()),
    ("influence", pa.float64()),
    ("exposure", pa.float64()),
    ("churn_risk", pa.float64()),
    ("sticky_tenure", pa.float64()),
    ("sticky_social", pa.float64()),
    ("sticky_diversity", pa.float64()),
    ("sticky_onnet", pa.float64()),
    ("sticky_services", pa.float64()),
    ("sticky_group", pa.float64()),
    ("sticky_balance", pa.float64()),
    ("tenure_days", pa.int64()),
    ("inbound_contacts", pa.int64()),
    ("reciprocal_contacts", pa.int64()),
    ("spreading_activation", pa.float64()),
    ("competitor_share", pa.float64()),
    ("activity_trend", pa.float64()),
    ("dnd", pa.bool_()),
])

# targets.csv (and its .xlsx copy), in column order; ``msisdn`` is the full number as text
TARGETS = pa.schema([
    ("priority", pa.int64()),
    ("circle_id", pa.string()),
    ("kind", pa.string()),
    ("msisdn", pa.string()),
    ("role", pa.string()),
    ("offer", pa.string()),
    ("churn_risk", pa.float64()),
    ("reason", pa.string()),
    ("value_at_stake", pa.float64()),
    ("arpu", pa.float64()),
    ("circle_targeted_last_run", pa.bool_()),
    ("listed_last_run", pa.bool_()),
])

CIRCLE_LINEAGE = pa.schema([
    ("previous_id", pa.string()),
    ("circle_id", pa.string()),
    ("kind", pa.string()),
    ("overlap", pa.int64()),
    ("jaccard", pa.float64()),
    ("event", pa.string()),
])

CIRCLE_HISTORY = pa.schema([
    ("as_of", pa.date32()),
    ("circle_id", pa.string()),
    ("kind", pa.string()),
    ("size", pa.int64()),
    ("active_members", pa.int64()),
    ("churned_recent", pa.int64()),
    ("expected_churn", pa.float64()),
    ("q_value", pa.float64()),
    ("contagion", pa.bool_()),
    ("targeted", pa.bool_()),
])

CIRCLES = pa.schema([
    ("circle_id", pa.string()),
    ("kind", pa.string()),
    ("source", pa.string()),
    ("size", pa.int64()),
    ("active_members", pa.int64()),
    ("churned_recent", pa.int64()),
    ("expected_churn", pa.float64()),
    ("p_value", pa.float64()),
    ("q_value", pa.float64()),
    ("contagion", pa.bool_()),
    ("on_net_members", pa.int64()),
    ("tested", pa.int64()),
    ("churned_first_half", pa.int64()),
    ("churned_second_half", pa.int64()),
    ("churned_last_days", pa.int64()),
    ("reentries", pa.int64()),
    ("ported", pa.int64()),
    ("competitor_members", pa.int64()),
    ("window_days", pa.int64()),
    ("q_bh", pa.float64()),
    ("q_discrete", pa.float64()),
    ("churned_previous_run", pa.float64()),
    ("churn_score", pa.int64()),
    ("test_weight", pa.float64()),
    ("layer", pa.string()),
    ("anchor", pa.string()),  # masked number of the anchor, for people reading the table
])

CIRCLE_MEMBERS = pa.schema([
    ("circle_id", pa.string()),
    ("msisdn", pa.string()),
    ("on_net", pa.bool_()),
    ("role", pa.string()),
    ("influence", pa.float64()),
    ("churned", pa.bool_()),
    ("kind", pa.string()),
    ("source", pa.string()),
    ("active", pa.bool_()),
    ("strongest_tie", pa.float64()),
    ("churn_date", pa.date32()),
])

NUMBER_CHANGES = pa.schema([
    ("old_msisdn", pa.string()),
    ("new_msisdn", pa.string()),
    ("kind", pa.string()),
    ("similarity", pa.float64()),
    ("evidence", pa.string()),
    ("operator", pa.string()),
    ("shared_contacts", pa.int64()),
    ("same_imei", pa.bool_()),
    ("churn_date", pa.date32()),
    ("new_first_date", pa.date32()),
])

"""A seeded, deterministic synthetic mobile operator with known circles and churn.

The world is a population of *persons* living in households (2-5 people), grouped in
localities (where friends are found) and working in workplaces (3-200 people, heavy-tailed).
About ``offnet_share`` of the persons use a competitor (``CompA`` numbers start ``130``,
``CompB`` ``189``); the rest are subscribers of the home operator (``HomeTel``, ``138``). Some
households hold a family plan (``family_id``), some workplaces a corporate V-net (``vnet_id``).

:func:`make_operator` simulates, week by week, churn with social contagion (a subscriber's
hazard rises with the share of their household and close colleagues who left recently) and
a few planted competitor campaigns on households and workplaces that start shortly before
``as_of`` and go on after it. A churner ports to a competitor (a new off-net number that keeps
calling the old contacts), re-enters on a new on-net number (often with the same handset), or
just vanishes. :meth:`SyntheticOperator.cdr_chunks` then produces the call detail records the
operator would see, one week at a time, plus a share of deliberately bad rows.

Nothing here touches the file system: the tables are returned as Arrow tables, and the
generator for week ``w`` is derived from ``(seed, w)`` alone, so weeks can be generated in any
order (or in parallel) and the same seed always gives byte-identical tables. Everything is
vectorised over persons, ties and events (loops run over weeks or a few categories only):
1,000,000 subscribers over 12 weeks (about 20 million CDR rows) take well under a minute on
one core and less than 2 GB of memory, one week of CDRs at a time.

The stages live in their own modules, in the order :func:`make_operator` runs them:
:mod:`.config` (the tunables and the fixed facts of the world), :mod:`.population` (persons,
places, ties, subscriber attributes), :mod:`.churn` (campaigns and weekly churn),
:mod:`.tables` (numbers, handsets, the subscriber and truth tables) and :mod:`.cdr` (one week
of CDRs); :mod:`.operator` ties them together.

>>> op = make_operator(SynthConfig(n_subscribers=300, weeks=2, future_weeks=2, seed=7))
>>> op.as_of
datetime.date(2026, 1, 19)
>>> [name for name, _ in op.cdr_chunks()]
['week=2026-01-05', 'week=2026-01-12']
>>> op.subscribers.column_names[:3]
['msisdn', 'activation_date', 'churn_date']
>>> sorted(op.truth)
['campaigns', 'churn', 'membership', 'number_changes']
>>> op.cdr_chunk(0).equals(make_operator(op.config).cdr_chunk(0))
True
"""

from .config import (
    CDR_SCHEMA,
    COMPETITORS,
    COUNTRY_CODE,
    HOME_OPERATOR,
    NATIONAL_LENGTH,
    OPERATORS,
    SUBSCRIBER_SCHEMA,
    SynthConfig,
)
from .operator import SyntheticOperator, make_operator

__all__ = [
    "SynthConfig",
    "SyntheticOperator",
    "make_operator",
    "CDR_SCHEMA",
    "SUBSCRIBER_SCHEMA",
    "HOME_OPERATOR",
    "COMPETITORS",
    "OPERATORS",
    "COUNTRY_CODE",
    "NATIONAL_LENGTH",
]

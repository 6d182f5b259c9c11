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

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .config import _check_range

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

HOME_OPERATOR = "HomeTel"
COMPETITORS = ("CompA", "CompB")
COUNTRY_CODE = "86"
NATIONAL_LENGTH = 11
#: the operator prefix file content (``--operators``)
OPERATORS = {
    "home_operator": HOME_OPERATOR,
    "home_prefixes": ["138"],
    "operators": {"130": "CompA", "189": "CompB", "400": "Service", "9558": "Service"},
}

CDR_SCHEMA = pa.schema(
    [
        ("caller", pa.string()),
        ("callee", pa.string()),
        ("start_time", pa.timestamp("s")),
        ("duration_s", pa.int64()),
        ("event_type", pa.string()),
        ("cdr_id", pa.int64()),
        ("caller_imei", pa.string()),
    ]
)

SUBSCRIBER_SCHEMA = pa.schema(
    [
        ("msisdn", pa.string()),
        ("activation_date", pa.date32()),
        ("churn_date", pa.date32()),
        ("plan", pa.string()),
        ("arpu", pa.float64()),
        ("balance", pa.float64()),
        ("vnet_id", pa.string()),
        ("family_id", pa.string()),
        ("vas_count", pa.int64()),
        ("dnd", pa.bool_()),
        ("imei", pa.string()),
    ]
)

# ---------------------------------------------------------------------------------------------
# fixed world constants (the tunables live in SynthConfig)

_HOME_HEAD = 138
_COMP_HEAD = np.array([130, 189], dtype=np.int64)  # CompA, CompB
_SUFFIX_SPAN = 10**8  # 8 digits after a 3-digit head -> 11-digit national numbers
_HH_SIZES = np.array([2, 3, 4, 5])
_HH_PROBS = np.array([0.34, 0.30, 0.23, 0.13])
_HOUSEHOLD_OFFNET = 0.15  # share of members of an ordinary household using a competitor
_COMP_A_SHARE = 0.6  # CompA's share of off-net persons and of ordinary ports
_N_SERVICE_400 = 24
_N_SERVICE_9558 = 6

# event kinds (ties first)
_FAMILY, _WORK, _FRIEND, _SERVICE, _NOISE = 0, 1, 2, 3, 4
_N_KINDS = 5
# share of the clean event volume per kind
_KIND_SHARE = np.array([0.44, 0.26, 0.20, 0.06, 0.04])
_SMS_SHARE = np.array([0.35, 0.20, 0.45, 0.05, 0.30])
_VOICE_MEDIAN_S = np.array([150.0, 100.0, 120.0, 180.0, 45.0])
_VOICE_SIGMA = 0.9
_MMS_SHARE = 0.004
_DATA_SHARE = 0.006
_IMEI_MISSING = 0.02
_EVENT_TYPES = np.array(["voice", "sms", "mms", "data"], dtype=object)


def _hours(spec: dict[tuple[int, int], float]) -> np.ndarray:
    w = np.zeros(24)
    for (lo, hi), v in spec.items():
        w[lo:hi] = v
    return w / w.sum()


# day-of-week weights (Mon..Sun) and hour weights (weekday, weekend) per event kind
_DOW_W = np.array(
    [
        [1, 1, 1, 1, 1, 2.0, 2.0],  # family: weekends
        [1, 1, 1, 1, 1, 0.08, 0.05],  # work: weekdays
        [1, 1, 1, 1, 1, 1.4, 1.4],  # friends: a bit of both
        [1, 1, 1, 1, 1, 0.5, 0.5],  # service: office hours
        [1, 1, 1, 1, 1, 1, 1],  # noise
    ],
    dtype=float,
)
_DOW_CUM = np.cumsum(_DOW_W / _DOW_W.sum(axis=1, keepdims=True), axis=1)
_HOUR_P = np.array(
    [
        [  # family
            _hours({(0, 7): 0.1, (7, 9): 0.5, (9, 12): 0.4, (12, 14): 0.8, (14, 18): 0.4,
                    (18, 23): 3.0, (23, 24): 1.0}),
            _hours({(0, 8): 0.1, (8, 12): 1.0, (12, 18): 1.2, (18, 23): 2.0, (23, 24): 0.6}),
        ],
        [  # work
            _hours({(0, 8): 0.02, (8, 9): 0.5, (9, 17): 3.0, (17, 18): 1.0, (18, 20): 0.3, (20, 24): 0.05}),
            _hours({(0, 8): 0.02, (8, 19): 0.3, (19, 24): 0.02}),
        ],
        [  # friends
            _hours({(0, 7): 0.1, (7, 12): 0.6, (12, 14): 1.0, (14, 18): 0.7, (18, 23): 1.5, (23, 24): 0.8}),
            _hours({(0, 9): 0.2, (9, 24): 1.0}),
        ],
        [  # service
            _hours({(0, 8): 0.05, (8, 21): 1.0, (21, 24): 0.05}),
            _hours({(0, 9): 0.03, (9, 19): 0.6, (19, 24): 0.03}),
        ],
        [  # noise
            _hours({(0, 8): 0.1, (8, 22): 1.0, (22, 24): 0.1}),
            _hours({(0, 8): 0.1, (8, 22): 1.0, (22, 24): 0.1}),
        ],
    ]
)
_HOUR_CUM = np.cumsum(_HOUR_P, axis=2)

_PLANS = np.array(
    ["Basic 18", "Youth 28", "Smart 38", "Smart 58", "Unlimited 128", "Family 88", "Business 128"], dtype=object
)
_PLAN_ARPU = np.array([20.0, 30.0, 42.0, 60.0, 130.0, 55.0, 95.0])
_PLAN_P_ORDINARY = np.array([0.22, 0.18, 0.30, 0.22, 0.08])  # over the first five plans
_PLAN_FAMILY, _PLAN_BUSINESS, _PLAN_YOUTH = 5, 6, 1

# churn destinations / causes (codes in the simulation, names in the truth tables)
_DEST_NAMES = np.array(["CompA", "CompB", "reentry", "gone"], dtype=object)
_D_A, _D_B, _D_REENTRY, _D_GONE = 0, 1, 2, 3
_CAUSE_NAMES = np.array(["base", "contagion", "campaign"], dtype=object)

# dirty-row kinds
_DIRTY_KINDS = (
    "null_caller",
    "null_callee",
    "garbage_caller",
    "garbage_callee",
    "negative_duration",
    "self_call",
    "duplicate",
    "time_1970",
    "time_2099",
    "unknown_event_type",
)
_GARBAGE_NUMBERS = np.array(
    ["abc", "12-34", "\U0001f4de123", "", "N/A", "138abc5678", "+", "123456789012345678901"], dtype=object
)
_UNKNOWN_TYPES = np.array(["fax", "ussd", "video?", "x"], dtype=object)
_T_2099 = int((_dt.date(2099, 1, 1) - _dt.date(1970, 1, 1)).days) * 86400

# generator streams: each part of the world draws from its own stream
_S_WORLD, _S_ATTR, _S_CHURN, _S_NUMBERS, _S_CDR = 1, 2, 3, 4, 5
_NEVER = np.int64(1 << 40)  # a day index that never comes


def _check_number(name: str, value, lo, hi, integer: bool = False) -> None:
    _check_range("synth", name, value, lo, hi, integer=integer)


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    """Size, seed and behaviour of the synthetic operator.

    Rates are per week unless said otherwise. ``events_per_sub_week`` is the expected number of
    clean CDR rows per starting subscriber and week (before the ``dirty_rate`` extra rows);
    the default gives about 20 million rows for 1,000,000 subscribers over 12 weeks.

    >>> SynthConfig(weeks=0)
    Traceback (most recent call last):
    ...
    ValueError: synth.weeks must be in [1, 520], got 0
    """

    n_subscribers: int = 10_000
    weeks: int = 12
    future_weeks: int = 8
    seed: int = 42
    start_date: _dt.date = _dt.date(2026, 1, 5)
    dirty_rate: float = 0.005
    events_per_sub_week: float = 1.7
    #: share of the persons of the world who use a competitor (they appear only in CDRs)
    offnet_share: float = 0.2
    #: share of the persons who work, share of households with a family plan (among those with
    #: at least two subscribers), share of workplaces with a V-net (among those with three)
    worker_share: float = 0.75
    family_plan_share: float = 0.4
    vnet_share: float = 0.3
    #: mean number of friendship / extra colleague ties a person starts
    friend_ties: float = 1.3
    colleague_ties: float = 0.8
    #: new subscribers activated during the CDR weeks, per starting subscriber and week
    joiner_rate: float = 0.002
    #: churn: base weekly hazard (before tenure/ARPU/ties factors), contagion multiplier per
    #: unit of (decayed) share of strong ties lost, weekly decay of that exposure
    base_hazard: float = 0.0025
    contagion_strength: float = 10.0
    contagion_decay: float = 0.8
    #: of the ordinary (non-campaign) churners: share re-entering on a new on-net number,
    #: share vanishing; the rest port to a competitor
    reentry_share: float = 0.2
    gone_share: float = 0.25
    #: share of re-entries that keep their handset (IMEI)
    same_imei_share: float = 0.8
    #: share of eligible households / workplaces hit by a planted competitor campaign, its peak
    #: weekly hazard, and how many weeks before the end of the data campaigns may start
    campaign_share: float = 0.015
    campaign_hazard: float = 0.12
    campaign_lead_weeks: int = 4
    dnd_rate: float = 0.05
    #: share of numbers written with the country code in CDRs (3/4 as '+86', 1/4 as '0086')
    intl_format_share: float = 0.04

    def __post_init__(self):
        _check_number("n_subscribers", self.n_subscribers, 10, 100_000_000, integer=True)
        _check_number("weeks", self.weeks, 1, 520, integer=True)
        _check_number("future_weeks", self.future_weeks, 0, 520, integer=True)
        _check_number("seed", self.seed, 0, 2**32 - 1, integer=True)
        if not isinstance(self.start_date, _dt.date) or isinstance(self.start_date, _dt.datetime):
            raise ValueError(f"synth.start_date must be a date, got {self.start_date!r}")
        if self.start_date.weekday() != 0:
            raise ValueError(f"synth.start_date must be a Monday, got {self.start_date.isoformat()}")
        _check_number("dirty_rate", self.dirty_rate, 0.0, 0.5)
        _check_number("events_per_sub_week", self.events_per_sub_week, 0.01, 1000.0)
        _check_number("offnet_share", self.offnet_share, 0.0, 0.8)
        for name in ("worker_share", "family_plan_share", "vnet_share", "reentry_share", "gone_share",
                     "same_imei_share", "campaign_share", "dnd_rate", "intl_format_share"):
            _check_number(name, getattr(self, name), 0.0, 1.0)
        if self.reentry_share + self.gone_share > 1.0:
            raise ValueError("synth.reentry_share + synth.gone_share must be at most 1")
        _check_number("friend_ties", self.friend_ties, 0.0, 50.0)
        _check_number("colleague_ties", self.colleague_ties, 0.0, 50.0)
        _check_number("joiner_rate", self.joiner_rate, 0.0, 0.1)
        _check_number("base_hazard", self.base_hazard, 0.0, 0.2)
        _check_number("contagion_strength", self.contagion_strength, 0.0, 100.0)
        _check_number("contagion_decay", self.contagion_decay, 0.0, 1.0)
        _check_number("campaign_hazard", self.campaign_hazard, 0.0, 5.0)
        _check_number("campaign_lead_weeks", self.campaign_lead_weeks, 1, 520, integer=True)

    @property
    def as_of(self) -> _dt.date:
        """The day after the last CDR day."""
        return self.start_date + _dt.timedelta(days=7 * self.weeks)


# ---------------------------------------------------------------------------------------------
# helpers


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _fresh(rng: np.random.Generator, heads: np.ndarray, span: int, taken: np.ndarray) -> np.ndarray:
    """``heads * span + suffix`` with random suffixes, unique and not in sorted ``taken``."""
    heads = np.asarray(heads, dtype=np.int64)
    out = heads * span + rng.integers(0, span, heads.size)
    while True:
        order = np.argsort(out, kind="stable")
        s = out[order]
        bad = np.zeros(out.size, dtype=bool)
        bad[order[1:][s[1:] == s[:-1]]] = True
        if taken.size:  # taken is sorted
            at = np.minimum(np.searchsorted(taken, out), taken.size - 1)
            bad |= taken[at] == out
        nbad = int(bad.sum())
        if not nbad:
            return out
        out[bad] = heads[bad] * span + rng.integers(0, span, nbad)


def _luhn(body: np.ndarray, n_digits: int) -> np.ndarray:
    """Append the Luhn check digit to ``n_digits``-digit integers."""
    total = np.zeros(body.size, dtype=np.int64)
    x = body.copy()
    for i in range(n_digits):  # i = 0 is the rightmost digit, which gets doubled
        d = x % 10
        x //= 10
        if i % 2 == 0:
            d = d * 2
            d = np.where(d > 9, d - 9, d)
        total += d
    return body * 10 + (10 - total % 10) % 10


def _str(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Integers to an Arrow string array (``null`` marks missing values)."""
    arr = pa.array(np.asarray(values, dtype=np.int64), mask=null)
    return pc.cast(arr, pa.string())


def _ids(prefix: str, values: np.ndarray, null: np.ndarray | None = None, width: int = 6) -> pa.Array:
    """``prefix`` + zero-padded integers, e.g. ``H000042``."""
    s = pc.utf8_lpad(_str(values, null), width, "0")
    return pc.binary_join_element_wise(prefix, s, "")


def _dates(start: _dt.date, days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    base = np.datetime64(start.isoformat(), "D")
    values = base + np.asarray(days, dtype=np.int64).astype("timedelta64[D]")
    return pa.array(values, type=pa.date32(), mask=null)


def _formatted(rng: np.random.Generator, numbers: np.ndarray, share: float) -> pa.Array:
    """Numbers as strings, a ``share`` of them written with the country code."""
    s = _str(numbers)
    u = rng.random(numbers.size)
    plus = u < 0.75 * share
    zero = (u >= 0.75 * share) & (u < share)
    if plus.any():
        s = pc.if_else(pa.array(plus), pc.binary_join_element_wise("+" + COUNTRY_CODE, s, ""), s)
    if zero.any():
        s = pc.if_else(pa.array(zero), pc.binary_join_element_wise("00" + COUNTRY_CODE, s, ""), s)
    return s


# ---------------------------------------------------------------------------------------------
# the world


@dataclass(eq=False)
class _World:
    """Per-person and per-tie arrays behind the CDR generator (private)."""

    n_persons: int
    num0: np.ndarray  # first number of each person
    num1: np.ndarray  # number after a port / re-entry, -1 if none
    on0: np.ndarray  # num0 is on-net
    on1: np.ndarray  # num1 is on-net
    imei0: np.ndarray
    imei1: np.ndarray
    start_day: np.ndarray  # first active day (joiners), -NEVER otherwise
    churn_day: np.ndarray  # last day of num0 is churn_day - 1
    switch_day: np.ndarray  # first day of num1
    end_day: np.ndarray  # person silent from here on (gone)
    tie_u: np.ndarray
    tie_v: np.ndarray
    tie_kind: np.ndarray
    tie_rate: np.ndarray  # expected events per week
    tie_pdir: np.ndarray  # probability that u is the caller
    svc_callers: np.ndarray  # persons who call service numbers
    svc_rate: np.ndarray
    svc_numbers: np.ndarray
    svc_cum: np.ndarray  # cumulative popularity of the service numbers
    noise_callers: np.ndarray
    noise_rate: float


@dataclass(frozen=True)
class SyntheticOperator:
    """A synthetic operator: subscriber table, prefixes, ground truth and a CDR generator.

    ``truth`` holds Arrow tables (numbers are plain normalised digit strings):

    - ``churn``: every number that churns in the simulated horizon, before or after ``as_of``:
      ``msisdn, churn_date, after_as_of, cause ('base'|'contagion'|'campaign'),
      destination ('CompA'|'CompB'|'reentry'|'gone')``, plus ``person_id``.
    - ``campaigns``: ``circle_kind ('family'|'household'|'vnet'|'workplace'), circle_key,
      competitor, start_date, n_members, active_before_as_of`` (started, and a member left
      before ``as_of``), plus ``campaign_id``, ``churned_before_as_of``, ``churned_total``
      (members who left, any cause; a member who re-entered on a new on-net number has not
      left) and ``cluster_before_as_of`` (two or more left before ``as_of``: a
      community-level event already visible in the data).
    - ``number_changes``: ``old_msisdn, new_msisdn, kind ('reentry'|'port'), same_imei,
      change_date`` (the first day of the new number), plus ``churn_date``, ``competitor``.
    - ``membership``: one row per number of the world (on- and off-net, before and after a
      change): ``msisdn, on_net, household_id, workplace_id, locality_id``, plus
      ``person_id, operator, family_id, vnet_id, active_from`` (first day in use, null = before
      the data) and ``active_until`` (first day no longer in use, null = never in the horizon).
      A port or re-entry gives one person two rows with the same ``person_id``.
    """

    config: SynthConfig
    subscribers: pa.Table
    operators: dict
    country_code: str
    national_length: int
    as_of: _dt.date
    truth: dict[str, pa.Table]
    _world: _World = field(repr=False, compare=False)

    def week_start(self, week: int) -> _dt.date:
        """Monday of CDR week ``week`` (0-based)."""
        return self.config.start_date + _dt.timedelta(days=7 * week)

    def partition_name(self, week: int) -> str:
        return f"week={self.week_start(week).isoformat()}"

    def cdr_chunks(self) -> Iterator[tuple[str, pa.Table]]:
        """Yield ``(partition_name, table)`` for each CDR week, in order."""
        for w in range(self.config.weeks):
            yield self.partition_name(w), self.cdr_chunk(w)

    def cdr_chunk(self, week: int) -> pa.Table:
        """The CDR rows (clean and dirty) of one week, in time order; see :data:`CDR_SCHEMA`."""
        if not 0 <= week < self.config.weeks:
            raise ValueError(f"week must be in [0, {self.config.weeks}), got {week!r}")
        return _cdr_week(self.config, self._world, week)


def make_operator(config: SynthConfig = SynthConfig()) -> SyntheticOperator:
    """Simulate the population, its ties and its weekly churn (CDRs come later, lazily).

    Parameters
    ----------
    config : SynthConfig

    Returns
    -------
    SyntheticOperator
    """
    cfg = config
    N = cfg.n_subscribers
    horizon_weeks = cfg.weeks + cfg.future_weeks
    data_days = 7 * cfg.weeks
    rng = _rng(cfg.seed, _S_WORLD)

    # -- persons in households; exactly N + joiners of them on-net ---------------------------
    n_join = int(round(cfg.joiner_rate * N * cfg.weeks))
    n_on_target = N + n_join
    hh_off = min(_HOUSEHOLD_OFFNET, cfg.offnet_share)
    f_offnet_hh = (cfg.offnet_share - hh_off) / (1.0 - hh_off)
    p_est = int(n_on_target / (1.0 - cfg.offnet_share) * 1.1) + 64
    while True:
        sizes = rng.choice(_HH_SIZES, size=p_est // 2 + 8, p=_HH_PROBS)
        hh_of = np.repeat(np.arange(sizes.size), sizes)[:p_est]
        hh_offnet = rng.random(sizes.size) < f_offnet_hh
        on = ~hh_offnet[hh_of] & (rng.random(hh_of.size) >= hh_off)
        cum = np.cumsum(on)
        if cum[-1] >= n_on_target:
            break
        p_est *= 2
    P = int(np.searchsorted(cum, n_on_target)) + 1
    hh_of = hh_of[:P].astype(np.int64)
    on = on[:P]
    n_hh = int(hh_of[-1]) + 1
    hh_start = np.searchsorted(hh_of, np.arange(n_hh))
    hh_size = np.diff(np.append(hh_start, P))

    # -- localities: runs of 30-120 consecutive households ----------------------------------
    loc_hh = rng.integers(30, 121, size=n_hh // 30 + 2)
    loc_of_hh = np.repeat(np.arange(loc_hh.size), loc_hh)[:n_hh]
    loc_of = loc_of_hh[hh_of]
    n_loc = int(loc_of[-1]) + 1
    loc_start = np.searchsorted(loc_of, np.arange(n_loc))
    loc_end = np.append(loc_start[1:], P)

    # -- workplaces: heavy-tailed sizes 3-200 over a random order of the workers --------------
    workers = rng.permutation(np.flatnonzero(rng.random(P) < cfg.worker_share))
    nw = workers.size
    wsz = np.clip(np.rint(rng.lognormal(np.log(6.0), 1.0, size=nw // 3 + 8)), 3, 200).astype(np.int64)
    ends = np.cumsum(wsz)
    k = int(np.searchsorted(ends, nw, side="right"))
    wp_sizes = wsz[:k]
    if nw - int(ends[k - 1] if k else 0) >= 3:
        wp_sizes = np.append(wp_sizes, nw - int(ends[k - 1] if k else 0))
    n_wp = wp_sizes.size
    n_assigned = int(wp_sizes.sum())
    wp_members = workers[:n_assigned]
    wp_start = np.concatenate([[0], np.cumsum(wp_sizes)[:-1]]).astype(np.int64)
    wp_of = np.full(P, -1, dtype=np.int64)
    wp_of_pos = np.repeat(np.arange(n_wp), wp_sizes)
    wp_of[wp_members] = wp_of_pos

    # -- ties --------------------------------------------------------------------------------
    us, vs, kinds, mgr = [], [], [], []
    for a in range(5):  # every pair inside a household
        for b in range(a + 1, 5):
            hs = np.flatnonzero(hh_size > b)
            us.append(hh_start[hs] + a)
            vs.append(hh_start[hs] + b)
    fam_u, fam_v = np.concatenate(us), np.concatenate(vs)
    us, vs = [fam_u], [fam_v]
    kinds = [np.full(fam_u.size, _FAMILY, np.int8)]
    mgr = [np.zeros(fam_u.size, bool)]
    if n_assigned:
        pos = np.arange(n_assigned)
        s = wp_sizes[wp_of_pos]
        st = wp_start[wp_of_pos]
        kw = np.minimum(1 + rng.poisson(cfg.colleague_ties, n_assigned), s - 1)
        src = np.repeat(pos, kw)
        j = st[src] + rng.integers(0, s[src] - 1)
        j = np.where(j >= src, j + 1, j)
        us.append(wp_members[src])
        vs.append(wp_members[j])
        kinds.append(np.full(src.size, _WORK, np.int8))
        mgr.append(np.zeros(src.size, bool))
        # the first member of each workplace is its manager: many members talk to them
        sub = (pos != st) & (rng.random(n_assigned) < np.minimum(1.0, 6.0 / s))
        us.append(wp_members[st[sub]])
        vs.append(wp_members[pos[sub]])
        kinds.append(np.full(int(sub.sum()), _WORK, np.int8))
        mgr.append(np.ones(int(sub.sum()), bool))
    kf = rng.poisson(cfg.friend_ties, P)
    src = np.repeat(np.arange(P), kf)
    lo, hi = loc_start[loc_of[src]], loc_end[loc_of[src]]
    src, lo, hi = src[hi - lo >= 2], lo[hi - lo >= 2], hi[hi - lo >= 2]
    j = lo + rng.integers(0, hi - lo - 1)
    j = np.where(j >= src, j + 1, j)
    keep = hh_of[j] != hh_of[src]
    us.append(src[keep])
    vs.append(j[keep])
    kinds.append(np.full(int(keep.sum()), _FRIEND, np.int8))
    mgr.append(np.zeros(int(keep.sum()), bool))
    tu, tv = np.concatenate(us).astype(np.int64), np.concatenate(vs).astype(np.int64)
    tkind, tmgr = np.concatenate(kinds), np.concatenate(mgr)
    # one tie per pair (family beats work beats friends); drop pairs the operator never sees
    key = np.minimum(tu, tv) * P + np.maximum(tu, tv)
    order = np.lexsort((tkind, key))
    first = np.ones(order.size, bool)
    first[1:] = key[order][1:] != key[order][:-1]
    sel = order[first]
    sel = sel[on[tu[sel]] | on[tv[sel]]]
    sel.sort()
    tu, tv, tkind, tmgr = tu[sel], tv[sel], tkind[sel], tmgr[sel]
    n_ties = tu.size

    # activity (heavy-tailed) and rates calibrated to events_per_sub_week
    act = rng.lognormal(0.0, 0.8, P)
    act /= act.mean()
    raw = np.sqrt(act[tu] * act[tv]) * rng.lognormal(0.0, 0.5, n_ties) * np.where(tmgr, 2.0, 1.0)
    target = cfg.events_per_sub_week * N
    trate = np.zeros(n_ties)
    for kd in (_FAMILY, _WORK, _FRIEND):
        m = tkind == kd
        if m.any():
            trate[m] = raw[m] * (_KIND_SHARE[kd] * target / raw[m].sum())
    pdir = rng.beta(1.5, 1.5, n_ties)  # friends: anything from one-way to balanced
    pdir = np.where(tkind == _WORK, rng.beta(2, 2, n_ties), pdir)
    pdir = np.where(tmgr, rng.beta(6, 3, n_ties), pdir)  # managers call more than they are called
    pdir = np.where(tkind == _FAMILY, rng.beta(5, 5, n_ties), pdir)
    on_idx = np.flatnonzero(on)
    svc_w = np.sqrt(act[on_idx])
    svc_rate = svc_w * (_KIND_SHARE[_SERVICE] * target / svc_w.sum())
    svc_pop = 1.0 / np.arange(1, _N_SERVICE_400 + _N_SERVICE_9558 + 1) ** 1.1
    svc_pop = rng.permutation(svc_pop)
    svc_numbers = np.concatenate(
        [
            4000000000 + rng.choice(10**7, _N_SERVICE_400, replace=False),
            95580 + rng.choice(10, _N_SERVICE_9558, replace=False),
        ]
    ).astype(np.int64)
    noise_rate = float(_KIND_SHARE[_NOISE] * target)

    # -- attributes of the subscribers ------------------------------------------------------
    ra = _rng(cfg.seed, _S_ATTR)
    recent = ra.random(P) < 0.12
    tenure = np.where(
        recent,
        ra.integers(60, 300, P),
        np.clip(np.rint(ra.lognormal(np.log(900.0), 0.9, P)), 30, 7300).astype(np.int64),
    )
    act_day = -tenure.astype(np.int64)
    joiners = ra.choice(on_idx, size=n_join, replace=False) if n_join else np.empty(0, np.int64)
    act_day[joiners] = ra.integers(0, data_days, n_join)
    is_joiner = np.zeros(P, bool)
    is_joiner[joiners] = True
    hh_on = np.bincount(hh_of[on], minlength=n_hh)
    family_hh = (hh_on >= 2) & (ra.random(n_hh) < cfg.family_plan_share)
    wp_on = np.bincount(wp_of[on & (wp_of >= 0)], minlength=n_wp)
    vnet_wp = (wp_on >= 3) & (ra.random(n_wp) < cfg.vnet_share)
    in_family = on & family_hh[hh_of]
    in_vnet = on & (wp_of >= 0) & vnet_wp[np.maximum(wp_of, 0)]
    plan = ra.choice(5, size=P, p=_PLAN_P_ORDINARY)
    plan = np.where(in_vnet, _PLAN_BUSINESS, plan)
    plan = np.where(in_family, _PLAN_FAMILY, plan)
    arpu = np.round(_PLAN_ARPU[plan] * ra.lognormal(0.0, 0.45, P), 2)
    balance = np.round(ra.lognormal(np.log(25.0), 1.0, P), 2)
    u = ra.random(P)
    balance = np.where(u < 0.08, 0.0, np.where(u < 0.11, -np.round(ra.uniform(0, 30, P), 2), balance))
    years = np.maximum(0, -act_day) / 365.25
    vas = np.clip(ra.poisson(0.5 + 3.0 * np.minimum(years, 5.0) / 5.0), 0, 10).astype(np.int64)
    dnd = ra.random(P) < cfg.dnd_rate
    degree = np.bincount(tu, minlength=P) + np.bincount(tv, minlength=P)

    # -- planted campaigns on households and workplaces -------------------------------------
    rc = _rng(cfg.seed, _S_CHURN)
    hh_pick = np.flatnonzero((hh_on >= 2) & (rc.random(n_hh) < cfg.campaign_share))
    wp_pick = np.flatnonzero((wp_on >= 3) & (rc.random(n_wp) < cfg.campaign_share))
    n_camp = hh_pick.size + wp_pick.size
    camp_is_hh = np.r_[np.ones(hh_pick.size, bool), np.zeros(wp_pick.size, bool)]
    camp_circle = np.r_[hh_pick, wp_pick].astype(np.int64)
    camp_comp = (rc.random(n_camp) >= 0.55).astype(np.int64)  # 0 CompA, 1 CompB
    camp_start = rc.integers(max(0, cfg.weeks - cfg.campaign_lead_weeks), cfg.weeks, n_camp)
    camp_strength = rc.lognormal(0.0, 0.3, n_camp)
    camp_of_hh = np.full(n_hh, n_camp, np.int64)  # n_camp = "no campaign" (a zero slot)
    camp_of_hh[hh_pick] = np.arange(hh_pick.size)
    camp_of_wp = np.full(n_wp + 1, n_camp, np.int64)
    camp_of_wp[wp_pick] = hh_pick.size + np.arange(wp_pick.size)
    p_camp_h = camp_of_hh[hh_of]
    p_camp_w = camp_of_wp[wp_of]  # wp_of = -1 hits the last (no-campaign) slot

    # -- weekly churn with contagion --------------------------------------------------------
    arpu_q = np.quantile(arpu[on], [0.25, 0.75]) if on.any() else np.array([0.0, 0.0])
    base_h = cfg.base_hazard * np.where(arpu < arpu_q[0], 1.5, np.where(arpu > arpu_q[1], 0.8, 1.0))
    base_h = base_h * np.where(degree <= 2, 1.6, np.where(degree <= 4, 1.2, 1.0))
    # strong ties (household, colleagues) between subscribers, as adjacency lists
    strong = (tkind != _FRIEND) & on[tu] & on[tv]
    s_src = np.concatenate([tu[strong], tv[strong]])
    s_dst = np.concatenate([tv[strong], tu[strong]])
    s_dst = s_dst[np.argsort(s_src, kind="stable")]
    s_ptr = np.searchsorted(np.sort(s_src), np.arange(P + 1))
    strong_deg = np.diff(s_ptr)
    inv_deg = np.where(strong_deg > 0, 1.0 / np.maximum(strong_deg, 1), 0.0)
    expo = np.zeros(P)  # decayed share of strong ties lost (ported or gone)
    expo_a = np.zeros(P)  # ... of which to CompA
    expo_b = np.zeros(P)
    churned = np.zeros(P, bool)
    churn_day = np.full(P, _NEVER, np.int64)
    dest = np.full(P, -1, np.int64)
    cause = np.full(P, -1, np.int64)
    comp_slot = np.append(camp_comp, 0)
    for w in range(horizon_weeks):
        day0 = 7 * w
        el = np.flatnonzero(on & ~churned & (act_day < day0))
        ten = day0 - act_day[el]
        tf = np.where((ten >= 90) & (ten < 270), 2.5, np.where(ten > 730, 0.75, 1.0))
        hb = base_h[el] * tf
        hc = hb * cfg.contagion_strength * expo[el]
        k_since = w - camp_start
        ramp = np.minimum(1.0, (k_since + 1) / 3.0)  # a campaign reaches full strength in 3 weeks
        camp_h = np.append(np.where(k_since >= 0, cfg.campaign_hazard * camp_strength * ramp, 0.0), 0.0)
        hk_h, hk_w = camp_h[p_camp_h[el]], camp_h[p_camp_w[el]]
        h = hb + hc + hk_h + hk_w
        hit = rc.random(el.size) < -np.expm1(-h)
        new = el[hit]
        hb, hc, hk_h, hk_w, h = hb[hit], hc[hit], hk_h[hit], hk_w[hit], h[hit]
        k = new.size
        u_cause = rc.random(k) * h
        u_dest = rc.random(k)
        u_comp = rc.random(k)
        # the cause is drawn in proportion to its share of the hazard, the destination by cause
        c = np.where(u_cause < hb, 0, np.where(u_cause < hb + hc, 1, 2))
        camp_comp_p = np.where(hk_h >= hk_w, comp_slot[p_camp_h[new]], comp_slot[p_camp_w[new]])
        d_campaign = np.where(u_dest < 0.85, camp_comp_p, np.where(u_dest < 0.95, 1 - camp_comp_p, _D_GONE))
        share_a = (expo_a[new] + 1e-3) / (expo_a[new] + expo_b[new] + 2e-3)
        d_contagion = np.where(u_dest < 0.8, np.where(u_comp < share_a, _D_A, _D_B), _D_GONE)
        d_base = np.where(
            u_dest < cfg.reentry_share,
            _D_REENTRY,
            np.where(
                u_dest < cfg.reentry_share + cfg.gone_share,
                _D_GONE,
                np.where(u_comp < _COMP_A_SHARE, _D_A, _D_B),
            ),
        )
        d = np.where(c == 0, d_base, np.where(c == 1, d_contagion, d_campaign))
        churned[new] = True
        churn_day[new] = day0 + rc.integers(0, 7, k)
        dest[new] = d
        cause[new] = c
        # losses this week raise the exposure of their strong ties from next week on
        expo *= cfg.contagion_decay
        expo_a *= cfg.contagion_decay
        expo_b *= cfg.contagion_decay
        losses = ((new[d != _D_REENTRY], expo), (new[d == _D_A], expo_a), (new[d == _D_B], expo_b))
        for lost, target_arr in losses:
            lens = s_ptr[lost + 1] - s_ptr[lost]
            first = np.repeat(s_ptr[lost] - np.cumsum(lens) + lens, lens)
            nbrs = s_dst[first + np.arange(first.size)]
            target_arr += np.bincount(nbrs, minlength=P) * inv_deg

    # -- numbers and handsets -----------------------------------------------------------------
    rn = _rng(cfg.seed, _S_NUMBERS)
    comp_of = (rn.random(P) >= _COMP_A_SHARE).astype(np.int64)
    heads = np.where(on, _HOME_HEAD, _COMP_HEAD[comp_of])
    num0 = _fresh(rn, heads, _SUFFIX_SPAN, np.empty(0, np.int64))
    imei0 = _luhn(_fresh(rn, np.full(P, 35), 10**12, np.empty(0, np.int64)), 14)
    chg = np.flatnonzero(churned & (dest != _D_GONE))
    chg_dest = dest[chg]
    chg_heads = np.where(chg_dest == _D_REENTRY, _HOME_HEAD, _COMP_HEAD[np.minimum(chg_dest, 1)])
    num1 = np.full(P, -1, np.int64)
    num1[chg] = _fresh(rn, chg_heads, _SUFFIX_SPAN, np.sort(num0))
    on1 = np.zeros(P, bool)
    on1[chg] = chg_dest == _D_REENTRY
    switch_day = np.full(P, _NEVER, np.int64)
    switch_day[chg] = churn_day[chg] + np.where(chg_dest == _D_REENTRY, 1, rn.integers(0, 3, chg.size))
    u_keep = rn.random(chg.size)
    keeps = u_keep < np.where(chg_dest == _D_REENTRY, cfg.same_imei_share, 0.9)
    new_imei = _luhn(_fresh(rn, np.full(chg.size, 35), 10**12, np.sort(imei0 // 10)), 14)
    imei1 = np.full(P, -1, np.int64)
    imei1[chg] = np.where(keeps, imei0[chg], new_imei)
    gone = churned & (dest == _D_GONE)
    end_day = np.where(gone, churn_day, _NEVER)
    start_day = np.where(is_joiner, act_day, -_NEVER)

    world = _World(
        n_persons=P,
        num0=num0,
        num1=num1,
        on0=on,
        on1=on1,
        imei0=imei0,
        imei1=imei1,
        start_day=start_day,
        churn_day=churn_day,
        switch_day=switch_day,
        end_day=end_day,
        tie_u=tu,
        tie_v=tv,
        tie_kind=tkind,
        tie_rate=trate,
        tie_pdir=pdir,
        svc_callers=on_idx,
        svc_rate=svc_rate,
        svc_numbers=svc_numbers,
        svc_cum=np.cumsum(svc_pop / svc_pop.sum()),
        noise_callers=on_idx,
        noise_rate=noise_rate,
    )

    # -- tables ---------------------------------------------------------------------------------
    sd = cfg.start_date
    wp_safe = np.maximum(wp_of, 0)
    hh_w = max(6, len(str(n_hh)))
    wp_w = max(5, len(str(n_wp)))
    family_key = _ids("F", hh_of, ~in_family, hh_w)
    vnet_key = _ids("V", wp_safe, ~in_vnet, wp_w)

    # subscribers: every on-net number activated before as_of
    p_old = np.flatnonzero(on & (act_day < data_days))
    old_churn = churn_day[p_old]
    old_churn_null = old_churn >= data_days
    p_new = np.flatnonzero(on1 & (switch_day < data_days))
    nn = p_new.size
    new_plan = np.where(rn.random(nn) < 0.5, _PLAN_YOUTH, plan[p_new])
    subs = pa.table(
        {
            "msisdn": pa.concat_arrays([_str(num0[p_old]), _str(num1[p_new])]),
            "activation_date": pa.concat_arrays([_dates(sd, act_day[p_old]), _dates(sd, switch_day[p_new])]),
            "churn_date": pa.concat_arrays(
                [
                    _dates(sd, np.where(old_churn_null, 0, old_churn), old_churn_null),
                    pa.nulls(nn, pa.date32()),
                ]
            ),
            "plan": pa.array(np.concatenate([_PLANS[plan[p_old]], _PLANS[new_plan]]), pa.string()),
            "arpu": pa.array(
                np.concatenate([arpu[p_old], np.round(_PLAN_ARPU[new_plan] * rn.lognormal(0, 0.45, nn), 2)])
            ),
            "balance": pa.array(np.concatenate([balance[p_old], np.round(rn.uniform(0, 50, nn), 2)])),
            "vnet_id": pa.concat_arrays([vnet_key.take(pa.array(p_old)), pa.nulls(nn, pa.string())]),
            "family_id": pa.concat_arrays([family_key.take(pa.array(p_old)), pa.nulls(nn, pa.string())]),
            "vas_count": pa.array(np.concatenate([vas[p_old], rn.integers(0, 3, nn)]).astype(np.int64)),
            "dnd": pa.array(np.concatenate([dnd[p_old], dnd[p_new]])),
            "imei": pa.concat_arrays([_str(imei0[p_old]), _str(imei1[p_new])]),
        },
        schema=SUBSCRIBER_SCHEMA,
    )
    subs = subs.take(pc.sort_indices(subs, [("msisdn", "ascending")]))

    # truth: churn
    pc_ = np.flatnonzero(churned)
    pc_ = pc_[np.lexsort((num0[pc_], churn_day[pc_]))]
    churn_t = pa.table(
        {
            "msisdn": _str(num0[pc_]),
            "churn_date": _dates(sd, churn_day[pc_]),
            "after_as_of": pa.array(churn_day[pc_] >= data_days),
            "cause": pa.array(_CAUSE_NAMES[cause[pc_]], pa.string()),
            "destination": pa.array(_DEST_NAMES[dest[pc_]], pa.string()),
            "person_id": pa.array(pc_.astype(np.int64)),
        }
    )

    # truth: campaigns
    member_p = np.flatnonzero(on & ((p_camp_h < n_camp) | (p_camp_w < n_camp)))
    n_members = np.zeros(n_camp, np.int64)
    n_before = np.zeros(n_camp, np.int64)
    n_total = np.zeros(n_camp, np.int64)
    # a member who re-entered on a new on-net number is still a customer (DOMAIN: a
    # re-entry is not a loss), so it is not one of the campaign's leavers
    left = churned & (dest != _D_REENTRY)
    for pcamp in (p_camp_h, p_camp_w):
        mp = member_p[pcamp[member_p] < n_camp]
        cid = pcamp[mp]
        s0 = 7 * camp_start[cid]
        active = (act_day[mp] < s0) & (churn_day[mp] >= s0)
        n_members += np.bincount(cid[active], minlength=n_camp)
        n_before += np.bincount(cid[active & left[mp] & (churn_day[mp] < data_days)], minlength=n_camp)
        n_total += np.bincount(cid[active & left[mp]], minlength=n_camp)
    hh_circle_family = family_hh[camp_circle] & camp_is_hh
    if n_wp:
        wp_circle_vnet = ~camp_is_hh & vnet_wp[np.where(camp_is_hh, 0, camp_circle)]
    else:
        wp_circle_vnet = np.zeros(n_camp, bool)
    kind_names = np.where(
        camp_is_hh,
        np.where(hh_circle_family, "family", "household"),
        np.where(wp_circle_vnet, "vnet", "workplace"),
    ).astype(object)
    key_prefix = np.where(
        camp_is_hh, np.where(hh_circle_family, "F", "H"), np.where(wp_circle_vnet, "V", "W")
    )
    circle_key = pc.binary_join_element_wise(
        pa.array(key_prefix.astype(object), pa.string()),
        pc.if_else(
            pa.array(camp_is_hh),
            pc.utf8_lpad(_str(camp_circle), hh_w, "0"),
            pc.utf8_lpad(_str(camp_circle), wp_w, "0"),
        ),
        "",
    )
    camp_t = pa.table(
        {
            "campaign_id": pa.array(np.arange(n_camp, dtype=np.int64)),
            "circle_kind": pa.array(kind_names, pa.string()),
            "circle_key": circle_key,
            "competitor": pa.array(np.array(COMPETITORS, dtype=object)[camp_comp], pa.string()),
            "start_date": _dates(sd, 7 * camp_start),
            "n_members": pa.array(n_members),
            "active_before_as_of": pa.array((camp_start < cfg.weeks) & (n_before > 0)),
            # two or more members left before as-of: a cluster the CDRs could already show
            "cluster_before_as_of": pa.array((camp_start < cfg.weeks) & (n_before >= 2)),
            "churned_before_as_of": pa.array(n_before),
            "churned_total": pa.array(n_total),
        }
    )

    # truth: number changes
    chg_o = chg[np.lexsort((num0[chg], switch_day[chg]))]
    same = imei1[chg_o] == imei0[chg_o]
    ch_kind = np.where(dest[chg_o] == _D_REENTRY, "reentry", "port").astype(object)
    chg_t = pa.table(
        {
            "old_msisdn": _str(num0[chg_o]),
            "new_msisdn": _str(num1[chg_o]),
            "kind": pa.array(ch_kind, pa.string()),
            "same_imei": pa.array(same),
            "change_date": _dates(sd, switch_day[chg_o]),
            "churn_date": _dates(sd, churn_day[chg_o]),
            "competitor": pa.array(
                np.where(dest[chg_o] == _D_REENTRY, HOME_OPERATOR, _DEST_NAMES[np.minimum(dest[chg_o], 1)]),
                pa.string(),
            ),
        }
    )

    # truth: membership, one row per number
    persons = np.concatenate([np.arange(P), chg])
    numbers = np.concatenate([num0, num1[chg]])
    m_on = np.concatenate([on, on1[chg]])
    op_names = np.where(m_on, HOME_OPERATOR, np.where(numbers // _SUFFIX_SPAN == 130, "CompA", "CompB"))
    first_day = np.concatenate([start_day, switch_day[chg]])
    last_day = np.concatenate([np.where(churned, churn_day, end_day), end_day[chg]])
    from_null = first_day <= -_NEVER
    until_null = last_day >= _NEVER
    order = np.argsort(numbers, kind="stable")
    persons, numbers, m_on = persons[order], numbers[order], m_on[order]
    first_day, last_day, from_null, until_null, op_names = (
        first_day[order], last_day[order], from_null[order], until_null[order], op_names[order]
    )
    pwp = wp_of[persons]
    memb_t = pa.table(
        {
            "msisdn": _str(numbers),
            "on_net": pa.array(m_on),
            "household_id": _ids("H", hh_of[persons], None, hh_w),
            "workplace_id": _ids("W", np.maximum(pwp, 0), pwp < 0, wp_w),
            "locality_id": _ids("L", loc_of[persons], None, max(4, len(str(n_loc)))),
            "person_id": pa.array(persons.astype(np.int64)),
            "operator": pa.array(op_names, pa.string()),
            "family_id": family_key.take(pa.array(persons)),
            "vnet_id": vnet_key.take(pa.array(persons)),
            "active_from": _dates(sd, np.where(from_null, 0, first_day), from_null),
            "active_until": _dates(sd, np.where(until_null, 0, last_day), until_null),
        }
    )

    return SyntheticOperator(
        config=cfg,
        subscribers=subs,
        operators={
            "home_operator": OPERATORS["home_operator"],
            "home_prefixes": list(OPERATORS["home_prefixes"]),
            "operators": dict(OPERATORS["operators"]),
        },
        country_code=COUNTRY_CODE,
        national_length=NATIONAL_LENGTH,
        as_of=cfg.as_of,
        truth={"churn": churn_t, "campaigns": camp_t, "number_changes": chg_t, "membership": memb_t},
        _world=world,
    )


# ---------------------------------------------------------------------------------------------
# CDRs


def _cdr_week(cfg: SynthConfig, wd: _World, week: int) -> pa.Table:
    rng = _rng(cfg.seed, _S_CDR, week)
    P = wd.n_persons

    # events: ties (either direction), service calls, one-off noise contacts
    cnt = rng.poisson(wd.tie_rate)
    ti = np.repeat(np.arange(cnt.size), cnt)
    fwd = rng.random(ti.size) < wd.tie_pdir[ti]
    a, b = wd.tie_u[ti], wd.tie_v[ti]
    t_caller = np.where(fwd, a, b)
    t_callee = np.where(fwd, b, a)
    t_kind = wd.tie_kind[ti].astype(np.int64)

    scnt = rng.poisson(wd.svc_rate)
    s_caller = np.repeat(wd.svc_callers, scnt)
    s_which = np.searchsorted(wd.svc_cum, rng.random(s_caller.size) * wd.svc_cum[-1], side="right")
    s_which = np.minimum(s_which, wd.svc_numbers.size - 1)

    n_noise = int(rng.poisson(wd.noise_rate))
    n_caller = wd.noise_callers[rng.integers(0, wd.noise_callers.size, n_noise)]
    n_callee = rng.integers(0, P - 1, n_noise)
    n_callee = np.where(n_callee >= n_caller, n_callee + 1, n_callee)
    swap = rng.random(n_noise) < 0.5
    n_caller, n_callee = np.where(swap, n_callee, n_caller), np.where(swap, n_caller, n_callee)

    caller = np.concatenate([t_caller, s_caller, n_caller])
    callee = np.concatenate([t_callee, np.full(s_caller.size, -1), n_callee])  # -1: a service number
    kind = np.concatenate([t_kind, np.full(s_caller.size, _SERVICE), np.full(n_noise, _NOISE)])
    svc = np.concatenate([np.zeros(ti.size, np.int64), s_which, np.zeros(n_noise, np.int64)])
    n = caller.size

    # when: day of week and hour by kind
    dow = np.empty(n, np.int64)
    hour = np.empty(n, np.int64)
    u_dow = rng.random(n)
    u_hour = rng.random(n)
    for kd in range(_N_KINDS):
        m = kind == kd
        dow[m] = np.minimum(np.searchsorted(_DOW_CUM[kd], u_dow[m], side="right"), 6)
    weekend = dow >= 5
    for kd in range(_N_KINDS):
        for we in (0, 1):
            m = (kind == kd) & (weekend == bool(we))
            hour[m] = np.minimum(np.searchsorted(_HOUR_CUM[kd, we], u_hour[m], side="right"), 23)
    day = 7 * week + dow
    secs = rng.integers(0, 3600, n)

    # who is reachable that day, on which number
    def resolve(p):
        pp = np.maximum(p, 0)
        cd = wd.churn_day[pp]
        old = day < cd
        alive = (day >= wd.start_day[pp]) & (day < wd.end_day[pp]) & (old | (day >= wd.switch_day[pp]))
        num = np.where(old, wd.num0[pp], wd.num1[pp])
        onn = np.where(old, wd.on0[pp], wd.on1[pp])
        imei = np.where(old, wd.imei0[pp], wd.imei1[pp])
        return alive, num, onn, imei

    a_alive, a_num, a_on, a_imei = resolve(caller)
    b_alive, b_num, b_on, _ = resolve(callee)
    is_svc = callee < 0
    b_alive = b_alive | is_svc
    b_num = np.where(is_svc, wd.svc_numbers[svc], b_num)
    b_on = b_on & ~is_svc
    keep = a_alive & b_alive & (a_on | b_on)

    # what: event type and duration
    u_type = rng.random(n)
    etype = np.where(u_type < _SMS_SHARE[kind], 1, 0)
    u_x = rng.random(n)
    other = kind != _SERVICE
    etype = np.where(other & (u_x < _MMS_SHARE), 2, np.where(other & (u_x >= 1 - _DATA_SHARE), 3, etype))
    z = rng.standard_normal(n)
    voice = np.clip(np.rint(_VOICE_MEDIAN_S[kind] * np.exp(_VOICE_SIGMA * z)), 1, 10800).astype(np.int64)
    data = np.clip(np.rint(600.0 * np.exp(1.0 * z)), 1, 86400).astype(np.int64)
    dur = np.where(etype == 0, voice, np.where(etype == 3, data, 0))
    imei_null = ~a_on | (rng.random(n) < _IMEI_MISSING)

    epoch0 = (cfg.start_date - _dt.date(1970, 1, 1)).days * 86400
    ts = epoch0 + day * 86400 + hour * 3600 + secs

    # keep visible events, in time order
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(ts[idx], kind="stable")]
    n_clean = idx.size
    id0 = (week + 1) * 10**10
    fmt_rng = _rng(cfg.seed, _S_CDR, week, 1)
    clean = pa.table(
        {
            "caller": _formatted(fmt_rng, a_num[idx], cfg.intl_format_share),
            "callee": _formatted(fmt_rng, b_num[idx], cfg.intl_format_share),
            "start_time": pa.array(ts[idx].astype("datetime64[s]")),
            "duration_s": pa.array(dur[idx]),
            "event_type": pa.array(_EVENT_TYPES[etype[idx]], pa.string()),
            "cdr_id": pa.array(id0 + np.arange(n_clean, dtype=np.int64)),
            "caller_imei": _str(np.where(imei_null[idx], 0, a_imei[idx]), imei_null[idx]),
        },
        schema=CDR_SCHEMA,
    )
    if n_clean == 0:
        return clean

    # extra dirty rows: copies of clean rows, each spoilt one way
    dr = _rng(cfg.seed, _S_CDR, week, 2)
    n_dirty = int(dr.binomial(n_clean, cfg.dirty_rate))
    if n_dirty == 0:
        return clean
    src = dr.integers(0, n_clean, n_dirty)
    dk = dr.integers(0, len(_DIRTY_KINDS), n_dirty)
    d = clean.take(pa.array(src))
    K = {name: pa.array(dk == i) for i, name in enumerate(_DIRTY_KINDS)}
    null_s = pa.scalar(None, pa.string())
    garbage = pa.array(_GARBAGE_NUMBERS[dr.integers(0, _GARBAGE_NUMBERS.size, n_dirty)], pa.string())
    caller_s = d["caller"].combine_chunks()
    callee_s = d["callee"].combine_chunks()
    new_caller = pc.if_else(K["null_caller"], null_s, pc.if_else(K["garbage_caller"], garbage, caller_s))
    new_callee = pc.if_else(
        K["null_callee"],
        null_s,
        pc.if_else(K["garbage_callee"], garbage, pc.if_else(K["self_call"], caller_s, callee_s)),
    )
    dur_d = d["duration_s"].to_numpy()
    negative = -(dur_d + 1 + dr.integers(0, 100, n_dirty))
    dur_d = np.where(dk == _DIRTY_KINDS.index("negative_duration"), negative, dur_d)
    ts_d = d["start_time"].combine_chunks().cast(pa.int64()).to_numpy()
    ts_d = np.where(dk == _DIRTY_KINDS.index("time_1970"), dr.integers(0, 86400, n_dirty), ts_d)
    late = _T_2099 + dr.integers(0, 365 * 86400, n_dirty)
    ts_d = np.where(dk == _DIRTY_KINDS.index("time_2099"), late, ts_d)
    unknown = pa.array(_UNKNOWN_TYPES[dr.integers(0, _UNKNOWN_TYPES.size, n_dirty)], pa.string())
    etype_d = pc.if_else(K["unknown_event_type"], unknown, d["event_type"].combine_chunks())
    ids_d = np.where(
        dk == _DIRTY_KINDS.index("duplicate"),
        d["cdr_id"].to_numpy(),
        id0 + n_clean + np.arange(n_dirty, dtype=np.int64),
    )
    dirty = pa.table(
        {
            "caller": new_caller,
            "callee": new_callee,
            "start_time": pa.array(ts_d.astype("datetime64[s]")),
            "duration_s": pa.array(dur_d.astype(np.int64)),
            "event_type": etype_d,
            "cdr_id": pa.array(ids_d),
            "caller_imei": d["caller_imei"].combine_chunks(),
        },
        schema=CDR_SCHEMA,
    )
    both = pa.concat_tables([clean, dirty]).combine_chunks()
    all_ts = np.concatenate([ts[idx], ts_d])
    return both.take(pa.array(np.argsort(all_ts, kind="stable")))

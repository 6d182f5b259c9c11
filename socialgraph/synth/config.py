"""The synthetic operator's tunables (:class:`SynthConfig`) and the fixed facts of its world.

Every other module of :mod:`socialgraph.synth` reads its sizes and rates from here: the public
operator facts (names, prefixes, number length, table schemas), the constants shared by more
than one stage of the simulation (number heads, event kinds, plans, churn destinations), and
the numbered generator streams. Each stage draws from its own stream, so changing one stage
never shifts the random numbers of another. Constants used by a single stage live next to it.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..config import _check_range

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
_COMP_A_SHARE = 0.6  # CompA's share of off-net persons and of ordinary ports

# event kinds (ties first)
_FAMILY, _WORK, _FRIEND, _SERVICE, _NOISE = 0, 1, 2, 3, 4
_N_KINDS = 5

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

# generator streams: each part of the world draws from its own stream
_S_WORLD, _S_ATTR, _S_CHURN, _S_NUMBERS, _S_CDR = 1, 2, 3, 4, 5
_NEVER = np.int64(1 << 40)  # a day index that never comes


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


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

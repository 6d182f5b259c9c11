"""The synthetic operator as a whole: :func:`make_operator` and what it returns.

:func:`make_operator` runs the stages of the simulation in order, each on its own generator
stream: the population and its ties (:mod:`.population`), the subscribers' attributes, the
campaigns and weekly churn (:mod:`.churn`), the numbers and handsets and the tables
(:mod:`.tables`). :class:`SyntheticOperator` holds the result and makes the CDRs of a week
on demand (:mod:`.cdr`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from .cdr import _cdr_week, _World
from .churn import _plant_campaigns, _simulate_churn
from .config import (
    _S_ATTR,
    _S_CHURN,
    _S_NUMBERS,
    _S_WORLD,
    COUNTRY_CODE,
    NATIONAL_LENGTH,
    OPERATORS,
    SynthConfig,
    _rng,
)
from .population import _populate, _subscriber_attributes
from .tables import _assign_numbers, _tables


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
    pop = _populate(cfg, _rng(cfg.seed, _S_WORLD))
    attrs = _subscriber_attributes(cfg, _rng(cfg.seed, _S_ATTR), pop)
    # one stream for the campaigns and the churn they cause, another for the numbers and the
    # subscriber table that lists them: a stage reads its generator where the last one left it
    rc = _rng(cfg.seed, _S_CHURN)
    camps = _plant_campaigns(cfg, rc, pop, attrs)
    churn = _simulate_churn(cfg, rc, pop, attrs, camps)
    rn = _rng(cfg.seed, _S_NUMBERS)
    nums = _assign_numbers(cfg, rn, pop, attrs, churn)
    subs, truth = _tables(cfg, rn, pop, attrs, camps, churn, nums)

    world = _World(
        n_persons=pop.n_persons,
        num0=nums.num0,
        num1=nums.num1,
        on0=pop.on,
        on1=nums.on1,
        imei0=nums.imei0,
        imei1=nums.imei1,
        start_day=nums.start_day,
        churn_day=churn.churn_day,
        switch_day=nums.switch_day,
        end_day=nums.end_day,
        tie_u=pop.tie_u,
        tie_v=pop.tie_v,
        tie_kind=pop.tie_kind,
        tie_rate=pop.tie_rate,
        tie_pdir=pop.tie_pdir,
        svc_callers=pop.on_idx,
        svc_rate=pop.svc_rate,
        svc_numbers=pop.svc_numbers,
        svc_cum=pop.svc_cum,
        noise_callers=pop.on_idx,
        noise_rate=pop.noise_rate,
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
        truth=truth,
        _world=world,
    )

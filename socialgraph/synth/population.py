"""The persons of the synthetic world: where they live and work, whom they call, what they pay.

The first two stages of :func:`~socialgraph.synth.make_operator`. :func:`_populate` draws, from
the ``_S_WORLD`` stream, persons in households, households in localities (where friends are
found), workers in workplaces, the ties between persons (family, colleagues, friends) with
their weekly call rates and directions, and the service numbers subscribers call.
:func:`_subscriber_attributes` then draws, from the ``_S_ATTR`` stream, what the operator knows
about each subscriber: tenure, plan, ARPU, balance, family plans and V-nets. Both return plain
arrays, indexed by person (or tie), in small private records.

The order of the draws within each stream is part of the output: a saved world is reproduced
only if every draw happens in the same order and with the same shape.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .config import (
    _FAMILY,
    _FRIEND,
    _NOISE,
    _PLAN_ARPU,
    _PLAN_BUSINESS,
    _PLAN_FAMILY,
    _PLAN_P_ORDINARY,
    _SERVICE,
    _WORK,
    SynthConfig,
)

_HH_SIZES = np.array([2, 3, 4, 5])
_HH_PROBS = np.array([0.34, 0.30, 0.23, 0.13])
_HOUSEHOLD_OFFNET = 0.15  # share of members of an ordinary household using a competitor
_N_SERVICE_400 = 24
_N_SERVICE_9558 = 6
# share of the clean event volume per kind
_KIND_SHARE = np.array([0.44, 0.26, 0.20, 0.06, 0.04])


class _Population(NamedTuple):
    """Persons, their households, localities and workplaces, and their ties (private)."""

    n_persons: int
    n_joiners: int  # on-net persons who only activate during the CDR weeks
    on: np.ndarray  # person is a subscriber of the home operator
    on_idx: np.ndarray  # the on-net persons
    hh_of: np.ndarray  # household of each person (persons are sorted by household)
    n_hh: int
    loc_of: np.ndarray  # locality of each person
    n_loc: int
    wp_of: np.ndarray  # workplace of each person, -1 if none
    n_wp: int
    tie_u: np.ndarray
    tie_v: np.ndarray
    tie_kind: np.ndarray  # _FAMILY, _WORK or _FRIEND
    tie_rate: np.ndarray  # expected events per week
    tie_pdir: np.ndarray  # probability that u is the caller
    svc_rate: np.ndarray  # expected service calls per week of each on-net person
    svc_numbers: np.ndarray
    svc_cum: np.ndarray  # cumulative popularity of the service numbers
    noise_rate: float  # expected one-off calls per week, over all on-net persons


class _Attributes(NamedTuple):
    """What the operator knows about each person as a subscriber (private)."""

    act_day: np.ndarray  # activation day (negative: before the data)
    is_joiner: np.ndarray
    hh_on: np.ndarray  # on-net persons per household
    wp_on: np.ndarray  # on-net persons per workplace
    family_hh: np.ndarray  # household holds a family plan
    vnet_wp: np.ndarray  # workplace holds a corporate V-net
    in_family: np.ndarray
    in_vnet: np.ndarray
    plan: np.ndarray  # index into _PLANS
    arpu: np.ndarray
    balance: np.ndarray
    vas: np.ndarray
    dnd: np.ndarray


def _populate(cfg: SynthConfig, rng: np.random.Generator) -> _Population:
    """Persons, places and ties of the world, exactly ``n_subscribers`` + joiners of them on-net."""
    N = cfg.n_subscribers
    n_join = int(round(cfg.joiner_rate * N * cfg.weeks))
    hh_of, on = _households(cfg, rng, N + n_join)
    P = hh_of.size
    n_hh = int(hh_of[-1]) + 1
    hh_start = np.searchsorted(hh_of, np.arange(n_hh))
    hh_size = np.diff(np.append(hh_start, P))

    # localities: runs of 30-120 consecutive households
    loc_hh = rng.integers(30, 121, size=n_hh // 30 + 2)
    loc_of_hh = np.repeat(np.arange(loc_hh.size), loc_hh)[:n_hh]
    loc_of = loc_of_hh[hh_of]
    n_loc = int(loc_of[-1]) + 1
    loc_start = np.searchsorted(loc_of, np.arange(n_loc))
    loc_end = np.append(loc_start[1:], P)

    wp_members, wp_sizes = _workplaces(cfg, rng, P)
    n_wp = wp_sizes.size
    wp_start = np.concatenate([[0], np.cumsum(wp_sizes)[:-1]]).astype(np.int64)
    wp_of = np.full(P, -1, dtype=np.int64)
    wp_of_pos = np.repeat(np.arange(n_wp), wp_sizes)
    wp_of[wp_members] = wp_of_pos

    fam_u, fam_v = _family_ties(hh_start, hh_size)
    work_u, work_v, work_mgr = _work_ties(cfg, rng, wp_members, wp_sizes, wp_start, wp_of_pos)
    friend_u, friend_v = _friend_ties(cfg, rng, hh_of, loc_of, loc_start, loc_end)
    tu = np.concatenate([fam_u, work_u, friend_u]).astype(np.int64)
    tv = np.concatenate([fam_v, work_v, friend_v]).astype(np.int64)
    tkind = np.concatenate(
        [
            np.full(fam_u.size, _FAMILY, np.int8),
            np.full(work_u.size, _WORK, np.int8),
            np.full(friend_u.size, _FRIEND, np.int8),
        ]
    )
    tmgr = np.concatenate([np.zeros(fam_u.size, bool), work_mgr, np.zeros(friend_u.size, bool)])
    tu, tv, tkind, tmgr = _one_tie_per_pair(P, on, tu, tv, tkind, tmgr)

    # activity (heavy-tailed) and rates calibrated to events_per_sub_week
    act = rng.lognormal(0.0, 0.8, P)
    act /= act.mean()
    trate, pdir = _tie_rates(cfg, rng, act, tu, tv, tkind, tmgr)
    on_idx = np.flatnonzero(on)
    svc_rate, svc_numbers, svc_cum = _service_calls(cfg, rng, act, on_idx)
    target = cfg.events_per_sub_week * N
    noise_rate = float(_KIND_SHARE[_NOISE] * target)
    return _Population(
        n_persons=P,
        n_joiners=n_join,
        on=on,
        on_idx=on_idx,
        hh_of=hh_of,
        n_hh=n_hh,
        loc_of=loc_of,
        n_loc=n_loc,
        wp_of=wp_of,
        n_wp=n_wp,
        tie_u=tu,
        tie_v=tv,
        tie_kind=tkind,
        tie_rate=trate,
        tie_pdir=pdir,
        svc_rate=svc_rate,
        svc_numbers=svc_numbers,
        svc_cum=svc_cum,
        noise_rate=noise_rate,
    )


def _households(cfg: SynthConfig, rng: np.random.Generator, n_on_target: int) -> tuple[np.ndarray, np.ndarray]:
    """The household of each person and whether the person is on-net; ``n_on_target`` are."""
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
    return hh_of[:P].astype(np.int64), on[:P]


def _workplaces(cfg: SynthConfig, rng: np.random.Generator, P: int) -> tuple[np.ndarray, np.ndarray]:
    """Workers in workplace order and the workplace sizes: heavy-tailed, 3-200 people."""
    workers = rng.permutation(np.flatnonzero(rng.random(P) < cfg.worker_share))
    nw = workers.size
    wsz = np.clip(np.rint(rng.lognormal(np.log(6.0), 1.0, size=nw // 3 + 8)), 3, 200).astype(np.int64)
    ends = np.cumsum(wsz)
    k = int(np.searchsorted(ends, nw, side="right"))
    wp_sizes = wsz[:k]
    if nw - int(ends[k - 1] if k else 0) >= 3:
        wp_sizes = np.append(wp_sizes, nw - int(ends[k - 1] if k else 0))
    n_assigned = int(wp_sizes.sum())
    return workers[:n_assigned], wp_sizes


def _family_ties(hh_start: np.ndarray, hh_size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair inside a household."""
    us, vs = [], []
    for a in range(5):
        for b in range(a + 1, 5):
            hs = np.flatnonzero(hh_size > b)
            us.append(hh_start[hs] + a)
            vs.append(hh_start[hs] + b)
    return np.concatenate(us), np.concatenate(vs)


def _work_ties(
    cfg: SynthConfig,
    rng: np.random.Generator,
    wp_members: np.ndarray,
    wp_sizes: np.ndarray,
    wp_start: np.ndarray,
    wp_of_pos: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colleague ties, then the ties of each manager; the third array marks the latter."""
    n_assigned = wp_members.size
    if not n_assigned:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.zeros(0, bool)
    pos = np.arange(n_assigned)
    s = wp_sizes[wp_of_pos]
    st = wp_start[wp_of_pos]
    kw = np.minimum(1 + rng.poisson(cfg.colleague_ties, n_assigned), s - 1)
    src = np.repeat(pos, kw)
    j = st[src] + rng.integers(0, s[src] - 1)
    j = np.where(j >= src, j + 1, j)
    # the first member of each workplace is its manager: many members talk to them
    sub = (pos != st) & (rng.random(n_assigned) < np.minimum(1.0, 6.0 / s))
    u = np.concatenate([wp_members[src], wp_members[st[sub]]])
    v = np.concatenate([wp_members[j], wp_members[pos[sub]]])
    return u, v, np.concatenate([np.zeros(src.size, bool), np.ones(int(sub.sum()), bool)])


def _friend_ties(
    cfg: SynthConfig,
    rng: np.random.Generator,
    hh_of: np.ndarray,
    loc_of: np.ndarray,
    loc_start: np.ndarray,
    loc_end: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Friendships a person starts with someone of another household in the same locality."""
    P = hh_of.size
    kf = rng.poisson(cfg.friend_ties, P)
    src = np.repeat(np.arange(P), kf)
    lo, hi = loc_start[loc_of[src]], loc_end[loc_of[src]]
    src, lo, hi = src[hi - lo >= 2], lo[hi - lo >= 2], hi[hi - lo >= 2]
    j = lo + rng.integers(0, hi - lo - 1)
    j = np.where(j >= src, j + 1, j)
    keep = hh_of[j] != hh_of[src]
    return src[keep], j[keep]


def _one_tie_per_pair(P: int, on: np.ndarray, tu, tv, tkind, tmgr) -> tuple[np.ndarray, ...]:
    """One tie per pair (family beats work beats friends), without pairs the operator never sees."""
    key = np.minimum(tu, tv) * P + np.maximum(tu, tv)
    order = np.lexsort((tkind, key))
    first = np.ones(order.size, bool)
    first[1:] = key[order][1:] != key[order][:-1]
    sel = order[first]
    sel = sel[on[tu[sel]] | on[tv[sel]]]
    sel.sort()
    return tu[sel], tv[sel], tkind[sel], tmgr[sel]


def _tie_rates(
    cfg: SynthConfig, rng: np.random.Generator, act: np.ndarray, tu, tv, tkind, tmgr
) -> tuple[np.ndarray, np.ndarray]:
    """Expected events per week on each tie, and the probability that ``u`` is the caller."""
    n_ties = tu.size
    raw = np.sqrt(act[tu] * act[tv]) * rng.lognormal(0.0, 0.5, n_ties) * np.where(tmgr, 2.0, 1.0)
    target = cfg.events_per_sub_week * cfg.n_subscribers
    trate = np.zeros(n_ties)
    for kd in (_FAMILY, _WORK, _FRIEND):
        m = tkind == kd
        if m.any():
            trate[m] = raw[m] * (_KIND_SHARE[kd] * target / raw[m].sum())
    pdir = rng.beta(1.5, 1.5, n_ties)  # friends: anything from one-way to balanced
    pdir = np.where(tkind == _WORK, rng.beta(2, 2, n_ties), pdir)
    pdir = np.where(tmgr, rng.beta(6, 3, n_ties), pdir)  # managers call more than they are called
    pdir = np.where(tkind == _FAMILY, rng.beta(5, 5, n_ties), pdir)
    return trate, pdir


def _service_calls(
    cfg: SynthConfig, rng: np.random.Generator, act: np.ndarray, on_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Service calls per week of each on-net person, the service numbers, their popularity."""
    target = cfg.events_per_sub_week * cfg.n_subscribers
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
    return svc_rate, svc_numbers, np.cumsum(svc_pop / svc_pop.sum())


def _subscriber_attributes(cfg: SynthConfig, ra: np.random.Generator, pop: _Population) -> _Attributes:
    """Tenure, plan, ARPU, balance, VAS, DND, family plans and V-nets of every person."""
    P, on, on_idx, n_join = pop.n_persons, pop.on, pop.on_idx, pop.n_joiners
    hh_of, n_hh, wp_of, n_wp = pop.hh_of, pop.n_hh, pop.wp_of, pop.n_wp
    data_days = 7 * cfg.weeks
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
    # a world where nobody works (worker_share 0) has no workplace to look up
    in_vnet = on & (wp_of >= 0) & (vnet_wp[np.maximum(wp_of, 0)] if n_wp else False)
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
    return _Attributes(
        act_day=act_day,
        is_joiner=is_joiner,
        hh_on=hh_on,
        wp_on=wp_on,
        family_hh=family_hh,
        vnet_wp=vnet_wp,
        in_family=in_family,
        in_vnet=in_vnet,
        plan=plan,
        arpu=arpu,
        balance=balance,
        vas=vas,
        dnd=dnd,
    )

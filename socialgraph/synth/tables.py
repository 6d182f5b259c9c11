"""Phone numbers and handsets of the synthetic world, and the tables it hands out.

The last stage of :func:`~socialgraph.synth.make_operator`, drawn from the ``_S_NUMBERS``
stream. :func:`_assign_numbers` gives every person a first number and handset (IMEI) and every
churner who ports or re-enters a second number, and often a new handset. :func:`_tables` then
builds the subscriber table the operator would hold at ``as_of`` (whose new numbers draw their
plan, ARPU, balance and VAS from the same generator, after the numbers) and the ground truth
that tests and benchmarks score against: churn, campaigns, number changes and membership.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .churn import _Campaigns, _Churn
from .columns import _dates, _ids, _str
from .config import (
    _CAUSE_NAMES,
    _COMP_A_SHARE,
    _COMP_HEAD,
    _D_GONE,
    _D_REENTRY,
    _DEST_NAMES,
    _HOME_HEAD,
    _NEVER,
    _PLAN_ARPU,
    _PLAN_YOUTH,
    _PLANS,
    _SUFFIX_SPAN,
    COMPETITORS,
    HOME_OPERATOR,
    SUBSCRIBER_SCHEMA,
    SynthConfig,
)
from .population import _Attributes, _Population


class _Numbers(NamedTuple):
    """Numbers, handsets and the days they are in use, per person (private)."""

    num0: np.ndarray  # first number of each person
    num1: np.ndarray  # number after a port / re-entry, -1 if none
    on1: np.ndarray  # num1 is on-net
    imei0: np.ndarray
    imei1: np.ndarray  # handset after a port / re-entry, -1 if none
    chg: np.ndarray  # the persons who change number, ascending
    start_day: np.ndarray  # first active day (joiners), -NEVER otherwise
    switch_day: np.ndarray  # first day of num1
    end_day: np.ndarray  # person silent from here on (gone)


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


def _assign_numbers(
    cfg: SynthConfig, rn: np.random.Generator, pop: _Population, attrs: _Attributes, churn: _Churn
) -> _Numbers:
    """Unique numbers and IMEIs for everybody, and new ones for those who port or re-enter."""
    P, on = pop.n_persons, pop.on
    churned, churn_day, dest = churn.churned, churn.churn_day, churn.dest
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
    return _Numbers(
        num0=num0,
        num1=num1,
        on1=on1,
        imei0=imei0,
        imei1=imei1,
        chg=chg,
        start_day=np.where(attrs.is_joiner, attrs.act_day, -_NEVER),
        switch_day=switch_day,
        end_day=np.where(gone, churn_day, _NEVER),
    )


def _tables(
    cfg: SynthConfig,
    rn: np.random.Generator,
    pop: _Population,
    attrs: _Attributes,
    camps: _Campaigns,
    churn: _Churn,
    nums: _Numbers,
) -> tuple[pa.Table, dict[str, pa.Table]]:
    """The subscriber table and the truth tables; ``rn`` continues the numbers' stream."""
    hh_w = max(6, len(str(pop.n_hh)))
    wp_w = max(5, len(str(pop.n_wp)))
    family_key = _ids("F", pop.hh_of, ~attrs.in_family, hh_w)
    vnet_key = _ids("V", np.maximum(pop.wp_of, 0), ~attrs.in_vnet, wp_w)
    subs = _subscriber_table(cfg, rn, pop, attrs, churn, nums, family_key, vnet_key)
    truth = {
        "churn": _churn_table(cfg, churn, nums),
        "campaigns": _campaign_table(cfg, pop, attrs, camps, churn, hh_w, wp_w),
        "number_changes": _number_change_table(cfg, churn, nums),
        "membership": _membership_table(cfg, pop, churn, nums, family_key, vnet_key, hh_w, wp_w),
    }
    return subs, truth


def _subscriber_table(
    cfg: SynthConfig,
    rn: np.random.Generator,
    pop: _Population,
    attrs: _Attributes,
    churn: _Churn,
    nums: _Numbers,
    family_key: pa.Array,
    vnet_key: pa.Array,
) -> pa.Table:
    """Every on-net number activated before ``as_of``, sorted by number."""
    sd = cfg.start_date
    data_days = 7 * cfg.weeks
    on, churn_day = pop.on, churn.churn_day
    act_day, plan, arpu, balance = attrs.act_day, attrs.plan, attrs.arpu, attrs.balance
    vas, dnd = attrs.vas, attrs.dnd
    num0, num1, on1, switch_day = nums.num0, nums.num1, nums.on1, nums.switch_day
    imei0, imei1 = nums.imei0, nums.imei1
    p_old = np.flatnonzero(on & (act_day < data_days))
    old_churn = churn_day[p_old]
    old_churn_null = old_churn >= data_days
    p_new = np.flatnonzero(on1 & (switch_day < data_days))
    nn = p_new.size
    new_plan = np.where(rn.random(nn) < 0.5, _PLAN_YOUTH, plan[p_new])
    # the draws for the new numbers happen in the order of the columns below
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
    return subs.take(pc.sort_indices(subs, [("msisdn", "ascending")]))


def _churn_table(cfg: SynthConfig, churn: _Churn, nums: _Numbers) -> pa.Table:
    """Every number that churns in the horizon, by churn day."""
    sd = cfg.start_date
    data_days = 7 * cfg.weeks
    churned, churn_day, dest, cause = churn.churned, churn.churn_day, churn.dest, churn.cause
    num0 = nums.num0
    pc_ = np.flatnonzero(churned)
    pc_ = pc_[np.lexsort((num0[pc_], churn_day[pc_]))]
    return pa.table(
        {
            "msisdn": _str(num0[pc_]),
            "churn_date": _dates(sd, churn_day[pc_]),
            "after_as_of": pa.array(churn_day[pc_] >= data_days),
            "cause": pa.array(_CAUSE_NAMES[cause[pc_]], pa.string()),
            "destination": pa.array(_DEST_NAMES[dest[pc_]], pa.string()),
            "person_id": pa.array(pc_.astype(np.int64)),
        }
    )


def _campaign_table(
    cfg: SynthConfig,
    pop: _Population,
    attrs: _Attributes,
    camps: _Campaigns,
    churn: _Churn,
    hh_w: int,
    wp_w: int,
) -> pa.Table:
    """The planted campaigns, their circles, and how many members they took before and after."""
    sd = cfg.start_date
    data_days = 7 * cfg.weeks
    on, n_wp = pop.on, pop.n_wp
    act_day, family_hh, vnet_wp = attrs.act_day, attrs.family_hh, attrs.vnet_wp
    n_camp, camp_is_hh, camp_circle = camps.n_camp, camps.is_hh, camps.circle
    camp_comp, camp_start, p_camp_h, p_camp_w = camps.comp, camps.start, camps.p_camp_h, camps.p_camp_w
    churned, churn_day, dest = churn.churned, churn.churn_day, churn.dest
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
    return pa.table(
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


def _number_change_table(cfg: SynthConfig, churn: _Churn, nums: _Numbers) -> pa.Table:
    """Every port and re-entry: old and new number, same handset or not, by change day."""
    sd = cfg.start_date
    churn_day, dest = churn.churn_day, churn.dest
    num0, num1, chg, switch_day = nums.num0, nums.num1, nums.chg, nums.switch_day
    imei0, imei1 = nums.imei0, nums.imei1
    chg_o = chg[np.lexsort((num0[chg], switch_day[chg]))]
    same = imei1[chg_o] == imei0[chg_o]
    ch_kind = np.where(dest[chg_o] == _D_REENTRY, "reentry", "port").astype(object)
    return pa.table(
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


def _membership_table(
    cfg: SynthConfig,
    pop: _Population,
    churn: _Churn,
    nums: _Numbers,
    family_key: pa.Array,
    vnet_key: pa.Array,
    hh_w: int,
    wp_w: int,
) -> pa.Table:
    """One row per number of the world (on- and off-net, before and after a change), by number."""
    sd = cfg.start_date
    P, on, hh_of, wp_of = pop.n_persons, pop.on, pop.hh_of, pop.wp_of
    loc_of, n_loc = pop.loc_of, pop.n_loc
    churned, churn_day = churn.churned, churn.churn_day
    num0, num1, on1, chg = nums.num0, nums.num1, nums.on1, nums.chg
    start_day, switch_day, end_day = nums.start_day, nums.switch_day, nums.end_day
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
    return pa.table(
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

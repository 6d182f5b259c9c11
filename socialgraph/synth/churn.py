"""Who leaves the synthetic operator, when, why and for where: campaigns and weekly churn.

The third stage of :func:`~socialgraph.synth.make_operator`, drawn from the ``_S_CHURN``
stream. :func:`_plant_campaigns` picks a few households and workplaces that a competitor
targets, shortly before ``as_of``; :func:`_simulate_churn` then runs the horizon (data weeks
and future weeks) week by week. A subscriber's hazard is a base rate (by tenure, ARPU and
number of ties), raised by contagion (the decayed share of their household and close
colleagues who left) and by any campaign on their household or workplace. The cause of each
churn is drawn in proportion to its share of the hazard, and the destination (a competitor, a
new on-net number, or nowhere) by cause.

Both functions share one generator, so the campaigns must be drawn before the simulation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .config import _COMP_A_SHARE, _D_A, _D_B, _D_GONE, _D_REENTRY, _FRIEND, _NEVER, SynthConfig
from .population import _Attributes, _Population


class _Campaigns(NamedTuple):
    """Planted competitor campaigns, households first, then workplaces (private)."""

    n_camp: int
    is_hh: np.ndarray  # the campaign targets a household (else a workplace)
    circle: np.ndarray  # the household or workplace index
    comp: np.ndarray  # 0 CompA, 1 CompB
    start: np.ndarray  # first week
    strength: np.ndarray  # multiplies the peak hazard
    p_camp_h: np.ndarray  # campaign on each person's household, n_camp if none
    p_camp_w: np.ndarray  # campaign on each person's workplace, n_camp if none


class _Churn(NamedTuple):
    """The outcome of the churn simulation, per person (private)."""

    churned: np.ndarray
    churn_day: np.ndarray  # last day of the first number is churn_day - 1; _NEVER if none
    dest: np.ndarray  # _D_A, _D_B, _D_REENTRY, _D_GONE; -1 if not churned
    cause: np.ndarray  # 0 base, 1 contagion, 2 campaign; -1 if not churned


def _plant_campaigns(
    cfg: SynthConfig, rc: np.random.Generator, pop: _Population, attrs: _Attributes
) -> _Campaigns:
    """Competitor campaigns on households (2+ subscribers) and workplaces (3+ subscribers)."""
    n_hh, n_wp, hh_of, wp_of = pop.n_hh, pop.n_wp, pop.hh_of, pop.wp_of
    hh_pick = np.flatnonzero((attrs.hh_on >= 2) & (rc.random(n_hh) < cfg.campaign_share))
    wp_pick = np.flatnonzero((attrs.wp_on >= 3) & (rc.random(n_wp) < cfg.campaign_share))
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
    return _Campaigns(
        n_camp=n_camp,
        is_hh=camp_is_hh,
        circle=camp_circle,
        comp=camp_comp,
        start=camp_start,
        strength=camp_strength,
        p_camp_h=camp_of_hh[hh_of],
        p_camp_w=camp_of_wp[wp_of],  # wp_of = -1 hits the last (no-campaign) slot
    )


def _base_hazard(cfg: SynthConfig, pop: _Population, attrs: _Attributes) -> np.ndarray:
    """Weekly hazard before tenure, contagion and campaigns: higher for low ARPU and few ties."""
    P, on, arpu = pop.n_persons, pop.on, attrs.arpu
    degree = np.bincount(pop.tie_u, minlength=P) + np.bincount(pop.tie_v, minlength=P)
    arpu_q = np.quantile(arpu[on], [0.25, 0.75]) if on.any() else np.array([0.0, 0.0])
    base_h = cfg.base_hazard * np.where(arpu < arpu_q[0], 1.5, np.where(arpu > arpu_q[1], 0.8, 1.0))
    return base_h * np.where(degree <= 2, 1.6, np.where(degree <= 4, 1.2, 1.0))


def _strong_ties(pop: _Population) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strong ties (household, colleagues) between subscribers as adjacency lists.

    Returns ``(s_ptr, s_dst, inv_deg)``: the neighbours of ``p`` are
    ``s_dst[s_ptr[p]:s_ptr[p + 1]]``, and ``inv_deg`` is one over their number (0 if none).
    """
    P, on, tu, tv, tkind = pop.n_persons, pop.on, pop.tie_u, pop.tie_v, pop.tie_kind
    strong = (tkind != _FRIEND) & on[tu] & on[tv]
    s_src = np.concatenate([tu[strong], tv[strong]])
    s_dst = np.concatenate([tv[strong], tu[strong]])
    s_dst = s_dst[np.argsort(s_src, kind="stable")]
    s_ptr = np.searchsorted(np.sort(s_src), np.arange(P + 1))
    strong_deg = np.diff(s_ptr)
    inv_deg = np.where(strong_deg > 0, 1.0 / np.maximum(strong_deg, 1), 0.0)
    return s_ptr, s_dst, inv_deg


def _simulate_churn(
    cfg: SynthConfig, rc: np.random.Generator, pop: _Population, attrs: _Attributes, camps: _Campaigns
) -> _Churn:
    """Run the weekly churn over data and future weeks, with contagion along strong ties."""
    P, on, act_day = pop.n_persons, pop.on, attrs.act_day
    camp_start, camp_strength = camps.start, camps.strength
    p_camp_h, p_camp_w = camps.p_camp_h, camps.p_camp_w
    horizon_weeks = cfg.weeks + cfg.future_weeks
    base_h = _base_hazard(cfg, pop, attrs)
    s_ptr, s_dst, inv_deg = _strong_ties(pop)
    expo = np.zeros(P)  # decayed share of strong ties lost (ported or gone)
    expo_a = np.zeros(P)  # ... of which to CompA
    expo_b = np.zeros(P)
    churned = np.zeros(P, bool)
    churn_day = np.full(P, _NEVER, np.int64)
    dest = np.full(P, -1, np.int64)
    cause = np.full(P, -1, np.int64)
    comp_slot = np.append(camps.comp, 0)
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
        share_a = (expo_a[new] + 1e-3) / (expo_a[new] + expo_b[new] + 2e-3)
        d = _destinations(cfg, c, u_dest, u_comp, camp_comp_p, share_a)
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
    return _Churn(churned=churned, churn_day=churn_day, dest=dest, cause=cause)


def _destinations(
    cfg: SynthConfig,
    cause: np.ndarray,
    u_dest: np.ndarray,
    u_comp: np.ndarray,
    camp_comp: np.ndarray,
    share_a: np.ndarray,
) -> np.ndarray:
    """Where each churner goes, by cause (0 base, 1 contagion, 2 campaign).

    A campaign mostly wins its churners for its own competitor; contagion follows the
    competitor the lost ties went to (``share_a`` is CompA's share); ordinary churners re-enter,
    vanish or port in the configured shares.
    """
    d_campaign = np.where(u_dest < 0.85, camp_comp, np.where(u_dest < 0.95, 1 - camp_comp, _D_GONE))
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
    return np.where(cause == 0, d_base, np.where(cause == 1, d_contagion, d_campaign))

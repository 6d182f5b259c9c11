"""The call detail records of the synthetic world, one week at a time, clean and dirty.

:func:`_cdr_week` turns the simulated world (a :class:`_World`: numbers, handsets, the days
they are in use, ties and their call rates) into the rows the operator's switches would
record in one week: calls and messages along the ties, to service numbers and one-off
contacts, timed by kind of tie (family in the evenings and at weekends, work in office hours),
on whichever number each person uses that day; then a ``dirty_rate`` share of copies of
those rows, each spoilt one way (null or garbage numbers, negative durations, self-calls,
duplicates, dates in 1970 or 2099, unknown event types).

Week ``w`` draws from its own streams, derived from ``(seed, w)`` alone, so weeks can be made
in any order, or in parallel, and always come out the same. The tables of this module shape
the calls; nothing else reads them.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .columns import _formatted, _str
from .config import _N_KINDS, _NOISE, _S_CDR, _SERVICE, CDR_SCHEMA, SynthConfig, _rng

# per event kind (family, work, friend, service, noise): share of SMS, median voice call
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


def _cdr_week(cfg: SynthConfig, wd: _World, week: int) -> pa.Table:
    """The CDR rows of week ``week``: the visible events in time order, plus the dirty rows."""
    rng = _rng(cfg.seed, _S_CDR, week)
    # the draws from rng happen in this order: events, their times, their types and durations
    caller, callee, kind, svc = _events(rng, wd)
    dow, hour, secs = _times(rng, kind)
    day = 7 * week + dow

    # who is reachable that day, on which number
    a_alive, a_num, a_on, a_imei = _resolve(wd, caller, day)
    b_alive, b_num, b_on, _ = _resolve(wd, callee, day)
    is_svc = callee < 0
    b_alive = b_alive | is_svc
    b_num = np.where(is_svc, wd.svc_numbers[svc], b_num)
    b_on = b_on & ~is_svc
    keep = a_alive & b_alive & (a_on | b_on)

    etype, dur, imei_null = _types_and_durations(rng, kind, a_on)

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
    return _with_dirty_rows(cfg, week, clean, ts[idx], id0)


def _events(rng: np.random.Generator, wd: _World) -> tuple[np.ndarray, ...]:
    """Caller, callee (-1: a service number), kind and service number index of each event.

    Events run along the ties (either direction), to the service numbers, and to one-off
    noise contacts.
    """
    P = wd.n_persons
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
    return caller, callee, kind, svc


def _times(rng: np.random.Generator, kind: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Day of the week, hour and second within the hour of each event, by kind."""
    n = kind.size
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
    secs = rng.integers(0, 3600, n)
    return dow, hour, secs


def _resolve(wd: _World, p: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, ...]:
    """Whether person ``p`` is reachable on ``day``, and on which number, network and handset."""
    pp = np.maximum(p, 0)
    cd = wd.churn_day[pp]
    old = day < cd
    alive = (day >= wd.start_day[pp]) & (day < wd.end_day[pp]) & (old | (day >= wd.switch_day[pp]))
    num = np.where(old, wd.num0[pp], wd.num1[pp])
    onn = np.where(old, wd.on0[pp], wd.on1[pp])
    imei = np.where(old, wd.imei0[pp], wd.imei1[pp])
    return alive, num, onn, imei


def _types_and_durations(
    rng: np.random.Generator, kind: np.ndarray, a_on: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event type (index into ``_EVENT_TYPES``), duration and missing caller IMEI of each event."""
    n = kind.size
    u_type = rng.random(n)
    etype = np.where(u_type < _SMS_SHARE[kind], 1, 0)
    u_x = rng.random(n)
    other = kind != _SERVICE
    etype = np.where(other & (u_x < _MMS_SHARE), 2, np.where(other & (u_x >= 1 - _DATA_SHARE), 3, etype))
    z = rng.standard_normal(n)
    voice = np.clip(np.rint(_VOICE_MEDIAN_S[kind] * np.exp(_VOICE_SIGMA * z)), 1, 10800).astype(np.int64)
    data = np.clip(np.rint(600.0 * np.exp(1.0 * z)), 1, 86400).astype(np.int64)
    dur = np.where(etype == 0, voice, np.where(etype == 3, data, 0))
    # the operator does not see the handset of an off-net caller
    imei_null = ~a_on | (rng.random(n) < _IMEI_MISSING)
    return etype, dur, imei_null


def _with_dirty_rows(cfg: SynthConfig, week: int, clean: pa.Table, ts: np.ndarray, id0: int) -> pa.Table:
    """``clean`` plus copies of some of its rows, each spoilt one way, all in time order.

    ``ts`` holds the epoch seconds of the clean rows and ``id0`` their first ``cdr_id``.
    """
    n_clean = clean.num_rows
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
    all_ts = np.concatenate([ts, ts_d])
    return both.take(pa.array(np.argsort(all_ts, kind="stable")))

"""Typed, frozen configuration for every tunable of the engine.

Each section is a keyword-only frozen dataclass that checks itself when it is created, so a
bad value fails at start-up with a message naming the key, never deep inside a Dask task.
Only :mod:`pipelines` reads YAML; it turns the file into these objects
(:func:`pipelines.config_file.load_config`).

>>> cfg = JobConfig()
>>> cfg.window.lookback_days
180
>>> TieConfig(one_way_factor=2.0)
Traceback (most recent call last):
...
ValueError: ties.one_way_factor must be in [0.0, 1.0], got 2.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from fractions import Fraction

#: a memory size as Dask reads it: bytes, or a number with a unit (4GiB, 500 MB, 1.5e9)
_BYTES = re.compile(r"\d+(\.\d+)?(e\d+)?\s*([kKMGTP]i?B|B)?")

__all__ = [
    "ColumnMap",
    "NumberConfig",
    "WindowConfig",
    "TieConfig",
    "IngestConfig",
    "ClusterConfig",
    "ScoringConfig",
    "CirclesConfig",
    "ContagionConfig",
    "NumberChangeConfig",
    "OffersConfig",
    "BacktestConfig",
    "PrivacyConfig",
    "JobConfig",
]


def _check_range(section: str, name: str, value, lo=None, hi=None, integer: bool = False) -> None:
    wrong_type = not isinstance(value, int) if integer else not isinstance(value, (int, float))
    if isinstance(value, bool) or wrong_type:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{section}.{name} must be {kind}, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise ValueError(f"{section}.{name} must be in [{lo_s}, {hi_s}], got {value!r}")


def _check_hour(section: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 24:
        raise ValueError(f"{section}.{name} must be an integer hour in [0, 24], got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ColumnMap:
    """Names of the CDR columns in the input files (real exports rarely use ours)."""

    caller: str = "caller"
    callee: str = "callee"
    start_time: str = "start_time"
    duration_s: str = "duration_s"
    event_type: str = "event_type"
    cdr_id: str = "cdr_id"
    caller_imei: str = "caller_imei"

    def __post_init__(self):
        names = [getattr(self, f.name) for f in fields(self)]
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, str) or not v:
                raise ValueError(f"columns.{f.name} must be a non-empty column name, got {v!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"columns: two contract columns map to the same input column: {names}")

    def input_to_contract(self) -> dict[str, str]:
        return {getattr(self, f.name): f.name for f in fields(self)}


@dataclass(frozen=True, kw_only=True)
class NumberConfig:
    """How phone numbers are normalised.

    ``country_code`` is stripped from numbers written internationally (``+45...`` or
    ``0045...``), and from national-length numbers prefixed with it when ``national_length``
    is set. Foreign numbers keep their country code, so they never collide with home ones.
    """

    country_code: str | None = None
    national_length: int | None = None
    #: characters removed from inside numbers before they are read, for exports that format
    #: them (``"138 0000 0001"``, ``"(0)20-7946-0958"``): e.g. ``" -.()/"``. Empty by default:
    #: the contract's numbers are digits, and a formatted one is quarantined as non-numeric.
    separators: str = ""

    def __post_init__(self):
        sep = self.separators
        if not isinstance(sep, str) or len(sep) > 16 or any(c.isalnum() or c == "+" for c in sep):
            raise ValueError("numbers.separators must be a few punctuation or space characters (not +), such as "
                             f"' -.()', got {sep!r}")
        cc = self.country_code
        if cc is not None and (not isinstance(cc, str) or not cc.isdigit() or len(cc) > 4):
            raise ValueError(f"numbers.country_code must be 1-4 digits as a string, got {cc!r}")
        nl = self.national_length
        if nl is not None and (isinstance(nl, bool) or not isinstance(nl, int) or not 3 <= nl <= 15):
            raise ValueError(f"numbers.national_length must be an integer in [3, 15], got {nl!r}")


@dataclass(frozen=True, kw_only=True)
class WindowConfig:
    """The analysis window [as_of - lookback_days, as_of) and the local time zone."""

    lookback_days: int = 180
    timezone: str = "UTC"

    def __post_init__(self):
        lb = self.lookback_days
        if isinstance(lb, bool) or not isinstance(lb, int) or not 1 <= lb <= 3660:
            raise ValueError(f"window.lookback_days must be an integer in [1, 3660], got {lb!r}")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.timezone)
        except Exception:
            raise ValueError(
                f"window.timezone must be an IANA zone name such as 'Europe/Copenhagen', "
                f"got {self.timezone!r}"
            ) from None


@dataclass(frozen=True, kw_only=True)
class TieConfig:
    """Tie strength and service-hub exclusion.

    ``weight = reciprocity_factor * (w_calls*log1p(calls) + w_sms*log1p(sms)
    + w_duration*log1p(duration_min) + w_days*log1p(active_days))`` where the reciprocity
    factor is ``one_way_factor`` for a one-way tie and rises linearly to 1 for a perfectly
    balanced one. Logs keep one chatty pair from dwarfing the rest; distinct days carry the
    most weight because regular contact is the best single marker of a real tie.

    A node is a *service hub* (call centre, hotline) when at least ``hub_min_contacts``
    distinct numbers reach it and it answers (calls or texts back) at most
    ``hub_max_reply_share`` of them. Ties to hubs keep their counts in ``edges.parquet`` but get
    weight 0 and stay out of the call graph.
    """

    evening_start_hour: int = 18
    morning_end_hour: int = 8
    work_start_hour: int = 9
    work_end_hour: int = 17
    weekend_days: tuple[int, ...] = (5, 6)
    w_calls: float = 1.0
    w_sms: float = 0.5
    w_duration: float = 0.5
    w_days: float = 1.5
    one_way_factor: float = 0.25
    hub_min_contacts: int = 200
    hub_max_reply_share: float = 0.02

    def __post_init__(self):
        for name in ("evening_start_hour", "morning_end_hour", "work_start_hour", "work_end_hour"):
            _check_hour("ties", name, getattr(self, name))
        if self.work_start_hour >= self.work_end_hour:
            raise ValueError("ties.work_start_hour must be before ties.work_end_hour")
        wd = self.weekend_days
        if isinstance(wd, list):
            object.__setattr__(self, "weekend_days", tuple(wd))
        if not all(isinstance(d, int) and 0 <= d <= 6 for d in self.weekend_days):
            raise ValueError(f"ties.weekend_days must be day numbers 0=Mon..6=Sun, got {wd!r}")
        for name in ("w_calls", "w_sms", "w_duration", "w_days"):
            _check_range("ties", name, getattr(self, name), 0.0, None)
        _check_range("ties", "one_way_factor", self.one_way_factor, 0.0, 1.0)
        _check_range("ties", "hub_min_contacts", self.hub_min_contacts, 1, None)
        _check_range("ties", "hub_max_reply_share", self.hub_max_reply_share, 0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    """Reading CDRs: quarantine of bad rows and how finely to split the input.

    ``blocksize``: a task reads runs of a file's row groups of about this many uncompressed
    bytes (a file of one row group is one task whatever its size); ``null`` = one task per
    file; ``auto`` = 1/16 of what a worker has beyond the ~300 MiB it holds anyway (README
    "Memory envelope"), between 16 MiB and 1 GiB (256 MiB on an external cluster, whose
    workers' limits are not known in advance). Bigger blocks pre-aggregate more pairs within
    a task, so the combine has less to do: at 100M rows, 1M-row blocks instead of 8M-row
    ones made the graph stage spill 18 GiB. Results do not depend on it.
    """

    quarantine: bool = True
    blocksize: str | None = "auto"
    combine_partitions: int = 0  # 0 = eight per worker thread
    #: ``event_type`` values read as a voice call and as an SMS (any case, surrounding spaces
    #: ignored); every other value is skipped and counted (``unknown_event_type``). Switch
    #: exports name records by type, e.g. ``voice_types: [moc]``, ``sms_types: [sms_mo, smsmo]``.
    #: List the originating types only: a terminating record (MTC, SMS_MT) is the same event
    #: seen from the receiving end, and counting both would double every on-net tie.
    voice_types: tuple[str, ...] = ("voice",)
    sms_types: tuple[str, ...] = ("sms",)
    #: how to read a ``start_time`` column that is not a Parquet timestamp (a timestamp column
    #: is always read as it is): ``start_time_format`` for text, a strptime format such as
    #: '%Y%m%d%H%M%S' or '%Y-%m-%d %H:%M:%S', or 'iso' (ISO 8601, with fractions of a second
    #: and offsets); ``start_time_unit`` for numbers since 1970-01-01 UTC: s, ms, us or ns.
    #: Text without an offset is UTC, as naive timestamps are. A value that does not read is
    #: quarantined as ``null_timestamp``. Unset, such a column is refused with the setting to add.
    start_time_format: str | None = None
    start_time_unit: str | None = None

    def __post_init__(self):
        if not isinstance(self.quarantine, bool):
            raise ValueError(f"ingest.quarantine must be true or false, got {self.quarantine!r}")
        fmt = self.start_time_format
        if fmt is not None and (not isinstance(fmt, str) or (fmt != "iso" and "%" not in fmt)):
            raise ValueError("ingest.start_time_format must be a strptime format such as '%Y-%m-%d %H:%M:%S' "
                             f"or iso, got {fmt!r}")
        if self.start_time_unit not in (None, "s", "ms", "us", "ns"):
            raise ValueError(f"ingest.start_time_unit must be s, ms, us or ns, got {self.start_time_unit!r}")
        for name in ("voice_types", "sms_types"):
            for v in getattr(self, name):
                if not isinstance(v, str) or not v.strip():
                    raise ValueError(f"ingest.{name} must be a list of event_type values, got {v!r}")
        both = {v.strip().lower() for v in self.voice_types} & {v.strip().lower() for v in self.sms_types}
        if both:
            raise ValueError(f"ingest: {sorted(both)} is in both voice_types and sms_types")
        if not self.voice_types and not self.sms_types:
            raise ValueError("ingest: voice_types and sms_types are both empty: no CDR row could be used")
        if self.blocksize not in (None, "auto") and not _BYTES.fullmatch(str(self.blocksize).strip()):
            raise ValueError(f"ingest.blocksize must be a size like 64MiB, auto or null, got {self.blocksize!r}")
        _check_range("ingest", "combine_partitions", self.combine_partitions, 0, 4096)


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """The embedded local Dask cluster (ignored with ``--scheduler``). 0 = sized to the machine."""

    n_workers: int = 0
    threads_per_worker: int = 1
    memory_limit: str = "auto"

    def __post_init__(self):
        _check_range("cluster", "n_workers", self.n_workers, 0, 1024)
        _check_range("cluster", "threads_per_worker", self.threads_per_worker, 1, 256)
        if not (self.memory_limit == "auto" or _BYTES.fullmatch(str(self.memory_limit).strip())):
            raise ValueError(f"cluster.memory_limit must be 'auto' or a size like 4GiB or 500MB, "
                             f"got {self.memory_limit!r}")


@dataclass(frozen=True, kw_only=True)
class ScoringConfig:
    """Stickiness, exposure and churn risk.

    Stickiness is a weighted mean of components in [0, 1] (weights ``w_*``, normalised to sum
    to 1); each saturating component is ``1 - exp(-x / scale)``, so ``scale`` is the value at
    which a component reaches 63 %. Inbound ties (the contact reaches the subscriber on this
    number) count ``inbound_factor`` times an outbound-only tie in the social component.
    Exposure decays a churned contact's weight with ``half_life_days`` since the churn.
    ``block_days`` is the length of the activity blocks: the activity trend compares the last
    block with the two before it, and churn risk is fitted on features taken one block before
    the as-of date against churn in that last block (never on churn after as-of).
    """

    w_tenure: float = 0.20
    w_social: float = 0.30
    w_diversity: float = 0.10
    w_onnet: float = 0.10
    w_services: float = 0.15
    w_group: float = 0.10
    w_balance: float = 0.05
    tenure_scale_days: float = 730.0
    social_scale: float = 8.0
    inbound_factor: float = 2.0
    services_scale: float = 3.0
    balance_scale: float = 50.0
    half_life_days: float = 30.0
    alpha: float = 0.85
    block_days: int = 14
    risk_l2: float = 1.0

    def __post_init__(self):
        ws = [getattr(self, f.name) for f in fields(self) if f.name.startswith("w_")]
        for f in fields(self):
            if f.name.startswith("w_"):
                _check_range("scoring", f.name, getattr(self, f.name), 0.0, None)
        if sum(ws) <= 0:
            raise ValueError("scoring: at least one stickiness weight w_* must be positive")
        for name in ("tenure_scale_days", "social_scale", "services_scale", "balance_scale",
                     "half_life_days"):
            _check_range("scoring", name, getattr(self, name), 1e-9, None)
        _check_range("scoring", "inbound_factor", self.inbound_factor, 1.0, None)
        _check_range("scoring", "alpha", self.alpha, 0.01, 0.99)
        _check_range("scoring", "block_days", self.block_days, 1, 366)
        _check_range("scoring", "risk_l2", self.risk_l2, 0.0, None)

    @property
    def stickiness_weights(self) -> dict[str, float]:
        """Component -> weight, normalised to sum to 1."""
        raw = {f.name[2:]: getattr(self, f.name) for f in fields(self) if f.name.startswith("w_")}
        total = sum(raw.values())
        return {k: v / total for k, v in raw.items()}


@dataclass(frozen=True, kw_only=True)
class CirclesConfig:
    """Inferred circles, found by igraph's Leiden on layers of the call graph.

    When people call tells the kind of tie (evenings and weekends for family, working hours for
    colleagues), so the graph is split before community detection:

    - **family layer**: reciprocal ties with at least ``family_min_days`` active days and at
      least ``family_evening_share`` of their events in the evening or at the weekend. Its
      Leiden communities (objective ``family_objective``, resolution ``family_resolution``)
      of ``family_min_size``..``family_max_size`` members are *family* circles.
    - **social layer**: the other ties with at least ``social_min_days`` active days. Its
      communities (``social_objective``, ``social_resolution``) of
      ``social_min_size``..``social_max_size`` members are *social* (work, friends) circles;
      larger ones are not a group a marketer can approach. With ``split_social_by_hours``
      (default) the layer is split in two by when the ties are used: **work** ties (less than
      ``family_evening_share`` of their events in the evening or at the weekend: colleagues)
      and the rest (friends), each with its own communities. A subscriber can then be in a
      work circle and a friends circle (both of kind ``social``; ids ``wrk-`` and ``soc-``).
      Why: one Leiden partition of colleague and friend ties together splits a workplace
      among its members' friend groups. On the synthetic operators the split found 54.6 %
      and 59.2 % of the planted competitor campaigns (500k, 1M subscribers) instead of 49.7 %
      and 52.6 %, at the same precision (0.725, 0.701).

    **Households** (``household_resolution``, default 1.0, the family resolution; 0 = off):
    the family circles are joined the same way over the family ties and every other
    evening/weekend tie of ``social_min_days`` or more that reaches a family-layer member, into
    ``household`` circles (ids ``hhd-``, kind ``family``, 2 to ``family_max_size`` members, at
    least two parts). A household member who calls one way, or on two days only, is not in
    the family layer (its ties are not reciprocal family ties) but comes back here. On the
    synthetic operators (with today's workplaces) it found 70.9 % / 71.1 % of the campaigns
    (500k / 1M) at 77.5 % / 73.0 % precision, against 69.4 % / 69.4 % at 77.9 % / 72.8 % without;
    households without a family plan 71.3 % / 63.4 % against 66.7 % / 57.4 %. It was off by
    default while its Leiden ran on the whole joined graph, one giant component (9.4 s / 14.4 s
    at 500k / 1M). The join now cuts that graph along the ties that cannot gain at this
    resolution (:func:`socialgraph.communities._join_with_leaves`: exact for CPM), and a friend's
    tie between two families rarely can: 0.4 s / 1.1 s.

    **Shared contacts** (``family_shared_contacts``, default 1.0; 0 = off): in the family layer
    and the household join a tie's weight is scaled by the contacts its two ends share
    (:func:`socialgraph.layers.shared_contacts`; numbers with more than ``join_max_contacts``
    ties are nobody's shared contact): ``(1 + s * min(shared, 2)) / (1 + s)``, half for a tie
    whose ends share no contact, as is with one, 1.5x with two or more; a tie of a number with
    no other contact keeps its weight (it cannot share one). Why: a household is a
    clique, so its members share each other as contacts, while a close friend from another
    family usually shares none; measured by CPM alone, a friend's strong evening tie pulls a
    member into the friend's family. On a synthetic operator (500k, seed 3) 88 % of household ties
    in the family layer share a contact and 61 % share two, against 16 % and 1.4 % of the
    others; on real phones (Copenhagen Networks Study) ties with a shared contact are Facebook
    friendships more often (92.2 % against 85.4 %). Family circles got purer (on a 3,000
    subscriber world, mean purity 0.899 -> 0.945, wholly one household 73 % -> 87 %) and the
    test found 75.9 % / 76.5 % of the campaigns (500k / 1M) at 71.9 % / 70.2 % precision,
    against 74.4 % / 74.1 % at 73.7 % / 71.5 % (fdr 0.12; on three more 500k worlds of other
    seeds +2.4 to +4.0 points found at -0.9 to +1.1 points precision). The family layer's
    reported modularity is that of the scaled ties.

    **Workplaces** (``work_coarse_resolution``, 0 = off): the work layer is partitioned a second
    time, coarser: its circles become the nodes of a graph (their sizes as node weights, the
    ties between them summed) and Leiden joins them at this resolution. A ``workplace`` circle
    (ids ``wpl-``) is a union of two or more work circles (and members left out of any), a
    whole workplace where the finer partition cut it into teams; both are tested. Why: a
    competitor that poaches a workplace takes members from several of its teams, and two
    leavers in each of two teams is weak evidence twice where four in one workplace is
    strong evidence once. On the synthetic operators this found 68.1 % / 67.8 % of the planted
    campaigns (500k / 1M subscribers) instead of 61.5 % / 63.7 %, with 75.7 % / 72.7 % of the
    flagged circles on one (77.6 % / 71.7 % without); the coarse resolution alone, without
    the teams, found 63.0 % at 76.3 % (500k). The partition is always CPM (resolution in
    tie-strength units, like the work layer's default). Only with ``split_social_by_hours``.
    The join also takes the working-hours ties of ``workplace_min_days`` (default 1) or more
    active days that reach a work-layer member: a colleague seen on one day only, whom
    ``social_min_days`` keeps out of the teams (one-off calls would blur them), still counts
    towards a workplace; a member tied to one community only is placed after Leiden, where the
    CPM gains (:func:`socialgraph.communities._join_with_leaves`), which halves the join's time.
    With them the test found 69.6 % / 69.4 % of the campaigns (500k / 1M) at 76.9 % / 72.8 %
    precision instead of 68.1 % / 67.8 % at 75.7 % / 72.7 %; workplaces without a V-net 63.2 %
    / 65.4 % instead of 57.9 % / 60.8 %. ``workplace_min_days`` at ``social_min_days`` or above
    joins over the work layer's own ties only. Neither join takes an extra tie of a number in
    touch with more than ``join_max_contacts`` (200, the service-hub threshold of ``ties``)
    others: a telemarketer who called 5,000 subscribers once each is nobody's colleague.

    With the ``CPM`` objective the resolution is in tie-strength units: a circle's members are
    tied to each other with an average strength above it (a density a marketer can read);
    ``modularity`` takes a dimensionless resolution (higher = smaller communities). The
    modularity of each layer's partition is reported either way. An inferred circle whose
    members overlap a declared one (family plan for a family circle, V-net for a social one)
    with Jaccard at least ``declared_jaccard`` is the declared circle found again, and is
    dropped. ``seed`` fixes Leiden's randomness; ``leiden_iterations`` 2 (-1 iterates to
    convergence): a single pass gives circles as pure and costs 1.5-2.4x less, but a warm
    start then keeps fewer circle ids (93 % against 97 % of members after 2 % of ties
    changed), and stable ids are what monthly runs need. Leiden runs on batches of whole
    connected components of about ``leiden_batch_edges`` ties (0: one batch per layer), side
    by side on the Dask workers; the batches depend only on the graph, so the circles do not
    depend on the cluster. With ``--previous``, a current inferred circle
    keeps the id of the previous circle it continues when each is the other's best match and
    their member Jaccard is at least ``match_jaccard``.
    """

    family_min_days: int = 3
    family_evening_share: float = 0.5
    family_objective: str = "CPM"
    family_resolution: float = 1.0
    family_min_size: int = 2
    family_max_size: int = 6
    social_min_days: int = 2
    social_objective: str = "CPM"
    social_resolution: float = 0.1
    social_min_size: int = 3
    social_max_size: int = 300
    split_social_by_hours: bool = True
    work_coarse_resolution: float = 0.03
    workplace_min_days: int = 1
    join_max_contacts: int = 200
    household_resolution: float = 1.0
    family_shared_contacts: float = 1.0
    leiden_iterations: int = 2
    leiden_batch_edges: int = 131_072
    declared_jaccard: float = 0.5
    match_jaccard: float = 0.5
    seed: int = 42

    def __post_init__(self):
        for name in ("family_objective", "social_objective"):
            if getattr(self, name) not in ("CPM", "modularity"):
                raise ValueError(f"circles.{name} must be 'CPM' or 'modularity', got {getattr(self, name)!r}")
        for name in ("family_resolution", "social_resolution"):
            _check_range("circles", name, getattr(self, name), 1e-9, None)
        _check_range("circles", "workplace_min_days", self.workplace_min_days, 1, None, integer=True)
        _check_range("circles", "join_max_contacts", self.join_max_contacts, 1, None, integer=True)
        _check_range("circles", "work_coarse_resolution", self.work_coarse_resolution, 0.0, None)
        _check_range("circles", "household_resolution", self.household_resolution, 0.0, None)
        _check_range("circles", "family_shared_contacts", self.family_shared_contacts, 0.0, None)
        if not isinstance(self.split_social_by_hours, bool):
            raise ValueError(f"circles.split_social_by_hours must be true or false, got {self.split_social_by_hours!r}")
        _check_range("circles", "leiden_iterations", self.leiden_iterations, -1, 1000, integer=True)
        _check_range("circles", "leiden_batch_edges", self.leiden_batch_edges, 0, None, integer=True)
        _check_range("circles", "seed", self.seed, 0, 2**31 - 1, integer=True)
        _check_range("circles", "family_min_days", self.family_min_days, 1, None, integer=True)
        _check_range("circles", "social_min_days", self.social_min_days, 1, None, integer=True)
        _check_range("circles", "family_evening_share", self.family_evening_share, 0.0, 1.0)
        _check_range("circles", "family_min_size", self.family_min_size, 2, None, integer=True)
        _check_range("circles", "family_max_size", self.family_max_size, self.family_min_size, None, integer=True)
        _check_range("circles", "social_min_size", self.social_min_size, 2, None, integer=True)
        _check_range("circles", "social_max_size", self.social_max_size, self.social_min_size, None, integer=True)
        _check_range("circles", "declared_jaccard", self.declared_jaccard, 0.0, 1.0)
        _check_range("circles", "match_jaccard", self.match_jaccard, 1e-9, 1.0)

    def leiden_params(self, layer: str) -> tuple[str, float, int, int]:
        """``(objective, resolution, min size, max size)`` of a layer's communities: the
        ``family_*`` settings for the family layer, the ``social_*`` ones for the others, and
        for ``workplace`` (the work layer's second, coarser partition) CPM at
        ``work_coarse_resolution`` with the social size bounds, for ``household`` (the family
        layer's) CPM at ``household_resolution`` with the family size bounds.

        The work layer shares the friends' resolution: 0.03 for colleagues alone (instead of
        as the second partition) found 1.5 points more campaigns at 1.3 points less precision
        on the 500k operator, the same trade as a higher ``contagion.fdr``, and 0.01 lost on both.

        >>> cfg = CirclesConfig(family_resolution=0.5, social_resolution=0.2)
        >>> cfg.leiden_params("family"), cfg.leiden_params("work"), cfg.leiden_params("workplace")
        (('CPM', 0.5, 2, 6), ('CPM', 0.2, 3, 300), ('CPM', 0.03, 3, 300))
        """
        if layer == "family":
            return self.family_objective, self.family_resolution, self.family_min_size, self.family_max_size
        if layer == "workplace":
            return "CPM", self.work_coarse_resolution, self.social_min_size, self.social_max_size
        if layer == "household":
            return "CPM", self.household_resolution, self.family_min_size, self.family_max_size
        return self.social_objective, self.social_resolution, self.social_min_size, self.social_max_size


@dataclass(frozen=True, kw_only=True)
class ContagionConfig:
    """The per-circle contagion test.

    Churn is counted in the ``window_days`` before the as-of date among members active at its
    start (detected re-entries are not churn). A circle is flagged when its BH q-value is at
    most ``fdr``, at least ``min_churned`` members churned, and the churn is recent (one in
    the last ``recent_days``) or rising (more in the second half of the window than the first).

    ``method`` picks the multiple-testing procedure behind ``q_value``: ``discrete_bh``
    (Heyse's discrete Benjamini-Hochberg, which uses each circle's exact null distribution:
    small circles cannot reach small p-values, and plain BH wastes power on them) or ``bh``
    (plain Benjamini-Hochberg). Both are reported (``q_discrete``, ``q_bh``).

    ``baseline``: ``independent`` takes each stratum's churn rate among the subscribers none
    of whose co-members churned in the window (:func:`socialgraph.contagion.independent_churn_probability`);
    ``all`` over every subscriber, which also counts the dependent churn the test looks for
    and makes the null too high (three times too conservative at p 0.001 on the synthetic
    operator, where 37 % of circle members' churn was dependent).

    ``fdr`` 0.12: with the independent baseline the q-values are nearly honest, and 0.12 is the
    highest level at which at least 70 % of the flagged circles are on a planted campaign on
    both synthetic operators (500k and 1M); 6.8-7.6 % of flagged circles hold only independent
    churn. A contact list tolerates a false lead in eight better than missing real clusters.

    ``recent_weight``: a churn in the second half of the window counts this many times one in
    the first half in the circle's churn score (1 = a plain count; a ratio of small integers,
    denominator at most 4: 1.5 scores an early churn 2 and a late one 3). Contagion is recent
    and rising churn; a circle whose members left in the last two weeks is stronger evidence
    of it than one whose members left a month apart. The null keeps the test exact: members
    churn at their baseline risk and, when they do, in each half as often as all churners of
    the window did (so a seasonal rise in churn does not make every circle look rising).
    Why 1.5 and not 2: at 2, one late churn scores as much as two early ones, so a family of
    two who both left in the window's first fortnight looked no more unusual than one member
    leaving late (q 0.3-0.7 for such family plans); at 1.5 two leavers always outweigh one,
    and the later ones still count more. On five synthetic operators (500k seeds 42, 1, 2, 3
    and 1M) it found 0.2-4.5 points more campaigns at the same precision (docs/contagion-evidence.md).

    ``layer_weight_*``: prior weights of the circle layers in the weighted multiple-testing
    procedure (Genovese, Roeder and Wasserman 2006; normalised to average 1 over the tested
    circles, so the FDR bound holds). Contagion worth a group offer is a family moving
    together or a competitor poaching a work group (family circles, V-nets, work circles);
    friends' circles (``social``) are the loosest and get a quarter of the weight: they need
    four times the evidence, and the others get a bit more of the error budget.

    On the synthetic operator (500k / 1M subscribers, ``benchmarks/circles_eval.py``) the
    defaults find 77.4 % / 79.2 % of the planted competitor campaigns, with 70.7 % / 70.2 % of
    the flagged circles on one (README: the whole frontier; 73.4 % / 73.2 % at 73.7 % / 71.5 %
    before shared contacts in the family layer and the 2-3 score); with the plain baseline at fdr
    0.2, 70.9 % / 71.1 % at 77.5 % / 73.0 %; before workplace circles (:class:`CirclesConfig`),
    61.5 % / 63.7 % at 77.6 % / 71.7 %, and a plain count with equal layer weights found
    54.6 % / 59.2 % at 72.5 % / 70.1 %. Under shuffled churn (no contagion) nothing is
    flagged.
    """

    window_days: int = 28
    recent_days: int = 21
    fdr: float = 0.12
    min_churned: int = 2
    method: str = "discrete_bh"
    baseline: str = "independent"
    recent_weight: float = 1.5
    layer_weight_family: float = 1.0
    layer_weight_vnet: float = 1.0
    layer_weight_work: float = 1.0
    layer_weight_social: float = 0.25

    def __post_init__(self):
        _check_range("contagion", "window_days", self.window_days, 2, 3660, integer=True)
        _check_range("contagion", "recent_days", self.recent_days, 1, self.window_days, integer=True)
        _check_range("contagion", "fdr", self.fdr, 1e-9, 1.0)
        _check_range("contagion", "min_churned", self.min_churned, 1, None, integer=True)
        _check_range("contagion", "recent_weight", self.recent_weight, 1, 10)
        early, late = self.score_weights()
        if abs(late / early - self.recent_weight) > 1e-9:
            raise ValueError(f"contagion.recent_weight must be a ratio of small integers (denominator at most 4, "
                             f"such as 1.5, 1.25 or 2), got {self.recent_weight!r}")
        for layer in ("family", "vnet", "work", "social"):
            _check_range("contagion", f"layer_weight_{layer}", getattr(self, f"layer_weight_{layer}"), 0.01, 100.0)
        if self.baseline not in ("independent", "all"):
            raise ValueError(f"contagion.baseline must be 'independent' or 'all', got {self.baseline!r}")
        if self.method not in ("discrete_bh", "bh"):
            raise ValueError(f"contagion.method must be 'discrete_bh' or 'bh', got {self.method!r}")

    def score_weights(self) -> tuple[int, int]:
        """The churn score's integer weights of an early and a late churn (``recent_weight``
        as a fraction of denominator at most 4).

        >>> ContagionConfig().score_weights(), ContagionConfig(recent_weight=2).score_weights()
        ((2, 3), (1, 2))
        """
        ratio = Fraction(self.recent_weight).limit_denominator(4)
        return ratio.denominator, ratio.numerator

    def layer_weights(self) -> dict[str, float]:
        """The prior weight of each circle layer in the weighted multiple-testing procedure."""
        return {layer: float(getattr(self, f"layer_weight_{layer}")) for layer in ("family", "vnet", "work", "social")}


@dataclass(frozen=True, kw_only=True)
class NumberChangeConfig:
    """Re-entry and port detection (see :mod:`socialgraph.reentry`).

    A churned on-net number ``old`` and a number ``new`` first active (activation day of a
    subscriber, else first tie day) between ``lead_days`` before ``old``'s last activity and
    ``max_gap_days`` after it are compared on their contacts: ``similarity`` is the geometric
    mean of the share of ``old``'s tie strength to contacts ``new`` also reaches and the share
    of ``new``'s contacts that were ``old``'s (a tie between the two counts in neither).
    A pair is a change when the similarity is at least ``min_similarity`` with at least
    ``min_shared`` shared contacts, or when both are subscribers with the same handset IMEI
    (``new`` activated within the window; no shared contact needed). Each number takes part
    in at most one change: handset matches first, then the highest similarity.
    Defaults were tuned on synthetic operators (precision about 0.99 at these thresholds;
    ``min_shared = 1`` costs about 5 points of precision on ports).
    """

    min_similarity: float = 0.3
    min_shared: int = 2
    lead_days: int = 7
    max_gap_days: int = 45

    def __post_init__(self):
        _check_range("number_changes", "min_similarity", self.min_similarity, 0.0, 1.0)
        _check_range("number_changes", "min_shared", self.min_shared, 1, None, integer=True)
        _check_range("number_changes", "lead_days", self.lead_days, 0, 3660, integer=True)
        _check_range("number_changes", "max_gap_days", self.max_gap_days, 0, 3660, integer=True)


@dataclass(frozen=True, kw_only=True)
class OffersConfig:
    """Target lists (see :mod:`socialgraph.offers`). ``max_contacts`` (0 = no limit) is the
    budget of rows (``--max-contacts``): circles are taken in priority order, each whole or
    not at all, one that no longer fits skipped for the next. A member who churned and was
    detected as a port, on a tie to the circle of at least ``bring_back_min_weight``
    (``strongest_tie``), gets a "bring back" row for the new number."""

    max_contacts: int = 0
    bring_back_min_weight: float = 1.0

    def __post_init__(self):
        _check_range("offers", "max_contacts", self.max_contacts, 0, None, integer=True)
        _check_range("offers", "bring_back_min_weight", self.bring_back_min_weight, 0.0, None)



@dataclass(frozen=True, kw_only=True)
class BacktestConfig:
    """Back-test: when the subscriber table knows churn on or after the as-of date, the run
    scores its own ``churn_risk``, flags and targets against churn in the ``horizon_days``
    after as-of (or as many days as the data covers)."""

    horizon_days: int = 28

    def __post_init__(self):
        _check_range("backtest", "horizon_days", self.horizon_days, 1, 3660, integer=True)


@dataclass(frozen=True, kw_only=True)
class PrivacyConfig:
    """With ``pseudonymise``, every output except the marketer's contact list (``targets.csv``
    / ``.xlsx``) carries keyed pseudonyms (HMAC-SHA256) instead of phone numbers and IMEIs. The
    key is read from the environment variable named ``key_env`` and never written anywhere;
    the same key gives the same pseudonyms every month, so outputs still join across runs.
    A subscriber whose ``dnd`` value is missing is kept off the contact lists unless
    ``contact_unknown_dnd`` (a lost opt-out flag must not put someone who said no on a list)."""

    pseudonymise: bool = False
    key_env: str = "SOCIALGRAPH_PSEUDONYM_KEY"
    contact_unknown_dnd: bool = False

    def __post_init__(self):
        if not isinstance(self.pseudonymise, bool):
            raise ValueError(f"privacy.pseudonymise must be true or false, got {self.pseudonymise!r}")
        if not isinstance(self.contact_unknown_dnd, bool):
            raise ValueError(f"privacy.contact_unknown_dnd must be true or false, got {self.contact_unknown_dnd!r}")
        if not isinstance(self.key_env, str) or not self.key_env:
            raise ValueError("privacy.key_env must name an environment variable")

@dataclass(frozen=True, kw_only=True)
class JobConfig:
    """Everything a run of ``socialgraph run`` can tune."""

    columns: ColumnMap = field(default_factory=ColumnMap)
    numbers: NumberConfig = field(default_factory=NumberConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    ties: TieConfig = field(default_factory=TieConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    circles: CirclesConfig = field(default_factory=CirclesConfig)
    contagion: ContagionConfig = field(default_factory=ContagionConfig)
    number_changes: NumberChangeConfig = field(default_factory=NumberChangeConfig)
    offers: OffersConfig = field(default_factory=OffersConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    seed: int = 42

    def __post_init__(self):
        _check_range("", "seed", self.seed, 0, 2**32 - 1)

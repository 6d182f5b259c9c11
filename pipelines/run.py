"""``socialgraph run``: the batch job, as a sequence of timed stages.

Stages only wire engine functions together; each records its wall time and row counts in
``manifest.json``. The manifest is written with ``status: running`` when the job starts and
``status: complete`` as its very last step, so a directory whose manifest does not say
``complete`` holds an interrupted run (every file in it is still whole: writes are atomic).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from socialgraph.backtest import backtest
from socialgraph.circles import circle_members
from socialgraph.communities import serial_map
from socialgraph.config import ClusterConfig, JobConfig
from socialgraph.contagion import circle_contagion
from socialgraph.graph import build_call_graph
from socialgraph.lineage import carry_history, history_rows, mark_previous_targets, match_circles, previous_churn
from socialgraph.offers import build_targets
from socialgraph.reentry import detect_number_changes
from socialgraph.report import render_report, report_inputs
from socialgraph.risk import score_subscribers
from socialgraph.schema import (
    CIRCLE_HISTORY,
    CIRCLE_LINEAGE,
    CIRCLE_MEMBERS,
    CIRCLES,
    NUMBER_CHANGES,
    SUBSCRIBERS_SCORED,
)
from socialgraph.subscribers import (
    NEVER,
    active_after_churn,
    day_number,
    subscriber_quality,
    null_dnd_message,
    subscribers_from_arrow,
    unread_dnd_message,
)
from socialgraph.ties import N_BLOCKS, Window

from . import catalog
from .checkpoints import Checkpoints, link_tree, stage_fingerprints
from .cluster import LazyClient, local_worker_memory, local_workers, make_compute, make_task_map, \
    spilled_bytes, total_threads, worker_memory_limit
from .config_file import config_to_mapping
from .graph_build import build_graph_edges, default_buckets
from .ingest import check_clock_zone, check_unread_values, check_usable_rows, open_cdrs, scan, short_lookback, \
    time_setting
from .io import FILE_MODE, InputError, atomic_path, ensure_dir, input_description, read_operators, read_subscribers, \
    read_previous, remove_leftovers, replace_dir, write_json, write_parquet, write_targets
from .spellings import spelling_findings
from .tables import changes_table, circles_table, history_table, members_table, nodes_table, pa_table, \
    scored_table

log = logging.getLogger("socialgraph")

XLSX_MAX_ROWS = 200_000
_VERSIONED = ("socialgraph", "dask", "distributed", "pandas", "numpy", "pyarrow", "numba",
              "networkx", "igraph", "leidenalg")


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """What the user asked for on the command line."""

    cdr: str
    subscribers: str
    out: str
    operators: str | None = None
    as_of: dt.date | None = None
    lookback_days: int | None = None
    scheduler: str | None = None
    config: JobConfig = field(default_factory=JobConfig)
    progress: bool | None = None
    max_contacts: int | None = None
    previous: str | None = None
    skip_bad_files: bool = False  # skip (and count) unreadable CDR files instead of failing
    resume: bool = False  # load the saved result of every stage whose fingerprint is unchanged
    # save each stage's result under OUT/.checkpoints for --resume; None: yes, unless the run
    # pseudonymises (checkpoints hold numbers, and such an output directory is meant to hold none)
    checkpoints: bool | None = None


@dataclass
class StageLog:
    stages: list = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        # when the stage began, in seconds since the log did (stages may overlap: see circles)
        rec = {"name": name, "started_s": round(t0 - self.t0, 3)}
        log.info("stage %s ...", name)
        yield rec
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        # the client's peak resident memory so far (it only grows: the stage where it jumps is
        # the one to look at); the workers' memory is Dask's to limit
        rec["client_peak_gib"] = round(_peak_rss_bytes() / 2**30, 3)
        self.stages.append(rec)
        extra = ", ".join(f"{k}={v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k}={v}"
                          for k, v in rec.items()
                          if k not in ("name", "seconds", "resumed", "client_peak_gib", "started_s"))
        how = "resumed from its checkpoint" if rec.get("resumed") else "done"
        log.info("stage %s %s in %.1f s%s", name, how, rec["seconds"], f" ({extra})" if extra else "")


def _peak_rss_bytes() -> int:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in _VERSIONED:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def run_job(spec: JobSpec) -> dict:
    """Run the whole job; return the manifest (also written to ``OUT/manifest.json``).

    A failure is recorded in the manifest (``status: failed`` and the one-line error) before
    it propagates, so the output directory always tells what happened to the last run.
    """
    _check_out_outside_inputs(spec)
    out = ensure_dir(Path(spec.out))
    for name in remove_leftovers(out):  # a killed run could not remove its own temporaries
        log.info("removed %s, left by an interrupted run", name)
    manifest: dict = {}
    try:
        with LazyClient(spec.scheduler, spec.config.cluster) as clients:
            return _run(spec, out, manifest, clients)
    except BaseException as e:
        if manifest.get("run_id"):  # datasets the failed run had started: never leave them half-done
            for tmp in out.glob(f".*.tmp-{manifest['run_id'][:8]}"):
                shutil.rmtree(tmp, ignore_errors=True)
        if manifest:
            manifest["status"] = "failed"
            manifest["error"] = f"{type(e).__name__}: {' '.join(str(e).split())}"[:500]
            manifest["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            write_json(manifest, out / catalog.MANIFEST)
        raise


def _check_out_outside_inputs(spec: JobSpec) -> None:
    """Refuse an output directory inside an input directory: the next run would list its own
    outputs (``edges.parquet``, the quarantine, ...) as CDR or subscriber files. The first run
    works, the second fails reading ``circle_history.parquet`` as CDRs."""
    out = Path(spec.out).resolve()
    for flag, path in (("--cdr", spec.cdr), ("--subscribers", spec.subscribers)):
        if "://" in str(path):
            continue  # a remote store: the output cannot be inside it
        source = Path(path)
        if source.is_dir() and (out == source.resolve() or source.resolve() in out.parents):
            raise InputError(f"{spec.out}: the output directory is inside {flag} {path}, so the next run would read "
                             "its outputs as input; choose an output directory outside it")


def _run(spec: JobSpec, out: Path, manifest: dict, clients: LazyClient) -> dict:
    cfg = spec.config
    if spec.lookback_days is not None:
        cfg = replace(cfg, window=replace(cfg.window, lookback_days=spec.lookback_days))
    if spec.max_contacts is not None:
        cfg = replace(cfg, offers=replace(cfg.offers, max_contacts=spec.max_contacts))
    secret = pseudonym_secret(cfg)
    started = dt.datetime.now(dt.timezone.utc)
    manifest.update({
        "status": "running",
        "run_id": uuid.uuid4().hex,
        "started": started.isoformat(timespec="seconds"),
        "inputs": {},
        "config": config_to_mapping(cfg),
        "versions": versions(),
        # whether outputs carry pseudonyms, and where the key came from; never the key
        "privacy": {"pseudonymised": secret is not None,
                    "key_env": cfg.privacy.key_env if secret is not None else None},
    })
    write_json(manifest, out / catalog.MANIFEST)
    stages = StageLog()

    with stages.stage("inputs") as st:
        operators = read_operators(spec.operators)
        subs = read_subscribers(spec.subscribers)
        try:
            subscribers = subscribers_from_arrow(subs, cfg.numbers, unknown_dnd=not cfg.privacy.contact_unknown_dnd)
        except ValueError as e:
            raise InputError(f"{spec.subscribers}: {e}") from None
        sub_keys = subscribers.key
        if subscribers.issues["unread_dnd"]:
            log.warning("%s", unread_dnd_message(subscribers.issues["unread_dnd"]))
        if subscribers.issues["null_dnd"]:
            log.warning("%s (quality.json subscribers.null_dnd)",
                        null_dnd_message(subscribers.issues["null_dnd"], cfg.privacy.contact_unknown_dnd))
        n_subs = subs.num_rows
        # The Arrow copy is not needed past here, and Arrow's allocator keeps the pages its
        # conversions used: at 5M subscribers the client held 2.4 GiB here, 1.0 after this.
        subs = None
        pa.default_memory_pool().release_unused()
        source = open_cdrs(spec.cdr, cfg, skip_bad_files=spec.skip_bad_files,
                           worker_memory=0 if spec.scheduler else local_worker_memory(cfg.cluster))
        manifest["inputs"] = {
            "cdr": input_description(spec.cdr),
            "subscribers": {**input_description(spec.subscribers), "rows": n_subs},
            "operators": spec.operators,
        }
        st["subscribers"] = n_subs
        st["cdr_files"] = len(source.files)
        previous = None
        if spec.previous is not None:
            if Path(spec.previous).resolve() == out.resolve():
                raise InputError(f"{spec.previous}: --previous must not be the output directory itself")
            previous = read_previous(spec.previous, cfg.numbers)
            if previous["pseudonymised"] and secret is None:
                raise InputError(f"{spec.previous}: the previous run wrote pseudonyms; run with --pseudonymise "
                                 f"and the same key in ${cfg.privacy.key_env} to continue its circles")
            manifest["inputs"]["previous"] = {"path": str(spec.previous), "as_of": previous["as_of"]}

    fps = stage_fingerprints(cfg=cfg, cdr=spec.cdr, subscribers=spec.subscribers, operators=spec.operators,
                             as_of=spec.as_of, skip_bad_files=spec.skip_bad_files, previous=spec.previous,
                             secret=secret)
    manifest["fingerprints"] = fps
    keep = spec.checkpoints if spec.checkpoints is not None else secret is None
    ck = Checkpoints(out, fps, keep=keep, resume=spec.resume, run_id=manifest["run_id"])

    # Workers write the quarantine and edge datasets into hidden directories; they are
    # renamed into place only when the whole job has succeeded.
    tag = manifest["run_id"][:8]
    qtmp = out / f".{catalog.QUARANTINE}.tmp-{tag}" if cfg.ingest.quarantine else None
    etmp = out / f".{catalog.EDGES}.tmp-{tag}"
    # the datasets the workers write, and their names in a graph checkpoint
    datasets = [(name, d) for name, d in ((catalog.EDGES, etmp), (catalog.QUARANTINE, qtmp)) if d is not None]
    for _, d in datasets:
        shutil.rmtree(d, ignore_errors=True)
    saved = ck.load("graph")
    if saved is not None:  # --resume: the tie table of an earlier run with the same inputs
        with stages.stage("graph") as st:
            st["resumed"] = True
            for name, d in datasets:
                kept = ck.path("graph") / name
                if kept.exists():
                    link_tree(kept, d)
                else:
                    ensure_dir(d)
            edges = pq.read_table(ck.path("graph") / "ties.parquet")
            hub_keys, quality, as_of = saved["hub_keys"], saved["quality"], saved["as_of"]
            handsets = saved.get("handsets")
            st["rows_in"], st["rows_used"] = quality["rows_in"], quality["rows_used"]
            n_edges = st["edges"] = edges.num_rows
        window = Window(as_of, cfg.window.lookback_days, cfg.window.timezone)
    else:
        for _, d in datasets:
            ensure_dir(d)
        client = clients.get()
        compute = make_compute(client, spec.progress)
        with stages.stage("scan") as st:
            now = dt.datetime.now(dt.timezone.utc)
            max_ts, dup_ids = scan(source, compute, need_max_ts=spec.as_of is None, now=now)
            st["duplicated_ids"] = int(dup_ids.size)
        as_of = spec.as_of
        if as_of is None:
            if max_ts is None:
                raise InputError(f"{spec.cdr}: no CDR row has a usable start_time; give --as-of")
            last = dt.datetime.fromtimestamp(max_ts, dt.timezone.utc).date()
            as_of = last + dt.timedelta(days=1)
        window = Window(as_of, cfg.window.lookback_days, cfg.window.timezone)
        n_buckets = default_buckets(cfg, total_threads(client), sum(p.rows for p in source.pieces),
                                    window, worker_memory_limit(client))
        with stages.stage("graph") as st:
            edges, hub_keys, quality = build_graph_edges(
                source, window, cfg, dup_ids, compute, n_buckets,
                None if qtmp is None else str(qtmp), str(etmp), secret=secret,
                handset_keys=_changing_numbers(subscribers, window, cfg))
            handsets = quality.pop("handsets", None)
            st["handsets_seen"] = 0 if handsets is None else int(handsets[0].size)
            st["rows_in"] = quality["rows_in"]
            st["rows_used"] = quality["rows_used"]
            n_edges = st["edges"] = edges.num_rows
            st["service_hubs"] = int(hub_keys.size)
            # data the workers had to put on disk to stay within their memory (scan + graph)
            st["workers_spilled_gib"] = round(spilled_bytes(client) / 2**30, 3)
    manifest["window"] = {"as_of": as_of.isoformat(), "start": window.start_date.isoformat(),
                          "lookback_days": window.lookback_days, "timezone": window.timezone}

    if not quality["balanced"]:  # a bug, never bad input: refuse to publish
        raise RuntimeError(f"row accounting does not balance: {quality}")
    manifest["inputs"]["cdr"]["skipped_files"] = quality["skipped_files"]
    # no usable row: a wrong --as-of, not an empty run
    check_usable_rows(quality, window, spec.cdr, time_setting(cfg))
    check_unread_values(quality, cfg)
    check_clock_zone(quality, cfg.window.timezone, as_of)
    lookback = short_lookback(cfg)
    if lookback:  # said only once the inputs are known to be usable: a refused run says one thing
        log.warning("%s", lookback)
    if ck.keep and saved is None:
        with ck.saving("graph") as staged:
            pq.write_table(edges, staged / "ties.parquet", compression="zstd")
            os.chmod(staged / "ties.parquet", FILE_MODE)
            for name, d in datasets:
                link_tree(d, staged / name)
            ck.save("graph", {"hub_keys": hub_keys, "quality": quality, "as_of": as_of, "handsets": handsets}, staged)

    as_of_day = day_number(as_of)
    with stages.stage("call_graph") as st:
        cols = _graph_inputs(edges)
        del edges  # the arrays are copies: the table would only add to the client's peak
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
        graph = build_call_graph(
            cols.pop("a"), cols.pop("b"), cols.pop("weight"),
            on_net_keys=sub_keys, home_prefixes=tuple(operators["home_prefixes"]),
            operators=operators["operators"], home_operator=operators["home_operator"],
            service_hub_keys=hub_keys, extra_keys=sub_keys,
            events_ab=cols.pop("events_ab"), events_ba=cols.pop("events_ba"),
            tie_arrays=cols,  # emptied as placed
        )
        st["nodes"] = graph.n_nodes
        st["graph_edges"] = graph.n_edges
        after_churn = active_after_churn(subscribers, graph, as_of_day)
        if after_churn:
            log.warning("%d churned subscriber(s) still have CDRs more than a day after their churn date "
                        "(recycled numbers or stale churn dates?): quality.json subscribers.active_after_churn",
                        after_churn)
        spellings = _warn_longer_spellings(graph, sub_keys, cfg.numbers)

    client_side: dict = {}

    def scores_and_changes():
        """The scores and number-change stages, once. They need only the call graph, so the
        circles stage runs them in the client while the workers run Leiden (at 100M CDR rows
        the social layer's giant component keeps one worker busy for ~150 s): the circles
        stage's seconds then include theirs, and the manifest marks it ``overlapped``."""
        if not client_side:
            with stages.stage("scores") as st:
                saved = ck.cached("scores", st, lambda: dict(zip(
                    ("scored", "risk_model"), score_subscribers(graph, subscribers, as_of_day, cfg.scoring))))
                manifest["churn_risk_model"] = saved["risk_model"]
                st["scored"] = len(saved["scored"])
            with stages.stage("number_changes") as st:
                changes = ck.cached("number_changes", st, lambda: detect_number_changes(
                    graph, subscribers, as_of_day, cfg.number_changes, since_day=day_number(window.start_date),
                    handsets=handsets))
                st["reentries"] = int((changes["kind"] == "reentry").sum())
                st["ports"] = int((changes["kind"] == "port").sum())
            client_side.update(scored=saved["scored"], changes=changes)
        return client_side["scored"], client_side["changes"]

    with stages.stage("circles") as st:
        saved = ck.cached("circles", st, lambda: _circles_stage(
            graph, subscribers, as_of_day, cfg, previous, secret, scores_and_changes,
            _leiden_map(clients, spec.progress, out / f".leiden.tmp-{tag}",
                        meanwhile=_beside_workers(scores_and_changes, None if spec.scheduler else cfg.cluster))))
        circles, members, lineage = saved["circles"], saved["members"], saved["lineage"]
        manifest["circles"] = circle_info = saved["info"]
        st["circles"] = len(circles)
        st["flagged"] = circle_info["flagged"]
        if client_side:
            st["overlapped"] = ["scores", "number_changes"]
    clients.close()  # the workers' memory back to the machine for the rest
    scored, changes = scores_and_changes()  # (when the circles came from a checkpoint)

    with stages.stage("offers") as st:
        saved = ck.cached("offers", st, lambda: _offers_stage(circles, members, scored, subscribers, changes,
                                                              cfg, previous, lineage, as_of_day))
        targets, history = saved["targets"], saved["history"]
        st["targets"] = len(targets)

    with stages.stage("backtest") as st:
        # churn after as-of known to the subscriber table: score this run's lists against it
        saved = ck.cached("backtest", st, lambda: {"backtest": backtest(
            subscribers, scored, targets, members, circles, as_of_day, cfg.backtest.horizon_days)})
        manifest["backtest"] = bt = saved["backtest"]
        st["available"] = bt is not None

    with stages.stage("report") as st:
        page = ck.cached("report", st, lambda: render_report(report_inputs(
            graph, subscribers, scored, circles, members, targets, as_of_day=as_of_day,
            window_start_day=day_number(window.start_date), backtest=bt, history=history,
            beyond_chance=circle_info.get("beyond_chance"), contagion_window_days=cfg.contagion.window_days)))
        st["bytes"] = len(page.encode("utf-8"))

    with stages.stage("write") as st:
        with atomic_path(out / catalog.REPORT) as tmp:
            tmp.write_text(page, encoding="utf-8")
        # The write stage was the client's memory peak at 100M CDR rows: the nodes go first so
        # the call graph can go, and Arrow's allocator hands each written table's pages back.
        write_parquet(nodes_table(graph, secret), out / catalog.NODES)
        n_nodes = graph.n_nodes
        graph = None  # the CSR: the biggest thing the client holds
        pool = pa.default_memory_pool()
        pool.release_unused()
        write_parquet(scored_table(scored, secret), out / catalog.SUBSCRIBERS_SCORED, SUBSCRIBERS_SCORED)
        pool.release_unused()
        write_parquet(circles_table(circles, members, secret), out / catalog.CIRCLES, CIRCLES)
        pool.release_unused()
        write_parquet(members_table(members, secret), out / catalog.CIRCLE_MEMBERS, CIRCLE_MEMBERS)
        pool.release_unused()
        write_parquet(changes_table(changes, secret), out / catalog.NUMBER_CHANGES, NUMBER_CHANGES)
        write_parquet(history_table(history), out / catalog.CIRCLE_HISTORY, CIRCLE_HISTORY)
        if lineage is not None:
            write_parquet(pa_table(lineage), out / catalog.CIRCLE_LINEAGE, CIRCLE_LINEAGE)
        else:
            (out / catalog.CIRCLE_LINEAGE).unlink(missing_ok=True)  # not from an older run
        # the Excel copy is for people; past this many rows nobody reads it, and writing it
        # costs minutes (a warehouse loads the CSV)
        xlsx = out / catalog.TARGETS_XLSX if len(targets) <= XLSX_MAX_ROWS else None
        if xlsx is None:
            log.info("targets: %d rows, more than %d: no Excel copy (targets.csv has them all)", len(targets), XLSX_MAX_ROWS)
            (out / catalog.TARGETS_XLSX).unlink(missing_ok=True)
        write_targets(targets, out / catalog.TARGETS, xlsx)
        replace_dir(etmp, out / catalog.EDGES)
        quality["window"] = manifest["window"]
        quality["subscribers"] = subscriber_quality(subscribers, as_of_day, day_number(dt.date.today()))
        quality["subscribers"]["active_after_churn"] = after_churn
        quality["numbers"] = spellings
        write_json(quality, out / catalog.QUALITY)
        if qtmp is not None:
            replace_dir(qtmp, out / catalog.QUARANTINE)
        st["edges"] = n_edges

    manifest["stages"] = stages.stages
    manifest["rows"] = {"cdr_in": quality["rows_in"], "cdr_used": quality["rows_used"],
                        "cdr_quarantined": quality["rows_quarantined"], "edges": n_edges,
                        "nodes": n_nodes}
    manifest["outputs"] = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    manifest["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    manifest["status"] = "complete"
    write_json(manifest, out / catalog.MANIFEST)
    ck.prune()
    return manifest


def _changing_numbers(subscribers, window: Window, cfg: JobConfig) -> np.ndarray:
    """The subscribers a number change could involve, whose handsets the graph stage collects
    from ``caller_imei``: those churned in the window (the old numbers) and those activated in
    it or ``number_changes.lead_days`` before (the new ones): about a tenth of the subscribers
    (49,681 of 515,453 on the 500k operator), where every caller's handsets would come back
    from every CDR file."""
    start = day_number(window.start_date)
    churn, activation = np.asarray(subscribers.churn_day), np.asarray(subscribers.activation_day)
    changing = ((churn >= start) & (churn < NEVER)) | \
        ((activation >= start - cfg.number_changes.lead_days) & (activation < NEVER))
    return np.asarray(subscribers.key, np.int64)[changing]


def _graph_inputs(edges: pa.Table) -> dict:
    """The tie table's columns as the call graph takes them, built one at a time."""
    def col(name, dtype=None):
        arr = edges.column(name).to_numpy()
        return arr if dtype is None else arr.astype(dtype, copy=False)

    out = {"a": col("a"), "b": col("b"), "weight": col("weight")}
    out["events_ab"] = col("calls_ab", np.int32) + col("sms_ab", np.int32)
    out["events_ba"] = col("calls_ba", np.int32) + col("sms_ba", np.int32)
    out["active_days"] = col("active_days")
    blocks = np.empty((edges.num_rows, N_BLOCKS), np.int16)
    for k in range(N_BLOCKS):
        blocks[:, k] = col(f"days_block_{k}")
    out["blocks"] = blocks
    # UTC day numbers of the tie's first and last event (re-entry / port detection)
    out["first_day"] = (col("first_seen") // 86400).astype(np.int32)
    out["last_day"] = (col("last_seen") // 86400).astype(np.int32)
    out["evening_weekend_share"] = col("evening_weekend_share")
    return out


def _leiden_map(clients: LazyClient, progress: bool | None, stage_dir: Path, meanwhile=None):
    """Leiden batches run on the Dask workers, side by side, their inputs passed through
    ``stage_dir`` (a hidden directory of the output, removed afterwards); a layer of one batch
    (a small graph) runs here rather than start a cluster for it. Either way, the same circles.
    ``meanwhile()`` runs in the client while the workers work (:func:`make_task_map`)."""
    def map_tasks(fn, tasks, costs):
        if len(tasks) < 2:
            return serial_map(fn, tasks, costs)
        ensure_dir(stage_dir)
        try:
            return make_task_map(clients.fresh(), str(stage_dir), progress, label="find circles",
                                 meanwhile=meanwhile)(fn, tasks, costs)
        finally:
            shutil.rmtree(stage_dir, ignore_errors=True)
            # The Leiden batches are the cluster's last work in the job: its workers' memory
            # (what their allocators kept, 2.5 GiB at 100M CDR rows) goes back to the machine
            # before the contagion test and the member tables take the client to its peak.
            clients.close()
    return map_tasks


def _beside_workers(fn, local: ClusterConfig | None):
    """``fn`` with the client's numba kernels on the cores the embedded workers leave free
    (at least one; all of them with an external cluster, ``local`` None).

    The workers' Leiden is the critical path of the circles stage (the social giant
    component, ~165 s at 100M CDR rows on one core); with the scores' kernels on two threads
    beside it on a 2-core machine, it took ~207 s. Kernel results do not depend on the
    thread count."""
    def run():
        import numba

        before = numba.get_num_threads()
        if local is not None:
            busy = local_workers(local) * local.threads_per_worker
            numba.set_num_threads(max(1, min(before, (os.cpu_count() or 1) - busy)))
        try:
            return fn()
        finally:
            numba.set_num_threads(before)
    return run


def _offers_stage(circles, members, scored, subscribers, changes, cfg: JobConfig, previous: dict | None,
                  lineage, as_of_day: int) -> dict:
    """The contact list (marking who was listed last run) and the circles' history."""
    # the tables are this job's own, one row per circle / member / subscriber (tested on the
    # job's outputs): their checks cost 10 s at 100M CDR rows
    targets = build_targets(circles, members, scored, subscribers, changes, cfg.offers, check_tables=False)
    targets = mark_previous_targets(targets, None if previous is None else previous["targets"])
    history = carry_history(None if previous is None else previous["history"], lineage,
                            history_rows(circles, targets, as_of_day))
    return {"targets": targets, "history": history}


def _circles_stage(graph, subscribers, as_of_day: int, cfg: JobConfig, previous: dict | None,
                   secret: bytes | None, scores_and_changes, map_tasks) -> dict:
    """Circles (continuing the previous run's ids when given) and their contagion test, which
    needs ``(scored, changes) = scores_and_changes()``."""
    if previous is not None and "key" not in previous["members"]:
        previous["members"] = keys_from_pseudonyms(previous["members"], graph.keys, secret)
    members, circle_info = circle_members(graph, subscribers, as_of_day, cfg.circles,
                                          previous=None if previous is None else previous["members"],
                                          map_tasks=map_tasks)
    lineage, churned_before = None, None
    if previous is not None:  # stable ids: continue the previous run's circles
        members, lineage = match_circles(members, previous["members"], cfg.circles.match_jaccard)
        members = members.sort_values(["circle_id", "key"], kind="stable").reset_index(drop=True)
        churned_before = previous_churn(previous["circles"], lineage)
        circle_info["lineage"] = lineage["event"].value_counts().to_dict()
    scored, changes = scores_and_changes()
    # a watched run otherwise sees nothing between the Leiden bar and the stage's end (~25 s of
    # the test at 100M CDR rows)
    log.info("circles found; testing them for contagion ...")
    diagnostics: dict = {}
    circles, members = circle_contagion(
        members, subscribers, as_of_day, cfg.contagion,
        reentry_keys=changes.loc[changes["kind"] == "reentry", "old_key"].to_numpy(),
        port_keys=changes.loc[changes["kind"] == "port", "old_key"].to_numpy(),
        competitor_share=pd.Series(scored["competitor_share"].to_numpy(), index=scored["key"].to_numpy()),
        previous_churned=churned_before, contacts=subscriber_contacts(graph, subscribers),
        diagnostics=diagnostics,
    )
    circle_info["flagged"] = int(circles["contagion"].sum())
    circle_info["tested"] = int(circles["p_value"].notna().sum())
    circle_info.update(diagnostics)
    return {"circles": circles, "members": members, "lineage": lineage, "info": circle_info}


def _warn_longer_spellings(graph, sub_keys: np.ndarray, numbers) -> dict[str, dict[str, int]]:
    """:func:`pipelines.spellings.spelling_findings` on every number of the call graph, its
    warnings logged; the counts for ``quality.json``. About half a second at 100M CDR rows."""
    found, warnings = spelling_findings(graph.keys, sub_keys, numbers)
    for w in warnings:
        log.warning("%s: quality.json numbers", w)
    return found


def subscriber_contacts(graph, subscribers) -> np.ndarray:
    """Distinct contacts in the call graph of each subscriber row (0 for one not in it)."""
    node = graph.ids_of(subscribers.key)
    return np.where(node >= 0, np.diff(graph.indptr)[np.maximum(node, 0)], 0)


def pseudonym_secret(cfg: JobConfig) -> bytes | None:
    """The pseudonymisation key from the environment (None when not asked for)."""
    import os

    from socialgraph.numbers import MIN_SECRET_BYTES

    if not cfg.privacy.pseudonymise:
        return None
    value = os.environ.get(cfg.privacy.key_env, "")
    if len(value.encode("utf-8")) < MIN_SECRET_BYTES:
        raise InputError(f"pseudonymisation needs a secret of at least {MIN_SECRET_BYTES} bytes in the environment "
                         f"variable {cfg.privacy.key_env} (e.g. export {cfg.privacy.key_env}=$(openssl rand -hex 32))")
    return value.encode("utf-8")


def keys_from_pseudonyms(members: pd.DataFrame, keys: np.ndarray, secret: bytes) -> pd.DataFrame:
    """A pseudonymised previous run's members with number keys, by pseudonymising every number
    of this run's graph with the same key (members unknown to this run cannot be in its circles)."""
    from socialgraph.numbers import pseudonymise_keys

    lookup = pd.Series(keys, index=pseudonymise_keys(keys, secret).to_pandas().to_numpy())
    key = lookup.reindex(members["msisdn"].to_numpy()).to_numpy()
    out = members[~pd.isna(key)].copy()
    out["key"] = key[~pd.isna(key)].astype(np.int64)
    return out.reset_index(drop=True)

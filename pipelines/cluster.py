"""The Dask cluster: an embedded local one by default, or an existing one by address.

Only :mod:`pipelines` creates or connects to a cluster; the engine takes data, never a client.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid

import dask
import psutil
from dask.utils import format_bytes
from distributed import Client, LocalCluster, as_completed

from socialgraph.config import ClusterConfig

log = logging.getLogger("socialgraph")


def local_workers(cfg: ClusterConfig) -> int:
    """Worker processes of the embedded cluster: one per core unless configured."""
    return cfg.n_workers or max(1, os.cpu_count() or 1)


#: The embedded workers' share of the machine's memory. The workers need memory in the graph
#: stage only (spilling past 60-70 % of their limit); the client needs it afterwards, when it
#: holds the aggregated call graph (~310 bytes a tie at its peak, 8.5 GiB at 100M CDR rows),
#: and the machine's other work needs some all along. At 80 % the 100M-row job peaked at
#: 15.1 GiB of 24 (the workers at 12.5 in the graph stage, spilling 3.4 GiB, graph stage
#: 156 s); at 40 %, at 10.0 GiB in that stage (spilling 11 GiB, 199 s). Half is the middle.
WORKERS_SHARE = 0.5


def local_worker_memory(cfg: ClusterConfig) -> int:
    """Each embedded worker's memory limit in bytes: :data:`WORKERS_SHARE` of the machine
    split between them."""
    if cfg.memory_limit == "auto":
        return int(psutil.virtual_memory().total * WORKERS_SHARE / local_workers(cfg))
    from dask.utils import parse_bytes

    return int(parse_bytes(cfg.memory_limit))


@contextlib.contextmanager
def dask_client(scheduler: str | None, cfg: ClusterConfig, local_directory: str | None = None):
    """A ``distributed.Client``: connected to ``scheduler`` or to a new local cluster.

    The local cluster uses worker *processes* (numba kernels and pyarrow both release the GIL,
    but pandas glue does not), one per core by default, and splits the machine's memory
    between them so a worker spills to disk before the machine runs out.
    """
    if scheduler:
        with Client(scheduler, timeout="30s") as client:
            log.info("connected to Dask scheduler %s (%d workers)", scheduler,
                     len(client.scheduler_info().get("workers", {})))
            yield client
        return
    n_workers = local_workers(cfg)
    memory = local_worker_memory(cfg)
    # Dask asks glibc to hand freed memory back to the OS at once (trim threshold 64 KiB), and
    # large arrays are mmapped by default, so every partition's big temporaries page-fault
    # afresh: ~25% of the graph stage. Keeping up to 64 MiB of freed heap per worker cuts that
    # with little effect on peak memory (the next partition reuses the same pages).
    # Under a tight memory limit that kept heap would count against it and pause the worker
    # (Dask pauses a worker at 80 % of its limit, and a paused cluster waits forever): there,
    # keep at most 1/32 of the limit.
    keep = min(64 << 20, memory // 32)
    env = {"MALLOC_TRIM_THRESHOLD_": keep, "MALLOC_MMAP_THRESHOLD_": keep}
    # The settings stay in force for the cluster's whole life, not only while it starts: a worker
    # that Dask restarts (killed past 95 % of its limit) gets a new nanny built from the global
    # config of that moment, and with the defaults it would pause at 80 % and hang the job.
    settings = {"distributed.worker.daemon": False,
                **{f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in env.items()},
                # a paused worker runs nothing until its memory falls, which memory held
                # by the allocators never does: with every worker paused the job would
                # wait forever. Spill to disk (70 %) and, past 95 %, restart instead.
                "distributed.worker.memory.pause": False,
                # a cluster left without workers (seen once at a 450 MiB limit: both nannies
                # gave up) fails the job after a while instead of waiting forever
                "distributed.scheduler.no-workers-timeout": "300s"}
    # Dask sets these in this process's environment to start the workers and leaves them
    # there, where they would override this cluster's (an OS value wins over the config;
    # any earlier cluster in the process, ours or not, leaves its own): cleared for the start,
    # put back afterwards
    saved_env = {k: os.environ.get(k) for k in env}
    for k in env:
        os.environ.pop(k, None)
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=cfg.threads_per_worker,
            processes=True,
            memory_limit=memory,
            # a free port: the default 8787 may be taken by another cluster on the machine
            # (Dask then warns on stderr, which a batch job must not print)
            dashboard_address=":0",
            local_directory=local_directory,
            # Only critical worker logs reach the job's stderr. A worker whose heartbeat is in
            # flight while the cluster closes logs an ERROR with a 30-line traceback ("Failed to
            # communicate with scheduler during heartbeat"): seen at the end of a successful
            # 10M-row run on a busy machine. A task's real failure reaches the client as its
            # exception, and the job reports it.
            silence_logs=logging.CRITICAL,
        )
        try:
            with Client(cluster) as client:
                log.info("started local Dask cluster: %d worker processes x %d thread(s)",
                         n_workers, cfg.threads_per_worker)
                yield client
        finally:
            cluster.close()
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _trim_memory() -> int:
    """Hand the memory freed by the last tasks back to the OS: Arrow's own allocator (mimalloc
    or jemalloc, which keep freed pages for reuse) and glibc's heap."""
    import ctypes

    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        return 0


def _disk_write_bytes(dask_worker) -> int:
    return int(sum(v for k, v in dask_worker.digests_total.items()
                   if isinstance(k, tuple) and "disk-write" in k and k[-1] == "bytes"))


def spilled_bytes(client: Client) -> int:
    """Bytes the workers have written to their spill directories so far (a worker Dask has
    restarted counts from its restart)."""
    try:
        return int(sum(client.run(_disk_write_bytes).values()))
    except Exception:  # a worker going away mid-call: the figure is informational
        return 0


def worker_memory_limit(client: Client) -> int:
    """The smallest memory limit of the cluster's workers in bytes (0: none has one)."""
    limits = [w.get("memory_limit") or 0 for w in client.scheduler_info().get("workers", {}).values()]
    limits = [x for x in limits if x > 0]
    return int(min(limits)) if limits else 0


def total_threads(client: Client) -> int:
    workers = client.scheduler_info().get("workers", {})
    return max(1, sum(w.get("nthreads", 1) for w in workers.values()))


def collect(futures: list, label: str | None = None) -> list:
    """The results of ``futures``, in their order. Each is fetched as soon as it is ready and
    its future released, so the workers free its memory while the rest still run. ``label``:
    a progress bar on stderr (tqdm) that ticks in the same loop; distributed's own bar waits
    for every future before the first result is fetched, which in a terminal held every
    result on the workers to the end."""
    results = [None] * len(futures)
    if not futures:
        return results
    index = {f.key: k for k, f in enumerate(futures)}
    bar = None
    if label is not None:
        from tqdm import tqdm

        bar = tqdm(total=len(futures), desc=f"[socialgraph] {label}", unit="task", file=sys.stderr,
                   dynamic_ncols=True)
    try:
        for fut, value in as_completed(futures, loop=futures[0].client.loop, with_results=True):
            results[index[fut.key]] = value
            fut.release()
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def make_compute(client: Client, show_progress: bool | None = None):
    """A ``compute(*collections, label=...)`` running on ``client`` with a terminal progress bar."""
    if show_progress is None:
        show_progress = sys.stderr.isatty()

    def compute(*objs, label: str = ""):
        # Each result is fetched as soon as it is ready and its future dropped, so workers
        # free memory while the rest still runs instead of holding every result to the end.
        shapes = [len(o) if isinstance(o, (list, tuple)) else None for o in objs]
        flat = [x for o in objs for x in (o if isinstance(o, (list, tuple)) else [o])]
        futures = client.compute(flat)
        results = collect(futures, label if show_progress else None)
        del futures
        client.run(_trim_memory)  # the heap kept for speed goes back to the OS between stages
        out, pos = [], 0
        for n in shapes:
            if n is None:
                out.append(results[pos])
                pos += 1
            else:
                out.append(results[pos:pos + n])
                pos += n
        return tuple(out)

    return compute


#: what a worker holds before its first task (Python, numpy, pandas, pyarrow, igraph, numba)
WORKER_BASE_BYTES = 320 << 20
#: a task's peak working memory per byte of its pickled arguments (Leiden: the igraph graph,
#: its partition and the arrays passed in)
TASK_MEMORY_FACTOR = 10


def _run_from_file(path: str, fn):
    """Run ``fn`` on the arguments pickled at ``path`` (on a worker)."""
    import pickle

    with open(path, "rb") as fh:
        args = pickle.load(fh)
    return fn(*args)


def make_task_map(client: Client, stage_dir: str, show_progress: bool | None = None, label: str = "",
                  meanwhile=None):
    """A ``map_tasks(fn, tasks, costs) -> results`` running each ``fn(*task)`` on the workers.

    The engine's batched steps (Leiden on batches of components) take such a function, so
    they stay free of Dask. Tasks are started costliest first (a long task started last would
    leave the other workers idle at the end); results come back in task order. A worker lost
    mid-task has its task re-run elsewhere by the scheduler.

    Each task's arguments are written to ``stage_dir`` (a directory the workers can read: the
    output directory's) and the worker reads them when it starts the task. Sending
    them through Dask instead (scatter, or inside the task) needs the receiving worker's event
    loop, which a worker running igraph (it holds the GIL) does not run: at 100M CDR rows
    scattering the batches stalled 160 s behind the largest Leiden run.

    A task too big for the workers' memory limit (estimated as :data:`TASK_MEMORY_FACTOR`
    times its pickled arguments on top of :data:`WORKER_BASE_BYTES`) runs here in the client
    instead, while the workers run the rest: with 700 MiB workers, Leiden on the 1M-subscriber
    world's giant component killed every worker it was sent to.

    ``meanwhile()``, if given, is called once all tasks are out, before waiting for them: the
    client's own work that does not need their results runs while the workers run them.
    """
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    limit = worker_memory_limit(client)

    def map_tasks(fn, tasks: list[tuple], costs: list[float]) -> list:
        import pickle

        order = sorted(range(len(tasks)), key=lambda i: (-costs[i], i))
        tag = uuid.uuid4().hex[:8]
        futures, here, largest = {}, [], 0
        for rank, i in enumerate(order):
            key = f"{getattr(fn, '__name__', 'task')}-{tag}-{i}"
            path = os.path.join(stage_dir, f"{key}.pkl")
            with open(path, "wb") as fh:
                pickle.dump(tasks[i], fh, protocol=5)
            size = os.path.getsize(path)
            largest = max(largest, size)
            if limit and WORKER_BASE_BYTES + TASK_MEMORY_FACTOR * size > 0.85 * limit:
                here.append((i, path))
                continue
            futures[i] = client.submit(_run_from_file, path, fn, key=key, priority=len(order) - rank, pure=False)
        results = [None] * len(tasks)
        log.debug("%s: %d task(s), largest %s pickled", label or "tasks", len(tasks), format_bytes(largest))
        if here:
            log.info("%s: %d task(s) too big for workers of %s run in the client", label or "tasks",
                     len(here), format_bytes(limit))
        if meanwhile is not None:
            meanwhile()
        for i, path in here:
            results[i] = _run_from_file(path, fn)
        fetched = collect(list(futures.values()), (label or "tasks") if show_progress else None)
        for i, value in zip(futures, fetched):
            results[i] = value
        return results

    return map_tasks


#: see :meth:`LazyClient.fresh`
RESTART_ABOVE_BYTES = 512 * 2**20


def _rss_bytes() -> int:
    return psutil.Process().memory_info().rss


class LazyClient:
    """The job's Dask client, started on first use and closed by :meth:`close`.

    A run resumed past the graph stage, or whose circles fit one Leiden batch, starts no
    cluster at all."""

    def __init__(self, scheduler: str | None, cfg: ClusterConfig):
        self.scheduler, self.cfg = scheduler, cfg
        self._stack = contextlib.ExitStack()
        self._client: Client | None = None

    def get(self) -> Client:
        if self._client is None:
            self._client = self._stack.enter_context(dask_client(self.scheduler, self.cfg, local_directory=None))
        return self._client

    def fresh(self) -> Client:
        """The client, with fresh worker processes if the largest of the embedded cluster's
        workers holds more than :data:`RESTART_ABOVE_BYTES` beyond a fresh worker's.

        A worker's allocators keep much of what the graph stage used (~0.9 GiB a worker at
        100M CDR rows, after trimming); restarting frees it for the next work (Leiden, beside
        the scores in the client) but costs ~5 s and the workers' imports again, which a
        small job feels (the 10M-row world's workers stay below the threshold). An external
        cluster's workers are not ours to restart."""
        if self._client is not None and self.scheduler is None:
            try:
                held = max(self._client.run(_rss_bytes).values(), default=0)
            except Exception:  # a worker going away: nothing to decide on
                held = 0
            if held > WORKER_BASE_BYTES + RESTART_ABOVE_BYTES:
                log.info("restarting the workers (the largest holds %s)", format_bytes(held))
                self._client.restart()
            return self._client
        return self.get()

    def close(self) -> None:
        self._client = None
        self._stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

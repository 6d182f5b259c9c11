"""The embedded local cluster keeps its settings for its whole life.

Under a tight memory limit Dask restarts a worker that passes 95 % of it. The restarted worker
must still never pause (a paused worker whose memory is held by the allocator never resumes:
the job hung there once, with every worker paused) and must still get the allocator settings.
"""

from __future__ import annotations

import os
import signal
import time

import dask
import pytest

from pipelines.cluster import dask_client
from socialgraph.config import ClusterConfig


def _settings(dask_worker):
    return (dask_worker.memory_manager.memory_pause_fraction,
            os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.getpid())


def test_a_restarted_worker_keeps_the_no_pause_and_allocator_settings():
    limit = 512 << 20
    before = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    with dask_client(None, ClusterConfig(n_workers=1, memory_limit="512MiB")) as client:
        ((addr, (pause, trim, pid)),) = client.run(_settings).items()
        assert pause is False and trim == str(limit // 32)
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(0.5)
            try:
                now = client.run(_settings)
            except Exception:  # the worker is coming back
                continue
            if now and next(iter(now.values()))[2] != pid:
                break
        else:
            raise AssertionError("the killed worker did not come back")
        ((_, (pause, trim, new_pid)),) = now.items()
        assert new_pid != pid
        assert pause is False, "a restarted worker would pause at 80 % of its limit"
        assert trim == str(limit // 32)
    # the settings are the cluster's, not left behind in the caller's config or environment
    assert dask.config.get("distributed.worker.memory.pause") != False  # noqa: E712
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") == before


def test_a_second_cluster_in_the_same_process_gets_its_own_allocator_settings():
    for limit in (512 << 20, 1 << 30):
        with dask_client(None, ClusterConfig(n_workers=1, memory_limit=str(limit))) as client:
            ((_, (_, trim, _)),) = client.run(_settings).items()
        assert trim == str(min(64 << 20, limit // 32))


_QUICK_DONE = []  # the in-process workers share this module


def _held_until_fetched(i):
    """Task 0 watches its worker: True once task 1 has run and the worker has forgotten it.

    The worker's task table holds task 1 from its start (executing) until the client releases
    its result, so its absence after task 1 ran means the result was fetched and released."""
    from distributed import get_worker

    if i == 1:
        _QUICK_DONE.append(time.time())
        return "quick"
    state, deadline = get_worker().state, time.time() + 30
    while time.time() < deadline:
        known = any(str(k).startswith("_held_until_fetched-") and str(k).endswith("-1") for k in list(state.tasks))
        if _QUICK_DONE and not known:
            return True  # fetched and released while this task still runs
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("show_progress", [False, True])
def test_each_result_leaves_the_workers_as_soon_as_it_is_ready(tmp_path, capsys, show_progress):
    """With or without the progress bar, a finished task's result is fetched and released while
    the others still run (distributed's own bar waited for every task first: task 1's result
    stayed on the worker until task 0 gave up)."""
    from distributed import Client, LocalCluster

    from pipelines.cluster import make_task_map

    _QUICK_DONE.clear()
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as client:
        map_tasks = make_task_map(client, str(tmp_path), show_progress=show_progress, label="watch")
        results = map_tasks(_held_until_fetched, [(0,), (1,)], [2.0, 1.0])
    assert results == [True, "quick"]  # in task order, whatever order they finished in
    err = capsys.readouterr().err
    assert ("watch" in err and "2/2" in err) == show_progress

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

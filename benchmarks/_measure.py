"""Run a command in a child process and measure its wall time and peak memory.

Peak memory is the largest sum of resident memory over the whole process tree (a Dask run's
scheduler, nanny and worker processes included), sampled every 50 ms. The samples are kept as a
timeline (seconds, client RSS, rest-of-tree RSS) so that a caller who knows when each stage ran
can say which stage reached the peak, and whether the client or the workers held it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil


def _rss(p: psutil.Process) -> int:
    try:
        return p.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """(resident bytes of ``proc`` itself, of all its descendants together)."""
    try:
        children = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    return _rss(proc), sum(_rss(c) for c in children)


def run_measured(args: list[str], timeout: float = 3600) -> dict:
    """Run ``python args...``; the child prints one JSON line last. Adds ``peak_rss_gib``,
    ``started`` (epoch seconds) and ``timeline``: one ``[seconds, client_bytes, rest_bytes]`` a
    sample, thinned to the samples where the total changed by 16 MiB or more."""
    t0 = time.perf_counter()
    started = time.time()
    child = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    proc = psutil.Process(child.pid)
    peak = 0
    timeline: list[list[float]] = []
    last = -(2**40)
    while child.poll() is None:
        own, rest = tree_rss(proc)
        peak = max(peak, own + rest)
        if abs(own + rest - last) >= 2**24:
            timeline.append([round(time.perf_counter() - t0, 2), own, rest])
            last = own + rest
        if time.perf_counter() - t0 > timeout:
            child.kill()
            raise TimeoutError(" ".join(args))
        time.sleep(0.05)
    out = child.stdout.read()
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {child.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_gib"] = peak / 2**30
    result["started"] = started
    result["timeline"] = timeline
    result["process_seconds"] = time.perf_counter() - t0
    return result

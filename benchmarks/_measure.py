"""Run a command in a child process and measure its wall time and peak memory.

Peak memory is the largest sum of resident memory over the whole process tree (a Dask run's
scheduler, nanny and worker processes included), sampled every 50 ms.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_measured(args: list[str], timeout: float = 3600) -> dict:
    """Run ``python args...``; the child prints one JSON line last. Adds ``peak_rss_gib``."""
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    proc = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss(proc))
        if time.perf_counter() - t0 > timeout:
            child.kill()
            raise TimeoutError(" ".join(args))
        time.sleep(0.05)
    out = child.stdout.read()
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {child.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_gib"] = peak / 2**30
    result["process_seconds"] = time.perf_counter() - t0
    return result

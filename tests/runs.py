"""Whole runs of the console script, and the check that two runs' outputs agree: shared by the
tests that write the synthetic operator the way a real export comes (messy Parquet, CSV) and
expect the clean world's results."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd

from scripts import console_script


def socialgraph(*args: str) -> subprocess.CompletedProcess:
    """``socialgraph ARGS`` as a user runs it (no terminal), its output captured."""
    return subprocess.run([console_script("socialgraph"), *args], capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def assert_same_outputs(want: Path, got: Path) -> None:
    """Two runs' row accounting, ties, circles, members, scores and contact list agree."""
    q_want = json.loads((want / "quality.json").read_text())
    q_got = json.loads((got / "quality.json").read_text())
    for key in ("rows_in", "rows_used", "quarantined_by_reason", "subscribers"):
        assert q_got[key] == q_want[key], key
    for name in ("edges.parquet", "circles.parquet", "circle_members.parquet", "subscribers_scored.parquet"):
        a, b = pd.read_parquet(want / name), pd.read_parquet(got / name)
        assert a.columns.tolist() == b.columns.tolist() and len(a) == len(b) > 0, name
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=name)
    assert (got / "targets.csv").read_text(encoding="utf-8") == (want / "targets.csv").read_text(encoding="utf-8")

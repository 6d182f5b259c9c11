"""Where the test run's console scripts are: beside the interpreter (the venv), else on PATH."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def console_script(name: str) -> str:
    """The path of console script ``name``; skips the test when it is not installed."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"the {name} console script is not installed")
    return found

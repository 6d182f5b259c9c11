"""Reading inputs and writing outputs: file listing, schema checks, atomic writes.

Every output file is written to a hidden temporary name in the same directory and renamed into
place when complete, so an interrupted run never leaves a file that looks complete but is not.
Outputs are created owner-only (0600 files, 0700 directories): they hold personal data.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from socialgraph.schema import CDR_INPUT, SUBSCRIBER_INPUT, check_input_schema

FILE_MODE = 0o600
DIR_MODE = 0o700
PARQUET_EXT = (".parquet", ".parq", ".pq")


class InputError(ValueError):
    """Input that cannot be used; the message is one line naming the file and the problem."""


def list_parquet_files(path: str) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """Files behind a file path, a directory (recursive, hive partitions allowed) or a glob."""
    fs, _, paths = fsspec.get_fs_token_paths(str(path))
    files: list[str] = []
    for p in paths:
        if fs.isdir(p):
            files += [f for f in fs.find(p) if f.endswith(PARQUET_EXT) and not _hidden(f, p)]
        elif fs.isfile(p):
            files.append(p)
    if not files:
        raise InputError(f"{path}: no Parquet files found (give a file, a directory or a glob)")
    return fs, sorted(files)


def _hidden(f: str, root: str) -> bool:
    rel = f[len(root):].lstrip("/")
    return any(part.startswith((".", "_")) for part in rel.split("/"))


def check_cdr_files(fs, files: list[str], rename: dict[str, str]) -> list[str]:
    """Check every CDR file's schema (metadata only); return the input column names to read."""
    columns: set[str] = set()
    contract_of = rename
    input_of = {v: k for k, v in rename.items()}
    for f in files:
        try:
            with fs.open(f, "rb") as fh:
                schema = pq.read_schema(fh)
        except Exception as e:  # noqa: BLE001 - any unreadable file is one clear line
            raise InputError(f"{f}: not a readable Parquet file ({type(e).__name__}: {e})") from None
        renamed = pa.schema([fld.with_name(contract_of.get(fld.name, fld.name)) for fld in schema])
        try:
            present = check_input_schema(renamed, CDR_INPUT, f)
        except ValueError as e:
            msg = str(e)
            for contract, inp in input_of.items():
                if inp != contract:
                    msg = msg.replace(f"column {contract!r}", f"column {inp!r} (contract {contract!r})")
            raise InputError(msg) from None
        columns.update(present)
    return sorted(columns, key=list(CDR_INPUT).index)


def read_subscribers(path: str) -> pa.Table:
    """The subscriber table with its schema checked."""
    fs, files = list_parquet_files(path)
    tables = []
    for f in files:
        with fs.open(f, "rb") as fh:
            t = pq.read_table(fh)
        try:
            cols = check_input_schema(t.schema, SUBSCRIBER_INPUT, f)
        except ValueError as e:
            raise InputError(str(e)) from None
        tables.append(t.select(cols))
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def read_operators(path: str | None) -> dict:
    """The operator prefix file (YAML); ``{}`` when not given."""
    if path is None:
        return {"home_operator": "home", "home_prefixes": [], "operators": {}}
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: operators file not found")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    known = {"home_operator", "home_prefixes", "operators"}
    for k in data:
        if k not in known:
            raise InputError(f"{p}: unknown key {k!r}; known keys: {', '.join(sorted(known))}")
    ops = {str(k): str(v) for k, v in (data.get("operators") or {}).items()}
    for prefix in ops:
        if not prefix.isdigit():
            raise InputError(f"{p}: operator prefix {prefix!r} must be digits")
    return {
        "home_operator": str(data.get("home_operator", "home")),
        "home_prefixes": [str(x) for x in data.get("home_prefixes") or []],
        "operators": ops,
    }


def input_description(path: str) -> dict:
    """Path, file count and total bytes of an input (for the manifest)."""
    fs, files = list_parquet_files(path)
    return {"path": str(path), "files": len(files), "bytes": int(sum(fs.size(f) or 0 for f in files))}


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        os.chmod(path, DIR_MODE)
    return path


@contextlib.contextmanager
def atomic_path(target: Path):
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    ensure_dir(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_parquet(table: pa.Table, target: Path, schema: pa.Schema | None = None) -> None:
    """Write a table atomically, cast to ``schema`` (the contract's) when given."""
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_json(data: dict, target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def replace_dir(tmp_dir: Path, target: Path) -> None:
    """Move a fully written dataset directory into place, replacing an older one."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        _remove(old)
        os.replace(target, old)
    os.replace(tmp_dir, target)
    if old is not None:
        _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

"""Reading inputs and writing outputs: file listing, schema checks, atomic writes.

Every output file is written to a hidden temporary name in the same directory and renamed into
place when complete, so an interrupted run never leaves a file that looks complete but is not.
Outputs are created owner-only (0600 files, 0700 directories): they hold personal data.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from socialgraph.numbers import format_numbers
from socialgraph.schema import CDR_INPUT, SUBSCRIBER_INPUT, TARGETS, check_input_schema

from . import times

FILE_MODE = 0o600
DIR_MODE = 0o700
PARQUET_EXT = (".parquet", ".parq", ".pq")
#: CSV exports by name (any case), and the compressions ``socialgraph convert`` opens by extension
CSV_EXT = (".csv", ".tsv", ".txt")
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}


def compression_of(path: Path) -> str | None:
    return _COMPRESSION.get(Path(path).suffix.lower())


def is_csv(path: str | Path) -> bool:
    """A CSV export by its name (``.csv``, ``.tsv``, ``.txt``, compressed or not)."""
    name = Path(path).name.lower()
    if compression_of(Path(path)):
        name = name[: -len(Path(path).suffix)]
    return name.endswith(CSV_EXT)


def _csv_hint(path: str, n: int) -> str:
    return (f"{path}: {'a CSV file' if n == 1 else f'{n} CSV files'} and no Parquet; the job reads Parquet: "
            f"socialgraph convert {path} --out DIR converts {'it' if n == 1 else 'them'} (every value kept as "
            "written), then give DIR")


class InputError(ValueError):
    """Input that cannot be used; the message is one line naming the file and the problem."""


#: requests to the input's file system in flight at once (file facts, CDR footers): object
#: storage answers each in tens of milliseconds, so thousands of hourly CDR files, one request
#: after the other, kept the client busy for minutes before any work started
IO_THREADS = 32


def each_file(fn, files: list) -> list:
    """``[fn(f) for f in files]``, in order, with up to :data:`IO_THREADS` calls at once (each
    waits on the file system, not on Python)."""
    if len(files) < 2:
        return [fn(f) for f in files]
    with ThreadPoolExecutor(min(IO_THREADS, len(files)), thread_name_prefix="socialgraph-io") as pool:
        return list(pool.map(fn, files))


def list_parquet_files(path: str) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """Files behind a file path, a directory (recursive, hive partitions allowed) or a glob."""
    fs, infos = parquet_file_infos(path)
    return fs, sorted(infos)


def parquet_file_infos(path: str) -> tuple[fsspec.AbstractFileSystem, dict[str, dict]]:
    """:func:`list_parquet_files` with each file's facts (``size``, a modification time or
    tag), as the file system's listing gives them: a directory is one listing however many
    files it holds, and the paths a glob names are looked up side by side."""
    fs, _, paths = fsspec.get_fs_token_paths(str(path))
    infos: dict[str, dict] = {}

    def lookup(p):
        try:
            return fs.info(p)
        except FileNotFoundError:
            return None

    csv_files = 0
    for p, info in zip(paths, each_file(lookup, paths)):
        if info is None:
            continue
        if info.get("type") == "directory":
            found = fs.find(p, detail=True)
            infos.update((f, i) for f, i in found.items() if f.endswith(PARQUET_EXT) and not _hidden(f, p))
            csv_files += sum(1 for f in found if is_csv(f) and not _hidden(f, p))
        elif info.get("type") == "file":
            if is_csv(p):
                csv_files += 1
                continue
            infos[p] = info
    if not infos and csv_files:
        raise InputError(_csv_hint(path, csv_files))
    if not infos:
        raise InputError(f"{path}: no Parquet files found (give a file, a directory or a glob)")
    return fs, infos


def _hidden(f: str, root: str) -> bool:
    rel = f[len(root):].lstrip("/")
    return any(part.startswith((".", "_")) for part in rel.split("/"))


#: the fix an error about one unreadable CDR file offers (besides repairing the file)
SKIP_HINT = "repair or remove it, or pass --skip-bad-files to skip it and count it in quality.json"

#: CDR columns that hold text; a file may store them as ``binary`` (bytes of any encoding)
TEXT_COLUMNS = ("caller", "callee", "event_type", "cdr_id", "caller_imei")


@dataclass(frozen=True)
class CdrFile:
    """One CDR file as its footer describes it (nothing of its data has been read).

    ``columns`` are the input names of the contract columns it holds; ``error`` says why the
    file cannot be used (footer unreadable, schema wrong), and is set only when bad files are
    skipped.
    """

    path: str
    columns: tuple[str, ...] = ()
    row_group_rows: tuple[int, ...] = ()
    row_group_bytes: tuple[int, ...] = ()
    error: str | None = None

    @property
    def rows(self) -> int:
        return int(sum(self.row_group_rows))


def _text_as_string(field: pa.Field) -> pa.Field:
    if field.name in TEXT_COLUMNS and (pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)):
        return field.with_type(pa.string())  # read as bytes, checked row by row (ingest)
    return field


def _cdr_spec(time_format: str | None, time_unit: str | None):
    """The CDR input spec, with ``start_time`` also accepting text or numbers when the job
    config says how to read them (:mod:`pipelines.times`)."""
    if time_format is None and time_unit is None:
        return CDR_INPUT

    def ok(t):
        return (pa.types.is_timestamp(t) or (time_format is not None and times.is_text(t))
                or (time_unit is not None and times.is_number(t)))

    what = " or ".join(w for w, on in (("a timestamp", True), ("text (ingest.start_time_format)", time_format),
                                       ("a number (ingest.start_time_unit)", time_unit)) if on)
    return {**CDR_INPUT, "start_time": (True, ok, what)}


def _stats_range(meta, name: str) -> tuple:
    """``(min, max)`` of a column from the first row group whose footer statistics hold them."""
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for i in range(rg.num_columns):
            c = rg.column(i)
            if c.path_in_schema == name and c.statistics is not None and c.statistics.has_min_max:
                return c.statistics.min, c.statistics.max
    return None, None


def _check_start_time(meta, field: pa.Field, time_format: str | None, time_unit: str | None) -> None:
    """Refuse a text or number ``start_time`` that the configured format or unit reads in
    neither its smallest nor its largest value (statistics; a few bad values are quarantined
    row by row, a wrong format would quarantine them all)."""
    typ = field.type
    if pa.types.is_timestamp(typ):
        return
    lo, hi = _stats_range(meta, field.name)
    if lo is None:
        return
    if times.is_text(typ) and time_format is not None:
        if times.parse_text(pa.array([str(lo), str(hi)]), time_format).null_count == 2:
            guess = times.guess_format(str(lo)) or times.guess_format(str(hi))
            raise ValueError(f"column 'start_time' values such as {str(lo)[:40]!r} do not read with "
                             f"ingest.start_time_format {time_format!r}"
                             + (f" (they read with ingest.start_time_format: {guess!r})" if guess else ""))
    elif times.is_number(typ) and time_unit is not None:
        read = times.parse_number(pa.array([lo, hi], pa.float64()), time_unit)
        if not any(times.plausible(None if v is None else v.value) for v in read):
            guess = times.guess_unit(hi) or times.guess_unit(lo)
            raise ValueError(f"column 'start_time' values such as {hi} are not a date from 1990 to 2099 in "
                             f"ingest.start_time_unit {time_unit!r}"
                             + (f" (they read as dates with ingest.start_time_unit: {guess})" if guess else ""))


def check_cdr_files(fs, files: list[str], rename: dict[str, str], skip_bad_files: bool = False,
                    time_format: str | None = None, time_unit: str | None = None) -> tuple[list[str], list[CdrFile]]:
    """Check every CDR file's footer and schema (no data read).

    Returns the contract column names to read and one :class:`CdrFile` per file. A file that
    cannot be used raises :class:`InputError` naming it and the fix, or with
    ``skip_bad_files`` comes back with its ``error`` set. ``time_format`` / ``time_unit``
    (``ingest.start_time_format`` / ``_unit``) let ``start_time`` be text or numbers; a
    column of either without them is refused with the setting that reads it.
    """
    spec = _cdr_spec(time_format, time_unit)
    columns: set[str] = set()
    contract_of = rename
    input_of = {v: k for k, v in rename.items()}
    remapped = {c for i, c in rename.items() if i != c}

    def footer(f):
        try:
            with fs.open(f, "rb") as fh:
                pf = pq.ParquetFile(fh)
                return pf.metadata, pf.schema_arrow
        except Exception as e:  # noqa: BLE001 - judged below, file by file in order
            return e

    out = []
    for f, got in zip(files, each_file(footer, files)):
        if isinstance(got, MemoryError):
            raise got
        if isinstance(got, Exception):  # any unreadable file is one clear line
            reason = f"not a readable Parquet file ({type(got).__name__}: {' '.join(str(got).split())})"
            if not skip_bad_files:
                raise InputError(f"{f}: {reason}; {SKIP_HINT}") from None
            out.append(CdrFile(f, error=reason))
            continue
        meta, schema = got
        renamed = pa.schema([_text_as_string(fld.with_name(contract_of.get(fld.name, fld.name))) for fld in schema
                             # a contract name the config reads from another column is not that column
                             if fld.name in contract_of or fld.name not in remapped])
        try:
            present = check_input_schema(renamed, spec, f)
            if "start_time" in present:
                time_field = renamed.field("start_time").with_name(input_of.get("start_time", "start_time"))
                try:
                    _check_start_time(meta, time_field, time_format, time_unit)
                except ValueError as e:
                    raise ValueError(f"{f}: {e}") from None
        except ValueError as e:
            msg = str(e)
            if "column 'start_time' has type" in msg:
                field = renamed.field("start_time")
                msg += times.time_hint(field.type, _stats_range(meta, input_of.get("start_time", "start_time")))
            for contract, inp in input_of.items():
                if inp != contract:
                    msg = msg.replace(f"column {contract!r}", f"column {inp!r} (contract {contract!r})")
            if not skip_bad_files:
                raise InputError(msg) from None
            out.append(CdrFile(f, error=msg.removeprefix(f"{f}: ")))
            continue
        columns.update(present)
        groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
        out.append(CdrFile(f, tuple(input_of.get(c, c) for c in present),
                           tuple(g.num_rows for g in groups), tuple(g.total_byte_size for g in groups)))
    return sorted(columns, key=list(spec).index), out


def read_subscribers(path: str) -> pa.Table:
    """The subscriber table with its schema checked."""
    fs, files = list_parquet_files(path)
    tables = []
    for f in files:
        try:
            with fs.open(f, "rb") as fh:
                t = pq.read_table(fh)
        except Exception as e:  # noqa: BLE001 - one clear line naming the file
            raise InputError(f"{f}: not a readable Parquet file ({type(e).__name__}: "
                             f"{' '.join(str(e).split())}); repair or replace the subscriber file") from None
        try:
            cols = check_input_schema(t.schema, SUBSCRIBER_INPUT, f)
        except ValueError as e:
            raise InputError(str(e)) from None
        tables.append(t.select(cols))
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    if table.num_rows == 0:  # no on-net number: nothing to score, no circle to offer anything to
        raise InputError(f"{path}: the subscriber table has no rows; it must list the operator's own numbers")
    return table


def read_operators(path: str | None) -> dict:
    """The operator prefix file (YAML); ``{}`` when not given.

    Every value is read as written (YAML's base schema): an unquoted prefix ``0130`` stays
    ``"0130"``, where YAML's usual rules would make it the octal number 88, and ``130`` is
    ``"130"``.
    """
    if path is None:
        return {"home_operator": "home", "home_prefixes": [], "operators": {}}
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: operators file not found")
    try:
        data = yaml.load(p.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    except yaml.YAMLError as e:
        raise InputError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a UTF-8 text file") from None
    known = {"home_operator", "home_prefixes", "operators"}
    if data in (None, ""):
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{p}: expected a mapping with the keys {', '.join(sorted(known))}")
    for k in data:
        if k not in known:
            raise InputError(f"{p}: unknown key {k!r}; known keys: {', '.join(sorted(known))}")
    ops = data.get("operators") or {}
    if not isinstance(ops, dict):
        raise InputError(f"{p}: operators must map prefixes to operator names, e.g. {{'130': CompA}}")
    home = data.get("home_prefixes") or []
    if isinstance(home, str):
        home = [home]
    if not isinstance(home, list):
        raise InputError(f"{p}: home_prefixes must be a list of prefixes, e.g. ['138']")
    for prefix in [*ops, *home]:
        if not (isinstance(prefix, str) and prefix.isdigit()):
            raise InputError(f"{p}: operator prefix {prefix!r} must be digits")
    for name in ops.values():
        if not (isinstance(name, str) and name.strip()):
            raise InputError(f"{p}: every prefix needs an operator name, got {name!r}")
    home_operator = data.get("home_operator") or "home"
    if not isinstance(home_operator, str):
        raise InputError(f"{p}: home_operator must be a name, got {home_operator!r}")
    return {"home_operator": home_operator, "home_prefixes": list(home), "operators": dict(ops)}


def input_description(path: str) -> dict:
    """Path, file count and total bytes of an input (for the manifest)."""
    _, infos = parquet_file_infos(path)
    return {"path": str(path), "files": len(infos), "bytes": int(sum(i.get("size") or 0 for i in infos.values()))}


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


#: the hidden temporaries a run keeps next to its outputs: files of :func:`atomic_path`
#: (``.NAME.XXXX.tmp``), datasets the workers are writing (``.NAME.tmp-RUNID``) and a dataset
#: being replaced (``.NAME.old``)
_TEMPORARY = re.compile(r"\..+(\.tmp|\.tmp-[0-9a-f]+|\.old)")


def remove_leftovers(directory: Path) -> list[str]:
    """Remove the temporaries an interrupted run left in an output directory; return their names.

    A killed run cannot clean up after itself, so the next run into the same directory does
    (one run per output directory at a time). Only hidden names of the forms the writers
    here use are touched.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for name in (".edges.parquet.tmp-0a1b2c3d", ".circles.parquet.k3j4.tmp", ".keep", "circles.parquet"):
    ...         _ = (Path(d) / name).write_text("")
    ...     remove_leftovers(Path(d)), sorted(p.name for p in Path(d).iterdir())
    (['.circles.parquet.k3j4.tmp', '.edges.parquet.tmp-0a1b2c3d'], ['.keep', 'circles.parquet'])
    """
    removed = []
    for path in sorted(Path(directory).iterdir()):
        if _TEMPORARY.fullmatch(path.name):
            _remove(path)
            removed.append(path.name)
    return removed


# decimals of the float columns of the contact list (money to the cent, risk to 1/10000)
_TARGET_DECIMALS = {"churn_risk": 4, "value_at_stake": 2, "arpu": 2}
_EXCEL_MAX_ROWS = 1_048_576  # per sheet, header included
_EXCEL_MAX_WIDTH = {"reason": 100}


#: columns a run adds after build_targets (history); a list without them has never been sent
_TARGET_DEFAULTS = {"circle_targeted_last_run": False, "listed_last_run": False}


def _targets_table(targets: pd.DataFrame) -> pa.Table:
    """The contact list in the ``TARGETS`` schema: ``key`` formatted as ``msisdn``, floats rounded."""
    targets = targets.assign(**{c: v for c, v in _TARGET_DEFAULTS.items() if c not in targets.columns})
    need = ["key"] + [n for n in TARGETS.names if n != "msisdn"]
    missing = [c for c in need if c not in targets.columns]
    if missing:
        raise ValueError(f"write_targets: the target list lacks column(s) {', '.join(missing)} "
                         "(build it with socialgraph.offers.build_targets)")
    columns = {}
    for f in TARGETS:
        if f.name == "msisdn":
            columns[f.name] = format_numbers(targets["key"].to_numpy(np.int64))
        elif f.name in _TARGET_DECIMALS:
            values = targets[f.name].to_numpy(np.float64).round(_TARGET_DECIMALS[f.name])
            columns[f.name] = pa.array(values, f.type, from_pandas=True)  # NaN -> empty cell
        else:
            columns[f.name] = pa.array(targets[f.name].to_numpy(), f.type, from_pandas=True)
    return pa.table(columns, schema=TARGETS)


def _text_columns(table: pa.Table) -> list[list[str]]:
    out = []
    for f in TARGETS:
        values = table.column(f.name).to_pylist()
        if f.name in _TARGET_DECIMALS:
            fmt = f"{{:.{_TARGET_DECIMALS[f.name]}f}}"
            out.append(["" if v is None else fmt.format(v) for v in values])
        else:
            # booleans as true/false: what warehouse loaders and spreadsheets both read
            out.append(["" if v is None else ("true" if v else "false") if isinstance(v, bool) else str(v)
                        for v in values])
    return out


def write_targets(targets: pd.DataFrame, csv_path: Path, xlsx_path: Path | None = None) -> None:
    """Write the contact list as CSV and, if ``xlsx_path`` is given, as an Excel copy.

    CSV: UTF-8 without a BOM (warehouse loaders choke on one), a header row, comma separated,
    ``\\n`` line ends, numbers as digit text, ``churn_risk`` to 4 decimals and money to 2, an
    empty cell for a missing value (``churn_risk`` of bring-back rows). Excel: the same
    columns, every text cell (``msisdn`` above all: Excel would show 1.38E+10) written as text
    and never as a formula, a frozen header row, an autofilter and readable widths; a list
    longer than a sheet continues on further sheets. Both files are written atomically and
    together (neither replaces an older file unless both are complete), owner-only (0600).

    Parameters
    ----------
    targets : DataFrame
        The result of :func:`socialgraph.offers.build_targets` (``key`` plus the other
        ``TARGETS`` columns); ``key`` becomes the ``msisdn`` text column.
    csv_path : Path
    xlsx_path : Path or None
        No Excel copy when None.

    Examples
    --------
    >>> import tempfile
    >>> from socialgraph.offers import TARGET_COLUMNS
    >>> empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in TARGET_COLUMNS.items()})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_targets(empty, Path(d) / "targets.csv", Path(d) / "targets.xlsx")
    ...     print((Path(d) / "targets.csv").read_text(encoding="utf-8"), end="")
    priority,circle_id,kind,msisdn,role,offer,churn_risk,reason,value_at_stake,arpu,circle_targeted_last_run,listed_last_run
    """
    table = _targets_table(targets)
    text = _text_columns(table)
    with atomic_path(Path(csv_path)) as tmp_csv:
        with open(tmp_csv, "w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(TARGETS.names)
            out.writerows(zip(*text))
        if xlsx_path is not None:
            with atomic_path(Path(xlsx_path)) as tmp_xlsx:
                _write_targets_xlsx(table, text, tmp_xlsx)


def _write_targets_xlsx(table: pa.Table, text: list[list[str]], path: Path) -> None:
    import xlsxwriter  # only needed for the Excel copy

    # constant_memory streams rows (numbers) to temporary files: keep those next to the output,
    # in a hidden directory that a killed run leaves for remove_leftovers (xlsxwriter names
    # them tmpXXXXXXXX, which would look like a file of the output)
    tmpdir = tempfile.mkdtemp(prefix=".xlsx-rows.", suffix=".tmp", dir=path.parent)
    try:
        _write_targets_book(xlsxwriter.Workbook(str(path), {
            "constant_memory": True, "tmpdir": tmpdir, "strings_to_numbers": False,
            "strings_to_formulas": False, "strings_to_urls": False,
        }), table, text)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _write_targets_book(book, table: pa.Table, text: list[list[str]]) -> None:
    header = book.add_format({"bold": True, "bottom": 1})
    number_format = {"priority": book.add_format({"num_format": "0"}),
                     "churn_risk": book.add_format({"num_format": "0.0000"}),
                     "value_at_stake": book.add_format({"num_format": "#,##0.00"}),
                     "arpu": book.add_format({"num_format": "#,##0.00"})}
    names = TARGETS.names
    numeric = [table.column(n).to_pylist() if n in number_format else None for n in names]
    # the header needs room for the autofilter button; long reasons are capped, not wrapped
    widths = [min(max([len(n) + 4] + [len(v) + 2 for v in col[:1000]]), _EXCEL_MAX_WIDTH.get(n, 40))
              for n, col in zip(names, text)]
    n_rows = table.num_rows
    per_sheet = _EXCEL_MAX_ROWS - 1
    for sheet_no, start in enumerate(range(0, max(n_rows, 1), per_sheet)):
        sheet = book.add_worksheet("targets" if sheet_no == 0 else f"targets {sheet_no + 1}")
        for j, w in enumerate(widths):
            sheet.set_column(j, j, w)
        sheet.freeze_panes(1, 0)
        stop = min(start + per_sheet, n_rows)
        sheet.autofilter(0, 0, max(stop - start, 0), len(names) - 1)
        for j, n in enumerate(names):
            sheet.write_string(0, j, n, header)
        for i in range(start, stop):
            r = i - start + 1
            for j, n in enumerate(names):
                if numeric[j] is None:
                    sheet.write_string(r, j, text[j][i])
                elif numeric[j][i] is not None:
                    sheet.write_number(r, j, numeric[j][i], number_format[n])
    book.close()


def read_previous(path: str, numbers) -> dict:
    """A previous run's circles, members, targets and history (for ``--previous``).

    Returns ``members`` (``circle_id, kind, source, key``), ``circles``, ``targets``
    (``circle_id, key``), ``history`` (or None) and ``as_of`` (from its manifest).
    Raises :class:`InputError` naming what is missing.
    """
    from socialgraph.numbers import number_keys

    root = Path(path)
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise InputError(f"{root}: --previous must be the output directory of an earlier run (no manifest.json)")
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    if meta.get("status") != "complete":
        raise InputError(f"{root}: the previous run did not complete (status {meta.get('status')!r}); "
                         "use a complete run or drop --previous")
    need = ["circle_members.parquet", "circles.parquet"]
    missing = [n for n in need if not (root / n).is_file()]
    if missing:
        raise InputError(f"{root}: previous run has no {', '.join(missing)} (written by socialgraph 0.2 and later)")
    m = pq.read_table(root / "circle_members.parquet").to_pandas()
    if "source" not in m:
        m["source"] = np.where(m["circle_id"].str.contains(":"), "declared", "inferred")
    pseudonymised = bool(meta.get("privacy", {}).get("pseudonymised"))
    members = pd.DataFrame({"circle_id": m["circle_id"].astype(object), "kind": m["kind"].astype(object),
                            "source": m["source"].astype(object), "msisdn": m["msisdn"].astype(object)})
    if not pseudonymised:  # else the job maps pseudonyms back with its own key (same key, same pseudonyms)
        members["key"] = number_keys(pa.array(members["msisdn"].astype(str)), numbers)
    circles = pq.read_table(root / "circles.parquet").to_pandas()
    targets = pd.DataFrame({"circle_id": pd.Series(dtype=object), "key": pd.Series(dtype=np.int64)})
    if (root / "targets.csv").is_file():
        t = pd.read_csv(root / "targets.csv", dtype={"msisdn": str, "circle_id": str}, keep_default_na=False)
        if len(t):
            targets = pd.DataFrame({"circle_id": t["circle_id"].astype(object),
                                    "key": number_keys(pa.array(t["msisdn"]), numbers)})
    history = None
    if (root / "circle_history.parquet").is_file():
        h = pq.read_table(root / "circle_history.parquet").to_pandas()
        h["as_of_day"] = (pd.to_datetime(h.pop("as_of")) - pd.Timestamp("1970-01-01")).dt.days.astype(np.int64)
        history = h
    return {"members": members, "circles": circles, "targets": targets, "history": history,
            "as_of": meta.get("window", {}).get("as_of"), "pseudonymised": pseudonymised}

"""``socialgraph convert``: CSV exports to the Parquet the job reads, every value kept as written.

Why a separate step instead of reading CSV in ``run``: the job reads each CDR file's footer
before any data (schema, row counts, time range: the checks that refuse a bad export in
seconds), splits the input by row groups, and is re-run every month on the same months of
data; CSV has none of that and is parsed again on each run. Converting once gives all of it,
and the Parquet is a fraction of the CSV's size.

What the conversion does not do is read the values: every column is written as text, as it
stands in the file (a leading ``0`` or ``+`` of a number kept, an empty field an empty
string). Reading them is the job's business, with its settings and its row accounting: times
with ``ingest.start_time_format``, durations and ARPU as numbers, ``dnd`` flags as ``Y``/``N``;
what does not read is quarantined and counted there, not lost here. A line whose number of
fields does not match the header cannot be split into columns at all: it is set aside,
exactly as written, in ``OUT/_rejected/`` and counted, never dropped in silence (names under
``_`` are not read by the job).

Streaming: a file is read in blocks and written in row groups of :data:`ROW_GROUP_ROWS`, so a
file larger than memory converts. Compressed files (``.gz``, ``.bz2``, ``.zst``, ``.lz4``)
are read as they are.
"""

from __future__ import annotations

import csv as pycsv
import datetime as dt
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .io import CSV_EXT, FILE_MODE, InputError, atomic_path, ensure_dir, is_csv, write_json
from .io import compression_of as _compression

#: delimiters tried on the header line when none is given, in order of preference on a tie
DELIMITERS = (",", ";", "\t", "|")
#: rows per row group of the Parquet written: the job splits its work by row groups, and one
#: of this size is a few MiB in memory
ROW_GROUP_ROWS = 131_072
#: bytes parsed at a time (pyarrow's block): also how often the progress bar moves
BLOCK_BYTES = 4 << 20
#: the record of what was converted, in the output directory (not read by the job)
MANIFEST = "_convert.json"
REJECTED_DIR = "_rejected"


@dataclass
class Converted:
    """One source file's conversion."""

    source: str
    target: str
    rows: int = 0
    rejected: int = 0
    columns: list[str] = field(default_factory=list)
    delimiter: str = ","
    seconds: float = 0.0
    skipped: bool = False  # the Parquet was newer than the source: not converted again


def _stem(path: Path) -> str:
    """The file's name without its compression and CSV extensions (``cdr.csv.gz`` -> ``cdr``)."""
    name = path.name
    if _compression(path):
        name = name[: -len(path.suffix)]
    low = name.lower()
    for ext in CSV_EXT:
        if low.endswith(ext):
            return name[: -len(ext)]
    return name


def find_sources(paths: list[str]) -> list[tuple[Path, Path]]:
    """``(source, relative target without extension)`` for every CSV file behind ``paths``
    (files, or directories searched recursively, whose layout the targets keep: hive
    partitions such as ``day=2026-01-05/`` survive)."""
    out: list[tuple[Path, Path]] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and is_csv(f)
                           and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts))
            out += [(f, f.relative_to(p).with_name(_stem(f))) for f in found]
        elif p.is_file():
            out.append((p, Path(_stem(p))))
        else:
            raise InputError(f"{given}: no such file or directory")
    if not out:
        raise InputError(f"{', '.join(paths)}: no CSV files found (names ending .csv, .tsv or .txt, "
                         "optionally compressed: .gz, .bz2, .zst, .lz4)")
    seen: dict[Path, Path] = {}
    for src, rel in out:
        if rel in seen:
            raise InputError(f"{src} and {seen[rel]} would both be written as {rel}.parquet; "
                             "convert them into different --out directories")
        seen[rel] = src
    return out


def _open(path: Path) -> tuple[pa.NativeFile, pa.NativeFile]:
    """The file as read from disk (its position is the progress) and the stream of its text."""
    raw = pa.OSFile(str(path), "rb")
    comp = _compression(path)
    return raw, (pa.CompressedInputStream(raw, comp) if comp else raw)


def _header(path: Path, encoding: str, delimiter: str | None) -> tuple[list[str], str]:
    """Column names and delimiter from the first line."""
    raw, stream = _open(path)
    try:
        head = b""
        while b"\n" not in head and len(head) < (1 << 20):
            chunk = stream.read(1 << 16)
            if not chunk:
                break
            head += chunk
    finally:
        stream.close()
        raw.close()
    try:
        line = head.split(b"\n", 1)[0].decode(encoding).lstrip("\ufeff").rstrip("\r")
    except (UnicodeDecodeError, LookupError) as e:
        raise InputError(f"{path}: the header line does not read as {encoding} ({e}); give --encoding") from None
    if not line.strip():
        raise InputError(f"{path}: the first line is empty; a CSV export starts with a header of column names")

    def split(d):
        return next(pycsv.reader([line], delimiter=d))

    if delimiter is None:
        delimiter = max(DELIMITERS, key=lambda d: len(split(d)))  # first of the best on a tie
        if len(split(delimiter)) < 2:
            raise InputError(f"{path}: cannot tell the delimiter from the header line (one column with each "
                             f"of {', '.join(map(repr, DELIMITERS))}); give --delimiter")
    names = [n.strip() for n in split(delimiter)]
    blank = [i + 1 for i, n in enumerate(names) if not n]
    if blank:
        raise InputError(f"{path}: header column {blank[0]} has no name; name it, or remove the column")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"{path}: header names column {repeated[0]!r} more than once; name the columns apart")
    return names, delimiter


def _few_values(table: pa.Table, sample: int = 4096) -> list[str]:
    """Columns whose first ``sample`` rows repeat values, one distinct in two or fewer (event
    types, durations): Parquet dictionaries shrink those; for numbers, ids and times they cost
    time and save nothing."""
    head = table.slice(0, sample)
    return [name for name in head.column_names
            if pc.count_distinct(head.column(name)).as_py() * 2 <= max(head.num_rows, 1)]


def _up_to_date(src: Path, target: Path) -> bool:
    return target.exists() and target.stat().st_mtime >= src.stat().st_mtime


def convert_file(src: Path, target: Path, rejected_path: Path, *, encoding: str = "utf-8",
                 delimiter: str | None = None, progress=None) -> Converted:
    """Convert one CSV file to ``target`` (written whole or not at all), every column as text.

    Lines with another number of fields than the header are written as they are to
    ``rejected_path`` (only when there are any) and counted. ``progress``: a callable taking
    the bytes of the source read since its last call.
    """
    names, delimiter = _header(src, encoding, delimiter)
    result = Converted(str(src.resolve()), str(target.resolve()), columns=names, delimiter=delimiter)
    t0 = time.perf_counter()
    rejected: list[str] = []

    def reject(row) -> str:
        rejected.append(row.text)
        return "skip"

    read = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_BYTES, encoding=encoding)
    parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=reject)
    # text as written: no value guessed into a type or a null; bytes that are not valid
    # UTF-8 are carried over (the job shows them escaped and quarantines such a number)
    conv = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                                quoted_strings_can_be_null=False, check_utf8=False)
    schema = pa.schema([(n, pa.string()) for n in names])
    raw, stream = _open(src)
    done = 0
    rej_file = None

    def set_aside(fh):
        """Write the lines rejected so far (the file made owner-only at once: they hold numbers)."""
        if rejected:
            if fh is None:
                ensure_dir(rejected_path.parent)
                fd = os.open(rejected_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
                fh = open(fd, "w", encoding="utf-8", newline="")
            fh.writelines(r + "\n" for r in rejected)
            result.rejected += len(rejected)
            rejected.clear()
        return fh
    try:
        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=conv)
        with atomic_path(target) as tmp:
            writer = None

            def write(table: pa.Table) -> None:
                nonlocal writer
                if writer is None:  # dictionaries only where they pay: event types, not numbers
                    writer = pq.ParquetWriter(str(tmp), schema, compression="zstd",
                                              use_dictionary=_few_values(table))
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)

            try:
                pending: list[pa.RecordBatch] = []
                n_pending = 0
                for batch in reader:
                    pending.append(batch)
                    n_pending += batch.num_rows
                    result.rows += batch.num_rows
                    if n_pending >= ROW_GROUP_ROWS:  # whole row groups; the rest waits for more
                        buf = pa.Table.from_batches(pending, schema)
                        full = n_pending - n_pending % ROW_GROUP_ROWS
                        write(buf.slice(0, full))
                        pending, n_pending = buf.slice(full).to_batches(), n_pending - full
                    rej_file = set_aside(rej_file)
                    if progress is not None:
                        pos = raw.tell()
                        progress(pos - done)
                        done = pos
                if pending or result.rows == 0:
                    write(pa.Table.from_batches(pending, schema))
                rej_file = set_aside(rej_file)  # any the last batch did not carry
            finally:
                if writer is not None:
                    writer.close()
    except pa.ArrowInvalid as e:
        if "straddl" in str(e):
            raise InputError(f"{src}: a line longer than {BLOCK_BYTES >> 20} MiB (a quote never closed?); "
                             "repair the file") from None
        # the parser's message may quote the line, which holds numbers: say what, not where
        msg = str(e).split(":", 1)[0]
        raise InputError(f"{src}: cannot be read as CSV ({msg}); check --delimiter and --encoding") from None
    finally:
        stream.close()
        raw.close()
        if rej_file is not None:
            rej_file.close()
    if progress is not None:
        progress(max(src.stat().st_size - done, 0))
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def convert(paths: list[str], out: Path, *, encoding: str = "utf-8", delimiter: str | None = None,
            force: bool = False, progress: bool = False, jobs: int | None = None) -> list[Converted]:
    """Convert every CSV file behind ``paths`` into ``out`` (``NAME.parquet`` per file, the
    directory layout kept), and record what was done in ``out/_convert.json``.

    A file whose Parquet is already there and newer than it is left alone unless ``force``
    (a monthly job converts only the new month's exports). ``jobs`` files are converted at
    once (default: one per core): a file's Parquet writer works on one core, and the exports
    of a month are many files.
    """
    sources = find_sources(paths)
    out = ensure_dir(Path(out))

    def target_of(rel: Path) -> Path:
        return out / rel.with_name(rel.name + ".parquet")

    todo = [(s, r) for s, r in sources if force or not _up_to_date(s, target_of(r))]
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(s.stat().st_size for s, _ in todo), unit="B", unit_scale=True, desc="convert")

    def one(src: Path, rel: Path) -> Converted:
        rejected = out / REJECTED_DIR / rel.with_name(rel.name + ".csv")
        rejected.unlink(missing_ok=True)  # of an earlier conversion of this file
        return convert_file(src, target_of(rel), rejected, encoding=encoding, delimiter=delimiter,
                            progress=None if bar is None else bar.update)

    done: dict[Path, Converted] = {}
    try:
        with ThreadPoolExecutor(max(1, jobs or os.cpu_count() or 1), thread_name_prefix="convert") as pool:
            futures = {pool.submit(one, s, r): s for s, r in todo}
            try:
                for f in as_completed(futures):
                    done[futures[f]] = f.result()
            except BaseException:  # the first failure: files not started are not, those running finish
                for f in futures:
                    f.cancel()
                wait(futures)
                done.update((s, f.result()) for f, s in futures.items()
                            if not f.cancelled() and f.exception() is None)
                raise
    finally:
        if bar is not None:
            bar.close()
        _record(out, list(done.values()), encoding)  # what was written is recorded, failure or not
    return [done.get(s) or Converted(str(s.resolve()), str(target_of(r).resolve()), skipped=True)
            for s, r in sources]


def _record(out: Path, results: list[Converted], encoding: str) -> None:
    """Merge this conversion into ``out/_convert.json`` (one entry per target file)."""
    path = out / MANIFEST
    try:
        files = {f["target"]: f for f in json.loads(path.read_text(encoding="utf-8")).get("files", [])}
    except (OSError, ValueError):
        files = {}
    for r in results:
        if not r.skipped:
            files[r.target] = {**asdict(r), "encoding": encoding}
    write_json({"written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "note": "every column is text as written in the CSV; lines whose fields did not match the "
                        f"header are in {REJECTED_DIR}/",
                "files": sorted(files.values(), key=lambda f: f["target"])}, path)


def summary(results: list[Converted], out: Path) -> str:
    """The command's one line."""
    done = [r for r in results if not r.skipped]
    rows = sum(r.rows for r in done)
    rejected = sum(r.rejected for r in done)
    line = f"converted {len(done)} CSV file(s), {rows:,} rows -> {out}"
    if len(done) < len(results):
        line += f" ({len(results) - len(done)} already converted, left as they are: --force converts them again)"
    if rejected:
        line += (f"; {rejected:,} line(s) whose fields did not match the header set aside in "
                 f"{out / REJECTED_DIR} ({rejected / max(rows + rejected, 1):.2%})")
    return line

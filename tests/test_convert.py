"""``socialgraph convert``: CSV exports to Parquet, every value kept as written.

The whole-job test writes the synthetic operator as an operator's CSV exports would come
(semicolons, a byte-order mark and CRLF from a spreadsheet, gzip, an SMS's duration left
empty, a line whose fields do not match the header, the subscriber table with text dates,
flags and money) and checks that converting them and running the job gives what the Parquet
world gives. The other tests pin the conversion itself: text round trips exactly, malformed
lines are set aside rather than lost, headers that cannot be read are refused by name.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipelines.convert as conv
from pipelines.io import InputError, list_parquet_files
from pipelines.synth_io import write_synthetic
from runs import assert_same_outputs, socialgraph
from socialgraph.synth import SynthConfig


def _csv_text(t: pa.Table, delimiter: str = ",") -> str:
    """A table as a spreadsheet or BSS export writes it: every value as text."""
    sink = pa.BufferOutputStream()
    text = pa.table({n: pc.cast(t.column(n), pa.string()) for n in t.column_names})
    pacsv.write_csv(text, sink, write_options=pacsv.WriteOptions(delimiter=delimiter))
    return sink.getvalue().to_pybytes().decode("utf-8")


def _write_export(world: Path, out: Path) -> int:
    """The world's CDRs and subscribers as CSV files under ``out``; returns the data lines."""
    files = sorted((world / "cdr").rglob("*.parquet"))
    lines = 0
    for i, f in enumerate(files):
        t = pq.read_table(f)
        sms = pc.and_(pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(t.column("event_type"))), "sms"),
                      pc.equal(t.column("duration_s"), 0))
        duration = pc.if_else(pc.fill_null(sms, False), pa.scalar(None, pa.string()),
                              pc.cast(t.column("duration_s"), pa.string()))  # an SMS's 0 left empty
        t = t.set_column(t.column_names.index("duration_s"), "duration_s", duration)
        target = out / "cdr" / f.parent.relative_to(world / "cdr")
        target.mkdir(parents=True, exist_ok=True)
        if i % 3 == 0:  # a spreadsheet's: semicolons, a byte-order mark, CRLF
            text = "\ufeff" + _csv_text(t, ";").replace("\n", "\r\n")
            (target / "export.csv").write_bytes(text.encode("utf-8"))
        elif i % 3 == 1:
            with gzip.open(target / "export.csv.gz", "wt", encoding="utf-8", newline="") as fh:
                fh.write(_csv_text(t))
        else:  # with a line that is no record: its fields do not match the header
            text = _csv_text(t)
            head, rest = text.split("\n", 1)
            (target / "export.csv").write_text(f"{head}\ntotal,{t.num_rows}\n{rest}", encoding="utf-8")
        lines += t.num_rows
    subs = pq.read_table(world / "subscribers.parquet")
    subs = subs.set_column(subs.schema.get_field_index("dnd"), "dnd", pc.if_else(subs.column("dnd"), "Y", "N"))
    (out / "subscribers.csv").write_text(_csv_text(subs), encoding="utf-8")
    return lines


def test_a_csv_export_converts_and_runs_as_the_parquet_world(tmp_path):
    world = tmp_path / "world"
    write_synthetic(world, SynthConfig(n_subscribers=1500, weeks=6, seed=5))
    export, parquet = tmp_path / "export", tmp_path / "parquet"
    lines = _write_export(world, export)
    config = tmp_path / "job.yaml"
    config.write_text((world / "job.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    inputs = ["--subscribers", str(parquet / "subscribers.parquet"), "--operators", str(world / "operators.yaml"),
              "--config", str(config)]

    # run on the CSV itself: refused with the command that converts it
    proc = socialgraph("check", "--cdr", str(export / "cdr"), "--subscribers", str(export / "subscribers.csv"))
    assert proc.returncode == 2 and "a CSV file and no Parquet" in proc.stderr, proc.stderr
    proc = socialgraph("check", "--cdr", str(export / "cdr"), "--subscribers", str(world / "subscribers.parquet"))
    assert proc.returncode == 2 and f"socialgraph convert {export / 'cdr'} --out DIR" in proc.stderr, proc.stderr

    proc = socialgraph("convert", str(export / "subscribers.csv"), "--out", str(parquet))
    assert proc.returncode == 0 and "converted 1 CSV file(s)" in proc.stderr, proc.stderr
    proc = socialgraph("convert", str(export / "cdr"), "--out", str(parquet / "cdr"))
    assert proc.returncode == 0, proc.stderr
    n_files = len(list((world / "cdr").rglob("*.parquet")))
    assert f"converted {n_files} CSV file(s), {lines:,} rows" in proc.stderr, proc.stderr
    n_bad = sum(1 for i in range(n_files) if i % 3 == 2)
    assert f"; {n_bad:,} line(s) whose fields did not match the header set aside" in proc.stderr, proc.stderr
    record = json.loads((parquet / "cdr" / conv.MANIFEST).read_text(encoding="utf-8"))
    rejected = sorted((parquet / "cdr" / conv.REJECTED_DIR).rglob("*.csv"))
    assert sum(f["rejected"] for f in record["files"]) == len(rejected) == n_bad
    assert all(r.read_text(encoding="utf-8").startswith("total,") for r in rejected)
    # the layout is kept, so hive partitions still name the weeks; the job skips _rejected/
    assert sorted(p.parent.name for p in (parquet / "cdr").rglob("*.parquet")) == \
        sorted(p.parent.name for p in (world / "cdr").rglob("*.parquet"))
    assert len(list_parquet_files(str(parquet / "cdr"))[1]) == n_files

    # what check says, and the line the user adds for it
    proc = socialgraph("check", "--cdr", str(parquet / "cdr"), *inputs)
    assert proc.returncode == 2 and "ingest.start_time_format: 'iso'" in proc.stderr, proc.stderr
    config.write_text(config.read_text(encoding="utf-8") + "ingest:\n  start_time_format: iso\n", encoding="utf-8")
    proc = socialgraph("check", "--cdr", str(parquet / "cdr"), *inputs, "--strict")
    assert proc.returncode == 0 and "no warnings" in proc.stdout, proc.stdout + proc.stderr

    clean_out, csv_out = tmp_path / "clean-out", tmp_path / "csv-out"
    proc = socialgraph("run", "--cdr", str(world / "cdr"), "--subscribers", str(world / "subscribers.parquet"),
                "--operators", str(world / "operators.yaml"), "--config", str(world / "job.yaml"),
                "--out", str(clean_out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    proc = socialgraph("run", "--cdr", str(parquet / "cdr"), *inputs, "--out", str(csv_out), "--no-progress")
    assert proc.returncode == 0, proc.stderr

    assert_same_outputs(clean_out, csv_out)

    # converted again: nothing to do, unless forced
    proc = socialgraph("convert", str(export / "cdr"), "--out", str(parquet / "cdr"))
    assert proc.returncode == 0 and "converted 0 CSV file(s)" in proc.stderr and "--force" in proc.stderr
    proc = socialgraph("convert", str(export / "cdr"), "--out", str(parquet / "cdr"), "--force")
    assert proc.returncode == 0 and f"converted {n_files} CSV file(s)" in proc.stderr


# the text a CSV cell can hold: delimiters, quotes, blanks, leading zeros and signs, non-ASCII
_CELL = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from([",", ";", '"', " ", "0", "+"]),
                max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_CELL, _CELL, _CELL), min_size=0, max_size=40),
       delimiter=st.sampled_from([",", ";", "\t", "|"]), gz=st.booleans())
def test_every_value_converts_as_written(rows, delimiter, gz, tmp_path_factory):
    """Whatever the cells hold, the Parquet holds the same text (an empty cell an empty string,
    not a null); the delimiter is found from the header."""
    d = tmp_path_factory.mktemp("conv")
    t = pa.table({"caller": [r[0] for r in rows], "callee": [r[1] for r in rows], "x y": [r[2] for r in rows]},
                 schema=pa.schema([("caller", pa.string()), ("callee", pa.string()), ("x y", pa.string())]))
    text = _csv_text(t, delimiter)
    src = d / ("in.csv.gz" if gz else "in.csv")
    if gz:
        with gzip.open(src, "wt", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        src.write_text(text, encoding="utf-8", newline="")
    got = conv.convert_file(src, d / "out.parquet", d / "rejected.csv")
    assert (got.rows, got.rejected, got.delimiter) == (len(rows), 0, delimiter)
    back = pq.read_table(d / "out.parquet")
    assert back.schema == t.schema
    assert back.to_pylist() == t.to_pylist()


def test_large_files_stream_in_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(conv, "ROW_GROUP_ROWS", 1000)
    monkeypatch.setattr(conv, "BLOCK_BYTES", 4096)
    n = 10_500
    src = tmp_path / "big.csv"
    src.write_text("caller,callee\n" + "".join(f"0{i:010d},{i}\n" for i in range(n)), encoding="utf-8")
    seen = []
    got = conv.convert_file(src, tmp_path / "big.parquet", tmp_path / "rej.csv", progress=seen.append)
    meta = pq.ParquetFile(tmp_path / "big.parquet").metadata
    assert got.rows == meta.num_rows == n
    assert meta.num_row_groups == 11 and max(meta.row_group(i).num_rows for i in range(11)) == 1000
    assert sum(seen) == src.stat().st_size and len(seen) > 5  # the bar moves as it reads
    assert pq.read_table(tmp_path / "big.parquet").column("caller")[0].as_py() == "00000000000"


def test_lines_that_do_not_match_the_header_are_set_aside_as_written(tmp_path):
    src = tmp_path / "cdr.csv"
    src.write_text("caller,callee,duration_s\n1,2,3\n13800000001,13900000002\n4,5,6\n7,8,9,10\n", encoding="utf-8")
    got = conv.convert_file(src, tmp_path / "cdr.parquet", tmp_path / "_rejected" / "cdr.csv")
    assert (got.rows, got.rejected) == (2, 2)
    assert pq.read_table(tmp_path / "cdr.parquet").column("caller").to_pylist() == ["1", "4"]
    assert (tmp_path / "_rejected" / "cdr.csv").read_text(encoding="utf-8") == "13800000001,13900000002\n7,8,9,10\n"
    assert (tmp_path / "_rejected" / "cdr.csv").stat().st_mode & 0o077 == 0  # numbers: owner only


def test_other_encodings_read_with_encoding(tmp_path):
    src = tmp_path / "subs.csv"
    src.write_bytes("msisdn;plan\n13800000001;Familia Peña\n".encode("latin-1"))
    conv.convert_file(src, tmp_path / "subs.parquet", tmp_path / "rej.csv", encoding="latin-1")
    assert pq.read_table(tmp_path / "subs.parquet").column("plan").to_pylist() == ["Familia Peña"]


@pytest.mark.parametrize("header,says", [
    ("caller", "cannot tell the delimiter"),
    ("caller,,callee", "header column 2 has no name"),
    ("caller,callee,caller", "header names column 'caller' more than once"),
    ("", "the first line is empty"),
])
def test_headers_that_cannot_be_read_are_refused(header, says, tmp_path):
    src = tmp_path / "cdr.csv"
    src.write_text(f"{header}\n13800000001,13900000002,1\n", encoding="utf-8")
    with pytest.raises(InputError, match=says) as e:
        conv.convert_file(src, tmp_path / "cdr.parquet", tmp_path / "rej.csv")
    assert "13800000001" not in str(e.value)
    assert not (tmp_path / "cdr.parquet").exists()


def test_two_sources_for_one_target_are_refused(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "cdr.csv").write_text("caller,callee\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="would both be written as cdr.parquet"):
        conv.convert([str(tmp_path / "a" / "cdr.csv"), str(tmp_path / "b" / "cdr.csv")], tmp_path / "out")


def test_a_bad_file_stops_the_conversion_and_what_was_written_is_recorded(tmp_path):
    src = tmp_path / "exports"
    src.mkdir()
    for i in range(6):
        (src / f"cdr-{i}.csv").write_text("caller,callee\n" + "".join(f"{i},{j}\n" for j in range(50)), encoding="utf-8")
    (src / "cdr-3.csv").write_text("caller,caller\n1,2\n", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="cdr-3.csv: header names column 'caller' more than once"):
        conv.convert([str(src)], out, jobs=2)
    written = sorted(p.name for p in out.glob("*.parquet"))
    record = json.loads((out / conv.MANIFEST).read_text(encoding="utf-8"))
    assert sorted(Path(f["target"]).name for f in record["files"]) == written
    assert "cdr-3.parquet" not in written and not list(out.glob(".*"))  # no half-written file either
    # the next run converts the rest and leaves the written ones alone
    (src / "cdr-3.csv").write_text("caller,callee\n1,2\n", encoding="utf-8")
    again = conv.convert([str(src)], out)
    assert [r.skipped for r in again] == [f"cdr-{i}.parquet" in written for i in range(6)]
    assert all(pq.read_table(out / f"cdr-{i}.parquet").num_rows == (1 if i == 3 else 50) for i in range(6))

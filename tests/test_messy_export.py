"""A new user's first run on an operator's own exports, end to end.

The synthetic operator is written again the way a real BSS/switch export comes: its own
column names, times as switch text (``20260105143000``), numbers formatted ``138 0000 0001``,
event types ``MOC`` / ``SMS_MO``, ``dnd`` as ``Y`` / ``N``, dates as text. A user runs ``socialgraph check``,
sets what each of its lines names, and runs again until it is clean; ``socialgraph run`` with
that config must then give what the clean world gives: the same row accounting, ties, circles,
flags and contact list.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.synth_io import write_synthetic
from runs import assert_same_outputs, socialgraph
from socialgraph.synth import SynthConfig


def _spaced(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """``138 0000 0001``: a space is in none of the world's garbage numbers (``12-34`` is)."""
    return pc.binary_join_element_wise(pc.utf8_slice_codeunits(col, 0, 3), pc.utf8_slice_codeunits(col, 3, 7),
                                       pc.utf8_slice_codeunits(col, 7, 40), " ")


def _messy(world: Path, out: Path) -> None:
    """The world's CDRs and subscribers as a real export writes them."""
    (out / "cdr").mkdir(parents=True)
    for i, f in enumerate(sorted((world / "cdr").rglob("*.parquet"))):
        t = pq.read_table(f)
        norm = pc.utf8_lower(pc.utf8_trim_whitespace(t.column("event_type")))
        event = pc.if_else(pc.equal(norm, "voice"), "MOC", pc.if_else(pc.equal(norm, "sms"), "SMS_MO",
                                                                      t.column("event_type")))
        messy = pa.table({
            "calling_number": _spaced(t.column("caller")),
            "called_number": _spaced(t.column("callee")),
            "event_time": pc.strftime(t.column("start_time").cast(pa.timestamp("s")), format="%Y%m%d%H%M%S"),
            "duration_s": t.column("duration_s"),
            "record_type": event,
            "cdr_id": t.column("cdr_id"),
        })
        pq.write_table(messy, out / "cdr" / f"export-{i:03d}.parquet")
    subs = pq.read_table(world / "subscribers.parquet")
    subs = subs.set_column(subs.schema.get_field_index("msisdn"), "msisdn", _spaced(subs.column("msisdn")))
    subs = subs.set_column(subs.schema.get_field_index("dnd"), "dnd", pc.if_else(subs.column("dnd"), "Y", "N"))
    for c in ("activation_date", "churn_date"):  # text, and an active line's churn date empty, as a CSV has it
        text = pc.strftime(subs.column(c).cast(pa.timestamp("s")), format="%Y-%m-%d")
        subs = subs.set_column(subs.schema.get_field_index(c), c, pc.fill_null(text, ""))
    pq.write_table(subs, out / "subscribers.parquet")


def test_check_leads_a_messy_export_to_the_clean_worlds_results(tmp_path):
    world = tmp_path / "world"
    write_synthetic(world, SynthConfig(n_subscribers=2500, weeks=8, seed=21))
    messy = tmp_path / "messy"
    _messy(world, messy)
    base = (world / "job.yaml").read_text(encoding="utf-8")
    config = messy / "job.yaml"
    inputs = ["--cdr", str(messy / "cdr"), "--subscribers", str(messy / "subscribers.parquet"),
              "--operators", str(world / "operators.yaml"), "--config", str(config)]

    # each round: what check says, and the line the user adds for it
    rounds = [
        (2, "numbers.separators: ' ' would read it", None),
        (2, "required column 'caller' is missing", "columns:\n  caller: calling_number\n  callee: called_number\n"
                                                   "  start_time: event_time\n  event_type: record_type\n"),
        (2, "ingest.start_time_format: '%Y%m%d%H%M%S'", "ingest:\n  start_time_format: '%Y%m%d%H%M%S'\n"),
        (0, "ingest.voice_types", "  voice_types: [moc]\n  sms_types: [sms_mo]\n"),
    ]
    added = ""
    for expect_rc, says, line in rounds:
        config.write_text(base + added, encoding="utf-8")
        proc = socialgraph("check", *inputs)
        assert proc.returncode == expect_rc, (says, proc.stdout, proc.stderr)
        assert says in proc.stdout + proc.stderr, (says, proc.stdout, proc.stderr)
        if line is None:  # the separators go into the numbers section the world's config has
            base = base.replace("numbers:\n", "numbers:\n  separators: ' '\n")
        else:
            added += line
    config.write_text(base + added, encoding="utf-8")
    proc = socialgraph("check", *inputs, "--strict")
    assert proc.returncode == 0 and "no warnings" in proc.stdout, proc.stdout

    clean_out, messy_out = tmp_path / "clean-out", tmp_path / "messy-out"
    proc = socialgraph("run", "--cdr", str(world / "cdr"), "--subscribers", str(world / "subscribers.parquet"),
                "--operators", str(world / "operators.yaml"), "--config", str(world / "job.yaml"),
                "--out", str(clean_out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    proc = socialgraph("run", *inputs, "--out", str(messy_out), "--no-progress")
    assert proc.returncode == 0, proc.stderr

    assert_same_outputs(clean_out, messy_out)

"""Privacy: no full phone number in logs, errors, the manifest or the report; with
--pseudonymise, none in any output but the contact list, and the key is written nowhere."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.synth_io import write_synthetic
from scripts import console_script
from socialgraph.synth import NATIONAL_LENGTH, SynthConfig

KEY = "test-key-0123456789-abcdef"
LONG_DIGITS = re.compile(r"\d{11,}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("priv")
    write_synthetic(root, SynthConfig(n_subscribers=2000, weeks=8, seed=4))
    numbers = set(pq.read_table(root / "truth" / "membership.parquet").column("msisdn").to_pylist())
    return root, numbers


def _run(world: Path, out: Path, *extra: str, key: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SOCIALGRAPH_PSEUDONYM_KEY"}
    if key is not None:
        env["SOCIALGRAPH_PSEUDONYM_KEY"] = key
    return subprocess.run([console_script("socialgraph"), "run", "--cdr", str(world / "cdr"), "--subscribers", str(world / "subscribers.parquet"),
                           "--operators", str(world / "operators.yaml"), "--config", str(world / "job.yaml"),
                           "--out", str(out), "--verbose", "--no-progress", *extra],
                          capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)


def _texts(out: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every output as text: Parquet string columns, JSON, HTML, CSV."""
    texts = {}
    for f in sorted(out.rglob("*")):
        if not f.is_file() or any(f.name.startswith(s) for s in skip):
            continue
        if f.suffix == ".parquet":
            t = pq.read_table(f)
            texts[str(f)] = "\n".join(str(v) for c in t.columns if pa.types.is_string(c.type) for v in c.to_pylist())
        elif f.suffix in (".json", ".html", ".csv"):
            texts[str(f)] = f.read_text(encoding="utf-8")
    return texts


def _leaks(text: str, numbers: set[str]) -> list[str]:
    return [m for m in LONG_DIGITS.findall(text) if any(n in m for n in numbers)]


def test_logs_manifest_quality_and_report_hold_no_full_number(world, tmp_path):
    root, numbers = world
    proc = _run(root, tmp_path / "plain")
    assert proc.returncode == 0, proc.stderr
    assert not _leaks(proc.stderr + proc.stdout, numbers)
    for name in ("manifest.json", "quality.json", "report.html"):
        text = (tmp_path / "plain" / name).read_text(encoding="utf-8")
        assert not _leaks(text, numbers), name
    # the contact list, and only it, has the numbers a marketer dials
    assert _leaks((tmp_path / "plain" / "targets.csv").read_text(encoding="utf-8"), numbers) or \
        (tmp_path / "plain" / "targets.csv").read_text().count("\n") == 1


def test_pseudonymised_outputs_hold_no_number_and_never_the_key(world, tmp_path):
    root, numbers = world
    out = tmp_path / "ps"
    proc = _run(root, out, "--pseudonymise", key=KEY)
    assert proc.returncode == 0, proc.stderr
    texts = _texts(out, skip=("targets.",))
    assert texts and all(not _leaks(t, numbers) for t in texts.values()), [f for f, t in texts.items() if _leaks(t, numbers)]
    for f in out.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f"the key leaked into {f.name}"
    assert KEY not in proc.stderr + proc.stdout
    # the same number has the same pseudonym everywhere: edges, nodes, members
    nodes = set(pq.read_table(out / "nodes.parquet").column("msisdn").to_pylist())
    edges = pq.read_table(out / "edges.parquet")
    assert set(edges.column("a").to_pylist()) <= nodes and set(edges.column("b").to_pylist()) <= nodes
    assert set(pq.read_table(out / "circle_members.parquet").column("msisdn").to_pylist()) <= nodes
    assert all(v.startswith("p-") for v in list(nodes)[:100])
    # a second month with --previous continues the pseudonymised circles
    again = _run(root, tmp_path / "ps2", "--pseudonymise", "--previous", str(out), key=KEY)
    assert again.returncode == 0, again.stderr
    kept = pq.read_table(tmp_path / "ps2" / "circle_lineage.parquet").column("event").to_pylist()
    assert kept.count("kept") / len(kept) > 0.9


def test_pseudonymise_without_a_key_is_one_line_naming_the_variable(world, tmp_path):
    root, _ = world
    proc = _run(root, tmp_path / "nokey", "--pseudonymise", key=None)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "SOCIALGRAPH_PSEUDONYM_KEY" in lines[0]


def test_no_dnd_subscriber_on_the_contact_list_of_a_real_run(tmp_path):
    root = tmp_path / "world"
    write_synthetic(root, SynthConfig(n_subscribers=2500, weeks=8, seed=21))
    # a lenient FDR flags many circles of this small world, dnd members among them
    cfg = tmp_path / "lenient.yaml"
    cfg.write_text((root / "job.yaml").read_text(encoding="utf-8") + "\ncontagion:\n  fdr: 0.5\n", encoding="utf-8")
    out = tmp_path / "dnd"
    proc = _run(root, out, "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr

    def tail(v: str) -> str:  # the national number, whatever the format
        return re.sub(r"\D", "", v)[-NATIONAL_LENGTH:]

    subs = pq.read_table(root / "subscribers.parquet").to_pandas()
    dnd = {tail(m) for m in subs.loc[subs["dnd"], "msisdn"]}
    circles = pq.read_table(out / "circles.parquet").to_pandas()
    members = pq.read_table(out / "circle_members.parquet").to_pandas()
    flagged = members[members["circle_id"].isin(circles.loc[circles["contagion"], "circle_id"])]
    assert dnd & {tail(m) for m in flagged["msisdn"]}, "no dnd subscriber in a flagged circle: nothing to test"
    lines = (out / "targets.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) > 10
    listed = {tail(v) for line in lines[1:] for v in re.findall(r"\+?\d{8,}", line)}
    assert not dnd & listed, "a dnd subscriber is on the contact list"


def test_a_subscriber_whose_dnd_flag_is_missing_is_not_listed_unless_asked(tmp_path):
    """A null ``dnd`` is no consent: numbers a run lists drop off the list once their flag is
    missing, the run says how many, and ``privacy.contact_unknown_dnd`` brings back exactly the
    list of before."""
    import json
    import shutil

    import pyarrow.compute as pc

    root = tmp_path / "world"
    write_synthetic(root, SynthConfig(n_subscribers=2500, weeks=8, seed=21))
    (root / "job.yaml").write_text((root / "job.yaml").read_text(encoding="utf-8") + "\ncontagion:\n  fdr: 0.5\n",
                                   encoding="utf-8")

    def tail(v: str) -> str:
        return re.sub(r"\D", "", v)[-NATIONAL_LENGTH:]

    def listed(out: Path) -> list[str]:
        lines = (out / "targets.csv").read_text(encoding="utf-8").splitlines()
        return [tail(re.findall(r"\+?\d{8,}", line)[0]) for line in lines[1:]]

    before = tmp_path / "before"
    assert _run(root, before).returncode == 0
    first = listed(before)
    subs = pq.read_table(root / "subscribers.parquet")
    tails = [tail(m) for m in subs.column("msisdn").to_pylist()]
    lost = set(first[:12])
    assert len(lost) >= 8
    flags = pc.if_else(pa.array([t in lost for t in tails]), pa.scalar(None, pa.bool_()), subs.column("dnd"))
    world = tmp_path / "lost-flags"
    shutil.copytree(root, world, ignore=shutil.ignore_patterns("cdr"))
    (world / "cdr").symlink_to(root / "cdr")
    pq.write_table(subs.set_column(subs.schema.get_field_index("dnd"), "dnd", flags), world / "subscribers.parquet")

    kept_off = tmp_path / "kept-off"
    proc = _run(world, kept_off)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(lost)} subscriber(s) have no dnd value" in proc.stderr
    assert json.loads((kept_off / "quality.json").read_text())["subscribers"]["null_dnd"] == len(lost)
    assert not lost & set(listed(kept_off)) and listed(kept_off)

    (world / "job.yaml").write_text((world / "job.yaml").read_text(encoding="utf-8")
                                    + "\nprivacy:\n  contact_unknown_dnd: true\n", encoding="utf-8")
    asked = tmp_path / "asked"
    assert _run(world, asked).returncode == 0
    assert listed(asked) == first

    # the flag as a BSS extract writes it, Y / N, with the lost ones as text the job cannot
    # read: those stay off the list even where a missing value would be listed
    text = pc.if_else(pa.array([t in lost for t in tails]), "?",
                      pc.if_else(subs.column("dnd"), " Y", "n"))
    pq.write_table(subs.set_column(subs.schema.get_field_index("dnd"), "dnd", text), world / "subscribers.parquet")
    as_text = tmp_path / "as-text"
    proc = _run(world, as_text)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(lost)} subscriber(s) have a dnd value the job does not read ('?' {len(lost)})" in proc.stderr
    assert set(listed(as_text)) == set(first) - lost

"""The ``socialgraph`` command line.

Exit status: 0 success; 2 bad input, config or arguments (one line on stderr naming the
problem); 1 an unexpected failure (one line; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import sys
from pathlib import Path

import click

from .config_file import ConfigError, load_config
from .io import InputError

log = logging.getLogger("socialgraph")

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
EXIT_WARNINGS = 3  # socialgraph check --strict: the inputs would run, with warnings
DEMO_BACKTEST_DAYS = 14


@contextlib.contextmanager
def _cli_logging(verbose: bool, debug: bool):
    """The command's logging: ``socialgraph: ...`` lines on stderr at the level asked for, and
    Dask's own chatter (worker start/stop) only when debugging. The loggers get back their
    handlers, levels and propagation on exit, so a command called in-process (a notebook, a
    test, a scheduler's Python task) leaves the process's logging as it found it."""
    loggers = [log, logging.getLogger("distributed"), logging.getLogger("dask")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("socialgraph: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    log.propagate = False
    for lg in loggers[1:]:
        lg.setLevel(logging.DEBUG if debug else logging.ERROR)
    try:
        yield
    finally:
        for lg, handlers, level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _guarded(fn):
    """Turn exceptions into one line on stderr and the documented exit status."""

    @functools.wraps(fn)
    def wrapper(*args, debug: bool = False, quiet: bool = False, verbose: bool = False, **kwargs):
        # Stage progress goes to stderr when a person watches (a terminal) or asks (--verbose);
        # an unattended run prints only its result or its one-line error (timings are in the
        # manifest either way).
        with _cli_logging((verbose or sys.stderr.isatty()) and not quiet, debug):
            try:
                return fn(*args, **kwargs)
            except (InputError, ConfigError) as e:
                if debug:
                    raise
                click.echo(f"socialgraph: error: {_one_line(e)}", err=True)
                sys.exit(EXIT_BAD_INPUT)
            except (ValueError, TypeError) as e:
                if debug:
                    raise
                click.echo(f"socialgraph: error: {_one_line(e)}", err=True)
                sys.exit(EXIT_BAD_INPUT)
            except KeyboardInterrupt:
                click.echo("socialgraph: interrupted", err=True)
                sys.exit(130)
            except Exception as e:  # noqa: BLE001
                if debug:
                    raise
                click.echo(f"socialgraph: failed: {type(e).__name__}: {_one_line(e)} (run with --debug for details)", err=True)
                sys.exit(EXIT_FAILURE)

    wrapper = click.option("--quiet", is_flag=True, help="Only errors on stderr.")(wrapper)
    wrapper = click.option("--verbose", "-v", is_flag=True, help="Log each stage on stderr (default on a terminal).")(wrapper)
    wrapper = click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")(wrapper)
    return wrapper


def _date(ctx, param, value):
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-05-01") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="socialgraph")
def main():
    """Call-graph retention analytics: ties, stickiness, circles and churn contagion from CDRs."""


@main.command()
@click.option("--cdr", required=True, help="CDR Parquet: a file, a directory (hive partitions ok) or a glob.")
@click.option("--subscribers", required=True, help="Subscriber Parquet (the operator's own numbers).")
@click.option("--operators", default=None, help="Operator prefixes YAML.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--as-of", callback=_date, default=None, help="Analysis date (default: the day after the last CDR).")
@click.option("--lookback-days", type=click.IntRange(1, 3660), default=None, help="Days of CDRs before --as-of to use (default 180).")
@click.option("--config", "config_path", default=None, help="Job config YAML.")
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler (default: a local cluster).")
@click.option("--max-contacts", type=click.IntRange(0), default=None,
              help="Contact budget: at most N rows of targets.csv, circles in priority order, each whole; "
                   "one that no longer fits is skipped for the next (0 = no limit).")
@click.option("--previous", default=None, type=click.Path(file_okay=False),
              help="Output directory of the previous run: warm-start circles, keep their ids, carry their history.")
@click.option("--skip-bad-files", is_flag=True,
              help="Skip CDR files that cannot be read (corrupt, wrong schema) and list them in quality.json "
                   "instead of stopping.")
@click.option("--pseudonymise", is_flag=True, default=False,
              help="Keyed pseudonyms (HMAC, key in $SOCIALGRAPH_PSEUDONYM_KEY) instead of numbers in every output but targets.csv.")
@click.option("--resume", is_flag=True,
              help="Reuse the saved result of every stage whose inputs, config and code are unchanged since an "
                   "earlier run into OUT (finished or killed); re-run the rest.")
@click.option("--checkpoints/--no-checkpoints", default=None,
              help="Save each stage's result under OUT/.checkpoints for a later --resume (default: yes, unless "
                   "--pseudonymise: checkpoints hold numbers); --no-checkpoints also removes old ones.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@_guarded
def run(cdr, subscribers, operators, out, as_of, lookback_days, config_path, scheduler, max_contacts, previous,
        skip_bad_files, pseudonymise, resume, checkpoints, progress):
    """Run the batch job: read CDRs, build the call graph, write the outputs under OUT."""
    from .run import JobSpec, run_job

    cfg = load_config(config_path)
    if pseudonymise:
        from dataclasses import replace

        cfg = replace(cfg, privacy=replace(cfg.privacy, pseudonymise=True))
    manifest = run_job(JobSpec(
        cdr=cdr, subscribers=subscribers, operators=operators, out=out, as_of=as_of,
        lookback_days=lookback_days, scheduler=scheduler, config=cfg, progress=progress,
        max_contacts=max_contacts, previous=previous, skip_bad_files=skip_bad_files,
        resume=resume, checkpoints=checkpoints,
    ))
    rows = manifest["rows"]
    resumed = [s["name"] for s in manifest["stages"] if s.get("resumed")]
    if resumed:
        click.echo(f"socialgraph: resumed (inputs, config and code unchanged): {', '.join(resumed)}", err=True)
    click.echo(
        f"socialgraph: done: {rows['cdr_in']:,} CDR rows in, {rows['cdr_used']:,} used, "
        f"{rows['cdr_quarantined']:,} quarantined; {rows['edges']:,} ties -> {Path(out).resolve()}",
        err=True,
    )
    summary = _circles_summary(manifest)
    if summary:
        click.echo(f"socialgraph: {summary}", err=True)


def _circles_summary(manifest: dict, flagged_and_contacts: bool = True) -> str | None:
    """One line on the circles: flagged of tested, churn beyond chance, contacts listed."""
    circles = manifest.get("circles") or {}
    if "tested" not in circles:
        return None
    offers = next((s for s in manifest.get("stages", []) if s.get("name") == "offers"), {})
    parts = [f"{circles.get('flagged', 0):,} of {circles['tested']:,} tested circles flagged"
             if flagged_and_contacts else f"{circles['tested']:,} tested"]
    bc = circles.get("beyond_chance") or {}
    if 0.001 in bc.get("p_at_most", []):
        i = bc["p_at_most"].index(0.001)
        parts.append(f"{bc['circles'][i]:,} at p <= 0.001 where chance alone gives about {bc['by_chance'][i]:,.1f}")
    if flagged_and_contacts and "targets" in offers:
        parts.append(f"{offers['targets']:,} contacts in targets.csv")
    return "; ".join(parts)


@main.command()
@click.option("--cdr", required=True, help="CDR Parquet: a file, a directory (hive partitions ok) or a glob.")
@click.option("--subscribers", required=True, help="Subscriber Parquet (the operator's own numbers).")
@click.option("--operators", default=None, help="Operator prefixes YAML.")
@click.option("--config", "config_path", default=None, help="Job config YAML.")
@click.option("--as-of", callback=_date, default=None, help="Analysis date (default: the day after the sample's last CDR).")
@click.option("--lookback-days", type=click.IntRange(1, 3660), default=None, help="Days of CDRs before --as-of (default 180).")
@click.option("--sample-rows", type=click.IntRange(1), default=None,
              help="Rows to read, whole row groups of files spread over the input (default 1,000,000).")
@click.option("--skip-bad-files", is_flag=True,
              help="As run --skip-bad-files: list unreadable CDR files in a warning instead of stopping.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures and warnings as JSON.")
@click.option("--strict", is_flag=True, help="Exit 3 when there is a warning.")
@_guarded
def check(cdr, subscribers, operators, config_path, as_of, lookback_days, sample_rows, skip_bad_files, as_json, strict):
    """Check the inputs and the job config on every file's footer and a sample of rows, in
    seconds: the refusals a run would stop with (exit 2) and the warnings it would give, each
    with the setting it names. Writes nothing."""
    import json
    from dataclasses import replace

    from .check import SAMPLE_ROWS, check_inputs, format_report

    cfg = load_config(config_path)
    if lookback_days is not None:
        cfg = replace(cfg, window=replace(cfg.window, lookback_days=lookback_days))
    report = check_inputs(cdr, subscribers, operators, cfg, as_of=as_of, sample_rows=sample_rows or SAMPLE_ROWS,
                          skip_bad_files=skip_bad_files)
    if as_json:
        click.echo(json.dumps({"figures": report.figures, "warnings": report.warnings}, indent=2, default=str))
    else:
        click.echo(format_report(report), nl=False)
    if strict and report.warnings:
        sys.exit(EXIT_WARNINGS)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory for the Parquet files (NAME.parquet per CSV file, the layout of a directory kept).")
@click.option("--delimiter", default=None, help="Field delimiter (default: whichever of , ; tab | splits the header most).")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of the CSV files (latin-1, gbk, ...).")
@click.option("--force", is_flag=True, help="Convert again files whose Parquet is newer than them.")
@click.option("--jobs", type=click.IntRange(1), default=None, help="Files converted at once (default: one per core).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@_guarded
def convert(sources, out, delimiter, encoding, force, jobs, progress):
    """Convert CSV exports (CDRs or the subscriber table; files or directories, .gz etc.
    read as they are) to Parquet for run and check. Every column is kept as text as
    written; the job's settings read it (check names them). Lines whose fields do not
    match the header are set aside in OUT/_rejected/ and counted."""
    from .convert import convert as convert_csv
    from .convert import summary

    if delimiter is not None and len(delimiter.encode("utf-8")) != 1:
        raise click.BadParameter("one character (a tab: --delimiter $'\\t')", param_hint="--delimiter")
    results = convert_csv(list(sources), Path(out), encoding=encoding, delimiter=delimiter, force=force, jobs=jobs,
                          progress=sys.stderr.isatty() if progress is None else progress)
    click.echo(f"socialgraph: {summary(results, Path(out))}", err=True)
    click.echo(f"next: socialgraph check --cdr {out} (or --subscribers {out}/NAME.parquet) with the other inputs: "
               "it names the settings that read the text columns")


@main.command("config")
@click.option("--config", "config_path", default=None, help="Job config YAML to check and show in full.")
@_guarded
def show_config(config_path):
    """Print every job config key with its value: the defaults, or those of --config.

    `socialgraph config > job.yaml` starts a config from every key and its default;
    `socialgraph config --config job.yaml` checks a config (exit 2 naming a bad key) and shows
    what a run would use."""
    from .config_file import config_yaml

    click.echo(config_yaml(load_config(config_path)), nl=False)


@main.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory to write the operator to.")
@click.option("--subscribers", "n_subscribers", type=click.IntRange(10, 100_000_000), default=10_000, show_default=True)
@click.option("--weeks", type=click.IntRange(2, 260), default=12, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=42, show_default=True)
@_guarded
def synth(out, n_subscribers, weeks, seed):
    """Write a synthetic operator (CDRs, subscribers, operators file, ground truth)."""
    from socialgraph.synth import SynthConfig

    from .synth_io import write_synthetic

    info = write_synthetic(out, SynthConfig(n_subscribers=n_subscribers, weeks=weeks, seed=seed))
    click.echo(
        f"socialgraph: wrote {info['cdr_rows']:,} CDR rows and {info['subscriber_rows']:,} subscribers "
        f"to {Path(out).resolve()} in {info['seconds']} s",
        err=True,
    )
    click.echo(
        f"next: socialgraph run --cdr {info['cdr']} --subscribers {info['subscribers']} "
        f"--operators {info['operators']} --config {info['config']} --out OUT"
    )


@main.command()
@click.option("--out", default="socialgraph-demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--subscribers", "n_subscribers", type=click.IntRange(100, 1_000_000), default=20_000, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=42, show_default=True)
@_guarded
def demo(out, n_subscribers, seed):
    """Synthesise a small operator and run the whole job on it (about a minute).

    The job runs as of two weeks before the synthetic data ends, so the report also shows how
    its scores and target list did on the churn of those two weeks (back-test mode)."""
    from socialgraph.synth import SynthConfig

    from .run import JobSpec, run_job
    from .synth_io import write_synthetic

    root = Path(out)
    click.echo(f"socialgraph demo: synthesising {n_subscribers:,} subscribers ...", err=True)
    info = write_synthetic(root / "input", SynthConfig(n_subscribers=n_subscribers, seed=seed))
    as_of = dt.date.fromisoformat(info["as_of"]) - dt.timedelta(days=DEMO_BACKTEST_DAYS)
    click.echo(f"socialgraph demo: running the job as of {as_of} on {info['cdr_rows']:,} CDR rows ...", err=True)
    manifest = run_job(JobSpec(
        cdr=info["cdr"], subscribers=info["subscribers"], operators=info["operators"],
        out=str(root / "output"), config=load_config(info["config"]), as_of=as_of,
    ))
    output = root.resolve() / "output"
    targets = output / "targets.csv"
    n_targets = max(0, len(targets.read_text(encoding="utf-8").splitlines()) - 1)
    circles = manifest.get("circles", {})
    click.echo(f"report:  {output / 'report.html'}")
    click.echo(f"targets: {targets} ({n_targets:,} contacts in {circles.get('flagged', 0):,} flagged circles)")
    summary = _circles_summary(manifest, flagged_and_contacts=False)
    if summary:
        click.echo(f"circles: {summary}")
    bt = manifest.get("backtest")
    if bt:
        lift = bt.get("targets_lift")
        click.echo(f"back-test over the {bt['horizon_days']} days after {as_of}: churn_risk AUC {bt['auc']:.2f}, "
                   f"lift at 10 % {bt['lift_at_10']:.2f}"
                   + (f"; targeted members churned {lift:.1f}x the base rate" if lift else ""))
    click.echo(f"all outputs: {output}")


if __name__ == "__main__":  # pragma: no cover
    main()

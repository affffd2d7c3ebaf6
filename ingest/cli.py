"""The ``hipback`` command line.

Each subcommand parses its options here and delegates to a module in :mod:`hipback.ingest.commands`
(imported lazily so that ``hipback --help`` stays fast). :func:`main` is the one error boundary: whatever
goes wrong is one sentence on stderr, prefixed ``hipback:``, and an exit code scripts can trust, never a
traceback:

- 0: done; ``hipback`` or a command group without a command prints its help and exits 2;
- 1: an unexpected failure (a bug: ``HIPBACK_DEBUG=1`` shows the traceback);
- 2: bad input or configuration: a usage mistake (unknown command or option, missing argument, a value
  that is not a number or not one of the choices), :class:`hipback.ingest.errors.HipbackError`, or a file or
  folder that cannot be read or written;
- 3: a database (InfluxDB or the local store) refused, is damaged, full or unreachable
  (:class:`hipback.ingest.errors.DatabaseError`);
- 130: interrupted (Ctrl-C); the commands leave nothing half-written that looks complete.

Usage mistakes are recognised whichever click the installed typer uses: typer up to 0.2x calls the
``click`` package, newer typer ships its own copy as ``typer._click``; both are caught. Files the commands
create are private (the process umask is 077, and the writers set 0600/0700 themselves as well).
"""

# typer 0.12.0, the oldest the dependency range allows, cannot read ``X | None`` in command signatures
# ("Type not yet supported"): the options use Optional[X] (tests/test_cli.py runs the oldest typer).
# ruff: noqa: UP045

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hipback.ingest.errors import HipbackError, printable

app = typer.Typer(
    name="hipback",
    help="Wearable IMU pipeline: hip extension, pelvic tilt and lumbar compensation in walks and stretches.",
    no_args_is_help=False,  # the callback prints the help and exits 2 (the same under every click)
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from hipback import __version__

        typer.echo(f"hipback {__version__}")
        raise typer.Exit()


def _help_without_command(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Wearable IMU pipeline: hip extension, pelvic tilt and lumbar compensation in walks and stretches."""
    _help_without_command(ctx)


@app.command()
def simulate(
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder to write the session and its ground truth into (required unless --list-scenarios).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (same seed, same session).")] = 1,
    scenario: Annotated[str, typer.Option(help="Scenario name (see --list-scenarios).")] = "clinic_visit",
    list_scenarios: Annotated[bool, typer.Option("--list-scenarios", help="List scenarios and exit.")] = False,
    realistic: Annotated[bool, typer.Option("--realistic", help="A patient as hard as a real one (soft tissue, varied gait, datasheet device errors).")] = False,
    device: Annotated[Optional[str], typer.Option("--device", help="With --realistic: the device model worn (movella_dot, the default, witmotion_wt901ble, diy_bmi270, diy_lsm6dso).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a recording or simulated session already in --out.")] = False,
) -> None:
    """Simulate a virtual patient session (sensor files plus ground truth)."""
    from hipback.ingest.commands import simulate as cmd

    cmd.run(out=out, seed=seed, scenario=scenario, list_only=list_scenarios, realistic=realistic, device=device,
            overwrite=overwrite)


@app.command()
def process(
    inputs: Annotated[list[str], typer.Argument(help="PLACEMENT=FILE pairs (pelvis, thigh_left, thigh_right, lumbar_upper), or one recording folder in hipback's format (as `hipback simulate` writes).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for angles.csv, strides.csv, holds.csv, activity.csv, summary.json.")],
    store: Annotated[Optional[Path], typer.Option("--store", help="Also put the recording, results and InfluxDB points into this local store.")] = None,
    patient: Annotated[Optional[str], typer.Option("--patient", help="Pseudonymous patient id for --store (default: the recording's, else 'offline').")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the results of an earlier run in --out.")] = False,
    orientation: Annotated[str, typer.Option("--orientation", help="Orientation filter of raw (acc+gyr) sensors: 'lagged' (default: fixed-lag smoothed, better inclination while walking, each result final up to 6 s after its samples) or 'causal' (as live sessions and --reprocess, for their results). Quaternion sensors are unaffected.")] = "lagged",
    calibration_from: Annotated[Optional[Path], typer.Option("--calibration-from", help="Use the calibration of an earlier `hipback process` run (its summary.json or --out folder) on a recording of the same sensors, worn the same way (e.g. a standing calibration trial); thigh and pelvis axes it lacks come from this recording's movement.")] = None,
    start: Annotated[Optional[str], typer.Option("--start", help="With --store: the recording's start, ISO 8601 with its time zone (e.g. 2023-10-31T13:31:50+01:00), for files without a UTC time such as Movella DOT exports (default: the files' own, else now).")] = None,
    dialect: Annotated[Optional[str], typer.Option("--dialect", help="The dialect of the vendor exports given, 'movella_dot' (gyroscope in deg/s) or 'xsens_mt' (rad/s), for files whose columns cannot tell the two apart; a file whose content marks the other dialect is refused.")] = None,
) -> None:
    """Process recording files offline into angles, strides, holds and activity."""
    from hipback.ingest.commands import process as cmd

    cmd.run(inputs=inputs, out=out, store=store, patient=patient, overwrite=overwrite, orientation=orientation,
            calibration_from=calibration_from, start=start, dialect=dialect)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's local store and outputs.")] = Path("demo-out"),
    seed: Annotated[int, typer.Option(min=0, help="Random seed of the virtual patient.")] = 7,
    speed: Annotated[Optional[float], typer.Option(help="Watch it at this many times real time (default: as fast as possible; results are the same).")] = None,
) -> None:
    """Virtual patient, four virtual sensors, a guided exercise programme, the whole pipeline: no servers and no radio needed."""
    from hipback.ingest.commands import demo as cmd

    cmd.run(out=out, seed=seed, speed=speed)


@app.command()
def sync(
    store: Annotated[Optional[Path], typer.Option("--store", help="Local store to send from (default: HIPBACK_STORE or hipback.sqlite).")] = None,
    session: Annotated[Optional[str], typer.Option("--session", help="Send only this session's lines: its id, a unique prefix of at least 4 characters, or 'latest' (the session started last).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Lines per request.")] = 5000,
) -> None:
    """Send what the local store still owes InfluxDB (HIPBACK_INFLUX_URL, ..._DATABASE, ..._TOKEN)."""
    from hipback.ingest.commands import sync as cmd

    cmd.run(store=store, session=session, batch_size=batch_size)


@app.command()
def sessions(
    store: Annotated[Path, typer.Option("--store", help="Local store to list (default: hipback.sqlite here).")] = Path("hipback.sqlite"),
    patient: Annotated[Optional[str], typer.Option("--patient", help="Only this patient's sessions (pseudonym).")] = None,
) -> None:
    """List the sessions of a local store, newest first: the ids report, export and sync take."""
    from hipback.ingest.commands import sessions as cmd

    cmd.run(store=store, patient=patient)


@app.command()
def report(
    session: Annotated[str, typer.Argument(help="Session id in the local store (a unique prefix of at least 4 characters will do), 'latest' (the session with data that started last), or a folder written by 'hipback process'.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write (one self-contained page, opens offline).")],
    store: Annotated[Optional[Path], typer.Option("--store", help="Local store file (default: hipback.sqlite).")] = None,
    reprocess: Annotated[bool, typer.Option("--reprocess", help="Process the session's raw samples again instead of reading its stored results.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing report file.")] = False,
) -> None:
    """Write a session's report page: plain summary, charts, data quality and the clinician's numbers."""
    from hipback.ingest.commands import report as cmd

    cmd.run(session=session, out=out, store=store, reprocess=reprocess, overwrite=overwrite)


@app.command()
def export(
    session: Annotated[str, typer.Argument(help="Session id in the local store (a unique prefix of at least 4 characters will do) or 'latest' (the session with data that started last).")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet (angles, strides, holds) or sto (OpenSense orientations).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files into.")],
    store: Annotated[Optional[Path], typer.Option("--store", help="Local store file (default: hipback.sqlite).")] = None,
    sto_frame: Annotated[str, typer.Option("--sto-frame", help="World frame of the .sto quaternions: z-up (as recorded) or y-up (OpenSim ground).")] = "z-up",
    reprocess: Annotated[bool, typer.Option("--reprocess", help="Process the session's raw samples again instead of reading its stored results.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the files of an earlier export in --out.")] = False,
) -> None:
    """Export a session for research: angles and strides as CSV/Parquet, orientations as OpenSense .sto."""
    from hipback.ingest.commands import export as cmd

    cmd.run(session=session, fmt=fmt, out=out, store=store, sto_frame=sto_frame, reprocess=reprocess,
            overwrite=overwrite)


@app.command()
def scan(
    timeout: Annotated[float, typer.Option(help="Seconds to scan.")] = 5.0,
    virtual: Annotated[bool, typer.Option("--virtual", help="Scan a virtual neighbourhood (one virtual sensor of each kind; no radio).")] = False,
) -> None:
    """List nearby supported sensors: name, address, kind and signal strength."""
    from hipback.ingest.commands import scan as cmd

    cmd.run(timeout=timeout, virtual=virtual)


@app.command()
def record(
    config: Annotated[Path, typer.Option("--config", help="TOML session config: patient pseudonym, sensors (kind, address, placement), prescription.")],
    session: Annotated[Optional[str], typer.Option("--session", help="Continue this unfinished session of the config's patient instead of opening a new one: its id, a unique prefix of at least 4 characters, or 'latest' (the patient's most recently started unfinished session).")] = None,
    virtual_scenario: Annotated[str, typer.Option("--virtual-scenario", help="With ble_backend = \"bumble\": the simulated patient's scenario.")] = "short",
    speed: Annotated[float, typer.Option(help="With ble_backend = \"bumble\": run virtual time this many times faster.")] = 1.0,
) -> None:
    """Record a session: connect the sensors, calibrate, store every sample, process live; Ctrl-C stops cleanly."""
    from hipback.ingest.commands import record as cmd

    cmd.run(config_path=config, session_id=session, virtual_scenario=virtual_scenario, speed=speed)


dashboards_app = typer.Typer(help="Grafana dashboards and alert rules.", no_args_is_help=False)
app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.callback(invoke_without_command=True)
def _dashboards_root(ctx: typer.Context) -> None:
    """Grafana dashboards and alert rules."""
    _help_without_command(ctx)


@dashboards_app.command("push")
def dashboards_push(
    grafana_url: Annotated[str, typer.Option("--grafana-url", help="Base URL of an existing Grafana 11+, e.g. https://grafana.example.org.")],
    token_file: Annotated[Optional[Path], typer.Option("--token-file", help="File (chmod 600) with a Grafana service-account token; HIPBACK_GRAFANA_TOKEN wins.")] = None,
    influx_url: Annotated[Optional[str], typer.Option("--influx-url", help="InfluxDB URL as Grafana reaches it (default: HIPBACK_INFLUX_URL).")] = None,
    database: Annotated[Optional[str], typer.Option("--database", help="InfluxDB database/bucket (default: HIPBACK_INFLUX_DATABASE or hipback).")] = None,
    folder: Annotated[str, typer.Option(help="Grafana folder title (and uid) for the dashboards and rules.")] = "hipback",
    skip_datasource: Annotated[bool, typer.Option("--skip-datasource", help="Do not create or update the data source.")] = False,
    skip_alerts: Annotated[bool, typer.Option("--skip-alerts", help="Do not create or update the alert rules.")] = False,
) -> None:
    """Create or update the InfluxDB data source, the dashboards and the clinician alert rules in Grafana."""
    from hipback.ingest.commands import dashboards as cmd

    cmd.run(grafana_url=grafana_url, token_file=token_file, influx_url=influx_url, database=database,
            folder=folder, skip_datasource=skip_datasource, skip_alerts=skip_alerts)


def _click_exceptions() -> dict[str, tuple[type, ...]]:
    """click's exception classes from every click the installed typer may use (``typer._click``, ``click``)."""
    found: dict[str, list[type]] = {"ClickException": [], "Abort": [], "Exit": [], "NoArgsIsHelpError": []}
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for cls_name, classes in found.items():
            cls = getattr(module, cls_name, None)
            if isinstance(cls, type):
                classes.append(cls)
    return {k: tuple(v) for k, v in found.items()}


def _sentence(text: str) -> str:
    """One line, ending with one full stop, control characters shown as ``\\xNN`` (a typed argument or a
    file's bytes cannot drive the terminal)."""
    return printable(" ".join(str(text).split())).rstrip(".") + "."


def _usage_error(exc: Any) -> str:
    ctx = getattr(exc, "ctx", None)
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else " (see 'hipback --help')"
    try:
        message = exc.format_message()
    except Exception:  # pragma: no cover - every click has format_message
        message = str(exc)
    return f"{_sentence(message).rstrip('.')}{where}."


def run(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``) and return its exit code (see the module
    docstring); messages go to stderr."""
    clicks = _click_exceptions()
    try:
        result = app(args=argv, prog_name="hipback", standalone_mode=False)
    except HipbackError as exc:
        typer.echo(f"hipback: {_sentence(str(exc))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        reason = (exc.strerror or str(exc)).lower()
        typer.echo(f"hipback: {_sentence(where + reason)}", err=True)
        return 2
    except MemoryError:
        typer.echo("hipback: out of memory; the input is larger than this machine can process at once.", err=True)
        return 1
    except Exception as exc:
        if isinstance(exc, clicks["Exit"]):
            code = int(getattr(exc, "exit_code", 0) or 0)
            return _interrupted() if code == 130 else code
        if isinstance(exc, clicks["Abort"]):  # click 8.1 turns Ctrl-C into Abort
            return _interrupted()
        if isinstance(exc, clicks["NoArgsIsHelpError"]):
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                typer.echo(ctx.get_help())
            return 2
        if isinstance(exc, clicks["ClickException"]):
            typer.echo(f"hipback: {_usage_error(exc)}", err=True)
            return 2
        if os.environ.get("HIPBACK_DEBUG"):
            traceback.print_exc()
        typer.echo(f"hipback: unexpected error ({type(exc).__name__}: {_sentence(str(exc)).rstrip('.')}); "
                   "this is a bug, please report it (HIPBACK_DEBUG=1 shows where it happened).", err=True)
        return 1
    code = result if isinstance(result, int) else 0
    return _interrupted() if code == 130 else code  # typer 0.2x turns Ctrl-C into a silent Exit(130)


def _interrupted() -> int:
    typer.echo("hipback: interrupted; nothing half-written was left behind as if it were complete.", err=True)
    return 130


def main() -> None:
    """Console-script entry point: files created from here on are private (umask 077)."""
    os.umask(0o077)
    sys.exit(run())


if __name__ == "__main__":
    main()

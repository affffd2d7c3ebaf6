"""The ``hipback`` command line.

Each subcommand parses its options here and delegates to a module in :mod:`hipback.ingest.commands`
(imported lazily so that ``hipback --help`` stays fast). User mistakes raise
:class:`hipback.ingest.errors.HipbackError`; :func:`main` prints its one sentence and exits with its code,
never a traceback. Exit codes: 0 ok, 1 unexpected failure, 2 bad input/config, 3 database, 130 Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hipback.ingest.errors import HipbackError

app = typer.Typer(
    name="hipback",
    help="Wearable IMU pipeline: hip extension, pelvic tilt and lumbar compensation in walks and stretches.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from hipback import __version__

        typer.echo(f"hipback {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Wearable IMU pipeline: hip extension, pelvic tilt and lumbar compensation in walks and stretches."""


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the session and its ground truth into.")],
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same session).")] = 1,
    scenario: Annotated[str, typer.Option(help="Scenario name (see --list-scenarios).")] = "clinic_visit",
    list_scenarios: Annotated[bool, typer.Option("--list-scenarios", help="List scenarios and exit.")] = False,
) -> None:
    """Simulate a virtual patient session (sensor files plus ground truth)."""
    from hipback.ingest.commands import simulate as cmd

    cmd.run(out=out, seed=seed, scenario=scenario, list_only=list_scenarios)


@app.command()
def process(
    inputs: Annotated[list[str], typer.Argument(help="PLACEMENT=FILE pairs (pelvis, thigh_left, thigh_right, lumbar_upper).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for angles.csv, strides.csv, holds.csv, activity.csv, summary.json.")],
    store: Annotated[Path | None, typer.Option("--store", help="Also put the recording, results and InfluxDB points into this local store.")] = None,
    patient: Annotated[str | None, typer.Option("--patient", help="Pseudonymous patient id for --store (default: the recording's, else 'offline').")] = None,
) -> None:
    """Process recording files offline into angles, strides, holds and activity."""
    from hipback.ingest.commands import process as cmd

    cmd.run(inputs=inputs, out=out, store=store, patient=patient)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's local store and outputs.")] = Path("demo-out"),
    seed: Annotated[int, typer.Option(help="Random seed of the virtual patient.")] = 7,
    speed: Annotated[float, typer.Option(help="Virtual time runs this many times faster than real time.")] = 12.0,
) -> None:
    """Virtual patient, three virtual sensors, the whole pipeline: no servers and no radio needed."""
    from hipback.ingest.commands import demo as cmd

    cmd.run(out=out, seed=seed, speed=speed)


@app.command()
def sync(
    store: Annotated[Path | None, typer.Option("--store", help="Local store to send from (default: HIPBACK_STORE or hipback.sqlite).")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Send only this session's lines.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Lines per request.")] = 5000,
) -> None:
    """Send what the local store still owes InfluxDB (HIPBACK_INFLUX_URL, ..._DATABASE, ..._TOKEN)."""
    from hipback.ingest.commands import sync as cmd

    cmd.run(store=store, session=session, batch_size=batch_size)


@app.command()
def report(
    session: Annotated[str, typer.Argument(help="Session id in the local store (a unique prefix will do), or a folder written by 'hipback process'.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write (one self-contained page, opens offline).")],
    store: Annotated[Path | None, typer.Option("--store", help="Local store file (default: hipback.sqlite).")] = None,
) -> None:
    """Write a session's report page: plain summary, charts, data quality and the clinician's numbers."""
    from hipback.ingest.commands import report as cmd

    cmd.run(session=session, out=out, store=store)


@app.command()
def export(
    session: Annotated[str, typer.Argument(help="Session id in the local store (a unique prefix will do).")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet (angles, strides, holds) or sto (OpenSense orientations).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files into.")],
    store: Annotated[Path | None, typer.Option("--store", help="Local store file (default: hipback.sqlite).")] = None,
    sto_frame: Annotated[str, typer.Option("--sto-frame", help="World frame of the .sto quaternions: z-up (as recorded) or y-up (OpenSim ground).")] = "z-up",
) -> None:
    """Export a session for research: angles and strides as CSV/Parquet, orientations as OpenSense .sto."""
    from hipback.ingest.commands import export as cmd

    cmd.run(session=session, fmt=fmt, out=out, store=store, sto_frame=sto_frame)


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
    session: Annotated[str | None, typer.Option("--session", help="Continue this unfinished session instead of opening a new one.")] = None,
    virtual_scenario: Annotated[str, typer.Option("--virtual-scenario", help="With ble_backend = \"bumble\": the simulated patient's scenario.")] = "short",
    speed: Annotated[float, typer.Option(help="With ble_backend = \"bumble\": run virtual time this many times faster.")] = 1.0,
) -> None:
    """Record a session: connect the sensors, calibrate, store every sample, process live; Ctrl-C stops cleanly."""
    from hipback.ingest.commands import record as cmd

    cmd.run(config_path=config, session_id=session, virtual_scenario=virtual_scenario, speed=speed)


dashboards_app = typer.Typer(help="Grafana dashboards and alert rules.", no_args_is_help=True)
app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.command("push")
def dashboards_push(
    grafana_url: Annotated[str, typer.Option("--grafana-url", help="Base URL of an existing Grafana 11+, e.g. https://grafana.example.org.")],
    token_file: Annotated[Path | None, typer.Option("--token-file", help="File (chmod 600) with a Grafana service-account token; HIPBACK_GRAFANA_TOKEN wins.")] = None,
    influx_url: Annotated[str | None, typer.Option("--influx-url", help="InfluxDB URL as Grafana reaches it (default: HIPBACK_INFLUX_URL).")] = None,
    database: Annotated[str | None, typer.Option("--database", help="InfluxDB database/bucket (default: HIPBACK_INFLUX_DATABASE or hipback).")] = None,
    folder: Annotated[str, typer.Option(help="Grafana folder title (and uid) for the dashboards and rules.")] = "hipback",
    skip_datasource: Annotated[bool, typer.Option("--skip-datasource", help="Do not create or update the data source.")] = False,
    skip_alerts: Annotated[bool, typer.Option("--skip-alerts", help="Do not create or update the alert rules.")] = False,
) -> None:
    """Create or update the InfluxDB data source, the dashboards and the clinician alert rules in Grafana."""
    from hipback.ingest.commands import dashboards as cmd

    cmd.run(grafana_url=grafana_url, token_file=token_file, influx_url=influx_url, database=database,
            folder=folder, skip_datasource=skip_datasource, skip_alerts=skip_alerts)


def main() -> None:
    """Console-script entry point."""
    try:
        app(standalone_mode=False)
    except HipbackError as exc:
        typer.echo(f"hipback: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("hipback: interrupted.", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()

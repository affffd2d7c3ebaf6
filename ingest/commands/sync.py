"""``hipback sync``: send what the local store still owes InfluxDB (its outbox), then report.

Reads the InfluxDB settings from ``HIPBACK_INFLUX_*`` (see :mod:`hipback.ingest.influx.settings`), creates the
database where the server allows it, sends pending lines in batches with a progress line, and marks
them delivered only after the server's 2xx. Exit codes: 0 everything owed was delivered (lines the
server refused as bad data are set aside and reported, not retried); 2 configuration missing or wrong;
3 InfluxDB unreachable or refusing (nothing is lost: the lines stay queued for the next run).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import typer

from hipback.ingest.errors import ConfigError, DatabaseError
from hipback.ingest.influx.settings import InfluxSettings
from hipback.ingest.influx.writer import InfluxWriter
from hipback.ingest.store import LocalStore
from hipback.ingest.sync import SyncReport, SyncWorker


def default_store_path() -> Path:
    """``HIPBACK_STORE`` (``~`` expanded), else ``hipback.sqlite``."""
    raw = os.environ.get("HIPBACK_STORE") or "hipback.sqlite"
    try:
        return Path(raw).expanduser()
    except RuntimeError:  # "~someone/..." for a user that does not exist
        raise ConfigError("HIPBACK_STORE names the home folder of an unknown user.") from None


def influx_settings() -> InfluxSettings | None:
    """``HIPBACK_INFLUX_*`` settings (None when ``HIPBACK_INFLUX_URL`` is not set), with the URL checked so
    that a malformed one is one :class:`ConfigError` sentence. The sentence does not repeat the URL (it may
    carry a user name and password)."""
    settings = InfluxSettings.from_env()
    if settings is None:
        return None
    try:
        import httpx

        parts = urlsplit(settings.url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
        if not parts.hostname:
            raise ValueError("no host name")
        if any(ord(c) < 33 or ord(c) == 127 for c in settings.url):
            raise ValueError("spaces or control characters")
        httpx.URL(settings.url)
    except (ValueError, TypeError) as exc:  # httpx.InvalidURL is a ValueError... or not, by version
        raise ConfigError(f"HIPBACK_INFLUX_URL is not a valid URL ({_reason(exc)}); give it as "
                          "http(s)://host:port, for example http://localhost:8086") from None
    except Exception as exc:
        if type(exc).__name__ == "InvalidURL":
            raise ConfigError(f"HIPBACK_INFLUX_URL is not a valid URL ({_reason(exc)}); give it as "
                              "http(s)://host:port, for example http://localhost:8086") from None
        raise
    try:  # what only the writer checks (credentials in the URL and a token, ...)
        InfluxWriter.from_settings(settings).close()
    except ValueError as exc:
        raise ConfigError(f"the HIPBACK_INFLUX_* settings do not fit together ({_reason(exc)}).") from None
    return settings


def _reason(exc: BaseException) -> str:
    """The reason without the URL itself (which may hold credentials)."""
    text = str(exc).split(":")[0].split("'")[0].strip() or type(exc).__name__
    return text[:80]


def run(store: Path | None = None, session: str | None = None, batch_size: int = 5000,
        max_retries: int = 3) -> SyncReport:
    path = store if store is not None else default_store_path()
    if not path.exists():  # (a folder: the store's own sentence)
        raise ConfigError(f"the local store {path} does not exist; give its path with --store or "
                          "HIPBACK_STORE")
    settings = influx_settings()
    if settings is None:
        raise ConfigError("HIPBACK_INFLUX_URL is not set; set it (and HIPBACK_INFLUX_DATABASE, "
                          "HIPBACK_INFLUX_TOKEN or HIPBACK_INFLUX_USER/PASSWORD) to say where to send "
                          "the data")
    with LocalStore(path) as local:
        if session is not None:  # its id, a unique prefix or ``latest``; a session not stored is bad input
            session = str(local.find_session(session, "--session")["id"])
        owed = local.outbox_stats(session)["pending"]
        if owed == 0:
            if session is None:
                typer.echo(f"Nothing to send: the outbox of {path} is empty.")
            else:
                typer.echo(f"Nothing to send for session {session}: none of its lines is pending."
                           + _others_pending(local, session))
            return SyncReport()
        writer = InfluxWriter.from_settings(settings, batch_size=batch_size, max_retries=max_retries)
        worker = SyncWorker(local, writer, session_id=session)
        tty = sys.stderr.isatty()

        def progress(report: SyncReport) -> None:
            done = report.delivered + report.set_aside
            text = f"sync: {done}/{owed} lines sent ({report.set_aside} set aside)"
            typer.echo(("\r" + text) if tty else text, err=True, nl=not tty)

        try:
            writer.ensure_database()
            report = worker.sync_once(progress)
        except DatabaseError as exc:
            left = local.outbox_stats(session)["pending"]
            if tty:
                typer.echo("", err=True)
            raise DatabaseError(f"{str(exc).rstrip('.')}; {left} line(s) stay queued in {path}") from None
        finally:
            writer.close()
        if tty:
            typer.echo("", err=True)
        typer.echo(f"Delivered {report.delivered} line(s) to {settings.database} at {writer.url}; "
                   f"{report.pending} pending." + (_others_pending(local, session) if session else ""))
        if report.set_aside:
            typer.echo(f"hipback: InfluxDB refused {report.set_aside} line(s) as bad data; they are set "
                       f"aside in {path} (outbox state set_aside) with the server's reason.", err=True)
        return report


def _others_pending(local: LocalStore, session: str) -> str:
    """A sentence on the lines of the other sessions still pending (empty when there are none)."""
    others = local.outbox_stats()["pending"] - local.outbox_stats(session)["pending"]
    if others <= 0:
        return ""
    return f" {others} line(s) of other sessions are pending: `hipback sync` without --session sends them."

"""``hipback report SESSION --out FILE.html [--store PATH]``: the session report page.

``SESSION`` is a session id in the local store (a unique prefix of at least 4 characters is enough) or a
folder written by ``hipback process``. The page is one self-contained HTML file (see
:mod:`hipback.ingest.report`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from hipback.ingest.errors import ConfigError
from hipback.ingest.files.atomic import atomic_write_text, check_output_folder, private_mkdir
from hipback.ingest.report import build_report
from hipback.ingest.report.source import load_from_process_folder, load_from_store

DEFAULT_STORE = Path("hipback.sqlite")


def run(session: str, out: Path, store: Path | None = None) -> Path:
    """Write the report of ``session`` to ``out``; returns the path written."""
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"the report file {out} should end in .html.")
    if out.exists() and out.is_dir():
        raise ConfigError(f"{out} is a folder; give a file name ending in .html.")
    check_output_folder(out.parent)
    folder = Path(session)
    if store is None and folder.is_dir():
        inputs = load_from_process_folder(folder)
    else:
        inputs = load_from_store(store or DEFAULT_STORE, session)
    html = build_report(
        inputs.results,
        inputs.recording,
        baseline=inputs.baseline,
        prescription=inputs.prescription,
        session=inputs.session,
        sensor_stats=inputs.sensor_stats,
    )
    private_mkdir(out.parent)
    atomic_write_text(out, html)
    typer.echo(f"Report written to {out} ({len(html) // 1024} KiB; opens offline in any browser).")
    return out

"""``hipback report SESSION --out FILE.html [--store PATH] [--reprocess] [--overwrite]``: the report page.

``SESSION`` is a session id in the local store (a unique prefix of at least 4 characters is enough, or
``latest``) or a folder written by ``hipback process``. The page is one self-contained HTML file (see
:mod:`hipback.ingest.report`). A stored session's report reads the results stored when it was processed;
``--reprocess`` processes its raw samples again (a session without stored results is processed again
anyway, and the terminal and the page say so: :mod:`hipback.ingest.report.source`). An existing report file
is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from hipback.ingest.errors import ConfigError
from hipback.ingest.files.atomic import atomic_write_text, check_output_folder, private_mkdir
from hipback.ingest.report import build_report
from hipback.ingest.report.source import load_from_process_folder, load_from_store

DEFAULT_STORE = Path("hipback.sqlite")
#: What ``report`` takes, said when what it was given is none of them.
TAKES = ("report takes a folder written by 'hipback process', or a session in the local store (its id, a "
         "unique prefix of at least 4 characters, or 'latest'; the store is hipback.sqlite here, or give it "
         "with --store)")


def _looks_like_path(session: str) -> bool:
    """hipback's session ids (uuid4 hex) hold no path separator and start with neither '.' nor '~'."""
    return "/" in session or os.sep in session or session.startswith((".", "~"))


def run(session: str, out: Path, store: Path | None = None, *, reprocess: bool = False,
        overwrite: bool = False) -> Path:
    """Write the report of ``session`` to ``out``; returns the path written.

    An existing ``out`` is replaced only with ``overwrite`` (otherwise :class:`ConfigError`, before any
    work)."""
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"the report file {out} should end in .html.")
    if out.exists() and out.is_dir():
        raise ConfigError(f"{out} is a folder; give a file name ending in .html.")
    check_output_folder(out.parent)
    if out.exists() and not overwrite:
        raise ConfigError(f"the report file {out} already exists; give another --out file, or add "
                          "--overwrite to replace it.")
    folder = Path(session)
    if store is None and folder.is_dir():
        if reprocess:
            raise ConfigError(f"{folder} is a 'hipback process' folder without raw samples: --reprocess "
                              "needs a session in the local store.")
        inputs = load_from_process_folder(folder)
    else:
        if _looks_like_path(session) or (store is None and not DEFAULT_STORE.exists()):
            if folder.is_dir():  # (with --store)
                raise ConfigError(f"{session!r} is a folder: a folder written by 'hipback process' is "
                                  "reported without --store (--store reads a session from the local store).")
            if folder.exists():
                raise ConfigError(f"{session!r} is a file, not a folder written by 'hipback process'; "
                                  f"{TAKES}.")
            if _looks_like_path(session):
                raise ConfigError(f"no folder {session!r} was found; {TAKES}.")
            raise ConfigError(f"{session!r} is neither a folder here nor a session in a local store (there "
                              f"is no {DEFAULT_STORE} here); {TAKES}.")
        inputs = load_from_store(store or DEFAULT_STORE, session, reprocess=reprocess)
    html = build_report(
        inputs.results,
        inputs.recording,
        baseline=inputs.baseline,
        prescription=inputs.prescription,
        quality=inputs.quality,
        session=inputs.session,
        sensor_stats=inputs.sensor_stats,
        exercise_rows=inputs.exercise_rows,
        exercise_history=inputs.exercise_history,
        planned=inputs.planned,
    )
    private_mkdir(out.parent)
    atomic_write_text(out, html)
    typer.echo(f"Session {inputs.session.session_id}: {inputs.session.source}")
    typer.echo(f"Report written to {out} ({len(html) // 1024} KiB; opens offline in any browser).")
    return out

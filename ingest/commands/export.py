"""``hipback export SESSION --format csv|parquet|sto --out DIR [--store PATH] [--reprocess] [--overwrite]``:
research export.

``SESSION`` is a session id in the local store, a unique prefix of at least 4 characters, or ``latest``
(the session with data that started last).

``csv`` / ``parquet``: ``angles``, ``strides``, ``holds`` and ``exercises`` (every rep and hold of the
session's exercise programme, as stored) tables; ``sto``: the sensors' orientations in
OpenSim's OpenSense format (see :mod:`hipback.ingest.export` for columns, units and frames). The tables are
the results stored when the session was processed; ``--reprocess`` processes its raw samples again (a
session without stored results is processed again anyway, and the terminal says so). The ``.sto`` file is
made from the raw samples (orientations are not results). Files of an earlier export in DIR are replaced
only with ``--overwrite``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from hipback.ingest.errors import ConfigError
from hipback.ingest.export import FORMATS, STO_FRAMES, export_files, export_session
from hipback.ingest.files.atomic import check_output_folder
from hipback.ingest.report.source import ReportInputs, load_from_store

DEFAULT_STORE = Path("hipback.sqlite")


def _source_line(inputs: ReportInputs, fmt: str, paths: list[Path]) -> str:
    """Where the exported numbers come from. The tables are the session's results (stored, or processed
    again); the .sto orientations are always made from the raw samples, the results only give the moment
    written as the calibration pose (the middle of the standing period the session was calibrated on)."""
    if fmt != "sto" or inputs.recording is None:
        return inputs.session.source
    n = sum(len(s) for s in inputs.recording.streams.values())
    line = f"Orientations made from its {n} raw samples in the local store"
    if not any(p.name == "orientations_calibration.sto" for p in paths):
        return (f"{line}; no calibration pose written (the session has no standing period it was "
                "calibrated on).")
    if inputs.origin == "stored":
        return (f"{line}; the calibration pose at the standing period of the results stored when the session "
                "was processed (`--reprocess` finds it again).")
    why = ("--reprocess" if inputs.origin == "reprocessed"
           else inputs.session.source.partition(": ")[2].rstrip("."))
    return f"{line}; the calibration pose at the standing period found by processing them again ({why})."


def run(session: str, fmt: str, out: Path, store: Path | None = None, sto_frame: str = "z_up", *,
        reprocess: bool = False, overwrite: bool = False) -> list[Path]:
    """Export ``session`` from the store in ``fmt`` into the folder ``out``; returns the files written.

    Files an export in ``fmt`` writes that are already in ``out`` are replaced only with ``overwrite``
    (otherwise :class:`ConfigError`, before any work)."""
    fmt = fmt.lower().strip()
    frame = sto_frame.lower().replace("-", "_")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if frame not in STO_FRAMES:
        raise ConfigError(f"unknown --sto-frame {sto_frame!r}; use z-up or y-up.")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; --out needs a folder.")
    check_output_folder(out)
    earlier = [name for name in export_files(fmt) if (out / name).exists()]
    if earlier and not overwrite:
        raise ConfigError(f"{out} already holds an earlier export ({', '.join(earlier)}); give another --out "
                          "folder, or add --overwrite to replace them.")
    inputs = load_from_store(store or DEFAULT_STORE, session, with_baseline=False, reprocess=reprocess,
                             with_recording=fmt == "sto")
    paths = export_session(inputs.results, inputs.recording, out, fmt, frame=frame,
                           exercise_rows=inputs.exercise_rows, start_utc=inputs.session.start_utc)
    typer.echo(f"Session {inputs.session.session_id}: {_source_line(inputs, fmt, paths)}")
    typer.echo(f"Exported session {inputs.session.session_id} as {fmt}: " + ", ".join(str(p) for p in paths))
    return paths

"""``hipback export SESSION --format csv|parquet|sto --out DIR [--store PATH]``: research export.

``csv`` / ``parquet``: ``angles``, ``strides`` and ``holds`` tables; ``sto``: the sensors' orientations in
OpenSim's OpenSense format (see :mod:`hipback.ingest.export` for columns, units and frames). The session is
read
from the local store and processed again from its raw samples (as ``hipback report`` does).
"""

from __future__ import annotations

from pathlib import Path

import typer

from hipback.ingest.errors import ConfigError
from hipback.ingest.export import FORMATS, STO_FRAMES, export_session
from hipback.ingest.files.atomic import check_output_folder
from hipback.ingest.report.source import load_from_store

DEFAULT_STORE = Path("hipback.sqlite")


def run(session: str, fmt: str, out: Path, store: Path | None = None, sto_frame: str = "z_up") -> list[Path]:
    """Export ``session`` from the store in ``fmt`` into the folder ``out``; returns the files written."""
    fmt = fmt.lower().strip()
    frame = sto_frame.lower().replace("-", "_")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if frame not in STO_FRAMES:
        raise ConfigError(f"unknown --sto-frame {sto_frame!r}; use z-up or y-up.")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; --out needs a folder.")
    check_output_folder(out)
    inputs = load_from_store(store or DEFAULT_STORE, session, with_baseline=False)
    paths = export_session(inputs.results, inputs.recording, out, fmt, frame=frame)
    typer.echo(f"Exported session {inputs.session.session_id} as {fmt}: " + ", ".join(str(p) for p in paths))
    return paths

"""``hipback sessions [--store PATH] [--patient ID]``: the sessions of a local store, newest first.

One row per session: its id (what ``report``, ``export``, ``record --session`` and ``sync --session`` take, or
a unique prefix of at least 4 characters of it), the patient's pseudonym, when it started (local time of
this machine), how long its samples span, the samples stored, whether it is finished and has its results, and
the lines still owed to InfluxDB. The start is the recording's own (``hipback process --store`` of older
files), else when the session was opened. The store is opened read-only (an archived copy on a read-only
disk is listed too); nothing is written.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from hipback.ingest.errors import ConfigError
from hipback.ingest.ids import PSEUDONYM_RULE, is_pseudonym

DEFAULT_STORE = Path("hipback.sqlite")


def session_rows(store_path: Path, patient: str | None = None) -> list[dict[str, Any]]:
    """The sessions of the store at ``store_path`` (of ``patient`` only, when given), newest first: dicts with
    id, patient_id, start_utc, end_utc (Unix s, None while unfinished), samples, outbox_pending and results
    (whether the session's summary is stored)."""
    from hipback.ingest.report.source import open_store

    if patient is not None and not is_pseudonym(patient):
        raise ConfigError(f"--patient takes a pseudonym of {PSEUDONYM_RULE}, not {patient[:80]!r}.")
    store = open_store(store_path)
    try:
        rows = store.sessions(patient)
        for r in rows:
            r["results"] = bool(store.get_results(r["id"], "summary"))
        return rows
    finally:
        store.close()


def _when(t: float | None) -> str:
    if t is None or not math.isfinite(t):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _span(row: dict[str, Any]) -> str:
    start, end = row.get("start_utc"), row.get("end_utc")
    if start is None or end is None or not (math.isfinite(start) and math.isfinite(end)) or end < start:
        return "-"
    s = int(round(end - start))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run(store: Path | None = None, patient: str | None = None, console: Console | None = None) -> list[dict]:
    """Print the sessions as a table (one line when there are none); returns their rows."""
    from hipback.ingest.report.source import session_start

    path = store or DEFAULT_STORE
    rows = session_rows(path, patient)
    console = console or Console()
    if not rows:
        whose = f" of {patient}" if patient else ""
        console.print(f"The local store {path} holds no session{whose} yet.", highlight=False, soft_wrap=True)
        return rows
    # plain aligned columns (one line per session, whatever the terminal's width: ids stay whole)
    head = ("session", "patient", "started", "length", "samples", "state", "to send")
    lines = [head]
    for r in rows:
        state = "open" if r["end_utc"] is None else "finished" if r["results"] else "no results"
        lines.append((r["id"], r["patient_id"], _when(session_start(r)), _span(r), str(r["samples"]), state,
                      str(r["outbox_pending"])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    right = {3, 4, 6}
    console.print(f"Sessions in {path}, newest first (open: recording, or stopped before its end; to send: "
                  "lines owed to InfluxDB):", highlight=False, soft_wrap=True)
    for line in lines:
        console.print("  ".join(c.rjust(w) if i in right else c.ljust(w)
                                for i, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip(),
                      highlight=False, soft_wrap=True)
    return rows

"""Where the report's inputs come from: the local store (a session id) or a ``hipback process`` folder.

From the store, the session's raw samples are read back (:meth:`LocalStore.load_recording`) and processed
again with the same pipeline and the session's prescription, so the report always reflects every stored
sample and the current algorithms (raw samples are kept for exactly this). The baseline is made of the same
patient's earlier sessions in the store: their stored ``summary`` result when there is one, otherwise they
are processed too (at most :data:`MAX_BASELINE_SESSIONS`, the most recent ones). Link statistics
(disconnects, battery, rejected packets) come from the runner's ``session_end`` event.

A folder written by ``hipback process`` (``summary.json``, ``angles.csv``, ``strides.csv``, ``holds.csv``,
``activity.csv``) is read back into the same result objects; it has no raw samples and no baseline.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from hipback.ingest.errors import ConfigError
from hipback.ingest.report.page import SessionInfo
from hipback.ingest.report.wording import Baseline
from hipback.processing.gait import Stride
from hipback.processing.holds import Hold, Prescription
from hipback.processing.pipeline import ProcessorConfig, SessionResults, process_recording
from hipback.processing.types import AngleSeries, Gap, Recording

MAX_BASELINE_SESSIONS = 10


@dataclass
class ReportInputs:
    """Everything :func:`hipback.ingest.report.build_report` takes, loaded from one source."""

    results: Any
    recording: Recording | None
    session: SessionInfo
    prescription: Prescription
    baseline: Baseline | None = None
    sensor_stats: dict[str, Any] = field(default_factory=dict)


def _prescription(meta: dict[str, Any]) -> Prescription:
    p = meta.get("prescription") or {}
    try:
        return Prescription(int(p.get("holds_per_side", 3)), float(p.get("hold_s", 30.0)))
    except (TypeError, ValueError):
        return Prescription()


def process_stored(recording: Recording, prescription: Prescription) -> SessionResults:
    """Process a stored recording with the session's prescription (the live pipeline's settings)."""
    if not recording.streams:
        raise ConfigError("the session has no stored samples, so there is nothing to report.")
    if "pelvis" not in recording.streams:
        raise ConfigError("the session has no pelvis sensor samples; the report needs the pelvis sensor.")
    cfg = ProcessorConfig(holds_per_side=prescription.holds_per_side, hold_s=prescription.hold_s)
    return process_recording(recording, cfg)


def open_store(store_path: Path) -> Any:
    """Open an existing local store read-only (never creates, migrates or changes one, so an archived store on
    a read-only disk can be reported on and exported)."""
    if not Path(store_path).is_file():
        raise ConfigError(f"the local store {store_path} does not exist (give it with --store).")
    from hipback.ingest.store import LocalStore

    return LocalStore(store_path, readonly=True)


def resolve_session_id(store: Any, session: str) -> dict[str, Any]:
    """The store's session row for an id, a unique id prefix (at least 4 characters) or ``latest`` (the
    session that started last)."""
    rows = store.sessions()
    if session == "latest":
        if not rows:
            raise ConfigError(f"the local store {store.path} holds no session yet.")
        return max(rows, key=lambda r: r["start_utc"] or 0.0)
    exact = [r for r in rows if r["id"] == session]
    if exact:
        return exact[0]
    pref = [r for r in rows if len(session) >= 4 and r["id"].startswith(session)]
    if len(pref) == 1:
        return pref[0]
    if len(pref) > 1:
        raise ConfigError(f"the session id {session!r} is ambiguous in {store.path}; give more characters.")
    raise ConfigError(f"session {session!r} is not in the local store {store.path}.")


def _stats_from_events(store: Any, session_id: str) -> dict[str, Any]:
    try:
        ends = store.events(session_id, "session_end")
    except Exception:
        return {}
    for ev in reversed(ends):
        stats = (ev.get("payload") or {}).get("stats")
        if isinstance(stats, dict):
            return stats
    return {}


def _summary_peaks(summary: dict[str, Any]) -> tuple[float | None, float | None]:
    return summary.get("peak_hip_extension_left_deg"), summary.get("peak_hip_extension_right_deg")


def session_start(row: dict[str, Any]) -> float:
    """When a stored session started: its recording's UTC start when known (``hipback process`` imports
    older recordings), else the time the session was opened."""
    v = (row.get("meta") or {}).get("start_utc")
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else float(row["start_utc"])


def baseline_from_store(store: Any, row: dict[str, Any]) -> Baseline | None:
    """Earlier sessions of the same patient (started before this one), most recent first, at most 10."""
    start = session_start(row)
    earlier = [
        r
        for r in store.sessions(row["patient_id"])
        if r["id"] != row["id"] and session_start(r) < start and r.get("samples", 1)
    ]
    earlier = sorted(earlier, key=session_start, reverse=True)[:MAX_BASELINE_SESSIONS]
    out = []
    for r in earlier:
        left = right = None
        try:
            stored = store.get_results(r["id"], "summary")
        except Exception:
            stored = []
        if (
            stored
            and isinstance(stored[0], dict)
            and ("peak_hip_extension_left_deg" in stored[0] or "peak_hip_extension_right_deg" in stored[0])
        ):
            left, right = _summary_peaks(stored[0])
        else:
            try:
                rec = store.load_recording(r["id"])
                res = process_stored(rec, _prescription(r.get("meta") or {}))
                left, right = _summary_peaks(res.summary)
            except Exception:  # an unreadable earlier session is left out of the baseline
                continue
        if left is None and right is None:
            continue
        out.append(
            {"session_id": r["id"], "start_utc": session_start(r), "left_deg": left, "right_deg": right}
        )
    return Baseline(out) if out else None


def load_from_store(store_path: Path, session: str, *, with_baseline: bool = True) -> ReportInputs:
    """Load and process one stored session, its baseline and its link statistics."""
    store = open_store(store_path)
    try:
        row = resolve_session_id(store, session)
        recording = store.load_recording(row["id"])
        meta = row.get("meta") or {}
        prescription = _prescription(meta)
        results = process_stored(recording, prescription)
        baseline = baseline_from_store(store, row) if with_baseline else None
        stats = _stats_from_events(store, row["id"])
    finally:
        store.close()
    info = SessionInfo(
        row["id"],
        row["patient_id"],
        recording.start_utc or row["start_utc"],
        source=f"Processed again from the {sum(len(s) for s in recording.streams.values())} raw "
        f"samples kept in the local store.",
    )
    return ReportInputs(results, recording, info, prescription, baseline, stats)


# -- a folder written by ``hipback process`` -----------------------------------------------------------


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _num(v: str | None) -> float:
    if v is None or v == "":
        return math.nan
    try:
        return float(v)
    except ValueError:
        return math.nan


def _from_row(cls: type, row: dict[str, str]) -> Any:
    """A dataclass instance from a CSV row written by ``hipback process`` (``*_deg`` back to ``*_rad``)."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if not f.init:
            continue
        name = f.name
        if name.endswith("_rad"):
            v = _num(row.get(name[:-4] + "_deg"))
            kwargs[name] = math.radians(v) if math.isfinite(v) else math.nan
        elif f.type in ("str", str):
            kwargs[name] = row.get(name, "")
        elif f.type in ("int", int):
            kwargs[name] = int(_num(row.get(name)) if math.isfinite(_num(row.get(name))) else 0)
        elif f.type in ("bool", bool):
            kwargs[name] = row.get(name, "0") in ("1", "True", "true")
        else:
            kwargs[name] = _num(row.get(name))
    return cls(**kwargs)


def load_from_process_folder(folder: Path) -> ReportInputs:
    """Results from a ``hipback process`` output folder (see the module docstring)."""
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise ConfigError(f"{folder} has no summary.json; give a folder written by 'hipback process'.")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{summary_path} cannot be read ({exc}).") from None
    rows = _read_csv(folder / "angles.csv")
    t = np.array([_num(r.get("time_s")) for r in rows])
    cols = {
        name: np.radians(np.array([_num(r.get(f"{name}_deg")) for r in rows])) for name in AngleSeries.FIELDS
    }
    angles = AngleSeries(t=t, **cols) if rows else AngleSeries.empty()
    try:
        strides = [_from_row(Stride, r) for r in _read_csv(folder / "strides.csv")]
        holds = [_from_row(Hold, r) for r in _read_csv(folder / "holds.csv")]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{folder}: a strides/holds table cannot be read ({exc}).") from None
    activity = [
        SimpleNamespace(label=r.get("label", ""), t_start=_num(r.get("t_start")), t_end=_num(r.get("t_end")))
        for r in _read_csv(folder / "activity.csv")
    ]
    calibration = {
        p: SimpleNamespace(
            placement=p,
            quality=float(c.get("quality", math.nan)),
            reasons=list(c.get("reasons", [])),
            flags=list(c.get("flags", [])),
        )
        for p, c in (summary.get("calibration") or {}).items()
    }
    gaps = [
        Gap(g["placement"], g["t_start_s"], g["t_end_s"], int(g.get("missing", 0)))
        for g in summary.get("gaps", []) or []
    ]
    placements = summary.get("sensors") or {p: "" for p in calibration}
    results = SessionResults(
        angles=angles,
        strides=strides,
        bouts=[],
        holds=holds,
        activity=activity,
        calibration=calibration,
        calibration_state=summary.get("calibration_state", ""),
        warnings=list(summary.get("warnings", [])),
        messages=[],
        gaps=gaps,
        summary=summary,
        placements=placements,
    )
    h = summary.get("holds") or {}
    prescription = Prescription(int(h.get("prescribed_per_side", 3)), float(h.get("prescribed_hold_s", 30.0)))
    info = SessionInfo(
        session_id=folder.name, source=f"Read from the files in {folder.name}/ written by 'hipback process'."
    )
    return ReportInputs(results, None, info, prescription)

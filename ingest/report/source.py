"""Where the report's and the export's inputs come from: the local store (a session id) or a folder written by
``hipback process``.

From the store, a session's results are read as they were stored when the session was processed (by the
session runner at its end, ``hipback process --store`` or :func:`hipback.ingest.publish.publish_session`):
summary, strides, walking bouts, holds, activity, calibration, warnings and the angle series
(:func:`hipback.ingest.results.angles_rows`). :func:`results_from_rows` turns those rows back into the
processing's objects (degrees back to radians, the schema's field names back to the records'), and
:func:`load_from_process_folder` reads a ``hipback process`` folder with the same reader. A session is
processed again from its raw samples (:meth:`LocalStore.load_recording`, the same pipeline with the session's
prescription) only when asked (``reprocess``) or when it has no stored results to read: it stopped before it
finished, an older release stored it without the angle series, or its stored rows cannot be read.
:attr:`ReportInputs.origin` says which, as a sentence for the page's source line and the terminal.

The baseline is made of the same patient's earlier sessions in the store: their stored ``summary`` result
when there is one, otherwise they are processed too (at most :data:`MAX_BASELINE_SESSIONS`, the most recent
ones). Link statistics (disconnects, battery, rejected packets) come from the runner's ``session_end``
event; sample counts, devices and rates from the store's sensor rows.

A folder written by ``hipback process`` (``summary.json``, ``angles.csv``, ``strides.csv``, ``holds.csv``,
``activity.csv``) has no raw samples and no baseline. Every malformed input there (a file that is not
UTF-8, JSON of the wrong shape, text where a number belongs, a side that is neither left nor right, a time
that is not finite) is a :class:`~hipback.ingest.errors.ConfigError` naming the file, never a traceback.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from hipback.ingest.errors import ConfigError
from hipback.ingest.report.page import SessionInfo
from hipback.ingest.report.quality import DataQuality, assess_quality
from hipback.ingest.report.wording import Baseline, ExerciseHistory
from hipback.ingest.results import (
    ANGLE_SERIES_COLUMNS,
    angle_series_from_columns,
    angles_from_rows,
    holds_planned,
)
from hipback.ingest.session.stats import SensorStats
from hipback.processing.activity import ActivityBout
from hipback.processing.calibration import SensorCalibration
from hipback.processing.gait import Stride, WalkingBout
from hipback.processing.holds import Hold, Prescription
from hipback.processing.pipeline import (
    ProcessorConfig,
    SessionResults,
    offline_calibration_wait_s,
    process_recording,
)
from hipback.processing.types import PLACEMENTS, AngleSeries, Gap, Recording

if TYPE_CHECKING:
    from hipback.ingest.store import LocalStore

MAX_BASELINE_SESSIONS = 10
SIDES = ("left", "right")


@dataclass
class ReportInputs:
    """Everything :func:`hipback.ingest.report.build_report` and the export take, loaded from one source.

    ``recording``: the raw samples when they were read (processing again, or asked for by the ``.sto``
    export); ``quality``: the data-quality figures when they were worked out here (stored results: from the
    store's sensor rows, without reading the samples); ``origin``: ``stored``, ``reprocessed`` (asked for),
    ``fallback`` (no stored results to read) or ``folder``; ``exercise_rows``: the session's stored
    ``exercises`` rows (:class:`hipback.ingest.programme.ExerciseRows`), None when there are none (the report
    then makes them from ``results.exercise_events``). Processing again does not run the exercise programme,
    so a reprocessed report keeps the stored exercise rows. ``exercise_history``: the stored exercise rows of
    the patient's earlier sessions (:func:`exercise_history_from_store`), read with the baseline.
    """

    results: SessionResults
    recording: Recording | None
    session: SessionInfo
    prescription: Prescription
    baseline: Baseline | None = None
    sensor_stats: dict[str, SensorStats] = field(default_factory=dict)
    quality: DataQuality | None = None
    origin: str = "stored"
    exercise_rows: list[dict[str, Any]] | None = None
    exercise_history: ExerciseHistory | None = None
    #: whether the patient's plan prescribed the stretch holds (a recorded session's config); False for a
    #: session from ``hipback process``, whose hold target is the pipeline's default (:func:`planned_holds`)
    planned: bool = True


# -- rows back into the processing's records -------------------------------------------------------------

#: Record fields that rows carry under another name: the schema's (``pelvic_tilt_at_peak_ext_deg``,
#: ``compensation_index``) or ``hipback process``'s (``window_s``).
_ALIASES: dict[str, tuple[str, ...]] = {
    "pelvic_tilt_at_peak_extension_rad": ("pelvic_tilt_at_peak_extension_deg", "pelvic_tilt_at_peak_ext_deg"),
    "lumbar_compensation_index": ("lumbar_compensation_index", "compensation_index"),
    "window": ("window", "window_s"),
}
#: Fields that must hold a finite number in every record that has them.
_FINITE = ("t_start", "t_end", "duration_s", "correct_s", "quality")


def _row_names(name: str) -> tuple[str, ...]:
    """Where a record field is found in a row: ``*_rad`` as ``*_deg``, ``t_x`` also as ``t_x_s`` (the
    ``hipback process`` CSV files), the aliases above."""
    if name in _ALIASES:
        return _ALIASES[name]
    if name.endswith("_rad"):
        return (name[:-4] + "_deg",)
    if name.startswith("t_") and not name.endswith("_s"):
        return (name, name + "_s")
    return (name,)


def _number(v: Any, name: str) -> float:
    """A float from a JSON value or a CSV cell; None and an empty cell are NaN (missing)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return math.nan
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ValueError(f"{name} is not a number")
    try:
        x = float(v)
    except ValueError:
        raise ValueError(f"{name} is not a number ({str(v)[:20]!r})") from None
    if math.isinf(x):
        raise ValueError(f"{name} is infinite")
    return x


def _value(kind: str, v: Any, name: str) -> Any:
    """``v`` as a record field of annotated type ``kind`` (ValueError when it is not one)."""
    if kind == "str":
        if not isinstance(v, str):
            raise ValueError(f"{name} is not text")
        return v
    if kind == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, int | str) and str(v).strip().lower() in ("0", "1", "true", "false"):
            return str(v).strip().lower() in ("1", "true")
        raise ValueError(f"{name} is neither true nor false")
    if kind == "int":
        x = _number(v, name)
        if not math.isfinite(x) or x != round(x) or abs(x) > 1e12:
            raise ValueError(f"{name} is not a whole number")
        return int(x)
    if kind == "list[str]":
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise ValueError(f"{name} is not a list of texts")
        return list(v)
    if kind in ("FloatArray", "tuple[float, float]"):
        width = 4 if kind == "FloatArray" else 2
        if not isinstance(v, list | tuple) or len(v) != width:
            raise ValueError(f"{name} does not hold {width} numbers")
        arr = np.array([_number(x, name) for x in v], dtype=np.float64)
        return arr if kind == "FloatArray" else (float(arr[0]), float(arr[1]))
    return _number(v, name)


def record_from_row(cls: type, row: Mapping[str, Any]) -> Any:
    """A processing record (:class:`Stride`, :class:`WalkingBout`, :class:`Hold`, :class:`ActivityBout`,
    :class:`SensorCalibration`) from a row: a store row (JSON values,
    :func:`hipback.ingest.results.store_rows`) or a ``hipback process`` CSV row (text). Angles come back
    from degrees to radians; a field the row does not have takes the record's default (NaN for a number
    without one). ValueError names the first field that does not fit."""
    if not isinstance(row, Mapping):
        raise ValueError("a row is not a record")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind = str(f.type)
        names = _row_names(f.name)
        present = [n for n in names if n in row and row[n] is not None and row[n] != ""]
        if present:
            v = _value(kind, row[present[0]], present[0])
            if f.name.endswith("_rad"):
                v = math.radians(v)
        elif f.default is not dataclasses.MISSING:
            v = f.default
        elif f.default_factory is not dataclasses.MISSING:
            v = f.default_factory()
        elif kind == "FloatArray":
            v = np.full(4, np.nan)
        elif kind in ("float", "tuple[float, float]"):
            v = math.nan if kind == "float" else (math.nan, math.nan)
        else:
            raise ValueError(f"{names[-1]} is missing")
        if f.name == "side" and v not in SIDES:
            raise ValueError(f"side is {str(v)[:20]!r}, neither left nor right")
        if f.name in _FINITE and not math.isfinite(v):
            raise ValueError(f"{names[-1]} is not a finite number")
        kwargs[f.name] = v
    if "t_start" in kwargs and "t_end" in kwargs and kwargs["t_end"] < kwargs["t_start"]:
        raise ValueError("it ends before it starts")
    return cls(**kwargs)


def _records(cls: type, rows: Any, what: str) -> list[Any]:
    if not isinstance(rows, list):
        raise ValueError(f"the {what} are not a list")
    out = []
    for i, r in enumerate(rows):
        try:
            out.append(record_from_row(cls, r))
        except ValueError as exc:
            raise ValueError(f"{what} row {i + 1}: {exc}") from None
    return out


def _calibration(items: Any) -> dict[str, SensorCalibration]:
    """``{placement: SensorCalibration}`` from stored rows (a list with ``placement``) or ``summary.json``'s
    ``calibration`` (a dict per placement)."""
    if isinstance(items, dict):
        items = [{**c, "placement": p} if isinstance(c, dict) else c for p, c in items.items()]
    cals = _records(SensorCalibration, items, "calibration")
    return {c.placement: c for c in cals}


def _gap(g: Any, offset: float = 0.0) -> Gap:
    if not isinstance(g, dict) or not isinstance(g.get("placement"), str):
        raise ValueError("a gap is not a record with a placement")
    t0 = _number(g.get("t_start", g.get("t_start_s")), "gap start") - offset
    t1 = _number(g.get("t_end", g.get("t_end_s")), "gap end") - offset
    missing = _value("int", g.get("missing", 0), "gap missing")
    if not (math.isfinite(t0) and math.isfinite(t1)) or t1 < t0 or missing < 0:
        raise ValueError("a gap has no finite start and end")
    reason = g.get("reason", "gap")
    return Gap(g["placement"], t0, t1, missing, reason if isinstance(reason, str) else "gap")


#: Summary fields and what they hold: a number (None allowed), a whole number, text, a dict of numbers,
#: a [low, high] pair of numbers (or None).
_SUMMARY_NUMBERS = (
    "duration_s", "rate_hz", "cadence_spm", "peak_hip_extension_asymmetry_deg",
    *(f"{k}_{side}{u}" for side in SIDES for k, u in (("peak_hip_extension", "_deg"),
                                                      ("compensation_index", ""),
                                                      ("pelvic_tilt_excursion", "_deg"))),
)
_SUMMARY_COUNTS = tuple(f"{k}_{side}" for side in SIDES for k in ("n_strides", "doubtful_strides"))
_SUMMARY_NUMBER_DICTS = ("calibration_quality", "calibration_ml_uncertainty_deg", "activity_s")


def _check_number(v: Any, name: str, *, whole: bool = False, none: bool = True) -> None:
    if v is None and none:
        return
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"{name} is not a number")
    if whole and (v != round(v) or v < 0):
        raise ValueError(f"{name} is not a count")


def check_summary(summary: Any) -> dict[str, Any]:
    """``summary`` if it has the shape of a session summary
    (:func:`hipback.processing.summary.build_summary`, plus what ``hipback process`` adds); ValueError naming
    the first field that does not. Fields it does not know are left alone."""
    if not isinstance(summary, dict):
        raise ValueError("the summary is not a JSON object")
    for k in _SUMMARY_NUMBERS:
        _check_number(summary.get(k), k)
    for k in _SUMMARY_COUNTS:
        _check_number(summary.get(k), k, whole=True)
    for k in _SUMMARY_NUMBER_DICTS:
        d = summary.get(k)
        if d is not None:
            if not isinstance(d, dict):
                raise ValueError(f"{k} is not an object")
            for name, v in d.items():
                _check_number(v, f"{k}.{name}")
    for k, v in summary.items():
        if k.endswith("_range_deg") and v is not None:
            if not isinstance(v, list) or len(v) != 2:
                raise ValueError(f"{k} is not a [low, high] pair")
            for x in v:
                _check_number(x, k)
    holds = summary.get("holds")
    if holds is not None:
        if not isinstance(holds, dict):
            raise ValueError("holds is not an object")
        _check_number(holds.get("prescribed_per_side"), "holds.prescribed_per_side", whole=True)
        _check_number(holds.get("prescribed_hold_s"), "holds.prescribed_hold_s")
        for side in SIDES:
            h = holds.get(side)
            if h is None:
                continue
            if not isinstance(h, dict):
                raise ValueError(f"holds.{side} is not an object")
            for k in ("count", "completed", "arching"):
                _check_number(h.get(k), f"holds.{side}.{k}", whole=True)
            _check_number(h.get("peak_hip_extension_deg"), f"holds.{side}.peak_hip_extension_deg")
            cs = h.get("correct_s")
            if cs is not None and not isinstance(cs, list):
                raise ValueError(f"holds.{side}.correct_s is not a list")
            for x in cs or []:
                _check_number(x, f"holds.{side}.correct_s", none=False)
    imp = summary.get("implausible")
    if imp is not None:
        if not isinstance(imp, dict) or not all(isinstance(c, dict) for c in imp.values()):
            raise ValueError("implausible is not an object of objects")
        for name, c in imp.items():
            for k, v in c.items():
                _check_number(v, f"implausible.{name}.{k}")
    for k in ("implausible_warning", "calibration_state"):
        if summary.get(k) is not None and not isinstance(summary[k], str):
            raise ValueError(f"{k} is not text")
    warnings = summary.get("warnings")
    if warnings is not None and (not isinstance(warnings, list)
                                 or not all(isinstance(w, str) for w in warnings)):
        raise ValueError("warnings is not a list of texts")
    sensors = summary.get("sensors")
    if sensors is not None and (not isinstance(sensors, dict)
                                or not all(isinstance(v, str) for v in sensors.values())):
        raise ValueError("sensors is not an object of texts")
    return summary


def _prescription_of_summary(summary: dict[str, Any]) -> Prescription:
    h = summary.get("holds") or {}
    per_side, hold_s = h.get("prescribed_per_side"), h.get("prescribed_hold_s")
    return Prescription(int(per_side) if per_side is not None else 3,
                        float(hold_s) if hold_s is not None else 30.0)


def results_from_rows(rows: Mapping[str, list[Any]]) -> tuple[SessionResults, float]:
    """A session's :class:`SessionResults` and the UTC time (Unix s) of its session time 0 from its stored
    result rows per kind (:func:`hipback.ingest.results.store_rows`). ValueError, with the reason, when the
    rows are missing or malformed."""
    summary_rows = rows.get("summary") or []
    if not summary_rows:
        raise ValueError("there is no stored summary")
    summary = check_summary(summary_rows[0])
    if not rows.get("angles"):
        raise ValueError("the stored results have no angle series (an older hipback stored them)")
    angles, header = angles_from_rows(rows["angles"])
    start_utc = _number(header.get("start_utc"), "start_utc")
    if not math.isfinite(start_utc):
        raise ValueError("the stored angle series has no start time")
    placements = header.get("placements")
    if not isinstance(placements, dict) or not all(isinstance(v, str) for v in placements.values()):
        raise ValueError("the stored angle series does not say which sensors it was computed from")
    gaps = header.get("gaps") or []
    if not isinstance(gaps, list):
        raise ValueError("the stored gaps are not a list")
    messages = header.get("messages") or []
    if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
        raise ValueError("the stored processing log is not a list of texts")
    warnings = rows.get("warnings") or []
    if not all(isinstance(w, dict) and isinstance(w.get("message"), str) for w in warnings):
        raise ValueError("a stored warning is not text")
    results = SessionResults(
        angles=angles,
        strides=_records(Stride, rows.get("strides") or [], "strides"),
        bouts=_records(WalkingBout, rows.get("bouts") or [], "walking bouts"),
        holds=_records(Hold, rows.get("holds") or [], "holds"),
        activity=_records(ActivityBout, rows.get("activity") or [], "activity bouts"),
        calibration=_calibration(rows.get("calibration") or []),
        calibration_state=str(header.get("calibration_state") or ""),
        warnings=[w["message"] for w in warnings],
        messages=list(messages),
        gaps=[_gap(g) for g in gaps],
        summary=summary,
        placements=dict(placements),
    )
    return results, start_utc


# -- the local store ------------------------------------------------------------------------------------


def planned_holds(summary: Mapping[str, Any] | None, meta: Mapping[str, Any] | None = None) -> bool:
    """Whether a session's stretch holds were prescribed by the patient's plan: not when its summary says
    ``holds.planned`` is false (``hipback process`` writes it) or, for a stored session, when its meta holds
    no ``prescription`` (recorded sessions keep their config's)."""
    return holds_planned(summary) and (meta is None or "prescription" in meta)


def _prescription(meta: dict[str, Any]) -> Prescription:
    p = meta.get("prescription") or {}
    try:
        return Prescription(int(p.get("holds_per_side", 3)), float(p.get("hold_s", 30.0)))
    except (TypeError, ValueError, AttributeError):
        return Prescription()


def stored_orientation(meta: dict[str, Any]) -> str:
    """The raw sensors' orientation filter a stored session's results came from: ``hipback process --store``
    names it in the session's meta (``orientation_filter``, the lagged filter by default); a live session and
    an older import say nothing and were processed with the causal filter."""
    from hipback.processing.channel import ORIENTATION_FILTERS

    name = meta.get("orientation_filter")
    return name if name in ORIENTATION_FILTERS else "causal"


def stored_calibration(meta: dict[str, Any]) -> dict[str, SensorCalibration] | None:
    """The calibration a stored session was processed with when ``hipback process --calibration-from`` gave
    it (``calibration_given`` in the session's meta), else None (the session found its own). A damaged entry
    counts as none: the session then searches its own, as a live one does."""
    given = meta.get("calibration_given")
    if not isinstance(given, dict) or not given:
        return None
    try:
        return {str(p): SensorCalibration.from_dict(c) for p, c in given.items()}
    except ValueError:
        return None


def process_stored(
    recording: Recording, prescription: Prescription, orientation: str = "causal",
    calibration: dict[str, SensorCalibration] | None = None,
) -> SessionResults:
    """Process a stored recording with the session's prescription (the live pipeline's settings, but rows wait
    for a standing period as offline processing lets them: :func:`offline_calibration_wait_s`), the raw
    sensors' filter its results came from (``orientation``, see :func:`stored_orientation`) and the
    calibration given with it (``calibration``, see :func:`stored_calibration`; its missing axes taken from
    the recording's movement as then), so that processing it again reproduces them."""
    if not recording.streams:
        raise ConfigError("the session has no stored samples, so there is nothing to process.")
    if "pelvis" not in recording.streams:
        raise ConfigError("the session has no pelvis sensor samples; its angles need the pelvis sensor.")
    cfg = ProcessorConfig(
        holds_per_side=prescription.holds_per_side,
        hold_s=prescription.hold_s,
        calibration_timeout_s=offline_calibration_wait_s(recording.duration_s),
        orientation=orientation,
        initial_calibration=calibration,
        refine_axes=calibration is not None,
    )
    return process_recording(recording, cfg)


def open_store(store_path: Path) -> LocalStore:
    """Open an existing local store read-only (never creates, migrates or changes one, so an archived store on
    a read-only disk can be reported on and exported)."""
    if not Path(store_path).exists():
        raise ConfigError(f"the local store {store_path} does not exist; give the store file with --store.")
    from hipback.ingest.store import LocalStore

    return LocalStore(store_path, readonly=True)


def resolve_session_id(store: LocalStore, session: str) -> dict[str, Any]:
    """The store's session row for an id, a unique id prefix (at least 4 characters) or ``latest`` (the
    session with data that started last: a session in which no sensor delivered a sample is passed over)."""
    if session == "latest":
        rows = store.sessions()
        if not rows:
            raise ConfigError(f"the local store {store.path} holds no session yet.")
        with_data = [r for r in rows if r.get("samples", 1)]
        if not with_data:
            raise ConfigError(f"no session in the local store {store.path} holds any samples.")
        return max(with_data, key=lambda r: r["start_utc"] or 0.0)
    return store.session(str(store.find_session(session)["id"]))


def _stats_from_events(store: LocalStore, session_id: str) -> dict[str, SensorStats]:
    """The sensors' link statistics the session's last ``session_end`` event stored (none: empty)."""
    try:
        ends = store.events(session_id, "session_end")
    except Exception:
        return {}
    for ev in reversed(ends):
        stats = (ev.get("payload") or {}).get("stats")
        if isinstance(stats, dict):
            return {str(p): SensorStats.from_dict(str(p), d) for p, d in stats.items() if isinstance(d, dict)}
    return {}


def _summary_peaks(summary: dict[str, Any]) -> tuple[float | None, float | None]:
    return summary.get("peak_hip_extension_left_deg"), summary.get("peak_hip_extension_right_deg")


def session_start(row: dict[str, Any]) -> float:
    """When a stored session started: its recording's UTC start when known (``hipback process`` imports
    older recordings), else the time the session was opened."""
    v = (row.get("meta") or {}).get("start_utc")
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else float(row["start_utc"])


def baseline_from_store(store: LocalStore, row: dict[str, Any]) -> Baseline | None:
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
                meta = r.get("meta") or {}
                res = process_stored(rec, _prescription(meta), stored_orientation(meta),
                                     stored_calibration(meta))
                left, right = _summary_peaks(res.summary)
            except Exception:  # an unreadable earlier session is left out of the baseline
                continue
        if left is None and right is None:
            continue
        out.append(
            {"session_id": r["id"], "start_utc": session_start(r), "left_deg": left, "right_deg": right}
        )
    return Baseline(out) if out else None


#: Earlier sessions looked at for the exercise history (most recent first), and how many with exercises kept.
MAX_HISTORY_SCAN = 30
MAX_HISTORY_SESSIONS = 5


def exercise_history_from_store(store: LocalStore, row: dict[str, Any]) -> ExerciseHistory | None:
    """The stored ``exercises`` rows of the same patient's sessions started before this one, most recent
    first: up to :data:`MAX_HISTORY_SESSIONS` sessions that have reps or holds, among the
    :data:`MAX_HISTORY_SCAN` latest earlier ones (sessions with unreadable rows are left out)."""
    start = session_start(row)
    earlier = [
        r for r in store.sessions(row["patient_id"]) if r["id"] != row["id"] and session_start(r) < start
    ]
    out = []
    for r in sorted(earlier, key=session_start, reverse=True)[:MAX_HISTORY_SCAN]:
        try:
            rows = store.get_results(r["id"], "exercises")
        except Exception:  # an unreadable earlier session is left out of the history
            continue
        rows = [x for x in rows if isinstance(x, dict)]
        if any(x.get("kind") in ("rep", "hold") for x in rows):
            out.append({"session_id": r["id"], "start_utc": session_start(r), "rows": rows})
        if len(out) >= MAX_HISTORY_SESSIONS:
            break
    return ExerciseHistory(out) if out else None


#: Result kinds read back from the store (the ``exercises`` rows are not read back yet).
STORED_KINDS = ("summary", "angles", "strides", "bouts", "holds", "activity", "calibration", "warnings")


@dataclass
class StoredStream:
    """What the data-quality table reads of a stored sensor, without its samples (``len()``: samples)."""

    placement: str
    kind: str
    device: str
    rate_hz: float
    samples: int
    #: the sensor's own identity: its BLE address (recorded live) or the id its file names (imported)
    sensor_id: str = ""

    def __len__(self) -> int:
        return self.samples


@dataclass
class StoredSensors:
    """A stored session's sensors and link gaps (session seconds) in the shape the data-quality figures read
    from a :class:`Recording` (:func:`hipback.ingest.report.quality.assess_quality`)."""

    streams: dict[str, StoredStream]
    gaps: list[Gap]

    @property
    def placements(self) -> list[str]:
        return [p for p in PLACEMENTS if p in self.streams] + [p for p in self.streams if p not in PLACEMENTS]


def stored_sensors(
    store: LocalStore, session_id: str, start_utc: float, results: SessionResults
) -> StoredSensors:
    """The session's sensors from the store's sensor rows (samples counted, not read) and its link gaps on
    the session timeline (``start_utc``: UTC of session time 0)."""
    streams = {}
    for s in store.sensors(session_id):
        if not s["samples"]:
            continue
        p = s["placement"]
        kind = s["kind"] if s["kind"] in ("quat", "raw") else results.placements.get(p, s["kind"])
        meta = s["meta"] if isinstance(s["meta"], dict) else {}
        rate = meta.get("rate_hz")
        ident = s["address"] or meta.get("sensor_id") or ""
        streams[p] = StoredStream(p, str(kind), str(s["device"]), float(rate or 0.0), int(s["samples"]),
                                  str(ident))
    gaps = [Gap(g.placement, g.t_start - start_utc, g.t_end - start_utc, g.missing, g.reason)
            for g in store.gaps(session_id)]
    return StoredSensors(streams, gaps)


def _read_stored(store: LocalStore, session_id: str) -> tuple[SessionResults | None, float, str]:
    """``(results, start_utc, "")`` from the stored rows, or ``(None, nan, why not)``."""
    from hipback.ingest.errors import StoreDamagedError

    try:
        rows = {kind: store.get_results(session_id, kind) for kind in STORED_KINDS}
    except StoreDamagedError:  # a damaged result row: the raw samples may still be whole
        return None, math.nan, "its stored results cannot be read: a stored result row is damaged"
    if not rows["summary"] and not rows["angles"]:
        return None, math.nan, ("it has no stored results (it stopped before it finished, or an older "
                                "hipback stored it)")
    if not rows["angles"]:
        return None, math.nan, "its stored results have no angle series (an older hipback stored them)"
    try:
        results, start_utc = results_from_rows(rows)
    except ValueError as exc:
        return None, math.nan, f"its stored results cannot be read: {str(exc).rstrip('.')}"
    return results, start_utc, ""


def load_from_store(
    store_path: Path,
    session: str,
    *,
    with_baseline: bool = True,
    reprocess: bool = False,
    with_recording: bool = False,
) -> ReportInputs:
    """One stored session's results (read back, or processed again from its raw samples when ``reprocess``
    or when there are none to read: see the module docstring), its baseline and its link statistics.
    ``with_recording``: read the raw samples even when the results are read back (the ``.sto`` export)."""
    store = open_store(store_path)
    try:
        row = resolve_session_id(store, session)
        sid = row["id"]
        prescription = _prescription(row.get("meta") or {})
        results: SessionResults | None = None
        why = ""
        if not reprocess:
            results, start_utc, why = _read_stored(store, sid)
        quality = None
        stats = _stats_from_events(store, sid)
        if results is not None:
            recording = store.load_recording(sid) if with_recording else None
            sensors = stored_sensors(store, sid, start_utc, results)
            quality = assess_quality(cast(Recording, sensors), results, stats)
            n = sum(s.samples for s in sensors.streams.values())
            origin = "stored"
            source = (f"Read from the results stored when the session was processed; `--reprocess` processes "
                      f"its {n} raw samples in the local store again.")
        else:
            recording = store.load_recording(sid)
            stored_meta = row.get("meta") or {}
            results = process_stored(recording, prescription, stored_orientation(stored_meta),
                                     stored_calibration(stored_meta))
            start_utc = recording.start_utc if recording.start_utc is not None else row["start_utc"]
            n = sum(len(s) for s in recording.streams.values())
            origin = "reprocessed" if reprocess else "fallback"
            source = f"Processed again from the {n} raw samples kept in the local store"
            source += " (--reprocess)." if reprocess else f": {why}."
        baseline = baseline_from_store(store, row) if with_baseline else None
        history = exercise_history_from_store(store, row) if with_baseline else None
        try:
            exercise_rows = store.get_results(sid, "exercises") or None
        except Exception:  # an unreadable row: the report makes them from the results' events, if any
            exercise_rows = None
    finally:
        store.close()
    info = SessionInfo(sid, row["patient_id"], start_utc, source=source)
    return ReportInputs(results, recording, info, prescription, baseline, stats, quality, origin,
                        exercise_rows, history, planned_holds(results.summary, row.get("meta") or {}))


# -- a folder written by ``hipback process`` -----------------------------------------------------------

#: Largest ``summary.json`` read (a real one is a few KiB).
MAX_SUMMARY_BYTES = 16 * 1024 * 1024
#: Angles beyond this many degrees are not angles (a mix-up or a damaged file).
MAX_ANGLE_DEG = 1000.0


def _read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of one ``hipback process`` CSV file (none when the file is not there)."""
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path} cannot be read as a CSV table ({exc}).") from None
    for r in rows:
        if None in r:
            raise ConfigError(f"{path} has a row with more cells than the header has columns.")
    return rows


def _angles_from_csv(path: Path) -> AngleSeries:
    rows = _read_csv(path)
    if not rows:
        return AngleSeries.empty()
    try:
        t = np.array([_number(r.get("time_s"), "time_s") for r in rows])
        cols = {}
        for col in ANGLE_SERIES_COLUMNS.values():
            if col in rows[0]:
                cols[col] = np.array([_number(r.get(col), col) for r in rows])
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}.") from None
    if not np.isfinite(t).all() or (len(t) > 1 and not (np.diff(t) > 0).all()):
        raise ConfigError(f"{path}: time_s is not a rising series of times.")
    for col, v in cols.items():
        if col.endswith("_deg") and (np.abs(v[np.isfinite(v)]) > MAX_ANGLE_DEG).any():
            raise ConfigError(f"{path}: {col} holds values that are not angles.")
    return cast(AngleSeries, angle_series_from_columns(t, cols))


def load_from_process_folder(folder: Path) -> ReportInputs:
    """Results from a ``hipback process`` output folder (see the module docstring)."""
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise ConfigError(f"{folder} has no summary.json; give a folder written by 'hipback process'.")
    try:
        if summary_path.stat().st_size > MAX_SUMMARY_BYTES:
            raise ConfigError(f"{summary_path} is too large to be a summary written by 'hipback process'.")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ConfigError(f"{summary_path} cannot be read ({reason}).") from None
    try:
        check_summary(summary)
        calibration = _calibration(summary.get("calibration") or {})
        gaps = summary.get("gaps") or []
        if not isinstance(gaps, list):
            raise ValueError("gaps is not a list")
        gap_list = [_gap(g) for g in gaps]
    except ValueError as exc:
        raise ConfigError(f"{summary_path} is not a summary written by 'hipback process': "
                          f"{str(exc).rstrip('.')}.") from None
    angles = _angles_from_csv(folder / "angles.csv")
    tables = {}
    for name, cls in (("strides", Stride), ("holds", Hold), ("activity", ActivityBout)):
        path = folder / f"{name}.csv"
        try:
            tables[name] = _records(cls, _read_csv(path), "rows")
        except ValueError as exc:
            raise ConfigError(f"{path} cannot be read: {str(exc).rstrip('.')}.") from None
    placements = summary.get("sensors") or {p: "" for p in calibration}
    try:
        read = _recording_sensors(summary)
    except ValueError as exc:
        raise ConfigError(f"{summary_path} is not a summary written by 'hipback process': "
                          f"{str(exc).rstrip('.')}.") from None
    results = SessionResults(
        angles=angles,
        strides=tables["strides"],
        bouts=[],
        holds=tables["holds"],
        activity=tables["activity"],
        calibration=calibration,
        calibration_state=summary.get("calibration_state") or "",
        warnings=list(summary.get("warnings") or []),
        messages=[],
        gaps=gap_list,
        summary=summary,
        placements=placements,
    )
    info = SessionInfo(
        session_id=folder.name, source=f"Read from the files in {folder.name}/ written by 'hipback process'."
    )
    # the data-quality table from what process read of each sensor (older folders: samples unknown)
    quality = assess_quality(cast(Recording, read), results) if read is not None else None
    return ReportInputs(results, None, info, _prescription_of_summary(summary), quality=quality,
                        origin="folder", planned=planned_holds(summary))


def _recording_sensors(summary: Mapping[str, Any]) -> StoredSensors | None:
    """What ``hipback process`` read of each sensor (``recording_sensors``: device, rate, samples, the
    sensor's id when its file named it) and the
    gaps found while reading (``recording_gaps``), as :class:`StoredSensors`; None for a summary without
    them (written before they were). ValueError naming what is wrong."""
    sensors = summary.get("recording_sensors")
    if sensors is None:
        return None
    if not isinstance(sensors, dict):
        raise ValueError("recording_sensors is not a table of sensors")
    kinds = summary.get("sensors")
    kinds = kinds if isinstance(kinds, dict) else {}
    streams = {}
    for p, v in sensors.items():
        if not isinstance(v, dict):
            raise ValueError(f"recording_sensors.{p} is not a table")
        device, rate, samples = v.get("device"), v.get("rate_hz"), v.get("samples")
        if not isinstance(device, str):
            raise ValueError(f"recording_sensors.{p}.device is not a text")
        _check_number(rate, f"recording_sensors.{p}.rate_hz")
        _check_number(samples, f"recording_sensors.{p}.samples", whole=True, none=False)
        ident = v.get("sensor_id", "")
        if not isinstance(ident, str):
            raise ValueError(f"recording_sensors.{p}.sensor_id is not a text")
        streams[str(p)] = StoredStream(str(p), str(kinds.get(p, "")), device,
                                       math.nan if rate is None else float(rate), int(samples), ident)
    gaps = summary.get("recording_gaps") or []
    if not isinstance(gaps, list):
        raise ValueError("recording_gaps is not a list")
    return StoredSensors(streams, [_gap(g) for g in gaps])

"""Processing results as rows: one place that turns them into the schema's field names, degrees and UTC.

Processing reports SI units, radians and times in seconds on the session timeline; everything that leaves
for the outside world goes through here:

- the schema's rows (:func:`stride_row`, :func:`hold_row`, :func:`activity_row`, :func:`session_row`,
  :func:`device_status_row`), which :mod:`hipback.ingest.influx.schema` turns into points;
- the local store's result rows (:func:`store_rows`): every field of the processing records plus the
  schema's rows, written once per session by whoever finished it (the session runner, ``hipback process
  --store``, :func:`hipback.ingest.publish.publish_session`), the angle series among them
  (:func:`angles_rows`), which :mod:`hipback.ingest.report.source` reads back for the report and the export;
- the angle series' columns in degrees for files (:func:`angle_series_columns`).

``start_utc`` is the UTC time (Unix s) of session time 0.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
import zlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hipback.ingest.session.stats import SensorStats
    from hipback.ingest.store import LocalStore
    from hipback.processing.activity import ActivityBout
    from hipback.processing.gait import Stride
    from hipback.processing.holds import Hold
    from hipback.processing.pipeline import SessionResults
    from hipback.processing.types import AngleSeries

EXERCISE = "kneeling_hip_flexor"
#: Processing's activity labels -> the schema's ``activity`` tag values.
ACTIVITY_LABELS = {
    "lying": "lying",
    "sitting": "sitting",
    "standing": "standing",
    "walking": "walking",
    "kneeling": "stretching",
    "stretching": "stretching",
    "upright": "unknown",
}
ANGLE_FIELDS = (
    ("hip_flexion_left", "hip_flexion_left_deg"),
    ("hip_flexion_right", "hip_flexion_right_deg"),
    ("pelvic_tilt", "pelvic_tilt_deg"),
    ("lumbar_flexion", "lumbar_flexion_deg"),
)
DEFAULT_HOLD_S = 30.0
DEFAULT_HOLDS_PER_SIDE = 3
def _deg(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return math.degrees(v) if math.isfinite(v) else None


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


# --- rows (schema field names, degrees, UTC) --------------------------------------------------------


def stride_row(stride: Stride, start_utc: float, stride_no: int) -> dict[str, Any]:
    """The ``strides`` row of one :class:`hipback.processing.gait.Stride` (time: UTC of its start)."""
    return {
        "t_s": start_utc + float(stride.t_start),
        "side": stride.side,
        "stride_no": int(stride_no),
        "peak_hip_extension_deg": _deg(stride.peak_hip_extension_rad),
        "hip_range_deg": _deg(stride.hip_range_rad),
        "stride_time_s": _finite(stride.stride_time_s),
        "cadence_spm": _finite(stride.cadence_spm),
        "pelvic_tilt_at_peak_ext_deg": _deg(stride.pelvic_tilt_at_peak_extension_rad),
        "pelvic_tilt_excursion_deg": _deg(stride.pelvic_tilt_excursion_rad),
        "compensation_index": _finite(stride.lumbar_compensation_index),
    }


def stride_rows(strides: Iterable[Stride], start_utc: float) -> list[dict[str, Any]]:
    """``strides`` rows in time order, ``stride_no`` counted per side from 0."""
    rows, count = [], {"left": 0, "right": 0}
    for s in sorted(strides, key=lambda s: (s.t_start, s.side)):
        rows.append(stride_row(s, start_utc, count.get(s.side, 0)))
        count[s.side] = count.get(s.side, 0) + 1
    return rows


def hold_row(hold: Hold, start_utc: float, target_s: float) -> dict[str, Any]:
    """The ``holds`` row of one :class:`hipback.processing.holds.Hold` (time: UTC of its start)."""
    return {
        "t_s": start_utc + float(hold.t_start),
        "side": hold.side,
        "exercise": EXERCISE,
        "rep": int(hold.rep),
        "duration_s": _finite(hold.duration_s),
        "correct_s": _finite(hold.correct_s),
        "target_s": float(target_s),
        "completed": bool(float(hold.correct_s) >= float(target_s)),
        "peak_hip_extension_deg": _deg(hold.peak_hip_extension_rad),
        "mean_hip_extension_deg": _deg(hold.mean_hip_extension_rad),
        "pelvic_tilt_drift_deg": _deg(hold.pelvic_tilt_drift_rad),
        "arching": bool(hold.arching),
    }


def activity_label(bout: ActivityBout) -> str:
    label = str(getattr(bout, "label", getattr(bout, "activity", "unknown")))
    return ACTIVITY_LABELS.get(label, "unknown")


def activity_row(bout: ActivityBout, start_utc: float) -> dict[str, Any]:
    """The ``activity`` row of one bout (time: UTC of its start)."""
    return {
        "t_s": start_utc + float(bout.t_start),
        "activity": activity_label(bout),
        "duration_s": float(bout.t_end - bout.t_start),
    }


def prescription_of(summary: Mapping[str, Any] | None) -> tuple[int, float]:
    holds = (summary or {}).get("holds") or {}
    per_side = holds.get("prescribed_per_side")
    hold_s = holds.get("prescribed_hold_s")
    return (
        int(per_side) if per_side is not None else DEFAULT_HOLDS_PER_SIDE,
        float(hold_s) if hold_s is not None else DEFAULT_HOLD_S,
    )


def holds_planned(summary: Mapping[str, Any] | None) -> bool:
    """Whether a plan prescribed the session's stretch holds: not when the summary's ``holds.planned`` is
    false (``hipback process`` of files writes it; their hold target is the pipeline's default)."""
    holds = (summary or {}).get("holds")
    return not (isinstance(holds, Mapping) and holds.get("planned") is False)


def session_kind(strides: list[Stride], holds: list[Hold], activity: list[ActivityBout]) -> str:
    """``walk``, ``stretch`` or ``mixed`` from what happened (see the module docstring)."""
    labels = {activity_label(b) for b in activity}
    walked = bool(strides) or "walking" in labels
    stretched = bool(holds) or "stretching" in labels
    if walked and not stretched:
        return "walk"
    if stretched and not walked:
        return "stretch"
    return "mixed"


def session_row(results: SessionResults, start_utc: float) -> dict[str, Any]:
    """The ``sessions`` row of a session's :class:`hipback.processing.pipeline.SessionResults`."""
    summary = results.summary or {}
    per_side, hold_s = prescription_of(summary)
    kind = session_kind(results.strides, results.holds, results.activity)
    seconds: dict[str, float] = {}
    for b in results.activity:
        lab = activity_label(b)
        seconds[lab] = seconds.get(lab, 0.0) + float(b.t_end - b.t_start)
    comp = [float(s.lumbar_compensation_index) for s in results.strides
            if math.isfinite(float(s.lumbar_compensation_index))]
    cal = [float(c.quality) for c in (results.calibration or {}).values()]
    row: dict[str, Any] = {
        "t_s": float(start_utc),
        "kind": kind,
        "duration_s": summary.get("duration_s"),
        "walking_s": seconds.get("walking", 0.0),
        "sitting_s": seconds.get("sitting", 0.0),
        "standing_s": seconds.get("standing", 0.0),
        "lying_s": seconds.get("lying", 0.0),
        "strides": len(results.strides),
        "peak_hip_extension_left_deg": summary.get("peak_hip_extension_left_deg"),
        "peak_hip_extension_right_deg": summary.get("peak_hip_extension_right_deg"),
        "compensation_index": float(np.median(comp)) if comp else None,
        "cadence_spm": summary.get("cadence_spm"),
        "holds_done": sum(1 for h in results.holds if float(h.correct_s) >= hold_s),
        "correct_time_s": float(sum(float(h.correct_s) for h in results.holds)),
        "calibration_quality": min(cal) if cal else None,
        "implausible_pct": implausible_pct(summary.get("implausible")),
    }
    if kind != "walk" and (results.holds or "stretching" in seconds) and holds_planned(summary):
        row["holds_prescribed"] = 2 * per_side
        row["prescribed_time_s"] = 2 * per_side * hold_s
    return row


_DEVICE_CLEAN = re.compile(r"[^A-Za-z0-9_.:-]")


def device_label(stats: SensorStats) -> str:
    """Short device label: device kind plus the last 4 hex digits of its address (``hipback_v1-3F2A``)."""
    kind = _DEVICE_CLEAN.sub("_", str(getattr(stats, "kind", "") or "sensor"))[:40] or "sensor"
    digits = re.sub(r"[^0-9A-Fa-f]", "", str(getattr(stats, "address", "") or ""))[-4:].upper()
    label = f"{kind}-{digits}" if digits else kind
    return label if label[0].isalnum() else "d" + label[:63]


def device_status_row(stats: SensorStats, t_s: float, *,
                      since: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The ``device_status`` row of one sensor at ``t_s`` (UTC) from its :class:`SensorStats`.

    ``since``: the ``samples``/``missing`` counts at the previous report (packet loss is then since that
    report; without it, over the whole session).
    """
    samples = int(stats.samples) - int((since or {}).get("samples", 0))
    missing = int(stats.missing) - int((since or {}).get("missing", 0))
    total = samples + missing
    rejected = stats.rejected
    n_rejected = sum(rejected.values()) if isinstance(rejected, Mapping) else int(rejected or 0)
    return {
        "t_s": float(t_s),
        "placement": stats.placement,
        "device": device_label(stats),
        "battery_pct": stats.battery_pct,
        "packet_loss_pct": 100.0 * missing / total if total > 0 else None,
        "rate_hz": float(stats.rate_hz) if stats.rate_hz else None,
        "reconnects": int(stats.reconnects),
        "rejected_packets": int(n_rejected),
    }


def angle_columns(angles: AngleSeries) -> dict[str, np.ndarray]:
    """Degrees per angles field of an :class:`hipback.processing.types.AngleSeries` (all-NaN columns left
    out)."""
    out = {}
    for name, field in ANGLE_FIELDS:
        v = np.asarray(getattr(angles, name), dtype=float)
        if v.size and np.isfinite(v).any():
            out[field] = np.degrees(v)
    return out


def _plain(value: Any) -> Any:
    """JSON-friendly value: numpy scalars/arrays to Python, NaN to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not np.isfinite(value) else value
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def record_row(obj: Any) -> dict[str, Any]:
    """A result record as a store row; fields in rad become ``..._deg`` in degrees (the store is an edge)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    elif isinstance(obj, dict):
        items = dict(obj)
    else:
        return {"value": _plain(obj)}
    out: dict[str, Any] = {}
    for name, v in items.items():
        if name.endswith("_rad") and isinstance(v, (int, float, np.floating)):
            name, v = name[:-4] + "_deg", float(np.degrees(v))
        out[name] = _plain(v)
    return out


def record_column(field_name: str) -> str:
    """A record field's column in the result files (``hipback process`` and ``hipback export``): ``*_rad``
    as ``*_deg`` (degrees), a time ``t_x`` as ``t_x_s`` (seconds), every other name as it is."""
    if field_name.endswith("_rad"):
        return field_name[:-4] + "_deg"
    if field_name.startswith("t_") and not field_name.endswith("_s"):
        return field_name + "_s"
    return field_name


def records_table(items: Iterable[Any], cls: type) -> dict[str, list[Any]]:
    """Records of dataclass ``cls`` (strides, holds, activity bouts) as the result files' columns: one per
    field (:func:`record_column`), values as :func:`record_row` gives them (degrees; missing values None;
    bools stay bools), so that ``hipback process`` and ``hipback export`` write the same tables."""
    rows = [record_row(it) for it in items]
    out: dict[str, list[Any]] = {}
    for f in dataclasses.fields(cls):
        key = f.name[:-4] + "_deg" if f.name.endswith("_rad") else f.name
        out[record_column(f.name)] = [r.get(key) for r in rows]
    return out


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(round(v, 9))
    return str(v)


def table_csv(table: Mapping[str, list[Any]]) -> str:
    """A table of columns as CSV text: UTF-8, comma separated, a header row, ``true``/``false`` for bools,
    an empty cell for a missing value (None or a non-finite number), floats to 9 decimals."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = list(table)
    w.writerow(cols)
    n = len(table[cols[0]]) if cols else 0
    for i in range(n):
        w.writerow([_cell(table[c][i]) for c in cols])
    return buf.getvalue()


def results_rows(results: SessionResults) -> dict[str, list[dict[str, Any]]]:
    """:class:`hipback.processing.pipeline.SessionResults` as store rows per kind (summary, strides, holds,
    ...)."""
    rows: dict[str, list[dict[str, Any]]] = {"summary": [_plain(dict(results.summary))]}
    for kind in ("strides", "bouts", "holds", "activity"):
        rows[kind] = [record_row(x) for x in getattr(results, kind, []) or []]
    rows["warnings"] = [{"message": str(w)} for w in getattr(results, "warnings", []) or []]
    rows["calibration"] = [
        {"placement": p, **record_row(c)} for p, c in (getattr(results, "calibration", {}) or {}).items()
    ]
    return rows


def implausible_pct(implausible: Mapping[str, Any] | None) -> float | None:
    """The largest share (%) of a guarded joint angle's samples that the plausibility guard removed (the
    summary's ``implausible`` field); None when no guard ran."""
    if not implausible:
        return None
    return 100.0 * max(float(c.get("share", 0.0) or 0.0) for c in implausible.values())


def store_rows(results: SessionResults, start_utc: float, *,
               angles: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The local store's result rows of one session, per kind (``summary``, ``strides``, ``holds``,
    ``activity``, ``bouts``, ``warnings``, ``calibration``, ``exercises``: see
    :class:`hipback.ingest.programme.ExerciseRows`, ``angles``: see :func:`angles_rows`): every field of
    the processing records (``*_rad`` as ``*_deg``) with the schema's rows over them (the schema's field
    names, ``t_s`` in UTC), so that the store, the patient's progress and InfluxDB read the same names.
    ``angles`` False leaves the ``angles`` kind out (a live session stored it as it came:
    :class:`hipback.ingest.session.spool.AngleSpool`)."""
    rows = results_rows(results)
    _, hold_s = prescription_of(results.summary)
    strides = sorted(results.strides, key=lambda s: (s.t_start, s.side))
    rows["strides"] = [{**_without(record_row(s), RENAMED_BY_SCHEMA), **r}
                       for s, r in zip(strides, stride_rows(strides, start_utc), strict=True)]
    rows["holds"] = [{**record_row(h), **hold_row(h, start_utc, hold_s)} for h in results.holds]
    rows["activity"] = [{**record_row(b), **activity_row(b, start_utc)} for b in results.activity]
    if angles:
        rows["angles"] = angles_rows(results, start_utc)
    from hipback.ingest.programme import exercise_rows  # exercises: one row per rep/hold and per set

    rows["exercises"] = exercise_rows(results.exercise_events, start_utc)
    srow = session_row(results, start_utc)
    kind = session_kind(results.strides, results.holds, results.activity)
    rows["summary"] = [{**rows["summary"][0], "start_utc": float(start_utc), "kind": kind,
                        "sitting_s": srow["sitting_s"]}]
    return rows


#: Record fields (in degrees) that the schema's rows carry under another name.
RENAMED_BY_SCHEMA = ("pelvic_tilt_at_peak_extension_deg", "lumbar_compensation_index")


def _without(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in names}


# --- the angle series (store kind ``angles``) -------------------------------------------------------

#: Columns of an angle series outside processing, per :class:`hipback.processing.types.AngleSeries` field:
#: angles in degrees (``..._deg``, same signs and reference as the field), ``pelvis_motion`` in m/s^2.
ANGLE_SERIES_COLUMNS: dict[str, str] = {
    "hip_flexion_left": "hip_flexion_left_deg",
    "hip_flexion_right": "hip_flexion_right_deg",
    "pelvic_tilt": "pelvic_tilt_deg",
    "lumbar_flexion": "lumbar_flexion_deg",
    "thigh_inclination_left": "thigh_inclination_left_deg",
    "thigh_inclination_right": "thigh_inclination_right_deg",
    "pelvis_inclination": "pelvis_inclination_deg",
    "pelvis_motion": "pelvis_motion_m_s2",
}
#: Optional :class:`~hipback.processing.types.AngleSeries` fields (``AngleSeries.OPTIONAL``: None when
#: processing did not give them) stored with the series, per field: the stored column (SI units, as the field:
#: accelerations in m/s^2, the pelvis' yaw rate in rad/s, positive turning left seen from above). A row has
#: such a column only when the series had the field; a series stored without one reads back with it None.
ANGLE_SERIES_OPTIONAL: dict[str, str] = {
    "pelvis_acc_vertical": "pelvis_acc_vertical_m_s2",
    "thigh_acc_left": "thigh_acc_left_m_s2",
    "thigh_acc_right": "thigh_acc_right_m_s2",
    "pelvis_yaw_rate": "pelvis_yaw_rate_rad_s",
}
#: Stored angle-series format (``format`` of the kind's first row).
ANGLES_FORMAT = "hipback.angles/1"
#: Samples per stored ``angles`` row (60 s at 100 Hz): a row stays small however long the session.
ANGLES_CHUNK = 6000
#: Largest chunk a reader accepts (a damaged row never makes it allocate more).
ANGLES_MAX_CHUNK = 1_000_000


def angle_series_columns(angles: AngleSeries) -> dict[str, np.ndarray]:
    """Every field of an :class:`~hipback.processing.types.AngleSeries` in its outside unit, under its
    column name (:data:`ANGLE_SERIES_COLUMNS`: degrees, pelvis motion in m/s^2), float64, NaN kept."""
    out = {}
    for name, col in ANGLE_SERIES_COLUMNS.items():
        v = np.asarray(getattr(angles, name), dtype=np.float64)
        out[col] = v if col.endswith("_m_s2") else np.degrees(v)
    return out


def angle_series_from_columns(t: np.ndarray, columns: Mapping[str, np.ndarray], *,
                              implausible: np.ndarray | None = None,
                              **optional: np.ndarray | None) -> AngleSeries:
    """The inverse of :func:`angle_series_columns`: an ``AngleSeries`` (rad) on the times ``t`` (s); a column
    not given is NaN throughout. ``optional``: fields of :data:`ANGLE_SERIES_OPTIONAL` by field name (SI
    units; None or left out: not available)."""
    from hipback.processing.types import AngleSeries

    t = np.asarray(t, dtype=np.float64)
    fields = {}
    for name, col in ANGLE_SERIES_COLUMNS.items():
        v = columns.get(col)
        v = np.full(len(t), np.nan) if v is None else np.asarray(v, dtype=np.float64)
        if v.shape != t.shape:
            raise ValueError(f"the column {col} has {v.size} values for {t.size} times")
        fields[name] = v if col.endswith("_m_s2") else np.radians(v)
    unknown = set(optional) - set(ANGLE_SERIES_OPTIONAL)
    if unknown:
        raise TypeError(f"not optional angle-series fields: {', '.join(sorted(unknown))}")
    extra = {name: None if v is None else np.asarray(v, dtype=np.float64) for name, v in optional.items()}
    return AngleSeries(t=t, **fields, implausible=implausible, **extra)


def _pack(values: np.ndarray, dtype: str) -> str:
    """Little-endian ``dtype`` values, byte-shuffled (all first bytes, then all second bytes, ...: the
    slowly changing high bytes sit together and compress), zlib, base64."""
    raw = np.ascontiguousarray(values, dtype=dtype)
    planes = raw.view(np.uint8).reshape(-1, raw.itemsize).T.tobytes()
    return base64.b64encode(zlib.compress(planes, 6)).decode("ascii")


def _unpack(text: Any, dtype: str, n: int) -> np.ndarray:
    """The inverse of :func:`_pack` for ``n`` values; ValueError on anything else (never allocates more
    than ``n`` values)."""
    if not isinstance(text, str):
        raise ValueError("an array is not text")
    try:
        packed = base64.b64decode(text.encode("ascii"), validate=True)
        d = zlib.decompressobj()
        size = n * np.dtype(dtype).itemsize
        planes = d.decompress(packed, size + 1)
    except (binascii.Error, zlib.error, UnicodeEncodeError) as exc:
        raise ValueError(f"an array cannot be decoded ({exc})") from None
    if len(planes) != size or not d.eof:
        raise ValueError(f"an array holds the wrong number of values (expected {n})")
    width = np.dtype(dtype).itemsize
    return np.frombuffer(planes, np.uint8).reshape(width, n).T.copy().view(dtype).reshape(n)


def angles_rows(results: SessionResults, start_utc: float, chunk: int = ANGLES_CHUNK) -> list[dict[str, Any]]:
    """The session's angle series as store rows (kind ``angles``).

    Row 0 describes the series: ``format`` (:data:`ANGLES_FORMAT`), ``samples``, ``start_utc`` (UTC, Unix s,
    of session time 0), ``columns``, and what the series was computed from: ``placements`` (placement ->
    ``quat``/``raw``), ``calibration_state``, the processing log (``messages``) and the ``gaps`` processing
    found (session seconds). Then one row per ``chunk`` samples: ``i0`` (index of its first sample), ``n``,
    ``t`` (session seconds, float64) and each column of :data:`ANGLE_SERIES_COLUMNS` as float32 (degrees;
    NaN where the angle is missing, or None when the whole chunk is), ``implausible`` (uint8 flags) and each
    optional field of :data:`ANGLE_SERIES_OPTIONAL` (float32, its SI unit: ``pelvis_acc_vertical_m_s2``,
    ``thigh_acc_left_m_s2``, ``thigh_acc_right_m_s2``, ``pelvis_yaw_rate_rad_s``) when processing gave it.
    Arrays are little-endian, byte-shuffled, zlib-compressed, base64 text; float32 keeps an angle to a
    relative 6e-8 (under 1e-5 deg below 180 deg), times exact.
    """
    a = results.angles
    rows = [angles_header(results, start_utc, len(a))]
    rows += [angles_chunk_row(a.slice(i0, min(i0 + chunk, len(a))), i0) for i0 in range(0, len(a), chunk)]
    return rows


def angles_header(results: SessionResults, start_utc: float, samples: int) -> dict[str, Any]:
    """Row 0 of the stored angle series (:func:`angles_rows`) of ``samples`` rows: what it was computed from
    (the results' placements, calibration state, processing log and gaps)."""
    return {
        "format": ANGLES_FORMAT,
        "samples": int(samples),
        "start_utc": float(start_utc),
        "columns": list(ANGLE_SERIES_COLUMNS.values()),
        "placements": {str(k): str(v) for k, v in (getattr(results, "placements", {}) or {}).items()},
        "calibration_state": str(getattr(results, "calibration_state", "") or ""),
        "messages": [str(m) for m in getattr(results, "messages", []) or []],
        "gaps": [{"placement": g.placement, "t_start": _finite(g.t_start), "t_end": _finite(g.t_end),
                  "missing": int(g.missing), "reason": str(g.reason)}
                 for g in getattr(results, "gaps", []) or []],
    }


def angles_chunk_row(a: AngleSeries, i0: int) -> dict[str, Any]:
    """One stored row of an angle series (:func:`angles_rows`): the rows ``a`` of the series, the first of
    which is its row ``i0``; an optional field only when ``a`` has it."""
    row: dict[str, Any] = {"i0": int(i0), "n": len(a), "t": _pack(np.asarray(a.t, dtype=np.float64), "<f8")}
    for col, v in angle_series_columns(a).items():
        row[col] = _pack(v, "<f4") if np.isfinite(v).any() else None
    if a.implausible is not None:
        row["implausible"] = _pack(np.asarray(a.implausible, dtype=np.uint8), "<u1")
    for name, col in ANGLE_SERIES_OPTIONAL.items():
        v = getattr(a, name, None)
        if v is not None:
            row[col] = _pack(np.asarray(v, dtype=np.float64), "<f4")
    return row


def stored_angles(store: LocalStore, session_id: str) -> AngleSeries:
    """A stored session's angle series (rad, session seconds; float32 precision, :func:`angles_rows`), as a
    live session stored it as it came or ``hipback process --store`` at once. ValueError, with the reason,
    when it has none that can be read."""
    return angles_from_rows(store.get_results(session_id, "angles"))[0]


def angles_from_rows(rows: list[Any]) -> tuple[AngleSeries, dict[str, Any]]:
    """The ``AngleSeries`` (rad, session seconds) and the header row of stored ``angles`` rows
    (:func:`angles_rows`). ValueError, with the reason, when the rows are not such a series."""
    if not rows or not isinstance(rows[0], dict) or rows[0].get("format") != ANGLES_FORMAT:
        raise ValueError("the stored angle series has no header of a known format")
    header = rows[0]
    n_total = header.get("samples")
    if not isinstance(n_total, int) or n_total < 0:
        raise ValueError("the stored angle series has no sample count")
    chunks = rows[1:]
    ts: list[np.ndarray] = []
    cols: dict[str, list[np.ndarray]] = {c: [] for c in ANGLE_SERIES_COLUMNS.values()}
    flags: list[np.ndarray] = []
    extras: dict[str, list[np.ndarray]] = {col: [] for col in ANGLE_SERIES_OPTIONAL.values()}
    done = 0
    for row in chunks:
        if not isinstance(row, dict):
            raise ValueError("a stored angle-series row is not a record")
        n, i0 = row.get("n"), row.get("i0")
        if not isinstance(n, int) or not 0 < n <= ANGLES_MAX_CHUNK or i0 != done or done + n > n_total:
            raise ValueError("the stored angle-series rows do not follow each other")
        ts.append(_unpack(row.get("t"), "<f8", n))
        for col, parts in cols.items():
            v = row.get(col)
            parts.append(np.full(n, np.nan) if v is None else _unpack(v, "<f4", n).astype(np.float64))
        if "implausible" in row:
            flags.append(_unpack(row["implausible"], "<u1", n))
        for col, parts in extras.items():
            if col in row:
                parts.append(_unpack(row[col], "<f4", n).astype(np.float64))
        done += n
    if done != n_total:
        raise ValueError(f"the stored angle series holds {done} of its {n_total} samples")
    if any(parts and len(parts) != len(chunks) for parts in (flags, *extras.values())):
        raise ValueError("the stored angle series has a column in some rows only")

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    series = angle_series_from_columns(
        cat(ts, np.float64), {c: cat(p, np.float64) for c, p in cols.items()},
        implausible=cat(flags, np.uint8) if flags else None,
        **{name: cat(extras[col], np.float64) if extras[col] else None
           for name, col in ANGLE_SERIES_OPTIONAL.items()},
    )
    return series, header

"""The InfluxDB schema of hipback: measurements, tags, fields (with units) and row -> point conversion.

Every point hipback writes to InfluxDB is built here, so that measurement names, tag keys, field
names and field *types* are the same everywhere (InfluxDB rejects a point whose field changes type
within a shard, e.g. ``holds_done`` once as float and once as integer). The human-readable version
of this schema, with cardinality and retention advice, is ``docs/schema.md``.

Rows are plain mappings (dicts) with the keys named in :data:`MEASUREMENTS`: the time of the row as
``t_s`` (Unix seconds, float, UTC) or ``time_ns`` (int), tag values under their tag key, and field
values under their field name. Keys that are not part of the measurement are ignored (processing
results may carry more columns than the dashboards need); missing, None or NaN fields are left out
of the point (InfluxDB has no NaN). Values are cast to the field's declared type.

Tags are bounded on purpose: ``patient`` (pseudonymous id, never a name), ``session``, ``side``,
``placement``, ``device``, ``exercise``, ``work_side``, ``kind`` and ``activity``; ``side``,
``work_side``, ``placement``, ``kind`` and ``activity`` only take the values listed in this module. Angles
are degrees relative to the standing calibration of the session; peak hip extension is positive degrees of
extension.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hipback.ingest.influx.lineprotocol import Point

SIDES = ("left", "right")
SESSION_KINDS = ("walk", "stretch", "mixed")
ACTIVITIES = ("lying", "sitting", "standing", "walking", "stretching", "unknown")
PLACEMENTS = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")
#: Pseudonymous ids, session ids, exercise and device labels: short, no spaces, no personal data.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class FieldSpec:
    """One field: name, Python type written (float, int, bool, str), unit and meaning."""

    name: str
    type: type
    unit: str
    description: str


@dataclass(frozen=True)
class MeasurementSpec:
    """One measurement: tags (keys), fields, what the point time means, and expected cardinality."""

    name: str
    tags: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    time: str
    cardinality: str

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _f(name: str, typ: type, unit: str, description: str) -> FieldSpec:
    return FieldSpec(name, typ, unit, description)


_PS_SIDE_FIELDS: list[FieldSpec] = []
for _s in SIDES:
    _PS_SIDE_FIELDS += [
        _f(
            f"baseline_peak_ext_{_s}_deg",
            float,
            "deg",
            f"baseline peak hip extension, {_s}: median of strides in the first 14 days",
        ),
        _f(f"peak_ext_7d_{_s}_deg", float, "deg", f"median peak hip extension of {_s} strides, last 7 days"),
        _f(
            f"change_from_baseline_{_s}_deg",
            float,
            "deg",
            f"7-day value minus baseline, {_s} (negative = less)",
        ),
        _f(f"baseline_compensation_{_s}", float, "1", f"baseline median compensation index, {_s}"),
        _f(f"compensation_7d_{_s}", float, "1", f"median compensation index of {_s} strides, last 7 days"),
    ]

MEASUREMENTS: dict[str, MeasurementSpec] = {
    m.name: m
    for m in (
        MeasurementSpec(
            "angles",
            ("patient", "session"),
            (
                _f(
                    "hip_flexion_left_deg",
                    float,
                    "deg",
                    "left hip flexion (+) / extension (-), thigh rel. pelvis",
                ),
                _f("hip_flexion_right_deg", float, "deg", "right hip flexion (+) / extension (-)"),
                _f("pelvic_tilt_deg", float, "deg", "pelvic tilt, anterior positive, rel. world vertical"),
                _f(
                    "lumbar_flexion_deg",
                    float,
                    "deg",
                    "upper lumbar rel. pelvis, flexion positive (optional sensor)",
                ),
            ),
            "centre of the averaging bin (default 10 Hz)",
            "patients x sessions series; ~36k points per session hour at 10 Hz",
        ),
        MeasurementSpec(
            "strides",
            ("patient", "session", "side"),
            (
                _f("stride_no", int, "1", "stride number within the session and side, from 0"),
                _f("peak_hip_extension_deg", float, "deg", "peak hip extension, positive = extension"),
                _f("hip_range_deg", float, "deg", "hip flexion range over the stride"),
                _f("stride_time_s", float, "s", "stride duration"),
                _f("cadence_spm", float, "steps/min", "cadence (2 steps per stride)"),
                _f(
                    "pelvic_tilt_at_peak_ext_deg",
                    float,
                    "deg",
                    "pelvic tilt at the instant of peak extension",
                ),
                _f("pelvic_tilt_excursion_deg", float, "deg", "pelvic tilt range over the stride"),
                _f(
                    "compensation_index",
                    float,
                    "1",
                    "share of thigh extension coming from anterior pelvic tilt over terminal stance",
                ),
            ),
            "stride start (initial contact)",
            "patients x sessions x 2 sides series",
        ),
        MeasurementSpec(
            "holds",
            ("patient", "session", "side", "exercise"),
            (
                _f("rep", int, "1", "repetition number within session, side and exercise, from 1"),
                _f("duration_s", float, "s", "hold duration"),
                _f("correct_s", float, "s", "time in correct posture (hip extended, back not arching)"),
                _f("target_s", float, "s", "prescribed hold time"),
                _f("completed", bool, "", "correct_s reached target_s"),
                _f("peak_hip_extension_deg", float, "deg", "peak hip extension in the hold"),
                _f("mean_hip_extension_deg", float, "deg", "mean hip extension in the hold"),
                _f("pelvic_tilt_drift_deg", float, "deg", "max anterior pelvic tilt change from hold start"),
                _f("arching", bool, "", "the back arched (pelvic tilt / lumbar extension beyond tolerance)"),
            ),
            "hold start",
            "patients x sessions x 2 sides x exercises (1-3) series",
        ),
        MeasurementSpec(
            "sessions",
            ("patient", "session", "kind"),
            (
                _f("duration_s", float, "s", "session duration"),
                _f("walking_s", float, "s", "time walking"),
                _f("sitting_s", float, "s", "time sitting"),
                _f("standing_s", float, "s", "time standing"),
                _f("lying_s", float, "s", "time lying"),
                _f("strides", int, "1", "number of strides (both sides)"),
                _f("peak_hip_extension_left_deg", float, "deg", "median peak hip extension of left strides"),
                _f(
                    "peak_hip_extension_right_deg", float, "deg", "median peak hip extension of right strides"
                ),
                _f("compensation_index", float, "1", "median compensation index of the session's strides"),
                _f("cadence_spm", float, "steps/min", "median cadence"),
                _f("holds_done", int, "1", "completed holds"),
                _f("holds_prescribed", int, "1", "holds the plan prescribed (absent without a plan)"),
                _f("correct_time_s", float, "s", "total time in correct posture over all holds"),
                _f("prescribed_time_s", float, "s", "prescribed total hold time (absent without a plan)"),
                _f("calibration_quality", float, "1", "standing calibration quality, 0 (bad) to 1 (good)"),
                _f(
                    "implausible_pct", float, "%",
                    "largest share of a joint angle's samples removed as impossible (a sensor problem)",
                ),
            ),
            "session start",
            "patients x sessions series, one point each",
        ),
        MeasurementSpec(
            "activity",
            ("patient", "session", "activity"),
            (_f("duration_s", float, "s", "bout duration"),),
            "bout start",
            "patients x sessions x 6 activities series",
        ),
        MeasurementSpec(
            "device_status",
            ("patient", "session", "placement", "device"),
            (
                _f("battery_pct", float, "%", "battery level"),
                _f("packet_loss_pct", float, "%", "packets lost (sequence gaps) since the previous report"),
                _f("rate_hz", float, "Hz", "measured sample rate"),
                _f("reconnects", int, "1", "reconnections in the session so far"),
                _f("rejected_packets", int, "1", "packets the decoder rejected in the session so far"),
            ),
            "time of the report (e.g. once a minute and at session end)",
            "patients x sessions x placements (2-4) series",
        ),
        MeasurementSpec(
            "patient_status",
            ("patient",),
            (
                *_PS_SIDE_FIELDS,
                _f(
                    "worst_change_from_baseline_deg",
                    float,
                    "deg",
                    "lower change from baseline of the two sides",
                ),
                _f("mdc_deg", float, "deg", "minimal detectable change used for the decline flag"),
                _f("adherence_pct", float, "%", "completed / prescribed holds, last 7 days, capped at 100"),
                _f("holds_done_7d", int, "1", "completed holds, last 7 days"),
                _f("holds_prescribed_7d", float, "1", "holds prescribed per 7 days"),
                _f("days_since_last_session", float, "d", "days since the start of the latest session"),
                _f("sitting_h_7d", float, "h", "sitting hours recorded in sessions, last 7 days"),
                _f("flag_no_session", bool, "", "no session for N days (monitoring prompt)"),
                _f("flag_decline", bool, "", "7-day peak hip extension below baseline by more than the MDC"),
                _f("flag_low_adherence", bool, "", "adherence below the threshold"),
            ),
            "time of computation (the edge computes it daily or after each sync)",
            "one series per patient",
        ),
        MeasurementSpec(
            "exercise_reps",
            ("patient", "session", "exercise", "work_side"),
            (
                _f("rep", int, "1", "rep number within session, exercise and side, from 1"),
                _f("duration_s", float, "s", "from the start of the movement to its return"),
                _f("primary_peak_deg", float, "deg", "the exercise's primary angle at its peak"),
                _f("range_deg", float, "deg", "primary angle range of the rep (peak minus start)"),
                _f("correct_s", float, "s", "time within the rep with no form rule exceeded"),
                _f("target_met", bool, "", "the primary angle reached the exercise's target"),
                _f("counted", bool, "", "target reached and no form rule broken (counts towards the dose)"),
                _f("rules_broken", str, "", "form rules broken, comma-separated angle names (empty: none)"),
                _f("cue", str, "", "the plain cue given (first broken rule), empty when none"),
                _f("set_no", int, "1", "the programme item (set and side) the rep belongs to, from 1"),
                _f("prescribed", int, "1", "reps prescribed in that set for that side"),
            ),
            "start of the rep's movement",
            "patients x sessions x exercises (up to ~20) x 3 work sides series",
        ),
        MeasurementSpec(
            "exercise_holds",
            ("patient", "session", "exercise", "work_side"),
            (
                _f("rep", int, "1", "hold number within session, exercise and side, from 1"),
                _f("hold_s", float, "s", "time held still at the peak"),
                _f("target_s", float, "s", "prescribed hold time"),
                _f("correct_s", float, "s", "time in correct form (target angle reached, no rule exceeded)"),
                _f("primary_peak_deg", float, "deg", "the exercise's primary angle at its peak"),
                _f("range_deg", float, "deg", "primary angle range (peak minus start)"),
                _f("too_short", bool, "", "held for less than the prescription"),
                _f("counted", bool, "", "target reached, held long enough, no form rule broken"),
                _f("rules_broken", str, "", "form rules broken, comma-separated angle names (empty: none)"),
                _f("cue", str, "", "the plain cue given, empty when none"),
                _f("set_no", int, "1", "the programme item (set and side) the hold belongs to, from 1"),
                _f("prescribed", int, "1", "holds prescribed in that set for that side"),
            ),
            "start of the hold (the still part at the peak)",
            "patients x sessions x exercises (up to ~20) x 3 work sides series",
        ),
        MeasurementSpec(
            "posture_time",
            ("patient", "session"),
            (
                _f("sitting_s", float, "s", "time sitting (activity bouts)"),
                _f("bent_forward_s", float, "s",
                   "time upright (thighs near vertical) with both hips or the lower back flexed >= 30 deg"),
                _f("lumbar_extension_s", float, "s",
                   "time with the lower back extended >= 10 deg beyond standing (upper-lumbar sensor)"),
                _f("measured_s", float, "s", "time with the angles needed for bent_forward_s"),
            ),
            "start of the session",
            "one series per patient and session",
        ),
    )
}

#: ``work_side`` of an exercise: the working leg, or both legs together.
WORK_SIDES = ("left", "right", "both")

_ALLOWED_TAG_VALUES: dict[str, tuple[str, ...]] = {
    "work_side": WORK_SIDES,
    "side": SIDES,
    "kind": SESSION_KINDS,
    "activity": ACTIVITIES,
    "placement": PLACEMENTS,
}


def check_tag(key: str, value: Any) -> str:
    """Validate one tag value (bounded vocabularies, id pattern); returns it or raises ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"tag {key!r} must be a string, got {value!r}")
    allowed = _ALLOWED_TAG_VALUES.get(key)
    if allowed is not None:
        if value not in allowed:
            raise ValueError(f"tag {key}={value!r} is not one of {', '.join(allowed)}")
    elif not ID_PATTERN.fullmatch(value):
        raise ValueError(
            f"tag {key}={value!r} must be 1-64 letters, digits or _.:- starting with a letter or digit "
            "(use pseudonymous ids, never names)"
        )
    return value


def _cast(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    if spec.type is bool:
        return bool(value)
    if spec.type is int:
        v = float(value)
        return None if not math.isfinite(v) else int(round(v))
    if spec.type is float:
        v = float(value)
        return v if math.isfinite(v) else None
    return str(value)


def _time_ns(row: Mapping[str, Any]) -> int:
    if "time_ns" in row and row["time_ns"] is not None:
        return int(row["time_ns"])
    if "t_s" in row and row["t_s"] is not None:
        return int(round(float(row["t_s"]) * 1e9))
    raise ValueError("row has neither t_s (Unix seconds) nor time_ns")


def make_point(measurement: str, row: Mapping[str, Any], **tags: str) -> Point:
    """One point of ``measurement`` from ``row`` (fields + time) and tags (keyword or from the row)."""
    spec = MEASUREMENTS[measurement]
    tag_values: dict[str, str] = {}
    for key in spec.tags:
        value = tags.get(key, row.get(key))
        if value is None:
            raise ValueError(f"{measurement} point needs the tag {key!r}")
        tag_values[key] = check_tag(key, value)
    fields = {}
    for f in spec.fields:
        if f.name in row:
            value = _cast(f, row[f.name])
            if value is not None:
                fields[f.name] = value
    return Point(measurement, tag_values, fields, _time_ns(row))


def stride_points(rows: Iterable[Mapping[str, Any]], patient: str, session: str) -> list[Point]:
    """``strides`` points; each row: ``t_s``, ``side`` and the stride fields (see :data:`MEASUREMENTS`)."""
    return [make_point("strides", r, patient=patient, session=session) for r in rows]


def hold_points(rows: Iterable[Mapping[str, Any]], patient: str, session: str) -> list[Point]:
    """``holds`` points; each row: ``t_s``, ``side``, ``exercise`` and the hold fields.

    ``completed`` is derived as ``correct_s >= target_s`` when the row does not carry it.
    """
    out = []
    for r in rows:
        if "completed" not in r and r.get("correct_s") is not None and r.get("target_s") is not None:
            r = {**r, "completed": float(r["correct_s"]) >= float(r["target_s"])}
        out.append(make_point("holds", r, patient=patient, session=session))
    return out


def exercise_points(rows: Iterable[Mapping[str, Any]], patient: str, session: str) -> list[Point]:
    """``exercise_reps`` / ``exercise_holds`` points; each row: ``t_s``, ``kind`` (``rep`` or ``hold``),
    ``exercise``, ``work_side`` and the fields (see :func:`hipback.ingest.programme.exercise_rows`). Rows of
    another kind (a programme's ``set`` rows) are not points and are left out."""
    out = []
    for r in rows:
        kind = r.get("kind")
        if kind not in ("rep", "hold"):
            continue
        measurement = "exercise_holds" if kind == "hold" else "exercise_reps"
        out.append(make_point(measurement, r, patient=patient, session=session))
    return out


def posture_time_point(row: Mapping[str, Any], patient: str, session: str) -> Point:
    """The ``posture_time`` point of one session; row: ``t_s`` (session start) and the posture fields
    (:class:`hipback.processing.exercises.posture.PostureTime`)."""
    return make_point("posture_time", row, patient=patient, session=session)


def session_point(row: Mapping[str, Any], patient: str, session: str) -> Point:
    """The ``sessions`` point of one session; row: ``t_s`` (start), ``kind`` and the session fields."""
    return make_point("sessions", row, patient=patient, session=session)


def session_points(rows: Iterable[Mapping[str, Any]], patient: str) -> list[Point]:
    """``sessions`` points of several sessions; each row also carries its ``session`` id."""
    return [make_point("sessions", r, patient=patient) for r in rows]


def activity_points(rows: Iterable[Mapping[str, Any]], patient: str, session: str) -> list[Point]:
    """``activity`` points, one per bout; each row: ``t_s`` (bout start), ``activity``, ``duration_s``."""
    return [make_point("activity", r, patient=patient, session=session) for r in rows]


def device_status_points(rows: Iterable[Mapping[str, Any]], patient: str, session: str) -> list[Point]:
    """``device_status`` points; each row: ``t_s``, ``placement``, ``device`` and the status fields."""
    return [make_point("device_status", r, patient=patient, session=session) for r in rows]


def patient_status_point(patient: str, t_s: float, fields: Mapping[str, Any]) -> Point:
    """The ``patient_status`` point (fields e.g. from ``PatientProgress.status_fields()``) at ``t_s``."""
    return make_point("patient_status", {**fields, "t_s": t_s}, patient=patient)


def angle_points(
    t_s: Sequence[float] | np.ndarray,
    columns: Mapping[str, Sequence[float] | np.ndarray],
    patient: str,
    session: str,
    rate_hz: float = 10.0,
) -> list[Point]:
    """``angles`` points downsampled to ``rate_hz`` by averaging the samples in each time bin.

    ``t_s``: sample times (Unix s); ``columns``: field name (e.g. ``hip_flexion_left_deg``) -> one
    value per sample, degrees. Bins are ``1/rate_hz`` wide and aligned to multiples of it; NaN samples
    are ignored in the average and a bin without any finite value leaves that field out.
    """
    spec = MEASUREMENTS["angles"]
    for name in columns:
        if name not in spec.field_names:
            raise ValueError(f"angles has no field {name!r}; fields are {', '.join(spec.field_names)}")
    check_tag("patient", patient)
    check_tag("session", session)
    t = np.asarray(t_s, dtype=float)
    if t.size == 0:
        return []
    if rate_hz <= 0:
        raise ValueError("rate_hz must be positive")
    width = 1.0 / rate_hz
    # a sample exactly on a bin edge (within float rounding) starts the next bin
    bins = np.floor(t * rate_hz + 1e-9).astype(np.int64)
    uniq, inverse = np.unique(bins, return_inverse=True)
    means: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        v = np.asarray(values, dtype=float)
        if v.shape != t.shape:
            raise ValueError(f"angles column {name!r} has {v.size} values for {t.size} times")
        ok = np.isfinite(v)
        sums = np.bincount(inverse[ok], weights=v[ok], minlength=uniq.size)
        counts = np.bincount(inverse[ok], minlength=uniq.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[name] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    centres_ns = np.round((uniq + 0.5) * width * 1e9).astype(np.int64)
    tags = {"patient": patient, "session": session}
    points = []
    for i, tns in enumerate(centres_ns):
        fields = {name: float(m[i]) for name, m in means.items() if np.isfinite(m[i])}
        if fields:
            points.append(Point("angles", tags, fields, int(tns)))
    return points

"""Research export of a session: angles and strides (and holds) to CSV or Parquet, sensor orientations to
OpenSim's OpenSense orientation file (``.sto``).

Tables (CSV and Parquet carry the same columns and values)
----------------------------------------------------------
``angles``: one row per sample of the common timeline: ``time_s`` (s since the recording start), then every
:class:`hipback.processing.types.AngleSeries` angle in degrees (``..._deg``; hip flexion +, anterior pelvic
tilt +,
lumbar flexion +, relative to the standing-neutral calibration; empty/null where not available) and
``pelvis_motion_m_s2`` (dynamic acceleration magnitude, m/s^2). ``strides`` / ``holds`` / ``activity``: one
row per stride, hold or activity bout, fields of :class:`hipback.processing.gait.Stride` /
:class:`hipback.processing.holds.Hold` / :class:`hipback.processing.activity.ActivityBout` with ``*_rad``
given as ``*_deg`` and times ``t_x`` as ``t_x_s`` (:func:`hipback.ingest.results.records_table`: the tables
``hipback process`` writes). ``exercises``: one row per rep or hold of the session's exercise programme (and
one ``kind = set`` row per programme item announced or skipped), from the stored ``exercises`` rows
(:class:`hipback.ingest.programme.ExerciseRows`): :data:`EXERCISE_COLUMNS`, with ``time_s``/``time_end_s``
in seconds since the recording start and ``utc_s``/``utc_end_s`` the same instants in Unix seconds (UTC);
``primary_peak_deg`` and ``range_deg`` in degrees in the catalogue's reference of the exercise's primary
angle (change from the start of the rep or hold, or relative to standing neutral); ``duration_s``, ``hold_s``,
``correct_s`` (time in correct form) and ``target_s`` (prescribed seconds per hold) in seconds;
``rules_broken``/``rules_not_checked`` comma-separated angle names. A session without exercises has a
header-only table. CSV: UTF-8, comma separated, header row, empty cell for a missing value. Parquet: the
same columns (null for missing), units and conventions in the file's key-value metadata.

OpenSense orientations (``orientations.sto``)
---------------------------------------------
The format OpenSim's ``STOFileAdapterQuaternion`` reads and OpenSense's IMU Placer / IMU IK take: a header
(``DataRate=``, ``DataType=Quaternion``, ``version=3``, ``OpenSimVersion=4.5``, ``endheader``), a tab
separated column row ``time`` + one column per IMU named after the OpenSim body it sits on (``pelvis_imu``,
``femur_l_imu``, ``femur_r_imu``, ``torso_imu`` for the upper-lumbar sensor, as in the Rajagopal model), and
one row per time with each cell ``w,x,y,z`` (the sensor-to-world quaternion, scalar first).

Orientations are those of the *sensors* (not of the segments): quaternion devices' own output, raw devices
through VQF (same settings as the processing pipeline). All sensors are resampled (slerp, never across a
gap) onto one grid at the lowest sensor rate; rows where a sensor has no valid orientation (gaps, start and
end) are left out, since OpenSense cannot use them; ``time`` keeps the true times.

Frames. hipback's world frame (VQF, Movella, Xsens) has **Z up**; its heading is arbitrary for 6D fusion.
OpenSim's ground has **Y up**. By default (``frame="z_up"``) the quaternions are written unchanged, and in
the IMU Placer set ``sensor_to_opensim_rotations`` to ``-1.5707963267948966 0 0`` (a -90 deg rotation about
X, as in OpenSense's Xsens example) plus ``base_imu_label = pelvis_imu`` for the heading correction.
``frame="y_up"`` applies that rotation here (``q' = R_x(-90 deg) * q``: world Z becomes OpenSim Y, world Y
becomes -Z); then use rotations ``0 0 0``. ``orientations_calibration.sto`` holds one row from the middle of
the standing calibration window (the pose to register the model's default standing pose with), and
``orientations_README.txt`` repeats these notes next to the files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hipback.ingest.errors import ConfigError
from hipback.ingest.files.atomic import (
    atomic_write_many,
    fsync_dir,
    interrupts_deferred,
    private_mkdir,
)
from hipback.ingest.results import angle_series_columns, records_table, table_csv
from hipback.processing import quaternion as quat
from hipback.processing.orientation import OrientationEstimator, check_quaternions
from hipback.processing.resample import GridResampler
from hipback.processing.types import PLACEMENTS, AngleSeries, Recording

if TYPE_CHECKING:
    from hipback.processing.pipeline import SessionResults

FORMATS = ("csv", "parquet", "sto")
TABLES = ("angles", "strides", "holds", "activity", "exercises")
STO_FILES = ("orientations.sto", "orientations_calibration.sto", "orientations_README.txt")
STO_FRAMES = ("z_up", "y_up")
#: OpenSense IMU names (Rajagopal 2015 model bodies) per hipback placement.
IMU_NAMES = {
    "pelvis": "pelvis_imu",
    "thigh_left": "femur_l_imu",
    "thigh_right": "femur_r_imu",
    "lumbar_upper": "torso_imu",
}
OPENSIM_VERSION = "4.5"
#: World Z-up to OpenSim Y-up: rotation of -90 deg about X (scalar first).
Q_ZUP_TO_YUP = np.array([math.cos(-math.pi / 4), math.sin(-math.pi / 4), 0.0, 0.0])

TABLE_METADATA = {
    "hipback.angles": "degrees, relative to the standing-neutral calibration; ISB: hip flexion +, "
    "anterior pelvic "
    "tilt +, lumbar flexion +; peak hip extension positive",
    "hipback.time": "seconds since the recording start",
    "hipback.missing": "empty (CSV) or null (Parquet) where not available; gaps are never interpolated",
}

#: Further key-value metadata of one table's Parquet file.
TABLE_NOTES = {
    "exercises": "one row per rep or hold (kind rep/hold) and per programme item announced or skipped (kind "
    "set); time_s/time_end_s: seconds since the recording start, utc_s/utc_end_s: Unix seconds (UTC); "
    "primary_peak_deg/range_deg: degrees, in the catalogue's reference of the exercise's primary angle "
    "(change from the start of the rep or hold, or relative to standing neutral); duration_s, hold_s, "
    "correct_s (time in correct form), target_s (prescribed seconds per hold): seconds; rules_broken, "
    "rules_not_checked: comma-separated angle names",
}

#: Columns of the ``exercises`` table, in order (module docstring; a stored row's ``t_s``/``t_end_s`` (UTC)
#: become ``utc_s``/``utc_end_s`` and, from the recording start, ``time_s``/``time_end_s``).
EXERCISE_COLUMNS = (
    "kind", "exercise", "work_side", "set_no", "rep", "time_s", "time_end_s", "utc_s", "utc_end_s",
    "prescribed", "target_s", "primary_peak_deg", "range_deg", "duration_s", "hold_s", "correct_s",
    "target_met", "too_short", "counted", "rules_broken", "rules_not_checked", "first_rule", "cue", "status",
    "text",
)

Table = dict[str, list[Any]]
#: Text columns of the ``exercises`` table (typed as text in Parquet even when every value is missing).
_EXERCISE_TEXT = frozenset(
    ("kind", "exercise", "work_side", "rules_broken", "rules_not_checked", "first_rule", "cue", "status",
     "text")
)


def export_files(fmt: str) -> tuple[str, ...]:
    """The names of the files an export in ``fmt`` writes (some ``.sto`` ones only when there is data)."""
    if fmt == "sto":
        return STO_FILES
    return tuple(f"{t}.{fmt}" for t in TABLES)


# -- tables -----------------------------------------------------------------------------------------------


def angles_table(angles: AngleSeries) -> Table:
    """The per-sample angles as columns (see the module docstring), NaN for missing."""
    out: Table = {"time_s": np.round(angles.t, 6).tolist()}
    for col, v in angle_series_columns(angles).items():
        out[col] = v.tolist()
    return out


def exercises_table(rows: Sequence[dict[str, Any]] | None, start_utc: float | None) -> Table:
    """The ``exercises`` table (:data:`EXERCISE_COLUMNS`) of a session's stored ``exercises`` rows;
    ``start_utc``: UTC of the recording start (Unix s; None leaves ``time_s``/``time_end_s`` empty)."""

    def since_start(v: Any) -> float | None:
        if start_utc is None or not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            return None
        return round(float(v) - float(start_utc), 6)

    out: Table = {c: [] for c in EXERCISE_COLUMNS}
    for r in rows or []:
        for c in EXERCISE_COLUMNS:
            if c == "utc_s":
                v = r.get("t_s")
            elif c == "utc_end_s":
                v = r.get("t_end_s")
            elif c == "time_s":
                v = since_start(r.get("t_s"))
            elif c == "time_end_s":
                v = since_start(r.get("t_end_s"))
            else:
                v = r.get(c)
            out[c].append(v)
    return out


def session_tables(
    results: Any, exercise_rows: Sequence[dict[str, Any]] | None = None, start_utc: float | None = None
) -> dict[str, Table]:
    """``angles``, ``strides``, ``holds`` and ``exercises`` tables of a
    :class:`hipback.processing.pipeline.SessionResults` and its stored ``exercises`` rows (when None: the
    rows of ``results.exercise_events``, :func:`hipback.ingest.programme.exercise_rows`); ``start_utc``: UTC
    of the recording start (s)."""
    from hipback.processing.activity import ActivityBout
    from hipback.processing.gait import Stride
    from hipback.processing.holds import Hold

    if exercise_rows is None and getattr(results, "exercise_events", None):
        from hipback.ingest.programme import exercise_rows as make_rows

        exercise_rows = make_rows(results.exercise_events, float(start_utc or 0.0))
    return {
        "angles": angles_table(results.angles),
        "strides": records_table(results.strides, Stride),
        "holds": records_table(results.holds, Hold),
        "activity": records_table(results.activity, ActivityBout),
        "exercises": exercises_table(exercise_rows, start_utc),
    }


def write_parquet(table: Table, path: Path, kind: str, *, commit: bool = True) -> Path:
    """One table as Parquet (NaN written as null), units in the key-value metadata, 0600; renamed into place
    (``commit``) or left as the returned temporary file for the caller to rename with others."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for name, vals in table.items():
        present = [v for v in vals if v is not None]  # None: null (a missing value)
        if present and all(isinstance(v, bool) for v in present):
            arrays[name] = pa.array(vals, type=pa.bool_())
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            arrays[name] = pa.array(vals, type=pa.int64())
        elif present and all(isinstance(v, str) for v in present):
            arrays[name] = pa.array(vals, type=pa.string())
        elif not present and kind == "exercises" and name in _EXERCISE_TEXT:
            arrays[name] = pa.array(vals, type=pa.string())
        else:
            f = np.asarray(vals, dtype=np.float64)
            arrays[name] = pa.array(f, type=pa.float64(), mask=~np.isfinite(f))
    meta = {**TABLE_METADATA, "hipback.table": kind}
    if kind in TABLE_NOTES:
        meta[f"hipback.{kind}"] = TABLE_NOTES[kind]
    tbl = pa.table(arrays).replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
    tmp = path.with_name(f".{path.name}.tmp")
    done = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # 0600 whatever the umask
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(tbl, fh)
            fh.flush()
            os.fsync(fh.fileno())
        if commit:
            tmp.replace(path)
        done = True
    finally:
        if commit or not done:
            tmp.unlink(missing_ok=True)
    return path if commit else tmp


# -- orientations -----------------------------------------------------------------------------------------


def sensor_orientations(
    recording: Recording, rate_hz: float | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sensor-to-world quaternions of every sensor on one grid ``k / rate_hz`` (default: lowest sensor rate).

    Raw sensors go through VQF (:class:`hipback.processing.orientation.OrientationEstimator`, 9D when the
    stream has
    a magnetometer, like the pipeline); quaternion sensors are normalised. Grid points without a valid value
    (outside a sensor's span, in a gap) are NaN. Returns ``(t, {placement: (N, 4)})``.
    """
    streams = {p: s for p, s in recording.streams.items() if len(s)}
    if not streams:
        raise ConfigError("the session has no samples to export.")
    rate = float(rate_hz or min(s.rate_hz for s in streams.values()))
    per: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for p, s in streams.items():
        if s.kind == "raw":
            est = OrientationEstimator(s.rate_hz)
            q = est.update(s.t, s.acc, s.gyr, s.mag).quat
        else:
            q = check_quaternions(s.quat).quat
        rs = GridResampler(rate, 2.5 / s.rate_hz)
        ks, qo, _ = rs.push(s.t, q, np.zeros(len(s.t)))
        per[p] = (ks, qo)
    k0 = min(int(ks[0]) for ks, _ in per.values() if len(ks))
    k1 = max(int(ks[-1]) for ks, _ in per.values() if len(ks)) + 1
    out: dict[str, np.ndarray] = {}
    for p, (ks, qo) in per.items():
        arr = np.full((k1 - k0, 4), np.nan)
        arr[ks - k0] = qo
        out[p] = arr
    t = np.arange(k0, k1) / rate
    order = {p: i for i, p in enumerate(PLACEMENTS)}
    return t, dict(sorted(out.items(), key=lambda kv: order.get(kv[0], 99)))


def sto_text(
    t: np.ndarray, quats: dict[str, np.ndarray], rate_hz: float, frame: str = "z_up"
) -> tuple[str, int]:
    """The ``.sto`` text for rows where every sensor is valid; returns ``(text, rows written)``."""
    if frame not in STO_FRAMES:
        raise ConfigError(f"unknown orientation frame {frame!r}; use z_up or y_up.")
    names = [IMU_NAMES.get(p, f"{p}_imu") for p in quats]
    qs = []
    for q in quats.values():
        q = np.asarray(q, dtype=float)
        if frame == "y_up":
            q = quat.multiply(Q_ZUP_TO_YUP, q)
        good = np.isfinite(q).all(axis=1)
        q = q.copy()
        q[good] = quat.canonical(q[good])
        qs.append(q)
    ok = np.ones(len(t), dtype=bool)
    for q in qs:
        ok &= np.isfinite(q).all(axis=1)
    lines = [
        f"DataRate={rate_hz:.6f}",
        "DataType=Quaternion",
        "version=3",
        f"OpenSimVersion={OPENSIM_VERSION}",
        "endheader",
        "\t".join(["time", *names]),
    ]
    idx = np.flatnonzero(ok)
    for i in idx:
        cells = [f"{t[i]:.6f}"] + [",".join(f"{v:.8f}" for v in q[i]) for q in qs]
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n", int(len(idx))


def _readme(frame: str, rows: int, dropped: int, rate: float, names: list[str]) -> str:
    rot = "-1.5707963267948966 0 0" if frame == "z_up" else "0 0 0"
    return (
        "hipback export for OpenSim OpenSense\n"
        f"orientations.sto: {rows} rows at {rate:g} Hz; {dropped} grid rows without a valid orientation of "
        "every "
        "sensor (gaps, start, end) were left out; the time column keeps the true times (s since the "
        "recording "
        "start).\n"
        f"IMUs: {', '.join(names)} (sensor-to-world quaternions w,x,y,z of the sensors themselves).\n"
        "World frame in the file: "
        f"{'Z up (hipback/VQF/Xsens convention)' if frame == 'z_up' else 'Y up (OpenSim)'}; "
        "heading arbitrary for 6D fusion.\n"
        f"IMU Placer: sensor_to_opensim_rotations = {rot}; base_imu_label = pelvis_imu; base_heading_axis as "
        "mounted (the pelvis sensor's forward-pointing axis).\n"
        "orientations_calibration.sto: one row from the middle of the standing calibration window, for "
        "orientation_file_for_calibration (the model's default pose is standing).\n"
    )


def write_sto(
    recording: Recording,
    out_dir: Path,
    *,
    frame: str = "z_up",
    calibration_window: tuple[float, float] | None = None,
) -> list[Path]:
    """``orientations.sto`` (+ calibration row file and README) in ``out_dir``; returns the paths written."""
    t, quats = sensor_orientations(recording)
    rate = (
        1.0 / float(np.median(np.diff(t)))
        if len(t) > 1
        else min(s.rate_hz for s in recording.streams.values())
    )
    text, rows = sto_text(t, quats, rate, frame)
    if rows == 0:
        raise ConfigError(
            "no moment of the session has a valid orientation of every sensor; nothing to export."
        )
    contents = {out_dir / "orientations.sto": text}
    if calibration_window is not None and all(math.isfinite(v) for v in calibration_window):
        mid = 0.5 * (calibration_window[0] + calibration_window[1])
        ok = np.ones(len(t), dtype=bool)
        for q in quats.values():
            ok &= np.isfinite(q).all(axis=1)
        if ok.any():
            i = int(np.flatnonzero(ok)[np.argmin(np.abs(t[ok] - mid))])
            one, _ = sto_text(t[i : i + 1], {p: q[i : i + 1] for p, q in quats.items()}, rate, frame)
            contents[out_dir / "orientations_calibration.sto"] = one
    names = [IMU_NAMES.get(p, f"{p}_imu") for p in quats]
    contents[out_dir / "orientations_README.txt"] = _readme(frame, rows, len(t) - rows, rate, names)
    return atomic_write_many(contents)  # all files together: an interrupted export leaves the old ones


def export_session(
    results: SessionResults,
    recording: Recording | None,
    out_dir: Path,
    fmt: str,
    *,
    frame: str = "z_up",
    exercise_rows: Sequence[dict[str, Any]] | None = None,
    start_utc: float | None = None,
) -> list[Path]:
    """Write the export of one session in ``fmt`` (csv, parquet or sto) into ``out_dir``; returns paths.
    ``exercise_rows``: the session's stored ``exercises`` rows; ``start_utc``: UTC of the recording start
    (s; see :func:`session_tables`)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use csv, parquet or sto.")
    private_mkdir(out_dir)
    if fmt == "sto":
        if recording is None:
            raise ConfigError("the .sto export needs the raw samples (a session in the local store).")
        windows = (
            [c.window for c in (getattr(results, "calibration", {}) or {}).values() if hasattr(c, "window")]
            if results is not None
            else []
        )
        return write_sto(recording, out_dir, frame=frame, calibration_window=windows[0] if windows else None)
    tables = session_tables(results, exercise_rows, start_utc)
    if fmt == "csv":  # all tables together: an interrupted export leaves the old files, never a mix
        return atomic_write_many({out_dir / f"{kind}.csv": table_csv(t) for kind, t in tables.items()})
    staged: list[tuple[Path, Path]] = []
    try:
        for kind, table in tables.items():
            p = out_dir / f"{kind}.parquet"
            staged.append((write_parquet(table, p, kind, commit=False), p))
        with interrupts_deferred():
            for tmp, p in staged:
                tmp.replace(p)
            staged = []
            fsync_dir(out_dir)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [out_dir / f"{kind}.parquet" for kind in tables]

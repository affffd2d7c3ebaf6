"""``hipback process``: recording files in, angles / strides / holds / activity / summary files out.

Usage: ``hipback process --out DIR PLACEMENT=FILE ...`` with placements ``pelvis``, ``thigh_left``,
``thigh_right``, ``lumbar_upper`` and files in hipback's format, Movella DOT or Xsens MT Manager exports
(sensors may differ in rate; ``--dialect movella_dot`` or ``--dialect xsens_mt`` names the dialect of
exports whose columns cannot tell the two apart, see :func:`check_dialect`), or ``hipback process --out DIR
FOLDER`` with a recording folder in hipback's format (``hipback simulate`` writes one; its ``session.json``
or its files' headers name the placements).
Writes into DIR:

- ``angles.csv``: one row per sample of the common timeline (100 Hz), columns ``time_s``,
  ``hip_flexion_left_deg``, ``hip_flexion_right_deg``, ``pelvic_tilt_deg``, ``lumbar_flexion_deg``
  (degrees, relative to the standing-neutral calibration; empty where a side is not worn or not available);
- ``strides.csv``, ``holds.csv``, ``activity.csv``: one row per stride / hold / activity bout, one column per
  field of :class:`~hipback.processing.gait.Stride` / :class:`~hipback.processing.holds.Hold` /
  :class:`~hipback.processing.activity.ActivityBout` (angles in degrees in ``..._deg`` columns, times
  ``t_..._s`` in s on the recording timeline, ``true``/``false``, an empty cell where missing): the same
  tables as ``hipback export --format csv`` of the stored session
  (:func:`hipback.ingest.results.records_table`);
- ``summary.json``: the session summary (see :func:`hipback.processing.pipeline.build_summary`), calibration
  per sensor (quality, reasons, flags), warnings and gaps, and what was read of each sensor (device, rate,
  samples) with the gaps found while reading (:func:`summary_json`; the report's data-quality table).

With ``--store PATH`` the recording (every raw sample), its results and its InfluxDB points go into that
local store (points in its outbox, see :mod:`hipback.ingest.publish`); with ``HIPBACK_INFLUX_URL`` set they
are sent at once, otherwise ``hipback sync`` sends them. Stored times are UTC: the files' own (hipback
files, Xsens exports with UTC columns), or ``--start`` (ISO 8601 with its time zone) for files without one
(Movella DOT exports name only the phone's local time, zone unknown), which also replaces the files' own;
without either the recording is stored as starting now, and the user is told (with the local time the file
names give, and the option that sets it).

Raw (acc+gyr) sensors get the fixed-lag smoothed orientation filter by default
(:data:`DEFAULT_ORIENTATION`, ``ProcessorConfig.orientation = "lagged"``,
:class:`hipback.processing.orientation.LaggedOrientationEstimator`): nothing waits for live angles here, and
against the causal filter of live sessions it gives a better inclination while walking (pelvic tilt, hip
flexion) with the same heading; each result is final up to 6 s after its samples, which costs nothing
offline. ``--orientation causal`` gives the live sessions' filter (the results a live session computes from
the same samples); quaternion sensors are unaffected either way. ``summary.json`` always says which filter
raw sensors got (``"orientation_filter"``), and with ``--store`` so does the stored session's meta. No
plan prescribed the stretch holds of files (``summary.json``'s ``holds.planned`` is false): the hold
detector's target is its default (30 s in correct posture), and the report speaks of no plan.
Measured causal -> lagged: see bench/README.md ("The fixed-lag filter as hipback process's default").

The standing calibration may come from a standing-still period anywhere in the first half hour of the
recording: the rows before it wait for it (``ProcessorConfig.calibration_timeout_s``, see
:func:`hipback.processing.pipeline.offline_calibration_wait_s`; a live session waits 60 s and then reports
its angles uncalibrated, empty), so a recording that starts sitting or walking keeps its angles, strides and
activity from its first sample.

``--calibration-from DIR`` (or the ``summary.json`` in it) takes the calibration of an earlier run on a
recording of the same sensors, not re-strapped, instead: a standing calibration trial recorded apart from
the movement trials (an N-pose trial, OpenSense's calibration trial). A thigh or pelvis axis that trial could
only take from the placement prior (it held no walking or leg swing) is taken from this recording's own
movement (``ProcessorConfig.refine_axes``), the vertical kept. ``summary.json`` then names that trial's files
(``"calibration_from"``). A file that is not such a summary, or lacks one of the sensors, is refused with one
sentence before any work.

Results of an earlier run in DIR are never replaced silently: ``--overwrite`` says so. The data are checked
for mix-ups (the same file for two placements, a thigh file that turns no faster than the pelvis while
walking, a stream that starts or ends well apart from the others): each is a warning printed and kept in
``summary.json``.

Interruptions (Ctrl-C, a full disk, an error) never leave a result that looks complete: the five files are
written to temporary files and renamed together (all old files or all new ones), the store import is one
transaction (the session with all its samples, results and points, or nothing), and a file input may be a
pipe (``pelvis=<(zcat pelvis.csv.gz)``). Every file written is 0600, a folder created 0700; ``summary.json``
names the input files without their folders (folder names can carry a person's name).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer

from hipback.ingest.errors import ConfigError
from hipback.ingest.files.atomic import check_output_folder, ensure_output_folder
from hipback.ingest.ids import PSEUDONYM_RULE, is_pseudonym
from hipback.ingest.results import angle_series_columns, records_table, table_csv
from hipback.processing.activity import ActivityBout
from hipback.processing.calibration import SensorCalibration
from hipback.processing.channel import ORIENTATION_FILTERS
from hipback.processing.gait import Stride
from hipback.processing.holds import Hold
from hipback.processing.pipeline import (
    ProcessorConfig,
    SessionResults,
    offline_calibration_wait_s,
    process_recording,
)
from hipback.processing.types import PLACEMENTS, Recording, SensorStream

if TYPE_CHECKING:
    from hipback.ingest.store import LocalStore

ANGLE_COLUMNS = (
    ("hip_flexion_left", "hip_flexion_left_deg"),
    ("hip_flexion_right", "hip_flexion_right_deg"),
    ("pelvic_tilt", "pelvic_tilt_deg"),
    ("lumbar_flexion", "lumbar_flexion_deg"),
)


def recording_folder(inputs: list[str]) -> Path | None:
    """The recording folder given instead of ``PLACEMENT=FILE`` pairs (an input without ``=`` that is a
    folder), or None; :class:`ConfigError` when both are given."""
    folders = [Path(i) for i in inputs if "=" not in i and Path(i).is_dir()]
    if not folders:
        return None
    if len(inputs) > 1:
        raise ConfigError(
            f"give either one recording folder ({folders[0]}) or PLACEMENT=FILE pairs, not both."
        )
    return folders[0]


def parse_inputs(inputs: list[str]) -> dict[str, Path]:
    """``PLACEMENT=FILE`` strings, or one recording folder (:func:`folder_inputs`) -> {placement: path}; a
    user mistake raises :class:`ConfigError`."""
    if not inputs:
        raise ConfigError("give a recording folder or PLACEMENT=FILE pairs, for example pelvis=pelvis.csv.")
    folder = recording_folder(inputs)
    if folder is not None:
        return folder_inputs(folder)
    out: dict[str, Path] = {}
    for item in inputs:
        placement, sep, file = item.partition("=")
        placement = placement.strip()
        if not sep or not placement or not file:
            raise ConfigError(
                f"{item!r} is not a PLACEMENT=FILE pair (for example thigh_left=left.csv) nor a recording "
                "folder."
            )
        if placement not in PLACEMENTS:
            raise ConfigError(f"unknown placement {placement!r}; use one of {', '.join(PLACEMENTS)}.")
        if placement in out:
            raise ConfigError(f"the placement {placement} is given twice.")
        path = Path(file)
        if not path.exists():
            raise ConfigError(f"the file {path} for {placement} does not exist.")
        if path.is_dir():
            raise ConfigError(f"{path} for {placement} is a folder; give a recording file.")
        out[placement] = path
    _require_sensors(out)
    return out


def folder_inputs(folder: Path) -> dict[str, Path]:
    """{placement: path} of a recording folder in hipback's format (``hipback simulate`` and
    :func:`hipback.ingest.files.write_recording` write them; :func:`hipback.ingest.files.recording_files`);
    a folder of other files (vendor exports, which name no placement) is a :class:`ConfigError` saying how to
    name them."""
    from hipback.ingest.files import recording_files

    files = recording_files(folder)
    if not files:
        names = sorted(f.name for f in folder.iterdir()
                       if f.is_file() and f.suffix.lower() in (".csv", ".txt"))
        held = f" (it holds {', '.join(names[:4])}{', ...' if len(names) > 4 else ''})" if names else ""
        raise ConfigError(
            f"{folder} holds no recording in hipback's format{held}; give each sensor's file with its "
            "placement, for example pelvis=FILE thigh_left=FILE thigh_right=FILE."
        )
    unknown = sorted(set(files) - set(PLACEMENTS))
    if unknown:
        raise ConfigError(
            f"{folder} holds a sensor placed at {unknown[0]!r}, which process does not know (it knows "
            f"{', '.join(PLACEMENTS)}); give the other files as PLACEMENT=FILE pairs."
        )
    _require_sensors(files)
    return files


def _require_sensors(files: dict[str, Path]) -> None:
    if "pelvis" not in files:
        raise ConfigError("a pelvis sensor file is required (pelvis=FILE).")
    if not any(p.startswith("thigh") for p in files):
        raise ConfigError("at least one thigh sensor file is required (thigh_left=FILE or thigh_right=FILE).")


#: during walking a thigh turns several times faster than the pelvis (90th percentile of the angular speed;
#: measured figures in bench/README.md); a thigh turning less than this many times as fast is suspect
THIGH_OVER_PELVIS_MIN = 1.5
#: the comparison is made only when there was walking: some sensor's 90th percentile angular speed reaches
#: MOVING_DEG_S (deg/s), or the pelvis's reaches PELVIS_MOVING_DEG_S (deg/s; still during stretches)
MOVING_DEG_S = 40.0
PELVIS_MOVING_DEG_S = 20.0
#: a stream ending (or starting) this many seconds before (after) the others is reported
EARLY_END_S = 5.0


def angular_speed_p90_deg_s(stream: SensorStream) -> float | None:
    """90th percentile of a stream's angular speed (deg/s), from its gyroscope or its quaternions."""
    if stream.gyr is not None:
        w = np.linalg.norm(stream.gyr, axis=1)
    elif stream.quat is not None and len(stream.t) > 1:
        dot = np.abs(np.sum(stream.quat[1:] * stream.quat[:-1], axis=1)).clip(0.0, 1.0)
        w = 2.0 * np.arccos(dot) / np.diff(stream.t)
    else:
        return None
    w = w[np.isfinite(w)]
    return float(np.degrees(np.percentile(w, 90))) if w.size else None


def import_warnings(recording: Any) -> list[str]:
    """What reading the files changed or left out (each stream's ``ImportReport.warnings``), one line per
    warning, named by placement."""
    out: list[str] = []
    for placement, stream in recording.streams.items():
        report = stream.meta.get("import")
        out.extend(f"{placement}: {w}" for w in getattr(report, "warnings", None) or [])
    return out


def mixup_warnings(recording: Recording, files: dict[str, Path]) -> list[str]:
    """Mix-ups the data reveal: the same file for two placements, a thigh file that turns no faster than the
    pelvis during walking (the pelvis file given as a thigh, or files swapped), a stream that starts or ends
    well apart from the others (seconds given)."""
    out: list[str] = []
    digests: dict[bytes, str] = {}
    for placement, path in files.items():
        try:
            import hashlib

            digest = hashlib.sha256(path.read_bytes()).digest() if path.is_file() else None
        except OSError:
            digest = None
        if digest is not None:
            if digest in digests:
                out.append(f"{digests[digest]} and {placement} were given the same file ({path.name}): each "
                           "placement needs its own sensor's file")
            digests.setdefault(digest, placement)
    streams = recording.streams
    speeds = {p: angular_speed_p90_deg_s(s) for p, s in streams.items()}
    pelvis = speeds.get("pelvis")
    moving = max(v for v in speeds.values() if v is not None) >= MOVING_DEG_S
    if pelvis and (moving or pelvis >= PELVIS_MOVING_DEG_S):
        slow = [p for p in ("thigh_left", "thigh_right") if speeds.get(p) is not None
                and speeds[p] < THIGH_OVER_PELVIS_MIN * pelvis]
        if slow:
            shown = ", ".join(f"{p} {speeds[p]:.0f}" for p in slow)
            out.append(
                f"{' and '.join(slow)} turn{'s' if len(slow) == 1 else ''} no faster than the pelvis (90th "
                f"percentile of the angular speed: pelvis {pelvis:.0f}, {shown} deg/s), whereas a thigh "
                "turns several times faster during walking: check that each file was given to the right "
                "placement (a pelvis file given as a thigh gives no strides)"
            )
    if len(streams) > 1:
        starts = {p: float(s.t[0]) for p, s in streams.items() if len(s.t)}
        ends = {p: float(s.t[-1]) for p, s in streams.items() if len(s.t)}
        first, last = min(starts.values()), max(ends.values())
        for p in streams:
            if p in ends and last - ends[p] > EARLY_END_S:
                out.append(f"{p} ends {last - ends[p]:.0f} s before the other sensors: the last "
                           f"{last - ends[p]:.0f} s have no {p} data")
            if p in starts and starts[p] - first > EARLY_END_S:
                out.append(f"{p} starts {starts[p] - first:.0f} s after the other sensors")
    return out


def _fmt(v: float, digits: int = 3) -> str:
    return "" if not math.isfinite(v) else f"{v:.{digits}f}"


def angles_csv(res: SessionResults) -> str:
    cols = angle_series_columns(res.angles)
    names = [col for _, col in ANGLE_COLUMNS]
    lines = ["time_s," + ",".join(names)]
    for i, t in enumerate(res.angles.t.tolist()):
        lines.append(f"{t:.3f}," + ",".join(_fmt(float(cols[c][i])) for c in names))
    return "\n".join(lines) + "\n"


def _json_safe(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.generic):
        return _json_safe(v.item())
    return v


def _sensor_id(stream: SensorStream) -> dict[str, str]:
    """``{"sensor_id": ...}`` when the stream's file named its sensor, else nothing."""
    ident = stream.meta.get("sensor_id")
    return {"sensor_id": str(ident)} if ident else {}


def summary_json(
    res: SessionResults, files: dict[str, Path], recording: Recording | None = None
) -> dict[str, Any]:
    """``summary.json``: the session summary plus what ``hipback report`` reads of the run (inputs, sensors,
    calibration, warnings, gaps; with ``recording``, each sensor's ``device``, ``rate_hz``, ``samples`` and,
    when its file names it, the sensor's own ``sensor_id``, as read, ``recording_sensors``, and the gaps
    found while reading it, ``recording_gaps``, in session s). ``gaps`` holds those and the gaps the
    processing found beyond them (time steps over its gap limit that no file's gap covers), each once
    (:func:`hipback.processing.pipeline.merge_gaps`)."""
    extra: dict[str, Any] = {}
    if recording is not None:
        extra["recording_sensors"] = {
            p: {"device": s.device, "rate_hz": float(s.rate_hz), "samples": len(s), **_sensor_id(s)}
            for p, s in recording.streams.items()
        }
        extra["recording_gaps"] = [
            {"placement": g.placement, "t_start_s": g.t_start, "t_end_s": g.t_end, "missing": g.missing}
            for g in recording.gaps
        ]
    return _json_safe(
        {
            **res.summary,
            "inputs": {p: f.name for p, f in files.items()},  # names only: folders can name a person
            "sensors": res.placements,
            **extra,
            "calibration_state": res.calibration_state,
            "calibration": {p: c.to_dict() for p, c in res.calibration.items()},
            "warnings": res.warnings,
            "gaps": [
                {"placement": g.placement, "t_start_s": g.t_start, "t_end_s": g.t_end, "missing": g.missing}
                for g in res.gaps
            ],
            "angles_reference": (
                "relative to the standing-neutral calibration at the session start"
                if "calibration_from" not in res.summary
                else "relative to the standing-neutral calibration of the recording whose files "
                "calibration_from names"
            ),
        }
    )


#: The processing's calibration states (:mod:`hipback.processing.calibration_search`), in words, for a
#: session whose processing ended in them (summary.json keeps the state itself).
CALIBRATION_WORDS = {
    "calibrated": "calibrated",
    "searching_standing": "not calibrated: no standing-still period",
    "waiting_for_movement": "not calibrated: the recording ended before the walking or leg swing the "
                            "calibration waits for",
    "calibrating": "not calibrated: the recording ended during the calibration",
}


def calibration_words(res: SessionResults) -> str:
    """The calibration state in words a researcher reads; a calibrated session that left a sensor out (no
    valid samples while standing) names it."""
    state = str(res.calibration_state or "")
    words = CALIBRATION_WORDS.get(state, state.replace("_", " ") or "calibration state unknown")
    if state != "calibrated":
        return words
    missing = [p for p in res.placements if p not in (res.calibration or {})]
    if missing and len(missing) == len(res.placements):
        return "not calibrated: no sensor had valid samples while standing"
    if missing:
        return f"calibrated, except {' and '.join(missing)} (no valid samples while standing)"
    return words


def human_summary(res: SessionResults) -> list[str]:
    s = res.summary
    lines = [f"Processed {s['duration_s']:.0f} s ({calibration_words(res)})."]
    if res.calibration:
        given = s.get("calibration_from")
        source = f" (from the calibration of {', '.join(sorted(given.values()))})" if given else ""
        lines.append(
            "Calibration quality: "
            + ", ".join(f"{p} {c.quality:.2f}" for p, c in res.calibration.items())
            + source + "."
        )
    elif "calibration_from" not in s:
        lines.append("No standing-still period to calibrate from: if the sensors' standing calibration was "
                     "recorded apart, give its results with --calibration-from DIR.")
    for side in ("left", "right"):
        n = s.get(f"n_strides_{side}", 0)
        if f"thigh_{side}" in res.placements:
            ext = s.get(f"peak_hip_extension_{side}_deg")
            ext_txt = "n/a" if ext is None else f"{ext:.1f} deg"
            lines.append(f"{side.capitalize()} leg: {n} strides, median peak hip extension {ext_txt}.")
    if s.get("cadence_spm") is not None:
        lines.append(f"Cadence {s['cadence_spm']:.0f} steps/min.")
    h = s.get("holds", {})
    for side in ("left", "right"):
        hs = h.get(side, {})
        if hs.get("count"):
            lines.append(
                f"Stretch holds {side}: {hs['count']} ({hs['completed']} reached "
                f"{h['prescribed_hold_s']:.0f} s of correct posture, {hs['arching']} with arching)."
            )
    if s.get("activity_s"):
        lines.append("Time: " + ", ".join(f"{k} {v:.0f} s" for k, v in s["activity_s"].items()) + ".")
    lines.extend(f"Warning: {w}" for w in res.warnings)
    return lines


def write_outputs(
    res: SessionResults, out: Path, files: dict[str, Path], recording: Recording | None = None
) -> list[Path]:
    """Write angles.csv, strides.csv, holds.csv, activity.csv, summary.json into ``out`` (created 0700 when
    missing), all five together: see :func:`hipback.ingest.files.atomic.atomic_write_many`; ``recording``:
    what was read, for the sensors' facts in summary.json (:func:`summary_json`)."""
    from hipback.ingest.files.atomic import atomic_write_many

    out = ensure_output_folder(out)
    contents = {
        "angles.csv": angles_csv(res),
        # (the tables hipback export writes of a stored session: hipback.ingest.results.records_table)
        "strides.csv": table_csv(records_table(res.strides, Stride)),
        "holds.csv": table_csv(records_table(res.holds, Hold)),
        "activity.csv": table_csv(records_table(res.activity, ActivityBout)),
        "summary.json": json.dumps(summary_json(res, files, recording), indent=2) + "\n",
    }
    return atomic_write_many({out / name: text for name, text in contents.items()})


OUTPUT_FILES = ("angles.csv", "strides.csv", "holds.csv", "activity.csv", "summary.json")

#: the raw sensors' orientation filter of ``hipback process`` (see the module docstring): offline, the
#: fixed-lag smoothed one; live sessions keep the causal filter
DEFAULT_ORIENTATION = "lagged"


def load_calibration(
    path: Path, placements: list[str]
) -> tuple[dict[str, SensorCalibration], dict[str, str]]:
    """The calibration of ``placements`` from the ``summary.json`` of an earlier ``hipback process`` run
    (``path``: the file or its folder), for recordings of the same strapping: each sensor's segment axes
    as found there, their window dropped (it was on the other recording's clock); and the names of the
    files that run read (its ``inputs``, placement -> file name; empty when it lists none).
    :class:`ConfigError` (one sentence) when the file cannot be read, is not such a summary, or lacks one
    of the sensors."""
    path = Path(path)
    file = path / "summary.json" if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
        raise ConfigError(f"cannot read the calibration file {file} ({reason}).") from None
    try:
        doc = json.loads(text)
    except ValueError:
        raise ConfigError(f"{file} is not a summary.json of hipback process (not JSON).") from None
    cals = doc.get("calibration") if isinstance(doc, dict) else None
    if not isinstance(cals, dict) or not cals:
        raise ConfigError(f"{file} holds no calibration (a summary.json of hipback process on a recording "
                          "that was calibrated is needed).")
    out: dict[str, SensorCalibration] = {}
    for p in placements:
        if p not in cals:
            raise ConfigError(f"the calibration in {file} has no {p} sensor; it can only be used for the "
                              "same sensors, worn the same way.")
        try:
            cal = SensorCalibration.from_dict(cals[p])
        except ValueError as exc:
            raise ConfigError(f"the calibration in {file} is damaged ({exc}).") from None
        if cal.placement != p:
            raise ConfigError(f"the calibration in {file} is damaged ({p} is filed as {cal.placement}).")
        cal.window = (math.nan, math.nan)
        out[p] = cal
    inputs = doc.get("inputs")
    names = {str(k): str(v) for k, v in inputs.items()} if isinstance(inputs, dict) else {}
    return out, names


def run(
    inputs: list[str], out: Path, store: Path | None = None, patient: str | None = None,
    overwrite: bool = False, orientation: str = DEFAULT_ORIENTATION, calibration_from: Path | None = None,
    start: str | None = None, dialect: str | None = None,
) -> SessionResults:
    """Process the files and write the outputs (see module docstring); returns the session results.

    Results of an earlier run in ``out`` are replaced only with ``overwrite`` (otherwise
    :class:`ConfigError`, before any work); ``orientation`` is the raw sensors' filter (``"lagged"``, the
    default, or ``"causal"``; :class:`ConfigError` otherwise); ``calibration_from``: the ``summary.json``
    (or its folder) of an earlier run on a recording of the same strapping whose calibration to use
    (:func:`load_calibration`; a thigh's or the pelvis' medio-lateral axis is taken from this recording's
    movement where that calibration had none); ``start``: the recording's UTC start for ``store`` (ISO
    8601 with its time zone, :func:`parse_start`); ``dialect``: the dialect of the vendor exports given
    (:func:`check_dialect`)."""
    from hipback.ingest.files import read_recording
    from hipback.ingest.store import LocalStore

    if orientation not in ORIENTATION_FILTERS:
        names = " or ".join(ORIENTATION_FILTERS)
        raise ConfigError(f"unknown orientation filter {orientation!r}; use {names}.")
    folder = recording_folder(inputs)
    files = folder_inputs(folder) if folder is not None else parse_inputs(inputs)
    if dialect is not None:
        check_dialect(dialect, folder)
    if patient is not None:
        check_patient(patient)
    start_utc = None
    if start is not None:
        if store is None:
            raise ConfigError("--start sets the stored session's time: give it with --store.")
        start_utc = parse_start(start)
    given, given_inputs = (
        load_calibration(calibration_from, list(files)) if calibration_from is not None else (None, {})
    )
    out = check_output_folder(out)  # created only when the results are written
    earlier = [name for name in OUTPUT_FILES if (out / name).exists()]
    if earlier and not overwrite:
        raise ConfigError(f"{out} already holds the results of an earlier run ({', '.join(earlier)}); give "
                          "another --out folder, or add --overwrite to replace them.")
    if store is not None:
        from hipback.ingest.commands.sync import influx_settings

        influx_settings()  # a malformed HIPBACK_INFLUX_URL is reported before the work
    st = LocalStore(store) if store is not None else None  # a damaged store is reported before the work
    try:
        recording = read_recording(folder if folder is not None else dict(files), dialect=dialect)
        wait_s = offline_calibration_wait_s(recording.duration_s)
        cfg = ProcessorConfig(orientation=orientation, calibration_timeout_s=wait_s,
                              initial_calibration=given, refine_axes=given is not None)
        res = process_recording(recording, cfg)
        res.summary["orientation_filter"] = orientation
        if isinstance(res.summary.get("holds"), dict):  # no plan prescribed holds: the report says no "plan"
            res.summary["holds"]["planned"] = False
        if given is not None:  # the calibration trial's file names (names only: folders can name a person)
            res.summary["calibration_from"] = given_inputs
        res.warnings.extend(import_warnings(recording))
        res.warnings.extend(mixup_warnings(recording, files))
        write_outputs(res, out, files, recording)
        typer.echo(f"Wrote angles.csv, strides.csv, holds.csv, activity.csv and summary.json to {out}.")
        if st is not None:
            _to_store(st, recording, res, patient or _recorded_patient(recording, files), orientation, given,
                      start_utc)
    finally:
        if st is not None:
            st.close()
    for line in human_summary(res):
        typer.echo(line)
    return res


def check_dialect(dialect: str, folder: Path | None) -> None:
    """``--dialect``: the dialect of the vendor exports given as ``PLACEMENT=FILE`` pairs, for files whose
    content cannot tell a Movella DOT export (gyroscope in deg/s) from an Xsens MT Manager one (rad/s);
    :class:`ConfigError` for another name or with a recording folder (its files are in hipback's format)."""
    from hipback.ingest.files.detect import VENDOR_DIALECTS

    if dialect not in VENDOR_DIALECTS:
        raise ConfigError(f"unknown dialect {dialect!r} for --dialect; use {' or '.join(VENDOR_DIALECTS)} "
                          "(files in hipback's format are known by their first line).")
    if folder is not None:
        raise ConfigError(f"--dialect names the dialect of vendor exports given as PLACEMENT=FILE pairs; the "
                          f"recording folder {folder} is in hipback's format.")


#: the years a recording's start may lie in (a typo such as 0023 or 20023 is refused)
START_YEARS = (2000, 2100)


def parse_start(text: str) -> float:
    """``--start``: ISO 8601 with a time zone (``2023-10-31T13:31:50+01:00``, ``...Z``) -> UTC Unix seconds;
    :class:`ConfigError` for anything else (a time without zone would be ambiguous)."""
    from datetime import UTC, datetime

    example = "e.g. 2023-10-31T13:31:50+01:00 or 2023-10-31T12:31:50Z"
    try:
        dt = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--start {text!r} is not an ISO 8601 date and time ({example}).") from None
    if dt.tzinfo is None:
        raise ConfigError(f"--start {text!r} has no time zone; add it ({example}).")
    utc = dt.astimezone(UTC)
    if not START_YEARS[0] <= utc.year < START_YEARS[1]:
        raise ConfigError(f"--start {text!r} lies outside the years {START_YEARS[0]}-{START_YEARS[1] - 1}.")
    return utc.timestamp()


def _local_start(recording: Recording) -> str | None:
    """The local start time the input files' names give (Movella DOT exports), if any, as ISO 8601 without
    zone."""
    for s in recording.streams.values():
        report = s.meta.get("import")
        local = getattr(report, "header", {}).get("start_local") if report is not None else None
        if local:
            return str(local)
    return None


def check_patient(patient: str) -> str:
    """``patient`` if it is a pseudonymous id (:mod:`hipback.ingest.ids`, the whole string), else
    :class:`ConfigError`."""
    if not is_pseudonym(patient):
        raise ConfigError(
            f"the patient id {patient!r} cannot be stored: use a pseudonymous id of {PSEUDONYM_RULE}."
        )
    return patient


def _recorded_patient(recording: Recording, files: dict[str, Path]) -> str:
    """The recording's pseudonymous patient id: its meta, else the ``session.json`` of a hipback recording
    folder holding the pelvis file, else ``offline``."""
    pid = recording.meta.get("patient_id")
    if not pid:
        session_file = files["pelvis"].parent / "session.json"
        try:
            pid = (json.loads(session_file.read_text(encoding="utf-8")).get("meta") or {}).get("patient_id")
        except (OSError, ValueError, AttributeError):
            pid = None
    return str(pid or "offline")


def _to_store(
    st: LocalStore, recording: Recording, res: SessionResults, patient: str,
    orientation: str = DEFAULT_ORIENTATION, given: dict[str, SensorCalibration] | None = None,
    start_utc: float | None = None,
) -> str:
    """Put the recording (every raw sample), its results and its InfluxDB points into the local store.

    Times are stored as UTC Unix seconds (``start_utc`` + t: the given start, else
    ``recording.start_utc``; a recording without either is stored as starting now, and the user is told).
    ``st`` is the open local store, ``patient`` the pseudonymous id, ``orientation`` the raw sensors' filter
    the results came from (kept in the session's meta as ``orientation_filter``), ``given`` the calibration
    given with ``--calibration-from`` (kept in the meta as ``calibration_given``, its windows left out; with
    ``calibration_from``, the names of the files it came from), so that reprocessing the stored session
    reproduces its results. The points go into the store's outbox
    (:func:`hipback.ingest.publish.publish_session`); when ``HIPBACK_INFLUX_URL`` is set they are sent right
    away, otherwise ``hipback sync`` sends them.
    Returns the session id.
    """
    import time

    from hipback.ingest.influx.schema import check_tag
    from hipback.ingest.publish import publish_session

    check_patient(patient)
    try:
        check_tag("patient", patient)
    except ValueError:
        raise ConfigError(
            f"the recording's patient id {patient!r} cannot be stored: use a pseudonymous id of "
            f"{PSEUDONYM_RULE}."
        ) from None
    start = recording.start_utc if start_utc is None else start_utc
    if start is None:
        start = float(round(time.time(), 3))
        local = _local_start(recording)
        if local is None:
            typer.echo("The recording has no start time; it is stored as starting now (give --start to store "
                       "it at its time).")
        else:
            typer.echo(f"The recording has no UTC start time (its file names give {local.replace('T', ' ')}, "
                       f"local time of an unknown zone); it is stored as starting now. To store it at its "
                       f"time, give --start {local}+HH:MM with that place's UTC offset.")
    elif start_utc is not None and recording.start_utc is not None and start_utc != recording.start_utc:
        from hipback.ingest.files.hipback_format import format_utc

        typer.echo(f"Stored as starting at {format_utc(start_utc)} (--start; the files say "
                   f"{format_utc(recording.start_utc)}).")
    store = st.path
    with st.transaction():  # all of it or nothing, also on Ctrl-C or a full disk
        meta: dict[str, Any] = {"source": "hipback process", "start_utc": start,
                                "orientation_filter": orientation}
        if given is not None:
            meta["calibration_given"] = {
                p: {k: v for k, v in c.to_dict().items() if k != "window_s"} for p, c in given.items()
            }
            meta["calibration_from"] = res.summary.get("calibration_from", {})
        sid = st.open_session(patient, meta)
        for p, s in recording.streams.items():
            st.add_sensor(sid, p, s.kind, s.device, None, {"rate_hz": s.rate_hz, **_sensor_id(s)})
            st.add_samples(sid, p, s.t + start, seq=s.seq, quat=s.quat, acc=s.acc, gyr=s.gyr, mag=s.mag)
        for g in recording.gaps:
            st.add_gap(sid, g.placement, g.t_start + start, g.t_end + start, g.missing, g.reason)
        queued = publish_session(st, sid, res, patient, start)
        st.close_session(sid, end_utc=start + float(res.angles.t[-1]) if len(res.angles) else None)
    typer.echo(f"Stored the recording and results as session {sid} in {store}; "
               f"{queued} InfluxDB point(s) queued.")
    _sync_now(st, store)
    return sid


def _sync_now(st: LocalStore, store: Path) -> None:
    """Send the outbox now when ``HIPBACK_INFLUX_URL`` is set; otherwise say that ``hipback sync`` will."""
    from hipback.ingest.commands.sync import influx_settings
    from hipback.ingest.errors import DatabaseError, Interrupted
    from hipback.ingest.sync import SyncWorker

    influx_settings()  # a malformed HIPBACK_INFLUX_URL is one sentence, not a traceback
    worker = SyncWorker.from_env(st)
    if worker is None:
        typer.echo(f"HIPBACK_INFLUX_URL is not set: `hipback sync --store {store}` will send them "
                   "to InfluxDB.")
        return
    try:
        worker.writer.ensure_database()
        report = worker.sync_once()
    except KeyboardInterrupt:
        left = st.outbox_stats()["pending"]
        raise Interrupted(f"interrupted while sending to InfluxDB; the session is stored in {store} and "
                          f"{left} line(s) stay queued for `hipback sync --store {store}`.") from None
    except DatabaseError as exc:
        left = st.outbox_stats()["pending"]
        typer.echo(f"hipback: {str(exc).rstrip('.')}; {left} line(s) stay queued in {store} for "
                   "`hipback sync`.", err=True)
        return
    finally:
        worker.writer.close()
    typer.echo(f"Sent {report.delivered} line(s) to InfluxDB; {report.pending} pending.")
    if report.set_aside:
        typer.echo(f"hipback: InfluxDB refused {report.set_aside} line(s) as bad data; they are set aside "
                   f"in {store} (outbox state set_aside).", err=True)

"""``hipback demo``: a virtual patient wearing four virtual sensors of three kinds, end to end.

The path is the production one: virtual Bumble GATT peripherals speaking the real byte protocols
(hipback IMU profile v1 on the pelvis and, in its quaternion mode, on the upper lumbar spine, a Movella DOT
on the left thigh, a WitMotion BLE 5.0 on the right thigh) -> the unchanged bleak code path with the
Bumble backend -> device decoders and clock models -> the local SQLite store (every sample, durably) ->
live processing -> results stored and written to files. The virtual patient walks, does kneeling hip flexor
stretches (counted as holds, one arching per side), then a short guided programme (:data:`DEMO_PROGRAMME`:
glute bridges with one arching rep, a double knee-to-chest hold, squats), announced, counted and cued live.
Afterwards it prints what was measured next to the virtual patient's truth.

No servers and no radio are needed. When ``HIPBACK_INFLUX_URL`` is set, the results also go to InfluxDB
through the outbox (see ``hipback sync``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table

from hipback.ingest.errors import ConfigError
from hipback.ingest.live import LiveCoach
from hipback.ingest.logs import LOG_NAME, session_log
from hipback.ingest.publish import LivePublishing
from hipback.ingest.results import stored_angles
from hipback.ingest.store import LocalStore
from hipback.ingest.terminal import GuardedOutput
from hipback.processing.holds import Prescription

if TYPE_CHECKING:
    from hipback.ingest.programme import Programme
    from hipback.ingest.session.stats import SensorStats
    from hipback.processing.pipeline import ProcessorUpdate, SessionResults
    from hipback.simulator.exercises import VisitSession

#: Placement -> BLE protocol the virtual sensor speaks in the demo (three kinds, as a clinic would mix them;
#: the upper-lumbar sensor lets the programme check arching in the bridge).
DEMO_DEVICES = {"pelvis": "hipback_v1", "thigh_left": "movella_dot", "thigh_right": "witmotion",
                "lumbar_upper": "hipback_v1"}

#: The guided programme after the stretches (the ``[programme]`` table of a session config): short sets.
DEMO_PROGRAMME: dict[str, Any] = {
    "responder": "neither",
    "exercises": [
        {"name": "glute_bridge", "reps": 3},
        {"name": "knee_to_chest_double", "holds": 1, "hold_s": 10},
        {"name": "squat", "reps": 3},
    ],
}


def demo_session(seed: int) -> VisitSession:
    """The demo's virtual patient: limited left hip extension with some lumbar compensation. The clinic
    visit (calibration, walk, kneeling hip flexor stretches) is followed by :data:`DEMO_PROGRAMME`: four
    bridges (the second one arching, so 3 count), one 10 s knee-to-chest hold and three squats
    (:func:`hipback.simulator.exercises.simulate_visit`; truth per rep and hold in ``sim.exercises``)."""
    from hipback.simulator import SensorSpec, VirtualPatient, build_scenario
    from hipback.simulator.exercises import ExerciseSet, simulate_visit

    patient = VirtualPatient(
        patient_id="DEMO-0001",
        peak_hip_extension_left_deg=8.0,
        peak_hip_extension_right_deg=15.0,
        lumbar_compensation_gain=0.6,
    )
    sensors = [
        SensorSpec(placement="pelvis", kind="raw", rate_hz=100.0, device="hipback_v1"),
        SensorSpec(placement="thigh_left", kind="quat", rate_hz=60.0, device="movella_dot"),
        SensorSpec(placement="thigh_right", kind="quat", rate_hz=100.0, device="witmotion",
                   thigh_face="anterior"),
        SensorSpec(placement="lumbar_upper", kind="quat", rate_hz=100.0, device="hipback_v1"),
    ]
    sets = [
        ExerciseSet("glute_bridge", None, 4, faults=(1,)),
        ExerciseSet("knee_to_chest_double", None, 1, hold_s=10.0),
        ExerciseSet("squat", None, 3),
    ]
    visit = build_scenario("clinic_visit", sit_and_lie=False)
    return simulate_visit(visit, sets, seed=seed, patient=patient, sensors=sensors)


def demo_programme() -> Programme:
    """:data:`DEMO_PROGRAMME`, validated (:class:`hipback.ingest.programme.Programme`)."""
    from hipback.ingest.programme import parse_programme

    return parse_programme(DEMO_PROGRAMME, source="demo")


def _fmt(v: float | None, unit: str = "°", digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{digits}f}{unit}"


def _rmse_deg(measured_t: np.ndarray, measured: np.ndarray, truth_t: np.ndarray, truth: np.ndarray,
              offset_s: float) -> float | None:
    """RMSE in degrees of a measured angle against the truth on the measured timeline (session time)."""
    ok = np.isfinite(measured)
    if not ok.any():
        return None
    ref = np.interp(measured_t[ok] - offset_s, truth_t, truth, left=np.nan, right=np.nan)
    good = np.isfinite(ref)
    if not good.any():
        return None
    return float(np.degrees(np.sqrt(np.mean((measured[ok][good] - ref[good]) ** 2))))


def comparison_table(results: SessionResults, sim: VisitSession, offset_s: float) -> Table:
    """Measured values next to the virtual patient's truth.

    ``offset_s``: where simulation time 0 falls on the session timeline (s).
    """
    truth = sim.truth
    patient = truth.patient
    summary = results.summary
    table = Table(title="Measured by hipback vs the virtual patient's truth", show_lines=False)
    table.add_column("measure")
    table.add_column("measured", justify="right")
    table.add_column("truth", justify="right")
    for side in ("left", "right"):
        ts = [s for s in truth.strides if s.side == side and s.steady]
        table.add_row(
            f"peak hip extension {side} (median per stride)",
            _fmt(summary.get(f"peak_hip_extension_{side}_deg")),
            _fmt(float(np.degrees(np.median([s.peak_hip_extension_rad for s in ts]))) if ts else
                 getattr(patient, f"peak_hip_extension_{side}_deg")),
        )
    for side in ("left", "right"):
        table.add_row(f"strides {side}", str(summary.get(f"n_strides_{side}", 0)),
                      str(sum(1 for s in truth.strides if s.side == side)))
    table.add_row("cadence", _fmt(summary.get("cadence_spm"), " steps/min"),
                  _fmt(patient.cadence_steps_min, " steps/min"))
    tilt_ex = [s.pelvic_tilt_excursion_rad for s in truth.strides if s.steady]
    table.add_row("pelvic tilt excursion per stride (left strides)",
                  _fmt(summary.get("pelvic_tilt_excursion_left_deg")),
                  _fmt(float(np.degrees(np.median(tilt_ex))) if tilt_ex else None))
    for side in ("left", "right"):
        measured = [h for h in results.holds if h.side == side]
        true_holds = [h for h in truth.holds if h.side == side]
        table.add_row(
            f"stretch holds {side}: count / arching",
            f"{len(measured)} / {sum(1 for h in measured if h.arching)}",
            f"{len(true_holds)} / {sum(1 for h in true_holds if h.arching)}",
        )
        table.add_row(
            f"stretch holds {side}: durations",
            ", ".join(f"{h.duration_s:.1f}" for h in measured) + " s",
            ", ".join(f"{h.t_end - h.t_start:.1f}" for h in true_holds) + " s",
        )
        table.add_row(f"stretch holds {side}: time in correct posture",
                      ", ".join(f"{h.correct_s:.1f}" for h in measured) + " s", "(no arching counted)")
    _programme_rows(table, results, sim, offset_s)
    act = summary.get("activity_s", {})
    true_act: dict[str, float] = {}
    for a in truth.activities:
        true_act[a.label] = true_act.get(a.label, 0.0) + (a.t_end - a.t_start)
    for label in ("walking", "standing", "kneeling", "sitting", "lying"):
        table.add_row(f"time {label}", _fmt(act.get(label), " s", 0), _fmt(true_act.get(label), " s", 0))
    angles = results.angles
    for name, label in (("hip_flexion_left", "hip flexion left"), ("hip_flexion_right", "hip flexion right"),
                        ("pelvic_tilt", "pelvic tilt")):
        rmse = _rmse_deg(angles.t, getattr(angles, name), truth.t, getattr(truth, name), offset_s)
        table.add_row(f"{label}: RMSE against truth", _fmt(rmse), "0°")
    return table


def _programme_rows(table: Table, results: SessionResults, sim: VisitSession, offset_s: float) -> None:
    """Per programme set: reps or holds done / counted against the truth's done / done well, and the primary
    angle at the peak (median, degrees) against the truth's."""
    truth = getattr(sim, "exercises", None)
    if truth is None:
        return
    done: dict[str, list[Any]] = {}
    for ev in results.exercise_events:
        r = getattr(ev, "result", None)
        if r is not None and ev.kind in ("rep", "hold"):  # a cue event carries its rep's result too
            done.setdefault(r.exercise, []).append(r)
    for ts in truth.sets:
        measured = done.get(ts.exercise, [])
        word = "holds" if ts.reps and ts.reps[0].kind == "hold" else "reps"
        table.add_row(
            f"{ts.exercise.replace('_', ' ')}: {word} done / counted",
            f"{len(measured)} / {sum(1 for r in measured if r.counted)}",
            f"{len(ts.reps)} / {sum(1 for r in ts.reps if r.fault is None)}",
        )
        peaks = [r.primary_peak_rad for r in measured]
        table.add_row(
            f"{ts.exercise.replace('_', ' ')}: primary angle at peak (median)",
            _fmt(math.degrees(float(np.median(peaks))) if peaks else None),
            _fmt(math.degrees(float(np.median([r.primary_peak_rad for r in ts.reps]))) if ts.reps else None),
        )


def run(out: Path, seed: int = 7, speed: float | None = None) -> None:
    """Run the demo (see the module docstring).

    The session runs on simulated time: as fast as the machine allows by default, or paced at ``speed`` times
    real time to watch it live. The results are the same either way, and under any load (the fingerprint is at
    full precision: another CPU or numpy build may differ in a float's last bits, and so in the hash).
    """
    if speed is not None and not (0.5 <= speed <= 50.0):
        raise ConfigError(f"--speed must be between 0.5 and 50 (times real time), not {speed}.")
    from hipback.ingest.session.virtual import run_virtual_session

    # a closed output (``hipback demo | head``) stops the virtual session as a recording's would (what was
    # streamed stays stored) and stderr says so
    output = GuardedOutput(sys.stdout)
    stop = asyncio.Event()
    output.on_closed = lambda exc: stop.set()
    console = Console(file=output, highlight=False, width=None if output.isatty() else 120)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "hipback.sqlite"

    console.print("[bold]hipback demo[/bold]: a virtual patient with four virtual Bluetooth sensors")
    sim = demo_session(seed)
    duration = sim.recording.duration_s
    console.print(
        f"  sensors: pelvis = hipback IMU profile v1 (raw IMU, orientation by VQF), "
        f"upper lumbar spine = hipback IMU profile v1 (its quaternions), "
        f"left thigh = Movella DOT (quaternions), right thigh = WitMotion BLE 5.0 (Euler angles)\n"
        f"  session: {duration:.0f} s of standing calibration, a walk, kneeling hip flexor stretches, "
        "a guided programme (glute bridges, a knee-to-chest hold, squats), "
        + (f"streamed at {speed:g}x real time (about {duration / speed:.0f} s)\n"
           if speed else "on simulated time (as fast as this machine allows)\n")
        + f"  local store: {store_path}{_earlier_sessions(store_path)}"
    )
    console.print("  The virtual patient stands still for 5 seconds: calibrating ...")
    patient_id = sim.truth.patient.patient_id
    with (
        session_log(out / LOG_NAME),
        LiveCoach(console, prescription=Prescription(holds_per_side=3, hold_s=30.0)) as coach,
        LivePublishing(store_path, patient_id) as publishing,
    ):

        def on_update(update: ProcessorUpdate, stats: Mapping[str, SensorStats]) -> None:
            coach.on_update(update, stats)
            publishing.on_update(update, stats)

        # The store writer commits every 20 ms of session time; on simulated time that is hundreds of
        # commits per real second, and waiting for each fsync took most of the demo's wall time. The demo's
        # store holds a virtual patient, so it skips the fsync (WAL, synchronous=NORMAL: safe if the process
        # dies, not on a power cut); real recordings keep synchronous=FULL.
        outcome = run_virtual_session(
            sim, DEMO_DEVICES, store_path, speed=speed, on_update=on_update, on_event=coach.on_event,
            on_session=publishing.on_session, patient_id=patient_id, synchronous="NORMAL",
            programme=demo_programme(), stop_event=stop,
        )
        publishing.finish(outcome)
    if output.is_closed:  # nobody is watching: no tables, files or report
        with contextlib.suppress(OSError):
            print(f"hipback: the output was closed, so the demo session {outcome.session_id} stopped early; "
                  f"what it streamed is stored in {store_path}.", file=sys.stderr)
        return
    if outcome.results is None:
        raise ConfigError(
            f"the demo session stored its data but processing failed: {outcome.processing_error}"
        )

    # the live session stored its angle series as it came (its results carry none): read it back
    with LocalStore(store_path) as st:
        results = dataclasses.replace(outcome.results, angles=stored_angles(st, outcome.session_id))
    offset = next(iter(outcome.ledgers.values())).sim_t0_session if outcome.ledgers else 0.0
    stats = Table(title="Sensors")
    for col in ("placement", "protocol", "samples stored", "gaps", "rejected packets", "reconnects", "rate"):
        stats.add_column(col, justify="right" if col not in ("placement", "protocol") else "left")
    for p, s in outcome.stats.items():
        stats.add_row(p, s.kind, str(s.samples), str(s.gaps), str(sum(s.rejected.values())),
                      str(s.reconnects), f"{s.rate_hz:.1f} Hz")
    console.print(stats)
    console.print(comparison_table(results, sim, offset))

    written = _write_outputs(results, out)
    report = out / "report.html"
    _write_report(store_path, outcome.session_id, report)
    written.append(report)
    # on simulated time the session clock's latency is the same on every run: what packets, batching and
    # waiting for the other sensors add; paced (--speed), the session clock is the host's. (A virtual
    # session's hipback v1 sensors fill their packets, as SessionConfig.live_batch_ms = None says; a session
    # config file's default of 30 ms sends every 30 ms: lower latency, about 1.5-2x the CPU.)
    if outcome.latency_angle_session_s:
        lat = _p50_p99_ms(outcome.latency_angle_session_s)
        console.print(f"  notification -> live angle latency: {lat} (session clock; the virtual hipback "
                      "sensors send full packets, a session config's live_batch_ms = 30 every 30 ms)")
    if outcome.latency_angle_s and speed is None:
        lat = _p50_p99_ms(outcome.latency_angle_s)
        console.print(f"  this machine's processing time from notification to angle: {lat} (wall clock)")
    console.print(f"  session {outcome.session_id} stored in {store_path}; files: "
                  + ", ".join(p.name for p in written))
    console.print(f"  {publishing.status()}")
    console.print(f"  results fingerprint (same seed, same fingerprint on every run here, under any load): "
                  f"{results_fingerprint(results)}")
    console.print("  Angles are relative to the standing calibration; "
                  "these are monitoring measures, not a diagnosis.")
    console.print(f"  Open the report:       {sys.executable} -m webbrowser -t {report.resolve().as_uri()}")
    console.print(f"  Process it once more:  {hipback_command()} report latest --store {store_path} "
                  f"--out {report} --reprocess --overwrite")
    output.flush()


def _earlier_sessions(store_path: Path) -> str:
    """What the demo's store already holds, said where the demo names it: every run adds its session (the
    store keeps sessions, as a gateway's does), and a newcomer may wonder why the folder grows."""
    if not store_path.is_file():
        return ""
    try:
        with LocalStore(store_path, readonly=True) as st:
            n = len(st.sessions())
    except Exception:  # a damaged store is reported by the session itself, with what to do
        return ""
    if n == 0:
        return ""
    size_mb = store_path.stat().st_size / 1e6
    runs = "session" if n == 1 else "sessions"
    return (f" (it keeps the {n} earlier demo {runs}, {size_mb:.0f} MB; this run adds one; delete "
            f"{store_path.parent} to start afresh)")


def _p50_p99_ms(lat_s: list[float]) -> str:
    return f"p50 {1000 * np.percentile(lat_s, 50):.1f} ms, p99 {1000 * np.percentile(lat_s, 99):.1f} ms"


def hipback_command() -> str:
    """How to run the ``hipback`` command of this installation: ``hipback`` when that is what the shell
    finds, else its full path (a fresh clone's ``.venv/bin/hipback`` before the environment is activated)."""
    import shutil

    here = Path(sys.executable).parent / "hipback"
    found = shutil.which("hipback")
    if found is not None and (not here.exists() or Path(found).resolve() == here.resolve()):
        return "hipback"
    return str(here) if here.exists() else "hipback"


def results_fingerprint(results: SessionResults) -> str:
    """A short hash of what a session measured: strides, holds, activity bouts, the programme's events (every
    rep and hold) and every angle sample, at full precision, in session time (two runs agree only if every
    one of those numbers is identical)."""
    h = hashlib.sha256()
    for kind in ("strides", "holds", "activity", "exercise_events"):
        for item in getattr(results, kind, None) or []:
            values = dataclasses.astuple(item) if dataclasses.is_dataclass(item) else (item,)
            h.update(repr(values).encode())
    angles = results.angles
    for name in ("t", "hip_flexion_left", "hip_flexion_right", "pelvic_tilt", "lumbar_flexion"):
        arr = getattr(angles, name, None)
        if arr is not None:
            h.update(name.encode())
            h.update(np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=-9e99).tobytes())
    return h.hexdigest()[:16]


def _write_report(store_path: Path, session_id: str, report: Path) -> None:
    """The session's report page, as ``hipback report`` writes it (quietly)."""
    from hipback.ingest.commands import report as cmd

    with contextlib.redirect_stdout(io.StringIO()):
        cmd.run(session=session_id, out=report, store=store_path, overwrite=True)


def _write_outputs(results: SessionResults, out: Path) -> list[Path]:
    """angles.csv, strides.csv, holds.csv, activity.csv, summary.json, as ``hipback process`` writes them."""
    from hipback.ingest.commands.process import write_outputs

    return list(write_outputs(results, out, {}))

"""The virtual patient does the exercises of the catalogue, well and with their typical faults.

:func:`simulate_programme` produces a recording (sensor streams from the same body, segment and sensor
models as
:func:`hipback.simulator.simulate`) and its ground truth per set, rep and hold. A session starts like every
simulated session (standing calibration, a short walk so the thighs' functional calibration has movement,
standing), then performs the sets in order: a transition into the exercise's start posture, a still rest there
(the start posture the engine aligns the heading in), the reps or holds, a rest, and the next set.

Kinematics: the channels of :mod:`hipback.simulator.motion` plus three this module adds: ``rot_left/right``
(hip internal rotation +), ``roll`` (pelvis about its own long axis, applied last) and ``twist`` (upper lumbar
segment turned to the right +). Segment orientations (``*`` Hamilton product, segment-to-world)::

    pelvis = Rz_world(heading) * R0 * Ry(pelvis_rotation) * Rx(obliquity) * Rz(-tilt) * Ry(roll)
    thigh_right = pelvis * Rz(hip_right) * Rx(add_right) * Ry(rot_right)     (left: Rx(-add), Ry(-rot))
    lumbar_upper = pelvis * Rz(-lumbar) * Ry(-twist)

so that :func:`hipback.processing.angles3d.hip_angles` returns ``hip``, ``add`` and ``rot`` exactly.

Each exercise is described by :data:`MOTIONS`: the start posture's channel values and the change at the peak
of a rep or in a hold (degrees; ``hip``/``add``/``rot`` are the working leg, or both legs for exercises done
with both, ``o_*`` the other leg; ``roll_back``, ``hike`` and ``twist`` are signed towards the working
side), and its typical fault with the catalogue rules that fault breaks. The patient reaches ``k`` times the
nominal change (``k`` drawn per set, 0.9-1.15) with a small rep-to-rep variation.

Ground truth (:class:`TruthRep`): the rep or hold bounds (movement onset to return for reps; the plateau for
holds, with the movement's onset in ``t_onset``), the primary angle computed with the catalogue's own
definition (:func:`hipback.processing.exercises.signals.signal`) on the true segment orientations (for a rep
its peak; for a hold the angle held, its mean over the plateau, as
:class:`~hipback.processing.exercises.engine.ExerciseCounter` reports a hold; both minus the value at the
onset for a ``start`` reference, computed in the segment frames the standing calibration defines,
:func:`stance_frames`: hipback's neutral is the calibration stance, and with a stance that is not the
anatomical neutral a change of ab/adduction or rotation at a flexed hip differs between the two frames by
a few degrees; a ``neutral`` primary is in the anatomical frames, and a comparison subtracts its value in
the calibration stance), the hold time, the fault and the rules it breaks, and whether the hold
was too short for the dose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hipback.processing import quaternion as qm
from hipback.processing.angles3d import body_angles
from hipback.processing.exercises.catalogue import Catalogue, load_catalogue
from hipback.processing.exercises.signals import signal
from hipback.processing.types import Recording
from hipback.simulator import body
from hipback.simulator.motion import CHANNELS, contact_sizes, generate, min_jerk
from hipback.simulator.patient import VirtualPatient
from hipback.simulator.scenarios import build_scenario
from hipback.simulator.sensor_model import (
    draw_mounting,
    make_stream,
    sample_times,
    sensor_signals,
    soft_tissue_wobble,
)
from hipback.simulator.sensor_spec import SensorSpec, default_sensors
from hipback.simulator.session import DEFAULT_START_UTC

FloatArray = NDArray[np.float64]
DEG = np.pi / 180.0
EXTRA = ("rot_left", "rot_right", "roll", "twist")
ALL_CHANNELS = CHANNELS + EXTRA
TRANSITION_S = 3.0
START_REST_S = 3.0

#: Start postures: channel values in degrees (and the pelvis centre height ``z`` in m).
POSTURES: dict[str, dict[str, float]] = {
    "standing": {},
    "half_kneeling": {"hip": -3, "o_hip": 80, "z": 0.52},
    "lunge_standing": {"hip": -5, "o_hip": 30, "z": 0.85},
    "seated": {"tilt": -8, "hip": 82, "o_hip": 82, "lumbar": 12, "z": 0.5},
    "long_sitting": {"tilt": -10, "hip": 88, "o_hip": 88, "lumbar": 15, "z": 0.12},
    "seated_knees_up": {"tilt": -10, "hip": 72, "o_hip": 72, "lumbar": 12, "z": 0.12},
    "supine": {"tilt": -90, "z": 0.12},
    "supine_knees_bent": {"tilt": -90, "hip": 45, "o_hip": 45, "z": 0.12},
    "supine_on_block": {"tilt": -90, "hip": 30, "o_hip": 45, "z": 0.25},
    "side_lying": {"hike": 90, "hip": 45, "o_hip": 45, "z": 0.18},
    "prone": {"tilt": 90, "z": 0.12},
    "quadruped": {"tilt": 90, "hip": 90, "o_hip": 90, "z": 0.55},
}


@dataclass(frozen=True)
class Motion:
    """How the virtual patient performs one exercise (see the module docstring; degrees, metres, s)."""

    peak: dict[str, float]
    fault: str
    fault_peak: dict[str, float]
    fault_rules: tuple[str, ...]
    move_s: float = 1.3
    hold_turns: float = 0.0  # thigh turns in and out during a final hold (rad amplitude in deg via peak)


MOTIONS: dict[str, Motion] = {
    "hip_flexor_kneeling": Motion(
        {"hip": -13, "o_hip": 12, "tilt": -2, "lumbar": 1.6, "z": 0.0},
        "arching",
        {"tilt": 12, "lumbar": -10},
        ("pelvic_tilt", "lumbar_extension"),
        1.5,
    ),
    "hip_flexor_lunge": Motion(
        {"hip": -9, "o_hip": 20, "tilt": -2, "lumbar": 1.6, "z": -0.08},
        "arching",
        {"tilt": 12, "lumbar": -10},
        ("pelvic_tilt", "lumbar_extension"),
        1.5,
    ),
    "rectus_femoris_heel_slide": Motion(
        {"hip": -22},
        "pelvis_moving",
        {"tilt": 11},
        ("posterior_pelvic_tilt",),
        1.6,
        hold_turns=12.0,
    ),
    "gluteal_stretch": Motion(
        {"hip": 60, "add": 20}, "pelvis_rolling", {"roll_back": 15}, ("pelvis_roll",), 1.5
    ),
    "piriformis_figure4": Motion(
        {"hip": 45, "rot": -40, "add": -15, "o_hip": 45},
        "pelvis_rolling",
        {"roll_back": 15},
        ("pelvis_roll",),
        1.5,
    ),
    "butterfly": Motion(
        {"add": -40, "rot": -35},
        "slouching",
        {"tilt": -13, "hip": -13, "lumbar": 18},
        ("posterior_pelvic_tilt", "lumbar_flexion"),
        1.5,
    ),
    "squat": Motion(
        {"hip": 95, "tilt": 25, "z": -0.35},
        "rounding",
        {"hip": -20, "tilt": -35, "lumbar": 28},
        ("lumbar_flexion", "posterior_pelvic_tilt"),
        1.2,
    ),
    "glute_bridge": Motion(
        {"hip": -42, "tilt": -20, "z": 0.16}, "arching", {"hip": 7, "lumbar": -16}, ("lumbar_extension",), 1.1
    ),
    "glute_bridge_hold": Motion(
        {"hip": -42, "tilt": -20, "z": 0.16}, "arching", {"hip": 7, "lumbar": -16}, ("lumbar_extension",), 1.2
    ),
    "clamshell": Motion({"add": -28, "rot": -15}, "rolling_back", {"roll_back": 14}, ("pelvis_roll",), 1.0),
    "standing_hip_abduction": Motion({"add": -26}, "hip_hike", {"hike": 10}, ("pelvis_hike",), 1.0),
    "knee_drops": Motion(
        {"add": -35, "rot": -20}, "pelvis_rolling", {"roll_back": -15}, ("pelvis_roll",), 1.2
    ),
    "cat_camel": Motion({"tilt": -14, "hip": -14, "lumbar": 20}, "too_small", {"tilt": 9, "hip": 9}, (), 1.4),
    "knee_to_chest_double": Motion({"hip": 73, "tilt": -10}, "too_short", {}, (), 1.5),
    "knee_to_chest_single": Motion(
        {"hip": 70}, "other_leg_lifting", {"o_hip": 25}, ("other_hip_flexion",), 1.5
    ),
    "seated_forward_bend": Motion({"tilt": 30, "hip": 30, "lumbar": 25}, "too_short", {}, (), 1.6),
    "seated_spinal_twist": Motion({"twist": 28}, "hip_lifting", {"hike": 11}, ("pelvis_hike",), 1.6),
    "happy_baby": Motion(
        {"hip": 65, "add": -35, "rot": -10, "tilt": -10},
        "pelvis_rolling",
        {"roll_back": 15},
        ("pelvis_roll",),
        1.6,
    ),
    "childs_pose": Motion({"tilt": 15, "hip": 45, "lumbar": 25, "z": -0.2}, "too_short", {}, (), 1.8),
    "standing_forward_fold": Motion(
        {"tilt": 75, "hip": 75, "lumbar": 30, "add": -20}, "too_short", {}, (), 2.0
    ),
    "prone_press_up": Motion(
        {"lumbar": -28, "tilt": -3, "hip": -3},
        "hips_lifting",
        {"tilt": -12, "hip": -12, "lumbar": 4},
        ("posterior_pelvic_tilt",),
        1.3,
    ),
    "standing_lumbar_extension": Motion(
        {"lumbar": -22, "tilt": -4, "hip": -4}, "too_small", {"lumbar": 14}, (), 1.3
    ),
}


@dataclass
class ExerciseSet:
    """One set the virtual patient performs: ``count`` reps or holds of ``exercise`` on ``side`` (None for
    exercises done with both legs). ``faults``: 0-based rep/hold indices done with the exercise's typical
    fault (``"all"`` for every one); ``hold_s``: seconds per hold (None: the catalogue dose);
    ``short_hold_s``: holds marked with the fault ``too_short`` last this long instead."""

    exercise: str
    side: str | None = None
    count: int | None = None
    faults: tuple[int, ...] | str = ()
    hold_s: float | None = None
    short_hold_s: float | None = None
    rest_s: float = 4.0


@dataclass
class TruthRep:
    """Ground truth of one rep or hold (times s, angles rad)."""

    set_index: int
    exercise: str
    side: str | None
    kind: str  # "rep" or "hold"
    index: int
    t_start: float
    t_end: float
    primary_peak_rad: float
    hold_s: float
    fault: str | None
    rules_broken: tuple[str, ...]
    too_short: bool
    final_hold: bool = False
    t_onset: float = float("nan")  # the movement's onset (s; for a hold, before the plateau at t_start)


@dataclass
class TruthSet:
    set_index: int
    exercise: str
    side: str | None
    t_start: float  # the start posture is reached
    t_end: float  # the last rep or hold ends
    reps: list[TruthRep] = field(default_factory=list)


@dataclass
class ExerciseTruth:
    t: FloatArray
    segment_quat: dict[str, FloatArray]
    sets: list[TruthSet]
    calibration_window: tuple[float, float]
    patient: VirtualPatient
    sensors: list[SensorSpec]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def reps(self) -> list[TruthRep]:
        return [r for s in self.sets for r in s.reps]

    @property
    def holds(self) -> list[TruthRep]:
        return [r for r in self.reps if r.kind == "hold" or r.final_hold]

    def summary(self) -> dict[str, Any]:
        """Counts per exercise (and the keys of ``GroundTruth.summary`` that the CLI prints)."""
        per: dict[str, int] = {}
        for s in self.sets:
            key = s.exercise if s.side is None else f"{s.exercise}_{s.side}"
            per[key] = per.get(key, 0) + len(s.reps)
        return {
            "duration_s": float(self.t[-1]) if len(self.t) else 0.0,
            "strides_left": 0,
            "strides_right": 0,
            "sets": len(self.sets),
            "reps_and_holds": per,
            "faulty": sum(1 for r in self.reps if r.fault),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able ground truth (angles in degrees, ``_deg`` names; times in s)."""
        return {
            "format": "hipback-simulator-exercise-truth/1",
            "calibration_window": list(self.calibration_window),
            "conventions": "angles in degrees; primary angle at the peak in the catalogue's reference "
            "(change from the start of the rep or hold, or relative to standing neutral)",
            "patient": self.patient.to_dict(),
            "summary": self.summary(),
            "sets": [
                {
                    "exercise": s.exercise,
                    "side": s.side,
                    "t_start": round(s.t_start, 4),
                    "t_end": round(s.t_end, 4),
                    "reps": [
                        {
                            "kind": r.kind,
                            "index": r.index,
                            "t_start": round(r.t_start, 4),
                            "t_end": round(r.t_end, 4),
                            "primary_peak_deg": round(float(np.degrees(r.primary_peak_rad)), 4),
                            "hold_s": round(r.hold_s, 4),
                            "fault": r.fault,
                            "rules_broken": list(r.rules_broken),
                            "too_short": r.too_short,
                            "final_hold": r.final_hold,
                        }
                        for r in s.reps
                    ],
                }
                for s in self.sets
            ],
        }

    def save(self, folder) -> list:
        """Write ``truth_exercises.json`` into ``folder``; returns the written paths."""
        import json
        from pathlib import Path

        path = Path(folder) / "truth_exercises.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return [path]


@dataclass
class ExerciseSession:
    """A simulated exercise session (the same interface as :class:`hipback.simulator.SimulatedSession` where
    the CLI uses it: ``recording``, ``truth.save``, ``truth.summary``, ``duration_s``)."""

    recording: Recording
    truth: ExerciseTruth
    programme: list[ExerciseSet]
    sensor_truth: dict[str, Any] = field(default_factory=dict)  # placement -> SensorTruth (error-free)

    @property
    def duration_s(self) -> float:
        return float(self.truth.t[-1])


#: The scenario name registered in :data:`hipback.simulator.scenarios.SCENARIOS`.
SCENARIO = "exercises"


def simulate_scenario(seed: int = 1, patient=None, sensors=None, **_: Any) -> ExerciseSession:
    """The registered ``exercises`` scenario: :func:`default_programme` done by the virtual patient."""
    return simulate_programme(default_programme(), seed=seed, patient=patient, sensors=sensors)


def _side_sign(side: str | None) -> float:
    return -1.0 if side == "left" else 1.0


def _channels(values: dict[str, float], side: str | None, both: bool) -> dict[str, float]:
    """Channel values (rad, m) from a posture/peak description (deg) for a working side."""
    s = _side_sign(side)
    w = "left" if side == "left" else "right"
    o = "right" if w == "left" else "left"
    out: dict[str, float] = {}
    for key, v in values.items():
        if key == "z":
            out["z"] = v
            continue
        r = v * DEG
        if key in ("hip", "add", "rot"):
            stem = {"hip": "hip", "add": "add", "rot": "rot"}[key]
            for leg in ("left", "right") if both else (w,):
                out[f"{stem}_{leg}"] = out.get(f"{stem}_{leg}", 0.0) + r
        elif key in ("o_hip", "o_add", "o_rot") and not both:
            out[f"{key[2:]}_{o}"] = out.get(f"{key[2:]}_{o}", 0.0) + r
        elif key == "roll_back":
            out["roll"] = out.get("roll", 0.0) - s * r
        elif key == "hike":
            out["obliquity"] = out.get("obliquity", 0.0) - s * r
        elif key == "twist":
            out["twist"] = out.get("twist", 0.0) + s * r
        elif key in ("tilt", "lumbar"):
            out[key] = out.get(key, 0.0) + r
    return out


def segment_quats(ch: dict[str, FloatArray]) -> dict[str, FloatArray]:
    """Segment-to-world quaternions with the extra channels (module docstring)."""
    ax = body._axis_quat
    pelvis = qm.multiply(ax(2, ch["heading"]), body.R0)
    pelvis = qm.multiply(pelvis, ax(1, ch["pelvis_rotation"]))
    pelvis = qm.multiply(pelvis, ax(0, ch["obliquity"]))
    pelvis = qm.multiply(pelvis, ax(2, -ch["tilt"]))
    pelvis = qm.multiply(pelvis, ax(1, ch["roll"]))
    out = {"pelvis": pelvis}
    for side, s in (("right", 1.0), ("left", -1.0)):
        q = qm.multiply(pelvis, ax(2, ch[f"hip_{side}"]))
        q = qm.multiply(q, ax(0, s * ch[f"add_{side}"]))
        out[f"thigh_{side}"] = qm.multiply(q, ax(1, s * ch[f"rot_{side}"]))
    out["lumbar_upper"] = qm.multiply(qm.multiply(pelvis, ax(2, -ch["lumbar"])), ax(1, -ch["twist"]))
    return out


class _Timeline:
    """Appends still, moving and blended pieces of channel values on the fine grid."""

    def __init__(self, start: dict[str, FloatArray], dt: float) -> None:
        self.dt = dt
        self.parts: list[dict[str, FloatArray]] = [start]
        self.n = len(start["tilt"])
        self.last = {c: float(start[c][-1]) for c in ALL_CHANNELS}

    @property
    def t(self) -> float:
        return self.n * self.dt

    def move(self, target: dict[str, float], duration: float) -> tuple[float, float]:
        """Minimum-jerk move of the named channels to ``target`` (others stay); returns (t0, t1)."""
        k = max(1, int(round(duration / self.dt)))
        s = min_jerk((np.arange(1, k + 1)) / k)
        part = {}
        for c in ALL_CHANNELS:
            a = self.last[c]
            b = target.get(c, a)
            part[c] = a + (b - a) * s
            self.last[c] = b
        t0 = self.t
        self.parts.append(part)
        self.n += k
        return t0, self.t

    def still(self, duration: float, rng: np.random.Generator, sway_rad: float = 0.0) -> tuple[float, float]:
        k = max(1, int(round(duration / self.dt)))
        part = {c: np.full(k, self.last[c]) for c in ALL_CHANNELS}
        if sway_rad > 0 and k > 4:
            tl = np.arange(k) * self.dt
            win = min_jerk(tl / min(1.0, duration / 3)) * min_jerk((duration - tl) / min(1.0, duration / 3))
            sig = sum(np.sin(2 * np.pi * f * tl + rng.uniform(0, 2 * np.pi)) for f in (0.13, 0.29)) / 2
            part["tilt"] = part["tilt"] + sway_rad * sig * win
        t0 = self.t
        self.parts.append(part)
        self.n += k
        return t0, self.t

    def oscillate(self, channel: str, amp: float, cycles: float, duration: float) -> tuple[float, float]:
        k = max(1, int(round(duration / self.dt)))
        tl = np.arange(k) * self.dt
        part = {c: np.full(k, self.last[c]) for c in ALL_CHANNELS}
        env = min_jerk(tl / 0.5) * min_jerk((duration - tl) / 0.5)
        part[channel] = part[channel] + amp * env * np.sin(2 * np.pi * cycles * tl / duration)
        t0 = self.t
        self.parts.append(part)
        self.n += k
        return t0, self.t

    def arrays(self) -> dict[str, FloatArray]:
        return {c: np.concatenate([p[c] for p in self.parts]) for c in ALL_CHANNELS}


def _prelude(patient: VirtualPatient, rng: np.random.Generator, dt: float) -> dict[str, FloatArray]:
    m = generate(build_scenario(SCENARIO), patient, rng, dt=dt)
    ch = dict(m.ch)
    for c in EXTRA:
        ch[c] = np.zeros(len(m.t))
    return ch


def default_programme(catalogue: Catalogue | None = None, faults: bool = True) -> list[ExerciseSet]:
    """Every exercise of the catalogue once (both sides for one-sided ones), with a faulty rep/hold or two."""
    cat = catalogue or load_catalogue()
    out = []
    for ex in sorted(cat, key=lambda e: e.name):
        sides = ["left", "right"] if ex.sides == "each" else [None]
        for side in sides:
            if ex.kind == "hold":
                n = 2
            else:
                n = 5 if ex.kind == "reps" else 4
            f: tuple[int, ...] = ((1,) if ex.kind != "hold" else (1,)) if faults else ()
            out.append(ExerciseSet(ex.name, side, n, f, hold_s=min(ex.dose.hold_s, 12.0) or None))
    return out


def simulate_programme(
    programme: list[ExerciseSet],
    seed: int = 1,
    patient: VirtualPatient | None = None,
    sensors: list[SensorSpec] | None = None,
    *,
    catalogue: Catalogue | None = None,
    fine_rate_hz: float = 250.0,
    truth_rate_hz: float = 100.0,
    start_utc: float | None = DEFAULT_START_UTC,
) -> ExerciseSession:
    """Simulate a session in which the virtual patient performs ``programme`` (module docstring)."""
    cat = catalogue or load_catalogue()
    patient = patient or VirtualPatient()
    sensors = list(sensors) if sensors is not None else default_sensors()
    rng = np.random.default_rng([seed, 0])
    dt = 1.0 / fine_rate_hz
    tl = _Timeline(_prelude(patient, rng, dt), dt)
    calib = (0.5, 9.5)
    plans = _perform(tl, programme, cat, patient, rng)
    ch = tl.arrays()
    n = len(ch["tilt"])
    t_fine = np.arange(n) * dt
    quats = segment_quats(ch)
    origins = body.segment_origins(ch, quats, patient)
    duration = float(t_fine[-1])
    phase = np.full(n, np.nan)
    env = np.zeros(n)
    streams, mounting, sensor_truth, sensor_errors = {}, {}, {}, {}
    for k_s, spec in enumerate(sensors):
        srng = np.random.default_rng([seed, 1, k_s])
        seg = spec.segment
        mount = draw_mounting(spec, srng)
        t = sample_times(spec, duration, srng)
        wobble = soft_tissue_wobble(spec, t_fine, phase, env, 1.0 / patient.stride_time_s, srng)
        omega = body.angular_velocity(quats[seg], dt)
        st_sig = sensor_signals(spec, t_fine, quats[seg], omega, origins[seg], mount, t, wobble)
        # the datasheet terms (scale, cross-axis, bias wander) drawn per sensor and session, as simulate()
        # and simulate_visit draw them
        streams[spec.placement], sensor_errors[spec.placement] = make_stream(
            spec, st_sig, srng, np.random.default_rng([seed, 3, k_s])
        )
        mounting[spec.placement] = mount
        sensor_truth[spec.placement] = st_sig
    step = max(1, int(round(1.0 / (truth_rate_hz * dt))))
    t_truth = t_fine[::step]
    q_truth = {kq: v[::step] for kq, v in quats.items()}
    frame = body_angles(t_truth, q_truth)
    in_stance = body_angles(t_truth, stance_frames(t_truth, q_truth, calib))
    sets = _truth_sets(plans, cat, frame, t_truth, in_stance)
    truth = ExerciseTruth(
        t=t_truth,
        segment_quat=q_truth,
        sets=sets,
        calibration_window=calib,
        patient=patient,
        sensors=sensors,
        meta={
            "seed": seed,
            "mounting": {kq: v.tolist() for kq, v in mounting.items()},
            "sensor_errors": sensor_errors,
        },
    )
    rec = Recording(
        streams=streams,
        start_utc=start_utc,
        meta={"source": "simulator", "scenario": "exercises", "seed": seed, "patient_id": patient.patient_id},
    )
    return ExerciseSession(rec, truth, list(programme), sensor_truth)


@dataclass
class VisitSession:
    """A scripted visit (:mod:`hipback.simulator.scenarios`) followed by a guided programme, in one recording.

    ``truth``: the :class:`~hipback.simulator.truth.GroundTruth` of the scripted part (strides, stretch holds,
    angles up to its end), with the programme's postures appended to ``truth.activities``;
    ``exercises``: the :class:`ExerciseTruth` of the programme (times s on the same timeline, from the
    recording's start); ``programme_start_s``: where the scripted part ends and the programme begins (s).
    """

    recording: Recording
    truth: Any
    exercises: ExerciseTruth
    scenario: Any
    programme: list[ExerciseSet]
    programme_start_s: float
    sensor_truth: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return float(self.exercises.t[-1])


#: Activity label of the recording's truth during a set, by the exercise's start posture.
POSTURE_ACTIVITY = {
    "standing": "standing", "lunge_standing": "standing", "half_kneeling": "kneeling", "seated": "sitting",
    "long_sitting": "sitting", "seated_knees_up": "sitting", "quadruped": "kneeling",
}


def simulate_visit(
    scenario: Any,
    programme: list[ExerciseSet],
    seed: int = 1,
    patient: VirtualPatient | None = None,
    sensors: list[SensorSpec] | None = None,
    *,
    catalogue: Catalogue | None = None,
    fine_rate_hz: float = 500.0,
    truth_rate_hz: float = 100.0,
    start_utc: float | None = DEFAULT_START_UTC,
) -> VisitSession:
    """The virtual patient does ``scenario`` (a :class:`~hipback.simulator.scenarios.Scenario`, e.g. a clinic
    visit ending standing), then performs ``programme`` from where the scenario ended.

    The scripted part is the motion and sensor model of :func:`hipback.simulator.simulate` (gait phase,
    soft-tissue terms, datasheet errors); the programme part is this module's (see the module docstring);
    random draws come from ``seed`` as in :func:`hipback.simulator.simulate`.
    """
    from hipback.simulator.soft_tissue import soft_tissue_artefact
    from hipback.simulator.truth import TruthActivity, build_truth

    cat = catalogue or load_catalogue()
    patient = patient or VirtualPatient()
    sensors = list(sensors) if sensors is not None else default_sensors()
    rng = np.random.default_rng([seed, 0])
    dt = 1.0 / fine_rate_hz
    motion = generate(scenario, patient, rng, dt=dt)
    n0 = len(motion.t)
    pre = dict(motion.ch)
    for c in EXTRA:
        pre.setdefault(c, np.zeros(n0))
    tl = _Timeline({c: pre[c] for c in ALL_CHANNELS}, dt)
    t_prog = tl.t
    plans = _perform(tl, programme, cat, patient, rng)
    ch = tl.arrays()
    n = len(ch["tilt"])
    t_fine = np.arange(n) * dt
    quats = segment_quats(ch)
    origins = body.segment_origins(ch, quats, patient)
    duration = float(t_fine[-1])
    phase = np.concatenate([motion.phase, np.full(n - n0, np.nan)])
    env = np.concatenate([motion.envelope, np.zeros(n - n0)])
    streams, mounting, sensor_truth = {}, {}, {}
    sizes = contact_sizes(phase, seed, motion.left_offset)  # as simulate() draws them
    for k_s, spec in enumerate(sensors):
        srng = np.random.default_rng([seed, 1, k_s])
        seg = spec.segment
        mount = draw_mounting(spec, srng)
        t = sample_times(spec, duration, srng)
        wobble = soft_tissue_wobble(
            spec, t_fine, phase, env, 1.0 / patient.stride_time_s, srng, left_offset=motion.left_offset,
            sizes=sizes,
        )
        sta = soft_tissue_artefact(spec.placement, spec.thigh_face, patient.soft_tissue, ch, phase, env,
                                   motion.left_offset, np.random.default_rng([seed, 2, k_s]))
        omega = body.angular_velocity(quats[seg], dt)
        st_sig = sensor_signals(spec, t_fine, quats[seg], omega, origins[seg], mount, t, wobble, sta)
        streams[spec.placement], _ = make_stream(spec, st_sig, srng, np.random.default_rng([seed, 3, k_s]))
        mounting[spec.placement] = mount
        sensor_truth[spec.placement] = st_sig
    # the scripted part's truth, as simulate() builds it (on its own samples)
    sacrum = SensorSpec("pelvis").position_on_segment()
    pre_q = {kq: v[:n0] for kq, v in quats.items()}
    sacrum_pos = origins["pelvis"][:n0] + body.rotate_fast(pre_q["pelvis"], sacrum)
    sacrum_acc = body.second_derivative(sacrum_pos, dt)
    truth = build_truth(motion, pre_q, sacrum_acc, patient, sensors, mounting, truth_rate_hz, scenario.name,
                        seed)
    step = max(1, int(round(1.0 / (truth_rate_hz * dt))))
    t_truth = t_fine[::step]
    q_truth = {kq: v[::step] for kq, v in quats.items()}
    in_stance = body_angles(t_truth, stance_frames(t_truth, q_truth, truth.calibration_window))
    sets = _truth_sets(plans, cat, body_angles(t_truth, q_truth), t_truth, in_stance)
    acts = [TruthActivity("transition", t_prog, sets[0].t_start if sets else duration)]
    for i, ts in enumerate(sets):
        label = POSTURE_ACTIVITY.get(cat[ts.exercise].start_posture, "lying")
        end = sets[i + 1].t_start - START_REST_S - TRANSITION_S if i + 1 < len(sets) else duration
        acts.append(TruthActivity(label, ts.t_start - START_REST_S, end))
    truth.activities.extend(acts)
    ex_truth = ExerciseTruth(
        t=t_truth, segment_quat=q_truth, sets=sets, calibration_window=truth.calibration_window,
        patient=patient, sensors=sensors, meta={"seed": seed},
    )
    rec = Recording(
        streams=streams,
        start_utc=start_utc,
        meta={"source": "simulator", "scenario": f"{scenario.name}+programme", "seed": seed,
              "patient_id": patient.patient_id},
    )
    return VisitSession(rec, truth, ex_truth, scenario, list(programme), t_prog, sensor_truth)


def _perform(tl: _Timeline, programme: list[ExerciseSet], cat: Catalogue, patient: VirtualPatient,
             rng: np.random.Generator) -> list:
    """Append the sets of ``programme`` (and the way back to standing) to ``tl``; returns their plans for
    :func:`_truth_sets`."""
    plans: list[tuple[int, ExerciseSet, float, list[tuple[str, float, float, float, float, str | None]]]] = []
    for si, st in enumerate(programme):
        ex = cat[st.exercise]
        mo = MOTIONS[st.exercise]
        both = ex.sides == "both"
        side = None if both else (st.side or "right")
        start = {c: 0.0 for c in ("tilt", "obliquity", "roll", "lumbar", "twist", "pelvis_rotation")}
        for c in ("hip", "add", "rot"):
            start[f"{c}_left"] = start[f"{c}_right"] = 0.0
        start["z"] = patient.pelvis_height_m
        start.update(_channels(POSTURES[ex.start_posture], side, both))
        if "z" not in POSTURES[ex.start_posture]:
            start["z"] = patient.pelvis_height_m
        tl.move(start, TRANSITION_S)
        t_set0, _ = tl.still(START_REST_S, rng, 0.2 * DEG)
        k = float(rng.uniform(0.9, 1.15))
        count = st.count or (ex.dose.holds if ex.kind == "hold" else ex.dose.reps)
        faulty = set(range(count)) if st.faults == "all" else set(st.faults)  # type: ignore[arg-type]
        events = []
        for i in range(count):
            fault = mo.fault if i in faulty else None
            peak_desc = {key: v * k * rng.uniform(0.96, 1.04) for key, v in mo.peak.items() if key != "z"}
            if fault:
                for key, v in mo.fault_peak.items():
                    peak_desc[key] = peak_desc.get(key, 0.0) + v
            peak = dict(start)
            for c, v in _channels(peak_desc, side, both).items():
                peak[c] = start.get(c, 0.0) + v
            peak["z"] = start["z"] + mo.peak.get("z", 0.0)
            move_s = mo.move_s * float(rng.uniform(0.9, 1.15))
            is_hold = ex.kind == "hold" or (ex.kind == "reps_hold" and i == count - 1)
            if is_hold:
                hold = st.hold_s or (ex.dose.hold_s if ex.kind == "hold" else ex.dose.final_hold_s)
                if fault == "too_short":
                    hold = st.short_hold_s or max(3.0, 0.4 * hold)
                t0, _ = tl.move(peak, move_s)
                h0 = tl.t
                if mo.hold_turns and ex.kind == "reps_hold":
                    w = "left" if side == "left" else "right"
                    tl.oscillate(f"rot_{w}", mo.hold_turns * DEG, 5.0, hold)
                else:
                    tl.still(hold, rng, 0.3 * DEG)
                h1 = tl.t
                tl.move(start, move_s)
                events.append(("hold", t0, h0, h1, tl.t, fault))
                tl.still(st.rest_s if ex.kind == "hold" else 1.0, rng, 0.2 * DEG)
            else:
                t0, _ = tl.move(peak, move_s)
                tl.still(float(rng.uniform(0.2, 0.5)), rng)
                tl.move(start, move_s)
                events.append(("rep", t0, t0, t0, tl.t, fault))
                tl.still(float(rng.uniform(0.6, 1.2)), rng, 0.1 * DEG)
        plans.append((si, st, t_set0, events))
        tl.still(st.rest_s, rng, 0.2 * DEG)
    end = dict(tl.last)
    end.update(
        {
            c: 0.0
            for c in (
                "tilt",
                "obliquity",
                "roll",
                "lumbar",
                "twist",
                "hip_left",
                "hip_right",
                "add_left",
                "add_right",
                "rot_left",
                "rot_right",
            )
        }
    )
    end["z"] = patient.pelvis_height_m
    tl.move(end, TRANSITION_S)
    tl.still(4.0, rng)
    return plans


def stance_frames(
    t: FloatArray, segment_quat: dict[str, FloatArray], window: tuple[float, float]
) -> dict[str, FloatArray]:
    """The segment orientations (segment-to-world, (N, 4) per segment) in the frames a standing calibration
    defines (hipback's neutral, :mod:`hipback.processing.calibration`): each segment's superior axis (Y) is
    the world vertical of the calibration stance in ``window`` (s) (the anatomical frame turned by the
    smallest rotation that takes its Y there; a stance with the hips slightly flexed or the feet apart
    leaves that much in the anatomical frames), and each non-pelvis segment's frame is turned about that
    axis so that it faces as the pelvis does in the stance (its heading relative to the pelvis zero, as the
    calibration aligns it). Body-fixed: the same rotation of each segment at every sample."""
    from hipback.processing.angles3d import vertical_twist

    sel = (t >= window[0]) & (t <= window[1])
    e_y = np.array([0.0, 1.0, 0.0])
    out: dict[str, FloatArray] = {}
    for p, q in segment_quat.items():
        up = qm.rotate(qm.conjugate(q[sel]), np.array([0.0, 0.0, 1.0])).mean(axis=0)
        up = up / np.linalg.norm(up)
        axis = np.cross(e_y, up)
        angle = float(np.arctan2(np.linalg.norm(axis), e_y @ up))
        swing = qm.from_axis_angle(axis / np.linalg.norm(axis), angle) if angle > 1e-12 else qm.IDENTITY
        out[p] = qm.multiply(q, swing)
    for p in out:
        if p != "pelvis" and "pelvis" in out:
            d = vertical_twist(qm.multiply(out[p][sel], qm.conjugate(out["pelvis"][sel])))
            psi = float(np.arctan2(np.sin(d).mean(), np.cos(d).mean()))
            out[p] = qm.multiply(out[p], qm.from_axis_angle(e_y, -psi))
    return out


def _truth_sets(
    plans,
    cat: Catalogue,
    frame: dict[str, FloatArray],
    t: FloatArray,
    in_stance: dict[str, FloatArray] | None = None,
) -> list[TruthSet]:
    """Truth per set from the body angles ``frame`` (anatomical segment frames); a primary measured from
    the start of the rep or hold is taken from ``in_stance`` (the body angles in :func:`stance_frames`, the
    frames the pipeline measures in) when given."""
    out = []
    for si, st, t_set0, events in plans:
        ex = cat[st.exercise]
        side = None if ex.sides == "both" else (st.side or "right")
        use = in_stance if in_stance is not None and ex.primary.reference == "start" else frame
        p = signal(use, ex.primary.angle, side)
        mo = MOTIONS[st.exercise]
        ts = TruthSet(si, ex.name, side, t_set0, events[-1][4] if events else t_set0)
        dose_hold = st.hold_s or (ex.dose.hold_s if ex.kind == "hold" else ex.dose.final_hold_s)
        for i, (kind, t0, h0, h1, t1, fault) in enumerate(events):
            a, b = np.searchsorted(t, [t0, t1])
            base = float(p[a])
            seg = p[a : b + 1]
            peak = float(np.nanmax(seg))
            if kind == "hold":  # the angle held: its mean over the plateau, as the engine reports a hold
                h_a, h_b = np.searchsorted(t, [h0, h1])
                peak = float(np.nanmean(p[h_a : h_b + 1]))
            ref_peak = peak - base if ex.primary.reference == "start" else peak
            hold_s = h1 - h0 if kind == "hold" else 0.0
            final = ex.kind == "reps_hold" and kind == "hold"
            ts.reps.append(
                TruthRep(
                    set_index=si,
                    exercise=ex.name,
                    side=side,
                    kind="hold" if ex.kind == "hold" else "rep",
                    index=i + 1,
                    t_start=h0 if kind == "hold" else t0,
                    t_end=h1 if kind == "hold" else t1,
                    primary_peak_rad=ref_peak,
                    hold_s=hold_s,
                    fault=fault,
                    rules_broken=mo.fault_rules if fault and fault not in ("too_short", "too_small") else (),
                    too_short=bool(kind == "hold" and hold_s < dose_hold - 1.0),
                    final_hold=final,
                    t_onset=t0,
                )
            )
        out.append(ts)
    return out

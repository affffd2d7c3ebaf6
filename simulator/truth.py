"""Ground truth of a simulated session: segment orientations, angles, strides, holds, activities.

All values SI and radians; times in s on the recording timeline (0 = session start). Angles follow the
conventions of :class:`hipback.processing.types.AngleSeries` and are relative to standing neutral (see
:mod:`hipback.simulator.body` for the exact definitions). Files written by :meth:`GroundTruth.save` use
degrees in
fields and columns named ``..._deg``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hipback.processing.types import AngleSeries
from hipback.simulator import body
from hipback.simulator.motion import Motion
from hipback.simulator.patient import VirtualPatient
from hipback.simulator.sensor_spec import SensorSpec

FloatArray = NDArray[np.float64]
ANGLE_FIELDS = (
    "hip_flexion_left",
    "hip_flexion_right",
    "pelvic_tilt",
    "lumbar_flexion",
    "thigh_inclination_left",
    "thigh_inclination_right",
    "pelvis_inclination",
)
ACTIVITY_LABELS = {
    "stand": "standing",
    "walk": "walking",
    "sit": "sitting",
    "lie": "lying",
    "kneel": "kneeling",
    "hold": "kneeling",
    "transition": "transition",
}


@dataclass
class TruthStride:
    """One stride of one side: from an initial contact (IC) to the next IC of the same side.

    ``steady`` is False for strides in the gait start/stop ramps (amplitudes not yet at the patient's values).
    """

    side: str
    t_initial_contact: float
    t_end: float
    t_peak_extension: float
    peak_hip_extension_rad: float  # positive number: -min hip flexion in the stride
    pelvic_tilt_at_peak_ext_rad: float
    pelvic_tilt_excursion_rad: float  # max - min pelvic tilt within the stride
    peak_thigh_extension_rad: float  # positive number: -min thigh inclination in the stride
    steady: bool = True
    walk_index: int = 0
    turning: bool = False  # the walking direction changed by more than 10 deg within the stride


@dataclass
class TruthHold:
    """One kneeling hip-flexor stretch hold; ``side`` is the stretched (back, kneeling) leg.

    ``t_start``/``t_end`` bound the plateau (after shifting forward, before shifting back).
    ``pelvic_tilt_change_rad``: max pelvic tilt in the hold minus its value at ``t_start`` (anterior +).
    ``hip_extension_rad``: median hip extension of the stretched leg in the hold (positive number).
    """

    side: str
    t_start: float
    t_end: float
    arching: bool
    pelvic_tilt_change_rad: float
    hip_extension_rad: float
    pelvic_tilt_at_start_rad: float = 0.0
    lumbar_extension_change_rad: float = 0.0
    t_arch_start: float | None = None

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start


@dataclass
class TruthActivity:
    """A stretch of one activity: lying, sitting, standing, walking, kneeling or transition."""

    label: str
    t_start: float
    t_end: float


@dataclass
class GroundTruth:
    """Everything the simulator knows about a session (see the module docstring for units).

    ``initial_contacts[side]``: times (s) of every true heel strike (initial contact, IC) of that side, by
    definition phase 0 of the side's gait cycle in the simulated hip curve (where the heel-strike impact
    transients of the pelvis and thigh are placed too); steps of gait initiation and termination count once
    the gait envelope reaches :data:`IC_MIN_ENVELOPE` (a real step), so this list includes the
    non-steady strides' contacts that ``strides`` marks ``steady=False``.

    ``stance_angles[name]``: median of each angle (rad) over the calibration window: the patient's real
    "neutral" stance against the anatomical zero. Sensors zeroed on that stance (as hipback's calibration
    and a lab's quiet-standing reference are) see ``angle - stance_angles[name]``; see
    :meth:`angle_vs_stance`.
    """

    t: FloatArray
    segment_quat: dict[str, FloatArray]
    hip_flexion_left: FloatArray
    hip_flexion_right: FloatArray
    pelvic_tilt: FloatArray
    lumbar_flexion: FloatArray
    thigh_inclination_left: FloatArray
    thigh_inclination_right: FloatArray
    pelvis_inclination: FloatArray
    pelvis_motion: FloatArray
    strides: list[TruthStride]
    holds: list[TruthHold]
    activities: list[TruthActivity]
    calibration_window: tuple[float, float]
    mounting: dict[str, FloatArray]
    patient: VirtualPatient
    sensors: list[SensorSpec]
    scenario: str = ""
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    initial_contacts: dict[str, FloatArray] = field(default_factory=dict)
    stance_angles: dict[str, float] = field(default_factory=dict)

    def angles(self) -> AngleSeries:
        """The truth as an :class:`AngleSeries` (rad), the same contract processing produces."""
        return AngleSeries(
            t=self.t, pelvis_motion=self.pelvis_motion, **{n: getattr(self, n) for n in ANGLE_FIELDS}
        )

    def angle_vs_stance(self, name: str) -> FloatArray:
        """The angle ``name`` (rad) relative to the calibration stance instead of the anatomical zero."""
        return getattr(self, name) - self.stance_angles.get(name, 0.0)

    def strides_for(self, side: str, steady_only: bool = True) -> list[TruthStride]:
        return [s for s in self.strides if s.side == side and (s.steady or not steady_only)]

    def activity_at(self, t: float) -> str:
        for a in self.activities:
            if a.t_start <= t < a.t_end:
                return a.label
        return self.activities[-1].label if self.activities else "unknown"

    def summary(self) -> dict[str, Any]:
        """Per-side means over steady strides (degrees) and hold counts."""
        out: dict[str, Any] = {"duration_s": float(self.t[-1]) if len(self.t) else 0.0}
        for side in ("left", "right"):
            st = self.strides_for(side)
            out[f"strides_{side}"] = len(st)
            if st:
                out[f"peak_hip_extension_{side}_deg"] = float(
                    np.degrees(np.mean([s.peak_hip_extension_rad for s in st]))
                )
                out[f"pelvic_tilt_at_peak_ext_{side}_deg"] = float(
                    np.degrees(np.mean([s.pelvic_tilt_at_peak_ext_rad for s in st]))
                )
                out[f"pelvic_tilt_excursion_{side}_deg"] = float(
                    np.degrees(np.mean([s.pelvic_tilt_excursion_rad for s in st]))
                )
            out[f"holds_{side}"] = sum(1 for h in self.holds if h.side == side)
        out["holds_arching"] = sum(1 for h in self.holds if h.arching)
        return out

    @classmethod
    def load(cls, folder: str | Path) -> GroundTruth:
        """Read ``truth.json``, ``truth_angles.csv`` and ``truth_segments.csv`` from ``folder``."""
        return load_truth(folder)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (angle scalars in degrees with ``_deg`` names, times in s)."""

        def deg(x: float) -> float:
            return round(float(np.degrees(x)), 4)

        strides = [
            {
                "side": s.side,
                "t_initial_contact": round(s.t_initial_contact, 4),
                "t_end": round(s.t_end, 4),
                "t_peak_extension": round(s.t_peak_extension, 4),
                "peak_hip_extension_deg": deg(s.peak_hip_extension_rad),
                "pelvic_tilt_at_peak_ext_deg": deg(s.pelvic_tilt_at_peak_ext_rad),
                "pelvic_tilt_excursion_deg": deg(s.pelvic_tilt_excursion_rad),
                "peak_thigh_extension_deg": deg(s.peak_thigh_extension_rad),
                "steady": s.steady,
                "walk_index": s.walk_index,
                "turning": s.turning,
            }
            for s in self.strides
        ]
        holds = [
            {
                "side": h.side,
                "t_start": round(h.t_start, 4),
                "t_end": round(h.t_end, 4),
                "duration_s": round(h.duration_s, 4),
                "arching": h.arching,
                "pelvic_tilt_change_deg": deg(h.pelvic_tilt_change_rad),
                "hip_extension_deg": deg(h.hip_extension_rad),
                "pelvic_tilt_at_start_deg": deg(h.pelvic_tilt_at_start_rad),
                "lumbar_extension_change_deg": deg(h.lumbar_extension_change_rad),
                "t_arch_start": None if h.t_arch_start is None else round(h.t_arch_start, 4),
            }
            for h in self.holds
        ]
        return {
            "format": "hipback-simulator-truth/1",
            "scenario": self.scenario,
            "seed": self.seed,
            "duration_s": float(self.t[-1]) if len(self.t) else 0.0,
            "rate_hz": float(round(1.0 / (self.t[1] - self.t[0]), 6)) if len(self.t) > 1 else None,
            "calibration_window": [float(self.calibration_window[0]), float(self.calibration_window[1])],
            "conventions": "angles relative to standing neutral; hip flexion +, pelvic tilt anterior +, "
            "lumbar flexion +; quaternions (w, x, y, z) segment/sensor-to-world, world z up, "
            "x initial walking direction",
            "patient": self.patient.to_dict(),
            "sensors": [s.to_dict() for s in self.sensors],
            "mounting": {k: [float(v) for v in q] for k, q in self.mounting.items()},
            "summary": self.summary(),
            "activities": [asdict(a) for a in self.activities],
            "strides": strides,
            "holds": holds,
            "initial_contacts": {
                k: [round(float(x), 4) for x in v] for k, v in self.initial_contacts.items()
            },
            "stance_angles_deg": {k: deg(v) for k, v in self.stance_angles.items()},
            "meta": self.meta,
        }

    def save(self, folder: str | Path) -> list[Path]:
        """Write ``truth.json``, ``truth_angles.csv`` (deg) and ``truth_segments.csv`` (quaternions)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "truth.json", folder / "truth_angles.csv", folder / "truth_segments.csv"]
        paths[0].write_text(json.dumps(self.to_dict(), indent=1))
        cols = [*ANGLE_FIELDS]
        data = np.column_stack([self.t] + [np.degrees(getattr(self, c)) for c in cols] + [self.pelvis_motion])
        header = ["time_s"] + [f"{c}_deg" for c in cols] + ["pelvis_motion_m_s2"]
        _write_csv(paths[1], header, data, "%.4f")
        segs = list(self.segment_quat)
        qcols = [f"{s}_q{c}" for s in segs for c in "wxyz"]
        qdata = np.column_stack([self.t] + [self.segment_quat[s] for s in segs])
        _write_csv(paths[2], ["time_s", *qcols], qdata, "%.7f")
        return paths


def load_truth(folder: str | Path) -> GroundTruth:
    """Read a ground truth written by :meth:`GroundTruth.save` (degrees in the files back to radians)."""
    folder = Path(folder)
    d = json.loads((folder / "truth.json").read_text())
    ang = np.genfromtxt(folder / "truth_angles.csv", delimiter=",", names=True)
    seg = np.genfromtxt(folder / "truth_segments.csv", delimiter=",", names=True)
    segment_quat = {
        s: np.column_stack([seg[f"{s}_q{c}"] for c in "wxyz"])
        for s in ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")
        if f"{s}_qw" in seg.dtype.names
    }
    rad = np.radians
    strides = [
        TruthStride(
            side=s["side"],
            t_initial_contact=s["t_initial_contact"],
            t_end=s["t_end"],
            t_peak_extension=s["t_peak_extension"],
            peak_hip_extension_rad=float(rad(s["peak_hip_extension_deg"])),
            pelvic_tilt_at_peak_ext_rad=float(rad(s["pelvic_tilt_at_peak_ext_deg"])),
            pelvic_tilt_excursion_rad=float(rad(s["pelvic_tilt_excursion_deg"])),
            peak_thigh_extension_rad=float(rad(s["peak_thigh_extension_deg"])),
            steady=s["steady"],
            walk_index=s["walk_index"],
            turning=s.get("turning", False),
        )
        for s in d["strides"]
    ]
    holds = [
        TruthHold(
            side=h["side"],
            t_start=h["t_start"],
            t_end=h["t_end"],
            arching=h["arching"],
            pelvic_tilt_change_rad=float(rad(h["pelvic_tilt_change_deg"])),
            hip_extension_rad=float(rad(h["hip_extension_deg"])),
            pelvic_tilt_at_start_rad=float(rad(h["pelvic_tilt_at_start_deg"])),
            lumbar_extension_change_rad=float(rad(h["lumbar_extension_change_deg"])),
            t_arch_start=h["t_arch_start"],
        )
        for h in d["holds"]
    ]
    sensors = []
    for s in d["sensors"]:
        s = dict(s)
        s["position"] = tuple(s["position"])
        sensors.append(SensorSpec(**s))
    return GroundTruth(
        t=np.asarray(ang["time_s"], dtype=float),
        segment_quat=segment_quat,
        pelvis_motion=np.asarray(ang["pelvis_motion_m_s2"], dtype=float),
        strides=strides,
        holds=holds,
        activities=[TruthActivity(**a) for a in d["activities"]],
        calibration_window=(d["calibration_window"][0], d["calibration_window"][1]),
        mounting={k: np.asarray(v, dtype=float) for k, v in d["mounting"].items()},
        patient=VirtualPatient(**d["patient"]),
        sensors=sensors,
        scenario=d["scenario"],
        seed=d["seed"],
        meta=d.get("meta", {}),
        initial_contacts={k: np.asarray(v, dtype=float) for k, v in d.get("initial_contacts", {}).items()},
        stance_angles={k: float(rad(v)) for k, v in d.get("stance_angles_deg", {}).items()},
        **{n: np.radians(np.asarray(ang[f"{n}_deg"], dtype=float)) for n in ANGLE_FIELDS},
    )


def _write_csv(path: Path, header: list[str], data: FloatArray, fmt: str) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        fh.write("\n".join(",".join(fmt % v for v in row) for row in data))
        fh.write("\n")


def _crossings(phase: FloatArray, t: FloatArray, offset: float) -> list[tuple[float, int]]:
    """(time, index) where ``phase - offset`` reaches an integer (rising), linear interpolation."""
    k = np.floor(phase - offset)
    idx = np.nonzero(np.diff(k) > 0)[0] + 1
    out = []
    if len(phase) and abs(phase[0] - offset - round(phase[0] - offset)) < 1e-12:
        out.append((float(t[0]), 0))
    for i in idx:
        target = k[i] + offset
        frac = (target - phase[i - 1]) / (phase[i] - phase[i - 1])
        out.append((float(t[i - 1] + frac * (t[i] - t[i - 1])), int(i)))
    return out


def extract_strides(motion: Motion, angles: dict[str, FloatArray]) -> list[TruthStride]:
    strides: list[TruthStride] = []
    t = motion.t
    for w in range(int(motion.walk_id.max()) + 1 if len(motion.walk_id) else 0):
        idx = np.nonzero(motion.walk_id == w)[0]
        if len(idx) == 0:
            continue
        i0 = idx[0]
        ph = motion.phase[idx]
        for side, offset in (("right", 0.0), ("left", motion.left_offset)):
            ics = _crossings(ph, t[idx], offset)
            for (ta, ia), (tb, ib) in zip(ics[:-1], ics[1:], strict=True):
                sl = slice(i0 + ia, i0 + ib + 1)
                hip = angles[f"hip_flexion_{side}"][sl]
                k = int(np.argmin(hip))
                tilt = angles["pelvic_tilt"][sl]
                strides.append(
                    TruthStride(
                        side=side,
                        t_initial_contact=ta,
                        t_end=tb,
                        t_peak_extension=float(t[sl][k]),
                        peak_hip_extension_rad=float(-hip[k]),
                        pelvic_tilt_at_peak_ext_rad=float(tilt[k]),
                        pelvic_tilt_excursion_rad=float(tilt.max() - tilt.min()),
                        peak_thigh_extension_rad=float(-angles[f"thigh_inclination_{side}"][sl].min()),
                        steady=bool(motion.envelope[sl].min() > 0.999),
                        walk_index=w,
                        turning=bool(np.ptp(motion.ch["heading"][sl]) > np.radians(10.0)),
                    )
                )
    strides.sort(key=lambda s: s.t_initial_contact)
    return strides


#: Gait envelope (0..1) an initial contact needs to count as a true heel strike (gait initiation/termination).
IC_MIN_ENVELOPE = 0.25


def extract_initial_contacts(motion: Motion) -> dict[str, FloatArray]:
    """True IC times (s) per side: every crossing of the side's phase 0 inside a walk with the gait
    envelope at least :data:`IC_MIN_ENVELOPE`."""
    out: dict[str, list[float]] = {"left": [], "right": []}
    t = motion.t
    for w in range(int(motion.walk_id.max()) + 1 if len(motion.walk_id) else 0):
        idx = np.nonzero(motion.walk_id == w)[0]
        if len(idx) == 0:
            continue
        for side, offset in (("right", 0.0), ("left", motion.left_offset)):
            for tc, i in _crossings(motion.phase[idx], t[idx], offset):
                if motion.envelope[idx[i]] >= IC_MIN_ENVELOPE:
                    out[side].append(tc)
    return {k: np.asarray(sorted(v), dtype=float) for k, v in out.items()}


def stance_angles(
    angles: dict[str, FloatArray], t: FloatArray, window: tuple[float, float]
) -> dict[str, float]:
    """Median of each angle (rad) over the calibration window (empty window: zeros)."""
    m = (t >= window[0]) & (t <= window[1])
    if not m.any():
        return {n: 0.0 for n in ANGLE_FIELDS}
    return {n: float(np.median(angles[n][m])) for n in ANGLE_FIELDS}


def extract_holds(motion: Motion, angles: dict[str, FloatArray]) -> list[TruthHold]:
    holds = []
    dt = motion.t[1] - motion.t[0]
    for rec in motion.records:
        if rec.kind != "hold" or rec.t_hold_start is None or rec.t_hold_end is None:
            continue
        a, b = int(round(rec.t_hold_start / dt)), int(round(rec.t_hold_end / dt))
        tilt = angles["pelvic_tilt"][a : b + 1]
        lumbar = angles["lumbar_flexion"][a : b + 1]
        hip = angles[f"hip_flexion_{rec.side}"][a : b + 1]
        holds.append(
            TruthHold(
                side=rec.side or "left",
                t_start=rec.t_hold_start,
                t_end=rec.t_hold_end,
                arching=rec.arching,
                pelvic_tilt_change_rad=float(tilt.max() - tilt[0]),
                hip_extension_rad=float(-np.median(hip)),
                pelvic_tilt_at_start_rad=float(tilt[0]),
                lumbar_extension_change_rad=float(lumbar[0] - lumbar.min()),
                t_arch_start=rec.t_arch_start,
            )
        )
    return holds


def extract_activities(motion: Motion) -> list[TruthActivity]:
    acts: list[TruthActivity] = []
    for rec in motion.records:
        label = ACTIVITY_LABELS[rec.kind]
        if acts and acts[-1].label == label:
            acts[-1].t_end = rec.t_end
        else:
            acts.append(TruthActivity(label, rec.t_start, rec.t_end))
    return acts


def calibration_window(motion: Motion) -> tuple[float, float]:
    first = motion.records[0]
    if first.kind != "stand":
        return (first.t_start, first.t_start)
    margin = min(0.5, 0.1 * (first.t_end - first.t_start))
    return (first.t_start + margin, first.t_end - margin)


def moving_average(x: FloatArray, n: int) -> FloatArray:
    if n <= 1:
        return x
    c = np.cumsum(np.concatenate(([0.0], x)))
    half = n // 2
    idx = np.arange(len(x))
    lo = np.clip(idx - half, 0, len(x))
    hi = np.clip(idx - half + n, 0, len(x))
    return (c[hi] - c[lo]) / (hi - lo)


def build_truth(
    motion: Motion,
    quats: dict[str, FloatArray],
    pelvis_acc_world: FloatArray,
    patient: VirtualPatient,
    sensors: list[SensorSpec],
    mounting: dict[str, FloatArray],
    truth_rate_hz: float,
    scenario: str,
    seed: int,
) -> GroundTruth:
    """Assemble the ground truth from the fine-grid motion (angles recomputed from the quaternions)."""
    dt = motion.t[1] - motion.t[0]
    angles = body.segment_angles(quats)
    step = max(1, int(round(1.0 / (truth_rate_hz * dt))))
    sel = slice(0, None, step)
    # pelvis_motion: dynamic acceleration magnitude of the sacrum, 0.5 s moving average
    motion_mag = moving_average(np.linalg.norm(pelvis_acc_world, axis=1), int(round(0.5 / dt)))
    window = calibration_window(motion)
    return GroundTruth(
        t=motion.t[sel].copy(),
        segment_quat={k: q[sel].copy() for k, q in quats.items()},
        pelvis_motion=motion_mag[sel].copy(),
        strides=extract_strides(motion, angles),
        holds=extract_holds(motion, angles),
        activities=extract_activities(motion),
        calibration_window=window,
        mounting=mounting,
        patient=patient,
        sensors=sensors,
        scenario=scenario,
        seed=seed,
        initial_contacts=extract_initial_contacts(motion),
        stance_angles=stance_angles(angles, motion.t, window),
        **{n: angles[n][sel].copy() for n in ANGLE_FIELDS},
    )

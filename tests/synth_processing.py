"""Small synthetic sessions for the processing tests (independent of the simulator package).

Kinematics: world Z up; the person faces heading ``H`` (rad about world Z). Segment-to-world in standing
neutral has X = (cos H, sin H, 0), Y = up, Z = X x Y. Pelvis = B(H) * Rz_seg(-tilt); thigh = B(H) *
Rz_seg(hip - tilt). Sensors follow the mounting convention of the placement guide (x superior, z out of the
skin), optionally rotated by a misalignment, and a quaternion device adds its own heading offset and drift.
Raw devices get gyr = body angular velocity and acc = R^T (g e_z + a_lin) (a_lin = 0 here).
"""

from __future__ import annotations

import math

import numpy as np

from hipback.processing import quaternion as qm
from hipback.processing.types import Recording, SensorStream

G = 9.81


def base(heading: float) -> np.ndarray:
    x = np.array([np.cos(heading), np.sin(heading), 0.0])
    y = np.array([0.0, 0.0, 1.0])
    return qm.from_matrix(np.column_stack([x, y, np.cross(x, y)]))


def nominal_mounting(placement: str, face: str = "lateral") -> np.ndarray:
    """Sensor-to-segment quaternion (sensor x superior, z out of the skin)."""
    x = np.array([0.0, 1.0, 0.0])
    if placement in ("pelvis", "lumbar_upper"):
        z = np.array([-1.0, 0.0, 0.0])
    elif face == "anterior":
        z = np.array([1.0, 0.0, 0.0])
    elif placement == "thigh_right":
        z = np.array([0.0, 0.0, 1.0])
    else:
        z = np.array([0.0, 0.0, -1.0])
    return qm.from_matrix(np.column_stack([x, np.cross(z, x), z]))


def gait_hip(phase: np.ndarray, flex: float, ext: float) -> np.ndarray:
    """Hip flexion over a stride: slow extension in stance (60 %), fast flexion in swing (rad)."""
    ph = np.mod(phase, 1.0)
    st = ph < 0.6
    out = np.empty_like(ph)
    s = ph[st] / 0.6
    out[st] = flex - (flex + ext) * (0.5 - 0.5 * np.cos(np.pi * s))
    s = (ph[~st] - 0.6) / 0.4
    out[~st] = -ext + (flex + ext) * (0.5 - 0.5 * np.cos(np.pi * s))
    return out


def kinematics(
    t: np.ndarray,
    stand_s: float = 5.0,
    stride_s: float = 1.1,
    flex_deg: float = 30.0,
    ext_deg: float = 15.0,
    walk_s: float | None = None,
    sway: float = 0.0,
) -> dict[str, np.ndarray]:
    """Truth angles (rad): stand still ``stand_s`` then walk (tilt oscillating 2x per stride)."""
    walking = t >= stand_s
    if walk_s is not None:
        walking &= t < stand_s + walk_s
    ramp = np.clip((t - stand_s) / 1.0, 0.0, 1.0) * walking
    ph = (t - stand_s) / stride_s
    flex, ext = np.radians(flex_deg), np.radians(ext_deg)
    hip_l = np.where(walking, ramp * gait_hip(ph, flex, ext), 0.0)
    hip_r = np.where(walking, ramp * gait_hip(ph + 0.5, flex, ext), 0.0)
    tilt = np.where(walking, ramp * np.radians(1.5) * np.sin(4 * np.pi * ph), 0.0)
    tilt = tilt + sway * np.sin(2 * np.pi * 0.3 * t)
    return {"hip_flexion_left": hip_l, "hip_flexion_right": hip_r, "pelvic_tilt": tilt}


def segment_quats(truth: dict[str, np.ndarray], heading: float = 0.3) -> dict[str, np.ndarray]:
    b = base(heading)
    z = np.array([0.0, 0.0, 1.0])
    tilt = truth["pelvic_tilt"]
    out = {"pelvis": qm.multiply(b, qm.from_axis_angle(z, -tilt))}
    for side in ("left", "right"):
        out[f"thigh_{side}"] = qm.multiply(b, qm.from_axis_angle(z, truth[f"hip_flexion_{side}"] - tilt))
    return out


def make_recording(
    duration_s: float = 20.0,
    rate: float = 100.0,
    kinds: dict[str, str] | None = None,
    rates: dict[str, float] | None = None,
    misalign: dict[str, np.ndarray] | None = None,
    faces: dict[str, str] | None = None,
    mount_as: dict[str, str] | None = None,
    heading_drift_rad_s: float = 0.0,
    seed: int = 0,
    **kin: float,
) -> tuple[Recording, dict[str, np.ndarray]]:
    """A recording of pelvis + both thighs; returns it with the truth angles on a fine grid (1 kHz)."""
    rng = np.random.default_rng(seed)
    kinds = kinds or {"pelvis": "quat", "thigh_left": "quat", "thigh_right": "quat"}
    rates = rates or {}
    faces = faces or {}
    mount_as = mount_as or {}
    misalign = misalign or {}
    streams = {}
    t_fine = np.arange(0.0, duration_s, 0.001)
    truth = kinematics(t_fine, **kin)
    truth["t"] = t_fine
    for p, kind in kinds.items():
        fs = rates.get(p, rate)
        t = np.arange(0.0, duration_s, 1.0 / fs) + rng.uniform(0, 0.5 / fs)
        tr = kinematics(t, **kin)
        seg = segment_quats(tr)[p]
        m = nominal_mounting(mount_as.get(p, p), faces.get(p, "lateral"))
        if p in misalign:
            m = qm.multiply(m, misalign[p])
        q_s = qm.multiply(seg, m)  # sensor-to-world = segment-to-world * sensor-to-segment
        if kind == "quat":
            off = qm.from_axis_angle([0.0, 0.0, 1.0], rng.uniform(-np.pi, np.pi) + heading_drift_rad_s * t)
            q_dev = qm.multiply(off, q_s)
            acc = qm.rotate(qm.conjugate(q_s), np.array([0.0, 0.0, G])) + rng.normal(0, 0.02, (len(t), 3))
            streams[p] = SensorStream(p, "quat", t, fs, quat=q_dev, acc=acc)
        else:
            dt = 1.0 / fs
            d = qm.multiply(qm.conjugate(q_s[:-1]), q_s[1:])
            w = qm.to_rotvec(d) / dt
            gyr = np.vstack([w[:1], w])  # angular velocity over the interval ending at each sample
            acc = qm.rotate(qm.conjugate(q_s), np.array([0.0, 0.0, G]))
            streams[p] = SensorStream(p, "raw", t, fs, acc=acc, gyr=gyr)
    return Recording(streams), truth


def make_messy_recording(
    duration_s: float,
    walk_s: float,
    rates: dict[str, float] | None = None,
    turn_at_s: float | None = None,
    thigh_acc: bool = False,
) -> tuple[Recording, dict[str, np.ndarray]]:
    """:func:`make_recording` (seed 12) of a raw left thigh and quaternion pelvis and right thigh, with what
    goes wrong in use: NaN pelvis quaternions (rows 700-704), a pelvis sample going back in time (row 900), a
    0.6 s pelvis gap (rows 1200-1259), the right thigh sensor slipping 20 deg about its y axis over 0.5 s
    from 10 s and, with ``turn_at_s``, turning 15 deg on the leg about its x axis from then; ``thigh_acc``
    keeps the right thigh's acceleration."""
    rec, truth = make_recording(
        duration_s,
        kinds={"pelvis": "quat", "thigh_left": "raw", "thigh_right": "quat"},
        rates=rates,
        seed=12,
        walk_s=walk_s,
    )
    p = rec.streams["pelvis"]
    q = p.quat.copy()
    q[700:705] = np.nan
    t = p.t.copy()
    t[900] = t[895]
    keep = np.ones(len(t), dtype=bool)
    keep[1200:1260] = False
    rec.streams["pelvis"] = SensorStream("pelvis", "quat", t[keep], 100.0, quat=q[keep], acc=p.acc[keep])
    s = rec.streams["thigh_right"]
    slip = qm.from_axis_angle([0.0, 1.0, 0.0], math.radians(20.0) * np.clip((s.t - 10.0) / 0.5, 0, 1))
    q_slip = qm.multiply(s.quat, slip)
    if turn_at_s is not None:
        angle = math.radians(15.0) * np.clip((s.t - turn_at_s) / 0.5, 0, 1)
        turn = qm.from_axis_angle([1.0, 0.0, 0.0], angle)
        q_slip = qm.multiply(q_slip, turn)
    rec.streams["thigh_right"] = SensorStream(
        "thigh_right", "quat", s.t, 100.0, quat=q_slip, acc=s.acc if thigh_acc else None
    )
    return rec, truth


def truth_on(t: np.ndarray, truth: dict[str, np.ndarray], name: str) -> np.ndarray:
    return np.interp(t, truth["t"], truth[name])

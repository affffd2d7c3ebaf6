"""Segment orientations and positions from the kinematic channels, and the angle definitions.

Frames: world z up (gravity -z), x = the initial walking direction, y left. Segment frames ISB
(X anterior, Y superior, Z right). In neutral standing facing +x a segment's X = world x, Y = world z,
Z = world -y, i.e. the neutral orientation is ``R0`` = +90 deg about world x.

Composition (``*`` = Hamilton product, all quaternions segment-to-world):

- pelvis = Rz_world(heading) * R0 * Ry(pelvis_rotation) * Rx(obliquity) * Rz(-tilt)
- thigh_right = pelvis * Rz(hip_right) * Rx(add_right) [* Ry(rot_right)];
  thigh_left = pelvis * Rz(hip_left) * Rx(-add_left) [* Ry(-rot_left)] (hip internal rotation +, only
  when the optional ``rot_*`` channels are present: realistic patients, see
  ``VirtualPatient.hip_rotation_amplitude_deg``)
- lumbar_upper = pelvis * Rz(-lumbar)

so that :func:`segment_angles` (the definitions below) returns exactly ``tilt``, ``hip_*`` and ``lumbar``.

Angle definitions (relative to standing neutral, because the segment frames here *are* the frames a
standing-neutral calibration finds):

- pelvic tilt = atan2(-g_x, g_y) with g = world up expressed in the pelvis frame (anterior +);
- thigh inclination = atan2(g_x, g_y) with g = world up in the thigh frame (forward/flexion +);
- hip flexion = first angle of the intrinsic Z-X'-Y'' (ISB hip JCS order) decomposition of
  pelvis^-1 * thigh = atan2(-R01, R11) of that relative rotation (flexion +);
- lumbar flexion = minus the first Z-X'-Y'' angle of pelvis^-1 * lumbar_upper (forward bending +);
- pelvis inclination = angle between the pelvis Y axis and world up (unsigned).

Positions: pelvis origin = midpoint of the hip joint centres (the ``x, y, z`` channels); hip joint
centres at Z = +-hip_half_width; lumbar segment origin (L5/S1) at (-0.07, 0.10, 0) in the pelvis frame.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hipback.processing import quaternion as qm
from hipback.simulator.patient import VirtualPatient

FloatArray = NDArray[np.float64]
SEGMENTS = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")
R0 = qm.from_axis_angle([1.0, 0.0, 0.0], np.pi / 2)
LUMBAR_ORIGIN = np.array([-0.07, 0.10, 0.0])
UP = np.array([0.0, 0.0, 1.0])


def _axis_quat(axis: int, angle: FloatArray) -> FloatArray:
    half = 0.5 * np.asarray(angle, dtype=np.float64)
    q = np.zeros(half.shape + (4,))
    q[..., 0] = np.cos(half)
    q[..., 1 + axis] = np.sin(half)
    return q


def segment_quats(ch: dict[str, FloatArray]) -> dict[str, FloatArray]:
    """Segment-to-world quaternions (N, 4) of the four segments from the channels."""
    heading = _axis_quat(2, ch["heading"])
    pelvis = qm.multiply(heading, R0)
    pelvis = qm.multiply(pelvis, _axis_quat(1, ch["pelvis_rotation"]))
    pelvis = qm.multiply(pelvis, _axis_quat(0, ch["obliquity"]))
    pelvis = qm.multiply(pelvis, _axis_quat(2, -ch["tilt"]))
    thigh_r = qm.multiply(qm.multiply(pelvis, _axis_quat(2, ch["hip_right"])), _axis_quat(0, ch["add_right"]))
    thigh_l = qm.multiply(qm.multiply(pelvis, _axis_quat(2, ch["hip_left"])), _axis_quat(0, -ch["add_left"]))
    if "rot_right" in ch:  # hip internal rotation (+), only realistic patients have it
        thigh_r = qm.multiply(thigh_r, _axis_quat(1, ch["rot_right"]))
        thigh_l = qm.multiply(thigh_l, _axis_quat(1, -ch["rot_left"]))
    lumbar = qm.multiply(pelvis, _axis_quat(2, -ch["lumbar"]))
    return {"pelvis": pelvis, "thigh_left": thigh_l, "thigh_right": thigh_r, "lumbar_upper": lumbar}


def segment_origins(ch: dict[str, FloatArray], quats: dict[str, FloatArray], patient: VirtualPatient) -> dict:
    """World positions (N, 3) of each segment's origin (pelvis centre, hip joint centres, L5/S1)."""
    p = np.column_stack([ch["x"], ch["y"], ch["z"]])
    w = patient.hip_half_width_m
    qp = quats["pelvis"]
    return {
        "pelvis": p,
        "thigh_left": p + rotate_fast(qp, np.array([0.0, 0.0, -w])),
        "thigh_right": p + rotate_fast(qp, np.array([0.0, 0.0, w])),
        "lumbar_upper": p + rotate_fast(qp, LUMBAR_ORIGIN),
    }


def rotate_fast(q: FloatArray, v: FloatArray) -> FloatArray:
    """Same as :func:`hipback.processing.quaternion.rotate` (``q * v * conj(q)``), written out per component
    (several times faster on long arrays than the generic ``np.cross`` form)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    out = np.empty(np.broadcast_shapes(q.shape[:-1], v.shape[:-1]) + (3,))
    out[..., 0] = vx + w * tx + (y * tz - z * ty)
    out[..., 1] = vy + w * ty + (z * tx - x * tz)
    out[..., 2] = vz + w * tz + (x * ty - y * tx)
    return out


def up_in_segment(q: FloatArray) -> FloatArray:
    """World up (0, 0, 1) expressed in the segment frame, (N, 3): the third row of the rotation matrix."""
    w, x, y, z = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    return np.stack((2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)), axis=-1)


def _zxy_first(q_rel: FloatArray) -> FloatArray:
    w, x, y, z = np.moveaxis(np.asarray(q_rel), -1, 0)
    r01 = 2.0 * (x * y - w * z)
    r11 = 1.0 - 2.0 * (x * x + z * z)
    return np.arctan2(-r01, r11)


def pelvic_tilt(q_pelvis: FloatArray) -> FloatArray:
    g = up_in_segment(q_pelvis)
    return np.arctan2(-g[..., 0], g[..., 1])


def thigh_inclination(q_thigh: FloatArray) -> FloatArray:
    g = up_in_segment(q_thigh)
    return np.arctan2(g[..., 0], g[..., 1])


def hip_flexion(q_pelvis: FloatArray, q_thigh: FloatArray) -> FloatArray:
    return _zxy_first(qm.multiply(qm.conjugate(q_pelvis), q_thigh))


def lumbar_flexion(q_pelvis: FloatArray, q_lumbar: FloatArray) -> FloatArray:
    return -_zxy_first(qm.multiply(qm.conjugate(q_pelvis), q_lumbar))


def pelvis_inclination(q_pelvis: FloatArray) -> FloatArray:
    g = up_in_segment(q_pelvis)
    return np.arccos(np.clip(g[..., 1], -1.0, 1.0))


def segment_angles(quats: dict[str, FloatArray]) -> dict[str, FloatArray]:
    """All sagittal angles (rad) from segment-to-world quaternions (definitions in the module docstring)."""
    qp = quats["pelvis"]
    return {
        "hip_flexion_left": hip_flexion(qp, quats["thigh_left"]),
        "hip_flexion_right": hip_flexion(qp, quats["thigh_right"]),
        "pelvic_tilt": pelvic_tilt(qp),
        "lumbar_flexion": lumbar_flexion(qp, quats["lumbar_upper"]),
        "thigh_inclination_left": thigh_inclination(quats["thigh_left"]),
        "thigh_inclination_right": thigh_inclination(quats["thigh_right"]),
        "pelvis_inclination": pelvis_inclination(qp),
    }


def angular_velocity(q: FloatArray, dt: float) -> FloatArray:
    """Body-frame angular velocity (N, 3) rad/s of a uniformly sampled quaternion series.

    omega = 2 * vec(conj(q) * dq/dt), dq/dt by second-order central differences (one-sided at the ends).
    """
    dq = np.gradient(q, dt, axis=0)
    return 2.0 * qm.multiply(qm.conjugate(q), dq)[:, 1:]


def second_derivative(p: FloatArray, dt: float) -> FloatArray:
    """Second time derivative (N, 3) of uniformly sampled positions (central differences, ends copied)."""
    a = np.empty_like(p)
    a[1:-1] = (p[2:] - 2.0 * p[1:-1] + p[:-2]) / (dt * dt)
    a[0], a[-1] = a[1], a[-2]
    return a

"""3D hip and pelvis angles (ISB joint coordinate systems) with a heading shared between segments.

Inputs are calibrated segment-to-world quaternions (scalar first, see :mod:`hipback.processing.calibration`:
``q_segment = q_sensor * q_segment_in_sensor``) with ISB segment frames (X anterior, Y superior, Z right) in a
world frame with Z up. All angles in rad. Pure numpy; arrays in, arrays out.

Hip (Wu et al. 2002, after Grood & Suntay 1983): the rotation of the thigh relative to the pelvis,
``R = R_pelvis^T R_thigh``, decomposed as ``R = Rz(flexion) Rx(b) Ry(c)`` (intrinsic Z-X'-Y'': flexion
about the pelvis medio-lateral axis, ab/adduction about the floating axis, axial rotation about the femur's
long axis). Right side: adduction = ``b``, internal rotation = ``c``; left side: adduction = ``-b``, internal
rotation = ``-c`` (mirrored, so that adduction and internal rotation are positive on both sides). Flexion
positive, extension negative; all zero in the standing-neutral calibration pose.

Pelvis (:func:`pelvis_angles`): the pelvis relative to a reference orientation ``q_ref`` (for example the
pelvis at the standing calibration, or at the start of a rep), decomposed rotation - obliquity - tilt
(``Ry(rotation) Rx(obliquity) Rz(-tilt)``, the order the simulator composes and Baker 2001 recommends for the
pelvis): tilt anterior +, obliquity right side down +, rotation right side forward +. Heading-free pelvis
quantities (:func:`pelvis_up`): the world up direction seen in the pelvis frame, from which tilt, obliquity
(upright) and the roll about the long axis (lying) follow without any heading.

Heading between segments
------------------------
6D fusion gives each sensor its own, slowly drifting heading (rotation of its world frame about the
vertical), so the thigh-relative-to-pelvis rotation is wrong by the heading difference ``d`` between the two
sensors' world frames. When the relative rotation ``R_known`` is known at some moment (the standing
calibration: identity; an exercise's start posture: its nominal hip angles), ``d`` is the rotation about the
vertical of ``q_thigh * R_known^-1 * q_pelvis^-1``; :func:`heading_offset` takes its circular mean over a
window, :func:`align_heading` removes it. The part of an error in ``R_known`` about a horizontal axis does not
enter ``d``; an error about the vertical does (so in side-lying, where the hip flexion axis is vertical, the
start-posture flexion is taken as known). Between alignments ``d`` drifts with the difference of the two
sensors' unobservable vertical gyro biases; how long it stays within a stated error under VQF 6D with the
simulator's gyro bias model is measured by ``bench/exercise_bench.py`` (heading section) and stated in
``bench/README.md``. With a trusted magnetometer (9D) all sensors share magnetic north and ``d`` is taken
from the 9D orientations without alignment.

On-device fusion (quaternion devices) drifts much faster in heading (several degrees a minute plus a random
walk). Where such a device also delivers its gyroscope, :func:`gyro_heading_drift` measures how far the
device's world frame has turned about the vertical since a reference sample, as the difference between the
vertical part of the device orientation's own increments and that of the gyroscope's (bias removed) over
the same steps; ``Rz(-drift) * q`` then keeps the heading of the reference sample. Between two alignments
this replaces the drifting fused heading by the gyroscope's (whose bias is measured while still).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hipback.processing import quaternion as qm
from hipback.processing.angles import sagittal_inclination
from hipback.processing.quaternion import FloatArray

SIDES = ("left", "right")


def _matrix_parts(q: FloatArray) -> dict[str, FloatArray]:
    """Rotation-matrix elements R[i][j] (keys ``"ij"``) of unit quaternions ``(..., 4)``."""
    w, x, y, z = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    return {
        "00": 1 - 2 * (y * y + z * z),
        "01": 2 * (x * y - w * z),
        "02": 2 * (x * z + w * y),
        "10": 2 * (x * y + w * z),
        "11": 1 - 2 * (x * x + z * z),
        "12": 2 * (y * z - w * x),
        "20": 2 * (x * z - w * y),
        "21": 2 * (y * z + w * x),
        "22": 1 - 2 * (x * x + y * y),
    }


def zxy_angles(q_rel: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Intrinsic Z-X'-Y'' angles ``(a, b, c)`` of ``q_rel = Rz(a) Rx(b) Ry(c)`` (rad; b in [-pi/2, pi/2])."""
    r = _matrix_parts(q_rel)
    a = np.arctan2(-r["01"], r["11"])
    b = np.arctan2(r["21"], np.hypot(r["01"], r["11"]))
    c = np.arctan2(-r["20"], r["22"])
    return a, b, c


def yxz_angles(q_rel: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Intrinsic Y-X'-Z'' angles ``(c, b, a)`` of ``q_rel = Ry(c) Rx(b) Rz(a)`` (rad; b in [-pi/2, pi/2])."""
    r = _matrix_parts(q_rel)
    a = np.arctan2(r["10"], r["11"])
    b = np.arctan2(-r["12"], np.hypot(r["10"], r["11"]))
    c = np.arctan2(r["02"], r["22"])
    return c, b, a


def hip_angles(
    q_pelvis: FloatArray, q_thigh: FloatArray, side: str
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """ISB hip JCS angles ``(flexion, adduction, internal_rotation)`` in rad (module docstring for signs)."""
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    a, b, c = zxy_angles(qm.multiply(qm.conjugate(q_pelvis), q_thigh))
    s = 1.0 if side == "right" else -1.0
    return a, s * b, s * c


def hip_rotation_quat(
    flexion: FloatArray, adduction: FloatArray, internal: FloatArray, side: str
) -> FloatArray:
    """Thigh-relative-to-pelvis quaternion for ISB hip angles (the inverse of :func:`hip_angles`)."""
    s = 1.0 if side == "right" else -1.0
    rz = qm.from_axis_angle([0.0, 0.0, 1.0], np.asarray(flexion, dtype=np.float64))
    rx = qm.from_axis_angle([1.0, 0.0, 0.0], s * np.asarray(adduction, dtype=np.float64))
    ry = qm.from_axis_angle([0.0, 1.0, 0.0], s * np.asarray(internal, dtype=np.float64))
    return qm.multiply(qm.multiply(rz, rx), ry)


def pelvis_angles(q_pelvis: FloatArray, q_ref: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Pelvis ``(tilt, obliquity, rotation)`` relative to the reference orientation ``q_ref`` (rad).

    ``conj(q_ref) * q_pelvis = Ry(rotation) Rx(obliquity) Rz(-tilt)``: tilt anterior +, obliquity right side
    down +, rotation right side forward +. ``q_ref`` is a segment-to-world quaternion (4,) or (N, 4).
    """
    c, b, a = yxz_angles(qm.multiply(qm.conjugate(q_ref), q_pelvis))
    return -a, b, c


def pelvis_up(q_pelvis: FloatArray) -> FloatArray:
    """World up (0, 0, 1) in the pelvis frame, ``(N, 3)``; heading-free (unit vector)."""
    r = _matrix_parts(q_pelvis)
    return np.stack([r["20"], r["21"], r["22"]], axis=-1)


def vertical_twist(q: FloatArray) -> FloatArray:
    """Angle (rad) of the rotation about world Z that best explains ``q`` (twist of a swing-twist split)."""
    q = np.asarray(q, dtype=np.float64)
    return 2.0 * np.arctan2(q[..., 3], q[..., 0])


def heading_offset(q_pelvis: FloatArray, q_segment: FloatArray, r_known: FloatArray | None = None) -> float:
    """Heading of ``q_segment``'s world frame relative to ``q_pelvis``'s (rad), over a window of samples.

    ``r_known``: the segment's orientation relative to the pelvis during the window (quaternion (4,) or
    (N, 4)); identity (standing neutral) when None. Circular mean over the finite samples; NaN if none.
    """
    qp = np.atleast_2d(q_pelvis)
    qs = np.atleast_2d(q_segment)
    r = qm.IDENTITY if r_known is None else np.asarray(r_known, dtype=np.float64)
    d = vertical_twist(qm.multiply(qm.multiply(qs, qm.conjugate(r)), qm.conjugate(qp)))
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan")
    return float(np.arctan2(np.sin(d).mean(), np.cos(d).mean()))


def gyro_heading_drift(
    t: FloatArray,
    q: FloatArray,
    gyr: FloatArray,
    bias: FloatArray,
    start: tuple[float, FloatArray, FloatArray, float] | None = None,
) -> FloatArray:
    """Heading drift (rad, about world Z, right-handed) of a fused orientation's world frame, by gyroscope.

    :param t: sample times (s), (N,), increasing.
    :param q: the fused segment-to-world quaternions (N, 4) whose world frame drifts about the vertical.
    :param gyr: angular velocity of the same frame in its own coordinates (rad/s), (N, 3).
    :param bias: gyroscope bias to remove (rad/s, same frame), (3,).
    :param start: ``(t, q, gyr, drift)`` of the sample before ``t[0]`` (its drift in rad); None: ``t[0]`` is
        the reference sample (drift 0).
    :returns: drift per sample (N,): the sum, over the steps since the reference, of the vertical component
        of the fused orientation's step ``q[k] * conj(q[k-1])`` (world frame) minus that of the gyroscope's
        step (trapezoid of ``q * (gyr - bias)`` rotated into the world, times the step). A step with a
        non-finite value adds nothing. ``Rz(-drift) * q`` has the reference sample's heading.
    """
    t = np.asarray(t, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    w = np.asarray(gyr, dtype=np.float64) - np.asarray(bias, dtype=np.float64)
    if len(t) == 0:
        return np.zeros(0)
    if start is None:
        t_all, q_all, w_all, d0 = t, q, w, 0.0
    else:
        t0, q0, g0, d0 = start
        t_all = np.concatenate([[float(t0)], t])
        q_all = np.concatenate([np.asarray(q0, dtype=np.float64)[None, :], q])
        w_all = np.concatenate([(np.asarray(g0, dtype=np.float64) - bias)[None, :], w])
    wz = qm.rotate(q_all, w_all)[:, 2]
    step = qm.to_rotvec(qm.multiply(q_all[1:], qm.conjugate(q_all[:-1])))[:, 2]
    inc = step - 0.5 * (wz[1:] + wz[:-1]) * np.diff(t_all)
    inc = np.where(np.isfinite(inc), inc, 0.0)
    # one sequential sum from the start value: the same result whatever the chunking
    drift = np.cumsum(np.concatenate([[float(d0)], inc]))
    return drift if start is None else drift[1:]


def align_heading(q_segment: FloatArray, offset: float) -> FloatArray:
    """``Rz(-offset) * q_segment``: the segment expressed in the pelvis sensor's world frame."""
    return qm.multiply(qm.from_axis_angle([0.0, 0.0, 1.0], -float(offset)), q_segment)


def posture_reference(
    q_pelvis: FloatArray,
    q_thigh: FloatArray,
    side: str,
    nominal_flexion: float,
    lying_on_side_limit: float = 0.5,
) -> FloatArray:
    """The thigh-relative-to-pelvis rotation assumed during a start posture, per sample.

    Adduction and axial rotation are taken as zero; flexion is the heading-free sagittal hip flexion
    (thigh inclination minus pelvis inclination) unless the pelvis' medio-lateral axis is close to vertical
    (``|up . Z| > lying_on_side_limit``, side-lying), where it is ``nominal_flexion`` (rad).
    """
    flex = sagittal_inclination(q_thigh) - sagittal_inclination(q_pelvis)
    gz = pelvis_up(q_pelvis)[..., 2]
    flex = np.where(np.abs(gz) > lying_on_side_limit, nominal_flexion, flex)
    zero = np.zeros_like(flex)
    return hip_rotation_quat(flex, zero, zero, side)


def body_angles(
    t: FloatArray,
    segments: Mapping[str, FloatArray | None],
    offsets: Mapping[str, float] | None = None,
) -> dict[str, FloatArray]:
    """Per-sample angles for the exercise engine (rad), from calibrated segment quaternions.

    :param t: sample times (s), (N,).
    :param segments: ``pelvis`` (required), ``thigh_left``, ``thigh_right``, ``lumbar_upper`` (N, 4) or None.
    :param offsets: heading offset (rad) of each non-pelvis segment relative to the pelvis
        (:func:`heading_offset`); missing entries mean 0 (segments already share a heading, e.g. 9D).
    :returns: ``t``, ``hip_flexion/adduction/rotation_<side>`` (ISB JCS), ``pelvic_tilt`` (heading-free,
        anterior +), ``lumbar_flexion`` (heading-free sagittal, as :mod:`hipback.processing.angles`),
        ``lumbar_rotation`` (upper lumbar relative to the pelvis about its long axis, to the right +),
        ``pelvis_up_x/y/z`` (:func:`pelvis_up`). NaN where a segment is missing.
    """
    t = np.asarray(t, dtype=np.float64)
    n = len(t)
    nan = np.full(n, np.nan)
    offsets = offsets or {}
    qp = segments.get("pelvis")
    out: dict[str, FloatArray] = {"t": t}
    if qp is None:
        raise ValueError("body angles need the pelvis segment")
    th_p = sagittal_inclination(qp)
    out["pelvic_tilt"] = -th_p
    up = pelvis_up(qp)
    for k, c in enumerate("xyz"):
        out[f"pelvis_up_{c}"] = up[:, k]
    for side in SIDES:
        q = segments.get(f"thigh_{side}")
        if q is None:
            for stem in ("flexion", "adduction", "rotation"):
                out[f"hip_{stem}_{side}"] = nan.copy()
            continue
        q = align_heading(q, offsets.get(f"thigh_{side}", 0.0))
        f, a, r = hip_angles(qp, q, side)
        out[f"hip_flexion_{side}"], out[f"hip_adduction_{side}"], out[f"hip_rotation_{side}"] = f, a, r
    ql = segments.get("lumbar_upper")
    if ql is None:
        out["lumbar_flexion"] = nan.copy()
        out["lumbar_rotation"] = nan.copy()
    else:
        out["lumbar_flexion"] = th_p - sagittal_inclination(ql)
        ql = align_heading(ql, offsets.get("lumbar_upper", 0.0))
        _, _, rot = zxy_angles(qm.multiply(qm.conjugate(qp), ql))
        out["lumbar_rotation"] = -rot  # +Y turns the anterior axis to the left: facing right is -Y
    return out

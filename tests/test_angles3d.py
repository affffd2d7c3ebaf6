"""3D hip and pelvis angles (ISB JCS) and heading alignment between segments."""

from __future__ import annotations

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.angles3d import (
    align_heading,
    body_angles,
    gyro_heading_drift,
    heading_offset,
    hip_angles,
    hip_rotation_quat,
    pelvis_angles,
    posture_reference,
    vertical_twist,
)
from hipback.simulator.body import segment_quats

RNG = np.random.default_rng(5)
N = 200


def _random_quats(n: int) -> np.ndarray:
    return qm.normalize(RNG.standard_normal((n, 4)))


def _rz(angle) -> np.ndarray:
    return qm.from_axis_angle([0.0, 0.0, 1.0], np.asarray(angle, dtype=float))


@pytest.mark.parametrize("side", ["left", "right"])
def test_hip_angles_invert_the_jcs_composition(side: str):
    f = RNG.uniform(-0.5, 2.0, N)
    a = RNG.uniform(-0.6, 0.6, N)
    r = RNG.uniform(-0.8, 0.8, N)
    qp = _random_quats(N)
    qt = qm.multiply(qp, hip_rotation_quat(f, a, r, side))
    ff, aa, rr = hip_angles(qp, qt, side)
    np.testing.assert_allclose(ff, f, atol=1e-9)
    np.testing.assert_allclose(aa, a, atol=1e-9)
    np.testing.assert_allclose(rr, r, atol=1e-9)


def test_hip_angles_match_the_simulator_channels_and_signs():
    n = 50
    ch = {c: np.zeros(n) for c in ("heading", "pelvis_rotation", "obliquity", "tilt", "lumbar")}
    ch.update(
        heading=RNG.uniform(-3, 3, n),
        tilt=RNG.uniform(-0.3, 0.3, n),
        obliquity=RNG.uniform(-0.1, 0.1, n),
        hip_left=RNG.uniform(-0.3, 1.5, n),
        hip_right=RNG.uniform(-0.3, 1.5, n),
        add_left=RNG.uniform(-0.3, 0.3, n),
        add_right=RNG.uniform(-0.3, 0.3, n),
    )
    q = segment_quats(ch)
    for side in ("left", "right"):
        f, a, r = hip_angles(q["pelvis"], q[f"thigh_{side}"], side)
        np.testing.assert_allclose(f, ch[f"hip_{side}"], atol=1e-9)
        np.testing.assert_allclose(a, ch[f"add_{side}"], atol=1e-9)  # adduction positive on both sides
        np.testing.assert_allclose(r, 0.0, atol=1e-9)
    # internal rotation: the right thigh's anterior axis turns medially (to the left, -Z of the pelvis)
    qt = hip_rotation_quat(0.0, 0.0, 0.3, "right")
    x_dir = qm.rotate(qt, np.array([1.0, 0.0, 0.0]))
    assert x_dir[2] < 0


def test_pelvis_angles_recover_rotation_obliquity_tilt():
    ref = _random_quats(1)[0]
    tilt, obl, rot = RNG.uniform(-0.5, 0.5, (3, N))
    ry = qm.from_axis_angle([0.0, 1.0, 0.0], rot)
    rx = qm.from_axis_angle([1.0, 0.0, 0.0], obl)
    rz = qm.from_axis_angle([0.0, 0.0, 1.0], -tilt)
    qp = qm.multiply(ref, qm.multiply(qm.multiply(ry, rx), rz))
    t2, o2, r2 = pelvis_angles(qp, ref)
    np.testing.assert_allclose([t2, o2, r2], [tilt, obl, rot], atol=1e-9)


def test_heading_offset_is_found_at_a_known_posture_and_removed():
    qp = _random_quats(1).repeat(40, axis=0)
    known = hip_rotation_quat(0.7, 0.1, -0.2, "left")
    true_thigh = qm.multiply(qp, known)
    measured = qm.multiply(_rz(0.9), true_thigh)  # the thigh sensor's world frame is turned by 0.9 rad
    d = heading_offset(qp, measured, known)
    assert d == pytest.approx(0.9, abs=1e-9)
    f, a, r = hip_angles(qp, align_heading(measured, d), "left")
    np.testing.assert_allclose([f[0], a[0], r[0]], [0.7, 0.1, -0.2], atol=1e-9)
    # with the heading wrong, the ab/adduction and rotation are wrong: the alignment matters
    f2, a2, r2 = hip_angles(qp, measured, "left")
    assert abs(a2[0] - 0.1) + abs(r2[0] + 0.2) + abs(f2[0] - 0.7) > 0.1


def test_heading_error_about_a_horizontal_axis_does_not_enter_the_offset():
    n = 30
    ch = {c: np.zeros(n) for c in ("pelvis_rotation", "obliquity", "lumbar", "add_left", "add_right")}
    ch.update(heading=np.full(n, 0.4), tilt=np.zeros(n), hip_left=np.full(n, 0.8), hip_right=np.full(n, 0.8))
    q = segment_quats(ch)
    wrong = hip_rotation_quat(0.6, 0.0, 0.0, "right")  # flexion off by 0.2 rad, upright pelvis
    d = heading_offset(q["pelvis"], qm.multiply(_rz(-0.3), q["thigh_right"]), wrong)
    assert d == pytest.approx(-0.3, abs=1e-9)


def test_side_lying_reference_uses_the_nominal_flexion():
    # lying on the left side (right side up): obliquity -90 deg
    n = 5
    ch = {c: np.zeros(n) for c in ("pelvis_rotation", "lumbar", "add_left", "add_right", "tilt", "heading")}
    ch.update(obliquity=np.full(n, -np.pi / 2), hip_left=np.full(n, 0.8), hip_right=np.full(n, 0.8))
    q = segment_quats(ch)
    ref = posture_reference(q["pelvis"], q["thigh_right"], "right", nominal_flexion=0.8)
    f, _, _ = hip_angles(np.tile(qm.IDENTITY, (n, 1)), ref, "right")
    np.testing.assert_allclose(f, 0.8, atol=1e-9)


def test_body_angles_are_heading_invariant_and_nan_without_sensors():
    n = 20
    ch = {
        c: RNG.uniform(-0.3, 0.3, n)
        for c in ("pelvis_rotation", "obliquity", "lumbar", "add_left", "add_right", "tilt")
    }
    ch.update(heading=np.zeros(n), hip_left=RNG.uniform(0, 1, n), hip_right=RNG.uniform(0, 1, n))
    q = segment_quats(ch)
    t = np.arange(n) / 100.0
    a = body_angles(t, q)
    turned = {k: qm.multiply(_rz(1.3), v) for k, v in q.items()}
    b = body_angles(t, turned)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-9)
    np.testing.assert_allclose(a["hip_adduction_left"], ch["add_left"], atol=1e-9)
    np.testing.assert_allclose(a["pelvic_tilt"], ch["tilt"], atol=0.2)  # heading-free sagittal definition
    c = body_angles(t, {"pelvis": q["pelvis"]})
    assert np.isnan(c["hip_flexion_left"]).all() and np.isnan(c["lumbar_rotation"]).all()
    with pytest.raises(ValueError):
        body_angles(t, {"thigh_left": q["thigh_left"]})


def _drifting(n: int = 1500, dt: float = 0.01):
    """A segment turning about changing body axes, seen through a fused heading that drifts about world Z
    (linear plus a wave), and its gyroscope with a constant bias."""
    t = np.arange(n) * dt
    w = np.column_stack([0.8 * np.sin(1.1 * t), 0.5 * np.cos(0.7 * t), 0.6 * np.sin(1.9 * t + 0.3)])
    q = np.zeros((n, 4))
    q[0] = qm.from_axis_angle([1.0, 0.0, 0.0], 1.2)
    for k in range(1, n):
        q[k] = qm.multiply(q[k - 1], qm.from_rotvec(0.5 * (w[k] + w[k - 1]) * dt))
    drift = 0.004 * t + 0.03 * np.sin(0.4 * t)
    bias = np.array([0.02, -0.015, 0.01])
    return t, qm.multiply(_rz(drift), q), w + bias, bias, drift - drift[0]


def test_gyro_heading_drift_recovers_the_fused_heading_drift_and_removes_it():
    t, q_fused, gyr, bias, drift = _drifting()
    est = gyro_heading_drift(t, q_fused, gyr, bias)
    assert est[0] == 0.0
    assert np.abs(est - drift).max() < np.radians(0.01)
    fixed = qm.multiply(_rz(-est), q_fused)  # keeps the first sample's heading throughout
    assert (
        np.abs(
            np.degrees(
                vertical_twist(qm.multiply(fixed, qm.conjugate(q_fused[:1])))
                - vertical_twist(qm.multiply(qm.multiply(_rz(-drift), q_fused), qm.conjugate(q_fused[:1])))
            )
        ).max()
        < 0.01
    )
    # the bias matters: without removing it, the gyroscope's own drift enters (0.6 deg/s about mixed axes)
    assert np.abs(gyro_heading_drift(t, q_fused, gyr, np.zeros(3)) - drift).max() > np.radians(3.0)


def test_gyro_heading_drift_continues_from_the_previous_sample_whatever_the_chunking():
    t, q_fused, gyr, bias, _ = _drifting(600)
    whole = gyro_heading_drift(t, q_fused, gyr, bias)
    parts, start = [], None
    for a, b in ((0, 1), (1, 7), (7, 250), (250, 600)):
        d = gyro_heading_drift(t[a:b], q_fused[a:b], gyr[a:b], bias, start)
        parts.append(d)
        start = (t[b - 1], q_fused[b - 1], gyr[b - 1], d[-1])
    assert np.array_equal(np.concatenate(parts), whole)
    assert len(gyro_heading_drift(t[:0], q_fused[:0], gyr[:0], bias)) == 0


def test_gyro_heading_drift_adds_nothing_over_a_step_without_values():
    t, q_fused, gyr, bias, drift = _drifting(300)
    gyr = gyr.copy()
    gyr[100] = np.nan
    est = gyro_heading_drift(t, q_fused, gyr, bias)
    assert np.isfinite(est).all()
    # the two steps next to the missing sample are lost (a fraction of a degree here), the rest is tracked
    assert np.abs(np.diff(est - drift)[np.r_[0:99, 101:299]]).max() < np.radians(0.001)

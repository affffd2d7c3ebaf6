"""3D hip and pelvis angles (ISB JCS) and heading alignment between segments."""

from __future__ import annotations

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.angles3d import (
    align_heading,
    body_angles,
    heading_offset,
    hip_angles,
    hip_rotation_quat,
    pelvis_angles,
    posture_reference,
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

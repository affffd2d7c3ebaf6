"""3D hip and pelvis angles with exact expectations: Euler decompositions of rotations composed from known
angles, the left side mirrored, pelvis angles relative to a reference, the heading between segments, the
start-posture reference (upright and side-lying) and ``body_angles`` field by field.

Written for the survivors of ``python bench/mutation.py --group angles3d``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing import angles3d as a3
from hipback.processing import quaternion as qm

TIGHT = {"rtol": 0, "atol": 1e-12}


def rx(a: float) -> np.ndarray:
    return qm.from_axis_angle([1.0, 0.0, 0.0], a)


def ry(a: float) -> np.ndarray:
    return qm.from_axis_angle([0.0, 1.0, 0.0], a)


def rz(a: float) -> np.ndarray:
    return qm.from_axis_angle([0.0, 0.0, 1.0], a)


def m3(*qs: np.ndarray) -> np.ndarray:
    out = qs[0]
    for q in qs[1:]:
        out = qm.multiply(out, q)
    return out


PELVIS = m3(rz(0.7), qm.from_rotvec([math.pi / 2, 0.0, 0.0]), rz(-0.1))  # upright, turned, tilted a little


@pytest.mark.parametrize("a,b,c", [(0.3, -0.2, 0.1), (-1.2, 0.4, -0.6), (2.0, 1.2, 2.5)])
def test_euler_decompositions(a: float, b: float, c: float) -> None:
    np.testing.assert_allclose(a3.zxy_angles(m3(rz(a), rx(b), ry(c))), (a, b, c), **TIGHT)
    np.testing.assert_allclose(a3.yxz_angles(m3(ry(c), rx(b), rz(a))), (c, b, a), **TIGHT)


@pytest.mark.parametrize("side,sign", [("right", 1.0), ("left", -1.0)])
def test_hip_angles_left_mirrored_and_round_trip(side: str, sign: float) -> None:
    rel = m3(rz(0.5), rx(sign * 0.1), ry(sign * 0.2))  # flexion 0.5, adduction 0.1, internal rotation 0.2
    thigh = qm.multiply(PELVIS, rel)
    np.testing.assert_allclose(a3.hip_angles(PELVIS, thigh, side), (0.5, 0.1, 0.2), **TIGHT)
    back = a3.hip_rotation_quat(0.5, 0.1, 0.2, side)
    np.testing.assert_allclose(qm.canonical(back), qm.canonical(rel), **TIGHT)
    with pytest.raises(ValueError, match=r"^side must be 'left' or 'right', not 'middle'$"):
        a3.hip_angles(PELVIS, thigh, "middle")


def test_pelvis_angles_up_and_twist() -> None:
    q = m3(PELVIS, ry(0.15), rx(-0.05), rz(-0.2))  # rotation 0.15, obliquity -0.05, anterior tilt 0.2
    np.testing.assert_allclose(a3.pelvis_angles(q, PELVIS), (0.2, -0.05, 0.15), **TIGHT)
    neutral = qm.from_rotvec([math.pi / 2, 0.0, 0.0])
    up = a3.pelvis_up(np.array([neutral, qm.IDENTITY]))
    np.testing.assert_allclose(up, [[0, 1, 0], [0, 0, 1]], **TIGHT)
    assert a3.vertical_twist(rz(0.4)) == pytest.approx(0.4, abs=1e-15)
    assert a3.vertical_twist(rz(-2.9)) == pytest.approx(-2.9, abs=1e-12)


def test_heading_between_segments() -> None:
    rel = m3(rz(0.3), rx(0.05))  # the known thigh-relative-to-pelvis rotation
    thighs = np.array([qm.multiply(rz(0.25), qm.multiply(PELVIS, rel))] * 3)
    thighs[1] = np.nan
    got = a3.heading_offset(np.array([PELVIS] * 3), thighs, rel)
    assert got == pytest.approx(0.25, abs=1e-12)
    assert a3.heading_offset(PELVIS, qm.multiply(rz(-0.4), PELVIS)) == pytest.approx(-0.4, abs=1e-12)
    assert math.isnan(a3.heading_offset(PELVIS, np.full(4, np.nan)))
    np.testing.assert_allclose(a3.align_heading(qm.multiply(rz(0.25), PELVIS), 0.25), PELVIS, **TIGHT)


def test_posture_reference_upright_and_side_lying() -> None:
    thigh = qm.multiply(PELVIS, rz(0.6))
    ref = a3.posture_reference(PELVIS, thigh, "left", nominal_flexion=1.0)
    np.testing.assert_allclose(qm.canonical(ref), qm.canonical(rz(0.6)), **TIGHT)
    lying = qm.multiply(qm.from_rotvec([0.0, -math.pi / 2, 0.0]), PELVIS)  # pelvis Z axis vertical
    np.testing.assert_allclose(
        qm.canonical(a3.posture_reference(lying, qm.multiply(lying, rz(0.6)), "left", nominal_flexion=1.0)),
        qm.canonical(rz(1.0)), **TIGHT)
    tilted = qm.multiply(qm.from_rotvec([0.0, -math.asin(0.49), 0.0]), PELVIS)  # |up . Z| = 0.49 <= 0.5
    np.testing.assert_allclose(
        qm.canonical(a3.posture_reference(tilted, qm.multiply(tilted, rz(0.6)), "left", 1.0)),
        qm.canonical(rz(0.6)), atol=1e-9, rtol=0)


def test_body_angles_field_by_field() -> None:
    n = 2
    t = np.array([0.0, 0.01])
    thigh_r = qm.multiply(rz(0.3), qm.multiply(PELVIS, m3(rz(0.4), rx(0.1), ry(-0.2))))
    lumbar = qm.multiply(PELVIS, rz(-0.15))  # flexed forward relative to the pelvis
    out = a3.body_angles(t, {"pelvis": np.tile(PELVIS, (n, 1)), "thigh_right": np.tile(thigh_r, (n, 1)),
                             "lumbar_upper": np.tile(lumbar, (n, 1))}, offsets={"thigh_right": 0.3})
    np.testing.assert_array_equal(out["t"], t)
    np.testing.assert_allclose(out["hip_flexion_right"], [0.4] * n, **TIGHT)
    np.testing.assert_allclose(out["hip_adduction_right"], [0.1] * n, **TIGHT)
    np.testing.assert_allclose(out["hip_rotation_right"], [-0.2] * n, **TIGHT)
    for stem in ("flexion", "adduction", "rotation"):
        assert np.isnan(out[f"hip_{stem}_left"]).all()
    np.testing.assert_allclose(out["pelvic_tilt"], [0.1] * n, **TIGHT)  # PELVIS is tilted by rz(-0.1)
    np.testing.assert_allclose(out["lumbar_flexion"], [0.15] * n, **TIGHT)
    np.testing.assert_allclose(out["lumbar_rotation"], [0.0] * n, **TIGHT)
    turned = qm.multiply(rz(0.5), qm.multiply(PELVIS, ry(-0.2)))  # turned to the right, own heading 0.5
    rot = a3.body_angles(t, {"pelvis": np.tile(PELVIS, (n, 1)), "lumbar_upper": np.tile(turned, (n, 1))},
                         offsets={"lumbar_upper": 0.5})["lumbar_rotation"]
    np.testing.assert_allclose(rot, [0.2] * n, **TIGHT)
    up = a3.pelvis_up(np.tile(PELVIS, (n, 1)))
    for k, c in enumerate("xyz"):
        np.testing.assert_array_equal(out[f"pelvis_up_{c}"], up[:, k])
    bare = a3.body_angles(t, {"pelvis": np.tile(PELVIS, (n, 1))})
    assert np.isnan(bare["lumbar_flexion"]).all() and np.isnan(bare["lumbar_rotation"]).all()
    bare["lumbar_flexion"][0] = 1.0
    assert np.isnan(bare["lumbar_rotation"]).all() and np.isnan(bare["hip_flexion_left"]).all()
    with pytest.raises(ValueError, match=r"^body angles need the pelvis segment$"):
        a3.body_angles(t, {"thigh_left": np.tile(PELVIS, (n, 1))})

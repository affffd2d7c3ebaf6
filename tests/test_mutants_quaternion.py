"""Quaternion helpers against an independent implementation (scipy's Rotation and Slerp) to 1e-12, plus the
exact small-angle branches, sign handling, NaN rows and interpolation limits.

Written for the survivors of ``python bench/mutation.py --group quaternion``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from hipback.processing import quaternion as qm

RNG = np.random.default_rng(13)
ROT = Rotation.random(20, random_state=7)
Q = ROT.as_quat()[:, [3, 0, 1, 2]]  # (w, x, y, z)
TIGHT = {"rtol": 0, "atol": 1e-12}
EXACT = {"rtol": 0, "atol": 1e-15}
Q2 = Rotation.random(20, random_state=8).as_quat()[:, [3, 0, 1, 2]]


def test_products_rotations_and_conversions_match_scipy() -> None:
    r2 = Rotation.from_quat(Q2[:, [1, 2, 3, 0]])
    expected = (ROT * r2).as_quat()[:, [3, 0, 1, 2]]
    got = qm.multiply(Q, Q2)
    np.testing.assert_allclose(qm.canonical(got), qm.canonical(expected), **TIGHT)
    v = RNG.normal(size=(20, 3))
    np.testing.assert_allclose(qm.rotate(Q, v), ROT.apply(v), **TIGHT)
    np.testing.assert_allclose(qm.rotate(qm.conjugate(Q), v), ROT.inv().apply(v), **TIGHT)
    np.testing.assert_allclose(qm.to_rotvec(Q), ROT.as_rotvec(), **TIGHT)
    np.testing.assert_allclose(qm.canonical(qm.from_rotvec(ROT.as_rotvec())), qm.canonical(Q), **TIGHT)
    np.testing.assert_allclose(qm.to_matrix(Q), ROT.as_matrix(), **TIGHT)
    np.testing.assert_allclose(qm.canonical(qm.from_matrix(ROT.as_matrix())), qm.canonical(Q), **TIGHT)
    axis = np.array([0.0, 3.0, 4.0])
    np.testing.assert_allclose(qm.from_axis_angle(axis, 0.5),
                               Rotation.from_rotvec(axis / 5 * 0.5).as_quat()[[3, 0, 1, 2]], **EXACT)
    np.testing.assert_allclose(qm.angle_between(Q, Q2), (ROT * r2.inv()).magnitude(), **TIGHT)
    np.testing.assert_allclose(qm.angle_between(Q, -Q), np.zeros(20), rtol=0, atol=1e-7)


def test_small_angles_and_signs_exact() -> None:
    np.testing.assert_array_equal(qm.from_rotvec([1e-13, 0.0, 0.0]), [1.0, 5e-14, 0.0, 0.0])
    np.testing.assert_array_equal(qm.from_rotvec([0.0, 0.0, 0.0]), [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(qm.to_rotvec([1.0, 5e-14, 0.0, 0.0]), [1e-13, 0.0, 0.0], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(qm.to_rotvec([1.0, 0.0, 0.0, 0.0]), [0.0, 0.0, 0.0])
    # w < 0: the same rotation, the short way
    np.testing.assert_allclose(qm.to_rotvec(-qm.from_rotvec([0.0, 0.3, 0.0])), [0.0, 0.3, 0.0], rtol=0,
                               atol=1e-15)
    np.testing.assert_array_equal(qm.canonical([[-0.5, 0.5, -0.5, 0.5], [0.0, -1.0, 0.0, 0.0]]),
                                  [[0.5, -0.5, 0.5, -0.5], [0.0, -1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(qm.conjugate([1.0, 2.0, -3.0, 4.0]), [1.0, -2.0, 3.0, -4.0])


def test_normalise_and_shape_checks() -> None:
    got = qm.normalize([[2.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(got[:2], [[1.0, 0.0, 0.0, 0.0], [0.0, 0.6, 0.0, 0.8]])
    assert np.isnan(got[2]).all()
    msg = r"^quaternion arrays need a last axis of length 4, got shape \(2, 3\)$"
    with pytest.raises(ValueError, match=msg):
        qm.as_quat(np.zeros((2, 3)))
    assert qm.as_quat([1, 0, 0, 0]).dtype == np.float64


def test_slerp_matches_scipy_inside_and_is_nan_outside() -> None:
    t_src = np.array([0.0, 0.1, 0.25, 0.4])
    q_src = Q[:4]
    t_dst = np.array([-0.01, 0.0, 0.05, 0.1, 0.2, 0.4, 0.41])
    got = qm.slerp(t_src, q_src * 2.0, t_dst)  # not unit: normalised first
    ref = Slerp(t_src, ROT[:4])(t_dst[1:6]).as_quat()[:, [3, 0, 1, 2]]
    np.testing.assert_allclose(qm.canonical(got[1:6]), qm.canonical(ref), **TIGHT)
    assert np.isnan(got[[0, 6]]).all()
    one = qm.slerp([0.5], [q_src[1]], [0.4, 0.5, 0.6])
    np.testing.assert_allclose(one[1], q_src[1], **EXACT)
    assert np.isnan(one[[0, 2]]).all()
    assert np.isnan(qm.slerp([], np.zeros((0, 4)), [0.0])).all()
    # consecutive samples of opposite sign: the short way
    mid = qm.slerp([0.0, 1.0], [qm.from_rotvec([0.0, 0.0, 0.2]), -qm.from_rotvec([0.0, 0.0, 0.4])], [0.5])
    np.testing.assert_allclose(qm.to_rotvec(mid), [[0.0, 0.0, 0.3]], **EXACT)
    # repeated time stamps: the first sample's value
    rep = qm.slerp([0.0, 1.0, 1.0, 2.0], Q[:4], [1.0])
    assert np.isfinite(rep).all()


def test_single_quaternions_and_broadcasting() -> None:
    q = Q[0]
    assert qm.to_matrix(q).shape == (3, 3)
    np.testing.assert_allclose(qm.to_matrix(q), ROT[0].as_matrix(), **TIGHT)
    assert qm.angle_between(Q[0], Q2[0]).shape == ()
    assert float(qm.angle_between(Q[0], Q2[0])) == pytest.approx(
        (ROT[0] * Rotation.from_quat(Q2[0, [1, 2, 3, 0]]).inv()).magnitude(), abs=1e-12)
    v = RNG.normal(size=(5, 3))
    np.testing.assert_allclose(qm.rotate(q, v), ROT[0].apply(v), **TIGHT)  # one rotation, many vectors
    axes = np.array([[0.0, 0.0, 2.0], [3.0, 0.0, 0.0]])
    got = qm.from_axis_angle(axes, np.array([0.5, 1.0]))
    ref = Rotation.from_rotvec([[0.0, 0.0, 0.5], [1.0, 0.0, 0.0]]).as_quat()[:, [3, 0, 1, 2]]
    np.testing.assert_allclose(got, ref, **EXACT)


def test_slerp_at_a_repeated_last_time_takes_the_first_of_the_two() -> None:
    a, b, c = qm.from_rotvec([[0.0, 0.0, 0.1], [0.0, 0.0, 0.2], [0.0, 0.0, 0.3]])
    got = qm.slerp([0.0, 1.0, 1.0], [a, b, c], [1.0])
    np.testing.assert_allclose(got, [b], **EXACT)

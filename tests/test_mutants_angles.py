"""Body angles with exact expectations from their definitions (``processing/angles.py``): the sign of every
angle for a known rotation of each segment, heading independence, the unsigned pelvis inclination, the
dynamic acceleration and the causal motion average.

Written for the survivors of ``python bench/mutation.py --group angles``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.angles import (
    GRAVITY,
    MOTION_WINDOW_S,
    MotionSmoother,
    compute_angles,
    dynamic_acceleration,
    long_axis_inclination,
    sagittal_inclination,
)

# Segment frames are ISB (X anterior, Y superior, Z right); standing neutral: X = world x, Y = world z.
NEUTRAL = qm.from_rotvec([math.pi / 2, 0.0, 0.0])  # segment Y (superior) onto world Z (up)


def seg(flexion: float, heading: float = 0.0) -> np.ndarray:
    """A segment flexed by ``flexion`` rad about its own Z (flexion positive), then turned about world up."""
    local = qm.multiply(NEUTRAL, qm.from_rotvec([0.0, 0.0, flexion]))
    return qm.multiply(qm.from_rotvec([0.0, 0.0, heading]), local)


@pytest.mark.parametrize("flexion", [-1.2, -0.3, 0.0, 0.4, 1.5, 2.5])
@pytest.mark.parametrize("heading", [0.0, 1.0, -2.5])
def test_sagittal_inclination_is_the_flexion_whatever_the_heading(flexion: float, heading: float) -> None:
    assert sagittal_inclination(seg(flexion, heading)) == pytest.approx(flexion, abs=1e-12)
    assert long_axis_inclination(seg(flexion, heading)) == pytest.approx(abs(flexion), abs=1e-12)


def test_every_angle_sign_for_known_segment_rotations() -> None:
    n = 3
    t = np.arange(n) * 0.01
    segs = {
        "pelvis": np.tile(seg(-0.2), (n, 1)),  # long axis forward = negative about +Z: anterior tilt +0.2
        "thigh_left": np.tile(seg(0.5), (n, 1)),
        "thigh_right": np.tile(seg(-0.1, heading=0.7), (n, 1)),
        "lumbar_upper": np.tile(seg(-0.35), (n, 1)),
    }
    a = compute_angles(t, segs, pelvis_motion=np.array([0.1, 0.2, 0.3]),
                       pelvis_acc_vertical=np.array([1, 2, 3]))
    np.testing.assert_array_equal(a.t, t)
    np.testing.assert_allclose(a.pelvic_tilt, [0.2] * n, rtol=0, atol=1e-12)  # tilt = -theta_pelvis
    np.testing.assert_allclose(a.thigh_inclination_left, [0.5] * n, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.thigh_inclination_right, [-0.1] * n, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.hip_flexion_left, [0.7] * n, rtol=0, atol=1e-12)  # thigh - pelvis
    np.testing.assert_allclose(a.hip_flexion_right, [0.1] * n, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.lumbar_flexion, [0.15] * n, rtol=0, atol=1e-12)  # pelvis - lumbar
    np.testing.assert_allclose(a.pelvis_inclination, [0.2] * n, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.pelvis_motion, [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(a.pelvis_acc_vertical, [1.0, 2.0, 3.0])
    assert a.pelvis_acc_vertical.dtype == np.float64


def test_missing_segments_give_nan_angles() -> None:
    t = np.arange(2) * 0.01
    a = compute_angles(t, {"pelvis": np.tile(seg(0.1), (2, 1)), "thigh_left": None})
    assert np.isnan(a.hip_flexion_left).all() and np.isnan(a.lumbar_flexion).all()
    assert np.isnan(a.pelvis_motion).all() and a.pelvis_motion.shape == (2,) and a.pelvis_acc_vertical is None
    np.testing.assert_allclose(a.pelvic_tilt, [-0.1, -0.1], rtol=0, atol=1e-12)
    b = compute_angles(t, {"thigh_left": np.tile(seg(0.3), (2, 1))})
    assert np.isnan(b.pelvis_inclination).all() and np.isnan(b.pelvic_tilt).all()
    np.testing.assert_allclose(b.thigh_inclination_left, [0.3, 0.3], rtol=0, atol=1e-12)
    b.pelvis_inclination[0] = 1.0  # its own array, not shared with another field
    assert np.isnan(b.pelvis_motion).all()


def test_dynamic_acceleration_removes_gravity_in_the_world() -> None:
    q = qm.from_rotvec([[0.0, 0.0, 0.0], [math.pi / 2, 0.0, 0.0]])
    acc = np.array([[3.0, 0.0, GRAVITY], [0.0, GRAVITY, 4.0]])  # sensor 2 has its y axis up
    np.testing.assert_allclose(dynamic_acceleration(q, acc), [3.0, 4.0], rtol=0, atol=1e-12)
    assert GRAVITY == 9.81 and MOTION_WINDOW_S == 0.5


def test_motion_smoother_is_a_causal_mean_over_its_window() -> None:
    s = MotionSmoother(3)
    out = s.update([1.0, 2.0])
    assert np.isnan(out).all() and len(out) == 2
    np.testing.assert_array_equal(s.update([3.0, 6.0, np.nan, 9.0, 12.0, 15.0]),
                                  [2.0, 11 / 3, np.nan, np.nan, np.nan, 12.0])
    assert len(s.update([])) == 0
    one = MotionSmoother(0)  # at least one sample
    assert one.window == 1 and one.update([4.0, 5.0]).tolist() == [4.0, 5.0]
    assert one.update([6.0]).tolist() == [6.0]
    two = MotionSmoother(2)
    np.testing.assert_array_equal(two.update([1.0, 2.0]), [np.nan, 1.5])
    assert two.update([3.0]).tolist() == [2.5]  # the previous chunk's last sample is kept
    assert float(dynamic_acceleration(qm.from_rotvec([0.0, 0.0, 0.0]), [0.0, 0.0, GRAVITY + 2.0])) == 2.0


def test_joint_angles_wrap_into_minus_pi_to_pi() -> None:
    from hipback.processing.angles import joint_angle

    got = joint_angle(np.array([3.0, -3.0, 0.5, math.pi, 1.0]),
                      np.array([-3.0, 3.0, 0.2, 0.0, 1.0 + math.pi]))
    np.testing.assert_allclose(got, [6.0 - 2 * math.pi, 2 * math.pi - 6.0, 0.3, math.pi, math.pi],
                               rtol=0, atol=1e-15)
    assert joint_angle(np.array([0.3]), np.array([0.1]))[0] == 0.3 - 0.1  # in range: unchanged
    assert joint_angle(np.array([-math.pi]), np.array([0.0]))[0] == math.pi  # -pi alone is out of (-pi, pi]

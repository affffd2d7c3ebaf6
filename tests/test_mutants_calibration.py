"""Sensor-to-segment calibration on noise-free synthetic orientations, where the results follow exactly (or to
rounding) from the definitions in ``processing/calibration.py``: the frames and axes, the angular velocity,
the functional and swing-plane axes, the pelvis axis from walking, the sign score, every quality deduction
and flag of :func:`calibrate_sensor` on both sides of its threshold, and the standing finder.

Conventions of the synthetic sessions (as in ``tests/synth_processing.py``): world Z up; a segment standing
neutral has X anterior (heading 0.3 rad), Y up, Z right; a thigh's hip flexion is a rotation about the
segment's Z; a sensor's x is superior and its z out of the skin.

Written for the survivors of ``python bench/mutation.py --group calibration``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.calibration import (
    CalibrationSettings,
    FunctionalAxis,
    SensorCalibration,
    StandingFinder,
    _ml_uncertainty,
    angular_velocity,
    axis_angle_deg,
    calibrate_sensor,
    frame_from_axes,
    functional_axis,
    mean_direction,
    plane_axis,
    prior_ml_axis,
    sign_score,
    up_in_sensor,
    walking_ml_axis,
)
from tests.synth_processing import base, gait_hip, nominal_mounting

D = math.pi / 180.0
FS = 100.0
EX, EY, EZ = np.eye(3)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two directions (signed: a and -a are 180 deg apart)."""
    c = float(a @ b) / float(np.linalg.norm(a) * np.linalg.norm(b))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def seg_axis(cal: SensorCalibration, axis: np.ndarray) -> np.ndarray:
    """A segment axis (X, Y or Z) in sensor coordinates."""
    return qm.rotate(cal.q_segment_in_sensor, axis)


def mounting(x_seg: np.ndarray, z_seg: np.ndarray) -> np.ndarray:
    """Sensor-to-segment quaternion of a sensor whose x and z point along the given segment directions."""
    x, z = np.asarray(x_seg, float), np.asarray(z_seg, float)
    return qm.from_matrix(np.column_stack([x, np.cross(z, x), z]))


def thigh(hip: np.ndarray, mount: np.ndarray, n_stand: int = 300, heading: float = 0.3):
    """Standing and movement orientations (sensor-to-world) of a thigh sensor with ``mount``
    (sensor-to-segment) whose hip flexion follows ``hip`` (rad) after ``n_stand`` samples of standing."""
    b = base(heading)
    stand = np.repeat(qm.multiply(b, mount)[None], n_stand, axis=0)
    seg = qm.multiply(b, qm.from_axis_angle(EZ, hip))
    return stand, qm.multiply(seg, mount)


def gait(seconds: float = 10.0, flex: float = 30.0, ext: float = 15.0, stride: float = 1.1) -> np.ndarray:
    """Hip flexion of walking (rad): slow extension in stance, fast flexion in swing."""
    t = np.arange(int(round(seconds * FS))) / FS
    return gait_hip(t / stride, flex * D, ext * D)


def swing(seconds: float = 10.0, amp: float = 20.0, offset: float = 0.0, period: float = 1.0) -> np.ndarray:
    """Symmetric sinusoidal leg swing (rad): neither the range nor the speed tells the flexion side."""
    t = np.arange(int(round(seconds * FS))) / FS
    return (offset + amp * np.sin(2 * np.pi * t / period)) * D


def truth_z(mount: np.ndarray) -> np.ndarray:
    """The segment's Z (right) axis in sensor coordinates for a sensor with ``mount``."""
    return qm.rotate(qm.conjugate(mount), EZ)


# -- SensorCalibration --------------------------------------------------------------------------------------
def test_sensor_calibration_defaults_and_rotations() -> None:
    q_c = qm.from_axis_angle([1.0, 2.0, 2.0], 0.7)
    a = SensorCalibration("thigh_left", q_c, 0.5)
    b = SensorCalibration("thigh_right", q_c, 0.5)
    assert a.reasons == [] and a.flags == [] and a.reasons is not b.reasons and a.flags is not b.flags
    assert a.method == "standing+prior" and a.face == ""
    assert math.isnan(a.window[0]) and math.isnan(a.window[1]) and math.isnan(a.ml_uncertainty_deg)
    np.testing.assert_allclose(a.q_sensor_to_segment, qm.conjugate(q_c), atol=0)
    q_s = qm.from_axis_angle([[0.0, 1.0, 0.0], [3.0, 0.0, 1.0]], [0.4, -1.1])
    np.testing.assert_allclose(a.segment_quat(q_s), qm.multiply(q_s, q_c), atol=1e-15)
    # the order matters: sensor-to-world first, then the segment in the sensor
    assert not np.allclose(a.segment_quat(q_s), qm.multiply(q_c, q_s), atol=1e-3)


def test_sensor_calibration_to_dict() -> None:
    q_c = np.array([0.5, -0.5, 0.5, 0.5])
    cal = SensorCalibration("pelvis", q_c, 0.87654, ["r1"], ["upside_down"], "standing+walking",
                            (1.5, 4.25), "posterior", 3.14159)
    d = cal.to_dict()
    assert d == {
        "placement": "pelvis",
        "q_segment_in_sensor": [0.5, -0.5, 0.5, 0.5],
        "quality": 0.877,
        "reasons": ["r1"],
        "flags": ["upside_down"],
        "method": "standing+walking",
        "window_s": [1.5, 4.25],
        "face": "posterior",
        "ml_uncertainty_deg": 3.1,
    }
    assert all(type(v) is float for v in d["q_segment_in_sensor"]) and type(d["quality"]) is float
    d["reasons"].append("x")
    d["flags"].append("y")
    assert cal.reasons == ["r1"] and cal.flags == ["upside_down"]
    empty = SensorCalibration("thigh_left", q_c, 1.0).to_dict()
    assert empty["ml_uncertainty_deg"] is None and empty["reasons"] == [] and empty["flags"] == []
    assert all(math.isnan(v) for v in empty["window_s"]) and empty["method"] == "standing+prior"
    inf = SensorCalibration("x", q_c, 1.0, ml_uncertainty_deg=math.inf)
    assert inf.to_dict()["ml_uncertainty_deg"] is None


# -- frames and vectors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 4])
def test_up_in_sensor_is_the_world_vertical_in_sensor_coordinates(n: int) -> None:
    angles = np.linspace(0.2, 1.3, n)
    q = qm.from_axis_angle(EX, angles)  # sensor-to-world: the sensor rolled about its x axis
    up = up_in_sensor(q)
    assert up.shape == (n, 3)
    np.testing.assert_allclose(up, np.column_stack([np.zeros(n), np.sin(angles), np.cos(angles)]), atol=1e-15)
    q = qm.from_axis_angle([0.3, -0.5, 0.8], np.linspace(-2.0, 2.0, n))
    np.testing.assert_allclose(up_in_sensor(q), qm.rotate(qm.conjugate(q), EZ), atol=1e-15)


def _rand_quats(n: int, seed: int) -> np.ndarray:
    return qm.normalize(np.random.default_rng(seed).normal(size=(n, 4)))


@pytest.mark.parametrize("rate", [50.0, 200.0])
def test_angular_velocity_is_twice_the_vector_part_of_the_step(rate: float) -> None:
    q = _rand_quats(7, 1)
    w = angular_velocity(q, rate)
    assert w.shape == (7, 3) and np.isnan(w[0]).all()
    d = qm.multiply(qm.conjugate(q[:-1]), q[1:])
    d = np.where(d[:, :1] < 0, -d, d)  # the short way round
    np.testing.assert_allclose(w[1:], 2.0 * rate * d[:, 1:], atol=1e-12)
    q_prev = _rand_quats(1, 2)[0]
    w_prev = angular_velocity(q, rate, q_prev)
    np.testing.assert_allclose(w_prev[1:], w[1:], atol=0)
    d0 = qm.multiply(qm.conjugate(q_prev), q[0])
    d0 = d0 if d0[0] >= 0 else -d0
    np.testing.assert_allclose(w_prev[0], 2.0 * rate * d0[1:], atol=1e-12)
    # q and -q are the same orientation: the same angular velocity
    flipped = q * np.array([1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0])[:, None]
    np.testing.assert_allclose(angular_velocity(flipped, rate, q_prev), w_prev, atol=1e-12)


def test_angular_velocity_accepts_integer_quaternions() -> None:
    w = angular_velocity([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], 10.0)
    assert np.isnan(w[0]).all()
    np.testing.assert_allclose(w[1:], [[0.0, 0.0, 0.0], [0.0, 0.0, 20.0]], atol=0)


def test_angular_velocity_of_a_steady_turn() -> None:
    """A steady turn of 0.1 rad per sample about a fixed sensor axis: 2 sin(0.05) * rate along the axis."""
    axis = np.array([2.0, -1.0, 2.0]) / 3.0
    q0 = qm.from_axis_angle([0.3, 0.2, -0.9], 1.2)
    q = qm.multiply(q0, qm.from_axis_angle(axis, 0.1 * np.arange(5)))
    w = angular_velocity(q, 100.0)
    np.testing.assert_allclose(w[1:], np.tile(axis * 200.0 * math.sin(0.05), (4, 1)), atol=1e-12)
    assert angular_velocity(np.zeros((0, 4)), 100.0).shape == (0, 3)
    one = angular_velocity(q[:1], 100.0, q0)
    np.testing.assert_allclose(one, [[0.0, 0.0, 0.0]], atol=1e-15)


def test_frame_from_axes_orthonormalises_the_hint() -> None:
    y = np.array([0.2, 2.0, -0.4])
    z_hint = np.array([0.3, 0.5, 3.0])
    q = frame_from_axes(y, z_hint)
    y_u = y / np.linalg.norm(y)
    z_u = z_hint - (z_hint @ y_u) * y_u
    z_u = z_u / np.linalg.norm(z_u)
    np.testing.assert_allclose(qm.rotate(q, EY), y_u, atol=1e-14)
    np.testing.assert_allclose(qm.rotate(q, EZ), z_u, atol=1e-14)
    np.testing.assert_allclose(qm.rotate(q, EX), np.cross(y_u, z_u), atol=1e-14)
    assert q[0] >= 0 and abs(np.linalg.norm(q) - 1.0) < 1e-15
    # a frame whose quaternion comes out with a negative scalar part is returned with w >= 0
    q2 = frame_from_axes(np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, -1.0]) + [0.1, 0.0, 0.0])
    assert q2[0] >= 0
    np.testing.assert_allclose(qm.rotate(q2, EY), [0.0, -1.0, 0.0], atol=1e-14)


def test_mean_direction_and_rms_spread() -> None:
    u0 = np.array([0.0, 0.6, 0.8])
    rot = qm.from_axis_angle(EX, np.array([0.1, -0.1, 0.0, 0.1, -0.1, 0.0]))
    v = qm.rotate(rot, u0) * np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])[:, None]
    v = np.vstack([v, [np.nan, 0.0, 0.0], [0.0, np.nan, np.nan]])
    u, spread = mean_direction(v)
    np.testing.assert_allclose(u, u0, atol=1e-15)
    assert spread == pytest.approx(0.1 * math.sqrt(4 / 6), rel=1e-9)
    assert isinstance(spread, float)
    # identical directions: no spread
    same = np.tile(np.array([0.48, 0.6, 0.64]) / np.linalg.norm([0.48, 0.6, 0.64]), (9, 1))
    u, spread = mean_direction(same * 3.0)
    np.testing.assert_allclose(u, same[0], atol=1e-15)
    assert spread == pytest.approx(0.0, abs=1e-7)


def test_mean_direction_clips_dot_products_above_one() -> None:
    v = np.tile([0.7696741376445092, 0.0800898974604638, -0.6333935034131261], (4, 1))
    u = v.mean(axis=0) / np.linalg.norm(v.mean(axis=0))
    assert (v @ u > 1.0).all()  # rounding: the arc cosine alone would be NaN
    assert mean_direction(v)[1] == 0.0
    # a row exactly opposite the mean is pi away, even when its dot product rounds below -1
    v = np.array([[-0.8967022761251738, -0.4416644114201207, 0.029284393059288184]] * 3)
    v = np.vstack([v, -v[0]])
    u = v.mean(axis=0) / np.linalg.norm(v.mean(axis=0))
    assert (v @ u)[-1] < -1.0
    assert mean_direction(v)[1] == pytest.approx(math.pi / 2, rel=1e-12)


def test_axis_angle_ignores_the_sign() -> None:
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([math.cos(0.3), math.sin(0.3), 0.0])
    assert axis_angle_deg(a, b) == pytest.approx(math.degrees(0.3), rel=1e-12)
    assert axis_angle_deg(a, -b) == pytest.approx(math.degrees(0.3), rel=1e-12)
    assert axis_angle_deg(-a, b) == pytest.approx(math.degrees(0.3), rel=1e-12)
    assert isinstance(axis_angle_deg(a, b), float)
    c = np.array([0.6, 0.8, 0.0])
    assert axis_angle_deg(c * (1 + 1e-15), c * (1 + 1e-15)) == 0.0  # rounding above 1 is clipped


# -- placement prior ----------------------------------------------------------------------------------------
def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("up", [EX, _unit([0.9, 0.3, -0.2]), _unit([0.8, -0.1, 0.5])])
def test_prior_ml_axis_per_placement_and_face(up: np.ndarray) -> None:
    n = _unit(EZ - up[2] * up)  # sensor z (out of the skin) made horizontal
    np.testing.assert_allclose(prior_ml_axis("thigh_right", up, "lateral"), n, atol=1e-15)
    np.testing.assert_allclose(prior_ml_axis("thigh_left", up, "lateral"), -n, atol=1e-15)
    ant = _unit(np.cross(n, up))
    np.testing.assert_allclose(prior_ml_axis("thigh_left", up, "anterior"), ant, atol=1e-15)
    np.testing.assert_allclose(prior_ml_axis("thigh_right", up, "anterior"), ant, atol=1e-15)
    for p in ("pelvis", "lumbar_upper"):
        np.testing.assert_allclose(prior_ml_axis(p, up, "posterior"), _unit(np.cross(-n, up)), atol=1e-15)
        np.testing.assert_allclose(prior_ml_axis(p, up, "lateral"), _unit(np.cross(-n, up)), atol=1e-15)
    for p, f in (("thigh_right", "lateral"), ("pelvis", "posterior"), ("thigh_left", "anterior")):
        ax = prior_ml_axis(p, up, f)
        assert abs(np.linalg.norm(ax) - 1.0) < 1e-15 and abs(ax @ up) < 1e-15


def test_prior_ml_axis_for_the_nominal_mountings() -> None:
    """The prior is exact for a sensor mounted as the placement guide says."""
    for p, face in (("thigh_left", "lateral"), ("thigh_right", "lateral"), ("thigh_left", "anterior"),
                    ("pelvis", "lateral"), ("lumbar_upper", "lateral")):
        m = nominal_mounting(p, face)
        up = qm.rotate(qm.conjugate(m), EY)
        f = "posterior" if p in ("pelvis", "lumbar_upper") else face
        np.testing.assert_allclose(prior_ml_axis(p, up, f), truth_z(m), atol=1e-15)


@pytest.mark.parametrize("tilt,fallback", [(math.asin(0.19), True), (math.asin(0.21), False)])
def test_prior_ml_axis_falls_back_to_sensor_y_when_z_is_near_vertical(tilt: float, fallback: bool) -> None:
    up = _unit(qm.rotate(qm.from_axis_angle([0.6, 0.8, 0.0], tilt), EZ))  # z within 'tilt' of vertical
    assert up[1] != 0.0
    n = _unit(EY - up[1] * up) if fallback else _unit(EZ - up[2] * up)
    np.testing.assert_allclose(prior_ml_axis("thigh_right", up, "lateral"), n, atol=1e-14)
    np.testing.assert_allclose(prior_ml_axis("pelvis", up, "posterior"), _unit(np.cross(-n, up)), atol=1e-14)


# -- functional axis ----------------------------------------------------------------------------------------
def test_functional_axis_pca_of_the_fast_horizontal_rotation() -> None:
    up = _unit([1.0, 0.2, -0.1])
    a = _unit(np.cross(up, [0.0, 0.3, 1.0]))  # horizontal
    b = np.cross(up, a)  # horizontal, perpendicular to a
    s = np.array([2.0, -2.0, 1.5, -1.5, 3.0, -3.0])
    r = np.array([0.5, 0.5, -0.5, -0.5, 0.0, 0.0])
    w = np.outer(s, a) + np.outer(r, b) + np.outer(np.arange(6) * 7.0, up)  # vertical parts are ignored
    slow = np.outer([0.79, -0.3], a)
    w = np.vstack([w[:3], [np.nan, 1.0, 1.0], slow, w[3:], [5.0, np.nan, 0.0]])
    fa = functional_axis(w, up, 0.8, 6)
    assert isinstance(fa, FunctionalAxis) and fa.n_samples == 6
    assert abs(float(fa.axis @ a)) == pytest.approx(1.0, abs=1e-14)
    assert abs(np.linalg.norm(fa.axis) - 1.0) < 1e-14
    expected = np.mean(s**2) / np.mean(r**2)
    assert fa.ratio == pytest.approx(expected, rel=1e-12) and isinstance(fa.ratio, float)
    assert functional_axis(w, up, 0.8, 7) is None  # one sample short
    assert functional_axis(w, up, 0.8, 5) is not None


def test_functional_axis_rate_limit_is_strict() -> None:
    up = EX
    w = np.array([[0.0, 0.0, 0.8], [0.0, 0.0, -0.81], [0.0, 0.0, 1.0], [0.0, 0.0, -0.79]])
    fa = functional_axis(w, up, 0.8, 1)
    assert fa is not None and fa.n_samples == 2  # 0.8 itself is not faster than 0.8
    assert functional_axis(w, up, 0.805, 2) is not None
    assert functional_axis(w, up, 0.81, 2) is None


def test_functional_axis_ratio_of_a_pure_rotation_is_bounded() -> None:
    """All rows about one axis: the second eigenvalue is 0 and the ratio is the first over 1e-12."""
    w = np.outer([1.0, -2.0, 3.0, -1.0], EZ)
    fa = functional_axis(w, EX, 0.5, 4)
    assert fa is not None
    np.testing.assert_allclose(np.abs(fa.axis), EZ, atol=0)
    assert fa.ratio == pytest.approx(np.mean([1.0, 4.0, 9.0, 1.0]) / 1e-12, rel=1e-12)


# -- swing plane --------------------------------------------------------------------------------------------
def _swing_quats(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Sensor-to-world quaternions of a sensor (x up when still) turning about its own ``axis``."""
    q0 = qm.from_axis_angle(EY, -math.pi / 2)  # sensor x -> world z
    return qm.multiply(q0, qm.from_axis_angle(axis, angles))


@pytest.mark.parametrize("amp_deg,found", [(5.2, True), (4.8, False)])
def test_plane_axis_needs_a_swing_of_five_degrees(amp_deg: float, found: bool) -> None:
    axis = _unit([0.0, 0.6, 0.8])  # perpendicular to the sensor's x (vertical when still)
    angles = np.tile([amp_deg * D, -amp_deg * D], 10)
    pa = plane_axis(_swing_quats(axis, angles))
    if found:
        assert pa is not None and abs(float(pa @ axis)) == pytest.approx(1.0, abs=1e-12)
        assert abs(np.linalg.norm(pa) - 1.0) < 1e-14
    else:
        assert pa is None
    # the limit is a parameter (rad)
    assert (plane_axis(_swing_quats(axis, angles), (amp_deg - 0.3) * D) is None) is False
    assert plane_axis(_swing_quats(axis, angles), (amp_deg + 0.3) * D) is None


def test_plane_axis_needs_ten_valid_samples() -> None:
    axis = _unit([0.0, 0.6, 0.8])
    q = _swing_quats(axis, np.tile([20 * D, -20 * D], 5))
    assert plane_axis(q) is not None
    assert plane_axis(q[:9]) is None
    q_nan = q.copy()
    q_nan[4] = np.nan
    assert plane_axis(q_nan) is None  # 9 valid
    q_nan = np.vstack([q, [[np.nan] * 4]])
    pa = plane_axis(q_nan)
    assert pa is not None and abs(float(pa @ axis)) == pytest.approx(1.0, abs=1e-12)


def test_plane_axis_without_movement_is_none() -> None:
    for k in range(8):
        q = np.repeat(qm.from_axis_angle(_unit([1.0, k, 2.0]), 0.3 * k + 0.1)[None], 12 + k, axis=0)
        assert plane_axis(q) is None


# -- sign score ---------------------------------------------------------------------------------------------
def _incl_quats(theta: np.ndarray, q_c: np.ndarray) -> np.ndarray:
    """Sensor-to-world quaternions whose segment (``q_sensor * q_c``) has sagittal inclination ``theta``."""
    return qm.multiply(qm.multiply(base(0.0), qm.from_axis_angle(EZ, theta)), qm.conjugate(q_c))


def _score(hi: float, lo: float, whi: float, wlo: float) -> float:
    asym = (hi + lo) / max(hi - lo, 1e-6)
    return 2.0 * asym + float(np.clip(math.log(max(whi, 1e-3) / max(-wlo, 1e-3)), -2.0, 2.0))


def test_sign_score_range_and_speed_asymmetry() -> None:
    """On linear ramps the percentiles are exact: p98/p2 of the inclination, p99/p1 of the rate."""
    n = 101
    th = np.linspace(-0.2, 0.4, n)
    q_c = qm.from_axis_angle(EY, math.pi / 2)  # the segment's Z is the sensor's x
    q_s = _incl_quats(th, q_c)
    omega = np.zeros((n, 3))
    omega[:, 0] = np.linspace(-1.0, 3.0, n)  # about the segment's Z
    omega[:, 2] = np.linspace(5.0, -9.0, n)  # about other axes: not read
    omega[:, 1] = 7.0
    s = sign_score(q_s, omega, q_c, FS)
    assert isinstance(s, float)
    assert s == pytest.approx(_score(-0.2 + 0.98 * 0.6, -0.2 + 0.02 * 0.6, -1.0 + 0.99 * 4, -1.0 + 0.01 * 4),
                              rel=1e-12)
    # reversed: negative
    s_rev = sign_score(_incl_quats(-th, q_c), -omega, q_c, FS)
    assert s_rev == pytest.approx(-s, rel=1e-12)


def test_sign_score_ignores_missing_rows_and_needs_ten() -> None:
    n = 40
    th = np.linspace(-0.1, 0.5, n)
    q_c = qm.IDENTITY
    q_s = _incl_quats(th, q_c)
    omega = np.zeros((n, 3))
    omega[:, 2] = np.linspace(-0.5, 2.5, n)
    base_score = sign_score(q_s, omega, q_c, FS)
    assert base_score == pytest.approx(
        _score(-0.1 + 0.98 * 0.6, -0.1 + 0.02 * 0.6, -0.5 + 0.99 * 3, -0.5 + 0.01 * 3), rel=1e-12)
    q_nan, w_nan = np.vstack([q_s, np.full((5, 4), np.nan)]), np.vstack([omega, np.full((5, 3), np.nan)])
    w_nan[-1, 2] = 50.0  # a row with a NaN elsewhere is dropped whole
    assert sign_score(q_nan, w_nan, q_c, FS) == pytest.approx(base_score, rel=1e-12)
    ten = slice(0, 10)
    assert sign_score(q_s[ten], omega[ten], q_c, FS) != 0.0
    assert sign_score(q_s[:9], omega[ten], q_c, FS) == 0.0
    assert sign_score(q_s[ten], omega[:9], q_c, FS) == 0.0
    q9 = q_s[ten].copy()
    q9[3] = np.nan
    assert sign_score(q9, omega[ten], q_c, FS) == 0.0
    w9 = omega[ten].copy()
    w9[3, 0] = np.nan
    assert sign_score(q_s[ten], w9, q_c, FS) == 0.0


def test_sign_score_guards_and_speed_clip() -> None:
    n = 101
    q_c = qm.IDENTITY
    th = np.linspace(-0.2, 0.4, n)
    q_s = _incl_quats(th, q_c)
    asym = 2.0 * ((-0.2 + 0.98 * 0.6) + (-0.2 + 0.02 * 0.6)) / (0.96 * 0.6)

    def w(lo: float, hi: float) -> np.ndarray:  # rates about the segment's Z: p99 and p1 are exact
        out = np.zeros((n, 3))
        out[:, 2] = np.linspace(lo, hi, n)
        return out

    def p(lo: float, hi: float, q: float) -> float:
        return lo + q * (hi - lo)

    assert sign_score(q_s, w(0.5, 3.0), q_c, FS) == pytest.approx(asym + 2.0, rel=1e-12)  # no backward rate
    assert sign_score(q_s, w(-3.0, -0.5), q_c, FS) == pytest.approx(asym - 2.0, rel=1e-12)
    # rates below 1e-3 rad/s count as 1e-3
    assert sign_score(q_s, w(-0.003, 0.0), q_c, FS) == pytest.approx(
        asym + math.log(1e-3 / -p(-0.003, 0.0, 0.01)), rel=1e-9)
    assert sign_score(q_s, w(0.0, 0.004), q_c, FS) == pytest.approx(
        asym + math.log(p(0.0, 0.004, 0.99) / 1e-3), rel=1e-9)
    assert sign_score(q_s, w(-0.0025, 0.0041), q_c, FS) == pytest.approx(
        asym + math.log(p(-0.0025, 0.0041, 0.99) / -p(-0.0025, 0.0041, 0.01)), rel=1e-9)
    # no inclination range: the range term is 2 * mean / 1e-6
    q_flat = _incl_quats(np.full(n, 1e-7), q_c)
    assert sign_score(q_flat, w(-1.0, 1.0), q_c, FS) == pytest.approx(2.0 * 2e-7 / 1e-6, rel=1e-6)


# -- settings -----------------------------------------------------------------------------------------------
def test_default_settings() -> None:
    s = CalibrationSettings()
    assert (s.still_gyr_rad_s, s.min_standing_s, s.max_standing_s) == (0.2, 3.0, 5.0)
    assert s.max_x_tilt_rad == pytest.approx(45 * D, rel=1e-15)
    assert (s.motion_gyr_rad_s, s.min_motion_s, s.ml_wait_s, s.sign_margin) == (0.8, 2.0, 20.0, 0.3)
    assert s.misplacement_rad == pytest.approx(30 * D, rel=1e-15) and s.ml_disagreement_deg == 10.0


# -- calibrate_sensor: thighs -------------------------------------------------------------------------------
def check_frame(cal: SensorCalibration, mount: np.ndarray, tol_deg: float = 1e-6) -> None:
    """The calibrated segment axes are the true ones (Y up, Z right) in sensor coordinates."""
    assert angle_deg(seg_axis(cal, EY), qm.rotate(qm.conjugate(mount), EY)) < tol_deg
    assert angle_deg(seg_axis(cal, EZ), truth_z(mount)) < tol_deg


@pytest.mark.parametrize("side", ["thigh_left", "thigh_right"])
@pytest.mark.parametrize("face", ["lateral", "anterior"])
def test_thigh_walking_gives_the_exact_frame(side: str, face: str) -> None:
    m = nominal_mounting(side, face)
    stand, motion = thigh(gait(), m)
    cal = calibrate_sensor(side, stand, motion, FS, (1.25, 4.5))
    check_frame(cal, m)
    assert (cal.placement, cal.method, cal.face) == (side, "standing+functional", face)
    assert cal.window == (1.25, 4.5)
    assert (cal.quality, cal.reasons, cal.flags) == (1.0, [], [])
    assert 0.0 <= cal.ml_uncertainty_deg < 1e-3
    assert cal.q_segment_in_sensor[0] >= 0.0
    # the same without settings given: the defaults
    cal2 = calibrate_sensor(side, stand, motion, FS, (1.25, 4.5), CalibrationSettings())
    np.testing.assert_allclose(cal2.q_segment_in_sensor, cal.q_segment_in_sensor, atol=0)


@pytest.mark.parametrize("yaw_deg,flagged", [(25.0, False), (35.0, True)])
def test_thigh_sensor_rotated_beyond_the_misplacement_limit(yaw_deg: float, flagged: bool) -> None:
    # turned about its x axis (the thigh's long axis)
    m = qm.multiply(nominal_mounting("thigh_left"), qm.from_axis_angle(EX, yaw_deg * D))
    stand, motion = thigh(gait(), m)
    cal = calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0))
    check_frame(cal, m)
    assert cal.face == "lateral" and cal.flags == []
    if flagged:
        assert cal.reasons == ["sensor rotated 35 deg from a lateral placement"] and cal.quality == 0.9
    else:
        assert cal.reasons == [] and cal.quality == 1.0
    # the limit is the setting
    for limit, expect in ((yaw_deg - 0.5, True), (yaw_deg + 0.5, False)):
        s = CalibrationSettings(misplacement_rad=limit * D)
        assert (calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0), s).quality < 1.0) is expect


@pytest.mark.parametrize("yaw_deg,face", [(40.0, "lateral"), (50.0, "anterior")])
def test_thigh_face_is_the_closer_prior(yaw_deg: float, face: str) -> None:
    m = qm.multiply(nominal_mounting("thigh_right"), qm.from_axis_angle(EX, -yaw_deg * D))
    stand, motion = thigh(gait(), m)
    cal = calibrate_sensor("thigh_right", stand, motion, FS, (0.0, 3.0))
    check_frame(cal, m)
    off = min(yaw_deg, 90.0 - yaw_deg)
    assert cal.face == face
    assert cal.reasons[0] == f"sensor rotated {off:.0f} deg from a {face} placement"


def test_sensor_on_the_other_leg_is_flagged_and_its_sign_comes_from_the_movement() -> None:
    m = nominal_mounting("thigh_right")  # a right-thigh sensor worn on the left thigh
    stand, motion = thigh(gait(), m)
    cal = calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0))
    check_frame(cal, m)
    assert cal.flags == ["wrong_side"] and cal.quality == 0.7 and cal.face == "lateral"
    assert cal.reasons == ["sensor faces medially for this side: it is probably on the other leg"]


def test_anterior_sensor_facing_backwards_is_flagged() -> None:
    m = mounting(EY, -EX)  # x up, z out of the back of the thigh
    stand, motion = thigh(gait(), m)
    cal = calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0))
    check_frame(cal, m)
    assert cal.flags == ["unexpected_facing"] and cal.quality == 0.7 and cal.face == "anterior"
    assert cal.reasons == ["anterior sensor appears to face backwards; flexion direction from movement"]


@pytest.mark.parametrize("side", ["thigh_left", "thigh_right"])
def test_symmetric_swing_keeps_the_prior_sign(side: str) -> None:
    for mount_as, right in ((side, True), ({"thigh_left": "thigh_right"}.get(side, "thigh_left"), False)):
        m = nominal_mounting(mount_as)
        stand, motion = thigh(swing(), m)
        cal = calibrate_sensor(side, stand, motion, FS, (0.0, 3.0))
        assert cal.quality == 0.8 and cal.flags == [] and cal.method == "standing+functional"
        assert cal.reasons == ["flexion direction not confirmed by the movement; placement prior used"]
        # the prior's sign: right when the sensor is on its side, reversed when it is not
        assert angle_deg(seg_axis(cal, EZ), truth_z(m)) < 1e-6 if right else angle_deg(
            seg_axis(cal, EZ), truth_z(m)) > 180 - 1e-6


@pytest.mark.parametrize("offset", [5.0, -5.0])
def test_sign_margin_is_a_strict_bound(offset: float) -> None:
    """A swing biased 5 deg to flexion (or extension) scores about +-0.5: confirmed above the margin."""
    m = nominal_mounting("thigh_left")
    stand, motion = thigh(swing(offset=offset), m)
    cal = calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0))
    score = sign_score(motion, angular_velocity(motion, FS), cal.q_segment_in_sensor, FS)
    assert abs(score) == pytest.approx(0.5, abs=0.01)
    flexion_positive = offset > 0
    assert (cal.quality, cal.flags) == ((1.0, []) if flexion_positive else (0.7, ["wrong_side"]))
    for margin, confirmed in ((abs(score) * 0.99, True), (abs(score) * 1.01, False)):
        s = CalibrationSettings(sign_margin=margin)
        c = calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0), s)
        if confirmed:
            assert c.quality == cal.quality and c.flags == cal.flags
        else:
            assert c.quality == 0.8 and c.flags == []
            assert angle_deg(seg_axis(c, EZ), truth_z(m)) < 1e-6  # the prior (right for this mounting)


@pytest.mark.parametrize("side", ["thigh_left", "thigh_right"])
def test_thigh_without_movement_uses_the_prior(side: str) -> None:
    m = nominal_mounting(side)
    stand, motion = thigh(gait(), m)
    for q_motion in (None, motion[:0], motion[:2]):
        cal = calibrate_sensor(side, stand, q_motion, FS, (0.0, 3.0))
        check_frame(cal, m, 1e-9)
        assert (cal.method, cal.face, cal.flags, cal.quality) == ("standing+prior", "lateral", [], 0.7)
        assert cal.reasons == [
            "no walking or leg swing found: medio-lateral axis from the placement prior (face lateral)"]
        assert cal.ml_uncertainty_deg == pytest.approx(30.0, rel=1e-12)
    # too slow or too short to count: the prior too
    s = CalibrationSettings(motion_gyr_rad_s=50.0, misplacement_rad=20 * D)
    cal = calibrate_sensor(side, stand, motion, FS, (0.0, 3.0), s)
    assert cal.method == "standing+prior" and cal.ml_uncertainty_deg == pytest.approx(20.0, rel=1e-12)


def test_minimum_movement_is_counted_in_fast_samples() -> None:
    m = nominal_mounting("thigh_left")
    stand, motion = thigh(gait(), m)
    up = qm.rotate(qm.conjugate(m), EY)
    n_fast = functional_axis(angular_velocity(motion, FS), up, 0.8, 1).n_samples
    assert 500 < n_fast < 900
    enough = calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0),
                              CalibrationSettings(min_motion_s=(n_fast + 0.5) / FS))
    short = calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0),
                             CalibrationSettings(min_motion_s=(n_fast + 1.5) / FS))
    assert enough.method == "standing+functional" and short.method == "standing+prior"
    # three rows (two angular velocities) are enough when one fast sample is: two rows are not
    turn = thigh(np.array([0.0, 0.05, 0.1]), m)[1]
    tiny = CalibrationSettings(min_motion_s=0.5 / FS)
    assert calibrate_sensor("thigh_left", stand, turn, FS, (0.0, 3.0), tiny).method == "standing+functional"
    assert calibrate_sensor("thigh_left", stand, turn[:2], FS, (0.0, 3.0), tiny).method == "standing+prior"


def _abducting_swing(abd_deg: float) -> np.ndarray:
    """Segment-to-world of a thigh swinging +-20 deg in flexion and +-abd_deg sideways (a cone)."""
    t = np.arange(1000) / FS
    hip = qm.from_axis_angle(EZ, 20 * D * np.sin(2 * np.pi * t))
    abd = qm.from_axis_angle(EX, abd_deg * D * np.cos(2 * np.pi * t))
    return qm.multiply(qm.multiply(base(0.3), hip), abd)


@pytest.mark.parametrize("abd_deg,planar", [(8.0, True), (9.5, True), (10.0, False)])  # ratio 6.1, 4.3, 3.9
def test_non_planar_movement_lowers_the_quality(abd_deg: float, planar: bool) -> None:
    m = nominal_mounting("thigh_left")
    stand = thigh(np.zeros(1), m)[0]
    motion = qm.multiply(_abducting_swing(abd_deg), m)
    up = qm.rotate(qm.conjugate(m), EY)
    ratio = functional_axis(angular_velocity(motion, FS), up, 0.8, 200).ratio
    assert (ratio >= 4.0) is planar
    cal = calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0))
    check_frame(cal, m, 0.01)
    not_confirmed = "flexion direction not confirmed by the movement; placement prior used"
    if planar:
        assert cal.reasons == [not_confirmed] and cal.quality == 0.8
    else:
        assert cal.reasons == [f"movement not clearly planar (axis ratio {ratio:.1f})", not_confirmed]
        assert cal.quality == pytest.approx(0.65, abs=1e-12)


def _yawing_gait(yaw_deg: float) -> np.ndarray:
    """Segment-to-world of 10 s of walking about the thigh's Z, then 10 s about Z turned ``yaw_deg`` about
    Y."""
    hip = gait()
    z2 = qm.rotate(qm.from_axis_angle(EY, yaw_deg * D), EZ)
    return qm.multiply(base(0.3), np.vstack([qm.from_axis_angle(EZ, hip), qm.from_axis_angle(z2, hip)]))


@pytest.mark.parametrize("yaw_deg,uncertain", [(5.0, False), (12.0, True)])
def test_uncertain_medio_lateral_axis_lowers_the_quality(yaw_deg: float, uncertain: bool) -> None:
    m = nominal_mounting("thigh_left")
    stand = thigh(np.zeros(1), m)[0]
    motion = qm.multiply(_yawing_gait(yaw_deg), m)
    cal = calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0))
    unc = cal.ml_uncertainty_deg
    assert yaw_deg < unc < 1.2 * yaw_deg  # the axes of the two halves are yaw_deg apart
    assert cal.flags == [] and cal.method == "standing+functional"
    if uncertain:
        assert cal.reasons == [
            f"medio-lateral axis uncertain by {unc:.0f} deg (rotation axis and swing plane disagree)"]
        assert cal.quality == pytest.approx(0.85, abs=1e-12)
    else:
        assert cal.reasons == [] and cal.quality == 1.0
    for limit, lowered in ((unc * 0.99, True), (unc * 1.01, False)):
        c = calibrate_sensor("thigh_left", stand, motion, FS, (0.0, 3.0),
                             CalibrationSettings(ml_disagreement_deg=limit))
        assert (c.quality < 1.0) is lowered


# -- uncertainty of the thigh axis --------------------------------------------------------------------------
def _about_up(v: np.ndarray, deg: float) -> np.ndarray:
    return qm.rotate(qm.from_axis_angle(EX, deg * D), v)  # EX: the standing vertical of these sensors


def _halves_omega(b1: np.ndarray, b2: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Rows that do not count first (fast about the vertical only, not faster than 0.8 rad/s across it, a
    missing row), then ``n1`` fast rows about ``b1`` and ``n2`` about ``b2`` (the vertical is EX)."""
    rate = np.array([1.0, -1.5, 2.0, -1.2])
    rows = [(0.5 * b2 + 5.0 * EX)[None], 0.8 * EZ[None], 0.79 * b1[None], np.array([[np.nan, 0.0, 0.0]]),
            np.outer(np.resize(rate, n1), b1), np.outer(np.resize(rate, n2), b2)]
    return np.vstack(rows)


@pytest.mark.parametrize("plane_deg,half_deg", [(7.0, 3.0), (2.0, 9.0)])
def test_ml_uncertainty_is_the_larger_disagreement(plane_deg: float, half_deg: float) -> None:
    a = _unit([0.0, 0.6, 0.8])  # the swing plane's normal (horizontal)
    q_motion = _swing_quats(a, np.tile([20 * D, -20 * D], 10))
    omega = _halves_omega(_about_up(a, half_deg / 2), _about_up(a, -half_deg / 2), 12, 12)
    fa = FunctionalAxis(_about_up(a, plane_deg), 10.0, 24)
    s = CalibrationSettings()
    assert _ml_uncertainty(q_motion, omega, EX, fa, s) == pytest.approx(max(plane_deg, half_deg), rel=1e-9)
    # without a swing plane (too few rows): the halves alone
    assert _ml_uncertainty(q_motion[:9], omega, EX, fa, s) == pytest.approx(half_deg, rel=1e-9)
    # without halves of 10 fast rows each: the plane alone
    for n1, n2 in ((9, 10), (10, 9)):  # 19 fast rows: a first half of 9
        w = _halves_omega(_about_up(a, half_deg / 2), _about_up(a, -half_deg / 2), n1, n2)
        assert _ml_uncertainty(q_motion, w, EX, fa, s) == pytest.approx(plane_deg, rel=1e-9)
    w = _halves_omega(_about_up(a, half_deg / 2), _about_up(a, -half_deg / 2), 10, 10)
    assert _ml_uncertainty(q_motion, w, EX, fa, s) == pytest.approx(max(plane_deg, half_deg), rel=1e-9)
    # neither: NaN
    assert math.isnan(_ml_uncertainty(q_motion[:9], w[:12], EX, fa, s))
    # the halves are split in the order of the fast rows: 12 + 16 rows give the first 14 and the last 14
    w = _halves_omega(_about_up(a, half_deg / 2), _about_up(a, -half_deg / 2), 12, 16)
    mixed = _ml_uncertainty(q_motion[:9], w, EX, fa, s)
    assert 0.0 < mixed < half_deg


@pytest.mark.parametrize("tilt_deg,used", [(31.0, True), (29.0, False), (70.0, True)])
def test_ml_uncertainty_uses_the_horizontal_part_of_the_plane_normal(tilt_deg: float, used: bool) -> None:
    """A swing-plane normal ``tilt_deg`` from the standing vertical is used (projected) when its horizontal
    part is longer than 0.5, i.e. more than 30 deg from the vertical."""
    a = _unit([0.0, 0.6, 0.8])
    q_motion = _swing_quats(a, np.tile([20 * D, -20 * D], 10))
    e = _unit(np.cross(a, [1.0, 0.0, 0.0]))
    up = math.cos(tilt_deg * D) * a + math.sin(tilt_deg * D) * e  # the standing vertical given
    horiz = _unit(a - (a @ up) * up)
    fa_axis = qm.rotate(qm.from_axis_angle(up, 6 * D), horiz)
    fa = FunctionalAxis(fa_axis, 10.0, 24)
    out = _ml_uncertainty(q_motion, np.zeros((30, 3)), up, fa, CalibrationSettings())
    if used:
        assert out == pytest.approx(6.0, rel=1e-9)
    else:
        assert math.isnan(out)


# -- standing checks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("wobble_deg,still", [(1.9, True), (2.1, False)])
def test_standing_spread_above_two_degrees_lowers_the_quality(wobble_deg: float, still: bool) -> None:
    m = nominal_mounting("pelvis")
    sway = qm.from_axis_angle(EX, np.tile([wobble_deg * D, -wobble_deg * D], 150))  # about the segment's X
    stand = qm.multiply(qm.multiply(base(0.3), sway), m)
    cal = calibrate_sensor("pelvis", stand, None, FS, (0.0, 3.0))
    check_frame(cal, m, 1e-9)
    assert (cal.method, cal.face, cal.flags) == ("standing+prior", "posterior", [])
    assert math.isnan(cal.ml_uncertainty_deg)
    if still:
        assert cal.quality == 1.0 and cal.reasons == []
    else:
        assert cal.quality == 0.8 and cal.reasons == ["standing window not very still (2.1 deg spread)"]


@pytest.mark.parametrize("pitch_deg,upside_down", [(-87.0, False), (-93.0, True), (180.0, True)])
def test_sensor_x_pointing_down_is_flagged(pitch_deg: float, upside_down: bool) -> None:
    """The pelvis sensor turned about its z (out of the skin): x just above or below the horizontal."""
    m = qm.multiply(nominal_mounting("pelvis"), qm.from_axis_angle(EZ, pitch_deg * D))
    stand = np.repeat(qm.multiply(base(0.3), m)[None], 300, axis=0)
    cal = calibrate_sensor("pelvis", stand, None, FS, (0.0, 3.0))
    check_frame(cal, m, 1e-9)  # the angles are still right
    if upside_down:
        assert cal.flags == ["upside_down"] and cal.quality == 0.9
        assert cal.reasons == [
            "sensor is upside down (x points down); angles are still computed from the measured vertical"]
    else:
        assert cal.flags == [] and cal.quality == 1.0 and cal.reasons == []


def test_penalties_add_up() -> None:
    """Unsteady standing, upside down and no movement: 1 - 0.2 - 0.1 - 0.3."""
    flip = qm.from_axis_angle(EZ, math.pi)
    m = qm.multiply(nominal_mounting("thigh_left"), flip)
    sway = qm.from_axis_angle(EX, np.tile([3 * D, -3 * D], 150))
    stand = qm.multiply(qm.multiply(base(0.3), sway), m)
    cal = calibrate_sensor("thigh_left", stand, None, FS, (0.0, 3.0))
    assert cal.quality == pytest.approx(0.4, abs=1e-12) and cal.flags == ["upside_down"]
    assert len(cal.reasons) == 3


# -- pelvis -------------------------------------------------------------------------------------------------
def pelvis_walk(mount: np.ndarray, seconds: float = 22.0, odd_axis_deg: float = 0.0, stride: float = 1.1):
    """Standing and walking orientations of a pelvis sensor: tilt +-2 deg twice per stride, obliquity +-4 deg
    and rotation +-4 deg once per stride (segment X anterior, Y up, Z right). ``odd_axis_deg``: on every
    other stride the obliquity is about X turned that much about Y (the strides disagree on the axes)."""
    t = np.arange(int(round(seconds * FS))) / FS
    ph = 2 * np.pi * t / stride
    odd = (np.floor(t / stride) % 2).astype(bool)
    obl_axis = np.where(odd[:, None], qm.rotate(qm.from_axis_angle(EY, odd_axis_deg * D), EX), EX)
    q = qm.multiply(base(0.4), qm.from_axis_angle(EY, 4 * D * np.cos(ph)))
    q = qm.multiply(q, qm.from_axis_angle(obl_axis, 4 * D * np.sin(ph)))
    q = qm.multiply(q, qm.from_axis_angle(EZ, 2 * D * np.sin(2 * ph)))
    stand = np.repeat(qm.multiply(base(0.4), mount)[None], 300, axis=0)
    return stand, qm.multiply(q, mount)


def test_pelvis_axis_from_walking() -> None:
    m = qm.multiply(qm.from_axis_angle(EY, 20 * D), nominal_mounting("pelvis"))  # yawed 20 deg on the pelvis
    stand, walk = pelvis_walk(m)
    cal = calibrate_sensor("pelvis", stand, walk, FS, (0.0, 3.0))
    check_frame(cal, m, 0.05)
    assert (cal.method, cal.face, cal.quality, cal.reasons) == ("standing+walking", "posterior", 1.0, [])
    assert 0.0 <= cal.ml_uncertainty_deg < 0.05
    prior = calibrate_sensor("pelvis", stand, None, FS, (0.0, 3.0))
    assert angle_deg(seg_axis(prior, EZ), truth_z(m)) == pytest.approx(20.0, abs=1e-6)
    # upper lumbar sensors and too short a movement: the prior
    for p, motion in (("lumbar_upper", walk), ("pelvis", walk[:2]), ("pelvis", walk[:0])):
        cal = calibrate_sensor(p, stand, motion, FS, (0.0, 3.0))
        assert cal.method == "standing+prior" and math.isnan(cal.ml_uncertainty_deg)
        np.testing.assert_allclose(cal.q_segment_in_sensor, prior.q_segment_in_sensor, atol=1e-15)


@pytest.mark.parametrize("yaw_deg", [29.0, 31.0, -31.0])
def test_pelvis_axis_from_walking_must_be_near_the_prior(yaw_deg: float) -> None:
    m = qm.multiply(qm.from_axis_angle(EY, yaw_deg * D), nominal_mounting("pelvis"))
    stand, walk = pelvis_walk(m)
    cal = calibrate_sensor("pelvis", stand, walk, FS, (0.0, 3.0))
    if abs(yaw_deg) < 30:
        assert cal.method == "standing+walking" and cal.reasons == []
        check_frame(cal, m, 0.05)
    else:
        assert cal.method == "standing+prior" and math.isnan(cal.ml_uncertainty_deg)
        assert cal.reasons == [
            "pelvis axis from walking not used (uncertain by 0 deg, 31 deg from the placement prior)"]
        assert angle_deg(seg_axis(cal, EZ), truth_z(m)) == pytest.approx(31.0, abs=1e-6)
        s = CalibrationSettings(misplacement_rad=32 * D)
        assert calibrate_sensor("pelvis", stand, walk, FS, (0.0, 3.0), s).method == "standing+walking"


def test_pelvis_axis_from_an_uncertain_walk_is_not_used() -> None:
    m = nominal_mounting("pelvis")
    stand, walk = pelvis_walk(m, odd_axis_deg=60.0)
    up = qm.rotate(qm.conjugate(m), EY)
    axis, unc = walking_ml_axis(angular_velocity(walk, FS), up, FS)
    assert 10.0 < unc < 30.0
    cal = calibrate_sensor("pelvis", stand, walk, FS, (0.0, 3.0))
    assert cal.method == "standing+prior"
    assert cal.reasons == [f"pelvis axis from walking not used (uncertain by {unc:.0f} deg, "
                           f"{axis_angle_deg(axis, truth_z(m)):.0f} deg from the placement prior)"]
    for limit, used in ((unc * 1.01, True), (unc * 0.99, False)):
        s = CalibrationSettings(ml_disagreement_deg=limit)
        c = calibrate_sensor("pelvis", stand, walk, FS, (0.0, 3.0), s)
        assert (c.method == "standing+walking") is used
        if used:
            assert c.ml_uncertainty_deg == pytest.approx(unc, rel=1e-9)
            assert angle_deg(seg_axis(c, EZ), axis if axis @ truth_z(m) >= 0 else -axis) < 1e-6


# -- walking_ml_axis on angular velocities ------------------------------------------------------------------
def walk_omega(n: int, up: np.ndarray, ml: np.ndarray, stride: float = 1.1,
               odd_deg: float = 0.0) -> np.ndarray:
    """Pelvis angular velocity while walking: tilting (about ``ml``) twice per stride at 0.1 rad/s, obliquity
    (about the anterior axis) once per stride at 0.3 rad/s, a little rotation about ``up``. ``odd_deg``: on
    every other stride both axes are turned that much about ``up``."""
    t = np.arange(n) / FS
    ph = 2 * np.pi * t / stride
    odd = (np.arange(n) // round(stride * FS)) % 2 == 1
    mls = np.where(odd[:, None], qm.rotate(qm.from_axis_angle(up, odd_deg * D), ml), ml)
    ants = np.cross(up, mls)
    return (0.1 * np.cos(2 * ph))[:, None] * mls + (0.3 * np.cos(ph))[:, None] * ants + np.outer(
        0.05 * np.sin(ph), up)


@pytest.mark.parametrize("up,ml", [(EX, _unit([0.0, 0.6, 0.8])), (EZ, _unit([0.6, 0.8, 0.0])),
                                   (_unit([0.89, 0.3, -0.34]), None), (_unit([0.91, 0.3, -0.29]), None),
                                   (EY, None), (_unit([1.0, 1.0, 0.0]), None), (_unit([1.0, 0.0, 1.0]), None),
                                   (_unit([0.0, 1.0, 1.0]), None)])
def test_walking_ml_axis_separates_tilt_from_obliquity(up: np.ndarray, ml: np.ndarray | None) -> None:
    if ml is None:
        ml = _unit(np.cross(up, [0.0, 0.0, 1.0]))
    found = walking_ml_axis(walk_omega(2000, up, ml), up, FS)
    assert found is not None
    axis, unc = found
    assert axis_angle_deg(axis, ml) < 1e-6 and abs(np.linalg.norm(axis) - 1.0) < 1e-12
    assert 0.0 <= unc < 1e-6 and isinstance(unc, float)


def test_walking_ml_axis_needs_two_of_the_longest_strides() -> None:
    up, ml = EX, _unit([0.0, 0.6, 0.8])
    assert walking_ml_axis(walk_omega(399, up, ml), up, FS) is None
    assert walking_ml_axis(walk_omega(400, up, ml), up, FS) is not None
    # the longest stride is a parameter (s), and so is the rate
    assert walking_ml_axis(walk_omega(400, up, ml), up, FS, (0.7, 2.01)) is None
    assert walking_ml_axis(walk_omega(440, up, ml), up, FS, (0.7, 2.2)) is not None
    assert walking_ml_axis(walk_omega(400, up, ml)[::2], up, 50.0) is not None
    assert walking_ml_axis(walk_omega(400, up, ml)[:398:2], up, 50.0) is None
    # no movement at all
    assert walking_ml_axis(np.zeros((1000, 3)), up, FS) is None
    assert walking_ml_axis(np.outer(np.ones(1000), up), up, FS) is None  # turning about the vertical only


def test_walking_ml_axis_skips_missing_rows() -> None:
    up, ml = EX, _unit([0.0, 0.6, 0.8])
    w = walk_omega(2000, up, ml)
    w[500:503] = np.nan
    w[900, 1] = np.nan
    axis, unc = walking_ml_axis(w, up, FS)
    assert axis_angle_deg(axis, ml) < 0.5 and unc < 1.0


@pytest.mark.parametrize("period,found", [(3.2, False), (3.5, True)])
def test_walking_ml_axis_needs_a_stride_rhythm(period: float, found: bool) -> None:
    """A single slow oscillation: its covariance at the shortest stride lag (0.7 s) is cos(2 pi 0.7 / period)
    of the total, 0.19 at 3.2 s and 0.31 at 3.5 s, either side of the quarter required."""
    up, ml = EX, _unit([0.0, 0.6, 0.8])
    w = np.outer(np.cos(2 * np.pi * np.arange(4000) / FS / period), ml)
    out = walking_ml_axis(w, up, FS)
    assert (out is not None) is found
    if found:
        assert axis_angle_deg(out[0], ml) < 1e-6


@pytest.mark.parametrize("stride", [0.9, 1.1, 1.6])
def test_walking_ml_axis_finds_the_stride(stride: float) -> None:
    """Obliquity stronger than tilting: at a wrong lag the anterior axis would come out as the medio-lateral
    one."""
    up, ml = EX, _unit([0.0, 0.6, 0.8])
    axis, unc = walking_ml_axis(walk_omega(3000, up, ml, stride), up, FS)
    assert axis_angle_deg(axis, ml) < 1e-3 and unc < 1e-3


@pytest.mark.parametrize("odd_deg", [3.0, 6.0, 10.0])
def test_walking_ml_axis_uncertainty_between_even_and_odd_strides(odd_deg: float) -> None:
    """The axes turned on every other stride: the axes of the even and the odd stride-long blocks differ by
    about half that (half of each block's products reach into the next stride), the whole walk's axis lies
    half-way."""
    up, ml = EX, _unit([0.0, 0.6, 0.8])
    axis, unc = walking_ml_axis(walk_omega(2200, up, ml, odd_deg=odd_deg), up, FS)
    assert 0.5 * odd_deg < unc < 0.53 * odd_deg
    assert axis_angle_deg(axis, qm.rotate(qm.from_axis_angle(up, odd_deg / 2 * D), ml)) < 1e-4


# -- standing finder ----------------------------------------------------------------------------------------
def _flags(s: str) -> np.ndarray:
    return np.array([c == "1" for c in s], dtype=bool)


@pytest.mark.parametrize(
    "flags,found",
    [
        ("0011111" + "1111" + "0", (2, 11)),  # max_rows (9) reached: found at once
        ("0011111" + "111" + "0", (2, 10)),  # 8 rows then a still-not row: >= min_rows (5)
        ("0011111" + "0", (2, 7)),  # exactly min_rows
        ("001111" + "0" + "11111" + "0", (7, 12)),  # 4 rows are too few; the next run counts from its start
        ("001111" + "0", None),
        ("0011111111", None),  # 8 rows, still going at the end: undecided
        ("", None),
    ],
)
def test_standing_finder_runs(flags: str, found: tuple[int, int] | None) -> None:
    f = StandingFinder(5, 9)
    out = f.update(100, _flags(flags))
    assert out == (None if found is None else (found[0] + 100, found[1] + 100))
    assert f.found == out


def test_standing_finder_keeps_its_result_and_resets() -> None:
    f = StandingFinder(2, 4)
    assert f.update(0, _flags("0111")) is None  # a run of 3 still open
    assert f.update(4, _flags("1")) == (1, 5)  # reaches 4 rows across the chunks
    assert f.update(5, _flags("0000")) == (1, 5) and f.update(9, _flags("11111")) == (1, 5)
    f.reset()
    assert f.found is None
    assert f.update(20, _flags("1")) is None  # the old run is forgotten: starts at 20
    assert f.update(21, _flags("10")) == (20, 22)
    g = StandingFinder(2, 4)
    g.update(0, _flags("01"))
    g.reset()
    assert g.update(10, _flags("10")) is None  # one row: too short
    assert g.update(12, _flags("110")) == (12, 14)


@pytest.mark.parametrize("period_s,rate,found", [(2.0, 100.0, True), (2.01, 100.0, False), (1.0, 100.0, True),
                                                 (2.0, 50.0, True), (2.04, 50.0, False)])
def test_walking_ml_axis_stride_range_includes_its_longest_stride(period_s: float, rate: float,
                                                                  found: bool) -> None:
    """Single-row pulses of rotation every ``period_s``: the covariance is there at that lag only, so the
    rhythm is found when the lag is within the stride range (0.7-2 s, both included)."""
    n = int(round(2 * 2.0 * rate))  # two of the longest strides
    w = np.zeros((n, 3))
    w[:: int(round(period_s * rate))] = [0.0, 1.0, 0.0]
    assert (walking_ml_axis(w, EX, rate) is not None) is found


def test_walking_ml_axis_covariance_is_per_product() -> None:
    """Tilting dominates (once per 0.8 s) a 1.6 s stride: averaged per product, the stride lag (1.6 s) has the
    larger covariance; the 0.8 s lag would take tilting for obliquity (the anterior axis for the result)."""
    up, ml = EX, _unit([0.0, 0.6, 0.8])
    t = np.arange(400) / FS
    ph = 2 * np.pi * t / 1.6
    w = (0.3 * np.cos(2 * ph))[:, None] * ml + (0.1 * np.cos(ph))[:, None] * np.cross(up, ml)
    axis, unc = walking_ml_axis(w, up, FS)
    assert axis_angle_deg(axis, ml) < 1e-6 and unc < 1e-6


def test_thigh_axis_exactly_on_the_prior_despite_rounding() -> None:
    """A right-thigh sensor tilted 12 deg in the sagittal plane: the functional axis is the prior's to
    rounding, and their dot product rounds above 1 (the angle between them is 0, not an error)."""
    m = qm.multiply(nominal_mounting("thigh_right"), qm.from_axis_angle(EY, 12 * D))
    stand, motion = thigh(gait(), m)
    up, _ = mean_direction(up_in_sensor(stand))
    fa = functional_axis(angular_velocity(motion, FS), up, 0.8, 200)
    assert abs(float(fa.axis @ prior_ml_axis("thigh_right", up, "lateral"))) > 1.0
    cal = calibrate_sensor("thigh_right", stand, motion, FS, (0.0, 3.0))
    check_frame(cal, m)
    assert (cal.quality, cal.reasons, cal.face) == (1.0, [], "lateral")


def test_pelvis_walking_axis_exactly_on_the_prior_despite_rounding() -> None:
    """A pelvis sensor tilted 2 deg and rolled 41 deg about its z: the walking axis is the prior's to
    rounding, and their dot product rounds above 1 (the angle between them is 0, not an error)."""
    m = qm.multiply(qm.from_axis_angle(EZ, -2 * D), qm.multiply(nominal_mounting("pelvis"),
                                                                 qm.from_axis_angle(EZ, -41 * D)))
    stand, walk = pelvis_walk(m, seconds=4.5)
    up, _ = mean_direction(up_in_sensor(stand))
    axis, _ = walking_ml_axis(angular_velocity(walk, FS), up, FS)
    assert abs(float(axis @ prior_ml_axis("pelvis", up, "posterior"))) > 1.0
    cal = calibrate_sensor("pelvis", stand, walk, FS, (0.0, 3.0))
    check_frame(cal, m)
    assert (cal.method, cal.quality, cal.reasons) == ("standing+walking", 1.0, [])

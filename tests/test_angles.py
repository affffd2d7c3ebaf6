"""Angle definitions: heading-free, signs per ISB/BIOMECHANICS, agreement with the simulator's truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hipback.processing import quaternion as qm
from hipback.processing.angles import (
    MotionSmoother,
    axes_vertical_components,
    compute_angles,
    compute_angles_stacked,
    joint_angle,
    long_axis_inclination,
    sagittal_inclination,
)
from tests.synth_processing import base

Z = np.array([0.0, 0.0, 1.0])


def seg(heading: float, about_z: float) -> np.ndarray:
    """Standing-neutral segment facing ``heading`` rotated by ``about_z`` about its own Z (right) axis."""
    return qm.multiply(base(heading), qm.from_axis_angle(Z, about_z))


def test_vertical_components_match_rotation_matrix():
    q = qm.normalize(np.random.default_rng(0).normal(size=(50, 4)))
    xz, yz, zz = axes_vertical_components(q)
    m = qm.to_matrix(q)
    np.testing.assert_allclose(np.column_stack([xz, yz, zz]), m[:, 2, :], atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    q=st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda v: np.linalg.norm(v) > 0.1),
    yaw=st.floats(-math.pi, math.pi),
)
def test_sagittal_angles_ignore_heading(q, yaw):
    q = qm.normalize(np.array(q))
    xz, yz, _ = axes_vertical_components(q)
    assume(
        math.hypot(xz, yz) > 1e-6
    )  # undefined when the segment's own Z axis is vertical (lying on the side)
    turned = qm.multiply(qm.from_axis_angle(Z, yaw), q)  # same posture, world rotated about the vertical
    d = sagittal_inclination(turned) - sagittal_inclination(q)
    assert abs(math.remainder(float(d), 2 * math.pi)) < 1e-9  # equal up to the +-pi wrap
    assert long_axis_inclination(turned) == pytest.approx(long_axis_inclination(q), abs=1e-9)


def test_signs_follow_the_conventions():
    h = 1.1
    flex = math.radians(30.0)
    tilt = math.radians(10.0)  # anterior pelvic tilt
    pelvis = seg(h, -tilt)[None]
    thigh = seg(h + 0.4, flex - tilt)[None]  # thigh 30 deg flexed relative to the pelvis, other heading
    lumbar = seg(h - 0.3, -tilt - math.radians(15.0))[None]  # upper lumbar bent forward 15 deg more
    a = compute_angles(np.zeros(1), {"pelvis": pelvis, "thigh_left": thigh, "lumbar_upper": lumbar})
    assert a.pelvic_tilt[0] == pytest.approx(tilt)
    assert a.hip_flexion_left[0] == pytest.approx(flex)
    assert a.thigh_inclination_left[0] == pytest.approx(flex - tilt)
    assert a.lumbar_flexion[0] == pytest.approx(math.radians(15.0))
    assert a.pelvis_inclination[0] == pytest.approx(tilt)
    assert np.isnan(a.hip_flexion_right[0]) and np.isnan(a.thigh_inclination_right[0])
    # forward = knee moves anteriorly: the thigh's anterior axis rises
    assert qm.rotate(thigh[0], [1.0, 0.0, 0.0])[2] > 0
    sitting = compute_angles(
        np.zeros(1), {"pelvis": seg(h, 0.0)[None], "thigh_right": seg(h, math.pi / 2)[None]}
    )
    assert sitting.thigh_inclination_right[0] == pytest.approx(math.pi / 2)


def test_agrees_with_simulator_truth_definition_in_gait_like_motion():
    body = pytest.importorskip("hipback.simulator.body")
    rng = np.random.default_rng(3)
    n = 2000
    ph = np.linspace(0, 8 * np.pi, n)
    ch = {
        "heading": np.full(n, 0.7),
        "pelvis_rotation": np.radians(4.0) * np.sin(ph),
        "obliquity": np.radians(3.0) * np.sin(ph + 0.5),
        "tilt": np.radians(2.0) * np.sin(2 * ph) + np.radians(5.0),
        "hip_left": np.radians(22.0) * np.sin(ph) + np.radians(8.0),
        "hip_right": np.radians(22.0) * np.sin(ph + np.pi) + np.radians(8.0),
        "add_left": np.radians(4.0) * np.sin(ph + 1.0),
        "add_right": np.radians(4.0) * np.sin(ph + 1.0 + np.pi),
        "lumbar": np.radians(3.0) * rng.uniform(-1, 1) + np.zeros(n),
    }
    quats = body.segment_quats(ch)
    truth = body.segment_angles(quats)
    mine = compute_angles(np.zeros(n), quats)
    for name in ("pelvic_tilt", "thigh_inclination_left", "pelvis_inclination", "lumbar_flexion"):
        np.testing.assert_allclose(getattr(mine, name), truth[name], atol=1e-9, err_msg=name)
    for side in ("left", "right"):
        d = np.degrees(getattr(mine, f"hip_flexion_{side}") - truth[f"hip_flexion_{side}"])
        assert np.abs(d).max() < 0.3, side  # second-order difference (see processing.angles)


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, 300), max_size=10))
def test_motion_smoother_is_chunk_invariant(cuts):
    x = np.random.default_rng(0).normal(size=300) ** 2
    x[150:153] = np.nan
    whole = MotionSmoother(10).update(x)
    sm = MotionSmoother(10)
    idx = sorted(set(cuts) | {0, 300})
    parts = np.concatenate([sm.update(x[a:b]) for a, b in zip(idx[:-1], idx[1:], strict=True)])
    np.testing.assert_array_equal(parts, whole)
    assert np.isnan(whole[:9]).all() and np.isnan(whole[150:162]).all() and np.isfinite(whole[162:]).all()


def test_knee_to_chest_lying_is_a_plausible_deep_hip_flexion():
    """Lying on the back with both knees pulled to the chest the thigh's inclination passes +-180 deg while
    the hip is flexed ~125 deg: the joint angle is brought back into (-180, 180], never flagged
    implausible."""
    from hipback.processing.pipeline import process_recording
    from hipback.simulator import SensorSpec, VirtualPatient
    from hipback.simulator.exercises import ExerciseSet, simulate_programme

    places = ["pelvis", "thigh_left", "thigh_right", "lumbar_upper"]
    sim = simulate_programme(
        [ExerciseSet("knee_to_chest_double", None, 1, hold_s=10.0)],
        seed=5,
        sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in places],
        patient=VirtualPatient(patient_id="K2C-1"),
    )
    res = process_recording(sim.recording)
    assert not (res.angles.implausible != 0).any()
    (truth,) = sim.truth.sets[0].reps
    for side in ("left", "right"):
        peak = math.degrees(float(np.nanmax(getattr(res.angles, f"hip_flexion_{side}"))))
        assert peak == pytest.approx(math.degrees(truth.primary_peak_rad), abs=3.0), side
        assert peak > 110.0


@settings(max_examples=60, deadline=None)
@given(
    heading=st.floats(-math.pi, math.pi),
    tilt=st.floats(-0.3, 0.3),
    obliquity=st.floats(-0.12, 0.12),
    rotation=st.floats(-0.15, 0.15),
)
def test_pelvic_tilt_is_the_isb_pelvis_tilt_to_second_order(heading, tilt, obliquity, rotation):
    """The heading-free pelvic tilt against the ISB pelvis angle (Z-X'-Y'' from a lab frame facing the walker,
    tilt first; anterior positive): ``atan2(sin t cos r - cos t sin o sin r, cos t cos o)``, i.e. the ISB
    tilt minus ``o * r`` plus terms of third order -- a fraction of a degree for a walker's obliquity and
    rotation of a few degrees -- and exact without either."""
    x_ax, y_ax = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    q = qm.multiply(base(heading), qm.from_axis_angle(Z, -tilt))
    q = qm.multiply(q, qm.multiply(qm.from_axis_angle(x_ax, obliquity), qm.from_axis_angle(y_ax, rotation)))
    a = compute_angles(np.zeros(1), {"pelvis": q[None]})
    t, o, r = tilt, obliquity, rotation
    expected = math.atan2(
        math.sin(t) * math.cos(r) - math.cos(t) * math.sin(o) * math.sin(r), math.cos(t) * math.cos(o)
    )
    assert a.pelvic_tilt[0] == pytest.approx(expected, abs=1e-9)
    assert (
        abs(a.pelvic_tilt[0] - (t - o * r)) <= abs(t) * (o * o + r * r) + abs(o * r) * (o * o + r * r) + 1e-9
    )
    upright = compute_angles(
        np.zeros(1), {"pelvis": qm.multiply(base(heading), qm.from_axis_angle(Z, -t))[None]}
    )
    assert upright.pelvic_tilt[0] == pytest.approx(t, abs=1e-12)


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=np.float64).tobytes()


@pytest.mark.parametrize(
    "names",
    [
        ("pelvis", "thigh_left", "thigh_right", "lumbar_upper"),
        ("lumbar_upper", "thigh_right", "pelvis", "thigh_left"),
        ("thigh_left", "pelvis", "thigh_right"),
        ("thigh_right",),
        ("pelvis",),
        (),
    ],
)
def test_stacked_orientations_give_the_per_segment_values_bit_for_bit(names):
    """compute_angles_stacked (the pipeline's one (sensors, rows, 4) array, placements in any order) and
    compute_angles (one array per placement) give the values of one segment and one angle at a time, bit for
    bit: NaN rows, a hip flexed past the thigh's +-pi inclination (the joint angle wrapped) and a missing
    placement included."""
    rng = np.random.default_rng(7)
    n = 9
    q = rng.normal(size=(len(names), n, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    if names:
        q[0, 3] = np.nan
        q[-1, 5, 2] = np.nan
    segments = {name: q[i] for i, name in enumerate(names)}
    motion = rng.normal(size=n)
    vertical = rng.normal(size=n)
    t = np.arange(n) / 100.0
    stacked = compute_angles_stacked(t, list(names), q if names else None, motion, vertical, (motion, None))
    by_name = compute_angles(t, segments, motion, vertical, (motion, None))
    nan = np.full(n, np.nan)
    th = {name: sagittal_inclination(segments[name]) if name in segments else nan for name in
          ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")}
    expected = {
        "hip_flexion_left": joint_angle(th["thigh_left"], th["pelvis"]),
        "hip_flexion_right": joint_angle(th["thigh_right"], th["pelvis"]),
        "pelvic_tilt": -th["pelvis"],
        "lumbar_flexion": joint_angle(th["pelvis"], th["lumbar_upper"]),
        "thigh_inclination_left": th["thigh_left"],
        "thigh_inclination_right": th["thigh_right"],
        "pelvis_inclination": long_axis_inclination(segments["pelvis"]) if "pelvis" in segments else nan,
        "pelvis_motion": motion,
    }
    wrapped = 0
    for a in (stacked, by_name):
        for field, want in expected.items():
            assert _bits(getattr(a, field)) == _bits(want), field
        assert _bits(a.t) == _bits(t)
        assert _bits(a.pelvis_acc_vertical) == _bits(vertical)
        assert _bits(a.thigh_acc_left) == _bits(motion) and a.thigh_acc_right is None
        raw = th["thigh_left"] - th["pelvis"]
        wrapped += int(np.sum(np.abs(raw) > math.pi))
    if {"pelvis", "thigh_left"} <= set(names):
        assert wrapped > 0  # the wrap is exercised
    missing = compute_angles(t, segments)
    assert np.isnan(missing.pelvis_motion).all() and missing.pelvis_acc_vertical is None


def test_joint_angle_fast_range_check_gives_the_wrapped_values():
    """joint_angle returns its difference unchanged only when every value is in (-pi, pi]; otherwise each
    value out of range is brought back by 2 pi (NaN stays NaN), -pi included."""
    d_in = np.array([0.3, -3.1, 3.1, np.nan, math.pi, -math.pi + 1e-12])
    assert _bits(joint_angle(d_in, np.zeros(6))) == _bits(d_in)
    for bad in (math.pi + 1e-12, -math.pi, 4.0, -6.0):
        d = np.append(d_in, bad)
        want = np.where(d > np.pi, d - 2.0 * np.pi, np.where(d <= -np.pi, d + 2.0 * np.pi, d))
        assert _bits(joint_angle(d, np.zeros(len(d)))) == _bits(want)
        assert -math.pi < joint_angle(d, np.zeros(len(d)))[-1] <= math.pi
    assert np.isnan(joint_angle(np.full(3, np.nan), np.zeros(3))).all()

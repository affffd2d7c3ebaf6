"""Virtual patient simulator: physical consistency, ground truth, sensor model, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hipback.processing import quaternion as qm
from hipback.processing.types import AngleSeries
from hipback.simulator import (
    SCENARIOS,
    SensorSpec,
    VirtualPatient,
    build_scenario,
    ideal_sensors,
    make_cohort,
    segment_angles,
    simulate,
)
from hipback.simulator.sensor_model import draw_mounting

DEG = np.pi / 180


@pytest.fixture(scope="module")
def ideal():
    """Short session with error-free 200 Hz sensors (soft-tissue motion switched on for one thigh)."""
    sensors = ideal_sensors()
    sensors[2].soft_tissue_deg = 1.0  # thigh_right: soft-tissue wobble and heel-strike shake
    sensors[2].impact_acc_m_s2 = 8.0
    return simulate("short", seed=3, sensors=sensors)


@pytest.fixture(scope="module")
def visit():
    """A compact clinic visit with default (noisy, misaligned) sensors."""
    return simulate("clinic_visit", seed=5, walk_s=25, hold_s=8, rest_s=2, sit_s=6, lie_s=6, stand_s=3)


def _integrate_windows(t, gyr, q, window):
    """Integrate gyro from each window start over ``window`` samples; return the angle error (rad)."""
    starts = np.arange(0, len(t) - window - 1, window)
    qi = q[starts].copy()
    for k in range(window):
        i = starts + k
        w = 0.5 * (gyr[i] + gyr[i + 1])
        qi = qm.multiply(qi, qm.from_rotvec(w * (t[i + 1] - t[i])[:, None]))
    return qm.angle_between(qi, q[starts + window])


def test_gyro_integrates_to_the_true_orientation(ideal):
    for placement, st in ideal.sensor_truth.items():
        stream = ideal.recording.streams[placement]
        np.testing.assert_allclose(stream.gyr, st.gyr, atol=1e-12)  # ideal sensor: no errors added
        err = _integrate_windows(st.t, st.gyr, st.quat, window=200)  # 1 s windows at 200 Hz
        assert np.degrees(err.max()) < 0.05, placement
        # and the gyro is not trivially small: thighs swing at > 150 deg/s while walking
        if placement.startswith("thigh"):
            assert np.degrees(np.abs(st.gyr).max()) > 150


def _largest_contact(session) -> float:
    """The largest heel strike's size of a session (the wobble of 1 deg / 8 m/s^2 scales with it)."""
    sizes = session.truth.meta["contact_sizes"]
    return max(1.0, max(sizes["right"]), max(sizes["left"]))


def test_gyro_matches_finite_difference_of_orientation(ideal):
    st = ideal.sensor_truth["thigh_right"]  # includes the soft-tissue wobble
    dq = qm.multiply(qm.conjugate(st.quat[:-1]), st.quat[1:])
    w_fd = qm.to_rotvec(dq) / np.diff(st.t)[:, None]
    w_mid = 0.5 * (st.gyr[:-1] + st.gyr[1:])
    err = np.linalg.norm(w_fd - w_mid, axis=1)
    assert np.sqrt(np.mean(err**2)) < 0.01  # rad/s, signal peaks > 2.5 rad/s
    assert err.max() < 0.1 * _largest_contact(ideal)  # (at the largest heel strike's ringing)


def test_accelerometer_is_specific_force_at_the_sensor_position(ideal):
    for placement, st in ideal.sensor_truth.items():
        h = np.diff(st.t)
        assert np.allclose(h, h[0])  # no jitter for ideal sensors
        a = (st.position[2:] - 2 * st.position[1:-1] + st.position[:-2]) / h[0] ** 2
        a[:, 2] += 9.81
        f = qm.rotate(qm.conjugate(st.quat[1:-1]), a)
        err = np.linalg.norm(f - st.acc[1:-1], axis=1)
        assert np.sqrt(np.mean(err**2)) < 0.1, placement
        assert err.max() < 1.0 * _largest_contact(ideal), placement
        dyn = np.linalg.norm(st.acc - np.linalg.norm(st.acc, axis=1).mean(), axis=1)
        assert dyn.std() > 0.1  # the signal has real dynamics to compare against


def test_standing_sensor_reads_gravity_upwards(ideal):
    t0, t1 = ideal.truth.calibration_window
    for placement, st in ideal.sensor_truth.items():
        m = (st.t > t0) & (st.t < t1)
        assert np.allclose(np.linalg.norm(st.acc[m], axis=1), 9.81, atol=0.05)
        up = qm.rotate(st.quat[m], st.acc[m] / 9.81)
        assert np.allclose(up, [0, 0, 1], atol=0.02), placement


def test_sensor_orientation_is_segment_times_mounting():
    s = simulate(
        "short", seed=4, sensors=[SensorSpec("pelvis", misalignment_deg=20), SensorSpec("lumbar_upper")]
    )
    for placement in ("pelvis", "lumbar_upper"):
        st = s.sensor_truth[placement]
        q_seg = qm.slerp(s.truth.t, s.truth.segment_quat[placement], st.t)
        ok = ~np.isnan(q_seg[:, 0])
        q = qm.multiply(q_seg[ok], s.truth.mounting[placement])
        assert np.degrees(qm.angle_between(q, st.quat[ok]).max()) < 0.1


def test_same_seed_same_session_and_other_seed_differs():
    a = simulate("short", seed=11, walk_s=6)
    b = simulate("short", seed=11, walk_s=6)
    c = simulate("short", seed=12, walk_s=6)
    for p in a.recording.streams:
        np.testing.assert_array_equal(a.recording.streams[p].acc, b.recording.streams[p].acc)
        np.testing.assert_array_equal(a.recording.streams[p].t, b.recording.streams[p].t)
    np.testing.assert_array_equal(a.truth.pelvic_tilt, b.truth.pelvic_tilt)
    assert not np.array_equal(a.recording.streams["pelvis"].t, c.recording.streams["pelvis"].t)
    assert not np.allclose(a.truth.mounting["pelvis"], c.truth.mounting["pelvis"])


def test_adding_a_sensor_leaves_motion_unchanged():
    a = simulate("short", seed=2, walk_s=6, sensors=[SensorSpec("pelvis")])
    b = simulate("short", seed=2, walk_s=6, sensors=[SensorSpec("pelvis"), SensorSpec("thigh_left")])
    np.testing.assert_array_equal(a.truth.hip_flexion_left, b.truth.hip_flexion_left)
    np.testing.assert_array_equal(a.recording.streams["pelvis"].acc, b.recording.streams["pelvis"].acc)


def _walker(**kw) -> VirtualPatient:
    base = dict(
        peak_hip_extension_left_deg=7.0, peak_hip_extension_right_deg=18.5, lumbar_compensation_gain=0.0
    )
    base.update(kw)
    return VirtualPatient(**base)


def test_realised_peak_hip_extension_per_side():
    s = simulate("walk", seed=6, patient=_walker(), walk_s=20, sensors=[SensorSpec("pelvis")])
    for side, want in (("left", 7.0), ("right", 18.5)):
        strides = s.truth.strides_for(side)
        assert len(strides) >= 8
        peaks = np.degrees([st.peak_hip_extension_rad for st in strides])
        assert np.all(np.abs(peaks - want) < 0.5), (side, peaks)
        # the peak falls in terminal stance (40-65 % of the stride)
        frac = [
            (st.t_peak_extension - st.t_initial_contact) / (st.t_end - st.t_initial_contact) for st in strides
        ]
        assert np.all((np.array(frac) > 0.4) & (np.array(frac) < 0.65))
    # left and right initial contacts alternate, about half a stride apart
    ics = [(st.t_initial_contact, st.side) for st in s.truth.strides if st.steady]
    assert all(a[1] != b[1] for a, b in zip(ics[:-1], ics[1:], strict=True))


def test_uncompensated_pelvic_tilt_excursion_in_normal_range():
    for amp in (2.2, 3.8):
        s = simulate("walk", seed=7, patient=_walker(pelvic_tilt_amplitude_deg=amp), walk_s=12, sensors=[])
        exc = np.degrees([st.pelvic_tilt_excursion_rad for st in s.truth.strides if st.steady])
        assert len(exc) > 4
        assert np.all((exc >= 2.0) & (exc <= 4.0)), exc
        assert np.allclose(exc, amp, atol=0.2)


def test_compensation_gain_adds_anterior_tilt_at_peak_extension():
    tilts = {}
    for gain in (0.0, 0.5):
        s = simulate("walk", seed=8, patient=_walker(lumbar_compensation_gain=gain), walk_s=12, sensors=[])
        tilts[gain] = {
            side: np.degrees(np.mean([st.pelvic_tilt_at_peak_ext_rad for st in s.truth.strides_for(side)]))
            for side in ("left", "right")
        }
    # deficit below 20 deg: left 13 deg, right 1.5 deg -> extra anterior tilt ~6.5 and ~0.75 deg
    extra_left = tilts[0.5]["left"] - tilts[0.0]["left"]
    extra_right = tilts[0.5]["right"] - tilts[0.0]["right"]
    assert 5.0 < extra_left < 8.0
    assert 0.3 < extra_right < 1.5
    # the compensating pelvis lets the thigh trail further behind than the hip extends
    s = simulate("walk", seed=8, patient=_walker(lumbar_compensation_gain=0.5), walk_s=12, sensors=[])
    st = s.truth.strides_for("left")[2]
    assert np.degrees(st.peak_thigh_extension_rad - st.peak_hip_extension_rad) > 5.0


def test_holds_follow_the_script(visit):
    truth = visit.truth
    p = truth.patient
    assert [(h.side, h.arching) for h in truth.holds] == [
        ("left", False),
        ("left", True),
        ("right", True),
        ("right", False),
    ]
    for h in truth.holds:
        assert h.duration_s == pytest.approx(8.0, abs=0.01)
        assert truth.activity_at(0.5 * (h.t_start + h.t_end)) == "kneeling"
        want = p.stretch_hip_extension_deg(h.side)
        assert np.degrees(h.hip_extension_rad) == pytest.approx(want, abs=0.5)
        if h.arching:
            assert np.degrees(h.pelvic_tilt_change_rad) == pytest.approx(p.arch_tilt_deg, abs=1.0)
            assert np.degrees(h.lumbar_extension_change_rad) > 5.0
            assert h.t_start < h.t_arch_start < h.t_end
        else:
            m = (truth.t >= h.t_start) & (truth.t <= h.t_end)
            tilt = np.degrees(truth.pelvic_tilt[m])
            assert np.abs(tilt - tilt[0]).max() < 2.0


def test_truth_angles_equal_recomputation_from_segment_quaternions(visit):
    truth = visit.truth
    again = segment_angles(truth.segment_quat)
    for name, values in again.items():
        np.testing.assert_allclose(getattr(truth, name), values, atol=1e-9, err_msg=name)
    # independent check of the hip definition: scipy intrinsic Z-X-Y of pelvis^-1 * thigh
    rel = qm.to_scipy(
        qm.multiply(qm.conjugate(truth.segment_quat["pelvis"]), truth.segment_quat["thigh_left"])
    )
    np.testing.assert_allclose(rel.as_euler("ZXY")[:, 0], truth.hip_flexion_left, atol=1e-9)
    angles = truth.angles()
    assert isinstance(angles, AngleSeries) and len(angles) == len(truth.t)


def test_sign_conventions_in_postures(visit):
    truth = visit.truth
    acts = {a.label: a for a in truth.activities}

    def mid(label, name):
        a = acts[label]
        m = (truth.t > a.t_start + 0.3 * (a.t_end - a.t_start)) & (
            truth.t < a.t_end - 0.3 * (a.t_end - a.t_start)
        )
        return np.degrees(np.median(getattr(truth, name)[m]))

    t0, t1 = truth.calibration_window
    cal = (truth.t >= t0) & (truth.t <= t1)
    assert np.degrees(np.abs(truth.pelvic_tilt[cal]).max()) < 1.5
    assert np.degrees(np.abs(truth.hip_flexion_left[cal]).max()) < 1.5
    # standing neutral facing +x: pelvis X = world x, Y = world z, Z = world -y
    r = qm.to_matrix(truth.segment_quat["pelvis"][cal][0])
    np.testing.assert_allclose(r, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=0.03)
    assert 80 < mid("sitting", "thigh_inclination_left") < 95  # thighs horizontal, knees forward
    assert mid("sitting", "pelvic_tilt") < -2  # slight posterior tilt
    assert 80 < mid("lying", "pelvis_inclination") < 100
    # a sitting thigh: its anterior axis points up, its superior axis backwards (towards the hip)
    a = acts["sitting"]
    i = int(np.searchsorted(truth.t, 0.5 * (a.t_start + a.t_end)))
    rt = qm.to_matrix(truth.segment_quat["thigh_left"][i])
    assert rt[2, 0] > 0.9
    # thigh inclination = hip flexion - pelvic tilt in sagittal-only postures (holds, sitting)
    for h in truth.holds:
        m = (truth.t >= h.t_start) & (truth.t <= h.t_end)
        side = h.side
        np.testing.assert_allclose(
            getattr(truth, f"thigh_inclination_{side}")[m],
            getattr(truth, f"hip_flexion_{side}")[m] - truth.pelvic_tilt[m],
            atol=1e-9,
        )
        # arching = anterior tilt: the pelvis superior axis leans forward (along the heading)
        if h.arching:
            q_end = truth.segment_quat["pelvis"][m][-1]
            q_start = truth.segment_quat["pelvis"][m][0]
            heading = qm.rotate(q_start, [1.0, 0.0, 0.0])
            lean_start = np.dot(qm.rotate(q_start, [0.0, 1.0, 0.0]), heading)
            lean_end = np.dot(qm.rotate(q_end, [0.0, 1.0, 0.0]), heading)
            assert lean_end - lean_start > np.sin(5 * DEG)


def test_activities_cover_the_session(visit):
    acts = visit.truth.activities
    assert acts[0].t_start == 0.0 and acts[0].label == "standing"
    assert acts[-1].t_end == pytest.approx(visit.truth.t[-1], abs=0.02)
    for a, b in zip(acts[:-1], acts[1:], strict=True):
        assert a.t_end == pytest.approx(b.t_start)
        assert a.label != b.label
    labels = {a.label for a in acts}
    assert labels == {"standing", "walking", "kneeling", "sitting", "lying", "transition"}
    t0, t1 = visit.truth.calibration_window
    assert acts[0].t_start <= t0 < t1 <= acts[0].t_end and t1 - t0 > 2.0


def test_walking_moves_at_the_patient_speed(visit):
    truth = visit.truth
    walk = next(a for a in truth.activities if a.label == "walking")
    st = visit.sensor_truth["pelvis"]
    m = (st.t > walk.t_start + 3) & (st.t < walk.t_start + 7)  # first straight leg
    speed = np.linalg.norm(st.position[m][-1, :2] - st.position[m][0, :2]) / (st.t[m][-1] - st.t[m][0])
    assert speed == pytest.approx(truth.patient.walking_speed_m_s, rel=0.1)
    z = st.position[m][:, 2]
    assert 0.02 < z.max() - z.min() < 0.08  # vertical bob of a few cm
    # U-turns at the corridor ends: some strides turn, most do not
    turning = [s.turning for s in truth.strides if s.steady]
    assert 0 < sum(turning) < 0.5 * len(turning)


def test_rates_and_jitter():
    sensors = [
        SensorSpec("pelvis", rate_hz=50.0, jitter_s=0.0),
        SensorSpec("thigh_left", rate_hz=200.0, jitter_s=0.001),
        SensorSpec("thigh_right", rate_hz=104.0, jitter_s=0.0, clock_ppm=500.0),
    ]
    s = simulate("short", seed=9, walk_s=6, sensors=sensors)
    dur = s.truth.t[-1]
    pel, thl, thr = (s.recording.streams[p] for p in ("pelvis", "thigh_left", "thigh_right"))
    assert np.allclose(np.diff(pel.t), 1 / 50.0)
    assert len(pel) == pytest.approx(dur * 50, abs=2)
    d = np.diff(thl.t)
    assert np.all(d > 0)
    assert np.median(d) == pytest.approx(1 / 200.0, rel=0.02)
    assert 0.0008 < d.std() < 0.002  # ~sqrt(2) * 1 ms
    assert np.diff(thr.t).mean() == pytest.approx(1 / (104.0 * 1.0005), rel=1e-6)
    assert all(st.t[0] >= 0 and st.t[-1] <= dur for st in (pel, thl, thr))
    np.testing.assert_array_equal(thl.seq, np.arange(len(thl)))


def test_misalignment_is_bounded_and_spans_the_range():
    rng = np.random.default_rng(0)
    spec = SensorSpec("thigh_left", misalignment_deg=20.0)
    angles = np.array(
        [np.degrees(qm.angle_between(draw_mounting(spec, rng), spec.nominal_mounting())) for _ in range(300)]
    )
    assert angles.max() <= 20.0 + 1e-9 and angles.max() > 17.0 and angles.min() < 3.0
    zero = SensorSpec("pelvis", misalignment_deg=0.0)
    assert qm.angle_between(draw_mounting(zero, rng), zero.nominal_mounting()) < 1e-9


def test_nominal_mountings_put_the_sensor_z_out_of_the_skin():
    out = {
        ("pelvis", "lateral"): [-1, 0, 0],
        ("lumbar_upper", "lateral"): [-1, 0, 0],
        ("thigh_left", "lateral"): [0, 0, -1],
        ("thigh_right", "lateral"): [0, 0, 1],
        ("thigh_left", "anterior"): [1, 0, 0],
    }
    for (placement, face), normal in out.items():
        spec = SensorSpec(placement, thigh_face=face)
        np.testing.assert_allclose(qm.rotate(spec.nominal_mounting(), [0, 0, 1]), normal, atol=1e-12)
        np.testing.assert_allclose(qm.rotate(spec.nominal_mounting(), [1, 0, 0]), [0, 1, 0], atol=1e-12)
        # the sensor sits on that surface: its position lies along the normal from the segment axis
        pos = spec.position_on_segment()
        assert np.dot(pos, normal) > 0.05


def test_quat_device_drifts_in_heading_but_keeps_inclination():
    spec = SensorSpec(
        "pelvis",
        kind="quat",
        rate_hz=60.0,
        heading_drift_deg_min=6.0,
        heading_walk_deg=0.0,
        inclination_noise_deg=0.3,
    )
    s = simulate("walk", seed=10, walk_s=50, sensors=[spec])
    stream, st = s.recording.streams["pelvis"], s.sensor_truth["pelvis"]
    assert stream.kind == "quat" and stream.acc is not None
    up_dev = qm.rotate(qm.conjugate(stream.quat), [0, 0, 1])
    up_true = qm.rotate(qm.conjugate(st.quat), [0, 0, 1])
    incl_err = np.degrees(np.arccos(np.clip(np.sum(up_dev * up_true, axis=1), -1, 1)))
    assert incl_err.max() < 1.5
    # the device world differs from the true world by a rotation about vertical that grows over time
    d = qm.multiply(stream.quat, qm.conjugate(st.quat))
    yaw = np.unwrap(2 * np.arctan2(d[:, 3], d[:, 0]))
    growth = np.degrees(abs(yaw[-1] - yaw[0]))
    minutes = (st.t[-1] - st.t[0]) / 60
    assert growth == pytest.approx(6.0 * minutes, rel=0.3)


def test_magnetometer_sees_the_earth_field():
    spec = SensorSpec("thigh_right", has_mag=True, mag_noise_ut=0.2)
    s = simulate("short", seed=13, walk_s=6, sensors=[spec])
    stream, st = s.recording.streams["thigh_right"], s.sensor_truth["thigh_right"]
    assert np.allclose(np.linalg.norm(stream.mag, axis=1), 48.0, atol=1.5)
    world = qm.rotate(st.quat, stream.mag)
    dip = np.degrees(np.arctan2(-world[:, 2], np.linalg.norm(world[:, :2], axis=1)))
    assert np.median(dip) == pytest.approx(65.0, abs=1.0)


def test_scenarios_and_timing_overrides():
    assert {"clinic_visit", "walk", "stretch", "short", "day"} <= set(SCENARIOS)
    for name in SCENARIOS:
        scen = build_scenario(name)
        assert scen.steps[0].kind == "stand" and scen.scripted_duration_s > 20
    short = simulate("short", seed=1, sensors=[])
    assert 35 < short.duration_s < 60
    assert {h.arching for h in short.truth.holds} == {True, False}
    assert {h.side for h in short.truth.holds} == {"left", "right"}
    quick = simulate("stretch", seed=1, sensors=[], holds_per_side=1, hold_s=4.0, calib_s=3.0, rest_s=1.0)
    assert len(quick.truth.holds) == 2 and quick.duration_s < 40
    with pytest.raises(KeyError):
        simulate("nope")


def test_cohort_is_varied_deterministic_and_simulates():
    a = make_cohort(12, seed=3)
    b = make_cohort(12, seed=3)
    assert [p for p, _ in a] == [p for p, _ in b]
    ext = [p.peak_hip_extension_left_deg for p, _ in a]
    assert np.ptp(ext) > 5 and all(0 <= e <= 25 for e in ext)
    assert all(2 <= p.pelvic_tilt_amplitude_deg <= 4 for p, _ in a)
    kinds = {s[0].kind for _, s in a}
    rates = {s[0].rate_hz for _, s in a}
    assert len(rates) > 1
    assert kinds <= {"raw", "quat"}
    for _, sensors in a:
        names = [s.placement for s in sensors]
        assert "pelvis" in names and any(n.startswith("thigh") for n in names)
        assert all(50 <= s.rate_hz <= 200 and s.misalignment_deg <= 20 for s in sensors)
    patient, sensors = a[0]
    s = simulate("short", seed=3, patient=patient, sensors=sensors, walk_s=6)
    assert set(s.recording.streams) == {x.placement for x in sensors}
    left = s.truth.strides_for("left")
    if left:
        assert np.degrees(left[0].peak_hip_extension_rad) == pytest.approx(
            patient.peak_hip_extension_left_deg, abs=0.5
        )


def test_relative_mounting_rotation_is_a_proper_rotation():
    # Rotation matrices of mountings are orthonormal with det +1 (no reflections sneaking in).
    for placement in ("pelvis", "thigh_left", "thigh_right", "lumbar_upper"):
        for face in ("lateral", "anterior"):
            m = Rotation.from_quat(
                qm.to_scipy(SensorSpec(placement, thigh_face=face).nominal_mounting()).as_quat()
            )
            assert np.linalg.det(m.as_matrix()[0]) == pytest.approx(1.0)

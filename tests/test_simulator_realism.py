"""The realistic virtual patient: gait variety, true heel strikes, soft-tissue artefact, calibration stance,
datasheet device errors (hipback.simulator: patient, gait, soft_tissue, device_profiles, truth)."""

from __future__ import annotations

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.simulator import (
    DEVICE_PROFILES,
    GroundTruth,
    SensorSpec,
    VirtualPatient,
    ideal_sensors,
    make_cohort,
    profile_sensor,
    simulate,
)
from hipback.simulator import gait as gait_mod

DEG = np.pi / 180


def _realistic(seed: int, **changes) -> VirtualPatient:
    p = VirtualPatient.realistic(np.random.default_rng(seed))
    for k, v in changes.items():
        setattr(p, k, v)
    return p


def test_realistic_patients_span_the_published_ranges():
    rng = np.random.default_rng(0)
    ps = [VirtualPatient.realistic(rng) for _ in range(200)]
    cad = np.array([p.cadence_steps_min for p in ps])
    assert cad.min() >= 70 and cad.max() <= 130 and np.ptp(cad) > 40
    flex_phase = np.array([p.hip_flexion_phase for p in ps])
    assert flex_phase.min() >= 0.70 and flex_phase.max() <= 0.92 and np.ptp(flex_phase) > 0.15
    assert any(p.hip_flexion_plateau > 0.5 for p in ps) and any(p.hip_flexion_plateau == 0 for p in ps)
    assert any(p.calibration_fidget_deg > 0 for p in ps) and any(p.calibration_fidget_deg == 0 for p in ps)
    assert all(0.5 <= p.soft_tissue <= 1.8 for p in ps)
    assert any(abs(p.step_asymmetry) > 0.02 for p in ps)
    # the easy default is unchanged: no soft tissue, normative curve, ideal stance
    easy = VirtualPatient()
    assert easy.soft_tissue == 0 and easy.hip_shape("left").is_default and easy.stance_deg()["hip_left"] == 0


@pytest.mark.parametrize(("pe", "pf", "plateau"), [(0.5, 0.72, 0.0), (0.55, 0.8, 0.8), (0.48, 0.9, 0.0)])
def test_hip_curve_puts_the_peaks_where_asked(pe, pf, plateau):
    ph = np.arange(4000) / 4000
    y = gait_mod.hip_shape(ph, gait_mod.HipShape(pe, pf, plateau))
    assert y.min() == pytest.approx(0.0, abs=1e-4) and y.max() == pytest.approx(1.0, abs=1e-4)
    assert ph[np.argmin(y)] == pytest.approx(pe, abs=0.03)
    assert ph[np.argmax(y)] == pytest.approx(pf, abs=0.03)
    assert np.all(np.isfinite(y))


def test_true_peak_flexion_follows_the_patient_and_heel_strikes_are_in_the_truth():
    p = _realistic(3, hip_flexion_phase=0.74, hip_flexion_phase_asymmetry=0.0, hip_flexion_plateau=0.0)
    s = simulate("walk", seed=3, patient=p, sensors=[], walk_s=30)
    tr = s.truth
    for side in ("left", "right"):
        ics = tr.initial_contacts[side]
        assert len(ics) >= 10 and np.all(np.diff(ics) > 0.3)
        strides = tr.strides_for(side)
        # every steady stride starts at a true heel strike
        for st in strides:
            assert np.min(np.abs(ics - st.t_initial_contact)) < 1e-9
        # peak hip flexion at ~74 % of the cycle (not the normative 87.5 %)
        fr = []
        for st in strides:
            m = (tr.t >= st.t_initial_contact) & (tr.t < st.t_end)
            k = int(np.argmax(getattr(tr, f"hip_flexion_{side}")[m]))
            fr.append((tr.t[m][k] - st.t_initial_contact) / (st.t_end - st.t_initial_contact))
        assert np.median(fr) == pytest.approx(0.74, abs=0.04)
    # initiation and termination steps are true contacts too, outside the steady strides
    steady = {round(st.t_initial_contact, 6) for st in tr.strides if st.steady}
    assert any(round(t, 6) not in steady for t in tr.initial_contacts["right"])


def test_stride_times_vary_like_real_walkers():
    p = _realistic(5, stride_variability=0.03)
    tr = simulate("walk", seed=5, patient=p, sensors=[], walk_s=60).truth
    d = np.array([s.t_end - s.t_initial_contact for s in tr.strides_for("right") if not s.turning])
    cv = d.std() / d.mean()
    assert 0.01 < cv < 0.06
    assert d.mean() == pytest.approx(p.stride_time_s, rel=0.1)


def test_soft_tissue_moves_the_sensor_against_the_bone_and_stays_consistent():
    p = _realistic(7, soft_tissue=1.5, calibration_fidget_deg=0.0)
    sens = ideal_sensors(("pelvis", "thigh_left", "thigh_right"))
    s = simulate("walk", seed=7, patient=p, sensors=sens, walk_s=20)
    t0, t1 = s.truth.calibration_window
    for placement, st in s.sensor_truth.items():
        q_seg = qm.slerp(s.truth.t, s.truth.segment_quat[placement], st.t)
        ok = ~np.isnan(q_seg[:, 0])
        dev = np.degrees(qm.angle_between(qm.multiply(q_seg[ok], s.truth.mounting[placement]), st.quat[ok]))
        calm = (st.t[ok] > t0) & (st.t[ok] < t1)
        assert dev[calm].max() < 1.5, placement  # the stance's small hip flexion slides the skin a little
        if placement == "pelvis":
            assert 0.5 < dev.max() < 6.0  # sacral sensor: 1-3 deg typical (Leardini 2005, Peters 2010)
        else:
            assert 2.0 < dev.max() < 15.0  # thigh: several degrees (Cappozzo 1996, Camomilla 2017)
        # gyro still integrates to the (moving) sensor orientation
        dq = qm.multiply(qm.conjugate(st.quat[:-1]), st.quat[1:])
        w_fd = qm.to_rotvec(dq) / np.diff(st.t)[:, None]
        err = np.linalg.norm(w_fd - 0.5 * (st.gyr[:-1] + st.gyr[1:]), axis=1)
        assert np.sqrt(np.mean(err**2)) < 0.02, placement


def test_calibration_stance_and_fidget_are_in_the_truth():
    p = _realistic(
        9,
        stance_hip_flexion_left_deg=4.0,
        stance_hip_flexion_right_deg=1.0,
        stance_tilt_deg=1.5,
        calibration_fidget_deg=8.0,
    )
    s = simulate("walk", seed=9, patient=p, sensors=[], walk_s=10, calib_s=10)
    tr = s.truth
    assert np.degrees(tr.stance_angles["hip_flexion_left"]) == pytest.approx(4.0, abs=1.0)
    assert np.degrees(tr.stance_angles["hip_flexion_right"]) == pytest.approx(1.0, abs=1.0)
    assert np.degrees(tr.stance_angles["pelvic_tilt"]) == pytest.approx(1.5, abs=1.0)
    t0, t1 = tr.calibration_window
    m = (tr.t >= t0) & (tr.t <= t1)
    moved = max(np.ptp(tr.hip_flexion_left[m]), np.ptp(tr.hip_flexion_right[m]))
    assert np.degrees(moved) > 6.0  # the weight shift during "stand still"
    # walks start from and end in the stance: no jump where the walk joins the standing
    walk = next(a for a in tr.activities if a.label == "walking")
    for edge in (walk.t_start, walk.t_end):
        k = int(np.searchsorted(tr.t, edge))
        for name in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt"):
            assert np.degrees(np.abs(np.diff(getattr(tr, name)[k - 5 : k + 5])).max()) < 0.2, (edge, name)


def test_device_profiles_follow_their_datasheets():
    for name, d in DEVICE_PROFILES.items():
        spec = profile_sensor("thigh_left", name, rate_hz=100.0)
        assert spec.error_profile == name
        assert spec.gyro_noise_rad_s == pytest.approx(d["gyro_noise_density"] * np.sqrt(50.0))
        assert spec.acc_noise_m_s2 == pytest.approx(d["acc_noise_density"] * np.sqrt(50.0))
    spec = profile_sensor("thigh_right", "diy_bmi270", acc_range_m_s2=12.0)
    s = simulate("walk", seed=11, patient=_realistic(11), sensors=[spec], walk_s=12)
    acc = s.recording.streams["thigh_right"].acc
    assert np.abs(acc).max() <= 12.0 + 1e-9  # saturates at the configured full scale
    assert np.isclose(np.abs(acc).max(), 12.0)  # heel strikes on a thigh do reach it
    errs = s.truth.meta["sensor_errors"]["thigh_right"]
    m = np.asarray(errs["gyro_sensitivity_error"])
    assert 0 < np.abs(m).max() < 0.05
    with pytest.raises(KeyError):
        profile_sensor("pelvis", "nope")


def test_realistic_cohort_is_deterministic_and_the_easy_one_unchanged():
    a = make_cohort(6, seed=2, realistic=True)
    b = make_cohort(6, seed=2, realistic=True)
    assert [p for p, _ in a] == [p for p, _ in b]
    assert all(s.error_profile for _, ss in a for s in ss)
    assert all(s.misalignment_deg <= 30 for _, ss in a for s in ss)
    easy = make_cohort(6, seed=2)
    assert all(p.soft_tissue == 0 for p, _ in easy)
    assert all(not s.error_profile for _, ss in easy for s in ss)


def test_truth_with_heel_strikes_round_trips(tmp_path):
    s = simulate("walk", seed=13, patient=_realistic(13), sensors=[SensorSpec("pelvis")], walk_s=8)
    s.truth.save(tmp_path)
    back = GroundTruth.load(tmp_path)
    for side in ("left", "right"):
        np.testing.assert_allclose(back.initial_contacts[side], s.truth.initial_contacts[side], atol=1e-4)
    for k, v in s.truth.stance_angles.items():
        assert back.stance_angles[k] == pytest.approx(v, abs=1e-5)
    assert back.patient == s.truth.patient


def test_heel_strike_transients_follow_the_contacts_late_and_irregular():
    """Each transient starts ``heel_strike_delay_s`` (jittered) after its contact and peaks where the
    unit response does (its peak lag after the onset), with sizes varying from contact to contact; nothing
    moves before the contact (causal), unlike the Gaussian-windowed wavelet used before."""
    from hipback.simulator.motion import impact_pulses, impact_response, variable_heel_strikes

    p = _realistic(
        15, heel_strike_delay_s=0.02, heel_strike_jitter_s=0.005, heel_strike_cv=0.4, step_asymmetry=0.0
    )
    f0, dt = 1.0, 0.001
    t = np.arange(0.0, 20.0, dt)
    z = variable_heel_strikes(t * f0, f0, p, np.random.default_rng(1), dt)
    acc = np.gradient(np.gradient(z, dt), dt)
    unit = np.gradient(np.gradient(impact_response(impact_pulses(t - 1.0), dt, 18.0), dt), dt)
    peak_lag = t[np.argmax(unit)] - 1.0  # from the onset to the peak of one transient
    assert 0.005 < peak_lag < 0.015
    lags, peaks, before = [], [], []
    for ic in np.arange(1.0, 19.0, 0.5):  # right and left contacts half a cycle apart
        m = (t > ic - 0.1) & (t < ic + 0.15)
        k = int(np.argmax(acc[m]))
        lags.append(t[m][k] - ic)
        peaks.append(acc[m][k])
        before.append(np.abs(acc[(t > ic - 0.1) & (t < ic - 0.002)]).max())
    lags = np.array(lags)
    assert np.all((lags > 0.0) & (lags < 0.045 + peak_lag))
    assert np.mean(lags) == pytest.approx(0.02 + peak_lag, abs=0.005)
    assert 0.002 < np.std(lags) < 0.01
    assert np.std(peaks) / np.mean(peaks) > 0.15
    assert max(before) < 1e-3 * np.mean(peaks)  # the ringing of the contact before has died away


def test_impact_response_is_causal_and_scaled_to_its_peak():
    """A pulse of height h starting at 1 s: nothing before it, the acceleration's peak is h (first in the
    pulse's direction, within the pulse), the ringing decays to under 10 % within 0.12 s; ``displacement``
    scales the motion itself to h."""
    from hipback.simulator.motion import IMPACT_PULSE_S, impact_pulses, impact_response

    dt = 0.001
    t = np.arange(0.0, 2.0, dt)
    x = impact_response(impact_pulses(t - 1.0, 7.0), dt, 15.0)
    a = np.gradient(np.gradient(x, dt), dt)
    assert np.abs(x[t < 0.999]).max() == 0.0
    assert np.abs(a).max() == pytest.approx(7.0, rel=0.02)
    assert 1.0 < t[np.argmax(a)] < 1.0 + IMPACT_PULSE_S
    assert np.abs(a[t > 1.12]).max() < 0.1 * 7.0
    theta = impact_response(impact_pulses(t - 1.0, 0.02), dt, 12.0, peak="displacement")
    assert np.abs(theta).max() == pytest.approx(0.02, rel=1e-9)
    assert np.abs(theta[t < 0.999]).max() == 0.0


def test_thigh_sensor_does_not_shake_before_its_contacts():
    """The thigh sensor's heel-strike shake (wobble) starts at its own contacts: against the same walker
    without it, the sensor's acceleration differs by nothing in the 60 ms before each contact of its side
    and by metres per second squared in the 60 ms after."""
    p = _realistic(
        19, soft_tissue=0.0, heel_strike_acc_m_s2=0.0, heel_strike_cv=0.0, heel_strike_jitter_s=0.0
    )
    quiet = SensorSpec("thigh_left", soft_tissue_deg=0.0, impact_acc_m_s2=0.0)
    shaky = SensorSpec("thigh_left", soft_tissue_deg=1.5, impact_acc_m_s2=15.0)
    a = simulate("walk", seed=19, patient=p, sensors=[quiet], walk_s=15).sensor_truth["thigh_left"]
    b = simulate("walk", seed=19, patient=p, sensors=[shaky], walk_s=15).sensor_truth["thigh_left"]
    diff = np.linalg.norm(b.acc - a.acc, axis=1)
    ics = simulate("walk", seed=19, patient=p, sensors=[], walk_s=15).truth.initial_contacts["left"][2:-2]
    before = [diff[(a.t > ic - 0.06) & (a.t < ic - 0.011)].max() for ic in ics]
    after = [diff[(a.t > ic) & (a.t < ic + 0.06)].max() for ic in ics]
    assert max(before) < 0.05 and np.median(after) > 5.0


def test_sacral_sensor_shakes_after_both_sides_contacts():
    p = _realistic(
        17, soft_tissue=0.0, heel_strike_acc_m_s2=0.0, heel_strike_cv=0.0, heel_strike_jitter_s=0.0
    )
    quiet = profile_sensor("pelvis", "diy_bmi270", gyro_noise_rad_s=0.0, acc_noise_m_s2=0.0)
    shaky = profile_sensor(
        "pelvis", "diy_bmi270", np.random.default_rng(3), gyro_noise_rad_s=0.0, acc_noise_m_s2=0.0
    )
    assert 0 < shaky.soft_tissue_deg < 1 and shaky.impact_acc_m_s2 > 1 and shaky.impact_delay_s > 0
    a = simulate("walk", seed=17, patient=p, sensors=[quiet], walk_s=15).sensor_truth["pelvis"]
    b = simulate("walk", seed=17, patient=p, sensors=[shaky], walk_s=15).sensor_truth["pelvis"]
    diff = np.linalg.norm(b.acc - a.acc, axis=1)
    tr = simulate("walk", seed=17, patient=p, sensors=[], walk_s=15).truth
    for side in ("left", "right"):
        ics = tr.initial_contacts[side][2:-2]
        after = [diff[(a.t > ic) & (a.t < ic + 0.12)].max() for ic in ics]
        assert np.median(after) > 0.5  # m/s^2 of shake after every contact of either side
    quiet_mid = diff[(a.t > 3.0) & (a.t < 5.0)]  # standing: nothing
    assert quiet_mid.max() < 1e-6


def test_walkers_push_off_more_or_less_firmly_and_at_different_moments():
    """The vertical ground reaction force varies between walkers at one speed (peaks firmer or softer, the
    push-off peak earlier or later in the stance), so the sacral acceleration of some rises into the contact
    (as a real walker's does, steepest about 50 ms before it) and of others levels off until it."""
    from hipback.simulator.loading import GroundReaction

    rng = np.random.default_rng(2)
    ps = [VirtualPatient.realistic(rng) for _ in range(200)]
    at = np.array([p.grf_peak2_at for p in ps])
    assert at.min() >= 0.75 and at.max() <= 0.86 and np.ptp(at) > 0.08
    fast = [p for p in ps if p.walking_speed_m_s > 1.3]
    peak1 = np.array([p.grf_peak1 for p in fast])
    assert len(fast) > 10 and np.ptp(peak1) > 0.15  # the speed trend alone spans about 0.05 among them
    assert all(0.3 <= p.grf_valley < min(p.grf_peak1, p.grf_peak2) for p in ps)
    # the default keeps the push-off peak at 80 % of the stance and 55 % of it half-way to toe-off
    grf = GroundReaction()
    assert grf.foot_force(np.array([0.8, 0.9])) == pytest.approx([grf.peak2, 0.55 * grf.peak2])
    # a later push-off peak: the body's vertical acceleration rises more over the 150 ms before the contact
    stride_s = 0.95
    ms = np.arange(-200, 1) / 1000.0
    rises = []
    for peak2_at in (0.75, 0.8, 0.86):
        g = GroundReaction(1.25, 0.65, 1.12, 0.6, 0.5, peak2_at)
        a = g.body_acceleration(0.5 + ms / stride_s)  # the left contact at phase 0.5
        assert g.foot_force(np.array([peak2_at]))[0] == pytest.approx(1.12)
        rises.append(float(a[-1] - a[50]))
    assert rises[0] < rises[1] < rises[2] and rises[2] > 3.5, rises
    with pytest.raises(ValueError, match="peak2_at"):
        GroundReaction(peak2_at=0.95)

"""A thigh sensor on a loose strap: the ringing after each heel strike must not decide its medio-lateral axis.

The calibration takes the thigh's axis from its swing (the principal direction of the angular velocity); a
sensor on a loose strap rings by several degrees at 10-20 Hz after each contact, about any axis, at rates
above the swing's (the qmt full-body recording's thigh sensors: about 7 deg, ``bench/realism.py``).
:func:`swing_rate` low-passes the angular velocity first.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.calibration import (
    CalibrationSettings,
    angular_velocity,
    calibrate_sensor,
    swing_rate,
)
from hipback.processing.pipeline import process_recording
from hipback.simulator import make_cohort, simulate
from hipback.simulator.session import LOOSE_STRAPS_SHARE
from tests.synth_processing import nominal_mounting, segment_quats

RATE = 100.0


def _thigh(ring_deg: float, seconds: float = 20.0, stand_s: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Left thigh sensor orientations: standing, then a 1 Hz swing of 20 deg about the medio-lateral axis,
    with a damped 12 Hz rotation of ``ring_deg`` (time constant 60 ms) about an axis between the thigh's
    anterior and medio-lateral axes after each swing's contact (when the thigh is most flexed). Returns
    (t, q_sensor)."""
    t = np.arange(0.0, seconds, 1.0 / RATE)
    walking = t >= stand_s
    hip = np.where(walking, np.radians(10.0) + np.radians(20.0) * np.sin(2 * np.pi * (t - stand_s)), 0.0)
    zeros = np.zeros_like(t)
    q_seg = segment_quats({"hip_flexion_left": hip, "hip_flexion_right": zeros, "pelvic_tilt": zeros})
    since = np.mod(t - stand_s - 0.25, 1.0)  # the contact a quarter cycle after the swing's start
    ring = np.radians(ring_deg) * np.exp(-since / 0.06) * np.sin(2 * np.pi * 12.0 * since) * walking
    axis = np.array([1.0, 0.0, 0.5]) / math.sqrt(1.25)  # (segment frame: anterior, superior, right)
    wobble = qm.from_rotvec(np.outer(ring, axis))
    return t, qm.multiply(qm.multiply(q_seg["thigh_left"], wobble), nominal_mounting("thigh_left"))


def _ml_error_deg(cal) -> float:
    z = qm.rotate(cal.q_segment_in_sensor, [0.0, 0.0, 1.0])
    z_true = qm.rotate(qm.conjugate(nominal_mounting("thigh_left")), [0.0, 0.0, 1.0])
    return math.degrees(math.acos(min(1.0, float(z @ z_true))))  # signed: a flipped axis is 180 deg off


def _calibrate(q: np.ndarray, settings: CalibrationSettings):
    n = round(3.0 * RATE)
    return calibrate_sensor("thigh_left", q[:n], q[n:], RATE, (0.0, 3.0), settings)


def test_the_ringing_of_a_loose_strap_does_not_decide_the_thigh_axis():
    _, q = _thigh(ring_deg=8.0)
    cal = _calibrate(q, CalibrationSettings())
    assert _ml_error_deg(cal) < 2.0
    assert "wrong_side" not in cal.flags
    assert cal.ml_uncertainty_deg < 2.0
    # without the low-pass (the calibration before it) the ringing pulls the axis about 20 deg away
    raw = _calibrate(q, CalibrationSettings(swing_cutoff_hz=0.0))
    assert _ml_error_deg(raw) > 15.0


def test_a_firm_strap_gives_the_same_axis_with_and_without_the_low_pass():
    _, q = _thigh(ring_deg=0.0)
    a = _calibrate(q, CalibrationSettings())
    b = _calibrate(q, CalibrationSettings(swing_cutoff_hz=0.0))
    assert _ml_error_deg(a) < 0.5 and _ml_error_deg(b) < 0.5
    assert a.flags == b.flags == []


def test_swing_rate_keeps_the_swing_and_removes_the_ringing():
    t = np.arange(0.0, 10.0, 1.0 / RATE)
    swing = np.column_stack([np.zeros_like(t), np.zeros_like(t), 2.0 * np.sin(2 * np.pi * t)])
    ringing = np.column_stack([10.0 * np.sin(2 * np.pi * 15.0 * t), np.zeros_like(t), np.zeros_like(t)])
    out = swing_rate(swing + ringing, RATE, 6.0)
    inner = slice(100, -100)  # (away from the ends, where the filter starts and stops)
    assert np.max(np.abs(out[inner, 2] - swing[inner, 2])) < 0.02 * 2.0  # the swing within 2 %
    assert np.max(np.abs(out[inner, 0])) < 0.05 * 10.0  # the 15 Hz ringing down to under 5 %


def test_swing_rate_keeps_missing_rows_missing_and_short_or_unfilterable_series_unchanged():
    t, q = _thigh(ring_deg=8.0, seconds=6.0)
    omega = angular_velocity(q, RATE)  # row 0 is NaN (no previous sample)
    omega[200:205] = np.nan
    out = swing_rate(omega, RATE, 6.0)
    missing = ~np.isfinite(omega).all(axis=1)
    assert np.array_equal(~np.isfinite(out).all(axis=1), missing)
    short = omega[1:8]
    assert swing_rate(short, RATE, 6.0) is short or np.array_equal(swing_rate(short, RATE, 6.0), short)
    for cutoff in (0.0, RATE / 2, RATE):
        assert np.array_equal(swing_rate(omega, RATE, cutoff), omega, equal_nan=True)


def test_loose_straps_of_the_realistic_cohort():
    base = make_cohort(12, 3, realistic=True, loose_straps=0.0)
    default = make_cohort(12, 3, realistic=True)
    assert default == make_cohort(12, 3, realistic=True, loose_straps=LOOSE_STRAPS_SHARE) != base
    loose = make_cohort(12, 3, realistic=True, loose_straps=1.0)
    for (p0, s0), (p1, s1) in zip(base, loose, strict=True):
        assert p0 == p1
        for a, b in zip(s0, s1, strict=True):
            if a.placement.startswith("thigh"):
                assert 5.0 <= b.soft_tissue_deg <= 10.0 and 40.0 <= b.impact_acc_m_s2 <= 80.0
            else:
                assert a == b
    some = make_cohort(40, 3, realistic=True, loose_straps=0.3)
    n_loose = sum(any(s.soft_tissue_deg >= 5.0 for s in sensors if s.placement.startswith("thigh"))
                  for _, sensors in some)
    assert 4 <= n_loose <= 20
    with pytest.raises(ValueError, match="share"):
        make_cohort(3, 1, realistic=True, loose_straps=1.5)
    with pytest.raises(ValueError, match="realistic"):
        make_cohort(3, 1, loose_straps=0.5)
    assert make_cohort(6, 2) == make_cohort(6, 2, loose_straps=0.0)  # the easy cohort has none


def _gain(res, truth, name: str) -> float:
    """Slope of hipback's angle against the truth's over the rows where both are known (rad/rad)."""
    est = getattr(res.angles, name)
    true = np.interp(res.angles.t, truth.t, getattr(truth, name))
    ok = np.isfinite(est) & np.isfinite(true)
    x, y = true[ok] - true[ok].mean(), est[ok] - est[ok].mean()
    return float(x @ y / (x @ x))


def test_a_virtual_walker_on_loose_straps_keeps_both_hips():
    """A Movella DOT walker of the realistic cohort with both thigh sensors on loose straps (anterior, 120
    Hz): before the low-pass, both thighs' axes came out wrong (hip flexion gains -0.6 and -0.2, one sensor
    flagged as facing backwards)."""
    patient, sensors = make_cohort(21, 1, realistic=True, loose_straps=1.0)[20]
    assert [s.thigh_face for s in sensors if s.placement.startswith("thigh")] == ["anterior", "anterior"]
    sim = simulate("walk", seed=1020, patient=patient, sensors=sensors, walk_s=40.0)
    res = process_recording(sim.recording)
    assert all(not c.flags for c in res.calibration.values())
    for side in ("left", "right"):
        assert 0.9 < _gain(res, sim.truth, f"hip_flexion_{side}") < 1.05

"""The virtual patient's exercise sessions give each sensor its own datasheet errors.

A device's scale-factor and cross-axis errors (``hipback.simulator.device_profiles``) are drawn per sensor,
as :func:`hipback.simulator.simulate` and ``simulate_visit`` draw them: two sensors of the same make in one
session, or the same sensor in two sessions, do not share one sensitivity matrix.
"""

from __future__ import annotations

import numpy as np

from hipback.simulator.device_profiles import profile_sensor
from hipback.simulator.exercises import ExerciseSet, simulate_programme

PROGRAMME = [ExerciseSet("clamshell", "left", 2), ExerciseSet("knee_to_chest_double", None, 1, hold_s=4.0)]


def _sensitivity(session, placement: str) -> np.ndarray:
    """The accelerometer's sensitivity error ``M`` (3 x 3) of a stream, by least squares of the measured
    minus the true specific force on the true one (and a constant: the offset)."""
    s = session.recording.streams[placement]
    true = session.sensor_truth[placement].acc
    x = np.column_stack([true, np.ones(len(true))])
    coef, *_ = np.linalg.lstsq(x, s.acc - true, rcond=None)
    return coef[:3].T


def test_each_sensor_draws_its_own_scale_and_cross_axis_errors() -> None:
    sensors = [profile_sensor(p, "diy_bmi270") for p in ("pelvis", "thigh_left", "thigh_right")]
    one = simulate_programme(PROGRAMME, seed=2, sensors=sensors)
    other = simulate_programme(PROGRAMME, seed=3, sensors=sensors)
    m = {p: _sensitivity(one, p) for p in ("pelvis", "thigh_left", "thigh_right")}
    # recovered to about 1e-4; the profile's terms are 0.005 (scale) and 0.004 (cross-axis), 1 sigma
    assert np.abs(m["pelvis"] - m["thigh_left"]).max() > 0.003
    assert np.abs(m["thigh_left"] - m["thigh_right"]).max() > 0.003
    assert np.abs(m["pelvis"] - _sensitivity(other, "pelvis")).max() > 0.003
    # and the session's truth keeps them, with the offsets
    errors = one.truth.meta["sensor_errors"]
    for p in m:
        np.testing.assert_allclose(np.array(errors[p]["acc_sensitivity_error"]), m[p], atol=5e-4)
        assert len(errors[p]["acc_bias_m_s2"]) == 3

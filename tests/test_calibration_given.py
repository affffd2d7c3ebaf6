"""A calibration from an earlier recording of the same strapping (a static calibration trial) with the
thighs' and the pelvis' medio-lateral axes taken from this recording's own movement (``refine_axes``).

A static trial (standing only) gives each thigh its vertical but only the placement prior for its
medio-lateral axis; a thigh sensor turned about the thigh's long axis then sees the flexion through a wrong
axis.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.calibration import (
    NO_MOVEMENT_REASON,
    CalibrationSettings,
    calibrate_sensor,
    needs_axis,
    refine_axis,
)
from hipback.processing.pipeline import ProcessorConfig, process_recording
from tests.synth_processing import make_recording, truth_on

QUAT3 = {"pelvis": "quat", "thigh_left": "quat", "thigh_right": "quat"}
# the left thigh's sensor turned 25 deg about the thigh's long axis (sensor x, roughly up)
MISALIGN = {"thigh_left": qm.from_axis_angle([1.0, 0.0, 0.0], math.radians(25.0))}


def _rmse_deg(res, truth, name: str) -> float:
    v = getattr(res.angles, name)
    ok = np.isfinite(v)
    return math.degrees(float(np.sqrt(np.mean((v[ok] - truth_on(res.angles.t, truth, name)[ok]) ** 2))))


def _static_calibration(rec) -> dict:
    """What a standing-only trial gives: every sensor's calibration from the recording's first 3 s of
    standing without movement (thighs: the placement prior), with no window on this recording's clock."""
    out = {}
    for p, s in rec.streams.items():
        q = s.quat[s.t < 3.0]
        cal = calibrate_sensor(p, q, None, s.rate_hz, (math.nan, math.nan), CalibrationSettings())
        out[p] = cal
    return out


def test_a_static_trial_with_this_recordings_walking_gives_the_thigh_axes():
    rec, truth = make_recording(30.0, kinds=QUAT3, misalign=MISALIGN, seed=21)
    static = _static_calibration(rec)
    assert needs_axis(static["thigh_left"]) and needs_axis(static["pelvis"])
    given = process_recording(rec, ProcessorConfig(initial_calibration=copy.deepcopy(static)))
    refined = process_recording(
        rec, ProcessorConfig(initial_calibration=copy.deepcopy(static), refine_axes=True)
    )
    assert given.calibration["thigh_left"].method == "standing+prior"
    cal = refined.calibration["thigh_left"]
    assert cal.method == "standing+functional" and NO_MOVEMENT_REASON not in cal.reasons
    assert cal.ml_uncertainty_deg < 5.0
    # the prior's axis is 25 deg off: the flexion is seen through it (cos 25 deg); the refined axis is right
    assert _rmse_deg(given, truth, "hip_flexion_left") > 1.0
    assert _rmse_deg(refined, truth, "hip_flexion_left") < 0.05
    # the verticals stay the given ones; the pelvis' axis comes from the walk too
    for p in ("thigh_left", "pelvis"):
        y_given = qm.rotate(static[p].q_segment_in_sensor, [0.0, 1.0, 0.0])
        y_refined = qm.rotate(refined.calibration[p].q_segment_in_sensor, [0.0, 1.0, 0.0])
        assert float(y_given @ y_refined) > math.cos(math.radians(0.01)), p
    assert refined.calibration["pelvis"].method == "standing+walking"
    assert _rmse_deg(refined, truth, "pelvic_tilt") < 0.05
    # every row of the recording has its angles (none released before the calibration)
    assert np.isfinite(refined.angles.hip_flexion_left).all()


def test_chunking_does_not_change_the_refined_calibration():
    rec, _ = make_recording(30.0, kinds=QUAT3, misalign=MISALIGN, seed=22)
    static = _static_calibration(rec)
    cfg = ProcessorConfig(initial_calibration=static, refine_axes=True)
    whole = process_recording(rec, cfg, chunk_s=None)
    pieces = process_recording(rec, cfg, chunk_s=0.7)
    for p in QUAT3:
        np.testing.assert_array_equal(whole.calibration[p].q_segment_in_sensor,
                                      pieces.calibration[p].q_segment_in_sensor)
    np.testing.assert_array_equal(whole.angles.hip_flexion_left, pieces.angles.hip_flexion_left)


def test_without_movement_the_given_calibration_is_kept():
    rec, _ = make_recording(30.0, kinds=QUAT3, seed=23)
    static = _static_calibration(rec)
    standing = {p: s.slice(0, int(np.searchsorted(s.t, 3.0))) for p, s in rec.streams.items()}
    res = process_recording(
        type(rec)(standing), ProcessorConfig(initial_calibration=static, refine_axes=True)
    )
    for p in QUAT3:
        assert res.calibration[p].method == "standing+prior"
        np.testing.assert_array_equal(res.calibration[p].q_segment_in_sensor, static[p].q_segment_in_sensor)
    assert any("no walking or leg swing in this recording either" in m for m in res.messages)


def test_refine_axis_keeps_the_earlier_standing_faults_and_needs_a_thigh_without_axis():
    rec, _ = make_recording(30.0, kinds=QUAT3, seed=24)
    s = rec.streams["thigh_right"]
    static = _static_calibration(rec)["thigh_right"]
    static.quality -= 0.2
    static.reasons.append("standing window shorter than 3 s")
    out = refine_axis(static, s.quat[s.t >= 3.0], s.rate_hz)
    assert out.method == "standing+functional"
    assert out.quality == pytest.approx(0.8)  # 1.0 at most, less the earlier window's 0.2
    assert out.reasons[0] == "standing window shorter than 3 s"
    assert refine_axis(out, s.quat, s.rate_hz) is out  # already functional: unchanged

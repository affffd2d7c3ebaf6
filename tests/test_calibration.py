"""Calibration: standing vertical + functional medio-lateral axis, placement checks, streaming finder."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hipback.processing import quaternion as qm
from hipback.processing.calibration import CalibrationSettings, StandingFinder, calibrate_sensor
from hipback.processing.pipeline import process_recording
from hipback.processing.types import Recording, SensorStream
from tests.synth_processing import make_recording, nominal_mounting, segment_quats, truth_on

QUAT3 = {"pelvis": "quat", "thigh_left": "quat", "thigh_right": "quat"}
# Noise-free synthetic sessions: the angles come out within 0.001-0.007 deg RMSE and the segment axes within
# 0.0001 deg (measured 25 Nov 2026); 0.05 deg keeps a 7x margin and still catches a real regression, which the
# 0.5-5 deg tolerances used before did not.
NOISE_FREE_DEG = 0.05


def corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def rmse_deg(res, truth, name: str) -> float:
    v = getattr(res.angles, name)
    ok = np.isfinite(v)
    return math.degrees(float(np.sqrt(np.mean((v[ok] - truth_on(res.angles.t, truth, name)[ok]) ** 2))))


def test_recovers_segment_axes_of_misaligned_sensors():
    rng = np.random.default_rng(11)
    mis = {p: qm.from_rotvec(rng.normal(size=3) / math.sqrt(3) * math.radians(18.0)) for p in QUAT3}
    rec, truth = make_recording(30.0, kinds=QUAT3, misalign=mis, seed=11)
    res = process_recording(rec)
    for p in QUAT3:
        cal = res.calibration[p]
        # the calibrated segment frame maps onto the true sensor-to-segment mounting
        true_c = qm.conjugate(qm.multiply(nominal_mounting(p), mis[p]))  # segment-in-sensor
        y_est = qm.rotate(cal.q_segment_in_sensor, [0.0, 1.0, 0.0])
        y_true = qm.rotate(true_c, [0.0, 1.0, 0.0])
        assert math.degrees(math.acos(min(1.0, float(y_est @ y_true)))) < NOISE_FREE_DEG, p
        if p.startswith("thigh"):
            z_est = qm.rotate(cal.q_segment_in_sensor, [0.0, 0.0, 1.0])
            z_true = qm.rotate(true_c, [0.0, 0.0, 1.0])
            assert math.degrees(math.acos(min(1.0, float(z_est @ z_true)))) < NOISE_FREE_DEG, p
            assert cal.method == "standing+functional" and cal.quality > 0.8
    for name in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt"):
        assert rmse_deg(res, truth, name) < NOISE_FREE_DEG, name


def test_anterior_thigh_sensor_is_recognised():
    rec, truth = make_recording(30.0, kinds=QUAT3, faces={"thigh_left": "anterior"}, seed=12)
    res = process_recording(rec)
    assert res.calibration["thigh_left"].face == "anterior"
    assert res.calibration["thigh_right"].face == "lateral"
    assert rmse_deg(res, truth, "hip_flexion_left") < NOISE_FREE_DEG


def test_sensor_facing_medially_is_flagged_but_angles_keep_their_sign():
    # left-thigh sensor strapped like a right-thigh one (z pointing medially): the movement decides
    rec, truth = make_recording(30.0, kinds=QUAT3, mount_as={"thigh_left": "thigh_right"}, seed=13)
    res = process_recording(rec)
    cal = res.calibration["thigh_left"]
    assert "wrong_side" in cal.flags and cal.quality < 0.8
    assert any("other leg" in w for w in res.warnings)
    assert rmse_deg(res, truth, "hip_flexion_left") < NOISE_FREE_DEG


def test_swapped_thigh_sensors_are_exchanged():
    rec, truth = make_recording(30.0, kinds=QUAT3, seed=14, ext_deg=8.0)
    left, right = rec.streams["thigh_left"], rec.streams["thigh_right"]
    streams = dict(rec.streams)
    streams["thigh_left"] = SensorStream(
        "thigh_left", "quat", right.t, right.rate_hz, quat=right.quat, acc=right.acc
    )
    streams["thigh_right"] = SensorStream(
        "thigh_right", "quat", left.t, left.rate_hz, quat=left.quat, acc=left.acc
    )
    res = process_recording(Recording(streams))
    assert any("swapped" in w for w in res.warnings)
    assert "swapped" in res.calibration["thigh_left"].flags
    assert rmse_deg(res, truth, "hip_flexion_left") < NOISE_FREE_DEG
    assert rmse_deg(res, truth, "hip_flexion_right") < NOISE_FREE_DEG


def test_upside_down_sensor_is_reported_and_angles_are_right():
    flip = qm.from_axis_angle([0.0, 0.0, 1.0], math.pi)  # about the sensor's out-of-skin axis
    rec, truth = make_recording(30.0, kinds=QUAT3, misalign={"thigh_right": flip, "pelvis": flip}, seed=15)
    res = process_recording(rec)
    assert "upside_down" in res.calibration["thigh_right"].flags
    assert "upside_down" in res.calibration["pelvis"].flags
    assert rmse_deg(res, truth, "hip_flexion_right") < NOISE_FREE_DEG
    assert rmse_deg(res, truth, "pelvic_tilt") < NOISE_FREE_DEG


def test_without_movement_the_prior_is_used_with_lower_quality():
    t = np.arange(0, 10, 0.01)
    truth = {
        "hip_flexion_left": np.zeros_like(t),
        "hip_flexion_right": np.zeros_like(t),
        "pelvic_tilt": np.zeros_like(t),
    }
    q_seg = segment_quats(truth)["thigh_left"]
    q_s = qm.multiply(q_seg, nominal_mounting("thigh_left"))
    cal = calibrate_sensor("thigh_left", q_s[:300], q_s[300:], 100.0, (0.0, 3.0), CalibrationSettings())
    assert cal.method == "standing+prior" and cal.quality <= 0.7
    assert any("prior" in r for r in cal.reasons)
    # the prior alone (perfect placement) gives the right frame
    z = qm.rotate(cal.q_segment_in_sensor, [0.0, 0.0, 1.0])
    z_true = qm.rotate(qm.conjugate(nominal_mounting("thigh_left")), [0.0, 0.0, 1.0])
    assert float(z @ z_true) > 0.999


def test_standing_window_is_found_after_some_movement():
    rec, truth = make_recording(30.0, kinds=QUAT3, seed=16, stand_s=8.0)
    # first 3 s: the patient shifts about (thighs rotate), then stands still
    for p, s in rec.streams.items():
        wob = qm.from_axis_angle([0.0, 1.0, 0.0], 0.3 * np.sin(2 * np.pi * s.t) * (s.t < 3.0))
        rec.streams[p] = SensorStream(p, "quat", s.t, s.rate_hz, quat=qm.multiply(s.quat, wob), acc=s.acc)
    res = process_recording(rec)
    w = res.calibration["pelvis"].window
    assert 3.0 <= w[0] < 3.6 and w[1] - w[0] >= 2.9
    after = res.angles.t > 3.0
    res.angles = res.angles.slice(int(np.argmax(after)), len(res.angles))  # the wobble is not in the truth
    assert rmse_deg(res, truth, "hip_flexion_left") < NOISE_FREE_DEG


@settings(max_examples=40, deadline=None)
@given(flags=st.lists(st.booleans(), min_size=0, max_size=60), cuts=st.lists(st.integers(0, 60), max_size=8))
def test_standing_finder_does_not_depend_on_chunking(flags, cuts):
    ok = np.array(flags, dtype=bool)
    whole = StandingFinder(5, 9)
    r1 = whole.update(0, ok)
    part = StandingFinder(5, 9)
    idx = sorted({c for c in cuts if c <= len(ok)} | {0, len(ok)})
    r2 = None
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        r2 = part.update(a, ok[a:b]) or r2
    assert r1 == r2
    if r1 is not None:
        a, b = r1
        assert ok[a:b].all() and b - a >= 5

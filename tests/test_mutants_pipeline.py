"""The session pipeline's composition with exact expectations: which parameters reach which block, the
templates copied per session and side, the validation messages, the inbox (when ``feed`` runs the blocks),
``poll``/``finish`` and what they hand out, the calibrated segments, the swapped thighs' acceleration, the
stride confidence, the exercise block, and the chunk concatenation of one sensor.

Written for the survivors of ``python bench/mutation.py --group pipeline``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.activity import ActivityClassifier
from hipback.processing.calibration import CalibrationSettings, SensorCalibration
from hipback.processing.calibration_search import CalibrationSearch
from hipback.processing.channel import SensorChannel
from hipback.processing.gait import StrideDetector
from hipback.processing.holds import HoldDetector, Prescription
from hipback.processing.merge import GridMerge
from hipback.processing.pipeline import (
    PRESETS,
    ProcessorConfig,
    SessionProcessor,
    _concat_streams,
    calibration_factor,
)
from hipback.processing.plausibility import PlausibilityGuard
from hipback.processing.slip import SlipMonitor
from hipback.processing.summary import SessionSummary
from hipback.processing.types import SensorStream
from tests.synth_processing import G, kinematics, segment_quats

QUAT3 = {"pelvis": "quat", "thigh_left": "quat", "thigh_right": "quat"}
RATES3 = {"pelvis": 100.0, "thigh_left": 100.0, "thigh_right": 100.0}
ID = np.array([1.0, 0.0, 0.0, 0.0])


def test_default_construction_passes_the_configuration_to_every_block() -> None:
    proc = SessionProcessor({"thigh_right": "raw", "pelvis": "quat"}, {"pelvis": 120.0, "thigh_right": 60.0})
    assert proc.cfg == ProcessorConfig() and proc.cfg is not PRESETS["default"]
    assert proc.placements == ["pelvis", "thigh_right"]  # in PLACEMENTS order, not the caller's
    assert proc.kinds == {"thigh_right": "raw", "pelvis": "quat"} and proc.rate == 100.0
    assert list(proc.channels) == ["pelvis", "thigh_right"]
    assert proc.channels["pelvis"].get_params() == {
        "placement": "pelvis", "kind": "quat", "rate_hz": 120.0, "grid_rate_hz": 100.0, "use_mag": None,
        "vqf_params": None, "gap_factor": 2.5, "reset_gap_s": 0.2, "acceleration": None}
    assert proc.channels["thigh_right"].get_params() == {
        "placement": "thigh_right", "kind": "raw", "rate_hz": 60.0, "grid_rate_hz": 100.0, "use_mag": None,
        "vqf_params": None, "gap_factor": 2.5, "reset_gap_s": 0.2, "acceleration": None}
    assert proc.merge.get_params() == {
        "placements": ("pelvis", "thigh_right"), "rate_hz": 100.0, "max_sensor_lag_s": None,
        "motion_window_s": 0.5, "still_gyr_rad_s": 0.2, "max_x_tilt_rad": math.radians(45.0)}
    cs = proc.calibration_search.get_params()
    assert cs == {"placements": ("pelvis", "thigh_right"), "rate_hz": 100.0,
                  "settings": CalibrationSettings(), "timeout_s": 60.0, "min_short_standing_s": 1.0,
                  "initial_calibration": None, "swap_wrong_side": True}
    assert proc.slip_monitor.get_params() == {
        "rate_hz": 100.0, "min_standing_s": 3.0, "slip_threshold_rad": math.radians(10.0),
        "slip_reference_rad": math.radians(5.0), "recalibrate": True, "walk_check_s": 3.0,
        "walk_axis_slip_rad": math.radians(9.0), "motion_gyr_rad_s": 0.8, "gait_window_s": 5.0,
        "gait_min_s": 1.0}
    assert proc.guard.get_params() == PlausibilityGuard().get_params()
    assert list(proc.stride_detectors) == ["right"]
    assert proc.stride_detectors["right"].get_params() == {**StrideDetector("left").get_params(),
                                                           "side": "right"}
    assert proc.hold_detector.get_params() == HoldDetector().get_params()
    assert proc.hold_detector.prescription == Prescription(3, 30.0)
    assert proc.activity_classifier.get_params() == ActivityClassifier().get_params()
    assert proc.summary_block.get_params() == {"rate_hz": 100.0, "holds_per_side": 3, "hold_s": 30.0}
    assert proc.exercises is None and proc.exercise_events == [] and proc.live_batch_s == 0.05
    assert proc.state == "searching_standing" and proc.calibration == {} and proc.warnings == []


def test_every_configuration_parameter_reaches_its_block() -> None:
    settings = CalibrationSettings(still_gyr_rad_s=0.3, min_standing_s=2.0, max_x_tilt_rad=0.5,
                                   motion_gyr_rad_s=0.7)
    cfg = ProcessorConfig(
        rate_hz=50.0, use_mag=False, vqf_params={"tauAcc": 2.0}, gap_factor=4.0, reset_gap_s=0.3,
        calibration=settings, calibration_timeout_s=30.0, min_short_standing_s=0.5, max_sensor_lag_s=1.5,
        slip_threshold_rad=0.25, slip_reference_rad=0.1, recalibrate_on_slip=False, walk_check_s=4.0,
        walk_axis_slip_rad=0.2, keep_angles=False, swap_wrong_side=False, holds_per_side=2, hold_s=20.0,
        live_batch_s=0.1)
    proc = SessionProcessor(QUAT3, {"pelvis": 100.0, "thigh_left": 60.0, "thigh_right": 40.0}, cfg)
    assert proc.cfg is cfg and proc.rate == 50.0
    assert proc.channels["thigh_left"].get_params() == {
        "placement": "thigh_left", "kind": "quat", "rate_hz": 60.0, "grid_rate_hz": 50.0, "use_mag": False,
        "vqf_params": {"tauAcc": 2.0}, "gap_factor": 4.0, "reset_gap_s": 0.3, "acceleration": None}
    assert proc.merge.get_params() == {
        "placements": ("pelvis", "thigh_left", "thigh_right"), "rate_hz": 50.0, "max_sensor_lag_s": 1.5,
        "motion_window_s": 0.5, "still_gyr_rad_s": 0.3, "max_x_tilt_rad": 0.5}
    assert proc.calibration_search.get_params() == {
        "placements": ("pelvis", "thigh_left", "thigh_right"), "rate_hz": 50.0, "settings": settings,
        "timeout_s": 30.0, "min_short_standing_s": 0.5, "initial_calibration": None, "swap_wrong_side": False}
    assert proc.slip_monitor.get_params() == {
        "rate_hz": 50.0, "min_standing_s": 2.0, "slip_threshold_rad": 0.25, "slip_reference_rad": 0.1,
        "recalibrate": False, "walk_check_s": 4.0, "walk_axis_slip_rad": 0.2, "motion_gyr_rad_s": 0.7,
        "gait_window_s": 5.0, "gait_min_s": 1.0}
    assert list(proc.stride_detectors) == ["left", "right"]
    assert proc.hold_detector.prescription == Prescription(2, 20.0)
    assert proc.summary_block.get_params() == {"rate_hz": 50.0, "holds_per_side": 2, "hold_s": 20.0}
    assert proc.live_batch_s == 0.1
    # the inbox thresholds: live_batch_s and one second of each sensor's samples, rounded up
    assert proc._need == {"pelvis": 10, "thigh_left": 6, "thigh_right": 4}
    assert proc._cap == {"pelvis": 100, "thigh_left": 60, "thigh_right": 40}
    assert proc._short == 3


def test_templates_are_copied_with_the_session_placements_and_rate() -> None:
    ch = SensorChannel("lumbar_upper", "raw", 10.0, grid_rate_hz=10.0, gap_factor=7.0, acceleration=True)
    mg = GridMerge(("lumbar_upper",), rate_hz=10.0, motion_window_s=0.3)
    cal = CalibrationSearch(("lumbar_upper",), rate_hz=10.0, timeout_s=12.0)
    sm = SlipMonitor(rate_hz=10.0, gait_min_s=2.0)
    guard = PlausibilityGuard(max_rate_rad_s=3.0)
    sd = StrideDetector("right", min_stride_s=0.8)
    hd = HoldDetector(min_duration_s=5.0)
    ac = ActivityClassifier(min_bout_s=4.0)
    summ = SessionSummary(rate_hz=10.0, holds_per_side=5, hold_s=9.0)
    proc = SessionProcessor(QUAT3, {"pelvis": 100.0, "thigh_left": 50.0, "thigh_right": 100.0},
                            ProcessorConfig(rate_hz=25.0), channel=ch, merge=mg, calibration=cal,
                            slip_monitor=sm, guard=guard, stride_detector=sd, hold_detector=hd, activity=ac,
                            summary=summ)
    assert proc.channels["thigh_left"].get_params() == {
        **ch.get_params(), "placement": "thigh_left", "kind": "quat", "rate_hz": 50.0, "grid_rate_hz": 25.0}
    assert proc.merge.get_params() == {
        **mg.get_params(), "placements": ("pelvis", "thigh_left", "thigh_right"), "rate_hz": 25.0}
    assert proc.calibration_search.get_params() == {
        **cal.get_params(), "placements": ("pelvis", "thigh_left", "thigh_right"), "rate_hz": 25.0}
    assert proc.slip_monitor.get_params() == {**sm.get_params(), "rate_hz": 25.0}
    blocks = [proc.guard, proc.hold_detector, proc.activity_classifier, proc.summary_block]
    for made, given in zip(blocks, [guard, hd, ac, summ], strict=True):
        assert made is not given and made.get_params() == given.get_params()  # the summary keeps its rate
    assert [d.side for d in proc.stride_detectors.values()] == ["left", "right"]
    for side, det in proc.stride_detectors.items():
        assert det is not sd and det.get_params() == {**sd.get_params(), "side": side}


def test_validation_messages_and_presets() -> None:
    with pytest.raises(ValueError, match=r"^unknown placement 'knee'; use one of pelvis, thigh_left, "):
        SessionProcessor({"pelvis": "quat", "knee": "quat"}, {"pelvis": 100.0, "knee": 100.0})
    with pytest.raises(ValueError, match=r"^a pelvis sensor is required$"):
        SessionProcessor({"thigh_left": "quat"}, {"thigh_left": 100.0})
    with pytest.raises(ValueError, match=r"^no sampling rate given for thigh_right$"):
        SessionProcessor(QUAT3, {"pelvis": 100.0, "thigh_left": 100.0})
    assert set(PRESETS) == {"default", "no_events"}
    assert PRESETS["default"] == ProcessorConfig()
    assert PRESETS["no_events"] == ProcessorConfig(detectors=False)
    proc = SessionProcessor.default(QUAT3, RATES3)
    assert proc.cfg == ProcessorConfig() and len(proc.stride_detectors) == 2
    assert proc.hold_detector is not None
    quiet = SessionProcessor.default(QUAT3, RATES3, "no_events", hold_s=12.0)
    assert quiet.cfg == ProcessorConfig(detectors=False, hold_s=12.0)
    assert quiet.stride_detectors == {} and quiet.hold_detector is None and quiet.activity_classifier is None
    assert quiet.summary_block.hold_s == 12.0
    assert PRESETS["no_events"].hold_s == 30.0  # the preset itself is not changed
    with pytest.raises(KeyError, match=r"unknown preset 'nope'; valid names: default, no_events"):
        SessionProcessor.default(QUAT3, RATES3, "nope")


@pytest.mark.parametrize(("u", "factor"), [
    (0.0, 1.0), (-6.0, 1.0), (3.0, 0.9), (15.0, 0.5), (24.0, 0.2), (27.0, 0.2), (23.4, 1.0 - 23.4 / 30.0),
    (math.nan, 1.0), (math.inf, 1.0), (-math.inf, 1.0)])
def test_calibration_factor(u: float, factor: float) -> None:
    got = calibration_factor(u)
    assert type(got) is float and got == pytest.approx(factor, rel=0, abs=1e-15)


def _chunk(t, *, quat=True, acc=None, gyr=None, mag=None, seq=None, placement="pelvis", kind="quat",
           device="dot-1", meta=None) -> SensorStream:
    n = len(t)
    q = np.tile(ID, (n, 1)) if quat else None
    return SensorStream(placement, kind, np.asarray(t, dtype=float), 60.0, quat=q, acc=acc, gyr=gyr, mag=mag,
                        seq=seq, device=device, meta=meta or {})


def test_concat_streams_fills_what_some_chunks_lack_with_nan() -> None:
    a = _chunk([0.0, 0.1], acc=np.ones((2, 3)), seq=np.array([1, 2]), meta={"fw": "1"})
    b = _chunk([0.2], mag=np.full((1, 3), 5.0), seq=np.array([3]), device="other", meta={"fw": "2"})
    c = _chunk([0.3, 0.4], acc=np.full((2, 3), 2.0), gyr=np.full((2, 3), 3.0), seq=np.array([4, 5]))
    out = _concat_streams([a, b, c])
    assert (out.placement, out.kind, out.rate_hz, out.device, out.meta) == ("pelvis", "quat", 60.0, "dot-1",
                                                                          {"fw": "1"})
    assert out.t.tolist() == [0.0, 0.1, 0.2, 0.3, 0.4] and out.seq.tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(out.quat, np.tile(ID, (5, 1)))
    np.testing.assert_array_equal(out.acc, [[1.0] * 3, [1.0] * 3, [np.nan] * 3, [2.0] * 3, [2.0] * 3])
    np.testing.assert_array_equal(out.gyr, [[np.nan] * 3] * 3 + [[3.0] * 3] * 2)
    np.testing.assert_array_equal(out.mag, [[np.nan] * 3] * 2 + [[5.0] * 3] + [[np.nan] * 3] * 2)
    bare = _concat_streams([_chunk([0.0]), _chunk([0.1], seq=np.array([7]))])
    assert bare.acc is None and bare.gyr is None and bare.mag is None
    assert bare.seq is None  # one chunk without sequence numbers: none at all
    assert _concat_streams([_chunk([0.0], seq=np.array([7])), _chunk([0.1])]).seq is None
    raw = _concat_streams([_chunk([0.0], quat=False, acc=np.zeros((1, 3)), gyr=np.zeros((1, 3)), kind="raw",
                                  placement="thigh_left"),
                           _chunk([0.1], quat=False, acc=np.ones((1, 3)), gyr=np.ones((1, 3)), kind="raw",
                                  placement="thigh_left")])
    assert (raw.placement, raw.kind, raw.quat) == ("thigh_left", "raw", None)
    assert raw.acc.tolist() == [[0.0] * 3, [1.0] * 3]


# -- a noise-free session on the grid, calibrated from the first row on -------------------------------------
def _session(n: int = 1200, *, kinds=QUAT3, stand_s: float = 2.0, thigh_acc=(1.0, 2.0), **kin: float):
    """Sensor quaternions equal to the segments' (identity mounting), samples at ``k / 100`` s; the thighs
    carry a constant dynamic acceleration (m/s^2, along the world vertical) of ``thigh_acc`` (left, right)."""
    t = np.arange(n) / 100.0
    truth = kinematics(t, stand_s=stand_s, **kin)
    seg = segment_quats(truth)
    streams = {}
    for p, kind in kinds.items():
        extra = {"thigh_left": thigh_acc[0], "thigh_right": thigh_acc[1]}.get(p, 0.0)
        acc = qm.rotate(qm.conjugate(seg[p]), np.array([0.0, 0.0, G + extra]))
        if kind == "quat":
            streams[p] = SensorStream(p, "quat", t, 100.0, quat=seg[p], acc=acc)
        else:
            d = qm.multiply(qm.conjugate(seg[p][:-1]), seg[p][1:])
            w = qm.to_rotvec(d) * 100.0
            streams[p] = SensorStream(p, "raw", t, 100.0, acc=acc, gyr=np.vstack([w[:1], w]))
    return streams, truth


def _identity_calibration(placements, ml: dict[str, float] | None = None) -> dict[str, SensorCalibration]:
    ml = ml or {}
    return {p: SensorCalibration(p, ID.copy(), 0.9, ml_uncertainty_deg=ml.get(p, math.nan))
            for p in placements}

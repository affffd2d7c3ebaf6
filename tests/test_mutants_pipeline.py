"""The session pipeline's composition with exact expectations: which parameters reach which block, the
templates copied per session and side, the validation messages, the inbox (when ``feed`` runs the blocks),
``poll``/``finish`` and what they hand out, the calibrated segments, the swapped thighs' acceleration, the
stride confidence, the exercise block, and the chunk concatenation of one sensor.

Written for the survivors of ``python bench/mutation.py --group pipeline``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.activity import ActivityClassifier
from hipback.processing.angles import compute_angles
from hipback.processing.blocks import Block
from hipback.processing.calibration import CalibrationSettings, SensorCalibration
from hipback.processing.calibration_search import CalibratedRows, CalibrationSearch
from hipback.processing.channel import SensorChannel
from hipback.processing.exercises.stream import SegmentFrame
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
from hipback.processing.summary import SessionSummary, SummaryInput
from hipback.processing.types import AngleSeries, SensorStream
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
        "vqf_params": None, "gap_factor": 2.5, "reset_gap_s": 0.2, "acceleration": None, "gyroscope": False,
        "orientation": "causal", "acc_bias": True, "acc_bias_params": None, "acc_bias_keep_frame": False}
    assert proc.channels["thigh_right"].get_params() == {
        "placement": "thigh_right", "kind": "raw", "rate_hz": 60.0, "grid_rate_hz": 100.0, "use_mag": None,
        "vqf_params": None, "gap_factor": 2.5, "reset_gap_s": 0.2, "acceleration": None, "gyroscope": False,
        "orientation": "causal", "acc_bias": True, "acc_bias_params": None, "acc_bias_keep_frame": False}
    assert proc.merge.get_params() == {
        "placements": ("pelvis", "thigh_right"), "rate_hz": 100.0, "max_sensor_lag_s": None,
        "motion_window_s": 0.5, "still_gyr_rad_s": 0.2, "max_x_tilt_rad": math.radians(45.0),
        "gyroscope": ()}
    cs = proc.calibration_search.get_params()
    assert cs == {"placements": ("pelvis", "thigh_right"), "rate_hz": 100.0,
                  "settings": CalibrationSettings(), "timeout_s": 60.0, "min_short_standing_s": 1.0,
                  "initial_calibration": None, "swap_wrong_side": True, "refine_axes": False}
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
        live_batch_s=0.1, refine_axes=True)
    proc = SessionProcessor(QUAT3, {"pelvis": 100.0, "thigh_left": 60.0, "thigh_right": 40.0}, cfg)
    assert proc.cfg is cfg and proc.rate == 50.0
    assert proc.channels["thigh_left"].get_params() == {
        "placement": "thigh_left", "kind": "quat", "rate_hz": 60.0, "grid_rate_hz": 50.0, "use_mag": False,
        "vqf_params": {"tauAcc": 2.0}, "gap_factor": 4.0, "reset_gap_s": 0.3, "acceleration": None,
        "gyroscope": False, "orientation": "causal", "acc_bias": True, "acc_bias_params": None,
        "acc_bias_keep_frame": False}
    assert proc.merge.get_params() == {
        "placements": ("pelvis", "thigh_left", "thigh_right"), "rate_hz": 50.0, "max_sensor_lag_s": 1.5,
        "motion_window_s": 0.5, "still_gyr_rad_s": 0.3, "max_x_tilt_rad": 0.5, "gyroscope": ()}
    assert proc.calibration_search.get_params() == {
        "placements": ("pelvis", "thigh_left", "thigh_right"), "rate_hz": 50.0, "settings": settings,
        "timeout_s": 30.0, "min_short_standing_s": 0.5, "initial_calibration": None, "swap_wrong_side": False,
        "refine_axes": True}
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
        **ch.get_params(), "placement": "thigh_left", "kind": "quat", "rate_hz": 50.0, "grid_rate_hz": 25.0,
        "acc_bias_keep_frame": False}  # the session keeps the calibration posture's frame (AccOffsetFrame)
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
    with_quat = _concat_streams([
        _chunk([0.0], acc=np.zeros((1, 3)), gyr=np.zeros((1, 3)), kind="raw"),
        _chunk([0.1], quat=False, acc=np.ones((1, 3)), gyr=np.ones((1, 3)), kind="raw")])
    np.testing.assert_array_equal(with_quat.quat, [ID, [np.nan] * 4])  # a raw device's optional quaternions


# -- a noise-free session on the grid, calibrated from the first row on -------------------------------------
#: constant dynamic accelerations (world frame, m/s^2): the pelvis' has a vertical part 0.4 of magnitude 0.5
EXTRA_ACC = {"pelvis": (0.3, 0.0, 0.4), "thigh_left": (0.0, 0.0, 1.0), "thigh_right": (0.0, 0.0, 2.0)}


def _session(n: int = 1200, *, kinds=QUAT3, stand_s: float = 2.0, truth=None, **kin: float):
    """Sensor quaternions equal to the segments' (identity mounting), samples at ``k / 100`` s, each sensor
    with the constant dynamic acceleration of :data:`EXTRA_ACC`."""
    t = np.arange(n) / 100.0
    truth = kinematics(t, stand_s=stand_s, **kin) if truth is None else truth
    seg = segment_quats(truth)
    streams = {}
    for p, kind in kinds.items():
        acc = qm.rotate(qm.conjugate(seg[p]), np.array(EXTRA_ACC[p]) + [0.0, 0.0, G])
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


def _hold_truth(n: int = 1200) -> dict[str, np.ndarray]:
    """Stand 2 s, move into a half-kneeling stretch of the left hip (-15 deg, right hip +80 deg) in 1 s, hold
    it until 1 s before the end (``n`` rows at 100 Hz), stand up again in the last second."""
    t = np.arange(n) / 100.0
    end = n / 100.0
    w = np.clip(t - 2.0, 0.0, 1.0) - np.clip(t - (end - 1.0), 0.0, 1.0)
    return {"hip_flexion_left": math.radians(-15.0) * w, "hip_flexion_right": math.radians(80.0) * w,
            "pelvic_tilt": np.zeros(n)}


def _by_hand(proc: SessionProcessor, angles: AngleSeries):
    """The event blocks and the summary run by hand on the pipeline's guarded angles: (strides, bouts, holds,
    activity, summary, what each detector's finish() returned)."""
    dets = {side: StrideDetector(side) for side in proc.stride_detectors}
    hd, ac = HoldDetector(), ActivityClassifier()
    strides, holds, activity, at_finish = [], [], [], {}
    for det in dets.values():
        strides += det.update(angles)
        last = det.finish()
        at_finish.setdefault("stride", []).extend(last)
        strides += last
    holds += hd.update(angles)
    at_finish["hold"] = hd.finish()
    holds += at_finish["hold"]
    activity += ac.update(angles)
    at_finish["activity"] = ac.finish()
    activity += at_finish["activity"]
    summ = SessionSummary(rate_hz=100.0)
    summ.update(SummaryInput(angles, strides=strides, holds=holds, activity=activity,
                             calibration=proc.calibration, implausible=proc.guard.summary()))
    summ.finish()
    bouts = [b for det in dets.values() for b in det.bouts_]
    return strides, bouts, holds, activity, summ.summary_, at_finish


def _r(items: list) -> list[str]:
    """Events as comparable text (every field, NaN equal to NaN)."""
    return [repr(vars(x)) for x in items]


def _same_summary(a: dict, b: dict) -> None:
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def test_a_session_equals_its_blocks_chained_by_hand() -> None:
    streams, truth = _session(1200)
    cal = _identity_calibration(QUAT3, {"thigh_left": 10.0})
    proc = SessionProcessor(QUAT3, RATES3, ProcessorConfig(initial_calibration=cal))
    for s in streams.values():
        proc.feed(s)
    res = proc.finish()
    a = res.angles
    assert a.t.tolist() == (np.arange(1200) / 100.0).tolist()
    for name in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt"):
        np.testing.assert_allclose(getattr(a, name), truth[name], rtol=0, atol=1e-12, err_msg=name)
    assert np.isnan(a.lumbar_flexion).all()
    # the acceleration columns: the pelvis' vertical part, its smoothed magnitude, each thigh's own
    np.testing.assert_allclose(a.pelvis_acc_vertical, 0.4, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.pelvis_motion[60:], 0.5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.thigh_acc_left, 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.thigh_acc_right, 2.0, rtol=0, atol=1e-12)
    strides, bouts, holds, activity, summary, at_finish = _by_hand(proc, a)
    assert at_finish["stride"] and at_finish["activity"]  # the finish() path is taken
    assert strides and holds == [] and len(activity) == 2
    # the left thigh's axis is uncertain by 10 deg: its strides keep 2/3 of their confidence (3 decimals)
    expected = sorted(strides, key=lambda s: (s.t_start, s.side))
    for st in expected:
        if st.side == "left":
            st.confidence, st.ml_uncertainty_deg = round(st.confidence * 2.0 / 3.0, 3), 10.0
    assert {st.confidence for st in expected if st.side == "left"} == {0.533}
    assert _r(res.strides) == _r(expected)
    assert all(math.isnan(s.ml_uncertainty_deg) and s.confidence == 0.8 for s in res.strides
               if s.side == "right")
    assert _r(res.bouts) == _r(bouts) and len(res.bouts) == 2
    assert res.holds == [] and _r(res.activity) == _r(activity)
    _same_summary(res.summary, summary)
    assert res.summary["calibration_quality"] == {"pelvis": 0.9, "thigh_left": 0.9, "thigh_right": 0.9}
    assert res.messages == ["using the calibration given with the session (from an earlier recording)"]
    assert res.warnings == [] and res.gaps == [] and res.calibration_state == "calibrated"
    assert res.placements == QUAT3 and res.exercise_events == []
    assert {p: c.ml_uncertainty_deg for p, c in res.calibration.items() if p == "thigh_left"} == {
        "thigh_left": 10.0}
    again = proc.finish()  # a second finish() changes nothing and runs no block again
    assert _r(again.strides) == _r(res.strides)
    _same_summary(again.summary, res.summary)
    assert len(again.angles) == 1200 and again.messages == res.messages
    with pytest.raises(RuntimeError, match=r"^feed\(\) after finish\(\)$"):
        proc.feed(streams["pelvis"].slice(0, 1))


def test_holds_found_live_and_at_the_end_reach_the_results_polls_and_summary() -> None:
    # a hold that ends 1 s before the end (final before finish), then one lasting to the end (final at finish)
    n = 1200
    first = _hold_truth(n)
    t = np.arange(2 * n) / 100.0
    truth = {k: np.concatenate([v, v]) for k, v in first.items()}
    truth["hip_flexion_left"][-150:] = truth["hip_flexion_left"][-151]  # the second hold is not left
    truth["hip_flexion_right"][-150:] = truth["hip_flexion_right"][-151]
    streams, _ = _session(2 * n, truth=truth)
    assert len(t) == len(streams["pelvis"])
    proc = SessionProcessor(QUAT3, RATES3, ProcessorConfig(initial_calibration=_identity_calibration(QUAT3)))
    polled: dict[str, list] = {"holds": [], "activity": [], "strides": []}
    progress = []
    for k in range(0, 2 * n, 10):
        for s in streams.values():
            proc.feed(s.slice(k, k + 10))
        upd = proc.poll()
        for name in polled:
            polled[name] += getattr(upd, name)
        assert upd.hold_min_duration_s == 3.0
        if upd.hold_progress is not None:
            progress.append(upd.hold_progress)
    res = proc.finish()
    last = proc.poll()
    for name in polled:
        polled[name] += getattr(last, name)
    strides, _bouts, holds, activity, summary, at_finish = _by_hand(proc, res.angles)
    assert len(holds) == 2 and len(at_finish["hold"]) == 1 and strides == []
    assert _r(res.holds) == _r(holds) == _r(polled["holds"])
    assert _r(res.activity) == _r(activity) == _r(polled["activity"])
    assert res.strides == [] and polled["strides"] == []
    _same_summary(res.summary, summary)
    assert res.summary["holds"]["left"]["count"] == 2
    assert progress and {p.side for p in progress} == {"left"}
    assert progress[0].hip_extension_now == pytest.approx(math.radians(15.0), abs=1e-12)
    batch = SessionProcessor(QUAT3, RATES3, ProcessorConfig(initial_calibration=_identity_calibration(QUAT3)))
    for s in streams.values():  # the same session in one piece, never polled
        batch.feed(s)
    assert _r(batch.finish().holds) == _r(holds)


def test_poll_hands_out_each_result_once_and_the_hold_detector_view() -> None:
    streams, _ = _session(300)
    hd = HoldDetector(min_duration_s=5.0)
    proc = SessionProcessor(QUAT3, RATES3, ProcessorConfig(initial_calibration=_identity_calibration(QUAT3)),
                            hold_detector=hd)
    first = proc.poll()
    assert first.messages == ["using the calibration given with the session (from an earlier recording)"]
    assert len(first.angles) == 0 and first.angles.implausible is None
    assert (first.strides, first.holds, first.activity, first.exercise_events) == ([], [], [], [])
    assert first.calibration_state == "calibrated" and set(first.calibration) == set(QUAT3)
    assert first.hold_progress is None and first.hold_min_duration_s == 5.0
    for s in streams.values():
        proc.feed(s)
    upd = proc.poll()
    assert len(upd.angles) == 300 and upd.messages == []
    again = proc.poll()
    assert len(again.angles) == 0 and again.messages == [] and again.activity == []
    quiet = SessionProcessor(QUAT3, RATES3, ProcessorConfig(detectors=False))
    upd = quiet.poll()
    assert upd.hold_progress is None and upd.hold_min_duration_s == HoldDetector.min_duration_s


def _queued(proc: SessionProcessor) -> dict[str, int]:
    return {p: proc._inbox_n[p] for p in proc.placements}


def _fed(proc: SessionProcessor) -> dict[str, int | None]:
    """Grid rows each sensor's channel has made (None: the channel has seen nothing yet)."""
    return {p: ch.next_k for p, ch in proc.channels.items()}


def test_feed_runs_the_blocks_once_every_sensor_queued_live_batch_s() -> None:
    streams, _ = _session(300)
    proc = SessionProcessor(QUAT3, RATES3)  # live_batch_s 0.05: 5 samples per sensor
    p, left, right = streams["pelvis"], streams["thigh_left"], streams["thigh_right"]
    proc.feed(p.slice(0, 4))
    proc.feed(p.slice(4, 5))  # exactly 5: the pelvis has its batch
    proc.feed(p.slice(5, 10))  # more of the pelvis does not count twice
    proc.feed(left.slice(0, 5))
    assert _queued(proc) == {"pelvis": 10, "thigh_left": 5, "thigh_right": 0}
    assert _fed(proc) == {"pelvis": None, "thigh_left": None, "thigh_right": None}
    proc.feed(right.slice(0, 5))  # the last sensor reaches exactly 5: the blocks run
    assert _queued(proc) == {"pelvis": 0, "thigh_left": 0, "thigh_right": 0}
    assert _fed(proc) == {"pelvis": 10, "thigh_left": 5, "thigh_right": 5}
    for s in (p, left, right):  # 4 more each: short of the batch again, counted from zero
        proc.feed(s.slice(10, 14))
    assert _queued(proc) == {"pelvis": 4, "thigh_left": 4, "thigh_right": 4}
    proc.feed(left.slice(14, 16))
    proc.feed(right.slice(14, 15))
    assert _queued(proc) == {"pelvis": 4, "thigh_left": 6, "thigh_right": 5}
    proc.feed(p.slice(14, 15))
    assert _queued(proc) == {"pelvis": 0, "thigh_left": 0, "thigh_right": 0}
    assert _fed(proc) == {"pelvis": 15, "thigh_left": 16, "thigh_right": 15}


def test_feed_runs_the_blocks_when_one_sensor_queued_a_second() -> None:
    streams, _ = _session(300)
    proc = SessionProcessor(QUAT3, RATES3)
    proc.feed(streams["pelvis"].slice(0, 99))
    assert _queued(proc)["pelvis"] == 99 and _fed(proc)["pelvis"] is None
    proc.feed(streams["pelvis"].slice(99, 100))  # one second of samples (100 at 100 Hz)
    assert _queued(proc)["pelvis"] == 0 and _fed(proc) == {"pelvis": 100, "thigh_left": None,
                                                           "thigh_right": None}
    proc.feed(streams["thigh_left"].slice(0, 150))  # more than a second at once
    assert _fed(proc)["thigh_left"] == 150
    slow = SessionProcessor(QUAT3, {"pelvis": 10.0, "thigh_left": 0.5, "thigh_right": 100.0})
    assert slow._need == {"pelvis": 1, "thigh_left": 1, "thigh_right": 5}  # at least one sample
    assert slow._cap == {"pelvis": 10, "thigh_left": 1, "thigh_right": 100}
    one = SessionProcessor({"pelvis": "quat"}, {"pelvis": 10.0})
    one.feed(streams["pelvis"].slice(0, 1))  # one sample is the 10 Hz sensor's batch
    assert _fed(one) == {"pelvis": 1}


def test_chunks_refused_at_the_inbox_are_said_and_change_nothing() -> None:
    streams, _ = _session(20)
    proc = SessionProcessor({"pelvis": "quat", "thigh_left": "quat"}, RATES3)
    proc.feed(streams["thigh_right"])
    raw = SensorStream("pelvis", "raw", np.arange(5) / 100.0, 100.0, acc=np.zeros((5, 3)),
                       gyr=np.zeros((5, 3)))
    proc.feed(raw)
    proc.feed(streams["pelvis"].slice(0, 0))
    assert _queued(proc) == {"pelvis": 0, "thigh_left": 0}
    assert proc.poll().messages == [
        "thigh_right: samples for a sensor that is not part of this session ignored",
        "pelvis: expected quat samples, got raw; chunk ignored",
    ]
    proc.feed(streams["pelvis"].slice(0, 3))
    proc.feed(streams["thigh_left"].slice(0, 4))
    assert _queued(proc) == {"pelvis": 3, "thigh_left": 4}  # the refused chunks did not count


def test_a_chunk_the_channel_refuses_is_said_and_the_others_go_on() -> None:
    streams, _ = _session(20)
    proc = SessionProcessor({"pelvis": "quat", "thigh_left": "quat"}, RATES3)
    proc.feed(streams["thigh_left"].slice(0, 2))
    proc.feed(SensorStream("pelvis", "quat", [0.0, 1e9], 100.0, quat=np.tile(ID, (2, 1))))
    proc.flush()
    assert proc.poll().messages == [
        "pelvis: chunk ignored (samples 1e+09 s apart would need more than 17280000 grid points; the sample "
        "times are corrupt)",
        "pelvis: gap of 1000000000.00 s at t=0.00 s (segments split, nothing interpolated across it)"]
    assert _fed(proc)["thigh_left"] == 2 and _queued(proc) == {"pelvis": 0, "thigh_left": 0}


class _SwappingSearch(CalibrationSearch):
    """A calibration search whose calibrated rows say the thighs' data are exchanged (as after two
    ``wrong_side`` thigh sensors)."""

    def update(self, chunk):
        return [CalibratedRows(c.rows, c.calibration, c.calibration is not None, c.checked)
                for c in super().update(chunk)]


def test_swapped_thighs_take_each_other_s_orientation_and_acceleration() -> None:
    streams, truth = _session(600)
    turn = qm.from_axis_angle([0.0, 1.0, 0.0], 0.3)  # the left thigh sensor's mounting is not the right's
    cal = _identity_calibration(QUAT3)
    cal["thigh_left"].q_segment_in_sensor = turn
    proc = SessionProcessor(QUAT3, RATES3, calibration=_SwappingSearch(("pelvis",), initial_calibration=cal))
    assert type(proc.calibration_search) is _SwappingSearch
    for s in streams.values():
        proc.feed(s)
    a = proc.finish().angles
    # the left thigh's angles come from the right thigh sensor with the left thigh's calibration
    expected = compute_angles(a.t, {"pelvis": streams["pelvis"].quat,
                                    "thigh_left": qm.multiply(streams["thigh_right"].quat, turn),
                                    "thigh_right": streams["thigh_left"].quat})
    for name in ("hip_flexion_left", "hip_flexion_right", "thigh_inclination_left",
                 "thigh_inclination_right"):
        np.testing.assert_allclose(getattr(a, name), getattr(expected, name), rtol=0, atol=1e-12,
                                   err_msg=name)
    np.testing.assert_allclose(a.hip_flexion_right, truth["hip_flexion_left"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.thigh_acc_left, 2.0, rtol=0, atol=1e-12)  # the sensors' own columns
    np.testing.assert_allclose(a.thigh_acc_right, 1.0, rtol=0, atol=1e-12)


def test_a_session_without_a_thigh_has_no_acceleration_of_it() -> None:
    kinds = {"pelvis": "quat", "thigh_left": "quat"}
    streams, truth = _session(300, kinds=kinds)
    proc = SessionProcessor(kinds, RATES3, ProcessorConfig(initial_calibration=_identity_calibration(kinds)))
    for s in streams.values():
        proc.feed(s)
    a = proc.finish().angles
    assert a.thigh_acc_right is None and np.isnan(a.hip_flexion_right).all()
    np.testing.assert_allclose(a.thigh_acc_left, 1.0, rtol=0, atol=1e-12)
    only = {"pelvis": "quat", "thigh_right": "quat"}
    proc = SessionProcessor(only, RATES3, ProcessorConfig(initial_calibration=_identity_calibration(only)))
    for p in only:
        proc.feed(streams["pelvis"] if p == "pelvis" else _session(300, kinds=only)[0][p])
    a = proc.finish().angles
    assert a.thigh_acc_left is None
    np.testing.assert_allclose(a.thigh_acc_right, 2.0, rtol=0, atol=1e-12)


class _Frames(Block):
    """An exercise block that keeps the segment frames it is given and returns one event per frame."""

    def __init__(self, *, label: str = "frames") -> None:
        self.label = label
        self.frames: list[SegmentFrame] = []

    def update(self, chunk: SegmentFrame) -> list[tuple[str, int]]:
        self.frames.append(chunk)
        return [(self.label, len(chunk))]

    def finish(self) -> list[tuple[str, str]]:
        return [(self.label, "end")]


def test_the_exercise_block_gets_the_calibrated_segments_and_its_events_are_handed_out() -> None:
    streams, _ = _session(400)
    turn = qm.from_axis_angle([0.0, 0.0, 1.0], 0.2)
    cal = _identity_calibration(QUAT3)
    cal["pelvis"].q_segment_in_sensor = turn
    template = _Frames(label="ex")
    proc = SessionProcessor(QUAT3, RATES3, ProcessorConfig(initial_calibration=cal), exercises=template)
    assert proc.exercises is not template and proc.exercises.label == "ex"
    polled = []
    for k in range(0, 400, 50):
        for s in streams.values():
            proc.feed(s.slice(k, k + 50))
        polled += proc.poll().exercise_events
    res = proc.finish()
    polled += proc.poll().exercise_events
    frames = proc.exercises.frames
    assert template.frames == [] and len(frames) == 8
    assert res.exercise_events == polled == [("ex", 50)] * 8 + [("ex", "end")]
    assert proc.poll().exercise_events == []
    t = np.concatenate([f.t for f in frames])
    assert t.tolist() == (np.arange(400) / 100.0).tolist()
    assert all(set(f.segments) == set(QUAT3) for f in frames)
    for p in QUAT3:
        got = np.concatenate([f.segments[p] for f in frames])
        want = cal[p].segment_quat(streams[p].quat)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-15, err_msg=p)
    assert np.abs(want - streams["thigh_right"].quat).max() == 0.0 and np.abs(
        np.concatenate([f.segments["pelvis"] for f in frames]) - streams["pelvis"].quat).max() > 0.05


def test_the_exercise_block_sees_no_uncalibrated_rows_and_only_calibrated_sensors() -> None:
    streams, _ = _session(300)
    proc = SessionProcessor(QUAT3, RATES3, exercises=_Frames())  # 3 s: never calibrated
    for s in streams.values():
        proc.feed(s)
    res = proc.finish()
    assert res.calibration_state != "calibrated" and len(res.angles) == 300
    assert proc.exercises.frames == [] and res.exercise_events == [("frames", "end")]
    kinds = {"pelvis": "quat", "thigh_left": "quat"}
    search = _PelvisOnlySearch(("pelvis",), initial_calibration=_identity_calibration(kinds))
    proc = SessionProcessor(kinds, RATES3, calibration=search, exercises=_Frames())
    for p in kinds:
        proc.feed(streams[p])
    res = proc.finish()
    assert [set(f.segments) for f in proc.exercises.frames] == [{"pelvis"}]
    assert np.isnan(res.angles.hip_flexion_left).all() and np.isfinite(res.angles.pelvic_tilt).all()


class _PelvisOnlySearch(CalibrationSearch):
    """A calibration search whose calibration has the pelvis only (as when a thigh sent nothing yet)."""

    def update(self, chunk):
        return [CalibratedRows(c.rows, {"pelvis": c.calibration["pelvis"]}, c.swap, c.checked)
                for c in super().update(chunk)]


def _spinning(kinds: dict[str, str], n: int = 200) -> dict[str, SensorStream]:
    """Still sensors, each reporting its own constant gyroscope rate (quaternion devices deliver it too)."""
    t = np.arange(n) / 100.0
    out = {}
    for i, (p, kind) in enumerate(kinds.items()):
        quat = np.tile(qm.from_axis_angle([0.0, 1.0, 0.0], 0.1 * i), (n, 1))
        gyr = np.tile([0.1 * (i + 1), -0.02 * i, 0.03], (n, 1))
        acc = qm.rotate(qm.conjugate(quat), np.array([0.0, 0.0, G]))
        out[p] = SensorStream(p, kind, t, 100.0, quat=quat if kind == "quat" else None, acc=acc, gyr=gyr)
    return out


def test_only_an_exercise_session_carries_the_quaternion_devices_gyroscope() -> None:
    kinds = {"thigh_right": "quat", "pelvis": "quat", "thigh_left": "raw"}
    rates = dict.fromkeys(kinds, 100.0)
    proc = SessionProcessor(kinds, rates, exercises=_Frames())
    assert {p: c.gyroscope for p, c in proc.channels.items()} == {
        "pelvis": True, "thigh_left": False, "thigh_right": True}
    assert proc.merge.gyroscope == ("pelvis", "thigh_right")  # in PLACEMENTS order
    plain = SessionProcessor(kinds, rates)
    assert {p: c.gyroscope for p, c in plain.channels.items()} == dict.fromkeys(kinds, False)
    assert plain.merge.gyroscope == ()


@pytest.mark.parametrize("swap", [False, True])
def test_each_segment_gets_its_sensor_s_gyroscope_in_the_segment_frame(swap: bool) -> None:
    kinds = {"pelvis": "quat", "thigh_left": "quat", "thigh_right": "raw"}
    streams = _spinning(kinds)
    cal = {p: SensorCalibration(p, qm.from_axis_angle([0.3, -0.5, 0.8], 0.4 + 0.3 * i), 0.9)
           for i, p in enumerate(kinds)}
    search = (_SwappingSearch if swap else CalibrationSearch)(("pelvis",), initial_calibration=cal)
    proc = SessionProcessor(kinds, dict.fromkeys(kinds, 100.0), calibration=search, exercises=_Frames())
    for a in range(0, 200, 50):
        for s in streams.values():
            proc.feed(s.slice(a, a + 50))
    proc.finish()
    frames = proc.exercises.frames
    assert sum(len(f) for f in frames) == 200
    # the raw sensor's orientation already comes from its gyroscope: nothing is carried for it
    sources = {"pelvis": "pelvis", "thigh_right": "thigh_left"} if swap else {"pelvis": "pelvis",
                                                                             "thigh_left": "thigh_left"}
    for f in frames:
        assert set(f.gyr) == set(sources) and set(f.segments) == set(kinds)
        for p, src in sources.items():
            want = qm.rotate(qm.conjugate(cal[p].q_segment_in_sensor), streams[src].gyr[0])
            np.testing.assert_allclose(f.gyr[p], np.tile(want, (len(f), 1)), rtol=0, atol=1e-12, err_msg=p)

"""The raw sensors' accelerometer offset in a whole session: the calibration stays valid when the estimate
changes, whatever posture the sensors lay in before they were strapped on
(hipback.processing.calibration_search.AccOffsetFrame, hipback.processing.pipeline), and the estimate is
reported (message, summary).

The session: simulated raw sensors with a constant accelerometer offset (no scale or cross-axis error) doing
exercises in many postures, after the standing calibration. Before it, in the variant with a table, every
sensor lies flat and still for a minute, is turned onto the body and sways there for 10 s (strapped on):
the stream's first still posture is the table, not the calibration's stance.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.angles import GRAVITY
from hipback.processing.calibration import SensorCalibration, acc_offset_tilt, frame_from_axes
from hipback.processing.calibration_search import AccOffsetFrame, CalibratedRows
from hipback.processing.merge import Rows
from hipback.processing.pipeline import SessionProcessor
from hipback.processing.types import Recording, SensorStream
from hipback.simulator import body
from hipback.simulator.donning import on_table_first
from hipback.simulator.exercises import ExerciseSet, simulate_programme
from hipback.simulator.sensor_spec import SensorSpec

PROGRAMME = [
    ExerciseSet(name, side, 2, (), hold_s=10.0)
    for name, side in [
        ("hip_flexor_kneeling", "left"),
        ("glute_bridge", None),
        ("clamshell", "left"),
        ("prone_press_up", None),
        ("knee_to_chest_double", None),
        ("seated_forward_bend", None),
        ("gluteal_stretch", "left"),
        ("squat", None),
    ]
]


def raw_sensors() -> list[SensorSpec]:
    return [
        SensorSpec(placement=p, kind="raw", rate_hz=100.0, misalignment_deg=10.0, gyro_bias_rad_s=0.005,
                   acc_bias_m_s2=0.2)
        for p in ("pelvis", "thigh_left", "thigh_right")
    ]


def process(rec: Recording, first_still_frame: bool = False):
    """The default session processor over the recording in one piece. ``first_still_frame``: the earlier
    design for comparison (each channel keeps the frame of the stream's first still posture, no correction
    at the calibration)."""
    proc = SessionProcessor({p: s.kind for p, s in rec.streams.items()},
                            {p: s.rate_hz for p, s in rec.streams.items()})
    if first_still_frame:
        for ch in proc.channels.values():
            ch.acc_bias_keep_frame = True
        proc.acc_offset_frame.offsets = {}
    for s in rec.streams.values():
        proc.feed(s)
    return proc, proc.finish()


def hip_flexion_error_deg(res, session, shift: float, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Session times (s, the simulation's) and the hip flexion error (deg) on the truth's rows."""
    tr = session.truth
    truth = body.hip_flexion(tr.segment_quat["pelvis"], tr.segment_quat[f"thigh_{side}"])
    est = np.interp(tr.t + shift, res.angles.t, getattr(res.angles, f"hip_flexion_{side}"))
    return tr.t, np.degrees(est - truth)


@pytest.fixture(scope="module")
def runs():
    session = simulate_programme(PROGRAMME, seed=1, sensors=raw_sensors())
    table, shift = on_table_first(session, 60.0, seed=5)
    return {
        "session": session,
        "shift": shift,
        "plain": process(session.recording),
        "table": process(table),
        "table_first_still": process(table, first_still_frame=True),
    }


def _after_updates(proc, shift: float) -> float:
    """The session time (s, the simulation's) after which every sensor's offset estimate is applied."""
    firsts = [c.acc_bias_estimator_.updates_[0][0] for c in proc.channels.values()]
    # (and 5 s for the filter to move to it: a few of its accelerometer time constants)
    return max(firsts) - shift + 5.0


def test_the_table_before_the_calibration_does_not_change_the_angles_once_the_offset_is_applied(runs):
    session, shift = runs["session"], runs["shift"]
    proc, table = runs["table"]
    _, plain = runs["plain"]
    _, old = runs["table_first_still"]
    for ch in proc.channels.values():  # every sensor's offset was trusted and applied, after the table
        est = ch.acc_bias_estimator_
        assert est.updates_ and est.updates_[0][0] > shift
    t_from = max(_after_updates(proc, shift), _after_updates(runs["plain"][0], 0.0))
    assert t_from < session.duration_s - 60.0
    errs = {}
    for name, res, sh in (("plain", plain, 0.0), ("table", table, shift), ("old", old, shift)):
        errs[name] = {}
        for side in ("left", "right"):
            t, e = hip_flexion_error_deg(res, session, sh, side)
            errs[name][side] = e[t > t_from]
    for side in ("left", "right"):
        # the calibration's reference is its own stance: the table leaves the angles as without it
        diff = np.abs(errs["table"][side] - errs["plain"][side])
        assert np.nanmax(diff) < 0.5, side
        assert np.nanmean(np.abs(errs["table"][side])) < 1.5, side
    # the stream's first still posture as the reference (the table): the left thigh (offset 0.6 m/s^2) off by
    # the offset's tilt difference between the table and the stance
    shift_old = np.nanmean(errs["old"]["left"] - errs["plain"]["left"])
    assert abs(shift_old) > 1.5
    assert np.nanmean(np.abs(errs["old"]["left"])) > np.nanmean(np.abs(errs["table"]["left"])) + 1.0


def test_chunking_does_not_change_the_corrected_angles(runs):
    _, batch = runs["table"]
    session = runs["session"]
    rec, _ = on_table_first(session, 60.0, seed=5)
    proc = SessionProcessor({p: s.kind for p, s in rec.streams.items()},
                            {p: s.rate_hz for p, s in rec.streams.items()})
    rng = np.random.default_rng(3)
    cuts = {p: [0] for p in rec.streams}
    for p, s in rec.streams.items():
        i = 0
        while i < len(s.t):
            i = min(len(s.t), i + int(rng.integers(1, 400)))
            cuts[p].append(i)
    pos = {p: 1 for p in rec.streams}
    while any(pos[p] < len(cuts[p]) for p in rec.streams):
        for p, s in rec.streams.items():
            if pos[p] < len(cuts[p]):
                a, b = cuts[p][pos[p] - 1], cuts[p][pos[p]]
                proc.feed(SensorStream(p, "raw", s.t[a:b], s.rate_hz, acc=s.acc[a:b], gyr=s.gyr[a:b]))
                pos[p] += 1
    res = proc.finish()
    for name in ("t", "hip_flexion_left", "hip_flexion_right", "pelvic_tilt"):
        np.testing.assert_array_equal(getattr(res.angles, name), getattr(batch.angles, name))
    assert res.summary == batch.summary


def test_the_estimate_is_reported_in_a_message_and_the_summary(runs):
    proc, res = runs["table"]
    shift = runs["shift"]
    for p, ch in proc.channels.items():
        est = ch.acc_bias_estimator_
        t0, b0, s0 = est.updates_[0]
        msgs = [m for m in res.messages if m.startswith(f"{p}: accelerometer offset estimated")]
        assert len(msgs) == 1, msgs
        m = re.fullmatch(rf"{p}: accelerometer offset estimated \((\d+\.\d+) m/s\^2 \+- (\d+\.\d+)\) from "
                         r"(\d+) still postures; angles corrected from (\d+) s on", msgs[0])
        assert m is not None, msgs[0]
        assert float(m.group(1)) == pytest.approx(float(np.linalg.norm(b0)), abs=0.006)
        assert int(m.group(4)) == round(t0) and t0 > shift
        info = res.summary["accelerometer_offset"][p]
        assert info["offset_m_s2"] == pytest.approx(est.applied_.tolist(), abs=6e-4)
        assert info["magnitude_m_s2"] == pytest.approx(float(np.linalg.norm(est.applied_)), abs=6e-4)
        assert info["uncertainty_m_s2"] == pytest.approx(list(est.updates_[-1][2]), abs=6e-4)
        assert info["first_corrected_s"] == pytest.approx(t0, abs=0.01)
        assert info["updates"] == len(est.updates_)
        assert info["still_postures"] >= 6
    # the estimate is near the simulated offset (the test knows it)
    session = runs["session"]
    for p, s in session.recording.streams.items():
        truth = (s.acc[:100] - session.sensor_truth[p].acc[:100]).mean(axis=0)
        got = np.array(res.summary["accelerometer_offset"][p]["offset_m_s2"])
        assert np.abs(got - truth).max() < 0.05
    # keys the report and earlier readers use are unchanged
    _, plain = runs["plain"]
    assert set(plain.summary) - {"accelerometer_offset"} == set(res.summary) - {"accelerometer_offset"}


def test_a_sensor_never_trusted_is_reported_as_such():
    session = simulate_programme([ExerciseSet("squat", None, 3, ())], seed=2, sensors=raw_sensors())
    proc, res = process(session.recording)
    for p, info in res.summary["accelerometer_offset"].items():
        assert proc.channels[p].acc_bias_estimator_.updates_ == []
        assert info["offset_m_s2"] is None and info["first_corrected_s"] is None and info["updates"] == 0
    assert not [m for m in res.messages if "accelerometer offset" in m]


def test_the_tilt_keeps_the_calibration_posture_and_corrects_the_others():
    rng = np.random.default_rng(4)
    up = rng.normal(size=3)
    up /= np.linalg.norm(up)
    q_c = frame_from_axes(up, np.cross(up, [0.3, 0.2, 0.9]))
    b_cal, b = np.array([0.02, -0.05, 0.01]), np.array([0.31, -0.2, 0.12])
    a_c = GRAVITY * up + b_cal  # the calibration posture's specific force (sensor frame)
    h = acc_offset_tilt(q_c, b_cal, b)
    # the filter shows that posture's vertical as normalize(a_c - b); turned by h it is the calibration's
    u_new = (a_c - b) / np.linalg.norm(a_c - b)
    np.testing.assert_allclose(qm.rotate(qm.conjugate(h), u_new), up, atol=1e-12)
    np.testing.assert_array_equal(acc_offset_tilt(q_c, b_cal, b_cal), [1.0, 0.0, 0.0, 0.0])


class _History:
    def __init__(self, times, biases, initial=(0.0, 0.0, 0.0)):
        self.updates_ = [(t, tuple(b), (0.01,) * 3) for t, b in zip(times, biases, strict=True)]
        self.initial = initial

    def applied_at(self, t):
        from hipback.processing.acc_bias import AccBiasEstimator

        est = AccBiasEstimator(100.0, initial=self.initial)
        est.updates_ = self.updates_
        return est.applied_at(t)


def test_offset_frame_turns_rows_by_the_offset_at_each_row_against_the_calibration_window():
    q_c = frame_from_axes(np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    cal = {"pelvis": SensorCalibration("pelvis", q_c, 1.0, window=(1.0, 2.0)),
           "thigh_left": SensorCalibration("thigh_left", q_c, 1.0, window=(1.0, 2.0))}
    k = np.arange(0, 500, dtype=np.int64)
    q = np.tile([1.0, 0.0, 0.0, 0.0], (len(k), 1))
    rows = Rows(k, {"pelvis": q.copy(), "thigh_left": q.copy(), "thigh_right": q.copy()},
                np.zeros((len(k), 4)), np.zeros(len(k)), np.zeros(len(k), dtype=bool), {})
    b1 = np.array([0.2, 0.1, 0.0])
    frame = AccOffsetFrame({"thigh_right": _History([3.004], [b1])}, 100.0)
    # thigh_left's data are the right sensor's (swapped): its rows turn from 3.01 s on, by the tilt of b1
    out = frame.apply(CalibratedRows(rows, cal, swap=True))
    got = out.rows.q["thigh_right"]
    np.testing.assert_array_equal(got[:301], q[:301])
    tilt = acc_offset_tilt(q_c, np.zeros(3), b1)
    np.testing.assert_allclose(got[301:], np.tile(tilt, (199, 1)), atol=1e-15)
    assert out.rows.q["pelvis"] is rows.q["pelvis"] and out.rows.q["thigh_left"] is rows.q["thigh_left"]
    # without swapping the right sensor is not calibrated here: nothing turns
    assert frame.apply(CalibratedRows(rows, {"pelvis": cal["pelvis"]})).rows is rows
    # a calibration measured after the update keeps its rows; earlier rows turn back
    late = {"thigh_right": SensorCalibration("thigh_right", q_c, 1.0, window=(3.5, 4.5))}
    out = frame.apply(CalibratedRows(rows, late))
    np.testing.assert_array_equal(out.rows.q["thigh_right"][301:], q[301:])
    np.testing.assert_allclose(out.rows.q["thigh_right"][:301],
                               np.tile(acc_offset_tilt(q_c, b1, np.zeros(3)), (301, 1)), atol=1e-15)
    # a given calibration (no window) was measured with the initial offset
    given = {"thigh_right": SensorCalibration("thigh_right", q_c, 1.0)}
    out = frame.apply(CalibratedRows(rows, given))
    np.testing.assert_array_equal(out.rows.q["thigh_right"][:301], q[:301])


def test_applied_at_gives_each_time_the_offset_of_the_updates_before_it():
    from hipback.processing.acc_bias import AccBiasEstimator

    est = AccBiasEstimator(100.0, initial=(0.1, 0.0, 0.0))
    np.testing.assert_array_equal(est.applied_at(np.array([0.0, 7.0])), [[0.1, 0.0, 0.0]] * 2)
    est.updates_ = [(2.0, (1.0, 1.0, 1.0), (0.01,) * 3), (5.0, (2.0, 2.0, 2.0), (0.01,) * 3)]
    t = np.array([math.nan, -math.inf, 1.9, 2.0, np.nextafter(2.0, 3.0), 5.0, 6.0])
    got = est.applied_at(t)
    np.testing.assert_array_equal(got[:, 0], [0.1, 0.1, 0.1, 0.1, 1.0, 1.0, 2.0])


def test_sessions_without_raw_sensors_have_no_offset_in_the_summary():
    from hipback.processing.summary import build_summary

    plain = build_summary(np.zeros(0), {n: np.zeros(0) for n in ("pelvic_tilt", "hip_flexion_left",
                          "hip_flexion_right", "lumbar_flexion")}, [], [], [], {}, rate_hz=100.0,
                          holds_per_side=3, hold_s=30.0)
    assert "accelerometer_offset" not in plain
    proc = SessionProcessor({"pelvis": "quat"}, {"pelvis": 100.0})
    t = np.arange(300) / 100.0
    proc.feed(SensorStream("pelvis", "quat", t, 100.0, quat=np.tile([1.0, 0.0, 0.0, 0.0], (300, 1))))
    assert "accelerometer_offset" not in proc.finish().summary


def test_the_report_shows_each_raw_sensors_corrected_offset(runs):
    """The report's data-quality table says, per raw sensor, the offset corrected and from when (a dash for
    a sensor whose estimate was never trusted)."""
    from hipback.ingest.report import assess_quality, build_report

    session = runs["session"]
    _, res = runs["plain"]
    q = assess_quality(session.recording, res)
    for p, info in res.summary["accelerometer_offset"].items():
        assert q.sensors[p].acc_offset_m_s2 == info["magnitude_m_s2"]
        assert q.sensors[p].acc_offset_from_s == info["first_corrected_s"]
    html = build_report(res, session.recording)
    assert "accelerometer offset corrected" in html
    p, info = next(iter(res.summary["accelerometer_offset"].items()))
    cell = f"{info['magnitude_m_s2']:.2f} m/s\u00b2 from {info['first_corrected_s']:.0f} s"
    assert f"<td>{p}</td>" in html and cell in html
    # never trusted: no value, whatever else the summary holds
    untrusted = {**res.summary, "accelerometer_offset": {p: {**info, "magnitude_m_s2": None}}}
    res2 = type(res)(**{**res.__dict__, "summary": untrusted})
    assert assess_quality(session.recording, res2).sensors[p].acc_offset_m_s2 is None

"""Exercise engine, blocks, programme runner and recognition on the virtual patient.

Accuracy targets live in bench/exercise_bench.py; these tests check behaviour (counts, flags, cues, chunking,
what is not measurable) on short simulated sessions.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

from hipback.processing.angles3d import body_angles
from hipback.processing.exercises import ExerciseCounter, load_catalogue
from hipback.processing.exercises.recognition import recognise
from hipback.processing.exercises.stream import (
    ExerciseBlock,
    ProgrammeItem,
    ProgrammeRunner,
    SegmentFrame,
    calibration_offsets,
    recording_frame,
)
from hipback.simulator.exercises import ExerciseSet, simulate_programme

CAT = load_catalogue()
PROGRAMME = [
    ExerciseSet("glute_bridge", None, 5, faults=(2,)),
    ExerciseSet("clamshell", "left", 4, faults=(1,)),
    ExerciseSet("hip_flexor_kneeling", "right", 2, faults=(1,), hold_s=10.0),
    ExerciseSet("knee_to_chest_double", None, 2, faults=(1,), hold_s=10.0, short_hold_s=4.0),
    ExerciseSet("squat", None, 4, faults=(0,)),
]


@cache
def session():
    return simulate_programme(PROGRAMME, seed=11)


@cache
def truth_frame():
    s = session()
    return body_angles(s.truth.t, s.truth.segment_quat)


@cache
def sensor_frame():
    s = session()
    frame, cal = recording_frame(s.recording)
    return frame, calibration_offsets(frame, cal["pelvis"].window)


def _set_slice(frame_t, ts, before=3.5, after=2.0):
    return np.searchsorted(frame_t, [ts.t_start - before, ts.t_end + after])


def _count_on_truth(ts, st, chunk=None, worn=None):
    fr = truth_frame()
    a, b = _set_slice(fr["t"], ts, before=0.0)
    kw = {} if worn is None else {"worn": worn}
    c = ExerciseCounter(exercise=CAT[ts.exercise], side=ts.side, hold_s=st.hold_s, **kw)
    step = chunk or (b - a)
    for i in range(a, b, step):
        c.update({k: v[i : min(i + step, b)] for k, v in fr.items()})
    c.finish()
    return c


@pytest.mark.parametrize("i", range(len(PROGRAMME)))
def test_counts_peaks_and_flags_on_the_true_angles(i: int):
    ts, st = session().truth.sets[i], PROGRAMME[i]
    c = _count_on_truth(ts, st)
    assert len(c.reps_) == len(ts.reps)
    for det, tru in zip(c.reps_, ts.reps, strict=True):
        assert det.primary_peak_rad == pytest.approx(tru.primary_peak_rad, abs=math.radians(0.5))
        assert set(det.rules_broken) == set(tru.rules_broken)
        assert det.too_short == tru.too_short
        if tru.kind == "hold":
            assert det.hold_s == pytest.approx(tru.hold_s, abs=0.6)
        if tru.fault and tru.rules_broken:
            first = next(r for r in CAT[ts.exercise].rules if r.angle == det.rules_broken[0])
            assert det.cue == first.cue and not det.counted
        elif tru.too_short:
            assert det.cue.startswith("hold it longer") and not det.counted
        else:
            assert det.cue is None and det.counted


def test_chunking_does_not_change_the_counter():
    ts, st = session().truth.sets[0], PROGRAMME[0]
    whole = _count_on_truth(ts, st)
    for chunk in (1, 7, 250):
        other = _count_on_truth(ts, st, chunk=chunk)
        assert other.reps_ == whole.reps_


def test_rules_without_their_sensor_are_not_checked_and_say_so():
    ts, st = session().truth.sets[0], PROGRAMME[0]  # bridge: arching needs the upper-lumbar sensor
    c = _count_on_truth(ts, st, worn=frozenset({"pelvis", "thigh_left", "thigh_right"}))
    assert c.rules_not_checked == ("lumbar_extension",)
    assert all(r.rules_broken == () for r in c.reps_)
    assert len(c.reps_) == len(ts.reps)
    press_up = ExerciseBlock(
        exercise=CAT["prone_press_up"],
        side=None,
        posture=CAT.postures["prone"],
        worn=frozenset({"pelvis", "thigh_left", "thigh_right"}),
    )
    assert not press_up.measurable


@pytest.mark.parametrize("i", [1, 3])
def test_block_on_sensor_data_aligns_in_the_start_posture(i: int):
    frame, offs = sensor_frame()
    ts, st = session().truth.sets[i], PROGRAMME[i]
    a, b = _set_slice(frame.t, ts)
    ex = CAT[ts.exercise]
    blk = ExerciseBlock(
        exercise=ex,
        side=ts.side,
        posture=CAT.postures[ex.start_posture],
        hold_s=st.hold_s,
        initial_offsets=offs,
    )
    blk.update(frame.slice(a, b))
    blk.finish()
    assert blk.aligned_at_ is not None and ts.t_start - 4.0 <= blk.aligned_at_ <= ts.t_start + 3.0
    assert len(blk.reps_) == len(ts.reps)
    for det, tru in zip(blk.reps_, ts.reps, strict=True):
        assert det.primary_peak_rad == pytest.approx(tru.primary_peak_rad, abs=math.radians(3.0))
        assert set(det.rules_broken) == set(tru.rules_broken)
    # chunked the same way as live BLE delivers it: identical results
    blk2 = ExerciseBlock(**blk.get_params())
    for k in range(a, b, 9):
        blk2.update(frame.slice(k, min(k + 9, b)))
    blk2.finish()
    assert blk2.reps_ == blk.reps_
    with pytest.raises(RuntimeError):
        blk2.update(frame.slice(a, a + 5))


def test_runner_announces_counts_cues_and_moves_on():
    frame, offs = sensor_frame()
    items = [
        ProgrammeItem("glute_bridge", None, reps=4),  # the patient does 5, one arching: 4 good ones
        ProgrammeItem("clamshell", "left", reps=4),  # 4 done, one rolling back: not done
        ProgrammeItem("squat", None, reps=2),
    ]
    t0 = session().truth.sets[0].t_start - 3.5
    t1 = session().truth.sets[1].t_end + 3.0
    a, b = np.searchsorted(frame.t, [t0, t1])
    runner = ProgrammeRunner(programme=items, initial_offsets=offs)
    for k in range(a, b, 25):
        runner.update(frame.slice(k, min(k + 25, b)))
    runner.finish()
    kinds = [e.kind for e in runner.events_]
    texts = [e.text for e in runner.events_]
    assert texts[0] == "Next: Glute bridge, 4 reps."
    assert "keep your back flat, lift with your buttocks" in texts
    assert kinds.count("item_done") == 1 and runner.counted(0) == 4
    assert "Next: Clamshell, left side, 4 reps." in texts
    assert "keep your hips stacked, don't roll back" in texts
    assert runner.index_ == 1 and runner.counted(1) == 3 and not runner.done_


def test_runner_skips_what_the_worn_sensors_cannot_count():
    runner = ProgrammeRunner(
        programme=[ProgrammeItem("prone_press_up"), ProgrammeItem("glute_bridge")],
        worn=frozenset({"pelvis", "thigh_left", "thigh_right"}),
    )
    frame, _ = sensor_frame()
    out = runner.update(frame.slice(0, 10))
    assert out[0].kind == "not_measurable" and "upper-lumbar" in out[0].text
    assert out[1].kind == "announce" and runner.index_ == 1
    with pytest.raises(KeyError, match="no exercise 'moonwalk'"):
        ProgrammeRunner(programme=[ProgrammeItem("moonwalk")])


def test_unguided_recording_is_recognised():
    frame, offs = sensor_frame()
    sets = recognise(frame, worn=frozenset(session().recording.streams), initial_offsets=offs)
    for ts in session().truth.sets:
        overlap = [(min(ts.t_end, r.t_end) - max(ts.t_start, r.t_start), r) for r in sets]
        best = max(overlap, key=lambda x: x[0])[1]
        assert (best.exercise, best.side) == (ts.exercise, ts.side)
        assert best.count == len(ts.reps)


def test_simulated_faults_change_the_angles_the_rules_watch():
    fr = truth_frame()
    s = session()
    bridge = s.truth.sets[0]
    lumbar_ext = -fr["lumbar_flexion"]
    peaks = []
    for r in bridge.reps:
        a, b = np.searchsorted(fr["t"], [r.t_start, r.t_end])
        peaks.append(float(np.max(lumbar_ext[a:b]) - lumbar_ext[a]))
    faulty = [p for p, r in zip(peaks, bridge.reps, strict=True) if r.fault == "arching"]
    good = [p for p, r in zip(peaks, bridge.reps, strict=True) if r.fault is None]
    assert min(faulty) > math.radians(12) and max(good) < math.radians(3)


def test_segment_frame_concat_and_slice():
    frame, _ = sensor_frame()
    parts = [frame.slice(0, 5), frame.slice(5, 5), frame.slice(5, 12)]
    joined = SegmentFrame.concat(parts)
    np.testing.assert_array_equal(joined.t, frame.t[:12])
    np.testing.assert_array_equal(joined.segments["pelvis"], frame.segments["pelvis"][:12])


def test_exercises_scenario_is_registered_and_covers_the_catalogue(tmp_path):
    import json

    from hipback.simulator import SCENARIOS, simulate

    assert "exercises" in SCENARIOS
    s = simulate("exercises", seed=3, sensors=[])
    done = {(ts.exercise, ts.side) for ts in s.truth.sets}
    for ex in CAT:
        for side in ("left", "right") if ex.sides == "each" else (None,):
            assert (ex.name, side) in done
    assert any(r.fault for r in s.truth.reps) and any(r.fault is None for r in s.truth.reps)
    (path,) = s.truth.save(tmp_path)
    saved = json.loads(path.read_text())
    assert len(saved["sets"]) == len(s.truth.sets) and saved["summary"]["faulty"] > 0


def test_session_processor_feeds_the_programme_runner():
    from hipback.processing.pipeline import SessionProcessor

    rec = session().recording
    runner = ProgrammeRunner(
        programme=[ProgrammeItem("glute_bridge", None, reps=4), ProgrammeItem("clamshell", "left", reps=3)]
    )
    proc = SessionProcessor(
        {p: s.kind for p, s in rec.streams.items()},
        {p: s.rate_hz for p, s in rec.streams.items()},
        exercises=runner,
    )
    live = []
    for k in range(0, len(rec.streams["pelvis"]), 200):  # live-like chunks, every sensor in turn
        for s in rec.streams.values():
            proc.feed(s.slice(k, k + 200))
        live += proc.poll().exercise_events
    res = proc.finish()
    live += proc.poll().exercise_events
    assert [e.text for e in live] == [e.text for e in res.exercise_events]
    texts = [e.text for e in res.exercise_events]
    assert texts[0] == "Next: Glute bridge, 4 reps."
    assert "Glute bridge done." in texts and "Next: Clamshell, left side, 3 reps." in texts
    assert "keep your back flat, lift with your buttocks" in texts  # the arching rep (lumbar sensor worn)
    assert "Clamshell done." in texts and texts[-1] == "Programme done. Well done!"

"""The heading between alignments from the gyroscope of on-device fusion sensors (ExerciseBlock)."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

from hipback.processing.exercises import load_catalogue
from hipback.processing.exercises.stream import (
    ExerciseBlock,
    SegmentFrame,
    calibration_offsets,
    recording_frame,
)
from hipback.simulator.device_profiles import profile_sensor
from hipback.simulator.exercises import ExerciseSet, simulate_programme

CAT = load_catalogue()
# heading-dependent holds (hip rotation, abduction), long enough for the fused heading to drift away
PROGRAMME = [
    ExerciseSet("piriformis_figure4", "right", 2, hold_s=20.0),
    ExerciseSet("butterfly", None, 2, hold_s=20.0),
]


@cache
def session():
    # WitMotion WT901BLE's datasheet errors: on-device fusion drifting 3 deg/min plus a random walk (as large
    # as the simulator draws it in a 16 min session: 0.5 deg times sqrt(minutes)), its gyroscope delivered
    # alongside (bias 0.5 deg/s, wandering)
    sensors = [
        profile_sensor(p, "witmotion_wt901ble", heading_walk_deg=2.0)
        for p in ("pelvis", "thigh_left", "thigh_right")
    ]
    s = simulate_programme(PROGRAMME, seed=6, sensors=sensors)
    frame, cal = recording_frame(s.recording)
    return s, frame, calibration_offsets(frame, cal["pelvis"].window)


def _run(i: int, step: int = 25, drop_gyr: bool = False, **params) -> ExerciseBlock:
    s, frame, offs = session()
    if drop_gyr:
        frame = SegmentFrame(frame.t, frame.segments)
    ts = s.truth.sets[i]
    ex = CAT[ts.exercise]
    a, b = np.searchsorted(frame.t, [ts.t_start - 3.5, ts.t_end + 2.0])
    blk = ExerciseBlock(
        exercise=ex,
        side=ts.side,
        posture=CAT.postures[ex.start_posture],
        worn=frozenset(frame.segments),
        hold_s=PROGRAMME[i].hold_s,
        initial_offsets=offs,
        **params,
    )
    for k in range(a, b, step):
        blk.update(frame.slice(k, min(k + step, b)))
    blk.finish()
    return blk


def _errors(i: int, blk: ExerciseBlock) -> list[float]:
    ts = session()[0].truth.sets[i]
    assert len(blk.reps_) == len(ts.reps)
    # both primaries are against standing neutral: the truth's value in the calibration stance is ~0 here
    pairs = zip(blk.reps_, ts.reps, strict=True)
    return [abs(math.degrees(d.primary_peak_rad - t.primary_peak_rad)) for d, t in pairs]


def test_recording_frame_carries_the_gyroscope_of_on_device_fusion_sensors_only():
    s, frame, _ = session()
    assert set(frame.gyr) == {"pelvis", "thigh_left", "thigh_right"}
    assert all(g.shape == (len(frame), 3) for g in frame.gyr.values())
    # in the segment frame: the rate the segment's own quaternions turn at
    q = frame.segments["thigh_right"]
    from hipback.processing import quaternion as qm

    w_q = qm.to_rotvec(qm.multiply(qm.conjugate(q[:-1]), q[1:])) / np.diff(frame.t)[:, None]
    g = 0.5 * (frame.gyr["thigh_right"][1:] + frame.gyr["thigh_right"][:-1])
    ok = np.isfinite(w_q).all(axis=1) & np.isfinite(g).all(axis=1)
    assert np.median(np.linalg.norm(w_q[ok] - g[ok], axis=1)) < 0.03
    raw = simulate_programme(PROGRAMME[:1], seed=4)  # raw sensors: their orientation already is the gyro's
    assert recording_frame(raw.recording)[0].gyr == {}


@pytest.mark.parametrize("i", [0, 1])
def test_gyroscope_heading_keeps_heading_dependent_holds_within_the_target(i: int):
    with_gyro = _errors(i, _run(i))
    fused = _errors(i, _run(i, drop_gyr=True))
    assert max(with_gyro) <= 1.5, with_gyro
    # the drifting fused heading alone (3 deg/min plus a random walk) is off by more over a 20 s hold, in
    # every hold (a hold's angle is its mean over the hold: about half the drift accumulated by its end)
    assert all(f > g for f, g in zip(fused, with_gyro, strict=True)), (fused, with_gyro)
    assert max(fused) > 2.0 * max(with_gyro), (fused, with_gyro)
    assert _errors(i, _run(i, gyro_heading=False)) == fused


def test_gyroscope_heading_does_not_depend_on_the_chunking():
    whole = _run(0, step=10**6)
    for step in (1, 9, 60):
        assert _run(0, step=step).reps_ == whole.reps_


def test_segment_frame_slices_and_joins_the_gyroscope():
    t = np.arange(6) * 0.01
    q = np.tile([1.0, 0.0, 0.0, 0.0], (6, 1))
    g = np.arange(18.0).reshape(6, 3)
    f = SegmentFrame(t, {"pelvis": q, "thigh_left": q}, {"pelvis": g})
    assert np.array_equal(f.slice(2, 4).gyr["pelvis"], g[2:4])
    joined = SegmentFrame.concat([f.slice(0, 3), f.slice(3, 6)])
    assert np.array_equal(joined.gyr["pelvis"], g)
    # a part without the gyroscope: the joined frame has none for that placement (never misaligned)
    assert SegmentFrame.concat([f.slice(0, 3), SegmentFrame(t[3:], f.slice(3, 6).segments)]).gyr == {}

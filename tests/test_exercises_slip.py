"""The slip monitor and exercise stances: a standing lunge (front thigh 30 deg forward, pelvis upright, back
thigh near neutral) reads exactly like one slipped thigh sensor in a still window; only quiet standing after
walking is a reference for the standing slip check. A real slip while walking is still found at the next
stop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.pipeline import SessionProcessor
from hipback.processing.types import SensorStream
from hipback.simulator import SensorSpec
from hipback.simulator.exercises import ExerciseSet, simulate_programme

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")


def _process(rec):
    proc = SessionProcessor({p: s.kind for p, s in rec.streams.items()},
                            {p: s.rate_hz for p, s in rec.streams.items()})
    for s in rec.streams.values():
        proc.feed(s)
    return proc, proc.finish()


@pytest.fixture(scope="module")
def lunges():
    return simulate_programme(
        [ExerciseSet("hip_flexor_lunge", "left", 2, hold_s=12.0),
         ExerciseSet("hip_flexor_lunge", "right", 2, hold_s=12.0)],
        seed=1, sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in PLACEMENTS],
    )


def test_a_held_lunge_is_not_a_slipped_thigh(lunges):
    proc, res = _process(lunges.recording)
    assert proc.slip_monitor.slips_ == []
    assert not any("slipped" in w for w in res.warnings)
    assert all("slipped" not in c.flags for c in res.calibration.values())
    # the thigh calibration stays right: in each hold the front thigh reads the truth's hip flexion
    from hipback.processing.angles3d import body_angles

    truth = body_angles(lunges.truth.t, lunges.truth.segment_quat)
    for ts in lunges.truth.sets:
        front = "right" if ts.side == "left" else "left"
        for hold in ts.reps:
            mid = 0.5 * (hold.t_start + hold.t_end)
            measured = np.interp(mid, res.angles.t, getattr(res.angles, f"hip_flexion_{front}"))
            true = np.interp(mid, lunges.truth.t, truth[f"hip_flexion_{front}"])
            assert math.degrees(true) > 20.0  # really a split stance
            assert math.degrees(measured) == pytest.approx(math.degrees(true), abs=5.0)


def test_a_real_slip_while_walking_is_still_found_at_the_next_stop(lunges):
    """Positive control on the same session: the right thigh sensor turns 20 deg on the leg mid-walk (the
    session's walk before the exercises); the quiet standing after the walk finds it and recalibrates."""
    rec = lunges.recording
    s = rec.streams["thigh_right"]
    slip = qm.from_axis_angle([0.0, 1.0, 0.0], math.radians(20.0) * np.clip((s.t - 15.0) / 0.5, 0, 1))
    streams = dict(rec.streams)
    streams["thigh_right"] = SensorStream("thigh_right", "quat", s.t, s.rate_hz,
                                          quat=qm.multiply(s.quat, slip))
    proc, res = _process(type(rec)(streams=streams, start_utc=rec.start_utc, meta=rec.meta))
    standing = [x for x in proc.slip_monitor.slips_ if x[2] == "standing"]
    assert [x[0] for x in standing][:1] == ["thigh_right"] and 19.0 < standing[0][1] < 26.0
    assert "slipped" in res.calibration["thigh_right"].flags

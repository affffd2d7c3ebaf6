"""A live session's processor keeps what its results need and no more: fed in the 20 ms steps of a session
config's default, the memory it holds grows by the angle rows' own bytes, not by a set of small arrays per
step (about 450 MB per hour of session before they were joined, ``bench/README.md``), and its results are
the batch results."""

from __future__ import annotations

import tracemalloc

import numpy as np

from hipback.processing import SessionProcessor, process_recording
from hipback.simulator import SensorSpec, simulate


def test_twenty_seconds_more_of_twenty_millisecond_steps_hold_well_under_a_megabyte() -> None:
    sim = simulate("walk", seed=3, calib_s=8.0, walk_s=40.0, stand_s=2.0,
                   sensors=[SensorSpec(p, kind="quat", rate_hz=100.0)
                            for p in ("pelvis", "thigh_left", "thigh_right")])
    streams = list(sim.recording.streams.values())
    proc = SessionProcessor.default({s.placement: s.kind for s in streams},
                                    {s.placement: s.rate_hz for s in streams}, live_batch_s=0.02)
    pieces = [[s.slice(a, min(a + 2, len(s))) for a in range(0, len(s), 2)] for s in streams]
    held = {}
    tracemalloc.start()
    try:
        for r in range(max(len(p) for p in pieces)):
            for p in pieces:
                if r < len(p):
                    proc.feed(p[r])
            proc.poll()
            if r in (1000, 2000):  # 20 s and 40 s into the session, walking
                held[r] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    growth = held[2000] - held[1000]  # 20 s of walking: 2,000 angle rows of about 210 bytes
    assert growth < 1_000_000, growth
    streamed = proc.finish()
    batch = process_recording(sim.recording)
    assert len(streamed.angles) == len(batch.angles)
    for name in ("t", "hip_flexion_left", "hip_flexion_right", "pelvic_tilt"):
        np.testing.assert_array_equal(getattr(streamed.angles, name), getattr(batch.angles, name))

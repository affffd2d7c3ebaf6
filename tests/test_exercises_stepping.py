"""Walking is not exercising: the pelvis' step rhythm marks a walk, and an exercise's reps are not counted
from its steps (a standing hip extension's thigh swings back as in every stride)."""

from __future__ import annotations

import numpy as np
import pytest

from hipback.processing.exercises.catalogue import build_catalogue, shipped_files
from hipback.processing.exercises.stepping import SteppingDetector
from hipback.processing.exercises.stream import ProgrammeItem, ProgrammeRunner
from hipback.processing.pipeline import SessionProcessor
from hipback.simulator import simulate


def _walk_acc(t: np.ndarray, cadence_spm: float = 105.0, amp: float = 1.6, seed: int = 1) -> np.ndarray:
    """A walk's vertical pelvis acceleration: the step oscillation, a sharp heel-strike bump per step and
    sensor noise (m/s^2)."""
    rng = np.random.default_rng(seed)
    f = cadence_spm / 60.0
    phase = (t * f) % 1.0
    bump = 2.0 * np.exp(-0.5 * ((phase - 0.05) / 0.02) ** 2)
    return amp * np.sin(2 * np.pi * f * t) + bump + rng.normal(0.0, 0.05, len(t))


@pytest.mark.parametrize("rate", [60.0, 100.0, 120.0])
def test_steps_are_walking_slow_movements_in_place_are_not(rate: float) -> None:
    t = np.arange(0.0, 20.0, 1.0 / rate)
    rng = np.random.default_rng(2)
    walking = SteppingDetector().update(t, _walk_acc(t))
    assert walking[t >= 2.0].all() and not walking[t < 1.9].any()  # (once the 2 s window is full)
    slow = SteppingDetector().update(t, _walk_acc(t, cadence_spm=72.0, amp=0.9))  # a slow, frail walker
    assert slow[t >= 2.0].mean() > 0.95
    # squats of 2.5 s lifting the pelvis 0.25 m (peak 1.6 m/s^2), and a leg moved while standing
    squat = 0.125 * (2 * np.pi / 2.5) ** 2 * np.cos(2 * np.pi * t / 2.5) + rng.normal(0.0, 0.05, len(t))
    assert not SteppingDetector().update(t, squat).any()
    leg = 0.3 * np.sin(2 * np.pi * 0.5 * t) + rng.normal(0.0, 0.1, len(t))
    assert not SteppingDetector().update(t, leg).any()


def test_marks_do_not_depend_on_chunking_and_restart_after_a_gap() -> None:
    t = np.arange(0.0, 30.0, 0.01)
    a = _walk_acc(t)
    a[1000:1010] = np.nan  # the pelvis sensor lost for 0.1 s
    t = np.concatenate([t[:2000], t[2000:] + 5.0])  # and 5 s missing
    whole = SteppingDetector().update(t, a)
    rng = np.random.default_rng(3)
    for _ in range(5):
        det, parts, i = SteppingDetector(), [], 0
        while i < len(t):
            n = int(rng.integers(1, 40))
            parts.append(det.update(t[i:i + n], a[i:i + n]))
            i += n
        assert np.array_equal(np.concatenate(parts), whole)
    assert not whole[1000:1209].any() and whole[1220:2000].all()  # (the window held the missing values)
    assert not whole[2000:2199].any() and whole[2200:].all()  # the window starts afresh after the jump


HIP_EXTENSION = """
name = "standing_hip_extension"
title = "Standing hip extension"
description = "Standing tall, move the straight working leg backwards, without arching the back."
kind = "reps"
sides = "each"
sensors = ["pelvis", "thigh"]
start_posture = "standing"

[primary]
angle = "hip_extension"
reference = "start"
target_deg = 10
cue = "move the leg a little further back"

[[rules]]
angle = "pelvic_tilt"
max_deg = 5
cue = "keep your back flat, don't arch"

[dose]
reps = 12

[signature]
hip_flexion = -15
other_hip_flexion = 0

[responders]
flexion = "caution"
reason = "an extension movement; flexion responders may be aggravated"

[measurement]
quality = "good"
"""


def _events(rec, block: dict | None) -> list[str]:
    files, postures = shipped_files()
    cat = build_catalogue({**files, "clinic/standing_hip_extension.toml": HIP_EXTENSION}, postures)
    runner = ProgrammeRunner(programme=[ProgrammeItem("standing_hip_extension", "left", reps=10)],
                             worn=frozenset(rec.streams), catalogue=cat, block=block)
    proc = SessionProcessor({p: s.kind for p, s in rec.streams.items()},
                            {p: s.rate_hz for p, s in rec.streams.items()}, exercises=runner)
    for k in range(0, len(rec.streams["pelvis"]), 25):  # live-like chunks
        for s in rec.streams.values():
            proc.feed(s.slice(k, k + 25))
        proc.poll()
    return [e.text for e in proc.finish().exercise_events]


def test_a_walk_is_not_counted_as_standing_hip_extensions() -> None:
    """Stand still (the programme's start posture), then walk: the programme announces the exercise and
    counts none of the walk's strides as reps; without the walking gate each stride was a rep."""
    rec = simulate("walk", seed=4, calib_s=8.0, walk_s=20.0, stand_s=4.0).recording
    gated = _events(rec, None)
    assert gated[0] == "Next: Standing hip extension, left side, 10 reps."
    assert not [e for e in gated if e.startswith(("Rep ", "That rep"))], gated
    ungated = _events(rec, {"step_rms_m_s2": 0.0})
    assert len([e for e in ungated if e.startswith("Rep ")]) >= 8

"""Standing on one leg and swinging or cycling the other is not walking (processing.activity).

The legs' split (left minus right thigh inclination) oscillates in both; in gait both thighs swing (each
through about 25-50 deg), standing on one leg the standing thigh moves a few degrees (the real Movella DOT
trial "cycle left leg": the right hip's range 8 deg over the trial, the standing thigh 1-4 deg within
1.5 s; it was labelled walking for 4.9 of its 6 s, ``bench/activity_bench.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing.activity import ActivityClassifier
from hipback.processing.types import AngleSeries
from tests.test_gait import gait_cycle

DEG = math.pi / 180.0
FS = 50.0


def _series(left_deg: np.ndarray, right_deg: np.ndarray, motion: float) -> AngleSeries:
    n = len(left_deg)
    t = np.arange(n) / FS
    return AngleSeries(
        t=t,
        hip_flexion_left=left_deg * DEG,
        hip_flexion_right=right_deg * DEG,
        pelvic_tilt=np.zeros(n),
        lumbar_flexion=np.full(n, np.nan),
        thigh_inclination_left=left_deg * DEG,
        thigh_inclination_right=right_deg * DEG,
        pelvis_inclination=np.full(n, 3.0 * DEG),
        pelvis_motion=np.full(n, motion),
    )


def _time(angles: AngleSeries, **params: float) -> dict[str, float]:
    clf = ActivityClassifier(**params)
    clf.update(angles)
    clf.finish()
    return clf.time_per_activity()


def _one_leg(standing_sway_deg: float, seconds: float = 30.0) -> AngleSeries:
    t = np.arange(int(seconds * FS)) / FS
    rng = np.random.default_rng(3)
    moving = 30.0 - 30.0 * np.cos(2 * np.pi * 0.8 * t)  # 0-60 deg at 0.8 Hz (cycling or swinging)
    standing = standing_sway_deg * np.sin(2 * np.pi * 0.8 * t + 1.0) + 0.3 * rng.standard_normal(len(t))
    return _series(moving, standing, motion=1.0)


@pytest.mark.parametrize("sway_deg", [0.5, 2.0, 4.0])
def test_one_leg_moving_while_the_other_stands_is_not_walking(sway_deg):
    angles = _one_leg(sway_deg)
    times = _time(angles)
    assert times["walking"] == 0.0
    assert times["standing"] > 25.0
    # the rule that decides it: without it (each thigh's own range not required) this was walking
    assert _time(angles, walk_each_range_rad=0.0)["walking"] > 25.0


def test_walking_with_small_thigh_swings_is_still_walking():
    """A shuffling gait: each thigh through about 16 deg (hip 8 deg extension to 8 deg flexion)."""
    t = np.arange(int(30 * FS)) / FS
    left = 8.0 * np.sin(2 * np.pi * t / 1.4)
    times = _time(_series(left, -left, motion=1.0))
    assert times["walking"] > 27.0
    # and a usual gait with the same rule
    usual = _time(_series(gait_cycle(t / 1.1), gait_cycle(t / 1.1 - 0.5), motion=1.0))
    assert usual["walking"] > 27.0

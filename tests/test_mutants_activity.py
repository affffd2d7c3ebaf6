"""Activity labels on noise-free, piecewise-constant (or sinusoidal) angles: every threshold just inside and
just outside, the hysteresis band, the minimum bout, gaps, and bout times that follow exactly from the
definitions in ``processing/activity.py``.

Exact times: features are smoothed with a triangle of +- ``posture_window_s`` (10 samples at 100 Hz,
weights 1..11..1 / 121); the stream starts and ends with NaN padding, so a constant recording of ``L`` s
gives one bout from 0.1 s to ``L`` - 0.1 s. A step of the pelvis motion from 0 to 1.6 m/s^2 crosses the 0.8
threshold exactly at the step (the new samples weigh 66/121 there and 55/121 one sample earlier), so the bout
boundary is the step itself, both ways.

Written for the survivors of ``python bench/mutation.py --group activity``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing.activity import LABELS, ActivityBout, ActivityClassifier, classify_activity
from hipback.processing.types import AngleSeries

D = math.pi / 180.0
FS = 100.0


def series(segments: list[tuple[float, dict[str, float]]], thighs: bool = True) -> AngleSeries:
    """Piecewise-constant features: pelvis inclination ``pin`` and thigh inclinations ``tl``/``tr`` in deg
    (NaN: not worn), pelvis motion ``mot`` in m/s^2. ``thighs=False``: no thigh sensor at all."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("pin", "tl", "tr", "mot")}
    for seconds, v in segments:
        n = int(round(seconds * FS))
        for k in cols:
            cols[k].append(np.full(n, v.get(k, 0.0) * (1.0 if k == "mot" else D)))
    c = {k: np.concatenate(v) for k, v in cols.items()}
    n = len(c["pin"])
    nan = np.full(n, np.nan)
    return AngleSeries(
        t=np.arange(n) / FS, hip_flexion_left=nan, hip_flexion_right=nan, pelvic_tilt=nan, lumbar_flexion=nan,
        thigh_inclination_left=c["tl"] if thighs else nan, thigh_inclination_right=c["tr"] if thighs else nan,
        pelvis_inclination=c["pin"], pelvis_motion=c["mot"],
    )


def bouts(angles: AngleSeries, **params: float) -> list[tuple[str, float, float]]:
    det = classify_activity(angles, **params)
    return [(b.label, round(b.t_start, 9), round(b.t_end, 9)) for b in det.bouts]


@pytest.mark.parametrize(
    "values,thighs,label",
    [
        ({"tl": 29.0, "tr": 29.0}, True, "standing"),  # every thigh <= 30 deg
        ({"tl": 61.0, "tr": 61.0}, True, "sitting"),  # every thigh >= 60 deg
        ({"tl": 29.0, "tr": 61.0}, True, "kneeling"),  # one vertical, one flexed
        ({"tl": 61.0, "tr": 29.0}, True, "kneeling"),
        ({"tl": math.nan, "tr": 61.0}, True, "sitting"),  # one thigh worn
        ({"tl": 29.0, "tr": math.nan}, True, "standing"),
        ({"pin": 61.0}, True, "lying"),  # pelvis >= 60 deg
        ({"pin": 44.0}, True, "standing"),  # upright below 45 deg
        ({"pin": 61.0}, False, "lying"),
        ({"mot": 0.79}, False, "upright"),  # no thigh: still pelvis
        ({"mot": 0.81}, False, "walking"),  # no thigh: moving pelvis
    ],
)
def test_constant_posture_is_one_bout(values: dict[str, float], thighs: bool, label: str) -> None:
    assert bouts(series([(10.0, values)], thighs)) == [(label, 0.1, 9.9)]


@pytest.mark.parametrize(
    "values",
    [
        {"pin": 59.0},  # between the lying exit (45) and entry (60) with nothing before: unknown
        {"pin": 46.0},
        {"tl": 59.0, "tr": 59.0},  # thighs between 30 and 60
        {"tl": 31.0, "tr": 31.0},
        {"tl": 31.0, "tr": 61.0},  # neither kneeling (31 > 30) nor sitting
        {"tl": 29.0, "tr": 59.0},
    ],
)
def test_ambiguous_postures_keep_the_previous_label(values: dict[str, float]) -> None:
    assert bouts(series([(10.0, values)])) == []
    got = bouts(series([(5.0, {"pin": 120.0} if "pin" in values else {}), (10.0, values)]))
    assert len(got) == 1 and got[0][1:] == (0.1, 14.9)  # the label before goes on


def test_motion_step_boundaries_are_exact() -> None:
    got = bouts(series([(5.0, {}), (5.0, {"mot": 1.6}), (5.0, {})], thighs=False))
    assert got == [("upright", 0.1, 5.0), ("walking", 5.0, 10.0), ("upright", 10.0, 14.9)]


@pytest.mark.parametrize("walk_s,n_bouts", [(1.99, 1), (2.0, 3)])
def test_minimum_bout_is_two_seconds(walk_s: float, n_bouts: int) -> None:
    got = bouts(series([(5.0, {}), (walk_s, {"mot": 1.6}), (5.0, {})], thighs=False))
    if n_bouts == 1:
        assert got == [("upright", 0.1, 5.0 + walk_s + 5.0 - 0.1)]  # absorbed
    else:
        assert got == [("upright", 0.1, 5.0), ("walking", 5.0, 7.0), ("upright", 7.0, 11.9)]


def test_short_episodes_of_two_labels_do_not_add_up() -> None:
    """1.5 s walking then 1.5 s lying: neither lasts 2 s, so the upright bout goes on through both."""
    got = bouts(series([(5.0, {}), (1.5, {"mot": 1.6}), (1.5, {"pin": 120.0, "mot": 1.6}), (5.0, {})],
                       thighs=False))
    assert [b[0] for b in got] == ["upright"] and got[0][1] == 0.1


def test_hysteresis_keeps_lying_until_below_45_degrees() -> None:
    """Lying (120 deg), then 50 deg for 5 s (inside the band: still lying), then 0: upright starts where the
    smoothed inclination drops below 45 deg, 6 samples before the step (new weight 30/121 > 0.1)."""
    got = bouts(series([(5.0, {}), (5.0, {"pin": 120.0}), (5.0, {"pin": 50.0}), (5.0, {})], thighs=False))
    assert got == [("upright", 0.1, 5.0), ("lying", 5.0, 14.94), ("upright", 14.94, 19.9)]


def test_a_gap_ends_the_bout_and_is_not_counted() -> None:
    angles = series([(10.0, {})], thighs=False)
    angles.pelvis_inclination[500:600] = np.nan
    assert bouts(angles) == [("upright", 0.1, 4.9), ("upright", 6.1, 9.9)]
    angles = series([(10.0, {})], thighs=False)
    angles.t = np.where(angles.t >= 5.0, angles.t + 3.0, angles.t)  # a 3 s hole in the timeline
    # the first sample after the hole is NaN-ed, and with it the smoothed pelvis over +- 10 samples
    assert bouts(angles) == [("upright", 0.1, 4.9), ("upright", 8.11, 12.9)]


def gait(seconds: float, left_deg: float, right_deg: float, hz: float = 1.0) -> AngleSeries:
    angles = series([(seconds, {})])
    s = np.sin(2 * np.pi * hz * angles.t)
    angles.thigh_inclination_left = left_deg * s * D if left_deg else np.full(len(s), np.nan)
    angles.thigh_inclination_right = -right_deg * s * D if right_deg else np.full(len(s), np.nan)
    return angles


@pytest.mark.parametrize(
    "left,right,walking",
    [
        (10.5, 0.0, True),  # one thigh: range ~21 deg >= 20
        (9.5, 0.0, False),  # ~19 deg
        (37.0, 0.0, True),  # ~73 deg <= 75
        (38.5, 0.0, False),  # ~76 deg: a sit-to-stand, not a step
        (6.5, 6.5, True),  # both: the split (left - right) ranges ~26 deg >= 25
        (6.0, 6.0, False),  # ~24 deg
        (37.0, 37.0, True),  # ~147 deg <= 150
        (38.5, 38.5, False),  # ~153 deg
    ],
)
def test_walking_ranges(left: float, right: float, walking: bool) -> None:
    det = classify_activity(gait(12.0, left, right))
    walked = det.time_per_activity()["walking"]
    if walking:  # all but the start, before the +- 0.75 s swing window has data
        assert walked >= 10.5 and {b.label for b in det.bouts} <= {"standing", "walking"}
    else:
        assert walked == 0.0


def test_one_way_movement_is_not_walking() -> None:
    """A thigh sweeping one way at 40 deg/s ranges like a step but never goes back."""
    angles = series([(12.0, {})])
    saw = (40.0 * angles.t) % 60.0  # 0..60 deg, one way, jumping back once every 1.5 s
    angles.thigh_inclination_left = saw * D
    angles.thigh_inclination_right = np.full(len(saw), np.nan)
    assert "walking" not in {b.label for b in classify_activity(angles).bouts}


def test_chunked_equals_batch_and_totals_per_label() -> None:
    angles = series([(5.0, {}), (3.0, {"mot": 1.6}), (4.0, {"pin": 120.0}), (5.0, {})], thighs=False)
    det = ActivityClassifier()
    got = []
    for a in range(0, len(angles), 7):
        got += det.update(angles.slice(a, a + 7))
    got += det.finish()
    assert [(b.label, round(b.t_start, 9), round(b.t_end, 9)) for b in got] == bouts(angles)
    assert bouts(angles) == [("upright", 0.1, 5.0), ("walking", 5.0, 8.0), ("lying", 8.0, 12.01),
                             ("upright", 12.01, 16.9)]
    totals = det.time_per_activity()
    assert set(totals) == set(LABELS) - {"unknown"}
    assert totals == pytest.approx({"lying": 4.01, "sitting": 0.0, "standing": 0.0, "walking": 3.0,
                                    "kneeling": 0.0, "upright": 4.9 + 4.89}, abs=1e-9)
    assert ActivityBout("walking", 1.25, 4.0).duration_s == 2.75


# -- small windows, a one-sample bout, pelvis motion with thighs, exact ties -----------------------------
def test_one_sample_posture_window_at_ten_hertz() -> None:
    n = 100
    nan = np.full(n, np.nan)
    angles = AngleSeries(t=np.arange(n) / 10.0, hip_flexion_left=nan, hip_flexion_right=nan, pelvic_tilt=nan,
                         lumbar_flexion=nan, thigh_inclination_left=nan, thigh_inclination_right=nan,
                         pelvis_inclination=np.zeros(n), pelvis_motion=np.zeros(n))
    assert bouts(angles) == [("upright", 0.1, 9.9)]  # one sample of NaN padding each side at 10 Hz


def test_a_one_sample_bout_when_the_minimum_is_one_sample() -> None:
    """A pelvis-motion spike of 9 m/s^2 on one sample: smoothed, only its own sample reaches 0.8
    (11/121 x 9 = 0.82, 10/121 x 9 = 0.74)."""
    angles = series([(10.0, {})], thighs=False)
    angles.pelvis_motion[500] = 9.0
    assert bouts(angles, min_bout_s=0.01) == [("upright", 0.1, 5.0), ("walking", 5.0, 5.01),
                                              ("upright", 5.01, 9.9)]
    assert bouts(angles) == [("upright", 0.1, 9.9)]


def test_pelvis_motion_only_counts_without_thighs() -> None:
    assert bouts(series([(10.0, {"tl": 5.0, "tr": 5.0, "mot": 2.0})])) == [("standing", 0.1, 9.9)]


EXACT = dict(posture_window_s=0.03, lying_rad=1.0, lying_exit_rad=0.5, sitting_rad=1.0, vertical_rad=0.5,
             walk_motion=0.75)  # a 1..4..1 / 16 triangle keeps binary fractions exact


@pytest.mark.parametrize(
    "values,thighs,label",
    [
        ({"pin": 1.0}, False, "lying"),  # exactly the lying angle
        ({"pin": 0.5}, False, None),  # exactly the lying exit: not upright yet (ambiguous, nothing before)
        ({"tl": 1.0, "tr": 1.0}, True, "sitting"),  # exactly the sitting angle
        ({"tl": 0.5, "tr": 0.5}, True, "standing"),  # exactly the vertical limit
        ({"tl": 0.5, "tr": 1.0}, True, "kneeling"),
        ({"mot": 0.75}, False, "walking"),  # exactly the motion threshold
    ],
)
def test_thresholds_at_exact_ties(values: dict[str, float], thighs: bool, label: str | None) -> None:
    n = 1000
    nan = np.full(n, np.nan)

    def col(key: str) -> np.ndarray:
        return np.full(n, values.get(key, 0.0)) if thighs or key in ("pin", "mot") else nan

    angles = AngleSeries(t=np.arange(n) / FS, hip_flexion_left=nan, hip_flexion_right=nan, pelvic_tilt=nan,
                         lumbar_flexion=nan, thigh_inclination_left=col("tl"),
                         thigh_inclination_right=col("tr"),
                         pelvis_inclination=col("pin"), pelvis_motion=col("mot"))
    got = bouts(angles, **EXACT)
    assert [b[0] for b in got] == ([] if label is None else [label])

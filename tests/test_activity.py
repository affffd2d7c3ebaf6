"""Activity classification (processing.activity): a synthetic day with known postures, hysteresis and minimum
bout length, gaps, partial sensor sets, junk input, chunking invariance, and the virtual patient's truth."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipback.processing.activity import ActivityClassifier, classify_activity
from hipback.processing.types import AngleSeries
from tests.test_gait import gait_cycle
from tests.test_holds import JUNK_ANGLES, keyframes

DEG = math.pi / 180.0
FS = 50.0

STAND = {"tl": 0.0, "tr": 0.0, "pel": 0.0}
SIT = {"tl": 90.0, "tr": 90.0, "pel": 10.0}
LIE = {"tl": 93.0, "tr": 93.0, "pel": 90.0}
KNEEL = {"tl": -3.0, "tr": 80.0, "pel": 2.0}


def day(noise_deg: float = 0.5, seed: int = 0) -> tuple[AngleSeries, list[tuple[str, float, float]]]:
    """stand 0-10, walk 10-30, stand 30-35, sit 37.5-60, lie 63-80, sit 83-86, kneel 89-100, stand 103-110
    (the gaps are transitions). Returns the series and the truth (label, start, end) without transitions."""
    frames = [
        (0.0, STAND), (35.0, STAND), (37.5, SIT), (60.0, SIT), (63.0, LIE), (80.0, LIE), (83.0, SIT),
        (86.0, SIT), (89.0, KNEEL), (100.0, KNEEL), (103.0, STAND), (110.0, STAND),
    ]  # fmt: skip
    t = np.arange(int(110 * FS)) / FS
    ch = keyframes(t, frames)
    walk = (t >= 10.0) & (t < 30.0)
    ramp = np.clip((t - 10.0) / 0.5, 0, 1) * np.clip((30.0 - t) / 0.5, 0, 1)
    ch["tl"] = np.where(walk, ramp * gait_cycle((t - 10.0) / 1.1), ch["tl"])
    ch["tr"] = np.where(walk, ramp * gait_cycle((t - 10.0) / 1.1 - 0.5), ch["tr"])
    rng = np.random.default_rng(seed)
    noisy = {k: (v + noise_deg * rng.standard_normal(len(t))) * DEG for k, v in ch.items()}
    angles = AngleSeries(
        t=t,
        hip_flexion_left=noisy["tl"],
        hip_flexion_right=noisy["tr"],
        pelvic_tilt=np.zeros(len(t)),
        lumbar_flexion=np.full(len(t), np.nan),
        thigh_inclination_left=noisy["tl"],
        thigh_inclination_right=noisy["tr"],
        pelvis_inclination=np.abs(noisy["pel"]),
        pelvis_motion=np.where(walk, 2.0, 0.05),
    )
    truth = [
        ("standing", 0, 10), ("walking", 10, 30), ("standing", 30, 35), ("sitting", 37.5, 60),
        ("lying", 63, 80), ("sitting", 83, 86), ("kneeling", 89, 100), ("standing", 103, 110),
    ]  # fmt: skip
    return angles, truth


def test_day_is_labelled_in_order_with_accurate_boundaries():
    angles, truth = day()
    clf = classify_activity(angles)
    assert [b.label for b in clf.bouts] == [lab for lab, _, _ in truth]
    for b, (_, start, end) in zip(clf.bouts, truth, strict=True):
        # transitions (up to 3 s) are split between the neighbouring bouts
        assert start - 3.0 <= b.t_start <= start + 1.0
        assert end - 1.0 <= b.t_end <= end + 3.0
    assert clf.bouts[0].t_start == pytest.approx(0.0, abs=0.5)
    walk = clf.bouts[1]
    assert walk.t_start == pytest.approx(10.0, abs=1.0) and walk.t_end == pytest.approx(30.0, abs=1.0)
    # bouts tile the session: each starts where the previous ended
    for a, b in zip(clf.bouts[:-1], clf.bouts[1:], strict=True):
        assert b.t_start == pytest.approx(a.t_end, abs=1e-9)
    times = clf.time_per_activity()
    assert times["walking"] == pytest.approx(20.0, abs=1.0)
    assert times["lying"] == pytest.approx(17.0 + 3.0, abs=3.0)
    assert times["sitting"] == pytest.approx(22.5 + 3.0 + 2.5 + 3.0, abs=4.0)
    assert times["upright"] == 0.0
    # no time lost or counted twice; only the half smoothing window at each end of the stream is unknown
    assert sum(times.values()) == pytest.approx(clf.bouts[-1].t_end - clf.bouts[0].t_start, abs=1e-6)
    assert clf.bouts[-1].t_end >= 109.5


def test_hysteresis_and_minimum_bout_stop_flapping():
    t = np.arange(int(60 * FS)) / FS
    rng = np.random.default_rng(4)
    # lying down at 10 s, then hovering around 55 deg (inside the 45-60 deg band) with noise
    pel = np.where(t < 10, 0.0, np.where(t < 20, 80.0, 55.0 + 3.0 * rng.standard_normal(len(t)))) * DEG
    zeros = np.zeros(len(t))
    angles = AngleSeries(t, zeros, zeros, zeros, zeros * np.nan, zeros, zeros, pel, zeros)
    labels = [b.label for b in classify_activity(angles).bouts]
    assert labels == ["standing", "lying"]
    # a 1 s blip of seated thighs inside standing is absorbed
    thigh = np.where((t > 30) & (t < 31), 90 * DEG, 0.0)
    angles = AngleSeries(t, thigh, thigh, zeros, zeros * np.nan, thigh, thigh, zeros, zeros)
    bouts = classify_activity(angles).bouts
    assert [b.label for b in bouts] == ["standing"]


def test_gap_ends_a_bout_and_is_not_counted():
    t = np.arange(int(30 * FS)) / FS
    zeros = np.zeros(len(t))
    pel = np.where((t >= 12) & (t < 14), np.nan, 0.0)
    angles = AngleSeries(t, zeros, zeros, zeros, zeros * np.nan, zeros, zeros, pel, zeros)
    clf = classify_activity(angles)
    assert [b.label for b in clf.bouts] == ["standing", "standing"]
    assert clf.bouts[0].t_end <= 12.0 and clf.bouts[1].t_start >= 14.0
    assert clf.time_per_activity()["standing"] == pytest.approx(28.0, abs=1.0)


def test_pelvis_only_tells_walking_from_upright_and_lying():
    t = np.arange(int(40 * FS)) / FS
    nan = np.full(len(t), np.nan)
    zeros = np.zeros(len(t))
    motion = np.where((t >= 10) & (t < 20), 2.0, 0.05)
    pel = np.where(t >= 30, 90 * DEG, 0.0)
    angles = AngleSeries(t, nan, nan, zeros, nan, nan, nan, pel, motion)
    assert [b.label for b in classify_activity(angles).bouts] == ["upright", "walking", "upright", "lying"]


def test_one_thigh_walking_and_sitting():
    angles, truth = day()
    angles.thigh_inclination_right[:] = np.nan
    labels = [b.label for b in classify_activity(angles).bouts]
    # half-kneeling needs both thighs: with the left (back, vertical) thigh only it reads as standing
    assert labels == ["standing", "walking", "standing", "sitting", "lying", "sitting", "standing"]


@pytest.mark.parametrize("angles", JUNK_ANGLES)
def test_junk_input_does_not_crash(angles):
    clf = ActivityClassifier()
    clf.update(angles)
    clf.update(AngleSeries.empty())
    clf.finish()
    assert clf.bouts == []
    assert set(clf.time_per_activity().values()) == {0.0}


# -- streaming == batch -----------------------------------------------------------------------------

_STREAM, _ = day(noise_deg=1.0, seed=9)
_BATCH = classify_activity(_STREAM)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bounds=st.lists(st.integers(min_value=1, max_value=len(_STREAM) - 1), max_size=80, unique=True))
def test_chunking_does_not_change_results(bounds):
    clf = ActivityClassifier()
    returned = []
    edges = [0, *sorted(bounds), len(_STREAM)]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        returned += clf.update(_STREAM.slice(a, b))
    returned += clf.finish()
    assert len(_BATCH.bouts) == 8
    np.testing.assert_equal([asdict(b) for b in clf.bouts], [asdict(b) for b in _BATCH.bouts])
    np.testing.assert_equal([asdict(b) for b in returned], [asdict(b) for b in _BATCH.bouts])


# -- virtual patient --------------------------------------------------------------------------------


def test_activity_on_simulated_truth_angles():
    session = pytest.importorskip("hipback.simulator.session")
    truth = session.simulate("clinic_visit", seed=3, walk_s=30.0, hold_s=10.0, sit_s=20.0, lie_s=15.0).truth
    clf = classify_activity(truth.angles())
    expected: dict[str, float] = {}
    transitions = 0.0
    for a in truth.activities:
        if a.label == "transition":
            transitions += a.t_end - a.t_start
        else:
            expected[a.label] = expected.get(a.label, 0.0) + a.t_end - a.t_start
    got = clf.time_per_activity()
    for label, seconds in expected.items():
        # transitions are shared out to the neighbouring activities
        assert seconds - 2.0 <= got[label] <= seconds + transitions, label
    labels = [b.label for b in clf.bouts]
    assert labels == [
        "standing", "walking", "standing", "kneeling", "standing", "sitting", "lying", "sitting", "standing",
    ]  # fmt: skip

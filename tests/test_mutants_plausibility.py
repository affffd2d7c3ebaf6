"""Plausibility guard with exact expectations: each range limit and the rate limit just inside and just
outside, the flag bits, the counts, the thigh taken along with its hip, the rate test across chunks, the
summary.

Written for the survivors of ``python bench/mutation.py --group plausibility``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing.plausibility import FLAGS, PlausibilityGuard
from hipback.processing.types import AngleSeries

D = math.pi / 180.0


def rows(**deg: list[float]) -> AngleSeries:
    n = len(next(iter(deg.values())))
    z = np.zeros(n)

    def col(name: str) -> np.ndarray:
        return np.array(deg[name]) * D if name in deg else z.copy()

    return AngleSeries(
        t=np.arange(n) / 100.0, hip_flexion_left=col("hl"), hip_flexion_right=col("hr"),
        pelvic_tilt=col("tilt"), lumbar_flexion=col("lum"), thigh_inclination_left=col("tl"),
        thigh_inclination_right=col("tr"),
        pelvis_inclination=col("pin"), pelvis_motion=z.copy(),
    )


@pytest.mark.parametrize(
    "name,key,values,bit",
    [
        ("hip_flexion_left", "hl", [-39.9, -40.1], 1),
        ("hip_flexion_left", "hl", [149.9, 150.1], 1),
        ("hip_flexion_right", "hr", [-39.9, -40.1], 4),
        ("hip_flexion_right", "hr", [149.9, 150.1], 4),
        ("lumbar_flexion", "lum", [-44.9, -45.1], 16),
        ("lumbar_flexion", "lum", [89.9, 90.1], 16),
    ],
)
def test_range_limits(name: str, key: str, values: list[float], bit: int) -> None:
    """Each value held for 3 rows (so the rate test stays quiet after the first row)."""
    guard = PlausibilityGuard(max_rate_rad_s=1e9)
    out = guard.update(rows(**{key: [values[0]] * 3 + [values[1]] * 3}))
    assert out.implausible.tolist() == [0, 0, 0, bit, bit, bit]
    got = getattr(out, name)
    np.testing.assert_array_equal(got[:3], values[0] * D)
    assert np.isnan(got[3:]).all()
    assert guard.counts_[name] == {"range": 3, "rate": 0}
    assert guard.summary()[name] == {"range": 3, "rate": 0, "share": 0.5}


@pytest.mark.parametrize("key,name,bit", [("hl", "hip_flexion_left", 2), ("hr", "hip_flexion_right", 8),
                                          ("lum", "lumbar_flexion", 32)])
def test_rate_limit_is_ten_degrees_per_row_at_100_hz(key: str, name: str, bit: int) -> None:
    guard = PlausibilityGuard()
    out = guard.update(rows(**{key: [0.0, 9.9, 19.8, 30.0, 30.0]}))  # 9.9, 9.9, 10.2, 0 deg per 10 ms
    assert out.implausible.tolist() == [0, 0, 0, bit, 0]
    assert np.isnan(getattr(out, name)[3]) and getattr(out, name)[4] == 30.0 * D
    assert guard.counts_[name] == {"range": 0, "rate": 1}


def test_a_hip_takes_its_thigh_along_but_lumbar_takes_nothing() -> None:
    guard = PlausibilityGuard()
    out = guard.update(rows(hl=[0.0, 200.0, 0.0], tl=[1.0, 2.0, 3.0], tr=[4.0, 5.0, 6.0],
                            lum=[0.0, 0.0, 100.0], tilt=[7.0, 8.0, 9.0]))
    np.testing.assert_array_equal(out.thigh_inclination_left, [1.0 * D, np.nan, np.nan])  # jump back: rate
    np.testing.assert_array_equal(out.thigh_inclination_right, np.array([4.0, 5.0, 6.0]) * D)
    np.testing.assert_array_equal(out.pelvic_tilt, np.array([7.0, 8.0, 9.0]) * D)
    assert out.implausible.tolist() == [0, 1 | 2, 2 | 16 | 32]
    # a sample out of range is counted once, as range, even when it also moved too fast
    assert guard.counts_ == {"hip_flexion_left": {"range": 1, "rate": 1},
                             "hip_flexion_right": {"range": 0, "rate": 0},
                             "lumbar_flexion": {"range": 1, "rate": 0}}
    assert guard.n_rows_ == 3
    assert guard.summary()["hip_flexion_left"] == {"range": 1, "rate": 1, "share": round(2 / 3, 4)}


def test_existing_flags_are_kept_and_the_rate_test_spans_chunks() -> None:
    guard = PlausibilityGuard()
    first = rows(hl=[0.0, 5.0])
    first.implausible = np.array([64, 0], dtype=np.uint8)
    assert guard.update(first).implausible.tolist() == [64, 0]
    second = rows(hl=[20.0, 25.0])
    second.t = second.t + 0.02
    out = guard.update(second)  # 15 deg in 10 ms across the chunk boundary
    assert out.implausible.tolist() == [2, 0] and guard.counts_["hip_flexion_left"]["rate"] == 1
    third = rows(hl=[26.0])
    third.t = third.t + 0.5  # 1 deg in 0.48 s
    assert guard.update(third).implausible.tolist() == [0]
    assert guard.update(AngleSeries.empty()) is not None and guard.n_rows_ == 5
    guard.finish()
    with pytest.raises(RuntimeError, match=r"^update\(\) after finish\(\)$"):
        guard.update(rows(hl=[0.0]))


def test_flag_bits_are_distinct_and_documented() -> None:
    assert sorted(FLAGS.values()) == [1, 2, 4, 8, 16, 32]
    assert PlausibilityGuard().summary()["lumbar_flexion"] == {"range": 0, "rate": 0, "share": 0.0}


def test_limits_themselves_are_plausible_and_counts_add_up_over_chunks() -> None:
    guard = PlausibilityGuard(max_rate_rad_s=1e9)
    lo, hi = math.radians(-40.0), math.radians(150.0)
    chunk = rows(hl=[0.0])
    chunk.hip_flexion_left = np.array([lo])
    chunk.lumbar_flexion = np.array([math.radians(90.0)])
    assert guard.update(chunk).implausible.tolist() == [0]
    chunk.t = chunk.t + 1.0
    chunk.hip_flexion_left = np.array([hi])
    chunk.lumbar_flexion = np.array([math.radians(-45.0)])
    assert guard.update(chunk).implausible.tolist() == [0]
    rate = PlausibilityGuard()
    step = rows(hl=[0.0, 0.0])
    step.hip_flexion_left = np.array([0.0, rate.max_rate_rad_s * 0.01])  # exactly the fastest plausible
    assert rate.update(step).implausible.tolist() == [0, 0]
    for i in range(2):
        bad = rows(hl=[200.0, 0.0, 0.0])
        bad.t = bad.t + i
        rate.update(bad)
    # each chunk: 200 deg is out of range (counted once, as range), the way back too fast (rate)
    assert rate.counts_["hip_flexion_left"] == {"range": 2, "rate": 2}


@pytest.mark.parametrize("key,name", [("hl", "hip_flexion_left"), ("hr", "hip_flexion_right"),
                                      ("lum", "lumbar_flexion")])
def test_rate_across_chunks_uses_the_last_row_and_its_time(key: str, name: str) -> None:
    """The previous chunk's last row (9 deg at 20 ms) is the reference: 9.5 deg on at 30 ms is plausible,
    10.5 deg is not (the row before, or the time before, would give other answers)."""
    for nxt, flagged in ((18.5, False), (19.5, True)):
        guard = PlausibilityGuard()
        assert guard.update(rows(**{key: [0.0, 4.5, 9.0]})).implausible.tolist() == [0, 0, 0]
        second = rows(**{key: [nxt]})
        second.t = second.t + 0.03
        out = guard.update(second)
        assert out.implausible.tolist() == [FLAGS[(name, "rate")] if flagged else 0]
        assert bool(np.isnan(getattr(out, name)[0])) is flagged


def test_limits_are_plausible_also_next_to_a_flagged_row() -> None:
    """A chunk with one implausible row takes the row-by-row path: the limits stay inclusive there too."""
    lo, hi = math.radians(-40.0), math.radians(150.0)
    for edge in (lo, hi):
        chunk = rows(hl=[0.0, 0.0, 0.0])
        chunk.hip_flexion_left = np.array([edge, edge, math.radians(200.0)])
        assert PlausibilityGuard(max_rate_rad_s=1e9).update(chunk).implausible.tolist() == [0, 0, 1]
    guard = PlausibilityGuard()
    chunk = rows(hl=[0.0, 0.0], lum=[0.0, 100.0])
    chunk.hip_flexion_left = np.array([0.0, guard.max_rate_rad_s * 0.01])  # exactly the fastest plausible
    assert guard.update(chunk).implausible.tolist() == [0, 16 | 32]


def test_a_fast_swing_through_zero_across_chunks_is_caught() -> None:
    guard = PlausibilityGuard()
    guard.update(rows(hl=[-4.0, -5.25]))
    second = rows(hl=[5.25])  # 10.5 deg in 10 ms, from negative to positive
    second.t = second.t + 0.02
    assert guard.update(second).implausible.tolist() == [2]

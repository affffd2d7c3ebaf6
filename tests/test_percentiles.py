"""Binned percentiles (the summary's angle ranges): within half a bin of numpy's exact percentile, the same
in any chunking, NaN ignored, and memory that does not grow with the number of values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hipback.processing.percentiles import BinnedPercentiles
from hipback.processing.summary import SessionSummary, SummaryInput
from hipback.processing.types import AngleSeries

D = math.pi / 180.0


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 3000),
    spread_deg=st.floats(0.001, 200.0),
    q=st.floats(0.0, 100.0),
)
def test_within_half_a_bin_of_numpy(seed: int, n: int, spread_deg: float, q: float) -> None:
    rng = np.random.default_rng(seed)
    v = np.clip(rng.normal(rng.uniform(-60, 60), spread_deg, n), -359.0, 359.0) * D  # within the span
    exact = math.degrees(float(np.percentile(v, q)))
    got = math.degrees(BinnedPercentiles.of(v).percentile(q))
    assert abs(got - exact) <= 0.005 + 1e-9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(0, 5000), max_size=12),
       flush=st.integers(1, 5000))
def test_chunking_never_changes_a_percentile(seed: int, cuts: list[int], flush: int) -> None:
    v = np.random.default_rng(seed).normal(10.0, 30.0, 5000) * D
    v[::97] = np.nan
    whole = BinnedPercentiles.of(v)
    parts = BinnedPercentiles(flush_rows=flush)
    for piece in np.split(v, sorted(cuts)):
        parts.update(piece)
    for q in (0.0, 2.0, 50.0, 98.0, 100.0):
        assert parts.percentile(q) == whole.percentile(q)
    assert parts.count_ == whole.count_ == int(np.isfinite(v).sum())


def test_nan_empty_out_of_span_and_bad_parameters() -> None:
    assert math.isnan(BinnedPercentiles().percentile(50))
    assert math.isnan(BinnedPercentiles.of(np.full(10, np.nan)).percentile(2))
    b = BinnedPercentiles.of(np.array([np.nan, 10.0 * D, np.nan]))
    assert b.count_ == 1 and math.degrees(b.percentile(0)) == pytest.approx(10.0)
    # beyond the span: counted in the end bin, not lost and not wrapped around
    b = BinnedPercentiles.of(np.array([-1000.0, 0.0, 1000.0]) * D)
    assert [round(math.degrees(b.percentile(q)), 6) for q in (0, 50, 100)] == [-360.0, 0.0, 360.0]
    for kw in ({"bin_deg": 0.0}, {"span_deg": -1.0}, {"flush_rows": 0}):
        with pytest.raises(ValueError):
            BinnedPercentiles(**kw)  # type: ignore[arg-type]


def test_memory_does_not_grow_with_the_values() -> None:
    b = BinnedPercentiles(flush_rows=1000)
    rng = np.random.default_rng(3)
    sizes = []
    for _ in range(200):  # 400,000 values in chunks of 2,000
        b.update(rng.normal(0.0, 0.5, 2000))
        held = sum(a.nbytes for a in b._waiting) + (b._counts.nbytes if b._counts is not None else 0)
        sizes.append(held)
    assert max(sizes) == sizes[0] and b._counts is not None and b._counts.nbytes == 8 * 72001
    assert b.count_ == 400_000


def _series(t0: float, n: int, rng: np.random.Generator) -> AngleSeries:
    def ang() -> np.ndarray:
        return rng.normal(0.2, 0.3, n)

    nan = np.full(n, np.nan)
    return AngleSeries(t=t0 + np.arange(n) * 0.01, hip_flexion_left=ang(), hip_flexion_right=ang(),
                       pelvic_tilt=ang(), lumbar_flexion=ang(), thigh_inclination_left=nan,
                       thigh_inclination_right=nan, pelvis_inclination=nan, pelvis_motion=nan)


def test_the_summary_block_holds_no_angle_rows_and_reports_the_exact_range_to_a_hundredth() -> None:
    rng = np.random.default_rng(7)
    block = SessionSummary()
    pieces = [_series(i * 2.0, 200, rng) for i in range(300)]  # 600 s at 100 Hz
    for p in pieces:
        block.update(SummaryInput(angles=p))
    assert not hasattr(block, "_angles")
    assert all(sum(a.nbytes for a in r._waiting) < 4096 * 8 + 200 * 8 for r in block._ranges.values())
    s = block.finish()
    assert s["duration_s"] == pytest.approx(599.99)
    for name in ("hip_flexion_left", "pelvic_tilt", "lumbar_flexion"):
        v = np.concatenate([getattr(p, name) for p in pieces])
        exact = [math.degrees(float(np.percentile(v, q))) for q in (2, 98)]
        assert s[f"{name}_range_deg"] == pytest.approx(exact, abs=0.0051)

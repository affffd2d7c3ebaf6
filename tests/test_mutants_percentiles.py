"""Binned percentiles with exact expectations: the bins' centres, numpy's linear rule between order
statistics, the flush threshold and the parameters' checks.

Written for ``python bench/mutation.py --group percentiles``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing.percentiles import BinnedPercentiles

D = math.pi / 180.0


def deg(b: BinnedPercentiles, q: float) -> float:
    return round(math.degrees(b.percentile(q)), 9)


def test_linear_rule_between_bin_centres() -> None:
    b = BinnedPercentiles.of(np.array([1.0, 2.0, 3.0, 4.0, 10.0]) * D)
    # numpy's linear rule: rank q/100 * (n - 1), interpolated between the two order statistics
    assert [deg(b, q) for q in (0, 25, 50, 62.5, 87.5, 100)] == [1.0, 2.0, 3.0, 3.5, 7.0, 10.0]
    # a value is counted at its bin's centre: 0.01 deg bins, 1.004 deg -> 1.00, 1.006 deg -> 1.01
    b = BinnedPercentiles.of(np.array([1.004, 1.006, -1.006]) * D)
    assert [deg(b, q) for q in (0, 50, 100)] == [-1.01, 1.0, 1.01]
    b = BinnedPercentiles.of(np.array([0.3, 0.7]) * D, bin_deg=0.5)
    assert [deg(b, q) for q in (0, 100)] == [0.5, 0.5]


def test_flush_threshold_and_state() -> None:
    b = BinnedPercentiles(flush_rows=3)
    b.update(np.array([1.0, 2.0]) * D)
    assert b._counts is None and b._n_waiting == 2 and len(b._waiting) == 1
    b.update(np.array([3.0]) * D)  # the third value reaches flush_rows: counted now
    assert b._waiting == [] and b._n_waiting == 0 and b._counts is not None and b._counted == 3
    b.update(np.zeros(0))
    assert b._waiting == []
    assert b.count_ == 3 and deg(b, 50) == 2.0
    b.update(np.array([[4.0, 5.0]]) * D)  # any shape: raveled
    assert b.count_ == 5 and deg(b, 100) == 5.0
    assert b.bin_deg == 0.01 and b.span_deg == 360.0 and b.flush_rows == 3
    assert len(b._counts) == 72001


def test_parameters_are_checked_each_alone() -> None:
    for kw in ({"bin_deg": -0.01}, {"span_deg": 0.0}, {"flush_rows": -1}):
        with pytest.raises(ValueError, match=r"^bin_deg and span_deg must be > 0 and flush_rows >= 1$"):
            BinnedPercentiles(**kw)  # type: ignore[arg-type]
    assert BinnedPercentiles(flush_rows=1, span_deg=1.0, bin_deg=0.3)._half == 4  # ceil(1 / 0.3)
    b = BinnedPercentiles()  # the defaults: the summary's resolution, any difference of inclinations, 4096
    assert (b.bin_deg, b.span_deg, b.flush_rows) == (0.01, 360.0, 4096)

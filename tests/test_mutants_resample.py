"""Grid resampling with exact expectations: grid indices by their definition, linear and nlerp values
between two samples, the quaternion sign, gaps and NaN neighbours, samples exactly on the grid, chunking,
the allocation bound.

Written for the survivors of ``python bench/mutation.py --group resample``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing.resample import (
    MAX_POINTS_PER_PUSH,
    GridResampler,
    first_grid_index,
    last_grid_index,
)

ID = np.array([1.0, 0.0, 0.0, 0.0])


def qz(angle: float) -> np.ndarray:
    return np.array([math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)])


@pytest.mark.parametrize("rate", [3.0, 10.0, 60.0, 100.0])
@pytest.mark.parametrize("t", [0.0, 0.1, 0.3, 0.7, 1 / 3, 2 / 3, 0.0166, 5.000000001, 123.456])
def test_grid_indices_follow_their_definition(t: float, rate: float) -> None:
    k = first_grid_index(t, rate)
    assert k / rate >= t and (k - 1) / rate < t
    k = last_grid_index(t, rate)
    assert k / rate <= t and (k + 1) / rate > t


def test_grid_indices_on_and_between_points() -> None:
    # 0.3 * 10 = 3.0000000000000004: the first guess is corrected
    assert (first_grid_index(0.3, 10.0), last_grid_index(0.3, 10.0)) == (3, 3)
    assert (first_grid_index(0.7, 10.0), last_grid_index(0.7, 10.0)) == (7, 7)
    assert (first_grid_index(0.25, 10.0), last_grid_index(0.25, 10.0)) == (3, 2)


def test_linear_and_nlerp_values_between_two_samples() -> None:
    r = GridResampler(100.0, gap_s=0.1)
    t = np.array([0.005, 0.025])
    q = np.array([ID, qz(0.2)])
    s = np.array([[0.0, 10.0], [4.0, -10.0]])
    k, qo, so = r.push(t, q, s)
    assert k.tolist() == [1, 2] and r.first_k == 1 and r.next_k == 3
    np.testing.assert_allclose(so, [[1.0, 5.0], [3.0, -5.0]], rtol=0, atol=1e-12)
    for frac, row in zip((0.25, 0.75), qo, strict=True):
        nl = ID + (qz(0.2) - ID) * frac
        np.testing.assert_allclose(row, nl / np.linalg.norm(nl), rtol=0, atol=1e-15)


def test_opposite_sign_quaternions_interpolate_the_short_way() -> None:
    r = GridResampler(100.0, gap_s=0.1)
    k, qo, so = r.push(np.array([0.005, 0.015]), np.array([ID, -qz(0.1)]), np.array([0.0, 2.0]))
    nl = ID + (qz(0.1) - ID) * 0.5
    np.testing.assert_allclose(qo, [nl / np.linalg.norm(nl)], rtol=0, atol=1e-15)
    assert so == pytest.approx([1.0], abs=1e-15)


def test_gaps_and_invalid_neighbours_give_nan_but_keep_exact_samples() -> None:
    r = GridResampler(100.0, gap_s=0.05)
    t = np.array([0.0, 0.06, 0.075, 0.09, 0.1])  # 0 -> 0.06 is a gap (0.06 > 0.05)
    q = np.array([qz(0.1), qz(0.2), [np.nan] * 4, qz(0.3), qz(0.4)])
    s = np.array([0.0, 6.0, 7.5, 9.0, 10.0])
    k, qo, so = r.push(t, q, s)
    assert k.tolist() == list(range(11))
    np.testing.assert_array_equal(qo[0], qz(0.1))  # on the sample before the gap
    assert so[0] == 0.0 and np.isnan(so[1:6]).all() and np.isnan(qo[1:6]).all()
    np.testing.assert_array_equal(qo[6], qz(0.2))  # on the sample after the gap
    assert so[6] == 6.0
    assert np.isnan(qo[7:9]).all() and np.isnan(so[7:9]).all()  # next to the invalid quaternion
    np.testing.assert_allclose(qo[9], qz(0.3), rtol=0, atol=1e-15)  # interpolated at frac 0 (no gap)
    assert so[9] == 9.0 and so[10] == 10.0


def test_gap_limit_is_inclusive() -> None:
    r = GridResampler(100.0, gap_s=0.04)
    _, _, so = r.push(np.array([0.0, 0.04]), np.array([ID, ID]), np.array([0.0, 4.0]))
    np.testing.assert_allclose(so, [0.0, 1.0, 2.0, 3.0, 4.0], rtol=0, atol=1e-12)


def test_chunks_continue_from_the_last_sample() -> None:
    t = np.arange(10) * 0.013 + 0.004
    q = np.array([qz(0.05 * i) for i in range(10)])
    s = np.arange(10.0) * 2
    whole = GridResampler(100.0, 0.1).push(t, q, s)
    r = GridResampler(100.0, 0.1)
    parts = [r.push(t[a:b], q[a:b], s[a:b]) for a, b in ((0, 1), (1, 2), (2, 7), (7, 10))]
    assert np.concatenate([p[0] for p in parts]).tolist() == whole[0].tolist() == list(range(1, 13))
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole[1])
    np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), whole[2])
    assert r.first_k == 1


def test_a_first_sample_on_the_grid_is_returned_alone() -> None:
    r = GridResampler(50.0, 0.1)
    k, qo, so = r.push(np.array([0.04]), np.array([qz(0.3)]), np.array([[1.0, 2.0, 3.0]]))
    assert k.tolist() == [2] and so.tolist() == [[1.0, 2.0, 3.0]]
    np.testing.assert_array_equal(qo, [qz(0.3)])
    k, qo, so = r.push(np.array([0.05]), np.array([qz(0.3)]), np.array([[1.0, 2.0, 3.0]]))
    assert k.tolist() == [] and qo.shape == (0, 4) and so.shape == (0, 3)
    k, _, _ = GridResampler(50.0, 0.1).push(np.array([0.041]), np.array([ID]), np.array([0.0]))
    assert k.tolist() == []
    assert GridResampler(50.0, 0.1).push(np.zeros(0), np.zeros((0, 4)), np.zeros(0))[0].tolist() == []


def test_corrupt_times_are_refused_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_POINTS_PER_PUSH == 48 * 3600 * 100
    monkeypatch.setattr("hipback.processing.resample.MAX_POINTS_PER_PUSH", 10)
    k, _, _ = GridResampler(100.0, 1e12).push(np.array([0.0, 0.09]), np.array([ID, ID]), np.array([0.0, 0.0]))
    assert len(k) == 10
    with pytest.raises(ValueError, match=r"^samples 0\.1 s apart would need more than 10 grid points; "
                                         r"the sample times are corrupt$"):
        GridResampler(100.0, 1e12).push(np.array([0.0, 0.1]), np.array([ID, ID]), np.array([0.0, 0.0]))


@pytest.mark.parametrize("rate", [3.0, 7.0, 10.0, 60.0, 100.0])
def test_grid_indices_where_the_first_guess_is_off_by_one(rate: float) -> None:
    """Around every grid time (and one float step either side) t * rate rounds the wrong way for some k: the
    correction loops must still give the definition."""
    for k in range(1, 400):
        for t in (k / rate, math.nextafter(k / rate, 0.0), math.nextafter(k / rate, math.inf)):
            first, last = first_grid_index(t, rate), last_grid_index(t, rate)
            assert first / rate >= t and (first - 1) / rate < t
            assert last / rate <= t and (last + 1) / rate > t


def test_empty_results_keep_their_types_and_shapes() -> None:
    r = GridResampler(100.0, 0.1)
    assert r.first_k is None and r.next_k is None
    k, q, s = r.push(np.zeros(0), np.zeros((0, 4)), np.zeros((0, 3)))
    assert k.dtype == np.int64 and q.shape == (0, 4) and s.shape == (0, 3)
    r.push(np.array([0.004]), np.array([ID]), np.array([[1.0, 2.0, 3.0]]))
    k, q, s = r.push(np.array([0.006]), np.array([ID]), np.array([[1.0, 2.0, 3.0]]))
    assert k.dtype == np.int64 and len(k) == 0 and s.shape == (0, 3)


def test_last_sample_right_after_a_gap_keeps_its_value() -> None:
    r = GridResampler(100.0, gap_s=0.05)
    k, qo, so = r.push(np.array([0.0, 0.01, 0.07]), np.array([ID, [np.nan] * 4, qz(0.3)]),
                       np.array([0.0, 1.0, 7.0]))
    assert k.tolist() == list(range(8))
    np.testing.assert_array_equal(qo[7], qz(0.3))
    assert so[7] == 7.0 and np.isnan(so[1:7]).all()


def test_allocation_bound_counts_from_the_next_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hipback.processing.resample.MAX_POINTS_PER_PUSH", 10)
    r = GridResampler(100.0, 1e12)
    r.push(np.array([1.0]), np.array([ID]), np.array([0.0]))  # row 100
    k, _, _ = r.push(np.array([1.1]), np.array([ID]), np.array([0.0]))  # rows 101..110: 10 rows
    assert k.tolist() == list(range(101, 111))
    with pytest.raises(ValueError, match=r"^samples 0\.11 s apart would need more than 10 grid points"):
        GridResampler(100.0, 1e12).push(np.array([1.0, 1.05, 1.11]), np.array([ID, ID, ID]), np.zeros(3))


def test_one_interval_flipped_next_to_one_that_is_not() -> None:
    r = GridResampler(100.0, gap_s=0.1)
    k, qo, _ = r.push(np.array([0.005, 0.015, 0.025]), np.array([ID, qz(0.1), -qz(0.2)]), np.zeros(3))
    for row, (a, b) in zip(qo, ((ID, qz(0.1)), (qz(0.1), qz(0.2))), strict=True):
        nl = a + (b - a) * 0.5
        np.testing.assert_allclose(row, nl / np.linalg.norm(nl), rtol=0, atol=1e-15)

"""Orientation wrapper and checks with exact expectations: the rate check, the reset threshold and its floor
of 2.5 sample periods, resets at a chunk start, skipped rows, segment numbers, the 6D/9D decision, the device
quaternion check's limits, and the BROAD metric on constructed errors.

Written for the survivors of ``python bench/mutation.py --group orientation``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import vqf

from hipback.processing import quaternion as qm
from hipback.processing.orientation import (
    OrientationEstimator,
    check_quaternions,
    heading_offset,
    orientation_errors,
)

G = np.array([0.0, 0.0, 9.81])


def still(n: int, t0: float = 0.0, dt: float = 0.01) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return t0 + np.arange(n) * dt, np.tile(G, (n, 1)), np.tile([0.01, -0.02, 0.03], (n, 1))


@pytest.mark.parametrize("rate", [0.0, -5.0, math.nan, math.inf])
def test_rate_must_be_positive_and_finite(rate: float) -> None:
    with pytest.raises(ValueError, match=r"^sampling rate must be positive, got "):
        OrientationEstimator(rate)


def test_plain_stream_is_vqf_itself() -> None:
    t, acc, gyr = still(50)
    out = OrientationEstimator(100.0).update(t, acc, gyr)
    ref = vqf.VQF(0.01).updateBatch(np.ascontiguousarray(gyr), np.ascontiguousarray(acc))
    np.testing.assert_array_equal(out.quat, ref["quat6D"])
    np.testing.assert_array_equal(out.rest, np.asarray(ref["restDetected"], dtype=bool))
    assert out.segment.tolist() == [0] * 50 and out.resets == [] and out.skipped == 0


@pytest.mark.parametrize("step,reset", [(0.02, False), (0.03, True)])
def test_reset_threshold_has_a_floor_of_two_and_a_half_periods(step: float, reset: bool) -> None:
    est = OrientationEstimator(100.0, reset_gap_s=0.0)  # floor: 2.5 x 10 ms = 25 ms
    t, acc, gyr = still(20)
    t[10:] += step - 0.01
    out = est.update(t, acc, gyr)
    assert (out.resets == [t[10]]) is reset and out.segment.tolist() == [0] * 10 + [int(reset)] * 10
    assert est.gap_s == 0.025


def test_a_gap_at_a_chunk_start_resets_and_numbers_the_next_segment() -> None:
    est = OrientationEstimator(100.0)
    t, acc, gyr = still(10)
    est.update(t, acc, gyr)
    t2, acc2, gyr2 = still(10, t0=t[-1] + 0.21)
    out = est.update(t2, acc2, gyr2)
    assert out.resets == [t2[0]] and out.segment.tolist() == [1] * 10
    t3, acc3, gyr3 = still(10, t0=t2[-1] + 0.19)  # below the threshold: no reset
    out = est.update(t3, acc3, gyr3)
    assert out.resets == [] and out.segment.tolist() == [1] * 10


def test_invalid_rows_are_skipped_and_numbered_minus_one() -> None:
    est = OrientationEstimator(100.0)
    t, acc, gyr = still(6)
    acc[1] = np.nan
    gyr[3, 2] = np.inf
    t[4] = np.nan
    out = est.update(t, acc, gyr)
    assert out.skipped == 3 and out.segment.tolist() == [0, -1, 0, -1, -1, 0]
    assert np.isnan(out.quat[[1, 3, 4]]).all() and np.isfinite(out.quat[[0, 2, 5]]).all()
    out = est.update(*still(3, t0=1.0)[:1], np.full((3, 3), np.nan), np.zeros((3, 3)))
    assert out.skipped == 3 and out.segment.tolist() == [-1] * 3 and out.resets == []
    empty = est.update(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)))
    assert empty.quat.shape == (0, 4) and empty.skipped == 0


def test_six_or_nine_d() -> None:
    assert OrientationEstimator(100.0).mode == "6D"
    est = OrientationEstimator(100.0)
    t, acc, gyr = still(5)
    mag = np.tile([20.0, 0.0, -40.0], (5, 1))
    mag[2] = np.nan  # passed to VQF as a zero vector, which it skips
    out = est.update(t, acc, gyr, mag)
    assert est.mode == "9D"
    m = mag.copy()
    m[2] = 0.0
    ref = vqf.VQF(0.01).updateBatch(np.ascontiguousarray(gyr), np.ascontiguousarray(acc), m)
    np.testing.assert_array_equal(out.quat, ref["quat9D"])
    assert OrientationEstimator(100.0, use_mag=False).mode == "6D"
    assert OrientationEstimator(100.0, use_mag=True).mode == "9D"
    six = OrientationEstimator(100.0, use_mag=False)
    np.testing.assert_array_equal(six.update(t, acc, gyr, mag).quat,
                                  vqf.VQF(0.01).updateBatch(np.ascontiguousarray(gyr),
                                                            np.ascontiguousarray(acc))["quat6D"])


@pytest.mark.parametrize(
    "scale,invalid,non_unit",
    [(1.04, 0, 0), (1.06, 0, 1), (0.94, 0, 1), (1.49, 0, 1), (1.51, 1, 0), (0.49, 1, 0), (1e-10, 1, 0)],
)
def test_quaternion_check_limits(scale: float, invalid: int, non_unit: int) -> None:
    q = np.array([[scale * 0.6, 0.0, scale * 0.8, 0.0]])
    chk = check_quaternions(q, tol=0.05)
    assert (chk.invalid, chk.non_unit) == (invalid, non_unit)
    if invalid:
        assert np.isnan(chk.quat).all()
    else:
        np.testing.assert_allclose(chk.quat, [[0.6, 0.0, 0.8, 0.0]], rtol=0, atol=1e-15)


def test_heading_offset_and_errors_on_constructed_rotations() -> None:
    rng = np.random.default_rng(5)
    q_ref = qm.normalize(rng.normal(size=(50, 4)))
    yaw = qm.from_axis_angle([0.0, 0.0, 1.0], 0.3)
    q_est = qm.multiply(yaw, q_ref)
    assert heading_offset(q_est, q_ref) == pytest.approx(0.3, abs=1e-12)
    mask = np.zeros(50, dtype=bool)
    mask[:10] = True
    q_est2 = q_est.copy()
    q_est2[10:] = qm.multiply(qm.from_axis_angle([0.0, 0.0, 1.0], 1.0), q_ref[10:])
    assert heading_offset(q_est2, q_ref, mask) == pytest.approx(0.3, abs=1e-12)
    tilt = qm.from_axis_angle([1.0, 0.0, 0.0], math.radians(3.0))
    q_ref_nan = q_ref.copy()
    q_ref_nan[0] = np.nan
    e = orientation_errors(qm.multiply(tilt, q_ref), q_ref_nan)
    assert e["total_rmse_deg"] == pytest.approx(3.0, abs=1e-9)
    assert e["inclination_rmse_deg"] == pytest.approx(3.0, abs=1e-9) and e["heading_rmse_deg"] < 1e-9
    e = orientation_errors(q_est2, q_ref, mask=mask, align_heading=True)
    assert e["total_rmse_deg"] < 1e-9
    e = orientation_errors(q_est2, q_ref, mask=mask)
    assert e["heading_rmse_deg"] == pytest.approx(math.degrees(0.3), abs=1e-9)


def test_nine_d_slow_path_equals_vqf_on_the_valid_rows() -> None:
    n = 8
    t, acc, gyr = still(n)
    mag = np.tile([20.0, 0.0, -40.0], (n, 1))
    gyr = gyr.copy()
    gyr[3] = np.nan  # forces the row-by-row path
    est = OrientationEstimator(100.0, use_mag=True)
    out = est.update(t, acc, gyr, mag)
    ok = np.flatnonzero(np.isfinite(gyr).all(axis=1))
    ref = vqf.VQF(0.01).updateBatch(np.ascontiguousarray(gyr[ok]), np.ascontiguousarray(acc[ok]),
                                    np.ascontiguousarray(mag[ok]))
    np.testing.assert_array_equal(out.quat[ok], ref["quat9D"])
    np.testing.assert_array_equal(out.rest[ok], np.asarray(ref["restDetected"], dtype=bool))
    assert out.rest.dtype == bool and out.t is not None and np.array_equal(out.t, t) and out.skipped == 1
    # 9D without magnetometer samples in a chunk: zero vectors, which VQF skips
    est2 = OrientationEstimator(100.0, use_mag=True)
    got = est2.update(t[:3], acc[:3], still(3)[2])
    ref2 = vqf.VQF(0.01).updateBatch(np.ascontiguousarray(still(3)[2]), np.ascontiguousarray(acc[:3]),
                                     np.zeros((3, 3)))
    np.testing.assert_array_equal(got.quat, ref2["quat9D"])


def test_outputs_keep_their_arrays_on_every_path() -> None:
    est = OrientationEstimator(100.0)
    t, acc, gyr = still(4)
    fast = est.update(t, acc, gyr)
    assert np.array_equal(fast.t, t) and fast.segment.dtype == np.int64
    assert est.mode == "6D" and est.use_mag is None
    empty = est.update(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)))
    assert empty.t.shape == (0,) and empty.segment.shape == (0,) and empty.rest.shape == (0,)
    bad = est.update(np.array([1.0, 1.01]), np.full((2, 3), np.nan), np.zeros((2, 3)))
    assert np.array_equal(bad.t, [1.0, 1.01]) and bad.quat.shape == (2, 4) and np.isnan(bad.quat).all()
    assert bad.rest.shape == (2,) and not bad.rest.any()
    assert OrientationEstimator(100.0, use_mag=False).use_mag is False
    OrientationEstimator(0.5)  # any positive rate


def test_each_reset_numbers_a_new_segment_and_ties_do_not_reset() -> None:
    est = OrientationEstimator(100.0)
    t = np.array([0.0, 0.01, 0.5, 0.51, 1.0, 1.01])
    acc = np.tile(G, (6, 1))
    gyr = np.zeros((6, 3))
    acc[1] = np.nan  # the row-by-row path
    out = est.update(t, acc, gyr)
    assert out.segment.tolist() == [0, -1, 1, 1, 2, 2] and out.resets == [0.5, 1.0]
    tie = OrientationEstimator(100.0)  # a step of exactly reset_gap_s does not reset
    t2 = np.array([0.0, 0.01, 0.2])
    acc2 = np.tile(G, (3, 1))
    acc2[1] = np.nan
    assert tie.update(t2, acc2, np.zeros((3, 3))).resets == []


def test_vqf_parameters_are_passed_on() -> None:
    t, _, _ = still(300)
    gyr = np.zeros((300, 3))
    tilt = np.linspace(0.0, 0.3, 300)  # the accelerometer tilts while the gyro says nothing: acc correction
    acc = 9.81 * np.stack([np.sin(tilt), np.zeros(300), np.cos(tilt)], axis=1)
    g, a = np.ascontiguousarray(gyr), np.ascontiguousarray(acc)
    got = OrientationEstimator(100.0, params={"tauAcc": 0.5}).update(t, acc, gyr).quat
    np.testing.assert_array_equal(got, vqf.VQF(0.01, tauAcc=0.5).updateBatch(g, a)["quat6D"])
    assert not np.array_equal(got, vqf.VQF(0.01).updateBatch(g, a)["quat6D"])


def test_error_mask_never_counts_missing_reference_rows() -> None:
    rng = np.random.default_rng(9)
    q_ref = qm.normalize(rng.normal(size=(20, 4)))
    q_ref[0] = np.nan
    tilt = qm.from_axis_angle([1.0, 0.0, 0.0], math.radians(2.0))
    e = orientation_errors(qm.multiply(tilt, q_ref), q_ref, mask=np.ones(20, dtype=bool))
    assert e["total_rmse_deg"] == pytest.approx(2.0, abs=1e-9)


def test_a_first_chunk_with_one_valid_row() -> None:
    t = np.array([0.0, 0.01])
    acc = np.array([[np.nan] * 3, list(G)])
    out = OrientationEstimator(100.0).update(t, acc, np.zeros((2, 3)))
    assert out.skipped == 1 and out.segment.tolist() == [-1, 0] and np.isfinite(out.quat[1]).all()


def test_rest_flags_per_sample_on_both_paths() -> None:
    t, acc, gyr = still(400)
    gyr = np.zeros((400, 3))
    fast = OrientationEstimator(100.0).update(t, acc, gyr)
    r = vqf.VQF(0.01).updateBatch(np.ascontiguousarray(gyr), np.ascontiguousarray(acc))
    ref = np.asarray(r["restDetected"], dtype=bool)
    assert fast.rest.shape == (400,) and ref[-1] and np.array_equal(fast.rest, ref)
    acc2 = acc.copy()
    acc2[0] = np.nan  # the row-by-row path
    slow = OrientationEstimator(100.0).update(t, acc2, gyr)
    assert slow.rest[-1] and slow.rest.shape == (400,) and not slow.rest[0]

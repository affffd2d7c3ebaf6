"""The accelerometer offset estimator's rules one by one (hipback.processing.acc_bias), on hand-built blocks.

Each test states a documented rule of :class:`AccBiasEstimator`: which blocks are still (gyroscope range and
mean rate, accelerometer spread, magnitude, gaps and invalid samples), when a fit is made and trusted (the
limits are inclusive: "at most", "within", "at least"), what its uncertainty is, and what is applied when.
The blocks are built sample by sample (constant or exactly alternating values), so the limits can be met
exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing.acc_bias import AccBiasEstimator
from hipback.processing.angles import GRAVITY
from hipback.processing.types import SensorStream
from tests.test_acc_bias import BIAS, poses_stream, spread_poses

RATE = 10.0  # Hz: a block of the default 1 s is 10 samples
N = 10


def stream(acc, gyr, t=None, rate_hz: float = RATE) -> SensorStream:
    acc = np.asarray(acc, dtype=np.float64)
    gyr = np.asarray(gyr, dtype=np.float64)
    if t is None:
        t = np.arange(len(acc)) / rate_hz
    return SensorStream("thigh_left", "raw", np.asarray(t, dtype=np.float64), rate_hz, acc=acc, gyr=gyr)


def still_block(m, gyr=(0.0, 0.0, 0.0), n: int = N) -> tuple[np.ndarray, np.ndarray]:
    m, gyr = np.asarray(m, dtype=np.float64), np.asarray(gyr, dtype=np.float64)
    return np.tile(m, (n, 1)), np.tile(gyr, (n, 1))


def moving_block(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    acc = np.tile([0.0, 0.0, GRAVITY], (n, 1))
    gyr = np.zeros((n, 3))
    gyr[:, 0] = np.linspace(0.0, 2.0, n)  # turning: a range of 2 rad/s
    return acc, gyr


def blocks(*parts) -> SensorStream:
    return stream(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def is_still(acc, gyr, t=None, **params) -> bool:
    """Whether one block (followed by a moving block) is still: a still period then ended with it, which
    sets ``reference_acc_``."""
    est = AccBiasEstimator(params.pop("rate_hz", RATE), **params)
    acc, gyr = np.asarray(acc, dtype=np.float64), np.asarray(gyr, dtype=np.float64)
    n = len(acc)
    mv_a, mv_g = moving_block(n)
    if t is None:
        t = np.arange(2 * n) / est.rate_hz
    else:
        t = np.concatenate([t, t[-1] + (1 + np.arange(n)) / est.rate_hz])
    est.update(SensorStream("thigh_left", "raw", t, est.rate_hz, acc=np.concatenate([acc, mv_a]),
                            gyr=np.concatenate([gyr, mv_g])))
    return est.reference_acc_ is not None


UP = [0.0, 0.0, GRAVITY]


# -- the still test ------------------------------------------------------------------------------------------
def test_a_constant_block_is_still_and_its_mean_is_the_reference():
    acc, gyr = still_block(UP)
    assert is_still(acc, gyr)
    est = AccBiasEstimator(RATE)
    est.update(blocks(still_block([0.0, 1.0, 9.75]), moving_block()))
    np.testing.assert_allclose(est.reference_acc_, [0.0, 1.0, 9.75], rtol=0, atol=1e-12)


def test_the_gyroscope_range_is_independent_of_its_bias():
    """A constant rate (a gyroscope offset) below max_gyr_rad_s has range 0: still; a range above
    still_gyr_rad_s is not, exactly at it is (at most)."""
    acc, _ = still_block(UP)
    assert is_still(acc, np.tile([0.1, -0.1, 0.1], (N, 1)))
    gyr = np.zeros((N, 3))
    gyr[::2, 1] = 0.05  # range exactly 0.05 = still_gyr_rad_s
    assert is_still(acc, gyr)
    gyr[::2, 1] = 0.0625
    assert not is_still(acc, gyr)
    assert is_still(acc, gyr, still_gyr_rad_s=0.0625)


def test_the_mean_rate_is_the_norm_of_the_mean_vector():
    """max_gyr_rad_s bounds the norm of the block's mean rate vector (at most)."""
    acc, _ = still_block(UP)
    assert is_still(acc, np.tile([0.2, 0.0, 0.0], (N, 1)))  # 0.2 rad/s: a plausible gyroscope offset
    assert not is_still(acc, np.tile([0.3, 0.3, 0.0], (N, 1)))  # 0.42 rad/s: slow turning
    assert not is_still(acc, np.tile([0.0, 0.0, -0.45], (N, 1)))
    assert is_still(acc, np.tile([0.5, 0.0, 0.0], (N, 1)), max_gyr_rad_s=0.5)  # exactly at the limit
    assert not is_still(acc, np.tile([0.5, 0.0, 0.0], (N, 1)), max_gyr_rad_s=0.4375)
    # 100 samples at 0.2 rad/s: the norm of the mean vector, not of the samples' means
    acc100, _ = still_block(UP, n=100)
    assert is_still(acc100, np.tile([0.2, 0.0, 0.0], (100, 1)), rate_hz=100.0)


def test_the_accelerometer_spread_limit():
    acc, gyr = still_block([0.0, 0.0, 9.75])
    acc[::2, 0] += 0.125
    acc[1::2, 0] -= 0.125  # standard deviation exactly 0.125 on x
    assert is_still(acc, gyr, still_acc_m_s2=0.125)
    assert not is_still(acc, gyr, still_acc_m_s2=0.0625)
    acc[::2, 0] += 0.075
    acc[1::2, 0] -= 0.075  # 0.2 m/s^2: vibration
    assert not is_still(acc, gyr)


def test_the_magnitude_must_be_within_the_largest_offset_of_gravity():
    """|mean| within max_bias_m_s2 * sqrt(3) of gravity (the largest offset on all three axes), inclusive."""
    gyr = np.zeros((N, 3))
    lim = 0.1 * GRAVITY * math.sqrt(3.0)  # 1.70 m/s^2
    assert is_still(np.tile([0.0, 0.0, GRAVITY + 1.0], (N, 1)), gyr)
    assert is_still(np.tile([0.0, GRAVITY - 1.6, 0.0], (N, 1)), gyr)
    assert not is_still(np.tile([0.0, 0.0, GRAVITY + 1.8], (N, 1)), gyr)
    assert not is_still(np.tile([GRAVITY - lim - 0.05, 0.0, 0.0], (N, 1)), gyr)
    # exactly at the limit: 0.046875 * sqrt(3) added to gravity is exact in binary floating point
    mb = 0.046875
    top = GRAVITY + mb * math.sqrt(3.0)
    edge = np.tile([top, 0.0, 0.0], (2, 1))  # blocks of 2 samples (2 Hz): their mean is exact
    assert float(np.linalg.norm(edge.mean(axis=0))) - GRAVITY == mb * math.sqrt(3.0)
    assert is_still(edge, np.zeros((2, 3)), rate_hz=2.0, max_bias_m_s2=mb)
    assert not is_still(edge, np.zeros((2, 3)), rate_hz=2.0, max_bias_m_s2=0.04)


def test_invalid_samples_in_either_sensor_are_left_out():
    acc, gyr = still_block(UP)
    gyr[3, 2] = np.nan
    assert not is_still(acc, gyr)
    acc, gyr = still_block(UP)
    acc[7, 0] = np.inf
    assert not is_still(acc, gyr)


def test_a_gap_inside_a_block_or_before_it_leaves_it_out():
    """A step of up to 2.5 nominal periods (one missing sample) is no gap; a longer one is, inside the block
    or between it and the block before. At 4 Hz the times are exact binary fractions."""
    rate = 4.0
    acc, gyr = still_block(UP, n=4)
    t = np.arange(4) / rate
    assert is_still(acc, gyr, t, rate_hz=rate)
    t2 = t.copy()
    t2[2:] += 0.25  # one missing sample: a step of 2 periods
    assert is_still(acc, gyr, t2, rate_hz=rate)
    t2 = t.copy()
    t2[2:] += 0.375  # exactly 2.5 periods
    assert is_still(acc, gyr, t2, rate_hz=rate)
    t2 = t.copy()
    t2[3:] += 0.5  # 3 periods, at the last step
    assert not is_still(acc, gyr, t2, rate_hz=rate)

    def second_still(t_second: np.ndarray) -> bool:
        est = AccBiasEstimator(rate)
        mv_a, mv_g = moving_block(4)
        t_all = np.concatenate([np.arange(4) / rate, t_second, t_second[-1] + (1 + np.arange(4)) / rate])
        est.update(SensorStream("thigh_left", "raw", t_all, rate, acc=np.concatenate([mv_a, acc, mv_a]),
                                gyr=np.concatenate([mv_g, gyr, mv_g])))
        return est.reference_acc_ is not None

    assert second_still(1.0 + np.arange(4) / rate)  # right after the block before
    assert second_still(1.25 + np.arange(4) / rate)  # one sample missing between the blocks
    assert second_still(1.375 + np.arange(4) / rate)  # exactly 2.5 periods after the block before
    assert not second_still(1.5 + np.arange(4) / rate)  # 3 periods: a gap before the block


# -- blocks and chunks ---------------------------------------------------------------------------------------
def test_the_chunking_never_moves_a_block_one_sample_at_a_time():
    s, _ = poses_stream(spread_poses(8), rate_hz=20.0, still_s=2.0, move_s=1.0)
    whole = AccBiasEstimator(s.rate_hz)
    ref = whole.update(s)
    whole.finish()
    one = AccBiasEstimator(s.rate_hz)
    out = [one.update(s.slice(i, i + 1)) for i in range(len(s))]
    one.update(s.slice(0, 0))
    one.finish()
    np.testing.assert_array_equal(np.concatenate(out), ref)
    assert one.updates_ == whole.updates_ and one.updates_
    np.testing.assert_array_equal(one.estimate_, whole.estimate_)


def test_update_after_finish_is_refused():
    est = AccBiasEstimator(RATE)
    assert est.finish().shape == (0, 3)
    with pytest.raises(RuntimeError, match=r"^update\(\) after finish\(\)$"):
        est.update(blocks(still_block(UP)))


def test_a_rate_that_is_not_positive_is_refused():
    for rate in (0.0, -10.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"^sampling rate must be positive, got "):
            AccBiasEstimator(rate)


# -- the fit -------------------------------------------------------------------------------------------------
def directions(k: int) -> np.ndarray:
    """``k`` unit vectors spread over the sphere (a Fibonacci lattice), more than 30 deg apart for k <= 12."""
    i = np.arange(k) + 0.5
    z = 1.0 - 2.0 * i / k
    phi = math.pi * (1.0 + math.sqrt(5.0)) * i
    r = np.sqrt(1.0 - z * z)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def means(k: int, bias=BIAS, radial=None) -> np.ndarray:
    u = directions(k)
    g = GRAVITY + (np.zeros(k) if radial is None else np.asarray(radial))
    return g[:, None] * u + np.asarray(bias)


def one_period(ms: np.ndarray, **params) -> tuple[AccBiasEstimator, np.ndarray]:
    """All still blocks (one per mean) in one still period, then a moving block and a still one: one fit,
    applied from the first sample after the moving block."""
    est = AccBiasEstimator(RATE, **params)
    out = est.update(blocks(*[still_block(m) for m in ms], moving_block(), still_block(UP)))
    return est, out


def separate_periods(ms: np.ndarray, **params) -> AccBiasEstimator:
    """Each still block its own still period (a moving block after each): a fit after each."""
    est = AccBiasEstimator(RATE, **params)
    parts = []
    for m in ms:
        parts += [still_block(m), moving_block()]
    est.update(blocks(*parts))
    return est


def test_a_fit_needs_four_directions():
    est = separate_periods(means(3))
    assert est.n_directions_ == 3 and est.estimate_ is None
    est = separate_periods(means(4))
    assert est.n_directions_ == 4 and est.estimate_ is not None and not est.trusted_  # fewer than 6
    np.testing.assert_allclose(est.estimate_, BIAS, atol=1e-9)
    est = separate_periods(means(4), min_directions=4)
    assert est.trusted_ and est.updates_


def test_directions_closer_than_a_bin_count_once_and_far_ones_apart():
    u = directions(8)
    near = u + 0.002 * np.roll(u, 1, axis=1)  # about 0.1 deg off each of the eight
    near /= np.linalg.norm(near, axis=1)[:, None]
    ms = GRAVITY * np.concatenate([u, near])
    est = separate_periods(ms)
    assert 8 <= est.n_directions_ <= 9  # a pair may straddle a cell border
    # directions 30 deg apart (more than the cell's diagonal of 26 deg) never share a bin
    a = np.array([math.sin(math.radians(40)), 0.0, math.cos(math.radians(40))])
    b = np.array([math.sin(math.radians(70)), 0.0, math.cos(math.radians(70))])
    est = separate_periods(GRAVITY * np.array([a, b]))
    assert est.n_directions_ == 2
    # and with 20-deg bins, 10-deg neighbours fall into fewer bins than with 5-deg ones
    ring = np.array([[math.sin(math.radians(d)), 0.0, math.cos(math.radians(d))] for d in range(0, 91, 10)])
    coarse = separate_periods(GRAVITY * ring, bin_deg=20.0).n_directions_
    fine = separate_periods(GRAVITY * ring, bin_deg=5.0).n_directions_
    assert fine == 10 and coarse < fine


def test_the_uncertainty_is_the_residual_scaled_covariance():
    """sigma_fit_ = sqrt(diag(s^2 (J^T J)^-1)), s^2 the residuals' sum of squares over the fit's N - 4
    degrees of freedom (at least noise_floor_m_s2 squared); the fit is the least-squares one (J^T r = 0).
    Without the datasheet terms (scale_error = cross_axis = 0) the stated sigma_ is that; with them it is
    at least sigma_systematic_ and at most the two in quadrature."""
    for k in (5, 6, 12):
        radial = 0.03 * np.cos(np.arange(k) * 2.1)  # a misfit per direction
        ms = means(k, radial=radial)
        est, _ = one_period(ms)
        assert est.n_directions_ == k
        d = ms - est.estimate_
        nd = np.linalg.norm(d, axis=1)
        r = nd - est.gravity_
        jac = np.column_stack([-d / nd[:, None], -np.ones(k)])
        np.testing.assert_allclose(jac.T @ r, 0.0, atol=1e-9)
        s2 = max(float(r @ r) / (k - 4), est.noise_floor_m_s2**2)
        assert float(r @ r) / (k - 4) > est.noise_floor_m_s2**2
        expect = np.sqrt(np.diag(s2 * np.linalg.inv(jac.T @ jac))[:3])
        np.testing.assert_allclose(est.sigma_fit_, expect, rtol=1e-6)
        assert np.all(est.sigma_ <= np.hypot(expect, est.sigma_systematic_) * (1 + 1e-9))
        assert np.all(est.sigma_ >= est.sigma_systematic_) and np.all(est.sigma_systematic_ > 0)
        bare, _ = one_period(ms, scale_error=0.0, cross_axis=0.0)
        np.testing.assert_allclose(bare.sigma_, expect, rtol=1e-6)
        np.testing.assert_array_equal(bare.sigma_systematic_, 0.0)
        sv = np.linalg.svd(jac, compute_uv=False)
        assert est.condition_ == pytest.approx(sv[0] / sv[-1], rel=1e-9)
    # an exact fit: the noise floor sets the uncertainty
    est, _ = one_period(means(8))
    np.testing.assert_allclose(est.estimate_, BIAS, atol=1e-9)
    assert est.gravity_ == pytest.approx(GRAVITY, abs=1e-9)
    assert np.all(est.sigma_fit_ > 0.5 * est.noise_floor_m_s2)
    assert np.all(est.sigma_fit_ < 2 * est.noise_floor_m_s2)


def test_directions_in_one_plane_leave_the_offset_across_it_unknown():
    """Postures whose gravity directions lie in one plane say nothing about the offset across it: infinite
    uncertainty, never trusted."""
    ms = GRAVITY * np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0],
                             [0.7071067811865476, 0.7071067811865476, 0.0]])
    est, out = one_period(ms, min_directions=4, max_condition=math.inf)
    assert est.estimate_ is not None and est.estimate_[2] == 0.0
    assert isinstance(est.sigma_, np.ndarray) and est.sigma_.shape == (3,)
    assert np.all(np.isinf(est.sigma_))
    assert not est.trusted_ and est.updates_ == []
    np.testing.assert_array_equal(out, 0.0)


def test_the_trust_limits_are_inclusive():
    """condition "at most max_condition", each axis "within max_bias_m_s2", sigma "at most max_sigma_m_s2",
    applied when it differs "by at least min_change_m_s2": a fit exactly at each limit passes."""
    ms = means(10, radial=0.02 * np.sin(np.arange(10) * 1.3))
    ref, _ = one_period(ms)
    assert ref.trusted_
    for params in ({"max_condition": ref.condition_}, {"max_bias_m_s2": float(np.abs(ref.estimate_).max())},
                   {"max_sigma_m_s2": float(ref.sigma_fit_.max())},
                   {"min_change_m_s2": float(np.abs(ref.estimate_).max())}):
        est, out = one_period(ms, **params)
        assert est.trusted_ and len(est.updates_) == 1, params
        np.testing.assert_array_equal(out[-1], ref.estimate_)
    for params in ({"max_condition": ref.condition_ * (1 - 1e-9)},
                   {"max_bias_m_s2": float(np.abs(ref.estimate_).max()) * (1 - 1e-9)},
                   {"max_sigma_m_s2": float(ref.sigma_fit_.max()) * (1 - 1e-9)}):
        est, out = one_period(ms, **params)
        assert not est.trusted_ and est.updates_ == [], params
    est, out = one_period(ms, min_change_m_s2=float(np.abs(ref.estimate_).max()) * (1 + 1e-9))
    assert est.trusted_ and est.updates_ == []
    np.testing.assert_array_equal(out, 0.0)


def test_a_fit_at_the_end_is_for_the_results_only():
    """finish() fits a still period running to the end but applies nothing: no update, applied_ kept."""
    est = AccBiasEstimator(RATE)
    ms = means(10)
    est.update(blocks(*[still_block(m) for m in ms]))
    assert est.estimate_ is None
    est.finish()
    assert est.trusted_ and np.abs(est.estimate_ - BIAS).max() < 1e-9
    assert est.updates_ == [] and np.all(est.applied_ == 0.0)


def test_the_update_is_applied_after_the_block_that_ended_the_still_period():
    ms = means(8)
    est, out = one_period(ms)
    n_still = 8 * N
    assert len(est.updates_) == 1
    t_end = est.updates_[0][0]
    assert t_end == (n_still + N - 1) / RATE  # the moving block's last sample
    np.testing.assert_array_equal(out[: n_still + N], 0.0)
    np.testing.assert_array_equal(out[n_still + N :], np.tile(est.estimate_, (N, 1)))
    assert est.updates_[0][1] == tuple(est.estimate_.tolist())
    assert est.updates_[0][2] == tuple(est.sigma_.tolist())


def ring(theta: float, k: int = 8) -> np.ndarray:
    """Straight up and ``k`` directions at ``theta`` (rad) from it: a cone of postures."""
    a = np.arange(k) * 2.0 * math.pi / k
    s, c = math.sin(theta), math.cos(theta)
    return np.vstack([[0.0, 0.0, 1.0], np.column_stack([s * np.cos(a), s * np.sin(a), np.full(k, c)])])


def ring_condition(theta: float) -> float:
    u = ring(theta)
    sv = np.linalg.svd(np.column_stack([-u, -np.ones(len(u))]), compute_uv=False)
    return float(sv[0] / sv[-1])


def test_the_default_condition_limit_is_15():
    """The default max_condition (15) lets a cone of postures 47 deg wide through and not one of 45 deg: the
    ring's angle is found where the exact fit's condition number is 14.5 and 15.5."""

    def theta_for(cond: float) -> float:
        lo, hi = math.radians(35.0), math.radians(60.0)  # condition 30 .. 8, decreasing
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if ring_condition(mid) > cond else (lo, mid)
        return 0.5 * (lo + hi)

    for cond, trusted in ((14.5, True), (15.5, False)):
        est, _ = one_period(GRAVITY * ring(theta_for(cond)) + BIAS)
        assert est.condition_ == pytest.approx(cond, rel=1e-6)
        assert est.trusted_ is trusted


def test_the_default_uncertainty_limit():
    """Misfits of 0.3 m/s^2 (large scale or cross-axis errors) give a sigma of about 0.14 m/s^2 per axis:
    above the default max_sigma_m_s2 of 0.05, so not trusted; trusted when the limit allows it."""
    ms = means(10, radial=0.3 * np.sin(np.arange(10) * 1.3))
    est, out = one_period(ms)
    assert np.all(est.sigma_fit_ > 0.1) and np.all(est.sigma_fit_ < 0.2) and est.condition_ < 3
    assert not est.trusted_ and est.updates_ == []
    est, _ = one_period(ms, max_sigma_m_s2=0.2)
    assert est.trusted_


def test_the_results_before_the_first_fit():
    est = AccBiasEstimator(RATE)
    assert est.estimate_ is None and est.sigma_ is None and est.gravity_ is None and est.condition_ is None
    assert est.trusted_ is False and est.n_directions_ == 0 and est.updates_ == []
    assert est.reference_acc_ is None
    np.testing.assert_array_equal(est.applied_, 0.0)
    est = separate_periods(means(3))  # three directions: no fit yet
    assert est.estimate_ is None and est.sigma_ is None and est.gravity_ is None and est.condition_ is None
    assert est.trusted_ is False and est.n_directions_ == 3


def test_the_parameters_are_kept():
    """SensorChannel reads ``initial`` back from its estimator (the frame before the first estimate)."""
    est = AccBiasEstimator(0.5, initial=(0.1, -0.2, 0.3), block_s=4.0)
    assert est.initial == (0.1, -0.2, 0.3) and est.rate_hz == 0.5 and est.block_s == 4.0
    np.testing.assert_array_equal(est.applied_, [0.1, -0.2, 0.3])


def test_a_block_is_round_block_s_times_rate_samples_and_at_least_two():
    for rate, block_s, n in ((2.0, 1.0, 2), (1.0, 1.0, 2), (3.0, 1.0, 3), (10.0, 0.26, 3)):
        est = AccBiasEstimator(rate, block_s=block_s)
        parts = [still_block(m, n=n) for m in means(7)] + [moving_block(n), still_block(UP, n=n)]
        out = est.update(stream(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                                rate_hz=rate))
        assert len(est.updates_) == 1 and est.n_directions_ == 7, (rate, block_s)
        change = np.flatnonzero(np.any(np.diff(out, axis=0) != 0, axis=1)) + 1
        assert change.tolist() == [8 * n], (rate, block_s)


def test_applied_at_gives_the_initial_offset_before_any_update():
    est = AccBiasEstimator(RATE, initial=(0.1, -0.2, 0.3))
    got = est.applied_at(np.array([0.0, 5.0, np.nan]))
    np.testing.assert_array_equal(got, np.tile([0.1, -0.2, 0.3], (3, 1)))
    got[0, 0] = 9.0  # a copy, not a view of the estimator's state
    np.testing.assert_array_equal(est.applied_at(np.array([0.0])), [[0.1, -0.2, 0.3]])
    assert est.applied_at(2.0).shape == (1, 3)
    np.testing.assert_array_equal(AccBiasEstimator(RATE).applied_at(np.array([1.0, 2.0])), np.zeros((2, 3)))


def test_applied_at_follows_the_updates_after_their_times():
    est, out = one_period(means(8), initial=(0.01, 0.02, 0.03))
    (t_u, bias, _), = est.updates_
    got = est.applied_at(np.array([0.0, t_u, np.nextafter(t_u, np.inf), 1e6, np.nan]))
    first = [0.01, 0.02, 0.03]
    np.testing.assert_array_equal(got, [first, first, bias, bias, first])

"""Orientation: the VQF wrapper adds nothing of its own, handles gaps/NaN; quaternion checks; BROAD metric."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import vqf

from hipback.processing import quaternion as qm
from hipback.processing.orientation import (
    LaggedOrientationEstimator,
    OrientationEstimator,
    check_quaternions,
    orientation_errors,
)

BROAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "broad"


def raw_motion(n: int = 3000, fs: float = 100.0, seed: int = 0):
    """Gyro/acc of a sensor rotating smoothly (no linear acceleration) and its true orientation."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    w = np.column_stack([np.sin(0.7 * t), 0.5 * np.cos(1.3 * t), 0.3 * np.sin(0.2 * t + 1)])
    q = np.zeros((n, 4))
    q[0] = qm.from_axis_angle([1.0, 0.0, 0.0], 0.3)
    for i in range(1, n):
        q[i] = qm.multiply(q[i - 1], qm.from_rotvec(w[i] / fs))
    acc = qm.rotate(qm.conjugate(q), np.array([0.0, 0.0, 9.81])) + rng.normal(0, 0.05, (n, 3))
    gyr = w + rng.normal(0, 0.005, (n, 3))
    return t, acc, gyr, q


def test_chunked_equals_whole_and_equals_vqf_standalone():
    t, acc, gyr, _ = raw_motion()
    whole = OrientationEstimator(100.0).update(t, acc, gyr).quat
    ref = vqf.VQF(0.01).updateBatch(np.ascontiguousarray(gyr), np.ascontiguousarray(acc))["quat6D"]
    np.testing.assert_array_equal(whole, ref)
    est = OrientationEstimator(100.0)
    parts, i = [], 0
    for n in [1, 7, 250, 3, 999, 1740]:
        parts.append(est.update(t[i : i + n], acc[i : i + n], gyr[i : i + n]).quat)
        i += n
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_vqf_tracks_inclination_of_known_motion():
    t, acc, gyr, q_true = raw_motion()
    q = OrientationEstimator(100.0).update(t, acc, gyr).quat
    err = orientation_errors(q, q_true, align_heading=True)
    assert err["inclination_rmse_deg"] < 1.0
    assert err["total_rmse_deg"] < 3.0


def test_nine_d_when_magnetometer_given():
    t, acc, gyr, q_true = raw_motion()
    mag = qm.rotate(qm.conjugate(q_true), np.array([0.0, 20.0, -40.0]))
    est = OrientationEstimator(100.0)
    q = est.update(t, acc, gyr, mag).quat
    assert est.mode == "9D"
    # 9D heading is tied to magnetic north: no heading alignment needed
    assert orientation_errors(q[500:], q_true[500:])["heading_rmse_deg"] < 5.0
    assert OrientationEstimator(100.0, use_mag=False).update(t, acc, gyr, mag) is not None


def test_gap_resets_and_nan_rows_are_skipped():
    t, acc, gyr, _ = raw_motion(1000)
    t = t.copy()
    t[600:] += 2.0  # 2 s gap
    gyr = gyr.copy()
    gyr[100:103] = np.nan
    est = OrientationEstimator(100.0)
    out = est.update(t, acc, gyr)
    assert out.skipped == 3
    assert np.isnan(out.quat[100:103]).all()
    assert np.isfinite(out.quat[103:]).all()
    assert out.resets == [pytest.approx(t[600])]
    assert set(out.segment[:600][np.isfinite(out.quat[:600, 0])]) == {0}
    assert set(out.segment[600:]) == {1}
    # the same gap across a chunk boundary gives the same result
    est2 = OrientationEstimator(100.0)
    a = est2.update(t[:600], acc[:600], gyr[:600])
    b = est2.update(t[600:], acc[600:], gyr[600:])
    np.testing.assert_array_equal(np.concatenate([a.quat, b.quat]), out.quat)


def test_check_quaternions_flags_bad_rows():
    q = np.tile(qm.from_axis_angle([0.0, 1.0, 0.0], 0.4), (6, 1))
    q[1] *= 1.2  # non-unit but plausible: renormalised and counted
    q[2] = np.nan
    q[3] = 0.0
    q[4] *= 3.0  # far from unit: corrupt
    chk = check_quaternions(q)
    assert chk.invalid == 3 and chk.non_unit == 1
    assert np.allclose(np.linalg.norm(chk.quat[[0, 1, 5]], axis=1), 1.0)
    assert np.isnan(chk.quat[[2, 3, 4]]).all()


def test_orientation_errors_split_heading_and_inclination():
    rng = np.random.default_rng(1)
    q_ref = qm.normalize(rng.normal(size=(200, 4)))
    yaw = qm.from_axis_angle([0.0, 0.0, 1.0], math.radians(30.0))
    tilt = qm.from_axis_angle([1.0, 0.0, 0.0], math.radians(2.0))
    e = orientation_errors(qm.multiply(yaw, q_ref), q_ref)
    assert e["heading_rmse_deg"] == pytest.approx(30.0, abs=1e-6) and e["inclination_rmse_deg"] < 1e-6
    e = orientation_errors(qm.multiply(tilt, qm.multiply(yaw, q_ref)), q_ref, align_heading=True)
    assert e["inclination_rmse_deg"] == pytest.approx(2.0, abs=0.05)
    assert e["heading_rmse_deg"] < 0.1


@pytest.mark.realdata
@pytest.mark.skipif(not BROAD.is_dir(), reason="BROAD data not present")
def test_broad_raw_path_matches_vqf_standalone():
    import scipy.io

    path = sorted(BROAD.glob("*.mat"))[0]
    d = scipy.io.loadmat(path, squeeze_me=True)
    fs = float(d["sampling_rate"])
    gyr, acc, mag = (np.ascontiguousarray(d[k], dtype=float) for k in ("imu_gyr", "imu_acc", "imu_mag"))
    t = np.arange(len(gyr)) / fs
    movement = d["movement"].astype(bool)
    for use_mag, key in ((False, "quat6D"), (True, "quat9D")):
        est = OrientationEstimator(fs, use_mag=use_mag)
        parts = [
            est.update(
                t[i : i + 997], acc[i : i + 997], gyr[i : i + 997], mag[i : i + 997] if use_mag else None
            ).quat
            for i in range(0, len(t), 997)
        ]
        q = np.concatenate(parts)
        ref = vqf.VQF(1.0 / fs).updateBatch(gyr, acc, mag)[key]
        np.testing.assert_array_equal(q, ref)
        e = orientation_errors(q, d["opt_quat"], movement, align_heading=not use_mag)
        assert e["inclination_rmse_deg"] < 3.0


# -- fixed-lag smoothed orientation ------------------------------------------------------------------------
def _lagged_run(est, t, acc, gyr, sizes):
    parts, i = [], 0
    for n in sizes:
        parts.append(est.update(t[i : i + n], acc[i : i + n], gyr[i : i + n]))
        i += n
    parts.append(est.update(t[i:], acc[i:], gyr[i:]))
    parts.append(est.finish())
    return parts


def _cat(parts, name):
    return np.concatenate([getattr(p, name) for p in parts])


def test_lagged_chunked_equals_whole_with_gap_and_nan_rows():
    t, acc, gyr, _ = raw_motion(4000)
    t = t.copy()
    t[2500:] += 1.0  # 1 s gap: a new piece
    gyr = gyr.copy()
    gyr[700:704] = np.nan
    whole = _lagged_run(LaggedOrientationEstimator(100.0), t, acc, gyr, [])
    chunked = _lagged_run(LaggedOrientationEstimator(100.0), t, acc, gyr, [1, 7, 250, 3, 999, 1240, 17])
    for name in ("t", "quat", "segment", "rest"):
        np.testing.assert_array_equal(_cat(chunked, name), _cat(whole, name))
    np.testing.assert_array_equal(_cat(whole, "t"), t)
    q = _cat(whole, "quat")
    assert np.isnan(q[700:704]).all() and np.isfinite(q[704:]).all() and np.isfinite(q[:700]).all()
    assert sum(p.skipped for p in whole) == 4 == sum(p.skipped for p in chunked)
    assert [r for p in whole for r in p.resets] == [pytest.approx(t[2500])]
    seg = _cat(whole, "segment")
    assert set(seg[:2500]) == {0} and set(seg[2500:]) == {1}


def test_lagged_output_delay_and_finish():
    t, acc, gyr, _ = raw_motion(3000)
    est = LaggedOrientationEstimator(100.0, lag_s=4.0, block_s=2.0)
    first = est.update(t[:1000], acc[:1000], gyr[:1000])
    assert len(first.t) == 600  # blocks of 200 samples, final once 400 samples follow them
    second = est.update(t[1000:], acc[1000:], gyr[1000:])
    assert len(second.t) == 2600 - 600
    rest = est.finish()
    assert len(rest.t) == 400 and rest.t[0] == t[2600]
    assert len(est.finish().t) == 0
    # a gap flushes the piece before it at once
    est = LaggedOrientationEstimator(100.0)
    out = est.update(np.concatenate([t[:300], t[300:600] + 5.0]), acc[:600], gyr[:600])
    assert len(out.t) == 300 and out.resets == [pytest.approx(t[300] + 5.0)]


def test_lagged_short_piece_is_offline_vqf():
    """A piece shorter than a block is one offline VQF run over the gyroscope less the causal filter's bias
    estimate at its last sample, the run's own bias estimation off."""
    t, acc, gyr, _ = raw_motion(150)
    est = LaggedOrientationEstimator(100.0)
    assert len(est.update(t, acc, gyr).t) == 0
    q = est.finish().quat
    bias = vqf.VQF(0.01).updateBatch(np.ascontiguousarray(gyr), np.ascontiguousarray(acc))["bias"][-1]
    off = {"motionBiasEstEnabled": False, "restBiasEstEnabled": False}
    ref = vqf.offlineVQF(np.ascontiguousarray(gyr - bias), np.ascontiguousarray(acc), None, 0.01, off)
    np.testing.assert_array_equal(q, ref["quat6D"])


def test_lagged_tracks_inclination_without_steps_where_blocks_meet():
    t, acc, gyr, q_true = raw_motion(6000)
    parts = _lagged_run(LaggedOrientationEstimator(100.0), t, acc, gyr, [])
    q = _cat(parts, "quat")
    online = OrientationEstimator(100.0).update(t, acc, gyr).quat
    err = orientation_errors(q, q_true, align_heading=True)
    assert err["inclination_rmse_deg"] < orientation_errors(online, q_true, align_heading=True)[
        "inclination_rmse_deg"
    ]
    assert err["total_rmse_deg"] < 0.5  # one heading for the whole stream (runs aligned onto each other)
    step = np.degrees(qm.angle_between(q[1:], q[:-1]))
    true_step = np.degrees(qm.angle_between(q_true[1:], q_true[:-1]))
    assert np.max(np.abs(step - true_step)) < 0.05  # no jump at the 29 block boundaries


def test_lagged_rejects_bad_parameters():
    with pytest.raises(ValueError):
        LaggedOrientationEstimator(0.0)
    with pytest.raises(ValueError):
        LaggedOrientationEstimator(100.0, block_s=0.0)
    with pytest.raises(ValueError):
        LaggedOrientationEstimator(100.0, lag_s=-1.0)


def test_both_estimators_share_the_update_finish_interface():
    """The channel drives either estimator the same way: ``update(t, acc, gyr, mag)`` returns the earliest
    samples not yet returned, ``finish()`` the rest (the causal one holds nothing back)."""
    t, acc, gyr, _ = raw_motion(900)
    causal = OrientationEstimator(100.0)
    out = causal.update(t, acc, gyr, None)
    np.testing.assert_array_equal(out.t, t)
    fin = causal.finish()
    assert len(fin.t) == 0 and fin.quat.shape == (0, 4) and fin.skipped == 0
    mag = np.tile([20.0, 0.0, -40.0], (len(t), 1))
    a, b = LaggedOrientationEstimator(100.0), LaggedOrientationEstimator(100.0)
    assert a.use_mag is False and a.mode == "6D"
    with_mag = [a.update(t, acc, gyr, mag), a.finish()]
    without = [b.update(t, acc, gyr), b.finish()]
    for name in ("t", "quat"):  # 6D only: a magnetometer changes nothing
        np.testing.assert_array_equal(_cat(with_mag, name), _cat(without, name))
    np.testing.assert_array_equal(_cat(with_mag, "t"), t)

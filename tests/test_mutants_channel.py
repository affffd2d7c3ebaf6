"""One sensor's channel with exact expectations: samples whose time does not move forward (dropped, counted,
said once per chunk), gaps (times, missing count, message, threshold of 2.5 periods, at a chunk start),
invalid and non-unit device quaternions, the world-vertical and dynamic acceleration features, which sensors
carry acceleration, the raw path through VQF, and the grid rows.

Written for the survivors of ``python bench/mutation.py --group channel``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing.angles import GRAVITY
from hipback.processing.channel import SensorChannel, take
from hipback.processing.orientation import LaggedOrientationEstimator, OrientationEstimator
from hipback.processing.types import Gap, SensorStream

ID = [1.0, 0.0, 0.0, 0.0]


def stream(t: list[float], quat=None, acc=None, placement: str = "pelvis", kind: str = "quat",
           gyr=None) -> SensorStream:
    n = len(t)
    q = np.tile(ID, (n, 1)) if quat is None and kind == "quat" else quat
    return SensorStream(placement=placement, kind=kind, t=np.array(t, dtype=float), rate_hz=100.0, quat=q,
                        acc=acc, gyr=gyr)


def test_grid_rows_and_acceleration_features() -> None:
    ch = SensorChannel("pelvis", "quat", 100.0)
    acc = np.array([[0.0, 0.0, GRAVITY + 1.0], [3.0, 0.0, GRAVITY + 4.0], [0.0, 0.0, GRAVITY]])
    out = ch.update(stream([0.0, 0.01, 0.02], acc=acc))
    assert out.placement == "pelvis" and out.k.tolist() == [0, 1, 2] and (out.first_k, out.next_k) == (0, 3)
    np.testing.assert_allclose(out.acc, [[1.0, 1.0], [4.0, 5.0], [0.0, 0.0]], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(out.quat, np.tile(ID, (3, 1)))
    assert ch.first_k == 0 and ch.next_k == 3
    thigh = SensorChannel("thigh_left", "quat", 100.0).update(
        stream([0.0], acc=acc[:1], placement="thigh_left"))
    np.testing.assert_allclose(thigh.acc, [[1.0, 1.0]], rtol=0, atol=1e-12)  # the thighs' impact is used
    lumbar = SensorChannel("lumbar_upper", "quat", 100.0).update(
        stream([0.0], acc=acc[:1], placement="lumbar_upper"))
    assert np.isnan(lumbar.acc).all()  # the upper-lumbar sensor's acceleration is not used
    forced = SensorChannel("lumbar_upper", "quat", 100.0, acceleration=True).update(
        stream([0.0], acc=acc[:1], placement="lumbar_upper"))
    np.testing.assert_allclose(forced.acc, [[1.0, 1.0]], rtol=0, atol=1e-12)
    off = SensorChannel("pelvis", "quat", 100.0, acceleration=False).update(stream([0.0], acc=acc[:1]))
    assert np.isnan(off.acc).all()
    tilted = SensorChannel("pelvis", "quat", 100.0).update(
        stream([0.0], quat=np.array([[math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0]]),
               acc=np.array([[0.0, GRAVITY + 2.0, 0.0]])))  # sensor y axis up
    np.testing.assert_allclose(tilted.acc, [[2.0, 2.0]], rtol=0, atol=1e-12)


def test_times_that_do_not_move_forward_are_dropped_and_said() -> None:
    ch = SensorChannel("pelvis", "quat", 100.0)
    ch.update(stream([0.0, 0.01]))
    out = ch.update(stream([0.01, 0.005, 0.02, float("nan"), 0.03, 0.03]))
    assert out.k.tolist() == [2, 3] and ch.dropped_backwards_ == 4
    assert ch.messages_ == ["pelvis: 4 sample(s) dropped because their time did not move forward"]
    assert len(ch.update(stream([0.02, 0.025])).k) == 0 and ch.dropped_backwards_ == 6
    assert ch.messages_[-1] == "pelvis: 2 sample(s) dropped because their time did not move forward"
    assert ch.gaps_ == []


def test_gaps_threshold_times_and_messages() -> None:
    ch = SensorChannel("thigh_left", "quat", 100.0)
    ch.update(stream([0.0, 0.01, 0.035, 0.06], placement="thigh_left"))  # 25 ms: not above 2.5 periods
    assert ch.gaps_ == []
    out = ch.update(stream([0.1, 0.11, 0.5], placement="thigh_left"))  # 40 ms at the start, 390 ms inside
    assert ch.gaps_ == [Gap("thigh_left", 0.06, 0.1, 3), Gap("thigh_left", 0.11, 0.5, 38)]
    assert ch.messages_ == [
        "thigh_left: gap of 0.04 s at t=0.06 s (segments split, nothing interpolated across it)",
        "thigh_left: gap of 0.39 s at t=0.11 s (segments split, nothing interpolated across it)",
    ]
    assert np.isnan(out.quat[out.k == 7]).all() and np.isnan(out.quat[out.k == 30]).all()
    ch2 = SensorChannel("pelvis", "quat", 100.0, gap_factor=5.0)
    ch2.update(stream([0.0, 0.04, 0.1]))
    assert ch2.gaps_ == [Gap("pelvis", 0.04, 0.1, 5)]
    ch3 = SensorChannel("pelvis", "quat", 100.0)
    ch3.update(stream([0.0, 0.1, 0.1]))  # a duplicate after a gap: both said
    assert [g.t_end for g in ch3.gaps_] == [0.1] and ch3.dropped_backwards_ == 1


def test_invalid_and_non_unit_quaternions_are_counted_and_said() -> None:
    ch = SensorChannel("pelvis", "quat", 100.0)
    q = np.array([ID, [1.1, 0, 0, 0], [np.nan] * 4, [3.0, 0, 0, 0], ID])
    out = ch.update(stream([0.0, 0.01, 0.02, 0.03, 0.04], quat=q))
    assert (ch.invalid_, ch.non_unit_) == (2, 1)
    assert ch.messages_ == [
        "pelvis: 2 invalid quaternion(s) (NaN or far from unit norm) skipped",
        "pelvis: 1 non-unit quaternion(s) renormalised",
    ]
    np.testing.assert_allclose(out.quat[1], ID, rtol=0, atol=1e-15)
    assert np.isnan(out.quat[2:4]).all()
    ch.update(stream([0.05], quat=np.array([[0.0, 0.0, 0.0, 0.0]])))
    assert ch.invalid_ == 3
    assert ch.messages_[-1] == "pelvis: 1 invalid quaternion(s) (NaN or far from unit norm) skipped"


def test_raw_sensors_go_through_vqf_and_count_skipped_samples() -> None:
    n = 6
    acc = np.tile([0.0, 0.0, GRAVITY], (n, 1))
    gyr = np.zeros((n, 3))
    gyr[2] = np.nan
    ch = SensorChannel("pelvis", "raw", 100.0)
    out = ch.update(stream([i / 100 for i in range(n)], acc=acc, gyr=gyr, kind="raw"))
    assert ch.invalid_ == 1 and ch.messages_ == ["pelvis: 1 raw sample(s) with NaN skipped"]
    # grid row 1 lies exactly on a valid sample next to the skipped one: it keeps that sample's value
    assert np.isnan(out.quat[2]).all() and np.isfinite(out.quat[[0, 1, 3, 4, 5]]).all()
    assert SensorChannel("pelvis", "raw", 100.0, use_mag=False)._est.mode == "6D"


def test_finish_take_and_empty_chunks() -> None:
    ch = SensorChannel("pelvis", "quat", 100.0)
    empty = ch.update(stream([]))
    assert len(empty) == 0 and empty.first_k is None
    assert empty.quat.shape == (0, 4) and empty.acc.shape == (0, 2)
    ch.update(stream([0.0, 0.01]))
    end = ch.finish()
    assert len(end) == 0 and (end.first_k, end.next_k) == (0, 2)
    with pytest.raises(RuntimeError, match=r"^update\(\) after finish\(\)$"):
        ch.update(stream([0.02]))
    s = stream([0.0, 0.01, 0.02], acc=np.arange(9.0).reshape(3, 3))
    s.seq = np.array([5, 6, 7])
    part = take(s, np.array([0, 2]))
    assert part.t.tolist() == [0.0, 0.02] and part.seq.tolist() == [5, 7]
    assert part.acc[1].tolist() == [6, 7, 8]
    assert part.gyr is None and part.placement == "pelvis" and part.kind == "quat"
    raw = SensorStream(placement="thigh_left", kind="raw", t=np.array([0.0, 0.01]), rate_hz=60.0,
                       acc=np.ones((2, 3)), gyr=np.full((2, 3), 2.0), mag=np.full((2, 3), 3.0),
                       device="dot-7", meta={"fw": "3"})
    cut = take(raw, np.array([1]))
    assert (cut.rate_hz, cut.device, cut.meta, cut.kind) == (60.0, "dot-7", {"fw": "3"}, "raw")
    assert cut.gyr.tolist() == [[2.0] * 3] and cut.mag.tolist() == [[3.0] * 3]
    assert SensorChannel("thigh_right", "quat", 100.0).update(stream([], placement="thigh_right")).placement \
        == "thigh_right"


def test_parameters_are_kept_and_passed_to_the_filter() -> None:
    ch = SensorChannel("thigh_left", "raw", 60.0, grid_rate_hz=50.0, use_mag=False,
                       vqf_params={"tauAcc": 1.0}, gap_factor=4.0, reset_gap_s=0.05, acceleration=True)
    assert ch.get_params() == {"placement": "thigh_left", "kind": "raw", "rate_hz": 60.0,
                               "grid_rate_hz": 50.0, "use_mag": False, "vqf_params": {"tauAcc": 1.0},
                               "gap_factor": 4.0, "reset_gap_s": 0.05, "acceleration": True,
                               "gyroscope": False, "orientation": "causal", "acc_bias": True,
                               "acc_bias_params": None, "acc_bias_keep_frame": True}
    est = ch._est
    assert type(est) is OrientationEstimator
    assert (est.use_mag, est.params, est.gap_s, est.rate_hz) == (False, {"tauAcc": 1.0}, 0.05, 60.0)
    assert SensorChannel("pelvis", "quat", 100.0)._est is None
    assert SensorChannel("pelvis", "quat", 100.0, orientation="lagged")._est is None
    lag = SensorChannel("thigh_left", "raw", 60.0, vqf_params={"tauAcc": 1.0}, reset_gap_s=0.5,
                        orientation="lagged")._est
    assert type(lag) is LaggedOrientationEstimator
    assert (lag.params, lag.gap_s, lag.rate_hz) == ({"tauAcc": 1.0}, 0.5, 60.0)
    assert (lag.block_s, lag.lag_s) == (2.0, 4.0)


def test_default_gap_is_two_and_a_half_periods_and_missing_can_be_zero() -> None:
    ch = SensorChannel("pelvis", "quat", 100.0)
    ch.update(stream([0.0, 0.03]))
    assert ch.gaps_ == [Gap("pelvis", 0.0, 0.03, 2)]
    fine = SensorChannel("pelvis", "quat", 100.0, gap_factor=1.2)
    fine.update(stream([0.0, 0.013]))
    assert fine.gaps_ == [Gap("pelvis", 0.0, 0.013, 0)]


def test_backwards_times_in_every_position() -> None:
    ch = SensorChannel("pelvis", "quat", 100.0)
    ch.update(stream([0.0, 0.01]))
    ch.update(stream([0.01]))  # the same time as the last sample
    assert ch.dropped_backwards_ == 1
    ch.update(stream([0.03, 0.02]))  # two samples, the second going back
    assert ch.dropped_backwards_ == 2
    ch.update(stream([0.04, 0.05, 0.05, 0.06]))  # a duplicate inside an otherwise increasing chunk
    assert ch.dropped_backwards_ == 3
    ch.update(stream([0.3, 0.29, 0.31]))  # a gap before a chunk that also goes back
    assert [(g.t_start, g.t_end) for g in ch.gaps_] == [(0.06, 0.3)] and ch.dropped_backwards_ == 4
    first = SensorChannel("pelvis", "quat", 100.0)
    first.update(stream([0.0, 0.5, 0.4]))  # the first chunk: a gap, then a step back
    assert [(g.t_start, g.t_end) for g in first.gaps_] == [(0.0, 0.5)] and first.dropped_backwards_ == 1


def test_counters_add_up_over_chunks_and_magnetometer_use() -> None:
    ch = SensorChannel("pelvis", "quat", 100.0)
    ch.update(stream([0.0], quat=np.array([[1.1, 0, 0, 0]])))
    ch.update(stream([0.01], quat=np.array([[1.1, 0, 0, 0]])))
    assert ch.non_unit_ == 2
    raw = SensorChannel("pelvis", "raw", 100.0)
    for t0 in (0.0, 0.02):
        gyr = np.array([[np.nan] * 3, [0.0] * 3])
        raw.update(stream([t0, t0 + 0.01], acc=np.tile([0.0, 0.0, GRAVITY], (2, 1)), gyr=gyr, kind="raw"))
    assert raw.invalid_ == 2
    mag = np.tile([20.0, 0.0, -40.0], (3, 1))
    nine = SensorChannel("pelvis", "raw", 100.0)
    s = stream([0.0, 0.01, 0.02], acc=np.tile([0.0, 0.0, GRAVITY], (3, 1)), gyr=np.zeros((3, 3)), kind="raw")
    s.mag = mag
    nine.update(s)
    assert nine._est.mode == "9D"
    six = SensorChannel("pelvis", "raw", 100.0, use_mag=False)
    six.update(s)
    assert six._est.mode == "6D"


def test_a_nine_d_channel_passes_its_magnetometer_on() -> None:
    from hipback.processing.orientation import OrientationEstimator

    t = np.arange(50) / 100.0
    acc = np.tile([0.0, 0.0, GRAVITY], (50, 1))
    gyr = np.tile([0.0, 0.0, 0.5], (50, 1))
    mag = np.tile([20.0, 5.0, -40.0], (50, 1))
    s = stream(list(t), acc=acc, gyr=gyr, kind="raw")
    s.mag = mag
    got = SensorChannel("pelvis", "raw", 100.0, use_mag=True).update(s)
    ref = OrientationEstimator(100.0, use_mag=True).update(t, acc, gyr, mag).quat
    np.testing.assert_allclose(got.quat, ref, rtol=0, atol=1e-12)


def test_lagged_channel_holds_samples_until_their_orientation_comes_back() -> None:
    n = 700  # 7 s at 100 Hz: blocks of 2 s, final 4 s after their end
    t = np.arange(n) / 100.0
    raw = SensorStream(placement="pelvis", kind="raw", t=t, rate_hz=100.0,
                       acc=np.tile([0.0, 0.0, GRAVITY], (n, 1)), gyr=np.zeros((n, 3)))
    ch = SensorChannel("pelvis", "raw", 100.0, orientation="lagged")
    first = ch.update(raw.slice(0, 610))
    assert first.k.tolist() == list(range(200)) and (first.first_k, first.next_k) == (0, 200)
    assert len(ch.update(raw.slice(610, 650))) == 0
    rest = ch.finish()
    assert rest.k.tolist() == list(range(200, 650)) and rest.next_k == 650
    np.testing.assert_allclose(rest.acc, 0.0, atol=1e-9)  # level and still: no acceleration left
    assert len(ch.finish()) == 0
    with pytest.raises(RuntimeError, match=r"^update\(\) after finish\(\)$"):
        ch.update(raw.slice(650, n))
    wrong = SensorChannel("pelvis", "raw", 100.0, orientation="lagged")
    wrong.update(raw.slice(0, 100))
    real = wrong._est.finish
    wrong._est.finish = lambda: type(real())(t[1:3], np.tile([1.0, 0, 0, 0], (2, 1)), np.zeros(2, int),
                                             np.zeros(2, bool))
    with pytest.raises(RuntimeError, match="out of order"):
        wrong.finish()


def test_a_sensor_that_keeps_losing_samples_keeps_a_bounded_log() -> None:
    """A sensor that loses three samples every half second for five minutes: every gap is in ``gaps_``, but
    the log says the first ten in full, then their count at most once a minute of stream time, the rest at
    ``finish``, the same whatever the chunking; a few gaps stay said in full."""
    keep = np.array([i % 50 < 47 for i in range(30_000)])
    t = np.flatnonzero(keep) / 100.0
    logs = []
    for chunk in (7, len(t)):
        ch = SensorChannel("thigh_left", "quat", 100.0)
        for a in range(0, len(t), chunk):
            ch.update(stream(t[a:a + chunk].tolist(), placement="thigh_left"))
        ch.finish()
        assert len(ch.gaps_) == 599 and all(g.missing == 3 for g in ch.gaps_)
        logs.append(list(ch.messages_))
    assert logs[0] == logs[1]
    log = logs[0]
    assert log[0] == "thigh_left: gap of 0.04 s at t=0.46 s (segments split, nothing interpolated across it)"
    assert len(log) <= 10 + 300 / 60 + 2
    counts = [int(m.split()[1]) for m in log[10:]]
    assert all(m.startswith("thigh_left: ") and " more gaps (segments split, nothing interpolated across "
               "them) since t=" in m for m in log[10:])
    assert 10 + sum(counts) == 599
    # a few gaps: every one said in full
    ch = SensorChannel("thigh_left", "quat", 100.0)
    ch.update(stream(t[:400].tolist(), placement="thigh_left"))
    ch.finish()
    assert len(ch.messages_) == len(ch.gaps_) == 8

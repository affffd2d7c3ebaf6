"""Grid merge with exact expectations: which rows become final when, missing sensors as NaN, the lag limit,
the pelvis' acceleration and motion average, angular velocity and the "everybody still" flag row by row,
chunks split across releases, and the input checks.

Written for the survivors of ``python bench/mutation.py --group merge``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing.channel import GridChunk
from hipback.processing.merge import GridMerge, Rows

S = math.sqrt(0.5)
X_UP = np.array([S, 0.0, -S, 0.0])  # sensor x axis along world up (the placement guide's standing pose)
FLAT = np.array([1.0, 0.0, 0.0, 0.0])  # sensor x horizontal


def chunk(p: str, k: list[int] | np.ndarray, q: np.ndarray = X_UP, acc0: float = 0.0) -> GridChunk:
    k = np.asarray(k, dtype=np.int64)
    acc = np.stack([np.full(len(k), -1.0), acc0 + k.astype(float)], axis=1)
    return GridChunk(p, k, np.tile(q, (len(k), 1)), acc)


def test_rows_wait_for_every_sensor_and_finish_releases_the_rest() -> None:
    m = GridMerge(("pelvis", "thigh_left"), motion_window_s=0.03)
    assert len(m.update(chunk("pelvis", range(10)))) == 0  # the thigh has sent nothing yet
    rows = m.update(chunk("thigh_left", range(2, 8)))
    assert rows.k.tolist() == list(range(8))
    assert np.isnan(rows.q["thigh_left"][:2]).all() and (rows.q["thigh_left"][2:] == X_UP).all()
    assert (rows.q["pelvis"] == X_UP).all()
    np.testing.assert_array_equal(rows.acc[:, 1], np.arange(8.0))
    assert np.isnan(rows.motion[:2]).all()
    np.testing.assert_allclose(rows.motion[2:], np.arange(1.0, 7.0), rtol=0, atol=1e-12)  # mean of 3 rows
    # still: row 0 has no previous orientation; row 2 is the thigh's first (no angular velocity yet)
    assert rows.still.tolist() == [False, True, False, True, True, True, True, True]
    assert np.isnan(rows.omega["pelvis"][0]).all() and (rows.omega["pelvis"][1:] == 0).all()
    rest = m.finish()
    assert rest.k.tolist() == [8, 9] and np.isnan(rest.q["thigh_left"]).all()
    assert rest.still.tolist() == [True, True]  # a sensor without data does not veto
    assert m.n_rows_ == 10
    assert len(m.finish()) == 0
    with pytest.raises(RuntimeError, match=r"^add\(\) after finish\(\)$"):
        m.add(chunk("pelvis", [10]))


def test_still_needs_slow_turning_and_x_up_and_the_pelvis() -> None:
    m = GridMerge(("pelvis", "thigh_left"))
    m.add(chunk("pelvis", range(5), FLAT))
    rows = m.update(chunk("thigh_left", range(5)))
    assert not rows.still.any()  # the pelvis lies flat: x not within 45 deg of vertical
    tilt = math.radians(44.0)  # x axis 44 deg from vertical: still
    q44 = np.array([math.cos((math.pi / 2 - tilt) / 2), 0.0, -math.sin((math.pi / 2 - tilt) / 2), 0.0])
    m = GridMerge(("pelvis",))
    assert m.update(chunk("pelvis", range(3), q44)).still.tolist() == [False, True, True]
    q46 = np.array([math.cos((math.pi / 2 - math.radians(46.0)) / 2), 0.0,
                    -math.sin((math.pi / 2 - math.radians(46.0)) / 2), 0.0])
    assert not GridMerge(("pelvis",)).update(chunk("pelvis", range(3), q46)).still.any()
    # turning at 0.19 vs 0.21 rad/s about the sensor x axis
    for speed, still in ((0.19, True), (0.21, False)):
        ang = speed * np.arange(4) / 100.0
        q = np.array([[math.cos(a / 2) * S, math.sin(a / 2) * S, -math.cos(a / 2) * S, math.sin(a / 2) * S]
                      for a in ang])
        ch = GridChunk("pelvis", np.arange(4, dtype=np.int64), q, np.zeros((4, 2)))
        got = GridMerge(("pelvis",)).update(ch)
        np.testing.assert_allclose(np.linalg.norm(got.omega["pelvis"][1:], axis=1), speed, rtol=1e-6)
        assert got.still.tolist()[1:] == [still] * 3
    m = GridMerge(("pelvis", "thigh_left"))
    m.add(chunk("thigh_left", range(4)))
    rows = m.update(GridChunk("pelvis", np.zeros(0, dtype=np.int64), np.zeros((0, 4)), np.zeros((0, 2)),
                              first_k=0, next_k=4))
    assert len(rows) == 4 and not rows.still.any()  # the pelvis must be there
    assert rows.acc.dtype == np.float64 and rows.acc.shape == (4, 4)
    assert np.isnan(rows.acc[:, [0, 1, 3]]).all()  # no pelvis or right thigh data
    assert rows.acc[:, 2].tolist() == [0.0, 1.0, 2.0, 3.0]  # the left thigh's magnitude, not its vertical
    assert not GridMerge(("pelvis", "thigh_left")).finish().still.any()


def test_lag_limit_releases_rows_without_the_silent_sensor() -> None:
    m = GridMerge(("pelvis", "thigh_left"), max_sensor_lag_s=0.05)
    assert len(m.update(chunk("pelvis", range(5)))) == 0  # 5 rows ahead: still waiting (lag 5 rows)
    rows = m.update(chunk("pelvis", range(5, 20)))
    assert rows.k.tolist() == list(range(15)) and np.isnan(rows.q["thigh_left"]).all()
    rows = m.update(chunk("thigh_left", range(15, 18)))  # the thigh is back
    assert rows.k.tolist() == [15, 16, 17] and (rows.q["thigh_left"] == X_UP).all()
    m2 = GridMerge(("pelvis", "thigh_left"), max_sensor_lag_s=0.05)
    m2.add(chunk("pelvis", range(20)))
    m2.add(chunk("thigh_left", range(3)))
    assert m2.update(chunk("thigh_left", [3])).k.tolist() == list(range(15))  # at most 5 rows behind


def test_chunks_are_cut_at_the_release_and_gaps_stay_nan() -> None:
    m = GridMerge(("pelvis", "thigh_left"), motion_window_s=0.01)
    m.add(chunk("pelvis", range(20)))
    rows = m.update(chunk("thigh_left", [0, 1, 3, 4], acc0=100.0))  # row 2 missing for the thigh
    assert rows.k.tolist() == [0, 1, 2, 3, 4] and np.isnan(rows.q["thigh_left"][2]).all()
    np.testing.assert_array_equal(rows.acc[:, 1], np.arange(5.0))  # acceleration is the pelvis' only
    np.testing.assert_array_equal(rows.motion, np.arange(5.0))  # a one-row average
    rows = m.update(chunk("thigh_left", range(5, 12)))
    assert rows.k.tolist() == list(range(5, 12)) and (rows.q["pelvis"] == X_UP).all()
    np.testing.assert_array_equal(rows.acc[:, 1], np.arange(5.0, 12.0))
    m3 = GridMerge(("pelvis",))
    m3.add(chunk("pelvis", [5, 6]))
    m3.add(chunk("pelvis", [7, 9]))
    rows = m3.finish()
    assert rows.k.tolist() == [5, 6, 7, 8, 9] and np.isnan(rows.q["pelvis"][3]).all()
    with pytest.raises(ValueError, match=r"^thigh_right is not part of this session$"):
        GridMerge(("pelvis",)).add(chunk("thigh_right", [0]))


def test_rows_concat_and_slice() -> None:
    m = GridMerge(("pelvis",))
    a = m.update(chunk("pelvis", range(3)))
    b = m.update(chunk("pelvis", range(3, 6)))
    both = Rows.concat([a, b])
    assert both.k.tolist() == list(range(6)) and len(both) == 6
    assert both.still.tolist() == [False] + [True] * 5
    part = both.slice(2, 4)
    assert part.k.tolist() == [2, 3] and part.q["pelvis"].shape == (2, 4)
    assert part.omega["pelvis"].shape == (2, 3)
    np.testing.assert_array_equal(part.acc, both.acc[2:4])
    assert Rows.concat([a]) is a
    e = Rows.empty(["pelvis", "thigh_left"])
    assert len(e) == 0 and e.q["thigh_left"].shape == (0, 4) and e.acc.shape == (0, 4)
    assert e.still.dtype == bool and e.still.shape == (0,) and e.k.dtype == np.int64
    assert e.motion.shape == (0,) and e.omega["pelvis"].shape == (0, 3)
    joined = Rows.concat([a, Rows.empty(["pelvis"])])
    assert len(joined) == 3 and joined.motion.shape == (3,) and joined.omega["pelvis"].shape == (3, 3)


def test_late_rows_of_a_lagging_sensor_do_not_hide_its_next_ones() -> None:
    m = GridMerge(("pelvis", "thigh_left"), max_sensor_lag_s=0.05)
    m.add(chunk("pelvis", range(100, 120)))
    assert m.update(chunk("pelvis", [120])).k.tolist() == list(range(100, 116))  # lag counted from row 100
    m.add(chunk("thigh_left", range(100, 110)))  # rows already released without it
    m.add(chunk("thigh_left", range(116, 119)))
    rows = m.update(chunk("pelvis", range(121, 125)))
    assert rows.k.tolist() == list(range(116, 120))
    assert (rows.q["thigh_left"][:3] == X_UP).all() and np.isnan(rows.q["thigh_left"][3]).all()


def _turning(n: int, seed: int, start: tuple[float, float, float, float]) -> np.ndarray:
    """``n`` unit quaternions from ``start`` turning by up to ~0.06 rad per row about random axes, each
    row's sign at random (q and -q are the same orientation), rows 20 and 21 a half turn apart (zero scalar
    part of their relative rotation; their scalar parts of opposite signs)."""
    rng = np.random.default_rng(seed)
    q = np.empty((n, 4))
    cur = np.array(start) / np.linalg.norm(start)
    for i in range(n):
        step = rng.normal(size=3) * 0.02
        a = float(np.linalg.norm(step))
        d = np.r_[math.cos(a / 2), math.sin(a / 2) * step / a]
        w0, x0, y0, z0 = cur
        w1, x1, y1, z1 = d
        cur = np.array([w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1, w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1,
                        w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1, w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1])
        q[i] = cur
    q[21] = [-q[20, 1], q[20, 0], q[20, 3], -q[20, 2]]  # q20 * (0, 1, 0, 0): a half turn about x
    q[rng.random(n) < 0.5] *= -1
    if q[20, 0] * q[21, 0] > 0:
        q[21] *= -1
    return q


@pytest.mark.parametrize("seed", [1, 2])
def test_live_steps_give_the_angular_velocity_of_consecutive_rows(seed: int) -> None:
    """Rows released a few at a time (a live step: the small path) carry exactly
    :func:`~hipback.processing.calibration.angular_velocity` of the placement's rows, whatever the signs of
    the quaternions, the half turn included, and ``still`` from its speed."""
    from hipback.processing.calibration import angular_velocity

    n = 36
    # large x (pelvis) and z (thigh) parts: a wrong term of the relative rotation's scalar part flips its sign
    qs = {"pelvis": _turning(n, seed, (0.1, 0.9, 0.1, 0.4)),
          "thigh_left": _turning(n, seed + 10, (0.1, 0.4, 0.1, 0.9))}
    m = GridMerge(("pelvis", "thigh_left"))
    parts = []
    for i in range(0, n, 3):
        for p, q in qs.items():
            k = np.arange(i, i + 3, dtype=np.int64)
            rows = m.update(GridChunk(p, k, q[i : i + 3], np.zeros((3, 2))))
        parts.append(rows)
    got = Rows.concat(parts)
    assert got.k.tolist() == list(range(n))
    for p, q in qs.items():
        expected = angular_velocity(q, 100.0)
        np.testing.assert_array_equal(got.omega[p][1:], expected[1:])
    speed = {p: np.linalg.norm(got.omega[p], axis=1) for p in qs}
    assert (speed["pelvis"][1:] > 0.2).any() or (speed["thigh_left"][1:] > 0.2).any()


def _gchunk(p: str, k: list[int], gyr: bool = True) -> GridChunk:
    ks = np.asarray(k, dtype=np.int64)
    g = np.stack([ks * 1.0, ks * 2.0, ks * 3.0 + (p == "pelvis")], axis=1) if gyr else None
    acc = np.stack([np.full(len(ks), -1.0), 10.0 * ks + (p != "pelvis")], axis=1)
    return GridChunk(p, ks, np.tile(X_UP, (len(ks), 1)), acc, gyr=g)


def _gyr_rows(k: list[int], pelvis: bool = True) -> np.ndarray:
    ks = np.asarray(k, dtype=float)
    return np.stack([ks, 2 * ks, 3 * ks + pelvis], axis=1)


def test_rows_carry_the_gyroscope_of_the_placements_asked_for() -> None:
    """Only the pelvis' gyroscope is carried: on the contiguous path, from a chunk's kept rest, on the path
    of a chunk with a hole (NaN there), NaN for a chunk without gyroscope; the thigh's is ignored."""
    m = GridMerge(("pelvis", "thigh_left"), gyroscope=("pelvis",))
    m.add(_gchunk("pelvis", list(range(6))))
    rows = m.update(_gchunk("thigh_left", list(range(4))))
    assert rows.k.tolist() == [0, 1, 2, 3] and list(rows.gyr) == ["pelvis"]
    assert rows.gyr["pelvis"].shape == (4, 3)
    np.testing.assert_array_equal(rows.gyr["pelvis"], _gyr_rows([0, 1, 2, 3]))
    # the pelvis chunk's rest (rows 4, 5), then a pelvis chunk with a hole at 7 and one without gyroscope
    m.add(_gchunk("pelvis", [6, 8, 9]))
    m.add(_gchunk("pelvis", [10, 11], gyr=False))
    rows = m.update(_gchunk("thigh_left", [4, 5, 6, 7, 9, 10, 11]))
    assert rows.k.tolist() == list(range(4, 12))
    expected = _gyr_rows(list(range(4, 12)))
    expected[[3, 6, 7]] = np.nan  # row 7: no pelvis sample; rows 10, 11: no gyroscope
    np.testing.assert_array_equal(rows.gyr["pelvis"], expected)
    # the thigh's acceleration magnitude on the path of its chunk with a hole (row 8 missing)
    thigh = rows.acc[:, 2]
    np.testing.assert_array_equal(thigh, [41.0, 51.0, 61.0, 71.0, np.nan, 91.0, 101.0, 111.0])
    np.testing.assert_array_equal(rows.acc[:, 1], [40.0, 50.0, 60.0, np.nan, 80.0, 90.0, 100.0, 110.0])
    rest = m.finish()
    assert len(rest) == 0 and list(rest.gyr) == ["pelvis"]
    again = m.finish()  # a second finish: empty rows of the same layout
    assert len(again) == 0 and list(again.q) == ["pelvis", "thigh_left"] and list(again.gyr) == ["pelvis"]
    assert list(again.omega) == ["pelvis", "thigh_left"]


def _rot(axis: tuple[float, float, float], angle: float) -> np.ndarray:
    a = np.asarray(axis) / np.linalg.norm(axis)
    return np.r_[math.cos(angle / 2), math.sin(angle / 2) * a]


def _mul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    w0, x0, y0, z0 = p
    w1, x1, y1, z1 = q
    return np.array([w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1, w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1,
                     w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1, w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1])


def _standing_and_moving(n: int, phase: int) -> np.ndarray:
    """From the standing pose (sensor x up): turning about the world vertical at 0.1 rad/s (still) or 0.5
    rad/s (not), in stretches of 5-7 rows shifted by ``phase``; tilted 40 or 50 deg in others; every third row
    negated."""
    q = np.empty((n, 4))
    yaw = 0.0
    for i in range(n):
        stretch = (i + phase) // 6
        yaw += (0.1 if stretch % 2 == 0 else 0.5) / 100.0
        tilt = math.radians(40.0 if stretch % 3 != 2 else 50.0)
        q[i] = _mul(_rot((0.0, 0.0, 1.0), yaw), _rot((0.0, 1.0, 0.0), -(math.pi / 2 - tilt)))
    q[::3] *= -1
    return q


def test_live_steps_give_the_stillness_and_speeds_of_one_large_chunk() -> None:
    """The same rows released three at a time (the small path) and in one chunk (numpy): the same
    ``still`` and ``omega`` bits, with both sensors turning slowly, fast, upright and tilted, each on its own
    schedule."""
    n = 60
    qs = {"pelvis": _standing_and_moving(n, 0), "thigh_left": _standing_and_moving(n, 3)}
    live = GridMerge(("pelvis", "thigh_left"))
    parts = []
    for i in range(0, n, 3):
        for p, q in qs.items():
            rows = live.update(GridChunk(p, np.arange(i, i + 3, dtype=np.int64), q[i : i + 3],
                                         np.zeros((3, 2))))
        parts.append(rows)
    small = Rows.concat(parts)
    whole = GridMerge(("pelvis", "thigh_left"))
    for p, q in qs.items():
        big = whole.update(GridChunk(p, np.arange(n, dtype=np.int64), q, np.zeros((n, 2))))
    np.testing.assert_array_equal(small.still, big.still)
    for p in qs:
        np.testing.assert_array_equal(small.omega[p], big.omega[p])
    assert 5 <= int(big.still.sum()) <= n - 5  # both kinds of rows


def test_empty_concatenated_and_sliced_rows_keep_the_gyroscope_layout() -> None:
    m = GridMerge(("pelvis", "thigh_left"), gyroscope=("pelvis",))
    nothing = m.update(_gchunk("pelvis", [0, 1]))  # the thigh has sent nothing: no rows yet
    assert len(nothing) == 0 and list(nothing.q) == ["pelvis", "thigh_left"]
    assert list(nothing.omega) == ["pelvis", "thigh_left"] and list(nothing.gyr) == ["pelvis"]
    assert nothing.gyr["pelvis"].shape == (0, 3) and nothing.q["pelvis"].shape == (0, 4)
    rows = m.update(_gchunk("thigh_left", [0, 1]))
    pl = ("pelvis", "thigh_left")
    plain = Rows(np.array([2, 3]), {p: np.zeros((2, 4)) for p in pl}, np.zeros((2, 4)), np.zeros(2),
                 np.zeros(2, dtype=bool), {p: np.zeros((2, 3)) for p in pl})
    both = Rows.concat([rows, plain])
    assert list(both.gyr) == ["pelvis"] and both.gyr["pelvis"].shape == (4, 3)
    np.testing.assert_array_equal(both.gyr["pelvis"][:2], _gyr_rows([0, 1]))
    assert np.isnan(both.gyr["pelvis"][2:]).all()
    part = both.slice(1, 3)
    assert part.k.tolist() == [1, 2] and list(part.gyr) == ["pelvis"]
    np.testing.assert_array_equal(part.gyr["pelvis"][0], _gyr_rows([1])[0])
    assert np.isnan(part.gyr["pelvis"][1]).all()

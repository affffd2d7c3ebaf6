"""The optional fields of the angle series (AngleSeries.OPTIONAL: the pelvis' yaw rate, the pelvis' vertical
and the thighs' dynamic accelerations) are stored with the series and read back (float32); a series stored
without them (as hipback stored it before) reads back with them None. Strides detected again from a stored
series keep their turning flag."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from hipback.ingest.results import ANGLE_SERIES_OPTIONAL, angles_from_rows, angles_rows
from hipback.processing.gait import detect_strides
from hipback.processing.types import AngleSeries
from tests.test_gait import walking

DEG = math.pi / 180.0
F32 = 2.0**-24


def _results(angles: AngleSeries) -> SimpleNamespace:
    """What :func:`angles_rows` reads of a ``SessionResults``."""
    return SimpleNamespace(angles=angles, placements={"pelvis": "quat"}, calibration_state="done",
                           messages=[], gaps=[])


def _turning_walk() -> AngleSeries:
    """40 s of walking with a left turn at 40 deg/s over 12-18 s (rad/s, positive turning left)."""
    angles, _ = walking(duration=40.0, t0=3.0, t1=37.0)
    t = angles.t
    yaw = np.where((t >= 12.0) & (t < 18.0), 40.0 * DEG, 0.0)
    return dataclasses.replace(angles, pelvis_yaw_rate=yaw)


def test_every_optional_field_of_the_series_has_a_stored_column() -> None:
    assert set(ANGLE_SERIES_OPTIONAL) == set(AngleSeries.OPTIONAL)


def test_the_yaw_rate_is_stored_and_read_back_within_float32() -> None:
    a = _turning_walk()
    rng = np.random.default_rng(3)
    yaw = a.pelvis_yaw_rate + rng.normal(0.0, 0.05, len(a.t))  # not only the values 0 and 40 deg/s
    yaw[:7] = np.nan  # missing at the start (no previous orientation)
    thigh = np.abs(rng.normal(0.0, 2.0, len(a.t)))
    a = dataclasses.replace(a, pelvis_yaw_rate=yaw, thigh_acc_left=thigh)
    rows = angles_rows(_results(a), 1.7e9, chunk=997)  # several chunks
    assert all("pelvis_yaw_rate_rad_s" in r for r in rows[1:]) and "thigh_acc_right_m_s2" not in rows[1]
    back, header = angles_from_rows(rows)
    assert header["start_utc"] == 1.7e9
    assert back.pelvis_yaw_rate is not None and back.pelvis_yaw_rate.shape == yaw.shape
    assert np.array_equal(np.isnan(back.pelvis_yaw_rate), np.isnan(yaw))
    ok = ~np.isnan(yaw)
    assert np.allclose(back.pelvis_yaw_rate[ok], yaw[ok], rtol=F32, atol=0.0)
    assert np.allclose(back.thigh_acc_left, thigh, rtol=F32, atol=0.0)
    assert back.thigh_acc_right is None and back.pelvis_acc_vertical is None  # not given, not made up


def test_a_series_stored_without_the_yaw_rate_reads_back_without_it() -> None:
    """Rows as hipback stored them before the column existed: every other field as before, the yaw rate None
    (not zeros, which would say "walking straight")."""
    a = _turning_walk()
    a = dataclasses.replace(a, pelvis_acc_vertical=np.sin(a.t))
    rows = angles_rows(_results(a), 0.0, chunk=1500)
    old = [rows[0]] + [{k: v for k, v in r.items() if k != "pelvis_yaw_rate_rad_s"} for r in rows[1:]]
    back, _ = angles_from_rows(old)
    assert back.pelvis_yaw_rate is None
    assert np.allclose(back.pelvis_acc_vertical, np.sin(a.t), rtol=F32, atol=1e-12)
    assert np.allclose(back.pelvic_tilt, a.pelvic_tilt, rtol=F32, atol=1e-12, equal_nan=True)
    assert not any(s.turning for s in detect_strides(back, "left").strides)


def test_a_column_in_some_rows_only_is_refused() -> None:
    rows = angles_rows(_results(_turning_walk()), 0.0, chunk=1500)
    del rows[2]["pelvis_yaw_rate_rad_s"]
    with pytest.raises(ValueError, match="a column in some rows only"):
        angles_from_rows(rows)


def test_strides_detected_again_from_the_stored_series_keep_the_turning_flag() -> None:
    a = _turning_walk()
    before = detect_strides(a, "left").strides
    back, _ = angles_from_rows(angles_rows(_results(a), 0.0))
    after = detect_strides(back, "left").strides
    assert [s.turning for s in after] == [s.turning for s in before]
    assert sum(s.turning for s in after) >= 3
    for s, r in zip(after, before, strict=True):
        assert s.heading_change_rad == pytest.approx(r.heading_change_rad, rel=1e-6, abs=1e-9)

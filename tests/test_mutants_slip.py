"""The slip monitor (``processing/slip.py``) on hand-built calibrated rows, where its decisions follow from
its definitions: sensors held at exact tilts from their calibrated neutral, thighs turning at exact speeds
about exact axes. The standing check's limits (slip 10 deg, reference 5 deg, at least three sensors, one off),
the walking that must come just before a still period (100 fast rows within 500), the recalibration, the
split of the output, the moving check's windows, reference and three-in-a-row rule, and pass-through.

Rows: 100 Hz grid; every sensor's calibration maps the segment's superior axis (Y) to world up when the
sensor's orientation is the identity, so a sensor turned by ``a`` about world Y reads ``a`` from neutral.

Written for the survivors of ``python bench/mutation.py --group slip``.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.angles import long_axis_inclination
from hipback.processing.calibration import SensorCalibration
from hipback.processing.calibration_search import CalibratedRows
from hipback.processing.merge import Rows
from hipback.processing.slip import SlipMonitor, source_placement

D = math.pi / 180.0
P4 = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")
NEUTRAL = qm.from_axis_angle([1.0, 0.0, 0.0], math.pi / 2)
ACC_WIDTH = Rows.empty(list(P4)).acc.shape[1]  # the pelvis acceleration features (not read by the monitor)
WALK = {"thigh_left": [1.0, 0.0, 0.0], "thigh_right": [1.0, 0.0, 0.0]}  # 1 rad/s: stepping legs


def calibration(placements: tuple[str, ...] = P4, quality: float = 1.0) -> dict[str, SensorCalibration]:
    return {p: SensorCalibration(p, NEUTRAL.copy(), quality) for p in placements}


def rows(k0: int, n: int, still: bool, tilt: dict[str, float] | None = None,
         omega: dict[str, list[float]] | None = None, placements: tuple[str, ...] = P4) -> Rows:
    """``n`` rows from grid index ``k0``: each sensor turned ``tilt[p]`` deg about world Y, turning at the
    constant ``omega[p]`` (rad/s, sensor frame); still or not."""
    tilt, omega = tilt or {}, omega or {}
    q = {p: np.tile(qm.from_axis_angle([0.0, 1.0, 0.0], tilt.get(p, 0.0) * D), (n, 1)) for p in placements}
    om = {p: np.tile(np.asarray(omega.get(p, [0.0, 0.0, 0.0]), dtype=float), (n, 1)) for p in placements}
    return Rows(np.arange(k0, k0 + n, dtype=np.int64), q, np.zeros((n, ACC_WIDTH)), np.zeros(n),
                np.full(n, still), om)


class Feed:
    """Consecutive rows into one monitor; ``out`` collects everything it returned."""

    def __init__(self, cal: dict[str, SensorCalibration] | None = None, swap: bool = False,
                 placements: tuple[str, ...] = P4, **params: object) -> None:
        self.mon = SlipMonitor(**params)
        self.cal = calibration(placements) if cal is None else cal
        self.swap, self.placements = swap, placements
        self.k = 0
        self.out: list[CalibratedRows] = []

    def __call__(self, n: int, still: bool, chunk: int | None = None, **kw: object) -> None:
        r = rows(self.k, n, still, placements=self.placements, **kw)  # type: ignore[arg-type]
        step = chunk or n
        for a in range(0, n, step):
            self.out += self.mon.update(CalibratedRows(r.slice(a, min(n, a + step)), self.cal, self.swap))
        self.k += n

    def pieces(self) -> list[tuple[int, int]]:
        return [(int(o.rows.k[0]), int(o.rows.k[-1]) + 1) for o in self.out]


def walk_then_stand(f: Feed, tilt: dict[str, float], walk_rows: int = 200, stand_rows: int = 400,
                    chunk: int | None = None, walk: dict | None = None) -> None:
    f(walk_rows, False, chunk=chunk, omega=WALK if walk is None else walk)
    f(stand_rows, True, chunk=chunk, tilt=tilt)
    f(100, False, chunk=chunk, tilt=tilt)


def standing_slips(f: Feed) -> list[tuple[str, float, str]]:
    return [s for s in f.mon.slips_ if s[2] == "standing"]


# -- standing check ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [None, 1, 37])
def test_a_slipped_thigh_is_found_recalibrated_and_the_output_split(chunk: int | None) -> None:
    f = Feed()
    walk_then_stand(f, {"thigh_left": 12.0}, chunk=chunk)
    mon = f.mon
    assert mon.slips_ == [("thigh_left", 2.0, "standing")]
    msg = ("thigh_left: sensor seems to have slipped (standing at 2.0 s reads 12 deg from the calibrated "
           "neutral while the other segments are neutral); recalibrated from this standing period on")
    assert mon.warnings_ == [msg] and mon.messages_ == [msg]
    # rows up to the end of the 3 s standing window keep the old calibration, the rest carry the new one
    rows_total = sum(len(o.rows) for o in f.out)
    assert rows_total == 700
    assert all(o.checked and not o.swap for o in f.out)
    before = [o for o in f.out if o.rows.k[-1] < 500]
    after = [o for o in f.out if o.rows.k[0] >= 500]
    assert len(before) + len(after) == len(f.out)
    assert sum(len(o.rows) for o in before) == 500
    old, new = before[0].calibration["thigh_left"], after[0].calibration["thigh_left"]
    assert all(o.calibration["thigh_left"] is old for o in before)
    assert all(o.calibration["thigh_left"] is new for o in after)
    np.testing.assert_allclose(old.q_segment_in_sensor, NEUTRAL, atol=1e-15)
    assert old.flags == ["slipped"] and new.flags == ["slipped"]
    assert new.quality == pytest.approx(0.7) and old.quality == 1.0
    assert new.reasons == ["slipped; vertical re-measured at 2.0 s"] and old.reasons == []
    # the new calibration reads the tilted sensor as neutral again; its medio-lateral axis (segment Z) stays
    q_tilted = qm.from_axis_angle([0.0, 1.0, 0.0], 12.0 * D)
    assert float(long_axis_inclination(new.segment_quat(q_tilted))) == pytest.approx(0.0, abs=1e-9)
    z_old = qm.rotate(NEUTRAL, np.array([0.0, 0.0, 1.0]))
    z_new = qm.rotate(new.q_segment_in_sensor, np.array([0.0, 0.0, 1.0]))
    assert float(np.dot(z_old, z_new)) == pytest.approx(1.0, abs=1e-12)
    y_new = qm.rotate(new.q_segment_in_sensor, np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(y_new, [-math.sin(12.0 * D), 0.0, math.cos(12.0 * D)], atol=1e-12)
    for p in ("pelvis", "thigh_right", "lumbar_upper"):
        assert after[0].calibration[p] is before[0].calibration[p] and after[0].calibration[p].flags == []
    assert mon.calibration_ is not None and mon.calibration_["thigh_left"] is new


def test_without_recalibration_only_flags_and_warns() -> None:
    f = Feed(recalibrate=False)
    walk_then_stand(f, {"thigh_right": 12.0})
    assert f.mon.slips_ == [("thigh_right", 2.0, "standing")]
    assert f.mon.warnings_ == [
        "thigh_right: sensor seems to have slipped (standing at 2.0 s reads 12 deg from the calibrated "
        "neutral while the other segments are neutral)"]
    cal = f.out[-1].calibration["thigh_right"]
    assert cal.flags == ["slipped"] and cal.reasons == [] and cal.quality == 1.0
    np.testing.assert_allclose(cal.q_segment_in_sensor, NEUTRAL, atol=1e-15)
    assert f.pieces() == [(0, 200), (200, 500), (500, 600), (600, 700)]


def test_quality_never_drops_below_zero() -> None:
    f = Feed(cal=calibration(quality=0.2))
    walk_then_stand(f, {"thigh_left": 12.0})
    assert f.out[-1].calibration["thigh_left"].quality == 0.0


def test_a_flag_is_added_once() -> None:
    cal = calibration()
    cal["thigh_left"].flags.append("slipped")
    f = Feed(cal=cal, recalibrate=False)
    walk_then_stand(f, {"thigh_left": 12.0})
    assert f.mon.calibration_ is not None and f.mon.calibration_["thigh_left"].flags == ["slipped"]
    assert len(f.mon.slips_) == 1


@pytest.mark.parametrize(
    "tilt,slipped",
    [
        ({"thigh_left": 10.2}, True),  # more than 10 deg from neutral
        ({"thigh_left": 9.8}, False),
        ({"thigh_left": 12.0, "pelvis": 4.9}, True),  # pelvis within 5 deg of neutral
        ({"thigh_left": 12.0, "pelvis": 5.1}, False),
        ({"thigh_left": 12.0, "lumbar_upper": 4.9}, True),  # the others agree with neutral
        ({"thigh_left": 12.0, "lumbar_upper": 5.1}, False),
        ({"thigh_left": 12.0, "thigh_right": 12.0}, False),  # two off: not one slipped sensor
        ({"pelvis": 12.0}, False),  # the pelvis itself is the reference
    ],
)
def test_standing_check_limits(tilt: dict[str, float], slipped: bool) -> None:
    f = Feed()
    walk_then_stand(f, tilt)
    assert standing_slips(f) == ([("thigh_left", 2.0, "standing")] if slipped else [])
    if not slipped:
        assert f.mon.warnings_ == [] and f.pieces() == [(0, 200), (200, 500), (500, 600), (600, 700)]


@pytest.mark.parametrize(
    "placements,slipped",
    [
        (("pelvis", "thigh_left", "thigh_right"), True),  # three sensors
        (("pelvis", "thigh_left"), False),  # two: nothing to compare with
        (("thigh_left", "thigh_right", "lumbar_upper"), False),  # no pelvis
    ],
)
def test_standing_check_needs_the_pelvis_and_three_sensors(placements: tuple[str, ...],
                                                           slipped: bool) -> None:
    f = Feed(placements=placements)
    walk_then_stand(f, {"thigh_left": 12.0})
    assert [s[0] for s in standing_slips(f)] == (["thigh_left"] if slipped else [])


@pytest.mark.parametrize(
    "walk_rows,walk,slipped",
    [
        (100, WALK, True),  # 1 s of stepping just before the stop
        (99, WALK, False),
        (200, {"thigh_left": [0.81, 0.0, 0.0], "thigh_right": [0.0, 0.81, 0.0]}, True),  # over 0.8 rad/s
        (200, {"thigh_left": [0.79, 0.0, 0.0], "thigh_right": [1.0, 0.0, 0.0]}, False),
        (200, {"thigh_left": [1.0, 0.0, 0.0]}, False),  # every worn thigh must turn
    ],
)
def test_the_still_period_must_follow_walking(walk_rows: int, walk: dict, slipped: bool) -> None:
    f = Feed()
    f(300, False)  # not walking
    f(walk_rows, False, omega=walk)
    f(400, True, tilt={"thigh_left": 12.0})
    assert len(standing_slips(f)) == int(slipped)


@pytest.mark.parametrize("chunk", [None, 1])
@pytest.mark.parametrize("pause,slipped", [(399, True), (400, False)])
def test_walking_counts_within_5_s_before_the_stop(pause: int, slipped: bool, chunk: int | None) -> None:
    """100 rows of walking (rows 0-99), then ``pause`` rows neither walking nor still: all 100 must lie in the
    500 rows up to the first still row ``k0`` (rows k0 - 499 .. k0)."""
    f = Feed()
    f(100, False, chunk=chunk, omega=WALK)
    f(pause, False, chunk=chunk)
    f(400, True, chunk=chunk, tilt={"thigh_left": 12.0})
    assert len(standing_slips(f)) == int(slipped)


def test_only_walking_thighs_that_are_worn_count() -> None:
    f = Feed(placements=("pelvis", "thigh_left", "lumbar_upper"))
    walk_then_stand(f, {"thigh_left": 12.0}, walk={"thigh_left": [1.0, 0.0, 0.0]})
    assert [s[0] for s in standing_slips(f)] == ["thigh_left"]


def test_a_still_period_without_walking_is_not_checked() -> None:
    f = Feed()
    f(200, False)
    f(400, True, tilt={"thigh_left": 12.0})
    assert f.mon.slips_ == [] and f.mon.warnings_ == []


def test_the_still_period_start_is_carried_across_chunks() -> None:
    """Walking, a still period that starts, a break, then still again: only the first period began after
    walking; a chunk boundary inside a still period does not start a new one."""
    f = Feed()
    f(200, False, omega=WALK)
    f(150, True, tilt={"thigh_left": 12.0})
    f(350, True, tilt={"thigh_left": 12.0})
    assert [s[1] for s in standing_slips(f)] == [2.0]
    g = Feed()
    g(200, False, omega=WALK)
    g(100, True)
    g(10, False)
    g(600, False)  # more than 5 s after the walk
    g(400, True, tilt={"thigh_left": 12.0})
    assert standing_slips(g) == []


def test_swapped_thighs_read_the_other_sensor() -> None:
    assert source_placement("thigh_left", True) == "thigh_right"
    assert source_placement("thigh_right", True) == "thigh_left"
    assert source_placement("thigh_left", False) == "thigh_left"
    assert source_placement("pelvis", True) == "pelvis"
    f = Feed(swap=True)
    walk_then_stand(f, {"thigh_right": 12.0})  # the right sensor carries the left thigh
    assert f.mon.slips_ == [("thigh_left", 2.0, "standing")]
    assert all(o.swap for o in f.out)
    new = f.out[-1].calibration["thigh_left"]
    q_tilted = qm.from_axis_angle([0.0, 1.0, 0.0], 12.0 * D)
    assert float(long_axis_inclination(new.segment_quat(q_tilted))) == pytest.approx(0.0, abs=1e-9)


def test_swapped_walking_is_read_from_the_other_sensor() -> None:
    """Only the left thigh calibrated, its data on the right sensor: that sensor's steps and tilt count."""
    f = Feed(cal=calibration(("pelvis", "thigh_left", "lumbar_upper")), swap=True)
    walk_then_stand(f, {"thigh_right": 12.0}, walk={"thigh_right": [1.0, 0.0, 0.0]})
    assert standing_slips(f) == [("thigh_left", 2.0, "standing")]
    g = Feed(cal=calibration(("pelvis", "thigh_left", "lumbar_upper")), swap=False)
    walk_then_stand(g, {"thigh_right": 12.0}, walk={"thigh_right": [1.0, 0.0, 0.0]})
    assert standing_slips(g) == []


def test_swapped_moving_check_reads_the_other_sensor() -> None:
    f = Feed(swap=True)
    turning(f, 900, 0.0)
    turning(f, 900, 0.0, 12.0)  # the right sensor turns on the leg: the left thigh's
    assert f.mon.slips_ == [("thigh_left", pytest.approx(17.99), "moving")]


def test_a_second_standing_window_is_checked_after_a_recalibration() -> None:
    f = Feed(recalibrate=False)
    walk_then_stand(f, {"thigh_left": 12.0})
    walk_then_stand(f, {"thigh_left": 12.0})
    assert [s[1] for s in standing_slips(f)] == [2.0, 9.0]


# -- pass-through --------------------------------------------------------------------------------------------
def test_rows_without_calibration_or_empty_pass_unchanged() -> None:
    mon = SlipMonitor()
    raw = CalibratedRows(rows(0, 10, False), None)
    assert mon.update(raw) == [raw] and mon.update(raw)[0] is raw
    empty = CalibratedRows(Rows.empty(list(P4)), calibration())
    assert mon.update(empty)[0] is empty
    assert mon.calibration_ is None


def test_unchecked_rows_pass_with_the_first_calibration() -> None:
    mon = SlipMonitor()
    first, later = calibration(), calibration()
    r = rows(0, 10, True)
    (out,) = mon.update(CalibratedRows(r, first, True, False))
    assert out.rows is r and out.calibration == first and out.calibration is not first
    assert out.swap and not out.checked
    (out2,) = mon.update(CalibratedRows(rows(10, 10, True), later, False, False))
    assert out2.calibration is out.calibration and out2.swap
    assert mon.calibration_ is out.calibration


def test_finish_ends_the_stream() -> None:
    mon = SlipMonitor()
    assert mon.finish() == []
    with pytest.raises(RuntimeError, match=r"^update\(\) after finish\(\)$"):
        mon.update(CalibratedRows(rows(0, 10, False), calibration()))


def test_checked_rows_are_emitted_whole_when_nothing_is_found() -> None:
    f = Feed()
    f(250, False, omega=WALK)
    f(50, True)
    assert f.pieces() == [(0, 250), (250, 300)]
    assert all(o.calibration is not None and o.checked for o in f.out)
    assert f.mon.walk_offsets_ == [] and f.mon.slips_ == []


def test_parameters() -> None:
    mon = SlipMonitor()
    assert mon.rate_hz == 100.0 and isinstance(mon.rate_hz, float)
    assert mon.min_standing_s == 3.0 and mon.recalibrate
    assert mon.slip_threshold_rad == pytest.approx(10 * D) and mon.slip_reference_rad == pytest.approx(5 * D)
    assert mon.walk_check_s == 3.0 and mon.walk_axis_slip_rad == pytest.approx(9 * D)
    assert mon.motion_gyr_rad_s == 0.8 and mon.gait_window_s == 5.0 and mon.gait_min_s == 1.0
    assert mon.calibration_ is None and mon.walk_offsets_ == [] and mon.warnings_ == []
    assert mon.messages_ == [] and mon.slips_ == []


def test_a_shorter_standing_window_at_a_lower_rate() -> None:
    f = Feed(rate_hz=50.0, min_standing_s=2.0)
    f(100, False, omega=WALK)  # 2 s of walking at 50 Hz (50 rows needed)
    f(150, True, tilt={"thigh_left": 12.0})
    f(10, False)
    assert f.mon.slips_ == [("thigh_left", 2.0, "standing")]
    assert f.pieces()[:3] == [(0, 100), (100, 200), (200, 250)]


# -- moving check --------------------------------------------------------------------------------------------
def axis(deg: float, speed: float = 2.0) -> list[float]:
    """A turning speed about an axis ``deg`` away from the sensor's X axis (in its X-Z plane)."""
    return [speed * math.cos(deg * D), 0.0, speed * math.sin(deg * D)]


def turning(f: Feed, n: int, left_deg: float, right_deg: float = 0.0, chunk: int | None = None) -> None:
    f(n, False, chunk=chunk, omega={"thigh_left": axis(left_deg), "thigh_right": axis(right_deg)})


@pytest.mark.parametrize("chunk", [None, 1, 113])
def test_an_axis_that_turns_on_the_leg_is_found_after_three_windows(chunk: int | None) -> None:
    f = Feed()
    turning(f, 900, 0.0, chunk=chunk)  # three 3 s windows: the reference
    assert f.mon.walk_offsets_ == []
    turning(f, 900, 12.0, chunk=chunk)
    offsets = f.mon.walk_offsets_
    assert sorted((p, round(t, 9)) for p, t, _ in offsets) == [
        ("thigh_left", 11.99), ("thigh_left", 14.99), ("thigh_left", 17.99),
        ("thigh_right", 11.99), ("thigh_right", 14.99), ("thigh_right", 17.99)]
    for p, _, dev in offsets:
        assert dev == pytest.approx(12.0 * D if p == "thigh_left" else 0.0, abs=1e-6)
    assert f.mon.slips_ == [("thigh_left", pytest.approx(17.99), "moving")]
    assert f.mon.warnings_ == [
        "thigh_left: sensor seems to have turned on the leg (its rotation axis while moving changed by 12 "
        "deg, by 18.0 s); angles are unreliable until the next standing-still period recalibrates it"]
    assert f.mon.messages_ == f.mon.warnings_
    assert f.out[-1].calibration["thigh_left"].flags == ["slipped"]
    assert f.out[-1].calibration["thigh_right"].flags == []
    turning(f, 900, 12.0, chunk=chunk)
    assert len(f.mon.slips_) == 1  # warned once


@pytest.mark.parametrize("deg,slipped", [(9.3, True), (8.7, False)])
def test_moving_axis_limit(deg: float, slipped: bool) -> None:
    f = Feed()
    turning(f, 900, 0.0)
    turning(f, 900, deg)
    assert [s[0] for s in f.mon.slips_] == (["thigh_left"] if slipped else [])


def test_three_deviating_windows_in_a_row() -> None:
    f = Feed()
    turning(f, 900, 0.0)
    turning(f, 600, 12.0)
    turning(f, 300, 0.0)  # back: the count restarts
    turning(f, 600, 12.0)
    assert f.mon.slips_ == []
    turning(f, 300, 12.0)
    assert [s[0] for s in f.mon.slips_] == ["thigh_left"]


def test_the_reference_is_the_mean_of_three_windows_either_sign() -> None:
    """Reference windows about +X, -X (the same axis, opposite turning) and about an axis 6 deg off: the mean
    axis is about 2 deg off X (the mean of the unit axes), and so is a later window about X."""
    f = Feed()
    f(300, False, omega={"thigh_left": axis(0.0), "thigh_right": axis(0.0)})
    f(300, False, omega={"thigh_left": axis(180.0), "thigh_right": axis(0.0)})
    f(300, False, omega={"thigh_left": axis(6.0), "thigh_right": axis(0.0)})
    f(300, False, omega={"thigh_left": axis(0.0), "thigh_right": axis(0.0)})
    (dev,) = [d for p, _, d in f.mon.walk_offsets_ if p == "thigh_left"]
    assert dev == pytest.approx(math.atan2(math.sin(6 * D), 2 + math.cos(6 * D)), abs=1e-9)


def test_only_fast_samples_fill_the_windows() -> None:
    f = Feed()
    f(299, False, omega={"thigh_left": axis(0.0, 0.81), "thigh_right": axis(0.0)})
    f(500, False, omega={"thigh_left": axis(0.0, 0.79), "thigh_right": axis(0.0)})  # too slow: left out
    f(601, False, omega={"thigh_left": axis(0.0, 0.81), "thigh_right": axis(0.0)})
    f(300, False, omega={"thigh_left": axis(20.0, 0.81), "thigh_right": axis(0.0)})
    left = [(round(t, 9), d) for p, t, d in f.mon.walk_offsets_ if p == "thigh_left"]
    # left: 299 + 1 fast rows end the first window at row 799, then 1099, 1399 (the reference), 1699
    assert [t for t, _ in left] == [16.99]
    assert left[0][1] == pytest.approx(20 * D, abs=1e-9)
    right = [round(t, 9) for p, t, _ in f.mon.walk_offsets_ if p == "thigh_right"]
    assert right == [11.99, 14.99]


def test_windows_that_are_not_clearly_planar_are_skipped() -> None:
    """Half the samples about X, half about Z: two equal eigenvalues, not one axis; 1:3.9 or 1:4.1 mixes."""
    f = Feed()
    turning(f, 900, 0.0)
    f(150, False, omega={"thigh_left": axis(0.0), "thigh_right": axis(0.0)})
    f(150, False, omega={"thigh_left": axis(90.0), "thigh_right": axis(0.0)})
    assert [p for p, _, _ in f.mon.walk_offsets_] == ["thigh_right"]
    for ratio, counted in ((4.1, True), (3.9, False)):
        g = Feed()
        turning(g, 900, 0.0)
        n_x = round(300 * ratio / (1 + ratio))
        g(n_x, False, omega={"thigh_left": axis(0.0), "thigh_right": axis(0.0)})
        g(300 - n_x, False, omega={"thigh_left": axis(90.0), "thigh_right": axis(0.0)})
        assert ("thigh_left" in [p for p, _, _ in g.mon.walk_offsets_]) == counted


def test_a_thigh_without_calibration_is_not_watched_while_moving() -> None:
    f = Feed(placements=("pelvis", "thigh_left"))
    f(1200, False, omega={"thigh_left": axis(0.0)})
    assert [p for p, _, _ in f.mon.walk_offsets_] == ["thigh_left"]


def test_recalibration_restarts_the_moving_reference() -> None:
    f = Feed()
    turning(f, 900, 0.0)
    turning(f, 300, 0.0)
    assert len([1 for p, _, _ in f.mon.walk_offsets_ if p == "thigh_left"]) == 1
    walk_then_stand(f, {"thigh_left": 12.0})  # a standing slip: the left reference starts again
    turning(f, 900, 30.0)
    left = [d for p, _, d in f.mon.walk_offsets_ if p == "thigh_left"]
    right = [d for p, _, d in f.mon.walk_offsets_ if p == "thigh_right"]
    assert len(left) == 1 and len(right) > len(left)
    assert f.mon.slips_ == [("thigh_left", 14.0, "standing")]


def test_a_recalibrated_thigh_can_be_warned_again_while_moving() -> None:
    f = Feed()
    turning(f, 900, 0.0)
    turning(f, 900, 15.0)
    assert [s[2] for s in f.mon.slips_] == ["moving"]
    walk_then_stand(f, {"thigh_left": 12.0})
    turning(f, 900, 0.0)
    turning(f, 900, 15.0)
    assert [s[2] for s in f.mon.slips_] == ["moving", "standing", "moving"]


def test_monitor_state_does_not_leak_between_copies() -> None:
    f = Feed()
    g = copy.deepcopy(f)
    walk_then_stand(f, {"thigh_left": 12.0})
    assert g.mon.slips_ == [] and g.cal["thigh_left"].flags == []


# -- more limits, exact ties and whole-session chunks ------------------------------------------------------
def test_a_whole_session_in_one_chunk_gives_the_same_slips() -> None:
    """Walking, a standing window with a slipped thigh, then 70 short still blips, in one chunk or in
    small ones: every still period's start stays known until the chunk's windows are checked."""
    parts = [rows(0, 200, False, omega=WALK), rows(200, 400, True, tilt={"thigh_left": 12.0})]
    for i in range(70):
        parts += [rows(600 + 2 * i, 1, True), rows(601 + 2 * i, 1, False)]
    whole = Rows.concat(parts)
    mon = SlipMonitor()
    out = mon.update(CalibratedRows(whole, calibration()))
    assert mon.slips_ == [("thigh_left", 2.0, "standing")]
    assert [(int(o.rows.k[0]), len(o.rows)) for o in out] == [(0, 500), (500, 240)]
    small = SlipMonitor()
    for a in range(0, len(whole), 50):
        small.update(CalibratedRows(whole.slice(a, a + 50), calibration()))
    assert small.slips_ == mon.slips_


def test_two_standing_windows_in_one_chunk() -> None:
    parts = [rows(0, 200, False, omega=WALK), rows(200, 400, True, tilt={"thigh_left": 12.0}),
             rows(600, 200, False, omega=WALK, tilt={"thigh_left": 12.0}),
             rows(800, 400, True, tilt={"thigh_left": 12.0}), rows(1200, 50, False)]
    mon = SlipMonitor(recalibrate=False)
    out = mon.update(CalibratedRows(Rows.concat(parts), calibration()))
    assert [s[1] for s in mon.slips_] == [2.0, 8.0]
    assert [(int(o.rows.k[0]), int(o.rows.k[-1]) + 1) for o in out] == [(0, 500), (500, 1100), (1100, 1250)]


def test_a_still_row_turning_fast_counts_as_walking() -> None:
    """99 walking rows, then a still period whose first row still turns fast: 100 rows up to and with it."""
    f = Feed()
    f(99, False, omega=WALK)
    f(1, True, omega=WALK, tilt={"thigh_left": 12.0})
    f(400, True, tilt={"thigh_left": 12.0})
    assert standing_slips(f) == [("thigh_left", 0.99, "standing")]


def test_walking_after_the_stop_does_not_count() -> None:
    """60 walking rows before the stop and 100 after it, all in one chunk: only the 60 before count."""
    parts = [rows(0, 60, False, omega=WALK), rows(60, 400, True, tilt={"thigh_left": 12.0}),
             rows(460, 100, False, omega=WALK)]
    mon = SlipMonitor()
    mon.update(CalibratedRows(Rows.concat(parts), calibration()))
    assert mon.slips_ == []


def test_turning_at_exactly_the_motion_limit_is_not_fast() -> None:
    f = Feed()
    walk_then_stand(f, {"thigh_left": 12.0}, walk={"thigh_left": [0.8, 0.0, 0.0], "thigh_right": [0.8, 0, 0]})
    assert f.mon.slips_ == []
    g = Feed()
    g(1200, False, omega={"thigh_left": [0.8, 0.0, 0.0], "thigh_right": [0.8, 0.0, 0.0]})
    assert g.mon.walk_offsets_ == []


def test_without_thighs_only_the_other_sensors_are_checked() -> None:
    f = Feed(cal=calibration(("pelvis", "lumbar_upper")))
    walk_then_stand(f, {"lumbar_upper": 12.0})
    assert f.mon.slips_ == [] and sum(len(o.rows) for o in f.out) == 700


def test_exact_standing_limits() -> None:
    """Limits set to the very inclination a tilt reads: the slip limit is exclusive (more than), the
    reference limits inclusive (within)."""
    seg = calibration()["thigh_left"].segment_quat(qm.from_axis_angle([0.0, 1.0, 0.0], 12.0 * D))
    at12 = float(long_axis_inclination(seg))
    f = Feed(slip_threshold_rad=at12)
    walk_then_stand(f, {"thigh_left": 12.0})
    assert standing_slips(f) == []
    g = Feed(slip_threshold_rad=at12, slip_reference_rad=at12)  # 12 deg is now also "neutral"
    walk_then_stand(g, {"thigh_left": 13.0, "pelvis": 12.0, "lumbar_upper": 12.0})
    assert [s[0] for s in standing_slips(g)] == ["thigh_left"]


def test_a_thigh_missing_from_the_calibration_is_skipped_not_the_rest() -> None:
    f = Feed(cal=calibration(("pelvis", "thigh_right", "lumbar_upper")))
    turning(f, 900, 0.0, 0.0)
    turning(f, 900, 0.0, 12.0)
    assert [s[0] for s in f.mon.slips_] == ["thigh_right"]


def test_a_planar_window_at_exactly_four_to_one() -> None:
    """240 samples about X and 60 about Z: eigenvalues 3.2 and 0.8, exactly 4 to 1: still clearly planar."""
    f = Feed()
    turning(f, 900, 0.0)
    f(240, False, omega={"thigh_left": [2.0, 0.0, 0.0], "thigh_right": axis(0.0)})
    f(60, False, omega={"thigh_left": [0.0, 0.0, 2.0], "thigh_right": axis(0.0)})
    assert [p for p, _, _ in f.mon.walk_offsets_].count("thigh_left") == 1


def test_a_skipped_window_does_not_stop_the_later_ones_of_a_chunk() -> None:
    f = Feed()
    turning(f, 900, 0.0)
    parts = [rows(900, 150, False, omega={"thigh_left": axis(0.0), "thigh_right": axis(0.0)}),
             rows(1050, 150, False, omega={"thigh_left": [0.0, 0.0, 2.0], "thigh_right": axis(0.0)}),
             rows(1200, 300, False, omega={"thigh_left": axis(0.0), "thigh_right": axis(0.0)})]
    f.mon.update(CalibratedRows(Rows.concat(parts), f.cal))
    assert [round(t, 9) for p, t, _ in f.mon.walk_offsets_ if p == "thigh_left"] == [14.99]


def test_the_moving_limit_is_exclusive() -> None:
    f = Feed()
    turning(f, 900, 0.0)
    turning(f, 900, 12.0)
    dev = next(d for p, _, d in f.mon.walk_offsets_ if p == "thigh_left")
    g = Feed(walk_axis_slip_rad=dev)
    turning(g, 900, 0.0)
    turning(g, 900, 12.0)
    assert g.mon.slips_ == []
    h = Feed(walk_axis_slip_rad=math.nextafter(dev, 0.0))
    turning(h, 900, 0.0)
    turning(h, 900, 12.0)
    assert [s[2] for s in h.mon.slips_] == ["moving"]


def test_a_thigh_already_flagged_is_not_flagged_twice_while_moving() -> None:
    cal = calibration()
    cal["thigh_left"].flags.append("slipped")
    f = Feed(cal=cal)
    turning(f, 900, 0.0)
    turning(f, 900, 12.0)
    assert [s[2] for s in f.mon.slips_] == ["moving"] and cal["thigh_left"].flags == ["slipped"]


@pytest.mark.parametrize("start", [30.0, 120.0])
def test_reference_windows_are_aligned_with_the_first(start: float) -> None:
    """Reference windows about axes at ``start``, ``start`` and ``start + 12`` deg, then one at ``start``:
    whichever sign each window's axis comes out with, the reference is their mean direction, about 4 deg
    from the first."""
    f = Feed()
    for deg in (start, start, start + 12.0, start):
        f(300, False, omega={"thigh_left": axis(deg), "thigh_right": axis(0.0)})
    (dev,) = [d for p, _, d in f.mon.walk_offsets_ if p == "thigh_left"]
    assert dev == pytest.approx(math.atan2(math.sin(12 * D), 2 + math.cos(12 * D)), abs=1e-9)


@pytest.mark.parametrize("deg", [0.0, 14.0, 21.0, 56.0, 63.0])
def test_a_constant_axis_reads_no_change(deg: float) -> None:
    """The same axis in every window: 0 deg off the reference (also when rounding puts the cosine a hair
    above 1)."""
    f = Feed()
    turning(f, 1500, deg, deg)
    devs = [d for _, _, d in f.mon.walk_offsets_]
    assert len(devs) == 4 and all(d == pytest.approx(0.0, abs=1e-6) for d in devs)


# -- a live step's few rows (the small path) against large chunks ------------------------------------------
SLOW3 = [0.1, 0.1, 0.1]
NAN = float("nan")
LIM = 0.7 * (1 + 1e-12)  # just above the limit: within the band where the Python sum defers to numpy


@pytest.mark.parametrize("chunk", [None, 3])
@pytest.mark.parametrize(
    "walk,placements,slipped",
    [
        ({"thigh_left": [0.5, 0.6, 0.3], "thigh_right": [0.3, -0.6, 0.5]}, P4, True),  # 0.84 rad/s > 0.7
        ({"thigh_left": [0.4, 0.4, 0.3], "thigh_right": [0.5, 0.6, 0.3]}, P4, False),  # left 0.64 < 0.7
        ({"thigh_left": [0.5, 0.6, 0.3], "thigh_right": SLOW3}, P4, False),  # both thighs must turn fast
        ({"thigh_left": [0.5, 0.6, 0.3], "thigh_right": SLOW3}, ("pelvis", "thigh_left", "lumbar_upper"),
         True),  # a thigh not worn does not count
        ({"thigh_left": [LIM, 0.0, 0.0], "thigh_right": [0.0, 0.0, -LIM]}, P4, True),
        ({"thigh_left": [0.7, 0.0, 0.0], "thigh_right": [0.0, 0.7, 0.0]}, P4, False),  # the limit: not fast
        ({"thigh_left": [NAN, 1.0, 0.0], "thigh_right": [0.5, 0.6, 0.3]}, P4, False),  # NaN: not fast
    ],
)
def test_walking_before_the_stop_at_another_motion_limit(
    walk: dict, placements: tuple[str, ...], slipped: bool, chunk: int | None
) -> None:
    """``motion_gyr_rad_s=0.7``: walking is every worn thigh turning faster than 0.7 rad/s (its whole
    angular velocity, all three components), the same in a live step's few rows and in large chunks."""
    f = Feed(placements=placements, motion_gyr_rad_s=0.7)
    f(150, False, chunk=chunk, omega=walk)
    f(400, True, chunk=chunk, tilt={"thigh_left": 12.0})
    assert [s[0] for s in standing_slips(f)] == (["thigh_left"] if slipped else [])


def test_a_still_period_starting_on_the_last_row_of_a_large_chunk() -> None:
    """100 rows of walking, then moving rows up to row 498 and the first still row 499 as the last of a
    20-row chunk: the still period starts there (walking within 5 s before: exactly 100 rows), not one row
    later in the next chunk (99 rows: not walking), so that a second standing window of the same still
    period, after the recalibration, is checked too."""
    f = Feed()
    f(100, False, omega=WALK)
    f(380, False)
    tilt = {"thigh_left": 12.0}
    step = Rows.concat([rows(480, 19, False), rows(499, 1, True, tilt=tilt)])
    f.out += f.mon.update(CalibratedRows(step, f.cal, f.swap))
    f.k = 500
    f(400, True, tilt=tilt)
    assert [s[0] for s in standing_slips(f)] == ["thigh_left"]
    f(400, True, tilt={"thigh_left": 24.0})  # 12 deg from the new calibration
    assert [(p, round(t, 9)) for p, t, _ in standing_slips(f)] == [("thigh_left", 4.99), ("thigh_left", 7.99)]


@pytest.mark.parametrize("chunk", [None, 3])
def test_the_right_thigh_is_watched_while_the_left_one_rests(chunk: int | None) -> None:
    f = Feed()
    still_left = {"thigh_left": [0.0, 0.0, 0.0]}
    f(900, False, chunk=chunk, omega={**still_left, "thigh_right": axis(0.0)})
    f(900, False, chunk=chunk, omega={**still_left, "thigh_right": axis(12.0)})
    assert {p for p, _, _ in f.mon.walk_offsets_} == {"thigh_right"}
    assert f.mon.slips_ == [("thigh_right", pytest.approx(17.99), "moving")]


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_a_last_bit_over_the_limit_squared_is_decided_by_numpy_in_live_steps(chunk: int | None) -> None:
    """|w| = (0.5, sqrt(ulp(0.25)), 0) at ``motion_gyr_rad_s=0.5``: its Python sum of squares is one ulp above
    0.25, but numpy's sqrt of its sum is exactly 0.5, not faster than the limit. Too close to call from the
    Python sum: a live step's rows decide as a large chunk does (not walking, so no slip check)."""
    w = [0.5, math.sqrt(math.ulp(0.25)), 0.0]
    assert w[0] * w[0] + w[1] * w[1] > 0.25 and math.sqrt(float(np.dot(w, w))) == 0.5
    f = Feed(motion_gyr_rad_s=0.5)
    f(150, False, chunk=chunk, omega={"thigh_left": w, "thigh_right": w})
    f(400, True, chunk=chunk, tilt={"thigh_left": 12.0})
    assert standing_slips(f) == []

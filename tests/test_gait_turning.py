"""Turning strides: the pelvis' yaw rate (angles.vertical_rate, AngleSeries.pelvis_yaw_rate), each stride's
heading change and turning flag (processing.gait), the summary's straight-walking keys, and the pipeline
end to end on a virtual walk with U-turns."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.angles import compute_angles, vertical_rate
from hipback.processing.calibration import angular_velocity
from hipback.processing.gait import Stride, StrideDetector, detect_strides
from hipback.processing.summary import build_summary, is_straight
from hipback.processing.types import AngleSeries
from tests.test_gait import FS, run_chunks, walking

DEG = math.pi / 180.0


def with_yaw(angles: AngleSeries, yaw: np.ndarray | None) -> AngleSeries:
    return dataclasses.replace(angles, pelvis_yaw_rate=yaw)


def turn_rate(t: np.ndarray, t0: float, t1: float, rate_deg_s: float) -> np.ndarray:
    """Yaw rate (rad/s): ``rate_deg_s`` in [t0, t1), 0 elsewhere."""
    return np.where((t >= t0) & (t < t1), rate_deg_s * DEG, 0.0)


def records(strides: list[Stride]) -> list[str]:
    return [repr(dataclasses.astuple(s)) for s in strides]


# -- the yaw rate -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tilt_deg", [0.0, 25.0, -70.0])
def test_vertical_rate_is_the_turn_about_the_world_vertical_counter_clockwise_positive(tilt_deg):
    # a sensor tilted about its own x axis, turning about the world vertical at +0.8 rad/s (counter-clockwise
    # seen from above), then at -0.5 rad/s
    rate = 100.0
    n = 200
    yaw = np.concatenate([0.8 * np.arange(n) / rate, 0.8 * (n - 1) / rate - 0.5 * np.arange(1, n + 1) / rate])
    q_turn = qm.from_axis_angle(np.array([0.0, 0.0, 1.0]), yaw)
    q_tilt = qm.from_axis_angle(np.array([1.0, 0.0, 0.0]), np.full(len(yaw), tilt_deg * DEG))
    q = qm.multiply(q_turn, q_tilt)  # sensor-to-world: tilted, then turned about the world's Z
    w = angular_velocity(q, rate)
    v = vertical_rate(q, w)
    assert math.isnan(v[0])  # no previous orientation
    assert v[1:n] == pytest.approx(np.full(n - 1, 0.8), abs=1e-4)
    assert v[n + 1 :] == pytest.approx(np.full(n - 1, -0.5), abs=1e-4)


def test_vertical_rate_ignores_rotations_about_horizontal_axes():
    rate = 100.0
    ang = 0.6 * np.sin(np.arange(300) / rate * 2 * np.pi)  # pitching back and forth about the world's x
    q = qm.from_axis_angle(np.array([1.0, 0.0, 0.0]), ang)
    v = vertical_rate(q, angular_velocity(q, rate))
    assert np.nanmax(np.abs(v)) < 1e-9
    assert np.max(np.abs(angular_velocity(q, rate)[1:, 0])) > 1.0  # (it did rotate)


def test_the_yaw_rate_reaches_the_angle_series_and_survives_slice_and_concat():
    n = 50
    t = np.arange(n) / FS
    q = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    yaw = np.linspace(-1.0, 1.0, n)
    a = compute_angles(t, {"pelvis": q}, pelvis_yaw_rate=yaw)
    assert np.array_equal(a.pelvis_yaw_rate, yaw)
    assert compute_angles(t, {"pelvis": q}).pelvis_yaw_rate is None
    back = AngleSeries.concat([a.slice(0, 20), a.slice(20, 35), a.slice(35, n)])
    assert np.array_equal(back.pelvis_yaw_rate, yaw)
    # a part without it: NaN there, kept elsewhere
    b = compute_angles(t[:10] + 1.0, {"pelvis": q[:10]})
    mixed = AngleSeries.concat([a, b])
    assert np.array_equal(mixed.pelvis_yaw_rate[:n], yaw) and np.isnan(mixed.pelvis_yaw_rate[n:]).all()
    assert np.isnan(AngleSeries.concat([b, b]).optional("pelvis_yaw_rate")).all()
    assert AngleSeries.concat([b, b]).pelvis_yaw_rate is None


# -- strides -------------------------------------------------------------------------------------------------


def test_strides_in_a_turn_are_flagged_with_their_heading_change_and_straight_ones_are_not():
    angles, _ = walking(duration=40.0, t0=3.0, t1=37.0)
    t = angles.t
    # a left turn at 40 deg/s over 12-18 s, a right one at -40 deg/s over 26-32 s
    yaw = turn_rate(t, 12.0, 18.0, 40.0) + turn_rate(t, 26.0, 32.0, -40.0)
    a = with_yaw(angles, yaw)
    for side in ("left", "right"):
        det = detect_strides(a, side)
        assert len(det.strides) > 20
        for s in det.strides:
            expect = 40.0 * (
                max(0.0, min(s.t_end, 18.0) - max(s.t_start, 12.0))
                - max(0.0, min(s.t_end, 32.0) - max(s.t_start, 26.0))
            )
            # the samples between the contacts: within about a sample's turn of the exact integral
            assert s.heading_change_deg == pytest.approx(expect, abs=40.0 * 1.6 / FS)
            assert s.heading_change_deg == pytest.approx(math.degrees(s.heading_change_rad))
            assert s.turning == (abs(s.heading_change_rad) > 20 * DEG)
        inside_left = [s for s in det.strides if 12.0 <= s.t_start and s.t_end <= 18.0]
        inside_right = [s for s in det.strides if 26.0 <= s.t_start and s.t_end <= 32.0]
        straight = [s for s in det.strides if s.t_end <= 12.0 or 18.0 <= s.t_start <= s.t_end <= 26.0]
        assert inside_left and inside_right and straight
        assert all(s.turning and s.heading_change_rad > 40 * DEG for s in inside_left)  # 1.1 s x 40 deg/s
        assert all(s.turning and s.heading_change_rad < -40 * DEG for s in inside_right)
        assert all(not s.turning and s.heading_change_rad == 0.0 for s in straight)


def test_the_heading_changes_of_a_bout_add_up_to_the_turn_between_its_first_and_last_contact():
    angles, _ = walking(duration=40.0, t0=3.0, t1=37.0, stride_s=1.05)
    t = angles.t
    rate = 0.3  # rad/s throughout: every stride turns
    det = detect_strides(with_yaw(angles, np.full(len(t), rate)), "left")
    by_bout: dict[int, list[Stride]] = {}
    for s in det.strides:
        by_bout.setdefault(s.bout, []).append(s)
    for ss in by_bout.values():
        total = sum(s.heading_change_rad for s in ss)
        assert total == pytest.approx(rate * (ss[-1].t_end - ss[0].t_start), abs=rate * 1.6 / FS)
        for s in ss:
            assert s.heading_change_rad == pytest.approx(rate * s.stride_time_s, abs=rate * 1.6 / FS)


def test_the_threshold_is_a_parameter_and_decides_at_its_value():
    angles, _ = walking(duration=30.0)
    a = with_yaw(angles, np.full(len(angles.t), 20 * DEG))  # about 22 deg per 1.1 s stride
    strides = detect_strides(a, "left").strides
    changes = [abs(s.heading_change_rad) for s in strides]
    assert strides and all(s.turning for s in strides)
    assert not any(s.turning for s in detect_strides(a, "left", turn_threshold_rad=max(changes)).strides)
    lower = detect_strides(a, "left", turn_threshold_rad=min(changes) - 1e-9).strides
    assert all(s.turning for s in lower)
    assert StrideDetector("left").turn_threshold_rad == pytest.approx(20 * DEG)


def test_without_a_yaw_rate_the_heading_is_unknown_and_no_stride_is_turning():
    angles, _ = walking(duration=30.0)
    for a in (angles, with_yaw(angles, np.full(len(angles.t), np.nan))):
        strides = detect_strides(a, "right").strides
        assert strides
        assert all(math.isnan(s.heading_change_rad) and not s.turning for s in strides)
    # a missing yaw sample inside one stride: that stride's heading is unknown, the others' are not
    yaw = np.full(len(angles.t), 1.0)
    mid = detect_strides(angles, "right").strides[5]
    yaw[int(round(0.5 * (mid.t_start + mid.t_end) * FS))] = np.nan
    strides = detect_strides(with_yaw(angles, yaw), "right").strides
    unknown = [s for s in strides if math.isnan(s.heading_change_rad)]
    assert [s.t_start for s in unknown] == [mid.t_start]
    assert not unknown[0].turning
    assert sum(s.turning for s in strides) == len(strides) - 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heading_and_flag_do_not_depend_on_the_chunking(seed):
    angles, _ = walking(duration=40.0, t0=3.0, t1=37.0, noise_deg=0.3, seed=seed)
    rng = np.random.default_rng(seed)
    yaw = turn_rate(angles.t, 14.0, 19.0, 50.0) + 0.05 * rng.standard_normal(len(angles.t))
    a = with_yaw(angles, yaw)
    for side in ("left", "right"):
        whole = records(run_chunks(StrideDetector(side), a, []))
        assert any(s.turning for s in detect_strides(a, side).strides)  # some turning stride
        cuts = sorted(rng.choice(np.arange(1, len(a.t)), size=60, replace=False).tolist())
        assert records(run_chunks(StrideDetector(side), a, cuts)) == whole
        ones = list(range(1, 2000)) + list(range(2000, len(a.t), 7))
        assert records(run_chunks(StrideDetector(side), a, ones)) == whole


# -- summary ----------------------------------------------------------------------------------------------


def _stride(side: str, ext_deg: float, turning: bool, heading_deg: float) -> Stride:
    return Stride(side, 0.0, 1.0, 1.0, 120.0, ext_deg * DEG, 0.5, 40 * DEG, 30 * DEG, 10 * DEG, 0.0, 0.1, 0.2,
                  math.nan, turning=turning, heading_change_rad=heading_deg * DEG)


def test_summary_reports_straight_strides_apart_and_keeps_its_other_keys():
    strides = [
        _stride("left", 10.0, False, 1.0),
        _stride("left", 12.0, False, -3.0),
        _stride("left", 2.0, True, 90.0),
        _stride("left", 4.0, True, -60.0),
        _stride("left", 30.0, False, math.nan),  # heading unknown: not known to be straight
        _stride("right", 8.0, True, 45.0),
    ]
    kw = dict(rate_hz=100.0, holds_per_side=3, hold_s=30.0)
    names = ("pelvic_tilt", "hip_flexion_left", "hip_flexion_right", "lumbar_flexion")
    angles = {n: np.zeros(2) for n in names}
    out = build_summary(np.array([0.0, 10.0]), angles, strides, [], [], {}, **kw)
    assert out["turning_strides_left"] == 2 and out["turning_strides_right"] == 1
    assert out["peak_hip_extension_straight_left_deg"] == pytest.approx(11.0)
    assert out["peak_hip_extension_straight_right_deg"] is None
    assert out["peak_hip_extension_left_deg"] == pytest.approx(10.0)  # all five, as before
    assert out["n_strides_left"] == 5
    unknown = [dataclasses.replace(s, turning=False, heading_change_rad=math.nan) for s in strides]
    before = build_summary(np.array([0.0, 10.0]), angles, unknown, [], [], {}, **kw)
    assert set(out) == set(before)
    assert {k for k in out if "straight" in k or "turning" in k} == {
        "turning_strides_left", "turning_strides_right",
        "peak_hip_extension_straight_left_deg", "peak_hip_extension_straight_right_deg",
    }
    assert before["turning_strides_left"] == 0 and before["peak_hip_extension_straight_left_deg"] is None
    assert {k: v for k, v in out.items() if "straight" not in k and "turning" not in k} == {
        k: v for k, v in before.items() if "straight" not in k and "turning" not in k
    }
    assert is_straight(strides[0]) and not is_straight(strides[2]) and not is_straight(strides[4])


# -- end to end ---------------------------------------------------------------------------------------------


def test_the_pipeline_flags_the_strides_of_a_virtual_walks_u_turns():
    from hipback.processing.pipeline import process_recording
    from hipback.simulator import simulate

    sim = simulate("walk", seed=3)
    res = process_recording(sim.recording)
    a = res.angles
    assert a.pelvis_yaw_rate is not None and np.isfinite(a.pelvis_yaw_rate).mean() > 0.99
    # the integrated yaw rate follows the true pelvis' heading (azimuth of its anterior axis)
    q = sim.truth.segment_quat["pelvis"]
    w, x, y, z = (q[:, i] for i in range(4))
    heading = np.unwrap(np.arctan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z)))
    for s in res.strides:
        ha, hb = np.interp([s.t_start, s.t_end], sim.truth.t, heading)
        assert s.heading_change_rad == pytest.approx(hb - ha, abs=3 * DEG)
    turning = [s for s in res.strides if s.turning]
    assert turning and len(turning) < len(res.strides) / 2
    # every U-turn of the walk (180 deg) is seen: strides turning both ways
    assert any(s.heading_change_rad > 0 for s in turning) and any(s.heading_change_rad < 0 for s in turning)
    assert res.summary["turning_strides_left"] + res.summary["turning_strides_right"] == len(turning)
    assert res.summary["peak_hip_extension_straight_left_deg"] is not None


def test_the_heading_change_spans_the_stride_up_to_the_next_strides_contact():
    # one thigh (contacts by the phase rule) and a stride time that changes from stride to stride: a stride's
    # end is the next stride's start, which the phase of the next, longer or shorter cycle puts some samples
    # away from where this stride's own cycle put it; the heading change must span the reported stride
    from tests.test_gait import gait_cycle, series

    t = np.arange(int(40.0 * FS)) / FS
    stride_s = 1.1 + 0.25 * np.sin(2 * np.pi * t / 5.0)
    phase = np.cumsum(1.0 / stride_s) / FS
    on = (t >= 3.0) & (t < 37.0)
    thigh = np.where(on, gait_cycle(phase - phase[300]), 0.0) * DEG
    rate = 0.5
    a = series(t, thigh_inclination_left=thigh, hip_flexion_left=thigh, pelvic_tilt=np.zeros(len(t)))
    strides = detect_strides(with_yaw(a, np.full(len(t), rate)), "left").strides
    assert len(strides) > 20 and {s.ic_source for s in strides} == {"hip_phase"}
    assert np.ptp([s.stride_time_s for s in strides]) > 0.3
    for s in strides:
        assert s.heading_change_rad == pytest.approx(rate * s.stride_time_s, abs=rate * 1.6 / FS)


def test_the_flag_and_the_heading_change_go_through_the_store_rows_and_back():
    from hipback.ingest.report.source import record_from_row
    from hipback.ingest.results import record_row

    s = _stride("left", 10.0, True, -48.5)
    row = record_row(s)
    assert row["turning"] is True and row["heading_change_deg"] == pytest.approx(-48.5)
    back = record_from_row(Stride, row)
    assert back.turning and back.heading_change_rad == pytest.approx(-48.5 * DEG)
    # a row stored before the flag existed: not turning, heading unknown
    old = {k: v for k, v in row.items() if k not in ("turning", "heading_change_deg")}
    back = record_from_row(Stride, old)
    assert not back.turning and math.isnan(back.heading_change_rad)

"""Posture time for responder profiles (sitting, bent forward, lumbar extension): definitions on constructed
angles, and the measured time against the virtual patient's truth."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hipback.processing.activity import ActivityBout
from hipback.processing.exercises.posture import posture_time
from hipback.processing.types import AngleSeries

DEG = math.pi / 180.0
FS = 50.0


def _series(segments: list[tuple[float, dict[str, float]]], lumbar: bool = True) -> AngleSeries:
    """Piecewise-constant angles (deg): (duration s, {field: value}) in order; missing fields 0."""
    cols: dict[str, list[np.ndarray]] = {f: [] for f in AngleSeries.FIELDS}
    for dur, values in segments:
        n = int(round(dur * FS))
        for f in AngleSeries.FIELDS:
            cols[f].append(np.full(n, values.get(f, 0.0) * DEG))
    arrays = {f: np.concatenate(v) for f, v in cols.items()}
    if not lumbar:
        arrays["lumbar_flexion"] = np.full(arrays["pelvic_tilt"].size, np.nan)
    t = np.arange(arrays["pelvic_tilt"].size) / FS
    return AngleSeries(t=t, **arrays)


STAND: dict[str, float] = {}
BENT = {"hip_flexion_left": 50, "hip_flexion_right": 48, "pelvic_tilt": 45, "pelvis_inclination": 45}
SWING = {"hip_flexion_left": 35, "thigh_inclination_left": 25}  # one hip flexed: a walking swing leg
SIT = {"hip_flexion_left": 90, "hip_flexion_right": 90, "thigh_inclination_left": 88,
       "thigh_inclination_right": 88}
ARCH = {"lumbar_flexion": -15, "pelvic_tilt": 8}
BACK_ROUNDED = {"lumbar_flexion": 35}


def test_each_posture_is_counted_by_its_definition():
    a = _series([(10, STAND), (4, BENT), (5, SWING), (6, SIT), (3, ARCH), (2, BACK_ROUNDED), (1, STAND)])
    bouts = [ActivityBout("standing", 0.0, 19.0), ActivityBout("sitting", 19.0, 25.0)]
    p = posture_time(a, bouts)
    assert p.sitting_s == pytest.approx(6.0)
    # bent forward: both hips flexed while upright (4 s) or the lower back rounded upright (2 s); not the
    # single swing hip, not sitting with both hips at 90 deg
    assert p.bent_forward_s == pytest.approx(6.0, abs=1.5 / FS)
    assert p.lumbar_extension_s == pytest.approx(3.0, abs=1.5 / FS)
    assert p.measured_s == pytest.approx(31.0, abs=1.5 / FS)
    # thresholds are parameters: from 40 deg the 35 deg rounded back no longer counts, the 48-50 deg hips do
    assert posture_time(a, bouts, bend_rad=40 * DEG).bent_forward_s == pytest.approx(4.0, abs=1.5 / FS)


def test_without_the_lumbar_sensor_extension_is_not_guessed():
    a = _series([(10, STAND), (4, BENT), (3, ARCH)], lumbar=False)
    p = posture_time(a, [])
    assert p.lumbar_extension_s is None and p.bent_forward_s == pytest.approx(4.0, abs=1.5 / FS)
    none = posture_time(AngleSeries.empty(), [ActivityBout("sitting", 0.0, 5.0)])
    assert (none.sitting_s, none.bent_forward_s, none.lumbar_extension_s) == (5.0, None, None)


def test_bent_forward_time_of_a_simulated_forward_fold_matches_the_truth():
    """The virtual patient does standing forward folds; the time the pipeline measures bent forward agrees
    with the truth's time with both hips flexed 30 deg or more while standing."""
    from hipback.processing.pipeline import process_recording
    from hipback.simulator import SensorSpec
    from hipback.simulator.exercises import ExerciseSet, simulate_programme

    placements = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")
    sim = simulate_programme([ExerciseSet("standing_forward_fold", None, 2, hold_s=10.0),
                              ExerciseSet("prone_press_up", None, 3)], seed=3,
                             sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in placements])
    res = process_recording(sim.recording)
    p = posture_time(res.angles, res.activity)
    from hipback.processing import quaternion as qm
    from hipback.processing.angles3d import body_angles

    truth = body_angles(sim.truth.t, sim.truth.segment_quat)
    dt = float(np.median(np.diff(sim.truth.t)))
    hips = np.minimum(truth["hip_flexion_left"], truth["hip_flexion_right"])
    cal = (sim.truth.t >= sim.truth.calibration_window[0]) & (sim.truth.t <= sim.truth.calibration_window[1])
    upright = np.ones(hips.size, dtype=bool)
    for side in ("left", "right"):
        # thigh inclination from standing: the world up seen in the thigh frame (heading-free)
        q = sim.truth.segment_quat[f"thigh_{side}"]
        up = qm.rotate(qm.conjugate(q), np.tile([0.0, 0.0, 1.0], (len(q), 1)))
        ref = up[cal].mean(axis=0)
        upright &= np.arccos(np.clip(up @ (ref / np.linalg.norm(ref)), -1, 1)) <= 30 * DEG
    true_bent = float(np.count_nonzero(upright & (hips >= 30 * DEG))) * dt
    assert true_bent > 15.0  # two 10 s folds plus the way down and up
    assert p.bent_forward_s == pytest.approx(true_bent, abs=3.0)
    # the press-ups extend the lower back: measured with the upper-lumbar sensor
    true_ext = float(np.count_nonzero(truth["lumbar_flexion"] <= -10 * DEG)) * dt
    assert true_ext > 3.0 and p.lumbar_extension_s == pytest.approx(true_ext, abs=3.0)


@pytest.mark.parametrize(("cut", "batch_rows"), [(1, 200), (7, 200), (50, 200), (333, 200), (1, 1), (7, 64),
                                                 (50, 10_000), (2, 3)])
def test_fed_in_pieces_the_counter_gives_the_whole_series_result(cut: int, batch_rows: int):
    """A live session feeds its angles as they come: the same times as the whole series gives, also when a
    thigh's angles start late (its rows before count as not measured, as in one piece), with a gap in the
    timeline (a sample stands for the median step, not the gap's)."""
    from hipback.processing.exercises.posture import PostureCounter

    a = _series([(10, STAND), (4, BENT), (5, SWING), (6, SIT), (3, ARCH), (2, BACK_ROUNDED), (1, STAND)])
    late = a.hip_flexion_right.copy()
    late[: int(7 * FS)] = np.nan  # the right thigh calibrated 7 s late
    keep = np.ones(len(a), dtype=bool)
    keep[int(12 * FS): int(14 * FS)] = False  # 2 s without rows
    a = dataclasses.replace(a, hip_flexion_right=late)
    a = AngleSeries(t=a.t[keep], **{f: getattr(a, f)[keep] for f in AngleSeries.FIELDS})
    bouts = [ActivityBout("sitting", 19.0, 25.0)]
    whole = posture_time(a, bouts)
    counter = PostureCounter(batch_rows=batch_rows)
    for i in range(0, len(a), cut):
        counter.update(a.slice(i, min(i + cut, len(a))))
        assert counter.rows_ == min(i + cut, len(a))
    assert counter.result(bouts) == whole
    assert counter.result(bouts) == whole  # asked again (nothing left waiting), the same
    # the late thigh's first 7 s are not measured; the 2 s without rows count for nothing
    assert whole.measured_s == pytest.approx(31.0 - 7.0 - 2.0, abs=1.5 / FS)
    # bent forward: the 4 s with both hips flexed less the 2 s of the gap, and the 2 s of the rounded back
    assert whole.bent_forward_s == pytest.approx(4.0, abs=1.5 / FS)

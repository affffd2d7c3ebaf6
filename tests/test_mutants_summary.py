"""Session summary with exact expectations for every field that does not come from the gait detector:
duration, calibration quality and uncertainty, holds against the prescription, activity time, angle ranges,
the implausible-values warning, and the streaming block around it.

Written for the survivors of ``python bench/mutation.py --group summary``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import numpy as np
import pytest

from hipback.processing.summary import SessionSummary, SummaryInput, build_summary
from hipback.processing.types import AngleSeries

D = math.pi / 180.0
NAMES = ("pelvic_tilt", "hip_flexion_left", "hip_flexion_right", "lumbar_flexion")


def angles(n: int = 101, t0: float = 0.0) -> AngleSeries:
    ramp = np.linspace(0.0, 100.0, n) * D  # 0..100 deg: 2nd and 98th percentiles are 2 and 98 deg
    nan = np.full(n, np.nan)
    return AngleSeries(t=t0 + np.arange(n) * 0.1, hip_flexion_left=ramp, hip_flexion_right=-ramp,
                       pelvic_tilt=ramp / 2, lumbar_flexion=nan, thigh_inclination_left=nan,
                       thigh_inclination_right=nan, pelvis_inclination=nan, pelvis_motion=nan)


HOLDS = [
    NS(side="left", correct_s=30.04, arching=False, peak_hip_extension_rad=12.0 * D),
    NS(side="left", correct_s=29.96, arching=True, peak_hip_extension_rad=14.126 * D),
    NS(side="right", correct_s=5.0, arching=False, peak_hip_extension_rad=math.nan),
]
ACTIVITY = [
    NS(label="walking", duration_s=10.004),
    NS(label="walking", duration_s=5.0),
    NS(activity="sitting", t_start=1.0, t_end=3.5),  # an older row without label/duration_s
]
CALIBRATION = {"pelvis": NS(quality=0.98765, ml_uncertainty_deg=math.nan),
               "thigh_left": NS(quality=0.5, ml_uncertainty_deg=2.345)}
IMPLAUSIBLE = {"hip_flexion_left": {"range": 2, "rate": 0, "share": 0.01},
               "hip_flexion_right": {"range": 0, "rate": 0, "share": 0.0},
               "lumbar_flexion": {"range": 0, "rate": 1, "share": 0.005}}


def summary(**kw: object) -> dict:
    a = angles()
    args = dict(t=a.t, angles={n: getattr(a, n) for n in NAMES}, strides=[], holds=HOLDS, activity=ACTIVITY,
                calibration=CALIBRATION, rate_hz=60.0, holds_per_side=2, hold_s=30.0, implausible=IMPLAUSIBLE)
    args.update(kw)
    return build_summary(**args)  # type: ignore[arg-type]


def test_every_non_gait_field() -> None:
    s = summary()
    assert s["duration_s"] == 10.0 and s["rate_hz"] == 60.0
    assert s["calibration_quality"] == {"pelvis": 0.988, "thigh_left": 0.5}
    assert s["calibration_ml_uncertainty_deg"] == {"thigh_left": 2.3}
    assert s["holds"] == {
        "prescribed_per_side": 2,
        "prescribed_hold_s": 30.0,
        "left": {"count": 2, "completed": 1, "correct_s": [30.0, 30.0], "arching": 1,
                 "peak_hip_extension_deg": 14.13},
        "right": {"count": 1, "completed": 0, "correct_s": [5.0], "arching": 0,
                  "peak_hip_extension_deg": None},
    }
    assert s["activity_s"] == {"walking": 15.0, "sitting": 2.5}
    assert s["hip_flexion_left_range_deg"] == [2.0, 98.0]
    assert s["hip_flexion_right_range_deg"] == [-98.0, -2.0]
    assert s["pelvic_tilt_range_deg"] == [1.0, 49.0]
    assert s["lumbar_flexion_range_deg"] is None
    assert s["implausible"] == IMPLAUSIBLE
    assert s["implausible_warning"] == ("values no joint can reach were removed from hip_flexion_left, "
                                        "lumbar_flexion (sensor or calibration problem)")
    for side in ("left", "right"):
        assert s[f"n_strides_{side}"] == 0 and s[f"doubtful_strides_{side}"] == 0
        assert s[f"peak_hip_extension_{side}_deg"] is None and s[f"compensation_index_{side}"] is None
    assert s["cadence_spm"] is None


def test_no_warning_without_flagged_rows_and_short_sessions() -> None:
    s = summary(implausible={"hip_flexion_left": {"range": 0, "rate": 0, "share": 0.0}})
    assert s["implausible_warning"] is None
    s = summary(implausible=None, t=np.array([4.0]))
    assert s["implausible"] == {} and s["implausible_warning"] is None and s["duration_s"] == 0.0
    assert summary(t=np.array([1.0, 3.456]))["duration_s"] == 2.46


def test_streaming_block_accumulates_and_refuses_late_updates() -> None:
    block = SessionSummary(rate_hz=50.0, holds_per_side=1, hold_s=30.0)
    assert block.update(SummaryInput(angles=angles(51), holds=HOLDS[:1], activity=ACTIVITY[:1],
                                     calibration=CALIBRATION)) == {}
    block.update(SummaryInput(angles=angles(50, t0=5.1), holds=HOLDS[1:], activity=ACTIVITY[1:],
                              implausible=IMPLAUSIBLE))
    block.update(SummaryInput(angles=AngleSeries.empty()))  # keeps the calibration and counts it has
    s = block.finish()
    assert s is block.summary_
    assert s["duration_s"] == pytest.approx(10.0) and s["rate_hz"] == 50.0
    assert s["holds"]["left"]["count"] == 2 and s["holds"]["prescribed_per_side"] == 1
    assert s["activity_s"] == {"walking": 15.0, "sitting": 2.5}
    assert s["calibration_quality"] == {"pelvis": 0.988, "thigh_left": 0.5}
    assert s["implausible"] == IMPLAUSIBLE
    with pytest.raises(RuntimeError, match=r"^update\(\) after finish\(\)$"):
        block.update(SummaryInput(angles=angles(3)))
    empty = SessionSummary().finish()
    assert empty["duration_s"] == 0.0 and empty["rate_hz"] == 100.0
    assert empty["hip_flexion_left_range_deg"] is None
    assert empty["holds"]["prescribed_per_side"] == 3 and empty["holds"]["prescribed_hold_s"] == 30.0


def test_ties_rounding_fallbacks_and_missing_counts() -> None:
    holds = [NS(side="left", correct_s=30.0, arching=False, peak_hip_extension_rad=0.1),
             NS(side="left", correct_s=5.26, arching=False, peak_hip_extension_rad=0.1)]
    activity = [NS(t_start=2.0, t_end=2.5), NS(label="lying", t_end=3.0), NS(label="sitting", t_start=1.0)]
    s = summary(holds=holds, activity=activity,
                implausible={"lumbar_flexion": {"share": 0.0}, "hip_flexion_right": {"rate": 3}})
    assert s["holds"]["left"]["completed"] == 1  # exactly the prescribed time completes the hold
    assert s["holds"]["left"]["correct_s"] == [30.0, 5.3]
    assert s["activity_s"] == {"unknown": 0.5, "lying": 3.0, "sitting": -1.0}
    assert s["implausible_warning"] == ("values no joint can reach were removed from hip_flexion_right "
                                        "(sensor or calibration problem)")

"""Rules of the processing that a hand mutation run showed no test would miss if they were removed.

Each test has a positive control next to the case it guards, so that it fails when the rule goes and
also when the detector stops detecting anything at all.
"""

from __future__ import annotations

import math

import numpy as np

from hipback.processing.gait import detect_strides
from hipback.processing.types import AngleSeries
from tests.test_gait import gait_cycle

DEG = math.pi / 180.0
FS = 100.0
STRIDE_S = 1.1


def _cycles(first_phase: float, last_phase: float, duration: float = 20.0, t0: float = 4.0) -> AngleSeries:
    """Left hip following the gait curve for phases [first_phase, last_phase] from ``t0`` (standing still,
    0 deg, before and after; 0.1 cycle ramps in and out, away from the late-swing flexion peaks at
    phases k + 0.875 that delimit strides)."""
    t = np.arange(int(duration * FS)) / FS
    phase = (t - t0) / STRIDE_S + first_phase
    ramp = np.clip((phase - first_phase) / 0.1, 0, 1) * np.clip((last_phase - phase) / 0.1, 0, 1)
    hip = np.where((phase >= first_phase) & (phase <= last_phase), ramp * gait_cycle(phase), 0.0) * DEG
    nan = np.full(len(t), np.nan)
    fields = {f: nan for f in AngleSeries.FIELDS}
    fields.update(hip_flexion_left=hip, thigh_inclination_left=hip, pelvic_tilt=np.zeros(len(t)),
                  pelvis_inclination=np.zeros(len(t)))
    return AngleSeries(t=t, **fields)


def test_an_isolated_cycle_is_not_gait() -> None:
    # two flexion peaks (phases 0.875 and 1.875): one stride candidate that passes every check of its own
    # (1.1 s, full swing, equal peaks) but has no neighbour to agree with
    assert detect_strides(_cycles(0.6, 2.05), "left").strides == []
    # positive control: three peaks make two candidates that agree with each other, and both are strides
    strides = detect_strides(_cycles(0.6, 3.05), "left").strides
    assert len(strides) == 2
    assert all(abs(s.stride_time_s - STRIDE_S) < 0.02 for s in strides)

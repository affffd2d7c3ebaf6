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


def _varied(durations: list[float], ext_deg: list[float], t0: float = 4.0,
            duration: float = 25.0) -> AngleSeries:
    """Left hip over cycles of the given durations (s) and peak extensions (deg), one value per cycle; the
    flexion peaks (phase k + 0.875) stay at 33 deg, so every candidate passes the peak-change check."""
    t = np.arange(int(duration * FS)) / FS
    bounds = t0 + np.concatenate([[0.0], np.cumsum(durations)])
    k = np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, len(durations) - 1)
    phase = k + (t - bounds[k]) / np.asarray(durations)[k]
    first, last = 0.6, len(durations) - 1 + 0.95
    ramp = np.clip((phase - first) / 0.1, 0, 1) * np.clip((last - phase) / 0.1, 0, 1)
    on = (t >= bounds[0]) & (phase >= first) & (phase <= last)
    hip = np.zeros(len(t))
    for j, ext in enumerate(ext_deg):
        mine = on & (k == j)
        hip[mine] = ramp[mine] * gait_cycle(phase[mine], peak_ext_deg=ext)
    hip *= DEG
    nan = np.full(len(t), np.nan)
    fields = {f: nan for f in AngleSeries.FIELDS}
    fields.update(hip_flexion_left=hip, thigh_inclination_left=hip, pelvic_tilt=np.zeros(len(t)),
                  pelvis_inclination=np.zeros(len(t)))
    return AngleSeries(t=t, **fields)


def test_neighbours_must_agree_in_duration() -> None:
    # positive control: five equal cycles, four candidates that agree
    assert len(detect_strides(_varied([1.1] * 5, [15.0] * 5), "left").strides) == 4
    # alternating fast and slow cycles: candidates of ~1.62 s and ~0.83 s (ratio ~2, beyond 1.5), each valid
    # on its own: none agrees with a neighbour, so none is a stride
    assert detect_strides(_varied([0.7, 1.75] * 3, [15.0] * 6), "left").strides == []


def test_neighbours_must_agree_in_swing_range() -> None:
    # equal durations, but the hip swings 48 deg and 21 deg in turn (ratio 2.3, beyond 2): no stride
    assert detect_strides(_varied([1.1] * 8, [-12.0, 15.0] * 4), "left").strides == []
    # the same with a ratio of 1.3 is walking
    assert len(detect_strides(_varied([1.1] * 6, [15.0, 4.0] * 3), "left").strides) == 5

"""Strides on noise-free, raised-cosine hip swings, where the detector's output follows from its definitions
(``processing/gait.py``): flexion peaks on samples, contacts by the phase rule at exactly ``peak + 0.125``
of a cycle, every acceptance threshold just inside and just outside, bouts, the contact evidence (thigh
split, the sacrum's impacts), confidences, the summary and the parameters' checks.

The swing: standing at 0, a half-cosine rise to the first peak, then per cycle a half-cosine down to that
cycle's trough at mid-cycle and up to the next peak (``hip_curve``). The detector's light smoothing
(triangle of +- 3 samples at 100 Hz) keeps a symmetric peak on its sample and lowers a cosine's swing by a
known factor (``smoothed``), which the thresholds below are placed around.

Written for the survivors of ``python bench/mutation.py --group gait``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hipback.processing.events import smooth, triangular_kernel
from hipback.processing.gait import (
    DEFAULT_IC_PHASE,
    Stride,
    StrideDetector,
    WalkingBout,
    _derivative_kernel,
    detect_strides,
    gait_summary,
)
from hipback.processing.types import AngleSeries

D = math.pi / 180.0
FS = 100.0
NAN = float("nan")


def hip_curve(cycles: list[tuple[float, float, float]], lead: float = 2.0, tail: float = 3.0,
              rise: float = 0.5, fs: float = FS) -> tuple[np.ndarray, np.ndarray]:
    """Hip flexion (deg) and the peak times (s): standing at 0 for ``lead`` s, a half-cosine rise over
    ``rise`` s to the first peak (the first cycle's peak), then per cycle ``(duration s, next peak, trough)``
    a half-cosine down to the trough at mid-cycle and up to the next peak; a half-cosine back to 0 and
    ``tail`` s of standing."""
    n = int(round(rise * fs))
    u = np.arange(n) / n
    first = cycles[0][1]
    pieces = [np.zeros(int(round(lead * fs))), first * (1 - np.cos(np.pi * u)) / 2]
    peaks = [lead + rise]
    prev = first
    for dur, peak, trough in cycles:
        m = int(round(dur * fs))
        h = m // 2
        u1, u2 = np.arange(h) / h, np.arange(m - h) / (m - h)
        pieces += [trough + (prev - trough) * (1 + np.cos(np.pi * u1)) / 2,
                   trough + (peak - trough) * (1 - np.cos(np.pi * u2)) / 2]
        peaks.append(peaks[-1] + m / fs)
        prev = peak
    pieces += [prev * (1 + np.cos(np.pi * u)) / 2, np.zeros(int(round(tail * fs)))]
    return np.concatenate(pieces), np.array(peaks)


def angles(hip_deg: np.ndarray, *, tilt_deg: np.ndarray | None = None,
           other_thigh_deg: np.ndarray | None = None, acc: np.ndarray | None = None,
           lumbar_deg: np.ndarray | None = None, fs: float = FS) -> AngleSeries:
    """Left hip flexion ``hip_deg``, pelvic tilt (default 0), left thigh = hip + tilt, the right thigh only
    when given (its hip = thigh - tilt), the sacrum's vertical acceleration only when given."""
    n = len(hip_deg)
    nan = np.full(n, np.nan)
    tilt = np.zeros(n) if tilt_deg is None else tilt_deg * D
    hip = hip_deg * D
    other = nan if other_thigh_deg is None else other_thigh_deg * D
    return AngleSeries(
        t=np.arange(n) / fs, hip_flexion_left=hip, hip_flexion_right=other - tilt, pelvic_tilt=tilt,
        lumbar_flexion=nan if lumbar_deg is None else lumbar_deg * D, thigh_inclination_left=hip + tilt,
        thigh_inclination_right=other, pelvis_inclination=np.zeros(n), pelvis_motion=np.zeros(n),
        pelvis_acc_vertical=acc,
    )


def smoothed(x: np.ndarray) -> np.ndarray:
    """The detector's light smoothing at 100 Hz (triangle of +- 3 samples), aligned with ``x``."""
    out = np.full(len(x), np.nan)
    out[3:-3] = smooth(x, triangular_kernel(3))
    return out


def strides(cycles: list[tuple[float, float, float]], **params: object) -> list[Stride]:
    x, _ = hip_curve(cycles)
    return detect_strides(angles(x), "left", **params).strides


STEADY = [(1.1, 30.0, -15.0)] * 8


# -- steady walking, contacts by the phase rule --------------------------------------------------------------
def test_steady_swing_strides_start_at_the_phase_rule_contact() -> None:
    x, peaks = hip_curve(STEADY)
    det = detect_strides(angles(x), "left")
    ss = det.strides
    assert len(ss) == 8
    # inner strides: peaks exactly on samples, contact 0.125 cycle (0.1375 s) after each peak
    for s, p in zip(ss[1:-1], peaks[1:-2], strict=True):
        assert s.t_start == pytest.approx(p + 0.125 * 1.1, abs=1e-9)
        assert s.ic_source == "hip_phase" and s.confidence == 0.5 and not s.doubtful
        assert s.side == "left" and s.bout == 0
    for s, p in zip(ss[1:-2], peaks[1:-3], strict=True):  # the last contact: after the slowing last swing
        assert s.t_end == pytest.approx(p + 1.1 + 0.125 * 1.1, abs=1e-9)
        assert s.stride_time_s == pytest.approx(1.1, abs=1e-9)
        assert s.cadence_spm == pytest.approx(120 / 1.1, rel=1e-9)
    sm = smoothed(x)
    trough = float(np.min(sm[300:900]))
    for s in ss[1:-1]:
        assert s.peak_hip_extension_rad == pytest.approx(-trough * D, rel=1e-9)
        assert s.hip_range_rad == pytest.approx((float(np.max(sm[300:900])) - trough) * D, rel=1e-9)
        assert s.peak_thigh_extension_rad == pytest.approx(-trough * D, rel=1e-9)
        assert s.peak_thigh_flexion_rad == pytest.approx(float(np.max(sm[300:900])) * D, rel=1e-9)
        # peak extension at the trough, mid-cycle after the peak
        assert (s.t_peak_extension - s.t_start + 0.1375) % 1.1 == pytest.approx(0.55, abs=1e-9)
        assert s.pelvic_tilt_at_peak_extension_rad == 0.0 and s.pelvic_tilt_excursion_rad == 0.0
        assert math.isnan(s.lumbar_excursion_rad) and math.isnan(s.ml_uncertainty_deg)
        assert math.isnan(s.lumbar_compensation_index) or s.lumbar_compensation_index == 0.0
    # contiguous strides, one bout from the first contact to the last
    for a, b in zip(ss[:-1], ss[1:], strict=True):
        assert b.t_start == a.t_end
    (bout,) = det.bouts
    assert bout == WalkingBout("left", ss[0].t_start, ss[-1].t_end, 8, pytest.approx(120 / 1.1, rel=1e-9))
    assert bout.duration_s == pytest.approx(ss[-1].t_end - ss[0].t_start, abs=1e-12)


def test_strides_and_bouts_properties_alias_the_lists() -> None:
    x, _ = hip_curve(STEADY)
    det = detect_strides(angles(x), "left")
    assert det.strides is det.strides_ and det.bouts is det.bouts_


def test_right_side_reads_the_right_leg() -> None:
    x, peaks = hip_curve(STEADY)
    a = angles(np.full(len(x), np.nan), other_thigh_deg=x)
    ss = detect_strides(a, "right").strides
    assert len(ss) == 8 and all(s.side == "right" for s in ss)
    assert ss[1].t_start == pytest.approx(peaks[1] + 0.1375, abs=1e-9)
    assert detect_strides(a, "left").strides == []


def test_thigh_inclination_stands_in_for_a_missing_hip_angle() -> None:
    x, peaks = hip_curve(STEADY)
    a = angles(x)
    a = dataclasses.replace(a, hip_flexion_left=np.full(len(x), np.nan))
    ss = detect_strides(a, "left").strides
    assert len(ss) == 8
    assert ss[1].t_start == pytest.approx(peaks[1] + 0.1375, abs=1e-9)
    assert all(math.isnan(s.peak_hip_extension_rad) and math.isnan(s.hip_range_rad) for s in ss)
    assert all(math.isnan(s.t_peak_extension) for s in ss)


# -- acceptance thresholds -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cycles,n",
    [
        ([(0.72, 30.0, -15.0)] * 8, 8),  # stride time >= 0.7 s
        ([(0.68, 30.0, -15.0)] * 8, 0),
        ([(1.98, 30.0, -15.0)] * 6, 6),  # <= 2.0 s
        ([(2.02, 30.0, -15.0)] * 6, 0),
    ],
)
def test_stride_time_limits(cycles: list, n: int) -> None:
    assert len(strides(cycles)) == n


@pytest.mark.parametrize(
    "peak,trough,n",
    [
        (20.0, 4.9, 8),  # smoothed swing 15.04 deg >= 15
        (20.0, 5.2, 0),  # 14.74 deg
        (50.0, 14.9, 8),  # smoothed trough 14.97 deg <= 15
        (50.0, 15.1, 0),  # 15.17 deg
        (75.1, 10.0, 8),  # smoothed peak 74.97 deg <= 75
        (75.3, 10.0, 0),  # 75.17 deg
    ],
)
def test_swing_range_peak_and_trough_limits(peak: float, trough: float, n: int) -> None:
    x, _ = hip_curve([(1.1, peak, trough)] * 8)
    sm = smoothed(x)[300:900]
    assert abs(float(np.max(sm)) - 75.0) > 0.02 and abs(float(np.min(sm)) - 15.0) > 0.02
    assert abs(float(np.max(sm) - np.min(sm)) - 15.0) > 0.02
    assert len(strides([(1.1, peak, trough)] * 8)) == n


@pytest.mark.parametrize("change,n", [(7.8, 9), (8.2, 0)])
def test_peaks_changing_by_over_8_deg_are_refused_with_phase_rule_contacts(change: float, n: int) -> None:
    """Alternate peaks differ by ``change`` deg (the smoothing lowers both the same: same curvature)."""
    cycles = [(1.1, 40.0 if k % 2 else 40.0 - change, -15.0) for k in range(9)]
    x, _ = hip_curve(cycles)
    sm = smoothed(x)
    got = strides(cycles)
    assert len(got) == n
    if n:
        assert all(s.ic_source == "hip_phase" for s in got)
    assert abs(float(sm[470] - sm[360]) - change) < 0.03  # smoothed: 7.78 and 8.18 deg


@pytest.mark.parametrize(
    "durations,n",
    [
        ([1.0, 1.45] * 4, 8),  # every neighbour within 1.5x
        ([1.0, 1.55] * 4, 0),
        ([1.45, 1.0] * 4, 8),
        ([1.55, 1.0] * 4, 0),
    ],
)
def test_strides_must_match_a_neighbour_in_duration(durations: list[float], n: int) -> None:
    assert len(strides([(d, 30.0, -15.0) for d in durations])) == n


@pytest.mark.parametrize(
    "troughs,n",
    [
        ([10.0, -8.0] * 4, 8),  # swings 20 and 38 deg: within 2x
        ([10.0, -12.0] * 4, 0),  # 20 and 42 deg
        ([-8.0, 10.0] * 4, 8),
        ([-12.0, 10.0] * 4, 0),
    ],
)
def test_strides_must_match_a_neighbour_in_swing(troughs: list[float], n: int) -> None:
    assert len(strides([(1.1, 30.0, tr) for tr in troughs])) == n


def test_one_isolated_stride_is_not_gait_but_two_are() -> None:
    assert strides([(1.1, 30.0, -15.0)]) == []
    assert len(strides([(1.1, 30.0, -15.0)] * 2)) == 2


# -- gait_summary --------------------------------------------------------------------------------------------
def stride(side: str = "left", ext: float = 10.0, time_s: float = 1.0, tilt_exc: float = 0.1,
           comp: float = 0.2) -> Stride:
    return Stride(side=side, t_start=0.0, t_end=time_s, stride_time_s=time_s, cadence_spm=120.0 / time_s,
                  peak_hip_extension_rad=ext * D, t_peak_extension=0.5, hip_range_rad=0.8,
                  peak_thigh_flexion_rad=0.5, peak_thigh_extension_rad=0.2,
                  pelvic_tilt_at_peak_extension_rad=0.0, pelvic_tilt_excursion_rad=tilt_exc,
                  lumbar_compensation_index=comp, lumbar_excursion_rad=NAN)


def test_gait_summary_medians_asymmetry_and_cadence() -> None:
    left = [stride(ext=10.0, time_s=1.0, tilt_exc=0.1, comp=0.1), stride(ext=12.0, time_s=1.2, tilt_exc=0.3,
                                                                            comp=NAN),
            stride(ext=NAN, time_s=1.1, tilt_exc=0.2, comp=0.3)]
    right = [stride("right", ext=20.0, time_s=1.25), stride("right", ext=22.0, time_s=1.5)]
    g = gait_summary(left, right)
    assert g["n_strides_left"] == 3 and g["n_strides_right"] == 2
    assert g["peak_hip_extension_left_rad"] == pytest.approx(11.0 * D, rel=1e-12)  # NaN left out
    assert g["peak_hip_extension_right_rad"] == pytest.approx(21.0 * D, rel=1e-12)
    assert g["stride_time_left_s"] == pytest.approx(1.1, rel=1e-12)
    assert g["stride_time_right_s"] == pytest.approx(1.375, rel=1e-12)
    assert g["pelvic_tilt_excursion_left_rad"] == pytest.approx(0.2, rel=1e-12)
    assert g["lumbar_compensation_index_left"] == pytest.approx(0.2, rel=1e-12)
    assert g["lumbar_compensation_index_right"] == pytest.approx(0.2, rel=1e-12)
    assert g["peak_hip_extension_asymmetry_rad"] == pytest.approx(-10.0 * D, rel=1e-12)
    assert g["asymmetry_index_pct"] == pytest.approx(100.0 * 10.0 / 16.0, rel=1e-12)
    # cadence: median over all five strides (120 / 1.2 = 100 steps/min)
    assert g["cadence_spm"] == pytest.approx(100.0, rel=1e-12)
    assert set(g) == {
        *(f"{k}_{s}" for s in ("left", "right") for k in ("n_strides",)),
        *(f"peak_hip_extension_{s}_rad" for s in ("left", "right")),
        *(f"stride_time_{s}_s" for s in ("left", "right")),
        *(f"pelvic_tilt_excursion_{s}_rad" for s in ("left", "right")),
        *(f"lumbar_compensation_index_{s}" for s in ("left", "right")),
        "peak_hip_extension_asymmetry_rad", "asymmetry_index_pct", "cadence_spm",
    }


@pytest.mark.parametrize("mean_deg,defined", [(2.1, True), (1.9, False)])
def test_gait_summary_asymmetry_index_needs_2_deg_of_extension(mean_deg: float, defined: bool) -> None:
    g = gait_summary([stride(ext=mean_deg - 0.5)], [stride("right", ext=mean_deg + 0.5)])
    if defined:
        assert g["asymmetry_index_pct"] == pytest.approx(100.0 / mean_deg, rel=1e-9)
    else:
        assert math.isnan(g["asymmetry_index_pct"])


def test_gait_summary_of_one_leg_and_of_none() -> None:
    g = gait_summary([stride(ext=10.0)], [])
    assert g["n_strides_right"] == 0 and math.isnan(g["peak_hip_extension_right_rad"])
    assert math.isnan(g["peak_hip_extension_asymmetry_rad"]) and math.isnan(g["asymmetry_index_pct"])
    assert g["cadence_spm"] == pytest.approx(120.0, rel=1e-12)
    empty = gait_summary([], [])
    assert math.isnan(empty["cadence_spm"]) and math.isnan(empty["stride_time_left_s"])


# -- parameters ----------------------------------------------------------------------------------------------
def test_side_and_rule_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^side must be 'left' or 'right', not 'middle'$"):
        StrideDetector("middle")
    with pytest.raises(ValueError, match=r"^ic_rule must be 'onset' or 'shoulder', not 'peak'$"):
        StrideDetector("left", ic_rule="peak")
    StrideDetector("right", ic_rule="shoulder")


def test_defaults() -> None:
    det = StrideDetector("left")
    assert DEFAULT_IC_PHASE == 0.125 and det.ic_phase == 0.125
    assert (det.min_stride_s, det.max_stride_s) == (0.7, 2.0)
    assert det.strides == [] and det.bouts == []


def test_derivative_kernel_is_a_gaussian_derivative_per_second() -> None:
    k = _derivative_kernel(1.5, 100.0)
    assert len(k) == 11  # +- ceil(3 sigma) samples
    assert k[5] == 0.0
    np.testing.assert_allclose(k, -k[::-1], rtol=0, atol=1e-15)
    u = np.arange(-5, 6)
    g = np.exp(-0.5 * (u / 1.5) ** 2)
    np.testing.assert_allclose(k, u / 1.5**2 * g / g.sum() * 100.0, rtol=1e-12)
    # a ramp of slope 1 per sample reads about fs per second
    ramp = np.arange(30.0)
    assert smooth(ramp, k)[0] == pytest.approx(100.0, rel=0.01)
    assert len(_derivative_kernel(0.1, 50.0)) == 3  # at least one sample each side
    assert _derivative_kernel(0.1, 50.0)[2] > 0

"""Strides on noise-free, raised-cosine hip swings, where the detector's output follows from its definitions
(``processing/gait.py``): flexion peaks on samples, contacts by the phase rule at exactly ``peak + 0.125``
of a cycle, every acceptance threshold just inside and just outside, bouts, the contact evidence (thigh
split, the sacrum's impacts), confidences, the summary and the parameters' checks.

The swing: standing at 0, a half-cosine rise to the first peak, then per cycle a half-cosine down to that
cycle's trough at mid-cycle and up to the next peak (``hip_curve``). The detector's light smoothing
for its decisions (triangle of +- 3 samples at 100 Hz) keeps a symmetric peak on its sample and lowers a
cosine's swing by a known factor (``smoothed``), which the thresholds below are placed around; the stride's
reported values come from a parabola fitted over the same samples (``fitted``). The peaks are located on a
Gaussian low-pass (``peak_sigma_s``), which keeps a symmetric peak on its sample too but moves an asymmetric
one by a few ms: the few tests whose exact peak times matter on asymmetric swings locate them on the
triangle (``peak_sigma_s=0``); ``tests/test_gait.py`` tests the low-pass itself.

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
    _gauss_kernel,
    _median,
    _vertex,
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
    """The detector's light smoothing for its decisions at 100 Hz (triangle of +- 3 samples), aligned with
    ``x``."""
    out = np.full(len(x), np.nan)
    out[3:-3] = smooth(x, triangular_kernel(3))
    return out


def fitted(x: np.ndarray) -> np.ndarray:
    """The smoothing of the stride's reported values at 100 Hz (a parabola fitted over +- 3 samples:
    Savitzky-Golay, coefficients (-2, 3, 6, 7, 6, 3, -2) / 21), aligned with ``x``."""
    out = np.full(len(x), np.nan)
    out[3:-3] = smooth(x, np.array([-2.0, 3.0, 6.0, 7.0, 6.0, 3.0, -2.0]) / 21.0)
    return out


def strides(cycles: list[tuple[float, float, float]], **params: object) -> list[Stride]:
    x, _ = hip_curve(cycles)
    return detect_strides(angles(x), "left", **params).strides


STEADY = [(1.1, 30.0, -15.0)] * 8


@pytest.mark.parametrize("duration", [0.8, 1.1])
def test_reported_peaks_keep_their_height(duration: float) -> None:
    """A swing from 35 deg flexion to 15 deg extension: the stride reports 15 deg of peak extension and a 50
    deg range to within 0.001 deg (the fitted parabola keeps a peak's height); the triangle of the same width
    (``value_kernel="triangle"``) lowers both, more the faster the swing."""
    x, _ = hip_curve([(duration, 35.0, -15.0)] * 8)
    for s in detect_strides(angles(x), "left").strides[1:-1]:
        assert abs(s.peak_hip_extension_rad / D - 15.0) < 1e-3 and abs(s.hip_range_rad / D - 50.0) < 2e-3
    flat = detect_strides(angles(x), "left", value_kernel="triangle").strides[1:-1]
    assert all(s.peak_hip_extension_rad / D < 14.95 and s.hip_range_rad / D < 49.9 for s in flat)
    with pytest.raises(ValueError, match="value_kernel"):
        StrideDetector(side="left", value_kernel="box")


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
    sm = fitted(x)
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
    # (peaks located on the values' triangle: the Gaussian moves these asymmetric peaks by a few ms)
    assert len(strides([(d, 30.0, -15.0) for d in durations], peak_sigma_s=0.0)) == n


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
    with pytest.raises(ValueError, match=r"^ic_rule must be 'onset', 'shoulder' or 'smooth', not 'peak'$"):
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


# -- contacts from the sacrum's impacts ----------------------------------------------------------------------
STEADY_X, STEADY_PEAKS = hip_curve(STEADY)
PEAK_IDX = np.round(STEADY_PEAKS * FS).astype(int)  # 250, 360, ... (on samples)


def impacts(starts: np.ndarray | list[int], width: int = 20, amp: float = 1.0,
            n: int = len(STEADY_X)) -> np.ndarray:
    """Vertical acceleration: 0, and ``amp`` over ``width`` samples from each start (an exact step up and
    down: the steepest flank is half-way between samples ``start - 1`` and ``start``)."""
    a = np.zeros(n)
    for s in starts:
        a[s : s + width] += amp
    return a


def acc_strides(offset: int, amp: float = 1.0, **params: object) -> list[Stride]:
    """Steady swing, an impact ``offset`` samples after every flexion peak but the last."""
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + offset, amp=amp))
    return detect_strides(a, "left", ic_rule="onset", **params).strides


def test_contacts_at_the_onset_of_sacral_impacts() -> None:
    ss = acc_strides(20, peak_sigma_s=0.0)  # (the last, asymmetric peak located on the values' triangle)
    assert len(ss) == 8
    onsets = (PEAK_IDX[:-1] + 20 - 0.5) / FS
    for s, t in zip(ss[:-1], onsets[:-1], strict=True):
        assert s.t_start == pytest.approx(t, abs=1e-9)
        assert (s.ic_source, s.confidence, s.doubtful) == ("acceleration", 1.0, False)
    for a, b in zip(ss[:-2], ss[1:-1], strict=True):
        assert a.t_end == b.t_start and a.stride_time_s == pytest.approx(1.1, abs=1e-9)
    # the last contact: no impact after the last peak (no acceleration there): the walker's own phase
    assert ss[-1].t_start == pytest.approx(onsets[-1], abs=1e-9)
    assert ss[-1].ic_source == "hip_phase" and ss[-1].confidence == 0.5
    assert ss[-1].t_end == pytest.approx(STEADY_PEAKS[-1] + 0.195, abs=0.003)  # 0.195 s after peak flexion


@pytest.mark.parametrize("offset,found", [(39, True), (40, False), (-4, True)])
def test_impacts_are_searched_from_before_to_a_third_of_a_cycle_after(offset: int, found: bool) -> None:
    """Searched in [peak - 0.05 cycle, peak + 0.35 cycle] (1.1 s: samples -6 to +39, a flank needs its
    neighbours): an impact 40 samples after the peak is not seen: acceleration but no contact, doubtful."""
    ss = acc_strides(offset)
    assert len(ss) == 8
    if found:
        assert ss[1].t_start == pytest.approx((PEAK_IDX[1] + offset - 0.5) / FS, abs=1e-9)
        assert ss[1].ic_source == "acceleration" and not ss[1].doubtful
    else:
        assert all(s.doubtful and s.ic_source == "hip_phase" and s.confidence == 0.2 for s in ss[:-1])
        assert all(math.isnan(s.peak_hip_extension_rad) and math.isnan(s.t_peak_extension) for s in ss[:-1])
        assert all(math.isnan(s.pelvic_tilt_at_peak_extension_rad) for s in ss[:-1])
        assert all(math.isnan(s.lumbar_compensation_index) for s in ss[:-1])
        assert ss[1].t_start == pytest.approx(STEADY_PEAKS[1] + 0.1375, abs=1e-9)  # the fixed phase
        assert math.isfinite(ss[1].hip_range_rad)


def test_an_impact_before_the_window_is_not_a_contact() -> None:
    ss = acc_strides(-5)
    assert all(abs(s.t_start - (p * 0.01 - 0.055)) > 0.004 for s, p in zip(ss, PEAK_IDX, strict=False))


@pytest.mark.parametrize("amp,source", [(0.5, "acceleration"), (0.49, "hip_phase")])
def test_acceleration_needs_a_range_of_half_a_metre_per_second_squared(amp: float, source: str) -> None:
    ss = acc_strides(20, amp=amp)
    assert [s.ic_source for s in ss[:-1]] == [source] * 7
    assert not any(s.doubtful for s in ss)


def test_acceleration_can_be_switched_off() -> None:
    ss = acc_strides(20, use_acceleration=False)
    assert [s.ic_source for s in ss] == ["hip_phase"] * 8
    assert ss[1].t_start == pytest.approx(STEADY_PEAKS[1] + 0.1375, abs=1e-9)


@pytest.mark.parametrize("big,first", [(4.0, True), (4.2, False)])
def test_the_contact_is_the_first_flank_a_quarter_as_steep_as_the_top(big: float, first: bool) -> None:
    """A step of 1 at +10 samples (down again at +22) and one of ``big`` at +35: a quarter of 4 is exactly 1
    (flanks scale exactly by a power of two), so the small step still counts; a quarter of 4.2 is more."""
    acc = impacts(PEAK_IDX[:-1] + 10, width=12) + impacts(PEAK_IDX[:-1] + 35, amp=big)
    ss = detect_strides(angles(STEADY_X, acc=acc), "left", ic_rule="onset").strides
    assert len(ss) == 8
    offset = 10 if first else 35
    for s, p in zip(ss[1:-1], PEAK_IDX[1:-2], strict=True):
        assert s.t_start == pytest.approx((p + offset - 0.5) / FS, abs=1e-9)


def split_bump(centre_offset: int, n: int = len(STEADY_X)) -> np.ndarray:
    """A split between the thighs (deg) peaking ``centre_offset`` samples after every flexion peak: a raised
    cosine of 10 deg over one stride (1.1 s), symmetric about its peak."""
    t = np.arange(n) / FS
    f = np.zeros(n)
    for p in PEAK_IDX:
        u = t - (p + centre_offset) / FS
        f = np.maximum(f, np.where(np.abs(u) < 0.55, 5.0 * (1 + np.cos(2 * np.pi * u / 1.1)), 0.0))
    return f


@pytest.mark.parametrize("offset,found", [(10, True), (9, False), (28, True), (29, False)])
def test_with_both_thighs_impacts_count_near_the_largest_split(offset: int, found: bool) -> None:
    """The split is largest 15 samples after each peak; impacts count from 0.06 s before to 0.12 s after it
    (a flank at +9 ... +27, i.e. steps starting at +10 ... +28); else the split maximum is the contact."""
    other = STEADY_X - split_bump(15)
    a = angles(STEADY_X, other_thigh_deg=other, acc=impacts(PEAK_IDX[:-1] + offset))
    ss = detect_strides(a, "left", ic_rule="onset").strides
    assert len(ss) == 8
    for s, p in zip(ss[1:-1], PEAK_IDX[1:-2], strict=True):
        if found:
            assert s.t_start == pytest.approx((p + offset - 0.5) / FS, abs=1e-9)
            assert (s.ic_source, s.confidence) == ("acceleration", 1.0)
        else:
            assert s.t_start == pytest.approx((p + 15) / FS, abs=1e-9)
            assert (s.ic_source, s.confidence) == ("thigh_split", 0.8)


@pytest.mark.parametrize("centre", [-6, 0, 39])
def test_the_split_maximum_anywhere_in_the_search_window_is_the_contact(centre: int) -> None:
    other = STEADY_X - split_bump(centre)
    ss = detect_strides(angles(STEADY_X, other_thigh_deg=other), "left").strides
    assert len(ss) >= 6
    for s, p in zip(ss[1:-1], PEAK_IDX[1:-2], strict=False):
        assert s.t_start == pytest.approx((p + centre) / FS, abs=1e-9)
        assert (s.ic_source, s.confidence, s.doubtful) == ("thigh_split", 0.8, False)


def test_an_impact_at_the_end_of_the_window_with_the_split_maximum_there() -> None:
    other = STEADY_X - split_bump(39)
    a = angles(STEADY_X, other_thigh_deg=other, acc=impacts(PEAK_IDX[:-1] + 39))
    ss = detect_strides(a, "left", ic_rule="onset").strides
    assert ss[1].t_start == pytest.approx((PEAK_IDX[1] + 38.5) / FS, abs=1e-9)
    assert ss[1].ic_source == "acceleration"


# -- where a stride's samples begin: the terminal-stance share -----------------------------------------------
def compensation(thigh_deg: np.ndarray, tilt_deg: np.ndarray, a: int, b: int) -> float:
    """The lumbar compensation index of stride samples [a, b) from its definition: peak thigh extension ``pe``
    (minimum of the smoothed thigh), terminal stance from the sample half-way between ``a`` and ``pe``."""
    th, ti = fitted(thigh_deg), fitted(tilt_deg)
    pe = a + int(np.argmin(th[a:b]))
    ts = a + (pe - a) // 2
    return float((ti[pe] - ti[ts]) / (th[ts] - th[pe]))


TILT_RAMP = 0.004 * np.arange(len(STEADY_X))  # deg: the pelvis tilting forwards slowly


@pytest.mark.parametrize("source", ["hip_phase", "acceleration", "thigh_split"])
def test_terminal_stance_starts_half_way_from_the_contact_sample(source: str) -> None:
    acc = impacts(PEAK_IDX[:-1] + 20) if source == "acceleration" else None
    other = STEADY_X - split_bump(15) if source == "thigh_split" else None
    a = angles(STEADY_X - TILT_RAMP, tilt_deg=TILT_RAMP, acc=acc, other_thigh_deg=other)
    ss = detect_strides(a, "left", ic_rule="onset").strides
    assert len(ss) == 8
    first = {"hip_phase": 14, "acceleration": 19, "thigh_split": 15}[source]  # contact sample after the peak
    for s, p0, p1 in zip(ss[1:-2], PEAK_IDX[1:-3], PEAK_IDX[2:-2], strict=True):
        assert s.ic_source == source
        expected = compensation(STEADY_X, TILT_RAMP, p0 + first, p1 + first)
        assert s.lumbar_compensation_index == pytest.approx(expected, rel=1e-9)
        assert s.pelvic_tilt_excursion_rad == pytest.approx(0.004 * (p1 - p0 - 1) * D, rel=1e-9)


def test_no_compensation_index_below_2_deg_of_thigh_extension() -> None:
    x, _ = hip_curve([(1.1, 10.0, 7.0)] * 8)  # swing of 3 deg, thigh extends about 1.5 deg in stance
    ss = detect_strides(angles(x), "left", min_range_rad=2 * D).strides
    assert len(ss) == 8 and all(math.isnan(s.lumbar_compensation_index) for s in ss)
    x, _ = hip_curve([(1.1, 10.0, 0.0)] * 8)  # thigh extends about 5 deg in stance
    ss = detect_strides(angles(x), "left", min_range_rad=2 * D).strides
    assert len(ss) == 8 and all(s.lumbar_compensation_index == 0.0 for s in ss[1:-1])


# -- doubtful strides and the walker's own phase -------------------------------------------------------------
def slow_bump(centre: int, n: int = len(STEADY_X)) -> np.ndarray:
    """A smooth rise and fall of the acceleration (1 m/s^2, sigma 0.2 s): a range, but no impact."""
    k = np.arange(n)
    return np.exp(-0.5 * ((k - centre) / 20.0) ** 2)


def walk(n_cycles: int) -> tuple[np.ndarray, np.ndarray]:
    x, peaks = hip_curve([(1.1, 30.0, -15.0)] * n_cycles)
    return x, np.round(peaks * FS).astype(int)


@pytest.mark.parametrize("missing,phase", [(4, 0.195 / 1.1), (3, DEFAULT_IC_PHASE)])
def test_a_missing_impact_makes_doubtful_strides_timed_by_the_learnt_phase(missing: int,
                                                                           phase: float) -> None:
    """Impacts 20 samples after each peak (0.195 s: a phase of 0.195 / 1.1 of the cycle), none after peak
    ``missing`` (a slow bump instead). Each confident stride teaches one phase; from 3 on, their median times
    the doubtful contact, before that the fixed 0.125."""
    x, peaks = walk(10)
    starts = [p + 20 for k, p in enumerate(peaks[:-1]) if k != missing]
    acc = impacts(starts, n=len(x)) + slow_bump(peaks[missing] + 20, len(x))
    ss = detect_strides(angles(x, acc=acc), "left", ic_rule="onset").strides
    assert len(ss) == 10
    for k, s in enumerate(ss[:-1]):
        doubtful = k in (missing - 1, missing)
        assert s.doubtful == doubtful
        if doubtful:
            assert (s.ic_source, s.confidence) == ("hip_phase", 0.2)
            assert math.isnan(s.peak_hip_extension_rad) and math.isnan(s.lumbar_compensation_index)
        else:
            assert (s.ic_source, s.confidence) == ("acceleration", 1.0)
            assert math.isfinite(s.peak_hip_extension_rad)
    # (the slow bump's tail moves the neighbouring impacts' onsets by a few ns)
    assert ss[missing].t_start == pytest.approx(peaks[missing] / FS + phase * 1.1, abs=1e-6)
    assert ss[missing - 1].t_end == ss[missing].t_start
    assert ss[missing - 1].t_start == pytest.approx((peaks[missing - 1] + 19.5) / FS, abs=1e-6)


def test_the_phase_memory_keeps_the_last_contacts() -> None:
    """``phase_memory=3``: the fourth learnt phase pushes out the first; three are still enough."""
    x, peaks = walk(10)
    starts = [p + 20 for k, p in enumerate(peaks[:-1]) if k != 5]
    acc = impacts(starts, n=len(x)) + slow_bump(peaks[5] + 20, len(x))
    ss = detect_strides(angles(x, acc=acc), "left", ic_rule="onset", phase_memory=3).strides
    assert ss[5].doubtful and ss[5].t_start == pytest.approx(peaks[5] / FS + 0.195, abs=1e-9)
    fixed = detect_strides(angles(x, acc=acc), "left", ic_rule="onset", phase_memory=0).strides
    assert fixed[5].t_start == pytest.approx(peaks[5] / FS + 0.1375, abs=1e-9)


def test_only_contacts_from_the_sensors_teach_the_phase() -> None:
    """Seven strides without acceleration (phase-rule contacts), then impacts: the learnt phase comes from
    the impacts alone, not from the phase rule's own 0.125."""
    x, peaks = walk(14)
    starts = [p + 20 for k, p in enumerate(peaks[:-1]) if k >= 7 and k != 11]
    acc = impacts(starts, n=len(x)) + slow_bump(peaks[11] + 20, len(x))
    ss = detect_strides(angles(x, acc=acc), "left", ic_rule="onset").strides
    assert [s.ic_source for s in ss[:6]] == ["hip_phase"] * 6 and not any(s.doubtful for s in ss[:6])
    assert ss[11].doubtful and ss[11].t_start == pytest.approx(peaks[11] / FS + 0.195, abs=1e-9)


def test_contacts_out_of_both_rhythms_are_retimed_by_the_phase_rule() -> None:
    """The impact after peak 3 comes 18 samples late (0.18 s: more than 15 % of the cycle off the swing's
    rhythm and off the previous contacts'): the strides on both sides are doubtful, their contacts at peak +
    0.125 cycle (14 samples: only two phases learnt), so stride 2 runs over samples [p2 + 14, p3 + 14), which
    leave out a lumbar spike at p2 + 12 but for the fit's tail (3/21 of it at p2 + 14, -2/21 at p2 + 15)."""
    x, peaks = walk(10)
    starts = [p + (38 if k == 3 else 20) for k, p in enumerate(peaks[:-1])]
    lumbar = np.zeros(len(x))
    lumbar[peaks[2] + 12] = 8.0
    a = angles(x, acc=impacts(starts, n=len(x)), lumbar_deg=lumbar)
    ss = detect_strides(a, "left", ic_rule="onset").strides
    assert len(ss) == 10
    assert [s.doubtful for s in ss[:6]] == [False, False, True, True, False, False]
    for k in (2, 3):
        assert (ss[k].ic_source, ss[k].confidence) == ("hip_phase", 0.2)
        assert ss[k].t_start == pytest.approx(peaks[k] / FS + 0.1375, abs=1e-9)
        assert math.isnan(ss[k].peak_hip_extension_rad)
    assert ss[3].t_end == ss[4].t_start == pytest.approx((peaks[4] + 19.5) / FS, abs=1e-9)
    assert ss[2].lumbar_excursion_rad == pytest.approx(8.0 * 5 / 21 * D, rel=1e-9)
    # the whole spike: 7/21 of it at p2 + 12 down to -2/21 at p2 + 9
    assert ss[1].lumbar_excursion_rad == pytest.approx(8.0 * 9 / 21 * D, rel=1e-9)


def test_a_first_contact_off_by_less_than_15_percent_is_kept() -> None:
    """The first impact 15 samples late: 0.15 s is within 15 % of 1.1 s (0.165 s), nothing before to
    compare with: not doubtful."""
    x, peaks = walk(8)
    starts = [p + (35 if k == 0 else 20) for k, p in enumerate(peaks[:-1])]
    ss = detect_strides(angles(x, acc=impacts(starts, n=len(x))), "left", ic_rule="onset").strides
    assert not ss[0].doubtful and ss[0].t_start == pytest.approx((peaks[0] + 34.5) / FS, abs=1e-9)


# -- gaps, plateaus, streaming, isolated strides -------------------------------------------------------------
def test_a_short_gap_at_a_trough_drops_the_stride_that_spans_it() -> None:
    x, peaks = walk(8)
    a = angles(x)
    a.hip_flexion_left[peaks[3] + 50 : peaks[3] + 60] = np.nan
    a.thigh_inclination_left[peaks[3] + 50 : peaks[3] + 60] = np.nan
    det = detect_strides(a, "left")
    starts = [round(s.t_start - 0.1375, 9) for s in det.strides]
    assert starts[1:3] == pytest.approx(list(peaks[1:3] / FS), abs=1e-9)
    assert not any(s.t_start < (peaks[3] + 60) / FS and s.t_end > (peaks[3] + 50) / FS for s in det.strides)
    assert len(det.strides) == 7 and [b.n_strides for b in det.bouts] == [3, 4]
    streamed = StrideDetector("left")
    for i in range(0, len(x), 50):
        streamed.update(a.slice(i, i + 50))
    streamed.finish()
    np.testing.assert_equal([dataclasses.asdict(s) for s in streamed.strides],
                            [dataclasses.asdict(s) for s in det.strides])


def test_a_flat_topped_peak_is_one_peak() -> None:
    """Every flexion peak held for 9 samples (3 samples flat after smoothing): one peak at the plateau's
    first smoothed sample, the strides as usual."""
    x, peaks = hip_curve([(1.1, 30.0, -15.0)] * 8)
    idx = np.round(peaks * FS).astype(int)
    flat = np.insert(x, np.repeat(idx, 8), np.repeat(x[idx], 8))
    ss = detect_strides(angles(flat), "left").strides
    assert len(ss) == 8
    assert all(s.stride_time_s == pytest.approx(1.18, abs=1e-9) for s in ss[1:-2])


def test_streaming_a_heavily_smoothed_swing_with_contacts_before_the_peaks() -> None:
    """Smoothing over +-0.3 s and impacts 4 samples before each peak: fed in chunks of 7 samples, the
    detector gives the batch's strides (the buffer keeps what a stride's smoothing needs before its
    contact)."""
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] - 4))
    batch = detect_strides(a, "left", ic_rule="onset", smooth_s=0.3)
    det = StrideDetector("left", ic_rule="onset", smooth_s=0.3)
    got = []
    for i in range(0, len(STEADY_X), 7):
        got += det.update(a.slice(i, i + 7))
    got += det.finish()
    assert len(batch.strides) == 8
    records = [dataclasses.asdict(s) for s in batch.strides]
    np.testing.assert_equal([dataclasses.asdict(s) for s in got], records)


def test_an_isolated_stride_after_a_pause_is_not_gait_when_streaming() -> None:
    """Four strides, 4 s of standing (the last peak is forgotten), then one single stride: not adjacent to
    the earlier ones, so it has no neighbour and is not kept, streamed or not."""
    a_x, _ = hip_curve([(1.1, 30.0, -15.0)] * 4, tail=4.0)
    b_x, _ = hip_curve([(1.1, 30.0, -15.0)], lead=0.0)
    a = angles(np.concatenate([a_x, b_x]))
    batch = detect_strides(a, "left")
    det = StrideDetector("left")
    for i in range(0, len(a), 50):
        det.update(a.slice(i, i + 50))
    det.finish()
    for d in (batch, det):
        assert len(d.strides) == 4 and d.strides[-1].t_end < len(a_x) / FS
        assert [b.n_strides for b in d.bouts] == [4]


def test_a_stride_next_to_a_rejected_one_is_not_gait() -> None:
    """Two strides sharing a peak, similar in time and swing, the second rejected (its trough above 15 deg):
    the first has no valid neighbour."""
    assert strides([(1.1, 50.0, 10.0), (1.1, 50.0, 16.0)]) == []
    assert len(strides([(1.1, 50.0, 10.0), (1.1, 50.0, 14.0)])) == 2


def test_gait_summary_asymmetry_index_at_exactly_2_deg() -> None:
    g = gait_summary([stride(ext=2.0)], [stride("right", ext=2.0)])
    assert g["peak_hip_extension_asymmetry_rad"] == 0.0 and math.isnan(g["asymmetry_index_pct"])


# -- the shoulder rule ---------------------------------------------------------------------------------------
def shoulder_acc(push: int, third: int | None = None) -> np.ndarray:
    """After every peak but the last: a push-off step of 1 at ``push`` samples that then sinks by 0.02 per
    sample (a level that turns down), a loading step of 3 at +20 (the steepest rising flank), optionally a
    smaller step of 1.5 at ``third``; all back to 0 at +60."""
    n = len(STEADY_X)
    a, k = np.zeros(n), np.arange(n)
    for p in PEAK_IDX[:-1]:
        on = k < p + 60
        a += np.where((k >= p + push) & on, 1.0 - 0.02 * (k - p - push), 0.0)
        a += np.where((k >= p + 20) & on, 3.0, 0.0)
        if third is not None:
            a += np.where((k >= p + third) & on, 1.5, 0.0)
    return a


def shoulder(acc: np.ndarray, p: int) -> tuple[int, float] | None:
    """The definition: the last sample ``c`` within 0.1 s before the steepest rising flank (samples p + 19
    and p + 20, the first counts) where the derivative of the acceleration (Gaussian, sigma 15 ms) turns from
    positive to not positive, and the time of that zero crossing."""
    r = np.full(len(acc), np.nan)
    r[5:-5] = smooth(acc, _derivative_kernel(1.5, FS))
    js = p + 19
    for c in range(js - 1, js - 11, -1):
        if r[c - 1] > 0 >= r[c]:
            return c, (c - 1 + r[c - 1] / (r[c - 1] - r[c])) / FS
    return None


@pytest.mark.parametrize("push,third", [(8, None), (6, None), (8, 32)])
def test_shoulder_rule_takes_the_level_before_the_steepest_rise(push: int, third: int | None) -> None:
    acc = shoulder_acc(push, third)
    a = angles(STEADY_X - TILT_RAMP, tilt_deg=TILT_RAMP, acc=acc)
    ss = detect_strides(a, "left", ic_rule="shoulder").strides
    assert len(ss) == 8
    for s, p0, p1 in zip(ss[1:-2], PEAK_IDX[1:-3], PEAK_IDX[2:-2], strict=True):
        found = shoulder(acc, p0)
        assert found is not None and found[0] == p0 + push + 3  # 0.1 s back reaches push + 3 from push = 6
        assert s.t_start == pytest.approx(found[1], abs=1e-9)
        assert s.ic_source == "acceleration" and not s.doubtful
        c1 = shoulder(acc, p1)
        assert c1 is not None
        # the stride's samples start at the shoulder (a sample either way moves the index by 3 %)
        expected = compensation(STEADY_X, TILT_RAMP, found[0], c1[0])
        assert s.lumbar_compensation_index == pytest.approx(expected, rel=0.05)


def test_without_a_shoulder_in_reach_the_shoulder_rule_takes_the_onset() -> None:
    acc = shoulder_acc(5)  # the level turns down 11 samples before the steepest flank: too early
    assert shoulder(acc, PEAK_IDX[2]) is None
    a = angles(STEADY_X, acc=acc)
    got = detect_strides(a, "left", ic_rule="shoulder").strides
    onset = detect_strides(a, "left", ic_rule="onset").strides
    assert [s.t_start for s in got] == [s.t_start for s in onset]
    assert got[2].t_start == pytest.approx((PEAK_IDX[2] + 4.5) / FS, abs=1e-3)  # the push-off step


@pytest.mark.parametrize("smooth_s", [0.03, 0.3])
def test_streaming_long_strides_whose_contact_search_reaches_far_ahead(smooth_s: float) -> None:
    """1.95 s strides (the contact search reaches 0.35 of a cycle, 69 samples, past the peak) fed one sample
    at a time, a peak arriving as the last sample of a batch of final samples (the 4th second): the
    detector gives the batch's strides, with light or heavy smoothing."""
    x, _ = hip_curve([(1.95, 30.0, -15.0)] * 5, lead=2.29)
    a = angles(x)
    batch = detect_strides(a, "left", smooth_s=smooth_s)
    det = StrideDetector("left", smooth_s=smooth_s)
    for i in range(len(x)):
        det.update(a.slice(i, i + 1))
    det.finish()
    assert len(batch.strides) == 5
    np.testing.assert_equal([dataclasses.asdict(s) for s in det.strides],
                            [dataclasses.asdict(s) for s in batch.strides])


def test_light_smoothing_of_one_sample() -> None:
    """``smooth_s`` 0.01 s at 100 Hz: +- 1 sample (never less); a parabola through three samples is the
    samples themselves, so the values are the raw ones, where the triangle of ``value_kernel="triangle"``
    smooths them."""
    x, peaks = hip_curve(STEADY)
    s = detect_strides(angles(x), "left", smooth_s=0.01).strides[2]
    p0, p1 = round(peaks[2] * FS), round(peaks[3] * FS)
    assert s.hip_range_rad == pytest.approx((x[p1] - float(np.min(x[p0:p1]))) * D, rel=1e-12)
    s0 = detect_strides(angles(x), "left", smooth_s=0.0).strides[2]
    assert s0.hip_range_rad == s.hip_range_rad
    st = detect_strides(angles(x), "left", smooth_s=0.01, value_kernel="triangle").strides[2]
    sm = np.full(len(x), np.nan)
    sm[1:-1] = smooth(x, triangular_kernel(1))
    assert st.hip_range_rad == pytest.approx((sm[p1] - float(np.min(sm[p0:p1]))) * D, rel=1e-9)
    assert st.hip_range_rad < s.hip_range_rad - 0.01 * D


def test_a_peak_window_of_a_second() -> None:
    """Flexion peaks taken as the maximum within +- 1 s: 1.9 s strides are still found (the stream looks far
    enough ahead for the window)."""
    x, peaks = hip_curve([(1.9, 30.0, -15.0)] * 5)
    ss = detect_strides(angles(x), "left", peak_window_s=1.0).strides
    assert len(ss) == 5
    assert ss[1].t_start == pytest.approx(peaks[1] + 0.125 * 1.9, abs=1e-9)


# -- exact limits --------------------------------------------------------------------------------------------
def test_stride_times_of_exactly_0_7_and_2_0_s_count() -> None:
    """Peaks on samples: 1.9 - 1.2 is exactly 0.7 in floating point (kept), 3.3 - 2.6 a hair under (not);
    interior strides of 200 samples last exactly 2.0 s (kept)."""
    assert len(strides([(2.0, 30.0, -15.0)] * 6)) == 6
    x, _ = hip_curve([(0.7, 30.0, -15.0)] * 5, lead=0.0)  # peaks at 0.5, 1.2, 1.9, 2.6, 3.3, 4.0 s
    ss = detect_strides(angles(x), "left").strides
    assert len(ss) == 3 and ss[1].t_start == pytest.approx(1.2 + 0.125 * 0.7, abs=1e-12)


def peak_values(x: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """The detector's smoothed hip flexion (rad) at the given peak times."""
    return smoothed(x * D)[np.round(peaks * FS).astype(int)]


def test_swing_range_limit_is_inclusive() -> None:
    x, peaks = hip_curve(STEADY)
    sm = smoothed(x * D)
    rng = float(peak_values(x, peaks)[3] - np.nanmin(sm[300:900]))
    assert len(detect_strides(angles(x), "left", min_range_rad=rng).strides) == 8
    assert detect_strides(angles(x), "left", min_range_rad=math.nextafter(rng, 1.0)).strides == []


def test_peak_change_limit_is_inclusive() -> None:
    cycles = [(1.1, 40.0 if k % 2 else 34.0, -15.0) for k in range(9)]
    x, peaks = hip_curve(cycles)
    v = peak_values(x, peaks)
    change = float(v[2] - v[3])
    assert change > 0 and float(v[4] - v[3]) == change
    assert len(strides(cycles, max_peak_change_rad=change)) == 9
    assert strides(cycles, max_peak_change_rad=math.nextafter(change, 0.0)) == []


def test_peak_flexion_and_trough_limits_are_inclusive() -> None:
    x, peaks = hip_curve(STEADY)
    top = float(np.max(peak_values(x, peaks)[1:-1]))
    bottom = float(np.nanmin(smoothed(x * D)[300:900]))
    assert len(detect_strides(angles(x), "left", max_peak_flexion_rad=top).strides) >= 6
    assert detect_strides(angles(x), "left", max_peak_flexion_rad=math.nextafter(top, 0.0)).strides == []
    assert len(detect_strides(angles(x), "left", max_trough_rad=bottom).strides) == 8
    assert detect_strides(angles(x), "left", max_trough_rad=math.nextafter(bottom, -1.0)).strides == []


@pytest.mark.parametrize("odd,even,cut", [(10.0, -5.0, 2), (-5.0, 10.0, 2)])
def test_swing_ratio_limit_is_inclusive(odd: float, even: float, cut: int) -> None:
    """Alternating troughs: each stride's neighbour swings ``ratio`` times as much (or 1 / ``ratio``); a
    limit of exactly that ratio keeps them (all but one at an end, whose longer rise or fall swings a little
    more or less); a hair less keeps only the two next to that one."""
    cycles = [(1.1, 30.0, odd if k % 2 else even) for k in range(8)]
    x, peaks = hip_curve(cycles)
    sm = smoothed(x * D)
    v = peak_values(x, peaks)
    idx = np.round(peaks * FS).astype(int)
    ranges = [float(min(v[k], v[k + 1]) - np.min(sm[idx[k] : idx[k + 1]])) for k in range(len(idx) - 1)]
    ratio = max(ranges[2] / ranges[3], ranges[3] / ranges[2])
    assert ratio > 1 and max(ranges[4] / ranges[3], ranges[3] / ranges[4]) == ratio
    assert len(strides(cycles, range_ratio=ratio, peak_sigma_s=0.0)) == 7
    assert len(strides(cycles, range_ratio=math.nextafter(ratio, 0.0), peak_sigma_s=0.0)) == cut


# -- more contact evidence -----------------------------------------------------------------------------------
def test_an_impact_far_from_the_split_maximum_at_the_window_start_is_not_taken() -> None:
    """The split is largest at the very start of the search window (6 samples before the peak); an impact 20
    samples after the peak lies beyond the 0.12 s after it: the split maximum is the contact."""
    other = STEADY_X - split_bump(-6)
    a = angles(STEADY_X, other_thigh_deg=other, acc=impacts(PEAK_IDX[:-1] + 20))
    ss = detect_strides(a, "left", ic_rule="onset").strides
    assert ss[2].t_start == pytest.approx((PEAK_IDX[2] - 6) / FS, abs=1e-9)
    assert ss[2].ic_source == "thigh_split"


def test_small_impacts_count_without_a_sharpness_test() -> None:
    """Steps of 0.1 m/s^2 smoothed over 0.05 s: their steepest flank is below 1 m/s^3 and still a contact."""
    ss = acc_strides(20, amp=0.1, ic_smooth_s=0.05, ic_sharpness=0.0, min_acc_range_m_s2=0.1)
    assert ss[2].ic_source == "acceleration"
    assert ss[2].t_start == pytest.approx((PEAK_IDX[2] + 19.5) / FS, abs=1e-9)


def test_an_impact_rising_over_two_samples() -> None:
    """A quarter of the step at sample s, the rest at s + 1: the steepest flank is at s, and the parabola
    through it and its neighbours peaks a quarter of a sample later."""
    acc = np.zeros(len(STEADY_X))
    for p in PEAK_IDX[:-1]:
        acc[p + 20] = 0.25
        acc[p + 21 : p + 40] = 1.0
    ss = detect_strides(angles(STEADY_X, acc=acc), "left", ic_rule="onset").strides
    for s, p in zip(ss[1:-1], PEAK_IDX[1:-2], strict=True):
        assert s.t_start == pytest.approx((p + 20.25) / FS, abs=1e-9)



# -- per-stride metrics --------------------------------------------------------------------------------------
def test_lumbar_excursion_is_max_minus_min() -> None:
    lumbar = 10.0 + 3.0 * np.sin(2 * np.pi * np.arange(len(STEADY_X)) / 110.0)
    ss = detect_strides(angles(STEADY_X, lumbar_deg=lumbar), "left").strides
    sm = fitted(lumbar)
    for s, p0, p1 in zip(ss[1:-2], PEAK_IDX[1:-3], PEAK_IDX[2:-2], strict=True):
        seg = sm[p0 + 14 : p1 + 14]
        assert s.lumbar_excursion_rad == pytest.approx((seg.max() - seg.min()) * D, rel=1e-9)


def test_peak_thigh_extension_is_the_thighs_own_minimum() -> None:
    """A pelvic tilt that swings with the gait (0 at the hip's peaks and troughs) moves the thigh's minimum
    off the hip's: the thigh's own minimum is its peak extension."""
    tilt = 3.0 * np.sin(2 * np.pi * (np.arange(len(STEADY_X)) - PEAK_IDX[0]) / 110.0)
    a = angles(STEADY_X, tilt_deg=tilt)
    ss = detect_strides(a, "left").strides
    thigh = fitted(STEADY_X + tilt)
    for s, p0, p1 in zip(ss[1:-2], PEAK_IDX[1:-3], PEAK_IDX[2:-2], strict=True):
        seg = thigh[p0 + 14 : p1 + 14]
        assert s.peak_thigh_extension_rad == pytest.approx(-seg.min() * D, rel=1e-9)
        assert int(np.argmin(seg)) != int(np.argmin(fitted(STEADY_X)[p0 + 14 : p1 + 14]))


def test_a_thigh_gap_inside_a_stride_leaves_its_extension_from_the_hip_minimum() -> None:
    """The thigh angle missing for 5 samples right after each contact (the hip there): the thigh is read at
    the hip's minimum."""
    a = angles(STEADY_X)
    for p in PEAK_IDX:
        a.thigh_inclination_left[p + 20 : p + 25] = np.nan
    ss = detect_strides(a, "left").strides
    sm = fitted(STEADY_X)
    for s, p0, p1 in zip(ss[1:-2], PEAK_IDX[1:-3], PEAK_IDX[2:-2], strict=True):
        assert s.peak_thigh_extension_rad == pytest.approx(-np.min(sm[p0 + 14 : p1 + 14]) * D, rel=1e-9)
        assert math.isnan(s.peak_thigh_flexion_rad)


@pytest.mark.parametrize("trough,defined", [(2.2, True), (4.0, False)])
def test_compensation_needs_more_than_2_deg_of_thigh_extension(trough: float, defined: bool) -> None:
    """A 10 deg peak: the thigh extends about 2.5 deg (trough 2.2) or 1.9 deg (trough 4) in terminal
    stance."""
    x, peaks = hip_curve([(1.1, 10.0, trough)] * 8)
    ss = detect_strides(angles(x), "left", min_range_rad=2 * D).strides
    th = fitted(x)
    p0, p1 = round(peaks[2] * FS), round(peaks[3] * FS)
    pe = p0 + 14 + int(np.argmin(th[p0 + 14 : p1 + 14]))
    d_thigh = th[p0 + 14 + (pe - p0 - 14) // 2] - th[pe]
    assert (d_thigh > 2.0) == defined and abs(d_thigh - 2.0) > 0.05 and d_thigh < 3.0
    assert (ss[2].lumbar_compensation_index == 0.0) == defined


def test_a_retimed_last_stride_ends_at_its_own_phase_rule_contact() -> None:
    """The impact after peak 9 out of both rhythms, none after the last peak (10): the last stride is timed by
    the phase rule at both ends (peak + the learnt phase of its own cycle) and runs over samples
    [p9 + d, p10 + d)."""
    x, idx = walk(10)
    starts = [p + (38 if k == 9 else 20) for k, p in enumerate(idx[:-1])]
    ramp = 0.004 * np.arange(len(x))
    a = angles(x - ramp, tilt_deg=ramp, acc=impacts(starts, n=len(x)))
    last = detect_strides(a, "left", ic_rule="onset").strides[-1]
    phase = 0.195 / 1.1  # (to a few parts per million: the first contacts' phases differ a little)
    cycle = (last.t_start - idx[9] / FS) / phase
    assert last.doubtful and cycle == pytest.approx(1.1, abs=0.02)
    assert last.stride_time_s == pytest.approx(cycle, abs=1e-4)
    assert last.t_end == pytest.approx(last.t_start + cycle, abs=1e-4)
    assert last.pelvic_tilt_excursion_rad == pytest.approx(0.004 * (idx[10] - idx[9] - 1) * D, rel=1e-9)


def test_the_shoulder_of_a_faint_signal() -> None:
    """The same push-off, level and loading at a hundredth of the size (every derivative below 1 m/s^3):
    the same shoulder."""
    acc = shoulder_acc(8) * 0.01
    a = angles(STEADY_X, acc=acc)
    ss = detect_strides(a, "left", ic_rule="shoulder", min_acc_range_m_s2=0.01).strides
    found = shoulder(acc, PEAK_IDX[2])
    assert found is not None and found[0] == PEAK_IDX[2] + 11
    assert ss[2].t_start == pytest.approx(found[1], abs=1e-9)


def test_strides_with_one_contact_from_each_sensor_teach_the_phase() -> None:
    """Both thighs worn (their split largest 15 samples after each peak) and a sacral impact after every
    other peak (20 samples after it, inside the split's window): each stride has one contact from the
    impact and one from the split, both from the sensors, so their phases are learnt. Then the other thigh
    and the impacts stop: the phase rule uses the median of 0.15 and 0.195 s per 1.1 s cycle, not 0.125."""
    x, idx = walk(16)
    n = len(x)
    t = np.arange(n) / FS
    bump = np.zeros(n)
    for p in idx:
        u = t - (p + 15) / FS
        bump = np.maximum(bump, np.where(np.abs(u) < 0.55, 5.0 * (1 + np.cos(2 * np.pi * u / 1.1)), 0.0))
    switch = idx[9] - 20
    other = np.where(np.arange(n) < switch, x - bump, np.nan)
    acc = impacts([p + 20 for k, p in enumerate(idx[:9]) if k % 2 == 0], n=n)
    ss = detect_strides(angles(x, other_thigh_deg=other, acc=acc), "left", ic_rule="onset").strides
    early = {round(s.t_start * FS - p, 6) for s, p in zip(ss[1:8], idx[1:8], strict=True)}
    assert early == {15.0, 19.5}
    late = [s for s in ss if s.t_start > (idx[10] + 5) / FS and s.t_end < (idx[15] - 5) / FS]
    assert len(late) >= 3 and all(s.ic_source == "hip_phase" for s in late)
    for s in late:
        p = idx[int(np.argmin(np.abs(idx / FS - s.t_start + 0.17)))]
        assert s.t_start == pytest.approx(p / FS + 0.1725, abs=0.002)


# -- contacts from the thigh's impact (its transient part) --------------------------------------------------
def test_the_impact_low_pass_is_a_normalised_gaussian_of_three_sigma() -> None:
    k = _gauss_kernel(3.0)
    u = np.arange(-9, 10)
    g = np.exp(-0.5 * (u / 3.0) ** 2)
    np.testing.assert_allclose(k, g / g.sum(), rtol=1e-15)
    assert len(_gauss_kernel(2.5)) == 2 * 8 + 1  # ceil(7.5) = 8
    assert len(_gauss_kernel(0.1)) == 3  # at least one sample each side


def spike_threshold(gate: str = "rise") -> float:
    """Height of a one-sample spike on a constant thigh acceleration whose transient part (no smoothing by
    default) is exactly at a threshold: the Gaussian low-pass of sigma 3 samples takes ``H g0`` of it at its
    sample and ``H g_k`` at ``k`` samples from it (g0, g1: the kernel's centre and next taps), so the
    transient is ``H (1 - g0)`` on the spike (``gate="height"``: ``min_impact_m_s2`` = 2) and its rise
    above the lowest transient of the 4 samples before it is ``H (1 - g0 + g1)`` (``gate="rise"``:
    ``min_impact_rise_m_s2`` = 3)."""
    k = _gauss_kernel(3.0)
    g0, g1 = k[9], k[10]
    return 2.0 / (1.0 - g0) if gate == "height" else 3.0 / (1.0 - g0 + g1)


@pytest.mark.parametrize(
    "gate,scale,taken",
    [("rise", 1.001, True), ("rise", 0.999, False), ("height", 1.001, True), ("height", 0.999, False)],
)
def test_a_thigh_spike_is_the_contact_when_its_transient_reaches_min_impact(
    gate: str, scale: float, taken: bool
) -> None:
    """Sacral steps 20 samples after each flexion peak, a one-sample spike of the left thigh's acceleration
    (on 5 m/s^2) 5 samples before them: the contact is on the spike's sample exactly when its transient
    part rises by 3 m/s^2 (the binding test for a spike), and, with the rise test off, exactly when the
    transient reaches 2 m/s^2; the constant under it never counts."""
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + 20))
    thigh = np.full(len(STEADY_X), 5.0)
    thigh[PEAK_IDX[:-1] + 15] += scale * spike_threshold(gate)
    params = {"min_impact_rise_m_s2": 0.0} if gate == "height" else {}
    thighs = dataclasses.replace(a, thigh_acc_left=thigh)
    ss = detect_strides(thighs, "left", ic_rule="onset", ic_impact_edge=1.0, **params).strides
    assert len(ss) == 8
    for s, p in zip(ss[1:-1], PEAK_IDX[1:-2], strict=True):
        if taken:
            assert s.t_start == pytest.approx((p + 15) / FS, abs=1e-9)
            assert (s.ic_source, s.confidence) == ("thigh_impact", 1.0)
        else:
            assert s.t_start == pytest.approx((p + 20 - 0.5) / FS, abs=1e-9)
            assert s.ic_source == "acceleration"


@pytest.mark.parametrize("smooth_s,taken", [(0.0, True), (0.005, True), (0.006, False), (0.01, False)])
def test_the_thigh_magnitude_is_smoothed_only_when_asked(smooth_s: float, taken: bool) -> None:
    """A one-sample spike of 1.5 times the rise threshold counts unsmoothed (and with a smoothing under half
    a sample, which rounds to none); the triangle (1, 2, 1) / 4 of ``ic_impact_smooth_s`` = 0.006-0.01 s at
    100 Hz halves it, under the threshold."""
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + 20))
    thigh = np.full(len(STEADY_X), 5.0)
    thigh[PEAK_IDX[:-1] + 15] += 1.5 * spike_threshold()
    ss = detect_strides(
        dataclasses.replace(a, thigh_acc_left=thigh), "left", ic_rule="onset", ic_impact_smooth_s=smooth_s
    ).strides
    assert len(ss) == 8
    assert [s.ic_source for s in ss[1:-1]] == ["thigh_impact" if taken else "acceleration"] * 6


@pytest.mark.parametrize("dip_before,taken", [(4, True), (5, False)])
def test_a_thigh_spike_rises_from_the_lowest_transient_of_the_four_samples_before_it(
    dip_before: int, taken: bool
) -> None:
    """A spike of 0.9 times the rise threshold passes the height test but rises too little above the flat
    thigh before it; a dip of 2 m/s^2 ``dip_before`` samples before it lets it rise enough when the dip
    lies within ``ic_impact_rise_s`` (0.04 s, 4 samples at 100 Hz), not when it lies one sample earlier."""
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + 20))
    thigh = np.full(len(STEADY_X), 5.0)
    thigh[PEAK_IDX[:-1] + 15] += 0.9 * spike_threshold()
    thigh[PEAK_IDX[:-1] + 15 - dip_before] -= 2.0
    ss = detect_strides(dataclasses.replace(a, thigh_acc_left=thigh), "left", ic_rule="onset").strides
    assert len(ss) == 8
    assert [s.ic_source for s in ss[1:-1]] == ["thigh_impact" if taken else "acceleration"] * 6


@pytest.mark.parametrize("first,share,expect", [(0.6, 0.5, 0), (0.4, 0.5, 1), (0.4, 0.3, 0)])
def test_the_first_thigh_spike_of_comparable_size_is_the_contact(
    first: float, share: float, expect: int
) -> None:
    """Two spikes before the sacral contact (8 and 3 samples before it), the later one of four times the
    rise threshold, the earlier one ``first`` of it (transient ~0.58 or ~0.37 of the later one's, as each
    spike's low-pass lowers the other's): the earlier one is the contact when its transient is at least
    ``ic_impact_share`` of the later one's (both pass the rise test), else the later one (the soft tissue
    rings after the impact). Each contact within half a sample of its spike (the parabola's refinement)."""
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + 20))
    thigh = np.full(len(STEADY_X), 5.0)
    big = 4 * spike_threshold()
    thigh[PEAK_IDX[:-1] + 11] += first * big
    thigh[PEAK_IDX[:-1] + 16] += big
    ss = detect_strides(
        dataclasses.replace(a, thigh_acc_left=thigh), "left", ic_rule="onset", ic_impact_share=share,
        ic_impact_edge=1.0,
    ).strides
    assert len(ss) == 8
    for s, p in zip(ss[1:-1], PEAK_IDX[1:-2], strict=True):
        assert s.t_start == pytest.approx((p + (11 if expect == 0 else 16)) / FS, abs=0.5 / FS)
        assert s.ic_source == "thigh_impact"


@pytest.mark.parametrize("offset,taken", [(0, True), (-1, False), (20, True), (21, False)])
def test_a_thigh_spike_counts_from_0_2_s_before_the_sacral_contact_to_it(offset: int, taken: bool) -> None:
    """The sacral contact at the step 20 samples after each peak (its flank on sample 19, refined by half a
    sample): a spike counts from 20 samples before that flank's sample (0.2 s) up to it."""
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + 20))
    thigh = np.full(len(STEADY_X), 5.0)
    thigh[PEAK_IDX[:-1] + offset - 1] += 2 * spike_threshold()
    ss = detect_strides(dataclasses.replace(a, thigh_acc_left=thigh), "left", ic_rule="onset").strides
    assert [s.ic_source for s in ss[1:-1]] == ["thigh_impact" if taken else "acceleration"] * 6


@pytest.mark.parametrize(
    "amp,offset,taken",
    [(-1.0, 21, True), (-1.0, 25, True), (-1.0, 26, False), (1.0, 21, False), (1.0, 25, False)],
)
def test_after_a_falling_sacral_onset_a_thigh_spike_counts_up_to_0_05_s_later(
    amp: float, offset: int, taken: bool
) -> None:
    """A sacral onset on a falling flank (the step down 20 samples after each peak: a dip's flank before the
    contact, as a compensating walker's pelvis makes it) with no thigh spike up to it: a spike up to 5 samples
    (``ic_impact_after_s``, 0.05 s) after that flank's sample is the contact, timed on its own sample; one
    later is not. After a rising onset (a step up) no spike after it counts, as before; with
    ``ic_impact_after_s=0`` none after a falling one either."""
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + 20, amp=amp))
    thigh = np.full(len(STEADY_X), 5.0)
    thigh[PEAK_IDX[:-1] + offset - 1] += 2 * spike_threshold()
    a = dataclasses.replace(a, thigh_acc_left=thigh)
    ss = detect_strides(a, "left", ic_rule="onset").strides[1:-1]
    assert [s.ic_source for s in ss] == ["thigh_impact" if taken else "acceleration"] * 6
    want = offset - 1.5 if taken else 19.5  # the spike's leading edge, or the flank between samples 19 and 20
    assert [round(s.t_start * FS - p, 6) for s, p in zip(ss, PEAK_IDX[1:-2], strict=True)] == [want] * 6
    off = detect_strides(a, "left", ic_rule="onset", ic_impact_after_s=0.0).strides[1:-1]
    assert [s.ic_source for s in off] == ["acceleration"] * 6


# -- the thigh impact on its raw magnitude (no low-pass: the transient is the magnitude itself) -------------
def raw_thigh_strides(spikes: dict[int, float], acc_offset: int = 20, **params: object) -> list[Stride]:
    """Sacral steps ``acc_offset`` samples after each flexion peak (the onset contact on the flank sample
    before the step), the left thigh's acceleration 0 but ``spikes`` (offset from each peak -> value), the
    impact's low-pass off (``ic_impact_highpass_s=0``: the transient is the magnitude, values exact), the
    contact timed at the impact's peak (``ic_impact_edge=1``, unless ``params`` say otherwise): these tests
    pin which candidate is taken; the timing at the leading edge (the default) is tested on its own below."""
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + acc_offset))
    thigh = np.zeros(len(STEADY_X))
    for off, v in spikes.items():
        thigh[PEAK_IDX[:-1] + off] = v
    params = {"ic_impact_highpass_s": 0.0, "ic_impact_edge": 1.0, **params}
    ss = detect_strides(dataclasses.replace(a, thigh_acc_left=thigh), "left", ic_rule="onset",
                        **params).strides  # type: ignore[arg-type]
    assert len(ss) == 8
    return ss[1:-1]


def contacts(ss: list[Stride]) -> list[tuple[str, float]]:
    """(source, contact offset from the stride's flexion peak in samples, to 1e-6)."""
    return [(s.ic_source, round((s.t_start * FS - p), 6)) for s, p in zip(ss, PEAK_IDX[1:-2], strict=True)]


def test_raw_magnitude_spike_is_the_contact_on_its_sample() -> None:
    # (0, 5, 0): the parabola's vertex on the sample
    assert contacts(raw_thigh_strides({15: 5.0})) == [("thigh_impact", 15.0)] * 6
    # without a thigh spike: the sacral onset, half a sample before the step's flank sample
    assert contacts(raw_thigh_strides({})) == [("acceleration", 19.5)] * 6


def test_a_two_sample_plateau_is_one_candidate_at_its_first_sample() -> None:
    # the first sample is above its left neighbour and not below its right one; the vertex half way
    assert contacts(raw_thigh_strides({14: 5.0, 15: 5.0})) == [("thigh_impact", 14.5)] * 6


def test_a_plateau_starting_just_before_the_window_has_no_candidate_inside_it() -> None:
    # window from 20 samples before the sacral contact's sample (peak + 19): peak - 1; its first sample,
    # peak - 2, is outside, and peak - 1 is not above its left neighbour
    assert contacts(raw_thigh_strides({-2: 5.0, -1: 5.0})) == [("acceleration", 19.5)] * 6
    assert contacts(raw_thigh_strides({-1: 5.0, 0: 5.0})) == [("thigh_impact", -0.5)] * 6


@pytest.mark.parametrize("value,taken", [(2.0, True), (1.999, False)])
def test_without_the_rise_test_a_transient_of_exactly_min_impact_counts(value: float, taken: bool) -> None:
    got = contacts(raw_thigh_strides({15: value}, ic_impact_rise_s=0.0))
    assert got == [("thigh_impact", 15.0) if taken else ("acceleration", 19.5)] * 6


@pytest.mark.parametrize("value,taken", [(3.0, True), (2.999, False)])
def test_a_rise_of_exactly_min_impact_rise_counts(value: float, taken: bool) -> None:
    got = contacts(raw_thigh_strides({15: value}))
    assert got == [("thigh_impact", 15.0) if taken else ("acceleration", 19.5)] * 6


def test_a_spike_of_exactly_the_share_of_the_largest_is_the_first_of_comparable_size() -> None:
    assert contacts(raw_thigh_strides({11: 4.0, 16: 8.0})) == [("thigh_impact", 11.0)] * 6
    assert contacts(raw_thigh_strides({11: 3.999, 16: 8.0})) == [("thigh_impact", 16.0)] * 6


@pytest.mark.parametrize("before,taken", [(0.0, True), (2.5, False)])
def test_a_rise_window_of_one_sample(before: float, taken: bool) -> None:
    """ic_impact_rise_s = 0.01 s: one sample at 100 Hz; a spike of 4 rises 4 from 0 but only 1.5 from 2.5."""
    got = contacts(raw_thigh_strides({14: before, 15: 4.0}, ic_impact_rise_s=0.01))
    assert got == [("thigh_impact", 15.0) if taken else ("acceleration", 19.5)] * 6


def test_each_candidate_rises_from_the_lowest_value_of_its_own_rise_window() -> None:
    """A spike of 4 on a shelf of 3 rises 1 (too little); a later one of 8 rises 11 from a dip of -3 two
    samples before it: the later one is the contact, though the earlier one is half its size."""
    spikes = {6: 3.0, 7: 3.0, 8: 3.0, 9: 3.0, 10: 4.0, 14: -3.0, 16: 8.0}
    assert [s for s, _ in contacts(raw_thigh_strides(spikes))] == ["thigh_impact"] * 6
    assert [o for _, o in contacts(raw_thigh_strides(spikes))] == pytest.approx([16.0] * 6, abs=0.5)


def test_a_gap_in_the_thigh_window_means_no_thigh_impact() -> None:
    # the gap (peak + 10) in the window, outside the spike's rise window (peak + 14 to + 18)
    assert contacts(raw_thigh_strides({10: NAN, 18: 5.0})) == [("acceleration", 19.5)] * 6
    assert contacts(raw_thigh_strides({18: 5.0})) == [("thigh_impact", 18.0)] * 6


def test_a_window_of_one_sample_on_the_contact_so_far() -> None:
    one = {"ic_impact_window_s": (0.0, 0.0)}
    assert contacts(raw_thigh_strides({19: 5.0}, **one)) == [("thigh_impact", 19.0)] * 6
    assert contacts(raw_thigh_strides({18: 5.0}, **one)) == [("acceleration", 19.5)] * 6


@pytest.mark.parametrize("after,taken", [(3, True), (5, True), (6, False)])
def test_the_window_reaches_ic_impact_window_s_1_after_the_contact_so_far(after: int, taken: bool) -> None:
    got = contacts(raw_thigh_strides({19 + after: 5.0}, ic_impact_window_s=(0.1, 0.05)))
    assert got == [("thigh_impact", 19.0 + after) if taken else ("acceleration", 19.5)] * 6


def test_a_spike_on_the_search_window_start_counts_and_rises_from_its_first_sample() -> None:
    """Sacral step 4 samples before each peak (flank on peak - 5, the search window's second sample): the
    thigh window reaches 0.2 s before it, past the search window's start (peak - 6); a spike on peak - 5
    counts, and a spike of 2.5 there rises 3.5 from a dip of -1 on peak - 6, 0 without it."""
    assert contacts(raw_thigh_strides({-5: 5.0}, acc_offset=-4)) == [("thigh_impact", -5.0)] * 6
    got = contacts(raw_thigh_strides({-6: -1.0, -5: 2.5}, acc_offset=-4))
    assert [s for s, _ in got] == ["thigh_impact"] * 6
    assert [o for _, o in got] == pytest.approx([-5.0] * 6, abs=0.5)
    assert contacts(raw_thigh_strides({-5: 2.5}, acc_offset=-4)) == [("acceleration", -4.5)] * 6


@pytest.mark.parametrize("offset,taken", [(-25, True), (-26, False)])
def test_the_thigh_window_reaches_before_the_search_window(offset: int, taken: bool) -> None:
    """Sacral step 4 samples before each peak (flank on peak - 5; the search window starts at peak - 6): the
    thigh window reaches 20 samples (0.2 s) before the flank's sample, to peak - 25, past the search
    window's start (a flexion peak can come after the contact)."""
    got = contacts(raw_thigh_strides({offset: 5.0}, acc_offset=-4))
    assert got == [("thigh_impact", float(offset)) if taken else ("acceleration", -4.5)] * 6


def test_a_spike_on_the_search_window_end() -> None:
    """Sacral step 39 samples after each peak (flank on peak + 38, the search window's last sample but
    one): a spike there counts; with a window reaching after the contact, a spike on the window's last
    sample (peak + 39) does not (its right neighbour lies outside)."""
    assert contacts(raw_thigh_strides({38: 5.0}, acc_offset=39)) == [("thigh_impact", 38.0)] * 6
    got = contacts(raw_thigh_strides({39: 5.0}, acc_offset=39, ic_impact_window_s=(0.1, 0.05)))
    assert got == [("acceleration", 38.5)] * 6


# -- the thigh impact timed at its leading edge (the default, ``ic_impact_edge`` = 0.5) ----------------------
def edge(spikes: dict[int, float], **params: object) -> list[tuple[str, float]]:
    return contacts(raw_thigh_strides(spikes, **{"ic_impact_edge": 0.5, **params}))


def test_the_default_times_the_impact_at_half_its_rise() -> None:
    assert StrideDetector("left").ic_impact_edge == 0.5
    # a one-sample spike from 0: half way between the sample before it and its own
    assert edge({15: 5.0}) == [("thigh_impact", 14.5)] * 6
    # a ramp 1, 3, 5, 7 from 0: half of 7 is crossed between 3 and 5
    assert edge({12: 1.0, 13: 3.0, 14: 5.0, 15: 7.0}) == [("thigh_impact", 13.25)] * 6
    # a quarter of the rise: 1.75, between 1 and 3
    assert edge({12: 1.0, 13: 3.0, 14: 5.0, 15: 7.0}, ic_impact_edge=0.25) == [("thigh_impact", 12.375)] * 6
    # the peak itself (1 or more), refined by the parabola through 5, 7, 0
    got = edge({12: 1.0, 13: 3.0, 14: 5.0, 15: 7.0}, ic_impact_edge=1.0)
    assert got == [("thigh_impact", round(15.0 + _vertex(5.0, 7.0, 0.0), 6))] * 6


def test_the_edge_rises_from_the_lowest_magnitude_of_the_rise_window_before_the_peak() -> None:
    """The rise is measured from the lowest magnitude over the ``ic_impact_rise_s`` (4 samples) before the
    peak: -2 four samples before it counts (level 2.5, between 1 and 3), -2 five samples before it does not
    (level 3.5, between 3 and 5)."""
    assert edge({11: -2.0, 12: 1.0, 13: 3.0, 14: 5.0, 15: 7.0}) == [("thigh_impact", 12.75)] * 6
    assert edge({10: -2.0, 12: 1.0, 13: 3.0, 14: 5.0, 15: 7.0}) == [("thigh_impact", 13.25)] * 6


def test_the_edge_is_the_last_crossing_before_the_peak() -> None:
    """Walking back from the peak (8) the magnitude first falls to half of its rise (4) between 3 and 6: the
    earlier bump of 3.5 (a candidate under ``ic_impact_share`` of the peak) is not reached."""
    assert edge({12: 3.5, 13: 3.0, 14: 6.0, 15: 8.0}) == [("thigh_impact", 13.333333)] * 6


# -- the "smooth" sacral rule: the steepest rise of the low-passed acceleration -----------------------------
def sigmoid_rises(centre: float, width: float = 4.0, amp: float = 1.0,
                  drop_at: int | None = None) -> np.ndarray:
    """The sacrum's vertical acceleration: a rise of ``amp`` (tanh of ``width`` samples) centred ``centre``
    samples after each flexion peak but the last, and a step down of 1 at ``drop_at`` samples when given."""
    n = len(STEADY_X)
    i = np.arange(n)
    a = np.zeros(n)
    for p in PEAK_IDX[:-1]:
        a += amp * 0.5 * (1 + np.tanh((i - (p + centre)) / width))
        if drop_at is not None:
            a -= 1.0 * (i >= p + drop_at)
    return a


def smooth_contacts(acc: np.ndarray, **params: object) -> list[tuple[str, float]]:
    ss = detect_strides(angles(STEADY_X, acc=acc), "left", ic_rule="smooth", **params).strides  # type: ignore
    assert len(ss) == 8
    return contacts(ss[1:-1])


@pytest.mark.parametrize("highpass_s", [0.03, 0.08, 0.2])
def test_smooth_rule_stays_aligned_when_the_thigh_impact_features_reach_further(highpass_s: float) -> None:
    """A thigh-impact low-pass wider than the slow sacral kernel widens the features' margin: the sacral
    features must still be aligned to the window's samples (they came out late by the difference)."""
    got = smooth_contacts(sigmoid_rises(19.3), ic_impact_highpass_s=highpass_s)
    assert [o for _, o in got] == pytest.approx([19.3] * 6, abs=0.01)


@pytest.mark.parametrize("centre", [19.3, 30.7, -5.0, 38.0])
def test_smooth_rule_takes_the_steepest_rise_between_samples(centre: float) -> None:
    """A symmetric rise: the low-passed derivative peaks at its centre, found between samples by the
    parabola (within 0.01 sample); from the search window's second to its last but one sample."""
    got = smooth_contacts(sigmoid_rises(centre))
    assert [s for s, _ in got] == ["acceleration"] * 6
    assert [o for _, o in got] == pytest.approx([centre] * 6, abs=0.01)


def test_smooth_rule_on_a_step_takes_the_first_of_two_equal_slopes() -> None:
    # a step between samples 19 and 20: equal derivatives on both, the first taken, the vertex half way
    assert smooth_contacts(impacts(PEAK_IDX[:-1] + 20)) == [("acceleration", 19.5)] * 6


@pytest.mark.parametrize("centre", [39.0, 45.0, -10.0])
def test_smooth_rule_refuses_a_rise_at_the_window_edges(centre: float) -> None:
    """A rise still climbing at the search window's end, or already falling at its start, is another step's
    contact: no contact from the acceleration (the phase rule)."""
    assert [s for s, _ in smooth_contacts(sigmoid_rises(centre))] == ["hip_phase"] * 6


def steepest_smooth_rise(acc: np.ndarray, centre: int) -> float:
    """The largest derivative (m/s^3) of ``acc`` low-passed over ``ic_slow_s`` (0.05 s, 5 samples at 100 Hz)
    within 10 samples of ``centre`` after the second flexion peak, as the smooth rule computes it."""
    k = _derivative_kernel(0.05 * FS, FS)
    g = len(k) // 2
    d = smooth(acc, k)  # d[j] at sample j + g
    p = PEAK_IDX[1] + centre
    return float(np.max(d[p - 10 - g : p + 10 - g]))


@pytest.mark.parametrize("scale,source", [(1.01, "acceleration"), (0.99, "hip_phase")])
def test_smooth_rule_needs_a_rise_of_min_smooth_rise(scale: float, source: str) -> None:
    """A drop of 1 m/s^2 gives the window its range; a gentle rise of 0.1 m/s^2 (0.5 m/s^3 at most) is the
    contact, at its centre, only when its low-passed steepest slope reaches ``min_smooth_rise_m_s3``: just
    above it, taken; just below it, no contact (one thigh: the phase rule times a doubtful stride)."""
    acc = sigmoid_rises(20.3, width=10.0, amp=0.1, drop_at=-3)
    slope = steepest_smooth_rise(acc, 20)
    assert 0.2 < slope < 0.5
    got = smooth_contacts(acc, min_smooth_rise_m_s3=slope / scale)
    assert [s for s, _ in got] == [source] * 6
    if source == "acceleration":
        assert [o for _, o in got] == pytest.approx([20.3] * 6, abs=0.05)


def test_smooth_rule_default_minimum_refuses_a_gentle_rise_and_takes_a_step() -> None:
    """By default (5 m/s^3) a rise of 0.1 m/s^2 over ~0.1 s is no contact; a rise of 1 m/s^2 over ~40 ms
    (about 10 m/s^3 low-passed) is."""
    assert StrideDetector("left").min_smooth_rise_m_s3 == 5.0
    gentle = sigmoid_rises(20.3, width=10.0, amp=0.1, drop_at=-3)
    assert [s for s, _ in smooth_contacts(gentle)] == ["hip_phase"] * 6
    step = sigmoid_rises(20.3)
    assert 5.0 < steepest_smooth_rise(step, 20) < 15.0
    assert [s for s, _ in smooth_contacts(step)] == ["acceleration"] * 6


@pytest.mark.parametrize("reach,source", [(0.018, "acceleration"), (0.009, "hip_phase")])
def test_smooth_rule_needs_three_samples_in_the_window(reach: float, source: str) -> None:
    """ic_search (0, reach) of a 1.1 s cycle: peak to peak + 2 (3 samples, a rise centred on the middle one
    is found) or peak to peak + 1 (2 samples: no interior sample, no contact)."""
    got = smooth_contacts(sigmoid_rises(1.0, width=1.0), ic_search=(0.0, reach))
    assert [s for s, _ in got] == [source] * 6
    if source == "acceleration":
        assert [o for _, o in got] == pytest.approx([1.0] * 6, abs=0.01)


def test_vertex_of_three_values() -> None:
    """Offset of the parabola's vertex, within +-0.5 sample, 0 where the values do not curve downwards."""
    assert _vertex(1.0, 2.0, 1.0) == 0.0
    assert _vertex(1.0, 2.0, 2.0) == 0.5 and _vertex(2.0, 2.0, 1.0) == -0.5
    assert _vertex(0.0, 3.0, 2.0) == pytest.approx(0.5 * -2.0 / -4.0)
    assert _vertex(0.0, 5.0, 9.0) == 0.5 and _vertex(9.0, 5.0, 0.0) == -0.5  # clipped
    assert _vertex(1.0, 1.0, 1.0) == 0.0 and _vertex(0.0, 0.0, 5.0) == 0.0 and _vertex(1.0, 0.9, 1.2) == 0.0


def test_thigh_impacts_teach_the_walkers_phase() -> None:
    """Thigh spikes 15 samples after each peak (raw magnitude), sacral steps at 20, none after peak 4 (a slow
    bump instead): the thigh-impact contacts teach a phase of 0.15 / 1.1, which times the doubtful one."""
    x, peaks = walk(10)
    starts = [p + 20 for k, p in enumerate(peaks[:-1]) if k != 4]
    acc = impacts(starts, n=len(x)) + slow_bump(peaks[4] + 20, len(x))
    thigh = np.zeros(len(x))
    thigh[[p + 15 for k, p in enumerate(peaks[:-1]) if k != 4]] = 5.0
    a = dataclasses.replace(angles(x, acc=acc), thigh_acc_left=thigh)
    ss = detect_strides(a, "left", ic_rule="onset", ic_impact_highpass_s=0.0, ic_impact_edge=1.0).strides
    assert len(ss) == 10
    assert [s.ic_source for s in ss[:3]] == ["thigh_impact"] * 3
    assert ss[4].doubtful and ss[4].ic_source == "hip_phase"
    assert ss[4].t_start == pytest.approx(peaks[4] / FS + 0.15, abs=1e-6)


def test_a_thigh_impact_next_to_a_split_maximum_on_the_search_window_start() -> None:
    """Both thighs, their split largest on the search window's first sample (peak - 6), no sacral signal;
    with a window reaching 0.05 s after the contact so far, a thigh spike 3 samples later is the contact."""
    other = STEADY_X - split_bump(-6)
    thigh = np.zeros(len(STEADY_X))
    thigh[PEAK_IDX[:-1] - 3] = 5.0
    a = dataclasses.replace(angles(STEADY_X, other_thigh_deg=other), thigh_acc_left=thigh)
    ss = detect_strides(
        a, "left", ic_impact_highpass_s=0.0, ic_impact_window_s=(0.1, 0.05), ic_impact_edge=1.0
    ).strides
    assert len(ss) >= 6
    for s, p in zip(ss[1:-1], PEAK_IDX[1:-2], strict=False):
        assert (s.ic_source, round(s.t_start * FS - p, 6)) == ("thigh_impact", -3.0)


def test_median_of_a_short_list() -> None:
    assert _median([3.0, 1.0, 2.0]) == 2.0
    assert _median([4.0, 1.0, 3.0, 2.0]) == 2.5 and _median([0.1, 0.9, 0.3, 0.2, 0.8, 0.4]) == 0.35


# -- the thigh impact's leading edge at its limits ------------------------------------------------------
def test_without_a_rise_window_the_contact_is_the_impact_peak_whatever_the_edge() -> None:
    """ic_impact_rise_s = 0: no rise to measure the edge in, so the contact is the impact's peak, refined by
    the parabola (here through 4, 5, 0), also with the default edge of half the rise."""
    got = edge({14: 4.0, 15: 5.0}, ic_impact_rise_s=0.0)
    assert got == [("thigh_impact", round(15.0 + _vertex(4.0, 5.0, 0.0), 6))] * 6


def test_a_rise_window_of_one_sample_times_the_edge_too() -> None:
    """ic_impact_rise_s = 0.01 s (one sample): the rise from 1 to 5 is crossed at half of it (3) half way
    between the two samples."""
    assert edge({14: 1.0, 15: 5.0}, ic_impact_rise_s=0.01) == [("thigh_impact", 14.5)] * 6


def test_the_edge_rise_counts_the_samples_next_to_the_peak() -> None:
    """The lowest magnitude of the rise window includes the sample just before the peak (-2: level 1.5) but
    not the one after it (-2 there: level 2.5)."""
    assert edge({14: -2.0, 15: 5.0}) == [("thigh_impact", 14.5)] * 6
    assert edge({15: 5.0, 16: -2.0}) == [("thigh_impact", 14.5)] * 6
    assert edge({13: 2.5, 14: -4.0, 15: 8.0}) == [("thigh_impact", 14.5)] * 6  # level 2: between -4 and 8


def test_a_sample_exactly_at_the_edge_level_is_the_crossing() -> None:
    """A ramp 1, 3.5, 5, 7 from 0: half of 7 is 3.5, reached exactly on the second sample."""
    assert edge({12: 1.0, 13: 3.5, 14: 5.0, 15: 7.0}) == [("thigh_impact", 13.0)] * 6


def test_the_edge_rise_window_starts_at_the_search_window_start() -> None:
    """Sacral step 4 samples before each peak (the thigh window is one sample, peak - 5): a spike of 2.5 there
    rises from -1 on the search window's first sample; half of that rise (0.75) is crossed half way."""
    got = contacts(raw_thigh_strides({-6: -1.0, -5: 2.5}, acc_offset=-4, ic_impact_edge=0.5))
    assert got == [("thigh_impact", -5.5)] * 6


def test_the_peak_extension_lies_inside_the_stride_timed_by_a_thigh_impact() -> None:
    """A stride runs from its contact to the next: its peak hip extension is found inside it."""
    for params in ({"ic_impact_edge": 1.0}, {"ic_impact_edge": 0.5}):
        ss = raw_thigh_strides({15: 5.0}, **params)
        assert all(s.ic_source == "thigh_impact" for s in ss)
        assert all(s.t_start <= s.t_peak_extension < s.t_end for s in ss)



@pytest.mark.parametrize("spikes,edge_share,first", [
    ({15: 5.0}, 1.0, 15),
    ({15: 5.0}, 0.5, 15),
    ({12: 1.0, 13: 3.5, 14: 5.0, 15: 7.0}, 0.5, 14),  # the level (3.5) reached exactly on sample 13
])
def test_a_stride_timed_by_a_thigh_impact_spans_its_samples_from_the_impact(
    spikes: dict[int, float], edge_share: float, first: int
) -> None:
    """Thigh impacts after each peak (raw magnitude), sacral steps at 20: the stride's samples run from the
    impact's sample (its peak, or the first sample above its leading edge's level) to the next one's, so its
    tilt excursion and compensation index are those of [p0 + first, p1 + first)."""
    thigh = np.zeros(len(STEADY_X))
    for off, v in spikes.items():
        thigh[PEAK_IDX[:-1] + off] = v
    a = angles(STEADY_X - TILT_RAMP, tilt_deg=TILT_RAMP, acc=impacts(PEAK_IDX[:-1] + 20))
    a = dataclasses.replace(a, thigh_acc_left=thigh)
    ss = detect_strides(
        a, "left", ic_rule="onset", ic_impact_highpass_s=0.0, ic_impact_edge=edge_share
    ).strides
    assert len(ss) == 8
    for s, p0, p1 in zip(ss[1:-2], PEAK_IDX[1:-3], PEAK_IDX[2:-2], strict=True):
        assert s.ic_source == "thigh_impact"
        expected = compensation(STEADY_X, TILT_RAMP, p0 + first, p1 + first)
        assert s.lumbar_compensation_index == pytest.approx(expected, rel=1e-9)
        assert s.pelvic_tilt_excursion_rad == pytest.approx(0.004 * (p1 - p0 - 1) * D, rel=1e-9)


@pytest.mark.parametrize("smooth_s", [0.05, 0.08])
def test_onset_rule_with_a_short_kernel_as_wide_as_the_slow_one_or_wider(smooth_s: float) -> None:
    """ic_smooth_s at or above ic_slow_s (the sharpness test off): the features stay aligned to the window's
    samples, so the step's steepest flank is still found half way between its samples (steps 60 samples
    long, so that the wide derivative of the step down does not reach the step up)."""
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + 20, width=60))
    ss = detect_strides(a, "left", ic_rule="onset", ic_smooth_s=smooth_s, ic_sharpness=0.0).strides
    assert len(ss) == 8
    onsets = (PEAK_IDX[:-1] + 20 - 0.5) / FS
    for s, t in zip(ss[:-1], onsets[:-1], strict=True):
        assert s.ic_source == "acceleration"
        assert s.t_start == pytest.approx(t, abs=1e-9)


@pytest.mark.parametrize("centre", [39.0, 45.0])
def test_smooth_rule_refuses_a_rise_after_the_window_when_the_impact_features_reach_further(
    centre: float,
) -> None:
    """The wider margin of a thigh-impact low-pass of 0.2 s does not widen the smooth rule's window."""
    got = smooth_contacts(sigmoid_rises(centre), ic_impact_highpass_s=0.2)
    assert [s for s, _ in got] == ["hip_phase"] * 6


def test_streaming_with_a_wide_thigh_impact_low_pass_one_sample_at_a_time() -> None:
    """The stream keeps enough samples before each stride for the impact's 0.2 s low-pass (60 samples each
    side): fed one sample at a time, the detector gives the batch's strides."""
    thigh = np.zeros(len(STEADY_X))
    thigh[PEAK_IDX[:-1] + 15] = 5.0
    a = dataclasses.replace(angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + 20)), thigh_acc_left=thigh)
    params = {"ic_rule": "onset", "ic_impact_highpass_s": 0.2}
    batch = detect_strides(a, "left", **params)
    assert [s.ic_source for s in batch.strides[1:-1]] == ["thigh_impact"] * 6
    det = StrideDetector("left", **params)
    for i in range(len(STEADY_X)):
        det.update(a.slice(i, i + 1))
    det.finish()
    np.testing.assert_equal([dataclasses.asdict(s) for s in det.strides],
                            [dataclasses.asdict(s) for s in batch.strides])


@pytest.mark.parametrize("memory", [9, 3])  # 3: the lags learnt before the soft contact overflow it
@pytest.mark.parametrize("sacral_lag", [True, False])
def test_a_contact_without_thigh_impact_takes_the_walkers_own_lag_behind_the_sacral_rise(
    sacral_lag: bool, memory: int,
) -> None:
    """Every cycle the same sacral acceleration (a step 20 samples after the flexion peak, on a smooth 4 m/s^2
    bump peaking 25 samples after it) and a thigh spike 15 samples after the peak, but after peak 5 no
    spike (a soft contact). The firm contacts teach the lag of the contact behind the sacrum's steady rise
    (0.1 s low-pass), the same every cycle, so the soft contact lands where the spikes would have been; with
    ``sacral_lag`` off it is near the step's flank, the sacral rule's own."""
    t = np.arange(len(STEADY_X)) / FS
    bumps = sum(4.0 * np.exp(-0.5 * ((t - (p + 25) / FS) / 0.06) ** 2) for p in PEAK_IDX[:-1])
    a = angles(STEADY_X, acc=impacts(PEAK_IDX[:-1] + 20) + bumps)
    thigh = np.full(len(STEADY_X), 5.0)
    firm = np.array([p for k, p in enumerate(PEAK_IDX[:-1]) if k != 5])
    thigh[firm + 15] += 1.001 * spike_threshold("rise")
    ss = detect_strides(dataclasses.replace(a, thigh_acc_left=thigh), "left", ic_rule="onset",
                        ic_impact_edge=1.0, sacral_lag=sacral_lag, phase_memory=memory).strides
    assert len(ss) == 8
    soft = next(s for s in ss if abs(s.t_start - (PEAK_IDX[5] + 17) / FS) < 0.05)
    assert soft.ic_source == "acceleration"
    if sacral_lag:
        assert soft.t_start == pytest.approx((PEAK_IDX[5] + 15) / FS, abs=1e-9)
    else:  # the step's flank (moved a little by the bump's slope), 45 ms after the thigh's rhythm
        assert abs(soft.t_start - (PEAK_IDX[5] + 19.5) / FS) < 0.02
    for s in ss[1:-1]:
        if s is not soft:
            assert s.ic_source == "thigh_impact"
    # the learnt lag is state: chunks of 7 samples give the same contacts
    series = dataclasses.replace(a, thigh_acc_left=thigh)
    det = StrideDetector("left", ic_rule="onset", ic_impact_edge=1.0, sacral_lag=sacral_lag,
                         phase_memory=memory)
    for i in range(0, len(series.t), 7):
        det.update(series.slice(i, min(i + 7, len(series.t))))
    det.finish()
    assert [(x.t_start, x.ic_source) for x in det.strides] == [(x.t_start, x.ic_source) for x in ss]


# -- the margins and bridges of missing samples (pure functions) -----------------------------------------


def test_margins_take_the_strides_end_values_and_leave_everything_else() -> None:
    from hipback.processing.gait import _margins

    x = np.array([NAN, 1.0, 2.0, 3.0, NAN, 5.0, 6.0, NAN])  # h = 2: margins x[:2] and x[6:]
    before = x.copy()
    out = _margins(x, 2)
    np.testing.assert_array_equal(out, [2.0, 1.0, 2.0, 3.0, NAN, 5.0, 6.0, 5.0])
    np.testing.assert_array_equal(x, before)  # the caller's samples are not touched
    # a missing sample at the stride's own first or last sample stays missing (the stride is void)
    y = np.array([0.0, NAN, NAN, 3.0, 4.0, NAN, NAN, 7.0])
    np.testing.assert_array_equal(_margins(y, 2), [0.0, NAN, NAN, 3.0, 4.0, NAN, NAN, 7.0])
    # only the head, only the tail; the last margin sample and the first one
    np.testing.assert_array_equal(_margins(np.array([1.0, NAN, 3.0, 4.0, 5.0, 6.0, 7.0]), 2),
                                  [1.0, 3.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    np.testing.assert_array_equal(_margins(np.array([1.0, 2.0, 3.0, 4.0, 5.0, NAN, 7.0]), 2),
                                  [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 7.0])
    np.testing.assert_array_equal(_margins(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, NAN]), 2),
                                  [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 5.0])
    # the shortest stride with margins: one sample between them
    np.testing.assert_array_equal(_margins(np.array([NAN, 2.0, NAN]), 1), [2.0, 2.0, 2.0])


def test_margins_return_the_samples_themselves_when_there_is_nothing_to_fill() -> None:
    from hipback.processing.gait import _margins

    clean = np.array([1.0, 2.0, NAN, 4.0, 5.0])  # missing inside only
    assert _margins(clean, 2) is clean and _margins(clean, 1) is clean
    short = np.array([NAN, 1.0, NAN, 2.0])  # no sample between margins of 2
    assert _margins(short, 2) is short
    edge = np.array([NAN, 1.0, 2.0])
    assert _margins(edge, 0) is edge and _margins(edge, -1) is edge


def test_bridges_fill_short_inner_runs_only() -> None:
    from hipback.processing.gait import _bridge

    x = np.array([0.0, NAN, NAN, 3.0, NAN, NAN, NAN, 7.0, NAN])
    before = x.copy()
    np.testing.assert_allclose(_bridge(x, 2), [0.0, 1.0, 2.0, 3.0, NAN, NAN, NAN, 7.0, NAN])
    np.testing.assert_allclose(_bridge(x, 3), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, NAN])
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(_bridge(np.array([NAN, 1.0, 2.0]), 5), [NAN, 1.0, 2.0])  # a leading run
    np.testing.assert_allclose(_bridge(np.array([4.0, NAN, 2.0]), 1), [4.0, 3.0, 2.0])
    np.testing.assert_array_equal(_bridge(np.array([4.0, NAN, 2.0]), 0), [4.0, NAN, 2.0])
    clean = np.array([1.0, 2.0])
    assert _bridge(clean, 3) is clean


def test_quadratic_kernel_is_the_least_squares_parabola() -> None:
    from hipback.processing.gait import _quadratic_kernel

    for h in (0, 1):  # a parabola through at most three points is the points themselves
        k = _quadratic_kernel(h)
        assert len(k) == 2 * h + 1 and k[h] == 1.0 and k.sum() == 1.0
    for h in (2, 3, 5):
        k = _quadratic_kernel(h)
        u = np.arange(-h, h + 1, dtype=float)
        # keeps every quadratic (value at the centre), from the least-squares fit of the 2h + 1 samples
        for poly in ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (2.0, -3.0, 0.5)):
            y = poly[0] + poly[1] * u + poly[2] * u**2
            assert float(k @ y) == pytest.approx(poly[0], abs=1e-12)
        design = np.vander(u, 3, increasing=True)
        np.testing.assert_allclose(k, np.linalg.pinv(design)[0], atol=1e-12)
        assert k.dtype == np.float64 and k[h] > k[0]


def test_gauss_and_derivative_kernels() -> None:
    k = _gauss_kernel(2.0)
    assert len(k) == 13 and k.sum() == pytest.approx(1.0) and np.argmax(k) == 6
    np.testing.assert_allclose(k, k[::-1])
    assert len(_gauss_kernel(0.0)) == 3 and _gauss_kernel(0.0)[1] == pytest.approx(1.0)
    assert len(_gauss_kernel(0.34)) == 5  # ceil(3 * 0.34) = 2
    d = _derivative_kernel(3.0, 100.0)
    assert len(d) == 19
    ramp = np.arange(19, dtype=float) * 0.01  # 1 per s at 100 Hz
    # the derivative of the Gaussian truncated at +- 3 sigma: a ramp's slope times
    # sum(u^2 g) / (sigma^2 sum g)
    u = np.arange(-9.0, 10.0)
    g = np.exp(-0.5 * (u / 3.0) ** 2)
    assert float(d @ ramp) == pytest.approx(float((u**2 * g).sum() / (9.0 * g.sum())), rel=1e-12)
    assert float(d @ ramp) == pytest.approx(0.984, abs=1e-3)
    assert float(d @ np.ones(19)) == pytest.approx(0.0, abs=1e-12)
    assert len(_derivative_kernel(0.2, 100.0)) == 3


def _rise_detector(**params: float) -> StrideDetector:
    det = StrideDetector("left", **params)  # type: ignore[arg-type]
    det._configure(FS)
    return det


def _rise_input(det: StrideDetector, centre: float, n: int, height: float = 6.0,
                width_s: float = 0.05) -> tuple[object, np.ndarray, int]:
    """A window, the search window's acceleration as _contact hands it over (``g`` samples before ``lo``
    and after its ``n`` samples) and ``lo``: a smooth step of ``height`` m/s^2 centred on sample
    ``lo + centre``."""
    from hipback.processing.events import Window

    lo, g = 100, det._g
    t = np.arange(lo + n + g + 50) / FS
    idx = np.arange(lo - g, lo + n + g)
    acc = height / (1.0 + np.exp(-(idx - (lo + centre)) / (width_s * FS)))
    return Window({"t": t}, 0, FS), acc, lo


# 0.15: another contact feature reaches further than the rise
@pytest.mark.parametrize("slow_s", [0.05, 0.15])
@pytest.mark.parametrize("centre", [20.0, 20.3, 24.7, 31.5])
def test_the_sacral_rise_is_the_steepest_rise_to_a_fraction_of_a_sample(centre: float, slow_s: float) -> None:
    det = _rise_detector(ic_slow_s=slow_s)
    win, acc, lo = _rise_input(det, centre, 60)
    got = det._rise(win, acc, lo)
    assert got is not None and got == pytest.approx((lo + centre) / FS, abs=2e-4)


@pytest.mark.parametrize("slow_s", [0.05, 0.15])
def test_the_sacral_rise_is_none_at_an_edge_when_too_small_missing_or_short(slow_s: float) -> None:
    det = _rise_detector(ic_slow_s=slow_s)
    win, acc, lo = _rise_input(det, 0.0, 60)  # steepest on the window's first sample
    assert det._rise(win, acc, lo) is None
    win, acc, lo = _rise_input(det, 59.0, 60)  # and on its last
    assert det._rise(win, acc, lo) is None
    # the threshold on the low-passed slope (linear in the step's height): just under it and just over it
    win, acc, lo = _rise_input(det, 30.0, 60, height=1.0)
    trim = det._g - len(det._dkernel_rise) // 2
    unit = float(np.max(smooth(acc[trim : len(acc) - trim], det._dkernel_rise)))
    for factor, found in ((0.99, False), (1.01, True)):
        win, acc, lo = _rise_input(det, 30.0, 60, height=factor * det.min_smooth_rise_m_s3 / unit)
        assert (det._rise(win, acc, lo) is not None) is found, factor
    win, acc, lo = _rise_input(det, 30.0, 60)
    acc[len(acc) // 2] = np.nan  # (a sample the rise's low-pass reads)
    assert det._rise(win, acc, lo) is None
    win, acc, lo = _rise_input(det, 1.0, 3)  # a search window of three samples: its inner one
    got = det._rise(win, acc, lo)
    assert got is not None and got == pytest.approx((lo + 1) / FS, abs=1e-4)
    win, acc, lo = _rise_input(det, 0.5, 2)  # two samples: no inner one
    assert det._rise(win, acc, lo) is None


# -- short walks ---------------------------------------------------------------------------------------------
def _cand(i0: int, t0: float, t1: float, range_deg: float, valid: bool, doubtful: bool = False):
    """A candidate stride between peaks at samples ``i0`` and ``i0 + 100`` (times ``t0``, ``t1``)."""
    from hipback.processing.gait import _Candidate, _Peak

    nan = math.nan
    stride = Stride("left", t0, t1, t1 - t0, 120 / (t1 - t0), nan, nan, nan, nan, nan, nan, nan, nan, nan,
                    doubtful=doubtful) if valid else None
    return _Candidate(_Peak(i0, t0, 0.5), _Peak(i0 + 100, t1, 0.5), valid, math.radians(range_deg), stride)


@pytest.mark.parametrize(("before", "after", "kept"), [
    (15.0, 15.0, True),  # the swings around it at the least range that is a swing
    (14.9, 15.0, False),  # the one before it is no swing (less than min_range_rad, though within range_ratio)
    (15.0, 14.9, False),  # nor the one after it
    (math.nan, 20.0, False),  # the one before was no candidate at all (too long, or a sample missing)
])
def test_a_lone_stride_needs_a_swing_on_each_side(before: float, after: float, kept: bool) -> None:
    det = StrideDetector("left")
    prev, c, nxt = _cand(0, 0.0, 1.0, before, False), _cand(100, 1.0, 2.0, 25.0, True), \
        _cand(200, 2.0, 3.0, after, False)
    det._prev = prev
    assert det._short_bout(c, nxt) is kept
    det._prev = prev
    det._decide(c, nxt)
    assert (det.strides_ == [c.stride]) is kept


def test_a_lone_stride_with_doubtful_contacts_is_not_kept() -> None:
    det = StrideDetector("left")
    det._prev = _cand(0, 0.0, 1.0, 20.0, False)
    c = _cand(100, 1.0, 2.0, 25.0, True, doubtful=True)
    assert not det._short_bout(c, _cand(200, 2.0, 3.0, 20.0, False))
    c.stride.doubtful = False  # type: ignore[union-attr]
    assert det._short_bout(c, _cand(200, 2.0, 3.0, 20.0, False))
    assert not StrideDetector("left", short_bouts=False)._short_bout(c, _cand(200, 2.0, 3.0, 20.0, False))

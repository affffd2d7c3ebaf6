"""Stretch holds on noise-free, piecewise-constant postures, where the detector's output follows exactly from
its definition (``processing/holds.py``): every threshold just inside and just outside, exact edges and
durations, exact arching time, bridging, the reference, reps, the summary and the prescription.

Exact edges: a posture held from ``T0`` for ``L`` s between instantaneous steps is static from ``k + h``
samples after the step to ``k + h`` samples before the next one (``k`` = speed window, ``h`` = smoothing
half-width, in samples), then both edges move inwards by ``e`` samples (edge correction). So
``t_start = T0 + (k + h + e) / fs``, ``t_end = T0 + L - (k + h + e + 1) / fs`` and
``duration_s = L - 2 (k + h + e) / fs``.

Written for the survivors of ``python bench/mutation.py --group holds``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipback.processing.holds import HoldDetector, Prescription, detect_holds
from hipback.processing.types import AngleSeries

D = math.pi / 180.0
FS = 100.0
K, H, E = 10, 3, 15  # speed window 0.1 s, smoothing 0.03 s, edge correction 0.15 s at 100 Hz
EDGE = (K + H + E) / FS
STAND: dict[str, float] = {}


def kneel(side: str = "left", ext: float = 15.0, front: float = 92.0, **more: float) -> dict[str, float]:
    back_key, front_key = ("hl", "hr") if side == "left" else ("hr", "hl")
    return {back_key: -ext, front_key: front, "tilt": -2.0, **more}


def session(segments: list[tuple[float, dict[str, float]]], lumbar: bool = False,
            fs: float = FS) -> AngleSeries:
    """Piecewise-constant angles (deg in ``segments``, rad out): hip flexion left/right ``hl``/``hr``,
    pelvic tilt ``tilt``, lumbar flexion ``lum``, pelvis inclination ``pin``."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("hl", "hr", "tilt", "lum", "pin")}
    for seconds, values in segments:
        n = int(round(seconds * fs))
        for k in cols:
            cols[k].append(np.full(n, values.get(k, 0.0) * D))
    c = {k: np.concatenate(v) for k, v in cols.items()}
    n = len(c["hl"])
    return AngleSeries(
        t=np.arange(n) / fs,
        hip_flexion_left=c["hl"],
        hip_flexion_right=c["hr"],
        pelvic_tilt=c["tilt"],
        lumbar_flexion=c["lum"] if lumbar else np.full(n, np.nan),
        thigh_inclination_left=c["hl"] - c["tilt"],
        thigh_inclination_right=c["hr"] - c["tilt"],
        pelvis_inclination=c["pin"],
        pelvis_motion=np.zeros(n),
    )


def one_hold(posture: dict[str, float], seconds: float = 10.0, **params: object) -> list:
    return detect_holds(session([(3.0, STAND), (seconds, posture), (3.0, STAND)]), **params).holds


def test_edges_duration_and_angles_exact() -> None:
    (h,) = one_hold(kneel(), 20.0)
    assert (h.side, h.rep) == ("left", 1)
    assert h.t_start == pytest.approx(3.0 + EDGE, abs=1e-9)
    assert h.t_end == pytest.approx(23.0 - EDGE - 1 / FS, abs=1e-9)
    assert h.duration_s == pytest.approx(20.0 - 2 * EDGE, abs=1e-9)
    assert h.correct_s == pytest.approx(h.duration_s, abs=1e-9) and h.arching_s == 0.0 and not h.arching
    assert h.peak_hip_extension_rad == pytest.approx(15 * D, rel=1e-12)
    assert h.mean_hip_extension_rad == pytest.approx(15 * D, rel=1e-12)
    assert h.pelvic_tilt_reference_rad == pytest.approx(-2 * D, rel=1e-12)
    assert abs(h.pelvic_tilt_drift_rad) < 1e-15 and math.isnan(h.lumbar_extension_drift_rad)


@pytest.mark.parametrize("fs", [50.0, 200.0])
def test_edges_scale_with_the_sampling_rate(fs: float) -> None:
    k, h, e = round(0.1 * fs), round(0.03 * fs), round(0.15 * fs)
    angles = session([(3.0, STAND), (10.0, kneel()), (3.0, STAND)], fs=fs)
    (hold,) = detect_holds(angles).holds
    assert hold.t_start == pytest.approx(3.0 + (k + h + e) / fs, abs=1e-9)
    assert hold.duration_s == pytest.approx(10.0 - 2 * (k + h + e) / fs, abs=1e-9)


def test_right_side_and_reps_count_per_side() -> None:
    angles = session([(3.0, STAND), (6.0, kneel("left")), (3.0, STAND), (6.0, kneel("right")), (3.0, STAND),
                      (6.0, kneel("left")), (3.0, STAND)])
    holds = sorted(detect_holds(angles).holds, key=lambda h: h.t_start)  # final order: by side in one batch
    assert [(h.side, h.rep) for h in holds] == [("left", 1), ("right", 1), ("left", 2)]
    assert holds[1].t_start == pytest.approx(12.0 + EDGE, abs=1e-9)


@pytest.mark.parametrize(
    "posture,held",
    [
        (kneel(ext=10.2, front=70.0), True),  # extension >= 10 deg
        (kneel(ext=9.8, front=70.0), False),
        (kneel(ext=5.0, front=83.2), True),  # split >= 88 deg
        (kneel(ext=5.0, front=82.8), False),
        (kneel(ext=15.0, front=60.2), True),  # front hip flexed >= 60 deg
        (kneel(ext=15.0, front=59.8), False),
        (kneel(ext=-19.8, front=110.0), True),  # back hip flexed <= 20 deg (split 90.2)
        (kneel(ext=-20.2, front=110.0), False),
        (kneel(pin=49.8), True),  # pelvis upright: inclination <= 50 deg
        (kneel(pin=50.2), False),
        ({"hl": -8.2, "hr": math.nan, "tilt": 0.0}, True),  # other hip not worn: fallback, extension >= 8
        ({"hl": -7.8, "hr": math.nan, "tilt": 0.0}, False),
        ({"hl": -15.0, "hr": 30.0, "tilt": 0.0}, False),  # other hip worn but not kneeling: no fallback
    ],
)
def test_posture_thresholds(posture: dict[str, float], held: bool) -> None:
    holds = one_hold(posture)
    assert len(holds) == int(held)
    if held and not math.isnan(posture["hr"]):
        # exact edges need a step well above the static limit (3 deg/s over 0.2 s) / the triangle's tail
        assert holds[0].side == "left" and holds[0].duration_s == pytest.approx(10.0 - 2 * EDGE, abs=1e-9)


@pytest.mark.parametrize("speed_deg_s,held", [(2.9, True), (3.1, False)])
def test_static_speed_limit(speed_deg_s: float, held: bool) -> None:
    """Both hips drifting at a constant speed (a smoothed ramp keeps its exact slope)."""
    n = int(10 * FS)
    ramp = speed_deg_s * np.arange(n) / FS
    angles = session([(10.0, kneel(ext=12.0))])
    angles.hip_flexion_left = angles.hip_flexion_left - ramp * D  # extension grows
    angles.hip_flexion_right = angles.hip_flexion_right + ramp * D
    assert len(detect_holds(angles).holds) == int(held)


def test_min_duration_is_inclusive_of_three_seconds() -> None:
    assert one_hold(kneel(), 3.0 + 2 * EDGE + 0.01)[0].duration_s == pytest.approx(3.01, abs=1e-9)
    assert one_hold(kneel(), 3.0 + 2 * EDGE - 0.01) == []


@pytest.mark.parametrize("rest_s,n_holds", [(0.72, 1), (0.76, 2)])
def test_interruptions_up_to_the_bridge_are_bridged(rest_s: float, n_holds: int) -> None:
    """An interruption of ``r`` s leaves a hole of ``r + 2 (k + h)`` samples in the static posture; holes up
    to ``bridge_s`` (1 s = 100 samples) are bridged: 0.72 s -> 98 samples, 0.76 s -> 102."""
    angles = session([(3.0, STAND), (6.0, kneel()), (rest_s, kneel(ext=3.0, front=80.0)), (6.0, kneel()),
                      (3.0, STAND)])
    holds = detect_holds(angles).holds
    assert len(holds) == n_holds
    if n_holds == 1:
        assert holds[0].duration_s == pytest.approx(12.0 + rest_s - 2 * EDGE, abs=1e-9)
    else:
        assert [h.rep for h in holds] == [1, 2]
        assert holds[0].duration_s == pytest.approx(6.0 - 2 * EDGE, abs=1e-9)


def test_a_missing_sample_ends_the_hold() -> None:
    angles = session([(3.0, STAND), (12.0, kneel()), (3.0, STAND)])
    angles.pelvis_inclination[900] = np.nan  # 9.00 s
    holds = detect_holds(angles).holds
    assert len(holds) == 2
    # the NaN sample taints the smoothed pelvis over +- h samples
    assert holds[0].t_end == pytest.approx(9.0 - (H + 1 + E) / FS, abs=1e-9)
    assert holds[1].t_start == pytest.approx(9.0 + (H + 1 + E) / FS, abs=1e-9)


@pytest.mark.parametrize("offsets,lumbar,arching_s", [
    ({"tilt": 12.0}, False, 4.0),  # anterior tilt
    ({"lum": -12.0}, True, 4.0),  # lumbar extension
    ({"tilt": -12.0}, False, 0.0),  # posterior tilt never counts
    ({"tilt": 5.8}, False, 0.0),  # within the 6 deg tolerance
    ({"lum": 12.0}, True, 0.0),  # lumbar flexion is not arching
])
def test_arching_time_is_exact(offsets: dict[str, float], lumbar: bool, arching_s: float) -> None:
    """Held 12 s; from 5 s into the hold the back arches for 4 s, then comes back. The smoothed 12 deg step
    crosses the 6 deg tolerance exactly at the step (weights 10/16 vs 6/16 of the triangle)."""
    held = kneel()
    arched = {**held, **{k: held.get(k, 0.0) + v for k, v in offsets.items()}}
    angles = session([(3.0, STAND), (5.0, held), (4.0, arched), (3.0, held), (3.0, STAND)], lumbar=lumbar)
    (h,) = detect_holds(angles).holds
    assert h.duration_s == pytest.approx(12.0 - 2 * EDGE, abs=1e-9)  # arching does not end the hold
    assert h.arching_s == pytest.approx(arching_s, abs=1e-9)
    assert h.correct_s == pytest.approx(h.duration_s - arching_s, abs=1e-9)
    assert h.arching is (arching_s > 0)
    assert h.pelvic_tilt_reference_rad == pytest.approx(-2 * D, rel=1e-12)
    tilt = offsets.get("tilt", 0.0)
    assert h.pelvic_tilt_drift_rad == pytest.approx(max(tilt, 0.0) * D, abs=1e-12)
    if lumbar:
        lum = max(-offsets.get("lum", 0.0), 0.0)
        assert h.lumbar_extension_drift_rad == pytest.approx(lum * D, abs=1e-12)


@pytest.mark.parametrize("arch_s,flagged", [(0.98, False), (1.0, True)])
def test_arching_flag_needs_one_second(arch_s: float, flagged: bool) -> None:
    held = kneel()
    angles = session([(3.0, STAND), (5.0, held), (arch_s, {**held, "tilt": 10.0}), (5.0, held), (3.0, STAND)])
    (h,) = detect_holds(angles).holds
    assert h.arching_s == pytest.approx(arch_s, abs=1e-9) and h.arching is flagged


def test_reference_is_the_mean_of_the_first_second() -> None:
    """Tilt -2 deg for the hold's first 0.5 s (after the edge correction) and +4 deg after it: the reference
    is their mean over 1 s, 1 deg; +4 is 3 deg above it, inside the tolerance."""
    held = kneel()
    lead = 0.5 + EDGE
    angles = session([(3.0, STAND), (lead, held), (10.0, {**held, "tilt": 4.0}), (3.0, STAND)])
    (h,) = detect_holds(angles).holds
    assert h.pelvic_tilt_reference_rad == pytest.approx(1 * D, abs=1e-12)
    assert h.pelvic_tilt_drift_rad == pytest.approx(3 * D, abs=1e-12) and not h.arching


def test_target_extension_decides_correct_time() -> None:
    (h,) = one_hold(kneel(ext=9.9, front=90.0))  # a hold by the split (99.9 deg) but short of the target
    assert h.correct_s == 0.0 and h.arching_s == 0.0
    (h,) = one_hold(kneel(ext=10.1, front=90.0))
    assert h.correct_s == pytest.approx(h.duration_s, abs=1e-9)


def test_summary_and_prescription_exact() -> None:
    held = kneel("left")
    angles = session([(3.0, STAND), (10.0 + 2 * EDGE, held), (3.0, STAND),
                      (5.0 + 2 * EDGE, kneel("right")), (3.0, STAND),
                      (2.0, held), (2.0, {**held, "tilt": 12.0}), (6.0 + 2 * EDGE, held), (3.0, STAND)])
    det = detect_holds(angles, prescription=Prescription(holds_per_side=2, hold_s=8.5))
    holds = sorted(det.holds, key=lambda h: h.t_start)
    assert [(h.side, round(h.duration_s, 9)) for h in holds] == [
        ("left", 10.0), ("right", 5.0), ("left", 10.0)]
    assert holds[2].arching_s == pytest.approx(2.0, abs=1e-9)
    summary = det.summary()
    assert summary["left"] == pytest.approx(
        {"holds": 2, "total_s": 20.0, "correct_s": 18.0, "arching_holds": 1,
         "median_peak_hip_extension_rad": 15 * D}, abs=1e-9)
    assert summary["right"]["holds"] == 1 and summary["right"]["arching_holds"] == 0
    cmp = det.compare()
    assert cmp["left"] == pytest.approx(
        {"holds_prescribed": 2, "holds_done": 2, "holds_meeting_duration": 2,
         "holds_meeting_correct_duration": 1, "correct_s": 18.0, "prescribed_s": 17.0, "met": False},
        abs=1e-9)
    assert cmp["right"] == pytest.approx(
        {"holds_prescribed": 2, "holds_done": 1, "holds_meeting_duration": 0,
         "holds_meeting_correct_duration": 0, "correct_s": 5.0, "prescribed_s": 17.0, "met": False},
        abs=1e-9)
    assert det.compare(Prescription(holds_per_side=2, hold_s=8.0))["left"]["met"] is True  # 8.0 s correct
    easy = det.compare(Prescription(holds_per_side=1, hold_s=8.0))
    assert easy["left"]["met"] is True and easy["right"]["met"] is False
    assert det.compare(Prescription(holds_per_side=1, hold_s=10.0))["left"]["holds_meeting_duration"] == 2
    assert math.isnan(HoldDetector().summary()["left"]["median_peak_hip_extension_rad"])


def test_live_view_counts_exactly() -> None:
    held = kneel("right")
    angles = session([(3.0, STAND), (4.0, held), (3.0, {**held, "tilt": 12.0}), (3.0, STAND)])
    det = HoldDetector()
    det.update(angles.slice(0, 900))  # up to 9.00 s: arching since 7.00 s
    view = det.current()
    assert view is not None and view.side == "right" and view.arching_now
    assert view.hip_extension_now == pytest.approx(15 * D, rel=1e-12)
    # elapsed counts from the (uncorrected) start of the static posture to the last final sample
    start = 3.0 + (K + H) / FS
    assert 0 < view.elapsed_s <= 9.0 - start
    assert view.correct_s == pytest.approx(7.0 - start, abs=1e-9)
    det.finish()
    assert det.current() is None and len(det.holds) == 1


def test_tolerance_floor_is_five_degrees() -> None:
    HoldDetector(tolerance_rad=5 * D)
    with pytest.raises(ValueError, match=r"^tolerance_rad below 5 deg is inside the sensors' error "):
        HoldDetector(tolerance_rad=4.99 * D)


# -- ties, small windows, bridging within one batch, buffer trimming, the live value ---------------------
def rad_session(back: float, front: float, tilt: float = 0.0, pelvis: float = 0.0, lumbar: float = math.nan,
                seconds: float = 6.0) -> AngleSeries:
    """Left side held for ``seconds`` between 3 s of standing, values in rad (binary fractions: the 1/16
    triangle weights of the smoothing keep them exact, so a value equal to a threshold stays equal)."""
    n0, n1 = 300, int(seconds * FS)
    n = 2 * n0 + n1

    def col(v: float) -> np.ndarray:
        x = np.zeros(n)
        x[n0:n0 + n1] = v
        return x

    return AngleSeries(t=np.arange(n) / FS, hip_flexion_left=col(back), hip_flexion_right=col(front),
                       pelvic_tilt=col(tilt), lumbar_flexion=col(lumbar), thigh_inclination_left=col(0.0),
                       thigh_inclination_right=col(0.0), pelvis_inclination=col(pelvis),
                       pelvis_motion=col(0.0))


EXACT = dict(min_front_hip_rad=1.0, max_back_hip_rad=0.25, min_extension_rad=0.25, min_split_rad=1.5,
             fallback_extension_rad=0.25, max_pelvis_inclination_rad=0.5, target_extension_rad=0.25,
             tolerance_rad=0.125)


@pytest.mark.parametrize(
    "angles",
    [
        dict(back=-0.5, front=1.0),  # front hip exactly at its minimum
        dict(back=0.25, front=2.0),  # back hip exactly at its maximum flexion (split 1.75)
        dict(back=-0.25, front=1.0),  # extension exactly at its minimum (split 1.25)
        dict(back=-0.125, front=1.375),  # split exactly at its minimum (extension 0.125)
        dict(back=-0.25, front=math.nan),  # fallback extension exactly at its minimum
        dict(back=-0.5, front=1.0, pelvis=0.5),  # pelvis inclination exactly at its maximum
    ],
)
def test_thresholds_are_inclusive(angles: dict[str, float]) -> None:
    assert len(detect_holds(rad_session(**angles), **EXACT).holds) == 1


def test_tolerance_and_target_ties() -> None:
    """Extension exactly at the target is correct; tilt or lumbar exactly at the tolerance is not arching."""
    (h,) = detect_holds(rad_session(back=-0.25, front=1.0), **EXACT).holds
    assert h.correct_s == pytest.approx(h.duration_s, abs=1e-9)
    angles = rad_session(back=-0.5, front=1.0, lumbar=0.0)
    i = np.flatnonzero(angles.t >= 6.0)[:300]  # from 3 s into the hold
    angles.pelvic_tilt[i] = 0.125
    angles.lumbar_flexion[i] = -0.125
    (h,) = detect_holds(angles, **EXACT).holds
    assert h.arching_s == 0.0 and h.pelvic_tilt_drift_rad == 0.125 and h.lumbar_extension_drift_rad == 0.125


@pytest.mark.parametrize("smooth_s,speed_window_s,reference_s", [(0.01, 0.01, 0.01), (0.0, 0.0, 0.0)])
def test_one_sample_windows(smooth_s: float, speed_window_s: float, reference_s: float) -> None:
    """Windows below one sample are one sample (k = h = 1): the edges follow the same formula."""
    held = kneel()
    angles = session([(3.0, STAND), (0.005 + 1.0, held), (5.0, {**held, "tilt": 4.0}), (3.0, STAND)])
    (h,) = detect_holds(angles, smooth_s=smooth_s, speed_window_s=speed_window_s, reference_s=reference_s,
                        edge_correction_s=0.0).holds
    assert h.t_start == pytest.approx(3.0 + 2 / FS, abs=1e-9)
    assert h.duration_s == pytest.approx(6.0 - 4 / FS, abs=1e-9)
    assert h.pelvic_tilt_reference_rad == pytest.approx(-2 * D, rel=1e-12)  # the first sample only


def test_bridge_limit_is_inclusive_and_later_holds_in_the_same_batch_count() -> None:
    """0.74 s of rest: a hole of exactly 100 samples (74 + 2 x 13) is still bridged; a hold after a
    bridged one in the same batch is found too."""
    rest = kneel(ext=3.0, front=80.0)
    angles = session([(3.0, STAND), (6.0, kneel()), (0.74, rest), (6.0, kneel()), (3.0, STAND),
                      (6.0, kneel()), (3.0, STAND)])
    holds = sorted(detect_holds(angles).holds, key=lambda h: h.t_start)
    assert [h.rep for h in holds] == [1, 2]
    assert holds[0].duration_s == pytest.approx(12.74 - 2 * EDGE, abs=1e-9)
    assert holds[1].t_start == pytest.approx(18.74 + EDGE, abs=1e-9)


def test_streaming_without_edge_correction_keeps_what_the_hold_needs() -> None:
    angles = session([(3.0, STAND), (2.0, kneel()), (4.0, {**kneel(), "tilt": 10.0}), (3.0, STAND)])
    batch = detect_holds(angles, edge_correction_s=0.0).holds
    det = HoldDetector(edge_correction_s=0.0)
    for a in range(0, len(angles), 3):
        det.update(angles.slice(a, a + 3))
    det.finish()
    assert len(batch) == 1 and [vars(h) for h in det.holds] == [vars(h) for h in batch]
    assert batch[0].pelvic_tilt_reference_rad == pytest.approx(-2 * D, rel=1e-12)


def test_a_two_sample_hold_is_kept_when_nothing_else_forbids_it() -> None:
    angles = session([(3.0, STAND), (0.28, kneel()), (3.0, STAND)])  # static for 28 - 2 x 13 = 2 samples
    (h,) = detect_holds(angles, edge_correction_s=0.0, min_duration_s=0.0).holds
    assert h.duration_s == pytest.approx(0.02, abs=1e-9)
    assert detect_holds(session([(3.0, STAND), (0.27, kneel()), (3.0, STAND)]), edge_correction_s=0.0,
                        min_duration_s=0.0).holds == []


def test_live_extension_is_the_newest_final_sample() -> None:
    """Extension grows at 2 deg/s during the hold (static enough); the live value is the extension of the last
    sample the detector has made final."""
    angles = session([(3.0, STAND), (10.0, kneel(ext=15.0)), (3.0, STAND)])
    grow = np.clip(angles.t - 3.0, 0.0, 10.0) * 2.0 * D * (angles.t < 13.0)
    angles.hip_flexion_left = angles.hip_flexion_left - grow
    det = HoldDetector()
    det.update(angles.slice(0, 900))
    view = det.current()
    last = 3.0 + (K + H) / FS + view.elapsed_s - 1 / FS
    assert view.hip_extension_now == pytest.approx((15.0 + 2.0 * (last - 3.0)) * D, abs=1e-12)

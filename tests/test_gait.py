"""Stride detection and per-stride metrics (processing.gait): synthetic gait with known events, rejection of
non-gait motion, gaps, junk input, chunking invariance, and the virtual patient's truth."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipback.processing.gait import StrideDetector, detect_strides, gait_summary
from hipback.processing.types import AngleSeries

DEG = math.pi / 180.0
FS = 100.0


def gait_cycle(phase: np.ndarray, peak_ext_deg: float = 15.0, peak_flex_deg: float = 33.0) -> np.ndarray:
    """Hip-like curve (deg) over the gait cycle from IC: 30 at IC, peak extension at 52 %, peak flexion at
    87.5 % (the late-swing peak the detector keys on), smooth half-cosine pieces between the landmarks."""
    knots = np.array([0.0, 0.52, 0.875, 1.0])
    vals = np.array([30.0, -peak_ext_deg, peak_flex_deg, 30.0])
    ph = np.mod(phase, 1.0)
    i = np.clip(np.searchsorted(knots, ph, side="right") - 1, 0, 2)
    u = (ph - knots[i]) / (knots[i + 1] - knots[i])
    return vals[i] + (vals[i + 1] - vals[i]) * (1 - np.cos(np.pi * u)) / 2


def series(t: np.ndarray, **fields: np.ndarray) -> AngleSeries:
    """AngleSeries with the given fields (rad) and NaN for the rest."""
    nan = np.full(len(t), np.nan)
    return AngleSeries(t=t, **{f: np.asarray(fields.get(f, nan), dtype=float) for f in AngleSeries.FIELDS})


def walking(
    duration: float = 30.0,
    t0: float = 3.0,
    t1: float | None = None,
    stride_s: float = 1.1,
    ext_deg: tuple[float, float] = (15.0, 15.0),
    tilt_share: float = 0.0,
    noise_deg: float = 0.0,
    seed: int = 0,
) -> tuple[AngleSeries, dict[str, np.ndarray]]:
    """Both legs walking in [t0, t1) (right half a cycle after left), standing still elsewhere.

    Pelvic tilt = ``tilt_share`` x (thigh extension of the left leg), so the left leg's lumbar compensation
    index is ``tilt_share``. Returns the series and the true IC times per side.
    """
    t = np.arange(int(duration * FS)) / FS
    t1 = duration - 3.0 if t1 is None else t1
    rng = np.random.default_rng(seed)
    on = (t >= t0) & (t < t1)
    # gait starts and stops within 0.5 s (amplitude envelope), like a person starting to walk
    ramp = np.clip((t - t0) / 0.5, 0, 1) * np.clip((t1 - t) / 0.5, 0, 1)
    thigh, ics = {}, {}
    for side, shift, ext in (("left", 0.0, ext_deg[0]), ("right", 0.5, ext_deg[1])):
        thigh[side] = np.where(on, ramp * gait_cycle((t - t0) / stride_s - shift, ext), 0.0) * DEG
        k = np.arange(0, 200)
        ic = t0 + (k + shift) * stride_s
        ics[side] = ic[ic < t1]
    tilt = -tilt_share * thigh["left"]
    out = {}
    for side in ("left", "right"):
        out[f"thigh_inclination_{side}"] = thigh[side] + noise_deg * DEG * rng.standard_normal(len(t))
        out[f"hip_flexion_{side}"] = out[f"thigh_inclination_{side}"] + tilt
    return series(t, pelvic_tilt=tilt, pelvis_inclination=np.zeros(len(t)), **out), ics


def run_chunks(det, angles: AngleSeries, bounds: list[int]):
    """Feed ``angles`` cut at ``bounds`` (sorted indices) and finish; returns everything returned."""
    out = []
    edges = [0, *bounds, len(angles)]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        out += det.update(angles.slice(a, b))
    out += det.finish()
    return out


def as_records(items) -> list[dict]:
    return [asdict(x) for x in items]


# -- synthetic gait ---------------------------------------------------------------------------------


def test_steady_walking_finds_every_stride_at_its_initial_contact():
    angles, ics = walking(duration=40.0, t0=3.0, t1=37.0)
    for side in ("left", "right"):
        det = detect_strides(angles, side)
        starts = np.array([s.t_start for s in det.strides])
        inner = ics[side][(ics[side] > 3.0 + 1.2) & (ics[side] < 37.0 - 2.4)]
        for ic in inner:
            assert np.min(np.abs(starts - ic)) < 0.02, f"{side} IC at {ic:.2f} s not found"
        assert len(det.strides) <= len(ics[side]) - 1  # never more strides than IC-to-IC cycles
        assert all(3.0 <= s.t_start and s.t_end <= 37.0 for s in det.strides)
        steady = [s for s in det.strides if s.t_start > 4.0 and s.t_end < 36.0]  # outside the ramps
        assert all(np.min(np.abs(ics[side] - s.t_start)) < 0.02 for s in steady)
        for s in steady:
            assert s.stride_time_s == pytest.approx(1.1, abs=0.02)
            assert s.cadence_spm == pytest.approx(120 / 1.1, rel=0.02)
            assert s.peak_hip_extension_rad == pytest.approx(15 * DEG, abs=0.5 * DEG)
            assert s.hip_range_rad == pytest.approx(48 * DEG, abs=1.0 * DEG)
            assert s.t_start < s.t_peak_extension < s.t_end
            assert math.isnan(s.lumbar_excursion_rad)  # no lumbar sensor
        # consecutive strides are contiguous and form one bout
        for a, b in zip(det.strides[:-1], det.strides[1:], strict=True):
            assert b.t_start == a.t_end
        assert len(det.bouts) == 1
        assert det.bouts[0].n_strides == len(det.strides)


def test_peak_extension_timing_and_pelvis_metrics():
    angles, _ = walking(tilt_share=0.3)
    det = detect_strides(angles, "left")
    assert len(det.strides) > 15
    for s in det.strides:
        # tilt = -0.3 * thigh: anterior tilt grows while the thigh extends, so the hip extends 70 % of it
        assert s.lumbar_compensation_index == pytest.approx(0.3, abs=0.02)
        assert s.peak_hip_extension_rad == pytest.approx(0.7 * 15 * DEG, abs=0.5 * DEG)
        assert s.peak_thigh_extension_rad == pytest.approx(15 * DEG, abs=0.5 * DEG)
        assert s.pelvic_tilt_at_peak_extension_rad == pytest.approx(0.3 * 15 * DEG, abs=0.3 * DEG)
        assert s.pelvic_tilt_excursion_rad == pytest.approx(0.3 * 48 * DEG, abs=0.5 * DEG)
        phase = (s.t_peak_extension - 3.0) / 1.1 % 1.0
        assert phase == pytest.approx(0.52, abs=0.02)
    plain = detect_strides(walking(tilt_share=0.0)[0], "left")
    assert all(abs(s.lumbar_compensation_index) < 0.01 for s in plain.strides)


def test_noisy_walking_still_found():
    angles, ics = walking(noise_deg=0.5, seed=3)
    det = detect_strides(angles, "right")
    starts = np.array([s.t_start for s in det.strides])
    inner = ics["right"][(ics["right"] > 4.5) & (ics["right"] < 24.0)]
    assert all(np.min(np.abs(starts - ic)) < 0.05 for ic in inner)


@pytest.mark.parametrize("stride_s", [0.5, 2.6])
def test_stride_time_outside_gait_range_is_rejected(stride_s):
    angles, _ = walking(stride_s=stride_s)
    assert detect_strides(angles, "left").strides == []


def test_non_gait_motion_gives_no_strides():
    t = np.arange(int(60 * FS)) / FS
    rng = np.random.default_rng(1)
    # standing sway with noise
    sway = 1.5 * DEG * np.sin(2 * np.pi * 0.3 * t) + 0.3 * DEG * rng.standard_normal(len(t))
    stand = series(t, hip_flexion_left=sway, thigh_inclination_left=sway, pelvic_tilt=0 * t)
    assert detect_strides(stand, "left").strides == []
    # repeated sit-to-stand every 4 s: thigh 0 -> 90 deg -> 0
    sts = 45 * DEG * (1 - np.cos(2 * np.pi * t / 4.0))
    assert detect_strides(series(t, hip_flexion_left=sts, thigh_inclination_left=sts), "left").strides == []
    # kneeling: one thigh vertical, the other flexed 90 deg, still
    knee = np.full(len(t), 90 * DEG)
    kneel = series(t, hip_flexion_left=knee, thigh_inclination_left=knee)
    assert detect_strides(kneel, "left").strides == []


def test_a_single_leg_swing_is_not_a_stride():
    angles, _ = walking(duration=12.0, t0=3.0, t1=3.0 + 1.5 * 1.1)
    assert detect_strides(angles, "left").strides == []


def test_a_short_walk_keeps_its_one_steady_stride():
    """Walking in 5 s bouts (a realistic virtual walker, six walks with standing between them): the one
    steady stride of a walk, between the swing that starts it and the one that ends it (neither a stride),
    is kept (``short_bouts``), at a true contact; without that rule such walks give no stride. Chunking
    does not change it."""
    from hipback.processing.pipeline import process_recording
    from hipback.simulator import make_cohort, simulate
    from hipback.simulator.scenarios import Scenario, Step

    steps = [Step("stand", 10.0)]
    for _ in range(6):
        steps += [Step("walk", 5.0, options={"corridor_m": 50.0}), Step("stand", 4.0)]
    patient, sensors = next(iter(make_cohort(1, 1, realistic=True)))
    sim = simulate(Scenario("short_walks", steps), seed=1000, patient=patient, sensors=sensors)
    angles = process_recording(sim.recording).angles
    true_ic = np.asarray(sim.truth.initial_contacts["left"], dtype=float)
    walks = [(10.0 + 9.0 * k, 10.0 + 9.0 * k + 8.0) for k in range(6)]  # (each walk with its transitions)

    def per_walk(strides) -> list[int]:
        return [sum(1 for s in strides if a <= s.t_start < b) for a, b in walks]

    kept = detect_strides(angles, "left").strides
    strict = detect_strides(angles, "left", short_bouts=False).strides
    assert all(n >= 1 for n in per_walk(kept)), per_walk(kept)
    assert sum(n == 0 for n in per_walk(strict)) >= 3, per_walk(strict)
    assert {s.t_start for s in strict} < {s.t_start for s in kept}
    assert all(np.min(np.abs(true_ic - s.t_start)) <= 0.08 for s in kept)
    det = StrideDetector("left")
    chunked = [st for a in range(0, len(angles), 37) for st in det.update(angles.slice(a, a + 37))]
    chunked += det.finish()
    assert repr([asdict(s) for s in chunked]) == repr([asdict(s) for s in kept])  # (NaN fields too)


def test_gap_splits_walking_and_no_stride_spans_it():
    angles, _ = walking(duration=40.0, t0=3.0, t1=37.0)
    gap = (angles.t >= 18.0) & (angles.t < 19.5)
    for f in AngleSeries.FIELDS:
        getattr(angles, f)[gap] = np.nan
    det = detect_strides(angles, "left")
    assert len(det.strides) > 20
    assert not any(s.t_start < 19.5 and s.t_end > 18.0 for s in det.strides)
    assert len(det.bouts) == 2
    assert det.bouts[0].t_end <= 18.0 and det.bouts[1].t_start >= 19.5


def test_time_jump_is_a_gap():
    angles, _ = walking(duration=40.0, t0=3.0, t1=37.0)
    late = angles.t >= 20.0
    angles.t[late] += 5.0  # 5 s missing from the timeline
    det = detect_strides(angles, "left")
    assert not any(s.t_start < 25.0 and s.t_end > 20.0 for s in det.strides)
    assert len(det.bouts) == 2


def test_memory_stays_bounded_and_bout_closes_while_standing():
    angles, _ = walking(duration=200.0, t0=3.0, t1=23.0)
    det = StrideDetector("left")
    sizes = []
    for a in range(0, len(angles), 100):
        det.update(angles.slice(a, a + 100))
        sizes.append(det._stream.buffered)
    assert max(sizes[40:]) < 4 * FS  # a few seconds, not the whole standing period
    assert len(det.bouts) == 1  # closed without waiting for the end of the stream
    assert det.finish() == []


@pytest.mark.parametrize(
    "angles",
    [
        AngleSeries.empty(),
        series(np.array([0.0])),
        series(np.arange(500) / FS),  # all NaN
        series(np.arange(500) / FS, hip_flexion_left=np.zeros(500), thigh_inclination_left=np.zeros(500)),
        series(np.zeros(50), hip_flexion_left=np.zeros(50)),  # time not advancing
        series(np.arange(50)[::-1] / FS, hip_flexion_left=np.zeros(50)),  # time going backwards
    ],
)
def test_junk_input_does_not_crash(angles):
    det = StrideDetector("left")
    det.update(angles)
    det.update(AngleSeries.empty())
    det.finish()
    assert det.strides == [] and det.bouts == []


def test_bad_side_is_refused():
    with pytest.raises(ValueError, match="side"):
        StrideDetector("middle")


def test_gait_summary_asymmetry():
    angles, _ = walking(ext_deg=(10.0, 20.0))
    left, right = detect_strides(angles, "left").strides, detect_strides(angles, "right").strides
    g = gait_summary(left, right)
    assert g["n_strides_left"] == len(left) > 10
    assert g["peak_hip_extension_left_rad"] == pytest.approx(10 * DEG, abs=0.5 * DEG)
    assert g["peak_hip_extension_right_rad"] == pytest.approx(20 * DEG, abs=0.5 * DEG)
    assert g["peak_hip_extension_asymmetry_rad"] == pytest.approx(-10 * DEG, abs=0.7 * DEG)
    assert g["asymmetry_index_pct"] == pytest.approx(100 * 10 / 15, abs=5)
    assert g["cadence_spm"] == pytest.approx(120 / 1.1, rel=0.02)
    empty = gait_summary([], [])
    assert empty["n_strides_left"] == 0 and math.isnan(empty["cadence_spm"])


# -- streaming == batch -----------------------------------------------------------------------------

_STREAM_ANGLES, _ = walking(duration=16.0, t0=2.0, t1=14.0, noise_deg=0.3, seed=5)
_GAP = (_STREAM_ANGLES.t >= 8.0) & (_STREAM_ANGLES.t < 8.3)
_STREAM_ANGLES.hip_flexion_left[_GAP] = np.nan
_STREAM_ANGLES.thigh_inclination_left[_GAP] = np.nan
_BATCH = {side: detect_strides(_STREAM_ANGLES, side) for side in ("left", "right")}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bounds=st.lists(st.integers(min_value=1, max_value=len(_STREAM_ANGLES) - 1), max_size=60, unique=True),
    side=st.sampled_from(["left", "right"]),
)
def test_chunking_does_not_change_results(bounds, side):
    det = StrideDetector(side)
    returned = run_chunks(det, _STREAM_ANGLES, sorted(bounds))
    batch = _BATCH[side]
    assert len(batch.strides) >= 6
    np.testing.assert_equal(as_records(det.strides), as_records(batch.strides))
    np.testing.assert_equal(as_records(returned), as_records(batch.strides))
    np.testing.assert_equal(as_records(det.bouts), as_records(batch.bouts))


def test_sample_by_sample_streaming_matches_batch():
    angles = _STREAM_ANGLES.slice(0, 900)
    det = StrideDetector("right")
    run_chunks(det, angles, list(range(1, len(angles))))
    np.testing.assert_equal(as_records(det.strides), as_records(detect_strides(angles, "right").strides))
    assert len(det.strides) >= 4


# -- virtual patient --------------------------------------------------------------------------------


def test_strides_on_simulated_truth_angles():
    simulator = pytest.importorskip("hipback.simulator.session")
    truth = simulator.simulate("walk", seed=4, walk_s=30.0).truth
    angles = truth.angles()
    for side in ("left", "right"):
        det = detect_strides(angles, side)
        found = np.array([s.t_start for s in det.strides])
        steady = truth.strides_for(side)
        all_ics = np.array([s.t_initial_contact for s in truth.strides_for(side, steady_only=False)])
        assert len(steady) >= 15
        hits = [np.min(np.abs(found - s.t_initial_contact)) <= 0.05 for s in steady]
        assert all(hits), f"{side}: {hits.count(False)} steady strides missed"
        false = [f for f in found if np.min(np.abs(all_ics - f)) > 0.05]
        assert len(false) <= 1  # at most the first stride of the gait start ramp
        for s in det.strides:
            k = int(np.argmin(np.abs(all_ics - s.t_start)))
            ref = truth.strides_for(side, steady_only=False)[k]
            if ref.steady:
                assert s.peak_hip_extension_rad == pytest.approx(ref.peak_hip_extension_rad, abs=1 * DEG)


def _gait_with_contacts(peak_flex_at: float, acc: bool, both: bool = True, seed: int = 1):
    """Both legs walking at 1.1 s strides with peak flexion at ``peak_flex_at`` of the cycle; the sacrum's
    vertical acceleration (when ``acc``) is a step-rate oscillation plus a sharp rise at each true IC and a
    smaller, slower bump 0.1 s later (loading); the thighs split most at IC (the truth used to build them)."""
    t = np.arange(int(30 * FS)) / FS
    stride = 1.1
    rng = np.random.default_rng(seed)
    knots = np.array([0.0, 0.52, peak_flex_at, 1.0])
    fields, ics = {}, {}
    for side, shift in (("left", 0.0), ("right", 0.5)):
        ph = np.mod(t / stride - shift, 1.0)
        vals = np.array([28.0, -12.0, 33.0, 28.0])
        i = np.clip(np.searchsorted(knots, ph, side="right") - 1, 0, 2)
        u = (ph - knots[i]) / (knots[i + 1] - knots[i])
        hip = (vals[i] + (vals[i + 1] - vals[i]) * (1 - np.cos(np.pi * u)) / 2) * DEG
        fields[f"hip_flexion_{side}"] = hip
        fields[f"thigh_inclination_{side}"] = hip
        ics[side] = (np.arange(-1, 30) + shift) * stride
    fields["pelvic_tilt"] = np.zeros(len(t))
    fields["pelvis_inclination"] = np.zeros(len(t))
    if not both:
        fields.pop("thigh_inclination_right")
        fields.pop("hip_flexion_right")
    a = series(t, **fields)
    if acc:
        v = 1.5 * np.cos(2 * np.pi * t / (stride / 2)) + rng.normal(0, 0.05, len(t))
        for ic in np.concatenate(list(ics.values())):
            rise = 1 + np.exp(-np.clip((t - ic) / 0.004, -50, 50))
            v += 4.0 / rise * np.exp(-np.clip(t - ic, 0, None) / 0.03)
            v += 2.0 * np.exp(-0.5 * ((t - ic - 0.1) / 0.03) ** 2)
        a = dataclasses.replace(a, pelvis_acc_vertical=v)
    return a, ics


def _inner(det: StrideDetector) -> list:
    return [s for s in det.strides_ if 2.0 < s.t_start < 27.0]


def _ic_errors(det: StrideDetector, ics: np.ndarray) -> np.ndarray:
    return np.array([float(np.min(np.abs(ics - s.t_start))) for s in _inner(det)])


@pytest.mark.parametrize("peak_flex_at", [0.72, 0.80, 0.92])
def test_initial_contacts_follow_the_evidence_not_a_fixed_phase(peak_flex_at):
    """Wherever peak flexion falls in the cycle, contacts come from the sacral impact (within 20 ms), or from
    the thighs' largest split without acceleration (within 80 ms); a fixed-phase rule would be off by up to
    0.25 s here."""
    a, ics = _gait_with_contacts(peak_flex_at, acc=True)
    det = detect_strides(a, "left")
    assert len(_inner(det)) >= 18
    assert {s.ic_source for s in _inner(det)} == {"acceleration"}
    assert np.max(_ic_errors(det, ics["left"])) < 0.02
    assert all(math.isfinite(s.peak_hip_extension_rad) and s.confidence == 1.0 for s in _inner(det))
    a, ics = _gait_with_contacts(peak_flex_at, acc=False)
    det = detect_strides(a, "right")
    assert len(_inner(det)) >= 18 and {s.ic_source for s in _inner(det)} == {"thigh_split"}
    assert np.max(_ic_errors(det, ics["right"])) < 0.08
    a, ics = _gait_with_contacts(peak_flex_at, acc=False, both=False)
    det = detect_strides(a, "left")
    assert {s.ic_source for s in det.strides_} == {"hip_phase"} and det.strides_[0].confidence == 0.5


def test_a_stride_whose_contacts_are_doubtful_reports_no_peak():
    """Impacts that do not keep the rhythm of the swing (one thigh worn, contacts jittered by up to 0.3 s):
    such strides still count, marked doubtful, without peak extension; the others keep theirs."""
    a, _ = _gait_with_contacts(0.85, acc=False, both=False)
    rng = np.random.default_rng(3)
    v = np.zeros(len(a.t))
    for ic in np.arange(-1, 30) * 1.1 + rng.uniform(-0.3, 0.3, 31):
        step = 1 + np.exp(-np.clip((a.t - ic) / 0.004, -50, 50))
        v += 4.0 / step * np.exp(-np.clip(a.t - ic, 0, None) / 0.03)
    det = detect_strides(dataclasses.replace(a, pelvis_acc_vertical=v), "left")
    doubtful = [s for s in det.strides_ if s.doubtful]
    assert len(doubtful) >= 3 and len(det.strides_) - len(doubtful) >= 3
    assert all(math.isnan(s.peak_hip_extension_rad) and s.confidence == 0.2 for s in doubtful)
    assert all(math.isfinite(s.peak_hip_extension_rad) for s in det.strides_ if not s.doubtful)
    g = gait_summary(det.strides_, [])
    assert g["n_strides_left"] == len(det.strides_) and math.isfinite(g["peak_hip_extension_left_rad"])


def _with_acc(a: AngleSeries, ics: dict, pulse) -> AngleSeries:
    """``a`` with a sacral vertical acceleration: a step-rate oscillation, noise, and ``pulse(t - ic, k)`` at
    every true IC (``k`` counts the contacts)."""
    rng = np.random.default_rng(5)
    v = 1.0 * np.cos(2 * np.pi * a.t / 0.55) + rng.normal(0, 0.03, len(a.t))
    for k, ic in enumerate(np.sort(np.concatenate(list(ics.values())))):
        v = v + pulse(a.t - ic, k)
    return dataclasses.replace(a, pelvis_acc_vertical=v)


def _wavelet(dt: np.ndarray, amp: float, delay: float, f_hz: float = 20.0) -> np.ndarray:
    """One cycle of a sine of ``f_hz`` starting ``delay`` s after the contact (a soft-tissue ringing)."""
    u = dt - delay
    return np.where((u >= 0) & (u < 1 / f_hz), amp * np.sin(2 * np.pi * f_hz * u), 0.0)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_contact_is_the_onset_of_the_impact_not_the_larger_ringing_after_it(sign):
    """A small impact at each contact (rising or falling first) and a ringing three times as large 60 ms
    later: the contact is taken at the impact's steepest flank (within 30 ms), not at the ringing's."""
    a, ics = _gait_with_contacts(0.85, acc=False)
    a = _with_acc(a, ics, lambda dt, k: _wavelet(dt, sign * 1.5, 0.0) + _wavelet(dt, 4.5, 0.06))
    for side in ("left", "right"):
        det = detect_strides(a, side)
        assert len(_inner(det)) >= 18 and {s.ic_source for s in _inner(det)} == {"acceleration"}
        assert np.max(_ic_errors(det, ics[side])) < 0.03
    # control: the ringing alone is found where it is, 60 ms after the contact
    a2 = _with_acc(a, ics, lambda dt, k: _wavelet(dt, 4.5, 0.06))
    det = detect_strides(a2, "left")
    assert np.min(_ic_errors(det, ics["left"])) > 0.05


def test_shoulder_rule_takes_the_level_between_push_off_and_loading():
    """Sacral acceleration that rises before the contact (push-off), levels off at it and rises most 50 ms
    later (loading): ``ic_rule="shoulder"`` finds the contact within 15 ms; the default onset rule takes the
    push-off flank, tens of ms early; an unknown rule is refused."""
    a, ics = _gait_with_contacts(0.85, acc=False)

    def pulse(dt: np.ndarray, k: int) -> np.ndarray:
        rise = 1 + np.exp(-np.clip((dt + 0.03) / 0.008, -50, 50))
        push = 2.5 / rise * np.exp(-np.clip(dt, 0, None) / 0.06)
        load = 6.0 * np.exp(-0.5 * ((dt - 0.06) / 0.012) ** 2)
        return push + load

    a = _with_acc(a, ics, pulse)
    det = detect_strides(a, "left", ic_rule="shoulder", ic_refine_s=(0.12, 0.12))
    assert len(_inner(det)) >= 18
    assert np.max(_ic_errors(det, ics["left"])) < 0.015
    onset = detect_strides(a, "left", ic_refine_s=(0.12, 0.12))
    assert np.median(_ic_errors(onset, ics["left"])) > 0.02
    with pytest.raises(ValueError, match="ic_rule"):
        StrideDetector("left", ic_rule="largest")


def test_swing_that_changes_between_strides_is_kept_when_contacts_come_from_the_sensors():
    """Peak flexion alternating by 12 deg from stride to stride (as in a turn): with sacral impacts every
    stride is kept; with one thigh and no acceleration (contacts by the phase rule) such strides are
    rejected."""
    a, ics = _gait_with_contacts(0.85, acc=False, both=False)
    t = a.t
    bump = 12 * DEG * (np.floor(t / 1.1) % 2) * np.exp(-0.5 * ((np.mod(t, 1.1) - 0.85 * 1.1) / 0.12) ** 2)
    hip = a.hip_flexion_left + bump
    a = dataclasses.replace(a, hip_flexion_left=hip, thigh_inclination_left=hip)
    det = detect_strides(a, "left")
    assert len(_inner(det)) == 0
    det = detect_strides(_with_acc(a, ics, lambda dt, k: _wavelet(dt, 3.0, 0.0)), "left")
    assert len(_inner(det)) >= 18
    assert np.max(_ic_errors(det, ics["left"])) < 0.02


def test_a_doubtful_stride_is_timed_by_the_walkers_own_phase():
    """One thigh worn, peak flexion at 72 % of the cycle (contact 0.31 s after it), and one contact whose
    impact is missing: the strides around it are doubtful and that contact is timed by the phase rule with
    the phase learnt from this walker's confident contacts (within 30 ms of the truth); the fixed 12.5 % of a
    cycle would put it 0.17 s early."""
    a, ics = _gait_with_contacts(0.72, acc=False, both=False)
    bad = ics["left"][12]
    a = _with_acc(a, ics, lambda dt, k: _wavelet(dt, 3.0, 0.0) * (not np.isclose(a.t[0] - dt[0], bad)))
    det = detect_strides(a, "left")
    doubtful = [s for s in det.strides_ if s.doubtful]
    assert doubtful and all(math.isnan(s.peak_hip_extension_rad) for s in doubtful)
    assert len(det.strides_) - len(doubtful) >= 18
    start = min(doubtful, key=lambda s: abs(s.t_start - bad))
    assert abs(start.t_start - bad) < 0.03
    fixed = detect_strides(a, "left", phase_memory=0)
    start = min((s for s in fixed.strides_ if s.doubtful), key=lambda s: abs(s.t_start - bad))
    assert abs(start.t_start - bad) > 0.1


def test_a_flexion_peak_that_moves_does_not_make_regular_contacts_doubtful():
    """One flexion peak moved 0.2 s late (a flat peak, a turn): the swing's rhythm breaks around it, the
    sacral impacts keep theirs, so no stride is doubtful and every contact stays within 30 ms."""
    a, ics = _gait_with_contacts(0.85, acc=False)
    peak = ics["left"][12] - 0.15 * 1.1
    bump = 6 * DEG * np.exp(-0.5 * ((a.t - peak - 0.2) / 0.05) ** 2)
    hip = a.hip_flexion_left + bump
    a = dataclasses.replace(a, hip_flexion_left=hip, thigh_inclination_left=hip)
    a = _with_acc(a, ics, lambda dt, k: _wavelet(dt, 3.0, 0.0))
    det = detect_strides(a, "left")
    assert len(_inner(det)) >= 18
    assert not any(s.doubtful for s in _inner(det))
    assert np.max(_ic_errors(det, ics["left"])) < 0.03
    moved = min(det.strides_, key=lambda s: abs(s.t_start - ics["left"][12]))
    assert abs(moved.t_start - ics["left"][12]) < 0.03 and math.isfinite(moved.peak_hip_extension_rad)


def test_chunking_does_not_change_contacts_from_a_realistic_walker():
    """A realistic virtual walker (soft tissue, turns, sacral and thigh impacts and ringing): the detector fed
    in chunks of 1-97 samples gives exactly the batch strides, contact sources, doubtful flags and phases,
    with the contacts from the thighs' impacts and from the sacral acceleration alone."""
    from hipback.processing.pipeline import process_recording
    from hipback.simulator import VirtualPatient, make_cohort, simulate

    patient, sensors = make_cohort(3, 5, realistic=True)[2]
    assert isinstance(patient, VirtualPatient)
    sim = simulate("walk", seed=5, patient=patient, sensors=sensors, walk_s=25.0)
    angles = process_recording(sim.recording).angles
    rng = np.random.default_rng(9)
    bounds = np.cumsum(rng.integers(1, 98, 400))
    bounds = [int(b) for b in bounds if b < len(angles.t)]
    # the thighs' impacts (this 60 Hz walker's come just after its sacral contacts and are attenuated by
    # the sampling: a window reaching 50 ms past them and a lower threshold, so that both sources occur),
    # and the sacral acceleration alone
    for params, source in (
        ({"ic_impact_window_s": (0.1, 0.05), "min_impact_m_s2": 2.0}, "thigh_impact"),
        ({"use_thigh_impact": False}, "acceleration"),
    ):
        for side in ("left", "right"):
            batch = detect_strides(angles, side, **params)
            det = StrideDetector(side, **params)
            run_chunks(det, angles, bounds)
            assert len(batch.strides) >= 8
            assert source in {s.ic_source for s in batch.strides}
            np.testing.assert_equal(as_records(det.strides), as_records(batch.strides))
            assert det._phases == batch._phases


def _with_thigh_impacts(a, ics, lead_s: float, impact: float, loading: float):
    """Each thigh's acceleration magnitude: 2 m/s^2 plus a 10 ms wide impact of ``impact`` m/s^2 ``lead_s``
    before each of that leg's true contacts and a larger shake of ``loading`` m/s^2 60 ms after it."""
    t = a.t
    out = {}
    for side in ("left", "right"):
        x = np.full(len(t), 2.0)
        for ic in ics[side]:
            x += impact * np.exp(-0.5 * ((t - (ic - lead_s)) / 0.01) ** 2)
            x += loading * np.exp(-0.5 * ((t - (ic + 0.06)) / 0.015) ** 2)
        out[f"thigh_acc_{side}"] = x
    return dataclasses.replace(a, **out)


def test_the_thigh_impact_before_the_sacral_contact_times_the_contact():
    """The sacrum gives the contact at the true IC; the thigh's impact 25 ms earlier moves it to the impact's
    leading edge, where it has risen half way (a Gaussian of 10 ms: 11.8 ms before its peak), or with
    ``ic_impact_edge=1`` to its peak (within half a sample's refinement), while the thigh's larger shake 60
    ms after the contact (loading) is never taken; an impact that does not stand out (or the option off)
    leaves the sacral contact."""
    a, ics = _gait_with_contacts(0.80, acc=True)
    thigh = _with_thigh_impacts(a, ics, lead_s=0.025, impact=12.0, loading=20.0)
    true = ics["left"]
    for params, expect in (({}, -0.025 - 1.1774 * 0.01), ({"ic_impact_edge": 1.0}, -0.025)):
        det = detect_strides(thigh, "left", **params)
        assert len(_inner(det)) >= 18
        assert {s.ic_source for s in _inner(det)} == {"thigh_impact"}
        errs = np.array([s.t_start - true[np.argmin(np.abs(true - s.t_start))] for s in _inner(det)])
        np.testing.assert_allclose(errs, expect, atol=0.004)
    sacral = detect_strides(a, "left")
    for params, impact in (({}, 1.0), ({"use_thigh_impact": False}, 12.0)):
        flat = detect_strides(_with_thigh_impacts(a, ics, 0.025, impact, 0.0), "left", **params)
        assert {s.ic_source for s in _inner(flat)} == {"acceleration"}
        assert [s.t_start for s in flat.strides_] == [s.t_start for s in sacral.strides_]
    # an impact 120 or 170 ms before the sacral contact is taken (the window reaches 0.2 s back: a real
    # sacral contact came up to 0.18 s after the heel strike), also where that lies before the search window
    # (``ic_search`` starting 55 ms before the contact here: the flexion peak can come after the contact);
    # one 260 ms before is outside the window: the sacral contact stays
    for lead in (0.12, 0.17):
        for params in ({}, {"ic_search": (0.15, 0.35)}):
            det = detect_strides(_with_thigh_impacts(a, ics, lead, 12.0, 0.0), "left", **params)
            assert len(_inner(det)) >= 18
            assert {s.ic_source for s in _inner(det)} == {"thigh_impact"}
            errs = np.array([s.t_start - true[np.argmin(np.abs(true - s.t_start))] for s in _inner(det)])
            np.testing.assert_allclose(errs, -lead - 1.1774 * 0.01, atol=0.004)
    early = detect_strides(_with_thigh_impacts(a, ics, 0.26, 12.0, 0.0), "left")
    assert {s.ic_source for s in _inner(early)} == {"acceleration"}


def test_a_ringing_lobe_after_the_contact_does_not_move_the_flexion_peak():
    """A thigh sensor on a loose strap rings after one heel strike (10 Hz, 15 deg, decaying over 50 ms) just
    after a flexion peak at 93 % of the cycle, and the first lobe outgrows the swing's peak. The peaks are
    located on the 6 Hz low-pass (``peak_sigma_s``), so that cycle's contact (here by the phase rule: one
    thigh, no acceleration) keeps its offset from the true contact like its neighbours'; located on the
    values' light smoothing (``peak_sigma_s=0``) the lobe takes the peak and the contact comes 0.1 s late."""
    a, ics = _gait_with_contacts(0.93, acc=False, both=False)
    ic = ics["left"][11]
    u = np.clip(a.t - ic, 0.0, None)
    ring = 15.0 * DEG * np.sin(2 * np.pi * 10.0 * u) * np.exp(-u / 0.05) * (a.t >= ic)
    rung = dataclasses.replace(a, hip_flexion_left=a.hip_flexion_left + ring)

    def offsets(det):  # each contact's offset from the nearest true contact (s), by that contact
        out = {}
        for s in _inner(det):
            true = float(ics["left"][np.argmin(np.abs(ics["left"] - s.t_start))])
            out[round(true, 2)] = s.t_start - true
        return out

    clean = offsets(detect_strides(a, "left"))
    got = offsets(detect_strides(rung, "left"))
    assert len(got) == len(clean) >= 20
    assert abs(got[round(ic, 2)] - clean[round(ic, 2)]) < 0.005
    old = offsets(detect_strides(rung, "left", peak_sigma_s=0.0))
    assert old[round(ic, 2)] - clean[round(ic, 2)] > 0.08


def test_a_sample_missing_at_a_contact_voids_only_the_stride_that_holds_it():
    """One hip sample flagged (NaN) 20 ms after a contact: the stride starting at that contact holds it and
    is dropped; the stride ending there, whose smoothing only reaches past its end, and the flexion peak 0.3 s
    before the missing sample, still count."""
    a, ics = _gait_with_contacts(0.80, acc=True)
    thigh = _with_thigh_impacts(a, ics, lead_s=0.025, impact=12.0, loading=0.0)
    ic = float(ics["left"][12])
    k = int(np.argmin(np.abs(thigh.t - (ic + 0.02))))
    hip = thigh.hip_flexion_left.copy()
    hip[k] = np.nan
    gone = np.where(np.isnan(hip), np.nan, thigh.thigh_inclination_left)
    holed = dataclasses.replace(thigh, hip_flexion_left=hip, thigh_inclination_left=gone)
    full = {round(s.t_start, 2) for s in _inner(detect_strides(thigh, "left"))}
    got = {round(s.t_start, 2) for s in _inner(detect_strides(holed, "left"))}
    starts = sorted(full)
    i = int(np.argmin(np.abs(np.array(starts) - ic)))
    assert full - got == {starts[i]}  # only the stride from that contact is gone


def _with_swing_hump(a, ics, hump: float, impact: float):
    """Each thigh's acceleration magnitude: 2 m/s^2, a smooth hump of ``hump`` m/s^2 (Gaussian, 40 ms
    standard deviation) 90 ms before each of that leg's true contacts (the hamstrings braking the swing),
    and a sharp impact of ``impact`` m/s^2 (10 ms) 20 ms before it."""
    t = a.t
    out = {}
    for side in ("left", "right"):
        x = np.full(len(t), 2.0)
        for ic in ics[side]:
            x += hump * np.exp(-0.5 * ((t - (ic - 0.09)) / 0.04) ** 2)
            x += impact * np.exp(-0.5 * ((t - (ic - 0.02)) / 0.01) ** 2)
        out[f"thigh_acc_{side}"] = x
    return dataclasses.replace(a, **out)


def test_the_thighs_swing_hump_is_not_an_impact():
    """A smooth hump of 12 m/s^2 90 ms before each contact, higher than the sharp impact of 10 m/s^2 20 ms
    before it: the contact moves to the impact (its transient part, ~3.9 m/s^2, is the larger), never to
    the hump; with the hump alone the sacral contact stays (the hump's transient part, ~2.3 m/s^2, is under
    ``min_impact_m_s2``), while the largest value itself (``ic_impact_highpass_s=0``) takes the hump."""
    a, ics = _gait_with_contacts(0.80, acc=True)
    true = ics["left"]

    def errors(det):
        return np.array([s.t_start - true[np.argmin(np.abs(true - s.t_start))] for s in _inner(det)])

    both = detect_strides(_with_swing_hump(a, ics, hump=12.0, impact=10.0), "left", ic_impact_edge=1.0)
    assert len(_inner(both)) >= 18
    assert {s.ic_source for s in _inner(both)} == {"thigh_impact"}
    np.testing.assert_allclose(errors(both), -0.02, atol=0.004)
    # timed at the impact's leading edge (the default): before its peak, within its rise (~12 ms)
    edge = errors(detect_strides(_with_swing_hump(a, ics, hump=12.0, impact=10.0), "left"))
    assert len(edge) >= 18 and np.all((edge > -0.02 - 0.016) & (edge < -0.02 - 0.004))
    hump_only = _with_swing_hump(a, ics, hump=12.0, impact=0.0)
    sacral = detect_strides(a, "left")
    alone = detect_strides(hump_only, "left")
    assert {s.ic_source for s in _inner(alone)} == {"acceleration"}
    assert [s.t_start for s in alone.strides_] == [s.t_start for s in sacral.strides_]
    raw = detect_strides(hump_only, "left", ic_impact_highpass_s=0.0, ic_impact_edge=1.0)
    assert {s.ic_source for s in _inner(raw)} == {"thigh_impact"}
    np.testing.assert_allclose(errors(raw), -0.09, atol=0.004)


@pytest.mark.parametrize(
    ("impact", "params", "taken"),
    [
        (5.0, {}, True),
        (4.2, {}, False),
        (4.2, {"min_impact_rise_m_s2": 0.0}, True),
        (3.6, {"min_impact_rise_m_s2": 0.0}, False),
    ],
)
def test_a_thigh_impact_must_stand_out_of_the_swing_hump(impact: float, params: dict, taken: bool):
    """An impact on the thigh's 8 m/s^2 swing hump counts when its transient part reaches
    ``min_impact_m_s2`` *and* rises by ``min_impact_rise_m_s2`` over the preceding ``ic_impact_rise_s``:
    one of 5 m/s^2 does; one of 4.2 m/s^2 passes the height but not the rise (taken when the rise test is
    off); one of 3.6 m/s^2 fails the height even then, although its value with the hump under it is 7-10
    m/s^2."""
    a, ics = _gait_with_contacts(0.80, acc=True)
    det = detect_strides(_with_swing_hump(a, ics, hump=8.0, impact=impact), "left", **params)
    assert {s.ic_source for s in _inner(det)} == ({"thigh_impact"} if taken else {"acceleration"})


def test_thigh_impact_contacts_do_not_depend_on_chunking():
    a, ics = _gait_with_contacts(0.80, acc=True)
    thigh = _with_thigh_impacts(a, ics, lead_s=0.025, impact=12.0, loading=20.0)
    batch = detect_strides(thigh, "left")
    det = StrideDetector("left")
    run_chunks(det, thigh, list(range(7, len(thigh.t), 13)))
    np.testing.assert_equal(as_records(det.strides), as_records(batch.strides))

"""The virtual patient next to real recordings: the same signal statistics measured on both. Prints figures.

Run: ``.venv/bin/python bench/realism.py [--patients 30] [--seed 1]``

The simulator is a tool, not the truth: this bench measures, with one piece of code, the quantities its
soft-tissue, impact and gait models draw (:mod:`hipback.simulator.device_profiles`,
:mod:`hipback.simulator.soft_tissue`), on the real recordings in ``../shared/data`` (the Movella DOT walks at
120 Hz, the qmt full-body recording at 100 Hz) and on the realistic virtual cohort
(:func:`hipback.simulator.make_cohort`, walks with U-turns), so that a model that is easier or harder than
real people shows. Nothing in processing reads these figures.

Contacts are hipback's own (``process_recording``; on the qmt recording also the feet's IMUs, which
``bench/peers.py`` uses as its reference, see :func:`peers.foot_contacts`); every measure looks in a window
of +-80 ms around each contact, wider than hipback's contact errors on these data. Per contact:

* **thigh impact** (m/s^2): the largest value of the thigh sensor's acceleration magnitude minus its centred
  0.1 s moving mean, in the window around that side's contact;
* **sacral impact** (m/s^2): the same on the pelvis sensor, for both sides' contacts;
* **sacral after thigh** (ms): the first local maximum of the sacral transient of at least half the window's
  largest, minus the same on the thigh: how much later the heel strike's shake reaches the sacrum;
* **thigh shake** (deg/s): the largest value of the thigh gyroscope's magnitude minus its centred 0.1 s moving
  mean in the window (the soft tissue's wobble after the impact);
* **thigh wobble** (deg): that wobble as a rotation: the gyroscope minus its centred 0.1 s moving mean, per
  axis, integrated from 20 ms before the contact to the window's end, the largest distance of the rotation
  vector from its mean;

and per stride (hipback's strides, steady walking: not turning, stride time within 30 % of the walk's
median): cadence (steps/min), stride-time coefficient of variation (%), the hip flexion's range (deg) and the
moment of peak hip flexion (% of the stride from its contact), the pelvic tilt's excursion (deg), and the
sacral sensor's dynamic acceleration RMS while walking (m/s^2); per recording (walker), how much the impacts
vary from contact to contact: the ratio of the 75th to the 25th percentile of its thigh and of its sacral
impacts (**thigh / sacral impact spread**, at least 8 contacts). From the pelvis' vertical acceleration
(world frame, gravity removed, as hipback's processing gives it: ``AngleSeries.pelvis_acc_vertical``), per
contact of either side: the **sacral rise to contact** (m/s^2), its mean over +-20 ms of the contact minus
its mean over +-20 ms of the moment 150 ms before (the trailing leg's push-off and the leading leg's first
loading), and the **sacral steepest rise** (ms): where the acceleration, low-passed by a Gaussian of
``RISE_SIGMA_S``, rises fastest within 200 ms of the contact, minus the contact (what the lower-back contact
detectors and hipback's ``smooth`` rule time the contact by).

The sampling rate shapes the impact peaks (a 60 Hz sensor smears a 15 Hz shake); the rates are printed.
The real recordings are two walkers' few dozen strides: where the virtual cohort's range (p10-p90 over
walkers) does not hold them, the model is the first suspect, but one person is not a population.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from hipback.processing import process_recording  # noqa: E402
from hipback.processing.pipeline import ProcessorConfig, offline_calibration_wait_s  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
WINDOW_S = 0.08
STEADY = 0.3
#: the measures (see the module docstring) and their units
UNITS = {
    "thigh impact": "m/s^2", "sacral impact": "m/s^2", "sacral after thigh": "ms", "thigh shake": "deg/s",
    "thigh wobble": "deg", "cadence": "steps/min", "stride time CV": "%", "hip range": "deg",
    "peak flexion at": "% stride", "tilt excursion": "deg", "sacral RMS": "m/s^2",
    "thigh impact spread": "p75/p25", "sacral impact spread": "p75/p25",
    "sacral rise to contact": "m/s^2", "sacral steepest rise": "ms",
}
#: the sacral vertical acceleration's smoothing for its steepest rise (s; ``StrideDetector.ic_slow_s``)
RISE_SIGMA_S = 0.05


def _moving_mean(x: np.ndarray, n: int) -> np.ndarray:
    pad = np.pad(x, n // 2, mode="edge")
    return np.convolve(pad, np.ones(n) / n, mode="valid")[: len(x)]


def transient(stream, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(t, x)``: the magnitude of ``stream.acc`` (m/s^2) or ``stream.gyr`` (deg/s) minus its centred 0.1 s
    moving mean."""
    v = stream.acc if what == "acc" else np.degrees(stream.gyr)
    mag = np.linalg.norm(v, axis=1)
    n = max(3, round(0.1 * stream.rate_hz) | 1)
    return stream.t, mag - _moving_mean(mag, n)


def wobble(stream) -> tuple[np.ndarray, np.ndarray]:
    """``(t, w)``: the gyroscope (deg/s) minus its centred 0.1 s moving mean, per axis: the fast rotation of
    the sensor on its strap, without the segment's own slower rotation."""
    g = np.degrees(stream.gyr)
    n = max(3, round(0.1 * stream.rate_hz) | 1)
    return stream.t, g - np.column_stack([_moving_mean(g[:, k], n) for k in range(3)])


def _wobble_deg(t: np.ndarray, w: np.ndarray, c: float) -> float:
    """Peak rotation (deg) of the fast rotation ``w`` integrated over the window after contact ``c``
    (-20 ms to +WINDOW_S): the largest distance of the integrated rotation vector from its mean."""
    m = (t >= c - 0.02) & (t <= c + WINDOW_S)
    if m.sum() < 4:
        return math.nan
    dt = np.diff(t[m], prepend=t[m][0])
    ang = np.cumsum(w[m] * dt[:, None], axis=0)
    return float(np.max(np.linalg.norm(ang - ang.mean(axis=0), axis=1)))


def _window(t: np.ndarray, x: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    m = (t >= c - WINDOW_S) & (t <= c + WINDOW_S)
    return t[m], x[m]


def _first_peak(t: np.ndarray, x: np.ndarray) -> float:
    """Time of the first local maximum of at least half the largest value (NaN if none)."""
    if len(x) < 3 or not np.isfinite(x).any():
        return math.nan
    big = np.nanmax(x)
    for j in range(1, len(x) - 1):
        if x[j] >= x[j - 1] and x[j] >= x[j + 1] and x[j] >= 0.5 * big and x[j] > 0:
            return float(t[j])
    return math.nan


def measure(rec, res, contacts: dict[str, np.ndarray] | None = None) -> dict[str, list[float]]:
    """The measures of the module docstring on one recording and its results (``contacts``: per side, s;
    default hipback's steady strides' contacts)."""
    strides = [s for s in res.strides if np.isfinite(s.stride_time_s)]
    times = np.array([s.stride_time_s for s in strides]) if strides else np.array([])
    med = float(np.median(times)) if len(times) else math.nan
    steady = [s for s in strides if not s.turning and abs(s.stride_time_s - med) <= STEADY * med]
    if contacts is None:
        contacts = {side: np.array([s.t_start for s in steady if s.side == side])
                    for side in ("left", "right")}
    out: dict[str, list[float]] = {k: [] for k in UNITS}
    pel = rec.streams.get("pelvis")
    pt, px = transient(pel, "acc") if pel is not None and pel.acc is not None else (None, None)
    for side, cs in contacts.items():
        th = rec.streams.get(f"thigh_{side}")
        if th is None or th.acc is None or th.gyr is None:
            continue
        tt, tx = transient(th, "acc")
        gt, gx = transient(th, "gyr")
        wt, ww = wobble(th)
        for c in cs:
            at, ax = _window(tt, tx, c)
            if len(ax) < 3:
                continue
            out["thigh impact"].append(float(np.max(ax)))
            out["thigh shake"].append(float(np.max(_window(gt, gx, c)[1])))
            out["thigh wobble"].append(_wobble_deg(wt, ww, c))
            if pt is not None:
                st_, sx = _window(pt, px, c)
                if len(sx) >= 3:
                    out["sacral impact"].append(float(np.max(sx)))
                    out["sacral after thigh"].append(1e3 * (_first_peak(st_, sx) - _first_peak(at, ax)))
    a = res.angles
    if a.pelvis_acc_vertical is not None and len(a.t) > 10:
        fs = 1.0 / float(np.median(np.diff(a.t)))
        v = a.pelvis_acc_vertical
        ok = np.isfinite(v)
        dv = gaussian_filter1d(np.where(ok, v, 0.0), RISE_SIGMA_S * fs, order=1) * fs
        for cs in contacts.values():
            for c in cs:
                now = (a.t >= c - 0.02) & (a.t <= c + 0.02)
                before = (a.t >= c - 0.17) & (a.t <= c - 0.13)
                if now.any() and before.any() and ok[now].all() and ok[before].all():
                    out["sacral rise to contact"].append(float(v[now].mean() - v[before].mean()))
                near = (a.t >= c - 0.2) & (a.t <= c + 0.2)
                if near.sum() > 10 and ok[near].all():
                    out["sacral steepest rise"].append(1e3 * (float(a.t[near][np.argmax(dv[near])]) - c))
    for s in steady:
        out["cadence"].append(s.cadence_spm)
        hip = getattr(a, f"hip_flexion_{s.side}")
        m = (a.t >= s.t_start) & (a.t < s.t_end)
        if m.sum() < 10 or not np.isfinite(hip[m]).all():
            continue
        h = np.degrees(hip[m])
        out["hip range"].append(float(h.max() - h.min()))
        out["peak flexion at"].append(100.0 * (float(a.t[m][np.argmax(h)]) - s.t_start) / s.stride_time_s)
        out["tilt excursion"].append(math.degrees(s.pelvic_tilt_excursion_rad))
    if len(steady) > 2:
        st = np.array([s.stride_time_s for s in steady])
        out["stride time CV"].append(100.0 * float(st.std() / st.mean()))
    for name in ("thigh impact", "sacral impact"):
        v = [x for x in out[name] if np.isfinite(x)]
        if len(v) >= 8:
            p25, p75 = np.percentile(v, [25, 75])
            out[f"{name} spread"].append(float(p75 / p25) if p25 > 0 else math.nan)
    if pel is not None and pel.acc is not None and steady:
        t0, t1 = min(s.t_start for s in steady), max(s.t_end for s in steady)
        m = (pel.t >= t0) & (pel.t <= t1)
        mag = np.linalg.norm(pel.acc[m], axis=1)
        out["sacral RMS"].append(float(np.sqrt(np.mean((mag - mag.mean()) ** 2))))
    return out


def _offline(rec, initial_calibration=None):
    return process_recording(rec, ProcessorConfig(calibration_timeout_s=offline_calibration_wait_s(
        rec.duration_s), initial_calibration=initial_calibration))


def real_recordings() -> list[tuple[str, object, object, dict | None]]:
    """``(name, recording, results, contacts)`` of the real recordings present (contacts None: hipback's)."""
    import peers

    from hipback.ingest.files import read_recording

    out = []
    folder = SHARED / "movella-dot-walk"
    if folder.is_dir():
        def movella(trial: str):
            return read_recording({p: folder / f"{dev}_20231031_{trial}.csv"
                                   for p, dev in peers.MOVELLA.items()})

        # the 5-step walk has no standing still of its own: calibrated from the N-pose trial (124807), as
        # `hipback process --calibration-from` and processing_bench.py do; the 12 s walk from its own
        npose = _offline(movella("124807")).calibration
        for trial, name in peers.WALKS.items():
            rec = movella(trial)
            res = _offline(rec)
            if not res.calibration:
                res = _offline(rec, npose)
                name += ", calibrated from the N-pose trial"
            out.append((f"Movella DOT {trial} ({name})", rec, res, None))
    if peers.QMT.is_file():
        d, rec = peers.qmt_recording(("pelvis", "thigh_left", "thigh_right"), quaternions=False)
        res = _offline(rec)
        out.append(("qmt full body (hipback's contacts)", rec, res, None))
        feet = {side: peers.foot_contacts(d[f"foot_{side}"].gyr, 100.0) for side in ("left", "right")}
        out.append(("qmt full body (the feet's contacts)", rec, res, feet))
    return out


def _fmt(values: list[float]) -> str:
    v = np.array([x for x in values if np.isfinite(x)])
    if len(v) == 0:
        return "-"
    if len(v) < 3:
        return f"{np.median(v):.1f} (n={len(v)})"
    lo, hi = np.percentile(v, [25, 75])
    return f"{np.median(v):.1f} [{lo:.1f}, {hi:.1f}] (n={len(v)})"


def _share(loose_straps: float | None) -> str:
    from hipback.simulator.session import LOOSE_STRAPS_SHARE

    return f"{LOOSE_STRAPS_SHARE:g} (the default)" if loose_straps is None else f"{loose_straps:g}"


def accuracy(n: int, seed: int, loose_straps: float | None) -> None:
    """hipback's real-check figures (``bench/processing_bench.py``'s) on the realistic cohort's clinic visits
    with ``loose_straps`` of the patients' thigh sensors on loose straps."""
    import processing_bench as pb

    from hipback.simulator import make_cohort, simulate

    print(f"\nhipback on the realistic cohort, {n} patients (make_cohort seed {seed}, loose_straps "
          f"{_share(loose_straps)}), scenario clinic_visit")
    checks = []
    for i, (patient, sensors) in enumerate(make_cohort(n, seed, realistic=True, loose_straps=loose_straps)):
        sim = simulate("clinic_visit", seed=seed * 1000 + i, patient=patient, sensors=sensors)
        checks.append(pb.hipback_real_check(sim, pb.process(sim.recording)))
    pb.summarise_real_check(checks, f"realistic cohort, loose_straps {_share(loose_straps)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--loose-straps", type=float, default=None,
                    help="share of the virtual patients whose thigh sensors sit on loose straps (default: "
                         "the realistic cohort's, simulator.session.LOOSE_STRAPS_SHARE)")
    ap.add_argument("--accuracy", action="store_true",
                    help="also hipback's real-check figures on that cohort's clinic visits")
    args = ap.parse_args()
    from hipback.simulator import make_cohort, simulate

    keys, units = list(UNITS), UNITS
    print("Real recordings: median [p25, p75] (n) over contacts or strides")
    reals = real_recordings()
    if not reals:
        print(f"  none present in {SHARED}")
    for name, rec, res, contacts in reals:
        rates = ", ".join(f"{p} {s.rate_hz:.0f} Hz" for p, s in rec.streams.items())
        print(f"  {name}: {rates}")
        m = measure(rec, res, contacts)
        for k in keys:
            print(f"    {k:20s} {units[k]:10s} {_fmt(m[k])}")
    print(f"\nRealistic virtual cohort: {args.patients} walkers (make_cohort seed {args.seed}, loose_straps "
          f"{_share(args.loose_straps)}), the truth's contacts and hipback's; per walker the median, then "
          "p10 / median / p90 over walkers")
    per_walker = {label: {k: [] for k in keys} for label in ("truth", "hipback")}
    rates: dict[float, int] = {}
    cohort = make_cohort(args.patients, args.seed, realistic=True, loose_straps=args.loose_straps)
    for i, (patient, sensors) in enumerate(cohort):
        sim = simulate("walk", seed=args.seed * 1000 + i, patient=patient, sensors=sensors, walk_s=60.0)
        rec = sim.recording
        rate = rec.streams["pelvis"].rate_hz
        rates[rate] = rates.get(rate, 0) + 1
        res = process_recording(rec)
        truth_c = {side: np.asarray(sim.truth.initial_contacts.get(side, [])) for side in ("left", "right")}
        for label, contacts in (("truth", truth_c), ("hipback", None)):
            m = measure(rec, res, contacts)
            for k in keys:
                v = [x for x in m[k] if np.isfinite(x)]
                per_walker[label][k].append(float(np.median(v)) if v else math.nan)
    print("  sensor rates: " + ", ".join(f"{r:.0f} Hz x {n}" for r, n in sorted(rates.items())))
    for label, table in per_walker.items():
        print(f"  contacts: {label}")
        for k in keys:
            v = np.array([x for x in table[k] if np.isfinite(x)])
            if len(v) == 0:
                print(f"    {k:20s} {units[k]:10s} -")
                continue
            p10, p50, p90 = np.percentile(v, [10, 50, 90])
            print(f"    {k:20s} {units[k]:10s} {p10:7.1f} / {p50:7.1f} / {p90:7.1f} (n={len(v)})")
    if args.accuracy:
        accuracy(args.patients, args.seed, args.loose_straps)


if __name__ == "__main__":
    main()

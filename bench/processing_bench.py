"""Processing benchmark: accuracy on a virtual cohort, real recordings, BROAD, speed. Prints figures.

Run: ``.venv/bin/python bench/processing_bench.py [--patients 30] [--seed 1] [--skip-cohort]
[--only cohort|realistic|hard|movella|broad|speed] [--ic-rule onset|shoulder] [--ic-refine BEFORE AFTER]
[--orientation causal|lagged]``

``--orientation lagged``: hipback's raw sensors get the fixed-lag smoothed orientation filter
(``ProcessorConfig.orientation``, as ``hipback process --orientation lagged``) in the cohort and Movella
sections, and BROAD adds :class:`LaggedOrientationEstimator` next to the causal path.

Sections
--------
1. Virtual cohort (``hipback.simulator.make_cohort``; clinic_visit scenario: standing calibration, corridor
   walk,
   kneeling hip-flexor stretch holds with and without arching, sitting, lying): per-patient RMSE of each
   angle against the simulator's truth; per-stride peak hip extension error (median, p95); stride
   precision/recall (detected IC within 50 ms of a truth IC of the same side; recall over steady truth
   strides); hold precision/recall (same side, overlap > 50 % of the truth hold), hold duration error,
   arching flag accuracy; then the figures of the real check (below).
1r. The same on the realistic cohort (``make_cohort(..., realistic=True)``: soft-tissue artefact, varied gait
   curves and cadences, asymmetry, gait initiation/termination, turns, imperfect calibration stances, device
   errors from datasheets). Real-check figures: per angle RMSE, amplitude gain (least-squares slope of
   hipback vs truth over steady walking) and mean offset while walking, truth referenced to the calibration
   stance; IC error against the true heel strike (median, p95, fraction within 50 ms); stride
   precision/recall; per-stride peak hip extension error (median, p95); calibration quality.
2. Real Movella DOT recordings (``../shared/data/movella-dot-walk``, no reference): the N-pose trial
   calibrates the session (sensors were not re-strapped), the other trials are processed with it; plus
   each trial's own calibration where it has a standing period.
3. BROAD (``../shared/data/broad``): the raw path (``OrientationEstimator``, fed in chunks) next to VQF run
   standalone, 6D (heading aligned) and 9D; total and inclination RMSE.
4. Speed: batch throughput (x real time) for 3 raw sensors at 100 Hz; streaming compute time per 50 ms
   chunk (3 sensors x 5 samples + poll), p50/p99 after calibration.

Stride truth (sections 1 and 1r and ``bench/peers.py``, one definition)
-----------------------------------------------------------------------
- A *true contact* is a heel strike of the virtual patient (``GroundTruth.initial_contacts``): its side's
  gait phase crossing 0 inside a walk where the gait envelope is at least 0.25, turning or not; the small
  first and last steps of gait initiation and termination count, the standing around a walk does not.
- A detected stride is *correct* (precision) when its IC is within 50 ms (:data:`IC_TOL_S`) of a true
  contact of its side; a second detection of the same contact counts as correct too (it cannot happen: a
  side's strides follow each other).
- *Recall* is over the steady truth strides (gait envelope 1 through the stride), turning strides included:
  a stride of a turn is a stride (``processing/gait.py``, "Turns, gait initiation and termination"); the
  strides of the initiation and termination ramps may be found or not without counting.
- *Peak extension* is compared for each detected stride reporting one against the steady truth stride it
  matches (section 1: the truth stride starting within 50 ms of its IC; the real check: the one it overlaps
  by more than half), turning strides included (hipback reports the peak as walked); the real check prints
  the error for straight and turning strides apart, by the truth's turning flag and by hipback's own
  (``Stride.turning``).
- *Turning flag*: each detected stride's ``turning`` against the steady truth stride it overlaps by more
  than half (the truth's flag: the walking direction changed by more than 10 deg within the stride), and its
  heading change against the true pelvis' heading change over the detected stride's own times (the
  azimuth of the pelvis' anterior axis), with the flag against that change above hipback's threshold.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hipback.processing.orientation import (  # noqa: E402
    LaggedOrientationEstimator,
    OrientationEstimator,
    orientation_errors,
)
from hipback.processing.pipeline import ProcessorConfig, SessionProcessor, process_recording  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
ANGLES = ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt", "lumbar_flexion")
SHORT = {"pelvis": "pelv", "thigh_left": "tlef", "thigh_right": "trig", "lumbar_upper": "lum"}
nan = math.nan


def deg(x: float) -> float:
    return math.degrees(x)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


#: the stride-detector template the benches build hipback with (``--ic-rule``, ``--ic-refine``); None: the
#: processor's default (exactly ``hipback process``)
STRIDE_DETECTOR = None
#: the raw sensors' orientation filter the benches build hipback with (``--orientation``); None: the default
ORIENTATION: str | None = None


def process(recording, cfg: ProcessorConfig | None = None):
    """``process_recording`` of ``recording``, with :data:`STRIDE_DETECTOR` and :data:`ORIENTATION` when
    set."""
    if ORIENTATION is not None:
        cfg = dataclasses.replace(cfg or ProcessorConfig(), orientation=ORIENTATION)
    if STRIDE_DETECTOR is None:
        return process_recording(recording, cfg)
    proc = SessionProcessor(
        {p: s.kind for p, s in recording.streams.items()},
        {p: s.rate_hz for p, s in recording.streams.items()},
        cfg,
        stride_detector=STRIDE_DETECTOR,
    )
    for s in recording.streams.values():
        proc.feed(s)
    res = proc.finish()
    res.gaps = list(recording.gaps) + [g for g in res.gaps if g not in recording.gaps]
    return res


def add_detector_options(ap: argparse.ArgumentParser) -> None:
    """``--ic-rule`` and ``--ic-refine`` (the initial-contact rule of :class:`StrideDetector`)."""
    ap.add_argument("--ic-rule", choices=("onset", "shoulder", "smooth"),
                    help="initial-contact rule for the sacral acceleration (default: the detector's)")
    ap.add_argument("--no-thigh-impact", action="store_true",
                    help="initial contacts without the thighs' impacts (sacral acceleration first)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="any other StrideDetector parameter (a number, or numbers separated by commas)")
    ap.add_argument(
        "--ic-refine",
        type=float,
        nargs=2,
        metavar=("BEFORE_S", "AFTER_S"),
        help="search window around the thighs' split maximum (default 0.06 0.12)",
    )
    ap.add_argument(
        "--orientation",
        choices=("causal", "lagged"),
        help="raw sensors' orientation filter of hipback's processing (default: causal; in peers.py: lagged, "
        "as hipback process)",
    )


def use_detector_options(args: argparse.Namespace) -> None:
    """Set :data:`STRIDE_DETECTOR` from the parsed ``--ic-rule`` / ``--ic-refine`` (if given)."""
    global STRIDE_DETECTOR, ORIENTATION
    from hipback.processing.gait import StrideDetector

    if getattr(args, "orientation", None):
        ORIENTATION = args.orientation
        print(f"hipback's orientation filter for raw sensors: {ORIENTATION}")

    kw: dict = {}
    if args.ic_rule:
        kw["ic_rule"] = args.ic_rule
    if args.ic_refine:
        kw["ic_refine_s"] = tuple(args.ic_refine)
    if args.no_thigh_impact:
        kw["use_thigh_impact"] = False
    for item in getattr(args, "set", []):
        name, _, value = item.partition("=")
        nums = tuple(float(v) for v in value.split(","))
        kw[name] = nums[0] if len(nums) == 1 else nums
    if kw:
        STRIDE_DETECTOR = StrideDetector("left", **kw)
        print(f"hipback's stride detector: {kw}")


# -- metrics of the real check (shared with bench/peers.py) --------------------------------------------------
IC_TOL_S = 0.05


def steady_walking_mask(truth, t: np.ndarray) -> np.ndarray:
    """Samples at times ``t`` inside a steady truth stride (either side): "while walking"."""
    m = np.zeros(len(t), dtype=bool)
    for s in truth.strides:
        if s.steady:
            m |= (t >= s.t_initial_contact) & (t < s.t_end)
    return m


def angle_agreement(t_est: np.ndarray, est: np.ndarray, truth, name: str) -> dict:
    """RMSE over the session, and over steady walking the amplitude gain (least-squares slope of estimate vs
    truth), mean offset (estimate - truth) and RMSE; the truth is referenced to the calibration stance, as a
    lab reference zeroed on quiet standing is (``GroundTruth.angle_vs_stance``). Degrees."""
    ref = np.interp(t_est, truth.t, truth.angle_vs_stance(name), left=np.nan, right=np.nan)
    ok = np.isfinite(ref) & np.isfinite(est)
    out = {"rmse": nan, "gain": nan, "offset": nan, "rmse_walk": nan}
    if ok.sum() < 10:
        return out
    d = est[ok] - ref[ok]
    out["rmse"] = deg(float(np.sqrt(np.mean(d**2))))
    w = ok & steady_walking_mask(truth, t_est)
    if w.sum() > 50:
        slope = np.polyfit(ref[w], est[w], 1)[0]
        out["gain"] = float(slope)
        out["offset"] = deg(float(np.mean(est[w] - ref[w])))
        out["rmse_walk"] = deg(float(np.sqrt(np.mean((est[w] - ref[w]) ** 2))))
    return out


def ic_agreement(detected: dict[str, np.ndarray], truth, sides: set[str]) -> dict:
    """Detected initial contacts (s, per side) against the true heel strikes (``truth.initial_contacts``).

    ``err``: signed error (detected - true, s) of each detection to the nearest true IC of its side within
    half a stride; ``tp``/``fp``: detections within / not within :data:`IC_TOL_S` of a true IC of their side;
    ``found``/``total``: steady truth strides (sides in ``sides``) whose IC has a detection within the
    tolerance (stride recall)."""
    errs, tp, fp, fp_unsteady = [], 0, 0, 0
    for side in sides:
        true_ic = np.asarray(truth.initial_contacts.get(side, []), dtype=float)
        unsteady = [s.t_initial_contact for s in truth.strides if s.side == side and not s.steady]
        for tc in np.asarray(detected.get(side, []), dtype=float):
            if len(true_ic) == 0:
                fp += 1
                continue
            j = int(np.argmin(np.abs(true_ic - tc)))
            e = tc - true_ic[j]
            if abs(e) < 0.5 * truth.patient.stride_time_s:
                errs.append(e)
            if abs(e) <= IC_TOL_S:
                tp += 1
            else:
                fp += 1
                # the nearest true contact starts a stride of gait initiation or termination (not steady)
                near = np.abs(np.array(unsteady) - true_ic[j]) if unsteady else np.array([1.0])
                fp_unsteady += bool(np.min(near) < 1e-9)
    found = total = 0
    cond = {"turning": [0, 0], "straight": [0, 0]}
    for s in truth.strides:
        if s.steady and s.side in sides:
            total += 1
            det = np.asarray(detected.get(s.side, []), dtype=float)
            hit = bool(len(det) and np.min(np.abs(det - s.t_initial_contact)) <= IC_TOL_S)
            found += hit
            c = cond["turning" if getattr(s, "turning", False) else "straight"]
            c[0] += hit
            c[1] += 1
    return {"err": errs, "tp": tp, "fp": fp, "fp_unsteady": fp_unsteady, "found": found, "total": total,
            "cond": cond}


def _matching_truth_stride(truth, side: str, a: float, b: float):
    """The steady truth stride of ``side`` that the detected stride ``[a, b]`` overlaps by more than half of
    its duration (the largest overlap), or None."""
    best, best_ov = None, 0.0
    for ts in truth.strides:
        if ts.side != side or not ts.steady:
            continue
        ov = min(b, ts.t_end) - max(a, ts.t_initial_contact)
        if ov > 0.5 * (ts.t_end - ts.t_initial_contact) and ov > best_ov:
            best, best_ov = ts, ov
    return best


def extension_agreement(
    strides: list[tuple], truth, turning: list[bool] | None = None, detected: list[bool] | None = None
) -> list[float]:
    """Per-stride peak hip extension error (deg) of detected strides ``(side, t_start, t_end, ext_rad)``
    matched to the steady truth stride of the same side they overlap by more than half of its duration;
    the truth peak is referenced to the calibration stance (extension grows by the stance flexion). With
    ``turning``, the matched truth stride's ``turning`` flag is appended to it for each error; with
    ``detected``, the detected stride's own flag (a fifth element of its tuple, ``Stride.turning``)."""
    out = []
    for st in strides:
        side, a, b, ext = st[:4]
        if not np.isfinite(ext):  # withheld (counted by the caller)
            continue
        best = _matching_truth_stride(truth, side, a, b)
        if best is not None:
            ref = best.peak_hip_extension_rad + truth.stance_angles.get(f"hip_flexion_{side}", 0.0)
            out.append(deg(ext - ref))
            if turning is not None:
                turning.append(bool(getattr(best, "turning", False)))
            if detected is not None:
                detected.append(bool(st[4]) if len(st) > 4 else False)
    return out


def true_pelvis_heading(truth) -> np.ndarray | None:
    """The true pelvis' heading (rad, unwrapped, counter-clockwise seen from above positive) on ``truth.t``:
    the azimuth of its anterior axis; None without the true pelvis orientation."""
    q = getattr(truth, "segment_quat", {}).get("pelvis")
    if q is None:
        return None
    w, x, y, z = (q[:, i] for i in range(4))
    return np.unwrap(np.arctan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z)))


def turn_agreement(strides: list[tuple], truth) -> list[tuple[bool, bool, float, float]]:
    """The turning flag of detected strides ``(side, t_start, t_end, turning, heading_change_rad)`` against
    the steady truth stride each overlaps by more than half: per matched stride ``(detected flag, truth
    flag, detected heading change, true pelvis heading change over the detected stride's own times)``
    (degrees; the truth flag is the simulator's: its walking direction changed by more than 10 deg within
    the stride)."""
    heading = true_pelvis_heading(truth)
    out = []
    for side, a, b, flag, change in strides:
        best = _matching_truth_stride(truth, side, a, b)
        if best is None:
            continue
        true_change = nan
        if heading is not None:
            ha, hb = np.interp([a, b], truth.t, heading)
            true_change = deg(float(hb - ha))
        out.append((bool(flag), bool(getattr(best, "turning", False)), deg(change), true_change))
    return out


def real_check(
    truth, t_est, angles: dict[str, np.ndarray], ics: dict, strides: list, sides: set[str]
) -> dict:
    """All figures of the real check for one session (``angles`` rad on ``t_est``; ``ics`` per side)."""
    out = {"angles": {n: angle_agreement(t_est, v, truth, n) for n, v in angles.items()}}
    out["ic"] = ic_agreement(ics, truth, sides) if ics is not None else None
    out["ext_turning"] = []
    out["ext"] = extension_agreement(strides, truth, out["ext_turning"]) if strides is not None else None
    out["ext_withheld"] = sum(1 for s in strides if not np.isfinite(s[3])) if strides is not None else 0
    out["ext_reported"] = sum(1 for s in strides if np.isfinite(s[3])) if strides is not None else 0
    return out


def hipback_real_check(sim, res) -> dict:
    a = res.angles
    sides = {p[6:] for p in res.placements if p.startswith("thigh")}
    angles = {n: getattr(a, n) for n in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt")}
    angles = {n: v for n, v in angles.items() if np.isfinite(v).any()}
    ics = {side: np.array([s.t_start for s in res.strides if s.side == side]) for side in sides}
    strides = [(s.side, s.t_start, s.t_end, s.peak_hip_extension_rad) for s in res.strides]
    out = real_check(sim.truth, a.t, angles, ics, strides, sides)
    # the turning flag: against the truth, and the peak-extension error split by the detected flag
    out["turn"] = turn_agreement(
        [(s.side, s.t_start, s.t_end, s.turning, s.heading_change_rad) for s in res.strides], sim.truth
    )
    out["ext_detected_turning"] = []
    extension_agreement(
        [(*x, s.turning) for x, s in zip(strides, res.strides, strict=True)], sim.truth,
        detected=out["ext_detected_turning"],
    )
    out["quality"] = min((c.quality for c in res.calibration.values()), default=nan)
    # IC within the tolerance by the evidence each stride's contact came from
    by_source: dict[str, list[int]] = {}
    for s in res.strides:
        true_ic = np.asarray(sim.truth.initial_contacts.get(s.side, []), dtype=float)
        ok = bool(len(true_ic) and np.min(np.abs(true_ic - s.t_start)) <= IC_TOL_S)
        b = by_source.setdefault(s.ic_source, [0, 0])
        b[0] += ok
        b[1] += 1
    out["by_source"] = by_source
    out["pelvis_axis"] = pelvis_axis_error(sim.truth, res.calibration.get("pelvis"))
    return out


def pelvis_axis_error(truth, cal) -> tuple[str, float, float] | None:
    """``(method, angle between the calibrated and the true medio-lateral axis of the pelvis (deg, across the
    calibrated vertical), reported uncertainty)`` against the simulator's mounting, or None."""
    from hipback.processing import quaternion as qm

    mount = getattr(truth, "mounting", {}).get("pelvis")
    if cal is None or mount is None:
        return None
    y = qm.rotate(cal.q_segment_in_sensor, np.array([0.0, 1.0, 0.0]))
    z = qm.rotate(cal.q_segment_in_sensor, np.array([0.0, 0.0, 1.0]))
    zt = qm.rotate(qm.conjugate(np.asarray(mount)), np.array([0.0, 0.0, 1.0]))
    zt = zt - (zt @ y) * y
    zt = zt / np.linalg.norm(zt)
    return cal.method, math.degrees(math.acos(min(1.0, float(zt @ z)))), cal.ml_uncertainty_deg


def summarise_real_check(rows: list[dict], label: str) -> dict:
    """Print and return the cohort figures of the real check."""
    fig: dict = {}
    print(f"  -- real-check figures, {label} (truth referenced to the calibration stance) --")
    for name in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt"):
        r = [x["angles"][name] for x in rows if name in x["angles"]]
        if not r:
            continue
        rm = [v["rmse"] for v in r if np.isfinite(v["rmse"])]
        g = [v["gain"] for v in r if np.isfinite(v["gain"])]
        o = [v["offset"] for v in r if np.isfinite(v["offset"])]
        fig[name] = (
            np.median(rm) if rm else nan,
            np.median(g) if g else nan,
            np.median(np.abs(o)) if o else nan,
        )
        print(
            f"    {name:18s} RMSE median {fig[name][0]:5.2f} p90 {pct(rm, 90):5.2f} deg | gain median "
            f"{fig[name][1]:.3f} (p10 {pct(g, 10):.3f}, p90 {pct(g, 90):.3f}) | |offset| walking median "
            f"{fig[name][2]:.2f} deg (n={len(rm)})"
        )
    ic_rows = [x["ic"] for x in rows if x.get("ic") is not None]
    if ic_rows:
        err = np.abs([e for r in ic_rows for e in r["err"]])
        tp = sum(r["tp"] for r in ic_rows)
        fp = sum(r["fp"] for r in ic_rows)
        found = sum(r["found"] for r in ic_rows)
        total = sum(r["total"] for r in ic_rows)
        fig["ic"] = (
            float(np.median(err)) if len(err) else nan,
            pct(list(err), 95),
            float(np.mean(err <= IC_TOL_S)) if len(err) else nan,
        )
        fig["strides"] = (tp / max(tp + fp, 1), found / max(total, 1))
        print(
            f"    IC error |detected - true heel strike|: median {fig['ic'][0] * 1e3:.0f} ms, p95 "
            f"{fig['ic'][1] * 1e3:.0f} ms, within 50 ms {fig['ic'][2]:.3f} (n={len(err)}) | strides "
            f"precision {fig['strides'][0]:.3f} recall {fig['strides'][1]:.3f} ({found}/{total})"
        )
    if ic_rows and all("cond" in r for r in ic_rows):
        parts = []
        for name in ("straight", "turning"):
            f = sum(r["cond"][name][0] for r in ic_rows)
            n = sum(r["cond"][name][1] for r in ic_rows)
            parts.append(f"{name} {f}/{n} ({f / max(n, 1):.3f})")
        print("    stride recall by condition: " + ", ".join(parts))
        fpu = sum(r.get("fp_unsteady", 0) for r in ic_rows)
        print(f"    contacts off by more than 50 ms: {fp} ({fpu} at gait initiation or termination, "
              f"{fp - fpu} in steady walking)")
    src: dict[str, list[int]] = {}
    for x in rows:
        for k, (ok, n) in x.get("by_source", {}).items():
            src.setdefault(k, [0, 0])
            src[k][0] += ok
            src[k][1] += n
    if src:
        print(
            "    IC within 50 ms by evidence: "
            + ", ".join(f"{k} {ok}/{n} ({ok / max(n, 1):.3f})" for k, (ok, n) in sorted(src.items()))
        )
    worst = [
        (float(np.mean(np.abs(x["ic"]["err"]) <= IC_TOL_S)), i, x.get("desc", ""))
        for i, x in enumerate(rows)
        if x.get("ic") is not None and len(x["ic"]["err"])
    ]
    worst = sorted(w for w in worst if w[0] < 0.9)
    if worst:
        print(
            "    sessions with IC within 50 ms under 90 %: "
            + "; ".join(f"#{i + 1} {d} {f:.2f}" for f, i, d in worst)
        )
    ext_rows = [x["ext"] for x in rows if x.get("ext") is not None]
    if ext_rows:
        ext = [e for r in ext_rows for e in r]
        aext = list(np.abs(ext))
        fig["ext"] = (float(np.median(aext)) if aext else nan, pct(aext, 95))
        withheld = sum(x.get("ext_withheld", 0) for x in rows)
        reported = sum(x.get("ext_reported", 0) for x in rows)
        print(
            f"    per-stride peak hip extension error: median |e| {fig['ext'][0]:.2f} deg, p95 "
            f"{fig['ext'][1]:.2f} deg, bias {np.mean(ext) if ext else nan:+.2f} deg (n={len(ext)} matched; "
            f"peaks reported for {reported} strides, withheld for {withheld})"
        )
        parts = []
        for name, flag in (("straight", False), ("turning", True)):
            e = [abs(v) for x in rows if x.get("ext") is not None
                 for v, t in zip(x["ext"], x.get("ext_turning", []), strict=True) if t == flag]
            if e:
                parts.append(f"{name} median |e| {np.median(e):.2f} p95 {pct(e, 95):.2f} deg (n={len(e)})")
        if parts:
            print("    peak extension error by condition: " + ", ".join(parts))
        parts = []
        for name, flag in (("straight", False), ("turning", True)):
            e = [abs(v) for x in rows if x.get("ext") is not None and "ext_detected_turning" in x
                 for v, t in zip(x["ext"], x["ext_detected_turning"], strict=True) if t == flag]
            if e:
                parts.append(f"{name} median |e| {np.median(e):.2f} p95 {pct(e, 95):.2f} deg (n={len(e)})")
        if parts:
            print("    peak extension error by the detected turning flag: " + ", ".join(parts))
    turns = [m for x in rows for m in x.get("turn", [])]
    if turns:
        fig["turn"] = turn_figures(turns)
    pa = [x["pelvis_axis"] for x in rows if x.get("pelvis_axis")]
    if pa:
        err = [e for _, e, _ in pa]
        walk = [e for m, e, _ in pa if m == "standing+walking"]
        unc = [u for m, _, u in pa if m == "standing+walking"]
        print(
            f"    pelvis medio-lateral axis vs the true mounting: median {np.median(err):.2f} deg, p90 "
            f"{pct(err, 90):.2f} deg (n={len(err)}); from walking for {len(walk)} "
            + (f"(uncertainty reported {min(unc):.1f}-{max(unc):.1f} deg)" if unc else "")
        )
    q = [x["quality"] for x in rows if np.isfinite(x.get("quality", nan))]
    if q:
        print(f"    calibration quality (min over sensors): median {np.median(q):.2f}, min {min(q):.2f}")
    return fig


def turn_figures(turns: list[tuple[bool, bool, float, float]]) -> dict:
    """Print and return the turning flag's agreement (``turn_agreement`` rows of a cohort)."""
    from hipback.processing.gait import StrideDetector

    thr = deg(StrideDetector.turn_threshold_rad)
    det = np.array([m[0] for m in turns])
    tru = np.array([m[1] for m in turns])
    dh = np.array([m[2] for m in turns])
    th = np.array([m[3] for m in turns])
    tp, fp = int(np.sum(det & tru)), int(np.sum(det & ~tru))
    fn, tn = int(np.sum(~det & tru)), int(np.sum(~det & ~tru))
    out = {"agree": float(np.mean(det == tru)), "tp": tp, "fp": fp, "fn": fn, "tn": tn}
    print(
        f"    turning flag vs the truth's (walking direction changed > 10 deg in the stride): agreement "
        f"{out['agree']:.3f} (n={len(det)}; turning found {tp}/{tp + fn}, flagged in straight truth strides "
        f"{fp}/{fp + tn}; precision {tp / max(tp + fp, 1):.3f}, recall {tp / max(tp + fn, 1):.3f})"
    )
    ok = np.isfinite(dh) & np.isfinite(th)
    if ok.any():
        e = np.abs(dh[ok] - th[ok])
        same = np.abs(th[ok]) > thr
        out["agree_heading"] = float(np.mean(det[ok] == same))
        out["heading_err"] = (float(np.median(e)), pct(list(e), 95))
        print(
            f"    heading change over the stride vs the true pelvis': |error| median "
            f"{out['heading_err'][0]:.2f}"
            f" p95 {out['heading_err'][1]:.2f} max {e.max():.2f} deg (n={int(ok.sum())}); flag vs the true "
            f"pelvis' change > {thr:.0f} deg: agreement {out['agree_heading']:.3f} ({int(same.sum())} true "
            f"turning, {int(np.sum(det[ok] & ~same))} flagged wrongly, {int(np.sum(~det[ok] & same))} missed)"
        )
    unknown = int(np.sum(~np.isfinite(dh)))
    if unknown:
        print(f"    strides without a heading change (no pelvis yaw rate): {unknown}")
    return out


# -- 1. virtual cohort ----------------------------------------------------------------------------------
def evaluate_session(sim, res) -> dict:
    tr = sim.truth
    a = res.angles
    idx = np.clip(np.round(a.t * 100.0).astype(int) - int(round(tr.t[0] * 100.0)), 0, len(tr.t) - 1)
    ok_t = np.abs(tr.t[idx] - a.t) < 1e-6
    out: dict = {"rmse": {}, "coverage": {}}
    for name in ANGLES:
        est = getattr(a, name)[ok_t]
        ref = getattr(tr, name)[idx[ok_t]]
        m = np.isfinite(ref)
        if not m.any():
            continue
        worn = np.isfinite(est[m])
        out["coverage"][name] = float(worn.mean())
        if worn.any():
            d = est[m][worn] - ref[m][worn]
            out["rmse"][name] = deg(float(np.sqrt(np.mean(d**2))))
    # strides
    tp = fp = 0
    matched_truth = set()
    ext_err = []
    for s in res.strides:
        # correct: within IC_TOL_S of a true contact of its side (the module docstring, "Stride truth")
        true_ic = np.asarray(tr.initial_contacts.get(s.side, []), dtype=float)
        if len(true_ic) and np.min(np.abs(true_ic - s.t_start)) <= IC_TOL_S:
            tp += 1
        else:
            fp += 1
        cands = [
            (abs(ts.t_initial_contact - s.t_start), i, ts)
            for i, ts in enumerate(tr.strides)
            if ts.side == s.side and abs(ts.t_initial_contact - s.t_start) <= IC_TOL_S
        ]
        if cands:
            _, i, ts = min(cands, key=lambda c: c[0])
            matched_truth.add(i)
            if ts.steady and np.isfinite(s.peak_hip_extension_rad):  # NaN: peak withheld
                ext_err.append(deg(s.peak_hip_extension_rad - ts.peak_hip_extension_rad))
    worn_sides = {p[6:] for p in res.placements if p.startswith("thigh")}
    steady = [i for i, ts in enumerate(tr.strides) if ts.steady and ts.side in worn_sides]
    out["stride_tp"], out["stride_fp"] = tp, fp
    out["stride_truth"] = len(steady)
    out["stride_found"] = len([i for i in steady if i in matched_truth])
    out["ext_err"] = ext_err
    # holds
    htp = hfp = 0
    found_truth = set()
    dur_err, arch_ok = [], []
    for h in res.holds:
        best = None
        for i, th in enumerate(tr.holds):
            ov = min(h.t_end, th.t_end) - max(h.t_start, th.t_start)
            if th.side == h.side and ov > 0.5 * (th.t_end - th.t_start):
                best = (i, th)
        if best is None:
            hfp += 1
            continue
        i, th = best
        htp += 1
        found_truth.add(i)
        dur_err.append(h.duration_s - (th.t_end - th.t_start))
        arch_ok.append(bool(h.arching) == bool(th.arching))
    truth_holds = [i for i, th in enumerate(tr.holds) if f"thigh_{th.side}" in res.placements]
    out["hold_tp"], out["hold_fp"] = htp, hfp
    out["hold_truth"] = len(truth_holds)
    out["hold_found"] = len([i for i in truth_holds if i in found_truth])
    out["hold_dur_err"] = dur_err
    out["arch_ok"] = arch_ok
    return out


def cohort_section(n: int, seed: int, cfg: ProcessorConfig | None, realistic: bool = False) -> None:
    from hipback.simulator import make_cohort, simulate

    label = "realistic" if realistic else "easy"
    print(
        f"\n== 1{'r' if realistic else ''}. Virtual cohort ({label}): {n} patients "
        f"(make_cohort seed {seed}{', realistic=True' if realistic else ''}), scenario clinic_visit"
    )
    rows = []
    checks = []
    t_sim = t_proc = cpu_proc = 0.0
    for i, (patient, sensors) in enumerate(make_cohort(n, seed, realistic=realistic)):
        t0 = time.perf_counter()
        sim = simulate("clinic_visit", seed=seed * 1000 + i, patient=patient, sensors=sensors)
        t1 = time.perf_counter()
        c1 = time.process_time()
        res = process(sim.recording, cfg)
        cpu_proc += time.process_time() - c1
        t2 = time.perf_counter()
        t_sim += t1 - t0
        t_proc += t2 - t1
        ev = evaluate_session(sim, res)
        checks.append(hipback_real_check(sim, res))
        s0 = sensors[0]
        desc = (
            (s0.error_profile + " " if s0.error_profile else "")
            + f"{s0.kind}{'+mag' if s0.has_mag else ''} {s0.rate_hz:.0f}Hz {s0.thigh_face[:3]} "
            + "+".join(sorted(SHORT[s.placement] for s in sensors))
        )
        ev["desc"] = desc
        checks[-1]["desc"] = desc
        ev["quality"] = min((c.quality for c in res.calibration.values()), default=float("nan"))
        ev["warnings"] = res.warnings
        rows.append(ev)
        r = ev["rmse"]
        print(
            f"  {i + 1:2d} {desc:34s} ext L/R {patient.peak_hip_extension_left_deg:4.1f}/"
            f"{patient.peak_hip_extension_right_deg:4.1f} | RMSE hipL {r.get('hip_flexion_left', nan):4.2f} "
            f"hipR {r.get('hip_flexion_right', nan):4.2f} tilt {r.get('pelvic_tilt', nan):4.2f} "
            f"lumb {r.get('lumbar_flexion', nan):4.2f} | strides {ev['stride_found']}/{ev['stride_truth']} "
            f"fp {ev['stride_fp']} | holds {ev['hold_found']}/{ev['hold_truth']} fp {ev['hold_fp']} "
            f"| calq {ev['quality']:.2f}"
        )
        for w in res.warnings:
            print(f"       warning: {w}")
    print(f"  (simulation {t_sim:.1f} s, processing {t_proc:.1f} s, processing CPU time {cpu_proc:.1f} s)")
    print("  RMSE per angle (deg), over patients wearing that sensor:")
    for name in ANGLES:
        vals = [r["rmse"][name] for r in rows if name in r["rmse"]]
        if vals:
            print(
                f"    {name:18s} median {np.median(vals):5.2f}  p90 {pct(vals, 90):5.2f}  "
                f"max {max(vals):5.2f}  (n={len(vals)})"
            )
    ext = [e for r in rows for e in r["ext_err"]]
    aext = np.abs(ext)
    print(
        f"  per-stride peak hip extension error: median |e| {np.median(aext):.2f} deg, "
        f"p95 {pct(list(aext), 95):.2f} deg, bias {np.mean(ext):+.2f} deg "
        f"(n={len(ext)} matched steady strides)"
    )
    tp = sum(r["stride_tp"] for r in rows)
    fp = sum(r["stride_fp"] for r in rows)
    found = sum(r["stride_found"] for r in rows)
    total = sum(r["stride_truth"] for r in rows)
    print(
        f"  strides (IC within 50 ms): precision {tp / max(tp + fp, 1):.3f}, "
        f"recall {found / max(total, 1):.3f}"
    )
    htp = sum(r["hold_tp"] for r in rows)
    hfp = sum(r["hold_fp"] for r in rows)
    hf = sum(r["hold_found"] for r in rows)
    ht = sum(r["hold_truth"] for r in rows)
    de = [abs(d) for r in rows for d in r["hold_dur_err"]]
    arch = [a for r in rows for a in r["arch_ok"]]
    print(
        f"  holds: precision {htp / max(htp + hfp, 1):.3f}, recall {hf / max(ht, 1):.3f}; duration |error| "
        f"median {np.median(de) if de else math.nan:.2f} s, p95 {pct(de, 95):.2f} s; arching flag accuracy "
        f"{np.mean(arch) if arch else math.nan:.3f} (n={len(arch)})"
    )
    summarise_real_check(checks, f"{label} cohort")


# -- 1b. hard cases -----------------------------------------------------------------------------------------
def _rmse_line(sim, res) -> str:
    ev = evaluate_session(sim, res)
    r = ev["rmse"]
    return (
        f"RMSE hipL {r.get('hip_flexion_left', nan):.2f} hipR {r.get('hip_flexion_right', nan):.2f} "
        f"tilt {r.get('pelvic_tilt', nan):.2f} deg, coverage hipL "
        f"{ev['coverage'].get('hip_flexion_left', nan):.2f}, "
        f"strides {ev['stride_found']}/{ev['stride_truth']}"
    )


def hard_cases_section(seed: int) -> None:
    from hipback.processing import quaternion as qm
    from hipback.processing.types import Recording, SensorStream
    from hipback.simulator import SensorSpec, simulate

    print("\n== 1b. Hard cases (clinic_visit, default raw sensors unless stated)")
    sim = simulate("clinic_visit", seed=seed)
    rec = sim.recording

    def show(name: str, r: Recording, simu=sim) -> None:
        res = process_recording(r)
        flags = {p: c.flags for p, c in res.calibration.items() if c.flags}
        print(f"  {name:34s} {_rmse_line(simu, res)} | flags {flags or '-'}")
        for w in res.warnings:
            print(f"       warning: {w}")

    show("reference", rec)
    st = dict(rec.streams)
    left, right = st["thigh_left"], st["thigh_right"]
    st["thigh_left"] = SensorStream("thigh_left", "raw", right.t, right.rate_hz, acc=right.acc, gyr=right.gyr)
    st["thigh_right"] = SensorStream("thigh_right", "raw", left.t, left.rate_hz, acc=left.acc, gyr=left.gyr)
    show("thigh sensors swapped", Recording(st))
    st = dict(rec.streams)
    p = st["pelvis"]
    flip = np.array([-1.0, -1.0, 1.0])
    st["pelvis"] = SensorStream("pelvis", "raw", p.t, p.rate_hz, acc=p.acc * flip, gyr=p.gyr * flip)
    show("pelvis sensor upside down", Recording(st))
    st = dict(rec.streams)
    keep = (p.t < 30.0) | (p.t > 32.0)
    st["pelvis"] = SensorStream("pelvis", "raw", p.t[keep], p.rate_hz, acc=p.acc[keep], gyr=p.gyr[keep])
    show("pelvis gap 30-32 s (walking)", Recording(st))
    quat_sim = simulate(
        "clinic_visit",
        seed=seed,
        sensors=[
            SensorSpec(placement=x, kind="quat", rate_hz=60.0)
            for x in ("pelvis", "thigh_left", "thigh_right")
        ],
    )
    st = dict(quat_sim.recording.streams)
    th = st["thigh_right"]
    slip = qm.from_axis_angle([0.0, 1.0, 0.0], math.radians(15.0) * np.clip((th.t - 40.0) / 0.5, 0, 1))
    st["thigh_right"] = SensorStream("thigh_right", "quat", th.t, th.rate_hz, quat=qm.multiply(th.quat, slip))
    print("  (quaternion devices at 60 Hz, right thigh sensor rotated 15 deg on the leg at 40 s (walking))")
    show("slipped thigh sensor", Recording(st), quat_sim)
    late = simulate("walk", seed=seed, calib_s=0.5, walk_s=40.0, stand_s=6.0)
    print("  (walk scenario without a standing period at the start; standing only at the end)")
    show("no standing at the start", late.recording, late)


# -- 2. real recordings -----------------------------------------------------------------------------------
MOVELLA = {"pelvis": "4_D422CD003437", "thigh_left": "3_D422CD003235", "thigh_right": "5_D422CD0034C1"}
TRIALS = {
    "124807": "N-pose",
    "124822": "lean forward",
    "124831": "cycle right leg",
    "124840": "cycle left leg",
    "124850": "walk 5 steps",
    "133150": "walk",
}


def movella_section() -> None:
    folder = SHARED / "movella-dot-walk"
    print("\n== 2. Real recordings: Movella DOT (no reference)")
    if not folder.is_dir():
        print(f"  skipped: {folder} not present")
        return
    from hipback.ingest.files import read_recording

    def rec(trial: str):
        return read_recording({p: folder / f"{dev}_20231031_{trial}.csv" for p, dev in MOVELLA.items()})

    npose = process(rec("124807"))
    cal = npose.calibration
    print(
        "  session calibration from the N-pose trial: "
        + ", ".join(
            f"{p} {c.quality:.2f} ({c.method}, face {c.face}, flags {c.flags or '-'})" for p, c in cal.items()
        )
    )
    for trial, name in TRIALS.items():
        if trial == "124807":
            continue
        r = rec(trial)
        own = process(r)
        res = process(r, ProcessorConfig(initial_calibration=cal))
        a = res.angles

        def rng(x: np.ndarray) -> str:
            x = x[np.isfinite(x)]
            return (
                "n/a"
                if len(x) == 0
                else f"{deg(np.percentile(x, 2)):+5.1f}..{deg(np.percentile(x, 98)):+5.1f}"
            )

        ns = {side: res.summary.get(f"n_strides_{side}", 0) for side in ("left", "right")}
        print(
            f"  {trial} {name:15s} thigh incl L {rng(a.thigh_inclination_left)} "
            f"R {rng(a.thigh_inclination_right)} "
            f"| hip L {rng(a.hip_flexion_left)} R {rng(a.hip_flexion_right)} | tilt {rng(a.pelvic_tilt)} deg "
            f"| strides L {ns['left']} R {ns['right']} | own calibration: {own.calibration_state}"
            + (
                f" (q {min(c.quality for c in own.calibration.values()):.2f}, strides "
                f"{own.summary.get('n_strides_left', 0)}/{own.summary.get('n_strides_right', 0)})"
                if own.calibration
                else ""
            )
        )
        if trial in ("124831", "124840"):
            rl = np.nanpercentile(a.thigh_inclination_left, 98) - np.nanpercentile(
                a.thigh_inclination_left, 2
            )
            rr = np.nanpercentile(a.thigh_inclination_right, 98) - np.nanpercentile(
                a.thigh_inclination_right, 2
            )
            print(
                f"       moving leg by thigh swing range: {'right' if rr > rl else 'left'} "
                f"(left {deg(rl):.0f} vs right {deg(rr):.0f} deg)"
            )
        if trial in ("124850", "133150"):
            for s in res.strides:
                print(
                    f"       stride {s.side:5s} {s.t_start:5.2f}-{s.t_end:5.2f} s, peak hip ext "
                    f"{deg(s.peak_hip_extension_rad):4.1f} deg, hip range {deg(s.hip_range_rad):4.1f} deg"
                )


# -- 3. BROAD ------------------------------------------------------------------------------------------------
def broad_section() -> None:
    import scipy.io
    import vqf

    folder = SHARED / "broad"
    print("\n== 3. BROAD: raw path (OrientationEstimator, 1000-sample chunks) vs VQF standalone")
    if not folder.is_dir():
        print(f"  skipped: {folder} not present")
        return
    sums: dict[str, list[float]] = {}
    for path in sorted(folder.glob("*.mat")):
        d = scipy.io.loadmat(path, squeeze_me=True)
        fs = float(d["sampling_rate"])
        gyr, acc, mag = (np.ascontiguousarray(d[k], dtype=float) for k in ("imu_gyr", "imu_acc", "imu_mag"))
        t = np.arange(len(gyr)) / fs
        mv = d["movement"].astype(bool)
        line = f"  {path.stem:34s}"
        for mode in ("6D", "9D"):
            use = mode == "9D"
            est = OrientationEstimator(fs, use_mag=use)
            q = np.concatenate(
                [
                    est.update(
                        t[i : i + 1000],
                        acc[i : i + 1000],
                        gyr[i : i + 1000],
                        mag[i : i + 1000] if use else None,
                    ).quat
                    for i in range(0, len(t), 1000)
                ]
            )
            ref = vqf.VQF(1.0 / fs).updateBatch(gyr, acc, mag)["quat9D" if use else "quat6D"]
            e1 = orientation_errors(q, d["opt_quat"], mv, align_heading=not use)
            e2 = orientation_errors(ref, d["opt_quat"], mv, align_heading=not use)
            diff = float(np.nanmax(np.abs(q - ref)))
            for k, v in (
                (f"{mode} ours total", e1["total_rmse_deg"]),
                (f"{mode} ours incl", e1["inclination_rmse_deg"]),
                (f"{mode} vqf total", e2["total_rmse_deg"]),
                (f"{mode} vqf incl", e2["inclination_rmse_deg"]),
            ):
                sums.setdefault(k, []).append(v)
            sums.setdefault(f"{mode} ours heading", []).append(e1["heading_rmse_deg"])
            line += (
                f" | {mode} ours {e1['total_rmse_deg']:.2f}/{e1['inclination_rmse_deg']:.2f}"
                f" vqf {e2['total_rmse_deg']:.2f}/{e2['inclination_rmse_deg']:.2f} max|dq| {diff:.1e}"
            )
        if ORIENTATION == "lagged":  # the fixed-lag smoothed filter (6D), fed in the same chunks
            lag = LaggedOrientationEstimator(fs)
            parts = [
                lag.update(t[i : i + 1000], acc[i : i + 1000], gyr[i : i + 1000]).quat
                for i in range(0, len(t), 1000)
            ]
            q = np.concatenate([*parts, lag.finish().quat])
            e3 = orientation_errors(q, d["opt_quat"], mv, align_heading=True)
            for k in ("total", "inclination", "heading"):
                sums.setdefault(f"lagged {k}", []).append(e3[f"{k}_rmse_deg"])
            line += f" | lagged 6D {e3['total_rmse_deg']:.2f}/{e3['inclination_rmse_deg']:.2f}"
        print(line)
    for mode in ("6D", "9D"):
        print(
            f"  mean {mode} (total/inclination deg): ours {np.mean(sums[f'{mode} ours total']):.2f}/"
            f"{np.mean(sums[f'{mode} ours incl']):.2f}, "
            f"VQF standalone {np.mean(sums[f'{mode} vqf total']):.2f}/"
            f"{np.mean(sums[f'{mode} vqf incl']):.2f}"
        )
    if ORIENTATION == "lagged":
        print(
            "  mean lagged 6D (total/inclination deg): "
            + "/".join(f"{np.mean(sums[f'lagged {k}']):.2f}" for k in ("total", "inclination"))
        )
        print("  6D per file, median/p90/max (deg): causal (ours) -> lagged")
        for k, c in (("inclination", "incl"), ("heading", "heading")):
            v0, v1 = sums[f"6D ours {c}"], sums[f"lagged {k}"]
            print(
                f"    {k:11s} {np.median(v0):.2f}/{pct(v0, 90):.2f}/{max(v0):.2f} -> "
                f"{np.median(v1):.2f}/{pct(v1, 90):.2f}/{max(v1):.2f} (n={len(v1)})"
            )


# -- 4. speed -----------------------------------------------------------------------------------------------
def speed_section() -> None:
    from hipback.simulator import SensorSpec, simulate

    print("\n== 4. Speed (3 raw sensors at 100 Hz)")
    sensors = [SensorSpec(placement=p) for p in ("pelvis", "thigh_left", "thigh_right")]
    sim = simulate("walk", seed=3, sensors=sensors, walk_s=600.0)
    rec = sim.recording
    dur = rec.duration_s
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        res = process_recording(rec)
        best = min(best, time.perf_counter() - t0)
    print(
        f"  batch: {dur:.0f} s of data in {best:.2f} s = {dur / best:.0f}x real time "
        f"({len(res.strides)} strides, {len(res.angles)} angle rows)"
    )
    proc = SessionProcessor(
        {p: s.kind for p, s in rec.streams.items()}, {p: s.rate_hz for p, s in rec.streams.items()}
    )
    n = min(len(s) for s in rec.streams.values())
    times = []
    for k in range(0, n, 5):
        t0 = time.perf_counter()
        for s in rec.streams.values():
            proc.feed(s.slice(k, k + 5))
        proc.poll()
        times.append(time.perf_counter() - t0)
        if proc.state != "calibrated":
            times.pop()
    proc.finish()
    ms = np.array(times) * 1e3
    print(
        f"  streaming: {len(ms)} chunks of 50 ms after calibration: p50 {np.median(ms):.2f} ms, "
        f"p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms per chunk"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-cohort", action="store_true")
    ap.add_argument("--only", choices=("cohort", "realistic", "hard", "movella", "broad", "speed"))
    add_detector_options(ap)
    args = ap.parse_args()
    use_detector_options(args)
    if args.only in (None, "cohort") and not args.skip_cohort:
        cohort_section(args.patients, args.seed, None)
    if args.only in (None, "realistic") and not args.skip_cohort:
        cohort_section(args.patients, args.seed, None, realistic=True)
    if args.only in (None, "hard"):
        hard_cases_section(args.seed)
    if args.only in (None, "movella"):
        movella_section()
    if args.only in (None, "broad"):
        broad_section()
    if args.only in (None, "speed"):
        speed_section()


if __name__ == "__main__":
    main()

"""The report's charts, drawn from :class:`hipback.processing.pipeline.SessionResults` (inline SVG via
:mod:`.svg`).

Angles are converted from rad to degrees here (the report is an edge). Signs follow docs/biomechanics.md: hip
flexion positive / extension negative, anterior pelvic tilt positive, lumbar flexion positive; peak hip
extension is shown as a positive number. All angles are relative to the standing calibration.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from hipback.ingest.report.svg import COLOURS, OKABE_ITO, Chart
from hipback.ingest.report.wording import REFERENCE_ELDERLY_DEG, REFERENCE_YOUNG_DEG, Baseline
from hipback.processing.holds import HoldDetector

if TYPE_CHECKING:
    from hipback.processing.holds import Hold
    from hipback.processing.pipeline import SessionResults


ACTIVITY_COLOURS = {
    "walking": OKABE_ITO["sky_blue"],
    "kneeling": OKABE_ITO["orange"],
    "sitting": OKABE_ITO["yellow"],
    "lying": OKABE_ITO["reddish_purple"],
}


def _time_axis(duration_s: float) -> tuple[float, str]:
    """Scale factor and axis title: minutes for sessions longer than 5 minutes."""
    return (
        (1 / 60.0, "Time since the session started (minutes)")
        if duration_s > 300
        else (1.0, "Time since the session started (seconds)")
    )


def _range(
    values: list[np.ndarray],
    pad: float = 0.08,
    lo_pct: float = 0.5,
    hi_pct: float = 99.5,
    include: tuple[float, ...] = (),
) -> tuple[float, float]:
    finite = [v[np.isfinite(v)] for v in values]
    finite = [v for v in finite if len(v)]
    if not finite:
        lo, hi = -10.0, 10.0
    else:
        allv = np.concatenate(finite)
        lo, hi = float(np.percentile(allv, lo_pct)), float(np.percentile(allv, hi_pct))
    for v in include:
        lo, hi = min(lo, v), max(hi, v)
    span = max(hi - lo, 5.0)
    return lo - pad * span, hi + pad * span


def angles_chart(results: SessionResults) -> str | None:
    """Hip (both sides), pelvic tilt and lumbar angle over the whole session, activities shaded."""
    a = results.angles
    if len(a) < 2:
        return None
    series = [
        ("hip_flexion_left", "Left hip", COLOURS["left"], ""),
        ("hip_flexion_right", "Right hip", COLOURS["right"], "7 3"),
        ("pelvic_tilt", "Pelvic tilt", COLOURS["pelvis"], ""),
        ("lumbar_flexion", "Lower back (lumbar)", COLOURS["lumbar"], "2 2"),
    ]
    present = [(n, lab, c, d) for n, lab, c, d in series if np.isfinite(getattr(a, n)).any()]
    if not present:
        return None
    duration = float(a.t[-1] - a.t[0])
    scale, xtitle = _time_axis(duration)
    t = a.t * scale
    ys = {n: np.degrees(getattr(a, n)) for n, *_ in present}
    yr = _range(list(ys.values()), include=(0.0,))
    ch = Chart(
        (float(t[0]), float(t[-1])),
        yr,
        xtitle,
        "Angle (degrees)",
        title="Hip and pelvis angles during the session",
        height=330,
    )
    for b in results.activity:
        colour = ACTIVITY_COLOURS.get(b.label)
        if colour:
            ch.vband(b.t_start * scale, b.t_end * scale, colour, opacity=0.13)
    for n, lab, c, d in present:
        ch.line(t, ys[n], c, lab, dash=d, width=1.3)
    labels = sorted({b.label for b in results.activity} & set(ACTIVITY_COLOURS))
    for lab in labels:
        ch.add_legend(f"{lab}", ACTIVITY_COLOURS[lab], kind="band", opacity=0.25)
    return ch.render(
        "Line chart of hip flexion (left and right), pelvic tilt and lumbar angle in degrees over "
        "the session; shaded backgrounds mark walking, kneeling, sitting and lying."
    )


def walking_zoom_chart(results: SessionResults, window_s: float = 8.0) -> str | None:
    """A few seconds of steady walking, so the shape of each step is visible, peak extensions marked."""
    strides = list(results.strides or [])
    a = results.angles
    if len(strides) < 3 or len(a) < 2:
        return None
    mid = sorted(strides, key=lambda s: s.t_start)[len(strides) // 2]
    t0 = max(float(a.t[0]), mid.t_start - window_s / 2)
    t1 = min(float(a.t[-1]), t0 + window_s)
    sel = (a.t >= t0) & (a.t <= t1)
    if sel.sum() < 10:
        return None
    t = a.t[sel] - t0
    ys = {
        "hip_flexion_left": np.degrees(a.hip_flexion_left[sel]),
        "hip_flexion_right": np.degrees(a.hip_flexion_right[sel]),
        "pelvic_tilt": np.degrees(a.pelvic_tilt[sel]),
    }
    ch = Chart(
        (0.0, float(t[-1])),
        _range(list(ys.values()), include=(0.0,)),
        f"Time (seconds, from {t0:.0f} s into the session)",
        "Angle (degrees)",
        title="A few steps up close",
        height=290,
    )
    ch.line(t, ys["hip_flexion_left"], COLOURS["left"], "Left hip")
    ch.line(t, ys["hip_flexion_right"], COLOURS["right"], "Right hip", dash="7 3")
    ch.line(t, ys["pelvic_tilt"], COLOURS["pelvis"], "Pelvic tilt")
    for side, shape in (("left", "circle"), ("right", "square")):
        pts = [s for s in strides if s.side == side and t0 <= s.t_peak_extension <= t1]
        ch.markers(
            [s.t_peak_extension - t0 for s in pts],
            [-math.degrees(s.peak_hip_extension_rad) for s in pts],
            COLOURS[side],
            f"Peak stretch back ({side})" if pts else None,
            shape=shape,
            size=5,
        )
    return ch.render(
        "Close-up line chart of a few seconds of walking: hip angles and pelvic tilt in degrees, "
        "with each step's peak hip extension marked."
    )


def strides_chart(results: SessionResults, baseline: Baseline | None = None) -> str | None:
    """Peak hip extension of every stride (deg, positive = extension) against the reference range."""
    strides = list(results.strides or [])
    if not strides:
        return None
    duration = float(results.angles.t[-1] - results.angles.t[0]) if len(results.angles) > 1 else 0.0
    scale, xtitle = _time_axis(duration)
    vals = np.array([math.degrees(s.peak_hip_extension_rad) for s in strides])
    young_lo = REFERENCE_YOUNG_DEG[0] - REFERENCE_YOUNG_DEG[1]
    young_hi = REFERENCE_YOUNG_DEG[0] + REFERENCE_YOUNG_DEG[1]
    lo = min(0.0, float(np.nanmin(vals)) - 2)
    hi = max(young_hi + 2, float(np.nanmax(vals)) + 2)
    ts = [s.t_peak_extension * scale for s in strides]
    ch = Chart(
        (min(ts) - 0.02 * (max(ts) - min(ts) + 1e-9), max(ts) + 0.02 * (max(ts) - min(ts) + 1e-9)),
        (lo, hi),
        xtitle,
        "Peak hip extension (degrees)",
        title="How far each hip stretched back, step by step",
        height=310,
    )
    ch.hband(young_lo, young_hi, COLOURS["reference"], "Young adults 16\u201324\u00b0", opacity=0.22)
    ch.hline(REFERENCE_ELDERLY_DEG[0], OKABE_ITO["black"], "Older adults ~14\u00b0", dash="2 4", width=1.2)
    for side, shape in (("left", "circle"), ("right", "square")):
        pts = [s for s in strides if s.side == side]
        ch.markers(
            [s.t_peak_extension * scale for s in pts],
            [math.degrees(s.peak_hip_extension_rad) for s in pts],
            COLOURS[side],
            f"{side.capitalize()} strides" if pts else None,
            shape=shape,
            size=4,
        )
        base = baseline.median(side) if baseline else None
        if base is not None and pts:
            ch.hline(base, COLOURS[side], f"Your earlier median ({side})", dash="8 4", width=1.6)
    return ch.render(
        "Scatter chart of peak hip extension in degrees for every stride, left and right, with the "
        "reference range of healthy young adults shaded and older adults marked."
    )


def hold_posture(
    results: SessionResults, hold: Hold, detector: HoldDetector | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample view of one hold for drawing: ``(t, correct, arching)``.

    Same rule and thresholds as :mod:`hipback.processing.holds` (reference = mean pelvic tilt / lumbar angle
    over the
    first ``reference_s``; arching = anterior tilt or lumbar extension beyond ``tolerance_rad``; correct = not
    arching and hip extension at least ``target_extension_rad``), without the detector's light smoothing, so
    the drawn share can differ from the hold's ``correct_s`` by a few samples. The numbers in the text and
    tables are the detector's.
    """
    det = detector or HoldDetector()
    a = results.angles
    sel = (a.t >= hold.t_start - 1e-9) & (a.t <= hold.t_end + 1e-9)
    t = a.t[sel]
    if len(t) == 0:
        return t, np.zeros(0, bool), np.zeros(0, bool)
    ext = -getattr(a, f"hip_flexion_{hold.side}")[sel]
    tilt = a.pelvic_tilt[sel]
    lumbar = a.lumbar_flexion[sel]
    n_ref = max(1, int(round(det.reference_s / max(np.median(np.diff(a.t)) if len(a) > 1 else 0.01, 1e-6))))
    with np.errstate(invalid="ignore"):
        ref_tilt = np.nanmean(tilt[:n_ref]) if np.isfinite(tilt[:n_ref]).any() else math.nan
        ref_lumbar = np.nanmean(lumbar[:n_ref]) if np.isfinite(lumbar[:n_ref]).any() else math.nan
        arching = ((tilt - ref_tilt) > det.tolerance_rad) | ((ref_lumbar - lumbar) > det.tolerance_rad)
        correct = ~arching & (ext >= det.target_extension_rad)
    return t, correct, arching


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    if not len(mask):
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def holds_timeline_chart(results: SessionResults, hold_s: float) -> str | None:
    """Stretch holds on the session timeline, one row per side, time in good posture shown inside each bar."""
    holds = list(results.holds or [])
    if not holds:
        return None
    a = results.angles
    duration = float(a.t[-1] - a.t[0]) if len(a) > 1 else max(h.t_end for h in holds)
    scale, xtitle = _time_axis(duration)
    lo = min(h.t_start for h in holds)
    hi = max(h.t_end for h in holds)
    pad = max(5.0, 0.05 * (hi - lo))
    x0, x1 = max(float(a.t[0]) if len(a) else 0.0, lo - pad), hi + pad
    ch = Chart(
        (x0 * scale, x1 * scale),
        (0.0, 2.0),
        xtitle.replace("Time since", "Time since"),
        "Side",
        title="Stretch holds: time in good posture",
        height=230,
        y_tick_labels={0.5: "Right", 1.5: "Left"},
    )
    det = HoldDetector()
    dt = float(np.median(np.diff(a.t))) if len(a) > 1 else 0.01
    for h in holds:
        row = 1.0 if h.side == "left" else 0.0
        y0, y1 = row + 0.18, row + 0.82
        tip = f"{h.side} hold {h.rep}: {h.duration_s:.0f} s, {h.correct_s:.0f} s in good posture" + (
            ", back arched" if h.arching else ""
        )
        ch.bar(h.t_start * scale, h.t_end * scale, y0, y1, "#d9d9d9", stroke="#666", title=tip)
        t, correct, arching = hold_posture(results, h, det)
        for s0, s1 in _runs(correct):
            ch.bar(t[s0] * scale, (t[s1 - 1] + dt) * scale, y0, y1, COLOURS["correct"], title=tip)
        for s0, s1 in _runs(arching):
            ch.bar(t[s0] * scale, (t[s1 - 1] + dt) * scale, y0, y1, COLOURS["other"], hatch=True, title=tip)
        ch.text(
            (h.t_start + h.t_end) / 2 * scale,
            y1 + 0.1,
            f"{h.correct_s:.0f} s good (target {hold_s:.0f})",
            size=12,
            weight="bold",
        )
    ch.add_legend("Good posture", COLOURS["correct"])
    ch.add_legend("Back arching", COLOURS["other"], kind="hatch")
    ch.add_legend("Holding, not counted", "#d9d9d9")
    return ch.render(
        "Timeline of the stretch holds for the left and right side: green where the posture was "
        "right, hatched orange where the back arched, grey for the rest of the hold."
    )


def holds_target_chart(results: SessionResults, per_side: int, hold_s: float) -> str | None:
    """Per prescribed rep and side: seconds in good posture against the target (bar chart)."""
    holds = list(results.holds or [])
    if not holds:  # the summary says so in words; an all-empty chart would add nothing
        return None
    sides = ("left", "right")
    n_slots = max(per_side, max((sum(1 for h in holds if h.side == s) for s in sides), default=0))
    if n_slots == 0:
        return None
    top = max([hold_s * 1.25] + [h.correct_s * 1.1 for h in holds])
    n_groups = 2 * n_slots
    ch = Chart(
        (0.0, n_groups + 1.0),
        (0.0, top),
        "Stretch repetition (left side, then right side)",
        "Time in good posture (seconds)",
        title="Each stretch against your target",
        height=270,
        x_ticks=[],
    )
    for si, side in enumerate(sides):
        hs = sorted((h for h in holds if h.side == side), key=lambda h: h.rep)
        for i in range(n_slots):
            x = 1 + si * (n_slots + 1) + i - (0.5 if si else 0.0)
            if i < len(hs):
                h = hs[i]
                colour = COLOURS[side]
                ch.bar(
                    x - 0.32,
                    x + 0.32,
                    0.0,
                    h.correct_s,
                    colour,
                    title=f"{side} hold {i + 1}: {h.correct_s:.0f} s in good posture",
                )
                ch.text(x, h.correct_s + top * 0.03, f"{h.correct_s:.0f} s", size=12)
            else:
                ch.bar(x - 0.32, x + 0.32, 0.0, top * 0.01, "#bbbbbb", title=f"{side} hold {i + 1}: not done")
                ch.text(x, top * 0.05, "not done", size=11, colour="#555")
            ch.text(x, -top * 0.085, f"{side[0].upper()}{i + 1}", size=12)
    ch.hline(hold_s, COLOURS["target"], f"Target {hold_s:.0f} s", dash="6 4", width=1.6)
    ch.add_legend("Left", COLOURS["left"])
    ch.add_legend("Right", COLOURS["right"])
    return ch.render(
        "Bar chart of the seconds spent in good posture in each stretch repetition, left (L1...) and "
        "right (R1...), against the target time shown as a dashed line."
    )


def exercise_chart(
    title: str, rows: list[dict[str, Any]], *, angle: str, target_deg: float | None
) -> str | None:
    """The primary angle at the peak of every rep or hold of one exercise (bars, in the order done; left,
    right or both legs by colour; reps or holds that did not count hatched), against the catalogue's target.

    ``rows``: the exercise's ``rep``/``hold`` rows (:class:`hipback.ingest.programme.ExerciseRows`, degrees);
    ``angle``: the primary angle in words; ``target_deg``: the target in the same reference, or None.
    """
    rows = [r for r in rows if r.get("primary_peak_deg") is not None]
    if not rows:
        return None
    peaks = [float(r["primary_peak_deg"]) for r in rows]
    lo, hi = min([0.0, *peaks]), max([0.0, *peaks, *([target_deg] if target_deg is not None else [])])
    span = max(hi - lo, 5.0)
    ch = Chart(
        (0.0, len(rows) + 1.0),
        (lo - 0.12 * span if lo < 0 else 0.0, hi + 0.15 * span),
        "Rep or hold, in the order done",
        "At the peak (degrees)",
        title=f"{title}: {angle}",
        height=250,
        x_ticks=[],
    )
    colours = {"left": COLOURS["left"], "right": COLOURS["right"], "both": COLOURS["pelvis"]}
    for i, (r, v) in enumerate(zip(rows, peaks, strict=True), start=1):
        side = str(r.get("work_side") or "both")
        ok = bool(r.get("counted"))
        word = "hold" if r.get("kind") == "hold" else "rep"
        tip = f"{side} {word} {r.get('rep')}: {v:.0f} degrees, {'counted' if ok else 'not counted'}"
        if r.get("cue"):
            tip += f" ({r['cue']})"
        ch.bar(i - 0.32, i + 0.32, 0.0, v, colours.get(side, COLOURS["other"]), title=tip)
        if not ok:
            ch.bar(i - 0.32, i + 0.32, 0.0, v, COLOURS["other"], hatch=True, title=tip)
        ch.text(i, v + (0.04 * span if v >= 0 else -0.08 * span), f"{v:.0f}\u00b0", size=11)
    if target_deg is not None:
        ch.hline(target_deg, COLOURS["target"], f"Target {target_deg:.0f}\u00b0", dash="6 4", width=1.6)
    for side in ("left", "right", "both"):
        if any((r.get("work_side") or "both") == side for r in rows):
            ch.add_legend("Both legs" if side == "both" else side.capitalize(), colours[side])
    if any(not r.get("counted") for r in rows):
        ch.add_legend("Did not count (form or target)", COLOURS["other"], opacity=0.5)
    return ch.render(
        f"Bar chart of the {angle} at the peak of each rep or hold of {title}, in the order done, against "
        "the target shown as a dashed line; hatched bars did not count."
    )

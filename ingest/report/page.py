"""The self-contained report page: :func:`build_report` turns session results into one HTML document.

The page opens from disk and works offline: CSS is inline, charts are inline SVG (:mod:`.charts`), there
are no scripts, fonts, images or links to anything outside the page. The patient part comes first (plain
words, :mod:`.wording`), then the charts, data quality, and a section for the clinician with the numbers.
"""

from __future__ import annotations

import datetime as _dt
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

from hipback.ingest.programme import exercise_rows as rows_of_exercises
from hipback.ingest.report import charts
from hipback.ingest.report.quality import DataQuality, assess_quality
from hipback.ingest.report.svg import COLOURS
from hipback.ingest.report.wording import (
    CALIBRATION_NOTE,
    MONITORING_NOTE,
    REFERENCE_NOTE,
    Baseline,
    ExerciseHistory,
    angle_words,
    asymmetry_sentence,
    compensation_sentence,
    exercise_sentence,
    hip_sentence,
    history_sentence,
    holds_sentence,
    not_checked_sentence,
)
from hipback.processing.holds import Prescription
from hipback.processing.types import Recording

if TYPE_CHECKING:
    from hipback.ingest.session.stats import SensorStats
    from hipback.processing.pipeline import SessionResults


SIDES = ("left", "right")


@dataclass
class SessionInfo:
    """What identifies the session on the page (pseudonymous patient id only)."""

    session_id: str = ""
    patient_id: str = ""
    start_utc: float | None = None
    source: str = ""


CSS = """
:root { --fg:#1d1d1d; --muted:#555; --line:#d0d0d0; --accent:#0072B2; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: #fafafa; margin: 0; line-height: 1.5; }
main { max-width: 940px; margin: 0 auto; padding: 24px 20px 48px; background: #fff; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 34px 0 10px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 1.05rem; margin: 20px 0 6px; }
.meta { color: var(--muted); margin: 0 0 12px; }
.summary { font-size: 1.08rem; }
.summary li { margin: 6px 0; }
.note { color: var(--muted); font-size: 0.95rem; }
.callout { border-left: 5px solid var(--accent); background: #f1f7fb; padding: 10px 14px; margin: 14px 0; }
.warn { border-left-color: #D55E00; background: #fdf3ec; }
figure { margin: 18px 0; }
figcaption { color: var(--muted); font-size: 0.95rem; margin-top: 2px; }
svg.chart { max-width: 100%; height: auto; font-family: inherit; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; font-size: 0.86rem; }
.scroll { overflow-x: auto; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px; vertical-align: -0.1em; }
details { margin: 10px 0; }
footer { color: var(--muted); font-size: 0.85rem; margin-top: 30px; }
@media print { body { background: #fff; } main { max-width: none; } }
"""


def _f(v: Any, digits: int = 1, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "\u2013"
    return f"{v:.{digits}f}{unit}"


#: the summary's angle ranges, as the clinician's table names them (the summary's field: ``<name>_range_deg``)
RANGE_LABELS = {
    "hip_flexion_left": "left hip flexion (+) / extension (\u2212)",
    "hip_flexion_right": "right hip flexion (+) / extension (\u2212)",
    "pelvic_tilt": "pelvic tilt (anterior +)",
    "lumbar_flexion": "lumbar flexion (+) / extension (\u2212)",
}


def duration_text(seconds: float) -> str:
    """A session's length as people say it: seconds under 90 s, minutes (one decimal under 10) under two
    hours, then hours and minutes."""
    if seconds < 89.5:
        n = round(seconds)
        return f"{n} second{'' if n == 1 else 's'}"
    minutes = seconds / 60.0
    if minutes < 9.95:
        return f"{minutes:.1f} minutes"
    if minutes < 119.5:
        return f"{minutes:.0f} minutes"
    h, m = divmod(round(minutes), 60)
    return f"{h} h {m} min"


def _deg(rad: float) -> float:
    return math.degrees(rad) if rad is not None and math.isfinite(rad) else math.nan


def _table(header: list[str], rows: list[list[Any]], num_cols: set[int] | None = None) -> str:
    num_cols = num_cols or set()
    out = [
        '<div class="scroll"><table><thead><tr>'
        + "".join(f"<th>{escape(h)}</th>" for h in header)
        + "</tr></thead><tbody>"
    ]
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            cls = ' class="num"' if i in num_cols else ""
            cells.append(f"<td{cls}>{escape(str(c))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _figure(svg: str | None, caption: str) -> str:
    if not svg:
        return ""
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _when(start_utc: float | None) -> str:
    if start_utc is None or not math.isfinite(start_utc):
        return ""
    return _dt.datetime.fromtimestamp(start_utc, tz=_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _stats(values: list[float]) -> tuple[float, float, float]:
    """median, 25th and 75th percentile (NaN when empty)."""
    v = sorted(x for x in values if math.isfinite(x))
    if not v:
        return math.nan, math.nan, math.nan
    if len(v) == 1:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return statistics.median(v), q[0], q[2]


@dataclass
class ExerciseGroup:
    """One exercise on one side in a session: its rows and prescription (see :func:`exercise_groups`)."""

    exercise: str
    side: str  # left, right or both
    title: str
    kind: str  # "hold" (a hold exercise) or "rep" (reps, possibly with a final hold)
    angle: str  # the primary angle in words
    target_deg: float | None  # the primary's target (catalogue), in the primary's reference
    reference: str = "start"  # the primary's reference: "start" (of the rep or hold) or "neutral"
    prescribed: int = 0  # reps or holds prescribed over the session's sets (0: unguided)
    target_s: float | None = None  # prescribed seconds per hold
    not_measurable: bool = False
    items: list[dict[str, Any]] = field(default_factory=list)  # rep/hold rows in the order done

    @property
    def counted(self) -> int:
        return sum(1 for r in self.items if r.get("counted"))

    @property
    def correct_s(self) -> float:
        return float(sum(float(r.get("correct_s") or 0.0) for r in self.items))

    @property
    def cues(self) -> list[tuple[str, int]]:
        """Cues of the reps or holds that did not count, with how often, in the order first given."""
        out: dict[str, int] = {}
        for r in self.items:
            if not r.get("counted") and r.get("cue"):
                out[r["cue"]] = out.get(r["cue"], 0) + 1
        return list(out.items())

    @property
    def not_checked(self) -> list[str]:
        names: list[str] = []
        for r in self.items:
            for n in str(r.get("rules_not_checked") or "").split(","):
                if n and n not in names:
                    names.append(n)
        return names


def exercise_groups(rows: list[dict[str, Any]]) -> list[ExerciseGroup]:
    """Exercise rows of a session (:class:`hipback.ingest.programme.ExerciseRows`: what
    ``store_rows(results, ...)["exercises"]`` holds) per exercise and side, in the order first done or
    announced; a clinic's own exercise missing from the shipped catalogue is shown under its name."""
    from hipback.processing.exercises import load_catalogue

    cat = load_catalogue()
    groups: dict[tuple[str, str], ExerciseGroup] = {}
    for r in rows:
        key = (str(r.get("exercise")), str(r.get("work_side") or "both"))
        g = groups.get(key)
        if g is None:
            ex = cat.exercises.get(key[0])
            g = groups[key] = ExerciseGroup(
                exercise=key[0],
                side=key[1],
                title=ex.title if ex else key[0].replace("_", " ").capitalize(),
                kind="hold" if (ex.kind if ex else r.get("kind")) == "hold" else "rep",
                angle=angle_words(ex.primary.angle) if ex else "primary angle",
                target_deg=math.degrees(ex.primary.target) if ex else None,
                reference=ex.primary.reference if ex else "start",
            )
        if r.get("kind") == "set":
            if r.get("status") == "not_measurable":
                g.not_measurable = True
            else:
                g.prescribed += int(r.get("prescribed") or 0)
                if r.get("target_s") is not None:
                    g.target_s = float(r["target_s"])
        elif r.get("kind") in ("rep", "hold"):
            g.items.append(r)
            if g.target_s is None and r.get("target_s") is not None:
                g.target_s = float(r["target_s"])
    for g in groups.values():
        g.not_measurable = g.not_measurable and not g.items and not g.prescribed
    return list(groups.values())


#: Earlier sessions shown per exercise and side in the report's exercise history.
HISTORY_SESSIONS = 5


def exercise_figures(group: ExerciseGroup) -> dict[str, Any]:
    """What the exercise history compares per exercise and side in one session: ``kind``, reps or holds
    ``done`` and ``counted``, ``prescribed`` (0: unguided), ``peak_median_deg`` (median primary angle at the
    peak over the reps or holds done, degrees in the primary's reference; None without any) and, for holds,
    ``hold_median_s`` (median seconds held)."""
    peaks = [float(r["primary_peak_deg"]) for r in group.items
             if isinstance(r.get("primary_peak_deg"), int | float) and math.isfinite(r["primary_peak_deg"])]
    holds = [float(r["hold_s"]) for r in group.items
             if r.get("kind") == "hold" and isinstance(r.get("hold_s"), int | float)]
    return {
        "kind": group.kind,
        "done": len(group.items),
        "counted": group.counted,
        "prescribed": group.prescribed,
        "peak_median_deg": statistics.median(peaks) if peaks else None,
        "hold_median_s": statistics.median(holds) if holds else None,
    }


def exercise_history(
    groups: list[ExerciseGroup], history: ExerciseHistory | None, n: int = HISTORY_SESSIONS
) -> dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Per (exercise, side) of ``groups``: the figures (:func:`exercise_figures`) of up to ``n`` earlier
    sessions of ``history`` that did it, most recent first, each with its session (``session_id``,
    ``start_utc``)."""
    out: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {
        (g.exercise, g.side): [] for g in groups
    }
    for sess in (history.sessions if history else []):
        for g in exercise_groups(list(sess.get("rows") or [])):
            earlier = out.get((g.exercise, g.side))
            if earlier is not None and len(earlier) < n and g.items:
                earlier.append((sess, exercise_figures(g)))
    return out


def _history_table(groups: list[ExerciseGroup], hist: dict[tuple[str, str], list]) -> str:
    lines = []
    for g in groups:
        earlier = hist.get((g.exercise, g.side)) or []
        if not earlier or not g.items:
            continue
        for label, f in [("this session", exercise_figures(g))] + [(_when(s.get("start_utc")), f)
                                                                   for s, f in earlier]:
            lines.append([
                g.title, g.side, label, f["done"], f["counted"], f["prescribed"] or "\u2013",
                _f(f["peak_median_deg"]),
                _f(f["hold_median_s"], 0) if f["hold_median_s"] is not None else "\u2013",
            ])
    if not lines:
        return ""
    return "<h3>Against your earlier sessions</h3>" + _table(
        ["exercise", "side", "session", "done", "counted", "plan", "primary angle at peak, median (\u00b0)",
         "held, median (s)"],
        lines,
        {3, 4, 5, 6, 7},
    )


def exercise_section(rows: list[dict[str, Any]], history: ExerciseHistory | None = None) -> str:
    """The report's exercise section from the session's exercise rows (empty when there are none): per
    exercise and side, done against the plan, time in good form and what to change (plain words), how it
    compares with the patient's earlier sessions (``history``: their stored exercise rows), then the
    primary angle of every rep or hold."""
    groups = exercise_groups(rows)
    if not groups:
        return ""
    hist = exercise_history(groups, history)
    out = ['<section id="exercises"><h2>Your exercises</h2><ul class="summary">']
    out += [f"<li>{escape(exercise_sentence(g))}</li>" for g in groups]
    for g in groups:
        earlier = hist.get((g.exercise, g.side)) or []
        if earlier and g.items:
            sess, then = earlier[0]
            when = _when(sess.get("start_utc"))[:10] or "earlier"
            sentence = history_sentence(g.title, g.side, exercise_figures(g), then, when)
            out.append(f"<li>{escape(sentence)}</li>")
    out.append("</ul>")
    out.append(_history_table(groups, hist))
    notes = []
    for g in groups:
        n = not_checked_sentence(g.not_checked)
        if n and n not in notes:
            notes.append(n)
    out += [f'<p class="note">{escape(n)}</p>' for n in notes]
    by_exercise: dict[str, list[ExerciseGroup]] = {}
    for g in groups:
        by_exercise.setdefault(g.exercise, []).append(g)
    for gs in by_exercise.values():
        items = sorted((r for g in gs for r in g.items), key=lambda r: float(r.get("t_s") or 0.0))
        g0 = gs[0]
        out.append(
            _figure(
                charts.exercise_chart(g0.title, items, angle=g0.angle, target_deg=g0.target_deg),
                f"{g0.title}: the {g0.angle} at the peak of each rep or hold, in degrees"
                + (" from where the movement started" if g0.reference == "start"
                   else " relative to your standing calibration")
                + ". Bars reaching the dashed line met the target; hatched bars did not count.",
            )
        )
    out.append("</section>")
    return "\n".join(out)


def _exercise_table(rows: list[dict[str, Any]], start_utc: float | None) -> str:
    """The clinician's table: one line per rep or hold (start in seconds from ``start_utc``, the UTC of
    session time 0; in UTC when it is None)."""
    t0 = start_utc if start_utc is not None and math.isfinite(start_utc) else None
    lines = []
    for g in exercise_groups(rows):
        for r in g.items:
            t = float(r.get("t_s") or math.nan)
            lines.append(
                [
                    g.title,
                    g.side,
                    r.get("set_no") or "\u2013",
                    f"{r.get('kind')} {r.get('rep')}",
                    _f(t - t0, 1) if t0 is not None else _when(t),
                    _f(r.get("hold_s") if r.get("kind") == "hold" else r.get("duration_s"), 1),
                    _f(r.get("primary_peak_deg")),
                    _f(r.get("range_deg")),
                    _f(r.get("correct_s"), 1),
                    "yes" if r.get("counted") else "no",
                    ", ".join(angle_words(n) for n in str(r.get("rules_broken") or "").split(",") if n)
                    or "\u2013",
                    r.get("cue") or "\u2013",
                ]
            )
    if not lines:
        return ""
    return "<h3>Exercises, per rep and hold</h3>" + _table(
        [
            "exercise",
            "side",
            "set",
            "rep / hold",
            "start (s)" if t0 is not None else "start (UTC)",
            "duration or hold (s)",
            "primary angle at peak (\u00b0)",
            "range (\u00b0)",
            "correct form (s)",
            "counted",
            "rules broken",
            "cue given",
        ],
        lines,
        {4, 5, 6, 7, 8},
    )


def _resolve_prescription(
    results: SessionResults, prescription: Prescription | Mapping[str, Any] | tuple[int, float] | None
) -> tuple[int, float]:
    if isinstance(prescription, Prescription):
        return prescription.holds_per_side, float(prescription.hold_s)
    if isinstance(prescription, Mapping):
        return int(prescription.get("holds_per_side", 3)), float(prescription.get("hold_s", 30.0))
    if isinstance(prescription, tuple | list) and len(prescription) == 2:
        return int(prescription[0]), float(prescription[1])
    h = (results.summary or {}).get("holds", {})
    return int(h.get("prescribed_per_side", 3)), float(h.get("prescribed_hold_s", 30.0))


def build_report(
    results: SessionResults,
    recording: Recording | None = None,
    *,
    baseline: Baseline | None = None,
    prescription: Prescription | Mapping[str, Any] | tuple[int, float] | None = None,
    quality: DataQuality | None = None,
    session: SessionInfo | None = None,
    sensor_stats: Mapping[str, SensorStats] | None = None,
    exercise_rows: list[dict[str, Any]] | None = None,
    exercise_history: ExerciseHistory | None = None,
    planned: bool = True,
) -> str:
    """The report page for one session as an HTML string.

    ``results``: :class:`hipback.processing.pipeline.SessionResults`; ``recording``: the raw recording (for
    sample
    counts; optional); ``baseline``: the patient's earlier sessions (:class:`Baseline`); ``prescription``:
    holds per side and hold seconds (default: what the results were processed with); ``quality``: computed
    from the recording and results when not given (``sensor_stats``: live link statistics per placement);
    ``exercise_rows``: the session's stored ``exercises`` rows
    (:class:`hipback.ingest.programme.ExerciseRows`, UTC times), default: made from
    ``results.exercise_events`` with ``session.start_utc``; ``exercise_history``: the patient's earlier
    sessions' exercise rows (:class:`ExerciseHistory`), compared per exercise and side; ``planned``: the
    holds were prescribed by the patient's plan (False: ``hipback process`` of files, where the hold target is
    the pipeline's default and no plan is spoken of, nor are holds that were not done).
    """
    session = session or SessionInfo()
    ex_start = session.start_utc
    if ex_start is None or not math.isfinite(ex_start):
        ex_start = 0.0  # the clinician's exercise table then counts from session time 0
    ex_rows = exercise_rows
    if ex_rows is None:
        ex_rows = rows_of_exercises(results.exercise_events, ex_start)
    per_side, hold_s = _resolve_prescription(results, prescription)
    if quality is None:
        quality = assess_quality(recording, results, sensor_stats)
    s = results.summary or {}
    worn = set(results.placements)
    parts: list[str] = []

    # -- header ----------------------------------------------------------------------------------------
    title = "Your session report"
    meta_bits = [
        b
        for b in (
            _when(session.start_utc),
            f"{duration_text(float(s['duration_s']))} recorded" if s.get("duration_s") else "",
            f"patient {session.patient_id}" if session.patient_id else "",
            f"session {session.session_id}" if session.session_id else "",
        )
        if b
    ]
    meta_line = escape(" \u00b7 ".join(meta_bits))
    parts.append(f'<header><h1>{title}</h1><p class="meta">{meta_line}</p></header>')

    # -- patient summary ---------------------------------------------------------------------------------
    items: list[str] = []
    n_strides = {side: int(s.get(f"n_strides_{side}", 0) or 0) for side in SIDES}
    peak = {side: s.get(f"peak_hip_extension_{side}_deg") for side in SIDES}
    walked = any(n_strides.values())
    if walked:
        for side in SIDES:
            if f"thigh_{side}" in worn:
                items.append(hip_sentence(side, peak[side], n_strides[side], baseline))
        asym = asymmetry_sentence(peak["left"], peak["right"])
        if asym:
            items.append(asym)
        for side in SIDES:
            c = compensation_sentence(side, s.get(f"compensation_index_{side}"))
            if c:
                items.append(c)
    else:
        items.append(
            "No steady walking was recorded in this session, so hip extension while walking is not shown."
        )
    holds = list(results.holds or [])
    programme_only = not holds and bool(ex_rows)
    if (holds or (per_side and planned)) and not programme_only:  # a programme has its own section
        for side in SIDES:
            side_holds = [h for h in holds if h.side == side]
            if (f"thigh_{side}" in worn and planned) or side_holds:
                items.append(holds_sentence(side, side_holds, per_side if planned else None, hold_s))
    parts.append(
        '<section id="summary"><h2>Summary for you</h2><ul class="summary">'
        + "".join(f"<li>{escape(i)}</li>" for i in items)
        + "</ul>"
    )
    parts.append(f'<p class="callout">{escape(CALIBRATION_NOTE)} {escape(MONITORING_NOTE)}</p>')
    parts.append(f'<p class="note">{escape(REFERENCE_NOTE)}</p>')
    qline = _quality_sentence(quality)
    if qline:
        cls = (
            "callout warn"
            if quality.worst_loss_pct > 2
            or quality.total_gaps > 3
            or ((quality.min_calibration_quality or 1.0) < 0.5)
            else "note"
        )
        parts.append(f'<p class="{cls}">{escape(qline)}</p>')
    parts.append("</section>")

    # -- exercises --------------------------------------------------------------------------------------
    parts.append(exercise_section(ex_rows, exercise_history))

    # -- charts -----------------------------------------------------------------------------------------
    parts.append('<section id="charts"><h2>Pictures of your session</h2>')
    parts.append(
        _figure(
            charts.angles_chart(results),
            "Your hip and pelvis angles, relative to your standing calibration. Going up means bending "
            "forward "
            "(hip) or tipping the pelvis forward; going down means stretching the hip back. Shaded "
            "backgrounds "
            "show what you were doing.",
        )
    )
    parts.append(
        _figure(
            charts.walking_zoom_chart(results),
            "A few seconds of walking. Each dip of a hip line is that leg trailing behind you; the marks "
            "show how far "
            "it stretched back.",
        )
    )
    parts.append(
        _figure(
            charts.strides_chart(results, baseline),
            "Every mark is one stride. Higher marks mean the hip stretched further back. The shaded band is "
            "the range "
            "of healthy young adults; the dotted line is the average of healthy older adults (Kerrigan "
            "2001).",
        )
    )
    parts.append(
        _figure(
            charts.holds_timeline_chart(results, hold_s),
            "Each bar is one stretch hold. Green: the stretch counted (hip stretched back, back not "
            "arching). "
            "Orange hatching: the back was arching, so the timer paused.",
        )
    )
    parts.append(
        _figure(
            charts.holds_target_chart(results, per_side if planned else 0, hold_s),
            f"Seconds in good posture for each stretch; your plan is {per_side} holds of {hold_s:.0f} "
            "seconds per side." if planned else "Seconds in good posture for each stretch, against a target "
            f"of {hold_s:.0f} seconds per hold.",
        )
    )
    parts.append("</section>")

    # -- data quality -----------------------------------------------------------------------------------
    parts.append('<section id="quality"><h2>Data quality</h2>')
    rows = []
    for p, q in quality.sensors.items():
        rows.append(
            [
                p,
                " ".join(x for x in (q.device or q.kind, q.sensor_id) if x),
                _f(q.rate_hz, 0, " Hz"),
                "\u2013" if q.samples is None else q.samples,
                q.lost,
                _f(q.loss_pct, 2, " %"),
                q.gaps,
                _f(q.gap_s, 1, " s"),
                _f(q.calibration_quality, 2),
                "\u2013"
                if q.acc_offset_m_s2 is None or q.acc_offset_from_s is None
                else f"{q.acc_offset_m_s2:.2f} m/s\u00b2 from {q.acc_offset_from_s:.0f} s",
                "\u2013" if q.disconnects is None else q.disconnects,
                "\u2013" if q.battery_pct is None else f"{q.battery_pct:.0f} %",
            ]
        )
    parts.append(
        _table(
            [
                "sensor",
                "device",
                "rate",
                "samples",
                "samples lost",
                "loss",
                "breaks in the data",
                "time in breaks",
                "calibration quality (0\u20131)",
                "accelerometer offset corrected",
                "disconnects",
                "battery",
            ],
            rows,
            {2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
        )
    )
    notes = [
        f"{p}: {'; '.join(q.calibration_notes)}" for p, q in quality.sensors.items() if q.calibration_notes
    ]
    if notes or quality.warnings:
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes + quality.warnings) + "</ul>")
    parts.append(
        '<p class="note">Breaks are never filled in: angles are left empty where a sensor sent no data. '
        "Calibration quality 1 means a clean standing period at the start. Sensors whose orientation hipback "
        "computes itself get their accelerometer offset estimated from still postures in different "
        "directions and corrected from then on (\u2013: not needed or not enough postures).</p></section>"
    )

    # -- clinician section ------------------------------------------------------------------------------
    parts.append('<section id="clinician"><h2>For your clinician: the numbers</h2>')
    parts.append(_clinician_tables(results, baseline, per_side, hold_s, session, planned))
    parts.append(_exercise_table(ex_rows, ex_start))
    parts.append("</section>")
    parts.append(
        f"<footer>Made by hipback from the sensor data. {escape(CALIBRATION_NOTE)} "
        f"{escape(MONITORING_NOTE)} Colours: Okabe\u2013Ito palette (colour-blind safe); left "
        f'<span class="swatch" style="background:{COLOURS["left"]}"></span>, right '
        f'<span class="swatch" style="background:{COLOURS["right"]}"></span>.</footer>'
    )

    body = "\n".join(p for p in parts if p)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>hipback session "
        f"report{escape(' ' + session.session_id if session.session_id else '')}</title>"
        f"<style>{CSS}</style></head><body><main>\n{body}\n</main></body></html>\n"
    )


def _quality_sentence(q: DataQuality) -> str:
    if not q.sensors:
        return ""
    loss = q.worst_loss_pct
    gap_s = sum(s.gap_s for s in q.sensors.values())
    bits = []
    if loss <= 0.5 and q.total_gaps == 0:
        bits.append("The sensors recorded without interruptions.")
    else:
        if loss > 0.5:
            bits.append(f"Some data were lost on the way (up to {loss:.1f} % of one sensor's samples).")
        if q.total_gaps:
            bits.append(
                f"The data had {q.total_gaps} short {'break' if q.total_gaps == 1 else 'breaks'} "
                f"({gap_s:.1f} s in total); those moments are left out, not guessed."
            )
    mq = q.min_calibration_quality
    if mq is not None and mq < 0.5:
        bits.append("The standing calibration was not clean, so the angles are less certain than usual.")
    elif q.calibration_state and q.calibration_state != "calibrated":
        bits.append("No clean standing calibration was found, so some angles could not be measured.")
    return " ".join(bits)


def _clinician_tables(
    results: SessionResults, baseline: Baseline | None, per_side: int, hold_s: float, session: SessionInfo,
    planned: bool = True,
) -> str:
    s = results.summary or {}
    out: list[str] = []
    strides = list(results.strides or [])
    rows = []
    for side in SIDES:
        ss = [x for x in strides if x.side == side]
        if not ss:
            continue
        ext = _stats([_deg(x.peak_hip_extension_rad) for x in ss])
        tilt = _stats([_deg(x.pelvic_tilt_at_peak_extension_rad) for x in ss])
        exc = _stats([_deg(x.pelvic_tilt_excursion_rad) for x in ss])
        comp = _stats([x.lumbar_compensation_index for x in ss])
        cad = _stats([x.cadence_spm for x in ss])
        lum = _stats([_deg(x.lumbar_excursion_rad) for x in ss])
        base = baseline.median(side) if baseline else None
        rows.append(
            [
                side,
                len(ss),
                f"{_f(ext[0])} ({_f(ext[1])}\u2013{_f(ext[2])})",
                "\u2013" if base is None else f"{base:.1f} (n={baseline.count(side) if baseline else 0})",
                f"{_f(tilt[0])} ({_f(tilt[1])}\u2013{_f(tilt[2])})",
                f"{_f(exc[0])}",
                f"{_f(comp[0], 2)} ({_f(comp[1], 2)}\u2013{_f(comp[2], 2)})",
                _f(lum[0]),
                _f(cad[0], 0),
            ]
        )
    out.append("<h3>Gait, per stride (median and interquartile range)</h3>")
    if rows:
        out.append(
            _table(
                [
                    "side",
                    "strides",
                    "peak hip extension (\u00b0)",
                    "baseline median (\u00b0)",
                    "pelvic tilt at peak extension (\u00b0, anterior +)",
                    "pelvic tilt excursion (\u00b0)",
                    "compensation index (\u0394 tilt / \u0394 thigh extension)",
                    "lumbar excursion (\u00b0)",
                    "cadence (steps/min)",
                ],
                rows,
                {1, 2, 3, 4, 5, 6, 7, 8},
            )
        )
    else:
        out.append("<p>No strides detected.</p>")
    asym = s.get("peak_hip_extension_asymmetry_deg")
    out.append(
        f"<p>Peak hip extension asymmetry (left \u2212 right, medians): {_f(asym)} \u00b0. Reference "
        "(Kerrigan 2001): young 20.4 \u00b1 4.0 \u00b0, healthy elderly 14.3 \u00b1 4.4 \u00b0, elderly "
        "fallers 11.1 \u00b1 4.8 \u00b0. Compensation index: share of the thigh's extension from vertical "
        "over "
        "terminal stance that came from anterior pelvic tilt (0 = all hip, 1 = all pelvis).</p>"
    )

    holds = list(results.holds or [])
    if planned:
        out.append(f"<h3>Stretch holds (prescription: {per_side} \u00d7 {hold_s:.0f} s per side)</h3>")
    else:
        out.append(f"<h3>Stretch holds (no prescription given; target {hold_s:.0f} s in correct posture per "
                   "hold)</h3>")
    if holds:
        hrows = [
            [
                h.side,
                h.rep,
                _f(h.t_start, 1),
                _f(h.duration_s, 1),
                _f(h.correct_s, 1),
                _f(h.arching_s, 1),
                "yes" if h.arching else "no",
                _f(_deg(h.peak_hip_extension_rad)),
                _f(_deg(h.mean_hip_extension_rad)),
                _f(_deg(h.pelvic_tilt_drift_rad)),
                _f(_deg(h.lumbar_extension_drift_rad)),
            ]
            for h in holds
        ]
        out.append(
            _table(
                [
                    "side",
                    "rep",
                    "start (s)",
                    "duration (s)",
                    "correct posture (s)",
                    "arching (s)",
                    "arching flag",
                    "peak hip ext. (\u00b0)",
                    "mean hip ext. (\u00b0)",
                    "max anterior tilt drift (\u00b0)",
                    "max lumbar ext. drift (\u00b0)",
                ],
                hrows,
                {1, 2, 3, 4, 5, 7, 8, 9, 10},
            )
        )
    else:
        out.append("<p>No stretch holds detected.</p>")
    if planned or holds:  # (no plan and no holds: nothing to count against)
        crow = []
        for side in SIDES:
            hs = [h for h in holds if h.side == side]
            crow.append(
                [
                    side,
                    f"{len(hs)} / {per_side}" if planned else f"{len(hs)} / \u2013",
                    sum(1 for h in hs if h.correct_s >= hold_s),
                    _f(sum(h.correct_s for h in hs), 0, " s"),
                    _f(per_side * hold_s, 0, " s") if planned else "\u2013",
                    sum(1 for h in hs if h.arching),
                ]
            )
        out.append(
            _table(
                [
                    "side",
                    "holds done / prescribed",
                    "holds with target time in correct posture",
                    "total correct time",
                    "prescribed time",
                    "holds with arching",
                ],
                crow,
                {2, 3, 4, 5},
            )
        )

    act = s.get("activity_s") or {}
    if act:
        out.append("<h3>Time per activity</h3>")
        out.append(_table(["activity", "time (s)"], [[k, _f(v, 0)] for k, v in act.items()], {1}))
    ranges = [(label, s.get(f"{n}_range_deg")) for n, label in RANGE_LABELS.items()]
    ranges = [(label, r) for label, r in ranges if r]
    if ranges:
        out.append("<h3>Angle ranges over the session (2nd\u201398th percentile, \u00b0)</h3>")
        out.append(_table(["angle", "low", "high"], [[n, _f(r[0]), _f(r[1])] for n, r in ranges], {1, 2}))
    if baseline and baseline.sessions:
        out.append("<h3>Earlier sessions (baseline)</h3>")
        out.append(
            _table(
                ["session", "date", "peak hip ext. left (\u00b0)", "peak hip ext. right (\u00b0)"],
                [
                    [
                        b.get("session_id", ""),
                        _when(b.get("start_utc")),
                        _f(b.get("left_deg")),
                        _f(b.get("right_deg")),
                    ]
                    for b in baseline.sessions
                ],
                {2, 3},
            )
        )
    msgs = list(results.messages)
    if msgs:
        out.append(
            f"<details><summary>Processing log ({len(msgs)} messages)</summary><ul>"
            + "".join(f"<li>{escape(m)}</li>" for m in msgs[:300])
            + "</ul></details>"
        )
    out.append(
        f'<p class="note">Angles in degrees relative to the standing-neutral calibration (ISB conventions: '
        f"hip flexion +, anterior pelvic tilt +, lumbar flexion +); peak hip extension shown positive. "
        f"Calibration state: {escape(results.calibration_state)}. "
        f"{escape(session.source)}</p>"
    )
    return "\n".join(out)

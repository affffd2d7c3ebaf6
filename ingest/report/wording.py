"""Plain-language sentences for the patient part of the report, and the reference values they cite.

Reference values (docs/biomechanics.md): peak hip extension while walking at a comfortable speed was
20.4 +- 4.0 deg in young adults and 14.3 +- 4.4 deg in healthy elderly people (Kerrigan et al. 2001). A
change smaller than about 5 deg is within what wearable sensors can tell apart (MDC90 5-15 deg, Laird 2016),
so the text calls such a change "about the same". Everything is worded as a monitoring measure, never as a
diagnosis (docs/biomechanics.md), and angles are said to be relative to the standing calibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hipback.ingest.report.page import ExerciseGroup
    from hipback.processing.holds import Hold

#: Peak hip extension in walking, Kerrigan et al. 2001 (deg): mean and SD.
REFERENCE_YOUNG_DEG = (20.4, 4.0)
REFERENCE_ELDERLY_DEG = (14.3, 4.4)
#: Smallest change the report calls a change (deg), from the measurement noise floor (MDC90 5-15 deg).
MEANINGFUL_CHANGE_DEG = 5.0
REFERENCE_NOTE = (
    "Reference: peak hip extension when walking at a comfortable pace is about 20 degrees in healthy young "
    "adults (20.4 \u00b1 4.0) and about 14 degrees in healthy older adults (14.3 \u00b1 4.4), Kerrigan et "
    "al. 2001."
)
CALIBRATION_NOTE = "All angles are relative to your standing calibration at the start of the session."
MONITORING_NOTE = (
    "These figures are monitoring measures to discuss with your physiotherapist. They are not a diagnosis."
)


@dataclass
class Baseline:
    """The patient's earlier sessions: per-session peak hip extension (deg) and their medians per side."""

    sessions: list[dict[str, Any]] = field(
        default_factory=list
    )  # {session_id, start_utc, left_deg, right_deg}

    def median(self, side: str) -> float | None:
        vals = [s.get(f"{side}_deg") for s in self.sessions]
        vals = sorted(v for v in vals if v is not None and math.isfinite(v))
        if not vals:
            return None
        n = len(vals)
        return vals[n // 2] if n % 2 else 0.5 * (vals[n // 2 - 1] + vals[n // 2])

    def count(self, side: str) -> int:
        return sum(1 for s in self.sessions if s.get(f"{side}_deg") is not None)


@dataclass
class ExerciseHistory:
    """The patient's earlier sessions with stored exercise rows, most recent first: ``{session_id, start_utc
    (UTC, Unix s), rows}`` with ``rows`` as :class:`hipback.ingest.programme.ExerciseRows` makes them."""

    sessions: list[dict[str, Any]] = field(default_factory=list)


def history_sentence(title: str, side: str, now: dict[str, Any], then: dict[str, Any], when: str) -> str:
    """One sentence comparing an exercise on one side with the patient's last session that had it: counted
    reps or holds and the median primary angle at the peak (degrees) then and now (figures of
    :func:`hipback.ingest.report.page.exercise_figures`; ``when``: the earlier session's date)."""
    word = "hold" if now.get("kind") == "hold" else "rep"
    out = (f"{title} ({_side_words(side)}): {_n(now['counted'], word)} counted today, "
           f"{then['counted']} in your session of {when}")
    a, b = now.get("peak_median_deg"), then.get("peak_median_deg")
    if a is not None and b is not None:
        out += f"; at the peak {a:.0f} degrees today, {b:.0f} degrees then"
    return out + "."


def _deg(v: float | None, digits: int = 0) -> str:
    return "n/a" if v is None else f"{v:.{digits}f} degrees"


def hip_sentence(side: str, value: float | None, n_strides: int, baseline: Baseline | None) -> str:
    """One sentence about a side's typical peak hip extension while walking, with baseline and reference."""
    if value is None:
        return f"Your {side} hip: not enough steady walking was recorded to measure it this time."
    out = (
        f"Your {side} hip stretched back (extended) by about {_deg(value)} in a typical step "
        f"(middle value of {n_strides} strides)."
    )
    base = baseline.median(side) if baseline else None
    if base is not None:
        n = baseline.count(side) if baseline else 0
        diff = value - base
        earlier = f"your earlier {'session' if n == 1 else f'{n} sessions'} ({_deg(base)})"
        if abs(diff) < MEANINGFUL_CHANGE_DEG:
            out += f" That is about the same as {earlier}."
        elif diff > 0:
            out += f" That is {diff:.0f} degrees more than {earlier}."
        else:
            out += f" That is {-diff:.0f} degrees less than {earlier}."
    young, elderly = REFERENCE_YOUNG_DEG[0], REFERENCE_ELDERLY_DEG[0]
    if value >= young - REFERENCE_YOUNG_DEG[1]:
        out += " This is in the range of healthy young adults."
    elif value >= elderly - 2.0:
        out += " This is close to what healthy older adults reach."
    else:
        out += " This is less than most healthy adults reach."
    return out


def asymmetry_sentence(left: float | None, right: float | None) -> str | None:
    if left is None or right is None:
        return None
    diff = left - right
    if abs(diff) < MEANINGFUL_CHANGE_DEG:
        return "Both hips stretched back about equally."
    more = "left" if diff > 0 else "right"
    less = "right" if diff > 0 else "left"
    return f"Your {more} hip stretched back {abs(diff):.0f} degrees more than your {less} hip."


def compensation_sentence(side: str, index: float | None) -> str | None:
    """The compensation index (share of the thigh's backward swing made by the pelvis tipping forward)."""
    if index is None or not math.isfinite(index):
        return None
    if index <= 0.05:
        return (
            f"{side.capitalize()} leg: your hip did the work of swinging the thigh back; the pelvis and "
            "lower back hardly helped."
        )
    pct = round(100 * min(index, 1.0))
    frac = _fraction_words(index)
    level = "a little" if index < 0.25 else ("quite a lot" if index < 0.5 else "much")
    return (
        f"{side.capitalize()} leg: {frac} ({pct}%) of the thigh's backward swing came from your pelvis "
        f"tipping forward (your lower back arching) rather than from the hip: the back helped {level}."
    )


def _fraction_words(x: float) -> str:
    for value, words in (
        (0.1, "about a tenth"),
        (0.2, "about a fifth"),
        (0.25, "about a quarter"),
        (1 / 3, "about a third"),
        (0.5, "about half"),
        (2 / 3, "about two thirds"),
        (0.75, "about three quarters"),
        (1.0, "nearly all"),
    ):
        if x <= value * 1.12:
            return words
    return "nearly all"


def holds_sentence(side: str, holds: Sequence[Hold], per_side: int | None, hold_s: float) -> str:
    """Stretch holds of one side against the prescription (reps, time in correct posture, arching);
    ``per_side`` None: no plan prescribed them (the target ``hold_s`` is then the pipeline's default)."""
    n = len(holds)
    good = sum(1 for h in holds if h.correct_s >= hold_s)
    if n == 0:
        plan = f" (your plan: {per_side} holds of {hold_s:.0f} seconds)" if per_side is not None else ""
        return f"{side.capitalize()} side: no stretch holds recorded{plan}."
    times = ", ".join(f"{h.correct_s:.0f} s" for h in holds)
    done = f"{n} of {per_side} holds done" if per_side is not None else f"{n} {'hold' if n == 1 else 'holds'}"
    out = (
        f"{side.capitalize()} side: {done}; {good} reached the {hold_s:.0f}-second target "
        f"in good posture (time in good posture: {times})."
    )
    arch = sum(1 for h in holds if h.arching)
    if arch:
        out += (
            f" In {arch} {'hold' if arch == 1 else 'holds'} your back arched: tuck your pelvis under and "
            "keep "
            "your back flat while you shift forward."
        )
    return out


# --- exercises -------------------------------------------------------------------------------------------

#: Catalogue angle names in plain words (docs/exercises.md lists the angles).
ANGLE_WORDS = {
    "hip_flexion": "hip bending",
    "hip_extension": "hip stretching back",
    "hip_adduction": "thigh moving inwards",
    "hip_abduction": "thigh moving outwards",
    "hip_internal_rotation": "thigh turning in",
    "hip_external_rotation": "thigh turning out",
    "other_hip_flexion": "other hip bending",
    "other_hip_extension": "other hip stretching back",
    "other_hip_abduction": "other thigh moving outwards",
    "other_hip_external_rotation": "other thigh turning out",
    "pelvic_tilt": "pelvis tipping forward",
    "posterior_pelvic_tilt": "pelvis tucking under",
    "pelvis_hike": "pelvis lifting on the working side",
    "pelvis_roll": "pelvis rolling",
    "pelvis_inclination": "pelvis tipping",
    "lumbar_flexion": "lower back rounding",
    "lumbar_extension": "lower back arching",
    "lumbar_rotation": "lower back twisting",
}


def angle_words(name: str) -> str:
    """A catalogue angle name in plain words (the name itself, spaced, when it has none)."""
    return ANGLE_WORDS.get(name, name.replace("_", " "))


def _side_words(side: str) -> str:
    return "both legs" if side == "both" else f"{side} side"


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def exercise_sentence(group: ExerciseGroup) -> str:
    """One sentence for the patient about one exercise on one side (a group of
    :func:`hipback.ingest.report.page.exercise_groups`): done against the plan, time in good form, and what
    to change, in the cue's own words."""
    head = f"{group.title} ({_side_words(group.side)})"
    if group.not_measurable:
        return f"{head}: could not be counted with the sensors you wore, so it is not shown."
    word = "hold" if group.kind == "hold" else "rep"
    done, counted = len(group.items), group.counted
    plan = f" of the {group.prescribed} in your plan" if group.prescribed else ""
    if not done:
        wanted = f" (your plan: {_n(group.prescribed, word)})" if group.prescribed else ""
        return f"{head}: no {word}s were recorded{wanted}."
    out = f"{head}: {_n(done, word)} done, {counted} counted{plan}."
    if group.kind == "hold":
        held = ", ".join(f"{(r.get('hold_s') or 0.0):.0f} s" for r in group.items)
        target = f" (target {group.target_s:.0f} s each)" if group.target_s else ""
        out += f" Held for {held}{target}."
    total = sum(float(r.get("duration_s") or 0.0) for r in group.items)
    if group.kind == "hold":
        total = sum(float(r.get("hold_s") or 0.0) for r in group.items)
    if total > 0:
        out += f" Time in good form: {group.correct_s:.0f} of {total:.0f} seconds."
    for cue, n in group.cues:
        out += f" {_n(n, word).capitalize()} did not count: {cue}."
    short = sum(1 for r in group.items if r.get("too_short") and not r.get("cue"))
    if short:
        out += f" {_n(short, 'hold').capitalize()} ended before the target time."
    return out


def not_checked_sentence(names: list[str]) -> str | None:
    """Which form rules the worn sensors could not check (said, not guessed)."""
    if not names:
        return None
    words = ", ".join(angle_words(n) for n in names)
    return f"Not checked, because it needs a sensor you did not wear: {words}."

"""The exercise package on exact, noise-free inputs: every catalogue field refused with its own message when
wrong (and accepted just inside each limit), the named signals and posture time by their definitions, and the
engine, recognition helpers and streaming blocks on constructed angles and orientations whose results follow
exactly from the definitions in ``processing/exercises/``.

Written for the survivors of ``python bench/mutation.py --group exercises``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from hipback.processing import quaternion as qm
from hipback.processing.angles3d import hip_rotation_quat
from hipback.processing.exercises import catalogue as catmod
from hipback.processing.exercises.catalogue import (
    Catalogue,
    CatalogueError,
    Dose,
    Exercise,
    Posture,
    Primary,
    Rule,
    build_catalogue,
    load_catalogue,
    parse_exercise,
    parse_posture,
    parse_postures,
    shipped_files,
)
from hipback.processing.exercises.engine import ExerciseCounter, RepResult, _bridge, count_batch
from hipback.processing.exercises.engine import count_batch as _count_batch
from hipback.processing.exercises.posture import PostureTime, posture_time
from hipback.processing.exercises.recognition import (
    _class_at,
    _posture_class,
    _rest_starts,
    _up,
    episodes,
    recognise,
)
from hipback.processing.exercises.signals import CIRCULAR, SIGNALS, available, signal, wrap
from hipback.processing.exercises.stream import (
    ExerciseBlock,
    ProgrammeEvent,
    ProgrammeItem,
    ProgrammeRunner,
    SegmentFrame,
    _posture_up,
    _ry,
    _yaw_correction,
    announcement,
    calibration_offsets,
    programme_text,
    recording_frame,
    result_text,
    segment_frame,
    summarise,
)

D = math.pi / 180.0
SRC = "clinic/toe_tap.toml"
POSTURES = parse_postures(
    {
        "standing": {"pelvis_up": [0.0, 1.0, 0.0]},
        "supine_knees_bent": {"pelvis_up": [1.0, 0.0, 0.0], "hip_flexion_deg": 45},
    },
    "postures.toml",
)


def good() -> dict[str, Any]:
    """A complete, valid exercise table (every field given)."""
    return {
        "name": "toe_tap",
        "title": "  Toe tap ",
        "description": " Lift one knee. ",
        "kind": "reps_hold",
        "sides": "each",
        "sensors": ["pelvis", "thigh", "lumbar_upper"],
        "start_posture": "supine_knees_bent",
        "primary": {"angle": "hip_flexion", "reference": "neutral", "target_deg": 30, "cue": " lift higher "},
        "rules": [
            {"angle": "pelvis_roll", "max_deg": 8, "both_directions": True, "cue": "keep flat",
             "reference": "neutral", "requires": ["pelvis"]},
            {"angle": "lumbar_extension", "max_deg": -5.5, "cue": "no arching", "requires": ["lumbar_upper"]},
        ],
        "dose": {"sets": 3, "reps": 10, "holds": 2, "hold_s": 4.5, "final_hold_s": 20, "rest_s": 30},
        "signature": {"hip_flexion": 90, "pelvic_tilt": -10.5},
        "responders": {"flexion": "caution", "extension": "avoid", "reason": "  it bends the back  "},
        "measurement": {"quality": "partial", "note": " arching needs the upper-lumbar sensor "},
    }


def parse(data: dict[str, Any]) -> Exercise:
    return parse_exercise(data, SRC, POSTURES)


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(CatalogueError) as err:
        parse(data)
    return str(err.value)


def edited(path: str, value: Any) -> dict[str, Any]:
    """``good()`` with ``path`` (``"dose.reps"``, ``"rules.0.cue"``) set to ``value`` (``DEL``: removed)."""
    data = good()
    *keys, last = path.split(".")
    obj: Any = data
    for k in keys:
        obj = obj[int(k)] if isinstance(obj, list) else obj[k]
    key = int(last) if isinstance(obj, list) else last
    if value is DEL:
        del obj[key]
    else:
        obj[key] = value
    return data


DEL = object()


# -- catalogue: a complete entry ---------------------------------------------------------------------------
def test_every_field_is_parsed_and_degrees_become_radians() -> None:
    ex = parse(good())
    assert (ex.name, ex.title, ex.kind, ex.sides) == ("toe_tap", "Toe tap", "reps_hold", "each")
    assert ex.sensors == ("pelvis", "thigh", "lumbar_upper") and ex.start_posture == "supine_knees_bent"
    assert ex.primary == Primary("hip_flexion", "neutral", 30 * D, "lift higher")
    assert ex.rules == (
        Rule("pelvis_roll", 8 * D, "neutral", True, "keep flat", ("pelvis",)),
        Rule("lumbar_extension", -5.5 * D, "start", False, "no arching", ("lumbar_upper",)),
    )
    assert ex.dose == Dose(sets=3, reps=10, holds=2, hold_s=4.5, final_hold_s=20.0, rest_s=30.0)
    assert type(ex.dose.final_hold_s) is float and type(ex.dose.rest_s) is float
    assert ex.signature == {"hip_flexion": 90 * D, "pelvic_tilt": -10.5 * D}
    assert ex.responders == {"flexion": "caution", "extension": "avoid"}
    assert ex.responder_reason == "it bends the back"
    assert (ex.quality, ex.note) == ("partial", "arching needs the upper-lumbar sensor")
    assert ex.description == "Lift one knee." and ex.source == SRC
    assert ex.advice("flexion") == "caution" and ex.advice("extension") == "avoid"
    assert ex.advice("neither") == "ok"


def test_optional_fields_take_their_defaults() -> None:
    data = good()
    del data["description"], data["signature"]
    data["kind"] = "reps"
    del data["primary"]["reference"]
    data["rules"] = [{"angle": "pelvis_roll", "max_deg": 8, "cue": "keep flat"}]
    data["dose"] = {"reps": 1}
    data["responders"] = {}
    data["measurement"] = {"quality": "good"}
    ex = parse(data)
    assert ex.primary.reference == "start"
    assert ex.rules == (Rule("pelvis_roll", 8 * D, "start", False, "keep flat", ()),)
    assert ex.dose == Dose(sets=1, reps=1, holds=0, hold_s=0.0, final_hold_s=0.0, rest_s=5.0)
    assert ex.signature == {} and ex.description == ""
    assert ex.responders == {"flexion": "ok", "extension": "ok"} and ex.responder_reason == ""
    assert ex.note == "" and ex.quality == "good"
    del data["rules"]
    assert parse(data).rules == ()
    data["kind"], data["dose"] = "hold", {"holds": 1, "hold_s": 1}
    assert parse(data).dose == Dose(sets=1, reps=0, holds=1, hold_s=1.0, final_hold_s=0.0, rest_s=5.0)


def test_a_kind_hold_entry_and_the_edges_of_every_range_are_accepted() -> None:
    data = good()
    data["kind"] = "hold"
    data["name"] = "a" + "b" * 47  # 48 characters
    data["primary"]["target_deg"] = 1.0
    data["rules"][0]["max_deg"] = -90
    data["rules"][1]["max_deg"] = 170
    data["dose"] = {"sets": 10, "reps": 100, "holds": 20, "hold_s": 600, "final_hold_s": 0, "rest_s": 0}
    data["signature"] = {"hip_flexion": -180, "pelvic_tilt": 180}
    ex = parse(data)
    assert ex.name == "a" + "b" * 47 and ex.primary.target == pytest.approx(1 * D, rel=1e-15)
    assert ex.dose == Dose(10, 100, 20, 600.0, 0.0, 0.0)
    assert [r.max_rad for r in ex.rules] == [-90 * D, 170 * D]
    data["dose"] = {"sets": 1, "reps": 0, "holds": 1, "hold_s": 0.1, "final_hold_s": 600, "rest_s": 600}
    data["primary"]["target_deg"] = 170
    data["name"] = "a1"
    assert parse(data).dose == Dose(1, 0, 1, 0.1, 600.0, 600.0)
    data["name"] = "a_"
    data["kind"] = "reps_hold"
    data["dose"] = {"reps": 1, "final_hold_s": 0.1}
    assert parse(data).dose.final_hold_s == 0.1


# -- catalogue: every wrong value, its own sentence ----------------------------------------------------------
TOP_FIELDS = ("description, dose, kind, measurement, name, primary, responders, rules, sensors, sides, "
              "signature, start_posture, title")
ANGLES = ", ".join(sorted(catmod.SIGNALS))
NAME_RULE = "name must be lower-case letters, digits and '_' (2-48)"
NOTE_RULE = "measurement.note must say what cannot be measured when quality is 'partial'."


@pytest.mark.parametrize(
    "path,value,message",
    [
        ("colour", "red", f"unknown field 'colour'; known: {TOP_FIELDS}."),
        ("name", DEL, "the field name is missing."),
        ("name", 7, f"{NAME_RULE}, not 7."),
        ("name", "t", f"{NAME_RULE}, not 't'."),
        ("name", "a" + "b" * 48, f"{NAME_RULE}, not {'a' + 'b' * 48!r}."),
        ("name", "1ab", f"{NAME_RULE}, not '1ab'."),
        ("name", "Toe", f"{NAME_RULE}, not 'Toe'."),
        ("name", "toe-tap", f"{NAME_RULE}, not 'toe-tap'."),
        ("title", DEL, "the field title is missing."),
        ("title", "", "title must be non-empty text, not ''."),
        ("title", "   ", "title must be non-empty text, not '   '."),
        ("title", 3, "title must be non-empty text, not 3."),
        ("kind", DEL, "the field kind is missing."),
        ("kind", "sometimes", "kind must be one of hold, reps, reps_hold, not 'sometimes'."),
        ("sides", DEL, "the field sides is missing."),
        ("sides", "left", "sides must be one of each, both, not 'left'."),
        ("sensors", DEL, "the field sensors is missing."),
        ("sensors", "pelvis", "sensors must be a non-empty list, not 'pelvis'."),
        ("sensors", [], "sensors must be a non-empty list, not []."),
        ("sensors", ["pelvis", "knee"],
         "sensors must be one of pelvis, thigh, other_thigh, lumbar_upper, not 'knee'."),
        ("sensors", ["thigh"], "sensors must include pelvis (every exercise needs the sacral sensor)."),
        ("start_posture", DEL, "the field start_posture is missing."),
        ("start_posture", "upside_down",
         "start_posture must be one of standing, supine_knees_bent, not 'upside_down'."),
        ("primary", DEL, "the field primary is missing."),
        ("primary", "hip", "[primary] must be a table."),
        ("primary.side", 1, "unknown field primary.'side'; known: angle, cue, reference, target_deg."),
        ("primary.angle", DEL, "the field primary.angle is missing."),
        ("primary.angle", "knee", f"primary.angle must be a known angle ({ANGLES}), not 'knee'."),
        ("primary.reference", "peak", "primary.reference must be one of start, neutral, not 'peak'."),
        ("primary.target_deg", DEL, "the field primary.target_deg is missing."),
        ("primary.target_deg", 0.99, "primary.target_deg must be between 1 and 170, not 0.99."),
        ("primary.target_deg", 170.01, "primary.target_deg must be between 1 and 170, not 170.01."),
        ("primary.target_deg", "30", "primary.target_deg must be a number, not '30'."),
        ("primary.target_deg", True, "primary.target_deg must be a number, not True."),
        ("primary.target_deg", math.nan, "primary.target_deg must be a number, not nan."),
        ("primary.target_deg", math.inf, "primary.target_deg must be a number, not inf."),
        ("primary.cue", DEL, "the field primary.cue is missing."),
        ("primary.cue", " ", "primary.cue must be non-empty text, not ' '."),
        ("rules", {"angle": "pelvis_roll"}, "rules must be a list of [[rules]] tables."),
        ("rules.1", "strict", "[rules[1]] must be a table."),
        ("rules.1.colour", "red",
         "unknown field rules[1].'colour'; known: angle, both_directions, cue, max_deg, reference, "
         "requires."),
        ("rules.1.requires", "lumbar_upper", "rules[1].requires must be a list of sensors."),
        ("rules.1.requires", ["pelvis", "spine"],
         "rules[1].requires must be one of pelvis, thigh, other_thigh, lumbar_upper, not 'spine'."),
        ("rules.0.both_directions", 1, "rules[0].both_directions must be true or false, not 1."),
        ("rules.1.angle", DEL, "the field rules[1].angle is missing."),
        ("rules.1.angle", "neck", f"rules[1].angle must be a known angle ({ANGLES}), not 'neck'."),
        ("rules.1.max_deg", DEL, "the field rules[1].max_deg is missing."),
        ("rules.1.max_deg", -90.01, "rules[1].max_deg must be between -90 and 170, not -90.01."),
        ("rules.1.max_deg", 170.5, "rules[1].max_deg must be between -90 and 170, not 170.5."),
        ("rules.1.max_deg", "eight", "rules[1].max_deg must be a number, not 'eight'."),
        ("rules.1.reference", "peak", "rules[1].reference must be one of start, neutral, not 'peak'."),
        ("rules.1.cue", DEL, "the field rules[1].cue is missing."),
        ("rules.1.cue", "", "rules[1].cue must be non-empty text, not ''."),
        ("dose", DEL, "the field dose is missing."),
        ("dose", 10, "[dose] must be a table."),
        ("dose.minutes", 2,
         "unknown field dose.'minutes'; known: final_hold_s, hold_s, holds, reps, rest_s, sets."),
        ("dose.sets", 0, "dose.sets must be a whole number from 1 to 10, not 0."),
        ("dose.sets", 11, "dose.sets must be a whole number from 1 to 10, not 11."),
        ("dose.sets", 2.0, "dose.sets must be a whole number from 1 to 10, not 2.0."),
        ("dose.sets", True, "dose.sets must be a whole number from 1 to 10, not True."),
        ("dose.reps", -1, "dose.reps must be a whole number from 0 to 100, not -1."),
        ("dose.reps", 101, "dose.reps must be a whole number from 0 to 100, not 101."),
        ("dose.holds", -1, "dose.holds must be a whole number from 0 to 20, not -1."),
        ("dose.holds", 21, "dose.holds must be a whole number from 0 to 20, not 21."),
        ("dose.hold_s", -0.5, "dose.hold_s must be between 0 and 600, not -0.5."),
        ("dose.hold_s", 600.5, "dose.hold_s must be between 0 and 600, not 600.5."),
        ("dose.final_hold_s", -0.5, "dose.final_hold_s must be between 0 and 600, not -0.5."),
        ("dose.final_hold_s", 601, "dose.final_hold_s must be between 0 and 600, not 601."),
        ("dose.rest_s", -1, "dose.rest_s must be between 0 and 600, not -1."),
        ("dose.rest_s", 600.5, "dose.rest_s must be between 0 and 600, not 600.5."),
        ("dose.reps", 0, "dose.reps must be at least 1 for kind 'reps_hold'."),
        ("dose.final_hold_s", 0, "dose.final_hold_s must be positive for kind 'reps_hold'."),
        ("signature", [1], "[signature] must be a table."),
        ("signature.knee", 3, f"signature key must be a known angle ({ANGLES}), not 'knee'."),
        ("signature.hip_flexion", 180.5, "signature.hip_flexion must be between -180 and 180, not 180.5."),
        ("signature.hip_flexion", -181, "signature.hip_flexion must be between -180 and 180, not -181."),
        ("responders", DEL, "the field responders is missing."),
        ("responders", "ok", "[responders] must be a table."),
        ("responders.neither", "ok",
         "unknown field responders.'neither'; known: extension, flexion, reason."),
        ("responders.flexion", "never", "responders.flexion must be one of ok, caution, avoid, not 'never'."),
        ("responders.extension", "fine",
         "responders.extension must be one of ok, caution, avoid, not 'fine'."),
        ("responders.reason", DEL, "responders.reason is needed when a profile is 'caution' or 'avoid'."),
        ("responders.reason", "  ", "responders.reason is needed when a profile is 'caution' or 'avoid'."),
        ("measurement", DEL, "the field measurement is missing."),
        ("measurement", "good", "[measurement] must be a table."),
        ("measurement.score", 1, "unknown field measurement.'score'; known: note, quality."),
        ("measurement.quality", DEL, "the field measurement.quality is missing."),
        ("measurement.quality", "fair",
         "measurement.quality must be one of good, partial, not_measurable, not 'fair'."),
        ("measurement.note", DEL, NOTE_RULE),
        ("measurement.note", " ", NOTE_RULE),
    ],
)
def test_each_wrong_value_is_refused_with_its_own_sentence(path: str, value: Any, message: str) -> None:
    assert refused(edited(path, value)) == f"{SRC}: {message}"


def test_the_first_unknown_field_in_alphabetical_order_is_named() -> None:
    data = good()
    data["zebra"] = 1
    data["colour"] = 2
    assert refused(data) == f"{SRC}: unknown field 'colour'; known: {TOP_FIELDS}."


@pytest.mark.parametrize(
    "kind,dose,message",
    [
        ("reps", {"reps": 0}, "dose.reps must be at least 1 for kind 'reps'."),
        ("hold", {"holds": 0, "hold_s": 10}, "dose.holds and dose.hold_s must be positive for kind 'hold'."),
        ("hold", {"holds": 1, "hold_s": 0}, "dose.holds and dose.hold_s must be positive for kind 'hold'."),
        ("hold", {"holds": 1}, "dose.holds and dose.hold_s must be positive for kind 'hold'."),
        ("reps_hold", {"reps": 1}, "dose.final_hold_s must be positive for kind 'reps_hold'."),
    ],
)
def test_the_dose_must_fit_the_kind(kind: str, dose: dict[str, Any], message: str) -> None:
    data = good()
    data["kind"], data["dose"] = kind, dose
    assert refused(data) == f"{SRC}: {message}"


@pytest.mark.parametrize(
    "kind,dose", [("reps", {"reps": 1}), ("hold", {"holds": 1, "hold_s": 0.5}),
                  ("reps_hold", {"reps": 1, "final_hold_s": 0.5})]
)
def test_the_smallest_dose_of_each_kind_is_accepted(kind: str, dose: dict[str, Any]) -> None:
    data = good()
    data["kind"], data["dose"] = kind, dose
    assert parse(data).kind == kind


@pytest.mark.parametrize("flexion,extension", [("caution", "ok"), ("ok", "avoid"), ("avoid", "avoid")])
def test_a_caution_or_avoid_on_either_profile_needs_a_reason(flexion: str, extension: str) -> None:
    data = good()
    data["responders"] = {"flexion": flexion, "extension": extension}
    msg = f"{SRC}: responders.reason is needed when a profile is 'caution' or 'avoid'."
    assert refused(data) == msg
    data["responders"]["reason"] = "why"
    assert parse(data).responders == {"flexion": flexion, "extension": extension}


def test_a_note_is_needed_unless_the_quality_is_good() -> None:
    data = good()
    data["measurement"] = {"quality": "not_measurable"}
    assert refused(data) == (
        f"{SRC}: measurement.note must say what cannot be measured when quality is 'not_measurable'."
    )
    data["measurement"]["note"] = "cannot"
    assert parse(data).quality == "not_measurable"
    data["measurement"] = {"quality": "good", "note": " fine "}
    assert parse(data).note == "fine"


def test_a_second_rule_error_names_its_own_index() -> None:
    data = good()
    data["rules"].append({"angle": "pelvis_hike", "max_deg": 5, "cue": "c", "both_directions": "yes"})
    assert refused(data) == f"{SRC}: rules[2].both_directions must be true or false, not 'yes'."


# -- postures -------------------------------------------------------------------------------------------
PSRC = "postures.toml [lying]"


def posture_refused(table: Any) -> str:
    with pytest.raises(CatalogueError) as err:
        parse_posture("lying", table, "postures.toml")
    return str(err.value)


def test_a_posture_is_parsed_with_its_defaults_and_a_normalised_up_direction() -> None:
    p = parse_posture("lying", {"pelvis_up": [0.6, 0.0, 0.9]}, "postures.toml")
    n = math.sqrt(0.6**2 + 0.9**2)
    assert p == Posture("lying", (0.6 / n, 0.0, 0.9 / n), False, 0.0, 0.0, True, "lying")
    p = parse_posture("lying", {"pelvis_up": [0, -1, 0], "side_sign": True, "align": False,
                                "hip_flexion_deg": 150, "other_hip_flexion_deg": -40, "title": "on a bed"},
                      "postures.toml")
    assert p == Posture("lying", (0.0, -1.0, 0.0), True, 150 * D, -40 * D, False, "on a bed")
    p = parse_posture("lying", {"pelvis_up": [1, 0, 0], "hip_flexion_deg": -40}, "postures.toml")
    assert (p.hip_flexion, p.other_hip_flexion) == (-40 * D, -40 * D)  # the other leg: the same by default


@pytest.mark.parametrize("up", [[0.9, 0.0, 0.0], [1.0, 0.458, 0.0], [0.0, -0.9, 0.0],
                                [1.0, 0.458257569495584, 0.0]])  # the last one: exactly 1.1 long
def test_pelvis_up_lengths_from_0_9_to_1_1_are_accepted(up: list[float]) -> None:
    p = parse_posture("lying", {"pelvis_up": up}, "postures.toml")
    assert math.fsum(c * c for c in p.pelvis_up) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize(
    "table,message",
    [
        ("up", "[lying] must be a table."),
        ({"pelvis_up": [0, 1, 0], "tilt": 3},
         f"{PSRC}: unknown field 'tilt'; known: align, hip_flexion_deg, other_hip_flexion_deg, pelvis_up, "
         "side_sign, title."),
        ({}, f"{PSRC}: the field pelvis_up is missing."),
        ({"pelvis_up": "up"}, f"{PSRC}: pelvis_up must be a list of three numbers, not 'up'."),
        ({"pelvis_up": [0, 1]}, f"{PSRC}: pelvis_up must be a list of three numbers, not [0, 1]."),
        ({"pelvis_up": [0, 1, 0, 0]},
         f"{PSRC}: pelvis_up must be a list of three numbers, not [0, 1, 0, 0]."),
        ({"pelvis_up": [0, "1", 0]}, f"{PSRC}: pelvis_up must be a number, not '1'."),
        ({"pelvis_up": [0, 1.01, 0]}, f"{PSRC}: pelvis_up must be between -1 and 1, not 1.01."),
        ({"pelvis_up": [-1.01, 0, 0]}, f"{PSRC}: pelvis_up must be between -1 and 1, not -1.01."),
        ({"pelvis_up": [0.89, 0, 0]}, f"{PSRC}: pelvis_up must be a unit vector, its length is 0.89."),
        ({"pelvis_up": [1.0, 0.46, 0]}, f"{PSRC}: pelvis_up must be a unit vector, its length is 1.10."),
        ({"pelvis_up": [0, 1, 0], "hip_flexion_deg": 150.5},
         f"{PSRC}: hip_flexion_deg must be between -40 and 150, not 150.5."),
        ({"pelvis_up": [0, 1, 0], "hip_flexion_deg": -40.5},
         f"{PSRC}: hip_flexion_deg must be between -40 and 150, not -40.5."),
        ({"pelvis_up": [0, 1, 0], "other_hip_flexion_deg": 151},
         f"{PSRC}: other_hip_flexion_deg must be between -40 and 150, not 151."),
        ({"pelvis_up": [0, 1, 0], "hip_flexion_deg": 160, "other_hip_flexion_deg": 0},
         f"{PSRC}: hip_flexion_deg must be between -40 and 150, not 160."),
        ({"pelvis_up": [0, 1, 0], "side_sign": 1}, f"{PSRC}: side_sign and align must be true or false."),
        ({"pelvis_up": [0, 1, 0], "align": "yes"}, f"{PSRC}: side_sign and align must be true or false."),
    ],
)
def test_each_wrong_posture_value_is_refused(table: Any, message: str) -> None:
    assert posture_refused(table) == (message if message.startswith(PSRC) else f"postures.toml: {message}")


# -- building and loading the catalogue ------------------------------------------------------------------
POSTURES_TOML = '[supine_knees_bent]\npelvis_up = [1.0, 0.0, 0.0]\n[standing]\npelvis_up = [0, 1, 0]\n'
TOE_TAP = """
name = "toe_tap"
title = "Toe tap"
kind = "reps"
sides = "both"
sensors = ["pelvis", "thigh"]
start_posture = "supine_knees_bent"
[primary]
angle = "hip_flexion"
target_deg = 30
cue = "lift the knee higher"
[dose]
reps = 10
[responders]
[measurement]
quality = "good"
"""


def test_build_catalogue_names_entries_by_file_stem_in_any_folder() -> None:
    other = TOE_TAP.replace('"toe_tap"', '"heel_tap"')
    cat = build_catalogue({"heel_tap.toml": other, "a/b/toe_tap.toml": TOE_TAP}, POSTURES_TOML)
    assert list(cat.exercises) == ["toe_tap", "heel_tap"] and cat.problems == []  # in file name order
    assert cat["toe_tap"].source == "a/b/toe_tap.toml" and cat["heel_tap"].source == "heel_tap.toml"
    assert set(cat.postures) == {"supine_knees_bent", "standing"}
    assert "toe_tap" in cat and "knee" not in cat
    assert [e.name for e in cat] == list(cat.exercises)
    with pytest.raises(KeyError) as err:
        cat["knee"]
    assert err.value.args[0] == "no exercise 'knee' in the catalogue; known: heel_tap, toe_tap"


def test_build_catalogue_refuses_a_misnamed_file_a_repeated_name_and_invalid_toml() -> None:
    with pytest.raises(CatalogueError) as err:
        build_catalogue({"clinic/tap.toml": TOE_TAP}, POSTURES_TOML)
    assert str(err.value) == "clinic/tap.toml: name must equal the file name ('tap'), not 'toe_tap'."
    with pytest.raises(CatalogueError) as err:
        build_catalogue({"b/toe_tap.toml": TOE_TAP, "a/toe_tap.toml": TOE_TAP}, POSTURES_TOML)
    assert str(err.value) == "b/toe_tap.toml: the exercise 'toe_tap' is defined twice."
    with pytest.raises(CatalogueError) as err:
        build_catalogue({"x/toe_tap.toml": "name = "}, POSTURES_TOML)
    assert str(err.value).startswith("x/toe_tap.toml: not valid TOML (")
    assert str(err.value).endswith(").")
    with pytest.raises(CatalogueError) as err:
        build_catalogue({}, "[odd\n")
    assert str(err.value).startswith("postures.toml: not valid TOML (")
    with pytest.raises(CatalogueError) as err:
        build_catalogue({}, "[odd]\npelvis_up = [0, 0.5, 0]\n", "clinic/postures.toml")
    msg = "clinic/postures.toml [odd]: pelvis_up must be a unit vector, its length is 0.50."
    assert str(err.value) == msg


def test_measurable_leaves_out_only_the_not_measurable_entries() -> None:
    part = TOE_TAP.replace('quality = "good"', 'quality = "partial"\nnote = "n"')
    nope = TOE_TAP.replace('"toe_tap"', '"heel_tap"').replace('quality = "good"',
                                                               'quality = "not_measurable"\nnote = "n"')
    cat = build_catalogue({"toe_tap.toml": part, "heel_tap.toml": nope}, POSTURES_TOML)
    assert [e.name for e in cat.measurable()] == ["toe_tap"]


def test_the_shipped_catalogue_is_read_once_from_package_data() -> None:
    files, postures = shipped_files()
    assert files and all(k.startswith("catalogue/") and k.endswith(".toml") for k in files)
    assert "catalogue/postures.toml" not in files and "[standing]" in postures
    assert 'name = "clamshell"' in files["catalogue/clamshell.toml"]
    cat = load_catalogue()
    assert isinstance(cat, Catalogue) and load_catalogue() is cat
    assert sorted(cat.exercises) == sorted(k.removeprefix("catalogue/").removesuffix(".toml") for k in files)
    assert cat["clamshell"].source == "catalogue/clamshell.toml"
    assert cat.postures["side_lying"].side_sign and not cat.postures["supine"].side_sign


class _Entry:
    """A package-data file whose bytes are decoded as the caller asks (a non-UTF-8 locale without)."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self._data = name, text.encode("utf-8")

    def read_text(self, encoding: str | None = None) -> str:
        return self._data.decode(encoding or "latin-1")


class _Folder:
    def __init__(self, *entries: _Entry) -> None:
        self.entries = entries

    def __truediv__(self, name: str) -> _Folder:
        assert name == "catalogue"
        return self

    def iterdir(self) -> list[_Entry]:
        return list(self.entries)


def test_shipped_files_reads_only_toml_files_as_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _Folder(_Entry("README.md", "x"), _Entry("toe_tap.toml", "title = \"Zehen heben \u00fc\""),
                     _Entry("postures.toml", "[standing]"), _Entry("notes.txt", "y"))
    monkeypatch.setattr(catmod.resources, "files", lambda package: folder)
    assert shipped_files() == ({"catalogue/toe_tap.toml": 'title = "Zehen heben \u00fc"'}, "[standing]")
    monkeypatch.setattr(catmod.resources, "files", lambda package: _Folder(_Entry("a.toml", "")))
    assert shipped_files() == ({"catalogue/a.toml": ""}, "")  # no postures file: no postures


def test_load_catalogue_builds_the_shipped_files_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def shipped() -> tuple[dict[str, str], str]:
        calls.append(1)
        return {"catalogue/toe_tap.toml": TOE_TAP}, POSTURES_TOML

    monkeypatch.setattr(catmod, "_CACHE", None)
    monkeypatch.setattr(catmod, "shipped_files", shipped)
    cat = load_catalogue()
    assert isinstance(cat, Catalogue) and list(cat.exercises) == ["toe_tap"] and set(cat.postures) == {
        "standing", "supine_knees_bent"}
    assert cat["toe_tap"].source == "catalogue/toe_tap.toml"
    assert load_catalogue() is cat and calls == [1]
    monkeypatch.setattr(catmod, "_CACHE", None)
    monkeypatch.setattr(catmod, "shipped_files", lambda: ({}, "[odd]\npelvis_up = [0, 0.5, 0]\n"))
    with pytest.raises(CatalogueError) as err:
        load_catalogue()
    msg = "catalogue/postures.toml [odd]: pelvis_up must be a unit vector, its length is 0.50."
    assert str(err.value) == msg


# -- placements ------------------------------------------------------------------------------------------
def _with_sensors(sensors: list[str], sides: str = "each") -> Exercise:
    data = good()
    data["sensors"], data["sides"] = sensors, sides
    return parse(data)


def test_placements_per_working_side() -> None:
    ex = _with_sensors(["pelvis", "thigh", "other_thigh", "lumbar_upper"])
    assert ex.placements("left") == ["pelvis", "thigh_left", "thigh_right", "lumbar_upper"]
    assert ex.placements("right") == ["pelvis", "thigh_right", "thigh_left", "lumbar_upper"]
    assert ex.placements(None) == ["pelvis", "thigh_left", "thigh_right", "lumbar_upper"]
    ex = _with_sensors(["pelvis", "other_thigh"])
    assert ex.placements("right") == ["pelvis", "thigh_left"] and ex.placements(None) == ["pelvis"]
    ex = _with_sensors(["thigh", "pelvis", "pelvis"])
    assert ex.placements(None) == ["thigh_left", "thigh_right", "pelvis"]


# -- signals -----------------------------------------------------------------------------------------------

NAN = math.nan


def body(**cols: list[float]) -> dict[str, np.ndarray]:
    """A frame of body angles (``t`` from the length of the first column)."""
    n = len(next(iter(cols.values())))
    return {"t": np.arange(n) * 0.01, **{k: np.array(v, dtype=float) for k, v in cols.items()}}


def same(a: np.ndarray, b: list[float]) -> bool:
    return np.array_equal(np.asarray(a), np.array(b, dtype=float), equal_nan=True)


def test_the_signal_names_and_the_sensors_each_needs() -> None:
    hip, other, lumbar = ("pelvis", "thigh"), ("pelvis", "other_thigh"), ("pelvis", "lumbar_upper")
    assert SIGNALS == {
        "hip_flexion": hip, "hip_extension": hip, "hip_adduction": hip, "hip_abduction": hip,
        "hip_internal_rotation": hip, "hip_external_rotation": hip,
        "other_hip_flexion": other, "other_hip_extension": other, "other_hip_abduction": other,
        "other_hip_external_rotation": other,
        "pelvic_tilt": ("pelvis",), "posterior_pelvic_tilt": ("pelvis",), "pelvis_hike": ("pelvis",),
        "pelvis_roll": ("pelvis",), "pelvis_inclination": ("pelvis",),
        "lumbar_flexion": lumbar, "lumbar_extension": lumbar, "lumbar_rotation": lumbar,
    }
    assert CIRCULAR == {"pelvis_roll"}


HIPS = body(hip_flexion_left=[0.1, NAN, NAN], hip_flexion_right=[0.3, 0.4, NAN],
            hip_adduction_left=[0.01, 0.02, 0.03], hip_adduction_right=[0.05, 0.06, 0.07],
            hip_rotation_left=[0.2, 0.2, 0.2], hip_rotation_right=[-0.4, -0.4, -0.4])


@pytest.mark.parametrize(
    "name,side,expected",
    [
        ("hip_flexion", "left", [0.1, NAN, NAN]),
        ("hip_flexion", "right", [0.3, 0.4, NAN]),
        ("hip_flexion", None, [0.2, 0.4, NAN]),  # both legs: the mean of the worn ones
        ("hip_extension", "left", [-0.1, NAN, NAN]),
        ("hip_extension", None, [-0.2, -0.4, NAN]),
        ("other_hip_flexion", "left", [0.3, 0.4, NAN]),
        ("other_hip_flexion", "right", [0.1, NAN, NAN]),
        ("other_hip_extension", "left", [-0.3, -0.4, NAN]),
        ("hip_adduction", "right", [0.05, 0.06, 0.07]),
        ("hip_abduction", "left", [-0.01, -0.02, -0.03]),
        ("other_hip_abduction", "left", [-0.05, -0.06, -0.07]),
        ("hip_internal_rotation", "left", [0.2, 0.2, 0.2]),
        ("hip_external_rotation", "right", [0.4, 0.4, 0.4]),
        ("other_hip_external_rotation", "right", [-0.2, -0.2, -0.2]),
        ("hip_internal_rotation", None, [-0.1, -0.1, -0.1]),
    ],
)
def test_hip_signals_per_working_side(name: str, side: str | None, expected: list[float]) -> None:
    assert np.allclose(signal(HIPS, name, side), expected, rtol=0, atol=1e-15, equal_nan=True)


def test_trunk_signals_and_their_signs() -> None:
    f = body(pelvic_tilt=[0.1, -0.2], lumbar_flexion=[0.3, NAN], lumbar_rotation=[0.25, -0.5])
    assert same(signal(f, "pelvic_tilt", "left"), [0.1, -0.2])
    assert same(signal(f, "posterior_pelvic_tilt", None), [-0.1, 0.2])
    assert same(signal(f, "lumbar_flexion", "right"), [0.3, NAN])
    assert same(signal(f, "lumbar_extension", "left"), [-0.3, NAN])
    assert same(signal(f, "lumbar_rotation", "right"), [0.25, -0.5])
    assert same(signal(f, "lumbar_rotation", None), [0.25, -0.5])
    assert same(signal(f, "lumbar_rotation", "left"), [-0.25, 0.5])  # towards the working side


def test_missing_angles_are_nan_never_guessed() -> None:
    f = {"t": np.zeros(4)}
    for name in SIGNALS:
        for side in ("left", "right", None):
            v = signal(f, name, side)
            assert v.shape == (4,) and np.isnan(v).all(), (name, side)
    with pytest.raises(KeyError) as err:
        signal(f, "knee_flexion", "left")
    assert err.value.args[0] == "unknown exercise angle 'knee_flexion'"


def test_pelvis_signals_from_the_up_direction() -> None:
    s, c = math.sin(0.3), math.cos(0.3)
    # upright, the right side of the pelvis raised by 0.3 rad: up leans towards -Z in the pelvis frame
    f = body(pelvis_up_x=[0.0, c, 0.0, 0.0], pelvis_up_y=[c, 0.0, 1.0 + 1e-12, -1.0 - 1e-12],
             pelvis_up_z=[-s, -s, 0.0, 0.0])
    assert np.allclose(signal(f, "pelvis_hike", "left")[:2], [0.3, 0.5 * math.pi], atol=1e-15)
    assert np.allclose(signal(f, "pelvis_hike", "right")[:2], [-0.3, -0.5 * math.pi], atol=1e-15)
    assert np.allclose(signal(f, "pelvis_hike", None)[:2], [-0.3, -0.5 * math.pi], atol=1e-15)
    # lying on the back, rolled: up has a -Z part; the working side goes back (posteriorly)
    assert signal(f, "pelvis_roll", "right")[1] == pytest.approx(math.atan2(c, -s), abs=1e-15)
    assert signal(f, "pelvis_roll", "left")[1] == pytest.approx(math.atan2(c, s), abs=1e-15)
    assert signal(f, "pelvis_roll", None)[1] == pytest.approx(math.atan2(c, -s), abs=1e-15)
    incl = signal(f, "pelvis_inclination", "left")
    assert np.allclose(incl, [0.3, 0.5 * math.pi, 0.0, math.pi], atol=1e-12)  # clipped at +-1, not NaN


def test_wrap_is_half_open() -> None:
    assert np.allclose(wrap(np.array([math.pi, -math.pi, 1.5 * math.pi, -2.5 * math.pi, 0.25])),
                       [-math.pi, -math.pi, -0.5 * math.pi, -0.5 * math.pi, 0.25], atol=1e-12)


@pytest.mark.parametrize(
    "name,worn,side,ok",
    [
        ("hip_flexion", {"pelvis", "thigh_left"}, "left", True),
        ("hip_flexion", {"pelvis", "thigh_left"}, "right", False),
        ("hip_flexion", {"thigh_left"}, "left", False),
        ("hip_flexion", {"pelvis", "thigh_right"}, None, True),
        ("hip_flexion", {"pelvis", "thigh_left"}, None, True),
        ("hip_flexion", {"pelvis", "lumbar_upper"}, None, False),
        ("other_hip_flexion", {"pelvis", "thigh_right"}, "left", True),
        ("other_hip_flexion", {"pelvis", "thigh_left"}, "left", False),
        ("other_hip_flexion", {"pelvis", "thigh_left"}, "right", True),
        ("other_hip_flexion", {"pelvis", "thigh_left"}, None, True),
        ("other_hip_flexion", {"pelvis", "thigh_right"}, None, True),
        ("other_hip_flexion", {"pelvis"}, None, False),
        ("pelvic_tilt", {"pelvis"}, "left", True),
        ("pelvic_tilt", {"thigh_left", "thigh_right", "lumbar_upper"}, None, False),
        ("lumbar_flexion", {"pelvis", "lumbar_upper"}, "right", True),
        ("lumbar_flexion", {"pelvis", "thigh_right"}, "right", False),
        ("lumbar_flexion", {"lumbar_upper"}, "right", False),
    ],
)
def test_available_needs_every_sensor_of_the_signal(name: str, worn: set[str], side: str | None,
                                                     ok: bool) -> None:
    assert available(name, worn, side) is ok


# -- posture time -----------------------------------------------------------------------------------------


def angles(t: list[float], **cols: list[float]) -> SimpleNamespace:
    """Angles on times ``t``: hip flexion ``hl``/``hr``, thigh inclination ``il``/``ir``, lumbar ``lum``
    (rad; a column left out is NaN: not worn)."""
    nan = [NAN] * len(t)
    g = {k: np.array(cols.get(k, nan), dtype=float) for k in ("hl", "hr", "il", "ir", "lum")}
    return SimpleNamespace(t=np.array(t, dtype=float), hip_flexion_left=g["hl"], hip_flexion_right=g["hr"],
                           thigh_inclination_left=g["il"], thigh_inclination_right=g["ir"],
                           lumbar_flexion=g["lum"])


def bout(label: str | None, t0: float, t1: float) -> SimpleNamespace:
    if label is None:
        return SimpleNamespace(t_start=t0, t_end=t1)
    return SimpleNamespace(label=label, t_start=t0, t_end=t1)


P = {"bend_rad": 0.5, "thigh_vertical_rad": 0.4, "extension_rad": 0.2}
T5 = [0.0, 0.5, 1.0, 1.5, 3.0]  # the sampling interval is the median step, 0.5 s


def test_sitting_is_the_sum_of_the_sitting_bouts() -> None:
    bouts = [bout("sitting", 1.0, 3.5), bout("standing", 3.5, 9.0), bout("sitting", 10.0, 10.25),
             bout(None, 0.0, 100.0)]
    p = posture_time(angles(T5), bouts)
    assert p.sitting_s == 2.75 and type(p.sitting_s) is float
    assert posture_time(angles(T5)).sitting_s == 0.0


def test_fewer_than_two_samples_measure_nothing() -> None:
    one = angles([0.0], hl=[1.0], hr=[1.0], il=[0.0], ir=[0.0], lum=[-1.0])
    p = posture_time(one, [bout("sitting", 0, 2)])
    assert p == PostureTime(2.0, None, None, 0.0)
    p = posture_time(angles([0.0, 0.25], hl=[1.0, 1.0], il=[0.0, 0.0], lum=[-1.0, 0.0]), **P)
    assert p == PostureTime(0.0, 0.5, 0.25, 0.5)


def test_bent_forward_needs_every_worn_hip_or_the_lower_back_while_upright() -> None:
    a = angles(T5,
               hl=[0.5, 0.5, 0.6, 0.5, 0.0],
               hr=[0.5, 0.49, 0.6, 0.5, 0.0],
               il=[0.4, -0.4, 0.41, -0.41, 0.0],
               ir=[0.0, 0.0, 0.0, 0.0, 0.0],
               lum=[0.0, 0.0, 0.0, 0.0, 0.5])
    p = posture_time(a, **P)
    # sample 0: both hips at the bend, thighs within the vertical; 1: one hip short of it; 2, 3: a thigh
    # beyond the vertical (either way); 4: the lower back bent
    assert p.bent_forward_s == 1.0 and p.measured_s == 2.5
    assert p.lumbar_extension_s == 0.0


def test_the_sampling_interval_is_the_median_step() -> None:
    a = angles([0.0, 0.1, 0.2, 0.6], hl=[1.0] * 4, il=[0.0] * 4)
    p = posture_time(a, **P)
    assert p.bent_forward_s == pytest.approx(0.4, abs=1e-15)
    assert p.measured_s == pytest.approx(0.4, abs=1e-15)


def test_a_thigh_counts_only_with_its_inclination_and_its_hip_angle() -> None:
    # the left thigh has a hip angle but no inclination (and vice versa on the right): neither counts
    a = angles(T5, hl=[1.0] * 5, ir=[0.0] * 5)
    assert posture_time(a, **P) == PostureTime(0.0, None, None, 0.0)
    # the right thigh complete, the left one without inclination: only the right one decides
    a = angles(T5, hl=[0.0] * 5, hr=[1.0, 1.0, 0.0, 1.0, 1.0], ir=[0.0, 0.0, 0.0, NAN, 0.0])
    p = posture_time(a, **P)
    assert (p.bent_forward_s, p.measured_s) == (1.5, 2.0)
    # both thighs complete: a sample with a missing value on one of them counts for nothing
    a = angles(T5, hl=[1.0, 1.0, NAN, 1.0, 1.0], hr=[1.0] * 5, il=[0.0, NAN, 0.0, 0.0, 0.0], ir=[0.0] * 5)
    p = posture_time(a, **P)
    assert (p.bent_forward_s, p.measured_s) == (1.5, 1.5)


def test_lumbar_extension_at_and_beyond_the_limit_in_any_posture() -> None:
    a = angles(T5, lum=[-0.2, -0.19, -0.5, NAN, 0.3])
    p = posture_time(a, **P)
    assert p.lumbar_extension_s == 1.0 and p.bent_forward_s is None and p.measured_s == 0.0
    assert posture_time(angles(T5, lum=[-0.21] * 5)).lumbar_extension_s == 2.5  # default limit: 10 deg


def test_default_thresholds_are_30_30_and_10_degrees() -> None:
    a = angles(T5, hl=[30.01 * D, 29.99 * D, 40 * D, 40 * D, 0.0], il=[0.0, 0.0, 29.99 * D, 30.01 * D, 0.0],
               lum=[0.0, 0.0, 0.0, 0.0, 30.01 * D])
    p = posture_time(a)
    assert p.bent_forward_s == 1.5 and p.measured_s == 2.5


def test_as_row() -> None:
    assert PostureTime(1.0, None, 2.0, 3.0).as_row() == {
        "sitting_s": 1.0, "bent_forward_s": None, "lumbar_extension_s": 2.0, "measured_s": 3.0}


# -- engine -----------------------------------------------------------------------------------------------

FS = 100.0


def lift(kind: str = "reps", reference: str = "start", target: float = 30.0, sides: str = "each",
         rules: list[dict[str, Any]] | None = None, **dose: Any) -> Exercise:
    """A made-up exercise on hip flexion (deg in, rad out)."""
    data = {
        "name": "lift", "title": "Lift", "kind": kind, "sides": sides, "sensors": ["pelvis", "thigh"],
        "start_posture": "standing",
        "primary": {"angle": "hip_flexion", "reference": reference, "target_deg": target, "cue": "higher"},
        "rules": rules or [], "dose": dose or {"reps": 5, "holds": 3, "hold_s": 5, "final_hold_s": 5},
        "responders": {}, "measurement": {"quality": "good"},
    }
    return parse_exercise(data, "lift.toml", POSTURES)


def trace(nodes: list[tuple[int, float]], n: int | None = None) -> np.ndarray:
    """Piecewise-linear samples through ``(index, deg)`` nodes, in rad."""
    xs, ys = zip(*nodes, strict=True)
    return np.interp(np.arange(n or xs[-1] + 1), xs, ys) * D


def hips(p: np.ndarray, side: str = "left", **more: np.ndarray) -> dict[str, np.ndarray]:
    return {"t": np.arange(len(p)) / FS, f"hip_flexion_{side}": p, **more}


REP = [(0, 0.0), (300, 0.0), (400, 40.0), (500, 40.0), (600, 0.0), (1000, 0.0)]


def test_a_clean_rep_without_smoothing_follows_the_definitions() -> None:
    """Rest at 0, up at 0.4 deg/sample to 40 deg, 1 s there, down, rest. The movement starts at 9 deg (30 %
    of the 30 deg target) at sample 323; its onset is the last sample within 1.5 deg (5 % of the target) of
    the minimum before it, 303 (1.2 deg); it ends back at 8 deg (20 % of the 40 deg excursion), sample 580.
    The plateau is the still part above 24 deg (60 %): samples 401-499 (the corners move at 20 deg/s)."""
    c = count_batch(lift(), hips(trace(REP)), "left", smooth_s=0.0)
    (r,) = c.reps_
    assert (r.exercise, r.side, r.kind, r.index) == ("lift", "left", "rep", 1)
    assert (r.t_start, r.t_onset, r.t_peak, r.t_end) == (3.03, 3.03, 4.0, 5.8)
    assert r.primary_peak_rad == pytest.approx(40 * D, rel=1e-12) and r.range_rad == pytest.approx(40 * D)
    assert r.hold_s == pytest.approx(0.99, abs=1e-12)
    assert r.correct_s == pytest.approx(2.78, abs=1e-12) and r.duration_s == pytest.approx(2.77)
    assert r.target_met and r.counted and r.cue is None and not r.too_short and not r.final_hold
    assert r.rules_broken == () and r.rules_not_checked == () and r.rule_excess_rad == {}
    assert c.counted_ == 1 and c.cues_ == []


def test_the_default_smoothing_is_an_11_sample_centred_mean() -> None:
    """Smoothed by +-5 samples, the corners round off: the peak is first reached 5 samples after the corner
    and the plateau is still (below 3 deg/s) from 405 to 495; the onset stays at 303 (1.31 deg, 304: 1.64)."""
    (r,) = count_batch(lift(), hips(trace(REP)), "left").reps_
    assert (r.t_onset, r.t_peak, r.t_end) == (3.03, 4.05, 5.8)
    assert r.hold_s == pytest.approx(0.91, abs=1e-12) and r.counted


@pytest.mark.parametrize("peak,t_end", [(100.0, 6.6), (12.0, 5.5)])
def test_the_movement_ends_a_share_of_its_excursion_above_the_base(peak: float, t_end: float) -> None:
    """Back to 20 % of the excursion (100 deg: at 20 deg, down at 0.5 deg/sample from sample 500: 660), or to
    half of it when that is below a quarter of the target (12 deg: at 6 deg, down at 0.12 deg/sample: 550)."""
    down = 700 if peak > 50 else 600
    p = trace([(0, 0.0), (300, 0.0), (400, peak), (500, peak), (down, 0.0), (900, 0.0)])
    (r,) = count_batch(lift(), hips(p), "left", smooth_s=0.0).reps_
    assert r.t_end == t_end
    assert r.target_met is (peak >= 30.0) and r.counted is (peak >= 30.0)
    assert r.cue == (None if peak >= 30 else "higher")
    assert c_cues(r) == ([] if peak >= 30 else [(t_end, "higher")])


def c_cues(r: RepResult) -> list[tuple[float, str]]:
    return [] if r.cue is None else [(r.t_end, r.cue)]


@pytest.mark.parametrize("rise,moves", [(9.1, True), (8.9, False)])
def test_a_movement_needs_30_percent_of_the_target(rise: float, moves: bool) -> None:
    p = trace([(0, 0.0), (300, 0.0), (400, rise), (500, rise), (600, 0.0), (900, 0.0)])
    c = count_batch(lift(), hips(p), "left", smooth_s=0.0)
    assert len(c.reps_) == int(moves)
    if moves:
        assert not c.reps_[0].target_met and c.cues_ == [(c.reps_[0].t_end, "higher")]


@pytest.mark.parametrize(
    "rest,rise,moves",
    [
        (0.0, 9.1, True),  # 30 % of the way from 0 to the 30 deg target
        (0.0, 8.9, False),
        (20.0, 5.1, True),  # 30 % of the 10 deg left is 3 deg: at least 5 deg
        (20.0, 4.9, False),
    ],
)
def test_a_neutral_primary_needs_a_share_of_the_way_left(rest: float, rise: float, moves: bool) -> None:
    top = rest + rise
    p = trace([(0, rest), (300, rest), (400, top), (500, top), (600, rest), (900, rest)])
    c = count_batch(lift(reference="neutral"), hips(p), "left", smooth_s=0.0)
    assert len(c.reps_) == int(moves)
    if moves:
        assert c.reps_[0].primary_peak_rad == pytest.approx(top * D, rel=1e-12)  # vs the standing neutral
        assert c.reps_[0].range_rad == pytest.approx(rise * D, rel=1e-9)


@pytest.mark.parametrize("steps,moves", [(9.02, True), (8.98, False)])
def test_the_rise_is_measured_from_the_minimum_of_the_last_4_s(steps: float, moves: bool) -> None:
    """A slow drift up: over the 399 steps of a 400-sample window it rises ``steps`` deg."""
    n = 1200
    p = np.arange(n) * steps / 399 * D
    c = count_batch(lift(), hips(np.concatenate([p, np.full(300, p[-1])])), "left", smooth_s=0.0)
    assert (len(c.reps_) > 0) is moves


def test_reference_neutral_reports_the_peak_against_standing() -> None:
    p = trace([(0, 10.0), (300, 10.0), (400, 50.0), (500, 50.0), (600, 10.0), (900, 10.0)])
    (r,) = count_batch(lift(reference="neutral", target=45.0), hips(p), "left", smooth_s=0.0).reps_
    assert r.primary_peak_rad == pytest.approx(50 * D, rel=1e-12) and r.range_rad == pytest.approx(40 * D)
    assert r.target_met and r.counted
    (r,) = count_batch(lift(reference="start", target=45.0), hips(p), "left", smooth_s=0.0).reps_
    assert r.primary_peak_rad == pytest.approx(40 * D, rel=1e-12) and not r.target_met and r.cue == "higher"


def test_sides_and_the_working_leg() -> None:
    p = trace(REP)
    with pytest.raises(ValueError) as err:
        ExerciseCounter(exercise=lift(), side=None)
    assert str(err.value) == "lift is done one side at a time: side must be 'left' or 'right'"
    with pytest.raises(ValueError):
        ExerciseCounter(exercise=lift(), side="both")
    assert count_batch(lift(), hips(p, "right"), "left", smooth_s=0.0).reps_ == []
    (r,) = count_batch(lift(), hips(p, "right"), "right", smooth_s=0.0).reps_
    assert r.side == "right"
    both = lift(sides="both")
    (r,) = count_batch(both, hips(p, "right"), "left", smooth_s=0.0).reps_  # both legs: the side is ignored
    assert r.side is None and r.t_onset == 3.03
    assert count_batch(both, hips(p), None, smooth_s=0.0).reps_[0].t_end == 5.8


def test_without_the_thigh_of_the_working_side_nothing_is_counted() -> None:
    c = count_batch(lift(), hips(trace(REP)), "left", worn=frozenset({"pelvis", "thigh_right"}))
    assert not c.primary_available and c.reps_ == []
    c = count_batch(lift(), hips(trace(REP)), "left", worn=frozenset({"pelvis", "thigh_left"}))
    assert c.primary_available and len(c.reps_) == 1


def test_a_movement_open_at_the_end_is_closed_by_finish() -> None:
    p = trace([(0, 0.0), (300, 0.0), (400, 40.0), (600, 40.0)])
    c = ExerciseCounter(exercise=lift(), side="left", smooth_s=0.0)
    assert c.update(hips(p)) == []
    assert c.current().active and c.current().elapsed_s == pytest.approx((601 - 303) / FS)
    (r,) = c.finish()
    assert r.t_end == 6.0 and r.t_onset == 3.03 and c.reps_ == [r]
    assert c.finish() == []
    assert not c.current().active and c.current().elapsed_s == 0.0
    with pytest.raises(RuntimeError) as err:
        c.update(hips(p))
    assert str(err.value) == "update() after finish()"


def test_chunking_and_a_first_single_sample_change_nothing() -> None:
    frame = hips(trace(REP), pelvic_tilt=np.zeros(1001))
    whole = count_batch(lift(), frame, "left").reps_
    c = ExerciseCounter(exercise=lift(), side="left")
    out: list[RepResult] = []
    for a, b in [(0, 0), (0, 1), (1, 2), (2, 7), (7, 450), (450, 1001)]:
        out += c.update({k: v[a:b] for k, v in frame.items()})
    out += c.finish()
    assert out == whole and len(whole) == 1
    one = ExerciseCounter(exercise=lift(), side="left")
    assert one.update({k: v[:1] for k, v in frame.items()}) == [] and one.finish() == []
    assert one.current().active is False and math.isnan(one.current().primary_rad)


def test_the_sampling_rate_is_taken_from_the_first_two_samples() -> None:
    p = trace([(0, 0.0), (150, 0.0), (200, 40.0), (250, 40.0), (300, 0.0), (500, 0.0)])
    frame = {"t": np.arange(501) / 50.0, "hip_flexion_left": p}
    (r,) = count_batch(lift(), frame, "left").reps_
    # 50 Hz: +-2 samples of smoothing (0.1 s rounds to 5 samples); the smoothed ramp is 0.96 deg one sample
    # after its corner, 1.6 deg (beyond 1.5 deg) two samples after; the peak is reached two samples late and
    # the plateau is still (4 deg/s two samples from the corner, 0 three samples from it) for 45 samples
    assert r.t_onset == 151 / 50.0 and r.t_peak == 202 / 50.0 and r.t_end == 5.8
    assert r.hold_s == pytest.approx(0.9, abs=1e-12)


def held(top: float, length: int, kind: str = "hold", reference: str = "start",
         **params: Any) -> ExerciseCounter:
    """A hold: up at 0.4 deg/sample from sample 300 to ``top`` at 400, ``length`` samples there, down at the
    same speed, 300 samples of rest; the still plateau is samples 401 .. 399 + length."""
    top_end = 400 + length
    p = trace([(0, 0.0), (300, 0.0), (400, top), (top_end, top), (top_end + 100, 0.0), (top_end + 400, 0.0)])
    ex = lift(kind=kind, reference=reference, reps=5, holds=3, hold_s=5, final_hold_s=5)
    return count_batch(ex, hips(p), "left", **{"smooth_s": 0.0, **params})


def test_a_hold_is_its_still_plateau_and_counts_from_dose_minus_one_second() -> None:
    (r,) = held(40.0, 401).reps_  # 400 still samples: 4.00 s, the dose of 5 s minus the 1 s tolerance
    assert (r.kind, r.t_start, r.t_end, r.t_onset, r.t_peak) == ("hold", 4.01, 8.0, 3.03, 4.0)
    assert r.hold_s == 4.0 and r.correct_s == 4.0 and r.target_met and r.counted and not r.too_short
    assert r.cue is None and not r.final_hold
    (r,) = held(40.0, 400).reps_  # 3.99 s: too short
    assert r.hold_s == 3.99 and r.too_short and not r.counted and r.target_met
    assert r.cue == "hold it longer, aim for 5 seconds"
    (r,) = held(40.0, 400, hold_s=4.99).reps_  # the prescription overrides the catalogue dose
    assert r.hold_s == 3.99 and not r.too_short and r.counted and r.cue is None


def test_a_hold_ends_at_half_its_excursion() -> None:
    (r,) = held(40.0, 401).reps_
    c = held(40.0, 401)
    assert c.cues_ == [] and r.t_end == 8.0
    # the movement ends when back to 20 deg: 50 samples into the descent from sample 801
    assert c.current().active is False
    ex = lift(kind="hold", reps=5, holds=3, hold_s=5)
    p = trace([(0, 0.0), (300, 0.0), (400, 40.0), (801, 40.0), (901, 0.0), (1200, 0.0)])
    p[850:] = np.nan  # the sensor drops out exactly when the primary is back at 20 deg
    c2 = count_batch(ex, hips(p), "left", smooth_s=0.0)
    assert [x.t_end for x in c2.reps_] == [8.0]


@pytest.mark.parametrize("length,kept", [(201, True), (200, False)])
def test_a_hold_needs_two_still_seconds(length: int, kept: bool) -> None:
    reps = held(40.0, length).reps_
    assert len(reps) == int(kept)
    if kept:
        assert reps[0].hold_s == 2.0 and reps[0].too_short and reps[0].index == 1


def test_a_hold_short_of_the_target_is_not_correct_time() -> None:
    (r,) = held(28.0, 601).reps_
    assert r.hold_s == 6.0 and r.correct_s == 0.0 and not r.target_met and not r.counted
    assert r.cue == "higher" and not r.too_short
    (r,) = held(30.0, 601).reps_  # exactly at the target counts
    assert r.correct_s == 6.0 and r.target_met and r.counted


def test_a_neutral_hold_compares_the_angle_itself_with_the_target() -> None:
    top_end = 1001
    p = trace([(0, 10.0), (300, 10.0), (400, 35.0), (top_end, 35.0), (top_end + 100, 10.0),
               (top_end + 400, 10.0)])
    ex = lift(kind="hold", reference="neutral", reps=5, holds=3, hold_s=5)
    (r,) = count_batch(ex, hips(p), "left", smooth_s=0.0).reps_
    assert r.primary_peak_rad == pytest.approx(35 * D) and r.target_met and r.correct_s == 6.0 and r.counted
    (r,) = count_batch(lift(kind="hold", reference="start", reps=5, holds=3, hold_s=5), hips(p), "left",
                       smooth_s=0.0).reps_
    assert r.correct_s == 0.0 and not r.target_met  # 25 deg from the start


def test_reps_with_a_final_hold() -> None:
    (r,) = held(40.0, 101, kind="reps_hold").reps_  # 1 s still: a plain rep
    assert (r.kind, r.final_hold, r.t_start, r.t_end) == ("rep", False, 3.03, 5.81)
    assert r.counted and not r.too_short
    (r,) = held(40.0, 202, kind="reps_hold").reps_  # 2.01 s still: the final hold, 5 s prescribed
    assert (r.kind, r.final_hold, r.t_start, r.t_end) == ("rep", True, 4.01, 6.01)
    assert r.hold_s == 2.01 and r.too_short and not r.counted
    assert r.cue == "hold it longer, aim for 5 seconds"
    (r,) = held(40.0, 202, kind="reps_hold", hold_s=3.0).reps_
    assert r.final_hold and not r.too_short and r.counted and r.cue is None


TILT = {"angle": "pelvic_tilt", "max_deg": 10, "cue": "keep the pelvis still"}
ADD = {"angle": "hip_adduction", "max_deg": 5, "cue": "knee out"}
LUMBAR = {"angle": "lumbar_flexion", "max_deg": 20, "reference": "neutral", "both_directions": True,
          "cue": "back straight", "requires": ["lumbar_upper"]}
ROLL = {"angle": "pelvis_roll", "max_deg": 10, "both_directions": True, "cue": "no roll"}


def bump(value: float, start: int, length: int, rest: float = 0.0, n: int = 1001) -> np.ndarray:
    v = np.full(n, rest * D)
    v[start:start + length] = value * D
    return v


@pytest.mark.parametrize("length,broken", [(30, True), (29, False)])
def test_a_rule_is_broken_after_0_3_s_past_its_limit_from_the_start_reference(length: int,
                                                                               broken: bool) -> None:
    """The start reference is the mean of the 20 samples up to the onset (303): sample 284 at -40 deg, the
    others at 0 make it -2 deg (283 at 80 deg is outside); 8.1 deg is 10.1 deg past it."""
    tilt = bump(8.1, 450, length)
    tilt[283], tilt[284] = 80 * D, -40 * D
    c = count_batch(lift(rules=[TILT]), hips(trace(REP), pelvic_tilt=tilt), "left", smooth_s=0.0)
    (r,) = c.reps_
    assert r.rule_excess_rad == {"pelvic_tilt": pytest.approx(10.1 * D, rel=1e-9)}
    assert r.rules_broken == (("pelvic_tilt",) if broken else ())
    assert r.counted is not broken and r.target_met
    assert r.cue == ("keep the pelvis still" if broken else None)
    assert c.cues_ == ([(5.8, "keep the pelvis still")] if broken else [])
    assert r.correct_s == pytest.approx((278 - length) / FS, abs=1e-12)


def test_the_first_rule_broken_gives_the_cue() -> None:
    frame = hips(trace(REP), pelvic_tilt=bump(12.0, 450, 40), hip_adduction_left=bump(6.0, 420, 40))
    (r,) = count_batch(lift(rules=[TILT, ADD]), frame, "left", smooth_s=0.0).reps_
    assert r.rules_broken == ("hip_adduction", "pelvic_tilt") and r.cue == "knee out"
    assert r.correct_s == pytest.approx((278 - 70) / FS, abs=1e-12) and not r.counted
    frame["hip_adduction_left"] = bump(6.0, 460, 40)
    (r,) = count_batch(lift(rules=[TILT, ADD]), frame, "left", smooth_s=0.0).reps_
    assert r.rules_broken == ("pelvic_tilt", "hip_adduction") and r.cue == "keep the pelvis still"
    frame["hip_adduction_left"] = bump(-6.0, 420, 40)  # one direction only: adduction, not abduction
    (r,) = count_batch(lift(rules=[TILT, ADD]), frame, "left", smooth_s=0.0).reps_
    assert r.rules_broken == ("pelvic_tilt",) and r.rule_excess_rad["hip_adduction"] == 0.0


@pytest.mark.parametrize("value,broken", [(-21.0, True), (21.0, True), (-19.9, False)])
def test_a_neutral_rule_in_both_directions(value: float, broken: bool) -> None:
    lum = bump(value, 420, 30, rest=15.0)
    (r,) = count_batch(lift(rules=[LUMBAR]), hips(trace(REP), lumbar_flexion=lum), "left", smooth_s=0.0).reps_
    assert r.rules_broken == (("lumbar_flexion",) if broken else ())
    assert r.rule_excess_rad["lumbar_flexion"] == pytest.approx(max(abs(value), 15.0) * D, rel=1e-12)


def test_a_rule_without_its_sensor_is_not_checked() -> None:
    lum = bump(-40.0, 420, 60)
    frame = hips(trace(REP), lumbar_flexion=lum, pelvic_tilt=np.zeros(1001))
    worn = frozenset({"pelvis", "thigh_left"})
    (r,) = count_batch(lift(rules=[TILT, LUMBAR]), frame, "left", worn=worn, smooth_s=0.0).reps_
    assert r.rules_not_checked == ("lumbar_flexion",) and r.rules_broken == () and r.counted
    assert r.rule_excess_rad == {"pelvic_tilt": pytest.approx(0.0)}
    bare = {k: v for k, v in LUMBAR.items() if k != "requires"}  # not required, but its angle is not seen
    (r,) = count_batch(lift(rules=[bare]), frame, "left", worn=worn, smooth_s=0.0).reps_
    assert r.rules_not_checked == ("lumbar_flexion",) and r.counted
    needs_lumbar = {**ADD, "requires": ["thigh", "lumbar_upper"]}  # the thigh is seen through the angle
    add = hips(trace(REP), hip_adduction_left=bump(9.0, 420, 60))
    (r,) = count_batch(lift(rules=[needs_lumbar]), add, "left", worn=worn, smooth_s=0.0).reps_
    assert r.rules_not_checked == ("hip_adduction",)
    all_worn = worn | {"lumbar_upper"}
    (r,) = count_batch(lift(rules=[needs_lumbar]), add, "left", worn=all_worn, smooth_s=0.0).reps_
    assert r.rules_not_checked == () and r.rules_broken == ("hip_adduction",)
    needs_pelvis = {**ADD, "requires": ["pelvis", "other_thigh"]}
    c = ExerciseCounter(exercise=lift(rules=[needs_pelvis]), side="left", worn=frozenset({"thigh_left"}))
    assert c.rules_not_checked == ("hip_adduction",) and c.rules == []
    c = ExerciseCounter(exercise=lift(rules=[needs_pelvis]), side="left", worn=worn)
    assert c.rules_not_checked == () and len(c.rules) == 1
    (r,) = count_batch(lift(rules=[LUMBAR]), hips(trace(REP)), "left", smooth_s=0.0).reps_
    assert r.rules_broken == () and math.isnan(r.rule_excess_rad["lumbar_flexion"])  # worn, but no data


@pytest.mark.parametrize("value,broken", [(-169.5, True), (-170.5, False), (169.5, True)])
def test_a_circular_rule_wraps_around_half_a_turn(value: float, broken: bool) -> None:
    """The pelvis rolled half a turn at rest (179 and -179 deg in turns): the reference is the circular mean,
    180 deg, and the change is wrapped: -169.5 deg is 10.5 deg from it."""
    roll = np.where(np.arange(1001) % 2 == 0, 179.0, -179.0)
    roll[420:480] = value
    r_rad = roll * D
    frame = hips(trace(REP), pelvis_up_x=np.sin(r_rad), pelvis_up_y=np.zeros(1001),
                 pelvis_up_z=-np.cos(r_rad))
    (r,) = count_batch(lift(rules=[ROLL]), frame, "left", smooth_s=0.0).reps_
    assert r.rules_broken == (("pelvis_roll",) if broken else ())
    assert r.rule_excess_rad["pelvis_roll"] == pytest.approx((180 - abs(value)) * D, abs=1e-9)


def test_the_live_cue_is_the_first_rule_past_its_limit_at_the_newest_sample() -> None:
    frame = hips(trace(REP), pelvic_tilt=bump(12.0, 450, 40), hip_adduction_left=bump(6.0, 420, 10))
    c = ExerciseCounter(exercise=lift(rules=[TILT, ADD]), side="left", smooth_s=0.0)

    def feed(a: int, b: int) -> list[RepResult]:
        return c.update({k: v[a:b] for k, v in frame.items()})

    feed(0, 350)
    live = c.current()
    assert live.active and live.cue is None and live.elapsed_s == pytest.approx(0.47)
    assert live.primary_rad == pytest.approx(19.6 * D, rel=1e-12)
    feed(350, 425)
    assert c.current().cue == "knee out"
    feed(425, 455)
    assert c.current().cue == "knee out"  # the first one stays
    assert feed(455, 1001) != [] and c.current().cue is None and not c.current().active
    c = ExerciseCounter(exercise=lift(rules=[TILT, ADD]), side="left", smooth_s=0.0)
    c.update({k: v[:440] for k, v in frame.items()})
    assert c.current().cue is None  # past its limit earlier, not at the newest sample
    c.update({k: v[440:460] for k, v in frame.items()})
    assert c.current().cue == "keep the pelvis still"


@pytest.mark.parametrize("target,onset,end", [(30.0, 303, 580), (8.0, 301, 580), (40.0, 305, 575)])
def test_the_onset_is_the_last_sample_near_the_minimum(target: float, onset: int, end: int) -> None:
    """Within 5 % of the target of the minimum (1.5, 2 deg), at least 0.5 deg (a 8 deg target). The end:
    back to 20 % of the 40 deg excursion (8 deg), or to a quarter of the target (10 deg for 40 deg)."""
    (r,) = count_batch(lift(target=target), hips(trace(REP)), "left", smooth_s=0.0).reps_
    assert (r.t_onset, r.t_end) == (onset / FS, end / FS)


def rest_then_rep(level: list[tuple[int, float]], rest: float, top: float, start: int) -> np.ndarray:
    """``level`` nodes, then a rep from ``rest`` to ``top`` deg from ``start`` (up 100, still 100, down 100
    samples) and 300 samples of rest."""
    return trace([*level, (start, rest), (start + 100, top), (start + 200, top), (start + 300, rest),
                  (start + 600, rest)])


@pytest.mark.parametrize("rest,counted", [(10.4, True), (10.6, False)])
def test_with_a_start_level_a_rep_may_not_start_from_a_raised_position(rest: float, counted: bool) -> None:
    """The level is the mean of the first 0.3 s (0 deg); a rep may start up to 35 % of the 30 deg target above
    it (10.5 deg). The drift to the raised rest is too slow to be a movement (5.2 deg in 4 s)."""
    p = rest_then_rep([(0, 0.0), (30, 0.0), (830, rest)], rest, rest + 40.0, 1300)
    on = count_batch(lift(), hips(p), "left", smooth_s=0.0, start_level=True)
    assert len(on.reps_) == int(counted)
    if counted:
        assert on.reps_[0].t_onset == pytest.approx(13.03) and on.reps_[0].range_rad == pytest.approx(40 * D)
    off = count_batch(lift(), hips(p), "left", smooth_s=0.0)
    assert len(off.reps_) == 1


@pytest.mark.parametrize("top,moves", [(14.1, True), (13.9, False)])
def test_with_a_start_level_the_rise_counts_from_the_level_when_higher(top: float, moves: bool) -> None:
    """No sensor for 1 s (NaN: no level), then 0.3 s at 5 deg (the level), a slow way down to 0 and a rep
    from there: 9 deg above the level are needed, not above the minimum."""
    p = rest_then_rep([(0, 5.0), (130, 5.0), (530, 0.0)], 0.0, top, 1000)
    p[:100] = np.nan
    on = count_batch(lift(), hips(p), "left", smooth_s=0.0, start_level=True)
    assert len(on.reps_) == int(moves)
    assert len(count_batch(lift(), hips(p), "left", smooth_s=0.0).reps_) == 1


def test_rebase_restarts_the_onset_search_after_the_smoothing_window() -> None:
    """Lying leg at -20 deg, then the angles are re-referenced to 0: that step is not a movement."""
    p = np.concatenate([np.full(400, -20 * D), trace(REP)])
    frame = hips(p)
    fresh = ExerciseCounter(exercise=lift(), side="left")
    assert fresh.rebase() is False  # nothing seen yet
    (r,) = count_batch(lift(), frame, "left").reps_  # without rebase the step starts a movement, never over
    assert (r.t_onset, r.t_end) == (3.94, 14.0)
    c = ExerciseCounter(exercise=lift(), side="left")
    c.update({k: v[:400] for k, v in frame.items()})
    assert c.rebase() is True
    c.update({k: v[400:] for k, v in frame.items()})
    assert c.finish() == []
    (r,) = c.reps_
    assert r.t_onset == 7.03 and r.counted
    c = ExerciseCounter(exercise=lift(), side="left")
    c.update({k: v[:1050] for k, v in frame.items()})
    assert c.current().active and c.rebase() is False


def test_rebase_measures_the_start_level_afresh() -> None:
    """Level -20 deg first; after the rebase the rest is 0 and the level is measured there again (from the
    old level, 0 is too far up to start a rep)."""
    p = np.concatenate([np.full(400, -20 * D), trace(REP)])
    frame = hips(p)
    c = ExerciseCounter(exercise=lift(), side="left", start_level=True)
    c.update({k: v[:400] for k, v in frame.items()})
    c.rebase()
    c.update({k: v[400:] for k, v in frame.items()})
    c.finish()
    assert [r.t_onset for r in c.reps_] == [7.03]
    c = ExerciseCounter(exercise=lift(), side="left", start_level=True)
    c.update({k: v[:400] for k, v in frame.items()})
    c.update({k: v[400:] for k, v in frame.items()})
    c.finish()
    assert [r.t_onset for r in c.reps_] == [3.94]  # the step from the old level


def test_a_long_session_keeps_its_timeline() -> None:
    """Buffers are trimmed after 10,000 samples: times and results stay the same."""
    n0 = 15_000
    p = np.concatenate([np.zeros(n0), trace(REP), np.zeros(n0), trace(REP)])
    tilt = np.zeros(len(p))
    tilt[n0 + 450:n0 + 490] = 12 * D
    c = ExerciseCounter(exercise=lift(rules=[TILT]), side="left", smooth_s=0.0, start_level=True)
    frame = hips(p, pelvic_tilt=tilt)
    out = []
    for a in range(0, len(p), 700):
        out += c.update({k: v[a:a + 700] for k, v in frame.items()})
    out += c.finish()
    assert [r.t_onset for r in out] == [pytest.approx(x) for x in (153.03, 313.04)]
    assert [r.t_end for r in out] == [pytest.approx(x) for x in (155.8, 315.81)]
    assert [r.rules_broken for r in out] == [("pelvic_tilt",), ()]
    assert [r.index for r in out] == [1, 2]


def test_a_long_hold_keeps_its_onset() -> None:
    (r,) = held(40.0, 12_001).reps_
    assert (r.t_onset, r.t_start, r.t_end, r.hold_s) == (3.03, 4.01, 124.0, 120.0)


# -- stream: helpers ----------------------------------------------------------------------------------------
def q_axis(axis: list[float], angle: float | np.ndarray) -> np.ndarray:
    return qm.from_axis_angle(axis, angle)


UPRIGHT = q_axis([1.0, 0.0, 0.0], math.pi / 2)  # segment Y (superior) along world Z


def test_segment_frame_slices_and_concatenates() -> None:
    f = SegmentFrame(np.arange(4.0), {"pelvis": np.tile(qm.IDENTITY, (4, 1)), "thigh_left": np.zeros((4, 4))})
    assert len(f) == 4
    s = f.slice(1, 3)
    assert list(s.t) == [1.0, 2.0] and s.segments["pelvis"].shape == (2, 4)
    assert set(s.segments) == set(f.segments)
    empty = SegmentFrame.concat([])
    assert len(empty) == 0 and empty.segments == {}
    assert SegmentFrame.concat([f.slice(0, 0), f.slice(0, 0)]).segments == {}
    assert SegmentFrame.concat([f.slice(0, 0), f]) is f
    both = SegmentFrame.concat([f.slice(2, 4), f.slice(0, 0), f.slice(0, 2)])
    assert list(both.t) == [2.0, 3.0, 0.0, 1.0] and both.segments["thigh_left"].shape == (4, 4)


class _Cal:
    def __init__(self, turn: float) -> None:
        self.turn = turn

    def segment_quat(self, q: np.ndarray) -> np.ndarray:
        return qm.multiply(q, q_axis([0.0, 0.0, 1.0], self.turn))


def test_segment_frame_applies_each_calibration_and_the_thigh_swap() -> None:
    q = {"pelvis": np.tile(qm.IDENTITY, (3, 1)), "thigh_left": np.tile(q_axis([1, 0, 0], 0.1), (3, 1)),
         "thigh_right": np.tile(q_axis([1, 0, 0], 0.2), (3, 1))}
    cal = {"pelvis": _Cal(0.0), "thigh_left": _Cal(0.3), "thigh_right": _Cal(0.0), "lumbar_upper": _Cal(0.0)}
    f = segment_frame(np.array([10, 11, 12]), q, cal, False, 50.0)
    assert list(f.t) == [0.2, 0.22, 0.24] and set(f.segments) == {"pelvis", "thigh_left", "thigh_right"}
    assert np.allclose(f.segments["thigh_left"], qm.multiply(q["thigh_left"], q_axis([0, 0, 1], 0.3)))
    g = segment_frame(np.array([10, 11, 12]), q, cal, True, 50.0)
    assert np.allclose(g.segments["thigh_left"], qm.multiply(q["thigh_right"], q_axis([0, 0, 1], 0.3)))
    assert np.allclose(g.segments["thigh_right"], q["thigh_left"])
    assert np.array_equal(g.segments["pelvis"], q["pelvis"])
    assert segment_frame(np.array([1]), q, None, False, 100.0).segments == {}


def test_calibration_offsets_are_the_headings_in_the_standing_window() -> None:
    n = 10
    t = np.arange(n) * 0.1
    pelvis = np.tile(UPRIGHT, (n, 1))
    heading = np.where(t < 0.45, 0.3, 0.7)  # turned differently after the window
    thigh = qm.multiply(q_axis([0.0, 0.0, 1.0], heading), pelvis)
    lumbar = np.full((n, 4), np.nan)
    f = SegmentFrame(t, {"pelvis": pelvis, "thigh_left": thigh, "lumbar_upper": lumbar})
    off = calibration_offsets(f, (0.1, 0.4))
    assert off == {"thigh_left": pytest.approx(0.3, abs=1e-12)}  # no finite lumbar sample: left out
    assert calibration_offsets(f, (0.5, 0.9))["thigh_left"] == pytest.approx(0.7, abs=1e-12)
    assert calibration_offsets(f, (0.4, 0.5))["thigh_left"] == pytest.approx(0.5, abs=1e-12)  # both ends in


def test_yaw_correction_turns_the_segment_about_its_long_axis() -> None:
    lying = q_axis([0.0, 0.0, 1.0], 0.2)  # on the back: world up along the segment's Z, turned 0.2 about it
    q = np.tile(lying, (5, 1))
    g = qm.rotate(qm.conjugate(lying), [0.0, 0.0, 1.0])
    target = np.array([0.6, 0.0, 0.8])
    c = _yaw_correction(q, target, 0.5)
    assert c == pytest.approx(math.atan2(g[0], g[2]) - math.atan2(0.6, 0.8), abs=1e-12)
    turned = qm.multiply(lying, _ry(c))
    assert np.allclose(qm.rotate(qm.conjugate(turned), [0.0, 0.0, 1.0]), target, atol=1e-12)
    assert _yaw_correction(np.tile(UPRIGHT, (3, 1)), target, 0.5) is None  # long axis vertical
    assert _yaw_correction(q, np.array([0.0, 1.0, 0.0]), 0.5) is None  # the target's long axis vertical
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of no finite sample
        assert _yaw_correction(np.full((3, 4), np.nan), target, 0.5) is None
    tilt = q_axis([1.0, 0.0, 0.0], math.pi / 2 - math.asin(0.45))  # horizontal part of up 0.45
    assert _yaw_correction(tilt[None, :], target, 0.5) is None
    assert _yaw_correction(tilt[None, :], target, 0.4) is not None
    near = np.array([0.0, math.sqrt(1 - 0.45**2), 0.45])
    assert _yaw_correction(q, near, 0.5) is None and _yaw_correction(q, near, 0.4) is not None


def test_posture_up_mirrors_a_side_lying_posture_for_the_left_side() -> None:
    side = Posture("side", (0.0, 0.0, 1.0), True, 0.0, 0.0, True)
    assert list(_posture_up(side, "left")) == [0.0, 0.0, -1.0]
    assert list(_posture_up(side, "right")) == [0.0, 0.0, 1.0] and list(_posture_up(side, None)) == [0, 0, 1]
    flat = Posture("flat", (0.0, 0.0, 1.0), False, 0.0, 0.0, True)
    assert list(_posture_up(flat, "left")) == [0.0, 0.0, 1.0]


def test_announcement_and_result_texts() -> None:
    hold = lift(kind="hold", holds=3, hold_s=20)
    reps = lift(kind="reps", reps=10)
    final = lift(kind="reps_hold", reps=1, final_hold_s=15)
    assert announcement(hold, ProgrammeItem("lift", "left")) == (
        "Next: Lift, left side, 3 holds of 20 seconds.")
    assert announcement(hold, ProgrammeItem("lift", None, holds=1, hold_s=30.4)) == (
        "Next: Lift, 1 hold of 30 seconds.")
    assert announcement(reps, ProgrammeItem("lift", "right")) == "Next: Lift, right side, 10 reps."
    assert announcement(reps, ProgrammeItem("lift", None, reps=1)) == "Next: Lift, 1 rep."
    assert announcement(final, ProgrammeItem("lift")) == (
        "Next: Lift, 1 rep, hold the last one for 15 seconds.")
    assert announcement(final, ProgrammeItem("lift", reps=4, hold_s=8)) == (
        "Next: Lift, 4 reps, hold the last one for 8 seconds.")
    cat = {"hold": hold, "reps": reps}
    assert programme_text([ProgrammeItem("hold", "left"), ProgrammeItem("reps", None, reps=1)], cat) == (
        "Exercise programme: 1. Lift, left side, 3 holds of 20 seconds; 2. Lift, 1 rep. Each is announced "
        "when it is next.")
    assert programme_text([], cat) == "Exercise programme: no exercises."
    assert programme_text([ProgrammeItem("glute_bridge")]).startswith("Exercise programme: 1. Glute bridge, ")
    r = RepResult("lift", "left", "hold", 1, 0.0, 1.0, 0.5, 0.5, 12.4, 12.0, True, (), (), True, None)
    assert result_text(r, 2, 3) == "Hold 2 of 3 counted, held 12 seconds."
    r.counted = False
    assert result_text(r, 1, 3) == "That hold did not count, held 12 seconds: 1 of 3 so far."
    r.kind = "rep"
    assert result_text(r, 1, 3) == "That rep did not count: 1 of 3 so far."
    r.counted = True
    assert result_text(r, 3, 3) == "Rep 3 of 3 counted."


def test_programme_item_targets_fall_back_to_the_catalogue_dose() -> None:
    hold = lift(kind="hold", reps=9, holds=3, hold_s=20)
    reps = lift(kind="reps", reps=10, holds=4)
    given = ProgrammeItem("lift", holds=5, reps=7)
    assert ProgrammeItem("lift").target(hold) == 3 and given.target(hold) == 5
    assert ProgrammeItem("lift").target(reps) == 10 and given.target(reps) == 7


# -- stream: the exercise block and the programme runner on constructed orientations -----------------------
def standing(flex_left: np.ndarray, heading: float = 0.3, flex_right: float = 0.0, pelvis_tilt: float = 0.0,
             spin_right: float = 0.0) -> SegmentFrame:
    """Pelvis and thighs upright at 100 Hz (the pelvis tilted forward by ``pelvis_tilt``), the left hip flexed
    by ``flex_left`` (rad), the left thigh sensor's heading turned by ``heading``, the right thigh flexed by
    ``flex_right`` and turning about its long axis at ``spin_right`` rad/s."""
    n = len(flex_left)
    pel = np.tile(qm.multiply(UPRIGHT, q_axis([0.0, 0.0, 1.0], pelvis_tilt)), (n, 1))
    z = np.zeros(n)
    left = qm.multiply(pel, hip_rotation_quat(flex_left, z, z, "left"))
    left = qm.multiply(q_axis([0.0, 0.0, 1.0], heading), left)
    right = qm.multiply(pel, hip_rotation_quat(np.full(n, flex_right), z, z, "right"))
    right = qm.multiply(right, q_axis([0.0, 1.0, 0.0], spin_right * np.arange(n) / FS))
    return SegmentFrame(np.arange(n) / FS, {"pelvis": pel, "thigh_left": left, "thigh_right": right})


def block(**params: Any) -> ExerciseBlock:
    return ExerciseBlock(exercise=params.pop("exercise", lift()), side="left", posture=POSTURES["standing"],
                         **params)


def run_block(b: ExerciseBlock, frame: SegmentFrame, step: int | None = None) -> list[RepResult]:
    step = step or len(frame)
    out: list[RepResult] = []
    for a in range(0, len(frame), step):
        out += b.update(frame.slice(a, a + step))
    return out + b.finish()


def test_the_block_aligns_the_heading_when_still_in_the_start_posture_then_counts() -> None:
    """Still from the second sample (the first has no previous one): aligned after 1 s, at 1.01 s; the rep of
    :data:`REP` then counts as on the angles themselves; still again from 6.01 s, it aligns again at 7.01 s.
    """
    b = block()
    assert b.current() is None and b.measurable
    (r,) = run_block(b, standing(trace(REP)))
    assert b.aligned_at_ == 1.01 and b.realigned_ == 1 and b.yaw_ == {}
    assert b.offsets_ == {"thigh_left": pytest.approx(0.3, abs=1e-12), "thigh_right": pytest.approx(0.0)}
    assert (r.t_onset, r.t_peak, r.t_end) == (3.03, 4.05, 5.8)
    assert r.primary_peak_rad == pytest.approx(40 * D, abs=1e-9) and r.counted and b.reps_ == [r]
    assert b.current() is not None and not b.current().active
    assert b.finish() == []
    with pytest.raises(RuntimeError) as err:
        b.update(standing(trace(REP)))
    assert str(err.value) == "update() after finish()"


def test_the_other_sides_start_posture_does_not_align_this_side() -> None:
    """A split posture (working hip 0 deg, the other 12 deg; tolerance 14 deg): still for 3 s in the right
    side's version (right 0 deg, left 12 deg: within the tolerance of the left side's nominal values too),
    then 3 s in the left side's. The left side's block aligns only in its own posture (at 4.01 s, 1 s after
    the change), the right side's in the first (1.01 s)."""
    split = parse_postures(
        {"split": {"pelvis_up": [0.0, 1.0, 0.0], "hip_flexion_deg": 0, "other_hip_flexion_deg": 12}},
        "postures.toml",
    )["split"]
    first = standing(np.full(300, 12 * D), heading=0.0)
    second = standing(np.zeros(300), heading=0.0, flex_right=12 * D)
    frame = SegmentFrame.concat([first, SegmentFrame(second.t + 3.0, second.segments)])
    for side, at in (("left", 4.01), ("right", 1.01)):
        b = ExerciseBlock(exercise=lift(), side=side, posture=split, realign=False)
        run_block(b, frame)
        assert b.aligned_at_ == pytest.approx(at) and b.alignments_ == [b.aligned_at_], side
    same = parse_postures({"split": {"pelvis_up": [0.0, 1.0, 0.0], "hip_flexion_deg": 6}}, "p.toml")["split"]
    b = ExerciseBlock(exercise=lift(), side="right", posture=same, realign=False)
    run_block(b, frame)
    assert b.aligned_at_ == pytest.approx(1.01)  # both legs alike: either side's posture is this one


@pytest.mark.parametrize("step", [1, 37, 250])
def test_the_block_does_not_depend_on_the_chunking(step: int) -> None:
    b = block()
    assert b.update(standing(trace(REP)).slice(0, 0)) == [] and b.current() is None
    out = run_block(b, standing(trace(REP)), step)
    assert [(r.t_onset, r.t_end) for r in out] == [(3.03, 5.8)]
    assert (b.aligned_at_, b.realigned_) == (1.01, 1)


def test_the_still_run_must_last_align_s_and_realign_can_be_off() -> None:
    b = block(align_s=2.0)
    run_block(b, standing(trace(REP)))
    assert b.aligned_at_ == 2.01 and b.realigned_ == 1
    b = block(realign=False)
    (r,) = run_block(b, standing(trace(REP)))
    assert b.aligned_at_ == 1.01 and b.realigned_ == 0 and r.t_onset == 3.03
    b = block()
    assert len(run_block(b, three_reps())) == 3 and b.realigned_ == 3  # still again after each rep


@pytest.mark.parametrize(
    "frame_params,aligned",
    [
        ({"flex_right": 13.9 * D}, True),  # the other hip within 14 deg of the posture's 0
        ({"flex_right": 14.1 * D}, False),
        ({"pelvis_tilt": 34.5 * D}, True),  # the pelvis up direction within 35 deg of the posture's
        ({"spin_right": 0.09}, True),  # still: every segment slower than 0.1 rad/s
        ({"spin_right": 0.11}, False),
    ],
)
def test_the_start_posture_and_stillness_limits(frame_params: dict[str, float], aligned: bool) -> None:
    b = block(max_wait_s=2.5, initial_offsets={"thigh_left": 0.3})
    (r,) = run_block(b, standing(trace(REP), **frame_params))
    assert (b.aligned_at_ is not None) is aligned
    assert b.aligned_at_ == (1.01 if aligned else None)
    assert b.offsets_["thigh_left"] == pytest.approx(0.3, abs=1e-9)
    assert r.t_onset == 3.03 and r.counted


def test_without_the_start_posture_the_block_waits_then_falls_back_to_the_calibration_headings() -> None:
    frame = standing(trace(REP), flex_right=20 * D)  # never in the posture
    b = block(max_wait_s=2.5, initial_offsets={"thigh_left": 0.3})
    (r,) = run_block(b, frame)
    assert b.aligned_at_ is None and b.realigned_ == 0 and b.offsets_ == {"thigh_left": 0.3}
    assert r.primary_peak_rad == pytest.approx(40 * D, abs=1e-9)
    b = block(max_wait_s=2.5)  # no calibration headings: the thigh's 0.3 rad heading distorts the angle
    (r,) = run_block(b, frame)
    assert b.offsets_ == {} and abs(r.primary_peak_rad - 40 * D) > 0.5 * D
    b = block(initial_offsets={"thigh_left": 0.3})  # waits 60 s by default: never gives up here
    assert b.update(frame) == [] and b.offsets_ is None
    (r,) = b.finish()  # the end: the samples kept are counted with the calibration headings
    assert r.t_onset == 3.03 and b.offsets_ == {"thigh_left": 0.3}


def test_the_block_ignores_what_comes_before_the_start_posture() -> None:
    """Lying (pelvis up along X) for 2 s with the hip flexed, then standing: nothing before counts."""
    lying = standing(np.full(200, 60 * D), pelvis_tilt=90 * D)
    up = standing(trace(REP))
    frame = SegmentFrame(np.concatenate([lying.t, up.t + 2.0]),
                         {k: np.concatenate([lying.segments[k], up.segments[k]]) for k in up.segments})
    b = block(max_wait_s=0.5, initial_offsets={"thigh_left": 0.3})
    (r,) = run_block(b, frame)
    assert b.aligned_at_ is None and r.t_onset == pytest.approx(5.03)  # gave up 0.5 s after standing up
    b = block()
    assert run_block(b, lying) == [] and b.offsets_ == {} and b.aligned_at_ is None


def test_a_block_whose_primary_is_not_worn_is_not_measurable() -> None:
    b = block(worn=frozenset({"pelvis", "thigh_right"}))
    assert not b.measurable
    assert block(worn=frozenset({"pelvis", "thigh_left"})).measurable


def arch() -> Exercise:
    data = {**good(), "name": "arch", "title": "Arch", "sensors": ["pelvis", "lumbar_upper"], "kind": "reps",
            "dose": {"reps": 3}, "rules": [], "primary": {"angle": "lumbar_extension", "target_deg": 10,
                                                          "cue": "more"},
            "measurement": {"quality": "partial", "note": "needs the upper-lumbar sensor"}}
    return parse_exercise(data, "arch.toml", POSTURES)


THIGHS = frozenset({"pelvis", "thigh_left", "thigh_right"})


def runner(items: list[ProgrammeItem], **exercises: Exercise) -> ProgrammeRunner:
    cat = Catalogue({"lift": lift(), "arch": arch(), **exercises}, POSTURES)
    return ProgrammeRunner(programme=items, worn=THIGHS, catalogue=cat, initial_offsets={"thigh_left": 0.3})


def three_reps() -> SegmentFrame:
    return standing(np.concatenate([trace(REP), trace(REP)[1:], trace(REP)[1:]]))


def test_the_runner_announces_counts_skips_and_moves_on() -> None:
    run = runner([ProgrammeItem("lift", "left", reps=1), ProgrammeItem("arch"), ProgrammeItem("lift", "left",
                                                                                               reps=2)])
    assert run.current_item is None and run.counted() == 0 and run.update(three_reps().slice(0, 0)) == []
    events = run.update(three_reps())
    assert run.finish() == [] and run.events_ == events
    assert [(e.t, e.kind, e.text, e.item, e.exercise, e.side, e.prescribed, e.hold_s, e.counted)
            for e in events] == [
        (0.0, "announce", "Next: Lift, left side, 1 rep.", 0, "lift", "left", 1, None, 0),
        (5.8, "rep", "Rep 1 of 1 counted.", 0, "lift", "left", 1, None, 1),
        (5.8, "item_done", "Lift done.", 0, "lift", "left", 1, None, 1),
        (5.8, "not_measurable",
         "Arch cannot be counted with the sensors worn (needs the upper-lumbar sensor); skipped.", 1, "arch",
         None, 3, None, 0),
        (5.8, "announce", "Next: Lift, left side, 2 reps.", 2, "lift", "left", 2, None, 0),
        (15.8, "rep", "Rep 1 of 2 counted.", 2, "lift", "left", 2, None, 1),
        (25.8, "rep", "Rep 2 of 2 counted.", 2, "lift", "left", 2, None, 2),
        (25.8, "item_done", "Lift done.", 2, "lift", "left", 2, None, 2),
        (25.8, "programme_done", "Programme done. Well done!", 3, None, None, None, None, 0),
    ]
    assert [e.result.t_onset for e in events if e.kind == "rep"] == [3.03, 13.03, 23.03]
    assert all(e.result is None for e in events if e.kind != "rep")
    assert run.done_ is True and run.index_ == 3 and run.current_item is None and run.counted() == 0
    assert [run.counted(i) for i in range(3)] == [1, 0, 2] and run.counted(5) == 0
    assert [len(r) for r in run.results_] == [1, 0, 2]
    assert summarise(run).items == [
        {"exercise": "lift", "side": "left", "prescribed": 1, "attempted": 1, "counted": 1, "cues": []},
        {"exercise": "arch", "side": None, "prescribed": 3, "attempted": 0, "counted": 0, "cues": []},
        {"exercise": "lift", "side": "left", "prescribed": 2, "attempted": 2, "counted": 2, "cues": []},
    ]
    with pytest.raises(RuntimeError) as err:
        run.update(three_reps())
    assert str(err.value) == "update() after finish()"


@pytest.mark.parametrize("step", [7, 333])
def test_the_runner_does_not_depend_on_the_chunking(step: int) -> None:
    items = [ProgrammeItem("lift", "left", reps=1), ProgrammeItem("lift", "left", reps=2)]
    whole = runner(items)
    ref = whole.update(three_reps()) + whole.finish()
    run = runner(items)
    assert run.done_ is False
    frame = three_reps()
    out = run.update(frame.slice(0, 1)) + run.update(frame.slice(1, 2))  # single samples too
    for a in range(2, len(frame), step):
        out += run.update(frame.slice(a, a + step))
    out += run.finish()
    assert [(e.t, e.kind, e.text, e.item) for e in out] == [(e.t, e.kind, e.text, e.item) for e in ref]
    assert len(ref) == 8


def test_reps_that_do_not_count_and_a_dose_left_open_at_the_end() -> None:
    run = runner([ProgrammeItem("high", "left", reps=3)], high=lift(target=45.0))
    events = run.update(three_reps()) + run.finish()
    assert [(e.t, e.kind, e.text, e.counted) for e in events] == [
        (0.0, "announce", "Next: Lift, left side, 3 reps.", 0),
        (5.72, "rep", "That rep did not count: 0 of 3 so far.", 0),  # back to a quarter of the target
        (5.72, "cue", "higher", 0),
        (15.72, "rep", "That rep did not count: 0 of 3 so far.", 0),
        (15.72, "cue", "higher", 0),
        (25.72, "rep", "That rep did not count: 0 of 3 so far.", 0),
        (25.72, "cue", "higher", 0),
    ]
    assert not run.done_ and run.counted() == 0 and summarise(run).items[0]["cues"] == ["higher"] * 3
    run = runner([ProgrammeItem("lift", "left", reps=3)])
    events = run.update(three_reps().slice(0, 2580)) + run.finish()  # the third rep closes at the end
    assert [e.kind for e in events] == ["announce", "rep", "rep", "rep"] and not run.done_
    assert events[-1].t == 25.79 and run.counted() == 3


def test_events_carry_the_hold_seconds_of_holds_and_final_holds() -> None:
    hold = lift(kind="hold", holds=2, hold_s=20)
    final = lift(kind="reps_hold", reps=2, final_hold_s=15)
    run = runner([ProgrammeItem("hold", "left"), ProgrammeItem("hold", "left", hold_s=7.5),
                  ProgrammeItem("final", "left"), ProgrammeItem("final", "left", hold_s=9)], hold=hold,
                 final=final)
    for i, expected in enumerate([20.0, 7.5, 15.0, 9.0]):
        e = run._event(0.0, "announce", "", i)
        assert e.hold_s == expected and type(e.hold_s) is float
    assert runner([ProgrammeItem("lift", "left", hold_s=9)])._event(0.0, "x", "", 0).hold_s is None
    e = runner([ProgrammeItem("hold", "left", hold_s=0)], hold=lift(kind="hold", holds=2, hold_s=20))
    assert e._event(1.5, "x", "y", 0) == ProgrammeEvent(1.5, "x", "y", 0, None, exercise="lift", side="left",
                                                        prescribed=2, hold_s=20.0, counted=0)


def test_an_unknown_exercise_fails_when_the_programme_is_made() -> None:
    with pytest.raises(KeyError) as err:
        runner([ProgrammeItem("lift", "left"), ProgrammeItem("jump")])
    assert err.value.args[0] == "no exercise 'jump' in the catalogue; known: arch, lift"


# -- recognition --------------------------------------------------------------------------------
def signed(ex: Exercise, name: str, **signature: float) -> Exercise:
    return dataclasses.replace(ex, name=name, signature={k: v * D for k, v in signature.items()})


def sets_of(frame: SegmentFrame, *exercises: Exercise, **params: Any) -> list[tuple]:
    cat = Catalogue({e.name: e for e in exercises}, POSTURES)
    found = recognise(frame, worn=THIGHS, initial_offsets={"thigh_left": 0.3}, catalogue=cat, **params)
    return [(s.exercise, s.side, s.t_start, s.t_end, s.count, pytest.approx(s.distance, abs=1e-9),
             [r.t_onset for r in s.results]) for s in found]


ONSETS = [3.02, 13.02, 23.02]  # at 50 Hz (every second sample): the onset one sample earlier than at 100 Hz


def test_recognition_picks_the_nearest_signature_for_each_rep() -> None:
    frame = three_reps()
    near, far = signed(lift(), "lift", hip_flexion=40), signed(lift(), "lift30", hip_flexion=30)
    assert sets_of(frame, near, far) == [("lift", "left", 3.02, 25.8, 3, 0.0, ONSETS)]
    assert sets_of(frame, far) == [("lift30", "left", 3.02, 25.8, 3, 10 / 15, ONSETS)]
    assert sets_of(frame, far, max_distance=0.6) == []
    only = [("lift30", "left", 3.02, 25.8, 3, 10 / 15, ONSETS)]
    assert sets_of(frame, near, far, exercises=["lift30"]) == only
    unsigned = signed(lift(), "plain")
    assert sets_of(frame, unsigned) == [("plain", "left", 3.02, 25.8, 3, 1.0, ONSETS)]  # no signature: 1


def test_a_faulty_rep_next_to_a_set_is_reclaimed() -> None:
    """The middle rep goes to 60 deg: 20 deg from the signature, a distance of 4/3; 7.2 s from its
    neighbours."""
    peak60 = trace([(0, 0.0), (300, 0.0), (400, 60.0), (500, 60.0), (600, 0.0), (1000, 0.0)])
    frame = standing(np.concatenate([trace(REP), peak60[1:], trace(REP)[1:]]))
    ex = signed(lift(), "lift", hip_flexion=40)
    assert sets_of(frame, ex) == [("lift", "left", 3.02, 25.8, 3, 4 / 9, ONSETS)]
    two = [("lift", "left", 3.02, 25.8, 2, 0.0, [3.02, 23.02])]
    assert sets_of(frame, ex, reclaim_gap_s=7.0) == two
    assert sets_of(frame, ex, reclaim_distance=1.3) == two


def test_a_held_peak_is_a_hold_rather_than_a_rep() -> None:
    """3.5 s at the peak: a reps exercise that held it that long gets the kind penalty (1: still accepted at
    the largest distance); a hold exercise with the same signature is nearer."""
    held = trace([(0, 0.0), (300, 0.0), (400, 40.0), (750, 40.0), (850, 0.0), (1000, 0.0)])
    frame = standing(np.concatenate([held, held[1:]]))
    reps = signed(lift(), "lift", hip_flexion=40)
    hold = signed(lift(kind="hold", holds=2, hold_s=3), "hold", hip_flexion=40)
    assert sets_of(frame, reps) == [("lift", "left", 3.02, 18.3, 2, 1.0, [3.02, 13.02])]
    assert sets_of(frame, reps, max_distance=0.99) == []
    assert sets_of(frame, reps, hold_as_reps_s=3.5) == [("lift", "left", 3.02, 18.3, 2, 0.0, [3.02, 13.02])]
    assert sets_of(frame, reps, hold) == [("hold", "left", 4.06, 17.44, 2, 0.0, [3.02, 13.02])]


def test_a_rep_short_of_its_target_gets_half_the_kind_penalty() -> None:
    ex = signed(lift(target=45.0), "lift", hip_flexion=40)
    onsets = [3.04, 13.04, 23.04]  # within 5 % of the 45 deg target: 2.25 deg
    assert sets_of(three_reps(), ex) == [("lift", "left", 3.04, 25.72, 3, 0.5, onsets)]
    assert sets_of(three_reps(), ex, kind_penalty=0.4) == [("lift", "left", 3.04, 25.72, 3, 0.2, onsets)]


PELVIS = {"upright": UPRIGHT, "supine": q_axis([0.0, 1.0, 0.0], -math.pi / 2),
          "prone": q_axis([0.0, 1.0, 0.0], math.pi / 2), "side_z": qm.IDENTITY,
          "side_mz": q_axis([1.0, 0.0, 0.0], math.pi)}


def postures_frame(spans: list[tuple[str, int]]) -> SegmentFrame:
    q = np.concatenate([np.tile(PELVIS[name], (n, 1)) for name, n in spans])
    return SegmentFrame(np.arange(len(q)) / FS, {"pelvis": q})


def test_each_pelvis_orientation_has_its_class() -> None:
    for name in PELVIS:
        frame = postures_frame([(name, 600)])
        assert episodes(frame) == [(name, 0, 600)]
        assert [_class_at(frame, t) for t in (3.0, 99.0, -1.0)] == [name] * 3
    assert np.allclose(_up(PELVIS["supine"][None, :]), [[1.0, 0.0, 0.0]], atol=1e-12)
    assert np.array_equal(_up(np.full((1, 4), np.nan)), [[0.0, 0.0, 0.0]])  # no orientation: no direction


def test_episodes_are_majority_smoothed_spans_of_at_least_5_s() -> None:
    frame = postures_frame([("upright", 800), ("supine", 600), ("prone", 499), ("upright", 501),
                            ("side_z", 300), ("upright", 700)])
    assert episodes(frame) == [("upright", 0, 800), ("supine", 800, 1400), ("upright", 1899, 2400),
                               ("upright", 2700, 3400)]
    assert episodes(frame, min_episode_s=4.0)[2] == ("prone", 1400, 1899)
    # a 3 s span inside a 7 s majority window disappears
    assert episodes(frame, smooth_s=7.0, min_episode_s=5.0)[-1] == ("upright", 1899, 3400)
    assert episodes(postures_frame([("upright", 1)])) == []


def test_rest_starts_are_the_still_periods_long_enough() -> None:
    frame = standing(trace(REP))  # still until 3 s, 1 s at the peak (4-5 s), still from 6 s
    assert _rest_starts(frame, 0.1, 2.0) == [0, 600]
    assert _rest_starts(frame, 0.1, 1.0) == [0, 400, 600]  # the peak's 1 s counts from 1 s on
    assert _rest_starts(frame, 0.1, 1.01) == [0, 600]
    assert _rest_starts(frame, 0.7, 2.0) == [0]  # 0.4 deg per sample is 0.698 rad/s: still below 0.7
    assert _rest_starts(frame, 0.69, 2.0) == [0, 600]


def test_the_start_posture_class_of_a_side_lying_exercise_follows_the_side() -> None:
    side = Posture("side", (0.0, 0.0, 1.0), True, 0.0, 0.0, True)
    cat = Catalogue({}, {"side": side, **POSTURES})
    classes = [_posture_class(cat, "side", s) for s in ("left", "right", None)]
    assert classes == ["side_mz", "side_z", "side_z"]
    assert _posture_class(cat, "standing", "left") == "upright"
    assert _posture_class(cat, "supine_knees_bent", "left") == "supine"


def test_only_exercises_of_the_episode_posture_are_candidates() -> None:
    near = signed(lift(), "lift", hip_flexion=40)
    lying = dataclasses.replace(near, name="lying", start_posture="supine_knees_bent")
    assert sets_of(three_reps(), lying) == []
    assert sets_of(three_reps(), lying, near) == [("lift", "left", 3.02, 25.8, 3, 0.0, ONSETS)]
    assert sets_of(three_reps(), near, decimate=1) == [("lift", "left", 3.03, 25.8, 3, 0.0,
                                                         [3.03, 13.03, 23.03])]


def test_of_two_equally_long_still_runs_the_hold_is_the_one_with_the_peak() -> None:
    """A step of 0.1 deg at sample 701 of the plateau (5 deg/s: samples 700 and 701 are not still) leaves two
    still runs of 299 samples, 401-699 and 702-1000; the peak (0.01 deg more at 850) is in the second.
    (Without bridging short breaks: ``static_gap_s=0``; with it, see the bridging tests below.)"""
    p = trace([(0, 0.0), (300, 0.0), (400, 40.0), (1002, 40.0), (1102, 0.0), (1400, 0.0)])
    p[701:1002] += 0.1 * D
    p[850] += 0.01 * D
    ex = lift(kind="hold", holds=3, hold_s=3)
    count_batch = functools.partial(_count_batch, static_gap_s=0.0)
    (r,) = count_batch(ex, hips(p), "left", smooth_s=0.0).reps_
    assert (r.t_start, r.t_end, r.t_peak, r.hold_s) == (7.02, 10.0, 8.5, 2.99)
    p[850] -= 0.02 * D  # the peak at the step (not still): the first of the two
    (r,) = count_batch(ex, hips(p), "left", smooth_s=0.0).reps_
    assert (r.t_start, r.t_end, r.t_peak, r.hold_s) == (4.01, 6.99, 7.01, 2.99)
    p[850] += 0.01 * D
    for peak, t_start in ((702, 7.02), (1001, 4.01)):  # the first sample of the second run, or just after it
        q = p.copy()
        q[peak] += 0.01 * D
        (r,) = count_batch(ex, hips(q), "left", smooth_s=0.0).reps_
        assert (r.t_start, r.t_peak, r.hold_s) == (t_start, peak / FS, 2.99)


def test_a_short_break_of_the_stillness_near_the_peak_does_not_end_a_hold() -> None:
    """The plateau of 40 deg (samples 400-1001) with a wobble of 0.4 deg over samples 700-719 (up to 6 deg/s:
    about 15 samples not still): with the default ``static_gap_s`` (0.6 s = 60 samples) the hold is the
    whole plateau, 401-1001 (the break is bridged, the primary stays near the peak); with
    ``static_gap_s=0`` or a gap shorter than the break (0.05 s) it is the longer part only."""
    p = trace([(0, 0.0), (300, 0.0), (400, 40.0), (1002, 40.0), (1102, 0.0), (1400, 0.0)])
    p[700:720] += 0.4 * D * np.sin(np.linspace(0.0, np.pi, 20))
    ex = lift(kind="hold", holds=3, hold_s=3)
    (r,) = _count_batch(ex, hips(p), "left", smooth_s=0.0).reps_
    assert (r.t_start, r.t_end, r.hold_s) == (4.01, 10.01, 6.01)
    for gap in (0.0, 0.05):
        (r,) = _count_batch(ex, hips(p), "left", smooth_s=0.0, static_gap_s=gap).reps_
        assert r.hold_s < 3.0 and (r.t_start == 4.01 or r.t_end == 10.01)


def test_a_break_that_leaves_the_peak_is_never_bridged() -> None:
    """A dip of 20 deg (below 60 % of the excursion) lasting 20 samples in the middle of the plateau: the
    two parts stay separate holds' parts (the longer one is the hold), however long a break may be."""
    p = trace([(0, 0.0), (300, 0.0), (400, 40.0), (1002, 40.0), (1102, 0.0), (1400, 0.0)])
    p[690:710] -= 20.0 * D * np.sin(np.linspace(0.0, np.pi, 20))
    ex = lift(kind="hold", holds=3, hold_s=3)
    reps = _count_batch(ex, hips(p), "left", smooth_s=0.0, static_gap_s=1.0).reps_
    assert all(r.hold_s < 3.1 for r in reps)


def test_bridge_fills_only_inner_allowed_breaks_up_to_the_length() -> None:
    m = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    ok = np.ones(10, dtype=bool)
    assert _bridge(m, ok, 2).astype(int).tolist() == [0, 1, 1, 1, 1, 0, 0, 0, 1, 0]
    assert _bridge(m, ok, 3).astype(int).tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    ok[6] = False
    assert _bridge(m, ok, 3).astype(int).tolist() == [0, 1, 1, 1, 1, 0, 0, 0, 1, 0]
    assert _bridge(m, ok, 0) is m and _bridge(np.zeros(3, dtype=bool), ok[:3], 5).tolist() == [False] * 3


def test_at_50_hz_every_duration_is_counted_in_samples_of_that_rate() -> None:
    """The rep of :data:`REP` at 50 Hz (0.8 deg per sample): onset 151 (0.8 deg), the 0.2 s reference is the
    10 samples 142-151 (142 at -20 deg: -2 deg; 141 at 80 deg is outside), a rule past its limit for 15
    samples (0.3 s) is broken."""
    p = trace([(0, 0.0), (150, 0.0), (200, 40.0), (250, 40.0), (300, 0.0), (500, 0.0)])
    tilt = np.zeros(501)
    tilt[141], tilt[142] = 80 * D, -20 * D
    tilt[225:240] = 8.1 * D
    frame = {"t": np.arange(501) / 50.0, "hip_flexion_left": p, "pelvic_tilt": tilt}
    c = ExerciseCounter(exercise=lift(rules=[TILT]), side="left", smooth_s=0.0)
    c.update({k: v[:176] for k, v in frame.items()})
    assert c.current().active and c.current().elapsed_s == pytest.approx(0.5)  # (176 - 151) / 50
    c.update({k: v[176:] for k, v in frame.items()})
    c.finish()
    (r,) = c.reps_
    assert (r.t_onset, r.t_peak, r.t_end) == (3.02, 4.0, 5.8)
    assert r.rules_broken == ("pelvic_tilt",) and r.correct_s == pytest.approx((140 - 15) / 50.0)
    assert r.hold_s == pytest.approx(49 / 50.0)
    tilt[225] = 0.0  # 14 samples: not broken
    (r,) = count_batch(lift(rules=[TILT]), frame, "left", smooth_s=0.0).reps_
    assert r.rules_broken == ()


def test_the_reference_window_is_cut_at_the_first_sample_and_is_at_least_one_sample() -> None:
    # the onset at sample 5: the reference is samples 0-5 (0 at -60 deg: -10 deg)
    p = trace([(0, 0.0), (2, 0.0), (102, 40.0), (202, 40.0), (302, 0.0), (600, 0.0)])
    tilt = bump(0.5, 150, 40, n=601)
    tilt[0] = -60 * D
    (r,) = count_batch(lift(rules=[TILT]), hips(p, pelvic_tilt=tilt), "left", smooth_s=0.0).reps_
    assert r.t_onset == 0.05 and r.rules_broken == ("pelvic_tilt",)
    assert r.rule_excess_rad["pelvic_tilt"] == pytest.approx(10.5 * D, rel=1e-9)
    # a reference of 0.004 s is the onset sample alone
    tilt = bump(10.5, 450, 40)
    tilt[302] = 40 * D
    (r,) = count_batch(lift(rules=[TILT]), hips(trace(REP), pelvic_tilt=tilt), "left", smooth_s=0.0,
                       reference_s=0.004).reps_
    assert r.rules_broken == ("pelvic_tilt",)


def test_a_rule_on_the_other_leg_needs_that_thigh() -> None:
    other = {"angle": "other_hip_flexion", "max_deg": 10, "cue": "keep the other leg down"}
    c = ExerciseCounter(exercise=lift(rules=[other]), side="left", worn=frozenset({"pelvis", "thigh_left"}))
    assert c.rules_not_checked == ("other_hip_flexion",)
    c = ExerciseCounter(exercise=lift(rules=[other]), side="left", worn=frozenset({"pelvis", "thigh_right"}))
    assert c.rules_not_checked == () and not c.primary_available


@pytest.mark.parametrize("level_s,counted", [(0.3, True), (0.001, False)])
def test_the_start_level_is_the_mean_of_its_first_samples(level_s: float, counted: bool) -> None:
    """The first two samples at -0.3 and +0.3 deg, then 0: the level over 0.3 s is 0 (a rep may start up to
    10.5 deg above it, here 10.4); over one sample it is -0.3 deg (up to 10.2)."""
    p = rest_then_rep([(0, 0.0), (30, 0.0), (830, 10.4)], 10.4, 50.4, 1300)
    p[0], p[1] = -0.3 * D, 0.3 * D
    c = count_batch(lift(), hips(p), "left", smooth_s=0.0, start_level=True, level_s=level_s)
    assert len(c.reps_) == int(counted)


def test_the_start_level_lasts_level_s_at_50_hz() -> None:
    """At 50 Hz 0.3 s is 15 samples (at 0 deg; the next 15 at -1 deg would lower it to -0.5)."""
    p = trace([(0, 0.0), (15, 0.0), (415, 10.4), (650, 10.4), (700, 50.4), (750, 50.4), (800, 10.4),
               (950, 10.4)])
    p[15:30] = -1.0 * D
    frame = {"t": np.arange(len(p)) / 50.0, "hip_flexion_left": p}
    (r,) = count_batch(lift(), frame, "left", smooth_s=0.0, start_level=True).reps_
    assert r.range_rad == pytest.approx(40 * D, abs=1e-9)


def test_after_a_long_rest_a_rebase_measures_the_level_on_the_kept_samples() -> None:
    p = np.concatenate([np.full(15_000, -20 * D), trace(REP)])
    frame = hips(p)
    c = ExerciseCounter(exercise=lift(), side="left", smooth_s=0.0, start_level=True)
    c.update({k: v[:15_000] for k, v in frame.items()})
    assert c.rebase()
    c.update({k: v[15_000:] for k, v in frame.items()})
    c.finish()
    assert [r.t_onset for r in c.reps_] == [pytest.approx(153.03)]


@pytest.mark.parametrize("rest,counted", [(16.9, True), (17.1, False)])
def test_a_neutral_start_level_allows_35_percent_of_the_way_to_the_target(rest: float, counted: bool) -> None:
    """Level 10 deg, target 30 deg from neutral: a rep may start up to 35 % of the 20 deg left above the level
    (17 deg); the drift there is too slow to be a movement (below 5 deg in 4 s)."""
    p = rest_then_rep([(0, 10.0), (30, 10.0), (730, rest)], rest, rest + 20.0, 1200)
    c = count_batch(lift(reference="neutral"), hips(p), "left", smooth_s=0.0, start_level=True)
    assert len(c.reps_) == int(counted)
    assert len(count_batch(lift(reference="neutral"), hips(p), "left", smooth_s=0.0).reps_) == 1


def test_the_start_level_is_there_once_its_samples_are() -> None:
    """A short rise at sample 20, within the 0.3 s of the level: fed in one chunk or 30 samples first, the
    same (short) movement."""
    p = trace([(0, 0.0), (500, 0.0)])
    p[20:25] = 20 * D
    frame = hips(p)
    whole = count_batch(lift(), frame, "left", smooth_s=0.0, start_level=True).reps_
    c = ExerciseCounter(exercise=lift(), side="left", smooth_s=0.0, start_level=True)
    c.update({k: v[:30] for k, v in frame.items()})
    c.update({k: v[30:] for k, v in frame.items()})
    c.finish()
    assert [(r.t_onset, r.t_end) for r in c.reps_] == [(r.t_onset, r.t_end) for r in whole] == [(0.19, 0.25)]


def test_a_movement_of_one_sample_is_not_a_rep() -> None:
    """A 1 deg target: 0.35 deg is a movement (30 %) whose onset is itself (within 0.5 deg of the minimum);
    the sensor drops out after one sample (nothing) or after two (a rep short of its target)."""
    for n, reps in ((1, 0), (2, 1)):
        p = np.zeros(600)
        p[300:300 + n] = 0.35 * D
        p[300 + n] = np.nan
        c = count_batch(lift(target=1.0), hips(p), "left", smooth_s=0.0)
        assert len(c.reps_) == reps
    assert c.reps_[0].t_onset == 3.0 and c.reps_[0].t_end == 3.01 and not c.reps_[0].target_met


def test_a_rule_exactly_at_its_limit_is_not_past_it() -> None:
    tilt = bump(10.0, 420, 60)
    frame = hips(trace(REP), pelvic_tilt=tilt)
    c = ExerciseCounter(exercise=lift(rules=[TILT]), side="left", smooth_s=0.0)
    c.update({k: v[:450] for k, v in frame.items()})
    assert c.current().active and c.current().cue is None
    c.update({k: v[450:] for k, v in frame.items()})
    (r,) = c.reps_
    assert r.rules_broken == () and r.correct_s == 2.78 and r.rule_excess_rad["pelvic_tilt"] == 10 * D


def test_each_movement_starts_without_a_live_cue() -> None:
    tilt = bump(12.0, 420, 60, n=2001)
    frame = hips(np.concatenate([trace(REP), trace(REP)[1:]]), pelvic_tilt=tilt)
    c = ExerciseCounter(exercise=lift(rules=[TILT]), side="left", smooth_s=0.0)
    c.update({k: v[:450] for k, v in frame.items()})
    assert c.current().cue == "keep the pelvis still"
    c.update({k: v[450:1400] for k, v in frame.items()})
    assert c.current().active and c.current().cue is None  # the second rep, within the limit so far
    frame["pelvic_tilt"][1450:1500] = 12 * D
    c.update({k: v[1400:1460] for k, v in frame.items()})
    assert c.current().cue == "keep the pelvis still"


def test_the_live_cue_after_a_long_rest() -> None:
    """After 150 s the buffers are trimmed: the rule's reference is still found at the onset."""
    n0 = 15_000
    p = np.concatenate([np.zeros(n0), trace(REP)])
    tilt = np.zeros(len(p))
    tilt[n0 + 450:n0 + 490] = 12 * D
    frame = hips(p, pelvic_tilt=tilt)
    c = ExerciseCounter(exercise=lift(rules=[TILT]), side="left", smooth_s=0.0)
    c.update({k: v[:n0] for k, v in frame.items()})
    c.update({k: v[n0:n0 + 460] for k, v in frame.items()})
    assert c.current().active and c.current().cue == "keep the pelvis still"


def test_a_movement_of_two_samples_has_no_speed_to_judge() -> None:
    """Two samples: the still time is the time near the peak (no speed is estimated); from three samples on
    the speed decides (15, 5 and 5 deg/s here: never still)."""
    for values, hold_s in (([0.35, 0.5], 0.02), ([0.35, 0.5, 0.45], 0.0)):
        p = np.zeros(600)
        p[300:300 + len(values)] = np.array(values) * D
        p[300 + len(values)] = np.nan
        (r,) = count_batch(lift(target=1.0), hips(p), "left", smooth_s=0.0).reps_
        assert r.hold_s == hold_s and r.t_end == (299 + len(values)) / FS


def test_a_final_hold_from_exactly_two_still_seconds() -> None:
    (r,) = held(40.0, 201, kind="reps_hold").reps_
    assert r.hold_s == 2.0 and r.final_hold and r.t_start == 4.01


def test_a_neutral_hold_counts_from_exactly_the_target() -> None:
    for top, correct in ((30.0, 6.0), (28.0, 0.0)):
        top_end = 1001
        p = trace([(0, 10.0), (300, 10.0), (400, top), (top_end, top), (top_end + 100, 10.0),
                   (top_end + 400, 10.0)])
        ex = lift(kind="hold", reference="neutral", reps=5, holds=3, hold_s=5)
        (r,) = count_batch(ex, hips(p), "left", smooth_s=0.0).reps_
        assert r.correct_s == correct and r.counted is (correct > 0)


def test_rules_broken_at_the_same_sample_keep_their_catalogue_order() -> None:
    frame = hips(trace(REP), pelvic_tilt=bump(12.0, 450, 40), hip_adduction_left=bump(6.0, 450, 40))
    (r,) = count_batch(lift(rules=[TILT, ADD]), frame, "left", smooth_s=0.0).reps_
    assert r.rules_broken == ("pelvic_tilt", "hip_adduction") and r.cue == "keep the pelvis still"


def test_a_rule_can_be_broken_by_a_single_sample() -> None:
    frame = hips(trace(REP), pelvic_tilt=bump(12.0, 450, 1))
    (r,) = count_batch(lift(rules=[TILT]), frame, "left", smooth_s=0.0, min_rule_s=0.001).reps_
    assert r.rules_broken == ("pelvic_tilt",)
    (r,) = count_batch(lift(rules=[TILT]), frame, "left", smooth_s=0.0, min_rule_s=0.02).reps_
    assert r.rules_broken == ()


def test_the_next_item_gets_every_sample_after_a_late_result() -> None:
    """Never in the start posture, each block waits 10 s before it counts: the first rep's result comes
    at 10 s, 7 s after its end; the second rep (from 4 s) still goes to the next item."""
    p = trace([(0, 0.0), (30, 0.0), (130, 40.0), (230, 40.0), (330, 0.0), (400, 0.0), (500, 40.0),
               (600, 40.0), (700, 0.0), (1600, 0.0)])
    frame = standing(p, flex_right=20 * D)
    cat = Catalogue({"lift": lift()}, POSTURES)
    run = ProgrammeRunner(programme=[ProgrammeItem("lift", "left", reps=1)] * 2, worn=THIGHS, catalogue=cat,
                          initial_offsets={"thigh_left": 0.3}, block={"max_wait_s": 10.0})
    out = []
    for a in range(0, len(frame), 10):
        out += run.update(frame.slice(a, a + 10))
    out += run.finish()
    assert [(e.t, e.kind, e.item) for e in out] == [
        (0.0, "announce", 0), (3.1, "rep", 0), (3.1, "item_done", 0), (3.1, "announce", 1), (6.8, "rep", 1),
        (6.8, "item_done", 1), (6.8, "programme_done", 2)]
    assert [e.result.t_onset for e in out if e.kind == "rep"] == [0.33, 4.03]
    assert [e.result.primary_peak_rad for e in out if e.kind == "rep"] == [pytest.approx(40 * D)] * 2
    assert run.catalogue is cat and run.initial_offsets == {"thigh_left": 0.3} and run.done_ is True


def test_a_movement_open_at_the_end_keeps_its_last_sample_with_the_shortest_smoothing() -> None:
    p = trace([(0, 0.0), (300, 0.0), (400, 40.0), (600, 40.0)])
    (r,) = count_batch(lift(), hips(p), "left", smooth_s=0.02).reps_  # +-1 sample
    assert r.t_end == 6.0 and r.t_onset == 3.03


def test_the_onset_window_reaches_back_exactly_4_s_from_the_first_sample_on() -> None:
    """The minimum (-5 deg) is the first sample, exactly 399 samples before a rise to 5 deg: 10 deg, a
    movement whether the rise comes in the same chunk or in the next one."""
    p = np.zeros(1000)
    p[0] = -5 * D
    p[399:420] = 5 * D
    frame = hips(p)
    whole = count_batch(lift(), frame, "left", smooth_s=0.0).reps_
    assert [(r.t_onset, r.t_end, round(r.range_rad / D, 9)) for r in whole] == [(0.0, 4.2, 10.0)]
    c = ExerciseCounter(exercise=lift(), side="left", smooth_s=0.0)
    c.update({k: v[:399] for k, v in frame.items()})
    c.update({k: v[399:] for k, v in frame.items()})
    c.finish()
    assert [(r.t_onset, r.t_end) for r in c.reps_] == [(0.0, 4.2)]


def test_an_onset_window_of_one_sample_never_sees_a_rise() -> None:
    p = np.zeros(600)
    p[300:400] = 40 * D  # a step: a rise within two samples
    assert count_batch(lift(), hips(p), "left", smooth_s=0.0, onset_window_s=0.001).reps_ == []
    (r,) = count_batch(lift(), hips(p), "left", smooth_s=0.0, onset_window_s=0.02).reps_
    assert r.t_onset == 2.99 and r.counted


def test_a_hold_is_compared_with_its_signature_in_its_middle() -> None:
    """The way up overshoots to 45 deg (the peak), the hold is at 40 deg: a signature of 40 deg fits the hold,
    not the peak."""
    held = trace([(0, 0.0), (300, 0.0), (400, 45.0), (410, 40.0), (750, 40.0), (850, 0.0), (1000, 0.0)])
    frame = standing(np.concatenate([held, held[1:]]))
    hold = signed(lift(kind="hold", holds=2, hold_s=3), "hold", hip_flexion=40)
    ((name, side, _, _, count, distance, _),) = sets_of(frame, hold)
    assert (name, side, count, distance) == ("hold", "left", 2, 0.0)
    reps = signed(lift(), "lift", hip_flexion=45)  # a rep is seen at its peak (and held: the kind penalty)
    assert [s[4:6] for s in sets_of(frame, reps)] == [(2, 1.0)]
    # held 3.46 s: from the peak at 4.0 s (the overshoot's 0.1 s way back to 40 deg is a short break of the
    # stillness near the peak, bridged by static_gap_s) to 7.45 s
    assert [s[4:6] for s in sets_of(frame, reps, hold_as_reps_s=3.45)] == [(2, 1.0)]
    assert [s[4:6] for s in sets_of(frame, reps, hold_as_reps_s=3.47)] == [(2, 0.0)]


def test_an_exercise_with_both_legs_is_recognised_without_a_side() -> None:
    both = signed(lift(sides="both", target=15), "both", hip_flexion=20)  # the mean of 40 deg and 0
    assert sets_of(three_reps(), both) == [("both", None, 3.02, 25.8, 3, 0.0, ONSETS)]


def test_recognition_falls_back_to_the_calibration_headings() -> None:
    """Never still in the start posture (the other hip flexed 20 deg): each window counts with the headings of
    the standing calibration."""
    frame = standing(np.concatenate([trace(REP), trace(REP)[1:]]), flex_right=20 * D)
    ex = signed(lift(), "lift", hip_flexion=40)
    ((name, side, _, _, count, distance, _),) = sets_of(frame, ex)
    assert (name, side, count, distance) == ("lift", "left", 2, 0.0)


def test_a_sensor_dropout_before_a_rep_does_not_hide_it() -> None:
    p = trace(REP)
    p[100:110] = np.nan
    (r,) = count_batch(lift(), hips(p), "left", smooth_s=0.0).reps_
    assert (r.t_onset, r.t_end) == (3.03, 5.8)


def test_the_onset_is_searched_in_the_same_4_s_as_the_rise() -> None:
    """-5 deg at sample 0, then 0, and a rise to 9.5 deg at sample 401: from 0 (the minimum of the 4 s up to
    401) that is a movement, its onset at 400; the older -5 deg is not its start."""
    p = np.zeros(900)
    p[0] = -5 * D
    p[401:450] = 9.5 * D
    (r,) = count_batch(lift(), hips(p), "left", smooth_s=0.0).reps_
    assert r.t_onset == 4.0 and r.range_rad == pytest.approx(9.5 * D, abs=1e-12)


def test_a_hold_ends_halfway_down_so_two_holds_stay_apart() -> None:
    """Down to 15 deg between two holds at 40 deg: below half the excursion (20 deg), so the first hold is
    over; for reps (back to 20 %: 8 deg) it would be one movement."""
    p = trace([(0, 0.0), (300, 0.0), (400, 40.0), (901, 40.0), (960, 15.0), (1160, 15.0), (1220, 40.0),
               (1721, 40.0), (1821, 0.0), (2100, 0.0)])
    reps = count_batch(lift(kind="hold", holds=3, hold_s=5), hips(p), "left", smooth_s=0.0).reps_
    assert [(r.t_start, r.t_end) for r in reps] == [(4.01, 9.0), (12.21, 17.2)]


def test_a_short_prescribed_hold_without_tolerance() -> None:
    """Prescribed 1 s with no tolerance: 0.79 s is too short."""
    (r,) = held(40.0, 80, hold_s=1.0, hold_tolerance_s=0.0, min_hold_s=0.5).reps_
    assert r.hold_s == 0.79 and r.too_short and not r.counted
    assert r.cue == "hold it longer, aim for 1 seconds"


def test_the_live_cue_looks_at_the_newest_sample_only() -> None:
    frame = hips(trace(REP), hip_adduction_left=bump(6.0, 420, 10))
    c = ExerciseCounter(exercise=lift(rules=[ADD]), side="left", smooth_s=0.0)
    c.update({k: v[:421] for k, v in frame.items()})  # the newest sample (420) is past the limit
    assert c.current().cue == "knee out"


def test_a_trailing_onset_window_never_looks_ahead() -> None:
    """A 3-sample window: 5 deg for two samples, then -5 deg: no rise of 9 deg within any 3 samples up to
    each one."""
    p = np.zeros(600)
    p[299:301] = 5 * D
    p[301] = -5 * D
    assert count_batch(lift(), hips(p), "left", smooth_s=0.0, onset_window_s=0.03).reps_ == []


def test_a_movement_is_followed_from_the_sample_after_its_start() -> None:
    """A step up in two samples (2, then 40 deg): one rep, its onset at the sample before the steps."""
    p = np.zeros(700)
    p[299] = 2 * D
    p[300:400] = 40 * D
    (r,) = count_batch(lift(), hips(p), "left", smooth_s=0.0).reps_
    assert (r.t_onset, r.t_end) == (2.98, 4.0) and r.counted


def test_recognition_tries_the_right_side_when_only_the_right_thigh_is_worn() -> None:
    flex = np.concatenate([trace(REP), trace(REP)[1:]])
    frame = standing(np.zeros(len(flex)), heading=0.0, flex_right=flex)
    frame.segments.pop("thigh_left")
    cat = Catalogue({"lift": signed(lift(), "lift", hip_flexion=40)}, POSTURES)
    found = recognise(frame, worn=frozenset({"pelvis", "thigh_right"}), catalogue=cat)
    assert [(s.exercise, s.side, s.count, s.distance) for s in found] == [("lift", "right", 2, 0.0)]


def test_the_kind_penalty_adds_to_the_distance() -> None:
    held = trace([(0, 0.0), (300, 0.0), (400, 45.0), (410, 40.0), (750, 40.0), (850, 0.0), (1000, 0.0)])
    frame = standing(np.concatenate([held, held[1:]]))
    reps = signed(lift(), "lift", hip_flexion=43)  # 2 deg from the 45 deg peak: 2/15
    assert [s[4:6] for s in sets_of(frame, reps, kind_penalty=0.5)] == [(2, pytest.approx(0.5 + 2 / 15))]


def test_episode_edge_cases_follow_the_sampling_interval() -> None:
    two = SegmentFrame(np.array([0.0, 1.0]), {"pelvis": np.tile(PELVIS["supine"], (2, 1))})
    assert episodes(two, min_episode_s=2.0) == [("supine", 0, 2)]  # 2 samples of 1 s: exactly 2 s
    assert episodes(two, min_episode_s=2.01) == []
    one = SegmentFrame(np.array([0.0]), {"pelvis": PELVIS["supine"][None, :]})
    assert episodes(one, min_episode_s=0.01) == [("supine", 0, 1)] and episodes(one, min_episode_s=0.02) == []
    # without smoothing a single sample is its own class
    frame = postures_frame([("prone", 1), ("upright", 50), ("side_z", 1), ("upright", 50)])
    assert episodes(frame, smooth_s=0.001, min_episode_s=0.011) == [
        ("upright", 1, 51), ("upright", 52, 102)]
    assert episodes(frame, smooth_s=0.001, min_episode_s=0.005) == [
        ("prone", 0, 1), ("upright", 1, 51), ("side_z", 51, 52), ("upright", 52, 102)]


def test_a_short_span_stays_an_episode_while_it_is_the_majority_of_2_s() -> None:
    frame = postures_frame([("upright", 800), ("side_z", 120), ("upright", 800)])
    assert [e[0] for e in episodes(frame, min_episode_s=0.1)] == ["upright", "side_z", "upright"]
    assert [e[0] for e in episodes(frame, smooth_s=3.0, min_episode_s=0.1)] == ["upright"]


def test_a_still_period_to_the_end_of_the_recording() -> None:
    frame = standing(trace(REP))  # still from 6 s to the end (10 s): exactly 4 s
    assert _rest_starts(frame, 0.1, 4.0) == [600]


def reps_frame(*peaks: float) -> SegmentFrame:
    parts = [trace([(0, 0.0), (300, 0.0), (400, pk), (500, pk), (600, 0.0), (1000, 0.0)]) for pk in peaks]
    return standing(np.concatenate([parts[0]] + [x[1:] for x in parts[1:]]))


def test_reclaiming_grows_a_set_rep_by_rep_on_either_side() -> None:
    ex = signed(lift(), "lift", hip_flexion=40)
    # the third rep (20 deg off) is 17 s from the first: only next to the second (30 deg off) once reclaimed
    assert [s[4:6] for s in sets_of(reps_frame(40, 70, 60), ex)] == [(3, pytest.approx(10 / 9))]
    # a faulty rep after the set, and one before it
    assert [s[4:6] for s in sets_of(reps_frame(40, 40, 60), ex)] == [(3, pytest.approx(4 / 9))]
    assert [s[4:6] for s in sets_of(reps_frame(60, 40, 40), ex)] == [(3, pytest.approx(4 / 9))]


def test_recording_frame_runs_the_pipeline_blocks_on_a_recording() -> None:
    """A short simulated squat: the calibrated frame is on the 100 Hz grid, every worn placement calibrated,
    and the hips flex as much as in the truth."""
    from hipback.processing.angles3d import body_angles
    from hipback.simulator.exercises import ExerciseSet, simulate_programme

    sim = simulate_programme([ExerciseSet("squat", None, 1)], seed=5)
    frame, cal = recording_frame(sim.recording)
    placements = ["lumbar_upper", "pelvis", "thigh_left", "thigh_right"]
    assert sorted(frame.segments) == placements and sorted(cal) == placements
    assert np.allclose(np.diff(frame.t), 0.01) and frame.t[-1] == pytest.approx(sim.truth.t[-1], abs=0.02)
    t0, t1 = cal["pelvis"].window
    assert 0.0 <= t0 < t1 <= frame.t[-1]
    off = calibration_offsets(frame, cal["pelvis"].window)
    measured = body_angles(frame.t, frame.segments, off)
    truth = body_angles(sim.truth.t, sim.truth.segment_quat)
    for side in ("left", "right"):
        key = f"hip_flexion_{side}"
        assert np.nanmax(measured[key]) == pytest.approx(np.nanmax(truth[key]), abs=5 * D)
    half, _ = recording_frame(sim.recording, rate_hz=50.0)
    assert np.allclose(np.diff(half.t), 0.02) and len(half) == len(frame) // 2


LYING = Posture("lying", (1.0, 0.0, 0.0), False, 30 * D, 45 * D, True)  # the working hip at 30, the other 45


def lying(flex_left: np.ndarray, err: float = 0.4) -> SegmentFrame:
    """On the back, the right hip at 45 deg, the left one at ``flex_left``; the left thigh sensor turned by
    ``err`` about the thigh's long axis."""
    n = len(flex_left)
    pel = np.tile(PELVIS["supine"], (n, 1))
    z = np.zeros(n)
    left = qm.multiply(qm.multiply(pel, hip_rotation_quat(flex_left, z, z, "left")), q_axis([0, 1, 0], err))
    right = qm.multiply(pel, hip_rotation_quat(np.full(n, 45 * D), z, z, "right"))
    return SegmentFrame(np.arange(n) / FS, {"pelvis": pel, "thigh_left": left, "thigh_right": right})


def test_lying_the_block_finds_each_thigh_turned_about_its_long_axis() -> None:
    p = trace([(0, 30.0), (300, 30.0), (400, 70.0), (500, 70.0), (600, 30.0), (1000, 30.0)])
    b = ExerciseBlock(exercise=lift(), side="left", posture=LYING)
    (r,) = run_block(b, lying(p))
    assert b.aligned_at_ == 1.01 and set(b.yaw_) == {"pelvis", "thigh_left", "thigh_right"}
    assert b.yaw_["thigh_left"] == pytest.approx(-0.4, abs=1e-9)
    assert b.yaw_["thigh_right"] == pytest.approx(0.0, abs=1e-9) and b.yaw_["pelvis"] == pytest.approx(0.0)
    assert (r.t_onset, r.t_end) == (3.03, 5.8) and r.range_rad == pytest.approx(40 * D, abs=1e-9)



def test_without_realignment_later_chunks_are_only_counted() -> None:
    b = block(realign=False)
    out = run_block(b, three_reps(), 100)
    assert [r.t_onset for r in out] == [3.03, 13.03, 23.03] and b.realigned_ == 0 and b.aligned_at_ == 1.01


def test_every_worn_thigh_must_be_at_the_posture_hip_angle() -> None:
    """Working on the right; the left hip flexed 20 deg (beyond 14 deg of the posture's 0) all along: the
    block never aligns, whichever thigh is looked at last."""
    n = 1001
    frame = standing(np.full(n, 20 * D), heading=0.0, flex_right=trace(REP))
    b = ExerciseBlock(exercise=lift(), side="right", posture=POSTURES["standing"], max_wait_s=2.5)
    (r,) = run_block(b, frame)
    assert b.aligned_at_ is None and r.t_onset == 3.03
    # without the left thigh the right one alone decides: 0 deg is 10 deg from a 10 deg posture
    frame.segments.pop("thigh_left")
    up10 = Posture("up10", (0.0, 1.0, 0.0), False, 10 * D, 10 * D, True)
    for tolerance, aligned in ((5 * D, None), (11 * D, 1.01)):
        b = ExerciseBlock(exercise=lift(), side="right", posture=up10,
                          worn=frozenset({"pelvis", "thigh_right"}), max_wait_s=2.5,
                          hip_tolerance_rad=tolerance)
        run_block(b, frame)
        assert b.aligned_at_ == aligned

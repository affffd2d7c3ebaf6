"""The exercise catalogue: shipped files load and validate; malformed entries fail with one sentence naming
the file and the field."""

from __future__ import annotations

import math

import pytest

from hipback.processing.exercises.catalogue import (
    CatalogueError,
    build_catalogue,
    load_catalogue,
    shipped_files,
)

ISSUE_EXERCISES = {
    "hip_flexor_kneeling",
    "hip_flexor_lunge",
    "rectus_femoris_heel_slide",
    "gluteal_stretch",
    "piriformis_figure4",
    "butterfly",
    "squat",
    "glute_bridge",
    "glute_bridge_hold",
    "clamshell",
    "standing_hip_abduction",
    "knee_drops",
    "cat_camel",
    "knee_to_chest_double",
    "knee_to_chest_single",
    "seated_forward_bend",
    "seated_spinal_twist",
    "happy_baby",
    "childs_pose",
    "standing_forward_fold",
    "prone_press_up",
    "standing_lumbar_extension",
}

GOOD = """
name = "toe_tap"
title = "Toe tap"
kind = "reps"
sides = "each"
sensors = ["pelvis", "thigh"]
start_posture = "supine_knees_bent"
[primary]
angle = "hip_flexion"
target_deg = 30
cue = "lift the knee higher"
[[rules]]
angle = "pelvis_roll"
max_deg = 8
both_directions = true
cue = "keep your pelvis flat"
[dose]
reps = 10
[responders]
[measurement]
quality = "good"
"""


def _postures() -> str:
    return shipped_files()[1]


def test_shipped_catalogue_has_every_exercise_of_the_issue():
    cat = load_catalogue()
    assert set(cat.exercises) == ISSUE_EXERCISES
    for ex in cat:
        assert ex.start_posture in cat.postures
        assert ex.primary.target > 0
        if ex.quality != "good":
            assert ex.note  # says what cannot be measured


def test_responder_cautions_follow_the_clinical_material():
    cat = load_catalogue()
    assert cat["childs_pose"].advice("extension") == "avoid"
    assert cat["standing_forward_fold"].advice("extension") == "avoid"
    assert cat["prone_press_up"].advice("flexion") == "avoid"
    assert cat["standing_lumbar_extension"].advice("flexion") == "avoid"
    assert cat["hip_flexor_kneeling"].advice("flexion") == "caution"
    assert cat["knee_to_chest_double"].advice("flexion") == "ok"
    assert cat["prone_press_up"].advice("extension") == "ok"


def test_lumbar_rules_say_they_need_the_upper_lumbar_sensor():
    cat = load_catalogue()
    for ex in cat:
        for rule in ex.rules:
            if rule.angle.startswith("lumbar_"):
                assert "lumbar_upper" in rule.requires or "lumbar_upper" in ex.sensors, ex.name


def test_a_clinic_exercise_is_added_by_data_and_degrees_become_radians():
    cat = build_catalogue({"clinic/toe_tap.toml": GOOD}, _postures())
    ex = cat["toe_tap"]
    assert ex.kind == "reps" and ex.dose.reps == 10
    assert ex.primary.target == pytest.approx(math.radians(30))
    assert ex.rules[0].both_directions and ex.rules[0].max_rad == pytest.approx(math.radians(8))
    assert ex.placements("left") == ["pelvis", "thigh_left"]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('kind = "reps"', 'kind = "sometimes"', "kind"),
        ('angle = "hip_flexion"', 'angle = "knee_flexion"', "primary.angle"),
        ("target_deg = 30", "target_deg = 400", "primary.target_deg"),
        ('start_posture = "supine_knees_bent"', 'start_posture = "upside_down"', "start_posture"),
        ("max_deg = 8", 'max_deg = "eight"', "rules[0].max_deg"),
        ("reps = 10", "reps = 0", "dose.reps"),
        ('quality = "good"', 'quality = "partial"', "measurement.note"),
        ('sensors = ["pelvis", "thigh"]', 'sensors = ["thigh"]', "pelvis"),
        ('cue = "keep your pelvis flat"', "", "rules[0].cue"),
        ("[responders]", '[responders]\nflexion = "avoid"', "responders.reason"),
        ('name = "toe_tap"', 'name = "toe_tap"\ncolour = "red"', "colour"),
    ],
)
def test_malformed_entries_name_the_file_and_the_field(old: str, new: str, field: str):
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(CatalogueError) as err:
        build_catalogue({"clinic/toe_tap.toml": text}, _postures())
    msg = str(err.value)
    assert msg.startswith("clinic/toe_tap.toml")
    assert field in msg
    assert msg.count(". ") == 0 and msg.endswith(".")  # one sentence


def test_file_name_and_exercise_name_must_agree():
    with pytest.raises(CatalogueError, match="name must equal the file name"):
        build_catalogue({"clinic/other.toml": GOOD}, _postures())


def test_invalid_toml_and_bad_posture_are_reported():
    with pytest.raises(CatalogueError, match="clinic/toe_tap.toml: not valid TOML"):
        build_catalogue({"clinic/toe_tap.toml": "name = "}, _postures())
    with pytest.raises(CatalogueError, match=r"postures.toml \[odd\]: pelvis_up must be a unit vector"):
        build_catalogue({}, "[odd]\npelvis_up = [0.0, 0.2, 0.0]\n")

"""Programme in the session config: parsing, doses, responder safety with a recorded clinician override,
a clinic's own exercise folder."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hipback.ingest.config import load_config, parse_config
from hipback.ingest.errors import ConfigError
from hipback.ingest.programme import parse_programme

BASE = """
patient = "P-0042"
[[sensors]]
placement = "pelvis"
kind = "hipback_v1"
"""


def _prog(text: str, base_dir: Path | None = None):
    return parse_programme(tomllib.loads(text)["programme"], "cfg.toml", base_dir)


def test_programme_expands_sets_and_sides_in_order_with_doses():
    p = _prog(
        """
        [programme]
        responder = "neither"
        [[programme.exercises]]
        name = "hip_flexor_kneeling"
        sides = ["right", "left"]
        holds = 2
        hold_s = 20
        [[programme.exercises]]
        name = "glute_bridge"
        sets = 2
        """
    )
    assert [(i.exercise, i.side, i.holds, i.reps, i.hold_s) for i in p.items] == [
        ("hip_flexor_kneeling", "right", 2, None, 20.0),
        ("hip_flexor_kneeling", "left", 2, None, 20.0),
        ("glute_bridge", None, None, 12, None),
        ("glute_bridge", None, None, 12, None),
    ]
    assert p.overrides == [] and p.to_dict()["responder"] == "neither"


def test_an_exercise_to_avoid_is_refused_with_a_plain_reason():
    text = """
        [programme]
        responder = "extension"
        [[programme.exercises]]
        name = "childs_pose"
    """
    with pytest.raises(ConfigError) as err:
        _prog(text)
    msg = str(err.value)
    assert msg.startswith(
        "cfg.toml: programme.exercises[0]: Child's pose is to be avoided by extension responders"
    )
    assert "override" in msg and msg.endswith(".")


def test_the_clinician_override_is_accepted_only_complete_and_is_recorded():
    text = """
        [programme]
        responder = "flexion"
        [[programme.exercises]]
        name = "prone_press_up"
        reps = 8
        override = true
        override_by = "clinician-07"
        override_reason = "tolerated well in clinic"
    """
    p = _prog(text)
    assert [o.to_dict() for o in p.overrides] == [
        {
            "exercise": "prone_press_up",
            "responder": "flexion",
            "by": "clinician-07",
            "reason": "tolerated well in clinic",
        }
    ]
    assert p.to_dict()["overrides"][0]["by"] == "clinician-07"
    assert any("accepted by clinician-07" in w for w in p.warnings)
    with pytest.raises(ConfigError, match="override_reason must say why"):
        _prog(text.replace('override_reason = "tolerated well in clinic"', ""))
    with pytest.raises(ConfigError, match="override_by must name the clinician"):
        _prog(text.replace('"clinician-07"', '"Dr Jane Smith"'))


def test_caution_loads_with_a_warning_and_neither_needs_no_override():
    p = _prog(
        """
        [programme]
        responder = "flexion"
        [[programme.exercises]]
        name = "hip_flexor_kneeling"
        """
    )
    assert p.warnings and "caution for flexion responders" in p.warnings[0]
    p2 = _prog('[programme]\nresponder = "neither"\n[[programme.exercises]]\nname = "childs_pose"\n')
    assert not p2.warnings
    with pytest.raises(ConfigError, match="override is only for an exercise to be avoided"):
        _prog('[programme]\n[[programme.exercises]]\nname = "squat"\noverride = true\n')


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ('name = "moonwalk"', "name must be an exercise of the catalogue"),
        ('name = "squat"\nholds = 3', "squat is done in reps, so it takes reps"),
        ('name = "childs_pose"\nreps = 3', "is a hold, so it takes holds"),
        ('name = "squat"\nsides = ["left"]', "takes no sides"),
        ('name = "clamshell"\nsides = ["up"]', "sides must be a list"),
        ('name = "squat"\nreps = 0', "reps must be a whole number from 1 to 100"),
        ('name = "squat"\ncolour = "red"', "unknown key 'colour'"),
    ],
)
def test_mistakes_are_one_sentence_naming_the_entry(entry: str, match: str):
    with pytest.raises(ConfigError, match=match) as err:
        _prog(f"[programme]\n[[programme.exercises]]\n{entry}\n")
    assert str(err.value).startswith("cfg.toml: programme.exercises[0]")


def test_responder_must_be_one_of_three():
    with pytest.raises(ConfigError, match="programme.responder must be one of flexion, extension, neither"):
        _prog('[programme]\nresponder = "both"\n[[programme.exercises]]\nname = "squat"\n')


def test_session_config_carries_the_programme(tmp_path: Path):
    cfg = tmp_path / "session.toml"
    cfg.write_text(BASE + '\n[programme]\nresponder = "flexion"\n[[programme.exercises]]\nname = "squat"\n')
    sc = load_config(cfg, env={})
    assert sc.programme is not None and sc.programme.items[0].exercise == "squat"
    assert parse_config(tomllib.loads(BASE), "x.toml", env={}).programme is None


def test_a_clinic_adds_an_exercise_in_its_folder(tmp_path: Path):
    doc = (Path(__file__).parents[1] / "docs" / "exercises.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]  # the worked example of docs/exercises.md
    folder = tmp_path / "exercises"
    folder.mkdir()
    (folder / "standing_hip_extension.toml").write_text(example)
    p = _prog(
        '[programme]\nexercise_folder = "exercises"\n[[programme.exercises]]\n'
        'name = "standing_hip_extension"\nsides = ["left"]\nreps = 10\n',
        base_dir=tmp_path,
    )
    assert p.items[0].exercise == "standing_hip_extension" and p.items[0].reps == 10
    assert p.catalogue is not None and p.catalogue["standing_hip_extension"].primary.angle == "hip_extension"
    (folder / "broken.toml").write_text(example.replace('"hip_extension"', '"knee_flexion"'))
    with pytest.raises(ConfigError, match=r"broken.toml: .*primary.angle must be a known angle"):
        _prog(
            '[programme]\nexercise_folder = "exercises"\n[[programme.exercises]]\nname = "squat"\n', tmp_path
        )


def test_results_become_exercise_points():
    import math

    from hipback.ingest.influx import schema
    from hipback.ingest.programme import exercise_rows
    from hipback.processing.exercises.engine import RepResult

    rep = RepResult(
        "glute_bridge",
        None,
        "rep",
        1,
        10.0,
        12.5,
        math.radians(35.0),
        math.radians(36.0),
        0.4,
        2.1,
        True,
        ("lumbar_extension",),
        (),
        False,
        "keep your back flat, lift with your buttocks",
        t_onset=9.8,
    )
    hold = RepResult(
        "hip_flexor_kneeling",
        "left",
        "hold",
        1,
        30.0,
        55.0,
        math.radians(15.0),
        math.radians(18.0),
        25.0,
        24.0,
        True,
        (),
        (),
        True,
        None,
        too_short=False,
    )
    rows = exercise_rows([rep, hold], 1_700_000_000.0, {"hip_flexor_kneeling": 25.0})
    pts = schema.exercise_points(rows, "P-0042", "s1")
    assert [p.measurement for p in pts] == ["exercise_reps", "exercise_holds"]
    assert pts[0].tags["work_side"] == "both" and pts[1].tags["work_side"] == "left"
    assert pts[0].fields["rules_broken"] == "lumbar_extension" and pts[0].fields["counted"] is False
    assert pts[0].fields["primary_peak_deg"] == 35.0 and pts[0].time_ns == int((1_700_000_000.0 + 9.8) * 1e9)
    assert pts[1].fields["target_s"] == 25.0 and pts[1].fields["hold_s"] == 25.0


def test_the_session_runner_guides_a_configured_programme(tmp_path: Path):
    """A session config with a programme: the live runner builds the programme runner into its processor and
    its announcements, counts and cues become session events (stored and shown live)."""
    from types import SimpleNamespace

    from hipback.ingest.session.runner import SessionRunner
    from hipback.simulator.exercises import ExerciseSet, simulate_programme

    cfg = tmp_path / "session.toml"
    cfg.write_text(
        BASE
        + '\n[programme]\nresponder = "neither"\n[[programme.exercises]]\nname = "glute_bridge"\nreps = 3\n'
    )
    sim = simulate_programme([ExerciseSet("glute_bridge", None, 4, faults=(1,))], seed=5)
    rec = sim.recording
    runner = SessionRunner(load_config(cfg, env={}), store=None)
    runner.links = {p: SimpleNamespace(sensor_kind=s.kind, rate_hz=s.rate_hz) for p, s in rec.streams.items()}
    proc = runner._make_processor()
    assert proc is not None and proc.exercises is not None
    runner._processor = proc
    for k in range(0, len(rec.streams["pelvis"]), 50):  # interleaved, as live sensors arrive
        for s in rec.streams.values():
            proc.feed(s.slice(k, k + 50))
        runner._poll(force=True)
    proc.finish()
    runner._poll(force=True)
    texts = [e.message for e in runner.events if e.kind == "exercise"]
    assert texts[0] == "Next: Glute bridge, 3 reps."
    assert "keep your back flat, lift with your buttocks" in texts
    assert "Glute bridge done." in texts and texts[-1] == "Programme done. Well done!"
    assert [e.kind for e in runner.events][0] == "programme"
    # the whole programme said at the start, in the words each announcement then uses
    assert runner.events[0].message == (
        "Exercise programme: 1. Glute bridge, 3 reps. Each is announced when it is next.")

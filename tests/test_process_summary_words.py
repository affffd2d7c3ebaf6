"""The calibration state in ``hipback process``'s summary line is said in words; summary.json keeps the
processing's state value for programs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from hipback.ingest import cli
from hipback.ingest.commands import process
from hipback.ingest.files import write_recording
from hipback.simulator import SensorSpec, simulate
from hipback.simulator.scenarios import SCENARIOS, Scenario, Step

PLACES = ("pelvis", "thigh_left", "thigh_right")
REAL = Path(__file__).resolve().parents[2] / "shared/data/movella-dot-walk"
REAL_WALK = {"pelvis": "4_D422CD003437", "thigh_left": "3_D422CD003235", "thigh_right": "5_D422CD0034C1"}


def _recording(root: Path, steps: list[Step]) -> list[str]:
    sensors = [SensorSpec(p, kind="quat", rate_hz=100.0) for p in PLACES]
    sim = simulate(Scenario("walk", steps, SCENARIOS["walk"]), seed=7, sensors=sensors)
    write_recording(sim.recording, root)
    return [f"{p}={root / p}.csv" for p in PLACES]


def _process(inputs: list[str], out: Path, capsys) -> tuple[list[str], dict]:
    capsys.readouterr()
    assert cli.run(["process", *inputs, "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    return lines, json.loads((out / "summary.json").read_text())


def test_a_walk_without_standing_still_says_so_in_words(tmp_path, capsys):
    inputs = _recording(tmp_path / "rec", [Step("walk", 12.0)])
    lines, summary = _process(inputs, tmp_path / "out", capsys)
    processed = next(line for line in lines if line.startswith("Processed "))
    assert processed.endswith(" s (not calibrated: no standing-still period).")
    assert "searching_standing" not in "\n".join(lines)
    assert summary["calibration_state"] == "searching_standing"


def test_a_calibrated_session_says_calibrated(tmp_path, capsys):
    inputs = _recording(tmp_path / "rec", [Step("stand", 5.0), Step("walk", 12.0)])
    lines, summary = _process(inputs, tmp_path / "out", capsys)
    assert any(line.startswith("Processed ") and line.endswith(" s (calibrated).") for line in lines)
    assert summary["calibration_state"] == "calibrated"


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real recordings not present at {REAL}")
def test_the_real_movella_walk_without_standing(tmp_path, capsys):
    inputs = [f"{p}={REAL / f'{s}_20231031_124850.csv'}" for p, s in REAL_WALK.items()]
    lines, summary = _process(inputs, tmp_path / "out", capsys)
    assert "Processed 8 s (not calibrated: no standing-still period)." in lines
    assert summary["calibration_state"] == "searching_standing"


def test_every_state_and_a_sensor_left_out_read_as_words(tmp_path):
    from hipback.ingest.files import read_recording
    from hipback.processing.pipeline import ProcessorConfig, process_recording

    _recording(tmp_path / "rec", [Step("stand", 5.0), Step("walk", 6.0)])
    rec = read_recording({p: tmp_path / "rec" / f"{p}.csv" for p in PLACES})
    res = process_recording(rec, ProcessorConfig())
    assert res.calibration_state == "calibrated" and set(res.calibration) == set(PLACES)
    assert process.calibration_words(res) == "calibrated"
    one_missing = dataclasses.replace(res, calibration={p: c for p, c in res.calibration.items()
                                                        if p != "thigh_left"})
    assert process.calibration_words(one_missing) == (
        "calibrated, except thigh_left (no valid samples while standing)")
    none = dataclasses.replace(res, calibration={})
    assert process.calibration_words(none).startswith("not calibrated: no sensor")
    for state in ("searching_standing", "waiting_for_movement", "calibrating"):
        words = process.calibration_words(dataclasses.replace(res, calibration_state=state))
        assert words.startswith("not calibrated: ") and "_" not in words
    assert process.calibration_words(dataclasses.replace(res, calibration_state="new_state")) == "new state"
    first = process.human_summary(dataclasses.replace(res, calibration_state="waiting_for_movement"))[0]
    assert "waiting_for_movement" not in first and "not calibrated" in first

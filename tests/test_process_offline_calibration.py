"""``hipback process`` takes its standing calibration from a standing period anywhere in the recording: a
recording that starts sitting, then walks for over a minute before the patient stands still, keeps its angles,
strides and activity from the first sample (a live session releases rows older than 60 s uncalibrated)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.commands import process
from hipback.ingest.files import write_recording
from hipback.processing import ProcessorConfig, process_recording
from hipback.simulator import simulate
from hipback.simulator.scenarios import SCENARIOS, Scenario, Step


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, object]:
    """Sitting 20 s, walking 70 s, standing 8 s: the only standing-still period comes after 90 s."""
    scen = Scenario("walk", [Step("sit", 20.0), Step("walk", 70.0), Step("stand", 8.0)], SCENARIOS["walk"])
    sim = simulate(scen, seed=3)
    out = tmp_path_factory.mktemp("late") / "rec"
    write_recording(sim.recording, out)
    return out, sim


def test_a_late_standing_period_calibrates_the_whole_recording(folder, tmp_path: Path) -> None:
    rec_dir, sim = folder
    inputs = [f"{p}={rec_dir / p}.csv" for p in ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")]
    res = process.run(inputs, tmp_path / "o")
    live = process_recording(sim.recording)  # the live pipeline's settings: rows wait 60 s at most
    assert res.calibration_state == live.calibration_state == "calibrated"
    ok, ok_live = np.isfinite(res.angles.hip_flexion_left), np.isfinite(live.angles.hip_flexion_left)
    assert ok.mean() > 0.99 and ok_live.mean() < 0.8  # live lost the sitting and half a minute of the walk
    assert res.angles.t[ok][0] < 0.5
    walk = [s for s in sim.truth.strides if s.steady]
    assert len(res.strides) > len(live.strides) and len(res.strides) >= 0.9 * len(walk)
    assert "sitting" in {b.label for b in res.activity} and "sitting" not in {b.label for b in live.activity}
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert not [w for w in summary["warnings"] if "calibration delayed" in w]
    # the results are those of the processor waiting as long as the recording lasts
    same = process_recording(sim.recording, ProcessorConfig(calibration_timeout_s=1e6, orientation="lagged"))
    np.testing.assert_array_equal(same.angles.hip_flexion_left, res.angles.hip_flexion_left)


def test_rows_wait_at_most_half_an_hour_offline_and_a_minute_at_least() -> None:
    """The rows waiting for the calibration are held in memory: offline they wait for the recording's length,
    but never less than a live session (60 s) nor more than half an hour."""
    from hipback.processing.pipeline import offline_calibration_wait_s

    assert offline_calibration_wait_s(10.0) == 60.0
    assert offline_calibration_wait_s(600.0) == 601.0
    assert offline_calibration_wait_s(86_400.0) == 1800.0


def test_a_stored_session_processed_again_waits_the_same_way(folder) -> None:
    """``report --reprocess`` and ``export --reprocess`` process a stored session again offline: its rows wait
    for the late standing period too."""
    from hipback.ingest.report.source import Prescription, process_stored

    _, sim = folder
    res = process_stored(sim.recording, Prescription())
    assert np.isfinite(res.angles.hip_flexion_left).mean() > 0.99

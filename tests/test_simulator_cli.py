"""``hipback simulate``: files written, truth readable, clear errors."""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _hipback(*args: str) -> subprocess.CompletedProcess:
    exe = ROOT / ".venv" / "bin" / "hipback"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hipback.ingest.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_cli_writes_sensor_files_and_truth(tmp_path: Path):
    out = tmp_path / "sim"
    res = _hipback("simulate", "--out", str(out), "--seed", "4", "--scenario", "short")
    assert res.returncode == 0, res.stderr
    assert "short" in res.stdout and "wrote" in res.stdout
    names = {p.name for p in out.iterdir()}
    assert {"truth.json", "truth_angles.csv", "truth_segments.csv"} <= names
    truth = json.loads((out / "truth.json").read_text())
    assert truth["scenario"] == "short" and truth["seed"] == 4
    assert len(truth["holds"]) == 2 and {h["arching"] for h in truth["holds"]} == {True, False}
    assert set(truth["mounting"]) == {"pelvis", "thigh_left", "thigh_right", "lumbar_upper"}
    steady = [s for s in truth["strides"] if s["steady"] and s["side"] == "left"]
    want = truth["patient"]["peak_hip_extension_left_deg"]
    assert steady and all(abs(s["peak_hip_extension_deg"] - want) < 0.5 for s in steady)
    with (out / "truth_angles.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] == "time_s" and "hip_flexion_left_deg" in rows[0]
    assert float(rows[-1][0]) == pytest.approx(truth["duration_s"], abs=0.02)
    # the truth reads back
    from hipback.simulator import GroundTruth

    loaded = GroundTruth.load(out)
    assert (
        len(loaded.strides) == len(truth["strides"])
        and loaded.holds[1].arching == truth["holds"][1]["arching"]
    )
    # the command it prints to process the folder works as printed
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("Process it: hipback process ")]
    again = _hipback(*shlex.split(line.removeprefix("Process it: hipback ")))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "sim-results" / "summary.json").is_file() and "Left leg: " in again.stdout
    assert np.degrees(loaded.holds[0].hip_extension_rad) == pytest.approx(
        truth["holds"][0]["hip_extension_deg"]
    )
    # the sensor files read back as the same recording
    from hipback.ingest.files import read_recording

    rec = read_recording(out)
    assert set(rec.streams) == {"pelvis", "thigh_left", "thigh_right", "lumbar_upper"}
    from hipback.simulator import simulate

    again = simulate("short", seed=4)
    for p, st in again.recording.streams.items():
        assert len(rec.streams[p]) == len(st)
        np.testing.assert_allclose(rec.streams[p].acc, st.acc, atol=1e-6)


def test_cli_unknown_scenario_is_one_sentence(tmp_path: Path):
    res = _hipback("simulate", "--out", str(tmp_path / "x"), "--scenario", "marathon")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "marathon" in res.stderr and "clinic_visit" in res.stderr
    assert not (tmp_path / "x").exists()


def test_cli_lists_scenarios(tmp_path: Path):
    res = _hipback("simulate", "--out", str(tmp_path), "--list-scenarios")
    assert res.returncode == 0
    for name in ("clinic_visit", "walk", "stretch", "short", "day"):
        assert name in res.stdout


def test_run_rejects_a_file_as_output_folder(tmp_path: Path):
    from hipback.ingest.commands.simulate import run

    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ConfigError):
        run(out=f, seed=1, scenario="short")


def test_cli_realistic_patient_wears_the_chosen_device(tmp_path: Path):
    """``--realistic``: the realistic patient (same seed, same patient) in the chosen device's data format;
    the easy default differs; every file is private (0600); an unknown device is one sentence, exit 2."""
    import json as _json
    import stat

    from hipback.ingest.files import read_recording

    out = tmp_path / "real"
    args = ("--seed", "5", "--scenario", "short", "--realistic", "--device", "movella_dot")
    res = _hipback("simulate", "--out", str(out), *args)
    assert res.returncode == 0, res.stderr
    assert "realistic, movella_dot" in res.stdout
    truth = _json.loads((out / "truth.json").read_text())
    assert truth["patient"]["patient_id"] == "real-005"
    assert truth["patient"]["soft_tissue"] > 0 and truth["patient"]["heel_strike_delay_s"] > 0
    rec = read_recording(out)
    assert {s.kind for s in rec.streams.values()} == {"quat"}
    assert {s.rate_hz for s in rec.streams.values()} == {60.0}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    easy = tmp_path / "easy"
    assert _hipback("simulate", "--out", str(easy), "--seed", "5", "--scenario", "short").returncode == 0
    assert _json.loads((easy / "truth.json").read_text())["patient"]["soft_tissue"] == 0
    again = tmp_path / "again"
    run_again = _hipback("simulate", "--out", str(again), "--seed", "5", "--scenario", "short", "--realistic")
    assert run_again.returncode == 0
    assert _json.loads((again / "truth.json").read_text())["patient"] == truth["patient"]
    bad = _hipback("simulate", "--out", str(tmp_path / "bad"), "--realistic", "--device", "fitbit")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "fitbit" in bad.stderr and "movella_dot" in bad.stderr
    assert not (tmp_path / "bad").exists()

"""``hipback simulate``: an earlier recording in --out is replaced only with --overwrite, a failed write
leaves it whole, --list-scenarios needs no --out, and --device without --realistic is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hipback.ingest.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _hipback(*args: str) -> subprocess.CompletedProcess:
    exe = ROOT / ".venv" / "bin" / "hipback"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hipback.ingest.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """A folder written by ``hipback simulate`` (seed 4, short), to be copied by the tests."""
    out = tmp_path_factory.mktemp("earlier") / "sim"
    res = _hipback("simulate", "--out", str(out), "--seed", "4", "--scenario", "short")
    assert res.returncode == 0, res.stderr
    return out


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_an_earlier_recording_is_refused_and_kept(earlier: Path, tmp_path: Path):
    out = _copy(earlier, tmp_path / "sim")
    before = _contents(out)
    res = _hipback("simulate", "--out", str(out), "--seed", "5", "--scenario", "short")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    msg = res.stderr.strip()
    assert msg.count("\n") == 0 and str(out) in msg and "--overwrite" in msg
    assert _contents(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim"]  # no temporary folder left


def test_a_recording_file_of_another_name_is_refused(earlier: Path, tmp_path: Path):
    out = tmp_path / "sim"
    out.mkdir()
    (out / "sensor_a.csv").write_bytes((earlier / "pelvis.csv").read_bytes())
    res = _hipback("simulate", "--out", str(out), "--scenario", "short")
    assert res.returncode == 2 and "sensor_a.csv" in res.stderr
    assert [p.name for p in out.iterdir()] == ["sensor_a.csv"]


def test_other_files_in_the_folder_are_no_obstacle_and_are_kept(tmp_path: Path):
    out = tmp_path / "sim"
    out.mkdir()
    (out / "notes.txt").write_text("visit 3")
    res = _hipback("simulate", "--out", str(out), "--seed", "4", "--scenario", "short")
    assert res.returncode == 0, res.stderr
    assert (out / "notes.txt").read_text() == "visit 3"
    assert (out / "pelvis.csv").is_file() and (out / "truth.json").is_file()


def test_overwrite_replaces_the_whole_earlier_session(earlier: Path, tmp_path: Path):
    out = _copy(earlier, tmp_path / "sim")
    (out / "truth_exercises.json").write_text("{}")  # the truth of an earlier exercises simulation
    (out / "notes.txt").write_text("visit 3")
    before = _contents(out)
    res = _hipback("simulate", "--out", str(out), "--seed", "5", "--scenario", "short", "--overwrite")
    assert res.returncode == 0, res.stderr
    after = _contents(out)
    assert after["pelvis.csv"] != before["pelvis.csv"]
    assert '"seed": 5' in after["truth.json"].decode()
    assert "truth_exercises.json" not in after  # no truth of another session is left beside the new one
    assert after["notes.txt"] == b"visit 3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim"]


def test_a_failed_overwrite_leaves_the_earlier_session_whole(earlier: Path, tmp_path: Path, monkeypatch):
    from hipback.ingest.commands.simulate import run
    from hipback.simulator import GroundTruth

    out = _copy(earlier, tmp_path / "sim")
    before = _contents(out)

    def full_disk(self, folder):
        (Path(folder) / "truth.json").write_text("{")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(GroundTruth, "save", full_disk)
    with pytest.raises(OSError):
        run(out=out, seed=5, scenario="short", overwrite=True)
    assert _contents(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim"]
    with pytest.raises(OSError):
        run(out=tmp_path / "new", seed=5, scenario="short")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim"]  # no new folder that looks complete


def test_list_scenarios_needs_no_out_and_simulating_does():
    res = _hipback("simulate", "--list-scenarios")
    assert res.returncode == 0, res.stderr
    assert "clinic_visit" in res.stdout and "exercises" in res.stdout
    res = _hipback("simulate", "--scenario", "short")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--out" in res.stderr and res.stderr.strip().count("\n") == 0


def test_device_without_realistic_is_refused(tmp_path: Path):
    res = _hipback("simulate", "--out", str(tmp_path / "x"), "--scenario", "short", "--device", "diy_bmi270")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--realistic" in res.stderr and "diy_bmi270" in res.stderr
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError):
        from hipback.ingest.commands.simulate import run

        run(out=tmp_path / "x", scenario="short", device="movella_dot")

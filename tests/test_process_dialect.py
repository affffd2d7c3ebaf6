"""``hipback process --dialect``: exports whose columns cannot tell a Movella DOT export (gyroscope in deg/s)
from an Xsens MT Manager one (rad/s) are refused with a sentence naming the option, and read in the dialect
it names; another name, the option with a recording folder, or a file whose content marks the other dialect
are one sentence each (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest import cli
from hipback.ingest.files import write_recording
from hipback.simulator import simulate
from tests.data_gen import write_movella_dot


def _ambiguous_export(stream, path: Path) -> None:
    """``stream`` as a DOT export without any DOT mark (no Status column, no trailing comma): counter,
    SampleTimeFine in us, acc in m/s^2, gyr in deg/s."""
    lines = ["PacketCounter,SampleTimeFine,Acc_X,Acc_Y,Acc_Z,Gyr_X,Gyr_Y,Gyr_Z"]
    us = np.round(stream.t * 1e6).astype(np.int64) + 1_000_000
    for i in range(len(stream)):
        vals = [*stream.acc[i], *np.rad2deg(stream.gyr[i])]
        lines.append(f"{i},{us[i]}," + ",".join(repr(float(v)) for v in vals))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    sim = simulate("walk", seed=4, calib_s=8.0, walk_s=20.0, stand_s=4.0)
    base = tmp_path_factory.mktemp("exports")
    out = {}
    for p in ("pelvis", "thigh_left", "thigh_right"):
        stream = sim.recording.streams[p]
        assert stream.kind == "raw"
        out[p] = base / f"{p}.csv"
        _ambiguous_export(stream, out[p])
    write_recording(sim.recording, base / "rec")
    out["folder"] = base / "rec"
    return out


def _run(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    capsys.readouterr()
    code = cli.run(["process", *args])
    said = capsys.readouterr()
    return code, said.out + said.err


def _pairs(files: dict[str, Path]) -> list[str]:
    return [f"{p}={files[p]}" for p in ("pelvis", "thigh_left", "thigh_right")]


def _one_sentence(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hipback: ") and "Traceback" not in text, text
    return lines[0]


def test_ambiguous_exports_are_refused_naming_the_option(files, tmp_path, monkeypatch, capsys) -> None:
    code, said = _run(["--out", str(tmp_path / "r"), *_pairs(files)], monkeypatch, capsys)
    line = _one_sentence(said)
    assert code == 2 and "--dialect movella_dot or --dialect xsens_mt" in line, said
    assert not (tmp_path / "r").exists()


def test_the_dialect_given_reads_them(files, tmp_path, monkeypatch, capsys) -> None:
    code, said = _run(["--out", str(tmp_path / "r"), "--dialect", "movella_dot", *_pairs(files)],
                      monkeypatch, capsys)
    assert code == 0, said
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert {s["device"] for s in summary["recording_sensors"].values()} == {"movella_dot"}
    assert summary["calibration_state"] == "calibrated" and summary["n_strides_left"] > 0, summary
    assert not any("cannot produce" in w for w in summary["warnings"]), summary["warnings"]
    # read as MT exports, the deg/s values are taken as rad/s: walking turns beyond the full scale
    code, said = _run(["--out", str(tmp_path / "x"), "--dialect", "xsens_mt", *_pairs(files)],
                      monkeypatch, capsys)
    assert code == 0, said
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert {s["device"] for s in summary["recording_sensors"].values()} == {"xsens_mt"}
    assert any("cannot produce (gyr" in w for w in summary["warnings"]), summary["warnings"]


@pytest.mark.parametrize("name", ["dot", "hipback", "Movella_DOT"])
def test_an_unknown_dialect_is_one_sentence(name, files, tmp_path, monkeypatch, capsys) -> None:
    code, said = _run(["--out", str(tmp_path / "r"), "--dialect", name, *_pairs(files)], monkeypatch, capsys)
    line = _one_sentence(said)
    assert code == 2 and f"unknown dialect '{name}' for --dialect; use movella_dot or xsens_mt" in line, said


def test_the_dialect_with_a_recording_folder_is_one_sentence(files, tmp_path, monkeypatch, capsys) -> None:
    code, said = _run(["--out", str(tmp_path / "r"), "--dialect", "xsens_mt", str(files["folder"])],
                      monkeypatch, capsys)
    line = _one_sentence(said)
    assert code == 2 and "hipback's format" in line and "--dialect" in line, said


def test_a_file_of_the_other_dialect_is_refused(files, tmp_path, monkeypatch, capsys) -> None:
    dot = tmp_path / "dot.csv"
    write_movella_dot(dot, 3000, rate_hz=60.0)  # Quat_W, Status, trailing comma: a DOT export
    pairs = [f"pelvis={files['pelvis']}", f"thigh_left={files['thigh_left']}", f"thigh_right={dot}"]
    code, said = _run(["--out", str(tmp_path / "r"), "--dialect", "xsens_mt", *pairs], monkeypatch, capsys)
    line = _one_sentence(said)
    assert code == 2 and str(dot) in line and "marks it as a Movella DOT export" in line, said

"""``summary.json`` of ``hipback process`` lists each gap once: ``recording_gaps`` holds the gaps found while
reading the files, ``gaps`` those plus the gaps processing found beyond them (the processing sees the files'
holes again as long time steps: they are not listed a second time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hipback.ingest import cli
from hipback.ingest.files import write_recording
from hipback.processing.pipeline import merge_gaps
from hipback.processing.types import Gap
from hipback.simulator import simulate


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    sim = simulate("walk", seed=4, calib_s=8.0, walk_s=20.0, stand_s=4.0)
    out = tmp_path_factory.mktemp("rec") / "walk"
    write_recording(sim.recording, out)
    f = out / "thigh_right.csv"
    lines = f.read_text().split("\n")
    header = next(i for i, line in enumerate(lines) if line.startswith("time_s,"))
    del lines[header + 1600 : header + 1620]  # 20 samples lost in the middle of the walk
    f.write_text("\n".join(lines))
    return out


def test_a_gap_read_from_a_file_is_listed_once(folder, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    assert cli.run(["process", "--out", str(tmp_path / "r"), str(folder)]) == 0, capsys.readouterr()
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    (read,) = summary["recording_gaps"]
    assert read["placement"] == "thigh_right" and read["missing"] == 20, read
    assert summary["gaps"] == [read]


def test_gaps_processing_found_beyond_the_files_are_kept() -> None:
    read = [Gap("thigh_right", 16.40, 16.62, 21, "time step of 0.22 s at 100 Hz"),
            Gap("pelvis", 3.0, 3.5, 49, "disconnect")]
    found = [
        *read,
        Gap("thigh_right", 16.40, 16.62, 21),  # the same hole as a time step
        Gap("pelvis", 3.1, 3.4, 29),  # inside a declared gap that spans more than the samples' step
        Gap("pelvis", 3.5, 3.8, 29),  # begins where the file's gap ends: another gap
        Gap("thigh_left", 16.40, 16.62, 21),  # another sensor
    ]
    assert merge_gaps(read, found) == [*read, found[4], found[5]]
    assert merge_gaps([], found[2:]) == found[2:]

"""``hipback process --out DIR FOLDER``: a recording folder in hipback's format (``hipback simulate`` writes
one) is processed as its placements name it, with the results of the same files given as pairs; a folder of
other files, a folder beside pairs or a placement process does not know are one sentence each (exit 2)."""

from __future__ import annotations

import json
import shutil

import pytest

from hipback.ingest import cli
from hipback.ingest.files import recording_files, write_recording
from hipback.ingest.store import LocalStore
from hipback.simulator import VirtualPatient, simulate
from tests.data_gen import write_movella_dot

PATIENT = "P-FOLDER-7"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    sim = simulate("walk", seed=4, patient=VirtualPatient(patient_id=PATIENT), calib_s=8.0, walk_s=25.0,
                   stand_s=4.0)
    out = tmp_path_factory.mktemp("rec") / "walk"
    write_recording(sim.recording, out)
    return out


class _Said:
    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code, self.output = exit_code, output


def _invoke(args: list[str], monkeypatch, capsys) -> _Said:
    """``hipback process ARGS`` as the installed command runs it (its exit code, what it printed)."""
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    capsys.readouterr()
    code = cli.run(["process", *args])
    said = capsys.readouterr()
    return _Said(code, said.out + said.err)


def test_a_folder_gives_the_results_of_its_files_as_pairs(folder, tmp_path, monkeypatch, capsys):
    pairs = [f"{p}={f}" for p, f in recording_files(folder).items()]
    assert sorted(p.split("=")[0] for p in pairs) == ["lumbar_upper", "pelvis", "thigh_left", "thigh_right"]
    store = str(tmp_path / "s.sqlite")
    a = _invoke(["--out", str(tmp_path / "a"), str(folder), "--store", store], monkeypatch, capsys)
    b = _invoke(["--out", str(tmp_path / "b"), *pairs], monkeypatch, capsys)
    assert a.exit_code == 0 and b.exit_code == 0, (a.output, b.output)
    assert "Left leg: " in a.output
    for name in ("angles.csv", "strides.csv", "holds.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with LocalStore(tmp_path / "s.sqlite", readonly=True) as st:
        (session,) = st.sessions()
    assert session["patient_id"] == PATIENT  # from the folder's session.json


def test_without_session_json_the_file_headers_name_the_placements(folder, tmp_path, monkeypatch, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for i, (_, f) in enumerate(sorted(recording_files(folder).items())):
        shutil.copy(f, bare / f"sensor{i}.csv")  # file names that say nothing
    (bare / "notes.csv").write_text("a,b\n1,2\n")  # not a hipback file: passed over
    assert {p: f.name for p, f in recording_files(bare).items()} == {
        "lumbar_upper": "sensor0.csv", "pelvis": "sensor1.csv", "thigh_left": "sensor2.csv",
        "thigh_right": "sensor3.csv"}
    res = _invoke(["--out", str(tmp_path / "out"), str(bare)], monkeypatch, capsys)
    assert res.exit_code == 0, res.output
    assert "Left leg: " in res.output


def test_folders_that_are_not_a_recording_are_one_sentence(folder, tmp_path, monkeypatch, capsys):
    vendor = tmp_path / "dot"
    vendor.mkdir()
    write_movella_dot(vendor / "4_D422CD003437_20231031_133150.csv", n=300, seed=1)
    res = _invoke(["--out", str(tmp_path / "o1"), str(vendor)], monkeypatch, capsys)
    assert res.exit_code == 2
    assert res.output.strip() == (
        f"hipback: {vendor} holds no recording in hipback's format (it holds "
        "4_D422CD003437_20231031_133150.csv); give each sensor's file with its placement, for example "
        "pelvis=FILE thigh_left=FILE thigh_right=FILE.")

    both = [str(folder), f"pelvis={folder / 'pelvis.csv'}"]
    res = _invoke(["--out", str(tmp_path / "o2"), *both], monkeypatch, capsys)
    assert res.exit_code == 2
    assert "give either one recording folder" in res.output and "not both" in res.output

    odd = tmp_path / "odd"
    shutil.copytree(folder, odd)
    session = json.loads((odd / "session.json").read_text())
    session["streams"]["shank_left"] = session["streams"].pop("lumbar_upper")
    (odd / "session.json").write_text(json.dumps(session))
    res = _invoke(["--out", str(tmp_path / "o3"), str(odd)], monkeypatch, capsys)
    assert res.exit_code == 2
    assert "holds a sensor placed at 'shank_left', which process does not know" in res.output

    (odd / "session.json").write_text("{not json")
    res = _invoke(["--out", str(tmp_path / "o4"), str(odd)], monkeypatch, capsys)
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "session.json" in res.output and "not valid JSON" in res.output
    for o in ("o1", "o2", "o3", "o4"):
        assert not (tmp_path / o).exists()  # nothing written for a refused input

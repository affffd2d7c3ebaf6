"""``hipback report`` (and ``hipback export``) given the wrong thing: a mistyped results folder, a file that
is not a local store, an id prefix too short. Each is one sentence naming what was given: exit code 2 for a
wrong name or path, 3 for a file that is not a usable store (as every command that opens a store says)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hipback.ingest import cli
from hipback.ingest.store import LocalStore


@pytest.fixture()
def store(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "hipback.sqlite"
    with LocalStore(path) as st:
        sid = st.open_session("P-0001")
        st.open_session("P-0002", session_id="ab")  # a whole id shorter than 4 characters
    return path, sid


def _run(args: list[str], capsys) -> tuple[int, str]:
    code = cli.run(args)
    err = capsys.readouterr().err
    line = err.strip()
    assert line.startswith("hipback: ") and "\n" not in line and "Traceback" not in err, err
    return code, line


def test_a_mistyped_results_folder_is_named_as_not_found(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no hipback.sqlite here
    out = str(tmp_path / "r.html")
    code, line = _run(["report", str(tmp_path / "resutls"), "--out", out], capsys)
    assert code == 2
    assert f"no folder '{tmp_path / 'resutls'}' was found" in line
    assert "report takes a folder written by 'hipback process'" in line and "does not exist" not in line
    code, line = _run(["report", "resutls", "--out", out], capsys)
    assert code == 2 and "'resutls' is neither a folder here nor a session" in line
    assert "no hipback.sqlite here" in line
    assert not Path(out).exists()


def test_a_folder_given_with_store_is_not_looked_up_as_a_session(store, tmp_path, capsys):
    path, _ = store
    (tmp_path / "out").mkdir()
    out = str(tmp_path / "r.html")
    code, line = _run(["report", str(tmp_path / "out"), "--out", out, "--store", str(path)], capsys)
    assert code == 2 and "is reported without --store" in line
    code, line = _run(["report", str(tmp_path / "gone"), "--out", out, "--store", str(path)], capsys)
    assert code == 2 and "no folder" in line and "not in the local store" not in line


@pytest.mark.parametrize("command", [["report", "latest", "--out", "r.html"],
                                     ["export", "latest", "--format", "csv", "--out", "x"],
                                     ["sync"]])
def test_a_store_that_is_not_one_is_said_alike_by_every_command(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIPBACK_INFLUX_URL", "http://127.0.0.1:9")
    (tmp_path / "some.csv").write_text("t,ax,ay,az\n0,0,0,9.81\n")
    (tmp_path / "folder").mkdir()
    for given, code_says in [("some.csv", (3, "is not a database (not an SQLite file)")),
                             ("folder", (2, "is a folder, not a store file")),
                             ("missing.sqlite", (2, "does not exist"))]:
        code, line = _run([*command, "--store", given], capsys)
        assert (code, code_says[1] in line) == (code_says[0], True), line
        assert given in line
    assert (tmp_path / "some.csv").read_text() == "t,ax,ay,az\n0,0,0,9.81\n"
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("command", [["report", "{given}", "--out", "r.html"],
                                     ["export", "{given}", "--format", "csv", "--out", "x"]])
def test_a_prefix_shorter_than_4_characters_says_so(command, store, tmp_path, monkeypatch, capsys):
    path, sid = store
    monkeypatch.chdir(tmp_path)
    args = [a.format(given=sid[:2]) for a in command]
    code, line = _run([*args, "--store", str(path)], capsys)
    assert code == 2
    assert f"session '{sid[:2]}' is not in the local store" in line
    assert "a prefix of an id needs at least 4 characters" in line
    # a whole id of 2 characters is found (it fails later, on having no samples, not on its length)
    code, line = _run([*[a.format(given="ab") for a in command], "--store", str(path)], capsys)
    assert "at least 4 characters" not in line


def test_a_session_without_samples_has_nothing_to_export(store, tmp_path, capsys):
    path, sid = store
    for fmt in ("csv", "sto"):
        args = ["export", sid, "--format", fmt, "--out", str(tmp_path / fmt), "--store", str(path)]
        code, line = _run(args, capsys)
        assert code == 2 and "has no stored samples" in line and "report" not in line
    code, line = _run(["report", sid, "--out", str(tmp_path / "r.html"), "--store", str(path)], capsys)
    assert code == 2 and "has no stored samples" in line


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    from hipback.ingest.files import write_recording
    from hipback.simulator import VirtualPatient, simulate

    root = tmp_path_factory.mktemp("processed")
    sim = simulate("short", 3, VirtualPatient(patient_id="P-0003"), walk_s=10.0)
    write_recording(sim.recording, root / "rec")
    inputs = [f"{p}={root / 'rec' / f'{p}.csv'}" for p in sim.recording.streams]
    assert cli.run(["process", *inputs, "--out", str(root / "out"), "--store", str(root / "s.sqlite")]) == 0
    return root / "s.sqlite"


def test_the_sto_export_says_it_is_made_from_the_raw_samples(processed, tmp_path, capsys):
    capsys.readouterr()
    with LocalStore(processed, readonly=True) as st:
        (row,) = st.sessions()
    n = row["samples"]
    assert cli.run(["export", "latest", "--format", "sto", "--out", str(tmp_path / "a"), "--store",
                    str(processed)]) == 0
    out = capsys.readouterr().out
    assert f"Orientations made from its {n} raw samples in the local store" in out
    assert "the calibration pose at the standing period of the results stored" in out
    assert "Read from the results stored" not in out
    assert cli.run(["export", "latest", "--format", "sto", "--out", str(tmp_path / "b"), "--store",
                    str(processed), "--reprocess"]) == 0
    out = capsys.readouterr().out
    assert "found by processing them again (--reprocess)" in out
    # the tables do come from the stored results, and say so
    assert cli.run(["export", "latest", "--format", "csv", "--out", str(tmp_path / "c"), "--store",
                    str(processed)]) == 0
    assert "Read from the results stored when the session was processed" in capsys.readouterr().out

"""``hipback process --store --start``: the stored session's UTC start for files that carry none (Movella DOT
exports name only the phone's local time), or in place of the files' own; without it such a recording is
stored as starting now and the user is told the local time the file names give and the option to use."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from hipback.ingest.cli import app
from hipback.ingest.files import write_recording
from hipback.ingest.store import LocalStore
from hipback.simulator import simulate
from tests.data_gen import write_movella_dot


@pytest.fixture(scope="module")
def dot_inputs(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("dot")
    files = {"pelvis": "4_D422CD003437_20231031_133150.csv",
             "thigh_left": "3_D422CD003235_20231031_133150.csv"}
    for seed, name in enumerate(files.values()):
        write_movella_dot(folder / name, n=1200, seed=seed)
    return [f"{p}={folder / name}" for p, name in files.items()]


def _process(args: list[str], tmp_path, monkeypatch):
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    store = tmp_path / "store.sqlite"
    res = CliRunner().invoke(app, ["process", *args, "--out", str(tmp_path / "out"), "--store", str(store)])
    assert res.exit_code == 0, res.output
    with LocalStore(store, readonly=True) as st:
        (session,) = st.sessions()
        first = st.load_recording(session["id"])
    return res.output, session, first


def test_a_dot_export_without_start_is_stored_as_now_and_the_user_is_told_its_local_time(
    dot_inputs, tmp_path, monkeypatch
):
    before = time.time()
    output, session, _ = _process(dot_inputs, tmp_path, monkeypatch)
    assert before - 1.0 <= session["start_utc"] <= time.time() + 1.0
    assert "its file names give 2023-10-31 13:31:50, local time of an unknown zone" in output
    assert "--start 2023-10-31T13:31:50+HH:MM" in output


@pytest.mark.parametrize("given,utc", [
    ("2023-10-31T13:31:50+01:00", "2023-10-31T12:31:50+00:00"),
    ("2023-10-31T12:31:50Z", "2023-10-31T12:31:50+00:00"),
    ("2023-10-31 08:31:50.250-04:00", "2023-10-31T12:31:50.250000+00:00"),
])
def test_start_sets_the_stored_utc_start(dot_inputs, tmp_path, monkeypatch, given, utc):
    output, session, recording = _process([*dot_inputs, "--start", given], tmp_path, monkeypatch)
    want = datetime.fromisoformat(utc).timestamp()
    assert session["start_utc"] == pytest.approx(want, abs=1e-6)
    assert recording.start_utc == pytest.approx(want, abs=1e-6)
    assert "starting now" not in output


def test_start_replaces_the_files_own_and_says_so(tmp_path, monkeypatch):
    sim = simulate("short", 2, walk_s=4.0)
    write_recording(sim.recording, tmp_path / "rec")
    inputs = [f"{p}={tmp_path / 'rec' / (p + '.csv')}" for p in sim.recording.streams]
    given = datetime(2024, 2, 29, 6, 0, 0, tzinfo=UTC)
    output, session, _ = _process([*inputs, "--start", given.isoformat()], tmp_path, monkeypatch)
    assert session["start_utc"] == pytest.approx(given.timestamp(), abs=1e-6)
    assert sim.recording.start_utc is not None and abs(sim.recording.start_utc - given.timestamp()) > 1.0
    assert "Stored as starting at 2024-02-29T06:00:00.000000Z (--start; the files say " in output

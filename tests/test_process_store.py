"""``hipback process --store`` puts a recording, its results and its points into the local store; ``hipback
sync`` then delivers them to a real ``influxd``, where they equal what processing computed."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from hipback.ingest.cli import app
from hipback.ingest.files import write_recording
from hipback.ingest.store import LocalStore
from hipback.simulator import VirtualPatient, simulate

PATIENT = "p-store-01"


@pytest.fixture(scope="module")
def session_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    patient = VirtualPatient(
        patient_id=PATIENT, peak_hip_extension_left_deg=9.0, peak_hip_extension_right_deg=15.0
    )
    sim = simulate("short", 5, patient, walk_s=16.0)
    write_recording(sim.recording, folder / "rec")
    inputs = [f"{pl}={folder / 'rec' / (pl + '.csv')}" for pl in sim.recording.streams]
    return sim, inputs


def _influx_env(monkeypatch, url: str | None, db: str | None = None) -> None:
    for name in ("URL", "DATABASE", "TOKEN", "TOKEN_FILE", "USER", "PASSWORD", "PASSWORD_FILE"):
        monkeypatch.delenv(f"HIPBACK_INFLUX_{name}", raising=False)
    if url is not None:
        monkeypatch.setenv("HIPBACK_INFLUX_URL", url)
        monkeypatch.setenv("HIPBACK_INFLUX_DATABASE", db or "hipback")


def _query(influxd, db: str, q: str) -> list[dict]:
    body = influxd.query(q, db, epoch="ns")
    return body["results"][0].get("series", [])


def test_process_store_then_sync_delivers_the_results(
    influxd, influx_db, session_files, tmp_path, monkeypatch
):
    sim, inputs = session_files
    store_path = tmp_path / "store.sqlite"
    runner = CliRunner()
    _influx_env(monkeypatch, None)
    res = runner.invoke(app, ["process", *inputs, "--out", str(tmp_path / "out"), "--store", str(store_path)])
    assert res.exit_code == 0, res.output
    assert "hipback sync" in res.output  # not sent yet, and the user is told how

    with LocalStore(store_path) as st:
        (sess,) = st.sessions()
        owed = st.outbox_stats()["pending"]
        strides = st.get_results(sess["id"], "strides")
        summary = st.get_results(sess["id"], "summary")[0]
        assert sess["patient_id"] == PATIENT and sess["samples"] > 0
        assert sess["start_utc"] == pytest.approx(sim.recording.start_utc)
    assert owed > 100 and len(strides) >= 8

    _influx_env(monkeypatch, influxd.url, influx_db)
    res = runner.invoke(app, ["sync", "--store", str(store_path)])
    assert res.exit_code == 0, res.output
    with LocalStore(store_path) as st:
        assert st.outbox_stats() == {"pending": 0, "delivered": owed, "set_aside": 0, "total": owed}

    # what InfluxDB holds equals the stored processing results
    q = (
        'SELECT count("peak_hip_extension_deg"), median("peak_hip_extension_deg") FROM "strides" '
        f'WHERE "patient" = \'{PATIENT}\' GROUP BY "side"'
    )
    series = _query(influxd, influx_db, q)
    got = {s["tags"]["side"]: s["values"][0][1:] for s in series}
    for side in ("left", "right"):
        ext = [r["peak_hip_extension_deg"] for r in strides if r["side"] == side]
        assert got[side][0] == len(ext)
        assert got[side][1] == pytest.approx(float(np.median(ext)), abs=1e-9)
        assert got[side][1] == pytest.approx(summary[f"peak_hip_extension_{side}_deg"], abs=0.01)
    # ... and the simulated truth (peak hip extension of the virtual patient) within a generous bound
    assert got["left"][1] == pytest.approx(9.0, abs=2.0)
    assert got["right"][1] == pytest.approx(15.0, abs=2.0)
    # stride times are the recording's UTC times (start_utc + session time)
    first = _query(influxd, influx_db, 'SELECT first("stride_no") FROM "strides" GROUP BY "side"')
    t_first = min(s["values"][0][0] for s in first)
    t_expected = sim.recording.start_utc + min(r["t_start"] for r in strides)
    assert t_first / 1e9 == pytest.approx(t_expected, abs=1e-3)
    sessions = _query(influxd, influx_db, 'SELECT "strides", "kind" FROM "sessions"')
    assert sessions[0]["values"][0][1] == len(strides)
    assert sessions[0]["values"][0][2] == "mixed"  # the short scenario walks and stretches
    # patient status as of the processing time: the recording (January 2026) is the latest session
    status = _query(
        influxd,
        influx_db,
        f'SELECT "days_since_last_session" FROM "patient_status" WHERE "patient" = \'{PATIENT}\'',
    )
    t_status, days = status[0]["values"][0]
    assert days == pytest.approx((t_status / 1e9 - sim.recording.start_utc) / 86400.0, abs=1e-6)

    # a replay changes nothing in InfluxDB: same points, same count
    with LocalStore(store_path) as st:
        st.outbox_requeue(set_aside=False)
    res = runner.invoke(app, ["sync", "--store", str(store_path)])
    assert res.exit_code == 0, res.output
    again = _query(
        influxd, influx_db, 'SELECT count("peak_hip_extension_deg") FROM "strides" GROUP BY "side"'
    )
    assert {s["tags"]["side"]: s["values"][0][1] for s in again} == {k: v[0] for k, v in got.items()}


def test_process_store_sends_at_once_when_influx_is_configured(
    influxd, influx_db, session_files, tmp_path, monkeypatch
):
    _, inputs = session_files
    store_path = tmp_path / "store.sqlite"
    _influx_env(monkeypatch, influxd.url, influx_db)
    res = CliRunner().invoke(
        app, ["process", *inputs, "--out", str(tmp_path / "out"), "--store", str(store_path)]
    )
    assert res.exit_code == 0, res.output
    with LocalStore(store_path) as st:
        stats = st.outbox_stats()
    assert stats["pending"] == 0 and stats["delivered"] > 100
    counts = _query(influxd, influx_db, 'SELECT count("duration_s") FROM "sessions"')
    assert counts[0]["values"][0][1] == 1


def test_process_store_keeps_the_points_when_influx_is_down(session_files, tmp_path, monkeypatch):
    """A database that cannot be reached loses nothing: the points stay queued for ``hipback sync``."""
    from tests.influx_server import free_port

    _, inputs = session_files
    store_path = tmp_path / "store.sqlite"
    _influx_env(monkeypatch, f"http://127.0.0.1:{free_port()}", "hipback")
    res = CliRunner().invoke(
        app, ["process", *inputs, "--out", str(tmp_path / "out"), "--store", str(store_path)]
    )
    assert res.exit_code == 0, res.output
    assert "stay queued" in res.output
    with LocalStore(store_path) as st:
        stats = st.outbox_stats()
    assert stats["delivered"] == 0 and stats["pending"] > 100


def test_process_and_export_write_the_same_tables(session_files, tmp_path, monkeypatch):
    """The strides, holds and activity files of ``hipback process`` and of ``hipback export --format csv`` of
    the session it stored: the same columns (times ``t_..._s``, angles ``..._deg``), booleans and rows."""
    import csv

    _influx_env(monkeypatch, None)
    sim, inputs = session_files
    runner = CliRunner()
    store = tmp_path / "s.sqlite"
    res = runner.invoke(app, ["process", *inputs, "--out", str(tmp_path / "p"), "--store", str(store)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["export", "latest", "--format", "csv", "--out", str(tmp_path / "e"), "--store",
                              str(store)])
    assert res.exit_code == 0, res.output
    headers = {}
    for name in ("strides.csv", "holds.csv", "activity.csv"):
        with open(tmp_path / "p" / name, newline="") as f:
            processed = list(csv.reader(f))
        headers[name] = processed[0]
        with open(tmp_path / "e" / name, newline="") as f:
            exported = list(csv.reader(f))
        assert processed[0] == exported[0] and len(processed) == len(exported), name
        for a, b in zip(processed[1:], exported[1:], strict=True):
            for col, x, y in zip(processed[0], a, b, strict=True):
                if x in ("true", "false", "") or not x.replace(".", "", 1).lstrip("-").isdigit():
                    assert x == y, (name, col)
                else:
                    assert float(x) == pytest.approx(float(y), abs=1e-6), (name, col)
    assert {"t_start_s", "t_end_s", "peak_hip_extension_deg"} <= set(headers["strides.csv"])
    assert "t_start" not in headers["strides.csv"] and "label" in headers["activity.csv"]

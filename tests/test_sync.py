"""The outbox and its sync worker against the real influxd: delivery, bad lines, outages, SIGKILL, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from hipback.ingest.errors import DatabaseError
from hipback.ingest.influx.lineprotocol import Point
from hipback.ingest.influx.writer import InfluxWriter
from hipback.ingest.store import LocalStore
from hipback.ingest.sync import SyncWorker
from tests.influx_server import InfluxServer, free_port

ROOT = Path(__file__).resolve().parents[1]
T0_NS = 1_763_700_000_000_000_000


def _count(server: InfluxServer, db: str, measurement: str = "angles") -> int:
    series = server.query(f'SELECT count("hip_flexion_left_deg") FROM "{measurement}"', db)["results"][0]
    return 0 if "series" not in series else int(series["series"][0]["values"][0][1])


def _fill(store: LocalStore, n: int, patient: str = "P-0100") -> str:
    sid = store.open_session(patient)
    points = [Point("angles", {"patient": patient, "session": sid},
                    {"hip_flexion_left_deg": 0.5 * i, "pelvic_tilt_deg": 10.0 - 0.01 * i}, T0_NS + i * 10**7)
              for i in range(n)]
    assert store.outbox_add(sid, points) == n
    return sid


def test_sync_delivers_and_sets_aside_bad_lines(tmp_path: Path, influxd: InfluxServer,
                                                influx_db: str) -> None:
    with LocalStore(tmp_path / "s.sqlite") as store:
        sid = _fill(store, 300)
        store.outbox_add(sid, [f'angles,patient=P-0100 hip_flexion_left_deg="oops" {T0_NS + 10**12}'])
        with InfluxWriter(influxd.url, influx_db, batch_size=128) as writer:
            seen = []
            report = SyncWorker(store, writer).sync_once(progress=lambda r: seen.append(r.delivered))
        assert (report.delivered, report.set_aside, report.pending, report.batches) == (300, 1, 0, 3)
        assert seen == [128, 256, 300]
        assert store.outbox_stats() == {"pending": 0, "delivered": 300, "set_aside": 1, "total": 301}
        assert "conflict" in store.outbox_set_aside_lines()[0]["reason"]
        assert _count(influxd, influx_db) == 300
        # a second run finds nothing to do
        with InfluxWriter(influxd.url, influx_db) as writer:
            assert SyncWorker(store, writer).sync_once().delivered == 0


_KILL_BEFORE_MARK = textwrap.dedent("""
    import os, signal, sys
    from hipback.ingest.store import LocalStore
    from hipback.ingest.influx.writer import InfluxWriter
    from hipback.ingest.sync import SyncWorker
    store = LocalStore(sys.argv[1])
    def die(ids):  # the server has answered 2xx; the process dies before recording it
        print("delivered", len(ids), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    store.outbox_mark_delivered = die
    writer = InfluxWriter(sys.argv[2], sys.argv[3], batch_size=10000)
    SyncWorker(store, writer).sync_once()
""")


def test_replay_after_sigkill_before_marking_is_idempotent(tmp_path: Path, influxd: InfluxServer,
                                                           influx_db: str) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as store:
        _fill(store, 500)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _KILL_BEFORE_MARK, str(path), influxd.url, influx_db],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == -signal.SIGKILL and "delivered 500" in proc.stdout, proc.stderr
    assert _count(influxd, influx_db) == 500
    with LocalStore(path) as store:
        assert store.integrity_check() == "ok"
        assert store.outbox_stats()["pending"] == 500  # the marks were lost with the process
        with InfluxWriter(influxd.url, influx_db) as writer:
            report = SyncWorker(store, writer).sync_once()
        assert report.delivered == 500 and store.outbox_stats()["pending"] == 0
    assert _count(influxd, influx_db) == 500  # replayed, not duplicated
    values = influxd.query('SELECT "hip_flexion_left_deg" FROM "angles" ORDER BY time', influx_db)
    assert [v[1] for v in values["results"][0]["series"][0]["values"]] == [0.5 * i for i in range(500)]


def test_database_down_mid_sync_then_back(tmp_path: Path) -> None:
    """A private influxd is stopped while the background worker sends, then started again on the same
    data directory and port: every point arrives exactly once and nothing stays pending."""
    total = 40_000
    with InfluxServer(tmp_path / "influxd") as server, LocalStore(tmp_path / "s.sqlite") as store:
        db = server.create_database("outage")
        _fill(store, total)
        writer = InfluxWriter(server.url, db, batch_size=500, max_retries=1, backoff_base_s=0.05,
                              backoff_max_s=0.2, timeout_s=5)
        worker = SyncWorker(store, writer, poll_s=0.05, backoff_initial_s=0.1, backoff_max_s=0.4)
        worker.start()
        try:
            deadline = time.monotonic() + 20
            while store.outbox_stats()["delivered"] < 2000 and time.monotonic() < deadline:
                time.sleep(0.005)
            server.stop()
            stopped_at = store.outbox_stats()
            assert 0 < stopped_at["pending"] < total, stopped_at
            deadline = time.monotonic() + 10
            while worker.last_error is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert isinstance(worker.last_error, DatabaseError)
            pending_while_down = store.outbox_stats()["pending"]
            time.sleep(0.5)
            assert store.outbox_stats()["pending"] == pending_while_down  # nothing marked while down
            server.start()
            deadline = time.monotonic() + 30
            while store.outbox_stats()["pending"] and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            worker.stop(final_sync=False)
            writer.close()
        assert store.outbox_stats() == {"pending": 0, "delivered": total, "set_aside": 0, "total": total}
        assert worker.last_error is None
        assert _count(server, db) == total


def _cli(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIPBACK_")}
    env.update({"PYTHONPATH": str(ROOT), **env_extra})
    return subprocess.run([sys.executable, "-m", "hipback.ingest.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_cli_sync(tmp_path: Path, influxd: InfluxServer) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as store:
        _fill(store, 1200)
    db = "hb_cli_sync"
    # unreachable: exit 3, one sentence, nothing lost
    down = _cli(["sync", "--store", str(path)], {"HIPBACK_INFLUX_URL": f"http://127.0.0.1:{free_port()}",
                                                  "HIPBACK_INFLUX_DATABASE": db})
    assert down.returncode == 3, down.stderr
    assert "cannot be reached" in down.stderr and "1200 line(s) stay queued" in down.stderr
    assert "Traceback" not in down.stderr and len(down.stderr.strip().splitlines()) == 1
    # no URL configured: exit 2
    missing = _cli(["sync", "--store", str(path)], {})
    assert missing.returncode == 2 and "HIPBACK_INFLUX_URL is not set" in missing.stderr
    try:
        ok = _cli(["sync", "--store", str(path), "--batch-size", "500"],
                  {"HIPBACK_INFLUX_URL": influxd.url, "HIPBACK_INFLUX_DATABASE": db})
        assert ok.returncode == 0, ok.stderr
        assert "Delivered 1200 line(s)" in ok.stdout and "sync: 1200/1200 lines sent" in ok.stderr
        assert _count(influxd, db) == 1200
        again = _cli(["sync", "--store", str(path)], {"HIPBACK_INFLUX_URL": influxd.url,
                                                      "HIPBACK_INFLUX_DATABASE": db})
        assert again.returncode == 0 and "Nothing to send" in again.stdout
    finally:
        influxd.drop_database(db)
    with LocalStore(path) as store:
        assert store.outbox_stats()["delivered"] == 1200


def test_background_worker_wakes_on_new_lines(tmp_path: Path, influxd: InfluxServer, influx_db: str) -> None:
    with LocalStore(tmp_path / "s.sqlite") as store:
        writer = InfluxWriter(influxd.url, influx_db)
        worker = SyncWorker(store, writer, poll_s=30)
        worker.start()
        try:
            time.sleep(0.2)  # the worker is now waiting up to 30 s for its next poll
            _fill(store, 50)
            worker.wake()
            deadline = time.monotonic() + 10
            while store.outbox_stats()["pending"] and time.monotonic() < deadline:
                time.sleep(0.02)
            assert store.outbox_stats()["delivered"] == 50
        finally:
            stopper = threading.Thread(target=worker.stop)
            stopper.start()
            stopper.join(15)
            writer.close()
        assert not stopper.is_alive()
        assert _count(influxd, influx_db) == 50


def test_sync_of_one_session_leaves_the_others(tmp_path: Path, influxd: InfluxServer, influx_db: str) -> None:
    with LocalStore(tmp_path / "s.sqlite") as store, InfluxWriter(influxd.url, influx_db) as writer:
        a = _fill(store, 30, "P-0101")
        b = _fill(store, 20, "P-0102")
        report = SyncWorker(store, writer, session_id=b).sync_once()
        assert (report.delivered, report.pending) == (20, 0)
        assert store.outbox_stats(a)["pending"] == 30 and store.outbox_stats()["pending"] == 30


def test_cli_sync_of_one_session(tmp_path: Path, influxd: InfluxServer) -> None:
    """``--session`` takes an id, a unique prefix or ``latest``; a session not in the store is bad input (exit
    2, nothing sent); what it leaves pending of the other sessions is said, not called an empty outbox."""
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as store:
        a = _fill(store, 30, "P-0101")
        b = _fill(store, 20, "P-0102")
    db = "hb_cli_sync_session"
    env = {"HIPBACK_INFLUX_URL": influxd.url, "HIPBACK_INFLUX_DATABASE": db}
    try:
        for wrong in ("zzzz", a[:3], "latest-but-not"):
            bad = _cli(["sync", "--store", str(path), "--session", wrong], env)
            assert bad.returncode == 2 and "is not in the local store" in bad.stderr, bad.stderr
            assert "Traceback" not in bad.stderr and "Nothing to send" not in bad.stdout
        one = _cli(["sync", "--store", str(path), "--session", a[:6]], env)
        assert one.returncode == 0, one.stderr
        assert "Delivered 30 line(s)" in one.stdout
        assert "20 line(s) of other sessions are pending" in one.stdout
        again = _cli(["sync", "--store", str(path), "--session", a], env)
        assert again.returncode == 0
        assert f"Nothing to send for session {a}" in again.stdout and "20 line(s) of other" in again.stdout
        with LocalStore(path) as store:
            assert store.outbox_stats(b)["pending"] == 20
        last = _cli(["sync", "--store", str(path), "--session", "latest"], env)  # b was opened last
        assert last.returncode == 0 and "Delivered 20 line(s)" in last.stdout and "other" not in last.stdout
        assert _count(influxd, db) == 50
    finally:
        influxd.drop_database(db)


def test_worker_from_env_creates_the_database_and_delivers(tmp_path: Path, influxd: InfluxServer,
                                                          monkeypatch) -> None:
    for key in ("TOKEN", "TOKEN_FILE", "USER", "PASSWORD", "PASSWORD_FILE", "RETENTION_POLICY", "TLS_VERIFY"):
        monkeypatch.delenv(f"HIPBACK_INFLUX_{key}", raising=False)
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    with LocalStore(tmp_path / "s.sqlite") as store:
        assert SyncWorker.from_env(store) is None
        monkeypatch.setenv("HIPBACK_INFLUX_URL", influxd.url)
        monkeypatch.setenv("HIPBACK_INFLUX_DATABASE", "hb_from_env")
        worker = SyncWorker.from_env(store, poll_s=0.05)
        assert worker is not None
        try:
            worker.start()
            _fill(store, 70)
            worker.wake()
            deadline = time.monotonic() + 10
            while store.outbox_stats()["pending"] and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            worker.stop()
        assert store.outbox_stats()["delivered"] == 70
        assert _count(influxd, "hb_from_env") == 70
        influxd.drop_database("hb_from_env")

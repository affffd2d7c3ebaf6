"""The outbox and its sync worker, exactly: what each state change touches, and how the worker behaves
against a scripted server (a real socket, :mod:`tests.hostile_influx`). Written to kill the mutants of
``bench/mutation.py --group outbox``."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from hipback.ingest.errors import DatabaseError
from hipback.ingest.influx.lineprotocol import Point
from hipback.ingest.influx.writer import InfluxWriter
from hipback.ingest.store import LocalStore, StoreError
from hipback.ingest.sync import SyncReport, SyncWorker
from tests.hostile_influx import Answer, HostileInflux, ok

T0 = 1_763_700_000_000_000_000


def _rows(path: Path) -> list[tuple]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(con.execute("SELECT id, session_id, line, created_utc, state, done_utc, reason "
                                "FROM outbox ORDER BY id"))
    finally:
        con.close()


@pytest.fixture
def store(tmp_path: Path):
    with LocalStore(tmp_path / "s.sqlite") as s:
        yield s


def test_outbox_add_stores_lines_as_given(store: LocalStore) -> None:
    sid = store.open_session("P-0001")
    t = time.time()
    n = store.outbox_add(sid, [Point("m", {"patient": "P-0001"}, {"v": 1.5}, T0),
                               Point("m", {}, {"v": None}, T0 + 1),  # no field left: dropped
                               "m v=2 1763700000000000002\n"])
    assert n == 2
    rows = _rows(store.path)
    assert [(r[1], r[2], r[4], r[5], r[6]) for r in rows] == [
        (sid, f"m,patient=P-0001 v=1.5 {T0}", 0, None, None), (sid, f"m v=2 {T0 + 2}", 0, None, None)]
    assert all(t - 1 <= r[3] <= time.time() + 1 for r in rows)
    assert store.outbox_add(None, []) == 0


@pytest.mark.parametrize("bad, message", [
    (Point("m", {}, {"v": 1.0}, None),
     "points for the outbox need an explicit timestamp, so that a replay overwrites them instead of adding "
     "new ones"),
    ("m v=1", "explicit nanosecond timestamp"),
])
def test_outbox_add_refuses_what_a_replay_could_not_overwrite(store: LocalStore, bad, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        store.outbox_add(None, ["m v=0 0", bad])
    assert store.outbox_stats()["total"] == 0  # all or nothing


def test_pending_order_limit_session_and_state(store: LocalStore) -> None:
    a, b = store.open_session("P-0001"), store.open_session("P-0002")
    store.outbox_add(a, [f"m v={i} {i}" for i in range(3)])
    store.outbox_add(b, [f"m v={i} {i}" for i in range(3, 5)])
    store.outbox_add(a, ["m v=5 5"])
    ids = [i for i, _ in store.outbox_pending(100)]
    assert ids == sorted(ids) and len(ids) == 6
    assert store.outbox_pending(2) == [(ids[0], "m v=0 0"), (ids[1], "m v=1 1")]
    assert [line for _, line in store.outbox_pending(100, b)] == ["m v=3 3", "m v=4 4"]
    assert [line for _, line in store.outbox_pending(3, a)] == ["m v=0 0", "m v=1 1", "m v=2 2"]
    store.outbox_mark_delivered([ids[0]])
    store.outbox_set_aside([ids[1]], "bad")
    assert [i for i, _ in store.outbox_pending(100)] == ids[2:]
    assert store.outbox_stats(a) == {"pending": 2, "delivered": 1, "set_aside": 1, "total": 4}
    assert store.outbox_stats(b) == {"pending": 2, "delivered": 0, "set_aside": 0, "total": 2}
    assert store.outbox_stats("nope") == {"pending": 0, "delivered": 0, "set_aside": 0, "total": 0}


def test_state_changes_touch_only_pending_lines(store: LocalStore) -> None:
    store.outbox_add(None, [f"m v={i} {i}" for i in range(4)])
    ids = [i for i, _ in store.outbox_pending(10)]
    t = time.time()
    store.outbox_mark_delivered(ids[:2])
    store.outbox_set_aside(ids[1:3], "HTTP 400: conflict")  # ids[1] is delivered already: unchanged
    rows = {r[0]: r for r in _rows(store.path)}
    assert [rows[i][4] for i in ids] == [1, 1, 2, 0]
    assert rows[ids[1]][6] is None and rows[ids[2]][6] == "HTTP 400: conflict"
    assert all(t - 1 <= rows[i][5] <= time.time() + 1 for i in ids[:3]) and rows[ids[3]][5] is None
    store.outbox_mark_delivered(ids[2:3])  # set aside stays set aside
    assert _rows(store.path)[2][4] == 2
    aside = store.outbox_set_aside_lines()
    assert [(r["id"], r["line"], r["reason"]) for r in aside] == [(ids[2], "m v=2 2", "HTTP 400: conflict")]
    assert aside[0]["session_id"] is None and aside[0]["done_utc"] == rows[ids[2]][5]


def test_requeue_variants(store: LocalStore) -> None:
    store.outbox_add(None, [f"m v={i} {i}" for i in range(5)])
    ids = [i for i, _ in store.outbox_pending(10)]
    store.outbox_set_aside(ids[:2], "x")
    store.outbox_mark_delivered(ids[2:4])
    assert store.outbox_requeue(set_aside=False) == 2  # the delivered ones, e.g. after a lost database
    assert store.outbox_stats() == {"pending": 3, "delivered": 0, "set_aside": 2, "total": 5}
    assert store.outbox_requeue([ids[0]]) == 1
    assert store.outbox_requeue() == 1
    rows = _rows(store.path)
    assert all(r[4] == 0 and r[5] is None and r[6] is None for r in rows)
    assert store.outbox_requeue() == 0


def test_set_aside_lines_newest_first_and_limited(store: LocalStore) -> None:
    store.outbox_add(None, [f"m v={i} {i}" for i in range(5)])
    ids = [i for i, _ in store.outbox_pending(10)]
    for i in ids:
        store.outbox_set_aside([i], f"reason {i}")
    assert [r["id"] for r in store.outbox_set_aside_lines(3)] == ids[::-1][:3]
    assert len(store.outbox_set_aside_lines()) == 5


# -- the sync worker against a scripted server ------------------------------------------------------------


def _writer(url: str, **kw) -> InfluxWriter:
    return InfluxWriter(url, "hipback", timeout_s=2, max_retries=0, backoff_base_s=0.01, **kw)


def test_sync_once_batches_progress_totals_and_reasons(store: LocalStore) -> None:
    def choose(i: int, r) -> Answer:
        if any("bad" in line for line in r.lines):
            return Answer("respond", 400, body=b'{"error":"unable to parse"}')
        return ok()

    store.outbox_add(None, [f"m v={i} {T0 + i}" for i in range(7)] + ["m bad=1 1", "m bad=2 2"])
    with HostileInflux(choose) as server, _writer(server.url, batch_size=100) as writer:
        seen: list[SyncReport] = []
        worker = SyncWorker(store, writer, batch_size=4)
        report = worker.sync_once(progress=lambda r: seen.append(SyncReport(**vars(r))))
        assert [len(r.lines) for r in server.requests][:2] == [4, 4]  # batches of 4 (then the bisection)
    assert (report.delivered, report.set_aside, report.batches, report.pending) == (7, 2, 3, 0)
    assert [(s.delivered, s.set_aside) for s in seen] == [(4, 0), (7, 1), (7, 2)]
    assert vars(worker.totals) == vars(report)
    assert {r["reason"] for r in store.outbox_set_aside_lines()} == {"HTTP 400: unable to parse"}
    assert worker.pending() == 0


def test_sync_once_stops_at_a_database_error_and_keeps_the_rest(store: LocalStore) -> None:
    answers = iter([ok(), Answer("respond", 503, body=b"busy")])
    store.outbox_add(None, [f"m v={i} {T0 + i}" for i in range(6)])
    with HostileInflux(lambda i, r: next(answers, ok())) as server, _writer(server.url) as writer:
        worker = SyncWorker(store, writer, batch_size=3)
        with pytest.raises(DatabaseError, match="503"):
            worker.sync_once()
        assert store.outbox_stats()["delivered"] == 3 and worker.pending() == 3
        assert worker.totals.delivered == 3 and worker.totals.batches == 1
        report = worker.sync_once()
        assert (report.delivered, report.pending) == (3, 0) and worker.totals.delivered == 6


def test_stop_makes_a_last_attempt_and_keeps_what_fails(store: LocalStore, caplog) -> None:
    store.outbox_add(None, [f"m v={i} {T0 + i}" for i in range(3)])
    with HostileInflux(lambda i, r: Answer("respond", 500, body=b"down")) as server:
        worker = SyncWorker(store, _writer(server.url), owns_writer=True)
        worker.stop()  # never started: only the final attempt, which fails without raising
        assert isinstance(worker.last_error, DatabaseError) and worker.pending() == 3
        said = [r.getMessage() for r in caplog.records if r.name == "hipback.sync"]
        assert said == [f"{worker.last_error}; 3 line(s) stay queued in {store.path}"]
        assert worker.writer._client.is_closed  # owned: closed
    with HostileInflux() as server:
        writer = _writer(server.url)
        worker = SyncWorker(store, writer)
        worker.stop()
        assert worker.pending() == 0 and worker.last_error is None
        assert not writer._client.is_closed  # not owned: left open
        worker.stop(final_sync=False)
        writer.close()


def test_background_worker_backs_off_then_delivers_and_creates_the_database_once(store: LocalStore) -> None:
    answers = iter([Answer("respond", 503, body=b"busy")] * 3)

    def choose(i: int, r) -> Answer:
        if r.target.startswith("/query"):
            return Answer("respond", 200, headers=[("Content-Type", "application/json")],
                          body=b'{"results":[{"statement_id":0}]}')
        return next(answers, ok())

    store.outbox_add(None, [f"m v={i} {T0 + i}" for i in range(5)])
    with HostileInflux(choose) as server:
        worker = SyncWorker(store, _writer(server.url), owns_writer=True, poll_s=0.05,
                            backoff_initial_s=0.05, backoff_max_s=0.1)
        worker.start()
        worker.start()  # already running: no second thread
        try:
            deadline = time.monotonic() + 20
            while worker.pending() and time.monotonic() < deadline:
                time.sleep(0.02)
            while worker.last_error is not None and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            worker.stop(final_sync=False)
        writes = [r for r in server.requests if r.target.startswith("/write")]
        queries = [r for r in server.requests if r.target.startswith("/query")]
    assert worker.pending() == 0 and worker.last_error is None
    assert len(writes) >= 4 and len(queries) == 1  # CREATE DATABASE once, however many cycles


def test_from_env(store: LocalStore, monkeypatch) -> None:
    import os

    for key in [k for k in os.environ if k.startswith("HIPBACK_INFLUX_")]:
        monkeypatch.delenv(key)
    assert SyncWorker.from_env(store) is None
    monkeypatch.setenv("HIPBACK_INFLUX_URL", "http://127.0.0.1:1")
    worker = SyncWorker.from_env(store, poll_s=3.0)
    assert worker is not None and worker.poll_s == 3.0 and worker._owns_writer
    assert worker.writer.max_retries == 2 and worker.writer.database == "hipback"
    assert worker.batch_size == worker.writer.batch_size
    worker.stop(final_sync=False)


def test_set_aside_lines_default_limit_is_100(store: LocalStore) -> None:
    store.outbox_add(None, [f"m v={i} {i}" for i in range(101)])
    store.outbox_set_aside([i for i, _ in store.outbox_pending(200)], "x")
    assert len(store.outbox_set_aside_lines()) == 100 and len(store.outbox_set_aside_lines(200)) == 101


def test_background_thread_is_a_named_daemon_and_restarts(store: LocalStore) -> None:
    """A daemon, so that a worker stuck on a dead network never keeps the program from exiting."""
    with HostileInflux() as server:
        defaults = SyncWorker(store, _writer(server.url))
        assert (defaults.poll_s, defaults.backoff_initial_s, defaults.backoff_max_s) == (1.0, 1.0, 60.0)
        defaults.writer.close()
        worker = SyncWorker(store, _writer(server.url), poll_s=30)
        for _ in range(2):  # started again after a stop
            worker.start()
            try:
                assert worker._thread is not None and worker._thread.daemon and worker._thread.is_alive()
                assert worker._thread.name == "hipback-sync"
            finally:
                worker.stop(final_sync=False)
            assert worker._thread is None
        worker.writer.close()


class _Waits:
    """Stands in for the worker's wake event: records every wait and stops the worker after ``n``."""

    def __init__(self, worker: SyncWorker, n: int) -> None:
        self.worker, self.n, self.waits = worker, n, []

    def wait(self, timeout: float) -> bool:
        self.waits.append(round(timeout, 6))
        if len(self.waits) >= self.n:
            self.worker._stop.set()
        return False

    def clear(self) -> None:
        pass

    def set(self) -> None:
        pass


@pytest.mark.parametrize("top", [True, False])
def test_run_backs_off_doubling_to_the_cap_says_each_error_once_and_resets(store: LocalStore, caplog,
                                                                            monkeypatch, top: bool) -> None:
    import logging

    import hipback.ingest.sync as sync_module

    # jitter at its top (wait = delay) or at its bottom (wait = delay / 2)
    monkeypatch.setattr(sync_module.random, "uniform", lambda a, b: b if top else a)
    answers = iter([Answer("respond", 503, body=b"busy")] * 4 + [Answer("respond", 500, body=b"other")])
    store.outbox_add(None, [f"m v={i} {T0 + i}" for i in range(3)])
    caplog.set_level(logging.INFO, logger="hipback.sync")
    with HostileInflux(lambda i, r: next(answers, ok())) as server, _writer(server.url) as writer:
        worker = SyncWorker(store, writer, poll_s=0.25, backoff_initial_s=1.0, backoff_max_s=5.0)
        calls = {"n": 0}
        real = worker.sync_once

        def flaky_sync_once():
            calls["n"] += 1
            if calls["n"] in (7, 8):
                raise RuntimeError("a bug somewhere")
            return real()

        worker.sync_once = flaky_sync_once
        waits = _Waits(worker, 10)
        worker._wake = waits
        worker.run()
    # 503 x4: 1, 2, 4, 5 (capped); 500: 5; delivered: poll 0.25 and the delay is back to 1; then two
    # unexpected errors wait the current delay (1, then 2: doubled, no jitter); then polls again
    jittered = [1.0, 2.0, 4.0, 5.0, 5.0] if top else [0.5, 1.0, 2.0, 2.5, 2.5]
    assert waits.waits == [*jittered, 0.25, 1.0, 2.0, 0.25, 0.25]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "503" in warnings[0] and "500" in warnings[1]  # each distinct error once
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and r.name == "hipback.sync"]
    assert infos == ["InfluxDB is reachable again; the outbox is being delivered"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["unexpected error in the sync worker; retrying"] * 2
    assert store.outbox_stats()["delivered"] == 3 and worker.last_error is None


def test_an_entry_holding_two_lines_is_refused(tmp_path) -> None:
    """One outbox entry is one point: an embedded newline would send two points counted as one."""
    from hipback.ingest.store import LocalStore, StoreError

    with LocalStore(tmp_path / "s.sqlite") as store:
        for bad in ("m v=1 1\nm v=2 2", "m v=1 1\rm v=2 2"):
            with pytest.raises(StoreError):
                store.outbox_add(None, [bad])
        assert store.outbox_add(None, ["m v=1 1\n"]) == 1
        assert store.outbox_stats()["pending"] == 1

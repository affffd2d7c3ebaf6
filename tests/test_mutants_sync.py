"""The sync worker's thread handling and logging with exact expectations, for the survivors of
``python bench/mutation.py --group outbox``: ``stop`` waits at most ``timeout_s`` for the thread, and a
database that cannot be reached is logged with the error's own text (once, not again while it repeats).

The store and writer are stand-ins: no server, no thread, nothing timing dependent.
"""

from __future__ import annotations

import logging

import pytest

from hipback.ingest.errors import DatabaseError
from hipback.ingest.sync import SyncWorker


class _Store:
    """One pending line; after 10 reads the worker is stopped, so that no version of the loop can hang."""

    path = "/nowhere/outbox.sqlite"

    def __init__(self) -> None:
        self.reads = 0
        self.worker: SyncWorker | None = None

    def outbox_pending(self, limit, session_id):
        self.reads += 1
        if self.reads >= 10 and self.worker is not None:
            self.worker._stop.set()
            self.worker.wake()
        return [(1, "m x=1.0 1")]

    def outbox_stats(self, session_id):
        return {"pending": 1}


class _DownWriter:
    """A writer whose database is down; the worker is stopped after ``calls`` attempts."""

    batch_size = 10

    def __init__(self, calls: int = 1) -> None:
        self.calls = calls
        self.worker: SyncWorker | None = None

    def send_lines(self, lines, precision="ns"):
        self.calls -= 1
        assert self.worker is not None
        if self.calls <= 0:
            self.worker._stop.set()
        self.worker.wake()  # the back-off wait returns at once
        raise DatabaseError("InfluxDB at http://db:8086 is not reachable (100% down)")

    def ensure_database(self) -> None:  # only for a worker that owns its writer: stop, and say so
        if self.worker is not None:
            self.worker._stop.set()
            self.worker.wake()
        raise AssertionError("the worker does not own this writer")

    def close(self) -> None:
        pass


class _Thread:
    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def join(self, timeout=None) -> None:
        self.timeouts.append(timeout)


def test_stop_waits_for_the_thread_at_most_the_given_time() -> None:
    worker = SyncWorker(_Store(), _DownWriter())
    thread = worker._thread = _Thread()
    worker.stop(final_sync=False)
    assert thread.timeouts == [10.0] and worker._thread is None
    thread = worker._thread = _Thread()
    worker.stop(2.5, final_sync=False)
    assert thread.timeouts == [2.5]


def test_an_unreachable_database_is_logged_with_its_own_text_once(caplog: pytest.LogCaptureFixture) -> None:
    writer, store = _DownWriter(calls=3), _Store()
    worker = SyncWorker(store, writer, backoff_initial_s=0.001, backoff_max_s=0.001)
    writer.worker = store.worker = worker
    with caplog.at_level(logging.WARNING, logger="hipback.sync"):
        worker.run()
    assert writer.calls == 0  # three attempts, the same error each time
    assert [r.getMessage() for r in caplog.records] == [
        "InfluxDB at http://db:8086 is not reachable (100% down)"]
    assert str(worker.last_error) == "InfluxDB at http://db:8086 is not reachable (100% down)"

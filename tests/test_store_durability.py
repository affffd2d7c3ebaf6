"""The store keeps its power-cut promise: every connection it opens runs WAL with synchronous=FULL.

Killing the process (the SIGKILL tests) cannot tell FULL from OFF, as the OS page cache survives a killed
process; only a power cut would. So the settings are read back from the store's own connections, in the
thread that opened the store and in another one (each thread gets its own connection)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hipback.ingest.store import LocalStore

SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def _settings(store: LocalStore) -> tuple[str, str, int]:
    con = store._con()  # the store's own connection for this thread
    sync = SYNCHRONOUS[con.execute("PRAGMA synchronous").fetchone()[0]]
    journal = con.execute("PRAGMA journal_mode").fetchone()[0]
    fk = con.execute("PRAGMA foreign_keys").fetchone()[0]
    return sync, journal, fk


def test_every_connection_is_wal_and_synchronous_full(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as store:
        store.open_session("P-0001")
        assert _settings(store) == ("FULL", "wal", 1)
        other: list = []
        t = threading.Thread(target=lambda: other.append(_settings(store)))
        t.start()
        t.join()
        assert other == [("FULL", "wal", 1)]
    with LocalStore(tmp_path / "s.sqlite") as again:  # reopened: the same
        assert _settings(again) == ("FULL", "wal", 1)


@pytest.mark.parametrize("asked, expected", [("NORMAL", "NORMAL"), ("extra", "EXTRA"), ("FULL", "FULL")])
def test_synchronous_is_what_was_asked(tmp_path: Path, asked: str, expected: str) -> None:
    with LocalStore(tmp_path / "s.sqlite", synchronous=asked) as store:
        store.open_session("P-0001")
        assert _settings(store)[:2] == (expected, "wal")
    with pytest.raises(ValueError):
        LocalStore(tmp_path / "t.sqlite", synchronous="OFF")

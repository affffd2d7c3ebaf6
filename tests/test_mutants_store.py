"""The local store (``ingest/store.py``) held to its exact promises: error sentences word for word, every
threshold just inside and just outside (the header checks, the plausibility limits, the span of a stored
session), file modes whatever the umask, schema versions and the forward migration, read-only opening, and
every query's filter and order.

Written for the survivors of ``python bench/mutation.py --group store``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.errors import (
    ConfigError,
    LocalStoreError,
    StoreBusyError,
    StoreDamagedError,
    StoreFullError,
    StoreReadOnlyError,
    StoreVersionError,
)
from hipback.ingest.files.assemble import (
    DEFAULT_FULL_SCALE,
    FULL_SCALE,
    MAG_LIMIT,
    MAX_SPAN_S,
    RANGE_MARGIN,
    SPARSE_SPAN_S,
)
from hipback.ingest.store import APPLICATION_ID, SCHEMA_VERSION, LocalStore, StoreError, store_error

T0 = 1_763_700_000.0
DATA = Path(__file__).parent / "data"


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _new(path: Path, **kw) -> LocalStore:
    return LocalStore(path, **kw)


def _walk(st: LocalStore, placement: str = "pelvis", n: int = 10, t0: float = T0, device: str = "dev",
          meta: dict | None = None, sid: str | None = None) -> str:
    sid = sid or st.open_session("P-0001")
    st.add_sensor(sid, placement, "raw", device, None, meta)
    t = t0 + np.arange(n) / 100.0
    st.add_samples(sid, placement, t, seq=np.arange(n), acc=np.ones((n, 3)), gyr=np.zeros((n, 3)))
    return sid


def _error(code: int | None, text: str = "x", cls: type = sqlite3.OperationalError) -> sqlite3.Error:
    exc = cls(text)
    if code is not None:
        exc.sqlite_errorcode = code
    return exc


# -- the one-sentence errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("code, text, cls, sentence", [
    (sqlite3.SQLITE_FULL, "x", StoreFullError,
     "is on a full disk: nothing more is stored until space is freed (everything stored before is intact)."),
    (None, "database or disk is full", StoreFullError, "is on a full disk"),
    (sqlite3.SQLITE_READONLY, "x", StoreReadOnlyError,
     "cannot be written (the file, its folder or the disk is read-only)."),
    (sqlite3.SQLITE_PERM, "x", StoreReadOnlyError, "cannot be written"),
    (None, "attempt to write a readonly database", StoreReadOnlyError, "cannot be written"),
    (sqlite3.SQLITE_BUSY, "x", StoreBusyError,
     "is locked by another program for too long; try again when it is done."),
    (sqlite3.SQLITE_LOCKED, "x", StoreBusyError, "is locked"),
    (None, "database is locked", StoreBusyError, "is locked"),
    (sqlite3.SQLITE_CORRUPT, "x", StoreDamagedError,
     "is damaged (the database file is malformed or truncated); it was left untouched, restore it from a "
     "backup."),
    (sqlite3.SQLITE_NOTADB, "x", StoreDamagedError, "is damaged"),
    (None, "database disk image is malformed", StoreDamagedError, "is damaged"),
    (None, "file is not a database", StoreDamagedError, "is damaged"),
    (None, "unsupported file format", StoreDamagedError, "is damaged"),
    (sqlite3.SQLITE_ERROR, "no such column: qw", StoreDamagedError, "is damaged"),
    (sqlite3.SQLITE_ERROR, "no such table: samples", StoreDamagedError, "is damaged"),
    (None, "Could not decode to UTF-8 column 'v'", StoreDamagedError, "is damaged"),
    (sqlite3.SQLITE_CANTOPEN, "x", StoreReadOnlyError, "cannot be opened (missing folder or no permission)."),
    (sqlite3.SQLITE_IOERR, "disk I/O error", LocalStoreError,
     "cannot be read or written (disk I/O error: disk I/O error)."),
    (sqlite3.SQLITE_IOERR_WRITE, "disk I/O error", LocalStoreError, "cannot be read or written"),
    (sqlite3.SQLITE_FULL | 0x100, "x", StoreFullError, "is on a full disk"),
])
def test_each_sqlite_failure_becomes_its_sentence(code, text, cls, sentence) -> None:
    mapped = store_error("/data/s.sqlite", _error(code, text))
    assert type(mapped) is cls
    assert str(mapped).startswith(f"the local store /data/s.sqlite {sentence}")
    assert str(mapped).endswith(".") and "\n" not in str(mapped)


@pytest.mark.parametrize("exc", [
    _error(sqlite3.SQLITE_ERROR, "no such column: qw", sqlite3.ProgrammingError),
    _error(sqlite3.SQLITE_FULL, "x", sqlite3.InterfaceError),
    _error(sqlite3.SQLITE_ERROR, "near \"SELEC\": syntax error"),
    _error(None, "no such table: t"),  # code 0: not SQLITE_ERROR, so not a damaged store
    _error(sqlite3.SQLITE_CONSTRAINT, "UNIQUE constraint failed", sqlite3.IntegrityError),
    ValueError("database disk image is malformed"),
])
def test_other_errors_pass_unchanged(exc: BaseException) -> None:
    assert store_error("s.sqlite", exc) is exc


# -- opening: the file checks before SQLite touches it ------------------------------------------------------


def _header(page_size: int, pages: int, changes: int = 7, valid_for: int = 7) -> bytes:
    head = bytearray(b"SQLite format 3\x00" + bytes(84))
    head[16:18] = page_size.to_bytes(2, "big")
    head[24:28] = changes.to_bytes(4, "big")
    head[28:32] = pages.to_bytes(4, "big")
    head[92:96] = valid_for.to_bytes(4, "big")
    return bytes(head)


@pytest.mark.parametrize("readonly", [False, True])
def test_a_header_only_file_is_truncated_with_its_sizes(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(_header(4096, 3))  # 100 bytes: a whole header, 3 pages promised
    with pytest.raises(StoreDamagedError) as err:
        LocalStore(path, readonly=readonly)
    assert str(err.value) == (f"the local store {path} is truncated (100 of 12288 bytes); it was left "
                              "untouched, restore it from a backup.")
    path.write_bytes(_header(1, 2))  # page size 1 means 65536
    with pytest.raises(StoreDamagedError, match=r"is truncated \(100 of 131072 bytes\)"):
        LocalStore(path, readonly=readonly)
    path.write_bytes(_header(512, 2**24 + 1))  # all four bytes of the page count
    with pytest.raises(StoreDamagedError, match=r"is truncated \(100 of 8589935104 bytes\)"):
        LocalStore(path, readonly=readonly)
    path.write_bytes(_header(512, 1) + bytes(300))  # the smallest page size is a valid one
    with pytest.raises(StoreDamagedError, match=r"is truncated \(400 of 512 bytes\)"):
        LocalStore(path, readonly=readonly)
    assert path.read_bytes() == _header(512, 1) + bytes(300)


@pytest.mark.parametrize("page_size", [0, 256, 511, 1536, 4095, 4097])
def test_a_page_size_sqlite_cannot_have_is_a_garbled_header(tmp_path: Path, page_size: int) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(_header(page_size, 3))
    with pytest.raises(StoreDamagedError) as err:
        LocalStore(path)
    assert str(err.value) == (f"the local store {path} is damaged (its header is garbled); it was left "
                              "untouched.")


def test_short_or_foreign_files_are_not_databases(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    for content in (_header(4096, 3)[:99], b"x" * 100, b"SQLite format 3\x01" + bytes(84)):
        path.write_bytes(content)
        with pytest.raises(StoreDamagedError) as err:
            LocalStore(path)
        assert str(err.value) == (f"the local store {path} is not a database (not an SQLite file); it was "
                                  "left untouched.")
        assert path.read_bytes() == content


def test_a_header_whose_page_count_is_stale_is_not_called_truncated(tmp_path: Path) -> None:
    """The in-header page count is only trusted when its version-valid-for number matches the change
    counter (as SQLite itself does); a stale count, or a count of 0, is no proof of truncation."""
    for head in (_header(4096, 3, changes=7, valid_for=6), _header(4096, 0)):
        path = tmp_path / "s.sqlite"
        path.write_bytes(head + bytes(4096 - 100))
        with pytest.raises(LocalStoreError) as err:
            LocalStore(path, readonly=True)
        assert "truncated (" not in str(err.value)


def test_a_file_whose_log_is_in_use_is_not_called_truncated(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(_header(4096, 3) + bytes(4096 - 100))
    Path(f"{path}-wal").write_bytes(b"")
    with pytest.raises(StoreDamagedError, match=r"truncated \(4096 of 12288"):  # an empty log is not in use
        LocalStore(path, readonly=True)
    Path(f"{path}-wal").write_bytes(b"\0")
    with pytest.raises(LocalStoreError) as err:
        LocalStore(path, readonly=True)
    assert "truncated (" not in str(err.value)


def test_a_folder_or_an_unreadable_path_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "a.sqlite"
    folder.mkdir()
    for readonly in (False, True):
        with pytest.raises(ConfigError) as err:  # the wrong path given (exit 2), nothing damaged
            LocalStore(folder, readonly=readonly)
        assert str(err.value) == (f"the local store {folder} is a folder, not a store file; give the store "
                                  f"file (for example {folder / 'hipback.sqlite'}).")
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    with pytest.raises(StoreReadOnlyError) as err2:
        LocalStore(a_file / "s.sqlite")
    assert str(err2.value) == f"the local store {a_file / 's.sqlite'} cannot be read (Not a directory)."


def test_an_empty_file_becomes_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.touch()
    with LocalStore(path) as st:
        assert st.schema_version == SCHEMA_VERSION
        assert st.sessions() == []
    con = _raw(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    con.close()


# -- opening: versions and layouts --------------------------------------------------------------------------


def _v1(folder: Path) -> Path:
    path = folder / "old.sqlite"
    con = _raw(path)
    con.executescript((DATA / "store_v1_95307b2.sql").read_text(encoding="utf-8"))
    con.close()
    return path


def _store_with(tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "s.sqlite"
    LocalStore(path).close()
    con = _raw(path)
    con.executescript(sql)
    con.close()
    return path


FOREIGN = ("is a database of another program or of an unknown layout, not a hipback store; it was left "
           "untouched.")


@pytest.mark.parametrize("sql", [
    "PRAGMA user_version = 0",  # a hipback id but no version
    "DROP TABLE events",  # a table missing
    "PRAGMA application_id = 7",  # another program's id
    "PRAGMA application_id = 0",  # no id: must then say version 1 in meta
    "PRAGMA application_id = 0; UPDATE meta SET value = '2'",
    "PRAGMA application_id = 0; DELETE FROM meta",
    "PRAGMA application_id = 7; UPDATE meta SET value = '1'",  # another program's, whatever its meta says
])
@pytest.mark.parametrize("readonly", [False, True])
def test_an_unknown_layout_is_refused_untouched(tmp_path: Path, sql: str, readonly: bool) -> None:
    path = _store_with(tmp_path, sql)
    before = path.read_bytes()
    with pytest.raises(StoreDamagedError) as err:
        LocalStore(path, readonly=readonly)
    assert str(err.value) == f"the local store {path} {FOREIGN}"
    assert path.read_bytes() == before


@pytest.mark.parametrize("readonly", [False, True])
def test_a_version_1_store_with_the_hipback_id_opens(tmp_path: Path, readonly: bool) -> None:
    path = _store_with(tmp_path, "PRAGMA user_version = 1")
    with LocalStore(path, readonly=readonly) as st:
        assert st.schema_version == (1 if readonly else 2)


@pytest.mark.parametrize("app_id, version, meta", [(APPLICATION_ID, 2, None), (0, 0, "1")])
def test_a_store_with_exactly_the_tables_opens(tmp_path: Path, app_id: int, version: int, meta) -> None:
    """No table beyond hipback's own (an outbox made without AUTOINCREMENT has no sqlite_sequence)."""
    path = tmp_path / "s.sqlite"
    con = _raw(path)
    for table, cols in {"meta": "key, value", "sessions": "id, patient_id, start_utc, end_utc, meta",
                        "sensors": "id, session_id, placement, kind, device, address, meta",
                        "samples": "sensor, t, seq, device_time, qw, qx, qy, qz, ax, ay, az, gx, gy, gz, mx, "
                                   "my, mz",
                        "gaps": "id, session_id, placement, t_start, t_end, missing, reason",
                        "events": "id, session_id, t, kind, payload", "results": "session_id, kind, idx, row",
                        "outbox": "id, session_id, line, created_utc, state, done_utc, reason"}.items():
        con.execute(f"CREATE TABLE {table} ({cols})")
    con.execute(f"PRAGMA application_id = {app_id}")
    con.execute(f"PRAGMA user_version = {version}")
    if meta is not None:
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (meta,))
    con.close()
    with LocalStore(path, readonly=True) as st:
        assert st.sessions() == [] and st.schema_version == (version or 1)


@pytest.mark.parametrize("readonly", [False, True])
def test_an_empty_database_of_another_program_is_refused_untouched(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "s.sqlite"
    con = _raw(path)
    con.execute("PRAGMA application_id = 7")
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreDamagedError) as err:
        LocalStore(path, readonly=readonly)
    assert str(err.value) == f"the local store {path} {FOREIGN}"
    assert path.read_bytes() == before


def test_a_newer_store_names_both_versions(tmp_path: Path) -> None:
    path = _store_with(tmp_path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreVersionError) as err:
        LocalStore(path)
    assert str(err.value) == (f"the local store {path} was made by a newer hipback (schema version 3; this "
                              "hipback knows up to 2); update hipback to use it.")


def test_a_table_lacking_columns_names_them(tmp_path: Path) -> None:
    path = _store_with(tmp_path, "DROP TABLE gaps; CREATE TABLE gaps (id INTEGER PRIMARY KEY, "
                                 "session_id TEXT, placement TEXT, t_end REAL, reason TEXT)")
    for readonly in (False, True):
        with pytest.raises(StoreDamagedError) as err:
            LocalStore(path, readonly=readonly)
        assert str(err.value) == (f"the local store {path} is damaged or not hipback's (its gaps table lacks "
                                  "missing, t_start); it was left untouched.")


def test_a_failed_migration_leaves_the_store_as_it_was(tmp_path: Path, monkeypatch) -> None:
    from hipback.ingest import store as store_module

    path = _v1(tmp_path)

    def broken(con: sqlite3.Connection) -> None:
        con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        raise RuntimeError("migration failed")

    monkeypatch.setitem(store_module.MIGRATIONS, 1, broken)
    with pytest.raises(RuntimeError, match="migration failed"):
        LocalStore(path)
    con = _raw(path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0
    assert con.execute("PRAGMA user_version").fetchone()[0] == 0
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    con.close()
    monkeypatch.undo()
    with LocalStore(path) as st:  # and migrates once the migration works
        assert st.schema_version == 2


def test_the_migrated_store_records_its_version_once(tmp_path: Path) -> None:
    path = _v1(tmp_path)
    LocalStore(path).close()
    con = _raw(path)
    assert con.execute("SELECT key, value FROM meta WHERE key = 'schema_version'").fetchall() == [
        ("schema_version", "2")]
    con.close()


def test_an_empty_database_without_tables_is_new_only_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    con = _raw(path)
    con.execute("PRAGMA user_version = 0")
    con.execute("VACUUM")  # a valid, empty SQLite file
    con.close()
    assert path.stat().st_size > 0
    with pytest.raises(StoreDamagedError) as err:
        LocalStore(path, readonly=True)
    assert str(err.value) == f"the local store {path} holds no hipback data (an empty database)."
    with LocalStore(path) as st:
        assert st.schema_version == 2


def test_read_only_opening_of_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "none.sqlite"
    with pytest.raises(StoreReadOnlyError) as err:
        LocalStore(path, readonly=True)
    assert str(err.value) == f"the local store {path} does not exist."


def test_synchronous_is_checked_in_any_case(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        LocalStore(tmp_path / "s.sqlite", synchronous="off")
    assert str(err.value) == "synchronous must be FULL, EXTRA or NORMAL"
    assert not (tmp_path / "s.sqlite").exists()
    with LocalStore(tmp_path / "s.sqlite", synchronous="normal") as st:
        assert st._con().execute("PRAGMA synchronous").fetchone()[0] == 1


@pytest.mark.parametrize("readonly", [False, True])
def test_connection_settings(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "s.sqlite"
    LocalStore(path).close()
    with LocalStore(path, readonly=readonly) as st:  # writers wait 30 s for each other by default
        assert st._con().execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    with LocalStore(path, busy_timeout_s=2.5, readonly=readonly) as st:
        con = st._con()
        assert con.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        assert con.execute("PRAGMA query_only").fetchone()[0] == (1 if readonly else 0)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_read_only_opening_of_a_path_that_needs_quoting(tmp_path: Path) -> None:
    folder = tmp_path / "a b#c?d%20e"
    folder.mkdir()
    path = folder / "s?x.sqlite"
    with LocalStore(path) as st:
        sid = _walk(st)
    with LocalStore(path, readonly=True) as st:
        assert st.sample_count(sid) == 10
        with pytest.raises(StoreReadOnlyError) as err:
            st.open_session("P-0001")
        assert str(err.value) == f"the local store {path} was opened read-only; nothing can be written to it."


# -- files private whatever the umask -----------------------------------------------------------------------


def test_new_nested_folders_are_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "a" / "b" / "s.sqlite"
        LocalStore(path).close()
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
    finally:
        os.umask(old)


@pytest.mark.parametrize("mode, expected", [(0o644, 0o600), (0o604, 0o600), (0o640, 0o600), (0o777, 0o700),
                                            (0o600, 0o600), (0o400, 0o400), (0o700, 0o700)])
def test_an_existing_store_readable_by_others_is_tightened(tmp_path: Path, mode: int, expected: int) -> None:
    path = tmp_path / "s.sqlite"
    LocalStore(path).close()
    path.chmod(mode)
    LocalStore(path).close()
    assert path.stat().st_mode & 0o777 == expected


def test_the_log_files_are_tightened_too(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    LocalStore(path).close()
    keeper = _raw(path)  # keeps -wal and -shm in place
    keeper.execute("SELECT count(*) FROM sessions").fetchone()
    keeper.execute("BEGIN")
    keeper.execute("INSERT INTO meta VALUES ('x', 'y')")
    keeper.execute("COMMIT")
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.chmod(0o644)
    with LocalStore(path):
        modes = [p.stat().st_mode & 0o777 for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))]
    keeper.close()
    assert modes == [0o600, 0o600, 0o600]


def test_a_store_of_another_user_keeps_its_mode(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "s.sqlite"
    LocalStore(path).close()
    path.chmod(0o644)
    me = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: me + 1)
    LocalStore(path).close()
    assert path.stat().st_mode & 0o777 == 0o644


# -- connections and transactions ---------------------------------------------------------------------------


def test_close_closes_every_thread_s_connection(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    st = LocalStore(path)
    sid = _walk(st)
    th = threading.Thread(target=lambda: st.sample_count(sid))
    th.start()
    th.join()
    assert Path(f"{path}-wal").exists()
    st.close()
    assert not Path(f"{path}-wal").exists()  # the last connection closed: the log is checkpointed away
    with pytest.raises(StoreError) as err:
        st.sessions()
    assert str(err.value) == f"the local store {path} is closed"
    assert repr(st) == f"LocalStore({str(path)!r})"


def test_a_failing_call_inside_a_transaction_undoes_only_itself(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        with st.transaction():
            st.add_sensor(sid, "pelvis", "raw", "dev", None)
            with pytest.raises(StoreError, match="add_sensor first"):
                st.add_samples(sid, "thigh_left", T0 + np.arange(3.0))
            with st.transaction():  # a nested transaction is a savepoint
                st.add_gap(sid, "pelvis", T0, T0 + 1, 5, "disconnect")
            with pytest.raises(KeyboardInterrupt), st.transaction():
                st.add_event(sid, "battery", {}, t=T0)
                raise KeyboardInterrupt
            st.add_samples(sid, "pelvis", T0 + np.arange(3.0))
        assert st.sample_count(sid) == 3
        assert len(st.gaps(sid)) == 1 and st.events(sid) == []


def test_sensor_ids_of_a_rolled_back_transaction_are_forgotten(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        with pytest.raises(KeyboardInterrupt), st.transaction():
            st.add_sensor(sid, "pelvis", "raw", "dev", None)
            st.add_samples(sid, "pelvis", T0 + np.arange(3.0))
            raise KeyboardInterrupt
        st.add_sensor(sid, "thigh_left", "raw", "dev", None)  # takes the rolled-back sensor's id
        st.add_sensor(sid, "pelvis", "raw", "dev", None)
        assert st.add_samples(sid, "pelvis", T0 + np.arange(4.0)) == 4
        assert (st.sample_count(sid, "pelvis"), st.sample_count(sid, "thigh_left")) == (4, 0)


def test_integrity_check_says_ok(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        assert st.integrity_check() == "ok"


# -- sessions -----------------------------------------------------------------------------------------------


def test_a_long_bad_patient_id_is_cut_to_one_short_sentence(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        with pytest.raises(StoreError) as err:
            st.open_session("x y" * 100)
        assert len(str(err.value)) == 200
        assert str(err.value).startswith("a session needs a pseudonymous patient id of 1-64 letters, digits, "
                                         "'-' or '_', starting with a letter or digit (never a name), not "
                                         "'x yx y")
        with pytest.raises(StoreError, match=r"\(never a name\), not 42$"):
            st.open_session(42)  # type: ignore[arg-type]
        assert st.open_session("a" * 64) and st.open_session("P")


def test_session_start_and_reopening(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        before = time.time()
        for meta in (None, {"start_utc": float("nan")}, {"start_utc": "1700000000"}, {"start_utc": math.inf}):
            sid = st.open_session("P-0001", meta)
            assert before <= st.session(sid)["start_utc"] <= time.time()
        sid = st.open_session("P-0001", {"start_utc": 1_700_000_000, "k": 1}, session_id="")
        assert len(sid) == 32 and int(sid, 16) >= 0
        assert st.session(sid) == {"id": sid, "patient_id": "P-0001", "start_utc": 1_700_000_000.0,
                                   "end_utc": None, "meta": {"start_utc": 1_700_000_000, "k": 1}}
        assert st.open_session("P-0001", session_id=sid) == sid  # reopened without meta: meta unchanged
        assert st.open_session("P-0001", {}, session_id=sid) == sid
        assert st.session(sid)["meta"] == {"start_utc": 1_700_000_000, "k": 1}
        con = _raw(st.path)
        assert con.execute("SELECT meta FROM sessions WHERE id = ?", (sid,)).fetchone()[0] == (
            '{"start_utc":1700000000,"k":1}')
        con.close()
        with pytest.raises(StoreError) as err:
            st.open_session("P-0002", session_id=sid)
        assert str(err.value) == f"session {sid} belongs to another patient, not P-0002"
        st.close_session(sid, end_utc=T0)
        with pytest.raises(StoreError) as err:
            st.open_session("P-0001", session_id=sid)
        assert str(err.value) == f"session {sid} is already closed and cannot be reopened"
        with pytest.raises(StoreError) as err:
            st.session("nope")
        assert str(err.value) == f"session nope is not in the local store {st.path}"


def test_latest_open_session_is_the_latest_started_then_created(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        assert st.latest_open_session("P-0001") is None
        a = st.open_session("P-0001", {"start_utc": T0})
        b = st.open_session("P-0001", {"start_utc": T0})
        st.open_session("P-0001", {"start_utc": T0 - 10})
        st.open_session("P-0002", {"start_utc": T0 + 10})
        assert st.latest_open_session("P-0001") == b
        st.close_session(b, end_utc=T0 + 1)
        assert st.latest_open_session("P-0001") == a
        late = st.open_session("P-0001", {"start_utc": T0 + 5})
        assert st.latest_open_session("P-0001") == late


def test_close_session_ends_at_the_last_sample_else_now(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = _walk(st, n=10, t0=T0)
        other = _walk(st, n=10, t0=T0 + 100)  # another session's later samples do not count
        st.close_session(sid)
        assert st.session(sid)["end_utc"] == T0 + 9 / 100.0
        empty = st.open_session("P-0001")
        before = time.time()
        st.close_session(empty)
        assert before <= st.session(empty)["end_utc"] <= time.time()
        st.close_session(other, end_utc=int(T0))
        assert st.session(other)["end_utc"] == T0
        with pytest.raises(StoreError) as err:
            st.close_session("nope")
        assert str(err.value) == f"session nope is not in the local store {st.path}"


def test_sessions_list_counts_and_order(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        a = st.open_session("P-0001", {"start_utc": T0})
        st.add_sensor(a, "pelvis", "raw", "dev", None)
        st.add_samples(a, "pelvis", T0 + np.arange(4.0))
        b = st.open_session("P-0002", {"start_utc": T0})
        c = st.open_session("P-0001", {"start_utc": T0 - 5})
        st.outbox_add(a, ["m v=1 1", "m v=2 2"])
        st.outbox_add(b, ["m v=3 3"])
        st.outbox_mark_delivered([st.outbox_pending(1)[0][0]])
        rows = st.sessions()
        assert [r["id"] for r in rows] == [b, a, c]
        assert rows[1] == {"id": a, "patient_id": "P-0001", "start_utc": T0, "end_utc": None,
                           "meta": {"start_utc": T0}, "samples": 4, "outbox_pending": 1}
        assert [(r["samples"], r["outbox_pending"]) for r in rows] == [(0, 1), (4, 1), (0, 0)]
        assert [r["id"] for r in st.sessions("P-0001")] == [a, c]


# -- sensors, samples, gaps, events, results ----------------------------------------------------------------


def test_sensors_are_listed_as_added_and_updated_on_reconnect(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        other = st.open_session("P-0001")
        st.add_sensor(other, "pelvis", "raw", "dev", None)
        st.add_sensor(sid, "thigh_left", "raw", "witmotion", None)
        st.add_sensor(sid, "pelvis", "quat", "movella_dot", "AA:BB", {"rate_hz": 60})
        st.add_samples(sid, "pelvis", T0 + np.arange(3.0))
        st.add_sensor(sid, "thigh_left", "quat", "hipback_v1", "CC:DD", {"fw": "1.2"})
        assert st.sensors(sid) == [
            {"placement": "thigh_left", "kind": "quat", "device": "hipback_v1", "address": "CC:DD",
             "meta": {"fw": "1.2"}, "samples": 0},
            {"placement": "pelvis", "kind": "quat", "device": "movella_dot", "address": "AA:BB",
             "meta": {"rate_hz": 60}, "samples": 3},
        ]
        assert st.sample_count(sid, "thigh_left") == 0 and st.sample_count(other) == 0
        with pytest.raises(StoreError) as err:
            st.add_sensor("nope", "pelvis", "raw", "dev", None)
        assert str(err.value) == f"session nope is not in the local store {st.path}"
        with pytest.raises(StoreError) as err:
            st.add_samples(sid, "lumbar", T0 + np.arange(3.0))
        assert str(err.value) == f"no sensor at lumbar in session {sid}: call add_sensor first"


def test_sample_arrays_are_checked_with_exact_sentences(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "raw", "dev", None)
        t = T0 + np.arange(5.0)
        for kw, text in ((dict(seq=np.arange(4)), "pelvis: seq has 4 values for 5 samples"),
                         (dict(device_time=np.arange(6.0)), "pelvis: device_time has 6 values for 5 samples"),
                         (dict(acc=np.ones((5, 4))), "pelvis: acc has shape (5, 4), not (5, 3)"),
                         (dict(gyr=np.ones((5, 4))), "pelvis: gyr has shape (5, 4), not (5, 3)"),
                         (dict(mag=np.ones(5)), "pelvis: mag has shape (5,), not (5, 3)"),
                         (dict(quat=np.ones((5, 3))), "pelvis: quat has shape (5, 3), not (5, 4)")):
            with pytest.raises(StoreError) as err:
                st.add_samples(sid, "pelvis", t, **kw)
            assert str(err.value) == text
        with pytest.raises(StoreError) as err:
            st.add_samples(sid, "pelvis", np.array([T0, math.inf]))
        assert str(err.value) == "pelvis: sample times must be finite"
        assert st.add_samples(sid, "pelvis", np.zeros(0)) == 0
        assert st.add_samples(sid, "pelvis", np.array(T0)) == 1  # a single sample
        assert st.sample_count(sid) == 1


def test_samples_are_stored_exactly_and_missing_values_read_as_nan(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001", {"start_utc": T0})
        st.add_sensor(sid, "pelvis", "quat", "dev", None)
        t = T0 + np.array([0.0, 0.01, 0.02, 0.03])
        quat = np.tile([0.5, 0.5, 0.5, 0.5], (4, 1))
        acc, gyr, mag = np.full((4, 3), 1.5), np.full((4, 3), -0.25), np.full((4, 3), 40.0)
        assert st.add_samples(sid, "pelvis", t, seq=np.array([7.0, 8.0, 9.0, 10.0]),
                              device_time=np.array([1.0, np.nan, math.inf, 4.0]), quat=quat, acc=acc, gyr=gyr,
                              mag=mag) == 4
        con = _raw(st.path)
        assert con.execute("SELECT t, seq, device_time, qw, qx, qy, qz, ax, ay, az, gx, gy, gz, mx, my, mz "
                           "FROM samples ORDER BY t").fetchall()[:2] == [
            (T0, 7, 1.0, 0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5, -0.25, -0.25, -0.25, 40.0, 40.0, 40.0),
            (T0 + 0.01, 8, None, 0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5, -0.25, -0.25, -0.25, 40.0, 40.0, 40.0)]
        assert con.execute("SELECT device_time FROM samples WHERE seq = 9").fetchone() == (None,)
        con.close()
        s = st.load_recording(sid).streams["pelvis"]
        np.testing.assert_array_equal(s.meta["device_time"], [1.0, np.nan, np.nan, 4.0])
        np.testing.assert_array_equal(s.seq, [7, 8, 9, 10])
        np.testing.assert_array_equal(s.quat, quat)
        np.testing.assert_array_equal(s.mag, mag)


def test_duplicates_are_the_same_seq_and_device_time_or_utc_time(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "raw", "dev", None)
        st.add_sensor(sid, "thigh_left", "raw", "dev", None)
        t = T0 + np.arange(3.0)
        assert st.add_samples(sid, "pelvis", t, seq=np.arange(3), device_time=np.full(3, np.nan)) == 3
        assert st.add_samples(sid, "pelvis", t, seq=np.arange(3), device_time=np.full(3, np.nan)) == 0
        assert st.add_samples(sid, "pelvis", t + 0.5, seq=np.arange(3), device_time=np.full(3, np.nan)) == 3
        assert st.add_samples(sid, "pelvis", t + 9, seq=np.arange(3), device_time=np.arange(3.0)) == 3
        assert st.add_samples(sid, "pelvis", t + 19, seq=np.arange(3), device_time=np.arange(3.0)) == 0
        assert st.add_samples(sid, "thigh_left", t, seq=np.arange(3)) == 3  # another sensor
        assert st.sample_count(sid) == 12


def test_gaps_events_and_results(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        other = st.open_session("P-0001")
        st.add_gap(sid, "pelvis", T0 + 5, T0 + 6, 50.7, "disconnect")
        st.add_gap(sid, "thigh_left", T0 + 1, T0 + 2, 3, "crc")
        st.add_gap(sid, "pelvis", T0 + 1, T0 + 3, 4, "late")
        st.add_gap(other, "pelvis", T0, T0 + 1, 1, "x")
        gaps = st.gaps(sid)
        assert [(g.placement, g.t_start, g.t_end, g.missing, g.reason) for g in gaps] == [
            ("thigh_left", T0 + 1, T0 + 2, 3, "crc"), ("pelvis", T0 + 1, T0 + 3, 4, "late"),
            ("pelvis", T0 + 5, T0 + 6, 50, "disconnect")]
        assert type(gaps[2].missing) is int
        before = time.time()
        st.add_event(sid, "reconnect", {"placement": "pelvis"})
        st.add_event(sid, "battery", {"level": 80}, t=T0 + 2)
        st.add_event(sid, "battery", {"level": 70}, t=T0 + 2)
        st.add_event(other, "battery", {"level": 10}, t=T0)
        events = st.events(sid)
        assert events[:2] == [{"t": T0 + 2, "kind": "battery", "payload": {"level": 80}},
                              {"t": T0 + 2, "kind": "battery", "payload": {"level": 70}}]
        assert events[2]["kind"] == "reconnect" and before <= events[2]["t"] <= time.time()
        assert [e["payload"] for e in st.events(sid, "battery")] == [{"level": 80}, {"level": 70}]
        assert st.events(sid, "calibration") == []
        for call in (lambda: st.add_gap("nope", "pelvis", T0, T0, 1, "x"),
                     lambda: st.add_event("nope", "x", {}), lambda: st.put_results("nope", "x", [])):
            with pytest.raises(StoreError) as err:
                call()
            assert str(err.value) == f"session nope is not in the local store {st.path}"
        rows = [{"i": i} for i in range(12)]
        st.put_results(sid, "strides", rows)
        st.put_results(other, "strides", [{"i": -1}])
        st.put_results(sid, "holds", [{"h": 1}])
        assert st.get_results(sid, "strides") == rows
        st.put_results(sid, "strides", [])
        assert st.get_results(sid, "strides") == [] and st.get_results(sid, "holds") == [{"h": 1}]
        assert st.get_results(other, "strides") == [{"i": -1}]


def test_results_are_stored_as_compact_json_of_numpy_values_and_paths(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.put_results(sid, "x", [{"a": np.float32(0.5), "b": np.arange(3), "c": Path("/x/y"),
                                   "d": np.bool_(True)}])
        assert st.get_results(sid, "x") == [{"a": 0.5, "b": [0, 1, 2], "c": "/x/y", "d": True}]
        con = _raw(st.path)
        stored = con.execute("SELECT row FROM results").fetchone()[0]
        assert stored == '{"a":0.5,"b":[0,1,2],"c":"/x/y","d":true}'
        con.close()
        with pytest.raises(TypeError) as err:
            st.put_results(sid, "x", [{"a": object()}])
        assert str(err.value) == "object is not JSON serialisable"


@pytest.mark.parametrize("sql", ["UPDATE results SET row = CAST('{}' AS BLOB)",
                                 "UPDATE results SET row = '{'", "UPDATE sessions SET meta = 'not json'"])
def test_stored_text_hipback_cannot_have_written_is_a_damaged_store(tmp_path: Path, sql: str) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = st.open_session("P-0001")
        st.put_results(sid, "x", [{"a": 1}])
    con = _raw(path)
    con.execute(sql)
    con.close()
    with LocalStore(path, readonly=True) as st:
        with pytest.raises(StoreDamagedError) as err:
            st.get_results(sid, "x")
            st.sessions()
        assert str(err.value) == (f"the local store {path} is damaged (it holds text or JSON that hipback "
                                  "cannot have written); it was left untouched, restore it from a backup.")


# -- reading a recording back -------------------------------------------------------------------------------


def _load(tmp_path: Path, sql: str, device: str = "dev", n: int = 10):
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = _walk(st, n=n, device=device)
    con = _raw(path)
    con.executescript(sql)
    con.close()
    with LocalStore(path, readonly=True) as st:
        return st.load_recording(sid)


@pytest.mark.parametrize("device", ["movella_dot", "xsens_mt", "dev"])
def test_plausibility_limits_on_both_sides(tmp_path: Path, device: str) -> None:
    acc_fs, gyr_fs = FULL_SCALE.get(device, DEFAULT_FULL_SCALE)
    acc, gyr = float(acc_fs * (1 + RANGE_MARGIN)), float(gyr_fs * (1 + RANGE_MARGIN))
    sql = "; ".join([
        f"UPDATE samples SET ax = {acc!r} WHERE seq = 0", f"UPDATE samples SET ay = {-acc!r} WHERE seq = 1",
        f"UPDATE samples SET az = {float(np.nextafter(acc, 2 * acc))!r} WHERE seq = 2",
        f"UPDATE samples SET gz = {gyr!r} WHERE seq = 3",
        f"UPDATE samples SET gx = {-float(np.nextafter(gyr, 9e9))!r} WHERE seq = 4",
        f"UPDATE samples SET mz = {MAG_LIMIT!r}, mx = {-MAG_LIMIT!r} WHERE seq = 5",
        f"UPDATE samples SET my = {float(np.nextafter(MAG_LIMIT, 1e9))!r} WHERE seq = 6",
        "UPDATE samples SET qw = 1.09, qx = 0, qy = 0, qz = 0 WHERE seq = 7",
        "UPDATE samples SET qw = 0.91, qx = 0, qy = 0, qz = 0 WHERE seq = 8",
        "UPDATE samples SET qw = 0, qx = 0, qy = 0, qz = 1.11 WHERE seq = 9",
    ])
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = _walk(st, n=10, device=device)
        st.add_samples(sid, "pelvis", T0 + np.array([1.0, 1.01]), seq=np.array([10, 11]),
                       quat=np.array([[0, 0.89, 0, 0], [1, 0, 0, 0]]))
    con = _raw(path)
    con.executescript(sql + "; UPDATE samples SET qw = 0, qx = 0, qy = 0.6, qz = 0.8 WHERE seq = 11")
    con.close()
    with LocalStore(path, readonly=True) as st:
        s = st.load_recording(sid).streams["pelvis"]
    assert list(s.seq) == [0, 1, 3, 5, 7, 8, 11]
    assert s.meta["rejected_on_load"] == 5


def test_acc_gyr_and_mag_have_their_own_limits(tmp_path: Path) -> None:
    """An acceleration beyond the gyroscope's range, or a field beyond both, is fine where it belongs."""
    rec = _load(tmp_path, "UPDATE samples SET ax = 150.0, gx = 30.0 WHERE seq = 0; "
                          "UPDATE samples SET mx = 4000.0, ay = -150.0 WHERE seq = 1; "
                          "UPDATE samples SET gy = 40.0 WHERE seq = 2; "
                          "UPDATE samples SET az = 170.0 WHERE seq = 3",
                device="movella_dot")
    s = rec.streams["pelvis"]
    assert list(s.seq) == [0, 1, 4, 5, 6, 7, 8, 9] and s.meta["rejected_on_load"] == 2


def test_infinite_stored_times_are_left_out(tmp_path: Path) -> None:
    rec = _load(tmp_path, "UPDATE samples SET device_time = 9e999 WHERE seq = 2; "
                          "UPDATE samples SET t = -9e999 WHERE seq = 3")
    s = rec.streams["pelvis"]
    assert list(s.seq) == [0, 1, 4, 5, 6, 7, 8, 9] and s.meta["rejected_on_load"] == 2
    assert rec.start_utc == T0


def test_a_sensor_without_plausible_rows_is_left_out(tmp_path: Path) -> None:
    rec = _load(tmp_path, "UPDATE samples SET ax = 1e9")
    assert rec.streams == {}


@pytest.mark.parametrize("sql, what", [
    ("UPDATE samples SET ax = 'abc' WHERE seq = 3", "samples that are not numbers"),
    ("UPDATE samples SET seq = 'abc' WHERE seq = 3", "sequence numbers that are not whole numbers")])
def test_text_in_numeric_columns_is_a_damaged_store(tmp_path: Path, sql: str, what: str) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = _walk(st)
    con = _raw(path)
    con.execute(sql)
    con.close()
    with LocalStore(path, readonly=True) as st, pytest.raises(StoreDamagedError) as err:
        st.load_recording(sid)
    assert str(err.value) == (f"the local store {path} is damaged (session {sid} holds {what}); it was left "
                              "untouched.")


def test_more_than_one_fetch_of_samples(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = _walk(st, n=20_005)
        s = st.load_recording(sid).streams["pelvis"]
    assert len(s) == 20_005 and list(s.seq[19_998:20_002]) == [19_998, 19_999, 20_000, 20_001]


def _span_session(st: LocalStore, times: list[float], rate_hz: float | None) -> str:
    sid = st.open_session("P-0001", {"start_utc": times[0]})
    st.add_sensor(sid, "pelvis", "raw", "dev", None, None if rate_hz is None else {"rate_hz": rate_hz})
    st.add_samples(sid, "pelvis", np.array(times), acc=np.ones((len(times), 3)), gyr=np.ones((len(times), 3)))
    return sid


def test_the_span_of_a_stored_session_on_both_sides(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        # two samples at 1 Hz cover 2 s: the sparse rule allows SPARSE_SPAN_S
        ok = _span_session(st, [T0, T0 + SPARSE_SPAN_S], 1.0)
        assert st.load_recording(ok).streams["pelvis"].t[-1] == SPARSE_SPAN_S
        bad = _span_session(st, [T0, T0 + SPARSE_SPAN_S + 1], 1.0)
        with pytest.raises(StoreError) as err:
            st.load_recording(bad)
        assert str(err.value) == (f"session {bad} in the local store {st.path} spans 2 h of sample times but "
                                  "holds 2 s of samples per sensor at most: some stored times are corrupt")
        # 22 samples at 0.001 Hz cover 22,000 s: the sparse rule allows 88,000 s, the span limit 86,400 s
        times = list(T0 + np.linspace(0.0, MAX_SPAN_S, 22))
        assert len(st.load_recording(_span_session(st, times, 0.001)).streams["pelvis"]) == 22
        times[-1] = T0 + MAX_SPAN_S + 1
        with pytest.raises(StoreError, match="spans 24 h of sample times but holds 2.2e\\+04 s"):
            st.load_recording(_span_session(st, times, 0.001))
        # with a rate of 0.25 Hz, 4 samples cover 16 s (4 x 16 = 64 s < 7200 s): the rate in the meta counts
        wide = _span_session(st, [T0, T0 + 1, T0 + 2, T0 + SPARSE_SPAN_S + 1], 0.25)
        with pytest.raises(StoreError, match="holds 16 s of samples"):
            st.load_recording(wide)


@pytest.mark.parametrize("rate, covered", [(None, "8"), ("100", "8"), (0, "8"), (-5.0, "8"),
                                           (float("nan"), "8"), (4.0, "1")])
def test_the_rate_of_a_stored_sensor(tmp_path: Path, rate, covered: str) -> None:
    """Without a usable rate in the meta, the median step (here 2 s: 0.5 Hz, 4 samples cover 8 s)."""
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "raw", "dev", None, {} if rate is None else {"rate_hz": rate})
        st.add_samples(sid, "pelvis", np.array([T0, T0 + 2, T0 + 4, T0 + 9000.0]), acc=np.ones((4, 3)),
                       gyr=np.ones((4, 3)))
        with pytest.raises(StoreError) as err:
            st.load_recording(sid)
    assert f"holds {covered} s of samples" in str(err.value)


def test_a_single_sample_counts_as_one_second(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "raw", "dev", None)
        st.add_sensor(sid, "thigh_left", "raw", "dev", None)
        one = np.ones((1, 3))
        st.add_samples(sid, "pelvis", np.array([T0]), acc=one, gyr=one)
        st.add_samples(sid, "thigh_left", np.array([T0 + 7201.0]), acc=one, gyr=one)
        with pytest.raises(StoreError, match="holds 1 s of samples"), warnings.catch_warnings():
            warnings.simplefilter("error")  # and no warning about the missing time step
            st.load_recording(sid)


def test_the_timeline_starts_at_the_session_start_or_the_first_sample(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        early = st.open_session("P-0001", {"start_utc": T0 - 2})
        _walk(st, sid=early)
        st.add_gap(early, "pelvis", T0 + 1, T0 + 1.5, 50, "x")
        rec = st.load_recording(early)
        assert rec.start_utc == T0 - 2 and rec.streams["pelvis"].t[0] == 2.0
        assert [(g.placement, g.t_start, g.t_end, g.missing, g.reason) for g in rec.gaps] == [
            ("pelvis", 3.0, 3.5, 50, "x")]
        late = st.open_session("P-0001", {"start_utc": T0 + 2})
        _walk(st, sid=late)
        rec = st.load_recording(late)
        assert rec.start_utc == T0 and rec.streams["pelvis"].t[0] == 0.0
        exact = st.open_session("P-0001", {"start_utc": T0})
        _walk(st, sid=exact)
        assert st.load_recording(exact).start_utc == T0
        empty = st.open_session("P-0001", {"start_utc": T0 + 50})
        st.add_gap(empty, "pelvis", T0 + 51, T0 + 52, 100, "x")
        rec = st.load_recording(empty)
        assert rec.streams == {} and rec.start_utc == T0 + 50
        assert [(g.t_start, g.t_end) for g in rec.gaps] == [(1.0, 2.0)]
        assert rec.meta == {"start_utc": T0 + 50, "session_id": empty, "patient_id": "P-0001"}
        no_start = st.open_session("P-0001", {"scenario": "x"})
        _walk(st, sid=no_start, t0=T0 + 3)
        rec = st.load_recording(no_start)
        assert rec.start_utc == T0 + 3 and rec.meta["scenario"] == "x"


def test_streams_read_back_with_their_kind_rate_and_meta(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "movella_dot", "movella_dot", "AA", {"rate_hz": 60, "fw": "2"})
        st.add_sensor(sid, "thigh_left", "witmotion", "witmotion", None)
        st.add_sensor(sid, "thigh_right", "raw", "dev", None)
        st.add_sensor(sid, "lumbar", "quat", "dev", None)
        t = T0 + np.arange(5) * 0.02
        q = np.tile([1.0, 0, 0, 0], (5, 1))
        st.add_samples(sid, "pelvis", t, quat=q)
        st.add_samples(sid, "thigh_left", t, acc=np.ones((5, 3)), gyr=np.zeros((5, 3)))
        st.add_samples(sid, "thigh_right", t[:1], quat=q[:1], acc=q[:1, 1:], gyr=q[:1, 1:])
        st.add_samples(sid, "lumbar", t[:2], quat=q[:2], acc=np.ones((2, 3)), device_time=np.arange(2.0))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a single sample has no time step: no warning either
            rec = st.load_recording(sid)
    pel, thl, thr, lum = (rec.streams[p] for p in ("pelvis", "thigh_left", "thigh_right", "lumbar"))
    assert (pel.kind, thl.kind, thr.kind, lum.kind) == ("quat", "raw", "raw", "quat")
    assert (pel.rate_hz, thl.rate_hz, thr.rate_hz, lum.rate_hz) == (60.0, pytest.approx(50.0), 0.0,
                                                                    pytest.approx(50.0))
    assert [s.placement for s in (pel, thl, thr, lum)] == ["pelvis", "thigh_left", "thigh_right", "lumbar"]
    assert pel.meta == {"rate_hz": 60, "fw": "2", "device_kind": "movella_dot", "address": "AA"}
    assert thl.meta == {"device_kind": "witmotion", "address": None}
    assert thr.meta == {"device_kind": "raw", "address": None}
    assert pel.seq is None and pel.acc is None and pel.gyr is None and pel.mag is None
    assert thl.quat is None and thl.acc is not None
    np.testing.assert_array_equal(lum.meta["device_time"], np.arange(2.0))
    assert lum.gyr is None and thr.quat is not None


def test_samples_are_read_back_in_time_order(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "raw", "dev", None)
        st.add_samples(sid, "pelvis", T0 + np.array([0.03, 0.01]), seq=np.array([3, 1]),
                       acc=np.array([[3.0, 0, 0], [1.0, 0, 0]]), gyr=np.zeros((2, 3)))
        st.add_samples(sid, "pelvis", T0 + np.array([0.02, 0.0]), seq=np.array([2, 0]),
                       acc=np.array([[2.0, 0, 0], [0.0, 0, 0]]), gyr=np.zeros((2, 3)))
        s = st.load_recording(sid).streams["pelvis"]
    np.testing.assert_allclose(s.t, [0.0, 0.01, 0.02, 0.03], atol=1e-6)
    np.testing.assert_array_equal(s.seq, [0, 1, 2, 3])
    np.testing.assert_array_equal(s.acc[:, 0], [0.0, 1.0, 2.0, 3.0])


# -- outbox -------------------------------------------------------------------------------------------------


def test_outbox_counts_an_unknown_state_by_its_number(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.outbox_add(sid, ["m v=1 1", "m v=2 2"])
        st.outbox_add(None, ["m v=3 3"])
        con = _raw(st.path)
        con.execute("UPDATE outbox SET state = 7 WHERE line = 'm v=1 1'")
        con.close()
        assert st.outbox_stats() == {"pending": 2, "delivered": 0, "set_aside": 0, "7": 1, "total": 3}
        assert st.outbox_stats(sid) == {"pending": 1, "delivered": 0, "set_aside": 0, "7": 1, "total": 2}


def test_json_written_by_other_means_is_read_as_json(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        con = _raw(st.path)
        con.execute("UPDATE sessions SET meta = ?", (json.dumps({"a": [1, 2]}, indent=2),))
        con.close()
        assert st.session(sid)["meta"] == {"a": [1, 2]}


def test_sensors_without_samples_or_plausible_rows_do_not_hide_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "lumbar", "raw", "dev", None)  # never sent a sample
        st.add_sensor(sid, "thigh_right", "raw", "dev", None)
        st.add_samples(sid, "thigh_right", T0 + np.arange(3.0), acc=np.full((3, 3), 1e9), gyr=np.ones((3, 3)))
        _walk(st, sid=sid)
        rec = st.load_recording(sid)
    assert list(rec.streams) == ["pelvis"] and len(rec.streams["pelvis"]) == 10


def test_samples_at_the_same_time_keep_the_order_they_were_stored_in(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "raw", "dev", None)
        ones = np.ones((20, 3))
        st.add_samples(sid, "pelvis", np.full(20, T0 + 1.0), seq=np.arange(20), acc=ones, gyr=ones)
        st.add_samples(sid, "pelvis", np.full(20, T0), seq=np.arange(20, 40), acc=ones, gyr=ones)
        s = st.load_recording(sid).streams["pelvis"]
    assert list(s.seq) == [*range(20, 40), *range(20)]
    assert s.rate_hz == 0.0  # the median time step is 0


def test_missing_sequence_numbers_read_as_minus_one(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "raw", "dev", None)
        ones = np.ones((2, 3))
        st.add_samples(sid, "pelvis", T0 + np.array([0.0, 0.01]), seq=np.array([5, 6]), acc=ones, gyr=ones)
        st.add_samples(sid, "pelvis", T0 + np.array([0.02, 0.03]), acc=ones, gyr=ones)
        s = st.load_recording(sid).streams["pelvis"]
    assert s.seq.dtype == np.int64 and list(s.seq) == [5, 6, -1, -1]


def test_a_long_sparse_session_is_allowed_four_times_what_its_samples_cover(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        ok = _span_session(st, [T0, T0 + 7999.0], 0.001)  # 2 samples at 0.001 Hz cover 2000 s: 8000 s allowed
        assert len(st.load_recording(ok).streams["pelvis"]) == 2
        bad = _span_session(st, [T0, T0 + 8082.36], 1.0)
        with pytest.raises(StoreError, match=r"spans 2\.25 h of sample times but holds 2 s of"):
            st.load_recording(bad)


def test_a_session_without_samples_or_start_is_on_its_own_start(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        start = st.session(sid)["start_utc"]
        st.add_gap(sid, "pelvis", start + 1, start + 2, 100, "x")
        rec = st.load_recording(sid)
    assert rec.start_utc == start and rec.streams == {}
    assert [(g.t_start, g.t_end) for g in rec.gaps] == [(pytest.approx(1.0), pytest.approx(2.0))]


def test_public_methods_and_only_they_speak_in_sentences() -> None:
    from hipback.ingest.store import _guard_public_methods

    def full(self) -> None:
        raise _error(sqlite3.SQLITE_FULL, "database or disk is full")

    def odd(self) -> None:
        raise _error(sqlite3.SQLITE_ERROR, "near \"X\": syntax error")

    def bad_json(self) -> None:
        json.loads("{")

    probe = type("Probe", (), {"path": "p.sqlite", "write": full, "query": odd, "decode": bad_json,
                               "_inner": full, "close": full, "transaction": full, "limit": 5})
    _guard_public_methods(probe)
    obj = probe()
    with pytest.raises(StoreFullError, match="^the local store p.sqlite is on a full disk"):
        obj.write()
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        obj.query()
    with pytest.raises(StoreDamagedError, match="^the local store p.sqlite is damaged"):
        obj.decode()
    for name in ("_inner", "close", "transaction"):
        with pytest.raises(sqlite3.OperationalError):
            getattr(obj, name)()
    assert obj.limit == 5 and probe.write.__name__ == "full"


def test_column_shaped_sequence_numbers_and_device_times_are_taken(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "raw", "dev", None)
        big = np.array([2**53 + 1, 2**62 + 1, 3])  # beyond what a float holds exactly
        assert st.add_samples(sid, "pelvis", T0 + np.arange(3.0), seq=big.reshape(3, 1),
                              device_time=np.arange(3.0).reshape(3, 1)) == 3
        con = _raw(st.path)
        assert con.execute("SELECT seq, device_time FROM samples ORDER BY t").fetchall() == [
            (2**53 + 1, 0.0), (2**62 + 1, 1.0), (3, 2.0)]
        con.close()


@pytest.mark.parametrize("line", ["m v=1 1\r\n", "m v=1 1X", "m v=1 1\rm v=2 2"])
def test_an_outbox_line_is_refused_in_one_sentence(tmp_path: Path, line: str) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        with pytest.raises(StoreError) as err:
            st.outbox_add(None, [line])
        assert str(err.value) == ("an outbox entry must be one line of line protocol ending with an explicit "
                                  "nanosecond timestamp")
        assert st.outbox_stats()["total"] == 0


def test_an_outbox_line_is_stored_as_given_but_its_line_break(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        assert st.outbox_add(None, ["m v=1 1 \n", "m v=2 2\n\n", "\tm v=3 3"]) == 3
        assert [line for _, line in st.outbox_pending(10)] == ["m v=1 1 ", "m v=2 2", "\tm v=3 3"]


@pytest.mark.parametrize("times, covered", [([0.0, 0.01, 0.02, 7300.0], "0.04"),  # 100 Hz by the median step
                                            ([0.0, 0.5, 1.0, 7300.0], "2"),  # 2 Hz
                                            ([0.0, 7300.0], None)])  # 2 samples 7300 s apart cover 14,600 s
def test_the_rate_from_the_median_step(tmp_path: Path, times: list[float], covered: str | None) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = _span_session(st, [T0 + x for x in times], None)
        if covered is None:
            assert len(st.load_recording(sid).streams["pelvis"]) == 2
        else:
            with pytest.raises(StoreError, match=f"holds {covered} s of samples"):
                st.load_recording(sid)


@pytest.mark.parametrize("sql", ["UPDATE sessions SET meta = '[1]'", "UPDATE sensors SET meta = '[1]'",
                                 "UPDATE sessions SET meta = 'null'",
                                 "UPDATE sensors SET meta = '\"x\"'"])
def test_a_meta_that_is_not_a_json_object_is_a_damaged_store(tmp_path: Path, sql: str) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = _walk(st)
    con = _raw(path)
    con.execute(sql)
    con.close()
    sentence = (f"the local store {path} is damaged (it holds text or JSON that hipback cannot have "
                "written); it was left untouched, restore it from a backup.")
    with LocalStore(path) as st:
        calls = [lambda: st.load_recording(sid)]
        if "sessions" in sql:
            calls += [st.sessions, lambda: st.session(sid),
                      lambda: st.open_session("P-0001", {"k": 1}, sid)]
        else:
            calls += [lambda: st.sensors(sid)]
        for call in calls:
            with pytest.raises(StoreDamagedError) as err:
                call()
            assert str(err.value) == sentence


def test_each_magnetometer_axis_and_huge_quaternions_are_checked_quietly(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a huge stored number is left out without an overflow warning
        rec = _load(tmp_path, "UPDATE samples SET mx = 5000.5 WHERE seq = 1; "
                              "UPDATE samples SET mz = -5000.5 WHERE seq = 2; "
                              "UPDATE samples SET qw = 1e300, qx = 1e300, qy = 0, qz = 0 WHERE seq = 3")
    s = rec.streams["pelvis"]
    assert list(s.seq) == [0, 4, 5, 6, 7, 8, 9] and s.meta["rejected_on_load"] == 3


def test_a_reader_sees_what_an_open_writer_has_committed(tmp_path: Path) -> None:
    """A report while a session is recording: the reader reads the write-ahead log too."""
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as writer:
        sid = _walk(writer, n=10)
        assert Path(f"{path}-wal").stat().st_size > 0
        with LocalStore(path, readonly=True) as reader:
            assert reader.sample_count(sid) == 10
            _walk(writer, n=5, t0=T0 + 1, sid=sid, placement="thigh_left")
            assert reader.sample_count(sid) == 15 and reader.sample_count(sid, "thigh_left") == 5


def test_a_folder_that_cannot_be_made_is_one_sentence(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.symlink_to(tmp_path / "missing" / "target")  # a dangling link: no folder can be made there
    path = folder / "s.sqlite"
    with pytest.raises(StoreReadOnlyError) as err:
        LocalStore(path)
    assert str(err.value) == f"the local store {path} cannot be created (File exists)."
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("readonly", [False, True])
def test_a_table_name_that_is_not_text_is_a_damaged_store(tmp_path: Path, readonly: bool) -> None:
    path = _store_with(tmp_path, "CREATE TABLE extra (a); PRAGMA writable_schema = ON; "
                                 "UPDATE sqlite_master SET name = CAST(x'ff41' AS TEXT) WHERE name = 'extra'")
    before = path.read_bytes()
    with pytest.raises(StoreDamagedError) as err:
        LocalStore(path, readonly=readonly)
    assert str(err.value) == (f"the local store {path} is damaged (unreadable text in its tables); it was "
                              "left untouched, restore it from a backup.")
    assert path.read_bytes() == before


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[str]:
    """``path`` (a file or a folder) read-only for this process: a read-only bind mount as root (root ignores
    file modes), its mode otherwise. Yields the error text a creation there gets."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
            yield "Read-only file system"
        finally:
            subprocess.run(["umount", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield "Permission denied"
        finally:
            path.chmod(mode)


def test_a_store_that_cannot_be_created_in_its_folder_is_one_sentence(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    path = folder / "s.sqlite"
    with _read_only(folder) as why:
        with pytest.raises(StoreReadOnlyError) as err:
            LocalStore(path)
        assert str(err.value) == f"the local store {path} cannot be created ({why})."
    assert list(folder.iterdir()) == []


def test_a_read_only_store_file_in_a_writable_folder_is_refused_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = _walk(st)
    with _read_only(path):
        with pytest.raises(StoreReadOnlyError) as err:
            LocalStore(path)
        assert str(err.value) == (f"the local store {path} cannot be written (the file or its folder is "
                                  "read-only); it can still be reported on and exported.")
        with LocalStore(path, readonly=True) as st:
            assert st.sample_count(sid) == 10


def test_a_store_path_that_links_nowhere_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.symlink_to(tmp_path / "missing" / "s.sqlite")
    with pytest.raises(StoreReadOnlyError) as err:
        LocalStore(path)
    assert str(err.value) == f"the local store {path} cannot be opened (missing folder or no permission)."
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("readonly", [False, True])
def test_a_query_the_opening_check_cannot_run_names_its_error(tmp_path: Path, readonly: bool) -> None:
    """A first-release store whose meta key asks for a collation nobody has: SQLite's own words, once."""
    path = _store_with(tmp_path, "PRAGMA application_id = 0; PRAGMA writable_schema = ON; "
                                 "UPDATE sqlite_master SET sql = 'CREATE TABLE meta (key TEXT COLLATE "
                                 "nocase2 PRIMARY KEY, value TEXT NOT NULL)' WHERE name = 'meta'")
    before = path.read_bytes()
    with pytest.raises(StoreDamagedError) as err:
        LocalStore(path, readonly=readonly)
    assert str(err.value) == (f"the local store {path} is damaged (no such collation sequence: nocase2); it "
                              "was left untouched, restore it from a backup.")
    assert path.read_bytes() == before


@pytest.mark.parametrize("readonly", [False, True])
def test_close_closes_the_connections_of_other_threads(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = _walk(st)
    st = LocalStore(path, readonly=readonly)
    counts: list[int] = []
    th = threading.Thread(target=lambda: counts.append(st.sample_count(sid)))
    th.start()
    th.join()
    assert counts == [10] and st.sample_count(sid) == 10
    st.close()
    with LocalStore(path) as writer:  # the last connection to close takes the log away
        _walk(writer, sid=sid, placement="thigh_left")
    assert not Path(f"{path}-wal").exists()


@pytest.mark.parametrize("readonly", [False, True])
def test_a_version_text_that_is_not_utf8_is_a_damaged_store_in_sqlites_words(tmp_path: Path,
                                                                              readonly: bool) -> None:
    path = _store_with(tmp_path, "PRAGMA application_id = 0; UPDATE meta SET value = CAST(x'ff' AS TEXT)")
    before = path.read_bytes()
    with pytest.raises(StoreDamagedError) as err:
        LocalStore(path, readonly=readonly)
    assert str(err.value) == (f"the local store {path} is damaged (Could not decode to UTF-8 column 'value' "
                              "with text '\ufffd'); it was left untouched, restore it from a backup.")
    assert path.read_bytes() == before


@pytest.mark.parametrize(("kind", "sql", "missing"), [
    ("quat", "", "a quaternion sensor but has no quat samples"),
    ("raw", "UPDATE samples SET gx = NULL, gy = NULL, gz = NULL",
     "a raw sensor but has no acc or gyr samples"),
    ("movella_dot", "UPDATE samples SET ax = NULL, ay = NULL, az = NULL",
     "a raw sensor but has no acc or gyr samples")])
def test_a_sensor_without_the_samples_its_kind_needs_is_a_damaged_store(tmp_path: Path, kind: str, sql: str,
                                                                        missing: str) -> None:
    """Stored rows that cannot make the sensor's stream: one sentence, the store left as it was."""
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", kind, "dev", None)
        st.add_samples(sid, "pelvis", T0 + np.arange(10) / 100.0, seq=np.arange(10), acc=np.ones((10, 3)),
                       gyr=np.zeros((10, 3)))
    if sql:
        con = _raw(path)
        con.execute(sql)
        con.commit()
        con.close()
    before = path.read_bytes()
    with LocalStore(path, readonly=True) as st:
        with pytest.raises(StoreDamagedError) as err:
            st.load_recording(sid)
    assert str(err.value) == (f"the local store {path} is damaged (session {sid}: the pelvis sensor is "
                              f"stored as {missing}); it was left untouched.")
    assert path.read_bytes() == before

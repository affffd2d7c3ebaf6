"""The local session store (SQLite): sessions, sensors, every raw sample, gaps, events, results and the
outbox of line-protocol points that still have to reach InfluxDB.

Durability. The database runs in WAL mode with ``synchronous=FULL`` (the default here): every method
that writes runs one transaction, and when it returns the transaction is in the write-ahead log and
fsynced, so neither a killed process (SIGKILL) nor a power cut loses it. ``synchronous="NORMAL"``
(constructor argument) skips the fsync per commit: still safe against a killed process (the WAL is in
the OS page cache), not against a power cut; use it only on hardware where fsync is slow and power is
safe. ``bench``: ``tests/test_store.py`` measures rows/s.

Threads. One SQLite connection per thread (WAL lets readers run beside the writer; writers wait for
each other up to ``busy_timeout_s``), so the BLE loop, the sync worker and a reader can share one
:class:`LocalStore`.

Times. ``t`` of samples, gaps and events, and session start/end are UTC Unix seconds (float).
:meth:`load_recording` turns them into a :class:`hipback.processing.types.Recording` whose timeline starts at
0
at the first sample, with ``start_utc`` set to that sample's UTC time.

Samples. One row per sample: session, placement, t, seq, device_time, quaternion (w,x,y,z,
sensor-to-world), acc (m/s^2), gyr (rad/s), mag (uT); missing parts are NULL. A sample is a duplicate
when session, placement, sequence number and device time are equal (where the device gives neither
seq nor device time, the UTC time ``t`` stands in for the device time and seq counts as -1);
duplicates are ignored, so re-storing a chunk after a crash or reconnect is harmless.

Outbox. Line-protocol lines (nanosecond timestamps, see :mod:`hipback.ingest.influx.lineprotocol`) bound for
InfluxDB, each ``pending`` until :mod:`hipback.ingest.sync` marks it ``delivered`` after a 2xx from the
server,
or ``set_aside`` (with the server's reason) when the server rejected it as bad data.

Lifecycle. A store is created 0600 in a folder created 0700, whatever the umask (SQLite gives the
``-wal`` and ``-shm`` files the database file's mode); an existing store readable by others is tightened
to 0600 when opened for writing. Every store carries :data:`APPLICATION_ID` and its schema version
(``PRAGMA user_version``, mirrored in ``meta.schema_version``); opening checks them before anything is
written: an older store is migrated forward in one transaction (:data:`MIGRATIONS`), a newer one is
refused (:class:`~hipback.ingest.errors.StoreVersionError`), and a file that is not a hipback store (not
SQLite, truncated, malformed, another program's database) is refused and left untouched
(:class:`~hipback.ingest.errors.StoreDamagedError`). ``readonly=True`` opens without writing anything
(``hipback report`` and ``export``), also a store on a read-only disk or folder. SQLite failures become
one-sentence :class:`~hipback.ingest.errors.LocalStoreError` subclasses naming the file: a full disk
(:class:`~hipback.ingest.errors.StoreFullError`) rolls back the write that hit it, keeps everything
stored before intact, and the next write succeeds once there is space again.

Transactions. Every writing method is one transaction; :meth:`LocalStore.transaction` groups several
calls into one (savepoints inside), so an import is stored completely or not at all, even when
interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import re
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from hipback.ingest.errors import (
    ConfigError,
    HipbackError,
    LocalStoreError,
    StoreBusyError,
    StoreDamagedError,
    StoreFullError,
    StoreReadOnlyError,
    StoreVersionError,
)
from hipback.ingest.ids import PSEUDONYM_RULE, is_pseudonym
from hipback.ingest.influx.lineprotocol import Point, encode_lines
from hipback.processing.types import Gap, Recording, SensorStream

#: schema version of the stores this hipback writes (``PRAGMA user_version``). 1: the first release
#: (no application id, version only in the ``meta`` table); 2: application id and ``user_version`` set.
SCHEMA_VERSION = 2
#: ``PRAGMA application_id`` of a hipback store ("HIPB"), so that tools and hipback itself can tell it apart
#: from any other SQLite database
APPLICATION_ID = 0x48495042
#: the tables every hipback store has (from version 1 on) and the columns hipback reads and writes in them
_COLUMNS = {
    "meta": {"key", "value"},
    "sessions": {"id", "patient_id", "start_utc", "end_utc", "meta"},
    "sensors": {"id", "session_id", "placement", "kind", "device", "address", "meta"},
    "samples": {"sensor", "t", "seq", "device_time", "qw", "qx", "qy", "qz", "ax", "ay", "az", "gx", "gy",
                "gz", "mx", "my", "mz"},
    "gaps": {"id", "session_id", "placement", "t_start", "t_end", "missing", "reason"},
    "events": {"id", "session_id", "t", "kind", "payload"},
    "results": {"session_id", "kind", "idx", "row"},
    "outbox": {"id", "session_id", "line", "created_utc", "state", "done_utc", "reason"},
}
_TABLES = frozenset(_COLUMNS)
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    start_utc REAL NOT NULL,
    end_utc REAL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sessions_patient ON sessions (patient_id, start_utc);
CREATE TABLE IF NOT EXISTS sensors (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    placement TEXT NOT NULL,
    kind TEXT NOT NULL,
    device TEXT NOT NULL,
    address TEXT,
    meta TEXT NOT NULL DEFAULT '{}',
    UNIQUE (session_id, placement)
);
CREATE TABLE IF NOT EXISTS samples (
    sensor INTEGER NOT NULL,
    t REAL NOT NULL,
    seq INTEGER,
    device_time REAL,
    qw REAL, qx REAL, qy REAL, qz REAL,
    ax REAL, ay REAL, az REAL,
    gx REAL, gy REAL, gz REAL,
    mx REAL, my REAL, mz REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS samples_dedup
    ON samples (sensor, ifnull(seq, -1), ifnull(device_time, t));
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    placement TEXT NOT NULL,
    t_start REAL NOT NULL,
    t_end REAL NOT NULL,
    missing INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gaps_session ON gaps (session_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_session ON events (session_id, kind);
CREATE TABLE IF NOT EXISTS results (
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    idx INTEGER NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (session_id, kind, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT,
    line TEXT NOT NULL,
    created_utc REAL NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    done_utc REAL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE state = 0;
CREATE INDEX IF NOT EXISTS outbox_session ON outbox (session_id, state);
"""

_F64 = np.dtype(np.float64)
#: the values bound for an absent vector of 3 or 4 components (NULL)
_NULLS = {3: (None,) * 3, 4: (None,) * 4}

PENDING, DELIVERED, SET_ASIDE = 0, 1, 2
_STATE_NAMES = {PENDING: "pending", DELIVERED: "delivered", SET_ASIDE: "set_aside"}
_VECTORS = (("quat", ("qw", "qx", "qy", "qz")), ("acc", ("ax", "ay", "az")), ("gyr", ("gx", "gy", "gz")),
            ("mag", ("mx", "my", "mz")))
_SAMPLE_COLUMNS = ("t", "seq", "device_time") + tuple(c for _, cols in _VECTORS for c in cols)


# A line's last space-separated token is its timestamp when it is an integer (a field there always
# contains '=' or ends with a quote).
_TIMESTAMPED = re.compile(r"\S \s*-?\d+\s*$")


class StoreError(HipbackError, ValueError):
    """A store call that does not fit the stored data (unknown or closed session, wrong shapes)."""


def _migrate_1_to_2(con: sqlite3.Connection) -> None:
    """Version 1 stores (the first release) have the same tables; they get the application id."""
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")


#: forward migrations: ``MIGRATIONS[v]`` turns a version ``v`` store into version ``v + 1`` (run inside the
#: opening transaction, so a store is migrated completely or not at all)
MIGRATIONS = {1: _migrate_1_to_2}


def _sqlite_code(exc: BaseException) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def store_error(path: Path | str, exc: BaseException) -> BaseException:
    """The one-sentence :class:`LocalStoreError` for an ``sqlite3`` error on the store ``path``
    (other exceptions are returned unchanged)."""
    if not isinstance(exc, sqlite3.Error) or isinstance(exc, sqlite3.ProgrammingError
                                                        | sqlite3.InterfaceError):
        return exc
    code = _sqlite_code(exc)
    text = str(exc).lower()
    if code == sqlite3.SQLITE_FULL or "disk is full" in text:
        return StoreFullError(path, "is on a full disk: nothing more is stored until space is freed "
                                    "(everything stored before is intact).")
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM) or "readonly" in text:
        return StoreReadOnlyError(path, "cannot be written (the file, its folder or the disk is read-only).")
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
        return StoreBusyError(path, "is locked by another program for too long; try again when it is done.")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "malformed" in text \
            or "not a database" in text or "unsupported file format" in text \
            or (code == sqlite3.SQLITE_ERROR and ("no such column" in text or "no such table" in text)) \
            or "could not decode" in text:
        return StoreDamagedError(path, "is damaged (the database file is malformed or truncated); "
                                       "it was left untouched, restore it from a backup.")
    if code == sqlite3.SQLITE_CANTOPEN:
        return StoreReadOnlyError(path, "cannot be opened (missing folder or no permission).")
    if code == sqlite3.SQLITE_IOERR:
        return LocalStoreError(path, f"cannot be read or written (disk I/O error: {exc}).")
    return exc


def _guarded(fn: Any) -> Any:
    """Turn ``sqlite3`` errors escaping ``fn`` into :class:`LocalStoreError` sentences naming the file."""

    @functools.wraps(fn)
    def wrapper(self: LocalStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.Error as exc:
            mapped = store_error(self.path, exc)
            if mapped is exc:
                raise
            raise mapped from None
        except (UnicodeDecodeError, json.JSONDecodeError):  # stored text that no hipback wrote
            raise StoreDamagedError(
                self.path, "is damaged (it holds text or JSON that hipback cannot have written); it was left "
                           "untouched, restore it from a backup.") from None

    return wrapper


def _check_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a file that is not an SQLite database or is shorter than its header
    says (truncated); an empty file is a new store."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(100)
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        return
    except IsADirectoryError:  # the wrong path given: bad input (exit 2), nothing is damaged
        raise ConfigError(f"the local store {path} is a folder, not a store file; give the store file (for "
                          f"example {Path(path) / 'hipback.sqlite'}).") from None
    except OSError as exc:
        raise StoreReadOnlyError(path, f"cannot be read ({exc.strerror}).") from None
    if size == 0:
        return
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        raise StoreDamagedError(path, "is not a database (not an SQLite file); it was left untouched.")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    valid_for, changes = head[92:96], head[24:28]
    if page_size < 512 or page_size & (page_size - 1):
        raise StoreDamagedError(path, "is damaged (its header is garbled); it was left untouched.")
    # (skipped while a write-ahead log is in use: a checkpoint in another process may be growing the file)
    wal = Path(f"{path}-wal")
    in_use = wal.exists() and wal.stat().st_size > 0
    if pages and valid_for == changes and size < pages * page_size and not in_use:
        raise StoreDamagedError(
            path, f"is truncated ({size} of {pages * page_size} bytes); it was left untouched, restore it "
                  "from a backup.")


def _private(path: Path) -> None:
    """Mode 0600 for a store file we own that others could read (stores made before hipback 0.2 were 0644)."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            st = p.stat()
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                os.chmod(p, stat.S_IMODE(st.st_mode) & 0o700)
        except OSError:
            pass


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _loads(text: Any) -> Any:
    """Stored JSON back; anything hipback cannot have written (NULL, bytes, garbage) is a decoding error,
    which the methods report as a damaged store."""
    if not isinstance(text, str):
        raise json.JSONDecodeError("not JSON text", "", 0)
    return json.loads(text)


def _loads_meta(text: Any) -> dict:
    """A stored meta (a JSON object, as hipback writes it); anything else is a decoding error, reported as a
    damaged store."""
    obj = _loads(text)
    if not isinstance(obj, dict):
        raise json.JSONDecodeError("not a JSON object", str(text), 0)
    return obj


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def _remove_empty_wal(path: Path) -> None:
    """Remove the empty ``-wal`` and ``-shm`` files a read-only reader of a WAL store leaves behind.

    SQLite creates them for every reader of a WAL database but removes them only when the last connection to
    close could write: after a report or export of a store nobody else had open, they stayed beside it. A
    writable connection opened and closed at once removes them when it is the last one (it checkpoints an
    empty log: the database file is not written) and leaves them to their owner when another connection is
    still open. Only an empty log is touched: a non-empty one belongs to a writer (running, or stopped
    without closing) and is that writer's, or the next writer's, to apply. Nothing happens where the folder or
    file cannot be written."""
    wal = Path(f"{path}-wal")
    try:
        if not wal.is_file() or wal.stat().st_size != 0:
            return
        con = sqlite3.connect(path, isolation_level=None, timeout=0)
    except (OSError, sqlite3.Error):
        return
    try:
        con.execute("PRAGMA schema_version").fetchone()  # SQLite opens the file (and the log) on first use
    except sqlite3.Error:
        pass
    finally:
        with contextlib.suppress(sqlite3.Error):
            con.close()


class LocalStore:
    """The local SQLite store (see the module docstring). Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path | str, *, synchronous: str = "FULL", busy_timeout_s: float = 30.0,
                 readonly: bool = False) -> None:
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError("synchronous must be FULL, EXTRA or NORMAL")
        self.path = Path(path)
        self.readonly = readonly
        self._synchronous = synchronous.upper()
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        self._immutable = False
        self._verified = False
        _check_file(self.path)
        try:
            if readonly:
                self._open_readonly()
            else:
                self._open_for_writing()
        except BaseException as exc:
            self.close()
            if isinstance(exc, sqlite3.Error):
                mapped = store_error(self.path, exc)
                if mapped is not exc:
                    raise mapped from None
            if isinstance(exc, UnicodeDecodeError):
                raise StoreDamagedError(self.path, "is damaged (unreadable text in its tables); it was left "
                                                   "untouched, restore it from a backup.") from None
            raise

    def _open_for_writing(self) -> None:
        if not self.path.exists():
            folder = self.path.parent
            if not folder.exists():
                try:
                    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreReadOnlyError(self.path, f"cannot be created ({exc.strerror}).") from None
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:  # another process created it meanwhile
                _check_file(self.path)
            except OSError as exc:
                raise StoreReadOnlyError(self.path, f"cannot be created ({exc.strerror}).") from None
        elif not os.access(self.path, os.W_OK) or not os.access(self.path.parent, os.W_OK):
            raise StoreReadOnlyError(self.path, "cannot be written (the file or its folder is read-only); "
                                                "it can still be reported on and exported.")
        _private(self.path)
        con = self._con()
        version = self._version(con)  # a cheap look, before anything is written
        self._verified = True
        con.execute("PRAGMA journal_mode = WAL")  # persistent; the first write to the file
        if version == SCHEMA_VERSION:
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            version = self._version(con)
            if version == 0:
                for statement in _SCHEMA.split(";"):  # executescript would commit the transaction
                    if statement.strip():
                        con.execute(statement)
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            else:
                while version < SCHEMA_VERSION:
                    MIGRATIONS[version](con)
                    version += 1
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) "
                        "DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if con.in_transaction:
                    con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _open_readonly(self) -> None:
        if not self.path.is_file():
            raise StoreReadOnlyError(self.path, "does not exist.")
        try:
            con = self._con()
            version = self._version(con)
        except sqlite3.OperationalError as exc:
            # a WAL store whose folder is read-only cannot get its -shm file: read it as immutable (nobody can
            # be writing to it, since nobody can write in that folder)
            if _sqlite_code(exc) not in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
                raise
            self.close()
            self._closed, self._immutable = False, True
            con = self._con()
            version = self._version(con)
        if version == 0:
            raise StoreDamagedError(self.path, "holds no hipback data (an empty database).")
        if version != SCHEMA_VERSION and version not in MIGRATIONS:
            raise StoreVersionError(self.path, f"has schema version {version}, which this hipback cannot "
                                               "read.")

    def _version(self, con: sqlite3.Connection) -> int:
        """The store's schema version: 0 for an empty database; raises for a newer or a foreign database."""
        try:
            return self._read_version(con)
        except sqlite3.OperationalError as exc:
            if _sqlite_code(exc) in (0, sqlite3.SQLITE_ERROR):  # fixed queries fail only on a garbled file
                raise StoreDamagedError(self.path, f"is damaged ({exc}); it was left untouched, restore it "
                                                   "from a backup.") from None
            raise

    def _read_version(self, con: sqlite3.Connection) -> int:
        app_id = int(con.execute("PRAGMA application_id").fetchone()[0])
        user_version = int(con.execute("PRAGMA user_version").fetchone()[0])
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id == APPLICATION_ID:
            if user_version > SCHEMA_VERSION:
                raise StoreVersionError(
                    self.path, f"was made by a newer hipback (schema version {user_version}; this hipback "
                               f"knows up to {SCHEMA_VERSION}); update hipback to use it.")
            if user_version >= 1 and _TABLES <= tables:
                self._check_columns(con)
                return user_version
        elif app_id == 0 and not tables:
            return 0
        elif app_id == 0 and _TABLES <= tables:
            self._check_columns(con)
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and str(row[0]) == "1":
                return 1
        raise StoreDamagedError(self.path, "is a database of another program or of an unknown layout, not a "
                                           "hipback store; it was left untouched.")

    def _check_columns(self, con: sqlite3.Connection) -> None:
        """Every table has the columns hipback uses (a garbled schema is reported now, not mid-report)."""
        for table, wanted in _COLUMNS.items():
            have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
            if not wanted <= have:
                raise StoreDamagedError(
                    self.path, f"is damaged or not hipback's (its {table} table lacks "
                               f"{', '.join(sorted(wanted - have))}); it was left untouched.")

    @property
    def schema_version(self) -> int:
        """The schema version of the open store (:data:`SCHEMA_VERSION` once opened for writing)."""
        return int(self._con().execute("PRAGMA user_version").fetchone()[0]) or 1

    # -- connections ---------------------------------------------------------------------------------

    def _con(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"the local store {self.path} is closed")
        con = getattr(self._local, "con", None)
        if con is None:
            if self.readonly:
                from urllib.parse import quote

                uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
                uri += "&immutable=1" if self._immutable else ""
                con = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                      timeout=self._busy_timeout_ms / 1000)
                con.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
                con.execute("PRAGMA query_only = ON")
            else:
                con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                      timeout=self._busy_timeout_ms / 1000)
                con.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
                if self._verified:  # never before the file is known to be a hipback store
                    con.execute("PRAGMA journal_mode = WAL")
                con.execute(f"PRAGMA synchronous = {self._synchronous}")
                con.execute("PRAGMA foreign_keys = ON")
            self._local.con = con
            with self._all_lock:
                self._all.append(con)
        return con

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), or a savepoint inside :meth:`transaction`;
        rolled back on any exception (also a full disk or Ctrl-C).

        SQLite itself rolls back the whole transaction on some errors (a full disk): the enclosing
        :meth:`transaction` is then lost, so every later write inside it raises the same error (none may
        slip out as its own transaction) and the transaction raises it at its end instead of committing."""
        if self.readonly:
            raise StoreReadOnlyError(self.path, "was opened read-only; nothing can be written to it.")
        con = self._con()
        depth = getattr(self._local, "depth", 0)
        lost = getattr(self._local, "lost", None)
        if depth and lost is not None:
            raise lost
        name = f"hipback_{depth}"
        con.execute(f"SAVEPOINT {name}" if depth else "BEGIN IMMEDIATE")
        self._local.depth = depth + 1
        if not depth:
            self._local.lost = None
        try:
            yield con
            if depth:
                con.execute(f"RELEASE {name}")
            elif self._local.lost is not None:
                raise self._local.lost
            else:
                con.execute("COMMIT")
        except BaseException as exc:
            everything_rolled_back = not con.in_transaction
            with contextlib.suppress(sqlite3.Error):
                if con.in_transaction:
                    con.execute(f"ROLLBACK TO {name}" if depth else "ROLLBACK")
                    if depth:
                        con.execute(f"RELEASE {name}")
            if depth and everything_rolled_back and self._local.lost is None:
                mapped = store_error(self.path, exc) if isinstance(exc, sqlite3.Error) else exc
                self._local.lost = mapped if isinstance(mapped, LocalStoreError) else LocalStoreError(
                    self.path, "rolled back a transaction after an error; nothing of it was stored.")
            if not depth:
                self._local.__dict__.pop("sensor_ids", None)  # ids of rolled-back sensors are gone
                self._local.lost = None
            raise
        finally:
            self._local.depth = depth

    @contextmanager
    def transaction(self) -> Iterator[LocalStore]:
        """Group the writing calls made inside (on this thread) into one transaction: all of them are stored,
        or, when anything raises (an error, Ctrl-C) or the process dies, none."""
        try:
            with self._tx():
                yield self
        except sqlite3.Error as exc:
            mapped = store_error(self.path, exc)
            if mapped is exc:
                raise
            raise mapped from None

    def close(self) -> None:
        """Close every connection (WAL is checkpointed by SQLite when the last one closes)."""
        with self._all_lock:
            cons, self._all = self._all, []
        for con in cons:
            try:
                con.close()
            except sqlite3.Error:  # created in a thread that is gone, or the disk went away; nothing to do
                pass
        self._local = threading.local()
        self._closed = True
        if self.readonly and not self._immutable:
            _remove_empty_wal(self.path)

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.path)!r})"

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` result (``"ok"`` when the file is sound)."""
        return str(self._con().execute("PRAGMA integrity_check").fetchone()[0])

    # -- sessions ------------------------------------------------------------------------------------

    def open_session(self, patient_id: str, meta: dict | None = None, session_id: str | None = None) -> str:
        """Start a session (new uuid4 hex id) or, with ``session_id``, reopen that unfinished session.

        A ``session_id`` not yet in the store is created with that id. Reopening a finished session or
        one of another patient raises :class:`StoreError`. ``meta`` is merged into the stored meta; a
        numeric ``meta["start_utc"]`` (offline recordings) is the session start, otherwise now.
        """
        if not is_pseudonym(patient_id):
            raise StoreError(f"a session needs a pseudonymous patient id of {PSEUDONYM_RULE}, "
                             f"not {patient_id!r}"[:200])
        with self._tx() as con:
            if session_id is not None:
                row = con.execute("SELECT patient_id, end_utc, meta FROM sessions WHERE id = ?",
                                  (session_id,)).fetchone()
                if row is not None:
                    if row[0] != patient_id:
                        raise StoreError(f"session {session_id} belongs to another patient, not {patient_id}")
                    if row[1] is not None:
                        raise StoreError(f"session {session_id} is already closed and cannot be reopened")
                    if meta:
                        merged = {**_loads_meta(row[2]), **meta}
                        con.execute("UPDATE sessions SET meta = ? WHERE id = ?", (_dumps(merged), session_id))
                    return session_id
            sid = session_id or uuid.uuid4().hex
            start = (meta or {}).get("start_utc")
            start = float(start) if isinstance(start, int | float) and math.isfinite(start) else time.time()
            con.execute("INSERT INTO sessions (id, patient_id, start_utc, meta) VALUES (?, ?, ?, ?)",
                        (sid, patient_id, start, _dumps(meta or {})))
            return sid

    def find_session(self, given: str, what: str = "session") -> dict:
        """The session a user names: its whole id, a unique prefix of at least 4 characters, or ``latest``
        (the session started last). A dict with id, patient_id, start_utc, end_utc; :class:`ConfigError`
        (one sentence starting with ``what``, e.g. ``"--session"``) when no session or more than one fits.
        Looks at the ids only (no sample counts), so it stays quick on a store of many sessions."""
        con = self._con()
        cols = "SELECT id, patient_id, start_utc, end_utc FROM sessions"
        if given == "latest":
            rows = con.execute(cols + " ORDER BY start_utc DESC, rowid DESC LIMIT 1").fetchall()
            if not rows:
                raise ConfigError(f"{what} latest: the local store {self.path} holds no session yet.")
        else:
            rows = con.execute(cols + " WHERE id = ?", (given,)).fetchall()
            if not rows and len(given) >= 4:
                # (a prefix compared with substr, not LIKE: '_' and '%' in what is typed are not wildcards)
                rows = con.execute(cols + " WHERE substr(id, 1, ?) = ? LIMIT 2",
                                   (len(given), given)).fetchall()
            if len(rows) > 1:
                raise ConfigError(f"{what} {given[:80]!r} fits more than one session in {self.path}; "
                                  "give more of its id.")
            if not rows:
                short = " (a prefix of an id needs at least 4 characters)" if len(given) < 4 else ""
                raise ConfigError(f"{what} {given[:80]!r} is not in the local store {self.path}{short}.")
        r = rows[0]
        return {"id": r[0], "patient_id": r[1], "start_utc": r[2], "end_utc": r[3]}

    def latest_open_session(self, patient_id: str) -> str | None:
        """The most recently started unfinished session of this patient, or None."""
        row = self._con().execute(
            "SELECT id FROM sessions WHERE patient_id = ? AND end_utc IS NULL "
            "ORDER BY start_utc DESC, rowid DESC LIMIT 1", (patient_id,)).fetchone()
        return row[0] if row else None

    def close_session(self, session_id: str, end_utc: float | None = None) -> None:
        """Mark a session finished at ``end_utc`` (default: the last sample's time, else now)."""
        with self._tx() as con:
            self._require_session(con, session_id)
            if end_utc is None:
                row = con.execute("SELECT max(s.t) FROM samples s JOIN sensors x ON s.sensor = x.id "
                                  "WHERE x.session_id = ?", (session_id,)).fetchone()
                end_utc = row[0] if row and row[0] is not None else time.time()
            con.execute("UPDATE sessions SET end_utc = ? WHERE id = ?", (float(end_utc), session_id))

    def sessions(self, patient_id: str | None = None) -> list[dict]:
        """Sessions (newest first) with id, patient_id, start_utc, end_utc, meta, samples, outbox_pending."""
        q = ("SELECT id, patient_id, start_utc, end_utc, meta, "
             "(SELECT count(*) FROM samples s JOIN sensors x ON s.sensor = x.id "
             " WHERE x.session_id = sessions.id), "
             "(SELECT count(*) FROM outbox o WHERE o.session_id = sessions.id AND o.state = 0) "
             "FROM sessions")
        args: tuple = ()
        if patient_id is not None:
            q += " WHERE patient_id = ?"
            args = (patient_id,)
        q += " ORDER BY start_utc DESC, rowid DESC"
        return [
            {"id": r[0], "patient_id": r[1], "start_utc": r[2], "end_utc": r[3], "meta": _loads_meta(r[4]),
             "samples": r[5], "outbox_pending": r[6]}
            for r in self._con().execute(q, args)
        ]

    def session(self, session_id: str) -> dict:
        """One session's row (see :meth:`sessions`); raises :class:`StoreError` when unknown."""
        row = self._con().execute(
            "SELECT id, patient_id, start_utc, end_utc, meta FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"session {session_id} is not in the local store {self.path}")
        return {"id": row[0], "patient_id": row[1], "start_utc": row[2], "end_utc": row[3],
                "meta": _loads_meta(row[4])}

    def _require_session(self, con: sqlite3.Connection, session_id: str) -> None:
        if con.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
            raise StoreError(f"session {session_id} is not in the local store {self.path}")

    # -- sensors and samples -------------------------------------------------------------------------

    def add_sensor(self, session_id: str, placement: str, kind: str, device: str, address: str | None,
                   meta: dict | None = None) -> None:
        """Register (or update, on reconnect/restart) the sensor worn at ``placement`` in a session."""
        with self._tx() as con:
            self._require_session(con, session_id)
            con.execute(
                "INSERT INTO sensors (session_id, placement, kind, device, address, meta) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, placement) DO UPDATE SET "
                "kind = excluded.kind, device = excluded.device, address = excluded.address, "
                "meta = excluded.meta",
                (session_id, placement, kind, device, address, _dumps(meta or {})))

    def _sensor_id(self, con: sqlite3.Connection, session_id: str, placement: str) -> int:
        cache = self._local.__dict__.setdefault("sensor_ids", {})
        key = (session_id, placement)
        sid = cache.get(key)
        if sid is None:
            row = con.execute("SELECT id FROM sensors WHERE session_id = ? AND placement = ?", key).fetchone()
            if row is None:
                raise StoreError(f"no sensor at {placement} in session {session_id}: call add_sensor first")
            sid = cache[key] = int(row[0])
        return sid

    def add_samples(self, session_id: str, placement: str, t: np.ndarray, *, seq: np.ndarray | None = None,
                    quat: np.ndarray | None = None, acc: np.ndarray | None = None,
                    gyr: np.ndarray | None = None, mag: np.ndarray | None = None,
                    device_time: np.ndarray | None = None, t_offset: float | None = None) -> int:
        """Store a chunk of samples in one transaction, durable when this returns.

        ``t``: (N,) UTC Unix seconds, or seconds that ``t_offset`` turns into UTC (added here, value by
        value: the bits of ``t + t_offset``); ``seq``: (N,) ints; ``device_time``: (N,) s; ``quat``: (N, 4);
        ``acc``, ``gyr``, ``mag``: (N, 3). NaN values are stored as NULL. Returns the number of rows
        stored (duplicates of rows already stored are skipped and not counted).
        """
        # (arrays of the right type and shape, as the session's writer hands over, are taken as they are:
        # what np.asarray and reshape would return, without the calls on every chunk)
        if type(t) is not np.ndarray or t.dtype is not _F64 or t.ndim != 1:
            t = np.asarray(t, dtype=np.float64).reshape(-1)
        n = len(t)
        if n == 0:
            return 0
        t_list = t.tolist()
        if t_offset is not None:
            t_list = [v + t_offset for v in t_list]
        if not all(map(math.isfinite, t_list)):
            raise StoreError(f"{placement}: sample times must be finite")
        obj_cols: dict[int, np.ndarray] = {}
        for idx, (name, arr) in enumerate((("seq", seq), ("device_time", device_time))):
            if arr is not None:
                a = arr if type(arr) is np.ndarray and arr.ndim == 1 else np.asarray(arr).reshape(-1)
                if len(a) != n:
                    raise StoreError(f"{placement}: {name} has {len(a)} values for {n} samples")
                obj_cols[idx + 1] = a
        # q(4), acc(3), gyr(3), mag(3) as lists of rows; an absent vector is NULL, as a NaN value is (SQLite
        # stores a bound NaN as NULL): each chunk's values as they are, without joining them in numpy first
        vectors: list[Any] = []
        for name, arr, width in (("quat", quat, 4), ("acc", acc, 3), ("gyr", gyr, 3), ("mag", mag, 3)):
            if arr is None:
                vectors.append(itertools.repeat(_NULLS[width], n))
                continue
            a = arr if type(arr) is np.ndarray and arr.dtype is _F64 else np.asarray(arr, dtype=np.float64)
            if a.shape != (n, width):
                raise StoreError(f"{placement}: {name} has shape {a.shape}, not ({n}, {width})")
            vectors.append(a.tolist())
        seq_list: list[Any] = [None] * n
        if 1 in obj_cols:
            sq = obj_cols[1]
            seq_list = (sq if sq.dtype == np.int64 else sq.astype(np.int64)).tolist()
        if 2 in obj_cols:
            dt = obj_cols[2]
            if dt.dtype is not _F64:
                dt = np.asarray(dt, dtype=np.float64)
            dt_list = dt.tolist()
            if not all(map(math.isfinite, dt_list)):
                dt_list = [None if not math.isfinite(v) else v for v in dt_list]
        else:
            dt_list = [None] * n
        with self._tx() as con:
            sensor = self._sensor_id(con, session_id, placement)
            before = con.total_changes
            con.executemany(
                "INSERT OR IGNORE INTO samples (sensor, t, seq, device_time, qw, qx, qy, qz, ax, ay, az, "
                "gx, gy, gz, mx, my, mz) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((sensor, tt, s, d, *q, *ac, *g, *m)
                 for tt, s, d, q, ac, g, m in zip(t_list, seq_list, dt_list, *vectors, strict=True)))
            return con.total_changes - before

    def sample_count(self, session_id: str, placement: str | None = None) -> int:
        q = "SELECT count(*) FROM samples s JOIN sensors x ON s.sensor = x.id WHERE x.session_id = ?"
        args: tuple = (session_id,)
        if placement is not None:
            q += " AND x.placement = ?"
            args += (placement,)
        return int(self._con().execute(q, args).fetchone()[0])

    def sensors(self, session_id: str) -> list[dict]:
        """The session's sensors without their samples: dicts with placement, kind, device, address, meta
        and samples (the number stored), in the order they were added."""
        return [{"placement": r[0], "kind": r[1], "device": r[2], "address": r[3], "meta": _loads_meta(r[4]),
                 "samples": r[5]}
                for r in self._con().execute(
                    "SELECT placement, kind, device, address, meta, "
                    "(SELECT count(*) FROM samples s WHERE s.sensor = sensors.id) "
                    "FROM sensors WHERE session_id = ? ORDER BY id", (session_id,))]

    def add_gap(self, session_id: str, placement: str, t_start: float, t_end: float, missing: int,
                reason: str) -> None:
        """Record a stretch of missing samples (UTC s; ``missing`` estimated samples lost)."""
        with self._tx() as con:
            self._require_session(con, session_id)
            con.execute("INSERT INTO gaps (session_id, placement, t_start, t_end, missing, reason) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (session_id, placement, float(t_start), float(t_end), int(missing), reason))

    def gaps(self, session_id: str) -> list[Gap]:
        """Gaps of a session in UTC seconds."""
        return [Gap(placement=r[0], t_start=r[1], t_end=r[2], missing=r[3], reason=r[4])
                for r in self._con().execute("SELECT placement, t_start, t_end, missing, reason FROM gaps "
                                             "WHERE session_id = ? ORDER BY t_start, id", (session_id,))]

    def add_event(self, session_id: str, kind: str, payload: dict, t: float | None = None) -> None:
        """Record a device status, decoder reject, reconnect, calibration, ... (``t`` UTC s, default now)."""
        with self._tx() as con:
            self._require_session(con, session_id)
            con.execute("INSERT INTO events (session_id, t, kind, payload) VALUES (?, ?, ?, ?)",
                        (session_id, time.time() if t is None else float(t), kind, _dumps(payload)))

    def events(self, session_id: str, kind: str | None = None) -> list[dict]:
        """Events of a session in time order: dicts with t, kind, payload."""
        q = "SELECT t, kind, payload FROM events WHERE session_id = ?"
        args: tuple = (session_id,)
        if kind is not None:
            q += " AND kind = ?"
            args += (kind,)
        return [{"t": r[0], "kind": r[1], "payload": _loads(r[2])}
                for r in self._con().execute(q + " ORDER BY t, id", args)]

    # -- results -------------------------------------------------------------------------------------

    def put_results(self, session_id: str, kind: str, rows: list[dict]) -> None:
        """Replace the stored rows of one result kind (strides, holds, activity, summary, angles, ...)."""
        encoded = [(session_id, kind, i, _dumps(row)) for i, row in enumerate(rows)]
        with self._tx() as con:
            self._require_session(con, session_id)
            con.execute("DELETE FROM results WHERE session_id = ? AND kind = ?", (session_id, kind))
            con.executemany("INSERT INTO results (session_id, kind, idx, row) VALUES (?, ?, ?, ?)", encoded)

    def put_result_rows(self, session_id: str, kind: str, first_idx: int, rows: list[dict]) -> None:
        """Store rows of one result kind at ``first_idx``, ``first_idx + 1``, ... (replacing rows stored
        there), keeping the kind's other rows: a series stored as it comes (a live session's angles)."""
        encoded = [(session_id, kind, first_idx + i, _dumps(row)) for i, row in enumerate(rows)]
        with self._tx() as con:
            self._require_session(con, session_id)
            con.executemany(
                "INSERT OR REPLACE INTO results (session_id, kind, idx, row) VALUES (?, ?, ?, ?)", encoded
            )

    def get_results(self, session_id: str, kind: str) -> list[dict]:
        return [_loads(r[0]) for r in self._con().execute(
            "SELECT row FROM results WHERE session_id = ? AND kind = ? ORDER BY idx", (session_id, kind))]

    def accelerometer_offset(self, address: str, kind: str = "raw") -> dict | None:
        """The accelerometer offset last estimated for the sensor with Bluetooth ``address``: from the newest
        finished session in which a ``kind`` sensor with that address estimated its own (``updates`` > 0 in
        the summary's ``accelerometer_offset``; one only carried over from an earlier session does not
        count). ``{"offset_m_s2": [x, y, z], "uncertainty_m_s2": [...], "session_id", "start_utc",
        "placement"}`` or None. Summaries that are not what hipback writes are passed over."""
        rows = self._con().execute(
            "SELECT s.id, s.start_utc, x.placement FROM sensors x JOIN sessions s ON x.session_id = s.id "
            "WHERE x.address = ? AND x.kind = ? AND s.end_utc IS NOT NULL ORDER BY s.start_utc DESC LIMIT 50",
            (address, kind)).fetchall()
        for session_id, start_utc, placement in rows:
            summary = self.get_results(session_id, "summary")
            first = summary[0] if summary and isinstance(summary[0], dict) else {}
            info = first.get("accelerometer_offset")
            entry = info.get(placement) if isinstance(info, dict) else None
            updates = entry.get("updates") if isinstance(entry, dict) else None
            if not isinstance(updates, int) or updates < 1:
                continue
            offset = entry.get("offset_m_s2")  # type: ignore[union-attr]
            if (not isinstance(offset, list) or len(offset) != 3
                    or not all(isinstance(v, int | float) and math.isfinite(v) for v in offset)):
                continue
            return {"offset_m_s2": [float(v) for v in offset],
                    "uncertainty_m_s2": entry.get("uncertainty_m_s2"),  # type: ignore[union-attr]
                    "session_id": session_id, "start_utc": float(start_utc), "placement": placement}
        return None

    # -- reading a recording back --------------------------------------------------------------------

    def load_recording(self, session_id: str) -> Recording:
        """The session's samples as a :class:`Recording` on the session's own timeline: time 0 is the UTC
        time in the session's ``meta["start_utc"]`` (the live session's time 0, or the imported recording's
        start), so processing them again gives the times the stored results have; without it (or with samples
        before it), time 0 is the first sample. ``start_utc`` is set to that time.

        Streams are read sensor by sensor in chunks and sorted by time; columns that are NULL in every
        row of a sensor are None in its stream; gaps are on the recording timeline. Rows holding a value the
        sensor cannot produce (a corrupted store) are left out and counted in the stream's
        ``meta["rejected_on_load"]``. A session whose samples span more than a recording may, or sparsely
        (the importers' rules), raises :class:`StoreError` before it is processed.
        """
        con = self._con()
        info = self.session(session_id)
        sensors = con.execute("SELECT id, placement, kind, device, address, meta FROM sensors "
                              "WHERE session_id = ? ORDER BY id", (session_id,)).fetchall()
        raw: dict[str, tuple[tuple, np.ndarray, np.ndarray]] = {}
        t0 = math.inf
        for sensor in sensors:
            cur = con.execute(f"SELECT {', '.join(_SAMPLE_COLUMNS)} FROM samples WHERE sensor = ?",
                              (sensor[0],))
            chunks = []
            seqs: list[Any] = []
            while True:
                rows = cur.fetchmany(20000)
                if not rows:
                    break
                seqs.extend(r[1] for r in rows)
                try:
                    chunks.append(np.array([(r[0], r[2], *r[3:]) for r in rows], dtype=np.float64))
                except (TypeError, ValueError):  # text where hipback stores numbers
                    raise StoreDamagedError(self.path, f"is damaged (session {session_id} holds samples that "
                                                       "are not numbers); it was left untouched.") from None
            if not chunks:
                continue
            data = np.concatenate(chunks)
            order = np.argsort(data[:, 0], kind="stable")
            data = data[order]
            try:
                seq_arr = np.array([(-1 if s is None else s) for s in seqs], dtype=np.int64)[order]
            except (TypeError, ValueError, OverflowError):
                raise StoreDamagedError(
                    self.path, f"is damaged (session {session_id} holds sequence numbers that are not whole "
                               "numbers); it was left untouched.") from None
            has_seq = any(s is not None for s in seqs)
            ok = _plausible_rows(data, sensor[3])
            if not ok.all():  # a flipped bit in a stored value: drop the row rather than derail processing
                sensor = (*sensor[:5],
                          _dumps({**_loads_meta(sensor[5]), "rejected_on_load": int((~ok).sum())}))
                data, seq_arr = data[ok], seq_arr[ok]
                if not len(data):
                    continue
            raw[sensor[1]] = (sensor, data, seq_arr if has_seq else None)
            t0 = min(t0, float(data[0, 0]))
        from hipback.ingest.files.assemble import MAX_SPAN_S, SPARSE_FACTOR, SPARSE_SPAN_S

        last = max((float(d[-1, 0]) for _, d, _ in raw.values()), default=t0)
        covered = max((len(d) / _rate(s, d) for s, d, _ in raw.values()), default=0.0)
        if last - t0 > MAX_SPAN_S or last - t0 > max(SPARSE_SPAN_S, SPARSE_FACTOR * covered):
            raise StoreError(
                f"session {session_id} in the local store {self.path} spans {(last - t0) / 3600:.3g} h of "
                f"sample times but holds {covered:.4g} s of samples per sensor at most: some stored times "
                "are corrupt")
        t_ref = t0 if math.isfinite(t0) else info["start_utc"]
        start = info["meta"].get("start_utc")
        if isinstance(start, int | float) and math.isfinite(start) and start <= t_ref:
            t_ref = float(start)
        streams: dict[str, SensorStream] = {}
        for placement, (sensor, data, seq_arr) in raw.items():
            meta = _loads_meta(sensor[5])
            vectors: dict[str, np.ndarray | None] = {}
            col = 2
            for name, names in _VECTORS:
                block = data[:, col:col + len(names)]
                col += len(names)
                vectors[name] = None if np.isnan(block).all() else block
            t = data[:, 0] - t_ref
            rate = meta.get("rate_hz")
            if rate is None:
                rate = float(1.0 / np.median(np.diff(t))) if len(t) > 1 and np.median(np.diff(t)) > 0 else 0.0
            device_time = data[:, 1]
            stream_meta = {**meta, "device_kind": sensor[2], "address": sensor[4]}
            if not np.isnan(device_time).all():
                stream_meta["device_time"] = device_time
            kind = sensor[2]
            if kind not in ("quat", "raw"):  # a device protocol name: infer from the stored columns
                kind = "quat" if vectors["quat"] is not None else "raw"
            needs = ("quat",) if kind == "quat" else ("acc", "gyr")
            if any(vectors[name] is None for name in needs):
                raise StoreDamagedError(
                    self.path, f"is damaged (session {session_id}: the {placement} sensor is stored as "
                               f"{'a quaternion' if kind == 'quat' else 'a raw'} sensor but has no "
                               f"{' or '.join(needs)} samples); it was left untouched.")
            streams[placement] = SensorStream(
                placement=placement, kind=kind, t=t, rate_hz=float(rate), quat=vectors["quat"],
                acc=vectors["acc"], gyr=vectors["gyr"], mag=vectors["mag"], seq=seq_arr, device=sensor[3],
                meta=stream_meta)
        gaps = [Gap(g.placement, g.t_start - t_ref, g.t_end - t_ref, g.missing, g.reason)
                for g in self.gaps(session_id)]
        return Recording(streams=streams, start_utc=t_ref, gaps=gaps,
                         meta={**info["meta"], "session_id": session_id, "patient_id": info["patient_id"]})

    # -- outbox --------------------------------------------------------------------------------------

    def outbox_add(self, session_id: str | None, lines: Sequence[str] | Sequence[Point]) -> int:
        """Queue line-protocol lines (or :class:`Point` objects, encoded here in ns precision) for InfluxDB.

        Lines must have nanosecond timestamps (the sync worker writes with ``precision=ns``). Returns
        the number of lines queued (points without a field are dropped by the encoder).
        """
        text_lines: list[str] = []
        for item in lines:
            if isinstance(item, Point):
                if item.time_ns is None:
                    raise StoreError("points for the outbox need an explicit timestamp, so that a replay "
                                     "overwrites them instead of adding new ones")
                text_lines.extend(encode_lines([item], precision="ns"))
            else:
                line = str(item).rstrip("\n")
                if "\n" in line or "\r" in line or not _TIMESTAMPED.search(line):
                    raise StoreError("an outbox entry must be one line of line protocol ending with an "
                                     "explicit nanosecond timestamp")
                text_lines.append(line)
        now = time.time()
        with self._tx() as con:
            con.executemany("INSERT INTO outbox (session_id, line, created_utc) VALUES (?, ?, ?)",
                            ((session_id, line, now) for line in text_lines))
        return len(text_lines)

    def outbox_pending(self, limit: int, session_id: str | None = None) -> list[tuple[int, str]]:
        """Up to ``limit`` pending (id, line) pairs, oldest first (optionally of one session)."""
        if session_id is None:
            rows = self._con().execute("SELECT id, line FROM outbox WHERE state = 0 ORDER BY id LIMIT ?",
                                       (int(limit),))
        else:
            rows = self._con().execute("SELECT id, line FROM outbox WHERE state = 0 AND session_id = ? "
                                       "ORDER BY id LIMIT ?", (session_id, int(limit)))
        return [(int(r[0]), r[1]) for r in rows]

    def outbox_mark_delivered(self, ids: Sequence[int]) -> None:
        """Mark lines delivered (call only after the server answered 2xx for them)."""
        self._outbox_set(ids, DELIVERED, None)

    def outbox_set_aside(self, ids: Sequence[int], reason: str) -> None:
        """Take lines out of the queue because the server rejected them (kept with the reason)."""
        self._outbox_set(ids, SET_ASIDE, reason)

    def outbox_requeue(self, ids: Sequence[int] | None = None, *, set_aside: bool = True) -> int:
        """Put set-aside lines (all, or ``ids``) back into the queue, e.g. after fixing the database."""
        with self._tx() as con:
            before = con.total_changes
            if ids is None:
                con.execute("UPDATE outbox SET state = 0, reason = NULL, done_utc = NULL WHERE state = ?",
                            (SET_ASIDE if set_aside else DELIVERED,))
            else:
                con.executemany("UPDATE outbox SET state = 0, reason = NULL, done_utc = NULL WHERE id = ?",
                                ((int(i),) for i in ids))
            return con.total_changes - before

    def outbox_set_aside_lines(self, limit: int = 100) -> list[dict]:
        """Set-aside lines with their reason (newest first), for inspection."""
        return [{"id": r[0], "session_id": r[1], "line": r[2], "reason": r[3], "done_utc": r[4]}
                for r in self._con().execute("SELECT id, session_id, line, reason, done_utc FROM outbox "
                                             "WHERE state = 2 ORDER BY id DESC LIMIT ?", (int(limit),))]

    def _outbox_set(self, ids: Sequence[int], state: int, reason: str | None) -> None:
        now = time.time()
        with self._tx() as con:
            con.executemany(
                "UPDATE outbox SET state = ?, done_utc = ?, reason = ? WHERE id = ? AND state = 0",
                ((state, now, reason, int(i)) for i in ids))

    def outbox_stats(self, session_id: str | None = None) -> dict:
        """Counts of lines by state: ``{"pending": n, "delivered": n, "set_aside": n, "total": n}``."""
        q = "SELECT state, count(*) FROM outbox"
        args: tuple = ()
        if session_id is not None:
            q += " WHERE session_id = ?"
            args = (session_id,)
        stats = dict.fromkeys(_STATE_NAMES.values(), 0)
        for state, count in self._con().execute(q + " GROUP BY state", args):
            stats[_STATE_NAMES.get(state, str(state))] = int(count)
        stats["total"] = sum(stats.values())
        return stats



def _rate(sensor: tuple, data: np.ndarray) -> float:
    """A stored sensor's rate (Hz): its meta's ``rate_hz``, else from the median time step (at least 1 Hz)."""
    rate = _loads_meta(sensor[5]).get("rate_hz")
    if isinstance(rate, int | float) and math.isfinite(rate) and rate > 0:
        return float(rate)
    step = float(np.median(np.diff(data[:, 0]))) if len(data) > 1 else 0.0
    return 1.0 / step if step > 0 else 1.0


def _plausible_rows(data: np.ndarray, device: str) -> np.ndarray:
    """Rows of stored samples (t, device_time, q(4), acc(3), gyr(3), mag(3)) a sensor can produce: finite
    time, acc and gyr within the device's full scale, mag within its limit, quaternion norm near 1 (NaN
    allowed: a missing value). The same limits as the importers (:mod:`hipback.ingest.files.assemble`)."""
    from hipback.ingest.files.assemble import (
        DEFAULT_FULL_SCALE,
        FULL_SCALE,
        MAG_LIMIT,
        QUAT_NORM_TOLERANCE,
        RANGE_MARGIN,
    )

    acc_fs, gyr_fs = FULL_SCALE.get(device, DEFAULT_FULL_SCALE)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.isfinite(data[:, 0])
        ok &= ~(np.abs(data[:, 6:9]) > acc_fs * (1 + RANGE_MARGIN)).any(axis=1)
        ok &= ~(np.abs(data[:, 9:12]) > gyr_fs * (1 + RANGE_MARGIN)).any(axis=1)
        ok &= ~(np.abs(data[:, 12:15]) > MAG_LIMIT).any(axis=1)
        norm = np.linalg.norm(data[:, 2:6], axis=1)
        ok &= ~(np.abs(norm - 1.0) > QUAT_NORM_TOLERANCE) | np.isnan(norm)
        ok &= ~np.isinf(data[:, 1:]).any(axis=1)
    return ok


def _guard_public_methods(cls: type) -> None:
    for name, fn in list(vars(cls).items()):
        if not name.startswith("_") and callable(fn) and name not in ("transaction", "close"):
            setattr(cls, name, _guarded(fn))


_guard_public_methods(LocalStore)

"""The local store's lifecycle: schema versions and forward migration (from the first release's store),
read-only opening, damaged files refused and left untouched, private file modes,
transactions, and a full disk."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.errors import (
    LocalStoreError,
    StoreDamagedError,
    StoreFullError,
    StoreReadOnlyError,
    StoreVersionError,
)
from hipback.ingest.store import APPLICATION_ID, SCHEMA_VERSION, LocalStore

DATA = Path(__file__).parent / "data"
V1_SESSION = "5a1e0000c0ffee000000000000000001"
T0 = 1_763_700_000.0


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _v1_store(folder: Path) -> Path:
    """A store as the first release (git 95307b2) wrote it, from tests/data/store_v1_95307b2.sql."""
    path = folder / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript((DATA / "store_v1_95307b2.sql").read_text(encoding="utf-8"))
    con.execute("PRAGMA journal_mode = WAL")
    con.close()
    return path


def _add_walk(store: LocalStore, n: int = 200, t0: float = T0 + 100) -> str:
    sid = store.open_session("P-0007")
    store.add_sensor(sid, "pelvis", "raw", "dev", None)
    t = t0 + np.arange(n) / 100.0
    store.add_samples(sid, "pelvis", t, seq=np.arange(n), acc=np.ones((n, 3)), gyr=np.zeros((n, 3)))
    return sid


# -- versions and migration ---------------------------------------------------------------------------------


def test_a_store_of_the_first_release_is_migrated_forward_and_keeps_everything(tmp_path: Path) -> None:
    path = _v1_store(tmp_path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 0
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0
    con.close()

    with LocalStore(path) as st:
        assert st.schema_version == SCHEMA_VERSION == 2
        (row,) = st.sessions()
        assert (row["id"], row["patient_id"]) == (V1_SESSION, "P-0042")
        assert (row["samples"], row["outbox_pending"]) == (300, 1)
        rec = st.load_recording(V1_SESSION)
        assert len(rec.streams["pelvis"]) == 300 and rec.start_utc == pytest.approx(T0)
        np.testing.assert_allclose(np.linalg.norm(rec.streams["pelvis"].quat, axis=1), 1.0)
        assert st.get_results(V1_SESSION, "summary") == [{"duration_s": 2.99}]
        assert st.outbox_stats() == {"pending": 1, "delivered": 1, "set_aside": 0, "total": 2}
        sid = _add_walk(st)  # the migrated store takes new sessions
        assert st.sample_count(sid) == 200
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    meta = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    assert meta == str(SCHEMA_VERSION)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with LocalStore(path) as st:  # opening again changes nothing
        assert len(st.sessions()) == 2


def test_a_store_of_the_first_release_is_read_without_migrating_it(tmp_path: Path) -> None:
    """Read-only use (report, export) of an old store changes nothing in it: no migration."""
    path = _v1_store(tmp_path)
    before = _digest(path)
    with LocalStore(path, readonly=True) as st:
        assert st.schema_version == 1
        assert len(st.load_recording(V1_SESSION).streams["pelvis"]) == 300
        assert st.outbox_stats()["pending"] == 1
    assert _digest(path) == before


def test_a_store_of_a_newer_hipback_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    LocalStore(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    before = _digest(path)
    for readonly in (False, True):
        with pytest.raises(StoreVersionError, match=r"newer hipback \(schema version 3"):
            LocalStore(path, readonly=readonly)
    assert _digest(path) == before


# -- damaged files ------------------------------------------------------------------------------------------


def _damaged(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.sqlite"
    if kind == "not_sqlite":
        path.write_bytes(b"time_s,acc_x\n0.0,1.0\n" * 50)
    elif kind == "foreign":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
        con.execute("INSERT INTO contacts VALUES ('someone', '123')")
        con.commit()
        con.close()
    else:
        with LocalStore(path) as st:
            _add_walk(st, n=5000)
        data = path.read_bytes()
        if kind == "truncated":
            path.write_bytes(data[: len(data) // 2])
        elif kind == "garbled_header":
            path.write_bytes(data[:16] + b"\xff" * 84 + data[100:])
        elif kind == "garbled_pages":
            rng = np.random.default_rng(5)
            page = 4096
            body = bytearray(data)
            for k in range(1, len(data) // page):
                body[k * page: (k + 1) * page] = rng.integers(0, 256, page, dtype=np.uint8).tobytes()
            path.write_bytes(bytes(body))
    return path


@pytest.mark.parametrize("kind", ["not_sqlite", "foreign", "truncated", "garbled_header", "garbled_pages"])
def test_a_damaged_store_is_one_sentence_and_never_overwritten(tmp_path: Path, kind: str) -> None:
    path = _damaged(tmp_path, kind)
    before = _digest(path)
    for readonly in (False, True):
        with pytest.raises(LocalStoreError) as err:
            with LocalStore(path, readonly=readonly) as st:
                st.sessions()
                for row in st.sessions():
                    st.load_recording(row["id"])
                _add_walk(st)
        assert isinstance(err.value, StoreDamagedError), err.value
        text = str(err.value)
        assert text.startswith(f"the local store {path} ") and "\n" not in text
        assert text.count(". ") == 0 and text.endswith(".")
    assert _digest(path) == before
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


# -- read-only stores ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _read_only_folder(folder: Path) -> Iterator[str]:
    """Make ``folder`` read-only for this process: a read-only bind mount as root (root ignores file modes),
    file modes otherwise. Yields how it was done."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
            yield "read-only bind mount"
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in folder.iterdir()}
        for p in folder.iterdir():
            p.chmod(0o400)
        folder.chmod(0o500)
        try:
            yield "file modes"
        finally:
            folder.chmod(0o700)
            for p, m in modes.items():
                p.chmod(m)


def _beside(path: Path) -> set[str]:
    return {p.name for p in path.parent.iterdir()}


def test_a_reader_leaves_no_log_files_beside_a_store_it_had_alone(tmp_path: Path) -> None:
    """A report or export of a closed WAL store used to leave an empty -wal and a -shm beside it: SQLite
    removes them only when the last connection to close could write. They are gone after the last reader,
    the database file untouched; while a writer (or another reader) still has the store open they stay."""
    path = tmp_path / "hipback.sqlite"
    with LocalStore(path) as st:
        sid = _add_walk(st)
    assert _beside(path) == {"hipback.sqlite"}
    before = _digest(path)
    with LocalStore(path, readonly=True) as outer:
        assert "hipback.sqlite-wal" in _beside(path)  # SQLite made them for the reader
        with LocalStore(path, readonly=True) as inner:
            assert len(inner.load_recording(sid).streams["pelvis"]) == 200
        assert "hipback.sqlite-wal" in _beside(path)  # the outer reader still uses them
        assert len(outer.sessions()) == 1
    assert _beside(path) == {"hipback.sqlite"}
    assert _digest(path) == before
    with LocalStore(path) as writer:  # a gateway still recording: its log is its own
        _add_walk(writer, t0=T0 + 500)
        with LocalStore(path, readonly=True) as reader:
            assert len(reader.sessions()) == 2
        assert Path(f"{path}-wal").stat().st_size > 0
        _add_walk(writer, t0=T0 + 900)
    assert _beside(path) == {"hipback.sqlite"}
    with LocalStore(path) as st:
        assert len(st.sessions()) == 3


def test_an_archived_read_only_store_can_be_read_but_not_written(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    folder.mkdir()
    path = _v1_store(folder)  # an old store, archived before it was ever migrated
    with LocalStore(path) as st:  # ... or after: both must be readable
        sid = _add_walk(st)
    assert not Path(f"{path}-wal").exists()  # closed cleanly: no -wal/-shm next to an archived store
    with _read_only_folder(folder):
        before = _digest(path)
        with LocalStore(path, readonly=True) as st:
            assert {r["id"] for r in st.sessions()} == {V1_SESSION, sid}
            assert len(st.load_recording(sid).streams["pelvis"]) == 200
            with pytest.raises(StoreReadOnlyError, match="opened read-only"):
                _add_walk(st)
        with pytest.raises(StoreReadOnlyError, match="cannot be written"):
            LocalStore(path)
        assert _digest(path) == before


def test_read_only_opening_never_creates_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreReadOnlyError, match="does not exist"):
        LocalStore(tmp_path / "none.sqlite", readonly=True)
    assert not (tmp_path / "none.sqlite").exists()
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(StoreDamagedError, match="no hipback data"):
        LocalStore(empty, readonly=True)
    assert empty.stat().st_size == 0


# -- private by default -------------------------------------------------------------------------------------


def test_store_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "new-folder" / "hipback.sqlite"
        with LocalStore(path) as st:
            _add_walk(st)
            modes = {p.name: p.stat().st_mode & 0o777 for p in path.parent.iterdir()}
        assert modes == {"hipback.sqlite": 0o600, "hipback.sqlite-wal": 0o600, "hipback.sqlite-shm": 0o600}
        assert path.parent.stat().st_mode & 0o777 == 0o700
        # a store made readable by others (as the first release did) is tightened when opened for writing
        old_store = _v1_store(tmp_path)
        old_store.chmod(0o644)
        LocalStore(old_store).close()
        assert old_store.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


# -- transactions -------------------------------------------------------------------------------------------


def test_a_transaction_interrupted_by_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        kept = _add_walk(st)
        with pytest.raises(KeyboardInterrupt), st.transaction():
            sid = _add_walk(st, t0=T0 + 1000)
            st.add_gap(sid, "pelvis", T0 + 1001, T0 + 1002, 99, "disconnect")
            raise KeyboardInterrupt
        assert [r["id"] for r in st.sessions()] == [kept]
        assert st.sample_count(kept) == 200
        sid = _add_walk(st, t0=T0 + 2000)  # the same thread writes normally afterwards
        assert st.sample_count(sid) == 200


# -- a full disk --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _small_disk(folder: Path, size_kib: int, how: str) -> Iterator[str]:
    """A disk that fills up: a small tmpfs at ``folder`` (needs root), or the store's page limit (SQLite then
    answers SQLITE_FULL exactly as on a full disk). Yields ``how``."""
    folder.mkdir()
    if how == "tmpfs":
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root; the page_limit variant of this test runs instead")
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(folder)],
                       check=True)
        try:
            yield how
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=True)
    else:
        yield how


@pytest.mark.parametrize("how", ["tmpfs", "page_limit"])
def test_a_full_disk_stops_storing_keeps_what_was_stored_and_resumes_with_space(tmp_path: Path, how) -> None:
    disk = tmp_path / "disk"
    with _small_disk(disk, 768, how):
        path = disk / "hipback.sqlite"
        ballast = disk / "ballast.bin"
        st = LocalStore(path)
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "raw", "dev", None)
        if how == "tmpfs":
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            ballast.write_bytes(b"\0" * (free - 256 * 1024))  # leave 256 KiB for the store
        else:
            st._con().execute("PRAGMA max_page_count = 64")
        rng = np.random.default_rng(1)
        stored, k, error = 0, 0, None
        while error is None:
            t = T0 + (k * 50 + np.arange(50)) / 100.0
            try:
                stored += st.add_samples(sid, "pelvis", t, seq=k * 50 + np.arange(50),
                                         acc=rng.normal(size=(50, 3)), gyr=rng.normal(size=(50, 3)))
            except StoreFullError as exc:
                error = exc
            k += 1
            assert k < 10_000, "the disk never filled up"
        assert stored > 0
        assert "full disk" in str(error) and str(error).startswith(f"the local store {path} ")
        assert st.sample_count(sid) == stored  # everything stored before is intact ...
        assert st.integrity_check() == "ok"
        with pytest.raises(StoreFullError):  # ... and the disk is still full
            st.add_samples(sid, "pelvis", T0 + 1e4 + np.arange(50) / 100, acc=np.ones((50, 3)),
                           gyr=np.ones((50, 3)))
        if how == "tmpfs":
            ballast.unlink()  # space returns
        else:
            st._con().execute("PRAGMA max_page_count = 1000000")
        t = T0 + 2e4 + np.arange(50) / 100.0
        assert st.add_samples(sid, "pelvis", t, acc=np.ones((50, 3)), gyr=np.ones((50, 3))) == 50
        st.close_session(sid)
        st.close()
        with LocalStore(path, readonly=True) as again:
            assert again.sample_count(sid) == stored + 50
            assert again.integrity_check() == "ok"
            assert again.session(sid)["end_utc"] == pytest.approx(t[-1])


@pytest.mark.parametrize("how", ["tmpfs", "page_limit"])
def test_a_recording_session_writer_survives_a_full_disk(tmp_path: Path, how: str) -> None:
    """The session's store writer (every 20 ms, one transaction per placement) on a disk that fills up: the
    failed writes report the store's one sentence, the session goes on, and storing resumes with space."""
    import asyncio

    from hipback.ingest.session.writer import StoreWriter

    disk = tmp_path / "disk"
    with _small_disk(disk, 768, how):
        path = disk / "hipback.sqlite"
        st = LocalStore(path)
        sid = st.open_session("P-0001")
        st.add_sensor(sid, "pelvis", "raw", "dev", None)
        st.add_sensor(sid, "thigh_left", "raw", "dev", None)
        ballast = disk / "ballast.bin"
        written: list[int] = []
        errors: list[BaseException] = []

        async def session() -> None:
            writer = StoreWriter(st, sid, asyncio.get_running_loop(),
                                 on_written=lambda p, stored, offered, perfs, at: written.append(stored),
                                 on_error=lambda what, p, exc: errors.append(exc))
            k = 0

            def chunk() -> None:  # one 20 ms round: both sensors in one transaction
                nonlocal k
                t = T0 + (k * 50 + np.arange(50)) / 100.0
                for placement in ("pelvis", "thigh_left"):
                    writer.samples(placement, t, {"seq": k * 50 + np.arange(50), "acc": np.ones((50, 3)),
                                                  "gyr": np.zeros((50, 3)), "quat": None, "mag": None,
                                                  "device_time": None}, [0.0])
                writer.write_now()
                k += 1

            chunk()
            if how == "tmpfs":
                free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
                ballast.write_bytes(b"\0" * (free - 64 * 1024))
            else:
                st._con().execute("PRAGMA max_page_count = 40")
            while not errors:
                chunk()
                assert k < 10_000, "the disk never filled up"
            stored_before, failed = sum(written), len(errors)
            chunk()  # still full: another failed round, the session goes on
            assert len(errors) > failed and sum(written) == stored_before
            if how == "tmpfs":
                ballast.unlink()
            else:
                st._con().execute("PRAGMA max_page_count = 1000000")
            chunk()  # space is back: storing resumes
            await writer.close()
            assert sum(written) == stored_before + 100

        asyncio.run(session())
        assert all(isinstance(e, StoreFullError) for e in errors)
        assert str(errors[0]).startswith(f"the local store {path} is on a full disk")
        assert st.sample_count(sid) == sum(written) and st.integrity_check() == "ok"
        st.close()


def test_impossible_stored_values_are_left_out_on_load_and_counted(tmp_path: Path) -> None:
    """A flipped bit in a stored number (acc 1e300, a quaternion of norm 3): the row is left out when the
    session is read back for a report or an export, and counted; the other rows are read as stored."""
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = _add_walk(st, n=300)
    con = sqlite3.connect(path)
    con.execute("UPDATE samples SET ax = 1e300 WHERE seq = 100")
    con.execute("UPDATE samples SET gx = -1e5 WHERE seq = 101")
    con.commit()
    con.close()
    with LocalStore(path, readonly=True) as st:
        s = st.load_recording(sid).streams["pelvis"]
    assert len(s) == 298 and s.meta["rejected_on_load"] == 2
    assert np.abs(s.acc).max() == 1.0 and 100 not in s.seq and 101 not in s.seq


def test_a_stored_session_with_a_corrupt_time_is_refused_before_processing(tmp_path: Path) -> None:
    from hipback.ingest.store import StoreError

    path = tmp_path / "s.sqlite"
    with LocalStore(path) as st:
        sid = _add_walk(st, n=300)
    con = sqlite3.connect(path)
    con.execute("UPDATE samples SET t = t + 65536 WHERE seq = 299")  # 18 h later: 3 s of samples
    con.commit()
    con.close()
    with LocalStore(path, readonly=True) as st, pytest.raises(StoreError, match="stored times are corrupt"):
        st.load_recording(sid)


@pytest.mark.parametrize("patient", ["P-0001\n", "P-0001\r\n", " P-0001", "Jane Doe", "", "a" * 65, "é",
                                     "P.0042", "P:0042", "-P0042", "_P0042"])
def test_the_store_takes_only_exact_pseudonyms(tmp_path: Path, patient: str) -> None:
    from hipback.ingest.store import StoreError

    with LocalStore(tmp_path / "s.sqlite") as st:
        with pytest.raises(StoreError, match="pseudonymous patient id"):
            st.open_session(patient)
        assert st.sessions() == []


@pytest.mark.parametrize("how", ["tmpfs", "page_limit"])
def test_a_transaction_lost_to_a_full_disk_stores_nothing_and_says_so(tmp_path: Path, how: str) -> None:
    """SQLite rolls the whole transaction back when the disk fills up: the writes before are gone with it, a
    later write inside it is refused (it must not slip out as its own transaction) and the transaction
    raises instead of committing."""
    disk = tmp_path / "disk"
    with _small_disk(disk, 768, how):
        st = LocalStore(disk / "s.sqlite")
        sid = st.open_session("P-0001")
        for p in ("pelvis", "thigh_left"):
            st.add_sensor(sid, p, "raw", "dev", None)
        if how == "tmpfs":
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            (disk / "ballast.bin").write_bytes(b"\0" * (free - 96 * 1024))
        else:
            st._con().execute("PRAGMA max_page_count = 40")
        one, many = np.arange(50), np.arange(200_000)  # more than SQLite's page cache: written before commit
        with pytest.raises(StoreFullError), st.transaction():
            ones = np.ones((50, 3))
            assert st.add_samples(sid, "pelvis", T0 + one / 100, acc=ones, gyr=ones) == 50
            with pytest.raises(StoreFullError):
                st.add_samples(sid, "thigh_left", T0 + many / 100, acc=np.ones((len(many), 3)),
                               gyr=np.ones((len(many), 3)))
            with pytest.raises(StoreFullError):  # the transaction is lost: no write may slip out of it
                st.add_samples(sid, "pelvis", T0 + 9 + one / 100, acc=ones, gyr=ones)
        assert st.sample_count(sid) == 0
        if how == "tmpfs":
            (disk / "ballast.bin").unlink()
        else:
            st._con().execute("PRAGMA max_page_count = 1000000")
        with st.transaction():
            st.add_samples(sid, "pelvis", T0 + one / 100, acc=np.ones((50, 3)), gyr=np.ones((50, 3)))
        assert st.sample_count(sid) == 50 and st.integrity_check() == "ok"
        st.close()

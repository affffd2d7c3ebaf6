"""The local SQLite store: sessions, samples (idempotent, crash-safe), gaps, events, results, outbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.influx.lineprotocol import Point
from hipback.ingest.store import LocalStore, StoreError

T0 = 1_763_700_000.0  # a UTC Unix time


def _unit_quats(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


@pytest.fixture
def store(tmp_path: Path):
    with LocalStore(tmp_path / "hipback.sqlite") as s:
        yield s


def test_samples_round_trip_into_a_recording_in_chunks(store: LocalStore) -> None:
    rng = np.random.default_rng(3)
    sid = store.open_session("P-0001", {"scenario": "walk"})
    store.add_sensor(sid, "pelvis", "quat", "hipback_v1", "C4:1B:AC:00:00:01", {"rate_hz": 100.0})
    store.add_sensor(sid, "thigh_left", "raw", "witmotion", None)
    n = 1000
    t = T0 + 5.0 + np.arange(n) / 100.0
    quat, acc, gyr = _unit_quats(rng, n), rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    mag = rng.normal(size=(n, 3))
    mag[10] = np.nan  # a NaN is stored as NULL and read back as NaN
    stored = 0
    for a in range(0, n, 37):  # uneven chunks
        b = min(n, a + 37)
        stored += store.add_samples(sid, "pelvis", t[a:b], seq=np.arange(a, b), quat=quat[a:b], acc=acc[a:b],
                                    device_time=np.arange(a, b) * 0.01)
        stored += store.add_samples(sid, "thigh_left", t[a:b] + 0.003, seq=np.arange(a, b) % 256,
                                    acc=acc[a:b] * 2, gyr=gyr[a:b], mag=mag[a:b])
    assert stored == 2 * n
    store.add_gap(sid, "thigh_left", T0 + 6.0, T0 + 6.5, 49, "disconnect")

    rec = store.load_recording(sid)
    assert rec.start_utc == pytest.approx(T0 + 5.0)
    pel, thl = rec.streams["pelvis"], rec.streams["thigh_left"]
    assert (pel.kind, thl.kind) == ("quat", "raw")
    np.testing.assert_allclose(pel.t, t - (T0 + 5.0), atol=1e-9)
    np.testing.assert_array_equal(pel.quat, quat)
    np.testing.assert_array_equal(pel.acc, acc)
    assert pel.gyr is None and pel.mag is None
    np.testing.assert_array_equal(pel.seq, np.arange(n))
    np.testing.assert_allclose(pel.meta["device_time"], np.arange(n) * 0.01)
    assert pel.rate_hz == 100.0 and pel.device == "hipback_v1"
    np.testing.assert_array_equal(thl.gyr, gyr)
    np.testing.assert_array_equal(np.isnan(thl.mag), np.isnan(mag))
    assert thl.rate_hz == pytest.approx(100.0)
    assert thl.quat is None
    assert [(g.placement, round(g.t_start, 6), round(g.t_end, 6), g.missing) for g in rec.gaps] == [
        ("thigh_left", 1.0, 1.5, 49)
    ]
    assert rec.meta["patient_id"] == "P-0001" and rec.meta["scenario"] == "walk"
    assert store.sample_count(sid) == 2 * n and store.sample_count(sid, "pelvis") == n


def test_duplicate_samples_are_ignored(store: LocalStore) -> None:
    sid = store.open_session("P-0002")
    store.add_sensor(sid, "pelvis", "raw", "dev", None)
    t = T0 + np.arange(100) / 50.0
    acc = np.ones((100, 3))
    kw = {"acc": acc, "gyr": acc}

    def add(a: int, b: int) -> int:
        return store.add_samples(sid, "pelvis", t[a:b], seq=np.arange(a, b), acc=acc[a:b], gyr=acc[a:b])

    assert add(0, 60) == 60
    assert add(0, 60) == 0  # the same chunk again (a retry after a crash)
    assert add(40, 100) == 40  # an overlapping one
    # without seq and device time, the UTC time identifies a sample
    store.add_sensor(sid, "thigh_right", "raw", "dev", None)
    assert store.add_samples(sid, "thigh_right", t, **kw) == 100
    assert store.add_samples(sid, "thigh_right", t, **kw) == 0
    # a wrapped 8-bit sequence counter with a device time is not a duplicate
    store.add_sensor(sid, "thigh_left", "raw", "dev", None)
    seq = np.arange(300) % 256
    t3 = T0 + np.arange(300) / 50.0
    ones = np.ones((300, 3))
    assert store.add_samples(sid, "thigh_left", t3, seq=seq, device_time=t3 - T0, acc=ones, gyr=ones) == 300
    assert store.sample_count(sid) == 500


def test_bad_sample_arrays_are_refused_without_storing_anything(store: LocalStore) -> None:
    sid = store.open_session("P-0003")
    store.add_sensor(sid, "pelvis", "quat", "dev", None)
    with pytest.raises(StoreError, match="quat has shape"):
        store.add_samples(sid, "pelvis", T0 + np.arange(5.0), quat=np.ones((4, 4)))
    with pytest.raises(StoreError, match="add_sensor"):
        store.add_samples(sid, "thigh_left", T0 + np.arange(5.0), acc=np.ones((5, 3)))
    with pytest.raises(StoreError, match="finite"):
        store.add_samples(sid, "pelvis", np.array([T0, np.nan]), quat=np.ones((2, 4)))
    assert store.sample_count(sid) == 0


def test_sessions_open_reopen_close(store: LocalStore) -> None:
    a = store.open_session("P-0004", {"k": 1})
    assert len(a) == 32 and store.latest_open_session("P-0004") == a
    assert store.open_session("P-0004", {"j": 2}, session_id=a) == a  # reopen after a restart
    assert store.session(a)["meta"] == {"k": 1, "j": 2}
    with pytest.raises(StoreError, match="another patient"):
        store.open_session("P-9999", session_id=a)
    store.close_session(a, end_utc=T0)
    assert store.latest_open_session("P-0004") is None
    with pytest.raises(StoreError, match="closed"):
        store.open_session("P-0004", session_id=a)
    b = store.open_session("P-0004", {"start_utc": T0 - 86400}, session_id="my-own-id")
    assert b == "my-own-id" and store.session(b)["start_utc"] == T0 - 86400
    assert {s["id"] for s in store.sessions("P-0004")} == {a, b}
    assert store.sessions("nobody") == []
    with pytest.raises(StoreError):
        store.add_event("missing", "reconnect", {})


def test_results_replace_and_events_keep_order(store: LocalStore) -> None:
    sid = store.open_session("P-0005")
    store.put_results(sid, "strides", [{"side": "left", "peak_ext_deg": np.float64(12.5), "n": np.int64(3)}])
    store.put_results(sid, "strides", [{"side": "right", "peak_ext_deg": 9.0}, {"side": "left", "x": [1, 2]}])
    assert store.get_results(sid, "strides") == [
        {"side": "right", "peak_ext_deg": 9.0}, {"side": "left", "x": [1, 2]}
    ]
    assert store.get_results(sid, "holds") == []
    store.add_event(sid, "reconnect", {"placement": "pelvis"}, t=T0 + 2)
    store.add_event(sid, "battery", {"level": 80}, t=T0 + 1)
    assert [e["kind"] for e in store.events(sid)] == ["battery", "reconnect"]
    assert store.events(sid, "battery")[0]["payload"] == {"level": 80}


def test_outbox_states(store: LocalStore) -> None:
    sid = store.open_session("P-0006")
    n = store.outbox_add(sid, [Point("holds", {"patient": "P-0006"}, {"dur_s": 25.0}, 10**18),
                               Point("holds", {"patient": "P-0006"}, {"dur_s": float("nan")}, 10**18 + 1)])
    assert n == 1  # the point without a finite field is dropped by the encoder
    store.outbox_add(None, ["m v=1 1\n", "m v=2 2"])
    pending = store.outbox_pending(10)
    assert [line for _, line in pending] == [
        "holds,patient=P-0006 dur_s=25.0 1000000000000000000", "m v=1 1", "m v=2 2"
    ]
    ids = [i for i, _ in pending]
    store.outbox_mark_delivered(ids[:1])
    store.outbox_set_aside(ids[1:2], "field type conflict")
    assert store.outbox_pending(10) == [pending[2]]
    assert store.outbox_stats() == {"pending": 1, "delivered": 1, "set_aside": 1, "total": 3}
    assert store.outbox_stats(sid) == {"pending": 0, "delivered": 1, "set_aside": 0, "total": 1}
    assert store.outbox_set_aside_lines()[0]["reason"] == "field type conflict"
    assert store.outbox_requeue() == 1
    assert [i for i, _ in store.outbox_pending(10)] == ids[1:]
    # marking twice or marking a set-aside line delivered changes nothing
    store.outbox_set_aside(ids[1:2], "x")
    store.outbox_mark_delivered(ids)
    assert store.outbox_stats()["set_aside"] == 1 and store.outbox_stats()["delivered"] == 2
    # replays must overwrite: every line needs its own timestamp
    for bad in (["  "], ["m v=1"], ['m s="at 12"'], [Point("m", {}, {"v": 1.0})]):
        with pytest.raises(StoreError, match="timestamp"):
            store.outbox_add(None, bad)
    assert store.outbox_stats()["total"] == 3


def test_several_threads_share_one_store(store: LocalStore) -> None:
    sid = store.open_session("P-0007")
    placements = ["pelvis", "thigh_left", "thigh_right", "lumbar_upper"]
    for p in placements:
        store.add_sensor(sid, p, "raw", "dev", None)
    errors: list[BaseException] = []

    def writer(p: str) -> None:
        try:
            for k in range(30):
                t = T0 + (k * 10 + np.arange(10)) / 100
                store.add_samples(sid, p, t, seq=np.arange(k * 10, k * 10 + 10), acc=np.zeros((10, 3)),
                                  gyr=np.zeros((10, 3)))
                store.outbox_add(sid, [f"m,p={p} v={k} {k}"])
                store.outbox_pending(5)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in placements]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert store.sample_count(sid) == 4 * 300
    assert store.outbox_stats()["pending"] == 4 * 30


_CHILD = textwrap.dedent("""
    import sys, numpy as np
    from hipback.ingest.store import LocalStore
    store = LocalStore(sys.argv[1])
    sid = store.open_session("P-0008", session_id=sys.argv[2])
    store.add_sensor(sid, "pelvis", "raw", "dev", None)
    k, total = int(sys.argv[3]), 0
    while True:
        t = 1.7e9 + (k * 25 + np.arange(25)) / 100
        total += store.add_samples(sid, "pelvis", t, seq=np.arange(k * 25, k * 25 + 25),
                                   acc=np.full((25, 3), k), gyr=np.zeros((25, 3)))
        store.outbox_add(sid, [f"m v={k} {k}"])
        print(k, total, flush=True)   # acknowledged: add_samples and outbox_add returned
        k += 1
""")


def _run_until_killed(path: Path, sid: str, start: int, acks: int) -> int:
    """Run the writer child, SIGKILL it after ``acks`` acknowledged chunks; return the last acked chunk."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), sid, str(start)],
                            stdout=subprocess.PIPE, text=True, env=env)
    last = None
    try:
        for _ in range(acks):
            line = proc.stdout.readline()
            assert line, "the writer child died early"
            last = int(line.split()[0])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return last


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    sid = "crashsession"
    last = _run_until_killed(path, sid, 0, acks=40)
    with LocalStore(path) as store:
        assert store.integrity_check() == "ok"
        count = store.sample_count(sid)
        # every acknowledged chunk is there (the child may have stored more before the kill reached it,
        # but only whole chunks: a transaction is all or nothing)
        assert count >= 25 * (last + 1)
        assert count % 25 == 0
        assert store.outbox_stats()["pending"] >= last + 1
        acc = store.load_recording(sid).streams["pelvis"].acc
        assert set(np.unique(acc[:, 0]).astype(int)) >= set(range(last + 1))
    # a restart reopens the same session and carries on; re-sent chunks are not duplicated
    last2 = _run_until_killed(path, sid, last, acks=10)
    with LocalStore(path) as store:
        assert store.integrity_check() == "ok"
        count2 = store.sample_count(sid)
        assert 25 * (last2 + 1) <= count2 <= 25 * (last2 + 2)
        rec = store.load_recording(sid)
        assert len(np.unique(rec.streams["pelvis"].seq)) == count2
        assert json.loads(json.dumps(store.sessions()))[0]["id"] == sid

"""LocalStore.add_samples stores each chunk's values as they are: the stored rows are those of the arrays
joined in numpy (t, quat, acc, gyr, mag; NULL for NaN, for an absent vector and for a non-finite device
time)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.store import LocalStore, StoreError

P = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")


def _chunks() -> list[tuple[str, object, dict]]:
    rng = np.random.default_rng(5)

    def chunk(p: str, k: int, n: int, **over: object) -> tuple[str, object, dict]:
        arrays: dict = {
            "seq": np.arange(k, k + n, dtype=np.int64),
            "quat": rng.normal(size=(n, 4)),
            "acc": rng.normal(size=(n, 3)),
            "gyr": rng.normal(size=(n, 3)),
            "mag": None,
            "device_time": k / 100.0 + np.arange(n) / 100.0,
        }
        arrays.update(over)
        return p, 1.7e9 + k / 100.0 + np.arange(n) / 100.0, arrays

    quat_nan = rng.normal(size=(3, 4))
    quat_nan[1] = np.nan
    return [
        chunk("pelvis", 0, 2),
        chunk("thigh_left", 0, 3, quat=quat_nan, mag=rng.normal(size=(3, 3)).astype(np.float32)),
        chunk("thigh_right", 0, 4, device_time=np.array([0.1, np.nan, np.inf, -np.inf]),
              seq=np.arange(4, dtype=np.int32)),
        chunk("lumbar_upper", 0, 2, seq=None, device_time=None, acc=None),
        chunk("pelvis", 2, 0, quat=np.zeros((0, 4))),
        chunk("pelvis", 3, 2, seq=[7.0, 8.0], quat=rng.normal(size=(2, 4)).tolist()),
        chunk("thigh_right", 4, 300),
    ]


def _expected(t: object, arrays: dict) -> list[tuple]:
    """The rows as numpy joins them: t and the vectors side by side, NaN (NULL) where absent."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    n = len(t)
    cols = [t[:, None]] + [
        np.full((n, w), np.nan) if arrays[name] is None else np.asarray(arrays[name], dtype=np.float64)
        for name, w in (("quat", 4), ("acc", 3), ("gyr", 3), ("mag", 3))
    ]
    joined = np.concatenate(cols, axis=1).tolist()
    seq = [None] * n if arrays["seq"] is None else np.asarray(arrays["seq"]).astype(np.int64).tolist()
    dt = [None] * n if arrays["device_time"] is None else np.asarray(arrays["device_time"], float).tolist()

    def null(v: float | None) -> float | None:
        return None if v is None or not math.isfinite(v) else v

    return [(r[0], s, null(d), *(null(v) for v in r[1:])) for r, s, d in zip(joined, seq, dt, strict=True)]


def test_stored_rows_are_the_chunks_values(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-1", session_id="s1")
        for p in P:
            st.add_sensor(sid, p, "quat", "hipback_v1", None)
        expected: dict[str, list[tuple]] = {p: [] for p in P}
        with st.transaction():  # as the session writer's rounds: one transaction, a savepoint per chunk
            for p, t, arrays in _chunks():
                assert st.add_samples(sid, p, t, **arrays) == np.asarray(t).size
                expected[p] += _expected(t, arrays)
        with pytest.raises(StoreError, match="finite"):
            st.add_samples(sid, "pelvis", [1.7e9 + 9.0, np.nan], quat=np.zeros((2, 4)))
        with pytest.raises(StoreError, match="finite"):  # the times are checked first
            st.add_samples(sid, "pelvis", [1.7e9 + 9.0, np.inf], quat=np.zeros((3, 4)))
        with pytest.raises(StoreError, match="shape"):
            st.add_samples(sid, "pelvis", [1.7e9 + 9.0], gyr=np.zeros((1, 4)))
    con = sqlite3.connect(tmp_path / "s.sqlite")
    try:
        for p in P:
            got = con.execute(
                "SELECT t, seq, device_time, qw, qx, qy, qz, ax, ay, az, gx, gy, gz, mx, my, mz FROM samples "
                "JOIN sensors ON samples.sensor = sensors.id WHERE placement = ? ORDER BY t", (p,)).fetchall()
            want = sorted(expected[p], key=lambda r: r[0])
            assert repr(got) == repr(want)  # repr gives every float exactly
            assert len(got) > 0
    finally:
        con.close()


def test_a_time_offset_gives_the_bits_of_numpys_sum(tmp_path: Path) -> None:
    """Session seconds and ``t_offset`` (the session writer's UTC start) are stored as ``t + t_offset`` in
    numpy: the same float64 sums, refused alike when one is not finite."""
    rng = np.random.default_rng(6)
    start = 1.7e9 + float(rng.random())
    t = np.sort(rng.random(500) * 3600.0)
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-1", session_id="s1")
        st.add_sensor(sid, "pelvis", "quat", "hipback_v1", None)
        st.add_sensor(sid, "thigh_left", "quat", "hipback_v1", None)
        assert st.add_samples(sid, "pelvis", t, quat=np.ones((500, 4)), t_offset=start) == 500
        assert st.add_samples(sid, "thigh_left", t + start, quat=np.ones((500, 4))) == 500
        with pytest.raises(StoreError, match="finite"):
            st.add_samples(sid, "pelvis", np.array([1.0, 1e308]), quat=np.ones((2, 4)), t_offset=1e308)
    con = sqlite3.connect(tmp_path / "s.sqlite")
    try:
        query = ("SELECT t FROM samples JOIN sensors ON samples.sensor = sensors.id WHERE placement = ? "
                 "ORDER BY t")
        rows = {p: con.execute(query, (p,)).fetchall() for p in ("pelvis", "thigh_left")}
    finally:
        con.close()
    assert repr(rows["pelvis"]) == repr(rows["thigh_left"]) == repr([(v,) for v in (t + start).tolist()])

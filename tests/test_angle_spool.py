"""The live session's angle series stored as it comes (:class:`hipback.ingest.session.spool.AngleSpool`): the
stored rows are those of the whole series stored at once, in any pieces; a row that cannot be written leaves
no header (no series that claims to be whole); rows of an earlier run of the session go; memory stays within
a row's worth of samples however long the session."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from hipback.ingest.results import angles_rows, stored_angles
from hipback.ingest.session.spool import AngleSpool
from hipback.ingest.store import LocalStore
from hipback.processing.pipeline import SessionResults
from hipback.processing.types import AngleSeries, Gap

START = 1_790_000_000.25


def _series(n: int, seed: int = 0, t0: float = 0.0) -> AngleSeries:
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(n) / 100.0
    fields = {f: np.radians(rng.normal(0.0, 20.0, n)) for f in AngleSeries.FIELDS}
    fields["hip_flexion_right"][: n // 3] = np.nan  # a thigh late
    flags = (rng.uniform(size=n) < 0.01).astype(np.uint8)
    return AngleSeries(t=t, **fields, implausible=flags, pelvis_acc_vertical=rng.normal(0.0, 1.0, n),
                       thigh_acc_left=rng.normal(0.0, 2.0, n), pelvis_yaw_rate=rng.normal(0.0, 0.3, n))


def _results(angles: AngleSeries) -> SessionResults:
    return SessionResults(
        angles=angles, strides=[], bouts=[], holds=[], activity=[], calibration={}, calibration_state="done",
        warnings=[], messages=["pelvis: 3 samples missing"], gaps=[Gap("pelvis", 1.0, 1.2, 19, "lost")],
        summary={}, placements={"pelvis": "raw", "thigh_left": "quat"}, exercise_events=[])


@pytest.fixture
def store(tmp_path):
    with LocalStore(tmp_path / "s.sqlite") as st:
        sid = st.open_session("P-SPOOL-1")
        yield st, sid


@pytest.mark.parametrize("sizes", [(2,), (1, 7, 2, 40), (997,), (5000,)])
def test_stored_as_it_came_equals_stored_at_once(store, sizes):
    st, sid = store
    a = _series(5123)
    spool = AngleSpool(st, sid, chunk=1000)
    i = k = 0
    while i < len(a):
        n = sizes[k % len(sizes)]
        spool.add(a.slice(i, min(i + n, len(a))))
        i, k = i + n, k + 1
    assert spool.finish(_results(AngleSeries.empty()), START)
    whole = angles_rows(_results(a), START, chunk=1000)
    assert st.get_results(sid, "angles") == whole  # row for row, header included
    back = stored_angles(st, sid)
    assert np.array_equal(back.t, a.t) and np.array_equal(back.implausible, a.implausible)


def test_rows_written_through_the_writer_come_in_order_with_the_header_last(store):
    st, sid = store
    queued = []
    spool = AngleSpool(st, sid, defer=lambda fn, what: queued.append(fn), chunk=500)
    spool.add(_series(1800))
    assert len(queued) == 1 + 3 and st.get_results(sid, "angles") == []  # nothing written before its turn
    for fn in queued:
        fn()
    assert [r["i0"] for r in st.get_results(sid, "angles")] == [0, 500, 1000]  # no header yet: unreadable
    with pytest.raises(ValueError, match="no header"):
        stored_angles(st, sid)
    assert spool.finish(_results(AngleSeries.empty()), START)
    assert len(stored_angles(st, sid)) == 1800


def test_a_row_that_cannot_be_written_leaves_no_header(store, monkeypatch):
    st, sid = store
    spool = AngleSpool(st, sid, chunk=500)
    real = st.put_result_rows
    calls = []

    def flaky(session_id, kind, first_idx, rows):
        calls.append(first_idx)
        if first_idx == 2:
            raise OSError("disk full")
        return real(session_id, kind, first_idx, rows)

    monkeypatch.setattr(st, "put_result_rows", flaky)
    spool.add(_series(1700))
    assert not spool.finish(_results(AngleSeries.empty()), START)
    assert isinstance(spool.failed_, OSError) and 0 not in calls
    with pytest.raises(ValueError):
        stored_angles(st, sid)


def test_a_continued_session_drops_the_rows_of_its_earlier_run(store):
    st, sid = store
    first = AngleSpool(st, sid, chunk=300)
    first.add(_series(2000))
    assert first.finish(_results(AngleSeries.empty()), START)
    again = AngleSpool(st, sid, chunk=300)
    again.add(_series(450, seed=2, t0=30.0))
    assert again.finish(_results(AngleSeries.empty()), START)
    back = stored_angles(st, sid)
    assert len(back) == 450 and back.t[0] == 30.0


def test_memory_stays_within_a_row_however_long_the_session(store):
    """An hour of 20 ms steps (2 rows each) at 100 Hz: what the spool holds stays under a few MB."""
    st, sid = store
    spool = AngleSpool(st, sid)
    step = _series(2)
    tracemalloc.start()
    try:
        peaks = []
        for i in range(180_000):
            t = step.t + 0.02 * i
            spool.add(AngleSeries(t=t, **{f: getattr(step, f) for f in AngleSeries.FIELDS},
                                  implausible=step.implausible))
            if i % 30_000 == 29_999:
                peaks.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert spool.rows_ == 360_000
    assert max(peaks) < 4e6, peaks
    assert peaks[-1] < peaks[0] + 1e6, peaks  # no growth from the first ten minutes to the hour


def test_a_session_whose_processing_stopped_keeps_its_samples_and_no_stray_angle_rows(tmp_path, monkeypatch):
    """Live processing failing partway (an internal error): the recording goes on and every sample is
    stored; the angle rows already stored go (a series without its end and header would be half-written);
    the report processes the samples again."""
    from hipback.ingest.session import run_virtual_session, spool
    from hipback.processing.pipeline import SessionProcessor
    from hipback.simulator import SensorSpec, simulate

    monkeypatch.setattr(spool, "ANGLES_CHUNK", 300)
    real_poll = SessionProcessor.poll
    seen = []

    def poll(self):
        update = real_poll(self)
        seen.append(len(update.angles))
        if sum(seen) > 1500:  # some rows of 300 stored by now
            raise RuntimeError("injected processing fault")
        return update

    monkeypatch.setattr(SessionProcessor, "poll", poll)
    placements = ("pelvis", "thigh_left", "thigh_right")
    sim = simulate("walk", seed=2, sensors=[SensorSpec(p, kind="raw", rate_hz=100.0) for p in placements],
                   calib_s=6.0, walk_s=25.0, stand_s=2.0)
    stored_rows = []
    real_put = LocalStore.put_result_rows

    def put(self, session_id, kind, first_idx, rows):
        stored_rows.append(first_idx)
        return real_put(self, session_id, kind, first_idx, rows)

    monkeypatch.setattr(LocalStore, "put_result_rows", put)
    path = tmp_path / "s.sqlite"
    outcome = run_virtual_session(sim, {p: "hipback_v1" for p in placements}, path)
    assert outcome.results is None and "injected processing fault" in (outcome.processing_error or "")
    assert len(stored_rows) >= 3 and 0 not in stored_rows  # rows went in as they came; never a header
    with LocalStore(path) as st:
        assert st.get_results(outcome.session_id, "angles") == []
        for p in placements:
            assert st.sample_count(outcome.session_id, p) == outcome.ledgers[p].sent_samples

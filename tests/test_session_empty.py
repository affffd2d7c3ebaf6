"""A session in which no sensor delivers a sample is closed as empty: no results, one clear sentence.

Real bleak code path over the Bumble virtual link; every notification is dropped by the virtual sensors'
fault injector, so the links connect and subscribe but nothing arrives.
"""

from __future__ import annotations

from hipback.ingest.session import run_virtual_session
from hipback.ingest.store import LocalStore
from hipback.simulator import SensorSpec, simulate
from hipback.simulator.devices import FaultPlan
from hipback.simulator.virtual_ble import SensorFaults

KINDS = {"pelvis": "hipback_v1", "thigh_left": "hipback_v1"}


def _run(tmp_path, drop_prob: float):
    sim = simulate("short", seed=5, sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in KINDS])
    faults = {p: SensorFaults(packets=FaultPlan(drop_prob=drop_prob, seed=1)) for p in KINDS}
    path = tmp_path / "s.sqlite"
    outcome = run_virtual_session(sim, KINDS, path, faults=faults, until_s=4.0, lead_s=1.0)
    return outcome, path


def test_session_without_samples_is_closed_as_empty_without_results(tmp_path):
    outcome, path = _run(tmp_path, 1.0)
    assert outcome.empty
    assert outcome.results is None
    assert all(s.packets == 0 and s.samples == 0 for s in outcome.stats.values())
    ends = [e for e in outcome.events if e.kind == "session_end"]
    assert len(ends) == 1 and "no samples stored" in ends[0].message
    with LocalStore(path, readonly=True) as store:
        row = store.session(outcome.session_id)
        assert row["end_utc"] is not None  # closed, not left open for a resume
        for kind in ("summary", "strides", "holds", "activity"):
            assert store.get_results(outcome.session_id, kind) == []
        assert store.sample_count(outcome.session_id) == 0
        (ev,) = store.events(outcome.session_id, "session_end")
        assert ev["payload"].get("empty") is True


def test_session_with_samples_is_not_empty(tmp_path):
    outcome, path = _run(tmp_path, 0.0)
    assert not outcome.empty
    assert outcome.results is not None
    with LocalStore(path, readonly=True) as store:
        assert store.get_results(outcome.session_id, "summary")
        (ev,) = store.events(outcome.session_id, "session_end")
        assert "empty" not in ev["payload"]


def test_report_latest_passes_over_an_empty_session(tmp_path):
    """``hipback report latest`` reports the newest session with data, not a newer empty one."""
    from hipback.ingest.report.source import resolve_session_id

    full, path = _run(tmp_path, 0.0)
    sim = simulate("short", seed=5, sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in KINDS])
    faults = {p: SensorFaults(packets=FaultPlan(drop_prob=1.0, seed=1)) for p in KINDS}
    empty = run_virtual_session(sim, KINDS, path, faults=faults, until_s=4.0, lead_s=1.0)
    assert empty.empty
    with LocalStore(path, readonly=True) as store:
        starts = {r["id"]: r["start_utc"] for r in store.sessions()}
        assert starts[empty.session_id] >= starts[full.session_id]  # the empty one is the newest
        assert resolve_session_id(store, "latest")["id"] == full.session_id

"""The sensors' link statistics a session stores at its end, read back for the report as typed
:class:`SensorStats` (``SensorStats.from_dict``, ``report.source._stats_from_events``), and what the report's
data-quality check takes from them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from hipback.ingest.report.quality import assess_quality
from hipback.ingest.report.source import _stats_from_events
from hipback.ingest.session.stats import SensorStats
from hipback.ingest.store import LocalStore
from hipback.processing.types import Recording, SensorStream


def _stats() -> SensorStats:
    return SensorStats(
        "pelvis", "hipback_v1", "AA:BB:CC:DD:EE:01", name="HB-01", connected=True, packets=120, samples=1200,
        rejected=Counter({"crc": 2, "length": 1}), gaps=1, missing=7, disconnects=1, reconnects=1,
        connect_failures=2, battery_pct=81.0, clock_jumps=1, store_errors=0, duplicates_ignored=3,
    )


def test_stored_statistics_read_back_as_they_were() -> None:
    st = _stats()
    back = SensorStats.from_dict("pelvis", json.loads(json.dumps(st.as_dict())))  # as the store keeps them
    for name in ("placement", "kind", "address", "name", "connected", "packets", "samples", "rejected",
                 "gaps", "missing", "disconnects", "reconnects", "connect_failures", "battery_pct",
                 "clock_jumps", "store_errors", "duplicates_ignored", "failed"):
        assert getattr(back, name) == getattr(st, name), name


def test_values_of_the_wrong_type_are_not_trusted() -> None:
    back = SensorStats.from_dict("thigh_left", {
        "kind": 5, "connected": "yes", "packets": "120", "missing": True, "disconnects": 2.0,
        "battery_pct": "81", "rejected": {"crc": "2", "length": 1, "bool": True}, "failed": ["x"],
    })
    assert (back.placement, back.kind, back.connected) == ("thigh_left", "", False)
    assert (back.packets, back.missing) == (0, 0)
    assert back.disconnects == 2 and isinstance(back.disconnects, int)
    assert back.battery_pct is None and back.failed is None
    assert back.rejected == Counter({"length": 1})


def test_the_report_reads_the_stored_statistics(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "hipback.sqlite")
    sid = store.open_session("P-0042")
    store.add_event(sid, "session_end", {"message": "ended", "stats": {
        "pelvis": _stats().as_dict(), "thigh_left": "not a dict"}})
    stats = _stats_from_events(store, sid)
    assert list(stats) == ["pelvis"] and isinstance(stats["pelvis"], SensorStats)
    t = np.arange(100) / 100.0
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (100, 1))
    rec = Recording({"pelvis": SensorStream("pelvis", "quat", t, 100.0, quat=quat)})
    q = assess_quality(rec, None, stats).sensors["pelvis"]
    assert (q.disconnects, q.rejected_packets, q.battery_pct, q.lost) == (1, 3, 81.0, 7)
    store.close()


def test_a_long_session_keeps_a_bounded_uniform_sample_of_its_latencies() -> None:
    """A day of packets keeps at most ``size`` latencies, a uniform sample of all of them: its percentiles
    are the stream's, and the same seed keeps the same values (sessions on simulated time repeat)."""
    import numpy as np

    from hipback.ingest.session.stats import Reservoir

    rng = np.random.default_rng(5)
    stream = rng.lognormal(mean=-3.0, sigma=0.6, size=400_000).tolist()  # latencies, s
    kept = []
    for _ in range(2):
        r = Reservoir(size=20_000, seed=3)
        for x in stream:
            r.add(x)
        kept.append(r.values)
        assert r.seen == len(stream) and len(r.values) == 20_000
    assert kept[0] == kept[1]
    for q in (50, 99):
        assert abs(np.percentile(kept[0], q) / np.percentile(stream, q) - 1.0) < 0.05, q
    # the late part of the stream is sampled as much as the early part
    late = set(stream[200_000:])
    share = sum(1 for x in kept[0] if x in late) / len(kept[0])
    assert 0.45 < share < 0.55
    # fewer values than the size: every one, in order
    small = Reservoir(size=20_000)
    for x in stream[:1000]:
        small.add(x)
    assert small.values == stream[:1000]

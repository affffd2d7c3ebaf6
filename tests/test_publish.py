"""hipback.ingest.publish: processing results -> schema rows and points -> outbox -> real influxd."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest

from hipback.ingest.influx.writer import InfluxWriter
from hipback.ingest.publish import (
    ANGLES_RATE_HZ,
    LivePublisher,
    device_status_row,
    publish_session,
    session_points,
    session_row,
    stride_rows,
)
from hipback.ingest.results import store_rows
from hipback.ingest.session.stats import SensorStats, SessionIdentity
from hipback.ingest.store import LocalStore
from hipback.ingest.sync import SyncWorker
from hipback.processing.pipeline import ProcessorConfig, SessionProcessor, process_recording
from hipback.processing.types import SensorStream
from hipback.simulator import VirtualPatient, simulate
from tests.influx_server import free_port

CONFIG = ProcessorConfig(holds_per_side=1, hold_s=4.0)


@pytest.fixture(scope="module")
def sim():
    patient = VirtualPatient(
        patient_id="pub-01", peak_hip_extension_left_deg=10.0, peak_hip_extension_right_deg=15.0
    )
    return simulate("short", 11, patient, walk_s=14.0)


@pytest.fixture(scope="module")
def results(sim):
    return process_recording(sim.recording, CONFIG)


@pytest.fixture
def store(tmp_path):
    with LocalStore(tmp_path / "store.sqlite", synchronous="NORMAL") as st:
        yield st


def _lines(store: LocalStore, session_id: str | None = None) -> list[str]:
    return [line for _, line in store.outbox_pending(10**6, session_id)]


def _chunk(s: SensorStream, a: int, b: int) -> SensorStream:
    def cut(v):
        return None if v is None else v[a:b]

    return SensorStream(
        s.placement,
        s.kind,
        s.t[a:b],
        s.rate_hz,
        cut(s.quat),
        cut(s.acc),
        cut(s.gyr),
        cut(s.mag),
        cut(s.seq),
        s.device,
        s.meta,
    )


def test_rows_carry_degrees_utc_and_the_prescription(sim, results):
    start = sim.recording.start_utc
    rows = stride_rows(results.strides, start)
    assert rows and {r["side"] for r in rows} == {"left", "right"}
    for side in ("left", "right"):
        mine = [r for r in rows if r["side"] == side]
        assert [r["stride_no"] for r in mine] == list(range(len(mine)))
        assert all(b["t_s"] > a["t_s"] for a, b in zip(mine, mine[1:], strict=False))
    s0 = min(results.strides, key=lambda s: s.t_start)
    assert rows[0]["t_s"] == pytest.approx(start + s0.t_start)
    assert rows[0]["peak_hip_extension_deg"] == pytest.approx(math.degrees(s0.peak_hip_extension_rad))
    assert np.median([r["peak_hip_extension_deg"] for r in rows if r["side"] == "left"]) == pytest.approx(
        10.0, abs=2
    )
    row = session_row(results, start)
    assert row["kind"] == "mixed" and row["strides"] == len(results.strides)  # "short" walks and stretches
    assert row["holds_prescribed"] == 2 and row["prescribed_time_s"] == 8.0
    # files processed without a plan (``hipback process`` marks the summary): nothing prescribed is published
    holds_unplanned = {**results.summary["holds"], "planned": False}
    unplanned = dataclasses.replace(results, summary={**results.summary, "holds": holds_unplanned})
    row_unplanned = session_row(unplanned, start)
    assert "holds_prescribed" not in row_unplanned and "prescribed_time_s" not in row_unplanned
    assert row_unplanned["holds_done"] == row["holds_done"]
    # the short scenario's right hold arches: its correct time falls short of the 4 s target
    by_side = {h.side: h for h in results.holds}
    assert row["holds_done"] == sum(h.correct_s >= 4.0 for h in results.holds) == 1
    assert by_side["right"].arching and not by_side["left"].arching
    pts = session_points(results, "pub-01", "s1", start)
    holds = [p for p in pts if p.measurement == "holds"]
    assert {(p.tags["side"], p.fields["completed"], p.fields["target_s"]) for p in holds} == {
        ("left", True, 4.0),
        ("right", False, 4.0),
    }
    assert all(p.tags["exercise"] == "kneeling_hip_flexor" for p in holds)
    acts = {p.tags["activity"] for p in pts if p.measurement == "activity"}
    assert "stretching" in acts and "walking" in acts  # processing's "kneeling" is the schema's stretching
    angles = [p for p in pts if p.measurement == "angles"]
    duration = float(results.angles.t[-1] - results.angles.t[0])
    assert abs(len(angles) - duration * ANGLES_RATE_HZ) <= 2
    # bin centres of 0.1 s bins aligned to UTC (float64 ns at 1.7e18 resolve only ~256 ns)
    assert all(abs((p.time_ns - 50_000_000 + 500) % 100_000_000 - 500) < 1000 for p in angles)


def test_device_status_from_sensor_stats():
    st = SensorStats("thigh_left", "movella_dot", "D4:22:CD:00:9A:3F")
    st.samples, st.missing, st.first_t, st.last_t, st.reconnects = 5940, 60, 0.0, 99.0, 2
    st.rejected.update({"crc": 3, "length": 1})
    st.battery_pct = 81.0
    row = device_status_row(st, 1000.0)
    assert row["device"] == "movella_dot-9A3F" and row["placement"] == "thigh_left"
    assert row["packet_loss_pct"] == pytest.approx(1.0)
    assert row["rate_hz"] == pytest.approx(5939 / 99.0)
    assert (row["reconnects"], row["rejected_packets"], row["battery_pct"]) == (2, 4, 81.0)
    since = device_status_row(st, 1000.0, since={"samples": 5000, "missing": 60})
    assert since["packet_loss_pct"] == 0.0


def test_live_publisher_queues_the_same_points_as_publish_session(sim, results, store):
    """Fed chunk by chunk, the live publisher queues exactly the points of the batch path (angles bins
    are never split between two updates), and nothing twice."""
    rec = sim.recording
    start = rec.start_utc
    batch_sid = store.open_session("pub-01", {"start_utc": start})
    publish_session(store, batch_sid, results, "pub-01", start, now_s=start + 60)

    live_sid = store.open_session("pub-01", {"start_utc": start, "prescription": {"hold_s": 4.0}})
    proc = SessionProcessor(
        {p: s.kind for p, s in rec.streams.items()}, {p: s.rate_hz for p, s in rec.streams.items()}, CONFIG
    )
    # the runner hands the session's identity to its subscribers before any data
    live = LivePublisher(store, "pub-01", flush_interval_s=0.0)
    live.bind(SessionIdentity(live_sid, "pub-01", start, hold_s=4.0, holds_per_side=1))
    n = max(len(s.t) for s in rec.streams.values())
    updates = 0
    for a in range(0, n, 53):
        for s in rec.streams.values():
            proc.feed(_chunk(s, a, a + 53))
        live.on_update(proc.poll(), None)
        updates += 1
    assert live.session_id == live_sid and live.start_utc == start
    assert live.queued > 0  # queued while the session went on
    live_res = proc.finish()
    live.on_update(proc.poll(), None)  # what became final at the end, delivered once (as the runner does)
    for kind, rows in store_rows(live_res, start).items():  # the runner stores the rows
        store.put_results(live_sid, kind, rows)
    live.finish(live_res, None, now_s=start + 60)
    assert updates > 50

    def norm(lines, sid):
        return Counter(line.replace(sid, "SID") for line in lines)

    batch, live_lines = norm(_lines(store, batch_sid), batch_sid), norm(_lines(store, live_sid), live_sid)
    # patient_status differs on purpose: the second one also counts the first session's strides
    status = [k for k in live_lines if k.startswith("patient_status")]
    assert len(status) == 1 and "baseline_peak_ext_left_deg" in status[0]
    assert {k: v for k, v in batch.items() if not k.startswith("patient_status")} == {
        k: v for k, v in live_lines.items() if not k.startswith("patient_status")
    }
    assert max(live_lines.values()) == 1
    assert {k.split(",")[0] for k in batch} == {
        "strides",
        "holds",
        "activity",
        "sessions",
        "posture_time",
        "angles",
        "patient_status",
    }
    # the stored rows carry UTC times for later progress computations, under the schema's field names only
    rows = store.get_results(live_sid, "strides")
    assert rows and rows[0]["t_s"] == pytest.approx(start + rows[0]["t_start"])
    assert "pelvic_tilt_at_peak_ext_deg" in rows[0] and "pelvic_tilt_at_peak_extension_deg" not in rows[0]
    assert "compensation_index" in rows[0] and "lumbar_compensation_index" not in rows[0]


def test_outage_then_sync_delivers_everything_once(sim, results, store, influxd, influx_db):
    """Points queued while InfluxDB cannot be reached stay pending; a later sync delivers each one once, and
    a replay (publishing the session again) changes nothing in InfluxDB."""
    start = sim.recording.start_utc
    sid = store.open_session("pub-01", {"start_utc": start})
    stats = {"pelvis": SensorStats("pelvis", "hipback_v1", "C0:FF:EE:00:00:01")}
    stats["pelvis"].samples, stats["pelvis"].first_t, stats["pelvis"].last_t = 4000, 0.0, 40.0
    queued = publish_session(store, sid, results, "pub-01", start, stats, now_s=start + 60)

    down = SyncWorker(
        store,
        InfluxWriter(
            f"http://127.0.0.1:{free_port()}", influx_db, max_retries=0, timeout_s=1.0
        ),
        owns_writer=True,
    )
    with pytest.raises(Exception, match="(?i)influx|connect|reach"):
        down.sync_once()
    down.stop(final_sync=False)
    assert store.outbox_stats()["pending"] == queued

    up = SyncWorker(store, InfluxWriter(influxd.url, influx_db), owns_writer=True)
    report = up.sync_once()
    assert (report.delivered, report.pending, report.set_aside) == (queued, 0, 0)

    def counts() -> dict[str, int]:
        out = {}
        for m in ("strides", "holds", "activity", "sessions", "posture_time", "angles", "device_status",
                  "patient_status"):
            body = influxd.query(f'SELECT * FROM "{m}"', influx_db)
            out[m] = sum(len(s["values"]) for s in body["results"][0].get("series", []))
        return out

    first = counts()
    assert sum(first.values()) == queued
    assert first["strides"] == len(results.strides) and first["device_status"] == 1
    # the same session published again (e.g. reprocessed) overwrites the same points
    publish_session(store, sid, results, "pub-01", start, stats, now_s=start + 60)
    up.sync_once()
    up.stop(final_sync=False)
    assert counts() == first


def test_bad_patient_id_is_refused_before_anything_is_written(results, store, sim):
    sid = store.open_session("someone", {"start_utc": sim.recording.start_utc})
    with pytest.raises(ValueError, match="pseudonymous"):
        publish_session(store, sid, results, "Jane Doe", sim.recording.start_utc)
    assert store.outbox_stats()["total"] == 0 and store.get_results(sid, "strides") == []

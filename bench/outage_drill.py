"""Outage drill: InfluxDB stopped during a live virtual session, then restarted; nothing lost, nothing twice.

Run by hand (not part of the test suite)::

    .venv/bin/python -m bench.outage_drill [--outage-s 120] [--scenario clinic_visit] [--speed S]

What it does:

1. starts a private ``influxd`` (:class:`tests.influx_server.InfluxServer`) with a fresh database;
2. runs a live virtual session through the real session runner
   (:func:`hipback.ingest.session.virtual.run_virtual_session_async`: virtual BLE sensors over Bumble, the
   bleak code
   path, live processing) with a :class:`hipback.ingest.publish.LivePublisher` on ``on_update`` queueing
   strides,
   holds, activity bouts, 10 Hz angles and device status into the local store's outbox as they become final,
   and a :class:`hipback.ingest.sync.SyncWorker` thread sending the outbox in the background;
3. ``--stop-after-s`` real seconds into the session stops ``influxd`` (SIGTERM) for ``--outage-s`` real
   seconds (default 120), then starts it again on the same data and port;
4. after the session (``LivePublisher.finish``: the session, final device status and patient status points)
   waits for the outbox to drain and compares, per measurement, the points produced (the outbox's lines,
   keyed by series and timestamp) with the points InfluxDB holds: **lost** = produced but not in InfluxDB,
   **extra** = in InfluxDB but never produced, **duplicated** = one series+timestamp produced more than once.

The speed (virtual seconds per real second) is chosen so that the session outlasts the outage by
``--tail-s`` real seconds, unless ``--speed`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hipback.ingest.influx.schema import MEASUREMENTS  # noqa: E402
from hipback.ingest.influx.writer import InfluxWriter  # noqa: E402
from hipback.ingest.publish import LivePublisher  # noqa: E402
from hipback.ingest.session.virtual import run_virtual_session_async  # noqa: E402
from hipback.ingest.store import LocalStore  # noqa: E402
from hipback.ingest.sync import SyncWorker  # noqa: E402
from hipback.ingest.virtual_time import run_virtual  # noqa: E402
from hipback.simulator import SensorSpec, VirtualPatient, simulate  # noqa: E402
from tests.influx_server import InfluxServer  # noqa: E402

DEVICES = {"pelvis": "hipback_v1", "thigh_left": "hipback_v1", "thigh_right": "hipback_v1"}
PATIENT = "DRILL-0001"


def line_key(line: str) -> tuple[str, tuple[str, ...], int]:
    """(measurement, tag values in schema order, time ns) of one outbox line (hipback's tags need no
    escaping: ids are ``[A-Za-z0-9_.:-]``)."""
    head, _fields, ts = line.rsplit(" ", 2)
    measurement, *tags = head.split(",")
    tag = dict(t.split("=", 1) for t in tags)
    return measurement, tuple(tag.get(k, "") for k in MEASUREMENTS[measurement].tags), int(ts)


def influx_keys(server: InfluxServer, db: str) -> Counter:
    keys: Counter = Counter()
    for m, spec in MEASUREMENTS.items():
        body = server.query(f'SELECT * FROM "{m}"', db, epoch="ns")
        for s in body["results"][0].get("series", []):
            cols = s["columns"]
            idx = [cols.index(k) if k in cols else None for k in spec.tags]
            for row in s["values"]:
                keys[(m, tuple("" if i is None else (row[i] or "") for i in idx), int(row[0]))] += 1
    return keys


def outbox_lines(path: Path) -> list[tuple[str, int]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [(r[0], int(r[1])) for r in con.execute("SELECT line, state FROM outbox ORDER BY id")]
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--outage-s", type=float, default=120.0, help="real seconds influxd is down")
    ap.add_argument("--stop-after-s", type=float, default=15.0, help="real seconds into the session")
    ap.add_argument("--tail-s", type=float, default=30.0, help="real seconds of session after the restart")
    ap.add_argument("--scenario", default="clinic_visit")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--speed", type=float, default=None, help="virtual seconds per real second")
    ap.add_argument("--drain-timeout-s", type=float, default=120.0)
    args = ap.parse_args()

    sensors = [SensorSpec(p, kind="quat", rate_hz=100.0, device=k) for p, k in DEVICES.items()]
    sim = simulate(args.scenario, seed=args.seed, patient=VirtualPatient(patient_id=PATIENT), sensors=sensors)
    speed = args.speed or sim.duration_s / (args.stop_after_s + args.outage_s + args.tail_s)
    work = Path(tempfile.mkdtemp(prefix="hipback-drill-"))
    server = InfluxServer(work / "influxd").start()
    db = server.create_database("hipback_drill")
    store_path = work / "store.sqlite"
    store = LocalStore(store_path)
    writer = InfluxWriter(server.url, db, max_retries=1, timeout_s=2.0)
    worker = SyncWorker(store, writer, owns_writer=True, poll_s=0.5, backoff_initial_s=0.5, backoff_max_s=5.0)
    sid = uuid.uuid4().hex
    live = LivePublisher(store, PATIENT, sid, wake=worker.wake, status_interval_s=60.0)
    marks: dict[str, float] = {}
    peak_pending = [0]
    stop_monitor = threading.Event()

    def monitor() -> None:
        while not stop_monitor.wait(0.25):
            pending = store.outbox_stats()["pending"]
            peak_pending[0] = max(peak_pending[0], pending)
            if "restarted" in marks and "backlog" not in marks and pending <= 100:
                marks["backlog"] = time.monotonic()  # the outage's backlog is out (live lines keep coming)

    async def outage() -> None:
        await asyncio.sleep(args.stop_after_s * speed)  # simulated seconds, paced at ``speed``
        marks["stopped"] = time.monotonic()
        pending = store.outbox_stats()
        await asyncio.to_thread(server.stop)
        print(f"influxd stopped {args.stop_after_s:.0f} s into the session (outbox: {pending['delivered']} "
              f"delivered, {pending['pending']} pending); down for {args.outage_s:.0f} s", flush=True)
        await asyncio.sleep(args.outage_s * speed)
        marks["pending_at_restart"] = store.outbox_stats()["pending"]
        await asyncio.to_thread(server.start)
        marks["restarted"] = time.monotonic()
        print(f"influxd restarted; {marks['pending_at_restart']} line(s) waiting in the outbox", flush=True)

    async def session() -> object:
        t_out = asyncio.ensure_future(outage())
        outcome = await run_virtual_session_async(sim, DEVICES, store, session_id=sid, patient_id=PATIENT,
                                                  on_update=live.on_update, on_session=live.bind)
        marks["session_end"] = time.monotonic()
        live.finish(outcome.results, outcome.stats)
        marks["finished"] = time.monotonic()
        await t_out
        return outcome

    print(f"drill: {args.scenario} ({sim.duration_s:.0f} s simulated) at {speed:.2f}x, outage "
          f"{args.outage_s:.0f} s from {args.stop_after_s:.0f} s; influxd {server.url}", flush=True)
    threading.Thread(target=monitor, daemon=True).start()
    worker.start()
    t0 = time.monotonic()
    try:
        outcome = run_virtual(session(), pace=speed)
        deadline = time.monotonic() + args.drain_timeout_s
        while store.outbox_stats()["pending"] and time.monotonic() < deadline:
            worker.wake()
            time.sleep(0.2)
        marks["drained"] = time.monotonic()
        worker.stop()
        stop_monitor.set()
        lines = outbox_lines(store_path)
        stats = store.outbox_stats()
        produced = Counter(line_key(line) for line, _ in lines)
        delivered = influx_keys(server, db)
    finally:
        store.close()
        server.close()

    by_m_prod = Counter(k[0] for k in produced.elements())
    by_m_infl = Counter(k[0] for k in delivered.elements())
    lost = set(produced) - set(delivered)
    extra = set(delivered) - set(produced)
    dup_prod = sum(v - 1 for v in produced.values())
    dup_infl = sum(v - 1 for v in delivered.values())
    print()
    print(f"session {sid}: stopped by {outcome.stopped_by}, {sum(s.samples for s in outcome.stats.values())} "
          f"samples stored, {len(outcome.results.strides) if outcome.results else 0} strides, "
          f"{len(outcome.results.holds) if outcome.results else 0} holds; real time "
          f"{marks['session_end'] - t0:.1f} s")
    print(f"outbox: {stats['total']} lines produced, {stats['delivered']} delivered, {stats['pending']} "
          f"pending, {stats['set_aside']} set aside; peak pending during the outage {peak_pending[0]}")
    backlog = marks.get("backlog", marks["drained"]) - marks["restarted"]
    print(f"backlog: {marks['pending_at_restart']} lines pending at the restart, down to <= 100 within "
          f"{backlog:.1f} s")
    print(f"drain: {marks['drained'] - marks['restarted']:.1f} s from the restart until the outbox was empty "
          f"(session ended {marks['session_end'] - marks['restarted']:.1f} s after the restart); sync worker "
          f"sent {worker.totals.delivered} lines in {worker.totals.batches} batches")
    print(f"{'measurement':16s} {'produced':>9s} {'in InfluxDB':>11s}")
    for m in MEASUREMENTS:
        print(f"{m:16s} {by_m_prod.get(m, 0):9d} {by_m_infl.get(m, 0):11d}")
    print(f"{'total':16s} {sum(by_m_prod.values()):9d} {sum(by_m_infl.values()):11d}")
    print(f"lost {len(lost)}, extra {len(extra)}, duplicated (produced twice) {dup_prod}, duplicated in "
          f"InfluxDB {dup_infl}")
    ok = not lost and not extra and not dup_prod and not dup_infl and stats["pending"] == 0
    print("RESULT:", "zero lost, zero duplicated" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

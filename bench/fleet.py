"""Many gateways, one database: N gateway processes replay patients' daily sessions into one ``influxd``,
which is restarted once mid-run; then every point is counted.

Run by hand (not part of the test suite; the figures are in ``bench/README.md``)::

    .venv/bin/python -m bench.fleet [--gateways 200] [--patients 1] [--days 3] [--down-s 15]

The load model (one patient, one day): one home session of a 20-minute walk followed by three 30-s
hip-flexor stretches per side (``--walk-s``, ``--holds``), processed like a real one (simulated with
:func:`hipback.simulator.simulate`, processed in batch with
:func:`hipback.processing.pipeline.process_recording`) and published with the product's own
:func:`hipback.ingest.publish.publish_session` (strides, holds, activity, session summary, 10 Hz angles,
device status and the patient's status: about 17,000 points).

What happens:

1. ``--templates`` sessions are simulated, processed and published once, in a child process (different
   virtual patients and seeds); their outbox lines are the templates (a gateway gives them its own patient
   id, session id and start time: the line protocol is rewritten, nothing else changes);
2. a private ``influxd`` (:class:`tests.influx_server.InfluxServer`) starts with one database;
3. ``--gateways`` processes are forked. Each is one home gateway: its own local store (SQLite, WAL,
   ``synchronous=FULL``) and outbox, a :class:`~hipback.ingest.sync.SyncWorker` thread with an
   :class:`~hipback.ingest.influx.writer.InfluxWriter` (as ``hipback record`` runs it). It serves
   ``--patients`` patients for ``--days`` days, replayed at high speed: one session every
   ``--interval-s`` seconds (a day in seconds), each queued in the outbox with a patient id, session
   id and start time of its own; the worker is woken after each session. Gateways run at nice 10, the
   database at normal priority (on real hardware they are different machines);
4. when ``--restart-at`` of all points have been queued, the database is stopped (SIGTERM) for
   ``--down-s`` seconds and started again on the same data and port;
5. each gateway waits until its outbox is empty, then reports what it produced (per patient, session,
   measurement and field) and the delay of every line from queued (``created_utc``) to delivered
   (``done_utc``);
6. InfluxDB is asked ``SELECT count(*) ... GROUP BY "patient", "session"`` per measurement, and every
   count is compared with what the gateways produced: **lost** = produced but not in InfluxDB,
   **duplicated** = in InfluxDB beyond what was produced.

Printed: points produced and delivered, lost and duplicated, the server's ingest rate (points per
second over the busy seconds and the best 10-s window), the end-to-end delay p50/p99 (all lines, and the
lines queued while the database was up), influxd's CPU time and disk per million points, series per
session, and the number of patients one server of this machine sustains at the load model above.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # forked gateways: no BLAS thread pools to copy
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import multiprocessing as mp  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Only what a gateway needs is imported here: gateways are forked from this process, and every module
# object they touch is copied into each of them (the simulator and processing run in a child process).
from hipback.ingest.influx.schema import MEASUREMENTS  # noqa: E402
from hipback.ingest.influx.writer import InfluxWriter  # noqa: E402
from hipback.ingest.store import LocalStore  # noqa: E402
from hipback.ingest.sync import SyncWorker  # noqa: E402
from tests.influx_server import InfluxServer  # noqa: E402

DAY_S = 86_400.0
BASE_UTC = 1_767_225_600.0  # 2026-01-01 00:00 UTC: day 0 of the replay
DB = "fleet"


class FleetInflux(InfluxServer):
    """The test suite's private influxd with admission control on writes, as a production server needs it
    when many gateways send at once (see docs/deployment.md): at most ``WRITE_CONCURRENCY`` writes run at a
    time, up to ``WRITE_QUEUE`` wait, and a write that waited ``WRITE_QUEUE_TIMEOUT`` is answered 503 (the
    gateways back off and send again). Without it, 1.6 accepts every request at once and a backlog of 200
    gateways after a restart grew influxd past 16 GB until the kernel killed it."""

    WRITE_CONCURRENCY = 8
    WRITE_QUEUE = 400
    WRITE_QUEUE_TIMEOUT = "5s"  # below the gateways' 10-s request timeout: a 503, never an abandoned write

    def _write_config(self) -> None:
        super()._write_config()
        text = self.config_path.read_text()
        extra = (f"  max-concurrent-write-limit = {self.WRITE_CONCURRENCY}\n"
                 f"  max-enqueued-write-limit = {self.WRITE_QUEUE}\n"
                 f'  enqueued-write-timeout = "{self.WRITE_QUEUE_TIMEOUT}"\n')
        # compact soon after writes stop, so that the disk figure is that of compacted TSM files, not WAL
        cold = '  cache-snapshot-write-cold-duration = "2s"\n  compact-full-write-cold-duration = "5s"\n'
        if "[http]\n" not in text or "[data]\n" not in text:
            raise RuntimeError("the influxd configuration has no [http] or [data] section to extend")
        text = text.replace("[http]\n", "[http]\n" + extra, 1).replace("[data]\n", "[data]\n" + cold, 1)
        self.config_path.write_text(text)


def _tpl_ids(k: int) -> tuple[str, str]:
    return f"TPLPATIENT{k:04d}", f"tplsession{k:04d}"


# -- templates (run in a child process: python -m bench.fleet --make-templates FILE) ----------------------


def make_templates(path: Path, n: int, walk_s: float, holds: int) -> None:
    """Simulate, process and publish ``n`` daily sessions; write their outbox lines to ``path`` (JSON)."""
    from hipback.ingest.publish import publish_session
    from hipback.ingest.session.stats import SensorStats
    from hipback.processing.pipeline import ProcessorConfig, process_recording
    from hipback.simulator import Scenario, Step, VirtualPatient, simulate

    steps = [Step("stand", 10.0), Step("walk", walk_s, options={"corridor_m": 20.0}), Step("stand", 5.0)]
    for side in ("left", "right"):
        steps.append(Step("kneel", 5.0, side=side))
        for _ in range(holds):
            steps += [Step("hold", 30.0, side=side), Step("kneel", 5.0, side=side)]
    steps.append(Step("stand", 5.0))
    config = ProcessorConfig(holds_per_side=holds, hold_s=30.0)
    out = []
    with tempfile.TemporaryDirectory() as tmp, LocalStore(Path(tmp) / "tpl.sqlite") as store:
        for k in range(n):
            pid, sid = _tpl_ids(k)
            patient = VirtualPatient(patient_id=pid, peak_hip_extension_left_deg=8.0 + 3 * k,
                                     peak_hip_extension_right_deg=10.0 + 2 * k)
            sim = simulate(Scenario("daily", steps), 100 + k, patient, start_utc=BASE_UTC)
            res = process_recording(sim.recording, config)
            stats = {}
            for j, (placement, stream) in enumerate(sim.recording.streams.items()):
                st = SensorStats(placement, "hipback_v1", f"C0:FF:EE:00:{k:02X}:{j:02X}")
                st.samples, st.first_t, st.last_t = len(stream.t), float(stream.t[0]), float(stream.t[-1])
                st.battery_pct = 80.0
                stats[placement] = st
            duration = float(res.angles.t[-1])
            store.open_session(pid, {"start_utc": BASE_UTC}, session_id=sid)
            publish_session(store, sid, res, pid, BASE_UTC, stats, now_s=BASE_UTC + duration + 60.0)
            lines = [line for _, line in store.outbox_pending(10**7, sid)]
            out.append({"lines": lines, "t0_ns": int(BASE_UTC * 1e9), "duration_s": duration})
    path.write_text(json.dumps(out))


def _retag(line: str, tpl_patient: str, tpl_session: str, pid: str, sid: str, offset_ns: int) -> str:
    head, ts = line.rsplit(" ", 1)
    head = head.replace(f"patient={tpl_patient}", f"patient={pid}").replace(f"session={tpl_session}",
                                                                             f"session={sid}")
    return f"{head} {int(ts) + offset_ns}"


# -- one gateway (a forked process) ----------------------------------------------------------------------


def gateway(g: int, args: argparse.Namespace, url: str, templates: list, go: Any, counters: Any,
            work: Path) -> None:
    os.nice(10)
    logging.getLogger("hipback").setLevel(logging.ERROR)  # 200 gateways saying "unreachable" is noise
    folder = work / f"gw{g:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    store = LocalStore(folder / "store.sqlite")
    writer = InfluxWriter(url, DB, batch_size=args.batch, timeout_s=10.0, max_retries=1, backoff_base_s=0.2,
                          backoff_max_s=2.0)
    worker = SyncWorker(store, writer, owns_writer=True, poll_s=1.0, backoff_initial_s=0.5,
                        backoff_max_s=args.backoff_max_s)
    go.wait()
    worker.start()
    rng = np.random.default_rng(g)

    def wait(seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            counters[2 * g + 1] = worker.totals.delivered
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.5, left))

    wait(rng.uniform(0, args.interval_s))  # gateways do not publish in lockstep
    produced_at = {}
    for day in range(args.days):
        for p in range(args.patients):
            pid = f"G{g:03d}P{p:02d}"
            sid = f"g{g:03d}p{p:02d}d{day:03d}"
            k = (g + p + day) % len(templates)
            tpl = templates[k]
            start = BASE_UTC + day * DAY_S + 8 * 3600 + ((g * 7919 + p * 104729) % 36_000)
            offset = int(start * 1e9) - tpl["t0_ns"]
            tp, ts = _tpl_ids(k)
            lines = [_retag(line, tp, ts, pid, sid, offset) for line in tpl["lines"]]
            store.open_session(pid, {"start_utc": start}, session_id=sid)
            store.outbox_add(sid, lines)
            store.close_session(sid, start + tpl["duration_s"])
            produced_at[sid] = time.time()
            counters[2 * g] += len(lines)
            worker.wake()
        wait(args.interval_s * rng.uniform(0.8, 1.2))
    deadline = time.monotonic() + args.drain_timeout_s
    while store.outbox_stats()["pending"] and time.monotonic() < deadline:
        worker.wake()
        wait(0.5)
    worker.stop(final_sync=False)
    counters[2 * g + 1] = worker.totals.delivered
    stats_out = store.outbox_stats()
    store.close()
    con = sqlite3.connect(f"file:{folder / 'store.sqlite'}?mode=ro", uri=True)
    produced: Counter[str] = Counter()
    delays, done, queued = [], [], []
    rows = con.execute("SELECT line, state, created_utc, done_utc FROM outbox")
    for line, state, created, finished in rows:
        for key in _field_keys(line):
            produced[key] += 1
        if state == 1:
            delays.append(finished - created)
            done.append(finished)
            queued.append(created)
    con.close()
    np.savez(folder / "delays.npz", delay=np.asarray(delays, np.float32), done=np.asarray(done),
             queued=np.asarray(queued))
    (folder / "summary.json").write_text(json.dumps({"outbox": stats_out, "produced": produced,
                                                    "sessions": produced_at}))


def _field_keys(line: str) -> list[str]:
    """``measurement|patient|session|field`` of every field of one line (hipback's ids need no escaping:
    tags match ``[A-Za-z0-9_.:-]``; string fields may hold spaces, so fields are split with care)."""
    head, rest = line.split(" ", 1)
    fields_text = rest.rsplit(" ", 1)[0]
    measurement, *tags = head.split(",")
    tag = dict(t.split("=", 1) for t in tags)
    names, in_string, start = [], False, 0
    for i, c in enumerate(fields_text):
        if c == '"' and (i == 0 or fields_text[i - 1] != "\\"):
            in_string = not in_string
        elif c == "," and not in_string:
            names.append(fields_text[start:i].split("=", 1)[0])
            start = i + 1
    names.append(fields_text[start:].split("=", 1)[0])
    return [f"{measurement}|{tag.get('patient', '')}|{tag.get('session', '')}|{n}" for n in names]


# -- the run ---------------------------------------------------------------------------------------------


def influx_counts(server: InfluxServer) -> Counter[str]:
    counts: Counter[str] = Counter()
    for m in MEASUREMENTS:
        body = server.query(f'SELECT count(*) FROM "{m}" GROUP BY "patient", "session"', DB)
        for s in body["results"][0].get("series", []):
            tags = s.get("tags", {})
            for col, value in zip(s["columns"][1:], s["values"][0][1:], strict=True):
                if value:
                    counts[f"{m}|{tags.get('patient', '')}|{tags.get('session', '')}|{col[6:]}"] += int(value)
    return counts


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateways", type=int, default=200)
    ap.add_argument("--patients", type=int, default=1, help="patients per gateway")
    ap.add_argument("--days", type=int, default=3, help="days replayed (one session per patient and day)")
    ap.add_argument("--interval-s", type=float, default=8.0, help="real seconds per replayed day")
    ap.add_argument("--walk-s", type=float, default=1200.0)
    ap.add_argument("--holds", type=int, default=3, help="30-s holds per side")
    ap.add_argument("--templates", type=int, default=3)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--restart-at", type=float, default=0.4, help="share of all points queued at the stop")
    ap.add_argument("--down-s", type=float, default=15.0)
    ap.add_argument("--backoff-max-s", type=float, default=8.0)
    ap.add_argument("--drain-timeout-s", type=float, default=900.0)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--make-templates", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_templates:
        make_templates(args.make_templates, args.templates, args.walk_s, args.holds)
        return

    work = Path(tempfile.mkdtemp(prefix="hipback-fleet-"))
    t = time.perf_counter()
    tpl_path = work / "templates.json"
    subprocess.run([sys.executable, "-m", "bench.fleet", "--make-templates", str(tpl_path), "--templates",
                    str(args.templates), "--walk-s", str(args.walk_s), "--holds", str(args.holds)],
                   check=True, cwd=Path(__file__).resolve().parents[1])
    templates = json.loads(tpl_path.read_text())
    per_session = np.mean([len(tp["lines"]) for tp in templates])
    expected = args.gateways * args.patients * args.days * per_session
    print(f"{args.templates} template sessions simulated, processed and published in "
          f"{time.perf_counter() - t:.0f} s ({templates[0]['duration_s']:.0f} s of session, "
          f"{per_session:,.0f} points each)", flush=True)
    server = FleetInflux(work / "influxd").start()
    server.create_database(DB)
    server.write(f"warmup v=1 {int(BASE_UTC * 1e9)}", DB)  # the series file and shard exist: a fixed size
    time.sleep(3)
    disk_empty = dir_mb(work / "influxd" / "data") + dir_mb(work / "influxd" / "wal")
    ctx = mp.get_context("fork")
    go = ctx.Event()
    counters = ctx.Array("q", 2 * args.gateways, lock=False)  # per gateway: lines queued, lines delivered
    procs = [ctx.Process(target=gateway, args=(g, args, server.url, templates, go, counters, work),
                         daemon=True) for g in range(args.gateways)]
    rss_peak = 0

    def progress() -> tuple[int, int]:
        return sum(counters[0::2]), sum(counters[1::2])

    def watch_rss() -> None:
        nonlocal rss_peak
        try:
            for line in Path(f"/proc/{server._proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_peak = max(rss_peak, int(line.split()[1]) // 1024)
        except (OSError, AttributeError):
            pass

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops influxd and gateways
    gc.freeze()  # gateways share this process's objects: keep the collector from touching (copying) them
    try:
        for p in procs:
            p.start()
        cpu0 = proc_cpu_s(server._proc.pid)
        t0 = time.time()
        go.set()
        print(f"{args.gateways} gateways x {args.patients} patient(s) x {args.days} day(s) started; influxd "
              f"{server.url}", flush=True)
        while progress()[0] < args.restart_at * expected and any(p.is_alive() for p in procs):
            watch_rss()
            time.sleep(0.2)
        cpu_before_stop = proc_cpu_s(server._proc.pid)
        queued, delivered = progress()
        t_stop = time.time()  # the outage starts with SIGTERM (influxd may take seconds to exit)
        server.stop()
        alive = sum(p.is_alive() for p in procs)
        print(f"influxd stopped {t_stop - t0:.0f} s into the run ({alive} gateways running; {queued:,} "
              f"points queued, {delivered:,} delivered, {queued - delivered:,} pending); down for "
              f"{args.down_s:.0f} s", flush=True)
        time.sleep(args.down_s)
        queued, delivered = progress()
        server.start()
        t_restart = time.time()
        cpu1 = proc_cpu_s(server._proc.pid)
        print(f"influxd restarted; {queued - delivered:,} points pending", flush=True)
        last = time.monotonic()
        while any(p.is_alive() for p in procs):
            watch_rss()
            time.sleep(0.5)
            if time.monotonic() - last > 15:
                last = time.monotonic()
                queued, delivered = progress()
                print(f"  {time.time() - t0:.0f} s: {queued:,} queued, {delivered:,} delivered", flush=True)
        for p in procs:
            p.join()
        t_end = time.time()
        cpu_total = (cpu_before_stop - cpu0) + (proc_cpu_s(server._proc.pid) - cpu1)
        failed = [g for g, p in enumerate(procs) if p.exitcode != 0]
        counts = influx_counts(server)
        cardinality = server.query("SHOW SERIES CARDINALITY", DB)["results"][0]
        disk_before = dir_mb(work / "influxd" / "data") + dir_mb(work / "influxd" / "wal")
        sizes = [disk_before]
        for _ in range(45):  # until compaction has settled (the sizes stop changing), at most 90 s
            time.sleep(2)
            sizes.append(dir_mb(work / "influxd" / "data") + dir_mb(work / "influxd" / "wal"))
            if len(sizes) >= 4 and max(sizes[-4:]) - min(sizes[-4:]) < 0.5:
                break
        disk_mb = sizes[-1]
        server.stop()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        server.close()

    produced: Counter[str] = Counter()
    outbox: Counter[str] = Counter()
    sessions = 0
    delay, done, queued = [], [], []
    for g in range(args.gateways):
        folder = work / f"gw{g:03d}"
        if not (folder / "summary.json").is_file():
            continue
        summary = json.loads((folder / "summary.json").read_text())
        produced.update(summary["produced"])
        outbox.update(summary["outbox"])
        sessions += len(summary["sessions"])
        arrays = np.load(folder / "delays.npz")
        delay.append(arrays["delay"])
        done.append(arrays["done"])
        queued.append(arrays["queued"])
    d, dn, q = np.concatenate(delay), np.concatenate(done), np.concatenate(queued)
    lost = sum(max(0, n - counts.get(k, 0)) for k, n in produced.items())
    extra = sum(max(0, n - produced.get(k, 0)) for k, n in counts.items())
    lines_total = int(outbox["total"])
    busy = np.bincount((dn - dn.min()).astype(int))
    window = np.convolve(busy, np.ones(10), "valid").max() / 10 if busy.size >= 10 else busy.mean()
    per_patient_day = lines_total / max(1, sessions)
    rate = lines_total / max(1.0, float(np.count_nonzero(busy)))
    # sustained capacity: all sessions of a day inside 12 waking hours, the busiest hour 3x the average
    peak_need_per_patient = per_patient_day / (12 * 3600) * 3
    cpu_per_m = cpu_total / (lines_total / 1e6)
    print()
    print(f"gateways: {args.gateways} ({len(failed)} failed{': ' + str(failed[:10]) if failed else ''}), "
          f"sessions: {sessions}, run {t_end - t0:.0f} s")
    print(f"points produced {lines_total:,}; delivered (outbox) {int(outbox['delivered']):,}; pending "
          f"{int(outbox['pending'])}; set aside {int(outbox['set_aside'])}")
    print(f"field values produced {sum(produced.values()):,}; in InfluxDB {sum(counts.values()):,}; "
          f"lost {lost}; duplicated {extra} (compared per gateway, patient, session, measurement, field)")
    print(f"server ingest: {rate:,.0f} points/s over the {np.count_nonzero(busy)} busy seconds; best 10-s "
          f"window {window:,.0f} points/s; influxd CPU {cpu_total:.0f} s = {cpu_per_m:.1f} CPU-s per million "
          f"points")
    grown = disk_mb - disk_empty
    print(f"disk (data + WAL): {disk_empty:.0f} MB with one point (preallocated), {disk_before:.0f} MB right "
          f"after the run, {disk_mb:.0f} MB compacted: {grown * 1e6 / lines_total:.1f} bytes per point, "
          f"{grown * 1e6 / sum(counts.values()):.1f} bytes per field value")
    print(f"end-to-end delay (queued -> delivered), all lines: p50 {np.percentile(d, 50):.1f} s, p99 "
          f"{np.percentile(d, 99):.1f} s, max {d.max():.1f} s; the backlog queued before the restart was "
          f"delivered {dn[q <= t_restart].max() - t_restart:.0f} s after it")
    for what, mask in (("queued before the stop", q < t_stop),
                       ("queued while the database was down", (q >= t_stop) & (q <= t_restart)),
                       ("queued after the restart", q > t_restart)):
        if mask.any():
            print(f"  {what}: {int(mask.sum()):,} lines, p50 {np.percentile(d[mask], 50):.1f} s, p99 "
                  f"{np.percentile(d[mask], 99):.1f} s")
    series = sum(s["values"][0][0] for s in cardinality.get("series", []))
    print(f"series: {series:,} for {sessions} sessions ({series / max(1, sessions):.1f} per session); "
          f"influxd peak RSS {rss_peak:,} MB")
    print(f"load model: {per_patient_day:,.0f} points per patient per day (one {args.walk_s / 60:.0f}-min "
          f"walk + {args.holds} holds per side); sessions in 12 waking hours, busiest hour 3x the average: "
          f"{peak_need_per_patient:.2f} points/s per patient at the peak")
    cpu_capacity = 2 * 1e6 / cpu_per_m  # points/s if influxd had both cores
    print(f"patients one server of this machine sustains: {window / peak_need_per_patient:,.0f} at the best "
          f"10-s ingest rate (influxd sharing the 2 cores with {args.gateways} gateways); "
          f"{cpu_capacity / peak_need_per_patient:,.0f} by influxd's CPU time alone (both cores)")
    ok = not failed and lost == 0 and extra == 0 and outbox["pending"] == 0 and outbox["set_aside"] == 0
    print("RESULT:", "zero lost, zero duplicated across a database restart" if ok else "MISMATCH")
    if args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

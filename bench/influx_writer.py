"""Writer throughput into a private influxd, next to the ``influxdb`` Python client, in the same run.

Run by hand (not part of the test suite)::

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python -m bench.influx_writer [--points 100000] [--rounds 3] [--batch 5000]

Both writers get the same points (an ``angles``-like measurement: 3 tags, 4 float fields, one point per
10 ms) in their own input form (hipback :class:`Point` objects, encoded and sent with
:meth:`InfluxWriter.send_lines` as the outbox sync does; the reference client's dicts), write
them with millisecond precision in batches of the same size into two fresh databases of one private
influxd, and are timed end to end (encoding, compression, HTTP, server acknowledgement). Rounds
alternate between the writers; the best round of each is reported (the machine is shared), with the
median alongside. The counts in both databases are checked to equal the points written.

Also printed: the local store's sample insert rate (``add_samples`` in 100 ms chunks of 12 sensors,
``synchronous=FULL``) and the outbox -> sync -> InfluxDB rate, which bound the live path.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hipback.ingest.influx.lineprotocol import Point, encode_lines  # noqa: E402
from hipback.ingest.influx.writer import InfluxWriter  # noqa: E402
from hipback.ingest.store import LocalStore  # noqa: E402
from hipback.ingest.sync import SyncWorker  # noqa: E402
from tests.influx_server import InfluxServer  # noqa: E402

T0_NS = 1_763_700_000_000_000_000


def make_points(n: int, patients: int = 5) -> list[Point]:
    rng = np.random.default_rng(1)
    values = rng.normal(0, 10, size=(n, 4)).round(3).tolist()
    out = []
    for i in range(n):
        p = i % patients
        v = values[i]
        out.append(Point("angles", {"patient": f"P-{p:04d}", "session": f"s{p:031d}", "exercise": "walk"},
                         {"hip_flexion_left_deg": v[0], "hip_flexion_right_deg": v[1],
                          "pelvic_tilt_deg": v[2], "lumbar_flexion_deg": v[3]},
                         T0_NS + (i // patients) * 10_000_000))
    return out


def count(server: InfluxServer, db: str) -> int:
    series = server.query('SELECT count("pelvic_tilt_deg") FROM "angles"', db)["results"][0]["series"]
    return sum(int(s["values"][0][1]) for s in series)


def run_hipback(server: InfluxServer, points: list[Point], batch: int, gzip: bool) -> tuple[float, str]:
    """The product's path without the store: encode, then :meth:`InfluxWriter.send_lines` (one request at
    a time, as the outbox sync sends)."""
    db = server.create_database()
    t = time.perf_counter()
    with InfluxWriter(server.url, db, batch_size=batch, gzip=gzip) as writer:
        result = writer.send_lines(encode_lines(points, "ms"), precision="ms")
    assert result.accepted == len(points)
    return time.perf_counter() - t, db


def run_reference(server: InfluxServer, dicts: list[dict], batch: int, gzip: bool) -> tuple[float, str]:
    from influxdb import InfluxDBClient

    db = server.create_database()
    client = InfluxDBClient(host="127.0.0.1", port=server.http_port, database=db, gzip=gzip)
    t = time.perf_counter()
    client.write_points(dicts, time_precision="ms", batch_size=batch)
    elapsed = time.perf_counter() - t
    client.close()
    return elapsed, db


def bench_store(tmp: Path) -> tuple[float, float]:
    with LocalStore(tmp / "bench.sqlite") as store:
        sid = store.open_session("P-bench")
        sensors = [f"s{i}" for i in range(12)]
        for s in sensors:
            store.add_sensor(sid, s, "raw", "bench", None)
        rng = np.random.default_rng(2)
        rows, t = 0, time.perf_counter()
        for k in range(50):
            for s in sensors:
                tt = 1.7e9 + (k * 10 + np.arange(10)) / 100
                rows += store.add_samples(sid, s, tt, seq=np.arange(k * 10, k * 10 + 10),
                                          quat=rng.random((10, 4)), acc=rng.random((10, 3)),
                                          gyr=rng.random((10, 3)))
        return rows / (time.perf_counter() - t), 50 * 12 / (time.perf_counter() - t)


def bench_outbox(tmp: Path, server: InfluxServer, points: list[Point], batch: int) -> tuple[float, float]:
    with LocalStore(tmp / "outbox.sqlite") as store:
        t = time.perf_counter()
        store.outbox_add("s", points)
        add_rate = len(points) / (time.perf_counter() - t)
        db = server.create_database()
        with InfluxWriter(server.url, db, batch_size=batch) as writer:
            t = time.perf_counter()
            SyncWorker(store, writer).sync_once()
            sync_rate = len(points) / (time.perf_counter() - t)
        assert count(server, db) == len(points)
        return add_rate, sync_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()

    points = make_points(args.points)
    dicts = [{"measurement": p.measurement, "tags": dict(p.tags), "fields": dict(p.fields),
              "time": p.time_ns // 1_000_000} for p in points]
    names = ("hipback (gzip)", "hipback (no gzip)", "influxdb client", "influxdb client (gzip)")
    results: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmpdir, InfluxServer(Path(tmpdir) / "influxd") as server:
        print(f"influxd {server.url}; {args.points} points, batches of {args.batch}, precision ms, "
              f"{args.rounds} rounds")
        runs = {
            "hipback (gzip)": lambda: run_hipback(server, points, args.batch, True),
            "influxdb client": lambda: run_reference(server, dicts, args.batch, False),
            "hipback (no gzip)": lambda: run_hipback(server, points, args.batch, False),
            "influxdb client (gzip)": lambda: run_reference(server, dicts, args.batch, True),
        }
        for _ in range(args.rounds):
            for name, fn in runs.items():
                elapsed, db = fn()
                got = count(server, db)
                if got != args.points:
                    raise SystemExit(f"{name}: {got} points in the database, expected {args.points}")
                server.drop_database(db)
                results[name].append(args.points / elapsed)
        print(f"{'writer':26s} {'best pts/s':>12s} {'median pts/s':>13s}")
        for name, rates in results.items():
            print(f"{name:26s} {max(rates):12,.0f} {statistics.median(rates):13,.0f}")

        def ratio(a: str, b: str) -> str:
            best = max(results[a]) / max(results[b])
            median = statistics.median(results[a]) / statistics.median(results[b])
            return f"{best:.2f}x best, {median:.2f}x median"

        print(f"ratio, both gzip:  {ratio('hipback (gzip)', 'influxdb client (gzip)')}")
        print(f"ratio, both plain: {ratio('hipback (no gzip)', 'influxdb client')}")
        print(f"ratio, each with its default (hipback gzip, client plain): "
              f"{ratio('hipback (gzip)', 'influxdb client')}")
        rows_s, calls_s = bench_store(Path(tmpdir))
        print(f"local store add_samples (12 sensors, 10-sample chunks, synchronous=FULL): {rows_s:,.0f} "
              f"rows/s, {calls_s:,.0f} calls/s (live need at 100 Hz: 1,200 rows/s, 120 calls/s)")
        subset = points[: min(len(points), 50_000)]
        add_rate, sync_rate = bench_outbox(Path(tmpdir), server, subset, args.batch)
        print(f"outbox_add: {add_rate:,.0f} points/s; outbox -> SyncWorker -> influxd: "
              f"{sync_rate:,.0f} points/s")


if __name__ == "__main__":
    main()

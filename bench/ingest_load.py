"""Ingest load benchmark: N virtual sensors at 100 Hz over the virtual BLE link into the session runner.

Sensors are grouped four to a patient session (pelvis, both thighs, upper lumbar: the processing pipeline's
placements); all sessions share one virtual adapter (one Bumble central, one connect lock), one asyncio loop,
one SQLite store (WAL, fsync per write) and run the live processing pipeline. The virtual sensors themselves
(Bumble peripherals, encoders) run in the same process, so the CPU figures include simulating them.

For each N it prints: whether every sample sent was stored (zero unexplained loss: stored == sent, no gaps),
CPU (process CPU time / wall time, in % of one core), peak memory (max RSS), and per-packet latency from
notification arrival to durable storage and to the live angle output (p50, p99). The highest N with zero
unexplained loss (no gaps either, except WitMotion's arrival-time estimates) and stored-latency p99 under
1 s is reported as sustained.

Usage::

    .venv/bin/python bench/ingest_load.py --sensors 4,8,12,16 --duration 20 [--max-batch 2]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hipback.ingest.ble.bumble_backend import BumbleWorld  # noqa: E402
from hipback.ingest.session.virtual import run_virtual_session_async  # noqa: E402
from hipback.ingest.store import LocalStore  # noqa: E402
from hipback.simulator import SensorSpec, simulate  # noqa: E402

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e3 if values else math.nan


async def _run(n: int, duration: float, kind: str, max_batch: int, sim, store: LocalStore) -> dict:
    world = BumbleWorld(speed=1.0)
    lock = asyncio.Lock()
    groups = []
    left = n
    while left > 0:
        k = min(4, left)
        groups.append(dict(zip(PLACEMENTS[:k], [kind] * k, strict=True)))
        left -= k
    tasks = [
        run_virtual_session_async(
            sim,
            kinds,
            store,
            world=world,
            connect_lock=lock,
            first_index=1 + 4 * g,
            patient_id=f"BENCH-{g:02d}",
            until_s=duration,
            lead_s=0.5 + 0.4 * n,
            calibration_s=5.0,
            max_batch={p: max_batch for p in kinds} if max_batch else None,
        )
        for g, kinds in enumerate(groups)
    ]
    try:
        outcomes = await asyncio.gather(*tasks)
    finally:
        await world.close()
    return {"outcomes": outcomes}


def bench_one(n: int, duration: float, kind: str, max_batch: int, sim, workdir: Path) -> dict:
    path = workdir / f"load_{n}.sqlite"
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with LocalStore(path) as store:
        res = asyncio.run(_run(n, duration, kind, max_batch, sim, store))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        sent = stored = gaps = missing = rejected = 0
        lat_s: list[float] = []
        lat_a: list[float] = []
        notes: list[str] = []
        for o in res["outcomes"]:
            lat_s += o.latency_stored_s
            lat_a += o.latency_angle_s
            for p, st in o.stats.items():
                sent += o.ledgers[p].sent_samples
                got = store.sample_count(o.session_id, p)
                stored += got
                if got != o.ledgers[p].sent_samples:
                    notes.append(
                        f"{o.patient_id}/{p}: sent {o.ledgers[p].sent_samples}, stored {got}, "
                        f"disconnects {st.disconnects}, duplicates ignored {st.duplicates_ignored}, "
                        f"rejected {dict(st.rejected)}"
                    )
                gaps += st.gaps
                missing += st.missing
                rejected += sum(st.rejected.values())
    unexplained = sent - stored
    return {
        "n": n,
        "sent": sent,
        "stored": stored,
        "unexplained_loss": unexplained,
        "gaps": gaps,
        "missing": missing,
        "rejected": rejected,
        "cpu_pct": 100.0 * cpu / wall,
        "wall_s": wall,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "stored_p50_ms": _pct(lat_s, 50),
        "stored_p99_ms": _pct(lat_s, 99),
        "angle_p50_ms": _pct(lat_a, 50),
        "angle_p99_ms": _pct(lat_a, 99),
        "angle_packets": len(lat_a),
        "rate_hz": stored / max(n, 1) / duration,
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sensors", default="4,8,12,16", help="comma-separated sensor counts to try")
    ap.add_argument("--duration", type=float, default=20.0, help="streamed seconds per run (real time)")
    ap.add_argument("--kind", default="hipback_v1", choices=("hipback_v1", "movella_dot", "witmotion"))
    ap.add_argument("--max-batch", type=int, default=0, help="hipback v1 samples per packet cap (0 = MTU)")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.sensors.split(",") if x.strip()]
    sim = simulate("short", seed=1, sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in PLACEMENTS])
    print(
        f"ingest load: {args.kind} at 100 Hz (max_batch {args.max_batch or 'MTU'}), "
        f"{args.duration:g} s per run, live processing on, SQLite synchronous=FULL"
    )
    header = (
        f"{'N':>3} {'sent':>7} {'stored':>7} {'unexpl':>6} {'gaps':>4} {'CPU%':>5} {'RSS MB':>7} "
        f"{'store p50':>9} {'p99':>7} {'angle p50':>9} {'p99':>7}"
    )
    print(header)
    best = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            r = bench_one(n, args.duration, args.kind, args.max_batch, sim, Path(tmp))
            # WitMotion has neither sequence numbers nor timestamps: its gaps are estimates from arrival times
            # (false positives under CPU load), so only stored == sent counts for it.
            gaps_ok = r["gaps"] == 0 or args.kind == "witmotion"
            ok = r["unexplained_loss"] == 0 and gaps_ok and r["stored_p99_ms"] < 1000
            best = max(best, n) if ok else best
            print(
                f"{r['n']:>3} {r['sent']:>7} {r['stored']:>7} {r['unexplained_loss']:>6} {r['gaps']:>4} "
                f"{r['cpu_pct']:>5.0f} {r['maxrss_mb']:>7.0f} "
                f"{r['stored_p50_ms']:>7.1f}ms {r['stored_p99_ms']:>5.1f}ms "
                f"{r['angle_p50_ms']:>7.1f}ms {r['angle_p99_ms']:>5.1f}ms"
                + ("" if ok else "  <- not sustained"),
                flush=True,
            )
            for note in r["notes"]:
                print(f"      {note}")
    print(f"highest N sustained with zero unexplained loss: {best}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

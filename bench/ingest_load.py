"""Ingest load benchmark: N virtual sensors at 100 Hz over the virtual BLE link into the session runner.

Sensors are grouped four to a patient session (pelvis, both thighs, upper lumbar: the processing pipeline's
placements); all sessions share one virtual adapter (one Bumble central, one connect lock), one asyncio loop,
one SQLite store (WAL, fsync per write), run the live processing pipeline and publish live results to the
store's outbox (:class:`hipback.ingest.publish.LivePublisher`).

Two runs per N:

1. **Simulated time** (as fast as the CPU allows): the product's CPU per sample, separately from the virtual
   world's. The product's share is the thread CPU time spent in the runner's notification callback (copy and
   queue: ``SessionRunner._on_notify``), its data path (decode, clock models, store hand-off, live
   processing, publishing: ``SessionRunner._handle_batch``) and the store writers' rounds
   (``writer._Group.write_now``); everything else in the process (virtual sensors and encoders, both Bumble
   stacks, the bleak frontend) is the virtual world. Each wrapped call adds the wrapper's own two
   ``thread_time`` reads to the product's share. "Sensors per core" is one core divided by the
   product's CPU per sensor-second at 100 Hz.
2. **Paced at real time** (``--paced``): the same session watched in real time, with the virtual world in the
   same process: whether the process keeps up (wall time / streamed time), every sample sent stored, and the
   real latency from notification arrival to durable storage and to the live angle (p50, p99).

Usage::

    .venv/bin/python bench/ingest_load.py --sensors 4,12,24 --duration 20 [--max-batch 2] [--paced]
        [--live-batch 0.02,0.05] [--stages] [--every-step]

``--every-step`` feeds the processor's event detectors and summary at every live step (``hold_step_s`` and
``event_step_s`` 0) instead of in their rounds, for comparison.
``--stages`` prints the product's CPU per stored sample by stage (see ``_StageCpu``) instead of timing only
the three entry points: its wrappers add their own cost, so its total runs above the plain figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
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
from hipback.ingest.publish import LivePublisher  # noqa: E402
from hipback.ingest.session import runner as runner_module  # noqa: E402
from hipback.ingest.session import writer as writer_module  # noqa: E402
from hipback.ingest.session.runner import SessionRunner, session_gc  # noqa: E402
from hipback.ingest.session.virtual import run_virtual_session_async  # noqa: E402
from hipback.ingest.store import LocalStore  # noqa: E402
from hipback.ingest.virtual_time import run_virtual  # noqa: E402
from hipback.simulator import SensorSpec, simulate  # noqa: E402

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e3 if values else math.nan


async def _run(n: int, duration: float, kind: str, max_batch: int, sim, store: LocalStore) -> dict:
    world = BumbleWorld()
    lock = asyncio.Lock()
    groups = []
    left = n
    while left > 0:
        k = min(4, left)
        groups.append(dict(zip(PLACEMENTS[:k], [kind] * k, strict=True)))
        left -= k
    publishers = [LivePublisher(store, f"BENCH-{g:02d}") for g in range(len(groups))]
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
            on_update=pub.on_update,
            on_session=pub.bind,
        )
        for (g, kinds), pub in zip(enumerate(groups), publishers, strict=True)
    ]
    try:
        outcomes = await asyncio.gather(*tasks)
    finally:
        await world.close()
    return {"outcomes": outcomes}


class _ProductCpu:
    """Thread CPU time spent in the product's data path (see the module docstring), by wrapping its two
    entry points for the duration of a run."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._saved = [
            (SessionRunner, "_on_notify"),
            (SessionRunner, "_handle_batch"),
            (writer_module._Group, "write_now"),
        ]

    def __enter__(self) -> _ProductCpu:
        for cls, name in self._saved:
            orig = getattr(cls, name)

            def timed(*args, _orig=orig, **kwargs):
                t0 = time.thread_time()
                try:
                    return _orig(*args, **kwargs)
                finally:
                    self.seconds += time.thread_time() - t0

            setattr(cls, name, timed)
            setattr(cls, f"_bench_orig_{name}", orig)
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, name in self._saved:
            setattr(cls, name, getattr(cls, f"_bench_orig_{name}"))


class _StageCpu:
    """With ``--stages``: thread CPU time per stage of the product's data path, by wrapping each stage's entry
    point (each wrapper's own ``thread_time`` reads fall into the enclosing stage). Stages: ``notify`` (the
    callback's copy and queue), ``decode``, ``clock``, ``store hand-off`` (``StoreWriter.samples``),
    ``processing`` (``SessionProcessor.feed``, ``poll`` and ``run_events``), ``publish``
    (``LivePublisher.on_update``), ``store inserts`` (``LocalStore.add_samples`` in the writer's rounds) and
    ``store round`` (the rest of a round: transaction, commit and fsync, bookkeeping); ``rest of the batch``
    is the runner's own share of ``_handle_batch``."""

    def __init__(self) -> None:
        from hipback.ingest.clock import ClockModel
        from hipback.ingest.devices.base import Decoder
        from hipback.processing.pipeline import SessionProcessor

        self.seconds: dict[str, float] = {}
        self._entries = [
            (SessionRunner, "_on_notify", "notify"),
            (SessionRunner, "_handle_batch", "batch"),
            (Decoder, "feed", "decode"),
            (ClockModel, "map", "clock"),
            (writer_module.StoreWriter, "samples", "store hand-off"),
            (SessionProcessor, "feed", "processing"),
            (SessionProcessor, "poll", "processing"),
            (SessionProcessor, "run_events", "processing"),
            (LivePublisher, "on_update", "publish"),
            (writer_module._Group, "write_now", "round"),
            (LocalStore, "add_samples", "store inserts"),
        ]
        self._stack: list[list[float]] = []

    def __enter__(self) -> _StageCpu:
        for cls, name, stage in self._entries:
            orig = cls.__dict__[name]

            def timed(*args, _orig=orig, _stage=stage, **kwargs):
                inner = [0.0]  # time of the stages called from this one
                self._stack.append(inner)
                t0 = time.thread_time()
                try:
                    return _orig(*args, **kwargs)
                finally:
                    dt = time.thread_time() - t0
                    self._stack.pop()
                    self.seconds[_stage] = self.seconds.get(_stage, 0.0) + dt - inner[0]
                    if self._stack:
                        self._stack[-1][0] += dt

            setattr(cls, name, timed)
            setattr(cls, f"_stage_orig_{name}", orig)
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, name, _ in self._entries:
            setattr(cls, name, cls.__dict__[f"_stage_orig_{name}"])

    def report(self, stored: int) -> list[str]:
        names = {"batch": "rest of the batch", "round": "store round"}
        order = ["notify", "decode", "clock", "store hand-off", "processing", "publish", "batch",
                 "store inserts", "round"]
        total = sum(self.seconds.values())
        per = {k: 1e6 * self.seconds.get(k, 0.0) / max(stored, 1) for k in order}
        lines = [f"{names.get(k, k):>18}: {per[k]:6.1f} us" for k in order]
        return lines + [f"{'total':>18}: {1e6 * total / max(stored, 1):6.1f} us per stored sample"]


@contextlib.contextmanager
def _live_batch(live_batch_s: float | None, every_step: bool = False):
    """The session runner's processors built with this ``live_batch_s`` (None: the default) and, with
    ``every_step``, their event detectors fed at every live step (no rounds)."""
    saved = runner_module.ProcessorConfig
    changes: dict[str, float] = {} if live_batch_s is None else {"live_batch_s": live_batch_s}
    if every_step:
        changes.update(hold_step_s=0.0, event_step_s=0.0)
    if changes:
        runner_module.ProcessorConfig = functools.partial(saved, **changes)
    try:
        yield
    finally:
        runner_module.ProcessorConfig = saved


def bench_one(n: int, duration: float, kind: str, max_batch: int, sim, workdir: Path,
              paced: bool = False, live_batch_s: float | None = None, stages: bool = False,
              every_step: bool = False) -> dict:
    path = workdir / f"load_{n}_{live_batch_s}{'_paced' if paced else ''}.sqlite"
    cpu0, wall0 = time.process_time(), time.perf_counter()
    meter = _StageCpu() if stages else _ProductCpu()
    with LocalStore(path) as store, meter as product, _live_batch(live_batch_s, every_step):
        with session_gc():  # as ``hipback record`` and the virtual session entry run a session
            res = run_virtual(_run(n, duration, kind, max_batch, sim, store), pace=1.0 if paced else None)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        sent = stored = gaps = missing = rejected = 0
        lat_s: list[float] = []
        lat_a: list[float] = []
        lat_sim: list[float] = []
        notes: list[str] = []
        for o in res["outcomes"]:
            lat_s += o.latency_stored_s
            lat_a += o.latency_angle_s
            lat_sim += o.latency_angle_session_s
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
        "product_us_per_sample": 1e6 * _seconds(product) / max(stored, 1),
        "world_us_per_sample": 1e6 * (cpu - _seconds(product)) / max(stored, 1),
        "stages": product.report(stored) if stages else [],
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "stored_p50_ms": _pct(lat_s, 50),
        "stored_p99_ms": _pct(lat_s, 99),
        "angle_p50_ms": _pct(lat_a, 50),
        "angle_p99_ms": _pct(lat_a, 99),
        "angle_sim_p50_ms": _pct(lat_sim, 50),
        "angle_sim_p99_ms": _pct(lat_sim, 99),
        "angle_packets": len(lat_a),
        "rate_hz": stored / max(n, 1) / duration,
        "notes": notes,
    }


def _seconds(meter: _ProductCpu | _StageCpu) -> float:
    return meter.seconds if isinstance(meter.seconds, float) else sum(meter.seconds.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sensors", default="4,12,24", help="comma-separated sensor counts to try")
    ap.add_argument("--duration", type=float, default=20.0, help="streamed seconds per run")
    ap.add_argument("--kind", default="hipback_v1", choices=("hipback_v1", "movella_dot", "witmotion"))
    ap.add_argument("--max-batch", type=int, default=0, help="hipback v1 samples per packet cap (0 = MTU)")
    ap.add_argument("--paced", action="store_true", help="also run each N paced at real time")
    ap.add_argument("--live-batch", default="",
                    help="comma-separated live_batch_s values of the processor to sweep (default: its own)")
    ap.add_argument("--stages", action="store_true",
                    help="CPU per stage of the product's data path (each stage's wrapper adds its own reads)")
    ap.add_argument("--every-step", action="store_true",
                    help="event detectors and summary at every live step instead of in their rounds")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.sensors.split(",") if x.strip()]
    batches = [float(x) for x in args.live_batch.split(",") if x.strip()] or [None]
    sim = simulate("short", seed=1, sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in PLACEMENTS])
    print(
        f"ingest load: {args.kind} at 100 Hz (max_batch {args.max_batch or 'MTU'}), "
        f"{args.duration:g} s per run, live processing and publishing on, SQLite synchronous=FULL"
    )
    print("simulated time (CPU per stored sample; sensors per core from the product's share at 100 Hz;")
    print("angle latency on the simulated clock: what packets, batching and waiting for the other sensors")
    print("add, without the host's delays):")
    print(f"{'N':>3} {'batch s':>7} {'stored':>7} {'unexpl':>6} {'product':>10} {'world':>10} "
          f"{'sensors/core':>12} {'angle p50':>9} {'p99':>7}")
    best = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            for lb in batches:
                r = bench_one(n, args.duration, args.kind, args.max_batch, sim, Path(tmp), live_batch_s=lb,
                              stages=args.stages, every_step=args.every_step)
                per_core = 1e6 / (r["product_us_per_sample"] * 100.0)
                print(f"{r['n']:>3} {'default' if lb is None else lb:>7} {r['stored']:>7} "
                      f"{r['unexplained_loss']:>6} "
                      f"{r['product_us_per_sample']:>7.1f} us {r['world_us_per_sample']:>7.1f} us "
                      f"{per_core:>12.0f} {r['angle_sim_p50_ms']:>7.1f}ms {r['angle_sim_p99_ms']:>5.1f}ms",
                      flush=True)
                for note in r["notes"]:
                    print(f"      {note}")
                for line in r["stages"]:
                    print(f"      {line}")
        if not args.paced:
            return 0
        print("paced at real time (virtual world in the same process"
              + ("" if batches[0] is None else f"; live_batch_s {batches[0]}") + "):")
        print(f"{'N':>3} {'sent':>7} {'stored':>7} {'unexpl':>6} {'wall/stream':>11} {'CPU%':>5} "
              f"{'RSS MB':>7} {'store p50':>9} {'p99':>7} {'angle p50':>9} {'p99':>7}")
        for n in counts:
            r = bench_one(n, args.duration, args.kind, args.max_batch, sim, Path(tmp), paced=True,
                          live_batch_s=batches[0], every_step=args.every_step)
            behind = r["wall_s"] / (args.duration + 0.5 + 0.4 * n)
            ok = r["unexplained_loss"] == 0 and behind < 1.1 and r["angle_p99_ms"] <= 50.0
            best = max(best, n) if ok else best
            print(
                f"{r['n']:>3} {r['sent']:>7} {r['stored']:>7} {r['unexplained_loss']:>6} {behind:>11.2f} "
                f"{r['cpu_pct']:>5.0f} {r['maxrss_mb']:>7.0f} "
                f"{r['stored_p50_ms']:>7.1f}ms {r['stored_p99_ms']:>5.1f}ms "
                f"{r['angle_p50_ms']:>7.1f}ms {r['angle_p99_ms']:>5.1f}ms"
                + ("" if ok else "  <- not sustained"),
                flush=True,
            )
    print(f"highest N kept up in real time (zero loss, angle p99 <= 50 ms, world included): {best}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

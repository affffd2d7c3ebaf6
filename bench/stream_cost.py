"""CPU per sample of the session processor: batch versus the small chunks BLE delivers. Prints figures.

Run: ``.venv/bin/python bench/stream_cost.py [--seconds 60] [--sensors 3] [--chunks 1,4,10] [--kind raw]
[--live-batch 0.05] [--repeat 3] [--every-step]``

A simulated walk (``walk`` scenario: standing calibration, corridor walk) with 3 sensors (pelvis and both
thighs) or 4 (plus the upper lumbar sensor) at 100 Hz is processed

* in batch (:func:`hipback.processing.process_recording`: each stream fed in one piece), and
* streamed: the sensors' samples interleaved in arrival order, ``n`` samples per ``feed`` call per sensor,
  with a ``poll()`` after every round of calls (as the session runner polls), then ``finish()``, for each
  ``live_batch_s`` given (the processor queues small chunks and runs its blocks once that much is queued per
  sensor: the latency it adds is at most ``live_batch_s``).

``--every-step`` feeds the event detectors and the summary at every live step (``hold_step_s`` and
``event_step_s`` 0) instead of in their rounds, for comparison.
It prints process CPU time (``time.process_time``) per sample (microseconds, one sample = one sensor's
sample) and the ratio streamed/batch, and checks that every run gives the same angles and strides as batch.
With ``--repeat n`` every run is made n times and the median CPU time is printed (the machine is shared: CPU
figures move with the load).
The issue's target for the whole live path (decode, clock, store, process, publish) is <= 20 us per sample.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hipback.processing import SessionProcessor, process_recording  # noqa: E402
from hipback.simulator.sensor_spec import SensorSpec  # noqa: E402
from hipback.simulator.session import simulate  # noqa: E402


def make(seconds: float, n_sensors: int, kind: str):
    places = ["pelvis", "thigh_left", "thigh_right", "lumbar_upper"][:n_sensors]
    sensors = [SensorSpec(p, kind=kind, rate_hz=100.0) for p in places]
    walk_s = max(seconds - 15.0, 5.0)
    return simulate("walk", seed=3, sensors=sensors, calib_s=10.0, walk_s=walk_s, stand_s=5.0).recording


def batch(rec) -> tuple[float, object]:
    t0 = time.process_time()
    res = process_recording(rec, chunk_s=None)  # each stream in one piece
    return time.process_time() - t0, res


def streamed(rec, n: int, live_batch_s: float, every_step: bool = False) -> tuple[float, object]:
    streams = list(rec.streams.values())
    rounds = {"hold_step_s": 0.0, "event_step_s": 0.0} if every_step else {}
    proc = SessionProcessor.default(
        {s.placement: s.kind for s in streams},
        {s.placement: s.rate_hz for s in streams},
        live_batch_s=live_batch_s,
        **rounds,
    )
    pieces = [[s.slice(a, min(a + n, len(s))) for a in range(0, len(s), n)] for s in streams]
    rounds = max(len(p) for p in pieces)
    t0 = time.process_time()
    for r in range(rounds):
        for p in pieces:
            if r < len(p):
                proc.feed(p[r])
        proc.poll()
    res = proc.finish()
    return time.process_time() - t0, res


def median_of(repeat: int, run, *args) -> tuple[float, list]:
    """``run(*args)`` made ``repeat`` times: the median CPU time and every run's results."""
    runs = [run(*args) for _ in range(max(repeat, 1))]
    return statistics.median(cpu for cpu, _ in runs), [res for _, res in runs]


def same(a, b) -> bool:
    ok = len(a.angles) == len(b.angles)
    for name in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt"):
        ok = ok and np.array_equal(getattr(a.angles, name), getattr(b.angles, name), equal_nan=True)
    return ok and [(s.side, s.t_start) for s in a.strides] == [(s.side, s.t_start) for s in b.strides]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--sensors", type=int, default=3, choices=(3, 4))
    ap.add_argument("--chunks", default="1,4,10")
    ap.add_argument("--kind", default="raw", choices=("raw", "quat"))
    ap.add_argument("--live-batch", default="0.05,0.1,0.25", help="live_batch_s values (s)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per figure (the median is printed)")
    ap.add_argument("--every-step", action="store_true",
                    help="event detectors and summary at every live step instead of in their rounds")
    args = ap.parse_args()
    rec = make(args.seconds, args.sensors, args.kind)
    n_samples = sum(len(s) for s in rec.streams.values())
    print(
        f"{args.sensors} {args.kind} sensors at 100 Hz, {rec.duration_s:.0f} s, {n_samples} samples "
        "(CPU microseconds per sample)"
    )
    cpu_b, res_b = median_of(args.repeat, batch, rec)
    per_b = cpu_b / n_samples * 1e6
    print(f"  batch (each stream in one piece):        {per_b:7.2f} us/sample")
    for lb in [float(x) for x in args.live_batch.split(",")]:
        for n in [int(x) for x in args.chunks.split(",")]:
            cpu, results = median_of(args.repeat, streamed, rec, n, lb, args.every_step)
            per = cpu / n_samples * 1e6
            ok = "same results" if all(same(res, res_b[0]) for res in results) else "RESULTS DIFFER"
            print(
                f"  live_batch_s {lb:4.2f}, chunks of {n:3d}: {per:7.2f} us/sample "
                f"({per / per_b:4.1f} x batch; {ok})"
            )


if __name__ == "__main__":
    main()

"""Memory a live session keeps growing: ``tracemalloc`` snapshots of a virtual session at two session times,
the growth between them per source file. Prints figures.

Run: ``.venv/bin/python bench/session_memory.py [--walk-s 400] [--from-s 120] [--max-batch 2] [--by lineno]``

A virtual session (``walk`` scenario: 10 s standing calibration, ``--walk-s`` of walking, 5 s standing) of
three hipback v1 raw sensors at 100 Hz (pelvis, both thighs) runs through the whole live path (virtual BLE,
decoders, store, processing, on simulated time), with ``--max-batch`` samples per packet (2: a session
config's 20 ms packets; 11: full packets). Snapshots are taken when the live angles reach ``--from-s`` and
``--walk-s - 20`` s of session time; the growth between them is printed per file (``--by lineno``: per line)
and per hour of session. The virtual sensors' own ledger (``simulator/virtual_ble``) is part of the test
bench, not of the product; the runner's latency samples stop growing at ``LATENCY_SAMPLES`` packets per kind
(``ingest/session/stats.py``), which three sensors with 2-sample packets reach after about 11 minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hipback.ingest.session import run_virtual_session  # noqa: E402
from hipback.simulator import SensorSpec, simulate  # noqa: E402

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walk-s", type=float, default=400.0)
    ap.add_argument("--from-s", type=float, default=120.0, help="session time of the first snapshot (s)")
    ap.add_argument("--max-batch", type=int, default=2, help="samples per packet")
    ap.add_argument("--by", default="filename", choices=("filename", "lineno"))
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args(argv)
    t_a, t_b = args.from_s, args.walk_s - 20.0
    if t_b <= t_a:
        ap.error("--walk-s must end more than 20 s after --from-s")
    sim = simulate("walk", seed=3, sensors=[SensorSpec(p, kind="raw", rate_hz=100.0) for p in PLACEMENTS],
                   calib_s=10.0, walk_s=args.walk_s, stand_s=5.0)
    snaps: dict[float, tracemalloc.Snapshot] = {}

    def on_update(update, stats) -> None:
        if len(update.angles):
            t = float(update.angles.t[-1])
            for k in (t_a, t_b):
                if k not in snaps and t >= k:
                    snaps[k] = tracemalloc.take_snapshot()

    with tempfile.TemporaryDirectory() as d:
        tracemalloc.start(1)
        try:
            run_virtual_session(sim, {p: "hipback_v1" for p in PLACEMENTS}, Path(d) / "s.sqlite",
                                max_batch={p: args.max_batch for p in PLACEMENTS}, on_update=on_update)
        finally:
            tracemalloc.stop()
    diff = snaps[t_b].compare_to(snaps[t_a], args.by)
    total = sum(s.size_diff for s in diff)
    bench = sum(s.size_diff for s in diff if "virtual_ble" in s.traceback[0].filename
                or "tracemalloc" in s.traceback[0].filename)
    hours = (t_b - t_a) / 3600.0
    product = total - bench
    print(f"virtual session, 3 raw sensors, {args.max_batch}-sample packets, growth from {t_a:.0f} to "
          f"{t_b:.0f} s of session time: {total / 1e6:.2f} MB ({total / 1e6 / hours:.1f} MB per hour); "
          f"without the virtual sensors' ledger and tracemalloc: {product / 1e6:.2f} MB "
          f"({product / 1e6 / hours:.1f} MB per hour)")
    for s in diff[: args.top]:
        where = str(s.traceback[0]).replace(str(ROOT) + "/", "")
        print(f"  {s.size_diff / 1e6:8.3f} MB  {where}")


if __name__ == "__main__":
    main()

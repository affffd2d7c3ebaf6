"""Slip monitor in exercise sessions: false slips on the virtual patient doing every catalogue exercise, and
the hard case of a real slip (a thigh sensor turning 15 deg on the leg mid-walk) still found.

Run: ``python bench/exercise_slip.py [--seeds 1 2 3]``. Figures go to bench/README.md.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from hipback.processing import quaternion as qm
from hipback.processing.pipeline import SessionProcessor
from hipback.processing.types import Recording, SensorStream
from hipback.simulator import SensorSpec, simulate
from hipback.simulator.exercises import default_programme, simulate_programme

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")


def slips(rec: Recording) -> list[tuple[str, float, str]]:
    proc = SessionProcessor({p: s.kind for p, s in rec.streams.items()},
                            {p: s.rate_hz for p, s in rec.streams.items()})
    for s in rec.streams.values():
        proc.feed(s)
    proc.finish()
    return list(proc.slip_monitor.slips_)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = ap.parse_args()
    t0 = time.process_time()
    total = {"standing": 0, "moving": 0}
    for seed in args.seeds:
        sim = simulate_programme(default_programme(), seed=seed,
                                 sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in PLACEMENTS])
        found = slips(sim.recording)
        for _, _, how in found:
            total[how] += 1
        print(f"every exercise, seed {seed} ({sim.recording.duration_s:.0f} s, no slip in truth): {found}")
    print(f"false slips: standing check {total['standing']}, moving check {total['moving']} "
          f"over {len(args.seeds)} sessions")
    found_real = 0
    for seed in args.seeds:
        sim = simulate("clinic_visit", seed=seed,
                       sensors=[SensorSpec(placement=x, kind="quat", rate_hz=60.0) for x in PLACEMENTS[:3]])
        st = dict(sim.recording.streams)
        th = st["thigh_right"]
        turn = qm.from_axis_angle([0.0, 1.0, 0.0], math.radians(15.0) * np.clip((th.t - 40.0) / 0.5, 0, 1))
        st["thigh_right"] = SensorStream("thigh_right", "quat", th.t, th.rate_hz,
                                         quat=qm.multiply(th.quat, turn))
        got = slips(Recording(st))
        found_real += any(p == "thigh_right" and how == "standing" for p, _, how in got)
        print(f"clinic visit, seed {seed}, right thigh sensor turned 15 deg at 40 s: {got}")
    print(f"real slip found by the standing check: {found_real} of {len(args.seeds)}")
    print(f"CPU {time.process_time() - t0:.1f} s")


if __name__ == "__main__":
    main()

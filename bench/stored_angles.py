"""Size and cost of the angle series stored with a session's results (store kind ``angles``). Prints figures.

Run: ``.venv/bin/python bench/stored_angles.py [--minutes 5,60] [--lumbar]``

A simulated clinic visit (standing calibration, walking for most of the time, stretch holds, sitting, lying)
with the pelvis and both thighs (and the upper lumbar sensor with ``--lumbar``) at 100 Hz is processed in
batch; its angle series is turned into store rows (:func:`hipback.ingest.results.angles_rows`) as JSON text
the way the store keeps them, and read back (:func:`hipback.ingest.results.angles_from_rows`). Prints, per
session length: samples, rows, bytes stored per minute of session, the largest and smallest full row (a row
is one minute at 100 Hz, so the largest row does not grow with the session), the largest angle error after
the round trip (float32) and the process CPU time (``time.process_time``) to encode and to decode.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="5,60", help="session lengths to measure (minutes, comma separated)")
    ap.add_argument("--lumbar", action="store_true", help="wear the upper lumbar sensor too")
    args = ap.parse_args()

    from hipback.ingest.results import angles_from_rows, angles_rows
    from hipback.processing.pipeline import process_recording
    from hipback.processing.types import AngleSeries
    from hipback.simulator import SensorSpec, simulate

    places = ["pelvis", "thigh_left", "thigh_right"] + (["lumbar_upper"] if args.lumbar else [])
    sensors = [SensorSpec(p, kind="raw", rate_hz=100.0) for p in places]
    print(f"sensors: {', '.join(places)} at 100 Hz")
    for minutes in (float(m) for m in args.minutes.split(",")):
        walk_s = max(10.0, 60.0 * minutes - 150.0)  # the other parts of the visit take about 150 s
        sim = simulate("clinic_visit", seed=5, sensors=sensors, walk_s=walk_s, hold_s=30.0, sit_s=20.0,
                       lie_s=20.0)
        res = process_recording(sim.recording)
        c0 = time.process_time()
        texts = [json.dumps(r, separators=(",", ":")) for r in angles_rows(res, 1.7e9)]
        c1 = time.process_time()
        back, _ = angles_from_rows([json.loads(t) for t in texts])
        c2 = time.process_time()
        n = len(res.angles)
        span_min = n / 100.0 / 60.0
        sizes = [len(t) for t in texts[1:]]
        full = sizes[:-1] or sizes
        err = max(
            float(np.nanmax(np.abs(np.degrees(getattr(back, f) - getattr(res.angles, f))), initial=0.0))
            for f in AngleSeries.FIELDS if f != "pelvis_motion"
        )
        print(f"{span_min:6.1f} min: {n} samples, {len(texts)} rows, {sum(sizes) + len(texts[0])} bytes = "
              f"{(sum(sizes) + len(texts[0])) / 1024 / span_min:.1f} KiB per minute; full rows "
              f"{min(full)}-{max(full)} bytes; largest angle error {err:.2g} deg; CPU encode "
              f"{c1 - c0:.3f} s, decode {c2 - c1:.3f} s")


if __name__ == "__main__":
    main()

"""The README's main command: ``hipback demo`` end to end, with InfluxDB configured through the environment.

The demo runs the whole production path (virtual BLE sensors of three protocols, bleak over Bumble, decoders,
local store, live processing, outbox, sync) on simulated time; this test runs it against the real ``influxd``
and checks what it printed, wrote and delivered against its own results and the virtual truth; a second run
at the same time, beside a CPU-hogging process, must give the same results fingerprint.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from hipback.ingest.store import LocalStore


def _fingerprint(text: str) -> str:
    (line,) = [ln for ln in text.splitlines() if "results fingerprint" in ln]
    return line.split(":")[-1].strip()


def test_demo_runs_end_to_end_and_delivers_to_influxdb(tmp_path: Path, influxd, influx_db: str) -> None:
    out = tmp_path / "demo"
    env = {**os.environ, "HIPBACK_INFLUX_URL": influxd.url, "HIPBACK_INFLUX_DATABASE": influx_db}
    hipback = Path(sys.executable).with_name("hipback")
    # the same demo a second time, at the same time, without InfluxDB and beside a CPU hog (on two cores
    # each run is slowed down by the others): the results must still be the same to the last bit
    env2 = {k: v for k, v in os.environ.items() if not k.startswith("HIPBACK_")}
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with subprocess.Popen([str(hipback), "demo", "--out", str(tmp_path / "again")], env=env2,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as again:
            proc = subprocess.run([str(hipback), "demo", "--out", str(out)], env=env,
                                  capture_output=True, text=True, timeout=900)
            again_out, again_err = again.communicate(timeout=900)
    finally:
        hog.kill()
        hog.wait()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert again.returncode == 0, again_err[-3000:]
    assert "Traceback" not in proc.stderr
    text = proc.stdout
    assert "Calibration recorded" in text
    assert "CUE: Tuck your pelvis" in text  # the arching hold was coached live
    assert "points sent to InfluxDB" in text

    summary = json.loads((out / "summary.json").read_text())
    # the virtual patient: 8 deg left, 15 deg right peak hip extension; 2 holds per side, one arching each
    assert abs(summary["peak_hip_extension_left_deg"] - 8.0) < 2.5
    assert abs(summary["peak_hip_extension_right_deg"] - 15.0) < 2.5
    # two holds per side, one of them arching (the right thigh is the WitMotion: times from arrivals)
    for side in ("left", "right"):
        holds = summary["holds"][side]
        assert holds["count"] == 2 and holds["arching"] == 1, (side, holds)
    with LocalStore(out / "hipback.sqlite") as store:
        (session,) = store.sessions()
        holds = store.get_results(session["id"], "holds")
    for side in ("left", "right"):
        durations = [h["duration_s"] for h in holds if h["side"] == side]
        assert len(durations) == 2 and all(abs(d - 30.0) < 1.0 for d in durations), (side, durations)
    assert (out / "report.html").is_file() and "hipback report latest" in text
    assert _fingerprint(again_out) == _fingerprint(text)

    with LocalStore(out / "hipback.sqlite") as store:
        (session,) = store.sessions()
        assert store.outbox_stats()["pending"] == 0
        for placement, rate in (("pelvis", 100.0), ("thigh_left", 60.0), ("thigh_right", 100.0)):
            n = store.sample_count(session["id"], placement)
            assert abs(n - rate * 320) <= 0.01 * rate * 320, (placement, n)
        strides = store.get_results(session["id"], "strides")

    result = influxd.query('SELECT count("peak_hip_extension_deg") FROM "strides"', influx_db)
    (count,) = [row[1] for row in result["results"][0]["series"][0]["values"]]
    assert count == len(strides) > 80
    query = 'SELECT median("peak_hip_extension_deg") FROM "strides" GROUP BY "side"'
    result = influxd.query(query, influx_db)
    medians = {s["tags"]["side"]: s["values"][0][1] for s in result["results"][0]["series"]}
    for side in ("left", "right"):
        rows = [r["peak_hip_extension_deg"] for r in strides if r["side"] == side]
        assert math.isclose(medians[side], float(np.median(rows)), abs_tol=1e-6)

"""The README's main command: ``hipback demo`` end to end, with InfluxDB configured through the environment.

The demo runs the whole production path (virtual BLE sensors of three protocols, bleak over Bumble, decoders,
local store, live processing, outbox, sync) on simulated time; this test runs it against the real ``influxd``
and checks what it printed, wrote and delivered against its own results and the virtual truth; a second run
at the same time, beside a CPU-hogging process, must give the same results fingerprint. After the stretches
the demo guides a short exercise programme; its stored reps and holds are checked against the simulation's
truth per rep (:func:`hipback.ingest.commands.demo.demo_session`, computed again here: it is deterministic).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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
        # every sample of the session the demo announced (seconds of simulated recording)
        duration = float(re.search(r"session: (\d+) s of standing calibration", text).group(1))
        for placement, rate in (("pelvis", 100.0), ("thigh_left", 60.0), ("thigh_right", 100.0),
                                ("lumbar_upper", 100.0)):
            n = store.sample_count(session["id"], placement)
            assert abs(n - rate * duration) <= 0.01 * rate * duration, (placement, n)
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
    # the patient's status is taken at the session's end on the session's clock: the holds it counts are
    # the session's (taken at the machine's wall clock, which lags simulated time, it counted none)
    result = influxd.query('SELECT "holds_done_7d", "baseline_peak_ext_left_deg" FROM "patient_status"',
                           influx_db)
    ((_, holds_done, baseline_left),) = result["results"][0]["series"][0]["values"]
    assert holds_done == sum(1 for h in holds if h.get("completed")) == 2
    left = [r["peak_hip_extension_deg"] for r in strides if r["side"] == "left"]
    assert math.isclose(baseline_left, float(np.median(left)), abs_tol=1e-6)

    _check_programme(out, text)


def _check_programme(out: Path, text: str) -> None:
    """The guided programme after the stretches: announced, counted and cued live; its stored rows against
    the virtual patient's truth per rep and hold (the arching bridge does not count, the hold does)."""
    from hipback.ingest.commands.demo import DEMO_PROGRAMME, demo_session

    sim = demo_session(7)  # the demo's default seed: the same virtual patient, the same truth
    truth = {s.exercise: s.reps for s in sim.exercises.sets}
    assert set(truth) >= {"glute_bridge", "squat", "knee_to_chest_double"}
    live = [re.sub(r"^\[\s*[\d.]+ s\] ", "", ln) for ln in text.splitlines()]
    for line in ("Next: Glute bridge, 3 reps.", "CUE: Keep your back flat, lift with your buttocks.",
                 "Glute bridge done.", "Next: Double knee-to-chest, 1 hold of 10 seconds.",
                 "Hold 1 of 1 counted, held 10 seconds.", "Next: Squat, 3 reps.", "Squat done.",
                 "Programme done. Well done!"):
        assert line in live, line
    with LocalStore(out / "hipback.sqlite") as store:
        (session,) = store.sessions()
        rows = store.get_results(session["id"], "exercises")
    t0_utc = float(session["meta"]["sim_t0_utc"])  # UTC of simulation time 0
    prescribed = {e["name"]: e.get("reps") or e.get("holds") for e in DEMO_PROGRAMME["exercises"]}
    for exercise, reps in truth.items():
        done = [r for r in rows if r["exercise"] == exercise and r["kind"] in ("rep", "hold")]
        # one row per rep or hold the patient did, in order, each counted exactly when done without a fault
        assert len(done) == len(reps), (exercise, len(done), len(reps))
        assert [r["counted"] for r in done] == [tr.fault is None for tr in reps], exercise
        assert sum(r["counted"] for r in done) == prescribed[exercise]
        for r, tr in zip(done, reps, strict=True):
            assert r["kind"] == tr.kind
            # the same rep or hold: its bounds (simulation time) on the session's UTC timeline
            assert r["t_s"] == pytest.approx(t0_utc + tr.t_start, abs=1.0), (exercise, r["rep"])
            assert r["t_end_s"] == pytest.approx(t0_utc + tr.t_end, abs=1.0), (exercise, r["rep"])
            peak = math.degrees(tr.primary_peak_rad)
            assert r["primary_peak_deg"] == pytest.approx(peak, abs=5.0), exercise
            if tr.fault is not None:
                assert r["first_rule"] == tr.rules_broken[0] and r["cue"], r
    bridges = [tr for tr in truth["glute_bridge"] if tr.fault is not None]
    assert len(bridges) == 1  # the demo shows one arching bridge, and it is not counted
    (hold,) = [r for r in rows if r["exercise"] == "knee_to_chest_double" and r["kind"] == "hold"]
    true_hold = truth["knee_to_chest_double"][0]
    assert hold["counted"] and hold["hold_s"] == pytest.approx(true_hold.hold_s, abs=1.0)
    # the report's exercise section shows the programme
    html = (out / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="exercises">'):]
    assert "Glute bridge" in section and "Squat" in section and "knee-to-chest" in section.lower()


def test_a_closed_output_stops_the_demo_and_says_so(tmp_path: Path) -> None:
    """``hipback demo | head``: the session stops at the first line nobody can read, stays stored and
    closed, and stderr says so in one sentence, exit 0 (rich used to exit 1 at that line, leaving the
    session open)."""
    root = Path(__file__).resolve().parents[1]
    read, write = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hipback.ingest.cli", "demo", "--out", str(tmp_path / "out")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)}, stdout=write, stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write)
    try:
        with os.fdopen(read) as lines:
            for _ in range(3):
                lines.readline()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    (said,) = [x for x in err.splitlines() if x.startswith("hipback:")]
    assert "the output was closed" in said and "stopped early" in said
    assert "Traceback" not in err
    with LocalStore(tmp_path / "out" / "hipback.sqlite") as store:
        (session,) = store.sessions()
        assert session["end_utc"] is not None
        assert store.events(session["id"], "session_end")
    assert not (tmp_path / "out" / "report.html").exists()

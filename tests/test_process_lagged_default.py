"""``hipback process`` gives raw sensors the fixed-lag smoothed orientation filter by default.

Offline nothing waits for live angles, so the command processes raw (acc+gyr) sensors with
``ProcessorConfig.orientation = "lagged"`` unless ``--orientation causal`` asks for the live sessions' filter.
Checked here: the command's results are exactly those of ``process_recording`` with the lagged filter (and
differ from the causal filter's), ``summary.json`` and a stored session's meta always name the filter, the
command copes with gaps and a very short recording, and the lagged filter takes the gyroscope bias from the
causal filter running beside it, so its heading drifts no more than the causal filter's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest import cli
from hipback.ingest.commands import process
from hipback.ingest.files import read_recording, write_recording
from hipback.ingest.store import LocalStore
from hipback.processing import quaternion as qm
from hipback.processing.angles3d import vertical_twist
from hipback.processing.orientation import LaggedOrientationEstimator, OrientationEstimator
from hipback.processing.pipeline import ProcessorConfig, offline_calibration_wait_s, process_recording
from hipback.processing.types import Recording, SensorStream
from tests.synth_processing import make_recording
from tests.test_pipeline import RAW3

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right")


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory) -> Path:
    """A recording of three raw sensors (standing, then walking) written as hipback's files."""
    rec, _ = make_recording(30.0, kinds=RAW3, seed=7, walk_s=18.0)
    folder = tmp_path_factory.mktemp("raw") / "rec"
    write_recording(rec, folder)
    return folder


def _inputs(folder: Path) -> list[str]:
    return [f"{p}={folder / p}.csv" for p in PLACEMENTS]


def _expected(folder: Path, orientation: str):
    """What ``process_recording`` gives the files with ``orientation`` and the command's calibration wait."""
    rec = read_recording({p: folder / f"{p}.csv" for p in PLACEMENTS})
    wait_s = offline_calibration_wait_s(rec.duration_s)
    cfg = ProcessorConfig(orientation=orientation, calibration_timeout_s=wait_s)
    return process_recording(rec, cfg)


def test_the_command_gives_raw_sensors_the_lagged_filter_by_default(raw_folder, tmp_path, monkeypatch):
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    out = tmp_path / "default"
    assert cli.run(["process", *_inputs(raw_folder), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["orientation_filter"] == "lagged"
    lagged, causal = _expected(raw_folder, "lagged"), _expected(raw_folder, "causal")
    assert lagged.calibration_state == "calibrated" and len(lagged.strides) > 0
    angles = (out / "angles.csv").read_text()
    assert angles == process.angles_csv(lagged)
    assert angles != process.angles_csv(causal)  # really the other filter: the raw sensors' angles differ
    assert [(s.side, round(s.t_start, 3)) for s in lagged.strides] == [
        (r.split(",")[0], round(float(r.split(",")[1]), 3))
        for r in (out / "strides.csv").read_text().splitlines()[1:]
    ]


def test_orientation_causal_gives_the_live_filter_and_says_so(raw_folder, tmp_path, monkeypatch):
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    out = tmp_path / "causal"
    assert cli.run(["process", *_inputs(raw_folder), "--out", str(out), "--orientation", "causal"]) == 0
    assert json.loads((out / "summary.json").read_text())["orientation_filter"] == "causal"
    assert (out / "angles.csv").read_text() == process.angles_csv(_expected(raw_folder, "causal"))


def test_the_function_and_the_cli_share_the_default(raw_folder, tmp_path, monkeypatch):
    """``process.run`` called without ``orientation`` (as the other tests and scripts do) is the command."""
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    assert process.DEFAULT_ORIENTATION == "lagged"
    res = process.run(_inputs(raw_folder), tmp_path / "run")
    assert res.summary["orientation_filter"] == "lagged"
    assert cli.run(["process", *_inputs(raw_folder), "--out", str(tmp_path / "cli")]) == 0
    for name in process.OUTPUT_FILES:
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name


def test_a_stored_session_names_its_filter(raw_folder, tmp_path, monkeypatch):
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    for which in ("lagged", "causal"):
        store = tmp_path / f"{which}.sqlite"
        args = ["process", *_inputs(raw_folder), "--out", str(tmp_path / which), "--store", str(store)]
        if which == "causal":
            args += ["--orientation", "causal"]
        assert cli.run(args) == 0
        with LocalStore(store) as st:
            (session,) = st.sessions()
            assert session["meta"]["orientation_filter"] == which
            assert session["meta"]["source"] == "hipback process"


def test_gaps_and_a_very_short_recording(tmp_path, monkeypatch):
    """A sensor losing 0.5 s and 3 s (the lagged filter starts a new piece after each), and a recording of 4 s
    (shorter than one lagged block plus its lag): angles on every row of the timeline, nothing across a gap,
    the same as ``process_recording`` with the lagged filter."""
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    rec, _ = make_recording(30.0, kinds=RAW3, seed=8, walk_s=18.0)
    s = rec.streams["thigh_left"]
    keep = ~(((s.t > 12.0) & (s.t < 12.5)) | ((s.t > 20.0) & (s.t < 23.0)))
    rec.streams["thigh_left"] = SensorStream("thigh_left", "raw", s.t[keep], s.rate_hz, acc=s.acc[keep],
                                             gyr=s.gyr[keep])
    short = Recording({p: st.slice(0, int(np.searchsorted(st.t, 4.0))) for p, st in rec.streams.items()})
    for name, r in (("gaps", rec), ("short", short)):
        folder = tmp_path / name
        write_recording(r, folder)
        res = process.run(_inputs(folder), tmp_path / f"out-{name}")
        assert res.summary["orientation_filter"] == "lagged"
        expected = process.angles_csv(_expected(folder, "lagged"))
        assert (tmp_path / f"out-{name}" / "angles.csv").read_text() == expected
        assert len(res.angles) > 0 and res.angles.t[-1] > r.duration_s - 0.1
        if name == "gaps":
            assert sorted({round(g.t_start) for g in res.gaps if g.placement == "thigh_left"}) == [12, 20]
            left = res.angles.hip_flexion_left
            t = res.angles.t
            assert np.isnan(left[(t > 20.2) & (t < 22.8)]).all()  # nothing interpolated across the gap
            assert np.isfinite(left[(t > 24.0) & (t < 29.0)]).all()  # and angles again after it
            assert np.isfinite(res.angles.hip_flexion_right[(t > 20.2) & (t < 22.8)]).all()


def _rotating_sensor(bias_deg_s: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    """100 Hz: 30 s still, then 90 s of swinging about every axis; returns t, acc, gyr (with a constant bias
    of ``bias_deg_s`` on each axis) and the true sensor-to-world quaternions."""
    rng = np.random.default_rng(seed)
    fs, n = 100.0, 12_000
    t = np.arange(n) / fs
    moving = (t >= 30.0).astype(float)
    w = np.stack([0.9 * np.sin(2 * math.pi * 0.9 * t), 0.7 * np.sin(2 * math.pi * 0.45 * t + 1.0),
                  0.5 * np.sin(2 * math.pi * 0.3 * t + 2.0)], axis=1) * moving[:, None]
    q = np.empty((n, 4))
    q[0] = [1.0, 0.0, 0.0, 0.0]
    for i in range(1, n):  # the true orientation: the true angular velocity integrated in the sensor frame
        q[i] = qm.normalize(qm.multiply(q[i - 1], qm.from_rotvec(w[i - 1] / fs)))
    acc = qm.rotate(qm.conjugate(q), np.tile([0.0, 0.0, 9.81], (n, 1))) + rng.normal(0.0, 0.05, (n, 3))
    gyr = w + math.radians(bias_deg_s) + rng.normal(0.0, 0.003, (n, 3))
    return t, acc, gyr, q


def _heading_change_deg(q_est: np.ndarray, q_true: np.ndarray, t: np.ndarray, t0: float, t1: float) -> float:
    """How far the estimate's heading error moved between ``t0`` and ``t1`` (deg)."""
    psi = np.unwrap(vertical_twist(qm.multiply(q_est, qm.conjugate(q_true))))
    i0, i1 = np.searchsorted(t, [t0, t1])
    return math.degrees(abs(float(psi[i1] - psi[i0])))


def test_the_lagged_filter_takes_the_gyroscope_bias_from_the_causal_filter():
    """A gyroscope offset of 0.4 deg/s on each axis, learnt by the causal filter while the sensor lay still:
    while it then swings, the lagged filter's heading drifts no more than the causal filter's. Runs that
    learnt the bias on their own (each from none, over its 16 s) drifted by several degrees per 15 s."""
    t, acc, gyr, q_true = _rotating_sensor(0.4)
    causal = OrientationEstimator(100.0, use_mag=False).update(t, acc, gyr).quat
    est = LaggedOrientationEstimator(100.0)
    parts = [est.update(t[i : i + 333], acc[i : i + 333], gyr[i : i + 333]) for i in range(0, len(t), 333)]
    parts.append(est.finish())
    lagged = np.concatenate([p.quat for p in parts])
    assert len(lagged) == len(t) and np.isfinite(lagged).all()
    for t0 in (45.0, 60.0, 75.0, 90.0, 100.0):
        c = _heading_change_deg(causal, q_true, t, t0, t0 + 15.0)
        g = _heading_change_deg(lagged, q_true, t, t0, t0 + 15.0)
        assert g <= c + 0.3, (t0, g, c)
        assert g < 1.0, (t0, g)
    # and the inclination keeps the smoothing's gain: no worse than the causal filter's while swinging
    up = np.tile([0.0, 0.0, 1.0], (len(t), 1))

    def incl_deg(q: np.ndarray) -> float:
        u, v = qm.rotate(qm.conjugate(q), up), qm.rotate(qm.conjugate(q_true), up)
        err = np.arccos(np.clip(np.sum(u * v, axis=1), -1.0, 1.0))[t > 40.0]
        return math.degrees(float(np.sqrt(np.mean(err**2))))

    assert incl_deg(lagged) <= incl_deg(causal) + 0.05

"""A vendor file whose quaternions do not follow the device's own gyroscope is read from its accelerometer and
gyroscope instead (step 9 of :mod:`hipback.ingest.files.assemble`), with a warning that ``hipback process``
shows; a device whose fusion works keeps its quaternions.

The files are MT Manager exports of a simulated session (standing, walking): acc and gyr from the simulator,
quaternions from VQF on them (an orientation that follows the gyroscope, as a working device's does), then
spoiled the way a real full-body recording's were: every other sample turned 1.5 deg about a fixed axis and
back (steps of 1-2 deg between samples while the gyroscope reads 0.03 rad/s)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.commands import process
from hipback.ingest.files import read_recording
from hipback.ingest.files.assemble import MAX_ORIENTATION_RESIDUAL_RAD_S
from hipback.processing import quaternion as qt
from hipback.processing.orientation import OrientationEstimator, gyroscope_agreement
from hipback.simulator import VirtualPatient, simulate

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right")


def _jitter(q: np.ndarray, deg: float = 1.5) -> np.ndarray:
    """Every other sample turned ``deg`` about a fixed sensor-frame axis (and the next one back)."""
    axis = np.array([0.6, -0.5, 0.62])
    turn = qt.from_rotvec(np.radians(deg) * axis / np.linalg.norm(axis))
    out = q.copy()
    out[1::2] = qt.multiply(q[1::2], np.broadcast_to(turn, (len(q[1::2]), 4)))
    return out


def _write_mt(path: Path, acc: np.ndarray, gyr: np.ndarray, quat: np.ndarray) -> None:
    lines = ["// Update Rate: 100.0Hz",
             "PacketCounter\tSampleTimeFine\tAcc_X\tAcc_Y\tAcc_Z\tGyr_X\tGyr_Y\tGyr_Z\tQuat_q0\tQuat_q1\tQuat_q2\t"
             "Quat_q3"]
    for i in range(len(acc)):
        vals = [str(i % 65536), str(100 * i), *(f"{v:.6f}" for v in (*acc[i], *gyr[i], *quat[i]))]
        lines.append("\t".join(vals))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """MT Manager exports per placement: ``clean`` (VQF quaternions) and ``jitter`` (spoiled)."""
    sim = simulate("short", 4, VirtualPatient(patient_id="P-0004"), walk_s=12.0)
    folder = tmp_path_factory.mktemp("mt")
    out: dict[str, dict[str, Path]] = {"clean": {}, "jitter": {}}
    for p in PLACEMENTS:
        s = sim.recording.streams[p]
        est = OrientationEstimator(rate_hz=s.rate_hz)
        q = est.update(s.t, s.acc, s.gyr).quat
        for name, quat in (("clean", q), ("jitter", _jitter(q))):
            path = folder / f"{p}_{name}.txt"
            _write_mt(path, s.acc, s.gyr, quat)
            out[name][p] = path
    return out


def test_quaternions_that_follow_the_gyroscope_are_kept(files) -> None:
    rec = read_recording(files["clean"])
    for p, s in rec.streams.items():
        report = s.meta["import"]
        assert s.kind == "quat", p
        assert report.orientation_residual_rad_s is None
        assert not [w for w in report.warnings if "gyroscope" in w]
        agreement = gyroscope_agreement(s.quat, s.gyr, s.rate_hz)
        assert agreement.quiet_rows > 1000  # the test had quiet samples to judge by
        assert agreement.residual_p90_rad_s < MAX_ORIENTATION_RESIDUAL_RAD_S / 3


def test_jittering_quaternions_are_replaced_by_the_raw_sensor_with_a_warning(files) -> None:
    rec = read_recording(files["jitter"])
    clean = read_recording(files["clean"])
    for p, s in rec.streams.items():
        report = s.meta["import"]
        assert s.kind == "raw", p
        assert report.orientation_residual_rad_s > MAX_ORIENTATION_RESIDUAL_RAD_S
        (warning,) = [w for w in report.warnings if "gyroscope" in w]
        assert "does not follow its own gyroscope" in warning and "VQF" in warning
        # the samples are those of the file, nothing dropped or changed by reading it again
        np.testing.assert_array_equal(s.t, clean.streams[p].t)
        np.testing.assert_array_equal(s.acc, clean.streams[p].acc)
        np.testing.assert_array_equal(s.gyr, clean.streams[p].gyr)


def test_process_calibrates_the_jittering_files_and_says_why(files, tmp_path: Path, capsys) -> None:
    inputs = [f"{p}={files['jitter'][p]}" for p in PLACEMENTS]
    res = process.run(inputs, tmp_path / "o")
    assert res.calibration_state == "calibrated"  # with the jittering quaternions nothing ever stood still
    assert sum(s.side == "left" for s in res.strides) >= 5
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    named = [w for w in summary["warnings"] if "does not follow its own gyroscope" in w]
    assert sorted(w.split(":")[0] for w in named) == sorted(PLACEMENTS)
    assert "Warning: " + named[0] in capsys.readouterr().out


def test_a_delay_during_movement_alone_is_not_held_against_the_device(files) -> None:
    """An orientation output two samples behind its gyroscope differs most during fast movement; only quiet
    samples are compared, so such a device keeps its quaternions."""
    rec = read_recording(files["clean"])
    s = rec.streams["thigh_left"]
    late = np.concatenate([s.quat[:2], s.quat[:-2]])
    walking = np.flatnonzero(np.linalg.norm(s.gyr, axis=1) > 1.0)
    w = slice(walking[0], walking[-1] + 1)
    # over the walk, every sample compared, the delay is far beyond the limit ...
    everything = gyroscope_agreement(late[w], s.gyr[w], s.rate_hz, quiet_rad_s=np.inf)
    assert everything.residual_p90_rad_s > 3 * MAX_ORIENTATION_RESIDUAL_RAD_S
    # ... but not on the quiet samples the importer judges by
    assert gyroscope_agreement(late, s.gyr, s.rate_hz).residual_p90_rad_s < MAX_ORIENTATION_RESIDUAL_RAD_S


def test_too_few_quiet_samples_leave_the_quaternions_in_use(files, tmp_path: Path) -> None:
    """Without a second of quiet samples there is nothing to judge by: the device's quaternions are used."""
    lines = files["jitter"]["thigh_left"].read_text().splitlines()
    header, rows = lines[:2], lines[2:]
    gyr = np.array([[float(v) for v in r.split("\t")[5:8]] for r in rows])
    fast = np.flatnonzero(np.linalg.norm(gyr, axis=1) >= 0.5)
    keep = [rows[i] for i in range(fast[0], fast[0] + 300)]
    quiet = int(np.sum(np.linalg.norm(gyr[fast[0]:fast[0] + 300], axis=1) < 0.5))
    assert quiet < 100
    short = tmp_path / "short.txt"
    short.write_text("\n".join(header + keep) + "\n", encoding="utf-8")
    s = read_recording({"thigh_left": short}).streams["thigh_left"]
    assert s.kind == "quat"

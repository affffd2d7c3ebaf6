"""Research export: CSV and Parquet carry the same tables; the OpenSense ``.sto`` file parses and its
quaternions put gravity where the chosen world frame says (Z up as recorded, or OpenSim's Y up)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from hipback.ingest.cli import app
from hipback.ingest.export import export_session
from hipback.ingest.store import LocalStore
from hipback.processing import quaternion as quat
from hipback.processing.pipeline import process_recording
from hipback.simulator import SensorSpec, simulate


@pytest.fixture(scope="module")
def session():
    sensors = [
        SensorSpec("pelvis", kind="raw", rate_hz=100.0),
        SensorSpec("thigh_left", kind="quat", rate_hz=60.0),
        SensorSpec("thigh_right", kind="raw", rate_hz=100.0),
    ]
    sim = simulate("short", seed=4, sensors=sensors)
    return sim, process_recording(sim.recording)


def read_csv(path: Path) -> dict[str, list[str]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return {name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])}


def test_csv_and_parquet_hold_the_same_tables(session, tmp_path):
    sim, res = session
    csv_paths = export_session(res, sim.recording, tmp_path / "csv", "csv")
    pq_paths = export_session(res, sim.recording, tmp_path / "pq", "parquet")
    assert [p.stem for p in csv_paths] == [p.stem for p in pq_paths] == [
        "angles", "strides", "holds", "activity", "exercises"]
    # a session without an exercise programme: the exercises table has its columns and no rows
    assert csv_paths[-1].read_text().splitlines()[0].startswith("kind,exercise,work_side,")
    assert len(csv_paths[-1].read_text().splitlines()) == 1 and pq.read_table(pq_paths[-1]).num_rows == 0
    for c_path, p_path in zip(csv_paths, pq_paths, strict=True):
        c = read_csv(c_path)
        table = pq.read_table(p_path)
        p = table.to_pydict()
        assert list(c) == list(p), c_path.name
        assert b"hipback.angles" in table.schema.metadata
        for name, pvals in p.items():
            cvals = c[name]
            assert len(cvals) == len(pvals), name
            for cv, pv in zip(cvals, pvals, strict=True):
                if isinstance(pv, bool):
                    assert cv == ("true" if pv else "false"), name
                elif isinstance(pv, str):
                    assert cv == pv, name
                elif pv is None:
                    assert cv == "", name
                else:
                    assert float(cv) == pytest.approx(pv, rel=1e-8, abs=1e-8), name
    # and the values are the session's, in the documented units
    a = read_csv(tmp_path / "csv" / "angles.csv")
    assert len(a["time_s"]) == len(res.angles)
    i = int(np.flatnonzero(np.isfinite(res.angles.hip_flexion_left))[100])
    assert float(a["hip_flexion_left_deg"][i]) == pytest.approx(
        math.degrees(res.angles.hip_flexion_left[i]), abs=1e-6
    )
    s = pq.read_table(tmp_path / "pq" / "strides.parquet").to_pydict()
    assert len(s["side"]) == len(res.strides) > 5
    assert s["peak_hip_extension_deg"][0] == pytest.approx(
        math.degrees(res.strides[0].peak_hip_extension_rad)
    )
    h = pq.read_table(tmp_path / "pq" / "holds.parquet").to_pydict()
    assert h["arching"] == [x.arching for x in res.holds] and any(h["arching"])


def parse_sto(path: Path) -> tuple[dict[str, str], list[str], np.ndarray, dict[str, np.ndarray]]:
    lines = path.read_text().splitlines()
    end = lines.index("endheader")
    header = dict(line.split("=", 1) for line in lines[:end])
    cols = lines[end + 1].split("\t")
    t, quats = [], {c: [] for c in cols[1:]}
    for line in lines[end + 2 :]:
        cells = line.split("\t")
        assert len(cells) == len(cols), line
        t.append(float(cells[0]))
        for c, cell in zip(cols[1:], cells[1:], strict=True):
            q = [float(v) for v in cell.split(",")]
            assert len(q) == 4
            quats[c].append(q)
    return header, cols, np.array(t), {c: np.array(v) for c, v in quats.items()}


def test_sto_file_is_an_opensense_orientation_table(session, tmp_path):
    sim, res = session
    paths = export_session(res, sim.recording, tmp_path, "sto")
    assert {p.name for p in paths} == {
        "orientations.sto",
        "orientations_calibration.sto",
        "orientations_README.txt",
    }
    header, cols, t, quats = parse_sto(tmp_path / "orientations.sto")
    assert header["DataType"] == "Quaternion" and header["version"] == "3"
    assert header["OpenSimVersion"].startswith("4.")
    assert float(header["DataRate"]) == pytest.approx(60.0)  # the slowest sensor's rate
    assert cols == ["time", "pelvis_imu", "femur_l_imu", "femur_r_imu"]
    assert np.all(np.diff(t) > 0)
    assert len(t) > 0.95 * sim.recording.duration_s * 60.0
    for q in quats.values():
        assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)
    _, cols1, t1, _ = parse_sto(tmp_path / "orientations_calibration.sto")
    assert cols1 == cols and len(t1) == 1
    assert (
        "sensor_to_opensim_rotations = -1.5707963267948966 0 0"
        in (tmp_path / "orientations_README.txt").read_text()
    )


@pytest.mark.parametrize(("frame", "up"), [("z_up", (0, 0, 1)), ("y_up", (0, 1, 0))])
def test_sto_quaternions_put_gravity_where_the_frame_says(session, tmp_path, frame, up):
    """Standing still at the start, each sensor's measured gravity direction rotated to the world is 'up'."""
    sim, res = session
    export_session(res, sim.recording, tmp_path, "sto", frame=frame)
    _, cols, t, quats = parse_sto(tmp_path / "orientations.sto")
    for placement, col in (("pelvis", "pelvis_imu"), ("thigh_right", "femur_r_imu")):
        s = sim.recording.streams[placement]
        sel = (s.t > 1.0) & (s.t < 4.0)
        acc_dir = s.acc[sel].mean(axis=0)
        acc_dir /= np.linalg.norm(acc_dir)
        rows = (t > 1.0) & (t < 4.0)
        world = quat.rotate(quats[col][rows], acc_dir)
        angle = np.degrees(np.arccos(np.clip(world @ np.asarray(up, float), -1, 1)))
        assert np.median(angle) < 3.0, (placement, frame, np.median(angle))


def test_export_command_from_the_store(session, tmp_path):
    sim, _ = session
    store_path = tmp_path / "s.sqlite"
    with LocalStore(store_path) as st:
        sid = st.open_session("SIM-EXPORT")
        start = sim.recording.start_utc
        for p, s in sim.recording.streams.items():
            st.add_sensor(sid, p, s.kind, s.device, None, {"rate_hz": s.rate_hz})
            st.add_samples(sid, p, s.t + start, quat=s.quat, acc=s.acc, gyr=s.gyr, mag=s.mag)
    runner = CliRunner()
    for fmt in ("csv", "sto"):
        r = runner.invoke(
            app, ["export", sid, "--format", fmt, "--out", str(tmp_path / fmt), "--store", str(store_path)]
        )
        assert r.exit_code == 0, r.output
    assert (tmp_path / "csv" / "strides.csv").read_text().count("\n") > 5
    header, cols, _, _ = parse_sto(tmp_path / "sto" / "orientations.sto")
    assert header["DataType"] == "Quaternion" and len(cols) == 4
    r = runner.invoke(
        app, ["export", sid, "--format", "xlsx", "--out", str(tmp_path / "x"), "--store", str(store_path)]
    )
    assert r.exit_code != 0 and "unknown export format" in str(r.exception)

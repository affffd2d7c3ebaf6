"""Import of the real Movella DOT recordings in ../shared/data (skipped when that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.files import read_recording, write_recording

DATA = Path(__file__).resolve().parents[2] / "shared/data/movella-dot-walk"
SENSORS = {"thigh_left": "3_D422CD003235", "pelvis": "4_D422CD003437", "thigh_right": "5_D422CD0034C1"}

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"real recordings not present at {DATA}"),
]


def _files(suffix: str) -> dict[str, Path]:
    return {pl: DATA / f"{sensor}_20231031_{suffix}.csv" for pl, sensor in SENSORS.items()}


@pytest.mark.parametrize("suffix", ["124807", "133150"])
def test_real_movella_dot_recording(suffix: str, tmp_path: Path) -> None:
    rec = read_recording(_files(suffix))
    assert set(rec.streams) == set(SENSORS)
    assert rec.meta["alignment"] == "shared device clock"
    for pl, s in rec.streams.items():
        rep = s.meta["import"]
        assert s.rate_hz == 120.0 and s.kind == "quat"
        assert rep.leading_zero_rows_dropped == 1  # the DOT's first row has zero acc/gyr
        assert s.meta["sensor_id"] == SENSORS[pl].split("_")[1]
        assert len(s) > 500 and np.all(np.diff(s.t) > 0)
        raw_norm = np.linalg.norm(s.quat, axis=1)
        assert np.all(np.abs(raw_norm - 1) < 1e-9)  # normalised; the file's float32 norms were within 3e-5
        g = np.linalg.norm(s.acc, axis=1)
        assert 9.3 < np.median(g) < 10.3
        assert np.max(np.abs(s.gyr)) < 20.0  # rad/s: deg/s were converted
        assert rec.gaps == [] and rep.gaps == 0
    # synchronised sensors: first samples within a few sample periods on the shared clock
    starts = [s.t[0] for s in rec.streams.values()]
    assert max(starts) - min(starts) < 0.05 and min(starts) == 0.0
    if suffix == "124807":  # N-pose: standing still, so acc is close to gravity throughout
        for s in rec.streams.values():
            assert np.all(np.abs(np.linalg.norm(s.acc, axis=1) - 9.81) < 1.0)
    write_recording(rec, tmp_path / "own")
    back = read_recording(tmp_path / "own")
    for pl, s in rec.streams.items():
        np.testing.assert_array_equal(back.streams[pl].quat, s.quat)
        np.testing.assert_array_equal(back.streams[pl].t, s.t)


QMT = Path(__file__).resolve().parents[2] / "shared/data/qmt-full-body/full_body_example_data.mat"
QMT_SEGMENTS = {"pelvis": "hip", "thigh_left": "upper_leg_left", "thigh_right": "upper_leg_right"}


@pytest.mark.skipif(not QMT.is_file(), reason=f"real recording not present at {QMT}")
def test_real_full_body_recording_whose_quaternions_jitter(tmp_path: Path) -> None:
    """A real 100 Hz full-body recording (qmt example data) written as MT Manager exports: its quaternions
    step 1-2 deg back and forth between samples while the gyroscope reads still, so they would never let
    anyone stand still (no calibration, no angles). The importer reads each sensor from its accelerometer and
    gyroscope and says so; the walk is then calibrated and its strides found."""
    import scipy.io

    from hipback.ingest.commands import process

    d = scipy.io.loadmat(QMT, squeeze_me=True, struct_as_record=False)
    inputs = []
    for placement, seg in QMT_SEGMENTS.items():
        s = d[seg]
        rows = ["// Update Rate: 100.0Hz",
                "PacketCounter,SampleTimeFine,Acc_X,Acc_Y,Acc_Z,Gyr_X,Gyr_Y,Gyr_Z,Quat_q0,Quat_q1,Quat_q2,Quat_q3"]
        values = np.column_stack([s.acc, s.gyr, s.quat])
        rows += [",".join([str(i % 65536), str(100 * i), *(f"{v:.6f}" for v in values[i])])
                 for i in range(len(d["t"]))]
        path = tmp_path / f"{seg}.txt"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        inputs.append(f"{placement}={path}")
    rec = read_recording({p.split("=")[0]: Path(p.split("=")[1]) for p in inputs})
    assert {s.kind for s in rec.streams.values()} == {"raw"}
    res = process.run(inputs, tmp_path / "out")
    assert res.calibration_state == "calibrated"
    for side in ("left", "right"):
        assert sum(s.side == side for s in res.strides) >= 20
    assert len([w for w in res.warnings if "does not follow its own gyroscope" in w]) == 3

"""Importers for Movella DOT and Xsens MT Manager exports, checked on generated files of known content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.files import ImportReport, detect_dialect, read_recording, read_sensor_file
from tests.data_gen import write_movella_dot, write_xsens_mt


def _unit(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- Movella DOT


def test_dot_units_clock_wrap_and_leading_zeros(tmp_path: Path) -> None:
    f = tmp_path / "3_D422CD003235_20231031_124807.csv"
    # SampleTimeFine starts 2 s before the u32 wrap: the wrap happens at sample 240
    truth = write_movella_dot(f, 600, stf0=2**32 - 2_000_000, leading_zero_rows=2)
    assert detect_dialect(f) == "movella_dot"
    s = read_sensor_file(f, "thigh_left")
    rep: ImportReport = s.meta["import"]

    assert s.placement == "thigh_left" and s.kind == "quat" and s.device == "movella_dot"
    assert s.rate_hz == 120.0
    assert len(s) == len(truth.index) == 598
    assert rep.leading_zero_rows_dropped == 2 and rep.rows_read == 600 and rep.rows_rejected == 2
    assert rep.unwrap_events == 1
    # time unwrapped, monotonic, starting at 0, equal to the device clock
    assert np.all(np.diff(s.t) > 0)
    np.testing.assert_allclose(s.t, truth.t_device - truth.t_device[0], atol=1e-9)
    # gyro deg/s -> rad/s, acc and mag as written, quaternions normalised
    np.testing.assert_allclose(s.gyr, truth.gyr, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(s.acc, truth.acc)
    np.testing.assert_array_equal(s.mag, truth.mag)
    np.testing.assert_allclose(s.quat, _unit(truth.quat), atol=1e-15)
    assert not np.any(np.all(s.acc == 0, axis=1))
    assert s.meta["mag_units"] == "a.u." and rep.units["gyr"] == "deg/s"
    assert s.meta["sensor_id"] == "D422CD003235"
    assert rep.header["start_local"] == "2023-10-31T12:48:07"
    assert s.meta["gaps"] == [] and rep.gaps == 0
    np.testing.assert_array_equal(s.seq, truth.index)


def test_dot_gaps_exactly_where_rows_were_dropped_and_duplicates_removed(tmp_path: Path) -> None:
    f = tmp_path / "dot.csv"
    truth = write_movella_dot(f, 900, drop=[(100, 5), (400, 60)], duplicate=[50, 51, 700])
    s = read_sensor_file(f, "pelvis")
    rep = s.meta["import"]
    gaps = s.meta["gaps"]
    assert rep.duplicates_dropped == 3
    assert len(s) == len(truth.index)
    np.testing.assert_array_equal(s.seq, truth.index)
    assert [(g.missing) for g in gaps] == [5, 60]
    period = 1 / 120
    for gap, (before, count) in zip(gaps, truth.missing, strict=True):
        k = int(np.flatnonzero(truth.index == before)[0])
        assert gap.t_start == pytest.approx(s.t[k])
        assert gap.t_end == pytest.approx(s.t[k + 1])
        assert gap.t_end - gap.t_start == pytest.approx((count + 1) * period, rel=1e-3)
        assert "packet counter" in gap.reason and "time step" in gap.reason
        assert gap.placement == "pelvis"
    assert rep.gaps == 2 and rep.missing_samples == 65


def test_dot_quaternion_only_and_raw_only_exports(tmp_path: Path) -> None:
    fq, fr = tmp_path / "q.csv", tmp_path / "r.csv"
    tq = write_movella_dot(fq, 300, columns="quat", preamble=True)
    tr = write_movella_dot(fr, 300, columns="raw")
    sq = read_sensor_file(fq)
    assert sq.kind == "quat" and sq.acc is None and sq.gyr is None and len(sq) == 300
    np.testing.assert_allclose(sq.quat, _unit(tq.quat), atol=1e-15)
    assert sq.meta["import"].header["DeviceTag"] == "3"
    assert sq.meta["import"].rate_hz_stated == 120.0
    sr = read_sensor_file(fr)
    assert sr.kind == "raw" and sr.quat is None and len(sr) == 299
    np.testing.assert_allclose(sr.gyr, tr.gyr, rtol=1e-12)


def test_dot_recording_aligns_synced_sensors_on_device_clock(tmp_path: Path) -> None:
    files = {}
    starts = {"pelvis": 1_000_000_000, "thigh_left": 1_000_008_333, "thigh_right": 1_000_025_000}
    for pl, stf0 in starts.items():
        files[pl] = tmp_path / f"{pl}.csv"
        write_movella_dot(files[pl], 240, stf0=stf0, drop=[(120, 3)] if pl == "thigh_right" else None)
    rec = read_recording(files)
    assert rec.meta["alignment"] == "shared device clock"
    assert set(rec.streams) == set(starts)
    # leading zero row dropped everywhere: first kept sample is sample 1 of each file
    for pl, stf0 in starts.items():
        expected = (stf0 - starts["pelvis"]) / 1e6
        assert rec.streams[pl].t[0] == pytest.approx(expected, abs=1e-9)
    assert len(rec.gaps) == 1 and rec.gaps[0].placement == "thigh_right" and rec.gaps[0].missing == 3
    assert rec.gaps[0].t_start == pytest.approx(rec.streams["thigh_right"].t[118], abs=1e-12)


def test_dot_unsynced_clocks_start_together(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_movella_dot(a, 200, stf0=5_000_000)
    write_movella_dot(b, 200, stf0=900_000_000)
    rec = read_recording({"pelvis": a, "thigh_left": b})
    assert rec.meta["alignment"].startswith("first samples aligned")
    assert rec.streams["pelvis"].t[0] == 0.0 and rec.streams["thigh_left"].t[0] == 0.0


# ----------------------------------------------------------------------------- Xsens MT Manager


@pytest.mark.parametrize("sep", ["\t", ",", ";"])
def test_mt_sample_time_fine_ticks_and_counter_wrap(tmp_path: Path, sep: str) -> None:
    f = tmp_path / "MT_00B42D4F.txt"
    # counter wraps after 536 samples; SampleTimeFine (10 kHz) wraps at 2^32 after about 29.5 s: not here
    truth = write_xsens_mt(f, 800, counter0=65_000, sep=sep, drop=[(300, 4)], duplicate=[10])
    assert detect_dialect(f) == "xsens_mt"
    s = read_sensor_file(f, "pelvis")
    rep = s.meta["import"]
    assert s.kind == "quat" and s.rate_hz == 100.0 and rep.rate_hz_stated == 100.0
    assert rep.time_source.startswith("SampleTimeFine (10000")
    assert rep.unwrap_events == 1 and rep.duplicates_dropped == 1
    np.testing.assert_allclose(s.t, truth.t_device - truth.t_device[0], atol=1e-9)
    np.testing.assert_array_equal(s.seq, 65_000 + truth.index)
    np.testing.assert_array_equal(s.gyr, truth.gyr)  # rad/s, untouched
    np.testing.assert_array_equal(s.acc, truth.acc)
    np.testing.assert_allclose(s.quat, _unit(truth.quat), atol=1e-15)
    assert s.meta["sensor_id"] == "00B42D4F"
    assert [g.missing for g in s.meta["gaps"]] == [4]
    assert rep.header["Filter Profile"] == "human (46.1)"
    assert "Roll" in rep.ignored_columns


def test_mt_sample_time_fine_wrapping_after_one_day(tmp_path: Path) -> None:
    f = tmp_path / "mti100.txt"
    truth = write_xsens_mt(f, 300, stf0=864_000_000 - 5_000, stf_modulus=864_000_000)  # wraps at sample 50
    s = read_sensor_file(f)
    assert s.meta["import"].unwrap_events == 1  # the clock (the counter stays below 65536 here)
    np.testing.assert_allclose(s.t, np.arange(300) / 100.0, atol=1e-9)
    assert s.meta["gaps"] == [] and len(s) == len(truth.index)


def test_mt_empty_sample_time_fine_uses_packet_counter(tmp_path: Path) -> None:
    f = tmp_path / "mt.txt"
    truth = write_xsens_mt(f, 1000, counter0=64_900, sample_time="empty", drop=[(500, 7)])
    s = read_sensor_file(f)
    rep = s.meta["import"]
    assert rep.time_source == "PacketCounter / Update Rate"
    assert np.all(np.diff(s.t) > 0)
    np.testing.assert_allclose(s.t, (truth.index - truth.index[0]) / 100.0, atol=1e-9)
    (gap,) = s.meta["gaps"]
    assert gap.missing == 7 and gap.t_end - gap.t_start == pytest.approx(0.08)
    assert rep.unwrap_events == 1


def test_mt_absent_sample_time_fine_and_decimal_comma(tmp_path: Path) -> None:
    f = tmp_path / "mt.txt"
    truth = write_xsens_mt(f, 300, sample_time="absent", sep=";", decimal_comma=True)
    s = read_sensor_file(f)
    np.testing.assert_array_equal(s.acc, truth.acc)
    assert s.t[-1] == pytest.approx(2.99)


def test_mt_counter_wrap_across_a_gap_is_not_backwards(tmp_path: Path) -> None:
    f = tmp_path / "mt.txt"
    write_xsens_mt(f, 400, counter0=65_400, sample_time="empty", drop=[(130, 10)])  # wrap inside the gap
    s = read_sensor_file(f)
    (gap,) = s.meta["gaps"]
    assert gap.missing == 10 and "65535" not in gap.reason
    assert s.seq[-1] - s.seq[0] == 399


# ----------------------------------------------------------------------------- less common columns


def test_dot_euler_only_export_becomes_quaternions(tmp_path: Path) -> None:
    from hipback.processing import quaternion as qt

    f = tmp_path / "euler.csv"
    rows = [(0.0, 0.0, 90.0), (90.0, 0.0, 0.0), (90.0, 0.0, 90.0), (10.0, -20.0, 30.0)]
    body = "".join(
        f"{i}, {1000 + i * 16667}, {r}, {p}, {y}, 0.1, 0.2, 0.3, 0, \n" for i, (r, p, y) in enumerate(rows)
    )
    f.write_text(
        "sep=,\nDeviceTag:,1\nOutputRate:,60Hz\n\n"
        "PacketCounter,SampleTimeFine,Euler_X,Euler_Y,Euler_Z,FreeAcc_X,FreeAcc_Y,FreeAcc_Z,Status\n" + body
    )
    s = read_sensor_file(f)
    assert s.kind == "quat" and s.rate_hz == 60.0 and s.acc is None
    c = np.sqrt(0.5)
    np.testing.assert_allclose(qt.canonical(s.quat[0]), [c, 0, 0, c], atol=1e-12)  # yaw 90 about world z
    np.testing.assert_allclose(qt.canonical(s.quat[1]), [c, c, 0, 0], atol=1e-12)  # roll 90 about x
    # roll then yaw: R = Rz(yaw) Rx(roll), sensor-to-world
    expected = qt.multiply([c, 0, 0, c], [c, c, 0, 0])
    np.testing.assert_allclose(qt.canonical(s.quat[2]), qt.canonical(expected), atol=1e-12)
    assert "FreeAcc_X" in s.meta["import"].ignored_columns


def test_mt_increments_utc_and_roll_pitch_yaw(tmp_path: Path) -> None:
    from hipback.processing import quaternion as qt

    rate = 100.0
    n = 50
    gyr = np.column_stack([np.linspace(0.1, 2.0, n), np.full(n, -0.5), np.zeros(n)])  # rad/s
    dq = qt.from_rotvec(gyr / rate)
    dv = np.tile([0.0, 0.0, 9.81 / rate], (n, 1))
    lines = ["// Update Rate: 100.0Hz"]
    lines.append(
        "PacketCounter,SampleTimeFine,UTC_Nano,UTC_Year,UTC_Month,UTC_Day,UTC_Hour,UTC_Minute,UTC_Second,UTC_Valid,"
        "OriInc_q0,OriInc_q1,OriInc_q2,OriInc_q3,VelInc_X,VelInc_Y,VelInc_Z,Roll,Pitch,Yaw"
    )
    for i in range(n):
        nano = 250_000_000 + i * 10_000_000
        vals = [i, 10_000 + 100 * i, nano % 1_000_000_000, 2024, 3, 5, 9, 30, 12 + nano // 1_000_000_000, 7]
        vals += [repr(float(v)) for v in (*dq[i], *dv[i])] + [0.0, 0.0, 45.0]
        lines.append(",".join(map(str, vals)))
    f = tmp_path / "mt.csv"
    f.write_text("\n".join(lines) + "\n")
    s = read_sensor_file(f)
    rep = s.meta["import"]
    np.testing.assert_allclose(s.gyr, gyr, atol=1e-12)
    np.testing.assert_allclose(s.acc, dv * rate, atol=1e-12)
    c45 = np.cos(np.pi / 8)
    np.testing.assert_allclose(qt.canonical(s.quat[0]), [c45, 0, 0, np.sin(np.pi / 8)], atol=1e-12)
    from datetime import UTC, datetime

    assert rep.start_utc == pytest.approx(datetime(2024, 3, 5, 9, 30, 12, 250000, tzinfo=UTC).timestamp())
    assert rep.units["gyr"].startswith("from OriInc")


@pytest.mark.parametrize("sep", [",", "\t"])
def test_an_mt_export_without_its_comment_lines_is_not_taken_for_a_dot_one(tmp_path: Path, sep: str) -> None:
    """Free acceleration (``FreeAcc_X``) is a column both dialects may carry: an MT export without its
    ``//`` lines and without quaternions is still read as one (gyroscope in rad/s, Euler angles as Roll /
    Pitch / Yaw) when it names MT-only columns or uses the MT separators; read as a DOT export, its
    gyroscope would be taken for deg/s."""
    f = tmp_path / "mt.csv"
    names = ["PacketCounter", "SampleTimeFine", "Acc_X", "Acc_Y", "Acc_Z", "FreeAcc_X", "FreeAcc_Y",
             "FreeAcc_Z", "Gyr_X", "Gyr_Y", "Gyr_Z", "Roll", "Pitch", "Yaw"]
    rows = [sep.join(names)]
    for i in range(300):
        rows.append(sep.join(str(v) for v in (i, 1_000_000 + 100 * i, 0.1, 0.2, 9.8, 0, 0, 0, 1.5, -0.5, 0.25,
                                               10.0, -20.0, 30.0)))
    f.write_text("\n".join(rows) + "\n")
    assert detect_dialect(f) == "xsens_mt"
    s = read_sensor_file(f, "pelvis")
    np.testing.assert_array_equal(s.gyr[0], [1.5, -0.5, 0.25])  # rad/s, as written
    assert s.kind == "quat" and s.rate_hz == pytest.approx(100.0)
    # the same columns as a DOT export names them (Euler_X.., comma, trailing comma): DOT
    g = tmp_path / "dot.csv"
    dot = ["PacketCounter", "SampleTimeFine", "Euler_X", "Euler_Y", "Euler_Z", "FreeAcc_X", "FreeAcc_Y",
           "FreeAcc_Z", "Acc_X", "Acc_Y", "Acc_Z", "Gyr_X", "Gyr_Y", "Gyr_Z", ""]
    row = "10, -20, 30, 0, 0, 0, 0.1, 0.2, 9.8, 85.9, -28.6, 14.3, "
    g.write_text(",".join(dot) + "\n" + "".join(f"{i}, {1000 + i * 16667}, {row}\n" for i in range(300)))
    assert detect_dialect(g) == "movella_dot"

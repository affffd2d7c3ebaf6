"""hipback's own recording format: lossless round trip, gaps and metadata, tolerant reading, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files import atomic as atomic_mod
from hipback.ingest.files import detect_dialect, read_recording, read_sensor_file, write_recording
from hipback.ingest.files import recording as recording_mod
from hipback.processing import quaternion as qt
from hipback.processing.types import Gap, Recording, SensorStream
from tests.data_gen import write_movella_dot


def _recording(seed: int = 3) -> Recording:
    rng = np.random.default_rng(seed)
    n = 500
    t = np.arange(n) / 100.0 + 0.123456789012345
    t = np.delete(t, np.arange(200, 230))  # a real hole of 30 samples
    n = len(t)
    quat = qt.normalize(rng.normal(size=(n, 4)))
    acc = rng.normal(0, 3, (n, 3)) * np.array([1, 1e-7, 1e1])  # awkward magnitudes within the full scale
    acc[0] = [-0.0, 5e-324, 156.90639999999999]  # negative zero, subnormal, 16 g minus a float's last bits
    gyr = rng.normal(0, 1, (n, 3))
    mag = rng.normal(0, 40, (n, 3))
    mag[10:12] = np.nan  # missing cells survive as empty cells
    quat[40] = np.nan  # even a sample without orientation is restored as written
    pelvis = SensorStream(
        "pelvis",
        "quat",
        t,
        100.0,
        quat=quat,
        acc=acc,
        gyr=gyr,
        mag=mag,
        seq=np.delete(np.arange(500, dtype=np.int64) + 70_000, np.arange(200, 230)),
        device="movella_dot",
        meta={
            "sensor_id": "D422CD003437",
            "notes": "line one\nline two with a back\\slash; and: colons",
            "mag_units": "a.u.",
            "calibration": {"offset_deg": [1.5, -0.25], "ok": True},
            "battery_pct": np.float64(87.5),
        },
    )
    t2 = np.arange(400) / 60.0 + 0.5
    acc2, gyr2 = rng.normal(size=(400, 3)), rng.normal(size=(400, 3))
    thigh = SensorStream("thigh_left", "raw", t2, 60.0, acc=acc2, gyr=gyr2, device="diy")
    gap = Gap("pelvis", float(t[199]), float(t[200]), 30, "disconnect; reconnected after 0.31 s")
    return Recording(
        streams={"pelvis": pelvis, "thigh_left": thigh},
        start_utc=1_698_756_487.123456,
        gaps=[gap],
        meta={"patient": "P-0042", "session": "walk-01"},
    )


def _assert_same_arrays(a: SensorStream, b: SensorStream) -> None:
    for name in ("t", "quat", "acc", "gyr", "mag", "seq"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None, name
            continue
        assert y is not None, name
        assert x.dtype == y.dtype or name == "seq", name
        # bit-for-bit, NaN where NaN, -0.0 stays -0.0
        bits_x, bits_y = np.asarray(x).view(np.int64), np.asarray(y).view(np.int64)
        np.testing.assert_array_equal(bits_x, bits_y, err_msg=name)


def test_round_trip_is_lossless_with_gaps_and_meta(tmp_path: Path) -> None:
    rec = _recording()
    paths = write_recording(rec, tmp_path / "session1")
    assert sorted(p.name for p in paths) == ["pelvis.csv", "session.json", "thigh_left.csv"]
    back = read_recording(tmp_path / "session1")

    assert set(back.streams) == set(rec.streams)
    for pl, s in rec.streams.items():
        b = back.streams[pl]
        _assert_same_arrays(s, b)
        assert (b.kind, b.rate_hz, b.device, b.placement) == (s.kind, s.rate_hz, s.device, pl)
    assert back.gaps == rec.gaps
    assert back.start_utc == pytest.approx(rec.start_utc, abs=1e-6)
    assert back.meta == rec.meta
    meta = back.streams["pelvis"].meta
    for key, value in rec.streams["pelvis"].meta.items():
        assert meta[key] == value, key
    assert meta["patient"] == "P-0042"
    assert back.streams["thigh_left"].meta["mag_units"] == "uT"


def test_written_file_is_readable_text_with_documented_header(tmp_path: Path) -> None:
    write_recording(_recording(), tmp_path / "s")
    assert detect_dialect(tmp_path / "s" / "pelvis.csv") == "hipback"
    lines = (tmp_path / "s" / "pelvis.csv").read_text().splitlines()
    assert lines[0] == "# hipback-recording: 1"
    header = {ln[2:].split(":", 1)[0]: ln[2:].split(":", 1)[1].strip() for ln in lines if ln.startswith("# ")}
    assert header["placement"] == "pelvis" and header["kind"] == "quat" and header["rate_hz"] == "100.0"
    assert header["start_utc"] == "2023-10-31T12:48:07.123456Z"
    assert header["units"] == "time_s=s; acc=m/s^2; gyr=rad/s; mag=a.u."
    assert header["notes"] == "line one\\nline two with a back\\\\slash; and: colons"
    col = next(ln for ln in lines if not ln.startswith("#"))
    assert col == "time_s,seq,qw,qx,qy,qz,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z,mag_x,mag_y,mag_z"
    raw = (tmp_path / "s" / "thigh_left.csv").read_text().splitlines()
    first_row = raw[raw.index(col) + 1].split(",")
    assert first_row[1:6] == ["", "", "", "", ""] and first_row[12:] == ["", "", ""]  # absent quantities
    for p in (tmp_path / "s").iterdir():
        assert p.stat().st_mode & 0o777 == 0o600, p  # health data: owner only
    write_recording(_recording(seed=9), tmp_path / "s")  # rewrite in place
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (tmp_path / "s").iterdir())
    session = json.loads((tmp_path / "s" / "session.json").read_text())
    assert session["streams"] == {"pelvis": "pelvis.csv", "thigh_left": "thigh_left.csv"}
    assert session["gaps"][0]["missing"] == 30


def test_vendor_import_then_write_keeps_gaps_and_provenance(tmp_path: Path) -> None:
    dot = tmp_path / "4_D422CD003437_20231031_133150.csv"
    write_movella_dot(dot, 400, drop=[(150, 12)], duplicate=[20])
    rec = read_recording({"pelvis": dot})
    write_recording(rec, tmp_path / "out")
    back = read_recording(tmp_path / "out")
    _assert_same_arrays(rec.streams["pelvis"], back.streams["pelvis"])
    assert back.gaps == rec.gaps and len(back.gaps) == 1 and back.gaps[0].missing == 12
    source = back.streams["pelvis"].meta["source_import"]
    assert source["dialect"] == "movella_dot" and source["duplicates_dropped"] == 1
    assert source["units"]["gyr"] == "deg/s" and source["source_file"] == dot.name
    assert back.streams["pelvis"].meta["import"].dialect == "hipback"
    assert back.streams["pelvis"].meta["sensor_id"] == "D422CD003437"


def test_reader_takes_any_column_subset_and_finds_undeclared_gaps(tmp_path: Path) -> None:
    f = tmp_path / "hand_made.csv"
    kept = [i for i in range(50) if not 20 <= i < 25]
    rows = [f"{0.5 + i * 0.1!r},{i / 100!r},0.0,{9.81 + i!r},0.0,0.01,0.0" for i in kept]
    f.write_text(
        "# hipback-recording: 1\n# placement: thigh_right\n# kind: raw\n# rate_hz: 100\n"
        "gyr_z,time_s,acc_x,acc_y,acc_z,gyr_x,gyr_y\n" + "\n".join(rows) + "\n"
    )
    s = read_sensor_file(f)
    assert s.placement == "thigh_right" and s.kind == "raw" and s.quat is None and s.mag is None
    assert s.t[0] == 0.0 and s.t[-1] == pytest.approx(0.49)  # time_s is the second column here
    np.testing.assert_allclose(s.acc[:, 1], [9.81 + i for i in kept])
    np.testing.assert_allclose(s.gyr[:, 2], [0.5 + i * 0.1 for i in kept])
    (gap,) = s.meta["gaps"]
    assert gap.missing == 5 and gap.t_start == pytest.approx(0.19) and "time step" in gap.reason
    assert s.meta["import"].start_utc is None


def test_truncated_last_line_of_own_file_is_dropped_and_reported(tmp_path: Path) -> None:
    write_recording(_recording(), tmp_path / "s")
    f = tmp_path / "s" / "thigh_left.csv"
    text = f.read_text()
    cut = text[: len(text) - 25]  # crash in the middle of the last row
    f.write_text(cut)
    s = read_sensor_file(f)
    assert len(s) == 399 and s.meta["import"].truncated_last_line
    assert s.meta["import"].warnings


def test_folder_without_session_json_is_read_from_the_csv_headers(tmp_path: Path) -> None:
    rec = _recording()
    write_recording(rec, tmp_path / "s")
    (tmp_path / "s" / "session.json").unlink()
    back = read_recording(tmp_path / "s")
    assert set(back.streams) == {"pelvis", "thigh_left"}
    assert back.gaps == rec.gaps
    assert back.start_utc == pytest.approx(rec.start_utc, abs=1e-6)


def test_failed_write_of_a_new_folder_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = recording_mod.write_file

    def dying_write(path: Path, text: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            path.write_text(text[: len(text) // 2])  # half a file, then the disk fills up
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(recording_mod, "write_file", dying_write)
    with pytest.raises(OSError):
        write_recording(_recording(), tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_old_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "s"
    write_recording(_recording(seed=1), folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    real_fsync = os.fsync
    calls = {"n": 0}

    def dying_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the second file's data: written to the temp file, not yet renamed
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(atomic_mod.os, "fsync", dying_fsync)
    with pytest.raises(OSError):
        write_recording(_recording(seed=2), folder)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert set(after) == set(before)  # no temp files left behind
    # every file is complete (old or new version); session.json, written last, is still the old one
    assert after["session.json"] == before["session.json"]
    back = read_recording(folder)
    assert set(back.streams) == {"pelvis", "thigh_left"}


def _hand_written(tmp_path: Path, units: str | None) -> Path:
    """A raw sensor file in hipback's format as a researcher writes it by hand (acc in whatever the values
    are, gyr likewise), with the given ``units`` header value (None: no units line)."""
    f = tmp_path / "thigh_left.csv"
    head = ["# hipback-recording: 1", "# placement: thigh_left", "# kind: raw", "# rate_hz: 100.0"]
    if units is not None:
        head.append(f"# units: {units}")
    rows = [f"{i / 100!r},{i},0.05,0.02,1.0,10.0,0.0,-5.0" for i in range(50)]
    f.write_text("\n".join([*head, "time_s,seq,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z", *rows]) + "\n")
    return f


@pytest.mark.parametrize(
    ("units", "named"),
    [
        ("time_s=s; acc=g; gyr=deg/s; mag=uT", "acc in g"),
        ("time_s=s; acc=m/s^2; gyr=deg/s", "gyr in deg/s"),
        ("time_s=ms; acc=m/s^2; gyr=rad/s", "time_s in ms"),
        ("acc=m/s^2; gyr=rad/s; mag=mG", "mag in mG"),
        ("accel=g; gyr=rad/s", "'accel=g'"),
        ("SI", "'SI'"),
    ],
)
def test_a_units_line_stating_other_units_is_refused(tmp_path: Path, units: str, named: str) -> None:
    """The format's values are in s, m/s^2, rad/s and uT or a.u. and are never converted: a units line
    declaring anything else (g, deg/s, ...) is one sentence naming the entry and the format's units, at the
    units line, not values read 9.81 or 57.3 times off."""
    f = _hand_written(tmp_path, units)
    with pytest.raises(RecordingFileError) as info:
        read_sensor_file(f)
    text = str(info.value)
    assert info.value.line == 5 and named in text, text
    assert "acc in m/s^2, gyr in rad/s" in text and "\n" not in text and text.endswith("."), text


@pytest.mark.parametrize(
    "units", [None, "time_s=s; acc=m/s^2; gyr=rad/s; mag=uT", "gyr = rad/s;acc=m/s^2 ;", "mag=a.u."]
)
def test_a_units_line_stating_the_formats_units_reads_the_values_as_written(tmp_path: Path, units) -> None:
    s = read_sensor_file(_hand_written(tmp_path, units))
    np.testing.assert_array_equal(s.acc[3], [0.05, 0.02, 1.0])
    np.testing.assert_array_equal(s.gyr[3], [10.0, 0.0, -5.0])
    assert s.meta.get("mag_units", "uT") == ("a.u." if units == "mag=a.u." else "uT")

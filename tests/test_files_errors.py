"""Damaged and unsupported files: one-sentence RecordingFileError naming file and line; truncation policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files import read_recording, read_sensor_file, write_recording
from hipback.processing.types import Recording, SensorStream
from tests.data_gen import write_movella_dot, write_xsens_mt

# Generated DOT files: line 1 = header, line k + 2 = sample k.  MT files: 6 comment lines, header on line 7,
# sample k on line k + 8.


def _edit_line(path: Path, line: int, new: str) -> None:
    lines = path.read_text().split("\n")
    lines[line - 1] = new
    path.write_text("\n".join(lines))


def _fields(path: Path, line: int) -> list[str]:
    return path.read_text().split("\n")[line - 1].split(",")


def _error(path: Path, **kwargs: object) -> RecordingFileError:
    with pytest.raises(RecordingFileError) as info:
        read_sensor_file(path, **kwargs)  # type: ignore[arg-type]
    err = info.value
    text = str(err)
    assert text.startswith(str(path)), text
    assert "\n" not in text and text.endswith("."), text
    return err


@pytest.fixture
def dot(tmp_path: Path) -> Path:
    f = tmp_path / "dot.csv"
    write_movella_dot(f, 50)
    return f


def test_missing_and_empty_files(tmp_path: Path) -> None:
    # (the sentence is checked after the file name: the file names here hold the very words)
    err = _error(tmp_path / "nope.csv")
    assert str(err).endswith(": the file does not exist.")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert str(_error(empty)).endswith(": the file is empty.")
    blank = tmp_path / "blank.csv"
    blank.write_text("\n  \n")
    assert str(_error(blank)).endswith(": the file is empty.")


def test_binary_junk_names_the_line(dot: Path) -> None:
    data = dot.read_bytes().split(b"\n")
    data[5] = b"\x8f\x00\x13\xfe junk \x00"
    dot.write_bytes(b"\n".join(data))
    err = _error(dot)
    assert err.line == 6 and str(err).endswith(": the file contains binary data (a NUL byte), not text.")


def test_row_with_wrong_field_count_in_the_middle(dot: Path) -> None:
    fields = _fields(dot, 7)
    _edit_line(dot, 7, ",".join(fields[:5] + fields[6:]))
    err = _error(dot)
    assert err.line == 7 and "fields" in str(err)


def test_non_numeric_value_names_line_and_column(dot: Path) -> None:
    fields = _fields(dot, 9)
    fields[6] = " abc"
    _edit_line(dot, 9, ",".join(fields))
    err = _error(dot)
    assert err.line == 9 and "'abc'" in str(err) and "Acc_X" in str(err)


def test_truncated_last_line_is_accepted_and_reported(dot: Path) -> None:
    text = dot.read_text()
    dot.write_text(text[: len(text) - 40])  # crash mid-row: no final newline
    s = read_sensor_file(dot)
    rep = s.meta["import"]
    assert rep.truncated_last_line and rep.rows_read == 50 and len(s) == 48  # minus leading zero row
    # a row cut after its second field
    text = dot.read_text()
    dot.write_text(text[: text.rindex("\n") + 1] + "49, 1234")
    s = read_sensor_file(dot)
    assert s.meta["import"].truncated_last_line and len(s) == 48


def test_bad_last_line_with_newline_is_corruption_not_truncation(dot: Path) -> None:
    fields = _fields(dot, 51)
    _edit_line(dot, 51, ",".join(fields[:4]))
    dot.write_text(dot.read_text() + "\n")
    err = _error(dot)
    assert err.line == 51


def test_unknown_and_ambiguous_dialects(tmp_path: Path) -> None:
    f = tmp_path / "people.csv"
    f.write_text("name,age\nbob,3\n")
    assert "not a hipback recording" in str(_error(f))
    amb = tmp_path / "raw.csv"
    amb.write_text(
        "PacketCounter,SampleTimeFine,Acc_X,Acc_Y,Acc_Z,Gyr_X,Gyr_Y,Gyr_Z\n"
        + "".join(f"{i},{i * 10000},0,0,9.8,0.5,0,0\n" for i in range(20))
    )
    err = _error(amb)
    assert err.line == 1 and "deg/s" in str(err)
    s = read_sensor_file(amb, dialect="movella_dot")
    assert s.gyr[0, 0] == pytest.approx(np.deg2rad(0.5))
    s = read_sensor_file(amb, dialect="xsens_mt")
    assert s.gyr[0, 0] == 0.5


def _ambiguous(path: Path) -> Path:
    """A file both dialects could have written (Acc/Gyr only, no mark of either), gyro 0.5 per axis unit."""
    path.write_text(
        "PacketCounter,SampleTimeFine,Acc_X,Acc_Y,Acc_Z,Gyr_X,Gyr_Y,Gyr_Z\n"
        + "".join(f"{i},{i * 10000},0,0,9.8,0.5,0,0\n" for i in range(20))
    )
    return path


def test_the_ambiguity_refusal_names_the_option_that_decides(tmp_path: Path) -> None:
    text = str(_error(_ambiguous(tmp_path / "raw.csv")))
    assert "--dialect movella_dot or --dialect xsens_mt" in text and "dialect=" in text, text


def test_a_recordings_dialect_decides_only_what_the_content_leaves_open(tmp_path: Path) -> None:
    """``read_recording(..., dialect=)`` reads the ambiguous files in the dialect given; a file whose content
    marks the other dialect is refused (a mix-up, not overridden); a hipback file stays one."""
    amb = _ambiguous(tmp_path / "raw.csv")
    dot = tmp_path / "dot.csv"
    write_movella_dot(dot, 50)
    t = np.arange(10) / 10.0
    own = tmp_path / "own"
    pelvis = SensorStream("pelvis", "quat", t, 10.0, quat=np.tile([1.0, 0, 0, 0], (10, 1)))
    write_recording(Recording({"pelvis": pelvis}), own)
    with pytest.raises(RecordingFileError):
        read_recording({"thigh_left": amb})
    rec = read_recording({"thigh_left": amb, "pelvis": own / "pelvis.csv"}, dialect="movella_dot")
    assert rec.streams["thigh_left"].gyr[0, 0] == pytest.approx(np.deg2rad(0.5))
    assert rec.streams["thigh_left"].meta["import"].dialect == "movella_dot"
    assert rec.streams["pelvis"].meta["import"].dialect == "hipback"
    rec = read_recording({"thigh_left": amb, "thigh_right": dot}, dialect="movella_dot")
    assert rec.streams["thigh_right"].meta["import"].dialect == "movella_dot"
    assert read_recording(amb, dialect="xsens_mt").streams["raw"].gyr[0, 0] == 0.5
    with pytest.raises(RecordingFileError) as info:
        read_recording({"thigh_left": amb, "thigh_right": dot}, dialect="xsens_mt")
    text = str(info.value)
    assert text.startswith(str(dot)) and info.value.line == 1, text
    assert "marks it as a Movella DOT export, not an Xsens MT Manager export" in text, text
    with pytest.raises(ValueError, match="unknown vendor dialect 'hipback'"):
        read_recording(own, dialect="hipback")


def test_missing_required_columns(tmp_path: Path) -> None:
    f = tmp_path / "q.csv"
    f.write_text("PacketCounter,SampleTimeFine,Quat_W,Quat_X,Quat_Y,Status,\n0, 100, 1, 0, 0, 0, \n")
    err = _error(f)
    assert err.line == 1 and "Quat_Z" in str(err)
    g = tmp_path / "free.csv"
    g.write_text(
        "PacketCounter,SampleTimeFine,FreeAcc_X,FreeAcc_Y,FreeAcc_Z,Status,\n0, 100, 0.1, 0, 0, 0, \n"
    )
    assert "neither quaternion columns nor" in str(_error(g))
    h = tmp_path / "notime.csv"
    h.write_text("Quat_W,Quat_X,Quat_Y,Quat_Z,Status,\n1, 0, 0, 0, 0, \n1, 0, 0, 0, 0, \n")
    assert "no usable time" in str(_error(h))


def test_impossible_quaternions_are_rejected_counted_and_leave_a_gap(dot: Path) -> None:
    clean = read_sensor_file(dot)
    n, rejected = len(clean), clean.meta["import"].rows_rejected
    for line, quat in ((8, [" 0", " 0", " 0", " 0"]), (9, [" 1", " 1", " 0", " 0"])):  # zero norm, norm 1.41
        fields = _fields(dot, line)
        fields[2:6] = quat
        _edit_line(dot, line, ",".join(fields))
    s = read_sensor_file(dot)
    rep = s.meta["import"]
    assert len(s) == n - 2 and rep.out_of_range == {"quat": 2} and rep.rows_rejected == rejected + 2
    assert any("line 8" in w for w in rep.warnings)
    (gap,) = s.meta["gaps"]
    assert gap.missing == 2


def test_time_going_backwards(dot: Path) -> None:
    fields = _fields(dot, 10)
    prev = int(_fields(dot, 9)[1])
    fields[1] = f" {prev - 100}"
    _edit_line(dot, 10, ",".join(fields))
    err = _error(dot)
    assert err.line == 10 and "backwards" in str(err)


def test_packet_counter_going_backwards(tmp_path: Path) -> None:
    f = tmp_path / "mt.txt"
    write_xsens_mt(f, 100, counter0=1000, sample_time="empty")
    fields = f.read_text().split("\n")[29].split("\t")  # line 30
    fields[0] = "1010"
    _edit_line(f, 30, "\t".join(fields))
    err = _error(f)
    assert err.line == 30 and "packet counter" in str(err)


def test_rows_without_quaternion_become_a_reported_gap(tmp_path: Path) -> None:
    f = tmp_path / "mt.txt"
    write_xsens_mt(f, 200, counter0=10, sample_time="empty")
    for line in (108, 109, 110):  # samples 100..102
        fields = f.read_text().split("\n")[line - 1].split("\t")
        fields[11:15] = ["NaN"] * 4
        _edit_line(f, line, "\t".join(fields))
    s = read_sensor_file(f)
    assert s.meta["import"].rows_without_data == 3 and len(s) == 197
    (gap,) = s.meta["gaps"]
    assert gap.missing == 3 and gap.t_start == pytest.approx(0.99)


def test_own_format_header_errors(tmp_path: Path) -> None:
    t = np.arange(10) / 10.0
    rec = Recording(
        {"pelvis": SensorStream("pelvis", "quat", t, 10.0, quat=np.tile([1.0, 0, 0, 0], (10, 1)))}
    )
    write_recording(rec, tmp_path / "s")
    f = tmp_path / "s" / "pelvis.csv"
    good = f.read_text()

    f.write_text(good.replace("# hipback-recording: 1", "# hipback-recording: 7"))
    err = _error(f)
    assert err.line == 1 and "version 7" in str(err)

    f.write_text(good.replace("# units:", "# meta: {not json\n# units:"))
    err = _error(f)
    assert (
        err.line == good.split("\n").index(next(x for x in good.split("\n") if x.startswith("# units"))) + 1
    )

    f.write_text(good.replace("# units:", "# gap: 0.1 zero 3 oops\n# units:"))
    assert "gap line" in str(_error(f))

    f.write_text(good.replace("# start_utc: unknown", "# start_utc: 2024-01-01T10:00:00"))
    err = _error(f)
    assert "time zone" in str(err) and err.line == good.split("\n").index("# start_utc: unknown") + 1


def test_session_json_listing_a_missing_file(tmp_path: Path) -> None:
    t = np.arange(10) / 10.0
    rec = Recording(
        {"pelvis": SensorStream("pelvis", "quat", t, 10.0, quat=np.tile([1.0, 0, 0, 0], (10, 1)))}
    )
    write_recording(rec, tmp_path / "s")
    (tmp_path / "s" / "pelvis.csv").unlink()
    with pytest.raises(RecordingFileError) as info:
        read_recording(tmp_path / "s")
    assert "session.json" in str(info.value) and "pelvis.csv" in str(info.value)


def test_values_are_converted_in_chunks_with_the_same_result_and_line_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are converted a chunk at a time (bounded memory): chunks of 7 rows give the very same samples as
    one chunk, a non-number in a later chunk names its own line, and a cut-off last line in the last chunk
    is still a truncation."""
    from hipback.ingest.files import table

    f = tmp_path / "mt.txt"
    write_xsens_mt(f, 60, sep=";", decimal_comma=True)
    whole = read_sensor_file(f)
    monkeypatch.setattr(table, "CHUNK_ROWS", 7)
    chunked = read_sensor_file(f)
    for name in ("t", "quat", "acc", "gyr", "mag", "seq"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))
    lines = f.read_text().split("\n")
    fields = lines[8 + 40 - 1].split(";")
    fields[3] = "x1"
    _edit_line(f, 8 + 40, ";".join(fields))
    err = _error(f)
    assert err.line == 8 + 40 and "'x1'" in str(err)
    f.write_text("\n".join(lines)[: -len(lines[-2]) // 2 - 1])  # the last row cut in half, no newline
    cut = read_sensor_file(f)
    assert cut.meta["import"].truncated_last_line and len(cut) == len(whole) - 1


@pytest.mark.parametrize("dialect", ["movella_dot", "xsens_mt", "hipback"])
def test_a_cut_off_last_line_warns_alike_in_every_dialect(tmp_path: Path, dialect: str) -> None:
    """The warning of a truncated last line is the same sentence for a Movella DOT export, an MT Manager
    export and a hipback file; a complete file has no such warning."""
    from hipback.ingest.files.report import TRUNCATED_LAST_LINE_WARNING

    f = tmp_path / "sensor.csv"
    if dialect == "movella_dot":
        write_movella_dot(f, 50)
    elif dialect == "xsens_mt":
        write_xsens_mt(f, 50)
    else:
        write_movella_dot(tmp_path / "dot.csv", 50)
        write_recording(Recording(streams={"pelvis": read_sensor_file(tmp_path / "dot.csv")}), tmp_path / "s")
        f = tmp_path / "s" / "pelvis.csv"
    whole = read_sensor_file(f).meta["import"]
    assert whole.dialect == dialect and not whole.truncated_last_line
    assert TRUNCATED_LAST_LINE_WARNING not in whole.warnings
    text = f.read_text()
    f.write_text(text[: len(text) - 40])  # cut off mid-row: no final newline
    rep = read_sensor_file(f).meta["import"]
    assert rep.truncated_last_line
    assert rep.warnings.count(TRUNCATED_LAST_LINE_WARNING) == 1
    assert "last line was cut off" in TRUNCATED_LAST_LINE_WARNING


def test_process_prints_and_keeps_the_cut_off_warning_of_a_vendor_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Movella DOT thigh file cut off mid-line: ``hipback process`` says so and summary.json keeps it."""
    import json

    from hipback.ingest.commands.process import run

    write_movella_dot(tmp_path / "pelvis.csv", 600, seed=1)
    write_movella_dot(tmp_path / "thigh.csv", 600, seed=2)
    text = (tmp_path / "thigh.csv").read_text()
    (tmp_path / "thigh.csv").write_text(text[: len(text) - 40])
    run([f"pelvis={tmp_path / 'pelvis.csv'}", f"thigh_left={tmp_path / 'thigh.csv'}"], out=tmp_path / "res")
    said = "thigh_left: the last line was cut off (the file was not completely written) and was ignored"
    assert f"Warning: {said}" in capsys.readouterr().out.splitlines()
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    assert said in summary["warnings"]
    assert not any("pelvis: the last line" in w for w in summary["warnings"])

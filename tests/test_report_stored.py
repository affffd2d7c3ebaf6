"""The report and the export read a session's stored results (issue 12): the angle series is stored with the
other result rows and comes back within float32 precision; ``--reprocess`` and sessions without stored
results process the raw samples again and say so; existing outputs are replaced only with ``--overwrite``;
a ``hipback process`` folder with malformed files is one sentence and exit 2, never a traceback (fuzzed).

The session is a simulated clinic visit written to recording files and put into a real local store by
``hipback process --store`` (which stores the results the way the session runner does:
:func:`hipback.ingest.results.store_rows`).
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest import cli
from hipback.ingest.export import export_session
from hipback.ingest.files import read_recording, write_recording
from hipback.ingest.report import SessionInfo, build_report
from hipback.ingest.report.source import load_from_store, results_from_rows
from hipback.ingest.results import ANGLES_CHUNK, angles_from_rows, angles_rows
from hipback.ingest.store import LocalStore
from hipback.processing.holds import Prescription
from hipback.processing.pipeline import ProcessorConfig, process_recording
from hipback.processing.types import AngleSeries
from hipback.simulator import VirtualPatient, simulate

PATIENT = "SIM-STORED-01"
KINDS = ("summary", "angles", "strides", "bouts", "holds", "activity", "calibration", "warnings")
#: float32 keeps a value to a relative 2**-24 (round to nearest)
F32 = 2.0**-24


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Recording files, ``hipback process --store`` into a store, the original processing's results."""
    root = tmp_path_factory.mktemp("stored")
    sim = simulate("clinic_visit", seed=5, patient=VirtualPatient(patient_id=PATIENT), walk_s=30.0,
                   hold_s=12.0, sit_s=8.0, lie_s=6.0)
    write_recording(sim.recording, root / "rec")
    files = {p: root / "rec" / f"{p}.csv" for p in sim.recording.streams}
    store = root / "hipback.sqlite"
    argv = ["process", *(f"{p}={f}" for p, f in files.items()), "--out", str(root / "out"), "--store",
            str(store)]
    assert cli.run(argv) == 0
    recording = read_recording(files)
    with LocalStore(store, readonly=True) as st:
        (row,) = st.sessions()
    return {"root": root, "store": store, "sid": row["id"], "recording": recording,
            "original": process_recording(recording, ProcessorConfig(orientation="lagged")),
            "folder": root / "out"}


def _text_outside_charts(html: str) -> str:
    html = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text.replace("\u2212", "-"))]


def _report(stored, out: Path, *extra: str) -> int:
    return cli.run(["report", stored["sid"][:8], "--out", str(out), "--store", str(stored["store"]), *extra])


def _stored_rows(store: Path, sid: str) -> dict[str, list]:
    with LocalStore(store, readonly=True) as st:
        return {kind: st.get_results(sid, kind) for kind in KINDS}


# -- the stored angle series ------------------------------------------------------------------------------


def test_stored_results_come_back_as_processing_computed_them(stored):
    """Records within float64 round-trips of degrees, the angles within float32, times and flags exact."""
    rows = _stored_rows(stored["store"], stored["sid"])
    assert len(rows["angles"]) == 1 + math.ceil(len(stored["original"].angles) / ANGLES_CHUNK) > 2
    back, start_utc = results_from_rows(rows)
    orig = stored["original"]
    assert start_utc == stored["recording"].start_utc
    a, b = orig.angles, back.angles
    assert np.array_equal(a.t, b.t)
    assert np.array_equal(a.flags(), b.flags())
    for name in AngleSeries.FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(np.isnan(x), np.isnan(y)), name
        ok = np.isfinite(x)
        scale = np.degrees(np.abs(x[ok])) if name != "pelvis_motion" else np.abs(x[ok])
        err = np.abs(np.degrees(x[ok] - y[ok])) if name != "pelvis_motion" else np.abs(x[ok] - y[ok])
        assert (err <= F32 * scale + 1e-12).all(), (name, float(err.max()))
    assert np.allclose(a.pelvis_acc_vertical, b.pelvis_acc_vertical, rtol=F32, atol=1e-12, equal_nan=True)
    for kind in ("strides", "holds", "activity", "bouts"):
        xs, ys = getattr(orig, kind), getattr(back, kind)
        assert len(xs) == len(ys) > 0, kind
        for x, y in zip(xs, ys, strict=True):
            for f, v in vars(x).items():
                w = getattr(y, f)
                if isinstance(v, float):
                    assert w == pytest.approx(v, rel=1e-12, abs=1e-12, nan_ok=True), (kind, f)
                else:
                    assert w == v, (kind, f)
    assert set(back.calibration) == set(orig.calibration)
    for p, c in orig.calibration.items():
        assert back.calibration[p].quality == pytest.approx(c.quality)
        assert back.calibration[p].window == pytest.approx(c.window)
    assert back.summary["peak_hip_extension_left_deg"] == orig.summary["peak_hip_extension_left_deg"]
    assert back.placements == orig.placements and back.calibration_state == orig.calibration_state
    assert back.messages == orig.messages and back.warnings == orig.warnings


def test_a_long_session_is_stored_in_bounded_rows():
    """One hour at 100 Hz: 60 rows of one minute each plus the header, every row the same bounded size."""
    n = 3600 * 100
    t = np.arange(n) / 100.0
    rng = np.random.default_rng(3)
    walk = np.radians(25.0) * np.sin(2 * np.pi * 0.9 * t) + rng.normal(0, 1e-3, n)
    cols = {name: walk * (i + 1) / 8 for i, name in enumerate(AngleSeries.FIELDS)}
    cols["lumbar_flexion"] = np.full(n, np.nan)  # no lumbar sensor: nothing stored for it
    cols["hip_flexion_left"][1000:1500] = np.nan  # a gap
    angles = AngleSeries(t=t, **cols, implausible=np.zeros(n, np.uint8))
    results = type("R", (), {"angles": angles, "placements": {"pelvis": "raw"}, "gaps": []})()
    rows = angles_rows(results, 1.7e9)
    sizes = [len(json.dumps(r)) for r in rows[1:]]
    assert len(rows) == 61 and all(r["n"] == ANGLES_CHUNK for r in rows[1:])
    assert max(sizes) < 400_000 and max(sizes) < 1.2 * min(sizes)
    assert all(r["lumbar_flexion_deg"] is None for r in rows[1:])
    back, header = angles_from_rows(json.loads(json.dumps(rows)))
    assert header["samples"] == n and np.array_equal(back.t, t)
    assert np.array_equal(np.isnan(back.hip_flexion_left), np.isnan(cols["hip_flexion_left"]))
    assert np.nanmax(np.abs(back.hip_flexion_right - cols["hip_flexion_right"])) <= F32 * np.radians(25.0) * 2


@pytest.mark.parametrize(
    "damage",
    ["format", "count", "order", "base64", "short", "bomb", "type", "missing_chunk", "huge"],
)
def test_damaged_angle_rows_are_refused(damage):
    import base64
    import zlib

    t = np.arange(250) / 100.0
    angles = AngleSeries(t=t, **{n: np.sin(t) for n in AngleSeries.FIELDS})
    results = type("R", (), {"angles": angles, "placements": {}, "gaps": []})()
    rows = json.loads(json.dumps(angles_rows(results, 0.0, chunk=100)))
    if damage == "format":
        rows[0]["format"] = "hipback.angles/99"
    elif damage == "count":
        rows[0]["samples"] = 251
    elif damage == "order":
        rows[1], rows[2] = rows[2], rows[1]
    elif damage == "base64":
        rows[2]["pelvic_tilt_deg"] = "not base64!"
    elif damage == "short":
        rows[2]["t"] = base64.b64encode(zlib.compress(b"\0" * 8 * 99)).decode()
    elif damage == "bomb":
        rows[2]["t"] = base64.b64encode(zlib.compress(b"\0" * 10_000_000)).decode()
    elif damage == "type":
        rows[3]["hip_flexion_left_deg"] = 12.5
    elif damage == "missing_chunk":
        del rows[2]
    elif damage == "huge":
        rows[0]["samples"] = 10**12
        rows[1]["n"] = 10**9
    with pytest.raises(ValueError):
        angles_from_rows(rows)


# -- the report ---------------------------------------------------------------------------------------------


def test_report_reads_the_stored_results(stored, tmp_path, capsys):
    """The page from the store shows what processing computed when the session was stored: it equals the page
    built from the original results (text outside the charts, to the digit), and says where it came from."""
    out = tmp_path / "stored.html"
    assert _report(stored, out) == 0
    said = capsys.readouterr().out
    assert "Read from the results stored when the session was processed" in said
    html = out.read_text(encoding="utf-8")
    assert "Read from the results stored when the session was processed" in html
    inputs = load_from_store(stored["store"], stored["sid"])
    assert inputs.origin == "stored" and inputs.recording is None
    direct = build_report(
        stored["original"], stored["recording"], prescription=Prescription(), sensor_stats={},
        session=SessionInfo(stored["sid"], PATIENT, stored["recording"].start_utc, inputs.session.source),
        planned=False,  # (files processed: no plan prescribed the holds)
    )
    assert _text_outside_charts(html) == _text_outside_charts(direct)
    assert html.count("<svg") == direct.count("<svg") >= 5


def test_report_equals_the_report_from_reprocessing(stored, tmp_path, capsys):
    """``--reprocess`` processes the raw samples again: the same counts and, to within a tenth of a degree
    (the store's timeline starts at the first sample, a few ms from the file's), the same numbers."""
    a, b = tmp_path / "stored.html", tmp_path / "again.html"
    assert _report(stored, a) == 0
    assert _report(stored, b, "--reprocess") == 0
    said = capsys.readouterr().out
    assert "Processed again from the 72800 raw samples kept in the local store (--reprocess)." in said
    ta, tb = (_text_outside_charts(p.read_text(encoding="utf-8")) for p in (a, b))
    assert "(--reprocess)" in tb and "(--reprocess)" not in ta
    na, nb = (_numbers(t.split("Where these numbers come from")[0]) for t in (ta, tb))
    assert len(na) == len(nb) > 100
    diff = [(x, y) for x, y in zip(na, nb, strict=True) if abs(x - y) > max(0.11, 0.06 * abs(x))]
    assert not diff


def test_reprocess_is_not_the_stored_result(stored, tmp_path):
    """Changed stored numbers show in the report; ``--reprocess`` ignores them (which source is read)."""
    store = tmp_path / "copy.sqlite"
    shutil.copy(stored["store"], store)
    with LocalStore(store) as st:
        summary = st.get_results(stored["sid"], "summary")[0]
        st.put_results(stored["sid"], "summary", [{**summary, "peak_hip_extension_left_deg": 31.0}])
    copy = {**stored, "store": store}
    assert _report(copy, tmp_path / "a.html") == 0
    assert _report(copy, tmp_path / "b.html", "--reprocess") == 0
    left = "Your left hip stretched back (extended) by about {} degrees"
    assert left.format(31) in (tmp_path / "a.html").read_text(encoding="utf-8")
    again = round(stored["original"].summary["peak_hip_extension_left_deg"])
    assert left.format(again) in (tmp_path / "b.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("case", "sentence"),
    [
        ("none", "it has no stored results (it stopped before it finished, or an older hipback stored it)"),
        ("older", "store: its stored results have no angle series (an older hipback stored them)."),
        ("damaged", "its stored results cannot be read: an array holds the wrong number of values"),
        ("garbled", "its stored results cannot be read: a stored result row is damaged"),
    ],
)
def test_a_session_without_readable_results_is_processed_again_and_says_so(
    stored, tmp_path, capsys, case, sentence
):
    store = tmp_path / "copy.sqlite"
    shutil.copy(stored["store"], store)
    with LocalStore(store) as st:
        if case == "none":
            for kind in KINDS:
                st.put_results(stored["sid"], kind, [])
        elif case == "older":
            st.put_results(stored["sid"], "angles", [])
        elif case == "damaged":
            rows = st.get_results(stored["sid"], "angles")
            rows[2]["hip_flexion_left_deg"] = rows[2]["hip_flexion_left_deg"][:-40]
            st.put_results(stored["sid"], "angles", rows)
    if case == "garbled":  # a result row that is not JSON any more (a flipped byte)
        with sqlite3.connect(store) as con:
            con.execute("UPDATE results SET row = substr(row, 2) WHERE kind = 'holds' AND idx = 1")
    copy = {**stored, "store": store}
    capsys.readouterr()
    assert _report(copy, tmp_path / "r.html") == 0
    said = capsys.readouterr().out
    assert "Processed again from the 72800 raw samples kept in the local store: " in said
    assert sentence in said
    assert sentence in (tmp_path / "r.html").read_text(encoding="utf-8").replace("&#x27;", "'")
    if case == "none":  # (the API says the same; processing again once is enough for the suite)
        inputs = load_from_store(store, stored["sid"])
        assert inputs.origin == "fallback" and inputs.recording is not None


# -- the export ---------------------------------------------------------------------------------------------


def _csv(path: Path) -> dict[str, list[str]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return {name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])}


def _close(a: str, b: str, rel: float) -> bool:
    """Equal text, or numbers within ``rel`` or one step of the CSV's rounding (9 decimals) apart."""
    if a == "" or b == "" or not re.fullmatch(r"-?[\d.e+-]+", a):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1.5e-9)


def test_export_csv_from_stored_results_has_the_columns_and_values_as_before(stored, tmp_path, capsys):
    """The tables from the stored results equal those of the original processing (the export as it was
    written from results before): same columns, same rows, values within float32 for the angles."""
    argv = ["export", stored["sid"], "--format", "csv", "--store", str(stored["store"])]
    assert cli.run([*argv, "--out", str(tmp_path / "stored")]) == 0
    assert "Read from the results stored" in capsys.readouterr().out
    export_session(stored["original"], None, tmp_path / "before", "csv")
    assert cli.run([*argv, "--out", str(tmp_path / "again"), "--reprocess"]) == 0
    for name, rel in (("angles.csv", 4 * F32), ("strides.csv", 1e-12), ("holds.csv", 1e-12)):
        new, old = _csv(tmp_path / "stored" / name), _csv(tmp_path / "before" / name)
        assert list(new) == list(old) == list(_csv(tmp_path / "again" / name)), name
        for col in old:
            assert len(new[col]) == len(old[col]) > 0, (name, col)
            bad = [(a, b) for a, b in zip(new[col], old[col], strict=True) if not _close(a, b, rel)]
            assert not bad, (name, col, bad[:3])


def test_sto_export_reads_the_raw_samples_and_the_stored_calibration(stored, tmp_path):
    argv = ["export", stored["sid"], "--format", "sto", "--store", str(stored["store"]), "--out",
            str(tmp_path / "sto")]
    assert cli.run(argv) == 0
    assert (tmp_path / "sto" / "orientations_calibration.sto").is_file()
    assert load_from_store(stored["store"], stored["sid"], with_recording=True).recording is not None


# -- existing outputs ---------------------------------------------------------------------------------------


def test_report_and_export_replace_earlier_outputs_only_when_asked(stored, tmp_path, capsys):
    out = tmp_path / "r.html"
    out.write_text("an earlier report")
    capsys.readouterr()
    assert _report(stored, out) == 2
    err = capsys.readouterr().err
    assert err == f"hipback: the report file {out} already exists; give another --out file, or add " \
                  "--overwrite to replace it.\n"
    assert out.read_text() == "an earlier report"
    assert _report(stored, out, "--overwrite") == 0 and "<svg" in out.read_text()

    folder = tmp_path / "x"
    argv = ["export", stored["sid"], "--format", "csv", "--store", str(stored["store"]), "--out", str(folder)]
    assert cli.run(argv) == 0
    (folder / "strides.csv").write_text("earlier")
    (folder / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert cli.run(argv) == 2
    err = capsys.readouterr().err
    assert ("already holds an earlier export (angles.csv, strides.csv, holds.csv, activity.csv, "
            "exercises.csv)") in err
    assert err.count("\n") == 1
    assert (folder / "strides.csv").read_text() == "earlier"
    assert cli.run([*argv, "--format", "parquet"]) == 0  # other files than an earlier csv export: fine
    assert cli.run([*argv, "--overwrite"]) == 0
    assert (folder / "strides.csv").read_text() != "earlier" and (folder / "notes.txt").read_text() == "mine"
    capsys.readouterr()
    assert cli.run(["report", str(stored["folder"]), "--out", str(tmp_path / "f.html"), "--reprocess"]) == 2
    assert "--reprocess needs a session in the local store" in capsys.readouterr().err


# -- a malformed ``hipback process`` folder: one sentence, exit 2 ------------------------------------------

WRONG_VALUES = [[], {}, "12", "text", True, None, -1, 1e308, [1, 2, 3], {"a": "b"}, [None], "NaN"]


def _mutate_json(rng: random.Random, summary: dict) -> str:
    s = json.loads(json.dumps(summary))
    how = rng.randrange(6)
    if how == 0:
        return json.dumps(rng.choice([[s], "summary", 3, None, [], "[" * 5000]))
    if how == 1:  # a wrong value somewhere at the top
        s[rng.choice(sorted(s))] = rng.choice(WRONG_VALUES)
    elif how == 2:  # a wrong value one level down (holds, calibration, activity, ...)
        nested = [k for k, v in s.items() if isinstance(v, dict) and v]
        k = rng.choice(nested)
        s[k][rng.choice(sorted(s[k]))] = rng.choice(WRONG_VALUES)
    elif how == 3:  # two levels down (holds.left.count, calibration.pelvis.quality, ...)
        k = rng.choice(["holds", "calibration"])
        inner = [v for v in s[k].values() if isinstance(v, dict)]
        d = rng.choice(inner)
        d[rng.choice(sorted(d))] = rng.choice(WRONG_VALUES)
    elif how == 4:
        s[rng.choice(["calibration", "gaps", "holds", "sensors", "warnings", "activity_s"])] = rng.choice(
            WRONG_VALUES)
    else:
        text = json.dumps(s)
        old = rng.choice(["12", "0.", "true", "\"left\"", "{", "]"])
        return text.replace(old, rng.choice(["\"x\"", "[]", "-", "1e999"]), 1)
    return json.dumps(s)


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not b:
            break
        how = rng.randrange(4)
        i = rng.randrange(len(b))
        if how == 0:
            b[i] = rng.randrange(256)
        elif how == 1:
            b[i:i] = rng.choice([b"\0", b"\xff\xfe", b",", b"\n", b"nan", b"inf", b"-1e400", b"\"", b"left"])
        elif how == 2:
            del b[i:i + rng.randint(1, 40)]
        else:
            b = b[: max(1, i)]
    return bytes(b)


def _mutate_csv(rng: random.Random, text: str) -> str:
    rows = list(csv.reader(text.splitlines()))
    if len(rows) < 2:
        return text + "garbage\n"
    r = rng.randrange(len(rows))
    c = rng.randrange(len(rows[0]))
    value = rng.choice(["abc", "inf", "-inf", "nan", "1e400", "", "-", "middle", "2", "1e300", "yes", "-5"])
    if r < len(rows) and c < len(rows[r]):
        rows[r][c] = value
    if rng.random() < 0.2:
        rows[rng.randrange(1, len(rows))].append("extra")
    out = [",".join(row) for row in rows]
    return "\n".join(out) + "\n"


def test_malformed_process_folders_are_one_sentence_and_exit_2(stored, tmp_path, capsys):
    """Seeded mutations of a real ``hipback process`` folder: every run is a report (exit 0) or one sentence
    on stderr with exit 2 -- never a traceback or an unexpected error (exit 1)."""
    source = stored["folder"]
    files = {p.name: p.read_bytes() for p in source.iterdir()}
    summary = json.loads(files["summary.json"])
    rng = random.Random(20261125)
    codes = {0: 0, 2: 0}
    shown_structure = []
    for case in range(60):
        folder = tmp_path / f"case{case}"
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        target = rng.choice(["summary.json"] * 3 + ["angles.csv", "strides.csv", "holds.csv", "activity.csv"])
        if target == "summary.json":
            text = _mutate_json(rng, summary)
            (folder / target).write_text(text, encoding="utf-8")
            if rng.random() < 0.15:
                (folder / target).write_bytes(_mutate_bytes(rng, text.encode()))
        elif rng.random() < 0.5:
            (folder / target).write_bytes(_mutate_bytes(rng, files[target]))
        else:
            (folder / target).write_text(_mutate_csv(rng, files[target].decode()), encoding="utf-8")
        capsys.readouterr()
        code = cli.run(["report", str(folder), "--out", str(tmp_path / f"case{case}.html")])
        err = capsys.readouterr().err
        assert code in (0, 2), (case, target, err)
        assert "Traceback" not in err and "unexpected error" not in err, (case, target, err)
        if code == 2:
            assert err.startswith("hipback: ") and err.count("\n") == 1, (case, err)
            shown_structure.append(err)
        codes[code] += 1
    assert codes[2] >= 30 and codes[0] >= 3, codes  # the mutations do reach the checks, and some pass


def _quality_rows(html: str) -> list[list[str]]:
    section = html.split('<section id="quality">', 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)]
            for tr in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]


def test_a_process_folder_reports_each_sensors_samples_as_the_store_does(stored, tmp_path, capsys):
    """The data-quality table of a ``hipback process`` folder says what was read of each sensor (device,
    rate, samples, loss), the same as the report of the session ``--store`` stored; a folder written before
    process said so shows those as unknown, never as 0 samples and 0 % loss."""
    assert _report(stored, tmp_path / "store.html") == 0
    assert cli.run(["report", str(stored["folder"]), "--out", str(tmp_path / "folder.html")]) == 0
    from_store = _quality_rows((tmp_path / "store.html").read_text())
    from_folder = _quality_rows((tmp_path / "folder.html").read_text())
    rec = stored["recording"]
    assert [r[0] for r in from_folder] == [p for p in ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")
                                           if p in rec.streams]
    for row in from_folder:
        s = rec.streams[row[0]]
        assert row[1] == s.device and row[2] == f"{s.rate_hz:.0f} Hz" and row[3] == str(len(s))
        assert row[5] == "0.00 %"
    assert [r[:9] for r in from_folder] == [r[:9] for r in from_store]
    older = tmp_path / "older"
    shutil.copytree(stored["folder"], older)
    summary = json.loads((older / "summary.json").read_text())
    del summary["recording_sensors"], summary["recording_gaps"]
    (older / "summary.json").write_text(json.dumps(summary))
    assert cli.run(["report", str(older), "--out", str(tmp_path / "older.html")]) == 0
    rows = _quality_rows((tmp_path / "older.html").read_text())
    assert rows and all(r[2] == r[3] == r[5] == "\u2013" for r in rows), rows


def test_the_quality_table_names_each_sensor_by_its_own_id(tmp_path):
    """Which sensor was worn where (the id a vendor's file names, or the BLE address of a recorded sensor)
    beside its device kind, in the report of the store and of the folder alike: the one to swap when the
    table shows it losing data. A sensor whose files do not say shows its kind alone."""
    sim = simulate("walk", seed=3, patient=VirtualPatient(patient_id=PATIENT), calib_s=8.0, walk_s=12.0,
                   stand_s=2.0)
    ids = {"pelvis": "D422CD003437", "thigh_left": "D422CD003235"}
    for p, ident in ids.items():
        sim.recording.streams[p].meta["sensor_id"] = ident
    write_recording(sim.recording, tmp_path / "rec")
    store, out = tmp_path / "hipback.sqlite", tmp_path / "out"
    files = [f"{p}={tmp_path / 'rec' / f'{p}.csv'}" for p in sim.recording.streams]
    assert cli.run(["process", *files, "--out", str(out), "--store", str(store)]) == 0
    assert cli.run(["report", "latest", "--store", str(store), "--out", str(tmp_path / "s.html")]) == 0
    assert cli.run(["report", str(out), "--out", str(tmp_path / "f.html")]) == 0
    for page in ("s.html", "f.html"):
        rows = {r[0]: r[1] for r in _quality_rows((tmp_path / page).read_text())}
        assert rows.keys() == sim.recording.streams.keys(), page
        for p, s in sim.recording.streams.items():
            assert rows[p] == (f"{s.device} {ids[p]}" if p in ids else s.device), (page, p, rows[p])


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("summary.json", "[1, 2]", "not a summary written by 'hipback process': the summary is not a JSON"),
        ("summary.json", '{"duration_s": "long"}', "duration_s is not a number"),
        ("summary.json", '{"calibration": ["pelvis"]}', "calibration row 1: a row is not a record"),
        ("summary.json", '{"holds": {"left": "none"}}', "holds.left is not an object"),
        ("summary.json", '{"n_strides_left": 2.5}', "n_strides_left is not a count"),
        ("summary.json", "[" * 100000, "cannot be read (it is nested too deeply)"),
        ("summary.json", '{"recording_sensors": [1]}', "recording_sensors is not a table of sensors"),
        ("summary.json", '{"recording_sensors": {"pelvis": {"device": "x", "samples": -3}}}',
         "recording_sensors.pelvis.samples is not a count"),
        ("summary.json", '{"recording_sensors": {"pelvis": {"device": 7, "samples": 3}}}',
         "recording_sensors.pelvis.device is not a text"),
        ("summary.json", '{"recording_sensors": {"pelvis": {"device": "x", "samples": 3, "sensor_id": [1]}}}',
         "recording_sensors.pelvis.sensor_id is not a text"),
        ("summary.json", '{"recording_sensors": {}, "recording_gaps": {"a": 1}}',
         "recording_gaps is not a list"),
        ("strides.csv", "side,t_start_s,t_end_s\nmiddle,1,2\n", "side is 'middle', neither left nor right"),
        ("holds.csv", "side,rep,t_start_s,t_end_s\nleft,x,1,2\n", "rep is not a number"),
        ("activity.csv", "label,t_start_s,t_end_s\nwalking,5,inf\n", "t_end_s is infinite"),
        ("angles.csv", "time_s,hip_flexion_left_deg\n0.0,1\n0.0,2\n", "time_s is not a rising series"),
        ("angles.csv", "time_s,hip_flexion_left_deg\n0.0,1e9\n", "holds values that are not angles"),
    ],
)
def test_malformed_process_folder_sentences(stored, tmp_path, capsys, name, content, says):
    folder = tmp_path / "f"
    shutil.copytree(stored["folder"], folder)
    (folder / name).write_text(content, encoding="utf-8")
    capsys.readouterr()
    assert cli.run(["report", str(folder), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1, err


# -- a recorded (virtual) session: the runner's stored results ---------------------------------------------


def test_a_recorded_session_reports_what_the_runner_stored(tmp_path, capsys):
    """Virtual sensors through the session runner: the report reads the live results the runner stored
    (the angle series as it came, within float32 of every angle the runner delivered live, in rows of 2,000
    samples here so that the session fills several) and agrees with reprocessing the raw samples."""
    from hipback.ingest.session import spool
    from hipback.ingest.session.virtual import run_virtual_session
    from hipback.processing.types import AngleSeries

    kinds = {"pelvis": "hipback_v1", "thigh_left": "movella_dot", "thigh_right": "witmotion"}
    sim = simulate("clinic_visit", seed=5, patient=VirtualPatient(patient_id=PATIENT), walk_s=30.0,
                   hold_s=12.0, sit_s=8.0, lie_s=6.0)
    store = tmp_path / "hipback.sqlite"
    delivered = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spool, "ANGLES_CHUNK", 2000)
        outcome = run_virtual_session(sim, kinds, store, patient_id=PATIENT,
                                      on_update=lambda update, stats: delivered.append(update.angles))
    live = outcome.results
    assert live is not None and len(live.strides) > 20 and live.holds
    live_angles = AngleSeries.concat(delivered)
    rows = _stored_rows(store, outcome.session_id)
    assert len(rows["angles"]) == 1 + -(-len(live_angles) // 2000) > 3  # the header and the rows of 2,000
    back, start_utc = results_from_rows(rows)
    assert start_utc == outcome.start_utc and np.array_equal(back.angles.t, live_angles.t)
    for name in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt"):
        ok = np.isfinite(getattr(live_angles, name))
        assert np.array_equal(ok, np.isfinite(getattr(back.angles, name))) and ok.sum() > 1000
        err = np.abs(getattr(back.angles, name)[ok] - getattr(live_angles, name)[ok])
        assert (err <= F32 * np.abs(getattr(live_angles, name)[ok]) + 1e-12).all()
    assert np.array_equal(back.angles.implausible, live_angles.implausible)

    base = ["report", "latest", "--store", str(store)]
    assert cli.run([*base, "--out", str(tmp_path / "a.html")]) == 0
    assert cli.run([*base, "--out", str(tmp_path / "b.html"), "--reprocess"]) == 0
    ta, tb = (_text_outside_charts((tmp_path / n).read_text(encoding="utf-8")) for n in ("a.html", "b.html"))
    assert "Read from the results stored" in ta and "(--reprocess)" in tb
    again = load_from_store(store, outcome.session_id, reprocess=True).results
    for side in ("left", "right"):
        n_live = sum(1 for s in live.strides if s.side == side)
        n_again = sum(1 for s in again.strides if s.side == side)
        assert abs(n_live - n_again) <= 1, side
        value = live.summary[f"peak_hip_extension_{side}_deg"]
        assert f"Your {side} hip stretched back (extended) by about {value:.0f} degrees" in ta
        assert f"{side} {n_live} " in ta.split("Gait, per stride")[1]
        assert again.summary[f"peak_hip_extension_{side}_deg"] == pytest.approx(value, abs=0.5)
    assert [h.side for h in again.holds] == [h.side for h in live.holds]
    assert [h.arching for h in again.holds] == [h.arching for h in live.holds]
    for h0, h1 in zip(live.holds, again.holds, strict=True):
        assert h1.correct_s == pytest.approx(h0.correct_s, abs=0.5)
        # the raw samples are read back on the session's own timeline (time 0 = the live session's start)
        assert h1.t_start == pytest.approx(h0.t_start, abs=0.05)
    assert again.angles.t[0] == pytest.approx(live_angles.t[0], abs=0.011)


def test_a_store_from_the_first_release_is_reported_from_its_raw_samples(tmp_path, capsys):
    """The first release stored a summary but no angle series: the report processes the samples again."""
    from tests.test_store_lifecycle import V1_SESSION, _v1_store

    store = _v1_store(tmp_path)
    capsys.readouterr()
    assert cli.run(["report", "latest", "--store", str(store), "--out", str(tmp_path / "r.html")]) == 0
    said = capsys.readouterr().out
    assert f"Session {V1_SESSION}: Processed again from the 300 raw samples kept in the local store: its " \
           "stored results have no angle series (an older hipback stored them)." in said


def test_reprocessing_uses_the_filter_the_stored_results_came_from(stored):
    """``hipback process --store`` names its raw sensors' filter in the session's meta (the lagged one by
    default) and ``--reprocess`` uses it, so it reproduces the stored results; a live session (no name) is
    processed again with the causal filter, as live."""
    from hipback.ingest.report.source import load_from_store, stored_orientation

    with LocalStore(stored["store"], readonly=True) as st:
        assert st.session(stored["sid"])["meta"]["orientation_filter"] == "lagged"
    again = load_from_store(stored["store"], stored["sid"], reprocess=True, with_baseline=False).results
    original = stored["original"]
    assert [s.side for s in again.strides] == [s.side for s in original.strides]
    assert again.summary["n_strides_left"] == original.summary["n_strides_left"]
    assert stored_orientation({}) == "causal"
    assert stored_orientation({"orientation_filter": "lagged"}) == "lagged"
    assert stored_orientation({"orientation_filter": "smooth"}) == "causal"

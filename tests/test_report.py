"""The session report page: content, self-containment, the CLI, and the page in headless Chromium.

Sessions come from the simulator, are written into a real local store (two sessions of one patient, so the
second has a baseline) and reported through ``hipback report``. The browser part opens the page with
``chromium --headless`` (installed by ``tests/install_chromium.sh``; skipped with the reason when missing):
the screenshot must show the charts in the report's palette, the browser must log no console message, and
Chromium's network log must show no request made by the page (DNS is mapped to nothing and the proxy points
to a dead port, so nothing could leave the machine either way).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hipback.ingest.cli import app
from hipback.ingest.report import Baseline, SessionInfo, build_report
from hipback.ingest.report.svg import OKABE_ITO, envelope, nice_ticks
from hipback.ingest.store import LocalStore
from hipback.processing.pipeline import process_recording
from hipback.simulator import simulate
from tests.requires import require_tool

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
PATIENT = "SIM-REPORT-01"


def store_recording(store: LocalStore, recording, patient: str, prescription=(3, 30.0)) -> str:
    """Put a simulated recording into the store the way the session runner does (UTC sample times)."""
    sid = store.open_session(
        patient, {"prescription": {"holds_per_side": prescription[0], "hold_s": prescription[1]}}
    )
    start = recording.start_utc or 0.0
    for p, s in recording.streams.items():
        store.add_sensor(sid, p, s.kind, s.device, None, {"rate_hz": s.rate_hz})
        store.add_samples(sid, p, s.t + start, seq=s.seq, quat=s.quat, acc=s.acc, gyr=s.gyr, mag=s.mag)
    store.close_session(sid)
    return sid


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """Two stored sessions of one patient: an earlier one (less right hip extension) and the reported one."""
    from hipback.simulator import VirtualPatient

    root = tmp_path_factory.mktemp("report")
    path = root / "hipback.sqlite"
    early = simulate(
        "short", seed=2, patient=VirtualPatient(patient_id=PATIENT, peak_hip_extension_right_deg=8.0)
    )
    late = simulate(
        "clinic_visit",
        seed=5,
        patient=VirtualPatient(patient_id=PATIENT),
        walk_s=30.0,
        hold_s=12.0,
        sit_s=8.0,
        lie_s=6.0,
    )
    with LocalStore(path) as st:
        sid_early = store_recording(st, early.recording, PATIENT)
        sid = store_recording(st, late.recording, PATIENT, prescription=(2, 10.0))
    return {"root": root, "store": path, "sid": sid, "sid_early": sid_early, "sim": late}


@pytest.fixture(scope="module")
def page(sessions):
    out = sessions["root"] / "report.html"
    res = CliRunner().invoke(
        app, ["report", sessions["sid"][:10], "--out", str(out), "--store", str(sessions["store"])]
    )
    assert res.exit_code == 0, res.output
    return out


def test_page_tells_the_patient_what_happened(page, sessions):
    html = page.read_text(encoding="utf-8")
    results = process_recording(sessions["sim"].recording)
    s = results.summary
    text = re.sub(r"<[^>]+>", " ", html)
    text = re.sub(r"\s+", " ", text)
    for side in ("left", "right"):
        value = s[f"peak_hip_extension_{side}_deg"]
        assert f"Your {side} hip stretched back (extended) by about {value:.0f} degrees" in text
    # the earlier session of the same patient is the baseline (its right hip extended ~8 deg, now ~15)
    assert "than your earlier session" in text or "as your earlier session" in text
    assert sessions["sid_early"] in html  # listed for the clinician
    assert "relative to your standing calibration" in text
    assert "not a diagnosis" in text
    assert "Kerrigan" in text and "20.4" in text
    # holds against this session's prescription (2 x 10 s per side)
    n_left = sum(1 for h in results.holds if h.side == "left")
    assert f"Left side: {n_left} of 2 holds done" in text
    assert "your back arched" in text  # clinic_visit has an arching hold on each side
    # charts: five inline SVGs, each axis titled with its unit
    assert html.count("<svg") == 5
    for unit in ("(degrees)", "(seconds)", "Time since the session started"):
        assert unit in html
    assert "Data quality" in html and "For your clinician" in html


def test_page_is_self_contained(page):
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert not re.search(r"\b(src|href)\s*=", html, re.I)
    assert "url(" not in html.replace("url(#hatch)", "")
    assert "@import" not in html and "<link" not in html.lower() and "@font-face" not in html
    # the only URL is the SVG namespace name, which is an identifier, never fetched
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls


def test_report_cli_errors_are_one_sentence(sessions, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        app, ["report", "nosuchsession", "--out", str(tmp_path / "r.html"), "--store", str(sessions["store"])]
    )
    assert res.exit_code != 0
    assert isinstance(res.exception, Exception) and "not in the local store" in str(res.exception)
    res = runner.invoke(
        app, ["report", sessions["sid"], "--out", str(tmp_path / "r.pdf"), "--store", str(sessions["store"])]
    )
    assert res.exit_code != 0 and ".html" in str(res.exception)
    res = runner.invoke(
        app,
        [
            "report",
            sessions["sid"],
            "--out",
            str(tmp_path / "r.html"),
            "--store",
            str(tmp_path / "missing.sqlite"),
        ],
    )
    assert res.exit_code != 0 and "does not exist" in str(res.exception)
    assert not (tmp_path / "missing.sqlite").exists()  # a report never creates a store


def test_report_from_a_process_folder(tmp_path):
    """``hipback report`` also reads the folder ``hipback process`` writes (no raw samples, no baseline)."""
    from hipback.ingest.commands.process import angles_csv, summary_json
    from hipback.ingest.results import records_table, table_csv
    from hipback.processing.activity import ActivityBout
    from hipback.processing.gait import Stride
    from hipback.processing.holds import Hold

    sim = simulate("short", seed=3)
    res = process_recording(sim.recording)
    folder = tmp_path / "proc"
    folder.mkdir()
    (folder / "angles.csv").write_text(angles_csv(res))
    (folder / "strides.csv").write_text(table_csv(records_table(res.strides, Stride)))
    (folder / "holds.csv").write_text(table_csv(records_table(res.holds, Hold)))
    (folder / "activity.csv").write_text(table_csv(records_table(res.activity, ActivityBout)))
    (folder / "summary.json").write_text(json.dumps(summary_json(res, {})))
    out = tmp_path / "folder.html"
    r = CliRunner().invoke(app, ["report", str(folder), "--out", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert f"about {res.summary['peak_hip_extension_left_deg']:.0f} degrees" in html
    assert html.count("<svg") >= 4
    assert "Right side: 1 of 3 holds done" in html
    low, high = res.summary["hip_flexion_left_range_deg"]
    assert re.search(r"<td>left hip flexion \(\+\) / extension \(\u2212\)</td><td[^>]*>"
                     + re.escape(f"{low:.1f}") + r"</td><td[^>]*>" + re.escape(f"{high:.1f}"), html)


def test_report_without_walking_or_holds_still_reads_well():
    sim = simulate("walk", seed=1, walk_s=6.0, calib_s=6.0)
    res = process_recording(sim.recording)
    res.strides, res.holds = [], []
    res.summary.update({"n_strides_left": 0, "n_strides_right": 0})
    html = build_report(res, sim.recording, baseline=Baseline([]), session=SessionInfo("x", "P-1"))
    assert "No steady walking was recorded" in html
    assert "no stretch holds recorded" in html
    assert html.count("<svg") == 1  # only the angle chart; no empty charts


def test_the_sessions_length_reads_as_people_say_it():
    from hipback.ingest.report.page import duration_text

    cases = {0.6: "1 second", 12.4: "12 seconds", 89.4: "89 seconds", 89.6: "1.5 minutes",
             330.0: "5.5 minutes", 597.0: "10 minutes", 3599.0: "60 minutes", 7169.0: "119 minutes",
             7171.0: "2 h 0 min", 9300.0: "2 h 35 min"}
    assert {k: duration_text(k) for k in cases} == cases


def test_chart_helpers():
    assert nice_ticks(0, 100, 6) == [0, 20, 40, 60, 80, 100]
    t = np.arange(100_000) / 100.0
    y = np.sin(t)
    y[5000:6000] = np.nan
    et, ey = envelope(t, y, 500)
    assert len(et) <= 3 * 500
    assert np.nanmax(ey) == pytest.approx(1.0, abs=1e-3) and np.nanmin(ey) == pytest.approx(-1.0, abs=1e-3)
    assert np.isnan(ey).any()  # the gap stays a gap


# -- the page in a real browser -----------------------------------------------------------------------------


def decode_png(data: bytes) -> np.ndarray:
    """Minimal PNG decoder (8-bit grey/RGB/RGBA, non-interlaced) -> (H, W, C) uint8."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        elif typ == b"IEND":
            break
        pos += 12 + n
    assert ihdr is not None
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and interlace == 0 and ctype in (0, 2, 4, 6), f"unsupported PNG {ihdr}"
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif f == 2:
            line = bytearray((np.frombuffer(line, np.uint8) + np.frombuffer(prev, np.uint8)).astype(np.uint8))
        elif f == 3:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((a + prev[i]) >> 1)) & 0xFF
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 0xFF
        out[y] = np.frombuffer(bytes(line), np.uint8)
        prev = line
    return out.reshape(h, w, bpp)


def run_chromium(tmp_path: Path, url: str, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    require_tool("chromium", CHROMIUM is not None,
                 "run tests/install_chromium.sh as root, or apt-get install chromium")
    profile = tmp_path / "profile"
    netlog = tmp_path / "netlog.json"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        f"--log-net-log={netlog}",
        *args,
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    return proc, netlog


def page_requests(netlog: Path) -> list[str]:
    """URLs Chromium requested on behalf of a page loaded from file:// (browser housekeeping excluded)."""
    log = json.loads(netlog.read_text())
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls = []
    for e in log["events"]:
        p = e.get("params") or {}
        if types.get(e["type"]) == "URL_REQUEST_START_JOB" and "file://" in str(
            p.get("network_isolation_key", "")
        ):
            urls.append(p.get("url", ""))
    return urls


def test_page_in_headless_chromium(page, tmp_path):
    shot = tmp_path / "page.png"
    proc, netlog = run_chromium(
        tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1000,2600", "--hide-scrollbars"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # no console output at all from the page (errors, warnings, failed loads would appear here)
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == [], console
    assert page_requests(netlog) == []
    img = decode_png(shot.read_bytes())[..., :3].astype(int)
    assert img.shape[0] >= 2000 and img.shape[1] >= 900

    def pixels(hex_colour: str, tol: int = 8) -> int:
        rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(img - rgb).max(axis=2) <= tol).sum())

    # the charts are drawn: lines, markers and bars in the palette's blue, vermillion and bluish green
    for name in ("blue", "vermillion", "bluish_green"):
        assert pixels(OKABE_ITO[name]) > 300, name
    # a real page, not a blank one: many distinct colours
    distinct = len(np.unique((img // 16).reshape(-1, 3), axis=0))
    assert distinct > 40


def test_browser_checks_would_catch_a_bad_page(tmp_path):
    """The checks are not vacuous: an external image is seen as a page request, console.error is logged."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<html><body><img src="http://example.org/x.png"><p>x</p><script>console.error("boom")</script></body></html>'
    )
    proc, netlog = run_chromium(tmp_path, bad.as_uri(), "--dump-dom")
    assert proc.returncode == 0
    assert any("example.org" in u for u in page_requests(netlog))
    assert any(":CONSOLE" in ln and "boom" in ln for ln in proc.stderr.splitlines())


def test_dump_dom_has_the_sections(page, tmp_path):
    proc, _ = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert proc.returncode == 0
    dom = proc.stdout
    for section in ('id="summary"', 'id="charts"', 'id="quality"', 'id="clinician"'):
        assert section in dom
    assert dom.count("<svg") == 5


def test_data_quality_counts_lost_samples_and_breaks():
    """A 0.5 s hole in one thigh stream (a recorded gap): lost samples and a break, in numbers and words."""
    from hipback.ingest.report import assess_quality
    from hipback.processing.types import Gap

    sim = simulate("short", seed=1)
    rec = sim.recording
    s = rec.streams["thigh_left"]
    n = len(s)
    keep = np.r_[0:2000, 2050:n]
    rec.streams["thigh_left"] = type(s)(
        placement=s.placement, kind=s.kind, t=s.t[keep], rate_hz=s.rate_hz, acc=s.acc[keep], gyr=s.gyr[keep],
        mag=None if s.mag is None else s.mag[keep], device=s.device,
    )
    rec.gaps.append(Gap("thigh_left", float(s.t[1999]), float(s.t[2050]), 50, "disconnect"))
    res = process_recording(rec)
    q = assess_quality(rec, res)
    left = q.sensors["thigh_left"]
    assert left.lost == 50 and left.samples == n - 50
    assert left.loss_pct == pytest.approx(100 * 50 / n)
    assert left.gaps >= 1 and left.gap_s == pytest.approx(0.51, abs=0.02)
    assert q.sensors["pelvis"].lost == 0 and q.sensors["pelvis"].gaps == 0
    html = build_report(res, rec)
    assert "Some data were lost on the way" in html and "short break" in html


def test_files_processed_without_a_plan_are_reported_without_one(tmp_path, monkeypatch):
    """``hipback process`` of files: no plan prescribed the holds, so the report (from the store and from the
    folder) counts them against the default target without speaking of a plan, and a walk without holds says
    nothing of stretches; a recorded session's prescription still reads as the patient's plan (above)."""
    from hipback.ingest.files import write_recording

    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    runner = CliRunner()
    texts = {}
    for scenario in ("short", "walk"):
        sim = simulate(scenario, seed=3, **({"walk_s": 20.0} if scenario == "walk" else {}))
        write_recording(sim.recording, tmp_path / scenario)
        inputs = [f"{p}={tmp_path / scenario / (p + '.csv')}" for p in sim.recording.streams]
        out, store = tmp_path / f"{scenario}-out", tmp_path / f"{scenario}.sqlite"
        res = runner.invoke(app, ["process", *inputs, "--out", str(out), "--store", str(store)])
        assert res.exit_code == 0, res.output
        assert json.loads((out / "summary.json").read_text())["holds"]["planned"] is False
        for source, args in (("store", ["latest", "--store", str(store)]), ("folder", [str(out)])):
            page = tmp_path / f"{scenario}-{source}.html"
            res = runner.invoke(app, ["report", *args, "--out", str(page)])
            assert res.exit_code == 0, res.output
            text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))
            texts[scenario, source] = text
            assert "your plan" not in text and "(prescription:" not in text
            assert "Stretch holds (no prescription given; target 30 s in correct posture per hold)" in text
    for source in ("store", "folder"):
        text = texts["short", source]
        assert re.search(r"Right side: 1 hold; [01] reached the 30-second target in good posture", text)
        assert "Left side: 1 hold;" in text
        assert "stretch holds recorded" not in texts["walk", source]
        assert "No stretch holds detected." in texts["walk", source]

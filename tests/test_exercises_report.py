"""The report's exercise section: per exercise and side, done against the plan, time in good form, the broken
rules in plain words and the primary angle per rep, from ``SessionResults.exercise_events``; checked in
headless Chromium like the rest of the report (tests/test_report.py)."""

from __future__ import annotations

import re
from html import unescape

import numpy as np
import pytest

from hipback.ingest.programme import exercise_rows, parse_programme
from hipback.ingest.report.page import SessionInfo, build_report, exercise_groups, exercise_section
from hipback.ingest.report.svg import OKABE_ITO
from hipback.processing.exercises import ProgrammeRunner, load_catalogue
from hipback.processing.pipeline import SessionProcessor
from hipback.simulator import SensorSpec
from hipback.simulator.exercises import ExerciseSet, simulate_programme
from tests.test_report import decode_png, page_requests, run_chromium

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")


@pytest.fixture(scope="module")
def session():
    """Glute bridges (one arching), knee-to-chest holds (one too short), left clamshells (one rolled back)."""
    sim = simulate_programme(
        [
            ExerciseSet("glute_bridge", None, 4, faults=(1,)),
            ExerciseSet("knee_to_chest_double", None, 3, hold_s=8.0, faults=(1,), short_hold_s=4.0),
            ExerciseSet("clamshell", "left", 3, faults=(2,)),
        ],
        seed=5,
        sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in PLACEMENTS],
    )
    prog = parse_programme({"responder": "neither", "exercises": [
        {"name": "glute_bridge", "reps": 3}, {"name": "knee_to_chest_double", "holds": 2, "hold_s": 8},
        {"name": "clamshell", "sides": ["left"], "reps": 3}]})
    rec = sim.recording
    proc = SessionProcessor(
        {p: s.kind for p, s in rec.streams.items()}, {p: s.rate_hz for p, s in rec.streams.items()},
        exercises=ProgrammeRunner(programme=prog.items, worn=frozenset(rec.streams),
                                  catalogue=prog.catalogue),
    )
    for s in rec.streams.values():
        proc.feed(s)
    return sim, proc.finish()


@pytest.fixture(scope="module")
def page(session, tmp_path_factory):
    sim, results = session
    path = tmp_path_factory.mktemp("exercise_report") / "report.html"
    path.write_text(build_report(results, sim.recording,
                                 session=SessionInfo("s-ex", "P-0042", sim.recording.start_utc)))
    return path


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_each_exercise_and_side_against_the_plan_in_plain_words(session, page):
    sim, results = session
    html = page.read_text()
    section = html[html.index('<section id="exercises">'):]
    section = section[: section.index("</section>")]
    text = _text(section)
    cat = load_catalogue()
    for ts in sim.truth.sets:
        title = cat[ts.exercise].title
        side = "both legs" if ts.side is None else f"{ts.side} side"
        word = "hold" if cat[ts.exercise].kind == "hold" else "rep"
        good = sum(1 for r in ts.reps if r.fault is None)
        # every rep or hold the patient did is reported, and the faulty one does not count
        assert f"{title} ({side}): {len(ts.reps)} {word}s done, {good} counted" in text, text
        for r in ts.reps:
            if r.fault and r.fault != "too_short":
                rule = next(x for x in cat[ts.exercise].rules if x.angle == r.rules_broken[0])
                assert f"did not count: {rule.cue}" in text
    assert "3 counted of the 3 in your plan" in text and "2 counted of the 2 in your plan" in text
    assert "hold it longer" in text  # the too-short hold, in the engine's own words
    # one chart per exercise, bars labelled with the primary angle of each rep
    assert section.count("<svg") == len(sim.truth.sets)
    # no stretch-hold sentence of the kneeling-stretch detector for a programme session
    assert "no stretch holds recorded" not in _text(html)


def test_the_clinician_table_has_every_rep_with_its_angle_and_rule(session, page):
    sim, results = session
    html = page.read_text()
    table = html[html.index("Exercises, per rep and hold"):]
    table = table[: table.index("</table>")]
    lines = table.split("<tr>")[2:]
    truth = [r for s in sim.truth.sets for r in s.reps]
    assert len(lines) == len(truth)
    for line, tr in zip(lines, truth, strict=True):
        cells = [unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", line)]
        # primary angle at the peak against the truth (the catalogue's definition on true orientations)
        assert float(cells[6]) == pytest.approx(np.degrees(tr.primary_peak_rad), abs=5.0)
        assert cells[9] == ("yes" if tr.fault is None else "no")
        if tr.fault == "arching":
            assert cells[10] == "lower back arching"


def test_groups_say_what_was_not_measurable_and_work_unguided():
    rows = [
        {"t_s": 10.0, "kind": "set", "exercise": "prone_press_up", "work_side": "both", "set_no": 1,
         "prescribed": 10, "target_s": None, "status": "not_measurable", "text": "..."},
        {"t_s": 20.0, "kind": "rep", "exercise": "squat", "work_side": "both", "rep": 1, "counted": False,
         "primary_peak_deg": 70.0, "duration_s": 3.0, "correct_s": 1.0, "cue": "keep your back straight",
         "rules_broken": "lumbar_flexion", "rules_not_checked": ""},
        {"t_s": 25.0, "kind": "rep", "exercise": "squat", "work_side": "both", "rep": 2, "counted": True,
         "primary_peak_deg": 75.0, "duration_s": 3.0, "correct_s": 3.0, "cue": "", "rules_broken": "",
         "rules_not_checked": "lumbar_flexion"},
    ]
    groups = exercise_groups(rows)
    assert [(g.exercise, g.not_measurable, g.prescribed, g.counted) for g in groups] == [
        ("prone_press_up", True, 0, 0), ("squat", False, 0, 1)]
    text = _text(exercise_section(rows))
    assert "could not be counted with the sensors you wore" in text
    assert "Squat (both legs): 2 reps done, 1 counted." in text  # unguided: no plan to compare with
    assert "Time in good form: 4 of 6 seconds." in text
    assert "1 rep did not count: keep your back straight." in text
    assert "Not checked, because it needs a sensor you did not wear: lower back rounding." in text
    assert exercise_section([]) == "" and exercise_section(exercise_rows([], 0.0)) == ""


def test_exercise_section_in_headless_chromium(page, tmp_path):
    shot = tmp_path / "page.png"
    proc, netlog = run_chromium(
        tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1000,2400", "--hide-scrollbars"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln] == []
    assert page_requests(netlog) == []
    img = decode_png(shot.read_bytes())[..., :3].astype(int)

    def pixels(hex_colour: str, tol: int = 8) -> int:
        rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(img - rgb).max(axis=2) <= tol).sum())

    # the exercise bars sit near the top of the page: both-legs bars (bluish green) and left-side bars (blue)
    assert pixels(OKABE_ITO["bluish_green"]) > 3000
    assert pixels(OKABE_ITO["blue"]) > 1500
    dom, _ = run_chromium(tmp_path / "dom", page.as_uri(), "--dump-dom")
    assert 'id="exercises"' in dom.stdout and "Your exercises" in dom.stdout


def test_the_section_from_stored_rows_is_the_section_from_the_events(session, tmp_path):
    """The report reads the store's ``exercises`` rows (results.store_rows) to the same page as the events."""
    from hipback.ingest.results import store_rows

    sim, results = session
    start = sim.recording.start_utc
    stored = store_rows(results, start)["exercises"]
    info = SessionInfo("s-ex", "P-0042", start)
    from_events = build_report(results, sim.recording, session=info)
    bare = type(results)(**{**results.__dict__, "exercise_events": []})
    from_rows = build_report(bare, sim.recording, session=info, exercise_rows=stored)
    assert from_rows == from_events and 'id="exercises"' in from_rows
    assert 'id="exercises"' not in build_report(bare, sim.recording, session=info)


def test_history_takes_the_latest_earlier_sessions_that_did_each_exercise_and_side(session):
    """Per exercise and side: up to HISTORY_SESSIONS earlier sessions that did it, most recent first, with
    their own figures; an exercise the current session did not do is not compared."""
    from hipback.ingest.report.page import HISTORY_SESSIONS, exercise_figures, exercise_history
    from hipback.ingest.report.wording import ExerciseHistory

    _, results = session
    rows = exercise_rows(results.exercise_events, 0.0)
    groups = exercise_groups(rows)
    day = 86400.0

    def earlier(k: int, only: str | None = None) -> dict:
        data = [dict(r, t_s=r["t_s"] - k * day, primary_peak_deg=(r.get("primary_peak_deg") or 0.0) - k)
                for r in rows if only is None or r["exercise"] == only]
        return {"session_id": f"s{k}", "start_utc": -k * day, "rows": data}

    # most recent first: s1 did only clamshells, s2 .. s8 everything; s0 did an exercise not done today
    other = {"session_id": "s0", "start_utc": -0.5 * day,
             "rows": [dict(rows[1], exercise="butterfly", work_side="both")]}
    history = ExerciseHistory([other, earlier(1, "clamshell")] + [earlier(k) for k in range(2, 9)])
    hist = exercise_history(groups, history)
    assert set(hist) == {(g.exercise, g.side) for g in groups}
    bridge = hist[("glute_bridge", "both")]
    assert [s["session_id"] for s, _ in bridge] == [f"s{k}" for k in range(2, 2 + HISTORY_SESSIONS)]
    assert [s["session_id"] for s, _ in hist[("clamshell", "left")]][:2] == ["s1", "s2"]
    now = exercise_figures(next(g for g in groups if g.exercise == "glute_bridge"))
    for k, (_, f) in enumerate(bridge, start=2):
        assert f["done"] == now["done"] and f["counted"] == now["counted"]
        assert f["peak_median_deg"] == pytest.approx(now["peak_median_deg"] - k)
    html = exercise_section(rows, history)
    assert "butterfly" not in html.lower() and "Against your earlier sessions" in html
    assert exercise_section(rows, None) == exercise_section(rows, ExerciseHistory([other]))

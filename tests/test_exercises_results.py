"""Per-exercise results of a real (virtual) guided session: stored rows, live InfluxDB points delivered once.

A virtual patient does a short programme (glute bridges with one arching rep, double knee-to-chest holds)
wearing four virtual BLE sensors; the session runner guides it with the programme of the session config, the
live publisher queues the reps and holds as they happen, and the sync worker delivers them to the real influxd
of the test suite.
"""

from __future__ import annotations

import io
import math
import re
import sqlite3
from collections import Counter

import pytest
from rich.console import Console

from hipback.ingest.influx.writer import InfluxWriter
from hipback.ingest.live import LiveCoach
from hipback.ingest.programme import parse_programme
from hipback.ingest.publish import LivePublisher, publish_session
from hipback.ingest.store import LocalStore
from hipback.ingest.sync import SyncWorker
from hipback.simulator import SensorSpec
from hipback.simulator.exercises import ExerciseSet, simulate_programme

KINDS = {"pelvis": "hipback_v1", "thigh_left": "movella_dot", "thigh_right": "hipback_v1",
         "lumbar_upper": "hipback_v1"}
PID = "EX-0001"
#: the activity bouts the live subscriber received (filled by the ``session`` fixture)
_LIVE_BOUTS: list = []


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from hipback.ingest.session.virtual import run_virtual_session
    from hipback.simulator import VirtualPatient

    sensors = [SensorSpec(p, kind="quat", rate_hz=100.0) for p in KINDS]
    sim = simulate_programme(
        [ExerciseSet("glute_bridge", None, 4, faults=(1,)),
         ExerciseSet("knee_to_chest_double", None, 2, hold_s=8.0)],
        seed=5, sensors=sensors, patient=VirtualPatient(patient_id=PID),
    )
    programme = parse_programme({"responder": "neither", "exercises": [
        {"name": "glute_bridge", "reps": 3}, {"name": "knee_to_chest_double", "holds": 2, "hold_s": 8}]})
    path = tmp_path_factory.mktemp("exercise_session") / "store.sqlite"
    pub_store = LocalStore(path)
    publisher = LivePublisher(pub_store, PID)
    updates_with_events = []
    live_bouts = _LIVE_BOUTS
    live_bouts.clear()
    buf = io.StringIO()
    coach = LiveCoach(Console(file=buf, force_terminal=False, width=200, highlight=False), interactive=False)

    def on_update(update, stats):
        if update.exercise_events:
            updates_with_events.append(len(update.exercise_events))
        live_bouts.extend(update.activity)
        publisher.on_update(update, stats)

    try:
        outcome = run_virtual_session(sim, KINDS, path, programme=programme, on_update=on_update,
                                      on_session=publisher.bind, on_event=coach.on_event, patient_id=PID)
        publisher.finish(outcome.results, outcome.stats)
    finally:
        pub_store.close()
    return sim, outcome, path, updates_with_events, buf.getvalue()


def _truth_utc(sim, outcome, t: float) -> float:
    offset = next(iter(outcome.ledgers.values())).sim_t0_session
    return outcome.start_utc + offset + t


def test_the_stored_rows_say_what_the_patient_did(session):
    sim, outcome, path, _, _ = session
    with LocalStore(path) as store:
        rows = store.get_results(outcome.session_id, "exercises")
    sets = [r for r in rows if r["kind"] == "set"]
    assert [(s["exercise"], s["work_side"], s["prescribed"], s["target_s"]) for s in sets] == [
        ("glute_bridge", "both", 3, None), ("knee_to_chest_double", "both", 2, 8.0)]
    reps = [r for r in rows if r["kind"] == "rep"]
    holds = [r for r in rows if r["kind"] == "hold"]
    truth = {s.exercise: s.reps for s in sim.truth.sets}
    assert len(reps) == len(truth["glute_bridge"]) == 4
    assert len(holds) == len(truth["knee_to_chest_double"]) == 2
    for row, tr in zip(reps + holds, truth["glute_bridge"] + truth["knee_to_chest_double"], strict=True):
        # rows are in UTC: the truth's bounds (simulation time) moved onto the session's UTC timeline
        assert row["t_s"] == pytest.approx(_truth_utc(sim, outcome, tr.t_start), abs=1.0)
        assert row["t_end_s"] == pytest.approx(_truth_utc(sim, outcome, tr.t_end), abs=1.0)
        assert row["t_end_s"] > row["t_s"]
        # the faulty rep (arching) is not counted and names the broken rule and its cue
        assert row["counted"] is (tr.fault is None)
        assert row["first_rule"] == (tr.rules_broken[0] if tr.rules_broken else "")
        assert bool(row["cue"]) is (tr.fault is not None)
        assert 0.0 <= row["correct_s"] <= row["duration_s"] + 0.05
    assert [r["rep"] for r in reps] == [1, 2, 3, 4] and [r["rep"] for r in holds] == [1, 2]
    assert reps[1]["first_rule"] == "lumbar_extension" and "back" in reps[1]["cue"]
    for h, tr in zip(holds, truth["knee_to_chest_double"], strict=True):
        assert h["target_s"] == 8.0 and h["hold_s"] == pytest.approx(tr.hold_s, abs=1.0)
        assert h["too_short"] is False
    # primary angle at the peak: the glute bridge's hip extension from the start posture, in degrees
    for r, tr in zip(reps, truth["glute_bridge"], strict=True):
        assert r["primary_peak_deg"] == pytest.approx(math.degrees(tr.primary_peak_rad), abs=5.0)


def _exercise_lines(store: LocalStore, sid: str) -> Counter:
    return Counter(line.replace(sid, "SID") for _, line in store.outbox_pending(10**6, sid)
                   if line.startswith("exercise_"))


def test_live_points_are_the_batch_points_and_reach_influxdb_once(session, influxd, influx_db):
    sim, outcome, path, updates_with_events, _ = session
    assert len(updates_with_events) >= 3  # reps were published while the session went on, not only at the end
    with LocalStore(path) as store:
        live = _exercise_lines(store, outcome.session_id)
        assert live and max(live.values()) == 1  # nothing queued twice
        batch_sid = store.open_session(PID, {"start_utc": outcome.start_utc})
        publish_session(store, batch_sid, outcome.results, PID, outcome.start_utc, now_s=outcome.start_utc)
        assert _exercise_lines(store, batch_sid) == live
        assert sum(1 for k in live if k.startswith("exercise_reps,")) == 4
        assert sum(1 for k in live if k.startswith("exercise_holds,")) == 2

        worker = SyncWorker(store, InfluxWriter(influxd.url, influx_db), owns_writer=True)
        try:
            worker.sync_once()

            def query(q: str) -> list:
                series = influxd.query(q, influx_db)["results"][0].get("series", [])
                return [v for s in series for v in s["values"]]

            sid = outcome.session_id
            reps = query(f'SELECT "rep", "counted", "rules_broken", "prescribed" FROM "exercise_reps" '
                         f"WHERE \"session\" = '{sid}'")
            assert [(r[1], r[2], r[3], r[4]) for r in reps] == [
                (1, True, "", 3), (2, False, "lumbar_extension", 3), (3, True, "", 3), (4, True, "", 3)]
            holds = query(f'SELECT count("hold_s") FROM "exercise_holds" WHERE "session" = \'{sid}\' '
                          'AND "counted" = true')
            assert holds[0][1] == 2
            # the session published again (reprocessed) overwrites the same points
            publish_session(store, sid, outcome.results, PID, outcome.start_utc, now_s=outcome.start_utc)
            # (the live results carry no angle series: the one the session stored stays, and is published)
            from hipback.ingest.results import stored_angles

            assert len(stored_angles(store, sid)) == outcome.angle_rows > 1000
            worker.sync_once()
            again = query(f'SELECT "rep", "counted", "rules_broken", "prescribed" FROM "exercise_reps" '
                          f"WHERE \"session\" = '{sid}'")
            assert again == reps
        finally:
            worker.stop(final_sync=False)


def test_the_live_view_guides_the_programme_in_plain_words(session):
    """What the patient reads during the session: each exercise announced with its dose, every rep or hold
    counted or not with the count, the arching rep's cue, and the end of the programme, in this order."""
    sim, outcome, _, _, text = session
    lines = [re.sub(r"^\[\s*[\d.]+ s\] ", "", ln) for ln in text.splitlines()]
    starts = ("Next:", "Rep ", "That ", "Hold ", "CUE:", "Glute", "Double", "Programme")
    shown = [ln for ln in lines if ln.startswith(starts)]
    assert shown == [
        "Next: Glute bridge, 3 reps.",
        "Rep 1 of 3 counted.",
        "That rep did not count: 1 of 3 so far.",
        "CUE: Keep your back flat, lift with your buttocks.",
        "Rep 2 of 3 counted.",
        "Rep 3 of 3 counted.",
        "Glute bridge done.",
        "Next: Double knee-to-chest, 2 holds of 8 seconds.",
        "Hold 1 of 2 counted, held 8 seconds.",
        "Hold 2 of 2 counted, held 8 seconds.",
        "Double knee-to-chest done.",
        "Programme done. Well done!",
    ], text


def test_the_report_of_the_stored_session_shows_the_exercises(session, tmp_path):
    """``hipback report`` reads the stored ``exercises`` rows, also when the session is processed again
    (which does not run the programme)."""
    from hipback.ingest.commands import report

    _, outcome, path, _, _ = session
    for reprocess in (False, True):
        out = report.run(outcome.session_id, tmp_path / f"r{reprocess}.html", path, reprocess=reprocess)
        html = out.read_text(encoding="utf-8")
        section = html[html.index('<section id="exercises">'):]
        section = section[:section.index("</section>")]
        assert "glute" in section.lower() and "knee" in section.lower(), reprocess
        # the faulty (arching) bridge is not counted: 3 of 4 reps counted
        assert "Per rep and hold" in html or "per rep and hold" in html


def test_the_research_export_has_every_rep_and_hold_as_stored(session, tmp_path):
    """``hipback export SESSION --format csv|parquet``: an ``exercises`` table with one row per stored row,
    times from the recording start (and UTC), units in the column names and the Parquet metadata."""
    import csv

    import pyarrow.parquet as pq

    from hipback.ingest.commands import export

    sim, outcome, path, _, _ = session
    with LocalStore(path) as store:
        stored = store.get_results(outcome.session_id, "exercises")
    csv_paths = export.run(outcome.session_id, "csv", tmp_path / "csv", path)
    pq_paths = export.run(outcome.session_id, "parquet", tmp_path / "pq", path)
    (csv_path,) = [p for p in csv_paths if p.name == "exercises.csv"]
    (pq_path,) = [p for p in pq_paths if p.name == "exercises.parquet"]
    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = pq.read_table(pq_path)
    par = table.to_pylist()
    assert len(rows) == len(par) == len(stored) == 2 + 4 + 2  # two sets announced, 4 bridges, 2 holds
    assert b"primary_peak_deg" in table.schema.metadata[b"hipback.exercises"]
    assert (csv_path.stat().st_mode & 0o777) == (pq_path.stat().st_mode & 0o777) == 0o600
    offset = next(iter(outcome.ledgers.values())).sim_t0_session  # simulation time 0 on the session clock
    truth = [r for s in sim.truth.sets for r in s.reps]
    done = [(c, p, s) for c, p, s in zip(rows, par, stored, strict=True) if s["kind"] != "set"]
    for (c, p, s), tr in zip(done, truth, strict=True):
        assert c["kind"] == p["kind"] == s["kind"] == tr.kind
        assert c["exercise"] == p["exercise"] == tr.exercise
        assert c["counted"] == ("true" if p["counted"] else "false") and p["counted"] is (tr.fault is None)
        assert p["utc_s"] == pytest.approx(s["t_s"], abs=1e-6)
        # seconds since the recording start: the truth's bounds moved onto the session timeline
        assert p["time_s"] == pytest.approx(tr.t_start + offset, abs=1.0)
        assert p["time_end_s"] == pytest.approx(tr.t_end + offset, abs=1.0)
        assert float(c["time_s"]) == pytest.approx(p["time_s"], abs=1e-6)
        assert float(c["primary_peak_deg"]) == pytest.approx(p["primary_peak_deg"], abs=1e-6)
        assert p["primary_peak_deg"] == pytest.approx(math.degrees(tr.primary_peak_rad), abs=5.0)
        assert c["first_rule"] == p["first_rule"] == (tr.rules_broken[0] if tr.rules_broken else "")
    sets = [p for p in par if p["kind"] == "set"]
    assert [(p["exercise"], p["prescribed"], p["status"]) for p in sets] == [
        ("glute_bridge", 3, "announced"), ("knee_to_chest_double", 2, "announced")]


def test_the_report_compares_each_exercise_with_the_patients_earlier_sessions(session, tmp_path):
    """Two stored sessions of the same patient: the report of the later one shows, per exercise and side, the
    earlier session's counted reps/holds and median primary angle at the peak, read from its stored rows
    (a later session and another patient's session are not part of it)."""
    import sqlite3
    import statistics
    from html import unescape

    from hipback.ingest.commands import report

    _, outcome, path, _, _ = session
    copy = tmp_path / "store.sqlite"
    with sqlite3.connect(path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    day = 86400.0
    with LocalStore(copy) as store:
        rows = store.get_results(outcome.session_id, "exercises")

        def shifted(dt: float, peak_change: float, uncount: int | None) -> list[dict]:
            out = []
            for r in rows:
                r = dict(r, t_s=r["t_s"] + dt, t_end_s=(r.get("t_end_s") or r["t_s"]) + dt)
                if r["kind"] in ("rep", "hold"):
                    r["primary_peak_deg"] += peak_change
                    if r["kind"] == "rep" and r["rep"] == uncount:
                        r["counted"] = False
                out.append(r)
            return out

        earlier_rows = shifted(-day, -6.0, uncount=3)  # the day before: lower bridges, one fewer counted
        others = {  # patient, start relative to this session (s): rows
            (PID, -day): earlier_rows,
            (PID, day): shifted(day, 9.0, None),  # a later session: not history
            ("EX-9999", -2 * day): shifted(-2 * day, 20.0, None),  # another patient
        }
        for (pid, dt), data in others.items():
            sid = store.open_session(pid, {"start_utc": outcome.start_utc + dt})
            store.put_results(sid, "exercises", data)
            store.close_session(sid, outcome.start_utc + dt + 60.0)
    html = unescape(report.run(outcome.session_id, tmp_path / "r.html", copy).read_text(encoding="utf-8"))
    section = html[html.index('<section id="exercises">'):]
    section = section[:section.index("</section>")]
    assert "Against your earlier sessions" in section
    table = section[section.index("Against your earlier sessions"):]
    lines = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", ln) for ln in lines]
    body = [c for c in cells if c and c[0] in ("Glute bridge", "Double knee-to-chest")]
    # per exercise: this session, then exactly one earlier session (the later one and EX-9999 are left out)
    assert [(c[0], c[2] == "this session") for c in body] == [
        ("Glute bridge", True), ("Glute bridge", False), ("Double knee-to-chest", True),
        ("Double knee-to-chest", False)]
    for c, data in zip(body, (rows, earlier_rows, rows, earlier_rows), strict=True):
        exercise = "glute_bridge" if c[0] == "Glute bridge" else "knee_to_chest_double"
        done = [r for r in data if r["exercise"] == exercise and r["kind"] in ("rep", "hold")]
        assert int(c[3]) == len(done) and int(c[4]) == sum(1 for r in done if r["counted"])
        assert float(c[6]) == pytest.approx(statistics.median(r["primary_peak_deg"] for r in done), abs=0.051)
    bridges_now = [c for c in body if c[0] == "Glute bridge"]
    assert int(bridges_now[0][4]) - int(bridges_now[1][4]) == 1
    assert float(bridges_now[0][6]) - float(bridges_now[1][6]) == pytest.approx(6.0, abs=0.11)
    assert "Glute bridge (both legs): 3 reps counted today, 2 in your session of" in section



def test_every_activity_bout_reaches_the_live_subscriber_once(session):
    """Bouts (and exercise events) become final in the event rounds the runner runs after handing out a
    step's angles; a poll that then finds them without new angle rows must still hand them on."""
    _, outcome, _, _, _ = session
    assert len(outcome.results.activity) >= 3
    assert [(b.t_start, b.t_end, b.label) for b in _LIVE_BOUTS] == [
        (b.t_start, b.t_end, b.label) for b in outcome.results.activity
    ]


def test_the_live_posture_time_is_that_of_the_stored_angle_series(session):
    """A live session's posture time is counted as the angles come (its results carry no angle series):
    the queued ``posture_time`` point gives the times of the angle series the session stored."""
    from hipback.ingest.results import stored_angles
    from hipback.processing.exercises.posture import posture_time

    _, outcome, path, _, _ = session
    with LocalStore(path) as store:
        angles = stored_angles(store, outcome.session_id)
    with sqlite3.connect(path) as con:  # (queued or already sent: every line the session queued, in order)
        lines = [r[0] for r in con.execute("SELECT line FROM outbox WHERE session_id = ? AND line LIKE "
                                           "'posture_time,%' ORDER BY id", (outcome.session_id,))]
    assert len(outcome.results.angles) == 0 and len(angles) == outcome.angle_rows
    want = posture_time(angles, outcome.results.activity)
    assert want.measured_s > 30.0 and want.lumbar_extension_s is not None
    # the live session's point first; published again (another test here), the same from the stored series
    assert lines
    for line in lines:
        fields = dict(kv.split("=") for kv in line.split(" ")[1].split(","))
        for name in ("sitting_s", "bent_forward_s", "lumbar_extension_s", "measured_s"):
            # the stored angles are float32: a sample on a threshold may fall the other way
            assert float(fields[name]) == pytest.approx(getattr(want, name), abs=0.05), name

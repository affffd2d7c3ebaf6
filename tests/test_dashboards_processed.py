"""The dashboards on data that came out of processing: a simulated cohort, processed, published through the
outbox and the sync worker into a real ``influxd``; the clinicians' headline numbers equal what
:mod:`hipback.processing.progress` computes from the same processed results, and agree with the simulated
truth.

The cohort: 5 virtual patients over 4 weeks with 2-4 short sessions a week (walks of ~24 s, stretch sessions
of two 6.5 s kneeling hip-flexor holds per side against a prescription of 2 x 5 s per side), each simulated
(:func:`hipback.simulator.simulate`), processed (:func:`hipback.processing.pipeline.process_recording`) and
published
(:func:`hipback.ingest.publish.publish_session` -> local store outbox ->
:class:`hipback.ingest.sync.SyncWorker` ->
``influxd``). Each patient's peak hip extension changes day by day at a weekly rate (one improves, one is
stable, one declines beyond the minimal detectable change, one stopped a week ago, one rarely stretches).

The query helpers (Grafana macro substitution, running a query) are those of ``tests/test_dashboards.py``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from hipback.ingest.influx.writer import InfluxWriter
from hipback.ingest.publish import publish_patient_status, publish_session
from hipback.ingest.session.stats import SensorStats
from hipback.ingest.store import LocalStore
from hipback.ingest.sync import SyncWorker
from hipback.processing.pipeline import ProcessorConfig, process_recording
from hipback.processing.progress import DAY_S, PatientProgress
from hipback.simulator import Scenario, Step, VirtualPatient, simulate
from tests.test_dashboards import (
    all_queries,
    assert_patient_headlines,
    headline_queries,
    load_dashboard,
    rule_queries,
    run_query,
    substitute,
)

N_WEEKS = 4
N_DAYS = 7 * N_WEEKS
HOLDS_PER_SIDE, HOLD_S = 2, 5.0  # the prescription of these short stretch sessions
HOLDS_PER_WEEK = 3 * 2 * HOLDS_PER_SIDE  # three stretch sessions a week
REFERENCE = "c01"  # walks and stretches every week; the latest stretch session has an arching hold
CONFIG = ProcessorConfig(holds_per_side=HOLDS_PER_SIDE, hold_s=HOLD_S)

WALK = Scenario("walk_short", [Step("stand", 5.0), Step("walk", 24.0), Step("stand", 2.0)])


def stretch_scenario(arching: tuple[tuple[str, int], ...]) -> Scenario:
    steps = [Step("stand", 5.0)]
    for side in ("left", "right"):
        steps.append(Step("kneel", 1.0, side=side))
        for i in range(HOLDS_PER_SIDE):
            steps += [
                Step("hold", 6.5, side=side, arching=(side, i) in arching),
                Step("kneel", 1.0, side=side),
            ]
    steps.append(Step("stand", 2.0))
    return Scenario("stretch_short", steps)


@dataclass
class Plan:
    pid: str
    left: float  # peak hip extension in week 0, deg
    right: float
    per_week: float  # change of both sides per week, deg
    walks: tuple[int, ...]  # walk days of each week (0-6)
    stretches: tuple[int, ...]  # stretch days of each week
    last_day: int = N_DAYS  # no session from this study day on
    sessions: list[dict[str, Any]] = field(default_factory=list)


PLANS = [
    Plan("c01", 8.0, 10.0, +1.5, (0, 3), (1, 4, 6)),  # improves, adherent
    Plan("c02", 14.0, 12.0, 0.0, (1, 5), (2, 5)),  # stable
    Plan("c03", 16.0, 14.0, -2.5, (0, 2, 4), (3,)),  # declines beyond the MDC
    Plan("c04", 11.0, 9.0, 0.0, (1, 4), (2, 5), last_day=N_DAYS - 6),  # stopped a week ago
    Plan("c05", 12.0, 13.0, +0.5, (0, 2, 5), ()),  # walks, never stretches
]


@dataclass
class Cohort:
    db: str
    anchor: float
    progress: dict[str, PatientProgress]
    truth: dict[str, dict[str, Any]]
    latest: dict[str, dict[str, str]]
    sessions: int
    queued: int
    timings: dict[str, float]


def _stats(sim: Any, pid: str, battery: float) -> dict[str, SensorStats]:
    """What the session runner would report for this session's sensors (no link here: no loss)."""
    out = {}
    for k, (pl, s) in enumerate(sim.recording.streams.items()):
        st = SensorStats(pl, "hipback_v1", f"C0:FF:EE:00:{int(pid[1:]):02X}:{k:02X}")
        st.samples, st.first_t, st.last_t, st.battery_pct = len(s.t), float(s.t[0]), float(s.t[-1]), battery
        out[pl] = st
    return out


def _session_times(plan: Plan, anchor: float, rng: np.random.Generator) -> list[tuple[int, str, float]]:
    out = []
    for day in range(min(N_DAYS, plan.last_day)):
        week, dow = divmod(day, 7)
        for kind, days, hours in (
            ("walk", plan.walks, (14.0, 20.0)),
            ("stretch", plan.stretches, (2.0, 10.0)),
        ):
            if dow in days:
                # study day N_DAYS - 1 is the day before the anchor; sessions keep >= 2 h off day boundaries
                out.append((day, kind, anchor - (N_DAYS - day) * DAY_S + (24.0 - rng.uniform(*hours)) * 3600))
    return sorted(out, key=lambda x: x[2])


def _exercise_session(store: LocalStore, plan: Plan, t0: float, acc: dict[str, list]) -> int:
    """A guided programme (glute bridges with one arching rep, knee-to-chest holds) processed by the session
    pipeline with the programme runner and published like every session; returns the points queued."""
    from hipback.ingest.programme import parse_programme
    from hipback.processing.exercises import ProgrammeRunner
    from hipback.processing.pipeline import SessionProcessor
    from hipback.simulator import SensorSpec
    from hipback.simulator.exercises import ExerciseSet, simulate_programme

    placements = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")
    patient = VirtualPatient(patient_id=plan.pid, peak_hip_extension_left_deg=plan.left + 2 * plan.per_week,
                             peak_hip_extension_right_deg=plan.right + 2 * plan.per_week)
    sim = simulate_programme(
        [ExerciseSet("glute_bridge", None, 4, faults=(1,)),
         ExerciseSet("knee_to_chest_double", None, 2, hold_s=8.0)],
        seed=7, patient=patient, sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in placements],
        start_utc=t0,
    )
    prog = parse_programme({"responder": "flexion", "exercises": [
        {"name": "glute_bridge", "reps": 3}, {"name": "knee_to_chest_double", "holds": 2, "hold_s": 8}]})
    rec = sim.recording
    runner = ProgrammeRunner(programme=prog.items, worn=frozenset(rec.streams), catalogue=prog.catalogue)
    proc = SessionProcessor({p: s.kind for p, s in rec.streams.items()},
                            {p: s.rate_hz for p, s in rec.streams.items()}, CONFIG, exercises=runner)
    for stream in rec.streams.values():
        proc.feed(stream)
    res = proc.finish()
    sid = f"{plan.pid}-programme-17"
    store.open_session(plan.pid, {"start_utc": t0}, session_id=sid)
    n = publish_session(store, sid, res, plan.pid, t0, now_s=t0 + 3600.0,
                        holds_prescribed_per_week=HOLDS_PER_WEEK)
    store.close_session(sid, t0 + float(res.angles.t[-1]))
    _keep(acc, res, t0)
    return n


def _keep(acc: dict[str, list], res: Any, t0: float) -> None:
    """The processed results of one session, kept for an independent PatientProgress."""
    for s in res.strides:
        acc["st_t"].append(t0 + s.t_start)
        acc["st_side"].append(s.side)
        acc["st_ext"].append(math.degrees(s.peak_hip_extension_rad))
        acc["st_comp"].append(s.lumbar_compensation_index)
    for h in res.holds:
        acc["h_t"].append(t0 + h.t_start)
        acc["h_done"].append(h.correct_s >= HOLD_S)
    acc["s_t"].append(t0)
    acc["s_sit"].append(sum(b.duration_s for b in res.activity if b.label == "sitting"))


def build(store: LocalStore, anchor: float) -> tuple[dict, dict, dict, int, int]:
    rng = np.random.default_rng(20261121)
    progress_in: dict[str, dict[str, list]] = {}
    truth: dict[str, dict[str, Any]] = {}
    latest: dict[str, dict[str, str]] = {}
    queued = n_sessions = 0
    seed = 100
    for plan in PLANS:
        acc: dict[str, list] = {
            k: [] for k in ("st_t", "st_side", "st_ext", "st_comp", "h_t", "h_done", "s_t", "s_sit")
        }
        tr: dict[str, list] = {"t": [], "side": [], "ext": []}
        battery = 100.0
        times = _session_times(plan, anchor, rng)
        last_stretch = max((d for d, k, _ in times if k == "stretch"), default=-1)
        for day, kind, t0 in times:
            # the trend grows day by day (not in weekly steps: a 14-day baseline made of two weekly levels
            # has its median on the edge between them, where one stride more or less moves it by the step)
            trend = plan.per_week * day / 7.0
            patient = VirtualPatient(
                patient_id=plan.pid,
                peak_hip_extension_left_deg=plan.left + trend,
                peak_hip_extension_right_deg=plan.right + trend,
                stretch_hip_extension_left_deg=15.0,  # above the 10 deg target of a correct hold
                stretch_hip_extension_right_deg=16.0,
            )
            if kind == "walk":
                scenario = WALK
            else:
                forced = plan.pid == REFERENCE and day == last_stretch  # every stretch panel has rows
                arching = (("right", 1),) if rng.random() < 0.3 or forced else ()
                scenario = stretch_scenario(arching)
            seed += 1
            sim = simulate(scenario, seed, patient, start_utc=t0)
            res = process_recording(sim.recording, CONFIG)
            sid = f"{plan.pid}-{kind}-{day:02d}"
            store.open_session(
                plan.pid,
                {"start_utc": t0, "prescription": {"holds_per_side": HOLDS_PER_SIDE, "hold_s": HOLD_S}},
                session_id=sid,
            )
            battery = battery - 6.0 if battery > 30 else 100.0
            queued += publish_session(
                store,
                sid,
                res,
                plan.pid,
                t0,
                _stats(sim, plan.pid, battery),
                now_s=t0 + 3600.0,
                holds_prescribed_per_week=HOLDS_PER_WEEK,
            )
            store.close_session(sid, t0 + float(res.angles.t[-1]))
            n_sessions += 1
            latest.setdefault(plan.pid, {})[kind] = sid
            _keep(acc, res, t0)
            for ts in sim.truth.strides:
                if ts.steady:
                    tr["t"].append(t0 + ts.t_initial_contact)
                    tr["side"].append(ts.side)
                    tr["ext"].append(math.degrees(ts.peak_hip_extension_rad))
        if plan.pid == REFERENCE:  # a guided programme in week 2 (outside the baseline and 7-day windows)
            queued += _exercise_session(store, plan, anchor - (N_DAYS - 17) * DAY_S + 10 * 3600.0, acc)
            n_sessions += 1
        queued += publish_patient_status(
            store, plan.pid, now_s=anchor, holds_prescribed_per_week=HOLDS_PER_WEEK
        )
        progress_in[plan.pid] = acc
        truth[plan.pid] = {k: np.asarray(v) for k, v in tr.items()}
    return progress_in, truth, latest, n_sessions, queued


@pytest.fixture(scope="module")
def cohort(influxd, tmp_path_factory) -> Cohort:
    db = influxd.create_database()
    anchor = float(math.floor(time.time()))
    timings = {}
    with LocalStore(tmp_path_factory.mktemp("cohort") / "store.sqlite", synchronous="NORMAL") as store:
        t = time.perf_counter()
        acc, truth, latest, n_sessions, queued = build(store, anchor)
        timings["simulate+process+publish"] = time.perf_counter() - t
        t = time.perf_counter()
        worker = SyncWorker(store, InfluxWriter(influxd.url, db), owns_writer=True)
        report = worker.sync_once()
        worker.stop(final_sync=False)
        timings["sync"] = time.perf_counter() - t
        assert report.delivered == queued and report.pending == 0 and report.set_aside == 0
    progress = {}
    for pid, a in acc.items():
        progress[pid] = PatientProgress().compute(
            now_s=anchor,
            stride_t_s=a["st_t"],
            stride_side=a["st_side"],
            stride_peak_ext_deg=a["st_ext"],
            stride_compensation=a["st_comp"],
            hold_t_s=a["h_t"],
            hold_completed=a["h_done"],
            session_t_s=a["s_t"],
            session_sitting_s=a["s_sit"],
            holds_prescribed_per_window=HOLDS_PER_WEEK,
        )
    yield Cohort(db, anchor, progress, truth, latest, n_sessions, queued, timings)
    influxd.drop_database(db)


def test_cohort_shape(influxd, cohort):
    """At least 5 patients over 4 weeks, 2-4 sessions a week, everything delivered, the designed trends."""
    print(f"{cohort.sessions} sessions, {cohort.queued} points, timings {cohort.timings}")
    assert cohort.sessions >= 5 * N_WEEKS * 2
    counts = {}
    for m in ("strides", "holds", "sessions", "activity", "angles", "device_status", "patient_status",
              "posture_time", "exercise_reps", "exercise_holds"):
        series = run_query(influxd.url, cohort.db, f'SELECT * FROM "{m}"')
        counts[m] = sum(len(s["values"]) for s in series)
    assert sum(counts.values()) == cohort.queued  # every queued point arrived, none twice
    assert counts["sessions"] == cohort.sessions
    span = run_query(influxd.url, cohort.db, 'SELECT first("duration_s"), last("duration_s") FROM "sessions"')
    first, last = span[0]["values"][0][0], cohort.anchor
    assert (last - first) > (N_WEEKS - 1) * 7 * DAY_S
    pr = cohort.progress
    assert pr["c03"].flag_decline_ and not pr["c01"].flag_decline_ and not pr["c02"].flag_decline_
    assert pr["c04"].flag_no_session_ and not pr["c01"].flag_no_session_
    assert pr["c05"].flag_low_adherence_ and not pr["c01"].flag_low_adherence_
    assert pr["c01"].change_from_baseline_deg_["left"] > 2.0


def test_headline_numbers_equal_processing_and_truth(influxd, cohort):
    """7-day peak hip extension per side, change from baseline and adherence from the dashboards' own
    queries equal PatientProgress on the processed results, and agree with the simulated truth."""
    queries = headline_queries(influxd.url, cohort.db)
    assert set(queries[-1]) == {p.pid for p in PLANS}
    compared_truth = 0
    for plan in PLANS:
        pr = cohort.progress[plan.pid]
        by_side, change_row = assert_patient_headlines(influxd.url, cohort.db, queries, plan.pid, pr)
        tr = cohort.truth[plan.pid]
        for side in ("left", "right"):
            # the simulated truth: the same definitions on the virtual patient's true steady strides
            on = tr["side"] == side
            recent = on & (tr["t"] > cohort.anchor - 7 * DAY_S)
            base = on & (tr["t"] < tr["t"].min() + 14 * DAY_S)
            if recent.any():
                true_7d = float(np.median(tr["ext"][recent]))
                assert by_side[side] == pytest.approx(true_7d, abs=2.0), (plan.pid, side)
                true_change = true_7d - float(np.median(tr["ext"][base]))
                assert change_row[side] == pytest.approx(true_change, abs=2.0), (plan.pid, side)
                compared_truth += 1
    assert compared_truth == 8  # c04 has no strides in the last 7 days


def test_adherence_agrees_with_the_simulated_holds(influxd, cohort):
    """Completed holds in the last 7 days: every simulated hold without arching lasts 6.5 s > 5 s, so each
    is completed; an arching one may not be. Processing must find them (nothing invented)."""
    for plan in PLANS:
        pr = cohort.progress[plan.pid]
        recent_days = [d for d in range(N_DAYS - 7, min(N_DAYS, plan.last_day)) if d % 7 in plan.stretches]
        simulated_holds = 2 * HOLDS_PER_SIDE * len(recent_days)
        assert pr.holds_done_7d_ <= simulated_holds, plan.pid
        assert pr.holds_done_7d_ >= simulated_holds - len(recent_days), plan.pid  # at most one arching each


def test_every_dashboard_and_alert_query_runs(influxd, cohort):
    """Every panel, variable and alert query runs on the processed cohort; each dashboard's panels return
    rows for the reference patient (the patient who does everything)."""
    import glob
    from pathlib import Path

    empty = []
    for path in sorted(glob.glob(str(Path(__file__).resolve().parents[1] / "dashboards" / "*.json"))):
        dash = load_dashboard(Path(path).name)
        names = {v["name"] for v in dash["templating"]["list"]}
        variables: dict[str, Any] = {}
        if "patient" in names:
            variables["patient"] = [REFERENCE] if dash["uid"] == "hipback-overview" else REFERENCE
        if "side" in names:
            variables["side"] = ".*"
        if "session" in names:
            kind = "stretch" if dash["uid"] == "hipback-stretch" else "walk"
            variables["session"] = (
                ".*" if dash["uid"] == "hipback-devices" else cohort.latest[REFERENCE][kind]
            )
        for where, q in all_queries(dash):
            if not run_query(influxd.url, cohort.db, substitute(q, variables, "time >= now() - 35d")):
                empty.append(f"{dash['uid']}: {where}")
    for uid, q, rng_s in rule_queries():
        assert run_query(influxd.url, cohort.db, substitute(q, {}, f"time > now() - {rng_s}s")), uid
    assert not empty, empty


def test_the_exercise_dashboard_shows_the_processed_programme(influxd, cohort):
    """The reference patient's guided programme, processed and published: the per-session tables say 4 glute
    bridges done, 3 counted (one arched) against 3 prescribed, and 2 knee-to-chest holds counted of 2."""
    from tests.test_dashboards import panel_by_title

    dash = load_dashboard("exercise-programme.json")
    sid = f"{REFERENCE}-programme-17"
    got: dict[str, dict[str, Any]] = {}
    for title in ("Reps per session: done, counted and prescribed, per exercise and side",
                  "Holds per session: done, counted and prescribed, per exercise and side"):
        for t in panel_by_title(dash, title)["targets"]:
            for series in run_query(influxd.url, cohort.db,
                                    substitute(t["query"], {"patient": REFERENCE}, "time >= now() - 35d")):
                if series["tags"]["session"] == sid:
                    row = got.setdefault(series["tags"]["exercise"], {})
                    row.update(dict(zip(series["columns"][1:], series["values"][0][1:], strict=True)))
    assert {k: v for k, v in got["glute_bridge"].items() if k != "correct form s"} == {
        "reps done": 4, "reps counted": 3, "reps prescribed per set": 3, "sets": 1}
    assert {k: v for k, v in got["knee_to_chest_double"].items() if k != "correct form s"} == {
        "holds done": 2, "holds counted": 2, "holds prescribed per set": 2, "sets": 1}
    assert got["knee_to_chest_double"]["correct form s"] == pytest.approx(16.0, abs=1.5)

"""Every dashboard and alert query runs against a real ``influxd`` holding a virtual cohort, and the
headline numbers the clinician sees equal what :mod:`hipback.processing.progress` computed.

The cohort: 5 virtual patients over 5 weeks of walks and stretch sessions, written through the
schema (:mod:`hipback.ingest.influx.schema`) and the writer into a fresh database. Per-session rows are
synthesised deterministically here with a known per-patient trend (one improves, one is stable, one
declines, one stopped a week ago, one rarely stretches); the ``patient_status`` history is computed
day by day by :class:`hipback.processing.progress.PatientProgress`, as a gateway would.

Grafana's macros are substituted the way Grafana does for InfluxQL: ``$timeFilter`` (the dashboard
range), ``$__interval``, template variables inside ``/^$var$/`` regexes as regex-escaped single
values, ``(a|b)`` multi-values or the ``.*`` "All" value.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from hipback.ingest.influx import schema
from hipback.processing.progress import DAY_S, PatientProgress, week_start

ROOT = Path(__file__).resolve().parents[1]
DASH_DIR = ROOT / "dashboards"
RULES = DASH_DIR / "provisioning" / "alerting" / "hipback-rules.yaml"
DASHBOARD_FILES = sorted(p.name for p in DASH_DIR.glob("*.json"))
N_DAYS = 35
HOLDS_PER_WEEK = 3 * 2 * 7  # prescription: 3 reps per side, both sides, every day
TIME_FILTER = "time >= now() - 42d"  # the whole cohort (35 days) lies inside


# --- the virtual cohort ---------------------------------------------------------------------------


@dataclass
class PatientPlan:
    pid: str
    base_left: float  # peak hip extension at day 0 of the study, deg
    base_right: float
    slope_deg_per_day: float  # trend after day 14 (negative = decline)
    walk_prob: float
    stretch_prob: float
    last_active_day: int = N_DAYS  # sessions only on study days < this (a patient who stopped)
    rows: dict[str, list[Any]] = field(default_factory=dict)


PLANS = [
    PatientPlan("p01", 8.0, 10.0, +0.25, 0.8, 0.95),  # improves, adherent
    PatientPlan("p02", 14.0, 13.0, 0.0, 0.7, 0.85),  # stable
    PatientPlan("p03", 13.0, 12.0, -0.6, 0.8, 0.8),  # declines beyond the MDC
    PatientPlan("p04", 10.0, 9.0, 0.0, 0.8, 0.8, last_active_day=28),  # stopped 7 days ago
    PatientPlan("p05", 11.0, 12.5, +0.05, 0.8, 0.25),  # walks, rarely stretches
]
REFERENCE = "p01"  # has every kind of data, including an arching hold in the latest stretch session


@dataclass
class Cohort:
    db: str
    anchor_s: float
    strides: dict[str, dict[str, np.ndarray]]
    holds: dict[str, dict[str, np.ndarray]]
    sessions: dict[str, list[dict[str, Any]]]
    progress: dict[str, PatientProgress]
    latest: dict[str, dict[str, str]]  # patient -> kind -> latest session id
    n_points: int
    posture: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # patient -> posture_time rows


def _study_day_to_time(anchor: float, day: int, offset_h: float) -> float:
    """Study day 0 is 34 days before the anchor; sessions sit 2-20 h before a day boundary of the anchor."""
    return anchor - (N_DAYS - 1 - day) * DAY_S - offset_h * 3600.0


def build_cohort(anchor: float) -> tuple[list, dict]:
    rng = np.random.default_rng(20261121)
    points: list = []
    data: dict[str, Any] = {"strides": {}, "holds": {}, "sessions": {}, "latest": {}, "posture": {}}
    for plan in PLANS:
        st_t, st_side, st_ext, st_comp = [], [], [], []
        h_t, h_done = [], []
        sessions: list[dict[str, Any]] = []
        latest: dict[str, str] = {}
        battery = 100.0
        for day in range(N_DAYS):
            if day >= plan.last_active_day:
                continue
            trend = plan.slope_deg_per_day * max(0, day - 14)
            for kind, prob, offset_h in (
                ("walk", plan.walk_prob, rng.uniform(12, 20)),
                ("stretch", plan.stretch_prob, rng.uniform(2, 10)),
            ):
                forced = plan.pid == REFERENCE and day == plan.last_active_day - 1
                if not forced and rng.random() > prob:
                    continue
                t0 = _study_day_to_time(anchor, day, offset_h)
                sid = f"{plan.pid}-{kind}-{day:02d}"
                latest[kind] = sid
                row: dict[str, Any] = {"t_s": t0, "session": sid, "kind": kind}
                if kind == "walk":
                    strides = []
                    for side, base in (("left", plan.base_left), ("right", plan.base_right)):
                        n = 60
                        ext = base + trend + rng.normal(0, 2.0, n)
                        cad = 104 + rng.normal(0, 3, n)
                        comp = np.clip(0.35 - 0.012 * (ext - 10) + rng.normal(0, 0.04, n), 0, 1)
                        for i in range(n):
                            strides.append(
                                {
                                    "t_s": t0 + 1.15 * i + (0.0 if side == "left" else 0.57),
                                    "side": side,
                                    "stride_no": i,
                                    "peak_hip_extension_deg": ext[i],
                                    "hip_range_deg": 40 + rng.normal(0, 2),
                                    "stride_time_s": 120.0 / cad[i],
                                    "cadence_spm": cad[i],
                                    "pelvic_tilt_at_peak_ext_deg": 4 + 0.3 * comp[i] * 10,
                                    "pelvic_tilt_excursion_deg": 3 + rng.normal(0, 0.4),
                                    "compensation_index": comp[i],
                                    "extra_column_ignored": 1,
                                }
                            )
                        st_t += [s["t_s"] for s in strides[-n:]]
                        st_side += [side] * n
                        st_ext += list(ext)
                        st_comp += list(comp)
                    points += schema.stride_points(strides, plan.pid, sid)
                    sitting = float(rng.uniform(1800, 7200))
                    row.update(
                        duration_s=300.0,
                        walking_s=140.0,
                        standing_s=160.0,
                        sitting_s=sitting,
                        lying_s=0.0,
                        strides=len(strides),
                        peak_hip_extension_left_deg=float(
                            np.median([s["peak_hip_extension_deg"] for s in strides if s["side"] == "left"])
                        ),
                        peak_hip_extension_right_deg=float(
                            np.median([s["peak_hip_extension_deg"] for s in strides if s["side"] == "right"])
                        ),
                        compensation_index=float(np.median([s["compensation_index"] for s in strides])),
                        cadence_spm=float(np.median([s["cadence_spm"] for s in strides])),
                        calibration_quality=float(rng.uniform(0.8, 1.0)),
                    )
                    points += schema.activity_points(
                        [
                            {"t_s": t0, "activity": "walking", "duration_s": 140.0},
                            {"t_s": t0 + 140, "activity": "standing", "duration_s": 160.0},
                            {"t_s": t0 + 300, "activity": "sitting", "duration_s": sitting},
                        ],
                        plan.pid,
                        sid,
                    )
                else:
                    holds = []
                    correct_total = 0.0
                    for side in ("left", "right"):
                        for rep in range(1, 4):
                            ht = t0 + 45.0 * (len(holds))
                            dur = 35.0
                            correct = float(min(dur, 30.0 * rng.uniform(0.95, 1.2)))
                            arching = bool(rng.random() < 0.15) or (forced and rep == 2 and side == "left")
                            holds.append(
                                {
                                    "t_s": ht,
                                    "side": side,
                                    "exercise": "kneeling_hip_flexor",
                                    "rep": rep,
                                    "duration_s": dur,
                                    "correct_s": correct,
                                    "target_s": 30.0,
                                    "peak_hip_extension_deg": 12 + trend + rng.normal(0, 2),
                                    "mean_hip_extension_deg": 9 + trend + rng.normal(0, 2),
                                    "pelvic_tilt_drift_deg": 6.5 if arching else float(rng.uniform(0, 4)),
                                    "arching": arching,
                                }
                            )
                            correct_total += correct
                    points += schema.hold_points(holds, plan.pid, sid)
                    h_t += [h["t_s"] for h in holds]
                    h_done += [h["correct_s"] >= h["target_s"] for h in holds]
                    row.update(
                        duration_s=300.0,
                        walking_s=0.0,
                        standing_s=60.0,
                        sitting_s=0.0,
                        lying_s=0.0,
                        holds_done=sum(h["correct_s"] >= h["target_s"] for h in holds),
                        holds_prescribed=6,
                        correct_time_s=correct_total,
                        prescribed_time_s=180.0,
                        calibration_quality=float(rng.uniform(0.8, 1.0)),
                    )
                sessions.append(row)
                battery = battery - 7 if battery > 30 else 100.0
                points += schema.device_status_points(
                    [
                        {
                            "t_s": t0 + 300,
                            "placement": pl,
                            "device": f"DOT-{plan.pid.upper()}{k}",
                            "battery_pct": battery,
                            "packet_loss_pct": float(rng.uniform(0, 2)),
                            "rate_hz": 60 - float(rng.uniform(0, 0.5)),
                            "reconnects": int(rng.integers(0, 3)),
                            "rejected_packets": int(rng.integers(0, 4)),
                        }
                        for k, pl in enumerate(("pelvis", "thigh_left", "thigh_right"))
                    ],
                    plan.pid,
                    sid,
                )
        points += schema.session_points(sessions, plan.pid)
        # angles of the latest walk, 60 Hz samples averaged to 10 Hz
        last_walk = next(s for s in reversed(sessions) if s["kind"] == "walk")
        t = last_walk["t_s"] + np.arange(0, 300, 1 / 60)
        phase = 2 * np.pi * (t - t[0]) / 1.15
        points += schema.angle_points(
            t,
            {
                "hip_flexion_left_deg": 10 + 22 * np.sin(phase),
                "hip_flexion_right_deg": 10 - 22 * np.sin(phase),
                "pelvic_tilt_deg": 2 * np.sin(2 * phase),
                "lumbar_flexion_deg": -3 + np.sin(2 * phase),
            },
            plan.pid,
            last_walk["session"],
        )
        # exercise programme (issue 10): bridges and knee-to-chest holds in each stretch session, one arching
        # rep per session; an own random stream, so the rest of the cohort is unchanged
        ex_rng = np.random.default_rng([20261121, PLANS.index(plan)])
        for sess in (x for x in sessions if x["kind"] == "stretch"):
            ex_rows: list[dict[str, Any]] = []
            for i in range(10):
                bad = i == 3
                ex_rows.append(
                    {
                        "t_s": sess["t_s"] + 400 + 4 * i,
                        "kind": "rep",
                        "exercise": "glute_bridge",
                        "work_side": "both",
                        "rep": i + 1,
                        "duration_s": 3.0,
                        "primary_peak_deg": 35 + ex_rng.normal(0, 3),
                        "range_deg": 36.0,
                        "correct_s": 1.0 if bad else 3.0,
                        "target_met": True,
                        "counted": not bad,
                        "rules_broken": "lumbar_extension" if bad else "",
                        "cue": "keep your back flat, lift with your buttocks" if bad else "",
                        "set_no": 1,
                        "prescribed": 10,
                    }
                )
            for i in range(2):
                ex_rows.append(
                    {
                        "t_s": sess["t_s"] + 480 + 30 * i,
                        "kind": "hold",
                        "exercise": "knee_to_chest_double",
                        "work_side": "both",
                        "rep": i + 1,
                        "hold_s": 20 + ex_rng.normal(0, 1),
                        "target_s": 20.0,
                        "correct_s": 19.5,
                        "primary_peak_deg": 115.0,
                        "range_deg": 70.0,
                        "too_short": False,
                        "counted": True,
                        "rules_broken": "",
                        "cue": "",
                        "set_no": 2,
                        "prescribed": 2,
                    }
                )
            points += schema.exercise_points(ex_rows, plan.pid, sess["session"])
        # posture time of every session (responder profiles): an own random stream as well
        po_rng = np.random.default_rng([20261121, 99, PLANS.index(plan)])
        posture = []
        for sess in sessions:
            row = {"t_s": sess["t_s"], "sitting_s": sess["sitting_s"],
                   "bent_forward_s": float(po_rng.uniform(0, 600)),
                   "lumbar_extension_s": float(po_rng.uniform(0, 240)), "measured_s": sess["duration_s"]}
            posture.append(row)
            points.append(schema.posture_time_point(row, plan.pid, sess["session"]))
        data["posture"][plan.pid] = posture
        data["strides"][plan.pid] = {
            "t": np.array(st_t),
            "side": np.array(st_side),
            "ext": np.array(st_ext),
            "comp": np.array(st_comp),
        }
        data["holds"][plan.pid] = {"t": np.array(h_t), "done": np.array(h_done, dtype=bool)}
        data["sessions"][plan.pid] = sessions
        data["latest"][plan.pid] = latest
    return points, data


def compute_progress(anchor: float, data: dict) -> tuple[list, dict[str, PatientProgress]]:
    """patient_status day by day (as a gateway computes it) and the final PatientProgress per patient."""
    points, final = [], {}
    for plan in PLANS:
        st, ho, se = data["strides"][plan.pid], data["holds"][plan.pid], data["sessions"][plan.pid]
        for d in range(N_DAYS - 1, -1, -1):
            now = anchor - d * DAY_S
            prog = PatientProgress().compute(
                now_s=now,
                stride_t_s=st["t"],
                stride_side=st["side"],
                stride_peak_ext_deg=st["ext"],
                stride_compensation=st["comp"],
                hold_t_s=ho["t"],
                hold_completed=ho["done"],
                session_t_s=[s["t_s"] for s in se],
                session_sitting_s=[s["sitting_s"] for s in se],
                holds_prescribed_per_window=HOLDS_PER_WEEK,
            )
            points.append(schema.patient_status_point(plan.pid, now, prog.status_fields()))
        final[plan.pid] = prog
    return points, final


def write_through_writer(url: str, db: str, points: list) -> None:
    """Send the points through hipback's InfluxDB writer (batched, gzip line protocol to /write)."""
    from hipback.ingest.influx.lineprotocol import encode_lines
    from hipback.ingest.influx.writer import InfluxWriter

    with InfluxWriter(url, db) as writer:
        writer.send_lines(encode_lines(points))
        assert not writer.rejected, writer.rejected[:1]


@pytest.fixture(scope="module")
def cohort(influxd) -> Cohort:
    db = influxd.create_database()
    anchor = math.floor(time.time() / 3600.0) * 3600.0
    points, data = build_cohort(anchor)
    status_points, final = compute_progress(anchor, data)
    points += status_points
    write_through_writer(influxd.url, db, points)
    c = Cohort(
        db, anchor, data["strides"], data["holds"], data["sessions"], final, data["latest"], len(points),
        data["posture"],
    )
    yield c
    influxd.drop_database(db)


# --- Grafana macro substitution and query helpers ------------------------------------------------


def _regex_escape(value: str) -> str:
    """Grafana's InfluxDB regex escaping of a single template value."""
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(), value)


def substitute(
    query: str, variables: dict[str, str | list[str]], time_filter: str = TIME_FILTER, interval: str = "1h"
) -> str:
    """Replace Grafana's macros and template variables in an InfluxQL query as Grafana does."""
    q = query.replace("$timeFilter", time_filter).replace("$__interval", interval)

    def fmt(value: str | list[str]) -> str:
        if value == "$__all" or value == ".*":
            return ".*"
        if isinstance(value, list):
            return "(" + "|".join(_regex_escape(v) for v in value) + ")"
        return _regex_escape(value)

    for name, value in variables.items():
        q = q.replace(f"/^${name}$/", f"/^{fmt(value)}$/").replace(f"/^${{{name}}}$/", f"/^{fmt(value)}$/")
        plain = value if isinstance(value, str) else value[0]
        q = q.replace(f"${{{name}}}", plain).replace(f"${name}", plain)
    assert "$" not in q.replace("$/", ""), f"unsubstituted macro in {q!r}"
    return q


def run_query(url: str, db: str, q: str) -> list[dict[str, Any]]:
    """The series of one InfluxQL statement (raises on any error, like Grafana shows it)."""
    resp = httpx.post(f"{url}/query", data={"q": q, "db": db, "epoch": "s"}, timeout=30.0)
    assert resp.status_code == 200, f"{resp.status_code} {resp.text} for {q}"
    results = resp.json()["results"]
    assert len(results) == 1, q
    assert "error" not in results[0], f"{results[0]['error']} for {q}"
    return results[0].get("series", [])


def load_dashboard(name: str) -> dict[str, Any]:
    return json.loads((DASH_DIR / name).read_text())


def panels_of(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out += p.get("panels", [])
    return out


def panel_by_title(dash: dict[str, Any], title: str) -> dict[str, Any]:
    matches = [p for p in panels_of(dash) if p.get("title") == title]
    assert len(matches) == 1, f"no single panel {title!r} in {dash['title']}"
    return matches[0]


def variables_for(dash: dict[str, Any], c: Cohort, patient: str | list[str], side: str) -> dict[str, Any]:
    names = {v["name"] for v in dash["templating"]["list"]}
    out: dict[str, Any] = {}
    if "patient" in names:
        out["patient"] = patient
    if "side" in names:
        out["side"] = side
    if "session" in names:
        p = patient if isinstance(patient, str) else patient[0]
        kind = "stretch" if dash["uid"] == "hipback-stretch" else "walk"
        out["session"] = ".*" if dash["uid"] == "hipback-devices" else c.latest[p][kind]
    return out


def all_queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, query) for every panel target and every query variable of a dashboard."""
    out = [(f"variable {v['name']}", v["query"]) for v in dash["templating"]["list"] if v["type"] == "query"]
    for p in panels_of(dash):
        for t in p.get("targets", []):
            out.append((f"panel {p['title']!r} {t['refId']}", t["query"]))
    return out


def rule_queries() -> list[tuple[str, str, int]]:
    """(rule uid, InfluxQL, relative range in s) of every alert rule's data query."""
    doc = yaml.safe_load(RULES.read_text())
    out = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            for d in rule["data"]:
                if d["datasourceUid"] != "__expr__":
                    out.append((rule["uid"], d["model"]["query"], int(d["relativeTimeRange"]["from"])))
    return out


def series_values(series: list[dict[str, Any]], column: str) -> dict[tuple, list]:
    """tags tuple -> values of ``column`` (one entry per row)."""
    out = {}
    for s in series:
        i = s["columns"].index(column)
        out[tuple(sorted(s.get("tags", {}).items()))] = [row[i] for row in s["values"]]
    return out


# --- tests --------------------------------------------------------------------------------------


def test_cohort_reached_influxdb(influxd, cohort):
    """All points arrived (counted by measurement) and the cohort has the designed shape."""
    counts = {}
    for m, col in (
        ("strides", "peak_hip_extension_deg"),
        ("holds", "duration_s"),
        ("sessions", "duration_s"),
        ("patient_status", "mdc_deg"),
        ("angles", "pelvic_tilt_deg"),
        ("device_status", "battery_pct"),
        ("activity", "duration_s"),
        ("exercise_reps", "primary_peak_deg"),
        ("exercise_holds", "hold_s"),
        ("posture_time", "sitting_s"),
    ):
        series = run_query(influxd.url, cohort.db, f'SELECT count("{col}") FROM "{m}"')
        counts[m] = series[0]["values"][0][1] if series else 0
    expected_strides = sum(v["t"].size for v in cohort.strides.values())
    assert counts["strides"] == expected_strides > 5 * 4 * 7 * 2 * 30
    assert counts["holds"] == sum(v["t"].size for v in cohort.holds.values())
    assert counts["sessions"] == sum(len(v) for v in cohort.sessions.values())
    assert counts["patient_status"] == len(PLANS) * N_DAYS
    assert sum(counts.values()) == cohort.n_points
    # the designed differences show up in what processing computed
    pr = cohort.progress
    assert pr["p03"].flag_decline_ and not pr["p01"].flag_decline_ and not pr["p02"].flag_decline_
    assert pr["p04"].flag_no_session_ and not any(
        pr[p].flag_no_session_ for p in ("p01", "p02", "p03", "p05")
    )
    assert (
        pr["p05"].flag_low_adherence_ and pr["p04"].flag_low_adherence_ and not pr["p01"].flag_low_adherence_
    )
    assert pr["p01"].change_from_baseline_deg_["left"] > 2.0


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_every_dashboard_query_runs_and_returns_rows(influxd, cohort, name):
    dash = load_dashboard(name)
    queries = all_queries(dash)
    assert queries, f"{name} has no queries"
    empty_for_reference = []
    for pid in [p.pid for p in PLANS]:
        for side in (".*", "left", ["left", "right"]) if pid == REFERENCE else (".*",):
            variables = variables_for(dash, cohort, pid if dash["uid"] != "hipback-overview" else [pid], side)
            for where, q in queries:
                series = run_query(influxd.url, cohort.db, substitute(q, variables))  # no error for anyone
                if pid == REFERENCE and not series:
                    empty_for_reference.append(f"{where} (side={side})")
    assert not empty_for_reference, f"{name}: queries without rows for {REFERENCE}: {empty_for_reference}"


def test_overview_all_patients_one_row_each(influxd, cohort):
    dash = load_dashboard("clinician-overview.json")
    table = panel_by_title(dash, "Patients")
    for value in ("$__all", [p.pid for p in PLANS]):
        variables = {"patient": value}
        for t in table["targets"]:
            series = run_query(
                influxd.url, cohort.db, substitute(t["query"], variables, "time >= now() - 7d")
            )
            assert sorted(s["tags"]["patient"] for s in series) == sorted(p.pid for p in PLANS)
    for _, q in all_queries(dash):
        assert run_query(influxd.url, cohort.db, substitute(q, {"patient": "$__all"}))


def _close(a: float | None, b: float, tol: float = 1e-6) -> bool:
    if a is None:
        return not math.isfinite(b)
    return math.isfinite(b) and abs(a - b) <= tol * max(1.0, abs(b))


def headline_queries(url: str, db: str) -> tuple[str, str, str, str, dict[str, dict]]:
    """The headline panels' queries (7-day peak extension, change from baseline, adherence, completed
    holds) and the clinician overview's patient table as run against ``db`` (patient -> column -> value)."""
    progress = load_dashboard("patient-progress.json")
    overview = load_dashboard("clinician-overview.json")
    q7 = panel_by_title(progress, "7-day peak hip extension")["targets"][0]["query"]
    qchange = panel_by_title(progress, "Change from baseline")["targets"][0]["query"]
    qadh = panel_by_title(progress, "Adherence (7 days)")["targets"][0]["query"]
    qholds = panel_by_title(progress, "Completed holds (7 days) vs prescribed")["targets"][0]["query"]
    qtable = panel_by_title(overview, "Patients")["targets"][0]["query"]
    table = {
        s["tags"]["patient"]: dict(zip(s["columns"], s["values"][0], strict=True))
        for s in run_query(url, db, substitute(qtable, {"patient": "$__all"}, "time > now() - 7d"))
    }
    return q7, qchange, qadh, qholds, table


def assert_patient_headlines(url: str, db: str, queries: tuple, pid: str, pr) -> tuple[dict, dict]:
    """Assert that every headline the dashboards show for ``pid`` (7-day peak hip extension and change from
    baseline per side, in the progress panels and the overview row; adherence; completed holds; flags) equals
    ``pr`` (a computed PatientProgress). Returns the 7-day values by side and the change row as queried."""
    q7, qchange, qadh, qholds, table = queries
    seven = run_query(url, db, substitute(q7, {"patient": pid, "side": ".*"}))
    by_side = {s["tags"]["side"]: s["values"][0][1] for s in seven}
    change = run_query(url, db, substitute(qchange, {"patient": pid}))
    change_row = dict(zip(change[0]["columns"], change[0]["values"][0], strict=True))
    for side in ("left", "right"):
        assert _close(by_side.get(side), pr.peak_ext_7d_deg_[side]), (pid, side)
        assert _close(change_row.get(side), pr.change_from_baseline_deg_[side]), (pid, side)
        assert _close(table[pid][f"7-day peak ext {side}"], pr.peak_ext_7d_deg_[side]), (pid, side)
        assert _close(table[pid][f"change {side}"], pr.change_from_baseline_deg_[side]), (pid, side)
    adh = run_query(url, db, substitute(qadh, {"patient": pid}))
    assert _close(adh[0]["values"][0][1], pr.adherence_pct_), pid
    assert _close(table[pid]["adherence %"], pr.adherence_pct_), pid
    holds = run_query(url, db, substitute(qholds, {"patient": pid}))
    assert (holds[0]["values"][0][1] if holds else 0) == pr.holds_done_7d_, pid
    assert table[pid]["flag decline"] == pr.flag_decline_
    assert table[pid]["flag no session"] == pr.flag_no_session_
    assert table[pid]["flag low adherence"] == pr.flag_low_adherence_
    return by_side, change_row


def test_headline_numbers_equal_processing(influxd, cohort):
    """7-day peak hip extension, change from baseline, adherence and holds from the dashboards' own
    queries equal what processing.progress computed, for every patient and side."""
    queries = headline_queries(influxd.url, cohort.db)
    checked = 0
    for plan in PLANS:
        pr = cohort.progress[plan.pid]
        by_side, change_row = assert_patient_headlines(influxd.url, cohort.db, queries, plan.pid, pr)
        for side in by_side:
            # the raw 7-day median minus the stored baseline is the stored change
            assert _close(by_side[side] - pr.baseline_peak_ext_deg_[side], change_row[side])
            checked += 1
    assert checked >= 8  # p04 has no strides in the last 7 days: its 7-day values are absent on both sides


def test_weekly_trend_equals_processing(influxd, cohort):
    dash = load_dashboard("patient-progress.json")
    p = panel_by_title(dash, "Weekly peak hip extension vs baseline +/- MDC")
    q = next(t["query"] for t in p["targets"] if t["refId"] == "A")
    n_weeks = 0
    for plan in PLANS:
        series = run_query(influxd.url, cohort.db, substitute(q, {"patient": plan.pid, "side": ".*"}))
        got = {s["tags"]["side"]: {int(r[0]): r[1] for r in s["values"]} for s in series}
        for side in ("left", "right"):
            weeks, medians, counts = cohort.progress[plan.pid].weekly_peak_ext_deg_[side]
            assert set(got[side]) == {int(w) for w in weeks}
            for w, m in zip(weeks, medians, strict=True):
                assert got[side][int(w)] == pytest.approx(m, abs=1e-9)
            n_weeks += len(weeks)
            assert all(int(w) == int(week_start(w)) for w in weeks)
    assert n_weeks >= 5 * 2 * 5


def test_baseline_band_matches_definition(influxd, cohort):
    """The stored baseline is the median of the first 14 days' strides (checked with an independent query)."""
    for plan in PLANS:
        pr = cohort.progress[plan.pid]
        lo = math.floor(pr.baseline_start_s_ * 1e3) * 1_000_000  # the writer stores ms
        hi = int((pr.baseline_start_s_ + 14 * DAY_S) * 1e9)
        series = run_query(
            influxd.url,
            cohort.db,
            f'SELECT median("peak_hip_extension_deg") FROM "strides" WHERE "patient" = \'{plan.pid}\' '
            f'AND time >= {lo} AND time < {hi} GROUP BY "side"',
        )
        for s in series:
            assert s["values"][0][1] == pytest.approx(pr.baseline_peak_ext_deg_[s["tags"]["side"]], abs=1e-9)
        band = panel_by_title(
            load_dashboard("patient-progress.json"), "Weekly peak hip extension vs baseline +/- MDC"
        )
        qb = next(t["query"] for t in band["targets"] if t["refId"] == "B")
        rows = run_query(influxd.url, cohort.db, substitute(qb, {"patient": plan.pid}))[0]
        last = dict(zip(rows["columns"], rows["values"][-1], strict=True))
        assert last["left: baseline + MDC"] - last["left: baseline - MDC"] == pytest.approx(2 * 5.0)
        assert last["right: baseline"] == pytest.approx(pr.baseline_peak_ext_deg_["right"])


def test_alert_rules_fire_for_the_flagged_patients(influxd, cohort):
    """Each alert query runs, returns one series per patient, and its threshold picks the same patients
    as the flags processing computed."""
    doc = yaml.safe_load(RULES.read_text())
    rules = {r["uid"]: r for g in doc["groups"] for r in g["rules"]}
    flag_of = {
        "hipback-no-session": "flag_no_session_",
        "hipback-hip-extension-decline": "flag_decline_",
        "hipback-low-adherence": "flag_low_adherence_",
    }
    assert set(rules) == set(flag_of)
    for uid, q, rng_s in rule_queries():
        series = run_query(influxd.url, cohort.db, substitute(q, {}, f"time > now() - {rng_s}s"))
        values = {s["tags"]["patient"]: s["values"][-1][1] for s in series}
        assert set(values) == {p.pid for p in PLANS}, uid
        cond = next(d["model"] for d in rules[uid]["data"] if d["refId"] == rules[uid]["condition"])
        ev = cond["conditions"][0]["evaluator"]
        fire = {
            p
            for p, v in values.items()
            if v is not None and (v > ev["params"][0] if ev["type"] == "gt" else v < ev["params"][0])
        }
        expected = {p.pid for p in PLANS if getattr(cohort.progress[p.pid], flag_of[uid])}
        assert fire == expected, uid
        assert expected, f"the cohort should trigger {uid} for someone"


def test_exercise_tables_per_session_against_the_prescription(influxd, cohort):
    """The per-session tables: reps and holds done, counted and prescribed per exercise and side."""
    dash = load_dashboard("exercise-programme.json")
    sid = cohort.latest[REFERENCE]["stretch"]
    for title, expected in (
        ("Reps per session: done, counted and prescribed, per exercise and side",
         {"reps done": 10, "reps counted": 9, "reps prescribed per set": 10, "sets": 1,
          "correct form s": 28.0}),
        ("Holds per session: done, counted and prescribed, per exercise and side",
         {"holds done": 2, "holds counted": 2, "holds prescribed per set": 2, "sets": 1,
          "correct form s": 39.0}),
    ):
        got = {}
        for t in panel_by_title(dash, title)["targets"]:
            for series in run_query(influxd.url, cohort.db, substitute(t["query"], {"patient": REFERENCE})):
                if series["tags"]["session"] == sid:
                    got.update(dict(zip(series["columns"][1:], series["values"][0][1:], strict=True)))
        assert got == pytest.approx(expected), title


def _day(t: float) -> int:
    return int(t // DAY_S * DAY_S)


def test_posture_time_per_day_equals_the_sessions(influxd, cohort):
    """Sitting, bent forward and lumbar extension per day (minutes) are the sums of the day's sessions; the
    overview's 7-day table is their daily mean per patient."""
    dash = load_dashboard("exercise-programme.json")
    title = "Posture time per day: sitting, bent forward, lumbar extension"
    q = panel_by_title(dash, title)["targets"][0]["query"]
    for pid in (REFERENCE, "p05"):
        expected: dict[int, list[float]] = {}
        for r in cohort.posture[pid]:
            e = expected.setdefault(_day(r["t_s"]), [0.0, 0.0, 0.0])
            for i, k in enumerate(("sitting_s", "bent_forward_s", "lumbar_extension_s")):
                e[i] += r[k] / 60
        series = run_query(influxd.url, cohort.db, substitute(q, {"patient": pid}))
        got = {int(v[0]): v[1:] for v in series[0]["values"]}
        assert series[0]["columns"][1:] == ["sitting", "bent forward", "lumbar extension"]
        assert set(got) == set(expected) and len(got) > 10
        for day, values in expected.items():
            assert got[day] == pytest.approx(values), (pid, day)
    overview = load_dashboard("clinician-overview.json")
    q7 = panel_by_title(overview, "Posture time, last 7 days (minutes per day)")["targets"][0]["query"]
    rows = {s["tags"]["patient"]: s["values"][0][1:]
            for s in run_query(influxd.url, cohort.db, substitute(q7, {"patient": "$__all"}, "true"))}
    now = time.time()
    for plan in PLANS:
        recent = [r for r in cohort.posture[plan.pid] if r["t_s"] > now - 7 * DAY_S]
        if not recent:
            assert plan.pid not in rows  # stopped a week ago: nothing to show, not zeros
            continue
        keys = ("sitting_s", "bent_forward_s", "lumbar_extension_s")
        want = [sum(r[k] for r in recent) / 60 / 7 for k in keys]
        assert rows[plan.pid] == pytest.approx(want), plan.pid

# ruff: noqa: E501 - InfluxQL queries and panel definitions read best unbroken
"""Generate hipback's Grafana dashboards (``dashboards/*.json``) from one place.

Run ``python dashboards/generate.py`` after changing a query here; the test suite fails when the JSON
files differ from what this script produces, and runs every query against a real InfluxDB.

Conventions of the dashboards:

- Grafana 11+ JSON model, InfluxQL (raw queries) through an InfluxDB data source chosen by the
  ``datasource`` template variable (panels reference ``${datasource}``); the provisioned data source
  has uid ``hipback-influxdb``.
- Template variables ``patient`` (pseudonymous id), ``side`` (left/right, "All" = ``.*``) and, on the
  session dashboards, ``session``. Queries match them as regexes (``"patient" =~ /^$patient$/``), so
  multi-value and "All" selections work.
- Weekly buckets are Monday-aligned (``GROUP BY time(7d, 4d)``), the same weeks as
  ``hipback.processing.progress``. Angles are relative to the standing calibration of each session.
- Everything is a monitoring measure, not a diagnosis (docs/biomechanics.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DS = {"type": "influxdb", "uid": "${datasource}"}
SCHEMA_VERSION = 39
#: Kerrigan et al. 2001, peak hip extension at comfortable speed (docs/biomechanics.md, reference values).
YOUNG_MEAN, YOUNG_SD, ELDERLY_MEAN = 20.4, 4.0, 14.3

P = '"patient" =~ /^$patient$/'
S = '"side" =~ /^$side$/'
SES = '"session" =~ /^$session$/'
#: "Current" status values come from the latest daily patient_status point (written at least daily by the
#: gateway); older values are not shown as current, so a measure that became undefined (e.g. no strides in
#: the last 7 days) is not replaced by a stale number.
CURRENT = "time > now() - 2d"
DISCLAIMER = (
    "Monitoring measures, not diagnoses. Angles are in degrees, **relative to standing calibration** "
    "(the standing-neutral pose at the start of each session); peak hip extension is shown as a positive number."
)

UIDS = {
    "walk": "hipback-walk",
    "stretch": "hipback-stretch",
    "progress": "hipback-progress",
    "overview": "hipback-overview",
    "devices": "hipback-devices",
    "exercise": "hipback-exercise",
}


# --- building blocks ---------------------------------------------------------------------------

def target(query: str, ref: str = "A", fmt: str = "time_series", alias: str | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"refId": ref, "datasource": DS, "query": query, "rawQuery": True, "resultFormat": fmt}
    if alias:
        t["alias"] = alias
    return t


def thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def panel(kind: str, title: str, targets: list[dict[str, Any]], grid: tuple[int, int, int, int], *,
          unit: str | None = None, description: str = "", custom: dict[str, Any] | None = None,
          th: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
          overrides: list[dict[str, Any]] | None = None, transformations: list[dict[str, Any]] | None = None,
          decimals: int | None = None, mappings: list[dict[str, Any]] | None = None,
          links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    x, y, w, h = grid
    defaults: dict[str, Any] = {}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if custom:
        defaults["custom"] = custom
    if th:
        defaults["thresholds"] = th
    if mappings:
        defaults["mappings"] = mappings
    if links:
        defaults["links"] = links
    p: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or (TS_OPTIONS if kind == "timeseries" else {}),
    }
    if transformations:
        p["transformations"] = transformations
    return p


TS_OPTIONS = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
              "tooltip": {"mode": "multi", "sort": "none"}}


def text_panel(content: str, grid: tuple[int, int, int, int]) -> dict[str, Any]:
    x, y, w, h = grid
    return {"type": "text", "title": "", "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "options": {"mode": "markdown", "content": content}}


def ts_custom(draw: str = "line", points: str = "auto", fill: int = 0,
              th_style: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"drawStyle": draw, "showPoints": points, "fillOpacity": fill, "spanNulls": False,
                         "lineWidth": 1, "pointSize": 5}
    if th_style:
        c["thresholdsStyle"] = {"mode": th_style}
    return c


def stat_options(calc: str = "lastNotNull", fields: str = "") -> dict[str, Any]:
    return {"reduceOptions": {"calcs": [calc], "fields": fields, "values": False},
            "colorMode": "value", "graphMode": "none", "textMode": "auto", "justifyMode": "auto",
            "orientation": "auto"}


def ds_var() -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "influxdb",
            "hide": 0, "refresh": 1, "regex": "", "options": [], "includeAll": False,
            "multi": False}


def query_var(name: str, label: str, query: str, *, all_value: bool = False, multi: bool = False,
              refresh: int = 1) -> dict[str, Any]:
    v: dict[str, Any] = {"name": name, "label": label, "type": "query", "datasource": DS, "query": query,
                         "refresh": refresh, "sort": 1, "hide": 0, "regex": "",
                         "options": [], "includeAll": all_value, "multi": multi}
    if all_value:
        v["allValue"] = ".*"
    return v


def side_var() -> dict[str, Any]:
    opts = [{"text": "All", "value": "$__all", "selected": True},
            {"text": "left", "value": "left", "selected": False},
            {"text": "right", "value": "right", "selected": False}]
    return {"name": "side", "label": "Side", "type": "custom", "query": "left,right", "includeAll": True,
            "allValue": ".*", "multi": True, "hide": 0, "options": opts,
            "current": {"text": ["All"], "value": ["$__all"], "selected": True}}


PATIENT_Q = 'SHOW TAG VALUES FROM "sessions" WITH KEY = "patient"'


def session_var(kinds: str) -> dict[str, Any]:
    q = f'SHOW TAG VALUES FROM "sessions" WITH KEY = "session" WHERE {P} AND "kind" =~ /^({kinds})$/'
    return query_var("session", "Session", q, refresh=2)


def dashboard(key: str, title: str, description: str, panels: list[dict[str, Any]],
              variables: list[dict[str, Any]], time_from: str = "now-7d") -> dict[str, Any]:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "uid": UIDS[key],
        "title": title,
        "description": description,
        "tags": ["hipback"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "refresh": "",
        "weekStart": "monday",
        "links": [{"title": "hipback dashboards", "type": "dashboards", "tags": ["hipback"], "asDropdown": True,
                   "includeVars": True, "keepTime": True, "icon": "external link", "tooltip": "",
                   "url": "", "targetBlank": False}],
        # Grafana adds its built-in "Annotations & Alerts" query itself when a dashboard has none.
        "annotations": {"list": []},
        "templating": {"list": variables},
        "panels": panels,
    }


REF_BANDS = thresholds(("transparent", None), ("orange", ELDERLY_MEAN), ("green", YOUNG_MEAN - YOUNG_SD),
                       ("transparent", YOUNG_MEAN + YOUNG_SD))
REF_TEXT = (f"Reference bands (Kerrigan 2001, comfortable walking): line at {ELDERLY_MEAN} deg = healthy "
            f"elderly mean; green band {YOUNG_MEAN - YOUNG_SD:.1f}-{YOUNG_MEAN + YOUNG_SD:.1f} deg = young adults "
            f"{YOUNG_MEAN} +/- {YOUNG_SD}. Relative to standing calibration.")


# --- dashboards ----------------------------------------------------------------------------------

def walk() -> dict[str, Any]:
    wh = f"{P} AND {SES} AND $timeFilter"
    panels = [
        text_panel(DISCLAIMER, (0, 0, 24, 2)),
        panel("timeseries", "Hip flexion and pelvic tilt (deg, relative to standing calibration)", [
            target('SELECT mean("hip_flexion_left_deg") AS "hip flexion left", mean("hip_flexion_right_deg") AS '
                   '"hip flexion right", mean("pelvic_tilt_deg") AS "pelvic tilt (anterior +)", '
                   'mean("lumbar_flexion_deg") AS "lumbar flexion" FROM "angles" '
                   f'WHERE {wh} GROUP BY time($__interval) fill(none)')],
            (0, 2, 24, 9), unit="degree", custom=ts_custom(points="never"),
            description="Hip flexion positive, extension negative; pelvic tilt anterior positive."),
        panel("stat", "Session median peak hip extension", [
            target(f'SELECT median("peak_hip_extension_deg") FROM "strides" WHERE {wh} AND {S} GROUP BY "side"',
                   alias="$tag_side")],
            (0, 11, 6, 5), unit="degree", decimals=1, options=stat_options(), th=REF_BANDS,
            description=REF_TEXT),
        panel("stat", "Session median cadence", [
            target(f'SELECT median("cadence_spm") FROM "strides" WHERE {wh} AND {S}', alias="cadence")],
            (6, 11, 6, 5), unit="steps/min", decimals=0, options=stat_options()),
        panel("stat", "Session median compensation index", [
            target(f'SELECT median("compensation_index") FROM "strides" WHERE {wh} AND {S} GROUP BY "side"',
                   alias="$tag_side")],
            (12, 11, 6, 5), decimals=2, options=stat_options(),
            description="Share of thigh extension that comes from anterior pelvic tilt over terminal stance "
                        "(0 = none). A monitoring measure, not a diagnosis."),
        panel("stat", "Session median pelvic tilt excursion", [
            target(f'SELECT median("pelvic_tilt_excursion_deg") FROM "strides" WHERE {wh} AND {S}',
                   alias="excursion")],
            (18, 11, 6, 5), unit="degree", decimals=1, options=stat_options(),
            description="Typical in healthy gait: 2-4 deg per stride."),
        panel("timeseries", "Peak hip extension per stride vs reference bands", [
            target(f'SELECT "peak_hip_extension_deg" FROM "strides" WHERE {wh} AND {S} GROUP BY "side"',
                   alias="$tag_side")],
            (0, 16, 24, 9), unit="degree", th=REF_BANDS, custom=ts_custom("points", "always", 0, "line+area"),
            description=REF_TEXT),
        panel("timeseries", "Lumbar compensation index per stride", [
            target(f'SELECT "compensation_index" FROM "strides" WHERE {wh} AND {S} GROUP BY "side"',
                   alias="$tag_side")],
            (0, 25, 12, 8), custom=ts_custom("points", "always")),
        panel("timeseries", "Cadence per stride", [
            target(f'SELECT "cadence_spm" FROM "strides" WHERE {wh} AND {S} GROUP BY "side"', alias="$tag_side")],
            (12, 25, 12, 8), unit="steps/min", custom=ts_custom("points", "always")),
        panel("table", "Walk sessions of this patient", [
            target('SELECT "duration_s", "strides", "peak_hip_extension_left_deg", "peak_hip_extension_right_deg", '
                   '"compensation_index", "cadence_spm", "calibration_quality" FROM "sessions" '
                   f'WHERE {P} AND "kind" =~ /^(walk|mixed)$/ AND $timeFilter GROUP BY "session"', fmt="table")],
            (0, 33, 24, 8), options={"showHeader": True},
            links=[{"title": "Open this session", "url": "/d/hipback-walk?var-patient=${patient}"
                    "&var-session=${__data.fields.session}&${__url_time_range}"}]),
    ]
    return dashboard("walk", "hipback - Walk session",
                     "One walk: joint angles, per-stride peak hip extension against reference values, "
                     "lumbar compensation and cadence.",
                     panels, [ds_var(), query_var("patient", "Patient", PATIENT_Q), side_var(),
                              session_var("walk|mixed")])


def stretch() -> dict[str, Any]:
    wh = f"{P} AND {SES} AND $timeFilter"
    panels = [
        text_panel(DISCLAIMER + " A hold counts only while the hip is extended and the back does not arch.",
                   (0, 0, 24, 2)),
        panel("stat", "Time in correct posture vs prescription", [
            target(f'SELECT sum("correct_time_s") AS "correct", sum("prescribed_time_s") AS "prescribed" '
                   f'FROM "sessions" WHERE {wh}')],
            (0, 2, 8, 5), unit="s", decimals=0, options=stat_options()),
        panel("stat", "Holds completed vs prescribed", [
            target(f'SELECT sum("holds_done") AS "completed", sum("holds_prescribed") AS "prescribed" '
                   f'FROM "sessions" WHERE {wh}')],
            (8, 2, 8, 5), decimals=0, options=stat_options()),
        panel("stat", "Holds with back arching", [
            target(f'SELECT count("duration_s") FROM "holds" WHERE {wh} AND {S} AND "arching" = true '
                   'GROUP BY time(1d) fill(0)', alias="arching holds")],
            (16, 2, 8, 5), decimals=0, options=stat_options("sum"),
            th=thresholds(("green", None), ("orange", 1))),
        panel("timeseries", "Holds on a timeline: time in correct posture vs target", [
            target(f'SELECT "correct_s" AS "correct", "target_s" AS "target" FROM "holds" '
                   f'WHERE {wh} AND {S} GROUP BY "side"', alias="$tag_side $col")],
            (0, 7, 24, 9), unit="s", custom=ts_custom("bars", "always", 60)),
        panel("timeseries", "Peak hip extension per hold", [
            target(f'SELECT "peak_hip_extension_deg" FROM "holds" WHERE {wh} AND {S} GROUP BY "side"',
                   alias="$tag_side")],
            (0, 16, 12, 8), unit="degree", custom=ts_custom("points", "always"),
            th=thresholds(("transparent", None), ("green", 10.0)),
            description="Practical target >= 10 deg hip extension in the stretch (docs/biomechanics.md)."),
        panel("timeseries", "Pelvic tilt drift per hold (arching)", [
            target(f'SELECT "pelvic_tilt_drift_deg" FROM "holds" WHERE {wh} AND {S} GROUP BY "side"',
                   alias="$tag_side")],
            (12, 16, 12, 8), unit="degree", custom=ts_custom("points", "always", 0, "line"),
            th=thresholds(("green", None), ("red", 5.0)),
            description="Anterior pelvic tilt change during the hold; >= 5 deg is treated as arching."),
        panel("table", "Holds", [
            target('SELECT "rep", "duration_s", "correct_s", "target_s", "completed", "peak_hip_extension_deg", '
                   f'"pelvic_tilt_drift_deg", "arching" FROM "holds" WHERE {wh} AND {S} '
                   'GROUP BY "side", "exercise"', fmt="table")],
            (0, 24, 24, 9), options={"showHeader": True},
            mappings=[{"type": "value", "options": {"true": {"text": "yes", "color": "orange"},
                                                    "false": {"text": "no"}}}]),
    ]
    return dashboard("stretch", "hipback - Stretch session",
                     "One stretch session: holds, time in correct posture against the prescription, "
                     "arching flags.",
                     panels, [ds_var(), query_var("patient", "Patient", PATIENT_Q), side_var(),
                              session_var("stretch|mixed")])


def progress() -> dict[str, Any]:
    ps = f'FROM "patient_status" WHERE {P} AND $timeFilter'
    now_ps = f'FROM "patient_status" WHERE {P} AND {CURRENT} ORDER BY time DESC LIMIT 1'
    band = []
    for s in ("left", "right"):
        band.append({"matcher": {"id": "byName", "options": f"{s}: baseline + MDC"},
                     "properties": [{"id": "custom.fillBelowTo", "value": f"{s}: baseline - MDC"},
                                    {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [4, 4]}}]})
    panels = [
        text_panel(DISCLAIMER + " Baseline = median of the strides in the patient's first 14 days; "
                   "MDC = minimal detectable change (5 deg for gait peak hip extension).", (0, 0, 24, 2)),
        panel("stat", "7-day peak hip extension", [
            target(f'SELECT median("peak_hip_extension_deg") FROM "strides" WHERE {P} AND {S} '
                   'AND time > now() - 7d GROUP BY "side"', alias="$tag_side")],
            (0, 2, 6, 5), unit="degree", decimals=1, options=stat_options(), th=REF_BANDS, description=REF_TEXT),
        panel("stat", "Change from baseline", [
            target('SELECT "change_from_baseline_left_deg" AS "left", '
                   f'"change_from_baseline_right_deg" AS "right", "mdc_deg" AS "MDC" {now_ps}')],
            (6, 2, 6, 5), unit="degree", decimals=1, options=stat_options(),
            th=thresholds(("red", None), ("text", -5.0), ("green", 5.0)),
            description="7-day median minus baseline; beyond +/- MDC (5 deg) the change exceeds measurement noise."),
        panel("stat", "Adherence (7 days)", [
            target(f'SELECT "adherence_pct" AS "adherence", "mdc_deg" {now_ps}')],
            (12, 2, 6, 5), unit="percent", decimals=0, options=stat_options(fields="/^adherence$/"),
            th=thresholds(("red", None), ("orange", 50.0), ("green", 80.0))),
        panel("stat", "Days since last session", [
            target(f'SELECT "days_since_last_session" AS "days" {now_ps}')],
            (18, 2, 6, 5), unit="d", decimals=1, options=stat_options(),
            th=thresholds(("green", None), ("red", 3.0))),
        panel("stat", "Completed holds (7 days) vs prescribed", [
            target(f'SELECT count("duration_s") AS "completed" FROM "holds" WHERE {P} AND "completed" = true '
                   'AND time > now() - 7d'),
            target(f'SELECT "holds_prescribed_7d" AS "prescribed" {now_ps}', ref="B")],
            (18, 7, 6, 5), decimals=0, options=stat_options(),
            description="A hold is completed when its correct-posture time reached the target."),
        panel("timeseries", "Weekly peak hip extension vs baseline +/- MDC", [
            target(f'SELECT median("peak_hip_extension_deg") FROM "strides" WHERE {P} AND {S} AND $timeFilter '
                   'GROUP BY time(7d, 4d), "side" fill(none)', alias="$tag_side: weekly median"),
            target('SELECT last("baseline_peak_ext_left_deg") AS "left: baseline", '
                   'last("baseline_peak_ext_left_deg") - last("mdc_deg") AS "left: baseline - MDC", '
                   'last("baseline_peak_ext_left_deg") + last("mdc_deg") AS "left: baseline + MDC", '
                   'last("baseline_peak_ext_right_deg") AS "right: baseline", '
                   'last("baseline_peak_ext_right_deg") - last("mdc_deg") AS "right: baseline - MDC", '
                   'last("baseline_peak_ext_right_deg") + last("mdc_deg") AS "right: baseline + MDC" '
                   f'{ps} GROUP BY time(1d) fill(none)', ref="B")],
            (0, 7, 18, 9), unit="degree", custom=ts_custom("line", "always", 0), overrides=band,
            description="Weekly medians (Monday weeks) of per-stride peak hip extension, relative to standing "
                        "calibration, against the patient's baseline and the MDC band."),
        panel("timeseries", "Weekly compensation index vs baseline", [
            target(f'SELECT median("compensation_index") FROM "strides" WHERE {P} AND {S} AND $timeFilter '
                   'GROUP BY time(7d, 4d), "side" fill(none)', alias="$tag_side: weekly median"),
            target('SELECT last("baseline_compensation_left") AS "left: baseline", '
                   f'last("baseline_compensation_right") AS "right: baseline" {ps} GROUP BY time(1d) fill(none)',
                   ref="B")],
            (0, 16, 12, 8), custom=ts_custom("line", "always")),
        panel("timeseries", "Adherence (7-day, % of prescribed holds)", [
            target(f'SELECT last("adherence_pct") AS "adherence" {ps} GROUP BY time(1d) fill(none)')],
            (12, 16, 12, 8), unit="percent", custom=ts_custom("line", "always", 0, "line"),
            th=thresholds(("red", None), ("green", 50.0))),
        panel("timeseries", "Completed holds per week vs prescription", [
            target(f'SELECT count("duration_s") AS "completed holds" FROM "holds" WHERE {P} AND "completed" = true '
                   'AND $timeFilter GROUP BY time(7d, 4d) fill(0)'),
            target(f'SELECT last("holds_prescribed_7d") AS "prescribed" {ps} GROUP BY time(7d, 4d) fill(none)',
                   ref="B")],
            (0, 24, 12, 8), custom=ts_custom("bars", "always", 60)),
        panel("timeseries", "Sitting time per week (h)", [
            target(f'SELECT sum("sitting_s") / 3600 AS "sitting h" FROM "sessions" WHERE {P} AND $timeFilter '
                   'GROUP BY time(7d, 4d) fill(0)')],
            (12, 24, 12, 8), unit="h", custom=ts_custom("bars", "always", 60)),
        panel("table", "Sessions", [
            target('SELECT "duration_s", "strides", "peak_hip_extension_left_deg", "peak_hip_extension_right_deg", '
                   '"holds_done", "holds_prescribed", "calibration_quality" FROM "sessions" '
                   f'WHERE {P} AND $timeFilter GROUP BY "session", "kind"', fmt="table")],
            (0, 32, 24, 9), options={"showHeader": True},
            links=[{"title": "Walk view", "url": "/d/hipback-walk?var-patient=${patient}"
                    "&var-session=${__data.fields.session}&${__url_time_range}"},
                   {"title": "Stretch view", "url": "/d/hipback-stretch?var-patient=${patient}"
                    "&var-session=${__data.fields.session}&${__url_time_range}"}]),
    ]
    return dashboard("progress", "hipback - Patient progress",
                     "Weekly trends against the patient's own baseline with a minimal-detectable-change band, "
                     "adherence to the prescription, sitting time.",
                     panels, [ds_var(), query_var("patient", "Patient", PATIENT_Q), side_var()], "now-42d")


def overview() -> dict[str, Any]:
    flag_map = [{"type": "value", "options": {"true": {"text": "FLAG", "color": "red", "index": 0},
                                              "false": {"text": "-", "color": "green", "index": 1}}}]
    flag_over = [{"matcher": {"id": "byRegexp", "options": "^flag.*"},
                  "properties": [{"id": "mappings", "value": flag_map},
                                 {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
                 {"matcher": {"id": "byName", "options": "patient"},
                  "properties": [{"id": "links", "value": [
                      {"title": "Progress", "url": "/d/hipback-progress?var-patient=${__value.raw}&${__url_time_range}"},
                      {"title": "Walk session", "url": "/d/hipback-walk?var-patient=${__value.raw}"},
                      {"title": "Stretch session", "url": "/d/hipback-stretch?var-patient=${__value.raw}"},
                      {"title": "Device health", "url": "/d/hipback-devices?var-patient=${__value.raw}"}]}]}]
    panels = [
        text_panel(DISCLAIMER + " Flags are prompts to look, computed at each patient's gateway: no session for "
                   "3 days; 7-day peak hip extension below baseline by more than the MDC (5 deg); adherence "
                   "under 50 %.", (0, 0, 24, 3)),
        panel("table", "Patients", [
            target('SELECT "days_since_last_session" AS "days since last session", '
                   '"peak_ext_7d_left_deg" AS "7-day peak ext left", '
                   '"peak_ext_7d_right_deg" AS "7-day peak ext right", '
                   '"change_from_baseline_left_deg" AS "change left", '
                   '"change_from_baseline_right_deg" AS "change right", '
                   '"adherence_pct" AS "adherence %", "flag_no_session" AS "flag no session", '
                   '"flag_decline" AS "flag decline", "flag_low_adherence" AS "flag low adherence", "mdc_deg" AS "MDC" '
                   f'FROM "patient_status" WHERE {P} AND {CURRENT} GROUP BY "patient" ORDER BY time DESC LIMIT 1', fmt="table"),
            target(f'SELECT last("duration_s") / 60 AS "last session min" FROM "sessions" WHERE {P} AND time > now() - 365d '
                   'GROUP BY "patient"', ref="B", fmt="table")],
            (0, 3, 24, 14), decimals=1, overrides=flag_over, options={"showHeader": True},
            transformations=[{"id": "joinByField", "options": {"byField": "patient", "mode": "outer"}},
                             {"id": "organize", "options": {"excludeByName": {"Time 1": True},
                                                            "renameByName": {"Time 2": "last session"}}}],
            description="One row per patient. Angles relative to standing calibration; change = 7-day median "
                        "minus the patient's baseline. 'last session' looks back up to 365 days, whatever the range."),
        panel("timeseries", "Change from baseline across patients (lower side)", [
            target(f'SELECT last("worst_change_from_baseline_deg") FROM "patient_status" WHERE {P} AND $timeFilter '
                   'GROUP BY time(1d), "patient" fill(none)', alias="$tag_patient")],
            (0, 17, 12, 8), unit="degree", custom=ts_custom("line", "always", 0, "line"),
            th=thresholds(("red", None), ("transparent", -5.0))),
        panel("timeseries", "Adherence across patients (7-day %)", [
            target(f'SELECT last("adherence_pct") FROM "patient_status" WHERE {P} AND $timeFilter '
                   'GROUP BY time(1d), "patient" fill(none)', alias="$tag_patient")],
            (12, 17, 12, 8), unit="percent", custom=ts_custom("line", "always", 0, "line"),
            th=thresholds(("red", None), ("transparent", 50.0))),
        panel("table", "Posture time, last 7 days (minutes per day)", [
            target('SELECT sum("sitting_s") / 60 / 7 AS "sitting", sum("bent_forward_s") / 60 / 7 AS "bent forward", '
                   'sum("lumbar_extension_s") / 60 / 7 AS "lumbar extension" FROM "posture_time" '
                   f'WHERE {P} AND time > now() - 7d GROUP BY "patient"', fmt="table")],
            (0, 25, 24, 7), decimals=1, options={"showHeader": True},
            transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
            description="Per patient, the recorded sessions of the last 7 days: sitting; bent forward (upright "
                        "with both hips or the lower back flexed 30 deg or more); lumbar extension (10 deg or more "
                        "beyond standing, upper-lumbar sensor only). The postures that matter for flexion and "
                        "extension responders; the patient's exercise dashboard shows them day by day."),
    ]
    return dashboard("overview", "hipback - Clinician overview",
                     "All patients at a glance: last session, 7-day peak hip extension, change from baseline, "
                     "adherence and flags, with links to each patient's dashboards.",
                     panels, [ds_var(), query_var("patient", "Patient", PATIENT_Q, all_value=True, multi=True)])


def devices() -> dict[str, Any]:
    wh = f'{P} AND "session" =~ /^$session$/ AND $timeFilter'
    sess = query_var("session", "Session", f'SHOW TAG VALUES FROM "device_status" WITH KEY = "session" WHERE {P}',
                     all_value=True, multi=True, refresh=2)

    def series(title: str, expr: str, unit: str, grid: tuple[int, int, int, int]) -> dict[str, Any]:
        return panel("timeseries", title, [
            target(f'SELECT {expr} FROM "device_status" WHERE {wh} GROUP BY time($__interval), "placement" '
                   'fill(none)', alias="$tag_placement")],
            grid, unit=unit, custom=ts_custom("line", "always"))

    panels = [
        series("Battery", 'mean("battery_pct")', "percent", (0, 0, 12, 8)),
        series("Packet loss", 'mean("packet_loss_pct")', "percent", (12, 0, 12, 8)),
        series("Reconnects (cumulative per session)", 'max("reconnects")', "none", (0, 8, 12, 8)),
        series("Sample rate", 'mean("rate_hz")', "hertz", (12, 8, 12, 8)),
        panel("table", "Latest status per sensor", [
            target('SELECT last("battery_pct") AS "battery %", last("packet_loss_pct") AS "packet loss %", '
                   'last("rate_hz") AS "rate Hz", last("reconnects") AS "reconnects", '
                   f'last("rejected_packets") AS "rejected packets" FROM "device_status" WHERE {wh} '
                   'GROUP BY "placement", "device"', fmt="table")],
            (0, 16, 24, 8), options={"showHeader": True}),
    ]
    return dashboard("devices", "hipback - Device health",
                     "Battery, packet loss, reconnects and sample rate per sensor.",
                     panels, [ds_var(), query_var("patient", "Patient", PATIENT_Q), sess], "now-7d")


def exercise() -> dict[str, Any]:
    """Exercise programme (issue 10): reps and holds per exercise and side from ``exercise_reps`` /
    ``exercise_holds``, form, and the postures that matter to flexion and extension responders
    (``posture_time``)."""
    wh = f"{P} AND $timeFilter"
    per_day = ('SELECT count("n") AS "days" FROM (SELECT count("{f}") AS "n" FROM "{m}" WHERE ' + wh
               + ' GROUP BY time(1d), "exercise" fill(none)) WHERE $timeFilter GROUP BY time(7d, 4d), "exercise" fill(0)')
    by_session = 'GROUP BY "session", "exercise", "work_side"'

    def per_session(m: str, f: str, word: str) -> list[dict[str, Any]]:
        return [
            target(f'SELECT count("{f}") AS "{word} done" FROM "{m}" WHERE {wh} {by_session}', fmt="table"),
            target(f'SELECT count("{f}") AS "{word} counted" FROM "{m}" WHERE {wh} AND "counted" = true '
                   f'{by_session}', "B", fmt="table"),
            target(f'SELECT max("prescribed") AS "{word} prescribed per set", count(distinct("set_no")) AS "sets" '
                   f'FROM "{m}" WHERE {wh} {by_session}', "C", fmt="table"),
            target(f'SELECT sum("correct_s") AS "correct form s" FROM "{m}" WHERE {wh} {by_session}', "D",
                   fmt="table")]

    merge = [{"id": "merge", "options": {}},
             {"id": "organize", "options": {"excludeByName": {"Time": True}}}]
    panels = [
        text_panel(DISCLAIMER + " A rep or hold counts only when the exercise's target was reached without "
                   "breaking a form rule (docs/exercises.md); rules whose sensor was not worn are not checked.",
                   (0, 0, 24, 2)),
        panel("timeseries", "Adherence: days per week with the exercise done", [
            target(per_day.format(f="primary_peak_deg", m="exercise_reps"), alias="$tag_exercise (reps)"),
            target(per_day.format(f="hold_s", m="exercise_holds"), "B", alias="$tag_exercise (holds)")],
            (0, 2, 12, 8), decimals=0, custom=ts_custom("bars", "always", 60),
            description="Monday weeks; a day counts when at least one rep or hold of that exercise was recorded."),
        panel("timeseries", "Reps and holds per day that met the target and the form rules", [
            target(f'SELECT count("primary_peak_deg") FROM "exercise_reps" WHERE {wh} AND "counted" = true '
                   'GROUP BY time(1d), "exercise", "work_side" fill(none)', alias="$tag_exercise $tag_work_side"),
            target(f'SELECT count("hold_s") FROM "exercise_holds" WHERE {wh} AND "counted" = true '
                   'GROUP BY time(1d), "exercise", "work_side" fill(none)', "B",
                   alias="$tag_exercise $tag_work_side (holds)")],
            (12, 2, 12, 8), decimals=0, custom=ts_custom("bars", "always", 60)),
        panel("table", "Reps per session: done, counted and prescribed, per exercise and side",
              per_session("exercise_reps", "primary_peak_deg", "reps"),
              (0, 10, 12, 8), options={"showHeader": True}, transformations=merge, decimals=0,
              description="Counted: the target was reached and no form rule was broken. Prescribed per set: the "
                          "programme's dose for one set on that side; sets: how many sets were announced."),
        panel("table", "Holds per session: done, counted and prescribed, per exercise and side",
              per_session("exercise_holds", "hold_s", "holds"),
              (12, 10, 12, 8), options={"showHeader": True}, transformations=merge, decimals=0),
        panel("timeseries", "Time in correct form (% of the time moving or holding)", [
            target(f'SELECT sum("correct_s") / sum("duration_s") * 100 FROM "exercise_reps" WHERE {wh} '
                   'GROUP BY time(1d), "exercise", "work_side" fill(none)', alias="$tag_exercise $tag_work_side"),
            target(f'SELECT sum("correct_s") / sum("hold_s") * 100 FROM "exercise_holds" WHERE {wh} '
                   'GROUP BY time(1d), "exercise", "work_side" fill(none)', "B",
                   alias="$tag_exercise $tag_work_side (holds)")],
            (0, 18, 12, 8), unit="percent", decimals=0, custom=ts_custom("line", "always"),
            description="Per day: seconds with every checked form rule kept, over the seconds of the reps "
                        "(movement onset to return) or of the holds."),
        panel("timeseries", "Primary angle at the peak of each rep", [
            target(f'SELECT "primary_peak_deg" FROM "exercise_reps" WHERE {wh} GROUP BY "exercise", "work_side"',
                   alias="$tag_exercise $tag_work_side")],
            (12, 18, 12, 8), unit="degree", custom=ts_custom("points", "always"),
            description="Change from the start of the rep, or relative to standing calibration, as the "
                        "exercise's catalogue entry defines its primary angle."),
        panel("timeseries", "Hold time vs prescription", [
            target(f'SELECT "hold_s" AS "held", "target_s" AS "target" FROM "exercise_holds" WHERE {wh} '
                   'GROUP BY "exercise", "work_side"', alias="$tag_exercise $tag_work_side $col")],
            (0, 26, 12, 8), unit="s", custom=ts_custom("points", "always")),
        panel("timeseries", "Posture time per day: sitting, bent forward, lumbar extension", [
            target('SELECT sum("sitting_s") / 60 AS "sitting", sum("bent_forward_s") / 60 AS "bent forward", '
                   f'sum("lumbar_extension_s") / 60 AS "lumbar extension" FROM "posture_time" WHERE {wh} '
                   'GROUP BY time(1d) fill(none)')],
            (12, 26, 12, 8), unit="m", decimals=1, custom=ts_custom("bars", "always", 60),
            description="Minutes per day in the recorded sessions (a session counts on the day it starts). "
                        "Bent forward: upright with both hips or the lower back flexed 30 deg or more; lumbar "
                        "extension: the lower back extended 10 deg or more beyond standing (only with the "
                        "upper-lumbar sensor). Sitting and bending tend to ease flexion responders and aggravate "
                        "extension responders (docs/exercises.md)."),
        panel("table", "Reps with a form cue", [
            target(f'SELECT "rep", "primary_peak_deg", "rules_broken", "cue" FROM "exercise_reps" WHERE {wh} '
                   'AND "cue" != \'\' GROUP BY "exercise", "work_side"', fmt="table")],
            (0, 34, 24, 8), options={"showHeader": True}),
    ]
    return dashboard("exercise", "hipback - Exercise programme",
                     "Exercise programme: adherence per exercise, reps and holds per exercise and side against "
                     "the prescription, time in correct form, primary angle per rep, hold time, form cues, and "
                     "daily posture time for the responder profile.",
                     panels, [ds_var(), query_var("patient", "Patient", PATIENT_Q)], "now-30d")


DASHBOARDS = {"walk-session.json": walk, "stretch-session.json": stretch, "patient-progress.json": progress,
              "clinician-overview.json": overview, "device-health.json": devices,
              "exercise-programme.json": exercise}


def render(name: str) -> str:
    """The JSON text of dashboard file ``name`` (as written to disk)."""
    return json.dumps(DASHBOARDS[name](), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name in DASHBOARDS:
        (HERE / name).write_text(render(name))
        print(f"wrote dashboards/{name}")


if __name__ == "__main__":
    main()

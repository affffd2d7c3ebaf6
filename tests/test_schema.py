"""hipback.ingest.influx.schema: rows -> points with bounded tags and declared field types; docs in sync."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.influx import schema
from hipback.ingest.influx.lineprotocol import encode

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_795_000_000.0
INFLUX_TYPE = {float: "float", int: "integer", bool: "boolean", str: "string"}


def _one_row_of_each() -> list:
    pts = []
    pts += schema.stride_points(
        [
            {
                "t_s": T0,
                "side": "left",
                "stride_no": 3.0,
                "peak_hip_extension_deg": 12,
                "hip_range_deg": 40.5,
                "stride_time_s": 1.1,
                "cadence_spm": 109.0,
                "pelvic_tilt_at_peak_ext_deg": 5.0,
                "pelvic_tilt_excursion_deg": 3.0,
                "compensation_index": 0.3,
            }
        ],
        "p01",
        "s1",
    )
    pts += schema.hold_points(
        [
            {
                "t_s": T0 + 1,
                "side": "right",
                "exercise": "kneeling_hip_flexor",
                "rep": 1,
                "duration_s": 31,
                "correct_s": 30.0,
                "target_s": 30,
                "peak_hip_extension_deg": 14.0,
                "mean_hip_extension_deg": 11.0,
                "pelvic_tilt_drift_deg": 2.0,
                "arching": 0,
            }
        ],
        "p01",
        "s1",
    )
    row = {name: 1 for name in schema.MEASUREMENTS["sessions"].field_names}
    pts.append(schema.session_point({**row, "t_s": T0, "kind": "mixed"}, "p01", "s1"))
    pts += schema.activity_points([{"t_s": T0, "activity": "sitting", "duration_s": 60}], "p01", "s1")
    pts += schema.device_status_points(
        [
            {
                "t_s": T0,
                "placement": "pelvis",
                "device": "DOT-1A2B",
                "battery_pct": 88,
                "packet_loss_pct": 0.5,
                "rate_hz": 60,
                "reconnects": 1,
                "rejected_packets": 0,
            }
        ],
        "p01",
        "s1",
    )
    for kind, name in (("rep", "exercise_reps"), ("hold", "exercise_holds")):
        row = {f.name: ("x" if f.type is str else 1) for f in schema.MEASUREMENTS[name].fields}
        row.update(t_s=T0, kind=kind, exercise="glute_bridge", work_side="both")
        pts += schema.exercise_points([row], "p01", "s1")
    row = {f.name: 1.5 for f in schema.MEASUREMENTS["posture_time"].fields}
    pts.append(schema.posture_time_point({**row, "t_s": T0}, "p01", "s1"))
    status = {f.name: (True if f.type is bool else 2) for f in schema.MEASUREMENTS["patient_status"].fields}
    pts.append(schema.patient_status_point("p01", T0, status))
    t = T0 + np.arange(0, 1, 1 / 60)
    pts += schema.angle_points(
        t, {name: np.sin(t) for name in schema.MEASUREMENTS["angles"].field_names}, "p01", "s1", 10.0
    )
    return pts


def test_points_carry_declared_tags_and_types():
    pts = _one_row_of_each()
    seen = set()
    for p in pts:
        spec = schema.MEASUREMENTS[p.measurement]
        seen.add(p.measurement)
        assert set(p.tags) == set(spec.tags)
        assert set(p.fields) == set(spec.field_names), p.measurement  # every field of a full row is written
        for name, value in p.fields.items():
            assert type(value) is spec.field(name).type, (p.measurement, name, value)
    assert seen == set(schema.MEASUREMENTS)
    stride = pts[0]
    assert stride.fields["stride_no"] == 3 and stride.fields["peak_hip_extension_deg"] == 12.0
    assert stride.time_ns == int(T0 * 1e9)
    hold = next(p for p in pts if p.measurement == "holds")
    assert hold.fields["completed"] is True and hold.fields["arching"] is False  # completed derived: 30 >= 30


def test_missing_nan_and_unknown_keys():
    (p,) = schema.stride_points(
        [{"t_s": T0, "side": "right", "peak_hip_extension_deg": float("nan"), "cadence_spm": None, "foo": 1}],
        "p01",
        "s1",
    )
    assert p.fields == {}
    assert encode([p]) == ""  # a point without fields is not written
    (p,) = schema.stride_points([{"time_ns": 5, "side": "right", "hip_range_deg": 3}], "p01", "s1")
    assert p.time_ns == 5 and p.fields == {"hip_range_deg": 3.0}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("patient", "Jane Doe"),
        ("patient", ""),
        ("patient", "p" * 65),
        ("session", "a,b"),
        ("side", "centre"),
        ("kind", "run"),
        ("activity", "dancing"),
        ("placement", "wrist"),
        ("patient", 17),
    ],
)
def test_tags_are_bounded(key, value):
    with pytest.raises(ValueError, match="tag"):
        schema.check_tag(key, value)


def test_missing_tag_or_time_is_an_error():
    with pytest.raises(ValueError, match="side"):
        schema.stride_points([{"t_s": T0, "hip_range_deg": 1}], "p01", "s1")
    with pytest.raises(ValueError, match="t_s"):
        schema.stride_points([{"side": "left", "hip_range_deg": 1}], "p01", "s1")
    with pytest.raises(ValueError, match="angles has no field"):
        schema.angle_points([T0], {"hip_deg": [1.0]}, "p01", "s1")


def test_angle_downsampling_averages_each_bin():
    rate_in, rate_out = 60.0, 10.0
    t = 1000.0 + (np.arange(120) + 0.5) / rate_in  # no sample on a bin edge
    v = np.arange(t.size, dtype=float)
    v[7] = np.nan  # ignored in its bin's mean
    w = np.full(t.size, np.nan)
    w[:3] = 1.0  # only the first bin has this field
    pts = schema.angle_points(t, {"pelvic_tilt_deg": v, "lumbar_flexion_deg": w}, "p01", "s1", rate_out)
    assert len(pts) == 20
    bins = np.floor(t * rate_out).astype(int)
    for p in pts:
        b = int(round(p.time_ns / 1e9 * rate_out - 0.5))
        expected = np.nanmean(v[bins == b])
        assert p.fields["pelvic_tilt_deg"] == pytest.approx(expected)
        assert p.time_ns == pytest.approx((b + 0.5) / rate_out * 1e9, abs=1)
    assert pts[0].fields["lumbar_flexion_deg"] == 1.0
    assert all("lumbar_flexion_deg" not in p.fields for p in pts[1:])
    assert schema.angle_points([], {}, "p01", "s1") == []


def test_field_types_in_real_influxdb_are_the_declared_ones(influxd, influx_db):
    """Written through line protocol into influxd, every field gets the type the schema declares."""
    from hipback.ingest.influx.lineprotocol import encode_lines
    from hipback.ingest.influx.writer import InfluxWriter

    with InfluxWriter(influxd.url, influx_db) as writer:
        writer.send_lines(encode_lines(_one_row_of_each()))
        assert not writer.rejected
    got = {}
    for s in influxd.query("SHOW FIELD KEYS", influx_db)["results"][0]["series"]:
        for key, typ in s["values"]:
            got[(s["name"], key)] = typ
    expected = {
        (m, f.name): INFLUX_TYPE[f.type] for m, spec in schema.MEASUREMENTS.items() for f in spec.fields
    }
    assert got == expected
    tags = influxd.query('SHOW TAG KEYS FROM "holds"', influx_db)["results"][0]["series"][0]["values"]
    assert sorted(t[0] for t in tags) == sorted(schema.MEASUREMENTS["holds"].tags)


def test_docs_describe_every_measurement_and_field():
    text = (ROOT / "docs" / "schema.md").read_text()
    for name, spec in schema.MEASUREMENTS.items():
        assert re.search(rf"`{name}`", text), name
        for f in spec.fields:
            assert f"`{f.name}`" in text, (name, f.name)
        for tag in spec.tags:
            assert f"`{tag}`" in text
    assert "cardinality" in text.lower() and "retention" in text.lower()


def test_no_field_is_nan_or_inf_in_encoded_status():
    from hipback.processing.progress import PatientProgress

    prog = PatientProgress().compute(now_s=T0, stride_t_s=[], stride_side=[], stride_peak_ext_deg=[])
    p = schema.patient_status_point("p01", T0, prog.status_fields())
    line = encode([p])
    assert "nan" not in line.lower() and "inf" not in line.lower()
    assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in p.fields.values())
    assert "flag_no_session=true" in line


def test_an_id_with_a_trailing_newline_is_refused() -> None:
    """``$`` matches before a final newline: ids are matched whole, so a newline can never reach a tag."""
    for bad in ("P-0042\n", "P-0042\nx", "\nP-0042"):
        with pytest.raises(ValueError):
            schema.check_tag("patient", bad)
    schema.check_tag("patient", "P-0042")

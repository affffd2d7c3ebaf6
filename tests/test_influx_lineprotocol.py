"""Line protocol escaping: unit cases, and property tests that write arbitrary identifiers and labels into
the real influxd and read them back unchanged, never adding a line or a point."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipback.ingest.influx.lineprotocol import (
    Point,
    encode,
    encode_lines,
    escape_tag_value,
    format_field_value,
)
from tests.influx_server import InfluxServer

# Identifiers: any Unicode except control characters and backslash (see the module's docstring),
# with the characters that need escaping made frequent.
_SPECIAL = st.sampled_from([",", "=", " ", '"', "#", "'", "é", "\u2028", "\u00a0", "😀", "a", "Z", "0", "-"])
_IDENT_CHARS = st.one_of(
    _SPECIAL, st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\\")
)
IDENT = st.text(_IDENT_CHARS, min_size=1, max_size=12)
MEASUREMENT = IDENT.filter(lambda s: not s.startswith("#"))
RESERVED = {"time", "_field", "_measurement", "probe", "count", "sentinel_tag", "v"}
TAG_KEY = IDENT.filter(lambda s: s not in RESERVED)
FIELD_KEY = IDENT.filter(lambda s: s not in RESERVED)
# String field values: anything valid, including newlines, quotes and backslashes.
LABEL = st.text(st.one_of(st.sampled_from(['"', "\\", "\n", "\r", " ", ",", "=", "\t"]),
                          st.characters(blacklist_categories=("Cs",))), max_size=20)


def _query(server: InfluxServer, q: str, db: str) -> list[dict]:
    body = server.query(q, db, epoch="ns")
    return body["results"][0].get("series", [])


def _write(server: InfluxServer, db: str, text: str) -> None:
    server.write(text, db)


# -- plain cases -----------------------------------------------------------------------------------


def test_escaping_matches_the_spec() -> None:
    p = Point("my meas,x", {"tag key": "a=b,c d", "empty": "", "none": None},
              {"f=1": 1.5, "n": 3, "ok": True, "s": 'say "hi" \\ bye', "nan": math.nan},
              1_700_000_000_123_456_789)
    assert encode([p]) == (
        'my\\ meas\\,x,tag\\ key=a\\=b\\,c\\ d f\\=1=1.5,n=3i,ok=true,s="say \\"hi\\" \\\\ bye" '
        "1700000000123456789\n"
    )
    assert encode([p], precision="ms").endswith(" 1700000000123\n")


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "tab\there", "back\\slash", "", "nul\x00"])
def test_unrepresentable_identifiers_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        escape_tag_value(bad)
    with pytest.raises(ValueError):
        encode([Point("m", {"t": "ok"}, {bad: 1.0}, 1)])
    with pytest.raises(ValueError):
        encode([Point(bad, {}, {"v": 1.0}, 1)])


def test_comment_measurement_and_reserved_keys_are_rejected() -> None:
    bad = (Point("#m", {}, {"v": 1}), Point("m", {"time": "x"}, {"v": 1}), Point("m", {}, {"time": 1}))
    for point in bad:
        with pytest.raises(ValueError):
            encode([point])


def test_non_finite_and_missing_fields_are_dropped() -> None:
    assert encode_lines([Point("m", {"t": "x"}, {"a": math.nan, "b": math.inf, "c": None}, 1)]) == []
    assert encode([Point("m", {}, {"a": -math.inf, "b": np.float32(2.5)}, 5)]) == "m b=2.5 5\n"
    assert format_field_value(np.int64(-7)) == "-7i"
    assert format_field_value(np.bool_(False)) == "false"
    with pytest.raises(ValueError):
        format_field_value(2**63)


# -- against the real server ------------------------------------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    measurement=MEASUREMENT,
    tags=st.dictionaries(TAG_KEY, IDENT, max_size=3),
    fields=st.dictionaries(FIELD_KEY, LABEL, min_size=1, max_size=3),
    number=st.floats(allow_nan=False, allow_infinity=False),
    count=st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_identifiers_and_labels_round_trip(
    influxd: InfluxServer, measurement, tags, fields, number, count
) -> None:
    # A tag and a field of the same name are legal but come back renamed from SELECT *: keep them apart.
    fields = {k: v for k, v in fields.items() if k not in tags}
    fields["probe"] = number
    db = influxd.create_database()
    try:
        points = [
            Point(measurement, tags, fields, 1_000_000_000),
            Point(measurement, tags, {"count": count}, 2_000_000_000),
            Point("sentinel", {"sentinel_tag": "x"}, {"v": 1.0}, 3_000_000_000),
        ]
        _write(influxd, db, encode(points))
        measurements = sorted(v[0] for s in _query(influxd, "SHOW MEASUREMENTS", db) for v in s["values"])
        assert measurements == sorted({measurement, "sentinel"})
        # Every point comes back once: measurement, tags and fields unchanged, nothing else.
        series = _query(influxd, "SELECT * FROM /.*/", db)
        got = []
        for s in series:
            for values in s["values"]:
                row = dict(zip(s["columns"], values, strict=True))
                got.append((s["name"], {k: v for k, v in row.items() if v is not None}))
        got.sort(key=lambda item: item[1]["time"])
        assert len(got) == 3, got
        name0, row0 = got[0]
        assert name0 == measurement
        # JSON prints floats as Go does (46413900753705850 for 4.641390075370585e16): compare as floats.
        row0["probe"] = float(row0["probe"])
        assert row0 == {"time": 1_000_000_000, **tags, **fields}
        assert got[1][0] == measurement and got[1][1]["count"] == count
        assert got[2] == ("sentinel", {"time": 3_000_000_000, "sentinel_tag": "x", "v": 1.0})
    finally:
        influxd.drop_database(db)



def test_injection_attempts_stay_data(influxd: InfluxServer, influx_db: str) -> None:
    evil = 'x" 1\nevil,patient=p99 v=666 1\n'
    points = [
        Point("holds", {"patient": "p01", "note": "a b,c=d"}, {"label": evil + "\n" + evil, "v": 1.0}, 10**9),
        Point("holds", {"patient": "p01 v=2 3", "note": ","}, {"label": "\\\"", "v": 2.0}, 2 * 10**9),
    ]
    influxd.write(encode(points), influx_db)
    series = _query(influxd, 'SELECT "label", "patient", "note", "v" FROM "holds"', influx_db)
    rows = [dict(zip(series[0]["columns"], v, strict=True)) for v in series[0]["values"]]
    assert [(r["label"], r["patient"], r["note"], r["v"]) for r in rows] == [
        (evil + "\n" + evil, "p01", "a b,c=d", 1.0),
        ("\\\"", "p01 v=2 3", ",", 2.0),
    ]
    assert [s["name"] for s in _query(influxd, "SHOW MEASUREMENTS", influx_db)[0:1]] == ["measurements"]
    assert _query(influxd, "SHOW MEASUREMENTS", influx_db)[0]["values"] == [["holds"]]

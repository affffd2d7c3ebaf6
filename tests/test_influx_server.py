"""The real-InfluxDB fixture: write line protocol to /write, read it back with InfluxQL on /query."""

from __future__ import annotations

import httpx
import pytest

from tests.influx_server import InfluxServer


def test_write_then_query_round_trip(influxd: InfluxServer, influx_db: str) -> None:
    body = "walk,patient=p01,side=left peak_ext_deg=12.5,steps=42i 1700000000000000000\n" \
           "walk,patient=p01,side=right peak_ext_deg=9.25,steps=40i 1700000001000000000\n"
    resp = httpx.post(f"{influxd.url}/write", params={"db": influx_db, "precision": "ns"}, content=body)
    assert resp.status_code == 204, resp.text
    result = influxd.query('SELECT "peak_ext_deg", "steps", "side" FROM "walk" ORDER BY time', influx_db,
                           epoch="ns")
    series = result["results"][0]["series"][0]
    cols = series["columns"]
    rows = [dict(zip(cols, v, strict=True)) for v in series["values"]]
    assert [(r["time"], r["side"], r["peak_ext_deg"], r["steps"]) for r in rows] == [
        (1700000000000000000, "left", 12.5, 42),
        (1700000001000000000, "right", 9.25, 40),
    ]


def test_databases_are_fresh_per_test(influxd: InfluxServer, influx_db: str) -> None:
    result = influxd.query("SHOW MEASUREMENTS", influx_db)
    assert "series" not in result["results"][0]


def test_server_restarts_on_same_data_and_port(tmp_path) -> None:
    with InfluxServer(tmp_path / "srv") as server:
        db = server.create_database("restart")
        url = server.url
        httpx.post(f"{url}/write", params={"db": db}, content="m v=1 1000000000\n").raise_for_status()
        server.stop()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/ping", timeout=1.0)
        server.start()
        assert server.url == url
        result = server.query('SELECT count("v") FROM "m"', db)
        assert result["results"][0]["series"][0]["values"][0][1] == 1

"""The InfluxDB writer against the real influxd: batching, gzip, retries, rejected data, auth, secrets."""

from __future__ import annotations

import gzip
import http.server
import logging
import threading
import time
import traceback
from collections.abc import Iterator

import httpx
import pytest

from hipback.ingest.errors import DatabaseError
from hipback.ingest.influx.lineprotocol import Point, encode_lines
from hipback.ingest.influx.settings import InfluxSettings, Secret
from hipback.ingest.influx.writer import InfluxWriter
from tests.influx_server import InfluxServer, free_port

T0_NS = 1_763_700_000_000_000_000


def _count(server: InfluxServer, db: str, measurement: str = "m") -> int:
    series = server.query(f'SELECT count(*) FROM "{measurement}"', db)["results"][0].get("series")
    return 0 if not series else max(v for v in series[0]["values"][0][1:] if v is not None)


def _points(n: int, start: int = 0, measurement: str = "m") -> list[Point]:
    return [Point(measurement, {"patient": "P-1", "side": "left"}, {"v": float(i), "n": i}, T0_NS + i * 10**7)
            for i in range(start, start + n)]


class FlakyProxy:
    """A real HTTP server in front of influxd: answers the first ``fail`` requests with ``status`` (and
    optional Retry-After), then forwards; records request headers and bodies."""

    def __init__(self, upstream: str, fail: int = 0, status: int = 503,
                 retry_after: str | None = None) -> None:
        self.upstream, self.fail, self.status, self.retry_after = upstream, fail, status, retry_after
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.requests.append((time.monotonic(), dict(self.headers), body))
                if len(proxy.requests) <= proxy.fail:
                    self.send_response(proxy.status)
                    if proxy.retry_after:
                        self.send_header("Retry-After", proxy.retry_after)
                    payload = b'{"error":"overloaded"}'
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in {"content-encoding", "content-type"}}
                resp = httpx.post(proxy.upstream + self.path, content=body, headers=headers)
                self.send_response(resp.status_code)
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_send_lines_batches_by_size_gzip_and_precision(influxd: InfluxServer, influx_db: str) -> None:
    lines = encode_lines(_points(25), "ms")
    with FlakyProxy(influxd.url) as proxy:
        with InfluxWriter(proxy.url, influx_db, batch_size=10) as writer:
            result = writer.send_lines(lines, precision="ms")
        assert (result.accepted, result.requests, result.rejected) == (25, 3, [])
    assert all(headers["Content-Encoding"] == "gzip" for _, headers, _ in proxy.requests)
    batches = [gzip.decompress(body).decode().splitlines() for _, _, body in proxy.requests]
    assert batches == [lines[:10], lines[10:20], lines[20:]]  # in order, one request at a time
    assert batches[0][0].endswith(f" {T0_NS // 10**6}")
    rows = influxd.query('SELECT "v", "n" FROM "m" ORDER BY time', influx_db, epoch="ms")
    values = rows["results"][0]["series"][0]["values"]
    assert [(t, v, n) for t, v, n in values] == [(T0_NS // 10**6 + 10 * i, float(i), i) for i in range(25)]


def test_retries_5xx_and_429_with_retry_after(influxd: InfluxServer, influx_db: str) -> None:
    with FlakyProxy(influxd.url, fail=2, status=503) as proxy:
        with InfluxWriter(proxy.url, influx_db, backoff_base_s=0.05, max_retries=3) as writer:
            result = writer.send_lines([f"m v={i} {T0_NS + i}" for i in range(5)])
        assert result.accepted == 5 and len(proxy.requests) == 3 and writer.stats["retries"] == 2
    with FlakyProxy(influxd.url, fail=1, status=429, retry_after="1") as proxy:
        with InfluxWriter(proxy.url, influx_db, backoff_base_s=0.01, max_retries=3) as writer:
            writer.send_lines([f"m v={i} {T0_NS + i}" for i in range(5, 8)])
        waited = proxy.requests[1][0] - proxy.requests[0][0]
        assert waited >= 0.95  # Retry-After: 1 honoured although the backoff alone would be ~10 ms
    assert _count(influxd, influx_db) == 8


def test_persistent_5xx_gives_up_with_one_sentence(influxd: InfluxServer, influx_db: str) -> None:
    with FlakyProxy(influxd.url, fail=100, status=500) as proxy:
        writer = InfluxWriter(proxy.url, influx_db, backoff_base_s=0.01, max_retries=2)
        lines = encode_lines(_points(4))
        with pytest.raises(DatabaseError) as err:
            writer.send_lines(lines)
        assert len(proxy.requests) == 3
        assert "HTTP 500" in str(err.value) and "overloaded" in str(err.value) and "\n" not in str(err.value)
        assert writer.stats["lines_sent"] == 0  # nothing counted as sent
    writer.url = influxd.url  # the server is back (same writer, new address for the test)
    assert writer.send_lines(lines).accepted == 4
    writer.close()
    assert _count(influxd, influx_db) == 4


def test_unreachable_server_is_one_plain_sentence() -> None:
    writer = InfluxWriter(f"http://127.0.0.1:{free_port()}", "hipback", backoff_base_s=0.01, max_retries=1,
                          timeout_s=2)
    with pytest.raises(DatabaseError) as err:
        writer.send_lines(["m v=1 1"])
    message = str(err.value)
    assert "refused the connection" in message and "after 2 attempts" in message and "\n" not in message
    assert err.value.__cause__ is None and err.value.__context__ is None
    with pytest.raises(DatabaseError, match="cannot be reached"):
        writer.ensure_database()


def test_bad_data_is_set_aside_and_good_lines_are_written(influxd: InfluxServer, influx_db: str) -> None:
    influxd.write(f"m v=1.0 {T0_NS - 1}", influx_db)  # v is a float field from now on
    lines = [f"m v={i}.5 {T0_NS + i}" for i in range(40)]
    lines[7] = f'm v="text" {T0_NS + 7}'  # field type conflict
    lines[30] = "m v=bogus"  # unparseable
    seen = []
    with FlakyProxy(influxd.url) as proxy:
        with InfluxWriter(proxy.url, influx_db, on_rejected=seen.append) as writer:
            result = writer.send_lines(lines)
        requests = len(proxy.requests)
    assert result.rejected_indices == [7, 30]
    assert result.accepted == 38 and len(seen) == 2
    assert any("conflict" in r.message for r in seen) and any("unable to parse" in r.message for r in seen)
    assert requests <= 2 + 2 * 2 * 6  # bounded: no retrying the same bad batch
    assert _count(influxd, influx_db) == 39


def test_missing_database_and_ensure_database(influxd: InfluxServer) -> None:
    name = "hb_missing_db"
    writer = InfluxWriter(influxd.url, name, max_retries=0)
    try:
        with pytest.raises(DatabaseError, match="does not exist"):
            writer.send_lines(["m v=1 1"])
        writer.ensure_database()
        writer.ensure_database()  # idempotent
        assert writer.send_lines(["m v=1 1"]).accepted == 1
    finally:
        writer.close()
        influxd.drop_database(name)


@pytest.fixture(scope="module")
def auth_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path_factory.mktemp("influxd-auth"), auth_enabled=True)
    server.start()
    # With auth on, the first user must be an admin; later statements need credentials.
    first = "CREATE USER admin WITH PASSWORD 'Adm1n-s3cret' WITH ALL PRIVILEGES"
    httpx.post(f"{server.url}/query", data={"q": first}).raise_for_status()
    admin = ("admin", "Adm1n-s3cret")
    for q in ("CREATE DATABASE existing", "CREATE USER writer WITH PASSWORD 'Wr1ter-s3cret'",
              "GRANT WRITE ON existing TO writer"):
        httpx.post(f"{server.url}/query", data={"q": q}, auth=admin).raise_for_status()
    try:
        yield server
    finally:
        server.close()


def test_user_password_auth_and_secrets_never_shown(auth_influxd: InfluxServer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ok = InfluxWriter(auth_influxd.url, "existing", username="writer", password=Secret("Wr1ter-s3cret"))
    assert ok.send_lines(["m v=1 1"]).accepted == 1
    ok.ensure_database()  # not allowed to create, but the database exists: fine
    ok.close()

    bad = InfluxWriter(auth_influxd.url, "existing", username="writer", password="Wrong-s3cret",
                       max_retries=0)
    with pytest.raises(DatabaseError) as err:
        bad.send_lines(["m v=2 2"])
    assert "401" in str(err.value) and "HIPBACK_INFLUX_PASSWORD" in str(err.value)
    # credentials in the URL are moved out of it
    url_with_password = auth_influxd.url.replace("http://", "http://writer:Url-s3cret@")
    in_url = InfluxWriter(url_with_password, "nope", max_retries=0)
    with pytest.raises(DatabaseError) as err2:
        in_url.ensure_database()
    assert "create it yourself" in str(err2.value)
    shown = " ".join([
        repr(ok), repr(bad), repr(in_url), str(err.value), repr(err.value), str(err2.value),
        "".join(traceback.format_exception(err.value)), "".join(traceback.format_exception(err2.value)),
        caplog.text, repr(InfluxSettings(url="http://x", token=Secret("Tok-s3cret"), password=Secret("p"))),
    ])
    for secret in ("Wr1ter-s3cret", "Wrong-s3cret", "Url-s3cret", "Tok-s3cret"):
        assert secret not in shown
    bad.close()
    in_url.close()


def test_token_auth_header_and_not_shown(influxd: InfluxServer, influx_db: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with FlakyProxy(influxd.url, fail=1, status=503) as proxy:
        writer = InfluxWriter(proxy.url, influx_db, token=Secret("Tok-s3cret-123"), backoff_base_s=0.01,
                              max_retries=0)
        with pytest.raises(DatabaseError) as err:
            writer.send_lines(["m v=1 1"])
        assert writer.send_lines(["m v=1 1"]).accepted == 1
        writer.close()
    assert all(h["Authorization"] == "Token Tok-s3cret-123" for _, h, _ in proxy.requests)
    shown = repr(writer) + str(err.value) + "".join(traceback.format_exception(err.value)) + caplog.text
    assert "Tok-s3cret-123" not in shown


def test_verify_false_warns_for_https() -> None:
    with pytest.warns(UserWarning, match="verification is turned off"):
        InfluxWriter("https://127.0.0.1:1", "x", verify=False).close()


def test_settings_from_env(tmp_path) -> None:
    assert InfluxSettings.from_env({}) is None
    secret = tmp_path / "token"
    secret.write_text("Tok-file-s3cret\n")
    secret.chmod(0o644)
    env = {"HIPBACK_INFLUX_URL": "https://influx.example:8086/", "HIPBACK_INFLUX_TOKEN_FILE": str(secret)}
    from hipback.ingest.errors import ConfigError

    with pytest.raises(ConfigError, match="chmod 600") as err:
        InfluxSettings.from_env(env)
    assert "Tok-file-s3cret" not in str(err.value)
    secret.chmod(0o600)
    s = InfluxSettings.from_env(env)
    assert s.url == "https://influx.example:8086" and s.database == "hipback" and s.verify is True
    assert s.token.reveal() == "Tok-file-s3cret" and "Tok-file-s3cret" not in repr(s) + f"{s.token}"
    s2 = InfluxSettings.from_env({"HIPBACK_INFLUX_URL": "http://h:8086", "HIPBACK_INFLUX_USER": "u",
                                  "HIPBACK_INFLUX_PASSWORD": "pw", "HIPBACK_INFLUX_DATABASE": "clinic",
                                  "HIPBACK_INFLUX_TLS_VERIFY": "false"})
    assert (s2.username, s2.password.reveal(), s2.database, s2.verify) == ("u", "pw", "clinic", False)
    for bad in ({"HIPBACK_INFLUX_URL": "influx:8086"},
                {"HIPBACK_INFLUX_URL": "http://h", "HIPBACK_INFLUX_TOKEN": "t", "HIPBACK_INFLUX_USER": "u"},
                {"HIPBACK_INFLUX_URL": "http://h", "HIPBACK_INFLUX_PASSWORD": "p"}):
        with pytest.raises(ConfigError):
            InfluxSettings.from_env(bad)

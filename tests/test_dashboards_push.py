"""``hipback dashboards push`` against a small recording stand-in for Grafana's HTTP API.

Grafana cannot run here, so this is the one mocked boundary: a local HTTP server that answers the
Grafana 11 API endpoints ``grafana-client`` calls (folders, data sources, dashboards, alerting
provisioning), keeps what was created, and records every request. The tests check the payloads, the
create-then-update behaviour, the auth header, and that no secret is ever printed.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml
from typer.testing import CliRunner

from hipback.ingest.cli import app
from hipback.ingest.commands import dashboards as cmd
from hipback.ingest.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DASH_DIR = ROOT / "dashboards"
GRAFANA_TOKEN = "glsa_test_SECRET_grafana_token_4711"
INFLUX_TOKEN = "influx_SECRET_token_0815"


class FakeGrafana:
    """Just enough of the Grafana API, with state, recording (method, path, headers, body)."""

    def __init__(self, require_token: str | None = GRAFANA_TOKEN) -> None:
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []
        self.folders: dict[str, dict] = {}
        self.datasources: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.rules: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.require_token = require_token
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                path = unquote(self.path.split("?")[0])
                fake.calls.append((self.command, path, dict(self.headers), body))
                if fake.require_token and self.headers.get("Authorization") != f"Bearer {fake.require_token}":
                    return self._reply(401, {"message": "Unauthorized"})
                code, reply = fake.route(self.command, path, body, self.headers)
                self._reply(code, reply)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def route(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        nf = (404, {"message": "not found"})
        if parts[:2] == ["api", "folders"]:
            if method == "GET" and len(parts) == 3:
                return (200, self.folders[parts[2]]) if parts[2] in self.folders else nf
            if method == "POST":
                self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
                return 200, self.folders[body["uid"]]
        if parts[:3] == ["api", "datasources", "uid"]:
            uid = parts[3]
            if method == "GET":
                return (200, self.datasources[uid]) if uid in self.datasources else nf
            if method == "PUT":
                self.datasources[uid] = body
                return 200, {"message": "Datasource updated"}
        if parts == ["api", "datasources"] and method == "POST":
            self.datasources[body["uid"]] = body
            return 200, {"message": "Datasource added", "datasource": body}
        if parts == ["api", "dashboards", "db"] and method == "POST":
            self.dashboards[body["dashboard"]["uid"]] = body
            return 200, {"status": "success", "uid": body["dashboard"]["uid"], "version": 1}
        if parts[:4] == ["api", "v1", "provisioning", "alert-rules"]:
            if method == "GET" and len(parts) == 5:
                return (200, self.rules[parts[4]]) if parts[4] in self.rules else nf
            if method == "POST":
                self.rules[body["uid"]] = body
                return 201, body
            if method == "PUT" and len(parts) == 5:
                self.rules[parts[4]] = body
                return 200, body
        if (
            parts[:4] == ["api", "v1", "provisioning", "folder"]
            and parts[5] == "rule-groups"
            and method == "PUT"
        ):
            self.groups[parts[6]] = body
            return 200, body
        return 404, {"message": f"no route {method} {path}"}

    def __enter__(self) -> FakeGrafana:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _invoke(args: list[str], env: dict[str, str]):
    runner = CliRunner()
    return runner.invoke(app, args, env=env, catch_exceptions=True)


def _env(**extra: str) -> dict[str, str]:
    base = {
        k: ""
        for k in (
            "HIPBACK_GRAFANA_TOKEN",
            "HIPBACK_INFLUX_TOKEN",
            "HIPBACK_INFLUX_USER",
            "HIPBACK_INFLUX_PASSWORD",
            "HIPBACK_INFLUX_URL",
            "HIPBACK_INFLUX_DATABASE",
        )
    }
    base.update(extra)
    return base


def test_push_creates_then_updates_everything_and_never_prints_secrets():
    with FakeGrafana() as g:
        env = _env(
            HIPBACK_GRAFANA_TOKEN=GRAFANA_TOKEN,
            HIPBACK_INFLUX_TOKEN=INFLUX_TOKEN,
            HIPBACK_INFLUX_URL="http://influxdb:8086",
            HIPBACK_INFLUX_DATABASE="hipback",
        )
        first = _invoke(["dashboards", "push", "--grafana-url", g.url], env)
        assert first.exit_code == 0, first.output
        n_first = len(g.calls)
        second = _invoke(["dashboards", "push", "--grafana-url", g.url], env)
        assert second.exit_code == 0, second.output

    for out in (first.output, second.output):
        assert GRAFANA_TOKEN not in out and INFLUX_TOKEN not in out
        assert f"pushed {len(list(DASH_DIR.glob('*.json')))} dashboards and 3 alert rules" in out
    # every request carried the Grafana token as a bearer token
    assert all(h.get("Authorization") == f"Bearer {GRAFANA_TOKEN}" for _, _, h, _ in g.calls)
    # folder and data source
    assert g.folders == {"hipback": {"uid": "hipback", "title": "hipback"}}
    ds = g.datasources["hipback-influxdb"]
    assert ds["type"] == "influxdb" and ds["url"] == "http://influxdb:8086" and ds["access"] == "proxy"
    assert ds["jsonData"]["version"] == "InfluxQL" and ds["jsonData"]["dbName"] == "hipback"
    assert ds["jsonData"]["httpHeaderName1"] == "Authorization"
    assert ds["secureJsonData"]["httpHeaderValue1"] == f"Token {INFLUX_TOKEN}"
    # dashboards: exactly the repository's JSON, in the folder, overwriting
    files = {json.loads(p.read_text())["uid"]: json.loads(p.read_text()) for p in DASH_DIR.glob("*.json")}
    assert set(g.dashboards) == set(files)
    for uid, body in g.dashboards.items():
        assert body["folderUid"] == "hipback" and body["overwrite"] is True
        sent = dict(body["dashboard"])
        assert sent.pop("id") is None
        assert sent == files[uid]
    # alert rules: as in the provisioning YAML plus folder/group/org, then the group interval
    groups = yaml.safe_load((DASH_DIR / "provisioning/alerting/hipback-rules.yaml").read_text())["groups"]
    yaml_rules = {r["uid"]: r for gr in groups for r in gr["rules"]}
    assert set(g.rules) == set(yaml_rules)
    for uid, rule in g.rules.items():
        assert rule["folderUID"] == "hipback" and rule["ruleGroup"] == groups[0]["name"]
        assert rule["data"] == yaml_rules[uid]["data"] and rule["condition"] == yaml_rules[uid]["condition"]
    assert g.groups[groups[0]["name"]]["interval"] == 3600
    # the first run created, the second updated (PUT) instead of creating again
    first_calls, second_calls = g.calls[:n_first], g.calls[n_first:]
    posts = lambda calls, p: sum(1 for m, path, _, _ in calls if m == "POST" and path == p)  # noqa: E731
    assert posts(first_calls, "/api/folders") == 1 and posts(second_calls, "/api/folders") == 0
    assert posts(first_calls, "/api/datasources") == 1 and posts(second_calls, "/api/datasources") == 0
    assert posts(first_calls, "/api/v1/provisioning/alert-rules") == 3
    assert posts(second_calls, "/api/v1/provisioning/alert-rules") == 0
    assert (
        sum(
            1
            for m, p, _, _ in second_calls
            if m == "PUT" and p.startswith("/api/v1/provisioning/alert-rules/")
        )
        == 3
    )
    assert (
        sum(1 for m, p, _, _ in second_calls if m == "PUT" and p == "/api/datasources/uid/hipback-influxdb")
        == 1
    )
    # rules stay editable by clinicians in the UI
    assert all(h.get("X-Disable-Provenance") for m, p, h, _ in g.calls if "alert-rules" in p and m != "GET")


def test_push_with_1x_credentials_and_token_file(tmp_path):
    token_file = tmp_path / "grafana-token"
    token_file.write_text(GRAFANA_TOKEN + "\n")
    os.chmod(token_file, 0o600)
    with FakeGrafana() as g:
        env = _env(HIPBACK_INFLUX_USER="reader", HIPBACK_INFLUX_PASSWORD="pw_SECRET")
        res = _invoke(
            [
                "dashboards",
                "push",
                "--grafana-url",
                g.url,
                "--token-file",
                str(token_file),
                "--influx-url",
                "http://127.0.0.1:8086",
                "--skip-alerts",
            ],
            env,
        )
        assert res.exit_code == 0, res.output
    assert "pw_SECRET" not in res.output and GRAFANA_TOKEN not in res.output
    ds = g.datasources["hipback-influxdb"]
    assert ds["user"] == "reader" and ds["secureJsonData"] == {"password": "pw_SECRET"}
    assert "httpHeaderName1" not in ds["jsonData"]
    assert not g.rules


def test_token_file_readable_by_others_is_refused(tmp_path):
    token_file = tmp_path / "grafana-token"
    token_file.write_text(GRAFANA_TOKEN)
    os.chmod(token_file, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        cmd.read_token(token_file, env={})
    with pytest.raises(ConfigError, match="HIPBACK_GRAFANA_TOKEN"):
        cmd.read_token(None, env={})


def test_wrong_token_and_unreachable_grafana_give_one_sentence():
    with FakeGrafana(require_token="another-token") as g:
        with pytest.raises(cmd.GrafanaError, match="refused the token") as err:
            cmd.push(g.url, GRAFANA_TOKEN, influx_url="http://x:8086", env={})
        assert GRAFANA_TOKEN not in str(err.value)
        url = g.url
    with pytest.raises(cmd.GrafanaError, match="could not reach Grafana"):
        cmd.push(url, GRAFANA_TOKEN, influx_url="http://x:8086", env={}, timeout_s=2.0)
    with pytest.raises(ConfigError, match="InfluxDB URL"):
        cmd.push(url, GRAFANA_TOKEN, influx_url=None, env={})


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("url", ["127.0.0.1:{port}", "localhost:{port}", "ftp://127.0.0.1:{port}"])
def test_grafana_url_without_http_scheme_is_bad_input_before_any_request(url, monkeypatch, capsys):
    from hipback.ingest import cli

    monkeypatch.setenv("HIPBACK_GRAFANA_TOKEN", GRAFANA_TOKEN)
    with FakeGrafana() as g:
        given = url.format(port=g.server.server_address[1])
        code = cli.run(["dashboards", "push", "--grafana-url", given, "--skip-datasource"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("hipback: the Grafana URL must start with http:// or https://")
    assert len(err.strip().splitlines()) == 1 and "InvalidSchema" not in err
    assert g.calls == []


@pytest.mark.parametrize("url", ["http://", "http://localhost:99999", "https://grafana example.org"])
def test_grafana_url_without_host_or_with_bad_port_is_bad_input(url):
    with pytest.raises(ConfigError, match="not a valid URL"):
        cmd.push(url, GRAFANA_TOKEN, with_datasource=False, env={})


def test_unreachable_grafana_says_why_in_words_and_hides_url_credentials():
    port = _free_port()  # nothing listens there any more
    with pytest.raises(cmd.GrafanaError) as err:
        cmd.push(f"http://admin:pw_SECRET@127.0.0.1:{port}", GRAFANA_TOKEN, with_datasource=False, env={})
    text = str(err.value)
    assert "connection was refused" in text
    assert "ConnectionError" not in text and "pw_SECRET" not in text
    assert err.value.exit_code == 3


def test_grafana_that_never_answers_is_reported_as_a_timeout():
    import socket

    with socket.socket() as server:  # accepts connections (backlog) and never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(cmd.GrafanaError, match=r"no answer within 0\.5 s") as err:
            cmd.push(url, GRAFANA_TOKEN, with_datasource=False, env={}, timeout_s=0.5)
    assert "Timeout" not in str(err.value)


def _wrapped(inner: BaseException) -> Exception:
    """``inner`` wrapped as niquests wraps urllib3's errors (an argument, then a cause)."""
    import niquests
    import urllib3

    retry = urllib3.exceptions.MaxRetryError(None, "/api/folders/hipback", reason=inner)
    outer = niquests.exceptions.ConnectionError(retry)
    outer.__cause__ = retry
    return outer


def test_reasons_for_an_untrusted_certificate_and_an_unknown_host():
    import socket
    import ssl

    cert = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    cert.verify_message = "self-signed certificate"
    reason = cmd.unreachable_reason(_wrapped(cert), 30)
    assert "TLS certificate is not trusted (self-signed certificate)" in reason
    dns = socket.gaierror(-2, "Name or service not known")
    assert "host name could not be resolved" in cmd.unreachable_reason(_wrapped(dns), 30)
    assert cmd.unreachable_reason(_wrapped(ConnectionResetError(104, "reset")), 30) == (
        "the connection was reset by the server"
    )

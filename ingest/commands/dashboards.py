"""``hipback dashboards push``: provision an existing Grafana (11+) through its HTTP API.

Creates or updates, through ``grafana-client``:

1. the folder (default title/uid ``hipback``);
2. the InfluxDB data source with uid ``hipback-influxdb`` (InfluxQL; ``Authorization: Token ...``
   header for InfluxDB 2.x/3.x when an InfluxDB token is given, user/password for 1.x, or no auth),
   unless ``--skip-datasource``;
3. every dashboard of ``dashboards/*.json`` into that folder (overwriting the same uid);
4. the clinician alert rules of ``dashboards/provisioning/alerting/hipback-rules.yaml`` and their
   rule group's evaluation interval (editable in the Grafana UI afterwards).

Secrets: the Grafana token comes from ``HIPBACK_GRAFANA_TOKEN`` or ``--token-file`` (a file readable
only by its owner); the InfluxDB read credentials from ``HIPBACK_INFLUX_TOKEN`` or
``HIPBACK_INFLUX_USER``/``HIPBACK_INFLUX_PASSWORD`` (or their ``_FILE`` variants). None of them is
ever printed or logged.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from hipback.ingest.errors import ConfigError, HipbackError
from hipback.ingest.influx.settings import read_secret_file

DATASOURCE_UID = "hipback-influxdb"
REPO_DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"


class GrafanaError(HipbackError):
    """Grafana refused a request or could not be reached."""

    exit_code = 3


@dataclass
class PushResult:
    """What was done: (kind, uid, "created"|"updated") per object."""

    actions: list[tuple[str, str, str]] = field(default_factory=list)


def read_token(token_file: Path | None, env: Mapping[str, str] | None = None) -> str:
    """The Grafana API token: ``HIPBACK_GRAFANA_TOKEN``, else ``token_file`` (must be chmod 600)."""
    env = os.environ if env is None else env
    token = env.get("HIPBACK_GRAFANA_TOKEN", "").strip()
    if token:
        return token
    if token_file is None:
        raise ConfigError(
            "no Grafana token: set HIPBACK_GRAFANA_TOKEN or pass --token-file with a file "
            "holding a Grafana service-account token."
        )
    return read_secret_file(token_file, "Grafana token").reveal()


def _env_secret(env: Mapping[str, str], name: str, what: str) -> str | None:
    """``HIPBACK_INFLUX_<name>``, else the file named by ``HIPBACK_INFLUX_<name>_FILE``."""
    value = env.get(f"HIPBACK_INFLUX_{name}", "").strip()
    path = env.get(f"HIPBACK_INFLUX_{name}_FILE", "").strip()
    if value:
        return value
    return read_secret_file(path, what).reveal() if path else None


def datasource_payload(
    influx_url: str, database: str, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The InfluxQL data source, same uid and settings as ``dashboards/provisioning/datasources``.

    Credentials for Grafana's reads, from the same variables the writer uses: ``HIPBACK_INFLUX_TOKEN``
    (or ``_TOKEN_FILE``) as an ``Authorization: Token`` header (2.x/3.x), else ``HIPBACK_INFLUX_USER`` with
    ``HIPBACK_INFLUX_PASSWORD`` (or ``_PASSWORD_FILE``) for 1.x, else no authentication.
    """
    env = os.environ if env is None else env
    ds: dict[str, Any] = {
        "name": "hipback InfluxDB",
        "uid": DATASOURCE_UID,
        "type": "influxdb",
        "access": "proxy",
        "url": influx_url,
        "isDefault": False,
        "jsonData": {"version": "InfluxQL", "dbName": database, "httpMode": "POST", "timeInterval": "10s"},
        "secureJsonData": {},
    }
    token = _env_secret(env, "TOKEN", "InfluxDB API token")
    user = env.get("HIPBACK_INFLUX_USER", "").strip()
    if token:
        ds["jsonData"]["httpHeaderName1"] = "Authorization"
        ds["secureJsonData"]["httpHeaderValue1"] = f"Token {token}"
    elif user:
        ds["user"] = user
        ds["secureJsonData"]["password"] = _env_secret(env, "PASSWORD", "InfluxDB password") or ""
    return ds


def load_dashboards(folder: Path) -> list[dict[str, Any]]:
    """Every ``*.json`` dashboard in ``folder`` (sorted by file name)."""
    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise ConfigError(f"no dashboard JSON files in {folder}.")
    out = []
    for f in files:
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{f}: not a readable dashboard JSON file ({exc}).") from None
    return out


def load_rule_groups(rules_file: Path) -> list[dict[str, Any]]:
    try:
        doc = yaml.safe_load(Path(rules_file).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{rules_file}: not a readable alert-rules YAML file ({exc}).") from None
    return list(doc.get("groups", []))


def _duration_s(text: str | int) -> int:
    if isinstance(text, int):
        return text
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def _is_missing(exc: Exception) -> bool:
    return getattr(exc, "status_code", None) == 404


def check_grafana_url(url: str) -> str:
    """``url`` as it may be shown (without a ``user:password@`` part); raises :class:`ConfigError` unless it
    is an ``http://`` or ``https://`` URL with a host name and, if any, a port number in 1-65535."""
    example = "for example https://grafana.example.org or http://localhost:3000"
    if not url.strip().lower().startswith(("http://", "https://")):
        raise ConfigError(f"the Grafana URL must start with http:// or https://, {example}.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError for a port that is not a number in 0-65535
        if not parts.hostname:
            raise ValueError("no host name")
        if port == 0 or any(ord(c) < 33 or ord(c) == 127 for c in url.strip()):
            raise ValueError("bad port or spaces")
    except ValueError:
        raise ConfigError(
            f"the Grafana URL is not a valid URL (it needs a host name and, if any, a port number "
            f"in 1-65535), {example}."
        ) from None
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc).geturl()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (``__cause__``, ``__context__``, urllib3's ``reason``, and
    exceptions passed as arguments, as niquests does with urllib3's ``MaxRetryError``)."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        nested = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        todo.extend(n for n in nested if isinstance(n, BaseException))


def unreachable_reason(exc: BaseException, timeout_s: float) -> str:
    """Why a request did not get an answer, in words (the name of the exception is no help to a user)."""
    chain = list(_causes(exc))
    names = {type(e).__name__ for e in chain}
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            detail = getattr(e, "verify_message", "") or "certificate verify failed"
            return (
                f"its TLS certificate is not trusted ({detail}); give the CA bundle through "
                "REQUESTS_CA_BUNDLE, or add ?verify=false to the URL for a test server"
            )
    if any(isinstance(e, socket.gaierror) for e in chain) or "NameResolutionError" in names:
        return "the host name could not be resolved (check the spelling and the network)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "the connection was refused (nothing listens at that host and port)"
    if any(isinstance(e, TimeoutError) for e in chain) or any("Timeout" in n for n in names):
        return f"no answer within {timeout_s:g} s (connection timed out)"
    for e in chain:
        if isinstance(e, ssl.SSLError):
            return "the TLS handshake failed (is it an http:// server given as https://?)"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "the connection was reset by the server"
    if any(isinstance(e, ConnectionAbortedError) for e in chain) or "RemoteDisconnected" in names:
        return "the server closed the connection without answering (is it an https:// server given as http://?)"
    for e in chain:
        if isinstance(e, OSError) and e.strerror:
            return f"the connection failed ({e.strerror.lower()})"
    return "the connection failed"


def push(
    grafana_url: str,
    token: str,
    *,
    folder_title: str = "hipback",
    folder_uid: str = "hipback",
    influx_url: str | None = None,
    database: str = "hipback",
    dashboards_dir: Path | None = None,
    rules_file: Path | None = None,
    with_datasource: bool = True,
    with_alerts: bool = True,
    echo: Callable[[str], None] = lambda _msg: None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> PushResult:
    """Provision Grafana at ``grafana_url``; see the module docstring. Raises :class:`GrafanaError`."""
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

    shown_url = check_grafana_url(grafana_url)  # before anything is read or requested
    dashboards_dir = REPO_DASHBOARDS if dashboards_dir is None else Path(dashboards_dir)
    rules_file = (
        dashboards_dir / "provisioning" / "alerting" / "hipback-rules.yaml"
        if rules_file is None
        else Path(rules_file)
    )
    dashboards = load_dashboards(dashboards_dir)
    groups = load_rule_groups(rules_file) if with_alerts else []
    if with_datasource and not influx_url:
        raise ConfigError(
            "no InfluxDB URL for the Grafana data source: pass --influx-url or set "
            "HIPBACK_INFLUX_URL (or use --skip-datasource)."
        )

    api = GrafanaApi.from_url(grafana_url, credential=token, timeout=timeout_s)
    result = PushResult()

    def call(what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except GrafanaUnauthorizedError:
            raise GrafanaError(
                f"Grafana at {shown_url} refused the token (401) while trying to {what}; "
                "check HIPBACK_GRAFANA_TOKEN."
            ) from None
        except GrafanaClientError as exc:
            if _is_missing(exc):
                raise
            raise GrafanaError(
                f"Grafana at {shown_url} refused to {what} (HTTP {exc.status_code}: {exc.message})."
            ) from None
        except GrafanaException as exc:
            if not exc.status_code:  # connection refused, DNS, TLS, timeout
                raise GrafanaError(
                    f"could not reach Grafana at {shown_url} to {what}: {unreachable_reason(exc, timeout_s)}."
                ) from None
            raise GrafanaError(
                f"Grafana at {shown_url} failed to {what} (HTTP {exc.status_code})."
            ) from None
        except Exception as exc:  # connection refused, DNS, TLS: niquests exceptions
            raise GrafanaError(
                f"could not reach Grafana at {shown_url} to {what}: {unreachable_reason(exc, timeout_s)}."
            ) from None

    def get_or_none(what: str, fn: Callable[[], Any]) -> Any:
        try:
            return call(what, fn)
        except GrafanaClientError as exc:
            if _is_missing(exc):
                return None
            raise

    # 1. folder
    if get_or_none("read the folder", lambda: api.folder.get_folder(folder_uid)) is None:
        call("create the folder", lambda: api.folder.create_folder(folder_title, uid=folder_uid))
        result.actions.append(("folder", folder_uid, "created"))
    else:
        result.actions.append(("folder", folder_uid, "exists"))

    # 2. data source
    if with_datasource:
        ds = datasource_payload(str(influx_url), database, env)
        existing = get_or_none(
            "read the data source", lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        )
        if existing is None:
            call("create the data source", lambda: api.datasource.create_datasource(ds))
            result.actions.append(("datasource", DATASOURCE_UID, "created"))
        else:
            call(
                "update the data source", lambda: api.datasource.update_datasource_by_uid(DATASOURCE_UID, ds)
            )
            result.actions.append(("datasource", DATASOURCE_UID, "updated"))
        echo(f"data source {DATASOURCE_UID} -> {influx_url} (database {database})")

    # 3. dashboards
    for dash in dashboards:
        body = {
            "dashboard": {**dash, "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "hipback dashboards push",
        }
        call(f"save dashboard {dash.get('uid')}", lambda body=body: api.dashboard.update_dashboard(body))
        result.actions.append(("dashboard", str(dash.get("uid")), "saved"))
        echo(f"dashboard {dash.get('title')} ({dash.get('uid')})")

    # 4. alert rules (per rule, then the group's interval)
    prov = api.alertingprovisioning
    for group in groups:
        rules = []
        for rule in group.get("rules", []):
            payload = {
                **rule,
                "folderUID": folder_uid,
                "ruleGroup": group["name"],
                "orgID": int(group.get("orgId", 1)),
            }
            uid = rule["uid"]
            if get_or_none(f"read alert rule {uid}", lambda uid=uid: prov.get_alertrule(uid)):
                call(
                    f"update alert rule {uid}",
                    lambda uid=uid, p=payload: prov.update_alertrule(uid, p, disable_provenance=True),
                )
                result.actions.append(("alert-rule", uid, "updated"))
            else:
                call(
                    f"create alert rule {uid}",
                    lambda p=payload: prov.create_alertrule(p, disable_provenance=True),
                )
                result.actions.append(("alert-rule", uid, "created"))
            rules.append(payload)
            echo(f"alert rule {rule['title']}")
        group_body = {
            "title": group["name"],
            "folderUid": folder_uid,
            "interval": _duration_s(group.get("interval", "1h")),
            "rules": rules,
        }
        call(
            f"set the interval of rule group {group['name']}",
            lambda g=group_body: prov.update_rule_group(folder_uid, g["title"], g, disable_provenance=True),
        )
    return result


def run(
    grafana_url: str,
    token_file: Path | None = None,
    influx_url: str | None = None,
    database: str | None = None,
    folder: str = "hipback",
    dashboards_dir: Path | None = None,
    skip_datasource: bool = False,
    skip_alerts: bool = False,
) -> PushResult:
    """CLI entry: read secrets, push, print one line per object (never a secret)."""
    import typer

    shown_url = check_grafana_url(grafana_url)
    token = read_token(token_file)
    influx_url = influx_url or os.environ.get("HIPBACK_INFLUX_URL") or None
    database = database or os.environ.get("HIPBACK_INFLUX_DATABASE") or "hipback"
    result = push(
        grafana_url,
        token,
        folder_title=folder,
        influx_url=influx_url,
        database=database,
        dashboards_dir=dashboards_dir,
        with_datasource=not skip_datasource,
        with_alerts=not skip_alerts,
        echo=typer.echo,
    )
    n_dash = sum(1 for kind, _, _ in result.actions if kind == "dashboard")
    n_rules = sum(1 for kind, _, _ in result.actions if kind == "alert-rule")
    typer.echo(f"pushed {n_dash} dashboards and {n_rules} alert rules to {shown_url} (folder {folder}).")
    return result

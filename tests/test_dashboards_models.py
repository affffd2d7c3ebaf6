"""The dashboard JSON, alert rules, provisioning files and docker-compose.yml checked against the
models of the tools that will read them: Grafana's own models (``grafana-foundation-sdk``) and a
validating parser of the Compose Specification (``compose-spec``, the Rust ``compose_spec`` crate).

Grafana itself cannot run here; these tests catch misspelt keys, wrong enum values, broken links
and inconsistent uids before a Grafana would.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.cog.runtime import Runtime
from grafana_foundation_sdk.models import alerting, common
from grafana_foundation_sdk.models import dashboard as gdash

from tests.requires import require_tool

ROOT = Path(__file__).resolve().parents[1]
DASH_DIR = ROOT / "dashboards"
PROV = DASH_DIR / "provisioning"
DASHBOARD_FILES = sorted(p.name for p in DASH_DIR.glob("*.json"))
DATASOURCE_UID = "hipback-influxdb"

register_default_plugins()


def _generator():
    spec = importlib.util.spec_from_file_location("hipback_dashboards_generate", DASH_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _leaves(obj: Any, path: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        if not obj:
            out[path] = {}
        for k, v in obj.items():
            out.update(_leaves(v, f"{path}/{k}"))
    elif isinstance(obj, list):
        if not obj:
            out[path] = []
        for i, v in enumerate(obj):
            out.update(_leaves(v, f"{path}[{i}]"))
    else:
        out[path] = obj
    return out


def _roundtrip(model_obj: Any) -> Any:
    return json.loads(json.dumps(model_obj, cls=JSONEncoder))


def _load(name: str) -> dict[str, Any]:
    return json.loads((DASH_DIR / name).read_text())


def test_five_dashboards_exist():
    assert {
        "walk-session.json",
        "stretch-session.json",
        "patient-progress.json",
        "clinician-overview.json",
        "device-health.json",
    } <= set(DASHBOARD_FILES)


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_json_is_what_the_generator_produces(name):
    """dashboards/*.json are generated: a hand edit that the generator would overwrite fails here."""
    assert (DASH_DIR / name).read_text() == _generator().render(name), "run python dashboards/generate.py"


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_dashboard_roundtrips_through_grafana_models(name):
    """Every key and value survives decoding into grafana_foundation_sdk's Dashboard model and encoding
    back, i.e. the model knows every key we wrote (a misspelt key would be dropped)."""
    data = _load(name)
    back = _roundtrip(gdash.Dashboard.from_json(data))
    ours, theirs = _leaves(data), _leaves(back)
    missing = {k for k in ours if k not in theirs}
    assert not missing, f"keys unknown to Grafana's model: {sorted(missing)[:10]}"
    changed = {k: (v, theirs[k]) for k, v in ours.items() if theirs[k] != v}
    assert not changed, f"values changed by Grafana's model: {dict(list(changed.items())[:5])}"


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_dashboard_enums_ids_layout_and_datasources(name):
    data = _load(name)
    model = gdash.Dashboard.from_json(data)
    assert model.schema_version >= 39 and model.uid and len(model.uid) <= 40
    panel_kinds = set(Runtime().panelcfg_variants)
    ids, cells = set(), set()
    for p in data["panels"]:
        assert p["type"] in panel_kinds, p["type"]
        assert p["id"] not in ids
        ids.add(p["id"])
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']!r} overlaps another"
                cells.add((x, y))
        if p["type"] == "text":
            continue
        assert p["datasource"] == {"type": "influxdb", "uid": "${datasource}"}
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)) and refs
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"] and t["rawQuery"] is True
            assert t["resultFormat"] in ("time_series", "table")
            assert not re.search(r"\bSELECT\s+\*", t["query"])
        defaults = p["fieldConfig"]["defaults"]
        if "thresholds" in defaults:
            assert defaults["thresholds"]["mode"] in {m.value for m in gdash.ThresholdsMode}
        custom = defaults.get("custom", {})
        if "drawStyle" in custom:
            assert custom["drawStyle"] in {m.value for m in common.GraphDrawStyle}
        if "thresholdsStyle" in custom:
            assert custom["thresholdsStyle"]["mode"] in {m.value for m in common.GraphTresholdsStyleMode}
        if p["type"] == "stat":
            opts = p["options"]
            assert opts["colorMode"] in {m.value for m in common.BigValueColorMode}
            assert opts["graphMode"] in {m.value for m in common.BigValueGraphMode}
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "influxdb"
    assert "patient" in variables
    for v in variables.values():
        assert v["type"] in {m.value for m in gdash.VariableType}
    for link in data["links"]:
        assert link["type"] in {m.value for m in gdash.DashboardLinkType}


def test_links_point_at_existing_dashboards():
    uids = {_load(n)["uid"] for n in DASHBOARD_FILES}
    found = 0
    for n in DASHBOARD_FILES:
        for uid in re.findall(r"/d/([A-Za-z0-9_-]+)", (DASH_DIR / n).read_text()):
            assert uid in uids, f"{n} links to unknown dashboard {uid}"
            found += 1
    assert found >= 6
    overview = _load("clinician-overview.json")
    text = json.dumps(overview)
    assert "hipback-progress" in text and "var-patient=${__value.raw}" in text


def test_every_dashboard_says_relative_to_calibration_and_not_a_diagnosis():
    for n in DASHBOARD_FILES:
        text = (DASH_DIR / n).read_text()
        if n != "device-health.json":
            assert "relative to standing calibration" in text.lower().replace("**", "")
            assert "not diagnoses" in text or "not a diagnosis" in text


# --- alert rules and provisioning ---------------------------------------------------------------


def _yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def test_alert_rules_match_grafana_rule_model():
    doc = _yaml(PROV / "alerting" / "hipback-rules.yaml")
    assert doc["apiVersion"] == 1
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert len(rules) == 3
    for rule in rules:
        model = alerting.Rule.from_json(rule)
        back = _roundtrip(model)
        for key in (
            "uid",
            "title",
            "condition",
            "noDataState",
            "execErrState",
            "for",
            "annotations",
            "labels",
        ):
            assert back[key] == rule[key], key
        assert model.no_data_state in ("Alerting", "NoData", "OK")
        assert model.exec_err_state in ("OK", "Alerting", "Error")
        refs = {q["refId"] for q in rule["data"]}
        assert rule["condition"] in refs
        for q in rule["data"]:
            qb = _roundtrip(alerting.Query.from_json(q))
            assert qb["refId"] == q["refId"] and qb["datasourceUid"] == q["datasourceUid"]
            assert qb["model"] == q["model"]
            assert q["datasourceUid"] in (DATASOURCE_UID, "__expr__")
            if q["datasourceUid"] == "__expr__":
                assert q["model"]["type"] in ("reduce", "threshold", "math")
                assert q["model"]["expression"] in refs
            else:
                assert "$timeFilter" in q["model"]["query"] and 'GROUP BY "patient"' in q["model"]["query"]
        assert "not a diagnosis" in " ".join(rule["annotations"].values())


def test_datasource_provisioning_2x_token_and_1x_variant():
    v2 = _yaml(PROV / "datasources" / "influxdb.yaml")["datasources"][0]
    v1 = _yaml(PROV / "datasources-influxdb1" / "influxdb.yaml")["datasources"][0]
    for ds in (v1, v2):
        assert ds["uid"] == DATASOURCE_UID and ds["type"] == "influxdb"
        assert ds["jsonData"]["version"] == "InfluxQL"
        assert ds["url"] == "${HIPBACK_INFLUX_URL}"
        assert ds["jsonData"]["dbName"] == "${HIPBACK_INFLUX_DATABASE}"
    assert v2["jsonData"]["httpHeaderName1"] == "Authorization"
    assert v2["secureJsonData"]["httpHeaderValue1"] == "Token ${HIPBACK_INFLUX_TOKEN}"
    assert v1["secureJsonData"]["password"] == "${HIPBACK_INFLUX_PASSWORD}"
    provider = _yaml(PROV / "dashboards" / "hipback.yaml")["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards/hipback"


# --- docker-compose.yml -------------------------------------------------------------------------


def test_compose_file_is_valid_compose_spec():
    from compose_spec import PyCompose

    text = (ROOT / "docker-compose.yml").read_text()
    compose = PyCompose.from_yaml(text)  # raises ValueError on anything the spec does not allow
    assert sorted(compose.service_names()) == ["grafana", "influxdb", "ingest"]
    with pytest.raises(ValueError):
        PyCompose.from_yaml(text.replace("    restart: unless-stopped\n", "    restrat: unless-stopped\n", 1))


def _compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) or ``docker-compose`` (v1), whichever is installed."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_config_accepts_the_file(tmp_path):
    """Docker Compose itself validates the file (``config`` needs no engine); fails where not installed unless
    HIPBACK_TEST_ALLOW_MISSING lists compose (tests/requires.py)."""
    cmd = _compose_command()
    require_tool("compose", cmd is not None, "neither `docker compose` nor `docker-compose`; run "
                 "tests/install_compose.sh as root, or apt-get install docker-compose")
    ok = subprocess.run([*cmd, "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert sorted(ok.stdout.split()) == ["grafana", "influxdb", "ingest"]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((ROOT / "docker-compose.yml").read_text().replace("    image: influxdb:2.7\n",
                                                                          "    imag: influxdb:2.7\n", 1))
    bad = subprocess.run([*cmd, "-f", str(broken), "--project-directory", str(ROOT), "config"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0


def test_compose_wires_influxdb_grafana_and_ingest():
    doc = _yaml(ROOT / "docker-compose.yml")
    svc = doc["services"]
    influx = svc["influxdb"]
    assert influx["image"].startswith("influxdb:2.7")
    env = influx["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup" and env["DOCKER_INFLUXDB_INIT_BUCKET"] == "hipback"
    assert env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"].startswith("/run/secrets/")
    assert not any("TOKEN=" in str(v) or k.endswith("_TOKEN") for k, v in env.items())
    graf = svc["grafana"]
    assert re.match(r"grafana/grafana(-oss)?:1[1-9]", graf["image"])
    mounts = {m.split(":")[1]: m.split(":")[0] for m in graf["volumes"] if m.startswith("./")}
    for _target, src in mounts.items():
        assert (ROOT / src).exists(), src
    assert mounts["/etc/grafana/provisioning/datasources"] == "./dashboards/provisioning/datasources"
    assert graf["environment"]["HIPBACK_INFLUX_DATABASE"] == env["DOCKER_INFLUXDB_INIT_BUCKET"]
    ingest = svc["ingest"]
    assert ingest["build"]["dockerfile"] == "Dockerfile" and (ROOT / "Dockerfile").exists()
    assert any(v.startswith("/run/dbus:") for v in ingest["volumes"])
    for name in ("grafana", "ingest"):
        assert "influxdb-token" in svc[name]["secrets"]
        assert "/run/secrets/influxdb-token" in " ".join(svc[name]["entrypoint"])
    assert set(doc["secrets"]) >= {"influxdb-token"}

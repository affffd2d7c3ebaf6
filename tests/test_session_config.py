"""Session config (TOML) validation and the ``hipback scan`` / ``hipback record`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hipback.ingest.config import load_config, parse_config
from hipback.ingest.errors import ConfigError
from hipback.ingest.store import LocalStore

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
patient = "P-0042"
store = "data/hipback.sqlite"
scan_timeout_s = 8
[[sensors]]
placement = "pelvis"
kind = "hipback_v1"
address = "c4:1b:ac:00:00:01"
rate_hz = 100
[[sensors]]
placement = "thigh_left"
kind = "movella_dot"
mode = "custom5"
[prescription]
holds_per_side = 2
hold_s = 20
"""


def test_good_config_and_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "session.toml"
    path.write_text(GOOD)
    cfg = load_config(path, env={})
    assert cfg.patient_id == "P-0042" and cfg.ble_backend == "bleak"
    assert cfg.store == tmp_path / "data" / "hipback.sqlite"  # relative to the config file
    assert [s.placement for s in cfg.sensors] == ["pelvis", "thigh_left"]
    assert cfg.sensor("pelvis").address == "C4:1B:AC:00:00:01"
    assert cfg.prescription.holds_per_side == 2 and cfg.prescription.hold_s == 20.0
    assert cfg.duration_s is None and cfg.calibration_s == 5.0 and cfg.live_batch_ms == 20.0
    env = {
        "HIPBACK_STORE": str(tmp_path / "other.sqlite"),
        "HIPBACK_BLE_BACKEND": "bumble",
        "HIPBACK_SCAN_TIMEOUT_S": "3",
    }
    cfg = load_config(path, env=env)
    assert (
        cfg.store == tmp_path / "other.sqlite" and cfg.ble_backend == "bumble" and cfg.scan_timeout_s == 3.0
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.pop("patient"), "patient"),
        (lambda d: d.update(patient="Jane Doe"), "pseudonym"),
        (lambda d: d.update(colour="red"), "unknown setting 'colour'"),
        (lambda d: d["sensors"][0].update(placement="knee"), "placement must be one of"),
        (lambda d: d["sensors"][0].update(kind="fitbit"), "kind must be one of"),
        (lambda d: d["sensors"][1].update(placement="pelvis"), "given twice"),
        (lambda d: d["sensors"].pop(0), "pelvis"),
        (lambda d: d["sensors"][0].update(address="not-an-address"), "address must look like"),
        (lambda d: d["sensors"][1].update(mode="turbo"), "mode must be one of"),
        (lambda d: d["sensors"][0].update(rate_hz=-5), "rate_hz must be greater than 0"),
        (lambda d: d["prescription"].update(holds_per_side=0), "holds_per_side"),
        (lambda d: d.update(ble_backend="serial"), "ble_backend must be one of"),
        (lambda d: d.update(calibration_s=0.5), "calibration_s"),
    ],
)
def test_bad_values_give_one_clear_sentence(change, words) -> None:
    import tomllib

    data = tomllib.loads(GOOD)
    change(data)
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="session.toml", env={})
    msg = str(err.value)
    assert words in msg and msg.startswith("session.toml") and "\n" not in msg and msg.endswith(".")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("patient = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HIPBACK_STORE", None)
    env.pop("HIPBACK_BLE_BACKEND", None)
    return subprocess.run(
        [sys.executable, "-m", "hipback.ingest.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_record_bad_config_prints_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(GOOD.replace('kind = "movella_dot"', 'kind = "fitbit"'))
    res = _cli("record", "--config", str(path), cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("hipback: ") and "kind must be one of" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_cli_scan_virtual_lists_every_kind(tmp_path: Path) -> None:
    res = _cli("scan", "--virtual", "--timeout", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for word in ("hipback_v1", "movella_dot", "witmotion", "Movella DOT", "dBm"):
        assert word in res.stdout


def test_cli_record_with_virtual_sensors(tmp_path: Path) -> None:
    path = tmp_path / "v.toml"
    path.write_text(
        GOOD.replace('store = "data/hipback.sqlite"', 'store = "v.sqlite"\nble_backend = "bumble"')
    )
    res = _cli("record", "--config", str(path), "--speed", "10", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Stand still" in res.stdout and "source_finished" in res.stdout
    with LocalStore(tmp_path / "v.sqlite") as store:
        (session,) = store.sessions("P-0042")
        assert session["end_utc"] is not None
        assert store.sample_count(session["id"], "pelvis") > 3000
        assert store.sample_count(session["id"], "thigh_left") > 1500


def test_ctrl_c_stops_the_recording_cleanly(tmp_path: Path) -> None:
    import signal
    import time

    path = tmp_path / "v.toml"
    path.write_text(
        GOOD.replace('store = "data/hipback.sqlite"', 'store = "v.sqlite"\nble_backend = "bumble"')
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hipback.ingest.cli", "record", "--config", str(path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline and count < 300 and proc.poll() is None:
            time.sleep(0.3)
            try:
                with LocalStore(tmp_path / "v.sqlite") as store:
                    sessions = store.sessions("P-0042")
                    count = store.sample_count(sessions[0]["id"]) if sessions else 0
            except Exception:  # not created yet
                continue
        assert count >= 300, proc.stderr.read() if proc.poll() is not None else "no samples"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "stop_event" in out
    with LocalStore(tmp_path / "v.sqlite") as store:
        (session,) = store.sessions("P-0042")
        assert session["end_utc"] is not None  # flushed and closed
        assert store.sample_count(session["id"]) >= count
        assert store.events(session["id"], "session_end")

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
    assert cfg.duration_s is None and cfg.calibration_s == 5.0 and cfg.live_batch_ms == 30.0
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


@pytest.mark.parametrize(
    ("patient", "ok"),
    [("P-0042", True), ("p_7", True), ("A" * 64, True), ("0", True), ("P.0042", False), ("P:0042", False),
     ("P 0042", False), ("P-0042\n", False), ("-P0042", False), ("_P0042", False), ("é", False),
     ("a" * 65, False), ("", False)],
)
def test_config_process_and_store_take_the_same_patient_ids(tmp_path: Path, patient: str, ok: bool) -> None:
    """A pseudonym that one way in takes, every way in takes (a config's ``patient``, ``hipback process
    --patient``, the store's sessions): an id stored by ``process`` can be recorded under, and back."""
    import tomllib

    from hipback.ingest.commands.process import check_patient
    from hipback.ingest.store import StoreError

    data = tomllib.loads(GOOD)
    data["patient"] = patient
    taken = []
    for entry in (lambda: parse_config(data, source="session.toml", env={}), lambda: check_patient(patient)):
        try:
            entry()
            taken.append(True)
        except ConfigError:
            taken.append(False)
    with LocalStore(tmp_path / "s.sqlite") as st:
        try:
            st.open_session(patient)
            taken.append(True)
        except StoreError:
            taken.append(False)
    assert taken == [ok, ok, ok]


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


def test_record_continues_only_an_unfinished_session_of_its_patient(tmp_path: Path) -> None:
    """``--session`` names a stored session (id, unique prefix of 4+, ``latest``) that is unfinished and the
    config's patient's; anything else is one sentence (exit 2) and no session is opened."""
    from hipback.ingest.commands.record import session_to_continue

    with LocalStore(tmp_path / "s.sqlite") as st:
        done = st.open_session("P-0042")
        st.close_session(done, end_utc=st.session(done)["start_utc"] + 1.0)
        other = st.open_session("P-0043")
        open_ = st.open_session("P-0042")
        # shares the first 6 characters, not the 7th
        twin = st.open_session("P-0042", session_id=open_[:6] + ("1" if open_[6] == "0" else "0") + "0" * 25)
        cases = {
            "deadbeef": "is not in the local store",
            "../../etc x": "is not in the local store",
            open_[:3]: "needs at least 4 characters",
            open_[:6]: "fits more than one session",
            done: "is finished",
            other[:8]: "another patient",
        }
        for given, words in cases.items():
            with pytest.raises(ConfigError) as err:
                session_to_continue(st, given, "P-0042")
            msg = str(err.value)
            assert words in msg and "omit --session" in msg and "\n" not in msg, msg
        assert len(st.sessions()) == 4  # nothing was opened
        assert session_to_continue(st, open_, "P-0042") == open_
        assert session_to_continue(st, open_[:7], "P-0042") == open_
        assert session_to_continue(st, "latest", "P-0042") == twin  # the patient's last unfinished one
        with pytest.raises(ConfigError, match="P-0044 has no unfinished session"):
            session_to_continue(st, "latest", "P-0044")


def _virtual_config(tmp_path: Path) -> Path:
    """:data:`GOOD` with virtual sensors (Bumble) and the store ``v.sqlite``, written to ``tmp_path``."""
    path = tmp_path / "v.toml"
    path.write_text(
        GOOD.replace('store = "data/hipback.sqlite"', 'store = "v.sqlite"\nble_backend = "bumble"')
    )
    return path


def test_cli_record_refuses_a_session_it_cannot_continue(tmp_path: Path) -> None:
    path = _virtual_config(tmp_path)
    res = _cli("record", "--config", str(path), "--session", "deadbeef", cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.startswith("hipback: --session 'deadbeef' is not in the local store")
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    with LocalStore(tmp_path / "v.sqlite") as store:
        assert store.sessions() == []


def test_cli_scan_virtual_lists_every_kind(tmp_path: Path) -> None:
    res = _cli("scan", "--virtual", "--timeout", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for word in ("hipback_v1", "movella_dot", "witmotion", "Movella DOT", "dBm"):
        assert word in res.stdout


def test_cli_record_with_virtual_sensors(tmp_path: Path) -> None:
    path = _virtual_config(tmp_path)
    res = _cli("record", "--config", str(path), "--speed", "10", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Stand still" in res.stdout and "source_finished" in res.stdout
    with LocalStore(tmp_path / "v.sqlite") as store:
        (session,) = store.sessions("P-0042")
        assert session["end_utc"] is not None
        assert store.sample_count(session["id"], "pelvis") > 3000
        assert store.sample_count(session["id"], "thigh_left") > 1500


def _start_virtual_recording(tmp_path: Path, **popen: object) -> subprocess.Popen:
    path = _virtual_config(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "hipback.ingest.cli", "record", "--config", str(path)],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, **popen,  # type: ignore[call-overload]
    )


def _wait_for_samples(tmp_path: Path, proc: subprocess.Popen, least: int = 300) -> int:
    import time

    deadline = time.monotonic() + 60
    count = 0
    while time.monotonic() < deadline and count < least and proc.poll() is None:
        time.sleep(0.3)
        try:
            with LocalStore(tmp_path / "v.sqlite") as store:
                sessions = store.sessions("P-0042")
                count = store.sample_count(sessions[0]["id"]) if sessions else 0
        except Exception:  # not created yet
            continue
    assert count >= least, proc.stderr.read() if proc.poll() is not None else "no samples"
    return count


def _assert_finished(tmp_path: Path, count: int) -> None:
    """The session was stopped as at the end of its duration: closed, every sample kept, results stored."""
    with LocalStore(tmp_path / "v.sqlite") as store:
        (session,) = store.sessions("P-0042")
        assert session["end_utc"] is not None  # flushed and closed
        assert store.sample_count(session["id"]) >= count
        assert store.events(session["id"], "session_end")
        assert store.get_results(session["id"], "summary")
        assert store.get_results(session["id"], "calibration")


@pytest.mark.parametrize(
    ("signame", "said"),
    [("SIGINT", "Ctrl-C"), ("SIGTERM", "SIGTERM"), ("SIGHUP", "the terminal hung up")],
)
def test_a_stop_signal_finishes_the_recording(tmp_path: Path, signame: str, said: str) -> None:
    """Ctrl-C, ``kill`` / a service manager's stop, a hung-up terminal: the session's results are stored
    and the command exits 0, not killed half-way (SIGTERM and SIGHUP used to end it at once: no end time, no
    results, exit 143 / 129)."""
    import signal

    proc = _start_virtual_recording(tmp_path, stdout=subprocess.PIPE)
    try:
        count = _wait_for_samples(tmp_path, proc)
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert f"Stopping ({said})" in out and "stop_event" in out
    assert "Traceback" not in err
    _assert_finished(tmp_path, count)


def test_a_second_signal_closes_the_session_at_once_and_keeps_what_was_received(tmp_path: Path) -> None:
    """A second SIGTERM (or Ctrl-C) while stopping: exit 130 and one sentence, the session closed with every
    sample received, no results computed; if the closing was already under way it finishes (exit 0, with
    results). Either way no traceback (a cancelled stop used to leak ``CancelledError``, exit 1)."""
    import signal

    proc = _start_virtual_recording(tmp_path, stdout=subprocess.PIPE)
    try:
        count = _wait_for_samples(tmp_path, proc)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, 130), err[-2000:]
    assert "Traceback" not in err and "Exception in callback" not in err
    with LocalStore(tmp_path / "v.sqlite") as store:
        (session,) = store.sessions("P-0042")
        assert session["end_utc"] is not None and store.sample_count(session["id"]) >= count
        has_results = bool(store.get_results(session["id"], "summary"))
    if proc.returncode == 130:
        (line,) = [x for x in err.splitlines() if x.startswith("hipback:")]
        assert "cancelled" in line and "v.sqlite" in line and not has_results
    else:
        assert has_results


_LATE_SIGNALS = """
import os, signal, sys
from pathlib import Path
from hipback.ingest.commands import record

shown = record._print_outcome


def late(*args, **kwargs):  # the session's loop has ended: its results are being stored and shown
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        os.kill(os.getpid(), sig)
    shown(*args, **kwargs)


record._print_outcome = late
# (the handlers this process started with: a process started in the background by a shell without job
# control inherits SIGINT ignored, not Python's default_int_handler)
before = [signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)]
outcome = record.run(Path(sys.argv[1]), speed=50.0)
print("results stored:", outcome.results is not None)
after = [signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)]
print("handlers back:", all(a is b for a, b in zip(before[:2], after[:2])), after[2] is before[2])
"""


def test_a_stop_signal_after_the_session_ended_lets_it_finish(tmp_path: Path) -> None:
    """SIGTERM, SIGHUP and Ctrl-C arriving once the session's event loop has ended (while its outcome is
    stored and printed): the command finishes as documented (exit 0, the outcome shown) and puts the
    handlers back; before, SIGTERM killed it half-way through its output (exit 143)."""
    path = tmp_path / "v.toml"
    path.write_text(
        'patient = "P-0042"\nstore = "v.sqlite"\nble_backend = "bumble"\ncalibration_s = 5\nduration_s = 12\n'
        '[[sensors]]\nplacement = "pelvis"\nkind = "hipback_v1"\naddress = "C4:1B:AC:00:00:01"\n'
        'rate_hz = 100\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", _LATE_SIGNALS, str(path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "results stored: True" in res.stdout and "handlers back: True True" in res.stdout
    assert "Session" in res.stdout and "Traceback" not in res.stderr


def test_a_closed_output_finishes_the_recording(tmp_path: Path) -> None:
    """``hipback record ... | head`` (or a ``tee`` whose reader exits): the live view goes quiet and the
    session is finished as on Ctrl-C, said on stderr; before, rich's exit at the first failed write ended
    the command with exit code 1 and the session without results."""
    read, write = os.pipe()
    proc = _start_virtual_recording(tmp_path, stdout=write)
    os.close(write)
    try:
        count = _wait_for_samples(tmp_path, proc)
        os.close(read)  # the reader goes away; the view's next line finds the pipe closed
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    (line,) = [x for x in err.splitlines() if x.startswith("hipback:")]
    assert "the output was closed" in line and "v.sqlite" in line
    assert "Traceback" not in err and "Exception ignored" not in err
    _assert_finished(tmp_path, count)

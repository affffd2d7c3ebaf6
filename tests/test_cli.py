"""The command line's error boundary: usage mistakes and user errors are one sentence with the documented
exit code under every typer/click the dependency range allows (the installed one, and the oldest, typer 0.12.0
with click 8.1, installed into a cached folder from the package registry); Ctrl-C during ``hipback process``
(a real SIGINT to a real process) exits 130 and leaves nothing half-written that looks complete."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hipback.ingest import cli
from hipback.ingest.files import write_recording
from hipback.ingest.store import LocalStore
from hipback.simulator import VirtualPatient, simulate

OUTPUTS = ("activity.csv", "angles.csv", "holds.csv", "strides.csv", "summary.json")

# (arguments, exit code, a part of the one-line message on stderr); "--store" values are filled in per test
USAGE_CASES: list[tuple[list[str], int, str]] = [
    (["nonsense"], 2, "No such command 'nonsense'"),
    (["process"], 2, "Missing argument"),
    (["process", "--ou", "x", "pelvis=a.csv"], 2, "No such option: --ou"),
    (["sync", "--batch-size", "abc"], 2, "--batch-size"),
    (["sync", "--batch-size", "0"], 2, "--batch-size"),
    (["scan", "--timeout", "soon"], 2, "--timeout"),
    (["export", "abcd", "--format", "xlsx", "--out", "x"], 2, "unknown export format 'xlsx'"),
    (["export", "abcd", "--format", "csv"], 2, "Missing option '--out'"),
    (["report", "abcd", "--out", "r.pdf"], 2, "should end in .html"),
    (["process", "pelvis=/nonexistent.csv", "--out", "x"], 2, "does not exist"),
    (["process", "hip=a.csv", "--out", "x"], 2, "unknown placement 'hip'"),
    (["simulate", "--out", "x", "--scenario", "moon"], 2, "unknown scenario 'moon'"),
    (["simulate", "--out", "x", "--seed", "-1"], 2, "--seed"),
    (["demo", "--out", "x", "--seed", "-1"], 2, "--seed"),
    (["record", "--config", "/nonexistent.toml"], 2, "config file does not exist"),
    (["dashboards", "push", "--grafana-url", "x", "--frobnicate"], 2, "No such option"),
    (["report", "abcd", "--out", "r.html", "--store", "{not_a_db}"], 3, "is not a database"),
    (["export", "abcd", "--format", "csv", "--out", "x", "--store", "{not_a_db}"], 3, "is not a database"),
    (["sync", "--store", "{not_a_db}"], 3, "is not a database"),
    (["process", "pelvis={notes}", "thigh_left={notes}", "--out", "x", "--store", "{not_a_db}"], 3,
     "is not a database"),
    (["process", "pelvis={notes}", "thigh_left={notes}", "--out", "x", "--patient", "P-1\n"], 2,
     "pseudonymous id"),
    (["process", "pelvis=/dev/zero", "thigh_left=/dev/urandom", "--out", "x"], 2, "a device, not a"),
    (["process", "pelvis={notes}", "thigh_left={notes}", "--out", "x", "--orientation", "smooth"], 2,
     "unknown orientation filter 'smooth'; use causal or lagged."),
    (["process", "pelvis={notes}", "thigh_left={notes}", "--out", "x", "--start", "2023-10-31T13:31:50Z"], 2,
     "--start sets the stored session's time: give it with --store."),
    (["process", "pelvis={notes}", "thigh_left={notes}", "--out", "x", "--store", "s.sqlite", "--start",
      "2023-10-31T13:31:50"], 2, "has no time zone"),
    (["process", "pelvis={notes}", "thigh_left={notes}", "--out", "x", "--store", "s.sqlite", "--start",
      "last Tuesday"], 2, "is not an ISO 8601 date and time"),
    (["process", "pelvis={notes}", "thigh_left={notes}", "--out", "x", "--store", "s.sqlite", "--start",
      "1923-10-31T13:31:50Z"], 2, "lies outside the years 2000-2099"),
]

_DRIVER = """
import contextlib, io, json, sys
import typer
try:
    import click
except ImportError:  # typer 0.2x does not need the click package
    click = None
from hipback.ingest import cli
results = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.run(args)
    results.append([code, err.getvalue()])
print(json.dumps({"typer": typer.__version__, "click": click and click.__version__,
                  "vendored": hasattr(typer, "_click"), "results": results}))
"""


def _cases(tmp_path: Path) -> list[tuple[list[str], int, str]]:
    not_a_db = tmp_path / "notes.sqlite"
    not_a_db.write_text("this is a text file, not a store\n" * 10)
    notes = tmp_path / "notes.csv"
    notes.write_text("not read: the command stops before\n")
    return [([a.format(not_a_db=not_a_db, notes=notes) for a in args], code, part)
            for args, code, part in USAGE_CASES]


def _check(args: list[str], code: int, err: str, want_code: int, part: str) -> None:
    assert code == want_code, (args, err)
    assert "Traceback" not in err, (args, err)
    line = err.strip()
    assert line.startswith("hipback: ") and "\n" not in line, (args, err)
    assert part in line, (args, line)


def test_usage_mistakes_are_one_sentence_with_the_exit_code(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIPBACK_INFLUX_URL", "http://127.0.0.1:9")
    for args, want, part in _cases(tmp_path):
        code = cli.run(args)
        captured = capsys.readouterr()
        _check(args, code, captured.err, want, part)
    assert not (tmp_path / "x").exists()  # no output folder made for a command that failed on its input


def _oldest_typer(cache: Path, click: str) -> Path:
    """typer 0.12.0 (pyproject.toml's lower bound) with ``click``, installed once into the pytest cache."""
    target = cache / f"typer-0.12.0-click-{click}"
    if not (target / "typer" / "main.py").is_file():
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--target", str(target), "typer==0.12.0", "typer-slim==0.12.0", f"click=={click}"],
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"cannot install typer 0.12.0 from the package registry: {proc.stderr}"
    return target


@pytest.mark.parametrize("which", ["installed", "typer 0.12.0, click 8.0.0", "typer 0.12.0, click 8.1.8"])
def test_every_allowed_typer_gives_the_same_answers(which: str, tmp_path: Path, request) -> None:
    """The installed typer (0.2x ships click as typer._click) and the oldest the range allows, with the oldest
    click it allows and the last click 8.1."""
    env = {**os.environ, "HIPBACK_INFLUX_URL": "http://127.0.0.1:9"}
    click = which.rpartition("click ")[2]
    if which != "installed":
        cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
        folder = Path(cache.mkdir("hipback-cli")) if cache else Path(tempfile.gettempdir()) / "hipback-cli"
        env["PYTHONPATH"] = str(_oldest_typer(folder, click))
    cases = _cases(tmp_path)
    proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps([c[0] for c in cases])], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    if which != "installed":
        assert (out["typer"], out["click"], out["vendored"]) == ("0.12.0", click, False)
    else:
        assert out["vendored"] == hasattr(__import__("typer"), "_click")
    for (args, want, part), (code, err) in zip(cases, out["results"], strict=True):
        _check(args, code, err, want, part)


def test_the_console_script_exits_with_the_code_and_without_a_traceback(tmp_path: Path) -> None:
    def hipback(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hipback.ingest.cli", *args], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)

    proc = hipback("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("hipback ")
    proc = hipback()
    assert proc.returncode == 2 and "process" in proc.stdout and "Traceback" not in proc.stderr
    proc = hipback("process", "--out", "x", "pelvis=missing.csv")
    assert proc.returncode == 2 and proc.stderr.startswith("hipback: ") and proc.stderr.count("\n") == 1


# -- Ctrl-C during hipback process ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rec") / "rec"
    sim = simulate("short", 3, VirtualPatient(patient_id="P-0003"), walk_s=10.0)
    write_recording(sim.recording, folder)
    return folder


def _inputs(rec: Path, pelvis: Path | None = None) -> list[str]:
    return [f"pelvis={pelvis or rec / 'pelvis.csv'}", f"thigh_left={rec / 'thigh_left.csv'}",
            f"thigh_right={rec / 'thigh_right.csv'}"]


def _default_sigint() -> None:
    """In the child before it runs hipback: Ctrl-C acts as in a terminal's foreground job, whatever the test
    run inherited (a test run started in the background by a shell without job control ignores SIGINT, and
    Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hipback.ingest.cli", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=_default_sigint)


@contextlib.contextmanager
def _fifo_opened_by(proc: subprocess.Popen, fifo: Path) -> Iterator[int]:
    """Wait until ``proc`` has opened the pipe ``fifo`` for reading (it then waits for data that never comes);
    yields the write end, closed afterwards."""
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            assert exc.errno == errno.ENXIO, exc
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
    try:
        yield fd
    finally:
        os.close(fd)


def _interrupt(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert err.startswith("hipback: interrupted") and err.count("\n") == 1, err
    return out, err


@pytest.mark.parametrize("with_store", [False, True])
def test_ctrl_c_while_reading_exits_130_and_writes_nothing(recording: Path, tmp_path: Path, with_store: bool):
    fifo = tmp_path / "pelvis.csv"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    store = tmp_path / "store.sqlite"
    args = ["process", *_inputs(recording, fifo), "--out", str(out)] + (["--store", str(store)] * with_store)
    proc = _spawn(args, tmp_path)
    with _fifo_opened_by(proc, fifo):
        _interrupt(proc)
    assert not out.exists()  # no output folder, no output, not even a temporary file
    if with_store:
        with LocalStore(store, readonly=True) as st:
            assert st.sessions() == []


def test_ctrl_c_while_sending_keeps_the_complete_session_and_outputs(recording: Path, tmp_path: Path) -> None:
    """InfluxDB that never answers: the user presses Ctrl-C while hipback waits for it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    env = {**os.environ, "HIPBACK_INFLUX_URL": f"http://127.0.0.1:{server.getsockname()[1]}",
           "HIPBACK_INFLUX_DATABASE": "hipback"}
    env.pop("HIPBACK_INFLUX_TOKEN", None)
    out, store = tmp_path / "out", tmp_path / "store.sqlite"
    proc = _spawn(["process", *_inputs(recording), "--out", str(out), "--store", str(store)], tmp_path, env)
    got = b""
    conn = None
    try:
        server.settimeout(120)
        conn, _ = server.accept()
        conn.settimeout(120)
        while b"\r\n\r\n" not in got:  # the request has been sent: hipback now waits for the answer
            chunk = conn.recv(4096)
            assert chunk, "hipback closed the connection"
            got += chunk
        stdout, err = _interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        if conn is not None:
            conn.close()
        server.close()
    assert "the session is stored" in err and "stay queued" in err
    assert sorted(p.name for p in out.iterdir()) == list(OUTPUTS)
    assert json.loads((out / "summary.json").read_text())["inputs"]["pelvis"] == "pelvis.csv"
    with LocalStore(store, readonly=True) as st:
        (sess,) = st.sessions()
        assert sess["end_utc"] is not None and sess["samples"] > 0
        assert sess["outbox_pending"] > 0 and st.outbox_stats()["delivered"] == 0


def test_an_interruption_inside_the_store_import_leaves_no_session(recording, tmp_path, monkeypatch) -> None:
    """Ctrl-C at the last step of the import (the points): the whole session is rolled back."""
    from hipback.ingest import publish
    from hipback.ingest.commands import process

    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    store = tmp_path / "store.sqlite"
    calls = []

    def interrupted(st, sid, *args, **kwargs):
        calls.append(st.sample_count(sid))
        raise KeyboardInterrupt

    monkeypatch.setattr(publish, "publish_session", interrupted)
    with pytest.raises(KeyboardInterrupt):
        process.run(_inputs(recording), tmp_path / "out", store=store)
    assert calls and calls[0] > 0  # the samples were in the transaction when it was interrupted
    con = sqlite3.connect(store)
    assert con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == 0
    con.close()


def test_an_interruption_while_writing_outputs_keeps_the_old_ones(recording, tmp_path, monkeypatch) -> None:
    from hipback.ingest.commands import process
    from hipback.ingest.files import atomic

    out = tmp_path / "out"
    process.run(_inputs(recording), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_stage = atomic._stage
    count = [0]

    def stage(path, text):
        count[0] += 1
        if count[0] == 4:
            raise KeyboardInterrupt
        return real_stage(path, text + "changed\n")

    monkeypatch.setattr(atomic, "_stage", stage)
    with pytest.raises(KeyboardInterrupt):
        process.run(_inputs(recording), out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporary file left either


def test_private_outputs_whatever_the_umask(recording: Path, tmp_path: Path, monkeypatch) -> None:
    from hipback.ingest.commands import process

    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    old = os.umask(0)
    try:
        out = tmp_path / "new" / "out"
        process.run(_inputs(recording), out, store=tmp_path / "new" / "store.sqlite")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    for p in [*out.iterdir(), *(tmp_path / "new").glob("store.sqlite*")]:
        assert p.stat().st_mode & 0o777 == 0o600, p
    summary = (out / "summary.json").read_text()
    assert str(recording) not in summary and socket.gethostname() not in summary


@pytest.mark.parametrize("patient", ["P-0001\n", "P-0001\r\n", " P-0001", "P 0001", "", "a" * 65, "Jane Doe",
                                     "P.0042", "P.0042:a"])
def test_patient_ids_are_validated_exactly(recording: Path, tmp_path: Path, patient: str) -> None:
    from hipback.ingest.commands import process
    from hipback.ingest.errors import ConfigError

    with pytest.raises(ConfigError, match="pseudonymous id"):
        process.run(_inputs(recording), tmp_path / "out", store=tmp_path / "s.sqlite", patient=patient)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_threads_do_not_hide_interrupts() -> None:
    """interrupts_deferred is a no-op off the main thread (signals are handled on the main thread only)."""
    from hipback.ingest.files.atomic import interrupts_deferred

    done = []

    def worker() -> None:
        with interrupts_deferred():
            done.append(True)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert done == [True]


def test_an_archived_read_only_store_is_reported_on_and_exported(recording, tmp_path, monkeypatch, capsys):
    from tests.test_store_lifecycle import _read_only_folder

    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    archive = tmp_path / "archive"
    store = archive / "hipback.sqlite"
    stored = ["--store", str(store)]
    assert cli.run(["process", *_inputs(recording), "--out", str(tmp_path / "out"), *stored]) == 0
    with LocalStore(store, readonly=True) as st:
        (sess,) = st.sessions()
    capsys.readouterr()
    with _read_only_folder(archive):
        assert cli.run(["report", sess["id"][:8], "--out", str(tmp_path / "r.html"), *stored]) == 0
        assert cli.run(["export", sess["id"], "--format", "csv", "--out", str(tmp_path / "x"), *stored]) == 0
        assert cli.run(["process", *_inputs(recording), "--out", str(tmp_path / "o2"), *stored]) == 3
        err = capsys.readouterr().err
        assert err.startswith(f"hipback: the local store {store} cannot be written") and err.count("\n") == 1
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "x").iterdir())
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (tmp_path / "x").iterdir())


def test_a_pipe_works_as_an_input_file(recording: Path, tmp_path: Path) -> None:
    """``pelvis=<(zcat pelvis.csv.gz)``: a pipe is read to its end, in pieces."""
    from hipback.ingest.commands import process

    fifo = tmp_path / "pelvis.pipe"
    os.mkfifo(fifo)
    data = (recording / "pelvis.csv").read_bytes()

    def feed() -> None:
        with open(fifo, "wb") as fh:
            fh.write(data)

    t = threading.Thread(target=feed)
    t.start()
    try:
        res = process.run(_inputs(recording, fifo), tmp_path / "out")
    finally:
        t.join()
    assert len(res.angles) > 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["inputs"]["pelvis"] == "pelvis.pipe"


def test_process_with_the_lagged_orientation_filter(recording: Path, tmp_path: Path, monkeypatch) -> None:
    """``--orientation``: raw sensors' angles from the lagged filter (the default) or the causal one, said in
    summary.json."""
    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    for which in ("causal", "lagged"):
        assert cli.run(["process", *_inputs(recording), "--out", str(tmp_path / which),
                        "--orientation", which]) == 0
    default = tmp_path / "default"
    assert cli.run(["process", *_inputs(recording), "--out", str(default)]) == 0
    for name in OUTPUTS:  # the default is the lagged filter (offline: nothing waits for live angles)
        assert (default / name).read_bytes() == (tmp_path / "lagged" / name).read_bytes(), name
    summary = json.loads((tmp_path / "lagged" / "summary.json").read_text())
    assert summary["orientation_filter"] == "lagged"
    assert json.loads((tmp_path / "causal" / "summary.json").read_text())["orientation_filter"] == "causal"
    assert sorted(p.name for p in (tmp_path / "lagged").iterdir()) == list(OUTPUTS)
    lagged = (tmp_path / "lagged" / "angles.csv").read_text().splitlines()
    causal = (tmp_path / "causal" / "angles.csv").read_text().splitlines()
    assert lagged[0] == causal[0] and len(lagged) == len(causal) and lagged[1:] != causal[1:]


_SYSTEM_BUS = (Path("/run/dbus/system_bus_socket"), Path("/var/run/dbus/system_bus_socket"))


@pytest.mark.skipif(any(p.exists() for p in _SYSTEM_BUS) or not sys.platform.startswith("linux")
                    or bool(os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")),
                    reason="a D-Bus system bus exists here")
def test_scan_without_the_systems_bluetooth_service_is_one_sentence(capsys) -> None:
    """The real bleak path (its BlueZ backend) on a machine without the D-Bus system bus: exit 2 and the
    sentence that names the missing service, no traceback."""
    code = cli.run(["scan", "--timeout", "0.5"])
    err = capsys.readouterr().err
    _check(["scan"], code, err, 2, "the system's Bluetooth service is not reachable")


def test_scan_failures_name_their_cause() -> None:
    from hipback.ingest.ble.connect import scan_failure

    assert "this user may not use Bluetooth" in scan_failure(PermissionError(13, "Permission denied"))
    assert scan_failure(RuntimeError("No Bluetooth adapters found.")) == (
        "Bluetooth scanning failed (No Bluetooth adapters found.); check that Bluetooth is on and usable by "
        "this user.")


def test_the_demo_names_a_hipback_command_that_runs(monkeypatch, tmp_path: Path) -> None:
    """The demo's closing lines name the ``hipback`` command as the shell can run it: its full path while
    the fresh clone's ``.venv/bin`` is not on the PATH, the bare name once it is."""
    from hipback.ingest.commands.demo import hipback_command

    here = Path(sys.executable).with_name("hipback")
    if not here.exists():
        pytest.skip("hipback is not installed beside this Python")
    monkeypatch.setenv("PATH", str(tmp_path))
    command = hipback_command()
    assert command == str(here)
    run = subprocess.run([command, "report", "--help"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PATH": str(tmp_path)})
    assert run.returncode == 0 and "--reprocess" in run.stdout
    monkeypatch.setenv("PATH", f"{here.parent}{os.pathsep}{tmp_path}")
    assert hipback_command() == "hipback"

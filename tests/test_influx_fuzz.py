"""InfluxDB answers, fuzzed: the writer and the outbox sync against a server that answers anything.

A real socket server (:mod:`tests.hostile_influx`) answers each request with a seeded random choice of
status codes, bodies (garbage, huge, partial or deep JSON, HTML, bad UTF-8, a gzip bomb), cut, reset,
silent and dripping connections and malformed status lines; TLS errors have their own tests. The
properties, for every case:

- no exception other than :class:`DatabaseError` (one printable line), so no traceback;
- no hang: every case ends, each request within the writer's timeout (a request that drips forever is
  cut at ``timeout_s``);
- nothing marked delivered that the server did not accept with a complete 204;
- nothing duplicated: once a line is marked delivered it is never sent again, and with an honest server
  afterwards every line ends delivered or set aside exactly once;
- ``hipback sync`` exits 3 with one sentence when the database is unreachable or refuses.

The longer campaign is ``bench/influx_fuzz.py``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hipback.ingest.errors import ConfigError, DatabaseError
from hipback.ingest.influx.writer import InfluxWriter
from hipback.ingest.store import LocalStore
from hipback.ingest.sync import SyncWorker
from tests.hostile_influx import Answer, HostileInflux, fuzz_answer, ok, self_signed, server_tls_context

ROOT = Path(__file__).resolve().parents[1]
T0_NS = 1_763_700_000_000_000_000
TIMEOUT_S = 0.3
CASES = 60  # seeded cases in the suite; bench/influx_fuzz.py runs thousands


def _states(path: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {line: state for line, state in con.execute("SELECT line, state FROM outbox")}
    finally:
        con.close()


def run_case(seed: int, work: Path, n_lines: int = 40, batch_size: int = 16) -> dict:
    """One fuzz case (also used by bench/influx_fuzz.py): returns what happened; raises AssertionError when
    a property is broken."""
    rng = random.Random(seed)
    lock = threading.Lock()
    phase = {"fuzz": True}

    def choose(index: int, request: object) -> Answer:
        with lock:
            return fuzz_answer(rng) if phase["fuzz"] else ok()

    lines = [f"m,gw=g{seed},k=v{i} v={i}i {T0_NS + i}" for i in range(n_lines)]
    path = work / f"case-{seed}.sqlite"
    outcome: dict = {"seed": seed}
    with HostileInflux(choose) as server, LocalStore(path) as store:
        store.outbox_add(None, lines)
        writer = InfluxWriter(server.url, "hipback", batch_size=batch_size, timeout_s=TIMEOUT_S,
                              max_retries=1, backoff_base_s=0.002, backoff_max_s=0.01)
        worker = SyncWorker(store, writer)
        errors: list[BaseException] = []

        def sync() -> None:
            try:
                worker.sync_once()
            except BaseException as exc:  # noqa: BLE001 - recorded and judged below
                errors.append(exc)

        t = threading.Thread(target=sync, daemon=True)
        t.start()
        # a generous bound on a whole case: (bisection + retries) x timeout would be far less; a hang is not
        t.join(120)
        assert not t.is_alive(), f"seed {seed}: sync did not end: {[a.label for a in server.answers]}"
        for exc in errors:
            assert isinstance(exc, DatabaseError), f"seed {seed}: {type(exc).__name__}: {exc}"
            text = str(exc)
            assert "\n" not in text and "\r" not in text and text.isprintable(), repr(text)
            assert exc.__cause__ is None
        outcome["error"] = str(errors[0]) if errors else None
        outcome["answers"] = [a.label for a in server.answers]
        states = _states(path)
        delivered = {line for line, s in states.items() if s == 1}
        assert delivered <= set(server.accepted), f"seed {seed}: delivered without a 204: " \
            f"{sorted(delivered - set(server.accepted))[:3]} {outcome['answers']}"
        outcome["delivered_in_fuzz"] = len(delivered)
        outcome["set_aside_in_fuzz"] = sum(1 for s in states.values() if s == 2)

        # then an honest server: the rest arrives, and nothing delivered before is sent again
        with lock:
            phase["fuzz"] = False
            before = len(server.requests)
        report = worker.sync_once()
        resent = [line for r in server.requests[before:] for line in r.lines if line in delivered]
        assert not resent, f"seed {seed}: delivered lines sent again: {resent[:3]}"
        stats = store.outbox_stats()
        assert stats["pending"] == 0 and stats["delivered"] + stats["set_aside"] == n_lines, stats
        assert report.delivered == n_lines - len(delivered) - outcome["set_aside_in_fuzz"], (report, outcome)
        final = _states(path)
        assert {line for line, s in final.items() if s == 1} <= set(server.accepted), f"seed {seed}: final"
        writer.close()
    path.unlink()
    return outcome


@pytest.mark.parametrize("block", range(4))
def test_fuzzed_answers_keep_every_property(tmp_path: Path, block: int) -> None:
    per_block = CASES // 4
    outcomes = [run_case(1000 + block * per_block + i, tmp_path) for i in range(per_block)]
    labels = {label.split(" ")[0] for o in outcomes for label in o["answers"]}
    assert len(labels) >= 5, labels  # the cases really varied


def test_a_dripping_server_is_cut_at_the_timeout(tmp_path: Path) -> None:
    """httpx's timeouts are per read; an answer sent one byte at a time would hold a request for hours."""
    with HostileInflux(lambda i, r: Answer("drip", delay_s=0.02, label="drip")) as server:
        writer = InfluxWriter(server.url, "hipback", timeout_s=0.5, max_retries=0)
        t = time.monotonic()
        with pytest.raises(DatabaseError, match="timed out"):
            writer.send_lines(["m v=1 1"])
        elapsed = time.monotonic() - t
        writer.close()
    assert elapsed < 10, elapsed  # bounded by the timeout (0.5 s), not by the 100 kB the server would drip
    assert not server.accepted


@pytest.mark.parametrize("answer, expect", [
    (Answer("respond", 200, body=b"<html>login</html>"), "answers 204"),
    (Answer("respond", 302, headers=[("Location", "http://elsewhere/")]), "redirect"),
    (Answer("respond", 405, body=b"Method Not Allowed"), "does not answer to a write"),
    (Answer("respond", 401, body=b'{"error":"authorization failed"}'), "credentials were refused"),
    (Answer("respond", 404, body=b'{"error":"database not found: \\"hipback\\""}'), "does not exist"),
])
def test_answers_that_are_not_influxdb_are_refused_without_marking(tmp_path: Path, answer: Answer,
                                                                   expect: str) -> None:
    with HostileInflux(lambda i, r: answer) as server, LocalStore(tmp_path / "s.sqlite") as store:
        store.outbox_add(None, [f"m v={i} {T0_NS + i}" for i in range(10)])
        with InfluxWriter(server.url, "hipback", timeout_s=2, max_retries=3, backoff_base_s=0.01) as writer:
            with pytest.raises(DatabaseError, match=expect):
                SyncWorker(store, writer).sync_once()
        assert len(server.requests) == 1  # not retried: another try cannot help
        assert store.outbox_stats()["pending"] == 10


def test_data_refusal_sets_aside_only_the_refused_lines(tmp_path: Path) -> None:
    def choose(i: int, r) -> Answer:
        bad = any("bad" in line for line in r.lines)
        return Answer("respond", 400, body=b'{"error":"unable to parse"}') if bad else ok()

    with HostileInflux(choose) as server, LocalStore(tmp_path / "s.sqlite") as store:
        lines = [f"m v={i} {T0_NS + i}" for i in range(30)]
        lines[11] = "m bad=1 1"
        store.outbox_add(None, lines)
        with InfluxWriter(server.url, "hipback", timeout_s=2) as writer:
            report = SyncWorker(store, writer).sync_once()
    assert (report.delivered, report.set_aside) == (29, 1)
    assert store_reason(tmp_path / "s.sqlite") == ["HTTP 400: unable to parse"]


def store_reason(path: Path) -> list[str]:
    with LocalStore(path) as store:
        return [r["reason"] for r in store.outbox_set_aside_lines()]


def test_retry_after_cannot_park_the_writer() -> None:
    answers = iter([Answer("respond", 503, headers=[("Retry-After", "86400")]), ok()])
    with HostileInflux(lambda i, r: next(answers)) as server:
        with InfluxWriter(server.url, "hipback", timeout_s=2, max_retries=1, backoff_base_s=0.01,
                          backoff_max_s=0.2) as writer:
            t = time.monotonic()
            assert writer.send_lines(["m v=1 1"]).accepted == 1
            assert time.monotonic() - t < 10  # Retry-After honoured up to backoff_max_s (0.2 s), not a day


# -- TLS ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def test_tls_self_signed_is_refused_by_default_and_trusted_with_its_ca(cert: tuple[str, str]) -> None:
    with HostileInflux(tls=server_tls_context(*cert)) as server:
        with InfluxWriter(server.url, "hipback", timeout_s=2, max_retries=0) as writer:
            with pytest.raises(DatabaseError, match="certificate that could not be verified"):
                writer.send_lines(["m v=1 1"])
        assert not server.accepted
        with InfluxWriter(server.url, "hipback", timeout_s=2, max_retries=0, verify=cert[0]) as writer:
            assert writer.send_lines(["m v=1 1"]).accepted == 1
        assert server.accepted["m v=1 1"] == 1


def test_tls_errors_are_one_sentence(cert: tuple[str, str], tmp_path: Path) -> None:
    # https spoken to a plain HTTP server, and a TLS server that hangs up during the handshake
    with HostileInflux() as plain:
        with InfluxWriter(plain.url.replace("http://", "https://"), "hipback", timeout_s=2,
                          max_retries=0) as writer:
            with pytest.raises(DatabaseError) as err:
                writer.send_lines(["m v=1 1"])
    assert "\n" not in str(err.value) and not plain.accepted

    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def hang_up() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            conn.recv(100)  # the ClientHello
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    with InfluxWriter(f"https://127.0.0.1:{port}", "hipback", timeout_s=2, max_retries=1,
                      backoff_base_s=0.01) as writer:
        with pytest.raises(DatabaseError) as err:
            writer.send_lines(["m v=1 1"])
    listener.close()
    assert "after 2 attempts" in str(err.value) and "\n" not in str(err.value)
    bad_ca = tmp_path / "not-a-ca.pem"
    bad_ca.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="CA bundle"):
        InfluxWriter("https://127.0.0.1:1", "hipback", verify=str(bad_ca))


# -- the CLI: exit 3, one sentence ------------------------------------------------------------------


def _cli_sync(store: Path, url: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIPBACK_")}
    env.update({"PYTHONPATH": str(ROOT), "HIPBACK_INFLUX_URL": url, "HIPBACK_INFLUX_DATABASE": "hipback",
                **(extra or {})})
    return subprocess.run([sys.executable, "-m", "hipback.ingest.cli", "sync", "--store", str(store)],
                          capture_output=True, text=True, env=env, timeout=120)


def _influx_like(write_answer: Answer):
    """Answers /query as InfluxDB does (CREATE DATABASE succeeds) and every write with ``write_answer``."""

    def choose(i: int, r) -> Answer:
        if r.target.startswith("/query"):
            return Answer("respond", 200, headers=[("Content-Type", "application/json")],
                          body=b'{"results":[{"statement_id":0}]}')
        return write_answer

    return choose


@pytest.mark.parametrize("name, answer", [
    ("5xx", Answer("respond", 500, body=b"\x1b[2Jboom" + b"!" * 3000)),
    ("cut", Answer("close")),
    ("garbage", Answer("raw", raw=b"HELLO\r\n\r\n")),
    ("not influx", Answer("respond", 200, headers=[("Content-Type", "text/html")], body=b"<h1>Portal</h1>")),
    ("refused", Answer("respond", 403, body=b'{"error":"forbidden"}')),
])
def test_cli_sync_exits_3_with_one_sentence(tmp_path: Path, name: str, answer: Answer,
                                            cert: tuple[str, str]) -> None:
    store = tmp_path / "s.sqlite"
    with LocalStore(store) as s:
        s.outbox_add(None, [f"m v={i} {T0_NS + i}" for i in range(25)])

    with HostileInflux(_influx_like(answer)) as server:
        proc = _cli_sync(store, server.url)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and len(err.splitlines()) == 1, err
    assert "25 line(s) stay queued" in err and err.isprintable() and len(err) < 800, err
    with LocalStore(store) as s:
        assert s.outbox_stats()["pending"] == 25 and not server.accepted


def test_cli_sync_tls_unverified_exits_3(tmp_path: Path, cert: tuple[str, str]) -> None:
    store = tmp_path / "s.sqlite"
    with LocalStore(store) as s:
        s.outbox_add(None, ["m v=1 1"])
    with HostileInflux(_influx_like(ok()), tls=server_tls_context(*cert)) as server:
        proc = _cli_sync(store, server.url)
        assert proc.returncode == 3 and "certificate that could not be verified" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        ca = _cli_sync(store, server.url, {"HIPBACK_INFLUX_TLS_VERIFY": cert[0]})
        assert ca.returncode == 0, ca.stderr
    assert server.accepted["m v=1 1"] == 1

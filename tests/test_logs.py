"""Where a session's log records go (:mod:`hipback.ingest.logs`): the traceback to a private, bounded log
file, one sentence to stderr, libraries' records only to the file; and a recording whose live processing
fails shows no traceback."""

from __future__ import annotations

import io
import logging
import stat
from pathlib import Path

import pytest

from hipback.ingest.logs import session_log


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_traceback_goes_to_the_private_file_and_one_sentence_to_stderr(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("hipback").level)
    err = io.StringIO()
    path = tmp_path / "logs" / "hipback.log"
    with session_log(path, debug=False, stderr=err) as got:
        assert got == path
        try:
            raise RuntimeError("the grid broke")
        except RuntimeError:
            logging.getLogger("hipback.ingest.session.runner").exception("live processing stopped")
        logging.getLogger("bumble.gatt_client").warning("!!! unexpected response")
        logging.getLogger("hipback.ingest.store").info("opened")
        logging.debug("a library logging through the root logger")  # used to set up basicConfig
    assert err.getvalue() == "hipback: live processing stopped\n"  # no traceback, no library record
    text = path.read_text()
    assert "Traceback" in text and "RuntimeError: the grid broke" in text
    assert "bumble.gatt_client: !!! unexpected response" in text and "hipback.ingest.store: opened" in text
    assert "a library logging" not in text  # DEBUG of libraries is not kept
    assert _mode(path) == 0o600
    assert (list(root.handlers), root.level, logging.getLogger("hipback").level) == before


def test_debug_shows_the_traceback_on_stderr_too(tmp_path: Path) -> None:
    err = io.StringIO()
    with session_log(tmp_path / "hipback.log", debug=True, stderr=err):
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("hipback.x").exception("failed")
        logging.getLogger("hipback.x").debug("detail")
    assert "Traceback" in err.getvalue() and "ValueError: bad" in err.getvalue()
    assert "hipback.x: detail" in (tmp_path / "hipback.log").read_text()


def test_an_unwritable_log_leaves_the_sentences(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    err = io.StringIO()
    with session_log(blocker / "hipback.log", debug=False, stderr=err) as got:
        assert got is None
        logging.getLogger("hipback.y").error("store: samples of pelvis not written: disk full")
    assert err.getvalue() == "hipback: store: samples of pelvis not written: disk full\n"


def test_a_log_that_fails_while_writing_stays_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hipback.log"
    with session_log(path, debug=False, stderr=io.StringIO()):
        logging.getLogger("hipback.z").warning("first")
        path.unlink()
        path.mkdir()  # the next rotation cannot open it: logging's own error report must not appear
        handler = next(h for h in logging.getLogger().handlers if getattr(h, "baseFilename", None))
        handler.close()
        logging.getLogger("hipback.z").warning("second")
    assert "Logging error" not in capsys.readouterr().err


def test_the_log_rotates_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "hipback.log"
    with session_log(path, debug=False, stderr=io.StringIO(), max_bytes=2_000, backups=2):
        for i in range(400):
            logging.getLogger("bumble.link").info("packet %d %s", i, "x" * 40)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["hipback.log", "hipback.log.1", "hipback.log.2"]
    assert all(_mode(tmp_path / f) == 0o600 and (tmp_path / f).stat().st_size <= 2_100 for f in files)
    assert "packet 399" in path.read_text()


def test_a_recording_whose_processing_fails_shows_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from hipback.ingest.commands import record
    from hipback.ingest.store import LocalStore
    from hipback.processing.pipeline import SessionProcessor

    calls = [0]
    feed = SessionProcessor.feed

    def failing(self, chunk):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 400:
            raise FloatingPointError("a bug in a processing block")
        return feed(self, chunk)

    monkeypatch.setattr(SessionProcessor, "feed", failing)
    config = tmp_path / "s.toml"
    config.write_text(
        'patient = "P-0042"\nstore = "s.sqlite"\nble_backend = "bumble"\ncalibration_s = 5\nduration_s = 20\n'
        '[[sensors]]\nplacement = "pelvis"\nkind = "hipback_v1"\naddress = "C4:1B:AC:00:00:01"\n'
        'rate_hz = 100\n'
    )
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    outcome = record.run(config, speed=50.0, console=Console(file=out, width=200))
    err = capsys.readouterr().err
    assert outcome.processing_error and "FloatingPointError" in outcome.processing_error
    assert "Traceback" not in err and "hipback: live processing stopped" in err
    log = (tmp_path / "hipback.log").read_text()
    assert "Traceback" in log and "a bug in a processing block" in log
    said = " ".join(out.getvalue().split())  # (the console wraps long lines)
    assert f"a bug in a processing block (details in {tmp_path / 'hipback.log'})" in said, said[-1500:]
    with LocalStore(tmp_path / "s.sqlite") as store:  # recording went on: every sample stored
        assert store.sample_count(outcome.session_id) == outcome.stats["pelvis"].samples > 1000

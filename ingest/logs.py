"""Where a session's log records go: a private log file beside the store, and hipback's own warnings as
plain sentences on stderr.

Without this, Python's last-resort handler printed every warning and error record on stderr, a recording's
tracebacks included (live processing stopped, a view callback failed): a traceback on the clinician's
screen, and gone when the window closes. And the first record logged through the root logger by a library
(Bumble's GATT server logs that way) configured the root logger behind our back, after which every library's
warnings appeared on stderr as ``WARNING:bumble.gatt_client:...``.

:func:`session_log` (used by ``hipback record`` and ``hipback demo``) sends, for the duration of a command:

- every record at INFO and above (hipback's from DEBUG with ``HIPBACK_DEBUG``), with its traceback, to
  ``path``: created 0600 (it names sessions and sensors of a patient), rotated at ``max_bytes`` with
  ``backups`` old files kept, so it stays bounded however long the gateway runs;
- hipback's own warnings and errors to stderr as one sentence each (``hipback: ...``), without the traceback
  (the log file has it; ``HIPBACK_DEBUG=1`` shows it here too). Other libraries' records only go to the file.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator
from pathlib import Path

LOG_NAME = "hipback.log"
MAX_BYTES = 10_000_000
BACKUPS = 3


class _Sentence(logging.Formatter):
    """``hipback: <message>``: the record's first line only, never its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage().strip().splitlines()
        return f"hipback: {text[0] if text else record.levelname.lower()}"


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """A rotating log file whose every generation is created 0600, whatever the umask."""

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, self.mode.replace("w", "a"), encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        """A log that cannot be written (the disk the store is full on) must not print logging's own
        traceback into the session: the record's sentence reached stderr anyway."""


@contextlib.contextmanager
def session_log(
    path: Path | None,
    *,
    debug: bool | None = None,
    stderr: object = None,
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
) -> Iterator[Path | None]:
    """Route log records as the module docstring says while the block runs; yields the log file (None if
    it cannot be written: then records go to stderr only, as sentences). ``stderr``: the stream for the
    sentences (default ``sys.stderr`` at the time of the call)."""
    debug = bool(os.environ.get("HIPBACK_DEBUG")) if debug is None else debug
    root = logging.getLogger()
    handlers: list[logging.Handler] = []
    file_path: Path | None = None
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = _PrivateRotatingFile(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8",
                                      delay=True)
        except OSError:
            fh = None
        if fh is not None:
            fh.setLevel(logging.DEBUG if debug else logging.INFO)
            fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            handlers.append(fh)
            file_path = path
    err = logging.StreamHandler(stderr or sys.stderr)  # type: ignore[arg-type]
    err.setLevel(logging.WARNING)
    if debug:
        err.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        err.setFormatter(_Sentence())
        err.addFilter(lambda r: r.name == "hipback" or r.name.startswith("hipback."))
    handlers.append(err)
    # the libraries' own records from INFO (Bumble's per-packet ones are DEBUG and stay cheap to skip);
    # hipback's from DEBUG when asked
    ours = logging.getLogger("hipback")
    saved = root.level, ours.level
    root.setLevel(logging.INFO if file_path is not None else logging.WARNING)
    if debug:
        ours.setLevel(logging.DEBUG)
    for h in handlers:
        root.addHandler(h)
    try:
        yield file_path
    finally:
        for h in handlers:
            root.removeHandler(h)
            with contextlib.suppress(Exception):
                h.close()
        root.setLevel(saved[0])
        ours.setLevel(saved[1])

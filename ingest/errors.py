"""User-facing errors: each carries one plain sentence saying what went wrong and where.

The CLI prints ``str(error)`` and exits with ``error.exit_code``; it never shows a traceback for these.
Exit codes: 2 bad input or configuration (:class:`HipbackError`, :class:`ConfigError`,
:class:`RecordingFileError`), 3 a database (InfluxDB or the local store) refused, is damaged, full or
unreachable (:class:`DatabaseError` and its subclasses), 130 interrupted (Ctrl-C, handled by the CLI).
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with control characters (line breaks, carriage returns, terminal escapes) shown as ``\\xNN``:
    an error sentence quoting a file's bytes stays one line and cannot drive the user's terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class HipbackError(Exception):
    """Base class for errors caused by input, configuration or the environment (not by a bug).

    ``str(error)`` is the sentence with control characters escaped (:func:`printable`)."""

    exit_code = 2

    def __str__(self) -> str:
        return printable(super().__str__())


class ConfigError(HipbackError):
    """A configuration value is missing or wrong."""


class RecordingFileError(HipbackError):
    """A recording file cannot be read: names the file and, where known, the line."""

    def __init__(self, path: object, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class Interrupted(HipbackError):
    """Ctrl-C (or SIGTERM) stopped a command; the sentence says what was kept (exit code 130)."""

    exit_code = 130


class DatabaseError(HipbackError):
    """InfluxDB (or another store) refused or could not be reached."""

    exit_code = 3


class LocalStoreError(DatabaseError):
    """The local store file cannot be used as asked; the sentence names the file.

    Subclasses say why. None of them means data was lost: whatever the store held before stays as it was.
    """

    def __init__(self, path: object, message: str) -> None:
        self.path = str(path)
        super().__init__(f"the local store {self.path} {message}")


class StoreDamagedError(LocalStoreError):
    """The file is not a hipback store (not SQLite, truncated, malformed, another program's database)."""


class StoreVersionError(LocalStoreError):
    """The store was made by a newer hipback (schema version above the one this hipback knows)."""


class StoreFullError(LocalStoreError):
    """The disk holding the store is full: nothing more is stored until space is freed (what was stored
    stays intact, and storing resumes by itself on the next write once there is space)."""


class StoreReadOnlyError(LocalStoreError):
    """The store (or its folder) cannot be written, e.g. an archived copy; reading still works."""


class StoreBusyError(LocalStoreError):
    """Another program held the store's write lock for longer than the store's busy timeout."""

"""User-facing errors: each carries one plain sentence saying what went wrong and where.

The CLI prints ``str(error)`` and exits with ``error.exit_code``; it never shows a traceback for these.
"""

from __future__ import annotations


class HipbackError(Exception):
    """Base class for errors caused by input, configuration or the environment (not by a bug)."""

    exit_code = 2


class ConfigError(HipbackError):
    """A configuration value is missing or wrong."""


class RecordingFileError(HipbackError):
    """A recording file cannot be read: names the file and, where known, the line."""

    def __init__(self, path: object, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class DatabaseError(HipbackError):
    """InfluxDB (or another store) refused or could not be reached."""

    exit_code = 3

"""Terminal output that a closed pipe or a hung-up terminal cannot break.

A recording prints its live view for a person who may go away: ``hipback record ... | tee log`` whose reader
exits, an SSH session that drops (the terminal hangs up: writes fail with EIO after SIGHUP), a shell closed.
Rich's console exits the program at the first write to a closed pipe (``SystemExit(1)`` from
``Console.on_broken_pipe``) and passes any other ``OSError`` up through the code that printed, which in a
recording is the runner's callback: the session would end without its results, or the view's error would be
taken for the session's. :class:`GuardedOutput` wraps the stream instead: the first failed write marks it
closed and calls ``on_closed`` once (a recording stops as on Ctrl-C: everything received stays stored and
the results are stored too), and from then on every write is dropped (the stream's descriptor is pointed
at the null device, so that what it still buffers cannot fail again when the program exits).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TextIO


class GuardedOutput:
    """A text stream (``sys.stdout``) whose failed writes close it instead of raising (module docstring).

    :param stream: the stream written to.
    :param on_closed: called once, with the ``OSError``, when a write or flush first fails.
    """

    def __init__(self, stream: TextIO, on_closed: Callable[[OSError], None] | None = None) -> None:
        self._stream = stream
        self.on_closed = on_closed
        self.closed_by: OSError | None = None  # the error that closed it (None: still open)

    @property
    def is_closed(self) -> bool:
        """Whether a write has failed (everything since was dropped)."""
        return self.closed_by is not None

    def _failed(self, exc: OSError) -> None:
        if self.closed_by is not None:
            return
        self.closed_by = exc
        # what the stream still buffers would fail again at the interpreter's exit (a message and exit code
        # 120): from now on its descriptor writes to the null device
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self._stream.fileno())
            finally:
                os.close(null)
        except (OSError, ValueError, AttributeError):  # no descriptor (a StringIO): nothing buffered below it
            pass
        if self.on_closed is not None:
            self.on_closed(exc)

    def write(self, text: str) -> int:
        if self.closed_by is None:
            try:
                self._stream.write(text)
            except OSError as exc:  # BrokenPipeError, EIO of a hung-up terminal, ...
                self._failed(exc)
        return len(text)

    def flush(self) -> None:
        if self.closed_by is None:
            try:
                self._stream.flush()
            except OSError as exc:
                self._failed(exc)

    def isatty(self) -> bool:
        if self.closed_by is not None:
            return False
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

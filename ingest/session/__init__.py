"""Recording sessions: the runner (scan, connect, stream, reconnect, store, live processing) and its results.

- :func:`run_session` / :class:`SessionRunner`: a real (or Bumble-backed) session from a
  :class:`SessionConfig`.
- :func:`run_virtual_session`: the same runner against virtual sensors driven by a simulated session.

The names are imported from their modules when first used (PEP 562): a command that reads only the session
statistics' types (``hipback report``) does not import the runner, bleak, processing and Bumble.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (for type checkers and editors: the same names, imported eagerly)
    from hipback.ingest.session.runner import SessionRunner, run_session
    from hipback.ingest.session.stats import SensorStats, SessionEvent, SessionOutcome
    from hipback.ingest.session.virtual import run_virtual_session, run_virtual_session_async

#: public name -> the module of this package that defines it
_MODULES = {
    "SensorStats": "stats",
    "SessionEvent": "stats",
    "SessionOutcome": "stats",
    "SessionRunner": "runner",
    "run_session": "runner",
    "run_virtual_session": "virtual",
    "run_virtual_session_async": "virtual",
}

__all__ = [
    "SensorStats",
    "SessionEvent",
    "SessionOutcome",
    "SessionRunner",
    "run_session",
    "run_virtual_session",
    "run_virtual_session_async",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # (found directly from now on)
    return value

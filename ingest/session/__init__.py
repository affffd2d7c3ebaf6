"""Recording sessions: the runner (scan, connect, stream, reconnect, store, live processing) and its results.

- :func:`run_session` / :class:`SessionRunner`: a real (or Bumble-backed) session from a
  :class:`SessionConfig`.
- :func:`run_virtual_session`: the same runner against virtual sensors driven by a simulated session.
"""

from hipback.ingest.session.runner import SessionRunner, run_session
from hipback.ingest.session.stats import SensorStats, SessionEvent, SessionOutcome
from hipback.ingest.session.virtual import run_virtual_session, run_virtual_session_async

__all__ = [
    "SensorStats",
    "SessionEvent",
    "SessionOutcome",
    "SessionRunner",
    "run_session",
    "run_virtual_session",
    "run_virtual_session_async",
]

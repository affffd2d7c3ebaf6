"""Recording sessions: the runner (scan, connect, stream, reconnect, store, live processing) and its results.

- :func:`run_session` / :class:`SessionRunner`: a real (or Bumble-backed) session from a
  :class:`SessionConfig`.
- :func:`run_virtual_session`: the same runner against virtual sensors driven by a simulated session.

The names are imported from their modules when first used (PEP 562, through ``lazy_loader``): a command
that reads only the session statistics' types (``hipback report``) does not import the runner, bleak,
processing and Bumble.
"""

from __future__ import annotations

import lazy_loader

#: submodule -> the public names it defines (imported when first used)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "runner": ["SessionRunner", "run_session"],
        "stats": ["SensorStats", "SessionEvent", "SessionOutcome"],
        "virtual": ["run_virtual_session", "run_virtual_session_async"],
    },
)

"""The demo names the store it writes into and says what it already keeps: every run adds a session (the
store keeps sessions, as a gateway's does), so a newcomer learns why ``demo-out`` grows and how to start
afresh."""

from __future__ import annotations

from hipback.ingest.commands.demo import _earlier_sessions
from hipback.ingest.store import LocalStore


def test_the_demo_says_how_many_sessions_its_store_keeps(tmp_path):
    path = tmp_path / "demo-out" / "hipback.sqlite"
    assert _earlier_sessions(path) == ""  # the first run: nothing to say
    path.parent.mkdir()
    with LocalStore(path) as st:
        for _ in range(2):
            st.close_session(st.open_session("DEMO-0001"))
    said = _earlier_sessions(path)
    assert said.startswith(" (it keeps the 2 earlier demo sessions, ")
    assert f"delete {path.parent} to start afresh" in said
    path.write_bytes(b"not a store at all, but long enough to be read as one" * 100)
    assert _earlier_sessions(path) == ""  # a damaged store is the session's to report, not this line's

"""The outbox's line checks and counts with exact expectations, for the survivors of
``python bench/mutation.py --group outbox``: only the final newline is taken off a line (other trailing
whitespace is kept, a carriage return or any other trailing character refuses it), the refusal's sentence,
and the count of a state this version does not know (a store written by a later one).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hipback.ingest.store import LocalStore, StoreError

T0 = 1_763_700_000_000_000_000
REFUSED = r"^an outbox entry must be one line of line protocol ending with an explicit nanosecond timestamp$"


@pytest.fixture
def store(tmp_path: Path):
    with LocalStore(tmp_path / "s.sqlite") as s:
        yield s


def test_only_the_final_newline_is_taken_off_a_line(store: LocalStore) -> None:
    assert store.outbox_add(None, [f"m x=1i {T0}\n", f"m x=2i {T0 + 1} \t\n", f"m x=3i {T0 + 2}  "]) == 3
    assert [line for _, line in store.outbox_pending(10)] == [
        f"m x=1i {T0}", f"m x=2i {T0 + 1} \t", f"m x=3i {T0 + 2}  "]


@pytest.mark.parametrize("line", [f"m x=1i {T0}\r\n", f"m x=1i {T0}\r", f"m,t=X x=1i {T0}X",
                                  f"m x=1i {T0}X\n", "m x=1i", f"m x=1i {T0}\nm x=2i {T0}"])
def test_a_line_not_ending_with_its_timestamp_is_refused(store: LocalStore, line: str) -> None:
    with pytest.raises(StoreError, match=REFUSED):
        store.outbox_add(None, [f"m x=0i {T0}", line])
    assert store.outbox_stats()["total"] == 0  # nothing of the call is queued


def test_a_state_this_version_does_not_know_is_counted_under_its_number(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with LocalStore(path) as s:
        s.outbox_add("S1", [f"m x=1i {T0}", f"m x=2i {T0 + 1}", f"m x=3i {T0 + 2}"])
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE outbox SET state = 7 WHERE id <= 2")
    con.close()
    with LocalStore(path) as s:
        assert s.outbox_stats() == {"pending": 1, "delivered": 0, "set_aside": 0, "7": 2, "total": 3}
        assert s.outbox_stats("S1") == {"pending": 1, "delivered": 0, "set_aside": 0, "7": 2, "total": 3}
        assert s.outbox_pending(10) == [(3, f"m x=3i {T0 + 2}")]

"""session_gc: the collector's settings while a session runs, undone afterwards (also after an error)."""

from __future__ import annotations

import gc

import pytest

from hipback.ingest.session.runner import GC_THRESHOLD0, session_gc


def test_session_gc_freezes_the_set_up_and_restores_the_collector():
    before_threshold, before_frozen = gc.get_threshold(), gc.get_freeze_count()
    set_up = [object() for _ in range(10)]  # noqa: F841 - alive on entry
    with session_gc():
        assert gc.get_threshold() == (GC_THRESHOLD0, *before_threshold[1:])
        assert gc.get_freeze_count() > before_frozen
    assert gc.get_threshold() == before_threshold
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), session_gc(threshold0=5000):
        assert gc.get_threshold()[0] == 5000
        raise RuntimeError("a failed session")
    assert gc.get_threshold() == before_threshold and gc.get_freeze_count() == 0

"""The session runner on a store that keeps failing (a full disk fails every 20 ms writer round): every
failure is counted, but the log and the sensor's error list get one entry per failing stretch, so memory
stays bounded; a successful write ends the stretch."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from hipback.ingest.session.runner import SessionRunner
from hipback.ingest.session.stats import SensorStats
from hipback.ingest.session.virtual import virtual_config


def test_repeated_store_failures_are_counted_but_reported_once_per_stretch(caplog) -> None:
    config = virtual_config({"pelvis": "hipback_v1"}, {"pelvis": "C4:1B:AC:00:00:01"})
    runner = SessionRunner(config, store=None)
    stats = SensorStats("pelvis", "hipback_v1", "C4:1B:AC:00:00:01", "hipback-01")
    runner.links = {"pelvis": SimpleNamespace(stats=stats)}  # type: ignore[dict-item]
    full = OSError("the local store is on a full disk")
    with caplog.at_level(logging.WARNING, logger="hipback.ingest.session.runner"):
        for _ in range(500):
            runner._on_write_error("samples", "pelvis", full)
        assert stats.store_errors == 500 and len(stats.errors) == 1
        assert sum(r.levelno == logging.ERROR for r in caplog.records) == 1
        runner._on_written("pelvis", 10, 10, [], 0.0)  # space is back
        assert any("resumed" in r.getMessage() for r in caplog.records)
        runner._on_write_error("samples", "pelvis", full)  # a new stretch is reported again
    assert stats.store_errors == 501 and len(stats.errors) == 2
    assert sum(r.levelno == logging.ERROR for r in caplog.records) == 2

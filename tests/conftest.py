"""Shared pytest configuration: the real-InfluxDB fixtures (kept small; the server code is in
:mod:`tests.influx_server`).

- ``influxd`` (session scope): a private ``influxd`` on a free loopback port; ``.url`` is its base URL.
  Fails (does not skip) with install instructions when ``influxd`` is missing.
- ``influx_db`` (function scope): a fresh, uniquely named database on that server, dropped afterwards.

It also puts the test files that take longest first (:data:`SLOW_FIRST`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.influx_server import InfluxdNotFound, InfluxServer, find_influxd

#: the test files that take longest (15 s or more of test time on two workers), longest first. ``make test``
#: runs the suite on two workers that take whole files in collection order (``--dist loadfile
#: --no-loadscope-reorder``); these files are collected first, so that the longest ones do not start last and
#: keep one worker busy while the other idles (xdist's own order, by number of tests, put the one-test demo
#: file last). Any file may be missing from a run.
SLOW_FIRST = (
    "test_demo.py",
    "test_report_stored.py",
    "test_cli.py",
    "test_influx_fuzz.py",
    "test_dashboards.py",
    "test_session_config.py",
    "test_live_small_steps.py",
    "test_fuzz_packets.py",
    "test_dashboards_processed.py",
    "test_simulator_cli.py",
    "test_pipeline_event_rounds.py",
    "test_exercises_gyro_heading.py",
    "test_exercises_results.py",
    "test_fleet.py",
    "test_sync.py",
    "test_session_virtual.py",
    "test_report.py",
    "test_clock.py",
    "test_pipeline_gyro_heading.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files of :data:`SLOW_FIRST` first, in that order; every other file, and every file's tests, in
    the order they were collected (a stable sort)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    try:
        find_influxd()
    except InfluxdNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    server = InfluxServer(tmp_path_factory.mktemp("influxd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influx_db(influxd: InfluxServer) -> Iterator[str]:
    name = influxd.create_database()
    try:
        yield name
    finally:
        try:
            influxd.drop_database(name)
        except Exception:  # the server may have been stopped by the test; nothing to clean then
            pass

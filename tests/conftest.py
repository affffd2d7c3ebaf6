"""Shared pytest configuration: the real-InfluxDB fixtures (kept small; the server code is in
:mod:`tests.influx_server`).

- ``influxd`` (session scope): a private ``influxd`` on a free loopback port; ``.url`` is its base URL.
  Fails (does not skip) with install instructions when ``influxd`` is missing.
- ``influx_db`` (function scope): a fresh, uniquely named database on that server, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.influx_server import InfluxdNotFound, InfluxServer, find_influxd


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

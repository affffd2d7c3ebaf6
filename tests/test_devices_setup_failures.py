"""Set-up requests that fail at the Bluetooth level, through the real session path (bleak on a Bumble link):
a configuration read the device answers with an error on every connection leaves the sensor out after
``SETUP_FAILURES_LIMIT`` identical failures (as a payload mode that cannot stream does), while a link that
drops in the middle of the same read is a connection problem and is reconnected for as long as it takes."""

from __future__ import annotations

import pytest

from hipback.ingest.devices import hipback_v1 as hb
from hipback.ingest.devices import movella_dot as md
from hipback.ingest.session.runner import SETUP_FAILURES_LIMIT
from hipback.simulator.virtual_ble import SensorFaults
from tests.one_sensor import one_thigh_session, run_one_sensor


@pytest.fixture(scope="module")
def sim():
    return one_thigh_session()


@pytest.mark.parametrize("kind,uuid,name", [("movella_dot", md.DEVICE_INFO_UUID, "Device Info"),
                                            ("hipback_v1", hb.INFO_UUID, "INFO")])
def test_a_configuration_read_that_always_fails_leaves_the_sensor_out(sim, tmp_path, kind, uuid, name):
    """Until 600 s of simulated time: the old runner took the read error for a lost link and reconnected
    for the whole session (dozens of ``connect_failed``); now the third identical failure ends it."""
    outcome, events, stored = run_one_sensor(
        sim, tmp_path, kind, SensorFaults(failing_reads=[uuid]), until_s=600.0
    )
    tries = [e for e in events if e.kind == "connect_failed"]
    (failed,) = [e for e in events if e.kind == "sensor_failed"]
    assert len(tries) == SETUP_FAILURES_LIMIT - 1 and failed.t < 60.0
    assert f"reading {name} ({uuid}) failed" in failed.message and "\n" not in failed.message
    # the device's answer as an ATT error (what BlueZ reports too), no terminal escapes of the stack's text
    assert "read failed: ATT error UNLIKELY_ERROR (0x0E)" in failed.message and "\x1b" not in failed.message
    st, ledger = outcome.stats["thigh_left"], outcome.ledgers["thigh_left"]
    assert outcome.stopped_by == "sensors_failed" and st.failed == failed.data["reason"]
    assert ledger.reads_failed == SETUP_FAILURES_LIMIT and st.connect_failures == SETUP_FAILURES_LIMIT
    assert st.samples == stored == 0


def test_record_says_in_one_sentence_which_read_failed(sim, tmp_path) -> None:
    from hipback.ingest.commands.record import check_outcome
    from hipback.ingest.errors import HipbackError

    faults = SensorFaults(failing_reads=[md.DEVICE_INFO_UUID])
    outcome, _, _ = run_one_sensor(sim, tmp_path, "movella_dot", faults, until_s=600.0)
    with pytest.raises(HipbackError) as err:
        check_outcome(outcome)
    text = str(err.value)
    assert err.value.exit_code == 2 and "\n" not in text
    start = "no sensor can stream as configured (thigh_left: Movella DOT: reading Device Info ("
    assert text.startswith(start)


def test_a_link_lost_during_the_read_reconnects_until_the_sensor_is_back(sim, tmp_path) -> None:
    """The sensor goes out of range during the same read on five connections in a row (more than the limit):
    each is a lost link, not a device error, so the runner keeps reconnecting and then streams."""
    faults = SensorFaults(drop_on_read={md.DEVICE_INFO_UUID: 5}, readvertise_after_s=0.5)
    outcome, events, stored = run_one_sensor(sim, tmp_path, "movella_dot", faults, until_s=40.0)
    st, ledger = outcome.stats["thigh_left"], outcome.ledgers["thigh_left"]
    assert ledger.reads_failed == 5 and not [e for e in events if e.kind == "sensor_failed"]
    assert st.failed is None and st.connect_failures >= 5 and outcome.stopped_by != "sensors_failed"
    assert ledger.starts == 1 and st.samples == ledger.sent_samples == stored > 1000


def test_a_read_that_fails_twice_then_works_streams(sim, tmp_path, monkeypatch) -> None:
    """Fewer identical failures than the limit: the sensor is retried and streams (no sensor_failed)."""
    from hipback.simulator.virtual_ble import sensors as vs

    real = vs.VirtualSensor._read
    calls = {"n": 0}

    async def flaky(self, char_uuid: str) -> bytes:
        if char_uuid.lower() == md.DEVICE_INFO_UUID and calls["n"] < SETUP_FAILURES_LIMIT - 1:
            calls["n"] += 1
            self._failing_reads = frozenset({md.DEVICE_INFO_UUID})
        else:
            self._failing_reads = frozenset()
        return await real(self, char_uuid)

    monkeypatch.setattr(vs.VirtualSensor, "_read", flaky)
    outcome, events, stored = run_one_sensor(sim, tmp_path, "movella_dot", SensorFaults(), until_s=20.0)
    st, ledger = outcome.stats["thigh_left"], outcome.ledgers["thigh_left"]
    assert ledger.reads_failed == SETUP_FAILURES_LIMIT - 1 and st.connect_failures == SETUP_FAILURES_LIMIT - 1
    assert st.failed is None and not [e for e in events if e.kind == "sensor_failed"]
    assert st.samples == ledger.sent_samples == stored > 500

"""Malformed configuration reads at connection set-up (Movella DOT Device Control 0x1002 and Control 0x2001):
the connection proceeds with what is safe instead of failing set-up on every attempt (an endless reconnect
loop that never streamed). Virtual DOTs over the real session path (bleak on a Bumble link)."""

from __future__ import annotations

import pytest

from hipback.ingest.devices import MOVELLA_DOT, Write
from hipback.ingest.devices import movella_dot as md
from hipback.simulator.devices import movella_dot as sim_md
from hipback.simulator.virtual_ble import SensorFaults
from tests.one_sensor import one_thigh_session, run_one_sensor


@pytest.fixture(scope="module")
def sim():
    return one_thigh_session()


def _malformed(monkeypatch, uuid: str, value: bytes) -> None:
    """Make every virtual DOT answer ``value`` to a read of ``uuid``."""
    real = sim_md.MovellaState.read

    def read(self, char_uuid: str, now: float = 0.0) -> bytes:
        return value if char_uuid.lower() == uuid else real(self, char_uuid, now)

    monkeypatch.setattr(sim_md.MovellaState, "read", read)


def test_malformed_device_control_read_streams_at_the_configured_rate(sim, tmp_path, monkeypatch) -> None:
    twin_dc = sim_md.default_device_control()
    _malformed(monkeypatch, md.DEVICE_CONTROL_UUID, twin_dc[:31])  # one byte short
    outcome, events, stored = run_one_sensor(sim, tmp_path, "movella_dot", SensorFaults(), until_s=8.0)
    st, ledger = outcome.stats["thigh_left"], outcome.ledgers["thigh_left"]
    assert not [e for e in events if e.kind == "connect_failed"] and st.connect_failures == 0
    assert ledger.starts == 1 and ledger.errors == []
    assert st.samples == ledger.sent_samples == stored > 300


def test_malformed_control_read_after_a_reconnect_stops_before_the_rate(sim, tmp_path, monkeypatch) -> None:
    """The DOT keeps measuring over a link loss; with its Control value unreadable the host cannot tell, so
    it stops it first: the rate write is not refused."""
    _malformed(monkeypatch, md.CONTROL_UUID, b"\x01")
    outcome, events, stored = run_one_sensor(
        sim, tmp_path, "movella_dot", SensorFaults(disconnect_at=[4.0]), until_s=12.0
    )
    st, ledger = outcome.stats["thigh_left"], outcome.ledgers["thigh_left"]
    assert st.disconnects == 1 and st.reconnects == 1 and ledger.starts == 2
    assert ledger.errors == []  # no rate write refused during measurement
    assert st.samples == ledger.sent_samples == stored


@pytest.mark.parametrize("dc", [b"", b"\x00" * 31, b"\x00" * 33])
def test_start_sequence_writes_the_rate_alone_after_a_malformed_device_control(dc: bytes) -> None:
    config = MOVELLA_DOT.parse_config({md.DEVICE_CONTROL_UUID: dc})
    assert any(n.startswith("Device Control unreadable") for n in config.notes)
    rate = md.device_control_write(bytes(32), 30)
    assert rate[0] == md.VISIT_RATE and rate[1:24] == bytes(23) and rate[24:26] == b"\x1e\x00"
    assert MOVELLA_DOT.start_sequence(30, "custom5", config) == [
        Write(md.DEVICE_CONTROL_UUID, rate, True, "output rate (the value read was malformed)"),
        Write(md.CONTROL_UUID, bytes([1, 1, 26]), True, "start custom5"),
    ]


@pytest.mark.parametrize("control", [b"", b"\x01", b"\x01\x05\x1a", b"\x01\x01\x1a\x00"])
def test_start_sequence_stops_first_when_the_measuring_state_is_unreadable(control: bytes) -> None:
    config = MOVELLA_DOT.parse_config({md.CONTROL_UUID: control})
    assert any(n.startswith("Control unreadable") for n in config.notes) and not config.measuring
    assert MOVELLA_DOT.start_sequence(60, "custom3", config) == [
        Write(md.CONTROL_UUID, bytes([1, 0, 24]), True, "stop (measuring state unreadable)"),
        Write(md.CONTROL_UUID, bytes([1, 1, 24]), True, "start custom3"),
    ]


def test_a_device_that_cannot_stream_is_a_user_facing_error_with_exit_code_2() -> None:
    """No payload mode fits: one sentence (naming the device and why) that the CLI shows with exit code 2."""
    from hipback.ingest.devices import DeviceSetupError
    from hipback.ingest.errors import HipbackError

    with pytest.raises(DeviceSetupError) as info:
        MOVELLA_DOT.choose_mode("rate_quantities", 23)
    err = info.value
    assert isinstance(err, HipbackError) and isinstance(err, ValueError) and err.exit_code == 2
    assert str(err).startswith("Movella DOT: no payload mode can stream here (") and "\n" not in str(err)

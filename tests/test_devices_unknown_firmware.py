"""Movella DOT whose Device Info (0x1001) cannot be read: the firmware version is unknown, so hipback streams
only payload modes every firmware has (custom mode 5 needs firmware 3) and says so once, instead of asking an
older DOT for a mode it does not know (it then never starts measuring and the session records nothing)."""

from __future__ import annotations

import pytest

from hipback.ingest.devices import MOVELLA_DOT
from hipback.ingest.devices import movella_dot as md
from hipback.ingest.session import run_virtual_session
from hipback.ingest.store import LocalStore
from hipback.simulator import SensorSpec, simulate
from hipback.simulator.devices import movella_dot as sim_md
from hipback.simulator.virtual_ble import SensorFaults

MESSAGE = (
    "Movella DOT: custom5 needs firmware 3 or later and the firmware version could not be read "
    "(Device Info); streaming custom3 instead."
)


@pytest.mark.parametrize("values", [{md.DEVICE_INFO_UUID: b"\x01\x02\x03"}, {md.DEVICE_INFO_UUID: b""}, {}])
def test_unknown_firmware_offers_the_modes_every_firmware_has(values) -> None:
    config = MOVELLA_DOT.parse_config(values)
    assert config.firmware is None and config.modes is not None
    assert set(config.modes) == set(md.PAYLOAD_MODES) - {"custom5"}
    assert "firmware version unknown: only the payload modes every firmware has (not custom5)" in config.notes
    choice = MOVELLA_DOT.choose_mode("custom5", 247, config)
    assert choice.mode == "custom3" and choice.message == MESSAGE
    # a mode every firmware has is streamed as asked, without a message
    assert MOVELLA_DOT.choose_mode("custom3", 247, config).message is None
    assert MOVELLA_DOT.choose_mode("rate_quantities", 247, config).message is None


def test_a_readable_firmware_3_still_streams_custom_mode_5() -> None:
    info = sim_md.MovellaState(firmware=(3, 1, 0)).read(md.DEVICE_INFO_UUID)
    config = MOVELLA_DOT.parse_config({md.DEVICE_INFO_UUID: info})
    assert config.firmware == "3.1.0" and "custom5" in config.modes
    assert MOVELLA_DOT.choose_mode("custom5", 247, config).mode == "custom5"


def test_an_old_dot_with_unreadable_device_info_streams_and_says_so_once(tmp_path, monkeypatch) -> None:
    """A firmware 2.6 DOT (which refuses to start custom mode 5) answers a 3-byte Device Info; the link drops
    once at 4 s. Before: custom mode 5 was asked for, refused, and nothing was stored."""
    real = sim_md.MovellaState.read

    def read(self, char_uuid: str, now: float = 0.0) -> bytes:
        return b"\x01\x02\x03" if char_uuid.lower() == md.DEVICE_INFO_UUID else real(self, char_uuid, now)

    monkeypatch.setattr(sim_md.MovellaState, "read", read)
    sim = simulate("short", seed=7, sensors=[SensorSpec("thigh_left", kind="quat", rate_hz=100.0)])
    events: list = []
    faults = SensorFaults(device_options={"firmware": (2, 6, 0)}, disconnect_at=[4.0])
    outcome = run_virtual_session(
        sim,
        {"thigh_left": "movella_dot"},
        tmp_path / "s.sqlite",
        faults={"thigh_left": faults},
        until_s=12.0,
        calibration_s=0,
        process=False,
        on_event=events.append,
    )
    st, ledger = outcome.stats["thigh_left"], outcome.ledgers["thigh_left"]
    (mode,) = [e for e in events if e.kind == "mode"]  # one message over both connections
    assert mode.message == MESSAGE and mode.data["mode"] == "custom3"
    assert st.reconnects == 1 and ledger.starts == 2 and ledger.errors == []
    with LocalStore(tmp_path / "s.sqlite") as store:
        stored = store.sample_count(outcome.session_id, "thigh_left")
    assert st.samples == ledger.sent_samples == stored > 500

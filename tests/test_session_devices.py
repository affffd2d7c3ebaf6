"""Device specifics through the real session path: ATT MTU and firmware decide the payload mode, a Movella DOT
reconnect stops measurement before the rate, the WitMotion battery poll, a mode that cannot stream at all.

Virtual sensors (Bumble GATT peripherals running each kind's twin) go through the unchanged runner, bleak,
bleak-retry-connector and the Bumble backend into a real store; the twins refuse what the real devices refuse
(a rate write while measuring, payload modes an old firmware lacks) and the link cuts notifications to
ATT_MTU - 3 bytes, so a wrong sequence or a wrong mode shows up as errors or lost samples.
"""

from __future__ import annotations

import pytest

from hipback.ingest.session import run_virtual_session
from hipback.ingest.store import LocalStore
from hipback.simulator import SensorSpec, simulate
from hipback.simulator.virtual_ble import SensorFaults
from tests.one_sensor import one_thigh_session, run_one_sensor


@pytest.fixture(scope="module")
def sim():
    return one_thigh_session()




def _stored(tmp_path, outcome) -> int:
    with LocalStore(tmp_path / "s.sqlite") as store:
        return store.sample_count(outcome.session_id, "thigh_left")


def test_movella_at_the_default_mtu_streams_the_short_payload_mode(sim, tmp_path) -> None:
    outcome, events, _ = run_one_sensor(sim, tmp_path, "movella_dot", SensorFaults(max_mtu=23))
    (mode,) = [e for e in events if e.kind == "mode"]
    assert mode.data["mode"] == "orientation_quaternion" and mode.data["mtu"] == 23
    assert "custom5 needs ATT MTU >= 66" in mode.message
    st, ledger = outcome.stats["thigh_left"], outcome.ledgers["thigh_left"]
    assert not ledger.errors and not st.rejected  # nothing truncated: every packet fits
    assert st.samples == ledger.sent_samples == _stored(tmp_path, outcome) > 500


def test_movella_without_the_mtu_exchange_would_lose_every_packet(sim, tmp_path) -> None:
    """What the fallback prevents: custom mode 5 at MTU 23 arrives cut to 20 bytes (counted, not stored)."""
    from hipback.ingest.devices import MOVELLA_DOT

    assert MOVELLA_DOT.min_mtu("custom5") == 66 and MOVELLA_DOT.min_mtu("orientation_quaternion") == 23
    decoder = MOVELLA_DOT.make_decoder(60, "custom5")
    assert decoder.feed(bytes(20), 0.0).rejected == "truncated"


def test_movella_with_old_firmware_streams_custom_mode_3(sim, tmp_path) -> None:
    outcome, events, _ = run_one_sensor(
        sim, tmp_path, "movella_dot", SensorFaults(device_options={"firmware": (2, 6, 0)})
    )
    (mode,) = [e for e in events if e.kind == "mode"]
    assert mode.data["mode"] == "custom3" and "firmware 2.6.0" in mode.message
    st, ledger = outcome.stats["thigh_left"], outcome.ledgers["thigh_left"]
    assert not ledger.errors and not st.rejected
    assert st.samples == ledger.sent_samples == _stored(tmp_path, outcome) > 500


def test_movella_reconnect_stops_measurement_before_writing_the_rate(sim, tmp_path) -> None:
    outcome, events, _ = run_one_sensor(
        sim, tmp_path, "movella_dot", SensorFaults(disconnect_at=[4.0]), until_s=14.0
    )
    st, ledger = outcome.stats["thigh_left"], outcome.ledgers["thigh_left"]
    assert st.disconnects == 1 and st.reconnects == 1 and ledger.starts == 2
    # the twin keeps measuring over the link loss and refuses a rate write while measuring: none was refused
    assert ledger.errors == []
    assert st.samples == ledger.sent_samples == _stored(tmp_path, outcome)
    assert not [e for e in events if e.kind == "mode"]


def test_witmotion_battery_is_polled_into_the_sensor_status(sim, tmp_path) -> None:
    outcome, events, _ = run_one_sensor(
        sim, tmp_path, "witmotion", SensorFaults(low_battery_at=1.0, low_battery_pct=8), until_s=40.0
    )
    st = outcome.stats["thigh_left"]
    # read at connect (full), then the poll every 30 s finds the low voltage
    assert st.battery_pct is not None and st.battery_pct <= 15
    (low,) = [e for e in events if e.kind == "low_battery"]
    assert low.t > 25.0 and low.data["battery_pct"] == st.battery_pct
    assert st.samples == outcome.ledgers["thigh_left"].sent_samples


def test_a_raw_movella_at_the_default_mtu_cannot_stream_and_says_why(tmp_path) -> None:
    raw = one_thigh_session("raw")
    outcome, events, _ = run_one_sensor(raw, tmp_path, "movella_dot", SensorFaults(max_mtu=23), until_s=6.0)
    failed = [e for e in events if e.kind == "connect_failed"]
    assert failed and "no payload mode can stream" in failed[0].message
    assert "rate_quantities needs ATT MTU >= 43" in failed[0].message
    assert outcome.stats["thigh_left"].samples == 0


def test_a_sensor_that_can_never_stream_is_left_out_and_the_session_stops(tmp_path) -> None:
    """The same set-up failure three times in a row: no endless reconnecting; the only sensor is left out, so
    the session stops long before its end (until_s 600 s of simulated time) and says why."""
    raw = one_thigh_session("raw")
    outcome, events, _ = run_one_sensor(raw, tmp_path, "movella_dot", SensorFaults(max_mtu=23), until_s=600.0)
    tries = [e for e in events if e.kind == "connect_failed"]
    (failed,) = [e for e in events if e.kind == "sensor_failed"]
    assert len(tries) == 2 and failed.t < 60.0 and failed.placement == "thigh_left"  # 2 "retrying", then out
    assert "no payload mode can stream" in failed.message and "\n" not in failed.message
    st = outcome.stats["thigh_left"]
    assert outcome.stopped_by == "sensors_failed" and st.failed and st.failed == failed.data["reason"]
    assert st.as_dict()["failed"] == st.failed and st.samples == 0 and st.connect_failures == 3
    with LocalStore(tmp_path / "s.sqlite") as store:  # the reason is in the session's stored events
        stored = store.events(outcome.session_id, "sensor_failed")
    assert len(stored) == 1


def test_the_other_sensors_go_on_when_one_is_left_out(tmp_path) -> None:
    two = simulate(
        "short",
        seed=7,
        sensors=[SensorSpec("thigh_left", kind="raw", rate_hz=100.0), SensorSpec("pelvis", kind="quat")],
    )
    events: list = []
    outcome = run_virtual_session(
        two,
        {"thigh_left": "movella_dot", "pelvis": "hipback_v1"},
        tmp_path / "s.sqlite",
        faults={"thigh_left": SensorFaults(max_mtu=23)},
        until_s=20.0,
        calibration_s=0,
        process=False,
        on_event=events.append,
    )
    assert [e.placement for e in events if e.kind == "sensor_failed"] == ["thigh_left"]
    assert outcome.stopped_by != "sensors_failed" and outcome.stats["thigh_left"].failed
    assert outcome.stats["pelvis"].failed is None and outcome.stats["pelvis"].samples > 1500


def test_record_says_in_one_sentence_why_no_sensor_could_stream(tmp_path) -> None:
    from hipback.ingest.commands.record import check_outcome
    from hipback.ingest.errors import HipbackError

    raw = one_thigh_session("raw")
    outcome, _, _ = run_one_sensor(raw, tmp_path, "movella_dot", SensorFaults(max_mtu=23), until_s=600.0)
    with pytest.raises(HipbackError) as err:
        check_outcome(outcome)
    text = str(err.value)
    assert err.value.exit_code == 2 and "\n" not in text
    assert text.startswith("no sensor can stream as configured (thigh_left: Movella DOT: no payload mode")

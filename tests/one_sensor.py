"""One sensor on the left thigh through the real session path (virtual BLE link, simulated time): the common
run of the device-boundary tests (set-up reads and failures, payload modes, reconnects)."""

from __future__ import annotations

from pathlib import Path

from hipback.ingest.session import run_virtual_session
from hipback.ingest.store import LocalStore
from hipback.simulator import SensorSpec, simulate
from hipback.simulator.virtual_ble import SensorFaults


def one_thigh_session(kind: str = "quat"):
    """A short simulated session with one 100 Hz sensor (``kind`` quat or raw) on the left thigh."""
    return simulate("short", seed=7, sensors=[SensorSpec("thigh_left", kind=kind, rate_hz=100.0)])


def run_one_sensor(sim, tmp_path: Path, device: str, faults: SensorFaults, until_s: float = 12.0):
    """``sim``'s left thigh streamed as ``device`` with ``faults`` until ``until_s`` (no processing);
    returns ``(outcome, events, samples stored)``."""
    events: list = []
    outcome = run_virtual_session(
        sim,
        {"thigh_left": device},
        tmp_path / "s.sqlite",
        faults={"thigh_left": faults},
        until_s=until_s,
        calibration_s=0,
        process=False,
        on_event=events.append,
    )
    with LocalStore(tmp_path / "s.sqlite") as store:
        stored = store.sample_count(outcome.session_id, "thigh_left")
    return outcome, events, stored

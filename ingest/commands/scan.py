"""``hipback scan``: list nearby supported sensors (name, address, kind, RSSI).

By default the operating system's Bluetooth stack is used through bleak. ``--virtual`` scans a virtual
neighbourhood instead (one virtual sensor of each supported kind on a Bumble link): a demonstration that
needs no radio. It runs on simulated time, as every virtual session does: its ``timeout`` seconds of
scanning pass as fast as the machine goes, and what it finds does not depend on the machine.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table

from hipback.ingest.ble.connect import Backend, FoundSensor, backend_for, scan_sensors
from hipback.ingest.errors import HipbackError
from hipback.ingest.virtual_time import run_virtual


async def _scan_virtual(timeout: float) -> dict[str, FoundSensor]:
    from hipback.ingest.ble.bumble_backend import BumbleWorld
    from hipback.simulator import SensorSpec, simulate
    from hipback.simulator.virtual_ble import KINDS, VirtualSensor, VirtualSensorSet

    sim = simulate("short", seed=1, sensors=[SensorSpec("pelvis", kind="quat")])
    stream = sim.recording.streams["pelvis"]
    world = BumbleWorld()
    sensors = [VirtualSensor(world, kind, stream, index=i) for i, kind in enumerate(KINDS, start=1)]
    vset = VirtualSensorSet(world, sensors)
    try:
        await vset.start()
        with world.activate():
            return await scan_sensors(timeout, backend_for("bumble", world))
    finally:
        await world.close()


def run(timeout: float = 5.0, virtual: bool = False, console: Any = None) -> dict[str, FoundSensor]:
    """Scan and print a table; returns the sensors found by address."""
    if not timeout > 0:
        raise HipbackError(f"--timeout must be a positive number of seconds, not {timeout}.")
    console = console or Console()
    found = run_virtual(_scan_virtual(timeout)) if virtual else asyncio.run(scan_sensors(timeout, Backend()))
    if not found:
        console.print("No supported sensors found (hipback v1, Movella DOT, WitMotion BLE 5.0).")
        return found
    table = Table(title="Supported sensors nearby" + (" (virtual)" if virtual else ""))
    for col in ("name", "address", "kind", "RSSI"):
        table.add_column(col, justify="right" if col == "RSSI" else "left")
    for f in sorted(found.values(), key=lambda f: -f.rssi):
        table.add_row(f.name or "-", f.address, f.kind, f"{f.rssi} dBm")
    console.print(table)
    return found

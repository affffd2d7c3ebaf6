"""A bleak backend running on Google Bumble over an in-process ``LocalLink`` (no radio, BlueZ, D-Bus or root).

Use::

    world = BumbleWorld()                   # one virtual radio: a central controller + peripherals
    with world.activate():                  # default world for clients/scanners created without one
        devices = await BleakScanner.discover(timeout=1, backend=BumbleBleakScanner)
        client = BleakClient(devices[0], backend=BumbleBleakClient)

Never selected by default: the caller passes ``backend=`` explicitly (see
:func:`hipback.ingest.ble.connect.backend_for`).
"""

from hipback.ingest.ble.bumble_backend.client import BumbleBleakClient
from hipback.ingest.ble.bumble_backend.scanner import BumbleBleakScanner
from hipback.ingest.ble.bumble_backend.world import BumbleWorld, get_default_world

__all__ = ["BumbleBleakClient", "BumbleBleakScanner", "BumbleWorld", "get_default_world"]

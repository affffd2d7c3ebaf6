"""Virtual BLE IMUs on Bumble: GATT peripherals speaking hipback v1, Movella DOT and WitMotion byte for byte.

They join a :class:`hipback.ingest.ble.bumble_backend.BumbleWorld` link (passed in; this package does not
import ``ingest``) and send a simulated session's sensor streams on the world's clock (simulated time in
virtual sessions), at connection events with seeded delivery delays (:mod:`.link_timing`).
"""

from hipback.simulator.virtual_ble.link_timing import LinkTiming
from hipback.simulator.virtual_ble.peripheral import VirtualPeripheral, build_advertising_data
from hipback.simulator.virtual_ble.sensors import (
    KINDS,
    SensorFaults,
    SensorLedger,
    VirtualSensor,
    VirtualSensorSet,
    default_address,
    default_name,
)

__all__ = [
    "KINDS",
    "LinkTiming",
    "SensorFaults",
    "SensorLedger",
    "VirtualPeripheral",
    "VirtualSensor",
    "VirtualSensorSet",
    "build_advertising_data",
    "default_address",
    "default_name",
]

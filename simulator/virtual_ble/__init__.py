"""Virtual BLE IMUs on Bumble: GATT peripherals speaking hipback v1, Movella DOT and WitMotion byte for byte.

They join a :class:`hipback.ingest.ble.bumble_backend.BumbleWorld` link (passed in; this package does not
import
``ingest``) and are driven by a simulated session's sensor streams in scaled real time.
"""

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
    "SensorFaults",
    "SensorLedger",
    "VirtualPeripheral",
    "VirtualSensor",
    "VirtualSensorSet",
    "build_advertising_data",
    "default_address",
    "default_name",
]

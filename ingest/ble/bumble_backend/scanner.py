"""``BumbleBleakScanner``: bleak's scanner interface on the central of a :class:`BumbleWorld`.

Use as ``BleakScanner(backend=BumbleBleakScanner)`` or ``BleakScanner.discover(backend=BumbleBleakScanner)``
(optionally with ``bumble_world=world``). Discovered ``BLEDevice.details`` carry the world, so a
``BleakClient(device, backend=BumbleBleakClient)`` built from them needs no further set-up.
"""

from __future__ import annotations

import struct
import uuid as _uuid
from typing import Any, Literal

from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.uuids import normalize_uuid_str
from bumble.core import AdvertisingData
from bumble.device import Advertisement

from hipback.ingest.ble.bumble_backend.world import (
    BumbleDeviceDetails,
    BumbleWorld,
    format_address,
    resolve_world,
)

_UUID16_LISTS = (
    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
)
_UUID128_LISTS = (
    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)


def parse_advertising_data(
    data: bytes,
) -> tuple[str | None, list[str], dict[int, bytes], dict[str, bytes], int | None]:
    """Raw AD structures -> (local name, service UUIDs, manufacturer data, service data, tx power)."""
    name: str | None = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: int | None = None
    for ad_type, value in AdvertisingData.from_bytes(data).ad_structures:
        if ad_type in (AdvertisingData.COMPLETE_LOCAL_NAME, AdvertisingData.SHORTENED_LOCAL_NAME):
            if name is None or ad_type == AdvertisingData.COMPLETE_LOCAL_NAME:
                name = value.decode("utf-8", errors="replace")
        elif ad_type in _UUID16_LISTS:
            uuids += [
                normalize_uuid_str(f"{v:04x}")
                for (v,) in struct.iter_unpack("<H", value[: len(value) // 2 * 2])
            ]
        elif ad_type in _UUID128_LISTS:
            for i in range(0, len(value) - 15, 16):
                uuids.append(str(_uuid.UUID(bytes=bytes(reversed(value[i : i + 16])))))
        elif ad_type == AdvertisingData.MANUFACTURER_SPECIFIC_DATA and len(value) >= 2:
            manufacturer[struct.unpack_from("<H", value)[0]] = bytes(value[2:])
        elif ad_type == AdvertisingData.SERVICE_DATA_16_BIT_UUID and len(value) >= 2:
            service_data[normalize_uuid_str(f"{struct.unpack_from('<H', value)[0]:04x}")] = bytes(value[2:])
        elif ad_type == AdvertisingData.SERVICE_DATA_128_BIT_UUID and len(value) >= 16:
            service_data[str(_uuid.UUID(bytes=bytes(reversed(value[:16]))))] = bytes(value[16:])
        elif ad_type == AdvertisingData.TX_POWER_LEVEL and len(value) == 1:
            tx_power = struct.unpack("b", value)[0]
    return name, uuids, manufacturer, service_data, tx_power


class BumbleBleakScanner(BaseBleakScanner):
    """bleak backend scanner listening to a :class:`BumbleWorld` (see the module docstring)."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        bumble_world: BumbleWorld | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._world = resolve_world(bumble_world)
        self._scanning = False

    async def start(self) -> None:
        self.seen_devices = {}
        self._scanning = True
        await self._world.add_scan_listener(self._on_advertisement)

    async def stop(self) -> None:
        self._scanning = False
        await self._world.remove_scan_listener(self._on_advertisement)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        if not self._scanning:
            return
        name, uuids, manufacturer, service_data, tx_power = parse_advertising_data(advertisement.data_bytes)
        address = format_address(advertisement.address)
        previous = self.seen_devices.get(address)
        if previous is not None:  # keep what an earlier packet (e.g. scan response) told us
            prev_adv = previous[1]
            name = name or prev_adv.local_name
            uuids = sorted(set(uuids) | set(prev_adv.service_uuids))
            manufacturer = {**prev_adv.manufacturer_data, **manufacturer}
            service_data = {**prev_adv.service_data, **service_data}
        if not self.is_allowed_uuid(uuids):
            return
        adv = AdvertisementData(
            local_name=name,
            manufacturer_data=manufacturer,
            service_data=service_data,
            service_uuids=uuids,
            tx_power=tx_power,
            rssi=int(advertisement.rssi),
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(
            address, address, name, BumbleDeviceDetails(self._world, advertisement.address), adv
        )
        self.call_detection_callbacks(device, adv)

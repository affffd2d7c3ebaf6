"""A generic Bumble GATT peripheral on a :class:`~hipback.ingest.ble.bumble_backend.world.BumbleWorld` link.

:class:`VirtualPeripheral` advertises (name + as many service UUIDs as fit in 31 bytes of legacy
advertising data), accepts one central, tracks CCCD subscriptions, sends notifications, and supports the
link-level faults the protocol sensors build on: dropping the link at a given moment (then re-advertising
after a pause) and refusing the next N connections (accept, then terminate at once, as a busy sensor does).

Protocol behaviour (what the characteristics hold and how writes act) lives in the device twins
(:mod:`hipback.simulator.devices`), which :mod:`hipback.simulator.virtual_ble.sensors` puts on a peripheral;
this module is protocol-agnostic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as _uuid
from collections.abc import Callable, Sequence
from typing import Any

from bumble import hci
from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, Service

logger = logging.getLogger(__name__)

_FLAGS_LE_GENERAL_NO_BREDR = bytes([0x06])


def build_advertising_data(name: str, service_uuids: Sequence[str]) -> bytes:
    """Legacy advertising payload (at most 31 bytes): flags, complete local name, service UUID lists.

    16-bit SIG UUIDs go in a 16-bit list, others in a 128-bit list; UUIDs that do not fit are left out
    (a real sensor would put them in its scan response).
    """
    structures: list[tuple[int, bytes]] = [(AdvertisingData.FLAGS, _FLAGS_LE_GENERAL_NO_BREDR)]
    structures.append((AdvertisingData.COMPLETE_LOCAL_NAME, name.encode("utf-8")))
    short: list[bytes] = []
    long: list[bytes] = []
    for text in service_uuids:
        u = _uuid.UUID(text)
        if str(u).endswith("-0000-1000-8000-00805f9b34fb") and u.int >> 96 <= 0xFFFF:
            short.append((u.int >> 96).to_bytes(2, "little"))
        else:
            long.append(u.bytes[::-1])

    def size(items: list[tuple[int, bytes]]) -> int:
        return sum(2 + len(v) for _, v in items)

    for kind, values in (
        (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, long),
        (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, short),
    ):
        kept: list[bytes] = []
        for v in values:
            if size(structures) + 2 + len(b"".join(kept + [v])) <= 31:
                kept.append(v)
        if kept:
            structures.append((kind, b"".join(kept)))
    return b"".join(bytes([len(v) + 1, int(t)]) + v for t, v in structures)


class VirtualPeripheral:
    """A Bumble peripheral: advertising, one connection at a time, notifications, link faults.

    Args:
        world: the :class:`BumbleWorld` whose link the peripheral joins.
        name: advertised complete local name.
        address: static random address ``AA:BB:CC:DD:EE:FF`` (top two bits of the first byte set).
        services: Bumble GATT services to serve.
        advertised_uuids: service UUIDs to put in the advertising data.
        advertising_interval_ms: advertising interval (real ms; the link has no RF timing).
        max_mtu: the largest ATT MTU the peripheral accepts in an MTU exchange (a device with a small
            buffer answers with less than the central asks for).
    """

    def __init__(
        self,
        world: Any,
        name: str,
        address: str,
        services: Sequence[Service],
        advertised_uuids: Sequence[str] = (),
        advertising_interval_ms: float = 20.0,
        max_mtu: int = 247,
    ) -> None:
        self.world = world
        self.name = name
        self.address = address.upper()
        self.services = list(services)
        self.advertised_uuids = list(advertised_uuids)
        self.advertising_interval_ms = advertising_interval_ms
        self.max_mtu = int(max_mtu)
        self.device: Device | None = None
        self.connection: Connection | None = None
        self.subscribed: set[int] = set()
        self.refuse_next = 0
        self.connections_accepted = 0
        self.connections_refused = 0
        self.on_connect: Callable[[Connection], None] | None = None
        self.on_refused: Callable[[], None] | None = None
        self.on_disconnect: Callable[[], None] | None = None
        self.on_subscription: Callable[[int, bool], None] | None = None
        self._readvertise_task: asyncio.Task[None] | None = None
        self._adv_lock = asyncio.Lock()  # one advertising command at a time on this host
        self._closed = False

    # -- lifetime ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Power on, serve the GATT services and start advertising."""
        device = self.world.create_device(self.name, self.address)
        device.add_services(self.services)
        device.gatt_server.max_mtu = self.max_mtu
        for service in self.services:
            for char in service.characteristics:
                if isinstance(char, Characteristic) and char.properties & (
                    Characteristic.NOTIFY | Characteristic.INDICATE
                ):
                    char.on(char.EVENT_SUBSCRIPTION, self._subscription_handler(char))
        device.on(device.EVENT_CONNECTION, self._on_connection)
        await device.power_on()
        self.device = device
        await self.advertise()

    async def advertise(self) -> None:
        """(Re)start advertising if not connected and not closed."""
        async with self._adv_lock:
            if self.device is None or self._closed or self.connection is not None:
                return
            with contextlib.suppress(Exception):
                await self.device.start_advertising(
                    advertising_data=build_advertising_data(self.name, self.advertised_uuids),
                    advertising_interval_min=self.advertising_interval_ms,
                    advertising_interval_max=self.advertising_interval_ms,
                    own_address_type=hci.OwnAddressType.RANDOM,
                )

    async def stop_advertising(self) -> None:
        async with self._adv_lock:
            if self.device is not None:
                with contextlib.suppress(Exception):
                    await self.device.stop_advertising()

    async def close(self) -> None:
        """Stop advertising and drop the link; no re-advertising afterwards."""
        self._closed = True
        if self._readvertise_task is not None:
            self._readvertise_task.cancel()
            with contextlib.suppress(BaseException):
                await self._readvertise_task
        await self.stop_advertising()
        await self.drop_link(readvertise_after=None)

    # -- connection events -------------------------------------------------------------------------------
    def _subscription_handler(self, char: Characteristic) -> Callable[..., None]:
        # Bumble 0.0.236 emits (bearer, notify_enabled, indicate_enabled); the older 2-argument handler of its
        # examples raises inside the server, so the CCCD write never gets its response.
        def handler(_bearer: Any, notify_enabled: bool, indicate_enabled: bool = False) -> None:
            on = bool(notify_enabled or indicate_enabled)
            if on:
                self.subscribed.add(char.handle)
            else:
                self.subscribed.discard(char.handle)
            if self.on_subscription is not None:
                self.on_subscription(char.handle, on)

        return handler

    def _on_connection(self, connection: Connection) -> None:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.connections_refused += 1
            if self.on_refused is not None:
                self.on_refused()
            logger.debug("%s: refusing connection", self.name)
            self._readvertise_task = asyncio.get_running_loop().create_task(
                self._terminate(connection, readvertise=True)
            )
            return
        self.connection = connection
        self.connections_accepted += 1
        self.subscribed.clear()
        connection.on(
            connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(connection, reason)
        )
        if self.on_connect is not None:
            self.on_connect(connection)

    def _on_disconnection(self, connection: Connection, _reason: int) -> None:
        if self.connection is connection:
            self.connection = None
            self.subscribed.clear()
            if self.on_disconnect is not None:
                self.on_disconnect()
            if not self._closed:  # a real sensor advertises again once the central has gone
                self._schedule_readvertise(0.0)

    async def _terminate(self, connection: Connection, readvertise: bool) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                connection.disconnect(hci.HCI_ErrorCode.CONNECTION_REJECTED_DUE_TO_LIMITED_RESOURCES_ERROR),
                2.0,
            )
        if readvertise:
            await asyncio.shield(self.advertise())

    # -- faults ------------------------------------------------------------------------------------------
    async def drop_link(self, readvertise_after: float | None = 0.0) -> None:
        """Terminate the current link (as a sensor going out of range) and re-advertise after a pause.

        ``readvertise_after`` is in virtual seconds; ``None`` means stay silent.
        """
        connection = self.connection
        if connection is not None:
            self.connection = None
            self.subscribed.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    connection.disconnect(hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR), 2.0
                )
            if self.on_disconnect is not None:
                self.on_disconnect()
        if readvertise_after is not None and not self._closed:
            self._schedule_readvertise(readvertise_after)

    def _schedule_readvertise(self, delay: float) -> None:
        if self._readvertise_task is not None:
            self._readvertise_task.cancel()
        self._readvertise_task = asyncio.get_running_loop().create_task(self._readvertise(delay))

    async def _readvertise(self, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))
        # shielded: cancelling a Bumble HCI command half-way leaves its host waiting on a dead future
        await asyncio.shield(self.advertise())

    # -- data --------------------------------------------------------------------------------------------
    @property
    def att_mtu(self) -> int:
        """ATT MTU of the current link (23 when none)."""
        return self.connection.att_mtu if self.connection is not None else 23

    def is_subscribed(self, char: Characteristic) -> bool:
        return self.connection is not None and char.handle in self.subscribed

    async def notify(self, char: Characteristic, payload: bytes) -> bool:
        """Notify ``payload`` on ``char`` if a central is connected and subscribed; True when sent.

        Bumble truncates values longer than ATT_MTU-3, as a real stack does.
        """
        connection = self.connection
        if connection is None or self.device is None or char.handle not in self.subscribed:
            return False
        try:
            await self.device.notify_subscriber(connection, char, payload)
        except Exception as exc:  # link went down under us
            logger.debug("%s: notify failed: %s", self.name, exc)
            return False
        return True

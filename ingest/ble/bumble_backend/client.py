"""``BumbleBleakClient``: bleak's client interface implemented on a Bumble central over a ``LocalLink``.

Pass it as ``BleakClient(device, backend=BumbleBleakClient)`` (or through
``bleak_retry_connector.establish_connection(..., backend=BumbleBleakClient)``). Every Bumble error is
re-raised as :class:`bleak.exc.BleakError` (or ``TimeoutError`` for a connect timeout) so that bleak users
and bleak-retry-connector see what they would see on a real adapter.

Behaviour worth knowing:

- The ATT MTU stays 23 after ``connect`` (Bumble does not exchange it by itself and silently truncates
  notifications to ATT_MTU-3) until ``_acquire_mtu()`` runs the exchange, asking for :data:`REQUESTED_MTU`;
  the peripheral's own limit may make it smaller. The name and the behaviour mirror bleak's BlueZ backend,
  whose ``mtu_size`` reports 23 until its ``_acquire_mtu()`` ran, so hipback's connect path
  (:func:`hipback.ingest.ble.connect.request_mtu`) is the same for both.
- One central connects one peripheral at a time, as a real controller: a second concurrent ``connect``
  fails with ``BleakError("... InProgress ...")``; callers must serialize connects.
- The disconnected callback fires only for unsolicited disconnects (peripheral gone, link lost).
"""

from __future__ import annotations

import asyncio
import logging
import uuid as _uuid
from collections.abc import Callable
from typing import Any

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble import core
from bumble.device import Connection, Device, Peer
from bumble.gatt import GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR, Characteristic

from hipback.ingest.ble.bumble_backend.world import BumbleWorld, parse_address, resolve_world

logger = logging.getLogger(__name__)

#: ATT MTU requested after connecting (the value real stacks negotiate with DLE).
REQUESTED_MTU = 247

_PROPERTY_NAMES: list[tuple[int, str]] = [
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
    (Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
]


def uuid_str(u: core.UUID) -> str:
    """A Bumble UUID as bleak's normalized lower-case 128-bit string."""
    return str(_uuid.UUID(bytes=bytes(reversed(u.to_bytes(force_128=True)))))


def _property_names(props: int) -> list[Any]:
    return [name for flag, name in _PROPERTY_NAMES if props & flag]


def _really_cancelled(exc: BaseException) -> bool:
    """True if ``exc`` cancels the current task (not Bumble cancelling a request when the link drops)."""
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return True
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class BumbleBleakClient(BaseBleakClient):
    """bleak backend client on a Bumble central (see the module docstring).

    Extra keyword argument: ``bumble_world`` (a :class:`BumbleWorld`); otherwise the world comes from the
    ``BLEDevice`` found by :class:`BumbleBleakScanner` or from the active world.
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        services: set[str] | None = None,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        bumble_world: BumbleWorld | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self._world = resolve_world(bumble_world, address_or_ble_device)
        self._name = address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        self._requested_services = services
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._disconnecting = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # -- identity ----------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # -- connection --------------------------------------------------------------------------------------
    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        timeout = float(kwargs.get("timeout", self._timeout))
        central: Device = await self._world.central()
        if self._world.connect_pending:
            # What BlueZ reports for a second concurrent connect on one adapter (Bumble's host would
            # corrupt its state here, its controller answers COMMAND_DISALLOWED).
            raise BleakError(f"{self.address}: org.bluez.Error.InProgress (another connect is pending)")
        self._world.connect_pending = True
        try:
            connection = await central.connect(parse_address(self.address), timeout=timeout)
        except core.TimeoutError as exc:
            raise TimeoutError(f"Timeout connecting to {self.address}") from exc
        except core.InvalidStateError as exc:
            # What BlueZ reports for a second concurrent connect on one adapter.
            raise BleakError(
                f"{self.address}: org.bluez.Error.InProgress (a connect is already pending)"
            ) from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: connect failed: {exc}") from exc
        except Exception as exc:  # bumble.hci.HCI_Error etc.
            raise BleakError(f"{self.address}: connect failed: {exc}") from exc
        finally:
            self._world.connect_pending = False

        self._connection = connection
        self._disconnecting = False
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        try:
            async with asyncio.timeout(timeout):
                self.services = await self._discover(peer)
        except BaseException as exc:
            await self._drop_link()
            if _really_cancelled(exc):
                raise
            if isinstance(exc, TimeoutError):
                raise TimeoutError(f"{self.address}: timeout during service discovery") from exc
            raise BleakError(
                f"{self.address}: service discovery failed: {str(exc) or type(exc).__name__}"
            ) from exc

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        """Discover services, characteristics and descriptors into bleak's collection."""
        collection = BleakGATTServiceCollection()
        await peer.discover_services()
        for service in peer.services:
            s_uuid = uuid_str(service.uuid)
            if self._requested_services and s_uuid not in self._requested_services:
                continue
            b_service = BleakGATTService(service, service.handle, s_uuid)
            collection.add_service(b_service)
            await peer.discover_characteristics(service=service)
            for char in service.characteristics:
                b_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    uuid_str(char.uuid),
                    _property_names(int(char.properties)),
                    lambda: self.mtu_size - 3,
                    b_service,
                )
                collection.add_characteristic(b_char)
                await peer.discover_descriptors(characteristic=char)
                for desc in char.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc, desc.handle, uuid_str(desc.type), b_char)
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        solicited = self._disconnecting
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        logger.debug("%s: disconnected (reason %s, solicited %s)", self.address, reason, solicited)
        if not solicited and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def _drop_link(self) -> None:
        await asyncio.sleep(0)  # let a pending disconnection event land first
        connection = self._connection
        if connection is None:
            return
        if connection.handle not in connection.device.connections:
            self._connection = None
            self._peer = None
            return
        self._disconnecting = True
        try:
            await asyncio.wait_for(connection.disconnect(), 5.0)
        except Exception as exc:  # already gone, or the peer vanished
            logger.debug("%s: disconnect: %s", self.address, exc)
        finally:
            self._connection = None
            self._peer = None
            self._subscribers.clear()

    async def _acquire_mtu(self) -> None:
        """Exchange the ATT MTU (ask for :data:`REQUESTED_MTU`); :attr:`mtu_size` then holds the result.

        Once per connection, as ATT allows; later calls change nothing. Raises BleakError when not connected
        or when the peripheral refuses the exchange.
        """
        peer = self._require_peer()
        await self._call("MTU exchange", peer.request_mtu(REQUESTED_MTU))

    async def disconnect(self) -> None:
        await self._drop_link()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        logger.debug("%s: pairing is not needed on the virtual link; ignored", self.address)

    async def unpair(self) -> None:
        logger.debug("%s: unpair is a no-op on the virtual link", self.address)

    # -- GATT I/O ----------------------------------------------------------------------------------------
    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address}: Not connected")
        return self._peer

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except BleakError:
            raise
        except core.ProtocolError as exc:  # the peer answered with an error (ATT error response)
            space = f"{exc.error_namespace.upper()} " if exc.error_namespace else ""
            code = f" (0x{exc.error_code:02X})" if isinstance(exc.error_code, int) else ""
            raise BleakError(f"{self.address}: {what} failed: {space}error {exc.error_name}{code}") from exc
        except BaseException as exc:
            if _really_cancelled(exc):
                raise
            raise BleakError(f"{self.address}: {what} failed: {str(exc) or type(exc).__name__}") from exc

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._call("read", peer.read_value(characteristic.obj)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._call("descriptor read", peer.read_value(descriptor.obj)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require_peer()
        await self._call("write", peer.write_value(characteristic.obj, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        peer = self._require_peer()
        await self._call(
            "descriptor write", peer.write_value(descriptor.obj, bytes(data), with_response=True)
        )

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        peer = self._require_peer()

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        old = self._subscribers.pop(characteristic.handle, None)
        if old is not None:
            await self._call("unsubscribe", peer.unsubscribe(characteristic.obj, old))
        self._subscribers[characteristic.handle] = on_value
        await self._call("subscribe", peer.subscribe(characteristic.obj, on_value))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        # Clear the CCCD first and only then drop the callback: notifications the peripheral sent before it
        # saw the write arrive before the write response and are still delivered (nothing sent is lost).
        cccd = characteristic.obj.get_descriptor(GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR)
        if cccd is not None:
            await self._call("unsubscribe", peer.write_value(cccd, b"\x00\x00", with_response=True))
        subscriber = self._subscribers.pop(characteristic.handle, None)
        await self._call("unsubscribe", peer.unsubscribe(characteristic.obj, subscriber))

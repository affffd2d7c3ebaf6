"""The virtual radio: one Bumble ``LocalLink`` shared by a central controller and any number of peripherals.

A :class:`BumbleWorld` lives on one asyncio loop. It owns

- the link and the central :class:`bumble.device.Device` (the "adapter" bleak clients and scanners use);
- helpers to create peripheral devices on the same link (used by :mod:`hipback.simulator.virtual_ble`);
- the clock that virtual sensors and the session runner share (:attr:`BumbleWorld.clock`, a
  :class:`hipback.ingest.timesource.Clock`): by default the running loop's time, which on a
  :class:`hipback.ingest.virtual_time.VirtualTimeLoop` is simulated time.

The backend finds its world from, in order: a ``bumble_world=`` keyword argument, the ``details`` of a
:class:`bleak.backends.device.BLEDevice` found by :class:`BumbleBleakScanner`, or the world made current
with :meth:`BumbleWorld.activate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bumble import att, hci
from bumble.controller import Controller
from bumble.device import Advertisement, Device
from bumble.host import Host
from bumble.l2cap import L2CAP_PDU
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from hipback.ingest.timesource import Clock, LoopClock

logger = logging.getLogger(__name__)

#: Address of the virtual adapter (static random address: two top bits set).
CENTRAL_ADDRESS = "C0:FF:EE:00:00:01"


_CONTROLLER_LOG = logging.getLogger("bumble.controller")
_HOST_LOG = logging.getLogger("bumble.host")
_GATT_SERVER_LOG = logging.getLogger("bumble.gatt_server")
_GATT_CLIENT_LOG = logging.getLogger("bumble.gatt_client")
_NOTIFICATION = bytes([att.Opcode.ATT_HANDLE_VALUE_NOTIFICATION])
_RESPONSES = frozenset(int(op) for op in att.ATT_RESPONSES)  # a server's replies to a client's requests
#: Packets a virtual controller hands its :class:`_QuietHost` as objects (the streaming link's two kinds).
_PASSED_AS_OBJECTS = (hci.HCI_AclDataPacket, hci.HCI_Number_Of_Completed_Packets_Event)


class _VirtualController(Controller):
    """Bumble's virtual controller with a working LE Create Connection Cancel and cheap packet passing.

    - The stock controller answers the cancel with success but keeps the pending connection and never sends
      the Connection Complete event the spec requires, so a timed-out connect hangs the host and every later
      connect gets ``COMMAND_DISALLOWED``. Here the cancel drops the pending request and reports
      ``UNKNOWN_CONNECTION_IDENTIFIER`` as a real controller does.
    - The stock packet paths format every HCI packet into a coloured debug string even when debug logging is
      off (f-strings); that was most of the CPU time of a streaming link. Here the formatting happens only
      when ``bumble.controller`` debug logging is on. Behaviour is otherwise unchanged.
    """

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _CONTROLLER_LOG.isEnabledFor(logging.DEBUG):
            super().on_hci_packet(packet)
            return
        if isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        elif isinstance(packet, hci.HCI_Command):
            self.on_hci_command_packet(packet)
        else:
            super().on_hci_packet(packet)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _CONTROLLER_LOG.isEnabledFor(logging.DEBUG):
            super().send_hci_packet(packet)
            return
        host = self.host
        if not host:
            return
        if type(packet) in _PASSED_AS_OBJECTS and isinstance(host, _QuietHost):
            asyncio.get_running_loop().call_soon(host.on_controller_packet, packet)
        else:
            asyncio.get_running_loop().call_soon(host.on_packet, bytes(packet))

    def on_hci_le_create_connection_cancel_command(self, _command: Any) -> Any:
        pending = self.pending_le_connection
        self.pending_le_connection = None
        if pending is not None:
            asyncio.get_running_loop().call_soon(
                self.send_hci_packet,
                hci.HCI_LE_Connection_Complete_Event(
                    status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                    connection_handle=0,
                    role=hci.Role.CENTRAL,
                    peer_address_type=pending.peer_address.address_type,
                    peer_address=pending.peer_address,
                    connection_interval=0,
                    peripheral_latency=0,
                    supervision_timeout=0,
                    central_clock_accuracy=0,
                ),
            )
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


def _late_answer(record: logging.LogRecord) -> bool:
    """Logging filter: Bumble's warning about an answer nobody waits for, logged at debug level instead."""
    if record.levelno == logging.WARNING and "no pending response future" in record.getMessage():
        logger.debug("answer to a cancelled HCI command dropped (%s)", record.getMessage())
        return False
    return True


class _QuietHost(Host):
    """Bumble's host without the per-packet debug string formatting when debug logging is off.

    On this link the host and its controller share the loop, so the two packets of a streaming link (ACL
    data and the controller's Number Of Completed Packets events) are handed over as Bumble's packet objects,
    without turning each into bytes and parsing it back; every other packet, and every packet while debug
    logging or a snooper is on, still goes through bytes as on a real transport.
    """

    def __init__(self, controller: _VirtualController) -> None:
        super().__init__(controller, AsyncPipeSink(controller))
        self._controller = controller

    def on_controller_packet(self, packet: hci.HCI_Packet) -> None:
        """A packet from this host's virtual controller, as an object (see the class docstring)."""
        if not self.ready or self.snooper or _HOST_LOG.isEnabledFor(logging.DEBUG):
            self.on_packet(bytes(packet))
        elif type(packet) is hci.HCI_AclDataPacket:
            self.on_hci_acl_data_packet(packet)
        else:
            self.on_hci_number_of_completed_packets_event(packet)  # type: ignore[arg-type]

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _HOST_LOG.isEnabledFor(logging.DEBUG) or self.snooper:
            super().on_hci_packet(packet)
            return
        if isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        elif isinstance(packet, hci.HCI_Event):
            self.on_hci_event_packet(packet)
        else:
            super().on_hci_packet(packet)

    def on_command_processed(self, event: hci.HCI_Event) -> None:
        """Bumble's, except that the answer to a command whose caller was cancelled meanwhile (Ctrl-C while
        the command was on its way through the virtual controller) is logged at debug level, not as Bumble's
        warning: on this link it is expected then, and it put a stray line after the command line's one
        sentence on Ctrl-C."""
        if self.pending_response is not None:
            super().on_command_processed(event)
            return
        _HOST_LOG.addFilter(_late_answer)
        try:
            super().on_command_processed(event)
        finally:
            _HOST_LOG.removeFilter(_late_answer)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _HOST_LOG.isEnabledFor(logging.DEBUG) or self.snooper:
            super().send_hci_packet(packet)
            return
        if type(packet) is hci.HCI_AclDataPacket:
            asyncio.get_running_loop().call_soon(self._controller.on_hci_packet, packet)
        elif self.hci_sink:
            self.hci_sink.on_packet(bytes(packet))


class _QuietDevice(Device):
    """Bumble's device with notifications sent and received without the per-PDU debug string.

    Bumble's GATT server and client format every notification into a debug string (an f-string, so even
    when debug logging is off): with one notification per sample, a fifth of the virtual radio's CPU. When
    ``bumble.gatt_server`` / ``bumble.gatt_client`` debug logging is off, a notification takes the path
    Bumble's own code takes after that line (subscriber check, value truncated to ATT_MTU - 3, the PDU
    sent; on the receiving side the client's notification handler); everything else, and everything with
    debug logging on, goes through Bumble unchanged. A notification's PDU goes straight onto the link when
    nothing of the device is pending in its host and controller (:meth:`_send_att_pdu`).
    """

    async def notify_subscriber(
        self, connection: Any, attribute: Any, value: Any = None, force: bool = False
    ) -> None:
        server = self.gatt_server
        if (
            force
            or value is None
            or _GATT_SERVER_LOG.isEnabledFor(logging.DEBUG)
            or self.l2cap_channel_manager.le_coc_channels.get(connection.handle)  # (EATT bearers)
        ):
            await super().notify_subscriber(connection, attribute, value, force)
            return
        cccd = (server.subscribers.get(connection) or {}).get(attribute.handle)
        if not cccd or len(cccd) != 2 or not cccd[0] & 0x01:
            return
        data = attribute.encode_value(value)[: connection.att_mtu - 3]
        pdu = att.ATT_Handle_Value_Notification(attribute_handle=attribute.handle, attribute_value=data)
        self._send_att_pdu(connection, bytes(pdu))

    def _send_att_pdu(self, connection: Any, pdu: bytes) -> None:
        """Send an ATT PDU to the peer: straight onto the link when nothing of this device waits in its host's
        ACL queue or its controller's buffers (the usual case while a sensor streams), else, and whenever
        Bumble's host or controller debug logging is on, through Bumble's host and controller.

        The virtual link's timing is simulated apart (:mod:`hipback.simulator.virtual_ble.link_timing`), so
        a peripheral's own HCI flow control adds nothing but work; the central receives the same L2CAP PDU
        from the link either way, in the same order (a PDU goes straight only when none is pending)."""
        host = self.host
        queue = host.get_data_packet_queue(connection.handle) if isinstance(host, _QuietHost) else None
        link_connection = None
        if (
            queue is not None
            and queue.pending == 0
            and not _HOST_LOG.isEnabledFor(logging.DEBUG)
            and not _CONTROLLER_LOG.isEnabledFor(logging.DEBUG)
            and not host.snooper
        ):
            link_connection = host._controller.find_connection_by_handle(connection.handle)
        if link_connection is None:
            self.gatt_server.send_gatt_pdu(connection, pdu)
        else:
            link_connection.on_acl_pdu(bytes(L2CAP_PDU(att.ATT_CID, pdu)))

    def on_gatt_pdu(self, connection_handle: int, pdu: bytes) -> None:  # type: ignore[override]
        connection = self.lookup_connection(connection_handle)
        client = connection.gatt_client if connection is not None else None
        if client is not None and pdu[:1] and pdu[0] in _RESPONSES:
            waiting = client.pending_response
            if waiting is None or waiting.done():
                # the reply to a request given up (a stop write or a connection attempt cut short by a
                # second stop request): Bumble would log it as unexpected, or, before the request's own
                # clean-up ran, set the result of its cancelled future and raise InvalidStateError
                _GATT_CLIENT_LOG.debug("reply to a request given up, dropped")
                return
        if (
            pdu[:1] != _NOTIFICATION
            or connection is None
            or connection.gatt_client is None
            or _GATT_CLIENT_LOG.isEnabledFor(logging.DEBUG)
        ):
            super().on_gatt_pdu(connection_handle, pdu)
            return
        connection.gatt_client.on_att_handle_value_notification(att.ATT_PDU.from_bytes(pdu))


@dataclass(frozen=True)
class BumbleDeviceDetails:
    """``BLEDevice.details`` for devices found by the Bumble scanner: the world and the bumble address."""

    world: BumbleWorld
    address: hci.Address


_current_world: BumbleWorld | None = None


def get_default_world() -> BumbleWorld:
    """The world made current with :meth:`BumbleWorld.activate` (raises if none is)."""
    if _current_world is None:
        raise RuntimeError("no Bumble world is active: create a BumbleWorld and call world.activate()")
    return _current_world


def resolve_world(explicit: BumbleWorld | None, address_or_device: Any = None) -> BumbleWorld:
    """Pick the world for a client/scanner (see the module docstring for the order)."""
    if explicit is not None:
        return explicit
    details = getattr(address_or_device, "details", None)
    if isinstance(details, BumbleDeviceDetails):
        return details.world
    return get_default_world()


def parse_address(address: str) -> hci.Address:
    """A bleak address string as a Bumble random (static) address."""
    return hci.Address(address.upper(), hci.Address.RANDOM_DEVICE_ADDRESS)


def format_address(address: hci.Address) -> str:
    """A Bumble address as bleak shows it: ``AA:BB:CC:DD:EE:FF``."""
    return address.to_string(with_type_qualifier=False).upper()


class BumbleWorld:
    """One virtual radio neighbourhood on the running asyncio loop (see the module docstring).

    Args:
        clock: the shared clock (default: the running loop's time, anchored to the system's UTC now).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or LoopClock()
        self.link = LocalLink()
        self._central: Device | None = None
        self._central_lock = asyncio.Lock()
        self._scan_listeners: set[Callable[[Advertisement], None]] = set()
        self._scanning = False
        self._devices: list[Device] = []
        self._controllers: list[_VirtualController] = []
        self._closables: list[Any] = []
        self._closed = False
        #: True while a bleak client connects through the central (one LE Create Connection at a time).
        self.connect_pending = False

    # -- time --------------------------------------------------------------------------------------------
    def now(self) -> float:
        """The world's Unix time in s."""
        return self.clock.utc()

    def monotonic(self) -> float:
        """The world's monotonic time in s (virtual sensors schedule their samples on it)."""
        return self.clock.monotonic()

    # -- devices -----------------------------------------------------------------------------------------
    def create_device(self, name: str, address: str) -> Device:
        """A new (not yet powered) Bumble device with its own controller on this world's link."""
        controller = _VirtualController(name, link=self.link, public_address=address)
        device = _QuietDevice(
            name=name, address=parse_address(address), host=_QuietHost(controller)
        )
        self._devices.append(device)
        self._controllers.append(controller)
        return device

    async def central(self) -> Device:
        """The central device (the virtual adapter), powered on at first use."""
        async with self._central_lock:
            if self._central is None:
                device = self.create_device("hipback-central", CENTRAL_ADDRESS)
                await device.power_on()
                device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
                self._central = device
            return self._central

    def add_closable(self, obj: Any) -> None:
        """Register something with an async ``close()`` to be closed with the world (virtual sensors)."""
        self._closables.append(obj)

    # -- scanning ----------------------------------------------------------------------------------------
    async def add_scan_listener(self, listener: Callable[[Advertisement], None]) -> None:
        """Deliver every advertisement the central hears to ``listener`` until removed."""
        central = await self.central()
        self._scan_listeners.add(listener)
        if not self._scanning:
            self._scanning = True
            await central.start_scanning(active=True, filter_duplicates=False)

    async def remove_scan_listener(self, listener: Callable[[Advertisement], None]) -> None:
        self._scan_listeners.discard(listener)
        if self._scanning and not self._scan_listeners and self._central is not None:
            self._scanning = False
            with contextlib.suppress(Exception):
                await self._central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for listener in list(self._scan_listeners):
            try:
                listener(advertisement)
            except Exception:  # a broken listener must not stop the others
                logger.exception("scan listener failed")

    # -- lifetime ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def activate(self) -> Iterator[BumbleWorld]:
        """Make this the default world for Bumble clients and scanners inside the ``with`` block."""
        global _current_world
        previous = _current_world
        _current_world = self
        try:
            yield self
        finally:
            _current_world = previous

    async def close(self) -> None:
        """Stop virtual sensors and drop every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for obj in reversed(self._closables):
            with contextlib.suppress(Exception):
                await obj.close()
        self._scan_listeners.clear()
        for device in self._devices:
            for connection in list(device.connections.values()):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.disconnect(), 1.0)
        # Cancel controller advertising timers so no callbacks fire into a closed loop.
        for controller in self._controllers:
            with contextlib.suppress(Exception):
                controller.le_legacy_advertiser.stop()
            for adv_set in getattr(controller, "advertising_sets", {}).values():
                with contextlib.suppress(Exception):
                    adv_set.stop()

"""Virtual BLE IMUs: Bumble GATT peripherals speaking each protocol byte for byte, fed by a simulated stream.

A :class:`VirtualSensor` wraps a :class:`~hipback.simulator.virtual_ble.peripheral.VirtualPeripheral` around
the virtual twin of one device kind (:class:`hipback.simulator.devices.DeviceTwin`: GATT layout, advertising
identity, encoder, control state machine, batching, behaviour on link loss); it never tests a device kind.

Streaming starts after the control write that starts measurement (or on subscription, for a twin that streams
then), at the rate the host asked for (the simulated stream is resampled when that differs from its own rate).
Samples are taken at simulation time ``t`` = virtual world time minus the set's start time; samples that fall
due while the device is not streaming (not yet started, disconnected) are skipped (the twin decides whether
its sequence numbers advance over them, as a device that kept sampling).

Faults (:class:`SensorFaults`): packet drop/truncate/duplicate through
:class:`hipback.simulator.devices.FaultInjector` (exact log kept), link drops at given times with
re-advertising after a pause, refused connections, device clock jumps, low battery, a small ATT MTU, device
options (e.g. an older firmware), and reads the device answers with an ATT error or a link drop.
:class:`SensorLedger` records what was sent, dropped, truncated, duplicated and skipped so tests can compare
with what the host stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bumble.att import ATT_Error, ErrorCode
from bumble.gatt import Characteristic, CharacteristicValue, Service

from hipback.processing.types import SensorStream
from hipback.simulator.devices import TWINS, FaultInjector, FaultPlan, make_twin, resample_stream, twin_class
from hipback.simulator.devices.base import NOTIFY, READ, WRITE, WRITE_NO_RESPONSE
from hipback.simulator.virtual_ble.link_timing import LinkTiming
from hipback.simulator.virtual_ble.peripheral import VirtualPeripheral

logger = logging.getLogger(__name__)

R = Characteristic.Properties.READ
W = Characteristic.Properties.WRITE
WNR = Characteristic.Properties.WRITE_WITHOUT_RESPONSE
N = Characteristic.Properties.NOTIFY

#: Device kinds with a virtual twin (at import; :data:`hipback.simulator.devices.TWINS` is the registry).
KINDS = tuple(TWINS)

_PROPERTIES = {READ: R, WRITE: W, WRITE_NO_RESPONSE: WNR, NOTIFY: N}


def default_name(kind: str, index: int) -> str:
    """Advertised name as real devices of ``kind`` use it (the twin's)."""
    return twin_class(kind).default_name(index)


def default_address(kind: str, index: int) -> str:
    """Static random address in the range of ``kind`` (the twin's)."""
    return twin_class(kind).default_address(index)


@dataclass
class SensorFaults:
    """Faults to inject into one virtual sensor (times in s of simulation time).

    ``packets``: drop / truncate / duplicate plan (indices count notifications of the data stream);
    ``disconnect_at``: the peripheral drops the link at these times and re-advertises ``readvertise_after_s``
    later; ``refuse_connections``: refuse that many connection attempts first (accept, then terminate);
    ``clock_jumps``: ``(t, delta_s)`` device clock jumps; ``low_battery_at``: from this time the battery reads
    ``low_battery_pct`` percent; ``max_mtu``: the largest ATT MTU the device accepts; ``device_options``:
    options of the twin's state machine (e.g. ``{"firmware": (2, 6, 0)}``: a Movella DOT without custom mode
    5); ``failing_reads``: characteristic UUIDs (lower case) whose every read the device answers with an ATT
    error (a characteristic that cannot be read; the link stays up); ``drop_on_read``: characteristic UUID ->
    how many of its first reads the device answers by dropping the link instead (a sensor that goes out of
    range in the middle of set-up; it re-advertises ``readvertise_after_s`` later).
    """

    packets: FaultPlan | None = None
    disconnect_at: Sequence[float] = ()
    readvertise_after_s: float = 1.0
    refuse_connections: int = 0
    clock_jumps: Sequence[tuple[float, float]] = ()
    low_battery_at: float | None = None
    low_battery_pct: int = 8
    max_mtu: int = 247
    device_options: dict[str, Any] = field(default_factory=dict)
    failing_reads: Sequence[str] = ()
    drop_on_read: dict[str, int] = field(default_factory=dict)


@dataclass
class SensorLedger:
    """What a virtual sensor did, for exact comparison with what the host stored.

    ``sent_samples`` counts samples in intact packets handed to the link (duplicates counted once);
    ``sent_t`` their simulation times (s); ``dropped_samples``/``truncated_samples`` samples in packets the
    injector dropped/truncated; ``duplicated_packets``; ``skipped_samples``: samples that fell due while the
    device was not streaming (after its first start); ``disconnects``: link drops injected (times, s).
    """

    sent_packets: int = 0
    sent_samples: int = 0
    sent_t: list[np.ndarray] = field(default_factory=list)
    dropped_samples: int = 0
    truncated_samples: int = 0
    duplicated_packets: int = 0
    skipped_samples: int = 0
    disconnects: list[float] = field(default_factory=list)
    reads_failed: int = 0
    starts: int = 0
    connections_refused: int = 0
    errors: list[str] = field(default_factory=list)
    #: filled in by the host harness: simulation time 0 on the session timeline, and the injector's log
    sim_t0_session: float = 0.0
    injected: list[tuple[int, str, bytes]] = field(default_factory=list)

    def sent_times(self) -> np.ndarray:
        return np.concatenate(self.sent_t) if self.sent_t else np.zeros(0)


class VirtualSensor:
    """One virtual IMU of ``kind`` streaming ``stream`` over a Bumble world (see the module docstring).

    Args:
        world: the Bumble world.
        kind: a device kind of :data:`hipback.simulator.devices.TWINS`.
        stream: the simulated samples (t in s on the session timeline; quat needed by quaternion modes).
        name / address: advertising identity (default: the twin's, see :func:`default_name`).
        faults: faults to inject.
        clock_offset_s: device clock at simulation time 0 (s).
        batch_latency_s: a batching twin sends a partly filled packet once its oldest sample is this old.
    """

    def __init__(
        self,
        world: Any,
        kind: str,
        stream: SensorStream,
        *,
        name: str | None = None,
        address: str | None = None,
        index: int = 1,
        faults: SensorFaults | None = None,
        clock_offset_s: float = 1000.0,
        batch_latency_s: float = 0.1,
    ) -> None:
        twin_cls = twin_class(kind)  # raises ValueError naming the known kinds
        self.world = world
        self.kind = kind
        self.stream = stream
        self.faults = faults or SensorFaults()
        self.ledger = SensorLedger()
        self.injector = FaultInjector(self.faults.packets)
        self.batch_latency_s = batch_latency_s
        mode = twin_cls.initial_mode(stream.quat is not None)
        self.twin = make_twin(kind, stream.rate_hz, 247, mode, **self.faults.device_options)
        self.encoder = self.twin.encoder
        self.state = self.twin.state
        self.twin.clock.offset_s = clock_offset_s
        self._chars: dict[str, Characteristic] = {}
        self.peripheral = VirtualPeripheral(
            world,
            name or twin_cls.default_name(index),
            address or twin_cls.default_address(index),
            self._build_services(),
            list(twin_cls.ADVERTISED),
            max_mtu=self.faults.max_mtu,
        )
        self.peripheral.refuse_next = self.faults.refuse_connections
        self.peripheral.on_disconnect = self._on_disconnect
        self.peripheral.on_subscription = self._on_subscription
        self.peripheral.on_refused = self._on_refused
        self.streaming = False
        self.started_once = False
        self.broken = False  # set when the driver's pump failed: the sensor stops sending
        self._samples: SensorStream = stream
        self._cursor = 0  # next sample index of self._samples
        self._pending_from: int | None = None  # first index not yet sent (hipback batching)
        self._t0: float | None = None  # world time of simulation t = 0
        self._jumps = sorted(self.faults.clock_jumps)
        self._disconnects = sorted(self.faults.disconnect_at)
        self._read_drops = {u.lower(): int(n) for u, n in self.faults.drop_on_read.items()}
        self._failing_reads = frozenset(u.lower() for u in self.faults.failing_reads)
        self._battery_done = False
        self._lock = asyncio.Lock()

    # -- identity ----------------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return self.peripheral.address

    @property
    def name(self) -> str:
        return self.peripheral.name

    def initial_mode(self) -> str | None:
        """The output mode this device can stream (quaternion modes only when the stream has quaternions)."""
        return self.twin.initial_mode(self.stream.quat is not None)

    @property
    def notify_uuid(self) -> str:
        """The characteristic the data stream is notified on."""
        return self.twin.notify_uuid

    # -- GATT --------------------------------------------------------------------------------------------
    def _build_services(self) -> list[Service]:
        services = []
        for s_uuid, chars in self.twin.LAYOUT:
            built = []
            for c_uuid, names in chars:
                props = 0
                for name in names:
                    props |= _PROPERTIES[name]
                read = None
                if props & R:

                    async def read(_conn: Any, u: str = c_uuid) -> bytes:
                        return await self._read(u)

                write = None
                if props & (W | WNR):

                    def write(_conn: Any, value: bytes, u: str = c_uuid) -> None:
                        self._on_write(u, bytes(value))

                value: Any = CharacteristicValue(read=read, write=write) if (read or write) else b""
                perms = (Characteristic.READABLE if props & R or props & N else 0) | (
                    Characteristic.WRITEABLE if props & (W | WNR) else 0
                )
                char = Characteristic(c_uuid, props, perms, value)
                self._chars[c_uuid] = char
                built.append(char)
            services.append(Service(s_uuid, built))
        return services

    async def _read(self, char_uuid: str) -> bytes:
        """The value of a read of ``char_uuid``: the twin's, unless a read fault applies (ATT error, link
        drop)."""
        uuid = char_uuid.lower()
        drops = self._read_drops.get(uuid, 0)
        if drops > 0 and self.peripheral.connection is not None:
            self._read_drops[uuid] = drops - 1
            self.ledger.reads_failed += 1
            self.ledger.disconnects.append(self.sim_now())
            self._on_disconnect()
            await self.peripheral.drop_link(readvertise_after=self.faults.readvertise_after_s)
            raise ATT_Error(error_code=ErrorCode.UNLIKELY_ERROR, message="link dropped during the read")
        if uuid in self._failing_reads:
            self.ledger.reads_failed += 1
            raise ATT_Error(error_code=ErrorCode.UNLIKELY_ERROR, message="the device cannot read this value")
        return self.twin.read(char_uuid, self.sim_now())

    def _on_write(self, char_uuid: str, data: bytes) -> None:
        effects = self.twin.handle_write(char_uuid, data, self.sim_now())
        for effect in effects:
            action, p = effect.kind, effect.params  # what the write asks of the device (not a device kind)
            if action == "start":
                self._start(p)
            elif action == "stop":
                self.streaming = False
                self._pending_from = None
            elif action == "rate":
                self._set_rate(float(p["rate_hz"]))
            elif action == "notify":
                char = self._chars.get(p["char_uuid"])
                if char is not None:
                    asyncio.get_running_loop().create_task(self.peripheral.notify(char, p["data"]))
            elif action == "error":
                self.ledger.errors.append(str(p.get("reason")))
                logger.debug("%s: refused write: %s", self.name, p.get("reason"))

    def _on_subscription(self, handle: int, on: bool) -> None:
        if not on:
            return
        for uuid, char in self._chars.items():
            if char.handle == handle and self.twin.streams_on_subscribe(uuid):
                self._begin_streaming()

    def _on_refused(self) -> None:
        self.ledger.connections_refused += 1

    def _on_disconnect(self) -> None:
        # Nothing is sent while the central is gone (samples taken meanwhile are lost); what the device
        # itself does (stop, or keep measuring) is the twin's.
        self.streaming = False
        self._pending_from = None
        self.twin.on_link_lost()

    def _start(self, params: dict[str, Any]) -> None:
        self.twin.on_start(params, self.peripheral.att_mtu)
        self._set_rate(float(params.get("rate_hz", self.twin.rate_hz)))
        self._begin_streaming()

    def _begin_streaming(self) -> None:
        if self._t0 is None:
            return
        self.streaming = True
        self.ledger.starts += 1
        now = self.sim_now()
        # Start with the first sample taken after the start command.
        start = int(np.searchsorted(self._samples.t, now, side="right"))
        if self.started_once:
            self._skip(start)
        else:
            self._cursor = max(self._cursor, start)
        self.started_once = True
        self._pending_from = None

    def _set_rate(self, rate_hz: float) -> None:
        if abs(rate_hz - self._samples.rate_hz) < 1e-6:
            return
        position_t = self._samples.t[self._cursor] if self._cursor < len(self._samples) else np.inf
        if abs(rate_hz - self.stream.rate_hz) < 1e-6:
            self._samples = self.stream
        else:
            self._samples = resample_stream(self.stream, rate_hz)
        self._cursor = int(np.searchsorted(self._samples.t, position_t, side="left"))

    def _skip(self, upto: int) -> None:
        n = upto - self._cursor
        if n <= 0:
            return
        if self.started_once:
            self.ledger.skipped_samples += n
            self.twin.skip(n)
        self._cursor = upto

    # -- time --------------------------------------------------------------------------------------------
    def set_origin(self, world_t0: float) -> None:
        """Make the world's monotonic time ``world_t0`` simulation time 0."""
        self._t0 = world_t0

    def sim_now(self) -> float:
        return -1.0 if self._t0 is None else self.world.monotonic() - self._t0

    # -- lifetime ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.peripheral.start()

    async def close(self) -> None:
        await self.peripheral.close()

    @property
    def finished(self) -> bool:
        return self.broken or self._cursor >= len(self._samples)

    # -- the streaming step ------------------------------------------------------------------------------
    async def pump(self, at: float | None = None) -> None:
        """Apply due faults and send every sample taken by simulation time ``at`` (default: now).

        Called by the driver at each delivery of a connection event (``at`` = the event's time).
        """
        async with self._lock:
            now = self.sim_now() if at is None else at
            if now < 0:
                return
            await self._apply_faults(now)
            due = int(np.searchsorted(self._samples.t, now, side="right"))
            char = self._chars[self.notify_uuid]
            if not (self.streaming and self.peripheral.is_subscribed(char)):
                if self.started_once:
                    self._skip(due)
                else:
                    self._cursor = max(self._cursor, due)
                return
            if due <= self._cursor:
                return
            upto = self.twin.send_upto(self._cursor, due, now, self._samples.t, self.batch_latency_s)
            if upto <= self._cursor:
                return  # a batching device waits for a fuller packet
            await self._send(self._cursor, upto, char)
            self._cursor = upto

    async def _send(self, i0: int, i1: int, char: Characteristic) -> None:
        s = self._samples
        packets = self.twin.encode_range(s, i0, i1)
        counts = self._packet_counts(packets, i1 - i0)
        first = i0
        for payload, count in zip(packets, counts, strict=True):
            n_log = len(self.injector.log)
            out = self.injector.apply([payload])
            done = {what for _, what, _ in self.injector.log[n_log:]}
            if "drop" in done:
                self.ledger.dropped_samples += int(count)
            elif "truncate" in done:
                self.ledger.truncated_samples += int(count)
            else:
                self.ledger.duplicated_packets += int("duplicate" in done)
                self.ledger.sent_packets += 1
                self.ledger.sent_samples += int(count)
                self.ledger.sent_t.append(s.t[first : first + count].copy())
            first += int(count)
            for data in out:
                await self.peripheral.notify(char, data)

    def _packet_counts(self, packets: list[bytes], total: int) -> list[int]:
        counts = self.twin.packet_counts(packets)
        if sum(counts) != total:
            raise RuntimeError(f"{self.name}: encoder packed {sum(counts)} samples, expected {total}")
        return counts

    async def _apply_faults(self, now: float) -> None:
        while self._jumps and self._jumps[0][0] <= now:
            _, delta = self._jumps.pop(0)
            self.state.clock.jump(delta)
        if (
            not self._battery_done
            and self.faults.low_battery_at is not None
            and now >= self.faults.low_battery_at
        ):
            self._battery_done = True
            self.twin.set_battery_pct(self.faults.low_battery_pct)
        while self._disconnects and self._disconnects[0] <= now:
            t = self._disconnects.pop(0)
            if self.peripheral.connection is not None:
                self.ledger.disconnects.append(t)
                self._on_disconnect()
                await self.peripheral.drop_link(readvertise_after=self.faults.readvertise_after_s)


class VirtualSensorSet:
    """Several virtual sensors sharing one world and one simulation clock.

    Each sensor's link delivers at its own connection events with seeded delays
    (:class:`~hipback.simulator.virtual_ble.link_timing.LinkTiming`, one driver task per sensor), so arrival
    times are realistic and the same on every run. ``timings``: address -> timing, to override the defaults.
    """

    def __init__(
        self, world: Any, sensors: Sequence[VirtualSensor], timings: dict[str, LinkTiming] | None = None
    ) -> None:
        self.world = world
        self.sensors = list(sensors)
        self.timings = {
            s.address: (timings or {}).get(s.address)
            or LinkTiming.for_device(s.address, s.twin.LINK_INTERVAL_S)
            for s in self.sensors
        }
        self._tasks: list[asyncio.Task[None]] = []
        world.add_closable(self)

    async def start(self, world_t0: float | None = None) -> None:
        """Power on and advertise every sensor; simulation time 0 is the world's monotonic time ``world_t0``
        (default: now)."""
        t0 = self.world.monotonic() if world_t0 is None else world_t0
        for s in self.sensors:
            s.set_origin(t0)
            await s.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._drive(s)) for s in self.sensors]

    async def _drive(self, sensor: VirtualSensor) -> None:
        for event_t, delivery_t in self.timings[sensor.address].schedule(sensor.sim_now()):
            if sensor.broken or sensor.finished:
                return
            wait = delivery_t - sensor.sim_now()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await sensor.pump(at=event_t)
            except Exception:  # a broken sensor must not stop the others; it goes silent, once
                logger.exception("%s: pump failed; this virtual sensor stops sending", sensor.name)
                sensor.broken = True

    @property
    def finished(self) -> bool:
        """True once every sensor has passed the end of its stream."""
        return all(s.finished for s in self.sensors)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []
        for s in self.sensors:
            await s.close()

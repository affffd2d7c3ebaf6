"""Virtual BLE IMUs: Bumble GATT peripherals speaking each protocol byte for byte, fed by a simulated stream.

A :class:`VirtualSensor` wraps a :class:`~hipback.simulator.virtual_ble.peripheral.VirtualPeripheral` with
the GATT
layout of one device kind and the encoder/control state machine of :mod:`hipback.simulator.devices`:

- ``hipback_v1``: hipback service (DATA notify, CONTROL write/read, INFO read, TIME write/notify), Battery
  (0x180F) and Device Information (0x180A).
- ``movella_dot``: services 0x1000 (1001 R, 1002 R/W, 1004 N), 0x2000 (2001 R/W, 2002/2003/2004 N padded to
  63/40/20 bytes, 2006 R/W, 2007 R), 0x3000 (3001 R/N) and 0x7000 (7001 W, 7002 R, 7003 N).
- ``witmotion``: service ffe5 with ffe4 (notify) and ffe9 (write / write-without-response); streams ``55
  61`` frames whenever a central is subscribed, at the rate set through ``FF AA 03``.

Streaming starts only after the control write that starts measurement (WitMotion: on subscription), at the
rate the host asked for (the simulated stream is resampled when that differs from its own rate). Samples are
taken at simulation time ``t`` = virtual world time minus the set's start time; samples that fall due while
the device is not streaming (not yet started, disconnected) are skipped, and hipback v1 advances its
sequence number over them, as a device that kept sampling.

Faults (:class:`SensorFaults`): packet drop/truncate/duplicate through
:class:`hipback.simulator.devices.FaultInjector` (exact log kept), link drops at given times with
re-advertising
after a pause, refused connections, device clock jumps and low battery. :class:`SensorLedger` records what
was sent, dropped, truncated, duplicated and skipped so tests can compare with what the host stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bumble.gatt import Characteristic, CharacteristicValue, Service

from hipback.processing.types import SensorStream
from hipback.simulator.devices import FaultInjector, FaultPlan, make_encoder, resample_stream
from hipback.simulator.devices import hipback_v1 as hb
from hipback.simulator.devices import movella_dot as md
from hipback.simulator.devices import witmotion as wm
from hipback.simulator.virtual_ble.link_timing import LinkTiming
from hipback.simulator.virtual_ble.peripheral import VirtualPeripheral

logger = logging.getLogger(__name__)

R = Characteristic.Properties.READ
W = Characteristic.Properties.WRITE
WNR = Characteristic.Properties.WRITE_WITHOUT_RESPONSE
N = Characteristic.Properties.NOTIFY

KINDS = ("hipback_v1", "movella_dot", "witmotion")

#: GATT layout per kind: service uuid -> [(characteristic uuid, properties)].
LAYOUTS: dict[str, list[tuple[str, list[tuple[str, int]]]]] = {
    "hipback_v1": [
        (
            hb.SERVICE_UUID,
            [(hb.DATA_UUID, N), (hb.CONTROL_UUID, R | W), (hb.INFO_UUID, R), (hb.TIME_UUID, W | N)],
        ),
        (hb.BATTERY_SERVICE_UUID, [(hb.BATTERY_LEVEL_UUID, R | N)]),
        (
            hb.DEVICE_INFO_SERVICE_UUID,
            [(hb.MANUFACTURER_NAME_UUID, R), (hb.MODEL_NUMBER_UUID, R), (hb.FIRMWARE_REVISION_UUID, R)],
        ),
    ],
    "movella_dot": [
        (
            md.CONFIGURATION_SERVICE_UUID,
            [(md.DEVICE_INFO_UUID, R), (md.DEVICE_CONTROL_UUID, R | W), (md.DEVICE_REPORT_UUID, N)],
        ),
        (
            md.MEASUREMENT_SERVICE_UUID,
            [
                (md.CONTROL_UUID, R | W),
                (md.LONG_PAYLOAD_UUID, N),
                (md.MEDIUM_PAYLOAD_UUID, N),
                (md.SHORT_PAYLOAD_UUID, N),
                (md.ORIENTATION_RESET_CONTROL_UUID, R | W),
                (md.ORIENTATION_RESET_STATUS_UUID, R),
            ],
        ),
        (md.BATTERY_SERVICE_UUID, [(md.BATTERY_UUID, R | N)]),
        (
            md.MESSAGE_SERVICE_UUID,
            [(md.MESSAGE_CONTROL_UUID, W), (md.MESSAGE_ACK_UUID, R), (md.MESSAGE_NOTIFICATION_UUID, N)],
        ),
    ],
    "witmotion": [
        (wm.SERVICE_UUID, [(wm.NOTIFY_UUID, N), (wm.WRITE_UUID, W | WNR)]),
    ],
}

#: Connection interval the central gets per kind when streaming (s).
LINK_INTERVAL_S: dict[str, float] = {"hipback_v1": 0.015, "movella_dot": 0.0075, "witmotion": 0.02}

#: Advertised service UUIDs per kind (those that fit in legacy advertising data are sent).
ADVERTISED: dict[str, list[str]] = {
    "hipback_v1": [hb.SERVICE_UUID],
    "movella_dot": [md.MEASUREMENT_SERVICE_UUID],
    "witmotion": [wm.SERVICE_UUID],
}


def default_name(kind: str, index: int) -> str:
    """Advertised name as real devices use it (``hipback-XX``, ``Movella DOT``, ``WT901BLE..``)."""
    return {
        "hipback_v1": f"hipback-{index:02X}",
        "movella_dot": "Movella DOT",
        "witmotion": f"WT901BLE{index:02d}",
    }[kind]


def default_address(kind: str, index: int) -> str:
    """Static random addresses; Movella DOTs in their vendor range ``D4:22:CD``."""
    prefix = {"hipback_v1": "C4:1B:AC", "movella_dot": "D4:22:CD", "witmotion": "E8:CB:ED"}[kind]
    return f"{prefix}:00:{index // 256:02X}:{index % 256:02X}"


@dataclass
class SensorFaults:
    """Faults to inject into one virtual sensor (times in s of simulation time).

    ``packets``: drop / truncate / duplicate plan (indices count notifications of the data stream);
    ``disconnect_at``: the peripheral drops the link at these times and re-advertises ``readvertise_after_s``
    later; ``refuse_connections``: refuse that many connection attempts first (accept, then terminate);
    ``clock_jumps``: ``(t, delta_s)`` device clock jumps; ``low_battery_at``: from this time the battery reads
    ``low_battery_pct`` percent.
    """

    packets: FaultPlan | None = None
    disconnect_at: Sequence[float] = ()
    readvertise_after_s: float = 1.0
    refuse_connections: int = 0
    clock_jumps: Sequence[tuple[float, float]] = ()
    low_battery_at: float | None = None
    low_battery_pct: int = 8


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
        kind: ``hipback_v1``, ``movella_dot`` or ``witmotion``.
        stream: the simulated samples (t in s on the session timeline; quat needed by quaternion modes).
        name / address: advertising identity (defaults per kind, see :func:`default_name`).
        faults: faults to inject.
        clock_offset_s: device clock at simulation time 0 (s).
        batch_latency_s: hipback v1 sends a partly filled packet once its oldest sample is this old.
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
        if kind not in KINDS:
            raise ValueError(f"unknown device kind {kind!r}; known kinds: {', '.join(KINDS)}")
        self.world = world
        self.kind = kind
        self.stream = stream
        self.faults = faults or SensorFaults()
        self.ledger = SensorLedger()
        self.injector = FaultInjector(self.faults.packets)
        self.batch_latency_s = batch_latency_s
        rate = _nearest(stream.rate_hz, kind)
        self.encoder = make_encoder(kind, rate, 247, self.initial_mode())
        self.state = self.encoder.state
        self.state.clock.offset_s = clock_offset_s
        self._chars: dict[str, Characteristic] = {}
        self.peripheral = VirtualPeripheral(
            world,
            name or default_name(kind, index),
            address or default_address(kind, index),
            self._build_services(),
            ADVERTISED[kind],
        )
        self.peripheral.refuse_next = self.faults.refuse_connections
        self.peripheral.on_disconnect = self._on_disconnect
        self.peripheral.on_subscription = self._on_subscription
        self.peripheral.on_refused = self._on_refused
        self.streaming = False
        self.started_once = False
        self.broken = False  # set when the driver's pump failed: the sensor stops sending
        self.notify_uuid = self._default_notify_uuid()
        self._samples: SensorStream = stream
        self._cursor = 0  # next sample index of self._samples
        self._pending_from: int | None = None  # first index not yet sent (hipback batching)
        self._t0: float | None = None  # world time of simulation t = 0
        self._jumps = sorted(self.faults.clock_jumps)
        self._disconnects = sorted(self.faults.disconnect_at)
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
        has_q = self.stream.quat is not None
        if self.kind == "hipback_v1":
            return "quat_raw" if has_q else "raw"
        if self.kind == "movella_dot":
            return "custom5" if has_q else "rate_quantities"
        return None

    def _default_notify_uuid(self) -> str:
        if self.kind == "hipback_v1":
            return hb.DATA_UUID
        if self.kind == "movella_dot":
            return self.encoder.char_uuid
        return wm.NOTIFY_UUID

    # -- GATT --------------------------------------------------------------------------------------------
    def _build_services(self) -> list[Service]:
        services = []
        for s_uuid, chars in LAYOUTS[self.kind]:
            built = []
            for c_uuid, props in chars:
                read = None
                if props & R:

                    def read(_conn: Any, u: str = c_uuid) -> bytes:
                        return self.state.read(u, self.sim_now())

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

    def _on_write(self, char_uuid: str, data: bytes) -> None:
        effects = self.state.handle_write(char_uuid, data, self.sim_now())
        for effect in effects:
            kind, p = effect.kind, effect.params
            if kind == "start":
                self._start(p)
            elif kind == "stop":
                self.streaming = False
                self._pending_from = None
            elif kind == "rate":
                self._set_rate(float(p["rate_hz"]))
            elif kind == "notify":
                char = self._chars.get(p["char_uuid"])
                if char is not None:
                    asyncio.get_running_loop().create_task(self.peripheral.notify(char, p["data"]))
            elif kind == "error":
                self.ledger.errors.append(str(p.get("reason")))
                logger.debug("%s: refused write: %s", self.name, p.get("reason"))

    def _on_subscription(self, handle: int, on: bool) -> None:
        if self.kind == "witmotion":
            char = self._chars[wm.NOTIFY_UUID]
            if handle == char.handle and on:
                self._begin_streaming()

    def _on_refused(self) -> None:
        self.ledger.connections_refused += 1

    def _on_disconnect(self) -> None:
        # Devices stop measuring when the central goes; samples taken meanwhile are lost.
        self.streaming = False
        self._pending_from = None
        if self.kind == "hipback_v1":
            self.state.streaming = False
        elif self.kind == "movella_dot":
            self.state.measuring = False

    def _start(self, params: dict[str, Any]) -> None:
        if self.kind == "movella_dot":
            self.notify_uuid = params.get("char_uuid", self.notify_uuid)
        self.encoder.mtu = self.peripheral.att_mtu
        self._set_rate(float(params.get("rate_hz", self.encoder.rate_hz)))
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
            if self.kind == "hipback_v1":
                self.encoder.skip(n)
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
            if self.kind == "hipback_v1":
                spp = max(self.encoder.samples_per_packet, 1)
                n_full = (due - self._cursor) // spp * spp
                oldest_t = self._samples.t[self._cursor]
                if n_full == 0 and now - oldest_t < self.batch_latency_s:
                    return
                upto = self._cursor + (n_full if n_full else due - self._cursor)
            else:
                upto = due
            await self._send(self._cursor, upto, char)
            self._cursor = upto

    async def _send(self, i0: int, i1: int, char: Characteristic) -> None:
        s = self._samples
        packets = self.encoder.encode(
            s.t[i0:i1],
            quat=None if s.quat is None else s.quat[i0:i1],
            acc=None if s.acc is None else s.acc[i0:i1],
            gyr=None if s.gyr is None else s.gyr[i0:i1],
            mag=None if s.mag is None else s.mag[i0:i1],
        )
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

    def _packet_counts(self, packets: list[bytes], total: int) -> np.ndarray:
        if self.kind == "hipback_v1":
            counts = np.array([p[2] for p in packets], dtype=int)
        else:
            counts = np.ones(len(packets), dtype=int)
        if counts.sum() != total:
            raise RuntimeError(f"{self.name}: encoder packed {counts.sum()} samples, expected {total}")
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
            pct = self.faults.low_battery_pct
            if self.kind == "witmotion":
                self.state.battery_v = 3.4 + 0.006 * pct
            else:
                self.state.battery_pct = pct
        while self._disconnects and self._disconnects[0] <= now:
            t = self._disconnects.pop(0)
            if self.peripheral.connection is not None:
                self.ledger.disconnects.append(t)
                self._on_disconnect()
                await self.peripheral.drop_link(readvertise_after=self.faults.readvertise_after_s)


def _nearest(rate_hz: float, kind: str) -> float:
    rates: Sequence[float]
    if kind == "hipback_v1":
        rates = hb.RATES_HZ
    elif kind == "movella_dot":
        rates = md.RATES_HZ
    else:
        rates = tuple(wm.RATE_CODES.values())
    return float(min(rates, key=lambda r: abs(r - rate_hz)))


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
            or LinkTiming.for_device(s.address, LINK_INTERVAL_S.get(s.kind, 0.015))
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

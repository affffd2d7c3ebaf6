"""Shared parts of the virtual device protocols: control-write effects, the device clock, fault injection.

Pure Python (no Bumble): a GATT peripheral wraps an encoder (samples -> notification payloads) and its
``DeviceState`` (control writes -> :class:`Effect` list, readable characteristic values).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hipback.processing import quaternion as qm
from hipback.processing.types import SensorStream

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Effect:
    """What a control write asks the virtual device to do.

    ``kind``: ``start`` (params mode/rate_hz/...), ``stop``, ``rate`` (rate_hz), ``heading_reset``,
    ``heading_revert``, ``notify`` (char_uuid, data: bytes to send now), ``save``, ``unlock``, ``identify``,
    ``power_off``, ``time_offset`` (offset_s), ``location``, ``fusion``, ``filter_profile``, ``calibrate``,
    ``restore_defaults``, ``sync``, or ``error`` (reason: one sentence; the write was ignored).
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)


class DeviceClock:
    """The virtual device's clock: ``device = boot_offset + t * (1 + drift)`` plus jumps (all in s).

    ``t`` is the simulation (virtual patient) time; ``jump(delta)`` injects a clock discontinuity.
    """

    def __init__(self, offset_s: float = 0.0, drift_ppm: float = 0.0) -> None:
        self.offset_s = float(offset_s)
        self.drift = float(drift_ppm) * 1e-6

    def device_time(self, t: FloatArray | float) -> FloatArray:
        return self.offset_s + np.asarray(t, dtype=np.float64) * (1.0 + self.drift)

    def jump(self, delta_s: float) -> None:
        self.offset_s += float(delta_s)


@dataclass
class FaultPlan:
    """Which packets to damage. Explicit indices (0-based count of packets through the injector) and/or rates.

    ``truncate`` maps a packet index to the number of bytes kept; random truncation keeps ``truncate_keep``
    bytes (default: half the packet).
    """

    drop: set[int] = field(default_factory=set)
    truncate: dict[int, int] = field(default_factory=dict)
    duplicate: set[int] = field(default_factory=set)
    drop_prob: float = 0.0
    truncate_prob: float = 0.0
    duplicate_prob: float = 0.0
    truncate_keep: int | None = None
    seed: int = 0


class FaultInjector:
    """Applies a :class:`FaultPlan` to a stream of packets and logs exactly what it did.

    ``log`` holds ``(packet_index, kind, packet_bytes)`` for each fault, so tests can compare what a decoder
    reports with what was injected.
    """

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan or FaultPlan()
        self.index = 0
        self.log: list[tuple[int, str, bytes]] = []
        self._rng = random.Random(self.plan.seed)

    def apply(self, packets: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        p = self.plan
        for pkt in packets:
            i = self.index
            self.index += 1
            if i in p.drop or (p.drop_prob and self._rng.random() < p.drop_prob):
                self.log.append((i, "drop", pkt))
                continue
            if i in p.truncate or (p.truncate_prob and self._rng.random() < p.truncate_prob):
                keep = p.truncate.get(i, p.truncate_keep if p.truncate_keep is not None else len(pkt) // 2)
                self.log.append((i, "truncate", pkt))
                out.append(pkt[:keep])
                continue
            out.append(pkt)
            if i in p.duplicate or (p.duplicate_prob and self._rng.random() < p.duplicate_prob):
                self.log.append((i, "duplicate", pkt))
                out.append(pkt)
        return out

    def count(self, kind: str) -> int:
        return sum(1 for _, k, _ in self.log if k == kind)


def resample_stream(stream: SensorStream, rate_hz: float, t0: float | None = None) -> SensorStream:
    """Resample a stream to a uniform ``rate_hz`` (slerp for quaternions, linear for vectors).

    For a virtual device whose output rate differs from the virtual patient's sample rate.
    """
    start = stream.t[0] if t0 is None else t0
    n = int(np.floor((stream.t[-1] - start) * rate_hz + 1e-9)) + 1
    t = start + np.arange(n) / rate_hz

    def lin(a: FloatArray | None) -> FloatArray | None:
        if a is None:
            return None
        return np.stack([np.interp(t, stream.t, a[:, i]) for i in range(a.shape[1])], axis=1)

    quat = None if stream.quat is None else qm.slerp(stream.t, stream.quat, t)
    return SensorStream(
        placement=stream.placement,
        kind=stream.kind,
        t=t,
        rate_hz=rate_hz,
        quat=quat,
        acc=lin(stream.acc),
        gyr=lin(stream.gyr),
        mag=lin(stream.mag),
        device=stream.device,
        meta=stream.meta,
    )


def heading_correction(q: FloatArray) -> FloatArray:
    """Rotation about world z that brings the heading of the sensor x axis of ``q`` to zero."""
    x_world = qm.rotate(q, np.array([1.0, 0.0, 0.0]))
    yaw = float(np.arctan2(x_world[1], x_world[0]))
    return qm.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.array(-yaw))


#: samples a twin with one-sample frames encodes ahead (:meth:`DeviceTwin.encode_range`)
FRAME_BLOCK = 1024


def sample_fields(
    s: SensorStream, i0: int, i1: int
) -> tuple[FloatArray, FloatArray | None, FloatArray | None, FloatArray | None, FloatArray | None]:
    """``t, quat, acc, gyr, mag`` of ``s[i0:i1]`` (None where the stream has no such field)."""
    return (
        s.t[i0:i1],
        None if s.quat is None else s.quat[i0:i1],
        None if s.acc is None else s.acc[i0:i1],
        None if s.gyr is None else s.gyr[i0:i1],
        None if s.mag is None else s.mag[i0:i1],
    )


#: GATT property names used in :attr:`DeviceTwin.LAYOUT` (mapped to Bumble flags by the virtual peripheral).
READ, WRITE, WRITE_NO_RESPONSE, NOTIFY = "read", "write", "write-without-response", "notify"


class DeviceTwin:
    """The virtual twin of one device kind: what a Bumble peripheral needs to behave as that device.

    A twin owns the device's encoder and control state machine (``encoder``, ``state``) and says, per kind:
    its GATT layout and advertising identity (:attr:`LAYOUT`, :attr:`ADVERTISED`, :meth:`default_name`,
    :meth:`default_address`), its rates and initial mode, which characteristic carries data
    (:attr:`notify_uuid`), how samples become notifications (:meth:`encode`, :meth:`packet_counts`,
    :meth:`send_upto`), and how the device reacts to link loss and faults (:meth:`on_link_lost`, :meth:`skip`,
    :meth:`set_battery_pct`). :class:`hipback.simulator.virtual_ble.VirtualSensor` holds one and never tests a
    device kind.

    Subclasses set the class attributes and implement :meth:`_make_encoder`. Times are simulation seconds.
    """

    KIND: str = ""
    #: service UUID -> [(characteristic UUID, property names)]
    LAYOUT: tuple[tuple[str, tuple[tuple[str, frozenset[str]], ...]], ...] = ()
    #: service UUIDs put in the advertising data
    ADVERTISED: tuple[str, ...] = ()
    #: output rates the device offers (Hz) and the one a virtual session asks for by default
    RATES_HZ: tuple[float, ...] = ()
    DEFAULT_RATE_HZ: float = 100.0
    #: first three bytes of the virtual devices' addresses
    ADDRESS_PREFIX: str = "C0:00:00"
    #: connection interval a central typically gets with this device when streaming (s)
    LINK_INTERVAL_S: float = 0.015
    #: the device streams its own orientation whatever the stream is (a simulated stream needs quaternions)
    NEEDS_QUAT: bool = False

    def __init__(self, rate_hz: float, mtu: int = 247, mode: str | None = None, **state: Any) -> None:
        self.encoder = self._make_encoder(self.nearest_rate(rate_hz), mtu, mode, **state)
        self.state = self.encoder.state
        #: the characteristic the data stream is notified on
        self.notify_uuid = self._data_uuid()
        self._frames: tuple[int, list[Any]] = (0, [])  # (first index, items per sample) encoded ahead
        self._frames_key: tuple[SensorStream, Any] | None = None

    # -- identity ----------------------------------------------------------------------------------------
    @classmethod
    def default_name(cls, index: int) -> str:
        """Advertised name as real devices of this kind use it."""
        raise NotImplementedError

    @classmethod
    def default_address(cls, index: int) -> str:
        """A static random address in the kind's range."""
        return f"{cls.ADDRESS_PREFIX}:00:{index // 256:02X}:{index % 256:02X}"

    @classmethod
    def nearest_rate(cls, rate_hz: float) -> float:
        return float(min(cls.RATES_HZ, key=lambda r: abs(r - rate_hz)))

    @classmethod
    def initial_mode(cls, has_quat: bool) -> str | None:
        """The output mode this device streams a stream with (``has_quat``: the stream has quaternions)."""
        return None

    # -- protocol ----------------------------------------------------------------------------------------
    def _make_encoder(self, rate_hz: float, mtu: int, mode: str | None, **state: Any) -> Any:
        raise NotImplementedError

    def _data_uuid(self) -> str:
        raise NotImplementedError

    @property
    def rate_hz(self) -> float:
        return float(self.encoder.rate_hz)

    @property
    def clock(self) -> DeviceClock:
        return self.state.clock

    def read(self, char_uuid: str, now: float) -> bytes:
        return self.state.read(char_uuid, now)

    def handle_write(self, char_uuid: str, data: bytes, now: float) -> list[Effect]:
        return self.state.handle_write(char_uuid, data, now)

    def streams_on_subscribe(self, char_uuid: str) -> bool:
        """True when subscribing to ``char_uuid`` starts the stream (no start command)."""
        return False

    def on_start(self, params: dict[str, Any], mtu: int) -> None:
        """A start effect: the payload now fits ATT MTU ``mtu``."""
        self.encoder.mtu = mtu

    def on_link_lost(self) -> None:
        """Device-side state when the central goes (default: nothing changes)."""

    # -- data --------------------------------------------------------------------------------------------
    def encode(
        self,
        t: FloatArray,
        quat: FloatArray | None = None,
        acc: FloatArray | None = None,
        gyr: FloatArray | None = None,
        mag: FloatArray | None = None,
    ) -> list[bytes]:
        return self.encoder.encode(t, quat=quat, acc=acc, gyr=gyr, mag=mag)

    def encode_range(self, samples: SensorStream, i0: int, i1: int) -> list[bytes]:
        """The notifications of ``samples[i0:i1]``, as :meth:`encode` makes them.

        A twin whose samples are each encoded from that sample and a state key alone (:meth:`_frame_key` not
        None) encodes them :data:`FRAME_BLOCK` samples ahead (:meth:`_encode_ahead`, one item per sample) and
        builds the notifications from the slice sent (:meth:`_from_block`): the same bytes, without numpy's
        per-call cost on the one or two samples a connection event carries (the virtual world's share of a
        virtual session's CPU); the key, checked at every call, starts a new block when the state changes
        (a heading reset, a clock jump, another output mode or format).
        """
        key = self._frame_key()
        if key is None:
            return self.encode(*sample_fields(samples, i0, i1))
        c0, block = self._frames if self._encoded_ahead(samples, key) else (0, [])
        if not (c0 <= i0 and i1 <= c0 + len(block)):
            end = min(len(samples.t), max(i1, i0 + FRAME_BLOCK))
            c0, block = i0, self._encode_ahead(*sample_fields(samples, i0, end))
            self._frames, self._frames_key = (c0, block), (samples, key)
        self._sent_upto(samples, i1)
        return self._from_block(block[i0 - c0 : i1 - c0])

    def _encode_ahead(self, *fields: FloatArray | None) -> list[Any]:
        """One item per sample of ``t, quat, acc, gyr, mag`` (default: its notification)."""
        return self.encode(*fields)  # type: ignore[arg-type]

    def _from_block(self, items: list[Any]) -> list[bytes]:
        """The notifications of consecutive items of :meth:`_encode_ahead` (default: the items)."""
        return items

    def _encoded_ahead(self, samples: SensorStream, key: tuple[Any, ...]) -> bool:
        """Whether the block encoded ahead is of this very stream (held, so that a new stream is never
        taken for a freed one) and this state key."""
        held = self._frames_key
        return held is not None and held[0] is samples and held[1] == key

    def _frame_key(self) -> tuple[Any, ...] | None:
        """What a sample's encoding depends on besides the sample, or None (default: notifications depend on
        the samples before them, e.g. sequence numbers or packing, and are encoded as they are sent)."""
        return None

    def _sent_upto(self, samples: SensorStream, i1: int) -> None:
        """Device state after sending the samples before ``i1`` from a block encoded ahead (e.g. the last
        orientation a register read reports)."""

    def packet_counts(self, packets: list[bytes]) -> list[int]:
        """Samples in each packet :meth:`encode` returned (default: one per notification)."""
        return [1] * len(packets)

    def send_upto(self, cursor: int, due: int, now: float, t: FloatArray, batch_latency_s: float) -> int:
        """Index up to which samples ``cursor..due-1`` are sent now (``cursor`` when the device waits).

        ``t``: sample times (s); ``now``: simulation time. Default: every due sample, at once.
        """
        return due

    def skip(self, n: int) -> None:
        """``n`` samples fell due while the device was not streaming (default: they are just not sent)."""

    def set_battery_pct(self, pct: float) -> None:
        """Fault: from now on the battery reads ``pct`` percent."""
        self.state.battery_pct = pct

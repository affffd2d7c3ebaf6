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

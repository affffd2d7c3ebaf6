"""Virtual WitMotion BLE 5.0 IMU: ``55 61`` frame encoder and the ``FF AA`` command state machine.

The encoder is the inverse of hipback's decoder convention (``firmware_notes/devices.md``): the
sensor-to-world quaternion (world z up) becomes intrinsic Z-Y-X Euler angles (roll about x, pitch about y, yaw
about z), each int16 at 180/32768 deg; acc in g * 32768/16, gyr in deg/s * 32768/2000. Constants are repeated
from the vendor protocol here on purpose (``simulator`` must not import ``ingest``).
"""

from __future__ import annotations

import struct
import warnings

import numpy as np

from hipback.processing import quaternion as qm
from hipback.processing.types import SensorStream
from hipback.simulator.devices.base import (
    NOTIFY,
    WRITE,
    WRITE_NO_RESPONSE,
    DeviceClock,
    DeviceTwin,
    Effect,
    FloatArray,
)

SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"
NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_UUID = "0000ffe9-0000-1000-8000-00805f9a34fb"
G = 9.80665
#: RRATE (register 0x03) codes of WitMotion's register map; 0x0A (125 Hz) exists on the WT931 only
RATE_CODES = {
    0x01: 0.2,
    0x02: 0.5,
    0x03: 1.0,
    0x04: 2.0,
    0x05: 5.0,
    0x06: 10.0,
    0x07: 20.0,
    0x08: 50.0,
    0x09: 100.0,
    0x0B: 200.0,
}
UNLOCK_S = 10.0


def quat_to_euler_zyx(q: FloatArray) -> FloatArray:
    """(N, 4) sensor-to-world -> (N, 3) roll, pitch, yaw in rad with ``q = qz(yaw) qy(pitch) qx(roll)``."""
    with (
        warnings.catch_warnings()
    ):  # at pitch +-90 deg scipy warns about gimbal lock; the rotation is still exact
        warnings.simplefilter("ignore", UserWarning)
        ypr = qm.to_scipy(q).as_euler("ZYX")
    return ypr[:, ::-1]


def _i16_wrap(a: FloatArray) -> np.ndarray:
    """Round to int16 with wrap-around (an angle of +180 deg is the same as -180 deg)."""
    v = np.round(a).astype(np.int64)
    return ((v + 32768) % 65536 - 32768).astype("<i2")


def _i16_clip(a: FloatArray) -> np.ndarray:
    return np.clip(np.round(a), -32768, 32767).astype("<i2")


class WitMotionState:
    """Register file and command handling of one WitMotion BLE 5.0 sensor (``now`` in simulation seconds)."""

    def __init__(
        self,
        rate_hz: float = 10.0,
        battery_v: float = 4.0,
        temperature_c: float = 30.0,
        clock: DeviceClock | None = None,
    ) -> None:
        self.rate_code = {v: k for k, v in RATE_CODES.items()}[float(rate_hz)]
        self.saved_rate_code = self.rate_code
        self.battery_v = battery_v
        self.temperature_c = temperature_c
        self.clock = clock or DeviceClock()
        self.unlocked_until = -np.inf
        self.last_quat: FloatArray | None = None
        self.last_mag: FloatArray | None = None

    @property
    def rate_hz(self) -> float:
        return RATE_CODES[self.rate_code]

    def handle_write(self, char_uuid: str, data: bytes, now: float = 0.0) -> list[Effect]:
        data = bytes(data)
        if char_uuid.lower() != WRITE_UUID:
            return [Effect("error", {"reason": f"characteristic {char_uuid} is not writable"})]
        if len(data) != 5 or data[0] != 0xFF or data[1] != 0xAA:
            return [Effect("error", {"reason": "a command is 5 bytes starting FF AA"})]
        reg, lo, hi = data[2], data[3], data[4]
        value = lo | (hi << 8)
        if reg == 0x69:
            if value != 0xB588:
                return [Effect("error", {"reason": "wrong unlock key"})]
            self.unlocked_until = now + UNLOCK_S
            return [Effect("unlock")]
        if reg == 0x27:
            return [Effect("notify", {"char_uuid": NOTIFY_UUID, "data": self.register_reply(lo)})]
        if now > self.unlocked_until:
            return [Effect("error", {"reason": f"register 0x{reg:02x} write refused: the device is locked"})]
        if reg == 0x00:
            if value == 0x0000:
                self.saved_rate_code = self.rate_code
                return [Effect("save")]
            if value == 0x0001:
                self.rate_code = self.saved_rate_code = 0x06
                return [Effect("restore_defaults"), Effect("rate", {"rate_hz": self.rate_hz})]
        if reg == 0x03:
            if value not in RATE_CODES:
                return [Effect("error", {"reason": f"rate code 0x{value:02x} is not a return rate"})]
            self.rate_code = value
            return [Effect("rate", {"rate_hz": self.rate_hz})]
        if reg == 0x01:
            return [Effect("calibrate", {"code": value})]
        return [Effect("error", {"reason": f"register 0x{reg:02x} is not simulated"})]

    def register_reply(self, reg: int) -> bytes:
        """``55 71 reg 00`` + 8 int16 registers starting at ``reg``."""
        vals = [0] * 8
        if reg == 0x51:
            q = qm.IDENTITY if self.last_quat is None else qm.canonical(self.last_quat)
            vals[:4] = [int(v) for v in _i16_clip(np.asarray(q) * 32768.0)]
        elif reg == 0x3A:
            m = np.zeros(3) if self.last_mag is None else self.last_mag
            vals[:3] = [int(v) for v in _i16_clip(np.asarray(m) * 120.0)]
        elif reg == 0x40:
            vals[0] = int(round(self.temperature_c * 100))
        elif reg == 0x64:
            vals[0] = int(round(self.battery_v * 100))
        elif reg == 0x03:
            vals[0] = self.rate_code
        return bytes([0x55, 0x71, reg & 0xFF, 0x00]) + struct.pack("<8h", *vals)


class WitMotionEncoder:
    """One 20-byte ``55 61`` frame per sample (the device sends one frame per notification)."""

    def __init__(self, rate_hz: float = 10.0, mtu: int = 23, state: WitMotionState | None = None) -> None:
        self.state = state or WitMotionState(rate_hz)
        self.state.rate_code = {v: k for k, v in RATE_CODES.items()}[float(rate_hz)]
        self.mtu = mtu

    @property
    def rate_hz(self) -> float:
        return self.state.rate_hz

    def encode(
        self,
        t: FloatArray,
        quat: FloatArray | None = None,
        acc: FloatArray | None = None,
        gyr: FloatArray | None = None,
        mag: FloatArray | None = None,
    ) -> list[bytes]:
        if quat is None or acc is None or gyr is None:
            raise ValueError("WitMotion frames need quat, acc and gyr")
        n = len(t)
        if n == 0:
            return []
        quat = np.asarray(quat, dtype=np.float64)
        self.state.last_quat = quat[-1]
        if mag is not None:
            self.state.last_mag = np.asarray(mag[-1], dtype=np.float64)
        ang = np.degrees(quat_to_euler_zyx(quat)) * (32768.0 / 180.0)
        a = np.asarray(acc, dtype=np.float64) / G * (32768.0 / 16.0)
        w = np.degrees(np.asarray(gyr, dtype=np.float64)) * (32768.0 / 2000.0)
        rec = np.zeros(
            n, dtype=[("h", "u1", (2,)), ("a", "<i2", (3,)), ("w", "<i2", (3,)), ("e", "<i2", (3,))]
        )
        rec["h"] = (0x55, 0x61)
        rec["a"] = _i16_clip(a)
        rec["w"] = _i16_clip(w)
        e = _i16_wrap(ang)
        e[:, 1] = _i16_clip(ang[:, 1])  # pitch is within +-90 deg: clip, never wrap
        rec["e"] = e
        raw = rec.tobytes()
        return [raw[i * 20 : (i + 1) * 20] for i in range(n)]


class WitMotionTwin(DeviceTwin):
    """Virtual WitMotion BLE 5.0 sensor: service ffe5 with ffe4 (notify) and ffe9 (write / write without
    response); streams ``55 61`` frames (one per notification) as soon as a central subscribes to ffe4, at the
    rate set through ``FF AA 03``; answers ``FF AA 27`` register reads with ``55 71`` frames. Low battery is a
    lower voltage in register 0x64."""

    KIND = "witmotion"
    LAYOUT = (
        (
            SERVICE_UUID,
            ((NOTIFY_UUID, frozenset({NOTIFY})), (WRITE_UUID, frozenset({WRITE, WRITE_NO_RESPONSE}))),
        ),
    )
    ADVERTISED = (SERVICE_UUID,)
    RATES_HZ = tuple(RATE_CODES.values())
    DEFAULT_RATE_HZ = 100.0
    ADDRESS_PREFIX = "E8:CB:ED"
    LINK_INTERVAL_S = 0.02
    NEEDS_QUAT = True

    @classmethod
    def default_name(cls, index: int) -> str:
        return f"WT901BLE{index:02d}"

    def _make_encoder(self, rate_hz: float, mtu: int, mode: str | None, **state: object) -> WitMotionEncoder:
        return WitMotionEncoder(rate_hz, mtu, state=WitMotionState(rate_hz, **state))  # type: ignore[arg-type]

    def _data_uuid(self) -> str:
        return NOTIFY_UUID

    def _frame_key(self) -> tuple[object, ...]:
        return ()  # a ``55 61`` frame is its sample's values alone

    def _sent_upto(self, samples: SensorStream, i1: int) -> None:
        if i1 > 0 and samples.quat is not None:
            self.state.last_quat = np.asarray(samples.quat[i1 - 1], dtype=np.float64)
            if samples.mag is not None:
                self.state.last_mag = np.asarray(samples.mag[i1 - 1], dtype=np.float64)

    def streams_on_subscribe(self, char_uuid: str) -> bool:
        return char_uuid == NOTIFY_UUID

    def set_battery_pct(self, pct: float) -> None:
        self.state.battery_v = 3.4 + 0.006 * pct  # about the vendor's voltage steps

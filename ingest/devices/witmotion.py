"""WitMotion BLE 5.0 IMUs (WT901BLECL, BWT901BLECL5.0, WT9011DCL; summary in ``docs/devices.md``).

Data: 20-byte frames on ``ffe4`` (one per notification normally, but the decoder treats the notifications as a
byte stream and re-frames it: hunt ``0x55`` followed by ``0x61`` or ``0x71``, cut 20 bytes)::

    55 61  ax ay az (int16, g * 16/32768)  wx wy wz (int16, deg/s * 2000/32768)
           roll pitch yaw (int16, deg * 180/32768)
    55 71  regL regH  8 x int16 register values (reply to ``FF AA 27 <reg> 00``)

No timestamp and no sequence number: sample times come from arrival times
(:class:`hipback.ingest.clock.ArrivalClock`). The int16 scales are the sensor's full scale (+-16 g,
+-2000 deg/s), so acc and gyr cannot exceed it; a pitch beyond +-90 deg cannot come from the device and is
rejected.

The battery is polled: the profile's :attr:`WitMotionProfile.battery` write asks for register 0x64, whose
``55 71`` reply on the data stream the decoder turns into a battery level.

Frame convention chosen by hipback (documented in ``firmware_notes/devices.md``): the vendor text says "NED",
but the sensor reads az = +1 g lying flat face up, i.e. its z axis points up and the angles are those of a
z-up world frame. We therefore read the angles as intrinsic Z-Y-X (yaw about world z, then pitch about y, then
roll about x), right-handed, sensor-to-world: ``q = qz(yaw) * qy(pitch) * qx(roll)``. Heading (yaw) is
relative to the device's own reference; hip angles only use segment-relative orientation and the calibration
removes constant offsets.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping

import numpy as np

from hipback.ingest.devices.base import (
    BAD_VALUE,
    JUNK,
    TRUNCATED,
    BatterySource,
    DecodedSamples,
    Decoder,
    DeviceConfig,
    DeviceProfile,
    FloatArray,
    StatusFlag,
    Write,
)

SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"  # note the ...9a34fb suffix (not the SIG base)
NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_UUID = "0000ffe9-0000-1000-8000-00805f9a34fb"

FRAME_SIZE = 20
HEADER = 0x55
FLAG_DATA = 0x61
FLAG_REGISTER = 0x71

G = 9.80665
ACC_SCALE = 16.0 * G / 32768.0  # m/s^2 per LSB
GYR_SCALE = math.radians(2000.0 / 32768.0)  # rad/s per LSB
ANGLE_SCALE = math.radians(180.0 / 32768.0)  # rad per LSB

REG_SAVE = 0x00
REG_RATE = 0x03
REG_MAG = 0x3A
REG_TEMPERATURE = 0x40
REG_QUAT = 0x51
REG_BATTERY = 0x64
REG_READ = 0x27
UNLOCK = bytes([0xFF, 0xAA, 0x69, 0x88, 0xB5])  # valid for 10 s
SAVE = bytes([0xFF, 0xAA, 0x00, 0x00, 0x00])

#: Return-rate codes of register 0x03 (RRATE) as WitMotion's register map and its BLE 5.0 SDKs use them.
#: Code 0x0A is 125 Hz on the WT931 only, so it is left out; 0x0B is 200 Hz.
RATE_CODES: dict[float, int] = {
    0.2: 0x01,
    0.5: 0x02,
    1.0: 0x03,
    2.0: 0x04,
    5.0: 0x05,
    10.0: 0x06,
    20.0: 0x07,
    50.0: 0x08,
    100.0: 0x09,
    200.0: 0x0B,
}
RATES_BY_CODE = {v: k for k, v in RATE_CODES.items()}
DEFAULT_RATE_HZ = 10.0

#: battery voltage (V) -> percent, the vendor SDK's coarse steps (lower bound of each step)
BATTERY_STEPS = (
    (3.96, 100.0),
    (3.93, 90.0),
    (3.87, 75.0),
    (3.82, 60.0),
    (3.79, 50.0),
    (3.77, 40.0),
    (3.73, 30.0),
    (3.70, 20.0),
    (3.68, 15.0),
    (3.50, 10.0),
    (3.40, 5.0),
)

#: battery voltages (V) a single Li-ion cell can report; a register reply outside them is rejected
BATTERY_VOLTS = (2.5, 4.5)

_DATA = struct.Struct("<9h")


def command(reg: int, value: int = 0) -> bytes:
    """Register write ``FF AA <reg> <lo> <hi>``."""
    return bytes([0xFF, 0xAA, reg & 0xFF]) + struct.pack("<h" if value < 0 else "<H", value)


def register_read(reg: int) -> bytes:
    """Ask for 8 registers from ``reg``; the reply is a ``55 71`` frame on the notify characteristic."""
    return bytes([0xFF, 0xAA, REG_READ, reg & 0xFF, 0x00])


def rate_command(rate_hz: float) -> bytes:
    """``FF AA 03 <code> 00`` for a rate of :data:`RATE_CODES` (raises ValueError for another rate)."""
    if float(rate_hz) not in RATE_CODES:
        raise ValueError(f"WitMotion BLE 5.0 cannot stream at {rate_hz} Hz (rates: {tuple(RATE_CODES)})")
    return command(REG_RATE, RATE_CODES[float(rate_hz)])


def battery_percent(volts: float) -> float:
    for v, pct in BATTERY_STEPS:
        if volts >= v:
            return pct
    return 0.0


def euler_zyx_to_quat(roll: FloatArray, pitch: FloatArray, yaw: FloatArray) -> FloatArray:
    """``q = qz(yaw) * qy(pitch) * qx(roll)`` (rad in, (N, 4) scalar-first out), sensor-to-world."""
    cr, sr = np.cos(roll / 2), np.sin(roll / 2)
    cp, sp = np.cos(pitch / 2), np.sin(pitch / 2)
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    q = np.stack(
        (
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ),
        axis=-1,
    )
    return np.where(q[..., :1] < 0, -q, q)


def _euler_zyx_to_quat_scalar(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """Scalar version of :func:`euler_zyx_to_quat` (same formula)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    q = (
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    )
    return q if q[0] >= 0 else (-q[0], -q[1], -q[2], -q[3])


class WitMotionDecoder(Decoder):
    """Re-framing decoder for the ffe4 byte stream. Samples carry no device time (``device_time_s`` is
    None)."""

    kind = "witmotion"

    def __init__(
        self, rate_hz: float, *, acc_range_ms2: float | None = None, gyr_range_rads: float | None = None
    ) -> None:
        super().__init__(rate_hz, acc_range_ms2=acc_range_ms2, gyr_range_rads=gyr_range_rads)
        self._buf = bytearray()

    @staticmethod
    def _looks_like_frame_start(chunk: bytes) -> bool:
        return (
            len(chunk) >= FRAME_SIZE
            and chunk[0] == HEADER
            and chunk[1] in (FLAG_DATA, FLAG_REGISTER)
            and (len(chunk) == FRAME_SIZE or chunk[FRAME_SIZE] == HEADER)
        )

    def _decode(self, data: bytes, arrival_time: float) -> DecodedSamples:
        buf = self._buf
        if buf and self._looks_like_frame_start(data):
            # a partial frame is pending but this notification starts a new frame: the partial was cut short
            self.stats.reject(TRUNCATED)
            self.stats.junk_bytes += len(buf)
            buf.clear()
        buf += data
        frames: list[bytes] = []
        i = 0
        n = len(buf)
        junk = 0
        while True:
            j = buf.find(HEADER, i)
            if j < 0:
                junk += n - i
                i = n
                break
            junk += j - i
            if j + 1 >= n:
                i = j
                break
            if buf[j + 1] not in (FLAG_DATA, FLAG_REGISTER):
                junk += 1
                i = j + 1
                continue
            if j + FRAME_SIZE > n:
                i = j
                break
            frames.append(bytes(buf[j : j + FRAME_SIZE]))
            i = j + FRAME_SIZE
        del buf[:i]
        if junk:
            self.stats.reject(JUNK)
            self.stats.junk_bytes += junk
        return self._parse_frames(frames, arrival_time)

    def _parse_frames(self, frames: list[bytes], arrival_time: float) -> DecodedSamples:
        out = DecodedSamples(arrival_time=arrival_time)
        data_frames = [f for f in frames if f[1] == FLAG_DATA]
        for f in frames:
            if f[1] == FLAG_REGISTER:
                self._parse_register(f, out)
        if data_frames:
            rows = []
            for f in data_frames:
                v = _DATA.unpack_from(f, 2)
                if abs(v[7]) > 16384:  # pitch beyond +-90 deg cannot come from the device
                    self.stats.reject(BAD_VALUE)
                    continue
                rows.append(v)
            if len(rows) == 1:  # the usual case: scalar maths is much cheaper than numpy on 1 row (the same
                # products: an int16 is exact as a float)
                v = rows[0]
                e = [v[6] * ANGLE_SCALE, v[7] * ANGLE_SCALE, v[8] * ANGLE_SCALE]
                out.quat = np.array([_euler_zyx_to_quat_scalar(*e)])
                out.acc = np.array([[v[0] * ACC_SCALE, v[1] * ACC_SCALE, v[2] * ACC_SCALE]])
                out.gyr = np.array([[v[3] * GYR_SCALE, v[4] * GYR_SCALE, v[5] * GYR_SCALE]])
                out.extra["euler_rad"] = np.array([e])
            elif rows:
                rec = np.array(rows, dtype=np.float64)
                ang = rec[:, 6:9] * ANGLE_SCALE
                out.quat = euler_zyx_to_quat(ang[:, 0], ang[:, 1], ang[:, 2])
                out.acc = rec[:, 0:3] * ACC_SCALE
                out.gyr = rec[:, 3:6] * GYR_SCALE
                out.extra["euler_rad"] = ang
            if rows:
                # FUSION_ON, keeping LOW_BATTERY from a reply in the same notification (IntFlag arithmetic is
                # slow per packet: with no other flag set, the member itself)
                out.flags = out.flags | StatusFlag.FUSION_ON if out.flags else StatusFlag.FUSION_ON
                out.n = len(rows)
        if not frames and not out.n:
            out.extra.setdefault("pending_bytes", len(self._buf))
        return out

    def _parse_register(self, frame: bytes, out: DecodedSamples) -> None:
        reg = frame[2] | (frame[3] << 8)
        vals = struct.unpack_from("<8h", frame, 4)
        regs = out.extra.setdefault("registers", {})
        regs[reg] = vals
        if reg == REG_QUAT:
            q = np.array(vals[:4], dtype=np.float64) / 32768.0
            out.extra["quat_register"] = q
        elif reg == REG_MAG:
            out.extra["mag_register"] = (
                np.array(vals[:3], dtype=np.float64) / 120.0
            )  # a.u., as the vendor SDK
        elif reg == REG_TEMPERATURE:
            out.extra["temperature_c"] = vals[0] / 100.0
        elif reg == REG_BATTERY:
            volts = (vals[0] & 0xFFFF) / 100.0
            if not BATTERY_VOLTS[0] <= volts <= BATTERY_VOLTS[1]:  # not a single Li-ion cell: a bad reply
                self.stats.reject(BAD_VALUE)
                return
            out.extra["battery_v"] = volts
            out.battery_pct = battery_percent(volts)
            if out.battery_pct <= 15.0:
                out.flags |= StatusFlag.LOW_BATTERY


class WitMotionProfile(DeviceProfile):
    """WitMotion BLE 5.0: unlock, rate, save; streams once subscribed; battery polled (register 0x64)."""

    kind = "witmotion"
    label = "WitMotion BLE 5.0"
    name_patterns = ("WT",)
    service_uuids = (SERVICE_UUID,)
    modes = {"euler": "55 61 frames (acc, gyr, Euler angles)"}
    default_mode = "euler"
    rates_hz = tuple(RATE_CODES)
    config_reads = ()
    battery = BatterySource(
        poll=Write(WRITE_UUID, register_read(REG_BATTERY), True, "read battery register"), interval_s=30.0
    )

    def sensor_kind(self, mode: str | None = None):  # type: ignore[override]
        return "quat"

    def notify_uuids(self, mode: str | None = None) -> list[str]:
        return [NOTIFY_UUID]

    def start_sequence(
        self,
        rate_hz: float,
        mode: str | None = None,
        current: DeviceConfig | Mapping[str, bytes] | None = None,
        *,
        max_batch: int | None = None,
    ) -> list[Write]:
        """Unlock, set the return rate, save (within the 10 s unlock window). The device streams by itself."""
        return [
            Write(WRITE_UUID, UNLOCK, True, "unlock"),
            Write(WRITE_UUID, rate_command(self.nearest_rate(rate_hz)), True, "return rate"),
            Write(WRITE_UUID, SAVE, True, "save"),
        ]

    def stop_sequence(self, mode: str | None = None) -> list[Write]:
        return []  # no stop command: the device streams while connected

    def make_decoder(
        self, rate_hz: float, mode: str | None = None, config: DeviceConfig | None = None
    ) -> WitMotionDecoder:
        return WitMotionDecoder(self.nearest_rate(rate_hz), **self._ranges(config))


WITMOTION = WitMotionProfile()

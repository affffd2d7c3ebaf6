"""Virtual hipback IMU profile v1 device: encoder (samples -> DATA notifications) and control state machine.

Written from the spec (``firmware_notes/hipback-imu-profile-v1.md``), independently of the ingest decoder, so
the round-trip tests check both against the document. Constants are repeated here on purpose (``simulator``
must not import ``ingest``); a test asserts they agree.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from hipback.processing import quaternion as qm
from hipback.processing.types import SensorStream
from hipback.simulator.devices.base import (
    NOTIFY,
    READ,
    WRITE,
    DeviceClock,
    DeviceTwin,
    Effect,
    FloatArray,
    heading_correction,
)

_BASE = "-49d1-43f4-95ff-16609d6891a4"
SERVICE_UUID = "4deb0001" + _BASE
DATA_UUID = "4deb0002" + _BASE
CONTROL_UUID = "4deb0003" + _BASE
INFO_UUID = "4deb0004" + _BASE
TIME_UUID = "4deb0005" + _BASE
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_INFO_SERVICE_UUID = "0000180a-0000-1000-8000-00805f9b34fb"
MANUFACTURER_NAME_UUID = "00002a29-0000-1000-8000-00805f9b34fb"
MODEL_NUMBER_UUID = "00002a24-0000-1000-8000-00805f9b34fb"
FIRMWARE_REVISION_UUID = "00002a26-0000-1000-8000-00805f9b34fb"

HEADER = struct.Struct("<BBBBIQHH")
G = 9.80665
FORMATS = {
    "quat": 0x01,
    "quat_raw": 0x0D,
    "quat_raw_mag": 0x1D,
    "quat_f32_raw": 0x0E,
    "raw": 0x0C,
    "raw_mag": 0x1C,
}
RATES_HZ = (25, 50, 100, 200, 400)
LOW_BATTERY_PCT = 15


def _sample_size(fmt: int) -> int:
    q = fmt & 0x03
    return {0: 0, 1: 8, 2: 16}[q] + 6 * bin(fmt & 0x1C).count("1")


def _i16(a: FloatArray) -> FloatArray:
    return np.clip(np.round(a), -32768, 32767)


class HipbackState:
    """Control, info, time-sync and battery behaviour of a hipback v1 device (pure, no BLE).

    ``handle_write(char_uuid, data, now)`` returns effects; ``read(char_uuid, now)`` returns characteristic
    values. ``now`` is the simulation time in s (the device clock is ``clock.device_time(now)``).
    """

    def __init__(
        self, clock: DeviceClock | None = None, battery_pct: int = 90, model: str = "hipback-sim"
    ) -> None:
        self.clock = clock or DeviceClock()
        self.battery_pct = battery_pct
        self.model = model
        self.streaming = False
        self.rate_hz = 100
        self.fmt = FORMATS["quat_raw"]
        self.max_batch = 0
        self.location = 0
        self.fusion = 1
        self.time_synced = False
        self.last_op = 0
        self.last_result = 0
        self.heading = qm.IDENTITY.copy()
        self.last_quat: FloatArray | None = None

    # -- writes --------------------------------------------------------------------------------------------
    def handle_write(self, char_uuid: str, data: bytes, now: float = 0.0) -> list[Effect]:
        data = bytes(data)
        uuid = char_uuid.lower()
        if uuid == CONTROL_UUID:
            return self._control(data)
        if uuid == TIME_UUID:
            return self._time(data, now)
        return [Effect("error", {"reason": f"characteristic {char_uuid} is not writable"})]

    def _result(self, op: int, result: int, effects: list[Effect]) -> list[Effect]:
        self.last_op, self.last_result = op, result
        return effects

    def _control(self, data: bytes) -> list[Effect]:
        if not data:
            return self._result(0, 2, [Effect("error", {"reason": "empty control write"})])
        op = data[0]
        if op == 0x01:
            if len(data) != 5:
                return self._result(op, 2, [Effect("error", {"reason": "start needs 5 bytes"})])
            _, rate, fmt, max_batch = struct.unpack("<BHBB", data)
            if rate not in RATES_HZ:
                return self._result(op, 3, [Effect("error", {"reason": f"unsupported rate {rate} Hz"})])
            if fmt & 0xE0 or (fmt & 0x03) == 3 or _sample_size(fmt) == 0:
                return self._result(op, 4, [Effect("error", {"reason": f"unsupported format 0x{fmt:02x}"})])
            self.streaming, self.rate_hz, self.fmt, self.max_batch = True, rate, fmt, max_batch
            return self._result(
                op, 0, [Effect("start", {"rate_hz": float(rate), "format": fmt, "max_batch": max_batch})]
            )
        if op == 0x02 and len(data) == 1:
            self.streaming = False
            return self._result(op, 0, [Effect("stop")])
        if op == 0x03 and len(data) == 1:
            if self.last_quat is not None:
                self.heading = heading_correction(self.last_quat)  # output heading of the sensor x axis -> 0
            return self._result(op, 0, [Effect("heading_reset")])
        if op == 0x04 and len(data) == 2:
            self.location = data[1]
            return self._result(op, 0, [Effect("location", {"location": data[1]})])
        if op == 0x05 and len(data) == 2 and data[1] <= 2:
            self.fusion = data[1]
            return self._result(op, 0, [Effect("fusion", {"fusion": data[1]})])
        if op in (0x01, 0x02, 0x03, 0x04, 0x05):
            return self._result(op, 2, [Effect("error", {"reason": f"bad length for control op 0x{op:02x}"})])
        return self._result(op, 1, [Effect("error", {"reason": f"unknown control op 0x{op:02x}"})])

    def _time(self, data: bytes, now: float) -> list[Effect]:
        if len(data) == 13 and data[0] == 0x01:
            _, token, _host_us = struct.unpack("<BIQ", data)
            dev_us = int(round(float(self.clock.device_time(now)) * 1e6))
            reply = struct.pack("<BIQQ", 0x81, token, dev_us, dev_us)
            return [Effect("notify", {"char_uuid": TIME_UUID, "data": reply})]
        if len(data) == 9 and data[0] == 0x02:
            (offset_us,) = struct.unpack_from("<q", data, 1)
            self.clock.jump(offset_us * 1e-6)
            self.time_synced = True
            return [Effect("time_offset", {"offset_s": offset_us * 1e-6})]
        return [Effect("error", {"reason": "malformed time-sync write"})]

    # -- reads ---------------------------------------------------------------------------------------------
    def read(self, char_uuid: str, now: float = 0.0) -> bytes:
        uuid = char_uuid.lower()
        if uuid == CONTROL_UUID:
            return struct.pack(
                "<BBBBHBB",
                self.last_op,
                self.last_result,
                int(self.streaming),
                self.fmt,
                self.rate_hz,
                self.max_batch,
                self.location,
            )
        if uuid == INFO_UUID:
            rates = list(RATES_HZ) + [0] * (8 - len(RATES_HZ))
            # capabilities: Q14, float quaternion, acc, gyr, mag (bits 0-4), on-device fusion (bit 5)
            caps = 0x1F | (0x20 if self.fusion else 0)
            return struct.pack(
                "<BBBBBBBBHHBB8HI16s",
                1,
                1,
                0,
                1,
                0,
                1,
                1,
                16,
                2000,
                4900,
                caps,
                len(RATES_HZ),
                *rates,
                0x00C0FFEE,
                self.model.encode()[:16],
            )
        if uuid == BATTERY_LEVEL_UUID:
            return bytes([max(0, min(100, int(self.battery_pct)))])
        if uuid == MANUFACTURER_NAME_UUID:
            return b"hipback open hardware"
        if uuid == MODEL_NUMBER_UUID:
            return self.model.encode()
        if uuid == FIRMWARE_REVISION_UUID:
            return b"0.1.0"
        raise KeyError(f"characteristic {char_uuid} is not readable")

    def status_word(self, clip_acc: bool, clip_gyr: bool, has_mag: bool, overrun: bool) -> int:
        s = 0
        s |= 0x0001 if clip_acc else 0
        s |= 0x0002 if clip_gyr else 0
        s |= 0x0004 if has_mag else 0
        s |= 0x0008 if (self.fmt & 0x03) and self.fusion else 0
        s |= 0x0010 if self.time_synced else 0
        s |= 0x0020 if self.battery_pct <= LOW_BATTERY_PCT else 0
        s |= 0x0040 if overrun else 0
        s |= 3 << 12 if self.fusion else 0
        return s


class HipbackEncoder:
    """Turns samples into DATA notifications, as many samples per packet as the MTU allows.

    ``t`` in s on the simulation timeline (the device clock maps it to device time), quat (N, 4)
    sensor-to-world, acc m/s^2, gyr rad/s, mag uT. The sequence number counts samples and continues across
    calls; :meth:`skip` advances it without sending (a device-side overrun, or samples produced while
    disconnected).

    Below the minimum MTU of the profile a packet still carries one sample, longer than MTU - 3: the BLE stack
    truncates it, as it would for a device that ignores the spec (the decoder counts it as truncated).
    """

    def __init__(
        self, rate_hz: float, mtu: int = 247, mode: str = "quat_raw", state: HipbackState | None = None
    ) -> None:
        self.state = state or HipbackState()
        self.state.rate_hz = int(rate_hz)
        self.state.fmt = FORMATS[mode]
        self.mtu = mtu
        self.seq = 0
        self._overrun = False

    @property
    def rate_hz(self) -> float:
        return float(self.state.rate_hz)

    @property
    def samples_per_packet(self) -> int:
        n = min((self.mtu - 3 - HEADER.size) // _sample_size(self.state.fmt), 255)
        return min(n, self.state.max_batch) if self.state.max_batch else n

    def skip(self, n: int) -> None:
        self.seq = (self.seq + n) & 0xFFFFFFFF
        self._overrun = True

    def encode(
        self,
        t: FloatArray,
        quat: FloatArray | None = None,
        acc: FloatArray | None = None,
        gyr: FloatArray | None = None,
        mag: FloatArray | None = None,
    ) -> list[bytes]:
        parts = self.sample_parts(t, quat, acc, gyr, mag)
        if len(t) and quat is not None and self.state.fmt & 0x03:
            self.state.last_quat = np.asarray(quat[-1], dtype=np.float64)
        return self.pack(*parts)

    def sample_parts(
        self,
        t: FloatArray,
        quat: FloatArray | None = None,
        acc: FloatArray | None = None,
        gyr: FloatArray | None = None,
        mag: FloatArray | None = None,
    ) -> tuple[list[bytes], list[bool], list[bool], list[int]]:
        """What each sample contributes, whatever packet it goes into: its bytes in the current format and
        heading, whether its acc / gyr clipped, its device time (us). Depends on the samples, the format,
        the heading and the clock only (see :meth:`HipbackTwin.encode_range`)."""
        st = self.state
        fmt = st.fmt
        t = np.asarray(t, dtype=np.float64)
        n_total = len(t)
        qfmt = fmt & 0x03
        parts: list[np.ndarray] = []
        if qfmt:
            if quat is None:
                raise ValueError("this format needs quaternions")
            q = qm.canonical(qm.multiply(st.heading, np.asarray(quat, dtype=np.float64)))
            parts.append(_i16(q * 16384.0).astype("<i2") if qfmt == 1 else q.astype("<f4"))
        clip_acc = clip_gyr = np.zeros(n_total, dtype=bool)
        if fmt & 0x04:
            if acc is None:
                raise ValueError("this format needs acc")
            raw = np.asarray(acc) / (16.0 * G / 32768.0)
            clip_acc = np.any(np.abs(raw) > 32767, axis=1)
            parts.append(_i16(raw).astype("<i2"))
        if fmt & 0x08:
            if gyr is None:
                raise ValueError("this format needs gyr")
            raw = np.degrees(np.asarray(gyr)) / (2000.0 / 32768.0)
            clip_gyr = np.any(np.abs(raw) > 32767, axis=1)
            parts.append(_i16(raw).astype("<i2"))
        if fmt & 0x10:
            if mag is None:
                raise ValueError("this format needs mag")
            parts.append(_i16(np.asarray(mag) * 16.0).astype("<i2"))
        rows = [b"".join(p[i].tobytes() for p in parts) for i in range(n_total)]
        dev_us = np.round(self.state.clock.device_time(t) * 1e6).astype(np.int64)
        return rows, clip_acc.tolist(), clip_gyr.tolist(), dev_us.tolist()

    def pack(
        self, rows: list[bytes], clip_acc: list[bool], clip_gyr: list[bool], dev_us: list[int]
    ) -> list[bytes]:
        """DATA packets of consecutive samples (from :meth:`sample_parts`), as many per packet as fit; the
        sequence number goes on."""
        st = self.state
        fmt = st.fmt
        n_total = len(rows)
        dt_us = int(round(1e6 / self.rate_hz))
        batch = max(self.samples_per_packet, 1)
        battery = max(0, min(100, int(st.battery_pct)))
        out = []
        for s in range(0, n_total, batch):
            e = min(s + batch, n_total)
            status = st.status_word(any(clip_acc[s:e]), any(clip_gyr[s:e]), bool(fmt & 0x10), self._overrun)
            self._overrun = False
            header = HEADER.pack(1, fmt, e - s, battery, self.seq, dev_us[s] & (2**64 - 1), dt_us, status)
            out.append(header + b"".join(rows[s:e]))
            self.seq = (self.seq + (e - s)) & 0xFFFFFFFF
        return out


def quat_error_bound() -> float:
    """Worst rotation error (rad) of the Q14 quaternion encoding, for tests (about 2 * 4 * 0.5 / 16384)."""
    return 4.0 * math.sqrt(4) * 0.5 / 16384.0


class HipbackTwin(DeviceTwin):
    """Virtual hipback v1 device: hipback service (DATA notify, CONTROL write/read, INFO read, TIME
    write/notify), Battery (0x180F) and Device Information (0x180A); batches as many samples per notification
    as the MTU (and ``max_batch``) allow, and sends a partly filled packet once its oldest sample is
    ``batch_latency_s`` old; keeps counting sequence numbers over samples it could not send."""

    KIND = "hipback_v1"
    LAYOUT = (
        (
            SERVICE_UUID,
            (
                (DATA_UUID, frozenset({NOTIFY})),
                (CONTROL_UUID, frozenset({READ, WRITE})),
                (INFO_UUID, frozenset({READ})),
                (TIME_UUID, frozenset({WRITE, NOTIFY})),
            ),
        ),
        (BATTERY_SERVICE_UUID, ((BATTERY_LEVEL_UUID, frozenset({READ, NOTIFY})),)),
        (
            DEVICE_INFO_SERVICE_UUID,
            (
                (MANUFACTURER_NAME_UUID, frozenset({READ})),
                (MODEL_NUMBER_UUID, frozenset({READ})),
                (FIRMWARE_REVISION_UUID, frozenset({READ})),
            ),
        ),
    )
    ADVERTISED = (SERVICE_UUID,)
    RATES_HZ = tuple(float(r) for r in RATES_HZ)
    DEFAULT_RATE_HZ = 100.0
    ADDRESS_PREFIX = "C4:1B:AC"
    LINK_INTERVAL_S = 0.015

    @classmethod
    def default_name(cls, index: int) -> str:
        return f"hipback-{index:02X}"

    @classmethod
    def initial_mode(cls, has_quat: bool) -> str | None:
        return "quat_raw" if has_quat else "raw"

    def _make_encoder(self, rate_hz: float, mtu: int, mode: str | None, **state: object) -> HipbackEncoder:
        return HipbackEncoder(rate_hz, mtu, mode or "quat_raw", state=HipbackState(**state))  # type: ignore[arg-type]

    def _data_uuid(self) -> str:
        return DATA_UUID

    def on_link_lost(self) -> None:
        self.state.streaming = False

    def packet_counts(self, packets: list[bytes]) -> list[int]:
        return [p[2] for p in packets]  # n_samples of each header

    # each sample's part of a packet (HipbackEncoder.sample_parts) is computed a block ahead while the format,
    # heading and clock stay (DeviceTwin.encode_range); the packets (header, sequence number, battery, status)
    # are built as they are sent
    def _frame_key(self) -> tuple[object, ...]:
        st = self.state
        return (st.fmt, st.heading.tobytes(), st.clock.offset_s, st.clock.drift)

    def _encode_ahead(self, *fields: FloatArray | None) -> list[Any]:
        return list(zip(*self.encoder.sample_parts(*fields), strict=True))  # (row, clip acc, clip gyr, us)

    def _from_block(self, items: list[Any]) -> list[bytes]:
        return self.encoder.pack(*zip(*items, strict=True)) if items else []

    def _sent_upto(self, samples: SensorStream, i1: int) -> None:
        if i1 > 0 and samples.quat is not None and self.state.fmt & 0x03:
            self.state.last_quat = np.asarray(samples.quat[i1 - 1], dtype=np.float64)

    def send_upto(self, cursor: int, due: int, now: float, t: FloatArray, batch_latency_s: float) -> int:
        spp = max(self.encoder.samples_per_packet, 1)
        n_full = (due - cursor) // spp * spp
        if n_full == 0 and now - t[cursor] < batch_latency_s:
            return cursor  # wait for a fuller packet
        return cursor + (n_full if n_full else due - cursor)

    def skip(self, n: int) -> None:
        self.encoder.skip(n)

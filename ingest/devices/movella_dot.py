"""Movella DOT (formerly Xsens DOT) over its open BLE spec (XD0506P rev C; summary in ``docs/devices.md``).

Payload modes used by hipback (notification = full characteristic length, zero padded; parsed by mode):

    id  name                   char    size  layout after the u32 us timestamp
     2  extended_quaternion    medium   36   q wxyz f32, free acc xyz f32, status u16, clipAcc u8, clipGyr u8
     3  complete_quaternion    medium   32   q wxyz f32, free acc xyz f32
     5  orientation_quaternion short    20   q wxyz f32
    20  rate_quantities_mag    medium   34   acc xyz f32 (m/s^2), gyr xyz f32 (deg/s), mag 3 x int16 / 2^12
    21  rate_quantities        medium   28   acc, gyr
    24  custom3                medium   32   q, gyr
    26  custom5                long     44   q, acc, gyr

The decoder converts gyr to rad/s, unwraps the u32 us timestamp (wraps every ~71.6 min) and, as the device has
no sequence number, finds gaps from the timestamps and the output rate. Quaternions are sensor-to-world (Xsens
local earth frame, ENU: z up). Samples with acc beyond +-16 g or gyr beyond +-2000 deg/s (the DOT's full
scale) cannot come from the sensor and are rejected as ``out_of_range``.

At connect the profile reads Device Info 0x1001 (firmware version: custom mode 5 needs firmware 3 or later),
Device Control 0x1002 (the output rate is written by read-modify-write) and Control 0x2001 (whether the device
is still measuring after a reconnect: the rate cannot change while measuring, so the start sequence stops it
first). The payload mode falls back to one the firmware has and the negotiated ATT MTU carries.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hipback.ingest.devices.base import (
    BAD_LENGTH,
    BAD_QUAT_NORM,
    BAD_VALUE,
    DUPLICATE,
    OUT_OF_ORDER,
    OUT_OF_RANGE,
    TRUNCATED,
    BatterySource,
    DecodedSamples,
    Decoder,
    DeviceConfig,
    DeviceProfile,
    SampleGap,
    StatusFlag,
    Write,
)


def uuid16(short: int) -> str:
    """Full Movella DOT UUID for a short id (base ``1517xxxx-4947-11e9-8646-d663bd873d93``)."""
    return f"1517{short:04x}-4947-11e9-8646-d663bd873d93"


CONFIGURATION_SERVICE_UUID = uuid16(0x1000)
DEVICE_INFO_UUID = uuid16(0x1001)  # R, 34 B
DEVICE_CONTROL_UUID = uuid16(0x1002)  # R/W, 32 B
DEVICE_REPORT_UUID = uuid16(0x1004)  # notify, 36 B
MEASUREMENT_SERVICE_UUID = uuid16(0x2000)
CONTROL_UUID = uuid16(0x2001)  # R/W, 3 B
LONG_PAYLOAD_UUID = uuid16(0x2002)  # notify, 63 B
MEDIUM_PAYLOAD_UUID = uuid16(0x2003)  # notify, 40 B
SHORT_PAYLOAD_UUID = uuid16(0x2004)  # notify, 20 B
ORIENTATION_RESET_CONTROL_UUID = uuid16(0x2006)  # R/W, 2 B
ORIENTATION_RESET_STATUS_UUID = uuid16(0x2007)  # R, 1 B
BATTERY_SERVICE_UUID = uuid16(0x3000)
BATTERY_UUID = uuid16(0x3001)  # R/notify: level %, charging
MESSAGE_SERVICE_UUID = uuid16(0x7000)
MESSAGE_CONTROL_UUID = uuid16(0x7001)
MESSAGE_ACK_UUID = uuid16(0x7002)
MESSAGE_NOTIFICATION_UUID = uuid16(0x7003)

PAYLOAD_LENGTH = {LONG_PAYLOAD_UUID: 63, MEDIUM_PAYLOAD_UUID: 40, SHORT_PAYLOAD_UUID: 20}
#: ATT header bytes in a notification: a payload of L bytes needs ATT MTU >= L + 3
ATT_HEADER = 3
#: first firmware major version with custom mode 5 (id 26); older firmware lacks it
CUSTOM5_MIN_FIRMWARE = 3
#: payload modes only firmware CUSTOM5_MIN_FIRMWARE and later has: with the firmware version unknown (Device
#: Info unreadable) they are not asked for: an older DOT does not start an unknown mode (nothing streams)
FIRMWARE3_MODES = ("custom5",)
#: full scale of the DOT's IMU, per axis
ACC_RANGE_MS2 = 16.0 * 9.80665
GYR_RANGE_RADS = math.radians(2000.0)

#: Output rates the device accepts (Hz). 120 Hz is for on-device recording only, not live streaming.
ALL_RATES_HZ = (1.0, 4.0, 10.0, 12.0, 15.0, 20.0, 30.0, 60.0, 120.0)
LIVE_RATES_HZ = ALL_RATES_HZ[:-1]
DEFAULT_RATE_HZ = 60.0

# Device Control (0x1002) layout
DEVICE_CONTROL_SIZE = 32
VISIT_IDENTIFY, VISIT_POWER, VISIT_POWER_SAVING, VISIT_TAG, VISIT_RATE, VISIT_FILTER = (
    1 << i for i in range(6)
)
OFF_RATE = 24

# Control (0x2001): type, action, payload mode
CONTROL_TYPE_MEASUREMENT = 0x01
ACTION_STOP, ACTION_START = 0x00, 0x01


#: each payload field's struct format and number of values
_FIELD_FORMATS = {
    "quat": ("4f", 4), "free_acc": ("3f", 3), "acc": ("3f", 3), "gyr": ("3f", 3), "mag": ("3h", 3),
    "status": ("HBB", 3),
}


@dataclass(frozen=True)
class PayloadMode:
    """One real-time payload mode: id, the notifying characteristic, data size and field layout."""

    name: str
    mode_id: int
    char_uuid: str
    size: int
    fields: tuple[str, ...]  # among quat, free_acc, acc, gyr, mag, status

    @property
    def struct(self) -> struct.Struct:
        return struct.Struct("<I" + "".join(_FIELD_FORMATS[f][0] for f in self.fields))

    @property
    def layout(self) -> list[tuple[str, int, int]]:
        """(field, first, end) of each field's values in :attr:`struct`'s unpacked tuple (after the
        timestamp)."""
        out = []
        i = 1
        for f in self.fields:
            out.append((f, i, i + _FIELD_FORMATS[f][1]))
            i += _FIELD_FORMATS[f][1]
        return out


PAYLOAD_MODES: dict[str, PayloadMode] = {
    m.name: m
    for m in (
        PayloadMode("extended_quaternion", 2, MEDIUM_PAYLOAD_UUID, 36, ("quat", "free_acc", "status")),
        PayloadMode("complete_quaternion", 3, MEDIUM_PAYLOAD_UUID, 32, ("quat", "free_acc")),
        PayloadMode("orientation_quaternion", 5, SHORT_PAYLOAD_UUID, 20, ("quat",)),
        PayloadMode("rate_quantities_mag", 20, MEDIUM_PAYLOAD_UUID, 34, ("acc", "gyr", "mag")),
        PayloadMode("rate_quantities", 21, MEDIUM_PAYLOAD_UUID, 28, ("acc", "gyr")),
        PayloadMode("custom3", 24, MEDIUM_PAYLOAD_UUID, 32, ("quat", "gyr")),
        PayloadMode("custom5", 26, LONG_PAYLOAD_UUID, 44, ("quat", "acc", "gyr")),
    )
}
MODES_BY_ID = {m.mode_id: m for m in PAYLOAD_MODES.values()}
for _m in PAYLOAD_MODES.values():  # the layouts above must add up to the spec sizes
    assert _m.struct.size == _m.size, _m

#: the payload fields of float32 values (mag is int16 fixed point, status integers)
_FLOAT_FIELDS = frozenset({"quat", "free_acc", "acc", "gyr"})
MAG_SCALE = 1.0 / 4096.0  # int16 fixed point -> a.u. (as xsens_dot_server)
DEG = math.pi / 180.0


def device_control_write(current: bytes, rate_hz: float) -> bytes:
    """Build the 32-byte Device Control (0x1002) value that sets the output rate, from the current one
    (read-modify-write).

    Sets only visit-index bit 4 (output rate), so identify, power-off, tag and filter fields read back from
    the device are not acted upon. Raises ValueError for a wrong-length ``current`` or an unsupported rate.
    """
    if len(current) != DEVICE_CONTROL_SIZE:
        raise ValueError(f"Device Control value has {len(current)} bytes, expected {DEVICE_CONTROL_SIZE}")
    if float(rate_hz) not in ALL_RATES_HZ:
        raise ValueError(f"Movella DOT cannot stream at {rate_hz} Hz (rates: {ALL_RATES_HZ})")
    out = bytearray(current)
    struct.pack_into("<H", out, OFF_RATE, int(rate_hz))
    out[0] = VISIT_RATE
    return bytes(out)


def parse_battery(data: bytes) -> tuple[float, bool]:
    """Battery characteristic 0x3001 -> (level %, charging). Raises ValueError when malformed."""
    if len(data) < 2 or data[0] > 100 or data[1] > 1:
        raise ValueError("malformed Movella DOT battery value")
    return float(data[0]), bool(data[1])


def battery_percent(data: bytes) -> float:
    """Battery 0x3001 -> level in %; raises ValueError when malformed."""
    return parse_battery(data)[0]


def parse_device_info(data: bytes) -> dict[str, object]:
    """Device Info 0x1001 (34 B): MAC, firmware, build date, SoftDevice, serial, product code."""
    if len(data) != 34:
        raise ValueError(f"Device Info value has {len(data)} bytes, expected 34")
    mac = ":".join(f"{b:02X}" for b in reversed(data[0:6]))
    major, minor, rev = data[6:9]
    year, month, day, hour, minute, second = struct.unpack_from("<HBBBBB", data, 9)
    softdevice, serial = struct.unpack_from("<IQ", data, 16)
    return {
        "mac": mac,
        "firmware": f"{major}.{minor}.{rev}",
        "build": f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}",
        "softdevice": softdevice,
        "serial": serial,
        "product_code": data[28:34].rstrip(b"\0").decode("ascii", "replace"),
    }


def _control_readable(value: bytes) -> bool:
    """Whether a Control 0x2001 value says the measuring state: type measurement, action stop or start,
    and a payload mode byte (3 bytes)."""
    return (
        len(value) == 3 and value[0] == CONTROL_TYPE_MEASUREMENT and value[1] in (ACTION_STOP, ACTION_START)
    )


def status_flags(status: int) -> StatusFlag:
    """Movella status u16 -> common flags (bits 0-2 acc clip, 3-5 gyr clip, 6-8 mag clip, 9 mag new)."""
    flags = StatusFlag.NONE
    if status & 0x0007:
        flags |= StatusFlag.ACC_CLIPPING
    if status & 0x0038:
        flags |= StatusFlag.GYR_CLIPPING
    if status & 0x01C0:
        flags |= StatusFlag.MAG_CLIPPING
    if status & 0x0200:
        flags |= StatusFlag.MAG_VALID
    return flags


@dataclass(slots=True)
class _Held:
    """A valid sample refused as out of order that may begin a restarted device clock: kept until later
    packets decide (:attr:`MovellaDotDecoder.RESYNC_PACKETS`). Arrays of one row, as decoded."""

    raw_t: int  # the device's u32 us timestamp
    arrival: float  # s
    quat: np.ndarray | None
    acc: np.ndarray | None
    gyr: np.ndarray | None
    mag: np.ndarray | None
    free_acc: np.ndarray | None
    status: int | None
    data: bytes
    behind: bool = False  # less than RESTART_BACKWARDS_US behind the last accepted sample


class MovellaDotDecoder(Decoder):
    """Decoder for one real-time payload mode (one sample per notification).

    A packet behind the last accepted one (by less than :attr:`RESTART_BACKWARDS_US`, or with the same
    timestamp and other data, or more than half the counter ahead) is refused as ``out_of_order`` when it
    arrives: it may be stale or corrupt, or the first of a restarted device clock. Its sample is kept aside
    (at most ``RESYNC_PACKETS - 1`` of them); when :attr:`RESYNC_PACKETS` such packets in a row continue one
    another, the device clock restarted, and the packet that shows it returns the samples kept aside before
    its own (in a new clock epoch after the last accepted sample): a restart loses nothing. Those packets
    then no longer count as refused (``stats.rejected``); ``stats.recovered`` counts them. When the old
    clock goes on instead, the samples kept aside are dropped and stay counted as refused.
    """

    kind = "movella_dot"
    #: a timestamp this far behind the last one is a device clock restart, not a stale packet
    RESTART_BACKWARDS_US = 1_000_000
    #: consecutive out-of-order packets whose timestamps continue one another (each after the one before by
    #: at most :attr:`RESYNC_STEP_US` or two sample periods, whichever is longer) are the device's clock now:
    #: the decoder follows it as after a restart (an earlier packet with a corrupt timestamp, or a clock jump
    #: of more than half the counter, had made every later packet look stale)
    RESYNC_PACKETS = 3
    RESYNC_STEP_US = 1_000_000
    #: longest a notification can be delayed (s): no stall outlasts the BLE supervision timeout (at most 32 s)
    #: before the link drops. A timestamp further ahead than the arrivals allow is no loss (a clock jump).
    MAX_LATENCY_S = 32.0
    #: the device clock's rate error bound against the host's (fraction)
    MAX_DRIFT = 1e-3

    def __init__(
        self,
        rate_hz: float,
        mode: str = "custom5",
        *,
        acc_range_ms2: float | None = ACC_RANGE_MS2,
        gyr_range_rads: float | None = GYR_RANGE_RADS,
    ) -> None:
        super().__init__(rate_hz, acc_range_ms2=acc_range_ms2, gyr_range_rads=gyr_range_rads)
        self.mode = PAYLOAD_MODES[mode]
        self._struct = self.mode.struct
        self._layout = self.mode.layout
        self._max_len = PAYLOAD_LENGTH[self.mode.char_uuid]
        self._period_us = 1e6 / self.rate_hz
        self._last_raw: int | None = None
        self._last_data = b""  # the last accepted notification (a byte-identical repeat is a duplicate)
        # us added to the raw timestamp: multiples of 2^32 by unwrapping, plus the shift of each clock restart
        self._epoch = 0
        self._last_full: int | None = None  # device time of the last accepted sample (us, unwrapped)
        self._last_arrival: float | None = None  # its arrival time (s)
        self._last_time: float | None = None
        self._stray: tuple[int, int] | None = None  # (timestamp, how many in a row) of out-of-order packets
        self._held: list[_Held] = []  # their samples, oldest first (at most RESYNC_PACKETS - 1)

    def _resync(self, raw_t: int) -> bool:
        """Note an out-of-order packet with timestamp ``raw_t`` (us); True when it is the
        :attr:`RESYNC_PACKETS`-th in a row that continues the one before."""
        stray = self._stray
        count = 1
        step = max(self.RESYNC_STEP_US, 2 * self._period_us)
        if stray is not None and 0 < (raw_t - stray[0]) % (1 << 32) <= step:
            count = stray[1] + 1
        if count >= self.RESYNC_PACKETS:
            self._stray = None
            return True
        self._stray = (raw_t, count)
        return False

    def _plausible_step(self, diff_us: int, arrival_time: float) -> bool:
        """True when the timestamp advanced by ``diff_us`` (> 0) since the last accepted sample can be time
        that passed: no more than the arrivals advanced (``arrival_time``, s; plus the drift bound) and the
        longest delay a packet can have had (:attr:`MAX_LATENCY_S`)."""
        last = self._last_arrival
        elapsed = arrival_time - last if last is not None else math.inf
        if not math.isfinite(elapsed):  # nothing known about the time between them
            return True
        return diff_us * 1e-6 <= max(elapsed, 0.0) * (1.0 + self.MAX_DRIFT) + self.MAX_LATENCY_S

    def _new_epoch(self, raw_t: int, arrival_time: float) -> None:
        """Start a new clock epoch at a restarted device clock whose timestamp is now ``raw_t`` (us).

        Device times stay unique and increasing within the session (the store tells samples apart by them,
        as hipback v1 samples by their sequence numbers): when ``raw_t`` with the current epoch is not later
        than the last accepted sample, the epoch moves so that this sample follows the last one by the
        time that passed between their arrivals (``arrival_time``, s), at least one sample period. The
        device's own timestamps (``extra["timestamp_us"]``) are unchanged.
        """
        last = self._last_full
        if last is None or raw_t + self._epoch > last:
            return
        elapsed = arrival_time - self._last_arrival if self._last_arrival is not None else 0.0
        # arrival times are session seconds; anything not finite or not forward says nothing about the pause
        elapsed_us = int(elapsed * 1e6) if math.isfinite(elapsed) and 0.0 < elapsed < 1e9 else 0
        step = max(elapsed_us, math.ceil(self._period_us))
        self._epoch = last + step - raw_t

    def _hold(self, held: _Held) -> None:
        """Keep the sample of an out-of-order packet that :meth:`_resync` just noted (its count in
        ``_stray``): the chain it continues, or a new chain."""
        count = self._stray[1] if self._stray is not None else 0
        chain = self._held[-(count - 1):] if count > 1 else []
        self._held = [*chain, held][-(self.RESYNC_PACKETS - 1):]

    def _release_epoch(self, raw_t: int, arrival_time: float) -> list[int]:
        """Device times (us, unwrapped) of the samples kept aside and of the packet at ``raw_t`` (arrived at
        ``arrival_time``, s) that showed the clock restart, oldest first; the epoch then goes on from
        ``raw_t``.

        Each sample follows the one before by its own timestamp step (at most :attr:`RESYNC_STEP_US` or two
        periods, across a rollover of the counter too). The current epoch is kept when it puts the first of
        them after the last accepted sample; otherwise the first follows the last accepted one as
        :meth:`_new_epoch` places a restart (by the time between their arrivals)."""
        raws = [h.raw_t for h in self._held] + [raw_t]
        steps = [(b - a) % (1 << 32) for a, b in zip(raws, raws[1:], strict=False)]
        span = sum(steps)
        self._new_epoch(raw_t - span, self._held[0].arrival if self._held else arrival_time)
        fulls = [raw_t - span + self._epoch]
        for step in steps:
            fulls.append(fulls[-1] + step)
        return fulls

    def continue_from(self, previous: Decoder) -> None:
        """The clock epoch (rollovers and restarts) and the last sample's timestamp, device and arrival times
        of ``previous``, see :meth:`Decoder.continue_from`."""
        super().continue_from(previous)
        if isinstance(previous, MovellaDotDecoder):
            self._last_raw, self._epoch = previous._last_raw, previous._epoch
            self._last_full = previous._last_full
            self._last_arrival, self._last_time = previous._last_arrival, previous._last_time

    def _decode(self, data: bytes, arrival_time: float) -> DecodedSamples:
        m = self.mode
        if len(data) < m.size:
            return self._rejected(TRUNCATED, arrival_time)
        if len(data) > self._max_len:
            return self._rejected(BAD_LENGTH, arrival_time)
        values = self._struct.unpack_from(data)
        raw_t = values[0]
        # checked as Python floats, one numpy array per field at the end: a notification holds one sample,
        # and each numpy call on it costs more than the Python arithmetic
        fields: dict[str, tuple] = {f: values[i0:i1] for f, i0, i1 in self._layout}
        if not all(map(math.isfinite, itertools.chain.from_iterable(
                v for f, v in fields.items() if f in _FLOAT_FIELDS))):
            return self._rejected(BAD_VALUE, arrival_time)
        quat = None
        if "quat" in fields:
            quat = np.array([fields["quat"]], dtype=np.float64)
            flat = quat.ravel()
            norm = math.sqrt(flat.dot(flat))  # float(np.linalg.norm(quat)) without its wrapper
            if abs(norm - 1.0) > 0.01:
                return self._rejected(BAD_QUAT_NORM, arrival_time)
            quat = quat / norm
        acc_v = fields.get("acc")
        gyr_v = [v * DEG for v in fields["gyr"]] if "gyr" in fields else None
        if self._flat_out_of_range(acc_v, gyr_v):  # type: ignore[arg-type]
            return self._rejected(OUT_OF_RANGE, arrival_time)
        acc = np.array([acc_v], dtype=np.float64) if acc_v is not None else None
        gyr = np.array([gyr_v], dtype=np.float64) if gyr_v is not None else None
        status = fields["status"][0] if "status" in fields else None
        free_acc = np.array([fields["free_acc"]], dtype=np.float64) if "free_acc" in fields else None

        # timestamp: unwrap, duplicates, gaps
        gaps: list[SampleGap] = []
        mag = np.array([fields["mag"]], dtype=np.float64) * MAG_SCALE if "mag" in fields else None
        this = _Held(raw_t, arrival_time, quat, acc, gyr, mag, free_acc, status, data)
        fulls: list[int] | None = None  # device times of the samples kept aside and this one (a restart)
        if self._last_raw is None:
            full = raw_t + self._epoch
        else:
            diff = raw_t - self._last_raw
            restart = False  # RESYNC_PACKETS stale packets in a row continue one another: the clock restarted
            if diff < -(1 << 31):  # rollover of the u32 us counter
                self._epoch += 1 << 32
                diff += 1 << 32
            elif diff > (1 << 31):  # a late packet from before a rollover
                if not self._resync(raw_t):
                    return self._stale(this)
                restart = True
                diff = -self.RESTART_BACKWARDS_US  # the device's clock is this one now: as after a restart
            if diff == 0:
                if data == self._last_data:  # the same notification again
                    return self._rejected(DUPLICATE, arrival_time)
                # another sample with the last one's timestamp: a clock that restarted onto a value already
                # seen (or a corrupt timestamp); counted as a stale packet that may continue a new clock
                if not self._resync(raw_t):
                    return self._stale(this)
                restart = True
                diff = -self.RESTART_BACKWARDS_US
            if diff < 0:
                if -diff < self.RESTART_BACKWARDS_US and not restart:
                    if not self._resync(raw_t):
                        return self._stale(dataclasses.replace(this, behind=True))
                    restart = True
                self.stats.resets += 1  # the sensor clock restarted (reboot / re-sync)
                if restart:
                    fulls = self._release_epoch(raw_t, arrival_time)
                else:  # a second or more behind: a restart at once (what was kept aside was stale)
                    self._held = []
                    self._new_epoch(raw_t, arrival_time)
            elif self._continues_held(raw_t):
                # the packets kept aside were the first of a clock set back by less than it took them to
                # pass the last sample: this one follows the last of them by one period (a stale packet only
                # behind the last sample cannot be followed so closely by the stream it fell out of)
                self.stats.resets += 1
                fulls = self._release_epoch(raw_t, arrival_time)
            elif not self._plausible_step(diff, arrival_time):
                # further ahead than the time since the last packet allows: a corrupt timestamp or a jump of
                # the device clock, not a loss (the sample is kept; no gap of up to 2^31 us is made up)
                self.stats.resets += 1
            else:
                missing = int(round(diff / self._period_us)) - 1
                if missing > 0:
                    gap = SampleGap(after_seq=None, after_time_s=self._last_time, missing=missing)
                    gaps.append(gap)
                    self.stats.add_gap(gap)
            full = raw_t + self._epoch
        samples = [*self._held, this] if fulls is not None else [this]
        if len(samples) > 1:  # the packets kept aside are not refused after all
            rejected = self.stats.rejected
            rejected[OUT_OF_ORDER] -= len(samples) - 1
            if rejected[OUT_OF_ORDER] <= 0:
                del rejected[OUT_OF_ORDER]
            self.stats.recovered += len(samples) - 1
        self._held = []
        self._stray = None
        self._last_raw = raw_t
        self._last_data = data
        self._last_full = full
        self._last_arrival = arrival_time
        t = full * 1e-6
        self._last_time = t
        if fulls is not None:
            return self._released(samples, fulls, gaps)

        flags = StatusFlag.FUSION_ON if quat is not None else StatusFlag.NONE
        extra: dict[str, object] = {"timestamp_us": raw_t}
        if status is not None:
            flags |= status_flags(status)
            extra["status"] = status
        if free_acc is not None:
            extra["free_acc"] = free_acc
        return DecodedSamples(
            arrival_time=arrival_time,
            device_time_s=np.array([t]),
            seq=None,
            quat=quat,
            acc=acc,
            gyr=gyr,
            mag=mag,
            flags=flags,
            gaps=gaps,
            extra=extra,
            n=1,
        )

    @staticmethod
    def _released(samples: list[_Held], fulls: list[int], gaps: list[SampleGap]) -> DecodedSamples:
        """The samples kept aside and the packet that showed the clock restart (the last of ``samples``), at
        device times ``fulls`` (us): ``extra`` says how many were recovered and their own timestamps."""
        last = samples[-1]
        flags = StatusFlag.FUSION_ON if last.quat is not None else StatusFlag.NONE
        for h in samples:
            if h.status is not None:
                flags |= status_flags(h.status)
        extra: dict[str, object] = {
            "timestamp_us": last.raw_t,
            "recovered": len(samples) - 1,
            "timestamps_us": [h.raw_t for h in samples],
        }
        if last.status is not None:
            extra["status"] = last.status

        def stack(name: str) -> np.ndarray | None:
            parts = [getattr(h, name) for h in samples]
            return None if parts[0] is None else np.concatenate(parts)

        if last.free_acc is not None:
            extra["free_acc"] = stack("free_acc")
        return DecodedSamples(
            arrival_time=last.arrival,
            device_time_s=np.array([f * 1e-6 for f in fulls]),
            seq=None,
            quat=stack("quat"),
            acc=stack("acc"),
            gyr=stack("gyr"),
            mag=stack("mag"),
            flags=flags,
            gaps=gaps,
            extra=extra,
            n=len(samples),
        )

    def _continues_held(self, raw_t: int) -> bool:
        """True when samples are kept aside, each less than :attr:`RESTART_BACKWARDS_US` behind the last
        accepted sample, and a packet at ``raw_t`` (us), ahead of that sample, follows the last of them by one
        sample period (within half a period).

        The device clock was set back less than the time those packets took to pass the last sample. A packet
        whose own timestamp is corrupt (behind) cannot be followed so: the next packet of the stream is at
        least two periods after any timestamp up to the last sample's."""
        held = self._held
        if not held or not all(h.behind for h in held):
            return False
        step = (raw_t - held[-1].raw_t) % (1 << 32)
        return abs(step - self._period_us) <= 0.5 * self._period_us

    def _stale(self, held: _Held) -> DecodedSamples:
        """Refuse an out-of-order packet (``out_of_order``), keeping its sample aside in case it begins a
        restarted clock (:meth:`_hold`)."""
        self._hold(held)
        return self._rejected(OUT_OF_ORDER, held.arrival)


#: Fallback order per sensor kind: most data first (the DOT has no raw mode in the short payload)
_QUAT_ORDER = ("custom5", "custom3", "extended_quaternion", "complete_quaternion", "orientation_quaternion")
_RAW_ORDER = ("rate_quantities_mag", "rate_quantities")


class MovellaDotProfile(DeviceProfile):
    """Movella DOT: read firmware, rate and measuring state; stop if measuring, write the rate, start."""

    kind = "movella_dot"
    label = "Movella DOT"
    name_patterns = ("Xsens DOT", "Movella DOT")
    service_uuids = (MEASUREMENT_SERVICE_UUID, CONFIGURATION_SERVICE_UUID)
    modes = PAYLOAD_MODES
    default_mode = "custom5"  # quaternion + acc + gyr (needs ATT MTU >= 66 and firmware 3)
    rates_hz = LIVE_RATES_HZ
    #: Device Info (firmware), Device Control (rate: read-modify-write), Control (measuring already?)
    config_reads = (DEVICE_INFO_UUID, DEVICE_CONTROL_UUID, CONTROL_UUID)
    battery = BatterySource(char_uuid=BATTERY_UUID, parse=battery_percent, interval_s=30.0)
    char_names = {
        DEVICE_INFO_UUID: "Device Info",
        DEVICE_CONTROL_UUID: "Device Control",
        CONTROL_UUID: "Control",
        LONG_PAYLOAD_UUID: "Long payload",
        MEDIUM_PAYLOAD_UUID: "Medium payload",
        SHORT_PAYLOAD_UUID: "Short payload",
    }
    acc_range_ms2 = ACC_RANGE_MS2
    gyr_range_rads = GYR_RANGE_RADS

    def sensor_kind(self, mode: str | None = None):  # type: ignore[override]
        return "quat" if "quat" in PAYLOAD_MODES[self.mode_or_default(mode)].fields else "raw"

    def notify_uuids(self, mode: str | None = None) -> list[str]:
        return [PAYLOAD_MODES[self.mode_or_default(mode)].char_uuid]

    def parse_config(self, values: Mapping[str, bytes]) -> DeviceConfig:
        notes: list[str] = []
        firmware = None
        modes: tuple[str, ...] | None = None
        modes_reason = None
        info = values.get(DEVICE_INFO_UUID)
        if info is not None:
            try:
                firmware = str(parse_device_info(bytes(info))["firmware"])
            except (ValueError, struct.error) as exc:
                notes.append(f"Device Info unreadable ({exc})")
        if firmware is not None:
            major = int(firmware.split(".")[0])
            new = major >= CUSTOM5_MIN_FIRMWARE
            modes = tuple(m for m in PAYLOAD_MODES if new or m not in FIRMWARE3_MODES)
        else:
            # what every firmware has: asking an older DOT for a mode it lacks would stream nothing
            modes = tuple(m for m in PAYLOAD_MODES if m not in FIRMWARE3_MODES)
            modes_reason = (
                f"needs firmware {CUSTOM5_MIN_FIRMWARE} or later and the firmware version could not be read "
                "(Device Info)"
            )
            notes.append(
                "firmware version unknown: only the payload modes every firmware has "
                f"(not {', '.join(FIRMWARE3_MODES)})"
            )
        control = values.get(CONTROL_UUID)
        measuring = control is not None and _control_readable(bytes(control)) and control[1] == ACTION_START
        if control is not None and not _control_readable(bytes(control)):
            notes.append(
                f"Control unreadable ({bytes(control)[:8].hex(' ') or 'empty'}): measurement stopped before "
                "the output rate is written"
            )
        dc = values.get(DEVICE_CONTROL_UUID)
        if dc is not None and len(dc) != DEVICE_CONTROL_SIZE:
            notes.append(
                f"Device Control unreadable ({len(dc)} bytes, expected {DEVICE_CONTROL_SIZE}): the output "
                "rate is written alone"
            )
        return DeviceConfig(
            values=dict(values), firmware=firmware, modes=modes, measuring=measuring, notes=tuple(notes),
            modes_reason=modes_reason,
        )

    def min_mtu(self, mode: str | None = None) -> int:
        """The notification is the whole characteristic (20/40/63 bytes, zero padded) + the ATT header."""
        return PAYLOAD_LENGTH[PAYLOAD_MODES[self.mode_or_default(mode)].char_uuid] + ATT_HEADER

    def fallback_modes(self, mode: str) -> tuple[str, ...]:
        order = _QUAT_ORDER if self.sensor_kind(mode) == "quat" else _RAW_ORDER
        i = order.index(mode) if mode in order else -1
        return order[i + 1 :]

    def start_sequence(
        self,
        rate_hz: float,
        mode: str | None = None,
        current: DeviceConfig | Mapping[str, bytes] | None = None,
        *,
        max_batch: int | None = None,
    ) -> list[Write]:
        """[stop, if measuring] -> rate write (when 0x1002 was read) -> Control = start with the payload mode.

        Send after subscribing to :meth:`notify_uuids` (the spec's order). The output rate cannot change while
        measuring (after a reconnect the DOT may still be), so a measuring device is stopped first, and the
        rate is written before the start. ``max_batch`` does not apply (one sample per notification).
        """
        config = self._config(current)
        m = PAYLOAD_MODES[self.mode_or_default(mode)]
        writes = []
        control = config.values.get(CONTROL_UUID)
        if config.measuring:
            old = config.values[CONTROL_UUID][2]
            writes.append(
                Write(
                    CONTROL_UUID,
                    bytes([CONTROL_TYPE_MEASUREMENT, ACTION_STOP, old]),
                    True,
                    "stop (measuring)",
                )
            )
        elif control is not None and not _control_readable(bytes(control)):
            # whether it measures is unknown: a stop is harmless, a rate write while measuring is refused
            writes.append(
                Write(
                    CONTROL_UUID,
                    bytes([CONTROL_TYPE_MEASUREMENT, ACTION_STOP, m.mode_id]),
                    True,
                    "stop (measuring state unreadable)",
                )
            )
        dc = config.values.get(DEVICE_CONTROL_UUID)
        if dc is not None:
            if len(dc) == DEVICE_CONTROL_SIZE:
                value, note = device_control_write(bytes(dc), self.nearest_rate(rate_hz)), "read-modify-write"
            else:
                # a malformed read: only the output rate is visited, so the zeros elsewhere are not acted upon
                value = device_control_write(bytes(DEVICE_CONTROL_SIZE), self.nearest_rate(rate_hz))
                note = "the value read was malformed"
            writes.append(Write(DEVICE_CONTROL_UUID, value, True, f"output rate ({note})"))
        writes.append(
            Write(
                CONTROL_UUID,
                bytes([CONTROL_TYPE_MEASUREMENT, ACTION_START, m.mode_id]),
                True,
                f"start {m.name}",
            )
        )
        return writes

    def stop_sequence(self, mode: str | None = None) -> list[Write]:
        m = PAYLOAD_MODES[self.mode_or_default(mode)]
        return [Write(CONTROL_UUID, bytes([CONTROL_TYPE_MEASUREMENT, ACTION_STOP, m.mode_id]), True, "stop")]

    def make_decoder(
        self, rate_hz: float, mode: str | None = None, config: DeviceConfig | None = None
    ) -> MovellaDotDecoder:
        return MovellaDotDecoder(
            self.nearest_rate(rate_hz), self.mode_or_default(mode), **self._ranges(config)
        )


MOVELLA_DOT = MovellaDotProfile()

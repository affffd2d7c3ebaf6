"""The open "hipback IMU profile v1" for DIY sensors (spec: ``firmware_notes/hipback-imu-profile-v1.md``).

One notification = a 20-byte header + ``n_samples`` samples, little-endian::

    off  0  version   u8   1
    off  1  format    u8   bits 0-1 quaternion (0 none, 1 int16 Q14, 2 float32),
                           bit 2 acc, bit 3 gyr, bit 4 mag, bits 5-7 must be 0
    off  2  n_samples u8   >= 1
    off  3  battery   u8   0-100 %, 255 = unknown
    off  4  seq       u32  sequence number of the first sample (counts samples, wraps at 2^32)
    off  8  t0_us     u64  device time of the first sample (us)
    off 16  dt_us     u16  sample period (us)
    off 18  status    u16  bit 0 acc clip, 1 gyr clip, 2 mag valid, 3 fusion on, 4 time-synced, 5 low battery,
                           6 overrun, 7 charging, 8 mag clip, 12-13 fusion accuracy 0-3; others must be 0

Samples, in this order when present: quaternion (w, x, y, z; int16 / 16384 or float32), acc int16 (LSB 16 g /
32768), gyr int16 (LSB 2000 dps / 32768), mag int16 (LSB 1/16 uT). Quaternion sensor-to-world, world z-up.
"""

from __future__ import annotations

import functools
import math
import struct
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hipback.ingest.devices.base import (
    BAD_FORMAT,
    BAD_LENGTH,
    BAD_QUAT_NORM,
    BAD_VALUE,
    BAD_VERSION,
    DUPLICATE,
    OUT_OF_ORDER,
    OUT_OF_RANGE,
    TRUNCATED,
    BatterySource,
    DecodedSamples,
    Decoder,
    DeviceConfig,
    DeviceProfile,
    FloatArray,
    SampleGap,
    StatusFlag,
    Write,
)

# --- UUIDs (random base generated once for this project; never change them)
# -----------------------------------
_BASE = "-49d1-43f4-95ff-16609d6891a4"
SERVICE_UUID = "4deb0001" + _BASE
DATA_UUID = "4deb0002" + _BASE  # notify
CONTROL_UUID = "4deb0003" + _BASE  # write with response, read (status)
INFO_UUID = "4deb0004" + _BASE  # read
TIME_UUID = "4deb0005" + _BASE  # write + notify
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_INFO_SERVICE_UUID = "0000180a-0000-1000-8000-00805f9b34fb"

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBBBIQHH")
HEADER_SIZE = HEADER.size  # 20

# format byte
QUAT_NONE, QUAT_Q14, QUAT_F32 = 0, 1, 2
FMT_QUAT_MASK = 0x03
FMT_ACC = 1 << 2
FMT_GYR = 1 << 3
FMT_MAG = 1 << 4
FMT_RESERVED = 0xE0

# scales (fixed by the profile, independent of the configured sensor range)
Q14 = 1.0 / 16384.0
G = 9.80665
ACC_LSB = 16.0 * G / 32768.0  # m/s^2 per LSB
GYR_LSB = math.radians(2000.0 / 32768.0)  # rad/s per LSB
MAG_LSB = 1.0 / 16.0  # uT per LSB

# status word (device bits 0-8 equal StatusFlag bits)
STATUS_KNOWN = 0x01FF | 0x3000
STATUS_ACCURACY_SHIFT = 12

# control opcodes hipback sends (the profile document lists the others: heading reset, location, fusion)
OP_START = 0x01  # + rate_hz u16, format u8, max_batch u8 (0 = as many as fit)
OP_STOP = 0x02

# info characteristic
INFO = struct.Struct("<BBBBBBBBHHBB8HI16s")  # 50 bytes
#: INFO capability bits (offset 12)
CAP_Q14, CAP_QUAT_F32, CAP_ACC, CAP_GYR, CAP_MAG, CAP_FUSION = (1 << i for i in range(6))
IMU_CHIPS = {0: "other", 1: "BNO085", 2: "BNO086", 3: "ICM-20948", 4: "LSM6DSO", 5: "LSM6DSV"}
MCUS = {0: "other", 1: "nRF52840", 2: "ESP32", 3: "ESP32-S3", 4: "ESP32-C3"}

RATES_HZ = (25.0, 50.0, 100.0, 200.0, 400.0)

#: mode name -> format byte
MODES: dict[str, int] = {
    "quat": QUAT_Q14,
    "quat_raw": QUAT_Q14 | FMT_ACC | FMT_GYR,
    "quat_raw_mag": QUAT_Q14 | FMT_ACC | FMT_GYR | FMT_MAG,
    "quat_f32_raw": QUAT_F32 | FMT_ACC | FMT_GYR,
    "raw": FMT_ACC | FMT_GYR,
    "raw_mag": FMT_ACC | FMT_GYR | FMT_MAG,
}


def sample_size(fmt: int) -> int:
    """Bytes per sample for a format byte (raises ValueError for reserved bits)."""
    if fmt & FMT_RESERVED or (fmt & FMT_QUAT_MASK) == 3:
        raise ValueError(f"format byte 0x{fmt:02x} uses reserved bits")
    q = fmt & FMT_QUAT_MASK
    size = {QUAT_NONE: 0, QUAT_Q14: 8, QUAT_F32: 16}[q]
    size += 6 * sum(bool(fmt & b) for b in (FMT_ACC, FMT_GYR, FMT_MAG))
    return size


def format_capabilities(fmt: int) -> int:
    """INFO capability bits needed to stream format byte ``fmt`` (quaternions need on-device fusion)."""
    q = fmt & FMT_QUAT_MASK
    caps = {QUAT_NONE: 0, QUAT_Q14: CAP_Q14 | CAP_FUSION, QUAT_F32: CAP_QUAT_F32 | CAP_FUSION}[q]
    for bit, cap in ((FMT_ACC, CAP_ACC), (FMT_GYR, CAP_GYR), (FMT_MAG, CAP_MAG)):
        if fmt & bit:
            caps |= cap
    return caps


def battery_level(data: bytes) -> float:
    """Battery Level 0x2A19 (u8, 0-100 %) -> percent; raises ValueError when malformed."""
    if len(data) != 1 or data[0] > 100:
        raise ValueError("malformed Battery Level value")
    return float(data[0])


def sample_dtype(fmt: int) -> np.dtype:
    fields: list[tuple[str, str, tuple[int, ...]]] = []
    q = fmt & FMT_QUAT_MASK
    if q == QUAT_Q14:
        fields.append(("quat", "<i2", (4,)))
    elif q == QUAT_F32:
        fields.append(("quat", "<f4", (4,)))
    for bit, name in ((FMT_ACC, "acc"), (FMT_GYR, "gyr"), (FMT_MAG, "mag")):
        if fmt & bit:
            fields.append((name, "<i2", (3,)))
    return np.dtype(fields)


def start_command(rate_hz: float, fmt: int, max_batch: int = 0) -> bytes:
    """CONTROL START: ``01, rate_hz u16, format u8, max_batch u8`` (max_batch 0 = as many as fit)."""
    return struct.pack("<BHBB", OP_START, int(round(rate_hz)), fmt, max_batch)


def parse_info(data: bytes) -> dict[str, object]:
    """Decode the INFO characteristic (raises ValueError when malformed)."""
    if len(data) != INFO.size:
        raise ValueError(f"INFO value has {len(data)} bytes, expected {INFO.size}")
    (iv, pv, fw1, fw2, fw3, chip, mcu, acc_g, gyr_dps, mag_ut, caps, n_rates, *rest) = INFO.unpack(data)
    rates, serial, model = rest[:8], rest[8], rest[9]
    return {
        "info_version": iv,
        "protocol_version": pv,
        "firmware": f"{fw1}.{fw2}.{fw3}",
        "imu": IMU_CHIPS.get(chip, f"unknown({chip})"),
        "mcu": MCUS.get(mcu, f"unknown({mcu})"),
        "acc_range_g": acc_g,
        "gyr_range_dps": gyr_dps,
        "mag_range_ut": mag_ut,
        "capabilities": caps,
        "rates_hz": [float(r) for r in rates[: min(n_rates, 8)]],
        "serial": serial,
        "model": model.rstrip(b"\0").decode("utf-8", "replace"),
    }


@dataclass(frozen=True)
class _Layout:
    """How one format byte's samples are laid out: ``size`` bytes per sample, numpy ``dtype`` to read them
    with, and ``width`` int16 values per sample when every value is an int16 (0: float32 quaternions, read
    as records); which fields are present."""

    size: int
    dtype: np.dtype
    width: int
    quat: bool
    acc: bool
    gyr: bool
    mag: bool

    @classmethod
    def of(cls, fmt: int) -> _Layout:
        """The layout of format byte ``fmt`` (raises ValueError for reserved bits)."""
        size = sample_size(fmt)
        q = fmt & FMT_QUAT_MASK
        width = 0 if q == QUAT_F32 else size // 2
        dtype = sample_dtype(fmt) if q == QUAT_F32 else np.dtype("<i2")
        return cls(size, dtype, width, q != QUAT_NONE, bool(fmt & FMT_ACC), bool(fmt & FMT_GYR),
                   bool(fmt & FMT_MAG))


#: (quat, acc, gyr, mag) of a packet's samples: (N, 4) and (N, 3) arrays, None when not in the format
_Values = tuple[FloatArray | None, FloatArray | None, FloatArray | None, FloatArray | None]


@functools.cache
def _int16s(count: int) -> struct.Struct:
    """``count`` little-endian int16 values (one struct per count: at most ``SMALL_PACKET`` x 13 of them)."""
    return struct.Struct(f"<{count}h")


@functools.cache
def _vector_index(width: int, n: int, col: int) -> list[int]:
    """Positions of a vector field (3 values from column ``col``) in ``n`` samples of ``width`` int16 values,
    row after row (one list per layout, count and column: a few hundred at most)."""
    return [r * width + col + j for r in range(n) for j in range(3)]


#: status flags by (device status bits 0-8, low battery): IntFlag construction is slow per packet
_FLAGS: dict[tuple[int, bool], StatusFlag] = {}


def _status_flags(bits: int, low_battery: bool) -> StatusFlag:
    """The :class:`StatusFlag` of device status bits 0-8 (``bits``) plus LOW_BATTERY (at most 1024 kept)."""
    key = (bits, low_battery)
    flags = _FLAGS.get(key)
    if flags is None:
        flags = StatusFlag(bits)
        if low_battery:
            flags |= StatusFlag.LOW_BATTERY
        _FLAGS[key] = flags
    return flags


#: packets of up to this many samples (of int16 values) are decoded on Python floats: the same values as
#: numpy's, computed with the same operations in the same order (numpy's fixed cost per call dominates on a
#: few values)
SMALL_PACKET = 8
#: ... and packets of up to this many samples get their sample times from Python floats (the same way)
SMALL_TIMES = 16

#: device times (us) from here on cannot be told apart to the microsecond as float seconds (2^53 us, 285
#: years): a device clock this far on is corrupt, and its samples would collapse onto one time
MAX_DEVICE_TIME_US = 1 << 53


class HipbackV1Decoder(Decoder):
    """Decoder of hipback v1 DATA notifications: validates version, format, length, values and sequence.

    A packet whose device time does not advance past the last accepted sample while the sequence goes on is
    accepted once (the device clock was stepped back, e.g. by a time sync) and refused as out of order when
    the packet before was such a step too (a device clock that stands still), until packets that continue one
    another show the clock running again (resynchronised as below).

    A packet further ahead of the expected sequence number than its device time or the arrival times back
    (see :meth:`_plausible_gap`) has a corrupt sequence number: it is refused as ``bad_value`` (no gap is
    recorded and the numbering does not move), unless packets that continue one another follow it
    (resynchronised as below).

    A packet behind the expected sequence number with a later device time is out of order; when
    :attr:`RESYNC_PACKETS` such packets in a row continue one another (sequence numbers and device times
    advancing), the device's stream is the one they continue (an earlier packet with a corrupt sequence number
    had moved the expectation on): the decoder follows it as after a restart (counted in ``resets``,
    numbering continues).
    """

    kind = "hipback_v1"
    #: consecutive out-of-order packets that continue one another and so resynchronise the decoder
    RESYNC_PACKETS = 3
    #: a sequence gap may span this fraction more than the device time that passed over it ...
    GAP_TIME_SLACK = 0.1
    #: ... and this much more (us of samples), for a device clock stepped back meanwhile, as far as the
    #: arrivals back it (:attr:`GAP_ARRIVAL_SLACK_S`)
    MAX_UNTIMED_GAP_US = 10_000_000
    #: lost samples beyond the device time must fit the time between the arrivals plus this (s): the packet
    #: before may have been delayed that much more than this one (a host stall that ended in a burst)
    GAP_ARRIVAL_SLACK_S = 0.1
    #: no gap is longer (us of samples): one day
    MAX_GAP_US = 86_400_000_000
    #: longest a notification can be delayed (s): no stall outlasts the BLE supervision timeout (at most 32 s)
    #: before the link drops
    MAX_LATENCY_S = 32.0
    #: the device clock's rate error bound against the host's (fraction)
    MAX_DRIFT = 1e-3

    def __init__(
        self, rate_hz: float, *, acc_range_ms2: float | None = None, gyr_range_rads: float | None = None
    ) -> None:
        super().__init__(rate_hz, acc_range_ms2=acc_range_ms2, gyr_range_rads=gyr_range_rads)
        self._next_seq: int | None = None  # expected (unwrapped) seq of the next packet
        self._dev_next = 0  # the same as the device sends it (u32)
        self._last_seq: int | None = None
        self._last_time: float | None = None
        self._dtypes: dict[int, _Layout] = {}  # by format byte (valid ones only: at most 24)
        self._recent: deque[int] = deque(maxlen=64)  # hashes of recent packets, to recognise duplicates
        # out-of-order packets that continue one another: (expected device seq of the next one, device time of
        # the last sample in us, how many in a row); RESYNC_PACKETS of them are the device's stream now
        self._stray: tuple[int, int, int] | None = None
        self._last_end_us: int | None = None  # device time of the last accepted sample (us)
        self._last_arrival: float | None = None  # arrival time of the last accepted packet (s)
        self._stepped = False  # the last accepted packet's device time did not advance past the one before

    def continue_from(self, previous: Decoder) -> None:
        """The sequence numbering (unwrapped, continued over device restarts) and the last sample's device
        and arrival times of ``previous``, see :meth:`Decoder.continue_from`."""
        super().continue_from(previous)
        if isinstance(previous, HipbackV1Decoder):
            self._next_seq, self._dev_next = previous._next_seq, previous._dev_next
            self._last_seq = previous._last_seq
            self._last_time, self._last_end_us = previous._last_time, previous._last_end_us
            self._last_arrival, self._stepped = previous._last_arrival, previous._stepped

    def _decode(self, data: bytes, arrival_time: float) -> DecodedSamples:
        if len(data) < HEADER_SIZE:
            return self._rejected(TRUNCATED, arrival_time)
        version, fmt, n, battery, seq, t0_us, dt_us, status = HEADER.unpack_from(data)
        if version != PROTOCOL_VERSION:
            return self._rejected(BAD_VERSION, arrival_time)
        layout = self._dtypes.get(fmt)
        if layout is None:
            try:
                layout = _Layout.of(fmt)
            except ValueError:
                return self._rejected(BAD_FORMAT, arrival_time)
        size = layout.size
        if (
            size == 0
            # a quaternion, or acc and gyr to fuse: what every mode of the profile streams
            or not (fmt & FMT_QUAT_MASK or (fmt & FMT_ACC and fmt & FMT_GYR))
            or n == 0
            or dt_us == 0
            or status & ~STATUS_KNOWN & 0xFFFF
            or (battery > 100 and battery != 255)
        ):
            return self._rejected(BAD_FORMAT, arrival_time)
        expected = HEADER_SIZE + n * size
        if len(data) < expected:
            return self._rejected(TRUNCATED, arrival_time)
        if len(data) > expected:
            return self._rejected(BAD_LENGTH, arrival_time)
        t_end_us = t0_us + (n - 1) * dt_us
        if t_end_us >= MAX_DEVICE_TIME_US:
            return self._rejected(BAD_VALUE, arrival_time)
        self._dtypes[fmt] = layout  # (kept for the formats of packets that passed the header checks)

        if layout.width and n <= SMALL_PACKET:
            values = self._small_values(data, n, layout)
            if isinstance(values, str):
                return self._rejected(values, arrival_time)
            quat, acc, gyr, mag = values
        else:
            values = self._values(data, n, layout)
            if isinstance(values, str):
                return self._rejected(values, arrival_time)
            quat, acc, gyr, mag = values

        # sequence: unwrap the u32 against the expected value (full = device seq + base, continuous over wraps
        # and device restarts, so stored sequence numbers stay unique within a session)
        gaps: list[SampleGap] = []
        t0 = t0_us * 1e-6
        restarted = False
        if self._next_seq is None:
            full_seq = seq
        else:
            delta = (seq - self._dev_next) & 0xFFFFFFFF
            if delta >= 1 << 31:
                delta -= 1 << 32
            if delta < 0:
                if hash(data) in self._recent:
                    return self._rejected(DUPLICATE, arrival_time)
                if self._last_time is not None and t0 < self._last_time:
                    # sequence and device clock both went back: the device restarted; continue the numbering
                    self.stats.resets += 1
                    delta = 0
                    restarted = True
                elif self._resync(seq, n, t0_us, t_end_us):
                    self.stats.resets += 1
                    delta = 0
                    restarted = True
                else:
                    return self._rejected(OUT_OF_ORDER, arrival_time)
            elif delta > 0 and not self._plausible_gap(delta, t0_us, dt_us, arrival_time):
                # a sequence number far ahead of what the device clock allows (a corrupt header): this packet
                # is refused, unless packets that continue one another show the device numbering anew
                if not self._resync(seq, n, t0_us, t_end_us):
                    return self._rejected(BAD_VALUE, arrival_time)
                self.stats.resets += 1
                delta = 0
                restarted = True
            # the sequence goes on but the device clock does not: once is a step of the clock (a time sync
            # may set it back), twice in a row a clock that stands still, whose times would all collapse
            # (unless such packets continue one another: the clock runs again, on a new timeline)
            stepped = not restarted and self._last_end_us is not None and t0_us <= self._last_end_us
            if stepped and self._stepped:
                if not self._resync(seq, n, t0_us, t_end_us):
                    return self._rejected(OUT_OF_ORDER, arrival_time)
                self.stats.resets += 1
                stepped = False
            self._stepped = stepped
            full_seq = self._next_seq + delta
            if delta > 0:
                gap = SampleGap(after_seq=self._last_seq, after_time_s=self._last_time, missing=delta)
                gaps.append(gap)
                self.stats.add_gap(gap)
        self._stray = None
        self._recent.append(hash(data))
        seqs = np.arange(full_seq, full_seq + n, dtype=np.int64)
        if n <= SMALL_TIMES:  # the same IEEE operations on Python floats: fewer numpy calls on a few values
            t = np.array([(t0_us + dt_us * float(i)) * 1e-6 for i in range(n)])
        else:
            t = (t0_us + dt_us * np.arange(n, dtype=np.float64)) * 1e-6
        self._next_seq = full_seq + n
        self._dev_next = (seq + n) & 0xFFFFFFFF
        self._last_seq = full_seq + n - 1
        self._last_time = float(t[-1])
        self._last_end_us = t_end_us
        self._last_arrival = arrival_time

        flags = _status_flags(status & 0x01FF, battery != 255 and battery <= 15)
        return DecodedSamples(
            arrival_time=arrival_time,
            device_time_s=t,
            seq=seqs,
            quat=quat,
            acc=acc,
            gyr=gyr,
            mag=mag,
            flags=flags,
            battery_pct=None if battery == 255 else float(battery),
            gaps=gaps,
            extra={"fusion_accuracy": (status >> STATUS_ACCURACY_SHIFT) & 0x3, "dt_us": dt_us},
            n=n,
        )


    def _values(self, data: bytes, n: int, layout: _Layout) -> _Values | str:
        """The ``n`` samples of a valid packet as (quat, acc, gyr, mag) arrays (None: not in the format), or
        the reason to refuse the packet."""
        rec = np.frombuffer(data, dtype=layout.dtype, count=n * (layout.width or 1), offset=HEADER_SIZE)
        quat = acc = gyr = mag = None
        if layout.width:  # every value an int16: one conversion of the packet, then one scaling per field
            values = rec.reshape(n, layout.width).astype(np.float64)
            col = 0
            if layout.quat:
                quat = values[:, 0:4] * Q14  # int16 values: always finite
                col = 4
                norm = np.sqrt(np.add.reduce(quat * quat, axis=1))  # np.linalg.norm(quat, axis=1)
                if (np.abs(norm - 1.0) > 0.02).any():
                    return BAD_QUAT_NORM
                quat /= norm[:, None]
            if layout.acc:
                acc = values[:, col : col + 3] * ACC_LSB
                col += 3
            if layout.gyr:
                gyr = values[:, col : col + 3] * GYR_LSB
                col += 3
            if layout.mag:
                mag = values[:, col : col + 3] * MAG_LSB
        else:  # float32 quaternions and int16 vectors
            with np.errstate(invalid="ignore"):  # a signalling NaN is refused below, not warned about
                quat = rec["quat"].astype(np.float64)
            if not np.isfinite(quat).all():
                return BAD_VALUE
            norm = np.sqrt(np.add.reduce(quat * quat, axis=1))
            if (np.abs(norm - 1.0) > 0.01).any():
                return BAD_QUAT_NORM
            quat /= norm[:, None]
            if layout.acc:
                acc = rec["acc"].astype(np.float64) * ACC_LSB
            if layout.gyr:
                gyr = rec["gyr"].astype(np.float64) * GYR_LSB
            if layout.mag:
                mag = rec["mag"].astype(np.float64) * MAG_LSB
        if self._out_of_range(acc, gyr):
            return OUT_OF_RANGE
        return quat, acc, gyr, mag

    def _small_values(self, data: bytes, n: int, layout: _Layout) -> _Values | str:
        """:meth:`_values` of a packet of up to ``SMALL_PACKET`` samples of int16 values: the same IEEE
        operations on Python floats (numpy's cost per call dominates on a few values), the same refusals.
        The squares of int16 / 16384 values and their sums are exact in float64, so the order in which
        numpy adds a row's four squares cannot change the norm."""
        w = layout.width
        ints = _int16s(n * w).unpack_from(data, HEADER_SIZE)
        quat = acc = gyr = mag = None
        col = 0
        if layout.quat:
            quats = []
            for i in range(0, n * w, w):
                qw, qx, qy, qz = ints[i] * Q14, ints[i + 1] * Q14, ints[i + 2] * Q14, ints[i + 3] * Q14
                norm = math.sqrt(((qw * qw + qx * qx) + qy * qy) + qz * qz)
                if abs(norm - 1.0) > 0.02:
                    return BAD_QUAT_NORM
                quats.append((qw / norm, qx / norm, qy / norm, qz / norm))
            col = 4
        # the vectors as flat lists, row after row (x, y, z of sample 0, then of sample 1, ...)
        accs = gyrs = mags = None
        if layout.acc:
            accs = [ints[i] * ACC_LSB for i in _vector_index(w, n, col)]
            col += 3
        if layout.gyr:
            gyrs = [ints[i] * GYR_LSB for i in _vector_index(w, n, col)]
            col += 3
        if layout.mag:
            mags = [ints[i] * MAG_LSB for i in _vector_index(w, n, col)]
        if self._flat_out_of_range(accs, gyrs):
            return OUT_OF_RANGE
        if layout.quat:
            quat = np.array(quats)
        if accs is not None:
            acc = np.array(accs).reshape(n, 3)
        if gyrs is not None:
            gyr = np.array(gyrs).reshape(n, 3)
        if mags is not None:
            mag = np.array(mags).reshape(n, 3)
        return quat, acc, gyr, mag

    def _plausible_gap(self, delta: int, t0_us: int, dt_us: int, arrival_time: float) -> bool:
        """True when ``delta`` samples lost before a packet starting at device time ``t0_us`` (us, sample
        period ``dt_us``) that arrived at ``arrival_time`` (s) are backed by the time that passed.

        The lost samples are timed at ``dt_us``, but at least half the nominal period (a corrupt ``dt_us`` of
        1 us would otherwise make millions fit). They are a loss when:

        - the device clock backs them: they span no more than it advanced since the last accepted sample
          (plus :attr:`GAP_TIME_SLACK` of it); or the arrivals do: a device clock stepped back meanwhile (a
          time sync) advanced less, so up to :attr:`MAX_UNTIMED_GAP_US` more may be lost as far as the time
          between the arrivals (with the drift bound, plus :attr:`GAP_ARRIVAL_SLACK_S`) holds it;
        - the arrivals do not refute them: no more than the arrivals advanced (with the drift bound) plus the
          longest delay a packet can have had (:attr:`MAX_LATENCY_S`);
        - they span at most :attr:`MAX_GAP_US`.

        A sequence number ahead that nothing backs is corrupt (the caller refuses the packet): a corrupt
        number (up to 2^31 - 1 ahead) never becomes a gap of made-up samples.
        """
        span_us = delta * max(dt_us, 0.5e6 / self.rate_hz)
        if span_us > self.MAX_GAP_US:
            return False
        last = self._last_end_us
        timed_us = max(t0_us - last - dt_us, 0) if last is not None else 0
        device_us = timed_us * (1.0 + self.GAP_TIME_SLACK)
        if span_us > device_us + self.MAX_UNTIMED_GAP_US:
            return False
        elapsed = arrival_time - self._last_arrival if self._last_arrival is not None else math.inf
        known = math.isfinite(elapsed)  # arrival times say something about the time between the packets
        arrivals_s = max(elapsed, 0.0) * (1.0 + self.MAX_DRIFT) if known else math.inf
        if span_us * 1e-6 > arrivals_s + self.MAX_LATENCY_S:
            return False
        if span_us <= device_us:
            return True
        return known and span_us * 1e-6 <= arrivals_s + self.GAP_ARRIVAL_SLACK_S

    def _resync(self, seq: int, n: int, t0_us: int, t_end_us: int) -> bool:
        """Note an out-of-order packet (device ``seq`` of its first sample, ``n`` samples, device times
        ``t0_us``..``t_end_us``); True when it is the :attr:`RESYNC_PACKETS`-th in a row that continues the
        one before (its sequence number follows on, its device time is later)."""
        stray = self._stray
        count = 1
        if stray is not None and seq == stray[0] and t0_us > stray[1]:
            count = stray[2] + 1
        if count >= self.RESYNC_PACKETS:
            self._stray = None
            return True
        self._stray = ((seq + n) & 0xFFFFFFFF, t_end_us, count)
        return False


class HipbackV1Profile(DeviceProfile):
    """hipback IMU profile v1: INFO says firmware, capabilities, rates and ranges; one CONTROL write starts
    streaming (rate, format, batch cap); battery from 0x2A19 and every packet header."""

    kind = "hipback_v1"
    label = "hipback IMU profile v1"
    name_patterns = ("hipback",)
    service_uuids = (SERVICE_UUID,)
    modes = MODES
    default_mode = "quat_raw"
    rates_hz = RATES_HZ
    config_reads = (INFO_UUID,)
    battery = BatterySource(char_uuid=BATTERY_LEVEL_UUID, parse=battery_level, interval_s=30.0)
    char_names = {INFO_UUID: "INFO", DATA_UUID: "DATA", CONTROL_UUID: "CONTROL"}
    acc_range_ms2 = 16.0 * G  # the fixed scale of the profile's int16 acc
    gyr_range_rads = math.radians(2000.0)

    def sensor_kind(self, mode: str | None = None):  # type: ignore[override]
        return "quat" if MODES[self.mode_or_default(mode)] & FMT_QUAT_MASK else "raw"

    def notify_uuids(self, mode: str | None = None) -> list[str]:
        return [DATA_UUID]

    def parse_config(self, values: Mapping[str, bytes]) -> DeviceConfig:
        raw = values.get(INFO_UUID)
        if raw is None:
            return DeviceConfig(values=dict(values), notes=("INFO not read: profile defaults used",))
        try:
            info = parse_info(bytes(raw))
        except (ValueError, struct.error) as exc:
            return DeviceConfig(
                values=dict(values), notes=(f"INFO unreadable ({exc}): profile defaults used",)
            )
        caps = int(info["capabilities"])  # type: ignore[call-overload]
        offered = tuple(m for m, fmt in MODES.items() if format_capabilities(fmt) & ~caps == 0)
        rates = tuple(r for r in info["rates_hz"] if r > 0) or None  # type: ignore[attr-defined]
        acc_g, gyr_dps = float(info["acc_range_g"]), float(info["gyr_range_dps"])  # type: ignore[arg-type]
        return DeviceConfig(
            values=dict(values),
            firmware=str(info["firmware"]),
            modes=offered,
            rates_hz=rates,
            # the packet scale caps what can be sent at 16 g / 2000 deg/s whatever the configured range
            acc_range_ms2=min(acc_g, 16.0) * G if acc_g > 0 else None,
            gyr_range_rads=math.radians(min(gyr_dps, 2000.0)) if gyr_dps > 0 else None,
        )

    def min_mtu(self, mode: str | None = None) -> int:
        """Header + one sample + the 3-byte ATT header (the firmware must not stream below it)."""
        return 3 + HEADER_SIZE + sample_size(MODES[self.mode_or_default(mode)])

    def fallback_modes(self, mode: str) -> tuple[str, ...]:
        fmt = MODES[mode]
        smaller = [
            m
            for m, f in MODES.items()
            if m != mode
            and bool(f & FMT_QUAT_MASK) == bool(fmt & FMT_QUAT_MASK)
            and sample_size(f) < sample_size(fmt)
        ]
        return tuple(sorted(smaller, key=lambda m: -sample_size(MODES[m])))

    def start_sequence(
        self,
        rate_hz: float,
        mode: str | None = None,
        current: DeviceConfig | Mapping[str, bytes] | None = None,
        *,
        max_batch: int | None = None,
    ) -> list[Write]:
        """One CONTROL START (``01, rate u16, format u8, max_batch u8``); the device re-confirms when it is
        already streaming with the same settings (a reconnect), so no stop is needed first."""
        config = self._config(current)
        fmt = MODES[self.mode_or_default(mode)]
        batch = min(max(int(max_batch or 0), 0), 255)
        start = start_command(self.nearest_rate(rate_hz, config), fmt, batch)
        return [Write(CONTROL_UUID, start, True, "start streaming")]

    def stop_sequence(self, mode: str | None = None) -> list[Write]:
        return [Write(CONTROL_UUID, bytes([OP_STOP]), True, "stop streaming")]

    def make_decoder(
        self, rate_hz: float, mode: str | None = None, config: DeviceConfig | None = None
    ) -> HipbackV1Decoder:
        return HipbackV1Decoder(self.nearest_rate(rate_hz, config), **self._ranges(config))


HIPBACK_V1 = HipbackV1Profile()

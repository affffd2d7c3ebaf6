"""Seeded fuzzing of the BLE packet boundary: notifications of every device protocol (hipback v1, Movella DOT,
WitMotion) in every payload mode, and the configuration, info, battery and register replies their profiles
parse.

Used by ``tests/test_fuzz_packets.py`` (bounded, seeded) and ``bench/fuzz_campaign.py`` (boundaries
``ble:hipback_v1``, ``ble:movella_dot``, ``ble:witmotion`` and ``ble:long``). A case builds a clean stream
with the simulator's encoders (``hipback.simulator.devices``: the byte layouts the tests check against the
vendor documents), mutates it with a :class:`random.Random` (bit flips, truncation, extension, splicing,
duplicates, replays, reordering, drops, sequence jumps and wraparounds, device-time jumps, extreme and
out-of-datasheet values, header fields, empty, huge and random notifications, coalesced and split
notifications, stalled and bursty arrival times) and then appends a clean tail that continues the stream.

Every notification goes through the path a live session takes after it arrives:
:meth:`hipback.ingest.session.runner.SessionRunner._handle_batch` (decoder ``feed``, rejection counts,
battery level, :class:`~hipback.ingest.clock.ClockModel` ``map``, gap records) and its
:class:`~hipback.ingest.session.writer.StoreWriter` into a temporary :class:`~hipback.ingest.store.LocalStore`
(flushed at random points, as the writer's 20 ms timer would). Live processing is off (``process=False``).

The property, checked after every notification (:class:`PacketCheck`):

- no exception escapes, and none is swallowed inside a decoder's parser (``Decoder.feed`` turns a parser
  exception into ``bad_format``: the harness reports it, as it would hide a bug);
- a notification yields samples or is counted: a refused one names its reason in the decoder's and the
  session's statistics (WitMotion, which re-frames a byte stream, may instead keep bytes pending, parse a
  register reply, or count junk, truncated frames or impossible values);
- every accepted sample is finite and within the sensor's datasheet range
  (:data:`hipback.ingest.files.assemble.FULL_SCALE`, plus the 5 % margin, and the smaller full scale the
  device itself reported), its quaternion is a unit quaternion, its magnetometer value within
  :data:`~hipback.ingest.files.assemble.MAG_LIMIT`, its device times finite and increasing within the
  packet (and, without sequence numbers, across packets, restarts of the device clock included), its sequence
  numbers increasing over the whole stream;
- the clock model's times are finite, strictly increasing within the sensor (but right after it re-anchored
  on a forward jump of the device clock) and distinct as UTC seconds, never later than the packet's
  arrival (1 us per sample of tolerance for the nudge that keeps them increasing) and not more than
  :data:`MAX_LAG_S` plus the packet's span before it;
- a notification carries at most the samples it can hold (:data:`MAX_SAMPLES`), plus, for a Movella DOT,
  the samples of the packets just refused as out of order that it shows to have begun a restarted device
  clock (``extra["recovered"]``, at most ``RESYNC_PACKETS - 1``: no more than were refused so since the last
  accepted packet; the session's live count of ``out_of_order`` and the decoder's no longer count them), and
  a gap the decoder reports before it at most the samples of the time since the packet
  before (:data:`MAX_GAP_LATENCY_S`);
- a clean packet (values untouched) that is accepted decodes to exactly what a clean decoder made of it, and
  the decoder recovers from the garbage: of the last :data:`TAIL_MUST_PASS` notifications of the clean tail,
  every one a clean decoder accepts is accepted;
- decoder buffers stay bounded (:func:`buffer_sizes`, :data:`BUFFER_BOUNDS`);
- at the end, the store holds exactly the samples and gaps the session counted (finite gaps, each of at
  least one sample), no write failed, and :meth:`LocalStore.load_recording` reads the session back without
  leaving out a row. The store keys samples without sequence numbers by device time, which a decoder keeps
  increasing over restarts of the device clock: any sample the store skips as a duplicate is a failure.

Reply cases feed mutated configuration / battery values to ``parse_config`` (never raises), the battery
parser (a ``ValueError``, which the session logs and ignores, or a level 0-100 %), ``choose_mode`` (a
:class:`~hipback.ingest.devices.DeviceSetupError`, which the session retries, or a mode) and
``start_sequence`` (writes of bytes for whatever was read: the values come back at every connection attempt,
so a refusal would fail set-up for ever).

Units: arrival and sample times in s (session timeline, then UTC in the store), acc m/s^2, gyr rad/s.
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from hipback.ingest.clock import MAX_EVENT_RECORDS, ClockModel
from hipback.ingest.devices import PROFILES, DecodedSamples, Decoder, DeviceSetupError
from hipback.ingest.devices import hipback_v1 as hb
from hipback.ingest.devices import movella_dot as md
from hipback.ingest.devices import witmotion as wm
from hipback.ingest.devices.base import MAX_GAP_RECORDS
from hipback.ingest.files.assemble import FULL_SCALE, MAG_LIMIT, RANGE_MARGIN
from hipback.ingest.session.runner import SessionRunner, _Link
from hipback.ingest.session.virtual import virtual_config
from hipback.ingest.session.writer import StoreWriter
from hipback.ingest.store import LocalStore
from hipback.processing import quaternion as qm
from hipback.simulator.devices import (
    DeviceClock,
    HipbackEncoder,
    HipbackState,
    MovellaEncoder,
    MovellaState,
    WitMotionEncoder,
    WitMotionState,
)
from tests.fuzz_boundaries import Broken

KINDS = ("hipback_v1", "movella_dot", "witmotion")
#: clean notifications appended after the garbage; the last TAIL_MUST_PASS of them must be accepted
TAIL = 40
TAIL_MUST_PASS = 10
#: the last sample of a packet may not be timed more than this before the packet's arrival (s): the longest
#: stall a BLE link survives (its supervision timeout, at most 32 s; the clock model's ``max_latency_s``) and
#: some slack; the first sample may be earlier by the packet's span, (n - 1) sample periods
MAX_LAG_S = 40.0
#: longest a notification can be delayed (s): the BLE supervision timeout's upper bound
MAX_GAP_LATENCY_S = 32.0
#: the largest sizes decoder and clock buffers may reach, whatever the stream (entries)
BUFFER_BOUNDS = {
    "hipback_v1.recent": 64,  # hashes of the last packets (duplicate detection)
    "hipback_v1.dtypes": 24,  # one numpy dtype per valid format byte
    "witmotion.buf": wm.FRAME_SIZE - 1,  # bytes of a frame still incomplete
    "movella_dot.held": md.MovellaDotDecoder.RESYNC_PACKETS - 1,  # samples kept aside (a clock restart?)
    "clock.bins": 125,  # per-second minima over the 120 s window
    "clock.suspects": 2_000,  # late packets waiting to confirm a jump
    "arrival.recent": 256,
    "arrival.pending": 5_000,  # packets of an undecided arrival gap (6 s of a 400 Hz stream at most)
    # event records (gaps, clock jumps) kept in memory: the most recent; counters count them all
    "decoder.gap_records": MAX_GAP_RECORDS,
    "clock.jump_records": MAX_EVENT_RECORDS,
    "arrival.gap_records": MAX_EVENT_RECORDS,
}
#: the most samples one notification can carry: hipback v1's count is a u8; a Movella DOT notification holds
#: one; WitMotion frames are 20 bytes and a notification at most 1024 (twice the 512 of one ATT value)
MAX_SAMPLES = {"hipback_v1": 255, "movella_dot": 1, "witmotion": 1024 // wm.FRAME_SIZE}
G = 9.80665
INT16 = (-32768, -32767, -1, 0, 1, 16384, 16385, 32767)
#: float32 values for the Movella float fields: not finite, beyond any range, at and beyond the full scale
FLOATS = (math.nan, -math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 1e-45, -0.0, 0.0, 1.0, 2.0,
          16 * G * 1.04, 16 * G * 1.06, -16 * G * 1.2, 1e6, 2000 * 1.04, 2000 * 1.06, -2500.0, 1e30)


# -- clean streams ------------------------------------------------------------------------------------------


def motion(rng: random.Random, n: int, rate: float, t0: float = 0.0) -> dict[str, np.ndarray]:
    """Smooth random motion of ``n`` samples from ``t0`` (s): quat (N, 4), acc m/s^2, gyr rad/s, mag (uT
    for hipback, a.u. for the DOT); now and then beyond the full scale (the encoders saturate, as sensors
    do)."""
    g = np.random.default_rng(rng.getrandbits(32))
    t = t0 + np.arange(n) / rate
    rot = np.cumsum(g.normal(scale=0.03, size=(n, 3)), axis=0) + g.normal(size=3)
    big = 40.0 if rng.random() < 0.1 else 4.0
    acc = g.normal(scale=big, size=(n, 3)) + [0.0, 0.0, G]
    gyr = g.normal(scale=big / 2, size=(n, 3))
    mag = g.normal(scale=30.0, size=(n, 3)) / (30.0 if rng.random() < 0.5 else 1.0)
    return {"t": t, "quat": qm.from_rotvec(rot), "acc": acc, "gyr": gyr, "mag": mag}


@dataclass
class Stream:
    """A clean stream of one sensor: its profile's mode and rate, the device's configuration reads, and a
    generator of notifications (``more(n_samples)`` continues the same device: sequence numbers and clock)."""

    kind: str
    mode: str
    rate_hz: float
    mtu: int
    values: dict[str, bytes]
    more: Callable[[int], list[bytes]]
    replies: dict[int, bytes] = field(default_factory=dict)  # WitMotion register replies by register
    per_packet: int = 1  # samples per notification


def clean_stream(kind: str, rng: random.Random, mode: str | None = None, mtu: int | None = None) -> Stream:
    """A clean stream of ``kind`` in ``mode`` (default: one at random) at a random rate, batch size and
    device clock (offsets near the wrap of the device's counters now and then)."""
    profile = PROFILES[kind]
    mode = mode or rng.choice(list(profile.modes))
    rate = float(rng.choice(profile.rates_hz))
    cursor = {"t": 0.0}
    if kind == "hipback_v1":
        mtu = mtu or rng.choice([profile.min_mtu(mode), 64, 100, 185, 247, 517])
        offset = rng.choice([0.0, 12.5, 86_400.0 * 30, 2.0**52 * 1e-6 * rng.random()])
        state = HipbackState(clock=DeviceClock(offset_s=offset, drift_ppm=rng.uniform(-80, 80)))
        state.battery_pct = rng.choice([100, 50, 12])
        enc: Any = HipbackEncoder(rate, mtu=max(min(mtu, 247), profile.min_mtu(mode)), mode=mode, state=state)
        enc.seq = rng.choice([0, rng.getrandbits(32), 0xFFFFFFFF - rng.randrange(600)])
        state.max_batch = rng.choice([0, 0, 1, 4])
        values = {hb.INFO_UUID: state.read(hb.INFO_UUID)}
    elif kind == "movella_dot":
        mtu = mtu or rng.choice([profile.min_mtu(mode), 247])
        # near the u32 us wrap now and then (the counter wraps every 71.6 min)
        offset = rng.choice([0.0, 3.0, 2.0**32 * 1e-6 - rng.uniform(0.0, 3.0), rng.uniform(0, 4294.0)])
        state = MovellaState(clock=DeviceClock(offset_s=offset, drift_ppm=rng.uniform(-80, 80)))
        enc = MovellaEncoder(rate, mode=mode, state=state)
        values = {uuid: state.read(uuid) for uuid in profile.config_reads}
    else:
        mtu = 23
        state = WitMotionState(rate, battery_v=rng.choice([4.1, 3.75, 3.6]))
        enc = WitMotionEncoder(rate, state=state)
        values = {}

    def more(n: int) -> list[bytes]:
        m = motion(rng, n, rate, cursor["t"])
        cursor["t"] += n / rate
        if kind == "witmotion":
            return enc.encode(m["t"], m["quat"], m["acc"], m["gyr"], m["mag"])
        return enc.encode(m["t"], m["quat"], m["acc"], m["gyr"], m["mag"])

    s = Stream(kind, mode, rate, mtu, values, more)
    if kind == "hipback_v1":
        s.per_packet = enc.samples_per_packet
    if kind == "witmotion":
        s.replies = {r: state.register_reply(r) for r in (wm.REG_BATTERY, wm.REG_QUAT, wm.REG_MAG,
                                                          wm.REG_TEMPERATURE, wm.REG_RATE)}
    return s


# -- mutations ----------------------------------------------------------------------------------------------


@dataclass
class Packet:
    """One notification: bytes, arrival time (s) and, for a clean packet, its index in the clean stream
    (``orig``; None once its values were changed)."""

    data: bytes
    arrival: float
    orig: int | None = None
    tail: bool = False


def _flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 3, 8])):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _value_fields(kind: str, mode: str, data: bytes) -> list[tuple[int, str, str]]:
    """(offset, struct code, field name) of the value fields of a clean notification."""
    out: list[tuple[int, str, str]] = []
    if kind == "hipback_v1":
        if len(data) < hb.HEADER_SIZE:
            return out
        fmt, n = data[1], data[2]
        try:
            size = hb.sample_size(fmt)
        except ValueError:
            return out
        for s in range(n):
            off = hb.HEADER_SIZE + s * size
            q = fmt & hb.FMT_QUAT_MASK
            if q == hb.QUAT_Q14:
                out += [(off + 2 * k, "<h", "quat") for k in range(4)]
                off += 8
            elif q == hb.QUAT_F32:
                out += [(off + 4 * k, "<f", "quat") for k in range(4)]
                off += 16
            for bit, name in ((hb.FMT_ACC, "acc"), (hb.FMT_GYR, "gyr"), (hb.FMT_MAG, "mag")):
                if fmt & bit:
                    out += [(off + 2 * k, "<h", name) for k in range(3)]
                    off += 6
    elif kind == "movella_dot":
        off = 4
        for f in md.PAYLOAD_MODES[mode].fields:
            if f == "status":
                out.append((off, "<H", f))
                off += 4
            elif f == "mag":
                out += [(off + 2 * k, "<h", f) for k in range(3)]
                off += 6
            else:
                k_n = 4 if f == "quat" else 3
                out += [(off + 4 * k, "<f", f) for k in range(k_n)]
                off += 4 * k_n
    else:
        if len(data) >= wm.FRAME_SIZE and data[1] == wm.FLAG_DATA:
            names = ["acc"] * 3 + ["gyr"] * 3 + ["angle"] * 3
            out += [(2 + 2 * k, "<h", names[k]) for k in range(9)]
        elif len(data) >= wm.FRAME_SIZE:
            out += [(4 + 2 * k, "<h", "register") for k in range(8)]
    return out


def _extreme(kind: str, mode: str, data: bytes, rng: random.Random) -> bytes:
    """Put an extreme or out-of-datasheet value into one value field."""
    fields = _value_fields(kind, mode, data)
    if not fields:
        return _flip(data, rng)
    b = bytearray(data)
    off, code, name = rng.choice(fields)
    if off + struct.calcsize(code) > len(b):  # the header claims more than the packet holds
        return _flip(data, rng)
    if code == "<f":
        value = rng.choice(FLOATS)
        if rng.random() < 0.3:
            value = -value
        struct.pack_into(code, b, off, value)
    elif code == "<H":
        struct.pack_into(code, b, off, rng.randrange(65536))
    else:
        struct.pack_into(code, b, off, rng.choice(INT16))
    return bytes(b)


def _set_seq(data: bytes, value: int) -> bytes:
    if len(data) < hb.HEADER_SIZE:
        return data
    b = bytearray(data)
    struct.pack_into("<I", b, 4, value & 0xFFFFFFFF)
    return bytes(b)


def _shift_time(kind: str, data: bytes, delta_us: int) -> bytes:
    b = bytearray(data)
    if kind == "hipback_v1" and len(b) >= hb.HEADER_SIZE:
        (t0,) = struct.unpack_from("<Q", b, 8)
        struct.pack_into("<Q", b, 8, (t0 + delta_us) % 2**64)
    elif kind == "movella_dot" and len(b) >= 4:
        (t0,) = struct.unpack_from("<I", b, 0)
        struct.pack_into("<I", b, 0, (t0 + delta_us) % 2**32)
    return bytes(b)


def _header(kind: str, data: bytes, rng: random.Random) -> bytes:
    """A random value in one header field (hipback: version, format, count, battery, dt, status;
    WitMotion: the frame flag and register number)."""
    b = bytearray(data)
    if kind == "hipback_v1" and len(b) >= hb.HEADER_SIZE:
        off, code = rng.choice([(0, "B"), (1, "B"), (2, "B"), (3, "B"), (16, "<H"), (18, "<H")])
        hi = 255 if code == "B" else 65535
        value = rng.choice([0, 1, 2, 3, 100, 101, 254, 255, hi, rng.randrange(hi + 1)])
        struct.pack_into(code, b, off, value)
    elif kind == "witmotion" and len(b) >= 4:
        i = rng.choice([0, 1, 2, 3])
        b[i] = rng.choice([0x55, 0x61, 0x71, 0x64, 0x51, 0x00, 0xFF, rng.randrange(256)])
    elif b:
        b[rng.randrange(min(len(b), 4))] = rng.randrange(256)
    return bytes(b)


SEQ_JUMPS = (1, 2, 100, 10_000, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1, -1, -2, -100)
TIME_JUMPS_US = (1, 1_000, 500_000, 1_500_000, 60_000_000, 2**31 - 1, 2**31, 2**32, 3_600_000_000_000,
                 2**63, -1, -1_000, -500_000, -1_500_000, -60_000_000, -(2**31), -(2**32))

MUTATIONS = ("flip", "truncate", "extend", "splice", "duplicate", "replay", "reorder", "drop", "seq_jump",
             "seq_shift", "time_jump", "time_shift", "time_freeze", "extreme", "header", "empty", "huge",
             "garbage",
             "coalesce", "split", "stall", "burst")


def mutate(stream: Stream, packets: list[Packet], rng: random.Random, counts: Counter | None = None) -> None:
    """Apply one random mutation to ``packets`` in place (``counts`` tallies the mutations applied)."""
    kind, mode = stream.kind, stream.mode
    what = rng.choice(MUTATIONS)
    if counts is not None:
        counts[what] += 1
    if not packets:
        packets.append(Packet(b"", 0.0))
        return
    i = rng.randrange(len(packets))
    p = packets[i]
    if what == "flip":
        packets[i] = Packet(_flip(p.data, rng), p.arrival)
    elif what == "truncate":
        packets[i] = Packet(p.data[: rng.randrange(max(len(p.data), 1))], p.arrival)
    elif what == "extend":
        extra = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 6, 20, 64])))
        packets[i] = Packet(p.data + (extra if rng.random() < 0.5 else bytes(len(extra))), p.arrival)
    elif what == "splice":
        q = rng.choice(packets)
        head, rest = p.data[: rng.randrange(len(p.data) + 1)], q.data[rng.randrange(len(q.data) + 1):]
        packets[i] = Packet(head + rest, p.arrival)
    elif what == "duplicate":
        packets.insert(i + 1, Packet(p.data, p.arrival + rng.choice([0.0, 0.001, 0.5])))
    elif what == "replay":
        j = rng.randrange(i + 1)
        packets.insert(i + 1, Packet(packets[j].data, p.arrival))
    elif what == "reorder":
        j = min(len(packets) - 1, i + rng.choice([1, 1, 2, 5]))
        packets[i], packets[j] = packets[j], packets[i]
        packets[i].orig = packets[j].orig = None  # the arrival order is part of what makes them clean
        packets[i].arrival, packets[j].arrival = packets[j].arrival, packets[i].arrival
    elif what == "drop":
        del packets[i : i + rng.choice([1, 1, 3, 20])]
    elif what == "seq_jump" and kind == "hipback_v1" and len(p.data) >= hb.HEADER_SIZE:
        (seq,) = struct.unpack_from("<I", p.data, 4)
        packets[i] = Packet(_set_seq(p.data, seq + rng.choice(SEQ_JUMPS)), p.arrival)
    elif what == "seq_shift" and kind == "hipback_v1":
        # from here on the sequence is offset (a real loss, or a wraparound): all later packets stay clean
        delta = rng.choice(SEQ_JUMPS)
        if rng.random() < 0.5 and len(p.data) >= hb.HEADER_SIZE:  # wrap around (or restart at 0) here
            delta = -_seq_of(p.data) + rng.choice([0, 2**32 - 3])
        for q in packets[i:]:
            if len(q.data) >= hb.HEADER_SIZE and q.orig is not None:
                q.data = _set_seq(q.data, _seq_of(q.data) + delta)
    elif what == "time_jump" and kind in ("hipback_v1", "movella_dot"):
        packets[i] = Packet(_shift_time(kind, p.data, rng.choice(TIME_JUMPS_US)), p.arrival)
    elif what == "time_shift" and kind in ("hipback_v1", "movella_dot"):
        delta = rng.choice(TIME_JUMPS_US)  # a device clock jump (re-sync, reboot without a restart of seq)
        for q in packets[i:]:
            if q.orig is not None:
                q.data = _shift_time(kind, q.data, delta)
    elif what == "time_freeze" and kind in ("hipback_v1", "movella_dot") and len(p.data) >= 4:
        # the device clock stops (the sequence goes on): every later packet carries this packet's time
        off, code = (8, "<Q") if kind == "hipback_v1" else (0, "<I")
        if len(p.data) >= off + struct.calcsize(code):
            (frozen,) = struct.unpack_from(code, p.data, off)
            for q in packets[i:]:
                if q.orig is not None and len(q.data) >= off + struct.calcsize(code):
                    b = bytearray(q.data)
                    struct.pack_into(code, b, off, frozen)
                    q.data = bytes(b)
    elif what == "extreme":
        packets[i] = Packet(_extreme(kind, mode, p.data, rng), p.arrival)
    elif what == "header":
        packets[i] = Packet(_header(kind, p.data, rng), p.arrival)
    elif what == "empty":
        packets.insert(i, Packet(b"", p.arrival))
    elif what == "huge":
        size = rng.choice([245, 512, 4096, 65_536, 1 << 20])
        body = (p.data * (size // max(len(p.data), 1) + 1))[:size]
        if rng.random() < 0.5:
            body = rng.randbytes(size)
        packets.insert(i, Packet(body, p.arrival))
    elif what == "garbage":
        packets.insert(i, Packet(rng.randbytes(rng.choice([1, 2, 19, 20, 21, 40, 63, 100, 244])), p.arrival))
    elif what == "coalesce" and i + 1 < len(packets):
        q = packets.pop(i + 1)
        packets[i] = Packet(p.data + q.data, q.arrival)
    elif what == "split" and len(p.data) > 1:
        k = rng.randrange(1, len(p.data))
        packets[i] = Packet(p.data[:k], p.arrival)
        packets.insert(i + 1, Packet(p.data[k:], p.arrival + rng.choice([0.0, 0.003])))
    elif what == "stall":
        # the link stalls for up to 5 s (a longer stall ends in a supervision timeout: a disconnect), then
        # delivers its backlog at once
        t_end = p.arrival + rng.choice([0.2, 1.0, 5.0])
        for q in packets[i:]:
            q.arrival = max(q.arrival, t_end)
    elif what == "burst":
        for q in packets[i : i + rng.choice([2, 10])]:
            q.arrival = p.arrival
    elif kind == "witmotion" and stream.replies:
        reply = stream.replies[rng.choice(list(stream.replies))]
        packets.insert(i, Packet(_flip(reply, rng) if rng.random() < 0.5 else reply, p.arrival))


def _seq_of(data: bytes) -> int:
    return struct.unpack_from("<I", data, 4)[0]


# -- the session path ---------------------------------------------------------------------------------------


class LivePath:
    """One sensor's live path after a notification arrives: the session runner's batch handler (decoder,
    rejection counts, battery, clock model, gap records) and store writer into ``store``."""

    def __init__(self, stream: Stream, store: LocalStore, loop: asyncio.AbstractEventLoop, *,
                 config_values: dict[str, bytes] | None = None) -> None:
        kind = stream.kind
        cfg = virtual_config({"thigh_left": kind}, {"thigh_left": "C4:1B:AC:00:00:01"}, calibration_s=0,
                             rates={"thigh_left": stream.rate_hz}, modes={"thigh_left": stream.mode})
        runner = SessionRunner(cfg, store, process=False)
        found = SimpleNamespace(address="C4:1B:AC:00:00:01", name=f"{kind}-fuzz", rssi=-60,
                                device=SimpleNamespace(address="C4:1B:AC:00:00:01"))
        runner.start_utc = 1.7e9
        runner.start_monotonic = runner.clock.monotonic()
        link: _Link = runner._make_link(cfg.sensors[0], found)  # type: ignore[arg-type]
        runner.links = {link.placement: link}
        profile = link.profile
        config = profile.parse_config(stream.values if config_values is None else config_values)
        runner._configure(link, config, stream.mtu)
        runner._open_session()
        runner._writer = StoreWriter(store, runner.session_id, loop, runner._on_written,
                                     runner._on_write_error)
        self.runner, self.link, self.config = runner, link, config
        self.decoded: DecodedSamples | None = None
        self.times: np.ndarray | None = None
        self.swallowed: list[str] = []
        self._instrument()

    def _instrument(self) -> None:
        """Observe (not change) what the decoder returns and what the clock maps; report a parser exception
        that ``Decoder.feed`` would turn into ``bad_format``."""
        dec, clock = self.link.decoder, self.link.clock
        feed, decode, cmap = dec.feed, dec._decode, clock.map

        def _decode(data: bytes, arrival: float) -> DecodedSamples:
            try:
                return decode(data, arrival)
            except Exception as exc:
                self.swallowed.append(f"{type(exc).__name__}: {exc}")
                raise

        def feed_(data: Any, arrival: float) -> DecodedSamples:
            self.decoded = out = feed(data, arrival)
            return out

        def map_(decoded: DecodedSamples) -> np.ndarray:
            self.times = out = cmap(decoded)
            return out

        dec._decode = _decode  # type: ignore[method-assign]
        dec.feed = feed_  # type: ignore[method-assign]
        clock.map = map_  # type: ignore[method-assign]

    @property
    def decoder(self) -> Decoder:
        return self.link.decoder

    @property
    def clock(self) -> ClockModel:
        return self.link.clock

    def push(self, data: bytes, arrival: float) -> tuple[DecodedSamples, np.ndarray | None]:
        self.decoded = None
        self.times = None
        with warnings.catch_warnings():  # a warning on the console per bad packet is a fault too
            warnings.simplefilter("error")
            self.runner._handle_batch([(self.link, data, arrival, 0.0)])
        assert self.decoded is not None
        return self.decoded, self.times

    def flush(self) -> None:
        assert self.runner._writer is not None
        self.runner._writer.write_now()


def buffer_sizes(path: LivePath) -> dict[str, int]:
    """Current sizes of the decoder's and the clock model's buffers (entries; keys of BUFFER_BOUNDS)."""
    dec, clock = path.decoder, path.clock
    out = {"clock.bins": len(clock.env.bins), "clock.suspects": len(clock._suspects),
           "decoder.gap_records": len(dec.stats.gaps), "clock.jump_records": len(clock.jumps)}
    if isinstance(dec, hb.HipbackV1Decoder):
        out["hipback_v1.recent"] = len(dec._recent)
        out["hipback_v1.dtypes"] = len(dec._dtypes)
    if isinstance(dec, wm.WitMotionDecoder):
        out["witmotion.buf"] = len(dec._buf)
    if isinstance(dec, md.MovellaDotDecoder):
        out["movella_dot.held"] = len(dec._held)
    arr = clock._arrival
    if arr is not None:
        out["clock.bins"] = max(out["clock.bins"], len(arr.env.bins))
        out["arrival.recent"] = len(arr._recent)
        out["arrival.gap_records"] = len(arr.gaps)
        out["arrival.pending"] = 0 if arr._pending is None else len(arr._pending["hist"])
    return out


class PacketCheck:
    """The property of one sensor's stream, checked notification by notification (see the module
    docstring); raises :class:`~tests.fuzz_boundaries.Broken` naming what broke."""

    def __init__(self, path: LivePath, kind: str, clean: dict[int, DecodedSamples]) -> None:
        self.path, self.kind, self.clean = path, kind, clean
        acc_fs, gyr_fs = FULL_SCALE[kind]
        dec = path.decoder
        k = 1.0 + RANGE_MARGIN
        self.acc_max = min(acc_fs, dec.acc_range_ms2 or math.inf) * k
        self.gyr_max = min(gyr_fs, dec.gyr_range_rads or math.inf) * k
        self.fed = 0
        self.accepted = 0
        self.samples = 0
        self.last_t = -math.inf
        self.last_dev: float | None = None
        self.last_arrival: float | None = None  # arrival of the last packet that yielded samples (s)
        self.last_seq: int | None = None
        self.resets = 0
        self.jumps = 0
        self.skipped = 0  # samples the store skipped as already stored (a failure)
        self.unaccepted: dict[int, str] = {}
        self.pending_reasons: Counter = Counter()
        self.stale = 0  # packets refused as out of order since the last accepted one
        self.outcomes: Counter = Counter()
        self.buffers: Counter = Counter()

    def packet(self, p: Packet, out: DecodedSamples, t: np.ndarray | None) -> None:
        path, dec = self.path, self.path.decoder
        self.fed += 1
        if path.swallowed:
            raise Broken(f"{self.kind} parser raised (hidden as bad_format): {path.swallowed[0]}")
        st, sess = dec.stats, path.link.stats
        if st.packets != self.fed or sess.packets != self.fed:
            raise Broken(f"packets counted {st.packets} (decoder) / {sess.packets} (session), fed {self.fed}")
        rejected_now = st.rejected_total - sum(self.pending_reasons.values())
        self.pending_reasons = Counter(st.rejected)
        if out.rejected is not None:
            self.outcomes["rejected:" + out.rejected] += 1
            if out.n:
                raise Broken(f"a rejected packet ({out.rejected}) carries {out.n} samples")
            if rejected_now < 1:
                raise Broken(f"a packet rejected as {out.rejected} is not counted in the decoder statistics")
            # the session counts each refusal as it comes and takes recovered packets off again, as the
            # decoder does
            if sess.rejected[out.rejected] != st.rejected[out.rejected] and self.kind != "witmotion":
                raise Broken(f"session counts {sess.rejected[out.rejected]} {out.rejected}, decoder "
                             f"{st.rejected[out.rejected]}")
            if out.rejected == "out_of_order":
                self.stale += 1
        elif out.n == 0:
            if self.kind != "witmotion":
                raise Broken(f"{len(p.data)} bytes gave no samples and no rejection")
            pending = len(path.decoder._buf)  # type: ignore[attr-defined]
            if not (rejected_now or pending or out.extra.get("registers") or not p.data
                    or "pending_bytes" in out.extra):
                raise Broken(f"{len(p.data)} bytes vanished: no samples, no reply, no count, nothing pending")
            self.outcomes["held"] += 1
        else:
            self.outcomes["accepted"] += 1
        for name, size in buffer_sizes(path).items():
            self.buffers[name] = max(self.buffers[name], size)
            if size > BUFFER_BOUNDS[name]:
                raise Broken(f"buffer {name} holds {size} entries (bound {BUFFER_BOUNDS[name]})")
        if out.battery_pct is not None and not 0.0 <= out.battery_pct <= 100.0:
            raise Broken(f"battery level {out.battery_pct} %")
        if not out.n:
            if st.resets > self.resets:
                self.resets = st.resets
            return
        self.accepted += 1
        self.samples += out.n
        self._recovered(out)
        live, own = sess.rejected["out_of_order"], st.rejected.get("out_of_order", 0)
        if out.extra.get("recovered") and live != own:
            raise Broken(f"after {out.extra['recovered']} recovered, the session counts {live} out of order, "
                         f"the decoder {own}")
        self._gaps(p, out)
        self._samples(out)
        self._times(p, out, t)
        if p.orig is not None and p.orig in self.clean:
            self._same_as_clean(out, self.clean[p.orig])

    def _gaps(self, p: Packet, out: DecodedSamples) -> None:
        """A gap the decoder reports can only hold the samples of the time between the arrivals, plus the
        longest delay of a packet (:data:`MAX_GAP_LATENCY_S`), at no less than half the nominal period."""
        last, self.last_arrival = self.last_arrival, p.arrival
        if not out.gaps:
            return
        if any(not (isinstance(g.missing, int) and g.missing > 0) for g in out.gaps):
            raise Broken(f"gaps {out.gaps[:2]}")
        if last is None:
            raise Broken(f"a gap of {out.missing} samples before the first packet")
        rate = self.path.decoder.rate_hz
        most = 2.0 * (max(p.arrival - last, 0.0) * 1.001 + MAX_GAP_LATENCY_S) * rate + 2
        if out.missing > most:
            raise Broken(f"a gap of {out.missing} samples {p.arrival - last:.3f} s after the packet before "
                         f"(at most {most:.0f} fit)")

    def _recovered(self, out: DecodedSamples) -> None:
        """Samples of earlier packets a notification returns: only a Movella DOT's, only of packets refused as
        out of order since the last accepted one, at most ``RESYNC_PACKETS - 1``, and counted."""
        recovered = int(out.extra.get("recovered", 0))
        stale, self.stale = self.stale, 0
        if not recovered:
            return
        most = min(stale, md.MovellaDotDecoder.RESYNC_PACKETS - 1)
        if self.kind != "movella_dot" or not 0 < recovered <= most:
            raise Broken(f"{recovered} earlier samples returned after {stale} packets refused as out of "
                         "order")
        if len(out.extra.get("timestamps_us", ())) != out.n:
            raise Broken(f"{out.n} samples returned with timestamps {out.extra.get('timestamps_us')}")

    def _samples(self, out: DecodedSamples) -> None:
        n = out.n
        most = MAX_SAMPLES[self.kind] + int(out.extra.get("recovered", 0))
        if n > most:
            raise Broken(f"{n} samples in one notification (at most {most} fit)")
        for name, width in (("quat", 4), ("acc", 3), ("gyr", 3), ("mag", 3)):
            a = getattr(out, name)
            if a is None:
                continue
            a = np.asarray(a)
            if a.shape != (n, width):
                raise Broken(f"{name} has shape {a.shape} for {n} samples")
            if not np.all(np.isfinite(a)):
                raise Broken(f"{name} not finite: {a[~np.isfinite(a).all(axis=1)][:1]}")
        if out.acc is not None and np.abs(out.acc).max() > self.acc_max:
            raise Broken(f"acc {np.abs(out.acc).max():.6g} m/s^2 beyond the full scale ({self.acc_max:.6g})")
        if out.gyr is not None and np.abs(out.gyr).max() > self.gyr_max:
            raise Broken(f"gyr {np.abs(out.gyr).max():.6g} rad/s beyond the full scale ({self.gyr_max:.6g})")
        if out.mag is not None and np.abs(out.mag).max() > MAG_LIMIT:
            raise Broken(f"mag {np.abs(out.mag).max():.6g} beyond {MAG_LIMIT}")
        if out.quat is not None:
            norm = np.linalg.norm(out.quat, axis=1)
            if np.abs(norm - 1.0).max() > 1e-9:
                raise Broken(f"quaternion norm {norm.min():.9g}..{norm.max():.9g}")
        if out.quat is None and out.acc is None:
            raise Broken("samples without a quaternion or acc")

    def _times(self, p: Packet, out: DecodedSamples, t: np.ndarray | None) -> None:
        dec = self.path.decoder
        n = out.n
        if out.device_time_s is not None:
            dt = np.asarray(out.device_time_s, dtype=np.float64)
            if dt.shape != (n,) or not np.all(np.isfinite(dt)):
                raise Broken(f"device times {dt[:3]} for {n} samples")
            if n > 1 and not np.all(np.diff(dt) > 0):
                raise Broken(f"device times within a packet do not increase: {dt[:4]}")
            # without sequence numbers the device time is the sample's identity (the store's key): it must
            # keep increasing, over restarts of the device clock too (a new epoch after the last sample); with
            # them, a re-synced device clock may go back while the sequence goes on
            if out.seq is None and self.last_dev is not None and dt[0] <= self.last_dev:
                restarted = " (after a restart)" if dec.stats.resets > self.resets else ""
                raise Broken(f"device time went back from {self.last_dev!r} to {dt[0]!r}{restarted}")
            self.last_dev = float(dt[-1])
        self.resets = dec.stats.resets
        if out.seq is not None:
            seq = np.asarray(out.seq)
            if seq.shape != (n,) or (n > 1 and not np.all(np.diff(seq) == 1)):
                raise Broken(f"sequence numbers {seq[:4]} within a packet")
            if self.last_seq is not None and int(seq[0]) <= self.last_seq:
                raise Broken(f"sequence number {int(seq[0])} after {self.last_seq}: stored numbers collide")
            self.last_seq = int(seq[-1])
        if t is None:
            raise Broken("accepted samples were not timed by the clock model")
        t = np.asarray(t, dtype=np.float64)
        if t.shape != (n,) or not np.all(np.isfinite(t)):
            raise Broken(f"clock times {t[:3]} for {n} samples")
        # the clock model's contract: times increase within a sensor, except right after it re-anchored on a
        # forward jump of the device clock (its earlier times may have been late: they are not pushed on)
        clock = self.path.clock
        forward = clock.jump_count > self.jumps and clock.jumps[-1].delta_s < 0
        self.jumps = clock.jump_count
        if (n > 1 and not np.all(np.diff(t) > 0)) or (t[0] <= self.last_t and not forward):
            raise Broken(f"clock times do not increase: {self.last_t!r} then {t[:3]}")
        utc = t + self.path.runner.start_utc  # as stored: a sensor without device times is keyed by it
        if n > 1 and not np.all(np.diff(utc) > 0) or (utc[0] <= self.last_t + self.path.runner.start_utc
                                                      and not forward):
            raise Broken(f"clock times {t[:3]} collapse in UTC (after {self.last_t!r})")
        # never later than the arrival, but for the 1 us steps that keep a burst's times increasing
        if t[-1] > max(p.arrival, self.last_t) + 1e-6 * n + 1e-9:
            raise Broken(f"a sample timed {t[-1] - p.arrival:.6g} s after its packet arrived")
        arrival_clock = clock._arrival
        undecided = arrival_clock is not None and arrival_clock._pending is not None
        # (while an arrival gap is undecided, a device without timestamps has its samples timed as if nothing
        # was lost: early by the loss, for at most ArrivalClock.decision_s)
        span = (n - 1) / self.path.link.rate_hz
        if out.device_time_s is not None:  # the packet's own sample period (hipback v1: its dt_us field)
            span = max(span, float(out.device_time_s[-1] - out.device_time_s[0]))
        if t[0] < p.arrival - MAX_LAG_S - span and not undecided:
            raise Broken(f"a sample timed {p.arrival - t[0]:.6g} s before its packet arrived")
        self.last_t = float(t[-1])

    def _same_as_clean(self, out: DecodedSamples, ref: DecodedSamples) -> None:
        recovered = int(out.extra.get("recovered", 0))  # earlier packets' samples, before the packet's own
        if out.n - recovered != ref.n:
            raise Broken(f"a clean packet gave {out.n - recovered} samples, a clean decoder {ref.n}")
        for name in ("quat", "acc", "gyr", "mag"):
            a, b = getattr(out, name), getattr(ref, name)
            if a is not None and recovered:
                a = a[recovered:]
            if (a is None) != (b is None) or (a is not None and not np.allclose(a, b, rtol=0, atol=1e-12)):
                raise Broken(f"a clean packet's {name} differs from a clean decoder's after garbage")

    def finish(self, packets: list[Packet]) -> None:
        """After the stream: the clean tail was accepted, the store holds what the session counted."""
        tail = [p for p in packets if p.tail]
        path = self.path
        missed = [p for p in tail[-TAIL_MUST_PASS:] if p.orig in self.unaccepted and self.clean[p.orig].n]
        if missed:
            raise Broken(f"the decoder did not recover: {len(missed)} of the last {TAIL_MUST_PASS} clean "
                         "packets "
                         f"refused ({', '.join(sorted({self.unaccepted[p.orig] for p in missed}))})")
        path.flush()
        st = path.link.stats
        if st.store_errors:
            raise Broken(f"store writes failed: {st.errors[:1]}")
        if st.samples + st.duplicates_ignored != self.samples:
            raise Broken(f"{self.samples} samples decoded, {st.samples} stored + {st.duplicates_ignored} "
                         "ignored")
        if st.duplicates_ignored:
            # the store keys samples without sequence numbers by device time: a decoder keeps them unique over
            # restarts of the device clock (a Movella DOT reboot, or the decoder following a new clock), so a
            # sample the store skips as already stored is a lost one
            self.skipped += st.duplicates_ignored
            raise Broken(f"{st.duplicates_ignored} decoded samples were dropped by the store as duplicates"
                         f"{' after a device clock restart' if path.decoder.stats.resets else ''}")
        store, sid = path.runner.store, path.runner.session_id
        if store.sample_count(sid) != st.samples:
            raise Broken(f"the store holds {store.sample_count(sid)} samples, the session counted "
                         f"{st.samples}")
        gaps = store.gaps(sid)
        if len(gaps) != st.gaps or sum(g.missing for g in gaps) != st.missing:
            raise Broken(f"the store holds {len(gaps)} gaps ({sum(g.missing for g in gaps)} samples), the "
                         f"session counted {st.gaps} ({st.missing})")
        for g in gaps:
            if not (math.isfinite(g.t_start) and math.isfinite(g.t_end) and g.missing > 0):
                raise Broken(f"a stored gap {g}")
            if g.t_end < g.t_start and not any(j.delta_s < 0 for j in path.clock.jumps):
                raise Broken(f"a stored gap ends before it starts: {g}")
        if st.samples:
            rec = store.load_recording(sid)
            s = rec.streams[path.link.placement]
            if len(s) != st.samples or s.meta.get("rejected_on_load"):
                raise Broken(f"the stored session reads back {len(s)} of {st.samples} samples "
                             f"({s.meta.get('rejected_on_load')} rejected on load)")


# -- cases --------------------------------------------------------------------------------------------------


@dataclass
class PacketFuzz:
    """Per-boundary state: a temporary store, an event loop for the writer, tallies of outcomes."""

    kind: str
    work: Path
    packets: Counter = field(default_factory=Counter)  # outcomes per notification
    mutations: Counter = field(default_factory=Counter)
    buffers: Counter = field(default_factory=Counter)  # largest buffer sizes seen
    skipped: int = 0  # samples the store skipped as already stored (each a failure)
    _store: LocalStore | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def store(self) -> LocalStore:
        if self._store is None:
            self._store = LocalStore(self.work / f"{self.kind}.sqlite", synchronous="NORMAL")
        return self._store

    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._loop is not None:
            self._loop.close()


def _clean_decode(stream: Stream, config_values: dict[str, bytes],
                  packets: list[Packet]) -> dict[int, DecodedSamples]:
    """What a fresh decoder (same configuration) makes of the clean packets, by clean index."""
    profile = PROFILES[stream.kind]
    config = profile.parse_config(config_values)
    mode = profile.choose_mode(stream.mode, stream.mtu, config).mode
    dec = profile.make_decoder(stream.rate_hz, mode, config)
    return {p.orig: dec.feed(p.data, p.arrival) for p in packets if p.orig is not None}


def stream_case(fz: PacketFuzz, rng: random.Random) -> str:
    """One mutated notification stream through the session path; ``"error"`` when every mutated
    notification was refused (or held), ``"ok"`` when some were accepted as plausible samples."""
    stream = clean_stream(fz.kind, rng)
    profile = PROFILES[fz.kind]
    values = dict(stream.values)
    if stream.kind != "witmotion" and rng.random() < 0.15:
        values = _mutate_values(stream.kind, values, rng)
    try:  # the device streams in the mode the profile picks for its firmware and MTU (the session asks so)
        mode = profile.choose_mode(stream.mode, stream.mtu, profile.parse_config(values)).mode
    except DeviceSetupError as exc:
        return _sentence(exc)
    if mode != stream.mode:
        stream = clean_stream(fz.kind, rng, mode=mode, mtu=stream.mtu)
    n_body = rng.choice([5, 20, 60, 200])
    body = [bytes(d) for d in stream.more(n_body)]
    tail_data = [bytes(d) for d in stream.more(TAIL * stream.per_packet)]
    # one notification per packet, arriving a little after its last sample (latency 5-40 ms)
    clean: list[Packet] = []
    t = 0.0
    for i, d in enumerate(body + tail_data):
        clean.append(Packet(d, 0.0, i, tail=i >= len(body)))
    per = _samples_per_packet(stream, clean)
    for i, p in enumerate(clean):
        t += per[i] / stream.rate_hz
        p.arrival = t + rng.uniform(0.005, 0.04)
    for i in range(1, len(clean)):
        clean[i].arrival = max(clean[i].arrival, clean[i - 1].arrival)
    packets = [Packet(p.data, p.arrival, p.orig) for p in clean[: len(body)]]
    for _ in range(rng.choice([1, 1, 2, 3, 5, 10, 30])):
        mutate(stream, packets, rng, fz.mutations)
    if packets:
        base = max(p.arrival for p in packets)
        for p in packets:
            p.arrival = min(p.arrival, base)
    tail = [Packet(p.data, p.arrival, p.orig, tail=True) for p in clean[len(body):]]
    if packets:  # the tail continues after the (possibly stalled) body
        shift = max(0.0, max(p.arrival for p in packets) - tail[0].arrival + 0.01)
        for p in tail:
            p.arrival += shift
    stream_all = packets + tail
    for i in range(1, len(stream_all)):  # arrivals never go back (one monotonic clock)
        stream_all[i].arrival = max(stream_all[i].arrival, stream_all[i - 1].arrival)
    path = LivePath(stream, fz.store(), fz.loop(), config_values=values)
    ref = _clean_decode(stream, values, clean)
    check = PacketCheck(path, stream.kind, ref)
    unaccepted: dict[int, str] = {}
    stale: list[int | None] = []  # clean indices of the packets refused as out of order since an accepted one
    mutated_accepted = 0
    for p in stream_all:
        out, times = path.push(p.data, p.arrival)
        check.packet(p, out, times)
        if p.orig is not None and not out.n:
            unaccepted[p.orig] = out.rejected or "held"
        if out.rejected == "out_of_order":
            stale.append(p.orig)
        elif out.n:
            recovered = int(out.extra.get("recovered", 0))  # their samples came after all
            for orig in stale[len(stale) - recovered:]:
                unaccepted.pop(orig, None)  # type: ignore[arg-type]
            stale = []
        if p.orig is None and out.n:
            mutated_accepted += 1
        if rng.random() < 0.1:
            path.flush()
    check.unaccepted = unaccepted
    check.finish(stream_all)
    fz.packets.update(check.outcomes)
    fz.skipped += check.skipped
    for k, v in check.buffers.items():
        fz.buffers[k] = max(fz.buffers[k], v)
    return "ok" if mutated_accepted else "error"


def _samples_per_packet(stream: Stream, packets: list[Packet]) -> list[int]:
    if stream.kind == "hipback_v1":
        return [p.data[2] for p in packets]
    return [1] * len(packets)


def _mutate_values(kind: str, values: dict[str, bytes], rng: random.Random) -> dict[str, bytes]:
    out = dict(values)
    if not out:
        return out
    uuid = rng.choice(list(out))
    v = out[uuid]
    how = rng.randrange(4)
    if how == 0:
        v = _flip(v, rng)
    elif how == 1:
        v = v[: rng.randrange(len(v) + 1)]
    elif how == 2:
        v = v + rng.randbytes(rng.choice([1, 4]))
    else:
        b = bytearray(v)
        if b:
            b[rng.randrange(len(b))] = rng.choice([0, 1, 255, rng.randrange(256)])
        v = bytes(b)
    out[uuid] = v
    return out


def _sentence(exc: BaseException) -> str:
    text = str(exc)
    if not text.strip() or "\n" in text or len(text) > 400 or "Traceback" in text:
        raise Broken(f"not one sentence: {text[:300]!r}")
    return "error"


def reply_case(fz: PacketFuzz, rng: random.Random) -> str:
    """Mutated configuration, info and battery values (hipback v1, Movella DOT) or register replies
    (WitMotion) through the profile's parsers, as the session's setup and battery poll use them."""
    kind = fz.kind
    profile = PROFILES[kind]
    stream = clean_stream(kind, rng)
    if kind == "witmotion":
        dec = profile.make_decoder(stream.rate_hz)
        refused = False
        for _ in range(rng.choice([1, 3, 10])):
            reply = stream.replies[rng.choice(list(stream.replies))]
            for _ in range(rng.choice([1, 2])):
                reply = rng.choice([_flip, _reg_value, _reg_number])(reply, rng)
            before = dec.stats.rejected_total
            out = dec.feed(reply, 0.0)
            refused |= dec.stats.rejected_total > before
            if out.battery_pct is not None:
                volts = out.extra.get("battery_v")
                if not (0.0 <= out.battery_pct <= 100.0 and volts is not None
                        and wm.BATTERY_VOLTS[0] <= volts <= wm.BATTERY_VOLTS[1]):
                    raise Broken(f"battery {out.battery_pct} % from {volts} V")
            if len(dec._buf) >= wm.FRAME_SIZE:  # type: ignore[attr-defined]
                raise Broken(f"{len(dec._buf)} bytes pending")  # type: ignore[attr-defined]
        return "error" if refused else "ok"
    values = _mutate_values(kind, stream.values, rng) if rng.random() < 0.6 else dict(stream.values)
    if rng.random() < 0.2 and values:  # a characteristic the device does not have
        values.pop(rng.choice(list(values)))
    config = profile.parse_config(values)  # never raises
    _check_config(config)
    refused = bool(config.notes)
    try:
        choice = profile.choose_mode(stream.mode, stream.mtu, config)
    except DeviceSetupError as exc:  # no payload mode can stream: said in one sentence
        refused = True
        _sentence(exc)
    else:
        batch = rng.choice([None, 0, 4, 999])
        try:
            writes = profile.start_sequence(stream.rate_hz, choice.mode, config, max_batch=batch)
        except ValueError as exc:
            # the same values are read at every connection attempt: set-up would fail for ever
            raise Broken(f"the start sequence raised for the values read ({exc})") from None
        if not writes or not all(isinstance(w.data, bytes) and w.data for w in writes):
            raise Broken(f"start sequence {writes}")
        dec = profile.make_decoder(stream.rate_hz, choice.mode, config)
        if dec.acc_range_ms2 is not None and not 0 < dec.acc_range_ms2 <= FULL_SCALE[kind][0]:
            raise Broken(f"decoder acc range {dec.acc_range_ms2} m/s^2")
        if dec.gyr_range_rads is not None and not 0 < dec.gyr_range_rads <= FULL_SCALE[kind][1] + 1e-12:
            raise Broken(f"decoder gyr range {dec.gyr_range_rads} rad/s")
    battery = profile.battery
    assert battery is not None and battery.char_uuid is not None and battery.parse is not None
    if kind == "hipback_v1":
        raw = bytes([rng.choice([0, 15, 100, 101, 255, rng.randrange(256)])]) * rng.choice([0, 1, 1, 1, 2])
    elif rng.random() < 0.5:
        raw = bytes([rng.randrange(101), rng.randrange(2)])  # a valid level and charging flag
    else:
        raw = bytes([rng.choice([0, 100, 101, 255]), rng.choice([0, 1, 2, 255])])[: rng.choice([0, 1, 2, 2])]
        raw += rng.randbytes(rng.choice([0, 0, 1, 5]))
    try:
        pct = battery.parse(raw)
    except ValueError as exc:  # the session logs it and keeps the last level
        return _sentence(exc)
    if not (isinstance(pct, float) and 0.0 <= pct <= 100.0):
        raise Broken(f"battery {pct!r} from {raw!r}")
    return "error" if refused else "ok"


def _check_config(config: Any) -> None:
    if config.firmware is not None and (not isinstance(config.firmware, str) or "\n" in config.firmware):
        raise Broken(f"firmware {config.firmware!r}")
    for r in config.rates_hz or ():
        if not (math.isfinite(r) and 0 < r <= 65535):
            raise Broken(f"rate {r!r}")
    for note in config.notes:
        _sentence(ValueError(note))


def _reg_value(data: bytes, rng: random.Random) -> bytes:
    if len(data) < wm.FRAME_SIZE:
        return data
    b = bytearray(data)
    struct.pack_into("<h", b, 4 + 2 * rng.randrange(8), rng.choice(INT16 + (250, 450, 451, 249)))
    return bytes(b)


def _reg_number(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 4:
        return data
    b = bytearray(data)
    b[2] = rng.choice([wm.REG_BATTERY, wm.REG_QUAT, wm.REG_MAG, wm.REG_TEMPERATURE, rng.randrange(256)])
    b[3] = rng.choice([0, 0, 1, 255])
    return bytes(b)


def packet_case(fz: PacketFuzz) -> Callable[[random.Random], str]:
    """The case of the ``ble:<kind>`` boundary: a mutated stream (4 in 5) or mutated replies."""

    def case(rng: random.Random) -> str:
        if rng.random() < 0.2:
            return reply_case(fz, rng)
        return stream_case(fz, rng)

    return case


def long_case(fz: PacketFuzz, n_packets: int = 100_000) -> Callable[[random.Random], str]:
    """For each protocol, ``n_packets`` notifications through the session path: clean ones drawn at random
    from a pool of 400 (so replayed, reordered and out of time) with 40 mutations per 50 (garbage, huge,
    empty, truncated, spliced, ...), arriving 0 to 100 ms apart. Buffers stay within :data:`BUFFER_BOUNDS`,
    every notification is counted, and a clean tail still decodes afterwards."""

    def one(kind: str, rng: random.Random) -> None:
        stream = clean_stream(kind, rng)
        sub = PacketFuzz(kind, fz.work)
        sub._store, sub._loop = fz.store(), fz.loop()
        path = LivePath(stream, sub.store(), sub.loop())
        check = PacketCheck(path, kind, {})
        pool = [bytes(d) for d in stream.more(400 * stream.per_packet)]
        arrival = 0.0
        fed = 0
        while fed < n_packets:
            chunk = [Packet(d, 0.0) for d in (rng.sample(pool, 50))]
            for _ in range(40):
                mutate(stream, chunk, rng)
            for p in chunk:
                arrival += rng.choice([0.0, 0.001, 0.01, 0.1])
                p.arrival = arrival
                out, times = path.push(p.data, arrival)
                check.packet(p, out, times)
                fed += 1
                if fed % 5_000 == 0:
                    path.flush()
        tail = [Packet(d, 0.0, None, tail=True) for d in stream.more(TAIL * stream.per_packet)]
        accepted = 0
        for p in tail:
            arrival += 1.0 / stream.rate_hz * (p.data[2] if kind == "hipback_v1" else 1)
            out, _ = path.push(p.data, arrival)
            accepted += bool(out.n)
        path.flush()
        # the events of the whole stream, counted (their records in memory are bounded buffers above)
        records = {"events.clock_jumps": path.clock.jump_count}
        for k, v in {**check.buffers, **records}.items():
            fz.buffers[f"{kind}:{k}"] = max(fz.buffers[f"{kind}:{k}"], v)
        fz.packets.update({f"{kind}:{k}": v for k, v in check.outcomes.items()})
        if accepted < TAIL_MUST_PASS:
            raise Broken(f"{kind}: only {accepted} of {TAIL} clean packets accepted after {n_packets} of "
                         "garbage")

    def case(rng: random.Random) -> str:
        for kind in KINDS:
            one(kind, rng)
        return "ok"

    return case

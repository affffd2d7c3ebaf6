"""Common types of the device drivers: profiles, control writes, decoded samples, decoder statistics.

A :class:`DeviceProfile` describes one kind of BLE IMU: how to find it, what to read after connecting
(:class:`DeviceConfig`: firmware, capabilities, settings), which payload mode to stream for that firmware
and the negotiated ATT MTU (:class:`ModeChoice`), which bytes to write to start and stop it
(:class:`Write`), where its battery level comes from (:class:`BatterySource`), and it builds a
:class:`Decoder` that turns notification payloads into sample arrays (:class:`DecodedSamples`). Decoders are
pure: bytes in, arrays out, no I/O. ``feed`` never raises on bad data; it counts what it rejects by reason
in :class:`DecoderStats`, including samples beyond the sensor's full scale. Protocols and references:
``docs/devices.md``.

Units of decoded samples (as in :mod:`hipback.processing.types`): device time in s (unwrapped, device clock),
acc in m/s^2 (specific force, sensor frame), gyr in rad/s (sensor frame), mag in microtesla or device units
(see each decoder), quat scalar-first (w, x, y, z) sensor-to-world with a z-up world frame.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from hipback.ingest.errors import HipbackError

FloatArray = NDArray[np.float64]

#: Reasons a decoder rejects bytes (keys of :attr:`DecoderStats.rejected`).
TRUNCATED = "truncated"  # shorter than the header says / than the payload mode needs
BAD_LENGTH = "bad_length"  # longer than expected, or not a whole number of samples
BAD_VERSION = "bad_version"  # unknown protocol version
BAD_FORMAT = "bad_format"  # unknown format bits, zero samples, mode mismatch
BAD_VALUE = "bad_value"  # NaN / infinite values, or a counter (sequence, device time) the device cannot send
BAD_QUAT_NORM = "bad_quat_norm"  # quaternion far from unit norm
OUT_OF_RANGE = "out_of_range"  # acc/gyr beyond what the sensor can measure (its full scale)
DUPLICATE = "duplicate"  # a packet already received (same sequence / timestamp)
OUT_OF_ORDER = "out_of_order"  # older than the last packet but not a duplicate
JUNK = "junk"  # bytes that are not part of any frame (WitMotion re-framing)
UNKNOWN_FRAME = "unknown_frame"  # a frame type the decoder does not know


class StatusFlag(enum.IntFlag):
    """Device status bits, normalised across device kinds (each decoder maps its device's bits to these)."""

    NONE = 0
    ACC_CLIPPING = 1 << 0
    GYR_CLIPPING = 1 << 1
    MAG_VALID = 1 << 2
    FUSION_ON = 1 << 3
    TIME_SYNCED = 1 << 4
    LOW_BATTERY = 1 << 5
    OVERRUN = 1 << 6  # the device dropped samples itself (its BLE buffer was full)
    CHARGING = 1 << 7
    MAG_CLIPPING = 1 << 8


@dataclass(frozen=True)
class Write:
    """One GATT write: ``data`` to characteristic ``char_uuid`` (full 128-bit UUID string, lower case)."""

    char_uuid: str
    data: bytes
    response: bool = True
    note: str = ""


@dataclass(frozen=True)
class SampleGap:
    """Samples lost before the first sample of a packet.

    ``after_seq``: sequence number of the last sample received before the gap (None when the device has no
    sequence numbers); ``after_time_s``: device time of that sample (None when unknown); ``missing``: number
    of samples lost (exact from sequence numbers, estimated from timestamps and the output rate otherwise).
    """

    after_seq: int | None
    after_time_s: float | None
    missing: int


@dataclass
class DecodedSamples:
    """Samples decoded from one notification (N may be 0 when the packet was rejected or held only a reply).

    ``device_time_s`` is the unwrapped device clock in s (None for devices without timestamps: WitMotion);
    ``seq`` the per-sample sequence number (None when the device has none). ``flags`` is the packet status,
    ``battery_pct`` a battery level when the packet carried one. ``gaps`` lists losses detected just before
    this packet. ``rejected`` names the reason when the whole packet was refused. ``extra`` holds
    device-specific values (e.g. Movella free acceleration, WitMotion register replies).
    """

    arrival_time: float
    device_time_s: FloatArray | None = None
    seq: NDArray[np.int64] | None = None
    quat: FloatArray | None = None
    acc: FloatArray | None = None
    gyr: FloatArray | None = None
    mag: FloatArray | None = None
    flags: StatusFlag = StatusFlag.NONE
    battery_pct: float | None = None
    gaps: list[SampleGap] = field(default_factory=list)
    rejected: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    n: int = 0

    def __len__(self) -> int:
        return self.n

    @property
    def missing(self) -> int:
        """Samples lost just before this packet (sum over :attr:`gaps`)."""
        return sum(g.missing for g in self.gaps) if self.gaps else 0


#: gap records a decoder keeps in memory (the most recent; ``DecoderStats.missing`` counts them all)
MAX_GAP_RECORDS = 256

@dataclass
class DecoderStats:
    """Running counts of one decoder.

    ``packets``: notifications fed; ``samples``: samples accepted; ``rejected``: rejected packets (or junk
    events) by reason; ``duplicates``: duplicate packets (also in ``rejected["duplicate"]``); ``truncated``:
    truncated packets (also in ``rejected["truncated"]``); ``seq_gaps``: ``(after_seq, missing)`` for the
    last ``MAX_GAP_RECORDS`` gaps found (``after_seq`` is -1 for devices without sequence numbers; ``gaps``
    holds their full records); ``missing``: total samples lost in every gap; ``resets``: device
    sequence/clock restarts (e.g. a reboot); ``junk_bytes``: bytes skipped while re-framing a byte stream
    (WitMotion); ``recovered``: packets refused as out of order when they arrived whose samples a later packet
    returned after all, once it showed that they began a restarted device clock (Movella DOT; no longer in
    ``rejected``).
    """

    packets: int = 0
    samples: int = 0
    bytes: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    truncated: int = 0
    seq_gaps: list[tuple[int, int]] = field(default_factory=list)
    gaps: list[SampleGap] = field(default_factory=list)
    missing: int = 0
    resets: int = 0
    junk_bytes: int = 0
    recovered: int = 0

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1
        if reason == DUPLICATE:
            self.duplicates += 1
        elif reason == TRUNCATED:
            self.truncated += 1

    def add_gap(self, gap: SampleGap) -> None:
        self.gaps.append(gap)
        self.seq_gaps.append((gap.after_seq if gap.after_seq is not None else -1, gap.missing))
        self.missing += gap.missing
        if len(self.gaps) > MAX_GAP_RECORDS:  # memory stays bounded under a stream of corrupt packets
            del self.gaps[:-MAX_GAP_RECORDS], self.seq_gaps[:-MAX_GAP_RECORDS]

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class Decoder:
    """Turns notification payloads of one sensor into samples. Subclasses implement :meth:`_decode`.

    ``feed`` never raises on bad data: any exception inside the parser is caught and counted as ``bad_format``
    (a parser bug must not stop a session).

    ``acc_range_ms2`` / ``gyr_range_rads``: the sensor's full scale (m/s^2, rad/s, per axis). A packet holding
    a value beyond it (plus :attr:`RANGE_MARGIN`, for the factory calibration applied on the device) cannot
    come from the sensor: :meth:`_out_of_range` rejects it as ``out_of_range``. None disables the check.
    """

    kind: str = "unknown"
    #: relative margin over the full scale before a value is called impossible
    RANGE_MARGIN = 0.05
    #: Longest notification taken (bytes). One ATT attribute value, and so one notification, holds at most 512
    #: bytes (Bluetooth Core Vol 3 Part F 3.2.9); the limit is twice that, so that a transport joining two
    #: values of a byte stream (WitMotion's frames are re-framed) is still served. A longer one cannot come
    #: from a sensor and is refused as ``bad_length`` before parsing (a megabyte of repeated frames would
    #: otherwise be thousands of samples timed hours before their arrival).
    MAX_NOTIFICATION_BYTES = 1024

    def __init__(
        self, rate_hz: float, *, acc_range_ms2: float | None = None, gyr_range_rads: float | None = None
    ) -> None:
        self.rate_hz = float(rate_hz)
        self.stats = DecoderStats()
        self.acc_range_ms2 = acc_range_ms2
        self.gyr_range_rads = gyr_range_rads

    def feed(self, data: bytes | bytearray | memoryview, arrival_time: float) -> DecodedSamples:
        data = bytes(data)
        self.stats.packets += 1
        self.stats.bytes += len(data)
        if len(data) > self.MAX_NOTIFICATION_BYTES:
            return self._rejected(BAD_LENGTH, float(arrival_time))
        try:
            out = self._decode(data, float(arrival_time))
        except Exception:  # noqa: BLE001 - a bad packet must never stop the session
            self.stats.reject(BAD_FORMAT)
            return DecodedSamples(arrival_time=float(arrival_time), rejected=BAD_FORMAT)
        self.stats.samples += out.n
        return out

    def _decode(self, data: bytes, arrival_time: float) -> DecodedSamples:  # pragma: no cover - abstract
        raise NotImplementedError

    def continue_from(self, previous: Decoder) -> None:
        """Go on where ``previous`` (a decoder of the same sensor in another payload mode, e.g. before a
        reconnection chose a different mode) left off: its statistics and its place in the device's stream
        (sequence numbering, clock epochs), so sample numbers and device times stay unique and increasing
        over the mode change. The base decoder keeps no place in the stream: only the statistics."""
        self.stats = previous.stats

    def _rejected(self, reason: str, arrival_time: float) -> DecodedSamples:
        self.stats.reject(reason)
        return DecodedSamples(arrival_time=arrival_time, rejected=reason)

    def _out_of_range(self, acc: FloatArray | None, gyr: FloatArray | None) -> bool:
        """True when an acc (m/s^2) or gyr (rad/s) component lies beyond the full scale (with the margin)."""
        k = 1.0 + self.RANGE_MARGIN
        if (
            acc is not None
            and self.acc_range_ms2 is not None
            and (np.abs(acc) > self.acc_range_ms2 * k).any()
        ):
            return True
        return bool(
            gyr is not None
            and self.gyr_range_rads is not None
            and (np.abs(gyr) > self.gyr_range_rads * k).any()
        )

    def _flat_out_of_range(self, acc: list[float] | None, gyr: list[float] | None) -> bool:
        """:meth:`_out_of_range` of finite values held in flat lists of Python floats (acc m/s^2, gyr
        rad/s): ``|v| > limit`` is ``v > limit or v < -limit``, decided from each list's extremes."""
        k = 1.0 + self.RANGE_MARGIN
        if acc and self.acc_range_ms2 is not None:
            limit = self.acc_range_ms2 * k
            if max(acc) > limit or min(acc) < -limit:
                return True
        if gyr and self.gyr_range_rads is not None:
            limit = self.gyr_range_rads * k
            return max(gyr) > limit or min(gyr) < -limit
        return False


class DeviceSetupError(HipbackError, ValueError):
    """The device cannot stream as configured (no payload mode fits its firmware or the negotiated MTU).

    One sentence naming the device kind and every reason; a :class:`hipback.ingest.errors.HipbackError`, so
    that where it ends a command the CLI prints it and exits with code 2 (bad input or configuration)."""


@dataclass(frozen=True)
class DeviceConfig:
    """What the configuration reads of one connection said (see :meth:`DeviceProfile.parse_config`).

    ``values``: raw characteristic values by UUID; ``firmware``: version string (``"3.0.0"``) when the device
    reports one; ``modes``: the profile's modes this device offers (None: all of them); ``rates_hz``: output
    rates it offers (None: the profile's); ``acc_range_ms2`` / ``gyr_range_rads``: full scale per axis (None:
    the profile's); ``measuring``: the device is streaming already (a reconnect); ``notes``: what could not be
    read or parsed (the defaults were used instead); ``modes_reason``: why a mode left out of ``modes`` is
    not streamed when that is not the firmware's own list (e.g. ``"needs firmware 3 or later and the firmware
    version could not be read"``; None: the firmware does not offer it).
    """

    values: Mapping[str, bytes] = field(default_factory=dict)
    firmware: str | None = None
    modes: tuple[str, ...] | None = None
    rates_hz: tuple[float, ...] | None = None
    acc_range_ms2: float | None = None
    gyr_range_rads: float | None = None
    measuring: bool = False
    notes: tuple[str, ...] = ()
    modes_reason: str | None = None


@dataclass(frozen=True)
class ModeChoice:
    """The payload mode to stream on this connection; ``message`` says why it is not the one asked for."""

    mode: str
    message: str | None = None


@dataclass(frozen=True)
class BatterySource:
    """Where a device reports its battery level, and how often hipback asks (``interval_s``, session seconds).

    Either a readable characteristic (``char_uuid``, turned into percent by ``parse``, which raises ValueError
    on a malformed value), or a ``poll`` write whose reply arrives on the data characteristic, where the
    decoder reports it as :attr:`DecodedSamples.battery_pct`.
    """

    char_uuid: str | None = None
    parse: Callable[[bytes], float] | None = None
    poll: Write | None = None
    interval_s: float = 60.0


class DeviceProfile:
    """One kind of device: scan matching, configuration reads, payload mode, start/stop writes, battery,
    decoder factory. Everything the session runner does differently per device kind lives here.

    Session order (per the device specs): connect -> ask for a larger ATT MTU -> read :attr:`config_reads`
    (:meth:`parse_config`) -> :meth:`choose_mode` for the negotiated MTU -> read the battery -> subscribe to
    :meth:`notify_uuids` -> send :meth:`start_sequence` -> stream (poll the battery every
    ``battery.interval_s``) -> :meth:`stop_sequence` -> unsubscribe -> disconnect.
    """

    kind: str = "unknown"
    label: str = "unknown device"
    name_patterns: tuple[str, ...] = ()  # advertised-name prefixes (case-sensitive)
    service_uuids: tuple[str, ...] = ()  # primary service UUIDs (lower case, 128-bit strings)
    modes: Mapping[str, Any] = {}
    default_mode: str = ""
    rates_hz: tuple[float, ...] = ()
    #: Characteristics read after connecting (firmware version, capabilities, current settings); a device
    #: that lacks one is configured from the profile's defaults.
    config_reads: tuple[str, ...] = ()
    #: How the battery level is read (None: the device does not report it).
    battery: BatterySource | None = None
    #: Names of the device's characteristics for messages (UUID -> name as the vendor calls it).
    char_names: Mapping[str, str] = {}
    #: Full scale of the sensor when the device does not report it (m/s^2, rad/s per axis; None: no check).
    acc_range_ms2: float | None = None
    gyr_range_rads: float | None = None

    def matches(self, name: str | None, service_uuids: list[str] | tuple[str, ...] = ()) -> bool:
        uuids = {u.lower() for u in service_uuids}
        if uuids & {u.lower() for u in self.service_uuids}:
            return True
        return bool(name) and any(name.startswith(p) for p in self.name_patterns)

    def char_label(self, uuid: str) -> str:
        """A characteristic for a message: its name and UUID (the UUID alone when it has no name)."""
        name = self.char_names.get(uuid.lower())
        return f"{name} ({uuid})" if name else uuid

    def mode_or_default(self, mode: str | None) -> str:
        mode = mode or self.default_mode
        if mode not in self.modes:
            raise ValueError(f"{self.label}: unknown mode {mode!r}; known modes: {', '.join(self.modes)}")
        return mode

    def sensor_kind(self, mode: str | None = None) -> Literal["quat", "raw"]:
        """``"quat"`` when the mode streams on-device orientation, ``"raw"`` when hipback must fuse
        acc/gyr."""
        raise NotImplementedError

    def nearest_rate(self, rate_hz: float, config: DeviceConfig | None = None) -> float:
        """The supported output rate closest to ``rate_hz`` (among the device's own when it reports them)."""
        rates = (config.rates_hz if config is not None and config.rates_hz else None) or self.rates_hz
        return float(min(rates, key=lambda r: abs(r - rate_hz)))

    def notify_uuids(self, mode: str | None = None) -> list[str]:
        raise NotImplementedError

    # -- configuration -----------------------------------------------------------------------------------
    def parse_config(self, values: Mapping[str, bytes]) -> DeviceConfig:
        """Interpret the :attr:`config_reads` values; never raises (what cannot be parsed is noted and the
        profile's defaults apply)."""
        return DeviceConfig(values=dict(values))

    def min_mtu(self, mode: str | None = None) -> int:
        """Smallest ATT MTU at which one notification of ``mode`` arrives whole (payload + 3 bytes of ATT
        header)."""
        return 23

    def fallback_modes(self, mode: str) -> tuple[str, ...]:
        """Modes to try, in order, when ``mode`` does not fit (same :meth:`sensor_kind`, less data)."""
        return ()

    def mode_unavailable(self, mode: str, mtu: int, config: DeviceConfig | None) -> str | None:
        """Why ``mode`` cannot stream on this connection (None when it can)."""
        if config is not None and config.modes is not None and mode not in config.modes:
            if config.modes_reason:
                return f"{mode} {config.modes_reason}"
            firmware = f"firmware {config.firmware}" if config.firmware else "this device"
            return f"{mode} is not offered by {firmware}"
        need = self.min_mtu(mode)
        if mtu < need:
            return f"{mode} needs ATT MTU >= {need} but the link negotiated {mtu}"
        return None

    def choose_mode(self, mode: str | None, mtu: int, config: DeviceConfig | None = None) -> ModeChoice:
        """The payload mode to stream: ``mode`` (or the default) when the firmware offers it and it fits the
        negotiated ATT MTU, else the first of :meth:`fallback_modes` that does (same sensor kind).

        Raises :class:`DeviceSetupError` with every reason when none does.
        """
        wanted = self.mode_or_default(mode)
        reasons: list[str] = []
        for m in (wanted, *self.fallback_modes(wanted)):
            why = self.mode_unavailable(m, mtu, config)
            if why is None:
                if m == wanted:
                    return ModeChoice(m)
                return ModeChoice(m, f"{self.label}: {reasons[0]}; streaming {m} instead.")
            reasons.append(why)
        raise DeviceSetupError(f"{self.label}: no payload mode can stream here ({'; '.join(reasons)}).")

    # -- control writes ----------------------------------------------------------------------------------
    def start_sequence(
        self,
        rate_hz: float,
        mode: str | None = None,
        current: DeviceConfig | Mapping[str, bytes] | None = None,
        *,
        max_batch: int | None = None,
    ) -> list[Write]:
        """Writes that configure and start streaming at the supported rate nearest ``rate_hz``.

        ``current``: the configuration read at connect (or the raw values of :attr:`config_reads`);
        ``max_batch``: at most this many samples per notification, for devices that batch (0/None: as many
        as fit).
        """
        raise NotImplementedError

    def stop_sequence(self, mode: str | None = None) -> list[Write]:
        raise NotImplementedError

    def _config(self, current: DeviceConfig | Mapping[str, bytes] | None) -> DeviceConfig:
        if current is None:
            return DeviceConfig()
        if isinstance(current, DeviceConfig):
            return current
        return self.parse_config(current)

    def make_decoder(
        self, rate_hz: float, mode: str | None = None, config: DeviceConfig | None = None
    ) -> Decoder:
        """A decoder for one connection's stream; ``rate_hz`` is snapped to :meth:`nearest_rate` (the rate the
        start sequence sets), which Movella uses to size timestamp gaps; ``config`` gives the full scale."""
        raise NotImplementedError

    def _ranges(self, config: DeviceConfig | None) -> dict[str, float | None]:
        """Decoder keyword arguments for the full scale (the device's own when it reported them)."""
        acc = config.acc_range_ms2 if config is not None and config.acc_range_ms2 else self.acc_range_ms2
        gyr = config.gyr_range_rads if config is not None and config.gyr_range_rads else self.gyr_range_rads
        return {"acc_range_ms2": acc, "gyr_range_rads": gyr}

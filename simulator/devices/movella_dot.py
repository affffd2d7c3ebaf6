"""Virtual Movella DOT: payload encoder (padded notifications) and the control state machine.

Byte layouts per the Movella DOT BLE Service Specification (XD0506P rev C), summarised in ``docs/devices.md``.
Constants are repeated from the spec here on purpose (``simulator`` must not import ``ingest``).
"""

from __future__ import annotations

import struct

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


def uuid16(short: int) -> str:
    return f"1517{short:04x}-4947-11e9-8646-d663bd873d93"


CONFIGURATION_SERVICE_UUID = uuid16(0x1000)
DEVICE_INFO_UUID = uuid16(0x1001)
DEVICE_CONTROL_UUID = uuid16(0x1002)
DEVICE_REPORT_UUID = uuid16(0x1004)
MEASUREMENT_SERVICE_UUID = uuid16(0x2000)
CONTROL_UUID = uuid16(0x2001)
LONG_PAYLOAD_UUID = uuid16(0x2002)
MEDIUM_PAYLOAD_UUID = uuid16(0x2003)
SHORT_PAYLOAD_UUID = uuid16(0x2004)
ORIENTATION_RESET_CONTROL_UUID = uuid16(0x2006)
ORIENTATION_RESET_STATUS_UUID = uuid16(0x2007)
BATTERY_SERVICE_UUID = uuid16(0x3000)
BATTERY_UUID = uuid16(0x3001)
MESSAGE_SERVICE_UUID = uuid16(0x7000)
MESSAGE_CONTROL_UUID = uuid16(0x7001)
MESSAGE_ACK_UUID = uuid16(0x7002)
MESSAGE_NOTIFICATION_UUID = uuid16(0x7003)

CHAR_LENGTH = {LONG_PAYLOAD_UUID: 63, MEDIUM_PAYLOAD_UUID: 40, SHORT_PAYLOAD_UUID: 20}
RATES_HZ = (1, 4, 10, 12, 15, 20, 30, 60, 120)
G = 9.80665
#: full scale of the DOT's IMU per axis: the device saturates there (and sets the clipping status bits)
ACC_RANGE_MS2 = 16 * G
GYR_RANGE_RADS = np.radians(2000.0)

#: mode id -> (name, payload characteristic, fields after the u32 us timestamp)
MODES: dict[int, tuple[str, str, tuple[str, ...]]] = {
    2: ("extended_quaternion", MEDIUM_PAYLOAD_UUID, ("quat", "free_acc", "status")),
    3: ("complete_quaternion", MEDIUM_PAYLOAD_UUID, ("quat", "free_acc")),
    5: ("orientation_quaternion", SHORT_PAYLOAD_UUID, ("quat",)),
    20: ("rate_quantities_mag", MEDIUM_PAYLOAD_UUID, ("acc", "gyr", "mag")),
    21: ("rate_quantities", MEDIUM_PAYLOAD_UUID, ("acc", "gyr")),
    24: ("custom3", MEDIUM_PAYLOAD_UUID, ("quat", "gyr")),
    26: ("custom5", LONG_PAYLOAD_UUID, ("quat", "acc", "gyr")),
}
MODE_IDS = {name: mid for mid, (name, _, _) in MODES.items()}
#: payload modes that firmware before 3.0 does not have (custom mode 5; the 2021 spec for firmware 2.0.0 lacks
#: it): a 2.x twin refuses to start them
FIRMWARE3_MODE_IDS = frozenset({26})


def default_device_control(rate_hz: int = 60, tag: str = "hipback sim") -> bytes:
    b = bytearray(32)
    t = tag.encode()[:16]
    b[7] = len(t)
    b[8 : 8 + len(t)] = t
    struct.pack_into("<H", b, 24, rate_hz)
    return bytes(b)


class MovellaState:
    """Readable values and control writes of one Movella DOT (pure; ``now`` in simulation seconds)."""

    def __init__(
        self,
        mac: str = "D4:22:CD:00:00:01",
        battery_pct: int = 80,
        clock: DeviceClock | None = None,
        firmware: tuple[int, int, int] = (3, 0, 0),
    ) -> None:
        self.mac = mac
        self.battery_pct = battery_pct
        self.charging = False
        self.clock = clock or DeviceClock()
        self.firmware = firmware
        self.device_control = bytearray(default_device_control())
        self.measuring = False
        self.mode_id = 26
        self.heading = qm.IDENTITY.copy()
        self.heading_was_reset = False
        self.heading_status = 0
        self.heading_command = 0x0008
        self.last_quat: FloatArray | None = None
        self.message_ack = bytes(160)
        self.synced = False

    @property
    def rate_hz(self) -> int:
        return struct.unpack_from("<H", self.device_control, 24)[0]

    @property
    def mode_name(self) -> str:
        return MODES[self.mode_id][0]

    @property
    def filter_profile(self) -> int:
        return self.device_control[26]

    def handle_write(self, char_uuid: str, data: bytes, now: float = 0.0) -> list[Effect]:
        data = bytes(data)
        uuid = char_uuid.lower()
        if uuid == CONTROL_UUID:
            return self._control(data)
        if uuid == DEVICE_CONTROL_UUID:
            return self._device_control(data)
        if uuid == ORIENTATION_RESET_CONTROL_UUID:
            return self._orientation_reset(data)
        if uuid == MESSAGE_CONTROL_UUID:
            return self._message(data)
        return [Effect("error", {"reason": f"characteristic {char_uuid} is not writable"})]

    def _control(self, data: bytes) -> list[Effect]:
        if len(data) != 3 or data[0] != 0x01 or data[1] > 1:
            return [Effect("error", {"reason": "malformed measurement control write"})]
        if data[1] == 0x00:
            self.measuring = False
            return [Effect("stop", {"mode_id": data[2]})]
        if data[2] not in MODES:
            return [Effect("error", {"reason": f"payload mode {data[2]} is not supported"})]
        if data[2] in FIRMWARE3_MODE_IDS and self.firmware[0] < 3:
            # firmware 2.x does not know the later custom modes: it does not start measuring
            fw = ".".join(map(str, self.firmware))
            return [Effect("error", {"reason": f"payload mode {data[2]} is not supported by firmware {fw}"})]
        self.mode_id = data[2]
        self.measuring = True
        name, char, _ = MODES[data[2]]
        return [
            Effect(
                "start", {"mode": name, "mode_id": data[2], "char_uuid": char, "rate_hz": float(self.rate_hz)}
            )
        ]

    def _device_control(self, data: bytes) -> list[Effect]:
        if len(data) != 32:
            return [Effect("error", {"reason": f"Device Control needs 32 bytes, got {len(data)}"})]
        visit = data[0]
        effects: list[Effect] = []
        if visit & 0x01 and data[1] == 0x01:
            effects.append(Effect("identify"))
        if visit & 0x02 and data[2] & 0x01:
            effects.append(Effect("power_off"))
        if visit & 0x04:
            self.device_control[3:7] = data[3:7]
        if visit & 0x08:
            self.device_control[7:24] = data[7:24]
        if visit & 0x30 and (self.measuring or self.synced):
            effects.append(
                Effect("error", {"reason": "output rate and filter cannot change during measurement"})
            )
            return effects
        if visit & 0x10:
            rate = struct.unpack_from("<H", data, 24)[0]
            if rate not in RATES_HZ:
                effects.append(Effect("error", {"reason": f"output rate {rate} Hz is not supported"}))
            else:
                self.device_control[24:26] = data[24:26]
                effects.append(Effect("rate", {"rate_hz": float(rate)}))
        if visit & 0x20:
            if data[26] not in (0, 1):
                effects.append(Effect("error", {"reason": f"filter profile {data[26]} is not supported"}))
            else:
                self.device_control[26] = data[26]
                effects.append(Effect("filter_profile", {"index": data[26]}))
        return effects

    def _orientation_reset(self, data: bytes) -> list[Effect]:
        if len(data) != 2:
            return [Effect("error", {"reason": "orientation reset needs 2 bytes"})]
        cmd = struct.unpack("<H", data)[0]
        self.heading_command = cmd
        if cmd == 0x0001:
            if not self.measuring or self.last_quat is None or self.heading_was_reset:
                self.heading_status = 0
                why = "revert first" if self.heading_was_reset else "it works only during measurement"
                return [Effect("error", {"reason": f"heading reset refused: {why}"})]
            self.heading = heading_correction(self.last_quat)
            self.heading_was_reset = True
            self.heading_status = 1
            return [Effect("heading_reset")]
        if cmd == 0x0007:
            self.heading = qm.IDENTITY.copy()
            self.heading_was_reset = False
            self.heading_status = 1
            return [Effect("heading_revert")]
        if cmd == 0x0008:
            return []
        return [Effect("error", {"reason": f"unknown orientation reset command {cmd}"})]

    def _message(self, data: bytes) -> list[Effect]:
        if len(data) < 3 or len(data) != data[1] + 3 or sum(data) & 0xFF:
            return [Effect("error", {"reason": "malformed message (length or checksum)"})]
        mid, payload = data[0], data[2:-1]
        if mid == 0x02 and payload[:1] == b"\x01" and len(payload) == 7:
            mac = ":".join(f"{b:02X}" for b in reversed(payload[1:7]))
            self.synced = True
            self.message_ack = bytes([0x02, 0x02, 0x03, 0x00, 0xF9])
            return [Effect("sync", {"root_mac": mac})]
        if mid == 0x02 and payload == b"\x02":
            self.synced = False
            return [Effect("sync", {"stop": True})]
        return [Effect("error", {"reason": f"message 0x{mid:02x} is not simulated"})]

    def read(self, char_uuid: str, now: float = 0.0) -> bytes:
        uuid = char_uuid.lower()
        if uuid == DEVICE_INFO_UUID:
            mac = bytes(int(x, 16) for x in self.mac.split(":"))[::-1]
            return (
                mac
                + bytes(self.firmware)
                + struct.pack("<HBBBBB", 2023, 7, 1, 12, 0, 0)
                + struct.pack("<IQ", 7002000, int.from_bytes(mac, "little"))
                + b"XS-T02"
            )
        if uuid == DEVICE_CONTROL_UUID:
            out = bytearray(self.device_control)
            out[0] = 0
            return bytes(out)
        if uuid == CONTROL_UUID:
            return bytes([0x01, int(self.measuring), self.mode_id])
        if uuid == ORIENTATION_RESET_CONTROL_UUID:
            return struct.pack("<H", self.heading_command)
        if uuid == ORIENTATION_RESET_STATUS_UUID:
            return bytes([self.heading_status])
        if uuid == BATTERY_UUID:
            return bytes([max(0, min(100, int(self.battery_pct))), int(self.charging)])
        if uuid == MESSAGE_ACK_UUID:
            return self.message_ack
        raise KeyError(f"characteristic {char_uuid} is not readable")


class MovellaEncoder:
    """One padded notification per sample, in the state's payload mode.

    Inputs: ``t`` (s, simulation time; the device clock gives the u32 us timestamp, wrapping at 2^32 us), quat
    (N, 4) sensor-to-world, acc m/s^2 (sensor frame, with gravity), gyr rad/s, mag in the device's arbitrary
    units (earth field about 1). Free acceleration (modes 2, 3) is computed as ``q * acc * q' - (0, 0, g)``.
    acc and gyr saturate at the full scale (+-16 g, +-2000 deg/s per axis), as the sensor does, and set the
    clipping bits of the status word.
    """

    def __init__(
        self, rate_hz: float = 60, mtu: int = 247, mode: str = "custom5", state: MovellaState | None = None
    ) -> None:
        self.state = state or MovellaState()
        self.state.mode_id = MODE_IDS[mode]
        struct.pack_into("<H", self.state.device_control, 24, int(rate_hz))
        self.mtu = mtu

    @property
    def rate_hz(self) -> float:
        return float(self.state.rate_hz)

    @property
    def char_uuid(self) -> str:
        return MODES[self.state.mode_id][1]

    def encode(
        self,
        t: FloatArray,
        quat: FloatArray | None = None,
        acc: FloatArray | None = None,
        gyr: FloatArray | None = None,
        mag: FloatArray | None = None,
    ) -> list[bytes]:
        st = self.state
        name, char, fields = MODES[st.mode_id]
        t = np.asarray(t, dtype=np.float64)
        n = len(t)
        cols: list[np.ndarray] = []
        q_out = None
        if "quat" in fields or "free_acc" in fields:
            if quat is None:
                raise ValueError(f"payload mode {name} needs quaternions")
            q_out = qm.multiply(st.heading, np.asarray(quat, dtype=np.float64))
            if n:
                st.last_quat = np.asarray(quat[-1], dtype=np.float64)
        status = np.zeros(n, dtype=np.int64)
        if acc is not None:  # acc clipping bits (X, Y, Z) at the +-16 g range; the sensor saturates there
            acc = np.asarray(acc, dtype=np.float64)
            status |= (np.abs(acc) > ACC_RANGE_MS2).astype(np.int64) @ np.array([1, 2, 4])
            acc = np.clip(acc, -ACC_RANGE_MS2, ACC_RANGE_MS2)
        if gyr is not None:  # gyr clipping bits at +-2000 deg/s
            gyr = np.asarray(gyr, dtype=np.float64)
            status |= (np.abs(gyr) > GYR_RANGE_RADS).astype(np.int64) @ np.array([8, 16, 32])
            gyr = np.clip(gyr, -GYR_RANGE_RADS, GYR_RANGE_RADS)
        for f in fields:
            if f == "quat":
                cols.append(q_out)
            elif f == "free_acc":
                fa = np.zeros((n, 3)) if acc is None else qm.rotate(q_out, acc) - np.array([0.0, 0.0, G])
                cols.append(fa)
            elif f == "acc":
                if acc is None:
                    raise ValueError(f"payload mode {name} needs acc")
                cols.append(np.asarray(acc, dtype=np.float64))
            elif f == "gyr":
                if gyr is None:
                    raise ValueError(f"payload mode {name} needs gyr")
                cols.append(np.degrees(np.asarray(gyr, dtype=np.float64)))
            elif f == "mag":
                if mag is None:
                    raise ValueError(f"payload mode {name} needs mag")
        fmt = "<I" + "".join(
            {"quat": "4f", "free_acc": "3f", "acc": "3f", "gyr": "3f", "mag": "3h", "status": "HBB"}[f]
            for f in fields
        )
        packer = struct.Struct(fmt)
        length = CHAR_LENGTH[char]
        ts = np.round(st.clock.device_time(t) * 1e6).astype(np.int64) & 0xFFFFFFFF
        magi = None if "mag" not in fields else np.clip(np.round(np.asarray(mag) * 4096.0), -32768, 32767)
        out = []
        for i in range(n):
            vals: list[float | int] = [int(ts[i])]
            ci = 0
            for f in fields:
                if f == "status":
                    vals += [int(status[i]), 0, 0]
                elif f == "mag":
                    vals += [int(v) for v in magi[i]]
                else:
                    vals += [float(v) for v in cols[ci][i]]
                    ci += 1
            out.append(packer.pack(*vals).ljust(length, b"\0"))
        return out


class MovellaTwin(DeviceTwin):
    """Virtual Movella DOT: services 0x1000 (1001 R, 1002 R/W, 1004 N), 0x2000 (2001 R/W, 2002/2003/2004 N
    padded to 63/40/20 bytes, 2006 R/W, 2007 R), 0x3000 (3001 R/N) and 0x7000 (7001 W, 7002 R, 7003 N).

    Streams after Control = start, on the payload characteristic of the mode started. A link loss does not
    stop the measurement (the device keeps measuring until told to stop), so a host must stop it before it may
    write the output rate again. State options: ``firmware`` (e.g. ``(2, 6, 0)``: no custom mode 5),
    ``battery_pct``, ``mac``.
    """

    KIND = "movella_dot"
    LAYOUT = (
        (
            CONFIGURATION_SERVICE_UUID,
            (
                (DEVICE_INFO_UUID, frozenset({READ})),
                (DEVICE_CONTROL_UUID, frozenset({READ, WRITE})),
                (DEVICE_REPORT_UUID, frozenset({NOTIFY})),
            ),
        ),
        (
            MEASUREMENT_SERVICE_UUID,
            (
                (CONTROL_UUID, frozenset({READ, WRITE})),
                (LONG_PAYLOAD_UUID, frozenset({NOTIFY})),
                (MEDIUM_PAYLOAD_UUID, frozenset({NOTIFY})),
                (SHORT_PAYLOAD_UUID, frozenset({NOTIFY})),
                (ORIENTATION_RESET_CONTROL_UUID, frozenset({READ, WRITE})),
                (ORIENTATION_RESET_STATUS_UUID, frozenset({READ})),
            ),
        ),
        (BATTERY_SERVICE_UUID, ((BATTERY_UUID, frozenset({READ, NOTIFY})),)),
        (
            MESSAGE_SERVICE_UUID,
            (
                (MESSAGE_CONTROL_UUID, frozenset({WRITE})),
                (MESSAGE_ACK_UUID, frozenset({READ})),
                (MESSAGE_NOTIFICATION_UUID, frozenset({NOTIFY})),
            ),
        ),
    )
    ADVERTISED = (MEASUREMENT_SERVICE_UUID,)
    RATES_HZ = tuple(float(r) for r in RATES_HZ)
    DEFAULT_RATE_HZ = 60.0
    ADDRESS_PREFIX = "D4:22:CD"
    LINK_INTERVAL_S = 0.0075

    @classmethod
    def default_name(cls, index: int) -> str:
        return "Movella DOT"

    @classmethod
    def initial_mode(cls, has_quat: bool) -> str | None:
        return "custom5" if has_quat else "rate_quantities"

    def _make_encoder(self, rate_hz: float, mtu: int, mode: str | None, **state: object) -> MovellaEncoder:
        return MovellaEncoder(rate_hz, mtu, mode or "custom5", state=MovellaState(**state))  # type: ignore[arg-type]

    def _data_uuid(self) -> str:
        return self.encoder.char_uuid

    def _frame_key(self) -> tuple[object, ...]:
        st = self.state  # a notification is one sample, in the output mode, heading and clock of now
        return (st.mode_id, st.heading.tobytes(), st.clock.offset_s, st.clock.drift)

    def _sent_upto(self, samples: SensorStream, i1: int) -> None:
        fields = MODES[self.state.mode_id][2]
        if i1 > 0 and samples.quat is not None and ("quat" in fields or "free_acc" in fields):
            self.state.last_quat = np.asarray(samples.quat[i1 - 1], dtype=np.float64)

    def on_start(self, params: dict[str, object], mtu: int) -> None:
        super().on_start(params, mtu)
        self.notify_uuid = str(params.get("char_uuid", self.notify_uuid))

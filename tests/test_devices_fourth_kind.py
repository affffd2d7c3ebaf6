"""A fourth device kind, added as ``docs/adding-a-device.md`` shows: a profile, a twin, two registrations.

The "toy IMU" below is defined in this file only; it is registered in ``PROFILES`` and ``TWINS`` for the test
(``monkeypatch``), and a virtual session then scans, connects, configures and streams it through the unchanged
session runner, bleak and the Bumble backend. Nothing else knows the kind: that is what the test checks, with
a check that the runner, the connect path and the virtual sensor name no device kind at all.

Toy IMU protocol (little-endian): service ``7a3e0001-…``; DATA ``7a3e0002-…`` (notify, one 20-byte sample per
notification: seq u16, t_ms u32, quaternion w,x,y,z int16 Q14, acc x,y,z int16 at 16 g / 32768); CONTROL
``7a3e0003-…`` (write: ``01, rate_hz u8`` start, ``02`` stop).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hipback.ingest.devices import PROFILES, DeviceConfig
from hipback.ingest.devices.base import (
    BAD_QUAT_NORM,
    DUPLICATE,
    OUT_OF_ORDER,
    OUT_OF_RANGE,
    TRUNCATED,
    DecodedSamples,
    Decoder,
    DeviceProfile,
    SampleGap,
    StatusFlag,
    Write,
)
from hipback.ingest.session import run_virtual_session
from hipback.ingest.store import LocalStore
from hipback.simulator import SensorSpec, simulate
from hipback.simulator.devices import TWINS
from hipback.simulator.devices.base import NOTIFY, WRITE, DeviceClock, DeviceTwin, Effect

ROOT = Path(__file__).resolve().parents[1]
_BASE = "-8f4c-4d1e-9b2a-5c6d7e8f9a0b"
SERVICE, DATA, CONTROL = "7a3e0001" + _BASE, "7a3e0002" + _BASE, "7a3e0003" + _BASE
G = 9.80665
ACC_LSB = 16 * G / 32768
SAMPLE = struct.Struct("<HI4h3h")  # 20 bytes


# -- ingest/devices/toy_imu.py ----------------------------------------------------------------------------
class ToyDecoder(Decoder):
    kind = "toy_imu"

    def __init__(self, rate_hz: float, **ranges: float | None) -> None:
        super().__init__(rate_hz, **ranges)
        self._next: int | None = None
        self._last_t: float | None = None

    def _decode(self, data: bytes, arrival_time: float) -> DecodedSamples:
        if len(data) < SAMPLE.size:
            return self._rejected(TRUNCATED, arrival_time)
        seq, t_ms, *rest = SAMPLE.unpack_from(data)
        quat = np.array([rest[:4]], dtype=np.float64) / 16384.0
        acc = np.array([rest[4:]], dtype=np.float64) * ACC_LSB
        if abs(float(np.linalg.norm(quat)) - 1.0) > 0.02:
            return self._rejected(BAD_QUAT_NORM, arrival_time)
        if self._out_of_range(acc, None):
            return self._rejected(OUT_OF_RANGE, arrival_time)
        gaps = []
        if self._next is not None:
            missing = (seq - self._next) & 0xFFFF
            if missing >= 0x8000:  # behind the expected number: seen already, or late
                return self._rejected(DUPLICATE if missing == 0xFFFF else OUT_OF_ORDER, arrival_time)
            if missing:
                gap = SampleGap(
                    after_seq=(self._next - 1) & 0xFFFF, after_time_s=self._last_t, missing=missing
                )
                gaps.append(gap)
                self.stats.add_gap(gap)
        self._next, self._last_t = (seq + 1) & 0xFFFF, t_ms * 1e-3
        return DecodedSamples(
            arrival_time=arrival_time,
            device_time_s=np.array([t_ms * 1e-3]),
            seq=np.array([seq], dtype=np.int64),
            quat=quat / np.linalg.norm(quat),
            acc=acc,
            flags=StatusFlag.FUSION_ON,
            gaps=gaps,
            n=1,
        )


class ToyProfile(DeviceProfile):
    kind = "toy_imu"
    label = "Toy IMU"
    name_patterns = ("TOY-",)
    service_uuids = (SERVICE,)
    modes = {"quat": "quaternion + acc"}
    default_mode = "quat"
    rates_hz = (50.0, 100.0)
    acc_range_ms2 = 16 * G

    def sensor_kind(self, mode: str | None = None):  # type: ignore[override]
        return "quat"

    def notify_uuids(self, mode: str | None = None) -> list[str]:
        return [DATA]

    def start_sequence(
        self,
        rate_hz: float,
        mode: str | None = None,
        current: DeviceConfig | Mapping[str, bytes] | None = None,
        *,
        max_batch: int | None = None,
    ) -> list[Write]:
        return [Write(CONTROL, struct.pack("<BB", 0x01, int(self.nearest_rate(rate_hz))), True, "start")]

    def stop_sequence(self, mode: str | None = None) -> list[Write]:
        return [Write(CONTROL, b"\x02", True, "stop")]

    def make_decoder(self, rate_hz: float, mode: str | None = None, config: DeviceConfig | None = None):
        return ToyDecoder(self.nearest_rate(rate_hz), **self._ranges(config))


# -- simulator/devices/toy_imu.py -------------------------------------------------------------------------
class ToyState:
    def __init__(self, clock: DeviceClock | None = None) -> None:
        self.clock = clock or DeviceClock()
        self.rate_hz = 100.0
        self.battery_pct = 100

    def handle_write(self, char_uuid: str, data: bytes, now: float = 0.0) -> list[Effect]:
        if char_uuid == CONTROL and len(data) == 2 and data[0] == 0x01 and data[1] in (50, 100):
            self.rate_hz = float(data[1])
            return [Effect("start", {"rate_hz": self.rate_hz})]
        if char_uuid == CONTROL and data == b"\x02":
            return [Effect("stop")]
        return [Effect("error", {"reason": "not a toy command"})]

    def read(self, char_uuid: str, now: float = 0.0) -> bytes:
        raise KeyError(char_uuid)


class ToyEncoder:
    def __init__(self, rate_hz: float, mtu: int, state: ToyState) -> None:
        self.state, self.mtu, self.seq = state, mtu, 0
        self.state.rate_hz = float(rate_hz)

    @property
    def rate_hz(self) -> float:
        return self.state.rate_hz

    def encode(self, t, quat=None, acc=None, gyr=None, mag=None) -> list[bytes]:
        out = []
        t_ms = np.round(self.state.clock.device_time(t) * 1e3).astype(np.int64)
        for i in range(len(t)):
            q = np.clip(np.round(np.asarray(quat[i]) * 16384), -32768, 32767).astype(int)
            a = np.clip(np.round(np.asarray(acc[i]) / ACC_LSB), -32768, 32767).astype(int)
            out.append(SAMPLE.pack(self.seq, int(t_ms[i]) & 0xFFFFFFFF, *q.tolist(), *a.tolist()))
            self.seq = (self.seq + 1) & 0xFFFF
        return out


class ToyTwin(DeviceTwin):
    KIND = "toy_imu"
    LAYOUT = ((SERVICE, ((DATA, frozenset({NOTIFY})), (CONTROL, frozenset({WRITE})))),)
    ADVERTISED = (SERVICE,)
    RATES_HZ = (50.0, 100.0)
    DEFAULT_RATE_HZ = 100.0
    ADDRESS_PREFIX = "C8:70:79"
    NEEDS_QUAT = True

    @classmethod
    def default_name(cls, index: int) -> str:
        return f"TOY-{index:02d}"

    def _make_encoder(self, rate_hz, mtu, mode, **state):
        return ToyEncoder(rate_hz, mtu, ToyState(**state))

    def _data_uuid(self) -> str:
        return DATA

    def skip(self, n: int) -> None:
        self.encoder.seq = (self.encoder.seq + n) & 0xFFFF  # the device kept sampling


# -- the test ---------------------------------------------------------------------------------------------
def test_a_fourth_kind_streams_through_the_unchanged_runner(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(PROFILES, "toy_imu", ToyProfile())
    monkeypatch.setitem(TWINS, "toy_imu", ToyTwin)
    sim = simulate("short", seed=5, sensors=[SensorSpec("pelvis", kind="quat", rate_hz=100.0)])
    outcome = run_virtual_session(
        sim,
        {"pelvis": "toy_imu"},
        tmp_path / "s.sqlite",
        speed=5.0,
        until_s=6.0,
        process=False,
        calibration_s=0,
    )
    st, ledger = outcome.stats["pelvis"], outcome.ledgers["pelvis"]
    assert st.kind == "toy_imu" and st.name == "TOY-01"
    assert st.samples == ledger.sent_samples > 300 and st.missing == 0 and not st.rejected
    with LocalStore(tmp_path / "s.sqlite") as store:
        assert store.sample_count(outcome.session_id, "pelvis") == ledger.sent_samples
        q = store.load_recording(outcome.session_id).streams["pelvis"].quat
        assert q is not None and np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)


def test_the_session_code_names_no_device_kind() -> None:
    files = [
        "ingest/session/runner.py",
        "ingest/ble/connect.py",
        "ingest/ble/bumble_backend/client.py",
        "simulator/virtual_ble/sensors.py",
        "simulator/virtual_ble/peripheral.py",
    ]
    for name in files:
        text = (ROOT / name).read_text()
        for kind in [*PROFILES, *TWINS]:
            assert kind not in text, (name, kind)

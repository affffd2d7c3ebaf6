"""Session configuration: a TOML file naming the patient pseudonym, the sensors and the prescription.

Example::

    patient = "P-0042"               # pseudonym only: letters, digits, '-', '_' (no names)
    store = "hipback.sqlite"         # local store (default: hipback.sqlite next to the config file)
    ble_backend = "bleak"            # "bleak" (the OS stack, default) or "bumble" (virtual sensors)
    scan_timeout_s = 10
    calibration_s = 5                # guided "stand still" step at the start
    duration_s = 0                   # 0 = until Ctrl-C
    live_batch_ms = 30               # live latency: ms of samples per notification (hipback v1) and per
                                     # processing step (0 = fill the MTU: less CPU, more latency)

    [[sensors]]
    placement = "pelvis"             # pelvis, thigh_left, thigh_right, lumbar_upper
    kind = "hipback_v1"              # hipback_v1, movella_dot, witmotion
    address = "C4:1B:AC:00:00:01"    # optional: otherwise the first unclaimed sensor of that kind is used
    rate_hz = 100                    # optional: the device's nearest supported rate is used
    mode = "quat_raw"                # optional: the device's payload mode
    max_batch = 2                    # optional (hipback v1): samples per notification (overrides the above)

    [prescription]
    holds_per_side = 3
    hold_s = 30

Environment overrides: ``HIPBACK_STORE``, ``HIPBACK_BLE_BACKEND``, ``HIPBACK_SCAN_TIMEOUT_S``.
Every mistake raises :class:`hipback.ingest.errors.ConfigError` with one sentence naming the file and the key.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hipback.ingest.errors import ConfigError
from hipback.ingest.ids import PSEUDONYM_RULE, is_pseudonym

if TYPE_CHECKING:
    from hipback.ingest.programme import Programme

PLACEMENTS = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")
BACKENDS = ("bleak", "bumble")
#: a config file's default ``live_batch_ms``: 3 samples per hipback v1 notification at 100 Hz and a processing
#: step every 30 ms keep the simulated notification-to-angle p99 under 50 ms at 12 sensors for about 35 % less
#: CPU than 20 ms (bench/README.md, "Live packets of 30 ms")
DEFAULT_LIVE_BATCH_MS = 30.0
_ADDRESS = re.compile(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}|[0-9A-Fa-f-]{36}")  # MAC, or macOS UUID
_TOP_KEYS = {
    "patient",
    "store",
    "ble_backend",
    "scan_timeout_s",
    "calibration_s",
    "duration_s",
    "sensors",
    "prescription",
    "connect_timeout_s",
    "max_sensor_lag_s",
    "live_batch_ms",
    "programme",
}
_SENSOR_KEYS = {"placement", "kind", "address", "rate_hz", "mode", "name", "max_batch"}


@dataclass
class SensorConfig:
    """One worn sensor: where it is, what it is, optionally which one (address) and how to run it."""

    placement: str
    kind: str
    address: str | None = None
    rate_hz: float | None = None
    mode: str | None = None
    name: str | None = None
    max_batch: int | None = None


@dataclass
class PrescriptionConfig:
    """Stretch dose per side."""

    holds_per_side: int = 3
    hold_s: float = 30.0


@dataclass
class SessionConfig:
    """A whole recording session (see the module docstring for the file format)."""

    patient_id: str
    sensors: list[SensorConfig]
    prescription: PrescriptionConfig = field(default_factory=PrescriptionConfig)
    store: Path = Path("hipback.sqlite")
    ble_backend: str = "bleak"
    scan_timeout_s: float = 10.0
    calibration_s: float = 5.0
    duration_s: float | None = None
    connect_timeout_s: float = 20.0
    max_sensor_lag_s: float | None = 2.0
    #: live latency against CPU: hipback v1 sends at most this many ms of samples per notification, and the
    #: live processing runs once every sensor has queued this much (None: fill the MTU; processing's default)
    live_batch_ms: float | None = None
    #: exercise programme (:mod:`hipback.ingest.programme`), None when the config has no [programme]
    programme: Programme | None = None

    def sensor(self, placement: str) -> SensorConfig:
        for s in self.sensors:
            if s.placement == placement:
                return s
        raise KeyError(placement)


def _known_kinds() -> tuple[str, ...]:
    try:
        from hipback.ingest.devices import PROFILES

        return tuple(PROFILES)
    except ImportError:  # pragma: no cover - the drivers ship with ingest
        return ("hipback_v1", "movella_dot", "witmotion")


#: upper bounds of the numeric settings (s unless named otherwise): beyond them a value is a typo, and a
#: huge one would overflow timers
MAXIMA = {
    "rate_hz": 1000.0,
    "prescription.hold_s": 600.0,
    "scan_timeout_s": 600.0,
    "calibration_s": 600.0,
    "duration_s": 86_400.0,
    "connect_timeout_s": 600.0,
    "max_sensor_lag_s": 3600.0,
    "live_batch_ms": 1000.0,
}


def _number(where: str, key: str, value: Any, *, minimum: float = 0.0, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key} must be a number, not {_shown(value)}.")
    try:
        v = float(value)
    except OverflowError:  # an integer beyond float range
        v = math.inf
    if not math.isfinite(v):
        raise ConfigError(f"{where}: {key} must be a finite number, not {_shown(value)}.")
    if v < minimum or (v == minimum and not allow_zero):
        bound = f"at least {minimum:g}" if allow_zero else f"greater than {minimum:g}"
        raise ConfigError(f"{where}: {key} must be {bound}, not {_shown(value)}.")
    top = MAXIMA.get(key)
    if top is not None and v > top:
        raise ConfigError(f"{where}: {key} must be at most {top:g}, not {_shown(value)}.")
    return v


def _shown(value: Any) -> str:
    """A value as the error sentence shows it: one line, at most 40 characters."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def parse_config(
    data: Mapping[str, Any],
    source: str = "config",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> SessionConfig:
    """Validate a parsed TOML mapping into a :class:`SessionConfig` (``source`` names it in errors)."""
    env = os.environ if env is None else env
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown setting {_shown(unknown[0])}; known settings: {', '.join(sorted(_TOP_KEYS))}."
        )
    patient = data.get("patient")
    if patient is None:
        raise ConfigError(f"{source}: 'patient' (a pseudonym such as \"P-0042\") is missing.")
    if not is_pseudonym(patient):
        raise ConfigError(
            f"{source}: patient must be a pseudonym of {PSEUDONYM_RULE}, not {_shown(patient)}."
        )
    raw_sensors = data.get("sensors")
    if not raw_sensors:
        raise ConfigError(f"{source}: no [[sensors]] given; a pelvis sensor is required.")
    if not isinstance(raw_sensors, list):
        raise ConfigError(f"{source}: 'sensors' must be a list of [[sensors]] tables.")
    kinds = _known_kinds()
    sensors: list[SensorConfig] = []
    seen_addr: set[str] = set()
    for i, s in enumerate(raw_sensors, start=1):
        where = f"{source}, sensor {i}"
        if not isinstance(s, Mapping):
            raise ConfigError(f"{where}: each [[sensors]] entry must be a table.")
        bad = sorted(set(s) - _SENSOR_KEYS)
        if bad:
            raise ConfigError(
                f"{where}: unknown key {_shown(bad[0])}; known keys: {', '.join(sorted(_SENSOR_KEYS))}."
            )
        placement = s.get("placement")
        if placement not in PLACEMENTS:
            raise ConfigError(
                f"{where}: placement must be one of {', '.join(PLACEMENTS)}, not {_shown(placement)}."
            )
        if any(x.placement == placement for x in sensors):
            raise ConfigError(
                f"{where}: placement {_shown(placement)} is given twice; one sensor per placement."
            )
        kind = s.get("kind")
        if kind not in kinds:
            raise ConfigError(f"{where}: kind must be one of {', '.join(kinds)}, not {_shown(kind)}.")
        address = s.get("address")
        if address is not None:
            if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
                raise ConfigError(
                    f"{where}: address must look like AA:BB:CC:DD:EE:FF, not {_shown(address)}."
                )
            address = address.upper()
            if address in seen_addr:
                raise ConfigError(f"{where}: address {address} is used by two sensors.")
            seen_addr.add(address)
        rate = s.get("rate_hz")
        rate = None if rate is None else _number(where, "rate_hz", rate)
        mode = s.get("mode")
        if mode is not None:
            from hipback.ingest.devices import get_profile

            modes = list(get_profile(kind).modes)
            if mode not in modes:
                raise ConfigError(
                    f"{where}: mode must be one of {', '.join(modes)} for {kind}, not {_shown(mode)}."
                )
        name = s.get("name")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"{where}: name must be text, not {_shown(name)}.")
        max_batch = s.get("max_batch")
        if max_batch is not None and (
            isinstance(max_batch, bool) or not isinstance(max_batch, int) or not 0 <= max_batch <= 255
        ):
            raise ConfigError(
                f"{where}: max_batch must be a whole number from 0 to 255, not {_shown(max_batch)}."
            )
        sensors.append(SensorConfig(placement, kind, address, rate, mode, name, max_batch))
    if not any(s.placement == "pelvis" for s in sensors):
        raise ConfigError(f'{source}: a sensor with placement "pelvis" is required.')

    pres = data.get("prescription", {})
    if not isinstance(pres, Mapping):
        raise ConfigError(f"{source}: [prescription] must be a table.")
    bad = sorted(set(pres) - {"holds_per_side", "hold_s"})
    if bad:
        raise ConfigError(
            f"{source}: unknown prescription key {_shown(bad[0])}; known keys: holds_per_side, hold_s."
        )
    holds = pres.get("holds_per_side", 3)
    if isinstance(holds, bool) or not isinstance(holds, int) or not 1 <= holds <= 20:
        raise ConfigError(
            f"{source}: prescription.holds_per_side must be a whole number from 1 to 20, not {_shown(holds)}."
        )
    hold_s = _number(f"{source}", "prescription.hold_s", pres.get("hold_s", 30.0))

    backend = env.get("HIPBACK_BLE_BACKEND") or data.get("ble_backend", "bleak")
    if backend not in BACKENDS:
        raise ConfigError(
            f"{source}: ble_backend must be one of {', '.join(BACKENDS)}, not {_shown(backend)}."
        )
    store_raw = env.get("HIPBACK_STORE") or data.get("store", "hipback.sqlite")
    if not isinstance(store_raw, str) or not store_raw.strip():
        raise ConfigError(f"{source}: store must be a file path, not {_shown(store_raw)}.")
    if any(ord(c) < 32 for c in store_raw) or len(store_raw) > 4096:
        raise ConfigError(f"{source}: store must be a file path without control characters, not "
                          f"{_shown(store_raw)}.")
    try:
        store = Path(store_raw).expanduser()
    except RuntimeError:  # "~someone/..." for a user that does not exist
        raise ConfigError(
            f"{source}: store {_shown(store_raw)} names the home folder of an unknown user."
        ) from None
    if not store.is_absolute() and base_dir is not None and "HIPBACK_STORE" not in env:
        store = base_dir / store
    scan_raw = env.get("HIPBACK_SCAN_TIMEOUT_S") or data.get("scan_timeout_s", 10.0)
    try:
        scan_raw = float(scan_raw)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{source}: scan_timeout_s must be a number, not {_shown(scan_raw)}.") from None
    scan = _number(source, "scan_timeout_s", scan_raw)
    calib = _number(source, "calibration_s", data.get("calibration_s", 5.0), allow_zero=True)
    if 0 < calib < 1:
        raise ConfigError(f"{source}: calibration_s must be 0 (skip) or at least 1 second, not {calib:g}.")
    duration = _number(source, "duration_s", data.get("duration_s", 0), allow_zero=True)
    connect_timeout = _number(source, "connect_timeout_s", data.get("connect_timeout_s", 20.0))
    lag_raw = data.get("max_sensor_lag_s", 2.0)
    lag = None if lag_raw == 0 else _number(source, "max_sensor_lag_s", lag_raw)
    batch_ms = _number(source, "live_batch_ms", data.get("live_batch_ms", DEFAULT_LIVE_BATCH_MS),
                       allow_zero=True)
    return SessionConfig(
        patient_id=patient,
        sensors=sensors,
        prescription=PrescriptionConfig(holds, hold_s),
        store=store,
        ble_backend=backend,
        scan_timeout_s=scan,
        calibration_s=calib,
        duration_s=duration or None,
        connect_timeout_s=connect_timeout,
        max_sensor_lag_s=lag,
        live_batch_ms=batch_ms or None,
        programme=_programme(data, source, base_dir),
    )


def _programme(data: Mapping[str, Any], source: str, base_dir: Path | None) -> Programme | None:
    if "programme" not in data:
        return None
    from hipback.ingest.programme import parse_programme

    return parse_programme(data["programme"], source, base_dir)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> SessionConfig:
    """Read and validate a TOML session config (raises :class:`ConfigError` with one sentence)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: the config file does not exist.") from None
    except OSError as exc:
        raise ConfigError(f"{p}: the config file cannot be read ({exc.strerror}).") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: the config file is not UTF-8 text (byte {exc.start}).") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc}).") from None
    return parse_config(data, source=str(p), base_dir=p.parent, env=env)

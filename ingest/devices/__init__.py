"""Device drivers: BLE IMU profiles and byte-level decoders (pure, no I/O).

Supported kinds: ``hipback_v1`` (the open DIY profile), ``movella_dot``, ``witmotion``. Each kind is one
:class:`DeviceProfile` in its own module, registered in :data:`PROFILES` below (``docs/adding-a-device.md``).
"""

from __future__ import annotations

from hipback.ingest.devices.base import (
    BatterySource,
    DecodedSamples,
    Decoder,
    DecoderStats,
    DeviceConfig,
    DeviceProfile,
    DeviceSetupError,
    ModeChoice,
    SampleGap,
    StatusFlag,
    Write,
)
from hipback.ingest.devices.hipback_v1 import HIPBACK_V1
from hipback.ingest.devices.movella_dot import MOVELLA_DOT
from hipback.ingest.devices.witmotion import WITMOTION

PROFILES: dict[str, DeviceProfile] = {p.kind: p for p in (HIPBACK_V1, MOVELLA_DOT, WITMOTION)}


def match_profile(name: str | None, service_uuids: list[str] | tuple[str, ...] = ()) -> DeviceProfile | None:
    """The profile of an advertising device, from its service UUIDs first, then its name; None if
    unsupported."""
    uuids = {u.lower() for u in service_uuids}
    for p in PROFILES.values():
        if uuids & {u.lower() for u in p.service_uuids}:
            return p
    for p in PROFILES.values():
        if name and any(name.startswith(pat) for pat in p.name_patterns):
            return p
    return None


def get_profile(kind: str) -> DeviceProfile:
    """Profile by kind name (raises KeyError naming the known kinds)."""
    try:
        return PROFILES[kind]
    except KeyError:
        raise KeyError(f"unknown device kind {kind!r}; known kinds: {', '.join(PROFILES)}") from None


__all__ = [
    "HIPBACK_V1",
    "MOVELLA_DOT",
    "PROFILES",
    "WITMOTION",
    "BatterySource",
    "DecodedSamples",
    "Decoder",
    "DecoderStats",
    "DeviceConfig",
    "DeviceProfile",
    "DeviceSetupError",
    "ModeChoice",
    "SampleGap",
    "StatusFlag",
    "Write",
    "get_profile",
    "match_profile",
]

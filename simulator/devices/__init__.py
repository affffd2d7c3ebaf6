"""Virtual device protocols (pure Python, no Bumble): one virtual twin per device kind.

- ``hipback_v1``: :class:`HipbackTwin` (:class:`HipbackEncoder`, :class:`HipbackState`)
- ``movella_dot``: :class:`MovellaTwin` (:class:`MovellaEncoder`, :class:`MovellaState`)
- ``witmotion``: :class:`WitMotionTwin` (:class:`WitMotionEncoder`, :class:`WitMotionState`)

A twin (:class:`DeviceTwin`) holds the device's encoder (samples -> notification payloads) and control state
machine (writes -> :class:`Effect` list, readable values) and says everything that differs per kind: GATT
layout, advertising identity, rates, initial mode, batching, behaviour on link loss, faults. :data:`TWINS`
registers them by kind (``docs/adding-a-device.md``); ``make_twin(kind, rate_hz, mtu, mode)`` builds one.

Faults: :class:`FaultInjector` (drop / truncate / duplicate packets), ``twin.clock.jump(delta_s)`` (clock
jump), :meth:`DeviceTwin.set_battery_pct` (low battery), :meth:`DeviceTwin.skip` (samples not sent).
"""

from __future__ import annotations

from typing import Any

from hipback.simulator.devices.base import (
    DeviceClock,
    DeviceTwin,
    Effect,
    FaultInjector,
    FaultPlan,
    resample_stream,
)
from hipback.simulator.devices.hipback_v1 import HipbackEncoder, HipbackState, HipbackTwin
from hipback.simulator.devices.movella_dot import MovellaEncoder, MovellaState, MovellaTwin
from hipback.simulator.devices.witmotion import WitMotionEncoder, WitMotionState, WitMotionTwin

Encoder = HipbackEncoder | MovellaEncoder | WitMotionEncoder

#: The virtual twin class of each device kind.
TWINS: dict[str, type[DeviceTwin]] = {t.KIND: t for t in (HipbackTwin, MovellaTwin, WitMotionTwin)}


def twin_class(kind: str) -> type[DeviceTwin]:
    """The twin class of ``kind`` (raises ValueError naming the known kinds)."""
    try:
        return TWINS[kind]
    except KeyError:
        raise ValueError(f"unknown device kind {kind!r}; known kinds: {', '.join(TWINS)}") from None


def make_twin(kind: str, rate_hz: float, mtu: int = 247, mode: str | None = None, **state: Any) -> DeviceTwin:
    """A twin of ``kind`` at the supported rate nearest ``rate_hz`` (``state``: state machine options)."""
    return twin_class(kind)(rate_hz, mtu, mode, **state)


def make_encoder(kind: str, rate_hz: float, mtu: int = 247, mode: str | None = None) -> Encoder:
    """Encoder (with its state, ``encoder.state``) of a twin of ``kind``."""
    return make_twin(kind, rate_hz, mtu, mode).encoder


__all__ = [
    "TWINS",
    "DeviceClock",
    "DeviceTwin",
    "Effect",
    "Encoder",
    "FaultInjector",
    "FaultPlan",
    "HipbackEncoder",
    "HipbackState",
    "HipbackTwin",
    "MovellaEncoder",
    "MovellaState",
    "MovellaTwin",
    "WitMotionEncoder",
    "WitMotionState",
    "WitMotionTwin",
    "make_encoder",
    "make_twin",
    "resample_stream",
    "twin_class",
]

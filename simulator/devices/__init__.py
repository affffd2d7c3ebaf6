"""Virtual device protocols (pure Python, no Bumble): encoders and control state machines per device kind.

- ``hipback_v1``: :class:`HipbackEncoder`, :class:`HipbackState`
- ``movella_dot``: :class:`MovellaEncoder`, :class:`MovellaState`
- ``witmotion``: :class:`WitMotionEncoder`, :class:`WitMotionState`

``make_encoder(kind, rate_hz, mtu, mode=None)`` builds one; ``encoder.state`` is its control state machine.
Faults: :class:`FaultInjector` (drop / truncate / duplicate packets), ``state.clock.jump(delta_s)`` (clock
jump), ``state.battery_pct`` / ``state.battery_v`` (low battery), :meth:`HipbackEncoder.skip` (device-side
overrun).
"""

from __future__ import annotations

from hipback.simulator.devices.base import DeviceClock, Effect, FaultInjector, FaultPlan, resample_stream
from hipback.simulator.devices.hipback_v1 import HipbackEncoder, HipbackState
from hipback.simulator.devices.movella_dot import MovellaEncoder, MovellaState
from hipback.simulator.devices.witmotion import WitMotionEncoder, WitMotionState

Encoder = HipbackEncoder | MovellaEncoder | WitMotionEncoder


def make_encoder(kind: str, rate_hz: float, mtu: int = 247, mode: str | None = None) -> Encoder:
    """Encoder (with its state) for ``kind`` in ``hipback_v1``, ``movella_dot``, ``witmotion``."""
    if kind == "hipback_v1":
        return HipbackEncoder(rate_hz, mtu, mode or "quat_raw")
    if kind == "movella_dot":
        return MovellaEncoder(rate_hz, mtu, mode or "custom5")
    if kind == "witmotion":
        return WitMotionEncoder(rate_hz, mtu)
    raise ValueError(f"unknown device kind {kind!r}; known kinds: hipback_v1, movella_dot, witmotion")


__all__ = [
    "DeviceClock",
    "Effect",
    "Encoder",
    "FaultInjector",
    "FaultPlan",
    "HipbackEncoder",
    "HipbackState",
    "MovellaEncoder",
    "MovellaState",
    "WitMotionEncoder",
    "WitMotionState",
    "make_encoder",
    "resample_stream",
]

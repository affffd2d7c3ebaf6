"""When a virtual BLE link hands notifications to the host: connection events plus a seeded delivery delay.

A BLE peripheral can only send in the connection events of its link: every ``interval_s`` (a multiple of
1.25 ms between 7.5 ms and 4 s, set by the central; IMU streams typically run at 7.5-30 ms), several
notifications per event. Samples taken since the previous event go out together; the host application sees
them after the controller, HCI transport, kernel and event loop have passed them on. That delay is small and
skewed (most packets within a couple of milliseconds, a tail from scheduling), and now and then the host
stalls for tens of milliseconds (other processes, Wi-Fi/Bluetooth coexistence), after which the queued events
arrive as one burst.

:class:`LinkTiming` describes one link's timing; :meth:`LinkTiming.schedule` yields ``(event, delivery)`` time
pairs on the simulation clock. Everything is drawn from a seeded generator, so a virtual session is the same
on every run and every machine, while the host's clock models (which, for devices without timestamps, time
the samples from these arrivals) are exercised against realistic, not idealised, arrival times.

Sources: the connection interval range and its 1.25 ms unit are from the Bluetooth Core Specification
(Vol 6, Part B, connection events). The delivery delays are modelled, not measured here: a log-normal delay
of a few milliseconds with occasional stalls, the shape reported for notification delivery on ordinary hosts
(see e.g. Tosi et al., "Performance evaluation of Bluetooth Low Energy: a systematic review", Sensors 17(12),
2017). Per-device intervals are set by the caller (:mod:`hipback.simulator.virtual_ble.sensors`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

#: Connection interval unit of the Bluetooth specification (s).
INTERVAL_UNIT_S = 0.00125


@dataclass(frozen=True)
class LinkTiming:
    """Timing of one virtual link (times in s).

    Args:
        interval_s: connection interval (rounded to the 1.25 ms unit, at least 7.5 ms).
        latency_median_s: median delay from the connection event to the application.
        latency_sigma: spread of that delay (log-normal shape parameter).
        stall_rate_hz: how often, on average, the host stalls.
        stall_max_s: longest stall (stall lengths are uniform up to this).
        seed: seed of the delays (see :meth:`for_device`).
    """

    interval_s: float = 0.015
    latency_median_s: float = 0.002
    latency_sigma: float = 0.6
    stall_rate_hz: float = 0.05
    stall_max_s: float = 0.06
    seed: int = 0

    @classmethod
    def for_device(cls, address: str, interval_s: float, **kwargs: float) -> LinkTiming:
        """Timing for the device at ``address``: its own seed (stable across runs and machines)."""
        return cls(interval_s=interval_s, seed=zlib.crc32(address.encode()), **kwargs)  # type: ignore[arg-type]

    def schedule(self, t_start: float) -> Iterator[tuple[float, float]]:
        """``(event_time, delivery_time)`` pairs from ``t_start`` on, delivery times never decreasing."""
        rng = np.random.default_rng(self.seed)
        interval = max(7.5e-3, round(self.interval_s / INTERVAL_UNIT_S) * INTERVAL_UNIT_S)
        event = t_start + float(rng.uniform(0.0, interval))
        last_delivery = -np.inf
        stall_p = self.stall_rate_hz * interval
        block = 4096
        while True:
            lat = self.latency_median_s * np.exp(self.latency_sigma * rng.standard_normal(block))
            stalls = rng.random(block) < stall_p
            stall_len = rng.uniform(0.0, self.stall_max_s, block)
            for i in range(block):
                delivery = event + float(lat[i])
                if stalls[i]:
                    delivery += float(stall_len[i])
                delivery = max(delivery, last_delivery)
                last_delivery = delivery
                yield event, delivery
                event += interval

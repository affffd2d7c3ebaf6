"""What a recording session reports: per-sensor statistics, session events and the final outcome."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hipback.processing.pipeline import SessionResults
    from hipback.simulator.virtual_ble import SensorLedger


#: Latencies a session keeps per kind (:class:`Reservoir`): every packet's for the first 100,000 packets
#: (about 8 min of 4 sensors with 20 ms packets, an hour of 3 with full ones), a uniform sample of them
#: beyond (about 3 MB per kind at most).
LATENCY_SAMPLES = 100_000


class Reservoir:
    """A bounded uniform sample of a stream of values (reservoir sampling, Vitter's algorithm R): every value
    while fewer than ``size`` came, then each of the ``n`` seen so far kept with probability ``size / n``.
    The random choices come from ``seed``, so a session on simulated time keeps the same values every run.
    Percentiles of ``values`` estimate those of the whole stream (p99 of 100,000 values: within about
    0.03 percentile points)."""

    def __init__(self, size: int = LATENCY_SAMPLES, seed: int = 0) -> None:
        self.size = size
        self.seen = 0
        self.values: list[float] = []
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
            return
        j = self._rng.randrange(self.seen)
        if j < self.size:
            self.values[j] = value


@dataclass
class SensorStats:
    """Running statistics of one sensor in a session (times in s on the session timeline).

    ``packets``: notifications received; ``samples``: samples decoded and stored; ``rejected``: packets
    refused by the decoder, by reason; ``gaps`` / ``missing``: gaps recorded and samples lost in them;
    ``disconnects`` / ``reconnects``: link losses and successful reconnections; ``battery_pct``: last reading;
    ``clock_jumps``: device clock discontinuities found by the clock model; ``failed``: why the sensor was
    left out of the session (it cannot stream as configured, see ``SessionRunner``), else None.
    """

    placement: str
    kind: str
    address: str
    name: str | None = None
    connected: bool = False
    packets: int = 0
    samples: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    gaps: int = 0
    missing: int = 0
    disconnects: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    battery_pct: float | None = None
    clock_jumps: int = 0
    first_t: float | None = None
    last_t: float | None = None
    store_errors: int = 0
    duplicates_ignored: int = 0
    errors: list[str] = field(default_factory=list)
    failed: str | None = None

    @property
    def rate_hz(self) -> float:
        """Mean stored sample rate over the streamed span (Hz; 0 before two samples)."""
        if self.first_t is None or self.last_t is None or self.last_t <= self.first_t or self.samples < 2:
            return 0.0
        return (self.samples - 1) / (self.last_t - self.first_t)

    @classmethod
    def from_dict(cls, placement: str, d: Mapping[str, Any]) -> SensorStats:
        """The statistics :meth:`as_dict` stored (a session's ``session_end`` event), read back: a value of
        the wrong type (a damaged or foreign store) is left at its default rather than trusted; ``rate_hz``
        is derived, not stored, and reads 0."""

        def num(key: str, kind: type, default: Any) -> Any:
            v = d.get(key)
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            return kind(v) if ok else default

        def text(key: str) -> str | None:
            v = d.get(key)
            return v if isinstance(v, str) else None

        rejected = d.get("rejected")
        return cls(
            placement=placement,
            kind=text("kind") or "",
            address=text("address") or "",
            name=text("name"),
            connected=d.get("connected") is True,
            packets=num("packets", int, 0),
            samples=num("samples", int, 0),
            rejected=Counter({str(k): int(v) for k, v in rejected.items()
                              if isinstance(v, int) and not isinstance(v, bool)})
            if isinstance(rejected, Mapping) else Counter(),
            gaps=num("gaps", int, 0),
            missing=num("missing", int, 0),
            disconnects=num("disconnects", int, 0),
            reconnects=num("reconnects", int, 0),
            connect_failures=num("connect_failures", int, 0),
            battery_pct=num("battery_pct", float, None),
            clock_jumps=num("clock_jumps", int, 0),
            store_errors=num("store_errors", int, 0),
            duplicates_ignored=num("duplicates_ignored", int, 0),
            failed=text("failed"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "placement": self.placement,
            "kind": self.kind,
            "address": self.address,
            "name": self.name,
            "connected": self.connected,
            "packets": self.packets,
            "samples": self.samples,
            "rejected": dict(self.rejected),
            "gaps": self.gaps,
            "missing": self.missing,
            "disconnects": self.disconnects,
            "reconnects": self.reconnects,
            "connect_failures": self.connect_failures,
            "battery_pct": self.battery_pct,
            "clock_jumps": self.clock_jumps,
            "rate_hz": round(self.rate_hz, 3),
            "store_errors": self.store_errors,
            "duplicates_ignored": self.duplicates_ignored,
            "failed": self.failed,
        }


@dataclass(frozen=True)
class SessionIdentity:
    """Who and when a session is, as the runner opened it: handed to subscribers before any data.

    ``start_utc``: UTC (Unix s) of session time 0; ``hold_s``/``holds_per_side``: the prescription.
    """

    session_id: str
    patient_id: str
    start_utc: float
    hold_s: float
    holds_per_side: int


@dataclass
class SessionEvent:
    """Something for the UI: ``kind`` (e.g. ``calibration_start``), a plain ``message``, session time (s)."""

    kind: str
    message: str
    t: float
    placement: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class SessionOutcome:
    """The end of a session: store id, statistics, processing results and measured latencies.

    ``latency_stored_s``: per packet, real time from notification arrival to its samples being durable in the
    store; ``latency_angle_s``: per packet (after calibration), real time from its arrival until the live
    angle output covered its last sample (each: every packet's up to :data:`LATENCY_SAMPLES` packets, a
    uniform sample of them beyond, see :class:`Reservoir`). ``stopped_by``: ``stop_event``, ``duration``,
    ``source_finished``, ``sensors_failed`` (no sensor can stream as configured), ``cancelled`` or ``error``.
    ``results``: the processing results without their angle series (``results.angles`` is empty): the runner
    stored it as it came (:class:`hipback.ingest.session.spool.AngleSpool`; read it back with
    :func:`hipback.ingest.results.stored_angles`); ``angle_rows`` counts its rows.
    """

    session_id: str
    patient_id: str
    start_utc: float
    end_utc: float
    stats: dict[str, SensorStats]
    results: SessionResults | None = None
    events: list[SessionEvent] = field(default_factory=list)
    latency_stored_s: list[float] = field(default_factory=list)
    latency_angle_s: list[float] = field(default_factory=list)
    #: the same per packet on the session's clock (s): on simulated time, the latency the design adds
    #: (packets, batching, waiting for the other sensors) without the host's delays; on the system clock,
    #: close to ``latency_angle_s``
    latency_angle_session_s: list[float] = field(default_factory=list)
    angle_rows: int = 0
    stopped_by: str = ""
    processing_error: str | None = None
    #: virtual sessions: placement -> the virtual sensor's ledger (what was sent, dropped, skipped ...)
    ledgers: dict[str, SensorLedger] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """No sensor delivered a stored sample: the session has no results (``results`` is None)."""
        return not any(s.samples for s in self.stats.values())

    @staticmethod
    def percentile(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

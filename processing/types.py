"""Data types shared by importers, the simulator, ingest and processing.

A :class:`Recording` is a set of :class:`SensorStream` objects, one per body placement.
Times are float64 seconds on the recording's common timeline (0 = recording start);
``Recording.start_utc`` anchors that timeline to UTC (Unix seconds) when known.

Units inside hipback are SI and radians: acc in m/s^2 (specific force, sensor frame, gravity
included: a sensor at rest reads +9.81 along its upward axis), gyr in rad/s (sensor frame),
mag in microtesla (sensor frame, arbitrary units when the device gives no calibration),
quat scalar-first (w, x, y, z) sensor-to-world (see :mod:`hipback.processing.quaternion`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Body placements (docs/biomechanics.md, "Sensors"): pelvis (sacrum S1-S2) is required,
#: at least one thigh, lumbar_upper (L1/T12) optional.
PLACEMENTS: tuple[str, ...] = ("pelvis", "thigh_left", "thigh_right", "lumbar_upper")

Placement = Literal["pelvis", "thigh_left", "thigh_right", "lumbar_upper"]

#: ``quat``: device streams on-device fusion quaternions (may also carry acc/gyr);
#: ``raw``: device streams acc/gyr(/mag) only and hipback computes orientation (VQF).
SensorKind = Literal["quat", "raw"]


@dataclass
class Gap:
    """A stretch of missing samples in one stream (never interpolated over).

    ``t_start`` is the time of the last sample before the gap and ``t_end`` the first after it (s);
    ``missing`` is the estimated number of samples lost (from sequence numbers or the nominal rate).
    """

    placement: str
    t_start: float
    t_end: float
    missing: int
    reason: str = "gap"


_F64 = np.dtype(np.float64)
_WIDTHS = (("quat", 4), ("acc", 3), ("gyr", 3), ("mag", 3))  # columns of SensorStream's sample arrays


@dataclass
class SensorStream:
    """Samples of one sensor on the recording timeline.

    Arrays share the first dimension N. ``quat`` is present for ``kind == "quat"``; ``acc`` and
    ``gyr`` are present for ``kind == "raw"`` (and optionally for quat devices). ``seq`` holds the
    device sequence numbers / packet counters when the device provides them.
    """

    placement: str
    kind: SensorKind
    t: FloatArray
    rate_hz: float
    quat: FloatArray | None = None
    acc: FloatArray | None = None
    gyr: FloatArray | None = None
    mag: FloatArray | None = None
    seq: NDArray[np.int64] | None = None
    device: str = "unknown"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # (arrays that are float64 ndarrays already, as every live chunk's, are taken as they are: what
        # np.asarray would return; the check is per chunk, so it avoids the call)
        t = self.t
        if type(t) is not np.ndarray or t.dtype is not _F64:
            t = self.t = np.asarray(t, dtype=np.float64)
        n = len(t)
        for name, width in _WIDTHS:
            arr = getattr(self, name)
            if arr is not None:
                if type(arr) is not np.ndarray or arr.dtype is not _F64:
                    arr = np.asarray(arr, dtype=np.float64)
                    setattr(self, name, arr)
                if arr.shape != (n, width):
                    raise ValueError(f"{self.placement}: {name} has shape {arr.shape}, not ({n}, {width})")
        if self.kind == "quat" and self.quat is None:
            raise ValueError(f"{self.placement}: a quaternion sensor needs quat samples")
        if self.kind == "raw" and (self.acc is None or self.gyr is None):
            raise ValueError(f"{self.placement}: a raw sensor needs acc and gyr samples")

    def __len__(self) -> int:
        return len(self.t)

    def slice(self, start: int, stop: int) -> SensorStream:
        """Samples ``[start, stop)`` as a new stream (views, no copies)."""

        def cut(a: Any) -> Any:
            return None if a is None else a[start:stop]

        return SensorStream(
            placement=self.placement,
            kind=self.kind,
            t=self.t[start:stop],
            rate_hz=self.rate_hz,
            quat=cut(self.quat),
            acc=cut(self.acc),
            gyr=cut(self.gyr),
            mag=cut(self.mag),
            seq=cut(self.seq),
            device=self.device,
            meta=self.meta,
        )


@dataclass
class Recording:
    """Several sensor streams worn at once, with the gaps found while reading them."""

    streams: dict[str, SensorStream]
    start_utc: float | None = None
    gaps: list[Gap] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def placements(self) -> list[str]:
        return [p for p in PLACEMENTS if p in self.streams] + [p for p in self.streams if p not in PLACEMENTS]

    @property
    def duration_s(self) -> float:
        ends = [s.t[-1] for s in self.streams.values() if len(s)]
        starts = [s.t[0] for s in self.streams.values() if len(s)]
        return float(max(ends) - min(starts)) if ends else 0.0


@dataclass
class AngleSeries:
    """Per-sample body angles on a uniform common timeline.

    All angles in rad, NaN where not available (a sensor not worn, a gap, not yet calibrated).
    Relative to the standing-neutral calibration unless stated otherwise (ISB conventions):

    - ``hip_flexion_left/right``: thigh relative to pelvis about the pelvis medio-lateral axis,
      flexion positive, extension negative.
    - ``pelvic_tilt``: pelvis about its medio-lateral axis relative to world vertical, anterior positive.
    - ``lumbar_flexion``: upper-lumbar segment relative to pelvis, flexion positive (NaN without that sensor).
    - ``thigh_inclination_left/right``: sagittal thigh angle from the world vertical, forward (flexion)
      positive, relative to standing neutral (about 0 standing, about +pi/2 sitting).
    - ``pelvis_inclination``: absolute angle between the pelvis long (superior) axis and world vertical,
      unsigned (0 upright, about pi/2 lying), from the calibrated segment frame.
    - ``pelvis_motion``: magnitude of the pelvis sensor's dynamic acceleration (m/s^2, gravity removed,
      smoothed); a cue for walking versus still postures.
    - ``implausible``: per-row bit mask of joint angles removed (set to NaN) because no joint can reach
      them (see :mod:`hipback.processing.plausibility`, ``FLAGS``); None when no guard ran (all zero).
    - ``pelvis_acc_vertical``: the pelvis sensor's acceleration along the world vertical (m/s^2, up
      positive, gravity removed; the evidence for initial contacts); None when not available (all NaN).
    - ``thigh_acc_left/right``: magnitude of the thigh sensor's acceleration with gravity removed (m/s^2;
      the heel-strike impact of that leg); None when not available (all NaN).
    - ``pelvis_yaw_rate``: the pelvis' angular velocity about the world vertical (rad/s; positive = turning
      left, counter-clockwise seen from above, the world frame being Z up); the evidence for turns. It
      needs no calibration (only the sensor's orientation: rotation about the vertical is the same for the
      sensor and the segment it is strapped to) and no heading reference; None when not available (all NaN).
    """

    t: FloatArray
    hip_flexion_left: FloatArray
    hip_flexion_right: FloatArray
    pelvic_tilt: FloatArray
    lumbar_flexion: FloatArray
    thigh_inclination_left: FloatArray
    thigh_inclination_right: FloatArray
    pelvis_inclination: FloatArray
    pelvis_motion: FloatArray
    implausible: NDArray[np.uint8] | None = None
    pelvis_acc_vertical: FloatArray | None = None
    thigh_acc_left: FloatArray | None = None
    thigh_acc_right: FloatArray | None = None
    pelvis_yaw_rate: FloatArray | None = None

    #: optional float fields (None when not available), kept through concat and slice
    OPTIONAL = ("pelvis_acc_vertical", "thigh_acc_left", "thigh_acc_right", "pelvis_yaw_rate")

    FIELDS = (
        "hip_flexion_left",
        "hip_flexion_right",
        "pelvic_tilt",
        "lumbar_flexion",
        "thigh_inclination_left",
        "thigh_inclination_right",
        "pelvis_inclination",
        "pelvis_motion",
    )

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls) -> AngleSeries:
        z = np.zeros(0)
        return cls(t=z, **{name: z for name in cls.FIELDS})

    def flags(self) -> NDArray[np.uint8]:
        """``implausible`` as an array (zeros when no guard ran)."""
        return np.zeros(len(self.t), dtype=np.uint8) if self.implausible is None else self.implausible

    @classmethod
    def concat(cls, parts: list[AngleSeries]) -> AngleSeries:
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        flags = None
        if any(p.implausible is not None for p in parts):
            flags = np.concatenate([p.flags() for p in parts])
        optional = {
            name: np.concatenate([p.optional(name) for p in parts])
            if any(getattr(p, name) is not None for p in parts) else None
            for name in cls.OPTIONAL
        }
        return cls(
            t=np.concatenate([p.t for p in parts]),
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.FIELDS},
            implausible=flags,
            **optional,
        )

    def optional(self, name: str) -> FloatArray:
        """An optional field (:attr:`OPTIONAL`) as an array (NaN when not available)."""
        v = getattr(self, name)
        return np.full(len(self.t), np.nan) if v is None else v

    def acc_vertical(self) -> FloatArray:
        """``pelvis_acc_vertical`` as an array (NaN when not available)."""
        if self.pelvis_acc_vertical is None:
            return np.full(len(self.t), np.nan)
        return self.pelvis_acc_vertical

    def slice(self, start: int, stop: int) -> AngleSeries:
        return AngleSeries(
            t=self.t[start:stop],
            **{n: getattr(self, n)[start:stop] for n in self.FIELDS},
            implausible=None if self.implausible is None else self.implausible[start:stop],
            **{n: None if (v := getattr(self, n)) is None else v[start:stop] for n in self.OPTIONAL},
        )

"""Data quality of a session, per sensor: samples, loss, gaps, calibration, link statistics.

Packet loss is counted in samples: ``lost = samples missing in recorded gaps`` (each :class:`Gap` carries its
estimated count, from sequence numbers or the nominal rate), ``loss % = lost / (received + lost)``. When the
session was recorded live, the runner's per-sensor statistics (the ``session_end`` event) add disconnects,
rejected packets and the last battery reading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hipback.processing.types import PLACEMENTS, Recording

if TYPE_CHECKING:
    from hipback.ingest.session.stats import SensorStats
    from hipback.processing.pipeline import SessionResults



@dataclass
class SensorQuality:
    """Quality figures of one sensor (times in s).

    ``samples``: samples received (None: not known, e.g. results read from files that do not say);
    ``lost``: samples lost on the way (recorded gaps, the link's own count); ``gaps`` / ``gap_s``: gaps in the
    data as processing saw them (any time step over 2.5 sample periods, e.g. also timing jitter of devices
    without timestamps), where angles are left empty.
    """

    placement: str
    device: str = ""
    #: which sensor it was: its BLE address (recorded live) or the id its file names (imported); "" unknown
    sensor_id: str = ""
    kind: str = ""
    rate_hz: float = math.nan
    samples: int | None = None
    lost: int = 0
    gaps: int = 0
    gap_s: float = 0.0
    calibration_quality: float | None = None
    calibration_notes: list[str] = field(default_factory=list)
    #: raw sensors: the accelerometer offset estimated in use (m/s^2, length of the per-axis offset) and
    #: from when it was corrected (s); None when the sensor fuses on the device or nothing was trusted
    acc_offset_m_s2: float | None = None
    acc_offset_from_s: float | None = None
    disconnects: int | None = None
    rejected_packets: int | None = None
    battery_pct: float | None = None

    @property
    def loss_pct(self) -> float:
        """Lost / (received + lost), in %; NaN when the samples received are not known."""
        if self.samples is None:
            return math.nan
        total = self.samples + self.lost
        return 100.0 * self.lost / total if total else 0.0


@dataclass
class DataQuality:
    """Per-sensor quality plus the processing warnings worth showing."""

    sensors: dict[str, SensorQuality]
    warnings: list[str] = field(default_factory=list)
    calibration_state: str = ""

    @property
    def worst_loss_pct(self) -> float:
        """The largest loss of a sensor whose samples are known (0 when none is)."""
        return max((s.loss_pct for s in self.sensors.values() if s.samples is not None), default=0.0)

    @property
    def total_gaps(self) -> int:
        return sum(s.gaps for s in self.sensors.values())

    @property
    def min_calibration_quality(self) -> float | None:
        q = [s.calibration_quality for s in self.sensors.values() if s.calibration_quality is not None]
        return min(q) if q else None


def assess_quality(
    recording: Recording | None, results: SessionResults | None,
    sensor_stats: Mapping[str, SensorStats] | None = None,
) -> DataQuality:
    """Quality from the recording (samples, gaps), the results (calibration, gaps, warnings) and, when given,
    the link statistics per placement (live, or read back from the store: :meth:`SensorStats.from_dict`)."""
    sensors: dict[str, SensorQuality] = {}
    placements = (
        list(recording.placements) if recording is not None
        else list(results.placements) if results is not None else []
    )
    for p in placements:
        q = SensorQuality(p)
        if recording is not None and p in recording.streams:
            s = recording.streams[p]
            q.device, q.kind, q.rate_hz, q.samples = s.device, s.kind, float(s.rate_hz), len(s)
            q.sensor_id = _sensor_id(s)
        elif results is not None:
            q.kind = results.placements.get(p, "")
        sensors[p] = q
    # samples lost: the gaps found while recording/reading (sequence numbers, link losses); without a
    # recording, the processing's gaps are all there is
    result_gaps = list(results.gaps) if results is not None else []
    link_gaps = list(recording.gaps) if recording is not None else result_gaps
    for g in _unique(link_gaps):
        if g.placement in sensors:
            sensors[g.placement].lost += int(g.missing)
    # gaps in the data as processing saw them (time steps over 2.5 sample periods, including the link's)
    data_gaps = list(link_gaps) + (result_gaps if recording is not None else [])
    for g in _unique(data_gaps):
        if g.placement in sensors:
            sq = sensors[g.placement]
            sq.gaps += 1
            sq.gap_s += max(0.0, float(g.t_end - g.t_start))
    if results is not None:
        for p, cal in results.calibration.items():
            if p in sensors:
                sensors[p].calibration_quality = float(cal.quality)
                sensors[p].calibration_notes = list(cal.reasons) + [f"flag: {f}" for f in cal.flags]
    for p, st in (sensor_stats or {}).items():
        if p not in sensors:
            continue
        sq = sensors[p]
        sq.disconnects = st.disconnects
        sq.lost = max(sq.lost, st.missing)
        sq.rejected_packets = sum(st.rejected.values())
        sq.battery_pct = st.battery_pct
        if not sq.device:
            sq.device = st.kind
    order = {p: i for i, p in enumerate(PLACEMENTS)}
    sensors = dict(sorted(sensors.items(), key=lambda kv: order.get(kv[0], 99)))
    warnings = list(results.warnings) if results is not None else []
    summary = (results.summary if results is not None else None) or {}
    offsets = summary.get("accelerometer_offset")
    for p, info in (offsets.items() if isinstance(offsets, dict) else ()):
        if p in sensors and isinstance(info, dict):
            mag, t0 = info.get("magnitude_m_s2"), info.get("first_corrected_s")
            if _finite(mag) and _finite(t0):
                sensors[p].acc_offset_m_s2, sensors[p].acc_offset_from_s = float(mag), float(t0)
    warnings += implausible_sentences(summary.get("implausible") or {})
    return DataQuality(
        sensors=sensors,
        warnings=warnings,
        calibration_state=results.calibration_state if results is not None else "",
    )


JOINT_WORDS = {
    "hip_flexion_left": "left hip angle",
    "hip_flexion_right": "right hip angle",
    "lumbar_flexion": "lumbar angle",
}


def implausible_sentences(implausible: dict[str, Any]) -> list[str]:
    """One sentence per joint angle that the plausibility guard removed samples of (a sensor or calibration
    problem, never a measure of the patient): ``implausible`` is the session summary's field."""
    out = []
    for name, c in implausible.items():
        n_range, n_rate = int(c.get("range", 0) or 0), int(c.get("rate", 0) or 0)
        if n_range + n_rate == 0:
            continue
        why = []
        if n_range:
            why.append(f"{n_range} outside what the joint can do")
        if n_rate:
            why.append(f"{n_rate} changing faster than a limb moves")
        share = 100.0 * float(c.get("share", 0.0) or 0.0)
        out.append(
            f"Sensor or calibration problem: {share:.1f} % of the {JOINT_WORDS.get(name, name)} samples "
            f"were impossible ({', '.join(why)}) and are not shown or counted; check that the sensors "
            f"were strapped firmly and that the patient stood still at the start."
        )
    return out


def _unique(gaps: list[Any]) -> list[Any]:
    """Gaps without repeats (the same gap can come from the recording and from processing)."""
    seen: set[tuple[str, float, float]] = set()
    out = []
    for g in gaps:
        key = (g.placement, round(float(g.t_start), 2), round(float(g.t_end), 2))
        if key not in seen:
            seen.add(key)
            out.append(g)
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _sensor_id(stream: object) -> str:
    """The sensor's own identity from a stream read back from the store (``sensor_id``) or from files
    (``meta["sensor_id"]``); "" when neither says."""
    ident = getattr(stream, "sensor_id", None)
    if ident is None:
        meta = getattr(stream, "meta", None)
        ident = meta.get("sensor_id") if isinstance(meta, dict) else None
    return str(ident or "")

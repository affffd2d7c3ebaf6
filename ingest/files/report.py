"""What an importer did to one file: :class:`ImportReport`, kept in ``SensorStream.meta["import"]``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: the warning of a file whose last line was cut off mid-write and ignored, the same for every dialect (see
#: "Truncated final line" in docs/recording-format.md)
TRUNCATED_LAST_LINE_WARNING = (
    "the last line was cut off (the file was not completely written) and was ignored"
)


@dataclass
class ImportReport:
    """Facts about reading one sensor file (nothing here changes the samples themselves).

    Counts are rows of the file's data table. ``rows_read`` = all data rows seen;
    ``rows_kept`` = samples in the stream; the difference is broken down in the other counters.
    Times in s on the device clock; ``units`` maps each quantity to the unit found in the file
    (the stream itself is always in hipback units: s, m/s^2, rad/s, uT or "a.u." for mag).
    """

    dialect: str
    source_file: str
    rows_read: int = 0
    rows_kept: int = 0
    #: rows that were read but not kept (leading zero rows + rows without required data + out-of-range rows
    #: + truncated line)
    rows_rejected: int = 0
    #: leading rows whose acc and gyr are all exactly 0 (the device had no inertial data yet)
    leading_zero_rows_dropped: int = 0
    #: rows without the quantities the stream needs (NaN/empty quaternion, or acc/gyr on raw streams)
    rows_without_data: int = 0
    #: repeated samples (same packet counter, or same time when there is no counter), dropped
    duplicates_dropped: int = 0
    #: rows dropped because a value lies beyond what the sensor can produce, by quantity (acc, gyr, mag,
    #: quat); a row with several such values counts once per quantity
    out_of_range: dict[str, int] = field(default_factory=dict)
    #: True when the last line was cut off mid-write and ignored (see docs/recording-format.md)
    truncated_last_line: bool = False
    #: wrap-arounds undone in the device clock and the packet counter
    unwrap_events: int = 0
    gaps: int = 0
    missing_samples: int = 0
    #: where the time axis came from, e.g. "SampleTimeFine (us)", "PacketCounter / Update Rate", "time_s"
    time_source: str = ""
    #: sample rate from the median time step (Hz) and the nominal rate stated in the file, if any
    rate_hz_measured: float | None = None
    rate_hz_stated: float | None = None
    #: device-clock time (s) of the stream's first sample (t = 0 of the stream before alignment)
    device_t0_s: float | None = None
    #: period (s) after which the device clock wraps, when known (to compare the clocks of several sensors)
    clock_period_s: float | None = None
    #: one tick of the time source (s): 1e-6 for a microsecond clock, 1 / rate for a packet counter
    clock_tick_s: float | None = None
    #: UTC (Unix s) of the stream's first sample, when the file states it; file line of that sample
    start_utc: float | None = None
    first_data_line: int | None = None
    units: dict[str, str] = field(default_factory=dict)
    #: columns present in the file that hipback does not use
    ignored_columns: list[str] = field(default_factory=list)
    #: header facts found in the file (update rate, filter profile, firmware, start time, ...)
    header: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: a file with quaternions read as a raw stream because the device's orientation did not follow its own
    #: gyroscope: that departure (rad/s, 90th percentile on the quiet samples); None otherwise
    orientation_residual_rad_s: float | None = None

    def note_truncated_last_line(self, truncated: bool) -> None:
        """Record whether the file's last line was cut off mid-write and ignored: sets
        :attr:`truncated_last_line` and, when it was, adds :data:`TRUNCATED_LAST_LINE_WARNING` to
        :attr:`warnings` (which ``hipback process`` prints and keeps in summary.json)."""
        self.truncated_last_line = bool(truncated)
        if truncated and TRUNCATED_LAST_LINE_WARNING not in self.warnings:
            self.warnings.append(TRUNCATED_LAST_LINE_WARNING)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

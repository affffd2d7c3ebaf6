"""The session pipeline: sensor chunks in, calibrated angles, strides, holds and activity out.

:class:`SessionProcessor` composes one block per algorithm (:mod:`hipback.processing.blocks` states the
contract they share), each built with its parameters by the caller or from a named preset:

1. :class:`~hipback.processing.channel.SensorChannel` per sensor: validation, orientation (VQF or device
   quaternions, a raw sensor's accelerometer offset estimated in use and subtracted first), resampling onto
   the common grid ``k / rate_hz``;
2. :class:`~hipback.processing.merge.GridMerge`: the sensors' rows combined, per-row stillness and motion;
3. :class:`~hipback.processing.calibration_search.CalibrationSearch`: standing window, functional movement,
   sensor-to-segment calibration (or a given one);
   :class:`~hipback.processing.calibration_search.AccOffsetFrame` then turns each calibrated raw sensor's
   rows so that a change of its offset estimate keeps the calibration posture's vertical as measured (the
   channels run with ``acc_bias_keep_frame`` off: the reference is the calibration's posture, not the
   stream's first still one, which may be a table the sensor lay on before it was strapped on);
4. :class:`~hipback.processing.slip.SlipMonitor`: sensors that slipped or turned after calibration;
5. angles (:func:`~hipback.processing.angles.compute_angles`, a stateless function), then the
   :class:`~hipback.processing.plausibility.PlausibilityGuard` (joint angles no joint can reach are removed
   and flagged);
6. the event detectors on the guarded angles: a :class:`~hipback.processing.gait.StrideDetector` per worn
   thigh, the :class:`~hipback.processing.holds.HoldDetector`, the
   :class:`~hipback.processing.activity.ActivityClassifier`;
7. :class:`~hipback.processing.summary.SessionSummary`.

One implementation serves streaming and batch: :meth:`SessionProcessor.feed` takes chunks of any size in any
sensor order, :meth:`SessionProcessor.poll` returns what became final since the last poll,
:meth:`SessionProcessor.finish` flushes and returns :class:`SessionResults`; :func:`process_recording` feeds
a whole :class:`~hipback.processing.types.Recording` in one piece through the very same object. Every
decision is taken at a data-defined sample, so the chunking does not change any result.

Live chunks are small (BLE delivers 1-10 samples per notification). :meth:`SessionProcessor.feed` therefore
only queues a chunk; the blocks run once every sensor has queued at least ``live_batch_s`` of samples (or any
sensor a full second, so a silent sensor does not stop the others when ``max_sensor_lag_s`` is set), which
bounds the added latency by ``live_batch_s`` and keeps the per-sample cost near that of batch processing.
:meth:`SessionProcessor.flush` runs them at once.

Only the angle path (steps 1-5) runs at every such step: it is what the live view waits for, and the
calibration it uses depends on everything before it. The event detectors and the summary (steps 6-7) take the
guarded angles, and the exercise block the segment orientations; none gives anything back to the angle path,
so they are fed in rounds: the hold detector, whose hold in progress the live coach shows, and the exercise
block, whose reps it counts, once at least ``hold_step_s`` of rows waits, the stride detectors, the activity
classifier and the summary once ``event_step_s`` does. A round that became due runs at
:meth:`SessionProcessor.run_events`, which a live caller calls after handing out the step's angles
(:meth:`SessionProcessor.poll`), so that its work does not delay them, or else before the next step;
:meth:`SessionProcessor.flush` and :meth:`SessionProcessor.finish` feed what is left. The event blocks'
results do not depend on the chunking (the block contract), so the rounds change no result, only when a
stride, hold, bout or rep reaches :meth:`SessionProcessor.poll`.

:data:`PRESETS` holds named parameter sets (:class:`ProcessorConfig`); :meth:`SessionProcessor.default`
builds a processor from one. Summary (:attr:`SessionResults.summary`): degrees at this edge (``_deg``), see
:func:`hipback.processing.summary.build_summary`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import numpy as np

from hipback.processing.activity import ActivityBout, ActivityClassifier
from hipback.processing.angles import compute_angles_stacked, vertical_rate
from hipback.processing.blocks import SMALL_CHUNK, Block
from hipback.processing.calibration import CalibrationSettings, SensorCalibration
from hipback.processing.calibration_search import AccOffsetFrame, CalibratedRows, CalibrationSearch
from hipback.processing.channel import ORIENTATION_FILTERS, SensorChannel
from hipback.processing.exercises.engine import RepResult
from hipback.processing.exercises.stream import ProgrammeEvent, SegmentFrame, segment_rate
from hipback.processing.gait import Stride, StrideDetector, WalkingBout
from hipback.processing.holds import Hold, HoldDetector, HoldProgress, Prescription
from hipback.processing.merge import GridMerge, Rows
from hipback.processing.plausibility import PlausibilityGuard
from hipback.processing.quaternion import multiply as quat_multiply
from hipback.processing.slip import SlipMonitor, source_placement
from hipback.processing.summary import SessionSummary, SummaryInput, acc_offset_info, build_summary
from hipback.processing.types import PLACEMENTS, AngleSeries, Gap, Recording, SensorStream

__all__ = [
    "PRESETS",
    "ProcessorConfig",
    "ProcessorUpdate",
    "SessionProcessor",
    "SessionResults",
    "build_summary",
    "process_recording",
]


#: what a session's exercise block returns: counted reps (a counter) or programme events (a programme runner)
ExerciseEvent = RepResult | ProgrammeEvent

R = TypeVar("R", AngleSeries, SegmentFrame)  # rows a block is fed in rounds (:class:`_RowRounds`)

#: The angle rows kept for :class:`SessionResults` are joined into one part per this many seconds of rows: a
#: live session's steps (20 ms) would otherwise keep a set of small arrays per step, about 450 MB per hour of
#: session against the rows' own 75 MB (``bench/README.md``, "Long sessions").
KEEP_BLOCK_S = 10.0


@dataclass
class ProcessorConfig:
    """A flat parameter set of the session pipeline (SI units, rad), from which the blocks are built.

    ``rate_hz`` grid rate; ``use_mag``/``vqf_params``/``gap_factor``/``reset_gap_s``/``orientation`` go to
    every :class:`SensorChannel` (``orientation``: the raw sensors' filter, ``"causal"`` or ``"lagged"``, see
    :mod:`hipback.processing.channel`; ``"lagged"`` makes rows final up to 6 s later, for reprocessing, not
    live angles); ``max_sensor_lag_s`` to :class:`GridMerge`; ``calibration``,
    ``calibration_timeout_s``, ``min_short_standing_s``, ``initial_calibration``, ``swap_wrong_side``,
    ``refine_axes`` to :class:`CalibrationSearch`; ``slip_*``, ``recalibrate_on_slip``, ``walk_*`` to
    :class:`SlipMonitor`;
    ``holds_per_side``/``hold_s`` (the prescription) to :class:`HoldDetector` and :class:`SessionSummary`;
    ``keep_angles`` keeps every angle row for :class:`SessionResults`; ``detectors`` False runs no event
    detector; ``live_batch_s``, ``hold_step_s`` and ``event_step_s`` (s) see the module docstring.
    ``acc_bias_initial``: placement -> a raw sensor's accelerometer offset known from an earlier session of
    the same device (m/s^2, sensor frame), subtracted from the first sample on until the session's own
    estimate is trusted (``initial`` of :class:`~hipback.processing.acc_bias.AccBiasEstimator`); quaternion
    sensors ignore it.

    ``hold_step_s`` is 0.25 s, the rounds in which the hold detector hands its input to its own computation
    anyway (:class:`~hipback.processing.events.WindowedStream`): its hold in progress
    (:meth:`~hipback.processing.holds.HoldDetector.current`, the live coach's timer and arching cue) lags the
    angles by at most about what it lagged when it was fed at every step (0.25 s, one step and its
    look-ahead). ``event_step_s`` is 1 s, the activity classifier's own round (``batch_s``): a stride is final
    only once the next one began and a bout after its 2 s minimum, so a second more before they reach
    :meth:`SessionProcessor.poll` delays nothing that is shown as it happens, and the stride detectors work on
    a second of rows at a time instead of a quarter.
    """

    rate_hz: float = 100.0
    use_mag: bool | None = None
    vqf_params: dict[str, Any] | None = None
    gap_factor: float = 2.5
    reset_gap_s: float = 0.2
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    calibration_timeout_s: float = 60.0
    min_short_standing_s: float = 1.0
    initial_calibration: dict[str, SensorCalibration] | None = None
    refine_axes: bool = False
    max_sensor_lag_s: float | None = None
    slip_threshold_rad: float = math.radians(10.0)
    slip_reference_rad: float = math.radians(5.0)
    recalibrate_on_slip: bool = True
    walk_check_s: float = 3.0
    walk_axis_slip_rad: float = math.radians(9.0)
    keep_angles: bool = True
    swap_wrong_side: bool = True
    holds_per_side: int = 3
    hold_s: float = 30.0
    detectors: bool = True
    live_batch_s: float = 0.05
    orientation: str = "causal"
    hold_step_s: float = 0.25
    event_step_s: float = 1.0
    acc_bias_initial: dict[str, tuple[float, float, float]] | None = None

    def __post_init__(self) -> None:
        for placement, offset in (self.acc_bias_initial or {}).items():
            values = np.asarray(offset, dtype=np.float64) if isinstance(offset, list | tuple) else None
            if values is None or values.shape != (3,) or not np.isfinite(values).all():
                raise ValueError(
                    f"acc_bias_initial of {placement} must be three finite numbers (m/s^2), not {offset!r}"
                )
        for name in ("hold_step_s", "event_step_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0.0):
                raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")
        if self.orientation not in ORIENTATION_FILTERS:
            names = ", ".join(ORIENTATION_FILTERS)
            raise ValueError(f"orientation must be one of {names}, not {self.orientation!r}")
        if self.orientation == "lagged" and self.use_mag:
            raise ValueError("the lagged orientation filter is 6D only: not with use_mag=True")
        if self.orientation == "lagged" and self.max_sensor_lag_s is not None:
            # its rows come up to 6 s late: the merge would take its sensors for missing
            raise ValueError("the lagged orientation filter cannot be combined with max_sensor_lag_s")


#: Named parameter sets. ``default``: clinic and home sessions as designed (standing calibration, walks,
#: stretch holds). ``no_events``: angles only (no stride, hold or activity detection).
PRESETS: dict[str, ProcessorConfig] = {
    "default": ProcessorConfig(),
    "no_events": ProcessorConfig(detectors=False),
}


@dataclass
class ProcessorUpdate:
    """What became final since the previous :meth:`SessionProcessor.poll`.

    ``angles.implausible`` flags rows whose joint angles were removed by the plausibility guard;
    ``hold_progress``: the stretch hold in progress as the hold detector sees it now (None when there is
    none), for a live view; ``hold_min_duration_s``: the detector's shortest hold (s).
    """

    angles: AngleSeries
    strides: list[Stride]
    holds: list[Hold]
    activity: list[ActivityBout]
    messages: list[str]
    calibration_state: str
    calibration: dict[str, SensorCalibration]
    hold_progress: HoldProgress | None = None
    hold_min_duration_s: float = HoldDetector.min_duration_s
    #: what the exercise block (``exercises``, e.g. a ProgrammeRunner) returned: programme events or reps
    exercise_events: list[ExerciseEvent] = field(default_factory=list)


@dataclass
class SessionResults:
    """Everything a session produced (angles in rad on the common timeline; summary in degrees)."""

    angles: AngleSeries
    strides: list[Stride]
    bouts: list[WalkingBout]
    holds: list[Hold]
    activity: list[ActivityBout]
    calibration: dict[str, SensorCalibration]
    calibration_state: str
    warnings: list[str]
    messages: list[str]
    gaps: list[Gap]
    summary: dict[str, Any]
    placements: dict[str, str]
    exercise_events: list[ExerciseEvent] = field(default_factory=list)


def _acc_bias_initial(
    channel: SensorChannel, initial: dict[str, tuple[float, float, float]] | None, placement: str
) -> dict[str, Any]:
    """The channel parameters that give ``placement``'s offset estimator the offset known beforehand."""
    if not initial or placement not in initial:
        return {}
    params = dict(channel.acc_bias_params or {})
    params["initial"] = tuple(float(v) for v in initial[placement])
    return {"acc_bias_params": params}


def _rebuild(block: Any, **changes: Any) -> Any:
    """A fresh copy of a template block with some parameters replaced."""
    return type(block)(**{**block.get_params(), **changes})


class SessionProcessor:
    """Streaming session pipeline composed of blocks (see the module docstring).

    :param sensors: placement -> ``"quat"`` or ``"raw"`` for every worn sensor (the pelvis is required).
    :param rates: placement -> nominal sampling rate (Hz).
    :param config: the parameter set the blocks not given are built from (default ``PRESETS["default"]``).
    :param channel: template :class:`SensorChannel` (its placement, kind and rates are set per sensor, and
        ``acc_bias_keep_frame`` off: the processor keeps the calibration's frame itself).
    :param merge: template :class:`GridMerge` (placements and grid rate set by the session).
    :param calibration: template :class:`CalibrationSearch` (placements and grid rate set by the session).
    :param slip_monitor: :class:`SlipMonitor`, or None for the configured one.
    :param guard: :class:`PlausibilityGuard`, or None for the default one.
    :param stride_detector: template :class:`StrideDetector` (cloned per worn thigh with its side).
    :param hold_detector: :class:`HoldDetector` (default: with the configured prescription).
    :param activity: :class:`ActivityClassifier`.
    :param summary: :class:`SessionSummary` (default: with the configured prescription).
    :param exercises: a block fed the calibrated segment orientations
        (:class:`hipback.processing.exercises.SegmentFrame`), e.g. a
        :class:`~hipback.processing.exercises.ProgrammeRunner`; what it returns is in ``exercise_events``.
        With it, quaternion devices that deliver their gyroscope get it into the frame (``SegmentFrame.gyr``:
        the segment's angular velocity in its own frame, rad/s), as
        :func:`hipback.processing.exercises.stream.recording_frame` does.

    Blocks given are copied (``get_params``), so one template can serve many sessions.
    """

    def __init__(
        self,
        sensors: Mapping[str, str],
        rates: Mapping[str, float],
        config: ProcessorConfig | None = None,
        *,
        channel: SensorChannel | None = None,
        merge: GridMerge | None = None,
        calibration: CalibrationSearch | None = None,
        slip_monitor: SlipMonitor | None = None,
        guard: PlausibilityGuard | None = None,
        stride_detector: StrideDetector | None = None,
        hold_detector: HoldDetector | None = None,
        activity: ActivityClassifier | None = None,
        summary: SessionSummary | None = None,
        exercises: Block | None = None,
    ) -> None:
        self.cfg = cfg = config or ProcessorConfig()
        unknown = [p for p in sensors if p not in PLACEMENTS]
        if unknown:
            raise ValueError(f"unknown placement {unknown[0]!r}; use one of {', '.join(PLACEMENTS)}")
        if "pelvis" not in sensors:
            raise ValueError("a pelvis sensor is required")
        missing_rate = [p for p in sensors if p not in rates]
        if missing_rate:
            raise ValueError(f"no sampling rate given for {missing_rate[0]}")
        self.placements = [p for p in PLACEMENTS if p in sensors]
        self.kinds = dict(sensors)
        self.rate = float(cfg.rate_hz)
        pl = tuple(self.placements)
        r = self.rate
        ch = channel or SensorChannel(
            "pelvis",
            "raw",
            100.0,
            grid_rate_hz=r,
            use_mag=cfg.use_mag,
            vqf_params=cfg.vqf_params,
            gap_factor=cfg.gap_factor,
            reset_gap_s=cfg.reset_gap_s,
            orientation=cfg.orientation,
        )
        # the gyroscope of quaternion devices is carried only for an exercise block (the heading between its
        # alignments, see hipback.processing.exercises.stream); raw devices' orientation already comes from it
        gyro = tuple(p for p in self.placements if exercises is not None and sensors[p] == "quat")
        # the raw sensors' accelerometer offset: the channels estimate and subtract it, their output is the
        # filter's own orientation; the frame is kept at the calibration posture below (AccOffsetFrame)
        self.channels = {
            p: _rebuild(
                ch,
                placement=p,
                kind=sensors[p],
                rate_hz=float(rates[p]),
                grid_rate_hz=r,
                gyroscope=p in gyro,
                acc_bias_keep_frame=False,
                **_acc_bias_initial(ch, cfg.acc_bias_initial, p),
            )
            for p in self.placements
        }
        self.acc_offset_frame = AccOffsetFrame(
            {p: est for p, c in self.channels.items() if (est := c.acc_bias_estimator_) is not None}, r
        )
        mg = merge or GridMerge(
            pl,
            rate_hz=r,
            max_sensor_lag_s=cfg.max_sensor_lag_s,
            still_gyr_rad_s=cfg.calibration.still_gyr_rad_s,
            max_x_tilt_rad=cfg.calibration.max_x_tilt_rad,
        )
        self.merge = _rebuild(mg, placements=pl, rate_hz=r, gyroscope=gyro)
        cal = calibration or CalibrationSearch(
            pl,
            rate_hz=r,
            settings=cfg.calibration,
            timeout_s=cfg.calibration_timeout_s,
            min_short_standing_s=cfg.min_short_standing_s,
            initial_calibration=cfg.initial_calibration,
            swap_wrong_side=cfg.swap_wrong_side,
            refine_axes=cfg.refine_axes,
        )
        self.calibration_search = _rebuild(cal, placements=pl, rate_hz=r)
        sm = slip_monitor or SlipMonitor(
            rate_hz=r,
            min_standing_s=cfg.calibration.min_standing_s,
            slip_threshold_rad=cfg.slip_threshold_rad,
            slip_reference_rad=cfg.slip_reference_rad,
            recalibrate=cfg.recalibrate_on_slip,
            walk_check_s=cfg.walk_check_s,
            walk_axis_slip_rad=cfg.walk_axis_slip_rad,
            motion_gyr_rad_s=cfg.calibration.motion_gyr_rad_s,
        )
        self.slip_monitor = _rebuild(sm, rate_hz=r)
        self.guard = (guard or PlausibilityGuard()).clone()
        self.stride_detectors: dict[str, StrideDetector] = {}
        self.hold_detector: HoldDetector | None = None
        self.activity_classifier: ActivityClassifier | None = None
        prescription = Prescription(cfg.holds_per_side, cfg.hold_s)
        if cfg.detectors:
            sd = stride_detector or StrideDetector("left")
            for side in ("left", "right"):
                if f"thigh_{side}" in sensors:
                    self.stride_detectors[side] = _rebuild(sd, side=side)
            self.hold_detector = (hold_detector or HoldDetector(prescription=prescription)).clone()
            self.activity_classifier = (activity or ActivityClassifier()).clone()
        self.summary_block = (
            summary or SessionSummary(rate_hz=r, holds_per_side=cfg.holds_per_side, hold_s=cfg.hold_s)
        ).clone()
        self.exercises = None if exercises is None else exercises.clone()
        self.exercise_events: list[ExerciseEvent] = []
        self._new_exercise_events: list[ExerciseEvent] = []
        self.live_batch_s = cfg.live_batch_s
        # inbox (see the module docstring): queued chunks per sensor and the samples they hold
        self._inbox: dict[str, list[SensorStream]] = {p: [] for p in self.placements}
        self._inbox_n = {p: 0 for p in self.placements}
        self._need = {p: max(1, math.ceil(cfg.live_batch_s * rates[p])) for p in self.placements}
        self._cap = {p: max(1, math.ceil(1.0 * rates[p])) for p in self.placements}
        self._short = len(self.placements)  # sensors with less than their _need queued
        # angle rows waiting for the hold detector, and for the other event detectors and the summary
        self._hold_rows = _RowRounds(cfg.hold_step_s * self.rate, AngleSeries.concat)
        self._exercise_rows = _RowRounds(cfg.hold_step_s * self.rate, SegmentFrame.concat)  # (hold rounds)
        self._event_rows = _RowRounds(cfg.event_step_s * self.rate, AngleSeries.concat)
        self._seen = {id(b): 0 for b in self._message_sources()}
        self._angles: list[AngleSeries] = []  # the kept rows, joined per KEEP_BLOCK_S
        self._kept = _RowRounds(KEEP_BLOCK_S * self.rate, AngleSeries.concat)  # kept rows not joined yet
        self._new_angles: list[AngleSeries] = []
        self._messages: list[str] = []
        self._new_messages: list[str] = []
        self._new_strides: list[Stride] = []
        self._new_holds: list[Hold] = []
        self._new_activity: list[ActivityBout] = []
        self.strides: list[Stride] = []
        self.holds: list[Hold] = []
        self.activity: list[ActivityBout] = []
        self._finished = False
        self._empty_angles = AngleSeries.empty()
        self._collect_messages()

    @classmethod
    def default(
        cls, sensors: dict[str, str], rates: dict[str, float], preset: str = "default", **overrides: Any
    ) -> SessionProcessor:
        """A processor from a named preset (:data:`PRESETS`), with some of its parameters replaced."""
        if preset not in PRESETS:
            raise KeyError(f"unknown preset {preset!r}; valid names: {', '.join(sorted(PRESETS))}")
        return cls(sensors, rates, replace(PRESETS[preset], **overrides))

    # -- state read by callers ---------------------------------------------------------------------------
    @property
    def calibration(self) -> dict[str, SensorCalibration]:
        """The calibration in force now (after any slip recalibration), placement -> calibration."""
        return self.slip_monitor.calibration_ or self.calibration_search.calibration_

    @property
    def state(self) -> str:
        """``searching_standing``, ``waiting_for_movement``, ``calibrating`` or ``calibrated``."""
        return self.calibration_search.state_

    @property
    def warnings(self) -> list[str]:
        """Warnings so far (calibration, slips)."""
        return self.calibration_search.warnings_ + self.slip_monitor.warnings_

    def _message_sources(self) -> list[Any]:
        return [*self.channels.values(), self.calibration_search, self.slip_monitor]

    def _collect_messages(self) -> None:
        for b in self._message_sources():
            n = self._seen[id(b)]
            if len(b.messages_) > n:
                self._new_messages.extend(b.messages_[n:])
                self._seen[id(b)] = len(b.messages_)

    @property
    def has_new_output(self) -> bool:
        """Whether :meth:`poll` would return anything new now (angles, strides, holds, bouts, messages or
        exercise events): a caller that polls after every chunk can skip the empty polls."""
        return bool(
            self._new_angles or self._new_strides or self._new_holds or self._new_activity
            or self._new_messages or self._new_exercise_events
        )

    # -- public API -------------------------------------------------------------------------------------
    def feed(self, chunk: SensorStream) -> None:
        """Take the next samples of one sensor (times continuing that sensor's previous chunk)."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        p = chunk.placement
        if p not in self._inbox:
            self._new_messages.append(f"{p}: samples for a sensor that is not part of this session ignored")
            return
        if chunk.kind != self.kinds[p]:
            self._new_messages.append(
                f"{p}: expected {self.kinds[p]} samples, got {chunk.kind}; chunk ignored"
            )
            return
        n = len(chunk.t)
        if n == 0:
            return
        self._inbox[p].append(chunk)
        before = self._inbox_n[p]
        self._inbox_n[p] = after = before + n
        if before < self._need[p] <= after:
            self._short -= 1  # this sensor now has live_batch_s queued
        if after >= self._cap[p] or self._short == 0:
            self._step()

    def flush(self) -> None:
        """Run the blocks on everything queued now: the angle path on the queued chunks (:meth:`feed` does
        it once ``live_batch_s`` is queued), then the event detectors and the summary on the angle rows
        waiting for their round (``event_step_s``)."""
        self._step()
        self._holds_round()
        self._events_round()

    def run_events(self) -> None:
        """Feed the event detectors and the summary the rounds of angle rows that are due (at least
        ``hold_step_s`` or ``event_step_s`` waiting; see the module docstring). A live caller calls it after
        :meth:`poll` handed out the angles; otherwise the next live step does it first."""
        if self._hold_rows.due or self._exercise_rows.due:
            self._holds_round()
        if self._event_rows.due:
            self._events_round()

    def _step(self) -> None:
        """One live step: the due event rounds, then the angle path on every queued chunk (see the module
        docstring)."""
        self.run_events()
        self._short = len(self.placements)  # every inbox is empty below
        grids = []
        for p in self.placements:
            parts = self._inbox[p]
            if not parts:
                continue
            self._inbox[p] = []
            self._inbox_n[p] = 0
            try:
                chunk = parts[0] if len(parts) == 1 else _concat_streams(parts)
                grids.append(self.channels[p].update(chunk))
            except ValueError as exc:  # malformed chunk (e.g. missing magnetometer): report, keep going
                self._new_messages.append(f"{p}: chunk ignored ({exc})")
        if grids:  # every sensor's new rows first, then one merge (the blocks after it run once per flush)
            for gc in grids[:-1]:
                self.merge.add(gc)
            self._rows(self.merge.update(grids[-1]))
        self._collect_messages()

    def mark_calibration(self, t0: float, t1: float) -> None:
        """Use ``[t0, t1]`` (s) as the standing-neutral window instead of searching for one.

        Effective when given before calibration completed; later it is reported and ignored.
        """
        self._step()
        self.calibration_search.mark(t0, t1)
        self._collect_messages()

    def poll(self) -> ProcessorUpdate:
        """Return the angles/events/messages that became final since the previous poll."""
        self._collect_messages()
        upd = ProcessorUpdate(
            angles=AngleSeries.concat(self._new_angles) if self._new_angles else self._empty_angles,
            strides=self._new_strides,
            holds=self._new_holds,
            activity=self._new_activity,
            messages=self._new_messages,
            calibration_state=self.state,
            calibration=dict(self.calibration),
        )
        if self.hold_detector is not None:
            upd.hold_progress = self.hold_detector.current()
            upd.hold_min_duration_s = self.hold_detector.min_duration_s
        upd.exercise_events, self._new_exercise_events = self._new_exercise_events, []
        self._messages.extend(self._new_messages)
        self._new_angles, self._new_strides, self._new_holds, self._new_activity = [], [], [], []
        self._new_messages = []
        return upd

    def finish(self) -> SessionResults:
        """No more samples: flush everything and return the session results.

        What became final during the flush is also still available from one more :meth:`poll`.
        """
        if not self._finished:
            self._step()
            self._finished = True
            for c in self.channels.values():
                self.merge.add(c.finish())  # (rows a delayed orientation filter still held)
            self._rows(self.merge.finish())
            for cr in self.calibration_search.finish():
                self._calibrated(cr)
            self.slip_monitor.finish()
            self.guard.finish()
            self._holds_round()  # the angle rows still waiting for the event detectors
            self._events_round()
            for det in self.stride_detectors.values():
                self._collect(det.finish(), "stride")
            if self.hold_detector is not None:
                self._collect(self.hold_detector.finish(), "hold")
            if self.activity_classifier is not None:
                self._collect(self.activity_classifier.finish(), "activity")
            if self.exercises is not None:
                self._exercise_events(self.exercises.finish())
            self._collect_messages()
            self.summary_block.update(
                SummaryInput(
                    AngleSeries.empty(),
                    calibration=self.calibration,
                    implausible=self.guard.summary(),
                    acc_offset={
                        p: acc_offset_info(est)
                        for p, c in self.channels.items()
                        if (est := c.acc_bias_estimator_) is not None
                    }
                    or None,  # (sessions without raw sensors: no such key)
                )
            )
            self.summary_block.finish()
            rest = self._kept.take()  # the kept rows not joined yet
            if rest is not None:
                self._angles.append(rest)
        bouts: list[WalkingBout] = []
        for det in self.stride_detectors.values():
            bouts.extend(det.bouts_)
        gaps = [g for ch in self.channels.values() for g in ch.gaps_]
        summary = self.summary_block.summary_
        assert summary is not None
        return SessionResults(
            angles=AngleSeries.concat(self._angles),
            strides=sorted(self.strides, key=lambda s: (s.t_start, s.side)),
            bouts=bouts,
            holds=list(self.holds),
            activity=list(self.activity),
            calibration=dict(self.calibration),
            calibration_state=self.state,
            warnings=list(self.warnings),
            messages=list(self._messages) + list(self._new_messages),
            gaps=gaps,
            summary=summary,
            placements=dict(self.kinds),
            exercise_events=list(self.exercise_events),
        )

    # -- composition ------------------------------------------------------------------------------------
    def _stride_confidence(self, st: Stride) -> None:
        """Propagate the thigh's calibration uncertainty to the stride (:func:`calibration_factor`)."""
        cal = self.calibration.get(f"thigh_{st.side}")
        if cal is None:
            return
        st.ml_uncertainty_deg = cal.ml_uncertainty_deg
        st.confidence = round(st.confidence * calibration_factor(cal.ml_uncertainty_deg), 3)

    def _rows(self, rows: Rows) -> None:
        if len(rows) == 0:
            return
        for cr in self.calibration_search.update(rows):
            self._calibrated(cr)

    def _calibrated(self, cr: CalibratedRows) -> None:
        for piece in self.slip_monitor.update(self.acc_offset_frame.apply(cr)):
            self._emit(piece)

    def _exercise_events(self, events: list[ExerciseEvent]) -> None:
        self.exercise_events.extend(events)
        self._new_exercise_events.extend(events)

    def _emit(self, cr: CalibratedRows) -> None:
        rows = cr.rows
        if len(rows) == 0:
            return
        t = rows.k / self.rate
        seg: dict[str, np.ndarray | None] = {p: None for p in self.placements}
        names: list[str] = []  # the calibrated placements, in the order of q_seg's first axis
        q_seg: np.ndarray | None = None
        if cr.calibration is not None:
            # SensorCalibration.segment_quat (q_sensor * q_segment_in_sensor) for every calibrated sensor in
            # one broadcast product: the same elementwise values, a quarter of the numpy calls
            cals = [(p, c) for p in self.placements if (c := cr.calibration.get(p)) is not None]
            names = [p for p, _ in cals]
            if cals and len(rows) <= SMALL_CHUNK:
                q_seg = _segment_quats_small([rows.q[source_placement(p, cr.swap)] for p, _ in cals], cals)
            if q_seg is not None:
                for i, (p, _) in enumerate(cals):
                    seg[p] = q_seg[i]
            elif cals:
                q_sensor = np.stack([rows.q[source_placement(p, cr.swap)] for p, _ in cals])
                q_mount = np.stack([c.q_segment_in_sensor for _, c in cals])[:, None, :]
                q_seg = quat_multiply(q_sensor, q_mount)
                for i, (p, _) in enumerate(cals):
                    seg[p] = q_seg[i]
            if self.exercises is not None:
                # the gyroscope (sensor frame) of the sensor each segment is measured by, in the segment's
                # frame
                gyr = {
                    p: segment_rate(c, rows.gyr[src])
                    for p, c in cals
                    if (src := source_placement(p, cr.swap)) in rows.gyr
                }
                frame = SegmentFrame(t, {p: q for p, q in seg.items() if q is not None}, gyr, rows.acc[:, 0])
                self._queue_exercise_rows(frame)
        # the thighs' acceleration columns follow the sensors (exchanged with the thighs when swapped)
        thigh_acc = tuple(
            rows.acc[:, 2 if source_placement(p, cr.swap) == "thigh_left" else 3]
            if p in self.placements else None
            for p in ("thigh_left", "thigh_right")
        )
        # the pelvis' turning rate about the world vertical (its sensor's orientation and angular velocity)
        yaw = vertical_rate(rows.q["pelvis"], rows.omega["pelvis"]) if "pelvis" in rows.omega else None
        # (the segment orientations as the one array they are: compute_angles would stack them again)
        ang = self.guard.update(
            compute_angles_stacked(t, names, q_seg, rows.motion, rows.acc[:, 0], thigh_acc, yaw)
        )
        if self.cfg.keep_angles:
            self._kept.add(ang)
            if self._kept.due:
                self._angles.append(self._kept.take())  # type: ignore[arg-type]
        self._new_angles.append(ang)
        self._hold_rows.add(ang)  # (fed at run_events once a round is due)
        self._event_rows.add(ang)

    def _queue_exercise_rows(self, frame: SegmentFrame) -> None:
        """Queue a step's segment orientations for the exercise block, which is fed in the hold detector's
        rounds; rows measured by another set of segments (a calibration, a slip) start a new round, so
        that a round is always one frame of the same segments (:meth:`SegmentFrame.concat` keeps only the
        gyroscopes every part has)."""
        first = self._exercise_rows.first
        if first is not None and (
            first.segments.keys() != frame.segments.keys() or first.gyr.keys() != frame.gyr.keys()
        ):
            self._exercise_round()
        self._exercise_rows.add(frame)

    def _exercise_round(self) -> None:
        """Feed the segment orientations queued since its last round to the exercise block."""
        frame = self._exercise_rows.take()
        if frame is not None and self.exercises is not None:
            self._exercise_events(self.exercises.update(frame))

    def _holds_round(self) -> None:
        """Feed the angle rows queued since its last round to the hold detector, and the segment
        orientations to the exercise block."""
        ang = self._hold_rows.take()
        if ang is not None and self.hold_detector is not None:
            self._collect(self.hold_detector.update(ang), "hold")
        self._exercise_round()

    def _events_round(self) -> None:
        """Feed the angle rows queued since their last round to the stride detectors, the activity
        classifier and the summary."""
        ang = self._event_rows.take()
        if ang is None:
            return
        for det in self.stride_detectors.values():
            self._collect(det.update(ang), "stride")
        if self.activity_classifier is not None:
            self._collect(self.activity_classifier.update(ang), "activity")
        self.summary_block.update(SummaryInput(ang))

    def _collect(self, items: list[Any], kind: str) -> None:
        if not items:
            return
        if kind == "stride":
            for st in items:
                self._stride_confidence(st)
            self.strides.extend(items)
            self._new_strides.extend(items)
            self.summary_block.update(SummaryInput(AngleSeries.empty(), strides=items))
        elif kind == "hold":
            self.holds.extend(items)
            self._new_holds.extend(items)
            self.summary_block.update(SummaryInput(AngleSeries.empty(), holds=items))
        else:
            self.activity.extend(items)
            self._new_activity.extend(items)
            self.summary_block.update(SummaryInput(AngleSeries.empty(), activity=items))


class _RowRounds(Generic[R]):
    """Rows queued for a block fed in rounds of at least ``need`` rows (a fraction rounds up; 1 or more):
    :attr:`due` says when a round is due, :meth:`take` hands out the queued rows joined by ``concat`` (None
    when nothing is queued); :attr:`first` is the first part queued (None when empty)."""

    def __init__(self, need: float, concat: Callable[[list[R]], R]) -> None:
        self.need = max(1, math.ceil(need))
        self.concat = concat
        self._parts: list[R] = []
        self._n = 0

    def add(self, rows: R) -> None:
        self._parts.append(rows)
        self._n += len(rows)

    @property
    def due(self) -> bool:
        return self._n >= self.need

    @property
    def first(self) -> R | None:
        return self._parts[0] if self._parts else None

    def take(self) -> R | None:
        if not self._parts:
            return None
        parts, self._parts, self._n = self._parts, [], 0
        return parts[0] if len(parts) == 1 else self.concat(parts)


def _segment_quats_small(
    q_sensor: list[np.ndarray], cals: list[tuple[str, SensorCalibration]]
) -> np.ndarray | None:
    """Segment orientations ``q_sensor * q_segment_in_sensor`` (scalar-first Hamilton products, as
    :func:`hipback.processing.quaternion.multiply` computes them: the same products and sums in the same
    order, here on Python floats) of a live step's few rows: ``(sensors, rows, 4)``. Written by hand because
    numpy's per-call cost dominates on so few rows. None when a value is NaN (a row without data: numpy
    then computes them, so that even the NaN bits are numpy's)."""
    out = []
    for qs, (_, c) in zip(q_sensor, cals, strict=True):
        qw, qx, qy, qz = np.asarray(c.q_segment_in_sensor, dtype=np.float64).tolist()
        for pw, px, py, pz in qs.tolist():
            a = pw * qw - px * qx - py * qy - pz * qz
            b = pw * qx + px * qw + py * qz - pz * qy
            c_ = pw * qy - px * qz + py * qw + pz * qx
            d = pw * qz + px * qy - py * qx + pz * qw
            if a != a or b != b or c_ != c_ or d != d:
                return None
            out.append([a, b, c_, d])
    return np.array(out, dtype=np.float64).reshape(len(q_sensor), len(q_sensor[0]), 4)


def calibration_factor(ml_uncertainty_deg: float) -> float:
    """Share of a stride's confidence kept for a thigh axis uncertain by this much (deg).

    ``clip(1 - u / 30, 0.2, 1)``: an axis error ``u`` scales the sagittal swing by ``cos(u)`` and mixes
    ``sin(u)`` of the frontal-plane motion into it; 30 deg is the misplacement tolerance of the placement
    prior, at which the sagittal angles lose their meaning. NaN (not estimated) keeps the confidence.
    """
    if not math.isfinite(ml_uncertainty_deg):
        return 1.0
    return float(min(1.0, max(0.2, 1.0 - ml_uncertainty_deg / 30.0)))


def _concat_streams(parts: list[SensorStream]) -> SensorStream:
    """Consecutive chunks of one sensor as one chunk.

    An optional array (acc, gyr, mag of a quaternion device; mag of a raw one) that only some chunks carry is
    NaN in the others, which the blocks treat exactly as they treat a chunk without it (NaN acceleration;
    VQF skips a NaN or absent magnetometer sample), so the queueing never changes a result.
    """
    first = parts[0]

    def cat(name: str, width: int) -> Any:
        arrs = [getattr(s, name) for s in parts]
        if all(a is None for a in arrs):
            return None
        filled = [
            np.full((len(s.t), width), np.nan) if a is None else a for s, a in zip(parts, arrs, strict=True)
        ]
        return np.concatenate(filled)

    seqs = [s.seq for s in parts]
    return SensorStream(
        placement=first.placement,
        kind=first.kind,
        t=np.concatenate([s.t for s in parts]),
        rate_hz=first.rate_hz,
        quat=cat("quat", 4),
        acc=cat("acc", 3),
        gyr=cat("gyr", 3),
        mag=cat("mag", 3),
        seq=None if any(q is None for q in seqs) else np.concatenate([q for q in seqs if q is not None]),
        device=first.device,
        meta=first.meta,
    )


#: offline, rows wait up to this long for the standing calibration (s): nothing needs its angles at once, so
#: a recording that does not start standing keeps its first minutes (a live session waits
#: ``ProcessorConfig.calibration_timeout_s``, 60 s); the waiting rows are held in memory, hence a bound (half
#: an hour of rows of four sensors: about 60 MB)
OFFLINE_CALIBRATION_WAIT_S = 1800.0


def offline_calibration_wait_s(duration_s: float) -> float:
    """How long offline processing of a recording of ``duration_s`` seconds lets rows wait for the standing
    calibration (s, for ``ProcessorConfig.calibration_timeout_s``): the recording's length, between the live
    wait and :data:`OFFLINE_CALIBRATION_WAIT_S`."""
    return max(ProcessorConfig.calibration_timeout_s, min(duration_s + 1.0, OFFLINE_CALIBRATION_WAIT_S))


def process_recording(
    recording: Recording, config: ProcessorConfig | None = None, chunk_s: float | None = 60.0
) -> SessionResults:
    """Batch processing: the streaming :class:`SessionProcessor` fed ``chunk_s`` seconds of every stream at a
    time, in time order (None: each stream in one piece). The results do not depend on the chunking (the
    blocks' contract); the chunks bound the blocks' intermediate arrays to ``chunk_s`` of data, so memory
    grows with the results and the recording alone (``bench/README.md``)."""
    proc = SessionProcessor(
        {p: s.kind for p, s in recording.streams.items()},
        {p: s.rate_hz for p, s in recording.streams.items()},
        config,
    )
    streams = [s for s in recording.streams.values() if len(s)]
    if chunk_s is None or not streams:
        for s in recording.streams.values():
            proc.feed(s)
    else:
        if not chunk_s > 0:
            raise ValueError(f"chunk_s must be positive (s), not {chunk_s!r}")
        edges = {id(s): 0 for s in streams}
        t = min(float(s.t[0]) for s in streams)
        t_last = max(float(s.t[-1]) for s in streams)
        while t <= t_last:
            t += chunk_s
            for s in streams:
                a = edges[id(s)]
                b = int(np.searchsorted(s.t, t, side="left"))
                if b > a:
                    proc.feed(s.slice(a, b))
                    edges[id(s)] = b
        for s in streams:  # (times beyond the last edge: none, but NaN times sort last)
            if edges[id(s)] < len(s):
                proc.feed(s.slice(edges[id(s)], len(s)))
    res = proc.finish()
    res.gaps = merge_gaps(recording.gaps, res.gaps)
    return res


def merge_gaps(recording_gaps: list[Gap], gaps: list[Gap]) -> list[Gap]:
    """The gaps of a session, each once: the gaps found while reading the files (``recording_gaps``, with
    their reasons) and those of ``gaps`` (the processing's own, which repeat the files' holes as time steps,
    without a reason) that overlap none of the same sensor's. Times in s on the recording timeline."""
    seen = {(g.placement, g.t_start, g.t_end, g.missing, g.reason) for g in recording_gaps}
    read: dict[str, list[Gap]] = {}
    for g in recording_gaps:
        read.setdefault(g.placement, []).append(g)
    ends: dict[str, tuple[list[float], list[float]]] = {}  # per sensor: starts sorted, running max of ends
    for p, gs in read.items():
        gs.sort(key=lambda g: g.t_start)
        ends[p] = ([g.t_start for g in gs], list(np.maximum.accumulate([g.t_end for g in gs])))
    out = list(recording_gaps)
    for g in gaps:
        if g.placement in ends:
            starts, max_end = ends[g.placement]
            k = bisect.bisect_left(starts, g.t_end)  # the file's gaps starting before this one ends
            if k and max_end[k - 1] > g.t_start:
                continue
        key = (g.placement, g.t_start, g.t_end, g.missing, g.reason)
        if key not in seen:
            seen.add(key)
            out.append(g)
    return out

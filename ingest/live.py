"""Live stretch coaching in the terminal, fed by the session runner's callbacks.

:class:`LiveCoach` takes :class:`hipback.processing.pipeline.ProcessorUpdate` objects and link statistics from
``SessionRunner(on_update=coach.on_update, on_event=coach.on_event)`` and shows

* the current angles (degrees, relative to the standing calibration: hip flexion +/extension -, anterior
  pelvic tilt +, lumbar flexion +),
* the hold in progress with a timer that only counts time in correct posture (hip extended at least the
  target and the pelvis/lower back within tolerance of the hold's start), against the prescribed seconds,
* reps per side against the prescription (finished holds as the pipeline reports them),
* while the patient walks (a stride became final within ``WALKING_SHOWN_S`` of session time): the strides so
  far per side, the cadence and each side's peak hip extension over its last ``RECENT_STRIDES`` strides (the
  median of those the stride detector did not call doubtful), in place of the reps in the progress line,
* a cue when the back arches or the pelvis tips forward past the tolerance: "Tuck your pelvis: your back is
  arching",
* each sensor's connection state and battery,
* a guided exercise programme (the runner's ``exercise`` events, from
  :class:`hipback.processing.exercises.ProgrammeRunner`): each exercise announced with its dose ("Next:
  Glute bridge, 3 reps."), every rep or hold counted or not with the set's count ("Rep 2 of 3 counted."),
  the first broken form rule as a cue in plain words ("CUE: Keep your back flat, lift with your
  buttocks."), the exercise done, skipped (not measurable with the sensors worn) and the programme done; the
  panel shows the exercise in progress with its count and the last cue.

The hold in progress is the processor's own (``ProcessorUpdate.hold_progress``, from the session's hold
detector), so the live timer and the stored holds are one computation. Its view lags the data by the
detector's look-ahead (about 0.1 s).

Output: on a terminal a rich ``Live`` panel (refreshed at most ``refresh_per_second``), event lines printed
above it. Otherwise plain lines: one per event (hold start and end, arching cue, posture back, calibration,
disconnects), a timer line every ``hold_line_every_s`` of session time while a hold runs, and a progress
line every ``line_every_s`` of session time (and at most one per ``min_wall_interval_s`` of real time).
Use it as a context manager (``with LiveCoach(...) as coach:``) so the panel is closed at the end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hipback.ingest.report.quality import JOINT_WORDS
from hipback.processing.holds import SIDES, Hold, HoldDetector, HoldProgress, Prescription
from hipback.processing.plausibility import FLAGS as PLAUSIBILITY_FLAGS

if TYPE_CHECKING:
    from hipback.ingest.session.stats import SensorStats, SessionEvent
    from hipback.processing.gait import Stride
    from hipback.processing.pipeline import ProcessorUpdate
    from hipback.processing.types import AngleSeries

ARCHING_CUE = "Tuck your pelvis: your back is arching"
POSTURE_OK = "Good posture again: the timer is running"
#: Session seconds between two "sensor problem" lines while joint angles stay impossible.
PLAUSIBILITY_REPEAT_S = 10.0
#: The patient counts as walking while the latest final stride ended at most this long (s of session time)
#: before the latest angles: a stride is final once the next one began and its event round ran (about 2 s).
WALKING_SHOWN_S = 4.0
#: Strides per side whose median peak hip extension and cadence the walking line shows.
RECENT_STRIDES = 5
#: Event kinds shown as lines (others, e.g. processing messages, are left to the log).
SHOWN_EVENTS = frozenset(
    {
        "calibration_start",
        "calibration_done",
        "calibration_failed",
        "connected",
        "disconnected",
        "reconnected",
        "connect_failed",
        "sensor_failed",
        "low_battery",
        "processing_error",
        "session_start",
        "session_end",
        "store_error",
    }
)


@dataclass
class _Exercise:
    """The programme item in progress, as the live view shows it."""

    title: str
    side: str | None
    word: str  # "rep" or "hold"
    prescribed: int | None
    counted: int = 0
    done: int = 0
    cue: str = ""


def exercise_title(name: str | None) -> str:
    """The catalogue's title of an exercise (a clinic's own exercise: its name in words)."""
    if not name:
        return "Exercise"
    from hipback.processing.exercises import load_catalogue

    ex = load_catalogue().exercises.get(name)
    return ex.title if ex is not None else name.replace("_", " ").capitalize()


def exercise_kind(name: str | None) -> str | None:
    """The catalogue kind of an exercise (``hold``, ``reps``, ``reps_hold``), None when unknown."""
    if not name:
        return None
    from hipback.processing.exercises import load_catalogue

    ex = load_catalogue().exercises.get(name)
    return ex.kind if ex is not None else None


def cue_line(cue: str) -> str:
    """A form cue as said to the patient: ``CUE: Keep your back flat, lift with your buttocks.``"""
    text = cue.strip().rstrip(".")
    return f"CUE: {text[:1].upper()}{text[1:]}."


@dataclass
class _Walking:
    """The strides the pipeline reported so far, as the live view shows them."""

    count: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIDES, 0))
    last_end_t: float = -math.inf  # session s
    #: per side, the last RECENT_STRIDES strides' (cadence steps/min, peak hip extension rad; NaN: doubtful)
    recent: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {s: [] for s in SIDES})

    def add(self, stride: Stride) -> None:
        side = stride.side
        if side not in self.count:
            return
        self.count[side] += 1
        self.last_end_t = max(self.last_end_t, float(stride.t_end))
        ext = math.nan if stride.doubtful else float(stride.peak_hip_extension_rad)
        recent = self.recent[side]
        recent.append((float(stride.cadence_spm), ext))
        del recent[:-RECENT_STRIDES]

    def text(self, prefix: str = "walking: ") -> str:
        """``walking: 24 strides, 108 steps/min, peak hip extension left 9°, right 17°`` (strides of both
        legs; the cadence is the median of the recent strides' cadences)."""
        n = sum(self.count.values())
        parts = [f"{prefix}{n} stride{'s' if n != 1 else ''}"]
        cadences = [c for side in SIDES for c, _ in self.recent[side] if math.isfinite(c)]
        if cadences:
            parts.append(f"{float(np.median(cadences)):.0f} steps/min")
        ext = []
        for side in SIDES:
            values = [e for _, e in self.recent[side] if math.isfinite(e)]
            if values:
                ext.append(f"{side} {int(round(math.degrees(float(np.median(values))))):d}°")
        if ext:
            parts.append("peak hip extension " + ", ".join(ext))
        return ", ".join(parts)


@dataclass
class _SideReps:
    done: int = 0
    on_target: int = 0
    correct_s: list[float] = field(default_factory=list)


class LiveCoach:
    """The live coaching view (see the module docstring).

    :param console: where to write (default: stdout); ``interactive`` defaults to ``console.is_terminal``.
    :param prescription: holds per side and seconds per hold (correct posture).
    :param clock: wall clock for rate limiting (s).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        prescription: Prescription | None = None,
        interactive: bool | None = None,
        line_every_s: float = 5.0,
        hold_line_every_s: float = 2.0,
        min_wall_interval_s: float = 1.0,
        refresh_per_second: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console or Console(highlight=False)
        self.prescription = prescription or Prescription()
        self.interactive = self.console.is_terminal if interactive is None else interactive
        self.line_every_s = line_every_s
        self.hold_line_every_s = hold_line_every_s
        self.min_wall_interval_s = min_wall_interval_s
        self.refresh_interval = 1.0 / refresh_per_second
        self.clock = clock
        self._hold_now: HoldProgress | None = None  # the processor's hold in progress, latest update
        self._hold_min_s = HoldDetector.min_duration_s
        self.t = 0.0
        self._said_t = 0.0  # session time of the latest line said (a status line never goes back before it)
        self.angles_deg: dict[str, float] = {}
        self.calibration_state = "waiting"
        self.hold: HoldProgress | None = None
        self.arching = False
        self.reps = {s: _SideReps() for s in SIDES}
        self.sensors: dict[str, SensorStats] = {}
        self.last_event = ""
        self._hold_announced = False
        self._closed_side: str | None = None
        self._await_ok = False
        self._cue_correct_s = 0.0
        self._next_line_t = 0.0
        self._next_hold_line_t = 0.0
        self._last_wall_line = -math.inf
        self._last_refresh = -math.inf
        self._next_plausibility_t = -math.inf
        self._live: Live | None = None
        self.exercise: _Exercise | None = None  # the programme item in progress
        self.programme_done = False
        self.walking = _Walking()

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> LiveCoach:
        if self.interactive and self._live is None:
            self._live = Live(self.render(), console=self.console, auto_refresh=False, transient=False)
            self._live.start()
        return self

    def stop(self) -> None:
        if self._live is not None:
            self._live.update(self.render(), refresh=True)
            self._live.stop()
            self._live = None

    def __enter__(self) -> LiveCoach:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- callbacks -------------------------------------------------------------------------------------
    def on_event(self, ev: SessionEvent) -> None:
        """An event from the runner (session seconds)."""
        if ev.kind == "exercise":
            self._exercise_event(ev)
            self._refresh()
        elif ev.kind == "programme":  # the programme loaded, with the clinician's cautions and overrides
            self._say(ev.t, ev.message)
            for note in ev.data.get("warnings") or []:
                self._say(ev.t, f"Note: {note}")
        elif ev.kind in SHOWN_EVENTS:
            self.last_event = ev.message
            self._say(ev.t, ev.message)

    def on_update(self, update: ProcessorUpdate, stats: Mapping[str, SensorStats] | None = None) -> None:
        """What the processor made final since its previous poll, plus the per-placement link statistics."""
        if stats:
            self.sensors = dict(stats)
        self.calibration_state = update.calibration_state
        a = update.angles
        if len(a):
            self.t = float(a.t[-1])
            for name in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt", "lumbar_flexion"):
                v = getattr(a, name)
                fin = v[np.isfinite(v)]
                if len(fin):
                    self.angles_deg[name] = math.degrees(float(fin[-1]))
            self._check_plausible(a)
        for stride in update.strides:
            self.walking.add(stride)
        self._hold_now = update.hold_progress
        self._hold_min_s = float(update.hold_min_duration_s)
        for h in update.holds:
            self._hold_finished(h)
        self._track_hold()
        self._progress_line()
        self._refresh()

    def _check_plausible(self, a: AngleSeries) -> None:
        """Say (once per ``PLAUSIBILITY_REPEAT_S``) that joint angles were impossible (processing flagged)."""
        flags = a.implausible
        if flags is None or not np.any(flags) or self.t < self._next_plausibility_t:
            return
        bits = int(np.bitwise_or.reduce(np.asarray(flags, dtype=np.int64)))
        joints = sorted({name for (name, _), bit in PLAUSIBILITY_FLAGS.items() if bits & bit})
        words = ", ".join(JOINT_WORDS.get(j, j) for j in joints)
        self._next_plausibility_t = self.t + PLAUSIBILITY_REPEAT_S
        self._say(self.t, f"Sensor problem: the {words} cannot be right (not counted); "
                          f"check the straps, then stand still for a moment.", style="bold red")

    # -- exercise programme ----------------------------------------------------------------------------
    def _exercise_event(self, ev: SessionEvent) -> None:
        """One programme event (the runner's ``exercise`` events; ``data["exercise_event"]`` is the
        :class:`~hipback.processing.exercises.ProgrammeEvent` kind)."""
        data = ev.data
        what = data.get("exercise_event")
        t = ev.t
        message = ev.message
        if what == "announce":
            name = data.get("exercise")
            word = "hold" if exercise_kind(name) == "hold" else "rep"
            self.exercise = _Exercise(exercise_title(name), data.get("side"), word, data.get("prescribed"))
            self.programme_done = False
            self._say(t, message, style="bold")
        elif what in ("rep", "hold"):
            ex = self.exercise
            if ex is not None:
                ex.done += 1
                so_far = data.get("counted_so_far")
                ex.counted = int(so_far) if so_far is not None else ex.counted + bool(data.get("counted"))
                if data.get("counted"):
                    ex.cue = ""
            self._say(t, message, style="green" if data.get("counted") else None)
        elif what == "cue":
            if self.exercise is not None:
                self.exercise.cue = message
            self._say(t, cue_line(message), style="bold red")
        elif what in ("item_done", "not_measurable"):
            self.exercise = None
            self._say(t, message)
        elif what == "programme_done":
            self.exercise = None
            self.programme_done = True
            self._say(t, message, style="bold green")
        else:
            self._say(t, message)
        self.last_event = message

    @property
    def exercise_begun(self) -> bool:
        """Whether the patient has begun the announced exercise (a rep or hold, counted or not, or a cue):
        until then the patient may still be walking or stretching, and its count of 0 would read as
        failing at it."""
        ex = self.exercise
        return ex is not None and (ex.done > 0 or bool(ex.cue))

    def _exercise_text(self) -> str:
        ex = self.exercise
        if ex is None:
            return "programme done" if self.programme_done else "waiting for the next exercise"
        side = "both legs" if ex.side is None else f"{ex.side} side"
        if not self.exercise_begun:
            dose = f", {ex.prescribed} {ex.word}{'s' if ex.prescribed != 1 else ''}" if ex.prescribed else ""
            return f"next: {ex.title} ({side}){dose}"
        plan = f" of {ex.prescribed}" if ex.prescribed else ""
        return f"{ex.title} ({side}): {ex.counted}{plan} {ex.word}s counted ({ex.done} done)"

    # -- hold tracking ---------------------------------------------------------------------------------
    def _track_hold(self) -> None:
        cur = self._hold_now
        prev = self.hold
        if cur is not None and prev is not None and cur.side != prev.side:
            self._hold_gone(prev)
            prev = None
        if cur is not None and cur.side == self._closed_side:
            if prev is not None and cur.elapsed_s >= prev.elapsed_s:
                return  # the pipeline already reported this hold as finished; the live view lags a little
            self._closed_side = None  # a new hold on that side
        if cur is None:
            if prev is not None:
                self._hold_gone(prev)
            self.hold = None
            self.arching = False
            self._closed_side = None
            return
        self.hold = cur
        target = self.prescription.hold_s
        # announced after 2 s (brief still moments, e.g. mid-walk, stay quiet), or earlier when the back
        # arches so that the cue never waits
        announce_after = min(self._hold_min_s, 2.0)
        if not self._hold_announced and (
            cur.elapsed_s >= announce_after or (cur.arching_now and cur.elapsed_s >= 1.0)
        ):
            self._hold_announced = True
            rep = self.reps[cur.side].done + 1
            self._say(
                self.t,
                f"Hold {cur.side} {rep} of {self.prescription.holds_per_side} started: "
                f"the timer counts only good posture (target {target:.0f} s).",
            )
            self._next_hold_line_t = self.t + self.hold_line_every_s
        if cur.arching_now and not self.arching and self._hold_announced and not self._await_ok:
            self._say(self.t, f"CUE: {ARCHING_CUE}.", style="bold red")
            self._await_ok = True
            self._cue_correct_s = cur.correct_s
        elif self._await_ok and not cur.arching_now and cur.correct_s > self._cue_correct_s + 0.1:
            # said only once the timer really runs again (not while shifting back out of the stretch)
            self._say(self.t, f"{POSTURE_OK}.")
            self._await_ok = False
        self.arching = cur.arching_now
        # (no timer line while out of the stretch: the hold is ending, or the patient comes back to it)
        if self._hold_announced and cur.in_posture and self.t >= self._next_hold_line_t:
            self._next_hold_line_t = self.t + self.hold_line_every_s
            self._say(self.t, self._hold_text(cur), timer=True)

    def _hold_text(self, h: HoldProgress) -> str:
        ext = (
            ""
            if not math.isfinite(h.hip_extension_now)
            else f" | hip stretched back {math.degrees(h.hip_extension_now):.0f}°"
        )
        return (
            f"Hold {h.side}: {h.correct_s:4.1f} s of {self.prescription.hold_s:.0f} s in good posture "
            f"(holding {h.elapsed_s:.0f} s){ext}" + (" | back arching: timer paused" if h.arching_now else "")
        )

    def _hold_gone(self, prev: HoldProgress) -> None:
        """The hold in progress disappeared: announced ones end with the pipeline's final hold."""
        if self._hold_announced and prev.elapsed_s < self._hold_min_s:
            self._say(self.t, f"Hold {prev.side} stopped after {prev.elapsed_s:.0f} s: too short to count.")
        self._hold_announced = False
        self.arching = False
        self._await_ok = False

    def _hold_finished(self, h: Hold) -> None:
        r = self.reps.get(h.side)
        if r is None:
            return
        if self.hold is not None and self.hold.side == h.side:
            self._closed_side = h.side
            self.hold = None
            self._hold_announced = False
            self.arching = False
            self._await_ok = False
        r.done += 1
        r.correct_s.append(float(h.correct_s))
        target = self.prescription.hold_s
        if h.correct_s >= target:
            r.on_target += 1
        verdict = "target reached, well done" if h.correct_s >= target else f"target {target:.0f} s"
        # the pipeline finalises a hold a little after its end: the line is stamped when it is said, never
        # before a line already said (the hold's own times are in its numbers)
        self._say(
            max(h.t_end, self._said_t),
            f"Hold {h.side} {r.done} of {self.prescription.holds_per_side} done: {h.duration_s:.0f} s "
            f"held, {h.correct_s:.0f} s in good posture ({verdict})"
            + (", back arched during the hold." if h.arching else "."),
        )

    # -- output ----------------------------------------------------------------------------------------
    def _say(self, t: float, text: str, style: str | None = None, timer: bool = False) -> None:
        self._said_t = max(self._said_t, t)
        line = f"[{t:7.1f} s] {text}"
        if self._live is not None:
            if not timer:  # the panel shows the timer; events go above it
                self._live.console.print(line, style=style, highlight=False, soft_wrap=True)
        else:
            self.console.print(
                line, style=style if self.interactive else None, highlight=False, soft_wrap=True
            )

    def _progress_line(self) -> None:
        if self.interactive or self.t < self._next_line_t or self.hold is not None:
            return
        now = self.clock()
        if now - self._last_wall_line < self.min_wall_interval_s:
            return
        self._last_wall_line = now
        self._next_line_t = self.t + self.line_every_s
        # before the first angles, the session's latest said time (calibration prompts), not 0
        self._say(max(self.t, self._said_t),
                  f"{self._angles_text()} | {self._reps_text()} | {self._sensors_text()}")

    def _angles_text(self) -> str:
        if not self.angles_deg:
            return (
                "angles: waiting for calibration" if self.calibration_state != "calibrated" else "angles: -"
            )
        names = (
            ("hip_flexion_left", "left hip"),
            ("hip_flexion_right", "right hip"),
            ("pelvic_tilt", "pelvic tilt"),
            ("lumbar_flexion", "lower back"),
        )
        shown = [(lab, int(round(self.angles_deg[n]))) for n, lab in names if n in self.angles_deg]
        return "  ".join(f"{lab} {v:+d}°" for lab, v in shown)

    @property
    def walking_now(self) -> bool:
        """Whether a stride ended within ``WALKING_SHOWN_S`` of the latest angles."""
        return self.t - self.walking.last_end_t <= WALKING_SHOWN_S

    def _reps_text(self) -> str:
        if self.walking_now:
            return self.walking.text()
        if self.exercise_begun or (self.exercise is None and self.programme_done):
            return self._exercise_text()
        n = self.prescription.holds_per_side
        holds = "holds " + ", ".join(f"{s} {self.reps[s].done}/{n}" for s in SIDES)
        return holds if self.exercise is None else f"{holds} | {self._exercise_text()}"

    def _sensors_text(self) -> str:
        parts = []
        for p, st in self.sensors.items():
            conn, bat = st.connected, st.battery_pct
            parts.append(f"{p} {'on' if conn else 'OFF'}" + ("" if bat is None else f" {bat:.0f}%"))
        return "sensors: " + (", ".join(parts) if parts else "connecting")

    def _refresh(self) -> None:
        if self._live is None:
            return
        now = self.clock()
        if now - self._last_refresh < self.refresh_interval:
            return
        self._last_refresh = now
        self._live.update(self.render(), refresh=True)

    def render(self) -> Panel:
        """The panel shown on a terminal."""
        rows = Table.grid(padding=(0, 2))
        rows.add_column(style="bold", no_wrap=True)
        rows.add_column()
        rows.add_row("Angles", self._angles_text() + "  (relative to your standing calibration)")
        if self.hold is not None:
            h = self.hold
            target = self.prescription.hold_s
            frac = min(1.0, h.correct_s / target) if target > 0 else 0.0
            width = 30
            filled = int(round(frac * width))
            bar = Text("█" * filled, style="green") + Text("░" * (width - filled), style="dim")
            timer = Text.assemble(
                f"{h.side.upper()} hold  ",
                bar,
                f"  {h.correct_s:4.1f} / {target:.0f} s good posture  (holding {h.elapsed_s:.0f} s)",
            )
            rows.add_row("Stretch", timer)
            if not h.in_posture:
                rows.add_row("", Text("out of the stretch (timer stopped)", style="dim"))
            elif h.arching_now:
                rows.add_row("", Text(f"⚠ {ARCHING_CUE} (timer paused)", style="bold white on red"))
        else:
            rows.add_row("Stretch", Text("no hold in progress", style="dim"))
        if self.exercise is not None or self.programme_done:
            rows.add_row("Exercise", Text(self._exercise_text(), style="bold"))
            if self.exercise is not None and self.exercise.cue:
                rows.add_row("", Text(f"⚠ {cue_line(self.exercise.cue)}", style="bold white on red"))
        n = self.prescription.holds_per_side
        reps = Text()
        for s in SIDES:
            r = self.reps[s]
            reps.append(
                f"{s}: {r.done}/{n} holds ({r.on_target} reached {self.prescription.hold_s:.0f} s)   "
            )
        rows.add_row("Reps", reps)
        if sum(self.walking.count.values()):
            style = None if self.walking_now else "dim"
            rows.add_row("Walking", Text(self.walking.text(prefix=""), style=style))
        sensors = Text()
        for p, st in self.sensors.items():
            conn, bat = st.connected, st.battery_pct
            sensors.append("● " if conn else "○ ", style="green" if conn else "red")
            sensors.append(
                f"{p} {'connected' if conn else 'disconnected'}"
                + ("" if bat is None else f" {bat:.0f}%")
                + "   "
            )
        rows.add_row("Sensors", sensors if self.sensors else Text("connecting ...", style="dim"))
        if self.last_event:
            rows.add_row("Last", Text(self.last_event, style="dim"))
        title = f"hipback live  t = {self.t:.1f} s  ({self.calibration_state})"
        return Panel(Group(rows), title=title, subtitle="monitoring, not a diagnosis", expand=True)

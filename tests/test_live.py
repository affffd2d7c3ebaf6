"""Live stretch coaching: a virtual session drives :class:`hipback.ingest.live.LiveCoach`; we read what it
prints.

The ``short`` scenario has one 5 s kneeling hip-flexor stretch hold per side, the right one with the back
arching from a quarter of the hold on. The virtual session streams it over the virtual BLE link (two
protocols) into the session runner at 4x real time; the coach prints plain lines (not a terminal).
"""

from __future__ import annotations

import asyncio
import io
import re

import pytest
from rich.console import Console

from hipback.ingest.live import ARCHING_CUE, WALKING_SHOWN_S, LiveCoach
from hipback.processing.holds import Prescription
from hipback.processing.pipeline import ProcessorConfig, SessionProcessor
from hipback.simulator import SensorSpec, simulate

#: Two protocols. WitMotion is left out on purpose: its virtual stream (no device timestamps) currently
#: shows arrival-jitter gaps of 0.03-0.13 s, each of which ends a hold (clock-model matter, not the coach's).
KINDS = {"pelvis": "hipback_v1", "thigh_left": "movella_dot", "thigh_right": "hipback_v1"}


def _coach(**kw) -> tuple[LiveCoach, io.StringIO]:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=220, highlight=False)
    return LiveCoach(console, prescription=Prescription(3, 30.0), **kw), buf


def _coached(rec, step: int = 50) -> tuple:
    """A recording processed in chunks of ``step`` samples per sensor, each poll handed to a coach that
    prints plain lines: (the session results, the coach, its output buffer)."""
    proc = SessionProcessor({p: s.kind for p, s in rec.streams.items()},
                            {p: s.rate_hz for p, s in rec.streams.items()}, ProcessorConfig())
    coach, buf = _coach(min_wall_interval_s=0.0)
    n = min(len(s) for s in rec.streams.values())
    for a in range(0, n, step):
        for s in rec.streams.values():
            proc.feed(s.slice(a, min(a + step, n)))
        coach.on_update(proc.poll(), {})
    results = proc.finish()
    coach.on_update(proc.poll(), {})
    return results, coach, buf


@pytest.fixture(scope="module")
def virtual_run(tmp_path_factory):
    from hipback.ingest.session.virtual import run_virtual_session_async
    from hipback.ingest.store import LocalStore
    from hipback.ingest.virtual_time import run_virtual

    sim = simulate("short", seed=3, sensors=[SensorSpec(p, kind="quat", rate_hz=100.0) for p in KINDS])
    coach, buf = _coach(min_wall_interval_s=0.0)
    store = LocalStore(tmp_path_factory.mktemp("live") / "live.sqlite")

    async def run():
        return await asyncio.wait_for(
            run_virtual_session_async(
                sim, KINDS, store, on_update=coach.on_update, on_event=coach.on_event
            ),
            timeout=600,  # simulated seconds: the scenario is about 70 s long
        )

    try:
        with coach:
            outcome = run_virtual(run())
    finally:
        store.close()
    return outcome, buf.getvalue(), coach


def test_virtual_session_prints_hold_timer_and_arching_cue(virtual_run):
    outcome, text, coach = virtual_run
    lines = text.splitlines()
    assert outcome.results is not None
    true_holds = {h.side: h for h in outcome.results.holds}
    assert set(true_holds) == {"left", "right"} and true_holds["right"].arching

    def first(pattern: str) -> int:
        for i, ln in enumerate(lines):
            if re.search(pattern, ln):
                return i
        raise AssertionError(f"no line matches {pattern!r} in:\n{text}")

    # calibration prompt, then each hold: start, timer lines, end with the pipeline's numbers
    first(r"Stand still, upright")
    i_start = first(r"Hold right 1 of 3 started")
    i_cue = first(re.escape(f"CUE: {ARCHING_CUE}"))
    i_end = first(r"Hold right 1 of 3 done: 5 s held, 2 s in good posture .*back arched")
    assert i_start < i_cue < i_end
    assert first(r"Hold left 1 of 3 done: 5 s held, 5 s in good posture") < i_start
    # no arching cue during the left hold (the patient kept the back flat there)
    assert sum(1 for ln in lines if "CUE:" in ln) == 1

    # the timer counts correct posture only: while the back arches (after the cue) it stays still
    timers = [
        (i, float(m.group(1)), float(m.group(2)))
        for i, ln in enumerate(lines)
        if (m := re.search(r"Hold right: +([\d.]+) s of 30 s in good posture \(holding (\d+) s\)", ln))
    ]
    assert timers, text
    after_cue = [c for i, c, _ in timers if i > i_cue]
    assert after_cue and max(after_cue) - min(after_cue) < 0.5
    assert all(c <= held + 1.0 for _, c, held in timers)
    assert max(c for _, c, _ in timers) == pytest.approx(true_holds["right"].correct_s, abs=0.6)
    assert any("timer paused" in lines[i] for i, _, _ in timers)

    # sensors: connection state and battery in the progress lines
    progress = [ln for ln in lines if "sensors:" in ln]
    assert progress and all(p in progress[-1] for p in KINDS)
    assert re.search(r"pelvis on \d+%", progress[-1])
    assert coach.reps["right"].done == 1 and coach.reps["left"].done == 1
    # the lines' session times never go back (a hold's "done" line comes after its last timer line)
    stamps = [float(m.group(1)) for ln in lines if (m := re.match(r"\[ *([\d.]+) s\]", ln))]
    assert len(stamps) > 10 and stamps == sorted(stamps)


def test_plain_lines_are_rate_limited():
    """Fed a whole processed session in 0.5 s chunks: about one progress line per 5 s, not one per update."""
    sim = simulate("short", seed=1)
    rec = sim.recording
    proc = SessionProcessor(
        {p: s.kind for p, s in rec.streams.items()},
        {p: s.rate_hz for p, s in rec.streams.items()},
        ProcessorConfig(),
    )
    coach, buf = _coach(min_wall_interval_s=0.0)
    n_updates = 0
    step = 50
    n = min(len(s) for s in rec.streams.values())
    for a in range(0, n, step):
        for s in rec.streams.values():
            proc.feed(s.slice(a, min(a + step, n)))
        coach.on_update(proc.poll(), {})
        n_updates += 1
    proc.finish()
    coach.on_update(proc.poll(), {})
    lines = buf.getvalue().splitlines()
    progress = [ln for ln in lines if "holds left" in ln]
    duration = rec.duration_s
    assert n_updates > 80
    assert 2 <= len(progress) <= duration / 5.0 + 2
    assert any("Hold left 1 of 3 done" in ln for ln in lines)
    assert any(ARCHING_CUE in ln for ln in lines)


def test_terminal_panel_shows_timer_cue_and_sensors():
    """The rich panel (terminal mode) renders the hold timer bar, the cue while arching, and sensor states."""
    from types import SimpleNamespace

    from hipback.processing.holds import HoldProgress

    coach, _ = _coach()
    coach.hold = HoldProgress(
        side="right", elapsed_s=12.0, correct_s=8.5, arching_now=True, hip_extension_now=0.3
    )
    coach.sensors = {
        "pelvis": SimpleNamespace(connected=True, battery_pct=81.0),
        "thigh_left": SimpleNamespace(connected=False, battery_pct=None),
    }
    coach.angles_deg = {"hip_flexion_left": 85.0, "hip_flexion_right": -17.0, "pelvic_tilt": 7.0}
    out = Console(file=io.StringIO(), width=160, record=True, force_terminal=True)
    out.print(coach.render())
    txt = out.export_text()
    assert "RIGHT hold" in txt and "8.5 / 30 s good posture" in txt
    assert ARCHING_CUE in txt
    assert "pelvis connected 81%" in txt and "thigh_left disconnected" in txt
    assert "right hip -17°" in txt


def test_no_timer_line_once_the_patient_left_the_stretch():
    """While the hold is still open but the patient is out of the stretch (``in_posture`` False), the coach
    prints no timer line (it would show a hold running on past the one about to be reported), and the panel
    says the timer stopped."""
    import numpy as np

    from hipback.processing.holds import HoldProgress
    from hipback.processing.pipeline import ProcessorUpdate
    from hipback.processing.types import AngleSeries

    coach, buf = _coach(min_wall_interval_s=0.0)
    for k in range(0, 200):  # 20 s of updates, 0.1 s apart: 12 s in the stretch, then out of it
        t = 10.0 + 0.1 * k
        held = min(t, 22.0) - 10.0
        row = np.array([0.0])
        angles = AngleSeries(np.array([t]), row, row, row, row, row, row, row, row)
        progress = HoldProgress(side="left", elapsed_s=held, correct_s=held, arching_now=False,
                                hip_extension_now=0.26 if t <= 22.0 else 0.05, in_posture=t <= 22.0)
        coach.on_update(ProcessorUpdate(angles, [], [], [], [], "calibrated", {}, progress), {})
    timers = [ln for ln in buf.getvalue().splitlines() if re.search(r"Hold left: .* good posture", ln)]
    stamps = [float(re.match(r"\[ *([\d.]+) s\]", ln).group(1)) for ln in timers]
    assert len(timers) >= 4 and max(stamps) <= 22.0
    out = Console(file=io.StringIO(), width=160, record=True, force_terminal=True)
    out.print(coach.render())
    assert "out of the stretch (timer stopped)" in out.export_text()


def test_impossible_joint_angles_are_called_a_sensor_problem():
    """A thigh sensor that turns over mid-session (a strap come loose) gives hip angles no hip can reach: the
    processor flags them, the coach says it is a sensor problem, and the report's data quality says so."""
    import numpy as np

    from hipback.ingest.influx import schema
    from hipback.ingest.influx.lineprotocol import encode_point
    from hipback.ingest.report.quality import assess_quality
    from hipback.ingest.results import session_row
    from hipback.processing.quaternion import from_axis_angle, multiply

    sim = simulate("short", seed=1, sensors=[SensorSpec(p, kind="quat", rate_hz=100.0)
                                             for p in ("pelvis", "thigh_left", "thigh_right")])
    rec = sim.recording
    thigh = rec.streams["thigh_left"]
    loose = (thigh.t > 20.0) & (thigh.t < 23.0)
    flip = from_axis_angle(np.array([0.0, 1.0, 0.0]), np.pi * 0.95)
    thigh.quat[loose] = multiply(thigh.quat[loose], flip)
    results, coach, buf = _coached(rec)
    problems = [ln for ln in buf.getvalue().splitlines() if "Sensor problem" in ln]
    assert problems and all("left hip angle" in ln for ln in problems)
    assert len(problems) <= 2  # said once per 10 s of session time, not per update
    flagged = results.summary["implausible"]["hip_flexion_left"]
    assert flagged["range"] + flagged["rate"] > 0
    assert results.summary["implausible"]["hip_flexion_right"]["range"] == 0
    sentences = [w for w in assess_quality(rec, results).warnings if "Sensor or calibration problem" in w]
    assert len(sentences) == 1 and "left hip angle" in sentences[0]
    # and the device-health data: the session's point carries the share removed
    pct = session_row(results, 0.0)["implausible_pct"]
    assert pct == pytest.approx(100.0 * flagged["share"]) and pct > 0
    assert "implausible_pct=" in encode_point(schema.session_point(session_row(results, 0.0), "P-1", "s1"))


def test_programme_events_in_the_panel_and_lines():
    """The exercise in progress with its count and the last cue in the panel; counts follow the runner's
    events (the count carried by each event, not re-counted here)."""
    from hipback.ingest.session.stats import SessionEvent

    coach, buf = _coach(interactive=False)
    coach.on_event(SessionEvent("programme", "Exercise programme loaded.", 0.0, data={
        "warnings": ["Kneeling hip flexor stretch: caution for flexion responders (arching)."]}))

    def ev(what: str, message: str, **data) -> SessionEvent:
        return SessionEvent("exercise", message, 10.0, data={"exercise_event": what, **data})

    coach.on_event(ev("announce", "Next: Clamshell, left side, 3 reps.", exercise="clamshell", side="left",
                      prescribed=3, counted_so_far=0))
    # announced, not begun (the patient may still be walking or stretching): no "0 of 3 counted" yet
    assert coach._reps_text() == "holds left 0/3, right 0/3 | next: Clamshell (left side), 3 reps"
    coach.on_event(ev("rep", "Rep 1 of 3 counted.", exercise="clamshell", side="left", prescribed=3,
                      counted_so_far=1, counted=True))
    coach.on_event(ev("rep", "That rep did not count: 1 of 3 so far.", exercise="clamshell", side="left",
                      prescribed=3, counted_so_far=1, counted=False))
    coach.on_event(ev("cue", "keep your hips stacked, don't roll back", exercise="clamshell", side="left",
                      prescribed=3, counted_so_far=1, counted=False))
    panel = Console(width=200, file=io.StringIO(), record=True)
    panel.print(coach.render())
    shown = panel.export_text()
    assert "Clamshell (left side): 1 of 3 reps counted (2 done)" in shown
    assert "CUE: Keep your hips stacked, don't roll back." in shown
    assert "Clamshell (left side): 1 of 3 reps counted" in coach._reps_text()
    coach.on_event(ev("item_done", "Clamshell done."))
    coach.on_event(ev("programme_done", "Programme done. Well done!"))
    assert coach._reps_text() == "programme done"
    text = buf.getvalue()
    assert "Next: Clamshell, left side, 3 reps." in text and "CUE: Keep your hips stacked" in text
    assert "Exercise programme loaded." in text and "Note: Kneeling hip flexor stretch: caution" in text
    assert text.index("Rep 1 of 3 counted.") < text.index("CUE:") < text.index("Programme done.")


def test_a_sensor_left_out_is_said_on_the_live_view():
    from hipback.ingest.session.stats import SessionEvent

    coach, buf = _coach(interactive=False)
    message = ("The thigh_left sensor cannot stream as configured (Movella DOT: no payload mode can stream "
               "here); it is left out of this session.")
    coach.on_event(SessionEvent("sensor_failed", message, 12.0, "thigh_left"))
    assert message in buf.getvalue() and coach.last_event == message


def test_a_progress_line_never_goes_back_in_session_time(virtual_run):
    """A progress line is stamped with the latest angle time, or before the first angles with the latest
    line said (the calibration prompts): never earlier than a line printed before it (it said 0.0 s after
    "Calibration recorded" at 7 s)."""
    _, text, _ = virtual_run
    latest = -1.0
    progress = 0
    for line in text.splitlines():
        m = re.match(r"\[\s*(-?\d+\.\d) s\] (.*)", line)
        if not m:
            continue
        t = float(m.group(1))
        if "holds left" in m.group(2) or m.group(2).startswith("angles:"):
            progress += 1
            assert t >= latest, line
        latest = max(latest, t)
    assert progress >= 2


def test_while_walking_the_progress_line_shows_strides_cadence_and_peak_extension():
    """A walk between two stands, processed in 0.5 s chunks: while the patient walks, the progress lines
    count the strides as the pipeline reports them, with the cadence and each side's peak hip extension over
    its last strides; before the walk and once it ended, the holds again."""
    import math

    import numpy as np

    from hipback.simulator import VirtualPatient

    patient = VirtualPatient()
    sim = simulate("walk", seed=2, patient=patient, calib_s=10.0, walk_s=40.0, stand_s=15.0,
                   sensors=[SensorSpec(p, kind="quat", rate_hz=100.0)
                            for p in ("pelvis", "thigh_left", "thigh_right")])
    rec = sim.recording
    results, coach, buf = _coached(rec)
    pattern = re.compile(r"\[\s*(\d+\.\d) s\] .*\| walking: (\d+) strides?, (\d+) steps/min, "
                         r"peak hip extension left (-?\d+)°, right (-?\d+)° \|")
    walking = [(float(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]))
               for ln in buf.getvalue().splitlines() if (m := pattern.search(ln))]
    assert len(walking) >= 5, buf.getvalue()
    counts = [w[1] for w in walking]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert all(10.0 < t < 10.0 + 40.0 + WALKING_SHOWN_S + 2.0 for t, *_ in walking)
    # the last walking line: the strides and their numbers as the session results give them
    t_last = walking[-1][0]
    final = [s for s in results.strides if s.t_end <= t_last]
    assert abs(walking[-1][1] - len(final)) <= 4  # (strides that became final after that line)
    cadence = 120.0 / patient.stride_time_s
    assert all(abs(w[2] - cadence) <= 0.1 * cadence for w in walking)
    for side, col in (("left", 3), ("right", 4)):
        ext = [math.degrees(s.peak_hip_extension_rad) for s in results.strides
               if s.side == side and not s.doubtful]
        assert abs(walking[-1][col] - float(np.median(ext))) <= 3.0
    lines = buf.getvalue().splitlines()
    after = [ln for ln in lines if (m := re.match(r"\[\s*(\d+\.\d) s\]", ln)) and float(m[1]) > t_last]
    assert any("holds left" in ln for ln in after)  # the walk ended: the holds again
    panel = Console(width=200, file=io.StringIO(), record=True)
    panel.print(coach.render())
    row = next(ln for ln in panel.export_text().splitlines() if "Walking" in ln)
    assert f"Walking  {len(results.strides)} strides, " in row and "peak hip extension left" in row

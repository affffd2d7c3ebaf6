"""Scalar kinematic channels of the virtual patient on a fine uniform time grid.

Channels (rad, m): ``tilt`` (pelvic tilt, anterior +), ``hip_left``/``hip_right`` (hip flexion +),
``lumbar`` (lumbar flexion +), ``obliquity`` (pelvis about its anterior axis, right side down +),
``pelvis_rotation`` (pelvis about its superior axis, right side forward +), ``add_left``/``add_right``
(hip adduction +), ``heading`` (walking direction about world z from world x, unwrapped) and the pelvis
centre position ``x``, ``y``, ``z`` in the world. All are relative to standing neutral.
:mod:`hipback.simulator.body`
turns them into segment orientations whose angles (computed back with the processing definitions)
equal these channels.

Every step is smooth to the second derivative at its ends (minimum-jerk transitions, windows on sway and
gait envelopes), so accelerations are continuous.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hipback.simulator import gait
from hipback.simulator.loading import GroundReaction
from hipback.simulator.patient import VirtualPatient
from hipback.simulator.scenarios import DEFAULT_TRANSITION_S, TRANSITION_S, Scenario, Step, pose_class

FloatArray = NDArray[np.float64]
CHANNELS = (
    "tilt",
    "hip_left",
    "hip_right",
    "lumbar",
    "obliquity",
    "pelvis_rotation",
    "add_left",
    "add_right",
    "heading",
    "x",
    "y",
    "z",
)
DEG = np.pi / 180.0
GAIT_RAMP_S = 1.2
HOLD_SHIFT_S = 1.5
KNEE_HEIGHT_M = 0.06


def min_jerk(s: FloatArray | float) -> FloatArray:
    """Minimum-jerk profile 0 -> 1 for s in [0, 1] (clipped outside).

    Zero velocity and acceleration at both ends."""
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    return s**3 * (10.0 - 15.0 * s + 6.0 * s**2)


def smooth_noise(rng: np.random.Generator, t: FloatArray, corr_s: float) -> FloatArray:
    """Zero-mean, unit-std smooth random signal (random knots every ``corr_s`` s, cubic interpolation)."""
    from scipy.interpolate import CubicSpline

    if len(t) == 0:
        return np.zeros(0)
    n = int(np.ceil((t[-1] - t[0]) / corr_s)) + 4
    knots_t = t[0] + (np.arange(n) - 1) * corr_s
    return CubicSpline(knots_t, rng.standard_normal(n))(t)


def _sway(rng: np.random.Generator, t_local: FloatArray, duration: float) -> FloatArray:
    """Slow postural sway (unit amplitude), windowed to vanish smoothly at the step's ends."""
    sig = np.zeros_like(t_local)
    for freq in (0.11, 0.23, 0.41):
        sig += np.sin(2 * np.pi * freq * rng.uniform(0.8, 1.2) * t_local + rng.uniform(0, 2 * np.pi))
    ramp = min(1.0, duration / 3.0)
    window = min_jerk(t_local / ramp) * min_jerk((duration - t_local) / ramp)
    return sig / 3.0 * window


@dataclass
class Station:
    """Where the patient is on the floor (m) and which way they face (rad from world x)."""

    x: float = 0.0
    y: float = 0.0
    heading: float = 0.0


@dataclass
class StepRecord:
    """What happened in one step or transition (times in s on the session timeline)."""

    kind: str  # step kind or "transition"
    t_start: float
    t_end: float
    side: str | None = None
    arching: bool = False
    t_hold_start: float | None = None
    t_hold_end: float | None = None
    t_arch_start: float | None = None


@dataclass
class Motion:
    """The channels on the fine grid plus what the truth needs (gait phase, envelope, step records)."""

    t: FloatArray
    ch: dict[str, FloatArray]
    phase: FloatArray  # gait cycles of the right side since the walk began (NaN outside walks)
    envelope: FloatArray  # gait amplitude 0..1 (0 outside walks)
    walk_id: NDArray[np.int64]  # index of the walk (-1 outside walks)
    records: list[StepRecord] = field(default_factory=list)
    left_offset: float = 0.5  # cycles from a right IC to the next left IC


def _kneel_position(
    station: Station, tilt: FloatArray, hip_back: FloatArray, patient: VirtualPatient
) -> tuple:
    """Pelvis centre over the planted back knee: the back thigh (length L) joins knee and hip."""
    incl = hip_back - tilt  # sagittal inclination of the back thigh (forward +)
    fwd = -0.10 - patient.thigh_length_m * np.sin(incl)
    z = KNEE_HEIGHT_M + patient.thigh_length_m * np.cos(incl)
    return fwd, z


def _pose(kind: str, side: str | None, patient: VirtualPatient) -> dict[str, float]:
    """Still pose values: angles (rad) plus ``fwd`` (m, along the heading from the station) and ``z``."""
    p = {c: 0.0 for c in CHANNELS if c not in ("heading", "x", "y", "z")}
    p["fwd"] = 0.0
    p["z"] = patient.pelvis_height_m
    if kind == "sit":
        p["tilt"] = patient.sitting_tilt_deg * DEG
        p.update(hip_left=88 * DEG + p["tilt"], hip_right=88 * DEG + p["tilt"])
        p["lumbar"] = patient.sitting_lumbar_flexion_deg * DEG
        p["add_left"] = p["add_right"] = -4 * DEG
        p["fwd"], p["z"] = -0.15, 0.52
    elif kind == "lie":
        p["tilt"] = -90 * DEG  # supine: the whole body rotated posteriorly
        p.update(hip_left=3 * DEG, hip_right=3 * DEG)
        p["fwd"], p["z"] = -0.35, 0.62
    elif kind in ("kneel", "hold"):
        back = "hip_left" if side == "left" else "hip_right"
        front = "hip_right" if side == "left" else "hip_left"
        if kind == "kneel":
            p["tilt"], p[back], p[front] = 0.0, -3 * DEG, 80 * DEG
        else:
            p["tilt"] = patient.hold_start_tilt_deg * DEG
            p[back] = -patient.stretch_hip_extension_deg(side or "left") * DEG
            p[front] = 92 * DEG
        p["lumbar"] = -patient.lumbar_follow * p["tilt"]
        fwd, z = _kneel_position(Station(), np.array(p["tilt"]), np.array(p[back]), patient)
        p["fwd"], p["z"] = float(fwd), float(z)
    return p


def _place(
    ch: dict[str, FloatArray], station: Station, fwd: FloatArray, left: FloatArray | float = 0.0
) -> None:
    c, s = np.cos(station.heading), np.sin(station.heading)
    ch["x"] = station.x + c * fwd - s * left
    ch["y"] = station.y + s * fwd + c * left
    ch["heading"] = np.full_like(fwd, station.heading)


def _still(
    step: Step, tl: FloatArray, patient: VirtualPatient, station: Station, rng, first: bool = False
) -> dict[str, FloatArray]:
    p = _pose(step.kind, step.side, patient)
    if step.kind == "stand":  # the patient's habitual "neutral" stance (zero for the easy patient)
        for c, v in patient.stance_deg().items():
            p[c] += v * DEG
    ch = {c: np.full_like(tl, p[c]) for c in p if c in CHANNELS}
    amp = patient.sway_deg * DEG
    sway = amp * _sway(rng, tl, step.duration_s)
    fwd = np.full_like(tl, p["fwd"])
    if step.kind == "stand":
        ch["tilt"] = ch["tilt"] + sway  # whole-body sway at the ankles: pelvis and thighs lean together
        fwd = fwd + patient.pelvis_height_m * sway
        ch["hip_left"] = ch["hip_left"] + 0.3 * amp * _sway(rng, tl, step.duration_s)
        ch["hip_right"] = ch["hip_right"] + 0.3 * amp * _sway(rng, tl, step.duration_s)
        if first and patient.calibration_fidget_deg > 0 and step.duration_s > 3.0:
            # a weight shift during "stand still": one hip flexes and comes back (1.5 s), the pelvis follows
            t_mid = rng.uniform(0.3, 0.7) * step.duration_s
            bump = np.sin(np.pi * np.clip((tl - t_mid + 0.75) / 1.5, 0.0, 1.0)) ** 2
            side = "hip_left" if rng.uniform() < 0.5 else "hip_right"
            ch[side] = ch[side] + patient.calibration_fidget_deg * DEG * bump
            ch["tilt"] = ch["tilt"] + 0.3 * patient.calibration_fidget_deg * DEG * bump
            ch["obliquity"] = ch["obliquity"] + 0.2 * patient.calibration_fidget_deg * DEG * bump
    else:
        ch["tilt"] = ch["tilt"] + 0.5 * sway
    _place(ch, station, fwd)
    return ch


def _hold(step: Step, tl: FloatArray, patient: VirtualPatient, station: Station, rng, rec: StepRecord):
    rest = _pose("kneel", step.side, patient)
    hold = _pose("hold", step.side, patient)
    total = step.duration_s + 2 * HOLD_SHIFT_S
    shift = min_jerk(tl / HOLD_SHIFT_S) * min_jerk((total - tl) / HOLD_SHIFT_S)
    ch = {c: rest[c] + (hold[c] - rest[c]) * shift for c in CHANNELS if c in rest}
    back = "hip_left" if step.side == "left" else "hip_right"
    # small postural sway of the pelvis during the hold (within ~0.5 deg), windowed to the plateau
    plateau_t = tl - HOLD_SHIFT_S
    sway = 0.5 * patient.sway_deg * DEG * _sway(rng, plateau_t, step.duration_s)
    sway[(plateau_t < 0) | (plateau_t > step.duration_s)] = 0.0
    ch["tilt"] = ch["tilt"] + sway
    rec.t_hold_start = rec.t_start + HOLD_SHIFT_S
    rec.t_hold_end = rec.t_hold_start + step.duration_s
    if step.arching:
        arch_at = float(step.options.get("arch_at", 0.25)) * step.duration_s
        arch_ramp = min(3.0, 0.3 * step.duration_s)
        arch = patient.arch_tilt_deg * DEG * min_jerk((plateau_t - arch_at) / arch_ramp)
        arch *= min_jerk((total - tl) / HOLD_SHIFT_S)  # released with the shift back
        ch["tilt"] = ch["tilt"] + arch
        ch["lumbar"] = ch["lumbar"] - patient.lumbar_follow * arch
        rec.t_arch_start = rec.t_hold_start + arch_at
    fwd, z = _kneel_position(station, ch["tilt"], ch[back], patient)
    ch["z"] = z
    _place(ch, station, fwd)
    return ch


def _walk(step: Step, tl: FloatArray, patient: VirtualPatient, station: Station, rng, dt: float):
    T = step.duration_s
    v = patient.walking_speed_m_s
    ramp = patient.gait_ramp_s
    env = min_jerk(tl / ramp) * min_jerk((T - tl) / ramp)
    f0 = 1.0 / patient.stride_time_s
    freq = f0 * (1.0 + patient.stride_variability * smooth_noise(rng, tl, patient.stride_time_s))
    if patient.initiation_cadence_drop > 0:  # slower first and last steps
        freq = freq * (1.0 - patient.initiation_cadence_drop * (1.0 - env))
    phase = np.concatenate(([0.0], np.cumsum(0.5 * (freq[1:] + freq[:-1]) * dt)))
    # heading: straight corridor legs joined by 180 deg U-turns (alternating left/right)
    corridor = float(step.options.get("corridor_m", 10.0))
    turn_s = float(step.options.get("turn_s", 2.5)) if patient.turn_s is None else float(patient.turn_s)
    leg_s = corridor / v
    heading = np.full_like(tl, station.heading)
    turning = np.zeros_like(tl)
    t_turn, k = leg_s, 0
    while t_turn + turn_s < T - ramp - 0.5:
        direction = 1.0 if k % 2 == 0 else -1.0
        s = (tl - t_turn) / turn_s
        heading += direction * np.pi * min_jerk(s)
        turning += np.sin(np.pi * np.clip(s, 0, 1)) ** 2
        t_turn += turn_s + leg_s
        k += 1
    speed = v * env * (1.0 - 0.3 * turning) * (1.0 + 0.04 * np.cos(4 * np.pi * (phase - 0.1)))
    vx, vy = speed * np.cos(heading), speed * np.sin(heading)
    px = station.x + np.concatenate(([0.0], np.cumsum(0.5 * (vx[1:] + vx[:-1]) * dt)))
    py = station.y + np.concatenate(([0.0], np.cumsum(0.5 * (vy[1:] + vy[:-1]) * dt)))
    lateral = -0.02 * env * np.sin(2 * np.pi * phase)  # towards the stance leg (left = +)
    ch: dict[str, FloatArray] = {}
    ch["x"] = px - np.sin(heading) * lateral
    ch["y"] = py + np.cos(heading) * lateral
    off_l = patient.left_phase_offset
    # lowest in double support: at the IC for the easy patient, mid double support for realistic ones
    if patient.stance_share > 0:  # the motion the ground reaction force implies (realistic walkers)
        grf = GroundReaction(patient.grf_peak1, patient.grf_valley, patient.grf_peak2, patient.stance_share,
                             off_l, patient.grf_peak2_at)
        ch["z"] = patient.pelvis_height_m + env * grf.pelvis_displacement(phase, f0)
    else:
        lag = patient.com_phase_lag
        ch["z"] = patient.pelvis_height_m - patient.bob_m * env * np.cos(4 * np.pi * (phase - lag))
    if patient.heel_strike_delay_s > 0 or patient.heel_strike_jitter_s > 0 or patient.heel_strike_cv > 0:
        ch["z"] = ch["z"] + variable_heel_strikes(phase, f0, patient, rng, dt, env)
    elif off_l == 0.5:
        ch["z"] = ch["z"] + env * heel_strike_displacement(phase, f0, patient.heel_strike_acc_m_s2)
    else:
        for off in (0.0, off_l):
            ch["z"] = ch["z"] + env * heel_strike_displacement(
                phase, f0, patient.heel_strike_acc_m_s2, offset=off, per_stride=1
            )
    ch["heading"] = heading
    ext, flex = {}, {}
    for side in ("left", "right"):
        e = patient.peak_hip_extension_deg(side)
        if patient.amplitude_variability_deg > 0:
            e = e + patient.amplitude_variability_deg * smooth_noise(rng, tl, patient.stride_time_s)
        ext[side] = np.asarray(e) * DEG
        f = patient.peak_hip_flexion_side_deg(side)
        if patient.flexion_variability_deg > 0:
            f = f + patient.flexion_variability_deg * smooth_noise(rng, tl, patient.stride_time_s)
        flex[side] = np.asarray(f) * DEG
    ph_r, ph_l = phase, phase - off_l
    amp = env if patient.turn_amplitude_drop <= 0 else env * (1.0 - patient.turn_amplitude_drop * turning)
    ch["hip_right"] = amp * gait.hip_flexion(ph_r, ext["right"], flex["right"], patient.hip_shape("right"))
    ch["hip_left"] = amp * gait.hip_flexion(ph_l, ext["left"], flex["left"], patient.hip_shape("left"))
    comp = (
        patient.compensation_deg("right") * gait.terminal_stance_bump(ph_r)
        + patient.compensation_deg("left") * gait.terminal_stance_bump(ph_l)
    ) * DEG
    osc = patient.pelvic_tilt_amplitude_deg * DEG * gait.tilt_oscillation(ph_r)
    ch["tilt"] = env * (patient.walking_tilt_offset_deg * DEG + osc + comp)
    ch["lumbar"] = -patient.lumbar_follow * env * (osc + comp)
    ch["obliquity"] = -env * patient.pelvic_obliquity_amplitude_deg * DEG * np.sin(2 * np.pi * ph_r)
    ch["pelvis_rotation"] = env * patient.pelvic_rotation_amplitude_deg * DEG * np.cos(2 * np.pi * ph_r)
    add = patient.hip_adduction_amplitude_deg * DEG
    ch["add_right"] = env * add * np.cos(2 * np.pi * (ph_r - 0.1))
    ch["add_left"] = env * add * np.cos(2 * np.pi * (ph_l - 0.1))
    for c, val in patient.stance_deg().items():  # walks start from and end in the standing stance
        if val:
            ch[c] = ch[c] + (1.0 - env) * val * DEG
    new_station = Station(float(px[-1]), float(py[-1]), float(heading[-1]))
    return ch, phase, env, new_station


def ic_wavelet_time(phase: FloatArray, f0: float, offset: float = 0.0, per_stride: int = 2) -> FloatArray:
    """Time (s) from the nearest initial contact, given the gait phase in cycles (``per_stride`` = 2 counts
    both sides' contacts, 1 only the side whose contacts are at ``phase - offset`` integer)."""
    x = per_stride * (np.asarray(phase) - offset)
    return (x - np.round(x)) / (per_stride * f0)


#: Duration (s) of the heel-strike force pulse that sets the leg's and the soft tissue's wobble ringing:
#: the heel-strike transient of the vertical ground reaction force rises and falls within 10-25 ms of
#: initial contact in walking (Whittle 1999, *Gait Posture* 10:264).
IMPACT_PULSE_S = 0.02
#: Damping ratio of the wobbling soft tissue: its vibration after heel strike decays within ~0.1 s
#: (Wakeling & Nigg 2001, *J Appl Physiol* 90:412; at 12-18 Hz and 0.25: to 10 % in 70-100 ms).
IMPACT_DAMPING = 0.25


def impact_pulses(since: FloatArray, height: FloatArray | float = 1.0) -> FloatArray:
    """Half-sine force pulses of :data:`IMPACT_PULSE_S` (s) starting where ``since`` (s since each onset,
    e.g. the contact plus a delay) passes 0, of ``height`` (per sample, e.g. the gait envelope times the
    contact's size); 0 elsewhere."""
    u = np.asarray(since, dtype=float)
    on = (u >= 0.0) & (u < IMPACT_PULSE_S)
    return np.where(on, np.sin(np.pi * np.clip(u, 0.0, IMPACT_PULSE_S) / IMPACT_PULSE_S), 0.0) * height


#: Contact-to-contact variation of the heel strike's size (standard deviation of its logarithm): no two heel
#: strikes land alike (walking speed, foot placement and the shoe change the transient from step to step).
#: On the real recordings (``bench/realism.py``) a walker's thigh impacts span a ratio of 1.7-2.0 between
#: their 75th and 25th percentiles (sacral 1.7-3.5), where impacts of one size gave the virtual walkers 1.3
#: (the sampling and the noise alone); 0.4 gives 1.7 (measured the same way, ``bench/README.md``).
CONTACT_SIZE_SIGMA = 0.4


def contact_sizes(phase: FloatArray, seed: int, left_offset: float = 0.5) -> tuple[FloatArray, FloatArray]:
    """The size of each heel strike (mean 1, lognormal of :data:`CONTACT_SIZE_SIGMA`) for the right leg's
    contacts (``phase`` integer) and the left leg's (``phase - left_offset`` integer), indexed by the
    rounded ``phase - offset``; one draw per session from ``seed``'s own stream, shared by every sensor (one
    heel strike shakes the thigh and the sacrum alike)."""
    top = float(np.nanmax(phase)) if np.isfinite(phase).any() else 0.0
    n = max(int(np.ceil(top)) + 3, 1)
    rng = np.random.default_rng([seed, 4])
    s = CONTACT_SIZE_SIGMA
    return (np.exp(rng.normal(-0.5 * s * s, s, n)), np.exp(rng.normal(-0.5 * s * s, s, n)))


def contact_index(phase: FloatArray, offset: float, n: int) -> NDArray[np.intp]:
    """Index of each sample's nearest contact of the leg whose contacts are at ``phase - offset`` integer,
    within ``[0, n)``."""
    return np.clip(np.round(np.asarray(phase) - offset), 0, n - 1).astype(np.intp)


def impact_response(pulses: FloatArray, dt: float, freq_hz: float, peak: str = "acceleration") -> FloatArray:
    """Motion ``x`` of a damped oscillator struck by ``pulses`` (on a uniform grid of step ``dt``, s):
    ``x'' + 2 zeta w x' + w^2 x = pulses`` from rest, ``w = 2 pi freq_hz``, ``zeta`` =
    :data:`IMPACT_DAMPING` (bilinear discretisation), scaled so that one pulse of height 1 gives a peak
    ``x''`` of 1 (``peak="acceleration"``) or a peak ``x`` of 1 (``peak="displacement"``).

    The model of a wobbling mass (the soft tissue and the sensor strapped on it, or the trunk on the leg)
    shaken by the heel strike: it is causal (nothing moves before the contact), its acceleration starts
    with the pulse, in the pulse's direction, and rings at ``freq_hz`` as it decays (soft-tissue vibration
    of the thigh after heel strike: 10-20 Hz, damped within ~0.1 s, Wakeling & Nigg 2001)."""
    from scipy.signal import bilinear, lfilter

    w = 2.0 * np.pi * freq_hz
    b, a = bilinear([1.0], [1.0, 2.0 * IMPACT_DAMPING * w, w * w], 1.0 / dt)
    unit = lfilter(b, a, impact_pulses(np.arange(int(0.3 / dt)) * dt))
    if peak == "acceleration":
        scale = np.max(np.abs(np.diff(unit, 2))) / (dt * dt)
    else:
        scale = np.max(np.abs(unit))
    return lfilter(b, a, np.asarray(pulses, dtype=float)) / scale


def heel_strike_displacement(
    phase: FloatArray, f0: float, peak_acc: float, offset: float = 0.0, per_stride: int = 2
) -> FloatArray:
    """Vertical pelvis displacement (m) whose second derivative is a ~``peak_acc`` upward wavelet at
    every initial contact (Gaussian-windowed 18 Hz cosine, 12 ms width); ``offset``/``per_stride`` as in
    :func:`ic_wavelet_time` (default: both sides' contacts half a cycle apart)."""
    dt_ic = ic_wavelet_time(phase, f0, offset=offset, per_stride=per_stride)
    omega = 2 * np.pi * 18.0
    return -peak_acc / omega**2 * np.exp(-0.5 * (dt_ic / 0.012) ** 2) * np.cos(omega * dt_ic)


def variable_heel_strikes(
    phase: FloatArray,
    f0: float,
    patient: VirtualPatient,
    rng: np.random.Generator,
    dt: float,
    envelope: FloatArray | float = 1.0,
) -> FloatArray:
    """Vertical pelvis displacement (m) of the heel-strike transients of a realistic walker: the upward
    ~18 Hz ringing (:func:`impact_response`, on the grid of step ``dt``) of a force pulse per initial
    contact of each side, starting ``heel_strike_delay_s`` plus a per-contact jitter (std
    ``heel_strike_jitter_s``; never before the contact) after it, each scaled (lognormal, CV
    ``heel_strike_cv``) to a peak acceleration of about ``heel_strike_acc_m_s2`` times ``envelope`` (the
    gait amplitude 0..1). The heel-strike transient of the ground reaction force rises within 5-25 ms of
    initial contact and varies from step to step and between people (Whittle 1999, *Gait Posture* 10:264,
    review "Generation and attenuation of transient impulsive forces beneath the foot"); it reaches the
    sacrum attenuated by the leg and later still; shuffling walkers have almost none. Causal: the pelvis
    does not shake before the contact (the Gaussian-windowed wavelet used before had lobes of half its
    size some 30 ms before its peak, which put the sacral contact before the true one)."""
    pulses = np.zeros_like(phase)
    for off in (0.0, patient.left_phase_offset):
        x = np.asarray(phase) - off
        k = np.round(x)
        n = int(k.max() - k.min()) + 1 if len(k) else 0
        delay = patient.heel_strike_delay_s + rng.normal(0.0, patient.heel_strike_jitter_s, n)
        delay = np.maximum(delay, 0.0)
        sigma = np.sqrt(np.log1p(patient.heel_strike_cv**2))
        amp = patient.heel_strike_acc_m_s2 * rng.lognormal(-0.5 * sigma**2, sigma, n)
        idx = (k - k.min()).astype(int)
        pulses += impact_pulses((x - k) / f0 - delay[idx], amp[idx] * envelope)
    return impact_response(pulses, dt, 18.0)


def transition_s(prev: Step, nxt: Step) -> float:
    a, b = pose_class(prev), pose_class(nxt)
    if a == b:
        return 0.0
    return TRANSITION_S.get((a[0], b[0]), DEFAULT_TRANSITION_S)


def generate(
    scenario: Scenario, patient: VirtualPatient, rng: np.random.Generator, dt: float = 0.001
) -> Motion:
    """Channels for the whole scenario on a grid of step ``dt`` starting at 0."""
    # lay out the timeline: (kind, step or None, t_start, duration)
    layout: list[tuple[Step | None, float, float]] = []
    t = 0.0
    prev: Step | None = None
    for step in scenario.steps:
        if prev is not None:
            tr = transition_s(prev, step)
            if tr > 0:
                layout.append((None, t, tr))
                t += tr
        dur = step.duration_s + (2 * HOLD_SHIFT_S if step.kind == "hold" else 0.0)
        layout.append((step, t, dur))
        t += dur
        prev = step
    n = int(round(t / dt)) + 1
    tt = np.arange(n) * dt
    ch = {c: np.full(n, np.nan) for c in CHANNELS}
    phase = np.full(n, np.nan)
    env = np.zeros(n)
    walk_id = np.full(n, -1, dtype=np.int64)
    records: list[StepRecord] = []
    bounds: list[tuple[int, int]] = []
    station = Station()
    walk_no = 0
    for step, t0, dur in layout:
        i0 = int(round(t0 / dt))
        i1 = int(round((t0 + dur) / dt)) if (t0 + dur) < t - 1e-9 else n
        bounds.append((i0, i1))
        rec = StepRecord(
            kind="transition" if step is None else step.kind, t_start=i0 * dt, t_end=min(i1, n - 1) * dt
        )
        records.append(rec)
        if step is None:
            continue
        rec.side, rec.arching = step.side, step.arching
        tl = tt[i0:i1] - tt[i0]
        if step.kind == "walk":
            vals, ph, en, station = _walk(step, tl, patient, station, rng, dt)
            phase[i0:i1], env[i0:i1], walk_id[i0:i1] = ph, en, walk_no
            walk_no += 1
        elif step.kind == "hold":
            vals = _hold(step, tl, patient, station, rng, rec)
        else:
            vals = _still(step, tl, patient, station, rng, first=not records[:-1])
        for c in CHANNELS:
            ch[c][i0:i1] = vals[c] if np.ndim(vals[c]) else np.full(i1 - i0, vals[c])
    if patient.hip_rotation_amplitude_deg > 0:
        # hip internal rotation in stance, external in swing (optional channels, not in CHANNELS)
        amp = patient.hip_rotation_amplitude_deg * DEG * env
        ph = np.nan_to_num(phase, nan=0.0)
        ch["rot_right"] = amp * np.cos(2 * np.pi * (ph - 0.2))
        ch["rot_left"] = amp * np.cos(2 * np.pi * (ph - patient.left_phase_offset - 0.2))
        # minimum-jerk blends across transitions, from the previous sample to the next step's first sample
    for (step, _t0, _dur), (i0, i1) in zip(layout, bounds, strict=True):
        if step is not None:
            continue
        a, b = i0 - 1, min(i1, n - 1)
        s = min_jerk((tt[i0:i1] - tt[a]) / (tt[b] - tt[a]))
        for c in CHANNELS:
            ch[c][i0:i1] = ch[c][a] + (ch[c][b] - ch[c][a]) * s
    return Motion(
        t=tt,
        ch=ch,
        phase=phase,
        envelope=env,
        walk_id=walk_id,
        records=records,
        left_offset=patient.left_phase_offset,
    )

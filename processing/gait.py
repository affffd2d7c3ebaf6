"""Gait: strides per side from the hip's sagittal swing, initial contacts from the best evidence, metrics.

Strides (``docs/biomechanics.md``, "Gait events")
-------------------------------------------------
The hip flexes and extends once per stride: peak flexion in late swing shortly before initial contact
(IC), peak extension in terminal stance. The detector finds each cycle's peak of the hip flexion angle (the
thigh inclination where the hip angle is missing; maximum of the low-passed signal (below) within
+- ``peak_window_s``, refined to sub-sample time with a parabola); two consecutive peaks make a candidate
stride. The peaks only say *that* a stride happened; *when* it starts is the IC after each peak, taken from
the best evidence the sensors give, searched within ``ic_search`` (share of the cycle, default -0.05 to
+0.35) around the peak, since peak flexion falls at about 70-92 % of the cycle depending on the person.
The peaks are taken from the event signal low-passed by a Gaussian of standard deviation ``peak_sigma_s``
(0.03 s: amplitude 0.5 at 6 Hz, as the second-order Butterworth filter run forward and backward at the
6 Hz cut-off usual for walking kinematics, Winter 2009, ch. 2; 0.08 at 12 Hz): a thigh sensor on soft
tissue rings at 10-20 Hz after the heel strike (Wakeling & Nigg 2001), on a loose strap by up to 10 deg,
and with only the values' light smoothing (below) a ringing lobe just after the contact outgrew a flat
swing peak before it (a real recording, ``bench/README.md``), which moved that cycle's peak 0.2 s late and
lost two strides to the duration checks. For locating the peaks only, a run of missing samples of at most
``peak_fill_s`` (50 ms) is bridged linearly (a sample the plausibility guard flagged at a heel strike's shake
would otherwise hide the flexion peak up to 0.4 s before it); the strides still never hold a missing sample:

1. ``acceleration``: the heel-strike impact seen by the sacral sensor in the pelvis' vertical acceleration,
   as lower-back IC detectors use the vertical trunk acceleration (McCamley et al. 2012; Paraschiv-Ionescu
   et al. 2020). Its steep flanks are found in the derivative of the signal after Gaussian smoothing over
   ``ic_smooth_s`` (which keeps the impact's frequencies), rising or falling: the impact's wavelet may
   start either way. A flank counts only where it is at least ``ic_sharpness`` times as steep as over the
   longer smoothing ``ic_slow_s``: an impact is a transient, the loading response's slower rise is not.
   The contact is where the disturbance *begins*: the first flank at least ``ic_onset_share`` as steep as
   the steepest one in the search window, since the sensor's soft tissue rings after the impact, sometimes
   more than the impact itself. With both thighs worn, only flanks from ``ic_refine_s[0]`` before to
   ``ic_refine_s[1]`` after the largest split between the thighs count: step length, hence the split
   between the leading and the trailing thigh, is largest around heel strike, at the latest at the contact
   (the trailing thigh starts to flex in pre-swing) but often earlier, as the leading thigh retracts in
   terminal swing; the split also tells the side (the leading leg is the one that contacts).
   ``ic_rule = "shoulder"`` (an alternative, not the default) takes instead the last local maximum of the
   smoothed acceleration within ``ic_shoulder_s`` before the steepest rising flank, where there is one: on
   the real Movella DOT walks the sacral signal rises (push-off of the trailing leg), levels off at the
   contact, then shows its largest rise some tens of ms later (loading), and that shoulder agrees with the
   Mobilise-D detector's contacts (``bench/README.md``); on the realistic virtual patient it is worse.
   ``ic_rule = "smooth"`` takes the steepest rise of the acceleration low-passed over ``ic_slow_s``, the
   principle of the validated lower-back detectors (see :meth:`StrideDetector._sacral_contact`); on the
   real walks it agrees with the Mobilise-D detector, on the virtual patients it does not yet.
   ``thigh_impact`` (``use_thigh_impact``, on by default, where the thigh sensor gives acceleration): the
   contact from 1. (or, without a sacral contact, the split maximum) is moved to the heel-strike impact
   in this leg's thigh sensor within ``ic_impact_window_s[0]`` before and ``ic_impact_window_s[1]`` after
   it: a peak of the *transient* of its acceleration magnitude (gravity removed; the part above its own
   Gaussian low-pass over ``ic_impact_highpass_s``) of at least ``min_impact_m_s2`` that rises by at
   least ``min_impact_rise_m_s2`` within ``ic_impact_rise_s``; of these the first at least
   ``ic_impact_share`` as high as the highest. The contact is that impact's *leading edge*: walking back
   from its peak, where the magnitude has risen ``ic_impact_edge`` (0.5) of the way from its lowest value
   over the ``ic_impact_rise_s`` before the peak (``ic_impact_edge`` >= 1: the peak itself). The contact is
   when the heel-strike force begins, and the shock needs 10-25 ms to reach its peak (Whittle 1999); where
   the first lobe of the shake is masked in the magnitude (it points against the thigh's own acceleration
   at that moment, or a 60 Hz sensor misses it) only the next lobe, some 40 ms later, stands out, and its
   peak put the contact more than 50 ms late, while its rise starts with the impact (``bench/README.md``).
   The thigh is nearer the foot than the sacrum, so its impact
   comes first; after it the soft tissue rings and the thigh shakes again at foot flat, as much as at the
   impact or more, hence the window ends at the sacral contact and the first peak of comparable size is
   taken; where it holds none and the sacral onset was a *falling* flank, the impact is looked for up to
   ``ic_impact_after_s`` (0.05 s) after that onset too. The body is pushed up at the heel strike, so a
   contact's own transient mostly begins rising in the sacrum's vertical acceleration; a falling one can be
   the flank of a dip just before the contact, where a walker who makes up for a stiff hip tilts the pelvis
   forward in terminal stance and the sacral sensor, behind and above the hip's axis, dips with it through
   its lever arm; such an onset comes before the contact, and the thigh's clear impact after it was never
   looked for (``bench/README.md``, "Fourteenth pass"). A falling onset can also be the impact's own first
   sample at 60 Hz, where the second look may take a later lobe: so it reaches only about as far as such a
   dip's flank lies before the contact. The window
   begins 0.2 s before the sacral contact, also where that lies before the search window: the
   sacrum's steepest rise can belong to the loading response, which builds up over the first 0.1-0.15 s
   after the heel strike (Perry & Burnfield 2010, ch. 4; on the real qmt recording up to 0.18 s after the
   foot sensor's heel strike, where a window of 0.15 s missed the impact), and the flexion peak itself can
   come after the
   contact where the hip's flexion is flat at the end of swing and the thigh's soft tissue swings forward
   at the impact (a real 100 Hz full-body recording, qmt example data: sacral contacts 0.09-0.12 s and
   flexion peaks up to 0.145 s after the heel strikes of the recording's own foot sensors; with a window
   of 0.1 s inside the search window 35 % of one leg's contacts were within 50 ms of the foot's heel
   strike, with 0.15 s 92 %, ``bench/README.md``). Only a sharp transient counts because the hamstrings
   brake the swinging thigh in terminal swing, a smooth hump of 5-10 m/s^2 50-150 ms before the contact, as
   large as a soft impact (see
   :meth:`StrideDetector._thigh_impact`). On the real Movella DOT walks this takes hipback's contacts from
   ~55 ms after the Mobilise-D detector's to within ~20 ms of them in steady walking (``bench/README.md``;
   timed at the edge they come some 20 ms earlier than at the peak).
   ``sacral_lag`` (on by default): a contact that shows no thigh impact (a soft heel strike, or a shake
   masked in the magnitude) is timed from the sacrum's steady rise (:meth:`StrideDetector._rise`) plus
   this walker's own lag of the contact behind it: the median over the last ``phase_memory`` contacts of
   this leg that kept the swing's rhythm and showed a thigh impact, once there are 3 (before that, and
   without them, the sacral rule above). The sharp-transient rule's flank moves with how firm the contact
   is, and the steepest rise's place differs by tens of ms between people; the walker's own firm contacts
   say where its soft ones lie (``bench/README.md``).
2. ``thigh_split``: without a usable acceleration (absent, or a range below ``min_acc_range_m_s2`` over the
   search window, i.e. a signal that shows no gait) the split maximum itself.
3. ``hip_phase``: with one thigh and no acceleration, ``IC = t(peak flexion) + phase * cycle``, the
   weakest evidence. ``phase`` is this walker's own: the median share of the cycle from peak flexion to
   the contact over the last ``phase_memory`` contacts found from the sensors (1., 2.) that kept the
   rhythm, once there are 3; before that (and always without such contacts) ``ic_phase`` 0.125, i.e. peak
   flexion assumed at 87.5 % of the cycle. It also times the contacts of doubtful strides (below).

A stride runs from one IC to the next on the same side. Its ``confidence`` is that of its weaker contact (1.0
thigh impact or acceleration, 0.8 thigh split, 0.5 hip phase); it is ``doubtful`` (confidence 0.2) when
acceleration was there but showed no contact with one thigh worn, or when the IC-to-IC time differs both from
the peak-to-peak time and from the previous stride's IC-to-IC time (sensed contacts, sharing this stride's
first contact) by more than ``ic_mismatch`` of it (then the phase rule times it): flexion peaks can move
between strides (flat peaks of slow walkers, turns) while the contacts keep their rhythm. A doubtful stride
still counts (cadence, bouts) but reports no peak extension, pelvic tilt at peak extension or compensation
index (NaN): peaks are never reported from a stride whose events are doubtful. The session processor lowers
the confidence further by the calibration uncertainty of the thigh's medio-lateral axis
(``ml_uncertainty_deg``).

Turns, gait initiation and termination. A stride of a turn is a stride: it is counted, timed from its
contacts and belongs to its bout like any stride of straight walking (cadence, stride counts and bouts
include turns, as the Mobilise-D walking bouts do); its contacts are as sharp in the sacral and thigh
accelerations, which do not depend on the heading. Its peak extension is reported as walked: the short
steps of a U-turn extend the hip less, and that smaller peak is what the hip did in that stride (it is
measured as well as in straight walking, and the session's median over strides is robust to the minority
of turning strides of a corridor walk). Each stride says whether it was walked on a turn, so that straight
walking can be compared over weeks on its own: ``heading_change_rad`` is the pelvis' heading change from the
stride's contact to its next one, the integral of ``pelvis_yaw_rate`` (the pelvis' angular velocity about the
world vertical, :class:`~hipback.processing.types.AngleSeries`) over the stride's samples (positive = to the
left, counter-clockwise seen from above; NaN where the yaw rate is missing), and ``turning`` is
``|heading_change_rad| > turn_threshold_rad`` (20 deg). The threshold from first principles and the turn
definitions of lower-back sensors: in straight walking the pelvis rotates back and forth about the vertical
within each stride (transverse pelvic rotation, a total arc of about 10 deg; Perry & Burnfield 2010, *Gait
Analysis*, 2nd ed.) and is back at its heading at the same event of the next stride, so the net change from
contact to contact is near 0; what is left comes from contacts timed up to ~50 ms off while that rotation
runs at up to ~30 deg/s (1-2 deg at each end) and from the slow heading drift of 6D fusion (a gyroscope bias
residual of well under 1 deg/s, under about 1 deg per stride). Lower-back turn detectors count a rotation of
at least 45 deg as a turn (El-Gohary et al. 2014, *Sensors* 14:356; the Mobilise-D implementation keeps that
limit), and such a turn made within one or two strides changes the heading by 22.5 deg or more in each of
them. 20 deg flags the strides of such a turn with a wide margin over straight walking; a slower turn (45 deg
over three strides or more) or a gently curved path counts as straight. The flag does not change anything
else (the stride is counted and its peak reported either way). The first strides of
gait initiation and the last of termination are kept when they pass the tests below (their swing is still
growing or already shrinking: ``range_ratio`` and ``consistency_ratio`` against the neighbour decide), and
the phase rule never times a stride whose two flexion peaks differ by more than ``max_peak_change_rad``.

A candidate stride (two consecutive peaks) is kept only if
* its duration is within ``[min_stride_s, max_stride_s]`` (default 0.7-2.0 s),
* the hip swings at least ``min_range_rad`` (both peaks above the trough between them by that much),
  the peak flexion stays below ``max_peak_flexion_rad`` and the trough below ``max_trough_rad`` (so
  sit-to-stand, kneeling and standing sway do not pass),
* when its contacts are timed by the phase rule (3.), its two flexion peaks differ by at most
  ``max_peak_change_rad`` (8 deg): in the first stride of gait initiation the swing amplitude is still
  growing, which delays the peak and would bias that IC by ~0.2 s (with contacts from the sensors' evidence
  the swing may change, as in turns),
* no sample in it is missing (NaN, time jump): strides never span a gap (a sample missing just outside it,
  within the smoothing's reach, takes the stride's end value there),
* it is *consistent* with an adjacent stride (previous or next, sharing the peak): duration ratio within
  ``consistency_ratio`` and swing-range ratio within ``range_ratio``. An isolated cycle is not gait, with
  one exception (``short_bouts``): a short walk (a few steps between rooms) has one steady stride between
  the swing that starts it and the one that ends it, neither a stride itself (the first swing starts from
  standing, the last ends in it: their peaks differ by more than ``max_peak_change_rad``); such a stride is
  kept when both of those swings keep its rhythm (at least ``min_range_rad``, the same two ratios) and its
  own contacts come from the sensors (not doubtful).

Per-stride metrics (rad, s; angles relative to the standing-neutral calibration; their values from the
lightly smoothed signal: with ``value_kernel`` ``quadratic`` a parabola fitted over +- ``smooth_s`` around
each sample (Savitzky-Golay), which keeps a peak's height; the triangular kernel of the same width
(``triangle``, used for the stride's decisions) flattens a peak by half its curvature times the kernel's
variance):
* ``peak_hip_extension_rad`` = -min(hip flexion) over the stride (positive = extension),
  at ``t_peak_extension``;
* ``hip_range_rad`` = max - min hip flexion over the stride;
* ``pelvic_tilt_at_peak_extension_rad`` (anterior positive) and ``pelvic_tilt_excursion_rad`` (max - min);
* ``lumbar_compensation_index`` (``docs/biomechanics.md``): over terminal stance, taken from the midpoint
  between IC and peak thigh extension to peak thigh extension, the share of the thigh's extension from the
  vertical that came from anterior pelvic tilt: ``delta pelvic tilt / delta thigh extension``. Since
  thigh extension = hip extension + anterior pelvic tilt, 0 means the hip did all the work, 1 means the
  pelvis did; negative means the pelvis tilted posteriorly. NaN when the thigh extended less than 2 deg;
* ``lumbar_excursion_rad``: range of lumbar flexion over the stride (NaN without the upper-lumbar sensor);
* ``cadence_spm`` = 120 / stride time (steps per minute, assuming symmetric steps).

Walking bouts (:class:`WalkingBout`, per leg): runs of accepted strides that share their ICs; a bout ends at a
rejected stride, a gap, or when no flexion peak follows within ``max_stride_s``. A stride becomes final once
the next peak has arrived (or cannot arrive any more), i.e. about one to two strides after its end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hipback.processing.blocks import Block
from hipback.processing.events import (
    Window,
    WindowedStream,
    feature_slice,
    smooth,
    triangular_kernel,
    window_max,
)
from hipback.processing.types import AngleSeries

#: Share of the gait cycle from peak thigh flexion (late swing) to initial contact.
DEFAULT_IC_PHASE = 0.125

_DEG = math.pi / 180.0

#: Confidence in a stride's events by the evidence for its initial contacts (see the module docstring).
_IC_CONFIDENCE = {
    "thigh_impact": 1.0,
    "acceleration": 1.0,
    "thigh_split": 0.8,
    "hip_phase": 0.5,
    "missing": 0.2,
    "doubtful": 0.2,
}


@dataclass
class Stride:
    """One stride of one leg, IC to next IC. Angles in rad (relative to standing neutral), times in s.

    ``heading_change_rad``: the pelvis' heading change from ``t_start`` to ``t_end`` (rad, counter-clockwise
    seen from above positive, i.e. a left turn; NaN without the pelvis' yaw rate); ``turning``: its magnitude
    exceeds the detector's ``turn_threshold_rad`` (see the module docstring, "Turns").
    """

    side: str
    t_start: float
    t_end: float
    stride_time_s: float
    cadence_spm: float
    peak_hip_extension_rad: float
    t_peak_extension: float
    hip_range_rad: float
    peak_thigh_flexion_rad: float
    peak_thigh_extension_rad: float
    pelvic_tilt_at_peak_extension_rad: float
    pelvic_tilt_excursion_rad: float
    lumbar_compensation_index: float
    lumbar_excursion_rad: float
    bout: int = 0
    ic_source: str = "hip_phase"
    doubtful: bool = False
    confidence: float = 1.0
    ml_uncertainty_deg: float = float("nan")
    turning: bool = False
    heading_change_rad: float = float("nan")

    @property
    def heading_change_deg(self) -> float:
        """``heading_change_rad`` in degrees (the pelvis' heading change from this stride's contact to the
        next, counter-clockwise seen from above positive; NaN when unknown)."""
        return math.degrees(self.heading_change_rad)


@dataclass
class WalkingBout:
    """Consecutive strides of one leg with no break (times in s)."""

    side: str
    t_start: float
    t_end: float
    n_strides: int
    cadence_spm: float

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start


@dataclass
class _Peak:
    idx: int  # absolute sample index of the peak (hip) flexion
    t: float  # sub-sample time of the peak
    value: float  # smoothed event signal (hip flexion) at the peak (rad)


@dataclass
class _Candidate:
    p0: _Peak
    p1: _Peak
    valid: bool
    range_rad: float
    stride: Stride | None = None
    end: int = -1  # sample index of the stride's end contact
    heading: float = float("nan")  # heading change (rad) from the start contact to ``end``
    lead_in: float = float("nan")  # heading change (rad) from the previous candidate's ``end`` to this start


@dataclass(repr=False, eq=False)
class StrideDetector(Block[AngleSeries, list[Stride]]):
    """Streaming stride detector for one leg (see module doc for the event definition).

    ``update(chunk)`` returns the strides that became final with that chunk; ``finish()`` flushes the rest.
    ``strides`` and ``bouts`` hold everything final so far. Chunks are consecutive slices of one
    uniform-rate :class:`AngleSeries`; results do not depend on the chunking.
    """

    side: str
    min_stride_s: float = 0.7
    max_stride_s: float = 2.0
    min_range_rad: float = 15 * _DEG
    max_peak_flexion_rad: float = 75 * _DEG
    max_trough_rad: float = 15 * _DEG
    peak_window_s: float = 0.3
    smooth_s: float = 0.03
    value_kernel: str = "quadratic"
    peak_sigma_s: float = 0.03
    peak_fill_s: float = 0.05
    ic_phase: float = DEFAULT_IC_PHASE
    use_acceleration: bool = True
    ic_smooth_s: float = 0.015
    ic_search: tuple[float, float] = (-0.05, 0.35)
    ic_mismatch: float = 0.15
    ic_refine_s: tuple[float, float] = (0.06, 0.12)
    ic_onset_share: float = 0.25
    ic_rule: str = "onset"  # or "shoulder", "smooth" (see the module docstring)
    ic_shoulder_s: float = 0.1
    ic_slow_s: float = 0.05
    min_smooth_rise_m_s3: float = 5.0
    ic_sharpness: float = 2.0
    use_thigh_impact: bool = True
    ic_impact_smooth_s: float = 0.0
    ic_impact_window_s: tuple[float, float] = (0.2, 0.0)
    min_impact_m_s2: float = 2.0
    ic_impact_highpass_s: float = 0.03
    ic_impact_rise_s: float = 0.04
    min_impact_rise_m_s2: float = 3.0
    ic_impact_share: float = 0.5
    ic_impact_edge: float = 0.5  # share of the impact's rise that times the contact (>= 1: its peak)
    ic_impact_after_s: float = 0.05
    min_acc_range_m_s2: float = 0.5
    consistency_ratio: float = 1.5
    max_peak_change_rad: float = 8 * _DEG
    range_ratio: float = 2.0
    phase_memory: int = 9
    ic_rise_s: float = 0.1
    sacral_lag: bool = True
    turn_threshold_rad: float = 20 * _DEG
    short_bouts: bool = True
    strides_: list[Stride] = field(default_factory=list, init=False)
    bouts_: list[WalkingBout] = field(default_factory=list, init=False)

    @property
    def strides(self) -> list[Stride]:
        """Alias of ``strides_`` (every final stride)."""
        return self.strides_

    @property
    def bouts(self) -> list[WalkingBout]:
        """Alias of ``bouts_`` (every final walking bout)."""
        return self.bouts_

    def __post_init__(self) -> None:
        if self.side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', not {self.side!r}")
        if self.ic_rule not in ("onset", "shoulder", "smooth"):
            raise ValueError(f"ic_rule must be 'onset', 'shoulder' or 'smooth', not {self.ic_rule!r}")
        if self.value_kernel not in ("quadratic", "triangle"):
            raise ValueError(f"value_kernel must be 'quadratic' or 'triangle', not {self.value_kernel!r}")
        self._thigh = f"thigh_inclination_{self.side}"
        self._hip = f"hip_flexion_{self.side}"
        other = "right" if self.side == "left" else "left"
        self._other_thigh = f"thigh_inclination_{other}"
        self._impact = f"thigh_acc_{self.side}"
        self._stream = WindowedStream(
            (
                self._thigh,
                self._hip,
                "pelvic_tilt",
                "lumbar_flexion",
                self._other_thigh,
                "pelvis_acc_vertical",
                self._impact,
                "pelvis_yaw_rate",
            ),
            self._configure,
            self._process,
            self._keep_from,
        )
        self._last_peak: _Peak | None = None
        self._pending: list[_Candidate] = []
        self._prev: _Candidate | None = None
        self._prev_accepted = False
        self._new: list[Stride] = []
        self._bout_strides: list[Stride] = []
        self._phases: list[float] = []
        self._lags: list[float] = []
        self._rhythm: tuple[int, float, float] | None = None

    # -- public API ----------------------------------------------------------------------------
    def update(self, chunk: AngleSeries) -> list[Stride]:
        self._new = []
        self._stream.feed(chunk)
        return self._new

    def finish(self) -> list[Stride]:
        self._new = []
        self._stream.finish()
        while self._pending:
            self._decide(self._pending.pop(0), None)
        self._close_bout()
        return self._new

    # -- streaming internals ---------------------------------------------------------------------
    def _configure(self, fs: float) -> tuple[int, int]:
        self._fs = fs
        self._h = max(1, round(self.smooth_s * fs))
        self._w = max(1, round(self.peak_window_s * fs))
        self._kernel = triangular_kernel(self._h)
        # the stride's reported values: a local quadratic fit of the same width (see value_kernel)
        self._vkernel = _quadratic_kernel(self._h) if self.value_kernel == "quadratic" else self._kernel
        # the swing's peaks: a Gaussian low-pass (0: the values' triangular smoothing)
        self._pkernel = _gauss_kernel(self.peak_sigma_s * fs) if self.peak_sigma_s > 0 else self._kernel
        self._hp = len(self._pkernel) // 2
        self._fill = max(0, round(self.peak_fill_s * fs))  # longest missing run bridged for the peaks
        self._max_n = math.ceil(self.max_stride_s * fs)
        self._dkernel = _derivative_kernel(self.ic_smooth_s * fs, fs)
        self._dkernel_slow = _derivative_kernel(self.ic_slow_s * fs, fs)
        self._dkernel_rise = _derivative_kernel(self.ic_rise_s * fs, fs)
        self._gf = len(self._dkernel) // 2
        self._hi = round(self.ic_impact_smooth_s * fs)  # half width of the impact smoothing (0: none)
        self._ikernel = triangular_kernel(self._hi)
        # the slow part of the thigh's acceleration that an impact must stand out of (0: none)
        hp = self.ic_impact_highpass_s
        self._hkernel = _gauss_kernel(hp * fs) if hp > 0 else None
        self._hh = 0 if self._hkernel is None else len(self._hkernel) // 2
        # the larger half width of the contact features
        rise = len(self._dkernel_rise) // 2 if self.sacral_lag else 0
        self._g = max(self._gf, len(self._dkernel_slow) // 2, self._hi + self._hh, rise)
        # a stride starts at its contact, up to ceil(-ic_search[0] * max_n) samples before the peak, and a
        # thigh impact up to ic_impact_window_s[0] before that; its features reach back from there by the
        # acceleration's (g) or the smoothing's (h) half width
        impact_back = round(max(0.0, self.ic_impact_window_s[0]) * fs) + 1 if self.use_thigh_impact else 0
        self._ic_back = (
            math.ceil(max(0.0, -self.ic_search[0]) * self._max_n) + impact_back + max(self._g, self._h) + 3
        )
        lookback = max(self._w + self._hp + self._fill + 2, self._ic_back)
        ahead = max(self.ic_phase, self.ic_search[1])
        lookahead = max(self._w + self._hp + self._fill + 2,
                        math.ceil(ahead * self._max_n) + self._g + self._h + 5)
        return lookback, lookahead

    def _keep_from(self) -> int | None:
        idx = [self._last_peak.idx] if self._last_peak else []
        idx += [c.p0.idx for c in self._pending]
        if not idx:
            return None
        return min(idx) - max(self._h + 3, self._ic_back)

    def _process(self, win: Window, start: int, stop: int) -> None:
        w, h, k = self._w, self._hp, self._fill
        m = w + h + 2
        x = self._event_signal(win, start, stop, m + k)
        raw = x[k : len(x) - k]
        if k:  # short missing runs bridged (for the peaks only), decided on k more samples each side
            x = _bridge(x, k)[k : len(x) - k]
        else:
            x = raw
        s = smooth(x, self._pkernel)  # s[j] is centred on x[j + h]: covers [start - w - 2, stop + w + 2)
        mx = window_max(s, w)  # centred on s[j + w]: covers [start - 2, stop + 2)
        centre = s[w : w + len(mx)]
        left, right = s[w - 1 : w - 1 + len(mx)], s[w + 1 : w + 1 + len(mx)]
        is_peak = (centre == mx) & (centre > left)
        is_peak[:2] = False
        is_peak[len(mx) - 2 :] = False
        t = win.get("t", start - 2, stop + 2)
        found = np.flatnonzero(is_peak)
        if len(found):
            # the peak's value from the values' light smoothing (as the trough it is compared with)
            d = h - self._h
            values = smooth(raw[d + w : len(raw) - d - w], self._kernel)  # values[j] at centre[j]'s sample
        for j in found:
            y0, y1, y2 = left[j], centre[j], right[j]
            den = y0 - 2 * y1 + y2
            off = 0.5 * (y0 - y2) / den if den < 0 else 0.0
            off = min(max(off, -0.5), 0.5)
            peak = _Peak(idx=start - 2 + int(j), t=float(t[j] + off / self._fs), value=float(values[j]))
            self._on_peak(win, peak)
        # a stride whose end peak is older than the longest stride can no longer get a successor
        while self._pending and (len(self._pending) >= 2 or stop - self._pending[0].p1.idx > self._max_n + 1):
            c = self._pending.pop(0)
            self._decide(c, self._pending[0] if self._pending else None)
        # the last peak can no longer start a valid stride: forget it (bounds the buffer) and end the bout
        if self._last_peak is not None and not self._pending and stop - self._last_peak.idx > self._max_n + 1:
            self._last_peak = None
            self._close_bout()

    def _event_signal(self, win: Window, start: int, stop: int, margin: int) -> np.ndarray:
        """Hip flexion over [start - margin, stop + margin), thigh inclination where the hip is missing."""
        hip = feature_slice(win, self._hip, start, stop, margin)
        thigh = feature_slice(win, self._thigh, start, stop, margin)
        return np.where(np.isnan(hip), thigh, hip)

    def _on_peak(self, win: Window, peak: _Peak) -> None:
        if self._last_peak is not None:
            self._pending.append(self._candidate(win, self._last_peak, peak))
            while len(self._pending) >= 2:
                c = self._pending.pop(0)
                self._decide(c, self._pending[0])
        self._last_peak = peak

    def _contact(
        self, win: Window, peak: _Peak, dur: float, learn: bool = False
    ) -> tuple[int, float, str, float | None]:
        """Initial contact after a flexion peak: ``(sample index, time, source, rise)`` (see the module
        docstring).

        Searched within ``ic_search`` of a cycle around the peak. ``acceleration``: from the sacrum's vertical
        acceleration by ``ic_rule``, or, without a thigh impact, from its steady rise and this walker's lag
        (``sacral_lag``); ``thigh_impact``: the impact in this thigh's acceleration near the
        contact the sacrum (or, without it, the thighs' split) gave; ``thigh_split``: the largest split
        between this thigh and the other (step length is largest around heel strike); ``missing``:
        acceleration but one thigh, and no contact in it; ``hip_phase``: neither, the phase rule.
        ``rise``: with ``learn`` and a thigh impact, the time of the sacrum's steady rise (:meth:`_rise`) for
        learning the lag, else None.
        """
        fs = self._fs
        phase = self._phase()
        d = round(phase * dur * fs)
        fallback = (peak.idx + d, peak.t + phase * dur, "hip_phase", None)
        lo = peak.idx + math.floor(self.ic_search[0] * dur * fs)
        hi = peak.idx + math.ceil(self.ic_search[1] * dur * fs)
        split = feature_slice(win, self._thigh, lo, hi + 1, 0)
        split = split - feature_slice(win, self._other_thigh, lo, hi + 1, 0)
        centre = -1
        if np.isfinite(split).all():
            centre = int(np.argmax(split))
        acc = feature_slice(win, "pelvis_acc_vertical", lo, hi + 1, self._g + 1)[1:-1]
        with np.errstate(invalid="ignore"):
            swing = float(np.nanmax(acc) - np.nanmin(acc)) if np.isfinite(acc).any() else 0.0
        use_acc = self.use_acceleration and swing >= self.min_acc_range_m_s2
        # (j, fraction of a sample, whether the onset was a falling flank)
        found = self._sacral_contact(acc, centre) if use_acc else None
        lag = use_acc and self.sacral_lag
        coarse = found[0] if found is not None else centre
        if self.use_thigh_impact and coarse >= 0:
            impact = self._thigh_impact(win, lo, hi, coarse)
            if impact is None and found is not None and found[2] and self.ic_impact_after_s > 0:
                # none up to a falling onset, which may be the flank of a dip before the contact: the impact
                # may follow it (see the module docstring)
                impact = self._thigh_impact(win, lo, hi, coarse, (0.0, self.ic_impact_after_s))
            if impact is not None:  # (the sacrum's steady rise only where the caller learns from it)
                return (*impact, self._rise(win, acc, lo) if lag and learn else None)
        if lag and len(self._lags) >= 3 and (rise := self._rise(win, acc, lo)) is not None:
            # no impact in this thigh: the sacrum's steady rise, timed by this walker's own lag (see the
            # module docstring)
            t_c = rise + _median(self._lags)
            j = round((t_c - float(win.get("t", lo, lo + 1)[0])) * fs)
            if 0 <= j <= hi - lo:
                return lo + j, t_c, "acceleration", None
        if found is not None:
            j, off, _ = found
            return lo + j, float(win.get("t", lo + j, lo + j + 1)[0]) + off / fs, "acceleration", None
        if centre >= 0:
            return lo + centre, float(win.get("t", lo + centre, lo + centre + 1)[0]), "thigh_split", None
        if use_acc:
            return fallback[0], float(fallback[1]), "missing", None
        return fallback

    def _rise(self, win: Window, acc: np.ndarray, lo: int) -> float | None:
        """The sacrum's steady rise: the time (s) where its vertical acceleration ``acc`` (samples as in
        :meth:`_sacral_contact`), low-passed by a Gaussian of ``ic_rise_s`` (0.1 s: the heel strike's shake
        and the sensor's ringing gone, the body's loading kept), rises fastest inside the search window;
        None where it rises at an edge (another step) or by less than ``min_smooth_rise_m_s3``.

        The trailing leg's push-off and the leading leg's loading shape that rise, so where it lies relative
        to the contact differs between people (the steepest rise over 0.05 s comes about 50 ms before the
        heel strike on the real qmt walk, about 20 ms after the contact on the Movella DOT walk,
        ``bench/realism.py``) but little from one step of a walker to the next; its lag is learnt per walker
        (``sacral_lag``, see the module docstring)."""
        trim = self._g - len(self._dkernel_rise) // 2
        r = smooth(acc[trim : len(acc) - trim], self._dkernel_rise)
        if len(r) < 3 or not np.isfinite(r).all():
            return None
        j = 1 + int(np.argmax(r[1:-1]))
        y0, y1, y2 = r[j - 1], r[j], r[j + 1]
        if not (y1 > y0 and y1 >= y2 and y1 >= self.min_smooth_rise_m_s3):
            return None
        return float(win.get("t", lo + j, lo + j + 1)[0]) + _vertex(y0, y1, y2) / self._fs

    def _sacral_contact(self, acc: np.ndarray, centre: int) -> tuple[int, float, bool] | None:
        """The contact in the sacrum's vertical acceleration ``acc`` (samples ``[lo - g, hi + 1 + g)`` of the
        search window, ``g`` the larger kernel half width) by ``ic_rule``: ``(j, fraction, falling)`` =
        sample ``lo + j`` plus a fraction of a sample (sub-sample parabola), and whether the onset rule took a
        falling flank (False for the other rules); or None.

        ``smooth``: the steepest rise of the acceleration low-passed by a Gaussian of
        ``ic_slow_s`` (its derivative's largest positive maximum inside the window), the principle of the
        validated lower-back detectors (McCamley et al. 2012; Paraschiv-Ionescu et al. 2020, whose
        Mobilise-D implementation takes the steepest rise of the band-passed, integrated and
        wavelet-differentiated signal): on real walks the trailing leg's push-off, the contact and the
        leading leg's loading make one rise whose steepest point is at the contact. That steepest rise must
        reach ``min_smooth_rise_m_s3`` (m/s^3, default 5): a heel strike loads the body weight within about
        0.1 s; on the real Movella DOT walks every contact's rise, so smoothed, is 18 m/s^3 or more (median
        about 30), while standing it stays under about 1 m/s^3; a smaller rise is not taken for a contact
        (before, any rise above 0 was). ``onset`` and ``shoulder``: the sharp-transient rules of the module
        docstring, within ``ic_refine_s`` of the thighs' split maximum ``centre`` (when both thighs are
        worn, else ``-1``).
        """
        trim = self._g - self._gf
        trim_slow = self._g - len(self._dkernel_slow) // 2  # (0 unless the thighs' impact reaches further)
        slow = smooth(acc[trim_slow : len(acc) - trim_slow], self._dkernel_slow)  # slow[j] at sample lo + j
        if self.ic_rule == "smooth":
            if len(slow) < 3 or not np.isfinite(slow).all():
                return None
            j = 1 + int(np.argmax(slow[1:-1]))
            y0, y1, y2 = slow[j - 1], slow[j], slow[j + 1]
            if not (y1 >= self.min_smooth_rise_m_s3 and y1 > y0 and y1 >= y2):
                # no rise inside the window (it rises at an edge: another step's contact), or too slow a
                # rise to be a contact (sensor noise, sway)
                return None
            return j, _vertex(y0, y1, y2), False
        rise = smooth(acc[trim : len(acc) - trim], self._dkernel)  # rise[j] at sample lo + j
        r_lo, r_hi = 1, len(rise) - 1
        if centre >= 0:
            fs = self._fs
            before, after = round(self.ic_refine_s[0] * fs), round(self.ic_refine_s[1] * fs)
            r_lo, r_hi = max(1, centre - before), min(len(rise) - 1, centre + after + 1)
        found: list[tuple[int, float]] = []
        steep = np.abs(rise)  # an impact's wavelet may start rising or falling
        for j in range(r_lo, r_hi):
            r = steep[j]
            # an impact is a transient: much steeper over the short smoothing than over the long one
            sharp = r >= self.ic_sharpness * abs(slow[j])
            if r > 0 and r > steep[j - 1] and r >= steep[j + 1] and sharp:
                found.append((j, float(r)))
        if not found:
            return None
        if self.ic_rule == "shoulder":
            shoulder = self._shoulder(rise, found, r_lo, self._fs)
            if shoulder is not None:
                m, frac = shoulder
                return m - 1, frac, False
        top = max(r for _, r in found)
        # the contact is where the disturbance begins: the first transient of a size comparable to the
        # largest (the sensor's soft tissue rings after the impact, sometimes more than the impact)
        best_j = next(j for j, r in found if r >= self.ic_onset_share * top)
        return best_j, _vertex(steep[best_j - 1], steep[best_j], steep[best_j + 1]), bool(rise[best_j] < 0)

    def _thigh_impact(
        self, win: Window, lo: int, hi: int, near: int, window: tuple[float, float] | None = None
    ) -> tuple[int, float, str] | None:
        """The heel-strike impact of this leg in its thigh sensor's acceleration near the contact found so
        far (sample ``lo + near``); ``(sample index, time, "thigh_impact")`` or None.

        ``s``: the acceleration magnitude (m/s^2, gravity removed), smoothed over +- ``ic_impact_smooth_s``
        when that is at least half a sample (by default it is not smoothed); its transient part
        ``s - slow``, ``slow`` = ``s`` low-passed by a Gaussian of standard deviation
        ``ic_impact_highpass_s`` (0.03 s: half power at ~4.4 Hz; 0 = no low-pass, ``s`` itself).
        Candidates are the local maxima of the transient from ``ic_impact_window_s[0]`` before to
        ``ic_impact_window_s[1]`` after the contact so far that reach ``min_impact_m_s2`` and stand at least
        ``min_impact_rise_m_s2`` above the lowest transient over the ``ic_impact_rise_s`` before them (within
        the search window); the impact is the first candidate at least ``ic_impact_share`` times as high as
        the highest one. The contact is its leading edge: walking back from that peak, the first crossing
        (linear between samples) of ``base + ic_impact_edge * (s[peak] - base)``, ``base`` the lowest ``s``
        over the ``ic_impact_rise_s`` before the peak; with ``ic_impact_edge`` >= 1, the peak itself
        (refined by a parabola through the transient).

        Why no smoothing: the shock rings at 10-20 Hz (below), at the grid's 100 Hz one to three samples a
        half period, and the magnitude rectifies the ringing; a three-tap smoothing fills the dips between
        its lobes, so that at 60 Hz (interpolated to the grid) the impact became one broad plateau that the
        low-pass removed, while a later, narrower lobe stood out.

        Why the rise: an impact rises out of a quiet thigh within 10-25 ms (the heel-strike transient of the
        ground reaction force, Whittle 1999, *Gait Posture* 10:264): on the real Movella DOT walks its
        transient climbs 6-14 m/s^2 from the dip before it within 40 ms, while the swing hump's (below) stays
        under ~1.5 m/s^2 and climbs slowly; the rise lets a weak impact (transient 2-3 m/s^2) count without
        taking the hump of a walker whose swing braking is sharper.

        Why the first of comparable size: after the impact the soft tissue rings (10-20 Hz, decaying within
        ~0.1 s, Wakeling & Nigg 2001, *J Appl Physiol* 90:412), the magnitude showing each lobe, and on the
        real walks a second burst follows at foot flat, 70-90 ms after the contact, often larger than the
        impact (``bench/README.md``); where the sacral contact comes late, such a lobe falls inside the
        window.

        Why the transient: a heel-strike shock has its power at 10-20 Hz and above (Lafortune 1991,
        *J Biomech* 24:877; Shorten & Winslow 1992, *Int J Sport Biomech* 8:288), the thigh's own motion
        lies below ~6 Hz (Winter 2009, *Biomechanics and Motor Control of Human Movement*, 4th ed., ch. 2).
        In terminal swing the hamstrings brake the thigh's forward swing (Perry & Burnfield 2010, *Gait
        Analysis*, 2nd ed., ch. 4): the thigh sensor feels a smooth posterior acceleration of 5-10 m/s^2
        some 50-150 ms before the contact, on the real Movella DOT walks and on the virtual walkers alike,
        as large as a soft impact; its transient part stays under ~1.5 m/s^2, the impact's is 3-10 m/s^2
        on the real walks (``bench/README.md``). The largest value of ``s`` itself took that hump for the
        impact whenever the impact fell after the window (walkers whose sacral contact comes first).
        A relative test (the transient against the window's median) is not used: on real walks the
        loading response shakes the thigh through the whole search window."""
        h, hh, fs = self._hi, self._hh, self._fs
        m = h + hh
        window = self.ic_impact_window_s if window is None else window
        # the window may reach before the search window (the flexion peak can come after the contact, below)
        back = round(window[0] * fs)
        shift = max(0, back + 1 - near)
        lo, near = lo - shift, near + shift
        x = feature_slice(win, self._impact, lo, hi + 1, m + 1)[1:-1]  # samples [lo - m, hi + 1 + m)
        if not np.isfinite(x).any():
            return None
        s_ext = smooth(x, self._ikernel) if h > 0 else x  # samples [lo - hh, hi + 1 + hh)
        s = s_ext[hh : len(s_ext) - hh]  # s[j] at sample lo + j
        tr = s - smooth(s_ext, self._hkernel) if self._hkernel is not None else s
        a = max(1, near - back)
        b = min(len(s) - 1, near + round(window[1] * fs) + 1)
        seg = tr[a:b]
        if len(seg) == 0 or not np.isfinite(seg).all():
            return None
        # local maxima of the transient inside the window (their neighbours may lie outside it)
        mid, before, after = tr[a:b], tr[a - 1 : b - 1], tr[a + 1 : b + 1]
        with np.errstate(invalid="ignore"):
            peaks = np.flatnonzero((mid > before) & (mid >= after) & (mid >= self.min_impact_m_s2))
        nr = round(self.ic_impact_rise_s * fs)
        if len(peaks) and nr > 0:
            # rise of each peak above the lowest transient over the preceding ic_impact_rise_s (from the
            # start of the search window at the earliest)
            start = max(0, a - nr)
            ext = np.concatenate([np.full(nr - (a - start), np.inf), tr[start:b]])
            low = sliding_window_view(ext, nr + 1)[peaks].min(axis=1)  # low[k]: tr[a + p - nr ... a + p]
            with np.errstate(invalid="ignore"):
                peaks = peaks[mid[peaks] - low >= self.min_impact_rise_m_s2]
        if len(peaks) == 0:
            return None
        heights = mid[peaks]
        # the first of comparable size: the soft tissue rings after the impact, and the foot-flat burst
        # follows it, sometimes larger than the impact itself
        j = a + int(peaks[np.flatnonzero(heights >= self.ic_impact_share * heights.max())[0]])
        if self.ic_impact_edge >= 1.0 or nr <= 0:  # the impact's peak itself
            y0, y1, y2 = tr[j - 1], tr[j], tr[j + 1]
            t = float(win.get("t", lo + j, lo + j + 1)[0]) + _vertex(y0, y1, y2) / fs
            return lo + j, t, "thigh_impact"
        # its leading edge: walking back from the peak, where the magnitude falls to ic_impact_edge of its
        # rise above the lowest magnitude of the ic_impact_rise_s before the peak (linear interpolation)
        k0 = max(0, j - nr)
        base = float(np.min(s[k0 : j + 1]))
        level = base + self.ic_impact_edge * (float(s[j]) - base)
        k = j
        while k > k0 and s[k - 1] > level:
            k -= 1
        t = float(win.get("t", lo + k, lo + k + 1)[0])
        if k > 0 and s[k] > level >= s[k - 1]:
            t -= float((s[k] - level) / (s[k] - s[k - 1])) / fs
        return lo + k, t, "thigh_impact"

    def _phase(self) -> float:
        """Share of the cycle from peak flexion to IC for the phase rule: the median over the last
        ``phase_memory`` contacts found from the sensors' evidence that fitted the rhythm, once there are
        at least 3 of them; ``ic_phase`` before."""
        return _median(self._phases) if len(self._phases) >= 3 else self.ic_phase

    def _shoulder(
        self, rise: np.ndarray, found: list[tuple[int, float]], r_lo: int, fs: float
    ) -> tuple[int, float] | None:
        """``ic_rule = "shoulder"``: the last local maximum of the smoothed acceleration (``rise`` turning
        from positive to not positive between samples ``m - 1`` and ``m``) within ``ic_shoulder_s`` before the
        steepest rising flank among ``found``; ``(m, fraction of a sample after m - 1)`` or None."""
        rising = [(j, r) for j, r in found if rise[j] > 0]
        if not rising:
            return None
        js = max(rising, key=lambda x: x[1])[0]
        for m in range(js - 1, max(r_lo, js - round(self.ic_shoulder_s * fs)) - 1, -1):
            if rise[m - 1] > 0 >= rise[m]:
                return m, float(rise[m - 1] / (rise[m - 1] - rise[m]))
        return None

    def _candidate(self, win: Window, p0: _Peak, p1: _Peak) -> _Candidate:
        n = p1.idx - p0.idx
        dur = p1.t - p0.t
        if n > self._max_n + 1 or not (self.min_stride_s <= dur <= self.max_stride_s):
            return _Candidate(p0, p1, False, float("nan"))
        h = self._h
        a, t_a, src0, _ = self._contact(win, p0, dur)
        b, t_b, src1, rise1 = self._contact(win, p1, dur, learn=True)
        doubtful = "missing" in (src0, src1)
        sensed = {src0, src1} <= {"thigh_impact", "acceleration", "thigh_split"}
        swing_rhythm = b - a >= 2 and abs((t_b - t_a) - dur) <= self.ic_mismatch * dur
        prev = self._rhythm  # (peak index, contact time, contact-to-contact time) of the stride before
        contact_rhythm = (
            sensed
            and b - a >= 2
            and prev is not None
            and prev[0] == p0.idx
            and prev[1] == t_a
            and abs((t_b - t_a) - prev[2]) <= self.ic_mismatch * prev[2]
        )
        self._rhythm = None
        if not (swing_rhythm or contact_rhythm):
            doubtful = True  # the contacts keep neither the swing's nor their own rhythm: the phase rule
            phase = self._phase()
            d = round(phase * dur * self._fs)
            a, b = p0.idx + d, p1.idx + d
            t_a, t_b = p0.t + phase * dur, p1.t + phase * dur
        elif sensed and not doubtful:
            self._rhythm = (p1.idx, t_b, t_b - t_a)
            if swing_rhythm:
                # this walker's own phase from peak flexion to contact, from contacts in the swing's rhythm
                self._phases.append((t_b - p1.t) / dur)
                if len(self._phases) > self.phase_memory:
                    del self._phases[: len(self._phases) - self.phase_memory]
                if src1 == "thigh_impact" and rise1 is not None:
                    # this walker's lag of the contact behind the sacrum's steady rise (see _rise)
                    self._lags.append(t_b - rise1)
                    if len(self._lags) > self.phase_memory:
                        del self._lags[: len(self._lags) - self.phase_memory]
        confidence = min(_IC_CONFIDENCE[src0], _IC_CONFIDENCE[src1])
        source = "hip_phase" if doubtful else (src0 if _IC_CONFIDENCE[src0] <= _IC_CONFIDENCE[src1] else src1)
        # stride samples [a, b)
        # (a sample missing just outside the stride, e.g. flagged at the next contact, is not part of it: the
        # smoothing's margins hold the stride's end values there)
        sig = smooth(_margins(self._event_signal(win, a, b, h), h), self._kernel)
        thigh = smooth(_margins(feature_slice(win, self._thigh, a, b, h), h), self._vkernel)
        if not np.all(np.isfinite(sig)):
            return _Candidate(p0, p1, False, float("nan"))
        trough = float(sig.min())
        rng = min(p0.value, p1.value) - trough
        ok = (
            rng >= self.min_range_rad
            and (abs(p1.value - p0.value) <= self.max_peak_change_rad or source != "hip_phase")
            and max(p0.value, p1.value) <= self.max_peak_flexion_rad
            and trough <= self.max_trough_rad
        )
        if not ok:
            return _Candidate(p0, p1, False, rng)
        tt = win.get("t", a, b)
        hip = smooth(_margins(feature_slice(win, self._hip, a, b, h), h), self._vkernel)
        tilt = smooth(_margins(feature_slice(win, "pelvic_tilt", a, b, h), h), self._vkernel)
        lumbar = smooth(_margins(feature_slice(win, "lumbar_flexion", a, b, h), h), self._vkernel)
        nan = float("nan")
        if np.all(np.isfinite(hip)):
            k = int(np.argmin(hip))
            peak_ext, t_pe, hip_range = -float(hip[k]), float(tt[k]), float(hip.max() - hip[k])
            tilt_at = float(tilt[k])
        else:
            peak_ext = t_pe = hip_range = tilt_at = nan
        tilt_exc = float(tilt.max() - tilt.min()) if np.all(np.isfinite(tilt)) else nan
        lumbar_exc = float(lumbar.max() - lumbar.min()) if np.all(np.isfinite(lumbar)) else nan
        pe = int(np.argmin(thigh)) if np.all(np.isfinite(thigh)) else int(np.argmin(sig))
        ts = pe // 2  # midpoint between IC and peak thigh extension: start of terminal stance
        d_thigh = float(thigh[ts] - thigh[pe])
        d_tilt = float(tilt[pe] - tilt[ts])
        comp = d_tilt / d_thigh if d_thigh > 2 * _DEG and math.isfinite(d_tilt) else nan
        if doubtful:  # never report a peak from a stride whose events are doubtful
            peak_ext = t_pe = tilt_at = nan
        stride = Stride(
            side=self.side,
            t_start=t_a,
            t_end=t_b,  # replaced by the next stride's start when there is one
            stride_time_s=t_b - t_a,
            cadence_spm=120.0 / (t_b - t_a),
            peak_hip_extension_rad=peak_ext,
            t_peak_extension=t_pe,
            hip_range_rad=hip_range,
            peak_thigh_flexion_rad=float(np.max(thigh)),
            peak_thigh_extension_rad=-float(thigh[pe]),
            pelvic_tilt_at_peak_extension_rad=tilt_at,
            pelvic_tilt_excursion_rad=tilt_exc,
            lumbar_compensation_index=nan if doubtful else comp,
            lumbar_excursion_rad=lumbar_exc,
            ic_source=source,
            doubtful=doubtful,
            confidence=_IC_CONFIDENCE["doubtful"] if doubtful else confidence,
        )
        heading = self._heading(win, a, b)
        self._set_heading(stride, heading)
        # the heading from the previous candidate's end contact to this start: its stride ends here (_decide)
        lead_in = nan
        prev_c = self._pending[-1] if self._pending else None
        if prev_c is not None and prev_c.p1.idx == p0.idx and prev_c.stride is not None:
            lead_in = self._heading(win, prev_c.end, a)
        return _Candidate(p0, p1, True, rng, stride, b, heading, lead_in)

    def _heading(self, win: Window, a: int, b: int) -> float:
        """The pelvis' heading change (rad, counter-clockwise seen from above positive) from sample ``a`` to
        sample ``b`` (negative span: minus the change from ``b`` to ``a``): the yaw rate's rows ``(a, b]``
        (row k is the turn from sample k - 1 to k) times the sample period; NaN where a row is missing."""
        lo, hi, sign = (a, b, 1.0) if b >= a else (b, a, -1.0)
        return sign * float(np.sum(win.get("pelvis_yaw_rate", lo + 1, hi + 1))) / self._fs

    def _set_heading(self, stride: Stride, heading: float) -> None:
        stride.heading_change_rad = heading
        stride.turning = bool(abs(heading) > self.turn_threshold_rad)  # (NaN: not known to turn)

    def _similar(self, a: _Candidate | None, b: _Candidate | None) -> bool:
        return a is not None and b is not None and a.valid and b.valid and self._in_rhythm(a, b)

    def _in_rhythm(self, a: _Candidate | None, b: _Candidate | None) -> bool:
        """``a`` and ``b`` adjacent swings of the hip (each at least ``min_range_rad``, valid or not) whose
        durations and ranges agree within ``consistency_ratio`` and ``range_ratio``."""
        if a is None or b is None or a.p1.idx != b.p0.idx:
            return False
        if not (a.range_rad >= self.min_range_rad and b.range_rad >= self.min_range_rad):  # (NaN: no)
            return False
        ra = (a.p1.t - a.p0.t) / (b.p1.t - b.p0.t)
        rr = a.range_rad / b.range_rad
        c, r = self.consistency_ratio, self.range_ratio
        return 1 / c <= ra <= c and 1 / r <= rr <= r

    def _short_bout(self, c: _Candidate, nxt: _Candidate | None) -> bool:
        """A short walk's one steady stride: ``c`` (contacts from the sensors) between the swing that started
        the walk and the one that ended it, both in its rhythm though not strides themselves (their swing
        still growing or already shrinking)."""
        return (
            self.short_bouts
            and c.stride is not None
            and not c.stride.doubtful
            and self._in_rhythm(self._prev, c)
            and self._in_rhythm(c, nxt)
        )

    def _decide(self, c: _Candidate, nxt: _Candidate | None) -> None:
        accept = c.valid and (
            self._similar(self._prev, c) or self._similar(c, nxt) or self._short_bout(c, nxt)
        )
        if accept:
            assert c.stride is not None
            if nxt is not None and nxt.stride is not None and nxt.p0.idx == c.p1.idx:
                c.stride.t_end = nxt.stride.t_start
                c.stride.stride_time_s = c.stride.t_end - c.stride.t_start
                c.stride.cadence_spm = 120.0 / c.stride.stride_time_s
                self._set_heading(c.stride, c.heading + nxt.lead_in)
            if not (self._prev_accepted and self._prev is not None and self._prev.p1.idx == c.p0.idx):
                self._close_bout()
            c.stride.bout = len(self.bouts_)
            self._bout_strides.append(c.stride)
            self.strides_.append(c.stride)
            self._new.append(c.stride)
        else:
            self._close_bout()
        self._prev = c
        self._prev_accepted = accept

    def _close_bout(self) -> None:
        if not self._bout_strides:
            return
        s = self._bout_strides
        times = np.array([x.stride_time_s for x in s])
        self.bouts_.append(
            WalkingBout(self.side, s[0].t_start, s[-1].t_end, len(s), float(120.0 / np.median(times)))
        )
        self._bout_strides = []


def _margins(x: np.ndarray, h: int) -> np.ndarray:
    """``x`` (a stride's samples with ``h`` more on each side for the smoothing) with missing (NaN) samples in
    those margins replaced by the stride's first or last sample: a sample missing outside the stride does not
    void it (one missing inside still does)."""
    if h <= 0 or len(x) <= 2 * h or not (np.isnan(x[:h]).any() or np.isnan(x[-h:]).any()):
        return x
    out = x.copy()
    head, tail = out[:h], out[len(out) - h :]
    head[np.isnan(head)] = x[h]
    tail[np.isnan(tail)] = x[len(x) - h - 1]
    return out


def _bridge(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` with each run of at most ``n`` missing (NaN) samples that has a finite sample on both sides
    filled by linear interpolation between them; longer runs and runs at either end stay missing."""
    bad = np.isnan(x)
    if not bad.any():
        return x
    out = x.copy()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], bad.view(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):  # the run is x[a:b]
        if a > 0 and b < len(x) and b - a <= n:
            out[a:b] = x[a - 1] + (x[b] - x[a - 1]) * np.arange(1, b - a + 1) / (b - a + 1)
    return out


def _median(values: list[float]) -> float:
    """Median of a short list of finite floats, as ``numpy.median`` gives it (the middle value, or half the
    sum of the two middle values), without numpy's per-call cost."""
    s = sorted(values)
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else float((s[mid - 1] + s[mid]) / 2)


def _vertex(y0: float, y1: float, y2: float) -> float:
    """Offset (samples, within +-0.5) of the vertex of the parabola through three equally spaced values around
    a maximum ``y1``; 0 where they do not curve downwards."""
    den = y0 - 2 * y1 + y2
    return float(min(max(0.5 * (y0 - y2) / den, -0.5), 0.5)) if den < 0 else 0.0


def _quadratic_kernel(half_width: int) -> np.ndarray:
    """Savitzky-Golay smoothing kernel (local quadratic least-squares fit) of ``2 * half_width + 1`` taps:
    keeps a peak's value where a kernel of positive weights flattens it by about half the curvature times
    the kernel's variance."""
    if half_width <= 1:  # (a quadratic through three points is the points themselves)
        return np.eye(2 * half_width + 1)[half_width]
    from scipy.signal import savgol_coeffs  # (imported when a detector is configured: about a second)

    return np.asarray(savgol_coeffs(2 * half_width + 1, 2), dtype=np.float64)


def _gauss_kernel(sigma: float) -> np.ndarray:
    """Normalised Gaussian smoothing kernel of standard deviation ``sigma`` samples (+- 3 sigma)."""
    sigma = max(float(sigma), 1e-9)
    g = max(1, math.ceil(3.0 * sigma))
    u = np.arange(-g, g + 1, dtype=np.float64)
    k = np.exp(-0.5 * (u / sigma) ** 2)
    return k / k.sum()


def _derivative_kernel(sigma: float, fs: float) -> np.ndarray:
    """Correlation kernel (+- 3 sigma samples) giving the derivative (per s) of a Gaussian-smoothed signal."""
    g = max(1, math.ceil(3.0 * sigma))
    u = np.arange(-g, g + 1, dtype=np.float64)
    gauss = np.exp(-0.5 * (u / sigma) ** 2)
    return (u / sigma**2) * gauss / gauss.sum() * fs


def detect_strides(angles: AngleSeries, side: str, **params: float) -> StrideDetector:
    """Batch helper: run a :class:`StrideDetector` over a whole series; returns the finished detector."""
    det = StrideDetector(side, **params)
    det.update(angles)
    det.finish()
    return det


def gait_summary(strides_left: list[Stride], strides_right: list[Stride]) -> dict[str, float | int]:
    """Summary over the strides of both legs (either list may be empty; rad, s, steps/min).

    ``peak_hip_extension_asymmetry_rad`` = median left - median right peak hip extension;
    ``asymmetry_index_pct`` = 100 * |L - R| / mean(L, R) (NaN when the mean extension is under 2 deg,
    where the ratio is meaningless); ``cadence_spm`` = median over all strides of both legs.
    """
    nan = float("nan")

    def med(values: list[float]) -> float:
        arr = np.array([v for v in values if math.isfinite(v)])
        return float(np.median(arr)) if len(arr) else nan

    out: dict[str, float | int] = {}
    for name, ss in (("left", strides_left), ("right", strides_right)):
        out[f"n_strides_{name}"] = len(ss)
        out[f"peak_hip_extension_{name}_rad"] = med([s.peak_hip_extension_rad for s in ss])
        out[f"stride_time_{name}_s"] = med([s.stride_time_s for s in ss])
        out[f"pelvic_tilt_excursion_{name}_rad"] = med([s.pelvic_tilt_excursion_rad for s in ss])
        out[f"lumbar_compensation_index_{name}"] = med([s.lumbar_compensation_index for s in ss])
    left, right = out["peak_hip_extension_left_rad"], out["peak_hip_extension_right_rad"]
    out["peak_hip_extension_asymmetry_rad"] = left - right
    mean = 0.5 * (left + right)
    out["asymmetry_index_pct"] = 100.0 * abs(left - right) / mean if mean > 2 * _DEG else nan
    out["cadence_spm"] = med([s.cadence_spm for s in strides_left + strides_right])
    return out

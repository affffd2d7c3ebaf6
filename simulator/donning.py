"""Sensors that lie still before they are worn: a session's recording preceded by every raw sensor lying
flat on a table (or in its case), turned onto the body and swaying there while it is strapped on, as in real
use when the recording starts before the sensors are put on. Quaternion streams (on-device fusion) are
shifted only.

Each raw sensor keeps its own accelerometer and gyroscope offsets (taken from its simulated stream against its
truth over the first second) and white noise of 0.03 m/s^2 and 0.005 rad/s; gravity as in
:mod:`hipback.simulator.sensor_model`.
"""

from __future__ import annotations

import math

import numpy as np

from hipback.processing import quaternion as qm
from hipback.processing.types import Recording, SensorStream
from hipback.simulator.sensor_model import GRAVITY


def on_table_first(
    session, table_s: float, move_s: float = 4.0, sway_s: float = 10.0, seed: int | list[int] | None = None
) -> tuple[Recording, float]:
    """``session``'s recording after ``table_s`` (s) flat on a table (sensor z up), a turn onto the body in
    ``move_s`` and ``sway_s`` of swaying there (10 deg at 0.4 Hz about the sensor's x, then y axis). Returns
    the recording and the time shift of the session (s). ``seed``: the noise's (default from ``table_s``)."""
    rng = np.random.default_rng([int(table_s * 10), 11] if seed is None else seed)
    q_table = np.array([1.0, 0.0, 0.0, 0.0])
    shift = table_s + move_s + sway_s
    streams = {}
    for p, s in session.recording.streams.items():
        if s.kind != "raw":
            streams[p] = SensorStream(p, s.kind, s.t + shift, s.rate_hz, quat=s.quat, acc=s.acc, gyr=s.gyr,
                                      mag=s.mag, device=s.device, meta=s.meta)
            continue
        truth = session.sensor_truth[p]
        m = max(2, int(round(s.rate_hz)))
        b_acc = (s.acc[:m] - truth.acc[:m]).mean(axis=0)
        b_gyr = (s.gyr[:m] - truth.gyr[:m]).mean(axis=0)
        dt = 1.0 / s.rate_hz
        n_still, n_move, n_sway = (int(round(x / dt)) for x in (table_s, move_s, sway_s))
        q_worn = truth.quat[0]
        rv = qm.to_rotvec(qm.multiply(qm.conjugate(q_table), q_worn))
        u = np.arange(1, n_move + 1) / n_move
        frac = 0.5 - 0.5 * np.cos(math.pi * u)
        rate = 0.5 * math.pi * np.sin(math.pi * u) / move_s
        ts = np.arange(1, n_sway + 1) * dt
        amp, f = math.radians(10.0), 0.4
        ang = amp * np.sin(2 * math.pi * f * ts)
        dang = amp * 2 * math.pi * f * np.cos(2 * math.pi * f * ts)
        axis = np.where((ts < sway_s / 2)[:, None], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        q = np.concatenate([
            np.repeat(q_table[None], n_still, axis=0),
            qm.multiply(q_table, qm.from_rotvec(frac[:, None] * rv)),
            qm.multiply(q_worn, qm.from_rotvec(ang[:, None] * axis)),
        ])
        w = np.concatenate([np.zeros((n_still, 3)), rate[:, None] * rv, dang[:, None] * axis])
        k = len(q)
        a = qm.rotate(qm.conjugate(q), np.array([0.0, 0.0, GRAVITY])) + b_acc + rng.normal(0.0, 0.03, (k, 3))
        g = w + b_gyr + rng.normal(0.0, 0.005, (k, 3))
        t = s.t[0] + shift - k * dt + np.arange(k) * dt
        streams[p] = SensorStream(p, "raw", np.concatenate([t, s.t + shift]), s.rate_hz,
                                  acc=np.concatenate([a, s.acc]), gyr=np.concatenate([g, s.gyr]),
                                  device=s.device, meta=s.meta)
    meta = dict(session.recording.meta)
    return Recording(streams=streams, start_utc=session.recording.start_utc, meta=meta), shift

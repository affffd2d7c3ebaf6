"""The open peers next to hipback: OpenSim OpenSense and the Mobilise-D lower-back pipeline (mobgap).

Optional benchmark, not part of the test suite. Needs the ``peers`` extra (``pip install -e '.[peers]'``:
``opensim`` and ``mobgap`` from PyPI) and, for the real recordings and the model, ``../shared/data``.

Run: ``.venv/bin/python bench/peers.py [--patients 10] [--seed 1] [--walk-s 60] [--easy]
[--only cohort|real|qmt|short] [--no-opensense] [--ic-rule onset|shoulder|smooth] [--ic-refine BEFORE AFTER]
[--orientation causal|lagged]``
(``--orientation``: the raw sensors' orientation filter of hipback's processing only, see
``bench/processing_bench.py``; the peers' inputs do not change. The default is ``hipback process``'s,
:data:`hipback.ingest.commands.process.DEFAULT_ORIENTATION`, the fixed-lag smoothed filter, since hipback here
stands for ``hipback process`` on files)

What runs, on the same data in the same run:

- **hipback**: ``hipback.processing.pipeline.process_recording`` (the code path of ``hipback process``, with
  its orientation filter for raw sensors unless ``--orientation`` says otherwise) on the recording.
- **OpenSense** (OpenSim 4.6, Al Borno et al. 2022): IMU Placer on a standing second (the middle of the
  session's calibration stance; for the real walks the N-pose trial), then IMU inverse kinematics with the
  Rajagopal 2015 OpenSense model (``../shared/data/opensim``), pelvis, femur_r, femur_l IMUs. Input
  orientations: the device's own quaternions where it streams them (Movella DOT, WitMotion profiles), else
  VQF 6D (``vqf.offlineVQF``, the filter hipback uses) on the raw acc/gyr; resampled to one common grid.
  6D orientations have one heading per sensor, and the IMU Placer assumes one world for all IMUs, so the
  sensors' headings are first aligned in the calibration pose from the nominal strapping (each sensor's
  anterior axis along world x; :func:`align_headings`); without this step OpenSense's hip angles are
  meaningless on these data (hip flexion anticorrelated with hipback's on the real walk), and without the
  walker facing x its IK diverged on some patients.
  Base IMU ``pelvis_imu`` with heading axis ``-z`` (the sacral sensor's z points out of the skin,
  posteriorly, in the nominal mounting and in the Movella walks). Sagittal angles are compared defined the
  same way on both sides: hip flexion = OpenSense's ``hip_flexion_r/l`` coordinate (rotation of the femur
  about the pelvis medio-lateral axis, first of the hip joint's Z-X-Y sequence, as hipback's); pelvic tilt
  = hipback's definition (``atan2(-g_x, g_y)``, g = world up in the pelvis frame) computed from the
  pelvis body orientation of the IK result, not OpenSense's ``pelvis_tilt`` coordinate, which is against
  the lab axes. OpenSense finds no strides: its per-stride peak extension is taken within the true strides
  (an advantage hipback does not get).
- **mobgap** (Mobilise-D, Micó-Amigo et al. 2023; ``MobilisedPipelineHealthy``: GSD Iluz, ICD Ionescu, LRC
  Ullrich) on the sacral sensor's acc/gyr resampled to 100 Hz, axes mapped by the nominal mounting (sensor x
  superior, z posterior: IS = x, ML = -y, PA = -z), gyro in deg/s. It finds initial contacts with a side
  label and no angles.

The qmt full-body recording (``--only qmt``, also part of ``--only real``; :func:`qmt_section`): hip, thighs
and lower back written as MT Manager exports and read as ``hipback process`` reads them; hipback's segment
axes against the data authors' hand-tuned ones; hipback's and mobgap's contacts against the heel strikes of
the recording's own foot IMUs (:func:`foot_contacts`).

Short walks (``--only short``; :func:`short_bouts_section`): realistic walkers walking in bouts of 5, 8 and
12 s, hipback's and mobgap's contacts against every true contact and the steady strides' ones.

Figures (see ``bench/processing_bench.py``, the real check): angle RMSE, amplitude gain and offset while
walking, IC error against the true heel strikes (median, p95, within 50 ms), stride precision/recall (IC
within 50 ms), per-stride peak hip extension error. On the real Movella DOT walks (no reference): where
hipback and the peers agree: IC times hipback vs mobgap (matched within 0.3 s: mean and std of the
difference, unmatched counts; per side, and both sides together since mobgap's side labels are unreliable
there), hip flexion and pelvic tilt hipback vs OpenSense (RMS difference, gain = slope of hipback against
OpenSense, mean offset).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.processing_bench as pb  # noqa: E402
from bench.processing_bench import (  # noqa: E402
    hipback_real_check,
    real_check,
    summarise_real_check,
)
from hipback.processing import quaternion as qm  # noqa: E402
from hipback.processing.pipeline import ProcessorConfig  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
MODEL = SHARED / "opensim" / "Rajagopal2015_opensense.osim"
IMU_LABEL = {"pelvis": "pelvis_imu", "thigh_right": "femur_r_imu", "thigh_left": "femur_l_imu"}
nan = math.nan


# -- OpenSense ---------------------------------------------------------------------------------------------
def orientations(recording, rate_hz: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sensor-to-world quaternions of pelvis and thighs on one uniform grid: device quaternions where
    streamed, VQF 6D on acc/gyr otherwise."""
    import vqf

    streams = {p: s for p, s in recording.streams.items() if p in IMU_LABEL}
    t0 = max(s.t[0] for s in streams.values())
    t1 = min(s.t[-1] for s in streams.values())
    grid = np.arange(t0, t1, 1.0 / rate_hz)
    out = {}
    for p, s in streams.items():
        if s.quat is not None:
            q = s.quat
        else:
            ts = float(np.median(np.diff(s.t)))
            q = vqf.offlineVQF(
                np.ascontiguousarray(s.gyr, dtype=float), np.ascontiguousarray(s.acc, dtype=float), None, ts
            )["quat6D"]
        out[p] = qm.canonical(qm.slerp(s.t, qm.normalize(q), grid))
    return grid, out


def anterior_axes(sensors=None) -> dict[str, np.ndarray]:
    """Sensor-frame axis that points anteriorly in the nominal strapping (known from the protocol, not the
    drawn misalignment): pelvis -z, lateral right thigh -y, lateral left thigh +y, anterior thigh +z; the
    real Movella walks use the nominal lateral/posterior strapping."""
    from hipback.simulator import SensorSpec

    specs = {s.placement: s for s in sensors} if sensors else {p: SensorSpec(p) for p in IMU_LABEL}
    return {
        p: qm.rotate(qm.conjugate(specs[p].nominal_mounting()), np.array([1.0, 0.0, 0.0]))
        for p in IMU_LABEL
        if p in specs
    }


def align_headings(
    quats: dict[str, np.ndarray], calib: dict[str, np.ndarray], axes: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Put every sensor in one world facing ground x: rotate each sensor's world about vertical so that its
    anterior axis points along world x in the calibration pose. OpenSense's IMU Placer assumes one world
    frame for all IMUs (true for magnetometer-referenced 9D orientations); 6D orientations (VQF 6D, the
    devices' own fusion) each have their own heading, which OpenSense cannot absorb. Facing x also leaves
    the placer's own heading correction ~0: with the walker facing 120 deg away from x in the calibration
    (the placer's correction alone), OpenSense's IK left the walking solution within seconds of standing on
    2 of 6 realistic patients (pelvis coordinates winding by hundreds of turns, then the hips at their
    coordinate limits)."""

    def heading(q: np.ndarray, axis: np.ndarray) -> float:
        a = qm.rotate(q, axis)
        return math.atan2(a[1], a[0])

    ref = 0.0  # everything facing ground x: the placer's own heading correction is then ~0
    out_q, out_c = {}, {}
    for p, q in quats.items():
        rz = qm.from_axis_angle(np.array([0.0, 0.0, 1.0]), ref - heading(calib[p], axes[p]))
        out_q[p] = qm.multiply(rz, q)
        out_c[p] = qm.multiply(rz, calib[p])
    return out_q, out_c


def _write_sto(path: Path, t: np.ndarray, quats: dict[str, np.ndarray], rate_hz: float) -> None:
    labels = [IMU_LABEL[p] for p in quats]
    lines = [
        f"DataRate={rate_hz:.6f}",
        "DataType=Quaternion",
        "version=3",
        "OpenSimVersion=4.6",
        "endheader",
        "time\t" + "\t".join(labels),
    ]
    qs = list(quats.values())
    for i, ti in enumerate(t):
        lines.append(f"{ti:.6f}\t" + "\t".join(",".join(f"{v:.8f}" for v in q[i]) for q in qs))
    path.write_text("\n".join(lines) + "\n")


def _read_mot(path: Path) -> dict[str, np.ndarray]:
    text = path.read_text().splitlines()
    k = next(i for i, line in enumerate(text) if line.strip().lower() == "endheader")
    header = text[k + 1].split("\t")
    data = np.array([[float(v) for v in line.split("\t")] for line in text[k + 2 :] if line.strip()])
    in_deg = any("indegrees=yes" in line.replace(" ", "").lower() for line in text[:k])
    out = {}
    for j, name in enumerate(header):
        col = data[:, j]
        out[name.strip()] = (
            np.radians(col)
            if in_deg and name.strip() != "time" and not name.endswith(("_tx", "_ty", "_tz"))
            else col
        )
    return out


def _pelvic_tilt_from_ik(model_path: Path, mot: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """hipback's pelvic tilt (rad) from the pelvis body orientation of an IK result (OpenSim ground: y up),
    and the pelvis' inclination from vertical (rad)."""
    import opensim as osim

    model = osim.Model(str(model_path))
    state = model.initSystem()
    coords = model.getCoordinateSet()
    names = ("pelvis_tilt", "pelvis_list", "pelvis_rotation")
    pelvis = model.getBodySet().get("pelvis")
    out = np.full(len(mot["time"]), nan)
    incl = np.full(len(mot["time"]), nan)
    for i in range(len(out)):
        for n in names:
            coords.get(n).setValue(state, float(mot[n][i]), False)
        model.realizePosition(state)
        r = pelvis.getTransformInGround(state).R()
        # world up (ground y) in the pelvis frame = second row of R (pelvis-to-ground)
        g = np.array([r.get(1, 0), r.get(1, 1), r.get(1, 2)])
        out[i] = math.atan2(-g[0], g[1])
        incl[i] = math.acos(max(-1.0, min(1.0, g[1])))
    return out, incl


def opensense(
    t: np.ndarray,
    quats: dict[str, np.ndarray],
    rate_hz: float,
    calib: tuple[float, float] | None,
    workdir: Path,
    calib_quats: dict[str, np.ndarray] | None = None,
    axes: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """OpenSense IMU Placer + IMU IK; returns ``t`` and sagittal angles (rad) defined as hipback's.

    The placer calibrates on the quaternion mean over ``calib`` (s) of ``quats``, or on ``calib_quats``
    (one quaternion per sensor, e.g. from another trial of the same session). With ``axes`` (anterior axis
    of each sensor, :func:`anterior_axes`), the sensors' headings are first aligned (:func:`align_headings`).
    """
    import opensim as osim

    osim.Logger.setLevelString("error")
    if calib_quats is None:
        m = (t >= calib[0]) & (t <= calib[1])
        calib_quats = {}
        for p, q in quats.items():
            qq = q[m] * np.sign(q[m] @ q[m][0])[:, None]
            calib_quats[p] = qm.normalize(qq.mean(axis=0))
    if axes is not None:
        quats, calib_quats = align_headings(quats, calib_quats, axes)
    calib_sto = workdir / "calibration.sto"
    _write_sto(
        calib_sto,
        np.array([0.0, 1.0 / rate_hz]),
        {p: np.vstack([q, q]) for p, q in calib_quats.items()},
        rate_hz,
    )
    trial_sto = workdir / "trial.sto"
    _write_sto(trial_sto, t, quats, rate_hz)
    rot = osim.Vec3(-math.pi / 2, 0.0, 0.0)  # hipback world z up -> OpenSim ground y up
    placer = osim.IMUPlacer()
    placer.set_model_file(str(MODEL))
    placer.set_orientation_file_for_calibration(str(calib_sto))
    placer.set_sensor_to_opensim_rotations(rot)
    placer.set_base_imu_label("pelvis_imu")
    placer.set_base_heading_axis("-z")
    placer.run(False)
    calibrated = workdir / "calibrated.osim"
    placer.getCalibratedModel().printToXML(str(calibrated))
    ik = osim.IMUInverseKinematicsTool()
    ik.set_model_file(str(calibrated))
    ik.set_orientations_file(str(trial_sto))
    ik.set_sensor_to_opensim_rotations(rot)
    ik.set_results_directory(str(workdir))
    ik.set_time_range(0, float(t[0]))
    ik.set_time_range(1, float(t[-1]))
    ik.run(False)
    mot = _read_mot(workdir / "ik_trial.mot")
    tilt, incl = _pelvic_tilt_from_ik(calibrated, mot)
    return {
        "t": mot["time"],
        "hip_flexion_left": mot["hip_flexion_l"],
        "hip_flexion_right": mot["hip_flexion_r"],
        "pelvic_tilt": tilt,
        "pelvis_inclination": incl,
    }


def upright_only(angles: dict[str, np.ndarray], max_incl_deg: float = 45.0) -> tuple[dict, float]:
    """The angles with the frames where the IK pelvis is not upright (> ``max_incl_deg`` from vertical: the
    solver left the walking solution) set to NaN, and the fraction of such frames."""
    bad = ~(angles["pelvis_inclination"] < math.radians(max_incl_deg))
    out = {
        k: (np.where(bad, nan, v) if k not in ("t", "pelvis_inclination") else v) for k, v in angles.items()
    }
    return out, float(bad.mean())


class _Skipped(Exception):
    """A peer left out of the run (``--no-opensense``)."""


# -- mobgap ------------------------------------------------------------------------------------------------
def _mobgap_frame(stream, rate_hz: float):
    """The sacral sensor's acc (m/s^2) and gyr (deg/s) resampled to ``rate_hz`` on its own span, in the
    Mobilise-D sensor frame, as mobgap takes them: (times s, DataFrame)."""
    import pandas as pd

    t = np.arange(stream.t[0], stream.t[-1], 1.0 / rate_hz)
    acc = np.column_stack([np.interp(t, stream.t, stream.acc[:, k]) for k in range(3)])
    gyr = np.degrees(np.column_stack([np.interp(t, stream.t, stream.gyr[:, k]) for k in range(3)]))
    # nominal sacral mounting: sensor x superior, y left, z posterior -> Mobilise-D sensor frame x up,
    # y right, z anterior (mobgap.consts.INITIAL_MOBILISED_ORIENTATION): (x, -y, -z)
    flip = np.array([1.0, -1.0, -1.0])
    df = pd.DataFrame(
        np.column_stack([acc * flip, gyr * flip]),
        columns=["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"],
    )
    return t, df


def mobgap_ics(stream, rate_hz: float = 100.0) -> dict[str, np.ndarray]:
    """Initial contacts (s, per side) of the Mobilise-D pipeline on the sacral sensor's acc/gyr."""
    from mobgap.data import GaitDatasetFromData
    from mobgap.pipeline import MobilisedPipelineHealthy

    t, df = _mobgap_frame(stream, rate_hz)
    ds = GaitDatasetFromData(
        {"sim": {"LowerBack": df}},
        rate_hz,
        {"sim": {"height_m": 1.75, "sensor_height_m": 1.0, "cohort": "HA", "foot_length_m": 0.26}},
        {"sim": {"measurement_condition": "laboratory"}},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = MobilisedPipelineHealthy().safe_run(ds[0])
    ic = pipe.raw_ic_list_
    out: dict[str, np.ndarray] = {"left": np.array([]), "right": np.array([])}
    if len(ic):
        times = t[0] + ic["ic"].to_numpy(dtype=float) / rate_hz
        labels = ic["lr_label"].astype(str).to_numpy()
        for side in ("left", "right"):
            out[side] = np.sort(times[labels == side])
    return out


def mobgap_turns(stream, rate_hz: float = 100.0) -> list[tuple[float, float, float]]:
    """Turns ``(start s, end s, angle deg, counter-clockwise seen from above positive)`` of the Mobilise-D
    turn detector (mobgap's ``TdElGohary``, its defaults: a rotation of at least 45 deg about the lower back's
    long axis) on the sacral sensor's gyroscope, mounted as in :func:`_mobgap_frame`."""
    from mobgap.turning import TdElGohary
    from mobgap.utils.conversions import to_body_frame

    t, df = _mobgap_frame(stream, rate_hz)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        turns = TdElGohary().detect(to_body_frame(df), sampling_rate_hz=rate_hz).turn_list_
    # the sensor's x axis points up: a positive rate about it turns counter-clockwise seen from above
    return [(t[0] + float(r.start) / rate_hz, t[0] + float(r.end) / rate_hz, float(r.angle_deg))
            for r in turns.itertuples()]


def turn_lines(strides, turns: list[tuple[float, float, float]]) -> list[str]:
    """hipback's heading change per stride (deg, ``*`` = flagged turning) next to the peer's turns, and how
    often hipback's flag agrees with "the stride lies more than half inside one of the peer's turns"."""
    out = ["    mobgap turns (>= 45 deg): " + (", ".join(
        f"{a:.2f}-{b:.2f} s {ang:+.0f} deg" for a, b, ang in turns) or "none")]
    agree = n = 0
    for side in ("left", "right"):
        st = [s for s in strides if s.side == side]
        out.append(f"    heading change {side:5s} per hipback stride: " + ", ".join(
            f"{math.degrees(s.heading_change_rad):+.0f}{'*' if s.turning else ''}" for s in st) + " deg")
        for s in st:
            half = 0.5 * (s.t_end - s.t_start)
            inside = any(min(s.t_end, b) - max(s.t_start, a) > half for a, b, _ in turns)
            agree += inside == s.turning
            n += 1
    out.append(f"    turning flag vs inside a mobgap turn: {agree}/{n} strides agree")
    return out


# -- cohort ------------------------------------------------------------------------------------------------
def _truth_strides_ext(angles: dict[str, np.ndarray], truth, sides: set[str]) -> list:
    """Per-stride peak extension of an angle series without stride detection, within the true strides."""
    out = []
    t = angles["t"]
    for s in truth.strides:
        if not s.steady or s.side not in sides:
            continue
        m = (t >= s.t_initial_contact) & (t < s.t_end)
        v = angles.get(f"hip_flexion_{s.side}")
        if v is not None and m.sum() > 5 and np.isfinite(v[m]).any():
            out.append((s.side, s.t_initial_contact, s.t_end, float(-np.nanmin(v[m]))))
    return out


def cohort_section(n: int, seed: int, walk_s: float, realistic: bool, opensense_too: bool = True) -> None:
    from hipback.simulator import make_cohort, simulate

    label = "realistic" if realistic else "easy"
    print(
        f"\n== Peers on the {label} cohort: {n} patients (make_cohort seed {seed}), scenario walk "
        f"(stand 10 s, walk {walk_s:.0f} s with U-turns, stand 5 s)"
    )
    rows: dict[str, list[dict]] = {
        "hipback": [],
        "OpenSense": [],
        "OpenSense upright frames": [],
        "mobgap": [],
    }
    times = {k: 0.0 for k in ("hipback", "OpenSense", "mobgap")}
    hipback_cpu = 0.0
    for i, (patient, sensors) in enumerate(make_cohort(n, seed, realistic=realistic)):
        sim = simulate("walk", seed=seed * 1000 + i, patient=patient, sensors=sensors, walk_s=walk_s)
        tr = sim.truth
        rec = sim.recording
        sides = {p[6:] for p in rec.streams if p.startswith("thigh")}
        t0, c0 = time.perf_counter(), time.process_time()
        res = pb.process(rec)
        times["hipback"] += time.perf_counter() - t0
        hipback_cpu += time.process_time() - c0
        hb = hipback_real_check(sim, res)
        rows["hipback"].append(hb)
        line = (
            f"  {i + 1:2d} {sensors[0].error_profile or sensors[0].kind:18s} | hipback hipL/R/tilt RMSE "
            + "/".join(
                f"{hb['angles'].get(n_, {}).get('rmse', nan):.2f}"
                for n_ in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt")
            )
        )
        t0 = time.perf_counter()
        try:
            if not opensense_too:
                raise _Skipped
            rate = 100.0
            grid, quats = orientations(rec, rate)
            c0, c1 = tr.calibration_window
            mid = 0.5 * (c0 + c1)
            with tempfile.TemporaryDirectory() as d:
                os_ang = opensense(
                    grid, quats, rate, (mid - 0.5, mid + 0.5), Path(d), axes=anterior_axes(sensors)
                )
            keep = ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt")
            ang = {k: v for k, v in os_ang.items() if k in keep and (k[12:] in sides or k == "pelvic_tilt")}
            osr = real_check(tr, os_ang["t"], ang, None, _truth_strides_ext(os_ang, tr, sides), sides)
            rows["OpenSense"].append(osr)
            up, failed = upright_only(os_ang)
            ang_up = {k: v for k, v in up.items() if k in ang}
            osu = real_check(tr, up["t"], ang_up, None, _truth_strides_ext(up, tr, sides), sides)
            rows["OpenSense upright frames"].append(osu)
            line += (
                " | OpenSense "
                + "/".join(f"{osr['angles'].get(n_, {}).get('rmse', nan):.2f}" for n_ in keep)
                + f" (pelvis not upright in {failed:.0%} of frames; upright frames "
                + "/".join(f"{osu['angles'].get(n_, {}).get('rmse', nan):.2f}" for n_ in keep)
                + ")"
            )
        except _Skipped:
            pass
        except Exception as e:  # noqa: BLE001 - a peer failing on one patient is a finding, not a crash
            line += f" | OpenSense failed: {type(e).__name__}: {str(e)[:80]}"
        times["OpenSense"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            ics = mobgap_ics(rec.streams["pelvis"])
            mg = real_check(tr, tr.t, {}, ics, None, {"left", "right"})
            rows["mobgap"].append(mg)
            hb_ic = hb["ic"]
            line += (
                f" | IC<=50ms hipback {hb_ic['tp']}/{hb_ic['tp'] + hb_ic['fp']}, "
                f"mobgap {mg['ic']['tp']}/{mg['ic']['tp'] + mg['ic']['fp']}"
            )
        except Exception as e:  # noqa: BLE001
            line += f" | mobgap failed: {type(e).__name__}: {str(e)[:80]}"
        times["mobgap"] += time.perf_counter() - t0
        print(line, flush=True)
    print(
        "  (compute time: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
        + f"; hipback's CPU time {hipback_cpu:.1f} s)"
    )
    figs = {}
    for name, r in rows.items():
        if r:
            figs[name] = summarise_real_check(r, f"{name}, {label} cohort")
    _table(figs, label)


def _table(figs: dict, label: str) -> None:
    names = ("hipback", "OpenSense", "OpenSense upright frames", "mobgap")

    def f(name: str, key: str, k: int, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
        v = figs.get(name, {}).get(key)
        return "-" if v is None or not np.isfinite(v[k]) else fmt.format(v[k] * scale)

    rows = [
        (f"{what} {kind}", key, k, scale, fmt)
        for key, what in (
            ("hip_flexion_left", "hip flexion L"),
            ("hip_flexion_right", "hip flexion R"),
            ("pelvic_tilt", "pelvic tilt"),
        )
        for kind, k, scale, fmt in (("RMSE (deg)", 0, 1.0, "{:.2f}"), ("gain", 1, 1.0, "{:.3f}"))
    ] + [
        ("IC error median (ms)", "ic", 0, 1e3, "{:.0f}"),
        ("IC error p95 (ms)", "ic", 1, 1e3, "{:.0f}"),
        ("IC within 50 ms", "ic", 2, 1.0, "{:.3f}"),
        ("stride precision", "strides", 0, 1.0, "{:.3f}"),
        ("stride recall", "strides", 1, 1.0, "{:.3f}"),
        ("peak extension error median (deg)", "ext", 0, 1.0, "{:.2f}"),
        ("peak extension error p95 (deg)", "ext", 1, 1.0, "{:.2f}"),
    ]
    print(f"\n  Summary, {label} cohort (medians over patients; IC and strides pooled over strides):")
    print("  | figure | " + " | ".join(names) + " |")
    print("  " + "|---" * (len(names) + 1) + "|")
    for title, key, k, scale, fmt in rows:
        print(f"  | {title} | " + " | ".join(f(n, key, k, scale, fmt) for n in names) + " |")


# -- real Movella DOT walks ---------------------------------------------------------------------------------
MOVELLA = {"pelvis": "4_D422CD003437", "thigh_left": "3_D422CD003235", "thigh_right": "5_D422CD0034C1"}
WALKS = {"124850": "walk 5 steps", "133150": "walk ~12 s"}


def _match(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[list[float], int, int]:
    """Pairs of nearest events within ``tol`` (one-to-one, greedy by distance): differences a - b and the
    unmatched counts of a and b."""
    pairs = sorted((abs(x - y), i, j) for i, x in enumerate(a) for j, y in enumerate(b) if abs(x - y) <= tol)
    ua, ub, d = set(range(len(a))), set(range(len(b))), []
    for _, i, j in pairs:
        if i in ua and j in ub:
            ua.discard(i)
            ub.discard(j)
            d.append(float(a[i] - b[j]))
    return d, len(ua), len(ub)


def _contact_times(strides) -> np.ndarray:
    """Every contact of hipback's strides: their starts and ends (a bout's last contact only ends one)."""
    return np.unique(np.round(np.concatenate([[s.t_start for s in strides], [s.t_end for s in strides]]), 4))


def _both_sides(hb: np.ndarray, mg: np.ndarray) -> str | None:
    """hipback's contacts against mobgap's, side labels ignored (matched within 0.3 s); None: none matched."""
    diffs, u_hb, u_mg = _match(hb, mg, 0.3)
    if not diffs:
        return None
    ad = np.abs(diffs) * 1e3
    return (f"matched {len(diffs)} within 0.3 s, hipback - mobgap mean {np.mean(diffs) * 1e3:+.0f} ms (std "
            f"{np.std(diffs) * 1e3:.0f} ms), |difference| median {np.median(ad):.0f} ms, within 50 ms "
            f"{int(np.sum(ad <= 50))}/{len(ad)}; only hipback {u_hb}, only mobgap {u_mg}")


def real_section(opensense_too: bool = True) -> None:
    folder = SHARED / "movella-dot-walk"
    print("\n== Real Movella DOT walks (no reference): hipback next to OpenSense and mobgap")
    if not folder.is_dir() or not MODEL.is_file():
        print(f"  skipped: {folder} or {MODEL} not present")
        return
    from hipback.ingest.files import read_recording

    def rec(trial: str):
        return read_recording({p: folder / f"{dev}_20231031_{trial}.csv" for p, dev in MOVELLA.items()})

    npose_rec = rec("124807")
    cal = pb.process(npose_rec).calibration
    rate = 120.0
    g_np, q_np = orientations(npose_rec, rate)
    mid = 0.5 * (g_np[0] + g_np[-1])
    m = (g_np >= mid - 0.5) & (g_np <= mid + 0.5)
    calib_quats = {}
    for p, q in q_np.items():
        qq = q[m] * np.sign(q[m] @ q[m][0])[:, None]
        calib_quats[p] = qm.normalize(qq.mean(axis=0))
    print(
        "  calibration, the same on both sides: the N-pose trial (124807; hipback's calibration of it as "
        "bench/processing_bench.py, OpenSense's IMU Placer on its middle second), and, where the walker "
        "stands still at the start, the walk itself (hipback: `hipback process` on the walk's files; "
        "OpenSense: its first 0.8 s, the OpenSense tutorial's choice). IC and peak comparisons use the "
        "latter where it exists."
    )
    for trial, name in WALKS.items():
        r = rec(trial)
        res_np = pb.process(r, ProcessorConfig(initial_calibration=cal))
        res_own = pb.process(r)  # `hipback process` on the walk's files (with --ic-rule: that rule)
        grid, quats = orientations(r, rate)
        variants = {"N-pose": calib_quats}
        hb_by_variant = {"N-pose": res_np}
        still = all(
            np.percentile(np.linalg.norm(s.gyr[(s.t - s.t[0] > 0.05) & (s.t - s.t[0] < 0.8)], axis=1), 90)
            < math.radians(10.0)
            for p, s in r.streams.items()
            if p in IMU_LABEL
        )
        if still:
            m0 = grid - grid[0] < 0.8
            variants["walk start"] = {
                p: qm.normalize((q[m0] * np.sign(q[m0] @ q[m0][0])[:, None]).mean(axis=0))
                for p, q in quats.items()
            }
            hb_by_variant["walk start"] = res_own
        print(
            f"  {trial} {name}: `hipback process` on the walk alone: calibration "
            f"{res_own.calibration_state}, "
            f"strides L/R {sum(s.side == 'left' for s in res_own.strides)}/"
            f"{sum(s.side == 'right' for s in res_own.strides)}"
        )
        res = res_own if "walk start" in hb_by_variant else res_np
        os_by_variant = {}
        for vname, cq in variants.items() if opensense_too else ():
            with tempfile.TemporaryDirectory() as d:
                os_ang = opensense(grid, quats, rate, None, Path(d), calib_quats=cq, axes=anterior_axes())
            os_by_variant[vname] = os_ang
            a = hb_by_variant[vname].angles
            for n_ in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt"):
                hb = np.interp(os_ang["t"], a.t, getattr(a, n_), left=nan, right=nan)
                osv = os_ang[n_]
                ok = np.isfinite(hb) & np.isfinite(osv)
                if ok.sum() < 20:
                    print(f"    {n_:18s} too few common samples")
                    continue
                d = hb[ok] - osv[ok]
                slope = np.polyfit(osv[ok], hb[ok], 1)[0]
                print(
                    f"    {n_:18s} hipback vs OpenSense (both calibrated on {vname}): RMS difference "
                    f"{math.degrees(np.sqrt(np.mean(d**2))):5.2f} deg, gain (slope hipback/OpenSense) "
                    f"{slope:.3f}, mean offset {math.degrees(d.mean()):+5.2f} deg; range hipback "
                    f"{math.degrees(np.ptp(hb[ok])):5.1f}, OpenSense {math.degrees(np.ptp(osv[ok])):5.1f} deg"
                )
        mg = mobgap_ics(r.streams["pelvis"])
        for side in ("left", "right"):
            hb_ic = np.array([s.t_start for s in res.strides if s.side == side])
            # hipback reports strides (IC to next IC): its last IC of a bout ends a stride, add it
            hb_end = np.array([s.t_end for s in res.strides if s.side == side])
            hb_all = np.unique(np.round(np.concatenate([hb_ic, hb_end]), 4))
            diffs, u_hb, u_mg = _match(hb_all, mg[side], 0.3)
            mean_ms = np.mean(diffs) * 1e3 if diffs else nan
            std_ms = np.std(diffs) * 1e3 if diffs else nan
            print(
                f"    IC {side:5s}: hipback {len(hb_all)} (stride starts/ends), mobgap {len(mg[side])}; "
                f"matched {len(diffs)} within 0.3 s, hipback - mobgap mean {mean_ms:+.0f} ms "
                f"(std {std_ms:.0f} ms); "
                f"only hipback {u_hb}, only mobgap {u_mg}"
            )
        # mobgap's left/right labels are inconsistent on these walks: all contacts of both sides together
        hb_both = _contact_times(res.strides)
        mg_both = np.sort(np.concatenate([mg["left"], mg["right"]]))
        summary = _both_sides(hb_both, mg_both)
        if summary:
            far = []
            for t in hb_both:
                dd = mg_both - t
                k = int(np.argmin(np.abs(dd))) if len(dd) else -1
                if k >= 0 and 0.05 < abs(dd[k]) <= 0.3:
                    far.append(f"{t:.2f} s ({-dd[k] * 1e3:+.0f} ms)")
            print(f"    IC both sides: {summary}; more than 50 ms apart: {', '.join(far) or 'none'}")
        for side in ("left", "right"):
            st = [s for s in res.strides if s.side == side]
            line = f"    peak hip extension {side:5s} per hipback stride: hipback " + ", ".join(
                f"{math.degrees(s.peak_hip_extension_rad):.1f}" for s in st
            )
            for vname, os_ang in os_by_variant.items():
                os_ext = []
                for s in st:
                    mm = (os_ang["t"] >= s.t_start) & (os_ang["t"] < s.t_end)
                    if mm.any():
                        os_ext.append(math.degrees(-np.nanmin(os_ang[f"hip_flexion_{side}"][mm])))
                line += f" | OpenSense ({vname}) " + ", ".join(f"{e:.1f}" for e in os_ext)
            print(line + " deg")
        for line in turn_lines(res.strides, mobgap_turns(r.streams["pelvis"])):
            print(line)


QMT = SHARED / "qmt-full-body" / "full_body_example_data.mat"
QMT_SEGMENTS = {"pelvis": "hip", "thigh_left": "upper_leg_left", "thigh_right": "upper_leg_right",
                "lumbar_upper": "lower_back"}
#: the data authors' segment-to-sensor orientations, tuned by hand on a 3D box model (qmt,
#: ``examples/full_body_tracking_basic_example.py``, ``tunedParams``; MIT, Bo Yang and Daniel Laidig 2021):
#: an independent, approximate reference for the segment axes hipback calibrates (same axis convention)
QMT_TUNED = {"pelvis": (0.542, 0.542, 0.455, -0.455), "lumbar_upper": (0.455, 0.455, 0.542, -0.542),
             "thigh_left": (0.172, -0.73, -0.661, 0.014), "thigh_right": (0.703, -0.182, 0.048, -0.686)}


def foot_contacts(gyr: np.ndarray, rate_hz: float) -> np.ndarray:
    """Heel strikes (s from the first sample) from a foot-worn IMU's gyroscope (rad/s), a reference for the
    contacts where there is no force plate: the foot turns fast about its medio-lateral axis through the swing
    (here 7-10 rad/s), the heel strike ends that rotation (the angular velocity about the principal axis
    crosses zero out of the swing's sign), a short opposite rotation follows (heel to foot flat), then the
    foot lies still (foot flat, all of |gyr| under 0.5 rad/s for at least 0.1 s). Each foot-flat period
    (after a swing faster than 3 rad/s within the 0.5 s before it) gives one contact: the first zero crossing
    out of the swing's sign after the swing's fastest rotation, linearly interpolated (the last crossing
    before foot flat, taken before, was on some contacts a crossing of the noise in the near-zero rate just
    before foot flat, 0.2 s late) (Sabatini et al. 2005, *IEEE Trans Biomed Eng*
    52:486; Mariani et al. 2010, *J Biomech* 43:2999, use the same phases of the foot's rotation). Its
    timing relative to the force plate's heel strike is not known on these data (a few tens of ms)."""
    speed = np.linalg.norm(gyr, axis=1)
    x = gyr[speed > 1.0]
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    w = gyr @ vt[0]
    quiet = speed < 0.5
    n, back, lead = round(0.1 * rate_hz), round(0.5 * rate_hz), round(0.15 * rate_hz)
    out = []
    i = 1
    while i < len(w) - n:
        if not (quiet[i : i + n].all() and not quiet[i - 1]):
            i += 1
            continue
        lo = max(0, i - back)
        sign = np.sign(np.mean(w[lo : max(lo + 1, i - lead)]))
        # the first crossing out of the swing's sign after the swing's fastest rotation (a later one, in the
        # near-zero rate just before foot flat, is noise)
        k = lo + int(np.argmax(sign * w[lo:i])) + 1
        while k < i and not (sign * w[k - 1] > 0 >= sign * w[k]):
            k += 1
        if k < i and np.max(np.abs(w[lo:i])) > 3.0:
            out.append((k - 1 + w[k - 1] / (w[k - 1] - w[k])) / rate_hz)
        i += n
    return np.array(out)


def _against(det: np.ndarray, ref: np.ndarray, tol: float = 0.15) -> str:
    """Detected contacts against reference ones: each reference contact's nearest detection within ``tol``."""
    d = []
    for r in ref:
        if len(det):
            k = int(np.argmin(np.abs(det - r)))
            if abs(det[k] - r) <= tol:
                d.append(det[k] - r)
    if not d:
        return f"matched 0/{len(ref)}"
    e = np.array(d) * 1e3
    return (f"matched {len(e)}/{len(ref)}, error median {np.median(e):+.0f} ms, |error| p95 "
            f"{np.percentile(np.abs(e), 95):.0f} ms, within 50 ms {np.mean(np.abs(e) <= 50):.2f}")


def qmt_recording(placements=tuple(QMT_SEGMENTS), quaternions: bool = True):
    """``(mat, recording)``: the qmt recording's ``.mat`` contents and its ``placements``' sensors written as
    MT Manager exports (acc, gyr and, with ``quaternions``, the devices' quaternions) and read as ``hipback
    process`` reads them."""
    import scipy.io

    from hipback.ingest.files import read_recording

    d = scipy.io.loadmat(QMT, squeeze_me=True, struct_as_record=False)
    header = "PacketCounter,SampleTimeFine,Acc_X,Acc_Y,Acc_Z,Gyr_X,Gyr_Y,Gyr_Z"
    header += ",Quat_q0,Quat_q1,Quat_q2,Quat_q3" if quaternions else ""
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for placement in placements:
            s = d[QMT_SEGMENTS[placement]]
            values = np.column_stack([s.acc, s.gyr, s.quat] if quaternions else [s.acc, s.gyr])
            rows = ["// Update Rate: 100.0Hz", header]
            rows += [",".join([str(i % 65536), str(100 * i), *(f"{v:.6f}" for v in values[i])])
                     for i in range(len(d["t"]))]
            files[placement] = Path(tmp) / f"{QMT_SEGMENTS[placement]}.txt"
            files[placement].write_text("\n".join(rows) + "\n", encoding="utf-8")
        return d, read_recording(files)


def qmt_section() -> None:
    """The qmt full-body recording (real, 100 Hz, no reference; ``../shared/data/qmt-full-body``): its hip,
    thigh and lower-back sensors written as MT Manager exports and read as ``hipback process`` reads them,
    hipback's segment axes next to the data authors' hand-tuned ones, and hipback's contacts next to mobgap's
    on the hip sensor."""
    print("\n== Real qmt full-body recording (100 s, no reference): hipback next to the authors' tuning and "
          "mobgap")
    if not QMT.is_file():
        print(f"  skipped: {QMT} not present")
        return
    import dataclasses


    d, rec = qmt_recording()
    for p, st in rec.streams.items():
        rep = st.meta["import"]
        print(f"  {p:12s} read as {st.kind}; device quaternions' departure from the gyroscope while still "
              f"(p90): {rep.orientation_residual_rad_s or 0.0:.2f} rad/s")
    forced = dataclasses.replace(rec, streams={
        p: dataclasses.replace(st, kind="quat") for p, st in rec.streams.items()})
    old = pb.process(forced)
    def counts(r) -> str:
        return f"{sum(x.side == 'left' for x in r.strides)}/{sum(x.side == 'right' for x in r.strides)}"

    print(f"  with the device quaternions (the import before this check): {old.calibration_state}, strides "
          f"L/R {counts(old)}")
    # as `hipback process` runs it: rows wait for a standing period in the recording's first half hour
    from hipback.processing.pipeline import offline_calibration_wait_s

    res = pb.process(rec, ProcessorConfig(calibration_timeout_s=offline_calibration_wait_s(rec.duration_s)))
    print(f"  hipback process: {res.calibration_state}, strides L/R {counts(res)}, activity "
          + ", ".join(f"{b.label} {b.t_start:.0f}-{b.t_end:.0f} s" for b in res.activity))
    for p, tuned in QMT_TUNED.items():
        cal = res.calibration.get(p)
        if cal is None:
            continue
        qt_ = qm.normalize(np.array(tuned, dtype=float))
        diffs = []
        axes = (("anterior", (1.0, 0.0, 0.0)), ("superior", (0.0, 1.0, 0.0)), ("ML", (0.0, 0.0, 1.0)))
        for name, axis in axes:
            a = qm.rotate(cal.q_segment_in_sensor, np.array(axis))
            b = qm.rotate(qt_, np.array(axis))
            diffs.append(f"{name} {math.degrees(math.acos(min(1.0, abs(float(a @ b))))):.1f}")
        unc = cal.ml_uncertainty_deg
        unc_txt = "-" if unc is None or not math.isfinite(unc) else f"{unc:.1f} deg"
        print(f"  {p:12s} segment axes vs the authors' tuning: " + ", ".join(diffs) + " deg; hipback's "
              f"stated ML uncertainty {unc_txt}, quality {cal.quality:.2f}")
    mg = mobgap_ics(rec.streams["pelvis"])
    # the feet's own IMUs as the contacts' reference, from the first contact hipback could see on (its first
    # angle)
    seen = np.isfinite(res.angles.hip_flexion_left) | np.isfinite(res.angles.hip_flexion_right)
    t_cal = float(res.angles.t[seen][0]) if seen.any() else math.inf
    mg_all = np.sort(np.concatenate([mg["left"], mg["right"]]))
    for side in ("left", "right"):
        ref = foot_contacts(d[f"foot_{side}"].gyr, 100.0)
        ref = ref[ref >= t_cal]
        hb = _contact_times([x for x in res.strides if x.side == side])
        print(f"  IC {side:5s} against the {side} foot's IMU ({len(ref)} heel strikes from {t_cal:.0f} s): "
              f"hipback {_against(hb, ref)}; mobgap (either label) {_against(mg_all, ref)}")
    hb_both = _contact_times(res.strides)
    summary = _both_sides(hb_both, mg_all) or "none matched within 0.3 s"
    print(f"  IC both sides: hipback {len(hb_both)}, mobgap {len(mg_all)}; {summary}")


def short_bouts_section(n: int, seed: int, walks_s: tuple[float, ...] = (5.0, 8.0, 12.0)) -> None:
    """Walking in short bouts, as at home between rooms: realistic walkers
    (``make_cohort(..., realistic=True)``) standing 10 s, then six walks of each of ``walks_s`` (straight,
    gait initiation and termination included) with 4 s of standing between them. Every true contact of a
    worn side (the first and last steps too) and the steady strides' contacts, against hipback's contacts
    (its strides' starts and ends) and mobgap's (either label), within 50 ms. OpenSense finds no contacts
    and is not run."""
    from hipback.simulator import make_cohort, simulate
    from hipback.simulator.scenarios import Scenario, Step

    print(f"\n== Short walks: {n} realistic walkers (make_cohort seed {seed}), six walks each with 4 s "
          "standing between them; contacts within 50 ms")

    def hits(det: np.ndarray, ref: np.ndarray) -> int:
        return sum(1 for r in ref if len(det) and np.min(np.abs(det - r)) <= 0.05)

    cohort = list(make_cohort(n, seed, realistic=True))
    for walk_s in walks_s:
        steps = [Step("stand", 10.0)]
        for _ in range(6):
            steps += [Step("walk", walk_s, options={"corridor_m": 50.0}), Step("stand", 4.0)]
        scenario = Scenario("short_walks", steps, f"six walks of {walk_s:.0f} s")
        found = {"hipback": [0, 0], "mobgap": [0, 0]}
        total = [0, 0]
        for i, (patient, sensors) in enumerate(cohort):
            sim = simulate(scenario, seed=seed * 1000 + i, patient=patient, sensors=sensors)
            res = pb.process(sim.recording)  # (hipback process's orientation filter, as the cohort's)
            mg = mobgap_ics(sim.recording.streams["pelvis"])
            mg_all = np.sort(np.concatenate([mg["left"], mg["right"]]))
            for side in ("left", "right"):
                if f"thigh_{side}" not in res.placements:
                    continue
                every = np.asarray(sim.truth.initial_contacts.get(side, []), dtype=float)
                steady = np.array([ts.t_initial_contact for ts in sim.truth.strides
                                   if ts.side == side and ts.steady])
                hb = _contact_times([x for x in res.strides if x.side == side])
                for k, ref in enumerate((every, steady)):
                    total[k] += len(ref)
                    found["hipback"][k] += hits(hb, ref)
                    found["mobgap"][k] += hits(mg_all, ref)
        print(f"  walks of {walk_s:4.1f} s: " + "; ".join(
            f"{name} every contact {f[0]}/{total[0]} ({f[0] / max(total[0], 1):.3f}), steady strides' "
            f"{f[1]}/{total[1]} ({f[1] / max(total[1], 1):.3f})" for name, f in found.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--walk-s", type=float, default=60.0)
    ap.add_argument("--easy", action="store_true", help="also run the easy cohort")
    ap.add_argument("--only", choices=("cohort", "real", "qmt", "short"))
    ap.add_argument("--no-opensense", action="store_true",
                    help="skip OpenSense (its IK takes minutes; hipback and mobgap only)")
    pb.add_detector_options(ap)
    args = ap.parse_args()
    if args.orientation is None:  # hipback here is `hipback process` on files: its filter for raw sensors
        from hipback.ingest.commands.process import DEFAULT_ORIENTATION

        args.orientation = DEFAULT_ORIENTATION
    pb.use_detector_options(args)
    try:
        import mobgap  # noqa: F401
        import opensim  # noqa: F401
    except ImportError as e:
        print(f"peers not installed ({e}); install the extra: .venv/bin/pip install -e '.[peers]'")
        return
    if not MODEL.is_file():
        print(f"OpenSim model not found at {MODEL}")
        return
    if args.only in (None, "cohort"):
        if args.easy:
            cohort_section(args.patients, args.seed, args.walk_s, False, not args.no_opensense)
        cohort_section(args.patients, args.seed, args.walk_s, True, not args.no_opensense)
    if args.only in (None, "real"):
        real_section(opensense_too=not args.no_opensense)
    if args.only in (None, "real", "qmt"):
        qmt_section()
    if args.only in (None, "short"):
        short_bouts_section(min(args.patients, 8), args.seed)


if __name__ == "__main__":
    main()

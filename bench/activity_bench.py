"""Activity time against the truth (virtual sessions) and on the real recordings' trials. Prints figures.

Run: ``.venv/bin/python bench/activity_bench.py [--patients 30] [--exercise-patients 4] [--seed 1]``

The activity classifier (:class:`hipback.processing.activity.ActivityClassifier`) gives the time a patient
spent walking, standing, sitting, kneeling and lying, which the report and the dashboards show. Measured:

* on the realistic virtual cohort (:func:`hipback.simulator.make_cohort`), per sample of hipback's angle
  table, hipback's label against the truth's (:meth:`Truth.activity_at`): the share of samples labelled as
  the truth, and per truth label the seconds hipback called walking and, for the truth's walking, the
  seconds it called something else; scenarios ``clinic_visit`` (walk with turns, kneeling stretch, stand,
  sit, lie) for ``--patients`` patients, and for ``--exercise-patients`` the scenario ``exercises`` (every
  catalogue exercise; its truth has sets, not activities): the seconds of each exercise's sets called walking;
* on the real Movella DOT trials (``../shared/data/movella-dot-walk``: N-pose, lean forward, cycling the
  right leg, cycling the left leg while standing on the other, five steps, a 12 s walk) the seconds labelled
  walking by ``hipback process``'s processing: only the two walks walk.

Samples the truth labels by posture class rather than activity (an exercise's posture) are compared by the
truth's label as it is; labels the classifier cannot give (``unknown``) count as disagreement.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from hipback.processing import process_recording  # noqa: E402
from hipback.processing.pipeline import ProcessorConfig, offline_calibration_wait_s  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DOT_TRIALS = {"124807": "N-pose", "124822": "lean forward", "124831": "cycle right leg",
              "124840": "cycle left leg", "124850": "walk 5 steps", "133150": "walk ~12 s"}


def labels_on(res, t: np.ndarray) -> np.ndarray:
    """hipback's activity label at each time of ``t`` ('unknown' outside its bouts)."""
    out = np.full(len(t), "unknown", dtype=object)
    for b in res.activity:
        out[(t >= b.t_start) & (t < b.t_end)] = b.label
    return out


def _sessions(n: int, seed: int, scenario: str):
    """Each realistic patient's simulated ``scenario`` processed: ``(sim, t, dt, labels)`` with hipback's
    angle-table times ``t`` (s), their step ``dt`` (s) and hipback's activity label at each."""
    from hipback.simulator import make_cohort, simulate

    for i, (patient, sensors) in enumerate(make_cohort(n, seed, realistic=True)):
        sim = simulate(scenario, seed=seed * 1000 + i, patient=patient, sensors=sensors)
        res = process_recording(sim.recording)
        t = res.angles.t
        if len(t) >= 2:
            yield sim, t, float(np.median(np.diff(t))), labels_on(res, t)


def exercises(n: int, seed: int) -> None:
    """Seconds called walking during each catalogue exercise's sets (none of them is walking)."""
    called: dict[str, float] = {}
    total = 0.0
    for sim, t, dt, hb in _sessions(n, seed, "exercises"):
        for s in sim.truth.sets:
            m = (t >= s.t_start) & (t < s.t_end)
            total += float(np.sum(m)) * dt
            called[s.exercise] = called.get(s.exercise, 0.0) + float(np.sum(hb[m] == "walking")) * dt
    print(f"  exercises, {n} patients (make_cohort seed {seed}, realistic): {total / 60:.1f} min of sets; "
          "called walking (s): "
          + (", ".join(f"{k} {v:.1f}" for k, v in sorted(called.items()) if v) or "none"))


def virtual(n: int, seed: int, scenario: str) -> None:
    agree = total = 0.0
    false_walk: dict[str, float] = {}
    missed_walk: dict[str, float] = {}
    for sim, t, dt, hb in _sessions(n, seed, scenario):
        truth = np.array([sim.truth.activity_at(float(x)) for x in t], dtype=object)
        agree += float(np.sum(hb == truth)) * dt
        total += len(t) * dt
        for lab in set(truth):
            m = truth == lab
            if lab != "walking":
                false_walk[lab] = false_walk.get(lab, 0.0) + float(np.sum(hb[m] == "walking")) * dt
            else:
                for other in set(hb[m]) - {"walking"}:
                    missed_walk[other] = missed_walk.get(other, 0.0) + float(np.sum(hb[m] == other)) * dt
    print(f"  {scenario}, {n} patients (make_cohort seed {seed}, realistic): {total / 60:.1f} min, labelled "
          f"as the truth {agree / max(total, 1e-9):.3f}")
    print("    called walking, by the truth's label (s): "
          + (", ".join(f"{k} {v:.1f}" for k, v in sorted(false_walk.items())) or "none"))
    print("    the truth's walking called something else (s): "
          + (", ".join(f"{k} {v:.1f}" for k, v in sorted(missed_walk.items())) or "none"))


def real() -> None:
    import peers

    from hipback.ingest.files import read_recording

    folder = SHARED / "movella-dot-walk"
    if not folder.is_dir():
        print(f"  real trials skipped: {folder} not present")
        return
    for trial, name in DOT_TRIALS.items():
        rec = read_recording({p: folder / f"{dev}_20231031_{trial}.csv" for p, dev in peers.MOVELLA.items()})
        res = process_recording(rec, ProcessorConfig(calibration_timeout_s=offline_calibration_wait_s(
            rec.duration_s)))
        per = {}
        for b in res.activity:
            per[b.label] = per.get(b.label, 0.0) + b.duration_s
        text = ", ".join(f"{k} {v:.1f} s" for k, v in per.items()) or f"no activity ({res.calibration_state})"
        print(f"  Movella DOT {trial} ({name}, {rec.duration_s:.0f} s): {text}; strides "
              f"{len(res.strides)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=30)
    ap.add_argument("--exercise-patients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print("Activity against the truth (virtual sessions)")
    virtual(args.patients, args.seed, "clinic_visit")
    if args.exercise_patients:
        exercises(args.exercise_patients, args.seed)
    print("Real Movella DOT trials")
    real()


if __name__ == "__main__":
    main()

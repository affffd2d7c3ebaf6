"""``hipback process --calibration-from``: a standing calibration trial and a movement trial recorded apart
(the same sensors, not re-strapped), as many labs record them (the Movella DOT dataset: an N-pose trial, then
walks; OpenSense: a calibration trial). The movement trial alone has no standing-still period, so no angles;
with the calibration trial's ``summary.json`` it gets them, its thighs' axes from its own walking."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipback.ingest.commands import process
from hipback.ingest.errors import ConfigError
from hipback.ingest.files import write_recording
from hipback.processing.types import Recording
from hipback.simulator import SensorSpec, simulate
from hipback.simulator.scenarios import SCENARIOS, Scenario, Step

PLACES = ("pelvis", "thigh_left", "thigh_right")
SPLIT_S = 8.0  # the calibration trial: standing 0-7.5 s; the walk: from 8.5 s on


def _part(rec: Recording, t0: float, t1: float) -> Recording:
    streams = {}
    for p, s in rec.streams.items():
        a, b = np.searchsorted(s.t, [t0, t1])
        part = s.slice(int(a), int(b))
        streams[p] = dataclasses.replace(part, t=part.t - t0)
    start = None if rec.start_utc is None else rec.start_utc + t0
    return dataclasses.replace(rec, streams=streams, gaps=[], start_utc=start)


@pytest.fixture(scope="module")
def trials(tmp_path_factory) -> tuple[Path, Path, Path, object]:
    scen = Scenario("walk", [Step("stand", SPLIT_S), Step("walk", 40.0)], SCENARIOS["walk"])
    sensors = [SensorSpec(p, kind="quat", rate_hz=100.0) for p in PLACES]
    sim = simulate(scen, seed=5, sensors=sensors)
    root = tmp_path_factory.mktemp("trials")
    whole, static, walk = root / "whole", root / "static", root / "walk"
    write_recording(sim.recording, whole)
    write_recording(_part(sim.recording, 0.0, SPLIT_S - 0.5), static)
    write_recording(_part(sim.recording, SPLIT_S + 0.5, 1e9), walk)
    return whole, static, walk, sim


def _inputs(folder: Path) -> list[str]:
    return [f"{p}={folder / p}.csv" for p in PLACES]


def test_the_walk_takes_the_calibration_trials_calibration_and_its_own_thigh_axes(trials, tmp_path, capsys):
    whole, static, walk, sim = trials
    cal_run = process.run(_inputs(static), tmp_path / "static")
    assert cal_run.calibration["thigh_left"].method == "standing+prior"  # no movement in that trial
    capsys.readouterr()
    alone = process.run(_inputs(walk), tmp_path / "alone")
    assert alone.calibration_state != "calibrated" and not np.isfinite(alone.angles.hip_flexion_left).any()
    assert "give its results with --calibration-from DIR" in capsys.readouterr().out  # the way out, said
    res = process.run(_inputs(walk), tmp_path / "walk", calibration_from=tmp_path / "static")
    said = capsys.readouterr().out
    assert "(from the calibration of pelvis.csv, thigh_left.csv, thigh_right.csv)." in said
    assert "--calibration-from" not in said
    assert res.calibration_state == "calibrated"
    for side in ("left", "right"):
        cal = res.calibration[f"thigh_{side}"]
        assert cal.method == "standing+functional" and cal.ml_uncertainty_deg < 5.0
    # as accurate as the recording processed in one piece (calibrated at its start), against the truth
    one = process.run(_inputs(whole), tmp_path / "one")
    t_one = res.angles.t + SPLIT_S + 0.5
    for name in ("hip_flexion_left", "hip_flexion_right", "pelvic_tilt"):
        true = np.interp(t_one, sim.truth.t, sim.truth.angle_vs_stance(name))
        ref = np.interp(t_one, one.angles.t, getattr(one.angles, name))
        got = getattr(res.angles, name)
        ok = np.isfinite(ref) & np.isfinite(got)
        assert ok.mean() > 0.95
        e_got, e_ref = (float(np.degrees(np.sqrt(np.mean((x[ok] - true[ok]) ** 2)))) for x in (got, ref))
        assert e_got < 1.0 and e_got < e_ref + 0.1, (name, e_got, e_ref)
    n_one = sum(s.t_start > SPLIT_S + 1.0 for s in one.strides)
    assert abs(len(res.strides) - n_one) <= 2 and len(res.strides) > 40
    summary = json.loads((tmp_path / "walk" / "summary.json").read_text())
    assert summary["calibration_from"] == {p: f"{p}.csv" for p in PLACES}  # names only, no folders
    assert "calibration_from" in summary["angles_reference"]
    # the summary.json file itself works as well as its folder
    file = tmp_path / "static" / "summary.json"
    again = process.run(_inputs(walk), tmp_path / "walk2", calibration_from=file)
    np.testing.assert_array_equal(again.angles.hip_flexion_left, res.angles.hip_flexion_left)


@pytest.mark.parametrize(
    ("content", "sentence"),
    [
        (None, "cannot read the calibration file"),
        ("not json", "not JSON"),
        ("[1, 2]", "holds no calibration"),
        ('{"calibration": {}}', "holds no calibration"),
        ('{"calibration": {"pelvis": {"placement": "pelvis", "q_segment_in_sensor": [1, 0, 0, 0], '
         '"quality": 1}}}', "has no thigh_left sensor"),
        ('{"calibration": {"pelvis": {"placement": "pelvis", "q_segment_in_sensor": [1, 0, 0, 0.2], '
         '"quality": 1}, "thigh_left": {}, "thigh_right": {}}}', "damaged (pelvis: q_segment_in_sensor"),
        ('{"calibration": {"pelvis": {"placement": "thigh_left", "q_segment_in_sensor": [1, 0, 0, 0], '
         '"quality": 1}, "thigh_left": {}, "thigh_right": {}}}', "pelvis is filed as thigh_left"),
        ('{"calibration": {"pelvis": {"placement": "pelvis", "q_segment_in_sensor": [1, 0, 0, 0], '
         '"quality": 1.5}, "thigh_left": {}, "thigh_right": {}}}', "quality must be a number between 0 and"),
    ],
)
def test_a_bad_calibration_file_is_one_sentence_before_any_work(trials, tmp_path, content, sentence):
    _, _, walk, _ = trials
    file = tmp_path / "summary.json"
    if content is not None:
        file.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(sentence)):
        process.run(_inputs(walk), tmp_path / "out", calibration_from=file)
    assert not (tmp_path / "out").exists()


def test_a_stored_session_processed_again_keeps_the_given_calibration(trials, tmp_path, monkeypatch):
    """``--store`` keeps the given calibration in the session's meta; ``report``/``export --reprocess``
    process the stored samples with it (the walk alone has no standing period: without it, no angles)."""
    from hipback.ingest.report.source import load_from_store, stored_calibration
    from hipback.ingest.store import LocalStore

    monkeypatch.delenv("HIPBACK_INFLUX_URL", raising=False)
    _, static, walk, _ = trials
    process.run(_inputs(static), tmp_path / "static")
    store = tmp_path / "hipback.sqlite"
    res = process.run(_inputs(walk), tmp_path / "walk", store=store, patient="P-1",
                      calibration_from=tmp_path / "static")
    with LocalStore(store, readonly=True) as st:
        (row,) = st.sessions()
        meta = st.session(row["id"])["meta"]
    assert meta["calibration_from"] == {p: f"{p}.csv" for p in PLACES}
    given = stored_calibration(meta)
    assert given is not None and set(given) == set(PLACES)
    assert given["thigh_left"].method == "standing+prior"  # as given: the axes come from the walk again
    again = load_from_store(store, row["id"], reprocess=True, with_baseline=False).results
    # the same strides (their times went through UTC and back: the same to a microsecond)
    assert [s.side for s in again.strides] == [s.side for s in res.strides]
    np.testing.assert_allclose([s.t_start for s in again.strides], [s.t_start for s in res.strides],
                               atol=1e-6)
    assert again.calibration["thigh_left"].method == "standing+functional"
    assert stored_calibration({}) is None
    assert stored_calibration({"calibration_given": {"pelvis": {"placement": "pelvis"}}}) is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
_NAMES = ("placement", "q_segment_in_sensor", "quality", "reasons", "flags", "method", "window_s", "face",
          "ml_uncertainty_deg")
# the fields with plausible values or any JSON, so that documents get past the first checks too
_PLAUSIBLE = {
    "placement": st.sampled_from(PLACES),
    "q_segment_in_sensor": st.lists(st.floats(-1, 1), min_size=4, max_size=4) | st.just([1.0, 0.0, 0.0, 0.0]),
    "quality": st.floats(0, 1),
    "reasons": st.lists(st.text(max_size=5)),
}
_FIELDS = st.fixed_dictionaries(
    {}, optional={k: (_PLAUSIBLE[k] | _JSON) if k in _PLAUSIBLE else _JSON for k in _NAMES},
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entry=_FIELDS | _JSON, doc_kind=st.sampled_from(["entry", "own placement", "whole"]))
def test_any_calibration_file_is_a_calibration_or_one_sentence(tmp_path, entry, doc_kind):
    """Whatever a summary.json holds, load_calibration returns calibrations or raises ConfigError (one line);
    the documents it accepts are tested above with a real run's summary.json."""
    if doc_kind == "whole":
        doc = entry
    elif doc_kind == "own placement" and isinstance(entry, dict):
        doc = {"calibration": {p: {**entry, "placement": p} for p in PLACES}}
    else:
        doc = {"calibration": dict.fromkeys(PLACES, entry)}
    file = tmp_path / "summary.json"
    file.write_text(json.dumps(doc), encoding="utf-8")
    try:
        cals, names = process.load_calibration(file, list(PLACES))
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert set(cals) == set(PLACES) and isinstance(names, dict)
    for c in cals.values():
        assert abs(float(np.linalg.norm(c.q_segment_in_sensor)) - 1.0) < 1e-6 and 0.0 <= c.quality <= 1.0


"""Bounded, seeded fuzzing of the input boundaries (``tests/fuzz_boundaries.py``; the long campaign is
``bench/fuzz_campaign.py``), and the specific hostile inputs the issue found: a last time stamp at 1e9 s, an
accelerometer value of 1e308, a trailing newline in a pseudonym."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files import read_recording, read_sensor_file, write_recording
from hipback.processing.pipeline import process_recording
from hipback.processing.resample import MAX_POINTS_PER_PUSH, GridResampler
from tests import fuzz_boundaries as fb
from tests.data_gen import write_movella_dot, write_xsens_mt

SEED = 20261125


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, list[Path]]:
    return fb.make_file_seeds(tmp_path_factory.mktemp("seeds"))


def _run(fuzzer: fb.Fuzzer, n: int) -> fb.Fuzzer:
    with fb.bounded(memory_gib=2.0, seconds=120):
        fuzzer.run(n, SEED)
    assert not fuzzer.failures, fuzzer.failures[:5]
    # the property is only tested when both outcomes occur: mutations that are refused and ones that pass
    assert fuzzer.counts["error"] >= n // 10 and fuzzer.counts["ok"] >= n // 20, dict(fuzzer.counts)
    return fuzzer


@pytest.mark.parametrize("dialect", ["hipback", "movella_dot", "xsens_mt"])
def test_mutated_recording_files_give_a_sentence_or_a_plausible_stream(seeds, tmp_path, dialect) -> None:
    _run(fb.Fuzzer(dialect, fb.file_case(seeds, tmp_path, dialect)), 150)


def test_mutated_session_json_of_a_recording_folder(seeds, tmp_path) -> None:
    _run(fb.Fuzzer("folder", fb.folder_case(seeds, tmp_path)), 100)


def test_mutated_recordings_are_refused_or_processed_end_to_end(seeds, tmp_path) -> None:
    _run(fb.Fuzzer("recording", fb.recording_case(seeds, tmp_path)), 30)


def test_mutated_session_configs_give_a_sentence_or_a_valid_config(tmp_path) -> None:
    _run(fb.Fuzzer("config", fb.config_case(tmp_path)), 300)


def test_mutated_environment_settings_through_the_cli(tmp_path) -> None:
    fuzzer = fb.Fuzzer("env", fb.env_case(tmp_path, fb.make_env_stores(tmp_path)))
    with fb.bounded(memory_gib=2.0, seconds=120):
        fuzzer.run(60, SEED)
    assert not fuzzer.failures, fuzzer.failures[:5]
    assert fuzzer.counts["error"] > 30 and fuzzer.counts["ok"] > 0, dict(fuzzer.counts)


def test_mutated_store_files_are_refused_untouched_or_read(tmp_path) -> None:
    seed = fb.make_store_seed(tmp_path / "seed.sqlite")
    work = tmp_path / "work"
    work.mkdir()
    _run(fb.Fuzzer("store", fb.store_case(seed, work)), 60)


def test_the_fuzzer_catches_what_it_should() -> None:
    """The harness itself: an exception, a broken invariant and an overlong message are failures (a line break
    cannot reach it: :class:`HipbackError` escapes control characters)."""

    def case(rng: random.Random) -> str:
        k = rng.randrange(4)
        if k == 0:
            raise KeyError("bug")
        if k == 1:
            raise fb.Broken("wrong number")
        if k == 2:
            assert str(RecordingFileError("f", "two\nlines")) == "f: two\\x0alines"
            return fb.check_sentence(RecordingFileError("f", "x" * 500))
        return "ok"

    f = fb.Fuzzer("self", case).run(40, 1)
    kinds = {what for _, what, _ in f.failures}
    assert kinds == {"exception", "invariant"} and f.counts["ok"] > 0 and f.counts["fail"] > 20
    assert all("\n" not in detail for _, _, detail in f.failures)

    def greedy(rng: random.Random) -> str:
        np.ones(2**36)  # 512 GiB
        return "ok"

    def stuck(rng: random.Random) -> str:
        while True:
            pass

    with fb.bounded(memory_gib=1.0, seconds=1):
        eaten = fb.Fuzzer("memory", greedy).run(1, 1)
        hung = fb.Fuzzer("hang", stuck, timeout_s=1).run(1, 1)
    assert [w for _, w, _ in eaten.failures] == ["memory"] and [w for _, w, _ in hung.failures] == ["hang"]


# -- the hostile inputs of the issue ------------------------------------------------------------------------


def _last_line_time(path: Path, value: str, column: int, sep: str) -> int:
    lines = path.read_text().rstrip("\n").split("\n")
    fields = lines[-1].split(sep)
    fields[column] = value
    lines[-1] = sep.join(fields)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


@pytest.mark.parametrize("dialect", ["hipback", "movella_dot", "xsens_mt"])
def test_a_last_time_stamp_far_in_the_future_is_refused_before_allocating(seeds, tmp_path, dialect):
    path = tmp_path / f"f{seeds[dialect][0].suffix}"
    path.write_bytes(seeds[dialect][0].read_bytes())
    if dialect == "hipback":
        line = _last_line_time(path, "1000000000.0", 0, ",")
        match = "more than 24 h from the recording's start"
    elif dialect == "movella_dot":  # SampleTimeFine in us, a u32: 1e9 s is beyond its range
        line = _last_line_time(path, " 1000000000000000", 1, ",")
        match = "clock's range"
    else:  # the packet counter (u16) of a file without SampleTimeFine
        write_xsens_mt(path, 240, sample_time="absent")
        line = _last_line_time(path, "100000000000", 0, "\t")
        match = "larger than the counter can count"
    with fb.bounded(memory_gib=0.5, seconds=30), pytest.raises(RecordingFileError, match=match) as err:
        read_sensor_file(path)
    assert err.value.line == line


def test_a_time_jump_of_a_day_within_the_clock_range_is_refused(tmp_path) -> None:
    """hipback files carry times directly: a jump of 1e5 s (a day and more) in the middle is corrupt."""
    path = tmp_path / "s"
    t = np.arange(500) / 100.0 - 50_000.0  # within 24 h of the start on both sides, 1e5 s apart
    t[300:] += 1e5
    from hipback.processing.types import Recording, SensorStream

    q = np.tile([1.0, 0, 0, 0], (500, 1))
    write_recording(Recording({"pelvis": SensorStream("pelvis", "quat", t, 100.0, quat=q)}, 0.0), path)
    with fb.bounded(memory_gib=0.5, seconds=30), pytest.raises(RecordingFileError, match="time jumps") as err:
        read_recording(path)
    assert err.value.line is not None


def test_a_sparse_timeline_is_refused_before_processing_sizes_arrays_by_it(seeds, tmp_path) -> None:
    """300 samples (3 s) whose last time stamp says 18 h: within the 24 h bound, but processing would size
    its arrays by 18 h (found by the fuzz campaign: a MemoryError under a 2 GiB limit)."""
    path = tmp_path / "thigh_left.csv"
    path.write_bytes(seeds["hipback"][1].read_bytes())
    line = _last_line_time(path, "65536", 0, ",")
    with fb.bounded(memory_gib=0.5, seconds=30), pytest.raises(RecordingFileError, match="cover 3 s") as err:
        read_sensor_file(path)
    assert err.value.line == line and "18.2 h" in str(err.value)


def test_streams_from_different_days_are_refused(tmp_path) -> None:
    from hipback.processing.types import Recording, SensorStream

    q = np.tile([1.0, 0, 0, 0], (200, 1))
    t = np.arange(200) / 100.0
    rec = Recording({"pelvis": SensorStream("pelvis", "quat", t - 50_000.0, 100.0, quat=q),
                     "thigh_left": SensorStream("thigh_left", "quat", t + 50_000.0, 100.0, quat=q)}, 0.0)
    write_recording(rec, tmp_path / "s")
    with pytest.raises(RecordingFileError, match="different (days|sessions)"):
        read_recording(tmp_path / "s")


def test_the_resampler_refuses_a_grid_of_terabytes_before_allocating() -> None:
    r = GridResampler(100.0, 0.1)
    with fb.bounded(memory_gib=0.5, seconds=30), pytest.raises(ValueError, match="corrupt"):
        r.push(np.array([0.0, 1e9]), np.tile([1.0, 0, 0, 0], (2, 1)), np.zeros(2))
    ok = GridResampler(100.0, 0.1)  # a long but sane push is served
    ks, _, _ = ok.push(np.array([0.0, 3600.0]), np.tile([1.0, 0, 0, 0], (2, 1)), np.zeros(2))
    assert len(ks) == 360_001 < MAX_POINTS_PER_PUSH


@pytest.mark.parametrize("value", ["1e308", "-1e308", "400.0", "1e5"])
def test_an_impossible_accelerometer_value_is_rejected_and_leaves_no_offset(tmp_path, value):
    """Raw thigh sensor files (acc + gyr, hipback fuses them): one impossible acc value in the middle of a
    walk is rejected and counted; the angles after it equal those of the clean file (the dropped sample is a
    one-sample gap)."""
    from hipback.simulator import VirtualPatient, simulate
    from hipback.simulator.sensor_spec import SensorSpec

    sim = simulate("short", 2, VirtualPatient(patient_id="P-0002"), walk_s=12.0,
                   sensors=[SensorSpec("pelvis", kind="quat"), SensorSpec("thigh_left", kind="raw")])
    clean = tmp_path / "clean"
    write_recording(sim.recording, clean)
    bad = tmp_path / "bad"
    write_recording(sim.recording, bad)
    lines = (bad / "thigh_left.csv").read_text().split("\n")
    header = next(i for i, ln in enumerate(lines) if ln.startswith("time_s"))
    row = header + 1 + len(sim.recording.streams["thigh_left"]) // 2
    fields = lines[row].split(",")
    col = lines[header].split(",").index("acc_x")
    fields[col] = value
    lines[row] = ",".join(fields)
    (bad / "thigh_left.csv").write_text("\n".join(lines))

    rec = read_recording(bad)
    report = rec.streams["thigh_left"].meta["import"]
    assert report.out_of_range == {"acc": 1} and any(f"line {row + 1}" in w for w in report.warnings)
    a = process_recording(read_recording(clean)).angles
    b = process_recording(rec).angles
    t_bad = float(lines[row].split(",")[0])
    after = a.t > t_bad + 0.5
    diff = np.degrees(np.abs(a.hip_flexion_left[after] - b.hip_flexion_left[after]))
    assert np.nanmax(diff) < 0.005, np.nanmax(diff)  # the code achieves about 0.001 deg


def test_vendor_gyroscope_beyond_full_scale_is_rejected(tmp_path) -> None:
    path = tmp_path / "dot.csv"
    write_movella_dot(path, 240)
    lines = path.read_text().split("\n")
    fields = lines[100].split(",")
    fields[11] = " 2500.0"  # Gyr_Y in deg/s, beyond the DOT's 2000 deg/s
    lines[100] = ",".join(fields)
    path.write_text("\n".join(lines))
    s = read_sensor_file(path)
    assert s.meta["import"].out_of_range == {"gyr": 1} and len(s.meta["gaps"]) == 1

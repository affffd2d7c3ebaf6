"""``hipback process`` tells the user about mix-ups the data reveal (a pelvis file given as a thigh, the same
file twice, a stream ending early), refuses to replace earlier results silently, and gives one sentence for
an output path under a file or a malformed InfluxDB URL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hipback.ingest import cli
from hipback.ingest.commands import process
from hipback.ingest.errors import ConfigError
from hipback.ingest.files import write_recording
from hipback.simulator import VirtualPatient, simulate


@pytest.fixture(scope="module")
def rec(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mix") / "rec"
    sim = simulate("short", 4, VirtualPatient(patient_id="P-0004"), walk_s=12.0)
    write_recording(sim.recording, folder)
    return folder


def _warnings(out: Path) -> list[str]:
    return json.loads((out / "summary.json").read_text())["warnings"]


def test_correct_files_give_no_mix_up_warning(rec: Path, tmp_path: Path) -> None:
    process.run([f"{p}={rec / p}.csv" for p in ("pelvis", "thigh_left", "thigh_right")], tmp_path / "o")
    assert not [w for w in _warnings(tmp_path / "o") if "placement" in w or "before the other" in w]


def test_the_pelvis_file_given_as_a_thigh_is_named(rec: Path, tmp_path: Path, capsys) -> None:
    swapped = [f"pelvis={rec / 'thigh_left.csv'}", f"thigh_left={rec / 'pelvis.csv'}",
               f"thigh_right={rec / 'thigh_right.csv'}"]
    process.run(swapped, tmp_path / "o")
    (warning,) = [w for w in _warnings(tmp_path / "o") if "right placement" in w]
    assert "thigh_left" in warning and "thigh_right" in warning  # both turn no faster than the "pelvis"
    assert "Warning: " + warning in capsys.readouterr().out


def test_the_same_file_twice_is_named(rec: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv"
    shutil.copy(rec / "pelvis.csv", copy)
    process.run([f"pelvis={rec / 'pelvis.csv'}", f"thigh_left={copy}"], tmp_path / "o")
    warnings = _warnings(tmp_path / "o")
    assert any("pelvis and thigh_left were given the same file (copy.csv)" in w for w in warnings)
    assert any("thigh_left turns no faster than the pelvis" in w for w in warnings)


def test_a_stream_that_ends_early_is_reported_with_the_seconds(rec: Path, tmp_path: Path) -> None:
    lines = (rec / "thigh_right.csv").read_text().splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("time_s"))
    t_last = float(lines[-1].split(",")[0])
    keep = [ln for ln in lines[header + 1:] if float(ln.split(",")[0]) <= t_last - 20.0]
    short = tmp_path / "thigh_right.csv"
    short.write_text("\n".join(lines[: header + 1] + keep) + "\n")
    process.run([f"pelvis={rec / 'pelvis.csv'}", f"thigh_left={rec / 'thigh_left.csv'}",
                 f"thigh_right={short}"], tmp_path / "o")
    warnings = _warnings(tmp_path / "o")
    assert any(w.startswith("thigh_right ends 20 s before the other sensors") for w in warnings)


def test_earlier_results_are_replaced_only_when_asked(rec: Path, tmp_path: Path, capsys) -> None:
    args = ["process", f"pelvis={rec / 'pelvis.csv'}", f"thigh_left={rec / 'thigh_left.csv'}", "--out",
            str(tmp_path / "o")]
    assert cli.run(args) == 0
    before = (tmp_path / "o" / "summary.json").stat().st_mtime_ns
    capsys.readouterr()
    assert cli.run(args) == 2
    err = capsys.readouterr().err
    assert "already holds the results of an earlier run" in err and "--overwrite" in err
    assert err.count("\n") == 1
    assert (tmp_path / "o" / "summary.json").stat().st_mtime_ns == before
    assert cli.run([*args, "--overwrite"]) == 0


def test_an_output_path_under_a_file_is_one_sentence(rec: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    inputs = [f"pelvis={rec / 'pelvis.csv'}", f"thigh_left={rec / 'thigh_left.csv'}"]
    for args in (["process", *inputs, "--out", str(tmp_path / "file" / "out")],
                 ["report", str(tmp_path), "--out", str(tmp_path / "file" / "r.html")],
                 ["export", "abcd", "--format", "csv", "--out", str(tmp_path / "file" / "x")],
                 ["simulate", "--out", str(tmp_path / "file" / "sim")]):
        assert cli.run(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("hipback: ") and err.count("\n") == 1 and "file" in err, err


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:abc", "http://", "http://a b", "local:9"])
def test_a_malformed_influx_url_is_one_sentence_before_any_work(rec, tmp_path, monkeypatch, url) -> None:
    monkeypatch.setenv("HIPBACK_INFLUX_URL", url)
    with pytest.raises(ConfigError, match="HIPBACK_INFLUX_URL") as err:
        process.run([f"pelvis={rec / 'pelvis.csv'}", f"thigh_left={rec / 'thigh_left.csv'}"], tmp_path / "o",
                    store=tmp_path / "s.sqlite")
    assert "\n" not in str(err.value)
    assert len(url) < 8 or url not in str(err.value)  # a URL may hold a password: not repeated
    assert not (tmp_path / "s.sqlite").exists()

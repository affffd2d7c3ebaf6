"""docs/exercises.md's worked example, followed as written: the clinic's exercise file saved where the doc
says, the doc's ``[programme]`` appended to the README's session config, the doc's check run from the
config's folder; and the mistakes the doc quotes are the sentences hipback says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from hipback.ingest.config import load_config
from hipback.ingest.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "exercises.md").read_text()
EXAMPLE = DOC.split("## Worked example", 1)[1].split("\n## ", 1)[0]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _clinic(tmp_path: Path) -> Path:
    """The worked example's files in ``tmp_path``, as the doc says to write them; returns the config."""
    exercise, programme = _blocks(EXAMPLE, "toml")
    (saved_as,) = re.findall(r"Save this as `([^`]+)`", EXAMPLE)
    (tmp_path / saved_as).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / saved_as).write_text(exercise)
    session = _blocks((ROOT / "README.md").read_text().split("## Configuration", 1)[1], "toml")[0]
    config = tmp_path / "session.toml"
    config.write_text(session + "\n" + programme)  # "add this at the end of session.toml"
    return config


def _quoted(prefix: str) -> str:
    """The message the doc quotes that starts with ``prefix`` (line breaks joined), up to its ``(...)``."""
    flat = " ".join(EXAMPLE.split())
    (msg,) = re.findall(rf"`({re.escape(prefix)}[^`]*)`", flat)
    return msg.split("(...)")[0].split("(butterfly, ...)")[0]


def _error(config: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(config, env={})
    return str(info.value)


def test_the_worked_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _clinic(tmp_path)
    # the exercise folder is found from the config's folder, wherever hipback is started
    monkeypatch.chdir(ROOT)
    programme = load_config(config, env={}).programme
    assert programme is not None and [i.exercise for i in programme.items] == ["standing_hip_extension"] * 2
    assert programme.catalogue is not None
    assert programme.catalogue["standing_hip_extension"].primary.angle == "hip_extension"
    # the doc's check, run from the folder of session.toml, prints what the doc says
    (check,) = _blocks(EXAMPLE, "python")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(check, "docs/exercises.md[check]", "exec"), {})
    printed = re.search(r"which prints `([^`]+)` and `([^`]+)`", EXAMPLE)
    assert printed is not None and out.getvalue().splitlines() == list(printed.groups())


def test_the_mistakes_the_doc_quotes_are_what_hipback_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _clinic(tmp_path)
    monkeypatch.chdir(tmp_path)
    text = config.read_text()
    folder = tmp_path / "exercises"
    good = (folder / "standing_hip_extension.toml").read_text()

    config.write_text(re.sub(r"\nexercise_folder = .*\n", "\n", text))
    refused = _error(Path("session.toml"))
    assert refused.startswith(_quoted("session.toml: programme.exercises[0]: name must be"))
    assert refused.endswith("not 'standing_hip_extension'.")
    config.write_text(text)

    folder.rename(tmp_path / "elsewhere")
    assert _error(Path("session.toml")) == _quoted("session.toml: programme.exercise_folder exercises is not")
    (tmp_path / "elsewhere").rename(folder)

    (folder / "standing_hip_extension.toml").rename(folder / "kickback.toml")
    assert _error(Path("session.toml")) == _quoted("exercises/kickback.toml: name must")
    (folder / "kickback.toml").rename(folder / "standing_hip_extension.toml")

    (folder / "standing_hip_extension.toml").write_text(good.replace('"hip_extension"', '"knee_flexion"'))
    assert _error(Path("session.toml")).startswith(_quoted("exercises/standing_hip_extension.toml: primary"))
    (folder / "standing_hip_extension.toml").write_text(good)

    (folder / "squat.toml").write_text(good.replace('name = "standing_hip_extension"', 'name = "squat"'))
    assert _error(Path("session.toml")) == _quoted("exercises/squat.toml:")

"""A missing tool fails its tests unless HIPBACK_TEST_ALLOW_MISSING says to skip them (tests/requires.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.requires import require_tool

ROOT = Path(__file__).resolve().parents[1]


def test_missing_tool_fails_unless_allowed(monkeypatch) -> None:
    monkeypatch.delenv("HIPBACK_TEST_ALLOW_MISSING", raising=False)
    require_tool("chromium", True, "apt-get install chromium")  # found: nothing happens
    with pytest.raises(pytest.fail.Exception, match="HIPBACK_TEST_ALLOW_MISSING=chromium"):
        require_tool("chromium", False, "apt-get install chromium")
    monkeypatch.setenv("HIPBACK_TEST_ALLOW_MISSING", "compose, chromium")
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        require_tool("chromium", False, "apt-get install chromium")
    monkeypatch.setenv("HIPBACK_TEST_ALLOW_MISSING", "chromium-extra")
    with pytest.raises(pytest.fail.Exception):
        require_tool("chromium", False, "apt-get install chromium")


@pytest.mark.parametrize("script, name", [("install_chromium.sh", "chromium"),
                                          ("install_compose.sh", "compose")])
def test_install_scripts_fail_when_they_cannot_install(tmp_path: Path, script: str, name: str) -> None:
    """The scripts' fallback, run alone: no tool, no apt-get -> exit 1, unless the tool is allowed missing."""
    text = (ROOT / "tests" / script).read_text()
    body = text.split("\nif command -v", 1)[0]  # shebang, comments and allowed()
    tail = "\n" + text[text.index("if allowed; then"):]
    probe = tmp_path / "probe.sh"
    probe.write_text(body + tail)
    failed = subprocess.run(["sh", str(probe)], capture_output=True, env={"PATH": "/usr/bin:/bin"})
    assert failed.returncode == 1
    ok = subprocess.run(["sh", str(probe)], capture_output=True, text=True,
                        env={"PATH": "/usr/bin:/bin", "HIPBACK_TEST_ALLOW_MISSING": f"x,{name}"})
    assert ok.returncode == 0 and "skipped" in ok.stderr

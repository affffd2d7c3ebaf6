"""Commands that do not process import neither scipy's heavy subpackages nor Bumble (about two seconds of
every such command's start on a small machine), and the lazily exported names still resolve."""

from __future__ import annotations

import subprocess
import sys

import pytest

_HEAVY = ("scipy.signal", "scipy.spatial", "scipy.ndimage", "bumble")


@pytest.mark.parametrize("module", ["hipback.ingest.commands.sync", "hipback.ingest.commands.report",
                                    "hipback.ingest.store", "hipback.ingest.files"])
def test_a_command_that_does_not_process_imports_nothing_heavy(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {_HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "", f"importing {module} imported {out.strip()}"


def test_every_lazily_exported_name_resolves_to_its_module_s_object() -> None:
    import importlib

    import hipback.ingest.session as session
    import hipback.processing as processing

    for package in (processing, session):
        for name in package.__all__:
            module = importlib.import_module(f"{package.__name__}.{package._MODULES[name]}")
            assert getattr(package, name) is getattr(module, name), (package.__name__, name)
        assert set(package._MODULES) == set(package.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = processing.nothing_here  # type: ignore[attr-defined]

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
    import hipback.ingest.session as session
    import hipback.processing as processing

    for package in (processing, session):
        assert len(package.__all__) > 3 and set(package.__all__) <= set(dir(package))
        for name in package.__all__:
            value = getattr(package, name)
            module = getattr(value, "__module__", None)
            if isinstance(value, type) or callable(value):  # (PRESETS and PLACEMENTS are values)
                assert module is not None and module.startswith(package.__name__ + "."), (name, module)
                assert getattr(sys.modules[module], name) is value
    with pytest.raises(AttributeError, match="nothing_here"):
        _ = processing.nothing_here  # type: ignore[attr-defined]

"""docs/api.md: every Python snippet runs, in order, in one namespace (as a reader would paste them)."""

from __future__ import annotations

import re
from pathlib import Path

import hipback.processing as processing

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_snippet_runs(capsys):
    blocks = snippets()
    assert len(blocks) >= 5  # data, batch, streaming, blocks, orientation, progress
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name}[snippet {i + 1}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert "calibrated" in out
    assert namespace["final"].summary == namespace["results"].summary


def test_the_public_names_the_doc_uses_are_exported():
    used = set()
    for code in snippets():
        for names in re.findall(r"from hipback\.processing import ([^\n]+)", code):
            used |= {n.strip() for n in names.split(",")}
    assert used and used <= set(processing.__all__)
    assert all(hasattr(processing, name) for name in processing.__all__)

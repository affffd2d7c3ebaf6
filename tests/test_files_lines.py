"""A file's lines are kept as its text and the lines' offsets (``ingest/files/table.py: Lines``): the same
lines as splitting the decoded text, for any bytes (newlines, carriage returns, a byte-order mark, non-ASCII
and undecodable bytes), and the same table from ``parse_rows`` whatever the chunk size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files import table


def _reference(data: bytes) -> tuple[list[str], bool]:
    """What splitting the whole decoded text gives (the reader's former way)."""
    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n")
    ends = text.endswith("\n")
    lines = text.split("\n")
    if ends:
        lines.pop()
    return lines, ends


PIECES = st.sampled_from(
    [b"\n", b"\r\n", b"\r", b"a", b"1.5", b",", b" ", b"\xc3\xa9", b"\xef\xbb\xbf", b"\xff", b"x" * 40]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=60))
def test_lines_are_those_of_the_split_text(tmp_path_factory, pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    path = tmp_path_factory.mktemp("lines") / "f.txt"
    path.write_bytes(data)
    try:
        tf = table.read_text(path)
    except RecordingFileError:
        assert not data.strip()  # only an empty (or blank) file is refused here
        return
    lines, ends = _reference(data)
    assert tf.ends_with_newline == ends
    assert len(tf.lines) == len(lines)
    assert list(tf.lines) == lines
    assert [tf.lines[i] for i in range(-len(lines), len(lines))] == lines + lines
    for a in range(len(lines) + 1):
        assert tf.lines[a:] == lines[a:] and tf.lines.block(a, a + 2) == lines[a : a + 2]
    with pytest.raises(IndexError):
        tf.lines[len(lines)]


def _table(path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch) -> table.Table:
    monkeypatch.setattr(table, "CHUNK_ROWS", chunk)
    tf = table.read_text(path)
    return table.parse_rows(tf, 1, ",", 3, {"a": 0, "c": 2})


def test_parse_rows_is_the_same_for_every_chunk_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blank lines, a CRLF ending, 200 rows: chunks of 1, 3, 64 and 65,536 lines give the very same columns,
    line numbers and counts; the first row with a value that is not a number is named (its leftmost such
    value), and a row cut off at the end is a truncation."""
    rng = np.random.default_rng(3)
    rows = [f"{x:.6f},{i},{y:.6f}" for i, (x, y) in enumerate(rng.normal(size=(200, 2)))]
    body = "a,b,c\r\n" + "\r\n".join(r if i % 17 else r + "\r\n" for i, r in enumerate(rows)) + "\r\n"
    path = tmp_path / "t.csv"
    path.write_text(body, encoding="ascii", newline="")
    tables = [_table(path, c, monkeypatch) for c in (1, 3, 64, 65_536)]
    for t in tables[1:]:
        np.testing.assert_array_equal(t.line_no, tables[0].line_no)
        for name in ("a", "c"):
            np.testing.assert_array_equal(t.columns[name], tables[0].columns[name])
        assert (t.rows_read, t.truncated) == (tables[0].rows_read, tables[0].truncated) == (200, False)
    assert tables[0].columns["c"][5] == float(rows[5].split(",")[2])
    lines = body.split("\r\n")
    lines[150] = lines[150].replace(lines[150].split(",")[2], "zz")  # a later row, rightmost column ...
    lines[120] = "q," + lines[120].split(",", 1)[1]  # ... and an earlier row, leftmost column
    lines[121] = lines[121].rsplit(",", 1)[0] + ",?"
    path.write_text("\r\n".join(lines), encoding="ascii", newline="")
    for c in (1, 3, 64, 65_536):
        with pytest.raises(RecordingFileError) as info:
            _table(path, c, monkeypatch)
        assert info.value.line is not None and "'q' in column a" in str(info.value)
        assert str(info.value).count("line") == 1
    cut = body.rstrip("\r\n")
    cut = cut[: cut.rindex(",")]  # the last row cut off before its last field, no newline
    path.write_text(cut, encoding="ascii", newline="")
    for c in (1, 3, 64, 65_536):
        t = _table(path, c, monkeypatch)
        assert t.truncated and len(t.line_no) == 199 and t.rows_read == 200


def test_lines_are_a_sequence_with_stepped_slices(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"l0\nl1\n\nl3\r\nl4\nl5")
    lines = table.read_text(path).lines
    expected = ["l0", "l1", "", "l3", "l4", "l5"]
    for s in (slice(None, None, 2), slice(1, None, 2), slice(None, None, -1), slice(4, 0, -3), slice(0, 6)):
        assert lines[s] == expected[s]

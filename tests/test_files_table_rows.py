"""``parse_rows`` on small files of known content: the sentence of every refusal (what the user reads after
the file name), the truncation policy at the file's end, rows spread over more than one chunk, Movella DOT's
trailing separators, and a TextFile whose lines are a plain list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hipback.ingest.errors import RecordingFileError
from hipback.ingest.files import table
from hipback.ingest.files.table import TextFile, parse_rows, read_text, split_header

WANTED = {"a": 0, "c": 2}


def _file(tmp_path: Path, text: str, name: str = "t.csv") -> TextFile:
    path = tmp_path / name
    path.write_text(text, encoding="ascii", newline="")
    return read_text(path)


def _parse(tf: TextFile, **kwargs: object) -> table.Table:
    return parse_rows(tf, 1, ",", 3, WANTED, **kwargs)  # type: ignore[arg-type]


def _refusal(tf: TextFile, **kwargs: object) -> tuple[int | None, str]:
    """(line, sentence) of the refusal: the sentence is what follows the file name and line."""
    with pytest.raises(RecordingFileError) as info:
        _parse(tf, **kwargs)
    err = info.value
    where = f"{tf.path}, line {err.line}: " if err.line is not None else f"{tf.path}: "
    text = str(err)
    assert text.startswith(where), text
    return err.line, text[len(where) :]


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    for text in ("a,b,c\n", "a,b,c", "a,b,c\n\n  \n"):
        assert _refusal(_file(tmp_path, text)) == (None, "the file has a header but no data rows.")


def test_the_first_row_with_an_infinite_value_is_named_with_its_leftmost_such_column(tmp_path: Path) -> None:
    rows = ["1,2,3", "4,5,inf", "-inf,6,7", "8,9,-inf", "inf,1,inf"]
    tf = _file(tmp_path, "a,b,c\n" + "\n".join(rows) + "\n")
    assert _refusal(tf) == (3, "the value in column c is infinite.")
    rows[1] = "4,5,6"  # now row 3 (line 4) comes first: column a, though c has one later too
    tf = _file(tmp_path, "a,b,c\n" + "\n".join(rows) + "\n")
    assert _refusal(tf) == (4, "the value in column a is infinite.")
    rows[2] = "3,6,7"
    tf = _file(tmp_path, "a,b,c\n" + "\n".join(rows) + "\n")
    assert _refusal(tf) == (5, "the value in column c is infinite.")
    rows[3] = "8,9,10"  # line 6: both a and c are infinite, a is the leftmost
    tf = _file(tmp_path, "a,b,c\n" + "\n".join(rows) + "\n")
    assert _refusal(tf) == (6, "the value in column a is infinite.")


def test_a_long_value_that_is_not_a_number_is_shown_in_its_first_20_characters(tmp_path: Path) -> None:
    twenty = "abcdefghijklmnopqrst"
    tf = _file(tmp_path, f"a,b,c\n1,2,3\n4,5, {twenty} \n")
    assert _refusal(tf) == (3, f"the value '{twenty}' in column c is not a number.")
    tf = _file(tmp_path, f"a,b,c\n1,2,3\n{twenty}u,5,6\n")
    assert _refusal(tf) == (3, f"the value '{twenty}...' in column a is not a number.")


def test_a_row_with_the_wrong_number_of_fields_says_how_many(tmp_path: Path) -> None:
    assert _refusal(_file(tmp_path, "a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n")) == (
        3, "this row has 4 fields but the header has 3 columns.")
    assert _refusal(_file(tmp_path, "a,b,c\n1,2,3\n4,5,6\n8,9\n")) == (
        4, "this row has 2 fields but the header has 3 columns.")


def test_a_last_row_cut_in_its_last_value_is_dropped_and_reported(tmp_path: Path) -> None:
    """The row has all its fields but its last value is cut ("1e"): a truncation, not an error."""
    t = _parse(_file(tmp_path, "a,b,c\n1,2,3\n4,5,6\n7,8,1e"))
    assert t.truncated is True and t.rows_read == 3
    np.testing.assert_array_equal(t.line_no, [2, 3])
    np.testing.assert_array_equal(t.columns["a"], [1.0, 4.0])
    np.testing.assert_array_equal(t.columns["c"], [3.0, 6.0])
    t = _parse(_file(tmp_path, "a,b,c\n1,2,3\n7,8,1e"))
    assert t.truncated is True and t.rows_read == 2
    np.testing.assert_array_equal(t.line_no, [2])
    np.testing.assert_array_equal(t.columns["c"], [3.0])
    # the only row is cut: nothing is left
    assert _refusal(_file(tmp_path, "a,b,c\n7,8,1e")) == (
        None, "the file has a header but no complete data rows.")


def test_only_the_last_line_may_be_a_truncation(tmp_path: Path) -> None:
    """Damage before the last line is an error whether or not the file ends with a newline, and whether or
    not its last line was cut off."""
    # a complete last row ending with a newline: its damage is an error
    assert _refusal(_file(tmp_path, "a,b,c\n1,2,3\n4,5,x\n")) == (
        3, "the value 'x' in column c is not a number.")
    assert _refusal(_file(tmp_path, "a,b,c\n1,2,3\n4,5\n")) == (
        3, "this row has 2 fields but the header has 3 columns.")
    # no final newline, but the damage is in an earlier row
    assert _refusal(_file(tmp_path, "a,b,c\n1,2,x\n4,5,6\n7,8,9")) == (
        2, "the value 'x' in column c is not a number.")
    assert _refusal(_file(tmp_path, "a,b,c\n1,2\n4,5,6\n7,8,9")) == (
        2, "this row has 2 fields but the header has 3 columns.")
    # the last line cut off (too few fields, or cut in its value) and a bad value in the row before it
    for last in ("7,8", "7,8,1e"):
        assert _refusal(_file(tmp_path, f"a,b,c\n1,2,3\n4,5,x\n{last}")) == (
            3, "the value 'x' in column c is not a number.")
        assert _refusal(_file(tmp_path, f"a,b,c\n1,2,3\n4,5,x\n{last}"), strict_last_line=True) == (
            3, "the value 'x' in column c is not a number.")


def test_an_unterminated_last_row_is_kept_unless_the_format_always_ends_its_lines(tmp_path: Path) -> None:
    tf = _file(tmp_path, "a,b,c\n1,2,3\n4,5,6")
    t = _parse(tf)  # the vendor exports: a complete last row without its newline is a row
    assert (t.truncated, t.rows_read) == (False, 2)
    np.testing.assert_array_equal(t.columns["c"], [3.0, 6.0])
    t = _parse(tf, strict_last_line=True)  # hipback files: the writer always ends a line
    assert (t.truncated, t.rows_read) == (True, 2)
    np.testing.assert_array_equal(t.line_no, [2])
    np.testing.assert_array_equal(t.columns["c"], [3.0])


def test_what_counts_as_the_last_line_ignores_blank_lines(tmp_path: Path) -> None:
    # spaces after the final newline are no row: nothing was cut off
    tf = _file(tmp_path, "a,b,c\n1,2,3\n4,5,6\n   ")
    for strict in (False, True):
        t = _parse(tf, strict_last_line=strict)
        assert (t.truncated, t.rows_read) == (False, 2)
        np.testing.assert_array_equal(t.line_no, [2, 3])
    # a cut-off last row after a blank line is still the cut-off last row
    t = _parse(_file(tmp_path, "a,b,c\n1,2,3\n\n4,5"))
    assert (t.truncated, t.rows_read) == (True, 2)
    np.testing.assert_array_equal(t.line_no, [2])


def test_rows_in_more_than_one_chunk_are_all_kept(tmp_path: Path) -> None:
    n = table.CHUNK_ROWS + table.CHUNK_ROWS // 2
    rows = [f"{i},{i % 7},{i * 0.5}" for i in range(n)]
    t = _parse(_file(tmp_path, "a,b,c\n" + "\n".join(rows) + "\n"))
    np.testing.assert_array_equal(t.columns["a"], np.arange(n, dtype=float))
    np.testing.assert_array_equal(t.columns["c"], np.arange(n) * 0.5)
    np.testing.assert_array_equal(t.line_no, np.arange(n) + 2)
    assert (t.rows_read, t.truncated) == (n, False)


def test_lines_given_as_a_list_are_parsed_like_a_file(tmp_path: Path) -> None:
    text = "a,b,c\n1,2,3\n\n4,5,6\n7,8"
    tf = _file(tmp_path, text)
    listed = TextFile(tf.path, text.split("\n"), False)
    a, b = _parse(tf), _parse(listed)
    np.testing.assert_array_equal(b.line_no, a.line_no)
    np.testing.assert_array_equal(b.columns["c"], a.columns["c"])
    assert (b.rows_read, b.truncated) == (a.rows_read, a.truncated) == (3, True)
    np.testing.assert_array_equal(b.columns["c"], [3.0, 6.0])


# -- Movella DOT: rows ending with a separator -------------------------------------------------------------


def _dot(tf: TextFile, sep: str = ",") -> table.Table:
    return parse_rows(tf, 1, sep, 3, WANTED, trailing_sep_optional=True)


def test_trailing_separators_are_removed_and_rows_without_one_keep_their_values(tmp_path: Path) -> None:
    plain = _dot(_file(tmp_path, "a, b, c\n1, 2, 31\n4, 5, 62\n7, 8, 93\n"))
    for body in ("1, 2, 31, \n4, 5, 62, \n7, 8, 93, \n", "1, 2, 31,\n4, 5, 62\n7, 8, 93, \n"):
        t = _dot(_file(tmp_path, "a, b, c,\n" + body))
        np.testing.assert_array_equal(t.columns["c"], plain.columns["c"])
        np.testing.assert_array_equal(t.columns["c"], [31.0, 62.0, 93.0])
        np.testing.assert_array_equal(t.columns["a"], [1.0, 4.0, 7.0])


def test_tab_separated_rows_ending_with_a_tab(tmp_path: Path) -> None:
    """A tab-separated export with a tab after every row's last field (which may be empty)."""
    t = _dot(_file(tmp_path, "a\tb\tc\t\n1\t2\t3\t\n4\t5\t\t\n7\t8\t9\t\n"), "\t")
    np.testing.assert_array_equal(t.columns["a"], [1.0, 4.0, 7.0])
    np.testing.assert_array_equal(t.columns["c"], [3.0, np.nan, 9.0])


@pytest.mark.parametrize("chunk", [1, 2, 3, 8192])
def test_rows_are_held_to_the_ending_of_the_first_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      chunk: int) -> None:
    """The first row ends without a separator: a later row ending with one has a field too many, whatever
    the number of rows read at a time."""
    monkeypatch.setattr(table, "CHUNK_ROWS", chunk)
    tf = _file(tmp_path, "a, b, c,\n1, 2, 3\n4, 5, 6\n7, 8, 9, \n10, 11, 12\n")
    with pytest.raises(RecordingFileError) as info:
        _dot(tf)
    assert info.value.line == 4
    assert str(info.value).endswith(": this row has 4 fields but the header has 3 columns.")


def test_quoted_column_names() -> None:
    assert split_header('"Acc_X", "Acc_Y" ,Status,', ",") == ["Acc_X", "Acc_Y", "Status", ""]


def test_a_rate_in_coarse_clock_ticks_is_read_as_the_rate_it_is() -> None:
    """60 Hz stamped in 10 kHz ticks (steps of 167, 167, 166 ticks) is 60 Hz, not the 59.88 Hz of its median
    step; a file losing a fifth of its samples keeps its rate; a 120 Hz file in microseconds stays 120 Hz."""
    from hipback.ingest.files.assemble import snap_rate, typical_step

    def rate(t: np.ndarray) -> float:
        return snap_rate(1.0 / typical_step(t, np.diff(t)), None)

    ticks = np.floor(np.arange(600) * 10_000 / 60.0) / 10_000
    assert 1.0 / float(np.median(np.diff(ticks))) == pytest.approx(59.88, abs=0.01)
    assert rate(ticks) == 60.0
    keep = np.random.default_rng(1).random(600) > 0.2
    assert rate(ticks[keep]) == 60.0
    us = np.round(np.arange(1200) * 1e6 / 120.0) / 1e6
    assert rate(us) == 120.0
    assert rate(np.arange(100) * 0.01) == 100.0
